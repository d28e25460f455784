//! The data path: Ethernet -> IPv4/IPv6 -> SCTP common header -> every chunk, with the
//! accounting into global and per-flow counters. Context-free: the caller supplies the
//! packet reader, the global counters and a way to find the flow's counters.

mod account;
mod locate;
pub mod message;
mod packet;
pub mod round_trip;
mod scratch;
mod sink;
pub mod tally;
mod walk;

pub use locate::{address_bytes, locate_sctp, sctp_header, Address, SctpLocation, MAX_IPV6_EXT_HEADERS, MAX_VLAN_TAGS};
pub use packet::{Bytes, Packet, MAX_OFFSET};
pub use scratch::{Walk, WalkCarry, WalkFindings};
#[cfg(any(test, feature = "testing"))]
pub use sink::Recorder;
pub use sink::{DataSink, NoEvents, NoTally, Tally};

use account::account_path;
use walk::{walk_chunks, walk_step};

use crate::{
    abi::{enable, Counter, FlowKey, FlowStats, GlobalStats, WITHDRAWN},
    atomic::add,
    filter::{self, Filter, FirstChunk, Source},
    proto::SCTP_COMMON_HEADER,
};

/// Chunks walked per packet; a packet with more is counted as `ErrChunkWalkLimit`.
pub const MAX_CHUNKS: usize = crate::abi::SUMMARY_CHUNKS;

/// What the program does with the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
}

/// Runs the whole data path on one packet and returns the verdict.
///
/// `clock` gives the time in ns; it is read only for SCTP packets (in the kernel it is a
/// helper call that costs more than the rest of a short packet's parsing).
/// `flow_for` returns the counters of the packet's flow (by its key; the first chunk and
/// the time decide whether a new one may be made), created if new, or `None` when the
/// flow table cannot or may not hold it. `filter` holds the rules (see `rules`); only SCTP
/// packets are judged, everything else passes. `seen` is scratch space for the walk (in
/// the kernel a map value, so the verifier does not tell iterations apart by it).
///
/// The headers up to the flow's counters ([`enter`]) run through [`Packet::outline`], in
/// a stack frame of their own; the chunk walk runs in the caller's frame (its steps in
/// frames of their own, see [`Packet::repeat`]); the rules judged on what the walk saw
/// ([`leave`]) run, outlined, only when rules are active: in the kernel each call costs
/// a few nanoseconds a packet.
#[inline(always)]
pub fn process<'f, 'r, P, C, F, S, R>(
    pkt: &P,
    stats: &mut GlobalStats,
    clock: C,
    flow_for: F,
    sink: &mut S,
    filter: &mut R,
    seen: &mut WalkFindings,
) -> Verdict
where
    P: Packet + ?Sized,
    C: FnOnce() -> u64,
    F: FnOnce(&FlowKey, &FirstChunk, u64) -> Option<&'f mut FlowStats>,
    S: DataSink,
    R: Filter<'r>,
{
    stats.bump(Counter::Frames, 1);
    // What the caller's steps after this read (`learn_tags`, `round_trip`): left from an
    // earlier packet unless this one reaches the walk.
    seen.clear_first();
    seen.set_peer_work(0);
    seen.set_tally_wanted(false);
    // Captured by reference, as everything else: the object's BTF describes each stage's
    // closure, and a by-value capture of a zero-sized function item is a member the
    // kernel refuses (it lies past the end of the closure).
    let mut once = Some((clock, flow_for));
    // The stage returns the flow as a bare pointer (null for none), the verdict apart,
    // in `seen` (a local captured would take stack in the program's frame, which is
    // short of it): 6.1's verifier cannot tell a `Result`'s variants apart by its
    // one-byte tag.
    let entered = pkt.outline(|| {
        let (clock, flow_for) = once.take()?;
        match enter(pkt, stats, clock, flow_for, sink.ifindex(), filter, seen) {
            Ok(flow) => {
                // The first chunk here, in this frame: a packet of one chunk then needs
                // no call of the walk's step.
                walk_step(pkt, stats, flow, sink, filter, seen);
                Some(flow)
            }
            Err(verdict) => {
                seen.set_dropped_early(verdict == Verdict::Drop);
                None
            }
        }
    });
    let verdict = match entered {
        Some(flow) => {
            walk_chunks(pkt, stats, flow, sink, filter, seen);
            // Without rules nothing is judged after the walk: no call for it.
            let verdict =
                if seen.rules_active() { pkt.outline(|| leave(stats, flow, filter, seen)) } else { Verdict::Pass };
            // Only packets that change what user space knows go up (control chunks, a
            // new path, round-trip samples): everything else is in the flow's counters.
            if sink.wants_summaries() && seen.summary_wanted() {
                seen.seal_summary(flow, verdict == Verdict::Drop);
                sink.packet(&mut seen.summary);
            }
            // The walk sent the DATA events before the rules judged the packet (holding
            // them until after costs the verifier more than its budget): a dropped
            // packet's are withdrawn by one more record.
            if verdict == Verdict::Drop {
                withdraw_data(sink, seen);
            }
            round_trip::note(flow, seen);
            // The messages are counted after `process` (see `tally`), of a packet that
            // passed with DATA of a protocol read there: by the last DATA's PPID. Where
            // message rules exist, of every packet that passed with DATA: a DATA chunk of
            // another PPID after the message must not hide it from them.
            let (key, _) = seen.key_and_time();
            let (rs, gen) = filter.rules();
            let judged = rs.flags & enable::MESSAGES != 0;
            let wanted = verdict == Verdict::Pass
                && seen.carried_data()
                && (judged || message::Protocol::of(flow.last_ppid, key.src_port, key.dst_port).is_some());
            seen.set_tally_wanted(wanted);
            seen.set_tally_gen(gen);
            verdict
        }
        None if seen.dropped_early() => Verdict::Drop,
        None => Verdict::Pass,
    };
    stats.bump(
        match verdict {
            Verdict::Pass => Counter::VerdictPass,
            Verdict::Drop => Counter::VerdictDrop,
        },
        1,
    );
    verdict
}

/// Counts an outcome, and a parse error also as `Malformed`.
#[inline(always)]
fn note(stats: &mut GlobalStats, c: Counter) {
    if c.is_error() {
        stats.bump(Counter::Malformed, 1);
    }
    stats.bump(c, 1);
}

/// Locates the SCTP header, judges the packet by the rules that need no chunk walk, and
/// accounts it to its flow. Continues with the flow's counters, `seen` set up for the
/// walk; or ends with the verdict (not SCTP, dropped, no room for the flow).
#[inline(always)]
fn enter<'f, 'r, P, C, F, R>(
    pkt: &P,
    stats: &mut GlobalStats,
    clock: C,
    flow_for: F,
    ifindex: u32,
    filter: &mut R,
    seen: &mut WalkFindings,
) -> Result<&'f mut FlowStats, Verdict>
where
    P: Packet + ?Sized,
    C: FnOnce() -> u64,
    F: FnOnce(&FlowKey, &FirstChunk, u64) -> Option<&'f mut FlowStats>,
    R: Filter<'r>,
{
    let loc = locate_sctp(pkt, stats).map_err(|outcome| {
        note(stats, outcome);
        Verdict::Pass
    })?;
    let (rs, gen) = filter.rules();
    let active = rs.is_active();
    let (key, first) = match sctp_header(pkt, loc.offset) {
        Some(h) if loc.offset + SCTP_COMMON_HEADER <= loc.end => h,
        _ => {
            note(stats, Counter::ErrSctpHeaderTruncated);
            if !active {
                return Err(Verdict::Pass);
            }
            seen.notes.clear();
            let end = Counter::ErrSctpHeaderTruncated as u32;
            return Err(judged(stats, gen, filter::judge(rs, &seen.notes, end, 0, 0)));
        }
    };
    stats.bump(Counter::Sctp, 1);
    if loc.first_fragment {
        stats.bump(Counter::FirstFragments, 1);
    }
    let src = Source { family: loc.family, addr: address_bytes(&loc.src_addr) };
    if active {
        if let Err(d) = filter::screen(rs, gen, filter, &src, &key) {
            return Err(judged(stats, gen, Some(d)));
        }
    }
    let now_ns = clock();
    if active {
        if let Err(d) = filter::admit(rs, filter, stats, &src, &key, first, now_ns) {
            return Err(judged(stats, gen, Some(d)));
        }
    }
    let Some(flow) = flow_for(&key, &first, now_ns) else {
        stats.bump(Counter::FlowUnavailable, 1);
        return Err(Verdict::Pass);
    };
    seen.set_before(flow);
    add(&mut flow.packets, 1);
    add(&mut flow.bytes, loc.ip_len);
    if flow.first_seen_ns == 0 {
        flow.first_seen_ns = now_ns;
    }
    flow.last_seen_ns = now_ns;
    flow.family = loc.family;
    flow.src_addr = *address_bytes(&loc.src_addr);
    flow.dst_addr = *address_bytes(&loc.dst_addr);
    // Everything else in `seen` is written before it is read: the stash just below, the
    // event fields per DATA chunk.
    seen.notes.clear();
    // A tag of 0 is an INIT's alone (RFC 9260 8.5): user space sees every packet that
    // has it, and counts them outside the flows of associations.
    seen.set_summary_wanted(key.vtag == 0);
    account_path(flow, &loc, now_ns, ifindex, seen);
    // The packet's fields of the DATA event; each DATA chunk writes the rest (the map
    // value starts zeroed). Field by field, as `Notes::clear` says why.
    seen.data.ts_ns = now_ns;
    seen.data.vtag = key.vtag;
    seen.data.src_port = key.src_port;
    seen.data.dst_port = key.dst_port;
    // The summary's length, addresses and chunk count; the rest once the packet was
    // judged (see `WalkFindings::seal_summary`).
    #[expect(clippy::cast_possible_truncation, reason = "IP lengths are 16-bit fields, jumbograms 32-bit")]
    let ip_len = loc.ip_len as u32;
    seen.summary.ip_len = ip_len;
    seen.summary.chunks = 0;
    seen.summary.src_addr = *address_bytes(&loc.src_addr);
    seen.summary.dst_addr = *address_bytes(&loc.dst_addr);
    seen.stash(WalkCarry { key, first, active, now_ns, walk_end: 0, chunks_before: stats.get(Counter::Chunks) });
    seen.set_chunks_at(loc.offset + SCTP_COMMON_HEADER);
    seen.set_walk(Walk {
        off: loc.offset + SCTP_COMMON_HEADER,
        end: loc.end,
        first_fragment: loc.first_fragment,
        walking: true,
    });
    Ok(flow)
}

/// Judges the packet by what the walk saw.
#[inline(always)]
fn leave<'r, R: Filter<'r>>(
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    filter: &mut R,
    seen: &WalkFindings,
) -> Verdict {
    let WalkCarry { key, walk_end, chunks_before, .. } = seen.recall();
    let (rs, gen) = filter.rules();
    let chunks = stats.get(Counter::Chunks).wrapping_sub(chunks_before);
    let verdict = judged(stats, gen, filter::judge(rs, &seen.notes, walk_end, chunks, key.vtag));
    if verdict == Verdict::Drop {
        add(&mut flow.dropped, 1);
    }
    verdict
}

/// Learns and forgets associations in the directory from a packet that passed, if its
/// first chunk names tags (see [`WalkFindings::names_tags`] and [`filter::track_tags`]). The
/// caller runs it after [`process`], with or without rules: the directory tells flows of
/// completed handshakes from the others, and links the two directions.
#[inline(always)]
pub fn learn_tags<'r, R: Filter<'r>>(stats: &mut GlobalStats, filter: &mut R, seen: &WalkFindings) {
    let WalkCarry { key, first, now_ns, walk_end, .. } = seen.recall();
    if first.present && !Counter::is_error_code(walk_end) {
        let (rs, _) = filter.rules();
        filter::track_tags(rs, filter, stats, &key, &first, now_ns);
    }
}

/// What the kernel does after [`process`] (outside it: the walk's verification and stack
/// stay small), in one place for the host engines: the directory learns from a packet
/// that passed, the round-trip work is done in the packet's flow and the other
/// direction's, and the packet's messages are counted in its flow and judged by the
/// message rules (see [`tally`]). `flow` hands the flow of a key, if there is one, to
/// `settle` (a flow is never made here). Returns the packet's verdict: `verdict`, or a
/// drop by a message rule, whose DATA events `sink` has withdrawn.
pub fn after_process<'r, P: Packet + ?Sized, R: Filter<'r>, S: DataSink>(
    pkt: &P,
    verdict: Verdict,
    stats: &mut GlobalStats,
    filter: &mut R,
    sink: &mut S,
    seen: &mut WalkFindings,
    mut flow: impl FnMut(&FlowKey, &mut dyn FnMut(&mut FlowStats)),
) -> Verdict {
    let init_learned = filter::learns_init_tags(filter.rules().0);
    if verdict == Verdict::Pass && seen.names_tags(init_learned) {
        learn_tags(stats, filter, seen);
    }
    let (key, _) = seen.key_and_time();
    if seen.peer_work() != 0 {
        let mut paired = false;
        if let Some(peer) = round_trip::peer_key(seen, filter) {
            flow(&peer, &mut |f| {
                round_trip::settle_peer(seen, f);
                paired = true;
            });
        }
        flow(&key, &mut |f| round_trip::settle_own(seen, f, paired));
    }
    if !seen.tally_wanted() {
        return verdict;
    }
    let mut position = seen.tally_start(pkt.frame_len());
    flow(&key, &mut |f| {
        tally::tally(pkt, f, stats, filter, &mut position, tally::TALLY_STEPS);
    });
    if !position.dropped {
        return verdict;
    }
    withdraw_data(sink, seen);
    Verdict::Drop
}

/// Withdraws the DATA events the walk sent of a packet the rules dropped after it (see
/// `abi::WITHDRAWN`).
#[inline(always)]
pub fn withdraw_data<S: DataSink>(sink: &mut S, seen: &mut WalkFindings) {
    if sink.wants_data() && seen.carried_data() {
        seen.data.chunk_type = WITHDRAWN;
        sink.data(&seen.data);
    }
}

/// Counts a drop, if there is one, and turns it into the verdict.
#[inline(always)]
fn judged(stats: &mut GlobalStats, gen: u32, drop: Option<filter::Charge>) -> Verdict {
    match drop {
        Some(d) => {
            filter::count_drop(stats, gen, d);
            Verdict::Drop
        }
        None => Verdict::Pass,
    }
}

#[cfg(test)]
mod tests {
    use alloc::{collections::BTreeMap, vec, vec::Vec};

    use bytemuck::Zeroable;

    use super::*;
    use crate::{
        builder::{Chunk, SctpPacket, V4},
        host::MemFilter,
        parse::Recorder,
        proto::chunk::{flag, ty},
        testing::{self, fixtures},
    };

    type Flows = BTreeMap<FlowKey, FlowStats>;

    fn run(frames: &[Vec<u8>]) -> (GlobalStats, Flows) {
        let mut stats = GlobalStats::zeroed();
        let mut flows = Flows::new();
        for f in frames {
            process(
                f.as_slice(),
                &mut stats,
                || 1,
                |k, _, _| Some(flows.entry(*k).or_insert_with(FlowStats::zeroed)),
                &mut NoEvents,
                &mut MemFilter::default(),
                &mut WalkFindings::new(),
            );
        }
        (stats, flows)
    }

    #[test]
    fn fixture_table_gives_expected_counters() {
        for fx in fixtures::table().into_iter().chain(fixtures::jumbo()) {
            let (stats, _) = run(core::slice::from_ref(&fx.frame));
            for (c, want) in &fx.expect {
                assert_eq!(stats.get(*c), *want, "{}: counter {}", fx.name, c.name());
            }
            assert_eq!(stats.get(Counter::Frames), 1, "{}", fx.name);
            let errors: u64 = Counter::ALL.iter().filter(|c| c.is_error()).map(|c| stats.get(*c)).sum();
            assert_eq!(errors, stats.get(Counter::Malformed), "{}: one reason per malformed packet", fx.name);
        }
    }

    #[test]
    fn per_type_counts_cover_every_chunk_walked() {
        for fx in fixtures::table() {
            let (stats, flows) = run(&[fx.frame]);
            let by_type: u64 = stats.chunk_types.iter().sum();
            assert_eq!(by_type, stats.get(Counter::Chunks), "{}", fx.name);
            let by_flow: u64 = flows.values().flat_map(|f| f.chunks.iter()).sum();
            assert_eq!(by_flow, stats.get(Counter::Chunks), "{}", fx.name);
        }
    }

    #[test]
    fn flow_keeps_init_fields_and_tsn_state() {
        let init = SctpPacket::new(V4, 0, vec![Chunk::init(ty::INIT, 0xabcd, 5000, 10, 20, 77)]);
        let d = |tsn| SctpPacket::new(V4, 0xabcd, vec![Chunk::data(tsn, 3, 0, 46, 10)]).frame();
        // 77, 78, then 78 again (duplicate), 76 (old), 80: two at or below the highest.
        let (_, flows) = run(&[init.frame(), d(77), d(78), d(78), d(76), d(80)]);
        let init_flow = &flows[&FlowKey { src_port: 36412, dst_port: 38412, vtag: 0 }];
        assert_eq!(init_flow.init_chunk_type, u32::from(ty::INIT));
        assert_eq!((init_flow.init_tag, init_flow.init_a_rwnd, init_flow.init_tsn), (0xabcd, 5000, 77));
        assert_eq!((init_flow.init_out_streams, init_flow.init_in_streams), (10, 20));
        let data = &flows[&FlowKey { src_port: 36412, dst_port: 38412, vtag: 0xabcd }];
        assert_eq!(data.data_chunks, 5);
        assert_eq!(data.highest_tsn, 80);
        assert_eq!(data.data_at_or_below_highest, 2);
        assert_eq!((data.last_stream, data.last_ppid), (3, 46));
        assert_eq!(data.packets, 5);
    }

    #[test]
    fn data_events_carry_what_the_join_needs() {
        let p = SctpPacket::new(V4, 0xabcd, vec![Chunk::data(41, 3, 9, 46, 10), Chunk::idata(42, 4, 77, 60, 5)]);
        let mut events = Vec::new();
        let mut stats = GlobalStats::zeroed();
        let mut flow = FlowStats::zeroed();
        process(
            p.frame().as_slice(),
            &mut stats,
            || 123,
            |_, _, _| Some(&mut flow),
            &mut events,
            &mut MemFilter::default(),
            &mut WalkFindings::new(),
        );
        assert_eq!(events.len(), 2);
        let (d, i) = (&events[0], &events[1]);
        assert_eq!((d.ts_ns, d.vtag, d.src_port, d.dst_port), (123, 0xabcd, 36412, 38412));
        assert_eq!((d.tsn, d.stream, d.ssn_or_mid, d.ppid, d.payload_len, d.chunk_type), (41, 3, 9, 46, 10, ty::DATA));
        assert_eq!(
            (i.tsn, i.stream, i.ssn_or_mid, i.ppid, i.payload_len, i.chunk_type),
            (42, 4, 77, 60, 5, ty::I_DATA)
        );
    }

    #[test]
    fn data_events_of_a_packet_the_rules_dropped_are_withdrawn() {
        let mut rs = crate::abi::RuleSet::empty();
        (rs.rule_count, rs.max_chunks) = (1, 2);
        let data = |tsns: &[u32]| {
            let chunks = tsns.iter().map(|t| Chunk::data(*t, 3, 9, 46, 10)).collect();
            SctpPacket::new(V4, 0xabcd, chunks).frame()
        };
        let (mut events, mut stats, mut flow, mut seen) =
            (Vec::new(), GlobalStats::zeroed(), FlowStats::zeroed(), WalkFindings::new());
        let mut filter = MemFilter::new(&rs, 0);
        for (frame, now) in [(data(&[1, 2]), 100), (data(&[3, 4, 5]), 200), (data(&[6]), 300)] {
            process(
                frame.as_slice(),
                &mut stats,
                || now,
                |_, _, _| Some(&mut flow),
                &mut events,
                &mut filter,
                &mut seen,
            );
        }
        let got: Vec<(u64, u32, u8)> = events.iter().map(|e| (e.ts_ns, e.tsn, e.chunk_type)).collect();
        let withdrawal = (200, 5, WITHDRAWN);
        assert_eq!(
            got,
            [(100, 1, 0), (100, 2, 0), (200, 3, 0), (200, 4, 0), (200, 5, 0), withdrawal, (300, 6, 0)],
            "three chunks are over the limit: their packet's events are withdrawn at once"
        );
        assert_eq!(events[5].vtag, 0xabcd);
        assert_eq!((stats.get(Counter::VerdictDrop), stats.get(Counter::VerdictPass)), (1, 2));
    }

    /// A packet the walk reads one step a chunk: how it read every chunk before DATA runs.
    struct StepByStep<'a>(&'a [u8]);

    impl Packet for StepByStep<'_> {
        const DATA_RUN: usize = 0;

        fn read<const N: usize>(&self, off: usize) -> Option<Bytes<N>> {
            self.0.read(off)
        }

        fn frame_len(&self) -> usize {
            self.0.len()
        }
    }

    /// Everything a run of packets leaves: counters, flows, events and summaries.
    fn recorded(frames: &[Vec<u8>], step_by_step: bool) -> (GlobalStats, Flows, Recorder) {
        fn feed<P: Packet + ?Sized>(
            pkt: &P,
            stats: &mut GlobalStats,
            flows: &mut Flows,
            sink: &mut Recorder,
            seen: &mut WalkFindings,
        ) {
            let filter = &mut MemFilter::default();
            process(
                pkt,
                stats,
                || 7,
                |k, _, _| Some(flows.entry(*k).or_insert_with(FlowStats::zeroed)),
                sink,
                filter,
                seen,
            );
        }
        let (mut stats, mut flows, mut sink, mut seen) =
            (GlobalStats::zeroed(), Flows::new(), Recorder::default(), WalkFindings::new());
        for f in frames {
            if step_by_step {
                feed(&StepByStep(f), &mut stats, &mut flows, &mut sink, &mut seen);
            } else {
                feed(f.as_slice(), &mut stats, &mut flows, &mut sink, &mut seen);
            }
        }
        (stats, flows, sink)
    }

    #[test]
    fn a_run_of_data_chunks_counts_what_a_step_a_chunk_counts() {
        let data = |tsn, flags| Chunk::data_flags(flags, tsn, 1, 2, 46, 5 + tsn as usize % 7);
        let bundle = |n: u32, flags| (0..n).map(|i| data(100 + i, flags)).collect::<Vec<_>>();
        let mut packets = vec![
            bundle(8, 3),
            bundle(40, 3),
            bundle(3, 0),
            bundle(5, flag::UNORDERED | flag::BEGIN),
            // The run ends at a chunk of another kind, too short, or cut by the packet.
            [vec![Chunk::sack(1, 2, 0, 0)], bundle(9, 3)].concat(),
            [bundle(2, 3), vec![Chunk::idata(7, 1, 2, 60, 9)], bundle(2, 3)].concat(),
            [bundle(2, 3), vec![Chunk::new(ty::DATA, 3, vec![0; 8])], bundle(2, 3)].concat(),
            [bundle(3, 3), vec![data(50, 3).with_length(400)]].concat(),
        ];
        // The same TSNs again: retransmissions.
        packets.push(bundle(8, 3));
        let mut frames: Vec<Vec<u8>> = packets.into_iter().map(|c| SctpPacket::new(V4, 0xabcd, c).frame()).collect();
        frames.extend(fixtures::table().into_iter().map(|f| f.frame));
        // And each of them cut short at every fourth byte.
        let cut: Vec<Vec<u8>> = frames.iter().flat_map(|f| (40..f.len()).step_by(4).map(|n| f[..n].to_vec())).collect();
        for run in [frames, cut] {
            let (runs, by_step) = (recorded(&run, false), recorded(&run, true));
            assert!(bytemuck::bytes_of(&runs.0) == bytemuck::bytes_of(&by_step.0), "global counters differ");
            assert_eq!(runs.1.len(), by_step.1.len());
            for ((k, a), (_, b)) in runs.1.iter().zip(&by_step.1) {
                assert!(bytemuck::bytes_of(a) == bytemuck::bytes_of(b), "flow {k:?} differs");
            }
            assert!(runs.2.data == by_step.2.data, "DATA events differ");
            assert!(runs.2.packets == by_step.2.packets, "summaries differ");
        }
    }

    #[test]
    fn tsn_comparison_survives_wraparound() {
        let d = |tsn| SctpPacket::new(V4, 1, vec![Chunk::data(tsn, 0, 0, 0, 1)]).frame();
        let (_, flows) = run(&[d(u32::MAX - 1), d(u32::MAX), d(0), d(1)]);
        let f = flows.values().next().unwrap();
        assert_eq!((f.highest_tsn, f.data_at_or_below_highest), (1, 0));
    }

    #[test]
    fn flow_bytes_are_ip_lengths_and_ethernet_padding_is_ignored() {
        let p = SctpPacket::new(V4, 1, vec![Chunk::new(ty::COOKIE_ACK, 0, vec![])]);
        let mut frame = p.frame();
        let ip_len = (frame.len() - 14) as u64;
        frame.resize(60, 0); // minimum Ethernet frame: padding after the IP packet
        let (stats, flows) = run(&[frame]);
        assert_eq!(stats.get(Counter::Malformed), 0);
        assert_eq!(flows.values().next().unwrap().bytes, ip_len);
    }

    #[test]
    fn t_bit_and_error_causes_are_counted_per_flow() {
        // "Unrecognized Chunk Type" (6), its body the header of the chunk not understood.
        let cause = vec![0, 6, 0, 8, 0xfe, 0, 0, 4];
        let p =
            SctpPacket::new(V4, 1, vec![Chunk::new(ty::ERROR, 0, cause), Chunk::new(ty::ABORT, flag::T_BIT, vec![])]);
        let (_, flows) = run(&[p.frame()]);
        let f = flows.values().next().unwrap();
        assert_eq!(f.t_bit_chunks, 1);
        assert_eq!(f.error_causes[6], 1);
    }

    #[test]
    #[expect(clippy::cast_possible_truncation, reason = "random bytes and positions: truncation is the point")]
    fn random_and_mutated_input_never_panics_and_stays_consistent() {
        // xorshift: deterministic, no dependency.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let seeds: Vec<Vec<u8>> = fixtures::table().into_iter().map(|f| f.frame).collect();
        for i in 0..20_000 {
            let mut f = seeds[i % seeds.len()].clone();
            for _ in 0..=(next() % 4) {
                let pos = (next() as usize) % f.len().max(1);
                if let Some(b) = f.get_mut(pos) {
                    *b = next() as u8;
                }
            }
            if next() % 5 == 0 {
                f.truncate((next() as usize) % (f.len() + 1));
            }
            let (stats, flows) = run(&[f.clone()]);
            if let Some(broken) = testing::bounds_broken(f.len(), &stats, flows.values().next()) {
                panic!("{broken}: {f:02x?}");
            }
            let errors: u64 = Counter::ALL.iter().filter(|c| c.is_error()).map(|c| stats.get(*c)).sum();
            assert_eq!(errors, stats.get(Counter::Malformed));
            assert!(stats.get(Counter::Chunks) <= MAX_CHUNKS as u64);
        }
    }
}
