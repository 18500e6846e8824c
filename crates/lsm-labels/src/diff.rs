//! The policy diff: an image's recorded [`HostProfile`] against a host's, per
//! LSM (same / changed with the components added, removed and changed /
//! unknown / only on one side) plus whether the stacks are equal. This is
//! what `ckpt policy-diff` prints before the verdict, in text and JSON.

use std::fmt;

use serde::Serialize;

use crate::profile::{HostProfile, LsmEntry, PolicyFingerprint};

/// How one LSM's policy compares between the image and the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LsmStatus {
    /// Both digests known and equal.
    Same,
    /// Both digests known and different. Component names are those of the
    /// fingerprints (`selinux/boolean/httpd_can_network_connect`).
    Changed {
        /// Components only on the host.
        added: Vec<String>,
        /// Components only in the image.
        removed: Vec<String>,
        /// Components on both sides with different digests.
        changed: Vec<String>,
        /// `(image, host)` policy versions, when they differ.
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<(Option<String>, Option<String>)>,
    },
    /// The policy could not be read on one side or both; compares as
    /// different.
    Unknown { reason: String },
    /// Active when the image was made, not on the host.
    OnlyInImage,
    /// Active on the host, not when the image was made.
    OnlyOnHost,
}

impl LsmStatus {
    /// Same policy on both sides.
    pub fn is_same(&self) -> bool {
        matches!(self, LsmStatus::Same)
    }
}

/// One LSM in the diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LsmDiff {
    pub name: String,
    #[serde(flatten)]
    pub status: LsmStatus,
}

/// The diff of two profiles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyDiff {
    /// The image's stack in kernel order.
    pub image_stack: Vec<String>,
    /// The host's stack in kernel order.
    pub host_stack: Vec<String>,
    /// Same LSMs in the same order.
    pub stack_equal: bool,
    /// The union of both stacks: the image's LSMs in its kernel order, then
    /// the host-only ones in the host's order.
    pub lsms: Vec<LsmDiff>,
    /// `(image, host)` kernel releases.
    pub kernel_release: (String, String),
    /// `(image, host)` architectures.
    pub arch: (String, String),
}

impl PolicyDiff {
    /// Compare `image` (the profile recorded at dump) with `host`.
    pub fn compute(image: &HostProfile, host: &HostProfile) -> Self {
        let mut lsms: Vec<LsmDiff> = image
            .lsms
            .iter()
            .map(|i| LsmDiff {
                name: i.name.clone(),
                status: match host.lsm(&i.name) {
                    Some(h) => compare(i, h),
                    None => LsmStatus::OnlyInImage,
                },
            })
            .collect();
        lsms.extend(
            host.lsms
                .iter()
                .filter(|h| image.lsm(&h.name).is_none())
                .map(|h| LsmDiff {
                    name: h.name.clone(),
                    status: LsmStatus::OnlyOnHost,
                }),
        );
        let image_stack: Vec<String> = image.stack().into_iter().map(String::from).collect();
        let host_stack: Vec<String> = host.stack().into_iter().map(String::from).collect();
        PolicyDiff {
            stack_equal: image_stack == host_stack,
            image_stack,
            host_stack,
            lsms,
            kernel_release: (image.kernel_release.clone(), host.kernel_release.clone()),
            arch: (image.arch.clone(), host.arch.clone()),
        }
    }

    /// Same stack and every policy known and equal.
    pub fn policies_equal(&self) -> bool {
        self.stack_equal && self.lsms.iter().all(|l| l.status.is_same())
    }

    /// LSMs present on both sides whose policy differs or is unknown.
    pub fn differing(&self) -> impl Iterator<Item = &LsmDiff> {
        self.lsms.iter().filter(|l| {
            matches!(
                l.status,
                LsmStatus::Changed { .. } | LsmStatus::Unknown { .. }
            )
        })
    }
}

fn compare(image: &LsmEntry, host: &LsmEntry) -> LsmStatus {
    let (i, h) = (&image.fingerprint, &host.fingerprint);
    match (i.digest, h.digest) {
        (Some(a), Some(b)) if a == b => LsmStatus::Same,
        (Some(_), Some(_)) => changed(i, h),
        (None, None) => LsmStatus::Unknown {
            reason: format!(
                "unknown in the image ({}) and on the host ({})",
                note(i),
                note(h)
            ),
        },
        (None, Some(_)) => LsmStatus::Unknown {
            reason: format!("unknown in the image ({})", note(i)),
        },
        (Some(_), None) => LsmStatus::Unknown {
            reason: format!("unknown on the host ({})", note(h)),
        },
    }
}

fn note(f: &PolicyFingerprint) -> &str {
    f.note.as_deref().unwrap_or("policy not readable")
}

fn changed(i: &PolicyFingerprint, h: &PolicyFingerprint) -> LsmStatus {
    let in_image = |n: &str| i.components.iter().find(|c| c.name == n);
    let on_host = |n: &str| h.components.iter().find(|c| c.name == n);
    let added = h
        .components
        .iter()
        .filter(|c| in_image(&c.name).is_none())
        .map(|c| c.name.clone())
        .collect();
    let removed = i
        .components
        .iter()
        .filter(|c| on_host(&c.name).is_none())
        .map(|c| c.name.clone())
        .collect();
    let changed = i
        .components
        .iter()
        .filter(|c| on_host(&c.name).is_some_and(|hc| hc.digest != c.digest))
        .map(|c| c.name.clone())
        .collect();
    LsmStatus::Changed {
        added,
        removed,
        changed,
        version: (i.version != h.version).then(|| (i.version.clone(), h.version.clone())),
    }
}

impl fmt::Display for LsmStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LsmStatus::Same => f.write_str("same"),
            LsmStatus::Changed {
                added,
                removed,
                changed,
                version,
            } => {
                f.write_str("changed")?;
                let mut parts = Vec::new();
                if let Some((a, b)) = version {
                    parts.push(format!(
                        "version {} -> {}",
                        a.as_deref().unwrap_or("none"),
                        b.as_deref().unwrap_or("none")
                    ));
                }
                for (what, list) in [("added", added), ("removed", removed), ("changed", changed)] {
                    if !list.is_empty() {
                        parts.push(format!("{what}: {}", list.join(", ")));
                    }
                }
                if !parts.is_empty() {
                    write!(f, " ({})", parts.join("; "))?;
                }
                Ok(())
            }
            LsmStatus::Unknown { reason } => write!(f, "unknown: {reason}"),
            LsmStatus::OnlyInImage => f.write_str("only in the image (not active on this host)"),
            LsmStatus::OnlyOnHost => f.write_str("only on this host (not active at dump)"),
        }
    }
}

impl fmt::Display for PolicyDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "stack: image {} / host {} ({})",
            self.image_stack.join(","),
            self.host_stack.join(","),
            if self.stack_equal {
                "same"
            } else {
                "different"
            }
        )?;
        if self.kernel_release.0 != self.kernel_release.1 {
            writeln!(
                f,
                "kernel: image {} / host {}",
                self.kernel_release.0, self.kernel_release.1
            )?;
        }
        if self.arch.0 != self.arch.1 {
            writeln!(f, "arch: image {} / host {}", self.arch.0, self.arch.1)?;
        }
        let width = self.lsms.iter().map(|l| l.name.len()).max().unwrap_or(0);
        for l in &self.lsms {
            writeln!(f, "  {:width$}  {}", l.name, l.status)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Digest, PolicyComponent};

    fn fp(components: &[(&str, &[u8])], version: Option<&str>) -> PolicyFingerprint {
        let components: Vec<PolicyComponent> = components
            .iter()
            .map(|(n, b)| PolicyComponent {
                name: n.to_string(),
                digest: Digest::of(b),
            })
            .collect();
        let mut all = Vec::new();
        for c in &components {
            all.extend_from_slice(c.name.as_bytes());
            all.extend_from_slice(&c.digest.0);
        }
        all.extend_from_slice(version.unwrap_or("").as_bytes());
        PolicyFingerprint {
            digest: Some(Digest::of(&all)),
            version: version.map(String::from),
            components,
            note: None,
        }
    }

    fn lsm(name: &str, f: PolicyFingerprint) -> LsmEntry {
        LsmEntry {
            name: name.into(),
            id: None,
            fingerprint: f,
        }
    }

    fn unknown(note: &str) -> PolicyFingerprint {
        PolicyFingerprint {
            note: Some(note.into()),
            ..Default::default()
        }
    }

    fn prof(lsms: Vec<LsmEntry>) -> HostProfile {
        HostProfile {
            lsms,
            kernel_release: "6.18.0".into(),
            arch: "x86_64".into(),
            ..Default::default()
        }
    }

    #[test]
    fn identical_profiles_are_same_everywhere() {
        let p = prof(vec![
            lsm("capability", fp(&[], None)),
            lsm("selinux", fp(&[("selinux/policy", b"p")], None)),
        ]);
        let d = PolicyDiff::compute(&p, &p);
        assert!(d.stack_equal);
        assert!(d.policies_equal());
        assert_eq!(d.differing().count(), 0);
        assert!(d.to_string().contains("selinux     same"), "{d}");
    }

    #[test]
    fn changed_policy_lists_added_removed_and_changed_components() {
        let image = prof(vec![lsm(
            "apparmor",
            fp(
                &[("apparmor/profile/a", b"1"), ("apparmor/profile/b", b"1")],
                Some("r1"),
            ),
        )]);
        let host = prof(vec![lsm(
            "apparmor",
            fp(
                &[("apparmor/profile/b", b"2"), ("apparmor/profile/c", b"1")],
                Some("r2"),
            ),
        )]);
        let d = PolicyDiff::compute(&image, &host);
        assert!(d.stack_equal);
        assert!(!d.policies_equal());
        assert_eq!(
            d.lsms[0].status,
            LsmStatus::Changed {
                added: vec!["apparmor/profile/c".into()],
                removed: vec!["apparmor/profile/a".into()],
                changed: vec!["apparmor/profile/b".into()],
                version: Some((Some("r1".into()), Some("r2".into()))),
            }
        );
        let text = d.to_string();
        assert!(text.contains("added: apparmor/profile/c"), "{text}");
        assert!(text.contains("version r1 -> r2"), "{text}");
    }

    #[test]
    fn unknown_digest_compares_as_different_even_when_both_unknown() {
        let image = prof(vec![lsm("bpf", unknown("EPERM reading programs"))]);
        let host = prof(vec![lsm("bpf", unknown("no bpf() access"))]);
        let d = PolicyDiff::compute(&image, &host);
        assert!(
            matches!(d.lsms[0].status, LsmStatus::Unknown { ref reason } if reason.contains("EPERM") && reason.contains("no bpf()"))
        );
        assert!(!d.policies_equal());
        let host_known = prof(vec![lsm("bpf", fp(&[], None))]);
        let d = PolicyDiff::compute(&image, &host_known);
        assert!(
            matches!(d.lsms[0].status, LsmStatus::Unknown { ref reason } if reason.starts_with("unknown in the image"))
        );
        let d = PolicyDiff::compute(&host_known, &image);
        assert!(
            matches!(d.lsms[0].status, LsmStatus::Unknown { ref reason } if reason.starts_with("unknown on the host"))
        );
    }

    #[test]
    fn union_keeps_image_order_then_host_only_and_detects_order_changes() {
        let image = prof(vec![
            lsm("capability", fp(&[], None)),
            lsm("selinux", fp(&[], None)),
            lsm("bpf", fp(&[], None)),
        ]);
        let host = prof(vec![
            lsm("capability", fp(&[], None)),
            lsm("apparmor", fp(&[], None)),
            lsm("bpf", fp(&[], None)),
        ]);
        let d = PolicyDiff::compute(&image, &host);
        let names: Vec<_> = d.lsms.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["capability", "selinux", "bpf", "apparmor"]);
        assert_eq!(d.lsms[1].status, LsmStatus::OnlyInImage);
        assert_eq!(d.lsms[3].status, LsmStatus::OnlyOnHost);
        assert!(!d.stack_equal);

        // Same LSMs in another order: every policy the same, stack not equal.
        let reordered = prof(vec![
            lsm("selinux", fp(&[], None)),
            lsm("capability", fp(&[], None)),
            lsm("bpf", fp(&[], None)),
        ]);
        let d = PolicyDiff::compute(&image, &reordered);
        assert!(d.lsms.iter().all(|l| l.status.is_same()));
        assert!(!d.stack_equal);
        assert!(!d.policies_equal());
    }

    #[test]
    fn json_form_names_status_and_components() {
        let image = prof(vec![lsm("yama", fp(&[("yama/ptrace_scope", b"1")], None))]);
        let mut host = prof(vec![lsm("yama", fp(&[("yama/ptrace_scope", b"2")], None))]);
        host.kernel_release = "6.19.0".into();
        let d = PolicyDiff::compute(&image, &host);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["stack_equal"], true);
        assert_eq!(v["lsms"][0]["name"], "yama");
        assert_eq!(v["lsms"][0]["status"], "changed");
        assert_eq!(v["lsms"][0]["changed"][0], "yama/ptrace_scope");
        assert_eq!(v["kernel_release"][1], "6.19.0");
        assert!(d.to_string().contains("kernel: image 6.18.0 / host 6.19.0"));
    }
}
