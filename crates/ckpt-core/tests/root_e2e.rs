//! End-to-end dump and restore of real processes (needs root: ptrace of
//! other processes, clone3 with set_tid, PR_SET_MM_MAP).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ckpt_core::{DumpOptions, ExitStatus, RestoreOptions};
use image_format::VerifiedImage;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// True when the test may run; panics when CI expects root and we are not.
fn require_root() -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("CKPT_TEST_EXPECT_ROOT").as_deref() == Ok("1") {
        panic!("CKPT_TEST_EXPECT_ROOT=1 but this test is not running as root");
    }
    eprintln!("SKIPPED: needs root");
    false
}

static BUILD: Mutex<()> = Mutex::new(());

/// Compile a C fixture from tests/fixtures once.
fn fixture(name: &str) -> PathBuf {
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fixture-{name}"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.c"));
    let stale = match (out.metadata(), src.metadata()) {
        (Ok(o), Ok(s)) => o.modified().unwrap() < s.modified().unwrap(),
        _ => true,
    };
    if stale {
        let st = Command::new("gcc")
            .args(["-O1", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .expect("gcc runs");
        assert!(st.success(), "gcc failed for {name}");
    }
    out
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ckpt-core-e2e")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn dump(pid: i32, img: &Path, leave_running: bool) -> ckpt_core::DumpReport {
    let opts = DumpOptions {
        leave_running,
        ..DumpOptions::default()
    };
    ckpt_core::dump_to_path(pid, img, &opts).unwrap_or_else(|e| panic!("dump failed: {e}"))
}

fn restore(img: &Path) -> ckpt_core::RestoredProcess {
    let image = VerifiedImage::open(File::open(img).unwrap()).expect("image verifies");
    ckpt_core::restore(&image, &RestoreOptions::default()).unwrap_or_else(|e| panic!("restore failed: {e}"))
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

fn reap(mut c: Child) {
    let _ = c.wait();
}

fn maps_lines(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .map(|l| {
            // Normalise the column padding before the path.
            let f: Vec<&str> = l.split_whitespace().collect();
            f.join(" ")
        })
        .collect()
}

/// A command run through the clean-exec fixture (no leaked fds).
fn clean(prog: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(fixture("clean-exec"));
    c.arg(prog).stdin(Stdio::null());
    c
}

/// Kills a pid when dropped (a failing test leaves nothing running).
struct KillOnDrop(i32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill(self.0);
    }
}

fn start_counter(out: &Path) -> (Child, KillOnDrop) {
    let c = clean(fixture("counter")).arg(out).spawn().unwrap();
    let k = KillOnDrop(c.id() as i32);
    wait_for("counter output", Duration::from_secs(5), || lines(out).len() >= 3);
    (c, k)
}

#[test]
fn root_counter_continues_with_same_pid_and_maps() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let out = d.path().join("count.txt");
    let img = d.path().join("counter.img");
    let (child, _k) = start_counter(&out);
    let pid = child.id() as i32;
    let maps_before = maps_lines(pid);
    let report = dump(pid, &img, false);
    reap(child);
    assert!(img.exists());
    assert!(report.pages_bytes > 0);
    let last: u64 = lines(&out).last().unwrap().parse().unwrap();
    let before = lines(&out).len();

    let restored = restore(&img);
    assert_eq!(restored.pid(), pid, "restored with the checkpointed PID");
    wait_for("restored output", Duration::from_secs(5), || lines(&out).len() >= before + 3);
    let maps_after = maps_lines(pid);
    let all = lines(&out);
    let next: Vec<u64> = all[before..].iter().map(|l| l.parse().unwrap()).collect();
    assert_eq!(next[0], last + 1, "continues from the checkpointed value");
    assert!(next.windows(2).all(|w| w[1] == w[0] + 1), "no gaps: {next:?}");
    kill(pid);
    let st = restored.wait().unwrap();
    assert_eq!(st, ExitStatus::Signal(9));
    assert_eq!(maps_before, maps_after, "maps of the restored process match");
}
