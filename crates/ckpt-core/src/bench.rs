//! The dump/restore benchmark (DESIGN 7): processes with 16, 256 and 1024
//! MiB of dirtied memory are dumped and restored, and each time is compared
//! with copying the same number of bytes between two files with `cat` on the
//! same filesystem, in the same run.
//!
//! The target process is this same executable re-run with
//! `CKPT_BENCH_HOG=<MiB>`: a binary that offers the benchmark calls
//! [`hog_main_if_requested`] first thing in `main`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{DumpOptions, RestoreOptions};

const HOG_ENV: &str = "CKPT_BENCH_HOG";

/// When run as a benchmark target: dirty the requested memory, say
/// `ready`, and wait to be dumped. Never returns in that case.
pub fn hog_main_if_requested() {
    let Ok(mib) = std::env::var(HOG_ENV) else {
        return;
    };
    let mib: usize = mib.parse().unwrap_or(16);
    // Drop fds leaked by whoever started us (e.g. a make jobserver pipe):
    // a pipe to another process cannot be dumped.
    let leaked: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd: &i32| fd > 2)
                .collect()
        })
        .unwrap_or_default();
    for fd in leaked {
        let _ = nix::unistd::close(fd);
    }
    let mut mem = vec![0u8; mib << 20];
    for (i, b) in mem.iter_mut().enumerate() {
        *b = (i % 251) as u8 | 1;
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
        std::hint::black_box(&mem);
    }
}

/// One measured size.
#[derive(Clone, Debug)]
pub struct BenchResult {
    pub mib: usize,
    pub dump: Duration,
    /// Time to open and verify the image (part of `restore`).
    pub verify: Duration,
    pub restore: Duration,
    pub image_bytes: u64,
    pub pages_bytes: u64,
    /// `cat A > B` of the same number of bytes.
    pub cat: Duration,
    /// `cat A > B` followed by fsync of B (the dump syncs its image).
    pub cat_sync: Duration,
}

/// Run the benchmark for each size in MiB, with files in `dir`.
pub fn run(sizes: &[usize], dir: &Path) -> Result<Vec<BenchResult>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut results = Vec::new();
    for &mib in sizes {
        let mut child = Command::new(&exe)
            .env(HOG_ENV, mib.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the target: {e}"))?;
        let pid = child.id() as i32;
        let mut line = String::new();
        let so = child.stdout.take().ok_or("no stdout")?;
        BufReader::new(so)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let img = dir.join(format!("bench-{mib}.img"));
        // Each timed step starts with no dirty page cache to write back.
        nix::unistd::sync();
        let t0 = Instant::now();
        let rep = crate::dump_to_path(pid, &img, &DumpOptions::default());
        let dump = t0.elapsed();
        if rep.is_err() {
            let _ = child.kill();
        }
        let _ = child.wait();
        let rep = rep.map_err(|e| e.to_string())?;

        nix::unistd::sync();
        let t1 = Instant::now();
        let file = File::open(&img).map_err(|e| e.to_string())?;
        let image = image_format::VerifiedImage::open(file).map_err(|e| e.to_string())?;
        let verify = t1.elapsed();
        let decision = crate::plan_restore(
            &image,
            crate::ImageSource::File,
            crate::VerdictHost::Live,
            &lsm_labels::verdict::RestoreFlags::default(),
        )
        .map_err(|e| e.to_string())?;
        let approved = decision
            .approved()
            .ok_or_else(|| decision.verdict().to_string())?;
        let restored =
            crate::restore(approved, &RestoreOptions::default()).map_err(|e| e.to_string())?;
        let restore = t1.elapsed();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(restored.pid()),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = restored.wait();
        drop(image);

        // Baseline: the same number of bytes, file to file.
        let a = dir.join(format!("cat-src-{mib}"));
        let b = dir.join(format!("cat-dst-{mib}"));
        {
            let mut f = File::create(&a).map_err(|e| e.to_string())?;
            let chunk: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8 | 1).collect();
            for _ in 0..(rep.image_bytes >> 20).max(1) {
                f.write_all(&chunk).map_err(|e| e.to_string())?;
            }
            f.sync_all().map_err(|e| e.to_string())?;
        }
        let cat_once = |sync: bool| -> Result<Duration, String> {
            let _ = std::fs::remove_file(&b);
            nix::unistd::sync();
            let t = Instant::now();
            let out = File::create(&b).map_err(|e| e.to_string())?;
            let st = Command::new("cat")
                .arg(&a)
                .stdout(out.try_clone().map_err(|e| e.to_string())?)
                .status()
                .map_err(|e| e.to_string())?;
            if !st.success() {
                return Err("cat failed".into());
            }
            if sync {
                out.sync_all().map_err(|e| e.to_string())?;
            }
            Ok(t.elapsed())
        };
        // Best of two runs each.
        let cat = cat_once(false)?.min(cat_once(false)?);
        let cat_sync = cat_once(true)?.min(cat_once(true)?);
        let _ = std::fs::remove_file(&a);
        let _ = std::fs::remove_file(&b);
        let _ = std::fs::remove_file(&img);
        results.push(BenchResult {
            mib,
            dump,
            restore,
            verify,
            image_bytes: rep.image_bytes,
            pages_bytes: rep.pages_bytes,
            cat,
            cat_sync,
        });
    }
    Ok(results)
}

/// The table printed by the bench binaries.
pub fn format_table(results: &[BenchResult]) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut s = String::from(
        "  MiB   dump ms  restore ms (verify)   cat ms  cat+fsync ms  dump/cat+fsync  restore/cat  image MiB  image/pages\n",
    );
    for r in results {
        s.push_str(&format!(
            "{:>5} {:>9.1} {:>11.1} {:>8.1} {:>8.1} {:>13.1} {:>15.2} {:>12.2} {:>10.1} {:>12.4}\n",
            r.mib,
            ms(r.dump),
            ms(r.restore),
            ms(r.verify),
            ms(r.cat),
            ms(r.cat_sync),
            ms(r.dump) / ms(r.cat_sync),
            ms(r.restore) / ms(r.cat),
            r.image_bytes as f64 / (1 << 20) as f64,
            r.image_bytes as f64 / r.pages_bytes.max(1) as f64,
        ));
    }
    s
}
