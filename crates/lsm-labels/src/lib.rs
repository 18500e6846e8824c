//! LSM stack, policy fingerprints, task labels and the restore verdict.
//!
//! - [`profile`]: the host's LSM profile (stack + fingerprints), live form.
//! - [`task`]: per-task security state (credentials, labels, nnp, seccomp).
//! - [`host`]: the host view (live `/` or a `--sysroot` copy), bounded reads.
//! - [`stack`]: the active LSM stack in kernel order.
//! - [`fingerprint`]: per-LSM policy fingerprint providers, canonical digest.
//! - [`bpf`]: BPF-LSM program selection, naming (BTF) and hashing.
//! - [`taskstate`]: a live task's credentials, labels and sandbox hint.
//! - [`persist`]: live types <-> the image's security records (validated).
//! - [`diff`]: an image's profile against a host's, per LSM.
//! - [`creds_rules`]: the kernel's rules for setting one's own credentials.
//! - [`verdict`]: DESIGN 3 as one pure function, [`verdict::decide`].
//! - `sys`: the only unsafe code (lsm_list_modules, landlock, bpf()).
#![deny(unsafe_code)]

pub mod bpf;
pub mod creds_rules;
pub mod diff;
pub mod fingerprint;
pub mod host;
pub mod persist;
pub mod profile;
pub mod stack;
mod sys;
pub mod task;
pub mod taskstate;
pub mod verdict;

pub use host::HostView;
pub use profile::*;
pub use task::*;

/// A failed host profile detection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    #[error(transparent)]
    Stack(#[from] stack::StackError),
}

/// Detects the host's LSM profile: the active stack in kernel order with a
/// fingerprint for every LSM, the kernel release and architecture.
///
/// On the live host, release and arch come from uname(2); on a sysroot,
/// from `DIR/proc/sys/kernel/{osrelease,arch}` (empty when missing).
pub fn detect_host_profile(view: &HostView) -> Result<HostProfile, DetectError> {
    let stack = stack::detect_stack(view)?;
    let lsms = stack
        .members
        .iter()
        .map(|m| LsmEntry { name: m.name.clone(), id: m.id, fingerprint: fingerprint::fingerprint_lsm(view, &m.name) })
        .collect();
    let (kernel_release, arch) = if view.is_live() {
        let u = nix::sys::utsname::uname().ok();
        (
            u.as_ref().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default(),
            u.as_ref().map(|u| u.machine().to_string_lossy().into_owned()).unwrap_or_default(),
        )
    } else {
        let r = |p: &str| view.read_text(p, 4096).map(|s| s.trim().to_owned()).unwrap_or_default();
        (r("/proc/sys/kernel/osrelease"), r("/proc/sys/kernel/arch"))
    };
    Ok(HostProfile { lsms, kernel_release, arch, stack_source: stack.source })
}
