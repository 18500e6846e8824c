//! The streaming image writer: writes the fixed header, the security header,
//! record and page sections, and the trailer in one forward pass. It never
//! seeks, so it works on a pipe; it tracks file offsets itself.

use std::io::{self, BufWriter, Write};

use ed25519_dalek::{Signer, SigningKey};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::error::FormatError;
use crate::layout::{
    align_up, encode_fixed_header, encode_footer, signed_message, table_digest, SectionEntry,
    SectionKind, FIXED_HEADER_LEN, MAX_RECORD_LEN, MAX_SECTIONS, PAGE_ALIGN, SECTION_ENTRY_LEN,
    SECTION_FLAG_PAGE_ALIGNED, SIGNATURE_SCHEME_ED25519, SIGNATURE_SCHEME_NONE, TRAILER_MAGIC,
    TRAILER_PREFIX_LEN,
};
use crate::limits;
use crate::records::SecurityHeaderRecord;

/// Capacity of the writer's internal buffer. Writes at least this large go
/// straight to the output without a copy.
const WRITE_BUFFER_LEN: usize = 256 << 10;

static ZERO_PAGE: [u8; PAGE_ALIGN as usize] = [0; PAGE_ALIGN as usize];

/// A page section being written.
struct OpenPages {
    kind: SectionKind,
    offset: u64,
    hasher: Sha256,
}

/// Writes one image to `W` as a stream.
///
/// After any error the image is incomplete and must be discarded (a reader
/// refuses it because the footer is missing).
pub struct ImageWriter<W: Write> {
    out: BufWriter<W>,
    /// File offset of the next byte.
    position: u64,
    header: [u8; FIXED_HEADER_LEN as usize],
    sections: Vec<SectionEntry>,
    open_pages: Option<OpenPages>,
    scratch: Vec<u8>,
}

impl<W: Write> ImageWriter<W> {
    /// Starts an image: writes the fixed header and the security header
    /// section.
    pub fn new(out: W, security: &SecurityHeaderRecord) -> Result<Self, FormatError> {
        Self::with_required_flags(out, security, 0)
    }

    /// [`ImageWriter::new`] with required header flags set (e.g.
    /// [`crate::layout::REQUIRED_1_2_STATE`]); unknown bits are refused.
    pub fn with_required_flags(
        out: W,
        security: &SecurityHeaderRecord,
        flags: u32,
    ) -> Result<Self, FormatError> {
        if flags & !crate::layout::KNOWN_REQUIRED_FLAGS != 0 {
            return Err(FormatError::UnsupportedFlags { flags });
        }
        let mut w = ImageWriter {
            out: BufWriter::with_capacity(WRITE_BUFFER_LEN, out),
            position: 0,
            header: encode_fixed_header(flags),
            sections: Vec::new(),
            open_pages: None,
            scratch: Vec::new(),
        };
        let header = w.header;
        w.write_raw(&header)?;
        w.write_record_unchecked(SectionKind::SECURITY_HEADER, security)?;
        Ok(w)
    }

    /// File offset of the next byte to be written.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The sections completed so far.
    pub fn sections(&self) -> &[SectionEntry] {
        &self.sections
    }

    /// Writes one record section holding `msg`.
    pub fn write_record<M: Message>(
        &mut self,
        kind: SectionKind,
        msg: &M,
    ) -> Result<(), FormatError> {
        if kind == SectionKind::SECURITY_HEADER {
            return Err(FormatError::SectionKindMisuse {
                kind,
                reason: "the security header is written once, by ImageWriter::new",
            });
        }
        if kind == SectionKind::PAGES {
            return Err(FormatError::SectionKindMisuse {
                kind,
                reason: "page sections are written with ImageWriter::begin_pages",
            });
        }
        self.write_record_unchecked(kind, msg)
    }

    fn write_record_unchecked<M: Message>(
        &mut self,
        kind: SectionKind,
        msg: &M,
    ) -> Result<(), FormatError> {
        self.close_pages();
        self.check_section_room(kind)?;
        let len = msg.encoded_len() as u64;
        let max = limits::record_len_limit(kind, self.pages_len()).unwrap_or(MAX_RECORD_LEN);
        if len > max {
            return Err(FormatError::RecordTooLargeToWrite { kind, len, max });
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        // Encoding into a Vec with enough room cannot fail.
        let encoded = msg.encode(&mut buf);
        debug_assert!(encoded.is_ok());
        // Never write what a reader refuses (limits.rs).
        if let Some(schema) = limits::schema_of(kind) {
            let ctx = limits::WireContext {
                pages_len: self.pages_len(),
            };
            if let Err(source) = limits::check_wire(&buf, schema, &ctx) {
                self.scratch = buf;
                return Err(FormatError::RecordLimitToWrite { kind, source });
            }
        }
        let offset = self.position;
        let digest: [u8; 32] = Sha256::digest(&buf).into();
        let result = self.write_raw(&buf);
        let buf_len = buf.len() as u64;
        self.scratch = buf;
        result?;
        self.sections
            .push(SectionEntry::new(kind, 0, offset, buf_len, digest));
        Ok(())
    }

    /// Starts a page section: pads with zeros to the next 4096-aligned file
    /// offset, then hands out a [`PagesWriter`] for the raw bytes. The
    /// section ends at [`PagesWriter::finish`], or when the next section is
    /// started or the image finished.
    pub fn begin_pages(&mut self, kind: SectionKind) -> Result<PagesWriter<'_, W>, FormatError> {
        if kind == SectionKind::SECURITY_HEADER {
            return Err(FormatError::SectionKindMisuse {
                kind,
                reason: "the security header is a record section, not a page section",
            });
        }
        self.close_pages();
        self.check_section_room(kind)?;
        let aligned = align_up(self.position).expect("image offsets stay far below u64::MAX");
        let pad = (aligned - self.position) as usize;
        self.write_raw(&ZERO_PAGE[..pad])?;
        self.open_pages = Some(OpenPages {
            kind,
            offset: self.position,
            hasher: Sha256::new(),
        });
        Ok(PagesWriter { image: self })
    }

    /// Ends the image: writes the trailer (section table, table digest,
    /// optional Ed25519 signature) and the footer, flushes, and returns the
    /// output. The caller syncs it if it is a file.
    pub fn finish(mut self, signer: Option<&SigningKey>) -> Result<W, FormatError> {
        self.close_pages();
        let trailer_offset = self.position;
        let n = self.sections.len() as u64;
        let mut trailer =
            Vec::with_capacity((TRAILER_PREFIX_LEN + SECTION_ENTRY_LEN * n + 32 + 4 + 96) as usize);
        trailer.extend_from_slice(&TRAILER_MAGIC);
        trailer.extend_from_slice(&(n as u32).to_le_bytes());
        trailer.extend_from_slice(&0u32.to_le_bytes());
        for e in &self.sections {
            e.encode_into(&mut trailer);
        }
        let digest = table_digest(&self.header, &trailer);
        trailer.extend_from_slice(&digest);
        match signer {
            None => trailer.extend_from_slice(&SIGNATURE_SCHEME_NONE.to_le_bytes()),
            Some(key) => {
                trailer.extend_from_slice(&SIGNATURE_SCHEME_ED25519.to_le_bytes());
                trailer.extend_from_slice(key.verifying_key().as_bytes());
                let signature = key.sign(&signed_message(&digest));
                trailer.extend_from_slice(&signature.to_bytes());
            }
        }
        self.write_raw(&trailer)?;
        let footer = encode_footer(trailer_offset, trailer.len() as u64);
        self.write_raw(&footer)?;
        let position = self.position;
        self.out.into_inner().map_err(|e| FormatError::Write {
            offset: position,
            source: e.into_error(),
        })
    }

    fn check_section_room(&self, kind: SectionKind) -> Result<(), FormatError> {
        if self.sections.len() as u64 >= MAX_SECTIONS {
            return Err(FormatError::TooManySectionsToWrite {
                kind,
                max: MAX_SECTIONS,
            });
        }
        if let Some(max) = limits::max_sections_of(kind) {
            let open = self.open_pages.as_ref().filter(|o| o.kind == kind);
            let count =
                self.sections.iter().filter(|s| s.kind == kind).count() + open.iter().count();
            if count >= max {
                return Err(FormatError::TooManySectionsOfKindToWrite { kind, max });
            }
        }
        Ok(())
    }

    /// Bytes in the PAGES sections written so far.
    fn pages_len(&self) -> u64 {
        self.sections
            .iter()
            .filter(|s| s.kind == SectionKind::PAGES)
            .map(|s| s.len)
            .sum()
    }

    fn close_pages(&mut self) -> Option<SectionEntry> {
        let open = self.open_pages.take()?;
        let entry = SectionEntry::new(
            open.kind,
            SECTION_FLAG_PAGE_ALIGNED,
            open.offset,
            self.position - open.offset,
            open.hasher.finalize().into(),
        );
        self.sections.push(entry);
        Some(entry)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        self.out
            .write_all(bytes)
            .map_err(|source| FormatError::Write {
                offset: self.position,
                source,
            })?;
        self.position += bytes.len() as u64;
        Ok(())
    }
}

/// Writes the raw bytes of one page section. Bytes are hashed as they pass;
/// writes of 1 MiB or more go straight to the output without a copy.
pub struct PagesWriter<'a, W: Write> {
    image: &'a mut ImageWriter<W>,
}

impl<W: Write> PagesWriter<'_, W> {
    /// Appends `data` to the section.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), FormatError> {
        let image = &mut *self.image;
        if let Some(open) = image.open_pages.as_mut() {
            open.hasher.update(data);
        }
        image.write_raw(data)
    }

    /// Offset within this section of the next byte written (the number of
    /// bytes written so far).
    pub fn position(&self) -> u64 {
        self.image.position - self.section_offset()
    }

    /// File offset of this section's first byte (4096-aligned).
    pub fn section_offset(&self) -> u64 {
        self.image
            .open_pages
            .as_ref()
            .map_or(self.image.position, |o| o.offset)
    }

    /// Ends the section and returns its table entry.
    pub fn finish(self) -> Result<SectionEntry, FormatError> {
        let kind = self
            .image
            .open_pages
            .as_ref()
            .map_or(SectionKind::PAGES, |o| o.kind);
        self.image
            .close_pages()
            .ok_or(FormatError::SectionKindMisuse {
                kind,
                reason: "the page section was already closed",
            })
    }
}

impl<W: Write> Write for PagesWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        PagesWriter::write_all(self, buf).map_err(into_io)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.image.out.flush()
    }
}

fn into_io(e: FormatError) -> io::Error {
    match e {
        FormatError::Write { source, .. } => source,
        other => io::Error::other(other),
    }
}
