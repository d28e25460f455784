//! Associations of a live run against `inspect` of what crossed the wire: crafted
//! conversations are sent across a veth, the client's packets from the client's end (XDP
//! sees them arrive), the server's from the end `sctp-user run` watches (its TC egress
//! program sees them leave), while dumpcap captures both on the client's end; `/stats`
//! must list the associations `inspect` finds in that capture, with the same endpoints, tags, states, packets and bytes each way, DATA
//! chunks, retransmissions, heartbeats, paths and number of round trips. Only times and
//! round-trip values differ (the kernel's clock against the capture's). No kernel SCTP
//! needed.

use std::time::Duration;

use integration_tests::{
    echo_env::EchoEnv,
    instance::Instance,
    pin_to_cpu,
    raw::{mac_of, send_frames},
    require_root, timeless,
};
use sctp_common::{
    builder::{Chunk, Ip, SctpPacket, V4, V6},
    proto::chunk::ty,
};
use sctp_user::replay::engine::Kind;
use serde_json::Value;

/// A packet of one conversation: from the client (port 5000) or back from the server;
/// with whether it goes back.
fn packet(ip: Ip, back: bool, vtag: u32, chunks: Vec<Chunk>) -> (bool, Vec<u8>) {
    let ip = match (ip, back) {
        (Ip::V4 { src, dst }, true) => Ip::V4 { src: dst, dst: src },
        (Ip::V6 { src, dst }, true) => Ip::V6 { src: dst, dst: src },
        (ip, false) => ip,
    };
    let mut p = SctpPacket::new(ip, vtag, chunks);
    (p.src_port, p.dst_port) = if back { (36412, 5000) } else { (5000, 36412) };
    (back, p.frame())
}

/// A handshake, DATA with a retransmission, SACKs and a heartbeat; then `end` (ABORT or
/// SHUTDOWN...) or nothing.
fn conversation(ip: Ip, client_tag: u32, server_tag: u32, end: bool) -> Vec<(bool, Vec<u8>)> {
    let (c, s) = (client_tag, server_tag);
    let heartbeat = vec![0, 1, 0, 8, 1, 2, 3, 4];
    let mut frames = vec![
        packet(ip, false, 0, vec![Chunk::init(ty::INIT, c, 65_536, 4, 4, 100)]),
        packet(ip, true, c, vec![Chunk::init(ty::INIT_ACK, s, 65_536, 4, 4, 900)]),
        packet(ip, false, s, vec![Chunk::new(ty::COOKIE_ECHO, 0, vec![7; 32])]),
        packet(ip, true, c, vec![Chunk::new(ty::COOKIE_ACK, 0, vec![])]),
        packet(ip, false, s, vec![Chunk::data(96, 0, 0, 18, 100), Chunk::data(97, 1, 0, 60, 40)]),
        packet(ip, true, c, vec![Chunk::sack(97, 65_000, 0, 0)]),
        packet(ip, false, s, vec![Chunk::data(98, 0, 1, 18, 100)]),
        packet(ip, false, s, vec![Chunk::data(98, 0, 1, 18, 100)]),
        packet(ip, true, c, vec![Chunk::sack(98, 65_000, 0, 1)]),
        packet(ip, true, c, vec![Chunk::new(ty::HEARTBEAT, 0, heartbeat.clone())]),
        packet(ip, false, s, vec![Chunk::new(ty::HEARTBEAT_ACK, 0, heartbeat)]),
        packet(ip, true, c, vec![Chunk::data(896, 0, 0, 18, 500)]),
        packet(ip, false, s, vec![Chunk::sack(896, 60_000, 0, 0)]),
    ];
    if end {
        frames.push(packet(ip, false, s, vec![Chunk::new(ty::SHUTDOWN, 0, 896u32.to_be_bytes().to_vec())]));
        frames.push(packet(ip, true, c, vec![Chunk::new(ty::SHUTDOWN_ACK, 0, vec![])]));
        frames.push(packet(ip, false, s, vec![Chunk::new(ty::SHUTDOWN_COMPLETE, 0, vec![])]));
    }
    frames
}

/// Sends a conversation's packets a millisecond apart, each from its end.
fn send_one_by_one(env: &EchoEnv, frames: &[(bool, Vec<u8>)]) {
    for (back, f) in frames {
        let (ns, ifname) = if *back { (&env.server, "es0") } else { (&env.client, "ec0") };
        send_frames(ns, ifname, std::slice::from_ref(f));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The association of the attack tests' real conversation (client tag 0xc1) in `/stats`,
/// without its times.
fn real(stats: &Value) -> Value {
    let all = stats["associations"].as_array().expect("/stats has associations");
    let a = all.iter().find(|a| a["endpoints"][0]["vtag"] == 0xc1).unwrap_or_else(|| panic!("the real one: {all:#?}"));
    timeless(a)
}

/// Tests that need root on this host (BPF, namespaces), not kernel SCTP.
mod root {
    use super::*;

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn live_associations_equal_inspects_of_the_same_wire() {
        require_root();
        let env = EchoEnv::start("al", &["--no-echo"]);
        let capture = std::env::temp_dir().join(format!("assoc-live-{}.pcapng", std::process::id()));
        let dumpcap = Instance::dumpcap(&env.client, "ec0", &capture, Duration::from_millis(1500)).unwrap();
        let mut frames = conversation(V4, 0xc1, 0x51, true);
        frames.extend(conversation(V6, 0xc2, 0x52, false));
        // A third association met mid-way: DATA and its SACK only.
        let mut midway = V4;
        if let Ip::V4 { src, .. } = &mut midway {
            src[3] = 9;
        }
        frames.push(packet(midway, false, 0x53, vec![Chunk::data(64, 0, 0, 46, 20)]));
        frames.push(packet(midway, true, 0xc3, vec![Chunk::sack(64, 1000, 0, 0)]));
        for (back, f) in &frames {
            // One at a time, a little apart: round trips above the clock's resolution.
            let (ns, ifname) = if *back { (&env.server, "es0") } else { (&env.client, "ec0") };
            send_frames(ns, ifname, std::slice::from_ref(f));
            std::thread::sleep(Duration::from_millis(2));
        }
        // Time for dumpcap to write, and for the exporter to publish (once a second).
        std::thread::sleep(Duration::from_millis(1500));
        dumpcap.stop().unwrap();
        let stats: Value = serde_json::from_str(&env.http_get("/stats")).unwrap();
        let replayed = integration_tests::inspect_json(&capture, Kind::Host, &integration_tests::compile_rules(""));
        let _ = std::fs::remove_file(&capture);
        assert_eq!(replayed["packets"]["sctp"], frames.len(), "every frame sent is in the capture");
        let live: Vec<Value> = stats["associations"]
            .as_array()
            .expect("/stats has associations")
            .iter()
            .map(integration_tests::timeless)
            .collect();
        let wire: Vec<Value> =
            replayed["associations"].as_array().unwrap().iter().map(integration_tests::timeless).collect();
        assert_eq!(wire.len(), 3, "inspect finds the three: {wire:#?}");
        assert_eq!(live, wire, "/stats against inspect of the capture");
        // Their application messages too (S1AP and NGAP; TSN 98 sent twice counts once).
        let s1ap = live.iter().flat_map(|a| a["messages"].as_array().unwrap()).filter(|m| m["protocol"] == "S1AP");
        assert_eq!(s1ap.map(|m| m["count"].as_u64().unwrap()).sum::<u64>(), 6, "{live:#?}");
        let state_names: Vec<&str> = live.iter().map(|a| a["state"].as_str().unwrap()).collect();
        assert!(state_names.contains(&"closed") && state_names.contains(&"established"), "{state_names:?}");
        let summary = &stats["associations_summary"];
        // Both directions' control packets and round-trip samples go up; DATA between samples
        // (TSN 98, sent twice) and its SACK are counted in the kernel only, in both
        // conversations.
        assert_eq!(summary["summaries"], frames.len() - 6, "{summary}");
        assert_eq!(summary["summaries_lost"], 0, "{summary}");
        // The round trips the live table measured are real ones: above zero, below a second.
        for a in stats["associations"].as_array().unwrap() {
            if a["rtt_us"]["count"].as_u64().unwrap() > 0 {
                let mean = a["rtt_us"]["mean"].as_u64().unwrap();
                assert!(mean > 0 && mean < 1_000_000, "{}", a["rtt_us"]);
            }
        }
        // The egress program counts what left with the same parser.
        let back = frames.iter().filter(|(b, _)| *b).count();
        assert_eq!(stats["egress"]["packets"]["sctp"], back, "{}", stats["egress"]);
        let metrics = env.http_get("/metrics");
        assert!(metrics.contains("sctp_associations{state=\"closed\"} 1"), "{metrics}");
        let report = env.stop();
        assert_eq!(report["associations"].as_array().map(Vec::len), Some(3), "the final report lists them");
    }

    /// An association met mid-way is paired by the live table and written back to the kernel
    /// (`MIDWAY`): from then on its DATA and heartbeats are timed, as a handshake's are.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn an_association_met_mid_way_is_paired_and_timed() {
        require_root();
        let env = EchoEnv::start("am", &["--no-echo"]);
        let (c, s) = (0xc4, 0x54);
        let heartbeat = vec![0, 1, 0, 8, 1, 2, 3, 4];
        send_one_by_one(
            &env,
            &[
                packet(V4, false, s, vec![Chunk::data(10, 0, 0, 46, 20)]),
                packet(V4, true, c, vec![Chunk::sack(10, 1000, 0, 0)]),
            ],
        );
        // The exporter pairs it at its next tick (once a second).
        std::thread::sleep(Duration::from_millis(1500));
        send_one_by_one(
            &env,
            &[
                packet(V4, false, s, vec![Chunk::data(11, 0, 1, 46, 20)]),
                packet(V4, true, c, vec![Chunk::sack(11, 1000, 0, 0)]),
                packet(V4, true, c, vec![Chunk::new(ty::HEARTBEAT, 0, heartbeat.clone())]),
                packet(V4, false, s, vec![Chunk::new(ty::HEARTBEAT_ACK, 0, heartbeat)]),
            ],
        );
        std::thread::sleep(Duration::from_millis(1500));
        let stats: Value = serde_json::from_str(&env.http_get("/stats")).unwrap();
        let all = stats["associations"].as_array().expect("/stats has associations");
        assert_eq!(all.len(), 1, "{all:#?}");
        let a = &all[0];
        let tags: Vec<u64> = a["endpoints"].as_array().unwrap().iter().map(|e| e["vtag"].as_u64().unwrap()).collect();
        assert_eq!(tags, [u64::from(c), u64::from(s)], "{a:#}");
        assert_eq!(a["rtt_us"]["count"], 1, "TSN 11, sent after the pairing: {a:#}");
        let timed: Vec<u64> =
            a["paths"].as_array().unwrap().iter().map(|p| p["rtt_us"]["count"].as_u64().unwrap()).collect();
        assert_eq!(timed.iter().sum::<u64>(), 1, "the server's heartbeat: {a:#}");
        env.stop();
    }

    /// A blind attacker (addresses and ports known, tags not) against a live run: a spoofed
    /// INIT on an established association, DATA and HEARTBEATs with a tag of their own from
    /// the client's address and from others, COOKIE-ECHOs with random tags. The real
    /// association, as `/stats` shows it, is unchanged: state, packets, paths, round trips;
    /// no restart; the spoofed ones are tracked apart, provisional, within their bounds.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn blind_spoofing_changes_nothing_about_a_real_association() {
        require_root();
        let env = EchoEnv::start("as", &["--no-echo", "--top-flows", "5"]);
        let send = |frames: &[(bool, Vec<u8>)]| send_one_by_one(&env, frames);
        send(&conversation(V4, 0xc1, 0x51, false));
        std::thread::sleep(Duration::from_millis(1500));
        let before = real(&serde_json::from_str(&env.http_get("/stats")).unwrap());

        let mut attack = vec![packet(V4, false, 0, vec![Chunk::init(ty::INIT, 0xbad, 65_536, 4, 4, 1)])];
        for i in 0..300u32 {
            let mut from = V4;
            if let Ip::V4 { src, .. } = &mut from {
                src[3] = if i % 2 == 0 { src[3] } else { 100 + u8::try_from(i % 100).unwrap() };
            }
            attack.push(packet(from, false, 0x7777, vec![Chunk::data(i, 0, 0, 18, 10)]));
            attack.push(packet(V4, true, 0x8888, vec![Chunk::new(ty::HEARTBEAT, 0, vec![0, 1, 0, 8, 1, 2, 3, 4])]));
        }
        for tag in 0..200u32 {
            attack.push(packet(V4, false, 0x10_0000 + tag, vec![Chunk::new(ty::COOKIE_ECHO, 0, vec![7; 32])]));
        }
        send(&attack);
        std::thread::sleep(Duration::from_millis(1500));
        let stats: Value = serde_json::from_str(&env.http_get("/stats")).unwrap();
        assert_eq!(real(&stats), before, "the real association after the attack");
        let summary = &stats["associations_summary"];
        assert_eq!(summary["restarts"], 0, "{summary}");
        // The spoofed packets pair among themselves, as a passive observer must take them:
        // the DATA's tag answers the spoofed INIT (a handshake, never complete: a pending
        // restart), the first COOKIE-ECHO answers the HEARTBEATs (established, both tags seen);
        // the other 199 COOKIE-ECHOs stay provisional.
        let by_state = &summary["by_state"];
        assert_eq!(
            (&by_state["established"], &by_state["handshake"], &by_state["provisional"]),
            (&Value::from(2), &Value::from(1), &Value::from(199)),
            "{summary}"
        );
        assert_eq!(summary["summaries_lost"], 0, "{summary}");
        let spoofed =
            stats["associations"].as_array().unwrap().iter().find(|a| a["endpoints"][1]["vtag"] == 0x7777).unwrap();
        assert!(
            spoofed["paths"].as_array().unwrap().len() <= 16 && spoofed["beyond_bounds"].as_u64().unwrap() > 0,
            "{spoofed}"
        );
        env.stop();
    }

    /// A flood of COOKIE-ECHOs with made-up tags from every CPU, each three times what the flow map holds: the
    /// kernel makes their flows at a bounded rate (`--provisional-flow-rate`, a burst of a
    /// quarter of the map), so the real association, whose handshake it saw complete, keeps
    /// its entries and its counts; the flows refused count as `flow_unavailable`.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn a_flood_of_made_up_tags_evicts_no_real_association() {
        require_root();
        let env = EchoEnv::start("af", &["--no-echo", "--flow-capacity", "1024"]);
        let send = |frames: &[(bool, Vec<u8>)]| send_one_by_one(&env, frames);
        send(&conversation(V4, 0xc1, 0x51, false));
        std::thread::sleep(Duration::from_millis(1500));
        let before = real(&serde_json::from_str(&env.http_get("/stats")).unwrap());

        // From every CPU in turn: each has an LRU list of its own, and XDP runs on the CPU
        // that sent into the veth.
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        for cpu in 0..cpus {
            pin_to_cpu(cpu);
            let base = 0x20_0000 + 0x1_0000 * u32::try_from(cpu).unwrap();
            let flood: Vec<Vec<u8>> = (0..3_000u32)
                .map(|tag| packet(V4, false, base + tag, vec![Chunk::new(ty::COOKIE_ECHO, 0, vec![7; 32])]).1)
                .collect();
            send_frames(&env.client, "ec0", &flood);
        }
        // A packet each way after the flood: an evicted flow would start again from one.
        send(&[
            packet(V4, false, 0x51, vec![Chunk::data(200, 0, 9, 18, 10)]),
            packet(V4, true, 0xc1, vec![Chunk::sack(200, 65_536, 0, 0)]),
        ]);
        std::thread::sleep(Duration::from_millis(1500));
        let stats: Value = serde_json::from_str(&env.http_get("/stats")).unwrap();
        let after = real(&stats);
        assert_eq!(after["packets"].as_u64(), before["packets"].as_u64().map(|p| p + 2), "{before}\n{after}");
        for d in 0..2 {
            let count = |a: &Value| a["directions"][d]["packets"].as_u64();
            assert_eq!(count(&after), count(&before).map(|p| p + 1), "direction {d}: {before}\n{after}");
        }
        let unavailable = stats["xdp"]["packets"]["flow_unavailable"].as_u64().expect("flow_unavailable");
        assert!(unavailable >= 3_000 * cpus as u64 - 1_024, "flows refused: {unavailable}");
        env.stop();
    }

    /// A DATA flood at the sender's top speed (sendmmsg, `sctp-user flood`) on 64 established
    /// associations, 4 DATA chunks a packet: the association table holds exactly the packets
    /// XDP counted and the flood sent, every DATA chunk, and no retransmission (the TSNs
    /// grow). Not a timed test: what it asserts holds at any rate.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn a_data_flood_is_counted_exactly() {
        const ASSOCIATIONS: u64 = 64;
        const DATA_PACKETS: u64 = 64 * 4_000;
        require_root();
        let env = EchoEnv::start("ad", &["--no-echo", "--top-flows", "64"]);
        let mac = mac_of(&env.server, "es0").map(|b| format!("{b:02x}")).join(":");
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &env.client.name])
            .arg(integration_tests::sctp_user_bin())
            .args(["flood", "--iface", "ec0", "--dst-mac", &mac, "--from", "198.18.0.100", "--data-chunks", "4"])
            .args(["--sources", &ASSOCIATIONS.to_string(), "--count", &DATA_PACKETS.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "flood: {}", String::from_utf8_lossy(&out.stderr));
        let sent = ASSOCIATIONS * 4 + DATA_PACKETS;

        // The table is read from the kernel once a second: wait until it holds them all.
        let flooded = |stats: &Value| -> Vec<Value> {
            let all = stats["associations"].as_array().expect("/stats has associations");
            all.iter().filter(|a| a["endpoints"][0]["vtag"].as_u64().is_some_and(|t| t >> 28 == 2)).cloned().collect()
        };
        let sum = |assocs: &[Value], f: &dyn Fn(&Value) -> u64| assocs.iter().map(f).sum::<u64>();
        let packets = |a: &Value| a["packets"].as_u64().unwrap();
        let mut stats = Value::Null;
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(500));
            stats = serde_json::from_str(&env.http_get("/stats")).unwrap();
            if sum(&flooded(&stats), &packets) == sent {
                break;
            }
        }
        let assocs = flooded(&stats);
        assert_eq!(assocs.len() as u64, ASSOCIATIONS, "{:#?}", stats["associations_summary"]);
        assert_eq!(stats["xdp"]["packets"]["sctp"], sent, "XDP counted every packet sent");
        assert_eq!(sum(&assocs, &packets), sent, "the association table holds what XDP counted");
        let each_way = |field: &'static str| {
            move |a: &Value| (0..2).map(|d| a["directions"][d][field].as_u64().unwrap()).sum::<u64>()
        };
        assert_eq!(sum(&assocs, &each_way("data_chunks")), DATA_PACKETS * 4);
        assert_eq!(sum(&assocs, &each_way("retransmissions")), 0);
        for a in &assocs {
            assert_eq!(a["state"], "established", "{a}");
            assert_eq!(packets(a), 4 + DATA_PACKETS / ASSOCIATIONS, "{a}");
        }
        assert_eq!(stats["associations_summary"]["summaries_lost"], 0, "{}", stats["associations_summary"]);
        env.stop();
    }
}
