//! Seccomp filters as ckpt stores and reinstalls them: reading every
//! filter of a stopped task, oldest first (`PTRACE_SECCOMP_GET_FILTER`,
//! through the [`FilterSource`] seam), checking that each can be
//! reinstalled faithfully, and laying out the `struct sock_fprog` that
//! `seccomp(SECCOMP_SET_MODE_FILTER, ...)` takes inside the restored task.

use crate::sys_security::{BPF_MAXINSNS, SOCK_FILTER_LEN};

/// `BPF_RET | BPF_K`: return the constant `k`.
const BPF_RET_K: u16 = 0x06;
/// `SECCOMP_RET_ACTION_FULL`.
const RET_ACTION_FULL: u32 = 0xffff_0000;
/// `SECCOMP_RET_USER_NOTIF`.
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// Size of `struct sock_fprog` on x86_64 (u16 len, padding, u64 pointer).
pub const SOCK_FPROG_LEN: usize = 16;

/// Why a task's seccomp state cannot be captured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeccompCaptureError {
    #[error("reading its seccomp filter {index} (PTRACE_SECCOMP_GET_FILTER) needs CAP_SYS_ADMIN and an unconfined ckpt: {source}; dump it as root")]
    NotPermitted {
        index: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("its seccomp filter {index} cannot be read (PTRACE_SECCOMP_GET_FILTER): {source}")]
    Read {
        index: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("its seccomp filter {index} is malformed ({len} bytes, not a whole number of 1..={BPF_MAXINSNS} instructions)")]
    Malformed { index: u64, len: usize },
    #[error("its seccomp filter {index} hands system calls to a supervisor process (SECCOMP_RET_USER_NOTIF), whose listener cannot be captured")]
    UserNotification { index: u64 },
    #[error("it is in seccomp filter mode but no filter could be read")]
    NoFilters,
    #[error("the kernel reports {expected} seccomp filters but {read} were read")]
    CountMismatch { expected: u32, read: usize },
}

impl SeccompCaptureError {
    /// The filter cannot be captured at all (a refusal, exit 3) rather than
    /// a read that failed for an operational reason.
    pub fn is_confinement(&self) -> bool {
        !matches!(self, SeccompCaptureError::Read { .. })
    }
}

/// Where a task's seccomp filters are read from: the live tracee, or a
/// fake in tests.
pub trait FilterSource {
    /// Filter `index` (0 = oldest) as raw `sock_filter` bytes; `None` past
    /// the last one.
    fn filter(&self, index: u64) -> std::io::Result<Option<Vec<u8>>>;
}

/// The filters of our stopped tracee `pid`.
pub struct LiveFilters(pub i32);

impl FilterSource for LiveFilters {
    fn filter(&self, index: u64) -> std::io::Result<Option<Vec<u8>>> {
        crate::sys_security::seccomp_get_filter(self.0, index)
    }
}

/// Checks that `prog` is a classic BPF program ckpt can reinstall as is.
pub fn check_filter(index: u64, prog: &[u8]) -> Result<(), SeccompCaptureError> {
    let n = prog.len() / SOCK_FILTER_LEN;
    if !prog.len().is_multiple_of(SOCK_FILTER_LEN) || n == 0 || n > BPF_MAXINSNS {
        return Err(SeccompCaptureError::Malformed {
            index,
            len: prog.len(),
        });
    }
    for insn in prog.chunks_exact(SOCK_FILTER_LEN) {
        let code = u16::from_le_bytes([insn[0], insn[1]]);
        let k = u32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
        if code == BPF_RET_K && k & RET_ACTION_FULL == RET_USER_NOTIF {
            return Err(SeccompCaptureError::UserNotification { index });
        }
    }
    Ok(())
}

/// Reads every filter, oldest first, and checks each. `expected` is the
/// kernel's `Seccomp_filters:` count when known.
pub fn read_filters(
    src: &dyn FilterSource,
    expected: Option<u32>,
) -> Result<Vec<Vec<u8>>, SeccompCaptureError> {
    let mut out = Vec::new();
    // A task has at most MAX_INSNS_PER_PATH / 4 filters; bound the loop.
    for index in 0..(32768u64 / 4) {
        match src.filter(index) {
            Ok(Some(prog)) => {
                check_filter(index, &prog)?;
                out.push(prog);
            }
            Ok(None) => break,
            Err(source)
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EACCES) | Some(libc::EPERM)
                ) =>
            {
                return Err(SeccompCaptureError::NotPermitted { index, source })
            }
            Err(source) => return Err(SeccompCaptureError::Read { index, source }),
        }
    }
    if out.is_empty() {
        return Err(SeccompCaptureError::NoFilters);
    }
    if let Some(expected) = expected {
        if expected as usize != out.len() {
            return Err(SeccompCaptureError::CountMismatch {
                expected,
                read: out.len(),
            });
        }
    }
    Ok(out)
}

/// The bytes of a `struct sock_fprog` for a program of `prog_len` bytes
/// stored at `prog_addr`.
pub fn sock_fprog(prog_len: usize, prog_addr: u64) -> [u8; SOCK_FPROG_LEN] {
    let mut b = [0u8; SOCK_FPROG_LEN];
    let insns = (prog_len / SOCK_FILTER_LEN) as u16;
    b[0..2].copy_from_slice(&insns.to_le_bytes());
    b[8..16].copy_from_slice(&prog_addr.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..2].copy_from_slice(&code.to_le_bytes());
        b[2] = jt;
        b[3] = jf;
        b[4..8].copy_from_slice(&k.to_le_bytes());
        b
    }

    fn allow_all() -> Vec<u8> {
        insn(BPF_RET_K, 0, 0, 0x7fff_0000).to_vec()
    }

    struct Fake {
        filters: Vec<Vec<u8>>,
        err_at: Option<(u64, i32)>,
        asked: RefCell<Vec<u64>>,
    }

    impl FilterSource for Fake {
        fn filter(&self, index: u64) -> std::io::Result<Option<Vec<u8>>> {
            self.asked.borrow_mut().push(index);
            if let Some((i, e)) = self.err_at {
                if i == index {
                    return Err(std::io::Error::from_raw_os_error(e));
                }
            }
            Ok(self.filters.get(index as usize).cloned())
        }
    }

    fn fake(filters: Vec<Vec<u8>>) -> Fake {
        Fake {
            filters,
            err_at: None,
            asked: RefCell::new(Vec::new()),
        }
    }

    #[test]
    fn reads_filters_oldest_first_until_enoent() {
        let mut second = allow_all();
        second.extend_from_slice(&insn(BPF_RET_K, 0, 0, 0x0005_0001));
        let f = fake(vec![allow_all(), second.clone()]);
        let got = read_filters(&f, Some(2)).unwrap();
        assert_eq!(got, vec![allow_all(), second]);
        assert_eq!(*f.asked.borrow(), vec![0, 1, 2]);
    }

    #[test]
    fn refuses_user_notification_filters() {
        let mut prog = insn(0x20, 0, 0, 0).to_vec();
        prog.extend_from_slice(&insn(BPF_RET_K, 0, 0, RET_USER_NOTIF));
        let e = read_filters(&fake(vec![allow_all(), prog]), None).unwrap_err();
        assert!(matches!(
            e,
            SeccompCaptureError::UserNotification { index: 1 }
        ));
        assert!(e.is_confinement());
        assert!(e.to_string().contains("SECCOMP_RET_USER_NOTIF"));
    }

    #[test]
    fn refuses_malformed_and_missing_filters() {
        let e = read_filters(&fake(vec![vec![0u8; 12]]), None).unwrap_err();
        assert!(matches!(
            e,
            SeccompCaptureError::Malformed { index: 0, len: 12 }
        ));
        let e = read_filters(&fake(vec![]), None).unwrap_err();
        assert!(matches!(e, SeccompCaptureError::NoFilters));
        let e = read_filters(&fake(vec![allow_all()]), Some(2)).unwrap_err();
        assert!(matches!(
            e,
            SeccompCaptureError::CountMismatch {
                expected: 2,
                read: 1
            }
        ));
    }

    #[test]
    fn permission_errors_say_cap_sys_admin() {
        let f = Fake {
            err_at: Some((0, libc::EACCES)),
            ..fake(vec![allow_all()])
        };
        let e = read_filters(&f, None).unwrap_err();
        assert!(e.is_confinement());
        assert!(e.to_string().contains("CAP_SYS_ADMIN"), "{e}");
        let f = Fake {
            err_at: Some((0, libc::ESRCH)),
            ..fake(vec![allow_all()])
        };
        assert!(!read_filters(&f, None).unwrap_err().is_confinement());
    }

    #[test]
    fn fprog_layout() {
        let b = sock_fprog(24, 0x1122_3344_5566_7788);
        assert_eq!(&b[0..2], &3u16.to_le_bytes());
        assert_eq!(&b[2..8], &[0u8; 6]);
        assert_eq!(&b[8..16], &0x1122_3344_5566_7788u64.to_le_bytes());
    }
}
