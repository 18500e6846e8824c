//! Opening an image for the commands that read one: a path or `-` for
//! standard input (spooled to an unlinked temporary file), verified before
//! anything in it is used; format errors become exit codes per DESIGN 2/3.1.

use crate::failure::Failure;
use image_format::{FormatError, FormatErrorKind, VerifiedImage};
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

/// Opens and fully verifies the image at `path` (`-` = standard input).
pub fn open_verified(path: &Path) -> Result<VerifiedImage, Failure> {
    open(path, false)
}

/// For `restore`: like [`open_verified`], except that the pages of an
/// image file are not hashed here: the engine hashes them as the restored
/// task holds them, before it runs (DESIGN 3.9), so restore costs one hash
/// pass and a change to the file after this check is still caught.
pub fn open_for_restore(path: &Path) -> Result<VerifiedImage, Failure> {
    open(path, true)
}

fn open(path: &Path, defer_pages: bool) -> Result<VerifiedImage, Failure> {
    let result = if path.as_os_str() == "-" {
        if std::io::stdin().is_terminal() {
            return Err(Failure::usage(anyhow::anyhow!(
                "refusing to read an image from a terminal; pipe one in (`ckpt dump PID -o - | ckpt restore -`) or give the image's path"
            )));
        }
        VerifiedImage::from_stream(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path).map_err(|e| {
            Failure::operational(anyhow::Error::new(e).context(format!(
                "cannot open image {}; check the path and your read permission",
                path.display()
            )))
        })?;
        if defer_pages {
            VerifiedImage::open_deferring(file, image_format::SectionKind::PAGES)
        } else {
            VerifiedImage::open(file)
        }
    };
    result.map_err(|e| format_failure(path, e))
}
