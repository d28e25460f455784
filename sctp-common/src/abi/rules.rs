//! The rule maps' keys and values: what user space compiles rules into and the XDP
//! program judges by. Plain data; the judging is in [`crate::filter`].

use bytemuck::{Pod, Zeroable};

use super::counter::Counter;

/// Rules per generation (each with a label and a hit counter).
pub const MAX_RULES: usize = 64;
/// Rule-set generations: user space fills the idle one, then flips (see `filter`).
pub const GENERATIONS: u32 = 2;

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
    /// `deny-message` or `message-rate` rules exist: every packet with DATA that passed
    /// has its messages read and judged.
    pub const MESSAGES: u32 = 1 << 7;
}

/// `deny-message` and `message-rate` rules per rule set, together.
pub const MAX_MESSAGE_RULES: usize = 8;

/// A rule on application messages: which messages (a key of `abi::MessageSlot`'s first
/// word, and the bits of it that must match: the kind's left out for any kind) and what
/// befalls them: dropped (`rate` 0), or let through at `rate` a second per source after a
/// burst. `mask` 0: an unused slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MessageRule {
    pub head: u64,
    pub mask: u64,
    pub rate: u32,
    pub burst: u32,
    pub rule: u32,
    pub pad: u32,
}

impl MessageRule {
    /// The bits of a message key's first word that hold its protocol and code.
    pub const ANY_KIND: u64 = 0xffff_ffff_0000_00ff;
    /// ... and its kind.
    pub const ONE_KIND: u64 = 0xffff_ffff_0000_ffff;

    /// The rule about messages of `protocol` and `code`, of one kind or (`None`) any,
    /// charged to rule `id`: dropped (`rate` 0), or limited to `rate` after `burst`.
    #[must_use]
    pub fn about(protocol: u8, kind: Option<u8>, code: u32, id: u8, rate: u32, burst: u32) -> Self {
        let (head, _) = super::MessageSlot::key(protocol, kind.unwrap_or(0), code, 0, 0);
        let mask = if kind.is_some() { Self::ONE_KIND } else { Self::ANY_KIND };
        Self { head: head & mask, mask, rate, burst, rule: u32::from(id), pad: 0 }
    }

    /// Whether a message of key `head` is one this rule is about.
    #[inline(always)]
    #[must_use]
    pub fn matches(&self, head: u64) -> bool {
        self.mask != 0 && head & self.mask == self.head
    }
}

/// Slots of [`RuleSet::reason_rule`]: one per drop reason, with room to add reasons
/// without changing the value's size.
pub const REASON_SLOTS: usize = 16;
const _: () = assert!(Counter::DROP_REASONS <= REASON_SLOTS);

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
    /// Rules in use (ids `0..rule_count`).
    pub rule_count: u32,
    /// A learned tag not seen for this long is forgotten.
    pub vtag_idle_ns: u64,
    /// Until this time (`CLOCK_MONOTONIC` ns) an unknown tag is learned, not dropped.
    pub vtag_learn_until_ns: u64,
    /// The rule charged for each drop reason (index: reason - `Counter::FIRST_DROP`);
    /// `deny-src`, `deny-chunk` and `deny-ppid` charge the matching entry's own rule.
    pub reason_rule: [u8; REASON_SLOTS],
    /// Denied chunk types, one bit each.
    pub denied_types: [u64; 4],
    /// The denied types and their rules ([`NO_RULE`]: unused slot).
    pub deny_chunk_type: [u8; MAX_DENY_CHUNK],
    pub deny_chunk_rule: [u8; MAX_DENY_CHUNK],
    /// The drop reason each rule charges (reason - `Counter::FIRST_DROP`), for user space.
    pub rule_reason: [u8; MAX_RULES],
    /// `deny-message` rules, then `message-rate` rules: a message is judged by the first
    /// that matches.
    pub message_rules: [MessageRule; MAX_MESSAGE_RULES],
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
        r.reason_rule = [NO_RULE; REASON_SLOTS];
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
        u8::try_from(id).ok()
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
/// both generations and both families (the prefix length counts their 32 bits too). Two
/// bytes each, so the address is 4-byte aligned: the program is built allowing
/// misaligned loads and stores, and the verifier refuses them on the stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct SrcPrefix {
    pub gen: u16,
    pub family: u16,
    pub addr: [u8; 16],
}

impl SrcPrefix {
    /// The key of `addr` in generation `gen` (below [`GENERATIONS`]) of address family
    /// `family` (an address family value of [`FlowStats::family`](super::FlowStats::family)): both fit their field.
    #[inline(always)]
    #[must_use]
    #[expect(clippy::cast_possible_truncation, reason = "both values are below 256, as documented")]
    pub fn new(gen: u32, family: u32, addr: [u8; 16]) -> Self {
        Self { gen: gen as u16, family: family as u16, addr }
    }
}

/// The rule id held in the low byte of a 32-bit value: a source-prefix value (with
/// [`SRC_ALLOW`] above it) or a note.
#[inline(always)]
#[must_use]
pub fn rule_id(value: u32) -> u8 {
    value.to_le_bytes()[0]
}

/// Bits of [`SrcPrefix`] before the address.
pub const SRC_PREFIX_HEADER_BITS: u32 = 32;

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
    pub closing: u16,
    /// How far the association's handshake was seen: a [`handshake`] value.
    pub handshake: u16,
}

/// How far an association's handshake was seen, in its [`TagEntry`]: what decides
/// whether its flows are counted among the established or the provisional ones.
pub mod handshake {
    /// Offered in an INIT (or learned while `validate-vtag` learns): anyone can send one.
    pub const OFFERED: u16 = 0;
    /// Offered in an INIT-ACK: only its receiver knows the tag (a blind attacker who
    /// spoofed the INIT never sees the answer).
    pub const ANSWERED: u16 = 1;
    /// A packet carried the tag an INIT-ACK offered: the handshake completed.
    pub const COMPLETED: u16 = 2;
}

/// Key of the per-source INIT token buckets.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Pod, Zeroable)]
pub struct AddrKey {
    pub family: u32,
    pub addr: [u8; 16],
}

/// Key of the `message-rate` buckets: the source, and the rule's generation (bit 8) and
/// id (bits 0-7).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Pod, Zeroable)]
pub struct MessageBucketKey {
    pub source: AddrKey,
    pub rule: u32,
}

/// A token bucket. All zero is a full bucket (it was never refilled).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Bucket {
    /// Tokens in billionths: a refill of `rate` per second is `rate` per ns.
    pub nano_tokens: u64,
    pub last_ns: u64,
}
