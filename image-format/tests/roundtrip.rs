//! Writer and reader behaviour on valid images: round trips, streaming
//! through a pipe, page alignment and offsets, unknown kinds and fields,
//! minor versions, signatures and the signature policy, writer limits.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use image_format::records::{SecurityHeaderRecord, TaskSecurityRecord};
use image_format::{
    FormatError, FormatErrorKind, ImageWriter, SectionKind, VerifiedImage, MAX_RECORD_LEN,
};

/// A writer that is not `Seek` and counts bytes, like a pipe.
struct CountingSink {
    bytes: Vec<u8>,
    writes: usize,
}

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes += 1;
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn unsigned_image_round_trips_records_and_pages() {
    let bytes = build_golden(false);
    let img = VerifiedImage::from_bytes(&bytes).unwrap();
    assert!(img.signature().is_none());
    assert_eq!(img.security_header(), &golden_security_header());
    assert_eq!(img.file_len(), bytes.len() as u64);
    let task: TaskSecurityRecord = img.first_record(GOLDEN_TASK_KIND).unwrap().unwrap();
    assert_eq!(task, golden_task());
    let pages = img.sections_of(SectionKind::PAGES).next().unwrap();
    let mut buf = vec![0u8; 100];
    img.read_pages(pages, 1000, &mut buf).unwrap();
    assert_eq!(buf, golden_page()[1000..1100]);
    // pread through file() at offset + offset_in_section gives the same bytes.
    use std::os::unix::fs::FileExt;
    let mut direct = vec![0u8; 100];
    img.file()
        .read_exact_at(&mut direct, pages.offset + 1000)
        .unwrap();
    assert_eq!(direct, buf);
}

#[test]
fn first_record_of_an_absent_kind_is_none() {
    let img = VerifiedImage::from_bytes(&build_golden(false)).unwrap();
    let r: Option<TaskSecurityRecord> = img.first_record(SectionKind::PROCESS).unwrap();
    assert!(r.is_none());
}

#[test]
fn page_sections_start_4096_aligned_and_report_offsets_while_writing() {
    let mut w = ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    w.write_record(GOLDEN_TASK_KIND, &golden_task()).unwrap();
    let mut entries = Vec::new();
    for (i, size) in [1usize, 4096, 5000, 0, 3 << 20].into_iter().enumerate() {
        // One PAGES section per image; the others of private page kinds.
        let kind = match i {
            0 => SectionKind::PAGES,
            _ => SectionKind(0x8000_0100 + i as u32),
        };
        let mut p = w.begin_pages(kind).unwrap();
        assert_eq!(p.section_offset() % 4096, 0);
        assert_eq!(p.position(), 0);
        let data = vec![i as u8 + 1; size];
        // Write in two pieces: the position advances by what was written.
        p.write_all(&data[..size / 2]).unwrap();
        assert_eq!(p.position(), (size / 2) as u64);
        p.write_all(&data[size / 2..]).unwrap();
        assert_eq!(p.position(), size as u64);
        let e = p.finish().unwrap();
        assert_eq!(e.len, size as u64);
        assert_eq!(e.offset % 4096, 0);
        entries.push(e);
    }
    let bytes = w.finish(None).unwrap();
    let img = VerifiedImage::from_bytes(&bytes).unwrap();
    let pages: Vec<_> = img
        .sections()
        .iter()
        .filter(|s| s.is_page_aligned())
        .copied()
        .collect();
    assert_eq!(pages, entries);
    for (i, e) in pages.iter().enumerate() {
        let mut buf = vec![0u8; e.len as usize];
        img.read_pages(e, 0, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == i as u8 + 1));
    }
}

#[test]
fn unfinished_page_section_is_closed_by_the_next_section() {
    let mut w = ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    {
        let mut p = w.begin_pages(SectionKind::PAGES).unwrap();
        p.write_all(&[9u8; 10]).unwrap();
        // dropped without finish()
    }
    w.write_record(GOLDEN_TASK_KIND, &golden_task()).unwrap();
    let bytes = w.finish(None).unwrap();
    let img = VerifiedImage::from_bytes(&bytes).unwrap();
    let kinds: Vec<_> = img.sections().iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            SectionKind::SECURITY_HEADER,
            SectionKind::PAGES,
            GOLDEN_TASK_KIND
        ]
    );
    assert_eq!(img.sections()[1].len, 10);
}

#[test]
fn writer_streams_without_seeking_and_large_page_writes_pass_through() {
    let sink = CountingSink {
        bytes: Vec::new(),
        writes: 0,
    };
    let mut w = ImageWriter::new(sink, &golden_security_header()).unwrap();
    let big = vec![0x5au8; 8 << 20];
    let mut p = w.begin_pages(SectionKind::PAGES).unwrap();
    p.write_all(&big).unwrap();
    p.finish().unwrap();
    let sink = w.finish(None).unwrap();
    // Header+security header+padding in one buffered write, the 8 MiB in
    // one direct write, the trailer+footer in one: no per-page writes.
    assert!(sink.writes <= 4, "{} writes", sink.writes);
    let img = VerifiedImage::from_bytes(&sink.bytes).unwrap();
    assert_eq!(img.sections()[1].len, 8 << 20);
}

#[test]
fn pages_writer_is_an_io_write() {
    let mut w = ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    let mut p = w.begin_pages(SectionKind::PAGES).unwrap();
    std::io::copy(&mut &[7u8; 10_000][..], &mut p).unwrap();
    p.finish().unwrap();
    let img = VerifiedImage::from_bytes(&w.finish(None).unwrap()).unwrap();
    assert_eq!(img.sections()[1].len, 10_000);
}

#[test]
fn from_stream_reads_an_image_through_a_real_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img");
    std::fs::write(&path, build_golden(true)).unwrap();
    let mut child = Command::new("cat")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let img = VerifiedImage::from_stream(stdout).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(img.security_header(), &golden_security_header());
    assert!(img.signature().is_some());
}

#[test]
fn from_stream_of_a_truncated_stream_is_refused_as_corrupt() {
    let bytes = build_golden(true);
    let err = VerifiedImage::from_stream(&bytes[..bytes.len() - 1]).unwrap_err();
    assert_eq!(err.kind(), FormatErrorKind::Corrupt, "{err}");
}

#[test]
fn from_stream_in_a_missing_directory_names_it() {
    let err = VerifiedImage::from_stream_in(&b""[..], std::path::Path::new("/nonexistent/spool"))
        .unwrap_err();
    assert!(matches!(err, FormatError::Spool { .. }), "{err}");
    assert_eq!(err.kind(), FormatErrorKind::Io);
    assert!(err.to_string().contains("/nonexistent/spool"), "{err}");
}

#[test]
fn unknown_section_kinds_and_unknown_protobuf_fields_are_skipped() {
    // A "newer writer": an extra section kind and a record with a field the
    // reader's message type does not have.
    #[derive(Clone, PartialEq, prost::Message)]
    struct NewerTask {
        #[prost(int32, tag = "1")]
        tid: i32,
        #[prost(string, tag = "99")]
        future_field: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct OlderTask {
        #[prost(int32, tag = "1")]
        tid: i32,
    }
    impl image_format::BoundedRecord for OlderTask {
        const SCHEMA: &'static image_format::limits::Schema = &image_format::limits::Schema {
            name: "OlderTask",
            fields: &[],
        };
    }
    let mut w = ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    w.write_record(SectionKind(0x8000_0077), &golden_task())
        .unwrap();
    w.write_record(
        SectionKind::PROCESS,
        &NewerTask {
            tid: 7,
            future_field: "from the future".into(),
        },
    )
    .unwrap();
    let img = VerifiedImage::from_bytes(&w.finish(None).unwrap()).unwrap();
    let older: OlderTask = img.first_record(SectionKind::PROCESS).unwrap().unwrap();
    assert_eq!(older.tid, 7);
    assert_eq!(img.sections().len(), 3);
}

#[test]
fn newer_minor_version_and_optional_flags_are_accepted() {
    let mut raw = RawImage::parse(&build_small_records_only());
    raw.header[10..12].copy_from_slice(&7u16.to_le_bytes());
    raw.header[12..16].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    let img = VerifiedImage::from_bytes(&raw.assemble(None)).unwrap();
    assert_eq!(img.version().to_string(), "1.7");
    assert_eq!(img.header_flags(), 0x0001_0000);
}

#[test]
fn longer_header_of_a_later_minor_version_is_skipped() {
    let mut raw = RawImage::parse(&build_small_records_only());
    raw.header[10..12].copy_from_slice(&1u16.to_le_bytes());
    raw.header[16..20].copy_from_slice(&48u32.to_le_bytes());
    raw.header.extend_from_slice(&[0xee; 16]);
    for e in &mut raw.entries {
        e.offset += 16;
    }
    let img = VerifiedImage::from_bytes(&raw.assemble(None)).unwrap();
    assert_eq!(img.sections()[0].offset, 48);
    assert_eq!(img.security_header(), &golden_security_header());
}

#[test]
fn signed_image_verifies_and_reports_the_signer() {
    let key = image_format::keys::generate_signing_key().unwrap();
    let mut w = ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    w.write_record(GOLDEN_TASK_KIND, &golden_task()).unwrap();
    let img = VerifiedImage::from_bytes(&w.finish(Some(&key)).unwrap()).unwrap();
    let sig = img.signature().unwrap();
    assert_eq!(sig.public_key, key.verifying_key());
    assert_eq!(
        sig.fingerprint,
        image_format::keys::fingerprint(&key.verifying_key())
    );
}

#[test]
fn signature_policy_follows_design_3_1() {
    let signed = VerifiedImage::from_bytes(&build_golden(true)).unwrap();
    let unsigned = VerifiedImage::from_bytes(&build_golden(false)).unwrap();
    let golden = golden_key().verifying_key();
    let other = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();

    // Without --require-signature: unsigned passes; signed passes with no
    // trusted keys or with its signer trusted; refused when other keys are
    // trusted.
    unsigned.check_signature_policy(&[], false).unwrap();
    unsigned.check_signature_policy(&[other], false).unwrap();
    signed.check_signature_policy(&[], false).unwrap();
    signed
        .check_signature_policy(&[other, golden], false)
        .unwrap();
    let err = signed.check_signature_policy(&[other], false).unwrap_err();
    assert!(matches!(err, FormatError::UntrustedSigner { .. }), "{err}");

    // With --require-signature: only a signature by a trusted key passes.
    let err = unsigned
        .check_signature_policy(&[golden], true)
        .unwrap_err();
    assert!(matches!(err, FormatError::Unsigned), "{err}");
    assert_eq!(err.kind(), FormatErrorKind::Signature);
    assert!(err.to_string().contains("--sign-key"), "{err}");
    let err = signed.check_signature_policy(&[], true).unwrap_err();
    assert!(matches!(err, FormatError::UntrustedSigner { .. }), "{err}");
    let err = signed.check_signature_policy(&[other], true).unwrap_err();
    assert_eq!(err.kind(), FormatErrorKind::Signature);
    assert!(err
        .to_string()
        .contains(&image_format::keys::fingerprint(&golden)));
    signed.check_signature_policy(&[golden], true).unwrap();
}

#[test]
fn writer_refuses_misuse_of_reserved_kinds() {
    let mut w = ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    let err = w
        .write_record(SectionKind::SECURITY_HEADER, &golden_security_header())
        .unwrap_err();
    assert!(
        matches!(err, FormatError::SectionKindMisuse { .. }),
        "{err}"
    );
    let err = w
        .write_record(SectionKind::PAGES, &golden_task())
        .unwrap_err();
    assert!(err.to_string().contains("begin_pages"), "{err}");
    assert!(w.begin_pages(SectionKind::SECURITY_HEADER).is_err());
    // The image is still usable afterwards.
    VerifiedImage::from_bytes(&w.finish(None).unwrap()).unwrap();
}

#[test]
fn writer_refuses_a_record_over_the_limit() {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Blob {
        #[prost(bytes = "vec", tag = "1")]
        data: Vec<u8>,
    }
    let mut w = ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    let blob = Blob {
        data: vec![0; MAX_RECORD_LEN as usize],
    };
    let err = w.write_record(SectionKind::PROCESS, &blob).unwrap_err();
    assert!(
        matches!(err, FormatError::RecordTooLargeToWrite { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), FormatErrorKind::Unsupported);
}

#[test]
fn writer_refuses_a_second_process_or_pages_section() {
    let mut w = ImageWriter::new(std::io::sink(), &SecurityHeaderRecord::default()).unwrap();
    let empty = image_format::records::ProcessRecord::default();
    w.write_record(SectionKind::PROCESS, &empty).unwrap();
    let err = w.write_record(SectionKind::PROCESS, &empty).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::TooManySectionsOfKindToWrite { max: 1, .. }
        ),
        "{err}"
    );
    w.begin_pages(SectionKind::PAGES).unwrap().finish().unwrap();
    assert!(w.begin_pages(SectionKind::PAGES).is_err());
}

#[test]
fn writer_refuses_more_than_max_sections() {
    let mut w = ImageWriter::new(std::io::sink(), &SecurityHeaderRecord::default()).unwrap();
    let empty = SecurityHeaderRecord::default();
    // A private kind: an image holds one PROCESS section.
    let kind = SectionKind(0x8000_0002);
    for _ in 1..image_format::MAX_SECTIONS {
        w.write_record(kind, &empty).unwrap();
    }
    let err = w.write_record(kind, &empty).unwrap_err();
    assert!(
        matches!(err, FormatError::TooManySectionsToWrite { .. }),
        "{err}"
    );
}

#[test]
fn image_with_the_maximum_number_of_sections_verifies() {
    let empty = SecurityHeaderRecord::default();
    let mut w = ImageWriter::new(Vec::new(), &empty).unwrap();
    for _ in 1..image_format::MAX_SECTIONS {
        w.write_record(SectionKind(0x8000_0002), &empty).unwrap();
    }
    let img = VerifiedImage::from_bytes(&w.finish(None).unwrap()).unwrap();
    assert_eq!(img.sections().len() as u64, image_format::MAX_SECTIONS);
}

#[test]
fn write_errors_name_the_offset() {
    struct Failing(u64);
    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.0 < buf.len() as u64 {
                return Err(std::io::Error::other("disk full"));
            }
            self.0 -= buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = ImageWriter::new(Failing(0), &golden_security_header()).unwrap();
    let mut p = w.begin_pages(SectionKind::PAGES).unwrap();
    let err = p.write_all(&vec![0u8; 2 << 20]).unwrap_err();
    assert!(matches!(err, FormatError::Write { .. }), "{err}");
    assert_eq!(err.kind(), FormatErrorKind::Io);
    assert!(err.to_string().contains("disk full"), "{err}");
}

#[test]
fn read_record_refuses_entries_of_another_image() {
    let a = VerifiedImage::from_bytes(&build_golden(false)).unwrap();
    let b = VerifiedImage::from_bytes(&build_small_records_only()).unwrap();
    let mut foreign = b.sections()[1];
    foreign.offset += 1;
    let err = a.read_record::<TaskSecurityRecord>(&foreign).unwrap_err();
    assert!(matches!(err, FormatError::ForeignSection { .. }), "{err}");
    let pages = a.sections()[2];
    let mut buf = [0u8; 16];
    let err = a.read_pages(&pages, 4090, &mut buf).unwrap_err();
    assert!(
        matches!(err, FormatError::PageReadOutOfBounds { .. }),
        "{err}"
    );
    assert!(a.read_pages(&pages, u64::MAX, &mut buf).is_err());
}

#[test]
fn read_record_re_verifies_the_digest() {
    use std::os::unix::fs::FileExt;
    let img = VerifiedImage::from_bytes(&build_golden(false)).unwrap();
    let task = img.sections()[1];
    // Someone modifies the file after verification.
    img.file().write_all_at(&[0xff], task.offset).unwrap();
    let err = img.read_record::<TaskSecurityRecord>(&task).unwrap_err();
    assert!(
        matches!(err, FormatError::SectionDigestMismatch { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn open_of_a_real_file_works_and_verifies_a_big_page_section_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.img");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = ImageWriter::new(file, &golden_security_header()).unwrap();
    let mut p = w.begin_pages(SectionKind::PAGES).unwrap();
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    for _ in 0..(9 + 1) {
        p.write_all(&chunk).unwrap();
    }
    p.finish().unwrap();
    w.finish(None).unwrap().sync_all().unwrap();
    let img = VerifiedImage::open(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(img.sections()[1].len, 10 << 20);
}

#[test]
fn open_deferring_skips_only_the_deferred_kind() {
    let bytes = build_golden(false);
    let img = VerifiedImage::from_bytes(&bytes).unwrap();
    let pages = *img.sections_of(SectionKind::PAGES).next().unwrap();
    let record = *img
        .sections()
        .iter()
        .find(|s| s.kind != SectionKind::PAGES && s.kind != SectionKind::SECURITY_HEADER)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, at: u64| {
        let mut b = bytes.clone();
        b[at as usize] ^= 0x01;
        let p = dir.path().join(name);
        std::fs::write(&p, b).unwrap();
        std::fs::File::open(p).unwrap()
    };
    // A changed page byte: caught by open, not by open_deferring, and the
    // deferred bytes are not handed out by read_pages.
    let f = write("pages.img", pages.offset + 1);
    assert!(VerifiedImage::open(f.try_clone().unwrap()).is_err());
    let deferred = VerifiedImage::open_deferring(f, SectionKind::PAGES).unwrap();
    assert_eq!(deferred.deferred_kind(), Some(SectionKind::PAGES));
    let mut buf = [0u8; 16];
    let err = deferred.read_pages(&pages, 0, &mut buf).unwrap_err();
    assert!(err.to_string().contains("not verified"), "{err}");
    // Any other section is still checked at open.
    let f = write("record.img", record.offset);
    assert!(VerifiedImage::open_deferring(f, SectionKind::PAGES).is_err());
    assert_eq!(
        VerifiedImage::from_bytes(&bytes).unwrap().deferred_kind(),
        None
    );
}
