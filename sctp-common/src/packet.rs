//! Bounds-checked reads from a packet: a byte slice on the host, XDP's data/data_end in
//! the kernel. The parser reads through this trait only, so both run the same code.

pub trait Packet {
    /// The `N` bytes at `off`, or `None` when they are not all inside the frame.
    fn read<const N: usize>(&self, off: usize) -> Option<[u8; N]>;

    /// Returns `off` unchanged. The XDP reader passes it through memory so that the
    /// verifier forgets its exact range: iterations of a walk then reach the loop head in
    /// equal states and are pruned, instead of being verified once per possible offset.
    #[inline(always)]
    fn launder(&self, off: usize) -> usize {
        off
    }

    #[inline(always)]
    fn be16_at(&self, off: usize) -> Option<u16> {
        self.read::<2>(off).map(u16::from_be_bytes)
    }

    #[inline(always)]
    fn be32_at(&self, off: usize) -> Option<u32> {
        self.read::<4>(off).map(u32::from_be_bytes)
    }
}

impl Packet for [u8] {
    #[inline]
    fn read<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        self.get(off..off.checked_add(N)?)?.try_into().ok()
    }
}
