//! Export for dashboards: Prometheus text at `/metrics` (through prometheus-client) and
//! JSON at `/stats`, rebuilt once a second by the controller; scrapes read the last build.
//!
//! Every counter only grows, across restarts too: kernel counters live in pinned maps;
//! per-flow series follow `FlowAccount`; user-space totals are saved after every build
//! (before it is published) and resumed from at start.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body_util::Full;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, NoLabelSet},
    metrics::MetricType,
    registry::Registry,
};
use sctp_common::{
    abi::{Counter, RoundTrips, RTT_BOUNDS_US},
    proto::chunk,
};
use serde::{Deserialize, Serialize};

use crate::{
    echo::{EchoState, EchoStats},
    observe::{
        assoc::Association,
        flow_account::{FlowAccount, FlowSeries, FlowTotals},
        join::{self, Histogram, LatencyFeed, Tally, Wire},
        live::LiveAssociations,
        report, Snapshot,
    },
    rules::RuleHits,
};

/// Echo counters that survive restarts (gauges are not kept).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct EchoTotals {
    pub associations: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub shed: u64,
    pub send_errors: u64,
    pub send_failed_events: u64,
    pub oversize_aborts: u64,
    pub notifications: BTreeMap<String, u64>,
}

impl EchoTotals {
    fn plus(&self, s: &EchoStats) -> Self {
        let mut notifications = self.notifications.clone();
        for (k, v) in &s.notifications {
            *notifications.entry(k.clone()).or_default() += v;
        }
        Self {
            associations: self.associations + s.associations_total,
            messages_in: self.messages_in + s.messages_in,
            messages_out: self.messages_out + s.messages_out,
            bytes_in: self.bytes_in + s.bytes_in,
            bytes_out: self.bytes_out + s.bytes_out,
            shed: self.shed + s.shed,
            send_errors: self.send_errors + s.send_errors,
            send_failed_events: self.send_failed_events + s.send_failed_events,
            oversize_aborts: self.oversize_aborts + s.oversize_aborts,
            notifications,
        }
    }
}

/// User-space totals saved between runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub echo: EchoTotals,
    pub ppid: BTreeMap<String, Tally>,
    pub stream: BTreeMap<String, Tally>,
    pub latency: Histogram,
    pub latency_unmatched: u64,
    pub flows: FlowAccount,
}

fn add_tallies(base: &BTreeMap<String, Tally>, run: &BTreeMap<String, Tally>) -> BTreeMap<String, Tally> {
    let mut out = base.clone();
    for (k, v) in run {
        let t = out.entry(k.clone()).or_default();
        t.count += v.count;
        t.bytes += v.bytes;
    }
    out
}

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

/// Writes the totals to `path` whole (a new file renamed over the old one).
fn write_state(path: &std::path::Path, saved: &Saved) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(saved)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
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
    latency: LatencyFeed,
    drops: RuleDrops,
    /// The last write of the state file failed (warned once until one succeeds).
    state_file_failing: bool,
    pub published: Arc<Mutex<Published>>,
}

/// Drops per (reason, rule) that only grow: each rule's counter is read since its rule
/// set was applied, and a `rules apply` starts new counters (the old generation's are
/// overwritten by the apply after), so deltas are summed per counter slot.
#[derive(Default)]
struct RuleDrops {
    /// Last value read per (generation, rule id, base at apply).
    last: BTreeMap<(u32, u8, u64), u64>,
    totals: BTreeMap<(&'static str, String), u64>,
}

impl RuleDrops {
    fn update(&mut self, rules: &[RuleHits]) {
        for r in rules {
            let last = self.last.insert(r.slot, r.drops).unwrap_or(0);
            *self.totals.entry((r.reason, r.rule.clone())).or_default() += r.drops.saturating_sub(last);
        }
    }

    fn series(&self) -> Vec<(Labels, u64)> {
        self.totals
            .iter()
            .map(|((reason, rule), n)| (vec![("reason", (*reason).to_string()), ("rule", rule.clone())], *n))
            .collect()
    }
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
        Ok(Self {
            cfg,
            base,
            flows,
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
        now_ns: u64,
    ) -> Result<()> {
        self.flows.update(&snap.flows, self.cfg.top_flows, |k, f| {
            let src = SocketAddr::new(report::addr(f.family, &f.src_addr), k.src_port);
            let dst = SocketAddr::new(report::addr(f.family, &f.dst_addr), k.dst_port);
            format!("{src}->{dst}")
        });
        self.drops.update(&snap.rules.0);
        self.drops.update(&snap.rules.1);
        let mut saved = Saved { flows: self.flows.clone(), ..self.base.clone() };
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
        let frame = Frame {
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
            associations: None,
            node: self.cfg.node.clone(),
        };
        let frame = Frame { associations: associations.map(|a| AssocSeries::new(a, self.cfg.top_flows)), ..frame };
        let stats = serde_json::json!({
            "node": self.cfg.node,
            "xdp": report::to_json(snap, report::Unreplayed::default(), self.cfg.top_flows),
            "egress": report::to_json(egress, report::Unreplayed::default(), self.cfg.top_flows),
            "flows": frame.flows,
            "echo": saved.echo,
            "echo_current": frame.echo_now,
            "join": joined.as_ref().map(|(j, _)| j),
            "associations": associations.map_or_else(|| serde_json::json!([]), |a| a.json(self.cfg.top_flows)),
            "associations_summary": associations.map(LiveAssociations::summary_json),
        });
        let mut registry = Registry::default();
        registry.register_collector(Box::new(frame));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        *self.published.lock().unwrap() = Published { text, stats: stats.to_string(), built: Some(Instant::now()) };
        Ok(())
    }
}

/// One build's values, encoded by prometheus-client.
#[derive(Debug)]
struct Frame {
    /// `sctp_xdp_drops_total` series.
    drops: Vec<(Labels, u64)>,
    snap: Snapshot,
    flows: Vec<FlowSeries>,
    saved: Saved,
    echo_now: Option<EchoStats>,
    /// (`assoc_id`, peer, messages, delivery ratio) of the busiest associations.
    ratios: Vec<(i32, Option<SocketAddr>, u64, f64)>,
    /// See `Wire::events_lost`.
    data_events_lost: u64,
    /// The association table's series, when it is kept.
    associations: Option<AssocSeries>,
    node: String,
}

/// The association table as gauges, and its round trips as histograms: it is rebuilt
/// from nothing at each start, so none of its values is a counter that could go
/// backwards, and a histogram's series lives as long as its association is tracked.
#[derive(Debug, Default)]
struct AssocSeries {
    by_state: Vec<(Labels, f64)>,
    packets: Vec<(Labels, f64)>,
    bytes: Vec<(Labels, f64)>,
    retransmissions: Vec<(Labels, f64)>,
    rtt: Vec<(Labels, RoundTrips)>,
    paths: Vec<(Labels, f64)>,
    /// Times each endpoint's DATA moved to another path.
    path_switches: Vec<(Labels, f64)>,
    /// HEARTBEATs no ACK answered yet, summed over the paths.
    heartbeats_unanswered: Vec<(Labels, f64)>,
    /// Per interface and way, SCTP packets and bytes summarized since the start.
    iface_packets: Vec<(Labels, f64)>,
    iface_bytes: Vec<(Labels, f64)>,
    lost: f64,
}

impl AssocSeries {
    /// Per association for the `top` busiest, labelled by their endpoints, the rest summed
    /// as association="other".
    #[expect(clippy::cast_precision_loss, reason = "gauges of counts")]
    fn new(live: &LiveAssociations, top: usize) -> Self {
        let mut s = AssocSeries {
            by_state: live
                .by_state()
                .into_iter()
                .map(|(st, n)| (vec![("state", st.name().to_string())], n as f64))
                .collect(),
            lost: live.lost as f64,
            ..AssocSeries::default()
        };
        for (i, ways) in &live.interfaces {
            for (way, t) in ["in", "out"].into_iter().zip(ways) {
                let labels = vec![("iface", live.iface_name(*i)), ("direction", way.to_string())];
                s.iface_packets.push((labels.clone(), t.packets as f64));
                s.iface_bytes.push((labels, t.bytes as f64));
            }
        }
        let (named, rest) = live.table.busiest_and_rest(top);
        for (_, a) in named {
            s.add(&format!("{}<->{}", a.endpoints[0].label(), a.endpoints[1].label()), [a]);
        }
        if !rest.is_empty() {
            s.add("other", rest.iter().map(|(_, a)| *a));
        }
        s
    }

    /// The series of `name`: these associations summed.
    #[expect(clippy::cast_precision_loss, reason = "gauges of counts")]
    fn add<'a>(&mut self, name: &str, associations: impl IntoIterator<Item = &'a Association>) {
        let (mut sent, mut data, mut heartbeat, mut paths, mut unanswered) =
            ([[0u64; 4]; 2], RoundTrips::default(), RoundTrips::default(), 0, 0);
        for a in associations {
            for (totals, d) in sent.iter_mut().zip(&a.directions) {
                for (t, v) in totals.iter_mut().zip([d.packets, d.bytes, d.retransmissions, d.path_switches]) {
                    *t += v;
                }
            }
            data.merge(&a.rtt);
            heartbeat.merge(&a.heartbeat_rtt);
            unanswered += a.paths.values().map(|p| p.heartbeats_unanswered).sum::<u64>();
            paths += a.paths.len();
        }
        for (i, [packets, bytes, retransmissions, switches]) in sent.into_iter().enumerate() {
            let labels = vec![("association", name.to_string()), ("sender", format!("endpoint{i}"))];
            self.packets.push((labels.clone(), packets as f64));
            self.bytes.push((labels.clone(), bytes as f64));
            self.retransmissions.push((labels.clone(), retransmissions as f64));
            self.path_switches.push((labels, switches as f64));
        }
        self.heartbeats_unanswered.push((vec![("association", name.to_string())], unanswered as f64));
        for (kind, rtt) in [("data", data), ("heartbeat", heartbeat)] {
            self.rtt.push((vec![("association", name.to_string()), ("kind", kind.into())], rtt));
        }
        self.paths.push((vec![("association", name.to_string())], paths as f64));
    }

    #[expect(clippy::cast_precision_loss, reason = "a sum of round trips in seconds")]
    fn encode(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(e, "sctp_associations", "Associations tracked now, by state.", &self.by_state)?;
        gauge(e, "sctp_association_packets", "Packets each endpoint of the busiest associations sent.", &self.packets)?;
        gauge(e, "sctp_association_bytes", "IP bytes each endpoint of the busiest associations sent.", &self.bytes)?;
        gauge(
            e,
            "sctp_association_retransmissions",
            "DATA chunks each endpoint of the busiest associations sent again.",
            &self.retransmissions,
        )?;
        let mut m = e.encode_descriptor(
            "sctp_association_rtt_seconds",
            "Round trips of the busiest associations: DATA to the SACK covering it (Karn's rule), HEARTBEAT to its ACK.",
            None,
            MetricType::Histogram,
        )?;
        for (labels, rtt) in &self.rtt {
            let buckets: Vec<(f64, u64)> = rtt
                .buckets
                .iter()
                .enumerate()
                .map(|(i, n)| (RTT_BOUNDS_US.get(i).map_or(f64::INFINITY, |b| f64::from(*b) / 1e6), u64::from(*n)))
                .collect();
            m.encode_family(labels)?.encode_histogram::<NoLabelSet>(
                rtt.sum_ns as f64 / 1e9,
                rtt.count,
                &buckets,
                None,
            )?;
        }
        gauge(e, "sctp_association_paths", "Address pairs the busiest associations used.", &self.paths)?;
        gauge(
            e,
            "sctp_association_path_switches",
            "Times each endpoint of the busiest associations moved its DATA to another path.",
            &self.path_switches,
        )?;
        gauge(
            e,
            "sctp_association_heartbeats_unanswered",
            "HEARTBEATs of the busiest associations that no ACK answered yet (a path failing counts up).",
            &self.heartbeats_unanswered,
        )?;
        gauge(
            e,
            "sctp_interface_packets",
            "SCTP packets the association table counted per interface and way since the controller started.",
            &self.iface_packets,
        )?;
        gauge(
            e,
            "sctp_interface_bytes",
            "IP bytes of those packets per interface and way since the controller started.",
            &self.iface_bytes,
        )?;
        gauge(
            e,
            "sctp_association_summaries_lost",
            "Packets the association table missed since the program was loaded (the ring to user space was full).",
            &[(Vec::new(), self.lost)],
        )
    }
}

type Labels = Vec<(&'static str, String)>;

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, series: &[(Labels, u64)]) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        m.encode_family(labels)?.encode_counter::<NoLabelSet, u64, u64>(v, None)?;
    }
    Ok(())
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, series: &[(Labels, f64)]) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        m.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

fn one(v: u64) -> Vec<(Labels, u64)> {
    vec![(Vec::new(), v)]
}

impl Collector for Frame {
    #[expect(
        clippy::too_many_lines,
        clippy::many_single_char_names,
        reason = "the exposition: one call per metric family, read top to bottom, with one-letter \
                  helpers so each family fits its lines"
    )]
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let g = &self.snap.global;
        let c = |x: Counter| g.get(x);
        // OpenMetrics' target metadata, as a gauge so that the classic text format has it too.
        gauge(
            &mut e,
            "target_info",
            "The node this sctp-xdp instance runs on (--node-name).",
            &[(vec![("node", self.node.clone())], 1.0)],
        )?;
        counter(&mut e, "sctp_xdp_frames", "Frames the XDP program ran on.", &one(c(Counter::Frames)))?;
        counter(
            &mut e,
            "sctp_xdp_packets",
            "SCTP packets by verdict (the SCTP checksum is not verified at XDP: the kernel discards bad ones later).",
            &[
                (vec![("verdict", "pass".into())], c(Counter::VerdictPass)),
                (vec![("verdict", "drop".into())], c(Counter::VerdictDrop)),
            ],
        )?;
        let outcomes: Vec<_> = Counter::ALL
            .iter()
            .filter(|x| !x.is_error() && !matches!(x, Counter::Frames | Counter::VerdictPass | Counter::VerdictDrop))
            .map(|x| (vec![("outcome", x.name().to_string())], c(*x)))
            .collect();
        counter(
            &mut e,
            "sctp_xdp_outcomes",
            "Frames by what the parser found (sctp, not_ip, fragments, ...).",
            &outcomes,
        )?;
        let errors: Vec<_> = Counter::ALL
            .iter()
            .filter(|x| x.is_error())
            .map(|x| (vec![("reason", x.name().to_string())], c(*x)))
            .collect();
        counter(&mut e, "sctp_xdp_parse_errors", "Packets the parser could not walk completely, by reason.", &errors)?;
        counter(&mut e, "sctp_xdp_drops", "Packets dropped at XDP, by reason and rule.", &self.drops)?;
        let chunks: Vec<_> = (0..=255u8)
            .filter(|t| g.chunk_types[*t as usize] > 0 || chunk::name(*t).is_some())
            .map(|t| {
                let name = chunk::name(t).map_or_else(|| format!("UNKNOWN_{t}"), str::to_string);
                (vec![("type", name)], g.chunk_types[t as usize])
            })
            .collect();
        counter(&mut e, "sctp_xdp_chunks", "SCTP chunks by type.", &chunks)?;
        counter(
            &mut e,
            "sctp_xdp_data_payload_bytes",
            "User data bytes in DATA and I-DATA chunks.",
            &one(c(Counter::DataPayloadBytes)),
        )?;
        let per_flow = |f: fn(&FlowTotals) -> u64| -> Vec<(Labels, u64)> {
            self.flows
                .iter()
                .map(|s| (vec![("flow", s.flow.clone()), ("vtag", s.vtag.clone())], f(&s.totals)))
                .collect()
        };
        counter(
            &mut e,
            "sctp_flow_packets",
            "SCTP packets per flow (busiest flows; the rest: flow=\"other\").",
            &per_flow(|t| t.packets),
        )?;
        counter(&mut e, "sctp_flow_bytes", "IP bytes per flow.", &per_flow(|t| t.bytes))?;
        counter(&mut e, "sctp_flow_data_chunks", "DATA and I-DATA chunks per flow.", &per_flow(|t| t.data_chunks))?;
        counter(
            &mut e,
            "sctp_flow_retransmissions",
            "DATA chunks at or below the flow's highest TSN (retransmissions and duplicates).",
            &per_flow(|t| t.retransmissions),
        )?;
        counter(
            &mut e,
            "sctp_flow_sack_gap_blocks",
            "Gap ack blocks in the flow's SACKs.",
            &per_flow(|t| t.sack_gap_blocks),
        )?;
        let tallies = |m: &BTreeMap<String, Tally>, label: &'static str, bytes: bool| -> Vec<(Labels, u64)> {
            m.iter().map(|(k, t)| (vec![(label, k.clone())], if bytes { t.bytes } else { t.count })).collect()
        };
        counter(
            &mut e,
            "sctp_wire_data_chunks_by_ppid",
            "DATA chunks seen at XDP by PPID.",
            &tallies(&self.saved.ppid, "ppid", false),
        )?;
        counter(
            &mut e,
            "sctp_wire_data_bytes_by_ppid",
            "DATA payload bytes seen at XDP by PPID.",
            &tallies(&self.saved.ppid, "ppid", true),
        )?;
        counter(
            &mut e,
            "sctp_wire_data_chunks_by_stream",
            "DATA chunks seen at XDP by stream.",
            &tallies(&self.saved.stream, "stream", false),
        )?;
        let echo = &self.saved.echo;
        if let Some(now) = &self.echo_now {
            gauge(
                &mut e,
                "sctp_echo_associations_open",
                "Associations the echo server holds now.",
                &[(Vec::new(), f64::from(u32::try_from(now.associations_current).unwrap_or(u32::MAX)))],
            )?;
            gauge(
                &mut e,
                "sctp_echo_queue_depth",
                "Echoes waiting for send-buffer space.",
                &[(Vec::new(), f64::from(u32::try_from(now.queue_depth).unwrap_or(u32::MAX)))],
            )?;
            counter(&mut e, "sctp_echo_associations", "Associations ever set up.", &one(echo.associations))?;
            counter(
                &mut e,
                "sctp_echo_messages",
                "Messages received (in) and echoed (out).",
                &[
                    (vec![("direction", "in".into())], echo.messages_in),
                    (vec![("direction", "out".into())], echo.messages_out),
                ],
            )?;
            counter(
                &mut e,
                "sctp_echo_bytes",
                "Message bytes received and echoed.",
                &[
                    (vec![("direction", "in".into())], echo.bytes_in),
                    (vec![("direction", "out".into())], echo.bytes_out),
                ],
            )?;
            let notes: Vec<_> = echo.notifications.iter().map(|(k, v)| (vec![("type", k.clone())], *v)).collect();
            counter(&mut e, "sctp_echo_notifications", "SCTP notifications by type.", &notes)?;
            counter(
                &mut e,
                "sctp_echo_shed",
                "Echoes dropped because their association's queue was full.",
                &one(echo.shed),
            )?;
            counter(&mut e, "sctp_echo_send_errors", "Echoes sendmsg refused.", &one(echo.send_errors))?;
            counter(
                &mut e,
                "sctp_echo_send_failures",
                "Sent echoes the kernel reported undeliverable (SCTP_SEND_FAILED_EVENT).",
                &one(echo.send_failed_events),
            )?;
            counter(
                &mut e,
                "sctp_echo_oversize_aborts",
                "Associations aborted for a message over --max-message.",
                &one(echo.oversize_aborts),
            )?;
            let ratios: Vec<_> = self
                .ratios
                .iter()
                .map(|(id, peer, _, r)| {
                    (vec![("assoc_id", id.to_string()), ("peer", peer.map_or_else(String::new, |p| p.to_string()))], *r)
                })
                .collect();
            gauge(
                &mut e,
                "sctp_join_delivery_ratio",
                "Messages delivered per DATA chunk seen inbound, per association.",
                &ratios,
            )?;
            counter(
                &mut e,
                "sctp_join_unmatched_messages",
                "Messages whose DATA chunk XDP did not report.",
                &one(self.saved.latency_unmatched),
            )?;
            counter(
                &mut e,
                "sctp_join_data_events_lost",
                "DATA events and withdrawals the ring to user space had no room for since the program was loaded.",
                &one(self.data_events_lost),
            )?;
            let h = &self.saved.latency;
            let buckets: Vec<(f64, u64)> = h
                .counts
                .iter()
                .enumerate()
                .map(|(i, n)| (h.bounds_us.get(i).map_or(f64::INFINITY, |b| b / 1e6), *n))
                .collect();
            let mut m = e.encode_descriptor(
                "sctp_wire_to_app_latency_seconds",
                "Time from XDP seeing a message's DATA chunk to the application receiving the message.",
                None,
                MetricType::Histogram,
            )?;
            m.encode_family(&Vec::<(&str, String)>::new())?.encode_histogram::<NoLabelSet>(
                h.sum_us / 1e6,
                h.count,
                &buckets,
                None,
            )?;
        }
        if let Some(a) = &self.associations {
            a.encode(&mut e)?;
        }
        Ok(())
    }
}

/// The classic Prometheus text format (0.0.4) from `OpenMetrics` text: a counter family's
/// HELP and TYPE name its `_total` samples, no `# EOF`, no empty label braces. For clients
/// that do not ask for `OpenMetrics` (promtool, curl, older scrapers).
#[must_use]
pub(crate) fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(&l),
            None => out.push_str(&line.replacen("{} ", " ", 1)),
        }
        out.push('\n');
    }
    out
}

/// How long a client may take to send its request head: a client dripping header lines
/// cannot hold a connection open.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may live, whatever the client does.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// Serves `/metrics` and `/stats` (GET and HEAD) from the last build, `/healthz` (the
/// server answers) and `/readyz` (builds are coming), until the task is dropped. HTTP is hyper's: one request per connection, deadlines on the head and on
/// the connection.
pub(crate) async fn serve(listener: tokio::net::TcpListener, published: Arc<Mutex<Published>>) {
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // At most MAX_CONNECTIONS at a time: further ones wait in the listen queue, not
        // holding a file descriptor (a thousand idle clients must not take the process's
        // last ones).
        let Ok(permit) = open.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors (or another transient error): accepting again at
                // once would spin; wait for connections to close.
                log::warn!("metrics: accept failed: {e}; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let published = published.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&req, &published);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, connection).await;
            drop(permit);
        });
    }
}

/// The answer to one request (hyper leaves out the body of a HEAD answer).
fn respond<B>(req: &hyper::Request<B>, published: &Mutex<Published>) -> hyper::Response<Full<Bytes>> {
    use hyper::{header, Method, StatusCode};
    let reply = |status: StatusCode, ctype: &str, body: String| {
        let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = header::HeaderValue::from_str(ctype) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET or HEAD only\n".into());
        r.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let openmetrics = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("application/openmetrics-text")));
    let p = published.lock().expect("no thread panicked holding the published metrics");
    match req.uri().path() {
        "/metrics" if openmetrics => {
            reply(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", p.text.clone())
        }
        "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", to_prometheus_text(&p.text)),
        "/stats" => reply(StatusCode::OK, "application/json", p.stats.clone()),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => match p.built.map(|t| t.elapsed()) {
            Some(age) if age <= READY_WITHIN => reply(StatusCode::OK, "text/plain", "ready\n".into()),
            Some(age) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: the counters were last exported {} s ago\n", age.as_secs()),
            ),
            None => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready: nothing exported yet\n".into()),
        },
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "try /metrics, /stats, /healthz or /readyz\n".into()),
    }
}

#[cfg(test)]
mod tests {
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
        exporter.build(&snap, &snap, None, None, 1).unwrap();
        exporter.build(&snap, &snap, None, None, 2).unwrap();
        assert!(exporter.state_file_failing && !path.exists());
        let text = exporter.published.lock().unwrap().text.clone();
        assert!(text.contains("sctp_xdp_"));
        assert!(text.contains("target_info{node=\"node-a\"} 1"), "{text}");
        std::fs::create_dir_all(&dir).unwrap();
        exporter.build(&snap, &snap, None, None, 3).unwrap();
        assert!(!exporter.state_file_failing && path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `/healthz` answers while the server runs; `/readyz` only while builds keep coming.
    #[test]
    fn readiness_follows_the_builds_and_health_the_server() {
        let status = |path: &str, built: Option<Instant>| {
            let published = Mutex::new(Published { built, ..Published::default() });
            let req = hyper::Request::get(path).body(()).unwrap();
            respond(&req, &published).status().as_u16()
        };
        let stale = Instant::now().checked_sub(READY_WITHIN * 2);
        assert_eq!(status("/healthz", None), 200);
        assert_eq!(status("/readyz", None), 503, "nothing built yet");
        assert_eq!(status("/readyz", Some(Instant::now())), 200);
        assert_eq!(status("/readyz", stale), 503, "builds stopped");
        assert_eq!(status("/nothing", None), 404);
    }

    /// Counters resumed from the state file must not go backwards by a rounding step: the
    /// latency sum that once read back one ULP low (`serde_json` without `float_roundtrip`).
    #[test]
    fn the_state_file_gives_back_exactly_what_was_saved() {
        let mut saved = Saved::default();
        for us in [14_201.799_999_999_997, 0.1, 1.0 / 3.0, 123_456.789_012_345_67] {
            saved.latency.observe(us);
            let back: Saved = serde_json::from_slice(&serde_json::to_vec(&saved).unwrap()).unwrap();
            assert_eq!(back.latency.sum_us.to_bits(), saved.latency.sum_us.to_bits(), "{}", saved.latency.sum_us);
        }
    }
}
