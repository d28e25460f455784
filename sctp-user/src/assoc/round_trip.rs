//! Round trips a passive monitor can time from one direction's TSNs.

/// The TSNs one direction sent, without memory per TSN (a flood of DATA that nobody
/// acknowledges costs nothing): the highest TSN sent, for retransmissions (a TSN at or
/// below it was sent before, as the XDP program counts them), and one TSN timed at a time
/// for DATA-to-SACK round trips, as passive monitors sample them (Karn's rule: a TSN sent
/// twice gives none).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TsnTracker {
    highest: Option<u32>,
    /// The TSN being timed and when it was sent.
    sample: Option<(u32, u64)>,
}

/// `a` is at or before `b` in serial number arithmetic (RFC 1982: TSNs wrap).
fn serial_le(a: u32, b: u32) -> bool {
    b.wrapping_sub(a).cast_signed() >= 0
}

impl TsnTracker {
    /// A DATA chunk; whether it is a retransmission (its TSN at or below the highest sent
    /// before). Only TSNs that `may_time` are timed.
    pub(super) fn sent(&mut self, tsn: u32, ts_ns: u64, may_time: bool) -> bool {
        if self.highest.is_some_and(|h| serial_le(tsn, h)) {
            if self.sample.is_some_and(|(t, _)| t == tsn) {
                self.sample = None;
            }
            return true;
        }
        self.highest = Some(tsn);
        if self.sample.is_none() && may_time {
            self.sample = Some((tsn, ts_ns));
        }
        false
    }

    /// The other side acknowledged up to `cum`: the round trip of the TSN timed, if this
    /// covers it.
    pub(super) fn acked(&mut self, cum: u32, ts_ns: u64) -> Option<u64> {
        let (tsn, sent) = self.sample?;
        if !serial_le(tsn, cum) {
            return None;
        }
        self.sample = None;
        Some(ts_ns.saturating_sub(sent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmissions_and_round_trips_need_no_memory_per_tsn() {
        let mut t = TsnTracker::default();
        // A million TSNs never acknowledged: the tracker stays as it is, a few words.
        for tsn in 0..1_000_000 {
            assert!(!t.sent(tsn, u64::from(tsn), true));
        }
        assert!(core::mem::size_of::<TsnTracker>() <= 32);
        // The first TSN was timed; a SACK covering it gives its round trip, once.
        assert_eq!(t.acked(0, 5_000), Some(5_000));
        assert_eq!(t.acked(10, 6_000), None);
        // Karn: the TSN timed sent again gives none.
        let mut t = TsnTracker::default();
        assert!(!t.sent(u32::MAX, 0, true));
        assert!(t.sent(u32::MAX, 10, true), "a retransmission");
        assert!(!t.sent(0, 20, true), "past the wrap");
        assert_eq!(t.acked(u32::MAX, 30), None);
        assert_eq!(t.acked(0, 40), Some(20));
        // Only TSNs that may be timed are (from summaries: those user space sees all of).
        let mut t = TsnTracker::default();
        assert!(!t.sent(1, 0, false));
        assert!(!t.sent(2, 5, true));
        assert_eq!(t.acked(1, 9), None);
        assert_eq!(t.acked(2, 15), Some(10));
    }
}
