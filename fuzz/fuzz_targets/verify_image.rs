//! Feeds arbitrary bytes to the image reader: it must return an error or a
//! verified image, never panic, hang or allocate without bound. When an
//! input verifies, every section is also read as each known record type.
#![no_main]

use image_format::records::{ProcessRecord, SecurityHeaderRecord, TaskSecurityRecord};
use image_format::VerifiedImage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(img) = VerifiedImage::from_bytes(data) else {
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
