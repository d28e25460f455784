//! The contract between the XDP program and user space: map names, kinds, capacities and
//! slots ([`maps`]), the counter indices ([`Counter`]) and the layouts of every key and
//! value. Both sides import these; nothing here is written twice.

mod counter;
pub mod maps;
mod messages;
mod rules;
mod stats;

pub use counter::Counter;
pub use maps::MapSpec;
pub use messages::{MessageSlot, PendingKey, PendingRequest, ResponseKey, TsnWindow, MESSAGE_SLOTS};
pub use rules::{
    enable, handshake, rule_id, AddrKey, Bucket, MessageBucketKey, MessageRule, PpidKey, RuleSet, SrcPrefix, TagEntry,
    GENERATIONS, LABEL_LEN, MAX_DENY_CHUNK, MAX_MESSAGE_RULES, MAX_RULES, NO_RULE, NO_RULES, REASON_SLOTS, SRC_ALLOW,
    SRC_PREFIX_HEADER_BITS,
};
pub use stats::ip_addr;
pub use stats::{
    ChunkSummary, DataEvent, FlowKey, FlowStats, GlobalStats, PacketSummary, PathRoundTrips, PathSlot, RoundTrips,
    EGRESS, ERROR_CAUSE_BUCKETS, FAMILY_IPV4, FAMILY_IPV6, INGRESS, PATH_SLOTS, RTT_BOUNDS_US, RTT_BUCKETS,
    SUMMARY_CHUNKS, WITHDRAWN,
};

#[cfg(feature = "user")]
mod user {
    use super::{
        AddrKey, Bucket, DataEvent, FlowKey, FlowStats, GlobalStats, PacketSummary, PendingKey, PendingRequest,
        PpidKey, ResponseKey, RoundTrips, RuleSet, SrcPrefix, TagEntry,
    };
    // SAFETY: all are repr(C), padding-free plain data (bytemuck::Pod proves it).
    unsafe impl aya::Pod for GlobalStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RuleSet {}
    // SAFETY: as above.
    unsafe impl aya::Pod for SrcPrefix {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PpidKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for TagEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for AddrKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Bucket {}
    // SAFETY: as above.
    unsafe impl aya::Pod for FlowKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for FlowStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for DataEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PacketSummary {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PendingKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PendingRequest {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ResponseKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RoundTrips {}
}
