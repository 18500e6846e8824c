//! Fixture: a process under a seccomp filter. `fx-seccomp-mkdir DIR OUT`
//! sets no_new_privs, installs a classic BPF filter that makes mkdir and
//! mkdirat fail with EPERM (everything else allowed, other architectures
//! killed), prints `ready` to OUT, then every 50 ms tries to create
//! DIR/N and appends `N EPERM`, `N OK` or `N ERR <errno>` to OUT.
//! `fx-seccomp-mkdir DIR OUT drop` (started as root) instead installs the
//! filter without no_new_privs (as root may) and then drops to uid/gid
//! 65534 with no groups, like a daemon sandboxed by its supervisor.
//! OUT is opened after that (its filter allows open).
#![allow(unsafe_code)]
use std::io::Write;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let ld_w_abs = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq_k = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let ret_k = (libc::BPF_RET | libc::BPF_K) as u16;
    let prog = [
        stmt(ld_w_abs, 4), // seccomp_data.arch
        jump(jeq_k, AUDIT_ARCH_X86_64, 1, 0),
        stmt(ret_k, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(ld_w_abs, 0), // seccomp_data.nr
        jump(jeq_k, libc::SYS_mkdir as u32, 2, 0),
        jump(jeq_k, libc::SYS_mkdirat as u32, 1, 0),
        stmt(ret_k, libc::SECCOMP_RET_ALLOW),
        stmt(ret_k, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    let drop_to_nobody = args.get(3).map(String::as_str) == Some("drop");
    if !drop_to_nobody {
        // SAFETY: prctl with integer arguments.
        let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        assert_eq!(r, 0, "PR_SET_NO_NEW_PRIVS");
    }
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    if drop_to_nobody {
        // SAFETY: integer arguments / a NULL list with length 0.
        unsafe {
            assert_eq!(libc::setgroups(0, std::ptr::null()), 0, "setgroups");
            assert_eq!(libc::setresgid(65534, 65534, 65534), 0, "setresgid");
            assert_eq!(libc::setresuid(65534, 65534, 65534), 0, "setresuid");
        }
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args[2])
        .expect("OUT");
    writeln!(out, "ready").unwrap();
    let mut n = 0u64;
    loop {
        n += 1;
        let line = match std::fs::create_dir(dir.join(n.to_string())) {
            Ok(()) => format!("{n} OK"),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => format!("{n} EPERM"),
            Err(e) => format!("{n} ERR {}", e.raw_os_error().unwrap_or(0)),
        };
        writeln!(out, "{line}").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
