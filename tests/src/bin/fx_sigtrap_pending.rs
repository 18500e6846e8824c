//! Fixture: blocks SIGTRAP (with a counting handler), raises it so it is
//! pending, writes `ready` to OUT, then waits for the file GO. Then it
//! unblocks SIGTRAP and writes `OK sigtrap N` (N deliveries seen; exactly 1
//! is right) or `DIFF sigtrap N`, exiting 0 only for exactly one.
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

static SEEN: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_trap(_: libc::c_int) {
    SEEN.fetch_add(1, Ordering::SeqCst);
}

fn main() {
    use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let mut a = std::env::args().skip(1);
    let out_path = a.next().expect("OUT");
    let go = a.next().expect("GO");
    let mut out = std::fs::File::create(out_path).expect("OUT");
    let act = SigAction::new(
        SigHandler::Handler(on_trap),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only increments an atomic.
    #[allow(unsafe_code)]
    unsafe {
        signal::sigaction(Signal::SIGTRAP, &act).expect("sigaction");
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGTRAP);
    set.thread_block().expect("block");
    signal::raise(Signal::SIGTRAP).expect("raise");
    writeln!(out, "ready").unwrap();
    while !std::path::Path::new(&go).exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    set.thread_unblock().expect("unblock");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let n = SEEN.load(Ordering::SeqCst);
    let verdict = if n == 1 { "OK" } else { "DIFF" };
    writeln!(out, "{verdict} sigtrap {n}").unwrap();
    std::process::exit(if n == 1 { 0 } else { 1 });
}
