//! Tests against the live host: the stack, a fingerprint or a stated reason
//! for every LSM, /proc/self task state, vmlinux BTF, and (as root) BPF link
//! enumeration with a real non-LSM program that must be excluded.
//!
//! CI states what it expects: `CKPT_TEST_EXPECT_STACK=lockdown,capability,landlock,bpf`
//! and `CKPT_TEST_EXPECT_ROOT=1`, so these fail instead of adapting.

use lsm_labels::bpf;
use lsm_labels::fingerprint::fingerprint_lsm;
use lsm_labels::{detect_host_profile, HostView, StackSource};

#[test]
fn live_stack_matches_expectation_and_securityfs() {
    let p = detect_host_profile(&HostView::live()).expect("detect live profile");
    let stack = p.stack().join(",");
    if let Ok(expect) = std::env::var("CKPT_TEST_EXPECT_STACK") {
        assert_eq!(stack, expect, "live LSM stack");
        // The syscall exists on the kernels CI runs (6.8+).
        assert_eq!(p.stack_source, StackSource::Syscall);
    }
    // Whatever the source, it agrees with securityfs when that is mounted.
    if let Ok(fs) = std::fs::read_to_string("/sys/kernel/security/lsm") {
        assert_eq!(stack, fs.trim());
    }
    assert!(!p.lsms.is_empty());
    let u = nix::sys::utsname::uname().unwrap();
    assert_eq!(p.kernel_release, u.release().to_string_lossy());
    assert_eq!(p.arch, std::env::consts::ARCH);
}

#[test]
fn every_live_lsm_has_a_fingerprint_or_a_reason() {
    let p = detect_host_profile(&HostView::live()).unwrap();
    for l in &p.lsms {
        let f = &l.fingerprint;
        match f.digest {
            Some(d) => assert_eq!(
                d,
                f.canonical_digest(),
                "{}: digest is not canonical",
                l.name
            ),
            None => assert!(
                f.note.as_deref().is_some_and(|n| !n.is_empty()),
                "{} has neither digest nor note",
                l.name
            ),
        }
        println!(
            "{:<11} {:?} version={:?} note={:?}",
            l.name,
            f.digest.map(|d| d.to_hex()),
            f.version,
            f.note
        );
    }
    // Fixed ones are known on any host that runs them.
    if let Some(c) = p.lsm("capability") {
        assert_eq!(
            c.fingerprint,
            lsm_labels::PolicyFingerprint::from_components(vec![], None)
        );
    }
    if let Some(l) = p.lsm("landlock") {
        let v: u32 = l
            .fingerprint
            .version
            .as_deref()
            .expect("landlock ABI version")
            .parse()
            .unwrap();
        assert!(v >= 1);
    }
    if let Some(l) = p.lsm("lockdown") {
        assert!(l.fingerprint.digest.is_some(), "{:?}", l.fingerprint.note);
        assert_eq!(l.fingerprint.components[0].name, "lockdown/mode");
    }
}

#[test]
fn live_fingerprints_are_stable_between_two_reads() {
    let a = detect_host_profile(&HostView::live()).unwrap();
    let b = detect_host_profile(&HostView::live()).unwrap();
    assert_eq!(a, b);
}

fn status_field(name: &str) -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap()
}

#[test]
fn proc_self_task_state_gives_real_ids_and_caps() {
    let pid = std::process::id() as i32;
    // A second thread that lives while we read.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let st = lsm_labels::taskstate::read_task_state(&HostView::live(), pid).unwrap();
    drop(tx);
    h.join().unwrap();
    assert_eq!(st.pid, pid);
    assert_eq!(st.threads[0].tid, pid, "leader first");
    assert!(
        st.threads.len() >= 2,
        "threads: {:?}",
        st.threads.iter().map(|t| t.tid).collect::<Vec<_>>()
    );
    let t = &st.threads[0];
    let uid = nix::unistd::getuid().as_raw();
    let euid = nix::unistd::geteuid().as_raw();
    assert_eq!(t.creds.uids[0], uid);
    assert_eq!(t.creds.uids[1], euid);
    assert_eq!(t.creds.gids[0], nix::unistd::getgid().as_raw());
    let mut groups: Vec<u32> = nix::unistd::getgroups()
        .unwrap()
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    groups.sort_unstable();
    let mut got = t.creds.groups.clone();
    got.sort_unstable();
    assert_eq!(got, groups);
    // CapEff from capget(2), independent of /proc parsing.
    let eff: u64 = caps::read(None, caps::CapSet::Effective)
        .unwrap()
        .iter()
        .map(|c| c.bitmask())
        .fold(0, |a, b| a | b);
    assert_eq!(t.creds.caps.effective, eff);
    let bnd: u64 = caps::read(None, caps::CapSet::Bounding)
        .unwrap()
        .iter()
        .map(|c| c.bitmask())
        .fold(0, |a, b| a | b);
    assert_eq!(t.creds.caps.bounding, bnd);
    assert_eq!(t.no_new_privs, status_field("NoNewPrivs") == "1");
    assert_eq!(t.seccomp.as_status().to_string(), status_field("Seccomp"));
}

#[test]
fn vmlinux_btf_names_a_real_lsm_hook() {
    let Ok(btf) = std::fs::read(bpf::VMLINUX_BTF) else {
        assert!(
            std::env::var_os("CKPT_TEST_EXPECT_STACK").is_none(),
            "{} missing",
            bpf::VMLINUX_BTF
        );
        return;
    };
    let id = bpf::btf_find_func(&btf, "bpf_lsm_file_open")
        .unwrap()
        .expect("bpf_lsm_file_open in vmlinux BTF");
    assert_eq!(
        bpf::btf_type_name(&btf, id).unwrap().as_deref(),
        Some("bpf_lsm_file_open")
    );
    let id2 = bpf::btf_find_func(&btf, "bpf_lsm_socket_connect")
        .unwrap()
        .expect("bpf_lsm_socket_connect");
    assert_ne!(id, id2);
}

fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root && std::env::var("CKPT_TEST_EXPECT_ROOT").as_deref() == Ok("1") {
        panic!("CKPT_TEST_EXPECT_ROOT=1 but the test does not run as root");
    }
    if !root {
        eprintln!("SKIPPED: needs root");
    }
    root
}

fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mi.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        (post.split_whitespace().next()? == "cgroup2")
            .then(|| pre.split_whitespace().nth(4).map(Into::into))?
    })
}

#[test]
fn bpf_enumeration_sees_and_excludes_a_non_lsm_program_root() {
    if !is_root() {
        return;
    }
    let before = fingerprint_lsm(&HostView::live(), "bpf");
    assert!(
        before.digest.is_some(),
        "as root the BPF-LSM policy must be known: {:?}",
        before.note
    );

    let cg_root = cgroup2_mount().expect("a cgroup2 mount for the test program");
    let cg = cg_root.join(format!("ckpt-lsm-labels-test-{}", std::process::id()));
    std::fs::create_dir(&cg).unwrap();
    let result = std::panic::catch_unwind(|| {
        let dir = std::fs::File::open(&cg).unwrap();
        let prog =
            bpf::load_allow_all_cgroup_skb("ckpt_test_skb").expect("load cgroup_skb program");
        let link = bpf::link_to_cgroup(&prog, &dir, bpf::BPF_CGROUP_INET_EGRESS)
            .expect("link program to cgroup");
        // Egress (1), not ingress (0): a non-zero attach type proves the
        // link info offset is read, not a zeroed buffer.
        let live = bpf::enumerate_live().expect("enumerate links");
        let p = live
            .progs
            .values()
            .find(|p| p.name == "ckpt_test_skb")
            .expect("our program is enumerated");
        assert_eq!(p.prog_type, bpf::BPF_PROG_TYPE_CGROUP_SKB);
        let l = live
            .links
            .iter()
            .find(|l| l.prog_id == p.id)
            .expect("our link is enumerated");
        assert_eq!(l.link_type, bpf::BPF_LINK_TYPE_CGROUP);
        assert_eq!(l.attach_type, Some(bpf::BPF_CGROUP_INET_EGRESS));
        // The instructions come back as loaded: r0 = 1; exit.
        let with_insns = bpf::read_program(p.id, true)
            .unwrap()
            .expect("program still loaded");
        assert_eq!(
            with_insns.xlated,
            [0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(with_insns.tag, p.tag);
        let sel = bpf::select_lsm_programs(&live.links, &live.progs, &mut |_| None).unwrap();
        assert!(
            sel.iter().all(|s| s.prog_id != p.id),
            "a cgroup_skb program is not BPF-LSM policy"
        );
        let during = fingerprint_lsm(&HostView::live(), "bpf");
        assert_eq!(
            during, before,
            "a non-LSM program must not move the bpf fingerprint"
        );
        drop(link);
    });
    std::fs::remove_dir(&cg).unwrap();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn bpf_fingerprint_without_cap_sys_admin_is_unknown_with_reason_root() {
    if !is_root() {
        return;
    }
    // Capabilities are per thread: drop CAP_SYS_ADMIN in a fresh thread only.
    let f = std::thread::spawn(|| {
        caps::drop(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_ADMIN,
        )
        .unwrap();
        fingerprint_lsm(&HostView::live(), "bpf")
    })
    .join()
    .unwrap();
    assert_eq!(f.digest, None);
    assert!(
        f.note.as_deref().unwrap().contains("CAP_SYS_ADMIN"),
        "{:?}",
        f.note
    );
}

#[test]
fn a_live_landlock_ruleset_fd_is_seen_as_a_sandbox_hint() {
    let stack = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    if !stack.split(',').any(|l| l.trim() == "landlock") {
        if let Some(expect) = std::env::var_os("CKPT_TEST_EXPECT_STACK") {
            assert!(
                !expect.to_string_lossy().contains("landlock"),
                "Landlock expected but not active"
            );
        }
        return;
    }
    use std::os::fd::AsRawFd;
    let pid = std::process::id() as i32;
    let fd = lsm_labels::taskstate::create_landlock_ruleset_fd().expect("landlock_create_ruleset");
    let st = lsm_labels::taskstate::read_task_state(&HostView::live(), pid).unwrap();
    assert!(
        st.sandbox.landlock_ruleset_fds.contains(&fd.as_raw_fd()),
        "{:?}",
        st.sandbox
    );
    assert!(st.sandbox.sandboxed);
    assert!(st.to_string().contains("Landlock ruleset"), "{st}");
}

#[test]
fn another_process_with_no_new_privs_is_read_as_such() {
    if std::process::Command::new("setpriv")
        .arg("--help")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CKPT_TEST_EXPECT_ROOT").is_none(),
            "setpriv (util-linux) is needed in CI"
        );
        return;
    }
    let mut child = std::process::Command::new("setpriv")
        .args(["--nnp", "sleep", "30"])
        .spawn()
        .expect("spawn setpriv --nnp sleep");
    let pid = child.id() as i32;
    // Wait until the exec happened (comm becomes "sleep").
    for _ in 0..200 {
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let st = lsm_labels::taskstate::read_task_state(&HostView::live(), pid);
    child.kill().unwrap();
    child.wait().unwrap();
    let st = st.unwrap();
    assert_eq!(st.threads.len(), 1);
    let t = &st.threads[0];
    assert!(t.no_new_privs);
    assert_eq!(t.creds.uids[0], nix::unistd::getuid().as_raw());
    assert!(
        !st.sandbox.sandboxed,
        "nnp alone is not a sandbox: {:?}",
        st.sandbox
    );
    assert!(st.to_string().contains("no_new_privs: yes"));
}
