//! Fixture: what an LSM lets this process do, observed by the process
//! itself. `fx-lsm-probe OUT DENIED [PERIOD_MS]` appends one line to OUT
//! every PERIOD_MS (default 100) milliseconds:
//! `<n> label=<its /proc/self/attr/current> denied=<open(DENIED) result>`,
//! where the result is `opened` or the errno name (`EACCES`). The count lives
//! only in memory, so lines after a restore continue the count; the label
//! and the access decision are the kernel's answer for the running process.
use std::io::Write;

fn label() -> String {
    match std::fs::read("/proc/self/attr/current") {
        Ok(v) => String::from_utf8_lossy(&v)
            .trim_end_matches(['\0', '\n'])
            .replace(' ', "_"),
        Err(e) => format!("unreadable:{}", e.raw_os_error().unwrap_or(0)),
    }
}

fn probe(path: &str) -> String {
    match std::fs::File::open(path) {
        Ok(_) => "opened".into(),
        Err(e) => match e.raw_os_error() {
            Some(libc::EACCES) => "EACCES".into(),
            Some(libc::EPERM) => "EPERM".into(),
            Some(libc::ENOENT) => "ENOENT".into(),
            other => format!("errno{}", other.unwrap_or(0)),
        },
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args[1])
        .expect("OUT");
    let denied = args[2].clone();
    let period = args
        .get(3)
        .map(|p| p.parse().expect("PERIOD_MS"))
        .unwrap_or(100u64);
    let mut n = 0u64;
    loop {
        n += 1;
        let line = format!("{n} label={} denied={}\n", label(), probe(&denied));
        out.write_all(line.as_bytes()).expect("write");
        std::thread::sleep(std::time::Duration::from_millis(period));
    }
}
