//! The fixture table that the host unit tests, the `BPF_PROG_TEST_RUN` tests and the
//! benchmark all share: named packets and the counters the parser must give each.

use alloc::{vec, vec::Vec};

use crate::{
    builder::{arp_frame, Chunk, SctpPacket, V4, V6},
    proto::chunk::{flag, ty},
};

/// One row of the fixture table: a named packet and what the parser must make of it.
pub struct Fixture {
    pub name: &'static str,
    pub frame: Vec<u8>,
    /// Counters that must be exactly these values after this packet alone.
    pub expect: Vec<(crate::abi::Counter, u64)>,
}

/// The fixture table. Every row runs through the host parser and, in the integration
/// tests, through the kernel with `BPF_PROG_TEST_RUN`; both must agree with `expect` and
/// with each other.
#[must_use]
#[expect(clippy::too_many_lines, reason = "one table, one entry per case, read top to bottom")]
pub fn table() -> Vec<Fixture> {
    use crate::abi::Counter as C;
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
            frame: SctpPacket::new(V4, 7, (0..8u16).map(|i| Chunk::data(u32::from(i), 0, i, 60, 64)).collect()).frame(),
            expect: vec![(C::Chunks, 8), (C::DataChunks, 8), (C::DataPayloadBytes, 512), (C::Malformed, 0)],
        },
        Fixture {
            name: "SACK with gap blocks and dups",
            frame: SctpPacket::new(V4, 7, vec![Chunk::sack(1000, 65536, 4, 2)]).frame(),
            expect: vec![(C::Chunks, 1), (C::SackGapBlocks, 4), (C::SackDupTsns, 2), (C::Malformed, 0)],
        },
        Fixture {
            name: "INIT",
            frame: SctpPacket::new(V4, 0, vec![Chunk::init(ty::INIT, 0xdead_beef, 106_496, 10, 65535, 42)]).frame(),
            expect: vec![(C::Sctp, 1), (C::Chunks, 1), (C::Malformed, 0)],
        },
        Fixture {
            name: "IPv6 with DATA",
            frame: SctpPacket::new(V6, 9, vec![Chunk::data(5, 2, 0, 60, 200)]).frame(),
            expect: vec![(C::Ipv6, 1), (C::Sctp, 1), (C::DataPayloadBytes, 200), (C::Malformed, 0)],
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
                vec![Chunk::sack(9, 1000, 0, 0), Chunk::data_flags(flag::UNORDERED | flag::BEGIN, 10, 0, 0, 46, 7)],
            )
            .frame(),
            expect: vec![(C::Chunks, 2), (C::DataUnordered, 1), (C::DataFragments, 1), (C::DataPayloadBytes, 7)],
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
            name: "DATA whose length says 65535 in a 60-byte packet",
            frame: SctpPacket::new(V4, 1, vec![Chunk::data(1, 0, 0, 18, 4).with_length(65535)]).frame(),
            expect: vec![
                (C::ErrChunkBeyondPacket, 1),
                (C::Chunks, 1),
                (C::DataChunks, 0),
                (C::DataPayloadBytes, 0),
                (C::Malformed, 1),
            ],
        },
        Fixture {
            name: "16-byte SACK claiming 65535 gap blocks and 65535 duplicate TSNs",
            frame: SctpPacket::new(
                V4,
                1,
                vec![Chunk::new(ty::SACK, 0, [[0, 0, 0, 9], [0, 1, 0, 0], [0xff; 4]].concat())],
            )
            .frame(),
            expect: vec![
                (C::ErrChunkCountsBeyondLength, 1),
                (C::SackGapBlocks, 0),
                (C::SackDupTsns, 0),
                (C::Malformed, 1),
            ],
        },
        Fixture {
            name: "SACK with one more gap block than its length holds",
            frame: SctpPacket::new(V4, 1, vec![Chunk::sack(9, 4096, 2, 1).with_length(16 + 4 * 2)]).frame(),
            expect: vec![(C::ErrChunkCountsBeyondLength, 1), (C::SackGapBlocks, 0), (C::Malformed, 1)],
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
    rows.push(Fixture { name: "three VLAN tags", frame: p.frame(), expect: vec![(C::ErrVlanDepth, 1), (C::Sctp, 0)] });
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
    let total = u16::try_from(first.len() - 14).unwrap_or(u16::MAX);
    first[16..18].copy_from_slice(&total.to_be_bytes());
    rows.push(Fixture {
        name: "IPv4 first fragment cut inside a DATA chunk",
        frame: first,
        expect: vec![
            (C::FirstFragments, 1),
            (C::FragmentCutWalks, 1),
            // 40 of the 100 payload bytes were cut off: only what is present counts.
            (C::DataPayloadBytes, 60),
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
    p.ipv6_ext = vec![(0, vec![0, 0, 1, 4, 0, 0, 0, 0]), (60, vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])];
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

/// Frames larger than a page (jumbo MTUs, captured GRO frames), with chunks spread over
/// their length: XDP gets them as fragments, so they run only on a multi-buffer program.
#[must_use]
pub fn jumbo() -> Vec<Fixture> {
    use crate::abi::Counter as C;
    // An MTU-9000 frame: eight DATA chunks of 1,000 bytes of payload, then a SACK and a
    // HEARTBEAT near its end.
    let mut chunks: Vec<Chunk> = (0..8u16).map(|i| Chunk::data(u32::from(i), i, i, 18, 1000)).collect();
    chunks.push(Chunk::sack(7, 65_536, 2, 1));
    chunks.push(Chunk::new(ty::HEARTBEAT, 0, vec![0; 700]));
    let mtu_9000 = SctpPacket::new(V4, 0x90, chunks);
    // A single DATA chunk larger than 16 KiB, over IPv6.
    let one_big = SctpPacket::new(V6, 0x91, vec![Chunk::data(1, 0, 0, 46, 20_000)]);
    // A frame near the IP limit (64 KiB): sixty DATA chunks of 1,000 bytes.
    let near_limit = SctpPacket::new(V4, 0x92, (0..60u16).map(|i| Chunk::data(u32::from(i), 0, i, 60, 1000)).collect());
    vec![
        Fixture {
            name: "MTU 9000 frame, chunks spread across it",
            frame: mtu_9000.frame(),
            expect: vec![
                (C::DataChunks, 8),
                (C::DataPayloadBytes, 8000),
                (C::SackGapBlocks, 2),
                (C::Chunks, 10),
                (C::Malformed, 0),
            ],
        },
        Fixture {
            name: "one DATA chunk over 16 KiB",
            frame: one_big.frame(),
            expect: vec![(C::DataChunks, 1), (C::DataPayloadBytes, 20_000), (C::Malformed, 0)],
        },
        Fixture {
            name: "60 KiB frame: the walk's 32-chunk bound",
            frame: near_limit.frame(),
            expect: vec![(C::DataChunks, 32), (C::ErrChunkWalkLimit, 1)],
        },
    ]
}
