//! `regular file`: reopened by path, its (dev, ino) and stamp checked
//! (DESIGN 3.7), flags and offset put back.

use std::os::unix::fs::MetadataExt;

use super::{path_open, Assign, FdKind, FdProbe};
use crate::error::RestoreError;
use crate::model::{FdTarget, FileId, OpenFd};
use crate::restore::Rebuilder;

pub struct RegularFile;

impl FdKind for RegularFile {
    fn owns(&self, t: &FdTarget) -> bool {
        matches!(t, FdTarget::RegularFile(_))
    }

    fn classify(&self, p: &FdProbe) -> Option<FdTarget> {
        let md = p.md.filter(|m| m.file_type().is_file())?;
        Some(FdTarget::RegularFile(FileId {
            path: p.link.to_string(),
            dev: md.dev(),
            ino: md.ino(),
            stamp: Some(crate::file_identity::stamp_of(md)),
        }))
    }

    fn open(
        &self,
        r: &mut Rebuilder,
        scratch: u64,
        o: &OpenFd,
        assign: &mut Assign,
    ) -> Result<(), RestoreError> {
        let FdTarget::RegularFile(f) = &o.target else {
            return Ok(());
        };
        let tmp = path_open::open(r, scratch, o, &f.path, "file")?;
        let link = format!("/proc/{}/fd/{tmp}", r.pid);
        r.check_opened(&link, &f.path, (f.dev, f.ino), f.stamp.as_ref(), false)?;
        if o.pos != 0 {
            r.call(
                "lseek",
                libc::SYS_lseek,
                &[tmp, o.pos, libc::SEEK_SET as u64],
            )?;
        }
        assign.push((o.fd, tmp as i32));
        Ok(())
    }
}
