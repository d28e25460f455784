//! The join: what the wire showed (XDP's DATA events and flow counters) put side by side
//! with what the application received (`SCTP_RCVINFO` per message), per association.
//!
//! Definitions:
//! - An association's **inbound flow** is the XDP flow (peer port -> our port, tag) whose
//!   DATA events carry the TSNs the socket reported for the association's messages; its tag
//!   is ours. Chosen as the candidate flow matching the most of the association's TSNs.
//! - Its **outbound tag** is the peer's: the initiate tag of our INIT-ACK when XDP also sees
//!   our direction (the INIT-ACK flow whose initiate tag is the inbound tag), otherwise that
//!   of the peer's INIT on the same ports.
//! - A message is **matched** when a DATA event of the inbound flow has the message's TSN
//!   (`rcv_tsn`, the TSN of its first chunk). Its **wire-to-application latency** is the
//!   time the application received the message's last piece minus the XDP time of that DATA
//!   chunk (both `CLOCK_MONOTONIC`).
//! - The **delivery ratio** is messages delivered / DATA chunks seen inbound: 1.0 with no
//!   fragmentation, loss or duplicates; below 1 when messages span several chunks or the
//!   wire carried retransmissions.

use std::collections::{BTreeMap, HashMap, VecDeque};

use sctp_common::{
    abi::{DataEvent, FlowKey, FlowStats},
    proto::chunk::ty,
};
use serde::Serialize;

use crate::{assoc::live::LiveAssociations, doc::AssociationDoc};
use crate::{
    echo::{EchoState, EchoStats, ServedAssociation},
    sys::sctp::{AssocStats, Status},
};

/// TSN timestamps kept per flow (oldest forgotten first).
const TSNS_KEPT: usize = 1 << 18;

/// Counts of messages / chunks and bytes.
#[derive(Clone, Copy, Debug, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub(crate) struct Tally {
    pub count: u64,
    pub bytes: u64,
}

impl Tally {
    pub(crate) fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// What XDP's DATA events showed for one flow.
#[derive(Default)]
pub(crate) struct WireFlow {
    pub data: Tally,
    pub per_stream: BTreeMap<u16, Tally>,
    pub per_ppid: BTreeMap<u32, Tally>,
    /// DATA chunks whose TSN had been seen before on this flow (retransmissions, duplicates).
    pub duplicate_tsns: u64,
    tsn_time: HashMap<u32, u64>,
    order: VecDeque<u32>,
}

/// All flows' DATA events, fed from the ring buffer.
#[derive(Default)]
pub(crate) struct Wire {
    pub flows: HashMap<FlowKey, WireFlow>,
    /// DATA chunks of all flows by PPID and by stream, for export; bounded label sets
    /// (beyond [`LABELS_KEPT`] distinct values, the rest is counted under "other").
    pub per_ppid: BTreeMap<String, Tally>,
    pub per_stream: BTreeMap<String, Tally>,
    /// DATA events and withdrawals the kernel's full ring had no room for (read from the
    /// kernel by `run`): a lost withdrawal counts dropped DATA as delivered, a lost event
    /// leaves its message unmatched.
    pub events_lost: u64,
}

/// Distinct PPIDs / streams exported by value; more go to "other".
pub(crate) const LABELS_KEPT: usize = 64;

fn bounded_add(map: &mut BTreeMap<String, Tally>, label: String, bytes: u64) {
    let key = if map.contains_key(&label) || map.len() < LABELS_KEPT { label } else { "other".to_string() };
    map.entry(key).or_default().add(bytes);
}

impl Wire {
    pub(crate) fn ingest(&mut self, ev: &DataEvent) {
        let key = FlowKey { src_port: ev.src_port, dst_port: ev.dst_port, vtag: ev.vtag };
        let bytes = u64::from(ev.payload_len);
        bounded_add(&mut self.per_stream, ev.stream.to_string(), bytes);
        if ev.chunk_type == ty::DATA || ev.ppid != 0 {
            bounded_add(&mut self.per_ppid, ev.ppid.to_string(), bytes);
        }
        let f = self.flows.entry(key).or_default();
        f.data.add(bytes);
        f.per_stream.entry(ev.stream).or_default().add(bytes);
        // I-DATA fragments after the first carry no PPID: count them under the stream only.
        if ev.chunk_type == ty::DATA || ev.ppid != 0 {
            f.per_ppid.entry(ev.ppid).or_default().add(bytes);
        }
        // The first copy is kept: XDP passed it, so it is the one that reached the kernel.
        if let std::collections::hash_map::Entry::Vacant(slot) = f.tsn_time.entry(ev.tsn) {
            slot.insert(ev.ts_ns);
            f.order.push_back(ev.tsn);
            if f.order.len() > TSNS_KEPT {
                if let Some(old) = f.order.pop_front() {
                    f.tsn_time.remove(&old);
                }
            }
        } else {
            f.duplicate_tsns += 1;
        }
    }
}

/// A latency histogram with fixed microsecond buckets (upper bounds; the last is +Inf).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub(crate) struct Histogram {
    pub bounds_us: Vec<f64>,
    pub counts: Vec<u64>,
    pub sum_us: f64,
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        let bounds_us = vec![10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1e3, 2.5e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 1e6];
        let counts = vec![0; bounds_us.len() + 1];
        Self { bounds_us, counts, sum_us: 0.0, count: 0 }
    }
}

impl Histogram {
    pub(crate) fn observe(&mut self, us: f64) {
        let i = self.bounds_us.iter().position(|b| us <= *b).unwrap_or(self.bounds_us.len());
        self.counts[i] += 1;
        self.sum_us += us;
        self.count += 1;
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_us += other.sum_us;
        self.count += other.count;
    }

    /// The mean, where there are observations.
    #[must_use]
    #[expect(clippy::cast_precision_loss, reason = "a mean for people")]
    pub(crate) fn mean_us(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_us / self.count as f64)
    }

    /// The bucket bound at or below which `q` of the observations fall.
    #[must_use]
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "0 <= q <= 1: a rank among the observations"
    )]
    pub(crate) fn quantile_bound_us(&self, q: f64) -> Option<f64> {
        let target = (q * self.count as f64).ceil() as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target.max(1) {
                return Some(self.bounds_us.get(i).copied().unwrap_or(f64::INFINITY));
            }
        }
        None
    }
}

/// Observes each message's wire-to-application latency exactly once, as soon as its DATA
/// event has had time to arrive: the histogram behind `sctp_wire_to_app_latency_seconds`,
/// which (unlike the join's, recomputed from the records kept) only ever grows.
#[derive(Default)]
pub(crate) struct LatencyFeed {
    pub histogram: Histogram,
    /// Per association: how many of its messages were already considered.
    done: HashMap<i32, u64>,
    /// Messages whose DATA chunk XDP never reported (by the grace period).
    pub unmatched: u64,
}

/// How long a message waits for its DATA event (drained every 20 ms) before it is judged.
const EVENT_GRACE_NS: u64 = 500_000_000;

impl LatencyFeed {
    pub(crate) fn feed(&mut self, local_port: u16, state: &EchoState, wire: &Wire, now_ns: u64) {
        for a in state.assocs.values().chain(state.ended.iter()) {
            let done = self.done.entry(a.assoc_id).or_insert(0);
            // Absolute index of the first record still kept.
            let first = a.messages_in - a.records.len() as u64;
            let peer_port = a.peer_addrs.first().map(std::net::SocketAddr::port);
            for (i, r) in a.records.iter().enumerate() {
                let index = first + i as u64;
                if index < *done {
                    continue;
                }
                if r.received_ns + EVENT_GRACE_NS > now_ns {
                    break;
                }
                *done = index + 1;
                let seen = peer_port.and_then(|pp| {
                    wire.flows
                        .iter()
                        .filter(|(k, _)| k.src_port == pp && k.dst_port == local_port)
                        .find_map(|(_, f)| f.tsn_time.get(&r.tsn))
                });
                match seen {
                    Some(ts) if r.received_ns >= *ts => self.histogram.observe(micros(r.received_ns - ts)),
                    _ => self.unmatched += 1,
                }
            }
        }
    }
}

/// The socket's side of one association.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub(crate) struct SocketSide {
    pub messages: Tally,
    pub per_stream: BTreeMap<u16, Tally>,
    pub per_ppid: BTreeMap<u32, Tally>,
    pub status: Option<Status>,
    /// The kernel's own counters (`SCTP_GET_ASSOC_STATS)`: retransmissions, duplicates, gaps.
    pub kernel: Option<AssocStats>,
}

/// The wire's side of one association.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub(crate) struct WireSide {
    pub inbound_vtag: Option<u32>,
    pub outbound_vtag: Option<u32>,
    pub data_chunks: Tally,
    pub per_stream: BTreeMap<u16, Tally>,
    pub per_ppid: BTreeMap<u32, Tally>,
    pub duplicate_tsns: u64,
    /// From the flows: inbound packets and SACK gap blocks the peer reported in ours.
    pub inbound_packets: u64,
    pub outbound_packets: Option<u64>,
    pub sack_gap_blocks_received: Option<u64>,
    /// The association table's entry with this inbound flow (both tags, both directions,
    /// paths, state, round trips), when the table is kept.
    pub association: Option<AssociationDoc>,
}

/// One association, joined.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub(crate) struct AssocReport {
    pub assoc_id: i32,
    pub peer_addrs: Vec<std::net::SocketAddr>,
    pub in_streams: u16,
    pub out_streams: u16,
    pub closed: bool,
    pub socket: SocketSide,
    pub wire: WireSide,
    pub matched_messages: u64,
    pub unmatched_messages: u64,
    pub delivery_ratio: Option<f64>,
    pub latency: Histogram,
}

/// The whole report.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub(crate) struct JoinReport {
    pub local_port: u16,
    pub associations: Vec<AssocReport>,
    pub latency: Histogram,
    /// See [`Wire::events_lost`].
    pub data_events_lost: u64,
}

/// Builds the report.
#[must_use]
pub(crate) fn join(
    local_port: u16,
    state: &EchoState,
    wire: &Wire,
    flows: &BTreeMap<FlowKey, FlowStats>,
    live: Option<&LiveAssociations>,
) -> JoinReport {
    let mut all = Histogram::default();
    let mut associations: Vec<AssocReport> = state
        .assocs
        .values()
        .chain(state.ended.iter())
        .map(|a| {
            let r = join_one(local_port, a, wire, flows, live);
            all.merge(&r.latency);
            r
        })
        .collect();
    associations.sort_by_key(|a| a.assoc_id);
    JoinReport { local_port, associations, latency: all, data_events_lost: wire.events_lost }
}

fn join_one(
    local_port: u16,
    a: &ServedAssociation,
    wire: &Wire,
    flows: &BTreeMap<FlowKey, FlowStats>,
    live: Option<&LiveAssociations>,
) -> AssocReport {
    let mut socket = SocketSide {
        messages: Tally { count: a.messages_in, bytes: a.bytes_in },
        status: a.status.clone(),
        kernel: a.kernel,
        ..SocketSide::default()
    };
    for r in &a.records {
        socket.per_stream.entry(r.stream).or_default().add(r.len as u64);
        socket.per_ppid.entry(r.ppid).or_default().add(r.len as u64);
    }
    let peer_port = a.peer_addrs.first().map(std::net::SocketAddr::port);
    // The inbound flow: the candidate holding most of this association's TSNs.
    let inbound = peer_port.and_then(|pp| {
        wire.flows
            .iter()
            .filter(|(k, _)| k.src_port == pp && k.dst_port == local_port)
            .map(|(k, f)| (k, f, a.records.iter().filter(|r| f.tsn_time.contains_key(&r.tsn)).count()))
            .filter(|(_, _, hits)| *hits > 0)
            .max_by_key(|(_, _, hits)| *hits)
            .map(|(k, f, _)| (*k, f))
    });
    let mut wire_side = WireSide::default();
    let mut latency = Histogram::default();
    let mut matched = 0;
    if let Some((key, f)) = inbound {
        wire_side.inbound_vtag = Some(key.vtag);
        wire_side.data_chunks = f.data;
        wire_side.per_stream = f.per_stream.clone();
        wire_side.per_ppid = f.per_ppid.clone();
        wire_side.duplicate_tsns = f.duplicate_tsns;
        wire_side.inbound_packets = flows.get(&key).map_or(0, |s| s.packets);
        for r in &a.records {
            if let Some(ts) = f.tsn_time.get(&r.tsn) {
                matched += 1;
                if r.received_ns >= *ts {
                    latency.observe(micros(r.received_ns - ts));
                }
            }
        }
        let outbound = outbound_vtag(flows, key);
        wire_side.outbound_vtag = outbound;
        if let Some(vtag) = outbound {
            let out = flows.get(&FlowKey { src_port: key.dst_port, dst_port: key.src_port, vtag });
            wire_side.outbound_packets = out.map(|s| s.packets);
        }
        wire_side.sack_gap_blocks_received = flows.get(&key).map(|s| s.sack_gap_blocks);
        wire_side.association = live.and_then(|l| {
            let a = l.table.by_direction(key.src_port, key.dst_port, key.vtag)?;
            Some(AssociationDoc::naming(a, &|i| l.named(i)))
        });
    }
    let records = a.records.len() as u64;
    AssocReport {
        assoc_id: a.assoc_id,
        peer_addrs: a.peer_addrs.clone(),
        in_streams: a.in_streams,
        out_streams: a.out_streams,
        closed: a.closed,
        delivery_ratio: (wire_side.data_chunks.count > 0).then(|| ratio(a.messages_in, wire_side.data_chunks.count)),
        socket,
        wire: wire_side,
        matched_messages: matched,
        unmatched_messages: records - matched,
        latency,
    }
}

/// The peer's tag for an association whose inbound flow is `inbound` (see module docs).
fn outbound_vtag(flows: &BTreeMap<FlowKey, FlowStats>, inbound: FlowKey) -> Option<u32> {
    let (ours, theirs) = (inbound.dst_port, inbound.src_port);
    let from_init_ack = flows.iter().find(|(k, f)| {
        k.src_port == ours
            && k.dst_port == theirs
            && f.init_chunk_type == u32::from(ty::INIT_ACK)
            && f.init_tag == inbound.vtag
    });
    if let Some((k, _)) = from_init_ack {
        return Some(k.vtag);
    }
    flows
        .iter()
        .filter(|(k, f)| k.src_port == theirs && k.dst_port == ours && f.init_chunk_type == u32::from(ty::INIT))
        .max_by_key(|(_, f)| f.last_seen_ns)
        .map(|(_, f)| f.init_tag)
}

/// A readable summary: one line per association, then the latency histogram.
#[must_use]
pub(crate) fn to_table(r: &JoinReport, echo: &EchoStats) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\necho: {} associations ({} open), {} messages in / {} out, {} bytes in, shed {}, send errors {}, undeliverable {}, oversize aborts {}",
        echo.associations_total,
        echo.associations_current,
        echo.messages_in,
        echo.messages_out,
        echo.bytes_in,
        echo.shed,
        echo.send_errors,
        echo.send_failed_events,
        echo.oversize_aborts
    );
    let _ = writeln!(
        out,
        "{:>6} {:<24} {:>11} {:>11} {:>9} {:>9} {:>8} {:>7} {:>6} {:>9} {:>9}",
        "assoc", "peer", "in vtag", "out vtag", "messages", "DATA", "matched", "ratio", "dups", "kern dup", "p50 us"
    );
    for a in &r.associations {
        let hex = |v: Option<u32>| v.map_or_else(|| "-".to_string(), |v| format!("{v:#x}"));
        let _ = writeln!(
            out,
            "{:>6} {:<24} {:>11} {:>11} {:>9} {:>9} {:>8} {:>7} {:>6} {:>9} {:>9}",
            a.assoc_id,
            a.peer_addrs.first().map_or_else(|| "-".to_string(), ToString::to_string),
            hex(a.wire.inbound_vtag),
            hex(a.wire.outbound_vtag),
            a.socket.messages.count,
            a.wire.data_chunks.count,
            a.matched_messages,
            a.delivery_ratio.map_or_else(|| "-".to_string(), |d| format!("{d:.3}")),
            a.wire.duplicate_tsns,
            a.socket.kernel.map_or_else(|| "-".to_string(), |k| k.idupchunks.to_string()),
            a.latency.quantile_bound_us(0.5).map_or_else(|| "-".to_string(), |v| format!("<={v}")),
        );
    }
    let h = &r.latency;
    if h.count > 0 {
        let _ = writeln!(out, "wire-to-application latency, {} messages (XDP DATA chunk -> recvmsg):", h.count);
        let mut lower = 0.0;
        for (i, c) in h.counts.iter().enumerate() {
            let upper = h.bounds_us.get(i).copied();
            if *c > 0 {
                let range = upper.map_or_else(|| format!("> {lower} us"), |u| format!("{lower}-{u} us"));
                let _ = writeln!(out, "  {range:>16}: {c}");
            }
            lower = upper.unwrap_or(lower);
        }
    }
    out
}

/// Nanoseconds as microseconds, for the latency histogram.
#[expect(clippy::cast_precision_loss, reason = "a latency to report: 52 bits of nanoseconds is 52 days")]
fn micros(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// `a / b` as a ratio to report.
#[expect(clippy::cast_precision_loss, reason = "a ratio to report")]
fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        assoc::packet_view::{ChunkView, PacketView},
        echo::MessageRecord,
    };

    fn ev(vtag: u32, tsn: u32, ts_ns: u64, stream: u16, ppid: u32, len: u32) -> DataEvent {
        DataEvent {
            ts_ns,
            vtag,
            tsn,
            ppid,
            payload_len: len,
            src_port: 5000,
            dst_port: 36412,
            stream,
            chunk_type: ty::DATA,
            ..bytemuck::Zeroable::zeroed()
        }
    }

    fn record(tsn: u32, stream: u16, ppid: u32, len: usize, received_ns: u64) -> MessageRecord {
        MessageRecord { stream, ssn: 0, ppid, tsn, cumtsn: tsn, len, unordered: false, received_ns }
    }

    #[test]
    fn join_matches_messages_to_their_data_chunks_and_measures_latency() {
        let mut wire = Wire::default();
        // Two associations from the same peer port at different times: tags 7 and 9.
        for (tsn, ts) in [(100, 1_000), (101, 2_000), (101, 2_500)] {
            wire.ingest(&ev(7, tsn, ts, 1, 18, 10));
        }
        wire.ingest(&ev(9, 500, 3_000, 2, 60, 4));
        let mut state = EchoState::default();
        let mut a = ServedAssociation::default();
        (a.assoc_id, a.messages_in, a.bytes_in) = (3, 2, 20);
        a.peer_addrs = vec!["198.18.0.1:5000".parse().unwrap()];
        a.records.push_back(record(100, 1, 18, 10, 11_000));
        a.records.push_back(record(101, 1, 18, 10, 52_000));
        state.assocs.insert(3, a);
        // The association table saw the handshake that chose tag 7 (and 0xc1 for the peer).
        let mut live = LiveAssociations::default();
        let (client, server) = (("198.18.0.1".parse().unwrap(), 5000), ("198.18.0.2".parse().unwrap(), 36412));
        for (src, dst, vtag, ack, initiate_tag) in [(client, server, 0, false, 0xc1), (server, client, 0xc1, true, 7)] {
            let chunks = vec![ChunkView::Init { ack, initiate_tag, addresses: Vec::new() }];
            let _ = live.table.add(&PacketView { src, dst, vtag, ip_len: 60, ifindex: 0, chunks }, 1);
        }
        let report = join(36412, &state, &wire, &BTreeMap::new(), Some(&live));
        let r = &report.associations[0];
        assert_eq!(r.wire.inbound_vtag, Some(7));
        let joined = r.wire.association.as_ref().expect("attached to the table's association");
        assert_eq!((joined.endpoints[0].vtag, joined.endpoints[1].vtag), (0xc1, 7));
        assert_eq!(r.wire.data_chunks, Tally { count: 3, bytes: 30 });
        assert_eq!(r.wire.duplicate_tsns, 1);
        assert_eq!((r.matched_messages, r.unmatched_messages), (2, 0));
        assert_eq!(r.socket.per_ppid[&18], Tally { count: 2, bytes: 20 });
        // 10 us and 50 us: the duplicate's first sighting counts.
        assert_eq!(r.latency.count, 2);
        assert!((r.latency.sum_us - (10.0 + 50.0)).abs() < 1e-9, "{}", r.latency.sum_us);
        assert!((r.delivery_ratio.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn histogram_quantiles_use_bucket_bounds() {
        let mut h = Histogram::default();
        for us in [5.0, 20.0, 20.0, 2000.0] {
            h.observe(us);
        }
        assert_eq!(h.quantile_bound_us(0.5), Some(25.0));
        assert_eq!(h.quantile_bound_us(1.0), Some(2500.0));
    }
}
