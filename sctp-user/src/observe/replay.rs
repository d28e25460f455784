//! The replay behind `sctp-user inspect`: every frame of a capture, as it is read, through
//! one engine on the capture's clock, then the counters it kept.

use std::{cell::OnceCell, path::Path};

use anyhow::Result;

use super::{
    capture::{Capture, ReadStats},
    checksum::Checksums,
    engine::{Fed, HostEngine, KernelEngine, Kind, MIN_FRAME},
    report::Unreplayed,
    Snapshot,
};
use crate::{bpf::LoadOptions, rules::Compiled};

/// How to replay.
pub struct Options {
    pub engine: Kind,
    /// For the kernel engine.
    pub load: LoadOptions,
    /// Check every SCTP packet's `CRC32c`.
    pub checksums: bool,
}

/// What a replay saw.
pub struct Replay {
    pub engine: Kind,
    pub snapshot: Snapshot,
    /// Frames that could not be given to the engine: shorter than an Ethernet header
    /// (no NIC delivers those to XDP) or cut inside their link-layer header.
    pub too_short: u64,
    /// Frames the kernel would not run the program on: larger than a page without
    /// multi-buffer XDP, or than a multi-buffer test run takes (about 70 KiB).
    pub too_large: u64,
    /// What reading the capture found besides frames (damage included).
    pub read: ReadStats,
    /// The checksums, unless told not to check them.
    pub checksums: Option<Checksums>,
    /// Capture time of the first and the last frame, in ns since the epoch.
    pub span_ns: Option<(u64, u64)>,
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

/// Replays the capture at `path` and returns what the engine counted.
pub fn replay(path: &Path, opts: &Options, rules: &Compiled) -> Result<Replay> {
    // The program is loaded before the capture is read: a missing privilege says so at once.
    let mut kernel = match opts.engine {
        Kind::Kernel => Some(KernelEngine::load(&opts.load)?),
        Kind::Host => None,
    };
    let mut capture = Capture::open(path)?;
    // The rules start with the capture: the learning window opens at its first frame.
    let start = OnceCell::new();
    let mut host = None;
    let mut checksums = opts.checksums.then(Checksums::default);
    let (mut too_short, mut too_large) = (0, 0);
    let mut span_ns = None;
    while let Some(frame) = capture.next_frame() {
        let set = start.get_or_init(|| rules.set_at(frame.ts_ns));
        span_ns = Some((span_ns.map_or(frame.ts_ns, |(first, _)| first), frame.ts_ns));
        if let Some(c) = &mut checksums {
            c.check(frame.data, frame.cut);
        }
        if frame.data.len() < MIN_FRAME {
            too_short += 1;
            continue;
        }
        match &mut kernel {
            Some(k) => {
                if k.run(rules, frame.data, frame.ts_ns)? == Fed::TooLarge {
                    too_large += 1;
                }
            }
            None => host
                .get_or_insert_with(|| HostEngine::new(rules, set))
                .run(frame.data, frame.ts_ns),
        }
    }
    let read = capture.stats.clone();
    if let Some(d) = &read.damaged {
        log::warn!("{}: {d}", path.display());
    }
    let snapshot = match &mut kernel {
        Some(k) => {
            if too_large > 0 {
                log::warn!(
                    "{too_large} frame(s) too large for the kernel's test run{} were not replayed",
                    if k.multi_buffer() {
                        " (about 70 KiB at most)"
                    } else {
                        " (this kernel has no multi-buffer XDP: a page at most)"
                    }
                );
            }
            k.snapshot(rules)?
        }
        None => match &host {
            Some(h) => h.snapshot(),
            None => HostEngine::new(rules, start.get_or_init(|| rules.set_at(0))).snapshot(),
        },
    };
    Ok(Replay {
        engine: opts.engine,
        snapshot,
        too_short: too_short + read.unconvertible,
        too_large,
        read,
        checksums,
        span_ns,
    })
}
