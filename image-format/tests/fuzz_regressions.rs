//! Replays the fuzz seeds (which must verify) and every saved fuzz
//! regression input (which must not panic) on the stable toolchain.

use std::path::Path;

use image_format::records::{ProcessRecord, SecurityHeaderRecord};
use image_format::VerifiedImage;

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name() != Some("README.md".as_ref()))
        .collect();
    files.sort();
    files
}

#[test]
fn fuzz_seeds_verify() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/verify_image");
    let seeds = files_in(&dir);
    assert!(seeds.len() >= 5, "seeds missing in {}", dir.display());
    for seed in seeds {
        let bytes = std::fs::read(&seed).unwrap();
        let img =
            VerifiedImage::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
        assert!(img
            .first_record::<SecurityHeaderRecord>(image_format::SectionKind::SECURITY_HEADER)
            .unwrap()
            .is_some());
    }
}

#[test]
fn fuzz_regression_inputs_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    for input in files_in(&dir) {
        let bytes = std::fs::read(&input).unwrap();
        if let Ok(img) = VerifiedImage::from_bytes(&bytes) {
            for s in img.sections() {
                let _ = img.read_record::<ProcessRecord>(s);
            }
        }
        let _ = <ProcessRecord as prost::Message>::decode(bytes.as_slice());
    }
}
