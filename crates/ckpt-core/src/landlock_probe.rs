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
    /// passes: the target is inside a Landlock domain (or another LSM
    /// forbids it ptrace access to its own processes).
    Denied { errno: i32, call: &'static str },
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

/// Whether Landlock is in this host's LSM stack.
pub fn landlock_active() -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .map(|s| s.trim().split(',').any(|l| l == "landlock"))
        .unwrap_or(false)
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
    if !landlock_active() {
        return Ok(ProbeOutcome::LandlockInactive);
    }
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
    r
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
                call: "kcmp(KCMP_VM)"
            }
        );
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
