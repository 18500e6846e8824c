//! Smack provider: the rules and label lists under `/sys/fs/smackfs`
//! (`load2`, `onlycap`, `ambient`, `cipso2`, `netlabel`, and when present
//! `ptrace`, `unconfined`, `doi`, `direct`, `mapped`).

use super::{sorted_lines, sorted_words, trimmed, Collector};
use crate::host::{HostView, MAX_POLICY_TEXT_BYTES, MAX_TEXT_BYTES};
use crate::profile::PolicyFingerprint;

/// Where smackfs is mounted.
pub const SMACKFS: &str = "/sys/fs/smackfs";

/// The Smack fingerprint (no version: smackfs has none).
pub fn fingerprint(view: &HostView) -> PolicyFingerprint {
    let mut c = Collector::default();
    let p = |f: &str| format!("{SMACKFS}/{f}");
    // Rules: "subject object access\n"; one rule per (subject, object)
    // pair, the list order is insertion order and irrelevant to decisions.
    c.text_file(
        view,
        "smack/load2",
        &p("load2"),
        MAX_POLICY_TEXT_BYTES,
        true,
        sorted_lines,
    );
    c.text_file(
        view,
        "smack/onlycap",
        &p("onlycap"),
        MAX_TEXT_BYTES,
        true,
        sorted_words,
    );
    c.text_file(
        view,
        "smack/ambient",
        &p("ambient"),
        MAX_TEXT_BYTES,
        true,
        trimmed,
    );
    c.text_file(
        view,
        "smack/cipso2",
        &p("cipso2"),
        MAX_POLICY_TEXT_BYTES,
        true,
        sorted_lines,
    );
    c.text_file(
        view,
        "smack/netlabel",
        &p("netlabel"),
        MAX_POLICY_TEXT_BYTES,
        true,
        sorted_lines,
    );
    c.text_file(
        view,
        "smack/ptrace",
        &p("ptrace"),
        MAX_TEXT_BYTES,
        false,
        trimmed,
    );
    c.text_file(
        view,
        "smack/unconfined",
        &p("unconfined"),
        MAX_TEXT_BYTES,
        false,
        trimmed,
    );
    c.text_file(view, "smack/doi", &p("doi"), MAX_TEXT_BYTES, false, trimmed);
    c.text_file(
        view,
        "smack/direct",
        &p("direct"),
        MAX_TEXT_BYTES,
        false,
        trimmed,
    );
    c.text_file(
        view,
        "smack/mapped",
        &p("mapped"),
        MAX_TEXT_BYTES,
        false,
        trimmed,
    );
    c.finish("smack")
}
