//! DESIGN 3 rule 2's second half: a label is also confinement. Without
//! `--keep-lsm`, a task whose recorded label confined it (an AppArmor or
//! TOMOYO profile other than `unconfined`, a SELinux domain or Smack label
//! other than the caller's) would run less confined with the caller's
//! label, so the restore is refused unless the operator accepts that
//! (`--lsm-as-caller`, listing each label given up) or names the label to
//! use (`--lsm-label LSM:LABEL`, checked and applied like a kept one).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{trim_label, CallerContext, LABEL_LSMS};
use crate::profile::HostProfile;
use crate::task::TaskLabel;

/// Longest label `--lsm-label` accepts (the kernel's attr writes take a page).
const MAX_CHOSEN_LABEL: usize = 4095;

/// A label the operator names with `--lsm-label LSM:LABEL`: every restored
/// task gets it as its `current` label of `lsm`, instead of the image's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenLabel {
    pub lsm: String,
    pub label: String,
}

/// Why an `--lsm-label` argument is malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--lsm-label {arg:?}: {why}; write it as LSM:LABEL, e.g. apparmor:my_profile or selinux:system_u:system_r:my_t:s0")]
pub struct ChosenLabelError {
    pub arg: String,
    pub why: &'static str,
}

impl FromStr for ChosenLabel {
    type Err = ChosenLabelError;
    fn from_str(arg: &str) -> Result<Self, Self::Err> {
        let err = |why| ChosenLabelError {
            arg: arg.to_owned(),
            why,
        };
        let (lsm, label) = arg
            .split_once(':')
            .ok_or_else(|| err("no ':' after the LSM name"))?;
        if lsm.is_empty() || !lsm.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(err(
                "the LSM name must be a lower-case name such as apparmor",
            ));
        }
        if label.is_empty() || label.len() > MAX_CHOSEN_LABEL {
            return Err(err("the label must have 1 to 4095 bytes"));
        }
        if label.bytes().any(|b| b == 0 || b == b'\n') {
            return Err(err("the label must not contain NUL or newline"));
        }
        Ok(ChosenLabel {
            lsm: lsm.to_owned(),
            label: label.to_owned(),
        })
    }
}

impl ChosenLabel {
    /// The label as a task writes it.
    pub fn as_task_label(&self) -> TaskLabel {
        TaskLabel {
            lsm: self.lsm.clone(),
            attr: "current".into(),
            value: self.label.clone().into_bytes(),
        }
    }
}

impl fmt::Display for ChosenLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.lsm, self.label)
    }
}

/// A confining label the restore gives up (`--lsm-as-caller`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GivenUpLabel {
    pub tid: i32,
    pub lsm: String,
    pub label: String,
}

impl fmt::Display for GivenUpLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {} {} {:?}", self.tid, self.lsm, self.label)
    }
}

/// An AppArmor label as read (`name (mode)`) without its mode.
fn apparmor_name(label: &str) -> &str {
    match label.rsplit_once(" (") {
        Some((name, mode)) if mode.ends_with(')') => name,
        _ => label,
    }
}

/// The caller's `current` label of `lsm`: its own attribute, or the legacy
/// one when `lsm` is the host's first label LSM (the one the legacy files
/// show).
pub(super) fn caller_label(
    caller: &CallerContext,
    host: &HostProfile,
    lsm: &str,
) -> Option<Vec<u8>> {
    let own = caller
        .labels
        .iter()
        .find(|l| l.lsm == lsm && l.attr == "current");
    let display = host.stack().into_iter().find(|n| LABEL_LSMS.contains(n));
    let legacy = || {
        caller
            .labels
            .iter()
            .find(|l| l.lsm.is_empty() && l.attr == "current" && display == Some(lsm))
    };
    own.or_else(legacy)
        .map(|l| trim_label(&l.value).to_vec())
        .filter(|v| !v.is_empty())
}

/// Whether running with `caller` instead of the recorded `current` label
/// `recorded` of `lsm` makes the task less confined.
pub(super) fn is_confining(lsm: &str, recorded: &[u8], caller: Option<&[u8]>) -> bool {
    let text = String::from_utf8_lossy(recorded);
    match lsm {
        "apparmor" | "tomoyo" => apparmor_name(&text) != "unconfined",
        "selinux" | "smack" => caller != Some(recorded),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_label_parses_lsm_and_label_at_the_first_colon() {
        let c: ChosenLabel = "selinux:system_u:system_r:fx_t:s0".parse().unwrap();
        assert_eq!(c.lsm, "selinux");
        assert_eq!(c.label, "system_u:system_r:fx_t:s0");
        assert_eq!(c.to_string(), "selinux:system_u:system_r:fx_t:s0");
        let t = c.as_task_label();
        assert_eq!(
            (t.attr.as_str(), t.value.as_slice()),
            ("current", &b"system_u:system_r:fx_t:s0"[..])
        );
    }

    #[test]
    fn chosen_label_rejects_malformed_arguments() {
        for bad in [
            "apparmor",
            ":x",
            "apparmor:",
            "AppArmor:x",
            "app-armor:x",
            "apparmor:a\nb",
            "smack:a\0b",
        ] {
            let e = bad.parse::<ChosenLabel>().unwrap_err();
            assert!(e.to_string().contains("LSM:LABEL"), "{bad:?}: {e}");
        }
        let long = format!("smack:{}", "x".repeat(MAX_CHOSEN_LABEL + 1));
        assert!(long.parse::<ChosenLabel>().is_err());
    }

    #[test]
    fn apparmor_and_tomoyo_confine_unless_unconfined() {
        assert!(is_confining(
            "apparmor",
            b"ckpt_fx (enforce)",
            Some(b"unconfined")
        ));
        assert!(is_confining("apparmor", b"ckpt_fx (complain)", None));
        assert!(!is_confining(
            "apparmor",
            b"unconfined",
            Some(b"ckpt_fx (enforce)")
        ));
        assert!(is_confining("tomoyo", b"<kernel> /sbin/init", None));
    }

    #[test]
    fn selinux_and_smack_confine_unless_the_callers_own() {
        let me = b"unconfined_u:unconfined_r:unconfined_t:s0";
        assert!(!is_confining("selinux", me, Some(me)));
        assert!(is_confining(
            "selinux",
            b"system_u:system_r:fx_t:s0",
            Some(me)
        ));
        assert!(
            is_confining("selinux", me, None),
            "no caller label on this host: cannot match"
        );
        assert!(!is_confining("smack", b"_", Some(b"_")));
        assert!(is_confining("smack", b"Fx", Some(b"_")));
        assert!(!is_confining("landlock", b"x", None));
    }
}
