//! Per-task state that the security steps read from /proc of another
//! user's task, where ckpt's own root may lack the capability the syscall
//! route needs: the resource limits (`prlimit64` on a task of another uid
//! needs CAP_SYS_RESOURCE, which a root confined by its bounding set may
//! not have, while `/proc/PID/limits` is world-readable). The security
//! record itself is assembled by `security_dump::capture`.

use crate::error::DumpError;
use image_format::records::TaskSecurityRecord;
use lsm_labels::persist::Persist;
use lsm_labels::{taskstate, HostView};

/// Reads the /proc part of the security state of thread `tid` of `pid`
/// (no securebits, no seccomp filters, no Landlock probe: see
/// `security_dump::capture`, which the dump uses).
pub fn read_task_security(pid: i32, tid: i32) -> Result<TaskSecurityRecord, DumpError> {
    let (sec, _filters, _notes) = taskstate::read_thread_security(&HostView::live(), pid, tid)
        .map_err(|e| DumpError::Security {
            pid,
            detail: e.to_string(),
        })?;
    Ok(sec.to_record())
}

/// `RLIM_INFINITY`.
const UNLIMITED: u64 = u64::MAX;
/// Resources listed in /proc/PID/limits, in resource-number order.
const RLIMIT_COUNT: usize = 16;

/// Parses the text of `/proc/PID/limits`: (resource, soft, hard) for each
/// of the 16 resources, in resource-number order (the kernel prints them
/// in that order with fixed-width columns: name 25, soft 20, hard 20).
pub fn parse_limits(text: &str) -> Result<Vec<(u32, u64, u64)>, String> {
    let value = |s: &str| -> Result<u64, String> {
        match s.trim() {
            "unlimited" => Ok(UNLIMITED),
            v => v
                .parse()
                .map_err(|_| format!("limits: {v:?} is not a number")),
        }
    };
    let mut out = Vec::with_capacity(RLIMIT_COUNT);
    for (i, line) in text.lines().skip(1).take(RLIMIT_COUNT).enumerate() {
        let soft = line
            .get(26..46)
            .ok_or_else(|| format!("limits: short line {line:?}"))?;
        let hard = line
            .get(47..67)
            .ok_or_else(|| format!("limits: short line {line:?}"))?;
        out.push((i as u32, value(soft)?, value(hard)?));
    }
    if out.len() != RLIMIT_COUNT {
        return Err(format!(
            "limits: {} resources, expected {RLIMIT_COUNT}",
            out.len()
        ));
    }
    Ok(out)
}

/// The resource limits of `pid` from `/proc/PID/limits`.
pub fn read_limits(pid: i32) -> std::io::Result<Vec<(u32, u64, u64)>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    parse_limits(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_limits_parse_like_getrlimit() {
        let text = std::fs::read_to_string("/proc/self/limits").unwrap();
        let l = super::parse_limits(&text).unwrap();
        assert_eq!(l.len(), 16);
        let nofile =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!((l[7].1, l[7].2), nofile);
        let stack =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK).unwrap();
        assert_eq!((l[3].1, l[3].2), stack);
        assert!(super::parse_limits("Limit\nMax cpu time              x").is_err());
    }
}
