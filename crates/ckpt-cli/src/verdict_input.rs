//! Gathering everything the restore verdict looks at (DESIGN 3) from a
//! verified image, this host (or a saved host profile), the caller and the
//! flags, so that `restore` and `policy-diff` call the one pure function
//! `lsm_labels::verdict::decide` with the same input and cannot disagree.

use crate::failure::{Failure, OrFail};
use crate::{RestoreArgs, VerdictFlags};
use image_format::records::ProcessRecord;
use image_format::{keys, VerifiedImage};
use lsm_labels::creds_rules::IdLimits;
use lsm_labels::persist::{profile_from_record, Persist};
use lsm_labels::verdict::{
    decide, CallerContext, IntegrityStatus, LabelCheck, RestoreFlags, RestoreVerdict,
    SignatureStatus, SignerKey, VerdictInput,
};
use lsm_labels::{taskstate, HostProfile, HostView, TaskSecurity};
use std::path::{Path, PathBuf};

/// Everything `decide` needs that comes from the image.
pub struct ImageFacts {
    pub profile: HostProfile,
    pub tasks: Vec<TaskSecurity>,
    pub signature: SignatureStatus,
}

pub fn image_facts(img: &VerifiedImage, path: &Path) -> Result<ImageFacts, Failure> {
    let profile = profile_from_record(img.security_header())
        .or_fail(|| format!("image {}: the security header is malformed", path.display()))?;
    let processes: Vec<ProcessRecord> = crate::cmd_inspect::read_processes(img, path)?;
    let mut tasks = Vec::new();
    for p in &processes {
        match &p.security {
            Some(r) => tasks.push(
                TaskSecurity::from_record(r)
                    .or_fail(|| format!("image {}: task {}'s security record is malformed", path.display(), p.pid))?,
            ),
            None => {
                return Err(Failure::operational(anyhow::anyhow!(
                    "image {}: task {} has no security record, so no rule of DESIGN 3 can be checked; dump it again with this ckpt",
                    path.display(),
                    p.pid
                )))
            }
        }
    }
    let signature = match img.signature() {
        Some(s) => SignatureStatus::Signed {
            key: SignerKey(s.public_key.to_bytes()),
        },
        None => SignatureStatus::Unsigned,
    };
    Ok(ImageFacts {
        profile,
        tasks,
        signature,
    })
}

/// The caller: this process's own credentials as the kernel reports them.
pub fn caller_context() -> Result<CallerContext, Failure> {
    let me = std::process::id() as i32;
    let (sec, _, _) = taskstate::read_thread_security(&HostView::live(), me, me)
        .or_fail(|| "cannot read ckpt's own credentials from /proc/self".into())?;
    let read = |f: &str| std::fs::read_to_string(format!("/proc/self/{f}")).unwrap_or_default();
    let (uid_map, gid_map, setgroups) = (read("uid_map"), read("gid_map"), read("setgroups"));
    let initial_user_ns =
        uid_map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    let labels = sec.labels;
    let mut creds = sec.creds;
    creds.securebits = crate::sys::own_securebits()
        .or_fail(|| "cannot read ckpt's own securebits (PR_GET_SECUREBITS)".into())?;
    Ok(CallerContext {
        creds,
        no_new_privs: sec.no_new_privs,
        initial_user_ns,
        // Inside a user namespace only the mapped ids can be set.
        id_limits: if initial_user_ns {
            None
        } else {
            IdLimits::from_proc(&uid_map, &gid_map, &setgroups)
        },
        labels,
    })
}

/// Label validity on the live host, asked of the LSM itself where it has an
/// interface for it. Anything ckpt cannot establish is `Unknown`, which the
/// verdict treats as invalid (fail closed).
pub fn live_label_check(lsm: &str, _attr: &str, value: &[u8]) -> LabelCheck {
    let label = String::from_utf8_lossy(value);
    let label = label.trim_end_matches(['\0', '\n']);
    match lsm {
        // selinuxfs validates a context when it is written to `context`.
        "selinux" => match std::fs::write("/sys/fs/selinux/context", label.as_bytes()) {
            Ok(()) => LabelCheck::Valid,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => LabelCheck::Invalid {
                why: format!("SELinux rejects context {label:?} under the loaded policy"),
            },
            Err(e) => LabelCheck::Unknown {
                why: format!("cannot ask selinuxfs about {label:?}: {e}"),
            },
        },
        // An AppArmor label names a loaded profile (plus its mode).
        "apparmor" => {
            let name = label.rsplit_once(" (").map_or(label, |(n, _)| n);
            if name == "unconfined" {
                return LabelCheck::Valid;
            }
            let dir = "/sys/kernel/security/apparmor/policy/profiles";
            match std::fs::read_dir(dir) {
                Ok(rd) => {
                    let found = rd.flatten().take(65_536).any(|e| {
                        std::fs::read_to_string(e.path().join("name"))
                            .map(|n| n.trim_end() == name)
                            .unwrap_or(false)
                    });
                    if found {
                        LabelCheck::Valid
                    } else {
                        LabelCheck::Invalid {
                            why: format!("no AppArmor profile named {name:?} is loaded"),
                        }
                    }
                }
                Err(e) => LabelCheck::Unknown {
                    why: format!("cannot list {dir}: {e}"),
                },
            }
        }
        // Smack labels are valid when well formed (smk_parse_smack: 1..=255
        // printable bytes other than / " \ ', not starting with '-').
        "smack" => {
            let ok = !label.is_empty()
                && label.len() <= 255
                && !label.starts_with('-')
                && !label
                    .bytes()
                    .any(|b| !(0x21..=0x7e).contains(&b) || b"/\"\\'".contains(&b));
            if ok {
                LabelCheck::Valid
            } else {
                LabelCheck::Invalid {
                    why: format!("{label:?} is not a well-formed Smack label"),
                }
            }
        }
        other => LabelCheck::Unknown {
            why: format!("ckpt cannot check labels of LSM {other}"),
        },
    }
}

pub fn read_trusted_keys(paths: &[PathBuf]) -> Result<Vec<SignerKey>, Failure> {
    paths
        .iter()
        .map(|p| {
            keys::read_public_key(p)
                .map(|k| SignerKey(k.to_bytes()))
                .map_err(|e| {
                    Failure::usage(
                        anyhow::Error::new(e).context(format!("--trusted-key {}", p.display())),
                    )
                })
        })
        .collect()
}

/// Runs the verdict for an image against a host profile and the caller.
pub fn decide_with(
    facts: &ImageFacts,
    host: &HostProfile,
    host_is_live: bool,
    flags: &RestoreFlags,
) -> Result<RestoreVerdict, Failure> {
    let caller = caller_context()?;
    let from_file = |lsm: &str, _: &str, _: &[u8]| LabelCheck::Unknown {
        why: format!("labels of {lsm} cannot be checked against a host profile read from a file"),
    };
    let labels: &dyn lsm_labels::verdict::LabelValidity = if host_is_live {
        &live_label_check
    } else {
        &from_file
    };
    Ok(decide(&VerdictInput {
        image: &facts.profile,
        tasks: &facts.tasks,
        host,
        caller: &caller,
        labels,
        integrity: &IntegrityStatus::Ok,
        signature: &facts.signature,
        flags,
    }))
}

pub fn flags_from(v: &VerdictFlags) -> RestoreFlags {
    RestoreFlags {
        keep_lsm: v.keep_lsm,
        require_same_policy: v.require_same_policy,
        lsm_as_caller: v.lsm_as_caller,
        lsm_labels: v.lsm_labels.clone(),
        ..RestoreFlags::default()
    }
}

/// The verdict for `ckpt restore` on this host.
pub fn decide_for_restore(img: &VerifiedImage, a: &RestoreArgs) -> Result<RestoreVerdict, Failure> {
    let facts = image_facts(img, &a.image)?;
    let host = crate::cmd_lsm::host_profile(None)?;
    let flags = RestoreFlags {
        strict_creds: a.strict_creds,
        files_as_caller: a.files_as_caller,
        pid_ns: a.pid_ns,
        require_signature: a.require_signature,
        trusted_keys: read_trusted_keys(&a.trusted_keys)?,
        ..flags_from(&a.verdict)
    };
    decide_with(&facts, &host, true, &flags)
}

/// Prints warnings and notices (stderr) unless quiet; refusals are printed
/// by the caller as the error.
pub fn print_verdict_messages(v: &RestoreVerdict, quiet: bool) {
    if quiet {
        return;
    }
    for w in &v.warnings {
        eprintln!("ckpt: {w}");
    }
    for n in &v.notices {
        eprintln!("ckpt: {n}");
    }
}

pub trait RefusalSummary {
    fn refusal_summary(&self) -> String;
}

impl RefusalSummary for RestoreVerdict {
    fn refusal_summary(&self) -> String {
        self.refusals
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }
}
