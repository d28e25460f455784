//! Per-flow counters for export with a bounded label set that never goes backwards.
//!
//! Kernel flow entries come and go (LRU eviction, a recreated key restarts at zero), and a
//! label set must stay bounded. Rules: `total` is every byte/packet any flow ever counted
//! (entries that vanish or restart are carried into `retired`); up to N flows are *sticky*:
//! once chosen they keep their series, which starts at zero when chosen; `other` is total
//! minus the sticky series. A sticky flow that vanishes leaves the set (its series ends,
//! its counts flow into `other`). Every exported counter only grows.

use std::collections::BTreeMap;

use sctp_common::abi::{FlowKey, FlowStats};
use serde::{Deserialize, Serialize};

/// The counters exported per flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FlowTotals {
    pub packets: u64,
    pub bytes: u64,
    pub data_chunks: u64,
    pub retransmissions: u64,
    pub sack_gap_blocks: u64,
}

impl FlowTotals {
    #[must_use]
    pub(crate) fn of(f: &FlowStats) -> Self {
        Self {
            packets: f.packets,
            bytes: f.bytes,
            data_chunks: f.data_chunks,
            retransmissions: f.data_at_or_below_highest,
            sack_gap_blocks: f.sack_gap_blocks,
        }
    }

    fn fields(&self) -> [u64; 5] {
        [self.packets, self.bytes, self.data_chunks, self.retransmissions, self.sack_gap_blocks]
    }

    fn from_fields(f: [u64; 5]) -> Self {
        Self { packets: f[0], bytes: f[1], data_chunks: f[2], retransmissions: f[3], sack_gap_blocks: f[4] }
    }

    fn zip(self, o: Self, op: impl Fn(u64, u64) -> u64) -> Self {
        let (a, b) = (self.fields(), o.fields());
        Self::from_fields(std::array::from_fn(|i| op(a[i], b[i])))
    }

    #[must_use]
    pub(crate) fn plus(self, o: Self) -> Self {
        self.zip(o, u64::wrapping_add)
    }

    #[must_use]
    pub(crate) fn minus(self, o: Self) -> Self {
        self.zip(o, u64::saturating_sub)
    }

    /// Whether any counter is below `o`'s (the entry restarted).
    fn went_back_from(&self, o: &Self) -> bool {
        self.fields().iter().zip(o.fields()).any(|(a, b)| *a < b)
    }
}

/// A flow with its own series.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Sticky {
    /// Totals when chosen: the series counts from there.
    offset: FlowTotals,
    /// Counts of earlier incarnations of the key since it was chosen.
    carry: FlowTotals,
    /// Addresses, for the label.
    label: String,
}

/// The accounting state; serialized to survive a controller restart.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct FlowAccount {
    /// Counts of flow entries that vanished or restarted.
    retired: FlowTotals,
    /// Last values of every live flow entry (key as `src_port:dst_port:vtag`).
    seen: BTreeMap<String, FlowTotals>,
    sticky: BTreeMap<String, Sticky>,
}

/// One exported series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FlowSeries {
    /// `SRC:PORT->DST:PORT`, or `other`.
    pub flow: String,
    /// Hex tag, empty for `other`.
    pub vtag: String,
    pub totals: FlowTotals,
}

fn key_string(k: FlowKey) -> String {
    format!("{}:{}:{}", k.src_port, k.dst_port, k.vtag)
}

impl FlowAccount {
    /// Takes the current kernel flows; `labels` gives each flow's display name.
    pub(super) fn update(
        &mut self,
        flows: &BTreeMap<FlowKey, FlowStats>,
        top: usize,
        label: impl Fn(&FlowKey, &FlowStats) -> String,
    ) {
        let mut live = BTreeMap::new();
        for (k, f) in flows {
            let key = key_string(*k);
            let cur = FlowTotals::of(f);
            if let Some(prev) = self.seen.get(&key) {
                if cur.went_back_from(prev) {
                    // Evicted and recreated between two updates: the old entry is retired.
                    self.retired = self.retired.plus(*prev);
                    if let Some(s) = self.sticky.get_mut(&key) {
                        s.carry = s.carry.plus(*prev);
                    }
                }
            }
            live.insert(key, cur);
        }
        for (key, prev) in &self.seen {
            if !live.contains_key(key) {
                self.retired = self.retired.plus(*prev);
                self.sticky.remove(key);
            }
        }
        let before = std::mem::replace(&mut self.seen, live);
        if self.sticky.len() < top {
            let mut candidates: Vec<(&FlowKey, &FlowStats)> =
                flows.iter().filter(|(k, _)| !self.sticky.contains_key(&key_string(**k))).collect();
            candidates.sort_by_key(|(_, f)| std::cmp::Reverse(f.bytes));
            for (k, f) in candidates.into_iter().take(top - self.sticky.len()) {
                let key = key_string(*k);
                // A flow already published inside `other` starts its series from zero; a
                // flow first seen now was never counted anywhere and keeps its counts.
                let offset = if before.contains_key(&key) { self.seen[&key] } else { FlowTotals::default() };
                self.sticky.insert(key, Sticky { offset, carry: FlowTotals::default(), label: label(k, f) });
            }
        }
    }

    /// Every count ever made, by any flow entry.
    #[must_use]
    pub(super) fn total(&self) -> FlowTotals {
        self.seen.values().fold(self.retired, |a, b| a.plus(*b))
    }

    /// The sticky series, then `other`.
    #[must_use]
    pub(super) fn series(&self) -> Vec<FlowSeries> {
        let mut out = Vec::new();
        let mut sticky_sum = FlowTotals::default();
        for (key, s) in &self.sticky {
            let cur = self.seen.get(key).copied().unwrap_or_default();
            let totals = s.carry.plus(cur).minus(s.offset);
            sticky_sum = sticky_sum.plus(totals);
            let vtag = key.rsplit(':').next().and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
            out.push(FlowSeries { flow: s.label.clone(), vtag: format!("{vtag:#010x}"), totals });
        }
        out.push(FlowSeries { flow: "other".into(), vtag: String::new(), totals: self.total().minus(sticky_sum) });
        out
    }
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable as _;

    use super::*;

    fn flow(packets: u64, bytes: u64) -> FlowStats {
        let mut f = FlowStats::zeroed();
        f.packets = packets;
        f.bytes = bytes;
        f
    }

    fn key(p: u16) -> FlowKey {
        FlowKey { src_port: p, dst_port: 36412, vtag: u32::from(p) }
    }

    fn by_name(a: &FlowAccount) -> BTreeMap<String, FlowTotals> {
        a.series().into_iter().map(|s| (s.flow, s.totals)).collect()
    }

    #[test]
    fn counters_never_go_backwards_through_churn() {
        let mut a = FlowAccount::default();
        let label = |k: &FlowKey, _: &FlowStats| format!("f{}", k.src_port);
        let mut last: BTreeMap<String, FlowTotals> = BTreeMap::new();
        let mut last_total = FlowTotals::default();
        // Rounds of traffic: flows grow, vanish, come back from zero, new ones appear.
        let rounds: Vec<Vec<(u16, u64)>> = vec![
            vec![(1, 10), (2, 500), (3, 30)],
            vec![(1, 20), (2, 600), (3, 40), (4, 5000)],
            vec![(2, 700), (4, 5100)],         // 1 and 3 evicted
            vec![(1, 2), (2, 800), (4, 5200)], // 1 recreated from zero
            vec![(2, 100), (4, 5300), (5, 9)], // 2 recreated between updates
        ];
        for round in rounds {
            let flows: BTreeMap<_, _> = round.iter().map(|(p, b)| (key(*p), flow(*b / 10, *b))).collect();
            a.update(&flows, 2, label);
            let total = a.total();
            assert!(!total.went_back_from(&last_total), "{total:?} < {last_total:?}");
            let now = by_name(&a);
            for (name, v) in &now {
                if let Some(prev) = last.get(name) {
                    assert!(!v.went_back_from(prev), "{name}: {v:?} < {prev:?}");
                }
            }
            let sum = now.values().fold(FlowTotals::default(), |x, y| x.plus(*y));
            assert_eq!(sum, total, "series add up to the total");
            assert!(now.len() <= 3, "bounded: 2 sticky + other");
            last = now;
            last_total = total;
        }
        // Every byte ever counted, whatever came and went.
        assert_eq!(last_total.bytes, 20 + 40 + 2 + 800 + 100 + 5300 + 9);
    }

    #[test]
    fn a_flow_chosen_when_first_seen_keeps_its_counts() {
        let mut a = FlowAccount::default();
        let flows: BTreeMap<_, _> = [(key(1), flow(10, 1000))].into_iter().collect();
        a.update(&flows, 5, |_, _| "f1".into());
        let s = by_name(&a);
        assert_eq!(s["f1"].bytes, 1000);
        assert_eq!(s["other"].bytes, 0);
    }
}
