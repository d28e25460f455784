//! SCTP checksums of replayed packets: `CRC32c` (RFC 9260 appendix A) over the SCTP packet
//! with the checksum field zero, stored little-endian. Checked in user space whatever the
//! engine (the XDP program leaves it to the kernel's SCTP stack), by the `crc32c` crate,
//! which uses the CPU's CRC instructions.

use sctp_common::{
    abi::FlowKey,
    parse::{sctp_header, SctpLocation},
};

/// What the checksums said.
#[derive(Clone, Debug, Default)]
pub struct Checksums {
    /// SCTP packets whose checksum was checked.
    pub checked: u64,
    /// Of those, checksums that did not match (offload trouble shows up here).
    pub bad: u64,
    /// SCTP packets that could not be checked: cut short by the capture's snapshot
    /// length, or a first IP fragment.
    pub unverifiable: u64,
    /// Bad checksums by flow.
    pub bad_by_flow: foldhash::HashMap<FlowKey, u64>,
}

impl Checksums {
    /// Adds another count (a shard of the same capture).
    pub fn merge(&mut self, other: &Checksums) {
        self.checked += other.checked;
        self.bad += other.bad;
        self.unverifiable += other.unverifiable;
        for (k, n) in &other.bad_by_flow {
            *self.bad_by_flow.entry(*k).or_default() += n;
        }
    }

    /// Checks the SCTP packet `loc` found in the frame; `cut` when the capture kept less
    /// of the frame than was on the wire.
    pub fn check(&mut self, frame: &[u8], loc: &SctpLocation, cut: bool) {
        let Some(sctp) = frame.get(loc.offset..loc.end).filter(|p| p.len() >= 12 && !cut && !loc.first_fragment) else {
            self.unverifiable += 1;
            return;
        };
        self.checked += 1;
        let stored = u32::from_le_bytes([sctp[8], sctp[9], sctp[10], sctp[11]]);
        let crc = crc32c::crc32c_append(crc32c::crc32c_append(crc32c::crc32c(&sctp[..8]), &[0; 4]), &sctp[12..]);
        if crc != stored {
            self.bad += 1;
            if let Some((key, _)) = sctp_header(frame, loc.offset) {
                *self.bad_by_flow.entry(key).or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sctp_common::{
        builder::{Chunk, SctpPacket, V4},
        parse::{locate_sctp, NoTally},
    };

    use super::*;

    fn check(c: &mut Checksums, frame: &[u8], cut: bool) {
        c.check(frame, &locate_sctp(frame, &mut NoTally).unwrap(), cut);
    }

    #[test]
    fn a_good_checksum_passes_and_a_flipped_bit_is_counted_on_its_flow() {
        let frame = SctpPacket::new(V4, 7, vec![Chunk::data(1, 0, 0, 0, 5)]).frame();
        let mut c = Checksums::default();
        check(&mut c, &frame, false);
        assert_eq!((c.checked, c.bad), (1, 0));
        let mut bad = frame.clone();
        *bad.last_mut().unwrap() ^= 1;
        check(&mut c, &bad, false);
        assert_eq!((c.checked, c.bad), (2, 1));
        assert_eq!(c.bad_by_flow.values().sum::<u64>(), 1);
        let cut = &frame[..frame.len() - 2];
        check(&mut c, cut, true);
        assert_eq!(c.unverifiable, 1);
    }
}
