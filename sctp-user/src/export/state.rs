//! The state file: user-space totals (echo counters, per-PPID and per-stream tallies, the
//! latency histogram, flow series) saved after every build and resumed from at start, so
//! that counters only grow across restarts.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{flow_account::FlowAccount, message_account::MessageAccount};
use crate::{
    echo::EchoStats,
    join::{Histogram, Tally},
};

/// Echo counters that survive restarts (gauges are not kept).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct EchoTotals {
    pub associations: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub shed: u64,
    pub send_errors: u64,
    pub send_failed_events: u64,
    pub oversize_aborts: u64,
    pub notifications: BTreeMap<String, u64>,
}

impl EchoTotals {
    pub(super) fn plus(&self, s: &EchoStats) -> Self {
        let mut notifications = self.notifications.clone();
        for (k, v) in &s.notifications {
            *notifications.entry(k.clone()).or_default() += v;
        }
        Self {
            associations: self.associations + s.associations_total,
            messages_in: self.messages_in + s.messages_in,
            messages_out: self.messages_out + s.messages_out,
            bytes_in: self.bytes_in + s.bytes_in,
            bytes_out: self.bytes_out + s.bytes_out,
            shed: self.shed + s.shed,
            send_errors: self.send_errors + s.send_errors,
            send_failed_events: self.send_failed_events + s.send_failed_events,
            oversize_aborts: self.oversize_aborts + s.oversize_aborts,
            notifications,
        }
    }
}

/// User-space totals saved between runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub echo: EchoTotals,
    pub ppid: BTreeMap<String, Tally>,
    pub stream: BTreeMap<String, Tally>,
    pub latency: Histogram,
    pub latency_unmatched: u64,
    pub flows: FlowAccount,
    /// Arriving and leaving (older state files have none: from zero).
    #[serde(default)]
    pub messages: [MessageAccount; 2],
}

pub(super) fn add_tallies(base: &BTreeMap<String, Tally>, run: &BTreeMap<String, Tally>) -> BTreeMap<String, Tally> {
    let mut out = base.clone();
    for (k, v) in run {
        let t = out.entry(k.clone()).or_default();
        t.count += v.count;
        t.bytes += v.bytes;
    }
    out
}

/// Writes the totals to `path` whole (a new file renamed over the old one).
pub(super) fn write_state(path: &std::path::Path, saved: &Saved) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(saved)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters resumed from the state file must not go backwards by a rounding step: the
    /// latency sum that once read back one ULP low (`serde_json` without `float_roundtrip`).
    #[test]
    fn the_state_file_gives_back_exactly_what_was_saved() {
        let mut saved = Saved::default();
        for us in [14_201.799_999_999_997, 0.1, 1.0 / 3.0, 123_456.789_012_345_67] {
            saved.latency.observe(us);
            let back: Saved = serde_json::from_slice(&serde_json::to_vec(&saved).unwrap()).unwrap();
            assert_eq!(back.latency.sum_us.to_bits(), saved.latency.sum_us.to_bits(), "{}", saved.latency.sum_us);
        }
    }
}
