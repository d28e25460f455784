//! The programs' clocks: the kernel's (precise, or coarse where that is cheaper), or the
//! capture's during a replay.

use aya_ebpf::helpers::{bpf_jiffies64, bpf_ktime_get_coarse_ns, bpf_ktime_get_ns};

use crate::maps::{REPLAY_CLOCK, TICK_CLOCK};

/// Non-zero where the kernel has `bpf_ktime_get_coarse_ns` (5.11 and later): set by user
/// space before loading. A read-only global, so the verifier knows its value and never
/// visits the branch a kernel cannot run.
#[no_mangle]
pub(crate) static COARSE_CLOCK: u8 = 0;

/// Non-zero when loaded to replay a capture: the clock is then `REPLAY_CLOCK`, the
/// capture time user space writes before each frame. Read-only, so a live program has no
/// trace of it after verification.
#[no_mangle]
pub(crate) static REPLAY: u8 = 0;

/// The replay clock, when loaded for replay.
#[inline(always)]
pub(crate) fn replay_now() -> Option<u64> {
    // SAFETY: a read of our own global.
    if unsafe { core::ptr::read_volatile(&raw const REPLAY) } == 0 {
        return None;
    }
    Some(REPLAY_CLOCK.get(0).copied().unwrap_or(0))
}

/// The clock of flow ages and of the time-based rules (learning window, idle tags, INIT
/// rates): the coarse monotonic clock where the kernel has it, a tick's precision being
/// plenty there and the precise clock costing tens of nanoseconds per packet on some
/// machines. Even the coarse clock is a helper call (some 20 ns a packet, measured by
/// the bench's floor ladder): it is read once a tick per CPU, when `bpf_jiffies64`
/// (inlined by the kernel into a load) says the tick moved, and kept in `TICK_CLOCK`.
#[inline(always)]
pub(crate) fn coarse_now() -> u64 {
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

/// The precise clock (the replay clock in a replay).
#[inline(always)]
pub(crate) fn precise_now() -> u64 {
    // SAFETY: a helper without preconditions.
    replay_now().unwrap_or_else(|| unsafe { bpf_ktime_get_ns() })
}
