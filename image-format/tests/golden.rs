//! The golden image: the writer must reproduce tests/golden/v1.img byte for
//! byte, and the reader must decode the checked-in file field by field.
//! Regenerate (only for an intended format change, with a version bump):
//! `CKPT_REGEN_GOLDEN=1 cargo test -p image-format --test golden`.

mod common;

use common::*;
use image_format::keys;
use image_format::records::TaskSecurityRecord;
use image_format::{FormatVersion, SectionKind, VerifiedImage};
use sha2::{Digest, Sha256};

#[test]
fn writer_reproduces_the_golden_image_byte_for_byte() {
    let built = build_golden(true);
    let path = golden_path();
    if std::env::var_os("CKPT_REGEN_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, &built).unwrap();
        eprintln!("wrote {} ({} bytes)", path.display(), built.len());
    }
    let checked_in = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; create it with CKPT_REGEN_GOLDEN=1 cargo test -p image-format --test golden",
            path.display()
        )
    });
    assert_eq!(built.len(), checked_in.len(), "golden image length changed");
    if let Some(at) = built.iter().zip(&checked_in).position(|(a, b)| a != b) {
        panic!("the writer's output differs from tests/golden/v1.img first at byte {at}: the on-disk format changed; bump the format version and regenerate the golden image on purpose");
    }
}

#[test]
fn golden_image_bytes_follow_the_documented_layout() {
    let img = std::fs::read(golden_path()).unwrap();
    let n = img.len();
    // Fixed header.
    assert_eq!(&img[0..8], b"CKPTIMG\0");
    assert_eq!(u16::from_le_bytes([img[8], img[9]]), 1, "major");
    assert_eq!(u16::from_le_bytes([img[10], img[11]]), 2, "minor");
    assert_eq!(le_u32(&img, 12), 0, "flags");
    assert_eq!(le_u32(&img, 16), 32, "header_len");
    assert!(img[20..32].iter().all(|&b| b == 0), "reserved");
    // Footer.
    assert_eq!(&img[n - 8..], b"CKPTEND\0");
    let trailer_offset = le_u64(&img, n - 24) as usize;
    let trailer_len = le_u64(&img, n - 16) as usize;
    assert_eq!(trailer_offset + trailer_len + 24, n);
    // Trailer: three sections, signed.
    let t = &img[trailer_offset..n - 24];
    assert_eq!(&t[0..8], b"CKPTTRL\0");
    assert_eq!(le_u32(t, 8), 3);
    assert_eq!(le_u32(t, 12), 0);
    assert_eq!(t.len(), 16 + 3 * 56 + 32 + 4 + 32 + 64);
    let raw = RawImage::parse(&img);
    let kinds: Vec<u32> = raw.entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [1, 0x8000_0001, 3]);
    let flags: Vec<u32> = raw.entries.iter().map(|e| e.flags).collect();
    assert_eq!(flags, [0, 0, 1]);
    assert_eq!(raw.entries[0].offset, 32);
    assert_eq!(
        raw.entries[1].offset,
        raw.entries[0].offset + raw.entries[0].len
    );
    assert_eq!(raw.entries[2].offset, 4096);
    assert_eq!(raw.entries[2].len, 4096);
    // Padding is zero.
    let pad_start = (raw.entries[1].offset + raw.entries[1].len) as usize;
    assert!(img[pad_start..4096].iter().all(|&b| b == 0));
    // Every section digest is the SHA-256 of its bytes.
    for e in &raw.entries {
        let bytes = &img[e.offset as usize..(e.offset + e.len) as usize];
        assert_eq!(<[u8; 32]>::from(Sha256::digest(bytes)), e.digest);
    }
    // Table digest covers the header and the table.
    let table_end = 16 + 3 * 56;
    let mut h = Sha256::new();
    h.update(b"ckpt image table v1\0");
    h.update(&img[..32]);
    h.update(&t[..table_end]);
    let digest: [u8; 32] = h.finalize().into();
    assert_eq!(&t[table_end..table_end + 32], &digest);
    // Ed25519 block: scheme 1, the golden public key, a verifying signature.
    assert_eq!(le_u32(t, table_end + 32), 1);
    let key = golden_key().verifying_key();
    assert_eq!(&t[table_end + 36..table_end + 68], key.as_bytes());
    let sig = ed25519_dalek::Signature::from_bytes(
        t[table_end + 68..table_end + 132].try_into().unwrap(),
    );
    let mut msg = b"ckpt image signature v1\0".to_vec();
    msg.extend_from_slice(&digest);
    key.verify_strict(&msg, &sig).unwrap();
}

#[test]
fn golden_image_decodes_field_by_field() {
    let file = std::fs::File::open(golden_path()).unwrap();
    let img = VerifiedImage::open(file).unwrap();
    assert_eq!(img.version(), FormatVersion { major: 1, minor: 2 });
    assert_eq!(img.header_flags(), 0);

    let sh = img.security_header();
    assert_eq!(sh.kernel_release, "6.18.0-golden");
    assert_eq!(sh.arch, "x86_64");
    assert_eq!(sh.created_unix_secs, 1_790_000_000);
    assert_eq!(sh.hostname, "golden-host");
    assert_eq!(sh.writer_version, "ckpt 0.1.0");
    let names: Vec<&str> = sh.lsms.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["capability", "lockdown", "landlock"]);
    let ids: Vec<u64> = sh.lsms.iter().map(|l| l.id).collect();
    assert_eq!(ids, [100, 108, 110]);
    let cap = sh.lsms[0].fingerprint.as_ref().unwrap();
    assert!(cap.digest.is_empty());
    assert_eq!(cap.note, "no global policy");
    let lockdown = sh.lsms[1].fingerprint.as_ref().unwrap();
    assert_eq!(lockdown.digest, vec![0x11; 32]);
    assert_eq!(lockdown.components.len(), 1);
    assert_eq!(lockdown.components[0].name, "mode");
    assert_eq!(lockdown.components[0].digest, vec![0x22; 32]);
    let landlock = sh.lsms[2].fingerprint.as_ref().unwrap();
    assert_eq!(landlock.version, "6");
    assert_eq!(landlock.digest, vec![0x33; 32]);

    let sections = img.sections();
    assert_eq!(sections.len(), 3);
    assert_eq!(sections[0].kind, SectionKind::SECURITY_HEADER);
    assert_eq!(sections[1].kind, GOLDEN_TASK_KIND);
    assert_eq!(sections[2].kind, SectionKind::PAGES);
    assert!(sections[2].is_page_aligned());
    assert_eq!(sections[2].offset, 4096);

    let task: TaskSecurityRecord = img.first_record(GOLDEN_TASK_KIND).unwrap().unwrap();
    assert_eq!(task.tid, 4242);
    let creds = task.creds.as_ref().unwrap();
    assert_eq!(creds.uids, [1000, 1000, 1000, 1000]);
    assert_eq!(creds.groups, [27, 1000]);
    assert_eq!(creds.cap_bounding, 0x1ff_ffff_ffff);
    assert_eq!(task.labels[0].attr, "current");
    assert_eq!(task.labels[0].value, b"unconfined\n");
    assert!(task.no_new_privs);
    assert_eq!(task.seccomp_mode, 2);
    assert_eq!(
        task.seccomp_filters,
        [vec![0x06, 0, 0, 0, 0, 0, 0xff, 0x7f]]
    );
    assert_eq!(task, golden_task());

    let mut page = vec![0u8; 4096];
    img.read_pages(&sections[2], 0, &mut page).unwrap();
    assert_eq!(page, golden_page());

    let sig = img.signature().expect("golden image is signed");
    assert_eq!(sig.public_key, golden_key().verifying_key());
    assert_eq!(
        sig.fingerprint,
        keys::fingerprint(&golden_key().verifying_key())
    );
    assert_eq!(sig.fingerprint.len(), 32);
}

/// Writes the fuzz seed corpus (the golden image and a few other valid
/// images) into `$CKPT_WRITE_FUZZ_SEEDS` when that variable is set:
/// `CKPT_WRITE_FUZZ_SEEDS=$PWD/fuzz/seeds/verify_image cargo test -p image-format --test golden`.
#[test]
fn write_fuzz_seeds_when_asked() {
    let Some(dir) = std::env::var_os("CKPT_WRITE_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut multi = image_format::ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    multi
        .write_record(GOLDEN_TASK_KIND, &golden_task())
        .unwrap();
    for (i, size) in [0usize, 100, 4096].into_iter().enumerate() {
        let kind = match i {
            0 => SectionKind::PAGES,
            _ => SectionKind(0x8000_0100 + i as u32),
        };
        let mut p = multi.begin_pages(kind).unwrap();
        p.write_all(&vec![0xa5; size]).unwrap();
        p.finish().unwrap();
    }
    let seeds = [
        ("golden-v1-signed.img", build_golden(true)),
        ("golden-v1-unsigned.img", build_golden(false)),
        ("records-only.img", build_small_records_only()),
        (
            "multi-pages-signed.img",
            multi.finish(Some(&golden_key())).unwrap(),
        ),
        (
            "empty-security-header.img",
            image_format::ImageWriter::new(
                Vec::new(),
                &image_format::records::SecurityHeaderRecord::default(),
            )
            .unwrap()
            .finish(None)
            .unwrap(),
        ),
    ];
    for (name, bytes) in seeds {
        VerifiedImage::from_bytes(&bytes).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
