//! One build's values as Prometheus series, encoded by prometheus-client; and the classic
//! text format for scrapers that do not ask for `OpenMetrics`.

use std::{collections::BTreeMap, net::SocketAddr};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, NoLabelSet},
    metrics::MetricType,
};
use sctp_common::{
    abi::{Counter, RoundTrips, RTT_BOUNDS_US},
    proto::chunk,
};

use super::{
    flow_account::{FlowSeries, FlowTotals},
    state::Saved,
};
use crate::{
    assoc::{live::LiveAssociations, messages::Messages, Association},
    echo::EchoStats,
    join::Tally,
    names,
    rules::RuleHits,
    snapshot::Snapshot,
};

/// Drops per (reason, rule) that only grow: each rule's counter is read since its rule
/// set was applied, and a `rules apply` starts new counters (the old generation's are
/// overwritten by the apply after), so deltas are summed per counter slot.
#[derive(Default)]
pub(super) struct RuleDrops {
    /// Last value read per (generation, rule id, base at apply).
    last: BTreeMap<(u32, u8, u64), u64>,
    totals: BTreeMap<(&'static str, String), u64>,
}

impl RuleDrops {
    pub(super) fn update(&mut self, rules: &[RuleHits]) {
        for r in rules {
            let last = self.last.insert(r.slot, r.drops).unwrap_or(0);
            *self.totals.entry((r.reason, r.rule.clone())).or_default() += r.drops.saturating_sub(last);
        }
    }

    pub(super) fn series(&self) -> Vec<(Labels, u64)> {
        self.totals
            .iter()
            .map(|((reason, rule), n)| (vec![("reason", (*reason).to_string()), ("rule", rule.clone())], *n))
            .collect()
    }
}

/// One build's values, encoded by prometheus-client.
#[derive(Debug)]
pub(super) struct Scrape {
    /// `sctp_xdp_drops_total` series.
    pub(super) drops: Vec<(Labels, u64)>,
    pub(super) snap: Snapshot,
    pub(super) flows: Vec<FlowSeries>,
    pub(super) saved: Saved,
    pub(super) echo_now: Option<EchoStats>,
    /// (`assoc_id`, peer, messages, delivery ratio) of the busiest associations.
    pub(super) ratios: Vec<(i32, Option<SocketAddr>, u64, f64)>,
    /// See `Wire::events_lost`.
    pub(super) data_events_lost: u64,
    /// The association table's series, when it is kept.
    pub(super) associations: Option<AssocSeries>,
    pub(super) node: String,
    /// Every application message counted, arriving and leaving.
    pub(super) messages: [Messages; 2],
}

/// Counter series: their labels and values.
type Series = Vec<(Labels, u64)>;

/// The message series: by (direction, protocol, message name, kind); Diameter answers by
/// (direction, command name, result class), their response times and the requests
/// unanswered by (direction, command name). Bounded labels: a code without a name in the
/// tables (`names`) is `other`, whatever the sender made up.
struct MessageSeries {
    by_message: Series,
    answers: Series,
    responses: Vec<(Labels, RoundTrips)>,
    unanswered: Series,
}

impl MessageSeries {
    fn of(messages: &[Messages; 2]) -> Self {
        let mut by_message = BTreeMap::<Labels, u64>::new();
        let mut answers = BTreeMap::<Labels, u64>::new();
        let mut responses = BTreeMap::<Labels, RoundTrips>::new();
        let mut unanswered = BTreeMap::<Labels, u64>::new();
        for (direction, m) in ["arriving", "leaving"].into_iter().zip(messages) {
            for (k, t) in &m.by_key {
                let name = names::name(k.protocol, k.code).unwrap_or("other").to_string();
                let labels = vec![
                    ("direction", direction.to_string()),
                    ("protocol", k.protocol.name().to_string()),
                    ("message", name.clone()),
                    ("kind", k.kind.name().to_string()),
                ];
                *by_message.entry(labels).or_default() += t.count;
                let command = vec![("direction", direction.to_string()), ("command", name.clone())];
                for (result, n) in &t.results {
                    let class = if *result == 0 { "none".to_string() } else { format!("{}xxx", result / 1000) };
                    let mut labels = command.clone();
                    labels.push(("result_class", class));
                    *answers.entry(labels).or_default() += n;
                }
                if t.response.count > 0 {
                    responses.entry(command.clone()).or_default().merge(&t.response);
                }
                if t.unanswered > 0 {
                    *unanswered.entry(command).or_default() += t.unanswered;
                }
            }
        }
        Self {
            by_message: by_message.into_iter().collect(),
            answers: answers.into_iter().collect(),
            responses: responses.into_iter().collect(),
            unanswered: unanswered.into_iter().collect(),
        }
    }
}

/// The association table as gauges, and its round trips as histograms: it is rebuilt
/// from nothing at each start, so none of its values is a counter that could go
/// backwards, and a histogram's series lives as long as its association is tracked.
#[derive(Debug, Default)]
pub(super) struct AssocSeries {
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
    pub(super) fn new(live: &LiveAssociations, top: usize) -> Self {
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
        histogram(
            e,
            "sctp_association_rtt_seconds",
            "Round trips of the busiest associations: DATA to the SACK covering it (Karn's rule), HEARTBEAT to its ACK.",
            &self.rtt,
        )?;
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

pub(super) type Labels = Vec<(&'static str, String)>;

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, series: &[(Labels, u64)]) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        m.encode_family(labels)?.encode_counter::<NoLabelSet, u64, u64>(v, None)?;
    }
    Ok(())
}

/// Histograms of times kept as `RoundTrips` (buckets over `RTT_BOUNDS_US`), in seconds.
#[expect(clippy::cast_precision_loss, reason = "a sum of times in seconds")]
fn histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, RoundTrips)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, times) in series {
        let buckets: Vec<(f64, u64)> = times
            .buckets
            .iter()
            .enumerate()
            .map(|(i, n)| (RTT_BOUNDS_US.get(i).map_or(f64::INFINITY, |b| f64::from(*b) / 1e6), u64::from(*n)))
            .collect();
        m.encode_family(labels)?.encode_histogram::<NoLabelSet>(
            times.sum_ns as f64 / 1e9,
            times.count,
            &buckets,
            None,
        )?;
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

impl Collector for Scrape {
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
        let messages = MessageSeries::of(&self.messages);
        counter(
            &mut e,
            "sctp_messages",
            "Application messages (NGAP, S1AP, Diameter, M3UA, ...) counted at XDP (arriving) and TC egress \
             (leaving), by protocol, message and kind; a retransmission is not a new message.",
            &messages.by_message,
        )?;
        counter(
            &mut e,
            "sctp_diameter_answers",
            "Diameter answers by command and Result-Code class (none: the code was not in the answer's first chunk).",
            &messages.answers,
        )?;
        histogram(
            &mut e,
            "sctp_diameter_response_seconds",
            "Diameter answers' times from their requests (matched in the kernel by association and identifiers), \
             by the way the answers went and command.",
            &messages.responses,
        )?;
        counter(
            &mut e,
            "sctp_diameter_unanswered",
            "Diameter requests no answer came for within 10 s, by the way the requests went and command.",
            &messages.unanswered,
        )?;
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
