//! The one semantic validation of an image's records, shared by `restore`
//! (through [`crate::load_process`] and `persist::from_record`), `inspect`
//! and `policy-diff` (through [`read_image`]), so that no command accepts
//! an image another refuses as malformed (issue 7 item 6).
//!
//! The image-format crate has already bounded every count and length
//! before decoding (`image_format::limits`); this module checks what the
//! values mean: addresses canonical and ordered, VMAs page-aligned and
//! non-overlapping, page runs inside their VMAs and tiling the PAGES
//! section exactly, fd numbers bounded and ascending, paths absolute and
//! NUL-free, signal numbers 1..=64, rlimit resources known, and the
//! security header and task security records valid (lsm-labels'
//! `Persist::from_record`). Every check runs in time linear in the record.

use image_format::records::{self as rec, ProcessRecord};
use image_format::{SectionKind, VerifiedImage};
use lsm_labels::persist::{ImageSecurity, Persist};

/// Page size of the recorded address spaces.
const PAGE: u64 = 4096;
/// One past the highest user address on x86_64 with 4-level paging
/// (`TASK_SIZE_MAX`, 47 bits minus a guard page).
pub const USER_ADDR_END: u64 = 0x7fff_ffff_f000;
/// The x86_64 legacy vsyscall page, the one special mapping above it.
const VSYSCALL: (u64, u64) = (0xffff_ffff_ff60_0000, 0xffff_ffff_ff60_1000);
/// Highest fd number (`NR_OPEN`, the kernel's ceiling for RLIMIT_NOFILE).
pub const MAX_FD_NUMBER: i32 = 1 << 20;
/// Highest PID (`PID_MAX_LIMIT` on 64-bit).
pub const MAX_PID: i32 = 1 << 22;
/// Number of rlimit resources (`RLIM_NLIMITS`).
const RLIM_NLIMITS: u32 = 16;

/// A record that decodes but does not describe a possible process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct InvalidRecord {
    /// Which field, e.g. `vmas[3]` or `page_runs[0]`.
    pub field: String,
    pub why: String,
}

fn bad(field: impl Into<String>, why: impl Into<String>) -> InvalidRecord {
    InvalidRecord {
        field: field.into(),
        why: why.into(),
    }
}

/// What an image holds, read and validated: the security header and
/// every process record.
#[derive(Debug)]
pub struct ValidatedImage {
    pub security: ImageSecurity,
    pub processes: Vec<ProcessRecord>,
}

/// Why an image's records were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageRecordError {
    #[error(transparent)]
    Format(#[from] image_format::FormatError),
    #[error("the security header is malformed: {0}")]
    SecurityHeader(String),
    #[error("the process record of section {index} is malformed: {source}")]
    Process {
        index: usize,
        #[source]
        source: InvalidRecord,
    },
}

/// Reads and validates the security header and every process record of
/// `image` (what `inspect` and `policy-diff` show and decide on).
pub fn read_image(image: &VerifiedImage) -> Result<ValidatedImage, ImageRecordError> {
    let security = ImageSecurity::from_record(image.security_header())
        .map_err(|e| ImageRecordError::SecurityHeader(e.to_string()))?;
    let pages_len = image.pages_len();
    let mut processes = Vec::new();
    for (index, s) in image.sections().iter().enumerate() {
        if s.kind != SectionKind::PROCESS {
            continue;
        }
        let r: ProcessRecord = image.read_record(s)?;
        process_record(&r, pages_len)
            .map_err(|source| ImageRecordError::Process { index, source })?;
        processes.push(r);
    }
    Ok(ValidatedImage {
        security,
        processes,
    })
}

/// Validates one process record against the length of the image's PAGES
/// section.
pub fn process_record(r: &ProcessRecord, pages_len: u64) -> Result<(), InvalidRecord> {
    if !(1..=MAX_PID).contains(&r.pid) {
        return Err(bad("pid", format!("{} is not a PID", r.pid)));
    }
    no_nul("comm", &r.comm)?;
    let regs = r.regs.as_ref().ok_or_else(|| bad("regs", "missing"))?;
    // A task may be stopped inside the (emulated) vsyscall page.
    if !(VSYSCALL.0..VSYSCALL.1).contains(&regs.rip) {
        user_addr("regs.rip", regs.rip)?;
    }
    user_addr("regs.rsp", regs.rsp)?;
    for (name, f) in [("exe", &r.exe), ("cwd", &r.cwd)] {
        if let Some(f) = f {
            absolute_path(&format!("{name}.path"), &f.path)?;
        }
    }
    if !r.auxv.len().is_multiple_of(2) {
        return Err(bad("auxv", "odd number of words (it holds pairs)"));
    }
    sigactions(&r.sigactions)?;
    vmas(&r.vmas)?;
    page_runs(&r.page_runs, &r.vmas, pages_len)?;
    fds(&r.fds, &r.pipes)?;
    rlimits(&r.rlimits)?;
    crate::persist::posix_timers_from_record(&r.posix_timers)
        .map_err(|why| bad("posix_timers", why))?;
    crate::persist::guard_runs_from_record(r).map_err(|why| bad("guard_runs", why))?;
    if let Some(s) = &r.sigaltstack {
        user_addr("sigaltstack.sp", s.sp)?;
    }
    if let Some(x) = &r.rseq {
        user_addr("rseq.addr", x.addr)?;
    }
    threads(r.pid, &r.threads)?;
    let security = r
        .security
        .as_ref()
        .ok_or_else(|| bad("security", "missing: no rule of DESIGN 3 can be checked"))?;
    lsm_labels::TaskSecurity::from_record(security).map_err(|e| bad("security", e.to_string()))?;
    Ok(())
}

/// The non-leader threads: tids valid, ascending, none the leader's; every
/// address a user-space one.
fn threads(pid: i32, threads: &[rec::ThreadRecord]) -> Result<(), InvalidRecord> {
    if threads.len() > image_format::limits::MAX_THREADS as usize {
        return Err(bad("threads", format!("{} threads", threads.len())));
    }
    let mut last = 0;
    for (i, t) in threads.iter().enumerate() {
        let f = |name: &str| format!("threads[{i}].{name}");
        if !(1..=MAX_PID).contains(&t.tid) || t.tid == pid || t.tid <= last {
            return Err(bad(
                f("tid"),
                format!("{} is not a new thread id in ascending order", t.tid),
            ));
        }
        last = t.tid;
        no_nul(&f("comm"), &t.comm)?;
        let regs = t.regs.as_ref().ok_or_else(|| bad(f("regs"), "missing"))?;
        if !(VSYSCALL.0..VSYSCALL.1).contains(&regs.rip) {
            user_addr(&f("regs.rip"), regs.rip)?;
        }
        user_addr(&f("regs.rsp"), regs.rsp)?;
        if let Some(s) = &t.sigaltstack {
            user_addr(&f("sigaltstack.sp"), s.sp)?;
        }
        if let Some(x) = &t.rseq {
            user_addr(&f("rseq.addr"), x.addr)?;
        }
        user_addr(&f("clear_child_tid"), t.clear_child_tid)?;
        if let Some(l) = &t.robust_list {
            user_addr(&f("robust_list.head"), l.head)?;
            if l.len > 4096 {
                return Err(bad(f("robust_list.len"), format!("{} bytes", l.len)));
            }
        }
    }
    Ok(())
}

fn user_addr(field: &str, a: u64) -> Result<(), InvalidRecord> {
    if a > USER_ADDR_END {
        return Err(bad(field, format!("{a:#x} is not a user-space address")));
    }
    Ok(())
}

fn no_nul(field: &str, s: &str) -> Result<(), InvalidRecord> {
    if s.contains('\0') {
        return Err(bad(field, "contains a NUL byte"));
    }
    Ok(())
}

fn absolute_path(field: &str, p: &str) -> Result<(), InvalidRecord> {
    no_nul(field, p)?;
    if !p.starts_with('/') {
        return Err(bad(field, format!("{p:?} is not an absolute path")));
    }
    Ok(())
}

fn sigactions(a: &[rec::SigactionRecord]) -> Result<(), InvalidRecord> {
    let mut last = 0;
    for (i, s) in a.iter().enumerate() {
        let field = format!("sigactions[{i}]");
        if !(1..=64).contains(&s.signo) || s.signo <= last {
            return Err(bad(
                field,
                format!("signal {} is not in 1..=64 or not ascending", s.signo),
            ));
        }
        if s.handler > 1 {
            user_addr(&format!("{field}.handler"), s.handler)?;
        }
        last = s.signo;
    }
    Ok(())
}

fn vmas(v: &[rec::VmaRecord]) -> Result<(), InvalidRecord> {
    let mut last_end = 0u64;
    for (i, m) in v.iter().enumerate() {
        let field = format!("vmas[{i}]");
        let kind = rec::VmaKind::try_from(m.kind)
            .ok()
            .filter(|k| *k != rec::VmaKind::Unknown)
            .ok_or_else(|| bad(&field, format!("unknown kind {}", m.kind)))?;
        let aligned = m.start % PAGE == 0 && m.end % PAGE == 0;
        if m.start >= m.end || !aligned || m.start < last_end {
            return Err(bad(
                field,
                format!(
                    "{:#x}-{:#x} is empty, not page-aligned, or overlaps or precedes the previous VMA",
                    m.start, m.end
                ),
            ));
        }
        let vsyscall = kind == rec::VmaKind::Special && (m.start, m.end) == VSYSCALL;
        if m.end > USER_ADDR_END && !vsyscall {
            return Err(bad(field, format!("{:#x} is above user space", m.end)));
        }
        if m.prot > 7 {
            return Err(bad(field, format!("protection {} is not PROT_*", m.prot)));
        }
        no_nul(&format!("{field}.name"), &m.name)?;
        if matches!(kind, rec::VmaKind::FilePrivate | rec::VmaKind::FileShared) {
            absolute_path(&format!("{field}.name"), &m.name)?;
        }
        last_end = m.end;
    }
    Ok(())
}

/// Page runs: page-aligned, ascending and disjoint in memory, each inside
/// VMAs whose contents are stored (not special, not file-shared), and
/// tiling the PAGES section in order with no gap or excess. One merge
/// walk over runs and VMAs (both sorted).
fn page_runs(
    runs: &[rec::PageRunRecord],
    vmas: &[rec::VmaRecord],
    pages_len: u64,
) -> Result<(), InvalidRecord> {
    let mut next_offset = 0u64;
    let mut last_end = 0u64;
    let mut vi = 0usize;
    for (i, p) in runs.iter().enumerate() {
        let field = format!("page_runs[{i}]");
        let end = p.vaddr.checked_add(p.len).filter(|_| p.len > 0);
        let aligned = p.vaddr % PAGE == 0 && p.len % PAGE == 0;
        let Some(end) = end.filter(|_| aligned && p.vaddr >= last_end) else {
            return Err(bad(
                field,
                format!(
                    "{:#x}+{:#x} is empty, not page-aligned, or overlaps or precedes the previous run",
                    p.vaddr, p.len
                ),
            ));
        };
        if p.section_offset != next_offset {
            return Err(bad(
                field,
                format!(
                    "starts at pages-section offset {:#x}, not {next_offset:#x} where the previous run ended",
                    p.section_offset
                ),
            ));
        }
        next_offset = next_offset.saturating_add(p.len);
        if next_offset > pages_len {
            return Err(bad(
                field,
                format!("ends past the {pages_len}-byte pages section"),
            ));
        }
        // Advance to the VMA holding vaddr, then walk contiguous VMAs to end.
        while vi < vmas.len() && vmas[vi].end <= p.vaddr {
            vi += 1;
        }
        let mut at = p.vaddr;
        let mut j = vi;
        while at < end {
            let stored = vmas.get(j).filter(|v| {
                v.start <= at
                    && !matches!(
                        rec::VmaKind::try_from(v.kind),
                        Ok(rec::VmaKind::Special) | Ok(rec::VmaKind::FileShared)
                    )
            });
            let Some(v) = stored else {
                return Err(bad(
                    field,
                    format!(
                        "{:#x}+{:#x} is not inside VMAs whose pages are stored",
                        p.vaddr, p.len
                    ),
                ));
            };
            at = v.end;
            j += 1;
        }
        last_end = end;
    }
    if next_offset != pages_len {
        return Err(bad(
            "page_runs",
            format!("cover {next_offset} bytes of a {pages_len}-byte pages section"),
        ));
    }
    Ok(())
}

fn fds(fds: &[rec::FdRecord], pipes: &[rec::PipeRecord]) -> Result<(), InvalidRecord> {
    let mut last = -1;
    for (i, f) in fds.iter().enumerate() {
        let field = format!("fds[{i}]");
        if f.fd <= last || f.fd >= MAX_FD_NUMBER {
            return Err(bad(
                field,
                format!("fd {} is not in 0..{MAX_FD_NUMBER} or not ascending", f.fd),
            ));
        }
        last = f.fd;
        match rec::FdKind::try_from(f.kind) {
            Ok(rec::FdKind::RegularFile | rec::FdKind::Directory | rec::FdKind::CharDevice) => {
                absolute_path(&format!("{field}.path"), &f.path)?
            }
            Ok(rec::FdKind::Pipe) => {
                if !pipes.iter().any(|p| p.ino == f.pipe_ino) {
                    return Err(bad(field, format!("names unrecorded pipe {}", f.pipe_ino)));
                }
            }
            Ok(rec::FdKind::InheritedStdio) if f.fd <= 2 => no_nul(&field, &f.path)?,
            _ => {
                return Err(bad(
                    field,
                    format!("fd {} has unknown kind {}", f.fd, f.kind),
                ))
            }
        }
        if let Some(k) = f.same_file_as {
            if k < 0 || k >= f.fd {
                return Err(bad(
                    field,
                    format!("shares its file with fd {k}, not a lower fd"),
                ));
            }
        }
    }
    let mut inos: Vec<u64> = pipes.iter().map(|p| p.ino).collect();
    inos.sort_unstable();
    if inos.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad("pipes", "the same pipe is recorded twice"));
    }
    Ok(())
}

fn rlimits(l: &[rec::RlimitRecord]) -> Result<(), InvalidRecord> {
    let mut seen = 0u32;
    for (i, r) in l.iter().enumerate() {
        let field = format!("rlimits[{i}]");
        if r.resource >= RLIM_NLIMITS || seen & (1 << r.resource) != 0 {
            return Err(bad(
                field,
                format!("resource {} is unknown or repeated", r.resource),
            ));
        }
        if r.soft > r.hard {
            return Err(bad(field, "soft limit above the hard limit"));
        }
        seen |= 1 << r.resource;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(start: u64, end: u64, kind: rec::VmaKind) -> rec::VmaRecord {
        rec::VmaRecord {
            start,
            end,
            prot: 3,
            kind: kind as i32,
            ..Default::default()
        }
    }

    fn run(vaddr: u64, len: u64, section_offset: u64) -> rec::PageRunRecord {
        rec::PageRunRecord {
            vaddr,
            len,
            section_offset,
        }
    }

    fn valid() -> ProcessRecord {
        ProcessRecord {
            pid: 42,
            comm: "x".into(),
            regs: Some(rec::X86RegsRecord {
                rip: 0x40_1000,
                rsp: 0x7ffc_0000_0000,
                ..Default::default()
            }),
            vmas: vec![
                vma(0x40_0000, 0x40_2000, rec::VmaKind::Anonymous),
                vma(0x40_2000, 0x40_4000, rec::VmaKind::Anonymous),
                vma(VSYSCALL.0, VSYSCALL.1, rec::VmaKind::Special),
            ],
            page_runs: vec![run(0x40_0000, 0x3000, 0), run(0x40_3000, 0x1000, 0x3000)],
            security: Some(
                lsm_labels::TaskSecurity {
                    tid: 42,
                    ..Default::default()
                }
                .to_record(),
            ),
            ..Default::default()
        }
    }

    fn refused(r: &ProcessRecord, pages_len: u64, field: &str) {
        let e = process_record(r, pages_len).unwrap_err();
        assert!(e.field.starts_with(field), "{e} (wanted {field})");
    }

    #[test]
    fn a_valid_record_passes() {
        process_record(&valid(), 0x4000).unwrap();
    }

    #[test]
    fn pages_must_match_the_page_runs() {
        refused(&valid(), 0x5000, "page_runs");
        refused(&valid(), 0x3000, "page_runs[1]");
        let mut r = valid();
        r.page_runs[1].section_offset = 0x4000;
        refused(&r, 0x5000, "page_runs[1]");
    }

    #[test]
    fn page_runs_outside_stored_vmas_or_out_of_order_are_refused() {
        let mut r = valid();
        r.page_runs = vec![run(0x40_3000, 0x2000, 0)];
        refused(&r, 0x2000, "page_runs[0]");
        let mut r = valid();
        r.page_runs = vec![run(0x40_3000, 0x1000, 0), run(0x40_0000, 0x1000, 0x1000)];
        refused(&r, 0x2000, "page_runs[1]");
        let mut r = valid();
        r.vmas[1].kind = rec::VmaKind::FileShared as i32;
        r.vmas[1].name = "/f".into();
        refused(&r, 0x4000, "page_runs[0]");
        let mut r = valid();
        r.page_runs = vec![run(u64::MAX - 0xfff, 0x1000, 0)];
        refused(&r, 0x1000, "page_runs[0]");
    }

    #[test]
    fn vmas_must_be_ordered_aligned_and_in_user_space() {
        let mut r = valid();
        r.vmas[1].start = 0x40_1000;
        refused(&r, 0x4000, "vmas[1]");
        let mut r = valid();
        r.vmas[0].end = 0x40_0800;
        refused(&r, 0x4000, "vmas[0]");
        let mut r = valid();
        r.vmas[2].kind = rec::VmaKind::Anonymous as i32;
        refused(&r, 0x4000, "vmas[2]");
        let mut r = valid();
        r.vmas[0].kind = rec::VmaKind::FilePrivate as i32;
        r.vmas[0].name = "lib.so".into();
        refused(&r, 0x4000, "vmas[0].name");
    }

    #[test]
    fn fds_signals_rlimits_and_paths_are_bounded() {
        let file = |fd, path: &str| rec::FdRecord {
            fd,
            kind: rec::FdKind::RegularFile as i32,
            path: path.into(),
            ..Default::default()
        };
        let mut r = valid();
        r.fds = vec![file(3, "/a"), file(3, "/b")];
        refused(&r, 0x4000, "fds[1]");
        r.fds = vec![file(MAX_FD_NUMBER, "/a")];
        refused(&r, 0x4000, "fds[0]");
        r.fds = vec![file(3, "/a\0b")];
        refused(&r, 0x4000, "fds[0].path");
        r.fds = vec![file(3, "relative")];
        refused(&r, 0x4000, "fds[0].path");

        let mut r = valid();
        r.sigactions = vec![rec::SigactionRecord {
            signo: 65,
            ..Default::default()
        }];
        refused(&r, 0x4000, "sigactions[0]");
        let mut r = valid();
        r.rlimits = vec![rec::RlimitRecord {
            resource: 16,
            soft: 0,
            hard: 0,
        }];
        refused(&r, 0x4000, "rlimits[0]");
        let mut r = valid();
        r.regs.as_mut().unwrap().rip = 0xffff_8000_0000_0000;
        refused(&r, 0x4000, "regs.rip");
        let mut r = valid();
        r.security = None;
        refused(&r, 0x4000, "security");
    }

    #[test]
    fn validation_is_linear_for_the_largest_allowed_record() {
        // 65536 VMAs and 65536 page runs: a quadratic walk would take minutes.
        let n = 65_536u64;
        let mut r = valid();
        r.vmas = (0..n)
            .map(|i| {
                vma(
                    0x1000_0000 + i * 0x2000,
                    0x1000_2000 + i * 0x2000,
                    rec::VmaKind::Anonymous,
                )
            })
            .collect();
        r.page_runs = (0..n)
            .map(|i| run(0x1000_0000 + i * 0x2000, 0x1000, i * 0x1000))
            .collect();
        let t = std::time::Instant::now();
        process_record(&r, n * 0x1000).unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }
}
