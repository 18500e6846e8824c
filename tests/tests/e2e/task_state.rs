//! Restore exactly (issue 9, DESIGN 8): each fixture records its own view
//! of one kind of task state (fcntl, getitimer, prctl, sigaction, mprotect),
//! is dumped and restored, and then compares what it sees again; the test
//! passes only when the program itself finds no difference.

use ckpt_tests::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FX_TASK_STATE: &str = env!("CARGO_BIN_EXE_fx-task-state");
const LONG: Duration = Duration::from_secs(20);

/// Starts `fx-task-state MODE`, with stdio on pipes to this test when
/// `stdio_pipes`, else on /dev/null.
fn start(mode: &str, dir: &Path, stdio_pipes: bool) -> Guarded {
    let out = dir.join("out");
    let go = dir.join("go");
    let mut cmd = Command::new(FX_TASK_STATE);
    cmd.arg(mode).arg(&out).arg(&go);
    let target = if stdio_pipes {
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fixture");
        let pid = child.id() as i32;
        Guarded {
            child: Some(child),
            pid,
        }
    } else {
        Guarded::spawn(&mut cmd)
    };
    assert!(
        wait_until(LONG, || lines(&out).iter().any(|l| l == "ready")),
        "fixture {mode} did not start"
    );
    target
}

/// Dumps the fixture, restores it in the foreground (ckpt stays its
/// parent), triggers its check and returns its verdict line and the exit
/// status of the restore (the fixture's).
/// The restored task no longer maps ckpt's own executable: it is past
/// the window between its creation (a copy of ckpt, briefly untraced) and
/// its rebuild.
fn rebuilt(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|m| !m.lines().any(|l| l.ends_with("/ckpt")))
        .unwrap_or(false)
}

fn dump_restore_check(mut target: Guarded, dir: &Path) -> (String, Option<i32>) {
    let img = dir.join("state.img");
    let pid = target.pid;
    let before = proc_snapshot(pid);
    let o = run_ckpt(&[
        "dump",
        &pid.to_string(),
        "-o",
        img.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "dump failed: {}", stderr(&o));
    target
        .wait_timeout(LONG)
        .expect("dumped fixture was not killed");
    drop(target);
    let mut restore =
        Guarded::spawn(ckpt(&["restore", img.to_str().unwrap(), "--quiet"]).stdin(Stdio::null()));
    let _restored = KillOnDrop(pid);
    assert!(
        wait_until(LONG, || alive(pid)
            && status_field(pid, "TracerPid").as_deref() == Some("0")
            && rebuilt(pid)),
        "restored fixture is not running"
    );
    // Stdio on pipes to this test comes back as the restorer's (DESIGN
    // 3.7): those fds are other objects, with other flags and positions.
    assert_same_proc_state(
        &before,
        &proc_snapshot(pid),
        &["fdinfo/0:*", "fdinfo/1:*", "fdinfo/2:*"],
    );
    std::fs::write(dir.join("go"), "").unwrap();
    let st = restore
        .wait_timeout(LONG)
        .expect("restored fixture did not finish");
    let verdict = lines(&dir.join("out"))
        .into_iter()
        .find(|l| l.starts_with("OK") || l.starts_with("DIFF"))
        .unwrap_or_else(|| "no verdict".into());
    (verdict, st.code())
}

fn check_mode(test: &str, mode: &str, stdio_pipes: bool) {
    if !have_root(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = start(mode, dir.path(), stdio_pipes);
    let (verdict, code) = dump_restore_check(target, dir.path());
    assert!(verdict.starts_with("OK"), "{mode}: {verdict}");
    assert_eq!(code, Some(0), "{mode}: {verdict}");
}

#[test]
fn root_swapped_pipe_ends_keep_ends_flags_capacity_and_bytes() {
    check_mode(
        "root_swapped_pipe_ends_keep_ends_flags_capacity_and_bytes",
        "fds",
        true,
    );
}

#[test]
fn root_interval_timers_are_restored() {
    check_mode("root_interval_timers_are_restored", "itimers", false);
}

#[test]
fn root_prctl_and_proc_attributes_are_restored() {
    check_mode(
        "root_prctl_and_proc_attributes_are_restored",
        "prctl",
        false,
    );
}

#[test]
fn root_sigtrap_handler_and_dispositions_are_restored() {
    check_mode(
        "root_sigtrap_handler_and_dispositions_are_restored",
        "sigtrap",
        false,
    );
}

#[test]
fn root_shared_mapping_of_rdwr_file_can_be_made_writable_after_restore() {
    check_mode(
        "root_shared_mapping_of_rdwr_file_can_be_made_writable_after_restore",
        "mapping",
        false,
    );
}

/// POSIX timers come back with their ids, clock, notify kind, signal,
/// value, interval and remaining time: the program's own timer_gettime
/// agrees and the periodic timer keeps firing with its sigev_value.
#[test]
fn root_posix_timers_are_restored_with_their_ids() {
    check_mode(
        "root_posix_timers_are_restored_with_their_ids",
        "posix",
        false,
    );
}

/// A guard region (MADV_GUARD_INSTALL) is skipped by the dump (its pages
/// cannot be read) and installed again: the program still finds it a guard
/// and its neighbours' bytes intact.
#[test]
fn root_guard_region_is_restored_as_a_guard() {
    check_mode("root_guard_region_is_restored_as_a_guard", "guard", false);
}

#[test]
fn root_membarrier_registration_is_restored() {
    check_mode(
        "root_membarrier_registration_is_restored",
        "membarrier",
        false,
    );
}

/// A parent-death signal would fire the moment a detaching ckpt (the
/// restored task's parent) exits: `--detach` refuses it before anything is
/// created, instead of "succeeding" with a process that is then killed.
#[test]
fn root_detach_refuses_a_task_with_a_parent_death_signal() {
    if !have_root("root_detach_refuses_a_task_with_a_parent_death_signal") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut target = start("prctl", dir.path(), false);
    let pid = target.pid;
    let img = dir.path().join("state.img");
    let img = img.to_str().unwrap();
    let o = run_ckpt(&["dump", &pid.to_string(), "-o", img, "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "dump failed: {}", stderr(&o));
    target
        .wait_timeout(LONG)
        .expect("dumped fixture was not killed");
    drop(target);
    let o = run_ckpt(&["restore", img, "--detach", "--quiet"]);
    let _restored = KillOnDrop(pid);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("parent-death signal") && stderr(&o).contains("foreground"),
        "{}",
        stderr(&o)
    );
    assert!(!alive(pid), "nothing is left running");
}
