//! An attacker's image editor for the tests: `fx-edit-image IN OUT EDIT...`
//! reads the verified image IN and writes OUT (new, mode 0600, unsigned)
//! with the same sections, its process record edited, and every digest
//! recomputed, as anyone who can read an image can. Edits:
//! - `uid0`: uids, gids and groups 0, every capability permitted and
//!   effective (the claims of a root process);
//! - `strip-confinement`: no no_new_privs, no seccomp filter;
//! - `nofile=N`: RLIMIT_NOFILE soft and hard limit N.

use image_format::records::{ProcessRecord, RlimitRecord};
use image_format::{ImageWriter, SectionKind, VerifiedImage};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

const FULL_CAPS: u64 = (1 << 41) - 1;
const RLIMIT_NOFILE: u32 = 7;

fn edit(p: &mut ProcessRecord, what: &str) {
    let sec = p.security.as_mut().expect("a security record");
    match what {
        "uid0" => {
            let c = sec.creds.as_mut().expect("creds");
            c.uids = vec![0; 4];
            c.gids = vec![0; 4];
            c.groups = vec![0];
            c.cap_permitted = FULL_CAPS;
            c.cap_effective = FULL_CAPS;
            c.cap_bounding = FULL_CAPS;
        }
        "strip-confinement" => {
            sec.no_new_privs = false;
            sec.seccomp_mode = 0;
            sec.seccomp_filters.clear();
        }
        n if n.starts_with("nofile=") => {
            let v: u64 = n["nofile=".len()..].parse().expect("nofile=N");
            p.rlimits.retain(|l| l.resource != RLIMIT_NOFILE);
            p.rlimits.push(RlimitRecord {
                resource: RLIMIT_NOFILE,
                soft: v,
                hard: v,
            });
        }
        other => panic!("unknown edit {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(args.len() >= 4, "usage: fx-edit-image IN OUT EDIT...");
    let img = VerifiedImage::open(File::open(&args[1]).expect("open IN")).expect("IN verifies");
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args[2])
        .expect("create OUT");
    let mut w = ImageWriter::new(out, img.security_header()).expect("writer");
    for s in img.sections().to_vec() {
        if s.kind == SectionKind::PAGES {
            let mut pages = w.begin_pages(SectionKind::PAGES).expect("pages");
            let mut buf = vec![0u8; 1 << 20];
            let mut done = 0u64;
            while done < s.len {
                let n = (s.len - done).min(buf.len() as u64) as usize;
                img.read_pages(&s, done, &mut buf[..n]).expect("read pages");
                pages.write_all(&buf[..n]).expect("write pages");
                done += n as u64;
            }
            pages.finish().expect("pages end");
        } else if s.kind == SectionKind::PROCESS {
            let mut p: ProcessRecord = img.read_record(&s).expect("process record");
            for what in &args[3..] {
                edit(&mut p, what);
            }
            w.write_record(SectionKind::PROCESS, &p).expect("record");
        } else {
            assert_eq!(s.kind, SectionKind::SECURITY_HEADER, "unknown section");
        }
    }
    let out = w.finish(None).expect("finish");
    out.sync_all().expect("sync");
}
