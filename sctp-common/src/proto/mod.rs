//! Wire constants: header sizes, `EtherTypes`, IP protocol numbers and SCTP chunk types.

pub mod chunk;

/// The IP protocol number of SCTP.
pub const IPPROTO_SCTP: u8 = 132;
/// Ethernet header without VLAN tags.
pub const ETH_HLEN: usize = 14;
pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
/// The SCTP common header: ports, verification tag, checksum.
pub const SCTP_COMMON_HEADER: usize = 12;
