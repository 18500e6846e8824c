//! ckpt-core: the engine. Freeze a process, collect its state and write it
//! as an image (`dump_to_path`, `dump_to_writer`); plan, rebuild and resume
//! it from a verified image (`plan_restore`, which computes the verdict of
//! DESIGN 3 itself, then `restore` of what it approved).
//!
//! Layers, bottom up:
//! - `sys`: the only unsafe code (raw ptrace requests, clone3, prlimit).
//! - `ptrace`: the `Tracer` seam (freeze, registers, injected system calls).
//! - `procfs`: the `ProcSource` seam and /proc parsers.
//! - `dump` / `restore`: what to collect and how to rebuild, in safe Rust.
//! - `model` (live state) and `persist` (conversion to stored records).
#![deny(unsafe_code)]

pub mod bench;
#[cfg(test)]
mod coverage;
pub mod dump;
pub mod dump_refusals;
pub mod error;
mod fd_kinds;
pub mod fd_placement;
pub mod file_identity;
pub mod guard_pages;
pub mod landlock_probe;
pub mod model;
pub mod page_check;
pub mod persist;
pub mod phase;
mod pidns;
pub mod posix_timers;
pub mod procfs;
pub mod ptrace;
pub mod restore;
pub mod seccomp;
pub mod security_apply;
pub mod security_dump;
pub mod security_restore;
pub mod stdio_handover;
mod sys;
mod sys_security;
pub mod task_attrs;
pub mod task_security;
pub mod terminal;
pub mod thread_dump;
pub mod thread_restore;
pub mod validate;
pub mod verdict_gather;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use ed25519_dalek::SigningKey;
pub use error::{DumpError, RestoreError, EXIT_OPERATIONAL, EXIT_SECURITY};
use image_format::records::{ProcessRecord, SecurityHeaderRecord};
use image_format::{ImageWriter, SectionKind, VerifiedImage};
pub use restore::{ExitStatus, RestoredProcess};
pub use stdio_handover::StdioRedirect;
pub use verdict_gather::{
    plan_restore, ApprovedRestore, ImageSource, RestoreDecision, VerdictHost,
};

/// How to dump.
#[derive(Clone, Debug, Default)]
pub struct DumpOptions {
    /// Detach instead of killing the target after the image is complete.
    pub leave_running: bool,
    /// Show progress on stderr.
    pub progress: bool,
    /// The security header to store first in the image.
    pub security: SecurityHeaderRecord,
    /// Sign the image with this key.
    pub sign_key: Option<SigningKey>,
    /// Replace an existing file at the image path (`--force`). Without it
    /// the rename refuses to replace one, even one created during the dump.
    pub overwrite: bool,
}

/// What a dump did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DumpReport {
    pub pid: i32,
    /// Bytes of the image written.
    pub image_bytes: u64,
    /// Bytes of memory pages stored (non-zero pages only).
    pub pages_bytes: u64,
    pub vmas: usize,
    pub fds: usize,
    /// Whether the target was left running (else it was killed).
    pub left_running: bool,
    /// Time the target was frozen.
    pub frozen_for: Duration,
}

/// How to restore (what the verdict does not decide; `--pid-ns` and
/// everything security-relevant is in the [`ApprovedRestore`]'s plan).
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Show progress on stderr.
    pub progress: bool,
    /// Files for the task's stdin, stdout and stderr (DESIGN 3.7): without
    /// one, the task gets the caller's own fd when its restored identity is
    /// the caller's, else /dev/null (and a session of its own).
    pub stdio: StdioRedirect,
    /// The caller detaches (`--detach`): ckpt exits while the process runs
    /// on, so state tied to ckpt being its parent is refused up front.
    pub detach: bool,
}

struct CountingWriter<W: Write> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The required header flags for `state`: [`image_format::REQUIRED_1_2_STATE`]
/// when it holds state a 1.1 reader would skip and so silently lose.
fn required_flags(state: &model::ProcessState) -> u32 {
    let attrs = state.attrs.as_ref();
    let new_state = !state.threads.is_empty()
        || attrs.is_some_and(|a| !a.posix_timers.is_empty() || !a.guard_pages.is_empty());
    if new_state {
        image_format::REQUIRED_1_2_STATE
    } else {
        0
    }
}

/// Freeze `pid`, write its image to `out`, and return the writer plus the
/// report; the target stays frozen (inside `frozen`) until the caller ends it.
fn dump_frozen<W: Write>(
    frozen: &mut dump::FrozenTask,
    pid: i32,
    out: W,
    opts: &DumpOptions,
) -> Result<(W, DumpReport), DumpError> {
    let proc = procfs::LiveProc::new(pid);
    let t0 = Instant::now();
    let collect_started = Instant::now();
    // Security state first: a task whose confinement cannot be captured
    // (Landlock, an unreadable seccomp filter) is refused before anything
    // else, and its seccomp filters are suspended while ckpt works in it.
    let security = {
        let t = frozen
            .tracee
            .as_mut()
            .expect("tracee present until release");
        security_dump::capture(t, pid).map_err(|e| {
            if e.is_confinement() {
                DumpError::Confinement {
                    pid,
                    what: e.to_string(),
                }
            } else {
                DumpError::Security {
                    pid,
                    detail: e.to_string(),
                }
            }
        })?
    };
    let (mut state, ranges) = dump::collect(frozen, &proc)?;
    state.threads = thread_dump::capture_all(pid, &mut frozen.threads, &security)?;
    state.security = security;
    phase::record("collect", collect_started.elapsed());
    let write_started = Instant::now();
    let total: u64 = ranges.iter().map(|r| r.1).sum();
    let img = |e: image_format::FormatError| DumpError::Image(e.to_string());
    let mut w = ImageWriter::with_required_flags(
        CountingWriter {
            inner: out,
            count: 0,
        },
        &opts.security,
        required_flags(&state),
    )
    .map_err(img)?;
    {
        let mut pages = w.begin_pages(SectionKind::PAGES).map_err(img)?;
        let progress = opts.progress;
        let mut last = Instant::now();
        state.page_runs = dump::stream_pages(pid, &ranges, &mut pages, |done| {
            if progress && last.elapsed() > Duration::from_millis(200) {
                last = Instant::now();
                eprint!(
                    "\r{}",
                    progress_line(pid, done, total, write_started.elapsed())
                );
            }
        })?;
        pages.finish().map_err(img)?;
        if progress {
            eprintln!(
                "\r{}",
                progress_line(pid, total, total, write_started.elapsed())
            );
        }
    }
    let mut record: ProcessRecord = persist::to_record(&state);
    record.security = Some(lsm_labels::persist::Persist::to_record(&state.security));
    w.write_record(SectionKind::PROCESS, &record).map_err(img)?;
    let cw = w.finish(opts.sign_key.as_ref()).map_err(img)?;
    phase::record("write", write_started.elapsed());
    let report = DumpReport {
        pid,
        image_bytes: cw.count,
        pages_bytes: state.stored_bytes(),
        vmas: state.vmas.len(),
        fds: state.fds.len(),
        left_running: opts.leave_running,
        frozen_for: t0.elapsed(),
    };
    Ok((cw.inner, report))
}

/// `dumping pid N: 12 / 40 MiB, 300 MiB/s, 0.1 s left` (time left once
/// there is a rate to extrapolate).
fn progress_line(pid: i32, done: u64, total: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let left = if rate > 0.0 && done < total {
        format!(", {:.1} s left", (total - done) as f64 / rate)
    } else {
        String::new()
    };
    format!(
        "dumping pid {pid}: {} / {} MiB, {:.0} MiB/s{left}   ",
        done >> 20,
        total >> 20,
        rate / (1u64 << 20) as f64
    )
}

fn end_target(frozen: dump::FrozenTask, pid: i32, leave_running: bool) -> Result<(), DumpError> {
    if leave_running {
        frozen
            .release_running()
            .map_err(|source| DumpError::Finish { pid, source })
    } else {
        frozen.release_killed();
        Ok(())
    }
}

/// Dump `pid` into a stream (for `-o -`). The target is killed after the
/// last byte is written and flushed (or detached with `leave_running`).
pub fn dump_to_writer(
    pid: i32,
    out: impl Write,
    opts: &DumpOptions,
) -> Result<DumpReport, DumpError> {
    let mut frozen = phase::timed("freeze", || dump::FrozenTask::freeze(pid))?;
    let (mut out, report) = dump_frozen(&mut frozen, pid, out, opts)?;
    phase::timed("sync", || out.flush()).map_err(|source| DumpError::WriteImage {
        path: PathBuf::from("-"),
        source,
    })?;
    end_target(frozen, pid, opts.leave_running)?;
    Ok(report)
}

/// Dump `pid` into the file `path`: written under a random temporary name
/// in the same directory (mode 0600, `private_temp_in`), synced, renamed
/// into place, directory synced; only then is the target killed (or
/// detached with `leave_running`). On failure the target runs on untouched
/// and no file remains.
pub fn dump_to_path(pid: i32, path: &Path, opts: &DumpOptions) -> Result<DumpReport, DumpError> {
    let werr = |p: &Path| {
        let p = p.to_path_buf();
        move |source| DumpError::WriteImage { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| DumpError::WriteImage {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        })?
        .to_string_lossy()
        .into_owned();
    let mut frozen = phase::timed("freeze", || dump::FrozenTask::freeze(pid))?;
    let result = (|| {
        let mut tmp = private_temp_in(&dir, &name).map_err(werr(path))?;
        let tmp_path = tmp.path().to_path_buf();
        let (_, report) = dump_frozen(&mut frozen, pid, tmp.as_file_mut(), opts)?;
        if opts.progress {
            eprint!("dumping pid {pid}: syncing the image to disk...");
        }
        let sync_started = Instant::now();
        tmp.as_file().sync_all().map_err(werr(&tmp_path))?;
        let placed = if opts.overwrite {
            tmp.persist(path)
        } else {
            tmp.persist_noclobber(path)
        };
        placed.map_err(|e| DumpError::WriteImage {
            path: path.to_path_buf(),
            source: e.error,
        })?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(werr(&dir))?;
        phase::record("sync", sync_started.elapsed());
        if opts.progress {
            eprintln!(" done");
        }
        Ok(report)
    })();
    match result {
        Ok(report) => {
            end_target(frozen, pid, opts.leave_running)?;
            Ok(report)
        }
        Err(e) => {
            // The temporary file was removed when it was dropped.
            drop(frozen); // puts registers back and detaches: the target runs on
            Err(e)
        }
    }
}

/// A new file for `name`'s content in `dir`, under a random name no one
/// can predict or plant (DESIGN 3.8): created with O_CREAT|O_EXCL (which
/// never follows a symlink; another name is tried when one exists) and
/// mode 0600, removed again when dropped unless persisted.
pub fn private_temp_in(dir: &Path, name: &str) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".ckpt-tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
}

/// The process stored in a verified image, in live form.
pub fn load_process(image: &VerifiedImage) -> Result<model::ProcessState, RestoreError> {
    let record: ProcessRecord = image
        .first_record(SectionKind::PROCESS)
        .map_err(|e| RestoreError::Image(e.to_string()))?
        .ok_or_else(|| RestoreError::BadImage("it holds no process section".into()))?;
    let pages_len = image.pages_len();
    persist::from_record(&record, pages_len).map_err(RestoreError::BadImage)
}

/// Restore what the verdict approved ([`plan_restore`]): the image's
/// process, with the plan's credentials, labels and confinement, in a new
/// PID namespace when the plan says so. Returns the running process; on
/// failure nothing that was created stays alive.
pub fn restore(
    approved: &ApprovedRestore<'_>,
    opts: &RestoreOptions,
) -> Result<RestoredProcess, RestoreError> {
    let (image, plan) = (approved.image(), approved.plan());
    let state = load_process(image)?;
    refuse_detach_with_death_signal(plan, opts, &state)?;
    let stdio = stdio_for(plan, opts, &state)?;
    let mut restored = if plan.new_pid_namespace {
        pidns::restore_in_new_pid_ns(image, plan, opts, &state, &stdio)
    } else {
        restore_here(image, plan, opts, &state, &stdio)
    }?;
    restored.caller_stdio = stdio.identity_is_callers();
    Ok(restored)
}

/// A parent-death signal fires when the restored task's parent exits: that
/// is the restoring ckpt (the original parent is not in the image), so with
/// `--detach` outside a new PID namespace (where ckpt's init stays) the
/// task would be signalled the moment ckpt returns (DESIGN 8).
fn refuse_detach_with_death_signal(
    plan: &lsm_labels::verdict::RestorePlan,
    opts: &RestoreOptions,
    state: &model::ProcessState,
) -> Result<(), RestoreError> {
    let signal = state.attrs.as_ref().map_or(0, |a| a.pdeathsig);
    if opts.detach && !plan.new_pid_namespace && signal != 0 {
        return Err(RestoreError::DetachWithDeathSignal {
            pid: state.pid,
            signal,
        });
    }
    Ok(())
}

/// The stdio decision (DESIGN 3.7), taken here, in the caller's own
/// namespaces and with its credentials, before any namespace is entered:
/// the plan's credentials for the task against the caller's, and the
/// given files opened with the caller's authority.
fn stdio_for(
    plan: &lsm_labels::verdict::RestorePlan,
    opts: &RestoreOptions,
    state: &model::ProcessState,
) -> Result<stdio_handover::StdioHandover, RestoreError> {
    let security = security_restore::TaskSecurityPlan::new(plan, state.pid)?;
    let same = stdio_handover::identity_is_callers(&security.plan.creds, &security.start);
    stdio_handover::StdioHandover::new(&opts.stdio, same)
}

/// Restores `state` in this PID namespace (for `--pid-ns`, called by the
/// new namespace's init).
pub(crate) fn restore_here(
    image: &VerifiedImage,
    plan: &lsm_labels::verdict::RestorePlan,
    opts: &RestoreOptions,
    state: &model::ProcessState,
    stdio: &stdio_handover::StdioHandover,
) -> Result<RestoredProcess, RestoreError> {
    let (base, len, digest) = match image.sections_of(SectionKind::PAGES).next() {
        Some(s) => (s.offset, s.len, s.digest),
        None if state.page_runs.is_empty() => {
            use sha2::Digest;
            (0, 0, sha2::Sha256::digest([]).into())
        }
        None => {
            return Err(RestoreError::BadImage(
                "page runs without a pages section".into(),
            ))
        }
    };
    if opts.progress {
        eprintln!(
            "restoring pid {} ({} MiB of memory)",
            state.pid,
            state.stored_bytes() >> 20
        );
    }
    let security = security_restore::TaskSecurityPlan::new(plan, state.pid)?;
    restore::rebuild(
        state,
        &restore::PagesSource {
            file: image.file(),
            base,
            len,
            digest,
        },
        &security,
        stdio,
    )
}
