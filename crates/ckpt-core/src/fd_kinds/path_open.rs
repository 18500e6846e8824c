//! What the kinds opened by path share at restore: the open flags kept
//! from the dumped ones, and the open inside the task.

use crate::error::RestoreError;
use crate::model::OpenFd;
use crate::restore::Rebuilder;

/// The open(2) flags of `o` that are reapplied when it is reopened by path.
pub fn reopen_flags(o: &OpenFd) -> u64 {
    let keep = (libc::O_ACCMODE
        | libc::O_APPEND
        | libc::O_NONBLOCK
        | libc::O_DIRECTORY
        | libc::O_NOFOLLOW
        | libc::O_DSYNC
        | libc::O_SYNC
        | libc::O_NOATIME
        | libc::O_LARGEFILE
        | libc::O_PATH
        | libc::O_DIRECT) as u32;
    ((o.flags & keep) | libc::O_CLOEXEC as u32) as u64
}

/// Opens `path` for `o` inside the task at a temporary number.
pub fn open(
    r: &mut Rebuilder,
    scratch: u64,
    o: &OpenFd,
    path: &str,
    what: &str,
) -> Result<u64, RestoreError> {
    r.open_in_task(
        scratch,
        path,
        reopen_flags(o),
        &format!("{what} of fd {}", o.fd),
    )
}
