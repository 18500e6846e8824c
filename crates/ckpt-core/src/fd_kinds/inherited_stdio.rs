//! `inherited stdio`: fd 0-2 on a terminal (here) or on a pipe to another
//! process (`pipe`'s capture step): the restorer's own fd takes its place
//! (DESIGN 3.7, `stdio_handover`), so nothing is opened for it here.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::{Assign, FdKind, FdProbe};
use crate::error::RestoreError;
use crate::model::{FdTarget, OpenFd};
use crate::restore::Rebuilder;

pub struct InheritedStdio;

/// Whether device number `rdev` is a terminal: a virtual console, a
/// serial line, /dev/tty, /dev/ptmx or a pty slave.
pub fn is_tty_rdev(rdev: u64) -> bool {
    let major = (rdev >> 8) & 0xfff;
    matches!(major, 4 | 5 | 136..=143)
}

impl FdKind for InheritedStdio {
    fn owns(&self, t: &FdTarget) -> bool {
        matches!(t, FdTarget::InheritedStdio)
    }

    fn classify(&self, p: &FdProbe) -> Option<FdTarget> {
        let md = p.md?;
        (p.fd <= 2 && md.file_type().is_char_device() && is_tty_rdev(md.rdev()))
            .then_some(FdTarget::InheritedStdio)
    }

    fn open(
        &self,
        _r: &mut Rebuilder,
        _scratch: u64,
        _o: &OpenFd,
        _assign: &mut Assign,
    ) -> Result<(), RestoreError> {
        Ok(())
    }
}
