//! Map keys and values shared by the XDP program and user space. All are `repr(C)`,
//! fixed-width and free of padding (bytemuck's derive checks it at compile time).

use bytemuck::{Pod, Zeroable};

use crate::{chunk, rules::MAX_RULES};

/// Global counters, one slot each in [`GlobalStats::counters`].
///
/// Packet-level outcomes come first; every `Err*` is a reason a packet could not be
/// parsed completely (a packet gets at most one). Values are part of the map ABI: append.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Every frame the program ran on.
    Frames,
    /// Frames whose EtherType is neither IPv4 nor IPv6 (after up to two VLAN tags).
    NotIp,
    /// IP packets whose upper-layer protocol is not SCTP.
    NotSctp,
    /// Packets with an SCTP common header that was parsed.
    Sctp,
    Ipv4,
    Ipv6,
    /// Frames carrying at least one VLAN tag.
    VlanTagged,
    /// First fragments of a fragmented IP packet (parsed as far as they go).
    FirstFragments,
    /// Later fragments: no SCTP header inside, counted and passed.
    LaterFragments,
    /// Chunks walked, all types.
    Chunks,
    /// DATA and I-DATA chunks.
    DataChunks,
    /// User payload of DATA and I-DATA chunks (chunk length minus the chunk header).
    DataPayloadBytes,
    /// DATA / I-DATA with the U bit.
    DataUnordered,
    /// DATA / I-DATA carrying part of a message (B and E not both set).
    DataFragments,
    /// SACK gap ack blocks reported.
    SackGapBlocks,
    /// Duplicate TSNs reported in SACKs.
    SackDupTsns,
    /// A chunk walk stopped at the end of a first fragment (not an error).
    FragmentCutWalks,
    VerdictPass,
    VerdictDrop,
    /// SCTP packets whose flow had no entry and could not get one (the LRU map refused):
    /// counted here, their chunks not walked.
    FlowUnavailable,
    /// Packets with any of the `Err*` reasons below.
    Malformed,
    ErrEthernetTruncated,
    /// More than two VLAN tags.
    ErrVlanDepth,
    ErrVlanTruncated,
    ErrIpv4Truncated,
    /// IHL below 5, or a total length shorter than the header.
    ErrIpv4HeaderLength,
    ErrIpv6Truncated,
    /// More IPv6 extension headers than the walk allows.
    ErrIpv6ExtLimit,
    ErrIpv6ExtTruncated,
    /// The SCTP common header does not fit in the IP payload.
    ErrSctpHeaderTruncated,
    /// A chunk whose length field is below 4.
    ErrChunkTooShort,
    /// A chunk whose length runs past the end of the IP packet or frame.
    ErrChunkBeyondPacket,
    /// A chunk too short for its type's fixed fields (DATA < 16, SACK < 16, INIT < 20, ...).
    ErrChunkFieldsTruncated,
    /// More chunks than the walk's bound: the rest of the packet was not walked.
    ErrChunkWalkLimit,
    /// 1-3 bytes after the last chunk, too few for a chunk header.
    ErrTrailingBytes,
    /// Verification tags learned (`validate-vtag`), from INIT / INIT-ACK or the learning window.
    VtagsLearned,
    /// Associations forgotten after an ABORT or SHUTDOWN-COMPLETE.
    VtagsForgotten,
    /// Tags forgotten because the association was idle longer than `vtag-idle`.
    VtagsExpired,
    // Drop reasons from here to the end: a dropped packet counts exactly one.
    /// The source address matched a `deny-src` prefix.
    DropDenySrc,
    /// `allow-src` prefixes exist and the source matched none.
    DropSrcNotAllowed,
    /// `allow-port` ports exist and the destination port is not one.
    DropPortNotAllowed,
    /// `validate-vtag`: out of the blue, and RFC 9260 8.4/8.5 does not let it through.
    DropVtagUnknown,
    /// `init-rate`: the source's INIT token bucket was empty.
    DropInitRateSource,
    /// `global-init-rate`: the shared INIT token bucket was empty.
    DropInitRateGlobal,
    /// `malformed = drop`: an SCTP packet the parser rejects.
    DropMalformed,
    /// More chunks than `max-chunks`.
    DropTooManyChunks,
    /// A chunk of a `deny-chunk` type.
    DropDenyChunk,
    /// `deny-violations`: INIT, INIT-ACK or SHUTDOWN-COMPLETE bundled with another chunk.
    DropBundling,
    /// `deny-violations`: INIT in a packet whose verification tag is not 0.
    DropInitNonzeroTag,
    /// `deny-violations`: DATA or I-DATA in a packet whose verification tag is 0.
    DropDataZeroTag,
    /// A DATA or I-DATA chunk longer than `max-data-chunk`.
    DropDataTooLarge,
    /// A DATA or I-DATA chunk with a `deny-ppid` PPID.
    DropDenyPpid,
}

impl Counter {
    /// Number of counters.
    pub const COUNT: usize = Counter::DropDenyPpid as usize + 1;
    /// Parse-error reasons: every counter from the first to the last.
    pub const FIRST_ERROR: Counter = Counter::ErrEthernetTruncated;
    pub const LAST_ERROR: Counter = Counter::ErrTrailingBytes;
    /// Drop reasons: every counter from this one to the end.
    pub const FIRST_DROP: Counter = Counter::DropDenySrc;
    /// Number of drop reasons.
    pub const DROP_REASONS: usize = Self::COUNT - Self::FIRST_DROP as usize;

    /// Every counter in index order.
    pub const ALL: [Counter; Self::COUNT] = [
        Counter::Frames,
        Counter::NotIp,
        Counter::NotSctp,
        Counter::Sctp,
        Counter::Ipv4,
        Counter::Ipv6,
        Counter::VlanTagged,
        Counter::FirstFragments,
        Counter::LaterFragments,
        Counter::Chunks,
        Counter::DataChunks,
        Counter::DataPayloadBytes,
        Counter::DataUnordered,
        Counter::DataFragments,
        Counter::SackGapBlocks,
        Counter::SackDupTsns,
        Counter::FragmentCutWalks,
        Counter::VerdictPass,
        Counter::VerdictDrop,
        Counter::FlowUnavailable,
        Counter::Malformed,
        Counter::ErrEthernetTruncated,
        Counter::ErrVlanDepth,
        Counter::ErrVlanTruncated,
        Counter::ErrIpv4Truncated,
        Counter::ErrIpv4HeaderLength,
        Counter::ErrIpv6Truncated,
        Counter::ErrIpv6ExtLimit,
        Counter::ErrIpv6ExtTruncated,
        Counter::ErrSctpHeaderTruncated,
        Counter::ErrChunkTooShort,
        Counter::ErrChunkBeyondPacket,
        Counter::ErrChunkFieldsTruncated,
        Counter::ErrChunkWalkLimit,
        Counter::ErrTrailingBytes,
        Counter::VtagsLearned,
        Counter::VtagsForgotten,
        Counter::VtagsExpired,
        Counter::DropDenySrc,
        Counter::DropSrcNotAllowed,
        Counter::DropPortNotAllowed,
        Counter::DropVtagUnknown,
        Counter::DropInitRateSource,
        Counter::DropInitRateGlobal,
        Counter::DropMalformed,
        Counter::DropTooManyChunks,
        Counter::DropDenyChunk,
        Counter::DropBundling,
        Counter::DropInitNonzeroTag,
        Counter::DropDataZeroTag,
        Counter::DropDataTooLarge,
        Counter::DropDenyPpid,
    ];

    /// snake_case name used in JSON and metric labels.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Counter::Frames => "frames",
            Counter::NotIp => "not_ip",
            Counter::NotSctp => "not_sctp",
            Counter::Sctp => "sctp",
            Counter::Ipv4 => "ipv4",
            Counter::Ipv6 => "ipv6",
            Counter::VlanTagged => "vlan_tagged",
            Counter::FirstFragments => "first_fragments",
            Counter::LaterFragments => "later_fragments",
            Counter::Chunks => "chunks",
            Counter::DataChunks => "data_chunks",
            Counter::DataPayloadBytes => "data_payload_bytes",
            Counter::DataUnordered => "data_unordered",
            Counter::DataFragments => "data_fragments",
            Counter::SackGapBlocks => "sack_gap_blocks",
            Counter::SackDupTsns => "sack_dup_tsns",
            Counter::FragmentCutWalks => "fragment_cut_walks",
            Counter::VerdictPass => "verdict_pass",
            Counter::VerdictDrop => "verdict_drop",
            Counter::FlowUnavailable => "flow_unavailable",
            Counter::Malformed => "malformed",
            Counter::ErrEthernetTruncated => "ethernet_truncated",
            Counter::ErrVlanDepth => "vlan_depth",
            Counter::ErrVlanTruncated => "vlan_truncated",
            Counter::ErrIpv4Truncated => "ipv4_truncated",
            Counter::ErrIpv4HeaderLength => "ipv4_header_length",
            Counter::ErrIpv6Truncated => "ipv6_truncated",
            Counter::ErrIpv6ExtLimit => "ipv6_ext_limit",
            Counter::ErrIpv6ExtTruncated => "ipv6_ext_truncated",
            Counter::ErrSctpHeaderTruncated => "sctp_header_truncated",
            Counter::ErrChunkTooShort => "chunk_too_short",
            Counter::ErrChunkBeyondPacket => "chunk_beyond_packet",
            Counter::ErrChunkFieldsTruncated => "chunk_fields_truncated",
            Counter::ErrChunkWalkLimit => "chunk_walk_limit",
            Counter::ErrTrailingBytes => "trailing_bytes",
            Counter::VtagsLearned => "vtags_learned",
            Counter::VtagsForgotten => "vtags_forgotten",
            Counter::VtagsExpired => "vtags_expired",
            Counter::DropDenySrc => "drop_deny_src",
            Counter::DropSrcNotAllowed => "drop_src_not_allowed",
            Counter::DropPortNotAllowed => "drop_port_not_allowed",
            Counter::DropVtagUnknown => "drop_vtag_unknown",
            Counter::DropInitRateSource => "drop_init_rate_source",
            Counter::DropInitRateGlobal => "drop_init_rate_global",
            Counter::DropMalformed => "drop_malformed",
            Counter::DropTooManyChunks => "drop_too_many_chunks",
            Counter::DropDenyChunk => "drop_deny_chunk",
            Counter::DropBundling => "drop_bundling",
            Counter::DropInitNonzeroTag => "drop_init_nonzero_tag",
            Counter::DropDataZeroTag => "drop_data_zero_tag",
            Counter::DropDataTooLarge => "drop_data_too_large",
            Counter::DropDenyPpid => "drop_deny_ppid",
        }
    }

    /// Whether this counter is a parse-error reason.
    #[must_use]
    pub fn is_error(self) -> bool {
        Self::is_error_code(self as u32)
    }

    /// [`Counter::is_error`] of a counter's number.
    #[inline(always)]
    #[must_use]
    pub fn is_error_code(code: u32) -> bool {
        (Self::FIRST_ERROR as u32..=Self::LAST_ERROR as u32).contains(&code)
    }

    /// Whether this counter is a drop reason.
    #[must_use]
    pub fn is_drop(self) -> bool {
        self as u32 >= Self::FIRST_DROP as u32
    }

    /// A drop reason's name without the `drop_` prefix (the key of `"drops"` in JSON and
    /// the `reason` label of metrics).
    #[must_use]
    pub fn reason(self) -> &'static str {
        let name = self.name();
        name.strip_prefix("drop_").unwrap_or(name)
    }
}

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

/// Per-CPU global counters: the single value of the `GLOBAL` per-CPU array.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct GlobalStats {
    pub counters: [u64; Counter::COUNT],
    /// Chunks by raw type, so unknown types keep their number too.
    pub chunk_types: [u64; 256],
    /// Packets dropped per rule: rule `id` of rule-set generation `gen` at
    /// `gen * MAX_RULES + id` (see `rules`).
    pub rule_hits: [u64; 2 * MAX_RULES],
}

impl GlobalStats {
    #[inline(always)]
    pub fn bump(&mut self, c: Counter, n: u64) {
        // `get_mut`, not indexing: no panic path may reach the bpf object.
        if let Some(v) = self.counters.get_mut(c as usize) {
            *v += n;
        }
    }

    #[must_use]
    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize]
    }

    /// Adds another CPU's (or run's) counters into this one.
    pub fn merge(&mut self, other: &GlobalStats) {
        for (a, b) in self.counters.iter_mut().zip(other.counters.iter()) {
            *a += b;
        }
        for (a, b) in self.chunk_types.iter_mut().zip(other.chunk_types.iter()) {
            *a += b;
        }
        for (a, b) in self.rule_hits.iter_mut().zip(other.rule_hits.iter()) {
            *a += b;
        }
    }
}

/// Per-flow key: stable across the paths of a multi-homed association. The tag is the
/// one in the common header, i.e. the receiver's; one association is two flows.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
pub struct FlowKey {
    pub src_port: u16,
    pub dst_port: u16,
    pub vtag: u32,
}

/// One DATA or I-DATA chunk as the wire showed it: what user space joins with the
/// messages the socket API delivers (by ports, tag and TSN).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct DataEvent {
    pub ts_ns: u64,
    pub vtag: u32,
    pub tsn: u32,
    /// PPID (host order); 0 for I-DATA fragments after the first, which carry none.
    pub ppid: u32,
    pub payload_len: u32,
    /// SSN for DATA, MID for I-DATA.
    pub ssn_or_mid: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub stream: u16,
    pub flags: u8,
    pub chunk_type: u8,
    pub _pad: u32,
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

#[cfg(any(test, feature = "fixtures"))]
impl DataSink for alloc::vec::Vec<DataEvent> {
    fn data(&mut self, ev: &DataEvent) {
        self.push(*ev);
    }
}

/// Address family values for [`FlowStats::family`].
pub const FAMILY_IPV4: u32 = 4;
pub const FAMILY_IPV6: u32 = 6;

/// ERROR cause code buckets per flow: codes 0..=14 by number, 15 and above in the last.
pub const ERROR_CAUSE_BUCKETS: usize = 16;

/// Per-flow counters and last-seen protocol state (value of the `FLOWS` LRU per-CPU hash).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct FlowStats {
    pub packets: u64,
    /// Sum of IP packet lengths (header included), as IP declares them.
    pub bytes: u64,
    pub chunks: [u64; chunk::BUCKETS],
    pub data_chunks: u64,
    pub data_payload_bytes: u64,
    pub data_unordered: u64,
    pub data_fragments: u64,
    /// DATA / I-DATA whose TSN is at or below the highest TSN seen before it:
    /// retransmissions and duplicates as the wire shows them. Judged per CPU: exact when a
    /// flow's packets are handled on one CPU (RSS keeps a flow on one queue; replays run on
    /// one CPU); a flow spread over CPUs can be under-counted, never over-counted. The
    /// join's duplicate count, from the DATA events of all CPUs, is exact.
    pub data_at_or_below_highest: u64,
    pub sack_gap_blocks: u64,
    pub sack_dup_tsns: u64,
    /// ABORT and SHUTDOWN-COMPLETE chunks with the T bit (tag reflected, RFC 9260 8.5.1).
    pub t_bit_chunks: u64,
    pub error_causes: [u64; ERROR_CAUSE_BUCKETS],
    pub malformed: u64,
    /// Packets of this flow dropped by a rule judged after the chunk walk (rules judged
    /// before it drop without creating a flow: a flood must not evict real flows).
    pub dropped: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// Source and destination address of the last packet (IPv4 in the first 4 bytes).
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub family: u32,
    /// Non-zero once `highest_tsn` holds a TSN.
    pub tsn_seen: u32,
    pub highest_tsn: u32,
    pub last_ppid: u32,
    pub last_cum_tsn_ack: u32,
    pub last_a_rwnd: u32,
    /// From the last INIT or INIT-ACK of this flow: what pairs the two directions.
    pub init_tag: u32,
    pub init_a_rwnd: u32,
    pub init_tsn: u32,
    pub init_out_streams: u16,
    pub init_in_streams: u16,
    /// `ty::INIT` or `ty::INIT_ACK` once one was seen, else 0.
    pub init_chunk_type: u32,
    pub last_stream: u16,
    pub _pad: u16,
}

#[cfg(feature = "user")]
mod user {
    use crate::rules::{AddrKey, Bucket, PpidKey, RuleSet, SrcPrefix, TagEntry};
    // SAFETY: all are repr(C), padding-free plain data (bytemuck::Pod proves it).
    unsafe impl aya::Pod for super::GlobalStats {}
    unsafe impl aya::Pod for RuleSet {}
    unsafe impl aya::Pod for SrcPrefix {}
    unsafe impl aya::Pod for PpidKey {}
    unsafe impl aya::Pod for TagEntry {}
    unsafe impl aya::Pod for AddrKey {}
    unsafe impl aya::Pod for Bucket {}
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowStats {}
    unsafe impl aya::Pod for super::DataEvent {}
}

impl FlowStats {
    /// Folds another CPU's view of the same flow into this one. Counters add up; each group
    /// of last-seen state (addresses, INIT, SACK, DATA) comes from the most recent CPU that
    /// saw that kind of chunk at all: a CPU that saw only later packets of the flow knows
    /// nothing of its INIT.
    pub fn merge(&mut self, other: &FlowStats) {
        if other.packets == 0 {
            return;
        }
        if self.packets == 0 {
            *self = *other;
            return;
        }
        let (newer, older) = if other.last_seen_ns > self.last_seen_ns {
            (*other, *self)
        } else {
            (*self, *other)
        };
        let mut m = newer;
        m.first_seen_ns = self.first_seen_ns.min(other.first_seen_ns);
        if newer.init_chunk_type == 0 {
            m.init_chunk_type = older.init_chunk_type;
            m.init_tag = older.init_tag;
            m.init_a_rwnd = older.init_a_rwnd;
            m.init_tsn = older.init_tsn;
            m.init_out_streams = older.init_out_streams;
            m.init_in_streams = older.init_in_streams;
        }
        if newer.chunks[chunk::bucket(chunk::ty::SACK)] == 0 {
            m.last_cum_tsn_ack = older.last_cum_tsn_ack;
            m.last_a_rwnd = older.last_a_rwnd;
        }
        if newer.data_chunks == 0 {
            m.last_ppid = older.last_ppid;
            m.last_stream = older.last_stream;
        }
        m.tsn_seen = newer.tsn_seen | older.tsn_seen;
        m.highest_tsn = match (newer.tsn_seen != 0, older.tsn_seen != 0) {
            (true, true) if (older.highest_tsn.wrapping_sub(newer.highest_tsn) as i32) > 0 => older.highest_tsn,
            (false, true) => older.highest_tsn,
            _ => newer.highest_tsn,
        };
        m.packets = self.packets + other.packets;
        m.bytes = self.bytes + other.bytes;
        m.data_chunks = self.data_chunks + other.data_chunks;
        m.data_payload_bytes = self.data_payload_bytes + other.data_payload_bytes;
        m.data_unordered = self.data_unordered + other.data_unordered;
        m.data_fragments = self.data_fragments + other.data_fragments;
        m.data_at_or_below_highest = self.data_at_or_below_highest + other.data_at_or_below_highest;
        m.sack_gap_blocks = self.sack_gap_blocks + other.sack_gap_blocks;
        m.sack_dup_tsns = self.sack_dup_tsns + other.sack_dup_tsns;
        m.t_bit_chunks = self.t_bit_chunks + other.t_bit_chunks;
        m.malformed = self.malformed + other.malformed;
        m.dropped = self.dropped + other.dropped;
        for (i, c) in m.chunks.iter_mut().enumerate() {
            *c = self.chunks[i] + other.chunks[i];
        }
        for (i, c) in m.error_causes.iter_mut().enumerate() {
            *c = self.error_causes[i] + other.error_causes[i];
        }
        *self = m;
    }
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable as _;

    use super::*;
    use crate::chunk::{bucket, ty};

    #[test]
    fn merge_keeps_init_state_from_the_cpu_that_saw_it() {
        let mut cpu0 = FlowStats::zeroed();
        cpu0.packets = 1;
        cpu0.last_seen_ns = 10;
        cpu0.first_seen_ns = 10;
        cpu0.init_chunk_type = u32::from(ty::INIT_ACK);
        cpu0.init_tag = 77;
        let mut cpu1 = FlowStats::zeroed();
        cpu1.packets = 3;
        cpu1.last_seen_ns = 50;
        cpu1.first_seen_ns = 20;
        cpu1.data_chunks = 2;
        cpu1.last_ppid = 60;
        cpu1.tsn_seen = 1;
        cpu1.highest_tsn = 5;
        cpu1.chunks[bucket(ty::DATA)] = 2;
        let mut total = FlowStats::zeroed();
        total.merge(&cpu0);
        total.merge(&cpu1);
        assert_eq!(
            (total.packets, total.data_chunks, total.chunks[bucket(ty::DATA)]),
            (4, 2, 2)
        );
        assert_eq!((total.init_chunk_type, total.init_tag), (u32::from(ty::INIT_ACK), 77));
        assert_eq!((total.last_ppid, total.highest_tsn, total.tsn_seen), (60, 5, 1));
        assert_eq!((total.first_seen_ns, total.last_seen_ns), (10, 50));
    }
}
