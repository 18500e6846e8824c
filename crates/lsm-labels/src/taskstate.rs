//! Reading a live task's security state from /proc (under the host view's
//! root, so a captured /proc tree works too): per-thread credentials,
//! capability sets, no_new_privs, seccomp mode and LSM labels, plus a
//! best-effort "sandboxed" hint.
//!
//! Not readable from /proc, and left to the engine (which reads them by
//! injecting `prctl` into the stopped task): securebits
//! (`PR_GET_SECUREBITS`, left 0 here) and the seccomp filter programs
//! (`PTRACE_SECCOMP_GET_FILTER`). A Landlock domain is not visible from
//! outside the task at all; see [`SandboxHint`].

use serde::{Deserialize, Serialize};

use crate::host::{HostReadError, HostView, MAX_DIR_ENTRIES, MAX_TEXT_BYTES};
use crate::task::{CapSets, SeccompMode, TaskCreds, TaskLabel, TaskSecurity};

/// Legacy `/proc/PID/attr/*` files (shared by the "major" LSM).
pub const LEGACY_ATTRS: &[&str] = &[
    "current",
    "exec",
    "fscreate",
    "keycreate",
    "prev",
    "sockcreate",
];
/// Largest LSM attribute value we read.
const MAX_ATTR_BYTES: u64 = 64 << 10;
/// What an fd of a Landlock ruleset links to.
pub const LANDLOCK_RULESET_LINK: &str = "anon_inode:[landlock-ruleset]";

/// A failed read of a task's state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskStateError {
    #[error("no process {pid} under {proc_dir} (it exited, or the pid is wrong)")]
    NoSuchProcess { pid: i32, proc_dir: String },
    #[error("cannot list the threads of process {pid}: {source}")]
    ListThreads {
        pid: i32,
        #[source]
        source: HostReadError,
    },
    #[error("cannot read the status of thread {tid} of process {pid}: {source}")]
    ReadStatus {
        pid: i32,
        tid: i32,
        #[source]
        source: HostReadError,
    },
    #[error("cannot parse {path}: {what}")]
    ParseStatus { path: String, what: String },
}

/// The security fields of `/proc/PID/task/TID/status`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StatusFields {
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    pub groups: Vec<u32>,
    pub caps: CapSets,
    pub no_new_privs: bool,
    pub seccomp: SeccompMode,
    /// `Seccomp_filters:` (Linux 5.9+), the number of attached filters.
    pub seccomp_filters: Option<u32>,
}

fn parse_ids(v: &str, what: &str) -> Result<[u32; 4], String> {
    let ids: Vec<u32> = v
        .split_whitespace()
        .map(|x| {
            x.parse::<u32>()
                .map_err(|_| format!("{what}: {x:?} is not a number"))
        })
        .collect::<Result<_, _>>()?;
    ids.try_into()
        .map_err(|_| format!("{what}: expected 4 ids (real, effective, saved, filesystem)"))
}

fn parse_cap(v: &str, what: &str) -> Result<u64, String> {
    u64::from_str_radix(v.trim(), 16).map_err(|_| format!("{what}: {v:?} is not a hex mask"))
}

/// Parses the fields ckpt needs from a status file. Unknown lines are
/// ignored; a missing required line (Uid, Gid, Cap*) is an error.
pub fn parse_status(text: &str) -> Result<StatusFields, String> {
    let mut s = StatusFields::default();
    let mut seen = 0u32;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "Uid" => {
                s.uids = parse_ids(v, k)?;
                seen |= 1;
            }
            "Gid" => {
                s.gids = parse_ids(v, k)?;
                seen |= 2;
            }
            "Groups" => {
                s.groups = v
                    .split_whitespace()
                    .map(|g| {
                        g.parse::<u32>()
                            .map_err(|_| format!("Groups: {g:?} is not a number"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "CapInh" => {
                s.caps.inheritable = parse_cap(v, k)?;
                seen |= 4;
            }
            "CapPrm" => {
                s.caps.permitted = parse_cap(v, k)?;
                seen |= 8;
            }
            "CapEff" => {
                s.caps.effective = parse_cap(v, k)?;
                seen |= 16;
            }
            "CapBnd" => {
                s.caps.bounding = parse_cap(v, k)?;
                seen |= 32;
            }
            "CapAmb" => s.caps.ambient = parse_cap(v, k)?,
            "NoNewPrivs" => s.no_new_privs = v == "1",
            "Seccomp" => {
                let n: u32 = v
                    .parse()
                    .map_err(|_| format!("Seccomp: {v:?} is not a number"))?;
                s.seccomp = SeccompMode::from_status(n)
                    .ok_or_else(|| format!("Seccomp: unknown mode {n}"))?;
            }
            "Seccomp_filters" => s.seccomp_filters = v.parse().ok(),
            _ => {}
        }
    }
    if seen != 63 {
        return Err("missing one of the Uid, Gid, CapInh, CapPrm, CapEff, CapBnd lines".into());
    }
    Ok(s)
}

/// Whether an attr read error means "no LSM provides this attribute".
fn attr_absent(e: &HostReadError) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOENT) | Some(libc::EOPNOTSUPP)
    )
}

/// Reads the LSM attributes of one thread: legacy files under `attr/`
/// (lsm = "") and each `attr/<lsm>/<attr>` file. Empty values and
/// attributes no LSM provides (EINVAL) are left out; other failures are
/// returned as notes.
pub fn read_labels(view: &HostView, task_dir: &str) -> (Vec<TaskLabel>, Vec<String>) {
    let mut labels = Vec::new();
    let mut notes = Vec::new();
    let attr_dir = format!("{task_dir}/attr");
    let mut read_one = |lsm: &str, attr: &str, path: String, labels: &mut Vec<TaskLabel>| match view
        .read(&path, MAX_ATTR_BYTES)
    {
        Ok(v) if !v.is_empty() => labels.push(TaskLabel {
            lsm: lsm.into(),
            attr: attr.into(),
            value: v,
        }),
        Ok(_) => {}
        Err(e) if attr_absent(&e) => {}
        Err(e) => notes.push(e.to_string()),
    };
    let entries = match view.list_dir(&attr_dir, 256) {
        Ok(e) => e,
        Err(_) => return (labels, notes),
    };
    for e in &entries {
        if e.is_dir {
            if let Ok(sub) = view.list_dir(&format!("{attr_dir}/{}", e.name), 256) {
                for a in sub.iter().filter(|a| !a.is_dir) {
                    read_one(
                        &e.name,
                        &a.name,
                        format!("{attr_dir}/{}/{}", e.name, a.name),
                        &mut labels,
                    );
                }
            }
        } else if LEGACY_ATTRS.contains(&e.name.as_str()) {
            read_one("", &e.name, format!("{attr_dir}/{}", e.name), &mut labels);
        }
    }
    // Legacy attributes (lsm "") first, then by LSM and attribute name.
    labels
        .sort_by(|a, b| (a.lsm.as_str(), a.attr.as_str()).cmp(&(b.lsm.as_str(), b.attr.as_str())));
    (labels, notes)
}

/// A best-effort answer to "is this task sandboxed?", from outside.
///
/// Limits: Landlock keeps no trace in /proc. A task that holds an fd to a
/// Landlock ruleset is probably about to restrict itself, or has; one that
/// restricted itself and closed the fd is not detectable here. seccomp is
/// reported exactly by the kernel. An LSM confinement (AppArmor profile
/// other than `unconfined`) is also listed.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SandboxHint {
    /// True when any reason below was found.
    pub sandboxed: bool,
    /// fds of the main thread's process that are Landlock rulesets.
    pub landlock_ruleset_fds: Vec<i32>,
    /// What was found, in words (e.g. "seccomp filter mode (2 filters)").
    pub reasons: Vec<String>,
    /// What cannot be known from outside.
    pub limits: String,
}

/// Everything [`read_task_state`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskState {
    pub pid: i32,
    /// One entry per thread, the thread-group leader first.
    pub threads: Vec<TaskSecurity>,
    /// `Seccomp_filters:` of each thread, same order (None before 5.9).
    pub seccomp_filter_counts: Vec<Option<u32>>,
    pub sandbox: SandboxHint,
    /// Attributes or files that exist but could not be read.
    pub notes: Vec<String>,
}

/// Reads the security state of one thread.
pub fn read_thread_security(
    view: &HostView,
    pid: i32,
    tid: i32,
) -> Result<(TaskSecurity, Option<u32>, Vec<String>), TaskStateError> {
    let dir = format!("/proc/{pid}/task/{tid}");
    let status_path = format!("{dir}/status");
    let text = view
        .read_text(&status_path, MAX_TEXT_BYTES)
        .map_err(|source| TaskStateError::ReadStatus { pid, tid, source })?;
    let st = parse_status(&text).map_err(|what| TaskStateError::ParseStatus {
        path: view.path(&status_path).display().to_string(),
        what,
    })?;
    let (labels, notes) = read_labels(view, &dir);
    // /proc/PID/personality needs ptrace access; 0 when unreadable.
    let personality = view
        .read_text(&format!("{dir}/personality"), 64)
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim(), 16).ok())
        .unwrap_or(0);
    let sec = TaskSecurity {
        tid,
        creds: TaskCreds {
            uids: st.uids,
            gids: st.gids,
            groups: st.groups,
            caps: st.caps,
            securebits: 0,
        },
        labels,
        no_new_privs: st.no_new_privs,
        seccomp: st.seccomp,
        seccomp_filters: Vec::new(),
        personality,
    };
    Ok((sec, st.seccomp_filters, notes))
}

/// The sandbox hint for a process whose threads are `threads`.
pub fn sandbox_hint(
    view: &HostView,
    pid: i32,
    threads: &[TaskSecurity],
    filter_counts: &[Option<u32>],
) -> SandboxHint {
    let mut h = SandboxHint {
        limits: "Landlock domains are invisible from outside the task: only an open ruleset fd is seen; a task that restricted itself and closed it is not detected".into(),
        ..Default::default()
    };
    if let Ok(fds) = view.list_dir(&format!("/proc/{pid}/fd"), MAX_DIR_ENTRIES) {
        for fd in fds {
            let Ok(n) = fd.name.parse::<i32>() else {
                continue;
            };
            if let Ok(target) = view.read_link(&format!("/proc/{pid}/fd/{n}")) {
                if target.as_os_str() == LANDLOCK_RULESET_LINK {
                    h.landlock_ruleset_fds.push(n);
                }
            }
        }
    }
    if !h.landlock_ruleset_fds.is_empty() {
        h.reasons.push(format!(
            "holds Landlock ruleset fd(s) {:?} (probably Landlock-restricted)",
            h.landlock_ruleset_fds
        ));
    }
    for (t, count) in threads.iter().zip(filter_counts) {
        match t.seccomp {
            SeccompMode::Disabled => {}
            SeccompMode::Strict => h
                .reasons
                .push(format!("thread {}: seccomp strict mode", t.tid)),
            SeccompMode::Filter => h.reasons.push(match count {
                Some(n) => format!("thread {}: seccomp filter mode ({n} filters)", t.tid),
                None => format!("thread {}: seccomp filter mode", t.tid),
            }),
        }
        for l in &t.labels {
            if l.attr == "current" && (l.lsm == "apparmor" || l.lsm.is_empty()) {
                let v = String::from_utf8_lossy(&l.value);
                let v = v.trim_end_matches(['\n', '\0']);
                if l.lsm == "apparmor" && v != "unconfined" {
                    h.reasons
                        .push(format!("thread {}: AppArmor profile {v}", t.tid));
                }
            }
        }
    }
    h.reasons.dedup();
    h.sandboxed = !h.reasons.is_empty();
    h
}

/// Reads the security state of process `pid` and each of its threads.
pub fn read_task_state(view: &HostView, pid: i32) -> Result<TaskState, TaskStateError> {
    let pdir = format!("/proc/{pid}");
    if !view.exists(&pdir) {
        return Err(TaskStateError::NoSuchProcess {
            pid,
            proc_dir: view.path("/proc").display().to_string(),
        });
    }
    let entries = view
        .list_dir(&format!("{pdir}/task"), MAX_DIR_ENTRIES)
        .map_err(|source| TaskStateError::ListThreads { pid, source })?;
    let mut tids: Vec<i32> = entries.iter().filter_map(|e| e.name.parse().ok()).collect();
    tids.sort_unstable();
    // Leader first.
    if let Some(i) = tids.iter().position(|&t| t == pid) {
        tids.remove(i);
        tids.insert(0, pid);
    }
    let mut state = TaskState {
        pid,
        ..Default::default()
    };
    for tid in tids {
        match read_thread_security(view, pid, tid) {
            Ok((sec, count, notes)) => {
                state.threads.push(sec);
                state.seccomp_filter_counts.push(count);
                state.notes.extend(notes);
            }
            // A thread that exited meanwhile.
            Err(TaskStateError::ReadStatus { source, .. })
                if source.is_not_found() || source.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    if state.threads.is_empty() {
        return Err(TaskStateError::NoSuchProcess {
            pid,
            proc_dir: view.path("/proc").display().to_string(),
        });
    }
    state.sandbox = sandbox_hint(view, pid, &state.threads, &state.seccomp_filter_counts);
    Ok(state)
}

/// Creates an empty Landlock ruleset fd in this process (handling
/// `LANDLOCK_ACCESS_FS_EXECUTE`, restricting nothing). For tests and
/// diagnostics of [`SandboxHint`]: the fd is what the hint looks for.
///
/// # Errors
/// As `landlock_create_ruleset(2)` reports (EOPNOTSUPP without Landlock).
pub fn create_landlock_ruleset_fd() -> std::io::Result<std::os::fd::OwnedFd> {
    crate::sys::landlock_create_ruleset(1)
}

/// Capability names in bit order (include/uapi/linux/capability.h, 0..=40).
pub const CAPABILITY_NAMES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// The names of the capabilities set in `mask` (`cap_<N>` past the known ones).
pub fn capability_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            CAPABILITY_NAMES
                .get(b)
                .map_or_else(|| format!("cap_{b}"), |n| (*n).to_owned())
        })
        .collect()
}

/// A capability set for people: `0x…` plus names, or "all N known" when
/// it holds every known capability.
pub fn describe_caps(mask: u64) -> String {
    let all = (1u64 << CAPABILITY_NAMES.len()) - 1;
    if mask == 0 {
        "none".into()
    } else if mask & all == all {
        let extra: Vec<String> = capability_names(mask & !all);
        if extra.is_empty() {
            format!("{mask:#018x} (all {} known)", CAPABILITY_NAMES.len())
        } else {
            format!(
                "{mask:#018x} (all {} known, {})",
                CAPABILITY_NAMES.len(),
                extra.join(",")
            )
        }
    } else {
        format!("{mask:#018x} ({})", capability_names(mask).join(","))
    }
}

fn seccomp_word(m: SeccompMode) -> &'static str {
    match m {
        SeccompMode::Disabled => "disabled",
        SeccompMode::Strict => "strict",
        SeccompMode::Filter => "filter",
    }
}

/// The text `ckpt lsm --pid` prints: per thread its ids, capability sets,
/// no_new_privs, seccomp and LSM labels, then whether it is sandboxed.
impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "pid {} ({} thread{})",
            self.pid,
            self.threads.len(),
            if self.threads.len() == 1 { "" } else { "s" }
        )?;
        for (i, t) in self.threads.iter().enumerate() {
            let c = &t.creds;
            writeln!(f, "thread {}:", t.tid)?;
            writeln!(
                f,
                "  uid (real eff saved fs): {} {} {} {}",
                c.uids[0], c.uids[1], c.uids[2], c.uids[3]
            )?;
            writeln!(
                f,
                "  gid (real eff saved fs): {} {} {} {}",
                c.gids[0], c.gids[1], c.gids[2], c.gids[3]
            )?;
            let groups: Vec<String> = c.groups.iter().map(u32::to_string).collect();
            writeln!(
                f,
                "  groups: {}",
                if groups.is_empty() {
                    "none".into()
                } else {
                    groups.join(" ")
                }
            )?;
            writeln!(f, "  cap effective:   {}", describe_caps(c.caps.effective))?;
            writeln!(f, "  cap permitted:   {}", describe_caps(c.caps.permitted))?;
            writeln!(
                f,
                "  cap inheritable: {}",
                describe_caps(c.caps.inheritable)
            )?;
            writeln!(f, "  cap bounding:    {}", describe_caps(c.caps.bounding))?;
            writeln!(f, "  cap ambient:     {}", describe_caps(c.caps.ambient))?;
            writeln!(
                f,
                "  no_new_privs: {}",
                if t.no_new_privs { "yes" } else { "no" }
            )?;
            match self.seccomp_filter_counts.get(i).copied().flatten() {
                Some(n) if t.seccomp == SeccompMode::Filter => {
                    writeln!(f, "  seccomp: filter ({n} filters)")?
                }
                _ => writeln!(f, "  seccomp: {}", seccomp_word(t.seccomp))?,
            }
            if t.labels.is_empty() {
                writeln!(f, "  labels: none")?;
            }
            for l in &t.labels {
                let v = String::from_utf8_lossy(&l.value);
                let v = v.trim_end_matches(['\n', '\0']);
                let key = if l.lsm.is_empty() {
                    format!("attr/{}", l.attr)
                } else {
                    format!("attr/{}/{}", l.lsm, l.attr)
                };
                writeln!(f, "  {key}: {v}")?;
            }
        }
        if self.sandbox.sandboxed {
            writeln!(f, "sandboxed: yes")?;
            for r in &self.sandbox.reasons {
                writeln!(f, "  - {r}")?;
            }
        } else {
            writeln!(f, "sandboxed: not detected ({})", self.sandbox.limits)?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tcat\nUmask:\t0022\nState:\tR (running)\nUid:\t1000\t1001\t1002\t1003\nGid:\t100\t101\t102\t103\nGroups:\t4 24 27 \nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t3\n";

    #[test]
    fn status_fields() {
        let s = parse_status(STATUS).unwrap();
        assert_eq!(s.uids, [1000, 1001, 1002, 1003]);
        assert_eq!(s.gids, [100, 101, 102, 103]);
        assert_eq!(s.groups, vec![4, 24, 27]);
        assert_eq!(s.caps.effective, 0x1fffeffffff);
        assert_eq!(s.caps.bounding, 0x1ffffffffff);
        assert!(s.no_new_privs);
        assert_eq!(s.seccomp, SeccompMode::Filter);
        assert_eq!(s.seccomp_filters, Some(3));
    }

    #[test]
    fn status_errors_name_the_field() {
        assert!(parse_status("Uid:\t1 2 3\n").unwrap_err().contains("Uid"));
        assert!(parse_status(&STATUS.replace("Seccomp:\t2", "Seccomp:\t7"))
            .unwrap_err()
            .contains("unknown mode 7"));
        assert!(parse_status(&STATUS.replace("CapEff", "CapXXX"))
            .unwrap_err()
            .contains("missing"));
    }

    #[test]
    fn capability_descriptions() {
        assert_eq!(capability_names(0b1000_0001), ["chown", "setuid"]);
        assert_eq!(capability_names(1 << 40), ["checkpoint_restore"]);
        assert_eq!(capability_names(1 << 41), ["cap_41"]);
        assert_eq!(describe_caps(0), "none");
        assert_eq!(
            describe_caps(0x1ffffffffff),
            "0x000001ffffffffff (all 41 known)"
        );
        assert_eq!(describe_caps(1 << 21), "0x0000000000200000 (sys_admin)");
    }
}
