//! The CLI's only unsafe code: process-wide signal setup.

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
