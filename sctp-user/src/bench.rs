//! `sctp-user bench`: the XDP program's cost per packet through BPF_PROG_TEST_RUN, for a
//! table of packet classes, next to an empty XDP program measured in the same run.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context as _, Result};
use aya::{
    programs::{TestRun as _, TestRunOptions, Xdp},
    Ebpf,
};
use sctp_common::{
    chunk::ty,
    fixtures::{Chunk, SctpPacket, V4, V6},
};
use serde::Serialize;

use crate::program::{require_root, LoadOptions, XdpSctp};

static EMPTY: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/empty-xdp"));

/// Measured results; the JSON written to `target/bench/xdp.json`.
#[derive(Serialize)]
pub struct Results {
    /// Instructions the verifier processed (None before kernel 5.16).
    pub verified_instructions: Option<u32>,
    /// Wall time of loading the program (verification included).
    pub load_ms: f64,
    pub baseline_ns: f64,
    pub classes: BTreeMap<String, f64>,
}

/// The packet classes of the benchmark table.
#[must_use]
pub fn classes() -> Vec<(&'static str, Vec<u8>)> {
    let mut malformed = SctpPacket::new(V4, 1, vec![Chunk::data(1, 0, 0, 0, 100)]).frame();
    // Chunk length 0xfff0: runs past the packet.
    malformed[14 + 20 + 12 + 2..14 + 20 + 12 + 4].copy_from_slice(&0xfff0u16.to_be_bytes());
    vec![
        (
            "one_data_chunk",
            SctpPacket::new(V4, 7, vec![Chunk::data(1, 0, 0, 18, 100)]).frame(),
        ),
        (
            "eight_bundled_data_chunks",
            SctpPacket::new(V4, 7, (0..8).map(|i| Chunk::data(i, 0, i as u16, 18, 100)).collect()).frame(),
        ),
        (
            "sack_with_gap_blocks",
            SctpPacket::new(V4, 7, vec![Chunk::sack(1000, 65536, 4, 2)]).frame(),
        ),
        (
            "init",
            SctpPacket::new(V4, 0, vec![Chunk::init(ty::INIT, 0xdead_beef, 106_496, 10, 65535, 42)]).frame(),
        ),
        (
            "ipv6_one_data_chunk",
            SctpPacket::new(V6, 7, vec![Chunk::data(1, 0, 0, 18, 100)]).frame(),
        ),
        ("malformed_chunk_length", malformed),
    ]
}

/// Runs every class `rounds` times, each round with `repeat` runs in the kernel, the
/// baseline interleaved; reports the median of the rounds (shared machines are noisy).
pub fn run(repeat: u32, rounds: usize) -> Result<Results> {
    require_root()?;
    let start = std::time::Instant::now();
    let mut prog = XdpSctp::load(LoadOptions::default())?;
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let verified_instructions = prog.verified_instructions()?;
    let mut empty = Ebpf::load(EMPTY).context("loading the empty XDP program")?;
    let empty: &mut Xdp = empty
        .program_mut("empty_xdp")
        .context("empty_xdp missing")?
        .try_into()?;
    empty.load()?;
    let time_empty = |frame: &[u8]| -> Result<Duration> {
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::default()
        };
        Ok(empty.test_run(opts)?.duration)
    };
    let mut baseline = Vec::new();
    let mut per_class: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..rounds {
        for (name, frame) in classes() {
            baseline.push(time_empty(&frame)?.as_secs_f64() * 1e9);
            let (_, d) = prog.test_run(&frame, repeat)?;
            per_class
                .entry(name.to_string())
                .or_default()
                .push(d.as_secs_f64() * 1e9);
        }
    }
    Ok(Results {
        verified_instructions,
        load_ms,
        baseline_ns: median(&mut baseline),
        classes: per_class.into_iter().map(|(k, mut v)| (k, median(&mut v))).collect(),
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
