//! The image reader: checks the header, footer, trailer, table digest,
//! signature, section layout and every section's SHA-256 before it hands
//! anything out. Every length read from the image is bounded before it is
//! used to allocate or to read.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc;

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::FormatError;
use crate::keys;
use crate::layout::{
    align_up, array32, array8, decode_fixed_header, decode_footer, le_u32, signed_message,
    table_digest, FormatVersion, SectionEntry, SectionKind, ED25519_BLOCK_LEN, FIXED_HEADER_LEN,
    FOOTER_LEN, FOOTER_MAGIC, FORMAT_VERSION, HEADER_REQUIRED_FLAGS_MASK, KNOWN_REQUIRED_FLAGS,
    MAGIC, MAX_HEADER_LEN, MAX_RECORD_LEN, MAX_SECTIONS, MAX_TRAILER_LEN, MIN_IMAGE_LEN,
    PAGE_ALIGN, SECTION_ENTRY_LEN, SIGNATURE_SCHEME_ED25519, SIGNATURE_SCHEME_NONE, TRAILER_MAGIC,
    TRAILER_PREFIX_LEN,
};
use crate::limits::{self, BoundedRecord, WireContext};
use crate::records::SecurityHeaderRecord;
use crate::signature_policy::SignaturePolicy;

/// Size of the chunks in which section data is read and hashed.
const VERIFY_CHUNK_LEN: u64 = 4 << 20;
/// Size of the buffer used to spool a stream into a temporary file.
const SPOOL_CHUNK_LEN: usize = 1 << 20;

/// The verified signature of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignatureInfo {
    /// The signer's public key (the signature verified with it).
    pub public_key: VerifyingKey,
    /// Hex of the first 16 bytes of SHA-256 of the public key
    /// ([`keys::fingerprint`]).
    pub fingerprint: String,
}

/// An image whose header, trailer, layout, section digests and signature
/// (if any) have all been verified.
///
/// Record sections are verified again when read ([`Self::read_record`]).
/// Page sections are read by the caller with [`Self::read_pages`] or
/// `pread` on [`Self::file`]; if the file can be modified by someone else
/// after `open`, use [`Self::from_stream`] (a private, unlinked copy) instead.
#[derive(Debug)]
pub struct VerifiedImage {
    file: File,
    file_len: u64,
    version: FormatVersion,
    header_flags: u32,
    sections: Vec<SectionEntry>,
    sections_end: u64,
    table_digest: [u8; 32],
    signature: Option<SignatureInfo>,
    security: SecurityHeaderRecord,
    /// Sections of this kind were not hashed at open
    /// ([`Self::open_deferring`]): their bytes are checked by the caller
    /// as it uses them.
    deferred: Option<SectionKind>,
}

impl VerifiedImage {
    /// Verifies the image in `file` (which must be seekable: a regular
    /// file) under [`SignaturePolicy::any`]. Reads the whole file once, in
    /// 4 MiB chunks.
    pub fn open(file: File) -> Result<Self, FormatError> {
        Self::open_with_policy(file, &SignaturePolicy::any())
    }

    /// Verifies the image in `file`, refusing it under `policy` right
    /// after its signature is verified: before any section is hashed and
    /// before any record is decoded.
    pub fn open_with_policy(file: File, policy: &SignaturePolicy) -> Result<Self, FormatError> {
        Self::open_inner(file, policy, None)
    }

    /// Like [`Self::open`], but the contents of the sections of kind
    /// `deferred` (in practice [`SectionKind::PAGES`]) are not read or
    /// hashed here: everything else (header, trailer, table digest,
    /// signature, layout, padding, every other section's digest) is. The
    /// caller must hash those bytes itself where it uses them and compare
    /// with [`SectionEntry::digest`] (DESIGN 3.9: restore reads the pages
    /// back from the restored task). [`Self::read_pages`] refuses them.
    pub fn open_deferring(file: File, deferred: SectionKind) -> Result<Self, FormatError> {
        Self::open_inner(file, &SignaturePolicy::any(), Some(deferred))
    }

    /// [`Self::open_with_policy`] and [`Self::open_deferring`] together.
    pub fn open_with_policy_deferring(
        file: File,
        policy: &SignaturePolicy,
        deferred: SectionKind,
    ) -> Result<Self, FormatError> {
        Self::open_inner(file, policy, Some(deferred))
    }

    fn open_inner(
        file: File,
        policy: &SignaturePolicy,
        deferred: Option<SectionKind>,
    ) -> Result<Self, FormatError> {
        let file_len = file
            .metadata()
            .map_err(|source| FormatError::Metadata { source })?
            .len();
        let source = FileSource {
            file: &file,
            len: file_len,
        };
        let v = verify(&source, policy, deferred)?;
        Ok(VerifiedImage {
            file,
            file_len,
            version: v.version,
            header_flags: v.header_flags,
            sections: v.sections,
            sections_end: v.sections_end,
            table_digest: v.table_digest,
            signature: v.signature,
            security: v.security,
            deferred,
        })
    }

    /// The section kind whose contents were not verified at open
    /// ([`Self::open_deferring`]), or `None` when every section was.
    pub fn deferred_kind(&self) -> Option<SectionKind> {
        self.deferred
    }

    /// Spools a stream (a pipe) into an unlinked temporary file in the
    /// system temporary directory (`TMPDIR`, `O_TMPFILE`), then verifies it.
    pub fn from_stream(r: impl Read) -> Result<Self, FormatError> {
        Self::from_stream_with_policy(r, &SignaturePolicy::any())
    }

    /// Like [`Self::from_stream`], under `policy` (see [`Self::open_with_policy`]).
    pub fn from_stream_with_policy(
        r: impl Read,
        policy: &SignaturePolicy,
    ) -> Result<Self, FormatError> {
        Self::from_stream_in_with_policy(r, &std::env::temp_dir(), policy)
    }

    /// Like [`Self::from_stream`], spooling into `dir`.
    pub fn from_stream_in(r: impl Read, dir: &Path) -> Result<Self, FormatError> {
        Self::from_stream_in_with_policy(r, dir, &SignaturePolicy::any())
    }

    /// Like [`Self::from_stream_in`], under `policy`.
    pub fn from_stream_in_with_policy(
        mut r: impl Read,
        dir: &Path,
        policy: &SignaturePolicy,
    ) -> Result<Self, FormatError> {
        let spool_err = |source| FormatError::Spool {
            dir: dir.to_path_buf(),
            source,
        };
        let mut file = tempfile::tempfile_in(dir).map_err(spool_err)?;
        let mut buf = vec![0u8; SPOOL_CHUNK_LEN];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(spool_err(e)),
            };
            file.write_all(&buf[..n]).map_err(spool_err)?;
        }
        Self::open_with_policy(file, policy)
    }

    /// Copies `bytes` into an unlinked temporary file and verifies it (for
    /// tests and the fuzzer).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        Self::from_stream(bytes)
    }

    /// The image's format version.
    pub fn version(&self) -> FormatVersion {
        self.version
    }

    /// The fixed header's flags word.
    pub fn header_flags(&self) -> u32 {
        self.header_flags
    }

    /// The security header (the first section).
    pub fn security_header(&self) -> &SecurityHeaderRecord {
        &self.security
    }

    /// All sections in file order, the security header first.
    pub fn sections(&self) -> &[SectionEntry] {
        &self.sections
    }

    /// The sections of one kind, in file order.
    pub fn sections_of(&self, kind: SectionKind) -> impl Iterator<Item = &SectionEntry> + '_ {
        self.sections.iter().filter(move |s| s.kind == kind)
    }

    /// The digest over the fixed header and the section table (what the
    /// signature signs, after the domain prefix).
    pub fn table_digest(&self) -> &[u8; 32] {
        &self.table_digest
    }

    /// The length of the image file in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Total length of the PAGES sections (what bounds the page runs).
    pub fn pages_len(&self) -> u64 {
        pages_len(&self.sections)
    }

    /// Reads, re-verifies, checks against the limits of `M`'s schema
    /// ([`limits`]) and only then decodes one record section.
    pub fn read_record<M: BoundedRecord>(&self, s: &SectionEntry) -> Result<M, FormatError> {
        let index =
            self.sections
                .iter()
                .position(|e| e == s)
                .ok_or(FormatError::ForeignSection {
                    kind: s.kind,
                    offset: s.offset,
                })?;
        let source = FileSource {
            file: &self.file,
            len: self.file_len,
        };
        read_record_from(&source, index, s, self.sections_end, self.pages_len())
    }

    /// Reads the first section of `kind` as a record, or `None` when the
    /// image has no such section.
    pub fn first_record<M: BoundedRecord>(
        &self,
        kind: SectionKind,
    ) -> Result<Option<M>, FormatError> {
        match self.sections_of(kind).next() {
            Some(s) => self.read_record(s).map(Some),
            None => Ok(None),
        }
    }

    /// Reads `buf.len()` bytes at `offset_in_section` of a section of this
    /// image (for page sections). The bytes were verified at open time;
    /// sections whose verification was deferred are refused.
    pub fn read_pages(
        &self,
        s: &SectionEntry,
        offset_in_section: u64,
        buf: &mut [u8],
    ) -> Result<(), FormatError> {
        let len = buf.len() as u64;
        let inside = offset_in_section
            .checked_add(len)
            .is_some_and(|end| end <= s.len);
        if self.deferred == Some(s.kind) {
            return Err(FormatError::SectionNotVerified { kind: s.kind });
        }
        if !inside || !self.sections.contains(s) {
            return Err(FormatError::PageReadOutOfBounds {
                kind: s.kind,
                offset_in_section,
                len,
                section_len: s.len,
            });
        }
        let offset = s.offset + offset_in_section;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| FormatError::Read {
                offset,
                len,
                source,
            })
    }

    /// The image file, for `pread` of page sections at
    /// `section.offset + offset_in_section`. Bytes read from it after
    /// `open` were verified when it was opened, not as they are read: a
    /// caller whose file may be written by others checks what it read
    /// (DESIGN 3.9), as ckpt's restore does.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The verified signature, or `None` for an unsigned image.
    pub fn signature(&self) -> Option<&SignatureInfo> {
        self.signature.as_ref()
    }

    /// Applies the signature policy of DESIGN 3.1: with `require_signature`
    /// the image must be signed by one of `trusted`; without it, an
    /// unsigned image passes, and a signed one passes when `trusted` is
    /// empty or contains its signer.
    /// (Prefer [`Self::open_with_policy`], which refuses before hashing
    /// and decoding.)
    pub fn check_signature_policy(
        &self,
        trusted: &[VerifyingKey],
        require_signature: bool,
    ) -> Result<(), FormatError> {
        SignaturePolicy {
            require_signature,
            trusted: trusted.to_vec(),
        }
        .check(self.signature.as_ref())
    }
}

/// Positional reads from the image.
trait ImageSource {
    fn len(&self) -> u64;
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), FormatError>;
}

struct FileSource<'a> {
    file: &'a File,
    len: u64,
}

impl ImageSource for FileSource<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), FormatError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| FormatError::Read {
                offset,
                len: buf.len() as u64,
                source,
            })
    }
}

/// Everything `verify` establishes.
struct Verified {
    version: FormatVersion,
    header_flags: u32,
    sections: Vec<SectionEntry>,
    sections_end: u64,
    table_digest: [u8; 32],
    signature: Option<SignatureInfo>,
    security: SecurityHeaderRecord,
}

/// The whole verification, in the order of DESIGN 3.1 and
/// docs/image-format.md "Reading order": header, footer, trailer, table
/// digest, layout with the size limit of each section kind, signature and
/// signature `policy`, section digests (except those of a `deferred` kind),
/// and only then the security header record (wire limits, then decoding).
fn verify(
    src: &(impl ImageSource + Sync),
    policy: &SignaturePolicy,
    deferred: Option<SectionKind>,
) -> Result<Verified, FormatError> {
    let file_len = src.len();
    if file_len < MIN_IMAGE_LEN {
        return Err(FormatError::TooShort {
            len: file_len,
            min: MIN_IMAGE_LEN,
        });
    }

    // Fixed header.
    let mut fixed = [0u8; FIXED_HEADER_LEN as usize];
    src.read_at(&mut fixed, 0)?;
    let h = decode_fixed_header(&fixed);
    if h.magic != MAGIC {
        return Err(FormatError::BadMagic { found: h.magic });
    }
    if h.version.major != FORMAT_VERSION.major {
        return Err(FormatError::UnsupportedVersion {
            found: h.version,
            supported: FORMAT_VERSION,
        });
    }
    let unknown_required = h.flags & HEADER_REQUIRED_FLAGS_MASK & !KNOWN_REQUIRED_FLAGS;
    if unknown_required != 0 {
        return Err(FormatError::UnsupportedFlags {
            flags: unknown_required,
        });
    }
    if !(FIXED_HEADER_LEN..=MAX_HEADER_LEN).contains(&h.header_len) {
        return Err(FormatError::BadHeaderLength {
            len: h.header_len,
            min: FIXED_HEADER_LEN,
            max: MAX_HEADER_LEN,
        });
    }
    let header_len = u64::from(h.header_len);

    // Footer.
    let mut footer = [0u8; FOOTER_LEN as usize];
    src.read_at(&mut footer, file_len - FOOTER_LEN)?;
    let (trailer_offset, trailer_len, footer_magic) = decode_footer(&footer);
    if footer_magic != FOOTER_MAGIC {
        return Err(FormatError::BadFooterMagic {
            found: footer_magic,
        });
    }
    if trailer_len > MAX_TRAILER_LEN {
        return Err(FormatError::TrailerTooLarge {
            len: trailer_len,
            max: MAX_TRAILER_LEN,
        });
    }
    let trailer_fits = trailer_offset >= header_len
        && trailer_offset
            .checked_add(trailer_len)
            .and_then(|end| end.checked_add(FOOTER_LEN))
            == Some(file_len);
    if !trailer_fits {
        return Err(FormatError::TrailerOutOfBounds {
            offset: trailer_offset,
            len: trailer_len,
            file_len,
        });
    }

    // Header bytes (for the digest) and trailer, both bounded above.
    let mut header = vec![0u8; h.header_len as usize];
    src.read_at(&mut header, 0)?;
    let mut trailer = vec![0u8; trailer_len as usize];
    src.read_at(&mut trailer, trailer_offset)?;
    let parsed = parse_trailer(&trailer)?;

    // Table digest over the header and the table.
    let digest = table_digest(&header, &trailer[..parsed.table_end]);
    if digest != parsed.table_digest {
        return Err(FormatError::TableDigestMismatch);
    }

    // Layout and per-kind size limits: from the table alone.
    check_layout(&parsed.sections, header_len, trailer_offset)?;
    limits_check(&parsed.sections)?;

    // Signature, and the caller's policy before anything else is read.
    let signature = match parsed.signature {
        None => None,
        Some((key_bytes, sig_bytes)) => {
            let public_key =
                VerifyingKey::from_bytes(&key_bytes).map_err(|_| FormatError::BadSignerKey)?;
            let fingerprint = keys::fingerprint(&public_key);
            let signature = Signature::from_bytes(&sig_bytes);
            public_key
                .verify_strict(&signed_message(&digest), &signature)
                .map_err(|_| FormatError::BadSignature {
                    fingerprint: fingerprint.clone(),
                })?;
            Some(SignatureInfo {
                public_key,
                fingerprint,
            })
        }
    };

    policy.check(signature.as_ref())?;

    // Section digests and padding, in one forward pass.
    match deferred {
        None => verify_section_data(src, &parsed.sections, header_len, trailer_offset)?,
        Some(kind) => verify_sections_except(src, &parsed.sections, header_len, kind)?,
    }

    // The security header record.
    let security = read_record_from(
        src,
        0,
        &parsed.sections[0],
        trailer_offset,
        pages_len(&parsed.sections),
    )?;

    Ok(Verified {
        version: h.version,
        header_flags: h.flags,
        sections: parsed.sections,
        sections_end: trailer_offset,
        table_digest: digest,
        signature,
        security,
    })
}

struct ParsedTrailer {
    sections: Vec<SectionEntry>,
    /// Length of the trailer prefix covered by the table digest.
    table_end: usize,
    table_digest: [u8; 32],
    signature: Option<([u8; 32], [u8; 64])>,
}

fn parse_trailer(t: &[u8]) -> Result<ParsedTrailer, FormatError> {
    let found = t.len() as u64;
    let min = TRAILER_PREFIX_LEN + 32 + 4;
    if found < min {
        return Err(FormatError::TrailerLengthMismatch {
            expected: min,
            found,
        });
    }
    let magic = array8(&t[0..8]);
    if magic != TRAILER_MAGIC {
        return Err(FormatError::BadTrailerMagic { found: magic });
    }
    let count = u64::from(le_u32(t, 8));
    if count > MAX_SECTIONS {
        return Err(FormatError::TooManySections {
            count,
            max: MAX_SECTIONS,
        });
    }
    // Bounded: count <= MAX_SECTIONS.
    let table_end = TRAILER_PREFIX_LEN + SECTION_ENTRY_LEN * count;
    let scheme_at = table_end + 32;
    if found < scheme_at + 4 {
        return Err(FormatError::TrailerLengthMismatch {
            expected: scheme_at + 4,
            found,
        });
    }
    let scheme = le_u32(t, scheme_at as usize);
    let expected = match scheme {
        SIGNATURE_SCHEME_NONE => scheme_at + 4,
        SIGNATURE_SCHEME_ED25519 => scheme_at + 4 + ED25519_BLOCK_LEN,
        other => return Err(FormatError::UnknownSignatureScheme { scheme: other }),
    };
    if found != expected {
        return Err(FormatError::TrailerLengthMismatch { expected, found });
    }
    let sections = t[TRAILER_PREFIX_LEN as usize..table_end as usize]
        .chunks_exact(SECTION_ENTRY_LEN as usize)
        .map(SectionEntry::decode)
        .collect();
    let table_digest = array32(&t[table_end as usize..scheme_at as usize]);
    let signature = (scheme == SIGNATURE_SCHEME_ED25519).then(|| {
        let at = scheme_at as usize + 4;
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&t[at + 32..at + 96]);
        (array32(&t[at..at + 32]), sig)
    });
    Ok(ParsedTrailer {
        sections,
        table_end: table_end as usize,
        table_digest,
        signature,
    })
}

/// The layout rules: the security header is the first section and starts
/// right after the fixed header; every section starts where the previous one
/// ends, except page-aligned sections, which start at the next multiple of
/// 4096; the trailer starts where the last section ends.
fn check_layout(
    sections: &[SectionEntry],
    header_len: u64,
    trailer_offset: u64,
) -> Result<(), FormatError> {
    let first = sections.first().ok_or(FormatError::MissingSecurityHeader {
        found: SectionKind(0),
    })?;
    if first.kind != SectionKind::SECURITY_HEADER {
        return Err(FormatError::MissingSecurityHeader { found: first.kind });
    }
    let mut previous_end = header_len;
    for (index, s) in sections.iter().enumerate() {
        if s.offset > trailer_offset || ends_after(s.offset, s.len, trailer_offset) {
            return Err(FormatError::SectionOutOfBounds {
                index,
                kind: s.kind,
                offset: s.offset,
                len: s.len,
                limit: trailer_offset,
            });
        }
        if index > 0 && s.kind == SectionKind::SECURITY_HEADER {
            return Err(FormatError::DuplicateSecurityHeader { index });
        }
        let must_align = s.kind == SectionKind::PAGES;
        if (must_align && !s.is_page_aligned())
            || (s.is_page_aligned() && (s.offset % PAGE_ALIGN != 0 || index == 0))
        {
            return Err(FormatError::MisalignedPageSection {
                index,
                kind: s.kind,
                offset: s.offset,
            });
        }
        if s.offset < previous_end {
            return Err(FormatError::SectionOverlap {
                index,
                kind: s.kind,
                offset: s.offset,
                previous_end,
            });
        }
        let expected = if s.is_page_aligned() {
            // previous_end <= trailer_offset < u64::MAX - 4096 here.
            align_up(previous_end).unwrap_or(u64::MAX)
        } else {
            previous_end
        };
        if s.offset != expected {
            return Err(FormatError::SectionGap {
                index,
                kind: s.kind,
                offset: s.offset,
                expected,
            });
        }
        if index == 0 && s.len > MAX_RECORD_LEN {
            return Err(FormatError::RecordTooLarge {
                kind: s.kind,
                offset: s.offset,
                len: s.len,
                max: MAX_RECORD_LEN,
            });
        }
        previous_end = s.offset + s.len;
    }
    if previous_end != trailer_offset {
        return Err(FormatError::TrailerOffsetMismatch {
            trailer_offset,
            expected: previous_end,
        });
    }
    Ok(())
}

/// Total length of the PAGES sections (saturating).
fn pages_len(sections: &[SectionEntry]) -> u64 {
    sections
        .iter()
        .filter(|s| s.kind == SectionKind::PAGES)
        .fold(0u64, |n, s| n.saturating_add(s.len))
}

/// The limits of [`limits`] that the section table alone decides: how
/// many sections of each kind, and how long each record section may be.
fn limits_check(sections: &[SectionEntry]) -> Result<(), FormatError> {
    for kind in [SectionKind::PROCESS, SectionKind::PAGES] {
        let count = sections.iter().filter(|s| s.kind == kind).count();
        if let Some(max) = limits::max_sections_of(kind).filter(|&m| count > m) {
            return Err(FormatError::TooManySectionsOfKind { kind, count, max });
        }
    }
    let pages = pages_len(sections);
    for s in sections {
        check_record_len(s, pages)?;
    }
    Ok(())
}

/// A record section over the size limit of its kind.
fn check_record_len(s: &SectionEntry, pages_len: u64) -> Result<(), FormatError> {
    match limits::record_len_limit(s.kind, pages_len) {
        Some(max) if s.len > max => Err(FormatError::RecordTooLarge {
            kind: s.kind,
            offset: s.offset,
            len: s.len,
            max,
        }),
        _ => Ok(()),
    }
}

/// True when `offset + len` overflows or exceeds `limit`.
fn ends_after(offset: u64, len: u64, limit: u64) -> bool {
    match offset.checked_add(len) {
        Some(end) => end > limit,
        None => true,
    }
}

/// Reads the section area `[header_len, trailer_offset)` once, front to
/// back, in chunks of at most 4 MiB, checking that padding is zero and that
/// each section matches its digest. Runs after `check_layout`, so the
/// sections and their padding tile the area exactly. For large areas a
/// second thread reads the next chunk while this one hashes, so
/// verification runs at about the speed of SHA-256.
fn verify_section_data(
    src: &(impl ImageSource + Sync),
    sections: &[SectionEntry],
    header_len: u64,
    trailer_offset: u64,
) -> Result<(), FormatError> {
    let area = trailer_offset - header_len;
    let mut checker = AreaChecker {
        sections,
        next: 0,
        pos: header_len,
        hasher: Sha256::new(),
    };
    if area <= PIPELINE_THRESHOLD {
        let mut buf = vec![0u8; area.clamp(1, VERIFY_CHUNK_LEN) as usize];
        let mut at = header_len;
        while at < trailer_offset {
            let n = (trailer_offset - at).min(VERIFY_CHUNK_LEN) as usize;
            src.read_at(&mut buf[..n], at)?;
            checker.feed(&buf[..n])?;
            at += n as u64;
        }
        return checker.finish();
    }
    std::thread::scope(|scope| {
        let (full_tx, full_rx) =
            mpsc::sync_channel::<Result<(Vec<u8>, usize), FormatError>>(PIPELINE_BUFFERS);
        let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(PIPELINE_BUFFERS);
        for _ in 0..PIPELINE_BUFFERS {
            // Cannot fail: the receiver is alive and the channel has room.
            let _ = empty_tx.send(vec![0u8; VERIFY_CHUNK_LEN as usize]);
        }
        scope.spawn(move || {
            let mut at = header_len;
            while at < trailer_offset {
                // The checker stopped (error): stop reading.
                let Ok(mut buf) = empty_rx.recv() else { return };
                let n = (trailer_offset - at).min(VERIFY_CHUNK_LEN) as usize;
                let chunk = src.read_at(&mut buf[..n], at).map(|()| (buf, n));
                let failed = chunk.is_err();
                if full_tx.send(chunk).is_err() || failed {
                    return;
                }
                at += n as u64;
            }
        });
        // Dropping the channels on return (also on error) stops the reader.
        for chunk in full_rx.iter() {
            let (buf, n) = chunk?;
            checker.feed(&buf[..n])?;
            let _ = empty_tx.send(buf);
        }
        checker.finish()
    })
}

/// Like [`verify_section_data`], but the sections of kind `skip` are
/// neither read nor hashed (the padding before them is still checked).
/// Runs after `check_layout`: padding is shorter than [`PAGE_ALIGN`].
fn verify_sections_except(
    src: &impl ImageSource,
    sections: &[SectionEntry],
    header_len: u64,
    skip: SectionKind,
) -> Result<(), FormatError> {
    let mut previous_end = header_len;
    let mut buf = Vec::new();
    for (index, s) in sections.iter().enumerate() {
        let pad = (s.offset - previous_end) as usize;
        buf.resize(pad, 0);
        src.read_at(&mut buf, previous_end)?;
        if let Some(i) = buf.iter().position(|&b| b != 0) {
            return Err(FormatError::NonZeroPadding {
                index,
                offset: previous_end + i as u64,
            });
        }
        previous_end = s.offset + s.len;
        if s.kind == skip {
            continue;
        }
        let mut hasher = Sha256::new();
        let mut at = s.offset;
        while at < previous_end {
            let n = (previous_end - at).min(VERIFY_CHUNK_LEN) as usize;
            buf.resize(n, 0);
            src.read_at(&mut buf, at)?;
            hasher.update(&buf);
            at += n as u64;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if digest != s.digest {
            return Err(FormatError::SectionDigestMismatch {
                index,
                kind: s.kind,
                offset: s.offset,
                len: s.len,
            });
        }
    }
    Ok(())
}

/// Areas up to this size are verified on the calling thread only.
const PIPELINE_THRESHOLD: u64 = 2 * VERIFY_CHUNK_LEN;
/// Chunk buffers in flight between the reading and the hashing thread.
const PIPELINE_BUFFERS: usize = 3;

/// Consumes the section area in order: checks padding, hashes sections.
struct AreaChecker<'a> {
    sections: &'a [SectionEntry],
    /// Index of the section being hashed, or the next one after padding.
    next: usize,
    /// File offset of the next byte fed.
    pos: u64,
    hasher: Sha256,
}

impl AreaChecker<'_> {
    /// Compares the digests of every section that ends at `pos` (including
    /// empty ones).
    fn settle(&mut self) -> Result<(), FormatError> {
        while let Some(s) = self.sections.get(self.next) {
            if s.offset > self.pos || s.offset + s.len != self.pos {
                break;
            }
            let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
            if digest != s.digest {
                return Err(FormatError::SectionDigestMismatch {
                    index: self.next,
                    kind: s.kind,
                    offset: s.offset,
                    len: s.len,
                });
            }
            self.next += 1;
        }
        Ok(())
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), FormatError> {
        self.settle()?;
        while !data.is_empty() {
            let Some(s) = self.sections.get(self.next) else {
                // Unreachable after check_layout: the last section ends
                // where the area ends.
                return Err(FormatError::TrailerOffsetMismatch {
                    trailer_offset: self.pos + data.len() as u64,
                    expected: self.pos,
                });
            };
            if self.pos < s.offset {
                let n = (s.offset - self.pos).min(data.len() as u64) as usize;
                if let Some(i) = data[..n].iter().position(|&b| b != 0) {
                    return Err(FormatError::NonZeroPadding {
                        index: self.next,
                        offset: self.pos + i as u64,
                    });
                }
                data = &data[n..];
                self.pos += n as u64;
            } else {
                let n = (s.offset + s.len - self.pos).min(data.len() as u64) as usize;
                self.hasher.update(&data[..n]);
                data = &data[n..];
                self.pos += n as u64;
            }
            self.settle()?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), FormatError> {
        self.settle()
    }
}

/// Reads one record section (bounded by the limit of its kind, by
/// [`MAX_RECORD_LEN`] and by the section area), checks its digest, then
/// the wire limits of `M`'s schema, and only then decodes it.
fn read_record_from<M: BoundedRecord>(
    src: &impl ImageSource,
    index: usize,
    s: &SectionEntry,
    sections_end: u64,
    pages_len: u64,
) -> Result<M, FormatError> {
    check_record_len(s, pages_len)?;
    if s.len > MAX_RECORD_LEN {
        return Err(FormatError::RecordTooLarge {
            kind: s.kind,
            offset: s.offset,
            len: s.len,
            max: MAX_RECORD_LEN,
        });
    }
    if ends_after(s.offset, s.len, sections_end) {
        return Err(FormatError::SectionOutOfBounds {
            index,
            kind: s.kind,
            offset: s.offset,
            len: s.len,
            limit: sections_end,
        });
    }
    let mut buf = vec![0u8; s.len as usize];
    src.read_at(&mut buf, s.offset)?;
    let digest: [u8; 32] = Sha256::digest(&buf).into();
    if digest != s.digest {
        return Err(FormatError::SectionDigestMismatch {
            index,
            kind: s.kind,
            offset: s.offset,
            len: s.len,
        });
    }
    let ctx = WireContext { pages_len };
    limits::check_wire(&buf, M::SCHEMA, &ctx).map_err(|source| FormatError::RecordLimit {
        kind: s.kind,
        offset: s.offset,
        source,
    })?;
    M::decode(buf.as_slice()).map_err(|source| FormatError::RecordDecode {
        kind: s.kind,
        offset: s.offset,
        source,
    })
}
