//! Token buckets for the INIT rate rules.

use crate::abi::Bucket;

/// One token, in the billionths that [`Bucket::nano_tokens`] counts.
const TOKEN: u64 = 1_000_000_000;

impl Bucket {
    /// Refills for the time since the last call and takes one token if there is one.
    /// Shared buckets are updated without atomics: CPUs racing may let a few extra
    /// INITs through, never block a legitimate rate.
    #[inline(always)]
    pub fn take(&mut self, rate: u32, burst: u32, now_ns: u64) -> bool {
        let cap = u64::from(burst.max(1)) * TOKEN;
        let rate = u64::from(rate.max(1));
        // A new bucket (never refilled) is full.
        let elapsed = if self.last_ns == 0 { u64::MAX } else { now_ns.saturating_sub(self.last_ns) };
        // Compared before multiplying: no 128-bit arithmetic in the bpf target.
        let tokens = if elapsed >= cap / rate { cap } else { (self.nano_tokens + elapsed * rate).min(cap) };
        self.last_ns = now_ns;
        let ok = tokens >= TOKEN;
        self.nano_tokens = if ok { tokens - TOKEN } else { tokens };
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn token_bucket_refills_at_its_rate_up_to_its_burst() {
        let mut b = Bucket::default();
        let t0 = 5_000 * MS;
        // New: full (burst 2), then empty.
        assert!(b.take(10, 2, t0));
        assert!(b.take(10, 2, t0));
        assert!(!b.take(10, 2, t0));
        // 10 per second: one token after 100 ms, not before.
        assert!(!b.take(10, 2, t0 + 99 * MS));
        assert!(b.take(10, 2, t0 + 100 * MS));
        assert!(!b.take(10, 2, t0 + 100 * MS));
        // An hour idle refills to the burst, not beyond.
        let later = t0 + 3_600_000 * MS;
        assert!(b.take(10, 2, later));
        assert!(b.take(10, 2, later));
        assert!(!b.take(10, 2, later));
    }

    #[test]
    fn a_huge_rate_never_overflows() {
        let mut b = Bucket::default();
        for i in 0..1000 {
            assert!(b.take(u32::MAX, u32::MAX, 1 + i));
        }
    }
}
