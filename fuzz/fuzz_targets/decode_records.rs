//! Feeds arbitrary bytes to the protobuf record decoders (what a hostile but
//! validly signing writer controls): decoding must fail or succeed, never
//! panic.
#![no_main]

use image_format::records::{ProcessRecord, SecurityHeaderRecord, TaskSecurityRecord};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = SecurityHeaderRecord::decode(data);
    let _ = ProcessRecord::decode(data);
    let _ = TaskSecurityRecord::decode(data);
});
