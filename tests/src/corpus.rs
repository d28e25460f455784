//! The random and mutated packets the kernel-versus-host and engine tests run: seeds of
//! many shapes (the fixture table and a few more), and a mutator that damages them.

use sctp_common::{
    builder::{
        app::{self, avp_u32},
        Chunk, SctpPacket, V4, V6,
    },
    parse::message::ppid,
    testing::fixtures,
};

use crate::Rng;

/// `BPF_PROG_TEST_RUN` refuses XDP input shorter than an Ethernet header.
pub const MIN_XDP_FRAME: usize = 14;

/// Seeds: well-formed packets of many shapes, which the mutator then damages.
#[must_use]
pub fn seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> =
        fixtures::table().into_iter().map(|f| f.frame).filter(|f| f.len() >= MIN_XDP_FRAME).collect();
    for chunks in [
        vec![Chunk::init(1, 5, 1000, 4, 4, 9), Chunk::data(1, 0, 0, 0, 3)],
        vec![Chunk::sack(7, 1, 20, 20)],
        vec![Chunk::idata(3, 1, 1, 60, 1)],
        (0..31).map(|i| Chunk::data(i, 0, 0, 0, 1)).collect(),
        messages(),
        vec![Chunk::message(40, ppid::DIAMETER, &answer(30))],
        // More steps than a round of the bounded variant's count.
        (0..4).map(|i| Chunk::message(50 + i, ppid::DIAMETER, &answer(14))).collect(),
    ] {
        seeds.push(SctpPacket::new(V4, 99, chunks.clone()).frame());
        seeds.push(SctpPacket::new(V6, 99, chunks).frame());
    }
    seeds
}

/// A bundle of application messages of every layout `parse::message` reads, with
/// fresh TSNs: their counts and the walks to an answer's Result-Code (see
/// `parse::tally`).
fn messages() -> Vec<Chunk> {
    vec![
        Chunk::message(20, ppid::NGAP, &app::ap(0, 21)),
        Chunk::message(21, ppid::S1AP, &app::ap(2, 17)),
        Chunk::message(22, ppid::DIAMETER, &app::diameter(true, 316, 16_777_251, (1, 2), &[avp_u32(263, 7)])),
        Chunk::message(23, ppid::DIAMETER, &answer(3)),
        Chunk::message(24, ppid::M3UA, &app::m3ua_data(5)),
        Chunk::message(25, 0, &app::ap(1, 15)),
    ]
}

/// A Diameter answer whose Result-Code follows `before` other AVPs.
fn answer(before: u32) -> Vec<u8> {
    let avps: Vec<_> = (0..before).map(|i| avp_u32(1000 + i, i)).chain([avp_u32(268, 2001)]).collect();
    app::diameter(false, 316, 16_777_251, (1, 2), &avps)
}

pub fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut f = seed.to_vec();
    match rng.below(4) {
        // Flip a few bytes anywhere.
        0 => {
            for _ in 0..=rng.below(4) {
                let i = rng.below(f.len());
                f[i] = rng.next_u8();
            }
        }
        // Aim at length fields and chunk headers: past Ethernet + IP, every 4th byte.
        1 => {
            let i = (34 + 4 * rng.below(f.len().saturating_sub(34) / 4 + 1) + rng.below(4)).min(f.len() - 1);
            f[i] = rng.next_u8();
        }
        // Truncate.
        2 => f.truncate(MIN_XDP_FRAME + rng.below(f.len() - MIN_XDP_FRAME + 1)),
        // Entirely random bytes with an IPv4 or IPv6 EtherType.
        _ => {
            let len = MIN_XDP_FRAME + rng.below(200);
            f = (0..len).map(|_| rng.next_u8()).collect();
            f[12..14].copy_from_slice(if rng.below(2) == 0 { &[0x08, 0x00] } else { &[0x86, 0xdd] });
            if rng.below(2) == 0 && f.len() > 23 {
                f[14] = 0x45;
                f[23] = 132;
            }
        }
    }
    f
}
