//! `sctp-user top`: a live terminal table of a running instance, read from its `/stats`
//! once a second. Two views, `v` switches: the associations on the wire (both
//! directions, state, active path, round trip; the selected one's paths below, `↑`/`↓`
//! select), and the echo server's associations joined with XDP's flows. `q` or Esc quits.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use anyhow::{Context as _, Result};
use crossterm::event::{self, Event, KeyCode};
use ratatui::{
    layout::{Constraint, Layout},
    style::{Modifier, Style},
    widgets::{Block, Borders, Paragraph, Row, Table},
    Frame,
};
use serde_json::Value;

/// GET /stats from a running `sctp-user run --metrics ADDR`.
pub(crate) fn fetch(addr: SocketAddr) -> Result<Value> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("no sctp-user run answering on {addr} (start one with --metrics {addr})"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).context("malformed HTTP response")?;
    serde_json::from_str(body).context("/stats did not return JSON")
}

fn n(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".into(), |x| x.to_string())
}

/// Which view `top` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// The associations on the wire, with the paths of the `selected` one.
    Wire { selected: usize },
    /// The echo server's associations joined with XDP's, and the flows.
    Join,
}

/// Draws one screen from a `/stats` document.
pub(crate) fn draw(f: &mut Frame, stats: &Value, addr: SocketAddr, trouble: Option<&str>, view: View) {
    let [head, body] = Layout::vertical([Constraint::Length(5), Constraint::Fill(1)]).areas(f.area());
    draw_head(f, head, stats, addr, trouble);
    match view {
        View::Wire { selected } => draw_wire(f, body, stats, selected),
        View::Join => draw_join(f, body, stats),
    }
}

fn draw_head(f: &mut Frame, head: ratatui::layout::Rect, stats: &Value, addr: SocketAddr, trouble: Option<&str>) {
    let p = &stats["xdp"]["packets"];
    let e = &stats["echo"];
    let cur = &stats["echo_current"];
    let a = &stats["associations_summary"];
    let summary = format!(
        "frames {}  sctp {}  chunks DATA {}  malformed {}  drops {}  leaving: sctp {}\n\
         wire: {} associations ({} established), {} restarts, {} packets missed\n\
         echo: {} associations open ({} total), messages in {} out {}, shed {}, send failures {}",
        n(&p["total"]),
        n(&p["sctp"]),
        n(&stats["xdp"]["chunks"]["0"]),
        n(&p["malformed"]),
        n(&stats["xdp"]["verdicts"]["drop"]),
        n(&stats["egress"]["packets"]["sctp"]),
        n(&a["tracked"]),
        n(&a["by_state"]["established"]),
        n(&a["restarts"]),
        n(&a["summaries_lost"]),
        n(&cur["associations_current"]),
        n(&e["associations"]),
        n(&e["messages_in"]),
        n(&e["messages_out"]),
        n(&e["shed"]),
        n(&e["send_failed_events"]),
    );
    f.render_widget(
        Paragraph::new(summary).block(Block::default().borders(Borders::ALL).title(match trouble {
            None => format!(" sctp-user top: {addr} (v switches views, q quits) "),
            Some(why) => format!(" sctp-user top: {addr}: {why}; retrying, the last figures shown (q quits) "),
        })),
        head,
    );
}

/// The first address of an endpoint and its port.
fn endpoint(e: &Value) -> String {
    format!("{}:{}", e["addresses"][0].as_str().unwrap_or("?"), n(&e["port"]))
}

fn ms(us: &Value) -> String {
    us.as_f64().map_or_else(|| "-".into(), |v| format!("{:.2}", v / 1e3))
}

/// The associations on the wire, and the selected one's paths.
fn draw_wire(f: &mut Frame, body: ratatui::layout::Rect, stats: &Value, selected: usize) {
    let [list, detail] = Layout::vertical([Constraint::Percentage(60), Constraint::Fill(1)]).areas(body);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let empty = Vec::new();
    let all = stats["associations"].as_array().unwrap_or(&empty);
    let selected = selected.min(all.len().saturating_sub(1));
    let rows = all.iter().enumerate().map(|(i, a)| {
        let d = &a["directions"];
        let path = |d: &Value| d["data_path"]["dst"].as_str().map_or_else(|| "-".into(), ToString::to_string);
        let row = Row::new(vec![
            format!("{} <-> {}", endpoint(&a["endpoints"][0]), endpoint(&a["endpoints"][1])),
            a["state"].as_str().unwrap_or("-").to_string(),
            n(&d[0]["packets"]),
            n(&d[1]["packets"]),
            format!("{} / {}", path(&d[0]), path(&d[1])),
            n(&(d[0]["path_switches"].as_u64().unwrap_or(0) + d[1]["path_switches"].as_u64().unwrap_or(0)).into()),
            ms(&a["rtt_us"]["mean"]),
            n(&(d[0]["retransmissions"].as_u64().unwrap_or(0) + d[1]["retransmissions"].as_u64().unwrap_or(0)).into()),
        ]);
        if i == selected {
            row.style(Style::default().add_modifier(Modifier::REVERSED))
        } else {
            row
        }
    });
    let widths = [48, 13, 9, 9, 33, 8, 8, 6].map(Constraint::Length);
    f.render_widget(
        Table::new(rows, widths)
            .header(
                Row::new([
                    "endpoint 0 <-> endpoint 1",
                    "state",
                    "pkts >",
                    "pkts <",
                    "DATA to (0 / 1)",
                    "switches",
                    "rtt ms",
                    "retx",
                ])
                .style(bold),
            )
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" associations on the wire (both directions; ↑/↓ select) "),
            ),
        list,
    );
    let paths = all.get(selected).and_then(|a| a["paths"].as_array()).unwrap_or(&empty);
    let rows = paths.iter().map(|p| {
        Row::new(vec![
            format!("{} -> {}", p["src"].as_str().unwrap_or("?"), p["dst"].as_str().unwrap_or("?")),
            p["iface"].as_str().unwrap_or("-").to_string(),
            n(&p["packets"]),
            n(&p["data_chunks"]),
            n(&p["heartbeats"]),
            n(&p["heartbeat_acks"]),
            n(&p["heartbeats_unanswered"]),
            ms(&p["rtt_us"]["mean"]),
        ])
    });
    let widths = [48, 10, 9, 9, 6, 8, 8, 12].map(Constraint::Length);
    f.render_widget(
        Table::new(rows, widths)
            .header(
                Row::new([
                    "path (source -> destination)",
                    "iface",
                    "packets",
                    "DATA",
                    "HB",
                    "HB-ACK",
                    "HB miss",
                    "HB rtt ms",
                ])
                .style(bold),
            )
            .block(Block::default().borders(Borders::ALL).title(" paths of the selected association ")),
        detail,
    );
}

/// The echo server's associations joined with XDP's, and the flows.
fn draw_join(f: &mut Frame, body: ratatui::layout::Rect, stats: &Value) {
    let [assocs, flows] = Layout::vertical([Constraint::Percentage(55), Constraint::Fill(1)]).areas(body);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let empty = Vec::new();
    let rows = stats["join"]["associations"].as_array().unwrap_or(&empty).iter().map(|a| {
        let hex = |v: &Value| v.as_u64().map_or_else(|| "-".into(), |x| format!("{x:#x}"));
        Row::new(vec![
            n(&a["assoc_id"]),
            a["peer_addrs"][0].as_str().unwrap_or("-").to_string(),
            if a["closed"] == true { "closed".into() } else { "up".into() },
            hex(&a["wire"]["inbound_vtag"]),
            n(&a["socket"]["messages"]["count"]),
            n(&a["wire"]["data_chunks"]["count"]),
            a["delivery_ratio"].as_f64().map_or_else(|| "-".into(), |r| format!("{r:.3}")),
            n(&a["wire"]["duplicate_tsns"]),
            a["latency"]["count"].as_u64().filter(|c| *c > 0).map_or_else(
                || "-".into(),
                |c| {
                    format!(
                        "{:.0}",
                        a["latency"]["sum_us"].as_f64().unwrap_or(0.0)
                            / f64::from(u32::try_from(c).unwrap_or(u32::MAX))
                    )
                },
            ),
        ])
    });
    let widths = [5, 22, 6, 11, 9, 9, 6, 5, 9].map(Constraint::Length);
    f.render_widget(
        Table::new(rows, widths)
            .header(
                Row::new(["assoc", "peer", "state", "in vtag", "messages", "DATA", "ratio", "dups", "mean us"])
                    .style(bold),
            )
            .block(Block::default().borders(Borders::ALL).title(" associations (socket joined with XDP) ")),
        assocs,
    );
    let rows = stats["flows"].as_array().unwrap_or(&empty).iter().map(|s| {
        let t = &s["totals"];
        Row::new(vec![
            s["flow"].as_str().unwrap_or("-").to_string(),
            s["vtag"].as_str().unwrap_or("").to_string(),
            n(&t["packets"]),
            n(&t["bytes"]),
            n(&t["data_chunks"]),
            n(&t["retransmissions"]),
        ])
    });
    let widths = [
        Constraint::Length(44),
        Constraint::Length(11),
        Constraint::Length(9),
        Constraint::Length(11),
        Constraint::Length(9),
        Constraint::Length(6),
    ];
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(["flow", "vtag", "packets", "bytes", "DATA", "retx"]).style(bold))
            .block(Block::default().borders(Borders::ALL).title(" flows at XDP (busiest; the rest as other) ")),
        flows,
    );
}

/// The live view until `q`.
pub(crate) fn run(addr: SocketAddr) -> Result<()> {
    let mut stats = fetch(addr)?; // fail before taking the terminal over
    let mut trouble: Option<String> = None;
    let mut view = View::Wire { selected: 0 };
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        loop {
            terminal.draw(|f| draw(f, &stats, addr, trouble.as_deref(), view))?;
            if event::poll(Duration::from_secs(1))? {
                if let Event::Key(k) = event::read()? {
                    view = match (k.code, view) {
                        (KeyCode::Char('q') | KeyCode::Esc, _) => return Ok(()),
                        (KeyCode::Char('v'), View::Wire { .. }) => View::Join,
                        (KeyCode::Char('v'), View::Join) => View::Wire { selected: 0 },
                        (KeyCode::Down, View::Wire { selected }) => View::Wire { selected: selected + 1 },
                        (KeyCode::Up, View::Wire { selected }) => View::Wire { selected: selected.saturating_sub(1) },
                        (_, v) => v,
                    };
                    // A key redraws at once; the figures are fetched on the second.
                    continue;
                }
            }
            // An instance restarting or a dropped connection is passing: keep trying.
            match fetch(addr) {
                Ok(s) => (stats, trouble) = (s, None),
                Err(e) => trouble = Some(format!("{e:#}")),
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use ratatui::{backend::TestBackend, Terminal};

    use super::*;

    #[test]
    fn the_screen_shows_associations_and_flows() {
        let stats = serde_json::json!({
            "xdp": {"packets": {"total": 120, "sctp": 100, "malformed": 2}, "chunks": {"0": 40}, "verdicts": {"drop": 0}},
            "echo": {"associations": 3, "messages_in": 40, "messages_out": 40, "shed": 0, "send_failed_events": 0},
            "echo_current": {"associations_current": 2},
            "join": {"associations": [{"assoc_id": 7, "peer_addrs": ["198.18.0.1:5000"], "closed": false,
                "wire": {"inbound_vtag": 48879, "data_chunks": {"count": 40}, "duplicate_tsns": 0},
                "socket": {"messages": {"count": 40}}, "delivery_ratio": 1.0,
                "latency": {"count": 40, "sum_us": 4000.0}}]},
            "flows": [{"flow": "198.18.0.1:5000->198.18.0.2:36412", "vtag": "0x0000beef",
                "totals": {"packets": 50, "bytes": 9000, "data_chunks": 40, "retransmissions": 0}}]
        });
        let mut t = Terminal::new(TestBackend::new(120, 24)).unwrap();
        t.draw(|f| draw(f, &stats, "127.0.0.1:9464".parse().unwrap(), None, View::Join)).unwrap();
        let screen: String = t.backend().buffer().content().iter().map(ratatui::buffer::Cell::symbol).collect();
        for want in [
            "frames 120",
            "2 associations open (3 total)",
            "198.18.0.1:5000",
            "0xbeef",
            "1.000",
            "198.18.0.1:5000->198.18.0.2:36412",
            "9000",
        ] {
            assert!(screen.contains(want), "missing {want:?} in the screen");
        }
    }

    #[test]
    fn the_wire_view_shows_both_directions_the_active_path_and_the_paths() {
        let path = |src: &str, dst: &str, hb: u64| {
            serde_json::json!({"src": src, "dst": dst, "iface": "es1", "packets": 10, "data_chunks": 4, "heartbeats": hb,
                "heartbeat_acks": hb, "heartbeats_unanswered": 0, "rtt_us": {"mean": 50_000}})
        };
        let stats = serde_json::json!({
            "xdp": {"packets": {"total": 120, "sctp": 100}},
            "egress": {"packets": {"sctp": 60}},
            "associations_summary": {"tracked": 1, "by_state": {"established": 1}, "restarts": 0, "summaries_lost": 0},
            "associations": [{
                "endpoints": [{"port": 5000, "addresses": ["198.18.0.1"]}, {"port": 36412, "addresses": ["198.18.0.2"]}],
                "state": "established",
                "directions": [
                    {"packets": 57, "retransmissions": 1, "path_switches": 1, "data_path": {"src": "198.18.1.1", "dst": "198.18.1.2"}},
                    {"packets": 43, "retransmissions": 0, "path_switches": 0, "data_path": {"src": "198.18.0.2", "dst": "198.18.0.1"}}],
                "rtt_us": {"mean": 1500},
                "paths": [path("198.18.0.1", "198.18.0.2", 3), path("198.18.1.1", "198.18.1.2", 2)],
            }],
        });
        let mut t = Terminal::new(TestBackend::new(140, 24)).unwrap();
        t.draw(|f| draw(f, &stats, "127.0.0.1:9464".parse().unwrap(), None, View::Wire { selected: 0 })).unwrap();
        let screen: String = t.backend().buffer().content().iter().map(ratatui::buffer::Cell::symbol).collect();
        for want in [
            "leaving: sctp 60",
            "1 associations (1 established)",
            "198.18.0.1:5000 <-> 198.18.0.2:36412",
            "198.18.1.2 / 198.18.0.1",
            "1.50",
            "198.18.1.1 -> 198.18.1.2",
            "es1",
            "50.00",
        ] {
            assert!(screen.contains(want), "missing {want:?} in the screen");
        }
    }
}
