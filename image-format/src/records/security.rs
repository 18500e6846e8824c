//! Security records: the image's security header (the dumping host's LSM
//! stack with a policy fingerprint per LSM) and each task's security state
//! (credentials, capability sets, LSM labels, no_new_privs, seccomp).

/// The security header: written right after the fixed header, before any
/// other section, so that `policy-diff` and the restore verdict can be
/// reached without reading process state.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SecurityHeaderRecord {
    /// Active LSMs in kernel order.
    #[prost(message, repeated, tag = "1")]
    pub lsms: Vec<LsmRecord>,
    /// `uname -r` of the dumping host.
    #[prost(string, tag = "2")]
    pub kernel_release: String,
    /// `uname -m` of the dumping host, e.g. `x86_64`.
    #[prost(string, tag = "3")]
    pub arch: String,
    /// Creation time, seconds since the Unix epoch (UTC).
    #[prost(uint64, tag = "4")]
    pub created_unix_secs: u64,
    /// Host name of the dumping host (informational only).
    #[prost(string, tag = "5")]
    pub hostname: String,
    /// Version of the ckpt that wrote the image (informational only).
    #[prost(string, tag = "6")]
    pub writer_version: String,
}

/// One active LSM and its policy fingerprint.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LsmRecord {
    /// Kernel name of the LSM (`selinux`, `apparmor`, `bpf`, ...).
    #[prost(string, tag = "1")]
    pub name: String,
    /// LSM id from `lsm_list_modules` (100..), 0 when unknown.
    #[prost(uint64, tag = "2")]
    pub id: u64,
    #[prost(message, optional, tag = "3")]
    pub fingerprint: Option<FingerprintRecord>,
}

/// A policy fingerprint: SHA-256 over a canonical list of named components.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FingerprintRecord {
    /// 32-byte SHA-256 digest; empty means unknown (compares as different).
    #[prost(bytes = "vec", tag = "1")]
    pub digest: Vec<u8>,
    /// Optional policy version string (e.g. AppArmor revision, Landlock ABI).
    #[prost(string, tag = "2")]
    pub version: String,
    /// The named components the digest covers, in canonical order.
    #[prost(message, repeated, tag = "3")]
    pub components: Vec<ComponentRecord>,
    /// Why the policy could not be read (set when `digest` is empty).
    #[prost(string, tag = "4")]
    pub note: String,
}

/// One named component of a policy fingerprint.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ComponentRecord {
    #[prost(string, tag = "1")]
    pub name: String,
    /// 32-byte SHA-256 of the component's canonical bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub digest: Vec<u8>,
}

/// Credentials of one thread, as the kernel keeps them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CredsRecord {
    /// real, effective, saved, filesystem uid.
    #[prost(uint32, repeated, tag = "1")]
    pub uids: Vec<u32>,
    /// real, effective, saved, filesystem gid.
    #[prost(uint32, repeated, tag = "2")]
    pub gids: Vec<u32>,
    #[prost(uint32, repeated, tag = "3")]
    pub groups: Vec<u32>,
    #[prost(uint64, tag = "4")]
    pub cap_inheritable: u64,
    #[prost(uint64, tag = "5")]
    pub cap_permitted: u64,
    #[prost(uint64, tag = "6")]
    pub cap_effective: u64,
    #[prost(uint64, tag = "7")]
    pub cap_bounding: u64,
    #[prost(uint64, tag = "8")]
    pub cap_ambient: u64,
    #[prost(uint32, tag = "9")]
    pub securebits: u32,
}

/// One LSM attribute of one thread (`/proc/PID/task/TID/attr/<lsm>/<attr>`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelRecord {
    /// LSM name (`selinux`, `apparmor`, `smack`); empty for the legacy
    /// `/proc/PID/attr/<attr>` files.
    #[prost(string, tag = "1")]
    pub lsm: String,
    /// Attribute name: `current`, `exec`, `fscreate`, ...
    #[prost(string, tag = "2")]
    pub attr: String,
    /// Raw value as the kernel returned it (trailing NUL/newline kept).
    #[prost(bytes = "vec", tag = "3")]
    pub value: Vec<u8>,
}

/// Security state of one thread.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskSecurityRecord {
    #[prost(int32, tag = "1")]
    pub tid: i32,
    #[prost(message, optional, tag = "2")]
    pub creds: Option<CredsRecord>,
    #[prost(message, repeated, tag = "3")]
    pub labels: Vec<LabelRecord>,
    #[prost(bool, tag = "4")]
    pub no_new_privs: bool,
    /// 0 disabled, 1 strict, 2 filter (as in /proc/PID/status `Seccomp:`).
    #[prost(uint32, tag = "5")]
    pub seccomp_mode: u32,
    /// Classic BPF seccomp filters, oldest first; each is the raw
    /// `struct sock_filter` array (8 bytes per instruction).
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub seccomp_filters: Vec<Vec<u8>>,
    /// Personality (`personality(0xffffffff)`).
    #[prost(uint32, tag = "7")]
    pub personality: u32,
}
