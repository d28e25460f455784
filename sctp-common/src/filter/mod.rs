//! Filtering rules: the rule set the XDP program judges packets by, the state it keeps
//! (learned verification tags, INIT token buckets) and the judgement itself. The map
//! lookups sit behind [`Filter`], so the host tests run the same judgement as the kernel.
//!
//! Atomic switch: user space keeps two generations of rules (the `RULES` array has two
//! slots; source prefixes and PPIDs carry the generation in their keys). It fills the
//! inactive generation, then flips one word; a packet reads that word once and judges by
//! one generation only, so it sees the old set or the new one, never a mix.

mod bucket;
mod notes;
mod shared;

pub use notes::Notes;
pub use shared::Shared;

use crate::{
    abi::{
        enable, handshake, rule_id, AddrKey, Bucket, Counter, FlowKey, GlobalStats, MessageBucketKey, PendingKey,
        PendingRequest, ResponseKey, RoundTrips, RuleSet, TagEntry, MAX_RULES, NO_RULE, SRC_ALLOW,
    },
    proto::chunk::{flag, ty},
};

/// One second: tag entries are refreshed at most this often.
const SECOND_NS: u64 = 1_000_000_000;

/// How long the direction opposite an ABORT or SHUTDOWN-COMPLETE stays known: long
/// enough for the other end's own SHUTDOWN-COMPLETE when both close at once (RFC 9260
/// 9.2) and for packets already in flight.
pub const CLOSING_GRACE_NS: u64 = 3_000_000_000;

/// The maps behind the rules: in the kernel BPF maps, on the host plain collections.
/// The directory of associations: tags learned from handshakes, keyed by the flow that
/// carries them.
pub trait Tags {
    fn tag(&mut self, key: &FlowKey) -> Option<Shared<'_, TagEntry>>;

    /// The other direction's tag of an association met mid-way, as user space paired it
    /// (see `abi::maps::MIDWAY`): for round trips only. None where nothing pairs them.
    fn midway_partner(&mut self, _key: &FlowKey) -> Option<u32> {
        None
    }
}

pub trait Filter<'r>: Tags {
    /// The active rule set and its generation (an inactive set when there are no rules).
    fn rules(&mut self) -> (&'r RuleSet, u32);
    /// The longest source prefix's value ([`SRC_ALLOW`] | rule id), if any matches.
    fn src_rule(&mut self, gen: u32, family: u32, addr: &[u8; 16]) -> Option<u32>;
    /// The rule denying this PPID, if any.
    fn ppid_rule(&mut self, gen: u32, ppid: u32) -> Option<u8>;
    fn learn(&mut self, key: &FlowKey, entry: &TagEntry);
    fn forget(&mut self, key: &FlowKey);
    /// The source's INIT bucket, created full when new.
    fn source_bucket(&mut self, src: &AddrKey) -> Option<Shared<'_, Bucket>>;
    fn global_bucket(&mut self) -> Option<Shared<'_, Bucket>>;
    /// A source's bucket of a `message-rate` rule, created full when new.
    fn message_bucket(&mut self, key: &MessageBucketKey) -> Option<Shared<'_, Bucket>>;
    /// A Diameter request waits for its answer (see `abi::PendingKey`).
    fn await_answer(&mut self, key: &PendingKey, request: &PendingRequest);
    /// The request an answer closes, taken out, if one waits.
    fn take_request(&mut self, key: &PendingKey) -> Option<PendingRequest>;
    /// The response times of a direction's answers of one command, made empty when new.
    /// Borrowed in place, as a flow's counters are (a copy does not fit the BPF stack of
    /// the message count on 5.10, measured): a sample added on two CPUs at once may be
    /// lost.
    fn responses(&mut self, key: &ResponseKey) -> Option<&mut RoundTrips>;
}

/// A drop: its reason and the rule charged.
pub type Charge = (Counter, u8);

/// The first chunk's header and the word after it (INIT's Initiate Tag), if the packet
/// has a first chunk (`present`). Not an `Option`: a `None` leaves its payload undefined,
/// and the compiler may then store an unset register, which the verifier refuses.
#[derive(Clone, Copy, Debug)]
pub struct FirstChunk {
    pub chunk_type: u8,
    pub flags: u8,
    pub len: u16,
    pub word: u32,
    pub present: bool,
}

impl FirstChunk {
    /// From the chunk's first 8 bytes, or zeros and not `present`.
    #[inline(always)]
    #[must_use]
    pub fn from_bytes(b: [u8; 8], present: bool) -> Self {
        Self {
            chunk_type: b[0],
            flags: b[1],
            len: u16::from_be_bytes([b[2], b[3]]),
            word: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            present,
        }
    }
}

/// Where a packet comes from, for the source rules.
pub struct Source<'a> {
    pub family: u32,
    pub addr: &'a [u8; 16],
}

/// The rules judged first, on the addresses alone: source prefixes, destination port.
/// No clock needed, so a flood they drop costs the least.
///
/// # Errors
/// The drop's counter and rule when a rule drops the packet.
#[inline(always)]
pub fn screen<'r, F: Filter<'r>>(
    rs: &RuleSet,
    gen: u32,
    filter: &mut F,
    src: &Source,
    key: &FlowKey,
) -> Result<(), Charge> {
    if rs.flags & enable::SRC != 0 {
        match filter.src_rule(gen, src.family, src.addr) {
            Some(v) if v & SRC_ALLOW == 0 => return Err((Counter::DropDenySrc, rule_id(v))),
            None if rs.flags & enable::ALLOW_SRC != 0 => return Err(charge(rs, Counter::DropSrcNotAllowed)),
            _ => {}
        }
    }
    if rs.flags & enable::ALLOW_PORT != 0 && !rs.port_allowed(key.dst_port) {
        return Err(charge(rs, Counter::DropPortNotAllowed));
    }
    Ok(())
}

/// The rest of the rules judged before the chunk walk (they need the headers, the first
/// chunk and the time): verification tag, INIT rate.
///
/// # Errors
/// The drop's counter and rule when a rule drops the packet.
#[inline(always)]
pub fn admit<'r, F: Filter<'r>>(
    rs: &RuleSet,
    filter: &mut F,
    stats: &mut GlobalStats,
    src: &Source,
    key: &FlowKey,
    first: FirstChunk,
    now_ns: u64,
) -> Result<(), Charge> {
    // Without a first chunk the walk reports the packet as malformed.
    if !first.present {
        return Ok(());
    }
    if rs.flags & enable::VALIDATE_VTAG != 0 && !tag_admitted(rs, filter, stats, key, &first, now_ns) {
        return Err(charge(rs, Counter::DropVtagUnknown));
    }
    if first.chunk_type == ty::INIT {
        if rs.init_rate != 0 {
            let addr = AddrKey { family: src.family, addr: *src.addr };
            if let Some(b) = filter.source_bucket(&addr) {
                if !take(&b, rs.init_rate, rs.init_burst, now_ns) {
                    return Err(charge(rs, Counter::DropInitRateSource));
                }
            }
        }
        if rs.global_init_rate != 0 {
            if let Some(b) = filter.global_bucket() {
                if !take(&b, rs.global_init_rate, rs.global_init_burst, now_ns) {
                    return Err(charge(rs, Counter::DropInitRateGlobal));
                }
            }
        }
    }
    Ok(())
}

/// Takes a token from a shared bucket.
#[inline(always)]
fn take(bucket: &Shared<'_, Bucket>, rate: u32, burst: u32, now_ns: u64) -> bool {
    let mut b = bucket.get();
    let ok = b.take(rate, burst, now_ns);
    bucket.set(b);
    ok
}

#[inline(always)]
fn charge(rs: &RuleSet, reason: Counter) -> Charge {
    (reason, rs.rule_for(reason))
}

/// Whether a packet's tag belongs to a known association, or the packet is one RFC 9260
/// lets through without one (8.4, 8.5.1): INIT, COOKIE-ECHO, and ABORT or
/// SHUTDOWN-COMPLETE with the T bit (their tag is the sender's own; the kernel checks it).
#[inline(always)]
fn tag_admitted<'r, F: Filter<'r>>(
    rs: &RuleSet,
    filter: &mut F,
    stats: &mut GlobalStats,
    key: &FlowKey,
    first: &FirstChunk,
    now_ns: u64,
) -> bool {
    match first.chunk_type {
        ty::INIT | ty::COOKIE_ECHO => return true,
        ty::ABORT | ty::SHUTDOWN_COMPLETE if first.flags & flag::T_BIT != 0 => return true,
        _ => {}
    }
    if let Some(shared) = filter.tag(key) {
        let e = shared.get();
        let idle = now_ns.saturating_sub(e.last_seen_ns);
        if idle <= rs.vtag_idle_ns {
            // Written at most once a second: the entry is shared by every CPU.
            if idle > SECOND_NS && e.closing == 0 {
                shared.set_last_seen(now_ns);
            }
            return true;
        }
        filter.forget(key);
        stats.bump(Counter::VtagsExpired, 1);
    }
    if now_ns < rs.vtag_learn_until_ns {
        let entry = TagEntry { last_seen_ns: now_ns, partner: 0, closing: 0, handshake: handshake::OFFERED };
        filter.learn(key, &entry);
        stats.bump(Counter::VtagsLearned, 1);
        return true;
    }
    false
}

/// Whether the directory learns an INIT's tag: only for `validate-vtag`, which admits the
/// INIT-ACK by it (the INIT-ACK names both tags).
#[inline(always)]
#[must_use]
pub fn learns_init_tags(rs: &RuleSet) -> bool {
    rs.flags & enable::VALIDATE_VTAG != 0
}

/// Learns and forgets associations from a packet that was let through (either direction:
/// the XDP program on the way in, the TC program on the way out). INIT and INIT-ACK carry
/// the tag the *other* direction will use; ABORT and SHUTDOWN-COMPLETE end both: the
/// direction the tag names at once, the other after [`CLOSING_GRACE_NS`].
#[inline(always)]
pub fn track_tags<'r, F: Filter<'r>>(
    rs: &RuleSet,
    filter: &mut F,
    stats: &mut GlobalStats,
    key: &FlowKey,
    first: &FirstChunk,
    now_ns: u64,
) {
    match first.chunk_type {
        // The INIT's tag only for `validate-vtag`, which admits the INIT-ACK by it: the
        // directory learns both tags from the INIT-ACK (an INIT flood writes nothing).
        ty::INIT if first.len >= 20 && first.word != 0 && learns_init_tags(rs) => {
            let entry = TagEntry { last_seen_ns: now_ns, partner: 0, closing: 0, handshake: handshake::OFFERED };
            filter.learn(&reversed(key, first.word), &entry);
            stats.bump(Counter::VtagsLearned, 1);
        }
        ty::INIT_ACK if first.len >= 20 && first.word != 0 => {
            let answered =
                TagEntry { last_seen_ns: now_ns, partner: key.vtag, closing: 0, handshake: handshake::ANSWERED };
            filter.learn(&reversed(key, first.word), &answered);
            // The INIT's tag (this packet's own key) with its partner.
            if let Some(e) = filter.tag(key) {
                e.set_partner(first.word);
            } else {
                let offered = TagEntry { partner: first.word, handshake: handshake::OFFERED, ..answered };
                filter.learn(key, &offered);
            }
            stats.bump(Counter::VtagsLearned, 1);
        }
        ty::ABORT | ty::SHUTDOWN_COMPLETE => {
            // With the T bit the tag is the sender's own: the other direction's key.
            let own = if first.flags & flag::T_BIT != 0 { reversed(key, key.vtag) } else { *key };
            let Some(partner) = filter.tag(&own).map(|e| e.get().partner) else {
                return;
            };
            filter.forget(&own);
            if partner != 0 {
                if let Some(e) = filter.tag(&reversed(&own, partner)) {
                    e.close(now_ns.saturating_sub(rs.vtag_idle_ns).saturating_add(CLOSING_GRACE_NS));
                }
            }
            stats.bump(Counter::VtagsForgotten, 1);
        }
        _ => {}
    }
}

/// Whether the packet's flow belongs to an association whose handshake was seen to
/// complete, in either direction: the directory holds its tag as [`handshake::COMPLETED`],
/// or as offered by an INIT-ACK and this packet is the first to use it (then both
/// directions' entries become completed). A blind attacker knows addresses and ports but
/// never the tag an INIT-ACK offered: the flows it makes up stay provisional.
#[inline(always)]
pub fn handshake_completed<T: Tags>(tags: &mut T, key: &FlowKey, first: &FirstChunk) -> bool {
    let Some(own) = tags.tag(key) else {
        return false;
    };
    let e = own.get();
    if e.handshake == handshake::COMPLETED {
        return true;
    }
    // INIT and INIT-ACK carry another tag than the one they offer; a T-bit ABORT or
    // SHUTDOWN-COMPLETE reflects whatever tag it was sent.
    let reflected = matches!(first.chunk_type, ty::ABORT | ty::SHUTDOWN_COMPLETE) && first.flags & flag::T_BIT != 0;
    if e.handshake != handshake::ANSWERED || !first.present || reflected || first.chunk_type == ty::INIT_ACK {
        return false;
    }
    own.complete();
    if let Some(other) = tags.tag(&reversed(key, e.partner)) {
        other.complete();
    }
    true
}

/// The key of the opposite direction with tag `vtag`.
#[inline(always)]
#[must_use]
pub fn reversed(key: &FlowKey, vtag: u32) -> FlowKey {
    FlowKey { src_port: key.dst_port, dst_port: key.src_port, vtag }
}

/// The rules judged after the chunk walk, in a fixed order (a packet is charged to the
/// first that matches). `walk_end` is how the walk ended early (a `Counter` value), 0 if
/// it did not; `chunks` how many chunks it walked.
#[inline(always)]
#[must_use]
pub fn judge(rs: &RuleSet, notes: &Notes, walk_end: u32, chunks: u64, vtag: u32) -> Option<Charge> {
    if rs.flags & enable::MALFORMED != 0 && Counter::is_error_code(walk_end) {
        return Some(charge(rs, Counter::DropMalformed));
    }
    if rs.max_chunks != 0 && (chunks > u64::from(rs.max_chunks) || walk_end == Counter::ErrChunkWalkLimit as u32) {
        return Some(charge(rs, Counter::DropTooManyChunks));
    }
    for (t, id) in rs.deny_chunk_type.iter().zip(rs.deny_chunk_rule.iter()) {
        if *id != NO_RULE && notes.has(*t) {
            return Some((Counter::DropDenyChunk, *id));
        }
    }
    if rs.flags & enable::VIOLATIONS != 0 {
        let control = notes.has(ty::INIT) || notes.has(ty::INIT_ACK) || notes.has(ty::SHUTDOWN_COMPLETE);
        if control && chunks > 1 {
            return Some(charge(rs, Counter::DropBundling));
        }
        if notes.has(ty::INIT) && vtag != 0 {
            return Some(charge(rs, Counter::DropInitNonzeroTag));
        }
        if (notes.has(ty::DATA) || notes.has(ty::I_DATA)) && vtag == 0 {
            return Some(charge(rs, Counter::DropDataZeroTag));
        }
    }
    if rs.max_data_chunk != 0 && notes.data_too_large != 0 {
        return Some(charge(rs, Counter::DropDataTooLarge));
    }
    if notes.ppid_rule != u32::from(NO_RULE) {
        return Some((Counter::DropDenyPpid, rule_id(notes.ppid_rule)));
    }
    None
}

/// Judges one application message (its key's first word `head`, see
/// `abi::MessageSlot::key`) from `source` by the message rules of generation `gen`: the
/// first rule about it decides, a `deny-message` rule at once, a `message-rate` rule by the
/// source's bucket (a bucket the map has no room for lets the message through).
#[inline(always)]
pub fn judge_message<'r, F: Filter<'r>>(
    rs: &RuleSet,
    gen: u32,
    filter: &mut F,
    head: u64,
    source: &AddrKey,
    now_ns: u64,
) -> Option<Charge> {
    let rule = rs.message_rules.iter().find(|r| r.matches(head))?;
    #[expect(clippy::cast_possible_truncation, reason = "rule ids are below MAX_RULES")]
    let id = rule.rule as u8;
    if rule.rate == 0 {
        return Some((Counter::DropMessageDenied, id));
    }
    let key = MessageBucketKey { source: *source, rule: (gen & 1) << 8 | rule.rule };
    let bucket = filter.message_bucket(&key)?;
    (!take(&bucket, rule.rate, rule.burst, now_ns)).then_some((Counter::DropMessageRate, id))
}

/// Counts a drop: its reason, the verdict is the caller's.
#[inline(always)]
pub fn count_drop(stats: &mut GlobalStats, gen: u32, (reason, rule): Charge) {
    stats.bump(reason, 1);
    let i = (gen as usize & 1) * MAX_RULES + usize::from(rule);
    if let Some(h) = stats.rule_hits.get_mut(i) {
        *h += 1;
    }
}

#[cfg(test)]
mod tests {
    use alloc::{vec, vec::Vec};

    use bytemuck::Zeroable as _;

    use super::*;
    use crate::{
        abi::FlowStats,
        builder::{Chunk, Ip, SctpPacket},
        host::MemFilter,
        parse::{after_process, process, NoEvents, WalkFindings},
    };

    /// Which way a packet goes: from the client, or back from the server.
    const CLIENT: bool = false;
    const SERVER: bool = true;

    fn packet(back: bool, vtag: u32, chunks: Vec<Chunk>) -> SctpPacket {
        let ip = Ip::V4 { src: [198, 18, 0, 1], dst: [198, 18, 0, 2] };
        let mut p = SctpPacket::new(ip, vtag, chunks);
        if back {
            p.ip = Ip::V4 { src: [198, 18, 0, 2], dst: [198, 18, 0, 1] };
            (p.src_port, p.dst_port) = (p.dst_port, p.src_port);
        }
        p
    }

    /// Runs packets (without rules) through the parser, the directory learning as it
    /// does in the kernel; returns the directory.
    fn directory(packets: &[(bool, u32, Chunk)]) -> MemFilter<'static> {
        let mut filter = MemFilter::default();
        let mut stats = GlobalStats::zeroed();
        for (back, vtag, chunk) in packets {
            let frame = packet(*back, *vtag, vec![chunk.clone()]).frame();
            let mut flow = FlowStats::zeroed();
            let mut seen = WalkFindings::new();
            let verdict = process(
                frame.as_slice(),
                &mut stats,
                || 1,
                |_, _, _| Some(&mut flow),
                &mut NoEvents,
                &mut filter,
                &mut seen,
            );
            after_process(frame.as_slice(), verdict, &mut stats, &mut filter, &mut NoEvents, &mut seen, |_, settle| {
                settle(&mut flow);
            });
        }
        filter
    }

    fn key(back: bool, vtag: u32) -> FlowKey {
        let p = packet(back, vtag, Vec::new());
        FlowKey { src_port: p.src_port, dst_port: p.dst_port, vtag }
    }

    fn first(chunk_type: u8, flags: u8) -> FirstChunk {
        FirstChunk { chunk_type, flags, len: 16, word: 0, present: true }
    }

    #[test]
    fn a_handshake_completes_when_the_tag_an_init_ack_offered_is_used() {
        let handshake = [
            (CLIENT, 0, Chunk::init(ty::INIT, 0xc1, 65_536, 4, 4, 1)),
            (SERVER, 0xc1, Chunk::init(ty::INIT_ACK, 0x51, 65_536, 4, 4, 9)),
        ];
        let mut dir = directory(&handshake);
        // The INIT-ACK's own direction: answered by the server, not yet completed.
        assert!(!handshake_completed(&mut dir, &key(SERVER, 0xc1), &first(ty::INIT_ACK, 0)));
        // A T-bit ABORT reflects whatever tag it was sent: no proof.
        assert!(!handshake_completed(&mut dir, &key(CLIENT, 0x51), &first(ty::ABORT, flag::T_BIT)));
        // The COOKIE-ECHO carries the tag only the INIT-ACK's receiver knows.
        assert!(handshake_completed(&mut dir, &key(CLIENT, 0x51), &first(ty::COOKIE_ECHO, 0)));
        // Both directions are now completed, whatever comes next.
        assert!(handshake_completed(&mut dir, &key(SERVER, 0xc1), &first(ty::COOKIE_ACK, 0)));
        assert!(handshake_completed(&mut dir, &key(SERVER, 0xc1), &first(ty::DATA, 0)));
    }

    #[test]
    fn made_up_tags_never_complete_a_handshake() {
        // A blind attacker's INIT with its own tag: the server's answer never reaches it.
        let mut dir = directory(&[(CLIENT, 0, Chunk::init(ty::INIT, 0xbad, 65_536, 4, 4, 1))]);
        for t in [ty::COOKIE_ECHO, ty::DATA, ty::HEARTBEAT, ty::SACK] {
            assert!(!handshake_completed(&mut dir, &key(SERVER, 0xbad), &first(t, 0)), "{t}");
            assert!(!handshake_completed(&mut dir, &key(CLIENT, 0x7777), &first(t, 0)), "{t}");
        }
    }

    #[test]
    fn the_directory_learns_without_rules_and_forgets_on_abort() {
        let mut dir = directory(&[
            (CLIENT, 0, Chunk::init(ty::INIT, 0xc1, 65_536, 4, 4, 1)),
            (SERVER, 0xc1, Chunk::init(ty::INIT_ACK, 0x51, 65_536, 4, 4, 9)),
        ]);
        assert_eq!(dir.tags.len(), 2);
        assert!(handshake_completed(&mut dir, &key(CLIENT, 0x51), &first(ty::COOKIE_ECHO, 0)));
        let mut dir = directory(&[
            (CLIENT, 0, Chunk::init(ty::INIT, 0xc1, 65_536, 4, 4, 1)),
            (SERVER, 0xc1, Chunk::init(ty::INIT_ACK, 0x51, 65_536, 4, 4, 9)),
            (CLIENT, 0x51, Chunk::new(ty::ABORT, 0, vec![])),
        ]);
        assert!(!handshake_completed(&mut dir, &key(CLIENT, 0x51), &first(ty::DATA, 0)));
    }
}
