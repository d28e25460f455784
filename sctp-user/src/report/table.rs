//! A counter snapshot as a table for people: totals, then the busiest flows.

use std::fmt::Write as _;

use sctp_common::{
    abi::{ip_addr, Counter},
    proto::chunk,
};

use crate::snapshot::{busiest, Snapshot};

/// A human-readable summary: totals, then one line per flow, the `top` busiest first
/// (with `top` 0, only how many flows there are).
#[must_use]
pub(crate) fn to_table(s: &Snapshot, top: usize) -> String {
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
        let ends = format!(
            "{}:{} -> {}:{}",
            ip_addr(f.family, &f.src_addr),
            k.src_port,
            ip_addr(f.family, &f.dst_addr),
            k.dst_port
        );
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
