//! The rules and the directory of associations as the parser core sees them: the kernel's
//! maps behind `sctp_common::filter`'s traits (and no rules at all for the packets leaving).

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    maps::{lpm_trie::Key, LruHashMap},
};
use sctp_common::{
    abi::{
        maps::CONFIG_GENERATION, AddrKey, Bucket, FlowKey, MessageBucketKey, PendingKey, PendingRequest, PpidKey,
        ResponseKey, RoundTrips, RuleSet, SrcPrefix, TagEntry, NO_RULES, SRC_PREFIX_HEADER_BITS,
    },
    filter::{Filter, Shared, Tags},
};

use crate::maps::{
    CONFIG, GLOBAL_BUCKET, INIT_BUCKETS, MESSAGE_BUCKETS, MIDWAY, PENDING, PPID_RULES, RESPONSES, RULES, SRC_RULES,
    VTAGS,
};

/// A new source's INIT bucket (full: it was never refilled).
pub(crate) static NEW_BUCKET: Bucket = Bucket { nano_tokens: 0, last_ns: 0 };

/// The rules' maps, as `sctp_common::filter` asks for them.
pub(crate) struct KernelFilter {
    rules: &'static RuleSet,
    gen: u32,
}

impl KernelFilter {
    /// The active generation's rules, read once per packet: everything after judges by
    /// this generation only.
    #[inline(always)]
    pub(crate) fn load() -> Option<Self> {
        Self::of_generation(*CONFIG.get(CONFIG_GENERATION)?)
    }

    /// The rules of generation `gen`: those a packet was judged by before a tail call.
    #[inline(always)]
    pub(crate) fn of_generation(gen: u32) -> Option<Self> {
        let gen = gen & 1;
        Some(Self { rules: RULES.get(gen)?, gen })
    }
}

/// The directory of associations (`VTAGS`), learned from every handshake that passed.
pub(crate) struct Directory;

impl Tags for Directory {
    #[inline(always)]
    fn tag(&mut self, key: &FlowKey) -> Option<Shared<'_, TagEntry>> {
        directory_entry(key)
    }

    #[inline(always)]
    fn midway_partner(&mut self, key: &FlowKey) -> Option<u32> {
        // SAFETY: a plain u32 value, read once.
        unsafe { MIDWAY.get(key) }.copied()
    }
}

impl Tags for KernelFilter {
    #[inline(always)]
    fn tag(&mut self, key: &FlowKey) -> Option<Shared<'_, TagEntry>> {
        directory_entry(key)
    }
}

#[inline(always)]
pub(crate) fn directory_entry(key: &FlowKey) -> Option<Shared<'static, TagEntry>> {
    // SAFETY: a map value stays valid while the program runs.
    VTAGS.get_ptr_mut(key).map(|p| unsafe { Shared::new(p) })
}

impl Filter<'static> for KernelFilter {
    #[inline(always)]
    fn rules(&mut self) -> (&'static RuleSet, u32) {
        (self.rules, self.gen)
    }

    #[inline(always)]
    fn src_rule(&mut self, gen: u32, family: u32, addr: &[u8; 16]) -> Option<u32> {
        let data = SrcPrefix::new(gen, family, *addr);
        SRC_RULES.get(Key::new(SRC_PREFIX_HEADER_BITS + 128, data)).copied()
    }

    #[inline(always)]
    fn ppid_rule(&mut self, gen: u32, ppid: u32) -> Option<u8> {
        // SAFETY: a plain u32 value, read once.
        unsafe { PPID_RULES.get(PpidKey { gen, ppid }) }.and_then(|id| u8::try_from(*id).ok())
    }

    #[inline(always)]
    fn learn(&mut self, key: &FlowKey, entry: &TagEntry) {
        let _ = VTAGS.insert(key, entry, 0);
    }

    #[inline(always)]
    fn forget(&mut self, key: &FlowKey) {
        let _ = VTAGS.remove(key);
    }

    #[inline(always)]
    fn source_bucket(&mut self, src: &AddrKey) -> Option<Shared<'_, Bucket>> {
        bucket_in(&INIT_BUCKETS, src)
    }

    #[inline(always)]
    fn global_bucket(&mut self) -> Option<Shared<'_, Bucket>> {
        // SAFETY: a map value stays valid while the program runs.
        GLOBAL_BUCKET.get_ptr_mut(0).map(|p| unsafe { Shared::new(p) })
    }

    #[inline(always)]
    fn message_bucket(&mut self, key: &MessageBucketKey) -> Option<Shared<'_, Bucket>> {
        bucket_in(&MESSAGE_BUCKETS, key)
    }

    #[inline(always)]
    fn await_answer(&mut self, key: &PendingKey, request: &PendingRequest) {
        await_answer(key, request);
    }

    #[inline(always)]
    fn take_request(&mut self, key: &PendingKey) -> Option<PendingRequest> {
        take_request(key)
    }

    #[inline(always)]
    fn responses(&mut self, key: &ResponseKey) -> Option<&mut RoundTrips> {
        responses(key)
    }
}

/// The Diameter matches of both programs, arriving and leaving, in one pair of maps: a
/// request may arrive by XDP and its answer leave by TC.
#[inline(always)]
fn await_answer(key: &PendingKey, request: &PendingRequest) {
    let _ = PENDING.insert(key, request, 0);
}

#[inline(always)]
fn take_request(key: &PendingKey) -> Option<PendingRequest> {
    // SAFETY: a plain value, copied out at once.
    let request = unsafe { PENDING.get(key) }.copied()?;
    let _ = PENDING.remove(key);
    Some(request)
}

/// No response yet (from a static, as `NEW_BUCKET`).
static NO_RESPONSES: RoundTrips =
    RoundTrips { count: 0, sum_ns: 0, min_ns: 0, max_ns: 0, buckets: [0; sctp_common::abi::RTT_BUCKETS] };

#[inline(always)]
fn responses(key: &ResponseKey) -> Option<&'static mut RoundTrips> {
    if RESPONSES.get_ptr_mut(key).is_none() {
        #[expect(
            clippy::needless_borrows_for_generic_args,
            reason = "by value, the static is copied to a zeroed temporary (see `bucket_in`)"
        )]
        let _ = RESPONSES.insert(key, &NO_RESPONSES, u64::from(BPF_NOEXIST));
    }
    // SAFETY: a map value, valid for the run. Other CPUs may add to it at once (see
    // `Filter::responses`), as to a flow's counters.
    RESPONSES.get_ptr_mut(key).map(|p| unsafe { &mut *p })
}

/// The bucket of `key` in `buckets`, made full if new.
#[inline(always)]
fn bucket_in<K>(buckets: &LruHashMap<K, Bucket>, key: &K) -> Option<Shared<'static, Bucket>> {
    if buckets.get_ptr_mut(key).is_none() {
        // From a static, not a zeroed temporary: the compiler makes that a call to
        // `memset`, a frame older verifiers add to the program's (over 512 bytes).
        #[expect(
            clippy::needless_borrows_for_generic_args,
            reason = "by value, the static is copied to a zeroed temporary: the memset again"
        )]
        let _ = buckets.insert(key, &NEW_BUCKET, u64::from(BPF_NOEXIST));
    }
    // SAFETY: a map value stays valid while the program runs.
    buckets.get_ptr_mut(key).map(|p| unsafe { Shared::new(p) })
}

/// No rules: what the egress program judges by (it counts and drops nothing). Its walk
/// sees no directory (`NoRules<false>`); its message count (`NoRules<true>`) sees the
/// directory, which says whether a Diameter request leaving waits for its answer.
pub(crate) struct NoRules<const DIRECTORY: bool>;

impl<const DIRECTORY: bool> Tags for NoRules<DIRECTORY> {
    #[inline(always)]
    fn tag(&mut self, key: &FlowKey) -> Option<Shared<'_, TagEntry>> {
        if DIRECTORY {
            directory_entry(key)
        } else {
            None
        }
    }
}

impl<const DIRECTORY: bool> Filter<'static> for NoRules<DIRECTORY> {
    #[inline(always)]
    fn rules(&mut self) -> (&'static RuleSet, u32) {
        (&NO_RULES, 0)
    }

    #[inline(always)]
    fn src_rule(&mut self, _: u32, _: u32, _: &[u8; 16]) -> Option<u32> {
        None
    }

    #[inline(always)]
    fn ppid_rule(&mut self, _: u32, _: u32) -> Option<u8> {
        None
    }

    #[inline(always)]
    fn learn(&mut self, _: &FlowKey, _: &TagEntry) {}

    #[inline(always)]
    fn forget(&mut self, _: &FlowKey) {}

    #[inline(always)]
    fn source_bucket(&mut self, _: &AddrKey) -> Option<Shared<'_, Bucket>> {
        None
    }

    #[inline(always)]
    fn global_bucket(&mut self) -> Option<Shared<'_, Bucket>> {
        None
    }

    #[inline(always)]
    fn message_bucket(&mut self, _: &MessageBucketKey) -> Option<Shared<'_, Bucket>> {
        None
    }

    #[inline(always)]
    fn await_answer(&mut self, key: &PendingKey, request: &PendingRequest) {
        await_answer(key, request);
    }

    #[inline(always)]
    fn take_request(&mut self, key: &PendingKey) -> Option<PendingRequest> {
        take_request(key)
    }

    #[inline(always)]
    fn responses(&mut self, key: &ResponseKey) -> Option<&mut RoundTrips> {
        responses(key)
    }
}
