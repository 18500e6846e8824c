//! Guard regions (madvise MADV_GUARD_INSTALL, Linux 6.13+): pages that
//! fault with SIGSEGV on any access without being a separate mapping.
//! Found at dump through /proc/PID/pagemap bit 58 (PM_GUARD_REGION, 6.15+),
//! never read (reading one through /proc/PID/mem fails with EIO), and
//! installed again at restore by an injected madvise, after the pages
//! around them are written.

use crate::error::RestoreError;
use crate::ptrace::Tracee;
use crate::security_restore::inject;

/// madvise(2) advice MADV_GUARD_INSTALL.
pub const MADV_GUARD_INSTALL: u64 = 102;
/// pagemap bit of a guard page.
pub const PM_GUARD_REGION: u64 = 1 << 58;
/// Most guard runs per task accepted in an image.
pub const MAX_GUARD_RUNS: usize = 65536;
const PAGE: u64 = 4096;

/// Whether a pagemap entry is a guard page.
pub fn is_guard(pagemap_entry: u64) -> bool {
    pagemap_entry & PM_GUARD_REGION != 0
}

/// Append the guard pages among `pagemap` (entries for the pages from
/// `start`) to `runs` as (start, len), merging adjacent ones.
pub fn collect(start: u64, pagemap: &[u64], runs: &mut Vec<(u64, u64)>) {
    for (i, &e) in pagemap.iter().enumerate() {
        if !is_guard(e) {
            continue;
        }
        let addr = start + i as u64 * PAGE;
        match runs.last_mut() {
            Some((s, l)) if *s + *l == addr => *l += PAGE,
            _ => runs.push((addr, PAGE)),
        }
    }
}

/// Install the guard runs in the task being rebuilt.
pub fn restore(t: &mut Tracee, pid: i32, runs: &[(u64, u64)]) -> Result<(), RestoreError> {
    for &(start, len) in runs {
        let what = format!(
            "madvise({start:#x}, {len}, MADV_GUARD_INSTALL) (a guard region; needs Linux 6.13 or later)"
        );
        inject(
            t,
            pid,
            &what,
            libc::SYS_madvise,
            &[start, len, MADV_GUARD_INSTALL],
        )?;
    }
    Ok(())
}

/// Stored runs: page-aligned, non-empty, ascending, not overlapping, each
/// inside one of `vmas` ((start, end) pairs, ascending).
pub fn validate(runs: &[(u64, u64)], vmas: &[(u64, u64)]) -> Result<(), String> {
    if runs.len() > MAX_GUARD_RUNS {
        return Err(format!("more than {MAX_GUARD_RUNS} guard runs"));
    }
    let mut last_end = 0u64;
    for &(start, len) in runs {
        let end = start
            .checked_add(len)
            .ok_or_else(|| format!("guard run {start:#x} overflows"))?;
        if len == 0 || start % PAGE != 0 || len % PAGE != 0 || start < last_end {
            return Err(format!(
                "guard run {start:#x}+{len:#x} is malformed or out of order"
            ));
        }
        let inside = vmas
            .binary_search_by(|&(s, e)| {
                if e <= start {
                    std::cmp::Ordering::Less
                } else if s > start {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .map(|i| end <= vmas[i].1)
            .unwrap_or(false);
        if !inside {
            return Err(format!(
                "guard run {start:#x}+{len:#x} is not inside one mapping"
            ));
        }
        last_end = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_merged_runs() {
        let g = PM_GUARD_REGION;
        let mut runs = Vec::new();
        collect(0x1000, &[0, g, g, 0, g], &mut runs);
        collect(0x6000, &[g], &mut runs);
        assert_eq!(runs, vec![(0x2000, 0x2000), (0x5000, 0x2000)]);
    }

    #[test]
    fn validates_runs_against_mappings() {
        let vmas = [(0x1000, 0x5000), (0x8000, 0x9000)];
        assert!(validate(&[(0x2000, 0x1000), (0x8000, 0x1000)], &vmas).is_ok());
        assert!(
            validate(&[(0x4000, 0x2000)], &vmas).is_err(),
            "crosses the end"
        );
        assert!(
            validate(&[(0x6000, 0x1000)], &vmas).is_err(),
            "between mappings"
        );
        assert!(validate(&[(0x2001, 0x1000)], &vmas).is_err(), "unaligned");
        assert!(validate(&[(0x2000, 0)], &vmas).is_err(), "empty");
        assert!(validate(&[(0x3000, 0x1000), (0x2000, 0x1000)], &vmas).is_err());
        assert!(validate(&[(u64::MAX - 0xfff, 0x1000)], &vmas).is_err());
    }
}
