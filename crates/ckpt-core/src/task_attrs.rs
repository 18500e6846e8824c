//! Per-task attributes outside memory, files and security state: prctl
//! flags (dumpable, child subreaper, THP disable, parent-death signal,
//! timer slack), /proc attributes (oom_score_adj, loginuid) and the
//! interval timers. Captured by system calls injected into the frozen task
//! (its own prctl and getitimer answers) and restored the same way, as the
//! last steps before the task's confinement and registers.
//!
//! Per task, so a process tree runs `capture` and `restore` once per task.

use crate::error::{DumpError, RestoreError};
use crate::procfs::ProcSource;
use crate::ptrace::{Tracee, Tracer};
use crate::security_restore::{inject, SecurityRun};

/// Every attribute this module restores, as docs/state-coverage.md names
/// it (`coverage` checks the doc, and that `TaskAttrs` has no field
/// missing from this list).
pub const RESTORED_ATTRS: &[&str] = &[
    "dumpable",
    "child subreaper",
    "THP disable",
    "parent-death signal",
    "timer slack",
    "oom_score_adj",
    "loginuid",
    "ITIMER_REAL",
    "ITIMER_VIRTUAL",
    "ITIMER_PROF",
    "membarrier registrations",
    "POSIX timer",
    "controlling terminal",
    "guard region",
];

/// One interval timer (setitimer(2)), in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerState {
    /// ITIMER_REAL 0, ITIMER_VIRTUAL 1, ITIMER_PROF 2.
    pub which: u32,
    pub interval_us: u64,
    /// Time left until the next expiry; 0 = disarmed.
    pub value_us: u64,
}

/// The attributes of one task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskAttrs {
    /// PR_GET_DUMPABLE: 0, 1, or 2 (suid_dumpable; restored as 0).
    pub dumpable: u32,
    pub child_subreaper: bool,
    pub thp_disable: bool,
    /// PR_GET_PDEATHSIG (0 = none).
    pub pdeathsig: u32,
    pub timer_slack_ns: u64,
    /// /proc/PID/oom_score_adj.
    pub oom_score_adj: i32,
    /// /proc/PID/loginuid (u32::MAX = unset).
    pub loginuid: u32,
    /// Armed interval timers only.
    pub itimers: Vec<TimerState>,
    /// membarrier(2) private-expedited registrations of the mm, as the
    /// REGISTER command bits (`MEMBARRIER_REGISTRATIONS`).
    pub membarrier: u32,
    /// POSIX timers (timer_create), ascending by id (`posix_timers`).
    pub posix_timers: Vec<crate::posix_timers::PosixTimer>,
    /// Guard regions (MADV_GUARD_INSTALL) as page runs (start, len): an mm
    /// attribute, kept here to restore it with one hook (`guard_pages`).
    pub guard_pages: Vec<(u64, u64)>,
}

/// (command that fails with EPERM unless registered, its REGISTER command):
/// PRIVATE_EXPEDITED, PRIVATE_EXPEDITED_SYNC_CORE, PRIVATE_EXPEDITED_RSEQ.
pub const MEMBARRIER_REGISTRATIONS: [(u32, u32); 3] = [(8, 16), (32, 64), (128, 256)];
/// membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS): the REGISTER bits in force.
const MEMBARRIER_CMD_GET_REGISTRATIONS: u64 = 512;
/// MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED.
pub const MEMBARRIER_REGISTER_GLOBAL_EXPEDITED: u32 = 4;
/// Every REGISTER command bit restored: GLOBAL_EXPEDITED and the three
/// private ones.
pub const MEMBARRIER_REGISTER_BITS: u32 = 4 | 16 | 64 | 256;

fn dump_call(
    t: &mut dyn Tracer,
    pid: i32,
    call: &str,
    nr: i64,
    args: &[u64],
) -> Result<u64, DumpError> {
    crate::dump::inj(pid, call, t.syscall(nr, args))
}

fn read_words<const N: usize>(t: &dyn Tracer, pid: i32, addr: u64) -> Result<[u64; N], DumpError> {
    let mut b = vec![0u8; N * 8];
    t.read_mem(addr, &mut b)
        .map_err(|source| DumpError::Trace { pid, source })?;
    let mut out = [0u64; N];
    for (i, w) in out.iter_mut().enumerate() {
        *w = u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    }
    Ok(out)
}

/// Capture the attributes of the frozen task `t`, using `scratch` (one
/// writable page in the task) for the calls that return through memory.
pub fn capture(
    t: &mut dyn Tracer,
    pid: i32,
    scratch: u64,
    proc: &dyn ProcSource,
) -> Result<TaskAttrs, DumpError> {
    let prctl = libc::SYS_prctl;
    let dumpable = dump_call(
        t,
        pid,
        "prctl(PR_GET_DUMPABLE)",
        prctl,
        &[libc::PR_GET_DUMPABLE as u64],
    )? as u32;
    dump_call(
        t,
        pid,
        "prctl(PR_GET_CHILD_SUBREAPER)",
        prctl,
        &[libc::PR_GET_CHILD_SUBREAPER as u64, scratch],
    )?;
    let child_subreaper = read_words::<1>(t, pid, scratch)?[0] as u32 != 0;
    let thp_disable = dump_call(
        t,
        pid,
        "prctl(PR_GET_THP_DISABLE)",
        prctl,
        &[libc::PR_GET_THP_DISABLE as u64],
    )? != 0;
    dump_call(
        t,
        pid,
        "prctl(PR_GET_PDEATHSIG)",
        prctl,
        &[libc::PR_GET_PDEATHSIG as u64, scratch],
    )?;
    let pdeathsig = read_words::<1>(t, pid, scratch)?[0] as u32;
    let timer_slack_ns = dump_call(
        t,
        pid,
        "prctl(PR_GET_TIMERSLACK)",
        prctl,
        &[libc::PR_GET_TIMERSLACK as u64],
    )?;
    let mut itimers = Vec::new();
    for which in 0..3u32 {
        dump_call(
            t,
            pid,
            "getitimer",
            libc::SYS_getitimer,
            &[which as u64, scratch],
        )?;
        let [is, iu, vs, vu] = read_words::<4>(t, pid, scratch)?;
        let us = |s: u64, u: u64| s.saturating_mul(1_000_000).saturating_add(u);
        let timer = TimerState {
            which,
            interval_us: us(is, iu),
            value_us: us(vs, vu),
        };
        if timer.value_us != 0 {
            itimers.push(timer);
        }
    }
    // MEMBARRIER_CMD_GET_REGISTRATIONS (Linux 6.3) names every
    // registration, GLOBAL_EXPEDITED included. Without it: a registered mm
    // accepts the expedited barrier (harmless: a memory barrier on the
    // task's own CPUs), an unregistered one fails with EPERM; a
    // GLOBAL_EXPEDITED registration cannot be seen that way.
    let mut membarrier = 0;
    let all = t
        .syscall(
            libc::SYS_membarrier,
            &[MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0],
        )
        .map_err(|source| DumpError::Trace { pid, source })?;
    if all >= 0 {
        membarrier = all as u32 & MEMBARRIER_REGISTER_BITS;
    }
    for (cmd, register) in MEMBARRIER_REGISTRATIONS.into_iter().filter(|_| all < 0) {
        let r = t
            .syscall(libc::SYS_membarrier, &[cmd as u64, 0, 0])
            .map_err(|source| DumpError::Trace { pid, source })?;
        if r == 0 {
            membarrier |= register;
        }
    }
    let posix_timers = capture_posix_timers(t, pid, scratch, proc)?;
    let num = |name: &str| -> Result<i64, DumpError> {
        let text = proc.read_text(name).map_err(|source| DumpError::Proc {
            pid,
            file: name.to_string(),
            source,
        })?;
        text.trim().parse().map_err(|_| DumpError::Unsupported {
            pid,
            what: format!("/proc/{pid}/{name} reads {text:?}"),
        })
    };
    Ok(TaskAttrs {
        dumpable,
        child_subreaper,
        thp_disable,
        pdeathsig,
        timer_slack_ns,
        oom_score_adj: num("oom_score_adj")? as i32,
        // Without audit support there is no loginuid: unset.
        loginuid: num("loginuid").unwrap_or(u32::MAX as i64) as u32,
        itimers,
        membarrier,
        posix_timers,
        guard_pages: Vec::new(),
    })
}

/// The POSIX timers, and a refusal when one of their signals became
/// pending since the dump's pending-signal check: that expiry would be
/// lost (the timers are re-armed with the time left after it).
fn capture_posix_timers(
    t: &mut dyn Tracer,
    pid: i32,
    scratch: u64,
    proc: &dyn ProcSource,
) -> Result<Vec<crate::posix_timers::PosixTimer>, DumpError> {
    let text = proc.read_text("timers").unwrap_or_default();
    let timers = crate::posix_timers::capture(t, pid, scratch, &text)?;
    if timers.is_empty() {
        return Ok(timers);
    }
    let status = proc.read_text("status").map_err(|source| DumpError::Proc {
        pid,
        file: "status".into(),
        source,
    })?;
    let pending = crate::dump_refusals::pending_in_status(&status);
    if let Some(tm) = timers
        .iter()
        .find(|tm| tm.signo != 0 && pending & (1u64 << ((tm.signo - 1) & 63)) != 0)
    {
        return Err(DumpError::Refused {
            pid,
            what: format!(
                "signal {} of its POSIX timer {} arrived during the dump",
                tm.signo, tm.id
            ),
            way_out: "dump again".into(),
        });
    }
    Ok(timers)
}

/// Write `value` to /proc/self/`name` from inside the task (with its
/// authority): both files check the writing task itself.
fn write_proc_self(
    t: &mut Tracee,
    pid: i32,
    scratch: u64,
    name: &str,
    value: &str,
) -> Result<(), RestoreError> {
    let mut b = format!("/proc/self/{name}").into_bytes();
    b.push(0);
    let data_at = scratch + 256;
    t.write_mem(scratch, &b)
        .and_then(|()| t.write_mem(data_at, value.as_bytes()))
        .map_err(|source| RestoreError::Trace { pid, source })?;
    let what = format!("open /proc/self/{name}");
    let fd = inject(
        t,
        pid,
        &what,
        libc::SYS_openat,
        &[
            libc::AT_FDCWD as u64,
            scratch,
            (libc::O_WRONLY | libc::O_CLOEXEC) as u64,
        ],
    )?;
    let what = format!("write {value} to /proc/self/{name}");
    let w = inject(
        t,
        pid,
        &what,
        libc::SYS_write,
        &[fd, data_at, value.len() as u64],
    );
    inject(t, pid, "close", libc::SYS_close, &[fd])?;
    w.map(|_| ())
}

/// Restore `attrs` into the task `t` being rebuilt (its identity is in
/// place; `scratch` is writable task memory). The interval timers are
/// armed last, so they count from here.
pub fn restore(
    t: &mut Tracee,
    sec: &SecurityRun<'_>,
    pid: i32,
    scratch: u64,
    attrs: &TaskAttrs,
) -> Result<(), RestoreError> {
    let prctl = |t: &mut Tracee, what: &str, op: i32, arg: u64| {
        inject(t, pid, what, libc::SYS_prctl, &[op as u64, arg, 0, 0, 0]).map(|_| ())
    };
    if attrs.child_subreaper {
        prctl(
            t,
            "prctl(PR_SET_CHILD_SUBREAPER)",
            libc::PR_SET_CHILD_SUBREAPER,
            1,
        )?;
    }
    if attrs.thp_disable {
        prctl(t, "prctl(PR_SET_THP_DISABLE)", libc::PR_SET_THP_DISABLE, 1)?;
    }
    if attrs.timer_slack_ns != 0 {
        prctl(
            t,
            "prctl(PR_SET_TIMERSLACK)",
            libc::PR_SET_TIMERSLACK,
            attrs.timer_slack_ns,
        )?;
    }
    let current =
        |name: &str| std::fs::read_to_string(format!("/proc/{pid}/{name}")).unwrap_or_default();
    if current("oom_score_adj").trim() != attrs.oom_score_adj.to_string() {
        // Raising is always allowed; lowering below the value inherited
        // from the restorer needs CAP_SYS_RESOURCE in the restored identity.
        write_proc_self(t, pid, scratch, "oom_score_adj", &attrs.oom_score_adj.to_string()).map_err(
            |e| match e {
                RestoreError::Injected { errno, .. } => RestoreError::Injected {
                    pid,
                    call: format!(
                        "setting oom_score_adj to {} (lowering it needs CAP_SYS_RESOURCE in the restored identity; restore as a user who may)",
                        attrs.oom_score_adj
                    ),
                    errno,
                },
                e => e,
            },
        )?;
    }
    let login = current("loginuid");
    if !login.is_empty() && login.trim() != attrs.loginuid.to_string() {
        // Needs CAP_AUDIT_CONTROL: the restorer's, if it has it.
        sec.elevated(t, scratch + 4096 - 64, 1u64 << 30, |t| {
            write_proc_self(t, pid, scratch, "loginuid", &attrs.loginuid.to_string())
        })
        .map_err(|e| match e {
            RestoreError::Injected { errno, .. } => RestoreError::Injected {
                pid,
                call: format!(
                    "setting loginuid to {} (needs CAP_AUDIT_CONTROL, and the restorer's loginuid must not be immutable; restore as root)",
                    attrs.loginuid
                ),
                errno,
            },
            e => e,
        })?;
    }
    let registers = [MEMBARRIER_REGISTER_GLOBAL_EXPEDITED]
        .into_iter()
        .chain(MEMBARRIER_REGISTRATIONS.map(|(_, r)| r));
    for register in registers {
        if attrs.membarrier & register != 0 {
            let what = format!("membarrier(register {register:#x})");
            inject(
                t,
                pid,
                &what,
                libc::SYS_membarrier,
                &[register as u64, 0, 0],
            )?;
        }
    }
    // After the identity: a credential change clears both.
    if attrs.pdeathsig != 0 {
        prctl(
            t,
            "prctl(PR_SET_PDEATHSIG)",
            libc::PR_SET_PDEATHSIG,
            attrs.pdeathsig as u64,
        )?;
    }
    // 2 (suid_dumpable) cannot be set by prctl: 0 is the stricter choice.
    let dumpable = u64::from(attrs.dumpable == 1);
    prctl(t, "prctl(PR_SET_DUMPABLE)", libc::PR_SET_DUMPABLE, dumpable)?;
    crate::guard_pages::restore(t, pid, &attrs.guard_pages)?;
    crate::posix_timers::restore(t, pid, scratch, &attrs.posix_timers)?;
    for timer in &attrs.itimers {
        let mut b = Vec::with_capacity(32);
        for w in [
            timer.interval_us / 1_000_000,
            timer.interval_us % 1_000_000,
            timer.value_us / 1_000_000,
            timer.value_us % 1_000_000,
        ] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        t.write_mem(scratch, &b)
            .map_err(|source| RestoreError::Trace { pid, source })?;
        inject(
            t,
            pid,
            "setitimer",
            libc::SYS_setitimer,
            &[timer.which as u64, scratch, 0],
        )?;
    }
    Ok(())
}
