//! Fixture: a process inside a Landlock domain. `fx-landlock OUT` opens
//! OUT, creates a ruleset that handles file writes and directory creation
//! (with no rule, so both are denied everywhere), sets no_new_privs,
//! restricts itself, closes the ruleset fd, writes `ready`, then appends
//! `tick N` to OUT every 50 ms through the fd it opened before.
#![allow(unsafe_code)]
use std::io::Write;
use std::os::fd::FromRawFd;

const SYS_LANDLOCK_CREATE_RULESET: libc::c_long = 444;
const SYS_LANDLOCK_RESTRICT_SELF: libc::c_long = 446;
const ACCESS_FS_WRITE_FILE: u64 = 1 << 1;
const ACCESS_FS_MAKE_DIR: u64 = 1 << 7;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

fn main() {
    let out_path = std::env::args().nth(1).expect("OUT");
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out_path)
        .expect("OUT");
    let attr = RulesetAttr {
        handled_access_fs: ACCESS_FS_WRITE_FILE | ACCESS_FS_MAKE_DIR,
    };
    // SAFETY: attr is a valid landlock_ruleset_attr of the size we pass.
    let fd = unsafe {
        libc::syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0,
        )
    };
    assert!(
        fd >= 0,
        "landlock_create_ruleset: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(r, 0, "PR_SET_NO_NEW_PRIVS");
    // SAFETY: integer arguments only.
    let r = unsafe { libc::syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0) };
    assert_eq!(
        r,
        0,
        "landlock_restrict_self: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is the ruleset fd we own; closing it through OwnedFd.
    drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) });
    writeln!(out, "ready").unwrap();
    let mut n = 0u64;
    loop {
        n += 1;
        writeln!(out, "tick {n}").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
