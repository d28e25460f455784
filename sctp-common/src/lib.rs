//! The SCTP parser core and the map types shared by the XDP program (`sctp-ebpf`) and the
//! controller (`sctp-user`). `no_std`: the same code is compiled for bpf and for the host,
//! so the host unit tests exercise exactly what runs in the kernel.
#![no_std]

#[cfg(any(test, feature = "fixtures"))]
extern crate alloc;

pub mod chunk;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[cfg(any(test, feature = "fixtures"))]
pub mod mem_filter;
pub mod packet;
pub mod parse;
pub mod rules;
pub mod stats;
