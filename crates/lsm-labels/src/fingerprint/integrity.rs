//! Providers for the integrity LSMs: IMA (its policy rules), EVM (its mode
//! and extra xattr list) and IPE (enforce + the active policy).

use super::{describe, read_trimmed, sorted_lines, trimmed, Collector};
use crate::host::{HostView, MAX_DIR_ENTRIES, MAX_POLICY_TEXT_BYTES, MAX_TEXT_BYTES};
use crate::profile::PolicyFingerprint;

/// First existing path of `candidates` (securityfs moved IMA/EVM under
/// `integrity/` in Linux 6.x and left `ima`/`evm` symlinks behind).
fn first_existing<'a>(view: &HostView, candidates: &[&'a str]) -> Option<&'a str> {
    candidates.iter().copied().find(|p| view.exists(p))
}

/// Line endings normalised, blank lines dropped, order kept (IMA rules are
/// evaluated first match first).
fn ordered_lines(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

/// IMA: component `ima/policy`, the rule list in order. Reading it needs
/// CONFIG_IMA_READ_POLICY (otherwise EACCES: unknown with that reason).
pub fn ima(view: &HostView) -> PolicyFingerprint {
    let mut c = Collector::default();
    match first_existing(view, &["/sys/kernel/security/integrity/ima/policy", "/sys/kernel/security/ima/policy"]) {
        Some(p) => match view.read_text(p, MAX_POLICY_TEXT_BYTES) {
            Ok(t) => c.push(super::component("ima/policy", ordered_lines(&t).as_bytes())),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => c.problem(format!(
                "{} is not readable (EACCES): the kernel was built without CONFIG_IMA_READ_POLICY, or ckpt is not root",
                view.path(p).display()
            )),
            Err(e) => c.problem(describe(&e)),
        },
        None => c.problem("no IMA policy file under /sys/kernel/security/{integrity/ima,ima}/policy"),
    }
    c.finish("ima")
}

/// EVM: component `evm/mode` (the initialisation flags number) and, when
/// the kernel has CONFIG_EVM_ADD_XATTRS, `evm/xattrs` (sorted names).
pub fn evm(view: &HostView) -> PolicyFingerprint {
    let mut c = Collector::default();
    match first_existing(
        view,
        &[
            "/sys/kernel/security/integrity/evm/evm",
            "/sys/kernel/security/evm",
        ],
    ) {
        Some(p) => {
            c.text_file(view, "evm/mode", p, MAX_TEXT_BYTES, true, trimmed);
        }
        None => c.problem("no EVM mode file under /sys/kernel/security/{integrity/evm/evm,evm}"),
    }
    if let Some(p) = first_existing(
        view,
        &[
            "/sys/kernel/security/integrity/evm/evm_xattrs",
            "/sys/kernel/security/evm_xattrs",
        ],
    ) {
        c.text_file(view, "evm/xattrs", p, MAX_TEXT_BYTES, true, sorted_lines);
    }
    c.finish("evm")
}

/// IPE directory in securityfs.
pub const IPE: &str = "/sys/kernel/security/ipe";

/// IPE: `ipe/enforce` and `ipe/active_policy/<name>` over the active
/// policy's text. Inactive policies decide nothing and are left out;
/// `success_audit` only changes logging.
pub fn ipe(view: &HostView) -> PolicyFingerprint {
    let mut c = Collector::default();
    c.text_file(
        view,
        "ipe/enforce",
        &format!("{IPE}/enforce"),
        MAX_TEXT_BYTES,
        true,
        trimmed,
    );
    let pdir = format!("{IPE}/policies");
    match view.list_dir(&pdir, MAX_DIR_ENTRIES) {
        Ok(entries) => {
            for e in entries.into_iter().filter(|e| e.is_dir) {
                let dir = format!("{pdir}/{}", e.name);
                match read_trimmed(view, &format!("{dir}/active")) {
                    Ok(a) if a == "1" => {
                        c.text_file(
                            view,
                            &format!("ipe/active_policy/{}", e.name),
                            &format!("{dir}/policy"),
                            MAX_POLICY_TEXT_BYTES,
                            true,
                            ordered_lines,
                        );
                        if let Ok(v) = read_trimmed(view, &format!("{dir}/version")) {
                            c.version = Some(v);
                        }
                    }
                    Ok(_) => {}
                    Err(err) => c.problem(describe(&err)),
                }
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => c.problem(describe(&e)),
    }
    c.finish("ipe")
}
