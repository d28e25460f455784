//! The replay behind `sctp-user inspect --pcap FILE`: every frame through the loaded XDP program with
//! `BPF_PROG_TEST_RUN`, then the counters it kept.

use std::path::Path;

use anyhow::Result;

use super::{capture, report::Unreplayed, Snapshot};
use crate::{
    bpf::{LoadOptions, XdpSctp, LINEAR_FRAME_MAX},
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
    /// Frames the kernel would not run the program on: larger than a page without
    /// multi-buffer XDP, or than a multi-buffer test run takes (about 70 KiB).
    pub too_large: u64,
    /// Where the capture stopped being readable before its end, if it did.
    pub damaged: Option<String>,
}

impl Replay {
    #[must_use]
    pub fn unreplayed(&self) -> Unreplayed {
        Unreplayed {
            too_short: self.too_short,
            too_large: self.too_large,
        }
    }
}

/// Replays the capture and returns what the program counted.
pub fn replay(path: &Path, opts: &LoadOptions, rules: &Compiled) -> Result<Replay> {
    require_root()?;
    let frames = capture::read(path)?;
    let opts = LoadOptions {
        multi_buffer: opts.multi_buffer || frames.frames.iter().any(|f| f.len() > LINEAR_FRAME_MAX),
        ..opts.clone()
    };
    let mut prog = XdpSctp::load(&opts)?;
    rules::apply(&mut prog, rules)?;
    let mut too_short = frames.unconvertible;
    let mut too_large = 0;
    for frame in &frames.frames {
        if frame.len() < MIN_XDP_FRAME {
            too_short += 1;
            continue;
        }
        match prog.test_run(frame, 1) {
            Ok(_) => {}
            Err(_) if frame.len() > LINEAR_FRAME_MAX => too_large += 1,
            Err(e) => return Err(e),
        }
    }
    if too_large > 0 {
        log::warn!(
            "{too_large} frame(s) too large for the kernel's test run{} were not replayed",
            if prog.multi_buffer() { " (about 70 KiB at most)" } else { " (this kernel has no multi-buffer XDP: a page at most)" }
        );
    }
    if let Some(d) = &frames.damaged {
        log::warn!("{}: {d}", path.display());
    }
    Ok(Replay {
        snapshot: Snapshot::take(&prog)?,
        too_short,
        too_large,
        damaged: frames.damaged,
    })
}
