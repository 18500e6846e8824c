//! Issue 7 item 6 end to end: hostile images built to make the decoder
//! allocate (a 64 MiB security header of empty entries, 16 MiB and 64 MiB
//! process records of empty VMAs) are refused fast by `inspect --json`,
//! `policy-diff` and `restore --require-signature`, with a message naming
//! the limit, while the ckpt process's peak RSS (ru_maxrss of the child,
//! read by a python3 wrapper) stays under a stated bound. And an image
//! whose records restore refuses as malformed is refused by policy-diff
//! and inspect too (exit 1, like restore).

use ckpt_tests::*;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Peak RSS allowed for any of these commands (the 16 MiB record is read
/// into memory once to be hashed and pre-checked).
const RSS_BOUND_KIB: u64 = 48 * 1024;
/// "Fail fast": well under what decoding 32 million entries took.
const TIME_BOUND: Duration = Duration::from_secs(10);

/// An unsigned image: a security header of bytes `header`, then PROCESS
/// records, laid out as docs/image-format.md says (built here, not with
/// the crate's writer, which refuses such records).
fn craft(header: &[u8], records: &[&[u8]]) -> Vec<u8> {
    let mut img = vec![0u8; 32];
    img[0..8].copy_from_slice(b"CKPTIMG\0");
    img[8..10].copy_from_slice(&1u16.to_le_bytes());
    img[16..20].copy_from_slice(&32u32.to_le_bytes());
    let mut table = Vec::new();
    let sections = std::iter::once((1u32, header)).chain(records.iter().map(|r| (2u32, *r)));
    let count = 1 + records.len() as u32;
    for (kind, data) in sections {
        table.extend_from_slice(&kind.to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&(img.len() as u64).to_le_bytes());
        table.extend_from_slice(&(data.len() as u64).to_le_bytes());
        table.extend_from_slice(&Sha256::digest(data));
        img.extend_from_slice(data);
    }
    let trailer_offset = img.len() as u64;
    let mut t = b"CKPTTRL\0".to_vec();
    t.extend_from_slice(&count.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&table);
    let mut h = Sha256::new();
    h.update(b"ckpt image table v1\0");
    h.update(&img[..32]);
    h.update(&t);
    t.extend_from_slice(&h.finalize());
    t.extend_from_slice(&0u32.to_le_bytes());
    img.extend_from_slice(&t);
    img.extend_from_slice(&trailer_offset.to_le_bytes());
    img.extend_from_slice(&(t.len() as u64).to_le_bytes());
    img.extend_from_slice(b"CKPTEND\0");
    img
}

/// `n` empty sub-messages of field `tag` (< 16): two bytes each.
fn empty_messages(tag: u8, n: usize) -> Vec<u8> {
    [tag << 3 | 2, 0].repeat(n)
}

/// The protobuf bytes of a valid security header (this host's profile),
/// cut out of an image written by the crate's writer.
fn valid_header_bytes() -> Vec<u8> {
    use lsm_labels::persist::{ImageSecurity, Persist};
    let header = ImageSecurity {
        profile: host_profile_json(),
        created_unix_secs: 1_795_000_000,
        hostname: "test-host".into(),
        writer_version: "test".into(),
    }
    .to_record();
    let img = image_format::ImageWriter::new(Vec::new(), &header)
        .unwrap()
        .finish(None)
        .unwrap();
    let n = img.len();
    let u64_at = |at: usize| u64::from_le_bytes(img[at..at + 8].try_into().unwrap()) as usize;
    let trailer = u64_at(n - 24);
    let len = u64_at(trailer + 16 + 16);
    img[32..32 + len].to_vec()
}

/// Runs ckpt under python3, which reports the child's peak RSS (KiB).
fn run_measured(args: &[&str]) -> (std::process::Output, u64, Duration) {
    let script = "import resource,subprocess,sys\n\
                  r=subprocess.run(sys.argv[1:],stdin=subprocess.DEVNULL)\n\
                  print('maxrss', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n\
                  sys.exit(r.returncode)";
    let t0 = Instant::now();
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(ckpt_bin())
        .args(args)
        .output()
        .expect("python3");
    let took = t0.elapsed();
    let err = stderr(&o);
    let rss = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss from the wrapper: {err}"));
    (o, rss, took)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Each reader command refuses `img` with exit 1 and a message containing
/// `says`, within the time and RSS bounds; `restore --require-signature`
/// refuses with `restore_says` (and exit 3 when that is the signature
/// policy: the size limits from the table come first, then the policy,
/// before anything is hashed or decoded).
fn refused_fast(img: &Path, key_pub: &Path, what: &str, says: &str, restore_says: &str) {
    let restore_code = if restore_says == says { 1 } else { 3 };
    let cases: [(&str, Vec<&str>, i32, &str); 3] = [
        ("inspect", vec!["inspect", "--json", s(img)], 1, says),
        ("policy-diff", vec!["policy-diff", s(img)], 1, says),
        (
            "restore",
            vec![
                "restore",
                "--require-signature",
                "--trusted-key",
                s(key_pub),
                s(img),
            ],
            restore_code,
            restore_says,
        ),
    ];
    for (name, args, code, message) in cases {
        let (o, rss, took) = run_measured(&args);
        eprintln!(
            "{what}: {name}: exit {:?}, peak RSS {rss} KiB, {took:?}",
            o.status.code()
        );
        assert_eq!(
            o.status.code(),
            Some(code),
            "{what}: {name}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(message),
            "{what}: {name}: {}",
            stderr(&o)
        );
        assert!(rss < RSS_BOUND_KIB, "{what}: {name}: peak RSS {rss} KiB");
        assert!(took < TIME_BOUND, "{what}: {name}: took {took:?}");
    }
}

#[test]
fn amplifying_images_are_refused_fast_and_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let o = run_ckpt(&["keygen", "-o", s(&key)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let key_pub = dir.path().join("k.pub");
    let small_header = valid_header_bytes();

    // 64 MiB security header of 32 million empty LSM entries.
    let img = dir.path().join("header64.img");
    std::fs::write(&img, craft(&empty_messages(1, 32 << 20), &[])).unwrap();
    refused_fast(
        &img,
        &key_pub,
        "64 MiB security header",
        "over the record limit",
        "over the record limit",
    );

    // 16 MiB process record of empty VMAs: within the size limit, refused
    // by the count limit before decoding.
    let img = dir.path().join("process16.img");
    let rec = empty_messages(11 /* vmas */, 8 << 20);
    std::fs::write(&img, craft(&small_header, &[&rec])).unwrap();
    refused_fast(
        &img,
        &key_pub,
        "16 MiB process record",
        "ProcessRecord.vmas has more than 65536",
        "unsigned",
    );

    // 64 MiB process record: over the size limit, refused from the table.
    let img = dir.path().join("process64.img");
    let rec = empty_messages(11, 32 << 20);
    std::fs::write(&img, craft(&small_header, &[&rec])).unwrap();
    refused_fast(
        &img,
        &key_pub,
        "64 MiB process record",
        "over the record limit",
        "over the record limit",
    );
}

#[test]
fn policy_diff_and_inspect_refuse_what_restore_refuses_as_malformed() {
    use image_format::records::{PageRunRecord, ProcessRecord, VmaRecord};
    use image_format::{ImageWriter, SectionKind};
    use lsm_labels::persist::{ImageSecurity, Persist};
    let dir = tempfile::tempdir().unwrap();
    let header = ImageSecurity {
        profile: host_profile_json(),
        created_unix_secs: 1_795_000_000,
        hostname: "test-host".into(),
        writer_version: "test".into(),
    }
    .to_record();
    let mut w = ImageWriter::new(Vec::new(), &header).unwrap();
    let mut p = w.begin_pages(SectionKind::PAGES).unwrap();
    p.write_all(&[0x41; 4096]).unwrap();
    p.finish().unwrap();
    // Two overlapping VMAs, and a page run outside both.
    let vma = |start, end| VmaRecord {
        start,
        end,
        prot: 3,
        kind: 1,
        ..Default::default()
    };
    let rec = ProcessRecord {
        pid: 4_000_000,
        comm: "forged".into(),
        regs: Some(Default::default()),
        vmas: vec![vma(0x10_0000, 0x10_3000), vma(0x10_2000, 0x10_4000)],
        page_runs: vec![PageRunRecord {
            vaddr: 0x20_0000,
            len: 4096,
            section_offset: 0,
        }],
        security: Some(nobody_task(4_000_000).to_record()),
        ..Default::default()
    };
    w.write_record(SectionKind::PROCESS, &rec).unwrap();
    let img = dir.path().join("malformed.img");
    std::fs::write(&img, w.finish(None).unwrap()).unwrap();
    for args in [
        vec!["restore", s(&img)],
        vec!["policy-diff", s(&img)],
        vec!["inspect", "--json", s(&img)],
    ] {
        let o = run_ckpt(&args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(stderr(&o).contains("vmas[1]"), "{args:?}: {}", stderr(&o));
    }
}
