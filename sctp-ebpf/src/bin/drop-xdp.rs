//! An XDP program that only returns `XDP_DROP`: the INIT-flood benchmark's floor, what
//! dropping at XDP costs on the same path before any parsing or rule.
// Built for bpf; `cargo clippy --workspace` also checks it on the host, where std is
// linked in and a `main` is needed.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

#[xdp]
pub(crate) fn drop_xdp(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

sctp_ebpf::program_boilerplate!();
