//! `policy-diff`, `inspect` and the restore verdict on images built through
//! the format API (DESIGN 2, 3, 4): what a user checks before a restart.

use ckpt_tests::*;
use lsm_labels::{Digest, HostProfile, LsmEntry, PolicyFingerprint};
use std::path::{Path, PathBuf};

fn write_img(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A PID that is free now (far above anything in use on a test machine).
const FREE_PID: i32 = 3_999_999;

fn selinux_profile() -> HostProfile {
    let fp = |b: &[u8]| PolicyFingerprint {
        digest: Some(Digest::of(b)),
        ..Default::default()
    };
    HostProfile {
        lsms: vec![
            LsmEntry {
                name: "capability".into(),
                id: Some(100),
                fingerprint: fp(b""),
            },
            LsmEntry {
                name: "selinux".into(),
                id: Some(101),
                fingerprint: fp(b"policy v33"),
            },
        ],
        kernel_release: "6.1.0-test".into(),
        arch: "x86_64".into(),
        stack_source: lsm_labels::StackSource::Recorded,
    }
}

#[test]
fn lsm_json_lists_this_hosts_stack_with_a_fingerprint_or_reason_each() {
    let p = host_profile_json();
    assert!(!p.lsms.is_empty());
    if let Ok(expect) = std::env::var("CKPT_TEST_EXPECT_STACK") {
        assert_eq!(p.stack().join(","), expect, "host LSM stack");
    }
    for l in &p.lsms {
        assert!(
            l.fingerprint.digest.is_some() || l.fingerprint.note.is_some(),
            "{} has neither a digest nor a reason",
            l.name
        );
    }
    // Stable: a second run gives the same profile.
    assert_eq!(p, host_profile_json());
}

#[test]
fn root_policy_diff_same_host_is_same_and_allowed() {
    if !have_root("root_policy_diff_same_host_is_same_and_allowed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let host = host_profile_json();
    let img = write_img(
        dir.path(),
        "same.img",
        &build_image(&host, &[nobody_task(FREE_PID)], None),
    );
    for flags in [
        &[][..],
        &["--keep-lsm"][..],
        &["--require-same-policy"][..],
        &["--keep-lsm", "--require-same-policy"][..],
    ] {
        let mut args = vec!["policy-diff", s(&img)];
        args.extend_from_slice(flags);
        let o = run_ckpt(&args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{flags:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        for l in &host.lsms {
            assert!(
                stdout(&o).contains(&format!("{:<10} same", l.name)),
                "{}",
                stdout(&o)
            );
        }
        assert!(stdout(&o).contains("restore allowed"));
    }
}

#[test]
fn policy_diff_keep_lsm_with_a_different_stack_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let img = write_img(
        dir.path(),
        "se.img",
        &build_image(&selinux_profile(), &[nobody_task(FREE_PID)], None),
    );
    let o = run_ckpt(&["policy-diff", s(&img), "--keep-lsm"]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("stack: differs"), "{out}");
    assert!(
        out.contains("selinux") && out.contains("only in the image"),
        "{out}"
    );
    assert!(
        out.contains("--keep-lsm"),
        "the refusal must name the flag: {out}"
    );
    // JSON says the same.
    let o = run_ckpt(&["policy-diff", s(&img), "--keep-lsm", "--json"]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"]["outcome"], "refused");
    assert_eq!(v["diff"]["stack_equal"], false);
}

#[test]
fn root_restore_keep_lsm_with_a_different_stack_exits_3_before_creating_anything() {
    if !have_root("root_restore_keep_lsm_with_a_different_stack_exits_3_before_creating_anything") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Signed by a key the restore trusts: a valid signature does not make a
    // stack difference acceptable.
    let key = image_format::keys::generate_signing_key().unwrap();
    let pubk = dir.path().join("k.pub");
    image_format::keys::write_public_key(&pubk, &key.verifying_key()).unwrap();
    let img = write_img(
        dir.path(),
        "se.img",
        &build_image(&selinux_profile(), &[nobody_task(FREE_PID)], Some(&key)),
    );
    let o = run_ckpt(&[
        "restore",
        s(&img),
        "--keep-lsm",
        "--detach",
        "--require-signature",
        "--trusted-key",
        s(&pubk),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("stack"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("signature"),
        "the signature is fine: {}",
        stderr(&o)
    );
    assert!(!alive(FREE_PID));
    // Without --keep-lsm the stack difference is reported, not refused, so
    // the policy-diff verdict is allowed (as root).
    let o = run_ckpt(&["policy-diff", s(&img)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn root_require_same_policy_refuses_a_changed_fingerprint() {
    if !have_root("root_require_same_policy_refuses_a_changed_fingerprint") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut image_profile = host_profile_json();
    let changed = image_profile.lsms[0].name.clone();
    image_profile.lsms[0].fingerprint.digest = Some(Digest::of(b"another policy"));
    let img = write_img(
        dir.path(),
        "chg.img",
        &build_image(&image_profile, &[nobody_task(FREE_PID)], None),
    );
    let o = run_ckpt(&["policy-diff", s(&img)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("{changed:<10} changed")),
        "{}",
        stdout(&o)
    );
    let o = run_ckpt(&["policy-diff", s(&img), "--require-same-policy"]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(&changed));
    let o = run_ckpt(&["restore", s(&img), "--require-same-policy", "--detach"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(!alive(FREE_PID));
}

#[test]
fn policy_diff_against_a_saved_host_profile_names_changed_components() {
    let dir = tempfile::tempdir().unwrap();
    let mut image_profile = selinux_profile();
    image_profile.lsms[1].fingerprint.components = vec![
        lsm_labels::PolicyComponent {
            name: "selinux/boolean/httpd_can_network_connect".into(),
            digest: Digest::of(b"0"),
        },
        lsm_labels::PolicyComponent {
            name: "selinux/policy".into(),
            digest: Digest::of(b"p"),
        },
    ];
    // Consistent profiles: policy-diff --host refuses digests that do not
    // match their components.
    for l in &mut image_profile.lsms {
        l.fingerprint.digest = Some(l.fingerprint.canonical_digest());
    }
    let mut other_host = image_profile.clone();
    other_host.lsms[1].fingerprint.components[0].digest = Digest::of(b"1");
    other_host.lsms[1].fingerprint.digest = Some(other_host.lsms[1].fingerprint.canonical_digest());
    let host_json = dir.path().join("host.json");
    std::fs::write(&host_json, serde_json::to_vec(&other_host).unwrap()).unwrap();
    let img = write_img(
        dir.path(),
        "se.img",
        &build_image(&image_profile, &[nobody_task(FREE_PID)], None),
    );
    let o = run_ckpt(&["policy-diff", s(&img), "--host", s(&host_json)]);
    let out = stdout(&o);
    assert!(out.contains("selinux    changed"), "{out}");
    assert!(
        out.contains("selinux/boolean/httpd_can_network_connect"),
        "{out}"
    );
    assert!(out.contains("capability same"), "{out}");
    let o = run_ckpt(&[
        "policy-diff",
        s(&img),
        "--host",
        s(&host_json),
        "--require-same-policy",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    // A file that is not a profile is an operational error naming it.
    std::fs::write(&host_json, b"{ not json").unwrap();
    let o = run_ckpt(&["policy-diff", s(&img), "--host", s(&host_json)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("host.json"), "{}", stderr(&o));
}

#[test]
fn inspect_shows_header_tasks_and_signer() {
    let dir = tempfile::tempdir().unwrap();
    let key = image_format::keys::generate_signing_key().unwrap();
    let img = write_img(
        dir.path(),
        "signed.img",
        &build_image(&selinux_profile(), &[nobody_task(FREE_PID)], Some(&key)),
    );
    let o = run_ckpt(&["inspect", s(&img), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format_version"], "1.2");
    assert_eq!(v["security_header"]["kernel_release"], "6.1.0-test");
    assert_eq!(v["security_header"]["lsms"][1]["name"], "selinux");
    assert_eq!(v["tasks"][0]["pid"], FREE_PID);
    assert_eq!(
        v["signature"]["fingerprint"],
        image_format::keys::fingerprint(&key.verifying_key())
    );
    let o = run_ckpt(&["inspect", s(&img)]);
    assert!(stdout(&o).contains("Ed25519"), "{}", stdout(&o));
    assert!(stdout(&o).contains("selinux"), "{}", stdout(&o));
}

#[test]
fn signature_rules_refuse_unsigned_and_untrusted_images() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("k");
    let other_path = dir.path().join("other");
    for p in [&key_path, &other_path] {
        let o = run_ckpt(&["keygen", "-o", s(p)]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let key = image_format::keys::read_secret_key(&key_path).unwrap();
    let host = host_profile_json();
    let signed = write_img(
        dir.path(),
        "signed.img",
        &build_image(&host, &[nobody_task(FREE_PID)], Some(&key)),
    );
    let unsigned = write_img(
        dir.path(),
        "unsigned.img",
        &build_image(&host, &[nobody_task(FREE_PID)], None),
    );
    let pubk = format!("{}.pub", key_path.display());
    let other_pub = format!("{}.pub", other_path.display());
    // Unsigned with --require-signature: refused, exit 3.
    let o = run_ckpt(&[
        "restore",
        s(&unsigned),
        "--require-signature",
        "--trusted-key",
        &pubk,
        "--detach",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).to_lowercase().contains("unsigned")
            || stderr(&o).to_lowercase().contains("not signed"),
        "{}",
        stderr(&o)
    );
    // Signed by a key that is not trusted: refused, exit 3.
    let o = run_ckpt(&[
        "restore",
        s(&signed),
        "--require-signature",
        "--trusted-key",
        &other_pub,
        "--detach",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(!alive(FREE_PID));
    // A flipped byte in the signature block: refused before anything else.
    let mut bytes = std::fs::read(&signed).unwrap();
    let n = bytes.len();
    bytes[n - 24 - 10] ^= 1; // inside the signature, just before the footer
    let bad = write_img(dir.path(), "badsig.img", &bytes);
    let o = run_ckpt(&["inspect", s(&bad)]);
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn corrupt_image_is_refused_by_every_reader_command() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = build_image(&selinux_profile(), &[nobody_task(FREE_PID)], None);
    for at in (0..bytes.len()).step_by(bytes.len() / 16 + 1) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x5a;
        let img = write_img(dir.path(), "bad.img", &bad);
        for cmd in ["inspect", "policy-diff"] {
            let o = run_ckpt(&[cmd, s(&img)]);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{cmd} accepted a flipped byte at {at}: {}{}",
                stdout(&o),
                stderr(&o)
            );
            assert!(stderr(&o).contains("bad.img"), "{}", stderr(&o));
        }
    }
}
