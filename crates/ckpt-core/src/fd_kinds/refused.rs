//! The fds no kind restores, refused at dump by name before the target is
//! harmed (DESIGN 8): sockets, Landlock rulesets (a confinement refusal),
//! deleted files, FIFOs, other special files and unknown link targets.
//! (Locks, memfds, pty masters and anon inodes are refused earlier, by
//! `dump_refusals::check_fd`.)

use super::FdProbe;
use crate::error::DumpError;
use std::os::unix::fs::FileTypeExt;

fn unsupported(p: &FdProbe, what: String) -> DumpError {
    DumpError::UnsupportedFd {
        pid: p.pid,
        fd: p.fd,
        what,
    }
}

/// Refusals decided from the link before any kind classifies the fd.
pub fn check(p: &FdProbe) -> Result<(), DumpError> {
    if let Some(ino) = p
        .link
        .strip_prefix("socket:[")
        .and_then(|r| r.strip_suffix(']'))
    {
        return Err(unsupported(p, crate::dump::socket_kind(p.pid, ino)));
    }
    if p.link == lsm_labels::taskstate::LANDLOCK_RULESET_LINK {
        return Err(DumpError::Confinement {
            pid: p.pid,
            what: format!("fd {} is a Landlock ruleset, so it may be inside a Landlock domain ckpt cannot capture", p.fd),
        });
    }
    if p.link.starts_with('/') && p.link.ends_with(" (deleted)") {
        return Err(unsupported(p, format!("deleted file {}", p.link)));
    }
    Ok(())
}

/// The refusal of an fd no kind claimed.
pub fn unclaimed(p: &FdProbe) -> DumpError {
    if !p.link.starts_with('/') {
        return unsupported(p, format!("unknown fd target {}", p.link));
    }
    if p.md.is_some_and(|m| m.file_type().is_fifo()) {
        return unsupported(p, format!("named pipe {}", p.link));
    }
    unsupported(p, format!("special file {}", p.link))
}
