//! Running external commands with their command line shown and failures explained.

use std::{
    ffi::OsStr,
    fmt::Write as _,
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _, Result};

/// Runs `cmd`, inheriting stdio; fails with the command line if it exits non-zero.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {}", show(cmd));
    let status = cmd.status().with_context(|| format!("cannot start {}", show(cmd)))?;
    if !status.success() {
        bail!("{} failed ({status})", show(cmd));
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; stderr passes through.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::inherit()).output().with_context(|| format!("cannot start {}", show(cmd)))?;
    if !out.status.success() {
        bail!("{} failed ({})", show(cmd), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `cmd` runs and exits 0 (all output discarded).
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Whether `program` is an executable file in a directory of PATH.
pub(crate) fn have(program: impl AsRef<OsStr>) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path)
        .filter_map(|dir| std::fs::metadata(dir.join(program.as_ref())).ok())
        .any(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Arguments shown of a long command line (mergecap of a hundred copies of one file).
const SHOWN_ARGS: usize = 8;

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args().take(SHOWN_ARGS) {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    let more = cmd.get_args().len().saturating_sub(SHOWN_ARGS);
    if more > 0 {
        let _ = write!(s, " ... ({more} more arguments)");
    }
    s
}

/// Whether we run as root.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
