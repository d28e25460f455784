//! Packet readers: the XDP frame (linear, or multi-buffer) and the socket buffer of the
//! packets leaving, behind `sctp_common::parse::Packet`; and the way the walk repeats its
//! steps (`bpf_loop`, or a bounded loop where the kernel has none).

use aya_ebpf::{
    bindings::{__sk_buff, xdp_md},
    helpers::{bpf_loop, bpf_skb_load_bytes, bpf_xdp_load_bytes},
};
use sctp_common::parse::{Bytes, Packet, MAX_CHUNKS, MAX_OFFSET};

/// Largest offset read directly from XDP's linear data: the verifier allows direct packet
/// access below 64 KiB only, and the linear part is at most a page anyway.
pub(crate) const MAX_DIRECT_OFFSET: usize = 0x3fff;

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
pub(crate) struct XdpPacket<const FRAGS: bool, const KERNEL_LOOP: bool> {
    pub(crate) ctx: *mut xdp_md,
    /// The linear data, `data` to `data_end`; multi-buffer: 0 to the whole frame's length,
    /// fragments included.
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) cursor: *mut u64,
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
pub(crate) fn repeat_steps<const KERNEL_LOOP: bool, F: FnMut() -> bool>(n: u32, mut step: F) {
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
pub(crate) fn copied<const N: usize>(
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
pub(crate) fn outlined<T, F: FnOnce() -> T>(f: F) -> T {
    f()
}

/// Steps of the walk per call of `bpf_loop`'s callback. Each call costs some 4 ns a chunk
/// (eight bundled DATA chunks: 235 ns above the empty program at one, 225 at two), but
/// the verifier's work grows faster than the steps per call: 6.18.44 processes the
/// linear program in 61,510 instructions at one and 162,994 at two (before fields were
/// read whole: 86,604 at one, 187,491 at two and 570,570 at four). The walk's step count
/// (`MAX_CHUNKS`) is a multiple of it.
pub(crate) const STEPS_PER_CALL: u32 = 1;

const _: () = assert!(MAX_CHUNKS.is_multiple_of(STEPS_PER_CALL as usize));

/// `bpf_loop`'s callback: `STEPS` steps of the walk (a function of its own, verified
/// once).
pub(crate) extern "C" fn loop_step<F: FnMut() -> bool, const STEPS: u32>(
    _index: u64,
    step: *mut core::ffi::c_void,
) -> i64 {
    // SAFETY: `repeat` passes a pointer to its live `F`, used by nothing else meanwhile.
    let step = unsafe { &mut *step.cast::<F>() };
    for _ in 0..STEPS {
        if !step() {
            return 1;
        }
    }
    0
}

/// A socket buffer, read with `bpf_skb_load_bytes` (works on non-linear buffers too).
/// `KERNEL_LOOP` as for `XdpPacket`.
pub(crate) struct SkbPacket<const KERNEL_LOOP: bool> {
    pub(crate) skb: *mut __sk_buff,
    /// Its length, non-linear part included.
    pub(crate) len: usize,
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
