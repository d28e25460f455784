//! The ring buffers of events: what the program saw of each DATA chunk (for the join) and
//! of each SCTP packet (for the association table).

use aya::maps::{MapData, RingBuf};
use bytemuck::Zeroable as _;
use sctp_common::abi::{DataEvent, PacketSummary};

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
