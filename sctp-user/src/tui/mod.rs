//! `sctp-user top`: a live terminal table of a running instance, read from its `/stats`
//! once a second. Three views, `v` goes to the next: the associations on the wire (both
//! directions, state, active path, round trip; the selected one's paths below, `↑`/`↓`
//! select), the echo server's associations joined with XDP's flows, and the application
//! messages (all of them, then per association its procedures and failures). `q` or Esc
//! quits.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use crate::{
    doc::{AssociationDoc, EndpointDoc, MessageDoc},
    export::stats::Stats,
};
use anyhow::{Context as _, Result};
use crossterm::event::{self, Event, KeyCode};
use ratatui::{
    layout::{Constraint, Layout},
    style::{Modifier, Style},
    widgets::{Block, Borders, Paragraph, Row, Table},
    Frame,
};

/// GET /stats from a running `sctp-user run --metrics ADDR`.
pub(crate) fn fetch(addr: SocketAddr) -> Result<Stats> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("no sctp-user run answering on {addr} (start one with --metrics {addr})"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).context("malformed HTTP response")?;
    serde_json::from_str(body).context("/stats did not return what this sctp-user reads (another version?)")
}

/// A count, or `-` where there is none.
fn n(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |x| x.to_string())
}

/// Which view `top` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// The associations on the wire, with the paths of the `selected` one.
    Wire { selected: usize },
    /// The echo server's associations joined with XDP's, and the flows.
    Join,
    /// The application messages, and each association's.
    Messages,
}

/// Draws one screen from a `/stats` document.
pub(crate) fn draw(f: &mut Frame, stats: &Stats, addr: SocketAddr, trouble: Option<&str>, view: View) {
    let [head, body] = Layout::vertical([Constraint::Length(5), Constraint::Fill(1)]).areas(f.area());
    draw_head(f, head, stats, addr, trouble);
    match view {
        View::Wire { selected } => draw_wire(f, body, stats, selected),
        View::Join => draw_join(f, body, stats),
        View::Messages => draw_messages(f, body, stats),
    }
}

/// The messages arriving and leaving; below, per association, its messages and failures
/// (AP protocols' unsuccessful outcomes, Diameter answers of a result outside 2xxx).
fn draw_messages(f: &mut Frame, body: ratatui::layout::Rect, stats: &Stats) {
    let [all, per_assoc] = Layout::vertical([Constraint::Percentage(60), Constraint::Fill(1)]).areas(body);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let both = [("in", &stats.messages), ("out", &stats.messages_leaving)];
    let rows = both.iter().flat_map(|(way, list)| {
        list.iter().map(|m| {
            let results = m.results.as_ref().map_or_else(String::new, |r| {
                r.iter().map(|(code, n)| format!("{code}:{n}")).collect::<Vec<_>>().join(" ")
            });
            Row::new(vec![
                (*way).to_string(),
                m.protocol.clone(),
                m.label(),
                m.kind.clone().unwrap_or_default(),
                m.count.to_string(),
                results,
            ])
        })
    });
    let widths = [4, 9, 40, 13, 9, 30].map(Constraint::Length);
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(["way", "protocol", "message", "kind", "count", "results"]).style(bold))
            .block(Block::default().borders(Borders::ALL).title(" application messages since the start ")),
        all,
    );
    let rows = stats.associations.iter().map(|a| {
        let total: u64 = a.messages.iter().map(|m| m.count).sum();
        let failed: u64 = a.messages.iter().map(failures).sum();
        let busiest = a.messages.iter().max_by_key(|m| m.count).map(MessageDoc::label).unwrap_or_default();
        Row::new(vec![
            endpoint(&a.endpoints[0]),
            endpoint(&a.endpoints[1]),
            total.to_string(),
            failed.to_string(),
            busiest,
        ])
    });
    let widths = [28, 28, 9, 7, 40].map(Constraint::Length);
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(["endpoint A", "endpoint B", "messages", "failed", "busiest"]).style(bold))
            .block(Block::default().borders(Borders::ALL).title(" per association ")),
        per_assoc,
    );
}

/// Failures among a message's counts: unsuccessful outcomes, Diameter answers whose
/// result is known and not a success (2xxx).
fn failures(m: &MessageDoc) -> u64 {
    if m.kind.as_deref() == Some("unsuccessful") {
        return m.count;
    }
    let failed = |(code, n): (&String, &u64)| if code == "0" || code.starts_with('2') { 0 } else { *n };
    m.results.as_ref().map_or(0, |r| r.iter().map(failed).sum())
}

fn draw_head(f: &mut Frame, head: ratatui::layout::Rect, stats: &Stats, addr: SocketAddr, trouble: Option<&str>) {
    let p = &stats.xdp.counters.packets;
    let packets = |name: &str| n(p.get(name).copied());
    let e = &stats.echo;
    let a = stats.associations_summary.as_ref();
    let summary = format!(
        "frames {}  sctp {}  chunks DATA {}  malformed {}  drops {}  leaving: sctp {}\n\
         wire: {} associations ({} established), {} restarts, {} packets missed\n\
         echo: {} associations open ({} total), messages in {} out {}, shed {}, send failures {}",
        packets("total"),
        packets("sctp"),
        n(stats.xdp.counters.chunks.get("0").copied()),
        packets("malformed"),
        stats.xdp.counters.verdicts.drop,
        n(stats.egress.counters.packets.get("sctp").copied()),
        n(a.map(|a| a.tracked)),
        n(a.and_then(|a| a.by_state.get("established").copied())),
        n(a.map(|a| a.restarts)),
        n(a.map(|a| a.summaries_lost)),
        n(stats.echo_current.as_ref().map(|c| c.associations_current)),
        e.associations,
        e.messages_in,
        e.messages_out,
        e.shed,
        e.send_failed_events,
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
fn endpoint(e: &EndpointDoc) -> String {
    format!("{}:{}", e.addresses.first().map_or("?", String::as_str), e.port)
}

/// Microseconds as milliseconds.
fn ms(us: Option<u64>) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a figure for people")]
    us.map_or_else(|| "-".into(), |v| format!("{:.2}", v as f64 / 1e3))
}

/// The associations on the wire, and the selected one's paths.
fn draw_wire(f: &mut Frame, body: ratatui::layout::Rect, stats: &Stats, selected: usize) {
    let [list, detail] = Layout::vertical([Constraint::Percentage(60), Constraint::Fill(1)]).areas(body);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let all = &stats.associations;
    let selected = selected.min(all.len().saturating_sub(1));
    let rows = all.iter().enumerate().map(|(i, a): (usize, &AssociationDoc)| {
        let [d0, d1] = &a.directions;
        let path = |d: &crate::doc::DirectionDoc| d.data_path.as_ref().map_or_else(|| "-".into(), |p| p.dst.clone());
        let row = Row::new(vec![
            format!("{} <-> {}", endpoint(&a.endpoints[0]), endpoint(&a.endpoints[1])),
            a.state.clone(),
            d0.packets.to_string(),
            d1.packets.to_string(),
            format!("{} / {}", path(d0), path(d1)),
            (d0.path_switches + d1.path_switches).to_string(),
            ms(a.rtt_us.mean),
            (d0.retransmissions + d1.retransmissions).to_string(),
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
    let paths = all.get(selected).map_or(&[][..], |a| &a.paths[..]);
    let rows = paths.iter().map(|p| {
        Row::new(vec![
            format!("{} -> {}", p.src, p.dst),
            p.iface.clone().unwrap_or_else(|| "-".into()),
            p.packets.to_string(),
            p.data_chunks.to_string(),
            p.heartbeats.to_string(),
            p.heartbeat_acks.to_string(),
            p.heartbeats_unanswered.to_string(),
            ms(p.rtt_us.mean),
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
fn draw_join(f: &mut Frame, body: ratatui::layout::Rect, stats: &Stats) {
    let [assocs, flows] = Layout::vertical([Constraint::Percentage(55), Constraint::Fill(1)]).areas(body);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let joined = stats.join.as_ref().map_or(&[][..], |j| &j.associations[..]);
    let rows = joined.iter().map(|a| {
        let hex = |v: Option<u32>| v.map_or_else(|| "-".into(), |x| format!("{x:#x}"));
        Row::new(vec![
            a.assoc_id.to_string(),
            a.peer_addrs.first().map_or_else(|| "-".into(), ToString::to_string),
            if a.closed { "closed".into() } else { "up".into() },
            hex(a.wire.inbound_vtag),
            a.socket.messages.count.to_string(),
            a.wire.data_chunks.count.to_string(),
            a.delivery_ratio.map_or_else(|| "-".into(), |r| format!("{r:.3}")),
            a.wire.duplicate_tsns.to_string(),
            a.latency.mean_us().map_or_else(|| "-".into(), |m| format!("{m:.0}")),
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
    let rows = stats.flows.iter().map(|s| {
        let t = &s.totals;
        Row::new(vec![
            s.flow.clone(),
            s.vtag.clone(),
            t.packets.to_string(),
            t.bytes.to_string(),
            t.data_chunks.to_string(),
            t.retransmissions.to_string(),
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
                        (KeyCode::Char('v'), View::Join) => View::Messages,
                        (KeyCode::Char('v'), View::Messages) => View::Wire { selected: 0 },
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
    use crate::{
        doc::{AddressPairDoc, DirectionDoc, HandshakeDoc, PathDoc, RoundTripsDoc, SnapshotDoc, TableSummaryDoc},
        echo::EchoStats,
        export::{flow_account::FlowSeries, stats::Stats},
        join::{AssocReport, Histogram, JoinReport, SocketSide, Tally, WireSide},
    };

    fn screen(stats: &Stats, view: View, width: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(width, 24)).unwrap();
        t.draw(|f| draw(f, stats, "127.0.0.1:9464".parse().unwrap(), None, view)).unwrap();
        t.backend().buffer().content().iter().map(ratatui::buffer::Cell::symbol).collect()
    }

    fn counted(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()
    }

    /// `/stats` as the exporter writes it and `top` reads it: through JSON, both typed.
    fn through_json(stats: &Stats) -> Stats {
        serde_json::from_str(&serde_json::to_string(stats).unwrap()).unwrap()
    }

    #[test]
    fn the_messages_view_shows_every_message_and_each_associations_failures() {
        let ngap = MessageDoc::ng_setup;
        let answers = MessageDoc {
            protocol: "Diameter".into(),
            command: Some(316),
            kind: Some("answer".into()),
            name: Some("Update-Location".into()),
            count: 5,
            results: Some(counted(&[("2001", 4), ("5001", 1)])),
            ..MessageDoc::default()
        };
        let mut stats = Stats {
            messages: vec![ngap("initiating", 3), ngap("unsuccessful", 1)],
            messages_leaving: vec![answers.clone()],
            ..Stats::default()
        };
        let mut assoc = association();
        assoc.messages = vec![ngap("initiating", 3), ngap("unsuccessful", 1), answers];
        stats.associations.push(assoc);
        let shown = screen(&through_json(&stats), View::Messages, 120);
        for want in ["NGSetup (21)", "unsuccessful", "Update-Location (316)", "2001:4 5001:1", "198.18.0.1"] {
            assert!(shown.contains(want), "{want} missing from:\n{shown}");
        }
        // 9 messages, 2 failed: the unsuccessful outcome and the 5001 answer.
        assert!(shown.contains("36412             9         2 "), "{shown}");
    }

    #[test]
    fn the_screen_shows_associations_and_flows() {
        let mut stats = Stats::default();
        stats.xdp.counters.packets = counted(&[("total", 120), ("sctp", 100), ("malformed", 2)]);
        stats.xdp.counters.chunks = counted(&[("0", 40)]);
        (stats.echo.associations, stats.echo.messages_in, stats.echo.messages_out) = (3, 40, 40);
        stats.echo_current = Some(EchoStats { associations_current: 2, ..EchoStats::default() });
        let mut latency = Histogram::default();
        latency.observe(100.0);
        stats.join = Some(JoinReport {
            local_port: 36412,
            associations: vec![AssocReport {
                assoc_id: 7,
                peer_addrs: vec!["198.18.0.1:5000".parse().unwrap()],
                in_streams: 4,
                out_streams: 4,
                closed: false,
                socket: SocketSide { messages: Tally { count: 40, bytes: 4000 }, ..SocketSide::default() },
                wire: WireSide {
                    inbound_vtag: Some(0xbeef),
                    data_chunks: Tally { count: 40, bytes: 4000 },
                    ..WireSide::default()
                },
                matched_messages: 40,
                unmatched_messages: 0,
                delivery_ratio: Some(1.0),
                latency: latency.clone(),
            }],
            latency,
            data_events_lost: 0,
        });
        stats.flows = vec![FlowSeries {
            flow: "198.18.0.1:5000->198.18.0.2:36412".into(),
            vtag: "0x0000beef".into(),
            totals: crate::export::flow_account::FlowTotals {
                packets: 50,
                bytes: 9000,
                data_chunks: 40,
                ..Default::default()
            },
        }];
        let shown = screen(&through_json(&stats), View::Join, 120);
        for want in [
            "frames 120",
            "2 associations open (3 total)",
            "198.18.0.1:5000",
            "0xbeef",
            "1.000",
            "100",
            "198.18.0.1:5000->198.18.0.2:36412",
            "9000",
        ] {
            assert!(shown.contains(want), "missing {want:?} in the screen");
        }
    }

    /// An established association of two paths, as the wire view shows it.
    fn association() -> AssociationDoc {
        let path = |src: &str, dst: &str, hb: u64| PathDoc {
            src: src.into(),
            dst: dst.into(),
            iface: Some("es1".into()),
            packets: 10,
            bytes: 1000,
            data_chunks: 4,
            heartbeats: hb,
            heartbeat_acks: hb,
            heartbeats_unanswered: 0,
            last_seen_ns: 0,
            rtt_us: RoundTripsDoc { count: hb, min: Some(50_000), mean: Some(50_000), max: Some(50_000) },
        };
        let direction =
            |packets: u64, retransmissions: u64, path_switches: u64, (src, dst): (&str, &str)| DirectionDoc {
                packets,
                bytes: packets * 100,
                data_chunks: 0,
                data_bytes: 0,
                retransmissions,
                sacks: 0,
                gap_blocks: 0,
                dup_tsns: 0,
                heartbeats: 0,
                heartbeat_acks: 0,
                a_rwnd_last: None,
                a_rwnd_min: None,
                zero_windows: 0,
                data_path: Some(AddressPairDoc { src: src.into(), dst: dst.into() }),
                path_switches,
            };
        let endpoint = |port: u16, address: &str| EndpointDoc { port, vtag: 1, addresses: vec![address.into()] };
        AssociationDoc {
            endpoints: [endpoint(5000, "198.18.0.1"), endpoint(36412, "198.18.0.2")],
            state: "established".into(),
            transitions: Vec::new(),
            packets: 100,
            directions: [
                direction(57, 1, 1, ("198.18.1.1", "198.18.1.2")),
                direction(43, 0, 0, ("198.18.0.2", "198.18.0.1")),
            ],
            paths: vec![path("198.18.0.1", "198.18.0.2", 3), path("198.18.1.1", "198.18.1.2", 2)],
            rtt_us: RoundTripsDoc { count: 1, min: Some(1500), mean: Some(1500), max: Some(1500) },
            handshake_rtt_us: HandshakeDoc { init: None, cookie: None },
            restart: false,
            init_collisions: 0,
            beyond_bounds: 0,
            first_ns: 0,
            last_ns: 0,
            messages: vec![],
        }
    }

    #[test]
    fn the_wire_view_shows_both_directions_the_active_path_and_the_paths() {
        let mut stats = Stats {
            xdp: SnapshotDoc::default(),
            associations_summary: Some(TableSummaryDoc {
                tracked: 1,
                by_state: counted(&[("established", 1)]),
                ..TableSummaryDoc::default()
            }),
            associations: vec![association()],
            ..Stats::default()
        };
        stats.xdp.counters.packets = counted(&[("total", 120), ("sctp", 100)]);
        stats.egress.counters.packets = counted(&[("sctp", 60)]);
        let shown = screen(&through_json(&stats), View::Wire { selected: 0 }, 140);
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
            assert!(shown.contains(want), "missing {want:?} in the screen");
        }
    }
}
