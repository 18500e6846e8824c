//! `restore --pid-ns` (DESIGN 2): restoring into a new PID namespace where
//! the checkpointed PID is free, with ckpt as the namespace's init.
//!
//! ckpt forks an init into new PID and mount namespaces (and a new user
//! namespace when the caller lacks CAP_SYS_ADMIN: the parent then maps only
//! the caller's own uid and gid into it and denies setgroups, as the kernel
//! requires of an unprivileged writer). The init mounts a fresh /proc, so
//! that /proc shows the new namespace, and runs the ordinary restore there:
//! the same verdict plan, the same checks, the same order. It reports the
//! outcome to the parent over a pipe, then stays as init: it reaps orphans
//! and exits with the restored process's status (128+N for signal N), which
//! the parent passes on. Inside a user namespace, capabilities give nothing
//! outside it, so an unprivileged caller gains nothing on the host.

use crate::error::RestoreError;
use crate::model::ProcessState;
use crate::stdio_handover::StdioHandover;
use crate::{sys, RestoreOptions, RestoredProcess};
use image_format::VerifiedImage;
use lsm_labels::verdict::RestorePlan;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

fn ns_err(pid: i32, what: &str) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Namespace {
        pid,
        what: what.to_string(),
        source,
    }
}

/// The outcome line the init sends: `ok` then one file per line, or
/// `err <0|1 security> <message>`.
fn encode_outcome(r: &Result<RestoredProcess, RestoreError>) -> String {
    match r {
        Ok(p) => {
            let mut s = String::from("ok\n");
            for f in p.files_opened_as_caller() {
                s.push_str(&f.replace('\n', " "));
                s.push('\n');
            }
            s
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            format!(
                "err {} {}",
                u8::from(e.is_security_refusal()),
                msg.replace('\n', " ")
            )
        }
    }
}

pub fn restore_in_new_pid_ns(
    image: &VerifiedImage,
    plan: &RestorePlan,
    opts: &RestoreOptions,
    state: &ProcessState,
    stdio: &StdioHandover,
) -> Result<RestoredProcess, RestoreError> {
    let pid = state.pid;
    // The verdict decided whether a user namespace is needed (and resolved
    // the credentials for it); follow it.
    let unprivileged = plan.new_user_namespace;
    let (report_r, report_w) = nix::unistd::pipe().map_err(|e| ns_err(pid, "pipe")(e.into()))?;
    let (go_r, go_w) = nix::unistd::pipe().map_err(|e| ns_err(pid, "pipe")(e.into()))?;
    let (euid, egid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    let mut flags = (libc::CLONE_NEWPID | libc::CLONE_NEWNS) as u64;
    if unprivileged {
        flags |= libc::CLONE_NEWUSER as u64;
    }
    let init = sys::fork_into_namespaces(flags).map_err(ns_err(
        pid,
        if unprivileged {
            "clone3(CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNS) (are unprivileged user namespaces enabled?)"
        } else {
            "clone3(CLONE_NEWPID|CLONE_NEWNS)"
        },
    ))?;
    if init == 0 {
        drop(report_r);
        drop(go_w);
        let code = init_main(image, plan, opts, state, stdio, report_w, go_r);
        std::process::exit(code);
    }
    drop(report_w);
    drop(go_r);
    let kill_init = || {
        let _ = nix::sys::signal::kill(Pid::from_raw(init), nix::sys::signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(init), None);
    };
    if unprivileged {
        let maps = [
            ("setgroups", "deny\n".to_string()),
            ("uid_map", format!("{euid} {euid} 1\n")),
            ("gid_map", format!("{egid} {egid} 1\n")),
        ];
        for (file, text) in maps {
            if let Err(e) = std::fs::write(format!("/proc/{init}/{file}"), text) {
                kill_init();
                return Err(ns_err(pid, &format!("write /proc/{init}/{file}"))(e));
            }
        }
    }
    let mut go = std::fs::File::from(go_w);
    if let Err(e) = go.write_all(b"g") {
        kill_init();
        return Err(ns_err(pid, "start the namespace init")(e));
    }
    drop(go);
    let mut report = String::new();
    let mut rf = std::fs::File::from(report_r);
    if let Err(e) = Read::by_ref(&mut rf)
        .take(1 << 20)
        .read_to_string(&mut report)
    {
        kill_init();
        return Err(ns_err(pid, "read the namespace init's report")(e));
    }
    if let Some(rest) = report.strip_prefix("ok\n") {
        let files = rest.lines().map(str::to_string).collect();
        // The init's only child is the restored process; the host sees it
        // under another PID than the one it keeps inside the namespace.
        let outer = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()));
        return match outer {
            Some(outer) => Ok(RestoredProcess::in_namespace(outer, init, files)),
            None => {
                kill_init();
                Err(RestoreError::InNamespace {
                    pid,
                    message: format!(
                        "the restored process of pid {pid} ended before ckpt could see it"
                    ),
                    security: false,
                })
            }
        };
    }
    let _ = waitpid(Pid::from_raw(init), None);
    let (security, message) = match report.strip_prefix("err ") {
        Some(r) => (
            r.starts_with('1'),
            r.get(2..).unwrap_or("").trim_end().to_string(),
        ),
        None => (
            false,
            format!("the namespace init of pid {pid} ended without a report"),
        ),
    };
    Err(RestoreError::InNamespace {
        pid,
        message,
        security,
    })
}

/// The namespace's init: runs the restore, reports, then reaps until the
/// restored process ends and returns its status as this process's code.
fn init_main(
    image: &VerifiedImage,
    plan: &RestorePlan,
    opts: &RestoreOptions,
    state: &ProcessState,
    stdio: &StdioHandover,
    report_w: OwnedFd,
    go_r: OwnedFd,
) -> i32 {
    let mut report = std::fs::File::from(report_w);
    let mut go = [0u8; 1];
    if std::fs::File::from(go_r).read_exact(&mut go).is_err() {
        return 1;
    }
    let result = sys::mount_private_proc()
        .map_err(ns_err(state.pid, "give the namespace its own /proc"))
        .and_then(|()| crate::restore_here(image, plan, opts, state, stdio));
    let _ = report.write_all(encode_outcome(&result).as_bytes());
    drop(report);
    // The restored process has taken whatever stdio it inherits; the init
    // lets go of the caller's, so that a caller reading ckpt's output (a
    // pipe) sees it end when ckpt returns, not when the namespace does.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    let restored = match result {
        Ok(p) => p.pid(),
        Err(_) => return 1,
    };
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == restored => return c,
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == restored => return 128 + s as i32,
            Err(nix::errno::Errno::ECHILD) => return 0,
            _ => continue,
        }
    }
}
