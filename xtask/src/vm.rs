//! A QEMU VM booting one of Debian's kernels (which have SCTP, unlike the host's) with the
//! host's root shared read-only over 9p, so host-built test binaries run inside unchanged.
//!
//! Kernels are fetched with apt into `target/vm/<kernel>/` (a private apt list directory,
//! the system's sources untouched); the initramfs (written here, newc) is `vm-init` as
//! `/init` plus the modules SCTP, veth and 9p need, in the order modules.dep gives; `/init`
//! runs one command, prints a result marker and powers off. QEMU uses KVM where
//! `/dev/kvm` is there and starts the guest, TCG elsewhere. A watchdog kills QEMU if the
//! guest hangs.

use std::{
    collections::BTreeSet,
    fs,
    io::{BufRead as _, BufReader, BufWriter, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use vm_init::{COMMAND_FILE, CWD_FILE, MARKER, MODULES_DIR, STARTED};

use crate::{cmd, static_build};

/// A Debian kernel: the name used on the command line and the suite it comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernel {
    pub name: &'static str,
    suite: &'static str,
    /// Before 5.17: no `bpf_loop`, so the program's bounded variant, whose verification
    /// takes minutes under TCG.
    bounded: bool,
}

/// Debian 12's 6.1 (the default), Debian 11's 5.10 and Debian 12 backports' 6.12.
pub(crate) const KERNELS: [Kernel; 3] = [
    Kernel { name: "6.1", suite: "bookworm", bounded: false },
    Kernel { name: "5.10", suite: "bullseye", bounded: true },
    Kernel { name: "6.12", suite: "bookworm-backports", bounded: false },
];

/// `kernels` as a stack whose `pop` gives the slowest to test first (those of the bounded
/// variant), the others in the order given.
pub(crate) fn slowest_first(mut kernels: Vec<Kernel>) -> Vec<Kernel> {
    kernels.reverse();
    kernels.sort_by_key(|k| k.bounded);
    kernels
}

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

/// An initramfs being written: newc entries, each with an inode number of its own.
struct Initramfs<W: Write> {
    out: W,
    next_ino: u32,
}

impl<W: Write> Initramfs<W> {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.next_ino += 1;
        let size = u32::try_from(data.len()).with_context(|| format!("{name} is too large for an initramfs"))?;
        let mut w = cpio::newc::Builder::new(name).ino(self.next_ino).mode(mode).write(&mut self.out, size);
        w.write_all(data)?;
        w.finish()?;
        Ok(())
    }

    fn dir(&mut self, name: &str) -> Result<()> {
        self.entry(name, 0o040_755, &[])
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.entry(name, 0o100_000 | mode, data)
    }

    fn finish(self) -> Result<W> {
        Ok(cpio::newc::trailer(self.out)?)
    }
}

/// Builds the initramfs that runs `command` (a shell command line) in `cwd` on the host
/// root: `/init` is `vm-init` (static, see its crate), then the modules, numbered in
/// modules.dep's order, and the command and its directory as data files.
fn initramfs(root: &Path, k: Kernel, modules: &Path, command: &str, cwd: &Path) -> Result<PathBuf> {
    let init = fs::read(static_build::build(root, "vm-init", "vm-init")?)?;
    let image = vm_dir(root, k).join("initramfs.cpio");
    let mut archive = Initramfs { out: BufWriter::new(fs::File::create(&image)?), next_ino: 0 };
    for d in ["proc", "sys", "dev", "host", MODULES_DIR] {
        archive.dir(d)?;
    }
    archive.file("init", 0o755, &init)?;
    for (i, m) in module_order(modules)?.iter().enumerate() {
        let name = m.file_name().unwrap().to_string_lossy().into_owned();
        let mut bytes = fs::read(m)?;
        if Path::new(&name).extension().is_some_and(|e| e.eq_ignore_ascii_case("xz")) {
            let mut plain = Vec::new();
            lzma_rs::xz_decompress(&mut bytes.as_slice(), &mut plain)
                .map_err(|e| anyhow::anyhow!("{}: not a valid xz file: {e}", m.display()))?;
            bytes = plain;
        }
        // The index keeps modules.dep's order when /init sorts them.
        archive.file(&format!("{MODULES_DIR}/{i:02}-{}", name.trim_end_matches(".xz")), 0o644, &bytes)?;
    }
    archive.file(COMMAND_FILE, 0o644, command.as_bytes())?;
    archive.file(CWD_FILE, 0o644, cwd.as_os_str().as_encoded_bytes())?;
    archive.finish()?.flush()?;
    Ok(image)
}

/// Whether QEMU may try KVM here: `/dev/kvm` exists and opens for reading and writing.
fn kvm_present() -> bool {
    fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

/// Set once KVM failed to start a guest: nested virtualisation may offer `/dev/kvm` and
/// still never run the guest's kernel. Later boots of this run go straight to TCG.
static KVM_FAILED: AtomicBool = AtomicBool::new(false);

/// How long a guest under KVM may take to reach `/init` (a second or two where KVM works;
/// TCG takes 10-40 s, and is given the whole watchdog).
const KVM_START_WITHIN: Duration = Duration::from_secs(30);

/// How a boot ended.
enum Boot {
    /// The command's exit status.
    Ran(i32),
    /// The guest never reached `/init` within the start deadline.
    NotStarted,
}

/// Boots kernel `k` and runs `command` inside; returns its exit status. Guest output goes
/// to stderr as it comes. `timeout` bounds the whole run.
pub(crate) fn run(root: &Path, k: Kernel, command: &str, timeout: Duration) -> Result<i32> {
    let (vmlinuz, modules) = fetch(root, k)?;
    let cwd = std::env::current_dir()?;
    let initrd = initramfs(root, k, &modules, command, &cwd)?;
    let files = [vmlinuz.as_path(), initrd.as_path()];
    if kvm_present() && !KVM_FAILED.load(Ordering::Relaxed) {
        eprintln!("vm: booting Debian {} under QEMU (KVM) to run: {command}", k.name);
        match boot(k, files, &["-accel", "kvm"], Some(KVM_START_WITHIN), timeout)? {
            Boot::Ran(code) => return Ok(code),
            Boot::NotStarted => {
                eprintln!("vm: KVM did not start the guest within {KVM_START_WITHIN:?}; using TCG from now on");
                KVM_FAILED.store(true, Ordering::Relaxed);
            }
        }
    }
    eprintln!("vm: booting Debian {} under QEMU (TCG) to run: {command}", k.name);
    match boot(k, files, &["-accel", "tcg"], None, timeout)? {
        Boot::Ran(code) => Ok(code),
        Boot::NotStarted => unreachable!("no start deadline under TCG"),
    }
}

/// One boot of `[vmlinuz, initrd]` with QEMU's `accel` arguments. Guest output goes to
/// stderr as it comes. `start_within` bounds the time to `/init`'s first line, `timeout`
/// the whole run.
fn boot(
    k: Kernel,
    [vmlinuz, initrd]: [&Path; 2],
    accel: &[&str],
    start_within: Option<Duration>,
    timeout: Duration,
) -> Result<Boot> {
    let mut child = Command::new("qemu-system-x86_64")
        .args(accel)
        .args(["-m", "1024", "-smp", "2", "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
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
    let mut started = false;
    let mut status = None;
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match rx.recv_timeout(left.min(Duration::from_secs(1))) {
            Ok(line) => {
                eprintln!("  [{} {:>4}s] {line}", k.name, start.elapsed().as_secs());
                started |= line.contains(STARTED);
                if let Some(code) = line.trim().strip_prefix(MARKER) {
                    status = code.trim().parse().ok();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let late = start_within.is_some_and(|d| !started && start.elapsed() >= d);
        if late || start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            if late {
                return Ok(Boot::NotStarted);
            }
            bail!("vm ({}): watchdog fired after {timeout:?}; the guest hung", k.name);
        }
    }
    let _ = child.wait();
    status.map(Boot::Ran).with_context(|| format!("vm ({}): the guest stopped without reporting a result", k.name))
}
