//! What a fleet deploys, checked as its tools would: the systemd unit by systemd-analyze
//! and run under exactly its capabilities, the Debian package installed and removed, the
//! static binary in an empty root, the OCI image run by crun with three capabilities,
//! the Kubernetes manifests against two versions' schemas and our policy, the Prometheus
//! rules by promtool, and three nodes scraped by one real Prometheus.
//!
//! The artefacts come from `cargo xtask dist` (which `cargo xtask test` runs first).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use integration_tests::{
    instance::Instance,
    netns::{veth, HostBpffs, Netns, RUN_BPFFS},
    parse_samples,
    raw::send_frames,
    require_root,
};
use sctp_common::builder::{Chunk, SctpPacket, V4};
use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The capabilities the unit, the image and the `DaemonSet` grant: no other.
const THREE: [&str; 3] = ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn unit_path() -> PathBuf {
    repo().join("deploy/systemd/sctp-xdp@.service")
}

/// An artefact of `cargo xtask dist`.
fn dist(name: &str) -> PathBuf {
    let path = repo().join("target/dist").join(name);
    assert!(path.exists(), "{} is missing: run `cargo xtask dist` (cargo xtask test does)", path.display());
    path
}

/// `program ARGS`: (success, stdout and stderr).
fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> (bool, String) {
    let program = program.as_ref();
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo xtask setup installs it)", program.to_string_lossy()));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A unit's settings: key -> every value given (in order).
fn unit_settings(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut all: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if let Some((k, v)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            all.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    all
}

fn words(v: &str) -> Vec<&str> {
    v.split_whitespace().collect()
}

/// The rendered manifests (YAML to JSON by the validator's own `PyYAML`).
fn rendered_manifests() -> (String, Vec<Value>) {
    let (ok, yaml) = run("kubectl", &["kustomize", repo().join("deploy/kubernetes").to_str().unwrap()]);
    assert!(ok, "kubectl kustomize: {yaml}");
    let mut py = Command::new(python_tool("python"))
        .args(["-c", "import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut py.stdin.take().unwrap(), yaml.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success());
    (yaml, serde_json::from_slice(&out.stdout).unwrap())
}

/// A tool of the project's Python environment (cargo xtask setup makes it).
fn python_tool(name: &str) -> PathBuf {
    let path = repo().join("target/tools/py/bin").join(name);
    assert!(path.exists(), "{} is missing: run `cargo xtask setup`", path.display());
    path
}

/// `kubernetes-validate --strict` of `yaml` against version `k8s`: (valid, what it said).
fn validate(yaml: &str, k8s: &str) -> (bool, String) {
    let file = std::env::temp_dir().join(format!("sctp-xdp-k8s-{}-{k8s}.yaml", std::process::id()));
    std::fs::write(&file, yaml).unwrap();
    let said = run(python_tool("kubernetes-validate"), &["--strict", "--quiet", "-k", k8s, file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    said
}

/// Crafted DATA from `from` (its end `ifname`) to the instance behind the veth.
fn send_data(from: &Netns, ifname: &str, n: u32) {
    let frames: Vec<Vec<u8>> =
        (0..n).map(|i| SctpPacket::new(V4, 7, vec![Chunk::data(i, 0, 0, 18, 20)]).frame()).collect();
    send_frames(from, ifname, &frames);
}

fn sctp_packets(stats: &Value) -> u64 {
    stats["xdp"]["packets"]["sctp"].as_u64().unwrap()
}

/// The answer of the Prometheus in `ns` (on 127.0.0.1:9090) to `expr`; null while it
/// cannot answer yet.
fn promql(ns: &Netns, expr: &str) -> Value {
    let q: String = expr
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let body = ns.run(|| {
        std::panic::catch_unwind(|| integration_tests::http_get("127.0.0.1:9090", &format!("/api/v1/query?query={q}")))
            .unwrap_or_default()
    });
    serde_json::from_str(&body).unwrap_or_default()
}

/// An instant vector's integer values by their `node` label.
fn by_node(v: &Value) -> BTreeMap<String, u64> {
    v["data"]["result"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|s| {
                    (
                        s["metric"]["node"].as_str().unwrap_or_default().to_string(),
                        s["value"][1].as_str().and_then(|x| x.parse().ok()).unwrap_or(u64::MAX),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The syscalls a group of the unit's filter names (`@system-service`), its own and its
/// subgroups', or the name itself.
fn syscall_group(name: &str) -> std::collections::BTreeSet<String> {
    if !name.starts_with('@') {
        return [name.to_string()].into();
    }
    let (ok, out) = run("systemd-analyze", &["syscall-filter", "--no-pager", name]);
    assert!(ok, "{out}");
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(name))
        .flat_map(syscall_group)
        .collect()
}

/// A server the test started, killed however the test ends (a failed assertion too).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Tests anyone can run: no privileges.
mod host {
    use super::*;

    #[test]
    fn the_unit_is_hardened_and_grants_only_three_capabilities() {
        let text = std::fs::read_to_string(unit_path()).unwrap();
        let s = unit_settings(&text);
        let one = |k: &str| s.get(k).and_then(|v| v.last()).map_or("", String::as_str);
        assert_eq!(words(one("AmbientCapabilities")), THREE);
        assert_eq!(words(one("CapabilityBoundingSet")), THREE);
        for (k, v) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("User", "sctp-xdp"),
            ("RuntimeDirectory", "sctp-xdp"),
        ] {
            assert_eq!(one(k), v, "{k}");
        }
        let filters = &s["SystemCallFilter"];
        assert_eq!(words(&filters[0]), ["@system-service", "bpf"]);
        assert!(
            filters[1..].iter().all(|f| f.starts_with('~') && !f.contains("@privileged")),
            "deny lists that keep bpf(2): {filters:?}"
        );
        assert!(words(one("RestrictAddressFamilies")).contains(&"AF_NETLINK"));

        let (ok, out) =
            run("systemd-analyze", &["security", "--offline=true", "--no-pager", unit_path().to_str().unwrap()]);
        let score: f64 = out
            .lines()
            .find_map(|l| {
                l.split_once("Overall exposure level for ")?.1.split_once(": ")?.1.split(' ').next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
        eprintln!("systemd-analyze security: exposure {score}");
        assert!(ok && score <= 4.0, "exposure {score} > 4.0:\n{out}");
    }

    #[test]
    fn the_prometheus_rules_pass_promtool_and_their_tests() {
        let dir = repo().join("deploy/prometheus");
        let rules = dir.join("sctp-xdp.rules.yml");
        let (ok, out) = run("promtool", &["check", "rules", rules.to_str().unwrap()]);
        assert!(ok, "{out}");
        let (ok, out) = run("promtool", &["test", "rules", dir.join("sctp-xdp.rules.test.yml").to_str().unwrap()]);
        assert!(ok, "{out}");
    }

    /// Every panel of the dashboard follows its node variable.
    #[test]
    fn every_panel_of_the_dashboard_follows_the_node_variable() {
        let path = repo().join("dashboards/grafana-sctp-xdp.json");
        let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let vars = dash["templating"]["list"].as_array().unwrap();
        let node = vars.iter().find(|v| v["name"] == "node").expect("a node variable");
        assert_eq!(node["includeAll"], true);
        for p in dash["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                let metrics = expr.matches("sctp_").count();
                assert_eq!(expr.matches("node=~\"$node\"").count(), metrics, "{}: {expr}", p["title"]);
            }
        }
    }

    #[test]
    fn the_kubernetes_manifests_validate_on_two_versions_and_keep_the_policy() {
        let (yaml, docs) = rendered_manifests();
        for k8s in ["1.28.0", "1.34.0"] {
            let (ok, said) = validate(&yaml, k8s);
            assert!(ok, "Kubernetes {k8s}: {said}");
        }
        // The validator refuses what is wrong (a test that could not fail proves nothing).
        let broken = yaml.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: yes-please");
        assert!(!validate(&broken, "1.34.0").0, "a string where a boolean belongs");

        let kind = |k: &str| docs.iter().find(|d| d["kind"] == k).unwrap_or_else(|| panic!("no {k}"));
        let ds = kind("DaemonSet");
        let pod = &ds["spec"]["template"];
        let spec = &pod["spec"];
        assert_eq!(spec["hostNetwork"], true);
        let c = &spec["containers"][0];
        let sc = &c["securityContext"];
        assert_ne!(sc["privileged"], true, "not privileged");
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(sc["capabilities"]["add"], serde_json::json!(["BPF", "NET_ADMIN", "PERFMON"]));
        let bpffs = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["hostPath"]["path"] == "/sys/fs/bpf")
            .expect("the host's /sys/fs/bpf");
        let mount = c["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == bpffs["name"]).unwrap();
        assert_eq!(mount["mountPropagation"], "HostToContainer");
        let env = c["env"].as_array().unwrap();
        let node = env.iter().find(|e| e["name"] == "NODE_NAME").unwrap();
        assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
        let cm = kind("ConfigMap");
        let ifaces = env.iter().find(|e| e["name"] == "SCTP_XDP_INTERFACES").unwrap();
        assert_eq!(ifaces["valueFrom"]["configMapKeyRef"]["name"], cm["metadata"]["name"]);
        assert!(c["args"].as_array().unwrap().iter().any(|a| a == "--iface=$(SCTP_XDP_INTERFACES)"));
        for r in ["requests", "limits"] {
            for what in ["cpu", "memory"] {
                assert!(c["resources"][r][what].is_string(), "{r}.{what}");
            }
        }
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        let annotations = &pod["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/scrape"], "true");
        assert_eq!(annotations["prometheus.io/port"], "9464");
        let pm = kind("PodMonitor");
        let selector = pm["spec"]["selector"]["matchLabels"].as_object().unwrap();
        assert!(!selector.is_empty());
        for (k, v) in selector {
            assert_eq!(&pod["metadata"]["labels"][k], v, "the PodMonitor selects the agent's pods by {k}");
        }
        assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], c["ports"][0]["name"]);
    }
}

/// Tests that need root on this host (BPF, namespaces), not kernel SCTP.
mod root {
    use super::*;

    /// The unit's `ExecStart`, run as it would be: as an unprivileged user (nobody: the unit's
    /// own user exists only where the package is installed) holding exactly the unit's
    /// ambient capabilities, bounded by its bounding set, with no new privileges, its pins in
    /// a directory made for that user (as its `ExecStartPre` does). It attaches, counts, and
    /// pins; without any one of the three it refuses in one line naming it.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn the_units_command_runs_under_exactly_its_capabilities() {
        require_root();
        let s = unit_settings(&std::fs::read_to_string(unit_path()).unwrap());
        let ambient = words(&s["AmbientCapabilities"][0])
            .iter()
            .map(|c| c.trim_start_matches("CAP_").to_lowercase())
            .collect::<Vec<_>>();
        let exec = s["ExecStart"][0].clone();
        let a = Netns::new("cap-a").unwrap();
        let b = Netns::new("cap-b").unwrap();
        veth(&a, "capa0", "198.18.4.1/24", &b, "capb0", "198.18.4.2/24").unwrap();
        let _bpffs = HostBpffs::ensure();
        let pins = Path::new(RUN_BPFFS).join(format!("unit-test-{}", std::process::id()));
        std::fs::create_dir_all(&pins).unwrap();
        std::os::unix::fs::chown(&pins, Some(65534), Some(65534)).unwrap();
        let bin = integration_tests::sctp_user_bin();
        let command = |caps: &[String]| -> Vec<String> {
            let list = caps.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(",");
            let mut argv: Vec<String> =
                ["--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs"].map(String::from).to_vec();
            argv.push(format!("--inh-caps=-all,{list}"));
            argv.push(format!("--ambient-caps=-all,{list}"));
            argv.push(format!(
                "--bounding-set=-all,{}",
                ambient.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(",")
            ));
            argv.push("--".into());
            for w in exec.split_whitespace() {
                match w {
                    "/usr/bin/sctp-user" => argv.push(bin.to_string_lossy().into_owned()),
                    "$SCTP_XDP_ARGS" => argv.extend(["--no-echo", "--node-name", "unit-test"].map(String::from)),
                    w => argv.push(w.replace("/sys/fs/bpf/sctp-xdp/%i", pins.to_str().unwrap()).replace("%i", "capb0")),
                }
            }
            argv
        };
        let all = command(&ambient);
        eprintln!("setpriv {}", all.join(" "));
        let inst = Instance::start(&b, "unit", "setpriv", &all, "metrics on").unwrap();
        send_data(&a, "capa0", 25);
        std::thread::sleep(Duration::from_millis(1500));
        let stats = b.stats().unwrap();
        assert_eq!(sctp_packets(&stats), 25, "counted as nobody with three capabilities");
        assert_eq!(stats["node"], "unit-test");
        assert!(pins.join("GLOBAL").exists(), "pinned");
        assert!(inst.stop().unwrap().success());
        for missing in &ambient {
            let fewer: Vec<String> = ambient.iter().filter(|c| *c != missing).cloned().collect();
            let out =
                Command::new("ip").args(["netns", "exec", &b.name, "setpriv"]).args(command(&fewer)).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            assert!(err.contains(&format!("CAP_{}", missing.to_uppercase())), "{missing}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        }
        let _ = std::fs::remove_dir_all(&pins);
    }

    /// The static binary in a root file system holding nothing else: it starts, and
    /// `inspect` reads a capture written by our own builder there.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn the_static_binary_runs_in_an_empty_root() {
        require_root();
        let root = std::env::temp_dir().join(format!("sctp-xdp-empty-root-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::copy(dist("sctp-user"), root.join("sctp-user")).unwrap();
        let records: Vec<_> = (0..40u32)
            .map(|i| {
                let frame = SctpPacket::new(V4, 9, vec![Chunk::data(i, 1, 0, 60, 32)]).frame();
                integration_tests::capture_writer::Record::new(u64::from(i) * 1_000_000, frame)
            })
            .collect();
        let pcap = integration_tests::capture_writer::pcap(&records, 1, false, false, 65535);
        std::fs::write(root.join("c.pcap"), pcap).unwrap();
        let (ok, version) = run("chroot", &[root.to_str().unwrap(), "/sctp-user", "--version"]);
        assert!(ok && version.contains(VERSION), "{version}");
        let out = Command::new("chroot")
            .arg(&root)
            .args(["/sctp-user", "inspect", "--pcap", "/c.pcap", "--format", "json"])
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&root);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["data"]["chunks"], 40);
    }

    /// The Debian package installs (its user, its units, which `systemd-analyze verify`
    /// finds clean there) and removes, leaving none of its files.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn the_debian_package_installs_and_removes_cleanly() {
        require_root();
        let deb = dist(&format!("sctp-xdp_{VERSION}_amd64.deb"));
        let (ok, out) = run("dpkg", &["-i", deb.to_str().unwrap()]);
        assert!(ok, "dpkg -i: {out}");
        let (_, listed) = run("dpkg", &["-L", "sctp-xdp"]);
        let files: Vec<&str> = listed.lines().filter(|f| Path::new(f).is_file()).collect();
        let installed = || {
            let (ok, v) = run("/usr/bin/sctp-user", &["--version"]);
            assert!(ok && v.contains(VERSION), "{v}");
            assert!(run("getent", &["passwd", "sctp-xdp"]).0, "the system user exists");
            for unit in ["sctp-xdp@.service", "sctp-xdp-bpffs.service"] {
                let path = format!("/usr/lib/systemd/system/{unit}");
                assert!(files.contains(&path.as_str()), "{path} installed");
                let (ok, said) = run("systemd-analyze", &["verify", &path]);
                assert!(ok && said.trim().is_empty(), "systemd-analyze verify {unit}: {said}");
            }
            assert!(files.len() > 10, "{files:?}");
        };
        let result = std::panic::catch_unwind(installed);
        let (ok, out) = run("dpkg", &["--purge", "sctp-xdp"]);
        assert!(ok, "dpkg --purge: {out}");
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
        let left: Vec<&&str> = files.iter().filter(|f| Path::new(f).exists()).collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert!(!run("dpkg", &["-s", "sctp-xdp"]).0, "still known to dpkg");
    }

    /// The OCI image, unpacked by umoci into a runtime bundle and run by crun in a network
    /// namespace as uid 65534 with the three capabilities only: it counts packets sent on a
    /// veth, read at its /metrics.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn the_oci_image_runs_with_three_capabilities_and_counts_a_veth() {
        require_root();
        let archive = dist(&format!("sctp-xdp-{VERSION}.oci.tar"));
        let work = std::env::temp_dir().join(format!("sctp-xdp-oci-{}", std::process::id()));
        let layout = work.join("layout");
        let bundle = work.join("bundle");
        std::fs::create_dir_all(&layout).unwrap();
        assert!(run("tar", &["-xf", archive.to_str().unwrap(), "-C", layout.to_str().unwrap()]).0);
        let image = format!("{}:sctp-xdp:{VERSION}", layout.display());
        let (ok, out) = run("umoci", &["unpack", "--image", &image, bundle.to_str().unwrap()]);
        assert!(ok, "umoci unpack: {out}");
        let a = Netns::new("oci-a").unwrap();
        let b = Netns::new("oci-b").unwrap();
        veth(&a, "ocia0", "198.18.5.1/24", &b, "ocib0", "198.18.5.2/24").unwrap();
        let config_path = bundle.join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        assert_eq!(config["process"]["user"]["uid"], 65534, "the image's own user");
        let process = &mut config["process"];
        process["terminal"] = false.into();
        process["args"] = serde_json::json!([
            "/usr/bin/sctp-user",
            "run",
            "--iface",
            "ocib0",
            "--no-echo",
            "--no-pin",
            "--node-name",
            "oci"
        ]);
        for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] {
            process["capabilities"][set] = serde_json::json!(THREE);
        }
        for ns in config["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = format!("/run/netns/{}", b.name).into();
            }
        }
        std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
        let id = format!("sctp-xdp-test-{}", std::process::id());
        // crun refuses hybrid cgroup hierarchies (v1 with a v2 "unified" beside it, as on
        // these machines): it runs in a mount namespace of its own without the v2 part.
        let crun = format!(
            "if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi; \
         exec crun --cgroup-manager=disabled run --bundle {} {id}",
            bundle.display()
        );
        let mut unshare = Command::new("unshare");
        unshare.args(["-m", "--propagation", "private", "sh", "-c", &crun]);
        let container = Instance::spawn(unshare, "crun", "metrics on").unwrap();
        send_data(&a, "ocia0", 30);
        std::thread::sleep(Duration::from_millis(1500));
        let metrics = b.run(|| integration_tests::http_get("127.0.0.1:9464", "/metrics"));
        let samples = parse_samples(&metrics);
        let _ = run("crun", &["kill", &id, "SIGTERM"]);
        let status = container.wait_exit();
        let _ = run("crun", &["delete", "--force", &id]);
        let _ = std::fs::remove_dir_all(&work);
        assert_eq!(samples.get("sctp_xdp_outcomes_total{outcome=\"sctp\"}").copied(), Some(30.0), "{metrics}");
        assert_eq!(samples.get("target_info{node=\"oci\"}").copied(), Some(1.0));
        assert!(status.unwrap().success(), "stopped cleanly by SIGTERM");
    }

    /// Three "nodes" (namespaces, each with its instance and its own traffic) scraped by one
    /// real Prometheus through `file_sd` targets labelled with their node: `sum by (node)`
    /// equals what each counted, `sum` the total, and each instance's own `target_info`
    /// names the node its target label says.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn three_nodes_one_prometheus() {
        require_root();
        let mon = Netns::new("fleet-mon").unwrap();
        let traffic = [11u32, 23, 42];
        let mut nodes = Vec::new();
        let mut targets = Vec::new();
        for (i, n) in traffic.iter().enumerate() {
            let ns = Netns::new(&format!("fleet-n{i}")).unwrap();
            let (mon_if, node_if) = (format!("fm{i}"), format!("fn{i}"));
            let (mon_addr, node_addr) = (format!("198.18.{}.1", 10 + i), format!("198.18.{}.2", 10 + i));
            veth(&mon, &mon_if, &format!("{mon_addr}/24"), &ns, &node_if, &format!("{node_addr}/24")).unwrap();
            let name = format!("node-{i}");
            let metrics = format!("{node_addr}:9464");
            let args =
                ["run", "--iface", &node_if, "--no-echo", "--no-pin", "--metrics", &metrics, "--node-name", &name];
            let inst = Instance::start(&ns, &name, integration_tests::sctp_user_bin(), &args, "metrics on").unwrap();
            send_data(&mon, &mon_if, *n);
            targets.push(serde_json::json!({"targets": [metrics], "labels": {"node": name}}));
            nodes.push((ns, inst, name, metrics));
        }
        let dir = std::env::temp_dir().join(format!("fleet-prom-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("targets.json"), serde_json::to_vec(&targets).unwrap()).unwrap();
        std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sctp-xdp\n    file_sd_configs:\n      - files: ['{}']\n",
            dir.join("targets.json").display()
        ),
    )
    .unwrap();
        let prom = Command::new("ip")
            .args(["netns", "exec", &mon.name, "prometheus"])
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg("--web.listen-address=127.0.0.1:9090")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian's prometheus package)");
        let prom = KillOnDrop(prom);
        let ask = |expr: &str| promql(&mon, expr);
        // /stats is the last export, rebuilt each second.
        std::thread::sleep(Duration::from_millis(1500));
        let want: BTreeMap<String, u64> = nodes
            .iter()
            .zip(traffic)
            .map(|((ns, _, name, metrics), n)| {
                let counted =
                    sctp_packets(&ns.run(|| {
                        serde_json::from_str::<Value>(&integration_tests::http_get(metrics, "/stats")).unwrap()
                    }));
                assert_eq!(counted, u64::from(n), "{name} counted its own traffic");
                (name.clone(), u64::from(n))
            })
            .collect();
        let mut got = BTreeMap::new();
        for _ in 0..60 {
            std::thread::sleep(Duration::from_secs(1));
            got = by_node(&ask(r#"sum by (node) (sctp_xdp_outcomes_total{outcome="sctp"})"#));
            if got == want {
                break;
            }
        }
        let total = ask(r#"sum(sctp_xdp_outcomes_total{outcome="sctp"})"#);
        let info = ask("target_info");
        drop(prom);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got, want, "sum by (node)");
        let total: u64 = total["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
        assert_eq!(total, u64::from(traffic.iter().sum::<u32>()));
        // The exporter's own node label, renamed by Prometheus beside the target's.
        for s in info["data"]["result"].as_array().unwrap() {
            assert_eq!(s["metric"]["node"], s["metric"]["exported_node"], "{s}");
        }
        assert_eq!(info["data"]["result"].as_array().unwrap().len(), 3);
        for (_, inst, _, _) in nodes {
            assert!(inst.stop().unwrap().success());
        }
    }

    /// A node's series stay bounded whatever its traffic: with `--top-flows 2`, ten
    /// associations (and their ten flows) export two of their own and one "other", whose sum
    /// still holds every packet.
    #[expect(clippy::float_cmp, reason = "integer counts written as text: exact in f64")]
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn a_nodes_series_are_capped_and_the_rest_summed_as_other() {
        require_root();
        let a = Netns::new("cap-ta").unwrap();
        let b = Netns::new("cap-tb").unwrap();
        veth(&a, "capta0", "198.18.6.1/24", &b, "captb0", "198.18.6.2/24").unwrap();
        let args = ["run", "--iface", "captb0", "--no-echo", "--no-pin", "--top-flows", "2"];
        let inst = Instance::start(&b, "capped", integration_tests::sctp_user_bin(), &args, "metrics on").unwrap();
        let mut frames = Vec::new();
        for i in 0..10u16 {
            for tsn in 0..u32::from(i + 1) * 3 {
                let mut p = SctpPacket::new(V4, 100 + u32::from(i), vec![Chunk::data(tsn, 0, 0, 60, 20)]);
                p.src_port = 40_000 + i;
                frames.push(p.frame());
            }
        }
        send_frames(&a, "capta0", &frames);
        std::thread::sleep(Duration::from_millis(1500));
        let metrics = b.run(|| integration_tests::http_get("127.0.0.1:9464", "/metrics"));
        assert!(inst.stop().unwrap().success());
        let samples = parse_samples(&metrics);
        let series = |metric: &str, label: &str| -> BTreeMap<String, f64> {
            let mut by = BTreeMap::new();
            for (key, v) in &samples {
                let Some(labels) = key.strip_prefix(metric).and_then(|k| k.strip_prefix('{')) else { continue };
                let value = labels.split(&format!("{label}=\"")).nth(1).and_then(|r| r.split('"').next());
                *by.entry(value.unwrap_or_default().to_string()).or_insert(0.0) += v;
            }
            by
        };
        let sent = f64::from(u32::try_from(frames.len()).unwrap());
        for (metric, label) in [("sctp_association_packets", "association"), ("sctp_flow_packets_total", "flow")] {
            let by = series(metric, label);
            assert_eq!(by.len(), 3, "{metric}: two of their own and other: {by:?}");
            assert!(by.contains_key("other"), "{metric}: {by:?}");
            assert_eq!(by.values().sum::<f64>(), sent, "{metric}: every packet counted: {by:?}");
        }
    }

    /// Every system call `run` makes (traced by strace while it attaches, pins, serves and
    /// stops) is one the unit's `SystemCallFilter` lets through: allowed, and not denied.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn the_units_syscall_filter_lets_every_call_of_run_through() {
        require_root();
        let s = unit_settings(&std::fs::read_to_string(unit_path()).unwrap());
        let filters = &s["SystemCallFilter"];
        let allowed: std::collections::BTreeSet<String> =
            words(&filters[0]).into_iter().flat_map(syscall_group).collect();
        let denied: std::collections::BTreeSet<String> = filters[1..]
            .iter()
            .flat_map(|f| words(f.trim_start_matches('~')).into_iter().map(str::to_string).collect::<Vec<_>>())
            .flat_map(|g| syscall_group(&g))
            .collect();
        let a = Netns::new("sys-a").unwrap();
        let b = Netns::new("sys-b").unwrap();
        veth(&a, "sysa0", "198.18.9.1/24", &b, "sysb0", "198.18.9.2/24").unwrap();
        let _bpffs = HostBpffs::ensure();
        let pins = Path::new(RUN_BPFFS).join(format!("syscall-test-{}", std::process::id()));
        let trace = std::env::temp_dir().join(format!("sctp-xdp-strace-{}", std::process::id()));
        let bin = integration_tests::sctp_user_bin();
        let args = [
            "-f",
            "-qq",
            "-o",
            trace.to_str().unwrap(),
            bin.to_str().unwrap(),
            "run",
            "--iface",
            "sysb0",
            "--no-echo",
            "--pin-dir",
            pins.to_str().unwrap(),
        ];
        let inst = Instance::start(&b, "traced", "strace", &args, "metrics on").unwrap();
        send_data(&a, "sysa0", 5);
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(sctp_packets(&b.stats().unwrap()), 5);
        // strace keeps fatal signals from its tracee (-o FILE): the tracee is stopped itself.
        let (ok, pid) = run("pgrep", &["-n", "-f", "sctp-user run --iface sysb0"]);
        assert!(ok, "the traced run: {pid}");
        assert!(run("kill", &["-TERM", pid.trim()]).0);
        assert!(inst.wait_exit().unwrap().success());
        let text = std::fs::read_to_string(&trace).unwrap();
        let _ = std::fs::remove_file(&trace);
        let _ = std::fs::remove_dir_all(&pins);
        let used: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.split('(').next())
            .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
            .collect();
        assert!(used.contains("bpf") && used.len() > 20, "traced: {used:?}");
        let refused: Vec<&&str> = used.iter().filter(|c| !allowed.contains(**c) || denied.contains(**c)).collect();
        assert!(refused.is_empty(), "the unit's filter would refuse {refused:?}");
    }
}
