//! The association model: the two directions of each association paired by their tags,
//! with its state, every path of a multi-homed peer, retransmissions, windows and round
//! trips. `inspect` builds it from the packets it replays, `run` from the kernel's
//! summaries and flows. Imports nothing of this crate: only sctp-common.

mod association;
pub mod live;
pub mod packet_view;
mod round_trip;
mod table;
pub mod trace;

pub use association::{Association, DirStats, Endpoint, EndpointInfo, PathStats, State};
pub use table::{Associations, Expiry, Indexed, MAX_ASSOCIATIONS};

/// The association table of a replay and, when asked for, the traces of its conversations.
pub struct Conversations {
    pub associations: Associations,
    pub traces: Option<trace::Traces>,
}

impl Conversations {
    #[must_use]
    pub fn new(trace: bool) -> Self {
        Self { associations: Associations::default(), traces: trace.then(trace::Traces::default) }
    }

    /// One packet, at `ts_ns`.
    pub fn add(&mut self, p: &packet_view::PacketView, ts_ns: u64) {
        if let (Some((id, from)), Some(t)) = (self.associations.add(p, ts_ns), &mut self.traces) {
            t.add(p, ts_ns, id, from);
        }
    }

    /// Adds another shard's (associations of disjoint port pairs).
    pub fn merge(&mut self, other: Conversations) {
        if let (Some(a), Some(b)) = (&mut self.traces, other.traces) {
            a.merge(b, self.associations.list.len());
        }
        self.associations.merge(other.associations);
    }
}
