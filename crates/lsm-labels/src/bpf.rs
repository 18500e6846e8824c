//! BPF-LSM policy: the set of attached BPF programs of type
//! `BPF_PROG_TYPE_LSM`. Enumeration of live links and programs (through
//! [`crate::sys`]) is separated from the pure decisions: which programs
//! count, how a hook is named (from vmlinux BTF) and how instructions are
//! hashed. Those are unit-tested on recorded program infos.

use std::collections::BTreeMap;

use crate::profile::{Digest, PolicyComponent};

/// `BPF_PROG_TYPE_LSM`.
pub const BPF_PROG_TYPE_LSM: u32 = 29;
/// `BPF_PROG_TYPE_CGROUP_SKB` (used by the enumeration test).
pub const BPF_PROG_TYPE_CGROUP_SKB: u32 = 8;
/// `BPF_LSM_MAC`: a program attached to an LSM hook for every task.
pub const BPF_LSM_MAC: u32 = 27;
/// `BPF_LSM_CGROUP`: a program attached to an LSM hook for one cgroup.
pub const BPF_LSM_CGROUP: u32 = 43;
/// `BPF_CGROUP_INET_INGRESS`.
pub const BPF_CGROUP_INET_INGRESS: u32 = 0;
/// `BPF_CGROUP_INET_EGRESS`.
pub const BPF_CGROUP_INET_EGRESS: u32 = 1;
/// `BPF_LINK_TYPE_TRACING` (fentry/fexit/lsm links).
pub const BPF_LINK_TYPE_TRACING: u32 = 2;
/// `BPF_LINK_TYPE_CGROUP`.
pub const BPF_LINK_TYPE_CGROUP: u32 = 3;
/// Most link or program ids we walk.
pub const MAX_BPF_OBJECTS: usize = 65_536;
/// Most bytes of translated instructions we read per program (the
/// verifier's limit is 1M instructions of 8 bytes).
pub const MAX_XLATED_BYTES: usize = 8 << 20;
/// Path of the kernel's own BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// Largest vmlinux BTF we read.
pub const MAX_BTF_BYTES: u64 = 64 << 20;

/// One BPF link, from `struct bpf_link_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub id: u32,
    pub link_type: u32,
    pub prog_id: u32,
    /// The attach type, for tracing and cgroup links.
    pub attach_type: Option<u32>,
}

/// One BPF program, from `struct bpf_prog_info` (+ its instructions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgInfo {
    pub id: u32,
    pub prog_type: u32,
    pub tag: [u8; 8],
    pub name: String,
    pub attach_btf_obj_id: u32,
    pub attach_btf_id: u32,
    /// Translated instructions as dumped by the kernel (empty if hidden).
    pub xlated: Vec<u8>,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_ne_bytes(s.try_into().expect("4 bytes")))
}

/// Decodes a raw `struct bpf_link_info` (type @0, id @4, prog_id @8, the
/// union @16: tracing.attach_type @16, cgroup.attach_type @24).
pub fn parse_link_info(raw: &[u8]) -> Option<LinkInfo> {
    let link_type = u32_at(raw, 0)?;
    let attach_type = match link_type {
        BPF_LINK_TYPE_TRACING => u32_at(raw, 16),
        BPF_LINK_TYPE_CGROUP => u32_at(raw, 24),
        _ => None,
    };
    Some(LinkInfo {
        id: u32_at(raw, 4)?,
        link_type,
        prog_id: u32_at(raw, 8)?,
        attach_type,
    })
}

/// Decodes a raw `struct bpf_prog_info` (type @0, id @4, tag @8, name @64,
/// attach_btf_obj_id @220, attach_btf_id @224; the last two are 0 when the
/// kernel's struct is shorter).
pub fn parse_prog_info(raw: &[u8], xlated: Vec<u8>) -> Option<ProgInfo> {
    let name_bytes = raw.get(64..80)?;
    let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(16);
    Some(ProgInfo {
        id: u32_at(raw, 4)?,
        prog_type: u32_at(raw, 0)?,
        tag: raw.get(8..16)?.try_into().ok()?,
        name: String::from_utf8_lossy(&name_bytes[..end]).into_owned(),
        attach_btf_obj_id: u32_at(raw, 220).unwrap_or(0),
        attach_btf_id: u32_at(raw, 224).unwrap_or(0),
        xlated,
    })
}

/// How an LSM program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LsmAttach {
    /// `BPF_LSM_MAC`: every task.
    Mac,
    /// `BPF_LSM_CGROUP`: tasks of one cgroup.
    Cgroup,
}

/// One attached BPF-LSM program: the policy unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsmProgram {
    pub link_id: u32,
    pub prog_id: u32,
    /// Hook name without the `bpf_lsm_` prefix (e.g. `file_open`).
    pub hook: String,
    pub prog_name: String,
    pub attach: LsmAttach,
    /// SHA-256 of [`program_bytes`].
    pub digest: Digest,
}

impl LsmProgram {
    /// The fingerprint component `bpf/<hook>/<prog name>`.
    pub fn component(&self) -> PolicyComponent {
        PolicyComponent {
            name: format!("bpf/{}/{}", self.hook, self.prog_name),
            digest: self.digest,
        }
    }
}

/// Why the BPF-LSM policy could not be determined.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BpfError {
    #[error("cannot enumerate BPF links with bpf(BPF_LINK_GET_NEXT_ID): {0}; this needs CAP_SYS_ADMIN (run ckpt as root)")]
    ListLinks(#[source] std::io::Error),
    #[error("cannot enumerate BPF programs with bpf(BPF_PROG_GET_NEXT_ID): {0}; this needs CAP_SYS_ADMIN (run ckpt as root)")]
    ListProgs(#[source] std::io::Error),
    #[error("cannot read BPF link {id}: {source}")]
    LinkInfo {
        id: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read BPF program {id}: {source}")]
    ProgInfo {
        id: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("more than {0} BPF objects; refusing to walk further")]
    TooMany(usize),
    #[error("BPF-LSM program {prog_id} ({name:?}) attaches to BTF id {btf_id}, which is not a bpf_lsm_* function in {VMLINUX_BTF}")]
    UnnamedHook {
        prog_id: u32,
        name: String,
        btf_id: u32,
    },
    #[error("the kernel hides the instructions of BPF-LSM program {prog_id} ({name:?}); ckpt needs CAP_SYS_ADMIN to hash them")]
    HiddenInstructions { prog_id: u32, name: String },
    #[error("cannot use {VMLINUX_BTF} to name BPF-LSM hooks: {0}")]
    Btf(String),
}

/// Zeroes the parts of dumped instructions that change on every load of the
/// same program, or with the reader's privileges rather than the program:
/// map ids in 64-bit immediate loads (`BPF_LD|BPF_IMM|BPF_DW` whose src_reg
/// 1..=6 marks a map reference) and the immediate of helper calls
/// (`BPF_JMP|BPF_CALL`, src_reg 0), which the kernel dumps as an address
/// offset or as 0 depending on `kernel.kptr_restrict` and CAP_SYSLOG. Which
/// helper is called stays covered by the program tag.
pub fn normalise_xlated(insns: &[u8]) -> Vec<u8> {
    let mut out = insns.to_vec();
    let n = out.len() / 8;
    let mut i = 0;
    while i < n {
        let code = out[i * 8];
        let src_reg = out[i * 8 + 1] >> 4;
        if code == 0x18 {
            // ld_imm64: two slots.
            if (1..=6).contains(&src_reg) {
                out[i * 8 + 4..i * 8 + 8].fill(0);
            }
            i += 2;
        } else {
            if code == 0x85 && src_reg == 0 {
                out[i * 8 + 4..i * 8 + 8].fill(0);
            }
            i += 1;
        }
    }
    out
}

/// The canonical bytes of one program: `attach\0tag-hex\0normalised-xlated`.
/// The tag is the kernel's SHA-1 over the program as loaded (map fds
/// zeroed), stable across loads and kernel builds; the translated
/// instructions are what actually runs.
pub fn program_bytes(attach: LsmAttach, tag: &[u8; 8], xlated: &[u8]) -> Vec<u8> {
    let mut b = match attach {
        LsmAttach::Mac => b"lsm_mac\0".to_vec(),
        LsmAttach::Cgroup => b"lsm_cgroup\0".to_vec(),
    };
    b.extend_from_slice(hex::encode(tag).as_bytes());
    b.push(0);
    b.extend_from_slice(&normalise_xlated(xlated));
    b
}

/// Picks the BPF-LSM programs among `links` (each with its program in
/// `progs`): program type LSM, link attach type `BPF_LSM_MAC` or
/// `BPF_LSM_CGROUP`. Hooks are named by `btf_name(attach_btf_id)`, which
/// must return `bpf_lsm_<hook>`. Sorted by component name.
pub fn select_lsm_programs(
    links: &[LinkInfo],
    progs: &BTreeMap<u32, ProgInfo>,
    btf_name: &mut dyn FnMut(u32) -> Option<String>,
) -> Result<Vec<LsmProgram>, BpfError> {
    let mut out = Vec::new();
    for l in links {
        let Some(p) = progs.get(&l.prog_id) else {
            continue;
        };
        if p.prog_type != BPF_PROG_TYPE_LSM {
            continue;
        }
        let attach = match l.attach_type {
            Some(BPF_LSM_MAC) => LsmAttach::Mac,
            Some(BPF_LSM_CGROUP) => LsmAttach::Cgroup,
            _ => continue,
        };
        let hook = btf_name(p.attach_btf_id)
            .and_then(|n| n.strip_prefix("bpf_lsm_").map(str::to_owned))
            .ok_or_else(|| BpfError::UnnamedHook {
                prog_id: p.id,
                name: p.name.clone(),
                btf_id: p.attach_btf_id,
            })?;
        if p.xlated.is_empty() {
            return Err(BpfError::HiddenInstructions {
                prog_id: p.id,
                name: p.name.clone(),
            });
        }
        out.push(LsmProgram {
            link_id: l.id,
            prog_id: p.id,
            hook,
            prog_name: p.name.clone(),
            attach,
            digest: Digest::of(&program_bytes(attach, &p.tag, &p.xlated)),
        });
    }
    out.sort_by(|a, b| {
        a.component()
            .name
            .cmp(&b.component().name)
            .then(a.digest.cmp(&b.digest))
    });
    Ok(out)
}

/// What the live enumeration found.
#[derive(Clone, Debug, Default)]
pub struct LiveBpf {
    pub links: Vec<LinkInfo>,
    /// Programs behind the links, and every other LSM-type program.
    pub progs: BTreeMap<u32, ProgInfo>,
    /// LSM-type programs loaded but not attached through any link.
    pub unattached_lsm_progs: Vec<u32>,
}

/// Reads program `id` (`BPF_PROG_GET_FD_BY_ID` + `BPF_OBJ_GET_INFO_BY_FD`),
/// with its translated instructions when `with_insns`. `None` when it went
/// away meanwhile.
///
/// # Errors
/// [`BpfError::ProgInfo`] with the kernel's error (EPERM without privilege).
pub fn read_program(id: u32, with_insns: bool) -> Result<Option<ProgInfo>, BpfError> {
    let fd = match crate::sys::bpf_prog_get_fd_by_id(id) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(source) => return Err(BpfError::ProgInfo { id, source }),
    };
    let max = if with_insns { MAX_XLATED_BYTES } else { 0 };
    let (raw, insns) =
        crate::sys::bpf_prog_info(&fd, max).map_err(|source| BpfError::ProgInfo { id, source })?;
    Ok(parse_prog_info(&raw, insns))
}

/// Walks every BPF link and program id on the live kernel (needs
/// CAP_SYS_ADMIN). Objects that vanish meanwhile are skipped.
pub fn enumerate_live() -> Result<LiveBpf, BpfError> {
    let mut live = LiveBpf::default();
    let mut id = 0;
    while let Some(next) = crate::sys::bpf_link_get_next_id(id).map_err(BpfError::ListLinks)? {
        id = next;
        if live.links.len() >= MAX_BPF_OBJECTS {
            return Err(BpfError::TooMany(MAX_BPF_OBJECTS));
        }
        let fd = match crate::sys::bpf_link_get_fd_by_id(id) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(source) => return Err(BpfError::LinkInfo { id, source }),
        };
        let raw =
            crate::sys::bpf_link_info(&fd).map_err(|source| BpfError::LinkInfo { id, source })?;
        if let Some(l) = parse_link_info(&raw) {
            live.links.push(l);
        }
    }
    let linked: std::collections::BTreeSet<u32> = live.links.iter().map(|l| l.prog_id).collect();
    let mut id = 0;
    let mut seen = 0usize;
    while let Some(next) = crate::sys::bpf_prog_get_next_id(id).map_err(BpfError::ListProgs)? {
        id = next;
        seen += 1;
        if seen > MAX_BPF_OBJECTS {
            return Err(BpfError::TooMany(MAX_BPF_OBJECTS));
        }
        let is_linked = linked.contains(&id);
        let Some(mut p) = read_program(id, false)? else {
            continue;
        };
        if p.prog_type != BPF_PROG_TYPE_LSM && !is_linked {
            continue;
        }
        if p.prog_type == BPF_PROG_TYPE_LSM {
            if is_linked {
                match read_program(id, true)? {
                    Some(with_insns) => p = with_insns,
                    None => continue,
                }
            } else {
                live.unattached_lsm_progs.push(id);
            }
        }
        live.progs.insert(id, p);
    }
    Ok(live)
}

/// Loads a `BPF_PROG_TYPE_CGROUP_SKB` program that returns 1 (allow every
/// packet) under `name`. For tests and diagnostics: a real, harmless,
/// non-LSM program that enumeration must see and exclude.
///
/// # Errors
/// `EPERM` without CAP_BPF/CAP_SYS_ADMIN.
pub fn load_allow_all_cgroup_skb(name: &str) -> std::io::Result<std::os::fd::OwnedFd> {
    // mov64 r0, 1 ; exit
    let insns: [u64; 2] = [
        u64::from_le_bytes([0xb7, 0, 0, 0, 1, 0, 0, 0]),
        u64::from_le_bytes([0x95, 0, 0, 0, 0, 0, 0, 0]),
    ];
    crate::sys::bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, &insns, name)
}

/// Links `prog` to the cgroup directory `cgroup` with `attach_type`
/// (`BPF_LINK_CREATE`); the attachment lasts while the returned fd is open.
///
/// # Errors
/// As the kernel reports (`EPERM`, `EINVAL`, `EBADF`).
pub fn link_to_cgroup(
    prog: &std::os::fd::OwnedFd,
    cgroup: &impl std::os::fd::AsRawFd,
    attach_type: u32,
) -> std::io::Result<std::os::fd::OwnedFd> {
    crate::sys::bpf_link_create(prog, cgroup, attach_type)
}

// ---- minimal BTF reader -------------------------------------------------

/// A malformed or unsupported BTF blob.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BtfError {
    #[error("BTF header is truncated or its magic is not 0xeb9f (little-endian)")]
    BadHeader,
    #[error("BTF section offsets point outside the {0}-byte blob")]
    BadSections(usize),
    #[error("BTF type {0} is truncated")]
    TruncatedType(u32),
    #[error("BTF type {id} has unknown kind {kind}")]
    UnknownKind { id: u32, kind: u32 },
}

struct BtfLayout<'a> {
    types: &'a [u8],
    strings: &'a [u8],
}

fn btf_layout(btf: &[u8]) -> Result<BtfLayout<'_>, BtfError> {
    let u16le = |o: usize| btf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32le = |o: usize| {
        btf.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
    };
    if u16le(0) != Some(0xeb9f) {
        return Err(BtfError::BadHeader);
    }
    let hdr_len = u32le(4).ok_or(BtfError::BadHeader)? as usize;
    let type_off = u32le(8).ok_or(BtfError::BadHeader)? as usize;
    let type_len = u32le(12).ok_or(BtfError::BadHeader)? as usize;
    let str_off = u32le(16).ok_or(BtfError::BadHeader)? as usize;
    let str_len = u32le(20).ok_or(BtfError::BadHeader)? as usize;
    let sect = |off: usize, len: usize| -> Result<&[u8], BtfError> {
        let start = hdr_len
            .checked_add(off)
            .ok_or(BtfError::BadSections(btf.len()))?;
        let end = start
            .checked_add(len)
            .ok_or(BtfError::BadSections(btf.len()))?;
        btf.get(start..end).ok_or(BtfError::BadSections(btf.len()))
    };
    Ok(BtfLayout {
        types: sect(type_off, type_len)?,
        strings: sect(str_off, str_len)?,
    })
}

/// Walks BTF types in id order (ids start at 1), calling `f(id, kind,
/// name_off)` until it returns `false`.
fn walk_btf(btf: &[u8], mut f: impl FnMut(u32, u32, u32) -> bool) -> Result<(), BtfError> {
    let l = btf_layout(btf)?;
    let t = l.types;
    let mut off = 0usize;
    let mut id = 1u32;
    while off < t.len() {
        let rd = |o: usize| {
            t.get(o..o + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
        };
        let name_off = rd(off).ok_or(BtfError::TruncatedType(id))?;
        let info = rd(off + 4).ok_or(BtfError::TruncatedType(id))?;
        rd(off + 8).ok_or(BtfError::TruncatedType(id))?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let extra = match kind {
            1 => 4,                    // INT
            2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
            3 => 12,                   // ARRAY
            4 | 5 => 12 * vlen,        // STRUCT, UNION
            6 => 8 * vlen,             // ENUM
            13 => 8 * vlen,            // FUNC_PROTO
            14 => 4,                   // VAR
            15 => 12 * vlen,           // DATASEC
            17 => 4,                   // DECL_TAG
            19 => 12 * vlen,           // ENUM64
            _ => return Err(BtfError::UnknownKind { id, kind }),
        };
        if !f(id, kind, name_off) {
            return Ok(());
        }
        off = off
            .checked_add(12 + extra)
            .ok_or(BtfError::TruncatedType(id))?;
        if off > t.len() {
            return Err(BtfError::TruncatedType(id));
        }
        id = id.checked_add(1).ok_or(BtfError::TruncatedType(id))?;
    }
    Ok(())
}

fn btf_str(btf: &[u8], name_off: u32) -> Result<Option<String>, BtfError> {
    let s = btf_layout(btf)?.strings;
    let Some(rest) = s.get(name_off as usize..) else {
        return Ok(None);
    };
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    Ok(Some(String::from_utf8_lossy(&rest[..end]).into_owned()))
}

/// The name of BTF type `type_id` in a (vmlinux) BTF blob, `None` if there
/// is no such type.
pub fn btf_type_name(btf: &[u8], type_id: u32) -> Result<Option<String>, BtfError> {
    let mut found = None;
    walk_btf(btf, |id, _, name_off| {
        if id == type_id {
            found = Some(name_off);
            false
        } else {
            true
        }
    })?;
    match found {
        Some(off) => btf_str(btf, off),
        None => Ok(None),
    }
}

/// The id of the `BTF_KIND_FUNC` named `name`, if any.
pub fn btf_find_func(btf: &[u8], name: &str) -> Result<Option<u32>, BtfError> {
    let strings = btf_layout(btf)?.strings;
    let mut found = None;
    walk_btf(btf, |id, kind, name_off| {
        if kind == 12 {
            if let Some(rest) = strings.get(name_off as usize..) {
                if rest.starts_with(name.as_bytes()) && rest.get(name.len()) == Some(&0) {
                    found = Some(id);
                    return false;
                }
            }
        }
        true
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(id: u32, prog_type: u32, name: &str, btf_id: u32, insns: &[u8]) -> ProgInfo {
        ProgInfo {
            id,
            prog_type,
            tag: [id as u8; 8],
            name: name.into(),
            attach_btf_obj_id: 1,
            attach_btf_id: btf_id,
            xlated: insns.to_vec(),
        }
    }

    fn names(id: u32) -> Option<String> {
        match id {
            500 => Some("bpf_lsm_file_open".into()),
            501 => Some("bpf_lsm_socket_connect".into()),
            600 => Some("tcp_v4_connect".into()),
            _ => None,
        }
    }

    // mov r0, 0; exit
    const RET0: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    // mov r0, -1 (deny); exit
    const RETM1: [u8; 16] = [
        0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x95, 0, 0, 0, 0, 0, 0, 0,
    ];

    fn recorded() -> (Vec<LinkInfo>, BTreeMap<u32, ProgInfo>) {
        let links = vec![
            LinkInfo {
                id: 1,
                link_type: BPF_LINK_TYPE_TRACING,
                prog_id: 10,
                attach_type: Some(BPF_LSM_MAC),
            },
            LinkInfo {
                id: 2,
                link_type: BPF_LINK_TYPE_CGROUP,
                prog_id: 11,
                attach_type: Some(BPF_LSM_CGROUP),
            },
            // fentry program: tracing link, not LSM.
            LinkInfo {
                id: 3,
                link_type: BPF_LINK_TYPE_TRACING,
                prog_id: 12,
                attach_type: Some(24),
            },
            // cgroup_skb program.
            LinkInfo {
                id: 4,
                link_type: BPF_LINK_TYPE_CGROUP,
                prog_id: 13,
                attach_type: Some(0),
            },
            // link whose program vanished
            LinkInfo {
                id: 5,
                link_type: BPF_LINK_TYPE_TRACING,
                prog_id: 99,
                attach_type: Some(BPF_LSM_MAC),
            },
        ];
        let progs = [
            prog(10, BPF_PROG_TYPE_LSM, "restrict_open", 500, &RET0),
            prog(11, BPF_PROG_TYPE_LSM, "deny_connect", 501, &RETM1),
            prog(12, 26, "trace_connect", 600, &RET0),
            prog(13, BPF_PROG_TYPE_CGROUP_SKB, "ckpt_test_skb", 0, &RET0),
        ]
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
        (links, progs)
    }

    #[test]
    fn only_lsm_programs_with_lsm_attach_types_count() {
        let (links, progs) = recorded();
        let sel = select_lsm_programs(&links, &progs, &mut names).unwrap();
        let comps: Vec<_> = sel.iter().map(|p| p.component().name).collect();
        assert_eq!(
            comps,
            [
                "bpf/file_open/restrict_open",
                "bpf/socket_connect/deny_connect"
            ]
        );
        assert_eq!(sel[0].attach, LsmAttach::Mac);
        assert_eq!(sel[1].attach, LsmAttach::Cgroup);
    }

    #[test]
    fn digest_moves_with_instructions_but_not_with_ids_or_map_ids() {
        let (links, mut progs) = recorded();
        let base = select_lsm_programs(&links, &progs, &mut names).unwrap();
        // Same program reloaded: new prog id, new link id -> same component.
        let mut p = progs.remove(&10).unwrap();
        p.id = 70;
        progs.insert(70, p);
        let mut links2 = links.clone();
        links2[0] = LinkInfo {
            id: 40,
            prog_id: 70,
            ..links2[0].clone()
        };
        let again = select_lsm_programs(&links2, &progs, &mut names).unwrap();
        assert_eq!(
            base.iter().map(|p| p.component()).collect::<Vec<_>>(),
            again.iter().map(|p| p.component()).collect::<Vec<_>>()
        );
        // Changed instructions -> changed digest.
        progs.get_mut(&70).unwrap().xlated = RETM1.to_vec();
        let changed = select_lsm_programs(&links2, &progs, &mut names).unwrap();
        assert_ne!(base[0].digest, changed[0].digest);
        assert_eq!(base[1].digest, changed[1].digest);
        // Map ids in ld_imm64 are ignored.
        let mut a = vec![0x18, 0x11, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        a.extend_from_slice(&RET0);
        let mut b = a.clone();
        b[4] = 9;
        assert_eq!(normalise_xlated(&a), normalise_xlated(&b));
        // A plain 64-bit constant is kept.
        let mut c = a.clone();
        c[1] = 0x01;
        let mut d = c.clone();
        d[4] = 9;
        assert_ne!(normalise_xlated(&c), normalise_xlated(&d));
        // Helper call immediates depend on the reader (kptr_restrict), a
        // bpf-to-bpf call's (src_reg 1) is the program's own offset.
        let call = |src: u8, imm: u8| vec![0x85, src << 4, 0, 0, imm, 0, 0, 0];
        assert_eq!(normalise_xlated(&call(0, 5)), normalise_xlated(&call(0, 0)));
        assert_ne!(normalise_xlated(&call(1, 5)), normalise_xlated(&call(1, 0)));
    }

    #[test]
    fn unnamed_hook_and_hidden_instructions_are_errors() {
        let (links, mut progs) = recorded();
        progs.get_mut(&10).unwrap().attach_btf_id = 600;
        let e = select_lsm_programs(&links, &progs, &mut names).unwrap_err();
        assert!(
            matches!(
                e,
                BpfError::UnnamedHook {
                    prog_id: 10,
                    btf_id: 600,
                    ..
                }
            ),
            "{e}"
        );
        let (links, mut progs) = recorded();
        progs.get_mut(&11).unwrap().xlated.clear();
        let e = select_lsm_programs(&links, &progs, &mut names).unwrap_err();
        assert!(
            matches!(e, BpfError::HiddenInstructions { prog_id: 11, .. }),
            "{e}"
        );
    }

    #[test]
    fn raw_info_layouts_decode() {
        let mut link = vec![0u8; 96];
        link[0..4].copy_from_slice(&BPF_LINK_TYPE_CGROUP.to_ne_bytes());
        link[4..8].copy_from_slice(&7u32.to_ne_bytes());
        link[8..12].copy_from_slice(&8u32.to_ne_bytes());
        link[24..28].copy_from_slice(&BPF_LSM_CGROUP.to_ne_bytes());
        assert_eq!(
            parse_link_info(&link),
            Some(LinkInfo {
                id: 7,
                link_type: BPF_LINK_TYPE_CGROUP,
                prog_id: 8,
                attach_type: Some(BPF_LSM_CGROUP)
            })
        );
        let mut p = vec![0u8; crate::sys::PROG_INFO_SIZE];
        p[0..4].copy_from_slice(&BPF_PROG_TYPE_LSM.to_ne_bytes());
        p[4..8].copy_from_slice(&3u32.to_ne_bytes());
        p[64..68].copy_from_slice(b"abcd");
        p[224..228].copy_from_slice(&500u32.to_ne_bytes());
        let pi = parse_prog_info(&p, vec![]).unwrap();
        assert_eq!(
            (pi.id, pi.prog_type, pi.name.as_str(), pi.attach_btf_id),
            (3, 29, "abcd", 500)
        );
        assert_eq!(parse_prog_info(&p[..40], vec![]), None);
    }

    fn tiny_btf() -> Vec<u8> {
        // types: 1 INT "int", 2 FUNC_PROTO(vlen 1), 3 FUNC "bpf_lsm_file_open"
        let strings = b"\0int\0bpf_lsm_file_open\0x\0";
        let mut types = Vec::new();
        let mut t = |name_off: u32, kind: u32, vlen: u32, size: u32, extra: &[u8]| {
            types.extend_from_slice(&name_off.to_le_bytes());
            types.extend_from_slice(&((kind << 24) | vlen).to_le_bytes());
            types.extend_from_slice(&size.to_le_bytes());
            types.extend_from_slice(extra);
        };
        t(1, 1, 0, 4, &[0, 0, 0, 32]);
        t(0, 13, 1, 1, &[22, 0, 0, 0, 1, 0, 0, 0]);
        t(5, 12, 0, 2, &[]);
        let mut b = Vec::new();
        b.extend_from_slice(&0xeb9fu16.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&24u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(types.len() as u32).to_le_bytes());
        b.extend_from_slice(&(types.len() as u32).to_le_bytes());
        b.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        b.extend_from_slice(&types);
        b.extend_from_slice(strings);
        b
    }

    #[test]
    fn btf_names_and_lookup() {
        let b = tiny_btf();
        assert_eq!(btf_type_name(&b, 1).unwrap().as_deref(), Some("int"));
        assert_eq!(
            btf_type_name(&b, 3).unwrap().as_deref(),
            Some("bpf_lsm_file_open")
        );
        assert_eq!(btf_type_name(&b, 4).unwrap(), None);
        assert_eq!(btf_find_func(&b, "bpf_lsm_file_open").unwrap(), Some(3));
        assert_eq!(btf_find_func(&b, "bpf_lsm_file"), Ok(None));
    }

    #[test]
    fn btf_decoder_never_panics_on_truncation_or_garbage() {
        let b = tiny_btf();
        for n in 0..b.len() {
            let _ = btf_type_name(&b[..n], 3);
            let _ = btf_find_func(&b[..n], "x");
        }
        let mut bad = b.clone();
        bad[12] = 0xff; // type_len huge
        assert!(matches!(
            btf_type_name(&bad, 1),
            Err(BtfError::BadSections(_))
        ));
        let mut bad = b.clone();
        bad[24 + 7] = 0x1f; // kind 31
        assert!(matches!(
            btf_type_name(&bad, 1),
            Err(BtfError::UnknownKind { id: 1, kind: 31 })
        ));
    }
}
