//! What `cargo xtask demo` and `cargo xtask bench` run in namespaces (through the
//! `sctp-harness` binary, inside the VM when the host kernel lacks SCTP): the same
//! namespaces, veths and instances as the tests.

pub mod demo;
pub mod echo_bench;
pub mod flood_bench;

use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use crate::netns::{veth, Netns};

/// Two namespaces joined by a veth: `a_if` 198.18.0.1/24 in `a`, `b_if` 198.18.0.2/24 in `b`.
fn pair(prefix: &str, a_if: &str, b_if: &str) -> Result<(Netns, Netns)> {
    let a = Netns::new(&format!("{prefix}-a"))?;
    let b = Netns::new(&format!("{prefix}-b"))?;
    veth(&a, a_if, "198.18.0.1/24", &b, b_if, "198.18.0.2/24")?;
    Ok((a, b))
}

/// Runs `sctp-user client ARGS --format json` in `ns`; its report.
fn client_json(ns: &Netns, args: &[&str]) -> Result<Value> {
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(crate::sctp_user_bin())
        .arg("client")
        .args(args)
        .args(["--format", "json"])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot start sctp-user client")?;
    if !out.status.success() {
        bail!("sctp-user client {} failed ({})", args.join(" "), out.status);
    }
    serde_json::from_slice(&out.stdout).context("sctp-user client printed no JSON report")
}
