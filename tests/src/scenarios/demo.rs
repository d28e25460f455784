//! The end-to-end demo: two namespaces joined by a veth; in the server's, `sctp-user run`
//! attaches XDP to its end and runs the one-to-many echo server; in the client's,
//! `sctp-user client` drives several associations over several streams and PPIDs (S1AP 18,
//! NGAP 60, Diameter 46), a quarter unordered, checking every echo. On SIGINT the server
//! shuts associations down, detaches and prints the joined report: per association,
//! messages the application received against DATA chunks XDP saw, per stream and PPID,
//! duplicates against the kernel's counters, and wire-to-application latency.

use std::{process::Command, time::Duration};

use anyhow::{bail, Context as _, Result};

use super::pair;
use crate::{
    instance::Instance,
    netns::{veth, Netns},
    sctp_user_bin,
};

/// The metrics a newcomer looks at first.
const SAMPLE: [&str; 8] = [
    "sctp_xdp_chunks_total{type=\"DATA\"}",
    "sctp_xdp_chunks_total{type=\"SACK\"}",
    "sctp_xdp_chunks_total{type=\"INIT\"}",
    "sctp_echo_messages_total",
    "sctp_echo_associations_total",
    "sctp_wire_data_chunks_by_ppid_total",
    "sctp_wire_to_app_latency_seconds_",
    "sctp_join_delivery_ratio",
];

pub fn run() -> Result<()> {
    let (cli, srv) = pair("sxd", "sxd0", "sxd1")?;
    let server = start_server(&srv, &["--iface", "sxd1", "--listen", "198.18.0.2:36412"])?;
    println!("demo: client: 8 associations x 2000 messages at 150/s each, 4 streams, PPIDs 18/60/46, 25% unordered");
    let mut client = start_client(
        &cli,
        &[
            "--associations",
            "8",
            "--streams",
            "4",
            "--ppid",
            "18,60,46",
            "--unordered",
            "0.25",
            "--size",
            "200,1000",
            "--messages",
            "2000",
            "--window",
            "4",
            "--rate",
            "150",
        ],
    )?;
    std::thread::sleep(Duration::from_secs(4));
    show_top(&srv, "mid-run");
    let status = client.wait()?;
    if !status.success() {
        bail!("the client failed ({status})");
    }
    std::thread::sleep(Duration::from_secs(2));

    println!("demo: a sample of /metrics:");
    let metrics = srv.run(|| crate::http_get("127.0.0.1:9464", "/metrics"));
    for line in metrics.lines().filter(|l| SAMPLE.iter().any(|s| l.starts_with(s))) {
        println!("{line}");
    }
    // The report follows on the server's output as it stops.
    let status = server.stop()?;
    if !status.success() {
        bail!("sctp-user run exited with {status}");
    }
    Ok(())
}

/// A multi-homed association and its failover: a second veth pair (198.18.1.0/24) with
/// 50 ms of netem delay on the client's side, `run` on both of the server's ends, the
/// client bound to both of its addresses; `top` before and after the first link goes down.
pub fn run_multihomed() -> Result<()> {
    let (cli, srv) = pair("sxm", "sxm0", "sxm1")?;
    veth(&cli, "sxm2", "198.18.1.1/24", &srv, "sxm3", "198.18.1.2/24")?;
    cli.quick_sctp_timers()?;
    srv.quick_sctp_timers()?;
    cli.tc(&["qdisc", "add", "dev", "sxm2", "root", "netem", "delay", "50ms"])?;
    let server = start_server(
        &srv,
        &["--iface", "sxm1", "--iface", "sxm3", "--listen", "198.18.0.2:36412", "--listen", "198.18.1.2:36412"],
    )?;
    println!("demo: client bound to 198.18.0.1 and 198.18.1.1: 60 messages, 2 a second; the 198.18.1.0/24 link has 50 ms of delay");
    let mut client = start_client(
        &cli,
        &["--bind", "198.18.0.1:0", "--bind", "198.18.1.1:0", "--messages", "60", "--rate", "2", "--timeout", "60"],
    )?;
    std::thread::sleep(Duration::from_secs(6));
    show_top(&srv, "both links up");
    println!("demo: the 198.18.0.0/24 link goes down");
    cli.ip(&["link", "set", "sxm0", "down"])?;
    std::thread::sleep(Duration::from_secs(5));
    show_top(&srv, "after the failover");
    let status = client.wait()?;
    if !status.success() {
        bail!("the client failed ({status}): a message was lost in the failover");
    }
    std::thread::sleep(Duration::from_secs(1));
    let status = server.stop()?;
    if !status.success() {
        bail!("sctp-user run exited with {status}");
    }
    Ok(())
}

/// `sctp-user run --no-pin ARGS` in the server's namespace, once attached.
fn start_server(srv: &Netns, args: &[&str]) -> Result<Instance> {
    let mut all = vec!["run", "--no-pin"];
    all.extend_from_slice(args);
    Instance::start(srv, "server", sctp_user_bin(), &all, "attached")
}

/// `sctp-user client --connect 198.18.0.2:36412 ARGS` in the client's namespace, running.
fn start_client(cli: &Netns, args: &[&str]) -> Result<std::process::Child> {
    Command::new("ip")
        .args(["netns", "exec", &cli.name])
        .arg(sctp_user_bin())
        .args(["client", "--connect", "198.18.0.2:36412"])
        .args(args)
        .spawn()
        .context("cannot start sctp-user client")
}

/// What `sctp-user top` shows while the traffic runs, through tmux when it is installed
/// (an illustration: never fatal).
fn show_top(srv: &Netns, when: &str) {
    let tmux = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &srv.name, "tmux"])
            .args(args)
            .env("TMUX_TMPDIR", std::env::temp_dir())
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let top = format!("{} top", sctp_user_bin().display());
    if tmux(&["new-session", "-d", "-x", "140", "-y", "30", "-s", "sxdtop", &top]).is_none() {
        return;
    }
    std::thread::sleep(Duration::from_secs(3));
    if let Some(pane) = tmux(&["capture-pane", "-p", "-t", "sxdtop"]) {
        println!("demo: sctp-user top, {when}:\n{}", String::from_utf8_lossy(&pane.stdout));
    }
    let _ = tmux(&["kill-session", "-t", "sxdtop"]);
}
