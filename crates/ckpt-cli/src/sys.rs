//! The CLI's only unsafe code: process-wide signal setup, and the fds a
//! child started by ckpt (the demo's counter) inherits.

/// Restores the default SIGPIPE disposition, which Rust's runtime sets to
/// "ignore" before `main`: `ckpt inspect IMG | head` then ends quietly like
/// any Unix tool instead of panicking on EPIPE, and processes the engine
/// forks for a restore do not inherit an ignored SIGPIPE that the
/// checkpointed program never had.
///
/// # References
/// signal(7), sigaction(2).
pub fn default_sigpipe() {
    // SAFETY: called first thing in `main`, before any thread exists;
    // installing SIG_DFL registers no Rust handler, so no Rust code can run
    // in signal context.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Makes `cmd`'s child hold only its stdio whatever the caller of ckpt had
/// open (a stray pipe of the shell would otherwise be inherited, and dump
/// rightly refuses it): every fd above 2 is marked close-on-exec in the
/// child before it execs. (Marked, not closed: std's own exec-error pipe
/// keeps working until the exec.)
///
/// # References
/// close_range(2) with CLOSE_RANGE_CLOEXEC.
pub fn only_stdio(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // calls close_range(2), which is async-signal-safe, allocates nothing
    // and touches no memory.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            let r = libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}
