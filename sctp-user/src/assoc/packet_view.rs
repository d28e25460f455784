//! One SCTP packet as the replay's per-conversation and per-association accounting sees
//! it: endpoints, tag, and per chunk the fields those need (TSNs, SACK fields, initiate
//! tags and announced addresses). The counters of the engines come from `sctp-common`'s
//! walk; this is the user-space view on top, for what the XDP program does not keep.

use std::net::IpAddr;

use sctp_common::{
    abi::{ip_addr, ChunkSummary, PacketSummary},
    parse::{address_bytes, locate_sctp, tally::fields_fit, NoTally, Packet as _, SctpLocation},
    proto::chunk::{flag, ty},
};

/// Chunks of one packet looked at, at most (as the XDP program's walk).
const MAX_CHUNKS: usize = sctp_common::parse::MAX_CHUNKS;

/// What one chunk says, as far as associations and charts care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkView {
    /// DATA or I-DATA: TSN and payload bytes.
    Data {
        tsn: u32,
        payload: u32,
    },
    /// INIT or INIT-ACK: the initiate tag and the addresses announced.
    Init {
        ack: bool,
        initiate_tag: u32,
        addresses: Vec<IpAddr>,
    },
    Sack {
        cum_tsn: u32,
        a_rwnd: u32,
        gaps: u16,
        dups: u16,
    },
    Heartbeat {
        ack: bool,
    },
    /// ABORT or SHUTDOWN-COMPLETE; `reflected`: the T bit (the tag is the sender's own).
    Close {
        abort: bool,
        reflected: bool,
    },
    Shutdown {
        ack: bool,
    },
    CookieEcho,
    CookieAck,
    /// ASCONF: the addresses it adds.
    Asconf {
        added: Vec<IpAddr>,
    },
    Other,
}

/// An SCTP packet.
#[derive(Clone, Debug)]
pub struct PacketView {
    pub src: (IpAddr, u16),
    pub dst: (IpAddr, u16),
    pub vtag: u32,
    /// The IP packet's length as it declares it.
    pub ip_len: u64,
    /// The interface a live run saw it on (0 in a capture).
    pub ifindex: u32,
    pub chunks: Vec<ChunkView>,
}

/// The frame's SCTP packet, if it has one.
#[must_use]
pub fn view(frame: &[u8]) -> Option<PacketView> {
    view_at(frame, &locate_sctp(frame, &mut NoTally).ok()?)
}

/// The SCTP packet `loc` found in the frame, if its common header is whole.
#[must_use]
pub fn view_at(frame: &[u8], loc: &SctpLocation) -> Option<PacketView> {
    let at = loc.offset;
    let (sport, dport, vtag) = (frame.be16_at(at)?, frame.be16_at(at + 2)?, frame.be32_at(at + 4)?);
    Some(PacketView {
        src: (ip_addr(loc.family, address_bytes(&loc.src_addr)), sport),
        dst: (ip_addr(loc.family, address_bytes(&loc.dst_addr)), dport),
        vtag,
        ip_len: loc.ip_len,
        ifindex: 0,
        chunks: raw_chunks(frame, loc).map(|c| chunk(c.kind, c.flags, c.body)).collect(),
    })
}

/// A chunk as the frame holds it.
#[derive(Clone, Copy, Debug)]
pub struct RawChunk<'f> {
    pub kind: u8,
    pub flags: u8,
    /// Its offset in the frame, and its length field.
    pub off: usize,
    pub len: usize,
    /// What the packet holds of it after its header.
    pub body: &'f [u8],
}

/// The chunks of the SCTP packet `loc` found in the frame, walked as the XDP program
/// walks them (see [`fields_fit`]), up to `MAX_CHUNKS`.
pub fn raw_chunks<'f>(frame: &'f [u8], loc: &SctpLocation) -> impl Iterator<Item = RawChunk<'f>> {
    let end = loc.end.min(frame.len());
    let mut off = loc.offset + 12;
    std::iter::from_fn(move || {
        let (Some(kind), Some(flags), Some(len)) =
            (frame.get(off).copied(), frame.get(off + 1).copied(), frame.be16_at(off + 2))
        else {
            return None;
        };
        let len = usize::from(len);
        if off + 4 > end || len < 4 {
            return None;
        }
        let body = &frame[off + 4..(off + len).min(end)];
        // The XDP program's walk ends at a chunk too short for its fixed fields, or a SACK
        // whose counts need more than it holds: nothing is taken from such a chunk (a SACK
        // claiming 65,535 gap blocks in 16 bytes counts none), nor from what follows it.
        if !fields_fit(frame, off, kind, len, end) {
            return None;
        }
        let c = RawChunk { kind, flags, off, len, body };
        off += (len + 3) & !3;
        Some(c)
    })
    .take(MAX_CHUNKS)
}

/// The packet the XDP program summarized (a live run's association table). What a
/// summary does not carry: the addresses INIT, INIT-ACK and ASCONF announce (an
/// endpoint's addresses are then those seen on the wire), and chunks after the first the
/// walk found malformed (the walk stops there).
#[must_use]
pub fn from_summary(s: &PacketSummary) -> PacketView {
    let family = u32::from(s.family);
    PacketView {
        src: (ip_addr(family, &s.src_addr), s.src_port),
        dst: (ip_addr(family, &s.dst_addr), s.dst_port),
        vtag: s.vtag,
        ip_len: u64::from(s.ip_len),
        ifindex: s.ifindex,
        chunks: s.chunk.iter().take(usize::from(s.chunks)).map(summarized_chunk).collect(),
    }
}

fn summarized_chunk(c: &ChunkSummary) -> ChunkView {
    let [w0, w1, w2] = c.words;
    match c.chunk_type {
        ty::DATA | ty::I_DATA => ChunkView::Data { tsn: w0, payload: w1 },
        ty::INIT | ty::INIT_ACK => {
            ChunkView::Init { ack: c.chunk_type == ty::INIT_ACK, initiate_tag: w0, addresses: Vec::new() }
        }
        ty::SACK => ChunkView::Sack { cum_tsn: w0, a_rwnd: w1, gaps: (w2 >> 16) as u16, dups: (w2 & 0xffff) as u16 },
        ty::ASCONF => ChunkView::Asconf { added: Vec::new() },
        t => chunk(t, c.flags, &[]),
    }
}

/// IPv4 (type 5) and IPv6 (type 6) address parameters in a parameter list.
fn addresses(mut params: &[u8]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    while let (Some(t), Some(len)) = (params.be16_at(0), params.be16_at(2)) {
        let len = usize::from(len);
        if len < 4 || len > params.len() {
            break;
        }
        match (t, &params[4..len]) {
            (5, v) if v.len() == 4 => out.push(IpAddr::from([v[0], v[1], v[2], v[3]])),
            (6, v) if v.len() == 16 => out.push(IpAddr::from(<[u8; 16]>::try_from(v).unwrap_or([0; 16]))),
            _ => {}
        }
        params = params.get((len + 3) & !3..).unwrap_or_default();
    }
    out
}

fn chunk(t: u8, flags: u8, body: &[u8]) -> ChunkView {
    let word = body.be32_at(0);
    match t {
        ty::DATA | ty::I_DATA => {
            let header = if t == ty::DATA { 12 } else { 16 };
            word.map_or(ChunkView::Other, |tsn| ChunkView::Data {
                tsn,
                payload: u32::try_from(body.len().saturating_sub(header)).unwrap_or(u32::MAX),
            })
        }
        ty::INIT | ty::INIT_ACK => word.map_or(ChunkView::Other, |initiate_tag| ChunkView::Init {
            ack: t == ty::INIT_ACK,
            initiate_tag,
            addresses: addresses(body.get(16..).unwrap_or_default()),
        }),
        ty::SACK => match (word, body.be32_at(4), body.be16_at(8), body.be16_at(10)) {
            (Some(cum_tsn), Some(a_rwnd), Some(gaps), Some(dups)) => ChunkView::Sack { cum_tsn, a_rwnd, gaps, dups },
            _ => ChunkView::Other,
        },
        ty::HEARTBEAT => ChunkView::Heartbeat { ack: false },
        ty::HEARTBEAT_ACK => ChunkView::Heartbeat { ack: true },
        ty::ABORT | ty::SHUTDOWN_COMPLETE => {
            ChunkView::Close { abort: t == ty::ABORT, reflected: flags & flag::T_BIT != 0 }
        }
        ty::SHUTDOWN => ChunkView::Shutdown { ack: false },
        ty::SHUTDOWN_ACK => ChunkView::Shutdown { ack: true },
        ty::COOKIE_ECHO => ChunkView::CookieEcho,
        ty::COOKIE_ACK => ChunkView::CookieAck,
        // ASCONF: serial number, then the address parameter, then the requests, each an
        // add (0xC001) wrapping a correlation id and an address parameter.
        ty::ASCONF => {
            let mut added = Vec::new();
            let mut rest = body.get(4..).unwrap_or_default();
            // Skip the ASCONF's own address parameter.
            if let Some(len) = rest.be16_at(2) {
                rest = rest.get((usize::from(len) + 3) & !3..).unwrap_or_default();
            }
            while let (Some(pt), Some(len)) = (rest.be16_at(0), rest.be16_at(2)) {
                let len = usize::from(len);
                if len < 8 || len > rest.len() {
                    break;
                }
                if pt == 0xC001 {
                    added.extend(addresses(&rest[8..len]));
                }
                rest = rest.get((len + 3) & !3..).unwrap_or_default();
            }
            ChunkView::Asconf { added }
        }
        _ => ChunkView::Other,
    }
}

#[cfg(test)]
mod tests {
    use sctp_common::builder::{Chunk, SctpPacket, V4};

    use super::*;

    #[test]
    fn a_sack_claiming_more_blocks_than_it_holds_ends_the_walk() {
        // 65,535 gap blocks in a 16-byte SACK, then a DATA chunk.
        let mut lying = Chunk::sack(1, 1000, 0, 0);
        lying.value[8..10].copy_from_slice(&u16::MAX.to_be_bytes());
        let p = SctpPacket::new(V4, 1, vec![Chunk::sack(1, 1000, 0, 0), lying, Chunk::data(1, 0, 0, 18, 10)]);
        let v = view(&p.frame()).unwrap();
        assert_eq!(v.chunks, [ChunkView::Sack { cum_tsn: 1, a_rwnd: 1000, gaps: 0, dups: 0 }]);
    }
}
