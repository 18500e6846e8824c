//! Which stdin, stdout and stderr a restored task gets, and whether it
//! stays in the caller's session (DESIGN 3.7, last sentences).
//!
//! Fds 0-2 recorded as inherited stdio (a terminal, or a pipe to another
//! process) are filled at restore. The caller's own fds, and with them its
//! terminal and session, go to the task only when the task's restored
//! identity is exactly the caller's own ([`identity_is_callers`]): a task
//! of anyone else (an image author whose image root restores) would
//! otherwise read the caller's input, and on the caller's terminal push
//! keystrokes into the caller's shell with TIOCSTI. Such a task gets
//! /dev/null, or the files given with `--stdin/--stdout/--stderr`, and a
//! session of its own (setsid injected into it), so it has no controlling
//! terminal. The files are opened here, by ckpt, with the caller's
//! authority and never through a symlink; the task inherits them from ckpt
//! (it is forked from ckpt) and they are duplicated onto fds 0-2 inside it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use lsm_labels::task::TaskCreds;

use crate::error::RestoreError;

/// Files to give the restored task as its stdin, stdout and stderr
/// (`restore --stdin/--stdout/--stderr`), instead of the caller's own or
/// /dev/null.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StdioRedirect {
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
}

impl StdioRedirect {
    fn get(&self, fd: usize) -> Option<&Path> {
        [&self.stdin, &self.stdout, &self.stderr][fd].as_deref()
    }
}

/// Whether the task's restored credentials (`plan`, after the verdict) are
/// the caller's own: the same uids, gids, supplementary groups (as a set)
/// and capability sets. The bounding set compared is the one the task ends
/// with (the plan's, limited by the caller's). Securebits are not compared
/// (the restorer's are not read); a difference there never adds privilege.
pub fn identity_is_callers(plan: &TaskCreds, caller: &TaskCreds) -> bool {
    let set = |g: &[u32]| {
        let mut g = g.to_vec();
        g.sort_unstable();
        g.dedup();
        g
    };
    let (p, c) = (&plan.caps, &caller.caps);
    plan.uids == caller.uids
        && plan.gids == caller.gids
        && set(&plan.groups) == set(&caller.groups)
        && p.inheritable == c.inheritable
        && p.permitted == c.permitted
        && p.effective == c.effective
        && p.ambient == c.ambient
        && p.bounding & c.bounding == c.bounding
}

/// What one stdio fd of the restored task is filled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdioChoice {
    /// The caller's own fd of that number (inherited from ckpt).
    Callers,
    /// The file given with `--stdin/--stdout/--stderr`.
    Given,
    /// /dev/null.
    DevNull,
}

/// The rule: a given file always wins; else the caller's own fd when the
/// identity is the caller's; else /dev/null.
pub fn choose(given: bool, identity_is_callers: bool) -> StdioChoice {
    if given {
        StdioChoice::Given
    } else if identity_is_callers {
        StdioChoice::Callers
    } else {
        StdioChoice::DevNull
    }
}

/// The stdio decision for one restore, with the files already open.
#[derive(Debug)]
pub struct StdioHandover {
    identity_is_callers: bool,
    given: [Option<File>; 3],
    null: Option<File>,
}

fn open_err(stream: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError {
    let path = path.to_path_buf();
    move |source| RestoreError::StdioFile {
        stream,
        path,
        source,
    }
}

/// A copy of `f` on an fd above 2 (so that it cannot be one of the fds it
/// is duplicated onto in the task).
fn above_stdio(f: File) -> std::io::Result<File> {
    if f.as_raw_fd() > 2 {
        Ok(f)
    } else {
        // try_clone is F_DUPFD_CLOEXEC with a minimum of 3.
        f.try_clone()
    }
}

impl StdioHandover {
    /// Opens the given files with the caller's authority: stdin read-only,
    /// stdout and stderr write-only appending (created mode 0600 when
    /// missing); never through a symlink in the last component, never as a
    /// controlling terminal.
    pub fn new(
        redirect: &StdioRedirect,
        identity_is_callers: bool,
    ) -> Result<StdioHandover, RestoreError> {
        const STREAMS: [&str; 3] = ["--stdin", "--stdout", "--stderr"];
        let mut given: [Option<File>; 3] = [None, None, None];
        for (fd, slot) in given.iter_mut().enumerate() {
            let Some(path) = redirect.get(fd) else {
                continue;
            };
            let mut o = std::fs::OpenOptions::new();
            o.custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY);
            if fd == 0 {
                o.read(true);
            } else {
                o.write(true).append(true).create(true).mode(0o600);
            }
            let f = o
                .open(path)
                .and_then(above_stdio)
                .map_err(open_err(STREAMS[fd], path))?;
            *slot = Some(f);
        }
        let needs_null = (0..3)
            .any(|fd| choose(given[fd].is_some(), identity_is_callers) == StdioChoice::DevNull);
        let null = if needs_null {
            let path = Path::new("/dev/null");
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(path)
                .and_then(above_stdio)
                .map_err(open_err("/dev/null", path))?;
            Some(f)
        } else {
            None
        };
        Ok(StdioHandover {
            identity_is_callers,
            given,
            null,
        })
    }

    pub fn identity_is_callers(&self) -> bool {
        self.identity_is_callers
    }

    /// Whether the task must get a session of its own, given the stdio fds
    /// (`inherited`, 0-2) that were on a terminal or a foreign pipe: when
    /// its identity is not the caller's, or when every one of them is
    /// filled with a given file, so that none gets the caller's own fd.
    /// Then it has no controlling terminal (/dev/tty is ENXIO): the caller's
    /// terminal is reachable only through the fds it was handed.
    pub fn own_session(&self, inherited: &[usize]) -> bool {
        !self.identity_is_callers
            || (!inherited.is_empty()
                && inherited
                    .iter()
                    .all(|&fd| fd > 2 || self.choice(fd) != StdioChoice::Callers))
    }

    pub fn choice(&self, fd: usize) -> StdioChoice {
        choose(self.given[fd].is_some(), self.identity_is_callers)
    }

    /// The fd number (ours, and so the task's: it is forked from us) to
    /// duplicate onto task fd `fd`, or None to leave the caller's own.
    pub fn source_fd(&self, fd: usize) -> Option<i32> {
        match self.choice(fd) {
            StdioChoice::Callers => None,
            StdioChoice::Given => self.given[fd].as_ref().map(AsRawFd::as_raw_fd),
            StdioChoice::DevNull => self.null.as_ref().map(AsRawFd::as_raw_fd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsm_labels::task::CapSets;

    fn user(uid: u32) -> TaskCreds {
        TaskCreds {
            uids: [uid; 4],
            gids: [uid; 4],
            groups: vec![uid, 27],
            caps: CapSets {
                bounding: 0x1ff_ffff_ffff,
                ..Default::default()
            },
            securebits: 0,
        }
    }

    fn root() -> TaskCreds {
        let mut c = user(0);
        c.caps.permitted = 0x1ff_ffff_ffff;
        c.caps.effective = 0x1ff_ffff_ffff;
        c
    }

    #[test]
    fn the_callers_own_identity_keeps_stdio() {
        assert!(identity_is_callers(&user(1000), &user(1000)));
        assert!(identity_is_callers(&root(), &root()));
        let mut reordered = user(1000);
        reordered.groups = vec![27, 1000, 27];
        assert!(identity_is_callers(&reordered, &user(1000)));
    }

    #[test]
    fn another_user_does_not() {
        assert!(!identity_is_callers(&user(1000), &root()));
        assert!(!identity_is_callers(&user(1001), &user(1000)));
        let mut saved = user(1000);
        saved.uids[2] = 0;
        assert!(!identity_is_callers(&saved, &user(1000)));
        let mut gid = user(1000);
        gid.gids[3] = 0;
        assert!(!identity_is_callers(&gid, &user(1000)));
        let mut groups = user(1000);
        groups.groups.push(0);
        assert!(!identity_is_callers(&groups, &user(1000)));
    }

    #[test]
    fn other_capabilities_do_not() {
        // uid 0 with fewer capabilities than the root caller, or with a
        // narrower bounding set, is not the caller's identity either.
        let mut fewer = root();
        fewer.caps.effective = 0;
        assert!(!identity_is_callers(&fewer, &root()));
        let mut bounded = root();
        bounded.caps.bounding = 1;
        assert!(!identity_is_callers(&bounded, &root()));
        let mut ambient = user(1000);
        ambient.caps.ambient = 1 << 10;
        assert!(!identity_is_callers(&ambient, &user(1000)));
        // A plan bounding set wider than the caller's ends as the caller's.
        let mut caller = user(1000);
        caller.caps.bounding = 0xff;
        assert!(identity_is_callers(&user(1000), &caller));
    }

    #[test]
    fn given_files_win_then_identity_decides() {
        assert_eq!(choose(true, false), StdioChoice::Given);
        assert_eq!(choose(true, true), StdioChoice::Given);
        assert_eq!(choose(false, true), StdioChoice::Callers);
        assert_eq!(choose(false, false), StdioChoice::DevNull);
    }

    #[test]
    fn a_symlink_is_not_followed_and_created_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let r = StdioRedirect {
            stdout: Some(link),
            ..Default::default()
        };
        let e = StdioHandover::new(&r, false).unwrap_err();
        assert!(e.to_string().contains("--stdout"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");

        let out = dir.path().join("out");
        let r = StdioRedirect {
            stderr: Some(out.clone()),
            ..Default::default()
        };
        let h = StdioHandover::new(&r, false).unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(h.source_fd(2).unwrap() > 2);
        assert!(h.source_fd(0).unwrap() > 2, "stdin gets /dev/null");
        assert!(h.own_session(&[0, 1, 2]));
    }

    #[test]
    fn own_session_when_no_inherited_fd_gets_the_callers() {
        let all = StdioRedirect {
            stdin: Some("/dev/null".into()),
            stdout: Some("/dev/null".into()),
            stderr: Some("/dev/null".into()),
        };
        let h = StdioHandover::new(&all, true).unwrap();
        assert!(h.own_session(&[0, 1, 2]), "every inherited fd is given");
        assert!(
            !h.own_session(&[]),
            "nothing inherited: the caller's session"
        );
        let some = StdioRedirect {
            stdout: Some("/dev/null".into()),
            ..Default::default()
        };
        let h = StdioHandover::new(&some, true).unwrap();
        assert!(!h.own_session(&[0, 1]), "stdin is the caller's own");
        assert!(h.own_session(&[1]));
        let h = StdioHandover::new(&StdioRedirect::default(), false).unwrap();
        assert!(h.own_session(&[]), "another identity: always");
    }
}
