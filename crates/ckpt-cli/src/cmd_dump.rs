//! `ckpt dump PID -o IMG`: checkpoint a running process.
//!
//! The engine writes to a temporary name, syncs and renames; the target is
//! killed only after that (or detached with --leave-running). Any failure
//! leaves the target running and no file behind (the engine's guarantee).

use crate::cmd_lsm::host_profile;
use crate::failure::OrFail;
use crate::output::show_progress;
use crate::{DumpArgs, Failure};
use ckpt_core::{DumpError, DumpOptions, DumpReport};
use image_format::keys;
use lsm_labels::persist::{ImageSecurity, Persist};
use std::io::IsTerminal;

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
    .map_err(dump_failure)?;
    if !a.quiet {
        eprintln!(
            "{}",
            summary(&report, &crate::image_io::display_name(&a.output))
        );
    }
    Ok(0)
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
