//! Helpers shared by the integration tests.
#![expect(
    clippy::missing_errors_doc,
    clippy::missing_panics_doc,
    reason = "test helpers: a failure is a test failure with its message"
)]

pub mod capture_writer;
pub mod corpus;
pub mod echo_env;
pub mod instance;
pub mod netns;
pub mod raw;
pub mod scenarios;
pub mod tshark;

use std::{collections::BTreeMap, fmt::Write as _, path::PathBuf};

use bytemuck::Zeroable as _;
use sctp_common::{
    abi::{FlowKey, FlowStats, GlobalStats, PathRoundTrips, RoundTrips},
    host::MemFilter,
    parse::{self, Recorder, WalkFindings},
};

/// For tests marked `#[ignore = "needs root..."]`: run with `--ignored` as anyone else,
/// they fail at once with the reason instead of passing without testing anything.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(root, "this test loads BPF and needs root: run it through `cargo xtask test`");
}

/// For tests marked as needing kernel SCTP (they run inside the VM).
pub fn require_kernel_sctp() {
    require_root();
    assert!(
        sctp_user::sys::sctp::SctpSocket::one_to_many(false).is_ok(),
        "this kernel has no SCTP: this test runs inside the VM (`cargo xtask test`)"
    );
}

/// The same packets through the host copy of the parser.
pub struct HostRun {
    pub global: GlobalStats,
    pub flows: BTreeMap<FlowKey, FlowStats>,
    /// DATA events and packet summaries, in order.
    pub events: Recorder,
    /// The rules and their state (none by default).
    pub filter: MemFilter<'static>,
    seen: WalkFindings,
}

impl Default for HostRun {
    fn default() -> Self {
        Self::with_filter(MemFilter::default())
    }
}

impl HostRun {
    #[must_use]
    pub fn with_filter(filter: MemFilter<'static>) -> Self {
        Self {
            global: GlobalStats::zeroed(),
            flows: BTreeMap::new(),
            events: Recorder::default(),
            filter,
            seen: WalkFindings::new(),
        }
    }

    pub fn process(&mut self, frame: &[u8]) -> parse::Verdict {
        self.process_at(frame, 1)
    }

    /// As [`HostRun::process`], at a time of the frame's (a capture's).
    pub fn process_at(&mut self, frame: &[u8], now_ns: u64) -> parse::Verdict {
        let flows = &mut self.flows;
        let verdict = parse::process(
            frame,
            &mut self.global,
            || now_ns,
            |k, _, _| Some(flows.entry(*k).or_insert_with(FlowStats::zeroed)),
            &mut self.events,
            &mut self.filter,
            &mut self.seen,
        );
        let flows = &mut self.flows;
        parse::after_process(
            frame,
            verdict,
            &mut self.global,
            &mut self.filter,
            &mut self.events,
            &mut self.seen,
            |k, settle| {
                if let Some(f) = flows.get_mut(k) {
                    settle(f);
                }
            },
        )
    }
}

/// Runs `frame` alone through the kernel (the program reset first) and the host parser
/// and asserts that every counter and flow agrees; the host run, for further checks.
pub fn kernel_equals_host_on(prog: &mut sctp_user::bpf::XdpSctp, name: &str, frame: &[u8]) -> HostRun {
    prog.reset().unwrap();
    let (action, _) = prog.test_run(frame, 1).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    assert_eq!(action, 2, "{name}: XDP_PASS");
    let mut host = HostRun::default();
    host.process(frame);
    let kernel = sctp_user::snapshot::Snapshot::take(prog).unwrap();
    assert_eq!(kernel.global, host.global, "{name}: global counters differ");
    let diff = flow_diff(&kernel.flows, &host.flows);
    assert!(diff.is_empty(), "{name}: flows differ:\n{diff}");
    host
}

/// Flows with the timestamps and round-trip times cleared (the kernel's clock and the
/// host's differ), and the paths' interfaces (a test run's frame arrives on `lo`, the host's from none).
#[must_use]
pub fn without_time(flows: &BTreeMap<FlowKey, FlowStats>) -> BTreeMap<FlowKey, FlowStats> {
    flows
        .iter()
        .map(|(k, f)| {
            let mut f = *f;
            f.first_seen_ns = 0;
            f.last_seen_ns = 0;
            // Round trips: whether a TSN is timed and how many were, not when.
            f.sampling_since_ns = u64::from(f.sampling_since_ns != 0);
            f.peer_sample_sent_ns = 0;
            f.rtt = RoundTrips { count: f.rtt.count, ..RoundTrips::zeroed() };
            f.heartbeat_rtt = RoundTrips { count: f.heartbeat_rtt.count, ..RoundTrips::zeroed() };
            for p in &mut f.paths {
                p.last_seen_ns = 0;
                p.ifindex = 0;
                p.heartbeat_sent_ns = u64::from(p.heartbeat_sent_ns != 0);
                p.heartbeat_rtt = PathRoundTrips { count: p.heartbeat_rtt.count, ..PathRoundTrips::zeroed() };
            }
            (*k, f)
        })
        .collect()
}

/// Where two flow tables differ, one line per flow (empty when equal).
#[must_use]
pub fn flow_diff(kernel: &BTreeMap<FlowKey, FlowStats>, host: &BTreeMap<FlowKey, FlowStats>) -> String {
    let (kernel, mut host) = (without_time(kernel), without_time(host));
    // The kernel's flows are read without the sink (`FlowKey::SINK`), whose key a packet of
    // ports 0 and tag 0 has too.
    host.remove(&FlowKey::SINK);
    let mut out = String::new();
    for k in kernel.keys().chain(host.keys().filter(|k| !kernel.contains_key(k))) {
        match (kernel.get(k), host.get(k)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => _ = writeln!(out, "{k:?}: kernel {a:?}\n   host {b:?}"),
            (Some(_), None) => _ = writeln!(out, "{k:?}: only in the kernel"),
            (None, _) => _ = writeln!(out, "{k:?}: only on the host (evicted or never inserted)"),
        }
    }
    out
}

/// `../shared/captures` beside the checkout, if it is there.
#[must_use]
pub fn captures_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures");
    dir.is_dir().then_some(dir)
}

/// Every capture file of `../shared/captures` (pcap, pcapng, cap), sorted; `None`, said on
/// stderr for `test`, where that folder is absent (as on a fresh clone without it).
#[must_use]
pub fn shared_captures(test: &str) -> Option<Vec<PathBuf>> {
    let Some(dir) = captures_dir() else {
        eprintln!("SKIPPED {test}: ../shared/captures is absent (as on a fresh clone without the shared folder)");
        return None;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap"))
        .collect();
    files.sort();
    Some(files)
}

/// A deterministic xorshift generator: reproducible runs without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The low 32 bits of the next value.
    pub fn next_u32(&mut self) -> u32 {
        let [a, b, c, d, ..] = self.next_u64().to_le_bytes();
        u32::from_le_bytes([a, b, c, d])
    }

    /// The low byte of the next value.
    pub fn next_u8(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }

    pub fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n.max(1)).expect("usize fits u64");
        usize::try_from(self.next_u64() % n).expect("below n")
    }
}

/// Pins the calling thread to its current CPU (see `sctp_user::sys::cpu`): tests
/// comparing flow tables exactly compare the parsers, not CPU placement.
pub fn pin_to_current_cpu() {
    sctp_user::sys::cpu::pin_to_current();
}

/// Pins the calling thread (and the threads it starts afterwards) to `cpu`.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: plain libc calls on this thread with a zeroed, then filled, cpu_set_t.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set)
    };
    assert_eq!(rc, 0, "pinning to CPU {cpu}: {}", std::io::Error::last_os_error());
}

/// The release `sctp-user` binary beside this executable (`sctp-harness` in
/// target/release) or one level up (a test in target/release/deps).
#[must_use]
pub fn sctp_user_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let candidates: Vec<PathBuf> = exe.ancestors().skip(1).take(2).map(|d| d.join("sctp-user")).collect();
    candidates.iter().find(|b| b.exists()).cloned().unwrap_or_else(|| {
        panic!(
            "{} is missing: run `cargo build --release` (cargo xtask test does)",
            candidates[candidates.len() - 1].display()
        )
    })
}

/// A plain HTTP GET of `path` at `addr` (for the metrics endpoint); the body.
#[must_use]
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default()
}

/// Samples of a Prometheus text exposition: `name{labels}` -> value.
#[must_use]
pub fn parse_samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The host twin of compiled rules installed as generation `gen` as compiled (no
/// learning window's deadline set), for kernel-versus-host runs.
#[must_use]
pub fn host_filter(c: &sctp_user::rules::Compiled, gen: u32) -> MemFilter<'static> {
    let set: &'static sctp_common::abi::RuleSet = Box::leak(c.set.clone());
    c.host_filter(set, gen)
}

/// Rules from TOML text, compiled.
#[must_use]
pub fn compile_rules(toml_text: &str) -> sctp_user::rules::Compiled {
    let config = toml::from_str(toml_text).unwrap_or_else(|e| panic!("rules {toml_text:?}: {e}"));
    sctp_user::rules::compile(&config).unwrap_or_else(|e| panic!("rules {toml_text:?}: {e:#}"))
}

/// What `sctp-user inspect --format json` counts for a capture (the same library calls),
/// with every flow and the number of bad checksums.
#[must_use]
pub fn inspect_json(
    file: &std::path::Path,
    engine: sctp_user::replay::engine::Kind,
    rules: &sctp_user::rules::Compiled,
) -> serde_json::Value {
    inspect_json_on(file, engine, rules, 1)
}

/// [`inspect_json`] with the host engine on `threads` threads.
#[must_use]
pub fn inspect_json_on(
    file: &std::path::Path,
    engine: sctp_user::replay::engine::Kind,
    rules: &sctp_user::rules::Compiled,
    threads: usize,
) -> serde_json::Value {
    use sctp_user::{
        doc::{AssociationDoc, MessageDoc, SnapshotDoc},
        replay,
    };
    let opts = replay::Options {
        engine,
        load: sctp_user::bpf::LoadOptions::default(),
        checksums: true,
        threads,
        trace: false,
    };
    let replay = replay::replay(file, &opts, rules).unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
    let mut j = serde_json::to_value(SnapshotDoc::of(&replay.snapshot, replay.unreplayed(), usize::MAX)).unwrap();
    j["bad_checksums"] = replay.checksums.map_or(0, |c| c.bad).into();
    j["timestamps_backwards"] = replay.read.ts_backwards.into();
    j["first_ns"] = replay.span_ns.map(|s| s.0).into();
    j["last_ns"] = replay.span_ns.map(|s| s.1).into();
    j["damaged"] = replay.read.damaged.into();
    j["messages"] = serde_json::to_value(MessageDoc::list(&replay.messages)).unwrap();
    j["associations"] = serde_json::to_value(
        replay.associations.busiest(usize::MAX).iter().map(|(_, a)| AssociationDoc::of(a)).collect::<Vec<_>>(),
    )
    .unwrap();
    j
}

/// An association's JSON (`inspect`, `/stats`) without what depends on the clock (times
/// and round-trip values; their counts stay) or on the live host (a path's interface: a
/// capture has none).
#[must_use]
pub fn timeless(a: &serde_json::Value) -> serde_json::Value {
    let mut a = a.clone();
    for key in ["transitions", "first_ns", "last_ns", "handshake_rtt_us"] {
        a.as_object_mut().unwrap().remove(key);
    }
    let count_only = |rtt: &mut serde_json::Value| *rtt = rtt["count"].clone();
    count_only(&mut a["rtt_us"]);
    for p in a["paths"].as_array_mut().unwrap() {
        p.as_object_mut().unwrap().remove("last_seen_ns");
        p.as_object_mut().unwrap().remove("iface");
        count_only(&mut p["rtt_us"]);
    }
    a
}

/// Numbers the temporary captures: tests of one binary run at once.
static NEXT_CAPTURE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A nanosecond pcap of Ethernet frames at their times (ns since the epoch), written to a
/// file of its own in the temporary directory, removed when the value is dropped.
pub struct TempCapture(pub PathBuf);

impl TempCapture {
    #[must_use]
    pub fn new(name: &str, frames: &[(u64, Vec<u8>)]) -> Self {
        use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
        let header = PcapHeader { ts_resolution: pcap_file::TsResolution::NanoSecond, ..PcapHeader::default() };
        let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
        for (ts, f) in frames {
            let len = u32::try_from(f.len()).unwrap();
            w.write_packet(&PcapPacket::new(std::time::Duration::from_nanos(*ts), len, f)).unwrap();
        }
        let n = NEXT_CAPTURE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{name}-{}-{n}.pcap", std::process::id()));
        std::fs::write(&path, w.into_writer()).unwrap();
        Self(path)
    }
}

impl Drop for TempCapture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
