//! Helpers for ckpt's end-to-end tests: locating the `ckpt` binary, stating
//! whether a privileged test may run (it fails instead of skipping when CI
//! says root is expected), starting fixture processes that are killed when
//! the test ends, and reading what a user would check in /proc.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `ckpt` binary under test: `$CKPT_BIN`, else the one cargo built next
/// to this test executable.
pub fn ckpt_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CKPT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/ckpt
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = profile_dir.join("ckpt");
    assert!(
        bin.exists(),
        "{} not found: build it with `cargo build -p ckpt-cli` or set CKPT_BIN",
        bin.display()
    );
    bin
}

/// A `ckpt` command with the given arguments.
pub fn ckpt(args: &[&str]) -> Command {
    let mut c = Command::new(ckpt_bin());
    c.args(args);
    c
}

/// Runs `ckpt args...` to completion, capturing its output.
pub fn run_ckpt(args: &[&str]) -> Output {
    ckpt(args).stdin(Stdio::null()).output().expect("run ckpt")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// True when this test may use root. When not root: fails if the
/// environment says root is expected (`CKPT_TEST_EXPECT_ROOT=1`, as in CI),
/// otherwise reports SKIPPED on stderr and returns false.
pub fn have_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CKPT_TEST_EXPECT_ROOT").as_deref() == Ok("1") {
        panic!("{test}: CKPT_TEST_EXPECT_ROOT=1 but not running as root");
    }
    eprintln!("SKIPPED {test}: needs root (set CKPT_TEST_EXPECT_ROOT=1 to make this a failure)");
    false
}

/// A child process that is SIGKILLed and reaped when dropped.
pub struct Guarded {
    pub child: Option<Child>,
    pub pid: i32,
}

impl Guarded {
    /// Spawns `cmd` with stdin on /dev/null and no fd above 2: a fixture
    /// must not inherit the test runner's pipes, which ckpt would rightly
    /// refuse to dump (a pipe to another process).
    pub fn spawn(cmd: &mut Command) -> Guarded {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and only
        // calls close_range(2), which is async-signal-safe and allocates nothing.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        // stdio on /dev/null too: a detached restore hands a fixture's
        // foreign-pipe stdio over from the restoring ckpt, and a test that
        // captures ckpt's output would then never see EOF.
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let pid = child.id() as i32;
        Guarded {
            child: Some(child),
            pid,
        }
    }
    /// Spawns `cmd` with the stdio the caller set on it (a test that gives
    /// the fixture a pipe or a terminal of its own) and no fd above 2.
    pub fn spawn_with_stdio(cmd: &mut Command) -> Guarded {
        use std::os::unix::process::CommandExt;
        // SAFETY: as in `spawn`: only close_range(2) in the forked child,
        // with CLOSE_RANGE_CLOEXEC so std's exec-error pipe still works.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(|| {
                libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let pid = child.id() as i32;
        Guarded {
            child: Some(child),
            pid,
        }
    }
    /// Waits for the child to exit (up to `timeout`), returning its status.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kills a process that is not our child (e.g. a detached restore) on drop.
pub struct KillOnDrop(pub i32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0 > 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::SIGKILL,
            );
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Whether a process with this PID exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with(['Z', 'X']),
        Err(_) => false,
    }
}

/// A field of /proc/PID/status, e.g. `status_field(pid, "CapEff")`.
pub fn status_field(pid: i32, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
}

/// The file offset of fd `fd` of process `pid` (/proc/PID/fdinfo `pos:`):
/// whether a restored process is still writing through its own fd.
pub fn fd_pos(pid: i32, fd: i32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("pos:").and_then(|v| v.trim().parse().ok()))
}

/// The state letter of a process (R, S, T, t, Z ...).
pub fn state(pid: i32) -> Option<char> {
    status_field(pid, "State").and_then(|s| s.chars().next())
}

/// The session id of a process (/proc/PID/stat field 6).
pub fn session_of(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// Where fd `fd` of process `pid` points (readlink /proc/PID/fd/FD).
pub fn fd_link(pid: i32, fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Reads a file's lines (empty when missing).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A pseudo-random u64 from the clock and pid (fixtures start at random values).
pub fn random_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    (t ^ ((std::process::id() as u64) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1_000_000_000
}

/// The mappings of a process as (range, perms, offset, path) lines, without
/// device and inode (which the restore may legitimately change for
/// anonymous memory).
pub fn maps(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let path = f.get(5..).map(|p| p.join(" ")).unwrap_or_default();
            format!("{} {} {} {}", f[0], f[1], f[2], path)
        })
        .collect()
}

/// Builds an image through the image-format API (no process needed): a
/// security header from `profile`, and one PROCESS record per task with
/// only its PID and security state. Such images cannot be restored (they
/// hold no memory), which is fine for the verdict and format tests, which
/// must be refused or reported before anything is created.
pub fn build_image(
    profile: &lsm_labels::HostProfile,
    tasks: &[lsm_labels::TaskSecurity],
    signer: Option<&ed25519_dalek::SigningKey>,
) -> Vec<u8> {
    use image_format::records::ProcessRecord;
    use image_format::{ImageWriter, SectionKind};
    use lsm_labels::persist::{ImageSecurity, Persist};
    let header = ImageSecurity {
        profile: profile.clone(),
        created_unix_secs: 1_795_000_000,
        hostname: "test-host".into(),
        writer_version: "test".into(),
    }
    .to_record();
    let mut w = ImageWriter::new(Vec::new(), &header).expect("image writer");
    for t in tasks {
        let rec = ProcessRecord {
            pid: t.tid,
            comm: "fixture".into(),
            // Registers make the record pass the shared validation
            // (ckpt_core::validate), which policy-diff also runs.
            regs: Some(Default::default()),
            security: Some(t.to_record()),
            ..Default::default()
        };
        w.write_record(SectionKind::PROCESS, &rec).expect("record");
    }
    w.finish(signer).expect("finish")
}

/// This host's profile as `ckpt lsm --json` reports it.
pub fn host_profile_json() -> lsm_labels::HostProfile {
    let o = run_ckpt(&["lsm", "--json"]);
    assert_eq!(o.status.code(), Some(0), "ckpt lsm --json: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("ckpt lsm --json is a HostProfile")
}

/// The security state of an ordinary unprivileged task (uid/gid 65534, no
/// capabilities) with the given tid.
pub fn nobody_task(tid: i32) -> lsm_labels::TaskSecurity {
    lsm_labels::TaskSecurity {
        tid,
        creds: lsm_labels::TaskCreds {
            uids: [65534; 4],
            gids: [65534; 4],
            groups: vec![65534],
            caps: lsm_labels::CapSets {
                bounding: 0x1ff_ffff_ffff,
                ..Default::default()
            },
            securebits: 0,
        },
        ..Default::default()
    }
}

/// What the kernel shows of a task in /proc (issue 9 "make the loss
/// impossible to reintroduce"): status, stat, limits, maps, each mapping's
/// smaps VmFlags, every fdinfo, timers, personality, oom_score_adj,
/// loginuid and timerslack_ns, as `file:key` → value. Compared before dump
/// and after restore by [`assert_same_proc_state`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcSnapshot(pub std::collections::BTreeMap<String, String>);

/// /proc/PID/stat field names (proc_pid_stat(5)), 1-based.
const STAT_FIELDS: [&str; 52] = [
    "pid",
    "comm",
    "state",
    "ppid",
    "pgrp",
    "session",
    "tty_nr",
    "tpgid",
    "flags",
    "minflt",
    "cminflt",
    "majflt",
    "cmajflt",
    "utime",
    "stime",
    "cutime",
    "cstime",
    "priority",
    "nice",
    "num_threads",
    "itrealvalue",
    "starttime",
    "vsize",
    "rss",
    "rsslim",
    "startcode",
    "endcode",
    "startstack",
    "kstkesp",
    "kstkeip",
    "signal",
    "blocked",
    "sigignore",
    "sigcatch",
    "wchan",
    "nswap",
    "cnswap",
    "exit_signal",
    "processor",
    "rt_priority",
    "policy",
    "delayacct_blkio_ticks",
    "guest_time",
    "cguest_time",
    "start_data",
    "end_data",
    "start_brk",
    "arg_start",
    "arg_end",
    "env_start",
    "env_end",
    "exit_code",
];

/// Fields that legitimately differ between a task and its restored copy,
/// each with the reason. A trailing `*` matches a prefix.
pub const PROC_DIFF_ALLOWED: &[(&str, &str)] = &[
    // Memory residency and accounting: restore touches only stored pages,
    // file pages come back from the page cache on demand, the restorer
    // briefly maps more (its scratch and the code it runs from), and page
    // tables are rebuilt.
    (
        "status:VmPeak",
        "high-water mark includes the restorer's temporary mappings",
    ),
    (
        "status:VmHWM",
        "resident high-water mark: residency is not state",
    ),
    ("status:VmRSS", "residency is not state"),
    ("status:RssAnon", "residency is not state"),
    (
        "status:RssFile",
        "file pages are faulted in again on demand",
    ),
    ("status:RssShmem", "residency is not state"),
    (
        "status:VmPTE",
        "page tables are rebuilt, sized by what was touched",
    ),
    ("status:VmSwap", "swap placement is not state"),
    ("stat:rss", "residency is not state"),
    ("stat:minflt", "fault counters restart with the new task"),
    ("stat:majflt", "fault counters restart with the new task"),
    ("stat:cminflt", "counters of reaped children restart"),
    ("stat:cmajflt", "counters of reaped children restart"),
    // Scheduling and accounting of the new task.
    (
        "status:voluntary_ctxt_switches",
        "context switches restart with the new task",
    ),
    (
        "status:nonvoluntary_ctxt_switches",
        "context switches restart with the new task",
    ),
    (
        "stat:utime",
        "CPU time accounting restarts with the new task",
    ),
    (
        "stat:stime",
        "CPU time accounting restarts with the new task",
    ),
    ("stat:cutime", "children's CPU time restarts"),
    ("stat:cstime", "children's CPU time restarts"),
    ("stat:starttime", "the restored task is started anew"),
    ("stat:processor", "the CPU it last ran on"),
    (
        "stat:delayacct_blkio_ticks",
        "I/O delay accounting restarts",
    ),
    ("stat:guest_time", "accounting restarts"),
    ("stat:cguest_time", "accounting restarts"),
    (
        "status:State",
        "running or sleeping at the moment of reading",
    ),
    ("stat:state", "running or sleeping at the moment of reading"),
    ("stat:wchan", "where it waits at the moment of reading"),
    ("stat:kstkesp", "the stack pointer at the moment of reading"),
    (
        "stat:kstkeip",
        "the instruction pointer at the moment of reading",
    ),
    // Parentage: a restored task's parent is the restoring ckpt (DESIGN).
    ("status:PPid", "the parent is now the restoring ckpt"),
    ("stat:ppid", "the parent is now the restoring ckpt"),
    // The task is forked from ckpt and never execs: PF_FORKNOEXEC (0x40)
    // and PF_SUPERPRIV-like bookkeeping bits in the kernel's task flags.
    (
        "stat:flags",
        "kernel bookkeeping flags of the new task (PF_FORKNOEXEC)",
    ),
    // The number of signals queued for the task's real user, all its
    // processes together (RLIMIT_SIGPENDING accounting), not the task's.
    (
        "status:SigQ",
        "a per-user count across all that user's processes",
    ),
    // The fd table was ckpt's, grown to hold ckpt's fds while rebuilding.
    ("status:FDSize", "allocated fd table size, not a limit"),
    // Pipes are created anew: new inode numbers (fd identity is checked
    // through the pipe pairing, flags and contents instead).
    (
        "fdinfo/*:ino",
        "pipes are new objects with new inode numbers",
    ),
    (
        "fdinfo/*:mnt_id",
        "pipefs or the mount id seen through a new task",
    ),
];

fn allowed(key: &str, extra: &[&str]) -> bool {
    let m = |pat: &str| match pat.split_once('*') {
        Some((pre, post)) => key.starts_with(pre) && key.ends_with(post),
        None => key == pat,
    };
    PROC_DIFF_ALLOWED.iter().any(|(p, _)| m(p)) || extra.iter().any(|p| m(p))
}

/// Snapshot /proc/`pid` (see [`ProcSnapshot`]).
pub fn proc_snapshot(pid: i32) -> ProcSnapshot {
    let dir = format!("/proc/{pid}");
    let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).unwrap_or_default();
    let mut m = std::collections::BTreeMap::new();
    let mut keyed = |file: &str, text: &str| {
        for l in text.lines() {
            if let Some((k, v)) = l.split_once(':') {
                m.insert(format!("{file}:{}", k.trim()), v.trim().to_string());
            }
        }
    };
    keyed("status", &read("status"));
    let mut fds: Vec<i32> = std::fs::read_dir(format!("{dir}/fdinfo"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    for fd in fds {
        keyed(&format!("fdinfo/{fd}"), &read(&format!("fdinfo/{fd}")));
    }
    let stat = read("stat");
    if let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) {
        m.insert("stat:comm".into(), stat[open + 1..close].to_string());
        m.insert("stat:pid".into(), stat[..open].trim().to_string());
        for (i, v) in stat[close + 1..].split_whitespace().enumerate() {
            let name = STAT_FIELDS.get(i + 2).copied().unwrap_or("extra");
            m.insert(format!("stat:{name}"), v.to_string());
        }
    }
    for l in read("limits").lines().skip(1) {
        let (name, vals) = l.split_at(l.len().min(26));
        m.insert(format!("limits:{}", name.trim()), vals.trim().to_string());
    }
    for l in read("maps").lines() {
        let range = l.split_whitespace().next().unwrap_or_default().to_string();
        m.insert(format!("maps:{range}"), l.to_string());
    }
    let mut range = String::new();
    for l in read("smaps").lines() {
        if let Some(flags) = l.strip_prefix("VmFlags:") {
            m.insert(format!("smaps:{range} VmFlags"), flags.trim().to_string());
        } else if l.split_whitespace().next().is_some_and(|w| w.contains('-')) {
            range = l.split_whitespace().next().unwrap_or_default().to_string();
        }
    }
    for f in [
        "timers",
        "personality",
        "oom_score_adj",
        "loginuid",
        "timerslack_ns",
    ] {
        m.insert(f.to_string(), read(f).trim().to_string());
    }
    ProcSnapshot(m)
}

/// The differences between two snapshots outside [`PROC_DIFF_ALLOWED`]
/// and `extra_allowed` (patterns like it, each justified by the caller):
/// one line per field, naming it.
pub fn proc_diff(
    before: &ProcSnapshot,
    after: &ProcSnapshot,
    extra_allowed: &[&str],
) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = before.0.keys().chain(after.0.keys()).collect();
    keys.into_iter()
        .filter(|k| !allowed(k, extra_allowed))
        .filter_map(|k| {
            let (b, a) = (before.0.get(k), after.0.get(k));
            (b != a).then(|| format!("{k}: before {b:?} after {a:?}"))
        })
        .collect()
}

/// Fails naming every field of /proc that changed across dump and restore
/// and is not allowed to.
pub fn assert_same_proc_state(before: &ProcSnapshot, after: &ProcSnapshot, extra_allowed: &[&str]) {
    let d = proc_diff(before, after, extra_allowed);
    assert!(
        d.is_empty(),
        "/proc state changed across dump and restore:\n{}",
        d.join("\n")
    );
}

#[cfg(test)]
mod proc_diff_tests {
    use super::*;

    fn snap(pairs: &[(&str, &str)]) -> ProcSnapshot {
        ProcSnapshot(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn names_changed_fields_and_skips_allowed_ones() {
        let a = snap(&[
            ("status:VmRSS", "1"),
            ("timers", "ID: 0"),
            ("fdinfo/3:ino", "5"),
        ]);
        let b = snap(&[("status:VmRSS", "2"), ("timers", ""), ("fdinfo/3:ino", "6")]);
        let d = proc_diff(&a, &b, &[]);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].starts_with("timers:"), "{d:?}");
        assert!(proc_diff(&a, &b, &["timers"]).is_empty());
        let gone = snap(&[("status:VmRSS", "1")]);
        assert_eq!(proc_diff(&a, &gone, &[]).len(), 1, "a missing field counts");
    }

    #[test]
    fn snapshot_of_self_has_every_file() {
        let s = proc_snapshot(std::process::id() as i32);
        for k in [
            "status:Uid",
            "stat:starttime",
            "limits:Max open files",
            "personality",
            "oom_score_adj",
            "timerslack_ns",
            "fdinfo/0:flags",
        ] {
            assert!(s.0.contains_key(k), "{k} missing");
        }
        assert!(s.0.keys().any(|k| k.starts_with("maps:")));
        assert!(s
            .0
            .keys()
            .any(|k| k.starts_with("smaps:") && k.ends_with("VmFlags")));
    }
}
