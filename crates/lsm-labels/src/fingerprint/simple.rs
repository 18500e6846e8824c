//! Providers for LSMs whose policy is one or two small values: capability
//! and landlock (no global policy), lockdown (mode), yama (ptrace_scope),
//! loadpin (enforce sysctl) and safesetid (uid/gid allow-lists).

use super::{component, read_trimmed, sorted_lines, trimmed, Collector};
use crate::host::{HostView, MAX_POLICY_TEXT_BYTES};
use crate::profile::PolicyFingerprint;

/// capability: no loadable policy; the digest over no components is fixed.
pub fn capability() -> PolicyFingerprint {
    PolicyFingerprint::from_components(Vec::new(), None)
}

/// landlock: no global policy (rulesets belong to tasks); the ABI version,
/// from `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`,
/// is the version. No file exposes it, so a sysroot gives unknown.
pub fn landlock(view: &HostView) -> PolicyFingerprint {
    if !view.is_live() {
        return PolicyFingerprint::unknown(
            "the Landlock ABI version is only available from the landlock_create_ruleset syscall on the live host, not from a sysroot",
            Vec::new(),
            None,
        );
    }
    match crate::sys::landlock_abi_version() {
        Ok(v) => PolicyFingerprint::from_components(Vec::new(), Some(v.to_string())),
        Err(e) => PolicyFingerprint::unknown(
            format!("landlock_create_ruleset(LANDLOCK_CREATE_RULESET_VERSION) failed: {e}"),
            Vec::new(),
            None,
        ),
    }
}

/// The bracketed word of `none [integrity] confidentiality`.
pub fn parse_lockdown(text: &str) -> Option<&str> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    let w = &text[start..end];
    (!w.is_empty()).then_some(w)
}

/// Path of the lockdown mode file.
pub const LOCKDOWN: &str = "/sys/kernel/security/lockdown";

/// lockdown: component `lockdown/mode` = the selected mode word.
pub fn lockdown(view: &HostView) -> PolicyFingerprint {
    match read_trimmed(view, LOCKDOWN) {
        Ok(t) => match parse_lockdown(&t) {
            Some(mode) => PolicyFingerprint::from_components(
                vec![component("lockdown/mode", mode.as_bytes())],
                None,
            ),
            None => PolicyFingerprint::unknown(
                format!(
                    "{} has no [selected] mode: {t:?}",
                    view.path(LOCKDOWN).display()
                ),
                Vec::new(),
                None,
            ),
        },
        Err(e) => PolicyFingerprint::unknown(super::describe(&e), Vec::new(), None),
    }
}

/// yama: component `yama/ptrace_scope` = the sysctl value (0..=3).
pub fn yama(view: &HostView) -> PolicyFingerprint {
    let mut c = Collector::default();
    c.text_file(
        view,
        "yama/ptrace_scope",
        "/proc/sys/kernel/yama/ptrace_scope",
        64,
        true,
        trimmed,
    );
    c.finish("yama")
}

/// loadpin: component `loadpin/enforce` (the sysctl). The pinned
/// filesystem itself is not exposed by the kernel (see the docs).
pub fn loadpin(view: &HostView) -> PolicyFingerprint {
    let mut c = Collector::default();
    c.text_file(
        view,
        "loadpin/enforce",
        "/proc/sys/kernel/loadpin/enforce",
        64,
        true,
        trimmed,
    );
    c.finish("loadpin")
}

/// safesetid: `safesetid/uid_allowlist_policy` and
/// `safesetid/gid_allowlist_policy` (rule lines, sorted; order does not
/// matter to the kernel's hash-table lookup). A missing file means the
/// kernel predates it (gid list: Linux 5.10) and is skipped.
pub fn safesetid(view: &HostView) -> PolicyFingerprint {
    let mut c = Collector::default();
    let base = "/sys/kernel/security/safesetid";
    for f in ["uid_allowlist_policy", "gid_allowlist_policy"] {
        c.text_file(
            view,
            &format!("safesetid/{f}"),
            &format!("{base}/{f}"),
            MAX_POLICY_TEXT_BYTES,
            false,
            sorted_lines,
        );
    }
    if c.components.is_empty() && c.problems.is_empty() {
        c.problem(format!(
            "no policy file under {}",
            view.path(base).display()
        ));
    }
    c.finish("safesetid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockdown_word() {
        assert_eq!(
            parse_lockdown("none [integrity] confidentiality\n"),
            Some("integrity")
        );
        assert_eq!(
            parse_lockdown("[none] integrity confidentiality"),
            Some("none")
        );
        assert_eq!(parse_lockdown("none integrity"), None);
        assert_eq!(parse_lockdown("[]"), None);
    }

    #[test]
    fn capability_is_fixed() {
        assert_eq!(capability(), capability());
        assert!(capability().digest.is_some());
    }
}
