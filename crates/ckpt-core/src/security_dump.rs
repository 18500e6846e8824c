//! The security side of a dump: what /proc cannot give is read from the
//! stopped task itself. Securebits come from an injected
//! `prctl(PR_GET_SECUREBITS)`, seccomp filters from
//! `PTRACE_SECCOMP_GET_FILTER` (oldest first), and a Landlock domain is
//! detected by the probe of [`crate::landlock_probe`]. Combined with the
//! /proc state (credentials, capability sets, labels, no_new_privs,
//! seccomp mode, personality) into the thread's `TaskSecurity` (stored as
//! its `TaskSecurityRecord`).
//!
//! A task whose confinement ckpt cannot capture (a Landlock domain, a
//! seccomp filter it cannot read or reinstall) is refused here, before the
//! engine collects anything, and left running untouched (DESIGN 3.6).
//! While the task is frozen, its seccomp filters are suspended
//! (`PTRACE_O_SUSPEND_SECCOMP`) so that no call ckpt injects can be
//! killed or denied by them; detaching ends the suspension.

use lsm_labels::task::{SeccompMode, TaskSecurity};
use lsm_labels::{taskstate, HostView};

use crate::landlock_probe::{self, ProbeOutcome};
use crate::ptrace::{find_syscall_insn, TraceError, Tracee, Tracer};
use crate::seccomp::{self, SeccompCaptureError};
use crate::sys_security;

/// Why the security state of a task could not be captured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityDumpError {
    #[error("{0}")]
    ReadProc(#[source] taskstate::TaskStateError),
    #[error("{}", landlock_denied_text(call, *errno, others))]
    Landlock {
        call: &'static str,
        errno: i32,
        others: Vec<String>,
    },
    #[error("ckpt cannot establish that it runs outside a Landlock domain: {why}")]
    LandlockUnknown { why: String },
    #[error("{0}")]
    Seccomp(#[source] SeccompCaptureError),
    #[error("it runs under seccomp, and suspending its filters while ckpt works in it (PTRACE_O_SUSPEND_SECCOMP) needs CAP_SYS_ADMIN and an unconfined ckpt: {source}; dump it as root")]
    SuspendSeccomp {
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Trace(#[from] TraceError),
    #[error("{call} injected into it failed with {}", std::io::Error::from_raw_os_error(*errno))]
    Injected { call: &'static str, errno: i32 },
    #[error("it has no [vdso] with a syscall instruction to borrow")]
    NoVdso,
}

impl SecurityDumpError {
    /// A refusal by DESIGN 3.6 (exit 3), rather than an operational failure.
    pub fn is_confinement(&self) -> bool {
        match self {
            SecurityDumpError::Landlock { .. }
            | SecurityDumpError::LandlockUnknown { .. }
            | SecurityDumpError::SuspendSeccomp { .. } => true,
            SecurityDumpError::Seccomp(e) => e.is_confinement(),
            _ => false,
        }
    }
}

/// `PR_GET_SECUREBITS`.
const PR_GET_SECUREBITS: u64 = 27;

/// The securebits of the stopped task, by injection.
pub fn read_securebits(t: &mut dyn Tracer) -> Result<u32, SecurityDumpError> {
    let r = t.syscall(libc::SYS_prctl, &[PR_GET_SECUREBITS, 0, 0, 0, 0])?;
    if r < 0 {
        return Err(SecurityDumpError::Injected {
            call: "prctl(PR_GET_SECUREBITS)",
            errno: (-r) as i32,
        });
    }
    Ok(r as u32)
}

/// The refusal of a denied Landlock probe: what was denied, and who may
/// have denied it (Landlock, or another active LSM that mediates ptrace:
/// the probe cannot tell them apart).
fn landlock_denied_text(call: &str, errno: i32, others: &[String]) -> String {
    let err = std::io::Error::from_raw_os_error(errno);
    let domain = "a Landlock domain cannot be captured or restored, so dump it before it calls landlock_restrict_self";
    if others.is_empty() {
        return format!("it runs inside a Landlock domain: Landlock denied {call} from it to a process with its own credentials ({err}); {domain}");
    }
    let who = others.join(", ");
    format!("Landlock or another LSM ({who}) denied {call} from it to a process with its own credentials ({err}): either it runs inside a Landlock domain ({domain}), or the policy of {who} denies it ptrace read access to that process (allow that, then dump again)")
}

/// The dump's rule for a probe outcome.
pub fn landlock_verdict(outcome: ProbeOutcome) -> Result<(), SecurityDumpError> {
    match outcome {
        ProbeOutcome::LandlockInactive | ProbeOutcome::Outside => Ok(()),
        ProbeOutcome::Denied {
            errno,
            call,
            others,
        } => Err(SecurityDumpError::Landlock {
            call,
            errno,
            others,
        }),
        ProbeOutcome::Inconclusive { why } => Err(SecurityDumpError::LandlockUnknown { why }),
    }
}

/// What is read by injection: securebits and the Landlock probe, in that
/// order, inside an injection window whose syscall instruction is set.
pub fn injected_state(
    t: &mut dyn Tracer,
    real_uid: u32,
    real_gid: u32,
) -> Result<u32, SecurityDumpError> {
    let securebits = read_securebits(t)?;
    landlock_verdict(landlock_probe::detect(t, real_uid, real_gid)?)?;
    Ok(securebits)
}

/// Captures the security state of thread `tid` of the stopped task `t`
/// (single-threaded: `tid` is its pid). Leaves the task's registers and
/// signal mask as they were, and its seccomp filters suspended until ckpt
/// detaches (so the engine's injected calls are safe too).
pub fn capture(t: &mut Tracee, tid: i32) -> Result<TaskSecurity, SecurityDumpError> {
    let pid = t.pid();
    let (mut sec, filter_count, _notes) =
        taskstate::read_thread_security(&HostView::live(), pid, tid)
            .map_err(SecurityDumpError::ReadProc)?;
    if sec.seccomp != SeccompMode::Disabled {
        sys_security::ptrace_set_options(
            pid,
            sys_security::PTRACE_O_SUSPEND_SECCOMP | sys_security::PTRACE_O_TRACESYSGOOD,
        )
        .map_err(|source| SecurityDumpError::SuspendSeccomp { source })?;
    }
    if sec.seccomp == SeccompMode::Filter {
        sec.seccomp_filters = seccomp::read_filters(&seccomp::LiveFilters(tid), filter_count)
            .map_err(SecurityDumpError::Seccomp)?;
    }

    // The injection window: a borrowed syscall instruction, every signal
    // blocked, the original registers and mask put back whatever happens.
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let vdso = crate::procfs::parse_maps(&maps)
        .ok()
        .and_then(|m| m.into_iter().find(|m| m.name == "[vdso]"))
        .ok_or(SecurityDumpError::NoVdso)?;
    let mut code = vec![0u8; (vdso.end - vdso.start) as usize];
    t.read_mem(vdso.start, &mut code)?;
    let off = find_syscall_insn(&code).ok_or(SecurityDumpError::NoVdso)? as u64;
    let regs = t.regs()?;
    let mask = t.get_sigmask()?;
    t.set_syscall_ip(vdso.start + off);
    t.set_sigmask(!0)?;
    let injected = injected_state(t, sec.creds.uids[0], sec.creds.gids[0]);
    let put_back = t.set_regs(&regs).and_then(|()| t.set_sigmask(mask));
    t.end_injection();
    sec.creds.securebits = injected?;
    put_back?;
    Ok(sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ptrace::Regs;

    struct Fake {
        calls: Vec<(i64, Vec<u64>)>,
        answer: i64,
    }

    impl Tracer for Fake {
        fn pid(&self) -> i32 {
            7
        }
        fn regs(&self) -> Result<Regs, TraceError> {
            unimplemented!()
        }
        fn set_regs(&mut self, _: &Regs) -> Result<(), TraceError> {
            Ok(())
        }
        fn syscall(&mut self, nr: i64, args: &[u64]) -> Result<i64, TraceError> {
            self.calls.push((nr, args.to_vec()));
            Ok(self.answer)
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
    fn securebits_come_from_an_injected_prctl() {
        let mut t = Fake {
            calls: vec![],
            answer: 0x2f,
        };
        assert_eq!(read_securebits(&mut t).unwrap(), 0x2f);
        assert_eq!(t.calls, vec![(libc::SYS_prctl, vec![27, 0, 0, 0, 0])]);
        let mut t = Fake {
            calls: vec![],
            answer: -(libc::EPERM as i64),
        };
        assert!(matches!(
            read_securebits(&mut t).unwrap_err(),
            SecurityDumpError::Injected {
                errno: libc::EPERM,
                ..
            }
        ));
    }

    #[test]
    fn a_denied_probe_refuses_naming_landlock() {
        let e = landlock_verdict(ProbeOutcome::Denied {
            errno: libc::EPERM,
            call: "kcmp(KCMP_VM)",
            others: vec![],
        })
        .unwrap_err();
        assert!(e.is_confinement());
        assert!(
            e.to_string().contains("Landlock denied kcmp(KCMP_VM)"),
            "{e}"
        );
        assert!(e.to_string().contains("Landlock domain"), "{e}");
        // With AppArmor active the probe cannot tell who denied it.
        let e = landlock_verdict(ProbeOutcome::Denied {
            errno: libc::EACCES,
            call: "kcmp(KCMP_VM)",
            others: vec!["apparmor".into()],
        })
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("Landlock or another LSM (apparmor) denied kcmp(KCMP_VM)"),
            "{e}"
        );
        assert!(
            text.contains("policy of apparmor denies it ptrace read"),
            "{e}"
        );
        let e = landlock_verdict(ProbeOutcome::Inconclusive { why: "x".into() }).unwrap_err();
        assert!(e.is_confinement());
        assert!(e.to_string().contains("Landlock"));
        assert!(landlock_verdict(ProbeOutcome::Outside).is_ok());
        assert!(landlock_verdict(ProbeOutcome::LandlockInactive).is_ok());
    }
}
