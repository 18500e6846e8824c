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
    /// Spawns `cmd` with stdin on /dev/null and no fd above 2: a fixture
    /// must not inherit the test runner's pipes, which ckpt would rightly
    /// refuse to dump (a pipe to another process).
    pub fn spawn(cmd: &mut Command) -> Guarded {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and only
        // calls close_range(2), which is async-signal-safe and allocates nothing.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        // stdio on /dev/null too: a detached restore hands a fixture's
        // foreign-pipe stdio over from the restoring ckpt, and a test that
        // captures ckpt's output would then never see EOF.
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let pid = child.id() as i32;
        Guarded {
            child: Some(child),
            pid,
        }
    }
    /// Spawns `cmd` with the stdio the caller set on it (a test that gives
    /// the fixture a pipe or a terminal of its own) and no fd above 2.
    pub fn spawn_with_stdio(cmd: &mut Command) -> Guarded {
        use std::os::unix::process::CommandExt;
        // SAFETY: as in `spawn`: only close_range(2) in the forked child,
        // with CLOSE_RANGE_CLOEXEC so std's exec-error pipe still works.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(|| {
                libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let pid = child.id() as i32;
        Guarded {
            child: Some(child),
            pid,
        }
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
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::SIGKILL,
            );
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
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with(['Z', 'X']),
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

/// The file offset of fd `fd` of process `pid` (/proc/PID/fdinfo `pos:`):
/// whether a restored process is still writing through its own fd.
pub fn fd_pos(pid: i32, fd: i32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("pos:").and_then(|v| v.trim().parse().ok()))
}

/// The state letter of a process (R, S, T, t, Z ...).
pub fn state(pid: i32) -> Option<char> {
    status_field(pid, "State").and_then(|s| s.chars().next())
}

/// The session id of a process (/proc/PID/stat field 6).
pub fn session_of(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// Where fd `fd` of process `pid` points (readlink /proc/PID/fd/FD).
pub fn fd_link(pid: i32, fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
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

/// Builds an image through the image-format API (no process needed): a
/// security header from `profile`, and one PROCESS record per task with
/// only its PID and security state. Such images cannot be restored (they
/// hold no memory), which is fine for the verdict and format tests, which
/// must be refused or reported before anything is created.
pub fn build_image(
    profile: &lsm_labels::HostProfile,
    tasks: &[lsm_labels::TaskSecurity],
    signer: Option<&ed25519_dalek::SigningKey>,
) -> Vec<u8> {
    use image_format::records::ProcessRecord;
    use image_format::{ImageWriter, SectionKind};
    use lsm_labels::persist::{ImageSecurity, Persist};
    let header = ImageSecurity {
        profile: profile.clone(),
        created_unix_secs: 1_795_000_000,
        hostname: "test-host".into(),
        writer_version: "test".into(),
    }
    .to_record();
    let mut w = ImageWriter::new(Vec::new(), &header).expect("image writer");
    for t in tasks {
        let rec = ProcessRecord {
            pid: t.tid,
            comm: "fixture".into(),
            // Registers make the record pass the shared validation
            // (ckpt_core::validate), which policy-diff also runs.
            regs: Some(Default::default()),
            security: Some(t.to_record()),
            ..Default::default()
        };
        w.write_record(SectionKind::PROCESS, &rec).expect("record");
    }
    w.finish(signer).expect("finish")
}

/// This host's profile as `ckpt lsm --json` reports it.
pub fn host_profile_json() -> lsm_labels::HostProfile {
    let o = run_ckpt(&["lsm", "--json"]);
    assert_eq!(o.status.code(), Some(0), "ckpt lsm --json: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("ckpt lsm --json is a HostProfile")
}

/// The security state of an ordinary unprivileged task (uid/gid 65534, no
/// capabilities) with the given tid.
pub fn nobody_task(tid: i32) -> lsm_labels::TaskSecurity {
    lsm_labels::TaskSecurity {
        tid,
        creds: lsm_labels::TaskCreds {
            uids: [65534; 4],
            gids: [65534; 4],
            groups: vec![65534],
            caps: lsm_labels::CapSets {
                bounding: 0x1ff_ffff_ffff,
                ..Default::default()
            },
            securebits: 0,
        },
        ..Default::default()
    }
}
