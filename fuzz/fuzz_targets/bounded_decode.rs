//! Peak memory of the bounded decoder (issue 7 item 6): arbitrary bytes as
//! a record, under the reader's wire limits (`image_format::limits`), must
//! never make decoding allocate more than the stated bound
//! (docs/image-format.md, "Limits"):
//! `2 * len + schema.structure_bound(pages_len) + 1 MiB`.
//! A counting global allocator measures the peak of each input and the
//! target aborts when it is exceeded. Run it with libFuzzer's own limits as
//! a second net (the Makefile's `fuzz-memory` target):
//! `-rss_limit_mb=512 -malloc_limit_mb=256`.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use image_format::limits::{self, BoundedRecord, Schema, WireContext};
use image_format::records::{ProcessRecord, SecurityHeaderRecord, TaskSecurityRecord};
use libfuzzer_sys::fuzz_target;

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
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn decode_bounded<M: BoundedRecord>(data: &[u8], ctx: &WireContext) {
    let schema: &'static Schema = M::SCHEMA;
    if limits::check_wire(data, schema, ctx).is_err() {
        return;
    }
    let start = CURRENT.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let decoded = M::decode(data);
    let peak = (PEAK.load(Ordering::Relaxed) - start) as u64;
    drop(decoded);
    let bound = 2 * data.len() as u64 + schema.structure_bound(ctx) + (1 << 20);
    assert!(
        peak <= bound,
        "{}: {} wire bytes allocated {peak} > bound {bound}",
        schema.name,
        data.len()
    );
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the pages section length (0..=255 pages).
    let Some((&pages, data)) = data.split_first() else {
        return;
    };
    let ctx = WireContext {
        pages_len: u64::from(pages) * 4096,
    };
    decode_bounded::<SecurityHeaderRecord>(data, &ctx);
    decode_bounded::<ProcessRecord>(data, &ctx);
    decode_bounded::<TaskSecurityRecord>(data, &ctx);
});
