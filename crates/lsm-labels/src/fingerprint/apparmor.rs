//! AppArmor provider: each loaded profile (in every policy namespace) as
//! `apparmor/profile/<ns-prefix><name>` over its kernel-computed hash and
//! mode; the policy `revision` as version.

use super::{component, describe, read_trimmed, Collector};
use crate::host::{HostView, MAX_DIR_ENTRIES, MAX_POLICY_BYTES};
use crate::profile::{Digest, PolicyFingerprint};

/// AppArmor's securityfs directory.
pub const APPARMOR: &str = "/sys/kernel/security/apparmor";
/// Deepest nesting of child profiles / namespaces we follow.
const MAX_DEPTH: usize = 16;
/// Most profiles we record in all.
const MAX_PROFILES: usize = 100_000;

/// Hash files in order of preference: the per-profile hash (Linux 6.12+:
/// sha256, older: sha1), then the raw-data hash links.
const HASH_FILES: &[&str] = &["sha256", "sha1", "raw_sha256", "raw_sha1"];

/// The canonical bytes of one profile: `mode\0<mode>\0<alg>\0<hex>`.
pub fn profile_bytes(mode: &str, alg: &str, hex: &str) -> Vec<u8> {
    format!("mode\0{mode}\0{alg}\0{hex}").into_bytes()
}

/// The profile name from its directory name `<mangled name>.<id>`, used only
/// when the `name` file is missing (the id changes on every load).
pub fn name_from_dirname(dir: &str) -> &str {
    match dir.rsplit_once('.') {
        Some((n, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => dir,
    }
}

fn profile_hash(view: &HostView, pdir: &str) -> Result<(String, String), String> {
    for f in HASH_FILES {
        match read_trimmed(view, &format!("{pdir}/{f}")) {
            Ok(h) if !h.is_empty() => return Ok((f.to_string(), h.to_ascii_lowercase())),
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(describe(&e)),
        }
    }
    // No hash exported (apparmor.hash_policy=0): hash the raw policy data.
    match view.read(&format!("{pdir}/raw_data"), MAX_POLICY_BYTES) {
        Ok(d) => Ok(("raw_data-sha256".into(), Digest::of(&d).to_hex())),
        Err(e) if e.is_not_found() => Err(format!(
            "{} exposes no hash and no raw_data; boot with apparmor.hash_policy=1 (or CONFIG_SECURITY_APPARMOR_HASH)",
            view.path(pdir).display()
        )),
        Err(e) => Err(describe(&e)),
    }
}

fn walk_profiles(
    view: &HostView,
    parent: &str,
    ns: &str,
    depth: usize,
    c: &mut Collector,
    count: &mut usize,
) {
    if depth > MAX_DEPTH {
        c.problem(format!(
            "{} nests deeper than {MAX_DEPTH} levels",
            view.path(parent).display()
        ));
        return;
    }
    let pdir = format!("{parent}/profiles");
    let entries = match view.list_dir(&pdir, MAX_DIR_ENTRIES) {
        Ok(e) => e,
        Err(e) if e.is_not_found() => return,
        Err(e) => return c.problem(describe(&e)),
    };
    for e in entries.into_iter().filter(|e| e.is_dir) {
        *count += 1;
        if *count > MAX_PROFILES {
            return c.problem(format!("more than {MAX_PROFILES} profiles"));
        }
        let dir = format!("{pdir}/{}", e.name);
        let name = read_trimmed(view, &format!("{dir}/name"))
            .unwrap_or_else(|_| name_from_dirname(&e.name).to_owned());
        let mode = match read_trimmed(view, &format!("{dir}/mode")) {
            Ok(m) => m,
            Err(err) => {
                c.problem(describe(&err));
                continue;
            }
        };
        match profile_hash(view, &dir) {
            Ok((alg, hex)) => c.push(component(
                format!("apparmor/profile/{ns}{name}"),
                &profile_bytes(&mode, &alg, &hex),
            )),
            Err(why) => c.problem(why),
        }
        walk_profiles(view, &dir, ns, depth + 1, c, count);
    }
}

/// Walks a namespace directory; `ns_path` is "" for the root namespace,
/// else `child` or `child//grandchild`, written `:ns_path:` before profile
/// names as AppArmor does.
fn walk_namespace(
    view: &HostView,
    dir: &str,
    ns_path: &str,
    depth: usize,
    c: &mut Collector,
    count: &mut usize,
) {
    let prefix = if ns_path.is_empty() {
        String::new()
    } else {
        format!(":{ns_path}:")
    };
    walk_profiles(view, dir, &prefix, depth, c, count);
    if depth > MAX_DEPTH {
        return;
    }
    let nsdir = format!("{dir}/namespaces");
    match view.list_dir(&nsdir, MAX_DIR_ENTRIES) {
        Ok(entries) => {
            for e in entries.into_iter().filter(|e| e.is_dir) {
                let sub = if ns_path.is_empty() {
                    e.name.clone()
                } else {
                    format!("{ns_path}//{}", e.name)
                };
                walk_namespace(
                    view,
                    &format!("{nsdir}/{}", e.name),
                    &sub,
                    depth + 1,
                    c,
                    count,
                );
            }
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => c.problem(describe(&e)),
    }
}

/// The AppArmor fingerprint.
pub fn fingerprint(view: &HostView) -> PolicyFingerprint {
    let mut c = Collector::default();
    let policy = format!("{APPARMOR}/policy");
    if !view.exists(&policy) {
        return PolicyFingerprint::unknown(
            format!(
                "{} is missing: is securityfs mounted and AppArmor enabled?",
                view.path(&policy).display()
            ),
            Vec::new(),
            None,
        );
    }
    let mut count = 0;
    walk_namespace(view, &policy, "", 0, &mut c, &mut count);
    // The revision file is a poll notifier: a second read blocks until the
    // policy changes, so make exactly one non-blocking read.
    match view.read_once_nonblocking(&format!("{APPARMOR}/revision"), 32) {
        Ok(b) => {
            c.version =
                Some(String::from_utf8_lossy(&b).trim().to_owned()).filter(|s| !s.is_empty())
        }
        // EAGAIN on the first read of a fresh open: the revision equals the
        // open file's initial "last read" value, 0.
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => c.version = Some("0".into()),
        Err(e) if e.is_not_found() => {}
        Err(e) => c.problem(describe(&e)),
    }
    c.version_not_hashed = true;
    c.finish("apparmor")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirname_id_is_stripped() {
        assert_eq!(name_from_dirname("usr.sbin.cupsd.12"), "usr.sbin.cupsd");
        assert_eq!(name_from_dirname("docker-default.3"), "docker-default");
        assert_eq!(name_from_dirname("noid"), "noid");
    }
}
