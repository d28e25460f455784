//! Where the SCTP part of a frame is: Ethernet, up to two VLAN tags, IPv4 (its real
//! header length; later fragments are not SCTP's) or IPv6 (a bounded walk over its
//! extension headers), then the SCTP common header and the first chunk's bytes.

use super::{Packet, Tally};
use crate::{
    abi::{Counter, FlowKey, FAMILY_IPV4, FAMILY_IPV6},
    filter::FirstChunk,
    proto::{ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_SCTP, SCTP_COMMON_HEADER},
};

/// VLAN tags (802.1Q / 802.1ad) accepted before the IP header.
pub const MAX_VLAN_TAGS: usize = 2;
/// IPv6 extension headers walked before giving up.
pub const MAX_IPV6_EXT_HEADERS: usize = 6;

/// Where the SCTP part of an IP packet is, found by [`locate_sctp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SctpLocation {
    /// Offset of the SCTP common header.
    pub offset: usize,
    /// End of the IP packet as its header declares it.
    pub end: usize,
    /// Length of the IP packet, header included.
    pub ip_len: u64,
    /// The packet is the first fragment of a fragmented IP packet: chunks may run past it.
    pub first_fragment: bool,
    pub family: u32,
    /// The addresses in network order (IPv4: the first of the four words), kept as
    /// words: aligned, the BPF target moves them whole (see [`Address`]).
    pub src_addr: Address,
    pub dst_addr: Address,
}

/// An address as the parser keeps it: 16 bytes in network order as four words.
pub type Address = [u32; 4];

/// The bytes of an address.
#[inline(always)]
#[must_use]
pub fn address_bytes(a: &Address) -> &[u8; 16] {
    bytemuck::cast_ref(a)
}

/// Why [`locate_sctp`] found no SCTP header: either a plain outcome (not IP, not SCTP, a
/// later fragment) or a parse error, both a counter.
pub(super) type Located = Result<SctpLocation, Counter>;

/// Walks Ethernet, VLAN and IP headers to the SCTP common header.
///
/// # Errors
/// The counter that says why the packet is not SCTP or not whole (also counted in `stats`).
#[inline(always)]
pub fn locate_sctp<P: Packet + ?Sized, T: Tally>(pkt: &P, stats: &mut T) -> Located {
    let mut ethertype = pkt.be16_at(12).ok_or(Counter::ErrEthernetTruncated)?;
    let mut off = ETH_HLEN;
    let mut tagged = false;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        tagged = true;
        ethertype = pkt.be16_at(off + 2).ok_or(Counter::ErrVlanTruncated)?;
        off += 4;
    }
    if tagged {
        stats.bump(Counter::VlanTagged, 1);
    }
    match ethertype {
        ETH_P_IPV4 => {
            stats.bump(Counter::Ipv4, 1);
            locate_in_ipv4(pkt, off)
        }
        ETH_P_IPV6 => {
            stats.bump(Counter::Ipv6, 1);
            locate_in_ipv6(pkt, off)
        }
        ETH_P_8021Q | ETH_P_8021AD => Err(Counter::ErrVlanDepth),
        _ => Err(Counter::NotIp),
    }
}

#[inline(always)]
pub(super) fn locate_in_ipv4<P: Packet + ?Sized>(pkt: &P, off: usize) -> Located {
    let hdr = pkt.read::<20>(off).ok_or(Counter::ErrIpv4Truncated)?;
    let ihl = ((hdr[0] & 0x0f) as usize) * 4;
    let total_len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    if hdr[0] >> 4 != 4 || ihl < 20 || total_len < ihl {
        return Err(Counter::ErrIpv4HeaderLength);
    }
    // Options must be inside the frame too (ihl >= 20, so this stays in the header).
    pkt.read::<4>(off + ihl - 4).ok_or(Counter::ErrIpv4Truncated)?;
    if hdr[9] != IPPROTO_SCTP {
        return Err(Counter::NotSctp);
    }
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
    if frag & 0x1fff != 0 {
        return Err(Counter::LaterFragments);
    }
    // Built of words, not bytes: zeroing a byte array and copying into it becomes
    // `memset` calls on the BPF target, and building it byte by byte a stack slot a byte.
    let src_addr = [u32::from_ne_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]), 0, 0, 0];
    let dst_addr = [u32::from_ne_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]), 0, 0, 0];
    // An IP length past the frame counts only what the frame holds.
    let end = (off + total_len).min(pkt.frame_len());
    Ok(SctpLocation {
        offset: off + ihl,
        end,
        ip_len: (end - off) as u64,
        first_fragment: frag & 0x2000 != 0,
        family: FAMILY_IPV4,
        src_addr,
        dst_addr,
    })
}

#[inline(always)]
pub(super) fn locate_in_ipv6<P: Packet + ?Sized>(pkt: &P, off: usize) -> Located {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTH: u8 = 51;
    const DEST_OPTS: u8 = 60;

    // The fixed header's first 8 bytes, then the addresses read whole (see IPv4's).
    let hdr = pkt.read::<8>(off).ok_or(Counter::ErrIpv6Truncated)?;
    let src_addr = bytemuck::cast(pkt.read::<16>(off + 8).ok_or(Counter::ErrIpv6Truncated)?.0);
    let dst_addr = bytemuck::cast(pkt.read::<16>(off + 24).ok_or(Counter::ErrIpv6Truncated)?.0);
    let payload_len = u16::from_be_bytes([hdr[4], hdr[5]]) as usize;
    let mut next = hdr[6];
    let mut l4 = off + 40;
    let mut first_fragment = false;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        l4 = pkt.launder(l4);
        // Every extension header starts with next-header and a length (or reserved) byte.
        let [this_next, len, frag_hi, frag_lo] = match next {
            HOP_BY_HOP | ROUTING | DEST_OPTS | AUTH | FRAGMENT => {
                pkt.read::<4>(l4).ok_or(Counter::ErrIpv6ExtTruncated)?.0
            }
            _ => break,
        };
        let ext_len = match next {
            AUTH => (len as usize + 2) * 4,
            FRAGMENT => {
                let frag = u16::from_be_bytes([frag_hi, frag_lo]);
                if frag & 0xfff8 != 0 {
                    // Offset != 0: counted as a later fragment whatever it carries.
                    return Err(Counter::LaterFragments);
                }
                first_fragment = frag & 1 != 0;
                8
            }
            _ => (len as usize + 1) * 8,
        };
        next = this_next;
        l4 += ext_len;
    }
    match next {
        IPPROTO_SCTP => {}
        HOP_BY_HOP | ROUTING | FRAGMENT | AUTH | DEST_OPTS => return Err(Counter::ErrIpv6ExtLimit),
        _ => return Err(Counter::NotSctp),
    }
    let end = (off + 40 + payload_len).min(pkt.frame_len());
    Ok(SctpLocation {
        offset: l4,
        end,
        ip_len: (end - off) as u64,
        first_fragment,
        family: FAMILY_IPV6,
        src_addr,
        dst_addr,
    })
}

/// The common header and the first chunk of an SCTP packet at `offset`.
#[inline(always)]
pub fn sctp_header<P: Packet + ?Sized>(pkt: &P, offset: usize) -> Option<(FlowKey, FirstChunk)> {
    let c = pkt.read::<8>(offset)?;
    let key = FlowKey {
        src_port: u16::from_be_bytes([c[0], c[1]]),
        dst_port: u16::from_be_bytes([c[2], c[3]]),
        vtag: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
    };
    let head = pkt.read::<4>(offset + SCTP_COMMON_HEADER);
    // The word after the header (INIT's Initiate Tag); chunks may be only 4 bytes.
    let word = pkt.read::<4>(offset + SCTP_COMMON_HEADER + 4).map_or([0; 4], |w| w.0);
    let h = head.map_or([0; 4], |h| h.0);
    let first = FirstChunk::from_bytes([h[0], h[1], h[2], h[3], word[0], word[1], word[2], word[3]], head.is_some());
    Some((key, first))
}
