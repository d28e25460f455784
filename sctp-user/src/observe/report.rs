//! Turning a counter snapshot into the JSON of DESIGN.md's contract 2 and into a table.

use std::{collections::BTreeMap, fmt::Write as _, net::IpAddr};

use sctp_common::{
    abi::{Counter, FlowKey, FlowStats, FAMILY_IPV6},
    proto::chunk,
};
use serde_json::{json, Map, Value};

use super::Snapshot;

/// Frames of a capture the program never ran on (live: none).
#[derive(Clone, Copy, Default)]
pub struct Unreplayed {
    /// Shorter than an Ethernet header, or cut inside their link-layer header.
    pub too_short: u64,
    /// Larger than the kernel's test run takes.
    pub too_large: u64,
}

/// The JSON object of a snapshot (`/stats`, `run --json`): every counter and the
/// `max_flows` busiest flows (by packets; all with `usize::MAX`), with `flows_total`, the
/// number in the table. Frames the program never ran on count in `packets.total` and
/// under their reason.
#[must_use]
pub fn to_json(s: &Snapshot, unreplayed: Unreplayed, max_flows: usize) -> Value {
    let mut j = summary_json(s, unreplayed);
    let flows: Vec<Value> = busiest(&s.flows, max_flows).map(|(k, f)| flow_json(*k, f)).collect();
    j.insert("flows".into(), flows.into());
    j.into()
}

/// Every counter of a snapshot but the flows (`flows_total` says how many there are).
#[must_use]
pub fn summary_json(s: &Snapshot, unreplayed: Unreplayed) -> Map<String, Value> {
    let Unreplayed { too_short, too_large } = unreplayed;
    let g = &s.global;
    let mut packets = Map::new();
    packets.insert("total".into(), (g.get(Counter::Frames) + too_short + too_large).into());
    packets.insert("too_short".into(), too_short.into());
    packets.insert("too_large".into(), too_large.into());
    for c in Counter::ALL.iter().filter(|c| !c.is_error() && !c.is_drop() && **c != Counter::Frames) {
        packets.insert(c.name().into(), g.get(*c).into());
    }
    let chunks: Map<String, Value> =
        g.chunk_types.iter().enumerate().filter(|(_, n)| **n > 0).map(|(t, n)| (t.to_string(), (*n).into())).collect();
    let errors: Map<String, Value> =
        Counter::ALL.iter().filter(|c| c.is_error()).map(|c| (c.name().to_string(), g.get(*c).into())).collect();
    let drops: Map<String, Value> =
        Counter::ALL.iter().filter(|c| c.is_drop()).map(|c| (c.reason().to_string(), g.get(*c).into())).collect();
    let j = json!({
        "packets": packets,
        "chunks": chunks,
        "data": { "chunks": g.get(Counter::DataChunks), "payload_bytes": g.get(Counter::DataPayloadBytes) },
        "errors": errors,
        "verdicts": { "pass": g.get(Counter::VerdictPass), "drop": g.get(Counter::VerdictDrop) },
        "drops": drops,
        "rules": s.rules.0,
        "flows_total": s.flows.len(),
    });
    let Value::Object(map) = j else { unreachable!("json! of an object") };
    map
}

/// The `top` busiest flows, busiest first: by packets, then bytes, then key (so the
/// order is the same whichever engine counted them).
pub fn busiest(flows: &BTreeMap<FlowKey, FlowStats>, top: usize) -> impl Iterator<Item = (&FlowKey, &FlowStats)> {
    let mut all: Vec<_> = flows.iter().collect();
    let rank = |(k, f): &(&FlowKey, &FlowStats)| (std::cmp::Reverse(f.packets), std::cmp::Reverse(f.bytes), **k);
    if all.len() > top {
        all.select_nth_unstable_by_key(top, rank);
        all.truncate(top);
    }
    all.sort_unstable_by_key(rank);
    all.into_iter()
}

/// One flow as JSON.
#[must_use]
pub fn flow_json(k: FlowKey, f: &FlowStats) -> Value {
    let chunks: Map<String, Value> = f
        .chunks
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(b, n)| {
            let key = chunk::KNOWN.get(b).map_or_else(|| "unknown".to_string(), |(t, _)| t.to_string());
            (key, (*n).into())
        })
        .collect();
    let init = (f.init_chunk_type != 0).then(|| {
        json!({
            "chunk": chunk::name(u8::try_from(f.init_chunk_type).unwrap_or(0)),
            "initiate_tag": f.init_tag,
            "a_rwnd": f.init_a_rwnd,
            "outbound_streams": f.init_out_streams,
            "inbound_streams": f.init_in_streams,
            "initial_tsn": f.init_tsn,
        })
    });
    json!({
        "src_port": k.src_port,
        "dst_port": k.dst_port,
        "vtag": k.vtag,
        "src_addr": addr(f.family, &f.src_addr).to_string(),
        "dst_addr": addr(f.family, &f.dst_addr).to_string(),
        "packets": f.packets,
        "bytes": f.bytes,
        "chunks": chunks,
        "data_chunks": f.data_chunks,
        "data_payload_bytes": f.data_payload_bytes,
        "data_unordered": f.data_unordered,
        "data_fragments": f.data_fragments,
        "data_at_or_below_highest_tsn": f.data_at_or_below_highest,
        "highest_tsn": (f.tsn_seen != 0).then_some(f.highest_tsn),
        "sack_gap_blocks": f.sack_gap_blocks,
        "sack_dup_tsns": f.sack_dup_tsns,
        "t_bit_chunks": f.t_bit_chunks,
        "malformed": f.malformed,
        "init": init,
    })
}

/// An address as the flow stored it (IPv4 in the first four bytes).
#[must_use]
pub fn addr(family: u32, bytes: &[u8; 16]) -> IpAddr {
    if family == FAMILY_IPV6 {
        IpAddr::from(*bytes)
    } else {
        IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
}

/// A human-readable summary: totals, then one line per flow, the `top` busiest first
/// (with `top` 0, only how many flows there are).
#[must_use]
pub fn to_table(s: &Snapshot, top: usize) -> String {
    let g = &s.global;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "frames {}  sctp {}  chunks {}  DATA {} ({} payload bytes)  malformed {}",
        g.get(Counter::Frames),
        g.get(Counter::Sctp),
        g.get(Counter::Chunks),
        g.get(Counter::DataChunks),
        g.get(Counter::DataPayloadBytes),
        g.get(Counter::Malformed),
    );
    let types: Vec<String> = g
        .chunk_types
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(t, n)| {
            format!(
                "{}={n}",
                u8::try_from(t).ok().and_then(chunk::name).map_or_else(|| format!("type{t}"), str::to_string)
            )
        })
        .collect();
    if !types.is_empty() {
        let _ = writeln!(out, "chunks by type: {}", types.join(" "));
    }
    for c in Counter::ALL.iter().filter(|c| c.is_error() && g.get(**c) > 0) {
        let _ = writeln!(out, "malformed: {} {}", c.name(), g.get(*c));
    }
    if !s.rules.0.is_empty() || g.get(Counter::VerdictDrop) > 0 {
        let _ = writeln!(out, "verdicts: pass {}  drop {}", g.get(Counter::VerdictPass), g.get(Counter::VerdictDrop));
        for r in &s.rules.0 {
            let _ = writeln!(out, "  {:<56} {:<18} {:>10}", r.rule, r.reason, r.drops);
        }
    }
    if top == 0 {
        let _ = writeln!(out, "{} flow(s) (one per direction and tag): --flows lists them", s.flows.len());
        return out;
    }
    let _ = writeln!(
        out,
        "\n{:<40} {:>12} {:>8} {:>10} {:>7} {:>11} {:>7}",
        "flow (src -> dst)", "vtag", "packets", "bytes", "DATA", "data bytes", "retx"
    );
    for (k, f) in busiest(&s.flows, top) {
        let ends =
            format!("{}:{} -> {}:{}", addr(f.family, &f.src_addr), k.src_port, addr(f.family, &f.dst_addr), k.dst_port);
        let _ = writeln!(
            out,
            "{ends:<40} {:>#12x} {:>8} {:>10} {:>7} {:>11} {:>7}",
            k.vtag, f.packets, f.bytes, f.data_chunks, f.data_payload_bytes, f.data_at_or_below_highest
        );
    }
    if s.flows.len() > top {
        let _ = writeln!(
            out,
            "... and {} more flow(s) (inspect --top N shows more; the JSON report has every one)",
            s.flows.len() - top
        );
    }
    out
}
