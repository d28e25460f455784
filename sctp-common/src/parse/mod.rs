//! The data path: Ethernet -> IPv4/IPv6 -> SCTP common header -> every chunk, with the
//! accounting into global and per-flow counters. Context-free: the caller supplies the
//! packet reader, the global counters and a way to find the flow's counters.

mod packet;
pub mod round_trip;
mod scratch;
mod sink;

pub use packet::{Bytes, Packet, MAX_OFFSET};
pub use scratch::{Crossing, Seen, Walk};
#[cfg(any(test, feature = "testing"))]
pub use sink::Recorder;
pub use sink::{DataSink, NoEvents, NoTally, Tally};

use core::ops::ControlFlow;

use crate::{
    abi::{
        Counter, DataEvent, FlowKey, FlowStats, GlobalStats, ERROR_CAUSE_BUCKETS, FAMILY_IPV4, FAMILY_IPV6, PATH_SLOTS,
        SUMMARY_CHUNKS, WITHDRAWN,
    },
    atomic::add,
    filter::{self, Filter, FirstChunk, Source},
    proto::{
        chunk::{self, flag, ty},
        ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_SCTP, SCTP_COMMON_HEADER,
    },
};

/// VLAN tags (802.1Q / 802.1ad) accepted before the IP header.
pub const MAX_VLAN_TAGS: usize = 2;
/// IPv6 extension headers walked before giving up.
pub const MAX_IPV6_EXT_HEADERS: usize = 6;
/// Chunks walked per packet; a packet with more is counted as `ErrChunkWalkLimit`.
pub const MAX_CHUNKS: usize = crate::abi::SUMMARY_CHUNKS;

/// What the program does with the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
}

/// Where the SCTP part of an IP packet is, found by [`locate_sctp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SctpLocation {
    /// Offset of the SCTP common header.
    pub offset: usize,
    /// End of the IP packet as its header declares it.
    pub end: usize,
    /// Length of the IP packet, header included.
    pub ip_len: u64,
    /// The packet is the first fragment of a fragmented IP packet: chunks may run past it.
    pub first_fragment: bool,
    pub family: u32,
    /// The addresses in network order (IPv4: the first of the four words), kept as
    /// words: aligned, the BPF target moves them whole (see [`Address`]).
    pub src_addr: Address,
    pub dst_addr: Address,
}

/// An address as the parser keeps it: 16 bytes in network order as four words.
pub type Address = [u32; 4];

/// The bytes of an address.
#[inline(always)]
#[must_use]
pub fn address_bytes(a: &Address) -> &[u8; 16] {
    bytemuck::cast_ref(a)
}

/// Why [`locate_sctp`] found no SCTP header: either a plain outcome (not IP, not SCTP, a
/// later fragment) or a parse error, both a counter.
type Located = Result<SctpLocation, Counter>;

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
    seen: &mut Seen,
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
            if verdict == Verdict::Drop && sink.wants_data() && seen.carried_data() {
                seen.data.chunk_type = WITHDRAWN;
                sink.data(&seen.data);
            }
            round_trip::note(flow, seen);
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

/// Walks Ethernet, VLAN and IP headers to the SCTP common header.
///
/// # Errors
/// The counter that says why the packet is not SCTP or not whole (also counted in `stats`).
#[inline(always)]
pub fn locate_sctp<P: Packet + ?Sized, T: Tally>(pkt: &P, stats: &mut T) -> Located {
    let mut ethertype = pkt.be16_at(12).ok_or(Counter::ErrEthernetTruncated)?;
    let mut off = ETH_HLEN;
    let mut tagged = false;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        tagged = true;
        ethertype = pkt.be16_at(off + 2).ok_or(Counter::ErrVlanTruncated)?;
        off += 4;
    }
    if tagged {
        stats.bump(Counter::VlanTagged, 1);
    }
    match ethertype {
        ETH_P_IPV4 => {
            stats.bump(Counter::Ipv4, 1);
            locate_in_ipv4(pkt, off)
        }
        ETH_P_IPV6 => {
            stats.bump(Counter::Ipv6, 1);
            locate_in_ipv6(pkt, off)
        }
        ETH_P_8021Q | ETH_P_8021AD => Err(Counter::ErrVlanDepth),
        _ => Err(Counter::NotIp),
    }
}

#[inline(always)]
fn locate_in_ipv4<P: Packet + ?Sized>(pkt: &P, off: usize) -> Located {
    let hdr = pkt.read::<20>(off).ok_or(Counter::ErrIpv4Truncated)?;
    let ihl = ((hdr[0] & 0x0f) as usize) * 4;
    let total_len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    if hdr[0] >> 4 != 4 || ihl < 20 || total_len < ihl {
        return Err(Counter::ErrIpv4HeaderLength);
    }
    // Options must be inside the frame too (ihl >= 20, so this stays in the header).
    pkt.read::<4>(off + ihl - 4).ok_or(Counter::ErrIpv4Truncated)?;
    if hdr[9] != IPPROTO_SCTP {
        return Err(Counter::NotSctp);
    }
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
    if frag & 0x1fff != 0 {
        return Err(Counter::LaterFragments);
    }
    // Built of words, not bytes: zeroing a byte array and copying into it becomes
    // `memset` calls on the BPF target, and building it byte by byte a stack slot a byte.
    let src_addr = [u32::from_ne_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]), 0, 0, 0];
    let dst_addr = [u32::from_ne_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]), 0, 0, 0];
    // An IP length past the frame counts only what the frame holds.
    let end = (off + total_len).min(pkt.frame_len());
    Ok(SctpLocation {
        offset: off + ihl,
        end,
        ip_len: (end - off) as u64,
        first_fragment: frag & 0x2000 != 0,
        family: FAMILY_IPV4,
        src_addr,
        dst_addr,
    })
}

#[inline(always)]
fn locate_in_ipv6<P: Packet + ?Sized>(pkt: &P, off: usize) -> Located {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTH: u8 = 51;
    const DEST_OPTS: u8 = 60;

    // The fixed header's first 8 bytes, then the addresses read whole (see IPv4's).
    let hdr = pkt.read::<8>(off).ok_or(Counter::ErrIpv6Truncated)?;
    let src_addr = bytemuck::cast(pkt.read::<16>(off + 8).ok_or(Counter::ErrIpv6Truncated)?.0);
    let dst_addr = bytemuck::cast(pkt.read::<16>(off + 24).ok_or(Counter::ErrIpv6Truncated)?.0);
    let payload_len = u16::from_be_bytes([hdr[4], hdr[5]]) as usize;
    let mut next = hdr[6];
    let mut l4 = off + 40;
    let mut first_fragment = false;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        l4 = pkt.launder(l4);
        // Every extension header starts with next-header and a length (or reserved) byte.
        let [this_next, len, frag_hi, frag_lo] = match next {
            HOP_BY_HOP | ROUTING | DEST_OPTS | AUTH | FRAGMENT => {
                pkt.read::<4>(l4).ok_or(Counter::ErrIpv6ExtTruncated)?.0
            }
            _ => break,
        };
        let ext_len = match next {
            AUTH => (len as usize + 2) * 4,
            FRAGMENT => {
                let frag = u16::from_be_bytes([frag_hi, frag_lo]);
                if frag & 0xfff8 != 0 {
                    // Offset != 0: counted as a later fragment whatever it carries.
                    return Err(Counter::LaterFragments);
                }
                first_fragment = frag & 1 != 0;
                8
            }
            _ => (len as usize + 1) * 8,
        };
        next = this_next;
        l4 += ext_len;
    }
    match next {
        IPPROTO_SCTP => {}
        HOP_BY_HOP | ROUTING | FRAGMENT | AUTH | DEST_OPTS => return Err(Counter::ErrIpv6ExtLimit),
        _ => return Err(Counter::NotSctp),
    }
    let end = (off + 40 + payload_len).min(pkt.frame_len());
    Ok(SctpLocation {
        offset: l4,
        end,
        ip_len: (end - off) as u64,
        first_fragment,
        family: FAMILY_IPV6,
        src_addr,
        dst_addr,
    })
}

/// The common header and the first chunk of an SCTP packet at `offset`.
#[inline(always)]
pub fn sctp_header<P: Packet + ?Sized>(pkt: &P, offset: usize) -> Option<(FlowKey, FirstChunk)> {
    let c = pkt.read::<8>(offset)?;
    let key = FlowKey {
        src_port: u16::from_be_bytes([c[0], c[1]]),
        dst_port: u16::from_be_bytes([c[2], c[3]]),
        vtag: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
    };
    let head = pkt.read::<4>(offset + SCTP_COMMON_HEADER);
    // The word after the header (INIT's Initiate Tag); chunks may be only 4 bytes.
    let word = pkt.read::<4>(offset + SCTP_COMMON_HEADER + 4).map_or([0; 4], |w| w.0);
    let h = head.map_or([0; 4], |h| h.0);
    let first = FirstChunk::from_bytes([h[0], h[1], h[2], h[3], word[0], word[1], word[2], word[3]], head.is_some());
    Some((key, first))
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
    seen: &mut Seen,
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
    // judged (see `Seen::seal_summary`).
    #[expect(clippy::cast_possible_truncation, reason = "IP lengths are 16-bit fields, jumbograms 32-bit")]
    let ip_len = loc.ip_len as u32;
    seen.summary.ip_len = ip_len;
    seen.summary.chunks = 0;
    seen.summary.src_addr = *address_bytes(&loc.src_addr);
    seen.summary.dst_addr = *address_bytes(&loc.dst_addr);
    seen.stash(Crossing { key, first, active, now_ns, walk_end: 0, chunks_before: stats.get(Counter::Chunks) });
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
fn leave<'r, R: Filter<'r>>(stats: &mut GlobalStats, flow: &mut FlowStats, filter: &mut R, seen: &Seen) -> Verdict {
    let Crossing { key, walk_end, chunks_before, .. } = seen.recall();
    let (rs, gen) = filter.rules();
    let chunks = stats.get(Counter::Chunks).wrapping_sub(chunks_before);
    let verdict = judged(stats, gen, filter::judge(rs, &seen.notes, walk_end, chunks, key.vtag));
    if verdict == Verdict::Drop {
        add(&mut flow.dropped, 1);
    }
    verdict
}

/// Learns and forgets associations in the directory from a packet that passed, if its
/// first chunk names tags (see [`Seen::names_tags`] and [`filter::track_tags`]). The
/// caller runs it after [`process`], with or without rules: the directory tells flows of
/// completed handshakes from the others, and links the two directions.
#[inline(always)]
pub fn learn_tags<'r, R: Filter<'r>>(stats: &mut GlobalStats, filter: &mut R, seen: &Seen) {
    let Crossing { key, first, now_ns, walk_end, .. } = seen.recall();
    if first.present && !Counter::is_error_code(walk_end) {
        let (rs, _) = filter.rules();
        filter::track_tags(rs, filter, stats, &key, &first, now_ns);
    }
}

/// What the kernel does after [`process`] (outside it: the walk's verification and stack
/// stay small), in one place for the host engines: the directory learns from a packet
/// that passed, and the round-trip work is done in the packet's flow and the other
/// direction's. `flow` hands the flow of a key, if there is one, to `settle` (a flow is
/// never made here).
pub fn after_process<'r, R: Filter<'r>>(
    verdict: Verdict,
    stats: &mut GlobalStats,
    filter: &mut R,
    seen: &Seen,
    mut flow: impl FnMut(&FlowKey, &mut dyn FnMut(&mut FlowStats)),
) {
    let init_learned = filter::learns_init_tags(filter.rules().0);
    if verdict == Verdict::Pass && seen.names_tags(init_learned) {
        learn_tags(stats, filter, seen);
    }
    if seen.peer_work() != 0 {
        let (key, _) = seen.key_and_time();
        let mut paired = false;
        if let Some(peer) = round_trip::peer_key(seen, filter) {
            flow(&peer, &mut |f| {
                round_trip::settle_peer(seen, f);
                paired = true;
            });
        }
        flow(&key, &mut |f| round_trip::settle_own(seen, f, paired));
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

/// Walks the chunks after the common header: a run of whole DATA chunks first (see
/// [`data_run`]), then one step per chunk (see [`Packet::repeat`]).
/// How the walk ended early goes to `seen.walk_end` (a counter, also counted); it stays 0
/// when the walk reached the end of the packet cleanly.
#[inline(always)]
fn walk_chunks<'r, P: Packet + ?Sized, S: DataSink, R: Filter<'r>>(
    pkt: &P,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    sink: &mut S,
    filter: &mut R,
    seen: &mut Seen,
) {
    let walking = seen.walk().walking && (P::DATA_RUN == 0 || pkt.outline(|| data_run(pkt, stats, flow, sink, seen)));
    if walking {
        #[expect(clippy::cast_possible_truncation, reason = "a small constant")]
        pkt.repeat(MAX_CHUNKS as u32, || walk_step(pkt, stats, flow, sink, filter, seen));
    }
    let walk = seen.walk();
    if walk.walking && pkt.bound(walk.off) < pkt.bound(walk.end) {
        end_walk(stats, flow, seen, Counter::ErrChunkWalkLimit);
    }
}

/// One step of the walk: accounts the chunk at the walk's offset and says whether the
/// walk goes on. The first step runs in the stage before the walk (see [`process`]), so
/// each step first checks that the walk has not had its `MAX_CHUNKS` chunks yet (the
/// walk then still "walking": [`walk_chunks`] counts the limit).
#[inline(always)]
fn walk_step<'r, P: Packet + ?Sized, S: DataSink, R: Filter<'r>>(
    pkt: &P,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    sink: &mut S,
    filter: &mut R,
    seen: &mut Seen,
) -> bool {
    if usize::from(seen.summary_chunks()) >= MAX_CHUNKS {
        return false;
    }
    match chunk_step(pkt, stats, flow, sink, filter, seen) {
        ControlFlow::Continue(next) => {
            seen.set_walk_off(next);
            true
        }
        ControlFlow::Break(ended) => {
            if let Some(c) = ended {
                end_walk(stats, flow, seen, c);
            }
            seen.stop_walk();
            false
        }
    }
}

/// Counts how a walk ended early, and notes it for the rules.
#[inline(always)]
fn end_walk(stats: &mut GlobalStats, flow: &mut FlowStats, seen: &mut Seen, c: Counter) {
    if c.is_error() {
        add(&mut flow.malformed, 1);
    }
    note(stats, c);
    seen.set_walk_end(c);
}

/// Accounts the chunk at the walk's offset. Continues with the next chunk's offset, or
/// breaks with how the walk ended (`None`: at the end of the packet, cleanly).
///
/// Everything that differs from one chunk to the next comes from `seen` (map memory in
/// the kernel), so the verifier checks this step once, not once per chunk.
#[inline(always)]
fn chunk_step<'r, P: Packet + ?Sized, S: DataSink, R: Filter<'r>>(
    pkt: &P,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    sink: &mut S,
    filter: &mut R,
    seen: &mut Seen,
) -> ControlFlow<Option<Counter>, usize> {
    let walk = seen.walk();
    // Laundered, not only bounded: with several steps per kernel loop callback, 6.1's
    // verifier loses the bound of a register the compiler copied (seen as unbounded).
    let off = pkt.launder(walk.off);
    let end = pkt.bound(walk.end);
    if off >= end {
        return ControlFlow::Break(None);
    }
    if off + 4 > end {
        return ControlFlow::Break(Some(Counter::ErrTrailingBytes));
    }
    let Some(hdr) = pkt.read::<4>(off) else {
        return ControlFlow::Break(Some(Counter::ErrChunkBeyondPacket));
    };
    let (chunk_type, flags) = (hdr[0], hdr[1]);
    let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    if len < 4 {
        return ControlFlow::Break(Some(Counter::ErrChunkTooShort));
    }
    count_chunk(stats, flow, seen, chunk_type);
    // A length that runs past the packet lies, and nothing is taken from it: only a
    // first fragment ends inside a chunk by nature, and then only the bytes present
    // count.
    let cut = off + len > end;
    if cut && !walk.first_fragment {
        return ControlFlow::Break(Some(Counter::ErrChunkBeyondPacket));
    }
    let present = if cut { end - off } else { len };
    let chunk = Chunk { kind: chunk_type, flags, len: present };
    // The rules are asked for here, not taken as arguments: fewer values captured for the
    // kernel's loop, whose frame counts against the stack with the callers'.
    let (rs, gen) = filter.rules();
    let n = seen.summary_chunks();
    let notes = &mut seen.notes;
    let mut on_data = |ppid| notes.data_chunk(rs, gen, filter, len, ppid);
    // The words go straight to the summary's next slot (in map memory: no stack for
    // them in the step's frame, which the multi-buffer program is short of on 6.1); the
    // slot counts once the chunk was read whole.
    let slot = &mut seen.summary.chunk[usize::from(n) % SUMMARY_CHUNKS];
    let wanted = match account_chunk(pkt, off, chunk, stats, flow, &mut seen.data, &mut slot.words, sink, &mut on_data)
    {
        Ok(wanted) => wanted,
        Err(c) => return ControlFlow::Break(Some(if cut { Counter::FragmentCutWalks } else { c })),
    };
    record_chunk(seen, n, *hdr, wanted);
    if matches!(chunk_type, ty::DATA | ty::I_DATA) {
        data_on_path(flow, seen.path());
    }
    if cut {
        return ControlFlow::Break(Some(Counter::FragmentCutWalks));
    }
    next_chunk(off, len, end)
}

/// Counts a chunk whose header was read, before its fields are.
#[inline(always)]
fn count_chunk(stats: &mut GlobalStats, flow: &mut FlowStats, seen: &mut Seen, chunk_type: u8) {
    stats.bump(Counter::Chunks, 1);
    stats.chunk_types[chunk_type as usize] += 1;
    seen.chunk_type(chunk_type);
    if let Some(n) = flow.chunks.get_mut(chunk::bucket(chunk_type)) {
        add(n, 1);
    }
}

/// Completes the summary's slot `n` (its words written already) with the chunk's header,
/// and counts it in.
#[inline(always)]
fn record_chunk(seen: &mut Seen, n: u8, hdr: [u8; 4], wanted: bool) {
    let slot = &mut seen.summary.chunk[usize::from(n) % SUMMARY_CHUNKS];
    slot.chunk_type = hdr[0];
    slot.flags = hdr[1];
    slot.len = u16::from_be_bytes([hdr[2], hdr[3]]);
    seen.set_summary_chunks(n + 1);
    seen.want_summary_if(wanted);
}

/// The offset of the chunk after the one `len` bytes long at `off`, or the walk's clean
/// end: at the end now, not at the next step's start, is a step less (a call, in the
/// kernel).
#[inline(always)]
fn next_chunk(off: usize, len: usize, end: usize) -> ControlFlow<Option<Counter>, usize> {
    let next = off + ((len + 3) & !3);
    if next >= end {
        return ControlFlow::Break(None);
    }
    ControlFlow::Continue(next)
}

/// Runs up to [`Packet::DATA_RUN`] steps of [`data_run_step`] after the packet's first
/// chunk (accounted in the stage before the walk), and says whether the walk goes on.
#[inline(always)]
fn data_run<P: Packet + ?Sized, S: DataSink>(
    pkt: &P,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    sink: &mut S,
    seen: &mut Seen,
) -> bool {
    for _ in 0..P::DATA_RUN {
        if !data_run_step(pkt, stats, flow, sink, seen) {
            break;
        }
    }
    seen.walk().walking
}

/// Accounts the chunk at the walk's offset if it is the commonest chunk of a busy
/// association, a whole DATA chunk, in a packet no rule judges. Says whether it did and
/// the walk goes on; else leaves the chunk, and how the walk ends, to [`walk_step`].
///
/// What [`chunk_step`] does for such a chunk, less what cannot apply to it (the dispatch
/// by chunk type, the rules' notes, a chunk cut short). Run in one call before the walk's
/// loop ([`walk_chunks`]), a bundle of DATA takes no call of the kernel's loop, and each
/// of its chunks about half the work of a step (eight bundled: 163 ns above the empty
/// program, 235 with a step a chunk). Only there, not after each step of the loop: in the
/// loop's callback the verifier's work more than doubled.
#[inline(always)]
fn data_run_step<P: Packet + ?Sized, S: DataSink>(
    pkt: &P,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    sink: &mut S,
    seen: &mut Seen,
) -> bool {
    let walk = seen.walk();
    if !walk.walking || usize::from(seen.summary_chunks()) >= MAX_CHUNKS || seen.rules_active() {
        return false;
    }
    let off = pkt.launder(walk.off);
    let end = pkt.bound(walk.end);
    let Some(hdr) = pkt.read::<4>(off) else {
        return false;
    };
    let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    if hdr[0] != ty::DATA || off + len > end {
        return false;
    }
    let chunk = Chunk { kind: ty::DATA, flags: hdr[1], len };
    // Read before anything is counted: a chunk too short is the walk step's to count.
    let Ok(fields) = data_fields(pkt, off, chunk) else {
        return false;
    };
    count_chunk(stats, flow, seen, ty::DATA);
    // Read again, not kept from the check above: knowing it below 32, the compiler would
    // drop the slot index's `%`, and 6.1's verifier loses the bound through the stack.
    let n = seen.summary_chunks();
    let words = count_data(fields, chunk, stats, flow, &mut seen.data, sink, &mut |_| {});
    seen.summary.chunk[usize::from(n) % SUMMARY_CHUNKS].words = words;
    record_chunk(seen, n, *hdr, flow.data_chunks == 1);
    data_on_path(flow, seen.path());
    match next_chunk(off, len, end) {
        ControlFlow::Continue(next) => {
            seen.set_walk_off(next);
            true
        }
        ControlFlow::Break(_) => {
            seen.stop_walk();
            false
        }
    }
}

/// Counts the packet on its path, the slot of the same addresses or the first free one
/// (a new path: its summary goes to user space), and notes the slot for the packet's DATA
/// chunks (`PATH_SLOTS` beyond the slots).
#[inline(always)]
fn account_path(flow: &mut FlowStats, loc: &SctpLocation, now_ns: u64, ifindex: u32, seen: &mut Seen) {
    let mut slot = PATH_SLOTS;
    for (i, p) in flow.paths.iter_mut().enumerate() {
        if p.packets == 0 {
            p.src_addr = loc.src_addr;
            p.dst_addr = loc.dst_addr;
            seen.set_summary_wanted(true);
            slot = i;
            break;
        }
        if same_address(&p.src_addr, &loc.src_addr) && same_address(&p.dst_addr, &loc.dst_addr) {
            slot = i;
            break;
        }
    }
    seen.set_path(slot);
    // Read back from memory: the verifier then goes on in one state, not one per slot.
    let Some(p) = flow.paths.get_mut(seen.path()) else {
        add(&mut flow.paths_beyond, 1);
        return;
    };
    add(&mut p.packets, 1);
    add(&mut p.bytes, loc.ip_len);
    p.last_seen_ns = now_ns;
    p.ifindex = ifindex;
}

/// Word by word: an array comparison is a call to `memcmp`, which the bpf target lacks.
#[inline(always)]
fn same_address(a: &Address, b: &Address) -> bool {
    a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3]
}

/// Counts a DATA chunk on the packet's path (`slot`, see [`account_path`]), and a switch
/// when the DATA before it went another way.
#[inline(always)]
fn data_on_path(flow: &mut FlowStats, slot: usize) {
    let Some(p) = flow.paths.get_mut(slot) else {
        return;
    };
    add(&mut p.data_chunks, 1);
    #[expect(clippy::cast_possible_truncation, reason = "below PATH_SLOTS")]
    let tag = slot as u32 + 1;
    if flow.data_path != tag {
        if flow.data_path != 0 {
            add(&mut flow.data_path_switches, 1);
        }
        flow.data_path = tag;
    }
}

/// A chunk's header fields.
#[derive(Clone, Copy)]
struct Chunk {
    kind: u8,
    flags: u8,
    len: usize,
}

/// Reads the fixed fields of the chunk types we keep state for, and writes the words of
/// the chunk's summary (see `ChunkSummary::words`). `data` arrives with the packet's
/// fields filled in; a DATA chunk completes it and hands it to `sink`, and its PPID (if it
/// carries one) to `on_data`. Says whether user space needs the packet's summary for this
/// chunk: for every control chunk, never for DATA and SACK (the flow counts them, and
/// times their round trips: see [`round_trip`]).
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "the parser core takes each map and sink as its own generic argument, so kernel and host bind them differently"
)]
fn account_chunk<P: Packet + ?Sized, S: DataSink, D: FnMut(Option<u32>)>(
    pkt: &P,
    off: usize,
    chunk: Chunk,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    data: &mut DataEvent,
    summary_words: &mut [u32; 3],
    sink: &mut S,
    on_data: &mut D,
) -> Result<bool, Counter> {
    let Chunk { kind: chunk_type, flags, len } = chunk;
    let mut wanted = true;
    *summary_words = match chunk_type {
        ty::DATA | ty::I_DATA => {
            let words = account_data(pkt, off, chunk, stats, flow, data, sink, on_data)?;
            // The flow's first DATA: the association table learns the direction carries
            // data (established, if its COOKIE-ACK went unseen).
            wanted = flow.data_chunks == 1;
            words
        }
        ty::SACK => {
            let f = fixed::<P, 16>(pkt, off, len, 16)?;
            let cum_tsn = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
            let a_rwnd = u32::from_be_bytes([f[8], f[9], f[10], f[11]]);
            let (gaps, dups) = (u16::from_be_bytes([f[12], f[13]]), u16::from_be_bytes([f[14], f[15]]));
            let counts = u32::from(gaps) << 16 | u32::from(dups);
            let (gaps, dups) = (u64::from(gaps), u64::from(dups));
            // Each gap block and each duplicate TSN takes 4 bytes after the fixed fields.
            if (gaps + dups) * 4 > (len - 16) as u64 {
                return Err(Counter::ErrChunkCountsBeyondLength);
            }
            let first = flow.sacks == 0;
            wanted = first;
            if a_rwnd == 0 && (first || flow.last_a_rwnd != 0) {
                add(&mut flow.zero_windows, 1);
            }
            flow.a_rwnd_min = if first { a_rwnd } else { flow.a_rwnd_min.min(a_rwnd) };
            flow.last_cum_tsn_ack = cum_tsn;
            flow.last_a_rwnd = a_rwnd;
            add(&mut flow.sacks, 1);
            stats.bump(Counter::SackGapBlocks, gaps);
            stats.bump(Counter::SackDupTsns, dups);
            add(&mut flow.sack_gap_blocks, gaps);
            add(&mut flow.sack_dup_tsns, dups);
            [cum_tsn, a_rwnd, counts]
        }
        ty::INIT | ty::INIT_ACK => {
            let f = fixed::<P, 20>(pkt, off, len, 20)?;
            flow.init_chunk_type = u32::from(chunk_type);
            let words = [
                u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
                u32::from_be_bytes([f[8], f[9], f[10], f[11]]),
                u32::from_be_bytes([f[16], f[17], f[18], f[19]]),
            ];
            [flow.init_tag, flow.init_a_rwnd, flow.init_tsn] = words;
            flow.init_out_streams = u16::from_be_bytes([f[12], f[13]]);
            flow.init_in_streams = u16::from_be_bytes([f[14], f[15]]);
            words
        }
        ty::ABORT | ty::SHUTDOWN_COMPLETE if flags & flag::T_BIT != 0 => {
            add(&mut flow.t_bit_chunks, 1);
            [0; 3]
        }
        // The first cause; an ERROR without one is legal and counts nothing here.
        ty::ERROR if len >= 8 => {
            let cause = pkt.be16_at(off + 4).ok_or(Counter::ErrChunkBeyondPacket)? as usize;
            let bucket = if cause < ERROR_CAUSE_BUCKETS { cause } else { ERROR_CAUSE_BUCKETS - 1 };
            if let Some(n) = flow.error_causes.get_mut(bucket) {
                add(n, 1);
            }
            [0; 3]
        }
        _ => [0; 3],
    };
    Ok(wanted)
}

/// A DATA or I-DATA chunk: its counters, its event (when the sink takes events), and the
/// words of its summary.
#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "as account_chunk's, whose DATA arm this is")]
fn account_data<P: Packet + ?Sized, S: DataSink, D: FnMut(Option<u32>)>(
    pkt: &P,
    off: usize,
    chunk: Chunk,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    data: &mut DataEvent,
    sink: &mut S,
    on_data: &mut D,
) -> Result<[u32; 3], Counter> {
    let fields = data_fields(pkt, off, chunk)?;
    Ok(count_data(fields, chunk, stats, flow, data, sink, on_data))
}

/// The fields of a DATA or I-DATA chunk that are counted or go up in its event.
#[derive(Clone, Copy)]
struct DataFields {
    tsn: u32,
    stream: u16,
    /// DATA's stream sequence number, I-DATA's message identifier.
    ssn_or_mid: u32,
    /// 0 for I-DATA after a message's first fragment (which alone carries it).
    ppid: u32,
}

/// Reads a DATA or I-DATA chunk's fixed fields.
#[inline(always)]
fn data_fields<P: Packet + ?Sized>(pkt: &P, off: usize, chunk: Chunk) -> Result<DataFields, Counter> {
    let Chunk { kind: chunk_type, flags, len } = chunk;
    let idata = chunk_type == ty::I_DATA;
    let fields = fixed::<P, 16>(pkt, off, len, if idata { 20 } else { 16 })?;
    let tsn = u32::from_be_bytes([fields[4], fields[5], fields[6], fields[7]]);
    let stream = u16::from_be_bytes([fields[8], fields[9]]);
    let word3 = u32::from_be_bytes([fields[12], fields[13], fields[14], fields[15]]);
    let (ssn_or_mid, ppid) = if !idata {
        (u32::from(u16::from_be_bytes([fields[10], fields[11]])), word3)
    } else if flags & flag::BEGIN != 0 {
        // I-DATA carries the PPID only in a message's first fragment (else the FSN).
        (word3, pkt.be32_at(off + 16).ok_or(Counter::ErrChunkBeyondPacket)?)
    } else {
        (word3, 0)
    };
    Ok(DataFields { tsn, stream, ssn_or_mid, ppid })
}

/// Counts a DATA or I-DATA chunk read by [`data_fields`], hands its event to `sink` (when
/// it takes events) and its PPID (if it carries one) to `on_data`; returns the words of
/// its summary.
#[inline(always)]
fn count_data<S: DataSink, D: FnMut(Option<u32>)>(
    fields: DataFields,
    chunk: Chunk,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    data: &mut DataEvent,
    sink: &mut S,
    on_data: &mut D,
) -> [u32; 3] {
    let Chunk { kind: chunk_type, flags, len } = chunk;
    let DataFields { tsn, stream, ssn_or_mid, ppid } = fields;
    let idata = chunk_type == ty::I_DATA;
    let header = if idata { 20 } else { 16 };
    flow.last_stream = stream;
    if !idata || flags & flag::BEGIN != 0 {
        flow.last_ppid = ppid;
    }
    let payload = (len - header) as u64;
    #[expect(clippy::cast_possible_truncation, reason = "len is a 16-bit length field's value")]
    let payload_len = payload as u32;
    if sink.wants_data() {
        data.tsn = tsn;
        data.stream = stream;
        data.ssn_or_mid = ssn_or_mid;
        data.ppid = ppid;
        data.payload_len = payload_len;
        data.flags = flags;
        data.chunk_type = chunk_type;
        sink.data(data);
    }
    stats.bump(Counter::DataChunks, 1);
    stats.bump(Counter::DataPayloadBytes, payload);
    add(&mut flow.data_chunks, 1);
    add(&mut flow.data_payload_bytes, payload);
    if flags & flag::UNORDERED != 0 {
        stats.bump(Counter::DataUnordered, 1);
        add(&mut flow.data_unordered, 1);
    }
    if flags & (flag::BEGIN | flag::END) != flag::BEGIN | flag::END {
        stats.bump(Counter::DataFragments, 1);
        add(&mut flow.data_fragments, 1);
    }
    // Serial number arithmetic (RFC 1982): TSNs wrap.
    if flow.tsn_seen == 0 || (tsn.wrapping_sub(flow.highest_tsn).cast_signed()) > 0 {
        flow.highest_tsn = tsn;
        flow.tsn_seen = 1;
    } else {
        add(&mut flow.data_at_or_below_highest, 1);
    }
    on_data((!idata || flags & flag::BEGIN != 0).then_some(ppid));
    [tsn, payload_len, 0]
}

/// The first `N` bytes of a chunk whose type needs `need` bytes of fixed fields.
#[inline(always)]
fn fixed<P: Packet + ?Sized, const N: usize>(
    pkt: &P,
    off: usize,
    len: usize,
    need: usize,
) -> Result<Bytes<N>, Counter> {
    if len < need {
        return Err(Counter::ErrChunkFieldsTruncated);
    }
    pkt.read::<N>(off).ok_or(Counter::ErrChunkBeyondPacket)
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
                &mut Seen::new(),
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
            &mut Seen::new(),
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
            (Vec::new(), GlobalStats::zeroed(), FlowStats::zeroed(), Seen::new());
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
            seen: &mut Seen,
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
            (GlobalStats::zeroed(), Flows::new(), Recorder::default(), Seen::new());
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
