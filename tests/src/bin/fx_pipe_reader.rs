//! Fixture: blocks in read(2) on a pipe whose both ends it holds. Prints
//! `ready R W` (the read and write fd numbers) to OUT, then for every chunk
//! read writes `got <chunk>` to OUT. A test writes into the pipe through
//! /proc/PID/fd/W to wake it.
use std::io::Write;
use std::os::fd::AsRawFd;

fn main() {
    let out_path = std::env::args().nth(1).expect("OUT");
    let mut out = std::fs::File::create(out_path).expect("OUT");
    let (r, w) = nix::unistd::pipe().expect("pipe");
    writeln!(out, "ready {} {}", r.as_raw_fd(), w.as_raw_fd()).unwrap();
    let mut buf = [0u8; 256];
    loop {
        let n = nix::unistd::read(&r, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        writeln!(out, "got {}", String::from_utf8_lossy(&buf[..n]).trim_end()).unwrap();
    }
}
