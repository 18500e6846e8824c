//! Errors of the engine: one enum for dump, one for restore. Each variant
//! names the failed operation and its object; `exit_code` classifies them
//! (1 = operational, 3 = refused by a security rule, DESIGN 2).

use crate::ptrace::TraceError;
use std::path::PathBuf;

/// Exit code for an operational failure.
pub const EXIT_OPERATIONAL: i32 = 1;
/// Exit code for a refusal by a security rule.
pub const EXIT_SECURITY: i32 = 3;

/// A dump that failed. The target is left running and untraced, and no image remains.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    #[error(
        "cannot read the security state (credentials, labels, seccomp) of pid {pid}: {detail}"
    )]
    Security { pid: i32, detail: String },
    #[error("cannot freeze pid {pid}: {source} (does it exist, and may this user ptrace it?)")]
    Freeze {
        pid: i32,
        #[source]
        source: TraceError,
    },
    #[error("cannot dump pid {pid}: {source}")]
    Trace {
        pid: i32,
        #[source]
        source: TraceError,
    },
    #[error("cannot dump pid {pid}: {call} injected into it failed with errno {errno} ({})", std::io::Error::from_raw_os_error(*errno))]
    Injected { pid: i32, call: String, errno: i32 },
    #[error("cannot read /proc/{pid}/{file}: {source}")]
    Proc {
        pid: i32,
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot dump fd {fd} of pid {pid}: {what} (not supported yet); close it or use --leave-running to keep the process")]
    UnsupportedFd { pid: i32, fd: i32, what: String },
    #[error("cannot dump pid {pid}: {what} (not supported yet)")]
    Unsupported { pid: i32, what: String },
    /// State ckpt cannot restore yet (`dump_refusals`), found before the
    /// target was touched: `what` names the object, `way_out` what to do.
    #[error("cannot dump pid {pid}: {what}; {way_out}")]
    Refused {
        pid: i32,
        what: String,
        way_out: String,
    },
    #[error("refusing to dump pid {pid}: {what}; restoring it would drop that confinement")]
    Confinement { pid: i32, what: String },
    #[error("cannot read memory {start:#x}-{end:#x} of pid {pid}: {source}")]
    ReadMemory {
        pid: i32,
        start: u64,
        end: u64,
        #[source]
        source: TraceError,
    },
    #[error("cannot write image {}: {source}", path.display())]
    WriteImage {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write image: {0}")]
    Image(String),
    #[error("dump of pid {pid} is done but ending the target failed: {source}")]
    Finish {
        pid: i32,
        #[source]
        source: TraceError,
    },
}

impl DumpError {
    /// Process exit code for this error (DESIGN 2).
    pub fn exit_code(&self) -> i32 {
        match self {
            DumpError::Confinement { .. } => EXIT_SECURITY,
            _ => EXIT_OPERATIONAL,
        }
    }
    /// Whether this is a refusal by a security rule (exit 3).
    pub fn is_security_refusal(&self) -> bool {
        self.exit_code() == EXIT_SECURITY
    }
}

/// A restore that failed. Whatever was created has been killed and reaped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    #[error("cannot restore pid {pid}: that PID is taken on this host; end the process using it, or restore with --pid-ns")]
    PidTaken { pid: i32 },
    #[error("cannot restore pid {pid}: claiming a PID needs CAP_CHECKPOINT_RESTORE; run as root, or restore with --pid-ns")]
    NoCapability { pid: i32 },
    #[error("cannot restore pid {pid} with --detach: it has parent-death signal {signal} (prctl PR_SET_PDEATHSIG), which would kill it as soon as ckpt exits; restore it in the foreground, or with --pid-ns --detach (ckpt stays as its parent)")]
    DetachWithDeathSignal { pid: i32, signal: u32 },
    #[error("cannot create the task for pid {pid}: {source}")]
    Create {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up the new PID namespace for pid {pid}: {what}: {source}")]
    Namespace {
        pid: i32,
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The restore inside the new PID namespace failed; `message` is that
    /// error's text, `security` whether it was a security refusal.
    #[error("{message} (inside the new PID namespace)")]
    InNamespace {
        pid: i32,
        message: String,
        security: bool,
    },
    #[error("cannot restore pid {pid}: {source}")]
    Trace {
        pid: i32,
        #[source]
        source: TraceError,
    },
    #[error("cannot restore pid {pid}: {call} failed with errno {errno} ({})", std::io::Error::from_raw_os_error(*errno))]
    Injected { pid: i32, call: String, errno: i32 },
    #[error("refusing to restore pid {pid}: {path} is not the file that was dumped: {what}; put the original file back, or dump the process again")]
    FileChanged {
        pid: i32,
        path: String,
        what: String,
    },
    #[error("cannot restore pid {pid}: {source}; the image file was changed after it was verified (who else can write it?); nothing was left running")]
    PagesChanged {
        pid: i32,
        #[source]
        source: crate::page_check::PageCheckError,
    },
    #[error("cannot restore pid {pid}: cannot open {path} ({what}) in the restored task: {}; make it available at that path", std::io::Error::from_raw_os_error(*errno))]
    Open {
        pid: i32,
        path: String,
        what: String,
        errno: i32,
    },
    #[error(
        "cannot restore pid {pid}: this kernel's {what}; restore on the kernel that dumped it"
    )]
    KernelMismatch { pid: i32, what: String },
    #[error("cannot restore: the image is invalid: {0}")]
    BadImage(String),
    #[error("cannot restore: {0}")]
    Image(String),
    #[error("refusing to restore pid {pid}: {source}")]
    Security {
        pid: i32,
        #[source]
        source: crate::security_apply::SecurityApplyError,
    },
    #[error("refusing to restore pid {pid}: its restored identity (uid {uid}) may not open {path} ({what}): {}; the process probably opened it before dropping privileges: if the image is your own, signed by a key you trust, or root-owned after you checked it, restore with --files-as-caller to open it with your authority", std::io::Error::from_raw_os_error(*errno))]
    FileDenied {
        pid: i32,
        uid: u32,
        path: String,
        what: String,
        errno: i32,
    },
    #[error("cannot open {} for {stream}: {source}; name a file you may open yourself (it is opened with your authority, not through a symlink)", path.display())]
    StdioFile {
        stream: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot restore pid {pid}: cannot give the terminal on fd {fd} its recorded modes: {source}")]
    Terminal {
        pid: i32,
        fd: i32,
        source: std::io::Error,
    },
}

impl RestoreError {
    /// Process exit code for this error (DESIGN 2).
    pub fn exit_code(&self) -> i32 {
        match self {
            RestoreError::Security { source, .. } if source.is_refusal() => EXIT_SECURITY,
            RestoreError::FileDenied { .. } => EXIT_SECURITY,
            RestoreError::FileChanged { .. } => EXIT_SECURITY,
            RestoreError::InNamespace { security: true, .. } => EXIT_SECURITY,
            _ => EXIT_OPERATIONAL,
        }
    }
    /// Whether this is a refusal by a security rule (exit 3).
    pub fn is_security_refusal(&self) -> bool {
        self.exit_code() == EXIT_SECURITY
    }
}
