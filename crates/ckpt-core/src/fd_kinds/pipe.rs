//! `pipe`: a pipe whose both ends the task holds is recreated with its
//! buffered bytes, capacity and each end's status flags; a pipe end at fd
//! 0-2 whose other end is elsewhere becomes `inherited stdio`; any other
//! pipe is refused (`pipe to another process`, `pipe shared with another
//! process`).

use std::os::unix::fs::OpenOptionsExt;

use super::{Assign, Captured, FdKind, FdProbe};
use crate::error::{DumpError, RestoreError};
use crate::model::{FdTarget, OpenFd, PipeState};
use crate::ptrace::Tracer;
use crate::restore::Rebuilder;

pub struct Pipe;

fn mode(fl: u32) -> u32 {
    fl & libc::O_ACCMODE as u32
}
fn reads(fl: u32) -> bool {
    mode(fl) == libc::O_RDONLY as u32 || mode(fl) == libc::O_RDWR as u32
}
fn writes(fl: u32) -> bool {
    mode(fl) == libc::O_WRONLY as u32 || mode(fl) == libc::O_RDWR as u32
}

impl FdKind for Pipe {
    fn owns(&self, t: &FdTarget) -> bool {
        matches!(t, FdTarget::Pipe { .. })
    }

    fn classify(&self, p: &FdProbe) -> Option<FdTarget> {
        let ino = p.link.strip_prefix("pipe:[")?.strip_suffix(']')?;
        Some(FdTarget::Pipe {
            ino: ino.parse().unwrap_or(0),
        })
    }

    /// Both ends held -> recreate; otherwise only stdio is handed over.
    /// (An O_RDWR fd, a pipe reopened through /proc/PID/fd as bash's
    /// `exec 3<> <(:)` does, is both ends at once.)
    fn capture(&self, pid: i32, fds: &mut [OpenFd], c: &mut Captured) -> Result<(), DumpError> {
        let ends: Vec<(i32, u64, u32)> = fds
            .iter()
            .filter_map(|o| match o.target {
                FdTarget::Pipe { ino } => Some((o.fd, ino, o.flags)),
                _ => None,
            })
            .collect();
        let refuse = |fd: i32, what: String| DumpError::UnsupportedFd { pid, fd, what };
        for &(fd, ino, _) in &ends {
            let has_read = ends.iter().any(|&(_, i, fl)| i == ino && reads(fl));
            let has_write = ends.iter().any(|&(_, i, fl)| i == ino && writes(fl));
            if has_read && has_write {
                if pipe_held_elsewhere(pid, ino) {
                    return Err(refuse(fd, "pipe shared with another process".into()));
                }
                if c.pipes.iter().any(|p| p.ino == ino) {
                    continue;
                }
                let reader = ends
                    .iter()
                    .find(|&&(_, i, fl)| i == ino && reads(fl))
                    .map(|&(f, _, _)| f)
                    .unwrap_or(fd);
                let data = peek_pipe(pid, reader).map_err(|e| {
                    refuse(
                        reader,
                        format!("pipe whose buffered bytes cannot be read ({e})"),
                    )
                })?;
                let capacity = pipe_capacity(pid, reader).map_err(|e| {
                    refuse(reader, format!("pipe whose capacity cannot be read ({e})"))
                })?;
                c.pipes.push(PipeState {
                    ino,
                    data,
                    capacity,
                });
            } else if fd <= 2 {
                if let Some(o) = fds.iter_mut().find(|o| o.fd == fd) {
                    o.target = FdTarget::InheritedStdio;
                }
            } else {
                return Err(refuse(fd, "pipe to another process".into()));
            }
        }
        Ok(())
    }

    fn restore_order(&self) -> u8 {
        0
    }

    fn open(
        &self,
        r: &mut Rebuilder,
        scratch: u64,
        o: &OpenFd,
        assign: &mut Assign,
    ) -> Result<(), RestoreError> {
        let FdTarget::Pipe { ino } = o.target else {
            return Ok(());
        };
        if assign.iter().any(|(t, _)| *t == o.fd) {
            return Ok(()); // opened with an earlier end of the same pipe
        }
        let st = r.state;
        let p = st.pipes.iter().find(|p| p.ino == ino).ok_or_else(|| {
            RestoreError::BadImage(format!(
                "fd {} names pipe {ino}, which is not recorded",
                o.fd
            ))
        })?;
        open_pipe(r, scratch, p, assign)
    }

    /// Each end's status flags (the pipe was created without any).
    fn after_placement(&self, r: &mut Rebuilder, o: &OpenFd) -> Result<(), RestoreError> {
        let fl = o.flags & (libc::O_NONBLOCK | libc::O_APPEND) as u32;
        r.call(
            &format!("fcntl(F_SETFL) of fd {}", o.fd),
            libc::SYS_fcntl,
            &[o.fd as u64, libc::F_SETFL as u64, fl as u64],
        )?;
        Ok(())
    }
}

/// Create pipe `p` in the task, give it its capacity and bytes, and note
/// which temporary each of its ends in the task is.
fn open_pipe(
    r: &mut Rebuilder,
    scratch: u64,
    p: &PipeState,
    assign: &mut Assign,
) -> Result<(), RestoreError> {
    let st = r.state;
    r.call("pipe2", libc::SYS_pipe2, &[scratch, 0])?;
    let mut b = [0u8; 8];
    let res = r.t.read_mem(scratch, &mut b);
    r.trace(res)?;
    let rfd = i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64;
    let wfd = i32::from_le_bytes([b[4], b[5], b[6], b[7]]) as u64;
    let size = (p.capacity as u64).max(p.data.len() as u64);
    if size > 65536 || (p.capacity != 0 && p.capacity != 65536) {
        r.call(
            "fcntl(F_SETPIPE_SZ)",
            libc::SYS_fcntl,
            &[wfd, libc::F_SETPIPE_SZ as u64, size],
        )?;
    }
    if !p.data.is_empty() {
        let w = r.t.write_mem(scratch, &p.data);
        r.trace(w)?;
        let mut done = 0u64;
        while done < p.data.len() as u64 {
            done += r.call(
                "write pipe",
                libc::SYS_write,
                &[wfd, scratch + done, p.data.len() as u64 - done],
            )?;
        }
    }
    for o in st
        .fds
        .iter()
        .filter(|o| o.target == FdTarget::Pipe { ino: p.ino })
    {
        let acc = mode(o.flags);
        let tmp = if acc == libc::O_RDWR as u32 {
            // Both ends in one fd: reopen the new pipe read-write through
            // procfs, as the original was. The path is ckpt's own (not
            // from the image) and names the pipe the task just created.
            let path = format!("/proc/thread-self/fd/{rfd}");
            r.open_own_path_in_task(scratch, &path, libc::O_RDWR as u64, "pipe")?
        } else if acc == libc::O_RDONLY as u32 {
            rfd
        } else {
            wfd
        };
        assign.push((o.fd, tmp as i32));
    }
    // An end no fd holds is closed by the placement (it is no target).
    for tmp in [rfd, wfd] {
        if !assign.iter().any(|(_, t)| *t as u64 == tmp) {
            r.call("close", libc::SYS_close, &[tmp])?;
        }
    }
    Ok(())
}

/// Whether a process other than `pid` holds an fd on pipe inode `ino`
/// (a restored copy of the pipe would silently cut it off). Scans
/// /proc/*/fd, bounded; unreadable entries (other users' processes when
/// unprivileged) are skipped, since ptrace rules already keep those apart.
fn pipe_held_elsewhere(pid: i32, ino: u64) -> bool {
    let want = format!("pipe:[{ino}]");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs
        .flatten()
        .take(1 << 20)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|&p| p != pid && p != std::process::id() as i32)
        .any(|p| {
            std::fs::read_dir(format!("/proc/{p}/fd"))
                .map(|fds| {
                    fds.flatten().take(1 << 20).any(|f| {
                        std::fs::read_link(f.path())
                            .map(|l| l.as_os_str() == want.as_str())
                            .unwrap_or(false)
                    })
                })
                .unwrap_or(false)
        })
}

/// The capacity of the pipe behind fd `fd` of `pid` (F_GETPIPE_SZ on a
/// reopened read end: the capacity belongs to the pipe, not to an fd).
fn pipe_capacity(pid: i32, fd: i32) -> std::io::Result<u32> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/{fd}"))?;
    let n = nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GETPIPE_SZ)?;
    Ok(n as u32)
}

/// Copy the bytes buffered in the pipe read end `fd` of `pid` without
/// consuming them: tee(2) into a pipe of our own, then read that.
fn peek_pipe(pid: i32, fd: i32) -> std::io::Result<Vec<u8>> {
    use nix::fcntl::{FcntlArg, OFlag};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/{fd}"))?;
    let n = crate::sys::fionread(&f)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let (rd, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
    let _ = nix::fcntl::fcntl(&w, FcntlArg::F_SETPIPE_SZ(n.max(4096) as libc::c_int));
    let copied = crate::sys::tee_nonblock(&f, &w, n)?;
    let mut rf = std::fs::File::from(rd);
    let mut buf = vec![0u8; copied];
    std::io::Read::read_exact(&mut rf, &mut buf)?;
    if copied != n {
        return Err(std::io::Error::other(format!(
            "copied {copied} of {n} bytes"
        )));
    }
    Ok(buf)
}
