//! Policy fingerprints: one provider per LSM (a file each in this
//! directory) and the canonical encoding that turns named components into
//! the digest recorded in an image.
//!
//! Canonical encoding (`ckpt-policy-fingerprint/v1`), all integers u64
//! little-endian:
//!
//! ```text
//! "ckpt-policy-fingerprint/v1\0"
//! version:    0x00                       (none)
//!           | 0x01 len bytes             (UTF-8 version string)
//! count
//! count x   ( len name-bytes  digest[32] )   sorted by (name, digest)
//! ```
//!
//! The fingerprint digest is SHA-256 of that byte string. Each component's
//! digest is SHA-256 of its own canonical bytes, documented per provider and
//! in docs/lsm-fingerprints.md.

mod apparmor;
mod bpf;
mod integrity;
mod selinux;
mod simple;
mod smack;
mod tomoyo;

use crate::host::{HostReadError, HostView, MAX_TEXT_BYTES};
use crate::profile::{Digest, PolicyComponent, PolicyFingerprint};

/// The domain-separation tag that starts the canonical encoding.
pub const ENCODING_TAG: &[u8] = b"ckpt-policy-fingerprint/v1\0";

/// LSMs that have a provider here.
pub const PROVIDERS: &[&str] = &[
    "capability",
    "selinux",
    "smack",
    "tomoyo",
    "apparmor",
    "yama",
    "loadpin",
    "safesetid",
    "lockdown",
    "bpf",
    "landlock",
    "ima",
    "evm",
    "ipe",
];

/// The canonical bytes of (`components`, `version`); `components` must
/// already be sorted (see [`sort_components`]).
pub fn canonical_bytes(components: &[PolicyComponent], version: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + components.len() * 80);
    out.extend_from_slice(ENCODING_TAG);
    match version {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
        }
    }
    out.extend_from_slice(&(components.len() as u64).to_le_bytes());
    for c in components {
        out.extend_from_slice(&(c.name.len() as u64).to_le_bytes());
        out.extend_from_slice(c.name.as_bytes());
        out.extend_from_slice(&c.digest.0);
    }
    out
}

/// Sorts components into canonical order: by name, then digest.
pub fn sort_components(components: &mut [PolicyComponent]) {
    components.sort_by(|a, b| a.name.cmp(&b.name).then(a.digest.cmp(&b.digest)));
}

impl PolicyFingerprint {
    /// A known fingerprint: sorts `components` and computes the digest over
    /// them and `version`.
    pub fn from_components(mut components: Vec<PolicyComponent>, version: Option<String>) -> Self {
        sort_components(&mut components);
        let digest = Digest::of(&canonical_bytes(&components, version.as_deref()));
        PolicyFingerprint {
            digest: Some(digest),
            version,
            components,
            note: None,
        }
    }

    /// An unknown fingerprint: the digest is `None` and `note` says why.
    /// The components that could be read are kept (sorted) for the diff.
    pub fn unknown(
        note: impl Into<String>,
        mut components: Vec<PolicyComponent>,
        version: Option<String>,
    ) -> Self {
        sort_components(&mut components);
        PolicyFingerprint {
            digest: None,
            version,
            components,
            note: Some(note.into()),
        }
    }

    /// Recomputes the digest from `components` and `version` (for checking a
    /// recorded fingerprint: equal to `digest` when it is consistent).
    pub fn canonical_digest(&self) -> Digest {
        let mut c = self.components.clone();
        sort_components(&mut c);
        Digest::of(&canonical_bytes(&c, self.version.as_deref()))
    }
}

/// A component whose digest is SHA-256 of `bytes`.
pub fn component(name: impl Into<String>, bytes: &[u8]) -> PolicyComponent {
    PolicyComponent {
        name: name.into(),
        digest: Digest::of(bytes),
    }
}

/// The fingerprint of LSM `name` on `view`. Never fails: an unreadable
/// policy, or an LSM without a provider, gives an unknown digest and a note.
pub fn fingerprint_lsm(view: &HostView, name: &str) -> PolicyFingerprint {
    match name {
        "capability" => simple::capability(),
        "landlock" => simple::landlock(view),
        "lockdown" => simple::lockdown(view),
        "yama" => simple::yama(view),
        "loadpin" => simple::loadpin(view),
        "safesetid" => simple::safesetid(view),
        "selinux" => selinux::fingerprint(view),
        "apparmor" => apparmor::fingerprint(view),
        "smack" => smack::fingerprint(view),
        "tomoyo" => tomoyo::fingerprint(view),
        "bpf" => bpf::fingerprint(view),
        "ima" => integrity::ima(view),
        "evm" => integrity::evm(view),
        "ipe" => integrity::ipe(view),
        other => PolicyFingerprint::unknown(
            format!(
                "ckpt has no fingerprint provider for LSM {other:?}; its policy is not compared"
            ),
            Vec::new(),
            None,
        ),
    }
}

/// Collects components and the reasons some could not be read; turns into
/// a known fingerprint only when nothing was missing.
#[derive(Default)]
pub(crate) struct Collector {
    pub components: Vec<PolicyComponent>,
    pub problems: Vec<String>,
    pub version: Option<String>,
    /// The version is shown but not hashed: it counts policy loads rather
    /// than describing what is loaded (AppArmor's `revision` goes up on
    /// every load, even of identical profiles), and DESIGN 4 has the digest
    /// cover only state that changes access decisions.
    pub version_not_hashed: bool,
}

impl Collector {
    pub fn push(&mut self, c: PolicyComponent) {
        self.components.push(c);
    }
    pub fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }
    /// Reads `path` as small text, normalises it with `norm` and adds it as
    /// component `name`. Missing files are a problem when `required`, and
    /// silently skipped otherwise (an optional kernel feature).
    pub fn text_file(
        &mut self,
        view: &HostView,
        name: &str,
        path: &str,
        limit: u64,
        required: bool,
        norm: fn(&str) -> String,
    ) -> Option<String> {
        match view.read_text(path, limit) {
            Ok(t) => {
                let n = norm(&t);
                self.push(component(name, n.as_bytes()));
                Some(n)
            }
            Err(e) if !required && e.is_not_found() => None,
            Err(e) => {
                self.problem(describe(&e));
                None
            }
        }
    }
    pub fn finish(self, lsm: &str) -> PolicyFingerprint {
        if self.problems.is_empty() && self.version_not_hashed {
            let mut f = PolicyFingerprint::from_components(self.components, None);
            f.version = self.version;
            f
        } else if self.problems.is_empty() {
            PolicyFingerprint::from_components(self.components, self.version)
        } else {
            PolicyFingerprint::unknown(
                format!(
                    "{lsm} policy not fully readable: {}",
                    self.problems.join("; ")
                ),
                self.components,
                self.version,
            )
        }
    }
}

/// A short description of a read failure with the way out for the usual
/// errno values.
pub(crate) fn describe(e: &HostReadError) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => format!("{e} (run ckpt as root to read it)"),
        _ => e.to_string(),
    }
}

/// Trims surrounding whitespace.
pub(crate) fn trimmed(s: &str) -> String {
    s.trim().to_owned()
}

/// Lines with whitespace runs collapsed, empty lines dropped, sorted and
/// de-duplicated, each ending in `\n`: for rule lists whose order the kernel
/// does not use for decisions.
pub(crate) fn sorted_lines(s: &str) -> String {
    let mut lines: Vec<String> = s
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines.dedup();
    lines.into_iter().map(|l| l + "\n").collect()
}

/// Whitespace-separated words, sorted, de-duplicated, joined by one space.
pub(crate) fn sorted_words(s: &str) -> String {
    let mut w: Vec<&str> = s.split_whitespace().collect();
    w.sort_unstable();
    w.dedup();
    w.join(" ")
}

/// Reads one small text file, trimmed.
pub(crate) fn read_trimmed(view: &HostView, path: &str) -> Result<String, HostReadError> {
    view.read_text(path, MAX_TEXT_BYTES)
        .map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ignores_component_order_but_not_version_or_content() {
        let a = component("x/a", b"1");
        let b = component("x/b", b"2");
        let f1 = PolicyFingerprint::from_components(vec![a.clone(), b.clone()], Some("1".into()));
        let f2 = PolicyFingerprint::from_components(vec![b.clone(), a.clone()], Some("1".into()));
        assert_eq!(f1.digest, f2.digest);
        assert_eq!(f1.digest, Some(f1.canonical_digest()));
        let f3 = PolicyFingerprint::from_components(vec![a.clone(), b.clone()], Some("2".into()));
        assert_ne!(f1.digest, f3.digest);
        let f4 = PolicyFingerprint::from_components(vec![a.clone(), b.clone()], None);
        assert_ne!(f1.digest, f4.digest);
        let f5 =
            PolicyFingerprint::from_components(vec![a, component("x/b", b"3")], Some("1".into()));
        assert_ne!(f1.digest, f5.digest);
    }

    #[test]
    fn encoding_is_unambiguous_between_name_and_version_boundaries() {
        // "ab" + "" vs "a" + "b": length prefixes keep them apart.
        let f1 = PolicyFingerprint::from_components(vec![component("ab", b"")], Some("".into()));
        let f2 = PolicyFingerprint::from_components(vec![component("a", b"")], Some("b".into()));
        assert_ne!(f1.digest, f2.digest);
    }

    #[test]
    fn empty_fingerprint_digest_is_fixed() {
        let f = PolicyFingerprint::from_components(Vec::new(), None);
        let mut expect = ENCODING_TAG.to_vec();
        expect.push(0);
        expect.extend_from_slice(&0u64.to_le_bytes());
        assert_eq!(f.digest, Some(Digest::of(&expect)));
    }

    #[test]
    fn unknown_provider_is_recorded_with_a_note() {
        let d = tempfile::tempdir().unwrap();
        let f = fingerprint_lsm(&HostView::sysroot(d.path()), "tsem");
        assert_eq!(f.digest, None);
        assert!(f.note.unwrap().contains("no fingerprint provider"));
    }

    #[test]
    fn normalisers() {
        assert_eq!(sorted_lines("b  c\n\na\n a \n"), "a\nb c\n");
        assert_eq!(sorted_words(" z a  a\n"), "a z");
    }
}
