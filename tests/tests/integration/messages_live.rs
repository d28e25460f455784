//! Application messages over real kernel SCTP associations, from python's socket module
//! with chosen PPIDs and payloads: counted at XDP, and a message rate rule stopping a
//! storm while the other procedures pass.

use integration_tests::{echo_env::EchoEnv, require_kernel_sctp};
use serde_json::Value;

/// Two associations to the echo server: one sends a storm of NGAP `InitialUEMessage`s at
/// once, the other then NG Setup requests one at a time, each waiting for its echo.
/// Prints, as JSON, how many echoes of each came back and how long the setups took.
const PY_STORM: &str = r#"
import json, socket, struct, sys, time
SOL_SCTP, SCTP_SNDINFO, NGAP = 132, 2, 60
STORM, SETUPS = int(sys.argv[1]), int(sys.argv[2])

def connect():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    s.connect(("198.18.0.2", 36412))
    return s

def send(s, outcome, procedure, n):
    # An NGAP PDU's first octets (TS 38.413, aligned PER): the outcome, the procedure
    # code, criticality and a length; then a number to tell the messages apart.
    body = bytes([outcome << 5, procedure, 0, 4]) + n.to_bytes(4, "big")
    info = struct.pack("=HHIII", 0, 0, socket.htonl(NGAP), 0, 0)
    s.sendmsg([body], [(SOL_SCTP, SCTP_SNDINFO, info)])

storm, calm = connect(), connect()
for n in range(STORM):
    send(storm, 0, 15, n)
start = time.time()
calm.settimeout(20)
for n in range(SETUPS):
    send(calm, 0, 21, n)
    assert len(calm.recv(100)) == 8
took = time.time() - start
storm.settimeout(0.5)
echoed = 0
try:
    while echoed < STORM:
        echoed += len(storm.recv(100)) // 8
except socket.timeout:
    pass
print(json.dumps({"setups": SETUPS, "setup_seconds": took, "storm_echoed": echoed}))
# Linger 0: the storm's association ends with an ABORT, its retransmissions with it.
storm.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
storm.close()
calm.close()
"#;

/// Diameter over SCTP from python's socket module (PPID 46): a server answering each
/// request, 20 ms later, with the Result-Code its client asked for in its last AVP (none
/// where it asked for 1), or a client sending requests one at a time, then a watchdog
/// request left unanswered; both run as `python3 -c PY_DIAMETER server|client [N]`.
const PY_DIAMETER: &str = r#"
import json, socket, struct, sys, time
SOL_SCTP, SCTP_SNDINFO, DIAMETER, ADDR = 132, 2, 46, ("198.18.0.2", 3868)

def avp(code, data):
    head = struct.pack("!IB", code, 0x40) + (8 + len(data)).to_bytes(3, "big")
    return head + data + b"\0" * (-len(data) % 4)

def message(request, command, app, ids, avps):
    body = b"".join(avps)
    flags = 0x80 if request else 0
    return (bytes([1]) + (20 + len(body)).to_bytes(3, "big") + bytes([flags]) + command.to_bytes(3, "big")
            + struct.pack("!III", app, *ids) + body)

def send(s, m):
    s.sendmsg([m], [(SOL_SCTP, SCTP_SNDINFO, struct.pack("=HHIII", 0, 0, socket.htonl(DIAMETER), 0, 0))])

def parse(m):
    command = int.from_bytes(m[5:8], "big")
    app, hop, e2e = struct.unpack("!III", m[8:20])
    return command, app, (hop, e2e), int.from_bytes(m[-4:], "big")

if sys.argv[1] == "server":
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(ADDR)
    listener.listen(1)
    conn, _ = listener.accept()
    while True:
        m = conn.recv(65536)
        if not m:
            break
        command, app, ids, wanted = parse(m)
        if wanted == 1:
            continue
        time.sleep(0.02)
        send(conn, message(False, command, app, ids, [avp(263, b"hss;1"), avp(268, struct.pack("!I", wanted))]))
else:
    n = int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    for _ in range(100):
        try:
            s.connect(ADDR)
            break
        except OSError:
            time.sleep(0.1)
    s.settimeout(20)
    results = {}
    # A capabilities exchange, then n credit controls: every fifth refused (5012).
    asks = [(257, 0, 2001)] + [(272, 4, 5012 if i % 5 == 4 else 2001) for i in range(n)]
    for i, (command, app, wanted) in enumerate(asks):
        send(s, message(True, command, app, (i + 1, 1000 + i), [avp(263, b"mme;1"), avp(1, struct.pack("!I", wanted))]))
        got = parse(s.recv(65536))
        assert got[:3] == (command, app, (i + 1, 1000 + i)), got
        results[str(got[3])] = results.get(str(got[3]), 0) + 1
    # A Device-Watchdog request the server leaves unanswered.
    send(s, message(True, 280, 0, (9999, 9999), [avp(263, b"mme;1"), avp(1, struct.pack("!I", 1))]))
    time.sleep(0.5)
    print(json.dumps(results))
    s.close()
"#;

/// The count of messages of (name, kind) in a `messages` list.
fn count(messages: &Value, name: &str, kind: &str) -> u64 {
    messages
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == name && m["kind"] == kind)
        .map(|m| m["count"].as_u64().unwrap())
        .sum()
}

/// Tests that need kernel SCTP: in the VM on every kernel.
mod vm {
    use super::*;

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn a_message_rate_rule_stops_a_storm_while_the_other_procedures_pass() {
        const STORM: u64 = 60;
        const SETUPS: u64 = 10;
        require_kernel_sctp();
        let env = EchoEnv::start("ms", &["--message-rate", "NGAP InitialUEMessage initiating 2/s burst 5"]);
        let (ok, out) = env.in_client("python3", &["-c", PY_STORM, &STORM.to_string(), &SETUPS.to_string()], None);
        assert!(ok, "python: {out}");
        let peer: Value = serde_json::from_str(out.trim()).unwrap();
        // Every NG Setup came back; of the storm, at most what the rate let through in the
        // time the python peer waited (the burst, 2 a second after it, and no more).
        assert_eq!(peer["setups"], SETUPS);
        let echoed = peer["storm_echoed"].as_u64().unwrap();
        let waited = peer["setup_seconds"].as_f64().unwrap() + 1.0;
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "seconds of a test")]
        let allowed = 5 + 2 * waited.ceil() as u64;
        assert!(echoed < STORM && echoed <= allowed, "{echoed} of the storm echoed in {waited:.1} s: {peer}");
        // The exporter publishes once a second.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let stats: Value = serde_json::from_str(&env.http_get("/stats")).unwrap();
        let dropped = stats["xdp"]["drops"]["message_rate"].as_u64().unwrap();
        assert!(dropped > 0, "no packet dropped by the rate: {}", stats["xdp"]["drops"]);
        // Each NG Setup counted once arriving; each InitialUEMessage the storm sent once,
        // whether dropped or not (it crossed the wire), its retransmissions as resent.
        let arriving = &stats["messages"];
        assert_eq!(count(arriving, "NGSetup", "initiating"), SETUPS, "{arriving}");
        let storm = count(arriving, "InitialUEMessage", "initiating");
        assert!(storm > echoed && storm <= STORM, "{storm} InitialUEMessages counted: {arriving}");
        let rules = stats["xdp"]["rules"].as_array().unwrap();
        let hits: u64 = rules.iter().map(|r| r["drops"].as_u64().unwrap()).sum();
        assert_eq!(hits, dropped, "every drop charged to the rate rule: {rules:?}");
        env.stop();
    }

    /// Diameter requests from a python client to a python server over kernel SCTP, by
    /// the XDP program's side: requests counted arriving, answers leaving (TC egress) with
    /// their Result-Codes, each answer matched in the kernel with its request and timed
    /// (the server answers 20 ms late), the request never answered counted after the
    /// timeout, in `/stats` and the metrics.
    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn diameter_requests_and_answers_are_counted_both_ways_with_their_results() {
        const CCRS: u64 = 20;
        require_kernel_sctp();
        let env = EchoEnv::start("md", &[]);
        let mut server = std::process::Command::new("ip")
            .args(["netns", "exec", &env.server.name, "python3", "-c", PY_DIAMETER, "server"])
            .spawn()
            .unwrap();
        let (ok, out) = env.in_client("python3", &["-c", PY_DIAMETER, "client", &CCRS.to_string()], None);
        let _ = server.wait();
        assert!(ok, "python: {out}");
        let peer: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!((peer["2001"].as_u64(), peer["5012"].as_u64()), (Some(1 + CCRS - 4), Some(4)), "{peer}");
        // The unanswered request counts once its answer is 10 s late; the exporter
        // publishes once a second.
        std::thread::sleep(std::time::Duration::from_millis(11_500));
        let stats: Value = serde_json::from_str(&env.http_get("/stats")).unwrap();
        let (arriving, leaving) = (&stats["messages"], &stats["messages_leaving"]);
        let (global, egress) = (&stats["xdp"]["packets"], &stats["egress"]["packets"]);
        // Requests arrive (XDP), answers leave (TC egress): one map of requests for both.
        assert_eq!(global["diameter_requests_waiting"].as_u64(), Some(CCRS + 2), "{global}");
        assert_eq!(egress["diameter_answers_timed"].as_u64(), Some(CCRS + 1), "{egress}");
        assert_eq!(egress["diameter_answers_unmatched"].as_u64(), Some(0), "{egress}");
        let watchdog = arriving.as_array().unwrap().iter().find(|m| m["name"] == "Device-Watchdog").unwrap();
        assert_eq!(watchdog["unanswered"].as_u64(), Some(1), "{watchdog}");
        assert_eq!(count(arriving, "Credit-Control", "request"), CCRS, "{arriving}");
        assert_eq!(count(arriving, "Capabilities-Exchange", "request"), 1, "{arriving}");
        assert_eq!(count(leaving, "Credit-Control", "answer"), CCRS, "{leaving}");
        let cca = leaving.as_array().unwrap().iter().find(|m| m["name"] == "Credit-Control").unwrap();
        assert_eq!(cca["results"], serde_json::json!({"2001": CCRS - 4, "5012": 4}), "{cca}");
        let response = &cca["response_us"];
        assert_eq!(response["count"].as_u64(), Some(CCRS), "{cca}");
        let (min, max) = (response["min"].as_u64().unwrap(), response["max"].as_u64().unwrap());
        assert!(min >= 20_000 && max < 10_000_000, "the server answers 20 ms late: {cca}");
        let text = env.http_get("/metrics");
        let samples = integration_tests::parse_samples(&text);
        let refused =
            "sctp_diameter_answers_total{direction=\"leaving\",command=\"Credit-Control\",result_class=\"5xxx\"}";
        assert_eq!(samples.get(refused).copied(), Some(4.0), "{text}");
        let timed = "sctp_diameter_response_seconds_count{direction=\"leaving\",command=\"Credit-Control\"}";
        assert_eq!(samples.get(timed).copied(), Some(f64::from(u8::try_from(CCRS).unwrap())), "{text}");
        let late = "sctp_diameter_unanswered_total{direction=\"arriving\",command=\"Device-Watchdog\"}";
        assert_eq!(samples.get(late).copied(), Some(1.0), "{text}");
        env.stop();
    }
}
