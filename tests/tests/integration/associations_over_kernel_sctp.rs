//! The association table of a live `run` against real kernel SCTP, inside the VM: our
//! client's associations with the echo server, both directions counted at the server's
//! end (XDP arriving, TC egress leaving), must equal what `inspect` finds in dumpcap's
//! capture of the same traffic on the client's end of the veth; a multi-homed
//! association's paths, their round trips and a failover; a peer's restart.

use std::time::Duration;

use integration_tests::{
    echo_env::{EchoEnv, SERVER},
    instance::Instance,
    require_kernel_sctp, timeless,
};
use sctp_user::replay::engine::Kind;
use serde_json::{json, Value};

/// The association whose server end is the echo server, and which of its endpoints is
/// the client.
fn with_server(report: &Value) -> Vec<(Value, usize)> {
    report["associations"]
        .as_array()
        .expect("the report lists associations")
        .iter()
        .filter_map(|a| {
            let server = a["endpoints"].as_array()?.iter().position(|e| e["port"] == 36412)?;
            Some((a.clone(), 1 - server))
        })
        .collect()
}

fn path<'a>(a: &'a Value, src: &str, dst: &str) -> &'a Value {
    a["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["src"] == src && p["dst"] == dst)
        .unwrap_or_else(|| panic!("no path {src} -> {dst} in {a:#}"))
}

/// Tests that need root and kernel SCTP: run in the VM on every kernel.
mod vm {
    use super::*;

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn live_associations_equal_inspect_of_the_peers_capture() {
        require_kernel_sctp();
        let env = EchoEnv::start("va", &[]);
        let capture = std::env::temp_dir().join(format!("vm-assoc-{}.pcapng", std::process::id()));
        let dumpcap = Instance::dumpcap(&env.client, "ec0", &capture, Duration::from_secs(3)).unwrap();
        let (ok, c) = env.client(&["--associations", "3", "--streams", "4", "--messages", "30", "--size", "100,600"]);
        assert!(ok, "client: {c}");
        // The last SHUTDOWN-COMPLETE on the wire, and written by dumpcap.
        std::thread::sleep(Duration::from_secs(3));
        dumpcap.stop().unwrap();
        let report = env.stop();
        let replayed = integration_tests::inspect_json(&capture, Kind::Host, &integration_tests::compile_rules(""));
        let _ = std::fs::remove_file(&capture);
        let live: Vec<Value> =
            report["associations"].as_array().expect("the report lists associations").iter().map(timeless).collect();
        let wire: Vec<Value> = replayed["associations"].as_array().unwrap().iter().map(timeless).collect();
        assert_eq!(wire.len(), 3, "inspect finds the client's three: {wire:#?}");
        assert_eq!(live, wire, "the live table against inspect of the peer's capture");
        for a in &live {
            assert_eq!(a["state"], "closed", "{a}");
            for d in a["directions"].as_array().unwrap() {
                assert_eq!(d["data_chunks"], 30, "each side sent 30 messages (echoes): {a}");
            }
        }
        assert_eq!(report["associations_summary"]["summaries_lost"], 0);
        assert!(report["egress"]["packets"]["sctp"].as_u64().unwrap() > 0, "{}", report["egress"]);
    }

    /// A client bound to two addresses talks to the server on two: every path of the
    /// association is seen (on two interfaces, one association); heartbeats measure each
    /// path's round trip, and 50 ms of netem delay on the second shows there only; when the
    /// first link goes down mid-traffic, DATA moves to the second path both ways, the switch
    /// is counted and no message is lost.
    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn a_multi_homed_association_fails_over_and_each_path_has_its_round_trip() {
        require_kernel_sctp();
        let env = EchoEnv::start_with("vm", 2, &[], |env| {
            env.client.quick_sctp_timers().unwrap();
            env.server.quick_sctp_timers().unwrap();
            // The client's replies on the second link wait 50 ms: the server's heartbeats
            // there come back that much later.
            env.client.tc(&["qdisc", "add", "dev", "ec1", "root", "netem", "delay", "50ms"]).unwrap();
        });
        // One message a second: between them both paths idle long enough for heartbeats.
        let client = env.spawn_client(
            SERVER,
            &["--bind", "198.18.0.1:0", "--bind", "198.18.1.1:0", "--messages", "14", "--rate", "1", "--timeout", "60"],
        );
        std::thread::sleep(Duration::from_secs(7));
        env.client.ip(&["link", "set", "ec0", "down"]).unwrap();
        let out = client.wait_with_output().unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert!(out.status.success(), "every echo came back across the failover: {report}");
        assert_eq!(report["echoed"], 14, "{report}");
        std::thread::sleep(Duration::from_secs(1));
        let report = env.stop();
        let all = with_server(&report);
        assert_eq!(all.len(), 1, "one association over both links: {:#}", report["associations"]);
        let (a, c) = &all[0];
        let (c, s) = (*c, 1 - *c);
        for (e, want) in [(c, ["198.18.0.1", "198.18.1.1"]), (s, ["198.18.0.2", "198.18.1.2"])] {
            let addrs = &a["endpoints"][e]["addresses"];
            for w in want {
                assert!(addrs.as_array().unwrap().iter().any(|x| x == w), "endpoint {e} lacks {w}: {a:#}");
            }
        }
        // DATA went on the first link, then on the second, each way, and was counted so.
        for (sender, link) in [(c, ("198.18.1.1", "198.18.1.2")), (s, ("198.18.1.2", "198.18.1.1"))] {
            let d = &a["directions"][sender];
            assert!(d["data_chunks"].as_u64().unwrap() >= 14, "{d}");
            assert!(d["path_switches"].as_u64().unwrap() >= 1, "endpoint {sender} moved its DATA: {d}");
            assert!(d["retransmissions"].as_u64().unwrap() <= 4, "only what the failover took: {d}");
            assert_eq!(d["data_path"], json!({"src": link.0, "dst": link.1}), "{d}");
            assert!(path(a, link.0, link.1)["data_chunks"].as_u64().unwrap() > 0);
        }
        // The server's heartbeats: 50 ms more on the delayed link, the other link unmoved.
        let first = path(a, "198.18.0.2", "198.18.0.1");
        let second = path(a, "198.18.1.2", "198.18.1.1");
        assert_eq!((first["iface"].as_str(), second["iface"].as_str()), (Some("es0"), Some("es1")));
        for p in [first, second] {
            assert!(p["heartbeats"].as_u64().unwrap() > 0 && p["rtt_us"]["count"].as_u64().unwrap() > 0, "{p}");
        }
        // The link that stayed up kept answering (a link taken down at a veth's end sends
        // nothing more: no neighbour answers there, so no heartbeat leaves to go unanswered).
        assert!(second["heartbeats_unanswered"].as_u64().unwrap() <= 1, "{second}");
        let mean = |p: &Value| p["rtt_us"]["mean"].as_f64().unwrap();
        let extra = mean(second) - mean(first);
        eprintln!("round trips (us): first link {}, second link {}", first["rtt_us"], second["rtt_us"]);
        assert!((40_000.0..=60_000.0).contains(&extra), "the delayed link reads {extra} us more, not 50 ms ± 20%");
        assert!(mean(first) < 10_000.0, "the undelayed link moved: {}", first["rtt_us"]);
        let interfaces = &report["associations_summary"]["interfaces"];
        for name in ["es0", "es1"] {
            let i = interfaces
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["iface"] == name)
                .unwrap_or_else(|| panic!("{interfaces}"));
            assert!(i["in"]["packets"].as_u64().unwrap() > 0 && i["out"]["packets"].as_u64().unwrap() > 0, "{i}");
        }
    }

    /// A peer that vanishes without a word (its ABORT lost) and comes back on the same
    /// address and port sends an INIT to an established association: a restart, seen as one
    /// (the old association "restarted", the new one marked, the count in the summary).
    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn a_peer_coming_back_on_the_same_ports_is_a_restart() {
        require_kernel_sctp();
        let env = EchoEnv::start_with("vr", 1, &[], |env| {
            // The client's kernel gives up its old association (unanswered) within a second
            // or two.
            for (key, value) in
                [("rto_min", "100"), ("rto_initial", "200"), ("rto_max", "400"), ("association_max_retrans", "2")]
            {
                env.client.sysctl(&format!("net.sctp.{key}"), value).unwrap();
            }
            // The server retransmits what the vanished client never acknowledged only every
            // 10 s: a retransmission reaching the client before its new INIT would be
            // answered with an ABORT (out of the blue), ending the association instead.
            for (key, value) in [("rto_max", "10000"), ("rto_min", "10000"), ("rto_initial", "10000")] {
                env.server.sysctl(&format!("net.sctp.{key}"), value).unwrap();
            }
        });
        let bind = ["--bind", "198.18.0.1:40000"];
        let mut first = env.spawn_client(SERVER, &[&bind[..], &["--messages", "1000", "--rate", "5"]].concat());
        std::thread::sleep(Duration::from_secs(4));
        // Everything the client sends from now on is lost: its end of the association goes
        // without the server knowing.
        env.client.tc(&["qdisc", "add", "dev", "ec0", "root", "netem", "loss", "100%"]).unwrap();
        first.kill().unwrap();
        let _ = first.wait();
        std::thread::sleep(Duration::from_secs(3));
        env.client.tc(&["qdisc", "del", "dev", "ec0", "root"]).unwrap();
        let (ok, c) = env.client(&[&bind[..], &["--messages", "5"]].concat());
        assert!(ok, "the client came back: {c}");
        std::thread::sleep(Duration::from_secs(1));
        let report = env.stop();
        let all = with_server(&report);
        let states: Vec<_> = all.iter().map(|(a, _)| (a["state"].clone(), a["restart"].clone())).collect();
        assert_eq!(
            states,
            [(json!("restarted"), json!(false)), (json!("closed"), json!(true))],
            "the old association, then its restart: {:#}",
            report["associations"]
        );
        assert_eq!(report["associations_summary"]["restarts"], 1);
        assert_eq!(report["associations_summary"]["by_state"]["restarted"], 1);
    }
}
