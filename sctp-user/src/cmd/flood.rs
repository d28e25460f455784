//! `sctp-user flood`: a crafted INIT flood out of an interface.

use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::Result;

use crate::{
    loadgen::flood::{self, Flood},
    sys::iface::parse_mac,
};

/// Send a crafted INIT flood out of an interface, from many source addresses (for
/// benchmarks and for trying --init-rate and --deny-src; needs root).
#[derive(clap::Args)]
pub struct Args {
    /// Interface to send from.
    #[arg(long)]
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
    /// Source addresses used in turn.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    sources: u32,
    /// INIT packets to send.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
}

pub fn run(args: &Args) -> Result<()> {
    let took = flood::run(&Flood {
        iface: args.iface.clone(),
        dst: *args.to.ip(),
        dst_port: args.to.port(),
        dst_mac: args.dst_mac,
        first_source: args.from,
        sources: args.sources,
        count: args.count,
    })?;
    #[expect(clippy::cast_precision_loss, reason = "a rate to print")]
    let rate = args.count as f64 / took.as_secs_f64();
    println!("sent {} INIT packets in {:.3} s ({rate:.0} packets/s)", args.count, took.as_secs_f64());
    Ok(())
}
