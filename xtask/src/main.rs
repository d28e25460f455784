//! `cargo xtask`: the project's own automation. See `cargo xtask --help`.

mod bench;
mod cmd;
mod dist;
mod setup;
mod static_build;
mod vm;

use std::{
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::Duration,
};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Set up, build, test, run and benchmark sctp-xdp")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what a bare Debian 12 machine lacks (apt packages, rust-src, bpf-linker).
    Setup,
    /// Build everything (release), the XDP object embedded in target/release/sctp-user.
    Build,
    /// What an operator installs, in target/dist/: a static sctp-user, a tarball with the
    /// units, manifests, rules and dashboards, a Debian package and an OCI image archive.
    Dist,
    /// Run every test: host unit and integration tests, then the VM tests on each kernel.
    Test {
        /// Kernels for the VM tests (comma-separated; default: all of 6.1, 5.10, 6.12).
        #[arg(long, value_delimiter = ',', default_values_t = vm::KERNELS.map(|k| k.name.to_string()))]
        kernels: Vec<String>,
        /// Skip the VM tests.
        #[arg(long)]
        no_vm: bool,
    },
    /// Boot a Debian kernel in QEMU and run a command inside (host root shared read-only).
    Vm {
        /// Kernel: 6.1, 5.10 or 6.12.
        #[arg(long, default_value = "6.1")]
        kernel: String,
        /// Watchdog: seconds before a hung guest is killed.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
        /// The command line to run inside the guest.
        #[arg(required = true, trailing_var_arg = true)]
        command: Vec<String>,
    },
    /// Per-packet cost against an empty XDP program (target/bench/xdp.json), and the pcap
    /// replay timed against tshark.
    Bench {
        /// Capture for the replay comparison (default: the largest shared capture).
        #[arg(long)]
        pcap: Option<PathBuf>,
        /// Also measure echo throughput against the textbook echo loop, in the VM.
        #[arg(long)]
        echo: bool,
    },
    /// The end-to-end demo: a real SCTP association through XDP between two namespaces
    /// (on the host if its kernel has SCTP, otherwise inside the VM).
    Demo {
        /// A multi-homed association over two links and its failover, shown in `top`.
        #[arg(long)]
        multi_homed: bool,
    },
    /// Build and run `sctp-user` as root (through sudo when not root): `cargo xtask run -- ARGS`.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn run(cli: Cli) -> Result<()> {
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match cli.command {
        Cmd::Setup => setup::setup(),
        Cmd::Build => build(),
        Cmd::Dist => {
            ensure_setup()?;
            dist::dist(&root).map(drop)
        }
        Cmd::Test { kernels, no_vm } => test(&root, &kernels, no_vm),
        Cmd::Vm { kernel, timeout, command } => {
            require_root("the VM harness")?;
            let code = vm::run(&root, vm::kernel(&kernel)?, &command.join(" "), Duration::from_secs(timeout))?;
            if code != 0 {
                bail!("the command exited with {code} inside the VM");
            }
            Ok(())
        }
        Cmd::Demo { multi_homed } => demo(&root, multi_homed),
        Cmd::Bench { pcap, echo } => {
            require_root("the benchmark")?;
            build()?;
            bench::bench(&root, pcap.as_deref())?;
            bench_flood(&root)?;
            if echo {
                bench_echo(&root)?;
            }
            Ok(())
        }
        Cmd::Run { args } => {
            build()?;
            let bin = root.join("target/release/sctp-user");
            let mut c = if cmd::is_root() {
                Command::new(&bin)
            } else {
                let mut s = Command::new("sudo");
                s.arg(&bin);
                s
            };
            cmd::run(c.args(&args))
        }
    }
}

/// Runs setup first when something it installs is missing.
fn ensure_setup() -> Result<()> {
    if !setup::complete() {
        eprintln!("xtask: the toolchain is incomplete; running setup first");
        setup::setup()?;
    }
    Ok(())
}

fn build() -> Result<()> {
    ensure_setup()?;
    cmd::run(Command::new("cargo").args(["build", "--release"]))
}

fn require_root(what: &str) -> Result<()> {
    if !cmd::is_root() {
        bail!("{what} needs root (BPF, namespaces): run `sudo -E cargo xtask ...`");
    }
    Ok(())
}

/// The integration tests' modules (tests/tests/integration/main.rs) that run as root on
/// this host: the ones that need root but not kernel SCTP, and the XDP program's own.
const ON_THE_HOST_AS_ROOT: &[&str] = &["::root::", "::kernel::"];

/// The modules that run inside the VM on each kernel: the XDP program must load and agree
/// with the host parser on every kernel, and see real kernel SCTP traffic.
const IN_THE_VM: &[&str] = &["::kernel::", "::vm::"];

fn test(root: &Path, kernels: &[String], no_vm: bool) -> Result<()> {
    require_root("the tests")?;
    ensure_setup()?;
    // Format and lints first: a difference or a warning fails the run.
    cmd::run(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    cmd::run(Command::new("cargo").args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // The tests run the sctp-user binary itself, not only its library.
    cmd::run(Command::new("cargo").args(["build", "--release"]))?;
    // The fleet tests install and run what an operator gets.
    dist::dist(root)?;
    let binaries = test_binaries()?;
    // Everyone's tests first, as nobody: a test that needs a privilege without saying so
    // fails here (those that say so are ignored there).
    for b in &binaries {
        cmd::run(b.command().uid(NOBODY).gid(NOBODY).env("HOME", std::env::temp_dir()))?;
    }
    // Then, as root, only the binaries with tests that need it: those that need root and
    // not kernel SCTP, which this host has, and the XDP program's own.
    cmd::run(find_binary(&binaries, "cli")?.command().arg("--ignored"))?;
    let integration = find_binary(&binaries, "integration")?;
    cmd::run(integration.command().arg("--ignored").args(ON_THE_HOST_AS_ROOT))?;
    if no_vm {
        return Ok(());
    }
    let command = format!("{} --ignored --test-threads=1 {}", integration.exe.display(), IN_THE_VM.join(" "));
    let ks = kernels.iter().map(|name| vm::kernel(name)).collect::<Result<Vec<_>>>()?;
    let failed = Mutex::new(Vec::new());
    // Two VMs at a time, the slowest kernel first: under TCG most of a VM's time is one
    // vCPU verifying the program (Debian's 5.10 verifies the bounded variant, some three
    // minutes a load), so a second VM on the other core finishes the other kernels
    // meanwhile.
    let queue = Mutex::new(vm::slowest_first(ks));
    std::thread::scope(|s| {
        for _ in 0..VM_LANES {
            s.spawn(|| {
                loop {
                    // Popped apart: a guard in the `while let` would hold the queue for
                    // the whole VM run, and the other lane would wait.
                    let next = queue.lock().unwrap().pop();
                    let Some(k) = next else { break };
                    let outcome = vm::run(root, k, &command, Duration::from_mins(VM_WATCHDOG_MINUTES));
                    match outcome {
                        Ok(0) => eprintln!("xtask: VM tests passed on Debian's {} kernel", k.name),
                        Ok(code) => failed.lock().unwrap().push(format!("{}: exit {code}", k.name)),
                        Err(e) => failed.lock().unwrap().push(format!("{}: {e:#}", k.name)),
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    if !failed.is_empty() {
        bail!("VM tests failed: {}", failed.join("; "));
    }
    Ok(())
}

/// VMs run at once (CI machines have 2 cores).
const VM_LANES: usize = 2;

/// How long one kernel's VM tests may run before the guest counts as hung: Debian's 5.10
/// under TCG (where KVM does not start a guest) took over 35 minutes in CI, the others 8.
const VM_WATCHDOG_MINUTES: u64 = 55;

/// The unprivileged user the tests anyone may run run as.
const NOBODY: u32 = 65_534;

/// A test executable cargo built.
struct TestBinary {
    /// The target's name (`integration`, `cli`, a crate's name for its unit tests).
    name: String,
    exe: PathBuf,
    /// Its package's directory, where cargo runs it from.
    dir: PathBuf,
}

impl TestBinary {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.exe);
        c.current_dir(&self.dir);
        c
    }
}

fn find_binary<'a>(binaries: &'a [TestBinary], name: &str) -> Result<&'a TestBinary> {
    binaries.iter().find(|b| b.name == name).with_context(|| format!("cargo built no test binary {name}"))
}

/// Builds every test executable of the default members (release) and lists them.
fn test_binaries() -> Result<Vec<TestBinary>> {
    let out = cmd::output(Command::new("cargo").args(["test", "--release", "--no-run", "--message-format=json"]))?;
    let binaries: Vec<TestBinary> = out
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["profile"]["test"] == true)
        .filter_map(|msg| {
            Some(TestBinary {
                name: msg["target"]["name"].as_str()?.to_string(),
                exe: PathBuf::from(msg["executable"].as_str()?),
                dir: Path::new(msg["manifest_path"].as_str()?).parent()?.to_path_buf(),
            })
        })
        .collect();
    if binaries.is_empty() {
        bail!("cargo built no test binary");
    }
    Ok(binaries)
}

/// Whether the running kernel offers SCTP sockets (Debian's does; this host's may not).
fn host_has_sctp() -> bool {
    // SAFETY: socket(2) with constant arguments; the descriptor is closed at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_SEQPACKET, libc::IPPROTO_SCTP) };
    if fd < 0 {
        return false;
    }
    // SAFETY: closing the descriptor just opened.
    unsafe { libc::close(fd) };
    true
}

fn demo(root: &Path, multi_homed: bool) -> Result<()> {
    require_root("the demo")?;
    build()?;
    let args: &[&str] = if multi_homed { &["demo", "--multi-homed"] } else { &["demo"] };
    harness(root, args, "the demo", Duration::from_mins(15))
}

/// Runs `sctp-harness ARGS` (namespaced scenarios) here if this kernel has SCTP, otherwise
/// inside the VM.
fn harness(root: &Path, args: &[&str], what: &str, timeout: Duration) -> Result<()> {
    let bin = root.join("target/release/sctp-harness");
    if host_has_sctp() {
        return cmd::run(Command::new(&bin).args(args));
    }
    eprintln!("xtask: this kernel has no SCTP; running {what} inside the VM (Debian's 6.1 kernel)");
    let command = format!("{} {}", bin.display(), args.join(" "));
    match vm::run(root, vm::KERNELS[0], &command, timeout)? {
        0 => Ok(()),
        code => bail!("{what} failed inside the VM (exit {code})"),
    }
}

/// An INIT flood dropped at XDP and by the same rule in nftables, on the host (no SCTP
/// needed: the packets are dropped before any SCTP stack).
fn bench_flood(root: &Path) -> Result<()> {
    cmd::run(
        Command::new(root.join("target/release/sctp-harness"))
            .arg("flood-bench")
            .arg("--drop-all")
            .arg(newest_build_output(root, "drop-xdp")?),
    )
}

/// The newest copy of an eBPF object that sctp-user's build script built.
fn newest_build_output(root: &Path, name: &str) -> Result<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(root.join("target/release/build"))?
        .filter_map(Result::ok)
        .map(|d| d.path().join("out").join(name))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).with_context(|| format!("{name} not built (cargo build --release)"))
}

/// Echo throughput of sctp-user against the textbook loop, side by side in one run
/// (in the VM when the host has no kernel SCTP).
fn bench_echo(root: &Path) -> Result<()> {
    harness(root, &["echo-bench"], "the echo benchmark", Duration::from_mins(30))
}
