//! A running instance must survive its operator: a second `run` on the same interface,
//! `rules apply` with nothing to apply, a crash and a restart under `ip netns exec` (the
//! README's own setup), and the interface deleted under it. Live, in namespaces of the
//! test's own; no kernel SCTP needed (`--no-echo`).

use std::{path::Path, process::Command};

use integration_tests::{
    instance::Instance,
    netns::{veth, HostBpffs, Netns, RUN_BPFFS},
    raw::send_frames,
    require_root, sctp_user_bin,
};
use sctp_common::builder::{Chunk, SctpPacket, V4};
use serde_json::Value;

/// The tests below mount and look for bpf filesystems on the host: one at a time.
static HOST_MOUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `sctp-user ARGS` inside `ns`: (success, stdout, stderr). A command that should have
/// refused but runs is stopped after a minute (and fails the test), not waited for.
fn sctp_user_in(ns: &Netns, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("timeout")
        .args(["60", "ip", "netns", "exec", &ns.name])
        .arg(sctp_user_bin())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sctp_packets(ns: &Netns) -> u64 {
    ns.stats().unwrap()["xdp"]["packets"]["sctp"].as_u64().unwrap()
}

/// Tests that need root on this host (BPF, namespaces), not kernel SCTP.
mod root {
    use super::*;

    /// Without a shared bpffs, `run` under `ip netns exec` refuses to pin where the pins
    /// would vanish, and says what to do.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn pins_that_would_vanish_are_refused_with_what_to_do() {
        require_root();
        let _one_at_a_time = HOST_MOUNTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mounted = std::fs::read_to_string("/proc/mounts").unwrap();
        if mounted.lines().any(|l| {
            let at = l.split(' ').nth(1);
            at == Some(RUN_BPFFS) || at == Some("/sys/fs/bpf")
        }) {
            eprintln!("SKIPPED: a bpffs is mounted on the host; the refusal cannot be shown here");
            return;
        }
        let ns = Netns::new("op-np").unwrap();
        let (ok, _, err) = sctp_user_in(&ns, &["run", "--iface", "lo", "--no-echo", "--no-metrics"]);
        assert!(!ok);
        assert!(err.contains("mount one on the host first"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn a_running_instance_survives_its_operator() {
        require_root();
        let _one_at_a_time = HOST_MOUNTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _bpffs = HostBpffs::ensure();
        let a = Netns::new("op-a").unwrap();
        let b = Netns::new("op-b").unwrap();
        veth(&a, "opa0", "198.18.0.1/24", &b, "opb0", "198.18.0.2/24").unwrap();
        // Pins of an instance in a namespace live in the host's bpffs, under its name.
        let pins = Path::new(RUN_BPFFS).join("netns").join(&b.name).join("opb0");
        let _ = std::fs::remove_dir_all(&pins);
        let run_args = ["run", "--iface", "opb0", "--no-echo"];
        let first = Instance::start(&b, "first", sctp_user_bin(), &run_args, "metrics on").unwrap();
        assert!(pins.join("GLOBAL").exists(), "pinned where other commands find them: {}", pins.display());

        // A second run on the same interface is refused before it touches the first's maps.
        let (ok, _, err) =
            sctp_user_in(&b, &["run", "--iface", "opb0", "--no-echo", "--no-metrics", "--deny-src", "198.18.0.0/15"]);
        assert!(!ok, "a second run must fail");
        assert!(err.contains("already running"), "{err}");
        let (ok, out, err) = sctp_user_in(&b, &["rules", "show", "--iface", "opb0"]);
        assert!(ok, "{err}");
        assert!(out.contains("no rules"), "the first instance's rules are untouched: {out}");

        // Nothing to apply is an error; removing every rule is said out loud.
        let (ok, _, err) = sctp_user_in(&b, &["rules", "apply", "--iface", "opb0"]);
        assert!(!ok);
        assert!(err.contains("nothing to apply"), "{err}");
        let (ok, _, err) = sctp_user_in(&b, &["rules", "apply", "--iface", "opb0", "--clear", "--deny-ppid", "46"]);
        assert!(!ok);
        assert!(err.contains("--clear removes every rule"), "{err}");
        let (ok, _, err) = sctp_user_in(&b, &["rules", "apply", "--iface", "opb0", "--clear"]);
        assert!(ok, "{err}");

        // A crash (kill -9) and a restart: the counters carry on from the pins.
        let frames: Vec<Vec<u8>> =
            (0..10u32).map(|i| SctpPacket::new(V4, 7, vec![Chunk::data(i, 0, 0, 18, 20)]).frame()).collect();
        send_frames(&a, "opa0", &frames);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let before = sctp_packets(&b);
        assert!(before >= 10, "{before}");
        first.kill().unwrap();
        let second = Instance::start(&b, "second", sctp_user_bin(), &run_args, "metrics on").unwrap();
        send_frames(&a, "opa0", &frames);
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let after = sctp_packets(&b);
        assert!(after >= before + 10, "counted on from {before}: {after}");

        // The interface deleted under the instance: it says so and exits with an error.
        b.ip(&["link", "del", "opb0"]).unwrap();
        second.wait_for("was deleted or replaced").unwrap();
        let status = second.wait_exit().unwrap();
        assert!(!status.success(), "{status}");
        let _ = std::fs::remove_dir_all(Path::new(RUN_BPFFS).join("netns").join(&b.name));
    }

    /// The metrics endpoint behaves like an HTTP server to real clients and to hostile ones:
    /// HEAD without a body, other methods refused, bare-LF requests answered, a client that
    /// drips its head cut off, /stats bounded.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn the_metrics_endpoint_is_a_proper_http_server() {
        use std::{
            io::{Read as _, Write as _},
            net::TcpStream,
            time::{Duration, Instant},
        };
        require_root();
        let ns = Netns::new("op-http").unwrap();
        let args = ["run", "--iface", "lo", "--no-echo", "--no-pin", "--top-flows", "3"];
        let run = Instance::start(&ns, "run", sctp_user_bin(), &args, "metrics on").unwrap();
        let curl = |extra: &[&str]| -> String {
            let out = Command::new("ip")
                .args(["netns", "exec", &ns.name, "curl", "-s", "--max-time", "10"])
                .args(extra)
                .output()
                .expect("curl (cargo xtask setup installs it)");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let code = |extra: &[&str]| {
            let mut a = vec!["-o", "/dev/null", "-w", "%{http_code}"];
            a.extend_from_slice(extra);
            curl(&a)
        };
        assert_eq!(code(&["http://127.0.0.1:9464/metrics"]), "200");
        assert_eq!(code(&["-X", "POST", "http://127.0.0.1:9464/metrics"]), "405");
        assert_eq!(code(&["http://127.0.0.1:9464/nothing"]), "404");
        let head = curl(&["-I", "http://127.0.0.1:9464/stats"]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");

        let raw = |request: &[u8]| -> String {
            ns.run(|| {
                let mut s = TcpStream::connect("127.0.0.1:9464").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(request).unwrap();
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                String::from_utf8_lossy(&out).into_owned()
            })
        };
        // HEAD: the headers only, no body after them.
        let reply = raw(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let (_, body) = reply.split_once("\r\n\r\n").expect("a head");
        assert!(body.is_empty(), "HEAD with a body: {body:.80}");
        // A bare-LF request is answered at once, not after a timeout.
        let started = Instant::now();
        let reply = raw(b"GET /stats HTTP/1.1\nHost: x\n\n");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply:.80}");
        assert!(started.elapsed() < Duration::from_secs(4), "answered after {:?}", started.elapsed());
        // /stats lists the busiest --top-flows flows and says how many there are.
        let (_, body) = reply.split_once("\r\n\r\n").unwrap();
        let stats: Value = serde_json::from_str(body).unwrap();
        assert!(stats["xdp"]["flows_total"].is_u64(), "{stats}");
        assert!(stats["xdp"]["flows"].as_array().unwrap().len() <= 3);

        // A client dripping one header line every 2 s is cut off (the head must arrive
        // within 5 s), not kept forever.
        let dripped = ns.run(|| {
            let mut s = TcpStream::connect("127.0.0.1:9464").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            let started = Instant::now();
            s.write_all(b"GET /stats HTTP/1.1\r\n").unwrap();
            let mut line = 0;
            while started.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_secs(2));
                line += 1;
                if s.write_all(format!("X-Drip-{line}: 1\r\n").as_bytes()).is_err() {
                    break;
                }
                let mut buf = [0u8; 512];
                match s.read(&mut buf) {
                    // Nothing yet: the server still waits for the head.
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    // Closed, reset or answered (408): the server ended it.
                    _ => break,
                }
            }
            started.elapsed()
        });
        assert!(dripped < Duration::from_secs(12), "a dripping client held the connection {dripped:?}");
        run.stop().unwrap();
    }

    /// Out of file descriptors, `run` keeps running: a thousand clients holding connections
    /// to the metrics port of a process allowed 256 files take at most the connection cap's
    /// worth, the once-a-second interface check tells EMFILE from an interface gone (which
    /// used to stop the instance and detach its rules), and /stats answers once they leave.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn idle_clients_by_the_thousand_take_neither_the_files_nor_the_instance() {
        use std::{net::TcpStream, time::Duration};
        require_root();
        let ns = Netns::new("op-emfile").unwrap();
        let bin = sctp_user_bin();
        let args = ["--nofile=256", bin.to_str().unwrap(), "run", "--iface", "lo", "--no-echo", "--no-pin"];
        let mut run = Instance::start(&ns, "run", "prlimit", &args, "metrics on").unwrap();
        let held: Vec<TcpStream> = ns.run(|| {
            let to = "127.0.0.1:9464".parse().unwrap();
            (0..1000).filter_map(|_| TcpStream::connect_timeout(&to, Duration::from_millis(200)).ok()).collect()
        });
        eprintln!("{} connections held", held.len());
        assert!(held.len() > 256, "more clients than the process has files: {}", held.len());
        // Several interface checks while they are held.
        std::thread::sleep(Duration::from_secs(3));
        assert!(run.running(), "run stopped under a connection flood");
        drop(held);
        // The served ones end at their head deadline (5 s); then /stats answers again.
        std::thread::sleep(Duration::from_secs(6));
        assert!(ns.stats().unwrap()["xdp"]["packets"].is_object());
        assert!(run.running());
        run.stop().unwrap();
    }

    /// An interface that already has an XDP program (another instance, unpinned) is refused
    /// in one line saying so, read from the attach's errno (EBUSY).
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn an_interface_with_a_program_already_is_refused_in_one_line() {
        require_root();
        let a = Netns::new("op-busy-a").unwrap();
        let b = Netns::new("op-busy-b").unwrap();
        veth(&a, "opba0", "198.18.7.1/24", &b, "opbb0", "198.18.7.2/24").unwrap();
        let args = ["run", "--iface", "opbb0", "--no-echo", "--no-pin", "--no-metrics"];
        let first = Instance::start(&b, "first", sctp_user_bin(), &args, "Ctrl-C").unwrap();
        let (ok, _, err) = sctp_user_in(&b, &args);
        assert!(!ok);
        assert!(err.contains("opbb0 already has an XDP program attached"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(first.stop().unwrap().success());
    }

    /// SIGTERM with a full association table (65,000 handshakes from an INIT flood) stops the
    /// instance with a report of a page: the tables list their busiest rows, not every one.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn sigterm_with_a_full_table_stops_with_a_bounded_report() {
        require_root();
        let a = Netns::new("op-full-a").unwrap();
        let b = Netns::new("op-full-b").unwrap();
        veth(&a, "opfa0", "198.18.8.1/24", &b, "opfb0", "198.18.8.2/24").unwrap();
        let args = ["run", "--iface", "opfb0", "--no-echo", "--no-pin"];
        let run = Instance::start(&b, "full", sctp_user_bin(), &args, "metrics on").unwrap();
        let mac = integration_tests::raw::mac_of(&b, "opfb0");
        let mac = mac.map(|x| format!("{x:02x}")).join(":");
        let flood = ["flood", "--iface", "opfa0", "--dst-mac", &mac, "--to", "198.18.8.2:36412"];
        let (ok, _, err) = sctp_user_in(&a, &[&flood[..], &["--sources", "65000", "--count", "130000"]].concat());
        assert!(ok, "{err}");
        std::thread::sleep(std::time::Duration::from_secs(2));
        let tracked = b.stats().unwrap()["associations_summary"]["tracked"].as_u64().unwrap();
        assert!(tracked >= 60_000, "the table holds the flood's handshakes: {tracked}");
        let started = std::time::Instant::now();
        let (status, report) = run.stop_with(libc::SIGTERM).unwrap();
        eprintln!("stopped {tracked} associations in {:?}, {} lines of report", started.elapsed(), report.len());
        assert!(status.success());
        assert!(report.len() < 200, "a page, not the whole table: {} lines", report.len());
        assert!(report.iter().any(|l| l.contains("more association(s)")), "it says how many more");
    }
}
