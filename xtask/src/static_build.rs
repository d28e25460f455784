//! Binaries linked statically against glibc (the one toolchain here has no musl target):
//! no loader, no shared library, so they run in an empty root file system (the image) or
//! an initramfs (the VM's `/init`). They resolve no names, the one thing static glibc
//! cannot do well.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context as _, Result};

use crate::cmd;

/// The host's triple, named so that the target-specific flags below reach only the
/// binary, not the build scripts nor the nested eBPF build.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds `package`'s binary `bin` (release, static) and returns its path.
pub(crate) fn build(root: &Path, package: &str, bin: &str) -> Result<PathBuf> {
    cmd::run(Command::new("cargo").args(["build", "--release", "-p", package, "--bin", bin, "--target", TARGET]).env(
        format!("CARGO_TARGET_{}_RUSTFLAGS", TARGET.to_uppercase().replace('-', "_")),
        "-C target-feature=+crt-static",
    ))?;
    let path = root.join("target").join(TARGET).join("release").join(bin);
    let ldd = Command::new("ldd").arg(&path).output().context("ldd (Debian's libc-bin)")?;
    let said = String::from_utf8_lossy(&ldd.stdout).to_string() + &String::from_utf8_lossy(&ldd.stderr);
    if !(said.contains("statically linked") || said.contains("not a dynamic executable")) {
        bail!("{} is not static: ldd says {said}", path.display());
    }
    Ok(path)
}
