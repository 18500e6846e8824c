//! Measures image write and verify throughput against plain SHA-256 and a
//! plain file copy, for DESIGN 7's speed target.
//!
//! `cargo run --release -p image-format --example image_speed -- [DIR] [MIB]`
//! (defaults: the system temporary directory, 1024 MiB).

use std::fs::File;
use std::io::{Read, Write};
use std::time::Instant;

use image_format::records::SecurityHeaderRecord;
use image_format::{ImageWriter, SectionKind, VerifiedImage};
use sha2::{Digest, Sha256};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mib: usize = args
        .next()
        .map_or(1024, |s| s.parse().expect("MIB is a number"));
    let chunk: Vec<u8> = (0..4 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let chunks = mib / 4;
    let total = (chunks * chunk.len()) as f64;
    let gib_s = |secs: f64| total / secs / (1u64 << 30) as f64;

    let t = Instant::now();
    let mut h = Sha256::new();
    for _ in 0..chunks {
        h.update(&chunk);
    }
    let _ = h.finalize();
    let sha = t.elapsed().as_secs_f64();
    println!("sha256 in memory: {:.3} s ({:.2} GiB/s)", sha, gib_s(sha));

    let src = dir.join("image_speed.src");
    let mut f = File::create(&src).unwrap();
    for _ in 0..chunks {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let t = Instant::now();
    let mut input = File::open(&src).unwrap();
    let mut out = File::create(dir.join("image_speed.copy")).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = input.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).unwrap();
    }
    out.sync_all().unwrap();
    let copy = t.elapsed().as_secs_f64();
    println!(
        "file copy (read+write+fsync): {:.3} s ({:.2} GiB/s)",
        copy,
        gib_s(copy)
    );
    drop(out);

    let path = dir.join("image_speed.img");
    let t = Instant::now();
    let mut w = ImageWriter::new(
        File::create(&path).unwrap(),
        &SecurityHeaderRecord::default(),
    )
    .unwrap();
    let mut p = w.begin_pages(SectionKind::PAGES).unwrap();
    for _ in 0..chunks {
        p.write_all(&chunk).unwrap();
    }
    p.finish().unwrap();
    w.finish(None).unwrap().sync_all().unwrap();
    let write = t.elapsed().as_secs_f64();
    println!(
        "image write (hash+write+fsync): {:.3} s ({:.2} GiB/s, {:.2}x copy)",
        write,
        gib_s(write),
        write / copy
    );

    let t = Instant::now();
    let img = VerifiedImage::open(File::open(&path).unwrap()).unwrap();
    let verify = t.elapsed().as_secs_f64();
    println!(
        "image verify (cached): {:.3} s ({:.2} GiB/s, {:.2}x sha256)",
        verify,
        gib_s(verify),
        verify / sha
    );
    assert_eq!(img.sections()[1].len as f64, total);
    for name in ["image_speed.src", "image_speed.copy", "image_speed.img"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}
