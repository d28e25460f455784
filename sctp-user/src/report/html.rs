//! `inspect --html FILE`: one self-contained HTML report (no script, no network): the
//! summary, the chunk mix, and per association its TSN graph (each direction's DATA TSNs
//! with the other side's SACK cumulative TSN, as Wireshark's TSN graph), round-trip times
//! and throughput over time, and its application messages as a ladder (a sequence
//! diagram: both endpoints, each message with its name, time and, for Diameter answers,
//! result and response time; failures in red). Charts are drawn by `plotters` as SVG and
//! embedded inline; the ladder, text and arrows, is written as SVG here.

use std::fmt::Write as _;

use anyhow::{anyhow, Result};
use plotters::{
    coord::{
        ranged1d::{AsRangedCoord, ValueFormatter},
        types::RangedCoordf64,
        Shift,
    },
    prelude::*,
};
use sctp_common::{abi::Counter, proto::chunk};

use crate::{
    assoc::{
        trace::{Direction, Ladder, Traces},
        Association, EndpointInfo,
    },
    doc::MessageDoc,
    replay::Replay,
};

/// Associations the report draws.
const ASSOCIATIONS: usize = 10;
const SIZE: (u32, u32) = (560, 280);
const COLORS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];

/// The report as one HTML document.
pub(crate) fn render(r: &Replay, traces: &Traces, title: &str) -> Result<String> {
    let g = &r.snapshot.global;
    let mut html = String::new();
    let esc = escape(title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sctp-xdp inspect: {esc}</title>\n<style>{STYLE}</style></head><body>\n<h1>sctp-xdp inspect: {esc}</h1>\n"
    );
    let (first, last) = r.span_ns.unwrap_or_default();
    let rows = [
        ("frames", (g.get(Counter::Frames) + r.too_short + r.too_large).to_string()),
        ("SCTP packets", g.get(Counter::Sctp).to_string()),
        ("chunks", g.get(Counter::Chunks).to_string()),
        ("DATA chunks", g.get(Counter::DataChunks).to_string()),
        ("DATA payload bytes", g.get(Counter::DataPayloadBytes).to_string()),
        ("malformed", g.get(Counter::Malformed).to_string()),
        ("dropped by rules", g.get(Counter::VerdictDrop).to_string()),
        ("bad checksums", r.checksums.as_ref().map_or_else(|| "not checked".into(), |c| c.bad.to_string())),
        ("flows", r.snapshot.flows.len().to_string()),
        ("associations", r.associations.iter().count().to_string()),
        ("capture duration", format!("{:.3} s", seconds(last.saturating_sub(first)))),
        ("engine", format!("{} ({} thread(s))", r.engine.name(), r.threads)),
    ];
    html.push_str("<section id=\"summary\"><h2>Summary</h2><table>");
    for (k, v) in rows {
        let _ = write!(html, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    html.push_str("</table></section>\n<section id=\"chunks\"><h2>Chunk mix</h2>");
    figure(&mut html, "chunk-mix", &chunk_mix(&g.chunk_types)?);
    html.push_str("</section>\n");
    // The busiest associations with a trace (one merged into another since keeps its
    // own: a multi-homed peer met mid-way has its first packets counted, not drawn).
    let drawn = r
        .associations
        .busiest(usize::MAX)
        .into_iter()
        .filter_map(|(id, assoc)| Some((id, assoc, traces.by_association.get(&id)?)))
        .take(ASSOCIATIONS);
    for (i, (id, assoc, dirs)) in drawn.enumerate() {
        let drawn = Drawn { assoc, dirs };
        let (a, b) = (endpoint(&assoc.endpoints[0]), endpoint(&assoc.endpoints[1]));
        let _ = write!(
            html,
            "<section class=\"association\"><h2>{} &harr; {} ({})</h2><p>{} packets over {:.3} s</p><div class=\"grid\">",
            escape(&a),
            escape(&b),
            assoc.state.name(),
            assoc.packets,
            seconds(assoc.last_ns - assoc.first_ns)
        );
        for (d, name) in [(0, format!("{a} \u{2192} {b}")), (1, format!("{b} \u{2192} {a}"))] {
            figure(&mut html, &format!("tsn-{i}-{d}"), &tsn_chart(&drawn, d, &format!("TSN {name}"))?);
        }
        figure(&mut html, &format!("rtt-{i}"), &rtt_chart(&drawn, [&a, &b])?);
        figure(&mut html, &format!("throughput-{i}"), &throughput_chart(&drawn, [&a, &b])?);
        html.push_str("</div>");
        if let Some(l) = traces.ladders.get(&id) {
            figure(&mut html, &format!("ladder-{i}"), &ladder(l, assoc.first_ns, [&a, &b]));
        }
        html.push_str("</section>\n");
    }
    let all = r.associations.iter().count();
    if all > ASSOCIATIONS {
        let _ = write!(html, "<p>{} more association(s) not drawn.</p>", all - ASSOCIATIONS);
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}\
th,td{padding:.2em 1em;border-bottom:1px solid #ddd;text-align:left}\
.grid{display:grid;grid-template-columns:repeat(2,580px);gap:8px}figure{margin:0}";

fn figure(html: &mut String, id: &str, svg: &str) {
    let _ = write!(html, "<figure class=\"chart\" id=\"{id}\">{svg}</figure>");
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An endpoint as `address:port` (its first address; `+N` more when multi-homed).
fn endpoint(e: &EndpointInfo) -> String {
    let first = match e.addresses.iter().next() {
        Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        Some(std::net::IpAddr::V4(v4)) => v4.to_string(),
        None => "?".into(),
    };
    let more = e.addresses.len().saturating_sub(1);
    if more > 0 {
        format!("{first}:{} (+{more})", e.port)
    } else {
        format!("{first}:{}", e.port)
    }
}

#[expect(clippy::cast_precision_loss, reason = "times and rates to draw")]
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Rungs a ladder shows (the rest are counted below it).
const LADDER_SHOWN: usize = 60;
const LADDER_WIDTH: u32 = 1160;

/// The messages of a ladder as a sequence diagram: a lifeline per endpoint, an arrow per
/// message from its sender, labelled with its name and kind (and a Diameter answer's
/// result and response time), its time since the association's first packet at the left.
/// Failures (unsuccessful outcomes, answers outside 2xxx) are red and marked.
#[expect(clippy::cast_precision_loss, reason = "times shown to the microsecond")]
fn ladder(l: &Ladder, start_ns: u64, ends: [&str; 2]) -> String {
    let shown = l.rungs.len().min(LADDER_SHOWN);
    let rows = u32::try_from(shown).unwrap_or(0);
    let height = 70 + 24 * rows + 24;
    let x = [260, LADDER_WIDTH - 100];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{LADDER_WIDTH}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    for (i, end) in ends.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-weight=\"bold\">{}</text><line x1=\"{0}\" y1=\"30\" x2=\"{0}\" y2=\"{}\" stroke=\"#888\"/>",
            x[i],
            escape(end),
            height - 20
        );
    }
    for (k, rung) in l.rungs.iter().take(shown).enumerate() {
        let y = 60 + 24 * u32::try_from(k).unwrap_or(0);
        let (from, to) = (x[rung.from.min(1)], x[1 - rung.from.min(1)]);
        let m = &rung.message;
        let doc = MessageDoc::of(&m.key, &crate::assoc::messages::Tally::default());
        let mut label = format!("{} {} {}", doc.protocol, doc.label(), m.key.kind.name());
        if let Some(r) = m.result {
            let _ = write!(label, " result {}", if r == 0 { "?".to_string() } else { r.to_string() });
        }
        if let Some(ns) = m.response_ns {
            let _ = write!(label, " in {:.3} ms", ns as f64 / 1e6);
        }
        let (color, mark) = if m.failed() { ("#d62728", "\u{2717} ") } else { ("#1f77b4", "") };
        let head = if to > from { to - 8 } else { to + 8 };
        let _ = write!(
            svg,
            "<g class=\"rung{}\"><text x=\"10\" y=\"{y}\">+{:.6} s</text><line x1=\"{from}\" y1=\"{y}\" x2=\"{to}\" y2=\"{y}\" stroke=\"{color}\" stroke-width=\"1.5\"/><polygon points=\"{to},{y} {head},{} {head},{}\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{color}\">{}{}</text></g>",
            if m.failed() { " failed" } else { "" },
            rung.ts_ns.saturating_sub(start_ns) as f64 / 1e9,
            y - 4,
            y + 4,
            u32::midpoint(from, to),
            y - 4,
            mark,
            escape(&label)
        );
    }
    let more = l.more + (l.rungs.len() - shown) as u64;
    if more > 0 {
        let _ = write!(svg, "<text x=\"10\" y=\"{}\">{more} more message(s) not drawn</text>", height - 4);
    }
    svg.push_str("</svg>");
    svg
}

/// Draws into an SVG string.
fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), String>) -> Result<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("drawing: {e}"))?;
        draw(&root).map_err(|e| anyhow!("drawing: {e}"))?;
        root.present().map_err(|e| anyhow!("drawing: {e}"))?;
    }
    Ok(s)
}

/// Chunks of each type seen, one bar per type.
fn chunk_mix(types: &[u64]) -> Result<String> {
    let seen: Vec<(String, u64)> = types
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(t, n)| {
            let t = u8::try_from(t).unwrap_or(u8::MAX);
            (chunk::name(t).map_or_else(|| format!("type {t}"), str::to_string), *n)
        })
        .collect();
    svg(|root| {
        let max = seen.iter().map(|s| s.1).max().unwrap_or(1).max(1);
        let n = u32::try_from(seen.len().max(1)).unwrap_or(1);
        let mut c = ChartBuilder::on(root)
            .caption("Chunks by type", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(140)
            .build_cartesian_2d(0..max + max / 10, (0..n).into_segmented())
            .map_err(|e| e.to_string())?;
        let label = |v: &SegmentValue<u32>| match v {
            SegmentValue::CenterOf(i) => seen.get(*i as usize).map(|s| s.0.clone()).unwrap_or_default(),
            _ => String::new(),
        };
        c.configure_mesh()
            .disable_y_mesh()
            .y_labels(seen.len().max(1))
            .y_label_formatter(&label)
            .x_desc("chunks")
            .draw()
            .map_err(|e| e.to_string())?;
        c.draw_series(
            Histogram::horizontal(&c)
                .style(COLORS[0].filled())
                .margin(3)
                .data(seen.iter().zip(0u32..).map(|((_, n), i)| (i, *n))),
        )
        .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// An association and its traces, as drawn.
struct Drawn<'a> {
    assoc: &'a Association,
    dirs: &'a [Direction; 2],
}

/// Seconds since the association's first packet, for the x axes.
fn since(c: &Drawn, ts: u64) -> f64 {
    seconds(ts.saturating_sub(c.assoc.first_ns))
}

fn x_range(c: &Drawn) -> std::ops::Range<f64> {
    0.0..seconds(c.assoc.last_ns - c.assoc.first_ns).max(1e-3)
}

/// A chart of the association's time, in seconds since its first packet, against `y`
/// (labelled `y_desc`), with a legend: the frame each timeline shares; `series` draws
/// into it.
fn timeline<Y>(
    c: &Drawn,
    caption: &str,
    y_desc: &str,
    y: Y,
    series: impl FnOnce(&mut ChartContext<SVGBackend, Cartesian2d<RangedCoordf64, Y::CoordDescType>>) -> Result<(), String>,
) -> Result<String>
where
    Y: AsRangedCoord,
    Y::CoordDescType: ValueFormatter<Y::Value>,
    Y::Value: std::fmt::Debug,
{
    svg(|root| {
        let mut ch = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 14))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range(c), y)
            .map_err(|e| e.to_string())?;
        ch.configure_mesh().x_desc("seconds").y_desc(y_desc).draw().map_err(|e| e.to_string())?;
        series(&mut ch)?;
        ch.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// The top of a y axis from 0: a tenth above the highest point (never an empty range).
fn top(all: &[Vec<(f64, f64)>; 2]) -> f64 {
    all.iter().flatten().map(|p| p.1).fold(1e-3, f64::max) * 1.1
}

/// Direction `d`'s DATA TSNs and the other side's SACK cumulative TSN, relative to the
/// first TSN of `d`.
fn tsn_chart(c: &Drawn, d: usize, title: &str) -> Result<String> {
    let (sent, acks) = (&c.dirs[d], &c.dirs[1 - d]);
    let base = sent.data.points.first().map(|p| p.1).or(acks.sack.points.first().map(|p| p.1)).unwrap_or(0);
    let rel = |tsn: u32| i64::from(tsn.wrapping_sub(base).cast_signed());
    let data: Vec<(f64, i64)> = sent.data.points.iter().map(|&(t, tsn)| (since(c, t), rel(tsn))).collect();
    let sacks: Vec<(f64, i64)> = acks.sack.points.iter().map(|&(t, tsn)| (since(c, t), rel(tsn))).collect();
    let (lo, hi) = data.iter().chain(&sacks).fold((0i64, 1i64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    timeline(c, title, &format!("TSN - {base}"), lo..hi + 1, |ch| {
        ch.draw_series(data.iter().map(|p| Circle::new(*p, 2, COLORS[0].filled())))
            .map_err(|e| e.to_string())?
            .label("DATA")
            .legend(|(x, y)| Circle::new((x, y), 3, COLORS[0].filled()));
        ch.draw_series(LineSeries::new(sacks.iter().copied(), COLORS[1]))
            .map_err(|e| e.to_string())?
            .label("SACK cumulative TSN")
            .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], COLORS[1]));
        Ok(())
    })
}

/// DATA-to-SACK round trips over time, both directions, in ms.
fn rtt_chart(c: &Drawn, ends: [&str; 2]) -> Result<String> {
    #[expect(clippy::cast_precision_loss, reason = "a time to draw")]
    let series = |d: &Direction| -> Vec<(f64, f64)> {
        d.rtt.points.iter().map(|&(t, rtt)| (since(c, t), rtt as f64 / 1e6)).collect()
    };
    let all = [series(&c.dirs[0]), series(&c.dirs[1])];
    timeline(c, "Round trip, DATA to SACK (ms)", "ms", 0.0..top(&all), |ch| {
        for (d, points) in all.iter().enumerate() {
            let color = COLORS[d];
            ch.draw_series(points.iter().map(|p| Cross::new(*p, 3, color)))
                .map_err(|e| e.to_string())?
                .label(format!("DATA sent by {}", ends[d]))
                .legend(move |(x, y)| Cross::new((x, y), 3, color));
        }
        Ok(())
    })
}

/// Points of a throughput line at most: the bins are merged down to this many.
const THROUGHPUT_POINTS: usize = 100;

/// DATA payload throughput over time, both directions, in kB/s.
fn throughput_chart(c: &Drawn, ends: [&str; 2]) -> Result<String> {
    let span = c.assoc.last_ns - c.assoc.first_ns;
    #[expect(clippy::cast_precision_loss, reason = "a rate to draw")]
    let series = |d: &Direction| -> Vec<(f64, f64)> {
        let b = &d.bytes;
        // Bins past the association's last packet are empty: leave them out, then merge.
        let used = usize::try_from(span / b.width_ns + 1).unwrap_or(usize::MAX).min(b.bytes.len());
        let merge = used.div_ceil(THROUGHPUT_POINTS).max(1);
        let width = seconds(b.width_ns) * merge as f64;
        b.bytes[..used]
            .chunks(merge)
            .enumerate()
            .map(|(i, n)| (i as f64 * width, n.iter().sum::<u64>() as f64 / width / 1e3))
            .collect()
    };
    let all = [series(&c.dirs[0]), series(&c.dirs[1])];
    timeline(c, "Throughput, DATA payload (kB/s)", "kB/s", 0.0..top(&all), |ch| {
        for (d, points) in all.iter().enumerate() {
            let color = COLORS[d];
            ch.draw_series(LineSeries::new(points.iter().copied(), color))
                .map_err(|e| e.to_string())?
                .label(format!("sent by {}", ends[d]))
                .legend(move |(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], color));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use sctp_common::parse::message::{Kind, Protocol};

    use super::*;
    use crate::assoc::{
        messages::{Counted, MessageKey},
        trace::{Rung, MAX_RUNGS},
    };

    fn rung(ts_ns: u64, from: usize, kind: Kind, code: u32, result: Option<u32>) -> Rung {
        let key = MessageKey { protocol: Protocol::Diameter, kind, code, application: 16_777_251 };
        Rung { ts_ns, from, message: Counted { key, result, response_ns: result.map(|_| 2_500_000) } }
    }

    #[test]
    fn the_ladder_draws_each_message_from_its_sender_and_marks_failures() {
        let l = Ladder {
            rungs: vec![
                rung(1_000, 0, Kind::Request, 316, None),
                rung(2_501_000, 1, Kind::Answer, 316, Some(2001)),
                rung(3_000_000, 0, Kind::Request, 318, None),
                rung(4_000_000, 1, Kind::Answer, 318, Some(5001)),
            ],
            more: 3,
        };
        let svg = ladder(&l, 1_000, ["mme:3868", "hss<1>"]);
        assert!(svg.contains("Diameter Update-Location (316) request"), "{svg}");
        assert!(svg.contains("Update-Location (316) answer result 2001 in 2.500 ms"), "{svg}");
        // The answer goes from the second lifeline (x 1060) to the first (x 260).
        assert!(svg.contains("<line x1=\"1060\" y1=\"84\" x2=\"260\" y2=\"84\""), "{svg}");
        assert_eq!(svg.matches("class=\"rung failed\"").count(), 1, "the 5001 answer alone: {svg}");
        assert!(svg.contains("+0.002500 s") && svg.contains("3 more message(s)"), "{svg}");
        assert!(svg.contains("hss&lt;1&gt;"), "names are escaped: {svg}");
    }

    #[test]
    fn a_ladder_keeps_its_first_messages_and_counts_the_rest() {
        let mut t = Traces::default();
        let frame = sctp_common::builder::SctpPacket::new(sctp_common::builder::V4, 1, vec![]).frame();
        let view = crate::assoc::packet_view::view(&frame).unwrap();
        t.add(&view, 0, 7, 0);
        let one = [rung(0, 0, Kind::Request, 316, None).message];
        for i in 0..MAX_RUNGS + 5 {
            t.messages(&one, i as u64, 7, 0);
        }
        t.messages(&one, 0, 8, 0);
        assert_eq!((t.ladders[&7].rungs.len(), t.ladders[&7].more), (MAX_RUNGS, 5));
        assert!(!t.ladders.contains_key(&8), "an association not traced has no ladder");
    }
}
