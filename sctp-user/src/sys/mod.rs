//! Every call into the kernel that is not a BPF map or program: SCTP sockets, `AF_PACKET`,
//! bpffs, interfaces, privileges, clocks. The bottom layer: it imports nothing of ours.

pub mod bpffs;
pub mod clock;
pub mod cpu;
pub mod iface;
pub mod packet;
pub mod privilege;
pub mod sctp;
pub mod stdout;
