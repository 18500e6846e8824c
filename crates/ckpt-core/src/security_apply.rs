//! The security side of a restore: carrying out one task's
//! [`TaskPlan`] (from the restore verdict) inside the half-built task, by
//! system calls injected through the `Tracer` seam, so that every change
//! passes the kernel's own checks for that task (DESIGN 3.3, 3.5, 3.6).
//!
//! The steps, in the order the restore runs them:
//!
//! 1. [`apply_identity`], right after the address space is cleared and
//!    before any file or mapping is opened (DESIGN 3.7): keep-caps when the
//!    uid change leaves root, `setgroups`, `setresgid`+`setfsgid`,
//!    `setresuid`+`setfsuid`, `PR_CAP_AMBIENT_CLEAR_ALL`,
//!    `capset(P', P', T.inh)` (`P'` = what the kernel left permitted,
//!    read back with `capget`), `PR_CAP_AMBIENT_RAISE` for each ambient
//!    capability.
//! 2. [`apply_labels`] (`--keep-lsm`): each label written by the task to
//!    `/proc/thread-self/attr/<lsm>/<attr>`, `current` first; the LSM
//!    decides, and a denial refuses the restore.
//! 3. [`enter_restored_effective`]: `capset(T.eff, P', T.inh)`; from here
//!    on files and mappings are opened with the image's uids, gids, groups
//!    and effective capabilities. [`with_effective`] raises a capability
//!    of `P'` around one engine step that needs it (`PR_SET_MM_MAP` with an
//!    exe fd needs CAP_CHECKPOINT_RESTORE, raising rlimits
//!    CAP_SYS_RESOURCE), as the caller could have done anyway.
//! 4. [`apply_confinement`], the last injected calls: no_new_privs; the
//!    bounding set (`PR_CAPBSET_DROP` of each capability outside the
//!    image's set that the task still has, with CAP_SETPCAP raised);
//!    securebits; the final `capset(T.eff, T.perm, T.inh)`; seccomp
//!    filters oldest first (strict mode last). When the filters need
//!    CAP_SYS_ADMIN (no no_new_privs), they go before the final capset,
//!    which then needs the filters suspended (`PTRACE_O_SUSPEND_SECCOMP`,
//!    set by the restore when ckpt may) or allowed by them.
//!
//! Anything the kernel refuses refuses the restore: the task is never
//! left with less confinement than the plan says (DESIGN 3.6).

use lsm_labels::creds_rules::{cap, securebits as sb};
use lsm_labels::task::{SeccompMode, TaskCreds, TaskLabel};
use lsm_labels::verdict::TaskPlan;

use crate::ptrace::{TraceError, Tracer};
use crate::seccomp::{sock_fprog, SOCK_FPROG_LEN};

const PR_SET_KEEPCAPS: u64 = 8;
const PR_SET_SECCOMP: u64 = 22;
const PR_CAPBSET_READ: u64 = 23;
const PR_CAPBSET_DROP: u64 = 24;
const PR_GET_SECUREBITS: u64 = 27;
const PR_SET_SECUREBITS: u64 = 28;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_GET_NO_NEW_PRIVS: u64 = 39;
const PR_CAP_AMBIENT: u64 = 47;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;
const SECCOMP_SET_MODE_FILTER: u64 = 1;
const SECCOMP_MODE_STRICT: u64 = 1;
const SECCOMP_FILTER_FLAG_TSYNC: u64 = 1;
/// `_LINUX_CAPABILITY_VERSION_3`.
const CAP_VERSION_3: u32 = 0x2008_0522;
/// Bytes of a capget/capset header plus two data structs.
const CAP_AREA: u64 = 8 + 24;
/// Largest group list setgroups accepts (`NGROUPS_MAX`).
const NGROUPS_MAX: usize = 65536;

/// A step of the restored task's security that the kernel refused, or a
/// failure to run it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityApplyError {
    #[error("the kernel refused task {tid} its credentials: {call} failed with {}", errno_text(*errno))]
    Creds { tid: i32, call: String, errno: i32 },
    #[error("the LSM refused label {label:?} ({lsm}/{attr}) for task {tid}: {step} failed with {}; restore without --keep-lsm to run with your own labels", errno_text(*errno))]
    Label {
        tid: i32,
        lsm: String,
        attr: String,
        label: String,
        step: &'static str,
        errno: i32,
    },
    #[error("task {tid}'s {what} cannot be restored: {call} failed with {}; confinement is never dropped", errno_text(*errno))]
    Confinement {
        tid: i32,
        what: String,
        call: String,
        errno: i32,
    },
    #[error("task {tid} does not have the restored state the plan asks for: {what}")]
    Mismatch { tid: i32, what: String },
    #[error("task {tid}: {source}")]
    Trace {
        tid: i32,
        #[source]
        source: TraceError,
    },
    #[error("task {tid}: no room for {need} bytes of scratch memory in the task")]
    NoMemory { tid: i32, need: u64 },
}

impl SecurityApplyError {
    /// A refusal by a rule of DESIGN 3 (exit 3), rather than an operational
    /// failure (exit 1).
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            SecurityApplyError::Trace { .. } | SecurityApplyError::NoMemory { .. }
        )
    }
}

fn errno_text(e: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(e)
}

/// Memory inside the task that the steps may overwrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskMemory {
    pub addr: u64,
    pub len: u64,
}

/// What [`apply_identity`] established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The permitted set after the id change (`P'`), kept until the final
    /// capset so that later steps can raise what they need.
    pub permitted: u64,
}

/// Options of [`apply_confinement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfinementOptions {
    /// Install filters with `SECCOMP_FILTER_FLAG_TSYNC` (threads share them).
    pub tsync: bool,
    /// `/proc/sys/kernel/cap_last_cap`.
    pub last_cap: u32,
}

struct Ctx<'a> {
    t: &'a mut dyn Tracer,
    tid: i32,
    mem: TaskMemory,
}

impl Ctx<'_> {
    fn raw(&mut self, nr: i64, args: &[u64]) -> Result<i64, SecurityApplyError> {
        let tid = self.tid;
        self.t
            .syscall(nr, args)
            .map_err(|source| SecurityApplyError::Trace { tid, source })
    }

    fn write(&mut self, off: u64, data: &[u8]) -> Result<u64, SecurityApplyError> {
        let tid = self.tid;
        if off + data.len() as u64 > self.mem.len {
            return Err(SecurityApplyError::NoMemory {
                tid,
                need: off + data.len() as u64,
            });
        }
        let at = self.mem.addr + off;
        self.t
            .write_mem(at, data)
            .map_err(|source| SecurityApplyError::Trace { tid, source })?;
        Ok(at)
    }

    /// A credentials call that must succeed.
    fn creds(&mut self, call: &str, nr: i64, args: &[u64]) -> Result<i64, SecurityApplyError> {
        let r = self.raw(nr, args)?;
        if r < 0 {
            return Err(SecurityApplyError::Creds {
                tid: self.tid,
                call: call.to_string(),
                errno: (-r) as i32,
            });
        }
        Ok(r)
    }

    /// A confinement call that must succeed.
    fn confine(
        &mut self,
        what: &str,
        call: &str,
        nr: i64,
        args: &[u64],
    ) -> Result<i64, SecurityApplyError> {
        let r = self.raw(nr, args)?;
        if r < 0 {
            return Err(SecurityApplyError::Confinement {
                tid: self.tid,
                what: what.to_string(),
                call: call.to_string(),
                errno: (-r) as i32,
            });
        }
        Ok(r)
    }

    fn cap_header(&mut self) -> Result<u64, SecurityApplyError> {
        let mut h = CAP_VERSION_3.to_le_bytes().to_vec();
        h.extend_from_slice(&0i32.to_le_bytes());
        self.write(0, &h)
    }

    /// capget: (effective, permitted, inheritable).
    fn capget(&mut self) -> Result<(u64, u64, u64), SecurityApplyError> {
        let hdr = self.cap_header()?;
        let data = self.write(8, &[0u8; 24])?;
        self.creds("capget", libc::SYS_capget, &[hdr, data])?;
        let mut b = [0u8; 24];
        let tid = self.tid;
        self.t
            .read_mem(data, &mut b)
            .map_err(|source| SecurityApplyError::Trace { tid, source })?;
        let w = |i: usize| u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
        // struct __user_cap_data_struct { effective, permitted, inheritable } x 2
        Ok((w(0) | w(12) << 32, w(4) | w(16) << 32, w(8) | w(20) << 32))
    }

    fn capset(&mut self, eff: u64, perm: u64, inh: u64) -> Result<(), SecurityApplyError> {
        let hdr = self.cap_header()?;
        let mut d = Vec::with_capacity(24);
        for half in [
            eff & 0xffff_ffff,
            perm & 0xffff_ffff,
            inh & 0xffff_ffff,
            eff >> 32,
            perm >> 32,
            inh >> 32,
        ] {
            d.extend_from_slice(&(half as u32).to_le_bytes());
        }
        let data = self.write(8, &d)?;
        self.creds(
            &format!("capset(effective {eff:#x}, permitted {perm:#x}, inheritable {inh:#x})"),
            libc::SYS_capset,
            &[hdr, data],
        )?;
        Ok(())
    }
}

fn has_root(ids: &[u32; 4]) -> bool {
    ids[..3].contains(&0)
}

fn sorted(v: &[u32]) -> Vec<u32> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// Step 1: the ids, groups and the inheritable and ambient sets of
/// `plan.creds`, starting from `start` (the restorer's credentials, which
/// the half-built task has). Leaves every capability of `P'` effective.
pub fn apply_identity(
    t: &mut dyn Tracer,
    plan: &TaskPlan,
    start: &TaskCreds,
    mem: TaskMemory,
) -> Result<Identity, SecurityApplyError> {
    let want = &plan.creds;
    let mut c = Ctx {
        t,
        tid: plan.tid,
        mem,
    };
    if c.mem.len < CAP_AREA {
        return Err(SecurityApplyError::NoMemory {
            tid: plan.tid,
            need: CAP_AREA,
        });
    }
    let fixup_off = start.securebits & (sb::KEEP_CAPS | sb::NO_SETUID_FIXUP) != 0;
    if has_root(&start.uids) && !has_root(&want.uids) && !fixup_off {
        c.creds(
            "prctl(PR_SET_KEEPCAPS, 1)",
            libc::SYS_prctl,
            &[PR_SET_KEEPCAPS, 1, 0, 0, 0],
        )?;
    }
    if sorted(&want.groups) != sorted(&start.groups) {
        if want.groups.len() > NGROUPS_MAX {
            return Err(SecurityApplyError::Mismatch {
                tid: plan.tid,
                what: format!(
                    "{} supplementary groups (at most {NGROUPS_MAX})",
                    want.groups.len()
                ),
            });
        }
        let bytes: Vec<u8> = want.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
        let at = if bytes.is_empty() {
            0
        } else {
            c.write(CAP_AREA, &bytes)?
        };
        c.creds(
            &format!("setgroups({:?})", want.groups),
            libc::SYS_setgroups,
            &[want.groups.len() as u64, at],
        )?;
    }
    let g = want.gids.map(u64::from);
    c.creds(
        &format!("setresgid({}, {}, {})", g[0], g[1], g[2]),
        libc::SYS_setresgid,
        &g[..3],
    )?;
    c.raw(libc::SYS_setfsgid, &[g[3]])?;
    let u = want.uids.map(u64::from);
    c.creds(
        &format!("setresuid({}, {}, {})", u[0], u[1], u[2]),
        libc::SYS_setresuid,
        &u[..3],
    )?;
    c.raw(libc::SYS_setfsuid, &[u[3]])?;
    // setfs[ug]id report the previous value and never fail: read back.
    let fsgid = c.raw(libc::SYS_setfsgid, &[u64::from(u32::MAX)])?;
    let fsuid = c.raw(libc::SYS_setfsuid, &[u64::from(u32::MAX)])?;
    if fsgid != i64::from(want.gids[3]) || fsuid != i64::from(want.uids[3]) {
        return Err(SecurityApplyError::Creds {
            tid: plan.tid,
            call: format!(
                "setfsuid({})/setfsgid({}) (the task has fsuid {fsuid}, fsgid {fsgid})",
                want.uids[3], want.gids[3]
            ),
            errno: libc::EPERM,
        });
    }
    let (_, permitted, _) = c.capget()?;
    c.creds(
        "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)",
        libc::SYS_prctl,
        &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0],
    )?;
    c.capset(permitted, permitted, want.caps.inheritable)?;
    for n in (0..64u32).filter(|&n| cap::has(want.caps.ambient, n)) {
        c.creds(
            &format!("prctl(PR_CAP_AMBIENT_RAISE, {})", cap::names(1 << n)),
            libc::SYS_prctl,
            &[PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, u64::from(n), 0, 0],
        )?;
    }
    Ok(Identity { permitted })
}

/// What a task writes to `/proc/thread-self/attr/...` to take `label`.
/// AppArmor takes commands, not bare labels; the others take the label.
pub fn label_write_bytes(l: &TaskLabel) -> Vec<u8> {
    if l.lsm == "apparmor" {
        let v = String::from_utf8_lossy(&l.value);
        // "name (enforce)" as read; the mode is not part of the name.
        let name = match v.rsplit_once(" (") {
            Some((n, mode)) if mode.ends_with(')') => n,
            _ => v.as_ref(),
        };
        let cmd = if l.attr == "exec" {
            "exec"
        } else {
            "changeprofile"
        };
        return format!("{cmd} {name}").into_bytes();
    }
    l.value.clone()
}

/// The proc path a task writes label `l` to. SELinux has no
/// `attr/selinux/` directory (only Smack and AppArmor have their own): its
/// attributes are the legacy files, which no other LSM can hold while
/// SELinux is active (SELinux, Smack and AppArmor exclude each other).
pub fn label_path(l: &TaskLabel) -> String {
    if l.lsm.is_empty() || l.lsm == "selinux" {
        format!("/proc/thread-self/attr/{}", l.attr)
    } else {
        format!("/proc/thread-self/attr/{}/{}", l.lsm, l.attr)
    }
}

/// Step 2 (`--keep-lsm`): the task writes each of `plan.labels` itself,
/// `current` first (the other attributes were set by the process in its
/// own domain).
pub fn apply_labels(
    t: &mut dyn Tracer,
    plan: &TaskPlan,
    mem: TaskMemory,
) -> Result<(), SecurityApplyError> {
    let mut c = Ctx {
        t,
        tid: plan.tid,
        mem,
    };
    let mut labels: Vec<&TaskLabel> = plan.labels.iter().collect();
    labels.sort_by_key(|l| l.attr != "current");
    for l in labels {
        let denied = |step: &'static str, r: i64| SecurityApplyError::Label {
            tid: plan.tid,
            lsm: l.lsm.clone(),
            attr: l.attr.clone(),
            label: String::from_utf8_lossy(&l.value).into_owned(),
            step,
            errno: (-r) as i32,
        };
        let mut path = label_path(l).into_bytes();
        path.push(0);
        let value = label_write_bytes(l);
        let path_at = c.write(0, &path)?;
        let value_at = c.write(path.len() as u64, &value)?;
        let fd = c.raw(
            libc::SYS_openat,
            &[
                libc::AT_FDCWD as u64,
                path_at,
                (libc::O_WRONLY | libc::O_CLOEXEC) as u64,
                0,
            ],
        )?;
        if fd < 0 {
            return Err(denied("open", fd));
        }
        let w = c.raw(libc::SYS_write, &[fd as u64, value_at, value.len() as u64])?;
        c.raw(libc::SYS_close, &[fd as u64])?;
        if w < 0 {
            return Err(denied("write", w));
        }
        if w as usize != value.len() {
            return Err(denied("write (short)", -(libc::EIO as i64)));
        }
    }
    Ok(())
}

/// Step 3: the image's effective set (within `P'`), keeping `P'`
/// permitted for the later steps.
pub fn enter_restored_effective(
    t: &mut dyn Tracer,
    plan: &TaskPlan,
    id: &Identity,
    mem: TaskMemory,
) -> Result<(), SecurityApplyError> {
    let caps = &plan.creds.caps;
    Ctx {
        t,
        tid: plan.tid,
        mem,
    }
    .capset(
        caps.effective & id.permitted,
        id.permitted,
        caps.inheritable,
    )
}

/// Runs `step` with the capabilities `extra` (those of them in `P'`)
/// raised into the effective set, then puts the image's effective set
/// back.
pub fn with_effective<T, E>(
    t: &mut dyn Tracer,
    plan: &TaskPlan,
    id: &Identity,
    mem: TaskMemory,
    extra: u64,
    step: impl FnOnce(&mut dyn Tracer) -> Result<T, E>,
) -> Result<Result<T, E>, SecurityApplyError> {
    let caps = &plan.creds.caps;
    let eff = caps.effective & id.permitted;
    Ctx {
        t: &mut *t,
        tid: plan.tid,
        mem,
    }
    .capset(eff | (extra & id.permitted), id.permitted, caps.inheritable)?;
    let r = step(&mut *t);
    Ctx {
        t,
        tid: plan.tid,
        mem,
    }
    .capset(eff, id.permitted, caps.inheritable)?;
    Ok(r)
}

/// Step 4, the last calls injected into the task: no_new_privs, bounding
/// set, securebits, the final capability sets and seccomp. `mem` must
/// hold the largest filter plus 16 bytes (and at least 32 bytes).
pub fn apply_confinement(
    t: &mut dyn Tracer,
    plan: &TaskPlan,
    id: &Identity,
    mem: TaskMemory,
    opts: ConfinementOptions,
) -> Result<(), SecurityApplyError> {
    let want = &plan.creds;
    let tid = plan.tid;
    let mut c = Ctx { t, tid, mem };
    if plan.no_new_privs {
        c.confine(
            "no_new_privs",
            "prctl(PR_SET_NO_NEW_PRIVS, 1)",
            libc::SYS_prctl,
            &[PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0],
        )?;
    }
    let nnp = c.raw(libc::SYS_prctl, &[PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0])?;
    if plan.no_new_privs && nnp != 1 {
        return Err(SecurityApplyError::Mismatch {
            tid,
            what: format!("no_new_privs reads {nnp} after PR_SET_NO_NEW_PRIVS"),
        });
    }

    // The bounding set, with CAP_SETPCAP raised when the task may.
    let base_eff = want.caps.effective & id.permitted;
    let setpcap = 1u64 << cap::SETPCAP;
    c.capset(
        base_eff | (setpcap & id.permitted),
        id.permitted,
        want.caps.inheritable,
    )?;
    for n in (0..=opts.last_cap.min(63)).filter(|&n| !cap::has(want.caps.bounding, n)) {
        let r = c.raw(libc::SYS_prctl, &[PR_CAPBSET_READ, u64::from(n), 0, 0, 0])?;
        if r == 1 {
            c.confine(
                "capability bounding set",
                &format!("prctl(PR_CAPBSET_DROP, {})", cap::names(1 << n)),
                libc::SYS_prctl,
                &[PR_CAPBSET_DROP, u64::from(n), 0, 0, 0],
            )?;
        }
    }

    // Securebits (PR_SET_KEEPCAPS alone needs no capability).
    let cur = c.confine(
        "securebits",
        "prctl(PR_GET_SECUREBITS)",
        libc::SYS_prctl,
        &[PR_GET_SECUREBITS, 0, 0, 0, 0],
    )? as u32;
    if cur != want.securebits {
        if cur ^ want.securebits == sb::KEEP_CAPS {
            let on = u64::from(want.securebits & sb::KEEP_CAPS != 0);
            c.confine(
                "securebits",
                &format!("prctl(PR_SET_KEEPCAPS, {on})"),
                libc::SYS_prctl,
                &[PR_SET_KEEPCAPS, on, 0, 0, 0],
            )?;
        } else {
            c.confine(
                "securebits",
                &format!("prctl(PR_SET_SECUREBITS, {:#x})", want.securebits),
                libc::SYS_prctl,
                &[PR_SET_SECUREBITS, u64::from(want.securebits), 0, 0, 0],
            )?;
        }
    }

    // seccomp(2) without no_new_privs needs CAP_SYS_ADMIN in the task.
    let filters = match plan.seccomp {
        SeccompMode::Filter => plan.seccomp_filters.as_slice(),
        _ => &[],
    };
    let sys_admin = 1u64 << cap::SYS_ADMIN;
    let admin_for_filters =
        !filters.is_empty() && !plan.no_new_privs && want.caps.effective & sys_admin == 0;
    let final_caps = |c: &mut Ctx<'_>| {
        c.capset(
            want.caps.effective,
            want.caps.permitted,
            want.caps.inheritable,
        )
    };
    if admin_for_filters {
        c.capset(
            base_eff | (sys_admin & id.permitted),
            id.permitted,
            want.caps.inheritable,
        )?;
    } else {
        final_caps(&mut c)?;
    }
    let flags = if opts.tsync {
        SECCOMP_FILTER_FLAG_TSYNC
    } else {
        0
    };
    for (i, prog) in filters.iter().enumerate() {
        let prog_at = c.write(SOCK_FPROG_LEN as u64, prog)?;
        let fprog_at = c.write(0, &sock_fprog(prog.len(), prog_at))?;
        let what = format!("seccomp filter {} of {}", i + 1, filters.len());
        let r = c.confine(
            &what,
            "seccomp(SECCOMP_SET_MODE_FILTER)",
            libc::SYS_seccomp,
            &[SECCOMP_SET_MODE_FILTER, flags, fprog_at],
        )?;
        if r != 0 {
            // With TSYNC, a positive value is a thread that could not sync.
            return Err(SecurityApplyError::Confinement {
                tid,
                what,
                call: format!("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC) (thread {r} could not be synchronised)"),
                errno: libc::ESRCH,
            });
        }
    }
    if admin_for_filters {
        final_caps(&mut c)?;
    }
    if plan.seccomp == SeccompMode::Strict {
        c.confine(
            "seccomp strict mode",
            "prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)",
            libc::SYS_prctl,
            &[PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// Memory [`apply_confinement`] needs for `plan`.
pub fn confinement_memory(plan: &TaskPlan) -> u64 {
    let largest = plan.seccomp_filters.iter().map(Vec::len).max().unwrap_or(0) as u64;
    (SOCK_FPROG_LEN as u64 + largest).max(CAP_AREA)
}

/// Checks the restored task's /proc status against the plan: ids,
/// groups, the five capability sets, no_new_privs and seccomp. `bounding`
/// is the bounding set it must have (the image's within the restorer's),
/// `inherited_filters` the filters it inherited from ckpt itself.
pub fn verify_status(
    plan: &TaskPlan,
    status: &str,
    bounding: u64,
    inherited_filters: u32,
) -> Result<(), SecurityApplyError> {
    let tid = plan.tid;
    let st = lsm_labels::taskstate::parse_status(status)
        .map_err(|what| SecurityApplyError::Mismatch { tid, what })?;
    let want = &plan.creds;
    let mut bad = Vec::new();
    if st.uids != want.uids {
        bad.push(format!("uids {:?} (want {:?})", st.uids, want.uids));
    }
    if st.gids != want.gids {
        bad.push(format!("gids {:?} (want {:?})", st.gids, want.gids));
    }
    if sorted(&st.groups) != sorted(&want.groups) {
        bad.push(format!("groups {:?} (want {:?})", st.groups, want.groups));
    }
    let (h, w) = (st.caps, want.caps);
    for (name, have, wanted) in [
        ("CapInh", h.inheritable, w.inheritable),
        ("CapPrm", h.permitted, w.permitted),
        ("CapEff", h.effective, w.effective),
        ("CapAmb", h.ambient, w.ambient & w.permitted & w.inheritable),
        ("CapBnd", h.bounding, bounding),
    ] {
        if have != wanted {
            bad.push(format!("{name} {have:#x} (want {wanted:#x})"));
        }
    }
    if plan.no_new_privs && !st.no_new_privs {
        bad.push("no_new_privs is off".into());
    }
    if plan.seccomp != SeccompMode::Disabled && st.seccomp != plan.seccomp {
        bad.push(format!(
            "seccomp mode {:?} (want {:?})",
            st.seccomp, plan.seccomp
        ));
    }
    if let (SeccompMode::Filter, Some(n)) = (plan.seccomp, st.seccomp_filters) {
        let want_n = plan.seccomp_filters.len() as u32 + inherited_filters;
        if n != want_n {
            bad.push(format!("{n} seccomp filters (want {want_n})"));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(SecurityApplyError::Mismatch {
            tid,
            what: bad.join(", "),
        })
    }
}

#[cfg(test)]
mod tests;
