//! The `ckpt` command: argument parsing, output and exit codes (DESIGN 2).
//!
//! Every subcommand returns `Result<u8, Failure>`; `Failure` carries the exit
//! code its cause maps to (1 operational, 3 refused by a security rule) and a
//! message that names the object and the way out. clap's own usage errors
//! exit with 2.
#![deny(unsafe_code)]

mod check_sys;
mod cmd_check;
mod cmd_demo;
mod cmd_dump;
mod cmd_generate_docs;
mod cmd_inspect;
mod cmd_keygen;
mod cmd_lsm;
mod cmd_policy_diff;
mod cmd_restore;
mod failure;
mod image_io;
mod logging;
mod output;
mod sys;
mod target_check;
mod verdict_input;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

pub use failure::Failure;

/// Checkpoint/restart for Linux processes that keeps security state honest.
#[derive(Parser, Debug)]
#[command(name = "ckpt", about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log each phase with its time (-v), and debug detail (-vv), on standard error.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Append every log record, with its time, to FILE.
    #[arg(long, value_name = "FILE", global = true)]
    log_file: Option<PathBuf>,
}

/// `--stats` and `--json` of dump and restore.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ReportFlags {
    /// Print the phase times and sizes when done.
    #[arg(long)]
    pub stats: bool,
    /// Print the summary (sizes, phase times) as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Checkpoint a running process into one image file.
    Dump(DumpArgs),
    /// Restart a process from an image.
    Restore(RestoreArgs),
    /// Compare an image's security header with this host (or a saved host profile).
    PolicyDiff(PolicyDiffArgs),
    /// Show this host's LSM stack and policy fingerprints, or a task's security state.
    Lsm(LsmArgs),
    /// Show what an image holds.
    Inspect(InspectArgs),
    /// Show what this kernel and this caller support (like `criu check`).
    Check(CheckArgs),
    /// Write an Ed25519 signing key to KEY and its public key to KEY.pub.
    Keygen(KeygenArgs),
    /// Start a small process, checkpoint it, restore it and show it continuing.
    Demo,
    /// Write man pages and shell completions under DIR (for `make install`).
    #[command(hide = true)]
    GenerateDocs { dir: PathBuf },
    /// The demo's counter process (internal).
    #[command(hide = true)]
    DemoCounter { out: PathBuf, start: u64 },
}

#[derive(clap::Args, Debug)]
pub struct DumpArgs {
    /// Process to checkpoint.
    pub pid: i32,
    /// Image file to write (`-` for standard output).
    #[arg(short = 'o', long = "output", value_name = "IMG")]
    pub output: PathBuf,
    /// Leave the process running after the dump (default: kill it once the image is complete).
    #[arg(long)]
    pub leave_running: bool,
    /// Replace IMG if it already exists.
    #[arg(long)]
    pub force: bool,
    /// Sign the image with this Ed25519 key (from `ckpt keygen`).
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub report: ReportFlags,
}

#[derive(clap::Args, Debug, Clone)]
pub struct VerdictFlags {
    /// Restore the image's LSM labels (needs the same LSM stack; labels must be valid now).
    #[arg(long)]
    pub keep_lsm: bool,
    /// Refuse when any LSM's policy fingerprint differs or is unknown.
    #[arg(long)]
    pub require_same_policy: bool,
    /// Run with your own LSM labels even where the image's label confined the task (each one given up is listed).
    #[arg(long)]
    pub lsm_as_caller: bool,
    /// Give the tasks this label instead of the image's (checked under the current policy, applied by the task); repeatable.
    #[arg(long = "lsm-label", value_name = "LSM:LABEL")]
    pub lsm_labels: Vec<lsm_labels::verdict::ChosenLabel>,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// Image file (`-` for standard input).
    pub image: PathBuf,
    #[command(flatten)]
    pub verdict: VerdictFlags,
    /// Refuse instead of re-deriving credentials from the caller.
    #[arg(long)]
    pub strict_creds: bool,
    /// Reopen files with the caller's authority instead of the restored identity's.
    #[arg(long)]
    pub files_as_caller: bool,
    /// Restore into a new PID namespace (and a new user namespace when unprivileged).
    #[arg(long)]
    pub pid_ns: bool,
    /// Print the restored PID and return at once instead of waiting.
    #[arg(long)]
    pub detach: bool,
    /// Write the restored PID to FILE.
    #[arg(long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Give the process FILE as its stdin (opened read-only by you, not through a symlink).
    #[arg(long, value_name = "FILE")]
    pub stdin: Option<PathBuf>,
    /// Give the process FILE as its stdout (appended to; created mode 0600).
    #[arg(long, value_name = "FILE")]
    pub stdout: Option<PathBuf>,
    /// Give the process FILE as its stderr (appended to; created mode 0600).
    #[arg(long, value_name = "FILE")]
    pub stderr: Option<PathBuf>,
    /// Public key (KEY.pub) whose signatures are trusted; repeatable.
    #[arg(long = "trusted-key", value_name = "PUB")]
    pub trusted_keys: Vec<PathBuf>,
    /// Refuse unsigned images and images signed by keys not given with --trusted-key.
    #[arg(long)]
    pub require_signature: bool,
    /// Accept an unsigned stream's credentials as if you had written it (needed when you hold privilege).
    #[arg(long)]
    pub trust_unsigned_stream: bool,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub report: ReportFlags,
}

#[derive(clap::Args, Debug)]
pub struct PolicyDiffArgs {
    /// Image file (`-` for standard input).
    pub image: PathBuf,
    #[command(flatten)]
    pub verdict: VerdictFlags,
    /// Compare against a host profile saved with `ckpt lsm --json` instead of this host.
    #[arg(long, value_name = "PROFILE.json")]
    pub host: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct LsmArgs {
    /// Show this task's labels, capabilities, no_new_privs, seccomp mode and sandboxing.
    #[arg(long)]
    pub pid: Option<i32>,
    /// Machine-readable output (a host profile usable with `policy-diff --host`).
    #[arg(long)]
    pub json: bool,
    /// Read securityfs, selinuxfs and /proc/sys under DIR instead of / (skips LSM syscalls).
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Image file (`-` for standard input).
    pub image: PathBuf,
    /// Machine-readable output (docs/json.md; always complete).
    #[arg(long)]
    pub json: bool,
    /// List every mapping instead of a summary.
    #[arg(long)]
    pub maps: bool,
    /// List every open file instead of a summary.
    #[arg(long)]
    pub files: bool,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// Secret key file to write; the public key goes to KEY.pub.
    #[arg(short = 'o', long = "output", value_name = "KEY")]
    pub output: PathBuf,
}

/// `ckpt --version`: the release, the image format it writes and the git
/// revision it was built from.
fn version() -> String {
    format!(
        "{} (image format {}, git {})",
        env!("CARGO_PKG_VERSION"),
        image_format::FORMAT_VERSION,
        env!("CKPT_GIT_REV")
    )
}

/// The clap command with the run-time version string.
fn cli_command() -> clap::Command {
    Cli::command().version(version())
}

fn main() -> ExitCode {
    sys::default_sigpipe();
    let cli = match Cli::from_arg_matches(&cli_command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Err(f) = logging::init(cli.verbose, cli.log_file.as_deref()) {
        eprintln!("ckpt: {}", f.message());
        return ExitCode::from(f.code());
    }
    let result = match cli.command {
        Command::Dump(a) => cmd_dump::run(&a),
        Command::Restore(a) => cmd_restore::run(&a),
        Command::PolicyDiff(a) => cmd_policy_diff::run(&a),
        Command::Lsm(a) => cmd_lsm::run(&a),
        Command::Inspect(a) => cmd_inspect::run(&a),
        Command::Keygen(a) => cmd_keygen::run(&a),
        Command::Check(a) => cmd_check::run(&a),
        Command::Demo => cmd_demo::run(),
        Command::GenerateDocs { dir } => cmd_generate_docs::run(&dir, cli_command()),
        Command::DemoCounter { out, start } => cmd_demo::counter(&out, start),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("ckpt: {}", f.message());
            ExitCode::from(f.code())
        }
    }
}
