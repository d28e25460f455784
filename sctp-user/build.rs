//! Builds the XDP program (sctp-ebpf) with the nightly toolchain for bpfel-unknown-none,
//! so `include_bytes_aligned!` can embed it in the binary.
//!
//! Our own few lines rather than `aya_build::build_ebpf`, which forwards every line of
//! the nested cargo's progress as a `warning:` of this package (some 60 per build): here
//! the nested build's real diagnostics become warnings, its progress is kept quiet, and
//! everything it printed is shown when it fails.

use std::{
    env,
    io::{BufReader, Read as _},
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _, Result};
use cargo_metadata::{diagnostic::DiagnosticLevel, Message};

const PACKAGE: &str = "sctp-ebpf";
const TARGET: &str = "bpfel-unknown-none";

fn main() -> Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new().no_deps().exec().context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == PACKAGE)
        .context("the sctp-ebpf package is not in the workspace")?;
    let root = ebpf.manifest_path.parent().context("sctp-ebpf has no directory")?;
    // Cargo rebuilds us when the eBPF crate's library changes (a build dependency);
    // this covers its binaries too.
    println!("cargo:rerun-if-changed={root}");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let arch = env::var("CARGO_CFG_TARGET_ARCH").context("CARGO_CFG_TARGET_ARCH not set")?;
    let mut cargo = Command::new("rustup");
    cargo
        .args(["run", "nightly", "cargo", "build", "--package", PACKAGE, "--bins"])
        .args(["--message-format=json", "--release", "--target", TARGET])
        .args(["-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(out_dir.join("ebpf-target"))
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            // Misaligned loads and stores allowed (LLVM 22): a packet field is read in one
            // load, not byte by byte. The kernel allows them but on the stack, which
            // `parse::Bytes` keeps aligned.
            [
                format!("--cfg=bpf_target_arch=\"{arch}\""),
                "-Cdebuginfo=2".into(),
                "-Clink-arg=--btf".into(),
                "-Clink-arg=--cpu-features=+allows-misaligned-mem-access".into(),
            ]
            .join("\x1f"),
        )
        // The outer build's compiler is stable; the nested one must pick its own.
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cargo.spawn().context("cannot run `rustup run nightly cargo`: run `cargo xtask setup`")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let progress = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut executables = Vec::new();
    let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
    for message in Message::parse_stream(stdout) {
        match message.context("the nested cargo printed invalid JSON")? {
            Message::CompilerArtifact(a) => {
                if let Some(exe) = a.executable {
                    executables.push((a.target.name, exe.into_std_path_buf()));
                }
            }
            Message::CompilerMessage(m)
                if matches!(m.message.level, DiagnosticLevel::Warning | DiagnosticLevel::Error) =>
            {
                for line in m.message.rendered.unwrap_or_default().lines() {
                    println!("cargo:warning={line}");
                }
            }
            _ => {}
        }
    }
    let status = child.wait().context("waiting for the nested cargo")?;
    let progress = progress.join().unwrap_or_default();
    if !status.success() {
        eprintln!("{progress}");
        bail!("building the XDP program failed ({status}): see above");
    }
    for (name, exe) in executables {
        std::fs::copy(&exe, out_dir.join(&name)).with_context(|| format!("copying {} into OUT_DIR", exe.display()))?;
    }
    Ok(())
}
