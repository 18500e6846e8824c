//! Unit tests of the restore-side security steps against a recording fake
//! tracer: the exact system calls, their order and their arguments.

use super::*;
use crate::ptrace::Regs;
use lsm_labels::task::CapSets;

const BASE: u64 = 0x7000_0000;
const MEM: TaskMemory = TaskMemory {
    addr: BASE,
    len: 64 << 10,
};

/// Records each injected call; answers 0 unless told otherwise; `capget`
/// writes `perm` as the permitted (and effective) set.
struct Fake {
    calls: Vec<(i64, Vec<u64>)>,
    mem: Vec<u8>,
    perm: u64,
    /// (syscall nr, first argument) -> answer.
    answers: Vec<((i64, u64), i64)>,
    /// The memory each call pointed at, copied when it was made.
    snaps: Vec<Vec<u8>>,
    fsids: [u64; 2],
}

impl Fake {
    fn new(perm: u64) -> Fake {
        Fake {
            calls: vec![],
            mem: vec![0; 64 << 10],
            perm,
            answers: vec![],
            snaps: vec![],
            fsids: [0, 0],
        }
    }
    fn nrs(&self) -> Vec<i64> {
        self.calls.iter().map(|c| c.0).collect()
    }
    fn bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let o = (addr - BASE) as usize;
        self.mem[o..o + len].to_vec()
    }
    fn prctls(&self) -> Vec<Vec<u64>> {
        self.calls
            .iter()
            .filter(|c| c.0 == libc::SYS_prctl)
            .map(|c| c.1.clone())
            .collect()
    }
}

impl Tracer for Fake {
    fn pid(&self) -> i32 {
        500
    }
    fn regs(&self) -> Result<Regs, TraceError> {
        unimplemented!()
    }
    fn set_regs(&mut self, _: &Regs) -> Result<(), TraceError> {
        Ok(())
    }
    fn syscall(&mut self, nr: i64, args: &[u64]) -> Result<i64, TraceError> {
        self.calls.push((nr, args.to_vec()));
        let snap = match nr {
            libc::SYS_capset => self.bytes(args[1], 24),
            libc::SYS_openat => self.bytes(args[1], 64),
            libc::SYS_write => self.bytes(args[1], args[2] as usize),
            libc::SYS_seccomp => {
                let fprog = self.bytes(args[2], 16);
                let n = u16::from_le_bytes([fprog[0], fprog[1]]) as usize;
                let at = u64::from_le_bytes(fprog[8..16].try_into().unwrap());
                [fprog, self.bytes(at, n * 8)].concat()
            }
            _ => vec![],
        };
        self.snaps.push(snap);
        if nr == libc::SYS_setfsuid || nr == libc::SYS_setfsgid {
            let i = usize::from(nr == libc::SYS_setfsgid);
            let old = self.fsids[i];
            if args[0] != u64::from(u32::MAX) {
                self.fsids[i] = args[0];
            }
            return Ok(old as i64);
        }
        if nr == libc::SYS_capget {
            let o = (args[1] - BASE) as usize;
            let p = self.perm;
            for (i, w) in [p, p, 0, p >> 32, p >> 32, 0].iter().enumerate() {
                self.mem[o + i * 4..o + i * 4 + 4].copy_from_slice(&(*w as u32).to_le_bytes());
            }
        }
        let key = (nr, args.first().copied().unwrap_or(0));
        if let Some((_, a)) = self.answers.iter().find(|(k, _)| *k == key) {
            return Ok(*a);
        }
        Ok(0)
    }
    fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<(), TraceError> {
        let o = (addr - BASE) as usize;
        buf.copy_from_slice(&self.mem[o..o + buf.len()]);
        Ok(())
    }
    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), TraceError> {
        let o = (addr - BASE) as usize;
        self.mem[o..o + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn set_syscall_ip(&mut self, _: u64) {}
}

const ROOT_CAPS: u64 = 0x1ff_feff_ffff;

fn root() -> TaskCreds {
    TaskCreds {
        uids: [0; 4],
        gids: [0; 4],
        groups: vec![0],
        caps: CapSets {
            permitted: ROOT_CAPS,
            effective: ROOT_CAPS,
            bounding: ROOT_CAPS,
            ..Default::default()
        },
        securebits: 0,
    }
}

fn nobody_plan() -> TaskPlan {
    TaskPlan {
        tid: 500,
        creds: TaskCreds {
            uids: [65534; 4],
            gids: [65534; 4],
            groups: vec![],
            caps: CapSets::default(),
            securebits: 0,
        },
        creds_from_image: true,
        creds_changes: vec![],
        labels: vec![],
        no_new_privs: true,
        seccomp: SeccompMode::Disabled,
        seccomp_filters: vec![],
        rlimits: vec![],
        personality: 0,
    }
}

/// Decodes the data of capset call `i`: (eff, perm, inh).
fn capset_args(f: &Fake, i: usize) -> (u64, u64, u64) {
    assert_eq!(f.calls[i].0, libc::SYS_capset);
    let b = &f.snaps[i];
    let w = |i: usize| u64::from(u32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap()));
    (w(0) | w(3) << 32, w(1) | w(4) << 32, w(2) | w(5) << 32)
}

#[test]
fn root_to_nobody_keeps_caps_then_sets_ids_in_kernel_order() {
    let mut f = Fake::new(ROOT_CAPS);
    let id = apply_identity(&mut f, &nobody_plan(), &root(), MEM).unwrap();
    assert_eq!(id.permitted, ROOT_CAPS);
    assert_eq!(
        f.nrs(),
        vec![
            libc::SYS_prctl,     // PR_SET_KEEPCAPS
            libc::SYS_setgroups, // groups [0] -> []
            libc::SYS_setresgid,
            libc::SYS_setfsgid,
            libc::SYS_setresuid,
            libc::SYS_setfsuid,
            libc::SYS_setfsgid, // read back
            libc::SYS_setfsuid, // read back
            libc::SYS_capget,
            libc::SYS_prctl, // ambient clear
            libc::SYS_capset,
        ]
    );
    assert_eq!(f.calls[0].1, vec![PR_SET_KEEPCAPS, 1, 0, 0, 0]);
    assert_eq!(f.calls[1].1, vec![0, 0], "setgroups(0, NULL)");
    assert_eq!(f.calls[2].1, vec![65534, 65534, 65534]);
    assert_eq!(f.calls[3].1, vec![65534]);
    assert_eq!(f.calls[4].1, vec![65534, 65534, 65534]);
    assert_eq!(f.calls[6].1, vec![u64::from(u32::MAX)]);
    assert_eq!(
        f.calls[9].1,
        vec![PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0]
    );
    let hdr = f.bytes(f.calls[10].1[0], 8);
    assert_eq!(&hdr[..4], &CAP_VERSION_3.to_le_bytes());
    // Everything permitted stays effective until the labels are written.
    assert_eq!(capset_args(&f, 10), (ROOT_CAPS, ROOT_CAPS, 0));

    // Then files are opened with the image's (empty) effective set.
    let mut f2 = Fake::new(ROOT_CAPS);
    enter_restored_effective(&mut f2, &nobody_plan(), &id, MEM).unwrap();
    assert_eq!(capset_args(&f2, 0), (0, ROOT_CAPS, 0));
}

#[test]
fn groups_and_ambient_are_set_as_recorded() {
    let mut plan = nobody_plan();
    plan.creds.groups = vec![27, 4];
    plan.creds.caps = CapSets {
        inheritable: 1 << 10,
        permitted: 1 << 10,
        effective: 1 << 10,
        bounding: ROOT_CAPS,
        ambient: 1 << 10,
    };
    let mut f = Fake::new(ROOT_CAPS);
    apply_identity(&mut f, &plan, &root(), MEM).unwrap();
    let sg = f.calls.iter().find(|c| c.0 == libc::SYS_setgroups).unwrap();
    assert_eq!(sg.1[0], 2);
    assert_eq!(
        f.bytes(sg.1[1], 8),
        [27u32.to_le_bytes(), 4u32.to_le_bytes()].concat()
    );
    let capset = f.nrs().iter().position(|&n| n == libc::SYS_capset).unwrap();
    assert_eq!(capset_args(&f, capset), (ROOT_CAPS, ROOT_CAPS, 1 << 10));
    assert_eq!(
        f.calls.last().unwrap().1,
        vec![PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, 10, 0, 0]
    );
}

#[test]
fn no_keepcaps_when_staying_root_or_without_root() {
    let mut plan = nobody_plan();
    plan.creds = root();
    let mut f = Fake::new(ROOT_CAPS);
    apply_identity(&mut f, &plan, &root(), MEM).unwrap();
    assert!(!f.prctls().iter().any(|a| a[0] == PR_SET_KEEPCAPS));
    assert!(
        !f.nrs().contains(&libc::SYS_setgroups),
        "groups unchanged: no setgroups"
    );
}

#[test]
fn a_refused_setresuid_refuses_the_restore() {
    let mut f = Fake::new(0);
    f.answers
        .push(((libc::SYS_setresuid, 65534), -(libc::EPERM as i64)));
    let e = apply_identity(&mut f, &nobody_plan(), &root(), MEM).unwrap_err();
    assert!(e.is_refusal());
    assert!(
        e.to_string().contains("setresuid(65534, 65534, 65534)"),
        "{e}"
    );
}

#[test]
fn labels_are_written_by_the_task_current_first() {
    let mut plan = nobody_plan();
    plan.labels = vec![
        TaskLabel {
            lsm: "selinux".into(),
            attr: "fscreate".into(),
            value: b"system_u:object_r:tmp_t:s0".to_vec(),
        },
        TaskLabel {
            lsm: "selinux".into(),
            attr: "current".into(),
            value: b"system_u:system_r:foo_t:s0".to_vec(),
        },
    ];
    let mut f = Fake::new(ROOT_CAPS);
    f.answers
        .push(((libc::SYS_openat, libc::AT_FDCWD as u64), 9));
    f.answers.push(((libc::SYS_write, 9), 26));
    apply_labels(&mut f, &plan, MEM).unwrap();
    assert_eq!(
        f.nrs(),
        vec![
            libc::SYS_openat,
            libc::SYS_write,
            libc::SYS_close,
            libc::SYS_openat,
            libc::SYS_write,
            libc::SYS_close
        ]
    );
    assert_eq!(&f.snaps[0][..31], b"/proc/thread-self/attr/current\0");
    assert_eq!(&f.snaps[3][..32], b"/proc/thread-self/attr/fscreate\0");
    assert_eq!(f.calls[0].1[2], (libc::O_WRONLY | libc::O_CLOEXEC) as u64);
    assert_eq!(f.snaps[1], b"system_u:system_r:foo_t:s0");
    assert_eq!(f.snaps[4], b"system_u:object_r:tmp_t:s0");
}

#[test]
fn a_denied_label_refuses_naming_it() {
    let mut plan = nobody_plan();
    plan.labels = vec![TaskLabel {
        lsm: "smack".into(),
        attr: "current".into(),
        value: b"Secret".to_vec(),
    }];
    let mut f = Fake::new(ROOT_CAPS);
    f.answers
        .push(((libc::SYS_openat, libc::AT_FDCWD as u64), 9));
    f.answers
        .push(((libc::SYS_write, 9), -(libc::EPERM as i64)));
    let e = apply_labels(&mut f, &plan, MEM).unwrap_err();
    assert!(e.is_refusal());
    let msg = e.to_string();
    assert!(
        msg.contains("\"Secret\"") && msg.contains("smack/current"),
        "{msg}"
    );
    assert_eq!(f.nrs().last(), Some(&libc::SYS_close), "the fd is closed");
}

#[test]
fn apparmor_labels_become_changeprofile_commands() {
    let l = TaskLabel {
        lsm: "apparmor".into(),
        attr: "current".into(),
        value: b"myprof (enforce)".to_vec(),
    };
    assert_eq!(label_write_bytes(&l), b"changeprofile myprof");
    assert_eq!(label_path(&l), "/proc/thread-self/attr/apparmor/current");
}

#[test]
fn confinement_order_nnp_bounding_securebits_caps_then_seccomp_last() {
    let mut plan = nobody_plan();
    plan.creds.caps.bounding = ROOT_CAPS & !(1 << 21); // drop cap_sys_admin only
    plan.seccomp = SeccompMode::Filter;
    let prog: Vec<u8> = vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f]; // ret ALLOW
    plan.seccomp_filters = vec![prog.clone(), prog.clone()];
    let id = Identity {
        permitted: ROOT_CAPS,
    };
    let mut f = Fake::new(ROOT_CAPS);
    f.answers.push(((libc::SYS_prctl, PR_GET_NO_NEW_PRIVS), 1));
    f.answers.push(((libc::SYS_prctl, PR_CAPBSET_READ), 1));
    apply_confinement(
        &mut f,
        &plan,
        &id,
        MEM,
        ConfinementOptions {
            tsync: false,
            last_cap: 40,
        },
    )
    .unwrap();
    let nrs = f.nrs();
    // nnp set and read back first.
    assert_eq!(f.calls[0].1, vec![PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0]);
    assert_eq!(f.calls[1].1[0], PR_GET_NO_NEW_PRIVS);
    // CAP_SETPCAP raised for the drops, nothing else.
    assert_eq!(nrs[2], libc::SYS_capset);
    assert_eq!(capset_args(&f, 2), (1 << 8, ROOT_CAPS, 0));
    // Only caps outside the image's bounding set are read/dropped: 21 and
    // 24 (ROOT_CAPS lacks it, so the image does too).
    let drops: Vec<u64> = f
        .prctls()
        .iter()
        .filter(|a| a[0] == PR_CAPBSET_DROP)
        .map(|a| a[1])
        .collect();
    assert_eq!(drops, vec![21, 24]);
    // The two filters are the last calls, after the final capset, oldest first.
    let n = nrs.len();
    assert_eq!(
        &nrs[n - 3..],
        &[libc::SYS_capset, libc::SYS_seccomp, libc::SYS_seccomp]
    );
    assert_eq!(capset_args(&f, n - 3), (0, 0, 0));
    let s = &f.calls[n - 1].1;
    assert_eq!((s[0], s[1]), (SECCOMP_SET_MODE_FILTER, 0));
    let snap = &f.snaps[n - 1];
    assert_eq!(u16::from_le_bytes([snap[0], snap[1]]), 1);
    assert_eq!(&snap[16..], &prog[..]);
}

#[test]
fn filters_without_nnp_are_installed_with_cap_sys_admin_before_the_final_capset() {
    let mut plan = nobody_plan();
    plan.no_new_privs = false;
    plan.creds.caps.bounding = ROOT_CAPS;
    plan.seccomp = SeccompMode::Filter;
    plan.seccomp_filters = vec![vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f]];
    let id = Identity {
        permitted: ROOT_CAPS,
    };
    let mut f = Fake::new(ROOT_CAPS);
    apply_confinement(
        &mut f,
        &plan,
        &id,
        MEM,
        ConfinementOptions {
            tsync: true,
            last_cap: 40,
        },
    )
    .unwrap();
    assert!(
        !f.prctls().iter().any(|a| a[0] == PR_SET_NO_NEW_PRIVS),
        "no_new_privs is not invented"
    );
    let n = f.calls.len();
    assert_eq!(
        f.nrs()[n - 3..],
        [libc::SYS_capset, libc::SYS_seccomp, libc::SYS_capset]
    );
    assert_eq!(capset_args(&f, n - 3), (1 << 21, ROOT_CAPS, 0));
    assert_eq!(f.calls[n - 2].1[1], SECCOMP_FILTER_FLAG_TSYNC);
    assert_eq!(capset_args(&f, n - 1), (0, 0, 0));
}

#[test]
fn a_bounding_set_that_cannot_be_dropped_refuses() {
    let plan = nobody_plan();
    let id = Identity { permitted: 0 };
    let mut f = Fake::new(0);
    f.answers.push(((libc::SYS_prctl, PR_GET_NO_NEW_PRIVS), 1));
    f.answers.push(((libc::SYS_prctl, PR_CAPBSET_READ), 1));
    f.answers
        .push(((libc::SYS_prctl, PR_CAPBSET_DROP), -(libc::EPERM as i64)));
    let e = apply_confinement(
        &mut f,
        &plan,
        &id,
        MEM,
        ConfinementOptions {
            tsync: false,
            last_cap: 40,
        },
    )
    .unwrap_err();
    assert!(e.is_refusal());
    assert!(e.to_string().contains("bounding set"), "{e}");
    assert!(e.to_string().contains("never dropped"), "{e}");
}

#[test]
fn a_refused_filter_refuses_the_restore() {
    let mut plan = nobody_plan();
    plan.seccomp = SeccompMode::Filter;
    plan.seccomp_filters = vec![vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f]];
    plan.creds.caps.bounding = ROOT_CAPS;
    let id = Identity {
        permitted: ROOT_CAPS,
    };
    let mut f = Fake::new(ROOT_CAPS);
    f.answers.push(((libc::SYS_prctl, PR_GET_NO_NEW_PRIVS), 1));
    f.answers.push((
        (libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER),
        -(libc::EACCES as i64),
    ));
    let e = apply_confinement(
        &mut f,
        &plan,
        &id,
        MEM,
        ConfinementOptions {
            tsync: false,
            last_cap: 40,
        },
    )
    .unwrap_err();
    assert!(e.is_refusal());
    assert!(e.to_string().contains("seccomp filter 1 of 1"), "{e}");
}

#[test]
fn nnp_that_does_not_stick_is_a_mismatch() {
    let plan = nobody_plan();
    let mut f = Fake::new(0);
    let e = apply_confinement(
        &mut f,
        &plan,
        &Identity { permitted: 0 },
        MEM,
        ConfinementOptions {
            tsync: false,
            last_cap: 40,
        },
    )
    .unwrap_err();
    assert!(matches!(e, SecurityApplyError::Mismatch { .. }));
}

#[test]
fn raised_effective_is_put_back() {
    let plan = nobody_plan();
    let id = Identity {
        permitted: ROOT_CAPS,
    };
    let mut f = Fake::new(ROOT_CAPS);
    let r: Result<i64, ()> = with_effective(&mut f, &plan, &id, MEM, 1 << 40 | 1 << 24, |t| {
        t.syscall(libc::SYS_prctl, &[35, 14]).map_err(|_| ())
    })
    .unwrap();
    assert_eq!(r, Ok(0));
    assert_eq!(
        f.nrs(),
        vec![libc::SYS_capset, libc::SYS_prctl, libc::SYS_capset]
    );
    // cap 24 (sys_resource) is not in P': not raised.
    assert_eq!(capset_args(&f, 0).0, 1 << 40);
    assert_eq!(capset_args(&f, 2).0, 0);
}

#[test]
fn status_is_verified_against_the_plan() {
    let plan = nobody_plan();
    let ok = "Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nGroups:\t\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t0\nSeccomp_filters:\t0\n";
    verify_status(&plan, ok, 0, 0).unwrap();
    let e =
        verify_status(&plan, &ok.replace("NoNewPrivs:\t1", "NoNewPrivs:\t0"), 0, 0).unwrap_err();
    assert!(e.to_string().contains("no_new_privs"));
    let e = verify_status(
        &plan,
        &ok.replace("CapBnd:\t0000000000000000", "CapBnd:\t0000000000000001"),
        0,
        0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("CapBnd"));
}
