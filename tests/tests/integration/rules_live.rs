//! Rules on a live veth: crafted frames sent from one namespace to another, where
//! `sctp-user run` has XDP attached; a frame must reach the other side exactly when no
//! rule drops it. Then `sctp-user rules apply` changes the running instance's rules
//! and `rules show` and the metrics report what each dropped. No kernel SCTP needed.

use std::{collections::BTreeMap, path::Path, process::Command, time::Duration};

use integration_tests::{
    echo_env::EchoEnv,
    instance::Instance,
    parse_samples,
    raw::{send_frames, Capture},
    require_root, sctp_user_bin,
};
use sctp_common::{
    builder::{app, Chunk, Ip, SctpPacket, V4, V6},
    parse::message::ppid,
    proto::chunk::ty,
};
use sctp_user::replay::engine::Kind;
use serde_json::Value;

/// A frame and the drop reason it must get (`None`: it must arrive).
type Case = (Vec<u8>, Option<&'static str>);

fn data(ip: Ip, vtag: u32, ppid: u32, payload: usize) -> SctpPacket {
    SctpPacket::new(ip, vtag, vec![Chunk::data(1, 0, 0, ppid, payload)])
}

/// An NGAP message of this outcome and procedure in a DATA chunk of its own.
fn ngap(tsn: u32, outcome: u8, procedure: u8) -> SctpPacket {
    SctpPacket::new(V4, 1, vec![Chunk::message(tsn, ppid::NGAP, &app::ap(outcome, procedure))])
}

fn frame(mut p: SctpPacket, src_port: u16, dst_port: u16) -> Vec<u8> {
    p.src_port = src_port;
    p.dst_port = dst_port;
    p.frame()
}

/// Sends the cases and checks what arrived and the drops `/stats` reports (deltas).
fn send_and_check(env: &EchoEnv, phase: &str, cases: &[Case]) {
    let before = drops(env);
    let capture = Capture::start(&env.server, "es0");
    let frames: Vec<Vec<u8>> = cases.iter().map(|(f, _)| f.clone()).collect();
    send_frames(&env.client, "ec0", &frames);
    let mut arrived = capture.sctp_frames(Duration::from_millis(700));
    arrived.sort();
    let mut want: Vec<Vec<u8>> = cases.iter().filter(|(_, d)| d.is_none()).map(|(f, _)| f.clone()).collect();
    want.sort();
    assert_eq!(arrived.len(), want.len(), "{phase}: frames that reached the other side");
    assert_eq!(arrived, want, "{phase}: frames that reached the other side");
    // The exporter publishes once a second.
    std::thread::sleep(Duration::from_millis(1500));
    let after = drops(env);
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (_, d) in cases {
        if let Some(reason) = d {
            *expected.entry((*reason).to_string()).or_default() += 1;
        }
    }
    for (reason, n) in &after {
        let delta = n - before.get(reason).copied().unwrap_or(0);
        assert_eq!(delta, expected.get(reason).copied().unwrap_or(0), "{phase}: drops for {reason}");
    }
}

/// `xdp.drops` of the running instance's /stats.
fn drops(env: &EchoEnv) -> BTreeMap<String, u64> {
    let stats: Value = serde_json::from_str(&env.http_get("/stats")).unwrap();
    stats["xdp"]["drops"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect()
}

fn sctp_user(args: &[&str]) -> (bool, String) {
    let out = Command::new(sctp_user_bin()).args(args).output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A bpf filesystem of the test's own, visible inside `ip netns exec` (which remounts
/// /sys), for the instance's pins.
struct Bpffs(std::path::PathBuf);

impl Bpffs {
    fn mount(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&dir).status().unwrap();
        assert!(ok.success(), "mount -t bpf");
        Self(dir)
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Tests anyone can run: no privileges.
mod host {
    use super::*;

    #[test]
    fn rules_commands_explain_a_missing_instance_and_a_bad_file() {
        let (ok, _) = sctp_user(&["rules", "show", "--pin-dir", "/nonexistent/sctp-xdp"]);
        assert!(!ok);
        let out = Command::new(sctp_user_bin())
            .args(["inspect", "--pcap", "/dev/null", "--rules", "/nonexistent.toml"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains("cannot read rules file /nonexistent.toml"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

/// What `rules show --format json` says each active rule dropped.
fn drops_shown(pins_arg: &str) -> BTreeMap<String, u64> {
    let (ok, json) = sctp_user(&["rules", "show", "--pin-dir", pins_arg, "--format", "json"]);
    assert!(ok);
    let shown: Value = serde_json::from_str(&json).unwrap();
    shown["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["rule"].as_str().unwrap().to_string(), r["drops"].as_u64().unwrap()))
        .collect()
}

/// Tests that need root on this host (BPF, namespaces), not kernel SCTP.
mod root {
    use super::*;

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn message_rules_on_a_live_veth() {
        require_root();
        let rules =
            ["--deny-message", "NGAP InitialUEMessage initiating", "--message-rate", "NGAP NGSetup 1/s burst 1"];
        let env = EchoEnv::start("rm", &[&["--no-echo"][..], &rules].concat());
        let p = |pk: SctpPacket| frame(pk, 36412, 38412);
        send_and_check(
            &env,
            "message rules",
            &[
                (p(ngap(20, 0, 15)), Some("message_denied")),
                (p(ngap(21, 1, 15)), None),
                (p(ngap(22, 0, 21)), None),
                (p(ngap(23, 0, 21)), Some("message_rate")),
                (p(data(V4, 1, 60, 20)), None),
            ],
        );
        env.stop();
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn every_rule_on_a_live_veth_then_changed_at_run_time() {
        require_root();
        let bpffs = Bpffs::mount("rules-live");
        let pins = bpffs.0.join("pins");
        let pins_arg = pins.to_str().unwrap();
        let first = std::env::temp_dir().join(format!("rules-live-{}.toml", std::process::id()));
        write(
            &first,
            r#"
        deny-src = ["198.18.9.0/24", "2001:db8::1/128"]
        allow-port = [38412]
        deny-ppid = [46]
        deny-chunk = ["HEARTBEAT"]
        deny-violations = true
        malformed = "drop"
        max-chunks = 4
        max-data-chunk = 200
        init-rate = 1
        "#,
        );
        let env = EchoEnv::start("rl", &["--no-echo", "--rules", first.to_str().unwrap(), "--pin-dir", pins_arg]);
        let from_9 = Ip::V4 { src: [198, 18, 9, 5], dst: [198, 18, 0, 2] };
        let init = |vtag| SctpPacket::new(V4, vtag, vec![Chunk::init(ty::INIT, 0xC1, 1000, 4, 4, 1)]);
        // INITs are rated per source before anything else is judged: the violation cases
        // come from sources of their own.
        let src = |last| Ip::V4 { src: [198, 18, 3, last], dst: [198, 18, 0, 2] };
        let mut bad_len = data(V4, 1, 18, 8);
        bad_len.chunks[0] = Chunk::data(1, 0, 0, 18, 8).with_length(2);
        let p = |pk: SctpPacket| frame(pk, 36412, 38412);
        send_and_check(
            &env,
            "first rules",
            &[
                (p(data(V4, 1, 18, 20)), None),
                (p(data(from_9, 1, 18, 20)), Some("deny_src")),
                (p(data(V6, 1, 18, 20)), Some("deny_src")),
                (frame(data(V4, 1, 18, 20), 36412, 2905), Some("port_not_allowed")),
                (p(data(V4, 1, 46, 20)), Some("deny_ppid")),
                (
                    p(SctpPacket::new(V4, 1, vec![Chunk::new(ty::HEARTBEAT, 0, vec![0, 1, 0, 8, 1, 2, 3, 4])])),
                    Some("deny_chunk"),
                ),
                (
                    p(SctpPacket::new(
                        src(1),
                        0,
                        vec![Chunk::init(ty::INIT, 5, 1000, 4, 4, 1), Chunk::data(1, 0, 0, 18, 4)],
                    )),
                    Some("bundling"),
                ),
                (
                    p(SctpPacket::new(src(2), 5, vec![Chunk::init(ty::INIT, 5, 1000, 4, 4, 1)])),
                    Some("init_nonzero_tag"),
                ),
                (p(data(V4, 0, 18, 20)), Some("data_zero_tag")),
                (p(bad_len), Some("malformed")),
                (
                    p(SctpPacket::new(V4, 1, (0..5).map(|i| Chunk::data(i, 0, 0, 18, 4)).collect())),
                    Some("too_many_chunks"),
                ),
                (p(data(V4, 1, 18, 300)), Some("data_too_large")),
                (p(init(0)), None),
                (p(init(0)), Some("init_rate_source")),
            ],
        );

        // New rules for the running instance: tags validated (no learning window), PPID 18
        // denied. Nothing of the first set is left.
        let second = first.with_extension("second.toml");
        write(&second, "validate-vtag = true\nvtag-learn = 0\ndeny-ppid = [18]\n");
        let (ok, table) = sctp_user(&["rules", "apply", "--pin-dir", pins_arg, "--rules", second.to_str().unwrap()]);
        assert!(ok, "rules apply failed");
        assert!(table.contains("deny-ppid 18") && table.contains("validate-vtag"), "{table}");
        let to_client = |pk| frame(pk, 38412, 36412);
        send_and_check(
            &env,
            "second rules",
            &[
                (p(data(V4, 0x5E, 60, 20)), Some("vtag_unknown")),
                (p(init(0)), None),
                (to_client(SctpPacket::new(V4, 0xC1, vec![Chunk::init(ty::INIT_ACK, 0x5E, 1000, 4, 4, 1)])), None),
                (p(data(V4, 0x5E, 60, 21)), None),
                (p(data(V4, 0x5E, 46, 20)), None),
                (p(data(V4, 0x5E, 18, 20)), Some("deny_ppid")),
                (p(data(V4, 0x5F, 60, 20)), Some("vtag_unknown")),
                (p(data(from_9, 0x5E, 60, 22)), None),
            ],
        );
        let shown = drops_shown(pins_arg);
        assert_eq!(shown.get("deny-ppid 18"), Some(&1), "{shown:?}");
        assert_eq!(shown.get("validate-vtag idle 300s"), Some(&2), "{shown:?}");
        assert_eq!(shown.len(), 2, "{shown:?}");
        // The metrics keep the first rules' drops (counters never go back) next to the new.
        let samples = parse_samples(&env.http_get("/metrics"));
        let metric = |reason: &str, rule: &str| {
            samples.get(&format!("sctp_xdp_drops_total{{reason=\"{reason}\",rule=\"{rule}\"}}")).copied()
        };
        assert_eq!(metric("deny_ppid", "deny-ppid 46"), Some(1.0));
        assert_eq!(metric("deny_ppid", "deny-ppid 18"), Some(1.0));
        assert_eq!(metric("vtag_unknown", "validate-vtag idle 300s"), Some(2.0));
        assert_eq!(metric("init_rate_source", "init-rate 1/s burst 1"), Some(1.0));
        env.stop();
        let _ = std::fs::remove_file(&first);
        let _ = std::fs::remove_file(&second);
    }

    /// What `run` judged live, `inspect` judges the same from a capture of it: INITs from 20
    /// sources flooding among association traffic (some of it denied by rules), captured
    /// with dumpcap on the sender's veth while `run` drops on the receiver's, then replayed
    /// with the same rules. Rules without time must drop exactly the same packets; INIT
    /// rates, judged on the capture's timestamps instead of the kernel's clock, within a few.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn inspect_of_a_captured_live_run_drops_what_run_dropped() {
        require_root();
        let rules_text = r#"
        deny-ppid = [46]
        deny-chunk = ["HEARTBEAT"]
        max-chunks = 4
        malformed = "drop"
        init-rate = 5
        init-burst = 2
        global-init-rate = 60
        global-init-burst = 10
        "#;
        let rules_file = std::env::temp_dir().join(format!("live-vs-inspect-{}.toml", std::process::id()));
        write(&rules_file, rules_text);
        let env = EchoEnv::start("li", &["--no-echo", "--rules", rules_file.to_str().unwrap()]);
        let capture = std::env::temp_dir().join(format!("live-vs-inspect-{}.pcapng", std::process::id()));
        let dumpcap = Instance::dumpcap(&env.client, "ec0", &capture, Duration::from_millis(1500)).unwrap();
        let before = drops(&env);
        let mut rng = integration_tests::Rng(0x11fe_11fe);
        let p = |pk: SctpPacket| frame(pk, 36412, 38412);
        for round in 0..200u32 {
            let mut frames = Vec::new();
            // The flood: three INITs a round from 20 sources.
            for _ in 0..3 {
                let src = Ip::V4 { src: [198, 18, 5, u8::try_from(rng.below(20)).unwrap()], dst: [198, 18, 0, 2] };
                let tag = rng.next_u32() | 1;
                frames.push(frame(
                    SctpPacket::new(src, 0, vec![Chunk::init(ty::INIT, tag, 1000, 4, 4, 1)]),
                    5000,
                    38412,
                ));
            }
            // Association traffic, a tenth of it denied by a rule.
            frames.push(p(data(V4, 7, 18, 100)));
            frames.push(p(data(V6, 8, if round % 10 == 0 { 46 } else { 18 }, 60)));
            if round % 20 == 0 {
                frames.push(p(SctpPacket::new(
                    V4,
                    7,
                    vec![Chunk::new(ty::HEARTBEAT, 0, vec![0, 1, 0, 8, 1, 2, 3, 4])],
                )));
                frames.push(p(SctpPacket::new(V4, 7, (0..5).map(|i| Chunk::data(i, 0, 0, 18, 4)).collect())));
                let mut bad = data(V4, 7, 18, 8);
                bad.chunks[0] = Chunk::data(1, 0, 0, 18, 8).with_length(2);
                frames.push(p(bad));
            }
            send_frames(&env.client, "ec0", &frames);
            std::thread::sleep(Duration::from_millis(10));
        }
        // Time for the last frames to be written, and for the exporter to publish (1 s).
        std::thread::sleep(Duration::from_millis(1500));
        dumpcap.stop().unwrap();
        let live: BTreeMap<String, u64> = drops(&env)
            .into_iter()
            .map(|(reason, n)| (reason.clone(), n - before.get(&reason).copied().unwrap_or(0)))
            .collect();
        let replayed =
            integration_tests::inspect_json(&capture, Kind::Host, &integration_tests::compile_rules(rules_text));
        let _ = std::fs::remove_file(&capture);
        let _ = std::fs::remove_file(&rules_file);
        assert_eq!(replayed["packets"]["sctp"], 200 * 5 + 10 * 3, "every frame sent is in the capture: {replayed}");
        for (reason, n) in &live {
            let ours = replayed["drops"][reason].as_u64().unwrap();
            eprintln!("{reason}: run dropped {n}, inspect {ours}");
            if reason.starts_with("init_rate") {
                assert!(n.abs_diff(ours) <= 5, "{reason}: run dropped {n}, inspect {ours}");
            } else {
                assert_eq!(*n, ours, "{reason}: run and inspect");
            }
        }
        for reason in
            ["deny_ppid", "deny_chunk", "too_many_chunks", "malformed", "init_rate_source", "init_rate_global"]
        {
            assert!(live[reason] > 0, "{reason}: the scenario exercises it: {live:?}");
        }
    }
}
