//! A live run's association table: the XDP program's packet summaries (every CPU, in the
//! ring's order) counted into the same [`Associations`] `inspect` builds from frames, and
//! forgotten once quiet (see [`Expiry`], whose defaults it keeps).

use std::collections::BTreeMap;

use sctp_common::abi::{PacketSummary, EGRESS};

use super::{packet_view, Associations, Expiry, State};

#[derive(Debug, Default)]
pub struct LiveAssociations {
    pub table: Associations,
    /// Summaries taken from the ring.
    pub summaries: u64,
    /// Summaries the kernel had no room for: the table misses those packets.
    pub lost: u64,
    /// The attached interfaces' names, by index.
    names: BTreeMap<u32, String>,
    /// SCTP packets summarized per interface: arriving, leaving.
    pub interfaces: BTreeMap<u32, [Traffic; 2]>,
}

/// Packets and bytes (IP length) one way.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    pub packets: u64,
    pub bytes: u64,
}

impl LiveAssociations {
    /// A table for a run attached to these interfaces (index, name).
    #[must_use]
    pub fn new(interfaces: impl IntoIterator<Item = (u32, String)>) -> Self {
        Self { names: interfaces.into_iter().collect(), ..Self::default() }
    }

    pub fn ingest(&mut self, summaries: &[PacketSummary]) {
        for s in summaries {
            let _ = self.table.add(&packet_view::from_summary(s), s.ts_ns);
            let way = &mut self.interfaces.entry(s.ifindex).or_default()[usize::from(s.direction == EGRESS)];
            way.packets += 1;
            way.bytes += u64::from(s.ip_len);
        }
        self.summaries += summaries.len() as u64;
    }

    /// A path's interface name, if the path has one (a capture's paths have none).
    #[must_use]
    pub fn named(&self, ifindex: u32) -> Option<String> {
        (ifindex != 0).then(|| self.iface_name(ifindex))
    }

    /// An interface's name ("if" and its index for one not attached by this run).
    #[must_use]
    pub fn iface_name(&self, ifindex: u32) -> String {
        self.names.get(&ifindex).cloned().unwrap_or_else(|| format!("if{ifindex}"))
    }

    /// Forgets what went quiet by `now_ns` (the kernel's monotonic clock).
    pub fn expire(&mut self, now_ns: u64) {
        self.table.expire(now_ns, &Expiry::default());
    }

    /// Associations tracked now, by state.
    #[must_use]
    pub fn by_state(&self) -> Vec<(State, u64)> {
        State::ALL.iter().map(|s| (*s, self.table.iter().filter(|a| a.state == *s).count() as u64)).collect()
    }
}
