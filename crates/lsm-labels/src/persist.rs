//! Conversions between the live security types ([`HostProfile`],
//! [`TaskSecurity`]) and the image's protobuf records
//! (`image_format::records::{SecurityHeaderRecord, TaskSecurityRecord}`).
//!
//! Records come from an image and are untrusted: every conversion from a
//! record checks lengths and counts against fixed bounds and returns a
//! [`RecordError`] naming the offending field (`lsms[2].fingerprint.digest`)
//! instead of panicking or accepting a value the kernel could never hold.
//! Conversion to a record never fails.

use image_format::records::{
    ComponentRecord, CredsRecord, FingerprintRecord, LabelRecord, LsmRecord, SecurityHeaderRecord,
    TaskSecurityRecord,
};
use serde::{Deserialize, Serialize};

use crate::profile::{
    Digest, HostProfile, LsmEntry, PolicyComponent, PolicyFingerprint, StackSource,
};
use crate::task::{CapSets, SeccompMode, TaskCreds, TaskLabel, TaskSecurity};

/// Most LSMs a stack may hold (the kernel has 14 today).
pub const MAX_LSMS: usize = 64;
/// Most components in one policy fingerprint.
pub const MAX_COMPONENTS: usize = 4096;
/// Most supplementary groups (the kernel's `NGROUPS_MAX`).
pub const MAX_GROUPS: usize = 65536;
/// Most LSM attributes recorded for one thread.
pub const MAX_LABELS: usize = 256;
/// Longest LSM attribute value (the kernel's procattr writes are one page).
pub const MAX_LABEL_VALUE: usize = 4096;
/// Longest name: LSM name, attribute name, component name.
pub const MAX_NAME: usize = 4096;
/// Longest free-text field: version, note, kernel release, arch, host name.
pub const MAX_TEXT: usize = 4096;
/// Most seccomp filters attached to one thread.
pub const MAX_SECCOMP_FILTERS: usize = 64;
/// Most instructions in one classic-BPF program (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;
/// Most instructions along one thread's filter chain, counting the kernel's
/// 4-instruction overhead per filter (`MAX_INSNS_PER_PATH` in kernel/seccomp.c).
pub const MAX_INSNS_PER_PATH: usize = 32768;
/// Size of one `struct sock_filter`.
pub const SOCK_FILTER_SIZE: usize = 8;

/// A security record from an image that fails validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("invalid security record: {field} is {len} bytes; a SHA-256 digest is 32 bytes (or empty for unknown); the image is corrupt or was not written by ckpt")]
    DigestLength { field: String, len: usize },
    #[error("invalid security record: {field} has {count} entries, expected 4 (real, effective, saved, filesystem); the image is corrupt")]
    IdCount { field: String, count: usize },
    #[error("invalid security record: {field} has {count} entries, more than the limit of {max}; the image is corrupt or hostile")]
    TooMany {
        field: String,
        count: usize,
        max: usize,
    },
    #[error("invalid security record: {field} is {len} bytes, more than the limit of {max}; the image is corrupt or hostile")]
    TooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("invalid security record: {field} is empty; the image is corrupt")]
    Empty { field: String },
    #[error("invalid security record: {field} is {len} bytes, not a whole number of 8-byte BPF instructions; the image is corrupt")]
    SeccompFilterLength { field: String, len: usize },
    #[error("invalid security record: {field} has {insns} instructions; the kernel accepts 1..={max}; the image is corrupt or hostile")]
    SeccompFilterInsns {
        field: String,
        insns: usize,
        max: usize,
    },
    #[error("invalid security record: {field} adds up to {insns} instructions, more than the kernel's per-thread limit of {max}; the image is corrupt or hostile")]
    SeccompChainTooLong {
        field: String,
        insns: usize,
        max: usize,
    },
    #[error("invalid security record: {field} is {value}; seccomp modes are 0 (disabled), 1 (strict) and 2 (filter)")]
    SeccompMode { field: String, value: u32 },
    #[error("invalid security record: {field} is missing; the image is corrupt")]
    Missing { field: String },
}

/// What the image's security header holds: the dumping host's profile plus
/// informational fields that take no part in any decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImageSecurity {
    pub profile: HostProfile,
    /// Creation time, seconds since the Unix epoch (UTC).
    pub created_unix_secs: u64,
    /// Host name of the dumping host (informational only).
    pub hostname: String,
    /// Version of the ckpt that wrote the image (informational only).
    pub writer_version: String,
}

/// One live type and its stored record (firecracker's `Persist` pattern):
/// `to_record` never fails, `from_record` validates untrusted input.
pub trait Persist: Sized {
    type Record;
    fn to_record(&self) -> Self::Record;
    fn from_record(record: &Self::Record) -> Result<Self, RecordError>;
}

impl Persist for ImageSecurity {
    type Record = SecurityHeaderRecord;

    fn to_record(&self) -> SecurityHeaderRecord {
        SecurityHeaderRecord {
            lsms: self.profile.lsms.iter().map(lsm_to_record).collect(),
            kernel_release: self.profile.kernel_release.clone(),
            arch: self.profile.arch.clone(),
            created_unix_secs: self.created_unix_secs,
            hostname: self.hostname.clone(),
            writer_version: self.writer_version.clone(),
        }
    }

    fn from_record(r: &SecurityHeaderRecord) -> Result<Self, RecordError> {
        check_count("lsms", r.lsms.len(), MAX_LSMS)?;
        let lsms = r
            .lsms
            .iter()
            .enumerate()
            .map(|(i, l)| lsm_from_record(&format!("lsms[{i}]"), l))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ImageSecurity {
            profile: HostProfile {
                lsms,
                kernel_release: text("kernel_release", &r.kernel_release, MAX_TEXT)?,
                arch: text("arch", &r.arch, MAX_TEXT)?,
                stack_source: StackSource::Recorded,
            },
            created_unix_secs: r.created_unix_secs,
            hostname: text("hostname", &r.hostname, MAX_TEXT)?,
            writer_version: text("writer_version", &r.writer_version, MAX_TEXT)?,
        })
    }
}

impl Persist for TaskSecurity {
    type Record = TaskSecurityRecord;

    fn to_record(&self) -> TaskSecurityRecord {
        let c = &self.creds;
        TaskSecurityRecord {
            tid: self.tid,
            creds: Some(CredsRecord {
                uids: c.uids.to_vec(),
                gids: c.gids.to_vec(),
                groups: c.groups.clone(),
                cap_inheritable: c.caps.inheritable,
                cap_permitted: c.caps.permitted,
                cap_effective: c.caps.effective,
                cap_bounding: c.caps.bounding,
                cap_ambient: c.caps.ambient,
                securebits: c.securebits,
            }),
            labels: self
                .labels
                .iter()
                .map(|l| LabelRecord {
                    lsm: l.lsm.clone(),
                    attr: l.attr.clone(),
                    value: l.value.clone(),
                })
                .collect(),
            no_new_privs: self.no_new_privs,
            seccomp_mode: self.seccomp.as_status(),
            seccomp_filters: self.seccomp_filters.clone(),
            personality: self.personality,
        }
    }

    fn from_record(r: &TaskSecurityRecord) -> Result<Self, RecordError> {
        let creds = r.creds.as_ref().ok_or_else(|| RecordError::Missing {
            field: "creds".into(),
        })?;
        let uids = ids("creds.uids", &creds.uids)?;
        let gids = ids("creds.gids", &creds.gids)?;
        check_count("creds.groups", creds.groups.len(), MAX_GROUPS)?;

        check_count("labels", r.labels.len(), MAX_LABELS)?;
        let labels = r
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                Ok(TaskLabel {
                    lsm: text(&format!("labels[{i}].lsm"), &l.lsm, MAX_NAME)?,
                    attr: nonempty_text(&format!("labels[{i}].attr"), &l.attr, MAX_NAME)?,
                    value: {
                        check_len(
                            &format!("labels[{i}].value"),
                            l.value.len(),
                            MAX_LABEL_VALUE,
                        )?;
                        l.value.clone()
                    },
                })
            })
            .collect::<Result<Vec<_>, RecordError>>()?;

        let seccomp =
            SeccompMode::from_status(r.seccomp_mode).ok_or_else(|| RecordError::SeccompMode {
                field: "seccomp_mode".into(),
                value: r.seccomp_mode,
            })?;
        check_count(
            "seccomp_filters",
            r.seccomp_filters.len(),
            MAX_SECCOMP_FILTERS,
        )?;
        let mut chain = 0usize;
        for (i, f) in r.seccomp_filters.iter().enumerate() {
            let field = format!("seccomp_filters[{i}]");
            if f.len() % SOCK_FILTER_SIZE != 0 {
                return Err(RecordError::SeccompFilterLength {
                    field,
                    len: f.len(),
                });
            }
            let insns = f.len() / SOCK_FILTER_SIZE;
            if insns == 0 || insns > BPF_MAXINSNS {
                return Err(RecordError::SeccompFilterInsns {
                    field,
                    insns,
                    max: BPF_MAXINSNS,
                });
            }
            chain += insns + 4;
            if chain > MAX_INSNS_PER_PATH {
                return Err(RecordError::SeccompChainTooLong {
                    field: "seccomp_filters".into(),
                    insns: chain,
                    max: MAX_INSNS_PER_PATH,
                });
            }
        }

        Ok(TaskSecurity {
            tid: r.tid,
            creds: TaskCreds {
                uids,
                gids,
                groups: creds.groups.clone(),
                caps: CapSets {
                    inheritable: creds.cap_inheritable,
                    permitted: creds.cap_permitted,
                    effective: creds.cap_effective,
                    bounding: creds.cap_bounding,
                    ambient: creds.cap_ambient,
                },
                securebits: creds.securebits,
            },
            labels,
            no_new_privs: r.no_new_privs,
            seccomp,
            seccomp_filters: r.seccomp_filters.clone(),
            personality: r.personality,
        })
    }
}

/// The security header of an image as the live profile alone (drops the
/// informational fields). Same validation as [`ImageSecurity::from_record`].
pub fn profile_from_record(r: &SecurityHeaderRecord) -> Result<HostProfile, RecordError> {
    ImageSecurity::from_record(r).map(|s| s.profile)
}

fn lsm_to_record(l: &LsmEntry) -> LsmRecord {
    let f = &l.fingerprint;
    LsmRecord {
        name: l.name.clone(),
        id: l.id.unwrap_or(0),
        fingerprint: Some(FingerprintRecord {
            digest: f.digest.map(|d| d.0.to_vec()).unwrap_or_default(),
            version: f.version.clone().unwrap_or_default(),
            components: f
                .components
                .iter()
                .map(|c| ComponentRecord {
                    name: c.name.clone(),
                    digest: c.digest.0.to_vec(),
                })
                .collect(),
            note: f.note.clone().unwrap_or_default(),
        }),
    }
}

fn lsm_from_record(field: &str, r: &LsmRecord) -> Result<LsmEntry, RecordError> {
    let name = nonempty_text(&format!("{field}.name"), &r.name, MAX_NAME)?;
    let fingerprint = match &r.fingerprint {
        // An LSM recorded without a fingerprint has an unknown policy.
        None => PolicyFingerprint {
            digest: None,
            version: None,
            components: Vec::new(),
            note: Some("no fingerprint recorded in the image".into()),
        },
        Some(f) => fingerprint_from_record(&format!("{field}.fingerprint"), f)?,
    };
    Ok(LsmEntry {
        name,
        id: (r.id != 0).then_some(r.id),
        fingerprint,
    })
}

fn fingerprint_from_record(
    field: &str,
    f: &FingerprintRecord,
) -> Result<PolicyFingerprint, RecordError> {
    let digest = if f.digest.is_empty() {
        None
    } else {
        Some(parse_digest(&format!("{field}.digest"), &f.digest)?)
    };
    check_count(
        &format!("{field}.components"),
        f.components.len(),
        MAX_COMPONENTS,
    )?;
    let components = f
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let cf = format!("{field}.components[{i}]");
            Ok(PolicyComponent {
                name: nonempty_text(&format!("{cf}.name"), &c.name, MAX_NAME)?,
                digest: parse_digest(&format!("{cf}.digest"), &c.digest)?,
            })
        })
        .collect::<Result<Vec<_>, RecordError>>()?;
    let opt = |name: &str, s: &str| -> Result<Option<String>, RecordError> {
        (!s.is_empty())
            .then(|| text(&format!("{field}.{name}"), s, MAX_TEXT))
            .transpose()
    };
    Ok(PolicyFingerprint {
        digest,
        version: opt("version", &f.version)?,
        components,
        note: opt("note", &f.note)?,
    })
}

fn parse_digest(field: &str, bytes: &[u8]) -> Result<Digest, RecordError> {
    Digest::from_slice(bytes).ok_or_else(|| RecordError::DigestLength {
        field: field.into(),
        len: bytes.len(),
    })
}

fn ids(field: &str, v: &[u32]) -> Result<[u32; 4], RecordError> {
    <[u32; 4]>::try_from(v).map_err(|_| RecordError::IdCount {
        field: field.into(),
        count: v.len(),
    })
}

fn check_count(field: &str, count: usize, max: usize) -> Result<(), RecordError> {
    if count > max {
        return Err(RecordError::TooMany {
            field: field.into(),
            count,
            max,
        });
    }
    Ok(())
}

fn check_len(field: &str, len: usize, max: usize) -> Result<(), RecordError> {
    if len > max {
        return Err(RecordError::TooLong {
            field: field.into(),
            len,
            max,
        });
    }
    Ok(())
}

fn text(field: &str, s: &str, max: usize) -> Result<String, RecordError> {
    check_len(field, s.len(), max)?;
    Ok(s.to_owned())
}

fn nonempty_text(field: &str, s: &str, max: usize) -> Result<String, RecordError> {
    if s.is_empty() {
        return Err(RecordError::Empty {
            field: field.into(),
        });
    }
    text(field, s, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> HostProfile {
        HostProfile {
            lsms: vec![
                LsmEntry {
                    name: "capability".into(),
                    id: Some(100),
                    fingerprint: PolicyFingerprint {
                        digest: Some(Digest::of(b"")),
                        ..Default::default()
                    },
                },
                LsmEntry {
                    name: "selinux".into(),
                    id: Some(101),
                    fingerprint: PolicyFingerprint {
                        digest: Some(Digest::of(b"policy")),
                        version: Some("33".into()),
                        components: vec![
                            PolicyComponent {
                                name: "selinux/enforce".into(),
                                digest: Digest::of(b"1"),
                            },
                            PolicyComponent {
                                name: "selinux/policy".into(),
                                digest: Digest::of(b"pol"),
                            },
                        ],
                        note: None,
                    },
                },
                LsmEntry {
                    name: "bpf".into(),
                    id: None,
                    fingerprint: PolicyFingerprint {
                        digest: None,
                        version: None,
                        components: vec![],
                        note: Some("cannot read attached programs: EPERM".into()),
                    },
                },
            ],
            kernel_release: "6.18.0".into(),
            arch: "x86_64".into(),
            stack_source: StackSource::Recorded,
        }
    }

    fn task() -> TaskSecurity {
        TaskSecurity {
            tid: 4242,
            creds: TaskCreds {
                uids: [1000, 1000, 1001, 1000],
                gids: [100, 100, 100, 101],
                groups: vec![100, 27, 44],
                caps: CapSets {
                    inheritable: 1 << 10,
                    permitted: 0x3,
                    effective: 0x1,
                    bounding: (1 << 41) - 1,
                    ambient: 0,
                },
                securebits: 0x2f,
            },
            labels: vec![TaskLabel {
                lsm: "selinux".into(),
                attr: "current".into(),
                value: b"user_u:user_r:user_t:s0\0".to_vec(),
            }],
            no_new_privs: true,
            seccomp: SeccompMode::Filter,
            seccomp_filters: vec![vec![0u8; 16], vec![1u8; 8]],
            personality: 0x0040_0000,
        }
    }

    #[test]
    fn image_security_round_trips_through_record() {
        let s = ImageSecurity {
            profile: profile(),
            created_unix_secs: 1_790_000_000,
            hostname: "dumphost".into(),
            writer_version: "0.1.0".into(),
        };
        let back = ImageSecurity::from_record(&s.to_record()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.profile.stack(), ["capability", "selinux", "bpf"]);
        assert_eq!(back.profile.lsm("bpf").unwrap().fingerprint.digest, None);
    }

    #[test]
    fn task_security_round_trips_through_record() {
        let t = task();
        assert_eq!(TaskSecurity::from_record(&t.to_record()).unwrap(), t);
        let empty = TaskSecurity::default();
        assert_eq!(
            TaskSecurity::from_record(&empty.to_record()).unwrap(),
            empty
        );
    }

    #[test]
    fn record_round_trips_through_protobuf_bytes() {
        use prost::Message;
        let rec = task().to_record();
        let bytes = rec.encode_to_vec();
        let decoded = TaskSecurityRecord::decode(bytes.as_slice()).unwrap();
        assert_eq!(TaskSecurity::from_record(&decoded).unwrap(), task());
    }

    fn header_err(f: impl FnOnce(&mut SecurityHeaderRecord)) -> RecordError {
        let mut r = ImageSecurity {
            profile: profile(),
            ..Default::default()
        }
        .to_record();
        f(&mut r);
        ImageSecurity::from_record(&r).unwrap_err()
    }

    fn task_err(f: impl FnOnce(&mut TaskSecurityRecord)) -> RecordError {
        let mut r = task().to_record();
        f(&mut r);
        TaskSecurity::from_record(&r).unwrap_err()
    }

    #[test]
    fn digest_of_wrong_length_is_refused_naming_the_field() {
        let e = header_err(|r| r.lsms[1].fingerprint.as_mut().unwrap().digest = vec![0; 31]);
        assert_eq!(
            e,
            RecordError::DigestLength {
                field: "lsms[1].fingerprint.digest".into(),
                len: 31
            }
        );
        assert!(e.to_string().contains("lsms[1].fingerprint.digest"));
        let e =
            header_err(|r| r.lsms[1].fingerprint.as_mut().unwrap().components[0].digest = vec![]);
        assert_eq!(
            e,
            RecordError::DigestLength {
                field: "lsms[1].fingerprint.components[0].digest".into(),
                len: 0
            }
        );
    }

    #[test]
    fn empty_digest_means_unknown_and_missing_fingerprint_is_unknown() {
        let mut r = ImageSecurity {
            profile: profile(),
            ..Default::default()
        }
        .to_record();
        r.lsms[1].fingerprint.as_mut().unwrap().digest.clear();
        r.lsms[0].fingerprint = None;
        let s = ImageSecurity::from_record(&r).unwrap();
        assert_eq!(s.profile.lsms[1].fingerprint.digest, None);
        assert_eq!(s.profile.lsms[0].fingerprint.digest, None);
        assert!(s.profile.lsms[0].fingerprint.note.is_some());
    }

    #[test]
    fn header_counts_and_lengths_are_bounded() {
        let e = header_err(|r| {
            let l = r.lsms[0].clone();
            r.lsms = vec![l; MAX_LSMS + 1];
        });
        assert!(
            matches!(e, RecordError::TooMany { ref field, count: 65, max: 64 } if field == "lsms")
        );
        let e = header_err(|r| {
            let f = r.lsms[1].fingerprint.as_mut().unwrap();
            let c = f.components[0].clone();
            f.components = vec![c; MAX_COMPONENTS + 1];
        });
        assert!(
            matches!(e, RecordError::TooMany { ref field, .. } if field == "lsms[1].fingerprint.components")
        );
        let e = header_err(|r| r.kernel_release = "x".repeat(MAX_TEXT + 1));
        assert!(matches!(e, RecordError::TooLong { ref field, .. } if field == "kernel_release"));
        let e = header_err(|r| r.lsms[2].name.clear());
        assert_eq!(
            e,
            RecordError::Empty {
                field: "lsms[2].name".into()
            }
        );
    }

    /// Arbitrary bytes through prost and `from_record` never panic, and
    /// whatever is accepted respects the bounds.
    #[test]
    fn garbage_records_never_panic() {
        use prost::Message;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let valid_task = task().to_record().encode_to_vec();
        let valid_header = ImageSecurity {
            profile: profile(),
            ..Default::default()
        }
        .to_record()
        .encode_to_vec();
        for i in 0..20_000 {
            // Half pure noise, half valid records with bytes flipped.
            let mut buf = if i % 2 == 0 {
                (0..(next() % 256))
                    .map(|_| next() as u8)
                    .collect::<Vec<u8>>()
            } else if i % 4 == 1 {
                valid_task.clone()
            } else {
                valid_header.clone()
            };
            if i % 2 == 1 {
                for _ in 0..(1 + next() % 4) {
                    let at = (next() as usize) % buf.len();
                    buf[at] ^= next() as u8;
                }
            }
            if let Ok(r) = TaskSecurityRecord::decode(buf.as_slice()) {
                if let Ok(t) = TaskSecurity::from_record(&r) {
                    assert!(t.creds.groups.len() <= MAX_GROUPS);
                    assert!(t
                        .seccomp_filters
                        .iter()
                        .all(|f| f.len() % 8 == 0 && !f.is_empty()));
                }
            }
            if let Ok(r) = SecurityHeaderRecord::decode(buf.as_slice()) {
                if let Ok(s) = ImageSecurity::from_record(&r) {
                    assert!(s.profile.lsms.len() <= MAX_LSMS);
                    assert!(s.profile.lsms.iter().all(|l| !l.name.is_empty()));
                }
            }
        }
    }

    #[test]
    fn ids_must_be_exactly_four() {
        let e = task_err(|r| r.creds.as_mut().unwrap().uids.pop().map(drop).unwrap());
        assert_eq!(
            e,
            RecordError::IdCount {
                field: "creds.uids".into(),
                count: 3
            }
        );
        let e = task_err(|r| r.creds.as_mut().unwrap().gids.push(0));
        assert_eq!(
            e,
            RecordError::IdCount {
                field: "creds.gids".into(),
                count: 5
            }
        );
        let e = task_err(|r| r.creds = None);
        assert_eq!(
            e,
            RecordError::Missing {
                field: "creds".into()
            }
        );
    }

    #[test]
    fn task_counts_and_lengths_are_bounded() {
        let e = task_err(|r| r.creds.as_mut().unwrap().groups = vec![1; MAX_GROUPS + 1]);
        assert!(matches!(e, RecordError::TooMany { ref field, .. } if field == "creds.groups"));
        let e = task_err(|r| r.labels[0].value = vec![b'a'; MAX_LABEL_VALUE + 1]);
        assert!(
            matches!(e, RecordError::TooLong { ref field, len: 4097, .. } if field == "labels[0].value")
        );
        let e = task_err(|r| r.labels[0].attr.clear());
        assert!(matches!(e, RecordError::Empty { ref field } if field == "labels[0].attr"));
        let e = task_err(|r| {
            let l = r.labels[0].clone();
            r.labels = vec![l; MAX_LABELS + 1];
        });
        assert!(matches!(e, RecordError::TooMany { ref field, .. } if field == "labels"));
    }

    #[test]
    fn seccomp_mode_and_filters_are_validated() {
        let e = task_err(|r| r.seccomp_mode = 3);
        assert_eq!(
            e,
            RecordError::SeccompMode {
                field: "seccomp_mode".into(),
                value: 3
            }
        );
        let e = task_err(|r| r.seccomp_filters[1] = vec![0; 12]);
        assert_eq!(
            e,
            RecordError::SeccompFilterLength {
                field: "seccomp_filters[1]".into(),
                len: 12
            }
        );
        let e = task_err(|r| r.seccomp_filters[0] = vec![]);
        assert!(
            matches!(e, RecordError::SeccompFilterInsns { ref field, insns: 0, .. } if field == "seccomp_filters[0]")
        );
        let e = task_err(|r| r.seccomp_filters[0] = vec![0; (BPF_MAXINSNS + 1) * 8]);
        assert!(matches!(
            e,
            RecordError::SeccompFilterInsns { insns: 4097, .. }
        ));
        // The largest single filter is accepted.
        let mut r = task().to_record();
        r.seccomp_filters = vec![vec![0; BPF_MAXINSNS * 8]];
        assert!(TaskSecurity::from_record(&r).is_ok());
        let e = task_err(|r| r.seccomp_filters = vec![vec![0; 8]; MAX_SECCOMP_FILTERS + 1]);
        assert!(matches!(e, RecordError::TooMany { ref field, .. } if field == "seccomp_filters"));
        // 8 filters of 4096 instructions exceed the per-thread path limit.
        let e = task_err(|r| r.seccomp_filters = vec![vec![0; BPF_MAXINSNS * 8]; 8]);
        assert!(matches!(e, RecordError::SeccompChainTooLong { .. }));
    }
}
