//! An INIT flood from 1,024 sources dropped by one rule (source prefix 198.18.100.0/22)
//! at XDP (`sctp-user run --deny-src`, native and generic) and by the same rule in
//! nftables (netdev ingress: its earliest hook), beside a drop-everything XDP program, on
//! one veth in one run. The sender is `sctp-user flood` (sendmmsg, qdisc bypassed) in
//! the other namespace; a veth delivers in the sender's softirq, so every rate is of the
//! whole path, sender included. The receiving side's own cost is the CPU time spent in
//! softirq (where the veth's receive path, XDP and nftables's ingress hook run; the
//! sender's system calls are system time), from `/proc/stat`, per packet dropped.
//!
//! Then a DATA flood on 64 established associations, 4 DATA chunks a packet, through
//! `run` with its association table and without (`--no-associations`): what `run` itself
//! spends (its process's CPU time; XDP runs in the sender's softirq) per million packets,
//! and whether the table holds exactly the packets XDP counted.

use std::{
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context as _, Result};

use super::pair;
use crate::{instance::Instance, netns::Netns, raw::mac_of, sctp_user_bin};

const DENIED: &str = "198.18.100.0/22";

pub struct Options<'a> {
    /// The drop-everything XDP object (section `xdp`).
    pub drop_all: &'a Path,
    pub count: u64,
    pub rounds: u32,
}

pub fn run(o: &Options) -> Result<()> {
    let (a, b) = pair("sxf", "sxf0", "sxf1")?;
    let mac = mac_of(&b, "sxf1");
    let mac = mac.map(|x| format!("{x:02x}")).join(":");
    let flood_secs = || flood(&a, &mac, &["--sources", "1024", "--count", &o.count.to_string()]);
    // The sending time and the softirq CPU time spent meanwhile (the receive side).
    let flood = || -> Result<(f64, f64)> {
        let softirq_before = softirq_secs()?;
        let secs = flood_secs()?;
        Ok((secs, softirq_secs()? - softirq_before))
    };

    println!("INIT flood, {} packets per round, {} rounds, one rule: drop source {DENIED}", o.count, o.rounds);
    for round in 1..=o.rounds {
        // Native XDP on a veth converts each socket buffer to an XDP buffer (a copy when
        // the headroom is short); generic XDP runs on the socket buffer: both measured.
        for mode in ["native", "generic"] {
            let args = ["run", "--iface", "sxf1", "--mode", mode, "--no-echo", "--no-pin", "--deny-src", DENIED];
            let run = Instance::start(&b, "run", sctp_user_bin(), &args, "metrics on")?;
            std::thread::sleep(Duration::from_millis(1200));
            let before = xdp_drops(&b)?;
            let (secs, softirq) = flood()?;
            let dropped = settle(|| xdp_drops(&b))? - before;
            run.stop()?;
            println!(
                "xdp ({mode}) round {round}: {dropped} of {} dropped in {secs} s: {} drops/s; {}",
                o.count,
                rate(dropped, secs),
                per_drop(softirq, dropped)
            );
        }

        // The floor: a program that drops everything, on the same path (iproute2 loads
        // it; it keeps no counter, so its rate is the packets sent over the sending time).
        let obj = o.drop_all.to_string_lossy();
        b.ip(&["link", "set", "dev", "sxf1", "xdpdrv", "obj", &obj, "sec", "xdp"])?;
        let (secs, softirq) = flood()?;
        b.ip(&["link", "set", "dev", "sxf1", "xdpdrv", "off"])?;
        println!(
            "xdp floor (drop all) round {round}: {} sent in {secs} s: {} drops/s; {}",
            o.count,
            rate(o.count, secs),
            per_drop(softirq, o.count)
        );

        nft(
            &b,
            &["-f", "-"],
            Some(&format!(
                "table netdev sxf {{\n chain ingress {{\n  type filter hook ingress device sxf1 priority 0;\n  \
                 ip saddr {DENIED} counter drop\n }}\n}}\n"
            )),
        )?;
        let (secs, softirq) = flood()?;
        let dropped = settle(|| nft_drops(&b))?;
        nft(&b, &["delete", "table", "netdev", "sxf"], None)?;
        println!(
            "nftables round {round}: {dropped} of {} dropped in {secs} s: {} drops/s; {}",
            o.count,
            rate(dropped, secs),
            per_drop(softirq, dropped)
        );
    }
    data_flood(&a, &b, &mac, o)
}

/// Associations of the DATA flood, and DATA chunks per packet.
const DATA_ASSOCIATIONS: u64 = 64;
const DATA_CHUNKS: &str = "4";

/// The DATA flood through `run`, with the association table and without.
fn data_flood(a: &Netns, b: &Netns, mac: &str, o: &Options) -> Result<()> {
    let count = o.count.next_multiple_of(DATA_ASSOCIATIONS);
    println!(
        "\nDATA flood, {count} packets per round on {DATA_ASSOCIATIONS} associations, {DATA_CHUNKS} DATA chunks a packet"
    );
    for round in 1..=o.rounds {
        for table in [true, false] {
            let mut args = vec!["run", "--iface", "sxf1", "--no-echo", "--no-pin", "--top-flows", "64"];
            if !table {
                args.push("--no-associations");
            }
            let run = Instance::start(b, "run", sctp_user_bin(), &args, "metrics on")?;
            std::thread::sleep(Duration::from_millis(1200));
            let cpu_before = run.cpu_secs()?;
            let sources = DATA_ASSOCIATIONS.to_string();
            let secs =
                flood(a, mac, &["--data-chunks", DATA_CHUNKS, "--sources", &sources, "--count", &count.to_string()])?;
            settle(|| xdp_sctp_packets(b))?;
            // `/stats` is built once a second: one more build, and both are complete.
            std::thread::sleep(Duration::from_millis(1100));
            let counted = xdp_sctp_packets(b)?;
            let cpu = run.cpu_secs()? - cpu_before;
            let held =
                if table { format!("; the association table holds {}", table_packets(b)?) } else { String::new() };
            run.stop()?;
            #[expect(clippy::cast_precision_loss, reason = "a figure to print")]
            let per_million = cpu * 1e6 / count as f64;
            println!(
                "run {} round {round}: {count} DATA packets sent in {secs} s ({} packets/s); XDP counted {counted}{held}; \
                 run's CPU {cpu:.2} s, {per_million:.3} s per million packets",
                if table { "(association table)" } else { "--no-associations" },
                rate(count, secs),
            );
        }
    }
    Ok(())
}

/// Runs `sctp-user flood ARGS` from `a` out of sxf0; how long sending took.
fn flood(a: &Netns, mac: &str, args: &[&str]) -> Result<f64> {
    let out = Command::new("ip")
        .args(["netns", "exec", &a.name])
        .arg(sctp_user_bin())
        .args(["flood", "--iface", "sxf0", "--dst-mac", mac, "--from", "198.18.100.0"])
        .args(args)
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line: "sent N KIND packets in S s (R packets/s)".
    text.lines()
        .last()
        .and_then(|l| l.split(" in ").nth(1))
        .and_then(|t| t.split(' ').next())
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("sctp-user flood: unexpected output {text:?} ({})", out.status))
}

#[expect(clippy::cast_precision_loss, reason = "a rate to print")]
fn rate(n: u64, secs: f64) -> f64 {
    (n as f64 / secs).round()
}

fn xdp_sctp_packets(ns: &Netns) -> Result<u64> {
    ns.stats()?["xdp"]["packets"]["sctp"].as_u64().context("/stats has no xdp.packets.sctp")
}

/// The packets of every association `/stats` lists.
fn table_packets(ns: &Netns) -> Result<u64> {
    let stats = ns.stats()?;
    let all = stats["associations"].as_array().context("/stats has no associations")?;
    Ok(all.iter().filter_map(|a| a["packets"].as_u64()).sum())
}

/// CPU time spent in softirq so far, all CPUs together (`/proc/stat`, sampled at each
/// tick: a statistical figure, good over a flood of seconds).
fn softirq_secs() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    // cpu user nice system idle iowait irq softirq ..., in USER_HZ (100 on Linux).
    let ticks: f64 = stat
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(7))
        .and_then(|t| t.parse().ok())
        .context("/proc/stat has no softirq time")?;
    Ok(ticks / 100.0)
}

/// The softirq time per dropped packet, as printed.
fn per_drop(softirq_secs: f64, dropped: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a figure to print")]
    let ns = softirq_secs * 1e9 / dropped.max(1) as f64;
    format!("softirq CPU {softirq_secs:.2} s, {ns:.0} ns per drop")
}

fn xdp_drops(ns: &Netns) -> Result<u64> {
    ns.stats()?["xdp"]["drops"]["deny_src"].as_u64().context("/stats has no xdp.drops.deny_src")
}

/// `nft ARGS` in `ns` (the ruleset on stdin if given); its stdout.
fn nft(ns: &Netns, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "nft"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run nft (apt-get install nftables)")?;
    let mut input = child.stdin.take().context("stdin piped")?;
    input.write_all(stdin.unwrap_or_default().as_bytes())?;
    drop(input);
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft {} failed ({})", args.join(" "), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The packets counted by the one counter of table `netdev sxf`.
fn nft_drops(ns: &Netns) -> Result<u64> {
    let listing: serde_json::Value = serde_json::from_str(&nft(ns, &["-j", "list", "table", "netdev", "sxf"], None)?)?;
    listing["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["rule"]["expr"].as_array())
        .flatten()
        .find_map(|e| e["counter"]["packets"].as_u64())
        .context("no counter in table netdev sxf")
}

/// Waits until a counter stops moving (the receiving side drains after the sender ends).
fn settle(read: impl Fn() -> Result<u64>) -> Result<u64> {
    let mut last = read()?;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = read()?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
}
