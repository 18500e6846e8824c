//! Limits on what an image may make a reader allocate, checked before
//! anything is decoded (issue 7 item 6, docs/image-format.md "Limits").
//!
//! Two kinds of limit:
//! - a size limit per section kind ([`record_len_limit`], [`max_sections_of`]),
//!   checked against the section table before any section byte is read
//!   or hashed;
//! - a count and length limit for every repeated and variable-length field
//!   of every record ([`Schema`]), checked by a pre-pass over the protobuf
//!   wire bytes ([`check_wire`]) that allocates nothing, before `prost`
//!   decodes (and allocates).
//!
//! An empty repeated sub-message costs two bytes on the wire but a whole
//! struct in memory; with every count bounded, decoding a record allocates
//! at most its bytes (strings and byte fields are copies of wire bytes),
//! plus the structure bound of its schema ([`Schema::structure_bound`]),
//! plus what `Vec` growth adds (accounted as a factor 2 in that bound).
//!
//! The pre-pass is stricter than protobuf in two ways, both never produced
//! by a `prost` writer: a singular sub-message may occur at most once (so
//! that merging cannot grow it past its limits), and groups (wire types 3
//! and 4) are refused. Unknown fields of the other wire types are skipped,
//! as `prost` skips them.

use std::mem::size_of;

use crate::layout::{SectionKind, MAX_RECORD_LEN, PAGE_ALIGN};
use crate::records::*;

/// Largest security header section: the LSM stack with its fingerprints.
/// A real one is a few KiB (this host: about 2 KiB); 256 KiB holds about
/// 2500 policy components (AppArmor records one per loaded profile).
pub const MAX_SECURITY_HEADER_LEN: u64 = 256 << 10;
/// Part of the process record limit that does not depend on the pages:
/// registers, xsave, 65536 VMAs and fds with their paths, pipe buffers.
pub const PROCESS_BASE_LEN: u64 = 16 << 20;
/// Wire bytes one page run may take (three 10-byte varints, tags, length).
pub const PROCESS_LEN_PER_PAGE_RUN: u64 = 36;

/// Most VMAs of one task (the kernel's default `vm.max_map_count` is 65530).
pub const MAX_VMAS: u32 = 65536;
/// Most open fds of one task recorded (and pipes).
pub const MAX_FDS: u32 = 65536;
/// Most signal dispositions (signals 1..=64).
pub const MAX_SIGACTIONS: u32 = 64;
/// Most auxv words (the kernel keeps fewer than 64 pairs).
pub const MAX_AUXV_WORDS: u32 = 128;
/// Most rlimits (`RLIM_NLIMITS`).
pub const MAX_RLIMITS: u32 = 16;
/// Longest path (`PATH_MAX`) or /proc/PID/maps name.
pub const MAX_PATH_LEN: u32 = 4096;
/// A content digest (SHA-256) in a file stamp.
pub const MAX_DIGEST_LEN: u32 = 32;
/// Longest `comm` accepted (the kernel's is 16 bytes with the NUL).
pub const MAX_COMM_LEN: u32 = 64;
/// Largest XSAVE area.
pub const MAX_XSAVE_LEN: u32 = 64 << 10;
/// Most non-leader threads of one process recorded.
pub const MAX_THREADS: u32 = 4096;
/// Most bytes buffered in one recorded pipe (default `pipe-max-size`).
pub const MAX_PIPE_DATA_LEN: u32 = 1 << 20;
/// Most interval timers (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF).
pub const MAX_ITIMERS: u32 = 3;
/// Most POSIX timers per task (RLIMIT_SIGPENDING bounds them in practice).
pub const MAX_POSIX_TIMERS: u32 = 4096;
/// Most guard-page runs per task.
pub const MAX_GUARD_RUNS: u32 = 65536;
/// Longest terminal `c_cc` accepted (the kernel's NCCS is 19).
pub const MAX_TERMINAL_CC_LEN: u32 = 64;
/// Most LSMs in a stack.
pub const MAX_LSMS: u32 = 64;
/// Most components of one policy fingerprint.
pub const MAX_COMPONENTS: u32 = 4096;
/// Longest name or free-text field of the security records.
pub const MAX_TEXT_LEN: u32 = 4096;
/// Most supplementary groups (`NGROUPS_MAX`).
pub const MAX_GROUPS: u32 = 65536;
/// Most LSM attributes of one thread.
pub const MAX_LABELS: u32 = 256;
/// Most seccomp filters of one thread.
pub const MAX_SECCOMP_FILTERS: u32 = 64;
/// Largest seccomp filter (`BPF_MAXINSNS` instructions of 8 bytes).
pub const MAX_SECCOMP_FILTER_LEN: u32 = 4096 * 8;
/// Deepest nesting of known sub-messages (process > task security > creds).
const MAX_DEPTH: u32 = 8;
/// Most fields one schema may list (the pre-pass counts on the stack).
const MAX_SCHEMA_FIELDS: usize = 40;

/// The largest record of `kind` a reader accepts, given the total length
/// of the image's PAGES sections (`pages_len`, from the section table).
/// `None`: no limit from the table (pages, and kinds this reader does
/// not know, which are only hashed in bounded chunks; read as a record,
/// any section is limited by [`MAX_RECORD_LEN`]).
pub fn record_len_limit(kind: SectionKind, pages_len: u64) -> Option<u64> {
    match kind {
        SectionKind::SECURITY_HEADER => Some(MAX_SECURITY_HEADER_LEN),
        SectionKind::PROCESS => Some(
            (pages_len / PAGE_ALIGN)
                .saturating_mul(PROCESS_LEN_PER_PAGE_RUN)
                .saturating_add(PROCESS_BASE_LEN)
                .min(MAX_RECORD_LEN),
        ),
        // Pages are only hashed; their length must match the page runs
        // (checked by the record validation of ckpt-core).
        SectionKind::PAGES => None,
        // Unknown kinds are skipped (only hashed) at open; read as a
        // record, they are bounded by MAX_RECORD_LEN.
        _ => None,
    }
}

/// Most sections of `kind` in one image (format 1.0 holds one task).
pub fn max_sections_of(kind: SectionKind) -> Option<usize> {
    match kind {
        SectionKind::SECURITY_HEADER | SectionKind::PROCESS | SectionKind::PAGES => Some(1),
        _ => None,
    }
}

/// The schema of the records of `kind` this crate defines.
pub fn schema_of(kind: SectionKind) -> Option<&'static Schema> {
    match kind {
        SectionKind::SECURITY_HEADER => Some(&SECURITY_HEADER),
        SectionKind::PROCESS => Some(&PROCESS),
        _ => None,
    }
}

/// What the pre-pass knows about the image beyond the record's bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct WireContext {
    /// Length of the image's PAGES section: each page run covers at least
    /// one page of it, so there are at most `pages_len / 4096` runs.
    pub pages_len: u64,
}

/// The limit on the number of elements of a repeated field.
#[derive(Clone, Copy, Debug)]
pub enum Count {
    Fixed(u32),
    /// One per page of the PAGES section.
    PerPage,
}

impl Count {
    fn max(self, ctx: &WireContext) -> u64 {
        match self {
            Count::Fixed(n) => u64::from(n),
            Count::PerPage => ctx.pages_len / PAGE_ALIGN,
        }
    }
}

/// How a field is encoded and what bounds it.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// A singular scalar (varint, fixed32 or fixed64): allocates nothing.
    Scalar,
    /// A repeated varint scalar, packed or not: at most `max` elements.
    RepeatedVarint { max: u32 },
    /// A singular `string` or `bytes` of at most `max_len` bytes.
    Bytes { max_len: u32 },
    /// A repeated `bytes`: at most `max` elements of `max_len` bytes.
    RepeatedBytes { max: u32, max_len: u32 },
    /// A singular sub-message, at most once.
    Message(&'static Schema),
    /// A repeated sub-message.
    RepeatedMessage { max: Count, schema: &'static Schema },
}

/// One field of a record.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub tag: u32,
    pub name: &'static str,
    pub shape: Shape,
    /// `size_of` one element in memory (for [`Schema::structure_bound`]).
    pub elem_size: usize,
}

/// The fields of one protobuf message and their limits.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Schema {
    fn field(&self, tag: u32) -> Option<(usize, &Field)> {
        self.fields.iter().enumerate().find(|(_, f)| f.tag == tag)
    }

    /// Most bytes the decoded structure of one message may occupy beyond
    /// the copies of its string and byte fields: every repeated field at
    /// its limit, times 2 for `Vec` growth, nested messages included.
    pub fn structure_bound(&self, ctx: &WireContext) -> u64 {
        self.fields
            .iter()
            .map(|f| match f.shape {
                Shape::Scalar | Shape::Bytes { .. } => 0,
                Shape::RepeatedVarint { max } | Shape::RepeatedBytes { max, .. } => {
                    2 * u64::from(max) * f.elem_size as u64
                }
                Shape::Message(s) => s.structure_bound(ctx),
                Shape::RepeatedMessage { max, schema } => {
                    let per = f.elem_size as u64 + schema.structure_bound(ctx);
                    2u64.saturating_mul(max.max(ctx)).saturating_mul(per)
                }
            })
            .fold(0u64, u64::saturating_add)
    }
}

/// A record whose wire form has a [`Schema`].
pub trait BoundedRecord: prost::Message + Default {
    const SCHEMA: &'static Schema;
}

/// Why a record's wire bytes were refused by the pre-pass.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireLimitError {
    #[error("field {field} has more than {max} elements")]
    TooMany { field: String, max: u64 },
    #[error("field {field} is {len} bytes, over the limit of {max}")]
    TooLong { field: String, len: u64, max: u64 },
    #[error("sub-message {field} occurs more than once")]
    Repeated { field: String },
    #[error("field {field} has wire type {wire_type}, which its schema does not allow")]
    WireType { field: String, wire_type: u8 },
    #[error("the protobuf bytes are malformed at byte {at}: {why}")]
    Malformed { at: usize, why: &'static str },
    #[error("sub-messages are nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Checks the wire bytes of one `schema` message against its limits,
/// without allocating (except for an error's message).
pub fn check_wire(
    bytes: &[u8],
    schema: &'static Schema,
    ctx: &WireContext,
) -> Result<(), WireLimitError> {
    check_message(bytes, 0, schema, ctx, 0)
}

fn check_message(
    buf: &[u8],
    base: usize,
    schema: &'static Schema,
    ctx: &WireContext,
    depth: u32,
) -> Result<(), WireLimitError> {
    if depth > MAX_DEPTH {
        return Err(WireLimitError::TooDeep);
    }
    let mut counts = [0u64; MAX_SCHEMA_FIELDS];
    let mut pos = 0usize;
    let name = |f: &Field| format!("{}.{}", schema.name, f.name);
    while pos < buf.len() {
        let at = base + pos;
        let key = varint(buf, &mut pos, base)?;
        let (tag, wire_type) = (key >> 3, (key & 7) as u8);
        if tag == 0 || tag > u64::from(u32::MAX >> 3) {
            return Err(WireLimitError::Malformed {
                at,
                why: "field number 0 or too large",
            });
        }
        let payload = skip(buf, &mut pos, base, wire_type)?;
        let Some((index, f)) = schema.field(tag as u32) else {
            continue;
        };
        let wrong = || WireLimitError::WireType {
            field: name(f),
            wire_type,
        };
        let count = &mut counts[index];
        match f.shape {
            Shape::Scalar => {}
            Shape::RepeatedVarint { max } => {
                *count += match (wire_type, payload) {
                    (0, _) => 1,
                    (2, Some(p)) => p.iter().filter(|b| *b & 0x80 == 0).count() as u64,
                    _ => return Err(wrong()),
                };
                over(*count, u64::from(max), || name(f))?;
            }
            Shape::Bytes { max_len } => {
                let p = payload.ok_or_else(wrong)?;
                too_long(p.len(), max_len, || name(f))?;
            }
            Shape::RepeatedBytes { max, max_len } => {
                let p = payload.ok_or_else(wrong)?;
                too_long(p.len(), max_len, || name(f))?;
                *count += 1;
                over(*count, u64::from(max), || name(f))?;
            }
            Shape::Message(sub) => {
                let p = payload.ok_or_else(wrong)?;
                *count += 1;
                if *count > 1 {
                    return Err(WireLimitError::Repeated { field: name(f) });
                }
                check_message(p, base + pos - p.len(), sub, ctx, depth + 1)?;
            }
            Shape::RepeatedMessage { max, schema: sub } => {
                let p = payload.ok_or_else(wrong)?;
                *count += 1;
                over(*count, max.max(ctx), || name(f))?;
                check_message(p, base + pos - p.len(), sub, ctx, depth + 1)?;
            }
        }
    }
    Ok(())
}

fn over(count: u64, max: u64, field: impl Fn() -> String) -> Result<(), WireLimitError> {
    if count > max {
        return Err(WireLimitError::TooMany {
            field: field(),
            max,
        });
    }
    Ok(())
}

fn too_long(len: usize, max: u32, field: impl Fn() -> String) -> Result<(), WireLimitError> {
    if len as u64 > u64::from(max) {
        return Err(WireLimitError::TooLong {
            field: field(),
            len: len as u64,
            max: u64::from(max),
        });
    }
    Ok(())
}

/// Reads one base-128 varint (at most 10 bytes).
fn varint(buf: &[u8], pos: &mut usize, base: usize) -> Result<u64, WireLimitError> {
    let mut v = 0u64;
    for i in 0..10 {
        let Some(&b) = buf.get(*pos) else {
            return Err(WireLimitError::Malformed {
                at: base + *pos,
                why: "truncated varint",
            });
        };
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(WireLimitError::Malformed {
        at: base + *pos,
        why: "varint longer than 10 bytes",
    })
}

/// Skips one field's payload; returns it for length-delimited fields.
fn skip<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    base: usize,
    wire_type: u8,
) -> Result<Option<&'a [u8]>, WireLimitError> {
    let at = base + *pos;
    let fixed = |n: usize, pos: &mut usize| match pos.checked_add(n) {
        Some(end) if end <= buf.len() => {
            *pos = end;
            Ok(None)
        }
        _ => Err(WireLimitError::Malformed {
            at,
            why: "truncated fixed-width field",
        }),
    };
    match wire_type {
        0 => varint(buf, pos, base).map(|_| None),
        1 => fixed(8, pos),
        5 => fixed(4, pos),
        2 => {
            let len = varint(buf, pos, base)?;
            let start = *pos;
            match usize::try_from(len).ok().and_then(|l| start.checked_add(l)) {
                Some(end) if end <= buf.len() => {
                    *pos = end;
                    Ok(Some(&buf[start..end]))
                }
                _ => Err(WireLimitError::Malformed {
                    at,
                    why: "length-delimited field runs past its message",
                }),
            }
        }
        _ => Err(WireLimitError::Malformed {
            at,
            why: "groups and wire types 6 and 7 are not accepted",
        }),
    }
}

// ---- the schemas of records/ -------------------------------------------

const fn scalar(tag: u32, name: &'static str) -> Field {
    Field {
        tag,
        name,
        shape: Shape::Scalar,
        elem_size: 0,
    }
}

const fn bytes(tag: u32, name: &'static str, max_len: u32) -> Field {
    Field {
        tag,
        name,
        shape: Shape::Bytes { max_len },
        elem_size: 0,
    }
}

const fn message(tag: u32, name: &'static str, schema: &'static Schema) -> Field {
    Field {
        tag,
        name,
        shape: Shape::Message(schema),
        elem_size: 0,
    }
}

const fn repeated<T>(tag: u32, name: &'static str, max: Count, schema: &'static Schema) -> Field {
    Field {
        tag,
        name,
        shape: Shape::RepeatedMessage { max, schema },
        elem_size: size_of::<T>(),
    }
}

const fn varints<T>(tag: u32, name: &'static str, max: u32) -> Field {
    Field {
        tag,
        name,
        shape: Shape::RepeatedVarint { max },
        elem_size: size_of::<T>(),
    }
}

/// `SecurityHeaderRecord`.
pub static SECURITY_HEADER: Schema = Schema {
    name: "SecurityHeaderRecord",
    fields: &[
        repeated::<LsmRecord>(1, "lsms", Count::Fixed(MAX_LSMS), &LSM),
        bytes(2, "kernel_release", MAX_TEXT_LEN),
        bytes(3, "arch", MAX_TEXT_LEN),
        scalar(4, "created_unix_secs"),
        bytes(5, "hostname", MAX_TEXT_LEN),
        bytes(6, "writer_version", MAX_TEXT_LEN),
    ],
};

static LSM: Schema = Schema {
    name: "LsmRecord",
    fields: &[
        bytes(1, "name", MAX_TEXT_LEN),
        scalar(2, "id"),
        message(3, "fingerprint", &FINGERPRINT),
    ],
};

static FINGERPRINT: Schema = Schema {
    name: "FingerprintRecord",
    fields: &[
        bytes(1, "digest", 32),
        bytes(2, "version", MAX_TEXT_LEN),
        repeated::<ComponentRecord>(3, "components", Count::Fixed(MAX_COMPONENTS), &COMPONENT),
        bytes(4, "note", MAX_TEXT_LEN),
    ],
};

static COMPONENT: Schema = Schema {
    name: "ComponentRecord",
    fields: &[bytes(1, "name", MAX_TEXT_LEN), bytes(2, "digest", 32)],
};

/// `TaskSecurityRecord`.
pub static TASK_SECURITY: Schema = Schema {
    name: "TaskSecurityRecord",
    fields: &[
        scalar(1, "tid"),
        message(2, "creds", &CREDS),
        repeated::<LabelRecord>(3, "labels", Count::Fixed(MAX_LABELS), &LABEL),
        scalar(4, "no_new_privs"),
        scalar(5, "seccomp_mode"),
        Field {
            tag: 6,
            name: "seccomp_filters",
            shape: Shape::RepeatedBytes {
                max: MAX_SECCOMP_FILTERS,
                max_len: MAX_SECCOMP_FILTER_LEN,
            },
            elem_size: size_of::<Vec<u8>>(),
        },
        scalar(7, "personality"),
    ],
};

static CREDS: Schema = Schema {
    name: "CredsRecord",
    fields: &[
        varints::<u32>(1, "uids", 4),
        varints::<u32>(2, "gids", 4),
        varints::<u32>(3, "groups", MAX_GROUPS),
        scalar(4, "cap_inheritable"),
        scalar(5, "cap_permitted"),
        scalar(6, "cap_effective"),
        scalar(7, "cap_bounding"),
        scalar(8, "cap_ambient"),
        scalar(9, "securebits"),
    ],
};

static LABEL: Schema = Schema {
    name: "LabelRecord",
    fields: &[
        bytes(1, "lsm", MAX_TEXT_LEN),
        bytes(2, "attr", MAX_TEXT_LEN),
        bytes(3, "value", MAX_TEXT_LEN),
    ],
};

/// `ProcessRecord`.
pub static PROCESS: Schema = Schema {
    name: "ProcessRecord",
    fields: &[
        scalar(1, "pid"),
        bytes(2, "comm", MAX_COMM_LEN),
        message(3, "exe", &FILE_ID),
        message(4, "cwd", &FILE_ID),
        scalar(5, "umask"),
        scalar(6, "personality"),
        message(7, "regs", &REGS),
        bytes(8, "xsave", MAX_XSAVE_LEN),
        scalar(9, "sigmask"),
        repeated::<SigactionRecord>(10, "sigactions", Count::Fixed(MAX_SIGACTIONS), &SIGACTION),
        repeated::<VmaRecord>(11, "vmas", Count::Fixed(MAX_VMAS), &VMA),
        repeated::<PageRunRecord>(12, "page_runs", Count::PerPage, &PAGE_RUN),
        message(13, "mm", &MM),
        varints::<u64>(14, "auxv", MAX_AUXV_WORDS),
        repeated::<RlimitRecord>(15, "rlimits", Count::Fixed(MAX_RLIMITS), &RLIMIT),
        message(16, "rseq", &SCALARS_ONLY),
        repeated::<FdRecord>(17, "fds", Count::Fixed(MAX_FDS), &FD),
        repeated::<PipeRecord>(18, "pipes", Count::Fixed(MAX_FDS), &PIPE),
        scalar(19, "no_new_privs"),
        message(20, "sigaltstack", &SCALARS_ONLY),
        bytes(21, "vdso_sha256", 32),
        message(32, "security", &TASK_SECURITY),
        message(22, "attrs", &TASK_ATTRS),
        message(40, "terminal", &TERMINAL),
        repeated::<PosixTimerRecord>(
            45,
            "posix_timers",
            Count::Fixed(MAX_POSIX_TIMERS),
            &SCALARS_ONLY,
        ),
        repeated::<GuardRunRecord>(
            46,
            "guard_runs",
            Count::Fixed(MAX_GUARD_RUNS),
            &SCALARS_ONLY,
        ),
        repeated::<ThreadRecord>(60, "threads", Count::Fixed(MAX_THREADS), &THREAD),
    ],
};

static THREAD: Schema = Schema {
    name: "ThreadRecord",
    fields: &[
        bytes(2, "comm", MAX_COMM_LEN),
        message(3, "regs", &REGS),
        bytes(4, "xsave", MAX_XSAVE_LEN),
        message(6, "sigaltstack", &SCALARS_ONLY),
        message(7, "rseq", &SCALARS_ONLY),
        message(9, "robust_list", &SCALARS_ONLY),
    ],
};

static TASK_ATTRS: Schema = Schema {
    name: "TaskAttrsRecord",
    fields: &[repeated::<ItimerRecord>(
        8,
        "itimers",
        Count::Fixed(MAX_ITIMERS),
        &SCALARS_ONLY,
    )],
};

static TERMINAL: Schema = Schema {
    name: "TerminalRecord",
    fields: &[
        bytes(7, "cc", MAX_TERMINAL_CC_LEN),
        message(8, "winsize", &SCALARS_ONLY),
    ],
};

/// Messages of scalars only (registers, rseq, sigaltstack, ...): every
/// field is skipped like an unknown one and allocates nothing.
static SCALARS_ONLY: Schema = Schema {
    name: "scalars",
    fields: &[],
};
static REGS: Schema = Schema {
    name: "X86RegsRecord",
    fields: &[],
};
static MM: Schema = Schema {
    name: "MmFieldsRecord",
    fields: &[],
};
static SIGACTION: Schema = Schema {
    name: "SigactionRecord",
    fields: &[],
};
static RLIMIT: Schema = Schema {
    name: "RlimitRecord",
    fields: &[],
};
static PAGE_RUN: Schema = Schema {
    name: "PageRunRecord",
    fields: &[],
};

static FILE_ID: Schema = Schema {
    name: "FileIdRecord",
    fields: &[
        bytes(1, "path", MAX_PATH_LEN),
        message(4, "stamp", &FILE_STAMP),
    ],
};

/// A file's identity beyond (dev, ino): scalars and one SHA-256.
static FILE_STAMP: Schema = Schema {
    name: "FileStampRecord",
    fields: &[bytes(6, "sha256", MAX_DIGEST_LEN)],
};

static VMA: Schema = Schema {
    name: "VmaRecord",
    fields: &[
        bytes(7, "name", MAX_PATH_LEN),
        message(13, "stamp", &FILE_STAMP),
    ],
};

static FD: Schema = Schema {
    name: "FdRecord",
    fields: &[
        bytes(3, "path", MAX_PATH_LEN),
        message(11, "stamp", &FILE_STAMP),
    ],
};

static PIPE: Schema = Schema {
    name: "PipeRecord",
    fields: &[bytes(2, "data", MAX_PIPE_DATA_LEN)],
};

const _: () = {
    assert!(PROCESS.fields.len() <= MAX_SCHEMA_FIELDS);
    assert!(SECURITY_HEADER.fields.len() <= MAX_SCHEMA_FIELDS);
    assert!(TASK_SECURITY.fields.len() <= MAX_SCHEMA_FIELDS);
};

impl BoundedRecord for SecurityHeaderRecord {
    const SCHEMA: &'static Schema = &SECURITY_HEADER;
}
impl BoundedRecord for ProcessRecord {
    const SCHEMA: &'static Schema = &PROCESS;
}
impl BoundedRecord for TaskSecurityRecord {
    const SCHEMA: &'static Schema = &TASK_SECURITY;
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Every length-delimited field (string, bytes, sub-message, packed
    /// repeated) of `bytes` that `schema` does not list: such a field would
    /// be skipped by the pre-pass but decoded (and allocated) by prost.
    fn unlisted(bytes: &[u8], schema: &'static Schema, out: &mut Vec<String>) {
        let mut pos = 0;
        while pos < bytes.len() {
            let key = varint(bytes, &mut pos, 0).unwrap();
            let (tag, wt) = ((key >> 3) as u32, (key & 7) as u8);
            let payload = skip(bytes, &mut pos, 0, wt).unwrap();
            match (schema.field(tag), payload) {
                (None, Some(_)) => out.push(format!("{}.{tag}", schema.name)),
                (Some((_, f)), Some(p)) => match f.shape {
                    Shape::Message(s) | Shape::RepeatedMessage { schema: s, .. } => {
                        unlisted(p, s, out)
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }

    fn full_task() -> TaskSecurityRecord {
        TaskSecurityRecord {
            tid: 1,
            creds: Some(CredsRecord {
                uids: vec![1; 4],
                gids: vec![1; 4],
                groups: vec![1, 2],
                cap_bounding: 1,
                ..Default::default()
            }),
            labels: vec![LabelRecord {
                lsm: "x".into(),
                attr: "current".into(),
                value: b"v".to_vec(),
            }],
            no_new_privs: true,
            seccomp_mode: 2,
            seccomp_filters: vec![vec![0; 8]],
            personality: 1,
        }
    }

    fn full_process() -> ProcessRecord {
        let fid = || {
            Some(FileIdRecord {
                path: "/x".into(),
                dev: 1,
                ino: 1,
                stamp: Some(FileStampRecord {
                    size: 1,
                    sha256: vec![1; 32],
                    btime_sec: Some(1),
                    ..Default::default()
                }),
            })
        };
        ProcessRecord {
            pid: 1,
            comm: "c".into(),
            exe: fid(),
            cwd: fid(),
            umask: 1,
            personality: 1,
            regs: Some(X86RegsRecord {
                rip: 1,
                ..Default::default()
            }),
            xsave: vec![1],
            sigmask: 1,
            sigactions: vec![SigactionRecord {
                signo: 1,
                handler: 1,
                flags: 1,
                restorer: 1,
                mask: 1,
            }],
            vmas: vec![VmaRecord {
                start: 4096,
                end: 8192,
                prot: 1,
                shared: true,
                growsdown: true,
                kind: 1,
                name: "n".into(),
                offset: 1,
                dev: 1,
                ino: 1,
                madvise: 1,
                may_write: true,
                stamp: Some(FileStampRecord {
                    size: 1,
                    sha256: vec![1; 32],
                    btime_sec: Some(1),
                    ..Default::default()
                }),
            }],
            page_runs: vec![PageRunRecord {
                vaddr: 4096,
                len: 4096,
                section_offset: 0,
            }],
            mm: Some(MmFieldsRecord {
                brk: 1,
                ..Default::default()
            }),
            auxv: vec![1, 2],
            rlimits: vec![RlimitRecord {
                resource: 1,
                soft: 1,
                hard: 1,
            }],
            rseq: Some(RseqRecord {
                addr: 1,
                len: 32,
                sig: 1,
                flags: 0,
            }),
            fds: vec![FdRecord {
                fd: 1,
                kind: 1,
                path: "/p".into(),
                flags: 1,
                pos: 1,
                dev: 1,
                ino: 1,
                rdev: 1,
                pipe_ino: 1,
                same_file_as: Some(0),
                stamp: Some(FileStampRecord {
                    size: 1,
                    sha256: vec![1; 32],
                    btime_sec: Some(1),
                    ..Default::default()
                }),
            }],
            pipes: vec![PipeRecord {
                ino: 1,
                data: vec![1],
                capacity: Some(65536),
            }],
            no_new_privs: true,
            sigaltstack: Some(SigaltstackRecord {
                sp: 1,
                flags: 1,
                size: 1,
            }),
            vdso_sha256: vec![0; 32],
            security: Some(full_task()),
            attrs: Some(TaskAttrsRecord {
                dumpable: 1,
                itimers: vec![ItimerRecord {
                    which: 0,
                    interval_us: 1,
                    value_us: 1,
                }],
                ..Default::default()
            }),
            terminal: Some(TerminalRecord {
                fd: 0,
                iflag: 1,
                oflag: 1,
                cflag: 1,
                lflag: 1,
                line: 1,
                cc: vec![1; 19],
                winsize: Some(WinsizeRecord {
                    rows: 1,
                    cols: 1,
                    xpixel: 1,
                    ypixel: 1,
                }),
            }),
            posix_timers: vec![PosixTimerRecord {
                id: 1,
                signo: 10,
                ..Default::default()
            }],
            guard_runs: vec![GuardRunRecord {
                start: 4096,
                len: 4096,
            }],
            threads: vec![ThreadRecord {
                tid: 2,
                comm: "t".into(),
                xsave: vec![1],
                ..Default::default()
            }],
        }
    }

    fn full_header() -> SecurityHeaderRecord {
        SecurityHeaderRecord {
            lsms: vec![LsmRecord {
                name: "selinux".into(),
                id: 101,
                fingerprint: Some(FingerprintRecord {
                    digest: vec![0; 32],
                    version: "1".into(),
                    components: vec![ComponentRecord {
                        name: "c".into(),
                        digest: vec![0; 32],
                    }],
                    note: "n".into(),
                }),
            }],
            kernel_release: "6".into(),
            arch: "x86_64".into(),
            created_unix_secs: 1,
            hostname: "h".into(),
            writer_version: "v".into(),
        }
    }

    const PAGES: WireContext = WireContext { pages_len: 4096 };

    #[test]
    fn schemas_list_every_variable_length_field_of_the_records() {
        let mut out = Vec::new();
        unlisted(&full_process().encode_to_vec(), &PROCESS, &mut out);
        unlisted(&full_header().encode_to_vec(), &SECURITY_HEADER, &mut out);
        assert_eq!(out, Vec::<String>::new());
        check_wire(&full_process().encode_to_vec(), &PROCESS, &PAGES).unwrap();
        check_wire(&full_header().encode_to_vec(), &SECURITY_HEADER, &PAGES).unwrap();
    }

    #[test]
    fn each_repeated_field_is_refused_one_element_over_its_limit() {
        let mut p = full_process();
        p.vmas = vec![VmaRecord::default(); MAX_VMAS as usize];
        check_wire(&p.encode_to_vec(), &PROCESS, &PAGES).unwrap();
        p.vmas.push(VmaRecord::default());
        let e = check_wire(&p.encode_to_vec(), &PROCESS, &PAGES).unwrap_err();
        assert_eq!(
            e,
            WireLimitError::TooMany {
                field: "ProcessRecord.vmas".into(),
                max: 65536
            }
        );

        let mut p = full_process();
        p.page_runs.push(PageRunRecord::default());
        let e = check_wire(&p.encode_to_vec(), &PROCESS, &PAGES).unwrap_err();
        assert!(e.to_string().contains("page_runs"), "{e}");

        let mut p = full_process();
        p.auxv = vec![u64::MAX; MAX_AUXV_WORDS as usize + 1];
        let e = check_wire(&p.encode_to_vec(), &PROCESS, &PAGES).unwrap_err();
        assert!(e.to_string().contains("auxv"), "{e}");

        let mut p = full_process();
        p.security.as_mut().unwrap().creds.as_mut().unwrap().groups =
            vec![7; MAX_GROUPS as usize + 1];
        let e = check_wire(&p.encode_to_vec(), &PROCESS, &PAGES).unwrap_err();
        assert!(e.to_string().contains("CredsRecord.groups"), "{e}");

        let mut h = full_header();
        h.lsms[0].fingerprint.as_mut().unwrap().components =
            vec![ComponentRecord::default(); MAX_COMPONENTS as usize + 1];
        let e = check_wire(&h.encode_to_vec(), &SECURITY_HEADER, &PAGES).unwrap_err();
        assert!(e.to_string().contains("components"), "{e}");

        let mut p = full_process();
        p.fds[0].path = "/".repeat(MAX_PATH_LEN as usize + 1);
        let e = check_wire(&p.encode_to_vec(), &PROCESS, &PAGES).unwrap_err();
        assert!(e.to_string().contains("FdRecord.path"), "{e}");
    }

    #[test]
    fn a_singular_sub_message_twice_is_refused_so_merging_cannot_grow_it() {
        let mut bytes = full_process().encode_to_vec();
        let again = ProcessRecord {
            security: full_process().security,
            ..Default::default()
        };
        bytes.extend_from_slice(&again.encode_to_vec());
        let e = check_wire(&bytes, &PROCESS, &PAGES).unwrap_err();
        assert!(matches!(e, WireLimitError::Repeated { .. }), "{e}");
    }

    #[test]
    fn unknown_fields_are_skipped_groups_and_garbage_refused() {
        // Tag 99, length-delimited, 3 bytes: skipped like prost skips it.
        let mut bytes = full_process().encode_to_vec();
        bytes.extend_from_slice(&[0x9a, 0x06, 3, 1, 2, 3]);
        check_wire(&bytes, &PROCESS, &PAGES).unwrap();
        ProcessRecord::decode(bytes.as_slice()).unwrap();
        // A start-group key.
        let e = check_wire(&[0x0b], &PROCESS, &PAGES).unwrap_err();
        assert!(matches!(e, WireLimitError::Malformed { .. }));
        // A length past the end.
        let e = check_wire(&[0x12, 0x7f, 0], &PROCESS, &PAGES).unwrap_err();
        assert!(matches!(e, WireLimitError::Malformed { .. }));
        // Field number 0.
        assert!(check_wire(&[0x00, 0x00], &PROCESS, &PAGES).is_err());
    }

    #[test]
    fn structure_bounds_are_stated() {
        let ctx = WireContext::default();
        // These are the numbers docs/image-format.md quotes.
        let (h, p) = (
            SECURITY_HEADER.structure_bound(&ctx),
            PROCESS.structure_bound(&ctx),
        );
        eprintln!("structure bounds: security header {h}, process {p} (+ 48 per stored page)");
        assert!(h < 64 << 20, "{h}");
        assert!(p < 64 << 20, "{p}");
        let per_page = PROCESS.structure_bound(&WireContext { pages_len: 4096 }) - p;
        assert_eq!(per_page, 2 * size_of::<PageRunRecord>() as u64);
        assert!(record_len_limit(SectionKind::SECURITY_HEADER, 0) == Some(256 << 10));
        assert_eq!(
            record_len_limit(SectionKind::PROCESS, 1 << 30),
            Some((16 << 20) + 36 * 262_144)
        );
        assert_eq!(
            record_len_limit(SectionKind::PROCESS, u64::MAX),
            Some(MAX_RECORD_LEN)
        );
    }
}
