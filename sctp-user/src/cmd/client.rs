//! `sctp-user client`: the load generator and test client.

use std::{net::SocketAddr, time::Duration};

use anyhow::Result;

use super::{parse_listen, Format};
use crate::loadgen::client;

/// Load generator and test client: N associations against an echo server, every echo
/// checked; prints throughput and latency percentiles (JSON with --format json).
#[derive(clap::Args)]
pub struct Args {
    /// The echo server (ADDR:PORT; IPv6 as [ADDR]:PORT).
    #[arg(long, value_parser = parse_listen)]
    connect: SocketAddr,
    /// Local address to bind (ADDR:PORT, port 0 for any); repeat for a multi-homed
    /// client, all on one port. A port other than 0 needs --associations 1.
    #[arg(long, value_parser = parse_listen)]
    bind: Vec<SocketAddr>,
    /// Associations, each on its own one-to-many socket.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    associations: u64,
    /// Streams used per association.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    streams: u16,
    /// Message sizes in bytes, used in turn (comma-separated; at least 16).
    #[arg(long, value_delimiter = ',', default_value = "1024")]
    size: Vec<usize>,
    /// PPIDs, used in turn (comma-separated; e.g. 18 S1AP, 60 NGAP, 46 Diameter, 3 M3UA).
    #[arg(long, value_delimiter = ',', default_value = "18")]
    ppid: Vec<u32>,
    /// Share of messages sent unordered, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    unordered: f64,
    /// Messages per association.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Messages in flight per association (closed loop).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    window: u64,
    /// Messages per second per association (default: as fast as the window allows).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds without progress before an association is given up.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(args: Args) -> Result<()> {
    let Args { connect, bind, associations, streams, size, ppid, unordered, messages, window, rate, timeout, format } =
        args;
    if !(0.0..=1.0).contains(&unordered) {
        anyhow::bail!("--unordered must be between 0 and 1");
    }
    if bind.iter().any(|b| b.port() != bind[0].port()) {
        anyhow::bail!("--bind addresses share one port (a multi-homed endpoint has one): give each the same");
    }
    if bind.iter().any(|b| b.is_ipv6() && !connect.is_ipv6()) {
        anyhow::bail!("--bind has an IPv6 address but --connect is IPv4: connect to an IPv6 address to use both");
    }
    if associations > 1 && bind.first().is_some_and(|b| b.port() != 0) {
        anyhow::bail!(
            "--bind with a port makes one association (each needs a port of its own): use port 0 or --associations 1"
        );
    }
    if rate.is_some_and(|r| r <= 0.0 || !r.is_finite()) {
        anyhow::bail!("--rate must be a positive number of messages per second");
    }
    let cfg = client::ClientConfig {
        connect,
        bind,
        associations: usize::try_from(associations)?,
        streams,
        sizes: size,
        ppids: ppid,
        unordered,
        messages,
        window: usize::try_from(window)?,
        rate,
        timeout: Duration::from_secs(timeout),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let r = rt.block_on(client::run(cfg))?;
    let report = match format {
        Format::Json => serde_json::to_string_pretty(&r)? + "\n",
        Format::Table => format!(
            "{} associations: {} sent, {} echoed ({} bytes), {} mismatched in {:.2} s: {:.0} messages/s; latency us p50 {:.0} p90 {:.0} p99 {:.0} max {:.0}\n",
            r.associations, r.sent, r.echoed, r.bytes_echoed, r.mismatches, r.elapsed_s, r.messages_per_s,
            r.latency_us.p50, r.latency_us.p90, r.latency_us.p99, r.latency_us.max
        ),
    };
    super::print(&report)?;
    for f in r.failures.iter().take(20) {
        log::warn!("client: {f}");
    }
    anyhow::ensure!(
        r.failures.is_empty() && r.mismatches == 0 && r.echoed == r.sent,
        "the run had failures (see above)"
    );
    Ok(())
}
