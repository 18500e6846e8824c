//! Per-task security state: credentials, capability sets, securebits, LSM
//! labels, no_new_privs and seccomp. This is the live form; the image stores
//! it as `image_format::records::TaskSecurityRecord`.

use serde::{Deserialize, Serialize};

/// The credentials of one thread, as the kernel keeps them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TaskCreds {
    /// real, effective, saved, filesystem.
    pub uids: [u32; 4],
    /// real, effective, saved, filesystem.
    pub gids: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    pub caps: CapSets,
    /// `prctl(PR_GET_SECUREBITS)`.
    pub securebits: u32,
}

/// The five capability sets as bit masks (bit N = capability N).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CapSets {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
}

/// One LSM attribute of a thread: `/proc/PID/task/TID/attr/<lsm>/<attr>`
/// (or the legacy `/proc/PID/attr/<attr>` when `lsm` is empty).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLabel {
    pub lsm: String,
    pub attr: String,
    /// Raw value as read (may be binary; shown lossily).
    pub value: Vec<u8>,
}

/// seccomp mode as in /proc/PID/status `Seccomp:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SeccompMode {
    #[default]
    Disabled,
    Strict,
    Filter,
}

impl SeccompMode {
    pub fn from_status(n: u32) -> Option<Self> {
        match n {
            0 => Some(Self::Disabled),
            1 => Some(Self::Strict),
            2 => Some(Self::Filter),
            _ => None,
        }
    }
    pub fn as_status(self) -> u32 {
        match self {
            Self::Disabled => 0,
            Self::Strict => 1,
            Self::Filter => 2,
        }
    }
}

/// Everything ckpt records about one thread's security state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TaskSecurity {
    pub tid: i32,
    pub creds: TaskCreds,
    pub labels: Vec<TaskLabel>,
    pub no_new_privs: bool,
    pub seccomp: SeccompMode,
    /// Classic-BPF filters, oldest first, each the raw `sock_filter` array.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "hex_vecs")]
    pub seccomp_filters: Vec<Vec<u8>>,
    pub personality: u32,
}

mod hex_vecs {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hex::encode))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v: Vec<String> = Vec::deserialize(d)?;
        v.iter()
            .map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}
