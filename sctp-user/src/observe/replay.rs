//! The replay behind `sctp-user inspect --pcap FILE`: every frame through the loaded XDP program with
//! `BPF_PROG_TEST_RUN`, then the counters it kept.

use std::path::Path;

use anyhow::Result;

use super::{capture, Snapshot};
use crate::{
    bpf::{LoadOptions, XdpSctp},
    rules::{self, Compiled},
    sys::privilege::require_root,
};

/// `BPF_PROG_TEST_RUN` refuses XDP input shorter than an Ethernet header.
const MIN_XDP_FRAME: usize = 14;

/// What a replay saw.
pub struct Replay {
    pub snapshot: Snapshot,
    /// Frames that could not be given to the program: shorter than an Ethernet header
    /// (no NIC delivers those to XDP) or cut inside their link-layer header.
    pub too_short: u64,
}

/// Replays the capture and returns what the program counted.
pub fn replay(path: &Path, opts: &LoadOptions, rules: &Compiled) -> Result<Replay> {
    require_root()?;
    let frames = capture::read(path)?;
    let mut prog = XdpSctp::load(opts)?;
    rules::apply(&mut prog, rules)?;
    let mut too_short = frames.unconvertible;
    for frame in &frames.frames {
        if frame.len() < MIN_XDP_FRAME {
            too_short += 1;
            continue;
        }
        prog.test_run(frame, 1)?;
    }
    Ok(Replay {
        snapshot: Snapshot::take(&prog)?,
        too_short,
    })
}
