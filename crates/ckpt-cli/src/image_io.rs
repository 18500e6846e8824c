//! Opening an image for the commands that read one: a path or `-` for
//! standard input (spooled to an unlinked temporary file), verified before
//! anything in it is used; format errors become exit codes per DESIGN 2/3.1.

use crate::failure::Failure;
use image_format::{FormatError, FormatErrorKind, SignaturePolicy, VerifiedImage};
use std::io::IsTerminal;
use std::path::Path;

/// The exit class of a format error: a bad or refused signature is a
/// security refusal (3); everything else (corrupt, truncated, unknown
/// version, I/O) is operational (1).
pub fn format_failure(path: &Path, e: FormatError) -> Failure {
    let name = display_name(path);
    let err = anyhow::Error::new(e).context(format!("image {name} refused"));
    match err.downcast_ref::<FormatError>().map(FormatError::kind) {
        Some(FormatErrorKind::Signature) => Failure::refused(err),
        _ => Failure::operational(err),
    }
}

pub fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<standard input>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Opens and fully verifies the image at `path` (`-` = standard input),
/// accepting any valid signature or none (inspect, policy-diff).
pub fn open_verified(path: &Path) -> Result<VerifiedImage, Failure> {
    open(path, &SignaturePolicy::any(), false)
}

/// For `restore`: refuses the image under `policy` before any section is
/// hashed or any record decoded (DESIGN 3.1), and does not hash the pages
/// of an image file here: the engine hashes them as the restored task holds
/// them, before it runs (DESIGN 3.9), so restore costs one hash pass and a
/// change to the file after this check is still caught.
pub fn open_for_restore(path: &Path, policy: &SignaturePolicy) -> Result<VerifiedImage, Failure> {
    open(path, policy, true)
}

fn open(
    path: &Path,
    policy: &SignaturePolicy,
    defer_pages: bool,
) -> Result<VerifiedImage, Failure> {
    let result = if path.as_os_str() == "-" {
        if std::io::stdin().is_terminal() {
            return Err(Failure::usage(anyhow::anyhow!(
                "refusing to read an image from a terminal; pipe one in (`ckpt dump PID -o - | ckpt restore -`) or give the image's path"
            )));
        }
        VerifiedImage::from_stream_with_policy(std::io::stdin().lock(), policy)
    } else {
        let file = std::fs::File::open(path).map_err(|e| {
            Failure::operational(anyhow::Error::new(e).context(format!(
                "cannot open image {}; check the path and your read permission",
                path.display()
            )))
        })?;
        if defer_pages {
            VerifiedImage::open_with_policy_deferring(
                file,
                policy,
                image_format::SectionKind::PAGES,
            )
        } else {
            VerifiedImage::open_with_policy(file, policy)
        }
    };
    result.map_err(|e| format_failure(path, e))
}
