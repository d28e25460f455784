//! The replay behind `sctp-user inspect`: every frame of a capture, as it is read, through
//! one engine on the capture's clock, then the counters it kept. The host engine may
//! spread the work over threads ([`super::sharded`]).

use std::path::Path;

use anyhow::Result;
use sctp_common::parse::{locate_sctp, NoTally};

use super::{
    assoc::Associations,
    capture::{Capture, Frame, ReadStats},
    checksum::Checksums,
    engine::{Fed, HostEngine, KernelEngine, Kind, MIN_FRAME},
    packet_view,
    report::Unreplayed,
    sharded,
    trace::Traces,
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
    /// Threads the host engine may use (1: all in this one).
    pub threads: usize,
    /// Trace the conversations for a report's charts.
    pub trace: bool,
}

/// What a replay saw.
pub struct Replay {
    pub engine: Kind,
    /// Threads the engine ran on.
    pub threads: usize,
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
    /// The conversations traced, when asked for.
    pub traces: Option<Traces>,
    pub associations: Associations,
}

impl Replay {
    #[must_use]
    pub fn unreplayed(&self) -> Unreplayed {
        Unreplayed { too_short: self.too_short, too_large: self.too_large }
    }
}

/// What every frame goes through before an engine, whichever it is: its checksum, its
/// trace, and the check that an engine takes it at all.
pub struct FrameChecks {
    pub checksums: Option<Checksums>,
    pub traces: Option<Traces>,
    pub associations: Associations,
    pub too_short: u64,
}

impl FrameChecks {
    #[must_use]
    pub fn new(opts: &Options) -> Self {
        Self {
            checksums: opts.checksums.then(Checksums::default),
            traces: opts.trace.then(Traces::default),
            associations: Associations::default(),
            too_short: 0,
        }
    }

    /// Whether the frame goes on to the engine.
    pub fn admit(&mut self, data: &[u8], cut: bool, ts_ns: u64) -> bool {
        // One search for the SCTP header serves the checksum and the packet's view.
        if let Ok(loc) = locate_sctp(data, &mut NoTally) {
            if let Some(c) = &mut self.checksums {
                c.check(data, &loc, cut);
            }
            if let Some(p) = packet_view::view_at(data, &loc) {
                if let (Some((id, from)), Some(t)) = (self.associations.add(&p, ts_ns), &mut self.traces) {
                    t.add(&p, ts_ns, id, from);
                }
            }
        }
        let long_enough = data.len() >= MIN_FRAME;
        self.too_short += u64::from(!long_enough);
        long_enough
    }

    /// Adds another shard's checks.
    pub fn merge(&mut self, other: FrameChecks) {
        if let (Some(a), Some(b)) = (&mut self.checksums, &other.checksums) {
            a.merge(b);
        }
        if let (Some(a), Some(b)) = (&mut self.traces, other.traces) {
            a.merge(b, self.associations.list.len());
        }
        self.associations.merge(other.associations);
        self.too_short += other.too_short;
    }
}

/// The capture's first and last frame times so far.
pub(super) fn extend_span(span: &mut Option<(u64, u64)>, frame: &Frame) {
    *span = Some((span.map_or(frame.ts_ns, |(first, _)| first), frame.ts_ns));
}

/// Replays the capture at `path` and returns what the engine counted.
pub fn replay(path: &Path, opts: &Options, rules: &Compiled) -> Result<Replay> {
    // The program is loaded before the capture is read: a missing privilege says so at once.
    let kernel = match opts.engine {
        Kind::Kernel => Some(KernelEngine::load(&opts.load)?),
        Kind::Host => None,
    };
    let mut capture = Capture::open(path)?;
    let mut span_ns = None;
    let (snapshot, checks, too_large, threads) = if let Some(mut k) = kernel {
        let (checks, too_large) = replay_kernel(&mut capture, &mut k, opts, rules, &mut span_ns)?;
        (k.snapshot(rules)?, checks, too_large, 1)
    } else {
        let threads = if rules.limits_init_rates() && opts.threads > 1 {
            log::info!("INIT rate rules judge every INIT in capture order: the replay runs on one thread");
            1
        } else {
            opts.threads.max(1)
        };
        let (snapshot, checks) = replay_host(&mut capture, threads, opts, rules, &mut span_ns);
        (snapshot, checks, 0, threads)
    };
    let mut associations = checks.associations;
    // The counts of each direction are the engine's (kernel == host covers them).
    associations.overlay(&|k| snapshot.flows.get(k));
    let read = capture.stats.clone();
    if let Some(d) = &read.damaged {
        log::warn!("{}: {d}", path.display());
    }
    Ok(Replay {
        engine: opts.engine,
        threads,
        snapshot,
        too_short: checks.too_short + read.unconvertible,
        too_large,
        read,
        checksums: checks.checksums,
        span_ns,
        traces: checks.traces,
        associations,
    })
}

/// Every frame through the host engine, on `threads` threads.
fn replay_host(
    capture: &mut Capture,
    threads: usize,
    opts: &Options,
    rules: &Compiled,
    span_ns: &mut Option<(u64, u64)>,
) -> (Snapshot, FrameChecks) {
    // The rules start with the capture: the learning window opens at its first frame,
    // which is then given once more for the replay.
    let first = capture.next_frame().map(|f| f.ts_ns);
    let set = rules.set_at(first.unwrap_or(0));
    capture.rewind_one();
    if threads > 1 {
        return sharded::replay(capture, threads, rules, &set, opts, span_ns);
    }
    let mut engine = HostEngine::new(rules, &set);
    let mut checks = FrameChecks::new(opts);
    while let Some(frame) = capture.next_frame() {
        extend_span(span_ns, &frame);
        if checks.admit(frame.data, frame.cut, frame.ts_ns) {
            engine.run(frame.data, frame.ts_ns);
        }
    }
    (engine.into_snapshot(), checks)
}

/// Every frame through the XDP program; the frame checks and the frames too large.
fn replay_kernel(
    capture: &mut Capture,
    k: &mut KernelEngine,
    opts: &Options,
    rules: &Compiled,
    span_ns: &mut Option<(u64, u64)>,
) -> Result<(FrameChecks, u64)> {
    let mut checks = FrameChecks::new(opts);
    let mut too_large = 0;
    while let Some(frame) = capture.next_frame() {
        extend_span(span_ns, &frame);
        if checks.admit(frame.data, frame.cut, frame.ts_ns) && k.run(rules, frame.data, frame.ts_ns)? == Fed::TooLarge {
            too_large += 1;
        }
    }
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
    Ok((checks, too_large))
}
