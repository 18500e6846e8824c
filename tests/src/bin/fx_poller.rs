//! Fixture: polls a pipe it owns with a 100 ms timeout, forever, writing
//! `tick N` to OUT after each timeout and `data <chunk>` when the pipe has
//! data. Prints `ready R W` first.
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};

fn main() {
    let out_path = std::env::args().nth(1).expect("OUT");
    let mut out = std::fs::File::create(out_path).expect("OUT");
    let (r, w) = nix::unistd::pipe().expect("pipe");
    writeln!(out, "ready {} {}", r.as_raw_fd(), w.as_raw_fd()).unwrap();
    let mut ticks = 0u64;
    let mut buf = [0u8; 256];
    loop {
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(100u16)).expect("poll");
        if n == 0 {
            ticks += 1;
            writeln!(out, "tick {ticks}").unwrap();
        } else {
            let n = nix::unistd::read(&r, &mut buf).expect("read");
            writeln!(
                out,
                "data {}",
                String::from_utf8_lossy(&buf[..n]).trim_end()
            )
            .unwrap();
        }
    }
}
