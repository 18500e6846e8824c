//! Command-line contract: usage errors, exit codes, messages naming objects.

use ckpt_tests::*;

#[test]
fn usage_error_exits_2() {
    let o = run_ckpt(&["restore"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run_ckpt(&["dump", "notapid", "-o", "/tmp/x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn missing_image_is_operational_error_naming_the_file() {
    let o = run_ckpt(&["inspect", "/nonexistent/ckpt-test.img"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/ckpt-test.img"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn dump_of_missing_pid_fails_cleanly_without_image() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("x.img");
    // PIDs above pid_max cannot exist.
    let o = run_ckpt(&["dump", "2147483000", "-o", img.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("2147483000"), "{}", stderr(&o));
    assert!(!img.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file left"
    );
}

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FX_COUNTER: &str = env!("CARGO_BIN_EXE_fx-counter");
const LONG: Duration = Duration::from_secs(20);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ckpt dump PID -o IMG --quiet` and its output.
fn dump(pid: i32, img: &Path, extra: &[&str]) -> std::process::Output {
    let pid = pid.to_string();
    let mut args = vec!["dump", &pid, "-o", s(img), "--quiet"];
    args.extend_from_slice(extra);
    run_ckpt(&args)
}

fn assert_refused(o: &std::process::Output, code: i32, words: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{e}");
    for w in words {
        assert!(e.contains(w), "missing {w:?} in: {e}");
    }
    assert!(e.matches("os error").count() <= 1, "cause repeated: {e}");
    assert_eq!(e.trim().lines().count(), 1, "one message: {e}");
}

/// A counter fixture writing into `dir`.
fn counter(dir: &Path) -> Guarded {
    let out = dir.join("count");
    let g = Guarded::spawn(Command::new(FX_COUNTER).arg("0").arg(&out));
    assert!(
        wait_until(LONG, || lines(&out).len() >= 2),
        "fixture did not start"
    );
    g
}

#[test]
fn dump_of_missing_pid_says_no_such_process_once() {
    let dir = tempfile::tempdir().unwrap();
    let o = dump(2147483000, &dir.path().join("x.img"), &[]);
    assert_refused(&o, 1, &["pid 2147483000", "no such process"]);
    assert!(!stderr(&o).contains("No such process (os error 3): No such process"));
}

#[test]
fn dump_of_init_kernel_thread_zombie_and_itself_each_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("x.img");
    assert_refused(&dump(1, &img, &[]), 1, &["pid 1", "init process"]);
    // kthreadd is pid 2 wherever ckpt runs in the initial PID namespace.
    if std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd") {
        assert_refused(
            &dump(2, &img, &[]),
            1,
            &["pid 2 (kthreadd)", "kernel thread"],
        );
    }
    let mut zombie = Command::new("true").spawn().unwrap();
    let zpid = zombie.id() as i32;
    assert!(wait_until(LONG, || state(zpid) == Some('Z')));
    assert_refused(&dump(zpid, &img, &[]), 1, &["zombie", "already exited"]);
    zombie.wait().unwrap();
    // `exec` keeps the shell's PID: ckpt is asked to dump itself.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {} dump $$ -o {} --quiet",
            ckpt_bin().display(),
            s(&img)
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_refused(&o, 1, &["this ckpt process itself"]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn root_dump_of_another_users_process_names_both_users() {
    if !have_root("root_dump_of_another_users_process_names_both_users") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = counter(dir.path());
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(ckpt_bin())
        .args([
            "dump",
            &target.pid.to_string(),
            "-o",
            "/tmp/never.img",
            "--quiet",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_refused(
        &o,
        1,
        &["belongs to uid 0", "run ckpt as that user or as root"],
    );
    assert!(alive(target.pid));
}

#[test]
fn dump_to_a_missing_directory_names_the_directory_not_a_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("no-such-dir").join("x.img");
    // Our own shell-less child: the check happens before anything is traced.
    let o = dump(std::process::id() as i32, &img, &[]);
    assert_refused(&o, 1, &["no-such-dir", "does not exist", "create it"]);
    assert!(!stderr(&o).contains("ckpt-tmp"), "{}", stderr(&o));
}

#[test]
fn root_dump_refuses_to_overwrite_an_image_unless_forced() {
    if !have_root("root_dump_refuses_to_overwrite_an_image_unless_forced") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("x.img");
    std::fs::write(&img, "precious").unwrap();
    let target = counter(dir.path());
    let o = dump(target.pid, &img, &["--leave-running"]);
    assert_refused(
        &o,
        1,
        &["refusing to overwrite", "already exists", "--force"],
    );
    assert_eq!(std::fs::read_to_string(&img).unwrap(), "precious");
    assert!(alive(target.pid));
    let o = dump(target.pid, &img, &["--leave-running", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_ne!(std::fs::read(&img).unwrap(), b"precious");
}

#[test]
fn root_unsupported_fd_with_leave_running_does_not_advise_leave_running() {
    if !have_root("root_unsupported_fd_with_leave_running_does_not_advise_leave_running") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "import socket,time\ns=socket.socket()\nopen('{}','w').write('x')\nwhile True: time.sleep(0.05)\n",
        ready.display()
    );
    let target = Guarded::spawn(Command::new("python3").arg("-c").arg(&script));
    assert!(wait_until(LONG, || ready.exists()));
    let img = dir.path().join("x.img");
    let o = dump(target.pid, &img, &[]);
    assert_refused(&o, 1, &["cannot dump fd", "--leave-running"]);
    let o = dump(target.pid, &img, &["--leave-running"]);
    assert_refused(&o, 1, &["cannot dump fd", "close it", "still running"]);
    assert!(
        !stderr(&o).contains("use --leave-running"),
        "{}",
        stderr(&o)
    );
    assert!(alive(target.pid));
}

#[test]
fn root_dump_to_standard_output_says_standard_output() {
    if !have_root("root_dump_to_standard_output_says_standard_output") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = counter(dir.path());
    let img = std::fs::File::create(dir.path().join("x.img")).unwrap();
    let o = ckpt(&[
        "dump",
        &target.pid.to_string(),
        "-o",
        "-",
        "--leave-running",
    ])
    .stdin(Stdio::null())
    .stdout(img)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("to standard output"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("standard input"), "{}", stderr(&o));
}

#[test]
fn restore_from_a_terminal_refuses_at_once() {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let started = std::time::Instant::now();
    let mut child = ckpt(&["restore", "-"])
        .stdin(Stdio::from(std::fs::File::from(pty.slave)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > LONG {
            let _ = child.kill();
            panic!("restore - waited on the terminal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("from a terminal"), "{}", stderr(&o));
    drop(pty.master);
}

/// Every feature `ckpt check` reports, in its order.
const CHECKED: &[&str] = &[
    "PTRACE_SEIZE",
    "PTRACE_O_SUSPEND_SECCOMP",
    "process_vm_readv",
    "vdso layout",
    "clone3 set_tid",
    "CAP_CHECKPOINT_RESTORE",
    "PR_SET_MM_MAP",
    "lsm syscalls",
    "securityfs mounted",
    "openat2",
    "PAGEMAP_SCAN",
    "userfaultfd",
    "TCP_REPAIR",
    "KVM",
];

#[test]
fn root_check_reports_every_feature_and_root_may_dump_and_restore() {
    if !have_root("root_check_reports_every_feature_and_root_may_dump_and_restore") {
        return;
    }
    let o = run_ckpt(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    for f in CHECKED {
        assert!(stdout(&o).contains(f), "{f} missing: {}", stdout(&o));
    }
    assert!(stdout(&o).contains("dump: possible; restore: possible"));
    let o = run_ckpt(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["dump_possible"], true);
    let names: Vec<&str> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKED);
    let seize = &v["features"][0];
    assert_eq!(seize["status"], "yes", "{seize}");
    assert!(seize["why"].as_str().unwrap().contains("forked child"));
    // Root may put a socket into repair mode (needs CAP_NET_ADMIN).
    assert_eq!(v["features"][12]["status"], "yes", "{}", v["features"][12]);
}

#[test]
fn root_check_as_an_unprivileged_user_says_what_it_may_not_and_the_way_out() {
    if !have_root("root_check_as_an_unprivileged_user_says_what_it_may_not_and_the_way_out") {
        return;
    }
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(ckpt_bin())
        .args(["check", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let by_name = |n: &str| {
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == n)
            .cloned()
            .unwrap()
    };
    let set_tid = by_name("clone3 set_tid");
    assert_eq!(set_tid["status"], "limited", "{set_tid}");
    assert!(set_tid["why"].as_str().unwrap().contains("EPERM"));
    assert!(set_tid["why"].as_str().unwrap().contains("--pid-ns"));
    assert_eq!(by_name("TCP_REPAIR")["status"], "limited");
    // Limited set_tid does not block restore (--pid-ns remains), so the
    // exit code follows the blocking features only.
    let blocked = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["blocks"] == true);
    assert_eq!(o.status.code(), Some(i32::from(blocked)), "{v}");
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn version_names_the_image_format_and_the_git_revision() {
    let o = run_ckpt(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    let v = stdout(&o);
    let format = image_format::FORMAT_VERSION.to_string();
    assert!(v.contains(&format!("image format {format}")), "{v}");
    assert!(v.contains("git "), "{v}");
}

#[test]
fn make_install_puts_binary_man_pages_and_completions_under_prefix() {
    let prefix = tempfile::tempdir().unwrap();
    let o = Command::new("make")
        .arg("-C")
        .arg(repo_root())
        .arg("install")
        .arg(format!("PREFIX={}", s(prefix.path())))
        .arg(format!("CKPT={}", ckpt_bin().display()))
        .stdin(Stdio::null())
        .output()
        .expect("make");
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let p = prefix.path();
    let bin = p.join("bin/ckpt");
    let v = Command::new(&bin).arg("--version").output().unwrap();
    assert!(stdout(&v).contains("image format"), "{}", stdout(&v));
    let pages = [
        "ckpt",
        "ckpt-dump",
        "ckpt-restore",
        "ckpt-check",
        "ckpt-inspect",
        "ckpt-lsm",
        "ckpt-policy-diff",
        "ckpt-keygen",
        "ckpt-demo",
    ];
    for page in pages {
        let f = p.join(format!("share/man/man1/{page}.1"));
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(
            text.contains(&format!(".TH {page} 1")),
            "{page}: no roff header"
        );
    }
    assert!(
        !p.join("share/man/man1/ckpt-generate-docs.1").exists(),
        "hidden command documented"
    );
    if Command::new("man").arg("--version").output().is_ok() {
        let m = Command::new("man")
            .arg("-l")
            .arg(p.join("share/man/man1/ckpt-dump.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&m.stdout).replace("\u{8}", "");
        assert!(text.contains("--leave-running"), "man -l rendered: {text}");
    }
    let bash = std::fs::read_to_string(p.join("share/bash-completion/completions/ckpt")).unwrap();
    assert!(
        bash.contains("complete") && bash.contains("policy-diff"),
        "{bash}"
    );
    let zsh = std::fs::read_to_string(p.join("share/zsh/site-functions/_ckpt")).unwrap();
    assert!(zsh.starts_with("#compdef ckpt"), "{zsh}");
    let fish =
        std::fs::read_to_string(p.join("share/fish/vendor_completions.d/ckpt.fish")).unwrap();
    assert!(
        fish.contains("complete -c ckpt") && fish.contains("leave-running"),
        "{fish}"
    );
    // The bash completion loads and completes a subcommand.
    let b = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(ckpt dum); COMP_CWORD=1; _ckpt ckpt dum ckpt; echo \"${{COMPREPLY[@]}}\"",
            s(&p.join("share/bash-completion/completions/ckpt"))
        ))
        .output()
        .unwrap();
    assert!(stdout(&b).contains("dump"), "{}{}", stdout(&b), stderr(&b));
}

/// Runs ckpt with standard error on a terminal; its exit code and what the
/// terminal showed.
fn with_stderr_on_terminal(args: &[&str]) -> (Option<i32>, String) {
    use std::io::Read;
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut child = ckpt(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::from(pty.slave)))
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the last holder of the terminal's other side has gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    let status = child.wait().unwrap();
    (status.code(), reader.join().unwrap())
}

#[test]
fn root_verbose_dump_and_restore_log_each_phase_and_print_stats_as_json() {
    if !have_root("root_verbose_dump_and_restore_log_each_phase_and_print_stats_as_json") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut target = counter(dir.path());
    let pid = target.pid;
    let img = dir.path().join("x.img");
    let log = dir.path().join("ckpt.log");
    let o = run_ckpt(&[
        "dump",
        &pid.to_string(),
        "-o",
        s(&img),
        "-v",
        "--log-file",
        s(&log),
        "--stats",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    target
        .wait_timeout(LONG)
        .expect("dumped process not killed");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("dump --json");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["pid"], pid);
    assert!(v["image_bytes"].as_u64().unwrap() > 0);
    for p in ["freeze", "collect", "write", "sync"] {
        assert!(v["phases_us"][p].is_u64(), "{p}: {v}");
        assert!(
            stderr(&o).contains(&format!("phase {p}: ")),
            "{}",
            stderr(&o)
        );
        let logged = lines(&log);
        assert!(
            logged
                .iter()
                .any(|l| l.contains(&format!("phase {p}: ")) && l.starts_with("20")),
            "{logged:?}"
        );
    }
    let o = run_ckpt(&["restore", s(&img), "--detach", "--json", "-v", "--stats"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("restore --json");
    let _restored = KillOnDrop(v["pid"].as_i64().unwrap() as i32);
    assert_eq!(v["pid"], pid);
    for p in ["verify", "plan", "rebuild", "resume"] {
        assert!(v["phases_us"][p].is_u64(), "{p}: {v}");
        assert!(
            stderr(&o).contains(&format!("phase {p}: ")),
            "{}",
            stderr(&o)
        );
        assert!(
            stderr(&o)
                .lines()
                .any(|l| l.starts_with(p) && l.ends_with(" ms")),
            "--stats: {}",
            stderr(&o)
        );
    }
}

#[test]
fn root_progress_on_a_terminal_shows_rate_and_syncing_and_restore_progress() {
    if !have_root("root_progress_on_a_terminal_shows_rate_and_syncing_and_restore_progress") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut target = counter(dir.path());
    let pid = target.pid;
    let img = dir.path().join("x.img");
    let (code, shown) = with_stderr_on_terminal(&["dump", &pid.to_string(), "-o", s(&img)]);
    assert_eq!(code, Some(0), "{shown}");
    target
        .wait_timeout(LONG)
        .expect("dumped process not killed");
    assert!(shown.contains("MiB/s"), "{shown}");
    assert!(shown.contains("syncing the image to disk"), "{shown}");
    let pidfile = dir.path().join("pid");
    let (code, shown) =
        with_stderr_on_terminal(&["restore", s(&img), "--detach", "--pidfile", s(&pidfile)]);
    let restored: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _restored = KillOnDrop(restored);
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("restore: image verified"), "{shown}");
    assert!(shown.contains("rebuilt and resumed"), "{shown}");
    // Not on a terminal: quiet.
    assert!(!stderr(&run_ckpt(&["inspect", s(&img)])).contains("MiB/s"));
}

/// The long flags a `--help` text lists.
fn long_flags(help: &str) -> Vec<String> {
    let mut flags: Vec<String> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_string)
        .filter(|f| f != "--help" && f != "--version")
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

#[test]
fn docs_commands_md_documents_every_command_and_flag_of_help() {
    let doc = std::fs::read_to_string(repo_root().join("docs/commands.md")).unwrap();
    let (intro, _) = doc.split_once("\n## ").unwrap();
    let help = stdout(&run_ckpt(&["--help"]));
    let commands: Vec<&str> = help
        .split_once("Commands:")
        .unwrap()
        .1
        .split_once("Options:")
        .unwrap()
        .0
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(
        commands.contains(&"dump") && commands.contains(&"check"),
        "{commands:?}"
    );
    for cmd in commands {
        let heading = format!("\n## ckpt {cmd}");
        let section = doc
            .split_once(&heading)
            .unwrap_or_else(|| panic!("docs/commands.md has no section `## ckpt {cmd}`"))
            .1;
        let section = section.split("\n## ").next().unwrap();
        let sub_help = stdout(&run_ckpt(&[cmd, "--help"]));
        for flag in long_flags(&sub_help) {
            assert!(
                section.contains(flag.as_str()) || intro.contains(flag.as_str()),
                "`ckpt {cmd} --help` lists {flag}, docs/commands.md's section does not"
            );
        }
    }
}

/// The ```json shape block under each `## ` heading of docs/json.md.
fn documented_shapes() -> Vec<(String, serde_json::Value)> {
    let doc = std::fs::read_to_string(repo_root().join("docs/json.md")).unwrap();
    doc.split("\n## ")
        .skip(1)
        .map(|sec| {
            let heading = sec.lines().next().unwrap().trim().to_string();
            let block = sec.split("```json\n").nth(1).expect("json block");
            let block = block.split("```").next().unwrap();
            let shape = serde_json::from_str(block)
                .unwrap_or_else(|e| panic!("docs/json.md `{heading}`: {e}"));
            (heading, shape)
        })
        .collect()
}

fn type_matches(ty: &str, v: &serde_json::Value) -> bool {
    ty.split('|').any(|t| match t {
        "any" => true,
        "null" => v.is_null(),
        "bool" => v.is_boolean(),
        "number" => v.is_u64() || v.is_i64(),
        "string" => v.is_string(),
        "hex" => v.as_str().is_some_and(|s| {
            s.strip_prefix("0x").is_some_and(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            })
        }),
        "sha256" => v.as_str().is_some_and(|s| {
            s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        }),
        other => panic!("docs/json.md: unknown type {other}"),
    })
}

/// Checks `v` against a docs/json.md shape; `at` names the place for messages.
fn check_shape(shape: &serde_json::Value, v: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match shape {
        Value::String(ty) => assert!(type_matches(ty, v), "{at}: {v} is not {ty}"),
        Value::Array(s) => {
            let a = v
                .as_array()
                .unwrap_or_else(|| panic!("{at}: {v} is not an array"));
            for (i, x) in a.iter().enumerate() {
                check_shape(&s[0], x, &format!("{at}[{i}]"));
            }
        }
        Value::Object(s) => {
            let o = v
                .as_object()
                .unwrap_or_else(|| panic!("{at}: {v} is not an object"));
            if let Some(each) = s.get("*") {
                for (k, x) in o {
                    check_shape(each, x, &format!("{at}.{k}"));
                }
                return;
            }
            for (key, sub) in s {
                if key == "..." {
                    continue;
                }
                let (name, optional) = match key.strip_suffix('?') {
                    Some(n) => (n, true),
                    None => (key.as_str(), false),
                };
                match o.get(name) {
                    None | Some(Value::Null) if optional => {}
                    None => panic!("{at}: key {name} missing"),
                    Some(x) => check_shape(sub, x, &format!("{at}.{name}")),
                }
            }
            if !s.contains_key("...") {
                for k in o.keys() {
                    assert!(
                        s.contains_key(k) || s.contains_key(&format!("{k}?")),
                        "{at}: key {k} is not documented in docs/json.md"
                    );
                }
            }
        }
        _ => panic!("{at}: bad shape {shape}"),
    }
}

/// Keys in `text` (pretty or compact JSON) appear sorted in every object.
fn assert_sorted_keys(v: &serde_json::Value, at: &str) {
    match v {
        serde_json::Value::Object(o) => {
            let keys: Vec<&String> = o.keys().collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted, "{at}: keys not sorted");
            o.iter()
                .for_each(|(k, x)| assert_sorted_keys(x, &format!("{at}.{k}")));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| assert_sorted_keys(x, at)),
        _ => {}
    }
}

/// Parses JSON keeping the order of keys as printed.
fn parse_ordered(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("json")
}

#[test]
fn root_json_output_of_each_command_matches_docs_json_md() {
    if !have_root("root_json_output_of_each_command_matches_docs_json_md") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    assert_eq!(run_ckpt(&["keygen", "-o", s(&key)]).status.code(), Some(0));
    let mut target = counter(dir.path());
    let pid = target.pid.to_string();
    let img = dir.path().join("x.img");
    let mut outputs: Vec<(&str, Vec<u8>)> = Vec::new();
    let o = run_ckpt(&[
        "dump",
        &pid,
        "-o",
        s(&img),
        "--sign-key",
        s(&key),
        "--json",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    target.wait_timeout(LONG).unwrap();
    outputs.push(("ckpt dump PID -o IMG --json", o.stdout));
    let own = std::process::id().to_string();
    for (heading, args) in [
        (
            "ckpt inspect IMG --json",
            vec!["inspect", s(&img), "--json"],
        ),
        ("ckpt lsm --json", vec!["lsm", "--json"]),
        (
            "ckpt lsm --pid PID --json",
            vec!["lsm", "--pid", &own, "--json"],
        ),
        (
            "ckpt policy-diff IMG --json",
            vec!["policy-diff", s(&img), "--json"],
        ),
        ("ckpt check --json", vec!["check", "--json"]),
    ] {
        let o = run_ckpt(&args);
        assert!(
            o.status.code().is_some_and(|c| c <= 1),
            "{heading}: {}",
            stderr(&o)
        );
        outputs.push((heading, o.stdout));
    }
    let o = run_ckpt(&["restore", s(&img), "--detach", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = parse_ordered(&o.stdout);
    let _restored = KillOnDrop(v["pid"].as_i64().unwrap() as i32);
    outputs.push(("ckpt restore IMG --json", o.stdout));

    let shapes = documented_shapes();
    assert_eq!(
        shapes.len(),
        outputs.len(),
        "one documented shape per command"
    );
    for (heading, out) in outputs {
        let shape = &shapes
            .iter()
            .find(|(h, _)| h == heading)
            .unwrap_or_else(|| panic!("docs/json.md has no `## {heading}`"))
            .1;
        let v = parse_ordered(&out);
        assert_eq!(v["schema_version"], 1, "{heading}");
        check_shape(shape, &v, heading);
        assert_sorted_keys(&v, heading);
    }
}

#[test]
fn root_policy_diff_refuses_a_host_profile_whose_component_was_edited_under_its_digest() {
    if !have_root(
        "root_policy_diff_refuses_a_host_profile_whose_component_was_edited_under_its_digest",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = run_ckpt(&["lsm", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut profile: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let target = counter(dir.path());
    let img = dir.path().join("x.img");
    let o = dump(target.pid, &img, &["--leave-running"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let good = dir.path().join("good.json");
    std::fs::write(&good, serde_json::to_vec(&profile).unwrap()).unwrap();
    let lsm = profile["lsms"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| {
            l["fingerprint"]["components"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        })
        .expect("an LSM with policy components");
    let name = lsm["name"].as_str().unwrap().to_string();
    lsm["fingerprint"]["components"][0]["digest"] = serde_json::json!("00".repeat(32));
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, serde_json::to_vec(&profile).unwrap()).unwrap();
    let o = run_ckpt(&["policy-diff", s(&img), "--host", s(&edited)]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("inconsistent") && e.contains(&name) && e.contains("ckpt lsm --json"),
        "{e}"
    );
    // The untouched profile of this very host: every LSM is the same.
    let o = run_ckpt(&["policy-diff", s(&img), "--host", s(&good), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["diff"]["lsms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["status"] == "same"),
        "{v}"
    );
}

#[test]
fn root_inspect_shows_each_tasks_security_state_and_syscall_names_with_summaries() {
    if !have_root("root_inspect_shows_each_tasks_security_state_and_syscall_names_with_summaries") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mkdirs = dir.path().join("d");
    std::fs::create_dir(&mkdirs).unwrap();
    let out = dir.path().join("out");
    let target = Guarded::spawn(
        Command::new(env!("CARGO_BIN_EXE_fx-seccomp-mkdir"))
            .arg(&mkdirs)
            .arg(&out),
    );
    assert!(wait_until(LONG, || lines(&out)
        .iter()
        .any(|l| l.ends_with("EPERM"))));
    let img = dir.path().join("x.img");
    let o = dump(target.pid, &img, &["--leave-running"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run_ckpt(&["inspect", s(&img)]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for words in [
        "credentials: uid 0/0/0/0 gid 0/0/0/0",
        "capabilities: effective 0x",
        "securebits 0x",
        "no_new_privs: yes; seccomp: filter, 1 filters (",
        "--maps lists them",
        "--files lists them",
    ] {
        assert!(text.contains(words), "missing {words:?}:\n{text}");
    }
    let call = text
        .split("(in system call ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("in a system call");
    assert!(
        call.chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
        "{call}"
    );
    assert!(
        !call.starts_with(|c: char| c.is_ascii_digit()),
        "number, not name: {call}"
    );
    assert!(!text.contains("r-xp"), "mappings listed without --maps");
    let full = stdout(&run_ckpt(&["inspect", s(&img), "--maps", "--files"]));
    assert!(full.contains("r-xp") && full.contains("fd 1"), "{full}");
    let v: serde_json::Value =
        serde_json::from_slice(&run_ckpt(&["inspect", s(&img), "--json"]).stdout).unwrap();
    let sec = &v["tasks"][0]["security"];
    assert_eq!(sec["no_new_privs"], true, "{sec}");
    assert_eq!(sec["seccomp_mode"], "filter");
    assert!(
        sec["seccomp_filters"][0]["instructions"].as_u64().unwrap() > 3,
        "{sec}"
    );
    assert_eq!(v["tasks"][0]["registers"]["in_syscall"], call);
}
