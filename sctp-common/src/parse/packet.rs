//! Bounds-checked reads from a packet: a byte slice on the host, XDP's `data/data_end` in
//! the kernel. The parser reads through this trait only, so both run the same code.

/// Largest packet offset the parser reads at: bounds every offset for the verifier, and
/// covers a 64 KiB IP packet after its link-layer header (jumbo and GRO frames).
pub const MAX_OFFSET: usize = 0x1_ffff;

/// Bytes read from a packet, 4-byte aligned wherever the compiler keeps them.
///
/// The program is built allowing misaligned loads and stores (`sctp-user/build.rs`): a
/// field is one load, not one per byte, which cut the verifier's work by a quarter and
/// every class's cost. The verifier still refuses a misaligned access to the stack, and a
/// bare array, alone or in an `Option`, may sit at any byte there. (Aligned to 8, the
/// extra stack the `Option`s took made the verifier's work grow instead.)
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes<const N: usize>(pub [u8; N]);

impl<const N: usize> core::ops::Deref for Bytes<N> {
    type Target = [u8; N];

    #[inline(always)]
    fn deref(&self) -> &[u8; N] {
        &self.0
    }
}

pub trait Packet {
    /// Whole DATA chunks after the packet's first that the parser accounts in one run,
    /// before the walk's loop (see `data_run` there). Each adds to the verifier's work:
    /// at 7 the run took the linear XDP program from 61,345 instructions on 6.18 to 87,652.
    const DATA_RUN: usize = 7;

    /// The `N` bytes at `off`, or `None` when they are not all inside the frame.
    fn read<const N: usize>(&self, off: usize) -> Option<Bytes<N>>;

    /// Bytes in the frame: what an IP length may claim at most.
    fn frame_len(&self) -> usize;

    /// Returns `min(off, MAX_OFFSET + 1)`: nothing at or past that offset can be read, so
    /// the result means the same for the parser. The XDP reader passes the value through
    /// memory so the verifier forgets its exact range (iterations of a walk then reach the
    /// loop head in equal states and are pruned, instead of being verified once per
    /// possible offset) and masks it after the load, so the bound travels with the value.
    #[inline(always)]
    fn launder(&self, off: usize) -> usize {
        self.bound(off)
    }

    /// Returns `min(off, MAX_OFFSET + 1)` (or a lower bound this reader needs), without
    /// `launder`'s trip through memory: for offsets read from memory already, which the
    /// verifier knows nothing of but the bound this gives them.
    #[inline(always)]
    fn bound(&self, off: usize) -> usize {
        off.min(MAX_OFFSET + 1)
    }

    /// Calls `step` up to `n` times, until it returns `false`: the chunk walk's loop. A
    /// plain loop here; the XDP reader has the kernel run it (`bpf_loop`) where it can,
    /// so the verifier checks the step once instead of once per iteration.
    #[inline(always)]
    fn repeat<F: FnMut() -> bool>(&self, n: u32, mut step: F) {
        for _ in 0..n {
            if !step() {
                break;
            }
        }
    }

    /// Runs `f`. The XDP reader runs it as a function of its own, whose stack frame is
    /// not the caller's: the stage before the chunk walk needs more than the walk's
    /// `bpf_loop` callback leaves of the 512 bytes.
    #[inline(always)]
    fn outline<T, F: FnOnce() -> T>(&self, f: F) -> T {
        f()
    }

    #[inline(always)]
    fn be16_at(&self, off: usize) -> Option<u16> {
        self.read::<2>(off).map(|b| u16::from_be_bytes(b.0))
    }

    #[inline(always)]
    fn be32_at(&self, off: usize) -> Option<u32> {
        self.read::<4>(off).map(|b| u32::from_be_bytes(b.0))
    }
}

impl Packet for [u8] {
    #[inline]
    fn read<const N: usize>(&self, off: usize) -> Option<Bytes<N>> {
        self.get(off..off.checked_add(N)?)?.try_into().ok().map(Bytes)
    }

    #[inline]
    fn frame_len(&self) -> usize {
        <[u8]>::len(self)
    }
}
