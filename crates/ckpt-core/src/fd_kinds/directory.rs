//! `directory`: reopened by path, its (dev, ino) checked.

use std::os::unix::fs::MetadataExt;

use super::{path_open, Assign, FdKind, FdProbe};
use crate::error::RestoreError;
use crate::model::{FdTarget, FileId, OpenFd};
use crate::restore::Rebuilder;

pub struct Directory;

impl FdKind for Directory {
    fn owns(&self, t: &FdTarget) -> bool {
        matches!(t, FdTarget::Directory(_))
    }

    fn classify(&self, p: &FdProbe) -> Option<FdTarget> {
        let md = p.md.filter(|m| m.file_type().is_dir())?;
        Some(FdTarget::Directory(FileId {
            path: p.link.to_string(),
            dev: md.dev(),
            ino: md.ino(),
            stamp: None,
        }))
    }

    fn open(
        &self,
        r: &mut Rebuilder,
        scratch: u64,
        o: &OpenFd,
        assign: &mut Assign,
    ) -> Result<(), RestoreError> {
        let FdTarget::Directory(f) = &o.target else {
            return Ok(());
        };
        let tmp = path_open::open(r, scratch, o, &f.path, "directory")?;
        if let Some(md) = r
            .fd_identity(tmp)
            .filter(|m| (m.dev(), m.ino()) != (f.dev, f.ino))
        {
            return Err(RestoreError::FileChanged {
                pid: r.pid,
                path: f.path.clone(),
                what: format!(
                    "it was dev {:#x} inode {}, is dev {:#x} inode {}",
                    f.dev,
                    f.ino,
                    md.dev(),
                    md.ino()
                ),
            });
        }
        assign.push((o.fd, tmp as i32));
        Ok(())
    }
}
