//! The per-flow floor of the benchmark: the least any per-flow SCTP counter does. It
//! parses Ethernet, IPv4 and the SCTP common header, looks up or inserts the (source
//! port, destination port, verification tag) entry of an LRU per-CPU hash, and adds to
//! its packets and bytes. The parser's cost is reported as a multiple of this one's.
//!
//! Beside it, the floor with one more of the things our program does per packet, each
//! alone (`floor_with_*`): what each costs on this machine, so the bench can say where
//! our program's time goes (a helper call or a BPF-to-BPF call's return costs far more
//! on a CPU with return-stack mitigations than the instructions around it).
// Built for bpf; `cargo clippy --workspace` also checks it on the host, where std is
// linked in and a `main` is needed.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![expect(
    clippy::inline_always,
    reason = "each program must hold the floor's code itself: a call the compiler chose would add to its cost"
)]

use aya_ebpf::{
    bindings::{xdp_action, xdp_md, BPF_NOEXIST},
    helpers::{bpf_jiffies64, bpf_ktime_get_coarse_ns, bpf_loop},
    macros::{map, xdp},
    maps::{LruPerCpuHashMap, PerCpuArray},
    programs::XdpContext,
};

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Key {
    src_port: u16,
    dst_port: u16,
    vtag: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Totals {
    packets: u64,
    bytes: u64,
}

#[map]
static FLOOR_FLOWS: LruPerCpuHashMap<Key, Totals> = LruPerCpuHashMap::with_max_entries(16_384, 0);

#[xdp]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn flow_floor_xdp(ctx: XdpContext) -> u32 {
    count(&ctx);
    xdp_action::XDP_PASS
}

/// Per-CPU words as our program's per-packet arrays (global counters, walk scratch,
/// configuration, rules).
#[map]
static LADDER_WORDS: PerCpuArray<u64> = PerCpuArray::with_max_entries(4, 0);

/// The floor and a clock read (our program reads the coarse clock per SCTP packet).
#[xdp]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn floor_with_clock(ctx: XdpContext) -> u32 {
    // SAFETY: a helper without preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    count(&ctx);
    bump(0, now);
    xdp_action::XDP_PASS
}

/// The floor and a read of the tick (`bpf_jiffies64`, which the kernel inlines).
#[xdp]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn floor_with_tick(ctx: XdpContext) -> u32 {
    // SAFETY: a helper without preconditions.
    let tick = unsafe { bpf_jiffies64() };
    count(&ctx);
    bump(0, tick);
    xdp_action::XDP_PASS
}

/// The floor and four per-CPU array lookups, each written to.
#[xdp]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn floor_with_lookups(ctx: XdpContext) -> u32 {
    count(&ctx);
    for i in 0..4 {
        bump(i, 1);
    }
    xdp_action::XDP_PASS
}

/// The floor run as two BPF-to-BPF calls (our program's two stages): the headers, then
/// the flow's counters.
#[xdp]
#[expect(clippy::needless_pass_by_value, reason = "the signature aya's entry point macro expects")]
pub(crate) fn floor_with_calls(ctx: XdpContext) -> u32 {
    // Not zeroed: the compiler would make that a call to `memset`, a third call.
    let mut found = core::mem::MaybeUninit::<(Key, u64)>::uninit();
    if parse_called(&ctx.ctx, &mut found) {
        // SAFETY: written whole by `parse_called` when it says so.
        let (key, bytes) = unsafe { found.assume_init() };
        add_called(key, bytes);
    }
    xdp_action::XDP_PASS
}

/// The floor run from a one-iteration `bpf_loop` (our program's chunk walk, one chunk).
#[xdp]
pub(crate) fn floor_with_loop(ctx: XdpContext) -> u32 {
    let mut c = ctx;
    // SAFETY: the callback gets back the pointer to `c`, which outlives the call.
    unsafe { bpf_loop(1, in_loop as *mut core::ffi::c_void, (&raw mut c).cast(), 0) };
    xdp_action::XDP_PASS
}

extern "C" fn in_loop(_index: u64, ctx: *mut core::ffi::c_void) -> i64 {
    // SAFETY: `floor_with_loop` passes its live context.
    count(unsafe { &*ctx.cast::<XdpContext>() });
    1
}

#[inline(never)]
fn parse_called(ctx: &*mut xdp_md, found: &mut core::mem::MaybeUninit<(Key, u64)>) -> bool {
    // Read here, volatile: else the compiler reads the packet's bounds in the caller and
    // passes them as plain integers, which the verifier refuses.
    // SAFETY: a read of the caller's live local.
    let ctx = unsafe { core::ptr::read_volatile(ctx) };
    parse(&XdpContext::new(ctx)).map(|f| found.write(f)).is_some()
}

#[inline(never)]
fn add_called(key: Key, bytes: u64) {
    add(key, bytes);
}

#[inline(always)]
fn bump(i: u32, by: u64) {
    if let Some(w) = LADDER_WORDS.get_ptr_mut(i) {
        // SAFETY: this CPU's value, valid for the run.
        unsafe { *w += by };
    }
}

#[inline(always)]
fn count(ctx: &XdpContext) -> Option<()> {
    let (key, bytes) = parse(ctx)?;
    add(key, bytes);
    Some(())
}

/// The flow's key and the IP length.
#[inline(always)]
fn parse(ctx: &XdpContext) -> Option<(Key, u64)> {
    let (start, end) = (ctx.data(), ctx.data_end());
    // Ethernet (14) + the fixed IPv4 header (20), then the SCTP common header after the
    // real header length (options included).
    if start + 34 > end {
        return None;
    }
    // SAFETY: the 34 bytes were checked to lie inside the packet.
    let (ethertype, ihl, proto, total) = unsafe {
        let p = start as *const u8;
        (
            u16::from_be_bytes([*p.add(12), *p.add(13)]),
            usize::from(*p.add(14) & 0x0f) * 4,
            *p.add(23),
            u16::from_be_bytes([*p.add(16), *p.add(17)]),
        )
    };
    if ethertype != 0x0800 || proto != 132 || ihl < 20 {
        return None;
    }
    let sctp = start + 14 + ihl;
    if sctp + 12 > end {
        return None;
    }
    // SAFETY: the 12 bytes were checked to lie inside the packet.
    let key = unsafe {
        let p = sctp as *const u8;
        Key {
            src_port: u16::from_be_bytes([*p, *p.add(1)]),
            dst_port: u16::from_be_bytes([*p.add(2), *p.add(3)]),
            vtag: u32::from_be_bytes([*p.add(4), *p.add(5), *p.add(6), *p.add(7)]),
        }
    };
    Some((key, u64::from(total)))
}

#[inline(always)]
fn add(key: Key, bytes: u64) {
    match FLOOR_FLOWS.get_ptr_mut(key) {
        Some(t) => {
            // SAFETY: this CPU's value, valid for the run.
            let t = unsafe { &mut *t };
            t.packets += 1;
            t.bytes += bytes;
        }
        None => {
            let _ = FLOOR_FLOWS.insert(key, Totals { packets: 1, bytes }, u64::from(BPF_NOEXIST));
        }
    }
}

sctp_ebpf::program_boilerplate!();
