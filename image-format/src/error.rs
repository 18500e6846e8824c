//! Errors of the image format: one variant per way an image can fail to be
//! written or to verify, each naming the object that failed and the way out,
//! and a coarse classification ([`FormatErrorKind`]) that the CLI maps to
//! exit codes (DESIGN 2 and 3.1).

use std::io;
use std::path::PathBuf;

use crate::layout::{FormatVersion, SectionKind};

/// What class of failure a [`FormatError`] is, for exit codes and for
/// DESIGN 3.1 ("integrity first").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatErrorKind {
    /// The image is damaged, truncated, or not a ckpt image (exit 1).
    Corrupt,
    /// The signature does not verify, or the signature policy
    /// (`--require-signature`, `--trusted-key`) refuses the image (exit 3).
    Signature,
    /// Reading, writing or spooling failed at the operating-system level (exit 1).
    Io,
    /// The image uses a major format version or a required feature flag
    /// that this reader does not implement (exit 1).
    Version,
    /// The writer was asked for something the format cannot hold (a record
    /// over the size limit, too many sections, a misuse of a section kind).
    Unsupported,
}

/// Every way writing or verifying an image can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    // ---- I/O -------------------------------------------------------------
    /// Writing the image failed.
    #[error("cannot write the image at byte offset {offset}: {source}; check free space and that the output is still open")]
    Write {
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// Reading the image failed.
    #[error("cannot read {len} bytes of the image at byte offset {offset}: {source}")]
    Read {
        offset: u64,
        len: u64,
        #[source]
        source: io::Error,
    },
    /// Querying the size of the image file failed.
    #[error("cannot get the size of the image file: {source}")]
    Metadata {
        #[source]
        source: io::Error,
    },
    /// Spooling an image stream into an unlinked temporary file failed.
    #[error("cannot spool the image stream into a temporary file in {dir}: {source}; set TMPDIR to a directory with enough free space")]
    Spool {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },

    // ---- fixed header ----------------------------------------------------
    /// The file is shorter than the smallest possible image.
    #[error("the image is {len} bytes long, shorter than the smallest valid image ({min} bytes): it is truncated or not a ckpt image")]
    TooShort { len: u64, min: u64 },
    /// The first 8 bytes are not the image magic.
    #[error("not a ckpt image: the first 8 bytes are {found:02x?} instead of \"CKPTIMG\\0\"")]
    BadMagic { found: [u8; 8] },
    /// The major format version is not the one this reader implements.
    #[error("image format version {found} cannot be read by this ckpt, which reads format {supported} (major version {}); use a ckpt release that reads format {}.x", supported.major, found.major)]
    UnsupportedVersion {
        found: FormatVersion,
        supported: FormatVersion,
    },
    /// The header sets a required feature flag this reader does not know.
    #[error("the image header sets required feature flags {flags:#010x} that this ckpt does not implement; use a newer ckpt")]
    UnsupportedFlags { flags: u32 },
    /// The header length field is outside the allowed range.
    #[error("the image header length {len} is outside {min}..={max}: the header is damaged")]
    BadHeaderLength { len: u32, min: u32, max: u32 },

    // ---- footer and trailer ----------------------------------------------
    /// The last 8 bytes are not the footer magic.
    #[error("the image footer magic is {found:02x?} instead of \"CKPTEND\\0\": the image is truncated or was not completely written (a failed dump or a stream that ended early); dump it again")]
    BadFooterMagic { found: [u8; 8] },
    /// The footer places the trailer somewhere impossible.
    #[error("the footer places the trailer at offset {offset} with length {len}, which does not end at the footer of this {file_len}-byte image: the image is truncated or damaged")]
    TrailerOutOfBounds {
        offset: u64,
        len: u64,
        file_len: u64,
    },
    /// The trailer is larger than any valid trailer.
    #[error("the image trailer is {len} bytes, over the limit of {max}: the footer is damaged")]
    TrailerTooLarge { len: u64, max: u64 },
    /// The trailer does not start with the trailer magic.
    #[error("the image trailer magic is {found:02x?} instead of \"CKPTTRL\\0\": the footer or trailer is damaged")]
    BadTrailerMagic { found: [u8; 8] },
    /// The section table lists more sections than allowed.
    #[error(
        "the section table lists {count} sections, over the limit of {max}: the trailer is damaged"
    )]
    TooManySections { count: u64, max: u64 },
    /// The trailer length does not match its contents.
    #[error("the image trailer is {found} bytes but its section table and signature block need {expected}: the trailer is damaged")]
    TrailerLengthMismatch { expected: u64, found: u64 },
    /// The digest over the fixed header and section table does not match.
    #[error("the section table digest does not match: the image header or section table was modified or damaged; do not restore this image")]
    TableDigestMismatch,

    // ---- signature -------------------------------------------------------
    /// The signature block names a scheme this reader does not know.
    #[error("the image is signed with unknown signature scheme {scheme}: use a newer ckpt, or the trailer is damaged")]
    UnknownSignatureScheme { scheme: u32 },
    /// The signer's public key in the image is not a valid Ed25519 key.
    #[error("the signer public key stored in the image is not a valid Ed25519 key: the signature block is damaged; do not restore this image")]
    BadSignerKey,
    /// The signature does not verify.
    #[error("the image signature by key {fingerprint} does not verify: the image was modified after signing or the signature is damaged; do not restore this image")]
    BadSignature { fingerprint: String },
    /// A signature is required but the image has none.
    #[error("the image is unsigned and a signature is required (--require-signature or --trusted-key): sign it at dump time with --sign-key and restore it with --trusted-key")]
    Unsigned,
    /// The image is signed by a key that is not trusted.
    #[error("the image is signed by key {fingerprint}, which is not among the trusted keys (--trusted-key): pass that key's .pub file with --trusted-key if you trust it")]
    UntrustedSigner { fingerprint: String },

    // ---- sections --------------------------------------------------------
    /// The first section is not the security header.
    #[error("the first section is {found}, not the security header: the image is damaged or was not written by ckpt")]
    MissingSecurityHeader { found: SectionKind },
    /// A second security header section exists.
    #[error("section {index} is a second security header; an image has exactly one: the image is damaged")]
    DuplicateSecurityHeader { index: usize },
    /// A section extends past the section area (into the trailer).
    #[error("section {index} ({kind}) at offset {offset} with length {len} extends past the end of the section area at offset {limit}: the image is truncated or damaged")]
    SectionOutOfBounds {
        index: usize,
        kind: SectionKind,
        offset: u64,
        len: u64,
        limit: u64,
    },
    /// A section starts before the previous one ends.
    #[error("section {index} ({kind}) at offset {offset} overlaps the previous section, which ends at offset {previous_end}: the section table is damaged")]
    SectionOverlap {
        index: usize,
        kind: SectionKind,
        offset: u64,
        previous_end: u64,
    },
    /// A section does not start where the layout rules put it.
    #[error("section {index} ({kind}) starts at offset {offset} instead of {expected}: the section table is damaged")]
    SectionGap {
        index: usize,
        kind: SectionKind,
        offset: u64,
        expected: u64,
    },
    /// A page section is not page-aligned (or is not marked as such).
    #[error("page section {index} ({kind}) at offset {offset} is not marked and placed 4096-byte aligned: the section table is damaged")]
    MisalignedPageSection {
        index: usize,
        kind: SectionKind,
        offset: u64,
    },
    /// The trailer does not start right after the last section.
    #[error("the trailer starts at offset {trailer_offset}, but the last section ends at offset {expected}: the image is damaged")]
    TrailerOffsetMismatch { trailer_offset: u64, expected: u64 },
    /// A padding byte before a page section is not zero.
    #[error(
        "padding byte at offset {offset} before section {index} is not zero: the image is damaged"
    )]
    NonZeroPadding { index: usize, offset: u64 },
    /// A section's SHA-256 does not match the section table.
    #[error("section {index} ({kind}) at offset {offset} with length {len} does not match its SHA-256 digest: the image is damaged or was modified; do not restore it")]
    SectionDigestMismatch {
        index: usize,
        kind: SectionKind,
        offset: u64,
        len: u64,
    },
    /// A record section is larger than any record may be.
    #[error(
        "record section {kind} at offset {offset} is {len} bytes, over the record limit of {max}"
    )]
    RecordTooLarge {
        kind: SectionKind,
        offset: u64,
        len: u64,
        max: u64,
    },
    /// A record's bytes match their digest but do not decode.
    #[error("record section {kind} at offset {offset} does not decode as its protobuf message: {source}; the image was written by a broken or hostile writer")]
    RecordDecode {
        kind: SectionKind,
        offset: u64,
        #[source]
        source: prost::DecodeError,
    },
    /// A record's bytes break a count or length limit of its schema
    /// (checked before decoding, docs/image-format.md "Limits").
    #[error("record section {kind} at offset {offset} is refused before decoding: {source}; no ckpt writes such a record, so the image was made by a broken or hostile writer")]
    RecordLimit {
        kind: SectionKind,
        offset: u64,
        #[source]
        source: crate::limits::WireLimitError,
    },
    /// More sections of one kind than an image may hold.
    #[error("the section table lists {count} sections of kind {kind}, more than the {max} an image holds: the image is damaged or hostile")]
    TooManySectionsOfKind {
        kind: SectionKind,
        count: usize,
        max: usize,
    },
    /// A page read reaches outside its section, or names a section not in this image.
    #[error("page read of {len} bytes at offset {offset_in_section} of section {kind} (length {section_len}) is outside the section or the section is not in this image")]
    PageReadOutOfBounds {
        kind: SectionKind,
        offset_in_section: u64,
        len: u64,
        section_len: u64,
    },

    /// The section's contents were not verified at open
    /// (`VerifiedImage::open_deferring`), so the reader does not hand them out.
    #[error("section {kind} was not verified when the image was opened (open_deferring): the caller must read and check it itself")]
    SectionNotVerified { kind: SectionKind },

    /// A section entry passed to the reader is not one of this image's sections.
    #[error("{kind} at offset {offset} is not a section of this image: pass an entry from VerifiedImage::sections")]
    ForeignSection { kind: SectionKind, offset: u64 },

    // ---- writer limits ---------------------------------------------------
    /// The writer was asked to write a record over the size limit.
    #[error("cannot write record section {kind}: the encoded record is {len} bytes, over the limit of {max}; split it into several sections")]
    RecordTooLargeToWrite {
        kind: SectionKind,
        len: u64,
        max: u64,
    },
    /// The writer was asked to write a record that breaks a limit of its schema.
    #[error("cannot write record section {kind}: {source}; a reader would refuse it (docs/image-format.md, \"Limits\")")]
    RecordLimitToWrite {
        kind: SectionKind,
        #[source]
        source: crate::limits::WireLimitError,
    },
    /// The writer was asked for a second section of a kind an image holds once.
    #[error("cannot write section {kind}: an image holds at most {max} of them")]
    TooManySectionsOfKindToWrite { kind: SectionKind, max: usize },
    /// The writer was asked to write more sections than allowed.
    #[error("cannot write section {kind}: the image already has the maximum of {max} sections; put more data in each section")]
    TooManySectionsToWrite { kind: SectionKind, max: u64 },
    /// The writer was asked to misuse a section kind.
    #[error("cannot write section {kind}: {reason}")]
    SectionKindMisuse {
        kind: SectionKind,
        reason: &'static str,
    },
}

impl FormatError {
    /// The class of this failure (for exit codes).
    pub fn kind(&self) -> FormatErrorKind {
        use FormatError::*;
        match self {
            Write { .. } | Read { .. } | Metadata { .. } | Spool { .. } => FormatErrorKind::Io,
            // An unknown scheme is a feature this reader lacks (or damage),
            // not a signature that failed: exit 1 like a corrupt trailer.
            UnsupportedVersion { .. } | UnsupportedFlags { .. } | UnknownSignatureScheme { .. } => {
                FormatErrorKind::Version
            }
            BadSignerKey | BadSignature { .. } | Unsigned | UntrustedSigner { .. } => {
                FormatErrorKind::Signature
            }
            RecordTooLargeToWrite { .. }
            | TooManySectionsToWrite { .. }
            | RecordLimitToWrite { .. }
            | TooManySectionsOfKindToWrite { .. }
            | SectionKindMisuse { .. }
            | PageReadOutOfBounds { .. }
            | SectionNotVerified { .. }
            | ForeignSection { .. } => FormatErrorKind::Unsupported,
            TooShort { .. }
            | BadMagic { .. }
            | BadHeaderLength { .. }
            | BadFooterMagic { .. }
            | TrailerOutOfBounds { .. }
            | TrailerTooLarge { .. }
            | BadTrailerMagic { .. }
            | TooManySections { .. }
            | TrailerLengthMismatch { .. }
            | TableDigestMismatch
            | MissingSecurityHeader { .. }
            | DuplicateSecurityHeader { .. }
            | SectionOutOfBounds { .. }
            | SectionOverlap { .. }
            | SectionGap { .. }
            | MisalignedPageSection { .. }
            | TrailerOffsetMismatch { .. }
            | NonZeroPadding { .. }
            | SectionDigestMismatch { .. }
            | RecordTooLarge { .. }
            | RecordDecode { .. }
            | RecordLimit { .. }
            | TooManySectionsOfKind { .. } => FormatErrorKind::Corrupt,
        }
    }

    /// True when the image itself is refused by DESIGN 3.1 "integrity
    /// first": it is corrupt or truncated, has an unknown major version,
    /// or its signature is bad or refused by the signature policy.
    pub fn is_integrity(&self) -> bool {
        matches!(
            self.kind(),
            FormatErrorKind::Corrupt | FormatErrorKind::Signature | FormatErrorKind::Version
        )
    }
}
