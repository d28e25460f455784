//! The DATA events ring buffer: what the program saw of each DATA chunk, for the join.

use aya::maps::{MapData, RingBuf};
use sctp_common::abi::DataEvent;

/// Every event waiting in the ring buffer.
pub fn drain_events(ring: &mut RingBuf<MapData>) -> Vec<DataEvent> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        if item.len() >= std::mem::size_of::<DataEvent>() {
            out.push(bytemuck::pod_read_unaligned(&item[..std::mem::size_of::<DataEvent>()]));
        }
    }
    out
}
