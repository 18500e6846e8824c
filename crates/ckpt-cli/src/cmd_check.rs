//! `ckpt check [--json]`: what this kernel and this caller support, like
//! `criu check`. Each feature ckpt uses is probed for real (`check_sys`),
//! then `judge` turns the kernel's answer into yes / no / limited with the
//! reason. Exit 1 when something dump or restore needs is missing.

use crate::check_sys::{self, Outcome};
use crate::{CheckArgs, Failure};

/// Which command needs a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Dump,
    Restore,
    Both,
    /// Used in some cases only, or not yet: its absence blocks nothing.
    Optional,
}

impl Need {
    fn label(self) -> &'static str {
        match self {
            Need::Dump => "dump",
            Need::Restore => "restore",
            Need::Both => "dump, restore",
            Need::Optional => "optional",
        }
    }
}

/// A probe's meaning for the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Yes,
    No,
    /// The kernel has it but this caller may not use it.
    Limited,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Yes => "yes",
            Status::No => "no",
            Status::Limited => "limited",
        }
    }
}

/// One feature ckpt uses.
#[derive(Clone, Debug)]
pub struct Feature {
    pub name: &'static str,
    pub need: Need,
    /// Whether `Limited` (not permitted for this caller) blocks the need.
    pub limited_blocks: bool,
    /// What a caller lacking permission can do.
    pub permission: &'static str,
    /// What ckpt uses it for.
    pub purpose: &'static str,
}

/// A judged feature.
#[derive(Clone, Debug)]
pub struct Judged {
    pub feature: Feature,
    pub status: Status,
    pub why: String,
}

impl Judged {
    /// Whether this result makes dump or restore impossible here.
    pub fn blocks(&self) -> bool {
        self.feature.need != Need::Optional
            && match self.status {
                Status::Yes => false,
                Status::No => true,
                Status::Limited => self.feature.limited_blocks,
            }
    }
}

/// The symbolic name of the errnos probes meet.
fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::ENOSYS => "ENOSYS",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::E2BIG => "E2BIG",
        libc::ENOENT => "ENOENT",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EIO => "EIO",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// What the kernel's answer means for this feature.
pub fn judge(feature: &Feature, outcome: &Outcome) -> Judged {
    let (status, why) = match outcome {
        Outcome::Works(detail) => (Status::Yes, detail.clone()),
        Outcome::Missing(detail) => (Status::No, detail.clone()),
        Outcome::Errno(e @ (libc::EPERM | libc::EACCES)) => (
            Status::Limited,
            format!(
                "not permitted for this caller ({}); {}",
                errno_name(*e),
                feature.permission
            ),
        ),
        Outcome::Errno(
            e @ (libc::ENOSYS
            | libc::ENOTTY
            | libc::EINVAL
            | libc::E2BIG
            | libc::ENOPROTOOPT
            | libc::EOPNOTSUPP),
        ) => (
            Status::No,
            format!("this kernel lacks it ({})", errno_name(*e)),
        ),
        Outcome::Errno(e) => (
            Status::No,
            format!(
                "probe failed: {} ({})",
                std::io::Error::from_raw_os_error(*e),
                errno_name(*e)
            ),
        ),
    };
    Judged {
        feature: feature.clone(),
        status,
        why,
    }
}

const fn feature(
    name: &'static str,
    need: Need,
    limited_blocks: bool,
    permission: &'static str,
    purpose: &'static str,
) -> Feature {
    Feature {
        name,
        need,
        limited_blocks,
        permission,
        purpose,
    }
}

/// PTRACE_O_SUSPEND_SECCOMP (include/uapi/linux/ptrace.h).
const PTRACE_O_SUSPEND_SECCOMP: libc::c_long = 1 << 21;
/// CAP_CHECKPOINT_RESTORE and CAP_SYS_ADMIN (either lets clone3 pick a PID).
const CAP_CHECKPOINT_RESTORE: u32 = 40;
const CAP_SYS_ADMIN: u32 = 21;

/// Every feature with its probe.
fn probes() -> Vec<(Feature, Outcome)> {
    use Need::*;
    vec![
        (
            feature(
                "PTRACE_SEIZE",
                Both,
                true,
                "check kernel.yama.ptrace_scope, or run as root",
                "freeze the target, run system calls in it",
            ),
            check_sys::ptrace_seize(0),
        ),
        (
            feature(
                "PTRACE_O_SUSPEND_SECCOMP",
                Optional,
                false,
                "needs CAP_SYS_ADMIN: run as root",
                "work inside seccomp-confined processes",
            ),
            check_sys::ptrace_seize(PTRACE_O_SUSPEND_SECCOMP),
        ),
        (
            feature(
                "process_vm_readv",
                Both,
                true,
                "may this user ptrace its own children?",
                "read the target's memory",
            ),
            check_sys::process_vm_readv(),
        ),
        (
            feature(
                "vdso layout",
                Both,
                true,
                "",
                "borrow the vdso's syscall instruction; move the vdso back on restore",
            ),
            vdso_layout(),
        ),
        (
            feature(
                "clone3 set_tid",
                Restore,
                false,
                "restore with --pid-ns, or run as root (CAP_CHECKPOINT_RESTORE)",
                "restore the process at its checkpointed PID",
            ),
            check_sys::clone3_set_tid(),
        ),
        (
            feature(
                "CAP_CHECKPOINT_RESTORE",
                Optional,
                false,
                "restore with --pid-ns, or run as root",
                "claim a PID in this PID namespace",
            ),
            own_capability(),
        ),
        (
            feature(
                "PR_SET_MM_MAP",
                Restore,
                true,
                "",
                "restore the memory layout (brk, stack, argv, auxv)",
            ),
            check_sys::prctl_mm_map_size(),
        ),
        (
            feature(
                "lsm syscalls",
                Optional,
                false,
                "",
                "read the LSM stack (else from securityfs)",
            ),
            check_sys::lsm_list_modules(),
        ),
        (
            feature(
                "securityfs mounted",
                Optional,
                false,
                "",
                "read LSM policies for the fingerprints",
            ),
            securityfs(),
        ),
        (
            feature(
                "openat2",
                Optional,
                false,
                "",
                "not used yet (resolving paths without symlinks)",
            ),
            check_sys::openat2(),
        ),
        (
            feature(
                "PAGEMAP_SCAN",
                Optional,
                false,
                "",
                "not used yet (finding present pages faster)",
            ),
            check_sys::pagemap_scan(),
        ),
        (
            feature(
                "userfaultfd",
                Optional,
                false,
                "set vm.unprivileged_userfaultfd=1 or run as root",
                "not used yet (lazy restore)",
            ),
            check_sys::userfaultfd(),
        ),
        (
            feature(
                "TCP_REPAIR",
                Optional,
                false,
                "needs CAP_NET_ADMIN: run as root",
                "not used yet (TCP sockets are refused)",
            ),
            check_sys::tcp_repair(),
        ),
        (
            feature(
                "KVM",
                Optional,
                false,
                "add this user to group kvm",
                "the VM tests only",
            ),
            check_sys::kvm_api_version(),
        ),
    ]
}

fn own_status_field(key: &str) -> Option<String> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix(':')
            .map(|v| v.trim().to_string())
    })
}

fn own_capability() -> Outcome {
    let eff = own_status_field("CapEff")
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0);
    if eff & (1 << CAP_CHECKPOINT_RESTORE) != 0 {
        Outcome::Works("in this process's effective set".into())
    } else if eff & (1 << CAP_SYS_ADMIN) != 0 {
        Outcome::Works("CAP_SYS_ADMIN is effective (implies it)".into())
    } else {
        Outcome::Errno(libc::EPERM)
    }
}

/// Whether securityfs is mounted, from /proc/self/mountinfo.
fn securityfs() -> Outcome {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    securityfs_mount(&info).map_or_else(
        || Outcome::Missing("not mounted (mount -t securityfs none /sys/kernel/security)".into()),
        |at| Outcome::Works(format!("mounted at {at}")),
    )
}

/// The mount point of a securityfs line of mountinfo.
pub fn securityfs_mount(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        (right.split_whitespace().next()? == "securityfs")
            .then(|| left.split_whitespace().nth(4).map(str::to_string))?
    })
}

/// [vdso] and [vvar] present, and a `syscall` instruction in the vdso.
fn vdso_layout() -> Outcome {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let Some((start, end)) = map_range(&maps, "[vdso]") else {
        return Outcome::Missing("no [vdso] mapping".into());
    };
    let vvar = map_range(&maps, "[vvar]").map_or(0, |(s, e)| e - s);
    let mut code = vec![0u8; (end - start).min(1 << 20) as usize];
    let read = std::fs::File::open("/proc/self/mem").and_then(|f| {
        use std::os::unix::fs::FileExt;
        f.read_exact_at(&mut code, start)
    });
    match read {
        Ok(()) if code.windows(2).any(|w| w == [0x0f, 0x05]) => Outcome::Works(format!(
            "[vdso] {} KiB with a syscall instruction, [vvar] {} KiB",
            (end - start) >> 10,
            vvar >> 10
        )),
        Ok(()) => Outcome::Missing("[vdso] holds no syscall instruction".into()),
        Err(e) => Outcome::Errno(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// `(start, end)` of the mapping named `name` in a maps listing.
pub fn map_range(maps: &str, name: &str) -> Option<(u64, u64)> {
    let line = maps
        .lines()
        .find(|l| l.split_whitespace().nth(5) == Some(name))?;
    let (s, e) = line.split_whitespace().next()?.split_once('-')?;
    Some((
        u64::from_str_radix(s, 16).ok()?,
        u64::from_str_radix(e, 16).ok()?,
    ))
}

/// Whether `need`'s command is possible given these results.
fn ready(results: &[Judged], need: Need) -> bool {
    !results
        .iter()
        .any(|j| j.blocks() && (j.feature.need == need || j.feature.need == Need::Both))
}

pub fn run(a: &CheckArgs) -> Result<u8, Failure> {
    let results: Vec<Judged> = probes().iter().map(|(f, o)| judge(f, o)).collect();
    let (dump, restore) = (ready(&results, Need::Dump), ready(&results, Need::Restore));
    if a.json {
        println!("{}", to_json(&results, dump, restore));
    } else {
        print!("{}", to_text(&results, dump, restore));
    }
    Ok(if dump && restore { 0 } else { 1 })
}

fn to_text(results: &[Judged], dump: bool, restore: bool) -> String {
    let uid = own_status_field("Uid")
        .and_then(|u| u.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_default();
    let mut s = format!("what this kernel and this caller (euid {uid}) support:\n");
    for j in results {
        s += &format!(
            "  {:<8} {:<26} {:<14} {}: {}\n",
            j.status.word(),
            j.feature.name,
            j.feature.need.label(),
            j.feature.purpose,
            j.why
        );
    }
    let word = |ok: bool| if ok { "possible" } else { "NOT possible" };
    s += &format!("dump: {}; restore: {}\n", word(dump), word(restore));
    s
}

fn to_json(results: &[Judged], dump: bool, restore: bool) -> String {
    let features: Vec<_> = results
        .iter()
        .map(|j| {
            serde_json::json!({
                "name": j.feature.name,
                "needed_for": j.feature.need.label(),
                "purpose": j.feature.purpose,
                "status": j.status.word(),
                "why": j.why,
                "blocks": j.blocks(),
            })
        })
        .collect();
    serde_json::json!({
        "schema_version": 1,
        "features": features,
        "dump_possible": dump,
        "restore_possible": restore,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needed() -> Feature {
        feature("X", Need::Restore, true, "run as root", "p")
    }

    #[test]
    fn errnos_mean_absent_or_not_permitted() {
        let f = needed();
        assert_eq!(judge(&f, &Outcome::Errno(libc::ENOSYS)).status, Status::No);
        assert!(judge(&f, &Outcome::Errno(libc::ENOSYS))
            .why
            .contains("ENOSYS"));
        let j = judge(&f, &Outcome::Errno(libc::EPERM));
        assert_eq!(j.status, Status::Limited);
        assert!(
            j.why.contains("EPERM") && j.why.contains("run as root"),
            "{}",
            j.why
        );
        assert_eq!(judge(&f, &Outcome::Works("ok".into())).status, Status::Yes);
        assert_eq!(
            judge(&f, &Outcome::Missing("gone".into())).status,
            Status::No
        );
    }

    #[test]
    fn only_needed_features_block_and_limited_only_when_marked() {
        let opt = feature("O", Need::Optional, true, "", "");
        assert!(!judge(&opt, &Outcome::Errno(libc::ENOSYS)).blocks());
        assert!(judge(&needed(), &Outcome::Errno(libc::ENOSYS)).blocks());
        assert!(judge(&needed(), &Outcome::Errno(libc::EPERM)).blocks());
        let soft = feature("S", Need::Restore, false, "", "");
        assert!(!judge(&soft, &Outcome::Errno(libc::EPERM)).blocks());
        assert!(judge(&soft, &Outcome::Errno(libc::ENOSYS)).blocks());
    }

    #[test]
    fn readiness_follows_the_needs() {
        let r = vec![judge(&needed(), &Outcome::Errno(libc::ENOSYS))];
        assert!(ready(&r, Need::Dump));
        assert!(!ready(&r, Need::Restore));
        let both = feature("B", Need::Both, true, "", "");
        let r = vec![judge(&both, &Outcome::Missing("x".into()))];
        assert!(!ready(&r, Need::Dump) && !ready(&r, Need::Restore));
    }

    #[test]
    fn mountinfo_and_maps_parse() {
        let mi = "30 25 0:7 / /sys/kernel/security rw,nosuid - securityfs securityfs rw\n";
        assert_eq!(
            securityfs_mount(mi).as_deref(),
            Some("/sys/kernel/security")
        );
        assert_eq!(
            securityfs_mount("30 25 0:7 / /sys rw - sysfs sysfs rw\n"),
            None
        );
        let maps = "7ffd1000-7ffd3000 r-xp 00000000 00:00 0                  [vdso]\n";
        assert_eq!(map_range(maps, "[vdso]"), Some((0x7ffd1000, 0x7ffd3000)));
        assert_eq!(map_range(maps, "[vvar]"), None);
    }
}
