//! The application messages every flow ever counted (see `sctp_common::parse::tally`), as
//! totals that never go backwards: kernel flows come and go (LRU eviction, a key made again
//! starts at zero), so the last counts of each flow are kept, and those of a flow that
//! vanished or restarted are carried into `retired` (as `FlowAccount` does for packets).
//! Exact up to the counts a flow made between the last build and its eviction.

use std::collections::BTreeMap;

use sctp_common::abi::{FlowKey, FlowStats};
use serde::{Deserialize, Serialize};

use crate::assoc::messages::Messages;

/// A message key of a flow's table (`MessageSlot::head` and `tail`, as `head:tail` in
/// hex: the state file is JSON, whose keys are strings).
type SlotKey = String;

/// The accounting state; serialized to survive a controller restart.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct MessageAccount {
    /// Counts of flow entries that vanished or restarted, by key.
    retired: BTreeMap<SlotKey, u64>,
    /// Keys beyond the flows' tables, of those entries.
    retired_untabled: u64,
    /// The last counts of every live flow (`src_port:dst_port:vtag`), and its untabled.
    seen: BTreeMap<String, (BTreeMap<SlotKey, u64>, u64)>,
}

fn slot_key(head: u64, tail: u64) -> SlotKey {
    format!("{head:x}:{tail:x}")
}

impl MessageAccount {
    /// Takes the current kernel flows.
    pub(super) fn update<'f>(&mut self, flows: impl IntoIterator<Item = (&'f FlowKey, &'f FlowStats)>) {
        let mut live = BTreeMap::new();
        for (k, f) in flows {
            let counts: BTreeMap<SlotKey, u64> =
                f.messages.iter().filter(|s| s.head != 0).map(|s| (slot_key(s.head, s.tail), s.count)).collect();
            if counts.is_empty() && f.messages_untabled == 0 {
                continue;
            }
            live.insert(format!("{}:{}:{}", k.src_port, k.dst_port, k.vtag), (counts, f.messages_untabled));
        }
        for (key, prev) in &self.seen {
            let gone = match live.get(key) {
                None => true,
                // Evicted and made again between two updates: the old entry is retired.
                Some((now, untabled)) => {
                    *untabled < prev.1 || prev.0.iter().any(|(k, n)| now.get(k).copied().unwrap_or(0) < *n)
                }
            };
            if gone {
                for (k, n) in &prev.0 {
                    *self.retired.entry(k.clone()).or_default() += n;
                }
                self.retired_untabled += prev.1;
            }
        }
        self.seen = live;
    }

    /// Every message ever counted, by key.
    #[must_use]
    pub(super) fn total(&self) -> Messages {
        let mut all = Messages::default();
        let mut add = |counts: &BTreeMap<SlotKey, u64>| {
            for (k, n) in counts {
                let mut words = k.split(':').map(|w| u64::from_str_radix(w, 16).unwrap_or(0));
                if let (Some(head), Some(tail)) = (words.next(), words.next()) {
                    all.add_slot(head, tail, *n);
                }
            }
        };
        add(&self.retired);
        for (counts, _) in self.seen.values() {
            add(counts);
        }
        all.untabled = self.retired_untabled + self.seen.values().map(|(_, u)| u).sum::<u64>();
        all
    }
}

#[cfg(test)]
mod tests {
    use bytemuck::Zeroable as _;
    use sctp_common::{
        abi::MessageSlot,
        parse::message::{Kind, Protocol},
    };

    use super::*;

    fn flow(count: u64) -> FlowStats {
        let mut f = FlowStats::zeroed();
        let (head, tail) = MessageSlot::key(Protocol::Ngap as u8, Kind::Initiating as u8, 15, 0, 0);
        f.messages[0] = MessageSlot { head, tail, count };
        f
    }

    #[test]
    fn totals_never_go_backwards_through_eviction_and_restarts() {
        let key = |p| FlowKey { src_port: p, dst_port: 38412, vtag: 7 };
        let mut a = MessageAccount::default();
        let total = |a: &MessageAccount| a.total().by_key.values().map(|t| t.count).sum::<u64>();
        a.update([(&key(1), &flow(5)), (&key(2), &flow(3))]);
        assert_eq!(total(&a), 8);
        // Flow 2 evicted, flow 1 made again from zero and counting 2.
        a.update([(&key(1), &flow(2))]);
        assert_eq!(total(&a), 10);
        a.update([(&key(1), &flow(4))]);
        assert_eq!(total(&a), 12);
        let back: MessageAccount = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(total(&back), 12, "resumed from the state file");
    }
}
