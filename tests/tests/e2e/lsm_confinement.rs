//! DESIGN 3 rule 2 on every machine: an image whose task ran under an
//! AppArmor profile, restored on a host where the caller has no such label
//! (this host's stack has no label LSM, or another one): `restore` and
//! `policy-diff` refuse to give the profile up silently, name the three ways
//! out, and `--lsm-as-caller` accepts it with a notice naming the profile.
//! The real-kernel versions of these cases are the VM scenarios
//! (tests/vm/guest/apparmor.sh, selinux.sh; docs/vm-tests.md).

use ckpt_tests::*;
use lsm_labels::{Digest, HostProfile, LsmEntry, PolicyFingerprint, TaskLabel};
use std::path::Path;

const FREE_PID: i32 = 3_999_998;

fn apparmor_image(dir: &Path) -> std::path::PathBuf {
    let fp = PolicyFingerprint {
        digest: Some(Digest::of(b"profiles")),
        ..Default::default()
    };
    let profile = HostProfile {
        lsms: vec![LsmEntry {
            name: "apparmor".into(),
            id: Some(104),
            fingerprint: fp,
        }],
        kernel_release: "6.1.0-test".into(),
        arch: std::env::consts::ARCH.into(),
        ..Default::default()
    };
    let mut task = nobody_task(FREE_PID);
    task.labels = vec![TaskLabel {
        lsm: "apparmor".into(),
        attr: "current".into(),
        value: b"ckpt_fx (enforce)\n".to_vec(),
    }];
    let p = dir.join("aa.img");
    std::fs::write(&p, build_image(&profile, &[task], None)).unwrap();
    p
}

#[test]
fn rule_3_2_policy_diff_refuses_to_give_up_a_profile_and_names_the_ways_out() {
    let dir = tempfile::tempdir().unwrap();
    let img = apparmor_image(dir.path());
    let img = img.to_str().unwrap();
    let o = run_ckpt(&["policy-diff", img]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("confined by apparmor label \"ckpt_fx (enforce)\""),
        "{out}"
    );
    for way_out in [
        "--keep-lsm",
        "--lsm-as-caller",
        "--lsm-label apparmor:LABEL",
    ] {
        assert!(out.contains(way_out), "{way_out} missing: {out}");
    }
    let o = run_ckpt(&["policy-diff", img, "--lsm-as-caller", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let refusals = v["verdict"]["refusals"].as_array().unwrap();
    assert!(
        refusals
            .iter()
            .all(|r| r["refusal"] != "confining_label_dropped"),
        "{v}"
    );
    let notices = v["verdict"]["messages"]["notices"].to_string();
    assert!(notices.contains("ckpt_fx (enforce)"), "{notices}");
}

#[test]
fn rule_3_2_lsm_label_for_an_lsm_outside_the_stack_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = apparmor_image(dir.path());
    let o = run_ckpt(&[
        "policy-diff",
        img.to_str().unwrap(),
        "--lsm-label",
        "smack:Fx",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("no LSM named \"smack\" is in the stack"),
        "{}",
        stdout(&o)
    );
    let o = run_ckpt(&[
        "policy-diff",
        img.to_str().unwrap(),
        "--lsm-label",
        "nocolon",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a malformed --lsm-label is a usage error: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("LSM:LABEL"), "{}", stderr(&o));
}

#[test]
fn root_rule_3_2_restore_refuses_before_creating_anything() {
    if !have_root("root_rule_3_2_restore_refuses_before_creating_anything") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = apparmor_image(dir.path());
    let o = run_ckpt(&["restore", img.to_str().unwrap(), "--detach"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("--lsm-as-caller"), "{}", stderr(&o));
    assert!(!alive(FREE_PID));
}
