//! Peak memory of reading hostile images (issue 7 item 6), measured with a
//! counting global allocator.
//!
//! The stated bound (docs/image-format.md, "Limits"): opening an image and
//! decoding any one of its records allocates at most
//! `FIXED + 2 * record_len + schema.structure_bound(pages_len)` bytes, where
//! FIXED = 16 MiB covers the verifier's chunk buffers (3 x 4 MiB) and the
//! spool buffer, `2 * record_len` the record's read buffer and the copies
//! of its strings and bytes, and the structure bound (48 MiB for a
//! security header, 25.5 MiB + 48 bytes per stored page for a process) the
//! decoded vectors at their count limits. Record lengths are capped by
//! kind from the section table (256 KiB security header, 16 MiB + 36 bytes
//! per stored page, at most 64 MiB, for a process record), so any image
//! stays under 16 + 128 + 26 MiB plus 1.2% of its pages.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use common::{RawEntry, RawImage};
use image_format::limits::{self, WireContext};
use image_format::records::{ProcessRecord, SecurityHeaderRecord};
use image_format::{BoundedRecord, FormatError, SectionKind, VerifiedImage};
use sha2::{Digest, Sha256};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        CURRENT.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = System.realloc(p, l, new);
        if !q.is_null() {
            if new >= l.size() {
                let now = CURRENT.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Tests in this binary run one at a time so that the counts are theirs.
static SERIAL: Mutex<()> = Mutex::new(());

const MIB: u64 = 1 << 20;
const FIXED: u64 = 16 * MIB;

/// Peak bytes allocated above the starting point while `f` runs.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let start = CURRENT.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let r = f();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(start) as u64;
    (r, peak)
}

/// An image with a security header of bytes `header`, then `records`
/// (kind, bytes), then a PAGES section of `pages` bytes.
fn craft(header: Vec<u8>, records: Vec<(SectionKind, Vec<u8>)>, pages: usize) -> Vec<u8> {
    let mut fixed = vec![0u8; 32];
    fixed[0..8].copy_from_slice(b"CKPTIMG\0");
    fixed[8..10].copy_from_slice(&1u16.to_le_bytes());
    fixed[16..20].copy_from_slice(&32u32.to_le_bytes());
    let mut body = Vec::new();
    let mut entries = Vec::new();
    let mut push = |body: &mut Vec<u8>, kind: u32, flags: u32, data: &[u8]| {
        entries.push(RawEntry {
            kind,
            flags,
            offset: 32 + body.len() as u64,
            len: data.len() as u64,
            digest: Sha256::digest(data).into(),
        });
        body.extend_from_slice(data);
    };
    push(&mut body, 1, 0, &header);
    for (kind, r) in &records {
        push(&mut body, kind.0, 0, r);
    }
    if pages > 0 {
        let end = 32 + body.len();
        body.resize(body.len() + (4096 - end % 4096) % 4096, 0);
        push(&mut body, 3, 1, &vec![0x5a; pages]);
    }
    RawImage {
        header: fixed,
        body,
        entries,
        trailer_reserved: 0,
    }
    .assemble(None)
}

/// `n` empty repeated sub-messages of field `tag` (2 or 3 bytes each).
fn empty_messages(tag: u32, n: usize) -> Vec<u8> {
    let mut one = Vec::new();
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, &mut one);
    one.push(0);
    one.repeat(n)
}

/// Opens `bytes` and reads every record section as `M`, measuring peak
/// allocation; returns the first error.
fn open_and_read<M: BoundedRecord>(bytes: &[u8]) -> (Result<(), FormatError>, u64) {
    peak_of(|| {
        let img = VerifiedImage::from_bytes(bytes)?;
        for s in img.sections() {
            if s.kind == SectionKind::PROCESS {
                img.read_record::<M>(s)?;
            }
        }
        Ok(())
    })
}

fn bound(record_len: usize, schema: &'static limits::Schema, pages_len: u64) -> u64 {
    FIXED + 2 * record_len as u64 + schema.structure_bound(&WireContext { pages_len })
}

#[test]
fn a_64_mib_security_header_of_empty_entries_is_refused_from_the_table() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = craft(empty_messages(1, 32 << 20), vec![], 0);
    let (r, peak) = open_and_read::<ProcessRecord>(&bytes);
    let e = r.unwrap_err();
    assert!(matches!(e, FormatError::RecordTooLarge { .. }), "{e}");
    eprintln!("64 MiB security header: refused, peak {peak} bytes");
    // Nothing of the section was read: only the trailer and spool buffer.
    assert!(peak < 4 * MIB, "peak {peak}");
}

#[test]
fn a_security_header_at_its_size_limit_of_empty_entries_is_refused_before_decoding() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let len = limits::MAX_SECURITY_HEADER_LEN as usize;
    let bytes = craft(empty_messages(1, len / 2), vec![], 0);
    let (r, peak) = open_and_read::<ProcessRecord>(&bytes);
    let e = r.unwrap_err();
    assert!(matches!(e, FormatError::RecordLimit { .. }), "{e}");
    assert!(e.to_string().contains("SecurityHeaderRecord.lsms"), "{e}");
    eprintln!("256 KiB header of empty LSMs: refused, peak {peak} bytes");
    assert!(peak < FIXED + 2 * len as u64, "peak {peak}");
}

#[test]
fn the_largest_decodable_security_header_stays_under_the_bound() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 64 LSMs, each with a fingerprint of as many empty components as fit
    // in 256 KiB: the most structure per wire byte the limits allow.
    let per_lsm = (limits::MAX_SECURITY_HEADER_LEN as usize - 64 * 8) / 64;
    let components = empty_messages(3, (per_lsm / 2).min(limits::MAX_COMPONENTS as usize) - 4);
    let mut fp = vec![0x1a];
    prost::encoding::encode_varint(components.len() as u64, &mut fp);
    fp.extend_from_slice(&components);
    let mut lsm = vec![0x0a];
    prost::encoding::encode_varint(fp.len() as u64, &mut lsm);
    lsm.extend_from_slice(&fp);
    let header = lsm.repeat(64);
    assert!(header.len() as u64 <= limits::MAX_SECURITY_HEADER_LEN);
    let len = header.len();
    let bytes = craft(header, vec![], 0);
    let (r, peak) =
        peak_of(|| VerifiedImage::from_bytes(&bytes).map(|i| i.security_header().lsms.len()));
    assert_eq!(r.unwrap(), 64);
    let b = bound(len, &limits::SECURITY_HEADER, 0);
    eprintln!("largest header ({len} bytes): decoded, peak {peak} bytes, bound {b}");
    assert!(peak <= b, "peak {peak} > bound {b}");
    // Without the limits this header would cost the same; the point is
    // that nothing larger is accepted.
    let _ = SecurityHeaderRecord::default();
}

#[test]
fn process_records_of_empty_vmas_are_refused_before_decoding() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let header = Vec::new();
    // 16 MiB (the limit without pages): refused by the pre-pass.
    let rec16 = empty_messages(11, 8 << 20);
    let bytes = craft(header.clone(), vec![(SectionKind::PROCESS, rec16)], 0);
    let (r, peak) = open_and_read::<ProcessRecord>(&bytes);
    let e = r.unwrap_err();
    assert!(e.to_string().contains("ProcessRecord.vmas"), "{e}");
    eprintln!("16 MiB process record of empty VMAs: refused, peak {peak} bytes");
    assert!(peak <= FIXED + 2 * (16 * MIB), "peak {peak}");

    // 64 MiB: refused from the table, nothing read.
    let rec64 = empty_messages(11, 32 << 20);
    let bytes = craft(header, vec![(SectionKind::PROCESS, rec64)], 0);
    let (r, peak) = open_and_read::<ProcessRecord>(&bytes);
    let e = r.unwrap_err();
    assert!(matches!(e, FormatError::RecordTooLarge { .. }), "{e}");
    eprintln!("64 MiB process record: refused, peak {peak} bytes");
    assert!(peak < FIXED, "peak {peak}");
}

#[test]
fn the_largest_decodable_process_record_stays_under_the_bound() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Every repeated field at its count limit, elements empty, plus page
    // runs for a 64 MiB pages section.
    let pages = 64 << 20;
    let mut rec = Vec::new();
    rec.extend(empty_messages(11, limits::MAX_VMAS as usize));
    rec.extend(empty_messages(17, limits::MAX_FDS as usize));
    rec.extend(empty_messages(18, limits::MAX_FDS as usize));
    rec.extend(empty_messages(12, pages / 4096));
    rec.extend(empty_messages(10, limits::MAX_SIGACTIONS as usize));
    rec.extend(empty_messages(15, limits::MAX_RLIMITS as usize));
    let len = rec.len();
    let bytes = craft(Vec::new(), vec![(SectionKind::PROCESS, rec)], pages);
    let (r, peak) = open_and_read::<ProcessRecord>(&bytes);
    r.unwrap();
    let b = bound(len, &limits::PROCESS, pages as u64);
    eprintln!(
        "largest process record ({len} bytes, 64 MiB pages): decoded, peak {peak} bytes, bound {b}"
    );
    assert!(peak <= b, "peak {peak} > bound {b}");
}

#[test]
fn deeply_nested_messages_cost_nothing_beyond_their_bytes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 20000 levels of an unknown length-delimited field inside the
    // security header: skipped without recursion by the pre-pass and prost.
    let mut inner: Vec<u8> = Vec::new();
    for _ in 0..20_000 {
        let mut outer = vec![0xfa, 0x01]; // field 31, wire type 2
        prost::encoding::encode_varint(inner.len() as u64, &mut outer);
        outer.extend_from_slice(&inner);
        inner = outer;
        if inner.len() > 200 << 10 {
            break;
        }
    }
    let len = inner.len();
    let bytes = craft(inner, vec![], 0);
    let (r, peak) = peak_of(|| VerifiedImage::from_bytes(&bytes).map(|_| ()));
    r.unwrap();
    eprintln!("nested header ({len} bytes): peak {peak} bytes");
    assert!(peak <= FIXED + 2 * len as u64, "peak {peak}");
    // Known nesting deeper than the schema: a security sub-message inside
    // a creds sub-message is an unknown field there, skipped too.
}
