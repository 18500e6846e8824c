//! Refuse before harming (issue 9, DESIGN 8): state ckpt cannot restore
//! yet makes `dump` exit 1 naming the task, the object and the way out,
//! while the target keeps running, untraced and not stopped, and no image
//! file is left. One test per kind, each against a real program.

use ckpt_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);
const FX_SIGTRAP: &str = env!("CARGO_BIN_EXE_fx-sigtrap-pending");

/// A python3 program that runs `setup`, writes READY and sleeps forever.
fn python(setup: &str, ready: &Path) -> Command {
    let script = format!(
        "import os,sys,time,fcntl,struct,signal,select,ctypes,threading\n\
         libc=ctypes.CDLL(None, use_errno=True)\n\
         d=os.path.dirname(sys.argv[1])\n\
         {setup}\n\
         open(sys.argv[1],'w').write('x')\n\
         while True: time.sleep(0.05)\n"
    );
    let mut c = Command::new("python3");
    c.arg("-c").arg(script).arg(ready);
    c
}

/// Asserts the refusal contract for a running `target`: exit 1, every
/// `expect` in the message, no image (nor temporary), the target alive,
/// untraced, and stopped only if it was stopped before.
fn assert_refused(target: &Guarded, dir: &Path, expect: &[&str]) {
    let img = dir.join("refused.img");
    let before = state(target.pid);
    let o = run_ckpt(&["dump", &target.pid.to_string(), "-o", img.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "dump should refuse: {err}");
    assert!(
        err.contains(&format!("pid {}", target.pid)),
        "names the task: {err}"
    );
    for e in expect {
        assert!(err.contains(e), "message lacks {e:?}: {err}");
    }
    assert!(!img.exists(), "a refused dump left an image");
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("ckpt-tmp"))
        .collect();
    assert!(left.is_empty(), "temporary image left: {left:?}");
    assert!(alive(target.pid), "target died");
    assert_eq!(status_field(target.pid, "TracerPid").as_deref(), Some("0"));
    // Not stopped by ckpt (a task that was stopped stays stopped).
    std::thread::sleep(Duration::from_millis(50));
    let stopped = |s: Option<char>| matches!(s, Some('T') | Some('t'));
    assert_eq!(
        stopped(state(target.pid)),
        stopped(before),
        "target's stopped state changed: {before:?} -> {:?}",
        state(target.pid)
    );
}

fn refused_python(test: &str, setup: &str, expect: &[&str]) {
    if !have_root(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let target = Guarded::spawn(&mut python(setup, &ready));
    assert!(wait_until(LONG, || ready.exists()), "fixture did not start");
    assert_refused(&target, dir.path(), expect);
}

#[test]
fn root_task_with_child_is_refused_and_left_running() {
    if !have_root("root_task_with_child_is_refused_and_left_running") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!("sleep 100 & touch {}; wait", ready.display());
    let target = Guarded::spawn(Command::new("bash").arg("-c").arg(&script));
    assert!(wait_until(LONG, || ready.exists()));
    let child: i32 = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", target.pid))
        .unwrap()
        .split_whitespace()
        .next()
        .expect("bash has its child")
        .parse()
        .unwrap();
    let _kill_child = KillOnDrop(child);
    assert_refused(
        &target,
        dir.path(),
        &[
            &format!("has child {child} (sleep)"),
            "process trees are not supported yet",
        ],
    );
    assert!(alive(child), "the child must keep running too");
}

#[test]
fn root_posix_record_lock_is_refused() {
    refused_python(
        "root_posix_record_lock_is_refused",
        "f=open(d+'/lk','w'); fcntl.lockf(f, fcntl.LOCK_EX)",
        &["POSIX record lock"],
    );
}

#[test]
fn root_flock_lock_is_refused() {
    refused_python(
        "root_flock_lock_is_refused",
        "f=open(d+'/lk','w'); fcntl.flock(f, fcntl.LOCK_EX)",
        &["flock lock"],
    );
}

#[test]
fn root_ofd_lock_is_refused() {
    refused_python(
        "root_ofd_lock_is_refused",
        "f=open(d+'/lk','w'); fcntl.fcntl(f, fcntl.F_OFD_SETLK, struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0))",
        &["OFD lock"],
    );
}

#[test]
fn root_file_lease_is_refused() {
    refused_python(
        "root_file_lease_is_refused",
        "open(d+'/ls','w').close(); f=open(d+'/ls'); fcntl.fcntl(f, fcntl.F_SETLEASE, fcntl.F_RDLCK)",
        &["lease"],
    );
}

#[test]
fn root_posix_timer_of_another_thread_is_refused_by_name() {
    // A thread creates a timer whose signal goes to itself
    // (SIGEV_THREAD_ID) and ends: the timer stays, aimed at no task of the
    // process, so the single-threaded dump reaches the timer check.
    refused_python(
        "root_posix_timer_of_another_thread_is_refused_by_name",
        "def mk():\n\
         \x20 ev=struct.pack('<QiiI44x', 0, 10, 4, threading.get_native_id()); t=ctypes.c_int(-1)\n\
         \x20 assert libc.syscall(222, 1, ev, ctypes.byref(t))==0\n\
         \x20 a=struct.pack('<qqqq', 0, 0, 1000, 0); assert libc.syscall(223, t, 0, a, None)==0\n\
         th=threading.Thread(target=mk); th.start(); th.join(); time.sleep(0.2)",
        &["POSIX timer 0", "SIGEV_THREAD_ID", "not the task itself"],
    );
}

#[test]
fn root_eventfd_is_refused() {
    refused_python("root_eventfd_is_refused", "e=os.eventfd(3)", &["eventfd"]);
}

#[test]
fn root_signalfd_is_refused() {
    refused_python(
        "root_signalfd_is_refused",
        "m=ctypes.create_string_buffer(128); assert libc.signalfd(-1, m, 0)>=0",
        &["signalfd"],
    );
}

#[test]
fn root_timerfd_is_refused() {
    refused_python(
        "root_timerfd_is_refused",
        "assert libc.timerfd_create(1, 0)>=0",
        &["timerfd"],
    );
}

#[test]
fn root_epoll_is_refused() {
    refused_python("root_epoll_is_refused", "e=select.epoll()", &["epoll"]);
}

#[test]
fn root_inotify_is_refused() {
    refused_python(
        "root_inotify_is_refused",
        "assert libc.inotify_init1(0)>=0",
        &["inotify"],
    );
}

#[test]
fn root_memfd_is_refused() {
    refused_python(
        "root_memfd_is_refused",
        "m=os.memfd_create('ckpt-test-memfd')",
        &["memfd ckpt-test-memfd"],
    );
}

#[test]
fn root_deleted_open_file_is_refused() {
    refused_python(
        "root_deleted_open_file_is_refused",
        "f=open(d+'/gone','w'); os.unlink(d+'/gone')",
        &["deleted file"],
    );
}

#[test]
fn root_fifo_is_refused() {
    refused_python(
        "root_fifo_is_refused",
        "os.mkfifo(d+'/ff'); f=os.open(d+'/ff', os.O_RDWR)",
        &["named pipe"],
    );
}

#[test]
fn root_pty_master_is_refused() {
    refused_python(
        "root_pty_master_is_refused",
        "m,s=os.openpty()",
        &["pty master"],
    );
}

#[test]
fn root_namespace_fd_is_refused_as_unknown_target() {
    refused_python(
        "root_namespace_fd_is_refused_as_unknown_target",
        "n=os.open('/proc/self/ns/net', os.O_RDONLY)",
        &["unknown fd target net:["],
    );
}

#[test]
fn root_deleted_working_directory_is_refused() {
    refused_python(
        "root_deleted_working_directory_is_refused",
        "os.mkdir(d+'/wd'); os.chdir(d+'/wd'); os.rmdir(d+'/wd')",
        &["deleted working directory"],
    );
}

#[test]
fn root_working_directory_inside_proc_is_refused() {
    refused_python(
        "root_working_directory_inside_proc_is_refused",
        "os.chdir('/proc/self/fdinfo')",
        &["working directory inside /proc"],
    );
}

#[test]
fn root_pending_signal_is_refused() {
    refused_python(
        "root_pending_signal_is_refused",
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1]); os.kill(os.getpid(), signal.SIGUSR1)",
        &["pending signal (SIGUSR1)"],
    );
}

#[test]
fn root_stopped_task_is_refused_and_stays_stopped() {
    if !have_root("root_stopped_task_is_refused_and_stays_stopped") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = Guarded::spawn(Command::new("sleep").arg("100"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(target.pid),
        nix::sys::signal::SIGSTOP,
    )
    .unwrap();
    assert!(wait_until(LONG, || state(target.pid) == Some('T')));
    assert_refused(&target, dir.path(), &["stopped task", "kill -CONT"]);
    assert_eq!(state(target.pid), Some('T'), "must stay stopped");
}

/// Injection never consumes a target's signals: a blocked, pending SIGTRAP
/// is still there, exactly once, after a dump (which refuses it: pending
/// signals are not restored yet) and after a dump with --leave-running.
#[test]
fn root_pending_blocked_sigtrap_survives_the_dump_exactly_once() {
    if !have_root("root_pending_blocked_sigtrap_survives_the_dump_exactly_once") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let go = dir.path().join("go");
    let mut target = Guarded::spawn(Command::new(FX_SIGTRAP).arg(&out).arg(&go));
    assert!(wait_until(LONG, || lines(&out)
        .iter()
        .any(|l| l == "ready")));
    let img = dir.path().join("trap.img");
    let pid = target.pid.to_string();
    let o = run_ckpt(&["dump", &pid, "-o", img.to_str().unwrap(), "--leave-running"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pending signal (SIGTRAP)"),
        "{}",
        stderr(&o)
    );
    assert!(!img.exists());
    assert!(alive(target.pid));
    std::fs::write(&go, "").unwrap();
    let st = target.wait_timeout(LONG).expect("fixture ended");
    let got = lines(&out);
    assert!(st.success(), "fixture saw: {got:?}");
    assert!(got.iter().any(|l| l == "OK sigtrap 1"), "{got:?}");
}
