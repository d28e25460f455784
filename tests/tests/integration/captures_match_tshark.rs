//! `sctp-user inspect` against tshark, the reference dissector, on every real capture in
//! ../shared/captures: SCTP packets, chunks per type, DATA chunks and payload bytes,
//! packets per flow and bad checksums must be exactly equal; and the two engines (host
//! and kernel) must print the same JSON.

use std::path::Path;

use integration_tests::{
    captures_dir, inspect_json, require_root, shared_captures,
    tshark::{our_view, tshark_view},
};
use sctp_user::{replay::engine::Kind, rules::Compiled};
use serde_json::Value;

fn our_json(file: &Path, engine: Kind) -> Value {
    inspect_json(file, engine, &Compiled::none())
}

/// A capture whose packet has more chunks than the walk's bound (16,143 ABORT chunks in one
/// 64 KiB packet): the program counts the first `MAX_CHUNKS` and flags the packet as a
/// truncated walk, never silently cutting it. Everything else must still match tshark.
const MAX_CHUNKS_CAPTURE: &str = "suricata-verify__sctp-max-chunks.pcap";

/// `inspect`'s JSON for one shared capture, or `None` (said plainly) without the shared
/// folder.
fn replay_shared(test: &str, file: &str) -> Option<Value> {
    let Some(dir) = captures_dir() else {
        eprintln!("SKIPPED {test}: ../shared/captures is absent");
        return None;
    };
    Some(our_json(&dir.join(file), Kind::Host))
}

/// Tests anyone can run: no privileges.
mod host {
    use super::*;

    #[test]
    fn inspect_matches_tshark_on_every_capture() {
        let Some(files) = shared_captures("inspect_matches_tshark_on_every_capture") else { return };
        assert!(files.len() >= 10, "expected the shared capture set, found {} files", files.len());
        for file in &files {
            let name = file.file_name().unwrap().to_str().unwrap();
            let theirs = tshark_view(file);
            let json = our_json(file, Kind::Host);
            let mut ours = our_view(&json);
            if name == MAX_CHUNKS_CAPTURE {
                let limit = sctp_common::parse::MAX_CHUNKS as u64;
                assert_eq!(json["errors"]["chunk_walk_limit"], 1, "{name}: walk limit flagged");
                assert_eq!(ours.chunks.values().sum::<u64>(), limit, "{name}: first {limit} chunks counted");
                assert!(theirs.chunks.values().sum::<u64>() > limit, "{name}: capture no longer exceeds the bound");
                ours.chunks = theirs.chunks.clone();
            }
            assert_eq!(ours, theirs, "{name}: inspect and tshark disagree");
            eprintln!("{name}: {} SCTP packets, {} flows match tshark", theirs.sctp_packets, theirs.flows.len());
        }
    }

    #[test]
    fn fragmented_ip_is_counted_as_first_and_later_fragment() {
        // Frame 32 of this capture is the first fragment of an SCTP packet, frame 33 the rest.
        // tshark reassembles them into one SCTP packet; we parse the first fragment and count
        // the second as a later fragment: the same one SCTP packet, and the chunk cut by the
        // fragment boundary is not reported as malformed.
        let Some(j) =
            replay_shared("fragmented_ip_is_counted_as_first_and_later_fragment", "open5gs__nonipsec_reg.pcapng")
        else {
            return;
        };
        assert_eq!(j["packets"]["first_fragments"], 1);
        assert_eq!(j["packets"]["later_fragments"], 1);
        assert_eq!(j["packets"]["fragment_cut_walks"], 1);
        assert_eq!(j["packets"]["malformed"], 0);
    }

    #[test]
    fn truncated_data_chunk_is_counted_and_flagged() {
        // pcapflowlab's capture ends 1-3 bytes after the common header: the start of a chunk
        // header cut short. tshark dissects no chunk there; we flag the packet with that reason.
        let Some(j) = replay_shared(
            "truncated_data_chunk_is_counted_and_flagged",
            "pcapflowlab__13_sctp_truncated_data_chunk_header.pcap",
        ) else {
            return;
        };
        assert_eq!(j["packets"]["malformed"], 1, "{j}");
        assert_eq!(j["errors"]["trailing_bytes"], 1, "{j}");
    }
}

/// Tests that need root on this host (BPF, namespaces), not kernel SCTP.
mod root {
    use super::*;

    /// The host engine and the kernel's (the XDP program itself) count the same on every
    /// capture, on the capture's clock.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn both_engines_agree_on_every_capture() {
        require_root();
        let Some(files) = shared_captures("both_engines_agree_on_every_capture") else { return };
        for file in &files {
            let host = our_json(file, Kind::Host);
            let kernel = our_json(file, Kind::Kernel);
            assert_eq!(host, kernel, "{}: the engines disagree", file.display());
        }
        eprintln!("{} captures: host and kernel engines agree", files.len());
    }
}
