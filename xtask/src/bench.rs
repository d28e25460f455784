//! `cargo xtask bench`: the XDP program's per-packet cost (sctp-user bench, written to
//! target/bench/xdp.json) and the pcap replay timed against tshark on the same capture.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use crate::cmd;

/// The largest capture of the shared set; any pcap can be given instead.
const DEFAULT_CAPTURE: &str = "../shared/captures/pcaptoparquet__30_sctp.pcapng";
const ROUNDS: usize = 5;

pub fn bench(root: &Path, capture: Option<&Path>) -> Result<()> {
    let bin = root.join("target/release/sctp-user");
    let json = root.join("target/bench/xdp.json");
    std::fs::create_dir_all(root.join("target/bench"))?;
    cmd::run(Command::new(&bin).args(["bench", "--json"]).arg(&json))?;
    eprintln!("bench: wrote {}", json.display());

    let capture = capture.map_or_else(|| root.join(DEFAULT_CAPTURE), Path::to_path_buf);
    if !capture.exists() {
        eprintln!("bench: SKIPPED replay vs tshark: {} is absent", capture.display());
        return Ok(());
    }
    let ours = median_time(
        Command::new(&bin)
            .args(["inspect", "--format", "json", "--pcap"])
            .arg(&capture),
    )?;
    let theirs = median_time(
        Command::new("tshark")
            .args(["-q", "-z", "sctp,stat", "-r"])
            .arg(&capture),
    )?;
    println!(
        "replay of {}: sctp-user inspect {:.3} s, tshark -z sctp,stat {:.3} s: inspect is {:.1}x faster",
        capture.file_name().unwrap_or_default().to_string_lossy(),
        ours.as_secs_f64(),
        theirs.as_secs_f64(),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    Ok(())
}

/// Median wall time of `ROUNDS` runs, the two commands interleaved by the caller's order.
fn median_time(cmd: &mut Command) -> Result<Duration> {
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let status = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("cannot start the timed command")?;
        if !status.success() {
            bail!("{cmd:?} failed ({status})");
        }
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[ROUNDS / 2])
}
