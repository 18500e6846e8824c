//! DESIGN 3.7 (stdio and terminal handover) and 3.8 (names no one can
//! plant) end to end: a second user's image restored by root gets neither
//! root's stdio nor its terminal nor its session; the caller's own image
//! keeps them, and comes back onto a terminal in the modes it left; images,
//! pid files and the demo's directory cannot be redirected by planted
//! symlinks; the demo works with stray descriptors open.

use crate::security::{open_dir, test_user};
use ckpt_tests::*;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FX_THIEF: &str = env!("CARGO_BIN_EXE_fx-stdio-thief");
const FX_COUNTER: &str = env!("CARGO_BIN_EXE_fx-counter");
const LONG: Duration = Duration::from_secs(20);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn own_session() -> i32 {
    nix::unistd::getsid(None).unwrap().as_raw()
}

/// A pipe whose read end holds `data` (the write end stays open with the
/// caller, like root's shell or a pipeline feeding it).
fn pipe_with(data: &str) -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    nix::unistd::write(&w, data.as_bytes()).unwrap();
    (r, w)
}

fn stdio_of(fd: &impl AsFd) -> Stdio {
    Stdio::from(fd.as_fd().try_clone_to_owned().unwrap())
}

fn pidfile_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn kill_and_wait_gone(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(wait_until(LONG, || !alive(pid)), "pid {pid} did not go");
}

/// Bytes waiting to be read from a terminal or pipe (FIONREAD).
fn pending(fd: &impl AsRawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer.
    #[allow(unsafe_code)]
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(r, 0, "FIONREAD");
    n
}

#[test]
fn root_restoring_another_users_image_gives_it_no_stdio_terminal_or_session() {
    if !have_root("root_restoring_another_users_image_gives_it_no_stdio_terminal_or_session") {
        return;
    }
    let (uid, gid) = test_user();
    let dir = open_dir();
    let loot = dir.path().join("loot");
    let img = dir.path().join("thief.img");
    // The user's `sleep 600 | thief`: stdin a pipe another process feeds,
    // stdout and stderr a pipe to another process too.
    let (feed_r, _feed_w) = nix::unistd::pipe().unwrap();
    let (out_r, out_w) = nix::unistd::pipe().unwrap();
    let mut thief = Guarded::spawn_with_stdio(
        Command::new(FX_THIEF)
            .arg(&loot)
            .uid(uid)
            .gid(gid)
            .current_dir(dir.path())
            .stdin(stdio_of(&feed_r))
            .stdout(stdio_of(&out_w))
            .stderr(stdio_of(&out_w)),
    );
    drop((feed_r, out_w));
    assert!(wait_until(LONG, || lines(&loot).contains(&"ready".to_string())));
    let o = ckpt(&["dump", &thief.pid.to_string(), "-o", s(&img), "--quiet"])
        .uid(uid)
        .gid(gid)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "dump as the user: {}", stderr(&o));
    thief
        .wait_timeout(LONG)
        .expect("dumped thief was not killed");
    drop(out_r);

    // Root restores it with a secret on its stdin and a terminal (a pty
    // the test holds) as its stdout, as from an interactive shell.
    let pty = nix::pty::openpty(None, None).unwrap();
    let pidfile = dir.path().join("restored.pid");
    let restore = |extra: &[&str], stdin: Stdio| {
        let _ = std::fs::remove_file(&pidfile);
        let mut args = vec!["restore", s(&img), "--detach", "--pidfile", s(&pidfile)];
        args.extend_from_slice(extra);
        // ckpt's stderr is a file, not a pipe to the test: were the thief
        // handed ckpt's stdio, the test would fail, not wait for its EOF.
        let err = dir.path().join("restore.err");
        let st = ckpt(&args)
            .stdin(stdin)
            .stdout(stdio_of(&pty.slave))
            .stderr(File::create(&err).unwrap())
            .status()
            .unwrap();
        let err = std::fs::read_to_string(&err).unwrap();
        assert_eq!(st.code(), Some(0), "root restore: {err}");
        let pid = pidfile_pid(&pidfile).expect("pidfile");
        (err, pid)
    };
    let (secret_r, _secret_w) = pipe_with("SECRET-4711\n");
    let loot_before = lines(&loot).len();
    let (err, pid) = restore(&[], stdio_of(&secret_r));
    let guard = KillOnDrop(pid);
    assert!(err.contains("session of its own"), "no notice: {err}");
    for fd in 0..3 {
        assert_eq!(
            fd_link(pid, fd).as_deref(),
            Some("/dev/null"),
            "fd {fd} of the restored thief"
        );
    }
    let sid = session_of(pid).expect("session");
    assert_eq!(sid, pid, "the thief leads a session of its own");
    assert_ne!(sid, own_session());
    assert_eq!(
        status_field(pid, "Uid").unwrap(),
        format!("{uid}\t{uid}\t{uid}\t{uid}")
    );
    // Let it try for a while: it reads nothing of root's and pushes nothing
    // into root's terminal.
    // (It logs a TIOCSTI result only when it changes: ENOTTY on its pipes
    // before, ENOTTY on /dev/null now.)
    assert!(
        wait_until(LONG, || lines(&loot)[loot_before..]
            .contains(&"eof".to_string())),
        "{:?}",
        lines(&loot)
    );
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<String> = lines(&loot)[loot_before..].to_vec();
    assert!(!after.iter().any(|l| l.contains("SECRET")), "{after:?}");
    assert!(
        after.contains(&"eof".to_string()),
        "stdin is /dev/null: {after:?}"
    );
    assert!(!after.iter().any(|l| l.ends_with(" ok")), "{after:?}");
    assert_eq!(
        pending(&pty.slave),
        0,
        "keystrokes were pushed into the pty"
    );
    let mut secret_left = [0u8; 64];
    let mut f = File::from(secret_r.try_clone().unwrap());
    assert_eq!(
        f.read(&mut secret_left).unwrap(),
        12,
        "the secret is still unread in root's pipe"
    );
    kill_and_wait_gone(pid);
    drop(guard);

    // The same inside a new PID namespace (the task is then the child of
    // ckpt's namespace init): /dev/null and a session of its own too.
    let (secret_r, _secret_w) = pipe_with("SECRET-4711\n");
    let (_, pid) = restore(&["--pid-ns"], stdio_of(&secret_r));
    let guard = KillOnDrop(pid);
    for fd in 0..3 {
        assert_eq!(
            fd_link(pid, fd).as_deref(),
            Some("/dev/null"),
            "--pid-ns fd {fd}"
        );
    }
    assert_eq!(session_of(pid), Some(pid), "--pid-ns: a session of its own");
    kill_and_wait_gone(pid);
    drop(guard);

    // With --stdin F (and --stdout G) it reads F: files root named, opened
    // with root's authority (F is root's, mode 0600).
    let given_in = dir.path().join("given-in");
    std::fs::write(&given_in, "FROMFILE-99\n").unwrap();
    std::fs::set_permissions(&given_in, std::fs::Permissions::from_mode(0o600)).unwrap();
    let given_out = dir.path().join("given-out");
    let (secret_r, _secret_w) = pipe_with("SECRET-4711\n");
    let loot_before = lines(&loot).len();
    let (_, pid) = restore(
        &["--stdin", s(&given_in), "--stdout", s(&given_out)],
        stdio_of(&secret_r),
    );
    let _guard = KillOnDrop(pid);
    assert_eq!(fd_link(pid, 0).as_deref(), Some(s(&given_in)));
    assert_eq!(fd_link(pid, 1).as_deref(), Some(s(&given_out)));
    assert_eq!(fd_link(pid, 2).as_deref(), Some("/dev/null"));
    let mode = std::fs::metadata(&given_out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "created --stdout file");
    assert!(wait_until(LONG, || lines(&loot)[loot_before..]
        .contains(&"read FROMFILE-99".to_string())));
    assert!(!lines(&loot).iter().any(|l| l.contains("SECRET")));
    assert_ne!(session_of(pid), Some(own_session()));
    kill_and_wait_gone(pid);
}

#[test]
fn root_a_user_restoring_their_own_image_keeps_their_stdio_and_session() {
    if !have_root("root_a_user_restoring_their_own_image_keeps_their_stdio_and_session") {
        return;
    }
    let (uid, gid) = test_user();
    let dir = open_dir();
    let loot = dir.path().join("loot");
    let img = dir.path().join("thief.img");
    let (feed_r, _feed_w) = nix::unistd::pipe().unwrap();
    let mut thief = Guarded::spawn_with_stdio(
        Command::new(FX_THIEF)
            .arg(&loot)
            .uid(uid)
            .gid(gid)
            .current_dir(dir.path())
            .stdin(stdio_of(&feed_r))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    drop(feed_r);
    assert!(wait_until(LONG, || lines(&loot).contains(&"ready".to_string())));
    let as_user = |args: &[&str]| {
        let mut c = ckpt(args);
        c.uid(uid).gid(gid).current_dir(dir.path());
        c
    };
    let o = as_user(&["dump", &thief.pid.to_string(), "-o", s(&img), "--quiet"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "dump as the user: {}", stderr(&o));
    thief
        .wait_timeout(LONG)
        .expect("dumped thief was not killed");

    // The user restores it (unprivileged, so in new namespaces) feeding it
    // their own input: it is theirs to read.
    let (mine_r, _mine_w) = pipe_with("MINE-5\n");
    let out = dir.path().join("restore.out");
    let err = dir.path().join("restore.err");
    let o = as_user(&["restore", s(&img), "--pid-ns", "--detach", "--quiet"])
        .stdin(stdio_of(&mine_r))
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .status()
        .unwrap();
    let err_text = std::fs::read_to_string(&err).unwrap_or_default();
    assert_eq!(o.code(), Some(0), "restore as the user: {err_text}");
    let pid: i32 = std::fs::read_to_string(&out)
        .unwrap()
        .trim()
        .parse()
        .expect("restored PID on stdout");
    let _guard = KillOnDrop(pid);
    assert!(
        fd_link(pid, 0).unwrap_or_default().starts_with("pipe:"),
        "fd 0 is the user's own pipe: {:?}",
        fd_link(pid, 0)
    );
    assert_eq!(
        session_of(pid),
        Some(own_session()),
        "stays in the caller's session"
    );
    assert!(
        wait_until(LONG, || lines(&loot).contains(&"read MINE-5".to_string())),
        "{:?}",
        lines(&loot)
    );
}

/// termios of the terminal on `fd`: (lflag, rows, cols).
fn tty_modes(fd: &impl AsFd) -> (nix::sys::termios::LocalFlags, u16, u16) {
    let t = nix::sys::termios::tcgetattr(fd).unwrap();
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer.
    #[allow(unsafe_code)]
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    assert_eq!(r, 0);
    (t.local_flags, ws.ws_row, ws.ws_col)
}

fn set_winsize(fd: &impl AsFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    #[allow(unsafe_code)]
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0);
}

#[test]
fn root_raw_mode_program_comes_back_raw_on_the_callers_terminal() {
    if !have_root("root_raw_mode_program_comes_back_raw_on_the_callers_terminal") {
        return;
    }
    use nix::sys::termios::{tcsetattr, LocalFlags, SetArg};
    let dir = open_dir();
    let ready = dir.path().join("ready");
    let img = dir.path().join("raw.img");
    let pty = nix::pty::openpty(None, None).unwrap();
    let cooked = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    assert!(cooked
        .local_flags
        .contains(LocalFlags::ICANON | LocalFlags::ECHO));
    set_winsize(&pty.slave, 33, 111);
    // A program that puts its terminal in raw mode, like less or an editor.
    let mut prog = Guarded::spawn_with_stdio(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import sys, time, tty\n\
                 tty.setraw(0)\n\
                 open(sys.argv[1], 'w').close()\n\
                 while True: time.sleep(1)\n",
            )
            .arg(&ready)
            .stdin(stdio_of(&pty.slave))
            .stdout(stdio_of(&pty.slave))
            .stderr(stdio_of(&pty.slave)),
    );
    assert!(wait_until(LONG, || ready.exists()), "python3 did not start");
    assert!(!tty_modes(&pty.slave).0.contains(LocalFlags::ICANON));
    let o = run_ckpt(&["dump", &prog.pid.to_string(), "-o", s(&img), "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "dump: {}", stderr(&o));
    prog.wait_timeout(LONG)
        .expect("dumped process was not killed");

    // The program is gone; the terminal is back in cooked mode at 24x80
    // (as the shell leaves it). The restore puts the program's modes back.
    tcsetattr(&pty.slave, SetArg::TCSANOW, &cooked).unwrap();
    set_winsize(&pty.slave, 24, 80);
    assert!(tty_modes(&pty.slave).0.contains(LocalFlags::ICANON));
    let pidfile = dir.path().join("restored.pid");
    // All three on the terminal: the restored program takes ckpt's stdio.
    let o = ckpt(&[
        "restore",
        s(&img),
        "--detach",
        "--quiet",
        "--pidfile",
        s(&pidfile),
    ])
    .stdin(stdio_of(&pty.slave))
    .stdout(stdio_of(&pty.slave))
    .stderr(stdio_of(&pty.slave))
    .status()
    .unwrap();
    assert_eq!(
        o.code(),
        Some(0),
        "restore failed (its message went to the pty)"
    );
    let pid = pidfile_pid(&pidfile).expect("pidfile");
    let _guard = KillOnDrop(pid);
    let (lflag, rows, cols) = tty_modes(&pty.slave);
    assert!(
        !lflag.intersects(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG),
        "terminal not raw after restore: {lflag:?}"
    );
    assert_eq!((rows, cols), (33, 111), "window size");
    // It came back on the caller's terminal, in the caller's session.
    let slave = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd())).unwrap();
    assert_eq!(fd_link(pid, 0).as_deref(), Some(s(&slave)));
    assert_eq!(session_of(pid), Some(own_session()));
    assert!(alive(pid));
}

#[test]
fn root_image_of_a_root_process_is_private_and_planted_temp_names_are_not_followed() {
    if !have_root("root_image_of_a_root_process_is_private_and_planted_temp_names_are_not_followed")
    {
        return;
    }
    let (uid, gid) = test_user();
    let dir = open_dir();
    let count = dir.path().join("count");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let mut target = Guarded::spawn(Command::new(FX_COUNTER).arg("1").arg(&count));
    assert!(wait_until(LONG, || lines(&count).len() >= 2));
    // The old temporary name was `.NAME.ckpt-tmp.PID`: plant it for the
    // very ckpt process (exec keeps the shell's PID), pointing at a victim.
    let o = Command::new("sh")
        .arg("-c")
        .arg(
            "ln -s \"$1\" \".root.img.ckpt-tmp.$$\" && exec \"$0\" dump \"$2\" -o root.img --quiet",
        )
        .arg(ckpt_bin())
        .arg(&victim)
        .arg(target.pid.to_string())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "dump: {}", stderr(&o));
    target
        .wait_timeout(LONG)
        .expect("dumped process was not killed");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let img = dir.path().join("root.img");
    let md = std::fs::symlink_metadata(&img).unwrap();
    assert!(md.file_type().is_file());
    assert_eq!(md.permissions().mode() & 0o777, 0o600, "image mode");
    // The test user cannot read the root process's memory from it.
    let o = Command::new("head")
        .args(["-c", "16"])
        .arg(&img)
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    assert!(!o.status.success(), "the test user read the image");
    assert!(o.stdout.is_empty());
    // No temporary file is left behind.
    let stray: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ckpt-tmp") && !n.starts_with(".root.img.ckpt-tmp."))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // restore --pidfile P: symlinks planted at the old fixed temporary name
    // (P.ckpt-tmp) and at P itself do not make root write the victim; the
    // rename replaces the symlink at P.
    let pidfile = dir.path().join("p.pid");
    std::os::unix::fs::symlink(&victim, dir.path().join("p.ckpt-tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, &pidfile).unwrap();
    let o = run_ckpt(&[
        "restore",
        s(&img),
        "--detach",
        "--quiet",
        "--pidfile",
        s(&pidfile),
    ]);
    assert_eq!(o.status.code(), Some(0), "restore: {}", stderr(&o));
    let pid = pidfile_pid(&pidfile).expect("pidfile");
    let _guard = KillOnDrop(pid);
    assert_eq!(stdout(&o).trim(), pid.to_string());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let md = std::fs::symlink_metadata(&pidfile).unwrap();
    assert!(md.file_type().is_file(), "P is now a file of its own");
    assert_eq!(md.permissions().mode() & 0o077, 0, "pidfile mode");
}

/// Runs `ckpt demo` through `sh -c SCRIPT` (where `$0` is ckpt) with
/// TMPDIR set, and optionally extra fds inherited.
fn demo_via_sh(script: &str, tmpdir: &Path, stray: &[(i32, &OwnedFd)]) -> std::process::Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(script)
        .arg(ckpt_bin())
        .env("TMPDIR", tmpdir)
        .stdin(Stdio::null());
    let raw: Vec<(i32, i32)> = stray.iter().map(|(n, fd)| (*n, fd.as_raw_fd())).collect();
    // SAFETY: only dup2(2) in the forked child before exec (async-signal-safe).
    #[allow(unsafe_code)]
    unsafe {
        c.pre_exec(move || {
            for &(to, from) in &raw {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    c.output().unwrap()
}

fn assert_demo_continued(o: &std::process::Output) {
    assert_eq!(o.status.code(), Some(0), "demo: {}{}", stdout(o), stderr(o));
    assert!(
        stdout(o).contains("picked up at") && stdout(o).contains("right after the checkpoint"),
        "{}",
        stdout(o)
    );
}

#[test]
fn root_demo_succeeds_with_stray_descriptors_9_and_251_open() {
    if !have_root("root_demo_succeeds_with_stray_descriptors_9_and_251_open") {
        return;
    }
    let dir = open_dir();
    let (r, w) = nix::unistd::pipe().unwrap();
    let (r2, _w2) = nix::unistd::pipe().unwrap();
    let o = demo_via_sh(
        "ls -l /proc/$$/fd/9 /proc/$$/fd/251 >&2 && exec \"$0\" demo",
        dir.path(),
        &[(9, &w), (251, &r2)],
    );
    assert!(
        stderr(&o).contains("/proc/"),
        "fds not open: {}",
        stderr(&o)
    );
    assert_demo_continued(&o);
    drop(r);
}

#[test]
fn root_demo_ignores_a_directory_planted_at_its_old_name() {
    if !have_root("root_demo_ignores_a_directory_planted_at_its_old_name") {
        return;
    }
    let dir = open_dir();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    // The old name was $TMPDIR/ckpt-demo-PID: plant it, with symlinks where
    // the demo would write its counter and read its image.
    let o = demo_via_sh(
        "mkdir \"$TMPDIR/ckpt-demo-$$\" && ln -s \"$TMPDIR/victim\" \"$TMPDIR/ckpt-demo-$$/count\" \
         && ln -s \"$TMPDIR/victim\" \"$TMPDIR/ckpt-demo-$$/demo.img\" && exec \"$0\" demo",
        dir.path(),
        &[],
    );
    assert_demo_continued(&o);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let planted: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ckpt-demo-"))
        .collect();
    assert_eq!(planted.len(), 1, "only the planted directory remains");
    let used = planted[0].path();
    assert!(
        !stdout(&o).contains(s(&used)),
        "the demo used the planted directory: {}",
        stdout(&o)
    );
    let mut f = File::open(&victim).unwrap();
    let mut text = String::new();
    f.read_to_string(&mut text).unwrap();
    assert_eq!(text, "precious");
    let _ = std::io::stdout().flush();
}
