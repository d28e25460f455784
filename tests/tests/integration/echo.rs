//! The echo server against real peers, inside the VM (kernel SCTP): our client, socat,
//! ncat and python3's socket module; big and oversized messages, many associations, an
//! abrupt ABORT and a peer that stops reading. The join must account for every message.

use integration_tests::{echo_env::EchoEnv, require_kernel_sctp};
use serde_json::Value;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

const PY_SEQPACKET: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_SEQPACKET, socket.IPPROTO_SCTP)
s.settimeout(20)
for i in range(3):
    msg = b"python message %d" % i
    s.sendto(msg, ("198.18.0.2", 36412))
    data, _ = s.recvfrom(65536)
    assert data == msg, (data, msg)
print("python ok")
"#;

const PY_ABORT: &str = r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
s.connect(("198.18.0.2", 36412))
s.send(b"then abort")
s.settimeout(20)
assert s.recv(100) == b"then abort"
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()  # linger 0: ABORT instead of SHUTDOWN
print("aborted")
"#;

const PY_NO_READ: &str = r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("198.18.0.2", 36412))
s.setblocking(False)
sent = 0
deadline = time.time() + 20
while time.time() < deadline and sent < 3000:
    try:
        s.send(b"x" * 1000)
        sent += 1
    except BlockingIOError:
        time.sleep(0.01)
print("sent", sent)
time.sleep(3)
"#;

/// `sh -c HOLD_UNTIL_ECHOED sh LINE PEER`: sends LINE through the peer command PEER
/// (stdin to the association, the association to stdout) and keeps its stdin open until
/// the echo is back, at most 60 s. SCTP has no half-close: the peer's EOF ends the
/// association, and a fixed wait lost the echo on a loaded 5.10 VM.
const HOLD_UNTIL_ECHOED: &str = r#"out=$(mktemp)
{ echo "$1"; i=0; until grep -q "$1" "$out" || [ $i -ge 600 ]; do sleep 0.1; i=$((i+1)); done; } | sh -c "$2" > "$out"
status=$?
cat "$out"; rm -f "$out"
exit $status"#;

/// Tests that need root and kernel SCTP: run in the VM on every kernel.
mod vm {
    use super::*;

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn join_accounts_for_every_message_per_stream_and_ppid() {
        require_kernel_sctp();
        let env = EchoEnv::start("ej", &[]);
        let (ok, c) = env.client(&[
            "--associations",
            "4",
            "--streams",
            "8",
            "--ppid",
            "18,60,46",
            "--unordered",
            "0.25",
            "--messages",
            "40",
            "--size",
            "100,1000",
            "--window",
            "4",
        ]);
        assert!(ok, "client: {c}");
        assert_eq!(n(&c["echoed"]), 160);
        let r = env.stop();
        assert_eq!(n(&r["echo"]["messages_in"]), 160);
        assert_eq!(n(&r["echo"]["messages_out"]), 160);
        let assocs = r["join"]["associations"].as_array().unwrap();
        assert_eq!(assocs.len(), 4);
        for a in assocs {
            // No fragmentation (messages below the MTU) and no loss: one DATA chunk per message.
            assert_eq!(a["socket"]["messages"], a["wire"]["data_chunks"], "{a}");
            assert_eq!(n(&a["matched_messages"]), 40, "{a}");
            assert_eq!(a["socket"]["per_stream"], a["wire"]["per_stream"], "{a}");
            assert_eq!(a["socket"]["per_ppid"], a["wire"]["per_ppid"], "{a}");
            assert_eq!(a["socket"]["per_stream"].as_object().unwrap().len(), 8, "{a}");
            assert!(a["wire"]["inbound_vtag"].is_u64() && a["wire"]["outbound_vtag"].is_u64(), "{a}");
            assert_eq!(n(&a["latency"]["count"]), 40, "{a}");
            assert_eq!(a["delivery_ratio"].as_f64(), Some(1.0));
            // The kernel's own counters agree: no duplicates received.
            assert_eq!(a["socket"]["kernel"]["idupchunks"], a["wire"]["duplicate_tsns"], "{a}");
        }
        assert_eq!(n(&r["join"]["latency"]["count"]), 160);
        assert_eq!(r["join"]["data_events_lost"], 0, "the DATA ring had room for every event");
    }

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn messages_bigger_than_the_receive_buffer_are_reassembled() {
        require_kernel_sctp();
        let env = EchoEnv::start("eb", &["--streams", "32"]);
        // 300 KB: more than the server's 256 KiB read buffer; many DATA fragments each.
        let (ok, c) = env.client(&["--streams", "32", "--messages", "4", "--size", "300000,70000"]);
        assert!(ok, "client: {c}");
        let r = env.stop();
        let a = &r["join"]["associations"][0];
        assert_eq!(n(&a["socket"]["messages"]["count"]), 4);
        assert_eq!(n(&a["socket"]["messages"]["bytes"]), 740_000);
        // Fragmented: more chunks than messages, the same user bytes.
        assert!(n(&a["wire"]["data_chunks"]["count"]) > 4);
        assert_eq!(n(&a["wire"]["data_chunks"]["bytes"]), 740_000);
    }

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn an_oversized_message_aborts_only_its_association() {
        require_kernel_sctp();
        let env = EchoEnv::start("eo", &["--max-message", "10000"]);
        let (ok, _) = env.client(&["--messages", "1", "--size", "20000", "--timeout", "10"]);
        assert!(!ok, "the oversized message must not be echoed");
        let (ok, c) = env.client(&["--messages", "10", "--size", "500"]);
        assert!(ok, "the server must keep serving: {c}");
        let r = env.stop();
        assert_eq!(n(&r["echo"]["oversize_aborts"]), 1);
        assert_eq!(n(&r["echo"]["messages_out"]), 10);
        assert!(r["xdp"]["chunks"].get("6").is_none(), "the ABORT leaves from the server: not seen on its ingress");
    }

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn more_than_a_hundred_concurrent_associations() {
        require_kernel_sctp();
        let env = EchoEnv::start("em", &[]);
        let (ok, c) = env.client(&["--associations", "120", "--messages", "3", "--size", "200"]);
        assert!(ok, "client: {c}");
        let r = env.stop();
        assert_eq!(n(&r["echo"]["associations_total"]), 120);
        assert_eq!(n(&r["echo"]["messages_out"]), 360);
        let joined = r["join"]["associations"].as_array().unwrap();
        assert_eq!(joined.len(), 120);
        assert!(joined.iter().all(|a| n(&a["matched_messages"]) == 3), "every message matched to its DATA chunk");
    }

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn third_party_peers_socat_ncat_and_python() {
        require_kernel_sctp();
        let env = EchoEnv::start("e3", &[]);
        let (ok, out) = env.in_client(
            "sh",
            &["-c", HOLD_UNTIL_ECHOED, "sh", "socat-says-hi", "socat -t 6 - SCTP:198.18.0.2:36412"],
            None,
        );
        assert!(ok && out.trim() == "socat-says-hi", "socat: {out:?}");
        let (ok, out) = env.in_client(
            "sh",
            &["-c", HOLD_UNTIL_ECHOED, "sh", "ncat-says-hi", "ncat --sctp -w 10 198.18.0.2 36412"],
            None,
        );
        assert!(ok && out.contains("ncat-says-hi"), "ncat: {out:?}");
        let (ok, out) = env.in_client("python3", &["-c", PY_SEQPACKET], None);
        assert!(ok && out.contains("python ok"), "python: {out:?}");
        let r = env.stop();
        assert_eq!(n(&r["echo"]["associations_total"]), 3);
        assert_eq!(n(&r["echo"]["messages_out"]), 5);
        for a in r["join"]["associations"].as_array().unwrap() {
            assert_eq!(a["socket"]["messages"], a["wire"]["data_chunks"], "{a}");
        }
    }

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn an_abrupt_abort_from_a_peer_ends_only_its_association() {
        require_kernel_sctp();
        let env = EchoEnv::start("ea", &[]);
        let (ok, out) = env.in_client("python3", &["-c", PY_ABORT], None);
        assert!(ok && out.contains("aborted"), "python: {out:?}");
        let (ok, c) = env.client(&["--messages", "5"]);
        assert!(ok, "client after the ABORT: {c}");
        let r = env.stop();
        assert!(n(&r["xdp"]["chunks"]["6"]) >= 1, "XDP saw the ABORT");
        assert_eq!(n(&r["echo"]["associations_total"]), 2);
        assert_eq!(n(&r["echo"]["messages_out"]), 6);
    }

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn a_peer_that_stops_reading_sheds_its_echoes_not_the_server() {
        require_kernel_sctp();
        let env = EchoEnv::start("es", &["--queue-limit", "8"]);
        let hog = std::thread::scope(|s| {
            let hog = s.spawn(|| env.in_client("python3", &["-c", PY_NO_READ], None));
            std::thread::sleep(std::time::Duration::from_secs(8));
            // Meanwhile another association is served normally.
            let (ok, c) = env.client(&["--messages", "20", "--size", "300"]);
            assert!(ok, "a well-behaved peer must still be served: {c}");
            hog.join().unwrap()
        });
        assert!(hog.0, "python: {}", hog.1);
        let r = env.stop();
        assert!(n(&r["echo"]["shed"]) > 0, "echoes to the non-reading peer are shed and counted: {}", r["echo"]);
        let total_in = n(&r["echo"]["messages_in"]);
        let e = &r["echo"];
        assert_eq!(
            n(&e["messages_out"]) + n(&e["shed"]) + n(&e["send_errors"]),
            total_in,
            "no echo lost silently: {e}"
        );
    }

    #[test]
    #[ignore = "needs root and kernel SCTP: run in the VM by cargo xtask test"]
    fn a_multi_homed_dual_stack_endpoint_serves_ipv4_and_ipv6() {
        require_kernel_sctp();
        // One port, two addresses of two families: one endpoint through sctp_bindx.
        let env = EchoEnv::start("e6", &["--listen", "198.18.0.2:36412", "--listen", "[2001:db8::2]:36412"]);
        let (ok, c) =
            env.client_to("[2001:db8::2]:36412", &["--associations", "2", "--messages", "10", "--ppid", "60"]);
        assert!(ok, "IPv6 client: {c}");
        let (ok, c) = env.client_to("198.18.0.2:36412", &["--messages", "10"]);
        assert!(ok, "IPv4 client: {c}");
        let r = env.stop();
        assert_eq!(n(&r["echo"]["associations_total"]), 3);
        assert!(n(&r["xdp"]["packets"]["ipv6"]) > 0, "XDP parsed the IPv6 packets");
        let assocs = r["join"]["associations"].as_array().unwrap();
        let v6: Vec<_> = assocs.iter().filter(|a| a["peer_addrs"][0].as_str().unwrap().starts_with('[')).collect();
        assert_eq!(v6.len(), 2, "{assocs:?}");
        for a in assocs {
            assert_eq!(n(&a["matched_messages"]), 10, "the join works for both families: {a}");
        }
    }
}
