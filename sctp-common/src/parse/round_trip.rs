//! Round trips of DATA to the SACK that acknowledges it, timed in the flow table itself
//! (as ePPing times TCP passively): one TSN in flight per direction, given up after
//! [`SAMPLE_TIMEOUT_NS`], and none while the direction retransmits (Karn's rule). The
//! sample waits in the entry of the other direction, whose SACK closes it there and adds
//! the round trip to that entry's [`RoundTrips`](crate::abi::RoundTrips).
//!
//! Round trips of HEARTBEATs to their ACKs, per path: a HEARTBEAT waits in its path's
//! slot ([`PathSlot::heartbeat_sent_ns`]); the ACK, which goes back on the reversed
//! addresses, closes it there, in the other direction's entry. A HEARTBEAT sent while
//! another waits counts that one unanswered.
//!
//! During [`super::process`] a packet only reads its flow ([`note`]); the caller then
//! does what it asked, in its own flow and in the other direction's (found through the
//! directory of associations: only associations whose handshake was seen are timed):
//! [`settle_own`] and [`settle_peer`], for few packets, outside the walk (the host
//! engines through [`super::after_process`]).

use crate::{
    abi::{FlowKey, FlowStats, PathSlot},
    atomic::add,
    filter::{reversed, Tags},
    proto::chunk::ty,
};

use super::{account::same_address, Address, WalkFindings};

/// A TSN timed this long without a SACK covering it is given up, and another is timed.
pub const SAMPLE_TIMEOUT_NS: u64 = 4_000_000_000;

/// Bits of [`WalkFindings::peer_work`]: what the other direction's flow must do.
pub mod work {
    /// Time the TSN in [`super::WalkFindings::peer_tsn`], sent at the packet's time.
    pub const START: u32 = 1;
    /// The TSN timed was (or may have been) sent again: no round trip from it.
    pub const VOID: u32 = 2;
    /// This packet's SACK closed the other direction's sample: it may time another.
    pub const CLOSED: u32 = 4;
    /// The packet carried a HEARTBEAT: it waits on the packet's path.
    pub const HEARTBEAT: u32 = 8;
    /// The packet carried a HEARTBEAT ACK: it answers the other direction's HEARTBEAT
    /// waiting on the reversed path.
    pub const HEARTBEAT_ACK: u32 = 16;
}

/// Whether `a` is at or before `b` in serial number arithmetic (RFC 1982).
#[inline(always)]
fn serial_le(a: u32, b: u32) -> bool {
    b.wrapping_sub(a).cast_signed() >= 0
}

/// Notes in `seen` what the packet asks of the round trips (`work` bits), read from its
/// flow after the walk: whether its SACK covers the other direction's TSN timed, and
/// whether its DATA starts a sample or voids this direction's. Writes nothing in the
/// flow: [`settle_own`] and [`settle_peer`] do, outside the packet's walk (they run for
/// few packets: the verifier then checks their work once, not once per way the walk
/// ended).
#[inline(always)]
pub fn note(flow: &FlowStats, seen: &mut WalkFindings) {
    let (_, now_ns) = seen.key_and_time();
    let mut asked = 0;
    if seen.notes.has(ty::HEARTBEAT) {
        asked |= work::HEARTBEAT;
    }
    if seen.notes.has(ty::HEARTBEAT_ACK) {
        asked |= work::HEARTBEAT_ACK;
    }
    if seen.notes.has(ty::SACK)
        && flow.peer_sample_pending != 0
        && serial_le(flow.peer_sample_tsn, flow.last_cum_tsn_ack)
    {
        asked |= work::CLOSED;
    }
    if seen.carried_data() && flow.tsn_seen != 0 {
        let (highest_before, had_tsn, retx_before) = seen.before();
        let retransmitted = flow.data_at_or_below_highest != retx_before;
        let advanced = had_tsn == 0 || flow.highest_tsn != highest_before;
        let since = flow.sampling_since_ns;
        let in_flight = since != 0 && now_ns.saturating_sub(since) < SAMPLE_TIMEOUT_NS;
        if in_flight && retransmitted {
            asked |= work::VOID;
        } else if !in_flight && advanced && !retransmitted {
            seen.set_peer_tsn(flow.highest_tsn);
            asked |= work::START;
        }
    }
    seen.set_peer_work(asked);
}

/// Does what [`note`] asked in the packet's own flow (found again by its key: see
/// [`WalkFindings::key_and_time`]). `paired`: the other direction's flow was found (and settled
/// first); without it nothing starts to wait for an answer, which could never come and
/// would hold the next sample off.
#[inline(always)]
pub fn settle_own(seen: &WalkFindings, flow: &mut FlowStats, paired: bool) {
    let asked = seen.peer_work();
    let (_, now_ns) = seen.key_and_time();
    if asked & work::CLOSED != 0 && flow.peer_sample_pending != 0 {
        flow.rtt.add(now_ns.saturating_sub(flow.peer_sample_sent_ns));
        flow.peer_sample_pending = 0;
    }
    if asked & work::VOID != 0 {
        flow.sampling_since_ns = 0;
    }
    if asked & work::START != 0 && paired {
        flow.sampling_since_ns = now_ns.max(1);
        flow.sampled_tsn = seen.peer_tsn();
    }
    if let Some(p) = flow.paths.get_mut(seen.path()) {
        if asked & work::HEARTBEAT != 0 {
            add(&mut p.heartbeats, 1);
            if paired {
                p.heartbeats_unanswered += u32::from(p.heartbeat_sent_ns != 0);
                p.heartbeat_sent_ns = now_ns.max(1);
            }
        }
        if asked & work::HEARTBEAT_ACK != 0 {
            add(&mut p.heartbeat_acks, 1);
        }
    }
}

/// The other direction's key: its tag as the directory of associations (`tags`) names it
/// beside the packet's, or as user space paired an association met mid-way; none before
/// both tags were seen.
#[inline(always)]
pub fn peer_key<T: Tags>(seen: &WalkFindings, tags: &mut T) -> Option<FlowKey> {
    let (key, _) = seen.key_and_time();
    let partner = match directory_partner(&key, tags) {
        Some(p) => p,
        None => tags.midway_partner(&key)?,
    };
    let peer = reversed(&key, partner);
    (partner != 0 && peer != key).then_some(peer)
}

/// The other direction's tag of flow `key` as the directory of associations learned it
/// from a handshake (none before both tags were seen, nor for a pair met mid-way).
#[inline(always)]
pub fn directory_partner<T: Tags + ?Sized>(key: &FlowKey, tags: &mut T) -> Option<u32> {
    tags.tag(key).map(|e| e.get().partner).filter(|p| *p != 0)
}

/// Does what [`note`] asked in the other direction's flow (at [`peer_key`]).
#[inline(always)]
pub fn settle_peer(seen: &WalkFindings, peer: &mut FlowStats) {
    let asked = seen.peer_work();
    if asked & work::CLOSED != 0 {
        peer.sampling_since_ns = 0;
    }
    if asked & work::VOID != 0 {
        peer.peer_sample_pending = 0;
    }
    if asked & work::START != 0 {
        let (_, now_ns) = seen.key_and_time();
        peer.peer_sample_tsn = seen.peer_tsn();
        peer.peer_sample_sent_ns = now_ns;
        peer.peer_sample_pending = 1;
    }
    if asked & work::HEARTBEAT_ACK != 0 {
        answer_heartbeat(seen, peer);
    }
}

/// Closes the HEARTBEAT waiting on the path the ACK in `seen` reverses, in `peer` (the
/// HEARTBEAT's direction), if one waits.
#[inline(always)]
fn answer_heartbeat(seen: &WalkFindings, peer: &mut FlowStats) {
    let src: Address = bytemuck::cast(seen.summary.src_addr);
    let dst: Address = bytemuck::cast(seen.summary.dst_addr);
    let reversing = |p: &PathSlot| p.packets != 0 && same_address(&p.src_addr, &dst) && same_address(&p.dst_addr, &src);
    let Some(i) = peer.paths.iter().position(reversing) else {
        return;
    };
    let (_, now_ns) = seen.key_and_time();
    let Some(p) = peer.paths.get_mut(i) else {
        return;
    };
    if p.heartbeat_sent_ns == 0 {
        return;
    }
    let rtt = now_ns.saturating_sub(p.heartbeat_sent_ns);
    p.heartbeat_sent_ns = 0;
    p.heartbeats_unanswered = 0;
    p.heartbeat_rtt.add(rtt);
    peer.heartbeat_rtt.add(rtt);
}

#[cfg(test)]
mod tests {
    use alloc::{collections::BTreeMap, vec, vec::Vec};

    use bytemuck::Zeroable as _;

    use super::*;
    use crate::{
        abi::GlobalStats,
        builder::{Chunk, Ip, SctpPacket},
        host::MemFilter,
        parse::{after_process, process, NoEvents},
        proto::chunk::ty,
    };

    const MS: u64 = 1_000_000;

    /// The host's twin of the kernel's maps, fed packets one at a time.
    struct Wire {
        flows: BTreeMap<FlowKey, FlowStats>,
        tags: MemFilter<'static>,
        seen: WalkFindings,
    }

    impl Wire {
        fn new() -> Self {
            Self { flows: BTreeMap::new(), tags: MemFilter::default(), seen: WalkFindings::new() }
        }

        /// A packet from the client (198.18.0.1:5000) or back from the server, at `at`.
        fn send(&mut self, back: bool, vtag: u32, chunk: Chunk, at: u64) {
            let mut p = SctpPacket::new(Ip::V4 { src: [198, 18, 0, 1], dst: [198, 18, 0, 2] }, vtag, vec![chunk]);
            if back {
                p.ip = Ip::V4 { src: [198, 18, 0, 2], dst: [198, 18, 0, 1] };
                (p.src_port, p.dst_port) = (p.dst_port, p.src_port);
            }
            let flows = &mut self.flows;
            let mut stats = GlobalStats::zeroed();
            let verdict = process(
                p.frame().as_slice(),
                &mut stats,
                || at,
                |k, _, _| Some(flows.entry(*k).or_insert_with(FlowStats::zeroed)),
                &mut NoEvents,
                &mut self.tags,
                &mut self.seen,
            );
            after_process(
                p.frame().as_slice(),
                verdict,
                &mut stats,
                &mut self.tags,
                &mut NoEvents,
                &mut self.seen,
                |k, settle| {
                    if let Some(f) = self.flows.get_mut(k) {
                        settle(f);
                    }
                },
            );
        }

        /// The round trips the server's SACKs closed (its flow: server to client, the
        /// client's tag).
        fn server_sacks(&self) -> Vec<u64> {
            let r = self.flows.values().find(|f| f.rtt.count > 0).map(|f| f.rtt);
            r.map_or_else(Vec::new, |r| vec![r.count, r.min_ns, r.max_ns])
        }
    }

    fn handshake(w: &mut Wire) {
        w.send(false, 0, Chunk::init(ty::INIT, 0xc1, 65_536, 4, 4, 1), 0);
        w.send(true, 0xc1, Chunk::init(ty::INIT_ACK, 0x51, 65_536, 4, 4, 100), MS);
        w.send(false, 0x51, Chunk::new(ty::COOKIE_ECHO, 0, vec![0; 8]), 2 * MS);
        w.send(true, 0xc1, Chunk::new(ty::COOKIE_ACK, 0, Vec::new()), 3 * MS);
    }

    #[test]
    fn data_is_timed_to_the_sack_that_covers_it() {
        let mut w = Wire::new();
        handshake(&mut w);
        w.send(false, 0x51, Chunk::data(1, 0, 0, 18, 10), 10 * MS);
        // Sent while TSN 1 is timed: not timed itself.
        w.send(false, 0x51, Chunk::data(2, 0, 1, 18, 10), 11 * MS);
        w.send(true, 0xc1, Chunk::sack(1, 65_536, 0, 0), 14 * MS);
        assert_eq!(w.server_sacks(), [1, 4 * MS, 4 * MS]);
        // The next new TSN is timed: acknowledged 7 ms later.
        w.send(false, 0x51, Chunk::data(3, 0, 2, 18, 10), 20 * MS);
        w.send(true, 0xc1, Chunk::sack(2, 65_536, 0, 0), 22 * MS);
        w.send(true, 0xc1, Chunk::sack(3, 65_536, 0, 0), 27 * MS);
        assert_eq!(w.server_sacks(), [2, 4 * MS, 7 * MS]);
    }

    #[test]
    fn a_tsn_sent_twice_gives_no_round_trip() {
        let mut w = Wire::new();
        handshake(&mut w);
        w.send(false, 0x51, Chunk::data(1, 0, 0, 18, 10), 10 * MS);
        w.send(false, 0x51, Chunk::data(1, 0, 0, 18, 10), 30 * MS);
        w.send(true, 0xc1, Chunk::sack(1, 65_536, 0, 0), 31 * MS);
        assert_eq!(w.server_sacks(), Vec::<u64>::new());
        // Timing starts again with the next new TSN.
        w.send(false, 0x51, Chunk::data(2, 0, 1, 18, 10), 40 * MS);
        w.send(true, 0xc1, Chunk::sack(2, 65_536, 0, 0), 42 * MS);
        assert_eq!(w.server_sacks(), [1, 2 * MS, 2 * MS]);
    }

    #[test]
    fn a_sack_with_a_made_up_tag_closes_nothing() {
        let mut w = Wire::new();
        handshake(&mut w);
        w.send(false, 0x51, Chunk::data(1, 0, 0, 18, 10), 10 * MS);
        w.send(true, 0xbad, Chunk::sack(1, 65_536, 0, 0), 11 * MS);
        assert_eq!(w.server_sacks(), Vec::<u64>::new());
        w.send(true, 0xc1, Chunk::sack(1, 65_536, 0, 0), 15 * MS);
        assert_eq!(w.server_sacks(), [1, 5 * MS, 5 * MS]);
    }

    fn heartbeat(ack: bool) -> Chunk {
        Chunk::new(if ack { ty::HEARTBEAT_ACK } else { ty::HEARTBEAT }, 0, vec![0, 1, 0, 8, 1, 2, 3, 4])
    }

    impl Wire {
        /// The server's path to the client (its flow carries the client's tag): HEARTBEATs
        /// unanswered now, and their round trips (count, min and max in µs).
        fn server_heartbeats(&self) -> (u64, u64, [u32; 3]) {
            let f = &self.flows[&FlowKey { src_port: 38412, dst_port: 36412, vtag: 0xc1 }];
            let p = f.paths.iter().find(|p| p.heartbeats > 0).expect("a path with heartbeats");
            let r = p.heartbeat_rtt;
            assert_eq!(f.heartbeat_rtt.count, u64::from(r.count), "the direction's round trips are its paths'");
            (p.heartbeats, p.heartbeats_unanswered_now(), [r.count, r.min_us, r.max_us])
        }
    }

    #[test]
    fn heartbeats_without_an_ack_count_up_until_one_is_answered() {
        let mut w = Wire::new();
        handshake(&mut w);
        for t in [10, 20, 30] {
            w.send(true, 0xc1, heartbeat(false), t * MS);
        }
        assert_eq!(w.server_heartbeats(), (3, 3, [0, 0, 0]), "three sent, none answered");
        // A made-up tag answers nothing, and the client's own direction does.
        w.send(false, 0xbad, heartbeat(true), 31 * MS);
        assert_eq!(w.server_heartbeats(), (3, 3, [0, 0, 0]));
        w.send(false, 0x51, heartbeat(true), 32 * MS);
        assert_eq!(w.server_heartbeats(), (3, 0, [1, 2_000, 2_000]), "the last one answered, in 2 ms");
        let client = &w.flows[&FlowKey { src_port: 36412, dst_port: 38412, vtag: 0x51 }];
        assert_eq!(client.paths.iter().map(|p| p.heartbeat_acks).sum::<u64>(), 1);
        // A second ACK finds nothing waiting.
        w.send(false, 0x51, heartbeat(true), 40 * MS);
        w.send(true, 0xc1, heartbeat(false), 50 * MS);
        w.send(false, 0x51, heartbeat(true), 55 * MS);
        assert_eq!(w.server_heartbeats(), (4, 0, [2, 2_000, 5_000]));
    }

    #[test]
    fn an_association_met_mid_way_is_timed_once_paired() {
        let mut w = Wire::new();
        w.send(false, 0x51, Chunk::data(1, 0, 0, 18, 10), 10 * MS);
        w.send(true, 0xc1, Chunk::sack(1, 65_536, 0, 0), 14 * MS);
        // As user space pairs it: each direction's flow with the other's tag.
        w.tags.midway.insert(FlowKey { src_port: 36412, dst_port: 38412, vtag: 0x51 }, 0xc1);
        w.tags.midway.insert(FlowKey { src_port: 38412, dst_port: 36412, vtag: 0xc1 }, 0x51);
        w.send(false, 0x51, Chunk::data(2, 0, 1, 18, 10), 20 * MS);
        w.send(true, 0xc1, Chunk::sack(2, 65_536, 0, 0), 23 * MS);
        assert_eq!(w.server_sacks(), [1, 3 * MS, 3 * MS], "TSN 2, sent once paired");
        w.send(true, 0xc1, heartbeat(false), 30 * MS);
        w.send(false, 0x51, heartbeat(true), 31 * MS);
        assert_eq!(w.server_heartbeats(), (1, 0, [1, 1_000, 1_000]));
    }

    #[test]
    fn without_a_handshake_seen_nothing_is_timed() {
        let mut w = Wire::new();
        w.send(false, 0x51, Chunk::data(1, 0, 0, 18, 10), 10 * MS);
        w.send(true, 0xc1, Chunk::sack(1, 65_536, 0, 0), 14 * MS);
        assert_eq!(w.server_sacks(), Vec::<u64>::new());
    }
}
