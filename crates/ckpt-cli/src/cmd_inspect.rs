//! `ckpt inspect IMG [--json]`: what an image holds, for people and tools.
//!
//! Everything shown comes from a fully verified image (`image_io`). The
//! JSON form is built from the records field by field so that its shape is
//! ours to keep stable, not prost's.

use crate::image_io::{display_name, open_verified};
use crate::output::{prot_string, utc_time};
use crate::{Failure, InspectArgs};
use image_format::records::{FdKind, ProcessRecord, VmaKind};
use image_format::{SectionKind, VerifiedImage};
use serde_json::{json, Value};

pub fn run(a: &InspectArgs) -> Result<u8, Failure> {
    let img = open_verified(&a.image)?;
    let processes = read_processes(&img, &a.image)?;
    if a.json {
        let v = to_json(&img, &processes);
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        print_human(&display_name(&a.image), &img, &processes);
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
        "format_version": format!("{}.{}", v.major, v.minor),
        "file_len": img.file_len(),
        "table_digest": hex::encode(img.table_digest()),
        "signature": img.signature().map(|s| json!({
            "scheme": "ed25519",
            "public_key": hex::encode(s.public_key.as_bytes()),
            "fingerprint": s.fingerprint,
        })),
        "sections": img.sections().iter().map(|s| json!({
            "kind": section_name(s.kind), "offset": s.offset, "len": s.len, "sha256": hex::encode(s.digest),
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
        "registers": p.regs.as_ref().map(|r| json!({"rip": r.rip, "rsp": r.rsp, "orig_rax": r.orig_rax as i64, "rax": r.rax as i64})),
        "sigmask": format!("{:016x}", p.sigmask),
        "sigactions": p.sigactions.len(),
        "mappings": p.vmas.iter().map(|m| json!({
            "start": format!("{:x}", m.start), "end": format!("{:x}", m.end),
            "prot": prot_string(m.prot, m.shared), "kind": vma_kind(m.kind),
            "name": m.name, "offset": m.offset,
        })).collect::<Vec<_>>(),
        "memory": {"stored_bytes": stored, "page_runs": p.page_runs.len()},
        "files": p.fds.iter().map(|f| json!({
            "fd": f.fd, "kind": fd_kind(f.kind), "path": f.path, "flags": format!("{:o}", f.flags), "pos": f.pos,
        })).collect::<Vec<_>>(),
        "rlimits": p.rlimits.len(),
        "rseq": p.rseq.as_ref().map(|r| json!({"addr": format!("{:x}", r.addr), "len": r.len})),
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

fn print_human(name: &str, img: &VerifiedImage, processes: &[ProcessRecord]) {
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
                if (r.orig_rax as i64) >= 0 {
                    format!(" (in system call {})", r.orig_rax)
                } else {
                    String::new()
                }
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
        println!("  mappings ({}):", p.vmas.len());
        for m in &p.vmas {
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
        println!("  files ({}):", p.fds.len());
        for f in &p.fds {
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
