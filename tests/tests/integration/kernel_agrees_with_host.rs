//! The parser core runs on the host and, compiled for bpf, in the kernel. These tests run
//! the same packets through both (the kernel through `BPF_PROG_TEST_RUN`) and require every
//! counter, every flow and every event (DATA events, packet summaries) to be identical;
//! and an event a full ring had no room for is counted, not lost without a trace.

use bytemuck::Zeroable as _;
use integration_tests::{
    compile_rules,
    corpus::{mutate, seeds, MIN_XDP_FRAME},
    flow_diff, host_filter, kernel_equals_host_on, pin_to_current_cpu, require_root, HostRun, Rng,
};
use sctp_common::{
    abi::Counter,
    builder::{app, Chunk, SctpPacket, V4, V6},
    parse::message::ppid,
    proto::chunk::ty,
    testing::fixtures,
};
use sctp_user::bpf::{
    events::{drain_events, drain_summaries},
    maps::{data_events_lost, packet_events_lost},
    LoadOptions, XdpSctp,
};

/// Flows made without a bound, as the host engine makes them: random packets are
/// mostly of unknown associations, more than the default burst.
const EVERY_FLOW: LoadOptions = LoadOptions {
    flow_capacity: sctp_common::abi::maps::FLOW_CAPACITY,
    provisional_flow_rate: 0,
    pin_dir: None,
    multi_buffer: false,
    replay: false,
    bounded_walk: false,
};

type Ring = aya::maps::RingBuf<aya::maps::MapData>;

/// The program with the default options, on this CPU, sending DATA events and packet
/// summaries: the program and its two rings (DATA events, summaries).
fn loaded_with_both_rings() -> (XdpSctp, Ring, Ring) {
    require_root();
    pin_to_current_cpu();
    let mut prog = XdpSctp::load(&LoadOptions::default()).unwrap();
    prog.set_events(true, true).unwrap();
    let data = prog.take_data_events().unwrap();
    let summaries = prog.take_packet_events().unwrap();
    (prog, data, summaries)
}

/// The kernel's summaries as the host's parser writes them: the host run's clock, and no
/// interface (`BPF_PROG_TEST_RUN` runs on the loopback's, which every summary must name).
fn kernel_summaries(ring: &mut Ring) -> Vec<sctp_common::abi::PacketSummary> {
    let mut packets = drain_summaries(ring);
    for p in &mut packets {
        assert_eq!(p.ifindex, 1, "the loopback's index");
        p.ts_ns = 1;
        p.ifindex = 0;
    }
    packets
}

/// Tests of the XDP program itself: as root, on this host and again in the VM on every
/// kernel.
mod kernel {
    use super::*;

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn fixture_table_kernel_equals_host_and_expectations() {
        let (mut prog, mut ring, mut summaries) = loaded_with_both_rings();
        let mut checked = 0;
        for fx in fixtures::table() {
            if fx.frame.len() < MIN_XDP_FRAME {
                continue; // host-only row (covered by sctp-common's unit tests)
            }
            let host = kernel_equals_host_on(&mut prog, fx.name, &fx.frame);
            let mut events = drain_events(&mut ring);
            for e in &mut events {
                e.ts_ns = 1; // the host run's clock
            }
            assert_eq!(events, host.events.data, "{}: DATA events differ", fx.name);
            let packets = kernel_summaries(&mut summaries);
            assert_eq!(packets, host.events.packets, "{}: packet summaries differ", fx.name);
            for (c, want) in &fx.expect {
                assert_eq!(host.global.get(*c), *want, "{}: {}", fx.name, c.name());
            }
            checked += 1;
        }
        assert!(checked >= 20, "only {checked} fixture rows ran");
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn random_and_mutated_packets_kernel_equals_host() {
        require_root();
        random_and_mutated_packets_equal_host_in(&EVERY_FLOW);
    }

    /// The same in the variant for kernels without `bpf_loop`, whose message count runs
    /// in rounds of tail calls.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn random_and_mutated_packets_bounded_variant_equals_host() {
        require_root();
        random_and_mutated_packets_equal_host_in(&LoadOptions { bounded_walk: true, ..EVERY_FLOW });
    }

    fn random_and_mutated_packets_equal_host_in(options: &LoadOptions) {
        const PACKETS: usize = 100_000;
        const FLOW_CHECK_EVERY: usize = 1000;
        pin_to_current_cpu();
        let mut prog = XdpSctp::load(options).unwrap();
        prog.reset().unwrap();
        prog.set_events(false, true).unwrap();
        let mut summaries = prog.take_packet_events().unwrap();
        let seeds = seeds();
        let mut rng = Rng(0x5ca1_ab1e_d00d_f00d);
        let mut host = HostRun::default();
        let mut seen = sctp_common::abi::GlobalStats::zeroed();
        for n in 1..=PACKETS {
            let base = &seeds[rng.below(seeds.len())];
            let frame = mutate(&mut rng, base);
            let before = host.global;
            host.process(&frame);
            prog.test_run(&frame, 1).unwrap_or_else(|e| panic!("packet {n}, {} bytes: {e:#}", frame.len()));
            let kernel = sctp_user::bpf::maps::global(&prog).unwrap();
            assert_eq!(kernel, host.global, "packet {n} ({frame:02x?}): global counters differ");
            let packets = kernel_summaries(&mut summaries);
            let host_packets: Vec<_> = host.events.packets.drain(..).collect();
            assert_eq!(packets, host_packets, "packet {n} ({frame:02x?}): summaries differ");
            host.events.data.clear();
            // No field of a packet may make a counter count more than the packet holds.
            let mut added = host.global;
            for (a, b) in added.counters.iter_mut().zip(before.counters) {
                *a -= b;
            }
            if let Some(broken) = sctp_common::testing::bounds_broken(frame.len(), &added, None) {
                panic!("packet {n} ({frame:02x?}): {broken}");
            }
            if n % FLOW_CHECK_EVERY == 0 {
                let flows = sctp_user::bpf::maps::flows(&prog).unwrap();
                let diff = flow_diff(&flows, &host.flows);
                assert!(diff.is_empty(), "flows differ after packet {n} ({frame:02x?}):\n{diff}");
                seen.merge(&host.global);
                prog.reset().unwrap();
                host = HostRun::default();
            }
        }
        // Agreement only means something if the packets reached deep and varied paths.
        for c in [
            Counter::Sctp,
            Counter::DataChunks,
            Counter::Malformed,
            Counter::ErrChunkTooShort,
            Counter::ErrChunkBeyondPacket,
            Counter::ErrChunkWalkLimit,
            Counter::Ipv6,
            Counter::NotSctp,
            Counter::Messages,
            Counter::MessagesResent,
            Counter::MessageTooShort,
        ] {
            assert!(seen.get(c) > 100, "only {} packets reached {}", seen.get(c), c.name());
        }
    }

    /// The same damaged packets judged by a rule set of every kind that does not depend on
    /// time: verdicts, drop reasons and per-rule counts must agree packet by packet.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn random_packets_under_rules_kernel_equals_host() {
        const PACKETS: usize = 30_000;
        require_root();
        pin_to_current_cpu();
        let rules = compile_rules(
            r#"
        deny-src = ["198.18.0.2/32", "2001:db8::2/128"]
        deny-ppid = [46, 60]
        deny-chunk = ["HEARTBEAT", "ERROR"]
        deny-violations = true
        malformed = "drop"
        max-chunks = 20
        max-data-chunk = 100
        deny-message = ["S1AP 9", "M3UA DATA", "NGAP 15 successful"]
        "#,
        );
        let mut prog = XdpSctp::load(&EVERY_FLOW).unwrap();
        sctp_user::rules::apply(&mut prog, &rules).unwrap();
        prog.reset().unwrap();
        prog.set_events(true, false).unwrap();
        let mut data_ring = prog.take_data_events().unwrap();
        let mut withdrawals = 0;
        let mut host = HostRun::with_filter(host_filter(&rules, 1));
        let mut seeds = seeds();
        seeds.push(SctpPacket::new(V4, 0, vec![Chunk::data(1, 0, 0, 18, 8)]).frame());
        // Messages the rules deny, alone and before DATA of another PPID (the walk's
        // rules pass them; the message rules drop them after the count).
        let s1ap = |tsn| Chunk::message(tsn, ppid::S1AP, &app::ap(0, 9));
        seeds.push(SctpPacket::new(V4, 7, vec![s1ap(60)]).frame());
        seeds.push(SctpPacket::new(V6, 7, vec![s1ap(61), Chunk::data(62, 0, 0, 99, 8)]).frame());
        let mut rng = Rng(0xfeed_5eed_0bad_cafe);
        for n in 1..=PACKETS {
            let seed = &seeds[rng.below(seeds.len())];
            let frame = mutate(&mut rng, seed);
            let verdict = host.process(&frame);
            let (action, _) = prog.test_run(&frame, 1).unwrap();
            let want = match verdict {
                sctp_common::parse::Verdict::Pass => 2,
                sctp_common::parse::Verdict::Drop => 1,
            };
            assert_eq!(action, want, "packet {n} ({frame:02x?}): verdicts differ");
            // DATA events, withdrawals of a dropped packet's included: times aside, the same.
            let untimed = |e: &mut sctp_common::abi::DataEvent| e.ts_ns = 0;
            let mut events = drain_events(&mut data_ring);
            events.iter_mut().for_each(untimed);
            host.events.data.iter_mut().for_each(untimed);
            assert_eq!(events, host.events.data, "packet {n} ({frame:02x?}): DATA events differ");
            withdrawals += events.iter().filter(|e| e.chunk_type == sctp_common::abi::WITHDRAWN).count();
            host.events.data.clear();
        }
        assert!(withdrawals > 20, "only {withdrawals} dropped packets had their DATA events withdrawn");
        let kernel = sctp_user::bpf::maps::global(&prog).unwrap();
        assert_eq!(kernel, host.global, "counters or per-rule counts differ");
        for c in [
            Counter::DropMalformed,
            Counter::DropDenyPpid,
            Counter::DropBundling,
            Counter::DropDataZeroTag,
            Counter::DropTooManyChunks,
            Counter::DropDataTooLarge,
            Counter::DropMessageDenied,
            Counter::VerdictPass,
        ] {
            assert!(kernel.get(c) > 20, "only {} packets reached {}", kernel.get(c), c.name());
        }
    }

    /// The program's variant and clock follow the features probed by loading tiny programs,
    /// not the kernel's version. On the kernels these tests run on (the host's and Debian's,
    /// which backport none of these three), the version tells what the probes must find.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn the_probed_features_are_those_of_this_kernel() {
        use aya::util::KernelVersion;
        require_root();
        let at_least = |major, minor| KernelVersion::current().unwrap() >= KernelVersion::new(major, minor, 0);
        let want = sctp_user::bpf::Features {
            kernel_loop: at_least(5, 17),
            coarse_clock: at_least(5, 11),
            multi_buffer: at_least(5, 18),
        };
        assert_eq!(sctp_user::bpf::Features::probe(), want, "on {:?}", KernelVersion::current().unwrap());
    }

    /// More DATA chunks and INITs than their rings hold, none drained: every event sent is
    /// either in its ring or counted lost (`DATA_EVENTS_LOST`, `PACKET_EVENTS_LOST`), and
    /// some were lost.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn a_full_ring_counts_every_event_it_had_no_room_for() {
        const SENT: u32 = 100_000;
        let (mut prog, mut data, mut summaries) = loaded_with_both_rings();
        // Every packet a DATA event; every INIT a summary.
        prog.test_run(&SctpPacket::new(V4, 7, vec![Chunk::data(1, 0, 0, 18, 100)]).frame(), SENT).unwrap();
        let init = SctpPacket::new(V4, 0, vec![Chunk::init(sctp_common::proto::chunk::ty::INIT, 9, 65_536, 4, 4, 1)]);
        prog.test_run(&init.frame(), SENT).unwrap();

        let (events, lost) = (drain_events(&mut data).len() as u64, data_events_lost(&prog).unwrap());
        assert!(lost > 0, "the DATA ring held all {SENT}: send more");
        assert_eq!(events + lost, u64::from(SENT), "{events} DATA events in the ring, {lost} counted lost");
        // The DATA packet's first summary (a new flow and its first DATA) came before the INITs.
        let (held, lost) = (drain_summaries(&mut summaries).len() as u64 - 1, packet_events_lost(&prog).unwrap());
        assert!(lost > 0, "the summary ring held all {SENT}: send more");
        assert_eq!(held + lost, u64::from(SENT), "{held} INIT summaries in the ring, {lost} counted lost");
    }

    /// Diameter requests and answers after a handshake, each frame at its time (the
    /// replay clock): the kernel's matches (requests waiting, response times) equal the
    /// host's, in both variants of the message count.
    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn diameter_requests_are_matched_with_their_answers_as_on_the_host() {
        require_root();
        pin_to_current_cpu();
        let to_server = |vtag, chunk| SctpPacket::new(V4, vtag, vec![chunk]);
        let to_client = |vtag, chunk| {
            let mut p = SctpPacket::new(
                sctp_common::builder::Ip::V4 { src: [198, 18, 0, 2], dst: [198, 18, 0, 1] },
                vtag,
                vec![chunk],
            );
            (p.src_port, p.dst_port) = (p.dst_port, p.src_port);
            p
        };
        let diameter = |request, tsn, command, ids| {
            let avps = if request { Vec::new() } else { vec![app::avp_u32(268, 2001)] };
            Chunk::message(tsn, ppid::DIAMETER, &app::diameter(request, command, 4, ids, &avps))
        };
        let conversation = [
            to_server(0, Chunk::init(ty::INIT, 0xc1, 65_536, 4, 4, 1)),
            to_client(0xc1, Chunk::init(ty::INIT_ACK, 0x51, 65_536, 4, 4, 100)),
            to_server(0x51, Chunk::new(ty::COOKIE_ECHO, 0, vec![0; 8])),
            to_client(0xc1, Chunk::new(ty::COOKIE_ACK, 0, Vec::new())),
            to_server(0x51, diameter(true, 1, 272, (1, 2))),
            to_server(0x51, diameter(true, 2, 272, (3, 4))),
            to_client(0xbad, diameter(false, 100, 272, (1, 2))),
            to_client(0xc1, diameter(false, 100, 272, (1, 2))),
            to_client(0xc1, diameter(false, 101, 316, (3, 4))),
            to_server(0x51, diameter(true, 3, 257, (5, 6))),
            to_client(0xc1, diameter(false, 102, 257, (5, 6))),
            to_server(0x51, diameter(true, 4, 272, (7, 8))),
        ];
        for bounded_walk in [false, true] {
            let mut prog = XdpSctp::load(&LoadOptions { replay: true, bounded_walk, ..EVERY_FLOW }).unwrap();
            let mut host = HostRun::default();
            for (i, p) in conversation.iter().enumerate() {
                let (frame, at) = (p.frame(), 1_000_000_000 + i as u64 * 7_000_000);
                prog.set_replay_clock(at).unwrap();
                assert_eq!(prog.test_run(&frame, 1).unwrap().0, 2, "frame {i}: XDP_PASS");
                host.process_at(&frame, at);
            }
            let kernel = sctp_user::snapshot::Snapshot::take(&prog).unwrap();
            assert_eq!(kernel.global, host.global, "bounded {bounded_walk}: global counters differ");
            let diff = flow_diff(&kernel.flows, &host.flows);
            assert!(diff.is_empty(), "bounded {bounded_walk}: flows differ:\n{diff}");
            let counts =
                [Counter::DiameterRequestsWaiting, Counter::DiameterAnswersTimed, Counter::DiameterAnswersUnmatched]
                    .map(|c| host.global.get(c));
            assert_eq!(counts, [4, 2, 2], "bounded {bounded_walk}");
            let responses = sctp_user::bpf::maps::responses(&prog).unwrap();
            assert_eq!(responses, host.filter.responses, "bounded {bounded_walk}: response times differ");
            let times: Vec<_> = responses.iter().map(|(k, t)| (k.command, t.count, t.min_ns)).collect();
            assert_eq!(times, [(257, 1, 7_000_000), (272, 1, 21_000_000)], "bounded {bounded_walk}");
            // What waits still (the last CCR; an answer of another command took out its
            // request unmatched): taken out as unanswered, the same on both sides.
            let mut unanswered = sctp_user::assoc::messages::Matched::default();
            for key in prog.take_pending().unwrap().sweep(u64::MAX, 0) {
                unanswered.unanswered(key);
            }
            let host_waiting: Vec<_> = host.filter.pending.iter().map(|(k, r)| (k.answer_flow, r.command, 1)).collect();
            let kernel_waiting: Vec<_> = unanswered.unanswered.iter().map(|(k, n)| (k.flow, k.command, *n)).collect();
            assert_eq!(kernel_waiting, host_waiting, "bounded {bounded_walk}");
            assert_eq!(host_waiting.len(), 1, "bounded {bounded_walk}");
        }
    }
}
