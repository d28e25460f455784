//! The XDP program. It only binds the parser core in `sctp-common` to the kernel: packet
//! reads against data/data_end, the maps, the clock. All parsing logic lives in the core.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::{xdp_action, BPF_NOEXIST, BPF_RB_NO_WAKEUP},
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{Array, LruPerCpuHashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use sctp_common::{
    packet::{Packet, MAX_OFFSET},
    parse::{process, Verdict},
    stats::{DataEvent, DataSink, FlowKey, FlowStats, GlobalStats},
};

/// Global counters (one slot, per CPU).
#[map(name = "GLOBAL")]
static GLOBAL: PerCpuArray<GlobalStats> = PerCpuArray::with_max_entries(1, 0);

/// Per-flow counters, LRU so a flood of new tags evicts old flows instead of failing.
/// User space may resize it at load time.
#[map(name = "FLOWS")]
static FLOWS: LruPerCpuHashMap<FlowKey, FlowStats> = LruPerCpuHashMap::with_max_entries(16384, 0);

/// An all-zero FlowStats to insert new flows from (too big for the 512-byte stack).
#[map(name = "ZERO_FLOW")]
static ZERO_FLOW: PerCpuArray<FlowStats> = PerCpuArray::with_max_entries(1, 0);

/// DATA / I-DATA chunks for user space's join, written only while CONFIG[0] is non-zero.
#[map(name = "DATA_EVENTS")]
static DATA_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Settings from user space. Index 0: record DATA events.
#[map(name = "CONFIG")]
static CONFIG: Array<u32> = Array::with_max_entries(1, 0);

/// Pushes DATA events to the ring buffer; a full buffer drops the event (user space counts
/// what it receives, so a gap shows as unmatched messages, never as wrong numbers). No
/// wake-up per event: user space drains on a timer, which costs far less than a wake-up
/// per DATA chunk (the events carry their own timestamps).
struct RingSink {
    enabled: bool,
}

impl DataSink for RingSink {
    #[inline(always)]
    fn data(&mut self, ev: &DataEvent) {
        if self.enabled {
            let _ = DATA_EVENTS.output::<DataEvent>(ev, u64::from(BPF_RB_NO_WAKEUP));
        }
    }
}

/// One u64 per CPU that walk offsets pass through (see `Packet::launder`).
#[map(name = "CURSOR")]
static CURSOR: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// XDP's packet window.
struct XdpPacket {
    start: usize,
    end: usize,
    cursor: *mut u64,
}

impl Packet for XdpPacket {
    #[inline(always)]
    fn read<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        // The explicit bound keeps the offset a bounded scalar for the verifier.
        if off > MAX_OFFSET {
            return None;
        }
        let at = self.start + off;
        if at + N > self.end {
            return None;
        }
        // SAFETY: [at, at + N) was checked to lie inside the packet just above.
        Some(unsafe { core::ptr::read_unaligned(at as *const [u8; N]) })
    }

    #[inline(always)]
    fn launder(&self, off: usize) -> usize {
        /// Covers MAX_OFFSET + 1; the compiler cannot drop it, not knowing what it loads.
        const MASK: u64 = 0x7fff;
        let clamped = if off > MAX_OFFSET { MAX_OFFSET + 1 } else { off };
        // SAFETY: `cursor` is this CPU's slot of CURSOR, valid for the program's run.
        // Volatile, so the compiler keeps the round trip that the verifier must see.
        unsafe {
            core::ptr::write_volatile(self.cursor, clamped as u64);
            (core::ptr::read_volatile(self.cursor) & MASK) as usize
        }
    }
}

#[xdp]
pub fn sctp_xdp(ctx: XdpContext) -> u32 {
    try_sctp_xdp(&ctx).unwrap_or(xdp_action::XDP_PASS)
}

#[inline(always)]
fn try_sctp_xdp(ctx: &XdpContext) -> Option<u32> {
    // SAFETY: map value pointers stay valid for the program's run; per-CPU, so unshared.
    let stats = unsafe { &mut *GLOBAL.get_ptr_mut(0)? };
    let pkt = XdpPacket {
        start: ctx.data(),
        end: ctx.data_end(),
        cursor: CURSOR.get_ptr_mut(0)?,
    };
    let mut sink = RingSink {
        enabled: CONFIG.get(0).is_some_and(|v| *v != 0),
    };
    // Both ways to a flow yield a FLOWS value, so the verifier walks the chunks once.
    // SAFETY: a helper without preconditions.
    let clock = || unsafe { bpf_ktime_get_ns() };
    let verdict = process(&pkt, stats, clock, flow_for, &mut sink);
    Some(match verdict {
        Verdict::Pass => xdp_action::XDP_PASS,
        Verdict::Drop => xdp_action::XDP_DROP,
    })
}

#[inline(always)]
fn flow_for(key: &FlowKey) -> Option<&'static mut FlowStats> {
    if let Some(p) = FLOWS.get_ptr_mut(key) {
        // SAFETY: per-CPU value, valid for this run.
        return Some(unsafe { &mut *p });
    }
    let zero = ZERO_FLOW.get_ptr(0)?;
    // SAFETY: `zero` points at a live map value.
    FLOWS.insert(key, unsafe { &*zero }, u64::from(BPF_NOEXIST)).ok()?;
    // SAFETY: as above.
    FLOWS.get_ptr_mut(key).map(|p| unsafe { &mut *p })
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 4] = *b"GPL\0";
