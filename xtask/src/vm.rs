//! A QEMU VM booting one of Debian's kernels (which have SCTP, unlike the host's) with the
//! host's root shared read-only over 9p, so host-built test binaries run inside unchanged.
//!
//! Kernels are fetched with apt into `target/vm/<kernel>/` (a private apt list directory,
//! the system's sources untouched); the initramfs is busybox plus the modules SCTP, veth
//! and 9p need, in the order modules.dep gives; `/init` runs one command, prints a result
//! marker and powers off. A watchdog kills QEMU if the guest hangs.

use std::{
    collections::BTreeSet,
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::cmd;

/// A Debian kernel: the name used on the command line and the suite it comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernel {
    pub name: &'static str,
    suite: &'static str,
}

/// Debian 12's 6.1 (the default), Debian 11's 5.10 and Debian 12 backports' 6.12.
pub(crate) const KERNELS: [Kernel; 3] = [
    Kernel { name: "6.1", suite: "bookworm" },
    Kernel { name: "5.10", suite: "bullseye" },
    Kernel { name: "6.12", suite: "bookworm-backports" },
];

pub(crate) fn kernel(name: &str) -> Result<Kernel> {
    KERNELS
        .iter()
        .copied()
        .find(|k| k.name == name)
        .with_context(|| format!("unknown kernel {name:?}: choose one of 6.1, 5.10, 6.12"))
}

/// Modules the guest needs, by name; their dependencies are added from modules.dep.
/// `crc32c_generic` is requested by name at run time by libcrc32c (SCTP's checksum), so no
/// symbol dependency pulls it in.
const WANTED_MODULES: &[&str] = &[
    "crc32c_generic",
    "sctp",
    "veth",
    "virtio_pci",
    "9pnet_virtio",
    "9p",
    // clsact and cls_bpf: the TC egress program that learns verification tags.
    "sch_ingress",
    "cls_bpf",
    // netem: a path's delay (round trips) and loss (a peer that vanishes) in the tests.
    "sch_netem",
];

/// Printed by /init with the command's exit status.
const MARKER: &str = "SCTP_XDP_VM_EXIT=";

fn vm_dir(root: &Path, k: Kernel) -> PathBuf {
    root.join("target/vm").join(k.name)
}

/// Downloads and unpacks the kernel if it is not there yet; returns (vmlinuz, modules dir).
pub(crate) fn fetch(root: &Path, k: Kernel) -> Result<(PathBuf, PathBuf)> {
    let dir = vm_dir(root, k);
    let unpacked = dir.join("root");
    if let Some(found) = find_kernel(&unpacked)? {
        return Ok(found);
    }
    eprintln!("vm: fetching Debian's {} kernel ({}) into {}", k.name, k.suite, dir.display());
    let lists = dir.join("apt-lists");
    fs::create_dir_all(lists.join("partial"))?;
    let uri = debian_uri()?;
    let sources = dir.join("sources.list");
    fs::write(&sources, format!("deb {uri} {} main\n", k.suite))?;
    let apt_opts = |c: &mut Command| {
        c.arg(format!("-o=Dir::Etc::sourcelist={}", sources.display()))
            .arg("-o=Dir::Etc::sourceparts=-")
            .arg(format!("-o=Dir::State::Lists={}", lists.display()));
    };
    let mut update = Command::new("apt-get");
    apt_opts(&mut update);
    cmd::run(update.args(["update", "-q"]))?;
    // The image package that linux-image-amd64 depends on in that suite (one kernel only).
    let mut depends = Command::new("apt-cache");
    apt_opts(&mut depends);
    let deps = cmd::output(depends.args(["depends", "linux-image-amd64"]))?;
    let image = deps
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64") && *p != "linux-image-amd64")
        .with_context(|| format!("no kernel image package found for {}", k.suite))?
        .to_string();
    let packages = dir.join("debs");
    fs::create_dir_all(&packages)?;
    let mut download = Command::new("apt-get");
    apt_opts(&mut download);
    cmd::run(download.current_dir(&packages).args(["download", &image]))?;
    for deb in fs::read_dir(&packages)? {
        let deb = deb?.path();
        cmd::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
    }
    find_kernel(&unpacked)?.context("the kernel package held no vmlinuz")
}

/// The archive URI already configured for this machine.
fn debian_uri() -> Result<String> {
    let sources = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    if let Some(uri) = sources.lines().find_map(|l| l.strip_prefix("URIs:")) {
        return Ok(uri.split_whitespace().next().unwrap_or_default().to_string());
    }
    let list = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    list.lines()
        .find_map(|l| l.strip_prefix("deb ").and_then(|r| r.split_whitespace().find(|w| w.starts_with("http"))))
        .map(str::to_string)
        .context("no Debian archive URI in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list")
}

fn find_kernel(unpacked: &Path) -> Result<Option<(PathBuf, PathBuf)>> {
    let boot = unpacked.join("boot");
    let Ok(entries) = fs::read_dir(&boot) else {
        return Ok(None);
    };
    for e in entries {
        let name = e?.file_name().to_string_lossy().into_owned();
        if let Some(version) = name.strip_prefix("vmlinuz-") {
            let modules = unpacked.join("lib/modules").join(version);
            if modules.is_dir() {
                return Ok(Some((boot.join(&name), modules)));
            }
        }
    }
    Ok(None)
}

/// Appends `path` to `order` after its dependencies (depth first, each module once).
fn visit(path: &str, table: &[(String, Vec<String>)], seen: &mut BTreeSet<String>, order: &mut Vec<String>) {
    if !seen.insert(path.to_string()) {
        return;
    }
    if let Some((_, deps)) = table.iter().find(|(m, _)| m == path) {
        for d in deps {
            visit(d, table, seen, order);
        }
    }
    order.push(path.to_string());
}

/// Module files to load, dependencies first, from modules.dep (run depmod if needed).
fn module_order(modules: &Path) -> Result<Vec<PathBuf>> {
    let dep_file = modules.join("modules.dep");
    if !dep_file.exists() {
        let version = modules.file_name().unwrap().to_string_lossy().into_owned();
        let base = modules.parent().and_then(Path::parent).and_then(Path::parent).context("odd modules path")?;
        cmd::run(Command::new("depmod").arg("-b").arg(base).arg(&version))?;
    }
    let deps = fs::read_to_string(&dep_file)?;
    let table: Vec<(String, Vec<String>)> = deps
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, d)| (m.to_string(), d.split_whitespace().map(str::to_string).collect()))
        .collect();
    let builtin = fs::read_to_string(modules.join("modules.builtin")).unwrap_or_default();
    let stem = |p: &str| {
        let file = p.rsplit('/').next().unwrap_or(p);
        file.split('.').next().unwrap_or(file).replace('-', "_")
    };
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for want in WANTED_MODULES {
        match table.iter().find(|(m, _)| stem(m) == *want) {
            Some((path, _)) => visit(path, &table, &mut seen, &mut order),
            None if builtin.lines().any(|l| stem(l) == *want) => {}
            None => bail!("module {want} is neither in modules.dep nor built into {}", modules.display()),
        }
    }
    Ok(order.into_iter().map(|p| modules.join(p)).collect())
}

/// The initramfs's `/init`, written as it is: it loads the modules in their numbered
/// order, mounts the host root, and runs the shell command line in `/command` from the
/// directory in `/cwd` (both plain data files, so nothing needs quoting), then prints
/// the marker with its exit status and powers off.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /modules/*.ko; do insmod "$m" || echo "vm: insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 host /host || { echo 'vm: cannot mount the host root'; poweroff -f; }
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts && mount -t devpts devpts /host/dev/pts
mount -t tmpfs tmp /host/run
mount -t bpf bpf /host/sys/fs/bpf
mkdir -p /host/run/tmp /host/run/vm
cp /command /cwd /host/run/vm/
# The host root is read-only; /tmp is left alone (the checkout may live there): scratch
# files go to TMPDIR on the tmpfs.
chroot /host /bin/sh -c 'export TMPDIR=/run/tmp; ip link set lo up; cd "$(cat /run/vm/cwd)" && . /run/vm/command'
echo "SCTP_XDP_VM_EXIT=$?"
poweroff -f
"#;

/// Builds the initramfs that runs `command` (a shell command line) in `cwd` on the host root.
fn initramfs(root: &Path, k: Kernel, modules: &Path, command: &str, cwd: &Path) -> Result<PathBuf> {
    let dir = vm_dir(root, k);
    let stage = dir.join("initramfs");
    if stage.exists() {
        fs::remove_dir_all(&stage)?;
    }
    for d in ["bin", "proc", "sys", "dev", "host", "modules"] {
        fs::create_dir_all(stage.join(d))?;
    }
    fs::copy("/bin/busybox", stage.join("bin/busybox")).context("busybox-static is missing: cargo xtask setup")?;
    for (i, m) in module_order(modules)?.iter().enumerate() {
        let name = m.file_name().unwrap().to_string_lossy().into_owned();
        // The index keeps modules.dep's order in /init's glob.
        let dest = stage.join("modules").join(format!("{i:02}-{}", name.trim_end_matches(".xz")));
        if Path::new(&name).extension().is_some_and(|e| e.eq_ignore_ascii_case("xz")) {
            // busybox insmod takes plain .ko files only.
            let out = Command::new("xz").arg("-dc").arg(m).output()?;
            if !out.status.success() {
                bail!("xz -dc {} failed", m.display());
            }
            fs::write(&dest, out.stdout)?;
        } else {
            fs::copy(m, &dest)?;
        }
    }
    // /init is the same for every run; what to run, and where, are data files beside it.
    fs::write(stage.join("init"), INIT)?;
    fs::write(stage.join("command"), command)?;
    fs::write(stage.join("cwd"), cwd.as_os_str().as_encoded_bytes())?;
    cmd::run(Command::new("chmod").arg("+x").arg(stage.join("init")))?;
    let image = dir.join("initramfs.cpio");
    cmd::run(
        Command::new("sh")
            .current_dir(&stage)
            .arg("-c")
            .arg(format!("find . | cpio --quiet -o -H newc > '{}'", image.display())),
    )?;
    Ok(image)
}

/// Boots kernel `k` and runs `command` inside; returns its exit status. Guest output goes
/// to stderr as it comes. `timeout` bounds the whole run.
pub(crate) fn run(root: &Path, k: Kernel, command: &str, timeout: Duration) -> Result<i32> {
    let (vmlinuz, modules) = fetch(root, k)?;
    let cwd = std::env::current_dir()?;
    let initrd = initramfs(root, k, &modules, command, &cwd)?;
    eprintln!("vm: booting Debian {} under QEMU (TCG) to run: {command}", k.name);
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-m", "1024", "-smp", "2", "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(&vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 quiet panic=-1"])
        .args(["-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start qemu-system-x86_64: cargo xtask setup")?;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    let mut status = None;
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match rx.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(line) => {
                eprintln!("  [{}] {line}", k.name);
                if let Some(code) = line.trim().strip_prefix(MARKER) {
                    status = code.trim().parse().ok();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("vm ({}): watchdog fired after {timeout:?}; the guest hung", k.name);
        }
    }
    let _ = child.wait();
    status.with_context(|| format!("vm ({}): the guest stopped without reporting a result", k.name))
}
