//! The XDP program (and its TC egress companion): the entry points, and the flows they
//! count in. It only binds the parser core and the rules in `sctp-common` to the kernel,
//! through rooms of one job each: `maps` (every map), `clock`, `reader` (packet reads),
//! `sink` (the rings to user space) and `filter` (the rules and the directory behind the
//! core's traits). All parsing and judging logic lives in the core.
// Built for bpf; `cargo clippy --workspace` also checks it on the host, where std is
// linked in and a `main` is needed.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![expect(clippy::inline_always, reason = "one verified function: see sctp-common's crate attribute")]

mod clock;
mod filter;
mod maps;
mod reader;
mod sink;

use aya_ebpf::{
    bindings::{xdp_action, BPF_NOEXIST, TC_ACT_OK},
    helpers::bpf_xdp_get_buff_len,
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use sctp_common::{
    abi::{Counter, FlowKey, FlowStats, EGRESS, INGRESS},
    filter::{handshake_completed, learns_init_tags, Filter, FirstChunk},
    parse::{
        learn_tags, process, round_trip,
        tally::{tally, TALLY_STEPS},
        withdraw_data, DataSink, NoEvents, Packet, Verdict, WalkFindings,
    },
};

use crate::{
    clock::{coarse_now, precise_now},
    filter::{Directory, KernelFilter, NoRules},
    maps::{
        CURSOR, EGRESS_FLOWS, EGRESS_GLOBAL, EGRESS_SEEN, EGRESS_TALLY, FLOWS, GLOBAL, NEW_FLOW_BUCKET, SEEN, TALLY,
        TC_TALLY, XDP_TALLY, XDP_TALLY_FRAGS, ZERO_FLOW,
    },
    reader::{outlined, SkbPacket, XdpPacket},
    sink::RingSink,
};

/// Flows of unknown associations one CPU may make a second, after a burst of
/// `PROVISIONAL_FLOW_BURST`; 0: no bound (set by user space before loading: replaying a
/// capture, every flow is counted). Read-only, as `COARSE_CLOCK`.
#[no_mangle]
static PROVISIONAL_FLOW_RATE: u32 = 0;

#[no_mangle]
static PROVISIONAL_FLOW_BURST: u32 = 0;

/// The program for frames that fit their linear data (MTUs up to about 3,500 bytes, and
/// every frame on kernels before 5.18): the fast one.
#[xdp]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn sctp_xdp(ctx: XdpContext) -> u32 {
    try_sctp_xdp::<false, true>(&ctx).unwrap_or(xdp_action::XDP_PASS)
}

/// The program for kernels without `bpf_loop` (before 5.17): the same, with the chunk
/// walk a bounded loop.
#[xdp]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn sctp_xdp_bounded(ctx: XdpContext) -> u32 {
    try_sctp_xdp::<false, false>(&ctx).unwrap_or(xdp_action::XDP_PASS)
}

/// The same program for multi-buffer frames (jumbo MTUs, large test runs): user space
/// loads it where frames may not fit a page and the kernel has multi-buffer XDP. Every
/// read goes through the helper, also for frames that fit their linear data: a copy of
/// the parser per kind of frame does not fit the stack limits of BPF-to-BPF calls on 6.1
/// (measured), and mixing direct and helper reads read by read passes the verifier's
/// instruction limit.
#[xdp(frags)]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn sctp_xdp_frags(ctx: XdpContext) -> u32 {
    try_sctp_xdp::<true, true>(&ctx).unwrap_or(xdp_action::XDP_PASS)
}

#[inline(always)]
fn try_sctp_xdp<const FRAGS: bool, const KERNEL_LOOP: bool>(ctx: &XdpContext) -> Option<u32> {
    // SAFETY: map value pointers stay valid for the program's run; per-CPU, so unshared.
    let stats = unsafe { &mut *GLOBAL.get_ptr_mut(0)? };
    let (start, end) = if FRAGS {
        // SAFETY: a helper on our own context.
        (0, usize::try_from(unsafe { bpf_xdp_get_buff_len(ctx.ctx) }).unwrap_or(0))
    } else {
        (ctx.data(), ctx.data_end())
    };
    let pkt = XdpPacket::<FRAGS, KERNEL_LOOP> { ctx: ctx.ctx, start, end, cursor: CURSOR.get_ptr_mut(0)? };
    // SAFETY: a field of the context the kernel passed.
    let mut sink = RingSink::<INGRESS>::load(unsafe { (*ctx.ctx).ingress_ifindex });
    // Both ways to a flow yield a FLOWS value, so the verifier walks the chunks once.
    let clock = coarse_now;
    let mut filter = KernelFilter::load()?;
    // SAFETY: as for `stats`.
    let seen = unsafe { &mut *SEEN.get_ptr_mut(0)? };
    let verdict = process(&pkt, stats, clock, ingress_flow, &mut sink, &mut filter, seen);
    // The rules this packet was judged by say whether an INIT's tag is learned.
    if verdict == Verdict::Pass && seen.names_tags(learns_init_tags(filter.rules().0)) {
        outlined(learn::<true>);
    }
    if seen.peer_work() != 0 {
        outlined(settle_round_trip::<true>);
    }
    if seen.tally_wanted() {
        let (map, slot) = if FRAGS { (&XDP_TALLY_FRAGS, 0) } else { (&XDP_TALLY, tally_slot::<KERNEL_LOOP>()) };
        // SAFETY: the slot holds an XDP program of the same kind, or nothing: then the
        // call returns and the packet passes uncounted (its messages are not read).
        unsafe { map.tail_call(ctx, slot) };
    }
    Some(match verdict {
        Verdict::Pass => xdp_action::XDP_PASS,
        Verdict::Drop => xdp_action::XDP_DROP,
    })
}

/// A flow's counters, in `FLOWS` or `EGRESS_FLOWS`. Functions, not closures: a closure
/// is not always inlined, and its call would add a third frame to the stage's.
#[inline(always)]
fn ingress_flow(key: &FlowKey, first: &FirstChunk, now_ns: u64) -> Option<&'static mut FlowStats> {
    // SAFETY: a map value, valid for this run. Other CPUs write it too: its counters grow
    // by atomic adds only (`sctp_common::atomic`), its last-seen fields are the last
    // writer's.
    flow_in::<true>(key, first, now_ns).map(|p| unsafe { &mut *p })
}

#[inline(always)]
fn egress_flow(key: &FlowKey, first: &FirstChunk, now_ns: u64) -> Option<&'static mut FlowStats> {
    // SAFETY: as above.
    flow_in::<false>(key, first, now_ns).map(|p| unsafe { &mut *p })
}

/// Steps of the message count per run of its program without `bpf_loop` (see
/// `count_messages`): a bounded loop is verified once per step, and the kernels of this
/// variant verify slowly (minutes under emulation), so rounds are short; with the
/// kernel's limit of 33 tail calls, a packet needing more than 528 steps (many long
/// Diameter answers) counts as `message_counts_unfinished`.
const BOUNDED_TALLY_STEPS: u32 = 16;

/// As `walked`, to write.
#[inline(always)]
fn walked_mut<const ARRIVING: bool>() -> Option<&'static mut WalkFindings> {
    let seen = if ARRIVING { &SEEN } else { &EGRESS_SEEN };
    // SAFETY: a per-CPU map value, valid for the run and unshared.
    Some(unsafe { &mut *seen.get_ptr_mut(0)? })
}

/// The scratch of the packet just walked: arriving (`SEEN`) or leaving (`EGRESS_SEEN`).
#[inline(always)]
fn walked<const ARRIVING: bool>() -> Option<&'static WalkFindings> {
    let seen = if ARRIVING { &SEEN } else { &EGRESS_SEEN };
    // SAFETY: a per-CPU map value, valid for the run.
    Some(unsafe { &*seen.get_ptr(0)? })
}

/// The directory learns from the handshake the packet just walked passed with
/// (`learn_tags`), arriving or leaving: by the rules' own filter (whose idle timeout
/// closes entries), counted with the arriving packets' counters. The steps after the
/// walk run in frames of their own that capture nothing: the entry point's frame is short
/// of stack.
#[inline(always)]
fn learn<const ARRIVING: bool>() -> Option<()> {
    let seen = walked::<ARRIVING>()?;
    let mut filter = KernelFilter::load()?;
    // SAFETY: a per-CPU map value, valid for the run.
    let stats = unsafe { &mut *GLOBAL.get_ptr_mut(0)? };
    learn_tags(stats, &mut filter, seen);
    Some(())
}

/// The round-trip work of the packet just walked, in the other direction's flow and its
/// own (neither is made; the own flow starts to wait only if the other was found). The
/// other direction of an arriving packet leaves by TC where this host is an endpoint,
/// and arrives here too where it only forwards: it is looked for in the other program's
/// map first, then in the packet's.
#[inline(always)]
fn settle_round_trip<const ARRIVING: bool>() -> Option<()> {
    let seen = walked::<ARRIVING>()?;
    let (own, other) = if ARRIVING { (&FLOWS, &EGRESS_FLOWS) } else { (&EGRESS_FLOWS, &FLOWS) };
    let peer =
        round_trip::peer_key(seen, &mut Directory).and_then(|k| other.get_ptr_mut(k).or_else(|| own.get_ptr_mut(k)));
    if let Some(p) = peer {
        // SAFETY: as in `ingress_flow`.
        round_trip::settle_peer(seen, unsafe { &mut *p });
    }
    let (key, _) = seen.key_and_time();
    let p = own.get_ptr_mut(key)?;
    // SAFETY: as above.
    round_trip::settle_own(seen, unsafe { &mut *p }, peer.is_some());
    Some(())
}

/// The flow's value in `FLOWS` (`ARRIVING`) or `EGRESS_FLOWS`, made if new (see
/// `new_flow`).
#[inline(always)]
fn flow_in<const ARRIVING: bool>(key: &FlowKey, first: &FirstChunk, now_ns: u64) -> Option<*mut FlowStats> {
    let flows = if ARRIVING { &FLOWS } else { &EGRESS_FLOWS };
    if let Some(p) = flows.get_ptr_mut(key) {
        return Some(p);
    }
    // The first chunk's fields as one word: by reference, the stage that looks flows up
    // would keep it on its stack, which 6.1's rounding of frames leaves no room for.
    let packed = u32::from(first.chunk_type) | u32::from(first.flags) << 8 | u32::from(first.present) << 16;
    new_flow::<ARRIVING>(key, packed, now_ns)
}

/// A new flow, in a frame of its own (see `flow_in`): made at once for an association
/// whose handshake the directory saw complete, else when the CPU's `NEW_FLOW_BUCKET` has
/// a token. A flood of made-up tags then makes new flows at a bounded rate, and the LRU
/// keeps every association that sent a packet in the time the flood needs to fill the
/// map. A packet refused a flow of its own is counted (`flow_unavailable`) and walked on
/// the sink flow (`FlowKey::SINK`, which user space never shows): its summary, its DATA
/// and the tags it names still reach user space and the directory.
#[inline(never)]
fn new_flow<const ARRIVING: bool>(key: &FlowKey, first: u32, now_ns: u64) -> Option<*mut FlowStats> {
    let (flows, stats) = if ARRIVING { (&FLOWS, &GLOBAL) } else { (&EGRESS_FLOWS, &EGRESS_GLOBAL) };
    #[expect(clippy::cast_possible_truncation, reason = "unpacking the bytes `flow_in` packed")]
    let first =
        FirstChunk { chunk_type: first as u8, flags: (first >> 8) as u8, len: 0, word: 0, present: first >> 16 != 0 };
    let mut key = key;
    if !handshake_completed(&mut Directory, key, &first) {
        // SAFETY: reads of our own globals.
        let (rate, burst) = unsafe {
            (
                core::ptr::read_volatile(&raw const PROVISIONAL_FLOW_RATE),
                core::ptr::read_volatile(&raw const PROVISIONAL_FLOW_BURST),
            )
        };
        // SAFETY: a per-CPU map value, valid for this run and unshared.
        if rate != 0 && !unsafe { &mut *NEW_FLOW_BUCKET.get_ptr_mut(0)? }.take(rate, burst, now_ns) {
            // SAFETY: as above.
            unsafe { &mut *stats.get_ptr_mut(0)? }.bump(Counter::FlowUnavailable, 1);
            key = &FlowKey::SINK;
            if let Some(p) = flows.get_ptr_mut(key) {
                return Some(p);
            }
        }
    }
    let zero = ZERO_FLOW.get_ptr(0)?;
    // SAFETY: `zero` points at a live map value. A reference, not a copy: a FlowStats
    // does not fit on the 512-byte BPF stack.
    let zero: &FlowStats = unsafe { &*zero };
    // Another CPU may have made it meanwhile (NOEXIST then fails): take that one.
    let _ = flows.insert(key, zero, u64::from(BPF_NOEXIST));
    flows.get_ptr_mut(key)
}

/// Egress companion of the XDP program: XDP sees only arriving packets, but a server's
/// INIT-ACK (the tag its peer will use), its SACKs, heartbeats and DATA leave by this way.
/// It counts them with the same parser into counters of their own, sends their
/// summaries for the association table, and learns and forgets tags when `validate-vtag`
/// is on. Judges nothing, drops nothing.
#[classifier]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn sctp_tc_egress(ctx: TcContext) -> i32 {
    egress::<true>(&ctx)
}

/// The same for kernels without `bpf_loop` (before 5.17).
#[classifier]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn sctp_tc_egress_bounded(ctx: TcContext) -> i32 {
    egress::<false>(&ctx)
}

#[inline(always)]
fn egress<const KERNEL_LOOP: bool>(ctx: &TcContext) -> i32 {
    let pkt = SkbPacket::<KERNEL_LOOP> { skb: ctx.skb.skb, len: ctx.len() as usize };
    let _ = account_egress(&pkt);
    if walked::<false>().is_some_and(WalkFindings::tally_wanted) {
        // SAFETY: as in `try_sctp_xdp`: a TC program of the same kind, or nothing.
        unsafe { TC_TALLY.tail_call(ctx, tally_slot::<KERNEL_LOOP>()) };
    }
    TC_ACT_OK
}

#[inline(always)]
fn account_egress<const KERNEL_LOOP: bool>(pkt: &SkbPacket<KERNEL_LOOP>) -> Option<()> {
    // SAFETY: map value pointers stay valid for the program's run; per-CPU, so unshared.
    let stats = unsafe { &mut *EGRESS_GLOBAL.get_ptr_mut(0)? };
    // SAFETY: as above.
    let seen = unsafe { &mut *EGRESS_SEEN.get_ptr_mut(0)? };
    // SAFETY: a field of the socket buffer the kernel passed.
    let mut sink = RingSink::<EGRESS>::load(unsafe { (*pkt.skb).ifindex });
    let clock = coarse_now;
    // The egress program judges nothing: every packet passes.
    let _ = process(pkt, stats, clock, egress_flow, &mut sink, &mut NoRules::<false>, seen);
    // The egress program holds no rules: `learn` asks them whether an INIT's tag is
    // learned (INITs leaving are the host's own, not a flood's).
    if seen.names_tags(true) {
        outlined(learn::<false>);
    }
    if seen.peer_work() != 0 {
        outlined(settle_round_trip::<false>);
    }
    Some(())
}

/// The slot of `XDP_TALLY` and `TC_TALLY` a program of this loop tail-calls (user space
/// fills the slot of the variant it loaded: `abi::maps::TALLY_LINEAR`, `TALLY_BOUNDED`).
#[inline(always)]
const fn tally_slot<const KERNEL_LOOP: bool>() -> u32 {
    if KERNEL_LOOP {
        sctp_common::abi::maps::TALLY_LINEAR
    } else {
        sctp_common::abi::maps::TALLY_BOUNDED
    }
}

/// Counts the messages of the packet the XDP program just walked and judges them by the
/// message rules (see `sctp_common::parse::tally`): reached by its tail call, only for a
/// packet that passed with DATA of a protocol read there (of any, where message rules
/// exist). Its verdict is the packet's.
#[xdp]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn sctp_xdp_tally(ctx: XdpContext) -> u32 {
    xdp_tally::<false, true>(&ctx)
}

/// The same for kernels without `bpf_loop`.
#[xdp]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn sctp_xdp_tally_bounded(ctx: XdpContext) -> u32 {
    xdp_tally::<false, false>(&ctx)
}

/// The same for the multi-buffer program.
#[xdp(frags)]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn sctp_xdp_tally_frags(ctx: XdpContext) -> u32 {
    xdp_tally::<true, true>(&ctx)
}

#[inline(always)]
fn xdp_tally<const FRAGS: bool, const KERNEL_LOOP: bool>(ctx: &XdpContext) -> u32 {
    match judge_messages::<FRAGS, KERNEL_LOOP>(ctx) {
        Some(true) => xdp_action::XDP_DROP,
        _ => xdp_action::XDP_PASS,
    }
}

/// Whether a message rule dropped the packet.
#[inline(always)]
fn judge_messages<const FRAGS: bool, const KERNEL_LOOP: bool>(ctx: &XdpContext) -> Option<bool> {
    let (start, end) = if FRAGS {
        // SAFETY: a helper on our own context.
        (0, usize::try_from(unsafe { bpf_xdp_get_buff_len(ctx.ctx) }).unwrap_or(0))
    } else {
        (ctx.data(), ctx.data_end())
    };
    let pkt = XdpPacket::<FRAGS, KERNEL_LOOP> { ctx: ctx.ctx, start, end, cursor: CURSOR.get_ptr_mut(0)? };
    // The messages are judged by the rules the walk judged the packet by.
    let mut filter = KernelFilter::of_generation(walked::<true>()?.tally_gen())?;
    // SAFETY: a field of the context the kernel passed.
    let mut sink = RingSink::<INGRESS>::load(unsafe { (*ctx.ctx).ingress_ifindex });
    count_messages::<true, _, _, _, _>(&pkt, KERNEL_LOOP, &mut filter, &mut sink, || {
        // Only the bounded variant has rounds; the multi-buffer one may not call a
        // program that reads linear data only.
        if !KERNEL_LOOP && !FRAGS {
            // SAFETY: this program's own slot (see `try_sctp_xdp`).
            unsafe { XDP_TALLY.tail_call(ctx, tally_slot::<KERNEL_LOOP>()) };
        }
    })
}

/// The same for the packets leaving, reached from the TC egress program.
#[classifier]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn sctp_tc_tally(ctx: TcContext) -> i32 {
    let pkt = SkbPacket::<true> { skb: ctx.skb.skb, len: ctx.len() as usize };
    let _ = count_messages::<false, _, _, _, _>(&pkt, true, &mut NoRules::<true>, &mut NoEvents, || {});
    TC_ACT_OK
}

#[classifier]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn sctp_tc_tally_bounded(ctx: TcContext) -> i32 {
    let pkt = SkbPacket::<false> { skb: ctx.skb.skb, len: ctx.len() as usize };
    // SAFETY: this program's own slot (see `egress`).
    let _ = count_messages::<false, _, _, _, _>(&pkt, false, &mut NoRules::<true>, &mut NoEvents, || unsafe {
        TC_TALLY.tail_call(&ctx, sctp_common::abi::maps::TALLY_BOUNDED);
    });
    TC_ACT_OK
}

/// Counts the messages of the packet just walked, arriving or leaving, in its flow (found
/// again: a pointer does not cross a tail call), and judges them by `filter`'s message
/// rules; whether one dropped the packet (then its DATA events are withdrawn from `sink`).
/// Without `bpf_loop` the count runs in rounds of `BOUNDED_TALLY_STEPS`, each program run
/// one round, tail-calling itself for the next (`next`) until done or the kernel's
/// tail-call limit.
#[inline(always)]
fn count_messages<const ARRIVING: bool, P: Packet, R: Filter<'static>, S: DataSink, N: FnOnce()>(
    pkt: &P,
    kernel_loop: bool,
    filter: &mut R,
    sink: &mut S,
    next: N,
) -> Option<bool> {
    let seen = walked_mut::<ARRIVING>()?;
    let (key, _) = seen.key_and_time();
    let (flows, global, scratch) =
        if ARRIVING { (&FLOWS, &GLOBAL, &TALLY) } else { (&EGRESS_FLOWS, &EGRESS_GLOBAL, &EGRESS_TALLY) };
    // SAFETY: map values, valid for the run (the flow as in `ingress_flow`; the others
    // per CPU, so unshared).
    let (flow, stats, position) =
        unsafe { (&mut *flows.get_ptr_mut(key)?, &mut *global.get_ptr_mut(0)?, &mut *scratch.get_ptr_mut(0)?) };
    // The first round starts the count; the others go on with it.
    if seen.tally_wanted() {
        *position = seen.tally_start(pkt.frame_len());
        position.precise_ns = precise_now();
        seen.set_tally_wanted(false);
    }
    let steps = if kernel_loop { TALLY_STEPS } else { BOUNDED_TALLY_STEPS };
    if !tally(pkt, flow, stats, filter, position, steps) {
        next();
        // Still here: no round left.
        stats.bump(Counter::MessageCountsUnfinished, 1);
    }
    if position.dropped {
        withdraw_data(sink, seen);
    }
    Some(position.dropped)
}

sctp_ebpf::program_boilerplate!();
