//! For tests only (feature `testing`): the fixture table and the bounds every packet's
//! counters keep. Neither is in the release binary.

pub mod fixtures;

use crate::abi::{Counter, FlowStats, GlobalStats};

/// What a packet's counters may add at most, given its frame length: no field of the
/// packet (a chunk length, a SACK's counts, an IP length) may make a counter count more
/// than the frame holds. `stats` and `flow` are the counts of this one frame. A message
/// for each bound broken.
#[must_use]
pub fn bounds_broken(frame_len: usize, stats: &GlobalStats, flow: Option<&FlowStats>) -> Option<alloc::string::String> {
    use alloc::format;
    let len = frame_len as u64;
    let c = |x| stats.get(x);
    let checks = [
        ("DATA payload + 16 per DATA chunk", c(Counter::DataPayloadBytes) + 16 * c(Counter::DataChunks)),
        ("4 per chunk", 4 * c(Counter::Chunks)),
        ("4 per SACK gap block and duplicate TSN", 4 * (c(Counter::SackGapBlocks) + c(Counter::SackDupTsns))),
        ("flow bytes", flow.map_or(0, |f| f.bytes)),
        ("flow DATA payload", flow.map_or(0, |f| f.data_payload_bytes)),
    ];
    let broken: alloc::vec::Vec<_> =
        checks.iter().filter(|(_, n)| *n > len).map(|(what, n)| format!("{what} = {n} > frame length {len}")).collect();
    (!broken.is_empty()).then(|| broken.join("; "))
}
