//! `sctp-user top`: a live terminal table of a running instance's associations and flows,
//! read from its `/stats` once a second. `q` or Esc quits.

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
pub fn fetch(addr: SocketAddr) -> Result<Value> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("no sctp-user run answering on {addr} (start one with --metrics {addr})"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .context("malformed HTTP response")?;
    serde_json::from_str(body).context("/stats did not return JSON")
}

fn n(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".into(), |x| x.to_string())
}

/// Draws one screen from a `/stats` document.
#[expect(clippy::too_many_lines, reason = "one screen laid out top to bottom")]
pub fn draw(f: &mut Frame, stats: &Value, addr: SocketAddr, trouble: Option<&str>) {
    let [head, assocs, flows] =
        Layout::vertical([Constraint::Length(4), Constraint::Percentage(55), Constraint::Fill(1)]).areas(f.area());
    let p = &stats["xdp"]["packets"];
    let e = &stats["echo"];
    let cur = &stats["echo_current"];
    let summary = format!(
        "frames {}  sctp {}  chunks DATA {}  malformed {}  drops {}\n\
         echo: {} associations open ({} total), messages in {} out {}, shed {}, send failures {}",
        n(&p["total"]),
        n(&p["sctp"]),
        n(&stats["xdp"]["chunks"]["0"]),
        n(&p["malformed"]),
        n(&stats["xdp"]["verdicts"]["drop"]),
        n(&cur["associations_current"]),
        n(&e["associations"]),
        n(&e["messages_in"]),
        n(&e["messages_out"]),
        n(&e["shed"]),
        n(&e["send_failed_events"]),
    );
    f.render_widget(
        Paragraph::new(summary).block(
            Block::default()
                .borders(Borders::ALL)
                .title(match trouble {
                    None => format!(" sctp-user top: {addr} (q quits) "),
                    Some(why) => format!(" sctp-user top: {addr}: {why}; retrying, the last figures shown (q quits) "),
                }),
        ),
        head,
    );
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let empty = Vec::new();
    let rows = stats["join"]["associations"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|a| {
            let hex = |v: &Value| v.as_u64().map_or_else(|| "-".into(), |x| format!("{x:#x}"));
            Row::new(vec![
                n(&a["assoc_id"]),
                a["peer_addrs"][0].as_str().unwrap_or("-").to_string(),
                if a["closed"] == true {
                    "closed".into()
                } else {
                    "up".into()
                },
                hex(&a["wire"]["inbound_vtag"]),
                n(&a["socket"]["messages"]["count"]),
                n(&a["wire"]["data_chunks"]["count"]),
                a["delivery_ratio"]
                    .as_f64()
                    .map_or_else(|| "-".into(), |r| format!("{r:.3}")),
                n(&a["wire"]["duplicate_tsns"]),
                a["latency"]["count"].as_u64().filter(|c| *c > 0).map_or_else(
                    || "-".into(),
                    |c| format!("{:.0}", a["latency"]["sum_us"].as_f64().unwrap_or(0.0) / f64::from(u32::try_from(c).unwrap_or(u32::MAX))),
                ),
            ])
        });
    let widths = [5, 22, 6, 11, 9, 9, 6, 5, 9].map(Constraint::Length);
    f.render_widget(
        Table::new(rows, widths)
            .header(
                Row::new([
                    "assoc", "peer", "state", "in vtag", "messages", "DATA", "ratio", "dups", "mean us",
                ])
                .style(bold),
            )
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" associations (socket joined with XDP) "),
            ),
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
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" flows at XDP (busiest; the rest as other) "),
            ),
        flows,
    );
}

/// The live view until `q`.
pub fn run(addr: SocketAddr) -> Result<()> {
    let mut stats = fetch(addr)?; // fail before taking the terminal over
    let mut trouble: Option<String> = None;
    let mut terminal = ratatui::init();
    let result = (|| -> Result<()> {
        loop {
            terminal.draw(|f| draw(f, &stats, addr, trouble.as_deref()))?;
            if event::poll(Duration::from_secs(1))? {
                if let Event::Key(k) = event::read()? {
                    if matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) {
                        return Ok(());
                    }
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
        t.draw(|f| draw(f, &stats, "127.0.0.1:9464".parse().unwrap(), None)).unwrap();
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
}
