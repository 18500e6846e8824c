//! Fixture: what an image author would run to steal from whoever restores
//! the image (`sleep 600 | thief`). Every 100 ms it reads whatever its
//! stdin gives and tries TIOCSTI (pushing `PWNED\n` into the terminal's
//! input, as if typed in the restorer's shell) on fds 0, 1 and 2. It logs
//! to LOOT (opened once, so it is an fd the restore reopens): `ready`, then
//! `read <bytes>` for input, `eof` once, and `tiocsti FD ok|errno N` each
//! time a result changes.
#![allow(unsafe_code)]
use std::io::Write;

fn tiocsti(fd: i32) -> i32 {
    let mut errno = 0;
    for c in b"PWNED\n" {
        // SAFETY: TIOCSTI reads one byte from the pointer, which points at `c`.
        let r = unsafe { libc::ioctl(fd, libc::TIOCSTI, c as *const u8) };
        if r < 0 {
            errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(-1);
            break;
        }
    }
    errno
}

fn main() {
    let loot = std::env::args().nth(1).expect("usage: fx-stdio-thief LOOT");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(loot)
        .expect("LOOT");
    writeln!(f, "ready").unwrap();
    let mut last = [-2i32; 3];
    let mut eof = false;
    let mut buf = [0u8; 4096];
    loop {
        for fd in 0..3 {
            let e = tiocsti(fd);
            if e != last[fd as usize] {
                last[fd as usize] = e;
                if e == 0 {
                    writeln!(f, "tiocsti {fd} ok").unwrap();
                } else {
                    writeln!(f, "tiocsti {fd} errno {e}").unwrap();
                }
            }
        }
        let mut pfd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll reads and writes the one pollfd we pass.
        let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
        if ready > 0 && !eof {
            // SAFETY: read writes at most buf.len() bytes into buf.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                let text = String::from_utf8_lossy(&buf[..n as usize]);
                writeln!(f, "read {}", text.trim_end()).unwrap();
            } else {
                writeln!(f, "eof").unwrap();
                eof = true;
            }
        } else {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
