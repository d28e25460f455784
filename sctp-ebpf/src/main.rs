//! The XDP program (and its TC egress companion). It only binds the parser core and the
//! rules in `sctp-common` to the kernel: packet reads, the maps, the clock. All parsing
//! and judging logic lives in the core. Every map is named by its static (the names,
//! kinds and capacities are `sctp_common::abi::maps`, checked against this object by a
//! host test).
// Built for bpf; `cargo clippy --workspace` also checks it on the host, where std is
// linked in and a `main` is needed.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![expect(clippy::inline_always, reason = "one verified function: see sctp-common's crate attribute")]

use aya_ebpf::{
    bindings::{__sk_buff, xdp_action, xdp_md, BPF_F_NO_COMMON_LRU, BPF_NOEXIST, BPF_RB_NO_WAKEUP, TC_ACT_OK},
    helpers::{
        bpf_jiffies64, bpf_ktime_get_coarse_ns, bpf_ktime_get_ns, bpf_loop, bpf_skb_load_bytes, bpf_xdp_get_buff_len,
        bpf_xdp_load_bytes,
    },
    macros::{classifier, map, xdp},
    maps::{lpm_trie::Key, Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use sctp_common::{
    abi::{
        maps::{
            events, CONFIG_EVENTS, CONFIG_GENERATION, CONFIG_SLOTS, DATA_EVENTS_BYTES, FLOW_CAPACITY,
            INIT_BUCKET_CAPACITY, MIDWAY_CAPACITY, PACKET_EVENTS_BYTES, PPID_CAPACITY, SRC_PREFIX_CAPACITY,
            VTAG_CAPACITY,
        },
        AddrKey, Bucket, Counter, DataEvent, FlowKey, FlowStats, GlobalStats, PacketSummary, PpidKey, RuleSet,
        SrcPrefix, TagEntry, EGRESS, GENERATIONS, INGRESS, NO_RULES, SRC_PREFIX_HEADER_BITS,
    },
    filter::{handshake_completed, learns_init_tags, Filter, FirstChunk, Shared, Tags},
    parse::{learn_tags, process, round_trip, Bytes, DataSink, Packet, Seen, Verdict, MAX_CHUNKS, MAX_OFFSET},
};

/// Global counters (one slot, per CPU).
#[map]
static GLOBAL: PerCpuArray<GlobalStats> = PerCpuArray::with_max_entries(1, 0);

/// The association directions of the packets arriving (per flow: ports and tag), one
/// value shared by every CPU (see `FlowStats`). LRU so a flood of new tags evicts old
/// flows instead of failing, with an LRU list per CPU (no lock shared by every CPU on
/// each new flow); how fast flows of unknown associations may be made is bounded (see
/// `NEW_FLOW_BUCKET`). User space may resize it at load time.
#[map]
static FLOWS: LruHashMap<FlowKey, FlowStats> = LruHashMap::with_max_entries(FLOW_CAPACITY, BPF_F_NO_COMMON_LRU);

/// Per CPU, the tokens for flows of associations whose handshake was not seen to
/// complete (see `abi::maps::NEW_FLOW_BUCKET`).
#[map]
static NEW_FLOW_BUCKET: PerCpuArray<Bucket> = PerCpuArray::with_max_entries(1, 0);

/// Flows of unknown associations one CPU may make a second, after a burst of
/// `PROVISIONAL_FLOW_BURST`; 0: no bound (set by user space before loading: replaying a
/// capture, every flow is counted). Read-only, as `COARSE_CLOCK`.
#[no_mangle]
static PROVISIONAL_FLOW_RATE: u32 = 0;
#[no_mangle]
static PROVISIONAL_FLOW_BURST: u32 = 0;

/// An all-zero `FlowStats` to insert new flows from (too big for the 512-byte stack).
#[map]
static ZERO_FLOW: PerCpuArray<FlowStats> = PerCpuArray::with_max_entries(1, 0);

/// DATA / I-DATA chunks for user space's join, written only while the `CONFIG_EVENTS` slot is non-zero.
#[map]
static DATA_EVENTS: RingBuf = RingBuf::with_byte_size(DATA_EVENTS_BYTES, 0);

/// A summary of each SCTP packet walked, for user space's association table, written only
/// while the `CONFIG_EVENTS` slot has `events::PACKETS`.
#[map]
static PACKET_EVENTS: RingBuf = RingBuf::with_byte_size(PACKET_EVENTS_BYTES, 0);

/// Summaries `PACKET_EVENTS` had no room for (user space reports them: its association
/// counts then miss packets).
#[map]
static PACKET_EVENTS_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// DATA events and withdrawals `DATA_EVENTS` had no room for (user space reports them: a
/// lost withdrawal counts dropped DATA as delivered, a lost event leaves a message
/// unmatched).
#[map]
static DATA_EVENTS_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Settings from user space: which events to record, and the active rule-set
/// generation, flipped by user space after it filled the other one.
#[map]
static CONFIG: Array<u32> = Array::with_max_entries(CONFIG_SLOTS, 0);

/// The two rule-set generations.
#[map]
static RULES: Array<RuleSet> = Array::with_max_entries(GENERATIONS, 0);

/// `deny-src` / `allow-src` prefixes of both generations: value = allow bit | rule id.
#[map]
static SRC_RULES: LpmTrie<SrcPrefix, u32> = LpmTrie::with_max_entries(SRC_PREFIX_CAPACITY, 0);

/// `deny-ppid` PPIDs of both generations: value = rule id.
#[map]
static PPID_RULES: HashMap<PpidKey, u32> = HashMap::with_max_entries(PPID_CAPACITY, 0);

/// Verification tags of live associations (`validate-vtag`). Shared by every CPU and by
/// the egress program; LRU so a flood of handshakes cannot fill it for good.
#[map]
static VTAGS: LruHashMap<FlowKey, TagEntry> = LruHashMap::with_max_entries(VTAG_CAPACITY, 0);

/// Associations met mid-way, paired by user space: `abi::maps::MIDWAY`.
#[map]
static MIDWAY: LruHashMap<FlowKey, u32> = LruHashMap::with_max_entries(MIDWAY_CAPACITY, 0);

/// INIT token bucket per source address (`init-rate`).
#[map]
static INIT_BUCKETS: LruHashMap<AddrKey, Bucket> = LruHashMap::with_max_entries(INIT_BUCKET_CAPACITY, 0);

/// The INIT token bucket of all sources together (`global-init-rate`).
#[map]
static GLOBAL_BUCKET: Array<Bucket> = Array::with_max_entries(1, 0);

/// Scratch space for the chunk walk's notes (see `sctp_common::parse::process`).
#[map]
static SEEN: PerCpuArray<Seen> = PerCpuArray::with_max_entries(1, 0);

/// A new source's INIT bucket (full: it was never refilled).
static NEW_BUCKET: Bucket = Bucket { nano_tokens: 0, last_ns: 0 };

/// The rules' maps, as `sctp_common::filter` asks for them.
struct KernelFilter {
    rules: &'static RuleSet,
    gen: u32,
}

impl KernelFilter {
    /// The active generation's rules, read once per packet: everything after judges by
    /// this generation only.
    #[inline(always)]
    fn load() -> Option<Self> {
        let gen = *CONFIG.get(CONFIG_GENERATION)? & 1;
        Some(Self { rules: RULES.get(gen)?, gen })
    }
}

/// The directory of associations (`VTAGS`), learned from every handshake that passed.
struct Directory;

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
fn directory_entry(key: &FlowKey) -> Option<Shared<'static, TagEntry>> {
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
        if INIT_BUCKETS.get_ptr_mut(src).is_none() {
            // From a static, not a zeroed temporary: the compiler makes that a call to
            // `memset`, a frame older verifiers add to the program's (over 512 bytes).
            #[expect(
                clippy::needless_borrows_for_generic_args,
                reason = "by value, the static is copied to a zeroed temporary: the memset again"
            )]
            let _ = INIT_BUCKETS.insert(src, &NEW_BUCKET, u64::from(BPF_NOEXIST));
        }
        // SAFETY: a map value stays valid while the program runs.
        INIT_BUCKETS.get_ptr_mut(src).map(|p| unsafe { Shared::new(p) })
    }

    #[inline(always)]
    fn global_bucket(&mut self) -> Option<Shared<'_, Bucket>> {
        // SAFETY: as above.
        GLOBAL_BUCKET.get_ptr_mut(0).map(|p| unsafe { Shared::new(p) })
    }
}

/// Non-zero where the kernel has `bpf_ktime_get_coarse_ns` (5.11 and later): set by user
/// space before loading. A read-only global, so the verifier knows its value and never
/// visits the branch a kernel cannot run.
#[no_mangle]
static COARSE_CLOCK: u8 = 0;

/// Non-zero when loaded to replay a capture: the clock is then `REPLAY_CLOCK`, the
/// capture time user space writes before each frame. Read-only, so a live program has no
/// trace of it after verification.
#[no_mangle]
static REPLAY: u8 = 0;

/// The capture time of the frame being replayed.
#[map]
static REPLAY_CLOCK: Array<u64> = Array::with_max_entries(1, 0);

/// The replay clock, when loaded for replay.
#[inline(always)]
fn replay_now() -> Option<u64> {
    // SAFETY: a read of our own global.
    if unsafe { core::ptr::read_volatile(&raw const REPLAY) } == 0 {
        return None;
    }
    Some(REPLAY_CLOCK.get(0).copied().unwrap_or(0))
}

/// See `abi::maps::TICK_CLOCK`: [tick, coarse clock].
#[map]
static TICK_CLOCK: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);

/// The clock of flow ages and of the time-based rules (learning window, idle tags, INIT
/// rates): the coarse monotonic clock where the kernel has it, a tick's precision being
/// plenty there and the precise clock costing tens of nanoseconds per packet on some
/// machines. Even the coarse clock is a helper call (some 20 ns a packet, measured by
/// the bench's floor ladder): it is read once a tick per CPU, when `bpf_jiffies64`
/// (inlined by the kernel into a load) says the tick moved, and kept in `TICK_CLOCK`.
#[inline(always)]
fn coarse_now() -> u64 {
    if let Some(now) = replay_now() {
        return now;
    }
    // SAFETY: a read of our own global; helpers without preconditions; `TICK_CLOCK`'s
    // value is this CPU's, used by nothing else during the run.
    unsafe {
        if core::ptr::read_volatile(&raw const COARSE_CLOCK) == 0 {
            return bpf_ktime_get_ns();
        }
        let tick = bpf_jiffies64();
        let Some(cached) = TICK_CLOCK.get_ptr_mut(0) else {
            return bpf_ktime_get_coarse_ns();
        };
        let cached = &mut *cached;
        if cached[0] != tick || cached[1] == 0 {
            *cached = [tick, bpf_ktime_get_coarse_ns()];
        }
        cached[1]
    }
}

/// Pushes DATA events and packet summaries to their ring buffers; a full buffer drops the
/// event (user space counts what it receives of DATA events, so a gap shows as unmatched
/// messages; lost summaries are counted in `PACKET_EVENTS_LOST`). No wake-up per event:
/// user space drains on a timer, which costs far less than a wake-up per packet. Events
/// carry the precise clock (the join's wire-to-application latency, round trips): read
/// once per packet when DATA events are on, else only for a summary sent (most packets
/// send none, and the clock costs some 20 ns).
/// `DIRECTION`: `INGRESS` or `EGRESS`.
struct RingSink<const DIRECTION: u8> {
    data: bool,
    packets: bool,
    /// The interface of the packet, for the summary.
    ifindex: u32,
    /// The precise time of this packet (read only when DATA events are on).
    precise_ns: u64,
}

impl<const DIRECTION: u8> RingSink<DIRECTION> {
    /// The events user space asked for (DATA events only of packets arriving: the join
    /// pairs them with what the application received).
    #[inline(always)]
    fn load(ifindex: u32) -> Self {
        let wanted = CONFIG.get(CONFIG_EVENTS).copied().unwrap_or(0);
        let data = wanted & events::DATA != 0 && DIRECTION == INGRESS;
        let packets = wanted & events::PACKETS != 0;
        Self { data, packets, ifindex, precise_ns: if data { precise_now() } else { 0 } }
    }
}

/// The precise clock (the replay clock in a replay).
#[inline(always)]
fn precise_now() -> u64 {
    // SAFETY: a helper without preconditions.
    replay_now().unwrap_or_else(|| unsafe { bpf_ktime_get_ns() })
}

impl<const DIRECTION: u8> DataSink for RingSink<DIRECTION> {
    #[inline(always)]
    fn wants_data(&self) -> bool {
        self.data
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        self.ifindex
    }

    #[inline(always)]
    fn data(&mut self, ev: &DataEvent) {
        if let Some(mut entry) = DATA_EVENTS.reserve::<DataEvent>(0) {
            // Written in place: no copy of the event on the 512-byte stack.
            let p = entry.as_mut_ptr();
            // SAFETY: a reserved, exclusively owned slot of the size of a DataEvent.
            unsafe {
                p.write(*ev);
                (*p).ts_ns = self.precise_ns;
            }
            entry.submit(u64::from(BPF_RB_NO_WAKEUP));
        } else {
            count_lost(&DATA_EVENTS_LOST);
        }
    }

    #[inline(always)]
    fn wants_summaries(&self) -> bool {
        self.packets
    }

    #[inline(always)]
    fn packet(&mut self, summary: &mut PacketSummary) {
        summary.ts_ns = if self.data { self.precise_ns } else { precise_now() };
        summary.direction = DIRECTION;
        summary.ifindex = self.ifindex;
        send_summary(summary);
    }
}

/// Copies the summary up to its last chunk into `PACKET_EVENTS` (one helper call, from the
/// scratch map's memory), or counts it lost.
#[inline(always)]
fn send_summary(summary: &PacketSummary) {
    // SAFETY: a field of a live reference.
    let chunks = unsafe { core::ptr::read_volatile(&raw const summary.chunks) };
    let len = PacketSummary::used_len(usize::from(chunks));
    // SAFETY: `used_len` is at most the summary's size.
    let bytes = unsafe { core::slice::from_raw_parts(core::ptr::from_ref(summary).cast::<u8>(), len) };
    if PACKET_EVENTS.output::<[u8]>(bytes, u64::from(BPF_RB_NO_WAKEUP)).is_err() {
        count_lost(&PACKET_EVENTS_LOST);
    }
}

/// Counts an event a full ring had no room for.
#[inline(always)]
fn count_lost(lost: &PerCpuArray<u64>) {
    if let Some(n) = lost.get_ptr_mut(0) {
        // SAFETY: this CPU's slot, valid for the run.
        unsafe { *n += 1 };
    }
}

/// One u64 per CPU that walk offsets pass through (see `Packet::launder`).
#[map]
static CURSOR: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Largest offset read directly from XDP's linear data: the verifier allows direct packet
/// access below 64 KiB only, and the linear part is at most a page anyway.
const MAX_DIRECT_OFFSET: usize = 0x3fff;

/// XDP's packet. Linear (`FRAGS` false): read directly, bounds checked against
/// `data_end`. Multi-buffer (`FRAGS`): every read through `bpf_xdp_load_bytes`, which
/// sees the fragments too; one kind of read keeps the verifier's work to one path per
/// read (direct reads with a helper fallback double it past the verifier's limit), at the
/// price of a helper call per read, paid only where user space loads this variant.
///
/// `KERNEL_LOOP`: the chunk walk runs under `bpf_loop` (kernels >= 5.17), whose callback
/// the verifier checks once; without it the walk is a bounded loop, checked once per
/// iteration (about seven times the instructions).
///
/// Its fields are as few as can be: they live in the program's own frame, which counts
/// against the stack with the walk's (on 6.1 the multi-buffer variant has no byte left).
struct XdpPacket<const FRAGS: bool, const KERNEL_LOOP: bool> {
    ctx: *mut xdp_md,
    /// The linear data, `data` to `data_end`; multi-buffer: 0 to the whole frame's length,
    /// fragments included.
    start: usize,
    end: usize,
    cursor: *mut u64,
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "offsets are below MAX_OFFSET and reads a few bytes long; the bpf target is 64-bit"
)]
impl<const FRAGS: bool, const KERNEL_LOOP: bool> Packet for XdpPacket<FRAGS, KERNEL_LOOP> {
    #[inline(always)]
    fn read<const N: usize>(&self, off: usize) -> Option<Bytes<N>> {
        if FRAGS {
            // SAFETY: the helper copies from the whole buffer (linear part and fragments).
            return copied(off, self.end, |at, to, n| unsafe { bpf_xdp_load_bytes(self.ctx, at, to, n) });
        }
        // The linear data is at most a page: offsets past MAX_DIRECT_OFFSET are outside,
        // and `launder` keeps every offset a bounded scalar below it.
        if off > MAX_DIRECT_OFFSET || self.start + off + N > self.end {
            return None;
        }
        // SAFETY: [start + off, + N) was checked to lie inside the linear data just above.
        Some(Bytes(unsafe { core::ptr::read_unaligned((self.start + off) as *const [u8; N]) }))
    }

    #[inline(always)]
    fn frame_len(&self) -> usize {
        self.end - self.start
    }

    #[inline(always)]
    fn repeat<F: FnMut() -> bool>(&self, n: u32, step: F) {
        repeat_steps::<KERNEL_LOOP, F>(n, step);
    }

    #[inline(always)]
    fn outline<T, F: FnOnce() -> T>(&self, f: F) -> T {
        outlined(f)
    }

    #[inline(always)]
    fn bound(&self, off: usize) -> usize {
        // The linear variant keeps offsets below 16 KiB, which direct packet access
        // needs; the multi-buffer one reads through the helper.
        let max = if FRAGS { MAX_OFFSET } else { MAX_DIRECT_OFFSET };
        off.min(max + 1)
    }

    #[inline(always)]
    fn launder(&self, off: usize) -> usize {
        // Each bound is covered by its mask; the compiler cannot drop the mask, not knowing
        // what the load returns.
        let mask = if FRAGS { 0x3_ffff } else { 0x7fff };
        let clamped = self.bound(off);
        // SAFETY: `cursor` is this CPU's slot of CURSOR, valid for the program's run.
        // Volatile, so the compiler keeps the round trip that the verifier must see.
        unsafe {
            core::ptr::write_volatile(self.cursor, clamped as u64);
            (core::ptr::read_volatile(self.cursor) & mask) as usize
        }
    }
}

/// The chunk walk's loop (see `Packet::repeat`): `bpf_loop` with `KERNEL_LOOP`, one step
/// per call of its callback (see `STEPS_PER_CALL`), else a bounded loop of BPF-to-BPF
/// calls (each step's paths end at the call's return in one state, so the verifier checks
/// the step once per iteration, not once per path through the steps before it).
#[inline(always)]
fn repeat_steps<const KERNEL_LOOP: bool, F: FnMut() -> bool>(n: u32, mut step: F) {
    if !KERNEL_LOOP {
        for _ in 0..n {
            if !outlined(&mut step) {
                break;
            }
        }
        return;
    }
    let (calls, callback) = (n / STEPS_PER_CALL, loop_step::<F, STEPS_PER_CALL> as *mut core::ffi::c_void);
    // SAFETY: the callback gets back the pointer to `step`, which outlives the call.
    unsafe {
        bpf_loop(calls, callback, (&raw mut step).cast(), 0);
    }
}

/// The `N` bytes at `off` of a packet `len` bytes long, copied by `copy(off, to, N)`, a
/// helper that copies from the packet (`bpf_xdp_load_bytes`, `bpf_skb_load_bytes`).
#[inline(always)]
#[expect(clippy::cast_possible_truncation, reason = "offsets are below MAX_OFFSET and reads a few bytes long")]
fn copied<const N: usize>(
    off: usize,
    len: usize,
    copy: impl FnOnce(u32, *mut core::ffi::c_void, u32) -> i64,
) -> Option<Bytes<N>> {
    if off > MAX_OFFSET || off + N > len {
        return None;
    }
    // Not zeroed first: the compiler makes that a call to `memset`, a BPF-to-BPF call
    // whose frame 6.1's verifier adds to the program's 496 bytes (refused).
    let mut buf = core::mem::MaybeUninit::<Bytes<N>>::uninit();
    // Inside the packet, as checked above, the copy cannot fail. (Its result is not
    // tested: a `None` after a helper call leaves the compiler a register it may store
    // undefined, which the verifier refuses.)
    copy(off as u32, buf.as_mut_ptr().cast(), N as u32);
    // SAFETY: written whole by the helper just above.
    Some(unsafe { buf.assume_init() })
}

/// A BPF-to-BPF call: a stack frame of its own (see `Packet::outline`).
#[inline(never)]
fn outlined<T, F: FnOnce() -> T>(f: F) -> T {
    f()
}

/// Steps of the walk per call of `bpf_loop`'s callback. Each call costs some 4 ns a chunk
/// (eight bundled DATA chunks: 235 ns above the empty program at one, 225 at two), but
/// the verifier's work grows faster than the steps per call: 6.18.44 processes the
/// linear program in 61,510 instructions at one and 162,994 at two (before fields were
/// read whole: 86,604 at one, 187,491 at two and 570,570 at four). The walk's step count
/// (`MAX_CHUNKS`) is a multiple of it.
const STEPS_PER_CALL: u32 = 1;
const _: () = assert!(MAX_CHUNKS.is_multiple_of(STEPS_PER_CALL as usize));

/// `bpf_loop`'s callback: `STEPS` steps of the walk (a function of its own, verified
/// once).
extern "C" fn loop_step<F: FnMut() -> bool, const STEPS: u32>(_index: u64, step: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `repeat` passes a pointer to its live `F`, used by nothing else meanwhile.
    let step = unsafe { &mut *step.cast::<F>() };
    for _ in 0..STEPS {
        if !step() {
            return 1;
        }
    }
    0
}

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

/// The scratch of the packet just walked: arriving (`SEEN`) or leaving (`EGRESS_SEEN`).
#[inline(always)]
fn walked<const ARRIVING: bool>() -> Option<&'static Seen> {
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

/// Counters of the packets leaving, as `GLOBAL` of those arriving.
#[map]
static EGRESS_GLOBAL: PerCpuArray<GlobalStats> = PerCpuArray::with_max_entries(1, 0);

/// Flows of the packets leaving, as `FLOWS` of those arriving.
#[map]
static EGRESS_FLOWS: LruHashMap<FlowKey, FlowStats> = LruHashMap::with_max_entries(FLOW_CAPACITY, BPF_F_NO_COMMON_LRU);

/// The egress program's walk scratch: its own, as XDP could run between its steps.
#[map]
static EGRESS_SEEN: PerCpuArray<Seen> = PerCpuArray::with_max_entries(1, 0);

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
    let _ = process(pkt, stats, clock, egress_flow, &mut sink, &mut NoRules, seen);
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

/// No rules: what the egress program judges by (it counts and drops nothing).
struct NoRules;

impl Tags for NoRules {
    #[inline(always)]
    fn tag(&mut self, _: &FlowKey) -> Option<Shared<'_, TagEntry>> {
        None
    }
}

impl Filter<'static> for NoRules {
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
}

/// A socket buffer, read with `bpf_skb_load_bytes` (works on non-linear buffers too).
/// `KERNEL_LOOP` as for `XdpPacket`.
struct SkbPacket<const KERNEL_LOOP: bool> {
    skb: *mut __sk_buff,
    /// Its length, non-linear part included.
    len: usize,
}

impl<const KERNEL_LOOP: bool> Packet for SkbPacket<KERNEL_LOOP> {
    #[inline(always)]
    fn read<const N: usize>(&self, off: usize) -> Option<Bytes<N>> {
        // SAFETY: the helper copies from the socket buffer, linear part or not.
        copied(off, self.len, |at, to, n| unsafe { bpf_skb_load_bytes(self.skb.cast(), at, to, n) })
    }

    #[inline(always)]
    fn frame_len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn repeat<F: FnMut() -> bool>(&self, n: u32, step: F) {
        repeat_steps::<KERNEL_LOOP, F>(n, step);
    }

    #[inline(always)]
    fn outline<T, F: FnOnce() -> T>(&self, f: F) -> T {
        outlined(f)
    }
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 4] = *b"GPL\0";

#[cfg(not(target_arch = "bpf"))]
fn main() {}
