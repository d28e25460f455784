//! `cargo xtask setup`: everything a bare Debian 12 machine needs, installed idempotently.
//! Each step checks first and says what it installs.

use std::process::Command;

use anyhow::{bail, Result};

use crate::cmd::{self, have, succeeds};

/// Debian packages: LLVM 22 for bpf-linker; QEMU and kmod (depmod) for the VM;
/// tshark as the reference dissector; iproute2 for namespaces; real SCTP peers for the
/// VM tests (socat, ncat, lksctp-tools);
/// nftables for the benchmark that drops an INIT flood at XDP and in nftables; chromium
/// to render `inspect --html` reports headless in their test; buildah to build the OCI
/// image and umoci and crun to unpack and run it in its test; python3-venv for the
/// tools from `PyPI` (kubernetes-validate, for the manifests' schemas); strace to check
/// the unit's system call filter against what `run` calls.
const APT_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libclang-22-dev",
    "qemu-system-x86",
    "kmod",
    "tshark",
    "curl",
    "iproute2",
    "socat",
    "ncat",
    "lksctp-tools",
    "prometheus",
    "tmux",
    "python3",
    "nftables",
    "chromium",
    "buildah",
    "umoci",
    "crun",
    "python3-venv",
    "strace",
];

const BPF_LINKER_VERSION: &str = "0.13.0";

/// Tools from `PyPI`, in a virtual environment of the project's (`target/tools/py`): the
/// Kubernetes manifests are validated offline against the schemas this one carries.
const PYTHON_TOOLS: &[&str] = &["kubernetes-validate==1.37.0"];

pub(crate) fn setup() -> Result<()> {
    apt_packages()?;
    components()?;
    rust_src()?;
    bpf_linker()?;
    python_tools()?;
    eprintln!("setup: done");
    Ok(())
}

/// Whether everything `setup` installs is present (cheap; used before build and test).
pub(crate) fn complete() -> bool {
    missing_apt().is_empty() && has_components() && has_rust_src() && has_bpf_linker() && has_python_tools()
}

/// The virtual environment of [`PYTHON_TOOLS`].
pub(crate) fn python_env() -> std::path::PathBuf {
    crate::workspace_root().join("target/tools/py")
}

fn has_python_tools() -> bool {
    let pip = python_env().join("bin/pip");
    Command::new(pip).arg("freeze").output().is_ok_and(|o| {
        let have = String::from_utf8_lossy(&o.stdout);
        PYTHON_TOOLS.iter().all(|t| have.lines().any(|l| l == *t))
    })
}

fn python_tools() -> Result<()> {
    if has_python_tools() {
        eprintln!("setup: python tools present");
        return Ok(());
    }
    let env = python_env();
    eprintln!("setup: installing {} into {}", PYTHON_TOOLS.join(" "), env.display());
    // Debian's python3 (apt), not one on root's PATH: the tests that use these tools also
    // run unprivileged.
    cmd::run(Command::new("/usr/bin/python3").args(["-m", "venv"]).arg(&env))?;
    cmd::run(Command::new(env.join("bin/pip")).args(["install", "-q"]).args(PYTHON_TOOLS))
}

/// Components of the stable toolchain `cargo xtask test` runs first: (component, cargo
/// subcommand).
const COMPONENTS: &[(&str, &str)] = &[("clippy", "clippy"), ("rustfmt", "fmt")];

/// Whether `cargo SUB` runs (its component is installed).
fn has_subcommand(sub: &str) -> bool {
    succeeds(Command::new("cargo").args([sub, "--version"]))
}

fn has_components() -> bool {
    COMPONENTS.iter().all(|(_, sub)| has_subcommand(sub))
}

/// `cargo xtask test` checks the format and runs clippy before the tests.
fn components() -> Result<()> {
    for (component, sub) in COMPONENTS {
        if has_subcommand(sub) {
            eprintln!("setup: {component} present");
            continue;
        }
        eprintln!("setup: installing {component} (the tests start with the format and the lints)");
        cmd::run(Command::new("rustup").args(["component", "add", component]))?;
    }
    Ok(())
}

fn missing_apt() -> Vec<&'static str> {
    APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            let out = Command::new("dpkg-query").args(["-W", "-f=${Status}", p]).output();
            !out.is_ok_and(|o| o.stdout.ends_with(b"install ok installed"))
        })
        .collect()
}

fn apt_packages() -> Result<()> {
    let missing = missing_apt();
    if missing.is_empty() {
        eprintln!("setup: apt packages present");
        return Ok(());
    }
    if !cmd::is_root() {
        bail!("setup must install {} with apt-get: run it as root (sudo cargo xtask setup)", missing.join(" "));
    }
    eprintln!("setup: installing {}", missing.join(" "));
    cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

fn has_rust_src() -> bool {
    Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "nightly"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.starts_with("rust-src")))
}

fn rust_src() -> Result<()> {
    if has_rust_src() {
        eprintln!("setup: nightly rust-src present");
        return Ok(());
    }
    eprintln!("setup: installing rust-src for the nightly toolchain (the bpf target builds core from source)");
    cmd::run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

fn has_bpf_linker() -> bool {
    have("bpf-linker")
        && Command::new("bpf-linker")
            .arg("--version")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION))
}

fn bpf_linker() -> Result<()> {
    if has_bpf_linker() {
        eprintln!("setup: bpf-linker {BPF_LINKER_VERSION} present");
        return Ok(());
    }
    // No prebuilt binary can be fetched here: build it against Debian's LLVM 22.
    eprintln!("setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (1-2 minutes)");
    let prefix = cmd::output(Command::new("llvm-config-22").arg("--prefix"))?;
    let bindir = cmd::output(Command::new("llvm-config-22").arg("--bindir"))?;
    let path = format!("{}:{}", bindir.trim(), std::env::var("PATH").unwrap_or_default());
    cmd::run(
        Command::new("cargo")
            .env("LLVM_PREFIX", prefix.trim())
            .env("PATH", path)
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION])
            .args(["--no-default-features", "--features", "llvm-22"]),
    )?;
    if !succeeds(Command::new("bpf-linker").arg("--version")) {
        bail!("bpf-linker was installed but is not on PATH: add ~/.cargo/bin to PATH");
    }
    Ok(())
}
