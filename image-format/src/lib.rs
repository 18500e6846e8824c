//! The ckpt image: on-disk layout, protobuf records, digests and signatures.
//!
//! An image is one file, written front to back as a stream (it works on a
//! pipe) and verified completely before anything in it is used. All integers
//! are little-endian. docs/image-format.md specifies every byte.
//!
//! ```text
//!  offset 0
//!  +-------------------------------------------------------------+
//!  | fixed header (32 bytes)                                     |
//!  |   magic "CKPTIMG\0" | major u16 | minor u16 | flags u32     |
//!  |   header_len u32 (=32) | reserved [12]                      |
//!  +-------------------------------------------------------------+  header_len
//!  | section 0: security header (SecurityHeaderRecord, protobuf) |
//!  +-------------------------------------------------------------+
//!  | section 1: record (e.g. ProcessRecord, protobuf)            |
//!  +-------------------------------------------------------------+
//!  | zero padding to the next multiple of 4096                   |
//!  +-------------------------------------------------------------+  4096 * k
//!  | section 2: raw pages (page-aligned, read straight in place) |
//!  +-------------------------------------------------------------+
//!  | ... more sections, in table order ...                       |
//!  +-------------------------------------------------------------+  trailer_offset
//!  | trailer                                                     |
//!  |   magic "CKPTTRL\0" | section_count u32 | reserved u32      |
//!  |   section_count x { kind u32 | flags u32 | offset u64 |     |
//!  |                     len u64 | sha256 [32] }                 |
//!  |   table digest [32] = SHA-256("ckpt image table v1\0"       |
//!  |                         || fixed header || trailer so far)  |
//!  |   signature scheme u32: 0 none | 1 Ed25519 +               |
//!  |     public key [32] + signature [64] over                   |
//!  |     "ckpt image signature v1\0" || table digest             |
//!  +-------------------------------------------------------------+
//!  | footer (24 bytes): trailer_offset u64 | trailer_len u64 |   |
//!  |                    magic "CKPTEND\0"                        |
//!  +-------------------------------------------------------------+  end of file
//! ```
//!
//! Every byte is covered: the header and the section table by the table
//! digest (and the signature, when present), section bytes by their SHA-256,
//! padding must be zero, and the footer must point exactly at the trailer,
//! which must start exactly where the last section ends.
//!
//! The format version ([`FORMAT_VERSION`]) is independent of the ckpt
//! version. Compatibility policy: a minor version may add section kinds,
//! protobuf fields, optional header flags and header bytes; readers skip
//! what they do not know. A reader refuses any other major version with a
//! message naming both versions ([`FormatError::UnsupportedVersion`]).
//!
//! Writing: [`ImageWriter`]. Reading: [`VerifiedImage`] (with a
//! [`SignaturePolicy`]). Keys: [`keys`]. What a reader may be made to
//! allocate: [`limits`].
//!
//! Reading order: footer and trailer, table digest, layout and the size
//! limit of each section kind (from the table, nothing else read yet),
//! signature and signature policy, section digests, then each record's
//! wire limits and only then its decoding.

#![deny(unsafe_code)]

pub mod error;
pub mod keys;
pub mod layout;
pub mod limits;
pub mod reader;
pub mod records;
pub mod signature_policy;
pub mod writer;

pub use error::{FormatError, FormatErrorKind};
pub use keys::KeyError;
pub use layout::{
    FormatVersion, SectionEntry, SectionKind, FORMAT_VERSION, MAX_RECORD_LEN, MAX_SECTIONS,
    PAGE_ALIGN, REQUIRED_1_2_STATE,
};
pub use limits::BoundedRecord;
pub use reader::{SignatureInfo, VerifiedImage};
pub use records::SecurityHeaderRecord;
pub use signature_policy::SignaturePolicy;
pub use writer::{ImageWriter, PagesWriter};
