//! Before a dump: is the PID something ckpt can checkpoint at all? Each
//! kind of impossible target (no such process, ckpt itself, init, a kernel
//! thread, a zombie, another user's process) gets its own message instead
//! of the raw EPERM/ESRCH that PTRACE_SEIZE would give.
//!
//! `read_facts` reads /proc; `refusal` decides, and is unit-tested.

/// PF_KTHREAD in the flags field of /proc/PID/stat (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;
/// CAP_SYS_PTRACE: may trace any user's process.
const CAP_SYS_PTRACE: u32 = 19;

/// What /proc says about the target and the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetFacts {
    pub pid: i32,
    /// The target's command name; `None` when /proc/PID does not exist.
    pub comm: Option<String>,
    pub kernel_thread: bool,
    pub zombie: bool,
    pub parent: i32,
    /// The target's real UID.
    pub uid: Option<u32>,
    pub caller_pid: i32,
    pub caller_uid: u32,
    pub caller_may_trace_anyone: bool,
}

/// The reason the target cannot be dumped, or `None` to go on.
pub fn refusal(f: &TargetFacts) -> Option<String> {
    let pid = f.pid;
    let Some(comm) = &f.comm else {
        return Some(format!(
            "cannot dump pid {pid}: no such process; check the PID (`ps -p {pid}`)"
        ));
    };
    if pid == f.caller_pid {
        return Some(format!(
            "cannot dump pid {pid}: that is this ckpt process itself; give the PID of the process to checkpoint"
        ));
    }
    if pid == 1 {
        return Some(format!(
            "cannot dump pid 1 ({comm}): it is the init process, which the kernel does not let anyone trace; checkpoint a process running under it"
        ));
    }
    if f.kernel_thread {
        return Some(format!(
            "cannot dump pid {pid} ({comm}): it is a kernel thread, with no user memory to checkpoint; give the PID of a user process"
        ));
    }
    if f.zombie {
        return Some(format!(
            "cannot dump pid {pid} ({comm}): it has already exited (a zombie waiting for its parent, pid {}, to reap it); nothing is left to checkpoint",
            f.parent
        ));
    }
    match f.uid {
        Some(uid) if uid != f.caller_uid && !f.caller_may_trace_anyone => Some(format!(
            "cannot dump pid {pid} ({comm}): it belongs to uid {uid} and you are uid {}; run ckpt as that user or as root",
            f.caller_uid
        )),
        _ => None,
    }
}

/// Reads the facts for `pid` from /proc (missing fields stay default).
pub fn read_facts(pid: i32) -> TargetFacts {
    let own = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let caller_uid = status_uid(&own).unwrap_or(u32::MAX);
    let cap_eff = status_field(&own, "CapEff")
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .unwrap_or(0);
    let mut f = TargetFacts {
        pid,
        caller_pid: std::process::id() as i32,
        caller_uid,
        caller_may_trace_anyone: cap_eff & (1 << CAP_SYS_PTRACE) != 0,
        ..TargetFacts::default()
    };
    if pid <= 0 {
        return f;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f;
    };
    if let Some((comm, state, parent, flags)) = parse_stat(&stat) {
        f.comm = Some(comm);
        f.zombie = state == 'Z';
        f.parent = parent;
        f.kernel_thread = flags & PF_KTHREAD != 0;
    }
    f.uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| status_uid(&s));
    f
}

/// `(comm, state, ppid, flags)` from a /proc/PID/stat line.
fn parse_stat(stat: &str) -> Option<(String, char, i32, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the comm: state(3) ppid(4) pgrp session tty_nr tpgid flags(9).
    let state = rest.first()?.chars().next()?;
    let parent = rest.get(1)?.parse().ok()?;
    let flags = rest.get(6)?.parse().ok()?;
    Some((comm, state, parent, flags))
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

fn status_uid(status: &str) -> Option<u32> {
    status_field(status, "Uid")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordinary() -> TargetFacts {
        TargetFacts {
            pid: 4242,
            comm: Some("worker".into()),
            parent: 1,
            uid: Some(1000),
            caller_pid: 77,
            caller_uid: 1000,
            ..TargetFacts::default()
        }
    }

    #[test]
    fn an_ordinary_process_of_the_caller_may_be_dumped() {
        assert_eq!(refusal(&ordinary()), None);
    }

    #[test]
    fn each_impossible_target_has_its_own_message() {
        let cases: Vec<(TargetFacts, &str)> = vec![
            (
                TargetFacts {
                    comm: None,
                    ..ordinary()
                },
                "no such process",
            ),
            (
                TargetFacts {
                    caller_pid: 4242,
                    ..ordinary()
                },
                "ckpt process itself",
            ),
            (
                TargetFacts {
                    pid: 1,
                    ..ordinary()
                },
                "init process",
            ),
            (
                TargetFacts {
                    kernel_thread: true,
                    ..ordinary()
                },
                "kernel thread",
            ),
            (
                TargetFacts {
                    zombie: true,
                    ..ordinary()
                },
                "zombie",
            ),
            (
                TargetFacts {
                    uid: Some(0),
                    ..ordinary()
                },
                "belongs to uid 0",
            ),
        ];
        for (facts, words) in cases {
            let m = refusal(&facts).unwrap_or_default();
            assert!(m.contains(words), "{facts:?}: {m}");
        }
    }

    #[test]
    fn cap_sys_ptrace_may_dump_another_users_process() {
        let f = TargetFacts {
            uid: Some(0),
            caller_may_trace_anyone: true,
            ..ordinary()
        };
        assert_eq!(refusal(&f), None);
    }

    #[test]
    fn stat_with_spaces_and_parens_in_comm_parses() {
        let s = "2 (kth (x) d) S 0 0 0 0 -1 2129984 0 0";
        assert_eq!(parse_stat(s), Some(("kth (x) d".into(), 'S', 0, 2_129_984)));
        assert!(parse_stat("garbage").is_none());
    }
}
