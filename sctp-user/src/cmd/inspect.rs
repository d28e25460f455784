//! `sctp-user inspect`: replay a capture and print what the program counted.

use std::path::PathBuf;

use anyhow::Result;

use super::{Format, LoadArgs};
use crate::{
    observe::{replay, report},
    rules::{self, RuleArgs},
};

/// Replay a pcap/pcapng file through the XDP program (`BPF_PROG_TEST_RUN`; needs root).
#[derive(clap::Args)]
pub struct Args {
    /// Capture file: pcap or pcapng; Ethernet, Linux cooked SLL/SLL2 or raw IP; `-` reads
    /// standard input (a pipe or a FIFO works: the file is read once, in order).
    #[arg(long)]
    pcap: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    rules: RuleArgs,
}

pub fn run(args: &Args) -> Result<()> {
    let rules = rules::compile(&args.rules.config()?)?;
    let replay = replay::replay(&args.pcap, &args.load.options(), &rules)?;
    match args.format {
        Format::Json => {
            let mut j = report::to_json(&replay.snapshot, replay.unreplayed(), usize::MAX);
            j["damaged"] = replay.damaged.clone().into();
            println!("{j}");
        }
        Format::Table => {
            print!("{}", report::to_table(&replay.snapshot));
            if replay.too_short > 0 {
                println!(
                    "{} frame(s) shorter than an Ethernet header were not replayed",
                    replay.too_short
                );
            }
            if replay.too_large > 0 {
                println!(
                    "{} frame(s) larger than the kernel's test run takes were not replayed",
                    replay.too_large
                );
            }
        }
    }
    Ok(())
}
