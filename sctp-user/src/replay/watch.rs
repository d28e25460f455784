//! What watches every frame of a replay besides the engine, whichever engine it is: the
//! checks (its checksum; whether an engine takes it at all) and the conversations (the
//! association table and, for the HTML report, the traces).

use sctp_common::parse::{locate_sctp, NoTally};

use super::engine::MIN_FRAME;
use crate::{
    assoc::{packet_view, Conversations},
    capture::checksum::Checksums,
};

/// What the frame watch keeps besides the checks that always run.
#[derive(Clone, Copy, Debug)]
pub struct WatchOptions {
    /// Check every SCTP packet's `CRC32c`.
    pub checksums: bool,
    /// Trace the conversations for a report's charts.
    pub trace: bool,
}

/// The checks on each frame.
#[derive(Default)]
pub struct FrameChecks {
    pub checksums: Option<Checksums>,
    /// Frames shorter than an Ethernet header: no engine runs on them.
    pub too_short: u64,
}

/// The checks and the conversations of the frames one engine ran on.
pub struct Watch {
    pub checks: FrameChecks,
    pub conversations: Conversations,
}

impl Watch {
    #[must_use]
    pub fn new(opts: WatchOptions) -> Self {
        Self {
            checks: FrameChecks { checksums: opts.checksums.then(Checksums::default), too_short: 0 },
            conversations: Conversations::new(opts.trace),
        }
    }

    /// Watches one frame; whether it goes on to the engine.
    pub fn frame(&mut self, data: &[u8], cut: bool, ts_ns: u64) -> bool {
        // One search for the SCTP header serves the checksum and the packet's view.
        if let Ok(loc) = locate_sctp(data, &mut NoTally) {
            if let Some(c) = &mut self.checks.checksums {
                c.check(data, &loc, cut);
            }
            if let Some(p) = packet_view::view_at(data, &loc) {
                self.conversations.add(&p, ts_ns, (data, &loc));
            }
        }
        let long_enough = data.len() >= MIN_FRAME;
        self.checks.too_short += u64::from(!long_enough);
        long_enough
    }

    /// Adds another shard's.
    pub fn merge(&mut self, other: Watch) {
        if let (Some(a), Some(b)) = (&mut self.checks.checksums, &other.checks.checksums) {
            a.merge(b);
        }
        self.checks.too_short += other.checks.too_short;
        self.conversations.merge(other.conversations);
    }
}
