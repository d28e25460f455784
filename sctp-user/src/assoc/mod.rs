//! The association model: the two directions of each association paired by their tags,
//! with its state, every path of a multi-homed peer, retransmissions, windows and round
//! trips. `inspect` builds it from the packets it replays, `run` from the kernel's
//! summaries and flows. Imports nothing of this crate: only sctp-common.

mod association;
pub mod live;
pub mod messages;
pub mod packet_view;
mod round_trip;
mod table;
pub mod trace;

pub use association::{Association, DirStats, Endpoint, EndpointInfo, PathStats, State};
pub use table::{Associations, Expiry, Indexed, MAX_ASSOCIATIONS};

use sctp_common::parse::SctpLocation;

/// The association table of a replay and, when asked for, the traces of its conversations.
pub struct Conversations {
    pub associations: Associations,
    pub traces: Option<trace::Traces>,
    pub messages: messages::MessageWatch,
}

impl Conversations {
    #[must_use]
    pub fn new(trace: bool) -> Self {
        Self {
            associations: Associations::default(),
            traces: trace.then(trace::Traces::default),
            messages: messages::MessageWatch::default(),
        }
    }

    /// One packet, at `ts_ns`; `frame` is its frame and where its SCTP header is, whose
    /// application messages are read.
    pub fn add(&mut self, p: &packet_view::PacketView, ts_ns: u64, frame: (&[u8], &SctpLocation)) {
        let at = self.associations.add(p, ts_ns);
        if let (Some((id, from)), Some(t)) = (at, &mut self.traces) {
            t.add(p, ts_ns, id, from);
        }
        let id = at.map(|(id, _)| self.associations.resolve(id));
        let list = &mut self.associations.list;
        let assoc = id.and_then(|id| Some((&mut list.get_mut(id)?.messages, id)));
        let counted = self.messages.frame(frame.0, frame.1, ts_ns, assoc);
        if let (Some((id, from)), Some(t)) = (at, &mut self.traces) {
            t.messages(&counted, ts_ns, id, from);
        }
    }

    /// At the end of a replay (its last frame at `end_ns`): the Diameter requests never
    /// answered.
    pub fn close(&mut self, end_ns: u64) {
        for (id, key) in self.messages.close(end_ns) {
            let id = self.associations.resolve(id);
            if let Some(a) = self.associations.list.get_mut(id) {
                a.messages.unanswered(key);
            }
        }
    }

    /// Adds another shard's (associations of disjoint port pairs).
    pub fn merge(&mut self, other: Conversations) {
        let base = self.associations.list.len();
        if let (Some(a), Some(b)) = (&mut self.traces, other.traces) {
            a.merge(b, base);
        }
        self.messages.merge(other.messages, base);
        self.associations.merge(other.associations);
    }
}
