//! Multi-threaded processes: every thread is dumped and comes back with
//! its tid, name and signal mask, and continues (issue 8, thread part).

use ckpt_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const FX_THREADS: &str = env!("CARGO_BIN_EXE_fx-threads");
const LONG: Duration = Duration::from_secs(20);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The first number of each file's (single) line.
fn count_in(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn tids(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

fn thread_names(pid: i32) -> Vec<String> {
    tids(pid)
        .iter()
        .map(|t| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{t}/comm"))
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect()
}

/// Dumps `target` (killing it) and waits until it is gone.
fn dump_and_reap(target: &mut Guarded, img: &Path) -> Duration {
    let started = Instant::now();
    let o = run_ckpt(&["dump", &target.pid.to_string(), "-o", s(img), "--quiet"]);
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "dump failed: {}", stderr(&o));
    target
        .wait_timeout(LONG)
        .expect("dumped process was not killed");
    took
}

struct KillOnDrop(i32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn restore_detached(img: &Path) -> (i32, Duration) {
    let started = Instant::now();
    let o = run_ckpt(&["restore", s(img), "--detach", "--quiet"]);
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "restore failed: {}", stderr(&o));
    let pid = stdout(&o).trim().parse().expect("restored pid on stdout");
    (pid, took)
}

/// Waits until every file in `files` counts at least `more` past `base`.
fn all_advance(files: &[std::path::PathBuf], base: &[u64], more: u64) -> bool {
    wait_until(LONG, || {
        files.iter().zip(base).all(|(f, b)| count_in(f) >= b + more)
    })
}

#[test]
fn root_python3_three_threads_each_continue() {
    if !have_root("root_python3_three_threads_each_continue") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = format!(
        "import threading, time\n\
         def work(i):\n    n = 0\n    while True:\n        n += 1\n        \
         open('{d}/c%d' % i, 'w').write(str(n))\n        time.sleep(0.02)\n\
         for i in range(3):\n    threading.Thread(target=work, args=(i,), daemon=True).start()\n\
         while True:\n    time.sleep(1)\n",
        d = d.display()
    );
    let mut target = Guarded::spawn(Command::new("python3").arg("-c").arg(&script));
    let files: Vec<_> = (0..3).map(|i| d.join(format!("c{i}"))).collect();
    assert!(all_advance(&files, &[0, 0, 0], 3), "workers did not start");
    let pid = target.pid;
    let before = tids(pid);
    assert_eq!(before.len(), 4, "leader and three workers: {before:?}");
    let img = d.join("py.img");
    dump_and_reap(&mut target, &img);
    let at_dump: Vec<u64> = files.iter().map(|f| count_in(f)).collect();
    let (restored, _) = restore_detached(&img);
    let _k = KillOnDrop(restored);
    assert_eq!(restored, pid);
    assert_eq!(tids(pid), before, "the same tids");
    assert!(
        all_advance(&files, &at_dump, 5),
        "every worker continues: {at_dump:?} -> {:?}",
        files.iter().map(|f| count_in(f)).collect::<Vec<_>>()
    );
}

#[test]
fn root_thread_name_and_sigmask_differ_from_leader_and_come_back() {
    if !have_root("root_thread_name_and_sigmask_differ_from_leader_and_come_back") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut target = Guarded::spawn(Command::new(FX_THREADS).arg("2").arg(d));
    let files: Vec<_> = ["main", "t0", "t1"].iter().map(|n| d.join(n)).collect();
    assert!(all_advance(&files, &[0, 0, 0], 3), "fixture did not start");
    let pid = target.pid;
    let before = tids(pid);
    let names = thread_names(pid);
    assert!(names.contains(&"fxw-1".to_string()), "{names:?}");
    let img = d.join("fx.img");
    dump_and_reap(&mut target, &img);
    let at_dump: Vec<u64> = files.iter().map(|f| count_in(f)).collect();
    let (restored, _) = restore_detached(&img);
    let _k = KillOnDrop(restored);
    assert_eq!(tids(restored), before);
    assert_eq!(
        thread_names(restored),
        names,
        "names as the kernel shows them"
    );
    assert!(all_advance(&files, &at_dump, 5), "every thread continues");
    // The program's own check: its tid, name and mask are what it set.
    for f in &files {
        let line = std::fs::read_to_string(f).unwrap();
        assert!(line.trim().ends_with("ok"), "{}: {line}", f.display());
    }
    // And the kernel's view of the odd worker's mask: SIGUSR1 | SIGUSR2.
    let t1 = before[2];
    let blk = std::fs::read_to_string(format!("/proc/{pid}/task/{t1}/status")).unwrap();
    assert!(
        blk.lines().any(|l| l == "SigBlk:\t0000000000000a00"),
        "{blk}"
    );
}

#[test]
fn root_two_hundred_threads_all_continue() {
    if !have_root("root_two_hundred_threads_all_continue") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut target = Guarded::spawn(Command::new(FX_THREADS).arg("200").arg(d));
    let files: Vec<_> = (0..200).map(|i| d.join(format!("t{i}"))).collect();
    assert!(all_advance(&files, &[0; 200], 2), "fixture did not start");
    let pid = target.pid;
    assert_eq!(tids(pid).len(), 201);
    let img = d.join("many.img");
    let dump = dump_and_reap(&mut target, &img);
    let at_dump: Vec<u64> = files.iter().map(|f| count_in(f)).collect();
    let (restored, restore) = restore_detached(&img);
    let _k = KillOnDrop(restored);
    eprintln!("200 threads: dump {dump:?}, restore {restore:?}");
    assert_eq!(tids(restored).len(), 201);
    assert!(all_advance(&files, &at_dump, 3), "every thread continues");
    for f in &files {
        let line = std::fs::read_to_string(f).unwrap();
        assert!(line.trim().ends_with("ok"), "{}: {line}", f.display());
    }
}

/// Builds tests/go/goroutines with Debian's go, offline.
fn build_go(out: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("go/goroutines");
    let cache = out.parent().unwrap();
    let o = Command::new("go")
        .args(["build", "-o", s(out), "."])
        .current_dir(&src)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOCACHE", cache.join("gocache"))
        .env("GOPATH", cache.join("gopath"))
        .env("HOME", cache)
        .output()
        .expect("go (golang-go, scripts/install-deps.sh)");
    assert!(o.status.success(), "go build: {}", stderr(&o));
}

#[test]
fn root_go_goroutines_on_several_threads_continue() {
    if !have_root("root_go_goroutines_on_several_threads_continue") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bin = d.join("goroutines");
    build_go(&bin);
    let mut target = Guarded::spawn(Command::new(&bin).arg(d));
    let files: Vec<_> = ["main", "g0", "g1", "g2", "g3"]
        .iter()
        .map(|n| d.join(n))
        .collect();
    assert!(all_advance(&files, &[0; 5], 3), "go program did not start");
    let pid = target.pid;
    let before = tids(pid);
    assert!(before.len() >= 3, "several OS threads: {before:?}");
    let img = d.join("go.img");
    dump_and_reap(&mut target, &img);
    let at_dump: Vec<u64> = files.iter().map(|f| count_in(f)).collect();
    let (restored, _) = restore_detached(&img);
    let _k = KillOnDrop(restored);
    assert_eq!(tids(restored), before);
    assert!(
        all_advance(&files, &at_dump, 5),
        "every goroutine continues"
    );
}

#[test]
#[ignore = "node's event loop holds epoll and eventfd fds, refused until those fd kinds are restored (helper fds)"]
fn root_node_timer_loop_continues() {
    if !have_root("root_node_timer_loop_continues") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("n");
    let script = format!(
        "let n=0; setInterval(()=>require('fs').writeFileSync('{}', String(++n)), 20)",
        out.display()
    );
    let mut target = Guarded::spawn(Command::new("node").arg("-e").arg(&script));
    assert!(all_advance(std::slice::from_ref(&out), &[0], 3));
    assert!(tids(target.pid).len() > 1, "node runs several threads");
    let img = dir.path().join("node.img");
    dump_and_reap(&mut target, &img);
    let at = count_in(&out);
    let (restored, _) = restore_detached(&img);
    let _k = KillOnDrop(restored);
    assert!(all_advance(std::slice::from_ref(&out), &[at], 5));
}

#[test]
fn root_thread_with_other_credentials_is_refused_and_left_running() {
    if !have_root("root_thread_with_other_credentials_is_refused_and_left_running") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A raw setresuid in one thread changes that thread's credentials only.
    let script = format!(
        "import threading, time, ctypes, os\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         def work():\n    fd = os.open('{d}/w', os.O_WRONLY | os.O_CREAT)\n    \
         libc.syscall(117, 65534, 65534, 0)\n    n = 0\n    while True:\n        \
         n += 1\n        os.pwrite(fd, b'%12d' % n, 0)\n        time.sleep(0.02)\n\
         threading.Thread(target=work, daemon=True).start()\n\
         while True:\n    time.sleep(1)\n",
        d = d.display()
    );
    let target = Guarded::spawn(Command::new("python3").arg("-c").arg(&script));
    let w = d.join("w");
    assert!(all_advance(std::slice::from_ref(&w), &[0], 3));
    let worker = tids(target.pid)[1];
    let img = d.join("x.img");
    let o = run_ckpt(&["dump", &target.pid.to_string(), "-o", s(&img), "--quiet"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("thread {worker}")) && err.contains("credentials"),
        "names the thread and what differs: {err}"
    );
    assert!(!img.exists());
    let at = count_in(&w);
    assert!(
        all_advance(std::slice::from_ref(&w), &[at], 3),
        "left running"
    );
    for t in tids(target.pid) {
        let st = std::fs::read_to_string(format!("/proc/{}/task/{t}/status", target.pid)).unwrap();
        assert!(st.contains("TracerPid:\t0"), "thread {t} left traced");
    }
}

#[test]
fn root_leave_running_resumes_every_thread() {
    if !have_root("root_leave_running_resumes_every_thread") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let target = Guarded::spawn(Command::new(FX_THREADS).arg("3").arg(d));
    let files: Vec<_> = ["main", "t0", "t1", "t2"]
        .iter()
        .map(|n| d.join(n))
        .collect();
    assert!(all_advance(&files, &[0; 4], 3));
    let img = d.join("lr.img");
    let o = run_ckpt(&[
        "dump",
        &target.pid.to_string(),
        "-o",
        s(&img),
        "--leave-running",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let at: Vec<u64> = files.iter().map(|f| count_in(f)).collect();
    assert!(all_advance(&files, &at, 5), "every thread runs on");
    for f in &files {
        let line = std::fs::read_to_string(f).unwrap();
        assert!(line.trim().ends_with("ok"), "{}: {line}", f.display());
    }
}
