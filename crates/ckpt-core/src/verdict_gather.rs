//! The restore verdict computed by the engine itself (DESIGN 3, last
//! paragraph): [`plan_restore`] gathers everything
//! `lsm_labels::verdict::decide` looks at from the verified image (its
//! security header, per-task security records, rlimits and signature), the
//! image file (its owner and mode, by fstat of the very file the reader
//! verified), this host (its LSM profile and label validity, or a saved
//! profile), the calling process (its credentials, securebits, user
//! namespace and rlimits, read from the kernel) and the flags, and calls
//! the one pure function. `restore` and `policy-diff` both go through
//! here, so they cannot disagree, and [`crate::restore`] accepts only an
//! [`ApprovedRestore`], which only an allowed verdict yields.

use std::os::unix::fs::MetadataExt;

use image_format::records::ProcessRecord;
use image_format::{SectionKind, VerifiedImage};
use lsm_labels::creds_rules::IdLimits;
use lsm_labels::persist::{profile_from_record, Persist};
use lsm_labels::principal::{FileOwner, ImageOrigin};
use lsm_labels::rlimit_rules::Rlimit;
use lsm_labels::verdict::{
    decide, CallerContext, IntegrityStatus, LabelCheck, LabelValidity, ProcessRlimits,
    RestoreFlags, RestorePlan, RestoreVerdict, SignatureStatus, SignerKey, VerdictInput,
};
use lsm_labels::{taskstate, HostProfile, HostView, TaskSecurity};

use crate::error::RestoreError;

/// How the image reached the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// Opened from a file: its owner is the image's principal unless it is
    /// signed by a trusted key. A file with no name left (an unlinked
    /// spool) counts as a stream.
    File,
    /// Read from a stream (`restore -`): no known author.
    Stream,
}

/// The host the verdict is computed for.
#[derive(Clone, Debug)]
pub enum VerdictHost {
    /// This host, live: the only host whose verdict can be restored.
    Live,
    /// A profile saved by `ckpt lsm --json` (for `policy-diff --host`);
    /// labels cannot be checked against it, and its verdict approves
    /// nothing.
    Profile(HostProfile),
}

/// A restore that the verdict allowed on this host, for this image. It can
/// only be obtained from [`plan_restore`] (its fields are private), so no
/// caller of the library restores without the rules of DESIGN 3:
///
/// ```compile_fail
/// fn forge<'a>(
///     image: &'a image_format::VerifiedImage,
///     plan: lsm_labels::verdict::RestorePlan,
/// ) -> ckpt_core::ApprovedRestore<'a> {
///     ckpt_core::ApprovedRestore { image, plan }
/// }
/// ```
#[derive(Debug)]
pub struct ApprovedRestore<'a> {
    image: &'a VerifiedImage,
    plan: RestorePlan,
}

impl<'a> ApprovedRestore<'a> {
    /// The plan the engine carries out.
    pub fn plan(&self) -> &RestorePlan {
        &self.plan
    }
    /// The image it was decided for.
    pub fn image(&self) -> &'a VerifiedImage {
        self.image
    }
}

/// The verdict, and the approval when it allows a restore on this host.
#[derive(Debug)]
pub struct RestoreDecision<'a> {
    verdict: RestoreVerdict,
    approved: Option<ApprovedRestore<'a>>,
}

impl<'a> RestoreDecision<'a> {
    pub fn verdict(&self) -> &RestoreVerdict {
        &self.verdict
    }
    /// `Some` exactly when the verdict allows the restore and was reached
    /// for this host (not a saved profile).
    pub fn approved(&self) -> Option<&ApprovedRestore<'a>> {
        self.approved.as_ref()
    }
}

/// DESIGN 3 for `image`: gathers the verdict's input (see the module
/// documentation) and decides.
///
/// # Errors
/// The image's process records cannot be read, or ckpt cannot read its own
/// credentials or this host's LSM stack.
pub fn plan_restore<'a>(
    image: &'a VerifiedImage,
    source: ImageSource,
    host: VerdictHost,
    flags: &RestoreFlags,
) -> Result<RestoreDecision<'a>, RestoreError> {
    let facts = image_facts(image)?;
    let origin = image_origin(image, source)?;
    let caller = caller_context()?;
    let (host_profile, live) = match host {
        VerdictHost::Live => (
            lsm_labels::detect_host_profile(&HostView::live())
                .map_err(|e| RestoreError::Image(format!("cannot detect the LSM stack: {e}")))?,
            true,
        ),
        VerdictHost::Profile(p) => (p, false),
    };
    let from_file = |lsm: &str, _: &str, _: &[u8]| LabelCheck::Unknown {
        why: format!("labels of {lsm} cannot be checked against a host profile read from a file"),
    };
    let labels: &dyn LabelValidity = if live { &live_label_check } else { &from_file };
    let verdict = decide(&VerdictInput {
        image: &facts.profile,
        tasks: &facts.tasks,
        host: &host_profile,
        caller: &caller,
        labels,
        integrity: &facts.integrity,
        signature: &facts.signature,
        origin: &origin,
        rlimits: &facts.rlimits,
        flags,
    });
    let approved = match (&verdict.plan, live) {
        (Some(plan), true) if verdict.allowed() => Some(ApprovedRestore {
            image,
            plan: plan.clone(),
        }),
        _ => None,
    };
    Ok(RestoreDecision { verdict, approved })
}

/// What `decide` needs from the image's records.
struct ImageFacts {
    profile: HostProfile,
    tasks: Vec<TaskSecurity>,
    rlimits: Vec<ProcessRlimits>,
    signature: SignatureStatus,
    integrity: IntegrityStatus,
}

fn image_facts(img: &VerifiedImage) -> Result<ImageFacts, RestoreError> {
    let mut integrity = IntegrityStatus::Ok;
    let profile = profile_from_record(img.security_header()).unwrap_or_else(|e| {
        integrity = IntegrityStatus::malformed(&e);
        HostProfile::default()
    });
    let processes = img
        .sections_of(SectionKind::PROCESS)
        .map(|s| img.read_record::<ProcessRecord>(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RestoreError::Image(e.to_string()))?;
    let mut tasks = Vec::with_capacity(processes.len());
    let mut rlimits = Vec::with_capacity(processes.len());
    for p in &processes {
        let Some(r) = &p.security else {
            return Err(RestoreError::BadImage(format!(
                "task {} has no security record, so no rule of DESIGN 3 can be checked; dump it again with this ckpt",
                p.pid
            )));
        };
        match TaskSecurity::from_record(r) {
            Ok(t) => tasks.push(t),
            Err(e) if integrity == IntegrityStatus::Ok => {
                integrity = IntegrityStatus::malformed(&e)
            }
            Err(_) => {}
        }
        rlimits.push(ProcessRlimits {
            pid: p.pid,
            limits: p
                .rlimits
                .iter()
                .filter(|l| l.resource < 16)
                .map(|l| Rlimit {
                    resource: l.resource,
                    soft: l.soft,
                    hard: l.hard,
                })
                .collect(),
        });
    }
    // The shared semantic validation (crate::validate), so that policy-diff
    // refuses what restore refuses as malformed (exit 1). Security records
    // that do not convert are left to the verdict's integrity refusal.
    if integrity == IntegrityStatus::Ok {
        let pages_len = img.pages_len();
        for p in &processes {
            crate::validate::process_record(p, pages_len).map_err(|e| {
                RestoreError::BadImage(format!(
                    "the process record of pid {} is malformed: {e}",
                    p.pid
                ))
            })?;
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
        rlimits,
        signature,
        integrity,
    })
}

/// The image file's owner and mode, from fstat of the file the reader
/// verified (so a file swapped at the path afterwards changes nothing).
fn image_origin(img: &VerifiedImage, source: ImageSource) -> Result<ImageOrigin, RestoreError> {
    if source == ImageSource::Stream {
        return Ok(ImageOrigin::Stream);
    }
    let meta = img
        .file()
        .metadata()
        .map_err(|e| RestoreError::Image(format!("cannot fstat the image file: {e}")))?;
    // An unlinked file (a spooled stream) has no owner who wrote it.
    if meta.nlink() == 0 {
        return Ok(ImageOrigin::Stream);
    }
    Ok(ImageOrigin::File {
        owner: file_owner(meta.uid()),
        mode: meta.mode() & 0o7777,
    })
}

/// The user database's view of `uid`: name, primary gid and groups. An
/// unknown uid gets none of them (it can then vouch for no gid).
fn file_owner(uid: u32) -> FileOwner {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    let Some(user) = user else {
        return FileOwner {
            uid,
            ..FileOwner::default()
        };
    };
    let groups = std::ffi::CString::new(user.name.as_bytes())
        .ok()
        .and_then(|name| nix::unistd::getgrouplist(&name, user.gid).ok())
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|| vec![user.gid.as_raw()]);
    FileOwner {
        uid,
        name: Some(user.name),
        gid: Some(user.gid.as_raw()),
        groups,
    }
}

/// The caller: this thread's own credentials as the kernel reports them.
fn caller_context() -> Result<CallerContext, RestoreError> {
    let (pid, tid) = (std::process::id() as i32, nix::unistd::gettid().as_raw());
    let (sec, _, _) = taskstate::read_thread_security(&HostView::live(), pid, tid)
        .map_err(|e| RestoreError::Image(format!("cannot read ckpt's own credentials: {e}")))?;
    let read = |f: &str| std::fs::read_to_string(format!("/proc/self/{f}")).unwrap_or_default();
    let (uid_map, gid_map, setgroups) = (read("uid_map"), read("gid_map"), read("setgroups"));
    let initial_user_ns =
        uid_map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    let mut creds = sec.creds;
    creds.securebits = crate::sys::own_securebits().map_err(|e| {
        RestoreError::Image(format!(
            "cannot read ckpt's own securebits (PR_GET_SECUREBITS): {e}"
        ))
    })?;
    let rlimits = (0..16)
        .filter_map(|resource| {
            crate::sys::get_rlimit(0, resource)
                .ok()
                .map(|(soft, hard)| Rlimit {
                    resource,
                    soft,
                    hard,
                })
        })
        .collect();
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
        rlimits,
        // Rule 3.2: what a task restored without --keep-lsm runs with.
        labels: sec.labels,
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
        "apparmor" => apparmor_label_check(label),
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

fn apparmor_label_check(label: &str) -> LabelCheck {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smack_labels_are_checked_for_form() {
        assert_eq!(
            live_label_check("smack", "current", b"_\n"),
            LabelCheck::Valid
        );
        assert!(matches!(
            live_label_check("smack", "current", b"-bad"),
            LabelCheck::Invalid { .. }
        ));
        assert!(matches!(
            live_label_check("yama", "current", b"x"),
            LabelCheck::Unknown { .. }
        ));
    }

    #[test]
    fn the_caller_is_read_from_the_kernel() {
        let c = caller_context().unwrap();
        assert_eq!(c.creds.uids[1], nix::unistd::geteuid().as_raw());
        let (_, hard) = crate::sys::get_rlimit(0, 7).unwrap();
        assert!(c.rlimits.iter().any(|l| l.resource == 7 && l.hard == hard));
    }

    #[test]
    fn file_owners_come_from_the_user_database() {
        let owner = file_owner(nix::unistd::geteuid().as_raw());
        assert_eq!(owner.uid, nix::unistd::geteuid().as_raw());
        let root = file_owner(0);
        assert_eq!(root.name.as_deref(), Some("root"));
        assert!(root.groups.contains(&0));
        assert_eq!(file_owner(4_000_000_000).name, None);
    }
}
