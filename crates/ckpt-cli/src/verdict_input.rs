//! The command line's side of the restore verdict (DESIGN 3): flags in,
//! messages out. The verdict itself is the engine's
//! (`ckpt_core::plan_restore`), so `restore`, `policy-diff` and `demo`
//! reach it the same way and cannot disagree.

use crate::failure::Failure;
use crate::{RestoreArgs, VerdictFlags};
use ckpt_core::{ImageSource, RestoreDecision, RestoreError, VerdictHost};
use image_format::{keys, VerifiedImage};
use lsm_labels::verdict::{RestoreFlags, RestoreVerdict, SignerKey};
use std::path::{Path, PathBuf};

pub fn read_trusted_keys(paths: &[PathBuf]) -> Result<Vec<SignerKey>, Failure> {
    paths
        .iter()
        .map(|p| {
            keys::read_public_key(p)
                .map(|k| SignerKey(k.to_bytes()))
                .map_err(|e| {
                    Failure::usage(
                        anyhow::Error::new(e).context(format!("--trusted-key {}", p.display())),
                    )
                })
        })
        .collect()
}

pub fn flags_from(v: &VerdictFlags) -> RestoreFlags {
    RestoreFlags {
        keep_lsm: v.keep_lsm,
        require_same_policy: v.require_same_policy,
        lsm_as_caller: v.lsm_as_caller,
        lsm_labels: v.lsm_labels.clone(),
        ..RestoreFlags::default()
    }
}

/// Where an image named on the command line comes from.
pub fn source_of(path: &Path) -> ImageSource {
    if path.as_os_str() == "-" {
        ImageSource::Stream
    } else {
        ImageSource::File
    }
}

/// The engine's verdict (DESIGN 3) for `img` against `host`.
pub fn decide<'a>(
    img: &'a VerifiedImage,
    path: &Path,
    host: VerdictHost,
    flags: &RestoreFlags,
) -> Result<RestoreDecision<'a>, Failure> {
    ckpt_core::plan_restore(img, source_of(path), host, flags).map_err(engine_failure)
}

/// An engine error as an exit code: 3 for a security refusal, else 1.
pub fn engine_failure(e: RestoreError) -> Failure {
    if e.is_security_refusal() {
        Failure::refused(e)
    } else {
        Failure::operational(e)
    }
}

/// The verdict for `ckpt restore` on this host.
pub fn decide_for_restore<'a>(
    img: &'a VerifiedImage,
    a: &RestoreArgs,
) -> Result<RestoreDecision<'a>, Failure> {
    let flags = RestoreFlags {
        strict_creds: a.strict_creds,
        files_as_caller: a.files_as_caller,
        pid_ns: a.pid_ns,
        require_signature: a.require_signature,
        trusted_keys: read_trusted_keys(&a.trusted_keys)?,
        trust_unsigned_stream: a.trust_unsigned_stream,
        ..flags_from(&a.verdict)
    };
    decide(img, &a.image, VerdictHost::Live, &flags)
}

/// Prints warnings and notices (stderr) unless quiet; refusals are printed
/// by the caller as the error.
pub fn print_verdict_messages(v: &RestoreVerdict, quiet: bool) {
    if quiet {
        return;
    }
    for w in &v.warnings {
        eprintln!("ckpt: {w}");
    }
    for n in &v.notices {
        eprintln!("ckpt: {n}");
    }
}

pub trait RefusalSummary {
    fn refusal_summary(&self) -> String;
}

impl RefusalSummary for RestoreVerdict {
    fn refusal_summary(&self) -> String {
        self.refusals
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A refused verdict as a failure: exit 3 for a security rule, 1 for a
/// corrupt image or one that cannot run here (DESIGN 2).
pub fn refusal_failure(v: &RestoreVerdict, what: String) -> Failure {
    let err = anyhow::anyhow!("{what}: {}", v.refusal_summary());
    if v.exit_code() == 3 {
        Failure::refused(err)
    } else {
        Failure::operational(err)
    }
}
