//! Echo throughput, side by side in one run: `sctp-user run` (XDP attached, the join fed)
//! against the textbook blocking echo loop, alone and with the same XDP program on the
//! interface, 1 KiB messages, 1 and 16 associations.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, Result};

use super::{client_json, pair};
use crate::{instance::Instance, netns::Netns, sctp_user_bin};

const SERVER: &str = "198.18.0.2:36412";

pub struct Options {
    pub messages: u64,
    pub rounds: u32,
}

pub fn run(o: &Options) -> Result<()> {
    let (cli, srv) = pair("sxb", "sxb0", "sxb1")?;
    let textbook = sctp_user_bin().with_file_name("textbook-echo");
    let measure = |name: &str, associations: u32| -> Result<()> {
        let r = client_json(
            &cli,
            &[
                "--connect",
                SERVER,
                "--associations",
                &associations.to_string(),
                "--size",
                "1024",
                "--messages",
                &o.messages.to_string(),
                "--window",
                "8",
            ],
        )?;
        let rate = r["messages_per_s"].as_f64().context("no messages_per_s")?;
        println!("{name}\t{associations}\t{rate:.0}\t{}\t{}", r["latency_us"]["p50"], r["latency_us"]["p99"]);
        Ok(())
    };
    println!("server\tassociations\tmessages/s\tp50_us\tp99_us");
    for _ in 0..o.rounds {
        let ours = run_instance(&srv, &["--listen", SERVER], "attached")?;
        measure("sctp-user", 1)?;
        measure("sctp-user", 16)?;
        ours.stop()?;

        let loop_alone = textbook_echo(&srv, &textbook)?;
        measure("textbook", 1)?;
        measure("textbook", 16)?;
        loop_alone.stop()?;

        // The same loop with the same XDP program on the interface: the servers alone.
        let xdp = run_instance(&srv, &["--no-metrics", "--no-echo"], "attached")?;
        std::thread::sleep(Duration::from_secs(1));
        let with_xdp = textbook_echo(&srv, &textbook)?;
        measure("textbook+xdp", 1)?;
        measure("textbook+xdp", 16)?;
        with_xdp.stop()?;
        xdp.stop()?;
    }
    Ok(())
}

fn run_instance(srv: &Netns, extra: &[&str], ready: &str) -> Result<Instance> {
    let mut args = vec!["run", "--no-pin", "--iface", "sxb1"];
    args.extend_from_slice(extra);
    Instance::start(srv, "sctp-user", sctp_user_bin(), &args, ready)
}

fn textbook_echo(srv: &Netns, bin: &PathBuf) -> Result<Instance> {
    Instance::start(srv, "textbook", bin, &[SERVER], "listening")
}
