//! `sctp-user flood`: crafted INITs, or DATA of established associations, out of an
//! interface.

use std::{
    fmt::Write as _,
    net::{Ipv4Addr, SocketAddrV4},
};

use anyhow::Result;

use crate::{
    loadgen::flood::{self, Flood, Load},
    sys::iface::{interface_name, parse_mac},
};

/// Send a crafted flood out of an interface, from many source addresses: INITs (for
/// benchmarks and for trying --init-rate and --deny-src), or with --data-chunks the DATA
/// of one established association per source (for measuring the association table);
/// needs root.
#[derive(clap::Args)]
pub struct Args {
    /// Interface to send from.
    #[arg(long, value_parser = interface_name)]
    iface: String,
    /// Destination (IPv4 ADDR:PORT).
    #[arg(long, default_value = "198.18.0.2:36412")]
    to: SocketAddrV4,
    /// MAC address of the receiving interface.
    #[arg(long, value_parser = parse_mac)]
    dst_mac: [u8; 6],
    /// First source address; the next --sources - 1 addresses follow it.
    #[arg(long, default_value = "198.18.100.1")]
    from: Ipv4Addr,
    /// Source addresses used in turn (with --data-chunks, one association each).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    sources: u32,
    /// Packets to send (with --data-chunks, DATA packets after the handshakes).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// Send DATA instead of INITs: each source's handshake, then packets of this many
    /// bundled DATA chunks with growing TSNs.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=64))]
    data_chunks: Option<u8>,
}

pub fn run(args: &Args) -> Result<()> {
    let load = args.data_chunks.map_or(Load::Init, |chunks| Load::Data { chunks });
    let sent = flood::run(&Flood {
        iface: args.iface.clone(),
        dst: *args.to.ip(),
        dst_port: args.to.port(),
        dst_mac: args.dst_mac,
        first_source: args.from,
        sources: args.sources,
        count: args.count,
        load,
    })?;
    let mut report = String::new();
    if sent.handshakes > 0 {
        writeln!(report, "sent {} handshake packets ({} associations)", sent.handshakes, args.sources)?;
    }
    let kind = if load == Load::Init { "INIT" } else { "DATA" };
    let secs = sent.took.as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "a rate to print")]
    let rate = args.count as f64 / secs;
    writeln!(report, "sent {} {kind} packets in {secs:.3} s ({rate:.0} packets/s)", args.count)?;
    super::print(&report)
}
