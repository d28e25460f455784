//! The association table of a live `run` against real kernel SCTP, inside the VM: our
//! client's associations with the echo server, both directions counted at the server's
//! end (XDP arriving, TC egress leaving), must equal what `inspect` finds in dumpcap's
//! capture of the same traffic on the client's end of the veth.

use std::time::Duration;

use integration_tests::{echo_env::EchoEnv, instance::Instance, require_kernel_sctp, timeless};
use sctp_user::observe::engine::Kind;
use serde_json::Value;

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
    let live: Vec<Value> = report["associations"].as_array().expect("the report lists associations").iter().map(timeless).collect();
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
