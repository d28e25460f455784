//! Every rule, judged by the XDP program (`BPF_PROG_TEST_RUN`) and by the host twin of the
//! same code: both must give each packet the verdict and the drop reason a user expects,
//! and count it against the rule that dropped it.

use integration_tests::{compile_rules, host_filter, pin_to_current_cpu, require_root, HostRun};
use sctp_common::{
    abi::Counter,
    builder::{app, Chunk, Ip, SctpPacket, V4, V6},
    parse::{message::ppid, Verdict},
    proto::chunk::{flag, ty},
};
use sctp_user::{
    bpf::{LoadOptions, XdpSctp},
    replay::engine::Kind,
    rules,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// A packet and what the rules must make of it: `None` passes, `Some(reason)` drops.
struct Case {
    what: &'static str,
    frame: Vec<u8>,
    drop: Option<Counter>,
}

fn case(what: &'static str, p: &SctpPacket, drop: Option<Counter>) -> Case {
    Case { what, frame: p.frame(), drop }
}

fn data(ip: Ip, vtag: u32, ppid: u32) -> SctpPacket {
    SctpPacket::new(ip, vtag, vec![Chunk::data(1, 0, 0, ppid, 20)])
}

fn with_ports(mut p: SctpPacket, src: u16, dst: u16) -> SctpPacket {
    p.src_port = src;
    p.dst_port = dst;
    p
}

const OTHER_V4: Ip = Ip::V4 { src: [198, 18, 7, 9], dst: [198, 18, 0, 2] };

/// Runs `cases` in order through a freshly loaded program with `rules` applied, and
/// through the host twin; checks verdicts, reasons and per-rule counts.
fn check(rules_toml: &str, cases: &[Case]) {
    pin_to_current_cpu();
    let compiled = compile_rules(rules_toml);
    let mut prog = XdpSctp::load(&LoadOptions::default()).unwrap();
    sctp_user::rules::apply(&mut prog, &compiled).unwrap();
    // A fresh program's first apply installs generation 1.
    let mut host = HostRun::with_filter(host_filter(&compiled, 1));
    let mut expected_drops = 0;
    for c in cases {
        let before = sctp_user::bpf::maps::global(&prog).unwrap();
        let (action, _) = prog.test_run(&c.frame, 1).unwrap();
        let host_verdict = host.process(&c.frame);
        let after = sctp_user::bpf::maps::global(&prog).unwrap();
        let want = if c.drop.is_some() { XDP_DROP } else { XDP_PASS };
        assert_eq!(action, want, "{rules_toml}: {}: kernel verdict", c.what);
        let host_want = if c.drop.is_some() { Verdict::Drop } else { Verdict::Pass };
        assert_eq!(host_verdict, host_want, "{rules_toml}: {}: host verdict", c.what);
        for reason in Counter::ALL.iter().filter(|r| r.is_drop()) {
            let delta = after.get(*reason) - before.get(*reason);
            let want = u64::from(c.drop == Some(*reason));
            assert_eq!(delta, want, "{rules_toml}: {}: drops for {}", c.what, reason.reason());
        }
        expected_drops += u64::from(c.drop.is_some());
        assert_eq!(after.counters, host.global.counters, "{rules_toml}: {}: kernel and host counters", c.what);
    }
    // Every drop is charged to a rule, and `rules show` reports it.
    let snap = sctp_user::snapshot::Snapshot::take(&prog).unwrap();
    let charged: u64 = snap.rules.0.iter().map(|r| r.drops).sum();
    assert_eq!(charged, expected_drops, "{rules_toml}: drops charged to rules: {:?}", snap.rules.0);
    assert_eq!(snap.global.rule_hits, host.global.rule_hits, "{rules_toml}: per-rule counts");
}

/// `inspect` of a shared capture with rules, through `engine`.
fn replay_with(file: &std::path::Path, engine: Kind, rules: &sctp_user::rules::Compiled) -> sctp_user::replay::Replay {
    let opts =
        sctp_user::replay::Options { engine, load: LoadOptions::default(), checksums: false, threads: 1, trace: false };
    sctp_user::replay::replay(file, &opts, rules).unwrap()
}

/// Tests anyone can run: no privileges.
mod host {
    use super::*;

    #[test]
    fn bad_rules_are_refused_with_a_clear_error() {
        for (toml_text, want) in [
            (r#"deny-src = ["198.18.0.0/33"]"#, "prefix length must be 0-32"),
            (r#"deny-src = ["not-an-address"]"#, "not an IPv4 or IPv6 address"),
            (r#"deny-chunk = ["NOPE"]"#, "unknown chunk type"),
            ("max-chunks = 40", "max-chunks must be 1-32"),
            ("init-rate = 0", "init-rate must be at least 1"),
            ("vtag-learn = 5", "only apply with validate-vtag"),
            ("validate-vtag = true\nvtag-learn = 9223372036854775807", "vtag-learn must be 0-31536000 seconds"),
            ("validate-vtag = true\nvtag-idle = 0", "vtag-idle must be 1-31536000"),
            ("init-rate = 10\ninit-burst = 0", "burst of init-rate must be at least 1"),
            ("max-data-chunk = 70000", "max-data-chunk must be 17-65535"),
            (r#"deny-message = ["NGAP NoSuchProcedure"]"#, "no NGAP message is named \"NoSuchProcedure\""),
            (r#"message-rate = ["NGAP InitialUEMessage"]"#, "give a rate"),
            (
                r#"deny-message = ["NGAP 1", "NGAP 2", "NGAP 3", "NGAP 4", "NGAP 5", "NGAP 6", "NGAP 7", "NGAP 8", "NGAP 9"]"#,
                "too many message rules: at most 8",
            ),
            (
                r#"deny-src = ["10.28.6.42/8"]"#,
                "bits set after the first 8: write 10.0.0.0/8 for the network, or /32 for the host",
            ),
            (r#"deny-src = ["2001:db8::1/32"]"#, "write 2001:db8::/32 for the network"),
            (
                r#"deny-src = ["::ffff:198.18.0.1/128"]"#,
                "an IPv4-mapped IPv6 address matches no packet: write the IPv4 address, e.g. 198.18.0.1/32",
            ),
            (
                r#"allow-src = ["198.18.0.0/15"]
deny-src = ["198.18.0.0/15"]"#,
                "both in deny-src and allow-src",
            ),
        ] {
            let config: rules::RuleConfig = toml::from_str(toml_text).unwrap();
            let err = rules::compile(&config).err().unwrap_or_else(|| panic!("{toml_text} accepted"));
            assert!(format!("{err:#}").contains(want), "{toml_text}: {err:#}");
        }
        // TOML errors name the line, the column and the line's key, on one line.
        for (text, want) in [
        ("deny-sources = []", "line 1, column 1 (deny-sources = []): unknown field `deny-sources`"),
        (
            "deny-ppid = [46]\ninit-rate = \"8\"",
            "line 2, column 13 (init-rate = \"8\"): invalid type: string \"8\", expected u32",
        ),
        (
            "deny-chunk = [true]",
            "line 1, column 15 (deny-chunk = [true]): invalid type: boolean `true`, expected a chunk type name (DATA, INIT, ABORT, ...) or number 0-255",
        ),
        ("deny-chunk = [300]", "chunk type 300 is not 0-255"),
    ] {
        let err = rules::config::parse(text).unwrap_err();
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    }
}

/// Tests of the XDP program itself: as root, on this host and again in the VM on every
/// kernel.
mod kernel {
    use super::*;

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn source_prefixes_longest_match_wins() {
        require_root();
        check(
            r#"deny-src = ["198.18.0.0/24", "2001:db8::/64"]"#,
            &[
                case("IPv4 source inside", &data(V4, 1, 18), Some(Counter::DropDenySrc)),
                case("IPv4 source outside", &data(OTHER_V4, 1, 18), None),
                case("IPv6 source inside", &data(V6, 1, 18), Some(Counter::DropDenySrc)),
            ],
        );
        check(
            r#"
        allow-src = ["198.18.0.0/15"]
        deny-src = ["198.18.7.0/24"]
        "#,
            &[
                case("allowed", &data(V4, 1, 18), None),
                case("denied inside the allowed range", &data(OTHER_V4, 1, 18), Some(Counter::DropDenySrc)),
                case("not allowed (IPv6)", &data(V6, 1, 18), Some(Counter::DropSrcNotAllowed)),
            ],
        );
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn ports_ppids_and_chunk_types() {
        require_root();
        check(
            "allow-port = [38412, 36412]",
            &[
                case("allowed port", &data(V4, 1, 18), None),
                case("other port", &with_ports(data(V4, 1, 18), 40000, 2905), Some(Counter::DropPortNotAllowed)),
            ],
        );
        let idata = |ppid| SctpPacket::new(V4, 1, vec![Chunk::idata(1, 0, 0, ppid, 20)]);
        let bundle = SctpPacket::new(V4, 1, vec![Chunk::data(1, 0, 0, 18, 8), Chunk::data(2, 0, 1, 46, 8)]);
        check(
            "deny-ppid = [46]",
            &[
                case("DATA PPID 46", &data(V4, 1, 46), Some(Counter::DropDenyPpid)),
                case("DATA PPID 18", &data(V4, 1, 18), None),
                case("I-DATA PPID 46", &idata(46), Some(Counter::DropDenyPpid)),
                case("PPID 46 second in a bundle", &bundle, Some(Counter::DropDenyPpid)),
            ],
        );
        let heartbeat = SctpPacket::new(V4, 1, vec![Chunk::new(ty::HEARTBEAT, 0, vec![0, 1, 0, 8, 1, 2, 3, 4])]);
        let abort_after_data =
            SctpPacket::new(V4, 1, vec![Chunk::data(1, 0, 0, 18, 8), Chunk::new(ty::ABORT, 0, vec![])]);
        check(
            r#"deny-chunk = ["heartbeat", 6]"#,
            &[
                case("HEARTBEAT", &heartbeat, Some(Counter::DropDenyChunk)),
                case("ABORT after DATA", &abort_after_data, Some(Counter::DropDenyChunk)),
                case("DATA", &data(V4, 1, 18), None),
            ],
        );
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn rfc_9260_violations_malformed_and_limits() {
        require_root();
        let init = |vtag| SctpPacket::new(V4, vtag, vec![Chunk::init(ty::INIT, 0xabc, 1000, 4, 4, 1)]);
        let init_and_data =
            SctpPacket::new(V4, 0, vec![Chunk::init(ty::INIT, 5, 1000, 4, 4, 1), Chunk::data(1, 0, 0, 0, 4)]);
        let sc_and_sack =
            SctpPacket::new(V4, 7, vec![Chunk::sack(1, 1000, 0, 0), Chunk::new(ty::SHUTDOWN_COMPLETE, 0, vec![])]);
        check(
            "deny-violations = true",
            &[
                case("lone INIT, tag 0", &init(0), None),
                case("INIT bundled with DATA", &init_and_data, Some(Counter::DropBundling)),
                case("SHUTDOWN-COMPLETE bundled", &sc_and_sack, Some(Counter::DropBundling)),
                case("INIT with tag 5", &init(5), Some(Counter::DropInitNonzeroTag)),
                case("DATA with tag 0", &data(V4, 0, 18), Some(Counter::DropDataZeroTag)),
                case("DATA with a tag", &data(V4, 9, 18), None),
            ],
        );
        let short = SctpPacket::new(V4, 1, vec![Chunk::data(1, 0, 0, 18, 8).with_length(2)]);
        let beyond = SctpPacket::new(V4, 1, vec![Chunk::data(1, 0, 0, 18, 8).with_length(400)]);
        let not_ip = sctp_common::builder::arp_frame();
        check(
            r#"malformed = "drop""#,
            &[
                case("chunk length 2", &short, Some(Counter::DropMalformed)),
                case("chunk past the packet", &beyond, Some(Counter::DropMalformed)),
                case("well formed", &data(V4, 1, 18), None),
                Case { what: "ARP (not SCTP: never judged)", frame: not_ip, drop: None },
            ],
        );
        let datas = |n: u32| SctpPacket::new(V4, 1, (0..n).map(|i| Chunk::data(i, 0, 0, 18, 8)).collect());
        check(
            "max-chunks = 2\nmax-data-chunk = 100",
            &[
                case("two chunks", &datas(2), None),
                case("three chunks", &datas(3), Some(Counter::DropTooManyChunks)),
                case(
                    "DATA of 116 bytes",
                    &SctpPacket::new(V4, 1, vec![Chunk::data(1, 0, 0, 18, 100)]),
                    Some(Counter::DropDataTooLarge),
                ),
                case("DATA of 100 bytes", &SctpPacket::new(V4, 1, vec![Chunk::data(1, 0, 0, 18, 84)]), None),
            ],
        );
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn init_rate_per_source_and_global() {
        require_root();
        let init = |ip| SctpPacket::new(ip, 0, vec![Chunk::init(ty::INIT, 0xabc, 1000, 4, 4, 1)]);
        // One token per second: within this test's milliseconds no bucket refills.
        check(
            "init-rate = 1\ninit-burst = 2",
            &[
                case("first INIT", &init(V4), None),
                case("second INIT (burst)", &init(V4), None),
                case("third INIT", &init(V4), Some(Counter::DropInitRateSource)),
                case("another source", &init(OTHER_V4), None),
                case("DATA is not rated", &data(V4, 1, 18), None),
            ],
        );
        check(
            "global-init-rate = 1",
            &[
                case("first INIT", &init(V4), None),
                case("INIT from another source", &init(V6), Some(Counter::DropInitRateGlobal)),
            ],
        );
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn application_messages_denied_and_rated_per_source() {
        require_root();
        let msg = |ip, tsn, ppid, body: &[u8]| SctpPacket::new(ip, 1, vec![Chunk::message(tsn, ppid, body)]);
        let ngap = |ip, tsn, outcome, code| msg(ip, tsn, ppid::NGAP, &app::ap(outcome, code));
        let ccr = |tsn| msg(V4, tsn, ppid::DIAMETER, &app::diameter(true, 272, 4, (tsn, tsn), &[]));
        let hidden =
            SctpPacket::new(V4, 1, vec![Chunk::message(30, ppid::NGAP, &app::ap(0, 15)), Chunk::data(31, 0, 0, 99, 8)]);
        check(
            r#"deny-message = ["NGAP InitialUEMessage initiating", "Diameter Credit-Control request"]"#,
            &[
                case("NGSetup", &ngap(V4, 1, 0, 21), None),
                case("InitialUEMessage", &ngap(V4, 2, 0, 15), Some(Counter::DropMessageDenied)),
                case("the same, resent", &ngap(V4, 2, 0, 15), Some(Counter::DropMessageDenied)),
                case("behind DATA of another PPID", &hidden, Some(Counter::DropMessageDenied)),
                case("its successful outcome", &ngap(V4, 3, 1, 15), None),
                case("CCR", &ccr(4), Some(Counter::DropMessageDenied)),
                case("S1AP's procedure 15", &msg(V4, 5, ppid::S1AP, &app::ap(0, 15)), None),
            ],
        );
        // One token per second: within this test's milliseconds no bucket refills.
        check(
            r#"message-rate = ["NGAP InitialUEMessage 1/s burst 2"]"#,
            &[
                case("first", &ngap(V4, 1, 0, 15), None),
                case("second (burst)", &ngap(V4, 2, 0, 15), None),
                case("third", &ngap(V4, 3, 0, 15), Some(Counter::DropMessageRate)),
                case("another source", &ngap(OTHER_V4, 1, 0, 15), None),
                case("another procedure", &ngap(V4, 4, 0, 21), None),
            ],
        );
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn verification_tags_are_learned_validated_and_forgotten() {
        require_root();
        // Client 36412 -> server 38412. The client's tag (in its INIT) is 0xC11E, the
        // server's (in its INIT-ACK) 0x5E4E: packets to the server carry 0x5E4E.
        let to_server = |vtag, chunks| SctpPacket::new(V4, vtag, chunks);
        let to_client = |vtag, chunks| with_ports(SctpPacket::new(V4, vtag, chunks), 38412, 36412);
        let init = to_server(0, vec![Chunk::init(ty::INIT, 0xC11E, 1000, 4, 4, 1)]);
        let init_ack = to_client(0xC11E, vec![Chunk::init(ty::INIT_ACK, 0x5E4E, 1000, 4, 4, 1)]);
        let d = |vtag| to_server(vtag, vec![Chunk::data(1, 0, 0, 18, 20)]);
        check(
            "validate-vtag = true\nvtag-learn = 0",
            &[
                case("DATA before any handshake", &d(0x5E4E), Some(Counter::DropVtagUnknown)),
                case("INIT (always allowed)", &init, None),
                case("INIT-ACK (the client's tag, learned from the INIT)", &init_ack, None),
                case(
                    "COOKIE-ECHO (allowed out of the blue)",
                    &to_server(0x1234, vec![Chunk::new(ty::COOKIE_ECHO, 0, vec![0; 8])]),
                    None,
                ),
                case("DATA with the server's tag", &d(0x5E4E), None),
                case("SACK back with the client's tag", &to_client(0xC11E, vec![Chunk::sack(1, 1000, 0, 0)]), None),
                case("blind DATA, wrong tag", &d(0x5E4F), Some(Counter::DropVtagUnknown)),
                case(
                    "blind ABORT, wrong tag",
                    &to_server(0x1111, vec![Chunk::new(ty::ABORT, 0, vec![])]),
                    Some(Counter::DropVtagUnknown),
                ),
                case(
                    "ABORT with the T bit (the kernel checks its tag)",
                    &to_server(0x2222, vec![Chunk::new(ty::ABORT, flag::T_BIT, vec![])]),
                    None,
                ),
                case(
                    "SHUTDOWN-COMPLETE ends the association",
                    &to_server(0x5E4E, vec![Chunk::new(ty::SHUTDOWN_COMPLETE, 0, vec![])]),
                    None,
                ),
                case("DATA after it: forgotten", &d(0x5E4E), Some(Counter::DropVtagUnknown)),
                case(
                    "the other end's own SHUTDOWN-COMPLETE (closing grace)",
                    &to_client(0xC11E, vec![Chunk::new(ty::SHUTDOWN_COMPLETE, 0, vec![])]),
                    None,
                ),
                case(
                    "then that direction is forgotten too",
                    &to_client(0xC11E, vec![Chunk::sack(1, 1000, 0, 0)]),
                    Some(Counter::DropVtagUnknown),
                ),
            ],
        );
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn learning_window_admits_associations_older_than_the_rules() {
        require_root();
        pin_to_current_cpu();
        let mut prog = XdpSctp::load(&LoadOptions::default()).unwrap();
        sctp_user::rules::apply(&mut prog, &compile_rules("validate-vtag = true\nvtag-learn = 60")).unwrap();
        let d = |vtag| SctpPacket::new(V4, vtag, vec![Chunk::data(1, 0, 0, 18, 20)]).frame();
        assert_eq!(prog.test_run(&d(0x77), 1).unwrap().0, XDP_PASS, "unknown tag inside the window");
        // The window closes when rules without it are applied; the tag learned stays.
        sctp_user::rules::apply(&mut prog, &compile_rules("validate-vtag = true\nvtag-learn = 0")).unwrap();
        assert_eq!(prog.test_run(&d(0x77), 1).unwrap().0, XDP_PASS, "tag learned in the window");
        assert_eq!(prog.test_run(&d(0x78), 1).unwrap().0, XDP_DROP, "unknown tag after the window");
        let g = sctp_user::bpf::maps::global(&prog).unwrap();
        assert_eq!(g.get(Counter::VtagsLearned), 1);
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn a_new_rule_set_replaces_the_old_one_whole() {
        require_root();
        pin_to_current_cpu();
        let mut prog = XdpSctp::load(&LoadOptions::default()).unwrap();
        let ppid = |p| data(V4, 1, p).frame();
        let src = |ip| data(ip, 1, 18).frame();
        sctp_user::rules::apply(&mut prog, &compile_rules("deny-ppid = [46]\ndeny-src = [\"198.18.7.0/24\"]")).unwrap();
        assert_eq!(prog.test_run(&ppid(46), 1).unwrap().0, XDP_DROP);
        assert_eq!(prog.test_run(&src(OTHER_V4), 1).unwrap().0, XDP_DROP);
        sctp_user::rules::apply(&mut prog, &compile_rules("deny-ppid = [18]")).unwrap();
        // Nothing of the old set is left: its PPID and its prefix pass now.
        assert_eq!(prog.test_run(&ppid(46), 1).unwrap().0, XDP_PASS);
        assert_eq!(prog.test_run(&ppid(60), 1).unwrap().0, XDP_PASS);
        assert_eq!(prog.test_run(&src(OTHER_V4), 1).unwrap().0, XDP_DROP, "PPID 18 now");
        let snap = sctp_user::snapshot::Snapshot::take(&prog).unwrap();
        let active: Vec<_> = snap.rules.0.iter().map(|r| (r.rule.as_str(), r.drops)).collect();
        assert_eq!(active, [("deny-ppid 18", 1)]);
        let old: Vec<_> = snap.rules.1.iter().map(|r| (r.rule.as_str(), r.drops)).collect();
        assert_eq!(old, [("deny-src 198.18.7.0/24", 1), ("deny-ppid 46", 1)]);
        // A third set reuses the first generation's slots: its counts start at zero.
        sctp_user::rules::apply(&mut prog, &compile_rules("deny-ppid = [46]")).unwrap();
        let snap = sctp_user::snapshot::Snapshot::take(&prog).unwrap();
        assert_eq!(snap.rules.0[0].drops, 0);
        sctp_user::rules::apply(&mut prog, &rules::Compiled::none()).unwrap();
        assert_eq!(prog.test_run(&ppid(18), 1).unwrap().0, XDP_PASS, "no rules");
        assert_eq!(prog.test_run(&ppid(46), 1).unwrap().0, XDP_PASS, "no rules");
    }

    /// Real associations, captured by others, must pass tag validation with no learning
    /// window: every tag their packets carry was announced in an INIT or INIT-ACK before.
    /// Both engines.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn real_handshakes_pass_tag_validation_without_a_learning_window() {
        const TEST: &str = "real_handshakes_pass_tag_validation_without_a_learning_window";
        require_root();
        let Some(dir) = integration_tests::captures_dir() else {
            eprintln!("SKIPPED {TEST}: ../shared/captures is absent");
            return;
        };
        let strict = compile_rules("validate-vtag = true\nvtag-learn = 0");
        for (file, associations) in
            [("pkts__sctp-www.cap", 1), ("magma__nsa_connection.pcap", 1), ("pkts__sctp_init_collision.cap", 1)]
        {
            for engine in [Kind::Host, Kind::Kernel] {
                let replay = replay_with(&dir.join(file), engine, &strict);
                let g = &replay.snapshot.global;
                assert!(g.get(Counter::Sctp) > 10, "{file}: SCTP packets");
                assert_eq!(g.get(Counter::VerdictDrop), 0, "{file}: a real association's packet was dropped");
                assert!(g.get(Counter::VtagsLearned) >= 2 * associations, "{file}: tags learned");
            }
        }
        // A capture that starts mid-association (no handshake) is all out of the blue.
        let file = "open5gs__testregistration.pcapng";
        for engine in [Kind::Host, Kind::Kernel] {
            let g = replay_with(&dir.join(file), engine, &strict).snapshot.global;
            assert_eq!(g.get(Counter::DropVtagUnknown), g.get(Counter::Sctp), "{file}");
        }
    }
}
