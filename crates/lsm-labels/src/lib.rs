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
pub mod principal;
pub mod profile;
pub mod rlimit_rules;
pub mod stack;
mod sys;
pub mod task;
pub mod taskstate;
pub mod verdict;

pub use host::{detect_host_profile, DetectError, HostView};
pub use profile::*;
pub use task::*;
