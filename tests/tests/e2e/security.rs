//! DESIGN 3.5-3.7 end to end on real processes: credentials, capability
//! sets, no_new_privs, seccomp filters, Landlock and files opened before a
//! privilege drop. All need root (claiming a PID needs
//! CAP_CHECKPOINT_RESTORE, reading seccomp filters CAP_SYS_ADMIN).

use ckpt_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const FX_COUNTER: &str = env!("CARGO_BIN_EXE_fx-counter");
const FX_SECCOMP_MKDIR: &str = env!("CARGO_BIN_EXE_fx-seccomp-mkdir");
const FX_LANDLOCK: &str = env!("CARGO_BIN_EXE_fx-landlock");
const FX_DROP_PRIVS: &str = env!("CARGO_BIN_EXE_fx-drop-privs");
const LONG: Duration = Duration::from_secs(20);
/// The unprivileged user the tests create when missing.
const TEST_USER: &str = "ckpt-test";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A temporary directory every user may enter and write (fixtures running
/// as nobody create their output there).
pub(crate) fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

/// A fixture with stdout and stderr on /dev/null, so that what it holds
/// open is only what the test gives it (the harness's output is root's).
fn quiet(cmd: &mut Command) -> &mut Command {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
}

/// The status fields a user compares to see who a process is.
const CRED_FIELDS: &[&str] = &[
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
];

fn fields(pid: i32, keys: &[&str]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| {
            (
                k.to_string(),
                status_field(pid, k).unwrap_or_else(|| panic!("no {k} for pid {pid}")),
            )
        })
        .collect()
}

/// Dumps `target` (killing it) and reaps it so that its PID is free again.
fn dump_and_reap(target: &mut Guarded, img: &Path) {
    let o = run_ckpt(&["dump", &target.pid.to_string(), "-o", s(img), "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "dump failed: {}", stderr(&o));
    assert!(img.exists(), "dump reported success but wrote no image");
    target
        .wait_timeout(LONG)
        .expect("dumped process was not killed");
}

/// `ckpt restore IMG --detach --pidfile F [extra]`; the output and the PID.
fn restore_detached(img: &Path, dir: &Path, extra: &[&str]) -> (std::process::Output, Option<i32>) {
    let pidfile = dir.join("restored.pid");
    let _ = std::fs::remove_file(&pidfile);
    let mut args = vec!["restore", s(img), "--detach", "--pidfile", s(&pidfile)];
    args.extend_from_slice(extra);
    let o = run_ckpt(&args);
    let pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|p| p.trim().parse().ok());
    (o, pid)
}

fn count_lines(path: &Path, pred: impl Fn(&str) -> bool) -> usize {
    lines(path).iter().filter(|l| pred(l)).count()
}

#[test]
fn root_nobody_without_caps_and_nnp_comes_back_with_the_same_credentials() {
    if !have_root("root_nobody_without_caps_and_nnp_comes_back_with_the_same_credentials") {
        return;
    }
    let dir = open_dir();
    let out = dir.path().join("count");
    let img = dir.path().join("nobody.img");
    let mut target = Guarded::spawn(quiet(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                FX_COUNTER,
                &random_u64().to_string(),
                s(&out),
            ])
            .current_dir(dir.path()),
    ));
    let pid = target.pid;
    assert!(
        wait_until(LONG, || lines(&out).len() >= 3),
        "fixture did not start"
    );
    let before = fields(pid, CRED_FIELDS);
    assert_eq!(
        before[0].1, "65534\t65534\t65534\t65534",
        "fixture is not nobody"
    );
    assert_eq!(
        status_field(pid, "CapBnd").as_deref(),
        Some("0000000000000000")
    );
    dump_and_reap(&mut target, &img);

    let (o, restored) = restore_detached(&img, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "restore failed: {}", stderr(&o));
    let restored = restored.expect("pidfile");
    let _k = KillOnDrop(restored);
    assert_eq!(restored, pid);
    let after = fields(restored, CRED_FIELDS);
    assert_eq!(
        after, before,
        "restored credentials differ from the dumped ones"
    );
    let n = lines(&out).len();
    assert!(
        wait_until(LONG, || lines(&out).len() >= n + 3),
        "restored process does not run on"
    );
}

#[test]
fn root_ambient_caps_and_partial_bounding_set_come_back_exactly() {
    if !have_root("root_ambient_caps_and_partial_bounding_set_come_back_exactly") {
        return;
    }
    // nobody with cap_net_bind_service inheritable, ambient, permitted and
    // effective, and a bounding set without cap_sys_admin and cap_net_raw.
    let dir = open_dir();
    let out = dir.path().join("count");
    let img = dir.path().join("ambient.img");
    let mut target = Guarded::spawn(quiet(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=+net_bind_service",
                "--ambient-caps=+net_bind_service",
                "--bounding-set=-sys_admin,-net_raw",
                FX_COUNTER,
                "5",
                s(&out),
            ])
            .current_dir(dir.path()),
    ));
    let pid = target.pid;
    assert!(
        wait_until(LONG, || lines(&out).len() >= 3),
        "fixture did not start"
    );
    let before = fields(pid, CRED_FIELDS);
    assert_eq!(
        status_field(pid, "CapAmb").as_deref(),
        Some("0000000000000400")
    );
    dump_and_reap(&mut target, &img);
    let (o, restored) = restore_detached(&img, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "restore failed: {}", stderr(&o));
    let restored = restored.expect("pidfile");
    let _k = KillOnDrop(restored);
    assert_eq!(
        fields(restored, CRED_FIELDS),
        before,
        "credentials differ after restore"
    );
}

#[test]
fn root_seccomp_filter_still_denies_mkdir_after_restore() {
    if !have_root("root_seccomp_filter_still_denies_mkdir_after_restore") {
        return;
    }
    let dir = open_dir();
    let out = dir.path().join("attempts");
    let mkdirs = dir.path().join("made");
    std::fs::create_dir(&mkdirs).unwrap();
    let img = dir.path().join("seccomp.img");
    let mut target = Guarded::spawn(quiet(Command::new(FX_SECCOMP_MKDIR).arg(&mkdirs).arg(&out)));
    let pid = target.pid;
    assert!(wait_until(LONG, || count_lines(&out, |l| l
        .ends_with("EPERM"))
        >= 3));
    assert_eq!(status_field(pid, "Seccomp").as_deref(), Some("2"));
    let before = fields(pid, &["Seccomp", "Seccomp_filters", "NoNewPrivs"]);
    dump_and_reap(&mut target, &img);
    let at_dump = lines(&out).len();

    let (o, restored) = restore_detached(&img, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "restore failed: {}", stderr(&o));
    let restored = restored.expect("pidfile");
    let _k = KillOnDrop(restored);
    assert_eq!(
        fields(restored, &["Seccomp", "Seccomp_filters", "NoNewPrivs"]),
        before,
        "seccomp state not restored"
    );
    assert!(
        wait_until(LONG, || lines(&out).len() >= at_dump + 5),
        "restored process does not run on: {:?}",
        lines(&out)
    );
    let after: Vec<String> = lines(&out)[at_dump..].to_vec();
    assert!(
        after.iter().all(|l| l.ends_with(" EPERM")),
        "mkdir no longer denied: {after:?}"
    );
    assert_eq!(
        std::fs::read_dir(&mkdirs).unwrap().count(),
        0,
        "a directory was created"
    );
}

#[test]
fn root_seccomp_filter_without_nnp_of_a_daemon_that_dropped_to_nobody_is_restored() {
    if !have_root("root_seccomp_filter_without_nnp_of_a_daemon_that_dropped_to_nobody_is_restored")
    {
        return;
    }
    // Installed by root without no_new_privs, then uid 65534: the restored
    // task needs CAP_SYS_ADMIN for the filter, and must not keep it.
    let dir = open_dir();
    let out = dir.path().join("attempts");
    let mkdirs = dir.path().join("made");
    std::fs::create_dir(&mkdirs).unwrap();
    std::fs::set_permissions(&mkdirs, std::fs::Permissions::from_mode(0o777)).unwrap();
    let img = dir.path().join("daemon.img");
    let mut target = Guarded::spawn(quiet(
        Command::new(FX_SECCOMP_MKDIR)
            .arg(&mkdirs)
            .arg(&out)
            .arg("drop")
            .current_dir(dir.path()),
    ));
    let pid = target.pid;
    assert!(wait_until(LONG, || count_lines(&out, |l| l
        .ends_with("EPERM"))
        >= 3));
    let keys = [
        "Uid",
        "Gid",
        "Groups",
        "CapPrm",
        "CapEff",
        "CapBnd",
        "NoNewPrivs",
        "Seccomp",
        "Seccomp_filters",
    ];
    let before = fields(pid, &keys);
    assert_eq!(status_field(pid, "NoNewPrivs").as_deref(), Some("0"));
    dump_and_reap(&mut target, &img);
    let at_dump = lines(&out).len();

    let (o, restored) = restore_detached(&img, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "restore failed: {}", stderr(&o));
    let restored = restored.expect("pidfile");
    let _k = KillOnDrop(restored);
    assert_eq!(
        fields(restored, &keys),
        before,
        "credentials or seccomp differ"
    );
    assert!(wait_until(LONG, || lines(&out).len() >= at_dump + 3));
    assert!(lines(&out)[at_dump..].iter().all(|l| l.ends_with(" EPERM")));
    assert_eq!(std::fs::read_dir(&mkdirs).unwrap().count(), 0);
}

#[test]
fn root_landlock_sandboxed_process_is_refused_at_dump_and_keeps_running() {
    if !have_root("root_landlock_sandboxed_process_is_refused_at_dump_and_keeps_running") {
        return;
    }
    let dir = open_dir();
    let out = dir.path().join("ticks");
    let img = dir.path().join("landlock.img");
    let target = Guarded::spawn(quiet(Command::new(FX_LANDLOCK).arg(&out)));
    let pid = target.pid;
    assert!(
        wait_until(LONG, || lines(&out).len() >= 3),
        "fixture did not start: {:?}",
        lines(&out)
    );
    // The ruleset fd is closed: nothing in /proc shows the domain.
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        !fds.iter().any(|f| f.contains("landlock")),
        "ruleset fd still open: {fds:?}"
    );

    let o = run_ckpt(&["dump", &pid.to_string(), "-o", s(&img)]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "dump of a Landlock-sandboxed process must be refused: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("Landlock"),
        "message does not name Landlock: {}",
        stderr(&o)
    );
    assert!(!img.exists(), "a refused dump left an image");
    // Still running, not stopped, not traced, and still working.
    assert!(alive(pid));
    assert!(
        !matches!(state(pid), Some('T') | Some('t')),
        "left stopped: {:?}",
        state(pid)
    );
    assert_eq!(
        status_field(pid, "TracerPid").as_deref(),
        Some("0"),
        "left traced"
    );
    let n = lines(&out).len();
    assert!(
        wait_until(LONG, || lines(&out).len() >= n + 3),
        "fixture stopped ticking"
    );
    drop(target);
}

#[test]
fn root_unsandboxed_process_is_not_mistaken_for_landlock() {
    if !have_root("root_unsandboxed_process_is_not_mistaken_for_landlock") {
        return;
    }
    // The probe must not refuse an unconfined process of another user.
    let dir = open_dir();
    let out = dir.path().join("count");
    let img = dir.path().join("plain.img");
    let target = Guarded::spawn(quiet(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                FX_COUNTER,
                "1",
                s(&out),
            ])
            .current_dir(dir.path()),
    ));
    assert!(wait_until(LONG, || lines(&out).len() >= 2));
    let o = run_ckpt(&[
        "dump",
        &target.pid.to_string(),
        "-o",
        s(&img),
        "--leave-running",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "dump refused: {}", stderr(&o));
    assert!(alive(target.pid));
}

fn root_only_file(dir: &Path) -> PathBuf {
    let secret = dir.join("secret");
    std::fs::write(&secret, "root only\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    secret
}

#[test]
fn root_file_opened_before_dropping_privileges_needs_files_as_caller() {
    if !have_root("root_file_opened_before_dropping_privileges_needs_files_as_caller") {
        return;
    }
    let dir = open_dir();
    let secret = root_only_file(dir.path());
    let out = dir.path().join("ticks");
    let img = dir.path().join("daemon.img");
    let mut target = Guarded::spawn(quiet(
        Command::new(FX_DROP_PRIVS)
            .arg(&secret)
            .arg(&out)
            .current_dir(dir.path()),
    ));
    let pid = target.pid;
    assert!(
        wait_until(LONG, || lines(&out).len() >= 3),
        "fixture did not start"
    );
    assert_eq!(
        status_field(pid, "Uid").as_deref(),
        Some("65534\t65534\t65534\t65534")
    );
    dump_and_reap(&mut target, &img);

    // Rule 7: the restored nobody may not open the root-only file.
    let (o, restored) = restore_detached(&img, dir.path(), &[]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "restore must be refused: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(s(&secret)),
        "refusal does not name the file: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("--files-as-caller"),
        "no way out given: {}",
        stderr(&o)
    );
    assert!(restored.is_none());
    assert!(!alive(pid), "a refused restore left a process");

    // --files-as-caller: opened with root's authority, listed in a notice.
    let (o, restored) = restore_detached(&img, dir.path(), &["--files-as-caller"]);
    assert_eq!(o.status.code(), Some(0), "restore failed: {}", stderr(&o));
    let restored = restored.expect("pidfile");
    let _k = KillOnDrop(restored);
    assert!(
        stderr(&o).contains(s(&secret)),
        "the notice does not list the file: {}",
        stderr(&o)
    );
    assert_eq!(
        status_field(restored, "Uid").as_deref(),
        Some("65534\t65534\t65534\t65534")
    );
    assert_eq!(
        status_field(restored, "CapEff").as_deref(),
        Some("0000000000000000")
    );
    let n = lines(&out).len();
    assert!(
        wait_until(LONG, || lines(&out).len() >= n + 3),
        "restored daemon does not run on"
    );
    assert!(
        lines(&out).last().unwrap().ends_with("root only"),
        "held file not readable"
    );
}

/// The uid and gid of `TEST_USER`, created when missing.
pub(crate) fn test_user() -> (u32, u32) {
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, TEST_USER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
    };
    if id("-u").is_none() {
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                TEST_USER,
            ])
            .status()
            .expect("useradd");
        assert!(
            st.success() || id("-u").is_some(),
            "useradd {TEST_USER} failed"
        );
    }
    (id("-u").expect("uid"), id("-g").expect("gid"))
}

#[test]
fn root_unprivileged_user_restoring_a_root_image_gets_own_identity_or_strict_refusal() {
    if !have_root(
        "root_unprivileged_user_restoring_a_root_image_gets_own_identity_or_strict_refusal",
    ) {
        return;
    }
    let (uid, gid) = test_user();
    let dir = open_dir();
    let out = dir.path().join("count");
    std::fs::write(&out, "").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666)).unwrap();
    let img = dir.path().join("root.img");
    let mut target = Guarded::spawn(quiet(
        Command::new(FX_COUNTER)
            .arg("100")
            .arg(&out)
            .current_dir(dir.path()),
    ));
    assert!(wait_until(LONG, || lines(&out).len() >= 3));
    assert_eq!(
        status_field(target.pid, "Uid").as_deref(),
        Some("0\t0\t0\t0")
    );
    dump_and_reap(&mut target, &img);
    std::fs::set_permissions(&img, std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_user = |args: &[&str]| {
        ckpt(args)
            .uid(uid)
            .gid(gid)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run ckpt as the test user")
    };

    // --strict-creds: root's credentials cannot be kept, so exit 3.
    let o = as_user(&["restore", s(&img), "--pid-ns", "--strict-creds", "--detach"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "--strict-creds must refuse: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--strict-creds"), "{}", stderr(&o));

    // Without --pid-ns the PID cannot be claimed: refused before anything.
    let o = as_user(&["restore", s(&img), "--detach"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("CAP_CHECKPOINT_RESTORE") && stderr(&o).contains("--pid-ns"),
        "{}",
        stderr(&o)
    );

    let o = as_user(&["restore", s(&img), "--pid-ns", "--detach"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "restore as {TEST_USER} failed: {}",
        stderr(&o)
    );
    let restored: i32 = stdout(&o).trim().parse().expect("restored PID on stdout");
    let _k = KillOnDrop(restored);
    let want_uid = format!("{uid}\t{uid}\t{uid}\t{uid}");
    assert_eq!(
        status_field(restored, "Uid").as_deref(),
        Some(want_uid.as_str())
    );
    assert_eq!(
        status_field(restored, "CapEff").as_deref(),
        Some("0000000000000000")
    );
    // And it runs: the counter goes on in its new namespace.
    let n = lines(&out).len();
    assert!(
        wait_until(LONG, || lines(&out).len() >= n + 3),
        "the restored counter did not continue"
    );
}

#[test]
fn root_unprivileged_user_dumps_own_process_and_own_landlocked_process_is_refused() {
    if !have_root("root_unprivileged_user_dumps_own_process_and_own_landlocked_process_is_refused")
    {
        return;
    }
    // The probe's peer takes the user's own ids: no privilege needed.
    let (uid, gid) = test_user();
    let dir = open_dir();
    let as_user = |cmd: &mut Command| {
        cmd.uid(uid).gid(gid).current_dir(dir.path());
    };
    let out = dir.path().join("count");
    let mut plain = Command::new(FX_COUNTER);
    plain.arg("1").arg(&out);
    as_user(&mut plain);
    let plain = Guarded::spawn(quiet(&mut plain));
    let ticks = dir.path().join("ticks");
    let mut boxed = Command::new(FX_LANDLOCK);
    boxed.arg(&ticks);
    as_user(&mut boxed);
    let boxed = Guarded::spawn(quiet(&mut boxed));
    assert!(wait_until(LONG, || lines(&out).len() >= 2 && lines(&ticks).len() >= 2));

    let dump = |pid: i32, img: &str| {
        let mut c = ckpt(&[
            "dump",
            &pid.to_string(),
            "-o",
            img,
            "--leave-running",
            "--quiet",
        ]);
        as_user(&mut c);
        c.stdin(std::process::Stdio::null())
            .output()
            .expect("run ckpt as the test user")
    };
    let o = dump(plain.pid, "plain.img");
    assert_eq!(
        o.status.code(),
        Some(0),
        "own unsandboxed process: {}",
        stderr(&o)
    );
    let o = dump(boxed.pid, "boxed.img");
    assert_eq!(
        o.status.code(),
        Some(3),
        "own Landlock-sandboxed process: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("Landlock"), "{}", stderr(&o));
    assert!(!dir.path().join("boxed.img").exists());
    assert!(alive(boxed.pid) && alive(plain.pid));
    assert_eq!(status_field(boxed.pid, "TracerPid").as_deref(), Some("0"));

    // The user restores their own image. The PID cannot be claimed on the
    // host without CAP_CHECKPOINT_RESTORE: refused, naming --pid-ns ...
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "plain.img", "--detach", "--quiet"];
        args.extend_from_slice(extra);
        let mut c = ckpt(&args);
        as_user(&mut c);
        c.stdin(std::process::Stdio::null())
            .output()
            .expect("run ckpt as the test user")
    };
    let o = restore(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("--pid-ns"), "{}", stderr(&o));
    // ... and with --pid-ns it runs in new user and PID namespaces, as the
    // user, with no capabilities, and goes on counting.
    let o = restore(&["--pid-ns"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let copy: i32 = stdout(&o).trim().parse().expect("restored PID on stdout");
    let _k = KillOnDrop(copy);
    let want = format!("{uid}\t{uid}\t{uid}\t{uid}");
    assert_eq!(status_field(copy, "Uid").as_deref(), Some(want.as_str()));
    assert_eq!(
        status_field(copy, "CapEff").as_deref(),
        Some("0000000000000000")
    );
    let nspid = status_field(copy, "NSpid").expect("NSpid");
    assert_eq!(
        nspid.split_whitespace().last(),
        Some(plain.pid.to_string().as_str()),
        "keeps its PID inside the namespace: {nspid}"
    );
    let pos = || fd_pos(copy, 3).unwrap_or(0);
    let p0 = pos();
    assert!(
        wait_until(LONG, || pos() > p0 + 4),
        "the copy did not continue"
    );
}

// ------------------------------------------- DESIGN 3.5: the image's principal

const FX_EDIT_IMAGE: &str = env!("CARGO_BIN_EXE_fx-edit-image");

/// Runs `cmd` as `TEST_USER` in `dir`, stdin on /dev/null.
fn as_test_user(cmd: &mut Command, dir: &Path) -> std::process::Output {
    let (uid, gid) = test_user();
    cmd.uid(uid)
        .gid(gid)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run as the test user")
}

/// `TEST_USER` starts a counter and dumps it (killing it) into
/// `dir/own.img`, an unsigned image it owns. Returns the image and the PID.
fn test_users_own_image(dir: &Path) -> (PathBuf, i32) {
    let (uid, gid) = test_user();
    let out = dir.join("count");
    let mut target = Guarded::spawn(quiet(
        Command::new(FX_COUNTER)
            .arg(random_u64().to_string())
            .arg(&out)
            .uid(uid)
            .gid(gid)
            .current_dir(dir),
    ));
    assert!(
        wait_until(LONG, || lines(&out).len() >= 3),
        "counter did not start"
    );
    let img = dir.join("own.img");
    let o = as_test_user(
        &mut ckpt(&["dump", &target.pid.to_string(), "-o", s(&img), "--quiet"]),
        dir,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "dump as {TEST_USER}: {}",
        stderr(&o)
    );
    target
        .wait_timeout(LONG)
        .expect("dumped counter not killed");
    (img, target.pid)
}

/// `TEST_USER` edits `img` into `dir/<name>` (unsigned, digests recomputed).
fn test_user_edits(dir: &Path, img: &Path, name: &str, edits: &[&str]) -> PathBuf {
    let edited = dir.join(name);
    let mut cmd = Command::new(FX_EDIT_IMAGE);
    cmd.arg(img).arg(&edited).args(edits);
    let o = as_test_user(&mut cmd, dir);
    assert!(o.status.success(), "fx-edit-image: {}", stderr(&o));
    edited
}

fn chown_root(p: &Path, mode: u32) {
    std::os::unix::fs::chown(p, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn root_restoring_a_users_image_edited_to_claim_root_is_refused() {
    if !have_root("root_restoring_a_users_image_edited_to_claim_root_is_refused") {
        return;
    }
    let (uid, _) = test_user();
    let dir = open_dir();
    let (own, pid) = test_users_own_image(dir.path());
    let evil = test_user_edits(dir.path(), &own, "evil.img", &["uid0"]);

    let (o, restored) = restore_detached(&evil, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(3), "must refuse: {}", stderr(&o));
    let err = stderr(&o);
    for want in [TEST_USER, "--sign-key", "--trusted-key", "chown"] {
        assert!(err.contains(want), "refusal names {want}: {err}");
    }
    assert_eq!(restored, None, "no pidfile for a refused restore");
    assert!(!alive(pid), "nothing runs under the image's PID");
    // policy-diff reaches the same verdict and names the principal.
    let o = run_ckpt(&["policy-diff", s(&evil)]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    let want =
        format!("vouched for by: the owner of the unsigned image file, uid {uid} ({TEST_USER})");
    assert!(stdout(&o).contains(&want), "{}", stdout(&o));
    // --strict-creds refuses as well.
    let (o, _) = restore_detached(&evil, dir.path(), &["--strict-creds"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(!alive(pid));

    // The user's own, unedited image claims the user's uid, which both
    // root and the user could set: root restores it as that user.
    let (o, restored) = restore_detached(&own, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "own image: {}", stderr(&o));
    let restored = restored.expect("pidfile");
    let _k = KillOnDrop(restored);
    let want = format!("{uid}\t{uid}\t{uid}\t{uid}");
    assert_eq!(
        status_field(restored, "Uid").as_deref(),
        Some(want.as_str())
    );
    assert_eq!(
        status_field(restored, "CapEff").as_deref(),
        Some("0000000000000000")
    );
}

#[test]
fn root_restores_a_checked_root_owned_image_as_root() {
    if !have_root("root_restores_a_checked_root_owned_image_as_root") {
        return;
    }
    let dir = open_dir();
    let (own, _) = test_users_own_image(dir.path());
    let evil = test_user_edits(dir.path(), &own, "evil.img", &["uid0"]);
    // Root "checked" it and took it over: its principal is root now.
    chown_root(&evil, 0o600);
    let (o, restored) = restore_detached(&evil, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "root-owned image: {}", stderr(&o));
    let restored = restored.expect("pidfile");
    let _k = KillOnDrop(restored);
    assert_eq!(status_field(restored, "Uid").as_deref(), Some("0\t0\t0\t0"));
}

#[test]
fn root_owned_but_group_or_world_writable_image_claiming_root_is_refused() {
    if !have_root("root_owned_but_group_or_world_writable_image_claiming_root_is_refused") {
        return;
    }
    let dir = open_dir();
    let (own, pid) = test_users_own_image(dir.path());
    let evil = test_user_edits(dir.path(), &own, "evil.img", &["uid0"]);
    for mode in [0o666, 0o620] {
        chown_root(&evil, mode);
        let (o, restored) = restore_detached(&evil, dir.path(), &[]);
        assert_eq!(o.status.code(), Some(3), "mode {mode:o}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("writable by group or others"),
            "{}",
            stderr(&o)
        );
        assert_eq!(restored, None);
        assert!(!alive(pid));
    }
}

#[test]
fn root_unsigned_stream_is_refused_without_trust_unsigned_stream() {
    if !have_root("root_unsigned_stream_is_refused_without_trust_unsigned_stream") {
        return;
    }
    let dir = open_dir();
    let (own, pid) = test_users_own_image(dir.path());
    let evil = test_user_edits(dir.path(), &own, "evil.img", &["uid0"]);
    // As a file, root-owned, it would be root's; as a stream it has no
    // known author.
    chown_root(&evil, 0o600);
    let pidfile = dir.path().join("stream.pid");
    let stream = |extra: &[&str]| {
        let mut args = vec!["restore", "-", "--detach", "--pidfile", s(&pidfile)];
        args.extend_from_slice(extra);
        ckpt(&args)
            .stdin(std::fs::File::open(&evil).unwrap())
            .output()
            .unwrap()
    };
    let o = stream(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--trust-unsigned-stream") && stderr(&o).contains("--sign-key"),
        "{}",
        stderr(&o)
    );
    assert!(!pidfile.exists() && !alive(pid));
    // policy-diff reaches the same verdict and names the principal.
    let o = ckpt(&["policy-diff", "-"])
        .stdin(std::fs::File::open(&evil).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("unsigned stream"), "{}", stdout(&o));
    // Trusting the sender explicitly restores its claims.
    let o = stream(&["--trust-unsigned-stream"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let restored: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _k = KillOnDrop(restored);
    assert_eq!(status_field(restored, "Uid").as_deref(), Some("0\t0\t0\t0"));
}

/// RLIMIT_NOFILE (soft, hard) of a process, from /proc/PID/limits.
fn nofile_limits(pid: i32) -> Option<(String, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let f: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    Some((f.first()?.to_string(), f.get(1)?.to_string()))
}

#[test]
fn root_restore_caps_a_claimed_hard_rlimit_at_what_the_restored_user_could_set() {
    if !have_root("root_restore_caps_a_claimed_hard_rlimit_at_what_the_restored_user_could_set") {
        return;
    }
    let dir = open_dir();
    let (own, _) = test_users_own_image(dir.path());
    let big = test_user_edits(dir.path(), &own, "big.img", &["nofile=65536"]);
    // Root restores it with a hard limit of 4096 of its own: the restored
    // user (no CAP_SYS_RESOURCE) could not raise it to 65536.
    let pidfile = dir.path().join("big.pid");
    let o = Command::new("bash")
        .args([
            "-c",
            "ulimit -n 4096 && exec \"$0\" \"$@\"",
            ckpt_bin().to_str().unwrap(),
            "restore",
            s(&big),
            "--detach",
            "--pidfile",
            s(&pidfile),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("RLIMIT_NOFILE 4096 instead of the image's 65536"),
        "a notice names the capped limit: {}",
        stderr(&o)
    );
    let restored: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _k = KillOnDrop(restored);
    assert_eq!(
        nofile_limits(restored),
        Some(("4096".to_string(), "4096".to_string()))
    );
}

#[test]
fn root_trusted_key_refuses_an_unsigned_image_stripped_of_its_seccomp_filter() {
    if !have_root("root_trusted_key_refuses_an_unsigned_image_stripped_of_its_seccomp_filter") {
        return;
    }
    let (uid, gid) = test_user();
    let dir = open_dir();
    let key = dir.path().join("root.key");
    let o = run_ckpt(&["keygen", "-o", s(&key)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let pubkey = dir.path().join("root.key.pub");
    // The user's sandboxed process, dumped and signed by root (reading
    // seccomp filters needs CAP_SYS_ADMIN), image handed to its owner.
    let out = dir.path().join("attempts");
    let mkdirs = dir.path().join("made");
    std::fs::create_dir(&mkdirs).unwrap();
    std::os::unix::fs::chown(&mkdirs, Some(uid), Some(gid)).unwrap();
    let mut target = Guarded::spawn(quiet(
        Command::new(FX_SECCOMP_MKDIR)
            .arg(&mkdirs)
            .arg(&out)
            .uid(uid)
            .gid(gid)
            .current_dir(dir.path()),
    ));
    let pid = target.pid;
    assert!(wait_until(LONG, || count_lines(&out, |l| l
        .ends_with("EPERM"))
        >= 2));
    let signed = dir.path().join("signed.img");
    let o = run_ckpt(&[
        "dump",
        &pid.to_string(),
        "-o",
        s(&signed),
        "--sign-key",
        s(&key),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    target
        .wait_timeout(LONG)
        .expect("dumped process not killed");
    std::os::unix::fs::chown(&signed, Some(uid), Some(gid)).unwrap();
    // The owner strips the filter and no_new_privs (the result is unsigned).
    let stripped = test_user_edits(dir.path(), &signed, "stripped.img", &["strip-confinement"]);

    let trusted = ["--trusted-key", s(&pubkey)];
    let (o, restored) = restore_detached(&stripped, dir.path(), &trusted);
    assert_eq!(o.status.code(), Some(3), "must refuse: {}", stderr(&o));
    assert!(
        stderr(&o).contains("--trusted-key") && stderr(&o).contains("unsigned"),
        "{}",
        stderr(&o)
    );
    assert_eq!(restored, None);
    assert!(!alive(pid));
    // The signed original restores, confined as it was.
    let (o, restored) = restore_detached(&signed, dir.path(), &trusted);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let restored = restored.expect("pidfile");
    let _k = KillOnDrop(restored);
    assert_eq!(status_field(restored, "Seccomp").as_deref(), Some("2"));
    assert_eq!(status_field(restored, "NoNewPrivs").as_deref(), Some("1"));
}
