//! One test per way an image can be damaged or forged: each must be refused
//! with its own error variant and classification, and no input may panic.

mod common;

use common::*;
use image_format::{FormatError, FormatErrorKind, VerifiedImage};

fn open(bytes: &[u8]) -> Result<VerifiedImage, FormatError> {
    VerifiedImage::from_bytes(bytes)
}

fn expect_err(bytes: &[u8]) -> FormatError {
    match open(bytes) {
        Ok(_) => panic!("a damaged image was accepted"),
        Err(e) => e,
    }
}

#[test]
fn bad_magic_is_refused() {
    let mut img = build_golden(true);
    img[0] = b'X';
    let err = expect_err(&img);
    assert!(matches!(err, FormatError::BadMagic { .. }), "{err}");
    assert_eq!(err.kind(), FormatErrorKind::Corrupt);
    assert!(err.to_string().contains("not a ckpt image"), "{err}");
}

#[test]
fn a_file_that_is_not_an_image_is_refused() {
    let err = expect_err(&vec![b'#'; 1000]);
    assert!(matches!(err, FormatError::BadMagic { .. }), "{err}");
    let err = expect_err(b"");
    assert!(matches!(err, FormatError::TooShort { len: 0, .. }), "{err}");
}

#[test]
fn newer_major_version_is_refused_naming_both_versions() {
    let mut img = build_golden(true);
    img[8..10].copy_from_slice(&2u16.to_le_bytes());
    img[10..12].copy_from_slice(&3u16.to_le_bytes());
    let err = expect_err(&img);
    assert!(
        matches!(err, FormatError::UnsupportedVersion { found, .. } if found.major == 2 && found.minor == 3),
        "{err}"
    );
    assert_eq!(err.kind(), FormatErrorKind::Version);
    assert!(err.is_integrity());
    let msg = err.to_string();
    assert!(msg.contains("2.3") && msg.contains("1.2"), "{msg}");
    assert!(msg.contains("reads format 2.x"), "{msg}");
}

#[test]
fn older_major_version_is_refused_naming_both_versions() {
    let mut img = build_golden(true);
    img[8..10].copy_from_slice(&0u16.to_le_bytes());
    let err = expect_err(&img);
    assert!(
        matches!(err, FormatError::UnsupportedVersion { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("0.2") && msg.contains("1.2"), "{msg}");
}

#[test]
fn unknown_required_flag_is_refused() {
    let mut raw = RawImage::parse(&build_small_records_only());
    raw.header[12..16].copy_from_slice(&0x0000_0004u32.to_le_bytes());
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::UnsupportedFlags { flags: 4 }),
        "{err}"
    );
    assert_eq!(err.kind(), FormatErrorKind::Version);
}

#[test]
fn header_length_out_of_range_is_refused() {
    for len in [0u32, 31, 4097, u32::MAX] {
        let mut img = build_golden(false);
        img[16..20].copy_from_slice(&len.to_le_bytes());
        let err = expect_err(&img);
        assert!(
            matches!(err, FormatError::BadHeaderLength { .. }),
            "{len}: {err}"
        );
    }
}

#[test]
fn truncation_at_every_byte_offset_is_refused_without_panic() {
    for signed in [false, true] {
        let img = build_golden(signed);
        for cut in 0..img.len() {
            let err = expect_err(&img[..cut]);
            assert_eq!(err.kind(), FormatErrorKind::Corrupt, "cut at {cut}: {err}");
        }
    }
}

#[test]
fn truncation_at_each_boundary_gives_a_specific_error() {
    let img = build_golden(true);
    // Inside the fixed header.
    assert!(matches!(
        expect_err(&img[..20]),
        FormatError::TooShort { .. }
    ));
    // Everything after the page section is missing: no footer.
    assert!(matches!(
        expect_err(&img[..8192]),
        FormatError::BadFooterMagic { .. }
    ));
    // Only the footer's last byte is missing.
    let err = expect_err(&img[..img.len() - 1]);
    assert!(matches!(err, FormatError::BadFooterMagic { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn flipping_any_byte_is_detected() {
    for signed in [false, true] {
        let img = build_golden(signed);
        for at in 0..img.len() {
            for mask in [0x01u8, 0x80] {
                let mut bad = img.clone();
                bad[at] ^= mask;
                let err = match open(&bad) {
                    Ok(_) => panic!("flip {mask:#x} at byte {at} (signed {signed}) not detected"),
                    Err(e) => e,
                };
                assert!(err.is_integrity(), "byte {at}: {err}");
            }
        }
    }
}

#[test]
fn section_digest_mismatch_names_the_section() {
    let mut img = build_golden(true);
    img[4096 + 100] ^= 1; // inside the page section
    let err = expect_err(&img);
    assert!(
        matches!(
            err,
            FormatError::SectionDigestMismatch {
                index: 2,
                offset: 4096,
                len: 4096,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("pages section"), "{err}");
    assert_eq!(err.kind(), FormatErrorKind::Corrupt);
}

#[test]
fn security_header_digest_mismatch_is_detected() {
    let mut img = build_golden(false);
    img[40] ^= 0x10;
    let err = expect_err(&img);
    assert!(
        matches!(err, FormatError::SectionDigestMismatch { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn table_digest_mismatch_is_detected() {
    let img = build_golden(false);
    let raw = RawImage::parse(&img);
    // Change one entry's stored digest without recomputing the table digest.
    let trailer_offset = 32 + raw.body.len();
    let mut bad = img.clone();
    bad[trailer_offset + 16 + 56 + 24] ^= 1;
    let err = expect_err(&bad);
    assert!(matches!(err, FormatError::TableDigestMismatch), "{err}");
    // The header is covered too: a changed minor version.
    let mut bad = img.clone();
    bad[10] = 9;
    assert!(matches!(expect_err(&bad), FormatError::TableDigestMismatch));
}

#[test]
fn nonzero_padding_is_detected() {
    let img = build_golden(false);
    let raw = RawImage::parse(&img);
    let pad_at = (raw.entries[1].offset + raw.entries[1].len) as usize + 5;
    let mut bad = img.clone();
    bad[pad_at] = 1;
    let err = expect_err(&bad);
    assert!(
        matches!(err, FormatError::NonZeroPadding { index: 2, offset } if offset == pad_at as u64),
        "{err}"
    );
}

#[test]
fn bad_signature_is_refused_as_a_signature_error() {
    let img = build_golden(true);
    let n = img.len();
    // The last byte of the signature (just before the footer).
    let mut bad = img.clone();
    bad[n - 24 - 1] ^= 1;
    let err = expect_err(&bad);
    assert!(matches!(err, FormatError::BadSignature { .. }), "{err}");
    assert_eq!(err.kind(), FormatErrorKind::Signature);
    assert!(err.is_integrity());
    assert!(err.to_string().contains("does not verify"), "{err}");
}

#[test]
fn signature_by_a_substituted_key_is_refused() {
    // A forger replaces the public key with their own: the signature no
    // longer verifies (and a re-signed image shows the forger's key, which
    // the trusted-key policy refuses).
    let img = build_golden(true);
    let n = img.len();
    let key_at = n - 24 - 96;
    let mut bad = img.clone();
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
    bad[key_at..key_at + 32].copy_from_slice(other.as_bytes());
    let err = expect_err(&bad);
    assert!(matches!(err, FormatError::BadSignature { .. }), "{err}");

    let forger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let resigned = RawImage::parse(&img).assemble(Some(&forger));
    let img = open(&resigned).unwrap();
    let err = img
        .check_signature_policy(&[golden_key().verifying_key()], true)
        .unwrap_err();
    assert!(matches!(err, FormatError::UntrustedSigner { .. }), "{err}");
}

#[test]
fn stripping_the_signature_is_detected_by_the_policy() {
    let stripped = RawImage::parse(&build_golden(true)).assemble(None);
    let img = open(&stripped).unwrap();
    assert!(img.signature().is_none());
    let err = img
        .check_signature_policy(&[golden_key().verifying_key()], true)
        .unwrap_err();
    assert!(matches!(err, FormatError::Unsigned), "{err}");
}

/// The signature policy is applied before any section is hashed or any
/// record decoded: an unsigned image whose sections are damaged is refused
/// as unsigned, not as damaged (issue 7 item 6).
#[test]
fn signature_policy_refuses_before_any_section_is_hashed_or_decoded() {
    use image_format::SignaturePolicy;
    let trusted = vec![golden_key().verifying_key()];
    let mut raw = RawImage::parse(&build_golden(false));
    // Garbage security header with a wrong digest.
    raw.body[0] ^= 0xff;
    let damaged = raw.assemble(None);
    assert!(matches!(
        open(&damaged).unwrap_err(),
        FormatError::SectionDigestMismatch { .. }
    ));
    for policy in [
        SignaturePolicy::for_restore(trusted.clone(), true),
        // --trusted-key alone also requires a signature (DESIGN 3.5).
        SignaturePolicy::for_restore(trusted.clone(), false),
    ] {
        let err = VerifiedImage::from_stream_with_policy(&damaged[..], &policy).unwrap_err();
        assert!(matches!(err, FormatError::Unsigned), "{err}");
        assert_eq!(err.kind(), FormatErrorKind::Signature);
    }
    // Signed by another key: untrusted, also before hashing.
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let mut raw = RawImage::parse(&build_golden(false));
    raw.body[0] ^= 0xff;
    let err = VerifiedImage::from_stream_with_policy(
        &raw.assemble(Some(&other))[..],
        &SignaturePolicy::for_restore(trusted.clone(), true),
    )
    .unwrap_err();
    assert!(matches!(err, FormatError::UntrustedSigner { .. }), "{err}");
    // Without a policy the image is opened as before.
    let good = build_golden(true);
    VerifiedImage::from_stream_with_policy(&good[..], &SignaturePolicy::for_restore(trusted, true))
        .unwrap();
    VerifiedImage::from_stream_with_policy(&build_golden(false)[..], &SignaturePolicy::any())
        .unwrap();
}

#[test]
fn invalid_signer_key_is_refused() {
    let img = build_golden(true);
    let n = img.len();
    let key_at = n - 24 - 96;
    // Find a 32-byte string that is not a valid curve point encoding.
    let mut bad = img.clone();
    let mut y = [0xffu8; 32];
    for b in 0..=255u8 {
        y[0] = b;
        if ed25519_dalek::VerifyingKey::from_bytes(&y).is_err() {
            break;
        }
    }
    bad[key_at..key_at + 32].copy_from_slice(&y);
    let err = expect_err(&bad);
    assert!(
        matches!(
            err,
            FormatError::BadSignerKey | FormatError::BadSignature { .. }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), FormatErrorKind::Signature);
}

#[test]
fn unknown_signature_scheme_is_refused() {
    let img = build_golden(false);
    let n = img.len();
    let mut bad = img.clone();
    bad[n - 24 - 4..n - 24].copy_from_slice(&7u32.to_le_bytes());
    let err = expect_err(&bad);
    assert!(
        matches!(err, FormatError::UnknownSignatureScheme { scheme: 7 }),
        "{err}"
    );
}

#[test]
fn oversize_lengths_are_refused_before_allocation() {
    let img = build_golden(false);
    let n = img.len();
    // Trailer length in the footer far over the limit.
    let mut bad = img.clone();
    bad[n - 16..n - 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let err = expect_err(&bad);
    assert!(matches!(err, FormatError::TrailerTooLarge { .. }), "{err}");
    // Trailer offset pointing outside the file.
    let mut bad = img.clone();
    bad[n - 24..n - 16].copy_from_slice(&u64::MAX.to_le_bytes());
    let err = expect_err(&bad);
    assert!(
        matches!(err, FormatError::TrailerOutOfBounds { .. }),
        "{err}"
    );
    // Section count over the limit.
    let trailer_offset = le_u64(&img, n - 24) as usize;
    let mut bad = img.clone();
    bad[trailer_offset + 8..trailer_offset + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = expect_err(&bad);
    assert!(matches!(err, FormatError::TooManySections { .. }), "{err}");
    // Section count within the limit but more than the trailer holds.
    let mut bad = img.clone();
    bad[trailer_offset + 8..trailer_offset + 12].copy_from_slice(&1000u32.to_le_bytes());
    let err = expect_err(&bad);
    assert!(
        matches!(err, FormatError::TrailerLengthMismatch { .. }),
        "{err}"
    );
}

#[test]
fn section_length_past_the_end_is_refused() {
    let mut raw = RawImage::parse(&build_golden(false));
    raw.entries[2].len = u64::MAX - 100;
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::SectionOutOfBounds { index: 2, .. }),
        "{err}"
    );
    let mut raw = RawImage::parse(&build_golden(false));
    raw.entries[1].offset = u64::MAX;
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::SectionOutOfBounds { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn oversize_record_section_is_refused_by_read_record() {
    // A well-formed image whose only section after the security header is a
    // 64 MiB + 1 page-aligned section; reading it as a record is refused
    // before the 64 MiB buffer is allocated.
    let mut w = image_format::ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    let mut p = w
        .begin_pages(image_format::SectionKind(0x8000_0002))
        .unwrap();
    p.write_all(&vec![0u8; image_format::MAX_RECORD_LEN as usize + 1])
        .unwrap();
    p.finish().unwrap();
    let img = open(&w.finish(None).unwrap()).unwrap();
    let s = img.sections()[1];
    let err = img
        .read_record::<image_format::records::TaskSecurityRecord>(&s)
        .unwrap_err();
    assert!(matches!(err, FormatError::RecordTooLarge { .. }), "{err}");
}

#[test]
fn oversize_security_header_is_refused() {
    let mut raw = RawImage::parse(&build_small_records_only());
    // Claim a 64 MiB + 1 security header (the layout check refuses it
    // before any record buffer is allocated).
    raw.entries[0].len = image_format::MAX_RECORD_LEN + 1;
    raw.body
        .resize(image_format::MAX_RECORD_LEN as usize + 1, 0);
    raw.entries.truncate(1);
    raw.rehash();
    let err = expect_err(&raw.assemble(None));
    assert!(matches!(err, FormatError::RecordTooLarge { .. }), "{err}");
}

#[test]
fn misaligned_page_section_is_refused() {
    // Move the page section 8 bytes earlier, into the padding, with valid
    // digests: the offset is no longer 4096-aligned.
    let mut raw = RawImage::parse(&build_golden(false));
    raw.entries[2].offset -= 8;
    raw.rehash();
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::MisalignedPageSection { index: 2, .. }),
        "{err}"
    );
    // A pages section not marked page-aligned is refused too.
    let mut raw = RawImage::parse(&build_golden(false));
    raw.entries[2].flags = 0;
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::MisalignedPageSection { index: 2, .. }),
        "{err}"
    );
}

#[test]
fn overlapping_sections_are_refused() {
    // The task record claims to start inside the security header.
    let mut raw = RawImage::parse(&build_golden(false));
    raw.entries[1].offset -= 4;
    raw.entries[1].len += 4;
    raw.rehash();
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::SectionOverlap { index: 1, .. }),
        "{err}"
    );
    // Two page sections at the same offset.
    let mut raw = RawImage::parse(&build_golden(false));
    let dup = raw.entries[2].clone();
    raw.entries.push(dup);
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::SectionOverlap { index: 3, .. }),
        "{err}"
    );
}

#[test]
fn gaps_between_sections_are_refused() {
    // The task record claims to start 4 bytes after the security header.
    let mut raw = RawImage::parse(&build_golden(false));
    raw.entries[1].offset += 4;
    raw.entries[1].len -= 4;
    raw.rehash();
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::SectionGap { index: 1, .. }),
        "{err}"
    );
    // Unlisted bytes between the last section and the trailer.
    let mut raw = RawImage::parse(&build_golden(false));
    raw.entries[2].len -= 1;
    raw.rehash();
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::TrailerOffsetMismatch { .. }),
        "{err}"
    );
}

#[test]
fn missing_or_duplicate_security_header_is_refused() {
    let mut raw = RawImage::parse(&build_small_records_only());
    raw.entries[0].kind = 2;
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::MissingSecurityHeader { .. }),
        "{err}"
    );
    let mut raw = RawImage::parse(&build_small_records_only());
    raw.entries[1].kind = 1;
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::DuplicateSecurityHeader { index: 1 }),
        "{err}"
    );
    let mut raw = RawImage::parse(&build_small_records_only());
    raw.entries.clear();
    raw.body.clear();
    let err = expect_err(&raw.assemble(None));
    assert!(
        matches!(err, FormatError::MissingSecurityHeader { .. }),
        "{err}"
    );
}

#[test]
fn security_header_that_does_not_decode_is_refused() {
    let mut raw = RawImage::parse(&build_small_records_only());
    // Replace the security header with bytes that are not a protobuf
    // message (field 1, wire type 2, length 200 > remaining).
    let old_len = raw.entries[0].len as usize;
    let new = [0x0a, 0xc8, 0x01, 0x00];
    raw.body.splice(0..old_len, new.iter().copied());
    let delta = old_len as u64 - new.len() as u64;
    raw.entries[0].len = new.len() as u64;
    raw.entries[1].offset -= delta;
    raw.rehash();
    let err = expect_err(&raw.assemble(None));
    // Refused by the wire pre-pass before prost sees it.
    assert!(matches!(err, FormatError::RecordLimit { .. }), "{err}");
    assert_eq!(err.kind(), FormatErrorKind::Corrupt);
}

#[test]
fn errors_classify_for_exit_codes() {
    // Corrupt -> exit 1, Signature -> exit 3, Version -> refused (3.1).
    let io = FormatError::Metadata {
        source: std::io::Error::other("x"),
    };
    assert_eq!(io.kind(), FormatErrorKind::Io);
    assert!(!io.is_integrity());
    assert_eq!(
        FormatError::TableDigestMismatch.kind(),
        FormatErrorKind::Corrupt
    );
    assert!(FormatError::TableDigestMismatch.is_integrity());
    assert_eq!(FormatError::Unsigned.kind(), FormatErrorKind::Signature);
}

/// Deterministic pseudo-random mutations of the golden image (the stable
/// counterpart of the cargo-fuzz target): every mutated image is refused
/// and nothing panics.
#[test]
fn thousands_of_random_mutations_are_refused_without_panic() {
    let golden = std::fs::read(golden_path()).unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut refused = 0;
    for round in 0..4000 {
        let mut m = golden.clone();
        let edits = 1 + rng.below(4);
        for _ in 0..edits {
            match rng.below(6) {
                0 => {
                    let at = rng.below(m.len());
                    m[at] = rng.next() as u8;
                }
                1 => {
                    let at = rng.below(m.len() + 1);
                    m.truncate(at);
                }
                2 => {
                    let at = rng.below(m.len() + 1);
                    let n = 1 + rng.below(64);
                    let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                    m.splice(at..at, bytes);
                }
                3 if !m.is_empty() => {
                    let at = rng.below(m.len());
                    let n = (1 + rng.below(64)).min(m.len() - at);
                    m.drain(at..at + n);
                }
                4 if m.len() >= 8 => {
                    // Overwrite a little-endian u32/u64 with an extreme value.
                    let at = rng.below(m.len() - 7);
                    let v = [0u64, 1, u64::MAX, u32::MAX as u64, 4096, 1 << 40][rng.below(6)];
                    m[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
                _ if !m.is_empty() => {
                    let at = rng.below(m.len());
                    m[at] ^= 1 << rng.below(8);
                }
                _ => {}
            }
        }
        if m == golden {
            continue;
        }
        match open(&m) {
            Ok(_) => panic!("mutation round {round} was accepted"),
            Err(e) => {
                assert!(e.is_integrity(), "round {round}: {e}");
                refused += 1;
            }
        }
    }
    assert!(refused > 3900, "{refused}");
}

/// An image over 8 MiB is verified by a reading thread and a hashing
/// thread; damage anywhere in it, including across 4 MiB chunk boundaries,
/// is still found and named.
#[test]
fn damage_in_a_large_image_is_found_by_the_pipelined_verifier() {
    let mut w = image_format::ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    let mut p = w.begin_pages(image_format::SectionKind::PAGES).unwrap();
    p.write_all(&vec![0x11u8; (5 << 20) + 123]).unwrap();
    p.finish().unwrap();
    w.write_record(GOLDEN_TASK_KIND, &golden_task()).unwrap();
    // An image holds one PAGES section; a second page-aligned section of a
    // private kind.
    let mut p = w
        .begin_pages(image_format::SectionKind(0x8000_0005))
        .unwrap();
    p.write_all(&vec![0x22u8; 6 << 20]).unwrap();
    p.finish().unwrap();
    let img = w.finish(None).unwrap();
    let good = open(&img).unwrap();
    let s = good.sections().to_vec();
    assert_eq!(s.len(), 4);

    // Last byte of the first page section, first byte of the record, a
    // byte right at a 4 MiB chunk boundary, last byte of the last section.
    let targets = [
        (s[1].offset + s[1].len - 1, 1),
        (s[2].offset, 2),
        (4 << 20, 1),
        (8 << 20, 3),
        (s[3].offset + s[3].len - 1, 3),
    ];
    for (at, index) in targets {
        let mut bad = img.clone();
        bad[at as usize] ^= 0x40;
        let err = expect_err(&bad);
        assert!(
            matches!(err, FormatError::SectionDigestMismatch { index: i, .. } if i == index),
            "byte {at}: {err}"
        );
    }
    // Padding before the second page section.
    let pad_at = s[2].offset + s[2].len + 1;
    assert!(pad_at < s[3].offset);
    let mut bad = img.clone();
    bad[pad_at as usize] = 0xff;
    let err = expect_err(&bad);
    assert!(
        matches!(err, FormatError::NonZeroPadding { index: 3, offset } if offset == pad_at),
        "{err}"
    );
}

/// Bit 0 (1.2, `REQUIRED_1_2_STATE`) is known to this reader: such an image
/// reads, while a 1.1 reader (KNOWN_REQUIRED_FLAGS = 0) refuses it as
/// `unknown_required_flag_is_refused` shows for an unknown bit.
#[test]
fn required_1_2_state_flag_is_understood() {
    let mut raw = RawImage::parse(&build_small_records_only());
    raw.header[12..16].copy_from_slice(&image_format::REQUIRED_1_2_STATE.to_le_bytes());
    assert!(open(&raw.assemble(None)).is_ok());
}
