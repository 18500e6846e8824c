//! Helpers for ckpt's end-to-end tests: locating the `ckpt` binary, stating
//! whether a privileged test may run (it fails instead of skipping when CI
//! says root is expected), starting fixture processes that are killed when
//! the test ends, and reading what a user would check in /proc.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `ckpt` binary under test: `$CKPT_BIN`, else the one cargo built next
/// to this test executable.
pub fn ckpt_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CKPT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/ckpt
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = profile_dir.join("ckpt");
    assert!(
        bin.exists(),
        "{} not found: build it with `cargo build -p ckpt-cli` or set CKPT_BIN",
        bin.display()
    );
    bin
}

/// A `ckpt` command with the given arguments.
pub fn ckpt(args: &[&str]) -> Command {
    let mut c = Command::new(ckpt_bin());
    c.args(args);
    c
}

/// Runs `ckpt args...` to completion, capturing its output.
pub fn run_ckpt(args: &[&str]) -> Output {
    ckpt(args).stdin(Stdio::null()).output().expect("run ckpt")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// True when this test may use root. When not root: fails if the
/// environment says root is expected (`CKPT_TEST_EXPECT_ROOT=1`, as in CI),
/// otherwise reports SKIPPED on stderr and returns false.
pub fn have_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CKPT_TEST_EXPECT_ROOT").as_deref() == Ok("1") {
        panic!("{test}: CKPT_TEST_EXPECT_ROOT=1 but not running as root");
    }
    eprintln!("SKIPPED {test}: needs root (set CKPT_TEST_EXPECT_ROOT=1 to make this a failure)");
    false
}

/// A child process that is SIGKILLed and reaped when dropped.
pub struct Guarded {
    pub child: Option<Child>,
    pub pid: i32,
}

impl Guarded {
    pub fn spawn(cmd: &mut Command) -> Guarded {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let pid = child.id() as i32;
        Guarded { child: Some(child), pid }
    }
    /// Waits for the child to exit (up to `timeout`), returning its status.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kills a process that is not our child (e.g. a detached restore) on drop.
pub struct KillOnDrop(pub i32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0 > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), nix::sys::signal::SIGKILL);
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Whether a process with this PID exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with(['Z', 'X']),
        Err(_) => false,
    }
}

/// A field of /proc/PID/status, e.g. `status_field(pid, "CapEff")`.
pub fn status_field(pid: i32, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
}

/// The state letter of a process (R, S, T, t, Z ...).
pub fn state(pid: i32) -> Option<char> {
    status_field(pid, "State").and_then(|s| s.chars().next())
}

/// Reads a file's lines (empty when missing).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A pseudo-random u64 from the clock and pid (fixtures start at random values).
pub fn random_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (t ^ ((std::process::id() as u64) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1_000_000_000
}

/// The mappings of a process as (range, perms, offset, path) lines, without
/// device and inode (which the restore may legitimately change for
/// anonymous memory).
pub fn maps(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.get(5..).map(|p| p.join(" ")).unwrap_or_default();
            format!("{} {} {} {}", f[0], f[1], f[2], path)
        })
        .collect()
}
