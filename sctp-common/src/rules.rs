//! Filtering rules: the rule set the XDP program judges packets by, the state it keeps
//! (learned verification tags, INIT token buckets) and the judgement itself. The map
//! lookups sit behind [`Filter`], so the host tests run the same judgement as the kernel.
//!
//! Atomic switch: user space keeps two generations of rules (the `RULES` array has two
//! slots; source prefixes and PPIDs carry the generation in their keys). It fills the
//! inactive generation, then flips one word; a packet reads that word once and judges by
//! one generation only, so it sees the old set or the new one, never a mix.

use bytemuck::{Pod, Zeroable};

use crate::{
    chunk::{flag, ty},
    stats::{Counter, DataEvent, FlowKey, GlobalStats},
};

/// Rules per generation (each with a label and a hit counter).
pub const MAX_RULES: usize = 64;
/// Bytes of a rule's label (what `rules show` and the `rule` metric label print).
pub const LABEL_LEN: usize = 56;
/// "No rule" in the per-type tables.
pub const NO_RULE: u8 = u8::MAX;
/// `deny-chunk` types per rule set.
pub const MAX_DENY_CHUNK: usize = 8;
/// Bit of a source-prefix value that marks an allow prefix (low byte: the rule id).
pub const SRC_ALLOW: u32 = 1 << 8;

/// Bits of [`RuleSet::flags`].
pub mod enable {
    /// Source prefixes exist: look the source up.
    pub const SRC: u32 = 1;
    /// `allow-src` prefixes exist: a source matching none is dropped.
    pub const ALLOW_SRC: u32 = 1 << 1;
    /// `allow-port` ports exist.
    pub const ALLOW_PORT: u32 = 1 << 2;
    /// `deny-ppid` PPIDs exist: look DATA PPIDs up.
    pub const DENY_PPID: u32 = 1 << 3;
    /// Drop RFC 9260 bundling and tag violations.
    pub const VIOLATIONS: u32 = 1 << 4;
    /// Drop SCTP packets the parser rejects.
    pub const MALFORMED: u32 = 1 << 5;
    /// Validate verification tags against learned associations.
    pub const VALIDATE_VTAG: u32 = 1 << 6;
}

/// One generation of rules (value of the two-slot `RULES` array). All zero: no rules.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct RuleSet {
    /// [`enable`] bits.
    pub flags: u32,
    /// Most chunks a packet may carry (1..=32), 0 for no limit.
    pub max_chunks: u32,
    /// Longest DATA / I-DATA chunk (its length field, header included), 0 for no limit.
    pub max_data_chunk: u32,
    /// INIT chunks per second per source address, 0 for no limit.
    pub init_rate: u32,
    pub init_burst: u32,
    /// INIT chunks per second from all sources together, 0 for no limit.
    pub global_init_rate: u32,
    pub global_init_burst: u32,
    /// Rules in use (ids 0..rule_count).
    pub rule_count: u32,
    /// A learned tag not seen for this long is forgotten.
    pub vtag_idle_ns: u64,
    /// Until this time (CLOCK_MONOTONIC ns) an unknown tag is learned, not dropped.
    pub vtag_learn_until_ns: u64,
    /// The rule charged for each drop reason (index: reason - `Counter::FIRST_DROP`);
    /// `deny-src`, `deny-chunk` and `deny-ppid` charge the matching entry's own rule.
    pub reason_rule: [u8; 16],
    /// Denied chunk types, one bit each.
    pub denied_types: [u64; 4],
    /// The denied types and their rules ([`NO_RULE`]: unused slot).
    pub deny_chunk_type: [u8; MAX_DENY_CHUNK],
    pub deny_chunk_rule: [u8; MAX_DENY_CHUNK],
    /// The drop reason each rule charges (reason - `Counter::FIRST_DROP`), for user space.
    pub rule_reason: [u8; MAX_RULES],
    /// Allowed destination ports, one bit each (used when `ALLOW_PORT` is set).
    pub allowed_ports: [u64; 1024],
    /// Each rule's hit counter when this generation was applied (counters only grow;
    /// user space reports the difference).
    pub hits_base: [u64; MAX_RULES],
    /// NUL-padded label per rule id.
    pub labels: [[u8; LABEL_LEN]; MAX_RULES],
}

/// The rule set of a program nobody gave rules.
pub static NO_RULES: RuleSet = {
    // SAFETY: RuleSet is Pod: all zeroes is a valid value (and an inactive set).
    unsafe { core::mem::zeroed() }
};

impl RuleSet {
    /// Whether any rule is set; an inactive set judges nothing.
    #[inline(always)]
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.rule_count != 0
    }

    /// No rules: every table empty.
    #[must_use]
    pub fn empty() -> Self {
        let mut r = Self::zeroed();
        r.deny_chunk_rule = [NO_RULE; MAX_DENY_CHUNK];
        r.reason_rule = [NO_RULE; 16];
        r
    }

    #[inline(always)]
    #[must_use]
    pub fn port_allowed(&self, port: u16) -> bool {
        let word = self.allowed_ports.get(usize::from(port >> 6)).copied().unwrap_or(0);
        word >> (port & 63) & 1 != 0
    }

    /// Denies a chunk type under rule `id`; false when the table is full.
    pub fn deny_chunk(&mut self, chunk_type: u8, id: u8) -> bool {
        let Some(slot) = self.deny_chunk_rule.iter().position(|r| *r == NO_RULE) else {
            return false;
        };
        self.deny_chunk_type[slot] = chunk_type;
        self.deny_chunk_rule[slot] = id;
        self.denied_types[usize::from(chunk_type >> 6)] |= 1 << (chunk_type & 63);
        true
    }

    pub fn allow_port(&mut self, port: u16) {
        self.allowed_ports[usize::from(port >> 6)] |= 1 << (port & 63);
        self.flags |= enable::ALLOW_PORT;
    }

    /// The rule charged for a drop reason.
    #[inline(always)]
    #[must_use]
    pub fn rule_for(&self, reason: Counter) -> u8 {
        let i = (reason as usize).wrapping_sub(Counter::FIRST_DROP as usize);
        self.reason_rule.get(i).copied().unwrap_or(NO_RULE)
    }

    /// Adds a rule with this label; returns its id, or `None` when the set is full.
    pub fn add_rule(&mut self, label: &str) -> Option<u8> {
        let id = self.rule_count as usize;
        let slot = self.labels.get_mut(id)?;
        let n = label.len().min(LABEL_LEN);
        slot[..n].copy_from_slice(&label.as_bytes()[..n]);
        self.rule_count += 1;
        Some(id as u8)
    }

    /// A rule's label.
    #[must_use]
    pub fn label(&self, id: u8) -> &str {
        let raw = self.labels.get(usize::from(id)).map_or(&[][..], |l| &l[..]);
        let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        core::str::from_utf8(&raw[..end]).unwrap_or("?")
    }
}

/// Key data of the source-prefix LPM trie: generation and family lead, so one trie holds
/// both generations and both families (the prefix length counts their 16 bits too).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct SrcPrefix {
    pub gen: u8,
    pub family: u8,
    pub addr: [u8; 16],
}

/// Bits of [`SrcPrefix`] before the address.
pub const SRC_PREFIX_HEADER_BITS: u32 = 16;

/// Key of the `deny-ppid` hash.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Pod, Zeroable)]
pub struct PpidKey {
    pub gen: u32,
    pub ppid: u32,
}

/// A learned verification tag, keyed by the [`FlowKey`] of the packets that carry it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct TagEntry {
    pub last_seen_ns: u64,
    /// The other direction's tag (0 until known): forgotten together.
    pub partner: u32,
    /// Non-zero once the association is closing: the entry lives out its grace and is
    /// not refreshed.
    pub closing: u32,
}

/// How long the direction opposite an ABORT or SHUTDOWN-COMPLETE stays known: long
/// enough for the other end's own SHUTDOWN-COMPLETE when both close at once (RFC 9260
/// 9.2) and for packets already in flight.
pub const CLOSING_GRACE_NS: u64 = 3_000_000_000;

/// Key of the per-source INIT token buckets.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Pod, Zeroable)]
pub struct AddrKey {
    pub family: u32,
    pub addr: [u8; 16],
}

/// A token bucket. All zero is a full bucket (it was never refilled).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Bucket {
    /// Tokens in billionths: a refill of `rate` per second is `rate` per ns.
    pub nano_tokens: u64,
    pub last_ns: u64,
}

const NANO: u64 = 1_000_000_000;

impl Bucket {
    /// Refills for the time since the last call and takes one token if there is one.
    /// Shared buckets are updated without atomics: CPUs racing may let a few extra
    /// INITs through, never block a legitimate rate.
    #[inline(always)]
    pub fn take(&mut self, rate: u32, burst: u32, now_ns: u64) -> bool {
        let cap = u64::from(burst.max(1)) * NANO;
        let rate = u64::from(rate.max(1));
        // A new bucket (never refilled) is full.
        let elapsed = if self.last_ns == 0 {
            u64::MAX
        } else {
            now_ns.saturating_sub(self.last_ns)
        };
        // Compared before multiplying: no 128-bit arithmetic in the bpf target.
        let tokens = if elapsed >= cap / rate {
            cap
        } else {
            (self.nano_tokens + elapsed * rate).min(cap)
        };
        self.last_ns = now_ns;
        let ok = tokens >= NANO;
        self.nano_tokens = if ok { tokens - NANO } else { tokens };
        ok
    }
}

/// The maps behind the rules: in the kernel BPF maps, on the host plain collections.
pub trait Filter<'r> {
    /// The active rule set and its generation (an inactive set when there are no rules).
    fn rules(&mut self) -> (&'r RuleSet, u32);
    /// The longest source prefix's value ([`SRC_ALLOW`] | rule id), if any matches.
    fn src_rule(&mut self, gen: u32, family: u32, addr: &[u8; 16]) -> Option<u32>;
    /// The rule denying this PPID, if any.
    fn ppid_rule(&mut self, gen: u32, ppid: u32) -> Option<u8>;
    fn tag(&mut self, key: &FlowKey) -> Option<&mut TagEntry>;
    fn learn(&mut self, key: &FlowKey, entry: &TagEntry);
    fn forget(&mut self, key: &FlowKey);
    /// The source's INIT bucket, created full when new.
    fn source_bucket(&mut self, src: &AddrKey) -> Option<&mut Bucket>;
    fn global_bucket(&mut self) -> Option<&mut Bucket>;
}

/// A drop: its reason and the rule charged.
pub type Charge = (Counter, u8);

/// The first chunk's header and the word after it (INIT's Initiate Tag).
#[derive(Clone, Copy, Debug)]
pub struct FirstChunk {
    pub chunk_type: u8,
    pub flags: u8,
    pub len: u16,
    pub word: u32,
}

impl FirstChunk {
    #[inline(always)]
    #[must_use]
    pub fn from_bytes(b: [u8; 8]) -> Self {
        Self {
            chunk_type: b[0],
            flags: b[1],
            len: u16::from_be_bytes([b[2], b[3]]),
            word: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
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
            Some(v) if v & SRC_ALLOW == 0 => return Err((Counter::DropDenySrc, v as u8)),
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
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn admit<'r, F: Filter<'r>>(
    rs: &RuleSet,
    filter: &mut F,
    stats: &mut GlobalStats,
    src: &Source,
    key: &FlowKey,
    first: Option<FirstChunk>,
    now_ns: u64,
) -> Result<(), Charge> {
    // Without a first chunk the walk reports the packet as malformed.
    let Some(first) = first else { return Ok(()) };
    if rs.flags & enable::VALIDATE_VTAG != 0 && !tag_admitted(rs, filter, stats, key, &first, now_ns) {
        return Err(charge(rs, Counter::DropVtagUnknown));
    }
    if first.chunk_type == ty::INIT {
        if rs.init_rate != 0 {
            let addr = AddrKey {
                family: src.family,
                addr: *src.addr,
            };
            if let Some(b) = filter.source_bucket(&addr) {
                if !b.take(rs.init_rate, rs.init_burst, now_ns) {
                    return Err(charge(rs, Counter::DropInitRateSource));
                }
            }
        }
        if rs.global_init_rate != 0 {
            if let Some(b) = filter.global_bucket() {
                if !b.take(rs.global_init_rate, rs.global_init_burst, now_ns) {
                    return Err(charge(rs, Counter::DropInitRateGlobal));
                }
            }
        }
    }
    Ok(())
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
    if let Some(e) = filter.tag(key) {
        let idle = now_ns.saturating_sub(e.last_seen_ns);
        if idle <= rs.vtag_idle_ns {
            // Written at most once a second: the entry is shared by every CPU.
            if idle > NANO && e.closing == 0 {
                e.last_seen_ns = now_ns;
            }
            return true;
        }
        filter.forget(key);
        stats.bump(Counter::VtagsExpired, 1);
    }
    if now_ns < rs.vtag_learn_until_ns {
        filter.learn(
            key,
            &TagEntry {
                last_seen_ns: now_ns,
                partner: 0,
                closing: 0,
            },
        );
        stats.bump(Counter::VtagsLearned, 1);
        return true;
    }
    false
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
        ty::INIT | ty::INIT_ACK if first.len >= 20 && first.word != 0 => {
            let entry = TagEntry {
                last_seen_ns: now_ns,
                partner: key.vtag,
                closing: 0,
            };
            filter.learn(&reversed(key, first.word), &entry);
            if first.chunk_type == ty::INIT_ACK {
                // The INIT's entry (this packet's own key) learns its partner.
                if let Some(e) = filter.tag(key) {
                    e.partner = first.word;
                }
            }
            stats.bump(Counter::VtagsLearned, 1);
        }
        ty::ABORT | ty::SHUTDOWN_COMPLETE => {
            // With the T bit the tag is the sender's own: the other direction's key.
            let own = if first.flags & flag::T_BIT != 0 {
                reversed(key, key.vtag)
            } else {
                *key
            };
            let Some(partner) = filter.tag(&own).map(|e| e.partner) else {
                return;
            };
            filter.forget(&own);
            if partner != 0 {
                if let Some(e) = filter.tag(&reversed(&own, partner)) {
                    e.last_seen_ns = now_ns.saturating_sub(rs.vtag_idle_ns).saturating_add(CLOSING_GRACE_NS);
                    e.closing = 1;
                }
            }
            stats.bump(Counter::VtagsForgotten, 1);
        }
        _ => {}
    }
}

/// The key of the opposite direction with tag `vtag`.
#[inline(always)]
fn reversed(key: &FlowKey, vtag: u32) -> FlowKey {
    FlowKey {
        src_port: key.dst_port,
        dst_port: key.src_port,
        vtag,
    }
}

/// What the chunk walk saw that the rules judged after it need, and what crosses the
/// walk: the packet's first chunk, whether rules are active, how the walk ended. The
/// crossing values go through memory with volatile accesses ([`Seen::stash`] and
/// [`Seen::recall`]) so the verifier, which does not track map memory, reaches the code
/// after the walk in one state instead of one per way the walk ended or began.
#[derive(Clone, Copy)]
pub struct Seen {
    pub first: Option<FirstChunk>,
    pub active: bool,
    /// How the walk ended early: a `Counter` value, 0 if it did not.
    pub walk_end: u32,
    /// The global chunk count before the walk: the packet's chunks are the difference.
    pub chunks_before: u64,
    /// The DATA event being filled (packet fields first, then each DATA chunk's).
    pub data: DataEvent,
    pub notes: Notes,
}

/// What the walk noted for the rules, chunk by chunk. Kept branch-free: every
/// instruction in the walk's body is verified once per path through it and iteration.
#[derive(Clone, Copy)]
pub struct Notes {
    /// Chunk types present, one bit each.
    pub types: [u64; 4],
    /// Non-zero if a DATA / I-DATA chunk was longer than `max_data_chunk`.
    pub data_too_large: u64,
    /// The `deny-ppid` rule a DATA PPID matched, [`NO_RULE`] if none.
    pub ppid_rule: u32,
    pub _pad: u32,
}

impl Notes {
    #[must_use]
    pub fn new() -> Self {
        Self {
            types: [0; 4],
            data_too_large: 0,
            ppid_rule: u32::from(NO_RULE),
            _pad: 0,
        }
    }

    /// Notes a DATA / I-DATA chunk's length and PPID (if it carries one).
    #[inline(always)]
    pub fn data_chunk<'r, F: Filter<'r>>(
        &mut self,
        rs: &RuleSet,
        gen: u32,
        filter: &mut F,
        len: usize,
        ppid: Option<u32>,
    ) {
        // Branch-free `len > max`: the difference wraps into the top bit.
        let over = u64::from(rs.max_data_chunk).wrapping_sub(len as u64) >> 63;
        // SAFETY: read and write of fields of a live &mut.
        unsafe {
            let p = &raw mut self.data_too_large;
            core::ptr::write_volatile(p, core::ptr::read_volatile(p) | over);
        }
        if let Some(ppid) = ppid.filter(|_| rs.flags & enable::DENY_PPID != 0) {
            if let Some(id) = filter.ppid_rule(gen, ppid) {
                // SAFETY: a write to a field of a live &mut.
                unsafe { core::ptr::write_volatile(&raw mut self.ppid_rule, u32::from(id)) };
            }
        }
    }

    #[inline(always)]
    #[must_use]
    pub fn has(&self, chunk_type: u8) -> bool {
        self.types[usize::from(chunk_type >> 6)] >> (chunk_type & 63) & 1 != 0
    }
}

impl Default for Notes {
    fn default() -> Self {
        Self::new()
    }
}

impl Seen {
    #[must_use]
    pub fn new() -> Self {
        Self {
            first: None,
            active: false,
            walk_end: 0,
            chunks_before: 0,
            data: DataEvent::zeroed(),
            notes: Notes::new(),
        }
    }

    /// Notes a chunk's type. Through memory, volatile: kept in registers, the notes would
    /// tell the walk's iterations apart for the verifier.
    #[inline(always)]
    pub fn chunk_type(&mut self, chunk_type: u8) {
        if let Some(w) = self.notes.types.get_mut(usize::from(chunk_type >> 6)) {
            // SAFETY: read and write of a live &mut.
            unsafe { core::ptr::write_volatile(w, core::ptr::read_volatile(w) | 1 << (chunk_type & 63)) };
        }
    }
}

/// Values that cross the chunk walk (see [`Seen`]).
#[derive(Clone, Copy)]
pub struct Crossing {
    pub first: Option<FirstChunk>,
    pub active: bool,
    pub walk_end: u32,
    pub chunks_before: u64,
}

impl Seen {
    #[inline(always)]
    pub fn stash(&mut self, c: Crossing) {
        // SAFETY: plain writes to fields of a live &mut.
        unsafe {
            core::ptr::write_volatile(&raw mut self.first, c.first);
            core::ptr::write_volatile(&raw mut self.active, c.active);
            core::ptr::write_volatile(&raw mut self.walk_end, c.walk_end);
            core::ptr::write_volatile(&raw mut self.chunks_before, c.chunks_before);
        }
    }

    #[inline(always)]
    #[must_use]
    pub fn recall(&self) -> Crossing {
        // SAFETY: plain reads of fields of a live reference.
        unsafe {
            Crossing {
                first: core::ptr::read_volatile(&raw const self.first),
                active: core::ptr::read_volatile(&raw const self.active),
                walk_end: core::ptr::read_volatile(&raw const self.walk_end),
                chunks_before: core::ptr::read_volatile(&raw const self.chunks_before),
            }
        }
    }
}

impl Default for Seen {
    fn default() -> Self {
        Self::new()
    }
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
        return Some((Counter::DropDenyPpid, notes.ppid_rule as u8));
    }
    None
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
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn token_bucket_refills_at_its_rate_up_to_its_burst() {
        let mut b = Bucket::default();
        let t0 = 5_000 * MS;
        // New: full (burst 2), then empty.
        assert!(b.take(10, 2, t0));
        assert!(b.take(10, 2, t0));
        assert!(!b.take(10, 2, t0));
        // 10 per second: one token after 100 ms, not before.
        assert!(!b.take(10, 2, t0 + 99 * MS));
        assert!(b.take(10, 2, t0 + 100 * MS));
        assert!(!b.take(10, 2, t0 + 100 * MS));
        // An hour idle refills to the burst, not beyond.
        let later = t0 + 3_600_000 * MS;
        assert!(b.take(10, 2, later));
        assert!(b.take(10, 2, later));
        assert!(!b.take(10, 2, later));
    }

    #[test]
    fn a_huge_rate_never_overflows() {
        let mut b = Bucket::default();
        for i in 0..1000 {
            assert!(b.take(u32::MAX, u32::MAX, 1 + i));
        }
    }
}
