//! Dump of a multi-threaded process's non-leader threads: seizing every
//! thread until the set is stable (a thread created while ckpt freezes the
//! others is not missed), capturing each thread's own state (registers,
//! XSAVE, signal mask, sigaltstack, rseq, name, clear_child_tid, robust
//! futex list), and refusing a thread whose security state differs from
//! its leader's (restore gives every thread the leader's plan).
//!
//! The logic runs over the `Tracer` seam and closures, so it is unit-tested
//! with fakes; the live parts are [`freeze_threads`] and [`capture_all`].

use crate::dump::PAGE;
use crate::error::DumpError;
use crate::model::{Rseq, ThreadState};
use crate::procfs;
use crate::ptrace::{kernel_resume_regs, Regs, TraceError, Tracee, Tracer};

/// Listing rounds after which a process still creating threads faster than
/// ckpt can seize them is refused.
const MAX_ROUNDS: usize = 1000;

/// `prctl(PR_GET_TID_ADDRESS)`.
const PR_GET_TID_ADDRESS: u64 = 40;
/// `prctl(PR_GET_SECUREBITS)`.
const PR_GET_SECUREBITS: u64 = 27;

/// Seizes every thread `list` reports other than `leader`, listing again
/// until a listing shows no thread that is not seized yet. A seized thread
/// is stopped and creates no threads, so a stable listing is complete.
/// `seize` returns `Ok(None)` for a thread that exited meanwhile (it is not
/// asked again). The result is in tid order.
pub fn seize_until_stable<T, E>(
    leader: i32,
    mut list: impl FnMut() -> Result<Vec<i32>, E>,
    mut seize: impl FnMut(i32) -> Result<Option<T>, E>,
    too_many_rounds: impl FnOnce() -> E,
) -> Result<Vec<(i32, T)>, E> {
    let mut seized: Vec<(i32, T)> = Vec::new();
    let mut gone: Vec<i32> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let fresh: Vec<i32> = list()?
            .into_iter()
            .filter(|&t| t != leader && !gone.contains(&t) && !seized.iter().any(|s| s.0 == t))
            .collect();
        if fresh.is_empty() {
            seized.sort_by_key(|s| s.0);
            return Ok(seized);
        }
        for tid in fresh {
            match seize(tid)? {
                Some(t) => seized.push((tid, t)),
                None => gone.push(tid),
            }
        }
    }
    Err(too_many_rounds())
}

/// One non-leader thread held stopped. Dropping it puts back its registers
/// and signal mask and detaches it: it runs on as if nothing happened.
pub struct FrozenThread {
    pub(crate) tracee: Tracee,
    pid: i32,
    orig_regs: Option<Regs>,
    orig_mask: Option<u64>,
}

impl FrozenThread {
    pub fn tid(&self) -> i32 {
        self.tracee.pid()
    }

    fn put_back(&mut self) -> Result<(), TraceError> {
        let (pid, tid) = (self.pid, self.tid());
        if let Some(r) = self.orig_regs.take() {
            // As for the leader (`dump::FrozenTask`): the kernel's restart
            // logic runs only when a signal is delivered at detach.
            let deliverable = self
                .orig_mask
                .is_some_and(|m| pending_of(pid, tid) & !m != 0);
            let r = if deliverable {
                r
            } else {
                kernel_resume_regs(&r)
            };
            self.tracee.set_regs(&r)?;
        }
        if let Some(m) = self.orig_mask.take() {
            self.tracee.set_sigmask(m)?;
        }
        self.tracee.end_injection();
        Ok(())
    }

    /// Put the thread back and let it run.
    pub fn release_running(mut self) -> Result<(), TraceError> {
        self.put_back()?;
        self.tracee.detach_thread()
    }

    /// After the thread group was sent SIGKILL: reap this traced thread
    /// (its tracer must, before the leader can be reaped).
    pub fn reap_killed(mut self) {
        self.tracee.kill_thread_group();
    }
}

impl Drop for FrozenThread {
    fn drop(&mut self) {
        let _ = self.put_back();
        let _ = self.tracee.detach_thread();
    }
}

/// Signals pending for thread `tid` (its own `SigPnd` | the process's `ShdPnd`).
fn pending_of(pid: i32, tid: i32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap_or_default();
    pending_in_status(&status)
}

fn pending_in_status(status: &str) -> u64 {
    ["SigPnd", "ShdPnd"]
        .iter()
        .filter_map(|k| procfs::status_field(status, k))
        .filter_map(|v| u64::from_str_radix(v, 16).ok())
        .fold(0, |a, b| a | b)
}

fn list_tids(pid: i32) -> Result<Vec<i32>, DumpError> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|source| DumpError::Proc {
        pid,
        file: "task".into(),
        source,
    })?;
    Ok(dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect())
}

/// Seizes every non-leader thread of `pid` (whose leader ckpt already
/// holds), until the set is stable. A thread that cannot be seized makes
/// the dump refuse; the threads seized so far are released by the drop.
pub fn freeze_threads(pid: i32) -> Result<Vec<FrozenThread>, DumpError> {
    let seized = seize_until_stable(
        pid,
        || list_tids(pid),
        |tid| match Tracee::seize(tid) {
            Ok(t) => {
                let orig_regs = t.regs().ok();
                let orig_mask = t.get_sigmask().ok();
                Ok(Some(FrozenThread {
                    tracee: t,
                    pid,
                    orig_regs,
                    orig_mask,
                }))
            }
            Err(TraceError::Ptrace { source, .. })
                if source.raw_os_error() == Some(libc::ESRCH)
                    && !std::path::Path::new(&format!("/proc/{pid}/task/{tid}/status"))
                        .exists() =>
            {
                Ok(None)
            }
            Err(source) => Err(DumpError::Unsupported {
                pid,
                what: format!("its thread {tid} cannot be frozen ({source})"),
            }),
        },
        || DumpError::Unsupported {
            pid,
            what: format!("it kept creating threads during {MAX_ROUNDS} rounds of freezing them"),
        },
    )?;
    Ok(seized.into_iter().map(|(_, t)| t).collect())
}

/// Captures the state of every frozen thread and checks that each one's
/// security state is its leader's (`leader`, as `security_dump` read it).
pub fn capture_all(
    pid: i32,
    threads: &mut [FrozenThread],
    leader: &lsm_labels::TaskSecurity,
) -> Result<Vec<ThreadState>, DumpError> {
    let Some(first) = threads.first() else {
        return Ok(Vec::new());
    };
    let syscall_ip = vdso_syscall_ip(&first.tracee, pid).ok_or(DumpError::Unsupported {
        pid,
        what: "it has no [vdso] with a syscall instruction".into(),
    })?;
    let mut out = Vec::with_capacity(threads.len());
    for th in threads.iter_mut() {
        let tid = th.tid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).map_err(
            |source| DumpError::Proc {
                pid,
                file: format!("task/{tid}/status"),
                source,
            },
        )?;
        check_not_pending(pid, tid, &status)?;
        let mut sec = read_security(pid, tid, leader)?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .map_err(|source| DumpError::Proc {
                pid,
                file: format!("task/{tid}/comm"),
                source,
            })?
            .trim_end()
            .to_string();
        th.tracee.set_syscall_ip(syscall_ip);
        let (state, securebits) = capture_thread(&mut th.tracee, pid, comm)?;
        th.tracee.end_injection();
        sec.creds.securebits = securebits;
        check_same_security(pid, tid, leader, &sec)?;
        out.push(state);
    }
    Ok(out)
}

/// The address of the `syscall` instruction in the process's `[vdso]`.
fn vdso_syscall_ip(t: &Tracee, pid: i32) -> Option<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let vdso = procfs::parse_maps(&maps)
        .ok()?
        .into_iter()
        .find(|m| m.name == "[vdso]")?;
    let mut code = vec![0u8; (vdso.end - vdso.start) as usize];
    t.read_mem(vdso.start, &mut code).ok()?;
    crate::ptrace::find_syscall_insn(&code).map(|off| vdso.start + off as u64)
}

/// The per-thread pending signals are not restored yet: refused, naming
/// the thread (the process-wide ones are the leader's check).
fn check_not_pending(pid: i32, tid: i32, status: &str) -> Result<(), DumpError> {
    let own = procfs::status_field(status, "SigPnd")
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .unwrap_or(0);
    if own != 0 {
        return Err(DumpError::Refused {
            pid,
            what: format!(
                "its thread {tid} has a pending signal (mask {own:#x}), which is not restored yet"
            ),
            way_out: "let the thread take it (unblock it) and dump again".into(),
        });
    }
    Ok(())
}

/// The thread's credentials, labels, no_new_privs and seccomp filters, read
/// from /proc and ptrace (its filters are suspended first when it has any,
/// so that ckpt's injected calls are not subject to them).
fn read_security(
    pid: i32,
    tid: i32,
    leader: &lsm_labels::TaskSecurity,
) -> Result<lsm_labels::TaskSecurity, DumpError> {
    use lsm_labels::SeccompMode;
    use lsm_labels::{taskstate, HostView};
    let fail = |what: String| DumpError::Security {
        pid,
        detail: format!("thread {tid}: {what}"),
    };
    let (mut sec, count, _) = taskstate::read_thread_security(&HostView::live(), pid, tid)
        .map_err(|e| fail(e.to_string()))?;
    if sec.seccomp != SeccompMode::Disabled || leader.seccomp != SeccompMode::Disabled {
        crate::sys_security::ptrace_set_options(
            tid,
            crate::sys_security::PTRACE_O_SUSPEND_SECCOMP
                | crate::sys_security::PTRACE_O_TRACESYSGOOD,
        )
        .map_err(|e| DumpError::Confinement {
            pid,
            what: format!("its thread {tid} runs under seccomp, and suspending its filters (PTRACE_O_SUSPEND_SECCOMP) failed: {e}; dump it as root"),
        })?;
    }
    if sec.seccomp == SeccompMode::Filter {
        sec.seccomp_filters =
            crate::seccomp::read_filters(&crate::seccomp::LiveFilters(tid), count)
                .map_err(|e| fail(e.to_string()))?;
    }
    Ok(sec)
}

/// What of a thread's security state differs from its leader's, if any.
pub fn security_difference(
    leader: &lsm_labels::TaskSecurity,
    thread: &lsm_labels::TaskSecurity,
) -> Option<&'static str> {
    if leader.creds != thread.creds {
        return Some("credentials (ids, groups, capabilities or securebits)");
    }
    if leader.labels != thread.labels {
        return Some("LSM labels");
    }
    if leader.no_new_privs != thread.no_new_privs {
        return Some("no_new_privs");
    }
    if leader.seccomp != thread.seccomp || leader.seccomp_filters != thread.seccomp_filters {
        return Some("seccomp filters");
    }
    None
}

fn check_same_security(
    pid: i32,
    tid: i32,
    leader: &lsm_labels::TaskSecurity,
    thread: &lsm_labels::TaskSecurity,
) -> Result<(), DumpError> {
    match security_difference(leader, thread) {
        None => Ok(()),
        Some(what) => Err(DumpError::Confinement {
            pid,
            what: format!("its thread {tid} has {what} different from its leader's, and threads with their own security state are not supported yet"),
        }),
    }
}

fn trace(pid: i32) -> impl Fn(TraceError) -> DumpError {
    move |source| DumpError::Trace { pid, source }
}

/// Captures one stopped thread through `t` (its syscall instruction set):
/// registers, XSAVE, mask and rseq by ptrace, the rest by calls injected
/// into it with every signal blocked, on a scratch page it maps and
/// unmaps. Its registers and mask are put back. Returns its securebits too.
pub fn capture_thread(
    t: &mut dyn Tracer,
    pid: i32,
    comm: String,
) -> Result<(ThreadState, u32), DumpError> {
    let regs = t.regs().map_err(trace(pid))?;
    let xsave = t.xstate().map_err(trace(pid))?;
    let sigmask = t.sigmask().map_err(trace(pid))?;
    let rseq = t.rseq().map_err(trace(pid))?.map(|c| Rseq {
        addr: c.rseq_abi_pointer,
        len: c.rseq_abi_size,
        sig: c.signature,
    });
    t.set_sigmask_to(!0).map_err(trace(pid))?;
    let injected = injected_state(t, pid);
    let put_back = t
        .set_regs(&regs)
        .and_then(|()| t.set_sigmask_to(sigmask))
        .map_err(trace(pid));
    let (sigaltstack, clear_child_tid, robust_list, securebits) = injected?;
    put_back?;
    let state = ThreadState {
        tid: t.tid(),
        comm,
        regs,
        xsave,
        sigmask,
        sigaltstack,
        rseq,
        clear_child_tid,
        robust_list,
    };
    Ok((state, securebits))
}

type Injected = (Option<(u64, u32, u64)>, u64, Option<(u64, u64)>, u32);

fn injected_state(t: &mut dyn Tracer, pid: i32) -> Result<Injected, DumpError> {
    let inj = |t: &mut dyn Tracer, call: &str, nr: i64, args: &[u64]| {
        crate::dump::inj(pid, call, t.syscall(nr, args))
    };
    let scratch = inj(
        t,
        "mmap",
        libc::SYS_mmap,
        &[
            0,
            PAGE,
            (libc::PROT_READ | libc::PROT_WRITE) as u64,
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
            u64::MAX,
            0,
        ],
    )?;
    let read = |t: &mut dyn Tracer, n: usize| -> Result<Vec<u64>, DumpError> {
        let mut b = vec![0u8; n * 8];
        t.read_mem(scratch, &mut b).map_err(trace(pid))?;
        Ok(b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect())
    };
    let result = (|| {
        inj(t, "sigaltstack", libc::SYS_sigaltstack, &[0, scratch])?;
        let ss = read(t, 3)?;
        let flags = ss[1] as u32;
        let sigaltstack = (flags & libc::SS_DISABLE as u32 == 0).then_some((ss[0], flags, ss[2]));
        inj(
            t,
            "prctl(PR_GET_TID_ADDRESS)",
            libc::SYS_prctl,
            &[PR_GET_TID_ADDRESS, scratch],
        )?;
        let clear_child_tid = read(t, 1)?[0];
        inj(
            t,
            "get_robust_list",
            libc::SYS_get_robust_list,
            &[0, scratch, scratch + 8],
        )?;
        let rl = read(t, 2)?;
        let robust_list = (rl[0] != 0).then_some((rl[0], rl[1]));
        let securebits = inj(
            t,
            "prctl(PR_GET_SECUREBITS)",
            libc::SYS_prctl,
            &[PR_GET_SECUREBITS],
        )? as u32;
        Ok((sigaltstack, clear_child_tid, robust_list, securebits))
    })();
    let unmapped = inj(t, "munmap", libc::SYS_munmap, &[scratch, PAGE]);
    let r = result?;
    unmapped?;
    Ok(r)
}

#[cfg(test)]
mod tests;
