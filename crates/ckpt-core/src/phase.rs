//! Phase timing: the engine reports how long each phase of a dump
//! (freeze, collect, write, sync) or restore (rebuild, resume) took through
//! the `log` facade, as an info record with target [`TARGET`]. A front end
//! shows them with `-v`, writes them to a log file, or collects them for
//! `--stats` (`parse` reads a record back).

use std::time::{Duration, Instant};

/// The `log` target of phase records.
pub const TARGET: &str = "ckpt::phase";

/// Logs that phase `name` took `took`: message `"<name> <microseconds>"`.
pub fn record(name: &str, took: Duration) {
    log::info!(target: TARGET, "{name} {}", took.as_micros());
}

/// Runs `f` as phase `name` and records its duration (also on failure).
pub fn timed<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let out = f();
    record(name, t0.elapsed());
    out
}

/// The phase name and duration of a phase record's message.
pub fn parse(message: &str) -> Option<(String, Duration)> {
    let (name, micros) = message.rsplit_once(' ')?;
    let micros: u64 = micros.parse().ok()?;
    Some((name.to_string(), Duration::from_micros(micros)))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_record_message_parses_back() {
        assert_eq!(
            parse("freeze 1234"),
            Some(("freeze".into(), Duration::from_micros(1234)))
        );
        assert_eq!(parse("freeze"), None);
        assert_eq!(parse("freeze x"), None);
    }
}
