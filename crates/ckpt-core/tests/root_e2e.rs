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

/// Compile a C fixture from tests/fixtures once (`name-static` links it
/// statically).
fn fixture(name: &str) -> PathBuf {
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fixture-{name}"));
    let base = name.strip_suffix("-static").unwrap_or(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{base}.c"));
    let stale = match (out.metadata(), src.metadata()) {
        (Ok(o), Ok(s)) => o.modified().unwrap() < s.modified().unwrap(),
        _ => true,
    };
    if stale {
        let mut gcc = Command::new("gcc");
        if base != name {
            gcc.arg("-static");
        }
        let st = gcc
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
    use lsm_labels::persist::{ImageSecurity, Persist};
    // This host's security header, as `ckpt dump` writes it: the verdict
    // compares it with the host at restore.
    let security = ImageSecurity {
        profile: lsm_labels::detect_host_profile(&lsm_labels::HostView::live())
            .expect("the LSM stack"),
        created_unix_secs: 0,
        hostname: String::new(),
        writer_version: "test".into(),
    }
    .to_record();
    let opts = DumpOptions {
        leave_running,
        security,
        ..DumpOptions::default()
    };
    ckpt_core::dump_to_path(pid, img, &opts).unwrap_or_else(|e| panic!("dump failed: {e}"))
}

/// The library's one way to restore: the engine's own verdict, then what
/// it approved.
fn restore_image(
    image: &VerifiedImage,
) -> Result<ckpt_core::RestoredProcess, ckpt_core::RestoreError> {
    let decision = ckpt_core::plan_restore(
        image,
        ckpt_core::ImageSource::File,
        ckpt_core::VerdictHost::Live,
        &lsm_labels::verdict::RestoreFlags::default(),
    )
    .expect("the verdict is reached");
    let approved = decision
        .approved()
        .unwrap_or_else(|| panic!("refused: {}", decision.verdict()));
    ckpt_core::restore(approved, &RestoreOptions::default())
}

fn restore(img: &Path) -> ckpt_core::RestoredProcess {
    let image = VerifiedImage::open(File::open(img).unwrap()).expect("image verifies");
    restore_image(&image).unwrap_or_else(|e| panic!("restore failed: {e}"))
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
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
    wait_for("counter output", Duration::from_secs(5), || {
        lines(out).len() >= 3
    });
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
    wait_for("restored output", Duration::from_secs(5), || {
        lines(&out).len() >= before + 3
    });
    let maps_after = maps_lines(pid);
    let all = lines(&out);
    let next: Vec<u64> = all[before..].iter().map(|l| l.parse().unwrap()).collect();
    assert_eq!(next[0], last + 1, "continues from the checkpointed value");
    assert!(
        next.windows(2).all(|w| w[1] == w[0] + 1),
        "no gaps: {next:?}"
    );
    kill(pid);
    let st = restored.wait().unwrap();
    assert_eq!(st, ExitStatus::Signal(9));
    assert_eq!(
        maps_before, maps_after,
        "maps of the restored process match"
    );
}

/// Start `cmd` (counting into `out`), dump it, restore it and check that
/// the count continues from the checkpointed value with the same PID.
fn check_counter_continues(mut cmd: Command, out: &Path, d: &Path) {
    let child = cmd.spawn().unwrap();
    let pid = child.id() as i32;
    let _k = KillOnDrop(pid);
    wait_for("first output", Duration::from_secs(10), || {
        lines(out).len() >= 3
    });
    let img = d.join("img");
    dump(pid, &img, false);
    reap(child);
    let before = lines(out);
    let last: u64 = before.last().unwrap().parse().unwrap();
    let restored = restore(&img);
    assert_eq!(restored.pid(), pid);
    wait_for("output after restore", Duration::from_secs(10), || {
        lines(out).len() >= before.len() + 3
    });
    let next: Vec<u64> = lines(out)[before.len()..]
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(next[0], last + 1, "continues from {last}: {next:?}");
    kill(pid);
    assert_eq!(restored.wait().unwrap(), ExitStatus::Signal(9));
}

#[test]
fn root_python3_continues() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let out = d.path().join("py.txt");
    let mut c = clean("python3");
    c.arg("-c")
        .arg("import os,sys,time\nf=open(sys.argv[1],'a')\nn=os.getpid()*100\nwhile True:\n  f.write(f'{n}\\n'); f.flush(); n+=1; time.sleep(0.05)\n")
        .arg(&out);
    check_counter_continues(c, &out, d.path());
}

#[test]
fn root_perl_continues() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let out = d.path().join("pl.txt");
    let mut c = clean("perl");
    c.arg("-e")
        .arg("use Time::HiRes qw(usleep); open(my $f, '>>', $ARGV[0]) or die; $f->autoflush(1); my $n = $$ * 100; while (1) { print $f \"$n\\n\"; $n++; usleep(50000); }")
        .arg(&out);
    check_counter_continues(c, &out, d.path());
}

#[test]
fn root_bash_continues() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let out = d.path().join("sh.txt");
    let mut c = clean("bash");
    // Builtins only: a forked `sleep` child would not be part of the dump.
    c.arg("-c")
        .arg("n=$(( $$ * 100 )); while :; do echo $n >> \"$1\"; n=$((n+1)); for ((i=0;i<20000;i++)); do :; done; done")
        .arg("bash")
        .arg(&out);
    check_counter_continues(c, &out, d.path());
}

fn run_blocked(mode: &str, poke: impl FnOnce(i32, &Path)) -> String {
    let d = tmpdir();
    let out = d.path().join("blocked.txt");
    let child = clean(fixture("blocked"))
        .arg(mode)
        .arg(&out)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let _k = KillOnDrop(pid);
    wait_for("ready", Duration::from_secs(5), || {
        lines(&out).len() >= if mode == "pipe" { 2 } else { 1 }
    });
    std::thread::sleep(Duration::from_millis(300));
    let img = d.path().join("img");
    dump(pid, &img, false);
    reap(child);
    let restored = restore(&img);
    poke(pid, &out);
    let st = restored.wait().unwrap();
    assert_eq!(
        st,
        ExitStatus::Code(0),
        "{mode}: exit status; output {:?}",
        lines(&out)
    );
    lines(&out).last().cloned().unwrap_or_default()
}

#[test]
fn root_nanosleep_continues() {
    if !require_root() {
        return;
    }
    assert_eq!(run_blocked("nanosleep", |_, _| {}), "done nanosleep 0");
}

#[test]
fn root_poll_continues() {
    if !require_root() {
        return;
    }
    assert_eq!(run_blocked("poll", |_, _| {}), "done poll 0");
}

#[test]
fn root_read_on_own_pipe_continues() {
    if !require_root() {
        return;
    }
    let last = run_blocked("pipe", |pid, out| {
        let l = lines(out);
        let wfd: i32 = l[1].split_whitespace().nth(2).unwrap().parse().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/{pid}/fd/{wfd}"))
            .unwrap();
        std::io::Write::write_all(&mut w, b"hello").unwrap();
    });
    assert_eq!(last, "done pipe 5 hello");
}

#[test]
fn root_pipe_buffered_bytes_survive() {
    if !require_root() {
        return;
    }
    assert_eq!(run_blocked("pipebuf", |_, _| {}), "done pipebuf 8 buffered");
}

#[test]
fn root_restore_twice_in_a_row() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let out = d.path().join("count.txt");
    let (child, _k) = start_counter(&out);
    let pid = child.id() as i32;
    let img1 = d.path().join("one.img");
    dump(pid, &img1, false);
    reap(child);
    let r1 = restore(&img1);
    let n = lines(&out).len();
    wait_for("first restore runs", Duration::from_secs(5), || {
        lines(&out).len() >= n + 3
    });
    let img2 = d.path().join("two.img");
    dump(pid, &img2, false);
    // The dump killed and (as we are also its parent) reaped the first one.
    let _ = r1.detach();
    let before = lines(&out);
    let last: u64 = before.last().unwrap().parse().unwrap();
    let r2 = restore(&img2);
    assert_eq!(r2.pid(), pid);
    wait_for("second restore runs", Duration::from_secs(5), || {
        lines(&out).len() >= before.len() + 3
    });
    let first: u64 = lines(&out)[before.len()].parse().unwrap();
    assert_eq!(first, last + 1);
    kill(pid);
    r2.wait().unwrap();
}

fn traced_or_stopped(pid: i32) -> bool {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let tracer = s.lines().find(|l| l.starts_with("TracerPid:")).unwrap();
    let state = s.lines().find(|l| l.starts_with("State:")).unwrap();
    !tracer.ends_with("\t0") || state.contains("stopped") || state.contains("tracing")
}

#[test]
fn root_listening_tcp_socket_refuses_dump_and_keeps_serving() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let port_file = d.path().join("port");
    let child = clean("python3")
        .arg("-c")
        .arg("import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nopen(sys.argv[1],'w').write(str(s.getsockname()[1]))\nwhile True:\n  c,_=s.accept(); c.sendall(b'hi'); c.close()\n")
        .arg(&port_file)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let _k = KillOnDrop(pid);
    wait_for("port", Duration::from_secs(5), || {
        !lines(&port_file).is_empty()
    });
    let port: u16 = lines(&port_file)[0].parse().unwrap();
    let img = d.path().join("img");
    let err = ckpt_core::dump_to_path(pid, &img, &DumpOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("TCP socket") && msg.contains(&format!("pid {pid}")),
        "{msg}"
    );
    assert_eq!(err.exit_code(), 1);
    assert!(!img.exists(), "no image after a failed dump");
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
    assert!(!traced_or_stopped(pid), "target runs on untraced");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut buf = String::new();
    std::io::Read::read_to_string(&mut s, &mut buf).unwrap();
    assert_eq!(buf, "hi", "the process keeps serving");
    drop(child);
}

#[test]
fn root_failed_restore_leaves_nothing() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let out = d.path().join("count.txt");
    let (child, _k) = start_counter(&out);
    let pid = child.id() as i32;
    let img = d.path().join("img");
    dump(pid, &img, false);
    reap(child);
    // Replace the file the process writes to: restore must refuse it.
    std::fs::rename(&out, d.path().join("old.txt")).unwrap();
    std::fs::write(&out, "").unwrap();
    let image = VerifiedImage::open(File::open(&img).unwrap()).unwrap();
    let err = restore_image(&image).unwrap_err();
    assert!(err.to_string().contains("changed since the dump"), "{err}");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "nothing of the failed restore is left (not even a zombie)"
    );
}

#[test]
fn root_leave_running_keeps_target_and_pid_taken_is_refused() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let out = d.path().join("count.txt");
    let (child, _k) = start_counter(&out);
    let pid = child.id() as i32;
    let img = d.path().join("img");
    dump(pid, &img, true);
    assert!(!traced_or_stopped(pid));
    let n = lines(&out).len();
    wait_for("still counting", Duration::from_secs(5), || {
        lines(&out).len() >= n + 2
    });
    let image = VerifiedImage::open(File::open(&img).unwrap()).unwrap();
    let err = restore_image(&image).unwrap_err();
    assert!(
        matches!(err, ckpt_core::RestoreError::PidTaken { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--pid-ns"));
    kill(pid);
    reap(child);
}

#[test]
fn root_memory_contents_survive() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let mut child = clean(fixture("memhog"))
        .arg("64")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let _k = KillOnDrop(pid);
    let mut so = child.stdout.take().unwrap();
    let mut b = [0u8; 6];
    std::io::Read::read_exact(&mut so, &mut b).unwrap();
    let img = d.path().join("img");
    let rep = dump(pid, &img, false);
    reap(child);
    let size = std::fs::metadata(&img).unwrap().len();
    // Pages whose pattern byte wraps to 0 are all-zero and not stored.
    assert!(rep.pages_bytes >= 63 << 20, "{}", rep.pages_bytes);
    assert!(
        size < rep.pages_bytes + (4 << 20),
        "image {size} vs pages {}",
        rep.pages_bytes
    );
    let r = restore(&img);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    assert_eq!(
        r.wait().unwrap(),
        ExitStatus::Code(0),
        "memory pattern intact"
    );
}

#[test]
fn root_static_counter_continues() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let out = d.path().join("count.txt");
    let mut c = clean(fixture("counter-static"));
    c.arg(&out);
    check_counter_continues(c, &out, d.path());
}

fn status_field(pid: i32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

#[test]
fn root_seccomp_filter_and_no_new_privs_are_restored() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let out = d.path().join("sc.txt");
    let child = clean(fixture("seccomp-counter")).arg(&out).spawn().unwrap();
    let pid = child.id() as i32;
    let _k = KillOnDrop(pid);
    wait_for("output", Duration::from_secs(5), || lines(&out).len() >= 3);
    let img = d.path().join("img");
    dump(pid, &img, false);
    reap(child);
    let n = lines(&out).len();
    let r = restore(&img);
    wait_for("output after restore", Duration::from_secs(5), || {
        lines(&out).len() >= n + 2
    });
    assert_eq!(status_field(pid, "Seccomp"), "2");
    assert_eq!(status_field(pid, "Seccomp_filters"), "1");
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    let last = lines(&out).last().unwrap().clone();
    assert!(
        last.ends_with(" -1"),
        "getppid is still denied by the filter: {last}"
    );
    kill(pid);
    r.wait().unwrap();
}

#[test]
fn root_shared_file_offset_survives() {
    if !require_root() {
        return;
    }
    let d = tmpdir();
    let out = d.path().join("shared.txt");
    // Two fds on one open file description (no O_APPEND): their writes
    // interleave through one shared offset, as with `>log 2>&1`.
    let child = clean("python3")
        .arg("-c")
        .arg("import os,sys,time\nf=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT|os.O_TRUNC)\ng=os.dup(f)\nn=0\nwhile True:\n  os.write(f,b'a%d\\n'%n); os.write(g,b'b%d\\n'%n); n+=1; time.sleep(0.02)\n")
        .arg(&out)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let _k = KillOnDrop(pid);
    wait_for("output", Duration::from_secs(5), || lines(&out).len() >= 6);
    let img = d.path().join("img");
    dump(pid, &img, false);
    reap(child);
    let n = lines(&out).len();
    let r = restore(&img);
    wait_for("output after restore", Duration::from_secs(5), || {
        lines(&out).len() >= n + 6
    });
    kill(pid);
    r.wait().unwrap();
    let all = lines(&out);
    for (i, pair) in all.chunks_exact(2).enumerate() {
        assert_eq!(
            pair,
            [format!("a{i}"), format!("b{i}")],
            "line pair {i} of {all:?}"
        );
    }
}
