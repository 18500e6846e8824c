//! Raw system calls that nix does not wrap: the x86 XSAVE register set,
//! signal-mask and rseq ptrace requests, prlimit on another task and clone3
//! with `set_tid`. Every unsafe block of ckpt-core lives here, behind a safe
//! API; nothing above this module uses `unsafe`.
#![allow(unsafe_code)]

use std::io;

const PTRACE_GETREGSET: libc::c_uint = 0x4204;
const PTRACE_SETREGSET: libc::c_uint = 0x4205;
const PTRACE_GETSIGMASK: libc::c_uint = 0x420a;
const PTRACE_SETSIGMASK: libc::c_uint = 0x420b;
const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;
const NT_X86_XSTATE: libc::c_ulong = 0x202;

/// Largest XSAVE area we accept (the kernel's is a few KiB; AMX is ~11 KiB).
pub const XSTATE_MAX: usize = 64 * 1024;

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;

/// What kind of ptrace stop a stopped tracee is in, from
/// `PTRACE_GET_SYSCALL_INFO` (`struct ptrace_syscall_info.op`): 0 none
/// (a signal-delivery or event stop), 1 system-call entry, 2 exit, 3
/// seccomp. Tells a syscall-stop from a real SIGTRAP whatever options are set.
///
/// # Errors
/// The kernel's errno (ESRCH when `pid` is not a stopped tracee of ours).
pub fn syscall_stop_op(pid: i32) -> io::Result<u8> {
    let mut buf = [0u8; 88];
    // SAFETY: the kernel writes at most `buf.len()` bytes (the size we pass)
    // into `buf`, which is valid for writes for the duration of the call.
    check(unsafe {
        libc::ptrace(
            PTRACE_GET_SYSCALL_INFO,
            pid,
            buf.len() as *mut libc::c_void,
            buf.as_mut_ptr().cast::<libc::c_void>(),
        )
    })?;
    Ok(buf[0])
}

/// `ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, &iov)`: the task's XSAVE area.
///
/// # Errors
/// The kernel's errno (ESRCH when `pid` is not a stopped tracee of ours).
pub fn get_xstate(pid: i32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; XSTATE_MAX];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: iov points at `buf`, which is valid for writes of iov_len bytes
    // for the duration of the call; the kernel shrinks iov_len to what it wrote.
    check(unsafe {
        libc::ptrace(
            PTRACE_GETREGSET,
            pid,
            NT_X86_XSTATE as *mut libc::c_void,
            &mut iov as *mut libc::iovec,
        )
    })?;
    buf.truncate(iov.iov_len);
    Ok(buf)
}

/// `ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, &iov)`: load an XSAVE area.
///
/// # Errors
/// EINVAL when the area's header is not valid on this CPU.
pub fn set_xstate(pid: i32, area: &[u8]) -> io::Result<()> {
    let mut copy = area.to_vec();
    let mut iov = libc::iovec {
        iov_base: copy.as_mut_ptr().cast(),
        iov_len: copy.len(),
    };
    // SAFETY: iov points at `copy`, valid for iov_len bytes during the call;
    // the kernel only reads it.
    check(unsafe {
        libc::ptrace(
            PTRACE_SETREGSET,
            pid,
            NT_X86_XSTATE as *mut libc::c_void,
            &mut iov as *mut libc::iovec,
        )
    })?;
    Ok(())
}

/// `ptrace(PTRACE_GETSIGMASK, pid, 8, &mask)`: the blocked-signal mask.
///
/// # Errors
/// The kernel's errno.
pub fn get_sigmask(pid: i32) -> io::Result<u64> {
    let mut mask: u64 = 0;
    // SAFETY: `mask` is a valid 8-byte buffer and we pass its size as addr.
    check(unsafe {
        libc::ptrace(
            PTRACE_GETSIGMASK,
            pid,
            8usize as *mut libc::c_void,
            &mut mask as *mut u64,
        )
    })?;
    Ok(mask)
}

/// `ptrace(PTRACE_SETSIGMASK, pid, 8, &mask)`.
///
/// # Errors
/// The kernel's errno.
pub fn set_sigmask(pid: i32, mask: u64) -> io::Result<()> {
    let mut m = mask;
    // SAFETY: `m` is a valid 8-byte buffer; the kernel only reads it.
    check(unsafe {
        libc::ptrace(
            PTRACE_SETSIGMASK,
            pid,
            8usize as *mut libc::c_void,
            &mut m as *mut u64,
        )
    })?;
    Ok(())
}

/// The kernel's `struct ptrace_rseq_configuration`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RseqConfig {
    pub rseq_abi_pointer: u64,
    pub rseq_abi_size: u32,
    pub signature: u32,
    pub flags: u32,
    pub pad: u32,
}

/// `ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof, &conf)`; `None` when
/// the task has no rseq area registered.
///
/// # Errors
/// The kernel's errno.
pub fn get_rseq_config(pid: i32) -> io::Result<Option<RseqConfig>> {
    let mut conf = RseqConfig::default();
    // SAFETY: `conf` is a repr(C) struct of the size we pass; the kernel
    // writes at most that many bytes.
    check(unsafe {
        libc::ptrace(
            PTRACE_GET_RSEQ_CONFIGURATION,
            pid,
            std::mem::size_of::<RseqConfig>() as *mut libc::c_void,
            &mut conf as *mut RseqConfig,
        )
    })?;
    Ok((conf.rseq_abi_pointer != 0).then_some(conf))
}

/// `prlimit64(pid, resource, NULL, &old)`: (soft, hard).
///
/// # Errors
/// The kernel's errno.
pub fn get_rlimit(pid: i32, resource: u32) -> io::Result<(u64, u64)> {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: new_limit is NULL (read only); `old` is a valid rlimit64.
    let ret = unsafe {
        libc::prlimit64(
            pid,
            resource as libc::__rlimit_resource_t,
            std::ptr::null(),
            &mut old,
        )
    };
    check(ret as libc::c_long)?;
    Ok((old.rlim_cur, old.rlim_max))
}

/// `struct clone_args` of clone3(2) (include/uapi/linux/sched.h).
#[repr(C)]
#[derive(Default)]
pub(crate) struct CloneArgs {
    pub(crate) flags: u64,
    pub(crate) pidfd: u64,
    pub(crate) child_tid: u64,
    pub(crate) parent_tid: u64,
    pub(crate) exit_signal: u64,
    pub(crate) stack: u64,
    pub(crate) stack_size: u64,
    pub(crate) tls: u64,
    pub(crate) set_tid: u64,
    pub(crate) set_tid_size: u64,
    pub(crate) cgroup: u64,
}

/// `clone3({exit_signal: SIGCHLD, set_tid: [tid]})`: create a child process
/// that immediately does `ptrace(PTRACE_TRACEME)` and `kill(getpid(), SIGSTOP)`
/// with raw system calls, so no code of ckpt runs in it. The caller (this
/// thread) becomes its tracer and must `waitpid` for the stop.
///
/// `set_tid` asks for a specific PID (needs CAP_CHECKPOINT_RESTORE); `None`
/// lets the kernel choose.
///
/// # Errors
/// EEXIST when the PID is taken, EPERM without the capability.
pub fn clone_stopped_child(set_tid: Option<i32>) -> io::Result<i32> {
    let tid_arr: [libc::pid_t; 1] = [set_tid.unwrap_or(0)];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: if set_tid.is_some() {
            tid_arr.as_ptr() as u64
        } else {
            0
        },
        set_tid_size: u64::from(set_tid.is_some()),
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves like fork: the child gets a
    // copy of our address space. In the child we only issue raw system
    // calls (no allocation, no locks, no libc state), then stop; the parent
    // replaces the child's whole address space before it ever runs again.
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
            libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0);
            let me = libc::syscall(libc::SYS_getpid);
            libc::syscall(libc::SYS_kill, me, libc::SIGSTOP);
            libc::syscall(libc::SYS_exit_group, 127);
        }
        unreachable!("exit_group returned");
    }
    check(ret).map(|pid| pid as i32)
}

/// `lseek`-free positioned read used to check a pipe: `ioctl(fd, FIONREAD)`.
///
/// # Errors
/// The kernel's errno.
pub fn fionread(fd: &impl std::os::fd::AsRawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer we pass.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n as *mut libc::c_int) };
    check(ret as libc::c_long)?;
    Ok(n as usize)
}

/// `tee(fd_in, fd_out, len, SPLICE_F_NONBLOCK)`: duplicate up to `len` bytes
/// buffered in pipe `fd_in` into pipe `fd_out` without consuming them.
///
/// # Errors
/// The kernel's errno (EAGAIN when nothing is buffered).
pub fn tee_nonblock(
    fd_in: &impl std::os::fd::AsRawFd,
    fd_out: &impl std::os::fd::AsRawFd,
    len: usize,
) -> io::Result<usize> {
    // SAFETY: tee only takes fds and integers; invalid fds yield EBADF.
    let ret = unsafe {
        libc::tee(
            fd_in.as_raw_fd(),
            fd_out.as_raw_fd(),
            len,
            libc::SPLICE_F_NONBLOCK,
        )
    };
    check(ret as libc::c_long).map(|n| n as usize)
}

/// `si_addr` of the signal a stopped tracee is reporting (0 if unknown).
pub fn siginfo_addr(pid: i32) -> u64 {
    match nix::sys::ptrace::getsiginfo(nix::unistd::Pid::from_raw(pid)) {
        // SAFETY: si_addr reads a union field that is valid for the fault
        // signals we report it for; for others it is merely meaningless.
        Ok(si) => unsafe { si.si_addr() as u64 },
        Err(_) => 0,
    }
}

/// `kcmp(pid, pid, KCMP_FILE, fd1, fd2) == 0`: whether two fds of `pid`
/// share one open file description.
///
/// # Errors
/// The kernel's errno (EPERM without ptrace access, EBADF).
pub fn same_open_file(pid: i32, fd1: i32, fd2: i32) -> io::Result<bool> {
    const KCMP_FILE: libc::c_long = 0;
    // SAFETY: kcmp takes only integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            pid as libc::c_long,
            pid as libc::c_long,
            KCMP_FILE,
            fd1 as libc::c_long,
            fd2 as libc::c_long,
        )
    };
    check(r).map(|v| v == 0)
}

/// `clone3(flags | SIGCHLD)` as a plain fork into new namespaces
/// (CLONE_NEWPID, CLONE_NEWNS, CLONE_NEWUSER): returns 0 in the child and
/// the child's PID in the parent.
///
/// The child goes on running this program's Rust code, which is sound only
/// because ckpt is single-threaded when it calls this (restore runs no
/// threads: the image verifier's threads have been joined), so no lock can
/// be held by a thread that does not exist in the child.
///
/// # Errors
/// The kernel's errno (EPERM without the privilege a namespace needs).
pub fn fork_into_namespaces(flags: u64) -> io::Result<i32> {
    let args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM is fork(2) with namespace flags; the
    // single-threaded precondition above makes continuing in the child sound.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    check(ret).map(|pid| pid as i32)
}

/// Makes every mount private to this (new) mount namespace, then mounts a
/// fresh procfs on /proc so that /proc shows the new PID namespace.
///
/// # Errors
/// The errno of mount(2), naming the step.
pub fn mount_private_proc() -> io::Result<()> {
    let root = c"/";
    let proc_ = c"proc";
    let target = c"/proc";
    // SAFETY: all pointers are valid NUL-terminated strings or null, which
    // mount(2) accepts for source/fstype/data with MS_PRIVATE.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("make / private: {e}")));
    }
    // SAFETY: as above; "proc" needs no data.
    let r = unsafe {
        libc::mount(
            proc_.as_ptr(),
            target.as_ptr(),
            proc_.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("mount proc on /proc: {e}"),
        ));
    }
    Ok(())
}

/// `ioctl(fd, TCGETS)` on one of our own fds: the kernel's `struct termios`
/// as bytes (see `terminal`).
///
/// # Errors
/// The kernel's errno (ENOTTY when `fd` is not a terminal).
pub fn tcgets(fd: i32) -> io::Result<[u8; crate::terminal::KERNEL_TERMIOS_LEN]> {
    let mut b = [0u8; crate::terminal::KERNEL_TERMIOS_LEN];
    // SAFETY: TCGETS writes exactly one kernel `struct termios`
    // (KERNEL_TERMIOS_LEN bytes) to the pointer, which points at `b`.
    let ret = unsafe { libc::ioctl(fd, libc::TCGETS, b.as_mut_ptr()) };
    check(ret as libc::c_long)?;
    Ok(b)
}

/// `ioctl(fd, TCSETS)` on one of our own fds.
///
/// # Errors
/// The kernel's errno.
pub fn tcsets(fd: i32, termios: &[u8; crate::terminal::KERNEL_TERMIOS_LEN]) -> io::Result<()> {
    // SAFETY: TCSETS reads exactly one kernel `struct termios` from the
    // pointer, which points at `termios` (KERNEL_TERMIOS_LEN bytes).
    let ret = unsafe { libc::ioctl(fd, libc::TCSETS, termios.as_ptr()) };
    check(ret as libc::c_long).map(drop)
}

/// `ioctl(fd, TIOCSWINSZ)` on one of our own fds: rows, cols, xpixel, ypixel.
///
/// # Errors
/// The kernel's errno.
pub fn set_winsize(fd: i32, ws: [u16; 4]) -> io::Result<()> {
    let w = libc::winsize {
        ws_row: ws[0],
        ws_col: ws[1],
        ws_xpixel: ws[2],
        ws_ypixel: ws[3],
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the pointer.
    let ret = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &w as *const libc::winsize) };
    check(ret as libc::c_long).map(drop)
}

/// `prctl(PR_GET_SECUREBITS)`: the calling thread's securebits.
pub fn own_securebits() -> io::Result<u32> {
    // SAFETY: PR_GET_SECUREBITS takes no pointer arguments and only returns
    // a value; it cannot touch this process's memory.
    let r = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as u32)
    }
}
