//! The security state of a frozen task (credentials, capability sets,
//! labels per LSM, no_new_privs, seccomp mode), read through lsm-labels
//! while the task is stopped so that it cannot change under the dump, and
//! stored in the task's `ProcessRecord.security` for the restore verdict.

use crate::error::DumpError;
use image_format::records::TaskSecurityRecord;
use lsm_labels::persist::Persist;
use lsm_labels::{taskstate, HostView};

/// Reads the security state of thread `tid` of `pid`.
pub fn read_task_security(pid: i32, tid: i32) -> Result<TaskSecurityRecord, DumpError> {
    let (sec, _filters, _notes) = taskstate::read_thread_security(&HostView::live(), pid, tid)
        .map_err(|e| DumpError::Security {
            pid,
            detail: e.to_string(),
        })?;
    Ok(sec.to_record())
}
