//! Glue between the restore's rebuild order (restore.rs) and the security
//! steps of [`crate::security_apply`]: which task plan applies, when the
//! identity is taken (before files and mappings are opened, or after them
//! with `--files-as-caller`), which engine steps may briefly use the
//! capabilities the restorer had, the memory the last steps borrow, and
//! the final check of the restored task against the plan.

use lsm_labels::creds_rules::cap;
use lsm_labels::task::{SeccompMode, TaskCreds};
use lsm_labels::verdict::{FileAuthority, RestorePlan, TaskPlan};

use crate::error::RestoreError;
use crate::model::{Vma, VmaBacking};
use crate::ptrace::{Tracee, Tracer};
use crate::security_apply::{
    self as apply, ConfinementOptions, Identity, SecurityApplyError, TaskMemory,
};
use crate::sys_security;

/// The security work of restoring one task. Created only inside the crate
/// from an approved plan, so no caller of the library can hand
/// [`crate::restore::rebuild`] a plan of its own.
#[derive(Clone, Debug)]
pub struct TaskSecurityPlan {
    pub(crate) plan: TaskPlan,
    /// The restorer's credentials (which the new task starts with).
    pub(crate) start: TaskCreds,
    /// `--files-as-caller`.
    pub(crate) files_as_caller: bool,
    /// seccomp filters the restorer itself runs under (inherited).
    pub(crate) inherited_filters: u32,
    pub(crate) last_cap: u32,
}

fn caller_creds() -> Result<(TaskCreds, bool, u32), RestoreError> {
    let text = std::fs::read_to_string("/proc/thread-self/status").map_err(|e| {
        RestoreError::Image(format!(
            "cannot read ckpt's own /proc/thread-self/status: {e}"
        ))
    })?;
    let st = lsm_labels::taskstate::parse_status(&text)
        .map_err(|e| RestoreError::Image(format!("cannot parse ckpt's own status: {e}")))?;
    Ok((
        TaskCreds {
            uids: st.uids,
            gids: st.gids,
            groups: st.groups,
            caps: st.caps,
            securebits: 0,
        },
        st.no_new_privs,
        st.seccomp_filters.unwrap_or(0),
    ))
}

impl TaskSecurityPlan {
    /// The plan for task `pid`, from the verdict's plan (which only an
    /// [`crate::ApprovedRestore`] carries into the engine).
    pub(crate) fn new(plan: &RestorePlan, pid: i32) -> Result<TaskSecurityPlan, RestoreError> {
        let (start, _caller_nnp, inherited_filters) = caller_creds()?;
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(cap::LAST);
        let task_plan = plan
            .tasks
            .iter()
            .find(|t| t.tid == pid)
            .cloned()
            .ok_or_else(|| {
                RestoreError::BadImage(format!("the restore plan has no entry for pid {pid}"))
            })?;
        Ok(TaskSecurityPlan {
            plan: task_plan,
            start,
            files_as_caller: plan.files_opened_by == FileAuthority::Caller,
            inherited_filters,
            last_cap,
        })
    }

    /// The bounding set the restored task ends with.
    pub fn bounding(&self) -> u64 {
        self.plan.creds.caps.bounding & self.start.caps.bounding
    }
}

/// The state of the security work during one rebuild.
pub struct SecurityRun<'a> {
    pub sec: &'a TaskSecurityPlan,
    pid: i32,
    identity: Option<Identity>,
    /// Files opened with the caller's authority (`--files-as-caller`).
    pub opened_as_caller: Vec<String>,
    /// PTRACE_O_SUSPEND_SECCOMP is set on the task.
    pub seccomp_suspended: bool,
    /// Install the seccomp filters with TSYNC (the process has threads).
    pub tsync: bool,
}

fn sec_err(pid: i32) -> impl Fn(SecurityApplyError) -> RestoreError {
    move |source| RestoreError::Security { pid, source }
}

impl<'a> SecurityRun<'a> {
    pub fn new(sec: &'a TaskSecurityPlan, pid: i32) -> Self {
        SecurityRun {
            sec,
            pid,
            identity: None,
            opened_as_caller: Vec::new(),
            seccomp_suspended: false,
            tsync: false,
        }
    }

    /// Right after the task is adopted: when it will get seccomp filters
    /// and ckpt may, suspend them while ckpt works in it (so that even the
    /// final capset is not subject to them). Detaching ends it.
    pub fn begin(&mut self, t: &mut Tracee) {
        if self.sec.plan.seccomp != SeccompMode::Disabled {
            let opts = sys_security::PTRACE_O_EXITKILL
                | sys_security::PTRACE_O_SUSPEND_SECCOMP
                | sys_security::PTRACE_O_TRACESYSGOOD
                | libc::PTRACE_O_TRACECLONE;
            self.seccomp_suspended = sys_security::ptrace_set_options(t.pid(), opts).is_ok();
        }
    }

    /// Whether files are opened now under the restored identity (rule 7).
    pub fn identity_applied(&self) -> bool {
        self.identity.is_some()
    }

    /// Before files and mappings are opened (`after_files` false), or
    /// after them with `--files-as-caller` (`after_files` true): the
    /// restored identity, labels and effective set.
    pub fn take_identity(
        &mut self,
        t: &mut Tracee,
        scratch: u64,
        scratch_len: u64,
        after_files: bool,
    ) -> Result<(), RestoreError> {
        if after_files != self.sec.files_as_caller || self.identity.is_some() {
            return Ok(());
        }
        let pid = self.pid;
        let mem = TaskMemory {
            addr: scratch,
            len: scratch_len,
        };
        let mut start = self.sec.start.clone();
        start.securebits = crate::security_dump::read_securebits(t).map_err(|e| {
            RestoreError::Image(format!(
                "cannot read the securebits of the new task {pid}: {e}"
            ))
        })?;
        let plan = &self.sec.plan;
        let id = apply::apply_identity(t, plan, &start, mem).map_err(sec_err(pid))?;
        apply::apply_labels(t, plan, mem).map_err(sec_err(pid))?;
        apply::enter_restored_effective(t, plan, &id, mem).map_err(sec_err(pid))?;
        self.identity = Some(id);
        Ok(())
    }

    /// A non-leader thread (created while the leader still had ckpt's
    /// credentials) takes the leader's plan: identity, labels, effective
    /// set, no_new_privs, bounding set, securebits and final capabilities.
    /// Its seccomp filters come from the leader's TSYNC install, after.
    pub fn thread_identity(
        &self,
        t: &mut Tracee,
        tid: i32,
        scratch: u64,
        scratch_len: u64,
    ) -> Result<(), RestoreError> {
        let mem = TaskMemory {
            addr: scratch,
            len: scratch_len,
        };
        let mut start = self.sec.start.clone();
        start.securebits = crate::security_dump::read_securebits(t).map_err(|e| {
            RestoreError::Image(format!(
                "cannot read the securebits of the new thread {tid}: {e}"
            ))
        })?;
        let mut plan = self.sec.plan.clone();
        plan.tid = tid;
        plan.seccomp = SeccompMode::Disabled;
        plan.seccomp_filters.clear();
        let id = apply::apply_identity(t, &plan, &start, mem).map_err(sec_err(tid))?;
        apply::apply_labels(t, &plan, mem).map_err(sec_err(tid))?;
        apply::enter_restored_effective(t, &plan, &id, mem).map_err(sec_err(tid))?;
        let opts = ConfinementOptions {
            tsync: false,
            last_cap: self.sec.last_cap,
        };
        apply::apply_confinement(t, &plan, &id, mem, opts).map_err(sec_err(tid))
    }

    /// Runs an engine step that needs capability mask `extra` (if the
    /// restorer has it) with it raised in the task.
    pub fn elevated<T>(
        &self,
        t: &mut Tracee,
        scratch: u64,
        extra: u64,
        step: impl FnOnce(&mut Tracee) -> Result<T, RestoreError>,
    ) -> Result<T, RestoreError> {
        let Some(id) = self.identity else {
            return step(t);
        };
        let mem = TaskMemory {
            addr: scratch,
            len: 64,
        };
        let plan = &self.sec.plan;
        let pid = self.pid;
        let caps = &plan.creds.caps;
        let eff = caps.effective & id.permitted;
        raise(
            t,
            pid,
            plan,
            mem,
            eff | (extra & id.permitted),
            id.permitted,
        )?;
        let r = step(t);
        raise(t, pid, plan, mem, eff, id.permitted)?;
        r
    }

    /// Records a file opened with the caller's authority: `opened` is what
    /// the task's new fd names (readlink of /proc/PID/fd/N), `recorded`
    /// the image's path, shown too when the two differ.
    pub fn note_open(&mut self, opened: &str, recorded: &str, what: &str) {
        if self.sec.files_as_caller && self.identity.is_none() {
            let entry = if opened == recorded {
                format!("{opened} ({what})")
            } else {
                format!("{opened} ({what}; the image recorded {recorded})")
            };
            self.opened_as_caller.push(entry);
        }
    }

    /// The error for a failed open inside the task.
    pub fn open_failed(&self, path: &str, what: &str, errno: i32) -> RestoreError {
        if self.identity.is_some() && matches!(errno, libc::EACCES | libc::EPERM) {
            return RestoreError::FileDenied {
                pid: self.pid,
                uid: self.sec.plan.creds.uids[1],
                path: path.to_string(),
                what: what.to_string(),
                errno,
            };
        }
        RestoreError::Open {
            pid: self.pid,
            path: path.to_string(),
            what: what.to_string(),
            errno,
        }
    }

    /// The last injected calls: no_new_privs, bounding set, securebits,
    /// final capabilities, seccomp. The scratch mapping is gone by now, so
    /// the memory is borrowed from the task's own writable memory and put
    /// back byte for byte afterwards. Then the task's /proc status is
    /// checked against the plan.
    pub fn confine(&mut self, t: &mut Tracee, vmas: &[Vma], rsp: u64) -> Result<(), RestoreError> {
        let pid = self.pid;
        let plan = &self.sec.plan;
        let id = match self.identity {
            Some(id) => id,
            // Not taken yet (cannot happen in the rebuild order): take no
            // credentials, keep what the task has.
            None => Identity {
                permitted: self.sec.start.caps.permitted,
            },
        };
        let need = apply::confinement_memory(plan);
        let addr = borrow_area(vmas, rsp, need).ok_or(RestoreError::Security {
            pid,
            source: SecurityApplyError::NoMemory { tid: pid, need },
        })?;
        let mut saved = vec![0u8; need as usize];
        t.read_mem(addr, &mut saved)
            .map_err(|source| RestoreError::Trace { pid, source })?;
        let opts = ConfinementOptions {
            tsync: self.tsync,
            last_cap: self.sec.last_cap,
        };
        let r = apply::apply_confinement(t, plan, &id, TaskMemory { addr, len: need }, opts);
        t.write_mem(addr, &saved)
            .map_err(|source| RestoreError::Trace { pid, source })?;
        r.map_err(sec_err(pid))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| RestoreError::Create { pid, source: e })?;
        apply::verify_status(
            plan,
            &status,
            self.sec.bounding(),
            self.sec.inherited_filters,
        )
        .map_err(sec_err(pid))
    }
}

/// One system call injected into the restored task that must succeed.
pub fn inject(
    t: &mut Tracee,
    pid: i32,
    what: &str,
    nr: i64,
    args: &[u64],
) -> Result<u64, RestoreError> {
    let v = t
        .syscall(nr, args)
        .map_err(|source| RestoreError::Trace { pid, source })?;
    if (-4095..0).contains(&v) {
        return Err(RestoreError::Injected {
            pid,
            call: what.to_string(),
            errno: (-v) as i32,
        });
    }
    Ok(v as u64)
}

fn raise(
    t: &mut Tracee,
    pid: i32,
    plan: &TaskPlan,
    mem: TaskMemory,
    eff: u64,
    perm: u64,
) -> Result<(), RestoreError> {
    let mut p = plan.clone();
    p.creds.caps.effective = eff;
    apply::enter_restored_effective(t, &p, &Identity { permitted: perm }, mem).map_err(sec_err(pid))
}

/// `need` bytes of the task's own writable, private memory: below the
/// stack pointer (past the red zone) when the stack has room, else the
/// start of the largest writable private mapping.
pub fn borrow_area(vmas: &[Vma], rsp: u64, need: u64) -> Option<u64> {
    let writable = |v: &&Vma| {
        v.prot & 2 != 0
            && !v.shared
            && matches!(v.backing, VmaBacking::Anonymous | VmaBacking::FilePrivate)
    };
    if let Some(stack) = vmas
        .iter()
        .filter(writable)
        .find(|v| v.start < rsp && rsp <= v.end)
    {
        let at = rsp.saturating_sub(256 + need) & !15;
        if at >= stack.start {
            return Some(at);
        }
    }
    vmas.iter()
        .filter(writable)
        .filter(|v| v.len() >= need)
        .max_by_key(|v| v.len())
        .map(|v| v.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(start: u64, end: u64, prot: u32, backing: VmaBacking) -> Vma {
        Vma {
            start,
            end,
            prot,
            shared: false,
            growsdown: false,
            madvise: 0,
            backing,
            may_write: false,
            name: String::new(),
            offset: 0,
            dev: 0,
            ino: 0,
            stamp: None,
        }
    }

    #[test]
    fn borrows_below_the_stack_pointer_past_the_red_zone() {
        let vmas = [
            vma(0x1000, 0x9000, 3, VmaBacking::Anonymous),
            vma(0x7ff0_0000, 0x7ff2_0000, 3, VmaBacking::Anonymous),
        ];
        let at = borrow_area(&vmas, 0x7ff1_f000, 100).unwrap();
        assert_eq!(at, (0x7ff1_f000 - 356) & !15);
        // Too close to the stack's start: the largest other mapping.
        assert_eq!(borrow_area(&vmas, 0x7ff0_0100, 4096), Some(0x7ff0_0000));
        let ro = [vma(0x1000, 0x9000, 1, VmaBacking::Anonymous)];
        assert_eq!(borrow_area(&ro, 0x8000, 16), None);
    }
}
