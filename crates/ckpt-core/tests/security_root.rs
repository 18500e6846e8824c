//! The dump side of the security steps on a live process (needs root:
//! PTRACE_SECCOMP_GET_FILTER needs CAP_SYS_ADMIN).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ckpt_core::ptrace::Tracee;
use ckpt_core::security_dump;
use lsm_labels::task::SeccompMode;

fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CKPT_TEST_EXPECT_ROOT").as_deref() == Ok("1") {
        panic!("CKPT_TEST_EXPECT_ROOT=1 but this test is not running as root");
    }
    eprintln!("SKIPPED: needs root");
    false
}

fn fixture(name: &str) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("fixture-{name}"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}.c"));
    let st = Command::new("gcc")
        .args(["-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("gcc runs");
    assert!(st.success(), "gcc failed for {name}");
    out
}

#[test]
fn root_capture_reads_filters_oldest_first_and_securebits() {
    if !require_root() {
        return;
    }
    let mut child = Command::new(fixture("two-filters"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn fixture");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = child.id() as i32;
    let mut t = Tracee::seize(pid).expect("seize");
    let sec = security_dump::capture(&mut t, pid).expect("capture");
    t.detach().expect("detach");
    assert_eq!(sec.seccomp, SeccompMode::Filter);
    assert!(sec.no_new_privs);
    let lens: Vec<usize> = sec.seccomp_filters.iter().map(Vec::len).collect();
    assert_eq!(lens, vec![8, 16], "filters must be oldest first");
    assert_eq!(sec.creds.securebits, 1 << 4, "SECBIT_KEEP_CAPS");
    // Still running, and its seccomp filters apply again after detach.
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(child.try_wait().unwrap().is_none(), "fixture died");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("TracerPid:\t0"));
    child.kill().unwrap();
    child.wait().unwrap();
}
