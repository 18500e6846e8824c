//! LSM stack, policy fingerprints, task labels and the restore verdict.
//!
//! - [`profile`]: the host's LSM profile (stack + fingerprints), live form.
//! - [`task`]: per-task security state (credentials, labels, nnp, seccomp).
#![deny(unsafe_code)]

pub mod profile;
pub mod task;

pub use profile::*;
pub use task::*;
