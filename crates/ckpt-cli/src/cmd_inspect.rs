//! `ckpt inspect IMG [--json]`: what an image holds, for people and tools.
//!
//! Everything shown comes from a fully verified image (`image_io`). The
//! JSON form is built from the records field by field so that its shape is
//! ours to keep stable, not prost's.

use crate::image_io::{display_name, open_verified};
use crate::output::{prot_string, utc_time};
use crate::{Failure, InspectArgs};
use std::collections::BTreeMap;

/// The version of the JSON shapes documented in docs/json.md.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// `value` as pretty JSON with sorted keys and `schema_version` added at
/// the top level (for `lsm --json`).
pub fn versioned_json(value: &impl serde::Serialize) -> String {
    let mut v = serde_json::to_value(value).expect("serialisable");
    hex_capabilities(&mut v);
    if let Value::Object(m) = &mut v {
        m.insert("schema_version".into(), json!(JSON_SCHEMA_VERSION));
    }
    serde_json::to_string_pretty(&v).expect("json")
}

/// One number format (docs/json.md): capability sets and securebits,
/// which the library types serialise as numbers, become `"0x..."` strings
/// like every other bit mask.
pub fn hex_capabilities(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match (k.as_str(), &*x) {
                    ("caps", Value::Object(_)) => {
                        if let Value::Object(caps) = x {
                            for c in caps.values_mut() {
                                if let Some(n) = c.as_u64() {
                                    *c = json!(format!("{n:#018x}"));
                                }
                            }
                        }
                    }
                    ("securebits", Value::Number(n)) => {
                        let n = n.as_u64().unwrap_or(0);
                        *x = json!(format!("{n:#x}"));
                    }
                    _ => hex_capabilities(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(hex_capabilities),
        _ => {}
    }
}

/// An address as the JSON forms write it: `"0x7ffd1000"`.
pub fn hex_addr(a: u64) -> String {
    format!("{a:#x}")
}

/// The x86_64 name of system call `nr` (`nanosleep`), or `syscall 999`.
pub fn syscall_name(nr: i64) -> String {
    usize::try_from(nr)
        .ok()
        .and_then(syscalls::x86_64::Sysno::new)
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| format!("syscall {nr}"))
}

/// The system call a task was in (`orig_rax` >= 0), by name.
fn in_syscall(orig_rax: u64) -> Option<String> {
    let nr = orig_rax as i64;
    (nr >= 0).then(|| syscall_name(nr))
}

fn seccomp_mode(m: u32) -> &'static str {
    match m {
        0 => "disabled",
        1 => "strict",
        2 => "filter",
        _ => "unknown",
    }
}

/// A label's value as text (labels are NUL-terminated strings).
fn label_text(v: &[u8]) -> String {
    String::from_utf8_lossy(v)
        .trim_end_matches('\0')
        .trim_end()
        .to_string()
}

/// One task's security state as JSON: credentials, groups, capabilities
/// (hex strings), securebits, labels, no_new_privs, seccomp filters.
fn task_security_json(t: &TaskSecurityRecord) -> Value {
    let creds = t.creds.as_ref().map(|c| {
        json!({
            "uids": c.uids, "gids": c.gids, "groups": c.groups,
            "cap_inheritable": format!("{:#018x}", c.cap_inheritable),
            "cap_permitted": format!("{:#018x}", c.cap_permitted),
            "cap_effective": format!("{:#018x}", c.cap_effective),
            "cap_bounding": format!("{:#018x}", c.cap_bounding),
            "cap_ambient": format!("{:#018x}", c.cap_ambient),
            "securebits": format!("{:#x}", c.securebits),
        })
    });
    json!({
        "tid": t.tid,
        "credentials": creds,
        "labels": t.labels.iter().map(|l| json!({"lsm": l.lsm, "attr": l.attr, "value": label_text(&l.value)})).collect::<Vec<_>>(),
        "no_new_privs": t.no_new_privs,
        "seccomp_mode": seccomp_mode(t.seccomp_mode),
        "seccomp_filters": t.seccomp_filters.iter().map(|f| json!({"instructions": f.len() / 8, "bytes": f.len()})).collect::<Vec<_>>(),
    })
}
use image_format::records::{FdKind, ProcessRecord, TaskSecurityRecord, VmaKind};
use image_format::{SectionKind, VerifiedImage};
use serde_json::{json, Value};

pub fn run(a: &InspectArgs) -> Result<u8, Failure> {
    let img = open_verified(&a.image)?;
    let processes = read_processes(&img, &a.image)?;
    if a.json {
        let v = to_json(&img, &processes);
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        print_human(&display_name(&a.image), &img, &processes, a);
    }
    Ok(0)
}

/// The image's process records, after the validation `restore` applies
/// (`ckpt_core::validate`): an image restore refuses as malformed is
/// refused here too (exit 1).
pub fn read_processes(
    img: &VerifiedImage,
    path: &std::path::Path,
) -> Result<Vec<ProcessRecord>, Failure> {
    match ckpt_core::validate::read_image(img) {
        Ok(v) => Ok(v.processes),
        Err(ckpt_core::validate::ImageRecordError::Format(e)) => {
            Err(crate::image_io::format_failure(path, e))
        }
        Err(e) => Err(Failure::operational(
            anyhow::Error::new(e).context(format!("image {} refused", display_name(path))),
        )),
    }
}

fn section_name(kind: SectionKind) -> String {
    kind.name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("unknown({})", kind.0))
}

fn vma_kind(k: i32) -> &'static str {
    match VmaKind::try_from(k) {
        Ok(VmaKind::Anonymous) => "anonymous",
        Ok(VmaKind::FilePrivate) => "file-private",
        Ok(VmaKind::FileShared) => "file-shared",
        Ok(VmaKind::SharedAnonymous) => "shared-anonymous",
        Ok(VmaKind::Special) => "special",
        _ => "unknown",
    }
}

fn fd_kind(k: i32) -> &'static str {
    match FdKind::try_from(k) {
        Ok(FdKind::RegularFile) => "file",
        Ok(FdKind::Directory) => "directory",
        Ok(FdKind::CharDevice) => "chardev",
        Ok(FdKind::Pipe) => "pipe",
        Ok(FdKind::InheritedStdio) => "inherited-stdio",
        _ => "unknown",
    }
}

/// The security header as JSON (shared with `demo`).
pub fn security_json(img: &VerifiedImage) -> Value {
    let h = img.security_header();
    json!({
        "kernel_release": h.kernel_release,
        "arch": h.arch,
        "created_unix_secs": h.created_unix_secs,
        "created": utc_time(h.created_unix_secs),
        "hostname": h.hostname,
        "writer_version": h.writer_version,
        "lsms": h.lsms.iter().map(|l| {
            let fp = l.fingerprint.clone().unwrap_or_default();
            json!({
                "name": l.name,
                "id": if l.id == 0 { Value::Null } else { json!(l.id) },
                "digest": if fp.digest.is_empty() { Value::Null } else { json!(hex::encode(&fp.digest)) },
                "version": if fp.version.is_empty() { Value::Null } else { json!(fp.version) },
                "note": if fp.note.is_empty() { Value::Null } else { json!(fp.note) },
                "components": fp.components.iter().map(|c| json!({"name": c.name, "digest": hex::encode(&c.digest)})).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
    })
}

fn to_json(img: &VerifiedImage, processes: &[ProcessRecord]) -> Value {
    let v = img.version();
    json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "format_version": format!("{}.{}", v.major, v.minor),
        "file_len": img.file_len(),
        "table_digest": hex::encode(img.table_digest()),
        "signature": img.signature().map(|s| json!({
            "scheme": "ed25519",
            "public_key": hex::encode(s.public_key.as_bytes()),
            "fingerprint": s.fingerprint,
        })),
        "sections": img.sections().iter().map(|s| json!({
            "kind": section_name(s.kind), "offset": hex_addr(s.offset), "len": s.len, "sha256": hex::encode(s.digest),
        })).collect::<Vec<_>>(),
        "security_header": security_json(img),
        "tasks": processes.iter().map(process_json).collect::<Vec<_>>(),
    })
}

fn process_json(p: &ProcessRecord) -> Value {
    let stored: u64 = p.page_runs.iter().map(|r| r.len).sum();
    json!({
        "pid": p.pid,
        "comm": p.comm,
        "exe": p.exe.as_ref().map(|f| f.path.clone()),
        "cwd": p.cwd.as_ref().map(|f| f.path.clone()),
        "umask": format!("{:04o}", p.umask),
        "personality": p.personality,
        "registers": p.regs.as_ref().map(|r| json!({"rip": hex_addr(r.rip), "rsp": hex_addr(r.rsp), "orig_rax": r.orig_rax as i64, "rax": r.rax as i64, "in_syscall": in_syscall(r.orig_rax)})),
        "security": p.security.as_ref().map(task_security_json),
        "sigmask": format!("{:016x}", p.sigmask),
        "sigactions": p.sigactions.len(),
        "mappings": p.vmas.iter().map(|m| json!({
            "start": hex_addr(m.start), "end": hex_addr(m.end),
            "prot": prot_string(m.prot, m.shared), "kind": vma_kind(m.kind),
            "name": m.name, "offset": hex_addr(m.offset),
        })).collect::<Vec<_>>(),
        "memory": {"stored_bytes": stored, "page_runs": p.page_runs.len()},
        "files": p.fds.iter().map(|f| json!({
            "fd": f.fd, "kind": fd_kind(f.kind), "path": f.path, "flags": format!("0o{:o}", f.flags), "pos": hex_addr(f.pos),
        })).collect::<Vec<_>>(),
        "rlimits": p.rlimits.len(),
        "rseq": p.rseq.as_ref().map(|r| json!({"addr": hex_addr(r.addr), "len": r.len})),
    })
}

/// Prints the security header for people (shared with `demo`).
pub fn print_security_header(img: &VerifiedImage) {
    let h = img.security_header();
    println!("security header:");
    println!(
        "  written by ckpt {} on {} ({} {}) at {}",
        if h.writer_version.is_empty() {
            "?"
        } else {
            &h.writer_version
        },
        if h.hostname.is_empty() {
            "?"
        } else {
            &h.hostname
        },
        h.kernel_release,
        h.arch,
        utc_time(h.created_unix_secs)
    );
    let names: Vec<&str> = h.lsms.iter().map(|l| l.name.as_str()).collect();
    println!("  LSM stack (kernel order): {}", names.join(","));
    for l in &h.lsms {
        let fp = l.fingerprint.clone().unwrap_or_default();
        let digest = if fp.digest.is_empty() {
            "unknown".to_string()
        } else {
            hex::encode(&fp.digest)
        };
        print!("    {:<10} {}", l.name, digest);
        if !fp.version.is_empty() {
            print!("  version {}", fp.version);
        }
        println!("  ({} components)", fp.components.len());
        if !fp.note.is_empty() {
            println!("               note: {}", fp.note);
        }
    }
}

fn print_human(name: &str, img: &VerifiedImage, processes: &[ProcessRecord], a: &InspectArgs) {
    let v = img.version();
    println!(
        "image {name}: format {}.{}, {} bytes, {} sections, verified (table digest {})",
        v.major,
        v.minor,
        img.file_len(),
        img.sections().len(),
        &hex::encode(img.table_digest())[..16]
    );
    match img.signature() {
        Some(s) => println!(
            "signature: Ed25519, signer key fingerprint {}",
            s.fingerprint
        ),
        None => println!("signature: none (unsigned)"),
    }
    print_security_header(img);
    for p in processes {
        println!("task {} ({})", p.pid, p.comm);
        if let Some(exe) = &p.exe {
            println!("  exe: {}", exe.path);
        }
        if let Some(cwd) = &p.cwd {
            println!("  cwd: {}", cwd.path);
        }
        if let Some(r) = &p.regs {
            println!(
                "  registers: rip {:#x} rsp {:#x}{}",
                r.rip,
                r.rsp,
                in_syscall(r.orig_rax)
                    .map(|n| format!(" (in system call {n})"))
                    .unwrap_or_default()
            );
        }
        println!(
            "  umask {:04o}, sigmask {:#x}, {} signal handlers",
            p.umask,
            p.sigmask,
            p.sigactions.len()
        );
        let stored: u64 = p.page_runs.iter().map(|r| r.len).sum();
        println!(
            "  memory: {} bytes stored in {} runs",
            stored,
            p.page_runs.len()
        );
        if let Some(sec) = &p.security {
            print_task_security(sec);
        }
        let kinds = count_by(p.vmas.iter().map(|m| vma_kind(m.kind)));
        if !a.maps {
            println!("  mappings: {} ({kinds}); --maps lists them", p.vmas.len());
        } else {
            println!("  mappings ({}):", p.vmas.len());
        }
        for m in p.vmas.iter().filter(|_| a.maps) {
            println!(
                "    {:012x}-{:012x} {} {:08x} {:<16} {}",
                m.start,
                m.end,
                prot_string(m.prot, m.shared),
                m.offset,
                vma_kind(m.kind),
                m.name
            );
        }
        let kinds = count_by(p.fds.iter().map(|f| fd_kind(f.kind)));
        if !a.files {
            println!("  files: {} ({kinds}); --files lists them", p.fds.len());
        } else {
            println!("  files ({}):", p.fds.len());
        }
        for f in p.fds.iter().filter(|_| a.files) {
            println!(
                "    fd {:<3} {:<15} flags {:o} pos {} {}",
                f.fd,
                fd_kind(f.kind),
                f.flags,
                f.pos,
                f.path
            );
        }
    }
}

/// `3 anonymous, 2 file-private` from a list of kind names.
fn count_by<'a>(kinds: impl Iterator<Item = &'a str>) -> String {
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    for k in kinds {
        *n.entry(k).or_default() += 1;
    }
    n.iter()
        .map(|(k, c)| format!("{c} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ids(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join("/")
}

/// Credentials, capabilities, securebits, labels, no_new_privs, seccomp.
fn print_task_security(t: &TaskSecurityRecord) {
    if let Some(c) = &t.creds {
        println!(
            "  credentials: uid {} gid {} (real/effective/saved/fs), groups [{}]",
            ids(&c.uids),
            ids(&c.gids),
            c.groups
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        println!(
            "  capabilities: effective {:#x}, permitted {:#x}, inheritable {:#x}, bounding {:#x}, ambient {:#x}; securebits {:#x}",
            c.cap_effective, c.cap_permitted, c.cap_inheritable, c.cap_bounding, c.cap_ambient, c.securebits
        );
    }
    for l in &t.labels {
        println!("  label: {} {} = {}", l.lsm, l.attr, label_text(&l.value));
    }
    let filters: Vec<String> = t
        .seccomp_filters
        .iter()
        .map(|f| format!("{} instructions", f.len() / 8))
        .collect();
    println!(
        "  no_new_privs: {}; seccomp: {}{}",
        if t.no_new_privs { "yes" } else { "no" },
        seccomp_mode(t.seccomp_mode),
        if filters.is_empty() {
            String::new()
        } else {
            format!(", {} filters ({})", filters.len(), filters.join(", "))
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_calls_are_named() {
        assert_eq!(syscall_name(35), "nanosleep");
        assert_eq!(syscall_name(0), "read");
        assert_eq!(syscall_name(99_999), "syscall 99999");
        assert_eq!(in_syscall(u64::MAX), None);
    }

    #[test]
    fn kinds_are_counted_in_order() {
        assert_eq!(count_by(["b", "a", "b"].into_iter()), "1 a, 2 b");
    }
}
