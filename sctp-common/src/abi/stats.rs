//! Map keys and values of the counters, shared by the XDP program and user space. All are
//! `repr(C)`, fixed-width and free of padding (bytemuck's derive checks it at compile time).

use bytemuck::{Pod, Zeroable};

use super::{
    counter::Counter,
    messages::{MessageSlot, TsnWindow, MESSAGE_SLOTS},
    rules::MAX_RULES,
};
use crate::proto::chunk;

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

    /// Moves one packet from `VerdictPass` to `VerdictDrop`: a rule judged after the
    /// verdict dropped it (see `parse::tally`).
    #[inline(always)]
    pub fn pass_to_drop(&mut self) {
        if let Some(v) = self.counters.get_mut(Counter::VerdictPass as usize) {
            *v = v.wrapping_sub(1);
        }
        self.bump(Counter::VerdictDrop, 1);
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
pub struct FlowKey {
    pub src_port: u16,
    pub dst_port: u16,
    pub vtag: u32,
}

impl FlowKey {
    /// Where the kernel counts a packet it refused a flow of its own (see
    /// `maps::PROVISIONAL_FLOW_RATE`): ports 0, which no SCTP packet may carry (RFC 9260
    /// 3.1). User space never shows it.
    pub const SINK: FlowKey = FlowKey { src_port: 0, dst_port: 0, vtag: 0 };
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
    /// DATA, I-DATA, or [`WITHDRAWN`].
    pub chunk_type: u8,
    pub pad: u32,
}

/// [`DataEvent::chunk_type`] of a record that withdraws the events before it with the
/// same time, tag and ports: the rules dropped their packet after the walk had sent them,
/// so the application never gets that DATA.
pub const WITHDRAWN: u8 = 0xff;

/// Chunks a [`PacketSummary`] describes at most: as many as the chunk walk visits.
pub const SUMMARY_CHUNKS: usize = 32;

/// [`PacketSummary::direction`] of a packet arriving (XDP) or leaving (TC egress).
pub const INGRESS: u8 = 0;
pub const EGRESS: u8 = 1;

/// One chunk of a [`PacketSummary`]: its header and the fields associations need.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct ChunkSummary {
    pub chunk_type: u8,
    pub flags: u8,
    /// The chunk's length field.
    pub len: u16,
    /// By type, else 0. DATA and I-DATA: TSN, payload bytes. SACK: cumulative TSN ack,
    /// `a_rwnd`, gap blocks << 16 | duplicate TSNs. INIT and INIT-ACK: initiate tag,
    /// `a_rwnd`, initial TSN.
    pub words: [u32; 3],
}

/// One SCTP packet as the association table needs it: the kernel's per-packet event for
/// user space (`PACKET_EVENTS`), cut after its last chunk (`chunks` of `chunk`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct PacketSummary {
    /// The precise monotonic clock (the capture time in a replay).
    pub ts_ns: u64,
    /// The IP packet's length as it declares it.
    pub ip_len: u32,
    pub vtag: u32,
    pub src_port: u16,
    pub dst_port: u16,
    /// 4 or 6.
    pub family: u8,
    /// Chunks described.
    pub chunks: u8,
    /// [`INGRESS`] or [`EGRESS`].
    pub direction: u8,
    /// Non-zero when a rule judged after the walk dropped the packet.
    pub dropped: u8,
    /// The interface it arrived on or left by (0 where unknown: the host's parser).
    pub ifindex: u32,
    /// Zero (the header stays a multiple of 8 bytes, without padding).
    pub reserved: u32,
    /// IPv4 in the first 4 bytes.
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub chunk: [ChunkSummary; SUMMARY_CHUNKS],
}

impl PacketSummary {
    /// Bytes before the chunks.
    pub const HEADER: usize = core::mem::offset_of!(PacketSummary, chunk);

    /// Bytes of the summary up to its last chunk: what the ring carries.
    #[inline(always)]
    #[must_use]
    pub fn used_len(chunks: usize) -> usize {
        Self::HEADER + chunks.min(SUMMARY_CHUNKS) * core::mem::size_of::<ChunkSummary>()
    }
}

/// Address family values for [`FlowStats::family`].
pub const FAMILY_IPV4: u32 = 4;
pub const FAMILY_IPV6: u32 = 6;

/// An address as flows and summaries store it: 16 bytes, IPv4 in the first four.
#[must_use]
pub fn ip_addr(family: u32, bytes: &[u8; 16]) -> core::net::IpAddr {
    if family == FAMILY_IPV6 {
        core::net::IpAddr::from(*bytes)
    } else {
        core::net::IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
}

/// ERROR cause code buckets per flow: codes 0..=14 by number, 15 and above in the last.
pub const ERROR_CAUSE_BUCKETS: usize = 16;

/// Paths kept per association direction, each a (source address, destination address)
/// pair: a peer multi-homed on two addresses, talking to two of ours, fills four. Packets
/// on further paths are counted in [`FlowStats::paths_beyond`].
pub const PATH_SLOTS: usize = 4;

/// Upper bounds of the round-trip histogram's buckets, in µs (a last one takes the rest):
/// from a LAN's 100 µs to a satellite hop's second.
pub const RTT_BOUNDS_US: [u32; 13] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000];
/// Buckets of the round-trip histogram: one per bound, and one above them all.
pub const RTT_BUCKETS: usize = RTT_BOUNDS_US.len() + 1;

/// Round trips, in ns: count, sum, extremes and a histogram over [`RTT_BOUNDS_US`] (the
/// last bucket above them all). The kernel keeps DATA's in [`FlowStats::rtt`]; user space
/// adds up the associations' and times handshakes and heartbeats in the same type.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RoundTrips {
    pub count: u64,
    pub sum_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub buckets: [u32; RTT_BUCKETS],
}

impl RoundTrips {
    /// Adds one round trip.
    #[inline(always)]
    pub fn add(&mut self, ns: u64) {
        self.min_ns = if self.count == 0 { ns } else { self.min_ns.min(ns) };
        self.max_ns = self.max_ns.max(ns);
        self.sum_ns += ns;
        self.count += 1;
        // The bounds below the round trip: an unrolled chain of comparisons.
        let mut bucket = 0;
        for b in RTT_BOUNDS_US {
            bucket += usize::from(u64::from(b) * 1000 < ns);
        }
        if let Some(n) = self.buckets.get_mut(bucket) {
            *n = n.saturating_add(1);
        }
    }

    /// The mean round trip, if there was one.
    #[must_use]
    pub fn mean_ns(&self) -> Option<u64> {
        self.sum_ns.checked_div(self.count)
    }

    pub fn merge(&mut self, other: &RoundTrips) {
        if other.count == 0 {
            return;
        }
        self.min_ns = if self.count == 0 { other.min_ns } else { self.min_ns.min(other.min_ns) };
        self.max_ns = self.max_ns.max(other.max_ns);
        self.sum_ns += other.sum_ns;
        self.count += other.count;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a = a.saturating_add(b);
        }
    }
}

/// One path of an association direction: what crossed it (in [`FlowStats::paths`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct PathSlot {
    /// The addresses as the parser keeps them (`parse::Address`: four words in network
    /// order, IPv4 in the first); a slot with no packets is free.
    pub src_addr: [u32; 4],
    pub dst_addr: [u32; 4],
    pub packets: u64,
    pub bytes: u64,
    pub data_chunks: u64,
    pub last_seen_ns: u64,
    /// The interface the last packet arrived on or left by (0 where unknown: a replay).
    pub ifindex: u32,
    /// HEARTBEATs on this path in a row that no ACK answered, before the one waiting: 0
    /// while the path answers; a path failing counts up (its sender gives it up after
    /// its `path_max_retrans`).
    pub heartbeats_unanswered: u32,
    /// Packets on this path with a HEARTBEAT, and with a HEARTBEAT ACK.
    pub heartbeats: u64,
    pub heartbeat_acks: u64,
    /// When the HEARTBEAT waiting for its ACK was sent (0: none waits).
    pub heartbeat_sent_ns: u64,
    /// Round trips of this path's HEARTBEATs to their ACKs.
    pub heartbeat_rtt: PathRoundTrips,
}

impl PathSlot {
    /// HEARTBEATs in a row that no ACK answered, the one waiting included.
    #[must_use]
    pub fn heartbeats_unanswered_now(&self) -> u64 {
        u64::from(self.heartbeats_unanswered) + u64::from(self.heartbeat_sent_ns != 0)
    }
}

/// Round trips of one path, kept small (a path slot per path of every direction): count,
/// sum and extremes in µs. Their histogram is the direction's
/// ([`FlowStats::heartbeat_rtt`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct PathRoundTrips {
    pub sum_us: u64,
    pub count: u32,
    pub min_us: u32,
    pub max_us: u32,
    pub pad: u32,
}

impl PathRoundTrips {
    /// Adds one round trip (one past `u32::MAX` µs, 71 minutes, counts as that).
    #[inline(always)]
    pub fn add(&mut self, ns: u64) {
        let us = u32::try_from(ns / 1000).unwrap_or(u32::MAX);
        self.min_us = if self.count == 0 { us } else { self.min_us.min(us) };
        self.max_us = self.max_us.max(us);
        self.sum_us += u64::from(us);
        self.count = self.count.saturating_add(1);
    }

    pub fn merge(&mut self, other: &PathRoundTrips) {
        if other.count == 0 {
            return;
        }
        self.min_us = if self.count == 0 { other.min_us } else { self.min_us.min(other.min_us) };
        self.max_us = self.max_us.max(other.max_us);
        self.sum_us += other.sum_us;
        self.count = self.count.saturating_add(other.count);
    }

    /// As [`RoundTrips`], without a histogram.
    #[must_use]
    pub fn widened(&self) -> RoundTrips {
        let ns = |us: u32| u64::from(us) * 1000;
        RoundTrips {
            count: u64::from(self.count),
            sum_ns: self.sum_us * 1000,
            min_ns: ns(self.min_us),
            max_ns: ns(self.max_us),
            buckets: [0; RTT_BUCKETS],
        }
    }
}

/// One association direction, keyed by its flow (ports and the receiver's tag): counters
/// and last-seen protocol state, the value of `FLOWS` (arriving) and `EGRESS_FLOWS`
/// (leaving). One value shared by every CPU: counters grow by atomic adds
/// ([`crate::atomic::add`]); the last-seen fields are plain writes, the last writer's.
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
    /// retransmissions and duplicates as the wire shows them, judged against the one
    /// highest TSN every CPU shares (a retransmission on another path, which RSS may hand
    /// to another CPU, counts too).
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
    pub pad: u16,
    /// SACKs whose fixed fields and counts were whole (what `last_a_rwnd` and
    /// `a_rwnd_min` were taken from).
    pub sacks: u64,
    /// SACKs announcing a zero window after a non-zero one (or as the first).
    pub zero_windows: u64,
    /// DATA chunks on another path than the DATA before them.
    pub data_path_switches: u64,
    /// Packets on a path beyond the [`PATH_SLOTS`] kept.
    pub paths_beyond: u64,
    pub paths: [PathSlot; PATH_SLOTS],
    pub a_rwnd_min: u32,
    /// The slot of the last DATA's path, plus one (0: no DATA yet).
    pub data_path: u32,
    /// A TSN the other direction sent, timed until a SACK of this direction acknowledges
    /// it (written by the other direction's packet: see `parse::round_trip`), and when it
    /// was sent; `peer_sample_pending` is non-zero while it waits.
    pub peer_sample_tsn: u32,
    pub peer_sample_pending: u32,
    pub peer_sample_sent_ns: u64,
    /// Since when a TSN this direction sent is timed in the other direction's entry (0:
    /// none is), and which (Karn's rule: a TSN sent again gives no round trip).
    pub sampling_since_ns: u64,
    pub sampled_tsn: u32,
    pub pad2: u32,
    /// Round trips of the other direction's DATA closed by this direction's SACKs.
    pub rtt: RoundTrips,
    /// Round trips of this direction's HEARTBEATs to their ACKs, every path's.
    pub heartbeat_rtt: RoundTrips,
    /// This direction's application messages by key (see `parse::tally`), those of keys
    /// beyond the table, those that could not be read, and the chunks that would begin one
    /// but were sent before.
    pub messages: [MessageSlot; MESSAGE_SLOTS],
    pub messages_untabled: u64,
    pub messages_malformed: u64,
    pub messages_resent: u64,
    /// The TSNs of the DATA this direction sent lately, as the message count saw them.
    pub message_tsns: TsnWindow,
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
        let (newer, older) = if other.last_seen_ns > self.last_seen_ns { (*other, *self) } else { (*self, *other) };
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
            (true, true) if (older.highest_tsn.wrapping_sub(newer.highest_tsn).cast_signed()) > 0 => older.highest_tsn,
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
        m.a_rwnd_min = match (self.sacks, other.sacks) {
            (0, _) => other.a_rwnd_min,
            (_, 0) => self.a_rwnd_min,
            _ => self.a_rwnd_min.min(other.a_rwnd_min),
        };
        m.sacks = self.sacks + other.sacks;
        m.zero_windows = self.zero_windows + other.zero_windows;
        m.data_path_switches = self.data_path_switches + other.data_path_switches;
        m.paths = self.paths;
        m.paths_beyond = self.paths_beyond;
        m.data_path = newer.data_path;
        for p in other.paths.iter().filter(|p| p.packets > 0) {
            m.add_path(p);
        }
        m.paths_beyond += other.paths_beyond;
        m.rtt = self.rtt;
        m.rtt.merge(&other.rtt);
        m.heartbeat_rtt = self.heartbeat_rtt;
        m.heartbeat_rtt.merge(&other.heartbeat_rtt);
        m.messages = self.messages;
        m.messages_untabled = self.messages_untabled + other.messages_untabled;
        m.messages_malformed = self.messages_malformed + other.messages_malformed;
        m.messages_resent = self.messages_resent + other.messages_resent;
        for slot in other.messages.iter().filter(|s| s.head != 0) {
            m.add_messages(slot);
        }
        *self = m;
    }

    /// Adds a key's count to its slot, or a free one (beyond the slots, to
    /// `messages_untabled`).
    fn add_messages(&mut self, slot: &MessageSlot) {
        let same = |s: &&mut MessageSlot| s.head == 0 || (s.head == slot.head && s.tail == slot.tail);
        match self.messages.iter_mut().find(same) {
            Some(s) if s.head == 0 => *s = *slot,
            Some(s) => s.count += slot.count,
            None => self.messages_untabled += slot.count,
        }
    }

    /// Adds a path's counts to the slot of the same addresses, or a free one (beyond the
    /// slots, its packets count in `paths_beyond`).
    fn add_path(&mut self, p: &PathSlot) {
        let same = |s: &&mut PathSlot| s.packets == 0 || (s.src_addr == p.src_addr && s.dst_addr == p.dst_addr);
        match self.paths.iter_mut().find(same) {
            Some(s) if s.packets == 0 => *s = *p,
            Some(s) => {
                s.packets += p.packets;
                s.bytes += p.bytes;
                s.data_chunks += p.data_chunks;
                if p.last_seen_ns > s.last_seen_ns {
                    s.last_seen_ns = p.last_seen_ns;
                    s.heartbeats_unanswered = p.heartbeats_unanswered;
                    s.heartbeat_sent_ns = p.heartbeat_sent_ns;
                }
                if p.ifindex != 0 {
                    s.ifindex = p.ifindex;
                }
                s.heartbeats += p.heartbeats;
                s.heartbeat_acks += p.heartbeat_acks;
                s.heartbeat_rtt.merge(&p.heartbeat_rtt);
            }
            None => self.paths_beyond += p.packets,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable as _;

    use super::*;
    use crate::proto::chunk::{bucket, ty};

    #[test]
    fn round_trips_fall_in_the_bucket_whose_bound_they_reach() {
        let mut r = RoundTrips::default();
        for us in [1, 100, 101, 4_000, 50_000, 2_000_000] {
            r.add(us * 1000);
        }
        let mut other = RoundTrips::default();
        other.add(100_000);
        r.merge(&other);
        let mut want = [0; RTT_BOUNDS_US.len() + 1];
        (want[0], want[1], want[5], want[8], want[13]) = (3, 1, 1, 1, 1);
        assert_eq!(r.buckets, want);
        assert_eq!((r.count, r.min_ns, r.max_ns), (7, 1000, 2_000_000_000));
    }

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
        assert_eq!((total.packets, total.data_chunks, total.chunks[bucket(ty::DATA)]), (4, 2, 2));
        assert_eq!((total.init_chunk_type, total.init_tag), (u32::from(ty::INIT_ACK), 77));
        assert_eq!((total.last_ppid, total.highest_tsn, total.tsn_seen), (60, 5, 1));
        assert_eq!((total.first_seen_ns, total.last_seen_ns), (10, 50));
    }
}
