//! Export for dashboards: Prometheus text at `/metrics` and JSON at `/stats`, rebuilt once
//! a second by the controller; scrapes read the last build. Imports `join`, `doc`, `assoc`
//! and below.
//!
//! Every counter only grows, across restarts too: kernel counters live in pinned maps;
//! per-flow series follow `FlowAccount`; user-space totals are saved after every build
//! (before it is published) and resumed from at start.

pub(crate) mod flow_account;
pub(crate) mod http;
mod message_account;
mod prometheus;
mod state;
pub(crate) mod stats;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use prometheus_client::registry::Registry;
use sctp_common::abi::{ip_addr, FlowKey};

use self::{
    flow_account::FlowAccount,
    message_account::MessageAccount,
    prometheus::{AssocSeries, RuleDrops, Scrape},
    state::{add_tallies, write_state, Saved},
    stats::Stats,
};
use crate::{
    assoc::{live::LiveAssociations, messages::Matched},
    doc::{AssociationDoc, MessageDoc, SnapshotDoc, TableSummaryDoc, Unreplayed},
    echo::EchoState,
    join::{self, LatencyFeed, Wire},
    snapshot::Snapshot,
};

/// Settings of the exporter.
#[derive(Clone, Debug)]
pub(crate) struct ExportConfig {
    pub listen: SocketAddr,
    /// Flows with a series of their own (the rest: `other`).
    pub top_flows: usize,
    /// Where the user-space totals are kept between runs (None: not kept).
    pub state_file: Option<PathBuf>,
    /// The node this instance runs on: in `/stats` and as `target_info{node}`, so that a
    /// fleet's series are told apart (and checked against the scrape's target labels).
    pub node: String,
}

/// What a scrape serves: the last build.
#[derive(Default)]
pub(crate) struct Published {
    pub text: String,
    pub stats: String,
    /// When it was built: `/readyz` answers 503 once builds stop (the controller's loop
    /// is stuck, or stopping).
    pub built: Option<Instant>,
}

/// How old the last build may be for `/readyz` to say ready (builds come each second).
const READY_WITHIN: Duration = Duration::from_secs(5);

/// The exporter's state across builds.
pub(crate) struct Exporter {
    cfg: ExportConfig,
    /// Totals of earlier runs.
    base: Saved,
    flows: FlowAccount,
    /// Messages arriving (XDP) and leaving (TC egress).
    messages: [MessageAccount; 2],
    latency: LatencyFeed,
    drops: RuleDrops,
    /// The last write of the state file failed (warned once until one succeeds).
    state_file_failing: bool,
    pub published: Arc<Mutex<Published>>,
}

impl Exporter {
    /// Resumes from the state file if there is one.
    pub(crate) fn new(cfg: ExportConfig) -> Result<Self> {
        let base: Saved = match &cfg.state_file {
            Some(path) if path.exists() => serde_json::from_slice(&std::fs::read(path)?).with_context(|| {
                format!("{} is not a valid state file: remove it to start from zero", path.display())
            })?,
            _ => Saved::default(),
        };
        let flows = base.flows.clone();
        let messages = base.messages.clone();
        Ok(Self {
            cfg,
            base,
            flows,
            messages,
            latency: LatencyFeed::default(),
            drops: RuleDrops::default(),
            state_file_failing: false,
            published: Arc::default(),
        })
    }

    /// Builds what scrapes see from the current counters; saves the totals first.
    pub(crate) fn build(
        &mut self,
        snap: &Snapshot,
        egress: &Snapshot,
        echo: Option<(&EchoState, &Wire, u16)>,
        associations: Option<&LiveAssociations>,
        matched: &Matched,
        now_ns: u64,
    ) -> Result<()> {
        self.flows.update(&snap.flows, self.cfg.top_flows, |k, f| {
            let src = SocketAddr::new(ip_addr(f.family, &f.src_addr), k.src_port);
            let dst = SocketAddr::new(ip_addr(f.family, &f.dst_addr), k.dst_port);
            format!("{src}->{dst}")
        });
        self.drops.update(&snap.rules.0);
        self.drops.update(&snap.rules.1);
        self.messages[0].update(&snap.flows);
        self.messages[1].update(&egress.flows);
        let mut messages = self.messages.each_ref().map(MessageAccount::total);
        // An answer arriving answers a request that left, and the other way round.
        let arriving = |k: &FlowKey| snap.flows.contains_key(k);
        messages[0].set_answers(matched, arriving, |k| !arriving(k));
        messages[1].set_answers(matched, |k| !arriving(k), arriving);
        let mut saved = Saved { flows: self.flows.clone(), messages: self.messages.clone(), ..self.base.clone() };
        let mut joined = None;
        if let Some((state, wire, port)) = echo {
            self.latency.feed(port, state, wire, now_ns);
            saved.echo = self.base.echo.plus(&state.stats);
            saved.ppid = add_tallies(&self.base.ppid, &wire.per_ppid);
            saved.stream = add_tallies(&self.base.stream, &wire.per_stream);
            saved.latency = self.base.latency.clone();
            saved.latency.merge(&self.latency.histogram);
            saved.latency_unmatched = self.base.latency_unmatched + self.latency.unmatched;
            joined = Some((join::join(port, state, wire, &snap.flows, associations), state.stats.clone()));
        }
        if let Some(path) = &self.cfg.state_file {
            // A full disk or a read-only /run loses the totals of a later restart, not the
            // run: logged once, written again each second.
            let written = write_state(path, &saved);
            match &written {
                Ok(()) if self.state_file_failing => log::info!("state file {} written again", path.display()),
                Err(e) if !self.state_file_failing => log::warn!(
                    "cannot write state file {}: {e:#}; counters after a restart will start from its last copy",
                    path.display()
                ),
                _ => {}
            }
            self.state_file_failing = written.is_err();
        }
        let scrape = Scrape {
            drops: self.drops.series(),
            snap: snap.clone(),
            flows: self.flows.series(),
            saved: saved.clone(),
            echo_now: joined.as_ref().map(|(_, s)| s.clone()),
            ratios: joined
                .as_ref()
                .map(|(j, _)| {
                    let mut r: Vec<_> = j
                        .associations
                        .iter()
                        .filter_map(|a| {
                            a.delivery_ratio
                                .map(|d| (a.assoc_id, a.peer_addrs.first().copied(), a.socket.messages.count, d))
                        })
                        .collect();
                    r.sort_by_key(|x| std::cmp::Reverse(x.2));
                    r.truncate(self.cfg.top_flows);
                    r
                })
                .unwrap_or_default(),
            data_events_lost: joined.as_ref().map_or(0, |(j, _)| j.data_events_lost),
            associations: associations.map(|a| AssocSeries::new(a, self.cfg.top_flows)),
            node: self.cfg.node.clone(),
            messages: messages.clone(),
        };
        let stats = Stats {
            node: self.cfg.node.clone(),
            xdp: SnapshotDoc::of(snap, Unreplayed::default(), self.cfg.top_flows),
            egress: SnapshotDoc::of(egress, Unreplayed::default(), self.cfg.top_flows),
            flows: scrape.flows.clone(),
            echo: saved.echo,
            echo_current: scrape.echo_now.clone(),
            join: joined.map(|(j, _)| j),
            associations: associations.map(|a| AssociationDoc::busiest_live(a, self.cfg.top_flows)).unwrap_or_default(),
            associations_summary: associations.map(TableSummaryDoc::of),
            messages: MessageDoc::list(&messages[0]),
            messages_leaving: MessageDoc::list(&messages[1]),
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(scrape));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        *self.published.lock().unwrap() =
            Published { text, stats: serde_json::to_string(&stats)?, built: Some(Instant::now()) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A state file that cannot be written (a full disk, a read-only /run) costs the totals
    /// of a later restart, never the export: the build goes on, and writes again once it can.
    #[test]
    fn a_state_file_that_cannot_be_written_stops_nothing() {
        let dir = std::env::temp_dir().join(format!("sctp-xdp-state-{}", std::process::id()));
        let path = dir.join("instance.json");
        let cfg = ExportConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            top_flows: 3,
            state_file: Some(path.clone()),
            node: "node-a".into(),
        };
        let mut exporter = Exporter::new(cfg).unwrap();
        let snap =
            Snapshot { global: bytemuck::Zeroable::zeroed(), flows: BTreeMap::new(), rules: (Vec::new(), Vec::new()) };
        // Its directory does not exist yet: every write fails.
        exporter.build(&snap, &snap, None, None, &Matched::default(), 1).unwrap();
        exporter.build(&snap, &snap, None, None, &Matched::default(), 2).unwrap();
        assert!(exporter.state_file_failing && !path.exists());
        let text = exporter.published.lock().unwrap().text.clone();
        assert!(text.contains("sctp_xdp_"));
        assert!(text.contains("target_info{node=\"node-a\"} 1"), "{text}");
        std::fs::create_dir_all(&dir).unwrap();
        exporter.build(&snap, &snap, None, None, &Matched::default(), 3).unwrap();
        assert!(!exporter.state_file_failing && path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
