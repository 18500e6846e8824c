//! BPF-LSM provider: one component `bpf/<hook>/<prog name>` per attached
//! BPF-LSM program (see [`crate::bpf`] for the selection and hashing).

use crate::bpf::{self, LiveBpf, BPF_PROG_TYPE_LSM, MAX_BTF_BYTES, VMLINUX_BTF};
use crate::host::HostView;
use crate::profile::PolicyFingerprint;

/// The BPF-LSM fingerprint of already-enumerated state; `btf` is the
/// vmlinux BTF blob (read only when an LSM program is linked).
pub fn from_live(live: &LiveBpf, btf: Option<&[u8]>) -> PolicyFingerprint {
    let mut name_of = |id: u32| btf.and_then(|b| bpf::btf_type_name(b, id).ok().flatten());
    match bpf::select_lsm_programs(&live.links, &live.progs, &mut name_of) {
        Ok(progs) => {
            PolicyFingerprint::from_components(progs.iter().map(|p| p.component()).collect(), None)
        }
        Err(e) => PolicyFingerprint::unknown(e.to_string(), Vec::new(), None),
    }
}

/// The BPF-LSM fingerprint of the live host (unknown on a sysroot, or
/// without the privilege bpf() enumeration needs).
pub fn fingerprint(view: &HostView) -> PolicyFingerprint {
    if !view.is_live() {
        return PolicyFingerprint::unknown(
            "BPF-LSM programs can only be enumerated with bpf() on the live host, not from a sysroot",
            Vec::new(),
            None,
        );
    }
    let live = match bpf::enumerate_live() {
        Ok(l) => l,
        Err(e) => return PolicyFingerprint::unknown(e.to_string(), Vec::new(), None),
    };
    let needs_btf = live.links.iter().any(|l| {
        live.progs
            .get(&l.prog_id)
            .is_some_and(|p| p.prog_type == BPF_PROG_TYPE_LSM)
    });
    let btf = if needs_btf {
        match view.read(VMLINUX_BTF, MAX_BTF_BYTES) {
            Ok(b) => Some(b),
            Err(e) => {
                return PolicyFingerprint::unknown(
                    format!("BPF-LSM programs are attached but their hooks cannot be named: {e}"),
                    Vec::new(),
                    None,
                )
            }
        }
    } else {
        None
    };
    from_live(&live, btf.as_deref())
}
