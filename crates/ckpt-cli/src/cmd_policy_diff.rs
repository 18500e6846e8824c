//! `ckpt policy-diff IMG`: the check before a restart. Compares the image's
//! security header with this host (or a profile saved by `ckpt lsm --json`
//! elsewhere), per LSM, then prints the verdict `restore` with the same
//! flags would reach (the same function), exiting 3 when it would refuse.

use crate::failure::OrFail;
use crate::image_io::{display_name, open_verified};
use crate::verdict_input::{decide, flags_from};
use crate::{Failure, PolicyDiffArgs};
use ckpt_core::VerdictHost;
use lsm_labels::diff::{LsmStatus, PolicyDiff};
use lsm_labels::persist::profile_from_record;
use lsm_labels::HostProfile;

pub fn run(a: &PolicyDiffArgs) -> Result<u8, Failure> {
    let img = open_verified(&a.image)?;
    let (host, host_name) = match &a.host {
        Some(p) => (read_profile(p)?, format!("host profile {}", p.display())),
        None => (crate::cmd_lsm::host_profile(None)?, "this host".to_string()),
    };
    let flags = flags_from(&a.verdict);
    // The same engine call as `restore`: a saved profile is the host when
    // given (its verdict approves nothing, but is reached the same way).
    let verdict_host = match &a.host {
        Some(_) => VerdictHost::Profile(host.clone()),
        None => VerdictHost::Live,
    };
    let decision = decide(&img, &a.image, verdict_host, &flags)?;
    let verdict = decision.verdict();
    let diff = match &verdict.diff {
        Some(d) => d.clone(),
        None => {
            let image = profile_from_record(img.security_header()).or_fail(|| {
                format!(
                    "image {}: the security header is malformed",
                    display_name(&a.image)
                )
            })?;
            PolicyDiff::compute(&image, &host)
        }
    };
    let code = u8::try_from(verdict.exit_code()).unwrap_or(1);
    if a.json {
        let v = serde_json::json!({
            "schema_version": crate::cmd_inspect::JSON_SCHEMA_VERSION,
            "image": display_name(&a.image),
            "host": host_name,
            "flags": {
                "keep_lsm": flags.keep_lsm,
                "require_same_policy": flags.require_same_policy,
                "lsm_as_caller": flags.lsm_as_caller,
                "lsm_labels": flags.lsm_labels,
            },
            "diff": diff,
            "principal": verdict.principal,
            "verdict": verdict.to_json(),
        });
        let mut v = v;
        crate::cmd_inspect::hex_capabilities(&mut v);
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(code);
    }
    let h = img.security_header();
    println!(
        "image {} (kernel {} {}) against {host_name} (kernel {} {})",
        display_name(&a.image),
        h.kernel_release,
        h.arch,
        host.kernel_release,
        host.arch
    );
    if diff.stack_equal {
        println!("stack: same ({})", diff.image_stack.join(","));
    } else {
        println!(
            "stack: differs: image {}, host {}",
            diff.image_stack.join(","),
            diff.host_stack.join(",")
        );
    }
    for l in &diff.lsms {
        println!("  {:<10} {}", l.name, status_text(&l.status));
    }
    if let Some(p) = &verdict.principal {
        println!("credentials vouched for by: {p}");
    }
    let mut flag_words = Vec::new();
    if flags.keep_lsm {
        flag_words.push("--keep-lsm".to_owned());
    }
    if flags.require_same_policy {
        flag_words.push("--require-same-policy".to_owned());
    }
    if flags.lsm_as_caller {
        flag_words.push("--lsm-as-caller".to_owned());
    }
    for l in &flags.lsm_labels {
        flag_words.push(format!("--lsm-label {l}"));
    }
    println!(
        "restore{}{} would be:",
        if flag_words.is_empty() { "" } else { " " },
        flag_words.join(" ")
    );
    for line in verdict.to_string().lines() {
        println!("  {line}");
    }
    Ok(code)
}

fn status_text(s: &LsmStatus) -> String {
    match s {
        LsmStatus::Same => "same".into(),
        LsmStatus::Changed {
            added,
            removed,
            changed,
            version,
        } => {
            let mut parts = Vec::new();
            if !added.is_empty() {
                parts.push(format!("added {}", added.join(", ")));
            }
            if !removed.is_empty() {
                parts.push(format!("removed {}", removed.join(", ")));
            }
            if !changed.is_empty() {
                parts.push(format!("changed {}", changed.join(", ")));
            }
            if let Some((i, h)) = version {
                parts.push(format!(
                    "version {} -> {}",
                    i.as_deref().unwrap_or("none"),
                    h.as_deref().unwrap_or("none")
                ));
            }
            if parts.is_empty() {
                "changed".into()
            } else {
                format!("changed: {}", parts.join("; "))
            }
        }
        LsmStatus::Unknown { reason } => format!("unknown: {reason}"),
        LsmStatus::OnlyInImage => "only in the image (not active on the host)".into(),
        LsmStatus::OnlyOnHost => "only on the host (not active when the image was made)".into(),
        _ => "unrecognised status".into(),
    }
}

fn read_profile(p: &std::path::Path) -> Result<HostProfile, Failure> {
    let meta =
        std::fs::metadata(p).or_fail(|| format!("cannot read host profile {}", p.display()))?;
    if meta.len() > 16 << 20 {
        return Err(Failure::operational(anyhow::anyhow!(
            "host profile {} is {} bytes; a profile from `ckpt lsm --json` is far smaller",
            p.display(),
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(p)
        .or_fail(|| format!("cannot read host profile {}", p.display()))?;
    let profile: HostProfile = serde_json::from_str(&text).or_fail(|| {
        format!(
            "host profile {} is not a `ckpt lsm --json` profile",
            p.display()
        )
    })?;
    check_profile_digests(&profile).map_err(|lsm| {
        Failure::operational(anyhow::anyhow!(
            "host profile {} is inconsistent: the {lsm} digest does not match its components (edited?); save it again with `ckpt lsm --json` on that host",
            p.display()
        ))
    })?;
    Ok(profile)
}

/// Each recorded LSM digest must be the one its components and version
/// give; an edited component under an unchanged digest would otherwise
/// compare as "same". Returns the first inconsistent LSM's name.
pub fn check_profile_digests(profile: &HostProfile) -> Result<(), String> {
    match profile.lsms.iter().find(|l| {
        l.fingerprint
            .digest
            .as_ref()
            .is_some_and(|d| *d != l.fingerprint.canonical_digest())
    }) {
        Some(l) => Err(l.name.clone()),
        None => Ok(()),
    }
}
