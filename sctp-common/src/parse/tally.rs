//! The application messages of a packet the walk accounted, counted in its flow (see
//! `abi::messages`) and in the global counters: after the walk, and in the kernel in a
//! program of its own that the XDP and TC programs reach by a tail call, verified apart
//! (counting inside the walk cost its verifier more than the budget, measured).
//!
//! One bounded loop whose step is a chunk, the read of the message it begins, or one AVP
//! of a Diameter answer's walk to its Result-Code (a loop inside the step costs the
//! verifier more than its limit; see [`Next`]). A
//! chunk counts as the frame watch in user space takes it: a DATA or I-DATA chunk with
//! its B bit, of a protocol `message` reads, whose TSN the direction had not sent (see
//! `abi::TsnWindow`).

use super::{
    message::{self, Kind, Malformed, Protocol, ResultWalk},
    Packet, MAX_CHUNKS,
};
use crate::{
    abi::{Counter, FlowKey, FlowStats, GlobalStats, MessageSlot, MESSAGE_SLOTS},
    atomic::add,
    proto::chunk::{flag, ty},
};

/// Steps of one packet's tally at most: each chunk, the read of the message it begins,
/// and the walk of an answer.
#[expect(clippy::cast_possible_truncation, reason = "9,280")]
pub const TALLY_STEPS: u32 = (MAX_CHUNKS * (2 + ResultWalk::MAX_STEPS)) as u32;

/// What the tally's next step does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Next {
    /// Walk the next chunk.
    #[default]
    Chunk,
    /// Read the message the last chunk begins (`protocol`, `at`, `len`).
    Message,
    /// Walk a Diameter answer's AVPs to its Result-Code (`walk`).
    Result,
}

/// The tally's position, kept in memory between its steps (in the kernel a map value, as
/// the walk's scratch: the verifier, which does not track map memory, then meets every
/// step in one state, whatever protocol or kind the step before saw).
#[derive(Clone, Copy, Debug, Default)]
pub struct TallyState {
    /// The packet's ports, for protocols known by their port.
    pub src_port: u16,
    pub dst_port: u16,
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
    /// The answer whose Result-Code is walked: its key's first word, its application id.
    pub head: u64,
    pub application: u32,
    pub walk: ResultWalk,
    /// The chunks are done.
    pub done: bool,
}

impl TallyState {
    /// A tally of the chunks from `off` to `end` of a packet of flow `key`.
    #[must_use]
    pub fn new(key: &FlowKey, off: usize, end: usize) -> Self {
        Self { src_port: key.src_port, dst_port: key.dst_port, off, end, chunks_left: MAX_CHUNKS, ..Self::default() }
    }
}

/// Counts the messages of the chunks `state` starts at (see [`TallyState::new`]), in at
/// most `steps` steps ([`TALLY_STEPS`] finish any packet); whether it finished (else
/// `state` is where to go on).
#[inline(always)]
pub fn tally<P: Packet + ?Sized>(
    pkt: &P,
    flow: &mut FlowStats,
    stats: &mut GlobalStats,
    at: &mut TallyState,
    steps: u32,
) -> bool {
    pkt.repeat(steps, || tally_step(pkt, flow, stats, at));
    at.done
}

/// One step (see [`Next`]); `false` once the chunks are done.
#[inline(always)]
pub fn tally_step<P: Packet + ?Sized>(
    pkt: &P,
    flow: &mut FlowStats,
    stats: &mut GlobalStats,
    at: &mut TallyState,
) -> bool {
    match at.next {
        Next::Chunk => chunk_step(pkt, flow, stats, at),
        Next::Message => {
            at.next = Next::Chunk;
            read_step(pkt, flow, stats, at);
            true
        }
        Next::Result => {
            if let Some(result) = at.walk.step(pkt) {
                at.next = Next::Chunk;
                count(flow, stats, at.head, u64::from(at.application) | u64::from(result) << 32);
            }
            true
        }
    }
}

/// The next chunk: a DATA or I-DATA chunk's TSN is noted, and a message it begins (with a
/// new TSN) is read at the next step.
#[inline(always)]
fn chunk_step<P: Packet + ?Sized>(pkt: &P, flow: &mut FlowStats, stats: &mut GlobalStats, at: &mut TallyState) -> bool {
    let (off, end) = (pkt.launder(at.off), at.end);
    let header = pkt.read::<4>(off).filter(|_| at.chunks_left > 0 && off + 4 <= end);
    let Some(h) = header else {
        at.done = true;
        return false;
    };
    at.chunks_left -= 1;
    let (kind, flags, len) = (h[0], h[1], usize::from(u16::from_be_bytes([h[2], h[3]])));
    if len < 4 || !fields_fit(pkt, off, kind, len, end) {
        at.done = true;
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
    let Some(protocol) = Protocol::of(ppid, at.src_port, at.dst_port) else {
        return true;
    };
    if flags & flag::BEGIN == 0 {
        return true;
    }
    if !new {
        stats.bump(Counter::MessagesResent, 1);
        add(&mut flow.messages_resent, 1);
        return true;
    }
    let carried = (off + len).min(end).min(pkt.frame_len());
    at.protocol = protocol as u8;
    at.at = off + header;
    at.len = carried.saturating_sub(off + header);
    at.next = Next::Message;
    true
}

/// Reads the message noted by the chunk step: counts it, or starts its answer's walk.
#[inline(always)]
fn read_step<P: Packet + ?Sized>(pkt: &P, flow: &mut FlowStats, stats: &mut GlobalStats, at: &mut TallyState) {
    let Some(protocol) = Protocol::from_number(at.protocol) else {
        return;
    };
    match message::head(pkt, at.at, at.len, protocol) {
        Err(why) => {
            stats.bump(malformed(why), 1);
            add(&mut flow.messages_malformed, 1);
        }
        Ok((kind, m, walk)) => {
            let (head, tail) = MessageSlot::key(protocol as u8, kind as u8, m.code, m.application, 0);
            match walk {
                Some(w) if kind == Kind::Answer => {
                    (at.next, at.head, at.application, at.walk) = (Next::Result, head, m.application, w);
                }
                _ => count(flow, stats, head, tail),
            }
        }
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
        builder::{
            app::{self, avp_u32},
            Chunk, SctpPacket, V4,
        },
        host::MemFilter,
        parse::{after_process, message::ppid, process, NoEvents, WalkFindings},
    };

    /// Runs the frames as the host engine does (the walk, then the count) and returns the
    /// global counters and the one flow's.
    fn run(packets: &[Vec<Chunk>]) -> (GlobalStats, FlowStats) {
        let mut stats = GlobalStats::zeroed();
        let mut flows = BTreeMap::<FlowKey, FlowStats>::new();
        let mut filter = MemFilter::default();
        let mut seen = WalkFindings::new();
        for chunks in packets {
            let frame = SctpPacket::new(V4, 0xabcd, chunks.clone()).frame();
            let verdict = process(
                frame.as_slice(),
                &mut stats,
                || 1,
                |k, _, _| Some(flows.entry(*k).or_insert_with(FlowStats::zeroed)),
                &mut NoEvents,
                &mut filter,
                &mut seen,
            );
            after_process(frame.as_slice(), verdict, &mut stats, &mut filter, &seen, |k, f| {
                if let Some(flow) = flows.get_mut(k) {
                    f(flow);
                }
            });
        }
        let flow = flows.into_values().next().unwrap();
        (stats, flow)
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
}
