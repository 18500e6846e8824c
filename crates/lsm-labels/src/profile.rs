//! The host LSM profile: the active stack in kernel order and one policy
//! fingerprint per LSM. This is the live form; `persist` converts it to and
//! from the image's `SecurityHeaderRecord`, and serde gives the JSON that
//! `ckpt lsm --json` prints and `policy-diff --host` reads.

use serde::{Deserialize, Serialize};

/// A SHA-256 digest, shown and serialised as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::{Digest as _, Sha256};
        Digest(Sha256::digest(bytes).into())
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Digest)
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(serde::de::Error::custom)?;
        Digest::from_slice(&v)
            .ok_or_else(|| serde::de::Error::custom("a digest is 32 bytes (64 hex digits)"))
    }
}

/// One named component of a policy (e.g. `selinux/policy`, `selinux/boolean/httpd_can_network_connect`,
/// `apparmor/profile/usr.sbin.cupsd`), with the digest of its canonical bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyComponent {
    pub name: String,
    pub digest: Digest,
}

/// The policy fingerprint of one LSM.
///
/// `digest` is SHA-256 over the canonical encoding of `components` (sorted by
/// name) and `version`; `None` means the policy could not be read, and `note`
/// says why. An unknown digest compares as different from everything,
/// including another unknown digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PolicyFingerprint {
    pub digest: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub components: Vec<PolicyComponent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One active LSM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsmEntry {
    /// Kernel name: `lockdown`, `capability`, `landlock`, `bpf`, `selinux`, ...
    pub name: String,
    /// The LSM id from `lsm_list_modules` (100..=113), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub fingerprint: PolicyFingerprint,
}

/// How the stack was detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StackSource {
    /// The `lsm_list_modules` syscall.
    Syscall,
    /// `/sys/kernel/security/lsm` (securityfs).
    #[default]
    Securityfs,
    /// Read from a stored profile or an image.
    Recorded,
}

/// A host's LSM profile: what an image's security header records and what
/// `ckpt lsm --json` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HostProfile {
    /// Active LSMs in kernel order.
    pub lsms: Vec<LsmEntry>,
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -m`.
    pub arch: String,
    #[serde(default)]
    pub stack_source: StackSource,
}

impl HostProfile {
    /// The LSM names in kernel order.
    pub fn stack(&self) -> Vec<&str> {
        self.lsms.iter().map(|l| l.name.as_str()).collect()
    }
    pub fn lsm(&self, name: &str) -> Option<&LsmEntry> {
        self.lsms.iter().find(|l| l.name == name)
    }
}
