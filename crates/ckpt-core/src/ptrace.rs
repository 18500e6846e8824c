//! The tracer seam: freezing a task with ptrace and running system calls
//! inside it ("syscall injection") by pointing its instruction pointer at a
//! `syscall` instruction (0f 05) of its own `[vdso]` and running it between
//! a system-call-entry and a system-call-exit stop (PTRACE_SYSCALL).
//! No code bytes are ever written into a task.
//!
//! Why not single-stepping: a single step ends with a SIGTRAP the kernel
//! forces on the task (`force_sig_info`), which merges with a SIGTRAP the
//! task had pending (consuming it) and, because ckpt blocks every signal
//! while it works, resets the task's SIGTRAP handler to SIG_DFL. System-call
//! stops are no signals: the task's pending signals, their order and its
//! dispositions stay exactly as they were. A real signal that still stops
//! the task meanwhile (only SIGSTOP can: all others are blocked) is kept
//! and handed back to it when ckpt detaches.
//!
//! `Tracer` is the interface the dump and restore logic use; `Tracee` is the
//! real implementation over ptrace, and tests use a recording fake.

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::{IoSlice, IoSliceMut};

use crate::sys;

/// General-purpose registers of an x86_64 task.
pub type Regs = libc::user_regs_struct;

/// A failed ptrace-level operation on a task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    #[error("{op} on pid {pid}: {source}")]
    Ptrace {
        op: &'static str,
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("pid {pid} stopped unexpectedly during {op}: {status}")]
    UnexpectedStop {
        op: &'static str,
        pid: i32,
        status: String,
    },
    #[error("pid {pid} has no [vdso] with a syscall instruction to borrow")]
    NoSyscallInsn { pid: i32 },
    #[error("pid {pid} received signal {signal} while ckpt was working in it (the signal is kept and handed back to it); retry when it is done with signals")]
    SignalDuringInjection { pid: i32, signal: i32 },
    #[error("pid {pid} is stopped (SIGSTOP or job control), and a stopped process cannot be restored stopped yet; continue it with `kill -CONT {pid}` first")]
    GroupStopped { pid: i32 },
}

/// What the dump and restore logic need from a stopped task.
pub trait Tracer {
    fn pid(&self) -> i32;
    fn regs(&self) -> Result<Regs, TraceError>;
    fn set_regs(&mut self, regs: &Regs) -> Result<(), TraceError>;
    /// Run system call `nr` with `args` inside the task; the raw return
    /// value (negative errno on failure).
    fn syscall(&mut self, nr: i64, args: &[u64]) -> Result<i64, TraceError>;
    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<(), TraceError>;
    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), TraceError>;
    /// Where the borrowed `syscall` instruction now is (after the vdso moved).
    fn set_syscall_ip(&mut self, addr: u64);
    /// The thread this tracer drives (for a single-threaded task, its pid).
    fn tid(&self) -> i32 {
        self.pid()
    }
    // The per-thread state below has defaults (ENOSYS; detach and kill do
    // nothing) so that a fake needs only what its test uses.
    /// The XSAVE area (PTRACE_GETREGSET NT_X86_XSTATE).
    fn xstate(&self) -> Result<Vec<u8>, TraceError> {
        Err(unsupported("PTRACE_GETREGSET NT_X86_XSTATE", self.pid()))
    }
    fn set_xstate_area(&mut self, _area: &[u8]) -> Result<(), TraceError> {
        Err(unsupported("PTRACE_SETREGSET NT_X86_XSTATE", self.pid()))
    }
    /// The blocked-signal mask (PTRACE_GETSIGMASK).
    fn sigmask(&self) -> Result<u64, TraceError> {
        Err(unsupported("PTRACE_GETSIGMASK", self.pid()))
    }
    fn set_sigmask_to(&mut self, _mask: u64) -> Result<(), TraceError> {
        Err(unsupported("PTRACE_SETSIGMASK", self.pid()))
    }
    /// The registered rseq area (PTRACE_GET_RSEQ_CONFIGURATION).
    fn rseq(&self) -> Result<Option<sys::RseqConfig>, TraceError> {
        Err(unsupported("PTRACE_GET_RSEQ_CONFIGURATION", self.pid()))
    }
    /// Let the thread go (PTRACE_DETACH); the tracer is spent afterwards.
    fn detach_thread(&mut self) -> Result<(), TraceError> {
        Ok(())
    }
    /// SIGKILL the thread's whole thread group and reap this thread.
    fn kill_thread_group(&mut self) {}
}

fn perr(op: &'static str, pid: i32, e: Errno) -> TraceError {
    TraceError::Ptrace {
        op,
        pid,
        source: std::io::Error::from_raw_os_error(e as i32),
    }
}

fn unsupported(op: &'static str, pid: i32) -> TraceError {
    perr(op, pid, Errno::ENOSYS)
}

fn ioerr(op: &'static str, pid: i32, e: std::io::Error) -> TraceError {
    TraceError::Ptrace { op, pid, source: e }
}

/// A task stopped under our ptrace.
pub struct Tracee {
    pid: Pid,
    syscall_ip: u64,
    /// Registers used as the template of every injected call.
    template: Option<Regs>,
    /// A signal that stopped the task during an injected call: delivered to
    /// it when ckpt detaches, never dropped.
    held_signal: Option<Signal>,
    /// The task a fork/vfork/clone event stop during an injected call
    /// reported (PTRACE_GETEVENTMSG), until taken.
    new_task: Option<i32>,
    /// Detached or killed: nothing more may be done through this tracer.
    spent: bool,
}

impl Tracee {
    /// PTRACE_SEIZE + PTRACE_INTERRUPT and wait for the task's stop.
    pub fn seize(pid: i32) -> Result<Tracee, TraceError> {
        let p = Pid::from_raw(pid);
        ptrace::seize(p, ptrace::Options::PTRACE_O_TRACESYSGOOD)
            .map_err(|e| perr("PTRACE_SEIZE", pid, e))?;
        let t = Tracee {
            pid: p,
            syscall_ip: 0,
            template: None,
            held_signal: None,
            new_task: None,
            spent: false,
        };
        ptrace::interrupt(p).map_err(|e| perr("PTRACE_INTERRUPT", pid, e))?;
        loop {
            match waitpid(p, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::PtraceEvent(_, sig, ev)) if ev == libc::PTRACE_EVENT_STOP => {
                    if sig == Signal::SIGTRAP {
                        break;
                    }
                    // A group-stop (SIGSTOP, SIGTSTP ...): detaching leaves
                    // the task stopped, as it was.
                    let _ = t.detach();
                    return Err(TraceError::GroupStopped { pid });
                }
                Ok(WaitStatus::Stopped(_, sig)) => {
                    // A signal arrived before our interrupt: deliver it as the
                    // kernel would have, the interrupt stop follows.
                    ptrace::cont(p, sig).map_err(|e| perr("PTRACE_CONT", pid, e))?;
                }
                Ok(other) => {
                    return Err(TraceError::UnexpectedStop {
                        op: "freeze",
                        pid,
                        status: format!("{other:?}"),
                    })
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(perr("waitpid", pid, e)),
            }
        }
        Ok(t)
    }

    /// Adopt a child created by [`sys::clone_stopped_child`] (it did
    /// PTRACE_TRACEME and stopped itself): wait for that stop.
    pub fn adopt_stopped_child(pid: i32) -> Result<Tracee, TraceError> {
        let p = Pid::from_raw(pid);
        match waitpid(p, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => {}
            Ok(other) => {
                return Err(TraceError::UnexpectedStop {
                    op: "start of the restored task",
                    pid,
                    status: format!("{other:?}"),
                })
            }
            Err(e) => return Err(perr("waitpid", pid, e)),
        }
        ptrace::setoptions(
            p,
            ptrace::Options::PTRACE_O_EXITKILL
                | ptrace::Options::PTRACE_O_TRACESYSGOOD
                | ptrace::Options::PTRACE_O_TRACECLONE,
        )
        .map_err(|e| perr("PTRACE_SETOPTIONS", pid, e))?;
        Ok(Tracee::stopped(p, 0))
    }

    fn stopped(pid: Pid, syscall_ip: u64) -> Tracee {
        Tracee {
            pid,
            syscall_ip,
            template: None,
            held_signal: None,
            new_task: None,
            spent: false,
        }
    }

    /// Adopt task `tid`, auto-attached when an injected clone created it
    /// (PTRACE_O_TRACECLONE): wait for its first stop. Its injected calls
    /// borrow the same `syscall` instruction as its creator's (`syscall_ip`).
    pub fn adopt_new_task(tid: i32, syscall_ip: u64) -> Result<Tracee, TraceError> {
        let p = Pid::from_raw(tid);
        loop {
            match waitpid(p, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => break,
                Ok(WaitStatus::PtraceEvent(_, _, ev)) if ev == libc::PTRACE_EVENT_STOP => break,
                Err(Errno::EINTR) => continue,
                Ok(other) => {
                    return Err(TraceError::UnexpectedStop {
                        op: "start of a new thread",
                        pid: tid,
                        status: format!("{other:?}"),
                    })
                }
                Err(e) => return Err(perr("waitpid", tid, e)),
            }
        }
        Ok(Tracee::stopped(p, syscall_ip))
    }

    /// The address of the borrowed `syscall` instruction (0: none yet).
    pub fn syscall_ip(&self) -> u64 {
        self.syscall_ip
    }

    /// The task a fork, vfork or clone event stop during the last injected
    /// call reported, once.
    pub fn take_new_task(&mut self) -> Option<i32> {
        self.new_task.take()
    }

    pub fn get_xstate(&self) -> Result<Vec<u8>, TraceError> {
        sys::get_xstate(self.pid.as_raw())
            .map_err(|e| ioerr("PTRACE_GETREGSET NT_X86_XSTATE", self.pid.as_raw(), e))
    }
    pub fn set_xstate(&self, area: &[u8]) -> Result<(), TraceError> {
        sys::set_xstate(self.pid.as_raw(), area)
            .map_err(|e| ioerr("PTRACE_SETREGSET NT_X86_XSTATE", self.pid.as_raw(), e))
    }
    pub fn get_sigmask(&self) -> Result<u64, TraceError> {
        sys::get_sigmask(self.pid.as_raw())
            .map_err(|e| ioerr("PTRACE_GETSIGMASK", self.pid.as_raw(), e))
    }
    pub fn set_sigmask(&self, mask: u64) -> Result<(), TraceError> {
        sys::set_sigmask(self.pid.as_raw(), mask)
            .map_err(|e| ioerr("PTRACE_SETSIGMASK", self.pid.as_raw(), e))
    }
    pub fn get_rseq(&self) -> Result<Option<sys::RseqConfig>, TraceError> {
        sys::get_rseq_config(self.pid.as_raw())
            .map_err(|e| ioerr("PTRACE_GET_RSEQ_CONFIGURATION", self.pid.as_raw(), e))
    }

    /// Forget the injection template (call after restoring the real registers).
    pub fn end_injection(&mut self) {
        self.template = None;
    }

    /// PTRACE_DETACH: the task continues (with the signal that stopped it
    /// during an injected call, if one did).
    pub fn detach(self) -> Result<(), TraceError> {
        ptrace::detach(self.pid, self.held_signal)
            .map_err(|e| perr("PTRACE_DETACH", self.pid.as_raw(), e))
    }

    /// Resume the task with PTRACE_SYSCALL and wait for its system-call
    /// stop `want` (1 entry, 2 exit) of injected call `nr`. A real signal
    /// stopping it instead is kept for the detach and reported.
    fn run_to_syscall_stop(&mut self, nr: i64, want: u8) -> Result<(), TraceError> {
        let pid = self.pid.as_raw();
        ptrace::syscall(self.pid, None).map_err(|e| perr("PTRACE_SYSCALL", pid, e))?;
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::PtraceSyscall(_)) => return Ok(()),
                Ok(WaitStatus::Stopped(_, Signal::SIGTRAP))
                    if sys::syscall_stop_op(pid).ok() == Some(want) =>
                {
                    return Ok(())
                }
                Ok(WaitStatus::PtraceEvent(
                    _,
                    _,
                    libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE,
                )) => {
                    // The injected call created a task (auto-attached,
                    // stopped): note it and run on to the exit stop.
                    let msg = ptrace::getevent(self.pid)
                        .map_err(|e| perr("PTRACE_GETEVENTMSG", pid, e))?;
                    self.new_task = Some(msg as i32);
                    ptrace::syscall(self.pid, None).map_err(|e| perr("PTRACE_SYSCALL", pid, e))?;
                }
                Ok(WaitStatus::Stopped(_, sig)) => {
                    self.held_signal = Some(sig);
                    return Err(TraceError::SignalDuringInjection {
                        pid,
                        signal: sig as i32,
                    });
                }
                Err(Errno::EINTR) => continue,
                Ok(other) => {
                    let at = self.regs().map(|r| (r.rip, r.rax)).unwrap_or((0, 0));
                    let addr = sys::siginfo_addr(pid);
                    return Err(TraceError::UnexpectedStop {
                        op: "injected system call",
                        pid,
                        status: format!(
                            "{other:?} (syscall {nr} at {:#x}, now rip {:#x} rax {:#x}, fault address {addr:#x})",
                            self.syscall_ip, at.0, at.1
                        ),
                    });
                }
                Err(e) => return Err(perr("waitpid", pid, e)),
            }
        }
    }

    /// SIGKILL the task and reap it if it is our child.
    pub fn kill_and_reap(self) {
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, Some(WaitPidFlag::__WALL));
    }
}

impl Tracer for Tracee {
    fn pid(&self) -> i32 {
        self.pid.as_raw()
    }
    fn regs(&self) -> Result<Regs, TraceError> {
        ptrace::getregs(self.pid).map_err(|e| perr("PTRACE_GETREGS", self.pid.as_raw(), e))
    }
    fn set_regs(&mut self, regs: &Regs) -> Result<(), TraceError> {
        ptrace::setregs(self.pid, *regs).map_err(|e| perr("PTRACE_SETREGS", self.pid.as_raw(), e))
    }
    fn set_syscall_ip(&mut self, addr: u64) {
        self.syscall_ip = addr;
    }
    fn xstate(&self) -> Result<Vec<u8>, TraceError> {
        self.get_xstate()
    }
    fn set_xstate_area(&mut self, area: &[u8]) -> Result<(), TraceError> {
        self.set_xstate(area)
    }
    fn sigmask(&self) -> Result<u64, TraceError> {
        self.get_sigmask()
    }
    fn set_sigmask_to(&mut self, mask: u64) -> Result<(), TraceError> {
        self.set_sigmask(mask)
    }
    fn rseq(&self) -> Result<Option<sys::RseqConfig>, TraceError> {
        self.get_rseq()
    }
    fn detach_thread(&mut self) -> Result<(), TraceError> {
        if self.spent {
            return Ok(());
        }
        self.spent = true;
        ptrace::detach(self.pid, self.held_signal)
            .map_err(|e| perr("PTRACE_DETACH", self.pid.as_raw(), e))
    }
    fn kill_thread_group(&mut self) {
        if self.spent {
            return;
        }
        self.spent = true;
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, Some(WaitPidFlag::__WALL));
    }
    fn syscall(&mut self, nr: i64, args: &[u64]) -> Result<i64, TraceError> {
        let pid = self.pid.as_raw();
        if self.syscall_ip == 0 {
            return Err(TraceError::NoSyscallInsn { pid });
        }
        let template = match self.template {
            Some(t) => t,
            None => {
                let t = self.regs()?;
                self.template = Some(t);
                t
            }
        };
        let mut r = template;
        let a = |i: usize| args.get(i).copied().unwrap_or(0);
        r.rax = nr as u64;
        r.orig_rax = u64::MAX; // not in a system call: no restart fix-up
        r.rdi = a(0);
        r.rsi = a(1);
        r.rdx = a(2);
        r.r10 = a(3);
        r.r8 = a(4);
        r.r9 = a(5);
        r.rip = self.syscall_ip;
        r.eflags &= !0x100; // TF is managed by the kernel for PTRACE_SINGLESTEP
        self.set_regs(&r)?;
        self.run_to_syscall_stop(nr, 1)?;
        self.run_to_syscall_stop(nr, 2)?;
        let out = self.regs()?;
        if out.rip != self.syscall_ip + 2 {
            return Err(TraceError::UnexpectedStop {
                op: "injected system call",
                pid,
                status: format!(
                    "stopped at {:#x}, expected {:#x}",
                    out.rip,
                    self.syscall_ip + 2
                ),
            });
        }
        Ok(out.rax as i64)
    }
    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<(), TraceError> {
        let len = buf.len();
        let n = process_vm_readv(
            self.pid,
            &mut [IoSliceMut::new(buf)],
            &[RemoteIoVec {
                base: addr as usize,
                len,
            }],
        )
        .map_err(|e| perr("process_vm_readv", self.pid.as_raw(), e))?;
        if n != len {
            return Err(perr(
                "process_vm_readv (short)",
                self.pid.as_raw(),
                Errno::EFAULT,
            ));
        }
        Ok(())
    }
    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), TraceError> {
        let n = process_vm_writev(
            self.pid,
            &[IoSlice::new(data)],
            &[RemoteIoVec {
                base: addr as usize,
                len: data.len(),
            }],
        )
        .map_err(|e| perr("process_vm_writev", self.pid.as_raw(), e))?;
        if n != data.len() {
            return Err(perr(
                "process_vm_writev (short)",
                self.pid.as_raw(),
                Errno::EFAULT,
            ));
        }
        Ok(())
    }
}

/// The registers with which a task stopped at `regs` returns to user space
/// when no signal handler runs: what the kernel's syscall-restart logic
/// (arch/x86/kernel/signal.c) makes of them. Needed because ckpt's injected
/// calls leave the task in a system-call-exit stop, where that logic no
/// longer runs; the task's own restart block is intact, so
/// -ERESTART_RESTARTBLOCK becomes `restart_syscall` as it would.
pub fn kernel_resume_regs(regs: &Regs) -> Regs {
    const ERESTARTSYS: u64 = -512i64 as u64;
    const ERESTARTNOINTR: u64 = -513i64 as u64;
    const ERESTARTNOHAND: u64 = -514i64 as u64;
    const ERESTART_RESTARTBLOCK: u64 = -516i64 as u64;
    const NR_RESTART_SYSCALL: u64 = 219;
    let mut r = *regs;
    if (r.orig_rax as i64) >= 0 {
        match r.rax {
            ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => {
                r.rax = r.orig_rax;
                r.rip -= 2;
            }
            ERESTART_RESTARTBLOCK => {
                r.rax = NR_RESTART_SYSCALL;
                r.rip -= 2;
            }
            _ => {}
        }
    }
    r.orig_rax = u64::MAX;
    r
}

/// Offset of the first `syscall` instruction (0f 05) in `code`.
pub fn find_syscall_insn(code: &[u8]) -> Option<usize> {
    code.windows(2).position(|w| w == [0x0f, 0x05])
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_resume_regs_restarts_interrupted_calls() {
        let mut r = crate::model::zero_regs();
        r.orig_rax = 35;
        r.rip = 0x1002;
        r.rax = -516i64 as u64;
        let n = super::kernel_resume_regs(&r);
        assert_eq!((n.rax, n.rip, n.orig_rax), (219, 0x1000, u64::MAX));
        r.rax = -512i64 as u64;
        let n = super::kernel_resume_regs(&r);
        assert_eq!((n.rax, n.rip), (35, 0x1000));
        r.rax = 0;
        let n = super::kernel_resume_regs(&r);
        assert_eq!((n.rax, n.rip), (0, 0x1002));
        r.orig_rax = u64::MAX;
        r.rax = -512i64 as u64;
        assert_eq!(super::kernel_resume_regs(&r).rip, 0x1002);
    }

    #[test]
    fn finds_syscall_instruction() {
        assert_eq!(super::find_syscall_insn(&[0x90, 0x0f, 0x05, 0xc3]), Some(1));
        assert_eq!(super::find_syscall_insn(&[0x90, 0x0f]), None);
    }
}
