//! The ring buffers of events: what the program saw of each DATA chunk (for the join) and
//! of each SCTP packet (for the association table).

use aya::maps::{MapData, RingBuf};
use bytemuck::Zeroable as _;
use sctp_common::abi::{DataEvent, PacketSummary};

/// Every DATA event waiting in the ring buffer.
pub fn drain_events(ring: &mut RingBuf<MapData>) -> Vec<DataEvent> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        if item.len() >= std::mem::size_of::<DataEvent>() {
            out.push(bytemuck::pod_read_unaligned(&item[..std::mem::size_of::<DataEvent>()]));
        }
    }
    out
}

/// Every packet summary waiting in the ring buffer. Each arrives cut after its last chunk
/// (see `PacketSummary::used_len`); the chunks past it read as zero.
pub fn drain_summaries(ring: &mut RingBuf<MapData>) -> Vec<PacketSummary> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        out.extend(summary(&item));
    }
    out
}

/// The summary in a ring buffer record, if the record holds a whole one.
fn summary(record: &[u8]) -> Option<PacketSummary> {
    let mut s = PacketSummary::zeroed();
    let dst = bytemuck::bytes_of_mut(&mut s);
    dst.get_mut(..record.len())?.copy_from_slice(record);
    (record.len() >= PacketSummary::HEADER && record.len() == PacketSummary::used_len(usize::from(s.chunks))).then_some(s)
}
