//! Detecting, at dump, a task inside a Landlock domain.
//!
//! No kernel interface shows a task's Landlock domain (not /proc, not
//! ptrace, not an LSM attribute), and a sandboxed program usually closes
//! its ruleset fd, so ckpt asks the kernel a question only a domain
//! changes the answer to. Landlock's `ptrace_access_check` hook denies a
//! task inside a domain any ptrace-mode access to a task outside it
//! (`domain_scope_le`): there is no rule that allows it. ckpt therefore
//! starts a *peer*, a child with all its uids and gids equal to the
//! target's real uid and gid, no capabilities, dumpable and open to any
//! ptracer under Yama, so that every other check of `__ptrace_may_access`
//! passes for the target; then it injects into the stopped target
//! `kcmp(self, peer, KCMP_VM)` (PTRACE_MODE_READ_REALCREDS on the peer).
//! An unconfined target gets an ordering (0..=3); a target inside a domain
//! gets EPERM. Without kcmp the probe uses `pidfd_open(peer)` plus
//! `pidfd_getfd` (PTRACE_MODE_ATTACH_REALCREDS). The method and its limits
//! are in docs/security-design.md, "Detecting Landlock at dump".
//!
//! The probe runs only where Landlock is active, and "not active" is
//! concluded only from the kernel's answer ([`decide_presence`]):
//! `lsm_list_modules` first, then the Landlock syscall, and securityfs
//! (which a mount namespace may lack) only when neither syscall answers.
//! When nothing answers, the outcome is inconclusive and the dump refused.

use crate::ptrace::{TraceError, Tracer};

const KCMP_VM: u64 = 1;

/// What the probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// Landlock is not active on this host: no task can be in a domain.
    LandlockInactive,
    /// The target could access a peer with its own credentials: it is not
    /// inside a Landlock domain.
    Outside,
    /// The access was denied (`errno`) although every non-LSM check
    /// passes: the target is inside a Landlock domain, or one of `others`
    /// (the other active LSMs that mediate ptrace access: AppArmor judges
    /// the injected kcmp as `ptrace read`, SELinux as `file read` of the
    /// peer's domain) forbids it ptrace access to its own processes.
    Denied {
        errno: i32,
        call: &'static str,
        others: Vec<String>,
    },
    /// The probe could not be run or gave an unexpected answer.
    Inconclusive { why: String },
}

/// Interprets an injected call's raw return (negative errno on failure).
fn classify(call: &'static str, ret: i64) -> Option<ProbeOutcome> {
    match ret {
        r if r >= 0 => Some(ProbeOutcome::Outside),
        r if r == -(libc::EPERM as i64) || r == -(libc::EACCES as i64) => {
            Some(ProbeOutcome::Denied {
                errno: (-r) as i32,
                call,
                others: Vec::new(),
            })
        }
        r if r == -(libc::ENOSYS as i64) => None,
        r => Some(ProbeOutcome::Inconclusive {
            why: format!(
                "{call} in the target failed with {}",
                std::io::Error::from_raw_os_error((-r) as i32)
            ),
        }),
    }
}

/// Runs the probe inside the stopped target `t` (whose syscall
/// instruction is set and whose signals are blocked) against `peer`, a
/// process with the target's credentials seen by the target as `peer`.
pub fn probe(t: &mut dyn Tracer, peer: i32) -> Result<ProbeOutcome, TraceError> {
    let me = t.pid() as u64;
    let r = t.syscall(libc::SYS_kcmp, &[me, peer as u64, KCMP_VM, 0, 0])?;
    if let Some(o) = classify("kcmp(KCMP_VM)", r) {
        return Ok(o);
    }
    // No kcmp (CONFIG_KCMP off): pidfd_getfd makes the same check.
    let pidfd = t.syscall(libc::SYS_pidfd_open, &[peer as u64, 0])?;
    if pidfd < 0 {
        return Ok(ProbeOutcome::Inconclusive {
            why: format!(
                "kcmp is not available and pidfd_open in the target failed with {}",
                std::io::Error::from_raw_os_error((-pidfd) as i32)
            ),
        });
    }
    let r = t.syscall(libc::SYS_pidfd_getfd, &[pidfd as u64, 0, 0])?;
    if r >= 0 {
        t.syscall(libc::SYS_close, &[r as u64])?;
    }
    t.syscall(libc::SYS_close, &[pidfd as u64])?;
    Ok(
        classify("pidfd_getfd", r).unwrap_or(ProbeOutcome::Inconclusive {
            why: "neither kcmp nor pidfd_getfd is available in this kernel".into(),
        }),
    )
}

/// One source's answer to "is Landlock active on this host?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// The source could not answer (syscall missing, file absent); `why`
    /// says what happened.
    Unknown(String),
}

/// Whether Landlock is active on this host, as far as ckpt can establish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presence {
    Active,
    Inactive,
    /// No source answered: the dump must not assume "no Landlock".
    Unknown(String),
}

/// The presence decision (fail closed). The kernel's own answers come
/// first: `lsm_list_modules` (Linux 6.8+) lists the active LSMs, and only
/// its "not listed" means inactive. Without it, the Landlock syscall
/// itself answers: an ABI version means active, `EOPNOTSUPP` means built
/// but disabled. Only when neither syscall answers does securityfs (which
/// a mount namespace can hide or replace) decide, and then "absent" means
/// active when it lists Landlock and inactive when it lists a stack
/// without it; no securityfs at all is unknown, and unknown refuses.
pub fn decide_presence(
    list_modules: &Answer,
    landlock_abi: &Answer,
    securityfs: &Answer,
) -> Presence {
    match (list_modules, landlock_abi, securityfs) {
        (Answer::Yes, _, _) => Presence::Active,
        (Answer::No, _, _) => Presence::Inactive,
        (Answer::Unknown(_), Answer::Yes, _) => Presence::Active,
        (Answer::Unknown(_), Answer::No, _) => Presence::Inactive,
        (Answer::Unknown(_), Answer::Unknown(_), Answer::Yes) => Presence::Active,
        (Answer::Unknown(_), Answer::Unknown(_), Answer::No) => Presence::Inactive,
        (Answer::Unknown(a), Answer::Unknown(b), Answer::Unknown(c)) => Presence::Unknown(format!(
            "whether Landlock is active on this host is unknown ({a}; {b}; {c}); mount securityfs (mount -t securityfs none /sys/kernel/security) or dump on a kernel with lsm_list_modules (Linux 6.8+)"
        )),
    }
}

/// `lsm_list_modules` on this host: is Landlock (id 110) listed?
pub fn ask_list_modules() -> Answer {
    match lsm_labels::stack::syscall_lsm_ids() {
        Ok(ids) if ids.is_empty() => Answer::Unknown("lsm_list_modules listed no LSM".into()),
        Ok(ids) if ids.contains(&LANDLOCK_LSM_ID) => Answer::Yes,
        Ok(_) => Answer::No,
        Err(e) => Answer::Unknown(format!("lsm_list_modules failed: {e}")),
    }
}

/// The Landlock ABI query: a version, `EOPNOTSUPP` (disabled at boot), or
/// anything else (unknown: `ENOSYS` may also be a seccomp filter).
pub fn ask_landlock_abi() -> Answer {
    match lsm_labels::stack::landlock_abi_version() {
        Ok(_) => Answer::Yes,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Answer::No,
        Err(e) => Answer::Unknown(format!("landlock_create_ruleset(VERSION) failed: {e}")),
    }
}

/// `/sys/kernel/security/lsm`: does the listed stack hold Landlock?
pub fn ask_securityfs() -> Answer {
    let path = lsm_labels::stack::SECURITYFS_LSM;
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim().is_empty() => Answer::Unknown(format!("{path} is empty")),
        Ok(s) if s.trim().split(',').any(|l| l == "landlock") => Answer::Yes,
        Ok(_) => Answer::No,
        Err(e) => Answer::Unknown(format!("cannot read {path}: {e}")),
    }
}

/// Landlock's LSM id in include/uapi/linux/lsm.h.
const LANDLOCK_LSM_ID: u64 = 110;

/// Whether Landlock is active on this host (see [`decide_presence`]).
pub fn landlock_presence() -> Presence {
    decide_presence(&ask_list_modules(), &ask_landlock_abi(), &ask_securityfs())
}

/// The probe's peer process; killed and reaped on drop.
pub struct Peer {
    pid: i32,
}

impl Peer {
    /// Starts a peer with all uids `uid` and all gids `gid` and waits until
    /// the kernel shows those credentials for it.
    pub fn start(uid: u32, gid: u32) -> Result<Peer, String> {
        let pid = crate::sys_security::spawn_probe_peer(uid, gid)
            .map_err(|e| format!("cannot start the probe's peer process: {e}"))?;
        let peer = Peer { pid };
        let want_uid = format!("{uid}\t{uid}\t{uid}\t{uid}");
        let want_gid = format!("{gid}\t{gid}\t{gid}\t{gid}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
            };
            if field("Uid:").as_deref() == Some(want_uid.as_str())
                && field("Gid:").as_deref() == Some(want_gid.as_str())
                && field("State:").is_some_and(|s| !s.starts_with('Z'))
            {
                return Ok(peer);
            }
            if let Ok(nix::sys::wait::WaitStatus::Exited(_, code)) = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            ) {
                let what = match code {
                    2 => "setresgid",
                    3 => "setresuid",
                    _ => "start",
                };
                std::mem::forget(peer);
                return Err(format!(
                    "the probe's peer process could not take uid {uid} gid {gid} ({what} failed); dump as root"
                ));
            }
            if std::time::Instant::now() > deadline {
                return Err("the probe's peer process did not start within 5 s".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let p = nix::unistd::Pid::from_raw(self.pid);
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(p, None);
    }
}

/// Runs the whole probe for the stopped target `t` whose real uid and gid
/// are `uid` and `gid`.
pub fn detect(t: &mut dyn Tracer, uid: u32, gid: u32) -> Result<ProbeOutcome, TraceError> {
    outcome_for(landlock_presence(), || probe_active(t, uid, gid))
}

/// The outcome for a host where Landlock's presence is `presence`: the
/// probe runs only where Landlock is active; unknown presence is
/// inconclusive (and refuses the dump), never "no Landlock".
pub fn outcome_for(
    presence: Presence,
    run_probe: impl FnOnce() -> Result<ProbeOutcome, TraceError>,
) -> Result<ProbeOutcome, TraceError> {
    match presence {
        Presence::Active => run_probe(),
        Presence::Inactive => Ok(ProbeOutcome::LandlockInactive),
        Presence::Unknown(why) => Ok(ProbeOutcome::Inconclusive { why }),
    }
}

/// The probe proper, on a host where Landlock is active.
fn probe_active(t: &mut dyn Tracer, uid: u32, gid: u32) -> Result<ProbeOutcome, TraceError> {
    let target = t.pid();
    // kcmp and pidfd_open name the peer by its PID in the target's PID
    // namespace: the probe is only meaningful when that is ours.
    let ns = |p: String| std::fs::read_link(p).ok();
    if ns(format!("/proc/{target}/ns/pid")) != ns("/proc/self/ns/pid".into()) {
        return Ok(ProbeOutcome::Inconclusive {
            why: "the target is in another PID namespace".into(),
        });
    }
    // The capability check of ptrace access compares user namespaces too.
    if ns(format!("/proc/{target}/ns/user")) != ns("/proc/self/ns/user".into()) {
        return Ok(ProbeOutcome::Inconclusive {
            why: "the target is in another user namespace".into(),
        });
    }
    let peer = match Peer::start(uid, gid) {
        Ok(p) => p,
        Err(why) => return Ok(ProbeOutcome::Inconclusive { why }),
    };
    let r = probe(t, peer.pid());
    drop(peer);
    Ok(match r? {
        ProbeOutcome::Denied { errno, call, .. } => ProbeOutcome::Denied {
            errno,
            call,
            others: ptrace_mediators(&active_lsms()),
        },
        o => o,
    })
}

/// LSMs other than Landlock whose policy can deny one task ptrace access
/// to another with the same credentials (Yama when `ptrace_scope` is 2 or
/// 3; the peer is open to any ptracer under scope 1).
const PTRACE_MEDIATORS: [&str; 5] = ["yama", "selinux", "smack", "apparmor", "bpf"];

/// The members of `stack` that may have denied the probe besides Landlock.
pub fn ptrace_mediators(stack: &[String]) -> Vec<String> {
    stack
        .iter()
        .filter(|l| PTRACE_MEDIATORS.contains(&l.as_str()))
        .cloned()
        .collect()
}

/// The active LSMs, from `lsm_list_modules` or else securityfs (empty
/// when neither answers: the message then names only Landlock).
fn active_lsms() -> Vec<String> {
    if let Ok(ids) = lsm_labels::stack::syscall_lsm_ids() {
        return ids
            .iter()
            .filter_map(|i| lsm_labels::stack::lsm_name(*i))
            .map(String::from)
            .collect();
    }
    std::fs::read_to_string(lsm_labels::stack::SECURITYFS_LSM)
        .map(|s| s.trim().split(',').map(String::from).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ptrace::Regs;

    /// Records each injected call and answers from a script.
    struct Scripted {
        calls: Vec<(i64, Vec<u64>)>,
        answers: Vec<i64>,
    }

    impl Tracer for Scripted {
        fn pid(&self) -> i32 {
            4242
        }
        fn regs(&self) -> Result<Regs, TraceError> {
            unimplemented!("not used by the probe")
        }
        fn set_regs(&mut self, _: &Regs) -> Result<(), TraceError> {
            Ok(())
        }
        fn syscall(&mut self, nr: i64, args: &[u64]) -> Result<i64, TraceError> {
            self.calls.push((nr, args.to_vec()));
            Ok(self.answers.remove(0))
        }
        fn read_mem(&self, _: u64, _: &mut [u8]) -> Result<(), TraceError> {
            Ok(())
        }
        fn write_mem(&mut self, _: u64, _: &[u8]) -> Result<(), TraceError> {
            Ok(())
        }
        fn set_syscall_ip(&mut self, _: u64) {}
    }

    #[test]
    fn kcmp_ordering_means_outside() {
        let mut t = Scripted {
            calls: vec![],
            answers: vec![1],
        };
        assert_eq!(probe(&mut t, 77).unwrap(), ProbeOutcome::Outside);
        assert_eq!(
            t.calls,
            vec![(libc::SYS_kcmp, vec![4242, 77, KCMP_VM, 0, 0])]
        );
    }

    #[test]
    fn kcmp_eperm_means_inside_a_domain() {
        let mut t = Scripted {
            calls: vec![],
            answers: vec![-(libc::EPERM as i64)],
        };
        assert_eq!(
            probe(&mut t, 77).unwrap(),
            ProbeOutcome::Denied {
                errno: libc::EPERM,
                call: "kcmp(KCMP_VM)",
                others: vec![],
            }
        );
    }

    #[test]
    fn only_lsms_that_mediate_ptrace_are_named_besides_landlock() {
        let stack: Vec<String> = "lockdown,capability,landlock,yama,apparmor,bpf"
            .split(',')
            .map(String::from)
            .collect();
        assert_eq!(ptrace_mediators(&stack), ["yama", "apparmor", "bpf"]);
        assert!(ptrace_mediators(&["capability".into(), "landlock".into()]).is_empty());
    }

    #[test]
    fn without_kcmp_pidfd_getfd_decides_and_fds_are_closed() {
        let mut t = Scripted {
            calls: vec![],
            answers: vec![-(libc::ENOSYS as i64), 9, 10, 0, 0],
        };
        assert_eq!(probe(&mut t, 77).unwrap(), ProbeOutcome::Outside);
        let nrs: Vec<i64> = t.calls.iter().map(|c| c.0).collect();
        assert_eq!(
            nrs,
            vec![
                libc::SYS_kcmp,
                libc::SYS_pidfd_open,
                libc::SYS_pidfd_getfd,
                libc::SYS_close,
                libc::SYS_close
            ]
        );
        assert_eq!(t.calls[3].1, vec![10]);
        assert_eq!(t.calls[4].1, vec![9]);

        let mut t = Scripted {
            calls: vec![],
            answers: vec![-(libc::ENOSYS as i64), 9, -(libc::EPERM as i64), 0],
        };
        assert!(matches!(
            probe(&mut t, 77).unwrap(),
            ProbeOutcome::Denied { .. }
        ));
    }

    /// The decision table: lsm_list_modules yes/no/unknown x Landlock ABI
    /// yes/no/unknown x securityfs yes/no/absent x probe result, down to
    /// the dump's rule (allowed or refused).
    #[test]
    fn presence_decision_table_fails_closed() {
        use Answer::{No, Yes};
        let unk = || Answer::Unknown("ENOSYS".into());
        let answers = || [Yes, No, unk()];
        let probes = [
            ProbeOutcome::Outside,
            ProbeOutcome::Denied {
                errno: libc::EPERM,
                call: "kcmp(KCMP_VM)",
                others: vec!["apparmor".into()],
            },
            ProbeOutcome::Inconclusive { why: "x".into() },
        ];
        for list in answers() {
            for abi in answers() {
                for fs in answers() {
                    let presence = decide_presence(&list, &abi, &fs);
                    // The kernel's list decides when it answers; else the
                    // Landlock syscall; else securityfs; else unknown.
                    let expected = match (&list, &abi, &fs) {
                        (Yes, _, _) | (Answer::Unknown(_), Yes, _) => Presence::Active,
                        (Answer::Unknown(_), Answer::Unknown(_), Yes) => Presence::Active,
                        (No, _, _) | (Answer::Unknown(_), No, _) => Presence::Inactive,
                        (Answer::Unknown(_), Answer::Unknown(_), No) => Presence::Inactive,
                        _ => {
                            assert!(
                                matches!(presence, Presence::Unknown(_)),
                                "{list:?} {abi:?} {fs:?}"
                            );
                            presence.clone()
                        }
                    };
                    assert_eq!(presence, expected, "{list:?} {abi:?} {fs:?}");
                    for p in &probes {
                        let mut ran = false;
                        let out = outcome_for(presence.clone(), || {
                            ran = true;
                            Ok(p.clone())
                        })
                        .unwrap();
                        assert_eq!(ran, presence == Presence::Active);
                        let allowed = crate::security_dump::landlock_verdict(out).is_ok();
                        let want = match &presence {
                            Presence::Inactive => true,
                            Presence::Unknown(_) => false,
                            Presence::Active => *p == ProbeOutcome::Outside,
                        };
                        assert_eq!(allowed, want, "{list:?} {abi:?} {fs:?} {p:?}");
                    }
                }
            }
        }
        // The case of issue 7 item 7: a kernel whose syscalls do not answer
        // and a mount namespace without securityfs.
        let p = decide_presence(&unk(), &unk(), &Answer::Unknown("no such file".into()));
        assert!(matches!(&p, Presence::Unknown(why) if why.contains("securityfs")));
        // securityfs claiming "no Landlock" cannot override the kernel's list.
        assert_eq!(decide_presence(&Yes, &unk(), &No), Presence::Active);
    }

    #[test]
    fn other_errors_are_inconclusive() {
        let mut t = Scripted {
            calls: vec![],
            answers: vec![-(libc::ESRCH as i64)],
        };
        assert!(matches!(
            probe(&mut t, 77).unwrap(),
            ProbeOutcome::Inconclusive { .. }
        ));
    }
}
