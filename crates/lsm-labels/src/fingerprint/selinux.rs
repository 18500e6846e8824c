//! SELinux provider: the loaded binary policy (`/sys/fs/selinux/policy`),
//! `enforce`, `checkreqprot` and the current value of each boolean under
//! `booleans/`.

use super::{component, describe, trimmed, Collector};
use crate::host::{HostView, MAX_DIR_ENTRIES, MAX_POLICY_BYTES, MAX_TEXT_BYTES};
use crate::profile::PolicyFingerprint;

/// Where selinuxfs is mounted.
pub const SELINUXFS: &str = "/sys/fs/selinux";
/// `POLICYDB_MAGIC` (security/selinux/ss/policydb.h), little-endian on disk.
pub const POLICYDB_MAGIC: u32 = 0xf97c_ff8c;
/// How often we try to open the policy when another reader holds it.
const EBUSY_ATTEMPTS: u32 = 5;

/// The policy format version from a binary policy header, if the header is
/// a SELinux one: magic, string length, "SE Linux", version.
pub fn policy_version(policy: &[u8]) -> Result<u32, String> {
    let u32_at = |off: usize| -> Option<u32> {
        policy
            .get(off..off + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let magic = u32_at(0).ok_or("shorter than a SELinux policy header")?;
    if magic != POLICYDB_MAGIC {
        return Err(format!(
            "magic {magic:#010x} is not the SELinux policy magic {POLICYDB_MAGIC:#010x}"
        ));
    }
    let len = u32_at(4).ok_or("truncated header")? as usize;
    if len > 64 {
        return Err(format!("header string length {len} is implausible"));
    }
    u32_at(8 + len).ok_or_else(|| "truncated header".to_owned())
}

/// The current value of a boolean file ("1 0" = current 1, pending 0).
pub fn boolean_current(text: &str) -> Option<&str> {
    let w = text.split_whitespace().next()?;
    matches!(w, "0" | "1").then_some(w)
}

fn read_policy(view: &HostView) -> Result<Vec<u8>, String> {
    let path = format!("{SELINUXFS}/policy");
    let mut attempt = 0;
    loop {
        match view.read(&path, MAX_POLICY_BYTES) {
            Ok(p) => return Ok(p),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt + 1 < EBUSY_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(20 << attempt));
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(format!(
                    "{} stayed busy after {EBUSY_ATTEMPTS} attempts (the kernel allows one reader at a time; another program is reading it): retry later",
                    view.path(&path).display()
                ))
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return Err("no SELinux policy is loaded (EINVAL from /sys/fs/selinux/policy)".into())
            }
            Err(e) => return Err(describe(&e)),
        }
    }
}

/// The SELinux fingerprint. Version = the loaded policy's format version.
pub fn fingerprint(view: &HostView) -> PolicyFingerprint {
    let mut c = Collector::default();
    c.text_file(
        view,
        "selinux/enforce",
        &format!("{SELINUXFS}/enforce"),
        MAX_TEXT_BYTES,
        true,
        trimmed,
    );
    c.text_file(
        view,
        "selinux/checkreqprot",
        &format!("{SELINUXFS}/checkreqprot"),
        MAX_TEXT_BYTES,
        false,
        trimmed,
    );
    let bdir = format!("{SELINUXFS}/booleans");
    match view.list_dir(&bdir, MAX_DIR_ENTRIES) {
        Ok(entries) => {
            for e in entries.into_iter().filter(|e| !e.is_dir) {
                let p = format!("{bdir}/{}", e.name);
                match view.read_text(&p, 64) {
                    Ok(t) => match boolean_current(&t) {
                        Some(v) => c.push(component(
                            format!("selinux/boolean/{}", e.name),
                            v.as_bytes(),
                        )),
                        None => c.problem(format!(
                            "boolean {} reads {t:?}, not \"<0|1> <0|1>\"",
                            e.name
                        )),
                    },
                    Err(err) => c.problem(describe(&err)),
                }
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => c.problem(describe(&e)),
    }
    match read_policy(view) {
        Ok(policy) => match policy_version(&policy) {
            Ok(v) => {
                c.version = Some(v.to_string());
                c.push(component("selinux/policy", &policy));
            }
            Err(why) => c.problem(format!(
                "{}: {why}",
                view.path(&format!("{SELINUXFS}/policy")).display()
            )),
        },
        Err(why) => c.problem(why),
    }
    c.finish("selinux")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_version() {
        let mut p = POLICYDB_MAGIC.to_le_bytes().to_vec();
        p.extend_from_slice(&8u32.to_le_bytes());
        p.extend_from_slice(b"SE Linux");
        p.extend_from_slice(&33u32.to_le_bytes());
        assert_eq!(policy_version(&p), Ok(33));
        assert!(policy_version(&p[..14]).is_err());
        assert!(policy_version(b"\0\0\0\0").unwrap_err().contains("magic"));
        assert!(policy_version(&[]).is_err());
    }

    #[test]
    fn booleans() {
        assert_eq!(boolean_current("1 0"), Some("1"));
        assert_eq!(boolean_current("0 1\n"), Some("0"));
        assert_eq!(boolean_current("x"), None);
    }
}
