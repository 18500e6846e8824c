//! Tests of [`decide`]: one per rule of DESIGN 3, and a table of scenarios
//! run under all 8 combinations of `--keep-lsm` × `--require-same-policy`
//! × `--strict-creds`, each asserting the outcome and the specific reason.

use super::*;
use crate::creds_rules::{securebits, CredsComponent, CredsRule};
use crate::principal::ImagePrincipal;
use crate::profile::{Digest, LsmEntry, PolicyComponent, PolicyFingerprint};
use crate::task::CapSets;

// ---------------------------------------------------------------- fixtures

const CAP_SYS_MODULE: u32 = 16;

fn fp(tag: &str) -> PolicyFingerprint {
    PolicyFingerprint {
        digest: Some(Digest::of(tag.as_bytes())),
        version: None,
        components: vec![PolicyComponent {
            name: format!("{tag}/policy"),
            digest: Digest::of(tag.as_bytes()),
        }],
        note: None,
    }
}

fn lsm(name: &str, f: PolicyFingerprint) -> LsmEntry {
    LsmEntry {
        name: name.into(),
        id: None,
        fingerprint: f,
    }
}

fn profile(lsms: &[(&str, &str)]) -> HostProfile {
    HostProfile {
        lsms: lsms.iter().map(|(n, t)| lsm(n, fp(t))).collect(),
        kernel_release: "6.18.0".into(),
        arch: "x86_64".into(),
        ..Default::default()
    }
}

/// The dumping host: capability then selinux (the brief's example stack).
fn selinux_host() -> HostProfile {
    profile(&[("capability", "cap"), ("selinux", "pol-1"), ("bpf", "none")])
}

fn root_creds() -> TaskCreds {
    TaskCreds {
        uids: [0; 4],
        gids: [0; 4],
        groups: vec![0],
        caps: CapSets {
            inheritable: 0,
            permitted: cap::FULL_SET,
            effective: cap::FULL_SET,
            bounding: cap::FULL_SET,
            ambient: 0,
        },
        securebits: 0,
    }
}

fn user_creds(uid: u32) -> TaskCreds {
    TaskCreds {
        uids: [uid; 4],
        gids: [uid; 4],
        groups: vec![uid],
        caps: CapSets {
            bounding: cap::FULL_SET,
            ..Default::default()
        },
        securebits: 0,
    }
}

/// The caller's own label: the same domain as the default task's.
fn caller_labels() -> Vec<TaskLabel> {
    vec![TaskLabel {
        lsm: String::new(),
        attr: "current".into(),
        value: b"unconfined_u:unconfined_r:unconfined_t:s0\0".to_vec(),
    }]
}

fn root_caller() -> CallerContext {
    CallerContext {
        creds: root_creds(),
        no_new_privs: false,
        initial_user_ns: true,
        id_limits: None,
        labels: caller_labels(),
        rlimits: vec![nofile(1024, 4096)],
    }
}

/// An unprivileged user whose ckpt carries only CAP_CHECKPOINT_RESTORE
/// (file capability), so that PID ownership does not hide the creds rules.
fn user_caller(uid: u32) -> CallerContext {
    let mut creds = user_creds(uid);
    creds.caps.permitted = 1 << cap::CHECKPOINT_RESTORE;
    creds.caps.effective = 1 << cap::CHECKPOINT_RESTORE;
    CallerContext {
        creds,
        no_new_privs: false,
        initial_user_ns: true,
        id_limits: None,
        labels: caller_labels(),
        rlimits: vec![nofile(1024, 4096)],
    }
}

fn task(tid: i32, creds: TaskCreds, label: &str) -> TaskSecurity {
    TaskSecurity {
        tid,
        creds,
        labels: vec![TaskLabel {
            lsm: String::new(),
            attr: "current".into(),
            value: format!("{label}\0").into_bytes(),
        }],
        no_new_privs: false,
        seccomp: SeccompMode::Disabled,
        seccomp_filters: vec![],
        personality: 0,
    }
}

/// Labels containing "bad" are invalid, "unknowable" cannot be checked.
fn validity(_lsm: &str, _attr: &str, value: &[u8]) -> LabelCheck {
    let v = String::from_utf8_lossy(value);
    if v.contains("bad") {
        LabelCheck::Invalid {
            why: "context not defined in the loaded policy".into(),
        }
    } else if v.contains("unknowable") {
        LabelCheck::Unknown {
            why: "selinuxfs not mounted".into(),
        }
    } else {
        LabelCheck::Valid
    }
}

/// Owned inputs, so tests can tweak any part before deciding.
struct Case {
    image: HostProfile,
    tasks: Vec<TaskSecurity>,
    host: HostProfile,
    caller: CallerContext,
    integrity: IntegrityStatus,
    signature: SignatureStatus,
    origin: ImageOrigin,
    rlimits: Vec<ProcessRlimits>,
    flags: RestoreFlags,
}

const RLIMIT_NOFILE: u32 = 7;

fn nofile(soft: u64, hard: u64) -> Rlimit {
    Rlimit {
        resource: RLIMIT_NOFILE,
        soft,
        hard,
    }
}

fn owner(uid: u32) -> crate::principal::FileOwner {
    crate::principal::FileOwner {
        uid,
        name: Some(format!("user{uid}")),
        gid: Some(uid),
        groups: vec![uid],
    }
}

/// An image file owned by `uid` with mode `mode`.
fn file_of(uid: u32, mode: u32) -> ImageOrigin {
    ImageOrigin::File {
        owner: owner(uid),
        mode,
    }
}

impl Case {
    fn new() -> Self {
        Case {
            image: selinux_host(),
            tasks: vec![task(
                4242,
                user_creds(1000),
                "unconfined_u:unconfined_r:unconfined_t:s0",
            )],
            host: selinux_host(),
            caller: root_caller(),
            integrity: IntegrityStatus::Ok,
            signature: SignatureStatus::Unsigned,
            // Root's own image file: its principal may set anything.
            origin: file_of(0, 0o600),
            rlimits: Vec::new(),
            flags: RestoreFlags::default(),
        }
    }

    fn decide(&self) -> RestoreVerdict {
        decide(&VerdictInput {
            image: &self.image,
            tasks: &self.tasks,
            host: &self.host,
            caller: &self.caller,
            labels: &validity,
            integrity: &self.integrity,
            signature: &self.signature,
            origin: &self.origin,
            rlimits: &self.rlimits,
            flags: &self.flags,
        })
    }
}

fn refused_with(v: &RestoreVerdict, pred: impl Fn(&Refusal) -> bool) -> bool {
    v.outcome == Outcome::Refused && v.plan.is_none() && v.refusals.iter().any(pred)
}

// ------------------------------------------------ 8 flag combos × scenarios

#[derive(Clone, Copy, Debug)]
struct Combo {
    keep_lsm: bool,
    same_policy: bool,
    strict: bool,
}

fn combos() -> Vec<Combo> {
    let mut v = Vec::new();
    for keep_lsm in [false, true] {
        for same_policy in [false, true] {
            for strict in [false, true] {
                v.push(Combo {
                    keep_lsm,
                    same_policy,
                    strict,
                });
            }
        }
    }
    v
}

/// What one scenario must give under one combination.
enum Expect {
    /// Allowed, and (when given) a warning / notice matching the predicate.
    Allowed {
        warning: Option<fn(&Warning) -> bool>,
        notice: Option<fn(&Notice) -> bool>,
    },
    /// Refused with a reason matching the predicate, and with exit code 3.
    Refused(fn(&Refusal) -> bool),
}

const ALLOWED: Expect = Expect::Allowed {
    warning: None,
    notice: None,
};

struct Scenario {
    name: &'static str,
    setup: fn(&mut Case),
    expect: fn(Combo) -> Expect,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "same host, root caller",
            setup: |_| {},
            expect: |_| ALLOWED,
        },
        Scenario {
            name: "changed policy",
            setup: |c| {
                c.host = profile(&[("capability", "cap"), ("selinux", "pol-2"), ("bpf", "none")])
            },
            expect: |k| {
                if k.same_policy {
                    Expect::Refused(
                        |r| matches!(r, Refusal::PolicyChanged { lsm, .. } if lsm == "selinux"),
                    )
                } else {
                    Expect::Allowed {
                        warning: Some(
                            |w| matches!(w, Warning::PolicyChanged { lsm, .. } if lsm == "selinux"),
                        ),
                        notice: None,
                    }
                }
            },
        },
        Scenario {
            name: "different stack",
            setup: |c| {
                c.host = profile(&[("capability", "cap"), ("apparmor", "aa"), ("bpf", "none")])
            },
            expect: |k| {
                if k.keep_lsm {
                    Expect::Refused(|r| {
                        matches!(
                            r,
                            Refusal::StackMismatch {
                                required_by: StackRequirement::KeepLsm,
                                ..
                            }
                        )
                    })
                } else if k.same_policy {
                    Expect::Refused(|r| {
                        matches!(
                            r,
                            Refusal::StackMismatch {
                                required_by: StackRequirement::RequireSamePolicy,
                                ..
                            }
                        )
                    })
                } else {
                    // 3.2: the caller has no SELinux domain on this host, so
                    // the task's domain would be given up.
                    Expect::Refused(|r| {
                        matches!(
                            r,
                            Refusal::ConfiningLabelDropped { tid: 4242, lsm, caller_label: None, .. }
                                if lsm == "selinux"
                        )
                    })
                }
            },
        },
        Scenario {
            name: "unknown fingerprint on the host",
            setup: |c| {
                c.host.lsms[2].fingerprint = PolicyFingerprint {
                    note: Some("cannot list BPF programs: EPERM".into()),
                    ..Default::default()
                }
            },
            expect: |k| {
                if k.same_policy {
                    Expect::Refused(
                        |r| matches!(r, Refusal::PolicyUnknown { lsm, .. } if lsm == "bpf"),
                    )
                } else {
                    Expect::Allowed {
                        warning: Some(
                            |w| matches!(w, Warning::PolicyUnknown { lsm, .. } if lsm == "bpf"),
                        ),
                        notice: None,
                    }
                }
            },
        },
        Scenario {
            name: "unprivileged caller, own process",
            setup: |c| c.caller = user_caller(1000),
            expect: |_| ALLOWED,
        },
        Scenario {
            name: "unprivileged caller, image of a root process",
            setup: |c| {
                c.caller = user_caller(1000);
                c.tasks[0].creds = root_creds();
            },
            expect: |k| {
                if k.strict {
                    Expect::Refused(|r| {
                        matches!(
                            r,
                            Refusal::CredsNotRestorable { change, .. }
                                if change.component == CredsComponent::Uids
                                    && change.rule == CredsRule::NeedsCapSetuid
                        )
                    })
                } else {
                    Expect::Allowed {
                        warning: None,
                        notice: Some(|n| {
                            matches!(
                                n,
                                Notice::CredsRederived { change, .. }
                                    if change.component == CredsComponent::PermittedCaps
                            )
                        }),
                    }
                }
            },
        },
        Scenario {
            name: "root caller, image of another user's process",
            setup: |c| c.tasks[0].creds = user_creds(1234),
            expect: |_| ALLOWED,
        },
        Scenario {
            name: "invalid label",
            setup: |c| c.tasks[0].labels[0].value = b"bad_u:bad_r:bad_t:s0\n".to_vec(),
            expect: |k| {
                if k.keep_lsm {
                    Expect::Refused(|r| {
                        matches!(
                            r,
                            Refusal::LabelInvalid { tid: 4242, lsm, label, .. }
                                if lsm == "selinux" && label == "bad_u:bad_r:bad_t:s0"
                        )
                    })
                } else {
                    // 3.2: another domain than the caller's is confinement.
                    Expect::Refused(|r| {
                        matches!(
                            r,
                            Refusal::ConfiningLabelDropped { tid: 4242, lsm, label, .. }
                                if lsm == "selinux" && label == "bad_u:bad_r:bad_t:s0"
                        )
                    })
                }
            },
        },
        Scenario {
            name: "seccomp filter without nnp, unprivileged caller",
            setup: |c| {
                c.caller = user_caller(1000);
                c.tasks[0].seccomp = SeccompMode::Filter;
                c.tasks[0].seccomp_filters = vec![vec![0; 16]];
            },
            expect: |_| {
                Expect::Refused(|r| {
                    matches!(
                        r,
                        Refusal::SeccompNeedsPrivilege {
                            tid: 4242,
                            filters: 1
                        }
                    )
                })
            },
        },
        Scenario {
            name: "seccomp filter with nnp, unprivileged caller",
            setup: |c| {
                c.caller = user_caller(1000);
                c.tasks[0].no_new_privs = true;
                c.tasks[0].seccomp = SeccompMode::Filter;
                c.tasks[0].seccomp_filters = vec![vec![0; 16]];
            },
            expect: |_| ALLOWED,
        },
    ]
}

#[test]
fn every_scenario_under_every_flag_combination() {
    let mut checked = 0;
    for s in scenarios() {
        for k in combos() {
            let mut case = Case::new();
            (s.setup)(&mut case);
            case.flags.keep_lsm = k.keep_lsm;
            case.flags.require_same_policy = k.same_policy;
            case.flags.strict_creds = k.strict;
            let v = case.decide();
            let ctx = format!("scenario {:?} with {k:?}:\n{v}", s.name);
            match (s.expect)(k) {
                Expect::Allowed { warning, notice } => {
                    assert!(v.allowed(), "expected allowed: {ctx}");
                    assert_eq!(v.exit_code(), 0, "{ctx}");
                    assert!(v.refusals.is_empty(), "{ctx}");
                    let plan = v.plan.as_ref().expect("an allowed verdict has a plan");
                    assert_eq!(plan.tasks.len(), 1, "{ctx}");
                    // 3.2 / 3.3: labels exactly when --keep-lsm.
                    assert_eq!(plan.tasks[0].labels.is_empty(), !k.keep_lsm, "{ctx}");
                    if let Some(w) = warning {
                        assert!(v.warnings.iter().any(w), "missing warning: {ctx}");
                    }
                    if let Some(n) = notice {
                        assert!(v.notices.iter().any(n), "missing notice: {ctx}");
                    }
                }
                Expect::Refused(pred) => {
                    assert!(
                        refused_with(&v, pred),
                        "expected the specific refusal: {ctx}"
                    );
                    assert_eq!(v.exit_code(), 3, "{ctx}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 10 * 8);
}

// ------------------------------------------------------------ 3.1 integrity

#[test]
fn rule_3_1_integrity_failure_refuses_before_anything_else() {
    let mut c = Case::new();
    // Several other rules would refuse too; integrity must be the only reason.
    c.host = profile(&[("apparmor", "aa")]);
    c.flags.keep_lsm = true;
    c.flags.require_signature = true;
    c.integrity = IntegrityStatus::Failed {
        kind: IntegrityFailure::DigestMismatch,
        detail: "section 3 (memory)".into(),
    };
    let v = c.decide();
    assert_eq!(
        v.refusals,
        [Refusal::Integrity {
            kind: IntegrityFailure::DigestMismatch,
            detail: "section 3 (memory)".into()
        }]
    );
    assert!(v.diff.is_none() && v.plan.is_none());
    assert_eq!(v.exit_code(), 1, "a corrupt image is exit 1");
    assert!(v.refusals[0].to_string().contains("section 3 (memory)"));
}

#[test]
fn rule_3_1_bad_signature_is_a_security_refusal() {
    let mut c = Case::new();
    c.integrity = IntegrityStatus::Failed {
        kind: IntegrityFailure::BadSignature,
        detail: "Ed25519 verification failed".into(),
    };
    let v = c.decide();
    assert_eq!(v.refusals.len(), 1);
    assert_eq!(v.exit_code(), 3);
}

#[test]
fn rule_3_1_require_signature_refuses_unsigned_and_untrusted() {
    let mut c = Case::new();
    c.flags.require_signature = true;
    c.host = profile(&[("apparmor", "aa")]); // would refuse later, must not be reached
    c.flags.keep_lsm = true;
    let v = c.decide();
    assert_eq!(
        v.refusals,
        [Refusal::Unsigned {
            required_by: SignatureRequirement::RequireSignature
        }]
    );
    assert_eq!(v.exit_code(), 3);
    assert!(v.refusals[0].to_string().contains("--sign-key"));

    let (k1, k2) = (SignerKey([1; 32]), SignerKey([2; 32]));
    c.signature = SignatureStatus::Signed { key: k1 };
    c.flags.trusted_keys = vec![k2];
    let v = c.decide();
    assert_eq!(
        v.refusals,
        [Refusal::UntrustedSigner {
            key: k1,
            required_by: SignatureRequirement::RequireSignature
        }]
    );
    // The key is named by the fingerprint keygen and inspect print.
    let text = v.refusals[0].to_string();
    assert!(
        text.contains(&image_format::keys::fingerprint_of(&[1; 32])),
        "{text}"
    );
    assert!(!text.contains(&"01".repeat(32)), "{text}");

    let mut c = Case::new();
    c.flags.require_signature = true;
    c.flags.trusted_keys = vec![k2, k1];
    c.signature = SignatureStatus::Signed { key: k1 };
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert!(v.notices.contains(&Notice::SignedByTrustedKey { key: k1 }));
}

#[test]
fn rule_3_1_untrusted_signer_without_require_signature_is_a_warning() {
    let mut c = Case::new();
    c.signature = SignatureStatus::Signed {
        key: SignerKey([7; 32]),
    };
    let v = c.decide();
    assert!(v.allowed());
    assert_eq!(
        v.warnings,
        [Warning::UntrustedSigner {
            key: SignerKey([7; 32])
        }]
    );
}

#[test]
fn another_architecture_is_an_operational_refusal() {
    let mut c = Case::new();
    c.host.arch = "aarch64".into();
    let v = c.decide();
    assert!(refused_with(&v, |r| matches!(
        r,
        Refusal::ArchMismatch { .. }
    )));
    assert_eq!(v.exit_code(), 1);
}

// ------------------------------------------------------------ 3.2 - 3.4 LSM

#[test]
fn rule_3_2_without_keep_lsm_no_label_is_restored() {
    let mut c = Case::new();
    c.host = profile(&[("capability", "cap"), ("apparmor", "aa")]);
    // The caller has no SELinux domain here: the task's is given up explicitly.
    c.flags.lsm_as_caller = true;
    let v = c.decide();
    assert!(v.allowed());
    assert!(v
        .plan
        .as_ref()
        .unwrap()
        .tasks
        .iter()
        .all(|t| t.labels.is_empty()));
    assert!(v
        .warnings
        .iter()
        .any(|w| matches!(w, Warning::StackDiffers { .. })));
}

/// An AppArmor host whose task ran under profile `ckpt_fx`; the caller is
/// unconfined.
fn apparmor_case() -> Case {
    let mut c = Case::new();
    c.image = profile(&[("capability", "cap"), ("apparmor", "aa"), ("bpf", "none")]);
    c.host = c.image.clone();
    c.tasks[0].labels = vec![
        TaskLabel {
            lsm: "".into(),
            attr: "current".into(),
            value: b"ckpt_fx (enforce)\n".to_vec(),
        },
        TaskLabel {
            lsm: "apparmor".into(),
            attr: "current".into(),
            value: b"ckpt_fx (enforce)\n".to_vec(),
        },
    ];
    c.caller.labels = vec![TaskLabel {
        lsm: "apparmor".into(),
        attr: "current".into(),
        value: b"unconfined\n".to_vec(),
    }];
    c
}

#[test]
fn rule_3_2_a_confining_profile_is_not_given_up_silently() {
    let c = apparmor_case();
    let v = c.decide();
    assert_eq!(
        v.refusals,
        [Refusal::ConfiningLabelDropped {
            tid: 4242,
            lsm: "apparmor".into(),
            label: "ckpt_fx (enforce)".into(),
            caller_label: Some("unconfined".into()),
        }]
    );
    assert_eq!(v.exit_code(), 3);
    let msg = v.refusals[0].to_string();
    for way_out in [
        "--keep-lsm",
        "--lsm-as-caller",
        "--lsm-label apparmor:LABEL",
    ] {
        assert!(msg.contains(way_out), "{msg}");
    }
}

#[test]
fn rule_3_2_unconfined_or_the_callers_own_label_is_no_confinement() {
    let mut c = apparmor_case();
    for l in &mut c.tasks[0].labels {
        l.value = b"unconfined\n".to_vec();
    }
    assert!(c.decide().allowed());
    // SELinux: the caller's own domain (Case::new's task and caller).
    assert!(Case::new().decide().allowed());
}

#[test]
fn rule_3_2_lsm_as_caller_lists_each_label_given_up() {
    let mut c = apparmor_case();
    c.flags.lsm_as_caller = true;
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert!(v.plan.as_ref().unwrap().tasks[0].labels.is_empty());
    let given_up = v
        .notices
        .iter()
        .find_map(|n| match n {
            Notice::LabelsGivenUp { labels } => Some(labels.clone()),
            _ => None,
        })
        .expect("a notice listing the labels given up");
    assert_eq!(
        given_up,
        [GivenUpLabel {
            tid: 4242,
            lsm: "apparmor".into(),
            label: "ckpt_fx (enforce)".into()
        }]
    );
    let text = v.to_string();
    assert!(
        text.contains("task 4242 apparmor \"ckpt_fx (enforce)\""),
        "{text}"
    );
}

#[test]
fn rule_3_2_lsm_label_is_checked_and_applied_like_a_kept_one() {
    let mut c = apparmor_case();
    c.flags.lsm_labels = vec!["apparmor:other_profile".parse().unwrap()];
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert_eq!(
        v.plan.as_ref().unwrap().tasks[0].labels,
        [TaskLabel {
            lsm: "apparmor".into(),
            attr: "current".into(),
            value: b"other_profile".to_vec()
        }]
    );
    assert!(v
        .notices
        .iter()
        .any(|n| matches!(n, Notice::LabelsChosen { .. })));
    // Invalid under the current policy: refused, with or without --keep-lsm.
    for keep_lsm in [false, true] {
        c.flags.keep_lsm = keep_lsm;
        c.flags.lsm_labels = vec!["apparmor:bad_profile".parse().unwrap()];
        let v = c.decide();
        assert!(
            refused_with(
                &v,
                |r| matches!(r, Refusal::LabelInvalid { label, .. } if label == "bad_profile")
            ),
            "{v}"
        );
    }
    // An LSM that is not in the stack cannot judge it.
    c.flags.keep_lsm = false;
    c.flags.lsm_labels = vec!["smack:Fx".parse().unwrap()];
    let v = c.decide();
    assert!(refused_with(
        &v,
        |r| matches!(r, Refusal::LabelInvalid { lsm, .. } if lsm == "smack")
    ));
}

#[test]
fn rule_3_3_lsm_label_replaces_the_kept_label_of_its_lsm_only() {
    let mut c = apparmor_case();
    c.flags.keep_lsm = true;
    c.tasks[0].labels.push(TaskLabel {
        lsm: "apparmor".into(),
        attr: "exec".into(),
        value: b"exec_profile".to_vec(),
    });
    c.flags.lsm_labels = vec!["apparmor:other_profile".parse().unwrap()];
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    let labels = &v.plan.as_ref().unwrap().tasks[0].labels;
    let got: Vec<(&str, &[u8])> = labels
        .iter()
        .map(|l| (l.attr.as_str(), l.value.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            ("exec", &b"exec_profile"[..]),
            ("current", &b"other_profile"[..])
        ]
    );
}

#[test]
fn rule_3_3_keep_lsm_message_names_both_stacks_and_the_way_out() {
    let mut c = Case::new();
    c.image = profile(&[("selinux", "s"), ("capability", "cap")]);
    c.host = profile(&[("apparmor", "a"), ("capability", "cap")]);
    c.flags.keep_lsm = true;
    let v = c.decide();
    assert_eq!(
        v.refusals[0].to_string(),
        "refused: --keep-lsm needs the same LSM stack; image has selinux,capability, host has apparmor,capability; restore without --keep-lsm to run with your own labels"
    );
}

#[test]
fn rule_3_3_keep_lsm_refuses_the_same_lsms_in_another_order() {
    let mut c = Case::new();
    c.host = profile(&[("selinux", "pol-1"), ("capability", "cap"), ("bpf", "none")]);
    c.flags.keep_lsm = true;
    let v = c.decide();
    assert!(refused_with(&v, |r| matches!(
        r,
        Refusal::StackMismatch {
            required_by: StackRequirement::KeepLsm,
            ..
        }
    )));
    // Without --keep-lsm the same difference is only reported.
    c.flags.keep_lsm = false;
    assert!(c.decide().allowed());
}

#[test]
fn rule_3_3_keep_lsm_plans_resolved_labels_for_the_task_to_write() {
    let mut c = Case::new();
    c.flags.keep_lsm = true;
    c.tasks[0].labels.extend([
        TaskLabel {
            lsm: "".into(),
            attr: "prev".into(),
            value: b"system_u:system_r:init_t:s0\0".to_vec(),
        },
        TaskLabel {
            lsm: "".into(),
            attr: "exec".into(),
            value: b"\0".to_vec(),
        },
        TaskLabel {
            lsm: "selinux".into(),
            attr: "fscreate".into(),
            value: b"system_u:object_r:tmp_t:s0".to_vec(),
        },
    ]);
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    let labels = &v.plan.as_ref().unwrap().tasks[0].labels;
    assert_eq!(
        labels,
        &[
            TaskLabel {
                lsm: "selinux".into(),
                attr: "fscreate".into(),
                value: b"system_u:object_r:tmp_t:s0".to_vec()
            },
            TaskLabel {
                lsm: "selinux".into(),
                attr: "current".into(),
                value: b"unconfined_u:unconfined_r:unconfined_t:s0".to_vec()
            },
        ],
        "prev is read-only, empty exec is nothing to set, legacy resolves to selinux"
    );
    assert!(v.notices.contains(&Notice::LabelsKept { count: 2 }));
}

#[test]
fn rule_3_3_legacy_label_defers_to_the_lsms_own_attribute() {
    let mut c = Case::new();
    c.flags.keep_lsm = true;
    c.tasks[0].labels.push(TaskLabel {
        lsm: "selinux".into(),
        attr: "current".into(),
        value: b"bad_own_attr".to_vec(),
    });
    let v = c.decide();
    assert!(refused_with(
        &v,
        |r| matches!(r, Refusal::LabelInvalid { label, .. } if label == "bad_own_attr")
    ));
    assert_eq!(v.refusals.len(), 1);
}

#[test]
fn rule_3_3_uncheckable_label_fails_closed() {
    let mut c = Case::new();
    c.flags.keep_lsm = true;
    c.tasks[0].labels[0].value = b"unknowable_t".to_vec();
    let v = c.decide();
    assert!(refused_with(
        &v,
        |r| matches!(r, Refusal::LabelUncheckable { why, .. } if why.contains("selinuxfs"))
    ));
}

#[test]
fn rule_3_4_policy_refusal_names_the_changed_components() {
    let mut c = Case::new();
    c.host.lsms[1].fingerprint = fp("pol-2");
    c.flags.require_same_policy = true;
    let v = c.decide();
    let msg = v.refusals[0].to_string();
    assert!(msg.contains("selinux policy differs"), "{msg}");
    assert!(msg.contains("added: pol-2/policy"), "{msg}");
    assert!(msg.contains("removed: pol-1/policy"), "{msg}");
    assert!(
        msg.contains("restore without --require-same-policy"),
        "{msg}"
    );
}

#[test]
fn rule_3_4_unknown_on_both_sides_still_differs() {
    let mut c = Case::new();
    let unknown = PolicyFingerprint {
        note: Some("not readable".into()),
        ..Default::default()
    };
    c.image.lsms[2].fingerprint = unknown.clone();
    c.host.lsms[2].fingerprint = unknown;
    c.flags.require_same_policy = true;
    let v = c.decide();
    assert!(refused_with(
        &v,
        |r| matches!(r, Refusal::PolicyUnknown { lsm, .. } if lsm == "bpf")
    ));
}

// ------------------------------------------------------------ 3.5 creds

#[test]
fn rule_3_5_root_caller_restores_the_images_creds() {
    let mut c = Case::new();
    c.tasks[0].creds = TaskCreds {
        uids: [1000, 1000, 0, 1000],
        gids: [50, 50, 50, 50],
        groups: vec![4, 24, 27],
        caps: CapSets {
            inheritable: 1 << 10,
            permitted: 1 << 10 | 1 << 12,
            effective: 1 << 10,
            bounding: cap::FULL_SET & !(1 << cap::SYS_ADMIN),
            ambient: 1 << 10,
        },
        securebits: securebits::KEEP_CAPS,
    };
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    let t = &v.plan.as_ref().unwrap().tasks[0];
    assert!(t.creds_from_image);
    assert_eq!(t.creds, c.tasks[0].creds);
}

#[test]
fn rule_3_5_unprivileged_caller_gets_its_own_ids_with_a_notice() {
    let mut c = Case::new();
    c.caller = user_caller(1000);
    c.tasks[0].creds = user_creds(1001);
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    let t = &v.plan.as_ref().unwrap().tasks[0];
    assert!(!t.creds_from_image);
    assert_eq!(t.creds.uids, [1000; 4]);
    assert_eq!(t.creds.gids, [1000; 4]);
    let rederived: Vec<_> = v
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::CredsRederived { change, .. } => Some(change.component),
            _ => None,
        })
        .collect();
    assert_eq!(
        rederived,
        [
            CredsComponent::Uids,
            CredsComponent::Gids,
            CredsComponent::Groups
        ]
    );
    let msg = v
        .notices
        .iter()
        .find(|n| matches!(n, Notice::CredsRederived { .. }))
        .unwrap()
        .to_string();
    assert!(
        msg.contains("uids 1000/1000/1000/1000 instead of the image's 1001/1001/1001/1001"),
        "{msg}"
    );
}

#[test]
fn rule_3_5_result_is_never_more_privileged_than_caller_or_image() {
    let mut c = Case::new();
    let mut caller = user_caller(1000);
    caller.creds.caps.permitted |= 1 << 10; // cap_net_bind_service
    c.caller = caller;
    let mut t = root_creds();
    t.uids = [1000; 4];
    t.gids = [1000; 4];
    t.groups = vec![1000];
    t.caps.permitted = 1 << 12 | 1 << 10; // net_admin + net_bind_service
    t.caps.effective = 1 << 12 | 1 << 10;
    c.tasks[0].creds = t;
    let v = c.decide();
    let creds = &v.plan.as_ref().unwrap().tasks[0].creds;
    assert_eq!(creds.caps.permitted, 1 << 10);
    assert_eq!(creds.caps.effective, 1 << 10);
    c.flags.strict_creds = true;
    let v = c.decide();
    assert!(refused_with(&v, |r| matches!(
        r,
        Refusal::CredsNotRestorable { change, .. } if change.component == CredsComponent::PermittedCaps
    )));
    assert!(
        v.refusals[0].to_string().contains("cap_net_admin"),
        "{}",
        v.refusals[0]
    );
}

// ------------------------------------------------------------ 3.6 confinement

#[test]
fn rule_3_6_plan_always_carries_nnp_seccomp_and_bounding_set() {
    for keep_lsm in [false, true] {
        let mut c = Case::new();
        c.flags.keep_lsm = keep_lsm;
        let t = &mut c.tasks[0];
        t.no_new_privs = true;
        t.seccomp = SeccompMode::Filter;
        t.seccomp_filters = vec![vec![1; 8], vec![2; 24]];
        t.creds.caps.bounding = 1 << 10;
        let v = c.decide();
        let p = &v.plan.as_ref().unwrap().tasks[0];
        assert!(p.no_new_privs);
        assert_eq!(p.seccomp, SeccompMode::Filter);
        assert_eq!(p.seccomp_filters, c.tasks[0].seccomp_filters);
        assert_eq!(p.creds.caps.bounding, 1 << 10);
    }
}

#[test]
fn rule_3_6_strict_mode_is_restored() {
    let mut c = Case::new();
    c.tasks[0].seccomp = SeccompMode::Strict;
    let v = c.decide();
    assert_eq!(v.plan.unwrap().tasks[0].seccomp, SeccompMode::Strict);
}

#[test]
fn rule_3_6_seccomp_without_nnp_is_fine_for_a_caller_with_cap_sys_admin() {
    let mut c = Case::new();
    c.tasks[0].seccomp = SeccompMode::Filter;
    c.tasks[0].seccomp_filters = vec![vec![0; 8]];
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert!(
        !v.plan.unwrap().tasks[0].no_new_privs,
        "nnp is not invented"
    );
}

#[test]
fn rule_3_6_seccomp_state_that_cannot_be_restored_is_refused() {
    let mut c = Case::new();
    c.tasks[0].seccomp = SeccompMode::Filter;
    let v = c.decide();
    assert!(refused_with(&v, |r| matches!(
        r,
        Refusal::SeccompNotCaptured { .. }
    )));
    c.tasks[0].seccomp = SeccompMode::Disabled;
    c.tasks[0].seccomp_filters = vec![vec![0; 8]];
    let v = c.decide();
    assert!(refused_with(&v, |r| matches!(
        r,
        Refusal::SeccompNotCaptured { .. }
    )));
}

#[test]
fn rule_3_6_callers_nnp_is_kept_with_a_warning() {
    let mut c = Case::new();
    c.caller.no_new_privs = true;
    let v = c.decide();
    assert!(v.plan.as_ref().unwrap().tasks[0].no_new_privs);
    assert_eq!(
        v.warnings,
        [Warning::NoNewPrivsInherited { tids: vec![4242] }]
    );
}

#[test]
fn rule_3_6_bounding_set_the_caller_cannot_drop_is_refused_even_without_strict() {
    let mut c = Case::new();
    c.caller = user_caller(1000);
    c.tasks[0].creds.caps.bounding = cap::FULL_SET & !(1 << cap::SYS_ADMIN);
    let v = c.decide();
    assert!(refused_with(&v, |r| matches!(
        r,
        Refusal::BoundingSetNotRestorable { not_dropped, .. } if *not_dropped == 1 << cap::SYS_ADMIN
    )));
    assert!(v.refusals[0].to_string().contains("cap_sys_admin"));
}

#[test]
fn rule_3_6_bounding_set_wider_than_the_callers_is_narrowed() {
    let mut c = Case::new();
    c.caller.creds.caps.bounding = cap::FULL_SET & !(1 << CAP_SYS_MODULE);
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert_eq!(
        v.plan.unwrap().tasks[0].creds.caps.bounding,
        cap::FULL_SET & !(1 << CAP_SYS_MODULE)
    );
    c.flags.strict_creds = true;
    assert!(refused_with(&c.decide(), |r| matches!(
        r,
        Refusal::CredsNotRestorable { change, .. } if change.component == CredsComponent::BoundingSet
    )));
}

#[test]
fn rule_3_6_restricting_securebits_the_caller_cannot_set_are_refused() {
    let mut c = Case::new();
    c.caller = user_caller(1000);
    c.tasks[0].creds.securebits = securebits::NOROOT | securebits::NOROOT_LOCKED;
    let v = c.decide();
    assert!(refused_with(&v, |r| matches!(
        r,
        Refusal::SecurebitsNotRestorable { lost: 3, .. }
    )));
}

#[test]
fn pid_ns_for_an_unprivileged_caller_uses_a_new_user_namespace() {
    let mut c = Case::new();
    let mut caller = user_caller(1000);
    caller.creds.caps = CapSets {
        bounding: cap::FULL_SET,
        ..Default::default()
    };
    c.caller = caller;
    // Without --pid-ns: the PIDs cannot be claimed.
    let v = c.decide();
    assert!(refused_with(
        &v,
        |r| matches!(r, Refusal::PidsNeedCheckpointRestore { tids } if tids == &[4242])
    ));
    assert!(v.refusals[0].to_string().contains("--pid-ns"));
    // CAP_SYS_ADMIN alone also lets the kernel pick PIDs (and --pid-ns then
    // needs no user namespace).
    let mut admin = c.caller.clone();
    admin.creds.caps.permitted = 1 << cap::SYS_ADMIN;
    let mut c2 = Case::new();
    c2.caller = admin;
    c2.tasks[0].creds = c2.caller.creds.clone();
    c2.tasks[0].creds.caps.permitted = 0;
    assert!(c2.decide().allowed(), "{}", c2.decide());
    c2.flags.pid_ns = true;
    let v2 = c2.decide();
    assert!(!v2.plan.as_ref().unwrap().new_user_namespace, "{v2}");
    // With it: allowed, and confinement that needs privileges can be set
    // inside the new namespace.
    c.flags.pid_ns = true;
    let t = &mut c.tasks[0];
    t.seccomp = SeccompMode::Filter;
    t.seccomp_filters = vec![vec![0; 8]];
    t.creds.caps.bounding = 1 << 10;
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    let plan = v.plan.as_ref().unwrap();
    assert!(plan.new_pid_namespace && plan.new_user_namespace);
    assert_eq!(plan.tasks[0].creds.caps.bounding, 1 << 10);
    assert!(v.notices.contains(&Notice::NewUserNamespace {
        uid: 1000,
        gid: 1000
    }));
    // Another user's ids are not mapped there: re-derived.
    c.tasks[0].creds.uids = [0; 4];
    let v = c.decide();
    assert_eq!(v.plan.unwrap().tasks[0].creds.uids, [1000; 4]);
    // A root image's capabilities are not granted because ckpt holds them
    // inside the new namespace: the task gets no more than the caller has
    // on the host (none), ckpt says so, and --strict-creds refuses.
    c.tasks[0].creds.caps.permitted = cap::FULL_SET;
    c.tasks[0].creds.caps.effective = cap::FULL_SET;
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    let caps = v.plan.as_ref().unwrap().tasks[0].creds.caps;
    assert_eq!((caps.permitted, caps.effective), (0, 0));
    assert!(v
        .notices
        .iter()
        .any(|n| matches!(n, Notice::CredsRederived { .. })));
    c.flags.strict_creds = true;
    assert!(!c.decide().allowed());
}

#[test]
fn files_as_caller_is_planned_and_noticed() {
    let mut c = Case::new();
    assert_eq!(
        c.decide().plan.unwrap().files_opened_by,
        FileAuthority::RestoredTask
    );
    c.flags.files_as_caller = true;
    let v = c.decide();
    assert_eq!(
        v.plan.as_ref().unwrap().files_opened_by,
        FileAuthority::Caller
    );
    assert!(v.notices.contains(&Notice::FilesAsCaller));
}

#[test]
fn json_carries_outcome_exit_code_and_messages() {
    let mut c = Case::new();
    c.host = profile(&[("apparmor", "a")]);
    c.flags.keep_lsm = true;
    let j = c.decide().to_json();
    assert_eq!(j["outcome"], "refused");
    assert_eq!(j["exit_code"], 3);
    assert_eq!(j["refusals"][0]["refusal"], "stack_mismatch");
    assert_eq!(j["refusals"][0]["required_by"], "keep_lsm");
    assert!(j["messages"]["refusals"][0]
        .as_str()
        .unwrap()
        .starts_with("refused: --keep-lsm"));
    assert_eq!(j["diff"]["stack_equal"], false);
    assert!(j["plan"].is_null());
}

#[test]
fn rule_3_3_label_for_an_lsm_outside_the_stack_is_refused() {
    let mut c = Case::new();
    c.flags.keep_lsm = true;
    c.tasks[0].labels.push(TaskLabel {
        lsm: "smack".into(),
        attr: "current".into(),
        value: b"_".to_vec(),
    });
    let v = c.decide();
    assert!(refused_with(&v, |r| matches!(
        r,
        Refusal::LabelInvalid { lsm, why, .. } if lsm == "smack" && why.contains("no LSM named")
    )));
    // A legacy label on a stack without a label LSM has nobody to apply it.
    let mut c = Case::new();
    c.flags.keep_lsm = true;
    c.image = profile(&[("capability", "cap"), ("landlock", "ll")]);
    c.host = c.image.clone();
    let v = c.decide();
    assert!(refused_with(
        &v,
        |r| matches!(r, Refusal::LabelInvalid { lsm, .. } if lsm.is_empty())
    ));
}

#[test]
fn report_text_shows_the_diff_then_the_verdict() {
    let mut c = Case::new();
    c.host.lsms[1].fingerprint = fp("pol-2");
    let text = c.decide().report_text();
    assert!(
        text.starts_with("stack: image capability,selinux,bpf"),
        "{text}"
    );
    let diff_at = text.find("  selinux     changed").unwrap();
    let verdict_at = text.find("verdict: restore allowed").unwrap();
    assert!(diff_at < verdict_at, "{text}");
    assert!(
        text.contains("warning: the selinux policy differs"),
        "{text}"
    );
    c.integrity = IntegrityStatus::malformed(&crate::persist::RecordError::Missing {
        field: "creds".into(),
    });
    let v = c.decide();
    assert_eq!(v.exit_code(), 1);
    assert!(
        v.report_text().contains("creds is missing"),
        "{}",
        v.report_text()
    );
}

// ------------------------------------------------ 3.5: the image's principal

fn uid0_full_caps() -> TaskCreds {
    root_creds()
}

#[test]
fn rule_3_5_root_refuses_a_users_unsigned_image_claiming_root() {
    let mut c = Case::new();
    c.origin = file_of(1000, 0o600);
    c.tasks[0].creds = uid0_full_caps();
    let v = c.decide();
    assert!(
        refused_with(&v, |r| matches!(
            r,
            Refusal::CredsNotVouched { tid: 4242, components, .. }
                if components.contains(&CredsComponent::Uids)
        )),
        "{v}"
    );
    let text = v.refusals[0].to_string();
    for want in [
        "uid 1000 (user1000)",
        "--sign-key",
        "--trusted-key",
        "chown",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert_eq!(v.exit_code(), 3);
    assert!(matches!(
        v.principal,
        Some(ImagePrincipal::FileOwner { ref owner }) if owner.uid == 1000
    ));
    // --strict-creds refuses too (it never re-derives).
    c.flags.strict_creds = true;
    assert!(!c.decide().allowed());
}

#[test]
fn rule_3_5_root_restores_a_users_image_as_that_user() {
    let mut c = Case::new();
    c.origin = file_of(1000, 0o600);
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    let t = &v.plan.as_ref().unwrap().tasks[0];
    assert_eq!(t.creds.uids, [1000; 4]);
    assert!(t.creds_from_image);
    // Capabilities the owner could not hold are dropped (and named).
    c.tasks[0].creds.caps.permitted = 1 << 12;
    c.tasks[0].creds.caps.effective = 1 << 12;
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    let t = &v.plan.as_ref().unwrap().tasks[0];
    assert_eq!((t.creds.caps.permitted, t.creds.caps.effective), (0, 0));
    assert_eq!(t.creds.uids, [1000; 4]);
    assert!(v.notices.iter().any(|n| matches!(
        n,
        Notice::CredsRederived { change, .. } if change.rule == CredsRule::NotVouched
    )));
    c.flags.strict_creds = true;
    assert!(refused_with(&c.decide(), |r| matches!(
        r,
        Refusal::CredsNotRestorable { .. }
    )));
}

#[test]
fn rule_3_5_root_owned_image_may_claim_root_unless_writable_by_others() {
    let mut c = Case::new();
    c.tasks[0].creds = uid0_full_caps();
    c.origin = file_of(0, 0o600);
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert_eq!(v.plan.unwrap().tasks[0].creds, uid0_full_caps());
    for mode in [0o620, 0o606, 0o666] {
        c.origin = file_of(0, mode);
        let v = c.decide();
        assert!(
            refused_with(&v, |r| matches!(
                r,
                Refusal::CredsNotVouched {
                    principal: ImagePrincipal::Nobody { .. },
                    ..
                }
            )),
            "{mode:o}: {v}"
        );
        assert!(v.refusals[0]
            .to_string()
            .contains("writable by group or others"));
    }
    // Nobody vouches for a user's uid either, when root restores.
    c.tasks[0].creds = user_creds(1000);
    assert!(!c.decide().allowed());
}

#[test]
fn rule_3_5_trusted_signer_vouches_as_the_caller() {
    let mut c = Case::new();
    let key = SignerKey([3; 32]);
    c.origin = file_of(1000, 0o666);
    c.tasks[0].creds = uid0_full_caps();
    c.signature = SignatureStatus::Signed { key };
    c.flags.trusted_keys = vec![key];
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert_eq!(v.principal, Some(ImagePrincipal::TrustedSigner { key }));
    assert_eq!(v.plan.unwrap().tasks[0].creds.uids, [0; 4]);
}

#[test]
fn rule_3_5_unsigned_stream_needs_trust_from_a_privileged_caller() {
    let mut c = Case::new();
    c.origin = ImageOrigin::Stream;
    let v = c.decide();
    assert!(
        refused_with(&v, |r| matches!(r, Refusal::UnsignedStream)),
        "{v}"
    );
    assert!(v.refusals[0]
        .to_string()
        .contains("--trust-unsigned-stream"));
    assert_eq!(v.exit_code(), 3);
    c.flags.trust_unsigned_stream = true;
    c.tasks[0].creds = uid0_full_caps();
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert_eq!(v.principal, Some(ImagePrincipal::TrustedStream));
    // An unprivileged caller restores a stream as itself.
    let mut c = Case::new();
    c.origin = ImageOrigin::Stream;
    c.caller = user_caller(1000);
    c.caller.creds.caps = CapSets {
        bounding: cap::FULL_SET,
        ..Default::default()
    };
    c.flags.pid_ns = true;
    c.tasks[0].creds = uid0_full_caps();
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    let t = &v.plan.as_ref().unwrap().tasks[0];
    assert_eq!(t.creds.uids, [1000; 4]);
    assert_eq!(t.creds.caps.permitted, 0);
}

#[test]
fn rule_3_5_unprivileged_caller_re_derives_from_itself_for_an_unvouched_image() {
    let mut c = Case::new();
    c.caller = user_caller(1000);
    c.caller.creds.caps = CapSets {
        bounding: cap::FULL_SET,
        ..Default::default()
    };
    c.flags.pid_ns = true;
    c.origin = file_of(2000, 0o666);
    c.tasks[0].creds = user_creds(2000);
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert_eq!(v.plan.unwrap().tasks[0].creds.uids, [1000; 4]);
}

#[test]
fn rule_3_5_trusted_key_refuses_unsigned_and_untrusted_images() {
    let mut c = Case::new();
    let key = SignerKey([5; 32]);
    c.flags.trusted_keys = vec![key];
    // An owner's image whose seccomp filter and no_new_privs were stripped
    // looks like any unsigned image: refused because a key was named.
    c.origin = file_of(1000, 0o600);
    let v = c.decide();
    assert_eq!(
        v.refusals,
        [Refusal::Unsigned {
            required_by: SignatureRequirement::TrustedKey
        }]
    );
    assert!(v.refusals[0].to_string().contains("--trusted-key"));
    c.signature = SignatureStatus::Signed {
        key: SignerKey([6; 32]),
    };
    assert!(refused_with(&c.decide(), |r| matches!(
        r,
        Refusal::UntrustedSigner {
            required_by: SignatureRequirement::TrustedKey,
            ..
        }
    )));
}

#[test]
fn rule_3_5_hard_rlimits_are_capped_for_an_identity_without_cap_sys_resource() {
    let mut c = Case::new();
    c.origin = file_of(1000, 0o600);
    c.rlimits = vec![ProcessRlimits {
        pid: 4242,
        limits: vec![nofile(1 << 20, 1 << 20)],
    }];
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert_eq!(
        v.plan.as_ref().unwrap().tasks[0].rlimits,
        [nofile(4096, 4096)]
    );
    let n = v
        .notices
        .iter()
        .find(|n| matches!(n, Notice::RlimitCapped { .. }))
        .expect("a notice names the capped limit");
    assert!(n.to_string().contains("RLIMIT_NOFILE 4096"), "{n}");
    // Root's own image restored as root keeps its limits.
    c.origin = file_of(0, 0o600);
    c.tasks[0].creds = uid0_full_caps();
    let v = c.decide();
    assert_eq!(
        v.plan.as_ref().unwrap().tasks[0].rlimits,
        [nofile(1 << 20, 1 << 20)]
    );
}

#[test]
fn bounding_set_restored_in_a_new_user_namespace_is_not_reported_as_lost() {
    let mut c = Case::new();
    c.caller = user_caller(1000);
    c.caller.creds.caps = CapSets {
        bounding: cap::FULL_SET,
        ..Default::default()
    };
    c.flags.pid_ns = true;
    c.flags.strict_creds = true;
    c.origin = file_of(1000, 0o600);
    c.tasks[0].creds.caps.bounding = 1 << 10;
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert_eq!(
        v.plan.as_ref().unwrap().tasks[0].creds.caps.bounding,
        1 << 10
    );
    assert!(
        !v.to_string().contains("bounding set"),
        "no notice about the bounding set: {v}"
    );
}

#[test]
fn json_and_text_show_the_principal() {
    let mut c = Case::new();
    c.origin = file_of(1000, 0o600);
    let v = c.decide();
    assert!(v
        .to_string()
        .contains("vouched for by the owner of the unsigned image file, uid 1000"));
    let j = v.to_json();
    assert_eq!(j["principal"]["principal"], "file_owner");
    assert!(j["principal_text"].as_str().unwrap().contains("uid 1000"));
}

#[test]
fn rule_3_5_an_owner_who_is_the_caller_vouches_for_the_callers_groups() {
    // A user whose ckpt has CAP_CHECKPOINT_RESTORE (so holds privilege)
    // restores its own image; its session has group 4000, which the user
    // database does not list.
    let mut c = Case::new();
    c.caller = user_caller(1000);
    c.caller.creds.groups = vec![1000, 4000];
    c.origin = file_of(1000, 0o600);
    c.tasks[0].creds.groups = vec![1000, 4000];
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert!(v.plan.unwrap().tasks[0].creds_from_image);
    // Another owner's image claiming that group is not vouched.
    c.origin = file_of(2000, 0o600);
    c.tasks[0].creds = user_creds(2000);
    c.tasks[0].creds.groups = vec![2000, 4000];
    assert!(!c.decide().allowed());
}

#[test]
fn rule_3_5_a_privileged_caller_does_not_lend_its_ids_to_another_authors_image() {
    // The owner (2000) vouches for its own ids, but this caller cannot set
    // them (no CAP_SETUID) and holds a capability: its own uid would run
    // the image's code, so refused; an unprivileged caller gets its ids.
    let mut c = Case::new();
    c.caller = user_caller(1000);
    c.origin = file_of(2000, 0o600);
    c.tasks[0].creds = user_creds(2000);
    let v = c.decide();
    assert!(
        refused_with(&v, |r| matches!(r, Refusal::CredsNotVouched { .. })),
        "{v}"
    );
    c.caller.creds.caps = CapSets {
        bounding: cap::FULL_SET,
        ..Default::default()
    };
    c.flags.pid_ns = true;
    let v = c.decide();
    assert!(v.allowed(), "{v}");
    assert_eq!(v.plan.unwrap().tasks[0].creds.uids, [1000; 4]);
}

// ------------------------------------------- 3.3 with 3.5: vouched labels

#[test]
fn rule_3_3_keep_lsm_refuses_a_label_a_users_unsigned_image_claims() {
    let mut c = Case::new();
    c.origin = file_of(1000, 0o600);
    c.flags.keep_lsm = true;
    c.tasks[0] = task(4242, user_creds(1000), "system_u:system_r:sysadm_t:s0");
    let v = c.decide();
    assert!(
        refused_with(&v, |r| matches!(
            r,
            Refusal::LabelNotVouched { tid: 4242, label, .. } if label.contains("sysadm_t")
        )),
        "{v}"
    );
    let text = v
        .refusals
        .iter()
        .find(|r| matches!(r, Refusal::LabelNotVouched { .. }))
        .unwrap()
        .to_string();
    for want in [
        "--lsm-label",
        "--sign-key",
        "--trusted-key",
        "chown",
        "uid 1000",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert_eq!(v.exit_code(), 3);
    // A group-writable root file and an unknown stream vouch for nothing.
    c.origin = file_of(0, 0o660);
    assert!(!c.decide().allowed());
    // The operator naming the label instead is the way out.
    c.origin = file_of(1000, 0o600);
    c.flags.lsm_labels = vec!["selinux:system_u:system_r:sysadm_t:s0".parse().unwrap()];
    let v = c.decide();
    assert!(
        !v.refusals
            .iter()
            .any(|r| matches!(r, Refusal::LabelNotVouched { .. })),
        "{v}"
    );
}

#[test]
fn rule_3_3_keep_lsm_accepts_labels_vouched_for_or_the_callers_own() {
    let mut c = Case::new();
    c.flags.keep_lsm = true;
    c.tasks[0] = task(4242, user_creds(1000), "system_u:system_r:sysadm_t:s0");
    // Root's own (root-owned, 0600) image file.
    assert!(c.decide().allowed(), "{}", c.decide());
    // A user's image whose label is the caller's own gains nothing.
    c.origin = file_of(1000, 0o600);
    c.tasks[0] = task(
        4242,
        user_creds(1000),
        "unconfined_u:unconfined_r:unconfined_t:s0",
    );
    assert!(c.decide().allowed(), "{}", c.decide());
    // A user restoring their own image: the kernel decides with their creds.
    c.caller = user_caller(1000);
    c.caller.creds.caps = Default::default();
    c.tasks[0] = task(4242, user_creds(1000), "user_u:user_r:user_t:s0");
    let v = c.decide();
    assert!(
        !v.refusals
            .iter()
            .any(|r| matches!(r, Refusal::LabelNotVouched { .. })),
        "{v}"
    );
}

#[test]
fn rule_3_7_files_as_caller_needs_a_principal_who_vouches_for_the_paths() {
    let mut c = Case::new();
    c.flags.files_as_caller = true;
    // Root's own image file: allowed, with the notice.
    assert!(c.decide().allowed(), "{}", c.decide());
    // Another user's unsigned image, a writable file: refused.
    for origin in [file_of(1000, 0o600), file_of(0, 0o666)] {
        c.origin = origin;
        let v = c.decide();
        assert!(
            refused_with(&v, |r| matches!(r, Refusal::FilesAsCallerNotVouched { .. })),
            "{v}"
        );
        assert_eq!(v.exit_code(), 3);
    }
    let text = Refusal::FilesAsCallerNotVouched {
        principal: ImagePrincipal::FileOwner { owner: owner(1000) },
    }
    .to_string();
    for want in [
        "cannot vouch",
        "--sign-key",
        "--trusted-key",
        "chown",
        "uid 1000",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    // An unprivileged caller restoring their own image: their own authority.
    c.origin = file_of(1000, 0o600);
    c.caller = user_caller(1000);
    c.caller.creds.caps = Default::default();
    assert!(
        !c.decide()
            .refusals
            .iter()
            .any(|r| matches!(r, Refusal::FilesAsCallerNotVouched { .. })),
        "{}",
        c.decide()
    );
}
