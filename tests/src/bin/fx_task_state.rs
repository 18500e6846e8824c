//! Fixture: sets up one kind of task state, records its own view of it,
//! writes `ready` to OUT, then waits for the file GO. Then it looks again
//! through the same calls a program would use and writes `OK <view>` or
//! `DIFF before <view> after <view>` to OUT, exiting 0 only on `OK`.
//!
//! `fx-task-state MODE OUT GO`, MODE one of:
//! - `fds`: one pipe with its write end at fd 3 and read end at fd 4 (the
//!   reverse of what pipe(2) gives), O_NONBLOCK on the read end only, a
//!   1 MiB capacity and 5 buffered bytes (F_GETFL, F_GETPIPE_SZ, read).
//! - `itimers`: ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF armed
//!   (getitimer: intervals equal, remaining time no larger and not much
//!   smaller).
//! - `prctl`: dumpable 0, child subreaper, THP disabled, parent-death
//!   signal SIGUSR2, timer slack, comm, personality, oom_score_adj 400.
//! - `sigtrap`: a SIGTRAP handler; afterwards every disposition (sigaction)
//!   is compared and kill(getpid(), SIGTRAP) must run the handler once.
//! - `membarrier`: registered for MEMBARRIER_CMD_PRIVATE_EXPEDITED and
//!   GLOBAL_EXPEDITED; the expedited barrier must still succeed (EPERM when
//!   unregistered) and GET_REGISTRATIONS report the same bits.
//! - `posix`: POSIX timers with ids 1 and 2 (id 0 deleted): a periodic
//!   SIGEV_SIGNAL timer (SIGUSR1, sigev_value 0x1234, every 300 ms) and a
//!   SIGEV_NONE timer with 1000 s left; afterwards timer_gettime of each
//!   (same interval, remaining time in range), /proc/self/timers ids, and
//!   the periodic one must fire again with its value.
//! - `guard`: three anonymous pages, the middle one a guard region
//!   (MADV_GUARD_INSTALL); afterwards the outer pages keep their bytes, the
//!   middle one is still a guard (pagemap bit 58) and reading it with
//!   process_vm_readv still fails with EFAULT.
//! - `mapping`: a MAP_SHARED PROT_READ mapping of a file opened O_RDWR;
//!   afterwards mprotect to read-write and a write through it must work.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

static TRAPS: AtomicU32 = AtomicU32::new(0);
static TICKS: AtomicU32 = AtomicU32::new(0);
static TICK_VALUE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

extern "C" fn on_tick(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let v = unsafe { (*info).si_value().sival_ptr } as u64;
    TICK_VALUE.store(v, Ordering::SeqCst);
    TICKS.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGTRAP {
        TRAPS.fetch_add(1, Ordering::SeqCst);
    }
}

fn handle(sig: libc::c_int) {
    // SAFETY: installs a handler that only touches an atomic.
    unsafe {
        let mut a: libc::sigaction = std::mem::zeroed();
        a.sa_sigaction = on_signal as *const () as usize;
        a.sa_flags = libc::SA_RESTART;
        libc::sigaction(sig, &a, std::ptr::null_mut());
    }
}

fn fds_setup() {
    let mut p = [0i32; 2];
    // SAFETY: plain fd syscalls on fds this process owns.
    unsafe {
        assert_eq!(libc::pipe(p.as_mut_ptr()), 0);
        assert_eq!((p[0], p[1]), (3, 4), "fds 3 and 4 must be free");
        libc::dup2(3, 5);
        libc::dup2(4, 3);
        libc::dup2(5, 4);
        libc::close(5);
        // fd 4 = read end (non-blocking), fd 3 = write end (blocking).
        libc::fcntl(4, libc::F_SETFL, libc::O_NONBLOCK);
        assert_eq!(libc::fcntl(3, libc::F_SETPIPE_SZ, 1 << 20), 1 << 20);
        assert_eq!(libc::write(3, b"hello".as_ptr().cast(), 5), 5);
    }
}

fn fds_view(consume: bool) -> String {
    // SAFETY: fcntl/read on our own fds into a local buffer.
    unsafe {
        let fl = |fd| libc::fcntl(fd, libc::F_GETFL) & (libc::O_ACCMODE | libc::O_NONBLOCK);
        let sz = |fd| libc::fcntl(fd, libc::F_GETPIPE_SZ);
        let data = if consume {
            let mut b = [0u8; 64];
            let n = libc::read(4, b.as_mut_ptr().cast(), b.len());
            String::from_utf8_lossy(&b[..n.max(0) as usize]).into_owned()
        } else {
            "hello".to_string()
        };
        format!(
            "fd3 flags {:o} size {} fd4 flags {:o} size {} data {data}",
            fl(3),
            sz(3),
            fl(4),
            sz(4)
        )
    }
}

const TIMERS: [(libc::c_int, i64, i64); 3] = [
    (libc::ITIMER_REAL, 500, 1000),
    (libc::ITIMER_VIRTUAL, 300, 100),
    (libc::ITIMER_PROF, 400, 200),
];

fn itimers_setup() {
    handle(libc::SIGALRM);
    for (which, value, interval) in TIMERS {
        let v = libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: interval,
                tv_usec: 0,
            },
            it_value: libc::timeval {
                tv_sec: value,
                tv_usec: 0,
            },
        };
        // SAFETY: setitimer with a valid struct.
        assert_eq!(
            unsafe { libc::setitimer(which, &v, std::ptr::null_mut()) },
            0
        );
    }
}

/// Each timer as `interval/remaining-bucket`: remaining time is checked to
/// be at most the armed value and at least 60 s less (wall or CPU time
/// the test may take).
fn itimers_view() -> String {
    TIMERS
        .iter()
        .map(|&(which, value, interval)| {
            // SAFETY: getitimer into a zeroed local struct.
            let mut v: libc::itimerval = unsafe { std::mem::zeroed() };
            unsafe { libc::getitimer(which, &mut v) };
            let left = v.it_value.tv_sec;
            let ok = left <= value && left > value - 60 && v.it_interval.tv_sec == interval;
            format!(
                "timer{which} interval {} remaining {}",
                v.it_interval.tv_sec,
                if ok { "in range" } else { "OUT OF RANGE" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn prctl_setup() {
    handle(libc::SIGUSR2);
    // SAFETY: prctl/personality with integer arguments.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
        assert_eq!(libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2, 0, 0, 0),
            0
        );
        assert_eq!(libc::prctl(libc::PR_SET_TIMERSLACK, 123_456, 0, 0, 0), 0);
        let name = CString::new("fx-renamed").unwrap();
        assert_eq!(libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0), 0);
        libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
        assert_eq!(libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0), 0);
    }
    std::fs::write("/proc/self/oom_score_adj", "400").expect("oom_score_adj");
}

fn prctl_view() -> String {
    // SAFETY: prctl getters writing into local ints.
    unsafe {
        let mut sub = 0i32;
        libc::prctl(libc::PR_GET_CHILD_SUBREAPER, &mut sub as *mut i32, 0, 0, 0);
        let mut pdeath = 0i32;
        libc::prctl(libc::PR_GET_PDEATHSIG, &mut pdeath as *mut i32, 0, 0, 0);
        let mut name = [0u8; 16];
        libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr(), 0, 0, 0);
        let name = String::from_utf8_lossy(&name)
            .trim_end_matches('\0')
            .to_string();
        let oom = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
        format!(
            "dumpable {} subreaper {sub} thp_disable {} pdeathsig {pdeath} slack {} comm {name} personality {:#x} oom_score_adj {}",
            libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0),
            libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0),
            libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0),
            libc::personality(0xffff_ffff),
            oom.trim()
        )
    }
}

fn sigactions_view() -> String {
    (1..=64)
        .filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP && !(32..34).contains(&s))
        .map(|s| {
            // SAFETY: query-only sigaction into a zeroed local struct.
            let mut a: libc::sigaction = unsafe { std::mem::zeroed() };
            unsafe { libc::sigaction(s, std::ptr::null(), &mut a) };
            format!("{s}:{:x}/{:x}", a.sa_sigaction, a.sa_flags)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn sigtrap_after() -> String {
    let view = sigactions_view();
    // SAFETY: kill ourselves with SIGTRAP; the handler counts it.
    unsafe { libc::kill(libc::getpid(), libc::SIGTRAP) };
    format!("{view} traps {}", TRAPS.load(Ordering::SeqCst))
}

fn membarrier_view() -> String {
    // SAFETY: membarrier takes integers only.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, 8, 0, 0) };
    let e = std::io::Error::last_os_error();
    // SAFETY: MEMBARRIER_CMD_GET_REGISTRATIONS takes integers only.
    let regs = unsafe { libc::syscall(libc::SYS_membarrier, 512, 0, 0) };
    if r == 0 {
        format!("private expedited barrier ok, registrations {regs:#x}")
    } else {
        format!("private expedited barrier failed: {e}")
    }
}

/// Kernel timer ids of the `posix` mode: (periodic SIGEV_SIGNAL, SIGEV_NONE).
fn posix_setup() -> (i32, i32) {
    // SAFETY: installs an SA_SIGINFO handler touching atomics only; the
    // timer calls get a 64-byte sigevent and an int for the id.
    unsafe {
        let mut a: libc::sigaction = std::mem::zeroed();
        a.sa_sigaction = on_tick as *const () as usize;
        a.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
        libc::sigaction(libc::SIGUSR1, &a, std::ptr::null_mut());
        let create = |clock: i32, notify: u64, signo: u64, value: u64| {
            let ev: [u64; 8] = [value, signo | (notify << 32), 0, 0, 0, 0, 0, 0];
            let mut id = -1i32;
            let r = libc::syscall(libc::SYS_timer_create, clock, ev.as_ptr(), &mut id);
            assert_eq!(r, 0, "timer_create");
            id
        };
        let gap = create(libc::CLOCK_MONOTONIC, 1, 0, 0);
        let periodic = create(libc::CLOCK_MONOTONIC, 0, libc::SIGUSR1 as u64, 0x1234);
        let none = create(libc::CLOCK_REALTIME, 1, 0, 0);
        assert_eq!(libc::syscall(libc::SYS_timer_delete, gap), 0);
        let arm = |id: i32, value: [i64; 2], interval: [i64; 2]| {
            let spec: [i64; 4] = [interval[0], interval[1], value[0], value[1]];
            let r = libc::syscall(
                libc::SYS_timer_settime,
                id,
                0,
                spec.as_ptr(),
                std::ptr::null_mut::<u8>(),
            );
            assert_eq!(r, 0, "timer_settime");
        };
        arm(periodic, [0, 300_000_000], [0, 300_000_000]);
        arm(none, [1000, 0], [0, 0]);
        (periodic, none)
    }
}

fn timer_gettime(id: i32) -> [i64; 4] {
    let mut spec = [0i64; 4];
    // SAFETY: timer_gettime into a local itimerspec.
    let r = unsafe { libc::syscall(libc::SYS_timer_gettime, id, spec.as_mut_ptr()) };
    if r != 0 {
        return [-1; 4];
    }
    spec
}

fn posix_view((periodic, none): (i32, i32), after: bool) -> String {
    let p = timer_gettime(periodic);
    let n = timer_gettime(none);
    let p_ok = p[0] == 0 && p[1] == 300_000_000 && (p[2] > 0 || p[3] > 0) && p[2] == 0;
    let n_ok = n[0] == 0 && n[1] == 0 && n[2] <= 1000 && n[2] > 900;
    let ids: Vec<String> = std::fs::read_to_string("/proc/self/timers")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("ID: ").map(str::to_string))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut fires = "fires".to_string();
    if after {
        let start = TICKS.load(Ordering::SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while TICKS.load(Ordering::SeqCst) < start + 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if TICKS.load(Ordering::SeqCst) < start + 2 {
            fires = "STOPPED FIRING".into();
        }
    } else {
        while TICKS.load(Ordering::SeqCst) < 1 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    format!(
        "ids {} periodic {periodic} {} value {:#x} {fires}, none {none} {}",
        ids.join(","),
        if p_ok { "armed 300ms" } else { "WRONG" },
        TICK_VALUE.load(Ordering::SeqCst),
        if n_ok { "remaining in range" } else { "WRONG" },
    )
}

fn guard_setup() -> *mut u8 {
    // SAFETY: maps three private pages used only through the returned
    // pointer; the middle one becomes a guard.
    unsafe {
        let a = libc::mmap(
            std::ptr::null_mut(),
            3 * 4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(a, libc::MAP_FAILED);
        let p = a as *mut u8;
        *p = b'A';
        *p.add(2 * 4096) = b'C';
        let r = libc::madvise(p.add(4096).cast(), 4096, 102);
        assert_eq!(
            r,
            0,
            "MADV_GUARD_INSTALL: {}",
            std::io::Error::last_os_error()
        );
        p
    }
}

fn guard_view(p: *mut u8) -> String {
    use std::io::{Read, Seek};
    let mut pm = std::fs::File::open("/proc/self/pagemap").unwrap();
    let mut e = [0u8; 8];
    pm.seek(std::io::SeekFrom::Start((p as u64 / 4096 + 1) * 8))
        .unwrap();
    pm.read_exact(&mut e).unwrap();
    let guard = u64::from_le_bytes(e) & (1 << 58) != 0;
    let mut b = [0u8; 1];
    // SAFETY: reads the outer pages we mapped; process_vm_readv on
    // ourselves of the guard page writes at most 1 byte into `b`.
    unsafe {
        let local = libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let remote = libc::iovec {
            iov_base: p.add(4096).cast(),
            iov_len: 1,
        };
        let r = libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0);
        let read = if r < 0 {
            std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
        } else {
            false
        };
        format!(
            "page0 {} page2 {} middle guard {guard} read of it faults {read}",
            *p as char,
            *p.add(2 * 4096) as char
        )
    }
}

struct Mapping {
    addr: *mut u8,
}

fn mapping_setup(dir: &std::path::Path) -> Mapping {
    let path = dir.join("shared-map");
    std::fs::write(&path, [b'a'; 4096]).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: maps 4096 bytes of a file we hold open; the mapping is only
    // used through `addr` in this process.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED);
    drop(f); // only the mapping keeps the file
    Mapping { addr: addr.cast() }
}

fn mapping_after(m: &Mapping) -> String {
    // SAFETY: mprotect of our own mapping; the write happens only when it
    // succeeded, inside the mapped page.
    unsafe {
        let r = libc::mprotect(m.addr.cast(), 4096, libc::PROT_READ | libc::PROT_WRITE);
        if r != 0 {
            return format!("mprotect rw failed: {}", std::io::Error::last_os_error());
        }
        *m.addr = b'z';
        format!("mprotect rw ok, first byte {}", *m.addr as char)
    }
}

fn main() {
    let mut a = std::env::args().skip(1);
    let mode = a.next().expect("MODE");
    let out_path = a.next().expect("OUT");
    let go = a.next().expect("GO");
    // No inherited fds above stdio: the fd numbers below are exact.
    // SAFETY: close_range on fds this process does not use.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let dir = std::path::Path::new(&out_path)
        .parent()
        .unwrap()
        .to_path_buf();
    let mut mapping = None;
    let mut posix = (0, 0);
    let mut guard = std::ptr::null_mut();
    let before = match mode.as_str() {
        "fds" => {
            fds_setup();
            fds_view(false)
        }
        "itimers" => {
            itimers_setup();
            itimers_view()
        }
        "prctl" => {
            prctl_setup();
            prctl_view()
        }
        "sigtrap" => {
            handle(libc::SIGTRAP);
            format!("{} traps 1", sigactions_view())
        }
        "membarrier" => {
            // SAFETY: MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED.
            assert_eq!(unsafe { libc::syscall(libc::SYS_membarrier, 16, 0, 0) }, 0);
            // SAFETY: MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED.
            assert_eq!(unsafe { libc::syscall(libc::SYS_membarrier, 4, 0, 0) }, 0);
            membarrier_view()
        }
        "guard" => {
            guard = guard_setup();
            guard_view(guard)
        }
        "posix" => {
            posix = posix_setup();
            posix_view(posix, false)
        }
        "mapping" => {
            mapping = Some(mapping_setup(&dir));
            "mprotect rw ok, first byte z".to_string()
        }
        m => panic!("unknown mode {m}"),
    };
    let mut out = std::fs::File::create(&out_path).expect("OUT");
    writeln!(out, "ready").unwrap();
    while !std::path::Path::new(&go).exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let after = match mode.as_str() {
        "fds" => fds_view(true),
        "itimers" => itimers_view(),
        "prctl" => prctl_view(),
        "sigtrap" => sigtrap_after(),
        "membarrier" => membarrier_view(),
        "posix" => posix_view(posix, true),
        "guard" => guard_view(guard),
        _ => mapping_after(mapping.as_ref().expect("mapping set up")),
    };
    if before == after {
        writeln!(out, "OK {after}").unwrap();
        std::process::exit(0);
    }
    writeln!(out, "DIFF before {before} after {after}").unwrap();
    std::process::exit(1);
}
