//! Fixture: a daemon that opens a file before dropping privileges.
//! `fx-drop-privs FILE OUT` (started as root) opens FILE read-only, drops
//! to uid/gid 65534 with no supplementary groups (and so no capabilities),
//! then opens OUT and every 50 ms appends `tick N <first line of FILE>`,
//! read through the fd it kept.
#![allow(unsafe_code)]
use std::io::Write;
use std::os::unix::fs::FileExt;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let held = std::fs::File::open(&args[1]).expect("FILE");
    // SAFETY: integer arguments / a NULL list with length 0.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups");
        assert_eq!(libc::setresgid(65534, 65534, 65534), 0, "setresgid");
        assert_eq!(libc::setresuid(65534, 65534, 65534), 0, "setresuid");
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args[2])
        .expect("OUT");
    let mut n = 0u64;
    loop {
        n += 1;
        let mut buf = [0u8; 64];
        let len = held.read_at(&mut buf, 0).expect("read FILE");
        let text = String::from_utf8_lossy(&buf[..len]);
        writeln!(out, "tick {n} {}", text.lines().next().unwrap_or("")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
