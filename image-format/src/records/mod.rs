//! Protobuf records stored in an image's sections.
//!
//! These are the *stored* forms (prost derives, tagged fields so that a newer
//! writer's extra fields are skipped by an older reader). The live, in-memory
//! types of the engine and of lsm-labels are separate and convert to and from
//! these records; nothing outside this crate should treat a record as live state.
//!
//! Compatibility rule: never reuse or renumber a tag; add fields with new tags
//! (a minor format version bump), and give every field a meaningful default.

pub mod security;

pub use security::*;
pub mod process;
pub use process::*;
