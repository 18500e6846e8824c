//! Shared helpers for the lsm-labels integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lsm_labels::{detect_host_profile, HostProfile, HostView, PolicyFingerprint};

/// The fixture tree `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A private, writable copy of fixture `name` (symlinks kept as symlinks).
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture(name), d.path());
    d
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        let dst = to.join(e.file_name());
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dst).unwrap();
        } else if ft.is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

pub fn profile_of(root: &Path) -> HostProfile {
    detect_host_profile(&HostView::sysroot(root)).expect("detect profile")
}

pub fn fingerprint_of(root: &Path, lsm: &str) -> PolicyFingerprint {
    profile_of(root)
        .lsm(lsm)
        .unwrap_or_else(|| panic!("{lsm} not in the stack"))
        .fingerprint
        .clone()
}

/// Names of the components whose digest differs, plus added and removed.
pub fn changed_components(a: &PolicyFingerprint, b: &PolicyFingerprint) -> Vec<String> {
    let mut out = Vec::new();
    for c in &a.components {
        match b.components.iter().find(|d| d.name == c.name) {
            Some(d) if d.digest == c.digest => {}
            _ => out.push(c.name.clone()),
        }
    }
    for d in &b.components {
        if !a.components.iter().any(|c| c.name == d.name) {
            out.push(d.name.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Sets every file's mtime under `root` to `t` (timestamps must not matter).
pub fn touch_all(root: &Path, t: std::time::SystemTime) {
    for e in std::fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            touch_all(&e.path(), t);
        } else if ft.is_file() {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(e.path())
                .unwrap();
            f.set_modified(t).unwrap();
        }
    }
}

pub fn write(root: &Path, rel: &str, data: impl AsRef<[u8]>) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

pub fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}
