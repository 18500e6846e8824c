//! Keeps docs/state-coverage.md true (DESIGN 7): every fd kind, refused
//! kind and restored task attribute the code knows must have a row there.

use crate::model::{FdTarget, FileId};
use crate::task_attrs::{TaskAttrs, RESTORED_ATTRS};

const DOC: &str = include_str!("../../../docs/state-coverage.md");

fn missing(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !DOC.contains(&format!("`{n}`")))
        .map(|n| n.to_string())
        .collect()
}

#[test]
fn coverage_doc_names_every_kind() {
    let mut gaps = missing(&FdTarget::KIND_NAMES);
    gaps.extend(missing(crate::dump_refusals::REFUSED_KINDS));
    gaps.extend(missing(RESTORED_ATTRS));
    assert!(
        gaps.is_empty(),
        "docs/state-coverage.md has no row for: {gaps:?}"
    );
}

#[test]
fn every_fd_kind_has_a_distinct_name() {
    let f = FileId::default();
    let all = [
        FdTarget::RegularFile(f.clone()),
        FdTarget::Directory(f),
        FdTarget::CharDevice {
            path: String::new(),
            rdev: 0,
        },
        FdTarget::Pipe { ino: 0 },
        FdTarget::InheritedStdio,
    ];
    let mut names: Vec<&str> = all.iter().map(FdTarget::kind_name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), FdTarget::KIND_NAMES.len());
}

/// Fails to compile when `TaskAttrs` gains a field: add its name to
/// `RESTORED_ATTRS` and a row to the doc, then list it here.
#[test]
fn task_attrs_fields_are_all_listed() {
    let TaskAttrs {
        dumpable: _,
        child_subreaper: _,
        thp_disable: _,
        pdeathsig: _,
        timer_slack_ns: _,
        oom_score_adj: _,
        loginuid: _,
        itimers: _,
        membarrier: _,
        posix_timers: _,
        guard_pages: _,
    } = TaskAttrs::default();
    // 8 scalar attributes, the three interval timers, POSIX timers, and
    // the controlling terminal (kept by the session rule, not a field),
    // guard regions.
    assert_eq!(RESTORED_ATTRS.len(), 8 + 3 + 1 + 1 + 1);
}
