//! SCTP chunk types, flags and the fixed-size bucket index used for per-flow counts.

/// Chunk type numbers from RFC 9260, 3758, 4895, 5061, 6525, 4820 and 8260.
pub mod ty {
    pub const DATA: u8 = 0;
    pub const INIT: u8 = 1;
    pub const INIT_ACK: u8 = 2;
    pub const SACK: u8 = 3;
    pub const HEARTBEAT: u8 = 4;
    pub const HEARTBEAT_ACK: u8 = 5;
    pub const ABORT: u8 = 6;
    pub const SHUTDOWN: u8 = 7;
    pub const SHUTDOWN_ACK: u8 = 8;
    pub const ERROR: u8 = 9;
    pub const COOKIE_ECHO: u8 = 10;
    pub const COOKIE_ACK: u8 = 11;
    pub const ECNE: u8 = 12;
    pub const CWR: u8 = 13;
    pub const SHUTDOWN_COMPLETE: u8 = 14;
    pub const AUTH: u8 = 15;
    pub const I_DATA: u8 = 64;
    pub const ASCONF_ACK: u8 = 128;
    pub const RE_CONFIG: u8 = 130;
    pub const PAD: u8 = 132;
    pub const FORWARD_TSN: u8 = 192;
    pub const ASCONF: u8 = 193;
    pub const I_FORWARD_TSN: u8 = 194;
}

/// Every chunk type this tool names, in bucket order; anything else lands in [`UNKNOWN_BUCKET`].
pub const KNOWN: [(u8, &str); 23] = [
    (ty::DATA, "DATA"),
    (ty::INIT, "INIT"),
    (ty::INIT_ACK, "INIT_ACK"),
    (ty::SACK, "SACK"),
    (ty::HEARTBEAT, "HEARTBEAT"),
    (ty::HEARTBEAT_ACK, "HEARTBEAT_ACK"),
    (ty::ABORT, "ABORT"),
    (ty::SHUTDOWN, "SHUTDOWN"),
    (ty::SHUTDOWN_ACK, "SHUTDOWN_ACK"),
    (ty::ERROR, "ERROR"),
    (ty::COOKIE_ECHO, "COOKIE_ECHO"),
    (ty::COOKIE_ACK, "COOKIE_ACK"),
    (ty::ECNE, "ECNE"),
    (ty::CWR, "CWR"),
    (ty::SHUTDOWN_COMPLETE, "SHUTDOWN_COMPLETE"),
    (ty::AUTH, "AUTH"),
    (ty::I_DATA, "I_DATA"),
    (ty::ASCONF_ACK, "ASCONF_ACK"),
    (ty::RE_CONFIG, "RE_CONFIG"),
    (ty::PAD, "PAD"),
    (ty::FORWARD_TSN, "FORWARD_TSN"),
    (ty::ASCONF, "ASCONF"),
    (ty::I_FORWARD_TSN, "I_FORWARD_TSN"),
];

/// Bucket for chunk types not in [`KNOWN`].
pub const UNKNOWN_BUCKET: usize = KNOWN.len();
/// Number of per-flow chunk buckets: the known types plus one for unknown ones.
pub const BUCKETS: usize = KNOWN.len() + 1;

/// Maps a chunk type to its per-flow bucket. The types 0..=15 are contiguous, so the
/// common case is one comparison.
#[inline(always)]
#[must_use]
pub fn bucket(chunk_type: u8) -> usize {
    match chunk_type {
        0..=15 => chunk_type as usize,
        ty::I_DATA => 16,
        ty::ASCONF_ACK => 17,
        ty::RE_CONFIG => 18,
        ty::PAD => 19,
        ty::FORWARD_TSN => 20,
        ty::ASCONF => 21,
        ty::I_FORWARD_TSN => 22,
        _ => UNKNOWN_BUCKET,
    }
}

/// The name of a chunk type, or `None` for a type no RFC above defines.
#[must_use]
pub fn name(chunk_type: u8) -> Option<&'static str> {
    KNOWN.iter().find(|(t, _)| *t == chunk_type).map(|(_, n)| *n)
}

/// Flag bits of DATA (RFC 9260 3.3.1) and I-DATA (RFC 8260 2.1).
pub mod flag {
    pub const END: u8 = 0x01;
    pub const BEGIN: u8 = 0x02;
    pub const UNORDERED: u8 = 0x04;
    pub const IMMEDIATE: u8 = 0x08;
    /// The T bit of ABORT and SHUTDOWN-COMPLETE: the sender reflected the peer's tag.
    pub const T_BIT: u8 = 0x01;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_known_table_and_unknown_types_share_one() {
        for (i, (t, _)) in KNOWN.iter().enumerate() {
            assert_eq!(bucket(*t), i, "type {t}");
        }
        for t in [16u8, 63, 65, 129, 131, 195, 255] {
            assert_eq!(bucket(t), UNKNOWN_BUCKET, "type {t}");
        }
    }
}
