//! The per-flow floor of the benchmark: the least any per-flow SCTP counter does. It
//! parses Ethernet, IPv4 and the SCTP common header, looks up or inserts the (source
//! port, destination port, verification tag) entry of an LRU per-CPU hash, and adds to
//! its packets and bytes. The parser's cost is reported as a multiple of this one's.
// Built for bpf; `cargo clippy --workspace` also checks it on the host, where std is
// linked in and a `main` is needed.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

use aya_ebpf::{
    bindings::{xdp_action, BPF_NOEXIST},
    macros::{map, xdp},
    maps::LruPerCpuHashMap,
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
pub fn flow_floor_xdp(ctx: XdpContext) -> u32 {
    count(&ctx);
    xdp_action::XDP_PASS
}

#[inline]
fn count(ctx: &XdpContext) -> Option<()> {
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
    let bytes = u64::from(total);
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
    Some(())
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
