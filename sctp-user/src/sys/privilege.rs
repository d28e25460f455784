//! Privileges: say up front what needs root.

use anyhow::{bail, Result};

/// Loading BPF needs `CAP_BPF` + `CAP_NET_ADMIN` (or `CAP_SYS_ADMIN)`: say so up front.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("loading XDP needs root (CAP_BPF and CAP_NET_ADMIN): run it with sudo, or use `cargo xtask run`");
    }
    Ok(())
}
