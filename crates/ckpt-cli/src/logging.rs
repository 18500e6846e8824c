//! The CLI's `log` sink: `-v` shows info records (the engine's phase
//! timings among them) on standard error, `-vv` debug records too, and
//! `--log-file FILE` appends every record with its UTC time. Phase records
//! (`ckpt_core::phase`) are also kept for `--stats` / `--json`.

use crate::failure::OrFail;
use crate::output::utc_time;
use crate::Failure;
use ckpt_core::phase;
use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

struct Sink {
    stderr_level: LevelFilter,
    file: Option<Mutex<std::fs::File>>,
    phases: Mutex<Vec<(String, Duration)>>,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// `verbose`: number of `-v`. Opens `log_file` for appending (created 0600,
/// never through a symlink).
pub fn init(verbose: u8, log_file: Option<&Path>) -> Result<(), Failure> {
    let file = match log_file {
        None => None,
        Some(p) => Some(Mutex::new(open_log(p).or_fail(|| {
            format!(
                "cannot open log file {}; check the directory exists and is writable",
                p.display()
            )
        })?)),
    };
    let stderr_level = match verbose {
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        _ => LevelFilter::Debug,
    };
    let max = if file.is_some() {
        LevelFilter::Debug
    } else {
        stderr_level.max(LevelFilter::Info)
    };
    let sink = SINK.get_or_init(|| Sink {
        stderr_level,
        file,
        phases: Mutex::new(Vec::new()),
    });
    log::set_logger(sink).map_err(|e| Failure::operational(anyhow::anyhow!("{e}")))?;
    log::set_max_level(max);
    Ok(())
}

fn open_log(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
}

/// The phases recorded so far, in order.
pub fn phases() -> Vec<(String, Duration)> {
    SINK.get()
        .map(|s| s.phases.lock().map(|p| p.clone()).unwrap_or_default())
        .unwrap_or_default()
}

/// A record as a person reads it: phase records as `phase freeze: 1.2 ms`.
fn render(record: &Record) -> String {
    let text = record.args().to_string();
    if record.target() == phase::TARGET {
        if let Some((name, took)) = phase::parse(&text) {
            return format!("phase {name}: {:.1} ms", took.as_secs_f64() * 1e3);
        }
    }
    text
}

impl Log for Sink {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, record: &Record) {
        if record.target() == phase::TARGET {
            if let Some(p) = phase::parse(&record.args().to_string()) {
                if let Ok(mut v) = self.phases.lock() {
                    v.push(p);
                }
            }
        }
        let line = render(record);
        if record.level() <= self.stderr_level {
            let level = match record.level() {
                Level::Error => "error",
                Level::Warn => "warning",
                _ => "log",
            };
            eprintln!("ckpt: {level}: {line}");
        }
        if let Some(f) = &self.file {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(
                    f,
                    "{} pid {} {} {line}",
                    utc_time(now),
                    std::process::id(),
                    record.level()
                );
            }
        }
    }
    fn flush(&self) {}
}

/// The phases as a JSON object of microseconds (`{"freeze": 120, ...}`).
pub fn phases_json() -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = phases()
        .into_iter()
        .map(|(n, d)| (n, serde_json::Value::from(d.as_micros() as u64)))
        .collect();
    serde_json::Value::Object(map)
}

/// The phases as `name  N.N ms` lines for `--stats`.
pub fn phases_text() -> String {
    phases()
        .iter()
        .map(|(n, d)| format!("{n:<8} {:>9.1} ms\n", d.as_secs_f64() * 1e3))
        .collect()
}
