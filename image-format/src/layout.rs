//! The byte layout of an image: constants, the fixed header, section table
//! entries, the trailer and the footer, and the digests over them. This is
//! the only module that knows byte offsets; the writer and reader go through
//! it. docs/image-format.md describes the same layout in prose.

use std::fmt;

use sha2::{Digest, Sha256};

/// The first 8 bytes of every image.
pub const MAGIC: [u8; 8] = *b"CKPTIMG\0";
/// The first 8 bytes of the trailer.
pub const TRAILER_MAGIC: [u8; 8] = *b"CKPTTRL\0";
/// The last 8 bytes of every image.
pub const FOOTER_MAGIC: [u8; 8] = *b"CKPTEND\0";

/// The format version this crate writes, and whose major version it reads.
pub const FORMAT_VERSION: FormatVersion = FormatVersion { major: 1, minor: 2 };

/// Length of the fixed header written by this version.
pub const FIXED_HEADER_LEN: u32 = 32;
/// Largest header length a reader accepts (a later minor version may
/// extend the header; readers skip the bytes they do not know).
pub const MAX_HEADER_LEN: u32 = 4096;
/// Alignment of page sections' data in the file.
pub const PAGE_ALIGN: u64 = 4096;
/// Length of the footer at the very end of the file.
pub const FOOTER_LEN: u64 = 24;
/// Length of one section table entry.
pub const SECTION_ENTRY_LEN: u64 = 56;
/// Trailer bytes before the first section table entry (magic, count, reserved).
pub const TRAILER_PREFIX_LEN: u64 = 16;
/// Largest number of sections in one image.
pub const MAX_SECTIONS: u64 = 65536;
/// Largest record section (one protobuf message).
pub const MAX_RECORD_LEN: u64 = 64 << 20;
/// Length of an Ed25519 signature block after the scheme word.
pub const ED25519_BLOCK_LEN: u64 = 32 + 64;
/// Largest trailer: the full table, the table digest, the scheme word and
/// an Ed25519 signature block.
pub const MAX_TRAILER_LEN: u64 =
    TRAILER_PREFIX_LEN + SECTION_ENTRY_LEN * MAX_SECTIONS + 32 + 4 + ED25519_BLOCK_LEN;
// The whole trailer stays under 4 MiB.
const _: () = assert!(MAX_TRAILER_LEN < 4 << 20);

/// Smallest possible image: fixed header, empty security header, empty-ish
/// trailer (no sections is itself invalid, but the bound is what matters),
/// footer.
pub const MIN_IMAGE_LEN: u64 = FIXED_HEADER_LEN as u64 + TRAILER_PREFIX_LEN + 32 + 4 + FOOTER_LEN;

/// Header flag bits 0..=15 are "required": a reader that does not know a
/// set required bit refuses the image. Bits 16..=31 are optional and ignored
/// by readers that do not know them. Version 1.0 defines no flags.
pub const HEADER_REQUIRED_FLAGS_MASK: u32 = 0x0000_ffff;
/// Required flag bit 0 (1.2): the image holds state that a 1.1 reader
/// would skip as unknown fields and so silently lose (threads other than
/// the leader, POSIX timers, guard regions). A 1.1 reader refuses such an
/// image instead of restoring only part of it.
pub const REQUIRED_1_2_STATE: u32 = 1;
/// Required header flags this reader implements.
pub const KNOWN_REQUIRED_FLAGS: u32 = REQUIRED_1_2_STATE;

/// Section flag: the section's data is raw bytes starting at a 4096-aligned
/// file offset, preceded by zero padding. Set on every [`SectionKind::PAGES`]
/// section; a reader needs it to check the layout of sections whose kind it
/// does not know. Other section flag bits are reserved: written as 0,
/// ignored by readers.
pub const SECTION_FLAG_PAGE_ALIGNED: u32 = 1;

/// Signature scheme word: no signature follows.
pub const SIGNATURE_SCHEME_NONE: u32 = 0;
/// Signature scheme word: a 32-byte Ed25519 public key and a 64-byte
/// signature follow.
pub const SIGNATURE_SCHEME_ED25519: u32 = 1;

/// Domain separation prefix of the table digest.
pub const TABLE_DIGEST_DOMAIN: &[u8] = b"ckpt image table v1\0";
/// Domain separation prefix of the message that is signed (followed by the
/// 32-byte table digest).
pub const SIGNATURE_DOMAIN: &[u8] = b"ckpt image signature v1\0";

/// A format version, independent of the ckpt tool version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FormatVersion {
    /// Incompatible changes; a reader refuses any other major version.
    pub major: u16,
    /// Compatible additions; readers skip what they do not know.
    pub minor: u16,
}

impl fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What a section holds. Unknown kinds are skipped by readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SectionKind(pub u32);

impl SectionKind {
    /// A [`crate::records::SecurityHeaderRecord`]; always the first section.
    pub const SECURITY_HEADER: SectionKind = SectionKind(1);
    /// A `ProcessRecord` (defined by the engine in `records::process`).
    pub const PROCESS: SectionKind = SectionKind(2);
    /// Raw memory pages, 4096-aligned in the file.
    pub const PAGES: SectionKind = SectionKind(3);
    /// Kinds at or above this value are reserved for experiments and tests
    /// and are never assigned.
    pub const FIRST_PRIVATE: SectionKind = SectionKind(0x8000_0000);

    /// The name of a known kind.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::SECURITY_HEADER => Some("security-header"),
            Self::PROCESS => Some("process"),
            Self::PAGES => Some("pages"),
            _ => None,
        }
    }
}

impl fmt::Display for SectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} section (kind {})", self.0),
            None => write!(f, "unknown section (kind {:#x})", self.0),
        }
    }
}

/// One row of the section table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SectionEntry {
    pub kind: SectionKind,
    /// `SECTION_FLAG_*` bits.
    pub flags: u32,
    /// File offset of the section's first byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// SHA-256 of the section's bytes.
    pub digest: [u8; 32],
}

impl SectionEntry {
    /// True for sections whose data is raw and 4096-aligned (pages).
    pub fn is_page_aligned(&self) -> bool {
        self.flags & SECTION_FLAG_PAGE_ALIGNED != 0
    }

    /// File offset one past the section's last byte (saturating, for
    /// display; the reader checks the real sum).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.kind.0.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.digest);
    }

    /// Decodes one entry from exactly [`SECTION_ENTRY_LEN`] bytes.
    pub(crate) fn decode(b: &[u8]) -> SectionEntry {
        SectionEntry {
            kind: SectionKind(le_u32(b, 0)),
            flags: le_u32(b, 4),
            offset: le_u64(b, 8),
            len: le_u64(b, 16),
            digest: array32(&b[24..56]),
        }
    }

    pub(crate) fn new(
        kind: SectionKind,
        flags: u32,
        offset: u64,
        len: u64,
        digest: [u8; 32],
    ) -> Self {
        SectionEntry {
            kind,
            flags,
            offset,
            len,
            digest,
        }
    }
}

/// The fixed header as written by this version.
pub(crate) fn encode_fixed_header(flags: u32) -> [u8; FIXED_HEADER_LEN as usize] {
    let mut h = [0u8; FIXED_HEADER_LEN as usize];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.major.to_le_bytes());
    h[10..12].copy_from_slice(&FORMAT_VERSION.minor.to_le_bytes());
    h[12..16].copy_from_slice(&flags.to_le_bytes());
    h[16..20].copy_from_slice(&FIXED_HEADER_LEN.to_le_bytes());
    // 20..32 reserved, zero.
    h
}

/// The fields of a fixed header, as read (before any check).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FixedHeader {
    pub magic: [u8; 8],
    pub version: FormatVersion,
    pub flags: u32,
    pub header_len: u32,
}

pub(crate) fn decode_fixed_header(b: &[u8; FIXED_HEADER_LEN as usize]) -> FixedHeader {
    FixedHeader {
        magic: array8(&b[0..8]),
        version: FormatVersion {
            major: u16::from_le_bytes([b[8], b[9]]),
            minor: u16::from_le_bytes([b[10], b[11]]),
        },
        flags: le_u32(b, 12),
        header_len: le_u32(b, 16),
    }
}

/// The footer: where the trailer is.
pub(crate) fn encode_footer(trailer_offset: u64, trailer_len: u64) -> [u8; FOOTER_LEN as usize] {
    let mut f = [0u8; FOOTER_LEN as usize];
    f[0..8].copy_from_slice(&trailer_offset.to_le_bytes());
    f[8..16].copy_from_slice(&trailer_len.to_le_bytes());
    f[16..24].copy_from_slice(&FOOTER_MAGIC);
    f
}

/// (trailer offset, trailer length, magic)
pub(crate) fn decode_footer(b: &[u8; FOOTER_LEN as usize]) -> (u64, u64, [u8; 8]) {
    (le_u64(b, 0), le_u64(b, 8), array8(&b[16..24]))
}

/// The digest over the header and the section table: SHA-256 of
/// `TABLE_DIGEST_DOMAIN || header bytes (header_len) || trailer bytes from
/// the trailer magic up to (not including) the table digest`.
pub(crate) fn table_digest(header: &[u8], table: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(TABLE_DIGEST_DOMAIN);
    h.update(header);
    h.update(table);
    h.finalize().into()
}

/// The message an image signature signs.
pub(crate) fn signed_message(table_digest: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 32);
    m.extend_from_slice(SIGNATURE_DOMAIN);
    m.extend_from_slice(table_digest);
    m
}

/// Rounds `n` up to a multiple of [`PAGE_ALIGN`]; `None` on overflow.
pub(crate) fn align_up(n: u64) -> Option<u64> {
    n.checked_add(PAGE_ALIGN - 1).map(|v| v & !(PAGE_ALIGN - 1))
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

pub(crate) fn array8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    a
}

pub(crate) fn array32(b: &[u8]) -> [u8; 32] {
    let mut a = [0u8; 32];
    a.copy_from_slice(&b[..32]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_header_round_trips_and_matches_documented_offsets() {
        let h = encode_fixed_header(0x0001_0000);
        assert_eq!(&h[0..8], b"CKPTIMG\0");
        assert_eq!(&h[8..10], &[1, 0]);
        assert_eq!(&h[10..12], &[2, 0]);
        assert_eq!(&h[12..16], &[0, 0, 1, 0]);
        assert_eq!(&h[16..20], &[32, 0, 0, 0]);
        assert!(h[20..32].iter().all(|&b| b == 0));
        let d = decode_fixed_header(&h);
        assert_eq!(d.magic, MAGIC);
        assert_eq!(d.version, FORMAT_VERSION);
        assert_eq!(d.flags, 0x0001_0000);
        assert_eq!(d.header_len, 32);
    }

    #[test]
    fn footer_round_trips() {
        let f = encode_footer(0x1122_3344_5566, 77);
        assert_eq!(&f[16..24], b"CKPTEND\0");
        assert_eq!(decode_footer(&f), (0x1122_3344_5566, 77, FOOTER_MAGIC));
    }

    #[test]
    fn section_entry_round_trips_in_56_bytes() {
        let e = SectionEntry::new(SectionKind::PAGES, 1, 8192, 4096, [0xab; 32]);
        let mut v = Vec::new();
        e.encode_into(&mut v);
        assert_eq!(v.len() as u64, SECTION_ENTRY_LEN);
        assert_eq!(&v[0..4], &[3, 0, 0, 0]);
        assert_eq!(SectionEntry::decode(&v), e);
    }

    #[test]
    fn align_up_rounds_to_4096_and_reports_overflow() {
        assert_eq!(align_up(0), Some(0));
        assert_eq!(align_up(1), Some(4096));
        assert_eq!(align_up(4096), Some(4096));
        assert_eq!(align_up(4097), Some(8192));
        assert_eq!(align_up(u64::MAX), None);
    }

    #[test]
    fn section_kind_display_names_known_and_unknown_kinds() {
        assert_eq!(SectionKind::PAGES.to_string(), "pages section (kind 3)");
        assert_eq!(
            SectionKind(0x8000_0001).to_string(),
            "unknown section (kind 0x80000001)"
        );
        assert_eq!(FORMAT_VERSION.to_string(), "1.2");
    }
}
