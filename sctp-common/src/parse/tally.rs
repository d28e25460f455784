//! The application messages of a packet the walk accounted, counted in its flow (see
//! `abi::messages`) and in the global counters: after the walk, and in the kernel in a
//! program of its own that the XDP and TC programs reach by a tail call, verified apart
//! (counting inside the walk cost its verifier more than the budget, measured).
//!
//! One bounded loop whose step is a chunk, the read of the message it begins, its
//! judgement and count, or a few AVPs of a Diameter answer's walk to its Result-Code (a
//! loop inside the step costs the verifier more than its limit; see [`Next`]). A
//! chunk counts as the frame watch in user space takes it: a DATA or I-DATA chunk with
//! its B bit, of a protocol `message` reads, whose TSN the direction had not sent (see
//! `abi::TsnWindow`).
//!
//! A Diameter request waits for its answer (`abi::PendingKey`) where the directory of
//! associations knows both its association's tags (nobody who does not know them makes an
//! entry); an answer takes its request out and its response time is added to its
//! direction's and command's (`abi::ResponseKey`). Timed on the precise clock
//! ([`TallyState::precise_ns`]): the coarse one ticks every few milliseconds.
//!
//! Where `deny-message` or `message-rate` rules exist, every message read is judged by
//! them (see `filter::judge_message`), a retransmitted one too (the kernel's SCTP stack
//! would take it as the first): a packet that passed the rules judged before is dropped
//! after all, charged to the first message rule that drops one of its messages. Its
//! messages are counted still: they crossed the wire.

use super::{
    message::{self, Kind, Malformed, Protocol, ResultWalk},
    round_trip, Packet, MAX_CHUNKS,
};
use crate::{
    abi::{
        enable, AddrKey, Counter, FlowKey, FlowStats, GlobalStats, MessageSlot, PendingKey, PendingRequest,
        ResponseKey, MESSAGE_SLOTS,
    },
    atomic::add,
    filter::{self, Filter},
    proto::chunk::{flag, ty},
};

/// Steps of one packet's tally at most: each chunk, the read of the message it begins,
/// its judgement, its count, the walk of an answer, and the match of a Diameter one.
#[expect(clippy::cast_possible_truncation, reason = "9,376")]
pub const TALLY_STEPS: u32 = (MAX_CHUNKS * (5 + ResultWalk::MAX_STEPS)) as u32;

/// What the tally's next step does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Next {
    /// Walk the next chunk.
    #[default]
    Chunk,
    /// Read the message the last chunk begins (`protocol`, `at`, `len`).
    Message,
    /// Judge the message read (`head`) by the message rules, where there are any. A step
    /// of its own, as the next: the verifier then meets the rules in one state, not one
    /// per way the read went, and the count in one, not one per way the rules went.
    Judge,
    /// Count the message read (not an answer that has a walk: its walk counts it).
    Settle,
    /// Walk a Diameter answer's AVPs to its Result-Code (`walk`), three a step (a step
    /// costs more than an AVP: at one a step, the bench's answer, whose Result-Code follows
    /// four AVPs, cost 1.26 times a DATA chunk not read, at three 1.19; the verifier budget
    /// test holds the price); then count the answer and close its request.
    Result,
    /// A Diameter request waits for its answer.
    Match,
    /// The chunks are done.
    Done,
}

/// The tally's position, kept in memory between its steps (in the kernel a map value, as
/// the walk's scratch: the verifier, which does not track map memory, then meets every
/// step in one state, whatever protocol or kind the step before saw).
#[derive(Clone, Copy, Debug, Default)]
pub struct TallyState {
    /// The packet's flow (its ports tell protocols known by their port).
    pub key: FlowKey,
    pub next: Next,
    /// The next chunk, the end of the chunks (the IP packet's, or the frame's where
    /// sooner), and chunks left to walk.
    pub off: usize,
    pub end: usize,
    pub chunks_left: usize,
    /// The message to read: its protocol (`message::Protocol` as a number), where its
    /// bytes begin and how many the chunk carries of them.
    pub protocol: u8,
    pub at: usize,
    pub len: usize,
    /// The message read: its key's first word, its application id; whether it is an
    /// answer whose Result-Code is walked (`walk`).
    pub head: u64,
    pub application: u32,
    pub answer: bool,
    pub walk: ResultWalk,
    /// A Diameter message's hop-by-hop and end-to-end identifiers.
    pub ids: [u32; 2],
    /// The message to read was sent before: judged, not counted.
    pub resent: bool,
    /// The packet's time, for the rate rules, and on the precise clock, for response
    /// times (the kernel's caller sets it; the same on the host, whose clock is the
    /// capture's).
    pub now_ns: u64,
    pub precise_ns: u64,
    /// A message rule dropped the packet.
    pub dropped: bool,
}

impl TallyState {
    /// A tally of the chunks from `off` to `end` of a packet of flow `key` at `now_ns`.
    #[must_use]
    pub fn new(key: &FlowKey, off: usize, end: usize, now_ns: u64) -> Self {
        Self { key: *key, off, end, chunks_left: MAX_CHUNKS, now_ns, precise_ns: now_ns, ..Self::default() }
    }
}

/// Counts the messages of the chunks `state` starts at (see [`TallyState::new`]), and
/// judges them by `filter`'s message rules, in at most `steps` steps ([`TALLY_STEPS`]
/// finish any packet); whether it finished (else `state` is where to go on). Whether a
/// rule dropped the packet is `state.dropped`.
#[inline(always)]
pub fn tally<'r, P: Packet + ?Sized, R: Filter<'r>>(
    pkt: &P,
    flow: &mut FlowStats,
    stats: &mut GlobalStats,
    filter: &mut R,
    at: &mut TallyState,
    steps: u32,
) -> bool {
    pkt.repeat(steps, || tally_step(pkt, flow, stats, filter, at));
    at.next == Next::Done
}

/// One step (see [`Next`]); `false` once the chunks are done.
#[inline(always)]
pub fn tally_step<'r, P: Packet + ?Sized, R: Filter<'r>>(
    pkt: &P,
    flow: &mut FlowStats,
    stats: &mut GlobalStats,
    filter: &mut R,
    at: &mut TallyState,
) -> bool {
    match at.next {
        Next::Chunk => chunk_step(pkt, flow, at),
        Next::Message => {
            at.next = Next::Chunk;
            read_step(pkt, flow, stats, judging(filter, at), at);
            true
        }
        Next::Judge => {
            at.next = after_read(at);
            judge(flow, stats, filter, at);
            true
        }
        Next::Settle => {
            at.next = Next::Chunk;
            if !at.resent {
                count(flow, stats, at.head, u64::from(at.application));
                at.next = after_count(at);
            }
            true
        }
        Next::Result => {
            if let Some(result) = at.walk.three_steps(pkt) {
                at.next = Next::Chunk;
                count(flow, stats, at.head, u64::from(at.application) | u64::from(result) << 32);
                close_request(stats, filter, at);
            }
            true
        }
        Next::Match => {
            at.next = Next::Chunk;
            await_answer(stats, filter, at);
            true
        }
        Next::Done => false,
    }
}

/// The next chunk: a DATA or I-DATA chunk's TSN is noted, and a message it begins is read
/// at the next step (one sent before is counted as resent there, and read only to be
/// judged).
#[inline(always)]
fn chunk_step<P: Packet + ?Sized>(pkt: &P, flow: &mut FlowStats, at: &mut TallyState) -> bool {
    let (off, end) = (pkt.launder(at.off), at.end);
    let header = pkt.read::<4>(off).filter(|_| at.chunks_left > 0 && off + 4 <= end);
    let Some(h) = header else {
        at.next = Next::Done;
        return false;
    };
    at.chunks_left -= 1;
    let (kind, flags, len) = (h[0], h[1], usize::from(u16::from_be_bytes([h[2], h[3]])));
    if len < 4 || !fields_fit(pkt, off, kind, len, end) {
        at.next = Next::Done;
        return false;
    }
    at.off = off + len.next_multiple_of(4);
    let header = match kind {
        ty::DATA => 16,
        ty::I_DATA => 20,
        _ => return true,
    };
    // Each offset laundered (see `message`'s reads).
    let (Some(tsn), Some(ppid)) = (pkt.be32_at(pkt.launder(off + 4)), pkt.be32_at(pkt.launder(off + header - 4)))
    else {
        return true;
    };
    let new = flow.message_tsns.note(tsn);
    // I-DATA carries the PPID in its first fragment only, where the B bit is.
    let Some(protocol) = Protocol::of(ppid, at.key.src_port, at.key.dst_port) else {
        return true;
    };
    if flags & flag::BEGIN == 0 {
        return true;
    }
    // Counted as resent at the next step: a branch on it here costs the verifier the
    // rest of the step twice.
    at.resent = !new;
    let carried = (off + len).min(end).min(pkt.frame_len());
    at.protocol = protocol as u8;
    at.at = off + header;
    at.len = carried.saturating_sub(off + header);
    at.next = Next::Message;
    true
}

/// Whether the packet's messages are still judged: message rules exist and none dropped
/// it yet.
#[inline(always)]
fn judging<'r, R: Filter<'r>>(filter: &mut R, at: &TallyState) -> bool {
    filter.rules().0.flags & enable::MESSAGES != 0 && !at.dropped
}

/// Reads the message noted by the chunk step, for the next steps to judge (`judging`) and
/// settle (a malformed one is counted here, unless it was sent before).
#[inline(always)]
fn read_step<P: Packet + ?Sized>(
    pkt: &P,
    flow: &mut FlowStats,
    stats: &mut GlobalStats,
    judging: bool,
    at: &mut TallyState,
) {
    if at.resent {
        stats.bump(Counter::MessagesResent, 1);
        add(&mut flow.messages_resent, 1);
        if !judging {
            return;
        }
    }
    let Some(protocol) = Protocol::from_number(at.protocol) else {
        return;
    };
    match message::head(pkt, at.at, at.len, protocol) {
        Err(_) if at.resent => {}
        Err(why) => {
            stats.bump(malformed(why), 1);
            add(&mut flow.messages_malformed, 1);
        }
        Ok((kind, m, walk)) => {
            let (head, _) = MessageSlot::key(protocol as u8, kind as u8, m.code, m.application, 0);
            let next = if judging { Next::Judge } else { Next::Settle };
            (at.next, at.head, at.application, at.answer) = (next, head, m.application, false);
            at.ids = [m.hop_by_hop, m.end_to_end];
            if let Some(w) = walk.filter(|_| kind == Kind::Answer) {
                (at.answer, at.walk) = (true, w);
                // Not sent before (else this read was for the rules only): see `after_read`.
                if !judging {
                    at.next = Next::Result;
                }
            }
        }
    }
}

/// Judges the message read by the message rules; a drop turns the packet's pass into a
/// drop, counted as the rules judged before count theirs.
#[inline(always)]
fn judge<'r, R: Filter<'r>>(flow: &mut FlowStats, stats: &mut GlobalStats, filter: &mut R, at: &mut TallyState) {
    let (rs, gen) = filter.rules();
    let source = AddrKey { family: flow.family, addr: flow.src_addr };
    if let Some(charge) = filter::judge_message(rs, gen, filter, at.head, &source, at.now_ns) {
        at.dropped = true;
        filter::count_drop(stats, gen, charge);
        stats.pass_to_drop();
        add(&mut flow.dropped, 1);
    }
}

/// After a message is read (and judged): an answer's walk to its Result-Code, which counts
/// it; else its count, where it was not sent before (the count step skips it then).
#[inline(always)]
fn after_read(at: &TallyState) -> Next {
    if at.answer && !at.resent {
        Next::Result
    } else {
        Next::Settle
    }
}

/// After a message is counted (not an answer with a walk): a Diameter request waits for
/// its answer, the others are done.
#[inline(always)]
fn after_count(at: &TallyState) -> Next {
    if at.protocol == Protocol::Diameter as u8 {
        Next::Match
    } else {
        Next::Chunk
    }
}

/// A Diameter request waits for its answer on the direction the directory pairs with its
/// own (not timed where the directory does not know it).
#[inline(always)]
fn await_answer<'r, R: Filter<'r>>(stats: &mut GlobalStats, filter: &mut R, at: &TallyState) {
    let Some(partner) = round_trip::directory_partner(&at.key, filter) else {
        stats.bump(Counter::DiameterRequestsUntimed, 1);
        return;
    };
    let [hop_by_hop, end_to_end] = at.ids;
    let answer_flow = filter::reversed(&at.key, partner);
    let request = PendingRequest { sent_ns: at.precise_ns, application: at.application, command: command(at) };
    filter.await_answer(&PendingKey { answer_flow, hop_by_hop, end_to_end }, &request);
    stats.bump(Counter::DiameterRequestsWaiting, 1);
}

/// A Diameter message's command code (the high half of its key's first word).
#[inline(always)]
fn command(at: &TallyState) -> u32 {
    (at.head >> 32) as u32
}

/// A Diameter answer takes out the request it answers (same identifiers, application and
/// command) and is timed from it.
#[inline(always)]
fn close_request<'r, R: Filter<'r>>(stats: &mut GlobalStats, filter: &mut R, at: &TallyState) {
    let (application, command) = (at.application, command(at));
    let [hop_by_hop, end_to_end] = at.ids;
    let waiting = filter.take_request(&PendingKey { answer_flow: at.key, hop_by_hop, end_to_end });
    let Some(request) = waiting.filter(|r| r.application == application && r.command == command) else {
        stats.bump(Counter::DiameterAnswersUnmatched, 1);
        return;
    };
    stats.bump(Counter::DiameterAnswersTimed, 1);
    if let Some(times) = filter.responses(&ResponseKey { flow: at.key, application, command }) {
        times.add(at.precise_ns.saturating_sub(request.sent_ns));
    }
}

/// Whether a chunk of type `kind` and length `len` at `off` has its fixed fields, and a
/// SACK room for the gap blocks and duplicate TSNs it counts: the walk accounts nothing
/// from a chunk that has not, nor from what follows it (`end`: the end of the chunks).
#[inline(always)]
pub fn fields_fit<P: Packet + ?Sized>(pkt: &P, off: usize, kind: u8, len: usize, end: usize) -> bool {
    let need = match kind {
        ty::DATA | ty::SACK => 16,
        ty::I_DATA | ty::INIT | ty::INIT_ACK => 20,
        _ => 4,
    };
    if len < need {
        return false;
    }
    if kind != ty::SACK || off + 16 > end {
        return true;
    }
    match pkt.read::<4>(pkt.launder(off + 12)) {
        Some(c) => {
            (usize::from(u16::from_be_bytes([c[0], c[1]])) + usize::from(u16::from_be_bytes([c[2], c[3]]))) * 4
                <= len - 16
        }
        None => true,
    }
}

/// Counts one message of key (`head`, `tail`) in its flow's slot, made if new and there
/// is room (else `messages_untabled`).
#[inline(always)]
fn count(flow: &mut FlowStats, stats: &mut GlobalStats, head: u64, tail: u64) {
    stats.bump(Counter::Messages, 1);
    // Slots fill in order and are never emptied: the key's, or the first free one.
    let mut slot = MESSAGE_SLOTS;
    for (i, s) in flow.messages.iter().enumerate() {
        if s.head == 0 || s.head == head && s.tail == tail {
            slot = i;
            break;
        }
    }
    let Some(s) = flow.messages.get_mut(slot) else {
        stats.bump(Counter::MessagesUntabled, 1);
        add(&mut flow.messages_untabled, 1);
        return;
    };
    if s.head == 0 {
        (s.head, s.tail) = (head, tail);
    }
    add(&mut s.count, 1);
}

fn malformed(why: Malformed) -> Counter {
    match why {
        Malformed::TooShort => Counter::MessageTooShort,
        Malformed::UnknownVersion => Counter::MessageUnknownVersion,
        Malformed::UnknownChoice => Counter::MessageUnknownChoice,
        Malformed::BadLength => Counter::MessageBadLength,
    }
}

#[cfg(test)]
mod tests {
    use alloc::{collections::BTreeMap, vec, vec::Vec};

    use bytemuck::Zeroable as _;

    use super::*;
    use crate::{
        abi::{MessageRule, RuleSet},
        builder::{
            app::{self, avp_u32},
            Chunk, SctpPacket, V4,
        },
        host::MemFilter,
        parse::{
            after_process,
            message::ppid,
            process, NoEvents,
            Verdict::{self, Drop, Pass},
            WalkFindings,
        },
    };

    /// Runs the frames as the host engine does (the walk, then the count) and returns the
    /// global counters and the one flow's.
    fn run(packets: &[Vec<Chunk>]) -> (GlobalStats, FlowStats) {
        let (stats, flow, _) = run_under(&RuleSet::empty(), packets.iter().map(|c| (0, c.clone())));
        (stats, flow)
    }

    /// The same under rules, each packet at its time (ms); and the verdicts.
    fn run_under(
        rules: &RuleSet,
        packets: impl IntoIterator<Item = (u64, Vec<Chunk>)>,
    ) -> (GlobalStats, FlowStats, Vec<Verdict>) {
        let mut stats = GlobalStats::zeroed();
        let mut flows = BTreeMap::<FlowKey, FlowStats>::new();
        let mut filter = MemFilter::new(rules, 0);
        let mut seen = WalkFindings::new();
        let mut verdicts = Vec::new();
        for (ms, chunks) in packets {
            let frame = SctpPacket::new(V4, 0xabcd, chunks).frame();
            let verdict = process(
                frame.as_slice(),
                &mut stats,
                || 1 + ms * 1_000_000,
                |k, _, _| Some(flows.entry(*k).or_insert_with(FlowStats::zeroed)),
                &mut NoEvents,
                &mut filter,
                &mut seen,
            );
            verdicts.push(after_process(
                frame.as_slice(),
                verdict,
                &mut stats,
                &mut filter,
                &mut NoEvents,
                &mut seen,
                |k, f| {
                    if let Some(flow) = flows.get_mut(k) {
                        f(flow);
                    }
                },
            ));
        }
        let flow = flows.into_values().next().unwrap();
        (stats, flow, verdicts)
    }

    /// Rules of one message rule each, as user space compiles them.
    fn message_rules(rules: &[MessageRule]) -> RuleSet {
        let mut set = RuleSet::empty();
        for (i, r) in rules.iter().enumerate() {
            set.add_rule("message rule");
            set.message_rules[i] = *r;
        }
        set.flags |= enable::MESSAGES;
        set
    }

    fn rule(kind: Option<Kind>, code: u32, id: u8, rate: u32, burst: u32) -> MessageRule {
        MessageRule::about(Protocol::Ngap as u8, kind.map(|k| k as u8), code, id, rate, burst)
    }

    /// The flow's messages: (protocol, kind, code, application, result) -> count.
    fn table(flow: &FlowStats) -> BTreeMap<(u8, u8, u32, u32, u32), u64> {
        flow.messages.iter().filter(|s| s.head != 0).map(|s| (s.fields(), s.count)).collect()
    }

    fn key(p: Protocol, k: Kind, code: u32, application: u32, result: u32) -> (u8, u8, u32, u32, u32) {
        (p as u8, k as u8, code, application, result)
    }

    #[test]
    fn every_protocol_of_a_bundle_counts_by_its_key() {
        let session = (263, 0x40, b"mme.example;1;2".to_vec());
        let grouped = {
            let mut g = vec![0, 0, 1, 10, 0x40, 0, 0, 12];
            g.extend_from_slice(&10415u32.to_be_bytes());
            g.extend_from_slice(&[0, 0, 1, 42, 0x40, 0, 0, 12]);
            g.extend_from_slice(&5001u32.to_be_bytes());
            g
        };
        let ula = app::diameter(false, 316, 16_777_251, (1, 2), &[session.clone(), avp_u32(268, 2001)]);
        let aia = app::diameter(false, 318, 16_777_251, (3, 4), &[session.clone(), (297, 0x40, grouped)]);
        let ulr = app::diameter(true, 316, 16_777_251, (1, 2), core::slice::from_ref(&session));
        let mut middle = Chunk::message(9, ppid::NGAP, &app::ap(0, 15));
        middle.flags = 0;
        let bundle = vec![
            Chunk::message(1, ppid::NGAP, &app::ap(0, 21)),
            Chunk::message(2, ppid::NGAP, &app::ap(1, 21)),
            Chunk::message(3, ppid::DIAMETER, &ulr),
            Chunk::message(4, ppid::DIAMETER, &ula),
            Chunk::message(5, ppid::DIAMETER, &aia),
            Chunk::message(6, ppid::M3UA, &app::m3ua_data(3)),
            Chunk::message(7, 99, &app::ap(0, 21)),
            Chunk::idata(8, 0, 1, ppid::NGAP, 0),
            middle,
        ];
        let (stats, flow) = run(&[bundle]);
        let want = BTreeMap::from([
            (key(Protocol::Ngap, Kind::Initiating, 21, 0, 0), 1),
            (key(Protocol::Ngap, Kind::Successful, 21, 0, 0), 1),
            (key(Protocol::Diameter, Kind::Request, 316, 16_777_251, 0), 1),
            (key(Protocol::Diameter, Kind::Answer, 316, 16_777_251, 2001), 1),
            (key(Protocol::Diameter, Kind::Answer, 318, 16_777_251, 5001), 1),
            (key(Protocol::M3ua, Kind::Message, 0x0101, 0, 0), 1),
        ]);
        assert_eq!(table(&flow), want);
        // The I-DATA's message is empty (too short to read); PPID 99 and the middle
        // fragment are no messages.
        assert_eq!((stats.get(Counter::Messages), stats.get(Counter::MessageTooShort)), (6, 1));
        assert_eq!(flow.messages_malformed, 1);
    }

    #[test]
    fn a_resent_chunk_is_no_new_message_and_reordering_is_no_resending() {
        let ng = |tsn| vec![Chunk::message(tsn, ppid::NGAP, &app::ap(0, 46))];
        let (stats, flow) = run(&[ng(10), ng(12), ng(11), ng(12), ng(10)]);
        assert_eq!(table(&flow), BTreeMap::from([(key(Protocol::Ngap, Kind::Initiating, 46, 0, 0), 3)]));
        assert_eq!((stats.get(Counter::MessagesResent), flow.messages_resent), (2, 2));
    }

    #[test]
    fn unreadable_messages_count_by_reason_and_made_up_keys_beyond_the_table_untabled() {
        let mut v2 = app::diameter(true, 316, 0, (1, 2), &[]);
        v2[0] = 2;
        let packets: Vec<Vec<Chunk>> = [
            Chunk::message(1, ppid::DIAMETER, &v2),
            Chunk::message(2, ppid::S1AP, &[0x80, 1]),
            Chunk::message(3, ppid::M3UA, &[1, 0, 1, 1, 0, 0, 0, 4]),
        ]
        .into_iter()
        .chain((0..20u8).map(|i| Chunk::message(10 + u32::from(i), ppid::NGAP, &app::ap(0, i))))
        .map(|c| vec![c])
        .collect();
        let (stats, flow) = run(&packets);
        let reasons = [Counter::MessageUnknownVersion, Counter::MessageUnknownChoice, Counter::MessageBadLength];
        assert_eq!(reasons.map(|c| stats.get(c)), [1, 1, 1]);
        assert_eq!(table(&flow).len(), MESSAGE_SLOTS);
        assert_eq!((flow.messages_untabled, stats.get(Counter::MessagesUntabled)), (4, 4));
    }

    #[test]
    fn a_denied_message_drops_its_packet_resent_or_hidden_behind_other_data_and_still_counts() {
        let rules = message_rules(&[rule(Some(Kind::Initiating), 15, 0, 0, 0)]);
        let ue = |tsn| Chunk::message(tsn, ppid::NGAP, &app::ap(0, 15));
        let setup = |tsn| Chunk::message(tsn, ppid::NGAP, &app::ap(0, 21));
        let packets = [
            vec![setup(1)],
            vec![ue(2)],
            // Resent: the kernel would take it as new; a DATA of another PPID after it.
            vec![ue(2)],
            vec![setup(3), ue(4), Chunk::data(5, 0, 0, 99, 8)],
            // The successful outcome of the same procedure is another message.
            vec![Chunk::message(6, ppid::NGAP, &app::ap(1, 15))],
        ];
        let (stats, flow, verdicts) = run_under(&rules, packets.into_iter().map(|p| (0, p)));
        assert_eq!(verdicts, [Pass, Drop, Drop, Drop, Pass]);
        assert_eq!((stats.get(Counter::VerdictPass), stats.get(Counter::VerdictDrop)), (2, 3));
        assert_eq!((stats.get(Counter::DropMessageDenied), stats.rule_hits[0], flow.dropped), (3, 3, 3));
        // What crossed the wire is counted: two NGSetups, two InitialUEMessages (one
        // resent), one outcome.
        let want = BTreeMap::from([
            (key(Protocol::Ngap, Kind::Initiating, 21, 0, 0), 2),
            (key(Protocol::Ngap, Kind::Initiating, 15, 0, 0), 2),
            (key(Protocol::Ngap, Kind::Successful, 15, 0, 0), 1),
        ]);
        assert_eq!(table(&flow), want);
        assert_eq!(flow.messages_resent, 1);
    }

    #[test]
    fn a_message_rate_lets_a_burst_through_then_its_rate_per_source() {
        // 10 a second after a burst of 2; the other procedures are not limited.
        let rules = message_rules(&[rule(None, 15, 0, 10, 2)]);
        let ue = |tsn| vec![Chunk::message(tsn, ppid::NGAP, &app::ap(0, 15))];
        let packets = [(0, ue(1)), (0, ue(2)), (0, ue(3)), (50, ue(4)), (100, ue(5)), (100, ue(6))];
        let mut all: Vec<(u64, Vec<Chunk>)> = packets.to_vec();
        all.push((100, vec![Chunk::message(7, ppid::NGAP, &app::ap(0, 21))]));
        let (stats, _, verdicts) = run_under(&rules, all);
        assert_eq!(verdicts, [Pass, Pass, Drop, Drop, Pass, Drop, Pass]);
        assert_eq!(stats.get(Counter::DropMessageRate), 3);
    }

    /// Packets between the client (198.18.0.1, tag 0xc1) and the server (back: from
    /// 198.18.0.2, tag 0x51), each with its tag and at its time (ms), after a handshake
    /// the directory learns (unless not `shaken`): the global counters and the maps.
    fn converse(shaken: bool, packets: &[(bool, u32, u64, Chunk)]) -> (GlobalStats, MemFilter<'static>) {
        let mut stats = GlobalStats::zeroed();
        let mut flows = BTreeMap::<FlowKey, FlowStats>::new();
        let mut filter = MemFilter::default();
        let mut seen = WalkFindings::new();
        let handshake = [
            (false, 0, 0, Chunk::init(ty::INIT, 0xc1, 65_536, 4, 4, 1)),
            (true, 0xc1, 1, Chunk::init(ty::INIT_ACK, 0x51, 65_536, 4, 4, 100)),
            (false, 0x51, 2, Chunk::new(ty::COOKIE_ECHO, 0, vec![0; 8])),
            (true, 0xc1, 3, Chunk::new(ty::COOKIE_ACK, 0, Vec::new())),
        ];
        let shake = if shaken { &handshake[..] } else { &[] };
        for (back, vtag, ms, chunk) in shake.iter().chain(packets) {
            let mut p = SctpPacket::new(V4, *vtag, vec![chunk.clone()]);
            if *back {
                p.ip = crate::builder::Ip::V4 { src: [198, 18, 0, 2], dst: [198, 18, 0, 1] };
                (p.src_port, p.dst_port) = (p.dst_port, p.src_port);
            }
            let frame = p.frame();
            let at = ms * 1_000_000;
            let verdict = process(
                frame.as_slice(),
                &mut stats,
                || at,
                |k, _, _| Some(flows.entry(*k).or_insert_with(FlowStats::zeroed)),
                &mut NoEvents,
                &mut filter,
                &mut seen,
            );
            after_process(frame.as_slice(), verdict, &mut stats, &mut filter, &mut NoEvents, &mut seen, |k, f| {
                if let Some(flow) = flows.get_mut(k) {
                    f(flow);
                }
            });
        }
        (stats, filter)
    }

    #[test]
    fn diameter_answers_are_timed_from_their_requests_in_associations_the_directory_knows() {
        const CC: u32 = 4;
        let ccr = |tsn, ids| Chunk::message(tsn, ppid::DIAMETER, &app::diameter(true, 272, CC, ids, &[]));
        let cca = |tsn, command, ids| {
            Chunk::message(tsn, ppid::DIAMETER, &app::diameter(false, command, CC, ids, &[avp_u32(268, 2001)]))
        };
        let packets = [
            (false, 0x51, 10, ccr(1, (1, 2))),
            // Resent: no second wait (the first one's stands).
            (false, 0x51, 11, ccr(1, (1, 2))),
            // Someone without the client's tag answers: it finds nothing, closes nothing.
            (true, 0xbad, 12, cca(100, 272, (1, 2))),
            (true, 0xc1, 13, cca(100, 272, (1, 2))),
            (false, 0x51, 20, ccr(2, (3, 4))),
            // Another command's answer with the same identifiers: no match.
            (true, 0xc1, 21, cca(101, 316, (3, 4))),
            (false, 0x51, 30, ccr(3, (5, 6))),
            (true, 0xc1, 31, cca(102, 272, (9, 9))),
        ];
        let (stats, filter) = converse(true, &packets);
        let counts = [
            Counter::DiameterRequestsWaiting,
            Counter::DiameterRequestsUntimed,
            Counter::DiameterAnswersTimed,
            Counter::DiameterAnswersUnmatched,
        ]
        .map(|c| stats.get(c));
        assert_eq!(counts, [3, 0, 1, 3]);
        // The server's answers come on the client's tag, ports reversed.
        let answers = FlowKey { src_port: 38_412, dst_port: 36_412, vtag: 0xc1 };
        let timed = ResponseKey { flow: answers, application: CC, command: 272 };
        assert_eq!(filter.responses.keys().copied().collect::<Vec<_>>(), [timed]);
        let t = filter.responses[&timed];
        assert_eq!((t.count, t.min_ns, t.max_ns), (1, 3_000_000, 3_000_000));
        // The third request still waits: user space takes it out as unanswered.
        let waiting: Vec<_> = filter.pending.iter().map(|(k, r)| (k.answer_flow, k.hop_by_hop, r.sent_ns)).collect();
        assert_eq!(waiting, [(answers, 5, 30_000_000)]);
    }

    #[test]
    fn requests_of_an_association_whose_handshake_was_not_seen_are_not_timed() {
        let ccr = Chunk::message(1, ppid::DIAMETER, &app::diameter(true, 272, 4, (1, 2), &[]));
        let cca = Chunk::message(9, ppid::DIAMETER, &app::diameter(false, 272, 4, (1, 2), &[avp_u32(268, 2001)]));
        let (stats, filter) = converse(false, &[(false, 0x51, 10, ccr), (true, 0xc1, 11, cca)]);
        assert_eq!(stats.get(Counter::DiameterRequestsUntimed), 1);
        assert_eq!(stats.get(Counter::DiameterAnswersUnmatched), 1);
        assert!(filter.pending.is_empty() && filter.responses.is_empty());
    }
}
