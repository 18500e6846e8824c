//! The kernel's rules for a task changing its own credentials, as a pure
//! function: given the credentials an image recorded and the credentials
//! of the restorer (the caller, or the caller inside a new user namespace),
//! which parts can the restored task set on itself, and what does it get
//! for the parts it cannot (DESIGN 3.5, and the bounding set and securebits
//! side of 3.6).
//!
//! # The transition the engine performs
//!
//! The restored task starts with the restorer's credentials `C` and moves to
//! the image's `T` by itself, through the ordinary syscalls, in this order
//! (each step's rule is the kernel's; `P` is `C`'s permitted set, from which
//! the task can raise any capability into its effective set with capset(2)
//! whenever a step needs it, so a capability counts when it is *permitted*):
//!
//! 1. `prctl(PR_SET_KEEPCAPS, 1)` when the uid change would leave no root
//!    uid (otherwise `cap_emulate_setxuid` clears the permitted set);
//!    impossible when `SECBIT_KEEP_CAPS_LOCKED` is set without
//!    `SECBIT_KEEP_CAPS` or `SECBIT_NO_SETUID_FIXUP`, and then `P` becomes
//!    empty after step 4.
//! 2. `PR_CAPBSET_DROP` for every capability in `C.bounding \ T.bounding`:
//!    needs `CAP_SETPCAP`. A capability in `T.bounding` but not in
//!    `C.bounding` cannot be added back: the result is `T ∩ C` (narrower,
//!    so more confined).
//! 3. `setgroups(T.groups)`: needs `CAP_SETGID`, unless the set is already
//!    the caller's (then it is not called); never inside a user namespace
//!    whose `setgroups` is `deny`. `setresgid(T.r, T.e, T.s)`: needs
//!    `CAP_SETGID` or each id among `C`'s real/effective/saved gids;
//!    `setfsgid(T.fs)`: the same, or `T.fs` among `T`'s real/effective/saved.
//! 4. `setresuid(T.r, T.e, T.s)` then `setfsuid(T.fs)`: as for gids with
//!    `CAP_SETUID`; `setresuid` resets the fsuid to the euid, so without
//!    `CAP_SETUID` after the change `T.fs` must be among `T`'s r/e/s.
//! 5. `PR_CAP_AMBIENT_CLEAR_ALL`; `capset(P', P', T.inh)` where `P'` is the
//!    permitted set after step 4 (cap_capset: the new inheritable set must
//!    lie within old inheritable ∪ bounding, and, without `CAP_SETPCAP`,
//!    within old inheritable ∪ old permitted).
//! 6. `PR_CAP_AMBIENT_RAISE` for each of `T.ambient`: the capability must be
//!    permitted and inheritable, and `SECBIT_NO_CAP_AMBIENT_RAISE` unset.
//! 7. LSM labels are written here (by the verdict's plan, not this module),
//!    while `P'` still holds, so e.g. Smack's `CAP_MAC_ADMIN` is the
//!    caller's to use and the LSM decides.
//! 8. `PR_SET_SECUREBITS(T.securebits)` if different: needs `CAP_SETPCAP`
//!    (except, since Linux 6.14, for the exec bits and their locks);
//!    a locked bit cannot change and a lock cannot be released.
//! 9. `capset(T.eff, T.perm, T.inh)`: the permitted set can only shrink
//!    (`T.perm ⊆ P'`) and `T.eff ⊆ T.perm`.
//!
//! Whatever cannot be set is taken from the restorer (ids, groups,
//! securebits) or intersected with what the restorer has (capability sets),
//! so the result is never more privileged than the restorer and its
//! capability sets never exceed the image's.

use serde::Serialize;

use crate::task::TaskCreds;

/// Capability numbers used by the rules (linux/capability.h).
pub mod cap {
    pub const SETGID: u32 = 6;
    pub const SETUID: u32 = 7;
    pub const SETPCAP: u32 = 8;
    pub const SYS_ADMIN: u32 = 21;
    pub const SYS_RESOURCE: u32 = 24;
    pub const MAC_ADMIN: u32 = 33;
    pub const CHECKPOINT_RESTORE: u32 = 40;
    /// `CAP_LAST_CAP` of the kernels ckpt knows (6.x).
    pub const LAST: u32 = 40;
    /// Every capability the kernel knows (`CAP_FULL_SET`).
    pub const FULL_SET: u64 = (1u64 << (LAST + 1)) - 1;

    /// Kernel names, indexed by capability number.
    pub const NAMES: [&str; 41] = [
        "cap_chown",
        "cap_dac_override",
        "cap_dac_read_search",
        "cap_fowner",
        "cap_fsetid",
        "cap_kill",
        "cap_setgid",
        "cap_setuid",
        "cap_setpcap",
        "cap_linux_immutable",
        "cap_net_bind_service",
        "cap_net_broadcast",
        "cap_net_admin",
        "cap_net_raw",
        "cap_ipc_lock",
        "cap_ipc_owner",
        "cap_sys_module",
        "cap_sys_rawio",
        "cap_sys_chroot",
        "cap_sys_ptrace",
        "cap_sys_pacct",
        "cap_sys_admin",
        "cap_sys_boot",
        "cap_sys_nice",
        "cap_sys_resource",
        "cap_sys_time",
        "cap_sys_tty_config",
        "cap_mknod",
        "cap_lease",
        "cap_audit_write",
        "cap_audit_control",
        "cap_setfcap",
        "cap_mac_override",
        "cap_mac_admin",
        "cap_syslog",
        "cap_wake_alarm",
        "cap_block_suspend",
        "cap_audit_read",
        "cap_perfmon",
        "cap_bpf",
        "cap_checkpoint_restore",
    ];

    /// Whether `mask` holds capability `cap`.
    pub fn has(mask: u64, cap: u32) -> bool {
        cap < 64 && mask & (1u64 << cap) != 0
    }

    /// `cap_net_admin,cap_sys_admin` (unknown bits as `cap_N`), `none`,
    /// `all`, or `all except cap_sys_admin` when that is shorter.
    pub fn names(mask: u64) -> String {
        fn list(mask: u64) -> String {
            (0..64u32)
                .filter(|&c| has(mask, c))
                .map(|c| {
                    NAMES
                        .get(c as usize)
                        .map_or_else(|| format!("cap_{c}"), |n| (*n).to_string())
                })
                .collect::<Vec<_>>()
                .join(",")
        }
        let missing = FULL_SET & !mask;
        let extra = mask & !FULL_SET;
        let known = if mask & FULL_SET == 0 {
            None
        } else if missing == 0 {
            Some("all".to_string())
        } else if missing.count_ones() * 2 < FULL_SET.count_ones() {
            Some(format!("all except {}", list(missing)))
        } else {
            Some(list(mask & FULL_SET))
        };
        match (known, extra) {
            (None, 0) => "none".into(),
            (None, e) => list(e),
            (Some(k), 0) => k,
            (Some(k), e) => format!("{k} and {}", list(e)),
        }
    }
}

/// securebits (linux/securebits.h), including the 6.14 exec bits.
pub mod securebits {
    pub const NOROOT: u32 = 1 << 0;
    pub const NOROOT_LOCKED: u32 = 1 << 1;
    pub const NO_SETUID_FIXUP: u32 = 1 << 2;
    pub const NO_SETUID_FIXUP_LOCKED: u32 = 1 << 3;
    pub const KEEP_CAPS: u32 = 1 << 4;
    pub const KEEP_CAPS_LOCKED: u32 = 1 << 5;
    pub const NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;
    pub const NO_CAP_AMBIENT_RAISE_LOCKED: u32 = 1 << 7;
    pub const EXEC_RESTRICT_FILE: u32 = 1 << 8;
    pub const EXEC_RESTRICT_FILE_LOCKED: u32 = 1 << 9;
    pub const EXEC_DENY_INTERACTIVE: u32 = 1 << 10;
    pub const EXEC_DENY_INTERACTIVE_LOCKED: u32 = 1 << 11;
    /// The settable bits (`SECURE_ALL_BITS`).
    pub const ALL_BITS: u32 = 0x555;
    /// Their locks (`SECURE_ALL_LOCKS`).
    pub const ALL_LOCKS: u32 = 0xaaa;
    /// Bits a task may change without CAP_SETPCAP (Linux 6.14+,
    /// `SECURE_ALL_UNPRIVILEGED`), with their locks.
    pub const UNPRIVILEGED_AND_LOCKS: u32 = EXEC_RESTRICT_FILE
        | EXEC_RESTRICT_FILE_LOCKED
        | EXEC_DENY_INTERACTIVE
        | EXEC_DENY_INTERACTIVE_LOCKED;
    /// Bits whose loss makes a task less confined: every lock (it pins a
    /// bit) and the bits that forbid something.
    pub const RESTRICTING: u32 =
        ALL_LOCKS | NOROOT | NO_CAP_AMBIENT_RAISE | EXEC_RESTRICT_FILE | EXEC_DENY_INTERACTIVE;
}

/// A range of ids mapped in a user namespace, as seen from inside it (the
/// first and third columns of `/proc/self/uid_map`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct IdRange {
    pub first: u32,
    pub count: u32,
}

impl IdRange {
    /// One id.
    pub fn single(id: u32) -> Self {
        IdRange {
            first: id,
            count: 1,
        }
    }
    pub fn contains(&self, id: u32) -> bool {
        id >= self.first && u64::from(id) < u64::from(self.first) + u64::from(self.count)
    }
}

/// Which ids the restorer's user namespace can express. `None` in
/// [`resolve`] means any id (the initial namespace, or one the engine did
/// not narrow down).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct IdLimits {
    /// uids mapped in the restorer's user namespace.
    pub uids: Vec<IdRange>,
    /// gids mapped in the restorer's user namespace.
    pub gids: Vec<IdRange>,
    /// `/proc/self/setgroups` is `allow`.
    pub setgroups_allowed: bool,
}

/// Most lines in a uid_map/gid_map (the kernel's limit is 340).
const MAX_MAP_LINES: usize = 340;

impl IdLimits {
    /// From the text of `/proc/self/uid_map`, `/proc/self/gid_map` and
    /// `/proc/self/setgroups`. `None` when a map is malformed (then the
    /// caller should pass no limits and let the kernel refuse unmapped ids).
    pub fn from_proc(uid_map: &str, gid_map: &str, setgroups: &str) -> Option<Self> {
        fn parse(map: &str) -> Option<Vec<IdRange>> {
            let mut out = Vec::new();
            for line in map
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(MAX_MAP_LINES)
            {
                let mut f = line.split_whitespace().map(str::parse::<u32>);
                let (Some(Ok(first)), Some(Ok(_outer)), Some(Ok(count)), None) =
                    (f.next(), f.next(), f.next(), f.next())
                else {
                    return None;
                };
                out.push(IdRange { first, count });
            }
            Some(out)
        }
        Some(IdLimits {
            uids: parse(uid_map)?,
            gids: parse(gid_map)?,
            setgroups_allowed: setgroups.trim() != "deny",
        })
    }

    pub fn maps_uid(&self, id: u32) -> bool {
        self.uids.iter().any(|r| r.contains(id))
    }

    pub fn maps_gid(&self, id: u32) -> bool {
        self.gids.iter().any(|r| r.contains(id))
    }
}

/// One part of the credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CredsComponent {
    Uids,
    Gids,
    Groups,
    PermittedCaps,
    EffectiveCaps,
    InheritableCaps,
    AmbientCaps,
    BoundingSet,
    Securebits,
}

impl std::fmt::Display for CredsComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CredsComponent::Uids => "uids",
            CredsComponent::Gids => "gids",
            CredsComponent::Groups => "supplementary groups",
            CredsComponent::PermittedCaps => "permitted capabilities",
            CredsComponent::EffectiveCaps => "effective capabilities",
            CredsComponent::InheritableCaps => "inheritable capabilities",
            CredsComponent::AmbientCaps => "ambient capabilities",
            CredsComponent::BoundingSet => "capability bounding set",
            CredsComponent::Securebits => "securebits",
        })
    }
}

/// Why a component cannot be set to the image's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CredsRule {
    /// Not among the caller's own ids and no CAP_SETUID.
    NeedsCapSetuid,
    /// Not among the caller's own ids and no CAP_SETGID.
    NeedsCapSetgid,
    /// Changing it needs CAP_SETPCAP.
    NeedsCapSetpcap,
    /// An id is not mapped in the restorer's user namespace.
    IdNotMapped,
    /// `setgroups` is denied in the restorer's user namespace.
    SetgroupsDenied,
    /// The filesystem id is not among the new real/effective/saved ids.
    FsidNotAmongIds,
    /// Capabilities the caller does not have.
    BeyondCaller,
    /// Leaving the root uids clears the permitted set and the caller's
    /// securebits lock `SECBIT_KEEP_CAPS` off.
    ClearedByUidChange,
    /// `SECBIT_NO_CAP_AMBIENT_RAISE` is set for the caller.
    AmbientRaiseForbidden,
    /// A locked securebit would change, or a lock be released.
    SecurebitLocked,
    /// The image's values break a kernel invariant (e.g. effective not
    /// within permitted, unknown securebits): the image is corrupt or forged.
    Inconsistent,
    /// The image's principal (its author, DESIGN 3.5) could not have set
    /// them, so the image's claim is worth nothing.
    NotVouched,
}

impl std::fmt::Display for CredsRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CredsRule::NeedsCapSetuid => "they are not among your own uids and you lack CAP_SETUID",
            CredsRule::NeedsCapSetgid => "they are not among your own gids and you lack CAP_SETGID",
            CredsRule::NeedsCapSetpcap => "changing them needs CAP_SETPCAP, which you lack",
            CredsRule::IdNotMapped => "an id is not mapped in your user namespace",
            CredsRule::SetgroupsDenied => "setgroups is denied in your user namespace",
            CredsRule::FsidNotAmongIds => {
                "the filesystem id is not among the real/effective/saved ids and you lack the capability to set it"
            }
            CredsRule::BeyondCaller => "you do not hold these capabilities yourself",
            CredsRule::ClearedByUidChange => {
                "leaving uid 0 clears capabilities and your securebits lock keep-caps off"
            }
            CredsRule::AmbientRaiseForbidden => "your securebits forbid raising ambient capabilities",
            CredsRule::SecurebitLocked => "a securebit you would change is locked",
            CredsRule::Inconsistent => "the image's values break a kernel invariant (corrupt or forged image)",
            CredsRule::NotVouched => "the image's author could not have set them",
        })
    }
}

/// One component that will not be the image's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CredsChange {
    pub component: CredsComponent,
    /// The image's value, formatted.
    pub image: String,
    /// The value that will be applied, formatted.
    pub applied: String,
    pub rule: CredsRule,
}

impl std::fmt::Display for CredsChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} instead of the image's {} ({})",
            self.component, self.applied, self.image, self.rule
        )
    }
}

/// The outcome of [`resolve`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CredsResolution {
    /// The credentials the restored task will set on itself.
    pub applied: TaskCreds,
    /// Every component that differs from the image's, with the rule.
    pub changes: Vec<CredsChange>,
    /// Bounding-set capabilities the image dropped and the restorer cannot
    /// drop (no CAP_SETPCAP): non-zero means confinement would be lost.
    pub bounding_not_dropped: u64,
    /// Restricting securebits the image had that the result lacks:
    /// non-zero means confinement would be lost.
    pub securebits_lost: u32,
    /// The restorer's permitted set after the id change (step 4); what is
    /// left for installing seccomp filters and writing labels.
    pub permitted_after_id_change: u64,
}

impl CredsResolution {
    /// The image's credentials are applied unchanged.
    pub fn exact(&self) -> bool {
        self.changes.is_empty()
    }
}

fn has_root(ids: &[u32; 4]) -> bool {
    ids[..3].contains(&0)
}

/// The id rule shared by uids and gids (setresuid/setfsuid, setresgid/setfsgid).
fn ids_settable(
    target: &[u32; 4],
    current: &[u32; 4],
    privileged: bool,
    privileged_for_fsid: bool,
    mapped: &dyn Fn(u32) -> bool,
    unprivileged_rule: CredsRule,
) -> Result<(), CredsRule> {
    if target == current {
        return Ok(());
    }
    if target.iter().any(|&id| !mapped(id)) {
        return Err(CredsRule::IdNotMapped);
    }
    if !privileged && !target[..3].iter().all(|id| current[..3].contains(id)) {
        return Err(unprivileged_rule);
    }
    if !privileged_for_fsid && !target[..3].contains(&target[3]) {
        return Err(CredsRule::FsidNotAmongIds);
    }
    Ok(())
}

fn sorted(groups: &[u32]) -> Vec<u32> {
    let mut g = groups.to_vec();
    g.sort_unstable();
    g.dedup();
    g
}

fn fmt_ids(ids: &[u32; 4]) -> String {
    format!("{}/{}/{}/{}", ids[0], ids[1], ids[2], ids[3])
}

fn fmt_groups(g: &[u32]) -> String {
    if g.is_empty() {
        return "none".into();
    }
    g.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Decide, component by component, which of `image`'s credentials a task
/// that starts with `restorer`'s credentials can set on itself. See the
/// module documentation for the order and the rules.
pub fn resolve(
    image: &TaskCreds,
    restorer: &TaskCreds,
    limits: Option<&IdLimits>,
) -> CredsResolution {
    use cap::has;
    use securebits as sb;

    let (t, c) = (image, restorer);
    let p = c.caps.permitted;
    let mut changes = Vec::new();
    let mut change = |component, image: String, applied: String, rule| {
        changes.push(CredsChange {
            component,
            image,
            applied,
            rule,
        })
    };

    // Step 1: can permitted capabilities survive leaving the root uids?
    let keep_caps_possible = c.securebits & (sb::KEEP_CAPS | sb::NO_SETUID_FIXUP) != 0
        || c.securebits & sb::KEEP_CAPS_LOCKED == 0;

    // Steps 3-4: ids. The uid change decides what remains permitted.
    let uid_clears = |to: &[u32; 4]| has_root(&c.uids) && !has_root(to) && !keep_caps_possible;
    let uids = match ids_settable(
        &t.uids,
        &c.uids,
        has(p, cap::SETUID),
        has(p, cap::SETUID) && !uid_clears(&t.uids),
        &|id| match limits {
            Some(l) => l.maps_uid(id),
            None => true,
        },
        CredsRule::NeedsCapSetuid,
    ) {
        Ok(()) => t.uids,
        Err(rule) => {
            change(
                CredsComponent::Uids,
                fmt_ids(&t.uids),
                fmt_ids(&c.uids),
                rule,
            );
            c.uids
        }
    };
    let gids = match ids_settable(
        &t.gids,
        &c.gids,
        has(p, cap::SETGID),
        has(p, cap::SETGID),
        &|id| match limits {
            Some(l) => l.maps_gid(id),
            None => true,
        },
        CredsRule::NeedsCapSetgid,
    ) {
        Ok(()) => t.gids,
        Err(rule) => {
            change(
                CredsComponent::Gids,
                fmt_ids(&t.gids),
                fmt_ids(&c.gids),
                rule,
            );
            c.gids
        }
    };
    let groups = if sorted(&t.groups) == sorted(&c.groups) {
        t.groups.clone()
    } else {
        let rule = match limits {
            Some(l) if !l.setgroups_allowed => Some(CredsRule::SetgroupsDenied),
            Some(l) if t.groups.iter().any(|&g| !l.maps_gid(g)) => Some(CredsRule::IdNotMapped),
            _ if !has(p, cap::SETGID) => Some(CredsRule::NeedsCapSetgid),
            _ => None,
        };
        match rule {
            None => t.groups.clone(),
            Some(rule) => {
                change(
                    CredsComponent::Groups,
                    fmt_groups(&t.groups),
                    fmt_groups(&c.groups),
                    rule,
                );
                c.groups.clone()
            }
        }
    };
    let p_after = if uid_clears(&uids) { 0 } else { p };

    // Step 2: bounding set (before the id change, with the caller's caps).
    let must_drop = c.caps.bounding & !t.caps.bounding;
    let (bounding, bounding_not_dropped) = if must_drop == 0 || has(p, cap::SETPCAP) {
        (t.caps.bounding & c.caps.bounding, 0)
    } else {
        (c.caps.bounding, must_drop)
    };
    if bounding != t.caps.bounding {
        let rule = if bounding_not_dropped != 0 {
            CredsRule::NeedsCapSetpcap
        } else {
            CredsRule::BeyondCaller
        };
        change(
            CredsComponent::BoundingSet,
            cap::names(t.caps.bounding),
            cap::names(bounding),
            rule,
        );
    }

    // Steps 5 and 9: capability sets.
    let caps_rule = |lost_to_uid_change: bool| {
        if lost_to_uid_change {
            CredsRule::ClearedByUidChange
        } else {
            CredsRule::BeyondCaller
        }
    };
    let cleared = p_after != p;
    let permitted = t.caps.permitted & p_after;
    if permitted != t.caps.permitted {
        change(
            CredsComponent::PermittedCaps,
            cap::names(t.caps.permitted),
            cap::names(permitted),
            caps_rule(cleared && t.caps.permitted & p == t.caps.permitted),
        );
    }
    let effective = t.caps.effective & permitted;
    if effective != t.caps.effective {
        let rule = if t.caps.effective & !t.caps.permitted != 0 {
            CredsRule::Inconsistent
        } else {
            caps_rule(cleared)
        };
        change(
            CredsComponent::EffectiveCaps,
            cap::names(t.caps.effective),
            cap::names(effective),
            rule,
        );
    }
    let mut inheritable_allowed = c.caps.inheritable | bounding;
    if !has(p_after, cap::SETPCAP) {
        inheritable_allowed &= c.caps.inheritable | p_after;
    }
    let inheritable = t.caps.inheritable & inheritable_allowed;
    if inheritable != t.caps.inheritable {
        change(
            CredsComponent::InheritableCaps,
            cap::names(t.caps.inheritable),
            cap::names(inheritable),
            CredsRule::BeyondCaller,
        );
    }
    // Step 6: ambient.
    let ambient = if c.securebits & sb::NO_CAP_AMBIENT_RAISE != 0 {
        0
    } else {
        t.caps.ambient & permitted & inheritable
    };
    if ambient != t.caps.ambient {
        let rule = if t.caps.ambient & !(t.caps.permitted & t.caps.inheritable) != 0 {
            CredsRule::Inconsistent
        } else if c.securebits & sb::NO_CAP_AMBIENT_RAISE != 0 {
            CredsRule::AmbientRaiseForbidden
        } else {
            caps_rule(cleared)
        };
        change(
            CredsComponent::AmbientCaps,
            cap::names(t.caps.ambient),
            cap::names(ambient),
            rule,
        );
    }

    // Step 8: securebits.
    let securebits = if t.securebits == c.securebits {
        t.securebits
    } else {
        let (old, new) = (c.securebits, t.securebits);
        let rule = if new & !(sb::ALL_BITS | sb::ALL_LOCKS) != 0 {
            Some(CredsRule::Inconsistent)
        } else if ((old & sb::ALL_LOCKS) >> 1) & (old ^ new) != 0 || old & sb::ALL_LOCKS & !new != 0
        {
            Some(CredsRule::SecurebitLocked)
        } else if !has(p_after, cap::SETPCAP) && (old ^ new) & !sb::UNPRIVILEGED_AND_LOCKS != 0 {
            Some(CredsRule::NeedsCapSetpcap)
        } else {
            None
        };
        match rule {
            None => new,
            Some(rule) => {
                change(
                    CredsComponent::Securebits,
                    format!("{new:#x}"),
                    format!("{old:#x}"),
                    rule,
                );
                old
            }
        }
    };
    let securebits_lost = t.securebits & sb::RESTRICTING & !securebits;

    CredsResolution {
        applied: TaskCreds {
            uids,
            gids,
            groups,
            caps: crate::task::CapSets {
                inheritable,
                permitted,
                effective,
                bounding,
                ambient,
            },
            securebits,
        },
        changes,
        bounding_not_dropped,
        securebits_lost,
        permitted_after_id_change: p_after,
    }
}

/// What an image's principal (DESIGN 3.5, `crate::principal`) could have
/// set on its own tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "authority", rename_all = "snake_case")]
pub enum PrincipalAuthority {
    /// Anything (the caller itself, or root): the caller's own limits are
    /// the only ones.
    Any,
    /// An unprivileged user: its own uid, one of its gids, a subset of its
    /// groups, and no capabilities.
    Ids {
        uid: u32,
        gids: Vec<u32>,
        groups: Vec<u32>,
    },
    /// Nothing (a file anyone could write, a stream of unknown origin).
    Nothing,
}

/// The components of `image` that `who` could not have set. The bounding
/// set and securebits are not claims of privilege (they only restrict) and
/// stay with the confinement rules of DESIGN 3.6.
pub fn principal_could_not_set(image: &TaskCreds, who: &PrincipalAuthority) -> Vec<CredsComponent> {
    let caps = [
        (CredsComponent::PermittedCaps, image.caps.permitted),
        (CredsComponent::EffectiveCaps, image.caps.effective),
        (CredsComponent::InheritableCaps, image.caps.inheritable),
        (CredsComponent::AmbientCaps, image.caps.ambient),
    ];
    let held_caps = caps.iter().filter(|(_, m)| *m != 0).map(|(c, _)| *c);
    match who {
        PrincipalAuthority::Any => Vec::new(),
        PrincipalAuthority::Nothing => [
            CredsComponent::Uids,
            CredsComponent::Gids,
            CredsComponent::Groups,
        ]
        .into_iter()
        .chain(held_caps)
        .collect(),
        PrincipalAuthority::Ids { uid, gids, groups } => {
            let mut out = Vec::new();
            if image.uids.iter().any(|u| u != uid) {
                out.push(CredsComponent::Uids);
            }
            if image.gids.iter().any(|g| !gids.contains(g)) {
                out.push(CredsComponent::Gids);
            }
            if image.groups.iter().any(|g| !groups.contains(g)) {
                out.push(CredsComponent::Groups);
            }
            out.extend(held_caps);
            out
        }
    }
}

fn is_id_component(c: CredsComponent) -> bool {
    matches!(
        c,
        CredsComponent::Uids | CredsComponent::Gids | CredsComponent::Groups
    )
}

/// Narrows `res` (the image's credentials as `restorer` can set them) to
/// what the principal vouches for: a capability set the principal could
/// not have held becomes empty, and an id component it could not have set
/// comes from `restorer`. Each component that changes is recorded with
/// [`CredsRule::NotVouched`]. Returns the id components taken from the
/// restorer for that reason (the verdict refuses when the restorer holds
/// privilege, since its ids would then run the image's code).
pub fn limit_to_principal(
    res: &mut CredsResolution,
    image: &TaskCreds,
    restorer: &TaskCreds,
    who: &PrincipalAuthority,
) -> Vec<CredsComponent> {
    let denied = principal_could_not_set(image, who);
    let a = &mut res.applied;
    let mut from_restorer = Vec::new();
    for &component in &denied {
        let after = match component {
            CredsComponent::Uids => {
                a.uids = restorer.uids;
                fmt_ids(&a.uids)
            }
            CredsComponent::Gids => {
                a.gids = restorer.gids;
                fmt_ids(&a.gids)
            }
            CredsComponent::Groups => {
                a.groups = restorer.groups.clone();
                fmt_groups(&a.groups)
            }
            // Effective and ambient lie within permitted, ambient within
            // inheritable: they go with them.
            CredsComponent::PermittedCaps => {
                (a.caps.permitted, a.caps.effective, a.caps.ambient) = (0, 0, 0);
                cap::names(0)
            }
            CredsComponent::EffectiveCaps => {
                a.caps.effective = 0;
                cap::names(0)
            }
            CredsComponent::InheritableCaps => {
                (a.caps.inheritable, a.caps.ambient) = (0, 0);
                cap::names(0)
            }
            CredsComponent::AmbientCaps => {
                a.caps.ambient = 0;
                cap::names(0)
            }
            _ => continue,
        };
        if is_id_component(component) {
            from_restorer.push(component);
        }
        let image_value = match component {
            CredsComponent::Uids => fmt_ids(&image.uids),
            CredsComponent::Gids => fmt_ids(&image.gids),
            CredsComponent::Groups => fmt_groups(&image.groups),
            CredsComponent::PermittedCaps => cap::names(image.caps.permitted),
            CredsComponent::EffectiveCaps => cap::names(image.caps.effective),
            CredsComponent::InheritableCaps => cap::names(image.caps.inheritable),
            _ => cap::names(image.caps.ambient),
        };
        // The principal's denial explains the value, even where the
        // restorer could not have set the image's either.
        if after != image_value {
            res.changes.retain(|c| c.component != component);
            res.changes.push(CredsChange {
                component,
                image: image_value,
                applied: after,
                rule: CredsRule::NotVouched,
            });
        }
    }
    from_restorer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::CapSets;

    fn root() -> TaskCreds {
        TaskCreds {
            uids: [0; 4],
            gids: [0; 4],
            groups: vec![0],
            caps: CapSets {
                inheritable: 0,
                permitted: cap::FULL_SET,
                effective: cap::FULL_SET,
                bounding: cap::FULL_SET,
                ambient: 0,
            },
            securebits: 0,
        }
    }

    fn user(uid: u32) -> TaskCreds {
        TaskCreds {
            uids: [uid; 4],
            gids: [uid; 4],
            groups: vec![uid, 100],
            caps: CapSets {
                bounding: cap::FULL_SET,
                ..Default::default()
            },
            securebits: 0,
        }
    }

    fn components(r: &CredsResolution) -> Vec<(CredsComponent, CredsRule)> {
        r.changes.iter().map(|c| (c.component, c.rule)).collect()
    }

    #[test]
    fn capability_names_are_short() {
        assert_eq!(cap::names(0), "none");
        assert_eq!(cap::names(cap::FULL_SET), "all");
        assert_eq!(cap::names(1 << 12 | 1 << 13), "cap_net_admin,cap_net_raw");
        assert_eq!(
            cap::names(cap::FULL_SET & !(1 << cap::SYS_ADMIN)),
            "all except cap_sys_admin"
        );
        assert_eq!(cap::names(1 << 50), "cap_50");
        assert_eq!(cap::names(cap::FULL_SET | 1 << 41), "all and cap_41");
    }

    #[test]
    fn root_restorer_sets_anything() {
        let mut t = user(1000);
        t.uids = [1000, 1001, 1002, 1001];
        t.caps.permitted = 1 << 10;
        t.caps.effective = 1 << 10;
        t.caps.inheritable = 1 << 10;
        t.caps.ambient = 1 << 10;
        t.caps.bounding = 1 << 10 | 1 << 12;
        t.securebits = securebits::NOROOT | securebits::NOROOT_LOCKED;
        let r = resolve(&t, &root(), None);
        assert!(r.exact(), "{:?}", r.changes);
        assert_eq!(r.applied, t);
    }

    #[test]
    fn unprivileged_own_creds_are_exact_and_other_uid_is_rederived() {
        let me = user(1000);
        assert!(resolve(&me, &me, None).exact());
        let other = user(1001);
        let r = resolve(&other, &me, None);
        assert_eq!(
            components(&r),
            [
                (CredsComponent::Uids, CredsRule::NeedsCapSetuid),
                (CredsComponent::Gids, CredsRule::NeedsCapSetgid),
                (CredsComponent::Groups, CredsRule::NeedsCapSetgid),
            ]
        );
        assert_eq!(r.applied, me);
    }

    #[test]
    fn unprivileged_may_pick_among_own_ids_but_fsuid_follows_setresuid() {
        let mut me = user(1000);
        me.uids = [1000, 1000, 2000, 1000];
        let mut t = me.clone();
        t.uids = [2000, 2000, 1000, 2000];
        assert!(resolve(&t, &me, None).exact());
        // fsuid 1000 is one of the caller's but not of the new r/e/s.
        t.uids = [2000, 2000, 2000, 1000];
        let r = resolve(&t, &me, None);
        assert_eq!(
            components(&r),
            [(CredsComponent::Uids, CredsRule::FsidNotAmongIds)]
        );
    }

    #[test]
    fn groups_compare_as_sets() {
        let me = user(1000);
        let mut t = me.clone();
        t.groups = vec![100, 1000, 100];
        assert!(resolve(&t, &me, None).exact());
    }

    #[test]
    fn caps_are_intersected_with_the_callers() {
        let mut me = user(1000);
        me.caps.permitted = 1 << 10 | 1 << 12;
        me.caps.effective = 1 << 10;
        let mut t = user(1000);
        t.caps.permitted = 1 << 10 | 1 << 13;
        t.caps.effective = 1 << 10 | 1 << 13;
        let r = resolve(&t, &me, None);
        assert_eq!(r.applied.caps.permitted, 1 << 10);
        assert_eq!(r.applied.caps.effective, 1 << 10);
        assert_eq!(
            components(&r),
            [
                (CredsComponent::PermittedCaps, CredsRule::BeyondCaller),
                (CredsComponent::EffectiveCaps, CredsRule::BeyondCaller),
            ]
        );
        assert!(
            r.changes[0].to_string().contains("cap_net_raw"),
            "{}",
            r.changes[0]
        );
    }

    #[test]
    fn inheritable_needs_permitted_or_setpcap_and_bounding() {
        let mut me = user(1000);
        me.caps.permitted = 1 << 10;
        let mut t = user(1000);
        t.caps.inheritable = 1 << 10 | 1 << 11;
        let r = resolve(&t, &me, None);
        assert_eq!(r.applied.caps.inheritable, 1 << 10);
        // With CAP_SETPCAP any bit within the bounding set.
        me.caps.permitted |= 1 << cap::SETPCAP;
        me.caps.bounding = cap::FULL_SET & !(1 << 11);
        t.caps.bounding = me.caps.bounding;
        let r = resolve(&t, &me, None);
        assert_eq!(r.applied.caps.inheritable, 1 << 10);
        me.caps.bounding = cap::FULL_SET;
        t.caps.bounding = cap::FULL_SET;
        assert!(resolve(&t, &me, None).exact());
    }

    #[test]
    fn bounding_drop_needs_setpcap_and_cannot_widen() {
        let me = user(1000);
        let mut t = user(1000);
        t.caps.bounding = cap::FULL_SET & !(1 << cap::SYS_ADMIN);
        let r = resolve(&t, &me, None);
        assert_eq!(r.bounding_not_dropped, 1 << cap::SYS_ADMIN);
        assert_eq!(
            components(&r),
            [(CredsComponent::BoundingSet, CredsRule::NeedsCapSetpcap)]
        );
        let r = resolve(&t, &root(), None);
        assert!(r.exact());
        // Image wider than the caller: narrowed, not an error.
        let mut narrow = user(1000);
        narrow.caps.bounding = 0xff;
        t.caps.bounding = 0xfff;
        let r = resolve(&t, &narrow, None);
        assert_eq!(r.applied.caps.bounding, 0xff);
        assert_eq!(r.bounding_not_dropped, 0);
        assert_eq!(
            components(&r),
            [(CredsComponent::BoundingSet, CredsRule::BeyondCaller)]
        );
    }

    #[test]
    fn keep_caps_locked_off_clears_caps_when_leaving_root() {
        let mut r0 = root();
        r0.securebits = securebits::KEEP_CAPS_LOCKED;
        let mut t = user(1000);
        t.caps.permitted = 1 << 10;
        t.caps.effective = 1 << 10;
        let r = resolve(&t, &r0, None);
        assert_eq!(r.applied.uids, [1000; 4]);
        assert_eq!(r.applied.caps.permitted, 0);
        assert_eq!(r.permitted_after_id_change, 0);
        assert!(components(&r)
            .contains(&(CredsComponent::PermittedCaps, CredsRule::ClearedByUidChange)));
    }

    #[test]
    fn securebits_rules() {
        let mut r0 = root();
        let mut t = root();
        t.securebits = securebits::NOROOT | securebits::NOROOT_LOCKED;
        assert!(resolve(&t, &r0, None).exact());
        // A lock cannot be released.
        r0.securebits = securebits::NOROOT | securebits::NOROOT_LOCKED;
        t.securebits = 0;
        let r = resolve(&t, &r0, None);
        assert_eq!(
            components(&r),
            [(CredsComponent::Securebits, CredsRule::SecurebitLocked)]
        );
        // Releasing only the lock, keeping the bit, is refused as well.
        t.securebits = securebits::NOROOT;
        let r = resolve(&t, &r0, None);
        assert_eq!(
            components(&r),
            [(CredsComponent::Securebits, CredsRule::SecurebitLocked)]
        );
        // Unprivileged: any change needs CAP_SETPCAP; restricting bits lost.
        let me = user(1000);
        let mut t = user(1000);
        t.securebits = securebits::NOROOT;
        let r = resolve(&t, &me, None);
        assert_eq!(
            components(&r),
            [(CredsComponent::Securebits, CredsRule::NeedsCapSetpcap)]
        );
        assert_eq!(r.securebits_lost, securebits::NOROOT);
        // Since 6.14 the exec bits need no privilege.
        t.securebits = securebits::EXEC_RESTRICT_FILE | securebits::EXEC_RESTRICT_FILE_LOCKED;
        assert!(resolve(&t, &me, None).exact());
        // Unknown bits are an inconsistent image.
        t.securebits = 1 << 20;
        let r = resolve(&t, &root(), None);
        assert_eq!(
            components(&r),
            [(CredsComponent::Securebits, CredsRule::Inconsistent)]
        );
    }

    #[test]
    fn ambient_is_limited_and_inconsistent_images_detected() {
        let mut t = root();
        t.caps.ambient = 1 << 10; // not in inheritable: breaks the invariant
        let r = resolve(&t, &root(), None);
        assert_eq!(
            components(&r),
            [(CredsComponent::AmbientCaps, CredsRule::Inconsistent)]
        );
        let mut r0 = root();
        r0.securebits = securebits::NO_CAP_AMBIENT_RAISE;
        t.caps.inheritable = 1 << 10;
        t.securebits = securebits::NO_CAP_AMBIENT_RAISE;
        let r = resolve(&t, &r0, None);
        assert_eq!(
            components(&r),
            [(
                CredsComponent::AmbientCaps,
                CredsRule::AmbientRaiseForbidden
            )]
        );
    }

    #[test]
    fn id_limits_of_a_user_namespace_apply_even_with_caps() {
        let limits = IdLimits::from_proc(
            "      1000       1000          1\n",
            "1000 1000 1",
            "deny\n",
        )
        .unwrap();
        assert_eq!(limits.uids, [IdRange::single(1000)]);
        assert!(!limits.setgroups_allowed);
        assert!(IdLimits::from_proc("0 0", "", "allow").is_none());
        let all = IdLimits::from_proc("0 0 4294967295", "0 0 4294967295", "allow").unwrap();
        assert!(all.maps_uid(u32::MAX - 1) && all.maps_gid(0) && all.setgroups_allowed);
        let mut inside = root();
        inside.uids = [1000; 4];
        inside.gids = [1000; 4];
        inside.groups = vec![1000, 100];
        let mut t = user(1000);
        t.groups = vec![1000, 100];
        t.caps.permitted = 1 << 12;
        t.caps.effective = 1 << 12;
        let r = resolve(&t, &inside, Some(&limits));
        assert!(r.exact(), "{:?}", r.changes);
        let r = resolve(&user(0), &inside, Some(&limits));
        assert!(components(&r).contains(&(CredsComponent::Uids, CredsRule::IdNotMapped)));
        assert!(components(&r).contains(&(CredsComponent::Groups, CredsRule::SetgroupsDenied)));
    }

    fn owner_1000() -> PrincipalAuthority {
        PrincipalAuthority::Ids {
            uid: 1000,
            gids: vec![1000, 100],
            groups: vec![1000, 100],
        }
    }

    #[test]
    fn principal_any_vouches_for_everything() {
        assert!(principal_could_not_set(&root(), &PrincipalAuthority::Any).is_empty());
        let mut r = resolve(&root(), &root(), None);
        let from = limit_to_principal(&mut r, &root(), &root(), &PrincipalAuthority::Any);
        assert!(from.is_empty() && r.exact());
    }

    #[test]
    fn owner_vouches_for_own_ids_and_no_capabilities() {
        let who = owner_1000();
        assert!(principal_could_not_set(&user(1000), &who).is_empty());
        // Fewer groups than the owner has: fine.
        let mut t = user(1000);
        t.groups = vec![1000];
        assert!(principal_could_not_set(&t, &who).is_empty());
        // A narrower bounding set and restricting securebits only confine.
        t.caps.bounding = 1 << 10;
        t.securebits = securebits::NOROOT;
        assert!(principal_could_not_set(&t, &who).is_empty());
        // uid 0, a foreign gid, a foreign group, capabilities: not vouched.
        let mut t = root();
        t.gids = [1000, 1000, 1000, 0];
        assert_eq!(
            principal_could_not_set(&t, &who),
            [
                CredsComponent::Uids,
                CredsComponent::Gids,
                CredsComponent::Groups,
                CredsComponent::PermittedCaps,
                CredsComponent::EffectiveCaps,
            ]
        );
        let mut t = user(1000);
        t.uids[2] = 1001;
        t.caps.inheritable = 1 << 10;
        t.caps.ambient = 1 << 10;
        assert_eq!(
            principal_could_not_set(&t, &who),
            [
                CredsComponent::Uids,
                CredsComponent::InheritableCaps,
                CredsComponent::AmbientCaps,
            ]
        );
    }

    #[test]
    fn nobody_vouches_for_nothing() {
        let who = PrincipalAuthority::Nothing;
        assert_eq!(
            principal_could_not_set(&user(1000), &who),
            [
                CredsComponent::Uids,
                CredsComponent::Gids,
                CredsComponent::Groups
            ]
        );
    }

    #[test]
    fn root_restoring_an_owners_uid_0_claim_keeps_root_ids_and_reports_them() {
        // What root could set (everything), narrowed to the owner's word:
        // the ids fall back to root's own, which the verdict refuses.
        let mut t = root();
        t.caps.permitted = cap::FULL_SET;
        let mut r = resolve(&t, &root(), None);
        assert!(r.exact());
        let from = limit_to_principal(&mut r, &t, &root(), &owner_1000());
        assert_eq!(
            from,
            [
                CredsComponent::Uids,
                CredsComponent::Gids,
                CredsComponent::Groups
            ]
        );
        assert_eq!(r.applied.caps.permitted, 0);
        assert_eq!(r.applied.caps.effective, 0);
        assert_eq!(
            components(&r),
            [
                (CredsComponent::PermittedCaps, CredsRule::NotVouched),
                (CredsComponent::EffectiveCaps, CredsRule::NotVouched),
            ]
        );
    }

    #[test]
    fn owners_own_uid_with_capabilities_keeps_the_uid_and_drops_the_caps() {
        let mut t = user(1000);
        t.groups = vec![1000, 100];
        t.caps.permitted = 1 << 12;
        t.caps.effective = 1 << 12;
        let mut r = resolve(&t, &root(), None);
        let from = limit_to_principal(&mut r, &t, &root(), &owner_1000());
        assert!(from.is_empty());
        assert_eq!(r.applied.uids, [1000; 4]);
        assert_eq!((r.applied.caps.permitted, r.applied.caps.effective), (0, 0));
        assert!(r.changes.iter().all(|c| c.rule == CredsRule::NotVouched));
        assert!(r.changes[0].to_string().contains("could not have set"));
    }

    #[test]
    fn unvouched_ids_come_from_an_unprivileged_restorer() {
        let me = user(1000);
        let mut t = user(1000);
        t.uids = [1000, 1000, 1000, 1000];
        let mut r = resolve(&t, &me, None);
        let from = limit_to_principal(&mut r, &t, &me, &PrincipalAuthority::Nothing);
        assert_eq!(from.len(), 3);
        assert_eq!(r.applied, me);
        // Equal values: nothing to report.
        assert!(r.changes.is_empty());
    }

    /// The two invariants of DESIGN 3.5 over many generated pairs: the
    /// result never exceeds the restorer, and its capability sets never
    /// exceed the image's; the result is always kernel-consistent.
    #[test]
    fn result_never_exceeds_restorer_or_image() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let ids = [0u32, 1000, 1001];
        for _ in 0..20_000 {
            let gen = |n: &mut dyn FnMut() -> u64| {
                let mask = 0xf0f | (1 << cap::SETUID) | (1 << cap::SETGID) | (1 << cap::SETPCAP);
                let u = [0, 1, 2, 3].map(|_| ids[(n() % 3) as usize]);
                let g = [0, 1, 2, 3].map(|_| ids[(n() % 3) as usize]);
                TaskCreds {
                    uids: u,
                    gids: g,
                    groups: vec![ids[(n() % 3) as usize]],
                    caps: CapSets {
                        inheritable: n() & mask,
                        permitted: n() & mask,
                        effective: n() & mask,
                        bounding: n() & mask,
                        ambient: n() & mask,
                    },
                    securebits: (n() & 0xfff) as u32,
                }
            };
            let t = gen(&mut next);
            let c = gen(&mut next);
            let r = resolve(&t, &c, None);
            let a = &r.applied.caps;
            assert_eq!(a.permitted & !(t.caps.permitted & c.caps.permitted), 0);
            assert_eq!(a.effective & !a.permitted, 0);
            assert_eq!(a.effective & !t.caps.effective, 0);
            assert_eq!(a.inheritable & !t.caps.inheritable, 0);
            assert_eq!(
                a.ambient & !(a.permitted & a.inheritable & t.caps.ambient),
                0
            );
            assert_eq!(a.bounding & !c.caps.bounding, 0);
            if r.bounding_not_dropped == 0 {
                assert_eq!(a.bounding & !t.caps.bounding, 0);
            }
            assert!(r.applied.uids == t.uids || r.applied.uids == c.uids);
            assert!(r.applied.gids == t.gids || r.applied.gids == c.gids);
            assert!(r.applied.securebits == t.securebits || r.applied.securebits == c.securebits);
            // Exact means exactly the image.
            assert_eq!(r.exact(), r.applied == t);
            // Ids other than the caller's need the capability.
            if r.applied.uids != c.uids && !cap::has(c.caps.permitted, cap::SETUID) {
                assert!(t.uids.iter().all(|u| c.uids[..3].contains(u)));
            }
        }
    }
}
