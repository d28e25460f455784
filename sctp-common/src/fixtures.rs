//! Packets built by our own code: a small builder and the fixture table that the host
//! unit tests, the BPF_PROG_TEST_RUN tests and the benchmark all share.

use alloc::{vec, vec::Vec};

use crate::chunk::{flag, ty};

/// One SCTP chunk: type, flags and the value after the 4-byte chunk header.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub chunk_type: u8,
    pub flags: u8,
    pub value: Vec<u8>,
    /// Overrides the length field (for malformed chunks).
    pub length: Option<u16>,
}

impl Chunk {
    #[must_use]
    pub fn new(chunk_type: u8, flags: u8, value: Vec<u8>) -> Self {
        Self {
            chunk_type,
            flags,
            value,
            length: None,
        }
    }

    /// DATA with B and E set (a whole message) and `payload` bytes of user data.
    #[must_use]
    pub fn data(tsn: u32, stream: u16, ssn: u16, ppid: u32, payload: usize) -> Self {
        Self::data_flags(flag::BEGIN | flag::END, tsn, stream, ssn, ppid, payload)
    }

    #[must_use]
    pub fn data_flags(flags: u8, tsn: u32, stream: u16, ssn: u16, ppid: u32, payload: usize) -> Self {
        let mut v = Vec::new();
        v.extend_from_slice(&tsn.to_be_bytes());
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(&ssn.to_be_bytes());
        v.extend_from_slice(&ppid.to_be_bytes());
        v.extend((0..payload).map(|i| i as u8));
        Self::new(ty::DATA, flags, v)
    }

    /// I-DATA (RFC 8260) carrying a whole message.
    #[must_use]
    pub fn idata(tsn: u32, stream: u16, mid: u32, ppid: u32, payload: usize) -> Self {
        let mut v = Vec::new();
        v.extend_from_slice(&tsn.to_be_bytes());
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&mid.to_be_bytes());
        v.extend_from_slice(&ppid.to_be_bytes());
        v.extend((0..payload).map(|i| i as u8));
        Self::new(ty::I_DATA, flag::BEGIN | flag::END, v)
    }

    /// INIT or INIT-ACK with the fixed fields only.
    #[must_use]
    pub fn init(chunk_type: u8, tag: u32, a_rwnd: u32, os: u16, mis: u16, tsn: u32) -> Self {
        let mut v = Vec::new();
        v.extend_from_slice(&tag.to_be_bytes());
        v.extend_from_slice(&a_rwnd.to_be_bytes());
        v.extend_from_slice(&os.to_be_bytes());
        v.extend_from_slice(&mis.to_be_bytes());
        v.extend_from_slice(&tsn.to_be_bytes());
        Self::new(chunk_type, 0, v)
    }

    /// SACK with `gaps` gap blocks and `dups` duplicate TSNs.
    #[must_use]
    pub fn sack(cum_tsn: u32, a_rwnd: u32, gaps: u16, dups: u16) -> Self {
        let mut v = Vec::new();
        v.extend_from_slice(&cum_tsn.to_be_bytes());
        v.extend_from_slice(&a_rwnd.to_be_bytes());
        v.extend_from_slice(&gaps.to_be_bytes());
        v.extend_from_slice(&dups.to_be_bytes());
        for g in 0..gaps {
            v.extend_from_slice(&(2 * g + 2).to_be_bytes());
            v.extend_from_slice(&(2 * g + 2).to_be_bytes());
        }
        for d in 0..u32::from(dups) {
            v.extend_from_slice(&(cum_tsn.wrapping_sub(d)).to_be_bytes());
        }
        Self::new(ty::SACK, 0, v)
    }

    #[must_use]
    pub fn with_length(mut self, length: u16) -> Self {
        self.length = Some(length);
        self
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let len = self.length.unwrap_or((4 + self.value.len()) as u16);
        out.extend_from_slice(&[self.chunk_type, self.flags]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.value);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
}

/// The IP layer of a built packet.
#[derive(Clone, Copy, Debug)]
pub enum Ip {
    V4 { src: [u8; 4], dst: [u8; 4] },
    V6 { src: [u8; 16], dst: [u8; 16] },
}

/// 198.18.0.1 -> 198.18.0.2: the benchmarking range, never routed.
pub const V4: Ip = Ip::V4 {
    src: [198, 18, 0, 1],
    dst: [198, 18, 0, 2],
};
/// 2001:db8::1 -> 2001:db8::2.
pub const V6: Ip = Ip::V6 {
    src: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    dst: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
};

/// An Ethernet frame carrying an SCTP packet, built field by field.
#[derive(Clone, Debug)]
pub struct SctpPacket {
    pub ip: Ip,
    pub vlans: Vec<u16>,
    pub src_port: u16,
    pub dst_port: u16,
    pub vtag: u32,
    pub chunks: Vec<Chunk>,
    /// IPv4 option bytes (a multiple of 4).
    pub ipv4_options: Vec<u8>,
    /// IPv6 extension headers as (next-header number, whole header bytes).
    pub ipv6_ext: Vec<(u8, Vec<u8>)>,
    /// IPv4 fragment field (flags and offset), host order.
    pub ipv4_frag: u16,
}

impl SctpPacket {
    #[must_use]
    pub fn new(ip: Ip, vtag: u32, chunks: Vec<Chunk>) -> Self {
        Self {
            ip,
            vlans: Vec::new(),
            src_port: 36412,
            dst_port: 38412,
            vtag,
            chunks,
            ipv4_options: Vec::new(),
            ipv6_ext: Vec::new(),
            ipv4_frag: 0,
        }
    }

    /// The SCTP packet alone (common header and chunks, with its CRC32c: a packet that
    /// passes XDP is one the kernel's SCTP accepts).
    #[must_use]
    pub fn sctp_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.src_port.to_be_bytes());
        out.extend_from_slice(&self.dst_port.to_be_bytes());
        out.extend_from_slice(&self.vtag.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        for c in &self.chunks {
            c.encode(&mut out);
        }
        // RFC 9260 appendix A: CRC32c over the packet with the field zero, little-endian.
        let crc = crc32c(&out);
        out[8..12].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The IP packet (header, extensions, SCTP).
    #[must_use]
    pub fn ip_bytes(&self) -> Vec<u8> {
        let sctp = self.sctp_bytes();
        match self.ip {
            Ip::V4 { src, dst } => {
                let ihl = 20 + self.ipv4_options.len();
                let total = (ihl + sctp.len()) as u16;
                let mut h = vec![0x40 | (ihl / 4) as u8, 0];
                h.extend_from_slice(&total.to_be_bytes());
                h.extend_from_slice(&[0, 1]);
                h.extend_from_slice(&self.ipv4_frag.to_be_bytes());
                h.extend_from_slice(&[64, crate::parse::IPPROTO_SCTP, 0, 0]);
                h.extend_from_slice(&src);
                h.extend_from_slice(&dst);
                h.extend_from_slice(&self.ipv4_options);
                let sum = ipv4_checksum(&h);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                h.extend_from_slice(&sctp);
                h
            }
            Ip::V6 { src, dst } => {
                let mut ext = Vec::new();
                let first = self.ipv6_ext.first().map_or(crate::parse::IPPROTO_SCTP, |e| e.0);
                for (i, (_, bytes)) in self.ipv6_ext.iter().enumerate() {
                    let mut b = bytes.clone();
                    b[0] = self.ipv6_ext.get(i + 1).map_or(crate::parse::IPPROTO_SCTP, |e| e.0);
                    ext.extend_from_slice(&b);
                }
                let payload = (ext.len() + sctp.len()) as u16;
                let mut h = vec![0x60, 0, 0, 0];
                h.extend_from_slice(&payload.to_be_bytes());
                h.extend_from_slice(&[first, 64]);
                h.extend_from_slice(&src);
                h.extend_from_slice(&dst);
                h.extend_from_slice(&ext);
                h.extend_from_slice(&sctp);
                h
            }
        }
    }

    /// The whole Ethernet frame.
    #[must_use]
    pub fn frame(&self) -> Vec<u8> {
        let ethertype: u16 = match self.ip {
            Ip::V4 { .. } => 0x0800,
            Ip::V6 { .. } => 0x86dd,
        };
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        for vid in &self.vlans {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&self.ip_bytes());
        f
    }
}

/// CRC32c (Castagnoli), bit by bit: fixtures are small.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A frame that is not IP at all (ARP).
#[must_use]
pub fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    f.extend_from_slice(&[0; 28]);
    f
}

/// One row of the fixture table: a named packet and what the parser must make of it.
pub struct Fixture {
    pub name: &'static str,
    pub frame: Vec<u8>,
    /// Counters that must be exactly these values after this packet alone.
    pub expect: Vec<(crate::stats::Counter, u64)>,
}

/// The fixture table. Every row runs through the host parser and, in the integration
/// tests, through the kernel with BPF_PROG_TEST_RUN; both must agree with `expect` and
/// with each other.
#[must_use]
pub fn table() -> Vec<Fixture> {
    use crate::stats::Counter as C;
    let data1 = SctpPacket::new(V4, 0x1234_5678, vec![Chunk::data(100, 1, 0, 18, 100)]);
    let mut rows = vec![
        Fixture {
            name: "one DATA chunk",
            frame: data1.frame(),
            expect: vec![
                (C::Sctp, 1),
                (C::Chunks, 1),
                (C::DataChunks, 1),
                (C::DataPayloadBytes, 100),
                (C::Malformed, 0),
            ],
        },
        Fixture {
            name: "eight bundled DATA chunks",
            frame: SctpPacket::new(V4, 7, (0..8).map(|i| Chunk::data(i, 0, i as u16, 60, 64)).collect()).frame(),
            expect: vec![
                (C::Chunks, 8),
                (C::DataChunks, 8),
                (C::DataPayloadBytes, 512),
                (C::Malformed, 0),
            ],
        },
        Fixture {
            name: "SACK with gap blocks and dups",
            frame: SctpPacket::new(V4, 7, vec![Chunk::sack(1000, 65536, 4, 2)]).frame(),
            expect: vec![
                (C::Chunks, 1),
                (C::SackGapBlocks, 4),
                (C::SackDupTsns, 2),
                (C::Malformed, 0),
            ],
        },
        Fixture {
            name: "INIT",
            frame: SctpPacket::new(V4, 0, vec![Chunk::init(ty::INIT, 0xdead_beef, 106_496, 10, 65535, 42)]).frame(),
            expect: vec![(C::Sctp, 1), (C::Chunks, 1), (C::Malformed, 0)],
        },
        Fixture {
            name: "IPv6 with DATA",
            frame: SctpPacket::new(V6, 9, vec![Chunk::data(5, 2, 0, 60, 200)]).frame(),
            expect: vec![
                (C::Ipv6, 1),
                (C::Sctp, 1),
                (C::DataPayloadBytes, 200),
                (C::Malformed, 0),
            ],
        },
        Fixture {
            name: "I-DATA unpadded odd payload",
            frame: SctpPacket::new(V4, 9, vec![Chunk::idata(5, 2, 0, 60, 33)]).frame(),
            expect: vec![(C::DataChunks, 1), (C::DataPayloadBytes, 33), (C::Malformed, 0)],
        },
        Fixture {
            name: "DATA+SACK bundle with unordered fragment",
            frame: SctpPacket::new(
                V4,
                3,
                vec![
                    Chunk::sack(9, 1000, 0, 0),
                    Chunk::data_flags(flag::UNORDERED | flag::BEGIN, 10, 0, 0, 46, 7),
                ],
            )
            .frame(),
            expect: vec![
                (C::Chunks, 2),
                (C::DataUnordered, 1),
                (C::DataFragments, 1),
                (C::DataPayloadBytes, 7),
            ],
        },
        Fixture {
            name: "ARP is not IP",
            frame: arp_frame(),
            expect: vec![(C::NotIp, 1), (C::Sctp, 0), (C::Malformed, 0)],
        },
        Fixture {
            name: "runt frame",
            frame: vec![0; 10],
            expect: vec![(C::ErrEthernetTruncated, 1), (C::Malformed, 1), (C::VerdictPass, 1)],
        },
        Fixture {
            name: "chunk length below 4",
            frame: SctpPacket::new(V4, 1, vec![Chunk::new(ty::HEARTBEAT, 0, vec![0; 8]).with_length(2)]).frame(),
            expect: vec![(C::ErrChunkTooShort, 1), (C::Chunks, 0), (C::Malformed, 1)],
        },
        Fixture {
            name: "chunk length past the packet",
            frame: SctpPacket::new(V4, 1, vec![Chunk::new(ty::HEARTBEAT, 0, vec![0; 8]).with_length(400)]).frame(),
            expect: vec![(C::ErrChunkBeyondPacket, 1), (C::Chunks, 1), (C::Malformed, 1)],
        },
        Fixture {
            name: "DATA shorter than its fixed fields",
            frame: SctpPacket::new(V4, 1, vec![Chunk::new(ty::DATA, 3, vec![0; 8])]).frame(),
            expect: vec![(C::ErrChunkFieldsTruncated, 1), (C::DataChunks, 0), (C::Malformed, 1)],
        },
        Fixture {
            name: "more chunks than the walk bound",
            frame: SctpPacket::new(V4, 1, (0..40).map(|_| Chunk::new(ty::PAD, 0, vec![])).collect()).frame(),
            expect: vec![(C::Chunks, crate::parse::MAX_CHUNKS as u64), (C::ErrChunkWalkLimit, 1)],
        },
        Fixture {
            name: "unknown chunk type",
            frame: SctpPacket::new(V4, 1, vec![Chunk::new(0x3f, 0, vec![1, 2, 3, 4])]).frame(),
            expect: vec![(C::Chunks, 1), (C::Malformed, 0)],
        },
    ];
    let mut p = data1.clone();
    p.vlans = vec![10, 20];
    rows.push(Fixture {
        name: "two VLAN tags",
        frame: p.frame(),
        expect: vec![(C::VlanTagged, 1), (C::Sctp, 1), (C::DataChunks, 1)],
    });
    p.vlans = vec![10, 20, 30];
    rows.push(Fixture {
        name: "three VLAN tags",
        frame: p.frame(),
        expect: vec![(C::ErrVlanDepth, 1), (C::Sctp, 0)],
    });
    let mut p = data1.clone();
    p.ipv4_options = vec![1, 1, 1, 0, 1, 1, 1, 0];
    rows.push(Fixture {
        name: "IPv4 with options",
        frame: p.frame(),
        expect: vec![(C::Sctp, 1), (C::DataPayloadBytes, 100)],
    });
    let mut p = data1.clone();
    p.ipv4_frag = 0x2000;
    let mut first = p.frame();
    first.truncate(first.len() - 40);
    let total = (first.len() - 14) as u16;
    first[16..18].copy_from_slice(&total.to_be_bytes());
    rows.push(Fixture {
        name: "IPv4 first fragment cut inside a DATA chunk",
        frame: first,
        expect: vec![
            (C::FirstFragments, 1),
            (C::FragmentCutWalks, 1),
            (C::DataPayloadBytes, 100),
            (C::Malformed, 0),
        ],
    });
    let mut p = data1.clone();
    p.ipv4_frag = 185;
    rows.push(Fixture {
        name: "IPv4 later fragment",
        frame: p.frame(),
        expect: vec![(C::LaterFragments, 1), (C::Sctp, 0), (C::Malformed, 0)],
    });
    let mut p = SctpPacket::new(V6, 9, vec![Chunk::data(5, 2, 0, 60, 20)]);
    p.ipv6_ext = vec![
        (0, vec![0, 0, 1, 4, 0, 0, 0, 0]),
        (60, vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ];
    rows.push(Fixture {
        name: "IPv6 hop-by-hop and destination options",
        frame: p.frame(),
        expect: vec![(C::Sctp, 1), (C::DataChunks, 1), (C::Malformed, 0)],
    });
    p.ipv6_ext = (0..8).map(|_| (60, vec![0, 0, 1, 4, 0, 0, 0, 0])).collect();
    rows.push(Fixture {
        name: "IPv6 extension chain too long",
        frame: p.frame(),
        expect: vec![(C::ErrIpv6ExtLimit, 1)],
    });
    p.ipv6_ext = vec![(44, vec![0, 0, 0, 1, 0, 0, 0, 7])];
    rows.push(Fixture {
        name: "IPv6 first fragment",
        frame: p.frame(),
        expect: vec![(C::FirstFragments, 1), (C::Sctp, 1)],
    });
    p.ipv6_ext = vec![(44, vec![0, 0, 0, 0x18, 0, 0, 0, 7])];
    rows.push(Fixture {
        name: "IPv6 later fragment",
        frame: p.frame(),
        expect: vec![(C::LaterFragments, 1), (C::Sctp, 0)],
    });
    let mut t = data1.frame();
    t.truncate(14 + 20 + 12 + 10);
    rows.push(Fixture {
        name: "frame cut inside DATA fixed fields",
        frame: t,
        expect: vec![(C::ErrChunkBeyondPacket, 1), (C::Chunks, 1), (C::DataChunks, 0)],
    });
    rows
}

#[cfg(test)]
mod tests {
    /// The check value of the CRC-32C catalogue ("123456789").
    #[test]
    fn crc32c_matches_the_catalogue() {
        assert_eq!(super::crc32c(b"123456789"), 0xe306_9283);
    }
}
