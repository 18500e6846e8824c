//! TOMOYO provider: `domain_policy`, `exception_policy`, `profile` and
//! `manager` under `/sys/kernel/security/tomoyo`; `version` as version.

use super::{read_trimmed, Collector};
use crate::host::{HostView, MAX_POLICY_TEXT_BYTES};
use crate::profile::PolicyFingerprint;

/// TOMOYO's securityfs directory.
pub const TOMOYO: &str = "/sys/kernel/security/tomoyo";

/// Per-domain flags that the kernel sets at run time (quota reached in
/// learning mode, a failed transition); they record events, not policy.
const DOMAIN_RUNTIME_FLAGS: &[&str] = &["quota_exceeded", "transition_failed"];

/// `domain_policy` without run-time flag lines and blank lines. Domain
/// order and ACL order are kept: the kernel prints them in its own order,
/// which changes only when policy is written.
pub fn normalise_domain_policy(s: &str) -> String {
    s.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !DOMAIN_RUNTIME_FLAGS.contains(l))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `profile` without `N-COMMENT=` lines (free text, no effect).
pub fn normalise_profile(s: &str) -> String {
    s.lines()
        .map(str::trim_end)
        .filter(|l| {
            if l.is_empty() {
                return false;
            }
            match l.split_once('-') {
                Some((n, rest)) => {
                    !(n.bytes().all(|b| b.is_ascii_digit()) && rest.starts_with("COMMENT="))
                }
                None => true,
            }
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn normalise_lines(s: &str) -> String {
    s.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The TOMOYO fingerprint.
pub fn fingerprint(view: &HostView) -> PolicyFingerprint {
    let mut c = Collector::default();
    let p = |f: &str| format!("{TOMOYO}/{f}");
    c.text_file(
        view,
        "tomoyo/domain_policy",
        &p("domain_policy"),
        MAX_POLICY_TEXT_BYTES,
        true,
        normalise_domain_policy,
    );
    c.text_file(
        view,
        "tomoyo/exception_policy",
        &p("exception_policy"),
        MAX_POLICY_TEXT_BYTES,
        true,
        normalise_lines,
    );
    c.text_file(
        view,
        "tomoyo/profile",
        &p("profile"),
        MAX_POLICY_TEXT_BYTES,
        true,
        normalise_profile,
    );
    c.text_file(
        view,
        "tomoyo/manager",
        &p("manager"),
        MAX_POLICY_TEXT_BYTES,
        true,
        normalise_lines,
    );
    c.version = read_trimmed(view, &p("version"))
        .ok()
        .filter(|v| !v.is_empty());
    c.finish("tomoyo")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_flags_and_comments_are_dropped() {
        let d = "<kernel>\nuse_profile 0\nuse_group 0\nquota_exceeded\n\n<kernel> /sbin/init\nuse_profile 1\n";
        assert_eq!(
            normalise_domain_policy(d),
            "<kernel>\nuse_profile 0\nuse_group 0\n<kernel> /sbin/init\nuse_profile 1\n"
        );
        let p = "PROFILE_VERSION=20150505\n0-COMMENT=-----Disabled Mode-----\n0-CONFIG={ mode=disabled }\n";
        assert_eq!(
            normalise_profile(p),
            "PROFILE_VERSION=20150505\n0-CONFIG={ mode=disabled }\n"
        );
    }
}
