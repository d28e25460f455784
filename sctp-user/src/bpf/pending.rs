//! Diameter requests the kernel waits answers for (`abi::maps::PENDING`, see
//! `sctp_common::parse::tally`). The kernel has no timers: a request never answered would
//! wait until the LRU evicted it, uncounted. User space takes out those older than a
//! timeout, to count them unanswered by the direction their answers would have taken and
//! their command (`assoc::messages::Matched`).

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
    /// monotonic clock): each one's key (the direction its answer would have taken, its
    /// application and command). One answered meanwhile is gone already (its removal
    /// fails, and it is not returned); one that cannot be read is left.
    pub fn sweep(&mut self, now_ns: u64, timeout_ns: u64) -> Vec<ResponseKey> {
        let old: Vec<(PendingKey, PendingRequest)> = self
            .map
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, r)| now_ns.saturating_sub(r.sent_ns) >= timeout_ns)
            .collect();
        old.into_iter()
            .filter(|(k, _)| self.map.remove(k).is_ok())
            .map(|(k, r)| ResponseKey { flow: k.answer_flow, application: r.application, command: r.command })
            .collect()
    }
}
