//! Shared test helpers: the golden image's contents, small images, and a
//! byte-level editor of the section table that follows docs/image-format.md
//! independently of the crate's own encoder (so tests can build images that
//! are well-formed except for one rule).

#![allow(dead_code)]

use ed25519_dalek::{Signer, SigningKey};
use image_format::records::{
    ComponentRecord, CredsRecord, FingerprintRecord, LabelRecord, LsmRecord, SecurityHeaderRecord,
    TaskSecurityRecord,
};
use image_format::{ImageWriter, SectionKind};
use sha2::{Digest, Sha256};

/// The private section kind the golden image uses for a task record.
pub const GOLDEN_TASK_KIND: SectionKind = SectionKind(0x8000_0001);

/// The fixed signing key of the golden image.
pub fn golden_key() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32])
}

pub fn golden_security_header() -> SecurityHeaderRecord {
    SecurityHeaderRecord {
        lsms: vec![
            LsmRecord {
                name: "capability".into(),
                id: 100,
                fingerprint: Some(FingerprintRecord {
                    digest: vec![],
                    version: String::new(),
                    components: vec![],
                    note: "no global policy".into(),
                }),
            },
            LsmRecord {
                name: "lockdown".into(),
                id: 108,
                fingerprint: Some(FingerprintRecord {
                    digest: vec![0x11; 32],
                    version: String::new(),
                    components: vec![ComponentRecord {
                        name: "mode".into(),
                        digest: vec![0x22; 32],
                    }],
                    note: String::new(),
                }),
            },
            LsmRecord {
                name: "landlock".into(),
                id: 110,
                fingerprint: Some(FingerprintRecord {
                    digest: vec![0x33; 32],
                    version: "6".into(),
                    components: vec![],
                    note: String::new(),
                }),
            },
        ],
        kernel_release: "6.18.0-golden".into(),
        arch: "x86_64".into(),
        created_unix_secs: 1_790_000_000,
        hostname: "golden-host".into(),
        writer_version: "ckpt 0.1.0".into(),
    }
}

pub fn golden_task() -> TaskSecurityRecord {
    TaskSecurityRecord {
        tid: 4242,
        creds: Some(CredsRecord {
            uids: vec![1000, 1000, 1000, 1000],
            gids: vec![1000, 1000, 1000, 1000],
            groups: vec![27, 1000],
            cap_inheritable: 0,
            cap_permitted: 0,
            cap_effective: 0,
            cap_bounding: 0x1ff_ffff_ffff,
            cap_ambient: 0,
            securebits: 0,
        }),
        labels: vec![LabelRecord {
            lsm: String::new(),
            attr: "current".into(),
            value: b"unconfined\n".to_vec(),
        }],
        no_new_privs: true,
        seccomp_mode: 2,
        // One classic BPF instruction: ret SECCOMP_RET_ALLOW.
        seccomp_filters: vec![vec![0x06, 0, 0, 0, 0, 0, 0xff, 0x7f]],
        personality: 0,
    }
}

/// The golden page contents: one page of a fixed pattern.
pub fn golden_page() -> Vec<u8> {
    (0..4096u32)
        .map(|i| (i.wrapping_mul(7) + 3) as u8)
        .collect()
}

/// Builds the golden image (signed when `signed`).
pub fn build_golden(signed: bool) -> Vec<u8> {
    let mut w = ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    w.write_record(GOLDEN_TASK_KIND, &golden_task()).unwrap();
    let mut p = w.begin_pages(SectionKind::PAGES).unwrap();
    p.write_all(&golden_page()).unwrap();
    p.finish().unwrap();
    let key = golden_key();
    w.finish(signed.then_some(&key)).unwrap()
}

/// A small unsigned image without page sections (no padding).
pub fn build_small_records_only() -> Vec<u8> {
    let mut w = ImageWriter::new(Vec::new(), &golden_security_header()).unwrap();
    w.write_record(GOLDEN_TASK_KIND, &golden_task()).unwrap();
    w.finish(None).unwrap()
}

/// The golden image file checked into the repository.
pub fn golden_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1.img")
}

// ---- a byte-level view of the documented layout --------------------------

pub fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// One section table row, decoded by the test's own reading of the docs.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEntry {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub len: u64,
    pub digest: [u8; 32],
}

/// The parts of an image as docs/image-format.md lays them out.
#[derive(Clone, Debug)]
pub struct RawImage {
    pub header: Vec<u8>,
    pub body: Vec<u8>,
    pub entries: Vec<RawEntry>,
    pub trailer_reserved: u32,
}

impl RawImage {
    pub fn parse(img: &[u8]) -> RawImage {
        let header_len = le_u32(img, 16) as usize;
        let n = img.len();
        let trailer_offset = le_u64(img, n - 24) as usize;
        let t = &img[trailer_offset..n - 24];
        assert_eq!(&t[0..8], b"CKPTTRL\0");
        let count = le_u32(t, 8) as usize;
        let entries = (0..count)
            .map(|i| {
                let e = &t[16 + 56 * i..16 + 56 * (i + 1)];
                RawEntry {
                    kind: le_u32(e, 0),
                    flags: le_u32(e, 4),
                    offset: le_u64(e, 8),
                    len: le_u64(e, 16),
                    digest: e[24..56].try_into().unwrap(),
                }
            })
            .collect();
        RawImage {
            header: img[..header_len].to_vec(),
            body: img[header_len..trailer_offset].to_vec(),
            entries,
            trailer_reserved: le_u32(t, 12),
        }
    }

    /// Re-assembles the image with a correct table digest (and signature
    /// with `signer`), whatever the entries say.
    pub fn assemble(&self, signer: Option<&SigningKey>) -> Vec<u8> {
        let mut img = self.header.clone();
        img.extend_from_slice(&self.body);
        let trailer_offset = img.len() as u64;
        let mut t = Vec::new();
        t.extend_from_slice(b"CKPTTRL\0");
        t.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        t.extend_from_slice(&self.trailer_reserved.to_le_bytes());
        for e in &self.entries {
            t.extend_from_slice(&e.kind.to_le_bytes());
            t.extend_from_slice(&e.flags.to_le_bytes());
            t.extend_from_slice(&e.offset.to_le_bytes());
            t.extend_from_slice(&e.len.to_le_bytes());
            t.extend_from_slice(&e.digest);
        }
        let mut h = Sha256::new();
        h.update(b"ckpt image table v1\0");
        h.update(&self.header);
        h.update(&t);
        let digest: [u8; 32] = h.finalize().into();
        t.extend_from_slice(&digest);
        match signer {
            None => t.extend_from_slice(&0u32.to_le_bytes()),
            Some(key) => {
                t.extend_from_slice(&1u32.to_le_bytes());
                t.extend_from_slice(key.verifying_key().as_bytes());
                let mut msg = b"ckpt image signature v1\0".to_vec();
                msg.extend_from_slice(&digest);
                t.extend_from_slice(&key.sign(&msg).to_bytes());
            }
        }
        img.extend_from_slice(&t);
        img.extend_from_slice(&trailer_offset.to_le_bytes());
        img.extend_from_slice(&(t.len() as u64).to_le_bytes());
        img.extend_from_slice(b"CKPTEND\0");
        img
    }

    /// Recomputes every entry's digest from the body (for tests that move
    /// sections around).
    pub fn rehash(&mut self) {
        let base = self.header.len() as u64;
        let body_end = base + self.body.len() as u64;
        for e in &mut self.entries {
            let start = e.offset.saturating_sub(base).min(self.body.len() as u64) as usize;
            let end = e
                .offset
                .saturating_add(e.len)
                .min(body_end)
                .saturating_sub(base) as usize;
            e.digest = Sha256::digest(&self.body[start..end.max(start)]).into();
        }
    }
}

/// A deterministic xorshift generator for mutation tests.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
