//! The maps both sides name: names, kinds, capacities and the slots of the `CONFIG`
//! array. The XDP program declares each map under this name (its static's identifier);
//! user space opens, resizes and pins them by it. A host test checks every map of the
//! built object against [`MAPS`].

use core::mem::size_of;

use super::{
    messages::{PendingKey, PendingRequest, ResponseKey},
    rules::{AddrKey, Bucket, MessageBucketKey, PpidKey, RuleSet, SrcPrefix, TagEntry, GENERATIONS},
    stats::{FlowKey, FlowStats, GlobalStats, RoundTrips},
};

/// Slot of `CONFIG`: the events user space wants, a set of `events` bits.
pub const CONFIG_EVENTS: u32 = 0;
/// Bits of the `CONFIG_EVENTS` slot.
pub mod events {
    /// A `DataEvent` per DATA / I-DATA chunk (the join).
    pub const DATA: u32 = 1;
    /// A `PacketSummary` per SCTP packet walked (the association table).
    pub const PACKETS: u32 = 2;
}
/// Slot of `CONFIG`: the active rule-set generation (0 or 1).
pub const CONFIG_GENERATION: u32 = 1;
/// Slots of `CONFIG`.
pub const CONFIG_SLOTS: u32 = 2;

/// Default capacity of `FLOWS` (user space may resize it at load time).
pub const FLOW_CAPACITY: u32 = 16_384;
/// Flows of associations whose handshake was not seen to complete (met mid-way, or
/// made up by someone who does not know the tags) that one CPU may make a second, by
/// default, after a burst of [`PROVISIONAL_FLOW_BURST`] or a quarter of the flow map's
/// capacity, whichever is less (`NEW_FLOW_BUCKET`).
pub const PROVISIONAL_FLOW_RATE: u32 = 100;
pub const PROVISIONAL_FLOW_BURST: u32 = 4_096;
/// Bytes of the `DATA_EVENTS` ring buffer.
pub const DATA_EVENTS_BYTES: u32 = 1 << 20;
/// Bytes of the `PACKET_EVENTS` ring buffer: about 50,000 one-chunk packets, 80 ms of
/// 600,000 packets a second (user space drains it every 20 ms).
pub const PACKET_EVENTS_BYTES: u32 = 1 << 22;
/// Source prefixes of both generations together.
pub const SRC_PREFIX_CAPACITY: u32 = 16_384;
/// `deny-ppid` PPIDs of both generations together.
pub const PPID_CAPACITY: u32 = 1024;
/// Learned verification tags.
pub const VTAG_CAPACITY: u32 = 65_536;
/// Per-source INIT token buckets.
pub const INIT_BUCKET_CAPACITY: u32 = 65_536;
/// Per-source buckets of the `message-rate` rules (one per source and rule).
pub const MESSAGE_BUCKET_CAPACITY: u32 = 65_536;
/// Diameter requests waiting for their answers (`PENDING`): some seconds of a busy
/// link's requests; user space takes out those unanswered after a timeout.
pub const PENDING_CAPACITY: u32 = 65_536;
/// (direction, application, command) keys of Diameter response times (`RESPONSES`).
pub const RESPONSE_CAPACITY: u32 = 4096;
/// Directions of associations met mid-way that user space paired (`MIDWAY`).
pub const MIDWAY_CAPACITY: u32 = 4096;

/// Kernel map types (`enum bpf_map_type`) of the maps below.
pub mod kind {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const LRU_HASH: u32 = 9;
    pub const LPM_TRIE: u32 = 11;
    pub const RINGBUF: u32 = 27;
}

/// One map of the program as both sides must see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSpec {
    pub name: &'static str,
    /// A [`kind`] value.
    pub kind: u32,
    /// Bytes of a key (0 for the ring buffer, which has none).
    pub key_size: usize,
    /// Bytes of a value (0 for the ring buffer).
    pub value_size: usize,
    /// Capacity the object declares (bytes for the ring buffer).
    pub max_entries: u32,
    /// Pinned by `run`: outlives the controller (counters, rules and their state).
    pub pinned: bool,
}

pub const GLOBAL: MapSpec = spec("GLOBAL", kind::PERCPU_ARRAY, 4, size_of::<GlobalStats>(), 1, true);
pub const FLOWS: MapSpec =
    spec("FLOWS", kind::LRU_HASH, size_of::<FlowKey>(), size_of::<FlowStats>(), FLOW_CAPACITY, true);
/// `GLOBAL` and `FLOWS` of the packets leaving (the TC egress program's).
pub const EGRESS_GLOBAL: MapSpec = spec("EGRESS_GLOBAL", kind::PERCPU_ARRAY, 4, size_of::<GlobalStats>(), 1, true);
pub const EGRESS_FLOWS: MapSpec =
    spec("EGRESS_FLOWS", kind::LRU_HASH, size_of::<FlowKey>(), size_of::<FlowStats>(), FLOW_CAPACITY, true);
/// Per CPU, the token bucket of new flows of unknown associations.
pub const NEW_FLOW_BUCKET: MapSpec = spec("NEW_FLOW_BUCKET", kind::PERCPU_ARRAY, 4, size_of::<Bucket>(), 1, false);
pub const ZERO_FLOW: MapSpec = spec("ZERO_FLOW", kind::PERCPU_ARRAY, 4, size_of::<FlowStats>(), 1, false);
pub const DATA_EVENTS: MapSpec = spec("DATA_EVENTS", kind::RINGBUF, 0, 0, DATA_EVENTS_BYTES, false);
pub const PACKET_EVENTS: MapSpec = spec("PACKET_EVENTS", kind::RINGBUF, 0, 0, PACKET_EVENTS_BYTES, false);
/// Packet summaries the full `PACKET_EVENTS` ring had no room for, per CPU.
pub const PACKET_EVENTS_LOST: MapSpec = spec("PACKET_EVENTS_LOST", kind::PERCPU_ARRAY, 4, size_of::<u64>(), 1, false);
/// DATA events and withdrawals the full `DATA_EVENTS` ring had no room for, per CPU.
pub const DATA_EVENTS_LOST: MapSpec = spec("DATA_EVENTS_LOST", kind::PERCPU_ARRAY, 4, size_of::<u64>(), 1, false);
pub const CONFIG: MapSpec = spec("CONFIG", kind::ARRAY, 4, size_of::<u32>(), CONFIG_SLOTS, true);
pub const RULES: MapSpec = spec("RULES", kind::ARRAY, 4, size_of::<RuleSet>(), GENERATIONS, true);
/// An LPM trie's key is the prefix length (a u32) and the data.
pub const SRC_RULES: MapSpec =
    spec("SRC_RULES", kind::LPM_TRIE, 4 + size_of::<SrcPrefix>(), size_of::<u32>(), SRC_PREFIX_CAPACITY, true);
pub const PPID_RULES: MapSpec =
    spec("PPID_RULES", kind::HASH, size_of::<PpidKey>(), size_of::<u32>(), PPID_CAPACITY, true);
pub const VTAGS: MapSpec =
    spec("VTAGS", kind::LRU_HASH, size_of::<FlowKey>(), size_of::<TagEntry>(), VTAG_CAPACITY, true);
/// The other direction's tag of an association met mid-way, by this direction's flow:
/// the directory's partner for round trips alone, which user space pairs (reversed
/// addresses and ports) and writes back. Apart from `VTAGS`: a pair made up by someone
/// who invented both tags must not pass `validate-vtag`, and at worst evicts other such
/// pairs.
pub const MIDWAY: MapSpec =
    spec("MIDWAY", kind::LRU_HASH, size_of::<FlowKey>(), size_of::<u32>(), MIDWAY_CAPACITY, false);
pub const INIT_BUCKETS: MapSpec =
    spec("INIT_BUCKETS", kind::LRU_HASH, size_of::<AddrKey>(), size_of::<Bucket>(), INIT_BUCKET_CAPACITY, true);
pub const MESSAGE_BUCKETS: MapSpec = spec(
    "MESSAGE_BUCKETS",
    kind::LRU_HASH,
    size_of::<MessageBucketKey>(),
    size_of::<Bucket>(),
    MESSAGE_BUCKET_CAPACITY,
    true,
);
/// Diameter requests waiting for their answers, arriving or leaving (see
/// `parse::tally`); LRU: a request whose answer never comes and that user space did not
/// take out yet gives way to the newest.
pub const PENDING: MapSpec =
    spec("PENDING", kind::LRU_HASH, size_of::<PendingKey>(), size_of::<PendingRequest>(), PENDING_CAPACITY, true);
/// Response times of Diameter answers, by the direction they came on and their command.
pub const RESPONSES: MapSpec =
    spec("RESPONSES", kind::LRU_HASH, size_of::<ResponseKey>(), size_of::<RoundTrips>(), RESPONSE_CAPACITY, true);
pub const GLOBAL_BUCKET: MapSpec = spec("GLOBAL_BUCKET", kind::ARRAY, 4, size_of::<Bucket>(), 1, true);
/// Per-CPU slot that walk offsets pass through (`Packet::launder`).
pub const CURSOR: MapSpec = spec("CURSOR", kind::PERCPU_ARRAY, 4, size_of::<u64>(), 1, false);
/// Per CPU, the coarse clock as last read and the tick (jiffies) it was read at: the
/// coarse clock moves once a tick, so it is read again only when the tick changed (the
/// tick is a load the kernel inlines; the clock, a helper call).
pub const TICK_CLOCK: MapSpec = spec("TICK_CLOCK", kind::PERCPU_ARRAY, 4, size_of::<[u64; 2]>(), 1, false);
/// The replay clock (`inspect --engine kernel`): the capture time of the frame being
/// replayed, read instead of the kernel's clock when the program was loaded for replay.
pub const REPLAY_CLOCK: MapSpec = spec("REPLAY_CLOCK", kind::ARRAY, 4, size_of::<u64>(), 1, false);
/// The message count's programs, by the tail call that reaches them (see
/// `parse::tally`): of the XDP programs reading linear data and of the TC egress
/// programs, at [`TALLY_LINEAR`] (the walk under `bpf_loop`) or [`TALLY_BOUNDED`]; of the
/// multi-buffer XDP program, at 0.
pub const XDP_TALLY: MapSpec = spec("XDP_TALLY", kind::PROG_ARRAY, 4, 4, 2, false);
pub const XDP_TALLY_FRAGS: MapSpec = spec("XDP_TALLY_FRAGS", kind::PROG_ARRAY, 4, 4, 1, false);
pub const TC_TALLY: MapSpec = spec("TC_TALLY", kind::PROG_ARRAY, 4, 4, 2, false);
pub const TALLY_LINEAR: u32 = 0;
pub const TALLY_BOUNDED: u32 = 1;
/// Per-CPU scratch of the chunk walk (`parse::WalkFindings`, whose size the program's own type
/// gives): a name only; and the egress program's.
pub const SEEN: &str = "SEEN";
pub const EGRESS_SEEN: &str = "EGRESS_SEEN";
/// Per-CPU scratch of the message count (`parse::tally::TallyState`), arriving and
/// leaving: names only, as [`SEEN`].
pub const TALLY: &str = "TALLY";
pub const EGRESS_TALLY: &str = "EGRESS_TALLY";

/// Every map of the program but the scratch ones ([`SEEN`], [`TALLY`] and theirs of the
/// packets leaving).
pub const MAPS: [MapSpec; 27] = [
    GLOBAL,
    FLOWS,
    EGRESS_GLOBAL,
    EGRESS_FLOWS,
    NEW_FLOW_BUCKET,
    ZERO_FLOW,
    DATA_EVENTS,
    PACKET_EVENTS,
    PACKET_EVENTS_LOST,
    DATA_EVENTS_LOST,
    CONFIG,
    RULES,
    SRC_RULES,
    PPID_RULES,
    VTAGS,
    INIT_BUCKETS,
    MESSAGE_BUCKETS,
    PENDING,
    RESPONSES,
    GLOBAL_BUCKET,
    CURSOR,
    TICK_CLOCK,
    REPLAY_CLOCK,
    MIDWAY,
    XDP_TALLY,
    XDP_TALLY_FRAGS,
    TC_TALLY,
];

const fn spec(
    name: &'static str,
    kind: u32,
    key_size: usize,
    value_size: usize,
    max_entries: u32,
    pinned: bool,
) -> MapSpec {
    MapSpec { name, kind, key_size, value_size, max_entries, pinned }
}

/// The maps `run` pins, in [`MAPS`] order.
pub fn pinned() -> impl Iterator<Item = &'static MapSpec> {
    MAPS.iter().filter(|m| m.pinned)
}
