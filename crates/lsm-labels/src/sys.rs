//! The only module with `unsafe`: raw `lsm_list_modules(2)`,
//! `landlock_create_ruleset(2)` and `bpf(2)` calls behind a safe API.
//!
//! Everything here is a thin wrapper: one kernel call per function, no
//! policy decisions. The decisions (which programs count as BPF-LSM policy,
//! how to name and hash them) live in [`crate::bpf`] and are unit-tested on
//! recorded data.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `__NR_lsm_list_modules` on x86_64 and on every architecture using the
/// generic syscall table (it was added after the tables were unified).
pub const NR_LSM_LIST_MODULES: libc::c_long = 461;
/// `__NR_landlock_create_ruleset`.
pub const NR_LANDLOCK_CREATE_RULESET: libc::c_long = 444;
/// `LANDLOCK_CREATE_RULESET_VERSION`.
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;

/// Most LSM ids `lsm_list_modules` can report that we make room for.
const MAX_LSM_IDS: usize = 64;

/// `lsm_list_modules(ids, &size, 0)`: the ids of the active LSMs in kernel
/// order.
///
/// # References
/// include/uapi/linux/lsm.h, security/lsm_syscalls.c.
///
/// # Errors
/// `ENOSYS` before Linux 6.8; `E2BIG` never (we pass room for 64 ids).
pub fn lsm_list_modules() -> io::Result<Vec<u64>> {
    let mut ids = [0u64; MAX_LSM_IDS];
    let mut size: u32 = std::mem::size_of_val(&ids) as u32;
    // SAFETY: `ids` is a writable buffer of `size` bytes and `size` a valid
    // u32 the kernel reads and writes; flags is 0. Both outlive the call.
    let rc = unsafe {
        libc::syscall(
            NR_LSM_LIST_MODULES,
            ids.as_mut_ptr(),
            &mut size as *mut u32,
            0u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = (rc as usize).min(MAX_LSM_IDS);
    Ok(ids[..n].to_vec())
}

/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`: the
/// highest Landlock ABI version this kernel supports.
///
/// # Errors
/// `EOPNOTSUPP` when Landlock is built but disabled at boot, `ENOSYS` when
/// it is not built.
pub fn landlock_abi_version() -> io::Result<u32> {
    // SAFETY: with a NULL attr and size 0 the kernel reads no memory; the
    // call only returns an integer.
    let rc = unsafe {
        libc::syscall(
            NR_LANDLOCK_CREATE_RULESET,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as u32)
}

/// `landlock_create_ruleset(&attr, 8, 0)` with `attr.handled_access_fs =
/// handled_access_fs`: a new, empty ruleset fd (it restricts nothing until
/// a task calls `landlock_restrict_self` with it).
///
/// # Errors
/// `EOPNOTSUPP`/`ENOSYS` without Landlock; `EINVAL` for unknown access bits.
pub fn landlock_create_ruleset(handled_access_fs: u64) -> io::Result<OwnedFd> {
    let attr: u64 = handled_access_fs;
    // SAFETY: `attr` is a valid 8-byte `struct landlock_ruleset_attr`
    // prefix (handled_access_fs only, which the kernel accepts) that lives
    // for the call; on success the kernel returns a new fd we now own.
    let rc = unsafe {
        libc::syscall(
            NR_LANDLOCK_CREATE_RULESET,
            &attr as *const u64,
            std::mem::size_of::<u64>(),
            0u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the kernel returned a fresh fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

// bpf(2) commands (include/uapi/linux/bpf.h, enum bpf_cmd).
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_GET_NEXT_ID: libc::c_int = 11;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_LINK_GET_FD_BY_ID: libc::c_int = 30;
const BPF_LINK_GET_NEXT_ID: libc::c_int = 31;

/// `union bpf_attr` as raw bytes: every command we use fits in 128 bytes
/// and the kernel accepts a larger-than-known attr when the tail is zero.
type BpfAttr = [u8; 128];

fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}
fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}
fn get_u32(buf: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes"))
}

/// `bpf(cmd, attr, sizeof(attr))`.
///
/// # Safety
/// Every pointer field the command reads or writes in `attr` must be null
/// or point to a buffer valid for that access, of the length stated in the
/// matching length field, for the duration of the call.
unsafe fn bpf(cmd: libc::c_int, attr: &mut BpfAttr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, writable 128-byte `union bpf_attr` and the
    // size passed matches it; its pointer fields are valid per this
    // function's contract.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of::<BpfAttr>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `bpf(cmd, attr)` for a command that returns a new file descriptor.
///
/// # Safety
/// As [`bpf`]; `cmd` must be a command whose success value is a new fd.
unsafe fn bpf_new_fd(cmd: libc::c_int, attr: &mut BpfAttr) -> io::Result<OwnedFd> {
    // SAFETY: forwarded contract of `bpf`.
    let rc = unsafe { bpf(cmd, attr) }?;
    // SAFETY: per this function's contract the kernel returned a fresh fd
    // that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

fn next_id(cmd: libc::c_int, start: u32) -> io::Result<Option<u32>> {
    let mut attr: BpfAttr = [0; 128];
    put_u32(&mut attr, 0, start);
    // SAFETY: the *_GET_NEXT_ID commands read two u32s and carry no pointer.
    match unsafe { bpf(cmd, &mut attr) } {
        Ok(_) => Ok(Some(get_u32(&attr, 4))),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `bpf(BPF_LINK_GET_NEXT_ID)`: the next link id after `start`, `None` at
/// the end.
///
/// # Errors
/// `EPERM` without CAP_SYS_ADMIN.
pub fn bpf_link_get_next_id(start: u32) -> io::Result<Option<u32>> {
    next_id(BPF_LINK_GET_NEXT_ID, start)
}

/// `bpf(BPF_PROG_GET_NEXT_ID)`: the next program id after `start`.
///
/// # Errors
/// `EPERM` without CAP_SYS_ADMIN.
pub fn bpf_prog_get_next_id(start: u32) -> io::Result<Option<u32>> {
    next_id(BPF_PROG_GET_NEXT_ID, start)
}

fn fd_by_id(cmd: libc::c_int, id: u32) -> io::Result<OwnedFd> {
    let mut attr: BpfAttr = [0; 128];
    put_u32(&mut attr, 0, id);
    // SAFETY: the *_GET_FD_BY_ID commands carry no pointer and return a new fd.
    unsafe { bpf_new_fd(cmd, &mut attr) }
}

/// `bpf(BPF_LINK_GET_FD_BY_ID)`.
///
/// # Errors
/// `ENOENT` when the link went away meanwhile; `EPERM` without privilege.
pub fn bpf_link_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    fd_by_id(BPF_LINK_GET_FD_BY_ID, id)
}

/// `bpf(BPF_PROG_GET_FD_BY_ID)`.
///
/// # Errors
/// `ENOENT` when the program went away meanwhile; `EPERM` without privilege.
pub fn bpf_prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    fd_by_id(BPF_PROG_GET_FD_BY_ID, id)
}

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` into `info`, a `struct bpf_*_info`.
/// Returns the length the kernel filled.
///
/// # Safety
/// Every pointer field of `info` must be 0 or point to a writable buffer of
/// the length in its matching length field, live for the call.
unsafe fn obj_get_info(fd: &impl AsRawFd, info: &mut [u8]) -> io::Result<u32> {
    let mut attr: BpfAttr = [0; 128];
    put_u32(&mut attr, 0, fd.as_raw_fd() as u32);
    put_u32(&mut attr, 4, info.len() as u32);
    put_u64(&mut attr, 8, info.as_mut_ptr() as u64);
    // SAFETY: `info` is writable for `info.len()` bytes for the call, and
    // its own pointer fields are valid per this function's contract.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
    Ok(get_u32(&attr, 4))
}

/// Size of `struct bpf_link_info` we ask for (the kernel fills what it knows).
pub const LINK_INFO_SIZE: usize = 96;
/// Size of `struct bpf_prog_info` up to and including `attach_btf_id`
/// (offset 224), rounded to its 8-byte alignment.
pub const PROG_INFO_SIZE: usize = 232;

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` on a link: the raw `struct bpf_link_info`.
///
/// # Errors
/// As the kernel reports (`EBADF`, `EFAULT`, `EINVAL`).
pub fn bpf_link_info(fd: &OwnedFd) -> io::Result<Vec<u8>> {
    let mut info = vec![0u8; LINK_INFO_SIZE];
    // SAFETY: a zeroed info has only null pointer fields.
    let n = unsafe { obj_get_info(fd, &mut info) }? as usize;
    info.truncate(n.min(LINK_INFO_SIZE));
    Ok(info)
}

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` on a program: the raw `struct
/// bpf_prog_info` and, when `max_xlated` > 0, the translated instructions
/// (refused with `E2BIG`-like `InvalidData` when longer than `max_xlated`).
///
/// Two calls: the first learns `xlated_prog_len`, the second fetches that
/// many bytes into a buffer we own.
///
/// # Errors
/// As the kernel reports; `InvalidData` when the program is larger than
/// `max_xlated`. The instructions are empty when the kernel hides them
/// (e.g. `kernel.kptr_restrict`/ CAP_PERFMON missing: it then reports 0).
pub fn bpf_prog_info(fd: &OwnedFd, max_xlated: usize) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut info = vec![0u8; PROG_INFO_SIZE];
    // SAFETY: a zeroed info has only null pointer fields.
    let n = unsafe { obj_get_info(fd, &mut info) }? as usize;
    let xlated_len = get_u32(&info, 20) as usize;
    if max_xlated == 0 || xlated_len == 0 {
        info.truncate(n.min(PROG_INFO_SIZE));
        return Ok((info, Vec::new()));
    }
    if xlated_len > max_xlated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("BPF program has {xlated_len} bytes of instructions, more than the {max_xlated} we read"),
        ));
    }
    let mut insns = vec![0u8; xlated_len];
    let mut info2 = vec![0u8; PROG_INFO_SIZE];
    put_u32(&mut info2, 20, xlated_len as u32);
    put_u64(&mut info2, 32, insns.as_mut_ptr() as u64);
    // SAFETY: the only non-null pointer, xlated_prog_insns, points to
    // `insns`, writable for xlated_prog_len bytes and alive past the call.
    let n2 = unsafe { obj_get_info(fd, &mut info2) }? as usize;
    // The program cannot change, but the kernel reports the length it had.
    let got = (get_u32(&info2, 20) as usize).min(xlated_len);
    insns.truncate(got);
    // Clear the user pointer we planted so callers never see our address.
    put_u64(&mut info2, 32, 0);
    info2.truncate(n2.min(PROG_INFO_SIZE));
    Ok((info2, insns))
}

/// `bpf(BPF_PROG_LOAD)` of a program given as raw 8-byte instructions,
/// with `expected_attach_type` 0 and no BTF. For tests and tools that need
/// a real program (e.g. a `cgroup_skb` one that returns 1).
///
/// # Errors
/// `EPERM` without CAP_BPF/CAP_SYS_ADMIN; `EINVAL` when the verifier
/// rejects the program.
pub fn bpf_prog_load(prog_type: u32, insns: &[u64], name: &str) -> io::Result<OwnedFd> {
    let license = b"GPL\0";
    let mut attr: BpfAttr = [0; 128];
    put_u32(&mut attr, 0, prog_type);
    put_u32(&mut attr, 4, insns.len() as u32);
    put_u64(&mut attr, 8, insns.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    let name = name.as_bytes();
    let n = name.len().min(15);
    attr[48..48 + n].copy_from_slice(&name[..n]);
    // SAFETY: insns and license point to `insns` (insn_cnt 8-byte
    // instructions) and a NUL-terminated string, both alive for the call;
    // log_buf is null with log_size 0. PROG_LOAD returns a new fd.
    unsafe { bpf_new_fd(BPF_PROG_LOAD, &mut attr) }
}

/// `bpf(BPF_LINK_CREATE)`: attach `prog` to `target` (a cgroup directory
/// fd, for cgroup attach types) and return the link fd; the attachment
/// lasts until the fd is closed.
///
/// # Errors
/// As the kernel reports (`EPERM`, `EINVAL`, `EBADF`).
pub fn bpf_link_create(
    prog: &OwnedFd,
    target: &impl AsRawFd,
    attach_type: u32,
) -> io::Result<OwnedFd> {
    let mut attr: BpfAttr = [0; 128];
    put_u32(&mut attr, 0, prog.as_raw_fd() as u32);
    put_u32(&mut attr, 4, target.as_raw_fd() as u32);
    put_u32(&mut attr, 8, attach_type);
    // SAFETY: LINK_CREATE with these fields carries no pointer and returns
    // a new fd.
    unsafe { bpf_new_fd(BPF_LINK_CREATE, &mut attr) }
}
