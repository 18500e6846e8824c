//! Fixture: a process with N worker threads (`fx-threads N DIR`). Worker i
//! names itself `fxw-i`, blocks SIGUSR1 (and SIGUSR2 when i is odd), and
//! loops: every 20 ms it counts and checks its own tid, name
//! (PR_GET_NAME) and signal mask (pthread_sigmask) against what it set,
//! writing `COUNT ok` or `COUNT bad WHAT` over DIR/tI. The leader keeps its
//! own name and an empty mask and does the same into DIR/main.
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

fn own_name() -> String {
    let mut buf = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into `buf`.
    #[allow(unsafe_code)]
    unsafe {
        libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(16);
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn set_name(name: &str) {
    let mut b = name.as_bytes().to_vec();
    b.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    #[allow(unsafe_code)]
    unsafe {
        libc::prctl(libc::PR_SET_NAME, b.as_ptr());
    }
}

fn mask_of(set: &SigSet) -> u64 {
    (1..=31)
        .filter_map(|n| Signal::try_from(n).ok())
        .filter(|s| set.contains(*s))
        .fold(0, |m, s| m | 1 << (s as i32 - 1))
}

fn current_mask() -> u64 {
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut old))
        .expect("pthread_sigmask");
    mask_of(&old)
}

fn run(path: std::path::PathBuf, name: String, mask: u64) -> ! {
    let tid = nix::unistd::gettid();
    let mut n = 0u64;
    loop {
        n += 1;
        let mut bad = Vec::new();
        if nix::unistd::gettid() != tid {
            bad.push("tid");
        }
        if own_name() != name {
            bad.push("name");
        }
        if current_mask() != mask {
            bad.push("mask");
        }
        let line = if bad.is_empty() {
            format!("{n} ok\n")
        } else {
            format!("{n} bad {}\n", bad.join(","))
        };
        let _ = std::fs::write(&path, line);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() {
    let mut a = std::env::args().skip(1);
    let n: usize = a.next().expect("N").parse().expect("N");
    let dir = std::path::PathBuf::from(a.next().expect("DIR"));
    for i in 0..n {
        let path = dir.join(format!("t{i}"));
        std::thread::spawn(move || {
            let name = format!("fxw-{i}");
            set_name(&name);
            let mut set = SigSet::empty();
            set.add(Signal::SIGUSR1);
            if i % 2 == 1 {
                set.add(Signal::SIGUSR2);
            }
            nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
                .expect("block");
            let mask = mask_of(&set);
            run(path, name, mask)
        });
    }
    run(dir.join("main"), own_name(), current_mask())
}
