//! Counters that every CPU adds to at once: the association directions (`FLOWS`) are
//! one value shared by all CPUs and by XDP and TC, so a plain `+=` there could lose
//! updates of two CPUs racing. In the kernel the add is `BPF_XADD` (an atomic add that
//! returns nothing, which every kernel since 4.x verifies; the bpf target has no
//! compare-and-swap, so Rust's atomic types offer no `fetch_add` there); on the host,
//! where each engine owns its values, a plain add.

/// Adds `n` to `counter`, atomically in the kernel.
#[inline(always)]
pub fn add(counter: &mut u64, n: u64) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: a live, aligned u64 (a field of a map value); its result is unused, so the
    // compiler emits the add without fetch that older kernels verify.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(counter, n);
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        *counter += n;
    }
}
