//! Diameter requests the kernel waits answers for (`abi::maps::PENDING`, see
//! `sctp_common::parse::tally`). The kernel has no timers: a request never answered would
//! wait until the LRU evicted it, uncounted. User space takes out those older than a
//! timeout and counts them unanswered, by the direction their answers would have taken
//! and their command.

use std::collections::BTreeMap;

use aya::maps::{HashMap, MapData};
use sctp_common::abi::{PendingKey, PendingRequest, ResponseKey};

pub struct PendingRequests {
    map: HashMap<MapData, PendingKey, PendingRequest>,
}

impl PendingRequests {
    pub(super) fn new(map: HashMap<MapData, PendingKey, PendingRequest>) -> Self {
        Self { map }
    }

    /// Takes out the requests sent `timeout_ns` or longer before `now_ns` (the kernel's
    /// monotonic clock) and counts them in `unanswered`. One answered meanwhile is gone
    /// already (its removal fails, and it is not counted); one that cannot be read is left.
    pub fn sweep(&mut self, now_ns: u64, timeout_ns: u64, unanswered: &mut BTreeMap<ResponseKey, u64>) {
        let old: Vec<(PendingKey, PendingRequest)> = self
            .map
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, r)| now_ns.saturating_sub(r.sent_ns) >= timeout_ns)
            .collect();
        for (k, r) in old {
            if self.map.remove(&k).is_ok() {
                let key = ResponseKey { flow: k.answer_flow, application: r.application, command: r.command };
                *unanswered.entry(key).or_default() += 1;
            }
        }
    }
}
