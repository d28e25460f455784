//! The walk over a packet's chunks: a run of whole DATA chunks in one call, then one step
//! per chunk, each step bounded for the verifier and accounted by `account`.

use core::ops::ControlFlow;

use super::{
    account::{account_chunk, count_data, data_fields, data_on_path, Chunk},
    note, DataSink, Packet, WalkFindings, MAX_CHUNKS,
};
use crate::{
    abi::{Counter, FlowStats, GlobalStats, SUMMARY_CHUNKS},
    atomic::add,
    filter::Filter,
    proto::chunk::{self, ty},
};

/// Walks the chunks after the common header: a run of whole DATA chunks first (see
/// [`data_run`]), then one step per chunk (see [`Packet::repeat`]).
/// How the walk ended early goes to `seen.walk_end` (a counter, also counted); it stays 0
/// when the walk reached the end of the packet cleanly.
#[inline(always)]
pub(super) fn walk_chunks<'r, P: Packet + ?Sized, S: DataSink, R: Filter<'r>>(
    pkt: &P,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    sink: &mut S,
    filter: &mut R,
    seen: &mut WalkFindings,
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
pub(super) fn walk_step<'r, P: Packet + ?Sized, S: DataSink, R: Filter<'r>>(
    pkt: &P,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    sink: &mut S,
    filter: &mut R,
    seen: &mut WalkFindings,
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
pub(super) fn end_walk(stats: &mut GlobalStats, flow: &mut FlowStats, seen: &mut WalkFindings, c: Counter) {
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
pub(super) fn chunk_step<'r, P: Packet + ?Sized, S: DataSink, R: Filter<'r>>(
    pkt: &P,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    sink: &mut S,
    filter: &mut R,
    seen: &mut WalkFindings,
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
pub(super) fn count_chunk(stats: &mut GlobalStats, flow: &mut FlowStats, seen: &mut WalkFindings, chunk_type: u8) {
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
pub(super) fn record_chunk(seen: &mut WalkFindings, n: u8, hdr: [u8; 4], wanted: bool) {
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
pub(super) fn next_chunk(off: usize, len: usize, end: usize) -> ControlFlow<Option<Counter>, usize> {
    let next = off + ((len + 3) & !3);
    if next >= end {
        return ControlFlow::Break(None);
    }
    ControlFlow::Continue(next)
}

/// Runs up to [`Packet::DATA_RUN`] steps of [`data_run_step`] after the packet's first
/// chunk (accounted in the stage before the walk), and says whether the walk goes on.
#[inline(always)]
pub(super) fn data_run<P: Packet + ?Sized, S: DataSink>(
    pkt: &P,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    sink: &mut S,
    seen: &mut WalkFindings,
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
pub(super) fn data_run_step<P: Packet + ?Sized, S: DataSink>(
    pkt: &P,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    sink: &mut S,
    seen: &mut WalkFindings,
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
