//! The scenarios `cargo xtask demo` and `cargo xtask bench` run in namespaces of their own
//! (root; kernel SCTP for `demo` and `echo-bench`). xtask starts this binary on the host or
//! inside the VM.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use integration_tests::scenarios::{demo, echo_bench, flood_bench};

#[derive(Parser)]
#[command(name = "sctp-harness", about = "Namespaced scenarios for cargo xtask demo and bench")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// A real SCTP association through XDP between two namespaces, with the joined report.
    Demo {
        /// A multi-homed association over two links instead, and its failover.
        #[arg(long)]
        multi_homed: bool,
    },
    /// An INIT flood dropped at XDP, by a drop-everything program and by nftables.
    FloodBench {
        /// The drop-everything XDP object (section `xdp`).
        #[arg(long)]
        drop_all: PathBuf,
        /// INIT packets per measurement.
        #[arg(long, default_value_t = 2_000_000)]
        count: u64,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// Echo throughput of sctp-user against the textbook echo loop.
    EchoBench {
        /// Messages per association per measurement.
        #[arg(long, default_value_t = 2000)]
        messages: u64,
        #[arg(long, default_value_t = 1)]
        rounds: u32,
    },
}

fn main() -> std::process::ExitCode {
    let result = match Cli::parse().scenario {
        Scenario::Demo { multi_homed: false } => demo::run(),
        Scenario::Demo { multi_homed: true } => demo::run_multihomed(),
        Scenario::FloodBench { drop_all, count, rounds } => {
            flood_bench::run(&flood_bench::Options { drop_all: &drop_all, count, rounds })
        }
        Scenario::EchoBench { messages, rounds } => echo_bench::run(&echo_bench::Options { messages, rounds }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sctp-harness: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
