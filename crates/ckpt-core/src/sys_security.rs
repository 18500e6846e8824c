//! Raw calls of the security steps that neither nix nor the `Tracer` seam
//! wrap: reading a tracee's seccomp filters (`PTRACE_SECCOMP_GET_FILTER`),
//! setting ptrace options nix does not know (`PTRACE_O_SUSPEND_SECCOMP`),
//! and starting the Landlock probe's peer process. The only unsafe code of
//! the security side of ckpt-core; everything here has a safe API.
#![allow(unsafe_code)]

use std::io;

/// `PTRACE_SECCOMP_GET_FILTER` (include/uapi/linux/ptrace.h).
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
/// `PTRACE_O_TRACESYSGOOD`: system-call stops report SIGTRAP | 0x80, so
/// they are told from real SIGTRAPs (the injection in `ptrace` needs it:
/// set it with every other option).
pub const PTRACE_O_TRACESYSGOOD: libc::c_int = 1;
/// `PTRACE_O_EXITKILL`.
pub const PTRACE_O_EXITKILL: libc::c_int = 1 << 20;
/// `PTRACE_O_SUSPEND_SECCOMP`: the tracee's seccomp filters are not applied
/// while it is traced (needs CAP_SYS_ADMIN and an unconfined tracer).
pub const PTRACE_O_SUSPEND_SECCOMP: libc::c_int = 1 << 21;
/// Largest classic BPF program the kernel accepts (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;
/// Size of one `struct sock_filter`.
pub const SOCK_FILTER_LEN: usize = 8;

/// `ptrace(PTRACE_SECCOMP_GET_FILTER, pid, index, buf)`: the classic BPF
/// program of seccomp filter `index` of tracee `pid` (0 is the oldest:
/// `get_nth_filter` counts back from the newest), as raw `sock_filter`
/// bytes; `None` past the last filter (ENOENT).
///
/// # References
/// ptrace(2), kernel/seccomp.c `seccomp_get_filter`.
///
/// # Errors
/// EACCES without CAP_SYS_ADMIN or when the tracer is itself under seccomp;
/// EINVAL when the task is not in filter mode; EMEDIUMTYPE for a filter
/// without a classic program; ESRCH when `pid` is not our stopped tracee.
pub fn seccomp_get_filter(pid: i32, index: u64) -> io::Result<Option<Vec<u8>>> {
    // SAFETY: with a NULL buffer the kernel only returns the instruction
    // count and writes nothing.
    let n = unsafe {
        libc::ptrace(
            PTRACE_SECCOMP_GET_FILTER,
            pid,
            index as *mut libc::c_void,
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(None),
            _ => Err(e),
        };
    }
    let count = n as usize;
    if count == 0 || count > BPF_MAXINSNS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "seccomp filter {index} has {count} instructions (1..={BPF_MAXINSNS} expected)"
            ),
        ));
    }
    let mut buf = vec![0u8; count * SOCK_FILTER_LEN];
    // SAFETY: `buf` holds `count` sock_filter structs, the size the kernel
    // just reported; the kernel writes at most that many (filters are
    // immutable once attached, so the size cannot grow meanwhile).
    let m = unsafe {
        libc::ptrace(
            PTRACE_SECCOMP_GET_FILTER,
            pid,
            index as *mut libc::c_void,
            buf.as_mut_ptr().cast::<libc::c_void>(),
        )
    };
    if m < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate((m as usize).min(count) * SOCK_FILTER_LEN);
    Ok(Some(buf))
}

/// `ptrace(PTRACE_SETOPTIONS, pid, 0, options)` with the raw option bits
/// (replaces every option previously set).
///
/// # Errors
/// EPERM for `PTRACE_O_SUSPEND_SECCOMP` without CAP_SYS_ADMIN or when the
/// tracer is itself under seccomp; ESRCH when `pid` is not our stopped
/// tracee.
pub fn ptrace_set_options(pid: i32, options: libc::c_int) -> io::Result<()> {
    // SAFETY: PTRACE_SETOPTIONS takes integers only.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SETOPTIONS,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            options as libc::c_long as *mut libc::c_void,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Starts the Landlock probe's peer: a child process that sets all its
/// uids to `uid` and all its gids to `gid` (no supplementary groups when
/// the caller may drop them), makes itself dumpable and ptrace-able by any
/// process (Yama), asks to be killed when its parent dies, and then waits
/// in `pause()` until it is killed. It runs no code of ckpt: only raw
/// system calls with arguments computed before the fork. Exit codes: 2
/// setresgid failed, 3 setresuid failed.
///
/// The caller must `SIGKILL` and reap it.
///
/// # Errors
/// The kernel's errno from clone3.
pub fn spawn_probe_peer(uid: u32, gid: u32) -> io::Result<i32> {
    use crate::sys::CloneArgs;
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    let (u, g) = (uid as libc::c_long, gid as libc::c_long);
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a
    // copy of our address space. The child only issues raw system calls
    // (no allocation, no locks, no libc state) and never returns.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret == 0 {
        // SAFETY: raw system calls in the forked child, see above.
        unsafe {
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL,
                0,
                0,
                0,
            );
            // Fails harmlessly (EPERM) without CAP_SETGID: groups do not
            // take part in the ptrace access check.
            libc::syscall(libc::SYS_setgroups, 0, 0);
            if libc::syscall(libc::SYS_setresgid, g, g, g) != 0 {
                libc::syscall(libc::SYS_exit_group, 2);
            }
            if libc::syscall(libc::SYS_setresuid, u, u, u) != 0 {
                libc::syscall(libc::SYS_exit_group, 3);
            }
            libc::syscall(libc::SYS_prctl, libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
            // PR_SET_PTRACER_ANY; EINVAL without Yama, which is fine.
            libc::syscall(libc::SYS_prctl, 0x5961_6d61, -1 as libc::c_long, 0, 0, 0);
            loop {
                libc::syscall(libc::SYS_pause);
            }
        }
    }
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as i32)
    }
}
