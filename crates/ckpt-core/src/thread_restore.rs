//! Restore of a process's non-leader threads. Each is created by a clone3
//! injected into the restored leader (CLONE_VM | CLONE_FS | CLONE_FILES |
//! CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM, `set_tid` = its recorded
//! tid) while the leader still holds ckpt's credentials, since `set_tid`
//! needs CAP_CHECKPOINT_RESTORE in the creating task. The leader is traced
//! with PTRACE_O_TRACECLONE, so the thread starts stopped and traced.
//! Later each thread gets its own state (sigaltstack, name,
//! clear_child_tid, robust list, rseq) and the leader's security plan by
//! injection in that thread, and, after the leader's seccomp filters are
//! installed with TSYNC, its registers, XSAVE area and signal mask.
//!
//! [`ThreadTracees`] kills the whole thread group when dropped before
//! [`ThreadTracees::detach_all`]: a failed restore leaves nothing alive.

use crate::error::RestoreError;
use crate::model::ThreadState;
use crate::ptrace::{Tracee, Tracer};

/// `clone3(2)` system call number (x86_64).
const SYS_CLONE3: i64 = 435;
/// Size of `struct clone_args` up to `set_tid_size` and `cgroup` (VER2).
const CLONE_ARGS_SIZE: u64 = 88;
/// The flags of a thread: everything shared with its leader.
pub const THREAD_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;

/// The bytes of `struct clone_args` creating thread `tid`, with its
/// `set_tid` array (one pid_t) right after it, all at task address `at`.
pub fn clone_args(at: u64, tid: i32) -> Vec<u8> {
    let words: [u64; 11] = [
        THREAD_FLAGS,
        0, // pidfd
        0, // child_tid
        0, // parent_tid
        0, // exit_signal: none for a thread
        0, // stack: the thread runs no code of its own before its registers are set
        0, // stack_size
        0, // tls: set with the registers (fs_base)
        at + CLONE_ARGS_SIZE,
        1, // set_tid_size
        0, // cgroup
    ];
    let mut b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    b.extend_from_slice(&tid.to_le_bytes());
    b
}

/// The traced threads of one restored process.
#[derive(Default)]
pub struct ThreadTracees(Vec<(Tracee, ThreadState)>);

impl ThreadTracees {
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut (Tracee, ThreadState)> {
        self.0.iter_mut()
    }

    /// Lets every thread run (their registers are in place).
    pub fn detach_all(mut self) -> Result<(), RestoreError> {
        for (t, s) in self.0.iter_mut() {
            t.detach_thread()
                .map_err(|source| RestoreError::Trace { pid: s.tid, source })?;
        }
        self.0.clear();
        Ok(())
    }
}

impl Drop for ThreadTracees {
    fn drop(&mut self) {
        // SIGKILL takes the whole group; each traced thread is reaped here,
        // before the leader's guard reaps the leader.
        for (t, _) in self.0.iter_mut() {
            t.kill_thread_group();
        }
    }
}

fn inject(
    t: &mut Tracee,
    tid: i32,
    what: &str,
    nr: i64,
    args: &[u64],
) -> Result<u64, RestoreError> {
    crate::security_restore::inject(t, tid, what, nr, args)
}

/// Creates every recorded thread in `leader` (stopped, traced), using the
/// leader's scratch memory at `scratch`.
pub fn create_all(
    leader: &mut Tracee,
    pid: i32,
    scratch: u64,
    threads: &[ThreadState],
) -> Result<ThreadTracees, RestoreError> {
    let mut out = ThreadTracees::default();
    for th in threads {
        let t = create_thread(leader, pid, scratch, th.tid)?;
        out.0.push((t, th.clone()));
    }
    Ok(out)
}

fn create_thread(
    leader: &mut Tracee,
    pid: i32,
    scratch: u64,
    tid: i32,
) -> Result<Tracee, RestoreError> {
    leader
        .write_mem(scratch, &clone_args(scratch, tid))
        .map_err(|source| RestoreError::Trace { pid, source })?;
    let r = leader.syscall(SYS_CLONE3, &[scratch, CLONE_ARGS_SIZE]);
    let new = leader.take_new_task();
    let v = r.map_err(|source| RestoreError::Trace { pid, source })?;
    if (-4095..0).contains(&v) {
        if v == -(libc::EEXIST as i64) {
            return Err(RestoreError::PidTaken { pid: tid });
        }
        return Err(RestoreError::Injected {
            pid,
            call: format!("clone3(CLONE_THREAD, set_tid {tid})"),
            errno: (-v) as i32,
        });
    }
    let Some(new) = new else {
        return Err(RestoreError::BadImage(format!(
            "thread {tid} was created but not reported to ckpt (PTRACE_EVENT_CLONE)"
        )));
    };
    let t = Tracee::adopt_new_task(new, leader.syscall_ip());
    let t = match t {
        Ok(t) => t,
        Err(source) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(new),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(RestoreError::Trace { pid: tid, source });
        }
    };
    if new != tid {
        // Outside the leader's PID namespace the kernel reports another number.
        let ns_tid = crate::procfs::status_field(
            &std::fs::read_to_string(format!("/proc/{new}/status")).unwrap_or_default(),
            "NSpid",
        )
        .and_then(|v| {
            v.split_whitespace()
                .last()
                .and_then(|n| n.parse::<i32>().ok())
        });
        if ns_tid != Some(tid) {
            let mut t = t;
            t.kill_thread_group();
            return Err(RestoreError::BadImage(format!(
                "thread {tid} came back as {new}"
            )));
        }
    }
    Ok(t)
}

/// The thread's own state, injected in it: sigaltstack, name,
/// clear_child_tid, robust list and rseq. `scratch` is the process's
/// scratch memory (the mm is shared).
pub fn restore_own_state(
    t: &mut Tracee,
    th: &ThreadState,
    scratch: u64,
) -> Result<(), RestoreError> {
    let tid = th.tid;
    let mut b = Vec::with_capacity(24);
    let (sp, fl, sz) = th.sigaltstack.unwrap_or((0, libc::SS_DISABLE as u32, 0));
    b.extend_from_slice(&sp.to_le_bytes());
    b.extend_from_slice(&((fl & !(libc::SS_ONSTACK as u32)) as u64).to_le_bytes());
    b.extend_from_slice(&sz.to_le_bytes());
    let mut comm = th.comm.as_bytes()[..th.comm.len().min(15)].to_vec();
    comm.push(0);
    b.extend_from_slice(&comm);
    t.write_mem(scratch, &b)
        .map_err(|source| RestoreError::Trace { pid: tid, source })?;
    inject(t, tid, "sigaltstack", libc::SYS_sigaltstack, &[scratch, 0])?;
    inject(
        t,
        tid,
        "prctl(PR_SET_NAME)",
        libc::SYS_prctl,
        &[libc::PR_SET_NAME as u64, scratch + 24],
    )?;
    inject(
        t,
        tid,
        "set_tid_address",
        libc::SYS_set_tid_address,
        &[th.clear_child_tid],
    )?;
    if let Some((head, len)) = th.robust_list {
        inject(
            t,
            tid,
            "set_robust_list",
            libc::SYS_set_robust_list,
            &[head, len],
        )?;
    }
    if let Some(rs) = th.rseq {
        inject(
            t,
            tid,
            "rseq",
            libc::SYS_rseq,
            &[rs.addr, rs.len as u64, 0, rs.sig as u64],
        )?;
    }
    Ok(())
}

/// Last: the thread's registers (as the kernel would resume them), XSAVE
/// area and signal mask.
pub fn restore_registers(t: &mut Tracee, th: &ThreadState) -> Result<(), RestoreError> {
    let tr = |source| RestoreError::Trace {
        pid: th.tid,
        source,
    };
    t.end_injection();
    t.set_regs(&crate::restore::resume_regs(&th.regs))
        .map_err(tr)?;
    if !th.xsave.is_empty() {
        t.set_xstate(&th.xsave).map_err(tr)?;
    }
    t.set_sigmask(th.sigmask).map_err(tr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_args_create_a_thread_with_the_recorded_tid() {
        let b = clone_args(0x1000, 4242);
        assert_eq!(b.len(), 88 + 4);
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(w(0) & libc::CLONE_THREAD as u64, libc::CLONE_THREAD as u64);
        assert_eq!(w(0) & libc::CLONE_VM as u64, libc::CLONE_VM as u64);
        assert_eq!(w(4), 0, "a thread has no exit signal");
        assert_eq!((w(5), w(6)), (0, 0), "no stack of its own");
        assert_eq!(w(8), 0x1000 + 88, "set_tid right after the struct");
        assert_eq!(w(9), 1);
        assert_eq!(i32::from_le_bytes(b[88..92].try_into().unwrap()), 4242);
    }
}
