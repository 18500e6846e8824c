//! The host view: where LSM state is read from, and [`detect_host_profile`]
//! which reads a whole host profile through it. Its root is `/` (the live
//! host) or a directory holding a copy of another host's files
//! (`ckpt lsm --sysroot DIR`). Every read is bounded; on a sysroot the LSM
//! syscalls and bpf() are never made.
//!
//! Paths are given as absolute kernel paths (`/sys/fs/selinux/enforce`) and
//! resolved under the root. A sysroot is untrusted input: sizes and entry
//! counts are capped before allocation, and files that are too large are
//! reported, never truncated silently.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest binary policy we read (a Fedora SELinux policy is ~4 MiB).
pub const MAX_POLICY_BYTES: u64 = 64 << 20;
/// Largest text policy file we read (TOMOYO, AppArmor raw data, IMA...).
pub const MAX_POLICY_TEXT_BYTES: u64 = 16 << 20;
/// Largest small text file (sysctls, flags, labels, status).
pub const MAX_TEXT_BYTES: u64 = 1 << 20;
/// Most entries we accept in one directory (profiles, booleans, fds, threads).
pub const MAX_DIR_ENTRIES: usize = 65_536;

/// A failed read of one host file or directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostReadError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is larger than {limit} bytes, the most ckpt reads from it; it is not a file the kernel writes, or the limit must be raised")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("cannot list directory {path}: {source}")]
    ListDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("directory {path} has more than {limit} entries, the most ckpt reads")]
    TooManyEntries { path: PathBuf, limit: usize },
    #[error("{path} is not UTF-8 text")]
    NotText { path: PathBuf },
}

impl HostReadError {
    /// The errno behind the failure, if it came from the kernel.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Open { source, .. }
            | Self::Read { source, .. }
            | Self::ListDir { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
    /// The file or directory does not exist (ENOENT).
    pub fn is_not_found(&self) -> bool {
        self.raw_os_error() == Some(libc::ENOENT)
    }
}

/// One directory entry: its name and whether it is a directory (symlinks
/// are followed, as securityfs uses them for AppArmor's `raw_*` links).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntryInfo {
    pub name: String,
    pub is_dir: bool,
}

/// Where LSM state is read from: the live host or a sysroot directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostView {
    root: PathBuf,
    live: bool,
}

impl HostView {
    /// The live host: files under `/`, with the LSM syscalls and bpf().
    pub fn live() -> Self {
        HostView {
            root: PathBuf::from("/"),
            live: true,
        }
    }

    /// A copy of a host's files under `dir` (`--sysroot DIR`): securityfs
    /// at `DIR/sys/kernel/security`, selinuxfs at `DIR/sys/fs/selinux`,
    /// `DIR/proc/...`; no syscalls are made about the running kernel.
    pub fn sysroot(dir: impl Into<PathBuf>) -> Self {
        HostView {
            root: dir.into(),
            live: false,
        }
    }

    /// The root directory (`/` when live).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True for the live host (syscalls allowed), false for a sysroot.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The real path of the kernel path `abs` under this view's root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// Whether `abs` exists under the root.
    pub fn exists(&self, abs: &str) -> bool {
        self.path(abs).exists()
    }

    /// Reads the whole of `abs`, failing with [`HostReadError::TooLarge`]
    /// when it holds more than `limit` bytes.
    pub fn read(&self, abs: &str, limit: u64) -> Result<Vec<u8>, HostReadError> {
        read_bounded(&self.path(abs), limit)
    }

    /// Reads `abs` as UTF-8 text of at most `limit` bytes.
    pub fn read_text(&self, abs: &str, limit: u64) -> Result<String, HostReadError> {
        let path = self.path(abs);
        let bytes = read_bounded(&path, limit)?;
        String::from_utf8(bytes).map_err(|_| HostReadError::NotText { path })
    }

    /// Opens `abs` with `O_NONBLOCK` and makes exactly one `read()` of at
    /// most `max` bytes. For poll-notifier files such as AppArmor's
    /// `revision`, where a second read blocks until the policy changes.
    pub fn read_once_nonblocking(&self, abs: &str, max: usize) -> Result<Vec<u8>, HostReadError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path(abs);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .map_err(|source| HostReadError::Open {
                path: path.clone(),
                source,
            })?;
        let mut buf = vec![0u8; max];
        let n = f
            .read(&mut buf)
            .map_err(|source| HostReadError::Read { path, source })?;
        buf.truncate(n);
        Ok(buf)
    }

    /// The entries of directory `abs`, sorted by name, at most `limit`.
    pub fn list_dir(&self, abs: &str, limit: usize) -> Result<Vec<DirEntryInfo>, HostReadError> {
        list_dir_bounded(&self.path(abs), limit)
    }

    /// The target of symlink `abs` (e.g. `/proc/PID/fd/N`).
    pub fn read_link(&self, abs: &str) -> Result<PathBuf, HostReadError> {
        let path = self.path(abs);
        std::fs::read_link(&path).map_err(|source| HostReadError::Open { path, source })
    }
}

/// Reads at most `limit` bytes of `path`; more is an error.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, HostReadError> {
    let f = File::open(path).map_err(|source| HostReadError::Open {
        path: path.to_owned(),
        source,
    })?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|source| HostReadError::Read {
            path: path.to_owned(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(HostReadError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(buf)
}

pub(crate) fn list_dir_bounded(
    path: &Path,
    limit: usize,
) -> Result<Vec<DirEntryInfo>, HostReadError> {
    let rd = std::fs::read_dir(path).map_err(|source| HostReadError::ListDir {
        path: path.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| HostReadError::ListDir {
            path: path.to_owned(),
            source,
        })?;
        if out.len() >= limit {
            return Err(HostReadError::TooManyEntries {
                path: path.to_owned(),
                limit,
            });
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // Follow symlinks; an entry that vanished or dangles is a file.
        let is_dir = std::fs::metadata(entry.path())
            .map(|m| m.is_dir())
            .unwrap_or(false);
        out.push(DirEntryInfo { name, is_dir });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A failed host profile detection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    #[error(transparent)]
    Stack(#[from] crate::stack::StackError),
}

/// Detects the host's LSM profile: the active stack in kernel order with a
/// fingerprint for every LSM, the kernel release and architecture.
///
/// On the live host, release and arch come from uname(2); on a sysroot,
/// from `DIR/proc/sys/kernel/{osrelease,arch}` (empty when missing).
pub fn detect_host_profile(view: &HostView) -> Result<crate::profile::HostProfile, DetectError> {
    let stack = crate::stack::detect_stack(view)?;
    let lsms = stack
        .members
        .iter()
        .map(|m| crate::profile::LsmEntry {
            name: m.name.clone(),
            id: m.id,
            fingerprint: crate::fingerprint::fingerprint_lsm(view, &m.name),
        })
        .collect();
    let (kernel_release, arch) = if view.is_live() {
        let u = nix::sys::utsname::uname().ok();
        (
            u.as_ref()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            u.as_ref()
                .map(|u| u.machine().to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    } else {
        let r = |p: &str| {
            view.read_text(p, 4096)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        (r("/proc/sys/kernel/osrelease"), r("/proc/sys/kernel/arch"))
    };
    Ok(crate::profile::HostProfile {
        lsms,
        kernel_release,
        arch,
        stack_source: stack.source,
    })
}

/// The text `ckpt lsm` prints for a profile: kernel, stack source, then
/// one line per LSM in kernel order with its digest (or `unknown`), version
/// and component count, and the note when there is one.
pub fn describe_profile(p: &crate::profile::HostProfile) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let source = match p.stack_source {
        crate::profile::StackSource::Syscall => "lsm_list_modules",
        crate::profile::StackSource::Securityfs => "/sys/kernel/security/lsm",
        crate::profile::StackSource::Recorded => "recorded profile",
    };
    let _ = writeln!(out, "kernel {} ({})", p.kernel_release, p.arch);
    let _ = writeln!(out, "stack  {} (from {source})", p.stack().join(","));
    for l in &p.lsms {
        let f = &l.fingerprint;
        let digest = f
            .digest
            .map_or_else(|| "unknown".to_owned(), |d| d.to_hex());
        let version = f
            .version
            .as_deref()
            .map(|v| format!(" version {v}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<10} {digest}{version} ({} components)",
            l.name,
            f.components.len()
        );
        if let Some(n) = &f.note {
            let _ = writeln!(out, "             note: {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_is_bounded_and_reports_too_large() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("proc/sys/kernel")).unwrap();
        std::fs::write(d.path().join("proc/sys/kernel/x"), b"0123456789").unwrap();
        let v = HostView::sysroot(d.path());
        assert_eq!(v.read("/proc/sys/kernel/x", 10).unwrap(), b"0123456789");
        let e = v.read("/proc/sys/kernel/x", 9).unwrap_err();
        assert!(matches!(e, HostReadError::TooLarge { limit: 9, .. }), "{e}");
        assert!(v.read("/nope", 9).unwrap_err().is_not_found());
    }

    #[test]
    fn list_dir_is_sorted_and_bounded() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b", "a", "c"] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        std::fs::create_dir(d.path().join("dir")).unwrap();
        let v = HostView::sysroot(d.path());
        let names: Vec<_> = v
            .list_dir("/", 10)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.is_dir))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".into(), false),
                ("b".into(), false),
                ("c".into(), false),
                ("dir".into(), true)
            ]
        );
        assert!(matches!(
            v.list_dir("/", 3),
            Err(HostReadError::TooManyEntries { limit: 3, .. })
        ));
    }
}
