//! The raw probes of `ckpt check`: each tries one kernel feature for real
//! (in a forked child where it acts on a process) and reports what the
//! kernel answered. No judgement here; `cmd_check` decides what an answer
//! means.

use std::io;

/// What one probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call worked; a short detail (a version, a size).
    Works(String),
    /// The call failed with this errno.
    Errno(i32),
    /// Something the feature needs is not there (a file, a mount).
    Missing(String),
}

fn errno_of(e: io::Error) -> Outcome {
    Outcome::Errno(e.raw_os_error().unwrap_or(libc::EIO))
}

fn from_rc(rc: libc::c_long, detail: impl FnOnce(libc::c_long) -> String) -> Outcome {
    if rc < 0 {
        errno_of(io::Error::last_os_error())
    } else {
        Outcome::Works(detail(rc))
    }
}

/// A child that only waits in pause(2) until killed; SIGKILLed and reaped
/// on drop.
struct PausedChild(libc::pid_t);

impl PausedChild {
    fn fork() -> io::Result<PausedChild> {
        // SAFETY: `ckpt check` is single-threaded; the child runs only
        // pause(2) and _exit(2), both async-signal-safe, and never returns
        // into Rust code.
        #[allow(unsafe_code)]
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => Err(io::Error::last_os_error()),
            0 => loop {
                // SAFETY: see above; pause only waits for a signal.
                #[allow(unsafe_code)]
                unsafe {
                    libc::pause();
                }
            },
            pid => Ok(PausedChild(pid)),
        }
    }
}

impl Drop for PausedChild {
    fn drop(&mut self) {
        // SAFETY: kill and waitpid on our own child's PID; `status` is a
        // valid out-pointer for the duration of the call.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            let mut status = 0;
            libc::waitpid(self.0, &mut status, libc::__WALL);
        }
    }
}

/// PTRACE_SEIZE of a forked child with `options` (0, or
/// PTRACE_O_SUSPEND_SECCOMP).
pub fn ptrace_seize(options: libc::c_long) -> Outcome {
    let child = match PausedChild::fork() {
        Ok(c) => c,
        Err(e) => return errno_of(e),
    };
    // SAFETY: PTRACE_SEIZE takes no pointer (addr 0, data = options); the
    // child is ours and is killed when `child` drops.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            child.0,
            std::ptr::null_mut::<libc::c_void>(),
            options as *mut libc::c_void,
        )
    };
    from_rc(rc, |_| format!("seized a forked child (pid {})", child.0))
}

/// struct clone_args of clone3(2) (Linux 5.5+ layout, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3 asking for this process's own PID as the child's: EEXIST means
/// set_tid works and is permitted (the PID is merely taken), EPERM that the
/// caller lacks CAP_CHECKPOINT_RESTORE, ENOSYS/E2BIG/EINVAL an old kernel.
pub fn clone3_set_tid() -> Outcome {
    let tid: [libc::pid_t; 1] = [std::process::id() as libc::pid_t];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tid.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: `args` and `tid` are live for the call and sized as the
    // kernel reads them. The PID asked for is our own, so no child can be
    // created; should one be anyway, it exits at once without running Rust.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if rc == 0 {
        // SAFETY: in the (unexpected) child: leave without unwinding.
        #[allow(unsafe_code)]
        unsafe {
            libc::_exit(0)
        };
    }
    if rc > 0 {
        // SAFETY: reap the unexpected child.
        #[allow(unsafe_code)]
        unsafe {
            let mut st = 0;
            libc::waitpid(rc as libc::pid_t, &mut st, 0);
        }
        return Outcome::Works("created a child at a chosen PID".into());
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EEXIST) => {
            Outcome::Works("set_tid accepted (the PID asked for is taken)".into())
        }
        Some(e) => Outcome::Errno(e),
        None => Outcome::Errno(libc::EIO),
    }
}

/// prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): the kernel's struct prctl_mm_map size.
pub fn prctl_mm_map_size() -> Outcome {
    let mut size: libc::c_uint = 0;
    // SAFETY: the kernel writes one unsigned int to `size`, live for the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            libc::PR_SET_MM_MAP_SIZE,
            &mut size as *mut libc::c_uint,
            0,
            0,
        )
    };
    from_rc(rc.into(), |_| {
        format!("struct prctl_mm_map is {size} bytes")
    })
}

/// PAGEMAP_SCAN = _IOWR('f', 16, struct pm_scan_arg) (Linux 6.7+).
const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;

/// An empty PAGEMAP_SCAN on /proc/self/pagemap (ENOTTY before Linux 6.7).
pub fn pagemap_scan() -> Outcome {
    use std::os::fd::AsRawFd;
    let file = match std::fs::File::open("/proc/self/pagemap") {
        Ok(f) => f,
        Err(e) => return errno_of(e),
    };
    // struct pm_scan_arg: size, flags, start, end, walk_end, vec, vec_len,
    // max_pages, category_inverted, category_mask, category_anyof_mask,
    // return_mask; an empty range [0, 0).
    let mut arg = [0u64; 12];
    arg[0] = std::mem::size_of_val(&arg) as u64;
    // SAFETY: `arg` is a live, writable pm_scan_arg of the size it states;
    // the range is empty and `vec` is null with length 0, so the kernel
    // writes nothing else.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), PAGEMAP_SCAN, arg.as_mut_ptr()) };
    from_rc(rc.into(), |_| "empty scan accepted".into())
}

/// userfaultfd(2), user-mode faults only (what an unprivileged caller may ask).
pub fn userfaultfd() -> Outcome {
    const UFFD_USER_MODE_ONLY: libc::c_long = 1;
    let flags = libc::O_CLOEXEC as libc::c_long;
    // SAFETY: userfaultfd takes only flags; the returned fd is closed below.
    #[allow(unsafe_code)]
    let mut rc = unsafe { libc::syscall(libc::SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY) };
    if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above, without the flag older kernels do not know.
        #[allow(unsafe_code)]
        {
            rc = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
        }
    }
    let out = from_rc(rc, |_| "created a userfaultfd".into());
    close_if_fd(rc);
    out
}

fn close_if_fd(rc: libc::c_long) {
    if rc >= 0 {
        // SAFETY: `rc` is an fd this module just got from the kernel and
        // that nothing else owns.
        #[allow(unsafe_code)]
        unsafe {
            libc::close(rc as libc::c_int);
        }
    }
}

/// setsockopt(TCP_REPAIR, 1) on a fresh, unconnected TCP socket (the
/// kernel refuses repair mode on a listening one).
pub fn tcp_repair() -> Outcome {
    // SAFETY: socket(2) takes no pointers; the fd is closed below.
    #[allow(unsafe_code)]
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return errno_of(io::Error::last_os_error());
    }
    let one: libc::c_int = 1;
    // SAFETY: `one` is a live c_int and its size is passed; `fd` is ours.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_REPAIR,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let out = from_rc(rc.into(), |_| "repair mode set on a socket".into());
    close_if_fd(fd.into());
    out
}

/// lsm_list_modules(2) (Linux 6.8+): how many LSMs it lists.
pub fn lsm_list_modules() -> Outcome {
    const NR_LSM_LIST_MODULES: libc::c_long = 461;
    let mut ids = [0u64; 64];
    let mut size = std::mem::size_of_val(&ids) as u32;
    // SAFETY: `ids` is a writable buffer of `size` bytes and `size` a u32
    // the kernel reads and writes; both outlive the call.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::syscall(
            NR_LSM_LIST_MODULES,
            ids.as_mut_ptr(),
            &mut size as *mut u32,
            0u32,
        )
    };
    from_rc(rc, |n| format!("{n} LSMs listed"))
}

/// openat2(2) of "/" with RESOLVE_NO_SYMLINKS (Linux 5.6+).
pub fn openat2() -> Outcome {
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    // struct open_how: flags, mode, resolve.
    let how: [u64; 3] = [
        (libc::O_PATH | libc::O_CLOEXEC) as u64,
        0,
        RESOLVE_NO_SYMLINKS,
    ];
    // SAFETY: the path is a NUL-terminated literal and `how` a live
    // open_how of the size passed; the fd is closed below.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(&how),
        )
    };
    let out = from_rc(rc, |_| "opened / without following symlinks".into());
    close_if_fd(rc);
    out
}

/// process_vm_readv(2) of a forked child's copy of `probe`: reads another
/// process's memory the way dump does.
pub fn process_vm_readv() -> Outcome {
    let probe: u64 = 0x636b_7074_636b_7074;
    let child = match PausedChild::fork() {
        Ok(c) => c,
        Err(e) => return errno_of(e),
    };
    let mut got: u64 = 0;
    let local = libc::iovec {
        iov_base: &mut got as *mut u64 as *mut libc::c_void,
        iov_len: 8,
    };
    let remote = libc::iovec {
        iov_base: &probe as *const u64 as *mut libc::c_void,
        iov_len: 8,
    };
    // SAFETY: `local` points at 8 writable bytes of `got`, live for the
    // call; `remote` is an address in the child (a copy of this process),
    // which the kernel checks.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::process_vm_readv(child.0, &local, 1, &remote, 1, 0) };
    match rc {
        8 if got == probe => Outcome::Works("read a forked child's memory".into()),
        r if r < 0 => errno_of(io::Error::last_os_error()),
        _ => Outcome::Missing("short or wrong read of a forked child's memory".into()),
    }
}

/// Opens /dev/kvm and asks KVM_GET_API_VERSION.
pub fn kvm_api_version() -> Outcome {
    use std::os::fd::AsRawFd;
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    let kvm = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Outcome::Missing("/dev/kvm does not exist".into())
        }
        Err(e) => return errno_of(e),
    };
    // SAFETY: KVM_GET_API_VERSION takes no argument and returns a number.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_GET_API_VERSION, 0) };
    from_rc(rc.into(), |v| format!("KVM API version {v}"))
}
