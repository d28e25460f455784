//! An XDP program that only returns `XDP_PASS`: the benchmark's baseline, so the parser's
//! cost is reported as a ratio measured side by side in the same run.
// Built for bpf; `cargo clippy --workspace` also checks it on the host, where std is
// linked in and a `main` is needed.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub(crate) fn empty_xdp(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

sctp_ebpf::program_boilerplate!();
