//! The walk's scratch state: what crosses the chunk walk through memory, so the verifier
//! reaches the code after it in one state (see [`WalkFindings`]).

use bytemuck::Zeroable as _;

use super::tally::TallyState;
use crate::{
    abi::{Counter, DataEvent, FlowKey, FlowStats, PacketSummary},
    filter::{FirstChunk, Notes},
    proto::chunk::ty,
};

/// What the chunk walk saw that the rules judged after it need, and what crosses the
/// walk: the packet's first chunk, whether rules are active, how the walk ended. The
/// crossing values go through memory with volatile accesses ([`WalkFindings::stash`] and
/// [`WalkFindings::recall`]) so the verifier, which does not track map memory, reaches the code
/// after the walk in one state instead of one per way the walk ended or began.
#[derive(Clone, Copy)]
pub struct WalkFindings {
    pub key: FlowKey,
    pub first: FirstChunk,
    pub now_ns: u64,
    pub active: bool,
    /// How the walk ended early: a `Counter` value, 0 if it did not.
    pub walk_end: u32,
    /// The packet was dropped before the walk (see [`WalkFindings::set_dropped_early`]).
    pub dropped_early: bool,
    /// The global chunk count before the walk: the packet's chunks are the difference.
    pub chunks_before: u64,
    /// Where the chunk walk is (see [`Walk`]).
    pub walk: Walk,
    /// The packet's path slot in its flow (`PATH_SLOTS`: none, beyond them).
    pub path: usize,
    /// User space needs the packet's summary (a control chunk, a new path, a sample).
    pub summary_wanted: bool,
    /// The flow's highest TSN, whether it had one, and its DATA at or below it, before
    /// the packet (see `round_trip::note`).
    pub highest_before: u32,
    pub had_tsn_before: u32,
    pub retx_before: u64,
    /// Where the packet's chunks begin; the same once the walk found its messages are to
    /// be counted after it (see `tally`), else 0.
    pub chunks_at: usize,
    pub tally_from: usize,
    /// The rule-set generation the packet was judged by: its messages are judged by the
    /// same (the count reads the generation word no more).
    pub tally_gen: u32,
    /// What the other direction's flow must do (`round_trip::work` bits), and the TSN
    /// it must time.
    pub peer_work: u32,
    pub peer_tsn: u32,
    /// The DATA event being filled (packet fields first, then each DATA chunk's).
    pub data: DataEvent,
    /// The packet's summary for the association table (header first, then a chunk per
    /// step).
    pub summary: PacketSummary,
    pub notes: Notes,
}

impl WalkFindings {
    #[must_use]
    pub fn new() -> Self {
        Self {
            key: FlowKey { src_port: 0, dst_port: 0, vtag: 0 },
            first: FirstChunk::from_bytes([0; 8], false),
            now_ns: 0,
            active: false,
            walk_end: 0,
            dropped_early: false,
            chunks_before: 0,
            walk: Walk { off: 0, end: 0, first_fragment: false, walking: false },
            path: 0,
            summary_wanted: false,
            highest_before: 0,
            had_tsn_before: 0,
            retx_before: 0,
            chunks_at: 0,
            tally_from: 0,
            tally_gen: 0,
            peer_work: 0,
            peer_tsn: 0,
            data: DataEvent::zeroed(),
            summary: PacketSummary::zeroed(),
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

    /// Whether the packet's first chunk names tags the directory of associations learns
    /// or forgets: INIT-ACK, ABORT, SHUTDOWN-COMPLETE, and INIT where `init_learned` (see
    /// [`crate::filter::learns_init_tags`]): an INIT flood then costs no step after the walk.
    #[inline(always)]
    #[must_use]
    pub fn names_tags(&self, init_learned: bool) -> bool {
        // SAFETY: a read of a field of a live reference.
        let t = unsafe { core::ptr::read_volatile(&raw const self.first.chunk_type) };
        matches!(t, ty::INIT_ACK | ty::ABORT | ty::SHUTDOWN_COMPLETE) || t == ty::INIT && init_learned
    }

    /// Forgets the last packet's first chunk, so that [`WalkFindings::names_tags`] is false until
    /// a packet reaches the walk.
    #[inline(always)]
    pub fn clear_first(&mut self) {
        // SAFETY: a write of a field of a live &mut.
        unsafe { core::ptr::write_volatile(&raw mut self.first.chunk_type, 0) };
    }

    /// Whether the walk met a DATA or I-DATA chunk.
    #[inline(always)]
    #[must_use]
    pub fn carried_data(&self) -> bool {
        self.notes.has(ty::DATA) || self.notes.has(ty::I_DATA)
    }
}

impl WalkFindings {
    /// Chunks in the summary so far. Through memory, volatile, as the walk's position
    /// (see [`Walk`]): the walk takes at most `SUMMARY_CHUNKS` steps, so it stays below.
    #[inline(always)]
    #[must_use]
    pub fn summary_chunks(&self) -> u8 {
        // SAFETY: a read of a field of a live reference.
        unsafe { core::ptr::read_volatile(&raw const self.summary.chunks) }
    }

    #[inline(always)]
    pub fn set_summary_chunks(&mut self, n: u8) {
        // SAFETY: a write of a field of a live &mut.
        unsafe { core::ptr::write_volatile(&raw mut self.summary.chunks, n) };
    }

    /// Completes the summary's header once the packet was judged (the stage before the
    /// walk writes only its length and addresses: more there costs the verifier several
    /// times the work on the multi-buffer variant, measured; the addresses copied here
    /// from the flow are a call to `memmove`, a third stack frame). `flow` holds the
    /// packet's family.
    #[inline(always)]
    pub fn seal_summary(&mut self, flow: &FlowStats, dropped: bool) {
        // Only what it needs of the crossing values (a whole `recall` takes stack).
        // SAFETY: plain reads of fields of a live reference.
        let (now_ns, key) = unsafe {
            (core::ptr::read_volatile(&raw const self.now_ns), core::ptr::read_volatile(&raw const self.key))
        };
        let s = &mut self.summary;
        s.ts_ns = now_ns;
        s.vtag = key.vtag;
        s.src_port = key.src_port;
        s.dst_port = key.dst_port;
        #[expect(clippy::cast_possible_truncation, reason = "4 or 6")]
        let family = flow.family as u8;
        s.family = family;
        s.dropped = u8::from(dropped);
    }
}

/// The chunk walk's position, kept here between its steps: read back from map memory,
/// the offsets are values the verifier knows nothing of but their bounds, so every step
/// reaches it in the same state and is checked once.
#[derive(Clone, Copy)]
pub struct Walk {
    /// Offset of the next chunk.
    pub off: usize,
    /// End of the IP packet.
    pub end: usize,
    /// The packet is a first fragment: its last chunk may be cut.
    pub first_fragment: bool,
    /// The walk has not ended yet.
    pub walking: bool,
}

impl WalkFindings {
    /// The packet's path slot. Through memory, volatile, as the walk's position: a
    /// value the verifier knows only the bounds of, the same at every step.
    #[inline(always)]
    #[must_use]
    pub fn path(&self) -> usize {
        // SAFETY: a read of a field of a live reference.
        unsafe { core::ptr::read_volatile(&raw const self.path) }
    }

    #[inline(always)]
    pub fn set_path(&mut self, slot: usize) {
        // SAFETY: a write of a field of a live &mut.
        unsafe { core::ptr::write_volatile(&raw mut self.path, slot) };
    }

    #[inline(always)]
    #[must_use]
    pub fn summary_wanted(&self) -> bool {
        // SAFETY: a read of a field of a live reference.
        unsafe { core::ptr::read_volatile(&raw const self.summary_wanted) }
    }

    /// Wants the summary if `wanted`, without a branch (each would be a path more for the
    /// verifier through the rest of the step).
    #[inline(always)]
    pub fn want_summary_if(&mut self, wanted: bool) {
        // SAFETY: a read and a write of a field of a live &mut.
        unsafe {
            let now = core::ptr::read_volatile(&raw const self.summary_wanted);
            core::ptr::write_volatile(&raw mut self.summary_wanted, now | wanted);
        }
    }

    #[inline(always)]
    pub fn set_summary_wanted(&mut self, wanted: bool) {
        // SAFETY: a write of a field of a live &mut.
        unsafe { core::ptr::write_volatile(&raw mut self.summary_wanted, wanted) };
    }
}

impl WalkFindings {
    /// Notes the verdict of a packet that did not reach the walk: the stage before the
    /// walk hands it back through memory.
    #[inline(always)]
    pub fn set_dropped_early(&mut self, dropped: bool) {
        // SAFETY: a write of a field of a live &mut.
        unsafe { core::ptr::write_volatile(&raw mut self.dropped_early, dropped) };
    }

    #[inline(always)]
    #[must_use]
    pub fn dropped_early(&self) -> bool {
        // SAFETY: a read of a field of a live reference.
        unsafe { core::ptr::read_volatile(&raw const self.dropped_early) }
    }

    #[inline(always)]
    pub fn set_walk(&mut self, w: Walk) {
        // SAFETY: plain writes to fields of a live &mut.
        unsafe {
            core::ptr::write_volatile(&raw mut self.walk.off, w.off);
            core::ptr::write_volatile(&raw mut self.walk.end, w.end);
            core::ptr::write_volatile(&raw mut self.walk.first_fragment, w.first_fragment);
            core::ptr::write_volatile(&raw mut self.walk.walking, w.walking);
        }
    }

    #[inline(always)]
    #[must_use]
    pub fn walk(&self) -> Walk {
        // Field by field: a volatile read of the whole struct is a byte-wise copy.
        // SAFETY: plain reads of fields of a live reference.
        unsafe {
            Walk {
                off: core::ptr::read_volatile(&raw const self.walk.off),
                end: core::ptr::read_volatile(&raw const self.walk.end),
                first_fragment: core::ptr::read_volatile(&raw const self.walk.first_fragment),
                walking: core::ptr::read_volatile(&raw const self.walk.walking),
            }
        }
    }

    #[inline(always)]
    pub fn set_walk_off(&mut self, off: usize) {
        // SAFETY: as in `set_walk`.
        unsafe { core::ptr::write_volatile(&raw mut self.walk.off, off) };
    }

    #[inline(always)]
    pub fn stop_walk(&mut self) {
        // SAFETY: as in `set_walk`.
        unsafe { core::ptr::write_volatile(&raw mut self.walk.walking, false) };
    }

    /// Notes how the walk ended early (what [`WalkFindings::recall`] gives as `walk_end`).
    #[inline(always)]
    pub fn set_walk_end(&mut self, c: Counter) {
        // SAFETY: as in `set_walk`.
        unsafe { core::ptr::write_volatile(&raw mut self.walk_end, c as u32) };
    }
}

/// What crosses to the round-trip step after the walk (see `round_trip`).
impl WalkFindings {
    /// Notes the flow's TSN state before the packet.
    #[inline(always)]
    pub fn set_before(&mut self, flow: &FlowStats) {
        // SAFETY: plain reads of a live reference, writes to fields of a live &mut.
        unsafe {
            core::ptr::write_volatile(&raw mut self.highest_before, flow.highest_tsn);
            core::ptr::write_volatile(&raw mut self.had_tsn_before, flow.tsn_seen);
            core::ptr::write_volatile(&raw mut self.retx_before, flow.data_at_or_below_highest);
        }
    }

    #[inline(always)]
    #[must_use]
    pub fn before(&self) -> (u32, u32, u64) {
        // SAFETY: plain reads of fields of a live reference.
        unsafe {
            (
                core::ptr::read_volatile(&raw const self.highest_before),
                core::ptr::read_volatile(&raw const self.had_tsn_before),
                core::ptr::read_volatile(&raw const self.retx_before),
            )
        }
    }

    #[inline(always)]
    pub fn set_peer_work(&mut self, work: u32) {
        // SAFETY: a write of a field of a live &mut.
        unsafe { core::ptr::write_volatile(&raw mut self.peer_work, work) };
    }

    #[inline(always)]
    #[must_use]
    pub fn peer_work(&self) -> u32 {
        // SAFETY: a read of a field of a live reference.
        unsafe { core::ptr::read_volatile(&raw const self.peer_work) }
    }

    #[inline(always)]
    pub fn set_peer_tsn(&mut self, tsn: u32) {
        // SAFETY: a write of a field of a live &mut.
        unsafe { core::ptr::write_volatile(&raw mut self.peer_tsn, tsn) };
    }

    /// The packet's key and time ([`WalkCarry`]'s, read alone).
    #[inline(always)]
    #[must_use]
    pub fn key_and_time(&self) -> (FlowKey, u64) {
        // SAFETY: plain reads of fields of a live reference.
        unsafe { (core::ptr::read_volatile(&raw const self.key), core::ptr::read_volatile(&raw const self.now_ns)) }
    }

    #[inline(always)]
    #[must_use]
    pub fn peer_tsn(&self) -> u32 {
        // SAFETY: a read of a field of a live reference.
        unsafe { core::ptr::read_volatile(&raw const self.peer_tsn) }
    }
}

/// What crosses to the message count after the walk (see `tally`).
impl WalkFindings {
    #[inline(always)]
    pub fn set_chunks_at(&mut self, off: usize) {
        // SAFETY: a write of a field of a live &mut.
        unsafe { core::ptr::write_volatile(&raw mut self.chunks_at, off) };
    }

    /// Wants the messages counted after the walk, or not.
    #[inline(always)]
    pub fn set_tally_wanted(&mut self, wanted: bool) {
        // SAFETY: a read and a write of fields of a live &mut.
        unsafe {
            let from = if wanted { core::ptr::read_volatile(&raw const self.chunks_at) } else { 0 };
            core::ptr::write_volatile(&raw mut self.tally_from, from);
        }
    }

    /// Notes the rule-set generation the packet was judged by, for its messages.
    #[inline(always)]
    pub fn set_tally_gen(&mut self, gen: u32) {
        // SAFETY: a write of a field of a live &mut.
        unsafe { core::ptr::write_volatile(&raw mut self.tally_gen, gen) };
    }

    #[inline(always)]
    #[must_use]
    pub fn tally_gen(&self) -> u32 {
        // SAFETY: a read of a field of a live reference.
        unsafe { core::ptr::read_volatile(&raw const self.tally_gen) }
    }

    /// Whether the packet passed with DATA whose messages are counted or judged.
    #[inline(always)]
    #[must_use]
    pub fn tally_wanted(&self) -> bool {
        // SAFETY: a read of a field of a live reference.
        unsafe { core::ptr::read_volatile(&raw const self.tally_from) != 0 }
    }

    /// The message count's start: the packet's chunks, up to the end of the IP packet or
    /// of the frame (`frame_len`), whichever is sooner.
    #[inline(always)]
    #[must_use]
    pub fn tally_start(&self, frame_len: usize) -> TallyState {
        // SAFETY: plain reads of fields of a live reference.
        let (key, off, end, now_ns) = unsafe {
            (
                core::ptr::read_volatile(&raw const self.key),
                core::ptr::read_volatile(&raw const self.tally_from),
                core::ptr::read_volatile(&raw const self.walk.end),
                core::ptr::read_volatile(&raw const self.now_ns),
            )
        };
        TallyState::new(&key, off, end.min(frame_len), now_ns)
    }
}

/// Values that cross the chunk walk (see [`WalkFindings`]).
#[derive(Clone, Copy)]
pub struct WalkCarry {
    pub key: FlowKey,
    pub first: FirstChunk,
    pub active: bool,
    /// The packet's time.
    pub now_ns: u64,
    pub walk_end: u32,
    pub chunks_before: u64,
}

impl WalkFindings {
    #[inline(always)]
    pub fn stash(&mut self, c: WalkCarry) {
        // SAFETY: plain writes to fields of a live &mut.
        unsafe {
            core::ptr::write_volatile(&raw mut self.key, c.key);
            core::ptr::write_volatile(&raw mut self.first, c.first);
            core::ptr::write_volatile(&raw mut self.now_ns, c.now_ns);
            core::ptr::write_volatile(&raw mut self.active, c.active);
            core::ptr::write_volatile(&raw mut self.walk_end, c.walk_end);
            core::ptr::write_volatile(&raw mut self.chunks_before, c.chunks_before);
        }
    }

    /// Whether rules are active for this packet ([`WalkCarry::active`], read alone).
    #[inline(always)]
    #[must_use]
    pub fn rules_active(&self) -> bool {
        // SAFETY: a plain read of a field of a live reference.
        unsafe { core::ptr::read_volatile(&raw const self.active) }
    }

    #[inline(always)]
    #[must_use]
    pub fn recall(&self) -> WalkCarry {
        // SAFETY: plain reads of fields of a live reference.
        unsafe {
            WalkCarry {
                key: core::ptr::read_volatile(&raw const self.key),
                first: core::ptr::read_volatile(&raw const self.first),
                now_ns: core::ptr::read_volatile(&raw const self.now_ns),
                active: core::ptr::read_volatile(&raw const self.active),
                walk_end: core::ptr::read_volatile(&raw const self.walk_end),
                chunks_before: core::ptr::read_volatile(&raw const self.chunks_before),
            }
        }
    }
}

impl Default for WalkFindings {
    fn default() -> Self {
        Self::new()
    }
}
