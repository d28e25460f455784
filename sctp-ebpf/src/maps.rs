//! Every map of the programs, named by its static (the names, kinds and capacities are
//! `sctp_common::abi::maps`, checked against this object by a host test).

use aya_ebpf::{
    bindings::BPF_F_NO_COMMON_LRU,
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use sctp_common::{
    abi::{
        maps::{
            CONFIG_SLOTS, DATA_EVENTS_BYTES, FLOW_CAPACITY, INIT_BUCKET_CAPACITY, MESSAGE_BUCKET_CAPACITY,
            MIDWAY_CAPACITY, PACKET_EVENTS_BYTES, PENDING_CAPACITY, PPID_CAPACITY, RESPONSE_CAPACITY,
            SRC_PREFIX_CAPACITY, VTAG_CAPACITY,
        },
        AddrKey, Bucket, FlowKey, FlowStats, GlobalStats, MessageBucketKey, PendingKey, PendingRequest, PpidKey,
        ResponseKey, RoundTrips, RuleSet, SrcPrefix, TagEntry, GENERATIONS,
    },
    parse::{tally::TallyState, WalkFindings},
};

/// Global counters (one slot, per CPU).
#[map]
pub(crate) static GLOBAL: PerCpuArray<GlobalStats> = PerCpuArray::with_max_entries(1, 0);

/// The association directions of the packets arriving (per flow: ports and tag), one
/// value shared by every CPU (see `FlowStats`). LRU so a flood of new tags evicts old
/// flows instead of failing, with an LRU list per CPU (no lock shared by every CPU on
/// each new flow); how fast flows of unknown associations may be made is bounded (see
/// `NEW_FLOW_BUCKET`). User space may resize it at load time.
#[map]
pub(crate) static FLOWS: LruHashMap<FlowKey, FlowStats> =
    LruHashMap::with_max_entries(FLOW_CAPACITY, BPF_F_NO_COMMON_LRU);

/// Per CPU, the tokens for flows of associations whose handshake was not seen to
/// complete (see `abi::maps::NEW_FLOW_BUCKET`).
#[map]
pub(crate) static NEW_FLOW_BUCKET: PerCpuArray<Bucket> = PerCpuArray::with_max_entries(1, 0);

/// An all-zero `FlowStats` to insert new flows from (too big for the 512-byte stack).
#[map]
pub(crate) static ZERO_FLOW: PerCpuArray<FlowStats> = PerCpuArray::with_max_entries(1, 0);

/// DATA / I-DATA chunks for user space's join, written only while the `CONFIG_EVENTS` slot is non-zero.
#[map]
pub(crate) static DATA_EVENTS: RingBuf = RingBuf::with_byte_size(DATA_EVENTS_BYTES, 0);

/// A summary of each SCTP packet walked, for user space's association table, written only
/// while the `CONFIG_EVENTS` slot has `events::PACKETS`.
#[map]
pub(crate) static PACKET_EVENTS: RingBuf = RingBuf::with_byte_size(PACKET_EVENTS_BYTES, 0);

/// Summaries `PACKET_EVENTS` had no room for (user space reports them: its association
/// counts then miss packets).
#[map]
pub(crate) static PACKET_EVENTS_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// DATA events and withdrawals `DATA_EVENTS` had no room for (user space reports them: a
/// lost withdrawal counts dropped DATA as delivered, a lost event leaves a message
/// unmatched).
#[map]
pub(crate) static DATA_EVENTS_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Settings from user space: which events to record, and the active rule-set
/// generation, flipped by user space after it filled the other one.
#[map]
pub(crate) static CONFIG: Array<u32> = Array::with_max_entries(CONFIG_SLOTS, 0);

/// The two rule-set generations.
#[map]
pub(crate) static RULES: Array<RuleSet> = Array::with_max_entries(GENERATIONS, 0);

/// `deny-src` / `allow-src` prefixes of both generations: value = allow bit | rule id.
#[map]
pub(crate) static SRC_RULES: LpmTrie<SrcPrefix, u32> = LpmTrie::with_max_entries(SRC_PREFIX_CAPACITY, 0);

/// `deny-ppid` PPIDs of both generations: value = rule id.
#[map]
pub(crate) static PPID_RULES: HashMap<PpidKey, u32> = HashMap::with_max_entries(PPID_CAPACITY, 0);

/// Verification tags of live associations (`validate-vtag`). Shared by every CPU and by
/// the egress program; LRU so a flood of handshakes cannot fill it for good.
#[map]
pub(crate) static VTAGS: LruHashMap<FlowKey, TagEntry> = LruHashMap::with_max_entries(VTAG_CAPACITY, 0);

/// Associations met mid-way, paired by user space: `abi::maps::MIDWAY`.
#[map]
pub(crate) static MIDWAY: LruHashMap<FlowKey, u32> = LruHashMap::with_max_entries(MIDWAY_CAPACITY, 0);

/// INIT token bucket per source address (`init-rate`).
#[map]
pub(crate) static INIT_BUCKETS: LruHashMap<AddrKey, Bucket> = LruHashMap::with_max_entries(INIT_BUCKET_CAPACITY, 0);

/// Message token bucket per source address and rule (`message-rate`).
#[map]
pub(crate) static MESSAGE_BUCKETS: LruHashMap<MessageBucketKey, Bucket> =
    LruHashMap::with_max_entries(MESSAGE_BUCKET_CAPACITY, 0);

/// Diameter requests waiting for their answers (see `sctp_common::abi::PendingKey`).
#[map]
pub(crate) static PENDING: LruHashMap<PendingKey, PendingRequest> = LruHashMap::with_max_entries(PENDING_CAPACITY, 0);

/// Response times of Diameter answers (see `sctp_common::abi::ResponseKey`).
#[map]
pub(crate) static RESPONSES: LruHashMap<ResponseKey, RoundTrips> = LruHashMap::with_max_entries(RESPONSE_CAPACITY, 0);

/// The INIT token bucket of all sources together (`global-init-rate`).
#[map]
pub(crate) static GLOBAL_BUCKET: Array<Bucket> = Array::with_max_entries(1, 0);

/// Scratch space for the chunk walk's notes (see `sctp_common::parse::process`).
#[map]
pub(crate) static SEEN: PerCpuArray<WalkFindings> = PerCpuArray::with_max_entries(1, 0);

/// The capture time of the frame being replayed.
#[map]
pub(crate) static REPLAY_CLOCK: Array<u64> = Array::with_max_entries(1, 0);

/// See `abi::maps::TICK_CLOCK`: [tick, coarse clock].
#[map]
pub(crate) static TICK_CLOCK: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);

/// One u64 per CPU that walk offsets pass through (see `Packet::launder`).
#[map]
pub(crate) static CURSOR: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Counters of the packets leaving, as `GLOBAL` of those arriving.
#[map]
pub(crate) static EGRESS_GLOBAL: PerCpuArray<GlobalStats> = PerCpuArray::with_max_entries(1, 0);

/// Flows of the packets leaving, as `FLOWS` of those arriving.
#[map]
pub(crate) static EGRESS_FLOWS: LruHashMap<FlowKey, FlowStats> =
    LruHashMap::with_max_entries(FLOW_CAPACITY, BPF_F_NO_COMMON_LRU);

/// The egress program's walk scratch: its own, as XDP could run between its steps.
#[map]
pub(crate) static EGRESS_SEEN: PerCpuArray<WalkFindings> = PerCpuArray::with_max_entries(1, 0);

/// The message count of the XDP programs that read their frames' linear data (slot
/// `TALLY_LINEAR` and `TALLY_BOUNDED`), reached by a tail call after the walk: a program
/// verified apart (see `sctp_common::parse::tally`). User space fills the slot of the
/// variant it loaded.
#[map]
pub(crate) static XDP_TALLY: ProgramArray = ProgramArray::with_max_entries(2, 0);

/// The same for the multi-buffer XDP program (the kernel tail-calls only between
/// programs that agree on multi-buffer).
#[map]
pub(crate) static XDP_TALLY_FRAGS: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// The same for the TC egress programs (slots as `XDP_TALLY`'s).
#[map]
pub(crate) static TC_TALLY: ProgramArray = ProgramArray::with_max_entries(2, 0);

/// The message count's position between its steps, per CPU: arriving and leaving.
#[map]
pub(crate) static TALLY: PerCpuArray<TallyState> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub(crate) static EGRESS_TALLY: PerCpuArray<TallyState> = PerCpuArray::with_max_entries(1, 0);
