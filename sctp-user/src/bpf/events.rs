//! The ring buffers of events: what the program saw of each DATA chunk (for the join) and
//! of each SCTP packet (for the association table).

use aya::maps::{MapData, RingBuf};
use bytemuck::Zeroable as _;
use sctp_common::abi::{DataEvent, PacketSummary, WITHDRAWN};

/// How long a DATA event is held back for a withdrawal that may still come: far longer
/// than the program takes for one packet (microseconds).
const WITHDRAWAL_WAIT_NS: u64 = 10_000_000;
/// DATA events held back at most: beyond, all go on unchecked rather than take memory.
const HELD_MAX: usize = 1 << 20;

/// The DATA events of packets the rules dropped, taken out before the join counts them
/// (see `abi::WITHDRAWN`): each event waits until no withdrawal can still come for it.
#[derive(Default)]
pub struct Withdrawals {
    held: Vec<DataEvent>,
}

/// What a withdrawal names: the packet's time, tag and ports.
fn packet_of(e: &DataEvent) -> (u64, u32, u16, u16) {
    (e.ts_ns, e.vtag, e.src_port, e.dst_port)
}

impl Withdrawals {
    /// Takes `new` (drained after `now_ns`, the program's clock, was read) and hands back,
    /// in order, the events no withdrawal can still come for (all of them when `last`),
    /// without those withdrawn.
    pub fn settle(&mut self, new: Vec<DataEvent>, now_ns: u64, last: bool) -> Vec<DataEvent> {
        self.held.extend(new);
        let withdrawn: std::collections::HashSet<_> =
            self.held.iter().filter(|e| e.chunk_type == WITHDRAWN).map(packet_of).collect();
        if !withdrawn.is_empty() {
            self.held.retain(|e| e.chunk_type != WITHDRAWN && !withdrawn.contains(&packet_of(e)));
        }
        let all = last || self.held.len() > HELD_MAX;
        let (ready, wait) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|e| all || e.ts_ns.saturating_add(WITHDRAWAL_WAIT_NS) <= now_ns);
        self.held = wait;
        ready
    }
}

/// Every DATA event waiting in the ring buffer.
pub fn drain_events(ring: &mut RingBuf<MapData>) -> Vec<DataEvent> {
    drain(ring, |item| {
        let bytes = item.get(..std::mem::size_of::<DataEvent>())?;
        Some(bytemuck::pod_read_unaligned(bytes))
    })
}

/// Every packet summary waiting in the ring buffer. Each arrives cut after its last chunk
/// (see `PacketSummary::used_len`); the chunks past it read as zero.
pub fn drain_summaries(ring: &mut RingBuf<MapData>) -> Vec<PacketSummary> {
    drain(ring, summary)
}

/// Every record waiting in the ring buffer that `parse` makes something of.
fn drain<T>(ring: &mut RingBuf<MapData>, parse: impl Fn(&[u8]) -> Option<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        out.extend(parse(&item));
    }
    out
}

/// The summary in a ring buffer record, if the record holds a whole one.
fn summary(record: &[u8]) -> Option<PacketSummary> {
    let mut s = PacketSummary::zeroed();
    let dst = bytemuck::bytes_of_mut(&mut s);
    dst.get_mut(..record.len())?.copy_from_slice(record);
    (record.len() >= PacketSummary::HEADER && record.len() == PacketSummary::used_len(usize::from(s.chunks)))
        .then_some(s)
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable as _;
    use sctp_common::{abi::WITHDRAWN, proto::chunk::ty};

    use super::*;

    fn ev(ts_ns: u64, tsn: u32, chunk_type: u8) -> DataEvent {
        DataEvent { ts_ns, tsn, vtag: 7, src_port: 1, dst_port: 2, chunk_type, ..DataEvent::zeroed() }
    }

    fn tsns(events: &[DataEvent]) -> Vec<u32> {
        events.iter().map(|e| e.tsn).collect()
    }

    #[test]
    fn withdrawn_events_never_reach_the_join_even_across_drains() {
        let ms = 1_000_000;
        let mut w = Withdrawals::default();
        // Drained mid-packet: the second packet's withdrawal is not in the ring yet.
        let first =
            w.settle(vec![ev(ms, 1, ty::DATA), ev(2 * ms, 2, ty::DATA), ev(2 * ms, 3, ty::DATA)], 3 * ms, false);
        assert!(first.is_empty(), "younger than the wait: held back");
        let second = w.settle(vec![ev(2 * ms, 0, WITHDRAWN), ev(40 * ms, 4, ty::DATA)], 20 * ms, false);
        assert_eq!(tsns(&second), [1], "the second packet's events are withdrawn, the third's still wait");
        assert_eq!(tsns(&w.settle(Vec::new(), 21 * ms, true)), [4], "the last drain hands over everything");
    }

    #[test]
    fn a_withdrawal_takes_only_its_own_packet() {
        let mut w = Withdrawals::default();
        let other_port = DataEvent { src_port: 9, ..ev(5, 2, ty::DATA) };
        let out = w.settle(vec![ev(5, 1, ty::DATA), other_port, ev(6, 3, ty::I_DATA), ev(5, 0, WITHDRAWN)], 0, true);
        assert_eq!(tsns(&out), [2, 3]);
    }
}
