//! Where the walk reports: counters ([`Tally`]), and DATA chunks and packet summaries
//! ([`DataSink`]).

use crate::abi::{Counter, DataEvent, GlobalStats, PacketSummary};

/// Where counters go: the global counters, or nowhere ([`NoTally`], for the egress
/// program, which only learns tags).
pub trait Tally {
    fn bump(&mut self, c: Counter, n: u64);
}

impl Tally for GlobalStats {
    #[inline(always)]
    fn bump(&mut self, c: Counter, n: u64) {
        GlobalStats::bump(self, c, n);
    }
}

/// Counts nothing.
pub struct NoTally;

impl Tally for NoTally {
    #[inline(always)]
    fn bump(&mut self, _: Counter, _: u64) {}
}

/// Where the parser reports DATA chunks, and each packet's summary once it was judged;
/// the XDP program's sinks are ring buffers written only when user space asked for them.
pub trait DataSink {
    /// Whether `data` takes DATA events: the walk fills none otherwise.
    fn wants_data(&self) -> bool;

    fn data(&mut self, ev: &DataEvent);

    /// The interface the packets come from or go to (0: unknown, as in a capture).
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        0
    }

    /// Whether `packet` takes summaries: none is completed otherwise.
    #[inline(always)]
    fn wants_summaries(&self) -> bool {
        false
    }

    /// The summary of a packet that went through the chunk walk (its time, direction and
    /// further fields are the sink's to set).
    #[inline(always)]
    fn packet(&mut self, _summary: &mut PacketSummary) {}
}

/// A sink that drops everything.
pub struct NoEvents;

impl DataSink for NoEvents {
    #[inline(always)]
    fn wants_data(&self) -> bool {
        false
    }

    #[inline(always)]
    fn data(&mut self, _: &DataEvent) {}
}

#[cfg(any(test, feature = "testing"))]
impl DataSink for alloc::vec::Vec<DataEvent> {
    fn wants_data(&self) -> bool {
        true
    }

    fn data(&mut self, ev: &DataEvent) {
        self.push(*ev);
    }
}

/// Everything reported, in order (tests).
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct Recorder {
    pub data: alloc::vec::Vec<DataEvent>,
    pub packets: alloc::vec::Vec<PacketSummary>,
}

#[cfg(any(test, feature = "testing"))]
impl DataSink for Recorder {
    fn wants_data(&self) -> bool {
        true
    }

    fn wants_summaries(&self) -> bool {
        true
    }

    fn data(&mut self, ev: &DataEvent) {
        self.data.push(*ev);
    }

    /// As the kernel's ring carries it: the slots past the last chunk (left from earlier
    /// packets in the scratch space) read as zero.
    fn packet(&mut self, summary: &mut PacketSummary) {
        let mut s = *summary;
        for slot in s.chunk.iter_mut().skip(usize::from(s.chunks)) {
            *slot = bytemuck::Zeroable::zeroed();
        }
        self.packets.push(s);
    }
}
