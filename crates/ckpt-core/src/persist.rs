//! Conversion between the live model (`model`) and the stored records
//! (`image_format::records::ProcessRecord`). Decoding validates everything
//! it takes from the image (bounds, alignment, overlaps) and never panics.

use image_format::records as rec;
use lsm_labels::persist::Persist;

use crate::dump::PAGE;
use crate::model::*;
use crate::ptrace::Regs;

/// Most VMAs a record may hold (the kernel default max_map_count is 65530).
pub const MAX_VMAS: usize = image_format::limits::MAX_VMAS as usize;
/// Most fds a record may hold.
pub const MAX_FDS: usize = image_format::limits::MAX_FDS as usize;
/// Largest XSAVE area accepted.
pub const MAX_XSAVE: usize = image_format::limits::MAX_XSAVE_LEN as usize;

fn regs_to_record(r: &Regs) -> rec::X86RegsRecord {
    rec::X86RegsRecord {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        rbp: r.rbp,
        rbx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        rax: r.rax,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        orig_rax: r.orig_rax,
        rip: r.rip,
        cs: r.cs,
        eflags: r.eflags,
        rsp: r.rsp,
        ss: r.ss,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        ds: r.ds,
        es: r.es,
        fs: r.fs,
        gs: r.gs,
    }
}

fn regs_from_record(r: &rec::X86RegsRecord) -> Regs {
    let mut o = zero_regs();
    o.r15 = r.r15;
    o.r14 = r.r14;
    o.r13 = r.r13;
    o.r12 = r.r12;
    o.rbp = r.rbp;
    o.rbx = r.rbx;
    o.r11 = r.r11;
    o.r10 = r.r10;
    o.r9 = r.r9;
    o.r8 = r.r8;
    o.rax = r.rax;
    o.rcx = r.rcx;
    o.rdx = r.rdx;
    o.rsi = r.rsi;
    o.rdi = r.rdi;
    o.orig_rax = r.orig_rax;
    o.rip = r.rip;
    o.cs = r.cs;
    o.eflags = r.eflags;
    o.rsp = r.rsp;
    o.ss = r.ss;
    o.fs_base = r.fs_base;
    o.gs_base = r.gs_base;
    o.ds = r.ds;
    o.es = r.es;
    o.fs = r.fs;
    o.gs = r.gs;
    o
}

fn fid(f: &FileId) -> rec::FileIdRecord {
    rec::FileIdRecord {
        path: f.path.clone(),
        dev: f.dev,
        ino: f.ino,
        stamp: f.stamp.as_ref().map(stamp_record),
    }
}

fn fid_back(f: &Option<rec::FileIdRecord>) -> Result<FileId, String> {
    match f {
        None => Ok(FileId::default()),
        Some(f) => Ok(FileId {
            path: f.path.clone(),
            dev: f.dev,
            ino: f.ino,
            stamp: stamp_back(&f.stamp, &f.path)?,
        }),
    }
}

fn stamp_record(s: &FileStamp) -> rec::FileStampRecord {
    rec::FileStampRecord {
        size: s.size,
        mtime_sec: s.mtime_sec,
        mtime_nsec: s.mtime_nsec,
        ctime_sec: s.ctime_sec,
        ctime_nsec: s.ctime_nsec,
        sha256: s.sha256.map(|d| d.to_vec()).unwrap_or_default(),
        btime_sec: s.btime.map(|b| b.0),
        btime_nsec: s.btime.map(|b| b.1).unwrap_or(0),
    }
}

fn stamp_back(r: &Option<rec::FileStampRecord>, path: &str) -> Result<Option<FileStamp>, String> {
    let Some(r) = r else { return Ok(None) };
    let sha256 = match r.sha256.len() {
        0 => None,
        32 => {
            let mut d = [0u8; 32];
            d.copy_from_slice(&r.sha256);
            Some(d)
        }
        n => {
            return Err(format!(
                "the content digest of {path} has {n} bytes, not 32"
            ))
        }
    };
    let nsec_ok = |n: u32| n < 1_000_000_000;
    if !nsec_ok(r.mtime_nsec) || !nsec_ok(r.ctime_nsec) || !nsec_ok(r.btime_nsec) {
        return Err(format!("the file times of {path} are not valid"));
    }
    Ok(Some(FileStamp {
        size: r.size,
        mtime_sec: r.mtime_sec,
        mtime_nsec: r.mtime_nsec,
        ctime_sec: r.ctime_sec,
        ctime_nsec: r.ctime_nsec,
        btime: r.btime_sec.map(|s| (s, r.btime_nsec)),
        sha256,
    }))
}

/// The refusal for an image without the identity that format 1.1 records.
fn no_identity(what: &str, path: &str) -> String {
    format!(
        "{what} {path} has no recorded file identity (size, times{}); the image was written by a ckpt older than image format 1.1, which restore no longer accepts: dump the process again",
        if what.contains("exec") { ", content digest" } else { "" }
    )
}

/// The stored form of a process.
pub fn to_record(s: &ProcessState) -> rec::ProcessRecord {
    rec::ProcessRecord {
        pid: s.pid,
        comm: s.comm.clone(),
        exe: Some(fid(&s.exe)),
        cwd: Some(fid(&s.cwd)),
        umask: s.umask,
        personality: s.personality,
        regs: Some(regs_to_record(&s.regs)),
        xsave: s.xsave.clone(),
        sigmask: s.sigmask,
        sigactions: s
            .sigactions
            .iter()
            .map(|a| rec::SigactionRecord {
                signo: a.signo,
                handler: a.handler,
                flags: a.flags,
                restorer: a.restorer,
                mask: a.mask,
            })
            .collect(),
        vmas: s
            .vmas
            .iter()
            .map(|v| rec::VmaRecord {
                start: v.start,
                end: v.end,
                prot: v.prot,
                shared: v.shared,
                growsdown: v.growsdown,
                madvise: v.madvise,
                may_write: v.may_write,
                kind: match v.backing {
                    VmaBacking::Anonymous => rec::VmaKind::Anonymous,
                    VmaBacking::FilePrivate => rec::VmaKind::FilePrivate,
                    VmaBacking::FileShared => rec::VmaKind::FileShared,
                    VmaBacking::SharedAnonymous => rec::VmaKind::SharedAnonymous,
                    VmaBacking::Special => rec::VmaKind::Special,
                } as i32,
                name: v.name.clone(),
                offset: v.offset,
                dev: v.dev,
                ino: v.ino,
                stamp: v.stamp.as_ref().map(stamp_record),
            })
            .collect(),
        page_runs: s
            .page_runs
            .iter()
            .map(|r| rec::PageRunRecord {
                vaddr: r.vaddr,
                len: r.len,
                section_offset: r.offset,
            })
            .collect(),
        mm: Some(rec::MmFieldsRecord {
            start_code: s.mm.start_code,
            end_code: s.mm.end_code,
            start_data: s.mm.start_data,
            end_data: s.mm.end_data,
            start_brk: s.mm.start_brk,
            brk: s.mm.brk,
            start_stack: s.mm.start_stack,
            arg_start: s.mm.arg_start,
            arg_end: s.mm.arg_end,
            env_start: s.mm.env_start,
            env_end: s.mm.env_end,
        }),
        auxv: s.auxv.clone(),
        rlimits: s
            .rlimits
            .iter()
            .map(|&(resource, soft, hard)| rec::RlimitRecord {
                resource,
                soft,
                hard,
            })
            .collect(),
        rseq: s.rseq.map(|r| rec::RseqRecord {
            addr: r.addr,
            len: r.len,
            sig: r.sig,
            flags: 0,
        }),
        fds: s
            .fds
            .iter()
            .map(|o| {
                let mut r = rec::FdRecord {
                    fd: o.fd,
                    flags: o.flags,
                    pos: o.pos,
                    ..Default::default()
                };
                match &o.target {
                    FdTarget::RegularFile(f) | FdTarget::Directory(f) => {
                        r.kind = if matches!(o.target, FdTarget::RegularFile(_)) {
                            rec::FdKind::RegularFile
                        } else {
                            rec::FdKind::Directory
                        } as i32;
                        r.path = f.path.clone();
                        r.dev = f.dev;
                        r.ino = f.ino;
                        r.stamp = f.stamp.as_ref().map(stamp_record);
                    }
                    FdTarget::CharDevice { path, rdev } => {
                        r.kind = rec::FdKind::CharDevice as i32;
                        r.path = path.clone();
                        r.rdev = *rdev;
                    }
                    FdTarget::Pipe { ino } => {
                        r.kind = rec::FdKind::Pipe as i32;
                        r.pipe_ino = *ino;
                    }
                    FdTarget::InheritedStdio => r.kind = rec::FdKind::InheritedStdio as i32,
                }
                r.same_file_as = o.same_file_as;
                r
            })
            .collect(),
        pipes: s
            .pipes
            .iter()
            .map(|p| rec::PipeRecord {
                ino: p.ino,
                data: p.data.clone(),
                capacity: (p.capacity != 0).then_some(p.capacity),
            })
            .collect(),
        no_new_privs: s.no_new_privs,
        sigaltstack: s
            .sigaltstack
            .map(|(sp, flags, size)| rec::SigaltstackRecord { sp, flags, size }),
        security: Some(s.security.to_record()),
        vdso_sha256: s.vdso_sha256.clone(),
        attrs: s.attrs.as_ref().map(attrs_to_record),
        terminal: s.terminal.as_ref().map(|t| t.to_record()),
        guard_runs: s
            .attrs
            .iter()
            .flat_map(|a| a.guard_pages.iter())
            .map(|&(start, len)| rec::GuardRunRecord { start, len })
            .collect(),
        posix_timers: s
            .attrs
            .iter()
            .flat_map(|a| a.posix_timers.iter())
            .map(|t| rec::PosixTimerRecord {
                id: t.id,
                clock: t.clock,
                notify: t.notify,
                signo: t.signo,
                value: t.value,
                interval_ns: t.interval_ns,
                remaining_ns: t.remaining_ns,
            })
            .collect(),
        threads: s.threads.iter().map(thread_to_record).collect(),
    }
}

/// The guard runs of a record, validated against its VMAs.
pub fn guard_runs_from_record(r: &rec::ProcessRecord) -> Result<Vec<(u64, u64)>, String> {
    let runs: Vec<(u64, u64)> = r.guard_runs.iter().map(|g| (g.start, g.len)).collect();
    let vmas: Vec<(u64, u64)> = r.vmas.iter().map(|v| (v.start, v.end)).collect();
    crate::guard_pages::validate(&runs, &vmas)?;
    Ok(runs)
}

/// The POSIX timers of a record, validated (`posix_timers::validate`).
pub fn posix_timers_from_record(
    r: &[rec::PosixTimerRecord],
) -> Result<Vec<crate::posix_timers::PosixTimer>, String> {
    let timers: Vec<_> = r
        .iter()
        .map(|t| crate::posix_timers::PosixTimer {
            id: t.id,
            clock: t.clock,
            notify: t.notify,
            signo: t.signo,
            value: t.value,
            interval_ns: t.interval_ns,
            remaining_ns: t.remaining_ns,
        })
        .collect();
    crate::posix_timers::validate(&timers)?;
    Ok(timers)
}

fn thread_to_record(t: &ThreadState) -> rec::ThreadRecord {
    rec::ThreadRecord {
        tid: t.tid,
        comm: t.comm.clone(),
        regs: Some(regs_to_record(&t.regs)),
        xsave: t.xsave.clone(),
        sigmask: t.sigmask,
        sigaltstack: t
            .sigaltstack
            .map(|(sp, flags, size)| rec::SigaltstackRecord { sp, flags, size }),
        rseq: t.rseq.map(|r| rec::RseqRecord {
            addr: r.addr,
            len: r.len,
            sig: r.sig,
            flags: 0,
        }),
        clear_child_tid: t.clear_child_tid,
        robust_list: t
            .robust_list
            .map(|(head, len)| rec::RobustListRecord { head, len }),
    }
}

/// The live form of a thread record (validated by `validate::process_record`).
fn thread_from_record(t: &rec::ThreadRecord) -> Result<ThreadState, String> {
    if t.xsave.len() > MAX_XSAVE {
        return Err(format!("thread {}: xsave area too large", t.tid));
    }
    let regs = t
        .regs
        .as_ref()
        .ok_or_else(|| format!("thread {} has no registers", t.tid))?;
    Ok(ThreadState {
        tid: t.tid,
        comm: t.comm.clone(),
        regs: regs_from_record(regs),
        xsave: t.xsave.clone(),
        sigmask: t.sigmask,
        sigaltstack: t.sigaltstack.as_ref().map(|s| (s.sp, s.flags, s.size)),
        rseq: t.rseq.as_ref().map(|x| Rseq {
            addr: x.addr,
            len: x.len,
            sig: x.sig,
        }),
        clear_child_tid: t.clear_child_tid,
        robust_list: t.robust_list.as_ref().map(|l| (l.head, l.len)),
    })
}

fn attrs_to_record(a: &crate::task_attrs::TaskAttrs) -> rec::TaskAttrsRecord {
    rec::TaskAttrsRecord {
        dumpable: a.dumpable,
        child_subreaper: a.child_subreaper,
        thp_disable: a.thp_disable,
        pdeathsig: a.pdeathsig,
        timer_slack_ns: a.timer_slack_ns,
        oom_score_adj: a.oom_score_adj,
        loginuid: a.loginuid,
        itimers: a
            .itimers
            .iter()
            .map(|t| rec::ItimerRecord {
                which: t.which,
                interval_us: t.interval_us,
                value_us: t.value_us,
            })
            .collect(),
        membarrier: a.membarrier,
    }
}

/// Longest interval timer accepted (the kernel's limit is far beyond any
/// real use; this bounds what a crafted image may ask for): 100 years.
const MAX_TIMER_US: u64 = 100 * 365 * 24 * 3600 * 1_000_000;

fn attrs_from_record(r: &rec::TaskAttrsRecord) -> Result<crate::task_attrs::TaskAttrs, String> {
    use crate::task_attrs::{TaskAttrs, TimerState};
    if r.dumpable > 2 || r.pdeathsig > 64 || !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(format!(
            "task attributes out of range (dumpable {}, pdeathsig {}, oom_score_adj {})",
            r.dumpable, r.pdeathsig, r.oom_score_adj
        ));
    }
    if r.itimers.len() > 3 {
        return Err("more than three interval timers".into());
    }
    let mut itimers = Vec::with_capacity(r.itimers.len());
    for t in &r.itimers {
        if t.which > 2 || t.interval_us > MAX_TIMER_US || t.value_us > MAX_TIMER_US {
            return Err(format!("interval timer {} is out of range", t.which));
        }
        itimers.push(TimerState {
            which: t.which,
            interval_us: t.interval_us,
            value_us: t.value_us,
        });
    }
    Ok(TaskAttrs {
        dumpable: r.dumpable,
        child_subreaper: r.child_subreaper,
        thp_disable: r.thp_disable,
        pdeathsig: r.pdeathsig,
        timer_slack_ns: r.timer_slack_ns,
        oom_score_adj: r.oom_score_adj,
        loginuid: r.loginuid,
        itimers,
        membarrier: r.membarrier & crate::task_attrs::MEMBARRIER_REGISTER_BITS,
        posix_timers: Vec::new(),
        guard_pages: Vec::new(),
    })
}

/// The live form of a stored process, validated against the length of its
/// pages section (`pages_len`).
pub fn from_record(r: &rec::ProcessRecord, pages_len: u64) -> Result<ProcessState, String> {
    // The shared semantic validation (also run by inspect and policy-diff).
    crate::validate::process_record(r, pages_len).map_err(|e| e.to_string())?;
    if r.pid <= 0 {
        return Err(format!("pid {} is not valid", r.pid));
    }
    if r.vmas.len() > MAX_VMAS || r.fds.len() > MAX_FDS || r.xsave.len() > MAX_XSAVE {
        return Err("process record is larger than any real process".into());
    }
    if r.auxv.len() > 128 {
        return Err(format!(
            "auxv has {} words, more than the kernel keeps",
            r.auxv.len()
        ));
    }
    let regs = r.regs.as_ref().ok_or("no registers recorded")?;
    let mut vmas = Vec::with_capacity(r.vmas.len());
    let mut last_end = 0u64;
    for v in &r.vmas {
        let backing = match rec::VmaKind::try_from(v.kind) {
            Ok(rec::VmaKind::Anonymous) => VmaBacking::Anonymous,
            Ok(rec::VmaKind::FilePrivate) => VmaBacking::FilePrivate,
            Ok(rec::VmaKind::FileShared) => VmaBacking::FileShared,
            Ok(rec::VmaKind::SharedAnonymous) => VmaBacking::SharedAnonymous,
            Ok(rec::VmaKind::Special) => VmaBacking::Special,
            _ => return Err(format!("VMA {:#x} has unknown kind {}", v.start, v.kind)),
        };
        if v.start >= v.end || v.start % PAGE != 0 || v.end % PAGE != 0 || v.start < last_end {
            return Err(format!(
                "VMA {:#x}-{:#x} is not page-aligned, empty or out of order",
                v.start, v.end
            ));
        }
        if v.prot > 7 {
            return Err(format!("VMA {:#x} has protection {}", v.start, v.prot));
        }
        last_end = v.end;
        let stamp = stamp_back(&v.stamp, &v.name)?;
        if matches!(backing, VmaBacking::FilePrivate | VmaBacking::FileShared) {
            let exec = v.prot & libc::PROT_EXEC as u32 != 0;
            match &stamp {
                None => return Err(no_identity("mapped file", &v.name)),
                Some(s) if exec && s.sha256.is_none() => {
                    return Err(no_identity("executable mapping of", &v.name))
                }
                _ => {}
            }
        }
        vmas.push(Vma {
            start: v.start,
            end: v.end,
            prot: v.prot,
            shared: v.shared,
            growsdown: v.growsdown,
            madvise: v.madvise & 0x1f,
            backing,
            may_write: v.may_write,
            name: v.name.clone(),
            offset: v.offset,
            dev: v.dev,
            ino: v.ino,
            stamp,
        });
    }
    let mut page_runs = Vec::with_capacity(r.page_runs.len().min(1 << 20));
    for p in &r.page_runs {
        let ok_align =
            p.vaddr % PAGE == 0 && p.len % PAGE == 0 && p.len > 0 && p.section_offset % PAGE == 0;
        // Inside the pages section and inside stored VMAs: checked by
        // validate::process_record (in linear time).
        if !ok_align {
            return Err(format!(
                "page run {:#x}+{:#x} at section offset {:#x} is not page-aligned",
                p.vaddr, p.len, p.section_offset
            ));
        }
        page_runs.push(PageRun {
            vaddr: p.vaddr,
            len: p.len,
            offset: p.section_offset,
        });
    }
    let mut fds = Vec::with_capacity(r.fds.len());
    for f in &r.fds {
        if f.fd < 0 {
            return Err(format!("fd {} is not valid", f.fd));
        }
        let target = match rec::FdKind::try_from(f.kind) {
            Ok(rec::FdKind::RegularFile) => FdTarget::RegularFile(FileId {
                path: f.path.clone(),
                dev: f.dev,
                ino: f.ino,
                stamp: Some(
                    stamp_back(&f.stamp, &f.path)?
                        .ok_or_else(|| no_identity(&format!("fd {}: file", f.fd), &f.path))?,
                ),
            }),
            Ok(rec::FdKind::Directory) => FdTarget::Directory(FileId {
                path: f.path.clone(),
                dev: f.dev,
                ino: f.ino,
                stamp: None,
            }),
            Ok(rec::FdKind::CharDevice) => FdTarget::CharDevice {
                path: f.path.clone(),
                rdev: f.rdev,
            },
            Ok(rec::FdKind::Pipe) => {
                if !r.pipes.iter().any(|p| p.ino == f.pipe_ino) {
                    return Err(format!(
                        "fd {} names pipe {} that is not recorded",
                        f.fd, f.pipe_ino
                    ));
                }
                FdTarget::Pipe { ino: f.pipe_ino }
            }
            Ok(rec::FdKind::InheritedStdio) if f.fd <= 2 => FdTarget::InheritedStdio,
            _ => return Err(format!("fd {} has unknown kind {}", f.fd, f.kind)),
        };
        if let Some(k) = f.same_file_as {
            let earlier = fds.iter().any(|o: &OpenFd| {
                o.fd == k
                    && matches!(
                        o.target,
                        FdTarget::RegularFile(_)
                            | FdTarget::Directory(_)
                            | FdTarget::CharDevice { .. }
                    )
            });
            if k >= f.fd || !earlier {
                return Err(format!(
                    "fd {} shares its file with fd {k}, which is not an earlier file fd",
                    f.fd
                ));
            }
        }
        fds.push(OpenFd {
            fd: f.fd,
            target,
            flags: f.flags,
            pos: f.pos,
            same_file_as: f.same_file_as,
        });
    }
    for p in &r.pipes {
        if p.data.len() > 1 << 20 {
            return Err(format!("pipe {} holds more than 1 MiB", p.ino));
        }
        // The kernel's limit is /proc/sys/fs/pipe-max-size (1 MiB by
        // default); 1 GiB bounds what a crafted image may ask for.
        if p.capacity.is_some_and(|c| c > 1 << 30) {
            return Err(format!("pipe {} claims a capacity above 1 GiB", p.ino));
        }
    }
    let exe = fid_back(&r.exe)?;
    if exe.stamp.is_none_or(|s| s.sha256.is_none()) {
        return Err(no_identity("the executable", &exe.path));
    }
    let mut cwd = fid_back(&r.cwd)?;
    cwd.stamp = None;
    let mm = r.mm.clone().unwrap_or_default();
    let security = lsm_labels::TaskSecurity::from_record(
        r.security
            .as_ref()
            .ok_or("no security record for the task")?,
    )
    .map_err(|e| e.to_string())?;

    Ok(ProcessState {
        pid: r.pid,
        comm: r.comm.clone(),
        exe,
        cwd,
        umask: r.umask & 0o777,
        personality: r.personality,
        no_new_privs: r.no_new_privs,
        regs: regs_from_record(regs),
        xsave: r.xsave.clone(),
        sigmask: r.sigmask,
        sigactions: r
            .sigactions
            .iter()
            .filter(|a| (1..=64).contains(&a.signo))
            .map(|a| SigAction {
                signo: a.signo,
                handler: a.handler,
                flags: a.flags,
                restorer: a.restorer,
                mask: a.mask,
            })
            .collect(),
        sigaltstack: r.sigaltstack.as_ref().map(|s| (s.sp, s.flags, s.size)),
        vdso_sha256: r.vdso_sha256.clone(),
        vmas,
        page_runs,
        mm: MmFields {
            start_code: mm.start_code,
            end_code: mm.end_code,
            start_data: mm.start_data,
            end_data: mm.end_data,
            start_brk: mm.start_brk,
            brk: mm.brk,
            start_stack: mm.start_stack,
            arg_start: mm.arg_start,
            arg_end: mm.arg_end,
            env_start: mm.env_start,
            env_end: mm.env_end,
        },
        auxv: r.auxv.clone(),
        rlimits: r
            .rlimits
            .iter()
            .filter(|l| l.resource < 16)
            .map(|l| (l.resource, l.soft, l.hard))
            .collect(),
        rseq: r.rseq.as_ref().map(|x| Rseq {
            addr: x.addr,
            len: x.len,
            sig: x.sig,
        }),
        attrs: match r.attrs.as_ref().map(attrs_from_record).transpose()? {
            Some(mut a) => {
                a.posix_timers = posix_timers_from_record(&r.posix_timers)?;
                a.guard_pages = guard_runs_from_record(r)?;
                Some(a)
            }
            None if r.posix_timers.is_empty() && r.guard_runs.is_empty() => None,
            None => return Err("POSIX timers or guard regions without task attributes".into()),
        },
        fds,
        pipes: r
            .pipes
            .iter()
            .map(|p| PipeState {
                ino: p.ino,
                data: p.data.clone(),
                capacity: p.capacity.unwrap_or(0),
            })
            .collect(),
        security,
        terminal: r
            .terminal
            .as_ref()
            .map(crate::terminal::TerminalModes::from_record)
            .transpose()?,
        threads: r
            .threads
            .iter()
            .map(thread_from_record)
            .collect::<Result<_, _>>()?,
    })
}
