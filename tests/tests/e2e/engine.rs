//! Dump and restore of real processes (issue: the engine). All need root:
//! claiming a PID needs CAP_CHECKPOINT_RESTORE.

use ckpt_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const FX_COUNTER: &str = env!("CARGO_BIN_EXE_fx-counter");
const FX_PIPE_READER: &str = env!("CARGO_BIN_EXE_fx-pipe-reader");
const FX_POLLER: &str = env!("CARGO_BIN_EXE_fx-poller");
const FX_EXIT_LATER: &str = env!("CARGO_BIN_EXE_fx-exit-later");
const LONG: Duration = Duration::from_secs(20);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Dumps `target` (killing it), asserts success and that it is gone, and
/// reaps it so its PID is free again.
fn dump_and_reap(target: &mut Guarded, img: &Path) -> ProcSnapshot {
    let before = proc_snapshot(target.pid);
    let pid = target.pid.to_string();
    let o = run_ckpt(&["dump", &pid, "-o", s(img), "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "dump failed: {}", stderr(&o));
    assert!(img.exists(), "dump reported success but wrote no image");
    let st = target
        .wait_timeout(LONG)
        .expect("dumped process was not killed");
    assert!(!st.success());
    before
}

/// /proc fields a program that keeps running after restore changes by
/// itself, beyond `PROC_DIFF_ALLOWED`: its output file's position and the
/// signal it may be taking at that moment.
const RUNNING: &[&str] = &[
    "fdinfo/*:pos",
    "status:SigPnd",
    "status:ShdPnd",
    "stat:signal",
];

/// Restores detached, returns the restored PID (read from --pidfile and
/// checked against stdout).
fn restore_detached(img: &Path, dir: &Path) -> i32 {
    let pidfile = dir.join("restored.pid");
    let _ = std::fs::remove_file(&pidfile);
    let o = run_ckpt(&[
        "restore",
        s(img),
        "--detach",
        "--pidfile",
        s(&pidfile),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "restore failed: {}", stderr(&o));
    let from_file: i32 = std::fs::read_to_string(&pidfile)
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid in pidfile");
    assert!(
        stdout(&o).contains(&from_file.to_string()),
        "stdout: {}",
        stdout(&o)
    );
    from_file
}

fn numbers(path: &Path) -> Vec<u64> {
    lines(path)
        .iter()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Asserts that `v` is exactly first, first+1, ..., with no gap, repeat or
/// overwritten line.
fn assert_unbroken(v: &[u64], first: u64) {
    for (i, n) in v.iter().enumerate() {
        assert_eq!(*n, first + i as u64, "sequence broken at line {i}: {v:?}");
    }
}

#[test]
fn root_counter_continues_from_checkpoint_with_same_pid() {
    if !have_root("root_counter_continues_from_checkpoint_with_same_pid") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("count");
    let img = dir.path().join("counter.img");
    let start = random_u64();
    let mut target = Guarded::spawn(Command::new(FX_COUNTER).arg(start.to_string()).arg(&out));
    let pid = target.pid;
    assert!(wait_until(LONG, || numbers(&out).len() >= 5));
    let proc_before = dump_and_reap(&mut target, &img);
    let at_dump = numbers(&out);
    let last = *at_dump.last().unwrap();

    let restored = restore_detached(&img, dir.path());
    assert_same_proc_state(&proc_before, &proc_snapshot(restored), RUNNING);
    let _k = KillOnDrop(restored);
    assert_eq!(
        restored, pid,
        "restored process must keep its checkpointed PID"
    );
    assert!(
        wait_until(LONG, || numbers(&out).len() >= at_dump.len() + 5),
        "restored counter did not continue; file: {:?}",
        lines(&out)
    );
    let all = numbers(&out);
    assert_eq!(
        all[at_dump.len()],
        last + 1,
        "must continue from the checkpointed value"
    );
    assert_unbroken(&all, start + 1);
}

#[test]
fn root_restored_maps_match_original() {
    if !have_root("root_restored_maps_match_original") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("count");
    let img = dir.path().join("maps.img");
    let mut target = Guarded::spawn(Command::new(FX_COUNTER).arg("0").arg(&out));
    assert!(wait_until(LONG, || numbers(&out).len() >= 3));
    let before = maps(target.pid);
    let proc_before = dump_and_reap(&mut target, &img);
    let restored = restore_detached(&img, dir.path());
    assert_same_proc_state(&proc_before, &proc_snapshot(restored), RUNNING);
    let _k = KillOnDrop(restored);
    let after = maps(restored);
    assert_eq!(
        before, after,
        "restored /proc/PID/maps differs from the original's"
    );
}

#[test]
fn root_image_restores_twice() {
    if !have_root("root_image_restores_twice") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("count");
    let img = dir.path().join("twice.img");
    let mut target = Guarded::spawn(Command::new(FX_COUNTER).arg("1000").arg(&out));
    assert!(wait_until(LONG, || numbers(&out).len() >= 3));
    let proc_before = dump_and_reap(&mut target, &img);
    let saved = std::fs::read(&out).unwrap();
    let at_dump = numbers(&out);
    for round in 0..2 {
        std::fs::write(&out, &saved).unwrap();
        let pid = restore_detached(&img, dir.path());
        assert_same_proc_state(&proc_before, &proc_snapshot(pid), RUNNING);
        assert!(
            wait_until(LONG, || numbers(&out).len() >= at_dump.len() + 3),
            "round {round}: no progress"
        );
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
        assert!(
            wait_until(LONG, || !alive(pid)),
            "round {round}: process survived SIGKILL"
        );
        let all = numbers(&out);
        assert_unbroken(&all, 1001);
    }
}

#[test]
fn root_process_blocked_in_nanosleep_continues() {
    if !have_root("root_process_blocked_in_nanosleep_continues") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("count");
    let img = dir.path().join("sleep.img");
    // One line every 1.5 s: the dump almost surely lands inside nanosleep.
    let mut target = Guarded::spawn(Command::new(FX_COUNTER).arg("7").arg(&out).arg("1500"));
    assert!(wait_until(LONG, || numbers(&out).len() >= 2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(target.pid), Some('S'), "fixture should be sleeping");
    let proc_before = dump_and_reap(&mut target, &img);
    let n = numbers(&out).len();
    let restored = restore_detached(&img, dir.path());
    assert_same_proc_state(&proc_before, &proc_snapshot(restored), RUNNING);
    let _k = KillOnDrop(restored);
    assert!(
        wait_until(LONG, || numbers(&out).len() >= n + 2),
        "sleeping counter did not continue"
    );
    assert_unbroken(&numbers(&out), 8);
}

/// Returns (read fd, write fd) announced by a pipe fixture.
fn ready_fds(out: &Path) -> (u32, u32) {
    assert!(wait_until(LONG, || lines(out)
        .first()
        .is_some_and(|l| l.starts_with("ready"))));
    let l = &lines(out)[0];
    let f: Vec<u32> = l
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    (f[0], f[1])
}

fn write_into_pipe(pid: i32, wfd: u32, text: &str) {
    std::fs::write(format!("/proc/{pid}/fd/{wfd}"), text).expect("write into the restored pipe");
}

#[test]
fn root_process_blocked_in_pipe_read_continues() {
    if !have_root("root_process_blocked_in_pipe_read_continues") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let img = dir.path().join("pipe.img");
    let mut target = Guarded::spawn(Command::new(FX_PIPE_READER).arg(&out));
    let (_r, w) = ready_fds(&out);
    write_into_pipe(target.pid, w, "before");
    assert!(wait_until(LONG, || lines(&out)
        .iter()
        .any(|l| l == "got before")));
    std::thread::sleep(Duration::from_millis(100));
    let proc_before = dump_and_reap(&mut target, &img);
    let restored = restore_detached(&img, dir.path());
    assert_same_proc_state(&proc_before, &proc_snapshot(restored), RUNNING);
    let _k = KillOnDrop(restored);
    write_into_pipe(restored, w, "after");
    assert!(
        wait_until(LONG, || lines(&out).iter().any(|l| l == "got after")),
        "restored reader did not read: {:?}",
        lines(&out)
    );
}

#[test]
fn root_process_blocked_in_poll_continues() {
    if !have_root("root_process_blocked_in_poll_continues") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let img = dir.path().join("poll.img");
    let mut target = Guarded::spawn(Command::new(FX_POLLER).arg(&out));
    let (_r, w) = ready_fds(&out);
    assert!(wait_until(LONG, || lines(&out).len() >= 4));
    let proc_before = dump_and_reap(&mut target, &img);
    let n = lines(&out).len();
    let last_tick: u64 = lines(&out)[n - 1]
        .strip_prefix("tick ")
        .unwrap()
        .parse()
        .unwrap();
    let restored = restore_detached(&img, dir.path());
    assert_same_proc_state(&proc_before, &proc_snapshot(restored), RUNNING);
    let _k = KillOnDrop(restored);
    assert!(
        wait_until(LONG, || lines(&out).len() >= n + 2),
        "poller did not continue"
    );
    assert_eq!(lines(&out)[n], format!("tick {}", last_tick + 1));
    write_into_pipe(restored, w, "ping");
    assert!(wait_until(LONG, || lines(&out)
        .iter()
        .any(|l| l == "data ping")));
}

#[test]
fn root_exit_status_propagates_through_foreground_restore() {
    if !have_root("root_exit_status_propagates_through_foreground_restore") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let out = dir.path().join("out");
    let img = dir.path().join("exit.img");
    let mut target = Guarded::spawn(Command::new(FX_EXIT_LATER).arg(&go).arg("42").arg(&out));
    assert!(wait_until(LONG, || out.exists()));
    dump_and_reap(&mut target, &img);
    let mut restore = Guarded::spawn(&mut ckpt(&["restore", s(&img), "--quiet"]));
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&go, "").unwrap();
    let st = restore
        .wait_timeout(LONG)
        .expect("foreground restore did not return");
    assert_eq!(
        st.code(),
        Some(42),
        "restore must exit with the restored process's status"
    );
}

#[test]
fn root_listening_tcp_socket_is_refused_and_process_keeps_serving() {
    if !have_root("root_listening_tcp_socket_is_refused_and_process_keeps_serving") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let img = dir.path().join("tcp.img");
    let script = format!(
        "import socket\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n\
         open('{}','w').write(str(s.getsockname()[1]))\n\
         while True:\n    c,_=s.accept(); c.sendall(b'hello\\n'); c.close()\n",
        port_file.display()
    );
    let target = Guarded::spawn(Command::new("python3").arg("-c").arg(&script));
    assert!(wait_until(LONG, || std::fs::read_to_string(&port_file)
        .is_ok_and(|p| !p.is_empty())));
    let port: u16 = std::fs::read_to_string(&port_file)
        .unwrap()
        .parse()
        .unwrap();
    let o = run_ckpt(&["dump", &target.pid.to_string(), "-o", s(&img), "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("socket") && err.contains("fd"),
        "message must name the fd and its kind: {err}"
    );
    assert!(!img.exists(), "a failed dump must leave no image");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
    assert!(alive(target.pid));
    assert!(
        !matches!(state(target.pid), Some('T') | Some('t')),
        "target left stopped"
    );
    assert_eq!(
        status_field(target.pid, "TracerPid").as_deref(),
        Some("0"),
        "target left traced"
    );
    use std::io::Read;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("still serving");
    let mut buf = String::new();
    c.read_to_string(&mut buf).unwrap();
    assert_eq!(buf, "hello\n");
}

#[test]
fn root_corrupt_image_restores_nothing() {
    if !have_root("root_corrupt_image_restores_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("count");
    let img = dir.path().join("c.img");
    let mut target = Guarded::spawn(Command::new(FX_COUNTER).arg("5").arg(&out));
    let pid = target.pid;
    assert!(wait_until(LONG, || numbers(&out).len() >= 3));
    dump_and_reap(&mut target, &img);
    let mut bytes = std::fs::read(&img).unwrap();
    for at in [bytes.len() / 2, bytes.len() - 10, 100] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        let bad_img = dir.path().join("bad.img");
        std::fs::write(&bad_img, &bad).unwrap();
        let o = run_ckpt(&["restore", s(&bad_img), "--detach", "--quiet"]);
        assert_ne!(
            o.status.code(),
            Some(0),
            "corrupt image (byte {at}) restored"
        );
        assert!(!stderr(&o).is_empty());
        assert!(!alive(pid), "a process appeared with the image's PID");
    }
    bytes.truncate(bytes.len() - 1);
    let short = dir.path().join("short.img");
    std::fs::write(&short, &bytes).unwrap();
    let o = run_ckpt(&["restore", s(&short), "--detach", "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!alive(pid));
}

fn script_counter_test(
    name: &str,
    interpreter: &str,
    flag: &str,
    script: &str,
    out: PathBuf,
    dir: &Path,
) {
    let img = dir.join(format!("{name}.img"));
    let mut target = Guarded::spawn(Command::new(interpreter).arg(flag).arg(script));
    assert!(
        wait_until(LONG, || numbers(&out).len() >= 5),
        "{name} did not start: {:?}",
        lines(&out)
    );
    let proc_before = dump_and_reap(&mut target, &img);
    let at_dump = numbers(&out);
    let restored = restore_detached(&img, dir);
    assert_same_proc_state(&proc_before, &proc_snapshot(restored), RUNNING);
    let _k = KillOnDrop(restored);
    assert!(
        wait_until(LONG, || numbers(&out).len() >= at_dump.len() + 5),
        "{name} did not continue: {:?}",
        lines(&out)
    );
    let all = numbers(&out);
    assert_unbroken(&all, all[0]);
}

#[test]
fn root_python3_with_dict_state_continues() {
    if !have_root("root_python3_with_dict_state_continues") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("py");
    // The printed number is derived from the dict, so lost memory shows.
    let script = format!(
        "import time\nd={{}}\nf=open('{}','w')\ni=0\nwhile True:\n    i+=1\n    d[i]=i*i\n    \
         assert sum(d.values())==i*(i+1)*(2*i+1)//6\n    f.write(str(len(d))+'\\n'); f.flush()\n    time.sleep(0.05)\n",
        out.display()
    );
    script_counter_test("python3", "python3", "-c", &script, out, dir.path());
}

#[test]
fn root_perl_writing_to_open_file_continues_at_exact_offset() {
    if !have_root("root_perl_writing_to_open_file_continues_at_exact_offset") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pl");
    let script = format!(
        "open(my $f, '>', '{}') or die; $f->autoflush(1); my $i = 100; \
         while (1) {{ $i++; print $f \"$i\\n\"; select(undef, undef, undef, 0.05); }}",
        out.display()
    );
    script_counter_test("perl", "perl", "-e", &script, out, dir.path());
}

#[test]
fn root_bash_loop_with_variable_continues() {
    if !have_root("root_bash_loop_with_variable_continues") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sh");
    // `read -t` on an anonymous pipe bash holds read-write (`3<> <(:)`:
    // the substitution's child exits at once) sleeps without a child process.
    let script = format!(
        "exec 3<> <(:); exec 4>'{}'; i=500; while :; do i=$((i+1)); echo $i >&4; read -t 0.05 -u 3 x; done",
        out.display()
    );
    script_counter_test("bash", "bash", "-c", &script, out, dir.path());
}

#[test]
fn root_static_binary_continues() {
    if !have_root("root_static_binary_continues") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("c.c");
    let bin = dir.path().join("static-counter");
    let out = dir.path().join("c.out");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <time.h>\n#include <stdlib.h>\nint main(int c,char**v){FILE*f=fopen(v[1],\"w\");\
         long n=atol(v[2]);struct timespec t={0,50000000};for(;;){fprintf(f,\"%ld\\n\",++n);fflush(f);nanosleep(&t,0);}}\n",
    )
    .unwrap();
    let cc = Command::new("gcc")
        .args(["-O1", "-static", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap();
    assert!(
        cc.success(),
        "gcc -static failed (libc6-dev provides libc.a)"
    );
    let img = dir.path().join("static.img");
    let mut target = Guarded::spawn(Command::new(&bin).arg(&out).arg("300"));
    assert!(wait_until(LONG, || numbers(&out).len() >= 5));
    let proc_before = dump_and_reap(&mut target, &img);
    let n = numbers(&out).len();
    let restored = restore_detached(&img, dir.path());
    assert_same_proc_state(&proc_before, &proc_snapshot(restored), RUNNING);
    let _k = KillOnDrop(restored);
    assert!(wait_until(LONG, || numbers(&out).len() >= n + 5));
    assert_unbroken(&numbers(&out), 301);
}

#[test]
fn root_pipe_shared_with_another_process_is_refused_and_left_running() {
    if !have_root("root_pipe_shared_with_another_process_is_refused_and_left_running") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("shared.img");
    let ready = dir.path().join("ready");
    // Parent and child both hold both ends of one pipe: restoring the parent
    // with a private copy would silently cut it off from the child.
    let script = format!(
        "import os,time\nr,w=os.pipe()\nif os.fork()==0:\n    time.sleep(60)\n    os._exit(0)\n\
         open('{}','w').write('x')\nwhile True: time.sleep(0.05)\n",
        ready.display()
    );
    let target = Guarded::spawn(Command::new("python3").arg("-c").arg(&script));
    assert!(wait_until(LONG, || ready.exists()));
    let o = run_ckpt(&["dump", &target.pid.to_string(), "-o", s(&img), "--quiet"]);
    // Kill the forked child too when the test ends.
    let _child =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", target.pid, target.pid))
            .ok()
            .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()))
            .map(KillOnDrop);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // The child makes this a process tree, refused first; without the
    // child check the shared pipe is refused.
    assert!(
        stderr(&o).contains("pipe shared with another process")
            || stderr(&o).contains("process trees are not supported yet"),
        "{}",
        stderr(&o)
    );
    assert!(!img.exists());
    assert!(alive(target.pid));
    assert_eq!(status_field(target.pid, "TracerPid").as_deref(), Some("0"));
}

#[test]
fn root_pid_ns_restores_while_the_pid_is_taken() {
    if !have_root("root_pid_ns_restores_while_the_pid_is_taken") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("count");
    let img = dir.path().join("ns.img");
    let target = Guarded::spawn(Command::new(FX_COUNTER).arg("40").arg(&out));
    assert!(wait_until(LONG, || numbers(&out).len() >= 3));
    let o = run_ckpt(&[
        "dump",
        &target.pid.to_string(),
        "-o",
        s(&img),
        "--leave-running",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        alive(target.pid),
        "--leave-running must leave the target running"
    );
    // The original keeps its PID; without --pid-ns the restore must refuse.
    let o = run_ckpt(&["restore", s(&img), "--detach", "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--pid-ns"), "{}", stderr(&o));
    let o = run_ckpt(&["restore", s(&img), "--pid-ns", "--detach", "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let outer: i32 = stdout(&o).trim().parse().expect("PID on stdout");
    let _k = KillOnDrop(outer);
    // Inside its namespace it keeps the checkpointed PID.
    let nspid = status_field(outer, "NSpid").expect("NSpid");
    assert_eq!(
        nspid.split_whitespace().last(),
        Some(target.pid.to_string().as_str()),
        "NSpid {nspid}"
    );
    assert_ne!(outer, target.pid);
    // It runs: its own fd on the output (fd 3) keeps advancing.
    let pos = || fd_pos(outer, 3).unwrap_or(0);
    let p0 = pos();
    assert!(
        wait_until(LONG, || pos() > p0 + 8),
        "the copy did not continue"
    );
}
