//! Command-line contract: usage errors, exit codes, messages naming objects.

use ckpt_tests::*;

#[test]
fn usage_error_exits_2() {
    let o = run_ckpt(&["restore"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run_ckpt(&["dump", "notapid", "-o", "/tmp/x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn missing_image_is_operational_error_naming_the_file() {
    let o = run_ckpt(&["inspect", "/nonexistent/ckpt-test.img"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/ckpt-test.img"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn dump_of_missing_pid_fails_cleanly_without_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("x.img");
    // PIDs above pid_max cannot exist.
    let o = run_ckpt(&["dump", "2147483000", "-o", img.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("2147483000"), "{}", stderr(&o));
    assert!(!img.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file left"
    );
}
