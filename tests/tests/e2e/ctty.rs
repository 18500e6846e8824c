//! The controlling terminal (issue 9, DESIGN 3.7): a program restored onto
//! the caller's terminal reopens /dev/tty and gets that terminal; a program
//! that does not get the caller's stdio runs in a session of its own with
//! /dev/null, and there /dev/tty is ENXIO (no controlling terminal), by
//! design. Both run under real ptys (python3 pty), each with its own
//! session whose controlling terminal the pty is.

use ckpt_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

/// `python3 -c ON_PTY CMD...`: runs CMD in a new session on a new pty (its
/// controlling terminal, fds 0-2 on the slave), drains the master, and
/// exits with CMD's status.
const ON_PTY: &str = r#"import os,sys,pty,fcntl,termios
m,s=pty.openpty()
pid=os.fork()
if pid==0:
 os.setsid(); fcntl.ioctl(s, termios.TIOCSCTTY, 0)
 [os.dup2(s,i) for i in range(3)]; os.close(m); os.close(s)
 os.execvp(sys.argv[1], sys.argv[1:])
os.close(s)
while True:
 try:
  if not os.read(m, 4096): break
 except OSError: break
_,st=os.waitpid(pid,0); sys.exit(os.waitstatus_to_exitcode(st))
"#;

/// The program: writes `ready` to OUT, waits for GO, then reopens /dev/tty
/// and writes `tty ok same as stdin` (TIOCGDEV: the terminal behind it is
/// the one fd 0 is on) or `tty ERRNO` to OUT.
const TTY_USER: &str = r#"import os,sys,time,errno,fcntl,struct
out,go=sys.argv[1],sys.argv[2]
def view():
 try:
  fd=os.open('/dev/tty', os.O_RDWR); dev=struct.unpack('I', fcntl.ioctl(fd, 0x80045432, b'0000'))[0]; os.close(fd); same=dev==os.fstat(0).st_rdev
  return 'tty ok' + (' same as stdin' if same else ' OTHER THAN STDIN')
 except OSError as e: return 'tty ' + errno.errorcode[e.errno]
open(out,'w').write('before ' + view() + '\nready\n')
while not os.path.exists(go): time.sleep(0.02)
open(out,'a').write('after ' + view() + '\n')
"#;

fn on_pty(cmd: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg("-c").arg(ON_PTY).args(cmd);
    c
}

/// Dumps the program started on one pty, restores it under a second pty
/// with `restore_args`, and returns its `after` line.
fn after_restore(test: &str, dir: &Path, restore_args: &[&str]) -> String {
    let out = dir.join("out");
    let go = dir.join("go");
    let img = dir.join("tty.img");
    let (o, g) = (out.to_str().unwrap(), go.to_str().unwrap());
    let mut target = Guarded::spawn(&mut on_pty(&["python3", "-c", TTY_USER, o, g]));
    assert!(
        wait_until(LONG, || lines(&out).iter().any(|l| l == "ready")),
        "{test}: program did not start"
    );
    assert!(
        lines(&out).contains(&"before tty ok same as stdin".to_string()),
        "{test}: {:?}",
        lines(&out)
    );
    let pid = std::fs::read_to_string(format!("/proc/{}/task/{0}/children", target.pid))
        .unwrap()
        .split_whitespace()
        .next()
        .expect("the pty wrapper's child")
        .parse::<i32>()
        .unwrap();
    let d = run_ckpt(&[
        "dump",
        &pid.to_string(),
        "-o",
        img.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(d.status.code(), Some(0), "{test}: dump: {}", stderr(&d));
    target
        .wait_timeout(LONG)
        .expect("wrapper ends with its program");
    let bin = ckpt_bin();
    let mut args = vec![
        bin.to_str().unwrap(),
        "restore",
        img.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(restore_args);
    let mut restore = Guarded::spawn(&mut on_pty(&args));
    let _restored = KillOnDrop(pid);
    assert!(
        wait_until(LONG, || alive(pid)
            && status_field(pid, "TracerPid").as_deref() == Some("0")),
        "{test}: restored program is not running"
    );
    std::fs::write(&go, "").unwrap();
    restore.wait_timeout(LONG).expect("restore did not finish");
    lines(&out)
        .into_iter()
        .find(|l| l.starts_with("after"))
        .unwrap_or_else(|| "no after line".into())
}

#[test]
fn root_restored_onto_callers_terminal_reopens_dev_tty() {
    let test = "root_restored_onto_callers_terminal_reopens_dev_tty";
    if !have_root(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        after_restore(test, dir.path(), &[]),
        "after tty ok same as stdin"
    );
}

/// DESIGN 3.7: given other stdio, the program gets a session of its own and
/// no controlling terminal, so /dev/tty is ENXIO: the documented outcome,
/// not a loss (it must not reach the caller's terminal).
#[test]
fn root_restored_with_other_stdio_has_no_controlling_terminal() {
    let test = "root_restored_with_other_stdio_has_no_controlling_terminal";
    if !have_root(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let l = log.to_str().unwrap();
    assert_eq!(
        after_restore(
            test,
            dir.path(),
            &["--stdin", "/dev/null", "--stdout", l, "--stderr", l]
        ),
        "after tty ENXIO"
    );
}
