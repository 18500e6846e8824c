//! Terminal output helpers: progress only on a terminal and never with --quiet.

use std::io::IsTerminal;

/// Whether progress lines should be shown on standard error.
pub fn show_progress(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// `rwxp`-style permissions as /proc/PID/maps shows them.
pub fn prot_string(prot: u32, shared: bool) -> String {
    let mut s = String::with_capacity(4);
    s.push(if prot & 1 != 0 { 'r' } else { '-' });
    s.push(if prot & 2 != 0 { 'w' } else { '-' });
    s.push(if prot & 4 != 0 { 'x' } else { '-' });
    s.push(if shared { 's' } else { 'p' });
    s
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC). Hand-written
/// (Howard Hinnant's civil-from-days) to avoid a date crate for one line.
pub fn utc_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn utc_time_known_points() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_time(1_795_461_735), "2026-11-23T19:22:15Z");
    }
    #[test]
    fn prot_string_matches_maps() {
        assert_eq!(prot_string(5, false), "r-xp");
        assert_eq!(prot_string(3, true), "rw-s");
        assert_eq!(prot_string(0, false), "---p");
    }
}
