//! `ckpt restore IMG`: restart a process from an image.
//!
//! Order (DESIGN 3): verify the whole image (integrity and signature
//! first), reach the verdict with the same function `policy-diff` uses,
//! and only then ask the engine to create anything. Foreground restore
//! waits and exits with the process's status (128+N for signal N).

use crate::image_io::open_for_restore;
use crate::output::show_progress;
use crate::verdict_input::{
    decide_for_restore, engine_failure, print_verdict_messages, refusal_failure,
};
use crate::{Failure, RestoreArgs};
use ckpt_core::{phase, RestoreOptions, StdioRedirect};
use image_format::SignaturePolicy;

pub fn run(a: &RestoreArgs) -> Result<u8, Failure> {
    let progress = show_progress(a.quiet);
    // --require-signature / --trusted-key refuse before anything is decoded;
    // the pages are hashed by the engine as the restored task holds them.
    let policy = SignaturePolicy::for_restore(read_trusted_verifying_keys(a)?, a.require_signature);
    let img = phase::timed("verify", || open_for_restore(&a.image, &policy))?;
    if progress {
        eprintln!("restore: image verified");
    }
    let decision = phase::timed("plan", || decide_for_restore(&img, a))?;
    let verdict = decision.verdict();
    print_verdict_messages(verdict, a.quiet);
    let Some(approved) = decision.approved() else {
        return Err(refusal_failure(
            verdict,
            format!("cannot restore {}", crate::image_io::display_name(&a.image)),
        ));
    };
    let opts = RestoreOptions {
        progress: show_progress(a.quiet),
        stdio: StdioRedirect {
            stdin: a.stdin.clone(),
            stdout: a.stdout.clone(),
            stderr: a.stderr.clone(),
        },
        detach: a.detach,
    };
    let restored = ckpt_core::restore(approved, &opts).map_err(engine_failure)?;
    let pid = restored.pid();
    if progress {
        eprintln!("restore: pid {pid} rebuilt and resumed");
    }
    for f in restored.files_opened_as_caller() {
        eprintln!("notice: --files-as-caller: opened {f} with your authority");
    }
    if !restored.has_callers_stdio() && !a.quiet {
        eprintln!(
            "notice: pid {pid} runs with another identity than yours: it does not get your \
             terminal or stdio (its stdio not given with --stdin/--stdout/--stderr is \
             /dev/null) and runs in a session of its own"
        );
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
    report(a, pid);
    if a.detach {
        let pid = restored.detach();
        if !a.report.json {
            println!("{pid}");
        }
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

/// Writes the PID atomically: into a new file under a random name in the
/// pidfile's directory (O_CREAT|O_EXCL, mode 0600: nothing planted there is
/// followed or reused), synced, then renamed over `path` (which replaces a
/// symlink at `path` itself, never its target).
pub(crate) fn write_pidfile(path: &std::path::Path, pid: i32) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp = ckpt_core::private_temp_in(dir, &name)?;
    writeln!(tmp.as_file_mut(), "{pid}")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `--stats` (phase times on standard error) and `--json` (the summary as
/// one object on standard output, docs/json.md).
fn report(a: &RestoreArgs, pid: i32) {
    if a.report.stats {
        eprint!("{}", crate::logging::phases_text());
    }
    if a.report.json {
        let v = serde_json::json!({
            "schema_version": 1,
            "command": "restore",
            "image": crate::image_io::display_name(&a.image),
            "pid": pid,
            "detached": a.detach,
            "phases_us": crate::logging::phases_json(),
        });
        println!("{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::write_pidfile;

    #[test]
    fn planted_symlinks_do_not_redirect_the_pidfile() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let pf = dir.path().join("run.pid");
        // The old fixed temporary name, and the pidfile itself, as symlinks.
        std::os::unix::fs::symlink(&victim, dir.path().join("run.ckpt-tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, &pf).unwrap();
        write_pidfile(&pf, 4242).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(&pf)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&pf).unwrap(), "4242\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pf).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "pidfile mode {mode:o}");
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name().to_string_lossy().ends_with(".ckpt-tmp")
                    && e.file_name() != "run.ckpt-tmp"
            })
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
