//! `ckpt restore IMG`: restart a process from an image.
//!
//! Order (DESIGN 3): verify the whole image (integrity and signature
//! first), reach the verdict with the same function `policy-diff` uses,
//! and only then ask the engine to create anything. Foreground restore
//! waits and exits with the process's status (128+N for signal N).

use crate::image_io::open_verified;
use crate::output::show_progress;
use crate::verdict_input::{
    decide_for_restore, engine_failure, print_verdict_messages, refusal_failure,
};
use crate::{Failure, RestoreArgs};
use ckpt_core::RestoreOptions;

pub fn run(a: &RestoreArgs) -> Result<u8, Failure> {
    let img = open_verified(&a.image)?;
    let decision = decide_for_restore(&img, a)?;
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
    };
    let restored = ckpt_core::restore(approved, &opts).map_err(engine_failure)?;
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

/// Writes the PID atomically (temporary name + rename) so a reader never
/// sees a partial number.
fn write_pidfile(path: &std::path::Path, pid: i32) -> std::io::Result<()> {
    let tmp = path.with_extension("ckpt-tmp");
    std::fs::write(&tmp, format!("{pid}\n"))?;
    std::fs::rename(&tmp, path)
}
