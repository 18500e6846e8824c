//! Fingerprints over the kernel files captured from the VM test boots
//! (tests/vm, docs/vm-tests.md): the real securityfs, selinuxfs and
//! /proc/sys files of Debian's 6.1 kernel running the VM scenarios' policy,
//! as `capture_tree` copied them (only the files the providers read). They
//! run on every machine, VM or not.

mod common;

use common::*;
use lsm_labels::StackSource;

fn names(fp: &lsm_labels::PolicyFingerprint) -> Vec<&str> {
    fp.components.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn vm_selinux_capture_reads_the_booted_stack_and_policy() {
    let p = profile_of(&fixture("vm-selinux-debian-6.1"));
    assert_eq!(
        p.stack(),
        [
            "lockdown",
            "capability",
            "landlock",
            "yama",
            "selinux",
            "bpf"
        ]
    );
    assert_eq!(p.stack_source, StackSource::Securityfs);
    assert_eq!(p.kernel_release, "6.1.0-57-amd64");
    assert_eq!(p.arch, "x86_64");
    let se = &p.lsm("selinux").unwrap().fingerprint;
    assert!(se.digest.is_some(), "note: {:?}", se.note);
    assert_eq!(
        se.version.as_deref(),
        Some("33"),
        "checkpolicy's default version"
    );
    assert_eq!(
        names(se),
        [
            "selinux/boolean/fx_read_secret",
            "selinux/checkreqprot",
            "selinux/enforce",
            "selinux/policy",
        ]
    );
    assert_eq!(se.digest, Some(se.canonical_digest()));
    assert!(p.lsm("lockdown").unwrap().fingerprint.digest.is_some());
    assert!(p.lsm("yama").unwrap().fingerprint.digest.is_some());
}

#[test]
fn vm_selinux_capture_boolean_flip_changes_only_that_component() {
    let before = profile_of(&fixture("vm-selinux-debian-6.1"));
    let copy = copy_fixture("vm-selinux-debian-6.1");
    std::fs::write(
        copy.path().join("sys/fs/selinux/booleans/fx_read_secret"),
        "1 1",
    )
    .unwrap();
    let after = profile_of(copy.path());
    let (b, a) = (
        &before.lsm("selinux").unwrap().fingerprint,
        &after.lsm("selinux").unwrap().fingerprint,
    );
    assert_ne!(b.digest, a.digest);
    let changed: Vec<&str> = b
        .components
        .iter()
        .zip(&a.components)
        .filter(|(x, y)| x.digest != y.digest)
        .map(|(x, _)| x.name.as_str())
        .collect();
    assert_eq!(changed, ["selinux/boolean/fx_read_secret"]);
    // A copy of the unchanged capture fingerprints the same.
    let same = profile_of(copy_fixture("vm-selinux-debian-6.1").path());
    assert_eq!(same.lsm("selinux").unwrap().fingerprint.digest, b.digest);
}

/// The AppArmor boot's files, captured after the scenario replaced
/// `ckpt_fx` with `ckpt_fx_v2` (tests/vm/policy/apparmor). `revision` is a
/// poll notifier whose read blocks, so the capture has none: no version.
#[test]
fn vm_apparmor_capture_reads_the_booted_stack_and_profile() {
    let p = profile_of(&fixture("vm-apparmor-debian-6.1"));
    assert_eq!(
        p.stack(),
        [
            "lockdown",
            "capability",
            "landlock",
            "yama",
            "apparmor",
            "bpf"
        ]
    );
    assert_eq!(p.kernel_release, "6.1.0-57-amd64");
    let aa = &p.lsm("apparmor").unwrap().fingerprint;
    assert!(aa.digest.is_some(), "note: {:?}", aa.note);
    assert_eq!(names(aa), ["apparmor/profile/ckpt_fx"]);
    assert_eq!(aa.digest, Some(aa.canonical_digest()));
}

#[test]
fn vm_apparmor_capture_profile_hash_or_mode_change_moves_the_digest() {
    let base = profile_of(&fixture("vm-apparmor-debian-6.1"));
    let digest = |p: &lsm_labels::HostProfile| p.lsm("apparmor").unwrap().fingerprint.digest;
    let prof = "sys/kernel/security/apparmor/policy/profiles/ckpt_fx.0";
    for (file, value) in [
        ("sha1", "0000000000000000000000000000000000000000\n"),
        ("mode", "complain\n"),
    ] {
        let copy = copy_fixture("vm-apparmor-debian-6.1");
        std::fs::write(copy.path().join(prof).join(file), value).unwrap();
        assert_ne!(digest(&profile_of(copy.path())), digest(&base), "{file}");
    }
    // The kernel's per-load directory suffix is not policy.
    let copy = copy_fixture("vm-apparmor-debian-6.1");
    let dir = copy
        .path()
        .join("sys/kernel/security/apparmor/policy/profiles");
    std::fs::rename(dir.join("ckpt_fx.0"), dir.join("ckpt_fx.7")).unwrap();
    assert_eq!(digest(&profile_of(copy.path())), digest(&base));
}
