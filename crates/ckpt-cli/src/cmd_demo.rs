//! `ckpt demo`: starts a small counter process, checkpoints it, restores it,
//! shows it continuing from the value it had, and prints the image's
//! security header. It goes through the same verdict and engine calls as
//! `dump` and `restore`.

use crate::cmd_dump::{dump_failure, security_header, summary};
use crate::failure::OrFail;
use crate::verdict_input::{decide, engine_failure, print_verdict_messages, refusal_failure};
use crate::Failure;
use ckpt_core::{DumpOptions, RestoreOptions, VerdictHost};
use lsm_labels::verdict::RestoreFlags;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// The demo's counter: writes start+1, start+2, ... to `out`, one line
/// every 200 ms, through one fd whose offset the restore must keep.
pub fn counter(out: &Path, start: u64) -> Result<u8, Failure> {
    let mut f =
        std::fs::File::create(out).or_fail(|| format!("cannot create {}", out.display()))?;
    let mut n = start;
    loop {
        n += 1;
        let _ = writeln!(f, "{n}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn numbers(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn wait_for_lines(path: &Path, n: usize) -> Result<Vec<u64>, Failure> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = numbers(path);
        if v.len() >= n {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(Failure::operational(anyhow::anyhow!(
                "the demo counter wrote only {} lines to {} in 15 s",
                v.len(),
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn show(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(" ")
}

pub fn run() -> Result<u8, Failure> {
    // A new private directory (mode 0700, random name, created with
    // mkdir's O_EXCL semantics): nothing planted under $TMPDIR is used,
    // and no one else can put a file or symlink inside it.
    let dir = tempfile::Builder::new()
        .prefix("ckpt-demo-")
        .tempdir()
        .or_fail(|| {
            format!(
                "cannot create a private directory in {}",
                std::env::temp_dir().display()
            )
        })?;
    run_in(dir.path())
}

fn run_in(dir: &Path) -> Result<u8, Failure> {
    let out = dir.join("count");
    let img_path = dir.join("demo.img");
    let start = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64)
        % 100_000;
    let exe = std::env::current_exe().or_fail(|| "cannot find the ckpt executable".into())?;
    // Only stdio, all on /dev/null: the counter must not depend on (or
    // carry into the image) any fd of whoever runs the demo.
    let mut counter = std::process::Command::new(exe);
    counter
        .arg("demo-counter")
        .arg(&out)
        .arg(start.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = crate::sys::only_stdio(&mut counter)
        .spawn()
        .or_fail(|| "cannot start the demo counter".into())?;
    let pid = child.id() as i32;
    println!(
        "1. started a counter, pid {pid}, writing one number every 200 ms to {}",
        out.display()
    );
    let before = match wait_for_lines(&out, 5) {
        Ok(v) => v,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    println!("   it counts: {}", show(&before));

    let opts = DumpOptions {
        leave_running: false,
        progress: false,
        security: security_header()?,
        sign_key: None,
    };
    let report = match ckpt_core::dump_to_path(pid, &img_path, &opts) {
        Ok(r) => r,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(dump_failure(e));
        }
    };
    let _ = child.wait();
    let at_dump = numbers(&out);
    println!("2. {}", summary(&report, &img_path.display().to_string()));
    println!(
        "   last value before the checkpoint: {}",
        at_dump.last().copied().unwrap_or(start)
    );

    let img = crate::image_io::open_verified(&img_path)?;
    let decision = decide(&img, &img_path, VerdictHost::Live, &RestoreFlags::default())?;
    let verdict = decision.verdict();
    print_verdict_messages(verdict, false);
    let Some(approved) = decision.approved() else {
        return Err(refusal_failure(
            verdict,
            "the demo's restore is refused".into(),
        ));
    };
    let restored =
        ckpt_core::restore(approved, &RestoreOptions::default()).map_err(engine_failure)?;
    let rpid = restored.pid();
    println!("3. restored from {} as pid {rpid}", img_path.display());
    let after = wait_for_lines(&out, at_dump.len() + 5);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(rpid), nix::sys::signal::SIGKILL);
    let _ = restored.wait();
    let after = after?;
    let continued = &after[at_dump.len()..];
    let expected_next = at_dump.last().copied().unwrap_or(start) + 1;
    println!(
        "   it continues: {}  ({})",
        show(continued),
        if continued.first() == Some(&expected_next) {
            format!("picked up at {expected_next}, right after the checkpoint")
        } else {
            format!("expected {expected_next} first: the restore did not continue correctly")
        }
    );
    println!("4. the image's security header:");
    crate::cmd_inspect::print_security_header(&img);
    if continued.first() == Some(&expected_next) {
        Ok(0)
    } else {
        Ok(1)
    }
}
