//! The replay behind `sctp-user inspect`: every frame of a capture, as it is read, through
//! one engine on the capture's clock, then the counters it kept. The host engine may
//! spread the work over threads ([`sharded`]).

use std::path::Path;

use anyhow::Result;
pub mod engine;
mod sharded;
pub mod watch;

use engine::{FrameOutcome, HostEngine, KernelEngine, Kind};
use watch::{Watch, WatchOptions};

use crate::{
    assoc::{messages::Messages, trace::Traces, Associations},
    bpf::LoadOptions,
    capture::{checksum::Checksums, extend_span, Capture, ReadStats},
    doc::Unreplayed,
    rules::Compiled,
    snapshot::Snapshot,
};

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
    /// The application messages of every association, and of packets in none.
    pub messages: Messages,
}

impl Options {
    fn watch(&self) -> WatchOptions {
        WatchOptions { checksums: self.checksums, trace: self.trace }
    }
}

impl Replay {
    #[must_use]
    pub fn unreplayed(&self) -> Unreplayed {
        Unreplayed { too_short: self.too_short, too_large: self.too_large }
    }
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
    let (snapshot, watch, too_large, threads) = if let Some(mut k) = kernel {
        let (watch, too_large) = replay_kernel(&mut capture, &mut k, opts, rules, &mut span_ns)?;
        (k.snapshot(rules)?, watch, too_large, 1)
    } else {
        let threads = if rules.limits_rates() && opts.threads > 1 {
            log::info!("INIT and message rate rules judge in capture order: the replay runs on one thread");
            1
        } else {
            opts.threads.max(1)
        };
        let (snapshot, watch) = replay_host(&mut capture, threads, opts, rules, &mut span_ns);
        (snapshot, watch, 0, threads)
    };
    let Watch { checks, mut conversations } = watch;
    conversations.close(span_ns.map_or(0, |(_, last)| last));
    let mut associations = conversations.associations;
    // The counts of each direction are the engine's (kernel == host covers them), its
    // messages too; the watch times the Diameter answers.
    associations.overlay(&|k| snapshot.flows.get(k));
    let mut messages = conversations.messages.all;
    messages.overlay(snapshot.flows.values());
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
        traces: conversations.traces,
        associations,
        messages,
    })
}

/// Every frame through the host engine, on `threads` threads.
fn replay_host(
    capture: &mut Capture,
    threads: usize,
    opts: &Options,
    rules: &Compiled,
    span_ns: &mut Option<(u64, u64)>,
) -> (Snapshot, Watch) {
    // The rules start with the capture: the learning window opens at its first frame,
    // which is then given once more for the replay.
    let first = capture.next_frame().map(|f| f.ts_ns);
    let set = rules.set_at(first.unwrap_or(0));
    capture.rewind_one();
    if threads > 1 {
        return sharded::replay(capture, threads, rules, &set, opts.watch(), span_ns);
    }
    let mut engine = HostEngine::new(rules, &set);
    let mut watch = Watch::new(opts.watch());
    while let Some(frame) = capture.next_frame() {
        extend_span(span_ns, &frame);
        if watch.frame(frame.data, frame.cut, frame.ts_ns) {
            engine.run(frame.data, frame.ts_ns);
        }
    }
    (engine.into_snapshot(), watch)
}

/// Every frame through the XDP program; the frame checks and the frames too large.
fn replay_kernel(
    capture: &mut Capture,
    k: &mut KernelEngine,
    opts: &Options,
    rules: &Compiled,
    span_ns: &mut Option<(u64, u64)>,
) -> Result<(Watch, u64)> {
    let mut watch = Watch::new(opts.watch());
    let mut too_large = 0;
    while let Some(frame) = capture.next_frame() {
        extend_span(span_ns, &frame);
        if watch.frame(frame.data, frame.cut, frame.ts_ns)
            && k.run(rules, frame.data, frame.ts_ns)? == FrameOutcome::TooLarge
        {
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
    Ok((watch, too_large))
}
