//! The subcommands: one module each, holding its clap `Args` and its `run`. The top
//! layer: it may import every other.

pub mod bench;
pub mod client;
pub mod flood;
pub mod inspect;
pub mod rules;
pub mod run;
pub mod top;

use std::net::SocketAddr;

use anyhow::{Context as _, Result};
use clap::ValueEnum;
use sctp_common::abi::maps::{FLOW_CAPACITY, PROVISIONAL_FLOW_RATE};

use crate::bpf::LoadOptions;

/// Writes a command's report, whole, to standard output; a failure (a full disk, not a
/// closed pipe: see `sys::stdout`) is an error that names it, not a panic as `println!`'s.
pub fn print(report: &str) -> Result<()> {
    use std::io::Write as _;
    std::io::stdout().lock().write_all(report.as_bytes()).context(TO_STDOUT)
}

/// What a failed write of a report says first.
pub const TO_STDOUT: &str = "writing the report to standard output";

/// Parses `ADDR:PORT` values; IPv6 as `[addr]:port`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("{s:?} is not ADDR:PORT (IPv6 as [ADDR]:PORT)"))
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Let the kernel choose (native when the driver supports it).
    Auto,
    /// Native (driver) XDP.
    Native,
    /// Generic (skb) XDP: works everywhere, slower.
    Generic,
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Capacity of the per-flow LRU map (least recently seen flows are evicted).
    #[arg(long, default_value_t = FLOW_CAPACITY, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    flow_capacity: u32,
    /// New flows of associations whose handshake was not seen to complete (met mid-way,
    /// or made up by a flood of new tags) that one CPU may make a second, after a burst of
    /// 4,096; their packets still count in the totals. 0: no bound.
    #[arg(long, default_value_t = PROVISIONAL_FLOW_RATE)]
    provisional_flow_rate: u32,
}

impl LoadArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions {
            flow_capacity: self.flow_capacity,
            provisional_flow_rate: self.provisional_flow_rate,
            ..LoadOptions::default()
        }
    }
}
