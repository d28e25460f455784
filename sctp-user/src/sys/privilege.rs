//! Privileges: each command checks the capabilities it needs in its effective set (not
//! the uid: a service user may hold exactly these), before it tries anything, and names
//! the one missing and what it is for.

use anyhow::{bail, Result};
use caps::{CapSet, Capability};

/// A capability a command needs, and what for (the error says both).
pub struct Need {
    cap: Capability,
    what: &'static str,
}

/// Creating maps and loading the program.
const BPF: Need = Need { cap: Capability::CAP_BPF, what: "to create the maps and load the XDP program" };
/// XDP and TC are networking program types: loading and attaching them.
const NET_ADMIN: Need =
    Need { cap: Capability::CAP_NET_ADMIN, what: "to load XDP and TC programs and attach them to interfaces" };
/// Without it the verifier refuses the program's pointer arithmetic on map values and
/// packet data ("prohibited for !root").
const PERFMON: Need =
    Need { cap: Capability::CAP_PERFMON, what: "for the verifier to accept the program's pointer arithmetic" };

/// `run`, `bench` and `inspect --engine xdp`: load (and attach) the XDP program.
pub const LOAD: &[Need] = &[BPF, NET_ADMIN, PERFMON];
/// `rules apply` and `rules show` on a running instance: its pinned maps.
pub const PINNED_MAPS: &[Need] = &[Need { cap: Capability::CAP_BPF, what: "to open a running instance's pinned maps" }];
/// `flood`: frames sent on a packet socket.
pub const RAW_FRAMES: &[Need] = &[Need { cap: Capability::CAP_NET_RAW, what: "to send frames on a packet socket" }];

/// Fails with one line naming every capability of `needs` missing from the effective set.
/// `CAP_SYS_ADMIN` stands in for `CAP_BPF` and `CAP_PERFMON`, as in the kernel.
pub fn require(needs: &[Need]) -> Result<()> {
    let have = caps::read(None, CapSet::Effective).unwrap_or_default();
    let admin = have.contains(&Capability::CAP_SYS_ADMIN);
    let missing: Vec<String> = needs
        .iter()
        .filter(|n| {
            let covered = admin && matches!(n.cap, Capability::CAP_BPF | Capability::CAP_PERFMON);
            !have.contains(&n.cap) && !covered
        })
        .map(|n| format!("{} ({})", n.cap, n.what))
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing {}: run as root, or grant {} (setpriv, AmbientCapabilities= in a unit; see the README's table)",
            missing.join(" and "),
            if missing.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(())
}

/// Kernels before 5.11 charge maps to `RLIMIT_MEMLOCK`: raise it as far as allowed (to
/// infinity with `CAP_SYS_RESOURCE`, else the soft limit to the hard one). Newer kernels
/// charge the memory cgroup instead, so a limit left low is never fatal here: a load that
/// does not fit says so itself.
pub fn raise_memlock() {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit and getrlimit with valid pointers to rlimit structs.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const unlimited) == 0 {
            return;
        }
        let mut current: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &raw mut current) == 0 && current.rlim_cur < current.rlim_max {
            current.rlim_cur = current.rlim_max;
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const current) != 0 {
                log::debug!("memlock limit left at {} bytes", current.rlim_cur);
            }
        }
    }
}
