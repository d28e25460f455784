//! The VM's `/init`, PID 1 of the initramfs `cargo xtask vm` builds, linked statically (the
//! initramfs has no libc): it loads the modules in their numbered order, mounts the host's
//! root (shared read-only over 9p) with what a test needs on top (proc, sys, dev, a tmpfs
//! `/run`, bpffs), brings the loopback up, runs the command line in the host root from
//! the directory given, prints [`vm_init::MARKER`] with its exit status and powers off.
//! Anything that fails is said on the console, and the VM still powers off.

use std::{
    ffi::CString,
    fs,
    os::{fd::AsRawFd as _, unix::ffi::OsStrExt as _},
    path::Path,
    process::Command,
};

use vm_init::{COMMAND_FILE, CWD_FILE, MARKER, MODULES_DIR, STARTED};

/// The host root, as the guest mounts it.
const HOST: &str = "/host";

fn main() {
    println!("{STARTED}");
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            println!("vm-init: {e}");
            125
        }
    };
    println!("{MARKER}{code}");
    // SAFETY: sync and reboot take no pointers; PID 1 powering off is the intent.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
}

fn run() -> Result<i32, String> {
    mount("proc", "/proc", "proc", 0, "")?;
    mount("sys", "/sys", "sysfs", 0, "")?;
    mount("dev", "/dev", "devtmpfs", 0, "")?;
    load_modules()?;
    mount("host", HOST, "9p", libc::MS_RDONLY, "trans=virtio,version=9p2000.L,msize=512000")
        .map_err(|e| format!("cannot mount the host root: {e}"))?;
    for (source, target, kind) in [
        ("proc", "/host/proc", "proc"),
        ("sys", "/host/sys", "sysfs"),
        ("dev", "/host/dev", "devtmpfs"),
        ("devpts", "/host/dev/pts", "devpts"),
        ("tmp", "/host/run", "tmpfs"),
        ("bpf", "/host/sys/fs/bpf", "bpf"),
    ] {
        mount(source, target, kind, 0, "")?;
    }
    // The host root is read-only; /tmp is left alone (the checkout may live there): scratch
    // files go to TMPDIR on the tmpfs.
    for dir in ["/host/run/tmp", "/host/run/vm"] {
        fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
    }
    let command = format!("/host/run/vm/{COMMAND_FILE}");
    fs::copy(format!("/{COMMAND_FILE}"), &command).map_err(|e| format!("{command}: {e}"))?;
    let cwd = fs::read(format!("/{CWD_FILE}")).map_err(|e| format!("/{CWD_FILE}: {e}"))?;
    loopback_up()?;
    std::os::unix::fs::chroot(HOST).map_err(|e| format!("chroot {HOST}: {e}"))?;
    let cwd = Path::new(std::ffi::OsStr::from_bytes(&cwd));
    std::env::set_current_dir(cwd).map_err(|e| format!("cd {}: {e}", cwd.display()))?;
    // The kernel starts init with no PATH: the command and what it runs (tc, ip, nft in
    // /usr/sbin) find programs as a login shell would.
    let status = Command::new("/bin/sh")
        .arg(format!("/run/vm/{COMMAND_FILE}"))
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("TMPDIR", "/run/tmp")
        .status()
        .map_err(|e| format!("cannot run /bin/sh: {e}"))?;
    Ok(status.code().unwrap_or(128))
}

/// mount(2); the target is made first.
fn mount(source: &str, target: &str, kind: &str, flags: libc::c_ulong, data: &str) -> Result<(), String> {
    fs::create_dir_all(target).map_err(|e| format!("{target}: {e}"))?;
    let c = |s: &str| CString::new(s).map_err(|e| e.to_string());
    let (source_c, target_c, kind_c, data_c) = (c(source)?, c(target)?, c(kind)?, c(data)?);
    // SAFETY: every pointer is a NUL-terminated string that lives across the call.
    let rc =
        unsafe { libc::mount(source_c.as_ptr(), target_c.as_ptr(), kind_c.as_ptr(), flags, data_c.as_ptr().cast()) };
    if rc != 0 {
        return Err(format!("mount -t {kind} {source} {target}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Loads every module of the initramfs, in the order of their numbered names
/// (dependencies first); a module that does not load is said, not fatal.
fn load_modules() -> Result<(), String> {
    let dir = format!("/{MODULES_DIR}");
    let mut modules: Vec<_> =
        fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?.filter_map(Result::ok).map(|e| e.path()).collect();
    modules.sort();
    for m in modules {
        let loaded = fs::File::open(&m).and_then(|f| {
            // SAFETY: finit_module reads the open file; the empty parameter string is static.
            let rc = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), 0) };
            if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
        if let Err(e) = loaded {
            println!("vm-init: cannot load {}: {e}", m.display());
        }
    }
    Ok(())
}

/// `struct ifreq` as SIOCGIFFLAGS and SIOCSIFFLAGS use it: a name and the flags.
#[repr(C)]
struct InterfaceFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    /// The rest of the kernel's union (`struct ifreq` is 40 bytes).
    _rest: [u8; 22],
}

/// Brings `lo` up: the tests talk to their own addresses.
fn loopback_up() -> Result<(), String> {
    let mut req = InterfaceFlags { name: [0; libc::IFNAMSIZ], flags: 0, _rest: [0; 22] };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: a datagram socket for the ioctls, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `req` is a valid ifreq for both ioctls and lives across them.
    let rc = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &raw mut req) == 0 {
            req.flags |= libc::c_short::try_from(libc::IFF_UP).unwrap_or(1);
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &raw const req)
        } else {
            -1
        }
    };
    let error = std::io::Error::last_os_error();
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return Err(format!("ip link set lo up: {error}"));
    }
    Ok(())
}
