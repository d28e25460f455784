//! Observability in the VM: a live scrape checked by Debian's promtool and against the
//! traffic sent, every dashboard expression naming a metric that exists, counters that
//! carry on across a restart of the controller, and a real Prometheus server scraping the
//! exporter and answering a `PromQL` query.

use std::{collections::BTreeSet, io::Write as _, process::Command, time::Duration};

use integration_tests::{
    echo_env::{EchoEnv, SERVER},
    parse_samples, require_kernel_sctp,
};

/// A bpffs of the test's own, mounted outside the namespaces (where `ip netns exec`, which
/// remounts /sys, still sees it), so the controller can pin and find its maps again.
struct BpfFs(std::path::PathBuf);

impl BpfFs {
    fn mount(name: &str) -> Self {
        let dir = std::path::PathBuf::from(format!("/run/sctp-xdp-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount").args(["-t", "bpf", "bpf"]).arg(&dir).status().unwrap().success();
        assert!(ok, "mount bpffs at {}", dir.display());
        Self(dir)
    }

    fn pin_dir(&self) -> String {
        self.0.join("es0").display().to_string()
    }
}

impl Drop for BpfFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn sample(s: &std::collections::BTreeMap<String, f64>, series: &str) -> f64 {
    *s.get(series).unwrap_or_else(|| panic!("no series {series} in the scrape"))
}

fn promtool_accepts(text: &str) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package, cargo xtask setup)");
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Metric names used by the dashboard's expressions.
fn dashboard_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_, expr) in dashboard_queries() {
        let mut rest = expr.as_str();
        while let Some(i) = rest.find("sctp_") {
            let tail = &rest[i..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

/// Every query of the dashboard, with its panel's title; the node variable set to "All"
/// (its `.*` also matches series without a node label, as in this one-node test).
fn dashboard_queries() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards/grafana-sctp-xdp.json");
    let dash: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut all = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            all.push((p["title"].as_str().unwrap().to_string(), t["expr"].as_str().unwrap().replace("$node", ".*")));
        }
    }
    all
}

/// Tests that need root and kernel SCTP: run in the VM on every kernel.
mod vm {
    use super::*;

    #[expect(clippy::float_cmp, reason = "integer counts written as text: exact in f64")]
    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn a_scrape_passes_promtool_matches_the_traffic_and_covers_the_dashboard() {
        require_kernel_sctp();
        let env = EchoEnv::start("mp", &[]);
        let (ok, c) = env.client(&["--associations", "3", "--messages", "30", "--ppid", "18,60", "--size", "300"]);
        assert!(ok, "client: {c}");
        std::thread::sleep(Duration::from_secs(3)); // a build after the latency grace period
        let text = env.http_get("/metrics");
        promtool_accepts(&text);
        let s = parse_samples(&text);
        assert_eq!(sample(&s, "sctp_echo_messages_total{direction=\"in\"}"), 90.0);
        assert_eq!(sample(&s, "sctp_echo_messages_total{direction=\"out\"}"), 90.0);
        assert_eq!(sample(&s, "sctp_echo_associations_total"), 3.0);
        assert_eq!(
            sample(&s, "sctp_xdp_chunks_total{type=\"DATA\"}"),
            90.0,
            "one DATA chunk per message, client to server"
        );
        assert_eq!(sample(&s, "sctp_wire_data_chunks_by_ppid_total{ppid=\"18\"}"), 45.0);
        assert_eq!(sample(&s, "sctp_wire_data_chunks_by_ppid_total{ppid=\"60\"}"), 45.0);
        assert_eq!(sample(&s, "sctp_wire_to_app_latency_seconds_count"), 90.0, "every message's latency observed once");
        let flows: f64 = s.iter().filter(|(k, _)| k.starts_with("sctp_flow_data_chunks_total{")).map(|(_, v)| v).sum();
        assert_eq!(flows, 90.0, "flow series and other add up to all DATA chunks");
        // Each message (PPIDs 18 and 60: S1AP and NGAP; the client's first bytes read as an
        // unsuccessful outcome of procedure 199) counted once arriving at XDP, and its echo
        // once leaving by TC egress.
        let messages = |direction: &str| -> f64 {
            let label = format!("direction=\"{direction}\"");
            s.iter().filter(|(k, _)| k.starts_with("sctp_messages_total{") && k.contains(&label)).map(|(_, v)| v).sum()
        };
        assert_eq!((messages("arriving"), messages("leaving")), (90.0, 90.0), "{text}");
        // Every metric the dashboard queries is exported (a family without samples yet still
        // has its HELP line).
        let exported: BTreeSet<&str> = text
            .lines()
            .filter_map(|l| {
                l.strip_prefix("# HELP ").map(|r| r.split(' ').next().unwrap()).or_else(|| l.split(['{', ' ']).next())
            })
            .collect();
        for name in dashboard_metrics() {
            // OpenMetrics names a counter family without `_total`, a histogram's without `_bucket`.
            let family = name.trim_end_matches("_bucket").trim_end_matches("_total");
            assert!(
                exported.contains(name.as_str()) || exported.contains(family),
                "dashboard uses {name}, not exported"
            );
        }
        env.stop();
    }

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    #[expect(clippy::float_cmp, reason = "integer counts written as text: exact in f64")]
    fn counters_carry_on_across_a_restart_of_the_controller() {
        require_kernel_sctp();
        let fs = BpfFs::mount("restart");
        let pin = fs.pin_dir();
        let mut env = EchoEnv::start("mr", &["--pin-dir", &pin]);
        let (ok, _) = env.client(&["--associations", "2", "--messages", "20"]);
        assert!(ok);
        std::thread::sleep(Duration::from_secs(2));
        let before = parse_samples(&env.http_get("/metrics"));
        env.restart();
        let after_restart = parse_samples(&env.http_get("/metrics"));
        let (ok, _) = env.client(&["--associations", "2", "--messages", "15"]);
        assert!(ok);
        std::thread::sleep(Duration::from_secs(2));
        let after = parse_samples(&env.http_get("/metrics"));
        for (series, v) in &before {
            let is_counter = series.contains("_total")
                || series.contains("_bucket")
                || series.contains("_count")
                || series.contains("_sum");
            // The association table starts empty at each start: its round-trip histograms
            // live as long as their associations, in this run.
            if !is_counter || series.starts_with("sctp_association_") {
                continue;
            }
            for (when, scrape) in [("right after the restart", &after_restart), ("after more traffic", &after)] {
                if let Some(w) = scrape.get(series) {
                    assert!(w >= v, "{series} went backwards {when}: {v} -> {w}");
                } else {
                    assert!(
                        series.starts_with("sctp_flow_") || series.starts_with("sctp_join_delivery"),
                        "{series} vanished {when}"
                    );
                }
            }
        }
        assert_eq!(sample(&after, "sctp_echo_messages_total{direction=\"in\"}"), 70.0, "40 before + 30 after");
        assert!(sample(&after, "sctp_xdp_frames_total") > sample(&before, "sctp_xdp_frames_total"));
        env.stop();
    }

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn a_real_prometheus_scrapes_the_exporter_and_answers_promql() {
        require_kernel_sctp();
        // A rule, so the drop panels have their (zero) series.
        let env = EchoEnv::start("mq", &["--deny-ppid", "99"]);
        let dir = std::env::temp_dir().join(format!("prom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sctp-xdp\n    static_configs:\n      - targets: ['127.0.0.1:9464']\n").unwrap();
        let mut prom = Command::new("ip")
            .args(["netns", "exec", &env.server.name, "prometheus"])
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .args(["--web.listen-address=127.0.0.1:9090"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus (Debian's prometheus package)");
        let (ok, c) = env.client(&["--associations", "2", "--messages", "25"]);
        assert!(ok, "client: {c}");
        let ask = |expr: &str| -> serde_json::Value {
            let out = Command::new("ip")
                .args(["netns", "exec", &env.server.name, "curl", "-s", "--max-time", "20", "--get"])
                .args(["--data-urlencode", &format!("query={expr}"), "http://127.0.0.1:9090/api/v1/query"])
                .output()
                .expect("curl (cargo xtask setup installs it)");
            serde_json::from_slice(&out.stdout).unwrap_or_default()
        };
        let query = "/api/v1/query?query=sum(sctp_echo_messages_total%7Bdirection%3D%22in%22%7D)";
        let mut last = String::new();
        let mut answered = None;
        for _ in 0..120 {
            std::thread::sleep(Duration::from_secs(1));
            last = env.server.run(|| {
                std::panic::catch_unwind(|| integration_tests::http_get("127.0.0.1:9090", query)).unwrap_or_default()
            });
            let v: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
            if let Some(x) = v["data"]["result"][0]["value"][1].as_str() {
                if x == "50" {
                    answered = Some(x.to_string());
                    break;
                }
            }
        }
        // Every panel of the dashboard: its query parses and returns series from this live
        // run (a metric renamed, or a panel querying one nobody exports, fails here).
        // An association alive meanwhile (the ones above closed, and a closed one is
        // forgotten after a minute), scraped a few times first.
        let mut live = env.spawn_client(SERVER, &["--messages", "100000", "--rate", "5"]);
        std::thread::sleep(Duration::from_secs(10));
        let mut empty = Vec::new();
        if answered.is_some() {
            for (title, expr) in dashboard_queries() {
                let v = ask(&expr);
                assert_eq!(v["status"], "success", "{title}: {expr}: {v}");
                // Diameter answers need a Diameter peer, which this run has not: those
                // panels' queries are checked to parse, not to return series.
                let needs_diameter = expr.contains("sctp_diameter_");
                if !needs_diameter && v["data"]["result"].as_array().is_none_or(Vec::is_empty) {
                    empty.push(format!("{title}: {expr}"));
                }
            }
        }
        let _ = live.kill();
        let _ = live.wait();
        let _ = prom.kill();
        let _ = prom.wait();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(answered.as_deref(), Some("50"), "PromQL answer: {last}");
        assert!(empty.is_empty(), "panels without series:\n{}", empty.join("\n"));
        env.stop();
    }
}
