//! `inspect`'s two engines and its clock: the host engine (the parser compiled for the
//! host) and the kernel engine (the XDP program through `BPF_PROG_TEST_RUN`) print the
//! same JSON on random and mutated packets under rules, and both judge time-based rules on
//! the capture's timestamps, not on the replay's own clock.

use integration_tests::{
    captures_dir, compile_rules,
    corpus::{mutate, seeds},
    inspect_json, inspect_json_on, require_root, Rng, TempCapture,
};
use sctp_common::{
    builder::{app, Chunk, SctpPacket, V4},
    parse::message::ppid,
};
use sctp_user::{replay::engine::Kind, rules::Compiled};
use serde_json::Value;

const SECOND: u64 = 1_000_000_000;
/// 2026-01-01, a capture's kind of time.
const T0: u64 = 1_767_225_600 * SECOND;

/// Message rules of both kinds, about messages the seeds and the shared captures carry.
const MESSAGE_RULES: &str = r#"
deny-message = ["S1AP 17 successful", "Diameter Update-Location answer", "M3UA DATA"]
message-rate = ["NGAP UplinkNASTransport 20/s burst 5", "NGAP NGSetup 1/s", "Diameter Credit-Control request 10/s"]
"#;

/// Frames and their capture times.
type Frames = Vec<(u64, Vec<u8>)>;
/// `n` frames, `gap_ns` apart.
type MakeFrames = fn(u64, u64) -> Frames;

/// `n` INITs from one source, `gap_ns` apart.
fn inits(n: u64, gap_ns: u64) -> Frames {
    (0..n)
        .map(|i| {
            let tag = u32::try_from(i + 1).unwrap();
            let f = SctpPacket::new(V4, 0, vec![Chunk::init(1, tag, 65_536, 4, 4, tag)]).frame();
            (T0 + i * gap_ns, f)
        })
        .collect()
}

fn drops(j: &Value) -> u64 {
    j["verdicts"]["drop"].as_u64().unwrap()
}

/// `n` NGAP `InitialUEMessage`s of one association, `gap_ns` apart.
fn initial_ue_messages(n: u64, gap_ns: u64) -> Frames {
    (0..n)
        .map(|i| {
            let tsn = u32::try_from(i + 1).unwrap();
            let f = SctpPacket::new(V4, 7, vec![Chunk::message(tsn, ppid::NGAP, &app::ap(0, 15))]).frame();
            (T0 + i * gap_ns, f)
        })
        .collect()
}

/// INIT and message rates are judged on the capture's timestamps.
fn rates_are_judged_on_capture_time(engine: Kind) {
    let cases: [(&str, MakeFrames); 2] = [
        ("init-rate = 2\ninit-burst = 2", inits),
        (r#"message-rate = ["NGAP InitialUEMessage 2/s burst 2"]"#, initial_ue_messages),
    ];
    for (text, frames) in cases {
        let rules = compile_rules(text);
        // One a second is within 2 a second, however fast the replay runs.
        let slow = TempCapture::new("rated-1s", &frames(100, SECOND));
        assert_eq!(drops(&inspect_json(&slow.0, engine, &rules)), 0, "{engine:?}, {text}: one a second");
        // The same 100 within 99 ms: the burst passes, the rest is over the rate.
        let fast = TempCapture::new("rated-1ms", &frames(100, SECOND / 1000));
        let d = drops(&inspect_json(&fast.0, engine, &rules));
        assert!((97..=98).contains(&d), "{engine:?}, {text}: 100 in 99 ms at 2/s (burst 2): {d} dropped");
    }
}

/// 20,000 random and mutated packets, 3 ms apart.
fn mutated_capture() -> TempCapture {
    const PACKETS: u64 = 20_000;
    let seeds = seeds();
    let mut rng = Rng(0x1a5e_c0de_0bad_cafe);
    let frames: Vec<(u64, Vec<u8>)> = (0..PACKETS)
        .map(|i| {
            let seed = &seeds[rng.below(seeds.len())];
            (T0 + i * 3_000_000, mutate(&mut rng, seed))
        })
        .collect();
    TempCapture::new("mutated", &frames)
}

/// Tests anyone can run: no privileges.
mod host {
    use super::*;

    #[test]
    fn host_engine_judges_rates_on_capture_time() {
        rates_are_judged_on_capture_time(Kind::Host);
    }

    #[test]
    fn timestamps_going_backwards_are_counted_and_never_turn_the_clock_back() {
        let mut frames = inits(10, SECOND);
        frames.swap(3, 7);
        let cap = TempCapture::new("backwards", &frames);
        let j = inspect_json(&cap.0, Kind::Host, &compile_rules("init-rate = 1\ninit-burst = 1"));
        // Stamped 0, 1, 2, 7, 4, 5, 6, 3, 8, 9 s: the four after the 7 are earlier than it and
        // replayed at 7 s, the latest time seen. At one INIT a second, four of the five INITs
        // at 7 s are dropped; a clock that went back would have let them through.
        assert_eq!(j["timestamps_backwards"], 4, "{j}");
        assert_eq!(drops(&j), 4, "{j}");
    }

    /// The host engine spread over threads (associations dealt out by their ports) counts
    /// exactly as on one, flows, tags and checksums included.
    #[test]
    fn host_engine_on_several_threads_counts_as_on_one() {
        let cap = mutated_capture();
        let mut files = vec![cap.0.clone()];
        if let Some(dir) = captures_dir() {
            files.extend(
                std::fs::read_dir(dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap")),
            );
        } else {
            eprintln!("../shared/captures is absent: the random and mutated packets only");
        }
        let rules = compile_rules("validate-vtag = true\nvtag-learn = 5\nmax-chunks = 16");
        for file in &files {
            let one = inspect_json_on(file, Kind::Host, &rules, 1);
            for threads in [2, 4] {
                let many = inspect_json_on(file, Kind::Host, &rules, threads);
                assert_eq!(one, many, "{}: {threads} threads count otherwise than one", file.display());
            }
        }
    }
}

/// Tests of the XDP program itself: as root, on this host and again in the VM on every
/// kernel.
mod kernel {
    use super::*;

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn kernel_engine_judges_rates_on_capture_time() {
        require_root();
        rates_are_judged_on_capture_time(Kind::Kernel);
    }

    /// Random and mutated packets (with tags, INITs and rates in play): both engines print
    /// the same JSON.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn engines_agree_on_random_and_mutated_packets_under_rules() {
        require_root();
        let cap = mutated_capture();
        for rules in [
            Compiled::none(),
            compile_rules(
                "validate-vtag = true\nvtag-learn = 5\ninit-rate = 20\nglobal-init-rate = 100\nmax-chunks = 16",
            ),
            compile_rules(MESSAGE_RULES),
        ] {
            let host = inspect_json(&cap.0, Kind::Host, &rules);
            let kernel = inspect_json(&cap.0, Kind::Kernel, &rules);
            assert_eq!(host["packets"]["total"], 20_000, "every frame replayed");
            assert_eq!(host, kernel, "the engines disagree");
        }
    }

    /// Message rules on the shared captures of NGAP, S1AP and Diameter: both engines drop
    /// the same packets, and drop some.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn engines_agree_under_message_rules_on_real_signalling() {
        require_root();
        let Some(dir) = captures_dir() else {
            eprintln!("skipped: ../shared/captures is absent");
            return;
        };
        let rules = compile_rules(MESSAGE_RULES);
        let mut dropped = 0;
        for name in ["open5gs__testregistration.pcapng", "open5gs__testattach.pcapng", "pcaptoparquet__30_sctp.pcapng"]
        {
            let host = inspect_json(&dir.join(name), Kind::Host, &rules);
            let kernel = inspect_json(&dir.join(name), Kind::Kernel, &rules);
            assert_eq!(host, kernel, "{name}: the engines disagree");
            dropped +=
                host["drops"]["message_denied"].as_u64().unwrap() + host["drops"]["message_rate"].as_u64().unwrap();
        }
        assert!(dropped > 100, "only {dropped} packets dropped by message rules");
    }
}
