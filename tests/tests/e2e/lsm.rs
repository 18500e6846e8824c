//! `ckpt lsm --sysroot` over the fixture hosts (kernel paths and formats of
//! SELinux, AppArmor, Smack and TOMOYO machines) and `--pid` on a live task.

use ckpt_tests::*;
use lsm_labels::HostProfile;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/lsm-labels/tests/fixtures")
        .join(name)
}

fn profile_of(root: &std::path::Path) -> HostProfile {
    let o = run_ckpt(&["lsm", "--json", "--sysroot", root.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("HostProfile JSON")
}

#[test]
fn sysroot_fixture_hosts_give_their_stack_and_stable_digests() {
    for (host, lsm) in [
        ("selinux-host", "selinux"),
        ("apparmor-host", "apparmor"),
        ("smack-host", "smack"),
        ("tomoyo-host", "tomoyo"),
    ] {
        let p = profile_of(&fixture(host));
        let entry = p
            .lsm(lsm)
            .unwrap_or_else(|| panic!("{host}: {lsm} missing from {:?}", p.stack()));
        assert!(
            entry.fingerprint.digest.is_some(),
            "{host}: {lsm} unknown: {:?}",
            entry.fingerprint.note
        );
        assert!(
            !entry.fingerprint.components.is_empty(),
            "{host}: {lsm} has no components"
        );
        assert_eq!(p, profile_of(&fixture(host)), "{host}: digest not stable");
    }
}

#[test]
fn sysroot_selinux_boolean_flip_moves_exactly_that_component() {
    // Save the SELinux fixture host's profile, flip one boolean in a copy,
    // and compare: exactly that boolean is reported changed.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("host");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(fixture("selinux-host"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let before = profile_of(&copy);
    let booleans = copy.join("sys/fs/selinux/booleans");
    let first = std::fs::read_dir(&booleans)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .min()
        .expect("a boolean");
    let text = std::fs::read_to_string(&first).unwrap();
    let flipped = if text.starts_with('0') {
        text.replacen('0', "1", 2)
    } else {
        text.replacen('1', "0", 2)
    };
    std::fs::write(&first, flipped).unwrap();
    let after = profile_of(&copy);
    let (b, a) = (
        before.lsm("selinux").unwrap(),
        after.lsm("selinux").unwrap(),
    );
    assert_ne!(
        b.fingerprint.digest, a.fingerprint.digest,
        "boolean flip must move the digest"
    );
    let changed: Vec<_> = b
        .fingerprint
        .components
        .iter()
        .zip(&a.fingerprint.components)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.name.clone())
        .collect();
    let name = first.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(changed[0].contains(&name), "{changed:?} should name {name}");
    for other in before.lsms.iter().filter(|l| l.name != "selinux") {
        assert_eq!(
            Some(other),
            after.lsm(&other.name),
            "{} moved without a policy change",
            other.name
        );
    }
}

#[test]
fn lsm_pid_reports_live_task_state() {
    let child = Guarded::spawn(std::process::Command::new("sleep").arg("30"));
    let o = run_ckpt(&["lsm", "--pid", &child.pid.to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let capeff = status_field(child.pid, "CapEff").unwrap();
    assert!(out.contains(&format!("CapEff {capeff}")), "{out}");
    assert!(out.contains("NoNewPrivs 0 Seccomp 0"), "{out}");
    let o = run_ckpt(&["lsm", "--pid", "2147483000"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("2147483000"), "{}", stderr(&o));
}
