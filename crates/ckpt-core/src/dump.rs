//! Dump: freeze a task, collect everything that describes it into the
//! live model, and stream the contents of the pages it owns.
//!
//! What to collect is decided here from /proc text (through `ProcSource`)
//! and from calls made through the `Tracer` seam; nothing here is unsafe.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;

use crate::error::DumpError;
use crate::file_identity::DigestCache;
use crate::model::*;
use crate::procfs::{self, MapsEntry, ProcSource};
use crate::ptrace::{find_syscall_insn, Tracee, Tracer};
use crate::terminal::TerminalModes;

pub const PAGE: u64 = 4096;

/// Kernel special mappings that are moved, never copied.
pub fn is_special(name: &str) -> bool {
    matches!(name, "[vdso]" | "[vvar]" | "[vvar_vclock]" | "[vsyscall]")
}

/// Classify a /proc/PID/maps entry.
pub fn classify(m: &MapsEntry) -> Result<VmaBacking, String> {
    if is_special(&m.name) {
        return Ok(VmaBacking::Special);
    }
    let is_file = m.ino != 0 && m.name.starts_with('/');
    let shmem_anon = m.name.starts_with("/dev/zero") || m.name.starts_with("/SYSV");
    if m.shared {
        if shmem_anon {
            return Ok(VmaBacking::SharedAnonymous);
        }
        if m.name.starts_with("/memfd:") {
            return Err(format!("shared mapping of memfd {}", m.name));
        }
        if m.name.ends_with(" (deleted)") {
            return Err(format!("shared mapping of deleted file {}", m.name));
        }
        if is_file {
            return Ok(VmaBacking::FileShared);
        }
        return Err(format!("shared mapping {:?}", m.name));
    }
    if is_file {
        if m.name.ends_with(" (deleted)") || m.name.starts_with("/memfd:") {
            return Err(format!("private mapping of deleted file {}", m.name));
        }
        return Ok(VmaBacking::FilePrivate);
    }
    Ok(VmaBacking::Anonymous)
}

/// Which pages of `vma` must be stored, given its pagemap entries: runs of
/// (start, len).
pub fn pages_to_store(vma: &Vma, pagemap: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (i, e) in pagemap.iter().enumerate() {
        let present = e & procfs::PM_PRESENT != 0;
        let swapped = e & procfs::PM_SWAPPED != 0;
        let file_page = e & procfs::PM_FILE_OR_SHARED != 0;
        let keep = !crate::guard_pages::is_guard(*e)
            && match vma.backing {
                VmaBacking::Anonymous => present || swapped,
                VmaBacking::FilePrivate => (present && !file_page) || swapped,
                VmaBacking::SharedAnonymous => true,
                VmaBacking::FileShared | VmaBacking::Special => false,
            };
        if keep {
            let addr = vma.start + i as u64 * PAGE;
            match out.last_mut() {
                Some((s, l)) if *s + *l == addr => *l += PAGE,
                _ => out.push((addr, PAGE)),
            }
        }
    }
    out
}

/// A task held stopped under ptrace. Dropping it puts back the registers
/// and signal mask and detaches: the task runs on as if nothing happened.
pub struct FrozenTask {
    pub(crate) tracee: Option<Tracee>,
    orig_regs: Option<crate::ptrace::Regs>,
    orig_mask: Option<u64>,
    /// The process's other threads, every one seized (`thread_dump`).
    pub(crate) threads: Vec<crate::thread_dump::FrozenThread>,
}

impl FrozenTask {
    pub fn freeze(pid: i32) -> Result<FrozenTask, DumpError> {
        crate::dump_refusals::check_not_stopped(pid)?;
        let tracee = Tracee::seize(pid).map_err(|source| match source {
            crate::ptrace::TraceError::GroupStopped { .. } => {
                crate::dump_refusals::stopped_refusal(pid)
            }
            source => DumpError::Freeze { pid, source },
        })?;
        // The originals are kept from the first moment, so that whatever
        // fails later, the task gets exactly these back.
        let orig_regs = tracee.regs().ok();
        let orig_mask = tracee.get_sigmask().ok();
        let mut frozen = FrozenTask {
            tracee: Some(tracee),
            orig_regs,
            orig_mask,
            threads: Vec::new(),
        };
        // On failure the drop lets the leader and every seized thread go.
        frozen.threads = crate::thread_dump::freeze_threads(pid)?;
        Ok(frozen)
    }

    fn tracee(&mut self) -> &mut Tracee {
        self.tracee.as_mut().expect("tracee present until release")
    }

    fn put_back(&mut self) -> Result<(), crate::ptrace::TraceError> {
        let regs = self.orig_regs.take();
        let mask = self.orig_mask.take();
        let t = self.tracee();
        if let Some(r) = regs {
            // A signal deliverable at detach runs through the kernel's
            // restart logic with the original registers; otherwise the
            // task leaves a system-call-exit stop, where that logic does
            // not run, and gets its outcome directly.
            let deliverable =
                mask.is_some_and(|m| crate::dump_refusals::pending_signals(t.pid()) & !m != 0);
            let r = if deliverable {
                r
            } else {
                crate::ptrace::kernel_resume_regs(&r)
            };
            t.set_regs(&r)?;
        }
        if let Some(m) = mask {
            t.set_sigmask(m)?;
        }
        t.end_injection();
        Ok(())
    }

    /// Put the task and all its threads back and let them run.
    pub fn release_running(mut self) -> Result<(), crate::ptrace::TraceError> {
        for th in std::mem::take(&mut self.threads) {
            th.release_running()?;
        }
        self.put_back()?;
        let t = self.tracee.take().expect("tracee present");
        t.detach()
    }

    /// Kill the task (the dump is complete) and wait until it is gone:
    /// the traced threads are reaped before the leader can be.
    pub fn release_killed(mut self) {
        let t = self.tracee.take().expect("tracee present");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(t.pid()),
            nix::sys::signal::Signal::SIGKILL,
        );
        for th in std::mem::take(&mut self.threads) {
            th.reap_killed();
        }
        t.kill_and_reap();
    }
}

impl Drop for FrozenTask {
    fn drop(&mut self) {
        if self.tracee.is_some() {
            let _ = self.put_back();
            if let Some(t) = self.tracee.take() {
                let _ = t.detach();
            }
        }
    }
}

/// The result of an injected system call that must succeed: a trace
/// failure or a -errno return becomes the named [`DumpError`].
pub(crate) fn inj(
    pid: i32,
    call: &str,
    r: Result<i64, crate::ptrace::TraceError>,
) -> Result<u64, DumpError> {
    let v = r.map_err(|source| DumpError::Trace { pid, source })?;
    if (-4095..0).contains(&v) {
        return Err(DumpError::Injected {
            pid,
            call: call.to_string(),
            errno: (-v) as i32,
        });
    }
    Ok(v as u64)
}

fn proc_err(pid: i32, file: &str) -> impl FnOnce(std::io::Error) -> DumpError + '_ {
    move |source| DumpError::Proc {
        pid,
        file: file.to_string(),
        source,
    }
}

/// Collect the state of a frozen task (everything but page contents) and
/// the address ranges whose pages are candidates for storing.
pub fn collect(
    frozen: &mut FrozenTask,
    proc: &dyn ProcSource,
) -> Result<(ProcessState, Vec<(u64, u64)>), DumpError> {
    let pid = frozen.tracee().pid();
    let status = proc.read_text("status").map_err(proc_err(pid, "status"))?;
    crate::dump_refusals::check_task(pid, proc, &status)?;
    // Filter mode is captured by `security_dump`; strict mode is refused.
    match procfs::status_field(&status, "Seccomp") {
        Some("0") | Some("2") | None => {}
        Some(m) => {
            return Err(DumpError::Confinement {
                pid,
                what: format!(
                    "it runs under strict seccomp (mode {m}), which this version cannot restore"
                ),
            })
        }
    }

    let no_new_privs = procfs::status_field(&status, "NoNewPrivs") == Some("1");
    let umask = procfs::status_field(&status, "Umask")
        .and_then(|u| u32::from_str_radix(u, 8).ok())
        .unwrap_or(0o022);

    // Registers and signal state, before any injection.
    let t = frozen.tracee();
    let regs = t
        .regs()
        .map_err(|source| DumpError::Trace { pid, source })?;
    let xsave = t
        .get_xstate()
        .map_err(|source| DumpError::Trace { pid, source })?;
    let sigmask = t
        .get_sigmask()
        .map_err(|source| DumpError::Trace { pid, source })?;
    let rseq = t
        .get_rseq()
        .map_err(|source| DumpError::Trace { pid, source })?
        .map(|c| Rseq {
            addr: c.rseq_abi_pointer,
            len: c.rseq_abi_size,
            sig: c.signature,
        });
    frozen.orig_regs = Some(regs);
    frozen.orig_mask = Some(sigmask);

    let maps = procfs::parse_maps(&proc.read_text("maps").map_err(proc_err(pid, "maps"))?)
        .map_err(|e| DumpError::Unsupported { pid, what: e })?;
    let vdso = maps
        .iter()
        .find(|m| m.name == "[vdso]")
        .ok_or(DumpError::Unsupported {
            pid,
            what: "it has no [vdso]".into(),
        })?;
    let mut code = vec![0u8; (vdso.end - vdso.start) as usize];
    let t = frozen.tracee();
    t.read_mem(vdso.start, &mut code)
        .map_err(|source| DumpError::Trace { pid, source })?;
    let off = find_syscall_insn(&code).ok_or(DumpError::Trace {
        pid,
        source: crate::ptrace::TraceError::NoSyscallInsn { pid },
    })?;
    t.set_syscall_ip(vdso.start + off as u64);
    let vdso_sha256 = {
        use sha2::Digest;
        sha2::Sha256::digest(&code).to_vec()
    };

    // Injected calls, with every signal blocked so none is consumed meanwhile.
    t.set_sigmask(!0)
        .map_err(|source| DumpError::Trace { pid, source })?;
    let scratch = inj(
        pid,
        "mmap",
        t.syscall(
            libc::SYS_mmap,
            &[
                0,
                PAGE,
                (libc::PROT_READ | libc::PROT_WRITE) as u64,
                (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
                u64::MAX,
                0,
            ],
        ),
    )?;
    let mut sigactions = Vec::new();
    // Only signals that are caught or ignored need asking: the rest are
    // SIG_DFL, whose flags and mask the kernel does not use.
    let asked = procfs::non_default_signals(&status);
    for sig in 1..=64u64 {
        if sig == libc::SIGKILL as u64
            || sig == libc::SIGSTOP as u64
            || asked & (1 << (sig - 1)) == 0
        {
            continue;
        }
        inj(
            pid,
            "rt_sigaction",
            t.syscall(libc::SYS_rt_sigaction, &[sig, 0, scratch, 8]),
        )?;
        let mut b = [0u8; 32];
        t.read_mem(scratch, &mut b)
            .map_err(|source| DumpError::Trace { pid, source })?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let a = SigAction {
            signo: sig as u32,
            handler: w(0),
            flags: w(1),
            restorer: w(2),
            mask: w(3),
        };
        if a.handler != 0 || a.flags != 0 || a.mask != 0 {
            sigactions.push(a);
        }
    }
    inj(
        pid,
        "sigaltstack",
        t.syscall(libc::SYS_sigaltstack, &[0, scratch]),
    )?;
    let mut ss = [0u8; 24];
    t.read_mem(scratch, &mut ss)
        .map_err(|source| DumpError::Trace { pid, source })?;
    let ssw = |i: usize| u64::from_le_bytes(ss[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let ss_flags = ssw(1) as u32;
    let sigaltstack = (ss_flags & libc::SS_DISABLE as u32 == 0).then(|| (ssw(0), ss_flags, ssw(2)));
    // Resource limits from inside: prlimit64 on another task whose ids
    // differ from ours needs CAP_SYS_RESOURCE, which root may lack.
    let mut rlimits = Vec::new();
    for res in 0..16u64 {
        inj(
            pid,
            "prlimit64",
            t.syscall(libc::SYS_prlimit64, &[0, res, 0, scratch]),
        )?;
        let mut b = [0u8; 16];
        t.read_mem(scratch, &mut b)
            .map_err(|source| DumpError::Trace { pid, source })?;
        let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        rlimits.push((res as u32, w(0), w(1)));
    }
    let brk = inj(pid, "brk", t.syscall(libc::SYS_brk, &[0]))?;
    let personality = inj(
        pid,
        "personality",
        t.syscall(libc::SYS_personality, &[0xffff_ffff]),
    )? as u32;
    let mut attrs = crate::task_attrs::capture(t, pid, scratch, proc)?;
    let terminal = stdio_terminal(t, pid, scratch)?;
    inj(pid, "munmap", t.syscall(libc::SYS_munmap, &[scratch, PAGE]))?;
    frozen
        .put_back()
        .map_err(|source| DumpError::Trace { pid, source })?;
    // put_back consumed the originals; keep them for the final release.
    frozen.orig_regs = Some(regs);
    frozen.orig_mask = Some(sigmask);

    // The memory map (re-read: the scratch page is gone again).
    let maps = procfs::parse_maps(&proc.read_text("maps").map_err(proc_err(pid, "maps"))?)
        .map_err(|e| DumpError::Unsupported { pid, what: e })?;
    // smaps adds the VM flags maps does not show; without it (an old
    // kernel) the flags are taken as clear.
    let smaps = proc.read_text("smaps").unwrap_or_default();
    let vmflags = procfs::parse_smaps_vmflags(&smaps);
    let may_write = procfs::smaps_with_flag(&smaps, "mw");
    let mut vmas = Vec::with_capacity(maps.len());
    for m in &maps {
        let backing = classify(m).map_err(|what| DumpError::Unsupported { pid, what })?;
        vmas.push(Vma {
            start: m.start,
            end: m.end,
            prot: m.prot(),
            shared: m.shared,
            growsdown: m.name == "[stack]",
            madvise: vmflags.get(&m.start).copied().unwrap_or(0),
            backing,
            may_write: may_write.contains(&m.start),
            name: m.name.clone(),
            offset: m.offset,
            dev: m.dev,
            ino: m.ino,
            stamp: None,
        });
    }
    let mut digests = DigestCache::default();
    stamp_mapped_files(pid, &mut vmas, &mut digests)?;
    let mut ranges = Vec::new();
    for v in &vmas {
        // Shared file mappings' pages are not stored, but their guard
        // regions are (pagemap is read for them too).
        if v.backing == VmaBacking::Special {
            continue;
        }
        let npages = (v.len() / PAGE) as usize;
        const CHUNK: usize = 1 << 16;
        let mut done = 0usize;
        while done < npages {
            let n = CHUNK.min(npages - done);
            let pm = proc
                .pagemap(v.start + done as u64 * PAGE, n)
                .map_err(proc_err(pid, "pagemap"))?;
            crate::guard_pages::collect(v.start + done as u64 * PAGE, &pm, &mut attrs.guard_pages);
            let sub = Vma {
                start: v.start + done as u64 * PAGE,
                ..v.clone()
            };
            for r in pages_to_store(&sub, &pm) {
                match ranges.last_mut() {
                    Some((s, l)) if *s + *l == r.0 => *l += r.1,
                    _ => ranges.push(r),
                }
            }
            done += n;
        }
    }

    // mm fields.
    let stat = proc.read_text("stat").map_err(proc_err(pid, "stat"))?;
    let f =
        procfs::parse_stat_fields(&stat).map_err(|e| DumpError::Unsupported { pid, what: e })?;
    let g = |i: usize| f.get(i).copied().unwrap_or(0);
    let mm = MmFields {
        start_code: g(26),
        end_code: g(27),
        start_stack: g(28),
        start_data: g(45),
        end_data: g(46),
        start_brk: g(47),
        brk,
        arg_start: g(48),
        arg_end: g(49),
        env_start: g(50),
        env_end: g(51),
    };
    let auxv_raw = proc.read_bytes("auxv").map_err(proc_err(pid, "auxv"))?;
    let auxv = auxv_raw
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    let mut exe = file_id(pid, proc, "exe")?;
    exe.stamp = Some(stamp_exe(pid, &exe, &mut digests)?);
    let cwd = file_id(pid, proc, "cwd")?;
    let comm = proc
        .read_text("comm")
        .map_err(proc_err(pid, "comm"))?
        .trim_end()
        .to_string();
    let (fds, pipes) = collect_fds(pid, proc)?;
    // The security state (credentials, labels, securebits, seccomp
    // filters) is read by `security_dump::capture` before this runs, with
    // the task's filters suspended; the caller stores it in `security`.
    let security = lsm_labels::TaskSecurity {
        tid: pid,
        personality,
        ..Default::default()
    };

    let state = ProcessState {
        pid,
        comm,
        exe,
        cwd,
        umask,
        personality,
        no_new_privs,
        regs,
        xsave,
        sigmask,
        sigactions,
        sigaltstack,
        vdso_sha256,
        vmas,
        page_runs: Vec::new(),
        mm,
        auxv,
        rlimits,
        rseq,
        fds,
        pipes,
        attrs: Some(attrs),
        security,
        terminal,
        threads: Vec::new(),
    };
    Ok((state, ranges))
}

use crate::fd_kinds::is_tty_rdev;

/// The modes of the terminal the first of fds 0-2 that is one is on, read
/// by ioctls injected into the task (see `terminal` for why), or None.
/// Only fds that stat as a terminal device are asked, so no other driver
/// ever sees the TCGETS request number.
fn stdio_terminal(
    t: &mut impl Tracer,
    pid: i32,
    scratch: u64,
) -> Result<Option<TerminalModes>, DumpError> {
    use crate::terminal::{KERNEL_TERMIOS_LEN, WINSIZE_LEN};
    for fd in 0..3i32 {
        let tty = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
            .map(|md| md.file_type().is_char_device() && is_tty_rdev(md.rdev()))
            .unwrap_or(false);
        if !tty {
            continue;
        }
        let r = t
            .syscall(libc::SYS_ioctl, &[fd as u64, libc::TCGETS, scratch])
            .map_err(|source| DumpError::Trace { pid, source })?;
        if r < 0 {
            continue;
        }
        let mut termios = [0u8; KERNEL_TERMIOS_LEN];
        t.read_mem(scratch, &mut termios)
            .map_err(|source| DumpError::Trace { pid, source })?;
        let r = t
            .syscall(libc::SYS_ioctl, &[fd as u64, libc::TIOCGWINSZ, scratch])
            .map_err(|source| DumpError::Trace { pid, source })?;
        let mut ws = [0u8; WINSIZE_LEN];
        let winsize = if r == 0 {
            t.read_mem(scratch, &mut ws)
                .map_err(|source| DumpError::Trace { pid, source })?;
            Some(&ws)
        } else {
            None
        };
        return Ok(Some(TerminalModes::from_kernel(fd, &termios, winsize)));
    }
    Ok(None)
}

fn file_id(pid: i32, proc: &dyn ProcSource, name: &str) -> Result<FileId, DumpError> {
    let path = proc.read_link(name).map_err(proc_err(pid, name))?;
    let md = std::fs::metadata(format!("/proc/{pid}/{name}")).map_err(proc_err(pid, name))?;
    Ok(FileId {
        path,
        dev: md.dev(),
        ino: md.ino(),
        stamp: None,
    })
}

/// The stamp of the exe, with its content digest, read through
/// /proc/PID/exe (the very file the task runs).
fn stamp_exe(pid: i32, exe: &FileId, digests: &mut DigestCache) -> Result<FileStamp, DumpError> {
    let f = File::open(format!("/proc/{pid}/exe")).map_err(proc_err(pid, "exe"))?;
    let (md, stamp) = digests.stamp(&f, true).map_err(proc_err(pid, "exe"))?;
    if (md.dev(), md.ino()) != (exe.dev, exe.ino) {
        return Err(DumpError::Unsupported {
            pid,
            what: format!("its executable {} changed during the dump", exe.path),
        });
    }
    Ok(stamp)
}

/// Records the stamp of every file-backed VMA's file (DESIGN 3.7), with a
/// content digest for executable mappings; each file is hashed once. The
/// file is opened by its path and must be the mapped inode.
fn stamp_mapped_files(
    pid: i32,
    vmas: &mut [Vma],
    digests: &mut DigestCache,
) -> Result<(), DumpError> {
    let mut exec: HashSet<(u64, u64)> = HashSet::new();
    for v in vmas.iter() {
        if v.prot & libc::PROT_EXEC as u32 != 0 {
            exec.insert((v.dev, v.ino));
        }
    }
    for v in vmas.iter_mut() {
        if !matches!(v.backing, VmaBacking::FilePrivate | VmaBacking::FileShared) {
            continue;
        }
        let with_digest = exec.contains(&(v.dev, v.ino));
        let fail = |why: String| DumpError::Unsupported {
            pid,
            what: format!(
                "cannot record the identity of mapped file {}: {why}",
                v.name
            ),
        };
        let f = File::open(&v.name).map_err(|e| fail(e.to_string()))?;
        let (md, stamp) = digests
            .stamp(&f, with_digest)
            .map_err(|e| fail(e.to_string()))?;
        if (md.dev(), md.ino()) != (v.dev, v.ino) {
            return Err(fail(
                "the file at that path is no longer the mapped one (renamed or replaced since it was mapped)".into(),
            ));
        }
        v.stamp = Some(stamp);
    }
    Ok(())
}

pub(crate) fn socket_kind(pid: i32, ino: &str) -> String {
    for (file, what) in [
        ("tcp", "TCP socket"),
        ("tcp6", "TCP socket"),
        ("udp", "UDP socket"),
        ("udp6", "UDP socket"),
        ("unix", "Unix socket"),
        ("raw", "raw socket"),
        ("netlink", "netlink socket"),
    ] {
        if let Ok(t) = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")) {
            if t.lines()
                .skip(1)
                .any(|l| l.split_whitespace().any(|w| w == ino))
            {
                return what.to_string();
            }
        }
    }
    "socket".to_string()
}

fn collect_fds(
    pid: i32,
    proc: &dyn ProcSource,
) -> Result<(Vec<OpenFd>, Vec<PipeState>), DumpError> {
    let mut fds: Vec<OpenFd> = Vec::new();
    for fd in proc.fds().map_err(proc_err(pid, "fd"))? {
        let link = proc
            .read_link(&format!("fd/{fd}"))
            .map_err(proc_err(pid, "fd"))?;
        let info_text = proc
            .read_text(&format!("fdinfo/{fd}"))
            .map_err(proc_err(pid, "fdinfo"))?;
        crate::dump_refusals::check_fd(pid, fd, &link, &info_text)?;
        let info = procfs::parse_fdinfo(&info_text);
        let md = if link.starts_with('/') {
            Some(std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).map_err(proc_err(pid, "fd"))?)
        } else {
            None
        };
        let probe = crate::fd_kinds::FdProbe {
            pid,
            fd,
            link: &link,
            md: md.as_ref(),
        };
        let target = crate::fd_kinds::classify(&probe)?;
        // A lower fd on the same path may share this open file description
        // (dup, `>log 2>&1`): then the two must share it after restore too.
        let mine = crate::fd_kinds::path_of(&target);
        let same_file_as = fds
            .iter()
            .filter(|o| {
                o.same_file_as.is_none()
                    && mine.is_some()
                    && crate::fd_kinds::path_of(&o.target) == mine
            })
            .map(|o| o.fd)
            .find(|&lower| crate::sys::same_open_file(pid, lower, fd).unwrap_or(false));
        let pos = if mine.is_some() { info.pos } else { 0 };
        fds.push(OpenFd {
            fd,
            target,
            flags: info.flags,
            pos,
            same_file_as,
        });
    }
    let captured = crate::fd_kinds::capture(pid, &mut fds)?;
    Ok((fds, captured.pipes))
}

/// Stream the pages in `ranges` from the frozen task into `out`, leaving
/// out pages that are entirely zero. Returns the stored runs (offsets
/// relative to the first byte written) and the number of bytes written.
pub fn stream_pages(
    pid: i32,
    ranges: &[(u64, u64)],
    out: &mut dyn Write,
    mut progress: impl FnMut(u64),
) -> Result<Vec<PageRun>, DumpError> {
    // 256 KiB: the buffer stays in L2 between the read, the hash and the
    // write; 1 MiB and larger writes were 4x slower into the page cache.
    const CHUNK: u64 = 256 << 10;
    let mut buf = vec![0u8; CHUNK as usize];
    let mut runs: Vec<PageRun> = Vec::new();
    let mut written = 0u64;
    let mut mem: Option<std::fs::File> = None;
    let mut done = 0u64;
    for &(start, len) in ranges {
        let mut pos = start;
        while pos < start + len {
            let n = CHUNK.min(start + len - pos) as usize;
            let chunk = &mut buf[..n];
            read_remote(pid, pos, chunk, &mut mem).map_err(|source| DumpError::ReadMemory {
                pid,
                start: pos,
                end: pos + n as u64,
                source,
            })?;
            // Emit maximal stretches of non-zero pages.
            let mut i = 0usize;
            while i < n {
                while i < n && is_zero(&chunk[i..i + PAGE as usize]) {
                    i += PAGE as usize;
                }
                let s = i;
                while i < n && !is_zero(&chunk[i..i + PAGE as usize]) {
                    i += PAGE as usize;
                }
                if i > s {
                    out.write_all(&chunk[s..i])
                        .map_err(|e| DumpError::Image(e.to_string()))?;
                    let vaddr = pos + s as u64;
                    let l = (i - s) as u64;
                    match runs.last_mut() {
                        Some(r) if r.vaddr + r.len == vaddr && r.offset + r.len == written => {
                            r.len += l
                        }
                        _ => runs.push(PageRun {
                            vaddr,
                            len: l,
                            offset: written,
                        }),
                    }
                    written += l;
                }
            }
            pos += n as u64;
            done += n as u64;
            progress(done);
        }
    }
    Ok(runs)
}

fn is_zero(page: &[u8]) -> bool {
    page.chunks_exact(16)
        .all(|c| u128::from_ne_bytes(c.try_into().unwrap_or([1; 16])) == 0)
        && page.chunks_exact(16).remainder().iter().all(|&b| b == 0)
}

fn read_remote(
    pid: i32,
    addr: u64,
    buf: &mut [u8],
    mem: &mut Option<std::fs::File>,
) -> Result<(), crate::ptrace::TraceError> {
    use nix::sys::uio::{process_vm_readv, RemoteIoVec};
    let len = buf.len();
    let r = process_vm_readv(
        nix::unistd::Pid::from_raw(pid),
        &mut [std::io::IoSliceMut::new(buf)],
        &[RemoteIoVec {
            base: addr as usize,
            len,
        }],
    );
    if matches!(r, Ok(n) if n == len) {
        return Ok(());
    }
    // Fallback (PROT_NONE pages, partial reads): /proc/PID/mem uses FOLL_FORCE.
    let io = |e: std::io::Error| crate::ptrace::TraceError::Ptrace {
        op: "read /proc/PID/mem",
        pid,
        source: e,
    };
    if mem.is_none() {
        *mem = Some(std::fs::File::open(format!("/proc/{pid}/mem")).map_err(io)?);
    }
    use std::os::unix::fs::FileExt;
    mem.as_ref()
        .expect("opened above")
        .read_exact_at(buf, addr)
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vma(backing: VmaBacking) -> Vma {
        Vma {
            start: 0x10000,
            end: 0x15000,
            prot: 3,
            shared: false,
            growsdown: false,
            madvise: 0,
            backing,
            may_write: false,
            name: String::new(),
            offset: 0,
            dev: 0,
            ino: 0,
            stamp: None,
        }
    }

    #[test]
    fn anonymous_stores_present_and_swapped_pages_in_runs() {
        let p = procfs::PM_PRESENT;
        let pm = [p, p, 0, procfs::PM_SWAPPED, p];
        let r = pages_to_store(&vma(VmaBacking::Anonymous), &pm);
        assert_eq!(r, vec![(0x10000, 0x2000), (0x13000, 0x2000)]);
    }

    #[test]
    fn private_file_stores_only_copied_pages() {
        let p = procfs::PM_PRESENT;
        let f = procfs::PM_FILE_OR_SHARED;
        let pm = [p | f, p, p | f, 0, 0];
        let r = pages_to_store(&vma(VmaBacking::FilePrivate), &pm);
        assert_eq!(r, vec![(0x11000, 0x1000)]);
        assert!(pages_to_store(&vma(VmaBacking::FileShared), &pm).is_empty());
    }

    #[test]
    fn classify_kinds() {
        let mk = |name: &str, shared: bool, ino: u64| MapsEntry {
            start: 0,
            end: 4096,
            read: true,
            write: true,
            exec: false,
            shared,
            offset: 0,
            dev: 0,
            ino,
            name: name.into(),
        };
        assert_eq!(classify(&mk("[vdso]", false, 0)), Ok(VmaBacking::Special));
        assert_eq!(classify(&mk("[heap]", false, 0)), Ok(VmaBacking::Anonymous));
        assert_eq!(
            classify(&mk("/usr/bin/x", false, 5)),
            Ok(VmaBacking::FilePrivate)
        );
        assert_eq!(classify(&mk("/tmp/f", true, 5)), Ok(VmaBacking::FileShared));
        assert_eq!(
            classify(&mk("/dev/zero (deleted)", true, 9)),
            Ok(VmaBacking::SharedAnonymous)
        );
        assert!(classify(&mk("/tmp/gone (deleted)", false, 5)).is_err());
    }

    #[test]
    fn zero_pages_are_detected() {
        let mut p = vec![0u8; 4096];
        assert!(is_zero(&p));
        p[4095] = 1;
        assert!(!is_zero(&p));
    }
}
