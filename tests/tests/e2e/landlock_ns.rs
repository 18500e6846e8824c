//! Issue 7 item 7: the Landlock probe must not fail open in a mount
//! namespace without securityfs. `ckpt dump` runs inside `unshare -m`
//! after /sys/kernel/security is unmounted there: a sandboxed target is
//! still refused (the kernel's `lsm_list_modules` says Landlock is active)
//! and keeps running, and an unsandboxed one still dumps.

use ckpt_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const FX_LANDLOCK: &str = env!("CARGO_BIN_EXE_fx-landlock");
const FX_COUNTER: &str = env!("CARGO_BIN_EXE_fx-counter");
const LONG: Duration = Duration::from_secs(20);

/// Runs `ckpt args...` in a new mount namespace whose securityfs is
/// unmounted, and checks that it really was gone for ckpt.
fn ckpt_without_securityfs(args: &[&str]) -> Output {
    let script = r#"umount /sys/kernel/security || exit 97
test -e /sys/kernel/security/lsm && exit 98
exec "$@""#;
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(ckpt_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    assert!(
        !matches!(o.status.code(), Some(97) | Some(98)),
        "could not hide securityfs: {}",
        stderr(&o)
    );
    o
}

fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn root_landlock_probe_without_securityfs_still_refuses_a_sandboxed_process() {
    if !have_root("root_landlock_probe_without_securityfs_still_refuses_a_sandboxed_process") {
        return;
    }
    let dir = open_dir();
    let out = dir.path().join("ticks");
    let img = dir.path().join("landlock.img");
    let target = Guarded::spawn(
        Command::new(FX_LANDLOCK)
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(wait_until(LONG, || lines(&out).len() >= 3));
    let o = ckpt_without_securityfs(&["dump", &target.pid.to_string(), "-o", s(&img)]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "dump of a sandboxed process without securityfs must be refused: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("Landlock"), "{}", stderr(&o));
    assert!(!img.exists(), "a refused dump left an image");
    assert!(alive(target.pid));
    assert_eq!(status_field(target.pid, "TracerPid").as_deref(), Some("0"));
    let n = lines(&out).len();
    assert!(
        wait_until(LONG, || lines(&out).len() >= n + 3),
        "fixture stopped ticking"
    );
}

#[test]
fn root_unsandboxed_process_dumps_without_securityfs() {
    if !have_root("root_unsandboxed_process_dumps_without_securityfs") {
        return;
    }
    let dir = open_dir();
    let out = dir.path().join("count");
    let img = dir.path().join("plain.img");
    let target = Guarded::spawn(
        Command::new(FX_COUNTER)
            .args(["1", s(&out)])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(wait_until(LONG, || lines(&out).len() >= 2));
    let o = ckpt_without_securityfs(&[
        "dump",
        &target.pid.to_string(),
        "-o",
        s(&img),
        "--leave-running",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "dump refused: {}", stderr(&o));
    assert!(img.exists());
    assert!(alive(target.pid));
}
