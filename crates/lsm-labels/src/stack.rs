//! The active LSM stack in kernel order: the `lsm_list_modules` syscall on
//! the live host (ids from include/uapi/linux/lsm.h), else the
//! comma-separated `/sys/kernel/security/lsm`.

use crate::host::{HostView, MAX_TEXT_BYTES};
use crate::profile::StackSource;

/// Path of the securityfs stack list.
pub const SECURITYFS_LSM: &str = "/sys/kernel/security/lsm";

/// LSM ids of `include/uapi/linux/lsm.h` (Linux 6.8+) and their names as
/// `/sys/kernel/security/lsm` spells them.
pub const LSM_IDS: &[(u64, &str)] = &[
    (100, "capability"),
    (101, "selinux"),
    (102, "smack"),
    (103, "tomoyo"),
    (104, "apparmor"),
    (105, "yama"),
    (106, "loadpin"),
    (107, "safesetid"),
    (108, "lockdown"),
    (109, "bpf"),
    (110, "landlock"),
    (111, "ima"),
    (112, "evm"),
    (113, "ipe"),
];

/// The kernel name of LSM id `id`, if it is one we know.
pub fn lsm_name(id: u64) -> Option<&'static str> {
    LSM_IDS.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

/// The LSM id of kernel name `name`, if it is one we know.
pub fn lsm_id(name: &str) -> Option<u64> {
    LSM_IDS.iter().find(|(_, n)| *n == name).map(|(i, _)| *i)
}

/// The ids `lsm_list_modules` reports on this host, in kernel order
/// (Linux 6.8+; `ENOSYS` before). For callers that must tell "the kernel
/// says this LSM is absent" from "ckpt could not ask" (the Landlock probe).
pub fn syscall_lsm_ids() -> std::io::Result<Vec<u64>> {
    crate::sys::lsm_list_modules()
}

/// The Landlock ABI version this kernel reports
/// (`landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`):
/// `EOPNOTSUPP` when Landlock is built but disabled at boot, `ENOSYS` when
/// the call does not exist (or a seccomp filter hides it).
pub fn landlock_abi_version() -> std::io::Result<u32> {
    crate::sys::landlock_abi_version()
}

/// One active LSM as detected: kernel name and id (when known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackMember {
    pub name: String,
    pub id: Option<u64>,
}

/// The detected stack and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectedStack {
    pub members: Vec<StackMember>,
    pub source: StackSource,
    /// Why the syscall was not used, when it was tried and failed.
    pub syscall_note: Option<String>,
}

/// A failed stack detection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    #[error("cannot read the LSM stack from {path}: {source}; mount securityfs (mount -t securityfs none /sys/kernel/security) or, for a sysroot, copy that file into it")]
    ReadSecurityfs {
        path: String,
        #[source]
        source: crate::host::HostReadError,
    },
    #[error("{path} holds no LSM names")]
    EmptyList { path: String },
}

/// Parses `/sys/kernel/security/lsm` ("lockdown,capability,landlock,bpf").
pub fn parse_securityfs_list(text: &str) -> Vec<StackMember> {
    text.trim()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| StackMember {
            name: name.to_owned(),
            id: lsm_id(name),
        })
        .collect()
}

/// Maps syscall ids to members. An id we do not know takes the name at the
/// same position of the securityfs list when that list has the same length
/// (a newer kernel's LSM), else `lsm-id-<N>`.
pub fn members_from_ids(ids: &[u64], securityfs: Option<&[StackMember]>) -> Vec<StackMember> {
    ids.iter()
        .enumerate()
        .map(|(i, &id)| {
            let name = match lsm_name(id) {
                Some(n) => n.to_owned(),
                None => securityfs
                    .filter(|s| s.len() == ids.len())
                    .map(|s| s[i].name.clone())
                    .unwrap_or_else(|| format!("lsm-id-{id}")),
            };
            StackMember { name, id: Some(id) }
        })
        .collect()
}

/// Detects the active stack: the syscall on a live view (falling back to
/// securityfs when it fails, e.g. ENOSYS before Linux 6.8), securityfs only
/// on a sysroot.
pub fn detect_stack(view: &HostView) -> Result<DetectedStack, StackError> {
    let read_fs = || -> Result<Vec<StackMember>, StackError> {
        let text = view
            .read_text(SECURITYFS_LSM, MAX_TEXT_BYTES)
            .map_err(|source| StackError::ReadSecurityfs {
                path: view.path(SECURITYFS_LSM).display().to_string(),
                source,
            })?;
        let m = parse_securityfs_list(&text);
        if m.is_empty() {
            return Err(StackError::EmptyList {
                path: view.path(SECURITYFS_LSM).display().to_string(),
            });
        }
        Ok(m)
    };
    if view.is_live() {
        match crate::sys::lsm_list_modules() {
            Ok(ids) if !ids.is_empty() => {
                let fs = read_fs().ok();
                return Ok(DetectedStack {
                    members: members_from_ids(&ids, fs.as_deref()),
                    source: StackSource::Syscall,
                    syscall_note: None,
                });
            }
            Ok(_) => {
                let members = read_fs()?;
                return Ok(DetectedStack {
                    members,
                    source: StackSource::Securityfs,
                    syscall_note: Some("lsm_list_modules returned no LSM".into()),
                });
            }
            Err(e) => {
                let members = read_fs()?;
                return Ok(DetectedStack {
                    members,
                    source: StackSource::Securityfs,
                    syscall_note: Some(format!("lsm_list_modules failed: {e}")),
                });
            }
        }
    }
    Ok(DetectedStack {
        members: read_fs()?,
        source: StackSource::Securityfs,
        syscall_note: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_uapi_lsm_h() {
        assert_eq!(lsm_name(100), Some("capability"));
        assert_eq!(lsm_name(108), Some("lockdown"));
        assert_eq!(lsm_name(109), Some("bpf"));
        assert_eq!(lsm_name(110), Some("landlock"));
        assert_eq!(lsm_name(113), Some("ipe"));
        assert_eq!(lsm_name(114), None);
        assert_eq!(lsm_id("evm"), Some(112));
    }

    #[test]
    fn this_hosts_ids_give_this_hosts_names() {
        let m = members_from_ids(&[108, 100, 110, 109], None);
        let names: Vec<_> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["lockdown", "capability", "landlock", "bpf"]);
    }

    #[test]
    fn unknown_id_takes_securityfs_name_at_same_position() {
        let fs = parse_securityfs_list("capability,newlsm\n");
        let m = members_from_ids(&[100, 140], Some(&fs));
        assert_eq!(
            m[1],
            StackMember {
                name: "newlsm".into(),
                id: Some(140)
            }
        );
        let m = members_from_ids(&[100, 140], None);
        assert_eq!(m[1].name, "lsm-id-140");
    }

    #[test]
    fn securityfs_list_parses_with_newline_and_blanks() {
        let m = parse_securityfs_list("lockdown,capability,,landlock,bpf\n");
        let names: Vec<_> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["lockdown", "capability", "landlock", "bpf"]);
        assert_eq!(m[3].id, Some(109));
    }
}
