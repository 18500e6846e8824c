//! `ckpt dump PID -o IMG`: checkpoint a running process.
//!
//! The engine writes to a temporary name, syncs and renames; the target is
//! killed only after that (or detached with --leave-running). Any failure
//! leaves the target running and no file behind (the engine's guarantee).

use crate::cmd_lsm::host_profile;
use crate::failure::OrFail;
use crate::output::show_progress;
use crate::target_check;
use crate::{DumpArgs, Failure};
use ckpt_core::ptrace::TraceError;
use ckpt_core::{DumpError, DumpOptions, DumpReport};
use image_format::keys;
use lsm_labels::persist::{ImageSecurity, Persist};
use std::io::IsTerminal;
use std::path::Path;

/// The security header for an image written now on this host.
pub fn security_header() -> Result<image_format::SecurityHeaderRecord, Failure> {
    let profile = host_profile(None)?;
    let created_unix_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    Ok(ImageSecurity {
        profile,
        created_unix_secs,
        hostname,
        writer_version: env!("CARGO_PKG_VERSION").to_string(),
    }
    .to_record())
}

pub fn dump_failure(e: DumpError) -> Failure {
    dump_failure_with(e, false)
}

/// As `dump_failure`, for a user who gave `--leave-running` (who needs no
/// advice to give it).
fn dump_failure_with(e: DumpError, leave_running: bool) -> Failure {
    if let (true, DumpError::UnsupportedFd { pid, fd, what }) = (leave_running, &e) {
        return Failure::operational(anyhow::anyhow!(
            "cannot dump fd {fd} of pid {pid}: {what} (not supported yet); close it in the process and dump again (pid {pid} is still running)"
        ));
    }
    if let DumpError::Freeze {
        pid,
        source: TraceError::Ptrace { source, .. },
    } = &e
    {
        if source.raw_os_error() == Some(libc::EPERM) {
            return Failure::operational(anyhow::anyhow!(
                "cannot freeze pid {pid}: the kernel refused to let ckpt trace it (EPERM); is it already traced (TracerPid in /proc/{pid}/status), or does kernel.yama.ptrace_scope forbid it? Detach the other tracer, or run as root"
            ));
        }
        if source.raw_os_error() == Some(libc::ESRCH) {
            return Failure::operational(anyhow::anyhow!(
                "cannot dump pid {pid}: no such process (it exited); check the PID"
            ));
        }
    }
    if e.is_security_refusal() {
        Failure::refused(e)
    } else {
        Failure::operational(e)
    }
}

pub fn run(a: &DumpArgs) -> Result<u8, Failure> {
    let to_stdout = a.output.as_os_str() == "-";
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(Failure::usage(anyhow::anyhow!(
            "refusing to write an image to a terminal; redirect standard output or give -o FILE"
        )));
    }
    if let Some(why) = target_check::refusal(&target_check::read_facts(a.pid)) {
        return Err(Failure::operational(anyhow::anyhow!(why)));
    }
    if !to_stdout {
        check_output_path(&a.output, a.force)?;
    }
    let sign_key = a
        .sign_key
        .as_deref()
        .map(keys::read_secret_key)
        .transpose()
        .or_fail(|| "cannot use the signing key".into())?;
    let opts = DumpOptions {
        leave_running: a.leave_running,
        progress: show_progress(a.quiet),
        security: security_header()?,
        sign_key,
    };
    let report = if to_stdout {
        ckpt_core::dump_to_writer(a.pid, std::io::stdout().lock(), &opts)
    } else {
        ckpt_core::dump_to_path(a.pid, &a.output, &opts)
    }
    .map_err(|e| dump_failure_with(e, a.leave_running))?;
    let dest = if to_stdout {
        "standard output".to_string()
    } else {
        a.output.display().to_string()
    };
    if !a.quiet {
        eprintln!("{}", summary(&report, &dest));
    }
    if a.report.stats {
        eprint!("{}", crate::logging::phases_text());
    }
    if a.report.json {
        let json = summary_json(&report, &dest).to_string();
        // With -o - standard output is the image.
        if to_stdout {
            eprintln!("{json}");
        } else {
            println!("{json}");
        }
    }
    Ok(0)
}

/// `dump --json`: the report as data (docs/json.md).
fn summary_json(r: &DumpReport, dest: &str) -> serde_json::Value {
    serde_json::json!({
        "schema_version": 1,
        "command": "dump",
        "pid": r.pid,
        "image": dest,
        "image_bytes": r.image_bytes,
        "memory_bytes": r.pages_bytes,
        "mappings": r.vmas,
        "fds": r.fds,
        "frozen_us": r.frozen_for.as_micros() as u64,
        "left_running": r.left_running,
        "phases_us": crate::logging::phases_json(),
    })
}

/// Refuses, before the target is touched, an image path whose directory is
/// missing or that already exists (unless `force`).
fn check_output_path(path: &Path, force: bool) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Failure::operational(anyhow::anyhow!(
            "cannot write image {}: directory {} does not exist; create it or give another path with -o",
            path.display(),
            dir.display()
        )));
    }
    if path.symlink_metadata().is_ok() && !force {
        return Err(Failure::operational(anyhow::anyhow!(
            "refusing to overwrite {}: it already exists; remove it, choose another path, or give --force",
            path.display()
        )));
    }
    Ok(())
}

pub fn summary(r: &DumpReport, dest: &str) -> String {
    format!(
        "dumped pid {} to {dest}: {:.1} MiB image, {:.1} MiB of memory, {} mappings, {} fds; frozen for {} ms; {}",
        r.pid,
        r.image_bytes as f64 / (1 << 20) as f64,
        r.pages_bytes as f64 / (1 << 20) as f64,
        r.vmas,
        r.fds,
        r.frozen_for.as_millis(),
        if r.left_running { "left running" } else { "process killed" }
    )
}
