//! One handler per fd kind (STYLE 11): each kind is one type implementing
//! [`FdKind`], which classifies an fd at dump (from its /proc fd link,
//! fdinfo and fstat), captures the kind's extra state, says when it is
//! restored, and restores it by calls injected into the task. `dump`'s
//! `collect_fds` and `restore`'s `restore_fds` only dispatch over
//! [`KINDS`]; adding a kind adds a file here.

mod char_device;
mod directory;
mod inherited_stdio;
mod path_open;
mod pipe;
mod refused;
mod regular_file;

use std::fs::Metadata;

use crate::error::{DumpError, RestoreError};
use crate::model::{FdTarget, OpenFd, PipeState};
use crate::restore::Rebuilder;
pub use inherited_stdio::is_tty_rdev;

/// What the dump knows of one fd when it classifies it.
pub struct FdProbe<'a> {
    pub pid: i32,
    pub fd: i32,
    /// The /proc/PID/fd/N link text.
    pub link: &'a str,
    /// fstat of the fd (through /proc/PID/fd/N); `None` for links that
    /// are not paths (pipes, anon inodes).
    pub md: Option<&'a Metadata>,
}

/// State captured for the whole fd table beyond each fd's own record.
#[derive(Default)]
pub struct Captured {
    pub pipes: Vec<PipeState>,
}

/// The temporary fd numbers opened in the task so far: (target fd, temporary).
pub type Assign = Vec<(i32, i32)>;

/// One kind of fd.
pub trait FdKind: Sync {
    /// Whether `t` is of this kind (restore dispatch).
    fn owns(&self, t: &FdTarget) -> bool;
    /// The target of an fd of this kind, or `None` when the fd is not one.
    fn classify(&self, p: &FdProbe) -> Option<FdTarget>;
    /// After every fd is classified: state the kind keeps outside the
    /// fds (pipe buffers), and refusals that need the whole table.
    fn capture(&self, _pid: i32, _fds: &mut [OpenFd], _c: &mut Captured) -> Result<(), DumpError> {
        Ok(())
    }
    /// Restore order: lower first (an fd that refers to others comes after them).
    fn restore_order(&self) -> u8 {
        1
    }
    /// Open `o`'s object in the task at temporary numbers, noted in `assign`.
    fn open(
        &self,
        r: &mut Rebuilder,
        scratch: u64,
        o: &OpenFd,
        assign: &mut Assign,
    ) -> Result<(), RestoreError>;
    /// After every fd is on its number: the kind's status flags and the like.
    fn after_placement(&self, _r: &mut Rebuilder, _o: &OpenFd) -> Result<(), RestoreError> {
        Ok(())
    }
}

/// Every kind, in classification order (the first that claims an fd wins).
pub static KINDS: &[&dyn FdKind] = &[
    &pipe::Pipe,
    &inherited_stdio::InheritedStdio,
    &regular_file::RegularFile,
    &directory::Directory,
    &char_device::CharDevice,
];

/// The handler of a recorded target.
pub fn kind_of(t: &FdTarget) -> &'static dyn FdKind {
    *KINDS
        .iter()
        .find(|k| k.owns(t))
        .expect("every FdTarget variant has a kind in KINDS")
}

/// Classifies one fd at dump, or refuses it by name.
pub fn classify(p: &FdProbe) -> Result<FdTarget, DumpError> {
    refused::check(p)?;
    KINDS
        .iter()
        .find_map(|k| k.classify(p))
        .ok_or_else(|| refused::unclaimed(p))
}

/// The kinds' whole-table capture step, after every fd is classified.
pub fn capture(pid: i32, fds: &mut [OpenFd]) -> Result<Captured, DumpError> {
    let mut c = Captured::default();
    for k in KINDS {
        k.capture(pid, fds, &mut c)?;
    }
    Ok(c)
}

/// The path an fd was opened by, for finding fds that share an open file
/// description (only path-opened kinds can).
pub fn path_of(t: &FdTarget) -> Option<&str> {
    match t {
        FdTarget::RegularFile(f) | FdTarget::Directory(f) => Some(&f.path),
        FdTarget::CharDevice { path, .. } => Some(path),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FileId;

    #[test]
    fn every_target_has_exactly_one_kind() {
        let f = FileId::default();
        let all = [
            FdTarget::RegularFile(f.clone()),
            FdTarget::Directory(f),
            FdTarget::CharDevice {
                path: String::new(),
                rdev: 0,
            },
            FdTarget::Pipe { ino: 0 },
            FdTarget::InheritedStdio,
        ];
        for t in &all {
            assert_eq!(KINDS.iter().filter(|k| k.owns(t)).count(), 1, "{t:?}");
        }
    }
}
