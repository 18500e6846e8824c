//! Like `verify_image`, but before verifying, recomputes every in-bounds
//! section digest, the table digest and (for signed inputs) the signature
//! with a fixed key, following docs/image-format.md. Random inputs almost
//! never get past the digests; this target lets the fuzzer reach the layout
//! rules, the record decoders and the accessors behind them.
#![no_main]

use ed25519_dalek::{Signer, SigningKey};
use image_format::records::{ProcessRecord, SecurityHeaderRecord, TaskSecurityRecord};
use image_format::VerifiedImage;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Rewrites digests and signature in place where the structure allows.
fn fix_digests(d: &mut [u8]) {
    let n = d.len();
    if n < 108 {
        return;
    }
    let header_len = le_u32(d, 16) as usize;
    let trailer_offset = le_u64(d, n - 24);
    let trailer_len = le_u64(d, n - 16);
    if header_len > n
        || trailer_offset
            .checked_add(trailer_len)
            .and_then(|e| e.checked_add(24))
            != Some(n as u64)
    {
        return;
    }
    let (to, tl) = (trailer_offset as usize, trailer_len as usize);
    if tl < 16 {
        return;
    }
    let count = le_u32(d, to + 8) as usize;
    let table_end = match count.checked_mul(56).and_then(|x| x.checked_add(16)) {
        Some(e) if e + 36 <= tl => e,
        _ => return,
    };
    for i in 0..count {
        let e = to + 16 + 56 * i;
        let off = le_u64(d, e + 8);
        let len = le_u64(d, e + 16);
        if let Some(end) = off.checked_add(len) {
            if end <= trailer_offset {
                let digest = Sha256::digest(&d[off as usize..end as usize]);
                d[e + 24..e + 56].copy_from_slice(&digest);
            }
        }
    }
    let mut h = Sha256::new();
    h.update(b"ckpt image table v1\0");
    h.update(&d[..header_len]);
    h.update(&d[to..to + table_end]);
    let digest: [u8; 32] = h.finalize().into();
    d[to + table_end..to + table_end + 32].copy_from_slice(&digest);
    let scheme_at = to + table_end + 32;
    if le_u32(d, scheme_at) == 1 && scheme_at + 4 + 96 <= n - 24 {
        let key = SigningKey::from_bytes(&[0x42; 32]);
        let mut msg = b"ckpt image signature v1\0".to_vec();
        msg.extend_from_slice(&digest);
        d[scheme_at + 4..scheme_at + 36].copy_from_slice(key.verifying_key().as_bytes());
        d[scheme_at + 36..scheme_at + 100].copy_from_slice(&key.sign(&msg).to_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut d = data.to_vec();
    fix_digests(&mut d);
    let Ok(img) = VerifiedImage::from_bytes(&d) else {
        return;
    };
    let _ = img.check_signature_policy(&[], true);
    for s in img.sections() {
        let _ = img.read_record::<SecurityHeaderRecord>(s);
        let _ = img.read_record::<ProcessRecord>(s);
        let _ = img.read_record::<TaskSecurityRecord>(s);
        let mut buf = [0u8; 64];
        let n = (s.len as usize).min(buf.len());
        let _ = img.read_pages(s, 0, &mut buf[..n]);
    }
});
