//! `inspect --html`: the report of a capture of our own, rendered by headless Chromium
//! (Debian's `chromium`): the page parses with every chart in it, each chart holds the
//! points of the capture, and the screenshot shows them (`KEEP_REPORT=1` keeps the page
//! and the screenshot in the temporary directory for a look).

use std::process::Command;

use integration_tests::{sctp_user_bin, TempCapture};
use sctp_common::builder::{Chunk, Ip, SctpPacket, V4};

const MS: u64 = 1_000_000;
/// 2026-01-01.
const T0: u64 = 1_767_225_600 * 1_000_000_000;
/// DATA chunks the client sends, each acknowledged by the server 20 ms later.
const ROUNDS: u32 = 60;

/// An association: handshake, then DATA from the client every 50 ms, each acknowledged by
/// a SACK from the server 20 ms later, and DATA from the server every fourth round.
fn association() -> Vec<(u64, Vec<u8>)> {
    let back = Ip::V4 { src: [198, 18, 0, 2], dst: [198, 18, 0, 1] };
    let to_server = |vtag, chunks| {
        let mut p = SctpPacket::new(V4, vtag, chunks);
        (p.src_port, p.dst_port) = (5000, 36412);
        p.frame()
    };
    let to_client = |vtag, chunks| {
        let mut p = SctpPacket::new(back, vtag, chunks);
        (p.src_port, p.dst_port) = (36412, 5000);
        p.frame()
    };
    let mut frames = vec![
        (T0, to_server(0, vec![Chunk::init(1, 0xc1, 65_536, 4, 4, 100)])),
        (T0 + MS, to_client(0xc1, vec![Chunk::init(2, 0x51, 65_536, 4, 4, 900)])),
    ];
    for i in 0..ROUNDS {
        let t = T0 + 10 * MS + u64::from(i) * 50 * MS;
        frames.push((t, to_server(0x51, vec![Chunk::data(100 + i, 0, 0, 18, 200)])));
        let mut reply = vec![Chunk::sack(100 + i, 65_536, 0, 0)];
        if i % 4 == 0 {
            reply.push(Chunk::data(900 + i / 4, 0, 0, 18, 100));
        }
        frames.push((t + 20 * MS, to_client(0xc1, reply)));
    }
    frames
}

/// Pixels within a small distance of this colour (lines are anti-aliased) in a PNG.
fn pixels_of(png_bytes: &[u8], rgb: [u8; 3]) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    let near = |p: &[u8]| p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 40);
    let n = buf[..info.buffer_size()].chunks(step).filter(|p| near(&p[..3])).count();
    (info.width, info.height, n)
}

/// Tests anyone can run: no privileges.
mod host {
    use super::*;

    #[test]
    fn the_report_renders_in_chromium_with_every_chart_and_its_points() {
        let cap = TempCapture::new("html-report", &association());
        let html = cap.0.with_extension("html");
        let out = Command::new(sctp_user_bin())
            .args(["inspect", "--format", "json", "--pcap", cap.0.to_str().unwrap(), "--html", html.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let page = std::fs::read_to_string(&html).unwrap();
        // Each DATA chunk is a point of its direction's TSN graph (one more: the legend's).
        let figure = |id: &str| {
            let start = page.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("chart {id} missing"));
            let end = start + page[start..].find("</figure>").unwrap();
            &page[start..end]
        };
        assert_eq!(figure("tsn-0-0").matches("<circle").count(), ROUNDS as usize + 1);
        assert_eq!(figure("tsn-0-1").matches("<circle").count(), ROUNDS.div_ceil(4) as usize + 1);
        // A round trip per SACK, each 20 ms.
        assert!(figure("rtt-0").matches("<line").count() >= 2 * ROUNDS as usize, "crosses of the RTT chart");
        assert!(figure("rtt-0").contains("\n20.0\n</text>"), "the axis reaches the 20 ms round trips");

        let shot = html.with_extension("png");
        let chromium = |extra: &[&str]| {
            Command::new("chromium")
                .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1600"])
                .args(extra)
                .arg(format!("file://{}", html.display()))
                .output()
                .unwrap_or_else(|e| panic!("chromium: {e} (cargo xtask setup installs it)"))
        };
        let dom = chromium(&["--dump-dom"]);
        assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
        let dom = String::from_utf8_lossy(&dom.stdout);
        for id in ["chunk-mix", "tsn-0-0", "tsn-0-1", "rtt-0", "throughput-0", "ladder-0"] {
            assert!(dom.contains(&format!("id=\"{id}\"")), "{id} in the rendered page");
        }
        assert_eq!(dom.matches("<svg").count(), 6, "the chunk mix, four charts and the message ladder");
        // The ladder: an arrow per message the JSON counts (S1AP: PPID 18), up to the 60 it
        // draws.
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let messages: u64 = doc["messages"].as_array().unwrap().iter().map(|m| m["count"].as_u64().unwrap()).sum();
        assert!(messages > 0, "{doc}");
        let rungs = figure("ladder-0").matches("<g class=\"rung").count();
        assert_eq!(rungs as u64, messages.min(60), "{}", figure("ladder-0"));
        let out = chromium(&[&format!("--screenshot={}", shot.display())]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let png = std::fs::read(&shot).unwrap();
        let (w, h, blue) = pixels_of(&png, [31, 119, 180]);
        let (_, _, red) = pixels_of(&png, [214, 39, 40]);
        assert_eq!((w, h), (1280, 1600));
        assert!(blue > 2000, "the bars and DATA points in blue: {blue} pixels");
        assert!(red > 200, "the SACK lines in red: {red} pixels");
        eprintln!("screenshot {w}x{h}: {blue} blue and {red} red pixels");
        if std::env::var_os("KEEP_REPORT").is_none() {
            for f in [&html, &shot] {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}
