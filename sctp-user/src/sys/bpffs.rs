//! The BPF filesystem, where pinned maps live, and what identifies a running instance:
//! its pin directory (locked while it runs) and the state file named after it.

use std::{
    fs::File,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _, Result};

/// Where bpffs lives by convention; mounted there if missing (as bpftool and Cilium do).
const BPFFS: &str = "/sys/fs/bpf";
/// Our own bpffs for commands run with `ip netns exec`: it runs them in a mount namespace
/// of their own whose /sys is a fresh sysfs without the host's bpffs, and what they mount
/// vanishes with them. /run is kept, so a bpffs mounted here on the host is shared.
const RUN_BPFFS: &str = "/run/sctp-xdp/bpffs";
/// Where the exporter keeps its totals between runs.
const STATE_DIR: &str = "/run/sctp-xdp";

fn on_bpffs(path: &Path) -> bool {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    let probe = path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    let Ok(c) = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs on a valid C string into a zeroed struct.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::statfs(c.as_ptr(), &raw mut fs) == 0 && fs.f_type == BPF_FS_MAGIC }
}

/// The namespace `kind` (`mnt`, `net`) of a process, by inode.
fn namespace(pid: &str, kind: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}")).ok().map(|m| m.ino())
}

/// Whether this process has a mount namespace other than its parent's (or PID 1's, where
/// that can be read), as under `ip netns exec`: what it mounts vanishes when it exits.
fn private_mounts() -> bool {
    let own = namespace("self", "mnt");
    let parent = std::os::unix::process::parent_id().to_string();
    let other = namespace("1", "mnt").or_else(|| namespace(&parent, "mnt"));
    matches!((own, other), (Some(a), Some(b)) if a != b)
}

/// Whether a bpffs is mounted exactly at `path` (statfs of a path below a mount point
/// would report the filesystem above it).
fn bpffs_at(path: &str) -> bool {
    Path::new(path).is_dir() && on_bpffs(Path::new(path))
}

/// The directory for every instance's pins, on a bpffs whose pins outlive this process
/// and that other commands find: /sys/fs/bpf/sctp-xdp, or /run/sctp-xdp/bpffs (the one
/// `ip netns exec` keeps). A bpffs is mounted at /sys/fs/bpf when there is none, unless
/// the mount would be private.
fn pin_root() -> Result<PathBuf> {
    if bpffs_at(BPFFS) {
        return Ok(Path::new(BPFFS).join("sctp-xdp"));
    }
    if bpffs_at(RUN_BPFFS) {
        return Ok(PathBuf::from(RUN_BPFFS));
    }
    if private_mounts() {
        bail!(
            "no bpf filesystem here to pin the counters on: this command runs in a mount namespace of its own \
             (ip netns exec replaces /sys), where one mounted now would vanish with it; mount one on the host \
             first (mkdir -p {RUN_BPFFS} && mount -t bpf bpf {RUN_BPFFS}), or run with --no-pin"
        );
    }
    // SAFETY: mount(2) with valid C strings and no data.
    let rc = unsafe { libc::mount(c"bpf".as_ptr(), c"/sys/fs/bpf".as_ptr(), c"bpf".as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        bail!(
            "cannot mount a bpf filesystem at {BPFFS} ({}; mounting needs CAP_SYS_ADMIN): mount it once on the host \
             (deploy/systemd/sys-fs-bpf.mount, or mount -t bpf bpf {BPFFS}), or run with --no-pin",
            std::io::Error::last_os_error()
        );
    }
    log::info!("mounted a bpf filesystem at {BPFFS} for the pinned counters");
    Ok(Path::new(BPFFS).join("sctp-xdp"))
}

/// The name of this process's network namespace: `ip netns` name if it has one, else
/// `net:INODE`; `None` for PID 1's (the host's).
fn netns_name() -> Option<String> {
    let own = namespace("self", "net")?;
    if namespace("1", "net") == Some(own) {
        return None;
    }
    let named = std::fs::read_dir("/run/netns").ok().and_then(|dir| {
        dir.filter_map(Result::ok)
            .find(|e| e.metadata().is_ok_and(|m| m.ino() == own))
            .map(|e| e.file_name().to_string_lossy().into_owned())
    });
    Some(named.unwrap_or_else(|| format!("net:{own}")))
}

/// Where `run` pins an interface's maps unless told otherwise: `ROOT/IFACE`, or
/// `ROOT/netns/NAME/IFACE` in a network namespace (interfaces of one name in two
/// namespaces are two instances); ROOT is /sys/fs/bpf/sctp-xdp or /run/sctp-xdp/bpffs.
pub fn default_pin_dir(iface: &str) -> Result<PathBuf> {
    let mut dir = pin_root()?;
    if let Some(ns) = netns_name() {
        dir = dir.join("netns").join(ns);
    }
    Ok(dir.join(iface))
}

/// The pin directory must be on a bpffs; create it there if needed.
pub fn prepare_pin_dir(dir: &Path) -> Result<()> {
    if dir.starts_with(BPFFS) && !bpffs_at(BPFFS) {
        pin_root()?;
    }
    if !on_bpffs(dir) {
        bail!(
            "{} is not on a bpf filesystem: mount one (mount -t bpf bpf /sys/fs/bpf) or run with --no-pin",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Held by a running instance on its pin directory: a second `run` with the same
/// directory is refused before it touches anything.
pub struct InstanceLock {
    /// The lock lives as long as this descriptor.
    _dir: File,
}

impl InstanceLock {
    /// The lock on `dir`, or an error if another instance holds it. (The holder's
    /// interfaces are not known here: bpffs keeps no file to note them in.)
    pub fn take(dir: &Path) -> Result<Self> {
        let file = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
        // SAFETY: flock on a live fd; released when the file closes (also on a crash).
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            bail!(
                "an sctp-user instance is already running with its maps pinned at {}: stop it first, \
                 or change its rules with `sctp-user rules apply --pin-dir {}`",
                dir.display(),
                dir.display()
            );
        }
        Ok(Self { _dir: file })
    }
}

/// The file `rules apply` locks so that two of them do not fill the same idle generation
/// at once (not the pin directory: a running instance holds that one; and not inside it:
/// bpffs holds pins and directories only).
pub fn apply_lock(pin_dir: &Path) -> Result<File> {
    std::fs::create_dir_all(STATE_DIR).with_context(|| format!("creating {STATE_DIR}"))?;
    let path = Path::new(STATE_DIR).join(format!("{}.lock", instance_key(pin_dir)));
    File::create(&path).with_context(|| format!("creating {}", path.display()))
}

/// The exporter's state file of the instance pinned at `pin_dir`: one per pin directory,
/// so instances on same-named interfaces of two namespaces keep their own totals.
#[must_use]
pub fn state_file(pin_dir: &Path) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{}.json", instance_key(pin_dir)))
}

/// A file name for what identifies an instance: its pin directory.
fn instance_key(pin_dir: &Path) -> String {
    pin_dir
        .to_string_lossy()
        .trim_start_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_files_differ_by_pin_directory() {
        let a = state_file(Path::new("/sys/fs/bpf/sctp-xdp/eth0"));
        let b = state_file(Path::new("/sys/fs/bpf/sctp-xdp/netns/blue/eth0"));
        assert_eq!(a, Path::new("/run/sctp-xdp/sys_fs_bpf_sctp-xdp_eth0.json"));
        assert_ne!(a, b);
    }
}
