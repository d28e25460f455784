//! A live run's association table: the XDP program's packet summaries (every CPU, in the
//! ring's order) counted into the same [`Associations`] `inspect` builds from frames, and
//! forgotten once quiet (see [`Expiry`], whose defaults it keeps).

use serde_json::{json, Value};
use sctp_common::abi::PacketSummary;

use super::{
    assoc::{Associations, Expiry, State},
    packet_view,
};

#[derive(Debug, Default)]
pub struct LiveAssociations {
    pub table: Associations,
    /// Summaries taken from the ring.
    pub summaries: u64,
    /// Summaries the kernel had no room for: the table misses those packets.
    pub lost: u64,
}

impl LiveAssociations {
    pub fn ingest(&mut self, summaries: &[PacketSummary]) {
        for s in summaries {
            let _ = self.table.add(&packet_view::from_summary(s), s.ts_ns);
        }
        self.summaries += summaries.len() as u64;
    }

    /// Forgets what went quiet by `now_ns` (the kernel's monotonic clock).
    pub fn expire(&mut self, now_ns: u64) {
        self.table.expire(now_ns, &Expiry::default());
    }

    /// Associations tracked now, by state.
    #[must_use]
    pub fn by_state(&self) -> Vec<(State, u64)> {
        let all = [State::Handshake, State::Established, State::ShuttingDown, State::Closed, State::Aborted];
        all.iter()
            .map(|s| (*s, self.table.iter().filter(|a| a.state == *s).count() as u64))
            .collect()
    }

    /// The `top` busiest associations, as `inspect --format json` gives them (DESIGN.md
    /// contract 2).
    #[must_use]
    pub fn json(&self, top: usize) -> Value {
        self.table.busiest(top).into_iter().map(|(_, a)| a.json()).collect()
    }

    /// Counts about the table itself.
    #[must_use]
    pub fn summary_json(&self) -> Value {
        json!({
            "tracked": self.table.iter().count(),
            "by_state": self.by_state().into_iter().map(|(s, n)| (s.name().to_string(), Value::from(n))).collect::<serde_json::Map<_, _>>(),
            "restarts": self.table.iter().filter(|a| a.restarted).count(),
            "forgotten": self.table.forgotten,
            "untracked_packets": self.table.untracked,
            "summaries": self.summaries,
            "summaries_lost": self.lost,
        })
    }
}
