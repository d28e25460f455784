//! The measurement behind `sctp-user bench`: the XDP program's cost per packet through
//! `BPF_PROG_TEST_RUN`, for a table of packet classes, next to floors measured in the same
//! run on the same frames: an empty program, a drop-everything program, and the per-flow
//! floor (the least a per-flow SCTP counter does: see sctp-ebpf's `flow-floor-xdp`).

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use aya::{
    programs::{TestRun as _, TestRunOptions, Xdp},
    Ebpf,
};
use sctp_common::{
    abi::Counter,
    builder::{
        app::{self, avp_u32},
        Chunk, SctpPacket, V4, V6,
    },
    parse::message::ppid,
    proto::chunk::ty,
};
use serde::Serialize;

use crate::{
    bpf::{events::drain_summaries, LoadOptions, XdpSctp},
    rules::{self, Compiled},
};

static EMPTY: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/empty-xdp"));
static DROP: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/drop-xdp"));
static FLOW_FLOOR: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flow-floor-xdp"));

/// Measured results; the JSON written to `target/bench/xdp.json`.
#[derive(Serialize)]
pub(crate) struct Results {
    /// Instructions the verifier processed (None before kernel 5.16).
    pub verifier_instructions: Option<u32>,
    /// Wall time of loading the program (verification included).
    pub load_ms: f64,
    /// The empty program (medians over every class's frame).
    pub baseline_ns: f64,
    /// The drop-everything program.
    pub drop_floor_ns: f64,
    /// The per-flow floor.
    pub flow_floor_ns: f64,
    /// The per-flow floor with one more thing our program does per packet, each alone
    /// (see sctp-ebpf's `flow-floor-xdp`): ns per packet, the empty program included.
    pub floor_with: BTreeMap<String, f64>,
    /// Our program per class (ns per packet, the empty program included).
    pub classes: BTreeMap<String, f64>,
    /// Each message class against `one_data_chunk` timed just before and after it (see
    /// [`Paired`]): the medians of the rounds' ratios.
    pub message_ratios: BTreeMap<String, Paired>,
    /// Per rule kind: what one packet costs with only that rule, against the same packet
    /// without rules (the parser's cost is that minus the empty program's).
    pub rules: Vec<RuleCost>,
}

/// A message class's cost as a multiple of `one_data_chunk`'s, timed side by side: a
/// machine shared with others drifts between the two ends of a round, not within a
/// fraction of a second.
#[derive(Serialize, Clone, Copy)]
pub(crate) struct Paired {
    /// Whole, and above the empty program.
    pub ratio: f64,
    pub ratio_above_empty: f64,
}

/// One rule kind's cost per packet.
#[derive(Serialize)]
pub(crate) struct RuleCost {
    pub rule: &'static str,
    pub packet: &'static str,
    /// The packet without rules, minus the empty program: the parser's own cost.
    pub parser_ns: f64,
    /// The packet with the rule, minus without.
    pub rule_ns: f64,
}

/// The rule kinds measured, each with a packet that it judges and lets through (the
/// common case: a rule that drops ends the packet's processing early).
fn rule_kinds() -> Vec<(&'static str, &'static str, &'static str, Vec<u8>)> {
    let data = SctpPacket::new(V4, 7, vec![Chunk::data(1, 0, 0, 18, 100)]).frame();
    let init = SctpPacket::new(V4, 0, vec![Chunk::init(ty::INIT, 0xdead_beef, 106_496, 10, 65535, 42)]).frame();
    let prefixes = r#"deny-src = ["10.0.0.0/8", "192.0.2.0/24", "198.51.100.0/24", "2001:db8:ffff::/48"]"#;
    vec![
        ("deny-src (4 prefixes)", prefixes, "one_data_chunk", data.clone()),
        ("allow-src", r#"allow-src = ["198.18.0.0/15"]"#, "one_data_chunk", data.clone()),
        ("allow-port", "allow-port = [38412]", "one_data_chunk", data.clone()),
        ("deny-ppid", "deny-ppid = [46, 60]", "one_data_chunk", data.clone()),
        ("deny-chunk", r#"deny-chunk = ["HEARTBEAT", "ABORT"]"#, "one_data_chunk", data.clone()),
        ("deny-violations", "deny-violations = true", "one_data_chunk", data.clone()),
        ("malformed drop", r#"malformed = "drop""#, "one_data_chunk", data.clone()),
        ("max-chunks, max-data-chunk", "max-chunks = 8\nmax-data-chunk = 1500", "one_data_chunk", data.clone()),
        // The learning window admits the packet's tag on its first run; every later run
        // is a hit in the tag table.
        ("validate-vtag", "validate-vtag = true\nvtag-learn = 3600", "one_data_chunk", data.clone()),
        ("init-rate (per source and global)", "init-rate = 4000000000\nglobal-init-rate = 4000000000", "init", init),
        // The S1AP message (procedure 0) is judged by both: denied it is not, its rate
        // always has a token.
        (
            "deny-message, message-rate",
            "deny-message = [\"S1AP 9\", \"NGAP InitialUEMessage\"]\nmessage-rate = [\"S1AP 0 4000000000/s\"]",
            "one_data_chunk",
            data.clone(),
        ),
        (
            "all of the above but init-rate",
            "deny-ppid = [46]\ndeny-chunk = [\"ABORT\"]\ndeny-violations = true\nmalformed = \"drop\"\nmax-chunks = 8\nallow-port = [38412]\nvalidate-vtag = true\nvtag-learn = 3600",
            "one_data_chunk",
            data,
        ),
    ]
}

/// The per-flow floor with one more thing our program does per packet: (what, program).
const FLOOR_WITH: [(&str, &str); 5] = [
    ("a coarse clock read", "floor_with_clock"),
    ("a tick read (bpf_jiffies64)", "floor_with_tick"),
    ("four per-CPU array lookups", "floor_with_lookups"),
    ("two BPF-to-BPF calls", "floor_with_calls"),
    ("a one-step bpf_loop", "floor_with_loop"),
];

/// Classes timed again in `run`'s default configuration, the association table on:
/// DATA packets only add to their flow's counters and time round trips in it, and send
/// no summary up (the bench checks that none is sent).
const ASSOCIATION_CLASSES: [&str; 2] = ["one_data_chunk", "eight_bundled_data_chunks"];

/// The TSN of the message classes' frames, and of the frame run once before them on the
/// same flow (see [`message_classes`]).
const MESSAGE_TSN: u32 = 0x8000_0000 - (1 << 21);
const PRIMER_TSN: u32 = 0x8000_0000;

/// The classes that carry an application message, each as a DATA chunk of `MESSAGE_TSN`.
/// `BPF_PROG_TEST_RUN` runs one frame again and again, and a TSN seen before is a
/// retransmission, whose message is not read again. But one more than 2^20 behind the
/// highest TSN of its direction counts as a sequence of its own (`abi::TsnWindow`) and
/// moves nothing: after a frame of `PRIMER_TSN` on the flow, every run of the class's
/// frame reads and counts its message, as a new one would be (the bench checks the
/// count). The DATA accounting it shares with `one_data_chunk` (whose repeated TSN is at
/// or below the highest too) costs the same.
fn message_classes() -> Vec<(&'static str, Chunk)> {
    // InitialUEMessage with 80 bytes of protocol IEs.
    let mut ngap = app::ap(0, 15);
    ngap.extend((0..80).map(|i: u8| i));
    let text = |code, s: &str| (code, 0x40, s.as_bytes().to_vec());
    let answer = app::diameter(
        false,
        316,
        16_777_251,
        (0x1111, 0x2222),
        &[
            text(263, "mme.epc.mnc001.mcc001.3gppnetwork.org;1;42"),
            avp_u32(277, 1),
            text(264, "hss.epc.mnc001.mcc001.3gppnetwork.org"),
            text(296, "epc.mnc001.mcc001.3gppnetwork.org"),
            avp_u32(268, 2001),
        ],
    );
    vec![
        ("ngap_message", Chunk::message(MESSAGE_TSN, ppid::NGAP, &ngap)),
        ("diameter_answer", Chunk::message(MESSAGE_TSN, ppid::DIAMETER, &answer)),
        ("m3ua_data", Chunk::message(MESSAGE_TSN, ppid::M3UA, &app::m3ua_data(3))),
    ]
}

/// The frame run once before a message class's (see [`message_classes`]).
fn primer(class: &str) -> Option<Vec<u8>> {
    let (_, chunk) = message_classes().into_iter().find(|(n, _)| *n == class)?;
    let mut primer = chunk;
    primer.value[..4].copy_from_slice(&PRIMER_TSN.to_be_bytes());
    Some(SctpPacket::new(V4, 7, vec![primer]).frame())
}

/// The packet classes of the benchmark table.
#[must_use]
pub(crate) fn classes() -> Vec<(&'static str, Vec<u8>)> {
    let mut malformed = SctpPacket::new(V4, 1, vec![Chunk::data(1, 0, 0, 0, 100)]).frame();
    // Chunk length 0xfff0: runs past the packet.
    malformed[14 + 20 + 12 + 2..14 + 20 + 12 + 4].copy_from_slice(&0xfff0u16.to_be_bytes());
    vec![
        ("one_data_chunk", SctpPacket::new(V4, 7, vec![Chunk::data(1, 0, 0, 18, 100)]).frame()),
        // A PPID of no protocol whose messages are counted: no message count after the
        // walk (S1AP's PPID 18 above has one, which finds the repeated TSN resent).
        ("one_data_chunk_other_ppid", SctpPacket::new(V4, 7, vec![Chunk::data(1, 0, 0, 99, 100)]).frame()),
        (
            "eight_bundled_data_chunks",
            SctpPacket::new(V4, 7, (0..8u16).map(|i| Chunk::data(u32::from(i), 0, i, 18, 100)).collect()).frame(),
        ),
        (
            "eight_bundled_data_chunks_other_ppid",
            SctpPacket::new(V4, 7, (0..8u16).map(|i| Chunk::data(u32::from(i), 0, i, 99, 100)).collect()).frame(),
        ),
        ("sack_with_gap_blocks", SctpPacket::new(V4, 7, vec![Chunk::sack(1000, 65536, 4, 2)]).frame()),
        ("init", SctpPacket::new(V4, 0, vec![Chunk::init(ty::INIT, 0xdead_beef, 106_496, 10, 65535, 42)]).frame()),
        ("ipv6_one_data_chunk", SctpPacket::new(V6, 7, vec![Chunk::data(1, 0, 0, 18, 100)]).frame()),
        ("malformed_chunk_length", malformed),
    ]
    .into_iter()
    .chain(message_classes().into_iter().map(|(name, chunk)| (name, SctpPacket::new(V4, 7, vec![chunk]).frame())))
    .collect()
}

/// Runs every class `rounds` times, each round with `repeat` runs in the kernel, the
/// baseline interleaved; reports the median of the rounds (shared machines are noisy).
pub(crate) fn run(repeat: u32, rounds: usize) -> Result<Results> {
    let start = std::time::Instant::now();
    let mut prog = XdpSctp::load(&LoadOptions::default())?;
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let verifier_instructions = prog.verified_instructions()?;
    let mut empty = Floor::load(EMPTY, "empty_xdp")?;
    let mut drop = Floor::load(DROP, "drop_xdp")?;
    let mut flow_floor = Floor::load(FLOW_FLOOR, "flow_floor_xdp")?;
    // A rung this kernel lacks the helper of (the coarse clock before 5.11) is left out.
    let mut ladder: Vec<_> = FLOOR_WITH
        .iter()
        .filter_map(|(name, program)| match Floor::load(FLOW_FLOOR, program) {
            Ok(floor) => Some((*name, floor)),
            Err(e) => {
                log::warn!("the floor with {name} does not load on this kernel ({e:#}): left out");
                None
            }
        })
        .collect();
    let (mut baseline, mut drop_ns, mut flow_ns) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_class: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut paired: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let reference = classes().into_iter().find(|(n, _)| *n == "one_data_chunk").context("one_data_chunk")?.1;
    let mut floor_with: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut ring = prog.take_packet_events()?;
    for _ in 0..rounds {
        for (name, frame) in classes() {
            baseline.push(empty.time(&frame, repeat)?);
            drop_ns.push(drop.time(&frame, repeat)?);
            flow_ns.push(flow_floor.time(&frame, repeat)?);
            for (rung, floor) in &mut ladder {
                floor_with.entry((*rung).to_string()).or_default().push(floor.time(&frame, repeat)?);
            }
            let primed = primer(name);
            let reference_before = if primed.is_some() { ns(prog.test_run(&reference, repeat)?.1) } else { 0.0 };
            if let Some(p) = &primed {
                prog.test_run(p, 1)?;
            }
            let before = crate::bpf::maps::global(&prog)?.get(Counter::Messages);
            let class_ns = ns(prog.test_run(&frame, repeat)?.1);
            per_class.entry(name.to_string()).or_default().push(class_ns);
            let counted = crate::bpf::maps::global(&prog)?.get(Counter::Messages) - before;
            anyhow::ensure!(
                primed.is_none() || counted == u64::from(repeat),
                "{name}: {counted} messages counted in {repeat} runs"
            );
            if primed.is_some() {
                let one_data = f64::midpoint(reference_before, ns(prog.test_run(&reference, repeat)?.1));
                let empty_ns = *baseline.last().context("timed above")?;
                let (whole, above) = paired.entry(name.to_string()).or_default();
                whole.push(class_ns / one_data);
                above.push((class_ns - empty_ns) / (one_data - empty_ns));
            }
            if !ASSOCIATION_CLASSES.contains(&name) {
                continue;
            }
            // The same packet with the association table on, in the same round as its
            // floors. The first run meets a new path (a summary): not timed.
            prog.set_events(false, true)?;
            prog.test_run(&frame, 1)?;
            drain_summaries(&mut ring);
            let (_, time) = prog.test_run(&frame, repeat)?;
            prog.set_events(false, false)?;
            let sent = drain_summaries(&mut ring).len();
            anyhow::ensure!(sent == 0, "{name}: {sent} summaries for {repeat} DATA packets");
            per_class.entry(format!("{name}_with_associations")).or_default().push(ns(time));
        }
    }
    prog.set_events(false, false)?;
    let mut rules = Vec::new();
    let none = Compiled::none();
    for (rule, toml_text, packet, frame) in rule_kinds() {
        let config = toml::from_str(toml_text).context("bench rule")?;
        let compiled = rules::compile(&config)?;
        let (mut empty_ns, mut without, mut with) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            empty_ns.push(empty.time(&frame, repeat)?);
            rules::apply(&mut prog, &none)?;
            without.push(ns(prog.test_run(&frame, repeat)?.1));
            rules::apply(&mut prog, &compiled)?;
            with.push(ns(prog.test_run(&frame, repeat)?.1));
        }
        let (e, wo, w) = (median(&mut empty_ns), median(&mut without), median(&mut with));
        rules.push(RuleCost { rule, packet, parser_ns: wo - e, rule_ns: w - wo });
    }
    Ok(Results {
        verifier_instructions,
        load_ms,
        baseline_ns: median(&mut baseline),
        drop_floor_ns: median(&mut drop_ns),
        flow_floor_ns: median(&mut flow_ns),
        floor_with: floor_with.into_iter().map(|(k, mut v)| (k, median(&mut v))).collect(),
        classes: per_class.into_iter().map(|(k, mut v)| (k, median(&mut v))).collect(),
        message_ratios: paired
            .into_iter()
            .map(|(k, (mut whole, mut above))| {
                (k, Paired { ratio: median(&mut whole), ratio_above_empty: median(&mut above) })
            })
            .collect(),
        rules,
    })
}

/// A reference program, loaded on its own.
struct Floor(Ebpf, &'static str);

impl Floor {
    fn load(object: &[u8], name: &'static str) -> Result<Self> {
        let mut ebpf = Ebpf::load(object).with_context(|| format!("loading {name}"))?;
        let prog: &mut Xdp = ebpf.program_mut(name).with_context(|| format!("{name} missing"))?.try_into()?;
        prog.load()?;
        Ok(Self(ebpf, name))
    }

    /// Nanoseconds per run of `frame`, over `repeat` runs in the kernel.
    fn time(&mut self, frame: &[u8], repeat: u32) -> Result<f64> {
        let prog: &mut Xdp = self.0.program_mut(self.1).context("loaded above")?.try_into()?;
        let opts = TestRunOptions { data_in: Some(frame), repeat, ..TestRunOptions::default() };
        Ok(ns(prog.test_run(opts)?.duration))
    }
}

fn ns(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
