//! The BPF filesystem, where pinned maps live.

use std::path::Path;

use anyhow::{bail, Context as _, Result};

/// Where bpffs lives by convention; mounted there if missing (as bpftool and Cilium do).
const BPFFS: &str = "/sys/fs/bpf";

fn on_bpffs(path: &Path) -> bool {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    let probe = path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    let Ok(c) = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs on a valid C string into a zeroed struct.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::statfs(c.as_ptr(), &raw mut fs) == 0 && fs.f_type as i64 == BPF_FS_MAGIC }
}

/// The pin directory must be on a bpffs; create it there if needed.
pub fn prepare_pin_dir(dir: &Path) -> Result<()> {
    if !on_bpffs(dir) && dir.starts_with(BPFFS) && Path::new(BPFFS).is_dir() {
        // SAFETY: mount(2) with valid C strings and no data.
        let rc = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                c"/sys/fs/bpf".as_ptr(),
                c"bpf".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc == 0 {
            log::info!("mounted a bpf filesystem at {BPFFS} for the pinned counters");
        }
    }
    if !on_bpffs(dir) {
        bail!(
            "{} is not on a bpf filesystem: mount one (mount -t bpf bpf /sys/fs/bpf; inside `ip netns exec`, /sys is remounted without it: use --pin-dir on a bpffs mounted outside) or run with --no-pin",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}
