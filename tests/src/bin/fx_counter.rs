//! Fixture: a counter. `fx-counter START OUT [PERIOD_MS]` writes START+1,
//! START+2, ... one per line to OUT (a regular fd, so its offset matters)
//! every PERIOD_MS (default 50) milliseconds, sleeping in nanosleep between.
//! The count lives only in this process's memory (stack and heap copies),
//! so a restored counter can only continue correctly if its memory did.
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let start: u64 = args[1].parse().expect("START");
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&args[2])
        .expect("OUT");
    let period = args
        .get(3)
        .map(|p| p.parse().expect("PERIOD_MS"))
        .unwrap_or(50u64);
    let mut on_heap = Box::new(start);
    let mut n = start;
    loop {
        n += 1;
        *on_heap += 1;
        assert_eq!(n, *on_heap, "stack and heap copies diverged");
        out.write_all(format!("{n}\n").as_bytes()).expect("write");
        std::thread::sleep(std::time::Duration::from_millis(period));
    }
}
