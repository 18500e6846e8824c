//! DESIGN 3.7 and 3.9 attacked end to end: the image file changed between
//! verification and use, a mapped executable rewritten in place or
//! replaced on a reused inode, and a file the image names swapped for a
//! symlink to /etc/shadow by the unprivileged user who owns the directory.
//! All need root (restore claims the dumped PID).

use ckpt_tests::*;
use image_format::records::{FileStampRecord, ProcessRecord, SecurityHeaderRecord};
use image_format::{ImageWriter, SectionKind, VerifiedImage};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const FX_COUNTER: &str = env!("CARGO_BIN_EXE_fx-counter");
const LONG: Duration = Duration::from_secs(20);
const TEST_USER: &str = "ckpt-test";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of the counter fixture under a name of its own (its comm), so
/// that "no process of this name exists" means something while other tests
/// run theirs.
fn own_counter(dir: &Path, tag: &str) -> (PathBuf, String) {
    let comm = format!("{tag}{:x}", random_u64() & 0xffff);
    let exe = dir.join(&comm);
    std::fs::copy(FX_COUNTER, &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    (exe, comm[..comm.len().min(15)].to_string())
}

fn processes_named(comm: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == comm)
                && !matches!(state(*pid), None | Some('Z') | Some('X'))
        })
        .collect()
}

fn dump_and_reap(target: &mut Guarded, img: &Path) {
    let o = run_ckpt(&["dump", &target.pid.to_string(), "-o", s(img), "--quiet"]);
    assert_eq!(o.status.code(), Some(0), "dump failed: {}", stderr(&o));
    target
        .wait_timeout(LONG)
        .expect("dumped process was not killed");
}

/// `ckpt restore IMG --detach --pidfile F [extra]`: the output and the PID.
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

fn kill_and_wait(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    assert!(
        wait_until(LONG, || !alive(pid)),
        "pid {pid} survived SIGKILL"
    );
}

fn pages_section(img: &Path) -> image_format::SectionEntry {
    let image = VerifiedImage::open(std::fs::File::open(img).unwrap()).unwrap();
    let pages = image.sections_of(SectionKind::PAGES).next().copied();
    pages.expect("a pages section")
}

/// Rule 9: a byte of the pages changed in the image file after `restore`
/// verified the image (the hidden test hook pauses it right there) must
/// not reach the restored process: exit 1, nothing left running.
#[test]
fn root_pages_changed_after_verification_restore_nothing() {
    if !have_root("root_pages_changed_after_verification_restore_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (exe, comm) = own_counter(dir.path(), "fxr9-");
    let out = dir.path().join("count");
    let img = dir.path().join("r9.img");
    let mut target = Guarded::spawn(Command::new(&exe).arg("700").arg(&out));
    let pid = target.pid;
    assert!(wait_until(LONG, || lines(&out).len() >= 3));
    dump_and_reap(&mut target, &img);
    let pages = pages_section(&img);
    assert!(pages.len >= 4096, "no pages stored");
    let at = pages.offset + pages.len / 2;

    let go = dir.path().join("go");
    let restore_paused = |change: bool| {
        let _ = std::fs::remove_file(&go);
        let mut child = ckpt(&["restore", s(&img), "--detach", "--quiet"])
            .env("CKPT_TEST_PAUSE_BEFORE_REBUILD", &go)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap() == 0 {
                break;
            }
            seen.push_str(&line);
            if line.contains("paused before rebuild") {
                break;
            }
        }
        assert!(
            seen.contains("paused before rebuild"),
            "restore did not reach the hook: {seen}"
        );
        // The image is verified now; the attacker writes one byte.
        if change {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&img)
                .unwrap();
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, at).unwrap();
            f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
        }
        std::fs::write(&go, "").unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        seen.push_str(&rest);
        (child.wait().unwrap(), seen)
    };

    let (st, err) = restore_paused(true);
    assert_eq!(st.code(), Some(1), "changed pages restored: {err}");
    assert!(err.contains("changed after it was verified"), "{err}");
    assert!(
        !alive(pid),
        "the image's PID is alive after a refused restore"
    );
    assert!(
        processes_named(&comm).is_empty(),
        "a {comm} process is left"
    );

    // The same paused restore without the change restores (the hook only
    // waits), so the refusal above is the check's.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
    let (st, err) = restore_paused(false);
    assert_eq!(st.code(), Some(0), "unchanged image: {err}");
    assert!(wait_until(LONG, || alive(pid)));
    let n = lines(&out).len();
    assert!(
        wait_until(LONG, || lines(&out).len() >= n + 2),
        "restored counter stalls"
    );
    kill_and_wait(pid);
}

fn stamp_of(path: &Path) -> (u64, u64, i64, i64) {
    let md = std::fs::metadata(path).unwrap();
    (md.ino(), md.size(), md.mtime(), md.mtime_nsec())
}

/// The executable's bytes with one byte in the middle changed.
fn trojan_of(exe: &Path) -> Vec<u8> {
    let mut b = std::fs::read(exe).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0xff;
    b
}

/// Rule 7: a mapped executable rewritten in place (same inode, same size,
/// mtime put back with `touch -d`) is refused, naming the file; before
/// the change the same image restores.
#[test]
fn root_mapped_executable_rewritten_in_place_is_refused() {
    if !have_root("root_mapped_executable_rewritten_in_place_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (exe, comm) = own_counter(dir.path(), "fxrw-");
    let out = dir.path().join("count");
    let img = dir.path().join("rw.img");
    let mut target = Guarded::spawn(Command::new(&exe).arg("300").arg(&out));
    let pid = target.pid;
    assert!(wait_until(LONG, || lines(&out).len() >= 3));
    dump_and_reap(&mut target, &img);

    // The legitimate case restores.
    let (o, restored) = restore_detached(&img, dir.path(), &["--quiet"]);
    assert_eq!(o.status.code(), Some(0), "legit restore: {}", stderr(&o));
    kill_and_wait(restored.expect("pidfile"));

    let before = stamp_of(&exe);
    let trojan = trojan_of(&exe);
    let f = std::fs::OpenOptions::new().write(true).open(&exe).unwrap();
    f.write_all_at(&trojan, 0).unwrap();
    drop(f);
    let st = Command::new("touch")
        .args([
            "-m",
            "-d",
            &format!("@{}.{:09}", before.2, before.3),
            s(&exe),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        stamp_of(&exe),
        before,
        "inode, size and mtime must look unchanged"
    );

    let (o, restored) = restore_detached(&img, dir.path(), &["--quiet"]);
    assert_eq!(o.status.code(), Some(3), "trojan restored: {}", stderr(&o));
    assert!(
        stderr(&o).contains(s(&exe)),
        "refusal does not name the file: {}",
        stderr(&o)
    );
    assert!(restored.is_none());
    assert!(!alive(pid));
    assert!(
        processes_named(&comm).is_empty(),
        "a {comm} process is left"
    );
}

/// Rule 7: the executable deleted and a same-size trojan created that
/// reuses its inode number (when the filesystem hands it out again, which
/// ext4 and tmpfs usually do) is refused.
#[test]
fn root_executable_replaced_on_reused_inode_is_refused() {
    if !have_root("root_executable_replaced_on_reused_inode_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (exe, comm) = own_counter(dir.path(), "fxri-");
    let out = dir.path().join("count");
    let img = dir.path().join("ri.img");
    let mut target = Guarded::spawn(Command::new(&exe).arg("300").arg(&out));
    let pid = target.pid;
    assert!(wait_until(LONG, || lines(&out).len() >= 3));
    dump_and_reap(&mut target, &img);

    let (ino, size, _, _) = stamp_of(&exe);
    let trojan = trojan_of(&exe);
    std::fs::remove_file(&exe).unwrap();
    let mut reused = false;
    for i in 0..300 {
        let cand = dir.path().join(format!("cand{i}"));
        std::fs::write(&cand, &trojan).unwrap();
        if std::fs::metadata(&cand).unwrap().ino() == ino {
            std::fs::rename(&cand, &exe).unwrap();
            reused = true;
            break;
        }
    }
    if !reused {
        std::fs::write(&exe, &trojan).unwrap();
        eprintln!("note: the filesystem did not reuse inode {ino}; the trojan has a new one");
    }
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let md = std::fs::metadata(&exe).unwrap();
    assert_eq!(md.size(), size);
    eprintln!("inode reused: {reused}");

    let (o, restored) = restore_detached(&img, dir.path(), &["--quiet"]);
    assert_eq!(o.status.code(), Some(3), "trojan restored: {}", stderr(&o));
    assert!(
        stderr(&o).contains(s(&exe)),
        "refusal does not name the file: {}",
        stderr(&o)
    );
    assert!(restored.is_none());
    assert!(!alive(pid));
    assert!(
        processes_named(&comm).is_empty(),
        "a {comm} process is left"
    );
}

/// The uid and gid of `TEST_USER`, created when missing.
fn test_user() -> (u32, u32) {
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
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                TEST_USER,
            ])
            .status();
    }
    (id("-u").expect("uid"), id("-g").expect("gid"))
}

/// Rewrites the image's process record with `edit` (pages and security
/// header kept), as the image's owner may: unsigned, digests recomputed.
fn edit_image(img: &Path, edit: impl FnOnce(&mut ProcessRecord)) {
    let image = VerifiedImage::open(std::fs::File::open(img).unwrap()).unwrap();
    let header: SecurityHeaderRecord = image.read_record(&image.sections()[0]).unwrap();
    let mut rec: ProcessRecord = image.first_record(SectionKind::PROCESS).unwrap().unwrap();
    let pages = image
        .sections_of(SectionKind::PAGES)
        .next()
        .cloned()
        .unwrap();
    let mut bytes = vec![0u8; pages.len as usize];
    image.read_pages(&pages, 0, &mut bytes).unwrap();
    edit(&mut rec);
    let mut w = ImageWriter::new(Vec::new(), &header).unwrap();
    {
        let mut p = w.begin_pages(SectionKind::PAGES).unwrap();
        p.write_all(&bytes).unwrap();
        p.finish().unwrap();
    }
    w.write_record(SectionKind::PROCESS, &rec).unwrap();
    let out = w.finish(None).unwrap();
    let md = std::fs::metadata(img).unwrap();
    std::fs::write(img, out).unwrap();
    std::os::unix::fs::chown(img, Some(md.uid()), Some(md.gid())).unwrap();
}

/// Rule 7 and issue 7.5: the unprivileged user dumps a process holding a
/// file in a directory they own, then swaps the file for a symlink to
/// /etc/shadow (also with the record's identity edited to match
/// /etc/shadow's). Root restores with and without --files-as-caller:
/// refused, nothing runs, no fd reaches /etc/shadow.
#[test]
fn root_symlink_planted_in_recorded_path_is_not_followed() {
    if !have_root("root_symlink_planted_in_recorded_path_is_not_followed") {
        return;
    }
    let (uid, gid) = test_user();
    let top = tempfile::tempdir().unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = top.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
    let data = home.join("data");
    std::fs::write(&data, "harmless\n").unwrap();
    std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();

    let script = format!(
        "open(my $f, '<', '{}') or die; while (1) {{ select(undef, undef, undef, 0.05); }}",
        data.display()
    );
    let mut cmd = Command::new("perl");
    cmd.args(["-e", &script])
        .uid(uid)
        .gid(gid)
        .current_dir(&home);
    let mut target = Guarded::spawn(&mut cmd);
    let pid = target.pid;
    let holds = |pid: i32| {
        (3..8)
            .find(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).is_ok_and(|l| l == data))
    };
    assert!(
        wait_until(LONG, || holds(pid).is_some()),
        "perl did not open the file"
    );
    let fd = holds(pid).unwrap();

    let img = home.join("perl.img");
    let o = ckpt(&["dump", &pid.to_string(), "-o", s(&img), "--quiet"])
        .uid(uid)
        .gid(gid)
        .current_dir(&home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "dump as {TEST_USER}: {}",
        stderr(&o)
    );
    target
        .wait_timeout(LONG)
        .expect("dumped process was not killed");
    assert_eq!(std::fs::metadata(&img).unwrap().uid(), uid);

    // --files-as-caller opens what the image names with root's authority:
    // another user's unsigned image cannot ask for that (DESIGN 3.7 with
    // 3.5), whatever path it names (here the file made root-only 0600).
    std::os::unix::fs::chown(&data, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (o, restored) = restore_detached(&img, top.path(), &["--quiet", "--files-as-caller"]);
    if let Some(r) = restored {
        let link = std::fs::read_link(format!("/proc/{r}/fd/{fd}"));
        kill_and_wait(r);
        panic!(
            "a user's image got a root-opened fd {fd} -> {link:?}: {}",
            stderr(&o)
        );
    }
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot vouch"), "{}", stderr(&o));
    assert!(!alive(pid), "the image's PID is alive");
    // Root checked the image and took it over: from here on the image's
    // principal is root, and the symlink defence itself is what is tested.
    std::os::unix::fs::chown(&img, Some(0), Some(0)).unwrap();

    // The attack: the file becomes a symlink to /etc/shadow.
    std::fs::remove_file(&data).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &data).unwrap();
    std::os::unix::fs::lchown(&data, Some(uid), Some(gid)).unwrap();

    let secret = std::fs::read("/etc/shadow").unwrap();
    let check_refused = |extra: &[&str], label: &str| {
        let (o, restored) = restore_detached(&img, top.path(), extra);
        if let Some(r) = restored {
            let link = std::fs::read_link(format!("/proc/{r}/fd/{fd}"));
            kill_and_wait(r);
            panic!("{label}: restored, fd {fd} -> {link:?}: {}", stderr(&o));
        }
        assert_eq!(o.status.code(), Some(3), "{label}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("symbolic link"),
            "{label}: {}",
            stderr(&o)
        );
        let first = String::from_utf8_lossy(secret.split(|&b| b == b'\n').next().unwrap_or(b""));
        assert!(
            first.is_empty() || !stderr(&o).contains(first.as_ref()),
            "{label}: secret bytes in the output"
        );
        assert!(!alive(pid), "{label}: the image's PID is alive");
    };
    check_refused(&["--quiet"], "restored identity");
    check_refused(&["--quiet", "--files-as-caller"], "--files-as-caller");

    // The same with the record's identity made to match /etc/shadow (what
    // anyone can stat): the link is still not followed.
    let sh = std::fs::metadata("/etc/shadow").unwrap();
    edit_image(&img, |rec| {
        let f = rec.fds.iter_mut().find(|f| f.fd == fd).expect("fd record");
        f.dev = sh.dev();
        f.ino = sh.ino();
        let birth = sh
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        f.stamp = Some(FileStampRecord {
            size: sh.size(),
            mtime_sec: sh.mtime(),
            mtime_nsec: sh.mtime_nsec() as u32,
            ctime_sec: sh.ctime(),
            ctime_nsec: sh.ctime_nsec() as u32,
            sha256: Vec::new(),
            btime_sec: birth.map(|d| d.as_secs() as i64),
            btime_nsec: birth.map(|d| d.subsec_nanos()).unwrap_or(0),
        });
    });
    check_refused(
        &["--quiet", "--files-as-caller"],
        "edited identity, --files-as-caller",
    );
}

/// Runs `ckpt ARGS` under a seccomp filter that answers ENOSYS to openat2
/// (as an old kernel or a container's filter would), inherited by the task
/// ckpt restores: its files are then reopened by the O_NOFOLLOW walk.
fn ckpt_without_openat2(args: &[&str]) -> std::process::Output {
    const WRAPPER: &str = r#"
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
def ins(code, k, jt=0, jf=0):
    return struct.pack('HBBI', code, jt, jf, k)
prog = (ins(0x20, 4) + ins(0x15, 0xC000003E, 0, 3) + ins(0x20, 0)
        + ins(0x15, 437, 0, 1) + ins(0x06, 0x00050000 | 38) + ins(0x06, 0x7fff0000))
buf = ctypes.create_string_buffer(prog, len(prog))
fprog = ctypes.create_string_buffer(struct.pack('HxxxxxxQ', 6, ctypes.addressof(buf)), 16)
if libc.prctl(22, 2, ctypes.addressof(fprog), 0, 0) != 0:
    sys.exit("seccomp: errno %d" % ctypes.get_errno())
os.execv(sys.argv[1], sys.argv[1:])
"#;
    let bin = ckpt_bin();
    Command::new("python3")
        .arg("-c")
        .arg(WRAPPER)
        .arg(&bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The fallback of rule 7's no-symlink reopening: without openat2 the
/// process still restores, and a planted symlink is still refused.
#[test]
fn root_reopening_without_openat2_walks_without_following_symlinks() {
    if !have_root("root_reopening_without_openat2_walks_without_following_symlinks") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (exe, comm) = own_counter(dir.path(), "fxwk-");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let out = sub.join("count");
    let img = dir.path().join("wk.img");
    let mut target = Guarded::spawn(Command::new(&exe).arg("900").arg(&out));
    let pid = target.pid;
    assert!(wait_until(LONG, || lines(&out).len() >= 3));
    dump_and_reap(&mut target, &img);

    let pidfile = dir.path().join("wk.pid");
    let args = [
        "restore",
        s(&img),
        "--detach",
        "--quiet",
        "--pidfile",
        s(&pidfile),
    ];
    let o = ckpt_without_openat2(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "restore without openat2: {}",
        stderr(&o)
    );
    assert!(wait_until(LONG, || alive(pid)));
    // The filter reached the task, so its files were opened by the walk.
    assert_eq!(status_field(pid, "Seccomp").as_deref(), Some("2"));
    let n = lines(&out).len();
    assert!(
        wait_until(LONG, || lines(&out).len() >= n + 2),
        "restored counter stalls"
    );
    kill_and_wait(pid);

    // A symlinked directory component, then a symlinked last component.
    std::fs::rename(&sub, dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), &sub).unwrap();
    let o = ckpt_without_openat2(&args);
    assert_ne!(
        o.status.code(),
        Some(0),
        "symlinked directory followed: {}",
        stderr(&o)
    );
    assert!(!alive(pid) && processes_named(&comm).is_empty());
    std::fs::remove_file(&sub).unwrap();
    std::fs::rename(dir.path().join("real"), &sub).unwrap();
    std::fs::rename(&out, sub.join("moved")).unwrap();
    std::os::unix::fs::symlink(sub.join("moved"), &out).unwrap();
    let o = ckpt_without_openat2(&args);
    assert_eq!(
        o.status.code(),
        Some(3),
        "symlinked file followed: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    assert!(!alive(pid) && processes_named(&comm).is_empty());
}
