//! The rules' maps as plain collections (feature `host`), for `inspect`'s host engine and
//! the tests: the same lookups the kernel's maps answer (longest-prefix match, hash,
//! LRU-less tag table).

use alloc::{collections::BTreeMap, vec::Vec};

use crate::{
    abi::{
        maps::{MESSAGE_BUCKET_CAPACITY, PENDING_CAPACITY, RESPONSE_CAPACITY, VTAG_CAPACITY},
        AddrKey, Bucket, FlowKey, MessageBucketKey, PendingKey, PendingRequest, PpidKey, ResponseKey, RoundTrips,
        RuleSet, SrcPrefix, TagEntry, NO_RULES, SRC_PREFIX_HEADER_BITS,
    },
    filter::{Filter, Shared, Tags},
};

/// Host twin of the XDP program's rule maps.
pub struct MemFilter<'r> {
    /// Active rule set and generation.
    pub active: (&'r RuleSet, u32),
    /// Source prefixes: key data, prefix length in bits (header included), value.
    pub prefixes: Vec<(SrcPrefix, u32, u32)>,
    pub ppids: BTreeMap<PpidKey, u8>,
    pub tags: BTreeMap<FlowKey, TagEntry>,
    /// Associations met mid-way, paired (`abi::maps::MIDWAY`).
    pub midway: BTreeMap<FlowKey, u32>,
    pub buckets: BTreeMap<AddrKey, Bucket>,
    pub global: Bucket,
    pub message_buckets: BTreeMap<MessageBucketKey, Bucket>,
    /// Diameter requests waiting for their answers, and the answers' response times.
    pub pending: BTreeMap<PendingKey, PendingRequest>,
    pub responses: BTreeMap<ResponseKey, RoundTrips>,
}

impl<'r> MemFilter<'r> {
    #[must_use]
    pub fn new(rules: &'r RuleSet, gen: u32) -> Self {
        Self {
            active: (rules, gen),
            prefixes: Vec::new(),
            ppids: BTreeMap::new(),
            tags: BTreeMap::new(),
            midway: BTreeMap::new(),
            buckets: BTreeMap::new(),
            global: Bucket::default(),
            message_buckets: BTreeMap::new(),
            pending: BTreeMap::new(),
            responses: BTreeMap::new(),
        }
    }
}

impl Default for MemFilter<'_> {
    /// No rules.
    fn default() -> Self {
        Self::new(&NO_RULES, 0)
    }
}

impl Tags for MemFilter<'_> {
    fn tag(&mut self, key: &FlowKey) -> Option<Shared<'_, TagEntry>> {
        self.tags.get_mut(key).map(Shared::exclusive)
    }

    fn midway_partner(&mut self, key: &FlowKey) -> Option<u32> {
        self.midway.get(key).copied()
    }
}

/// Whether the first `bits` bits of `a` and `b` are equal.
fn prefix_eq(a: &[u8], b: &[u8], bits: u32) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || (a[whole] ^ b[whole]) >> (8 - rest) == 0
}

impl<'r> Filter<'r> for MemFilter<'r> {
    fn rules(&mut self) -> (&'r RuleSet, u32) {
        self.active
    }

    fn src_rule(&mut self, gen: u32, family: u32, addr: &[u8; 16]) -> Option<u32> {
        let probe = SrcPrefix::new(gen, family, *addr);
        let probe = bytemuck::bytes_of(&probe);
        self.prefixes
            .iter()
            .filter(|(p, bits, _)| *bits >= SRC_PREFIX_HEADER_BITS && prefix_eq(bytemuck::bytes_of(p), probe, *bits))
            .max_by_key(|(_, bits, _)| *bits)
            .map(|(_, _, v)| *v)
    }

    fn ppid_rule(&mut self, gen: u32, ppid: u32) -> Option<u8> {
        self.ppids.get(&PpidKey { gen, ppid }).copied()
    }

    /// Up to the kernel map's capacity: past it a new tag is not learned (the kernel's
    /// LRU would evict one; a capture of INITs must not take memory without bound).
    fn learn(&mut self, key: &FlowKey, entry: &TagEntry) {
        if self.tags.len() < VTAG_CAPACITY as usize || self.tags.contains_key(key) {
            self.tags.insert(*key, *entry);
        }
    }

    fn forget(&mut self, key: &FlowKey) {
        self.tags.remove(key);
    }

    fn source_bucket(&mut self, src: &AddrKey) -> Option<Shared<'_, Bucket>> {
        Some(Shared::exclusive(self.buckets.entry(*src).or_insert_with(bytemuck::Zeroable::zeroed)))
    }

    fn global_bucket(&mut self) -> Option<Shared<'_, Bucket>> {
        Some(Shared::exclusive(&mut self.global))
    }

    /// Up to the kernel map's capacity; past it every bucket starts over full (the
    /// kernel's LRU forgets the oldest instead): a capture from endless sources cannot take
    /// memory without bound.
    fn message_bucket(&mut self, key: &MessageBucketKey) -> Option<Shared<'_, Bucket>> {
        if self.message_buckets.len() >= MESSAGE_BUCKET_CAPACITY as usize && !self.message_buckets.contains_key(key) {
            self.message_buckets.clear();
        }
        Some(Shared::exclusive(self.message_buckets.entry(*key).or_insert_with(bytemuck::Zeroable::zeroed)))
    }

    /// Up to the kernel map's capacity; past it another request gives way (the kernel's
    /// LRU evicts the least recently used; here the least key, which is cheaper to find).
    fn await_answer(&mut self, key: &PendingKey, request: &PendingRequest) {
        if self.pending.len() >= PENDING_CAPACITY as usize && !self.pending.contains_key(key) {
            self.pending.pop_first();
        }
        self.pending.insert(*key, *request);
    }

    fn take_request(&mut self, key: &PendingKey) -> Option<PendingRequest> {
        self.pending.remove(key)
    }

    /// Up to the kernel map's capacity; past it a new key is not timed.
    fn responses(&mut self, key: &ResponseKey) -> Option<&mut RoundTrips> {
        if self.responses.len() >= RESPONSE_CAPACITY as usize && !self.responses.contains_key(key) {
            return None;
        }
        Some(self.responses.entry(*key).or_default())
    }
}
