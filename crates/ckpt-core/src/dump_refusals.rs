//! What a dump refuses because ckpt cannot restore it yet (DESIGN 8): the
//! checks that run on the frozen task before anything is written, each
//! naming the task, the object and the way out. A dump that passes them
//! has nothing left that a restore would silently drop.
//!
//! The checks read /proc text only (through `ProcSource` where the file is
//! the task's own); they never change the task.

use crate::error::DumpError;
use crate::procfs::{self, ProcSource};

/// Every kind of state a dump refuses, by the name its message uses.
/// docs/state-coverage.md has a row for each (a unit test checks it).
pub const REFUSED_KINDS: &[&str] = &[
    "child process",
    "thread",
    "stopped task",
    "pending signal",
    "POSIX timer of another thread",
    "POSIX record lock",
    "flock lock",
    "OFD lock",
    "lease",
    "deleted working directory",
    "working directory inside /proc",
    "pty master",
    "memfd",
    "socket",
    "anon_inode fd",
    "deleted file",
    "named pipe",
    "special file",
    "pipe to another process",
    "pipe shared with another process",
    "strict seccomp",
    "Landlock ruleset",
    "unknown fd target",
];

fn refused(pid: i32, what: String, way_out: &str) -> DumpError {
    DumpError::Refused {
        pid,
        what,
        way_out: way_out.to_string(),
    }
}

/// The refusal of a task in group-stop.
pub fn stopped_refusal(pid: i32) -> DumpError {
    refused(
        pid,
        "it is a stopped task (SIGSTOP or job control), and a stopped task cannot be restored stopped yet".into(),
        &format!("continue it with `kill -CONT {pid}` and dump again"),
    )
}

/// Refuses a task in group-stop before it is seized: seizing and injecting
/// would resume it.
pub fn check_not_stopped(pid: i32) -> Result<(), DumpError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    if state == Some("T") {
        return Err(stopped_refusal(pid));
    }
    Ok(())
}

/// Signals pending for the task (per-thread `SigPnd` | process-wide `ShdPnd`).
pub fn pending_signals(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    pending_in_status(&status)
}

/// Pending signals (`SigPnd` | `ShdPnd`) in /proc/PID/status text.
pub fn pending_in_status(status: &str) -> u64 {
    ["SigPnd", "ShdPnd"]
        .iter()
        .filter_map(|k| procfs::status_field(status, k))
        .filter_map(|v| u64::from_str_radix(v, 16).ok())
        .fold(0, |a, b| a | b)
}

fn signal_names(mask: u64) -> String {
    (1..=64u32)
        .filter(|s| mask & (1u64 << (s - 1)) != 0)
        .map(|s| match nix::sys::signal::Signal::try_from(s as i32) {
            Ok(sig) => sig.as_str().to_string(),
            Err(_) => format!("signal {s}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The task-level checks, on the frozen task whose /proc/PID/status text is
/// `status`.
pub fn check_task(pid: i32, proc: &dyn ProcSource, status: &str) -> Result<(), DumpError> {
    check_children(pid, proc)?;
    let pending = pending_in_status(status);
    if pending != 0 {
        return Err(refused(
            pid,
            format!(
                "it has a pending signal ({}), which is not restored yet",
                signal_names(pending)
            ),
            "let the process take it (unblock it) and dump again",
        ));
    }
    let cwd = proc.read_link("cwd").unwrap_or_default();
    if let Some(what) = cwd_refusal(&cwd) {
        return Err(refused(
            pid,
            what,
            "chdir to an existing directory outside /proc and dump again",
        ));
    }
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    if let Some(l) = locks_of_pid(&locks, pid).first() {
        return Err(refused(
            pid,
            format!("it holds a {l}, which is not restored yet"),
            "release the lock and dump again",
        ));
    }
    Ok(())
}

fn check_children(pid: i32, proc: &dyn ProcSource) -> Result<(), DumpError> {
    let children = proc
        .read_text(&format!("task/{pid}/children"))
        .unwrap_or_default();
    if let Some(child) = children.split_whitespace().next() {
        let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
        return Err(refused(
            pid,
            format!(
                "pid {pid} has child {child} ({}); process trees are not supported yet",
                comm.trim_end()
            ),
            "wait for the child to end, or dump a process without children",
        ));
    }
    Ok(())
}

/// Why a working directory cannot be restored, if it cannot.
pub fn cwd_refusal(cwd: &str) -> Option<String> {
    if cwd.ends_with(" (deleted)") {
        return Some(format!(
            "its working directory {cwd} is a deleted working directory"
        ));
    }
    if cwd == "/proc" || cwd.starts_with("/proc/") {
        return Some(format!(
            "its working directory {cwd} is a working directory inside /proc, which does not exist for the restored process"
        ));
    }
    None
}

/// The kind of a /proc/locks or fdinfo `lock:` line, as `REFUSED_KINDS`
/// names it, with its details.
fn lock_kind(fields: &[&str]) -> Option<String> {
    let (kind, mode) = (fields.first()?, fields.get(2).unwrap_or(&""));
    let name = match *kind {
        "POSIX" => "POSIX record lock",
        "FLOCK" => "flock lock",
        "OFDLCK" => "OFD lock",
        "LEASE" | "BREAKING" | "BREAKING_LEASE" | "DELEG" => "lease",
        _ => return Some(format!("file lock of kind {kind}")),
    };
    Some(format!("{name} ({mode})"))
}

/// The locks in /proc/locks text whose owner is `pid` (waiters, the `->`
/// lines, are not held).
pub fn locks_of_pid(text: &str, pid: i32) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().skip(1).collect();
            if f.first() == Some(&"->") || f.get(3)?.parse::<i32>().ok()? != pid {
                return None;
            }
            lock_kind(&f).map(|k| format!("{k} on inode {}", f.get(4).unwrap_or(&"?")))
        })
        .collect()
}

/// The locks and leases of an fd, from its fdinfo `lock:` lines.
pub fn fd_locks(fdinfo: &str) -> Vec<String> {
    fdinfo
        .lines()
        .filter_map(|l| l.strip_prefix("lock:"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().skip(1).collect();
            if f.first() == Some(&"->") {
                return None;
            }
            lock_kind(&f)
        })
        .collect()
}

/// The fd-level checks that come before the fd is classified: locks and
/// leases on it, memfds, pty masters. `link` is its /proc/PID/fd target.
pub fn check_fd(pid: i32, fd: i32, link: &str, fdinfo: &str) -> Result<(), DumpError> {
    let unsupported = |what: String| DumpError::UnsupportedFd { pid, fd, what };
    if let Some(l) = fd_locks(fdinfo).first() {
        return Err(unsupported(format!("{l} held on {link}")));
    }
    if let Some(name) = link.strip_prefix("/memfd:") {
        return Err(unsupported(format!(
            "memfd {}",
            name.trim_end_matches(" (deleted)")
        )));
    }
    if is_pty_master(pid, fd, link) {
        return Err(unsupported(format!("pty master {link}")));
    }
    // A Landlock ruleset is a confinement refusal (exit 3), made by the caller.
    if link == lsm_labels::taskstate::LANDLOCK_RULESET_LINK {
        return Ok(());
    }
    if let Some(kind) = link.strip_prefix("anon_inode:") {
        let kind = kind.trim_matches(|c| c == '[' || c == ']');
        let name = match kind {
            "eventpoll" => "epoll",
            k => k,
        };
        return Err(unsupported(format!("{name} (anon_inode fd)")));
    }
    Ok(())
}

fn is_pty_master(pid: i32, fd: i32, link: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    if link == "/dev/ptmx" || link == "/dev/pts/ptmx" {
        return true;
    }
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
        .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == procfs::makedev(5, 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_are_found_by_owner_and_waiters_skipped() {
        let t = "1: POSIX  ADVISORY  WRITE 4242 08:01:1234 0 EOF\n\
                 1: -> POSIX  ADVISORY  WRITE 99 08:01:1234 0 EOF\n\
                 2: FLOCK  ADVISORY  WRITE 4243 08:01:77 0 EOF\n\
                 3: OFDLCK ADVISORY  READ  -1 08:01:78 0 EOF\n";
        assert_eq!(
            locks_of_pid(t, 4242),
            vec!["POSIX record lock (WRITE) on inode 08:01:1234"]
        );
        assert!(locks_of_pid(t, 99).is_empty());
        assert_eq!(locks_of_pid(t, 4243).len(), 1);
    }

    #[test]
    fn fdinfo_lock_lines_name_their_kind() {
        let t =
            "pos:\t0\nflags:\t02\nmnt_id:\t1\nlock:\t1: OFDLCK ADVISORY  WRITE -1 08:01:78 0 EOF\n";
        assert_eq!(fd_locks(t), vec!["OFD lock (WRITE)"]);
        let t = "lock:\t1: LEASE  ACTIVE    READ  7 08:01:78 0 EOF\n";
        assert_eq!(fd_locks(t), vec!["lease (READ)"]);
        assert!(fd_locks("pos:\t0\n").is_empty());
    }

    #[test]
    fn cwd_and_pending() {
        assert!(cwd_refusal("/tmp/x (deleted)").is_some());
        assert!(cwd_refusal("/proc/12/fdinfo").is_some());
        assert!(cwd_refusal("/procfoo").is_none());
        assert_eq!(
            pending_in_status("SigPnd:\t0000000000000010\nShdPnd:\t0000000000000001\n"),
            0x11
        );
        assert_eq!(signal_names(0x11), "SIGHUP, SIGTRAP");
    }
}
