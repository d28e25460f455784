//! The SCTP parser core and the map types shared by the XDP program (`sctp-ebpf`) and the
//! controller (`sctp-user`). `no_std`: the same code is compiled for bpf and for the host,
//! so the host unit tests exercise exactly what runs in the kernel.
//!
//! Layers, each importing only those before it: [`proto`] (wire constants), [`atomic`]
//! (shared counters) and [`abi`] (what both sides of the maps agree on) -> [`filter`] (rules and their state) ->
//! [`parse`] (the walk over every header and chunk, and its accounting). [`builder`]
//! crafts packets; `host` holds the host twin of the rule maps; `testing` the fixture
//! table.
#![no_std]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", expect(internal_features, reason = "BPF_XADD: see `atomic`"))]
#![expect(
    clippy::inline_always,
    reason = "the XDP program is verified as one function: every call the compiler leaves is a \
              BPF-to-BPF call whose state the verifier explores again, and some kernels forbid \
              them beside tail calls; the hot path is inlined on purpose"
)]

#[cfg(any(test, feature = "builder", feature = "host"))]
extern crate alloc;

pub mod abi;
pub mod atomic;
#[cfg(any(test, feature = "builder"))]
pub mod builder;
pub mod filter;
#[cfg(any(test, feature = "host"))]
pub mod host;
pub mod parse;
pub mod proto;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
