//! `character device`: reopened by path, its device number checked.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::{path_open, Assign, FdKind, FdProbe};
use crate::error::RestoreError;
use crate::model::{FdTarget, OpenFd};
use crate::restore::Rebuilder;

pub struct CharDevice;

impl FdKind for CharDevice {
    fn owns(&self, t: &FdTarget) -> bool {
        matches!(t, FdTarget::CharDevice { .. })
    }

    fn classify(&self, p: &FdProbe) -> Option<FdTarget> {
        let md = p.md.filter(|m| m.file_type().is_char_device())?;
        Some(FdTarget::CharDevice {
            path: p.link.to_string(),
            rdev: md.rdev(),
        })
    }

    fn open(
        &self,
        r: &mut Rebuilder,
        scratch: u64,
        o: &OpenFd,
        assign: &mut Assign,
    ) -> Result<(), RestoreError> {
        let FdTarget::CharDevice { path, rdev } = &o.target else {
            return Ok(());
        };
        let tmp = path_open::open(r, scratch, o, path, "device")?;
        if let Some(md) = r.fd_identity(tmp).filter(|m| m.rdev() != *rdev) {
            return Err(RestoreError::FileChanged {
                pid: r.pid,
                path: path.clone(),
                what: format!("device {rdev:#x} is now device {:#x}", md.rdev()),
            });
        }
        assign.push((o.fd, tmp as i32));
        Ok(())
    }
}
