//! Where the walk reports: counters ([`Tally`]) and DATA chunks ([`DataSink`]).

use crate::abi::{Counter, DataEvent, GlobalStats};

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

/// Where the parser reports DATA chunks; the XDP program's sink is a ring buffer that is
/// written only when user space asked for events.
pub trait DataSink {
    fn data(&mut self, ev: &DataEvent);
}

/// A sink that drops everything.
pub struct NoEvents;

impl DataSink for NoEvents {
    #[inline(always)]
    fn data(&mut self, _: &DataEvent) {}
}

#[cfg(any(test, feature = "testing"))]
impl DataSink for alloc::vec::Vec<DataEvent> {
    fn data(&mut self, ev: &DataEvent) {
        self.push(*ev);
    }
}
