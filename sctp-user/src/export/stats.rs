//! `/stats`: one JSON document per build, a type the exporter writes and `top` reads.

use serde::{Deserialize, Serialize};

use super::{flow_account::FlowSeries, state::EchoTotals};
use crate::{
    doc::{AssociationDoc, MessageDoc, SnapshotDoc, TableSummaryDoc},
    echo::EchoStats,
    join::JoinReport,
};

/// What `/stats` serves (DESIGN.md contract 3).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Stats {
    /// The node this instance runs on.
    pub node: String,
    /// What XDP counted on the packets arriving, with the busiest flows.
    pub xdp: SnapshotDoc,
    /// What the TC egress program counted on the packets leaving.
    pub egress: SnapshotDoc,
    /// The flows exported as series of their own (the rest as `other`), with their totals.
    pub flows: Vec<FlowSeries>,
    /// The echo server's counters since the first start.
    pub echo: EchoTotals,
    /// The echo server's counters of this run (none without the echo server).
    pub echo_current: Option<EchoStats>,
    /// The echo server's associations joined with the wire's.
    pub join: Option<JoinReport>,
    /// The busiest associations of the table.
    pub associations: Vec<AssociationDoc>,
    /// Counts about the association table (none when it is not kept).
    pub associations_summary: Option<TableSummaryDoc>,
    /// The application messages XDP counted on the packets arriving (DESIGN.md's
    /// `messages`; each association has its own, both ways), and those the TC egress
    /// program counted on the packets leaving; since the first start.
    #[serde(default)]
    pub messages: Vec<MessageDoc>,
    #[serde(default)]
    pub messages_leaving: Vec<MessageDoc>,
}
