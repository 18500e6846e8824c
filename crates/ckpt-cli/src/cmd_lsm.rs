//! `ckpt lsm [--pid PID] [--json] [--sysroot DIR]`: this host's LSM stack
//! with a policy fingerprint per LSM, or one task's security state.

use crate::failure::OrFail;
use crate::{Failure, LsmArgs};
use lsm_labels::{taskstate, HostProfile, HostView, TaskSecurity};

/// Detects the profile of this host (or of a sysroot copy).
pub fn host_profile(sysroot: Option<&std::path::Path>) -> Result<HostProfile, Failure> {
    let view = match sysroot {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(Failure::operational(anyhow::anyhow!(
                    "sysroot {} is not a directory; give the root of a copied host tree",
                    dir.display()
                )));
            }
            HostView::sysroot(dir)
        }
        None => HostView::live(),
    };
    lsm_labels::detect_host_profile(&view).or_fail(|| "cannot detect the LSM stack".into())
}

pub fn run(a: &LsmArgs) -> Result<u8, Failure> {
    if let Some(pid) = a.pid {
        return run_task(a, pid);
    }
    let profile = host_profile(a.sysroot.as_deref())?;
    if a.json {
        println!("{}", crate::cmd_inspect::versioned_json(&profile));
    } else {
        print_profile(&profile);
    }
    Ok(0)
}

pub fn print_profile(p: &HostProfile) {
    println!(
        "kernel {} {}; LSM stack (kernel order, from {}): {}",
        p.kernel_release,
        p.arch,
        match p.stack_source {
            lsm_labels::StackSource::Syscall => "lsm_list_modules",
            lsm_labels::StackSource::Securityfs => "securityfs",
            lsm_labels::StackSource::Recorded => "a recorded profile",
        },
        p.stack().join(",")
    );
    for l in &p.lsms {
        let fp = &l.fingerprint;
        match &fp.digest {
            Some(d) => print!("  {:<10} {}", l.name, d),
            None => print!("  {:<10} unknown", l.name),
        }
        if let Some(v) = &fp.version {
            print!("  version {v}");
        }
        println!("  ({} components)", fp.components.len());
        if let Some(n) = &fp.note {
            println!("  {:<10} note: {n}", "");
        }
    }
}

fn run_task(a: &LsmArgs, pid: i32) -> Result<u8, Failure> {
    let view = match &a.sysroot {
        Some(dir) => HostView::sysroot(dir),
        None => HostView::live(),
    };
    let state = taskstate::read_task_state(&view, pid)
        .or_fail(|| format!("cannot read the security state of pid {pid}"))?;
    if a.json {
        println!("{}", crate::cmd_inspect::versioned_json(&state));
        return Ok(0);
    }
    println!("pid {pid}: {} thread(s)", state.threads.len());
    for (t, filters) in state.threads.iter().zip(&state.seccomp_filter_counts) {
        print_thread(t, *filters);
    }
    let s = &state.sandbox;
    println!(
        "sandboxed: {}{}",
        if s.sandboxed { "yes" } else { "not detected" },
        if s.reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.reasons.join("; "))
        }
    );
    if !s.limits.is_empty() {
        println!("  limits: {}", s.limits);
    }
    for n in &state.notes {
        println!("note: {n}");
    }
    Ok(0)
}

fn print_thread(t: &TaskSecurity, filters: Option<u32>) {
    let c = &t.creds;
    println!("  thread {}:", t.tid);
    println!(
        "    uid {:?} gid {:?} groups {:?}",
        c.uids, c.gids, c.groups
    );
    println!(
        "    CapInh {:016x} CapPrm {:016x} CapEff {:016x} CapBnd {:016x} CapAmb {:016x}",
        c.caps.inheritable, c.caps.permitted, c.caps.effective, c.caps.bounding, c.caps.ambient
    );
    println!(
        "    NoNewPrivs {} Seccomp {}{}",
        u8::from(t.no_new_privs),
        t.seccomp.as_status(),
        filters
            .map(|n| format!(" ({n} filters)"))
            .unwrap_or_default()
    );
    if t.labels.is_empty() {
        println!("    labels: none (no LSM on this host exposes task labels)");
    }
    for l in &t.labels {
        let lsm = if l.lsm.is_empty() { "(legacy)" } else { &l.lsm };
        println!(
            "    label {lsm}/{}: {}",
            l.attr,
            String::from_utf8_lossy(&l.value).trim_end_matches(['\0', '\n'])
        );
    }
}
