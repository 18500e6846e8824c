//! POSIX timers (timer_create(2)) of one task: which exist is read from
//! /proc/PID/timers (id, signal and sigev_value, notify kind, clock); their
//! remaining time, interval and overrun from timer_gettime and
//! timer_getoverrun injected into the frozen task. Restored by injected
//! timer_create with the same ids (prctl PR_TIMER_CREATE_RESTORE_IDS,
//! Linux 6.17+; older kernels: created in id order, refused when an id
//! would differ) and timer_settime with the remaining time.
//!
//! Refused at dump: a timer whose signal goes to a thread other than the
//! task itself (SIGEV_THREAD_ID), a clock of another task (negative clock
//! id), and a non-zero overrun (the kernel has no way to set it back).

use crate::error::{DumpError, RestoreError};
use crate::ptrace::{Tracee, Tracer};
use crate::security_restore::inject;

/// `sigev_notify` values (asm-generic/siginfo.h).
pub const SIGEV_SIGNAL: u32 = 0;
pub const SIGEV_NONE: u32 = 1;
pub const SIGEV_THREAD: u32 = 2;
pub const SIGEV_THREAD_ID: u32 = 4;
/// prctl(PR_TIMER_CREATE_RESTORE_IDS, ON/OFF) (Linux 6.17).
const PR_TIMER_CREATE_RESTORE_IDS: u64 = 77;
/// Clocks a timer may be restored on: REALTIME, MONOTONIC, PROCESS_CPUTIME,
/// THREAD_CPUTIME, BOOTTIME, REALTIME_ALARM, BOOTTIME_ALARM, TAI.
pub const CLOCKS: [i32; 8] = [0, 1, 2, 3, 7, 8, 9, 11];
/// Most timers accepted in an image (also `image_format::limits`).
pub const MAX_TIMERS: usize = 4096;
/// Longest remaining time or interval accepted: 100 years.
pub const MAX_TIMER_NS: u64 = 100 * 365 * 24 * 3600 * 1_000_000_000;

/// One POSIX timer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PosixTimer {
    pub id: i32,
    pub clock: i32,
    /// SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD or SIGEV_THREAD_ID (which
    /// then targets the task itself: others are refused).
    pub notify: u32,
    pub signo: u32,
    /// `sigev_value` (sival_ptr), given back to the handler in si_value.
    pub value: u64,
    pub interval_ns: u64,
    /// Time left to the next expiry; 0 = disarmed.
    pub remaining_ns: u64,
}

/// One timer as /proc/PID/timers shows it, before the injected reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcTimer {
    pub id: i32,
    pub signo: u32,
    pub value: u64,
    pub notify: u32,
    /// The pid or tid after `pid.` / `tid.`.
    pub target: i32,
    pub clock: i32,
}

/// Parse /proc/PID/timers: blocks of `ID:`, `signal: N/VALUE`,
/// `notify: KIND/pid.N` or `KIND/tid.N`, `ClockID:`.
pub fn parse_proc_timers(text: &str) -> Result<Vec<ProcTimer>, String> {
    let mut out: Vec<ProcTimer> = Vec::new();
    for line in text.lines() {
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        let val = val.trim();
        let bad = || format!("/proc/PID/timers line {line:?}");
        if key == "ID" {
            out.push(ProcTimer {
                id: val.parse().map_err(|_| bad())?,
                ..ProcTimer::default()
            });
            continue;
        }
        let Some(t) = out.last_mut() else {
            return Err(bad());
        };
        match key {
            "signal" => {
                let (s, v) = val.split_once('/').ok_or_else(bad)?;
                t.signo = s.parse().map_err(|_| bad())?;
                t.value = u64::from_str_radix(v, 16).map_err(|_| bad())?;
            }
            "notify" => {
                let (kind, who) = val.split_once('/').ok_or_else(bad)?;
                let (scope, n) = who.split_once('.').ok_or_else(bad)?;
                t.notify = match kind {
                    "signal" => SIGEV_SIGNAL,
                    "none" => SIGEV_NONE,
                    "thread" => SIGEV_THREAD,
                    _ => return Err(bad()),
                };
                if scope == "tid" {
                    t.notify |= SIGEV_THREAD_ID;
                }
                t.target = n.parse().map_err(|_| bad())?;
            }
            "ClockID" => t.clock = val.parse().map_err(|_| bad())?,
            _ => {}
        }
    }
    Ok(out)
}

/// Why timer `t` of task `pid` cannot be restored, if it cannot.
pub fn refusal(pid: i32, t: &ProcTimer) -> Option<String> {
    if t.notify & SIGEV_THREAD_ID != 0 && t.target != pid {
        return Some(format!(
            "its POSIX timer {} sends signal {} to thread {} (SIGEV_THREAD_ID), which is not the task itself",
            t.id, t.signo, t.target
        ));
    }
    if !CLOCKS.contains(&t.clock) {
        return Some(format!(
            "its POSIX timer {} runs on clock {} (the CPU clock of another task or an unknown clock)",
            t.id, t.clock
        ));
    }
    None
}

fn ns(sec: u64, nsec: u64) -> u64 {
    sec.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// Capture the POSIX timers of frozen task `pid` from its /proc/PID/timers
/// text, with `scratch` (writable task memory) for timer_gettime.
pub fn capture(
    t: &mut dyn Tracer,
    pid: i32,
    scratch: u64,
    proc_text: &str,
) -> Result<Vec<PosixTimer>, DumpError> {
    let listed =
        parse_proc_timers(proc_text).map_err(|what| DumpError::Unsupported { pid, what })?;
    if listed.len() > MAX_TIMERS {
        return Err(DumpError::Unsupported {
            pid,
            what: format!(
                "it has {} POSIX timers (at most {MAX_TIMERS})",
                listed.len()
            ),
        });
    }
    let mut out = Vec::with_capacity(listed.len());
    for p in &listed {
        if let Some(what) = refusal(pid, p) {
            return Err(DumpError::Refused {
                pid,
                what: format!("{what}, which is not supported yet"),
                way_out: "delete the timer (timer_delete) and dump again".into(),
            });
        }
        let id = p.id as u64;
        crate::dump::inj(
            pid,
            "timer_gettime",
            t.syscall(libc::SYS_timer_gettime, &[id, scratch]),
        )?;
        let mut b = [0u8; 32];
        t.read_mem(scratch, &mut b)
            .map_err(|source| DumpError::Trace { pid, source })?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let overrun = crate::dump::inj(
            pid,
            "timer_getoverrun",
            t.syscall(libc::SYS_timer_getoverrun, &[id]),
        )?;
        if overrun != 0 {
            return Err(DumpError::Refused {
                pid,
                what: format!(
                    "its POSIX timer {} has overrun {overrun} (expiries missed before its last signal), which cannot be set back",
                    p.id
                ),
                way_out: "dump again after the timer's next signal is handled".into(),
            });
        }
        out.push(PosixTimer {
            id: p.id,
            clock: p.clock,
            notify: p.notify,
            signo: p.signo,
            value: p.value,
            interval_ns: ns(w(0), w(1)),
            remaining_ns: ns(w(2), w(3)),
        });
    }
    out.sort_by_key(|t| t.id);
    Ok(out)
}

/// The kernel's `struct sigevent` (64 bytes) for timer `t`, whose
/// SIGEV_THREAD_ID target is `tid` (the restored task itself).
fn sigevent(t: &PosixTimer, tid: u32) -> [u8; 64] {
    let mut b = [0u8; 64];
    b[0..8].copy_from_slice(&t.value.to_le_bytes());
    b[8..12].copy_from_slice(&t.signo.to_le_bytes());
    b[12..16].copy_from_slice(&t.notify.to_le_bytes());
    b[16..20].copy_from_slice(&tid.to_le_bytes());
    b
}

fn write(t: &mut Tracee, pid: i32, addr: u64, b: &[u8]) -> Result<(), RestoreError> {
    t.write_mem(addr, b)
        .map_err(|source| RestoreError::Trace { pid, source })
}

fn read_id(t: &mut Tracee, pid: i32, addr: u64) -> Result<i32, RestoreError> {
    let mut b = [0u8; 4];
    t.read_mem(addr, &mut b)
        .map_err(|source| RestoreError::Trace { pid, source })?;
    Ok(i32::from_le_bytes(b))
}

/// Create one timer in the task, returning the id the kernel gave it.
fn create(
    t: &mut Tracee,
    pid: i32,
    scratch: u64,
    timer: &PosixTimer,
    tid: u32,
) -> Result<i32, RestoreError> {
    write(t, pid, scratch, &sigevent(timer, tid))?;
    write(t, pid, scratch + 64, &timer.id.to_le_bytes())?;
    let what = format!("timer_create (POSIX timer {})", timer.id);
    inject(
        t,
        pid,
        &what,
        libc::SYS_timer_create,
        &[timer.clock as u64, scratch, scratch + 64],
    )?;
    read_id(t, pid, scratch + 64)
}

/// Restore `timers` (sorted by id) into the task being rebuilt, armed with
/// their remaining time. `scratch` is 256 bytes of writable task memory.
pub fn restore(
    t: &mut Tracee,
    pid: i32,
    scratch: u64,
    timers: &[PosixTimer],
) -> Result<(), RestoreError> {
    if timers.is_empty() {
        return Ok(());
    }
    let tid = inject(t, pid, "gettid", libc::SYS_gettid, &[])? as u32;
    let by_id = t
        .syscall(libc::SYS_prctl, &[PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0])
        .map_err(|source| RestoreError::Trace { pid, source })?
        == 0;
    let created = if by_id {
        let r = timers
            .iter()
            .try_for_each(|timer| create(t, pid, scratch, timer, tid).map(|_| ()));
        // Off again: on, timer_create would read its id from the caller.
        inject(
            t,
            pid,
            "prctl(PR_TIMER_CREATE_RESTORE_IDS, OFF)",
            libc::SYS_prctl,
            &[PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0],
        )?;
        r
    } else {
        create_in_order(t, pid, scratch, timers, tid)
    };
    created?;
    for timer in timers {
        arm(t, pid, scratch, timer)?;
    }
    Ok(())
}

/// Without PR_TIMER_CREATE_RESTORE_IDS the kernel gives the lowest free id
/// counting up from the last one: create in id order, filling gaps with
/// timers deleted afterwards, and refuse when an id cannot be matched.
fn create_in_order(
    t: &mut Tracee,
    pid: i32,
    scratch: u64,
    timers: &[PosixTimer],
    tid: u32,
) -> Result<(), RestoreError> {
    let mut fillers = Vec::new();
    let mut result = Ok(());
    'timers: for timer in timers {
        loop {
            let got = match create(t, pid, scratch, timer, tid) {
                Ok(id) => id,
                Err(e) => {
                    result = Err(e);
                    break 'timers;
                }
            };
            if got == timer.id {
                break;
            }
            if got > timer.id || fillers.len() >= MAX_TIMERS {
                fillers.push(got);
                result = Err(RestoreError::KernelMismatch {
                    pid,
                    what: format!(
                        "POSIX timer {} would get id {got} (this kernel has no prctl PR_TIMER_CREATE_RESTORE_IDS, Linux 6.17); restore on a newer kernel",
                        timer.id
                    ),
                });
                break 'timers;
            }
            fillers.push(got);
        }
    }
    for id in fillers {
        inject(t, pid, "timer_delete", libc::SYS_timer_delete, &[id as u64])?;
    }
    result
}

fn arm(t: &mut Tracee, pid: i32, scratch: u64, timer: &PosixTimer) -> Result<(), RestoreError> {
    if timer.remaining_ns == 0 {
        return Ok(());
    }
    let mut b = Vec::with_capacity(32);
    for w in [
        timer.interval_ns / 1_000_000_000,
        timer.interval_ns % 1_000_000_000,
        timer.remaining_ns / 1_000_000_000,
        timer.remaining_ns % 1_000_000_000,
    ] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    write(t, pid, scratch, &b)?;
    let what = format!("timer_settime (POSIX timer {})", timer.id);
    inject(
        t,
        pid,
        &what,
        libc::SYS_timer_settime,
        &[timer.id as u64, 0, scratch, 0],
    )
    .map(|_| ())
}

/// Semantic check of stored timers: ids ascending and unique, known clock
/// and notify kind, signal 1..=64 unless SIGEV_NONE, times bounded.
pub fn validate(timers: &[PosixTimer]) -> Result<(), String> {
    if timers.len() > MAX_TIMERS {
        return Err(format!("more than {MAX_TIMERS} POSIX timers"));
    }
    let mut last = -1i64;
    for t in timers {
        if i64::from(t.id) <= last || t.id < 0 {
            return Err(format!("POSIX timer ids not ascending at {}", t.id));
        }
        last = i64::from(t.id);
        if !CLOCKS.contains(&t.clock) {
            return Err(format!("POSIX timer {} has clock {}", t.id, t.clock));
        }
        let kind = t.notify & !SIGEV_THREAD_ID;
        if !matches!(kind, SIGEV_SIGNAL | SIGEV_NONE | SIGEV_THREAD)
            || (t.notify & SIGEV_THREAD_ID != 0 && kind != SIGEV_SIGNAL)
        {
            return Err(format!("POSIX timer {} has notify {}", t.id, t.notify));
        }
        if t.signo > 64 || (kind != SIGEV_NONE && t.signo == 0) {
            return Err(format!("POSIX timer {} has signal {}", t.id, t.signo));
        }
        if t.interval_ns > MAX_TIMER_NS || t.remaining_ns > MAX_TIMER_NS {
            return Err(format!("POSIX timer {} time out of range", t.id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "ID: 1\nsignal: 0/0000000000000000\nnotify: none/pid.77\nClockID: 1\n\
ID: 0\nsignal: 14/00000000deadbeef\nnotify: signal/pid.77\nClockID: 0\n\
ID: 2\nsignal: 10/0000000000000000\nnotify: signal/tid.78\nClockID: -6\n";

    #[test]
    fn parses_proc_timers() {
        let t = parse_proc_timers(TEXT).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].id, t[0].notify, t[0].clock), (1, SIGEV_NONE, 1));
        assert_eq!((t[1].signo, t[1].value), (14, 0xdead_beef));
        assert_eq!((t[2].notify, t[2].target), (SIGEV_THREAD_ID, 78));
        assert!(parse_proc_timers("signal: 1/0\n").is_err());
        assert!(parse_proc_timers("ID: x\n").is_err());
    }

    #[test]
    fn refuses_other_threads_and_foreign_clocks() {
        let t = parse_proc_timers(TEXT).unwrap();
        assert_eq!(refusal(77, &t[0]), None);
        let r = refusal(77, &t[2]).unwrap();
        assert!(
            r.contains("thread 78") && r.contains("SIGEV_THREAD_ID"),
            "{r}"
        );
        let own = ProcTimer {
            target: 77,
            ..t[2].clone()
        };
        assert!(refusal(77, &own).unwrap().contains("clock -6"));
    }

    #[test]
    fn sigevent_layout() {
        let t = PosixTimer {
            value: 5,
            signo: 14,
            notify: SIGEV_THREAD_ID,
            ..PosixTimer::default()
        };
        let b = sigevent(&t, 9);
        assert_eq!(b[0], 5);
        assert_eq!(b[8], 14);
        assert_eq!(b[12], 4);
        assert_eq!(b[16], 9);
    }

    #[test]
    fn validate_bounds() {
        let ok = PosixTimer {
            id: 0,
            signo: 14,
            ..PosixTimer::default()
        };
        assert!(validate(&[ok]).is_ok());
        assert!(validate(&[ok, ok]).is_err(), "duplicate id");
        assert!(validate(&[PosixTimer { clock: -2, ..ok }]).is_err());
        assert!(validate(&[PosixTimer { signo: 0, ..ok }]).is_err());
        assert!(validate(&[PosixTimer { notify: 9, ..ok }]).is_err());
        assert!(validate(&[PosixTimer {
            remaining_ns: u64::MAX,
            ..ok
        }])
        .is_err());
    }
}
