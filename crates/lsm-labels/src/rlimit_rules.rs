//! Resource limits of a restored process (DESIGN 3.5: hard rlimits never
//! exceed what the restored identity could set). The kernel lets a task
//! raise a hard limit only with CAP_SYS_RESOURCE in the initial user
//! namespace (`do_prlimit`); a task without it may lower any limit and move
//! a soft limit up to its hard one. The restored task starts with the
//! caller's limits, so without CAP_SYS_RESOURCE each image hard limit is
//! capped at the caller's own.

use serde::Serialize;

/// One resource limit (`struct rlimit64`); `u64::MAX` is RLIM_INFINITY.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rlimit {
    pub resource: u32,
    pub soft: u64,
    pub hard: u64,
}

/// A hard limit lowered because the restored identity could not set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RlimitCapped {
    pub resource: u32,
    /// The image's hard limit.
    pub image_hard: u64,
    /// The hard limit applied (the caller's).
    pub hard: u64,
}

/// The kernel's name for a resource (`RLIMIT_NOFILE`), or its number.
pub fn resource_name(resource: u32) -> String {
    const NAMES: [&str; 16] = [
        "RLIMIT_CPU",
        "RLIMIT_FSIZE",
        "RLIMIT_DATA",
        "RLIMIT_STACK",
        "RLIMIT_CORE",
        "RLIMIT_RSS",
        "RLIMIT_NPROC",
        "RLIMIT_NOFILE",
        "RLIMIT_MEMLOCK",
        "RLIMIT_AS",
        "RLIMIT_LOCKS",
        "RLIMIT_SIGPENDING",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
    ];
    NAMES
        .get(resource as usize)
        .map_or_else(|| format!("resource {resource}"), |n| (*n).to_string())
}

/// A limit value as people read it.
pub fn limit_text(v: u64) -> String {
    if v == u64::MAX {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// The limits to apply for `image`'s: unchanged when the restored identity
/// may raise hard limits (`may_raise`), else each hard limit at most the
/// caller's (from `caller`; a resource the caller's list lacks is left to
/// the kernel, which refuses a raise), each soft limit at most its hard.
pub fn plan_rlimits(
    image: &[Rlimit],
    caller: &[Rlimit],
    may_raise: bool,
) -> (Vec<Rlimit>, Vec<RlimitCapped>) {
    let mut capped = Vec::new();
    let limits = image
        .iter()
        .map(|l| {
            let mut out = *l;
            out.soft = out.soft.min(out.hard);
            if may_raise {
                return out;
            }
            if let Some(c) = caller.iter().find(|c| c.resource == l.resource) {
                if out.hard > c.hard {
                    capped.push(RlimitCapped {
                        resource: l.resource,
                        image_hard: l.hard,
                        hard: c.hard,
                    });
                    out.hard = c.hard;
                    out.soft = out.soft.min(c.hard);
                }
            }
            out
        })
        .collect();
    (limits, capped)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOFILE: u32 = 7;

    fn lim(resource: u32, soft: u64, hard: u64) -> Rlimit {
        Rlimit {
            resource,
            soft,
            hard,
        }
    }

    #[test]
    fn hard_limits_are_capped_at_the_callers_without_cap_sys_resource() {
        let image = [lim(NOFILE, 1 << 20, 1 << 20), lim(3, 8 << 20, u64::MAX)];
        let caller = [lim(NOFILE, 1024, 4096), lim(3, 8 << 20, u64::MAX)];
        let (l, c) = plan_rlimits(&image, &caller, false);
        assert_eq!(l, [lim(NOFILE, 4096, 4096), lim(3, 8 << 20, u64::MAX)]);
        assert_eq!(
            c,
            [RlimitCapped {
                resource: NOFILE,
                image_hard: 1 << 20,
                hard: 4096
            }]
        );
        // With CAP_SYS_RESOURCE the image's limits stand.
        let (l, c) = plan_rlimits(&image, &caller, true);
        assert_eq!(l, image);
        assert!(c.is_empty());
    }

    #[test]
    fn lower_limits_and_soft_above_hard() {
        let caller = [lim(NOFILE, 1024, 4096)];
        let (l, c) = plan_rlimits(&[lim(NOFILE, 9000, 512)], &caller, false);
        assert_eq!(l, [lim(NOFILE, 512, 512)]);
        assert!(c.is_empty());
        assert_eq!(resource_name(NOFILE), "RLIMIT_NOFILE");
        assert_eq!(resource_name(99), "resource 99");
        assert_eq!(limit_text(u64::MAX), "unlimited");
    }
}
