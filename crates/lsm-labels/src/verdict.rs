//! The restore verdict (DESIGN 3): one pure function, [`decide`], from the
//! image's security header and per-task state, the host's profile, the
//! caller, the host's answer to "is this label valid now", the integrity
//! and signature status, and the flags, to [`RestoreVerdict`]: allowed or
//! refused, with ordered reasons, warnings, notices and, when allowed, the
//! plan the engine executes. `ckpt policy-diff` and `ckpt restore` both call
//! it, so they cannot disagree.
//!
//! The function reads nothing from the system: everything host-dependent
//! comes in through [`VerdictInput`] (label validity through the
//! [`LabelValidity`] trait), which keeps every rule unit-testable.

use std::fmt;

use serde::Serialize;

use crate::creds_rules::{self, cap, CredsChange, CredsComponent, IdLimits, IdRange};
use crate::diff::{LsmStatus, PolicyDiff};
use crate::principal::{ImageOrigin, ImagePrincipal};
use crate::profile::HostProfile;
use crate::rlimit_rules::{self, Rlimit, RlimitCapped};
use crate::task::{SeccompMode, TaskCreds, TaskLabel, TaskSecurity};

mod confinement;
pub use confinement::{ChosenLabel, ChosenLabelError, GivenUpLabel};

/// An Ed25519 public key that signed an image, or that the user trusts
/// (`--trusted-key`). Shown as its fingerprint (the one of `ckpt keygen`
/// and `ckpt inspect`, [`image_format::keys::fingerprint_of`]), in text
/// and in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignerKey(pub [u8; 32]);

impl SignerKey {
    /// Hex of the first 16 bytes of SHA-256 of the key.
    pub fn fingerprint(&self) -> String {
        image_format::keys::fingerprint_of(&self.0)
    }
}

impl fmt::Display for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "with fingerprint {}", self.fingerprint())
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({self})")
    }
}

/// Serialised as its fingerprint too, so that a tool matching `ckpt
/// inspect --json` output against a verdict sees the same string.
impl Serialize for SignerKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.fingerprint())
    }
}

/// What went wrong with the image's integrity (DESIGN 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IntegrityFailure {
    /// A section's SHA-256 does not match the trailer.
    DigestMismatch,
    /// The image ends early.
    Truncated,
    /// An unknown major format version (or a must-understand feature).
    UnsupportedVersion,
    /// A record fails validation (see `persist::RecordError`).
    Malformed,
    /// The Ed25519 signature does not verify.
    BadSignature,
}

impl fmt::Display for IntegrityFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IntegrityFailure::DigestMismatch => "digest mismatch",
            IntegrityFailure::Truncated => "truncated image",
            IntegrityFailure::UnsupportedVersion => "unsupported format version",
            IntegrityFailure::Malformed => "malformed record",
            IntegrityFailure::BadSignature => "bad signature",
        })
    }
}

/// The image's integrity as the reader found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum IntegrityStatus {
    #[default]
    Ok,
    Failed {
        kind: IntegrityFailure,
        /// Names the object: `section 3 (memory): digest mismatch`.
        detail: String,
    },
}

impl IntegrityStatus {
    /// A record of the image failed validation (`persist`).
    pub fn malformed(err: &crate::persist::RecordError) -> Self {
        IntegrityStatus::Failed {
            kind: IntegrityFailure::Malformed,
            detail: err.to_string(),
        }
    }
}

/// The image's signature (a signature that does not verify is an
/// [`IntegrityFailure::BadSignature`], not this).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SignatureStatus {
    #[default]
    Unsigned,
    /// A valid signature by `key`.
    Signed { key: SignerKey },
}

/// The restore flags that the verdict depends on (DESIGN 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct RestoreFlags {
    pub keep_lsm: bool,
    pub require_same_policy: bool,
    pub strict_creds: bool,
    pub files_as_caller: bool,
    pub pid_ns: bool,
    pub require_signature: bool,
    /// `--trusted-key`: an unsigned image, or one signed by another key, is
    /// refused, as with `--require-signature`.
    pub trusted_keys: Vec<SignerKey>,
    /// 3.2 `--lsm-as-caller`: run with the caller's labels even where the
    /// image's label confined the task.
    pub lsm_as_caller: bool,
    /// 3.2 `--lsm-label LSM:LABEL`: labels the operator names, checked and
    /// applied like kept ones.
    pub lsm_labels: Vec<ChosenLabel>,
    /// `--trust-unsigned-stream`: a caller holding privilege accepts an
    /// unsigned stream's claims as its own (DESIGN 3.5).
    pub trust_unsigned_stream: bool,
}

impl RestoreFlags {
    /// A signature by a trusted key is required.
    pub fn signature_required(&self) -> Option<SignatureRequirement> {
        if self.require_signature {
            Some(SignatureRequirement::RequireSignature)
        } else if !self.trusted_keys.is_empty() {
            Some(SignatureRequirement::TrustedKey)
        } else {
            None
        }
    }
}

/// Which flag requires a trusted signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureRequirement {
    RequireSignature,
    TrustedKey,
}

impl fmt::Display for SignatureRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureRequirement::RequireSignature => "--require-signature",
            SignatureRequirement::TrustedKey => "--trusted-key",
        })
    }
}

/// The caller of `ckpt restore` (or `policy-diff`): the credentials the
/// restored tasks start with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct CallerContext {
    pub creds: TaskCreds,
    pub no_new_privs: bool,
    /// The caller is in the initial user namespace.
    pub initial_user_ns: bool,
    /// Ids the caller's user namespace can express, when the engine knows
    /// (from `/proc/self/{uid_map,gid_map,setgroups}`); `None`: any.
    pub id_limits: Option<IdLimits>,
    /// The caller's own LSM attributes (as `taskstate` reads them): the
    /// labels a task restored without `--keep-lsm` runs with (3.2).
    pub labels: Vec<TaskLabel>,
    /// The caller's own resource limits (the restored task starts with
    /// them).
    pub rlimits: Vec<Rlimit>,
}

impl CallerContext {
    /// The caller from its own live state (e.g. `taskstate` of the ckpt
    /// process itself). `taskstate` leaves securebits 0, so the engine
    /// should fill `creds.securebits` with `PR_GET_SECUREBITS`; a wrong
    /// value can only make the kernel refuse a step later, never grant one.
    pub fn from_task(
        task: &TaskSecurity,
        initial_user_ns: bool,
        id_limits: Option<IdLimits>,
    ) -> Self {
        CallerContext {
            creds: task.creds.clone(),
            no_new_privs: task.no_new_privs,
            initial_user_ns,
            id_limits,
            labels: task.labels.clone(),
            rlimits: Vec::new(),
        }
    }

    /// The caller holds privilege: any capability, or uid 0 among its
    /// uids. Its identity is then worth more than an image's author's, and
    /// handing it to an image's code needs the author's word (DESIGN 3.5).
    pub fn holds_privilege(&self) -> bool {
        let c = &self.creds.caps;
        c.permitted | c.effective | c.ambient != 0 || self.creds.uids.contains(&0)
    }

    /// Whether the caller can use capability `cap`. A capability counts when
    /// it is in the *permitted* set: the caller can raise it into its
    /// effective set with capset(2) at any time, so the kernel would let it
    /// do what that capability allows.
    pub fn can_use(&self, cap: u32) -> bool {
        cap::has(self.creds.caps.permitted, cap)
    }
    pub fn has_checkpoint_restore(&self) -> bool {
        self.can_use(cap::CHECKPOINT_RESTORE)
    }
    /// May choose the PIDs of new tasks (clone3 `set_tid`, `ns_last_pid`):
    /// the kernel's `checkpoint_restore_ns_capable`, CAP_CHECKPOINT_RESTORE
    /// or CAP_SYS_ADMIN in the user namespace owning the PID namespace.
    pub fn can_claim_pids(&self) -> bool {
        self.has_checkpoint_restore() || self.has_sys_admin()
    }
    pub fn has_setuid(&self) -> bool {
        self.can_use(cap::SETUID)
    }
    pub fn has_setgid(&self) -> bool {
        self.can_use(cap::SETGID)
    }
    pub fn has_setpcap(&self) -> bool {
        self.can_use(cap::SETPCAP)
    }
    pub fn has_sys_admin(&self) -> bool {
        self.can_use(cap::SYS_ADMIN)
    }

    /// The caller as it will be inside a new user namespace it creates
    /// unprivileged (for `--pid-ns` without CAP_SYS_ADMIN), with its euid
    /// and egid mapped to themselves and `setgroups` denied (the kernel
    /// requires that for an unprivileged gid_map). The kernel gives the
    /// creator every capability in the new namespace (and nothing outside
    /// it) and resets its securebits (`set_cred_user_ns`); no_new_privs is
    /// kept.
    pub fn in_new_user_ns(&self) -> CallerContext {
        let (euid, egid) = (self.creds.uids[1], self.creds.gids[1]);
        CallerContext {
            creds: TaskCreds {
                uids: [euid; 4],
                gids: [egid; 4],
                groups: self.creds.groups.clone(),
                caps: crate::task::CapSets {
                    inheritable: 0,
                    permitted: cap::FULL_SET,
                    effective: cap::FULL_SET,
                    bounding: cap::FULL_SET,
                    ambient: 0,
                },
                securebits: 0,
            },
            no_new_privs: self.no_new_privs,
            initial_user_ns: false,
            id_limits: Some(IdLimits {
                uids: vec![IdRange::single(euid)],
                gids: vec![IdRange::single(egid)],
                setgroups_allowed: false,
            }),
            labels: self.labels.clone(),
            rlimits: self.rlimits.clone(),
        }
    }
}

/// The answer of [`LabelValidity`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LabelCheck {
    Valid,
    /// The LSM rejects the label under its current policy.
    Invalid {
        why: String,
    },
    /// Validity could not be established (e.g. selinuxfs not mounted, or a
    /// host profile read from a file). Treated as invalid: fail closed.
    Unknown {
        why: String,
    },
}

/// "Is `value` a valid `attr` label for LSM `lsm` under the policy loaded
/// now?" The engine implements it per LSM (SELinux: write the context to
/// `/sys/fs/selinux/context`; AppArmor: the profile exists under
/// securityfs; Smack: the label's format). Closures implement it too.
pub trait LabelValidity {
    fn check(&self, lsm: &str, attr: &str, value: &[u8]) -> LabelCheck;
}

impl<F: Fn(&str, &str, &[u8]) -> LabelCheck> LabelValidity for F {
    fn check(&self, lsm: &str, attr: &str, value: &[u8]) -> LabelCheck {
        self(lsm, attr, value)
    }
}

/// Everything [`decide`] looks at.
pub struct VerdictInput<'a> {
    /// The profile recorded in the image's security header.
    pub image: &'a HostProfile,
    /// The image's per-thread security state.
    pub tasks: &'a [TaskSecurity],
    /// This host's profile (or one saved by `ckpt lsm --json`).
    pub host: &'a HostProfile,
    pub caller: &'a CallerContext,
    pub labels: &'a dyn LabelValidity,
    pub integrity: &'a IntegrityStatus,
    pub signature: &'a SignatureStatus,
    /// Where the image came from: with the signature and the flags, it
    /// names the image's principal (DESIGN 3.5).
    pub origin: &'a ImageOrigin,
    /// The resource limits recorded per process, by PID (= the task's tid).
    pub rlimits: &'a [ProcessRlimits],
    pub flags: &'a RestoreFlags,
}

/// The resource limits an image recorded for one process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct ProcessRlimits {
    pub pid: i32,
    pub limits: Vec<Rlimit>,
}

/// Which flag made a stack difference fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StackRequirement {
    KeepLsm,
    RequireSamePolicy,
}

/// How bad a refusal is, for the exit code (DESIGN 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusalKind {
    /// Corrupt, truncated or unsupported image: exit 1.
    Integrity,
    /// Refused by a rule of DESIGN 3: exit 3.
    Security,
    /// The image cannot run here at all (another architecture): exit 1.
    Operational,
}

/// Why a restore is refused. The Display text names the object and the way
/// out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// 3.1: digest, truncation, version or signature failure.
    Integrity {
        kind: IntegrityFailure,
        detail: String,
    },
    /// 3.1: `--require-signature` or `--trusted-key`, and the image is
    /// unsigned.
    Unsigned { required_by: SignatureRequirement },
    /// 3.1: `--require-signature` or `--trusted-key`, and the signer is not
    /// trusted.
    UntrustedSigner {
        key: SignerKey,
        required_by: SignatureRequirement,
    },
    /// 3.5: an unsigned stream, and the caller holds privilege.
    UnsignedStream,
    /// 3.5: the image claims ids its principal could not have set, and the
    /// caller holds privilege, so re-deriving them from the caller would
    /// run the image's code with the caller's identity.
    CredsNotVouched {
        tid: i32,
        components: Vec<CredsComponent>,
        claimed: String,
        principal: ImagePrincipal,
    },
    /// The image was made on another architecture.
    ArchMismatch { image: String, host: String },
    /// 3.3 / 3.4: the stacks differ and a flag requires them equal.
    StackMismatch {
        required_by: StackRequirement,
        image: Vec<String>,
        host: Vec<String>,
    },
    /// 3.4: `--require-same-policy` and this LSM's policy changed.
    PolicyChanged { lsm: String, status: LsmStatus },
    /// 3.4: `--require-same-policy` and this LSM's policy is unknown.
    PolicyUnknown { lsm: String, reason: String },
    /// 3.3: a recorded label is not valid now.
    LabelInvalid {
        tid: i32,
        lsm: String,
        attr: String,
        label: String,
        why: String,
    },
    /// 3.3: a recorded label's validity cannot be established.
    LabelUncheckable {
        tid: i32,
        lsm: String,
        attr: String,
        label: String,
        why: String,
    },
    /// 3.5: `--strict-creds` and a credential component cannot be set.
    CredsNotRestorable { tid: i32, change: CredsChange },
    /// 3.6: the image's bounding set drops capabilities the caller cannot
    /// drop (CAP_SETPCAP).
    BoundingSetNotRestorable { tid: i32, not_dropped: u64 },
    /// 3.6: restricting securebits the caller cannot set.
    SecurebitsNotRestorable { tid: i32, lost: u32 },
    /// 3.6: seccomp filters without no_new_privs need CAP_SYS_ADMIN.
    SeccompNeedsPrivilege { tid: i32, filters: usize },
    /// 3.6: the recorded seccomp state is not one ckpt can restore.
    SeccompNotCaptured { tid: i32, what: String },
    /// DESIGN 2: keeping the PIDs needs CAP_CHECKPOINT_RESTORE (or
    /// CAP_SYS_ADMIN).
    PidsNeedCheckpointRestore { tids: Vec<i32> },
    /// 3.2: without `--keep-lsm`, the task would lose the confinement of a
    /// recorded label.
    ConfiningLabelDropped {
        tid: i32,
        lsm: String,
        label: String,
        /// The caller's label of that LSM, if it has one here.
        caller_label: Option<String>,
    },
    /// 3.3 with 3.5: `--keep-lsm` would apply a label the image claims,
    /// other than the caller's own, while nobody vouches for the claim
    /// (the principal is another user, nobody or an unknown stream) and the
    /// caller holds privilege: under a MAC policy a label is privilege, so
    /// an image's author could otherwise name a label it never held.
    LabelNotVouched {
        tid: i32,
        lsm: String,
        label: String,
        principal: ImagePrincipal,
    },
    /// 3.7 with 3.5: `--files-as-caller` opens the paths the image names
    /// with the caller's authority; the caller holds privilege and nobody
    /// vouches for those paths (another user's unsigned image, a writable
    /// file, an unknown stream), so the image's author could name any file
    /// the caller may open.
    FilesAsCallerNotVouched { principal: ImagePrincipal },
}

impl Refusal {
    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::Integrity {
                kind: IntegrityFailure::BadSignature,
                ..
            } => RefusalKind::Security,
            Refusal::Integrity { .. } => RefusalKind::Integrity,
            Refusal::ArchMismatch { .. } => RefusalKind::Operational,
            _ => RefusalKind::Security,
        }
    }
}

fn label_text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

fn tids(t: &[i32]) -> String {
    t.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Integrity { kind: IntegrityFailure::BadSignature, detail } => write!(
                f,
                "refused: the image's signature does not verify ({detail}); it was altered after signing; do not restore it, dump again"
            ),
            Refusal::Integrity { kind, detail } => write!(
                f,
                "refused: image integrity: {kind}: {detail}; the image is corrupt, truncated or from an incompatible ckpt; dump again"
            ),
            Refusal::Unsigned { required_by } => write!(
                f,
                "refused: {required_by}, but the image is unsigned; dump with --sign-key, or restore without {required_by}"
            ),
            Refusal::UntrustedSigner { key, required_by } => write!(
                f,
                "refused: {required_by}, but the image is signed by the key {key}, which is not given with --trusted-key; add --trusted-key with that public key if you trust it"
            ),
            Refusal::UnsignedStream => f.write_str(
                "refused: the image is an unsigned stream, so nothing says who wrote its credentials, and you hold privilege (uid 0 or capabilities); sign it at dump with --sign-key and restore with --trusted-key, or restore with --trust-unsigned-stream if you trust its sender",
            ),
            Refusal::CredsNotVouched { tid, components, claimed, principal } => {
                let what = components.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                write!(
                    f,
                    "refused: task {tid} claims {what} ({claimed}) that the image's author, {principal}, could not have set, and you hold privilege, so re-deriving them from your credentials would run the image's code with your privilege; if you trust the image, sign it at dump with --sign-key and restore with --trusted-key, or check it and chown it to root (mode 0600)"
                )
            }
            Refusal::ArchMismatch { image, host } => write!(
                f,
                "refused: the image was made on {image}, this host is {host}; restore it on a {image} host"
            ),
            Refusal::StackMismatch { required_by: StackRequirement::KeepLsm, image, host } => write!(
                f,
                "refused: --keep-lsm needs the same LSM stack; image has {}, host has {}; restore without --keep-lsm to run with your own labels",
                image.join(","),
                host.join(",")
            ),
            Refusal::StackMismatch { required_by: StackRequirement::RequireSamePolicy, image, host } => write!(
                f,
                "refused: --require-same-policy, but the LSM stack differs; image has {}, host has {}; restore without --require-same-policy to accept the difference",
                image.join(","),
                host.join(",")
            ),
            Refusal::PolicyChanged { lsm, status } => write!(
                f,
                "refused: --require-same-policy, but the {lsm} policy differs from the dump's: {status}; restore without --require-same-policy to accept it (with --keep-lsm the labels are still checked)"
            ),
            Refusal::PolicyUnknown { lsm, reason } => write!(
                f,
                "refused: --require-same-policy, but the {lsm} policy cannot be compared ({reason}); restore without --require-same-policy to accept it"
            ),
            Refusal::LabelInvalid { tid, lsm, attr, label, why } => write!(
                f,
                "refused: --keep-lsm, but label {label:?} ({lsm}/{attr}) of task {tid} is not valid under this host's policy: {why}; restore without --keep-lsm to run with your own labels"
            ),
            Refusal::LabelUncheckable { tid, lsm, attr, label, why } => write!(
                f,
                "refused: --keep-lsm, but label {label:?} ({lsm}/{attr}) of task {tid} cannot be checked against this host's policy: {why}; restore without --keep-lsm to run with your own labels"
            ),
            Refusal::CredsNotRestorable { tid, change } => write!(
                f,
                "refused: --strict-creds, but task {tid}'s {} ({}) cannot be set by you: {}; restore without --strict-creds to get {}, or restore as a user who may set them",
                change.component, change.image, change.rule, change.applied
            ),
            Refusal::BoundingSetNotRestorable { tid, not_dropped } => write!(
                f,
                "refused: task {tid}'s capability bounding set excludes {} but you cannot drop them (needs CAP_SETPCAP), and confinement is never dropped; restore as root, or with --pid-ns",
                cap::names(*not_dropped)
            ),
            Refusal::SecurebitsNotRestorable { tid, lost } => write!(
                f,
                "refused: task {tid} has securebits {lost:#x} that you cannot set (needs CAP_SETPCAP, or your own securebits are locked), and confinement is never dropped; restore as root, or with --pid-ns"
            ),
            Refusal::SeccompNeedsPrivilege { tid, filters } => write!(
                f,
                "refused: task {tid} has {filters} seccomp filter(s) but no no_new_privs; installing them needs CAP_SYS_ADMIN, which you lack, and ckpt does not set no_new_privs for it (that would change what the program may exec); restore as root, or with --pid-ns"
            ),
            Refusal::SeccompNotCaptured { tid, what } => write!(
                f,
                "refused: task {tid}'s seccomp state cannot be restored: {what}; the image is corrupt or was not written by ckpt"
            ),
            Refusal::PidsNeedCheckpointRestore { tids: t } => write!(
                f,
                "refused: keeping the checkpointed PIDs ({}) needs CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN), which you lack; restore with --pid-ns to restore into a new PID namespace",
                tids(t)
            ),
            Refusal::ConfiningLabelDropped { tid, lsm, label, caller_label } => write!(
                f,
                "refused: task {tid} ran confined by {lsm} label {label:?}; restoring it with your label ({}) would give that confinement up; use --keep-lsm to keep it, --lsm-as-caller to accept your own label, or --lsm-label {lsm}:LABEL to name one",
                caller_label.as_deref().unwrap_or("none on this host")
            ),
            Refusal::FilesAsCallerNotVouched { principal } => write!(
                f,
                "refused: --files-as-caller would open the files the image names with your authority, and the image's author, {principal}, cannot vouch for those paths (it could name any file you may open); restore without --files-as-caller, or sign the image at dump with --sign-key and restore with --trusted-key, or check it and chown it to root (mode 0600)"
            ),
            Refusal::LabelNotVouched { tid, lsm, label, principal } => write!(
                f,
                "refused: --keep-lsm: task {tid} claims {lsm} label {label:?}, and the image's author, {principal}, cannot vouch for a label (it is privilege under a MAC policy); name the label yourself with --lsm-label {lsm}:LABEL, or sign the image at dump with --sign-key and restore with --trusted-key, or check it and chown it to root (mode 0600)"
            ),
        }
    }
}

/// Something the user should know that does not refuse the restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    /// 3.1: signed by a key not given with `--trusted-key`.
    UntrustedSigner { key: SignerKey },
    /// 3.2: another stack, labels not kept.
    StackDiffers {
        image: Vec<String>,
        host: Vec<String>,
    },
    /// 3.4: this LSM's policy changed since the dump.
    PolicyChanged { lsm: String, status: LsmStatus },
    /// 3.4: this LSM's policy cannot be compared.
    PolicyUnknown { lsm: String, reason: String },
    /// 3.6: the caller has no_new_privs, the image's task did not; the
    /// kernel cannot clear it, so the restored task runs with it.
    NoNewPrivsInherited { tids: Vec<i32> },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UntrustedSigner { key } => write!(
                f,
                "warning: the image is signed by key {key}, which is not given with --trusted-key; its signature proves nothing about who made it"
            ),
            Warning::StackDiffers { image, host } => write!(
                f,
                "warning: the LSM stack differs (image has {}, host has {}); labels are not restored, the process runs with yours",
                image.join(","),
                host.join(",")
            ),
            Warning::PolicyChanged { lsm, status } => write!(
                f,
                "warning: the {lsm} policy differs from the dump's: {status}; use --require-same-policy to refuse such restores"
            ),
            Warning::PolicyUnknown { lsm, reason } => write!(
                f,
                "warning: the {lsm} policy cannot be compared ({reason}); use --require-same-policy to refuse such restores"
            ),
            Warning::NoNewPrivsInherited { tids: t } => write!(
                f,
                "warning: you run with no_new_privs, so task(s) {} will too although they did not at dump (the kernel cannot clear it); setuid programs they exec will not gain privileges",
                tids(t)
            ),
        }
    }
}

/// Information about how the restore will differ from the image, or how it
/// will be carried out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Notice {
    /// Signed by a trusted key.
    SignedByTrustedKey { key: SignerKey },
    /// 3.2: the image's labels are not restored.
    LabelsNotRestored { count: usize },
    /// 3.3: the image's labels will be written by the tasks themselves.
    LabelsKept { count: usize },
    /// 3.5: a credential component comes from the caller (or is narrowed).
    CredsRederived { tid: i32, change: CredsChange },
    /// `--pid-ns` without CAP_SYS_ADMIN: a new user namespace too.
    NewUserNamespace { uid: u32, gid: u32 },
    /// `--pid-ns`: a new PID namespace.
    NewPidNamespace,
    /// 3.7: `--files-as-caller`.
    FilesAsCaller,
    /// Another kernel release than at dump.
    KernelDiffers { image: String, host: String },
    /// 3.2 `--lsm-as-caller`: each confining label given up.
    LabelsGivenUp { labels: Vec<GivenUpLabel> },
    /// 3.2 `--lsm-label`: the labels the operator named.
    LabelsChosen { labels: Vec<ChosenLabel> },
    /// 3.5: who vouches for the image's credentials.
    Principal { principal: ImagePrincipal },
    /// 3.5: a hard limit the restored identity could not set.
    RlimitCapped { tid: i32, capped: RlimitCapped },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::SignedByTrustedKey { key } => write!(f, "notice: signed by trusted key {key}"),
            Notice::LabelsNotRestored { count } => write!(
                f,
                "notice: {count} LSM label(s) recorded in the image are not restored (no --keep-lsm); the process runs with your labels"
            ),
            Notice::LabelsKept { count } => write!(
                f,
                "notice: {count} LSM label(s) will be set by the restored tasks themselves; the LSM decides whether each transition is allowed"
            ),
            Notice::CredsRederived { tid, change } => {
                write!(f, "notice: task {tid} gets {change}; use --strict-creds to refuse instead")
            }
            Notice::NewUserNamespace { uid, gid } => write!(
                f,
                "notice: --pid-ns without CAP_SYS_ADMIN: restoring in a new user namespace with only uid {uid} and gid {gid} mapped; capabilities there give nothing outside it"
            ),
            Notice::NewPidNamespace => f.write_str("notice: --pid-ns: restoring in a new PID namespace with ckpt as its init"),
            Notice::FilesAsCaller => f.write_str(
                "notice: --files-as-caller: files are reopened with your authority, not the restored identity's; each is listed as it is opened",
            ),
            Notice::KernelDiffers { image, host } => {
                write!(f, "notice: the image was made on kernel {image}, this host runs {host}")
            }
            Notice::LabelsGivenUp { labels } => write!(
                f,
                "notice: --lsm-as-caller: running with your labels, giving up the confinement of {}",
                labels.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
            Notice::LabelsChosen { labels } => write!(
                f,
                "notice: --lsm-label: the tasks set {} themselves instead of the image's; the LSM decides whether each transition is allowed",
                labels.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
            Notice::Principal { principal } => {
                write!(f, "notice: the image's credentials are vouched for by {principal}")
            }
            Notice::RlimitCapped { tid, capped } => write!(
                f,
                "notice: task {tid} gets hard {} {} instead of the image's {} (your own hard limit; raising it needs CAP_SYS_RESOURCE, which the restored identity lacks)",
                rlimit_rules::resource_name(capped.resource),
                rlimit_rules::limit_text(capped.hard),
                rlimit_rules::limit_text(capped.image_hard)
            ),
        }
    }
}

/// Whose authority reopens files and mappings (DESIGN 3.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FileAuthority {
    /// The restored task, after its credentials and labels are in place.
    RestoredTask,
    /// The caller (`--files-as-caller`).
    Caller,
}

/// What one restored thread sets on itself, in the order of the
/// `creds_rules` module documentation, then no_new_privs, labels, files
/// and, last before resuming, seccomp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskPlan {
    pub tid: i32,
    /// The credentials to apply (the image's, or re-derived).
    pub creds: TaskCreds,
    /// The image's credentials are applied unchanged.
    pub creds_from_image: bool,
    /// The components that differ from the image's, and why.
    pub creds_changes: Vec<CredsChange>,
    /// Labels the task writes through `/proc/thread-self/attr/...` itself
    /// (empty without `--keep-lsm`). `lsm` is resolved: never empty when
    /// the image's stack names a label LSM.
    pub labels: Vec<TaskLabel>,
    /// Always restored: the image's value, or true when the caller has it.
    pub no_new_privs: bool,
    /// Always restored.
    pub seccomp: SeccompMode,
    /// Always restored, oldest first.
    #[serde(skip)]
    pub seccomp_filters: Vec<Vec<u8>>,
    pub personality: u32,
    /// Resource limits to set, each hard limit within what the restored
    /// identity could set (3.5).
    pub rlimits: Vec<Rlimit>,
}

/// How the engine carries the restore out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RestorePlan {
    /// Restore into a new PID namespace (ckpt its init).
    pub new_pid_namespace: bool,
    /// Restore into a new user namespace ([`CallerContext::in_new_user_ns`]).
    pub new_user_namespace: bool,
    pub files_opened_by: FileAuthority,
    pub tasks: Vec<TaskPlan>,
}

/// Allowed or refused (two outcomes by definition, so not
/// `#[non_exhaustive]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allowed,
    Refused,
}

/// The result of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RestoreVerdict {
    pub outcome: Outcome,
    /// Why it is refused, in rule order (empty when allowed).
    pub refusals: Vec<Refusal>,
    pub warnings: Vec<Warning>,
    pub notices: Vec<Notice>,
    /// What the engine does; present exactly when allowed.
    pub plan: Option<RestorePlan>,
    /// Who vouches for the image's credentials (absent when integrity
    /// failed first).
    pub principal: Option<ImagePrincipal>,
    /// The per-LSM comparison the verdict used (absent when integrity or
    /// signature failed first, since then nothing else is trusted).
    pub diff: Option<PolicyDiff>,
}

impl RestoreVerdict {
    pub fn allowed(&self) -> bool {
        self.outcome == Outcome::Allowed
    }

    /// The process exit code of DESIGN 2: 0 allowed, 3 refused by a
    /// security rule, 1 for a corrupt/unsupported image or one that cannot
    /// run on this host at all (when no security rule also refused).
    pub fn exit_code(&self) -> i32 {
        if self.allowed() {
            0
        } else if self
            .refusals
            .iter()
            .any(|r| r.kind() == RefusalKind::Security)
        {
            3
        } else {
            1
        }
    }

    /// What `policy-diff` prints: the per-LSM diff (when the image's
    /// integrity allowed computing it), then the reasons and the verdict.
    pub fn report_text(&self) -> String {
        let mut out = String::new();
        if let Some(d) = &self.diff {
            out.push_str(&d.to_string());
        }
        out.push_str(&self.to_string());
        out
    }

    /// The JSON that `policy-diff --json` and `restore` print: the
    /// structured verdict plus each reason's message.
    pub fn to_json(&self) -> serde_json::Value {
        let msgs = |v: Vec<String>| serde_json::Value::from(v);
        serde_json::json!({
            "outcome": self.outcome,
            "exit_code": self.exit_code(),
            "refusals": self.refusals,
            "warnings": self.warnings,
            "notices": self.notices,
            "messages": {
                "refusals": msgs(self.refusals.iter().map(ToString::to_string).collect()),
                "warnings": msgs(self.warnings.iter().map(ToString::to_string).collect()),
                "notices": msgs(self.notices.iter().map(ToString::to_string).collect()),
            },
            "plan": self.plan,
            "principal": self.principal,
            "principal_text": self.principal.as_ref().map(ToString::to_string),
            "diff": self.diff,
        })
    }
}

impl fmt::Display for RestoreVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.refusals {
            writeln!(f, "{r}")?;
        }
        for w in &self.warnings {
            writeln!(f, "{w}")?;
        }
        for n in &self.notices {
            writeln!(f, "{n}")?;
        }
        match self.outcome {
            Outcome::Allowed => writeln!(f, "verdict: restore allowed"),
            Outcome::Refused => writeln!(
                f,
                "verdict: restore refused ({} reason{})",
                self.refusals.len(),
                if self.refusals.len() == 1 { "" } else { "s" }
            ),
        }
    }
}

/// LSMs whose tasks carry labels in `/proc/PID/attr`, in the order the
/// legacy (un-prefixed) files would show the first one present.
pub const LABEL_LSMS: &[&str] = &["selinux", "smack", "apparmor"];

/// Attributes the kernel derives itself and a task cannot write.
const READ_ONLY_ATTRS: &[&str] = &["prev"];

fn trim_label(v: &[u8]) -> &[u8] {
    let end = v
        .iter()
        .rposition(|&b| b != 0 && b != b'\n')
        .map_or(0, |i| i + 1);
    &v[..end]
}

/// The labels the task must write with `--keep-lsm`: non-empty, writable,
/// the legacy (`lsm == ""`) ones resolved to the image's first label LSM,
/// and a legacy label dropped when the same LSM's own attribute is also
/// recorded.
fn labels_to_apply(task: &TaskSecurity, image: &HostProfile) -> Vec<TaskLabel> {
    let display = image
        .stack()
        .into_iter()
        .find(|n| LABEL_LSMS.contains(n))
        .unwrap_or("");
    let mut out: Vec<TaskLabel> = Vec::new();
    // Per-LSM attributes first, so that they win over the legacy files.
    let (own, legacy): (Vec<&TaskLabel>, Vec<&TaskLabel>) =
        task.labels.iter().partition(|l| !l.lsm.is_empty());
    for l in own.into_iter().chain(legacy) {
        let value = trim_label(&l.value);
        if value.is_empty() || READ_ONLY_ATTRS.contains(&l.attr.as_str()) {
            continue;
        }
        let lsm = if l.lsm.is_empty() {
            display
        } else {
            l.lsm.as_str()
        };
        if out.iter().any(|o| o.lsm == lsm && o.attr == l.attr) {
            continue;
        }
        out.push(TaskLabel {
            lsm: lsm.to_owned(),
            attr: l.attr.clone(),
            value: value.to_vec(),
        });
    }
    out
}

/// 3.3: why label `l` of task `tid` may not be applied on this host, if so.
fn label_refusal(input: &VerdictInput<'_>, tid: i32, l: &TaskLabel) -> Option<Refusal> {
    let label = label_text(&l.value);
    let (lsm, attr) = (l.lsm.clone(), l.attr.clone());
    // A label for an LSM outside the stack (a forged image, a legacy
    // attribute with no label LSM, a mistyped --lsm-label) has no one to
    // judge it.
    let check = if input.host.lsm(&l.lsm).is_some() {
        input.labels.check(&l.lsm, &l.attr, &l.value)
    } else {
        LabelCheck::Invalid {
            why: format!("no LSM named {:?} is in the stack to apply it", l.lsm),
        }
    };
    match check {
        LabelCheck::Valid => None,
        LabelCheck::Invalid { why } => Some(Refusal::LabelInvalid {
            tid,
            lsm,
            attr,
            label,
            why,
        }),
        LabelCheck::Unknown { why } => Some(Refusal::LabelUncheckable {
            tid,
            lsm,
            attr,
            label,
            why,
        }),
    }
}

/// DESIGN 3 as one pure function. Rule order: integrity, signature (both
/// stop here, since nothing else in the image is trusted then),
/// architecture, stack and policy (3.2-3.4), labels (3.3), and per task
/// credentials (3.5) and confinement (3.6), then PID ownership.
pub fn decide(input: &VerdictInput<'_>) -> RestoreVerdict {
    let flags = input.flags;
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    let mut notices = Vec::new();
    let early = |refusals: Vec<Refusal>, warnings, notices, principal| RestoreVerdict {
        outcome: Outcome::Refused,
        refusals,
        warnings,
        notices,
        plan: None,
        principal,
        diff: None,
    };

    // 3.1 integrity first.
    if let IntegrityStatus::Failed { kind, detail } = input.integrity {
        return early(
            vec![Refusal::Integrity {
                kind: *kind,
                detail: detail.clone(),
            }],
            warnings,
            notices,
            None,
        );
    }
    // 3.1 signature (`--trusted-key` requires one as `--require-signature`
    // does).
    let principal = ImagePrincipal::of(input.origin, input.signature, flags);
    match (input.signature, flags.signature_required()) {
        (SignatureStatus::Unsigned, Some(required_by)) => {
            return early(
                vec![Refusal::Unsigned { required_by }],
                warnings,
                notices,
                Some(principal),
            );
        }
        (SignatureStatus::Unsigned, None) => {}
        (SignatureStatus::Signed { key }, _) if flags.trusted_keys.contains(key) => {
            notices.push(Notice::SignedByTrustedKey { key: *key });
        }
        (SignatureStatus::Signed { key }, Some(required_by)) => {
            return early(
                vec![Refusal::UntrustedSigner {
                    key: *key,
                    required_by,
                }],
                warnings,
                notices,
                Some(principal),
            );
        }
        (SignatureStatus::Signed { key }, None) => {
            warnings.push(Warning::UntrustedSigner { key: *key })
        }
    }
    // 3.5: an unsigned stream has no known author; a caller with privilege
    // takes its claims only with --trust-unsigned-stream.
    notices.push(Notice::Principal {
        principal: principal.clone(),
    });
    if principal == ImagePrincipal::UnknownStream && input.caller.holds_privilege() {
        return early(
            vec![Refusal::UnsignedStream],
            warnings,
            notices,
            Some(principal),
        );
    }
    let authority = owner_as_caller(principal.authority(), input.caller);
    let vouched = principal_vouches_for_caller_authority(&principal, input.caller);

    let diff = PolicyDiff::compute(input.image, input.host);
    if diff.arch.0 != diff.arch.1 {
        refusals.push(Refusal::ArchMismatch {
            image: diff.arch.0.clone(),
            host: diff.arch.1.clone(),
        });
    }
    if diff.kernel_release.0 != diff.kernel_release.1 {
        notices.push(Notice::KernelDiffers {
            image: diff.kernel_release.0.clone(),
            host: diff.kernel_release.1.clone(),
        });
    }

    // 3.2 / 3.3 / 3.4: the stack.
    if !diff.stack_equal {
        let (image, host) = (diff.image_stack.clone(), diff.host_stack.clone());
        if flags.keep_lsm {
            refusals.push(Refusal::StackMismatch {
                required_by: StackRequirement::KeepLsm,
                image,
                host,
            });
        } else if flags.require_same_policy {
            refusals.push(Refusal::StackMismatch {
                required_by: StackRequirement::RequireSamePolicy,
                image,
                host,
            });
        } else {
            warnings.push(Warning::StackDiffers { image, host });
        }
    }
    // 3.4: each LSM on both sides.
    for l in diff.differing() {
        let lsm = l.name.clone();
        match (&l.status, flags.require_same_policy) {
            (LsmStatus::Unknown { reason }, true) => refusals.push(Refusal::PolicyUnknown {
                lsm,
                reason: reason.clone(),
            }),
            (LsmStatus::Unknown { reason }, false) => warnings.push(Warning::PolicyUnknown {
                lsm,
                reason: reason.clone(),
            }),
            (status, true) => refusals.push(Refusal::PolicyChanged {
                lsm,
                status: status.clone(),
            }),
            (status, false) => warnings.push(Warning::PolicyChanged {
                lsm,
                status: status.clone(),
            }),
        }
    }

    // The context the restored tasks start in.
    let new_user_ns = flags.pid_ns && !input.caller.has_sys_admin();
    let restorer = if new_user_ns {
        let inside = input.caller.in_new_user_ns();
        notices.push(Notice::NewUserNamespace {
            uid: inside.creds.uids[1],
            gid: inside.creds.gids[1],
        });
        inside
    } else {
        input.caller.clone()
    };
    if flags.pid_ns {
        notices.push(Notice::NewPidNamespace);
    }

    // 3.2 / 3.3: labels.
    let chosen: Vec<TaskLabel> = flags
        .lsm_labels
        .iter()
        .map(ChosenLabel::as_task_label)
        .collect();
    let is_chosen = |l: &TaskLabel| chosen.iter().any(|c| c.lsm == l.lsm && c.attr == l.attr);
    let mut label_count = 0;
    let mut given_up = Vec::new();
    let mut task_labels = Vec::with_capacity(input.tasks.len());
    for t in input.tasks {
        let recorded = labels_to_apply(t, input.image);
        label_count += recorded.len();
        // What the task writes: the image's labels with --keep-lsm (a chosen
        // label replaces the image's of the same LSM), else only the chosen.
        let mut labels: Vec<TaskLabel> = if flags.keep_lsm {
            recorded.iter().filter(|l| !is_chosen(l)).cloned().collect()
        } else {
            Vec::new()
        };
        labels.extend(chosen.iter().cloned());
        if !flags.keep_lsm {
            // 3.2: a recorded label that confined the task is not silently given up.
            for l in recorded
                .iter()
                .filter(|l| l.attr == "current" && !is_chosen(l))
            {
                let mine = confinement::caller_label(input.caller, input.host, &l.lsm);
                if !confinement::is_confining(&l.lsm, &l.value, mine.as_deref()) {
                    continue;
                }
                let (tid, lsm, label) = (t.tid, l.lsm.clone(), label_text(&l.value));
                if flags.lsm_as_caller {
                    given_up.push(GivenUpLabel { tid, lsm, label });
                } else {
                    refusals.push(Refusal::ConfiningLabelDropped {
                        tid,
                        lsm,
                        label,
                        caller_label: mine.map(|v| label_text(&v)),
                    });
                }
            }
        }
        // 3.3 with 3.5: a kept label other than the caller's own needs an
        // author who could have held it, when the caller holds privilege.
        if flags.keep_lsm && !vouched && input.caller.holds_privilege() {
            for l in labels.iter().filter(|l| !is_chosen(l)) {
                let mine = confinement::caller_label(input.caller, input.host, &l.lsm);
                if mine.as_deref() != Some(l.value.as_slice()) {
                    refusals.push(Refusal::LabelNotVouched {
                        tid: t.tid,
                        lsm: l.lsm.clone(),
                        label: label_text(&l.value),
                        principal: principal.clone(),
                    });
                }
            }
        }
        // Checked under the current policy: kept labels (same stack only:
        // otherwise the stack refusal says it all) and chosen ones always.
        let check_all = flags.keep_lsm && diff.stack_equal;
        for l in labels.iter().filter(|l| check_all || is_chosen(l)) {
            if let Some(r) = label_refusal(input, t.tid, l) {
                refusals.push(r);
            }
        }
        task_labels.push(labels);
    }
    if label_count > 0 {
        notices.push(if flags.keep_lsm {
            Notice::LabelsKept { count: label_count }
        } else {
            Notice::LabelsNotRestored { count: label_count }
        });
    }
    if !given_up.is_empty() {
        notices.push(Notice::LabelsGivenUp { labels: given_up });
    }
    if !flags.lsm_labels.is_empty() {
        notices.push(Notice::LabelsChosen {
            labels: flags.lsm_labels.clone(),
        });
    }

    // 3.5 / 3.6 per task.
    let mut tasks = Vec::with_capacity(input.tasks.len());
    let mut nnp_inherited = Vec::new();
    for (t, labels) in input.tasks.iter().zip(task_labels) {
        let tid = t.tid;
        let res = creds_rules::resolve(&t.creds, &restorer.creds, restorer.id_limits.as_ref());
        // In a new user namespace ckpt holds every capability, which it
        // needs to *apply* confinement (the bounding set, a filter without
        // no_new_privs): `res` says what can be applied. What the task is
        // *granted* stays bounded by the caller's own capabilities on the
        // host (DESIGN 1: never more privileged than the caller), so the
        // credentials come from a second resolution against those.
        let grant = if new_user_ns {
            let mut bounded = restorer.creds.clone();
            let host = &input.caller.creds.caps;
            bounded.caps.permitted = host.permitted;
            bounded.caps.effective = host.permitted;
            bounded.caps.inheritable = host.inheritable;
            bounded.caps.ambient = 0;
            let mut g = creds_rules::resolve(&t.creds, &bounded, restorer.id_limits.as_ref());
            // The bounding set is applied with the namespace's capabilities:
            // its outcome (and any change to it) is `res`'s.
            g.applied.caps.bounding = res.applied.caps.bounding;
            g.changes
                .retain(|c| c.component != CredsComponent::BoundingSet);
            g.changes.extend(
                res.changes
                    .iter()
                    .filter(|c| c.component == CredsComponent::BoundingSet)
                    .cloned(),
            );
            g
        } else {
            res.clone()
        };
        // 3.5: only what the image's principal could have set, too.
        let mut grant = grant;
        let mut from_caller =
            creds_rules::limit_to_principal(&mut grant, &t.creds, &restorer.creds, &authority);
        // Ids the caller could not set for the image come from the caller
        // too: with an author other than the caller, that hands a
        // privileged caller's identity to the image's code just the same.
        if authority != creds_rules::PrincipalAuthority::Any {
            for c in &grant.changes {
                let id = matches!(
                    c.component,
                    CredsComponent::Uids | CredsComponent::Gids | CredsComponent::Groups
                );
                if id && !from_caller.contains(&c.component) {
                    from_caller.push(c.component);
                }
            }
        }
        if !from_caller.is_empty() && input.caller.holds_privilege() {
            refusals.push(Refusal::CredsNotVouched {
                tid,
                claimed: claimed_text(&t.creds, &from_caller),
                components: from_caller,
                principal: principal.clone(),
            });
        }
        // 3.5: hard limits within what the restored identity could set.
        let may_raise = cap::has(grant.applied.caps.permitted, cap::SYS_RESOURCE)
            && !new_user_ns
            && input.caller.initial_user_ns;
        let image_limits = input
            .rlimits
            .iter()
            .find(|r| r.pid == tid)
            .map_or(&[][..], |r| &r.limits[..]);
        let (rlimits, capped) =
            rlimit_rules::plan_rlimits(image_limits, &input.caller.rlimits, may_raise);
        notices.extend(
            capped
                .into_iter()
                .map(|capped| Notice::RlimitCapped { tid, capped }),
        );
        for change in &grant.changes {
            if flags.strict_creds {
                refusals.push(Refusal::CredsNotRestorable {
                    tid,
                    change: change.clone(),
                });
            } else {
                notices.push(Notice::CredsRederived {
                    tid,
                    change: change.clone(),
                });
            }
        }
        if res.bounding_not_dropped != 0 {
            refusals.push(Refusal::BoundingSetNotRestorable {
                tid,
                not_dropped: res.bounding_not_dropped,
            });
        }
        if res.securebits_lost != 0 {
            refusals.push(Refusal::SecurebitsNotRestorable {
                tid,
                lost: res.securebits_lost,
            });
        }
        let no_new_privs = t.no_new_privs || restorer.no_new_privs;
        if no_new_privs && !t.no_new_privs {
            nnp_inherited.push(tid);
        }
        match (t.seccomp, t.seccomp_filters.len()) {
            (SeccompMode::Filter, 0) => refusals.push(Refusal::SeccompNotCaptured {
                tid,
                what: "filter mode without any recorded filter".into(),
            }),
            // seccomp(2) installs a filter only with no_new_privs or
            // CAP_SYS_ADMIN (kernel/seccomp.c seccomp_prepare_filter).
            (SeccompMode::Filter, n)
                if !no_new_privs && !cap::has(res.permitted_after_id_change, cap::SYS_ADMIN) =>
            {
                refusals.push(Refusal::SeccompNeedsPrivilege { tid, filters: n });
            }
            (SeccompMode::Filter, _) => {}
            (mode, n) if n > 0 => refusals.push(Refusal::SeccompNotCaptured {
                tid,
                what: format!(
                    "{n} filter(s) recorded with seccomp mode {}",
                    mode.as_status()
                ),
            }),
            _ => {}
        }
        tasks.push(TaskPlan {
            tid,
            creds_from_image: grant.exact(),
            creds: grant.applied,
            creds_changes: grant.changes,
            labels,
            no_new_privs,
            seccomp: t.seccomp,
            seccomp_filters: t.seccomp_filters.clone(),
            personality: t.personality,
            rlimits,
        });
    }
    if !nnp_inherited.is_empty() {
        warnings.push(Warning::NoNewPrivsInherited {
            tids: nnp_inherited,
        });
    }

    // DESIGN 2: keeping the PIDs.
    // With --pid-ns the restorer owns the new PID namespace through its user
    // namespace (CAP_SYS_ADMIN, or the new user namespace it creates), so
    // this only refuses without it.
    if !input.tasks.is_empty() && !restorer.can_claim_pids() {
        refusals.push(Refusal::PidsNeedCheckpointRestore {
            tids: input.tasks.iter().map(|t| t.tid).collect(),
        });
    }
    if flags.files_as_caller && !vouched && input.caller.holds_privilege() {
        refusals.push(Refusal::FilesAsCallerNotVouched {
            principal: principal.clone(),
        });
    }
    if flags.files_as_caller {
        notices.push(Notice::FilesAsCaller);
    }

    let outcome = if refusals.is_empty() {
        Outcome::Allowed
    } else {
        Outcome::Refused
    };
    RestoreVerdict {
        outcome,
        plan: (outcome == Outcome::Allowed).then_some(RestorePlan {
            new_pid_namespace: flags.pid_ns,
            new_user_namespace: new_user_ns,
            files_opened_by: if flags.files_as_caller {
                FileAuthority::Caller
            } else {
                FileAuthority::RestoredTask
            },
            tasks,
        }),
        refusals,
        warnings,
        notices,
        principal: Some(principal),
        diff: Some(diff),
    }
}

/// Whether the image's principal vouches for claims that only the caller's
/// own authority could honour: kept labels (DESIGN 3.3 with 3.5) and the
/// paths `--files-as-caller` opens (3.7 with 3.5). A trusted signer or
/// stream, a root-owned file (root could have set any label and opened any
/// file), or a file the caller owns (the caller's own claim) vouches.
fn principal_vouches_for_caller_authority(
    principal: &ImagePrincipal,
    caller: &CallerContext,
) -> bool {
    match principal {
        ImagePrincipal::FileOwner { owner } => {
            owner.uid == 0 || caller.creds.uids[..3].iter().all(|&u| u == owner.uid)
        }
        other => other.authority() == creds_rules::PrincipalAuthority::Any,
    }
}

/// A file owner who is the caller itself demonstrably holds the caller's
/// gids and groups too (a session may carry groups the user database does
/// not list), so those are vouched for as well.
fn owner_as_caller(
    authority: creds_rules::PrincipalAuthority,
    caller: &CallerContext,
) -> creds_rules::PrincipalAuthority {
    match authority {
        creds_rules::PrincipalAuthority::Ids {
            uid,
            mut gids,
            mut groups,
        } if caller.creds.uids[..3].iter().all(|&u| u == uid) => {
            gids.extend_from_slice(&caller.creds.gids);
            groups.extend_from_slice(&caller.creds.groups);
            creds_rules::PrincipalAuthority::Ids { uid, gids, groups }
        }
        other => other,
    }
}

/// The image's values of `components`, for a refusal: `uids 0/0/0/0`.
fn claimed_text(creds: &TaskCreds, components: &[CredsComponent]) -> String {
    let ids = |v: &[u32; 4]| format!("{}/{}/{}/{}", v[0], v[1], v[2], v[3]);
    let mut parts: Vec<String> = components
        .iter()
        .map(|c| match c {
            CredsComponent::Uids => format!("uids {}", ids(&creds.uids)),
            CredsComponent::Gids => format!("gids {}", ids(&creds.gids)),
            _ => format!(
                "groups {}",
                creds
                    .groups
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        })
        .collect();
    if creds.caps.permitted != 0 {
        parts.push(format!(
            "permitted capabilities {}",
            cap::names(creds.caps.permitted)
        ));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests;
