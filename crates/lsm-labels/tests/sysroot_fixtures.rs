//! Fingerprints of fixture hosts (SELinux, AppArmor, Smack, TOMOYO) read
//! through `--sysroot`: stable across runs and copies, moving exactly when
//! the policy moves.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use lsm_labels::{HostView, StackSource};

fn names(fp: &lsm_labels::PolicyFingerprint) -> Vec<&str> {
    fp.components.iter().map(|c| c.name.as_str()).collect()
}

// ---------------------------------------------------------------- SELinux

#[test]
fn selinux_host_profile_reads_stack_release_and_policy() {
    let p = profile_of(&fixture("selinux-host"));
    assert_eq!(
        p.stack(),
        [
            "lockdown",
            "capability",
            "yama",
            "selinux",
            "bpf",
            "landlock"
        ]
    );
    assert_eq!(p.stack_source, StackSource::Securityfs);
    assert_eq!(p.kernel_release, "6.11.4-301.fc41.x86_64");
    assert_eq!(p.arch, "x86_64");
    assert_eq!(p.lsm("selinux").unwrap().id, Some(101));
    let se = &p.lsm("selinux").unwrap().fingerprint;
    assert!(se.digest.is_some(), "note: {:?}", se.note);
    assert_eq!(se.version.as_deref(), Some("33"));
    assert_eq!(
        names(se),
        [
            "selinux/boolean/container_manage_cgroup",
            "selinux/boolean/httpd_can_network_connect",
            "selinux/boolean/ssh_sysadm_login",
            "selinux/boolean/virt_use_nfs",
            "selinux/checkreqprot",
            "selinux/enforce",
            "selinux/policy",
        ]
    );
    assert_eq!(se.digest, Some(se.canonical_digest()));
    // Lockdown "[none]", yama 0.
    assert!(p.lsm("lockdown").unwrap().fingerprint.digest.is_some());
    assert!(p.lsm("yama").unwrap().fingerprint.digest.is_some());
    // No syscalls on a sysroot: bpf and landlock are unknown, with reasons.
    for l in ["bpf", "landlock"] {
        let f = &p.lsm(l).unwrap().fingerprint;
        assert_eq!(f.digest, None, "{l}");
        assert!(
            f.note.as_deref().unwrap().contains("sysroot"),
            "{l}: {:?}",
            f.note
        );
    }
}

#[test]
fn selinux_digest_is_stable_across_runs_copies_and_timestamps() {
    let a = fingerprint_of(&fixture("selinux-host"), "selinux");
    let b = fingerprint_of(&fixture("selinux-host"), "selinux");
    assert_eq!(a, b);
    let c = copy_fixture("selinux-host");
    touch_all(
        c.path(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
    );
    assert_eq!(fingerprint_of(c.path(), "selinux"), a);
}

#[test]
fn selinux_digest_moves_with_one_boolean_and_only_that_component() {
    let base = fingerprint_of(&fixture("selinux-host"), "selinux");
    let c = copy_fixture("selinux-host");
    write(
        c.path(),
        "sys/fs/selinux/booleans/httpd_can_network_connect",
        "1 1",
    );
    let after = fingerprint_of(c.path(), "selinux");
    assert_ne!(after.digest, base.digest);
    assert_eq!(
        changed_components(&base, &after),
        ["selinux/boolean/httpd_can_network_connect"]
    );
    // A pending (uncommitted) value decides nothing.
    write(
        c.path(),
        "sys/fs/selinux/booleans/httpd_can_network_connect",
        "0 1",
    );
    assert_eq!(fingerprint_of(c.path(), "selinux"), base);
}

#[test]
fn selinux_digest_moves_with_enforce_and_policy_bytes() {
    let base = fingerprint_of(&fixture("selinux-host"), "selinux");
    let c = copy_fixture("selinux-host");
    write(c.path(), "sys/fs/selinux/enforce", "0");
    let perm = fingerprint_of(c.path(), "selinux");
    assert_eq!(changed_components(&base, &perm), ["selinux/enforce"]);
    write(c.path(), "sys/fs/selinux/enforce", "1");
    let mut pol = std::fs::read(c.path().join("sys/fs/selinux/policy")).unwrap();
    let last = pol.len() - 1;
    pol[last] ^= 1;
    std::fs::write(c.path().join("sys/fs/selinux/policy"), &pol).unwrap();
    let p2 = fingerprint_of(c.path(), "selinux");
    assert_eq!(changed_components(&base, &p2), ["selinux/policy"]);
    assert_ne!(p2.digest, base.digest);
}

#[test]
fn selinux_digest_ignores_non_policy_files() {
    let base = fingerprint_of(&fixture("selinux-host"), "selinux");
    let c = copy_fixture("selinux-host");
    write(
        c.path(),
        "sys/fs/selinux/avc/cache_stats",
        "lookups hits\n1 1\n",
    );
    write(c.path(), "sys/fs/selinux/policyvers", "35");
    write(c.path(), "sys/fs/selinux/mls", "0");
    assert_eq!(fingerprint_of(c.path(), "selinux"), base);
}

#[test]
fn selinux_policy_that_is_not_a_policy_is_unknown_with_reason() {
    let c = copy_fixture("selinux-host");
    write(c.path(), "sys/fs/selinux/policy", b"\x7fELF not a policy");
    let f = fingerprint_of(c.path(), "selinux");
    assert_eq!(f.digest, None);
    assert!(f.note.as_deref().unwrap().contains("magic"), "{:?}", f.note);
    std::fs::remove_file(c.path().join("sys/fs/selinux/policy")).unwrap();
    let f = fingerprint_of(c.path(), "selinux");
    assert_eq!(f.digest, None);
    assert!(
        f.note.as_deref().unwrap().contains("policy"),
        "{:?}",
        f.note
    );
}

// --------------------------------------------------------------- AppArmor

const CUPSD: &str = "sys/kernel/security/apparmor/policy/profiles/usr.sbin.cupsd.3";

#[test]
fn apparmor_profiles_are_components_named_by_profile_name() {
    let p = profile_of(&fixture("apparmor-host"));
    assert_eq!(
        p.stack(),
        [
            "lockdown",
            "capability",
            "landlock",
            "yama",
            "apparmor",
            "ima",
            "evm"
        ]
    );
    let aa = &p.lsm("apparmor").unwrap().fingerprint;
    assert!(aa.digest.is_some(), "{:?}", aa.note);
    assert_eq!(aa.version.as_deref(), Some("37"));
    assert_eq!(
        names(aa),
        [
            "apparmor/profile//usr/sbin/cupsd",
            "apparmor/profile//usr/sbin/cupsd//third_party",
            "apparmor/profile/docker-default",
            "apparmor/profile/firefox",
            "apparmor/profile/unprivileged_userns",
        ]
    );
    for l in ["ima", "evm"] {
        let f = &p.lsm(l).unwrap().fingerprint;
        assert!(f.digest.is_some(), "{l}: {:?}", f.note);
    }
}

#[test]
fn apparmor_digest_moves_with_one_profile_hash_or_mode() {
    let base = fingerprint_of(&fixture("apparmor-host"), "apparmor");
    let c = copy_fixture("apparmor-host");
    write(
        c.path(),
        &format!("{CUPSD}/profiles/third_party.4/sha256"),
        format!("{}\n", "ab".repeat(32)),
    );
    let h = fingerprint_of(c.path(), "apparmor");
    assert_ne!(h.digest, base.digest);
    assert_eq!(
        changed_components(&base, &h),
        ["apparmor/profile//usr/sbin/cupsd//third_party"]
    );
    let c = copy_fixture("apparmor-host");
    write(c.path(), &format!("{CUPSD}/mode"), "complain\n");
    let m = fingerprint_of(c.path(), "apparmor");
    assert_eq!(
        changed_components(&base, &m),
        ["apparmor/profile//usr/sbin/cupsd"]
    );
}

#[test]
fn apparmor_digest_ignores_directory_ids_listing_and_timestamps() {
    let base = fingerprint_of(&fixture("apparmor-host"), "apparmor");
    let c = copy_fixture("apparmor-host");
    // A reload renames the directory with a new unique id.
    std::fs::rename(
        c.path().join(CUPSD),
        c.path()
            .join("sys/kernel/security/apparmor/policy/profiles/usr.sbin.cupsd.41"),
    )
    .unwrap();
    write(
        c.path(),
        "sys/kernel/security/apparmor/profiles",
        "/usr/sbin/cupsd (enforce)\n",
    );
    write(
        c.path(),
        "sys/kernel/security/apparmor/features/domain/version",
        "1.3\n",
    );
    touch_all(c.path(), SystemTime::UNIX_EPOCH);
    assert_eq!(fingerprint_of(c.path(), "apparmor"), base);
}

#[test]
fn apparmor_revision_is_the_version_but_not_hashed() {
    // A reload of identical profiles bumps the revision but changes no
    // access decision: the digest must stay, the version must show it.
    let base = fingerprint_of(&fixture("apparmor-host"), "apparmor");
    let c = copy_fixture("apparmor-host");
    write(c.path(), "sys/kernel/security/apparmor/revision", "38\n");
    let r = fingerprint_of(c.path(), "apparmor");
    assert_eq!(r.version.as_deref(), Some("38"));
    assert_ne!(r.version, base.version);
    assert!(changed_components(&base, &r).is_empty());
    assert_eq!(r.digest, base.digest);
}

#[test]
fn apparmor_falls_back_to_sha1_and_is_unknown_without_any_hash() {
    let c = copy_fixture("apparmor-host");
    let dir = c
        .path()
        .join("sys/kernel/security/apparmor/policy/profiles/docker-default.7");
    std::fs::rename(dir.join("sha256"), dir.join("sha1")).unwrap();
    let f = fingerprint_of(c.path(), "apparmor");
    assert!(f.digest.is_some(), "{:?}", f.note);
    std::fs::remove_file(dir.join("sha1")).unwrap();
    let f = fingerprint_of(c.path(), "apparmor");
    assert_eq!(f.digest, None);
    assert!(
        f.note.as_deref().unwrap().contains("hash_policy"),
        "{:?}",
        f.note
    );
}

#[test]
fn task_state_from_a_captured_proc_tree() {
    let view = HostView::sysroot(fixture("apparmor-host"));
    let st = lsm_labels::taskstate::read_task_state(&view, 4242).unwrap();
    assert_eq!(
        st.threads.iter().map(|t| t.tid).collect::<Vec<_>>(),
        [4242, 4243]
    );
    let t = &st.threads[0];
    assert_eq!(t.creds.uids, [0; 4]);
    assert_eq!(t.creds.gids, [7; 4]);
    assert_eq!(t.creds.groups, [7]);
    assert_eq!(t.creds.caps.effective, 0xa80425fb);
    assert_eq!(t.creds.securebits, 0);
    assert!(t.no_new_privs);
    assert_eq!(t.seccomp, lsm_labels::SeccompMode::Filter);
    let aa: Vec<_> = t
        .labels
        .iter()
        .map(|l| (l.lsm.as_str(), l.attr.as_str(), l.value.as_slice()))
        .collect();
    assert_eq!(
        aa,
        [
            ("", "current", &b"/usr/sbin/cupsd (enforce)\n"[..]),
            ("apparmor", "current", &b"/usr/sbin/cupsd (enforce)\n"[..])
        ]
    );
    assert_eq!(
        st.threads[1].labels[1].value,
        b"/usr/sbin/cupsd//third_party (enforce)\n"
    );
    assert!(st.sandbox.sandboxed);
    assert_eq!(st.sandbox.landlock_ruleset_fds, [5]);
    assert!(
        st.sandbox
            .reasons
            .iter()
            .any(|r| r.contains("seccomp filter mode (1 filters)")),
        "{:?}",
        st.sandbox.reasons
    );
    assert!(
        st.sandbox
            .reasons
            .iter()
            .any(|r| r.contains("AppArmor profile /usr/sbin/cupsd (enforce)")),
        "{:?}",
        st.sandbox.reasons
    );
    let shown = st.to_string();
    for want in [
        "pid 4242 (2 threads)",
        "thread 4243:",
        "uid (real eff saved fs): 0 0 0 0",
        "attr/apparmor/current: /usr/sbin/cupsd (enforce)",
        "no_new_privs: yes",
        "seccomp: filter (1 filters)",
        "sandboxed: yes",
        "cap bounding:    0x00000000a80425fb (chown,dac_override,",
    ] {
        assert!(shown.contains(want), "missing {want:?} in:\n{shown}");
    }
    let e = lsm_labels::taskstate::read_task_state(&view, 99999).unwrap_err();
    assert!(e.to_string().contains("no process 99999"), "{e}");
}

// ------------------------------------------------------------------ Smack

#[test]
fn smack_components_and_rule_order_independence() {
    let base = fingerprint_of(&fixture("smack-host"), "smack");
    assert!(base.digest.is_some(), "{:?}", base.note);
    assert_eq!(
        names(&base),
        [
            "smack/ambient",
            "smack/cipso2",
            "smack/direct",
            "smack/doi",
            "smack/load2",
            "smack/mapped",
            "smack/netlabel",
            "smack/onlycap",
            "smack/ptrace",
        ]
    );
    let c = copy_fixture("smack-host");
    let rules = read(c.path(), "sys/fs/smackfs/load2");
    let mut lines: Vec<_> = rules.lines().collect();
    lines.reverse();
    write(c.path(), "sys/fs/smackfs/load2", lines.join("\n") + "\n");
    write(
        c.path(),
        "sys/fs/smackfs/onlycap",
        "System::Privileged System\n",
    );
    write(c.path(), "sys/fs/smackfs/logging", "0\n");
    touch_all(c.path(), SystemTime::UNIX_EPOCH);
    assert_eq!(fingerprint_of(c.path(), "smack"), base);
}

#[test]
fn smack_digest_moves_with_one_rule_and_unknown_without_load2() {
    let base = fingerprint_of(&fixture("smack-host"), "smack");
    let c = copy_fixture("smack-host");
    let rules = read(c.path(), "sys/fs/smackfs/load2").replace("User System rx", "User System r");
    write(c.path(), "sys/fs/smackfs/load2", rules);
    let f = fingerprint_of(c.path(), "smack");
    assert_eq!(changed_components(&base, &f), ["smack/load2"]);
    write(c.path(), "sys/fs/smackfs/ambient", "Floor\n");
    assert_eq!(
        changed_components(&base, &fingerprint_of(c.path(), "smack")),
        ["smack/ambient", "smack/load2"]
    );
    std::fs::remove_file(c.path().join("sys/fs/smackfs/load2")).unwrap();
    let f = fingerprint_of(c.path(), "smack");
    assert_eq!(f.digest, None);
    assert!(f.note.as_deref().unwrap().contains("load2"), "{:?}", f.note);
}

// ----------------------------------------------------------------- TOMOYO

const TOMOYO: &str = "sys/kernel/security/tomoyo";

#[test]
fn tomoyo_components_version_and_rule_change() {
    let base = fingerprint_of(&fixture("tomoyo-host"), "tomoyo");
    assert!(base.digest.is_some(), "{:?}", base.note);
    assert_eq!(base.version.as_deref(), Some("2.6.0"));
    assert_eq!(
        names(&base),
        [
            "tomoyo/domain_policy",
            "tomoyo/exception_policy",
            "tomoyo/manager",
            "tomoyo/profile"
        ]
    );
    let c = copy_fixture("tomoyo-host");
    let d = read(c.path(), &format!("{TOMOYO}/domain_policy")).replace(
        "file read /etc/ssh/sshd_config\n",
        "file read /etc/ssh/sshd_config\nfile write /etc/shadow\n",
    );
    write(c.path(), &format!("{TOMOYO}/domain_policy"), d);
    let f = fingerprint_of(c.path(), "tomoyo");
    assert_eq!(changed_components(&base, &f), ["tomoyo/domain_policy"]);
    let c = copy_fixture("tomoyo-host");
    let p = read(c.path(), &format!("{TOMOYO}/profile")).replace("mode=enforcing", "mode=learning");
    write(c.path(), &format!("{TOMOYO}/profile"), p);
    assert_eq!(
        changed_components(&base, &fingerprint_of(c.path(), "tomoyo")),
        ["tomoyo/profile"]
    );
}

#[test]
fn tomoyo_digest_ignores_stat_comments_and_runtime_flags() {
    let base = fingerprint_of(&fixture("tomoyo-host"), "tomoyo");
    let c = copy_fixture("tomoyo-host");
    write(c.path(), &format!("{TOMOYO}/stat"), "Policy update: 13\n");
    let p = read(c.path(), &format!("{TOMOYO}/profile"))
        .replace("-----Enforcing Mode-----", "sshd jail");
    write(c.path(), &format!("{TOMOYO}/profile"), p);
    let d = read(c.path(), &format!("{TOMOYO}/domain_policy")).replace(
        "use_group 0\nfile read",
        "use_group 0\nquota_exceeded\nfile read",
    );
    write(c.path(), &format!("{TOMOYO}/domain_policy"), d);
    touch_all(c.path(), SystemTime::UNIX_EPOCH);
    assert_eq!(fingerprint_of(c.path(), "tomoyo"), base);
}

// ------------------------------------------------------------- bounds etc.

#[test]
fn oversized_sysroot_file_is_unknown_not_read() {
    let c = copy_fixture("smack-host");
    // 17 MiB of rules: over the 16 MiB text-policy cap.
    let f = std::fs::File::create(c.path().join("sys/fs/smackfs/load2")).unwrap();
    f.set_len(17 << 20).unwrap();
    let fp = fingerprint_of(c.path(), "smack");
    assert_eq!(fp.digest, None);
    assert!(
        fp.note.as_deref().unwrap().contains("larger than"),
        "{:?}",
        fp.note
    );
}

#[test]
fn missing_securityfs_list_is_an_error_that_says_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let e = lsm_labels::detect_host_profile(&HostView::sysroot(d.path())).unwrap_err();
    assert!(e.to_string().contains("securityfs"), "{e}");
}

#[test]
fn profile_text_shows_every_lsm_with_digest_or_unknown_and_note() {
    let p = profile_of(&fixture("selinux-host"));
    let t = lsm_labels::host::describe_profile(&p);
    assert!(
        t.contains(
            "stack  lockdown,capability,yama,selinux,bpf,landlock (from /sys/kernel/security/lsm)"
        ),
        "{t}"
    );
    let se = p
        .lsm("selinux")
        .unwrap()
        .fingerprint
        .digest
        .unwrap()
        .to_hex();
    assert!(
        t.contains(&format!("selinux    {se} version 33 (7 components)")),
        "{t}"
    );
    assert!(t.contains("bpf        unknown (0 components)"), "{t}");
    assert!(
        t.contains("note: BPF-LSM programs can only be enumerated"),
        "{t}"
    );
}

#[test]
fn profile_round_trips_through_json() {
    let p = profile_of(&fixture("apparmor-host"));
    let j = serde_json::to_string(&p).unwrap();
    let back: lsm_labels::HostProfile = serde_json::from_str(&j).unwrap();
    assert_eq!(back, p);
}

#[test]
fn garbage_in_every_sysroot_file_never_panics_and_is_explained() {
    for name in ["selinux-host", "apparmor-host", "smack-host", "tomoyo-host"] {
        let c = copy_fixture(name);
        let mut files = Vec::new();
        collect_files(c.path(), &mut files);
        let keep = c.path().join("sys/kernel/security/lsm");
        for (i, f) in files.iter().enumerate() {
            if *f == keep {
                continue;
            }
            // Invalid UTF-8, NULs, brackets without content, huge numbers.
            let junk: &[u8] = match i % 4 {
                0 => b"\xff\xfe\x00[",
                1 => b"",
                2 => b"99999999999999999999999 ] [",
                _ => b"\x8c\xff\x7c\xf9\xff\xff\xff\xff",
            };
            std::fs::write(f, junk).unwrap();
        }
        let p = profile_of(c.path());
        for l in &p.lsms {
            let f = &l.fingerprint;
            assert!(
                f.digest.is_some() || f.note.is_some(),
                "{name}/{}: neither digest nor note",
                l.name
            );
        }
        let _ = lsm_labels::taskstate::read_task_state(&HostView::sysroot(c.path()), 4242);
    }
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            collect_files(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}
