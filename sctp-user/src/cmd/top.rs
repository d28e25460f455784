//! `sctp-user top`: the live table of a running instance.

use std::net::SocketAddr;

use anyhow::Result;

use super::parse_listen;

/// A live table of a running instance (its --metrics address), refreshed every second.
#[derive(clap::Args)]
pub struct Args {
    /// Where the running `sctp-user run` serves metrics.
    #[arg(long, value_parser = parse_listen, default_value = "127.0.0.1:9464")]
    metrics: SocketAddr,
}

pub fn run(args: &Args) -> Result<()> {
    crate::tui::run(args.metrics)
}
