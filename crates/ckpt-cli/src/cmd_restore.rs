//! `ckpt restore IMG`: restart a process from an image.
//!
//! Order (DESIGN 3): verify the whole image (integrity and signature
//! first), reach the verdict with the same function `policy-diff` uses,
//! and only then ask the engine to create anything. Foreground restore
//! waits and exits with the process's status (128+N for signal N).

use crate::image_io::open_with_policy;
use crate::output::show_progress;
use crate::verdict_input::{decide_for_restore, print_verdict_messages, RefusalSummary};
use crate::{Failure, RestoreArgs};
use ckpt_core::RestoreOptions;
use image_format::SignaturePolicy;

pub fn run(a: &RestoreArgs) -> Result<u8, Failure> {
    // --require-signature / --trusted-key refuse before anything is decoded.
    let policy = SignaturePolicy::for_restore(read_trusted_verifying_keys(a)?, a.require_signature);
    let img = open_with_policy(&a.image, &policy)?;
    let verdict = decide_for_restore(&img, a)?;
    print_verdict_messages(&verdict, a.quiet);
    if !verdict.allowed() {
        return Err(Failure::refused(anyhow::anyhow!(
            "cannot restore {}: {}",
            crate::image_io::display_name(&a.image),
            verdict.refusal_summary()
        )));
    }
    let opts = RestoreOptions {
        pid_ns: a.pid_ns,
        progress: show_progress(a.quiet),
        plan: verdict.plan.clone(),
    };
    let restored = ckpt_core::restore(&img, &opts).map_err(|e| {
        if e.is_security_refusal() {
            Failure::refused(e)
        } else {
            Failure::operational(e)
        }
    })?;
    let pid = restored.pid();
    for f in restored.files_opened_as_caller() {
        eprintln!("notice: --files-as-caller: opened {f} with your authority");
    }
    if let Some(pf) = &a.pidfile {
        if let Err(e) = write_pidfile(pf, pid) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            let _ = restored.wait();
            return Err(Failure::operational(anyhow::Error::new(e).context(
                format!(
                    "cannot write pidfile {}; the restored process {pid} was killed",
                    pf.display()
                ),
            )));
        }
    }
    if a.detach {
        println!("{}", restored.detach());
        return Ok(0);
    }
    if !a.quiet && show_progress(false) {
        eprintln!("restored pid {pid}; waiting for it to exit");
    }
    let status = restored.wait().map_err(|e| {
        Failure::operational(
            anyhow::Error::new(e).context(format!("cannot wait for restored pid {pid}")),
        )
    })?;
    Ok(u8::try_from(status.as_exit_code()).unwrap_or(255))
}

/// The `--trusted-key` files as keys for the reader's signature policy.
fn read_trusted_verifying_keys(
    a: &RestoreArgs,
) -> Result<Vec<ed25519_dalek::VerifyingKey>, Failure> {
    a.trusted_keys
        .iter()
        .map(|p| {
            image_format::keys::read_public_key(p).map_err(|e| {
                Failure::usage(
                    anyhow::Error::new(e).context(format!("--trusted-key {}", p.display())),
                )
            })
        })
        .collect()
}

/// Writes the PID atomically (temporary name + rename) so a reader never
/// sees a partial number.
fn write_pidfile(path: &std::path::Path, pid: i32) -> std::io::Result<()> {
    let tmp = path.with_extension("ckpt-tmp");
    std::fs::write(&tmp, format!("{pid}\n"))?;
    std::fs::rename(&tmp, path)
}
