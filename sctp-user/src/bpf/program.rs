//! Loading the embedded XDP program, attaching it, and reading its maps.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, ProgramArray, RingBuf},
    programs::{
        tc::{self, TcAttachType},
        xdp::{XdpError, XdpLinkId},
        Program, ProgramError, SchedClassifier, TestRun as _, TestRunOptions, Xdp, XdpMode,
    },
    Ebpf, EbpfLoader, Pod, VerifierLogLevel,
};
use sctp_common::abi::{
    maps::{self, events, MapSpec, CONFIG_EVENTS},
    FlowKey, FlowStats, GlobalStats, PendingKey, PendingRequest, ResponseKey, RoundTrips, TagEntry,
};

use super::{
    features::Features,
    maps::{set_config, MapSource},
    pending::PendingRequests,
};
use crate::sys::{
    bpffs::prepare_pin_dir,
    iface::{mtu, require_interface},
    privilege::{raise_memlock, require, LOAD},
};

/// The XDP object built by build.rs from sctp-ebpf.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sctp-xdp"));
/// The program for multi-buffer frames (kernels >= 5.18), the one for linear frames
/// only, and the same for kernels without `bpf_loop` (before 5.17), whose chunk walk is a
/// bounded loop.
const PROGRAM_FRAGS: &str = "sctp_xdp_frags";
const PROGRAM_LINEAR: &str = "sctp_xdp";
const PROGRAM_BOUNDED: &str = "sctp_xdp_bounded";
/// The egress companion that counts leaving packets and learns verification tags
/// (`validate-vtag`), and its variant for kernels without `bpf_loop`.
const EGRESS_PROGRAM: &str = "sctp_tc_egress";
const EGRESS_BOUNDED: &str = "sctp_tc_egress_bounded";
/// The message counts the egress programs tail-call.
const TC_TALLY: &str = "sctp_tc_tally";
const TC_TALLY_BOUNDED: &str = "sctp_tc_tally_bounded";

/// The loaded XDP program and its maps.
pub struct XdpSctp {
    ebpf: Ebpf,
    /// The XDP program loaded: `PROGRAM_FRAGS` where the kernel has multi-buffer XDP.
    program: &'static str,
    /// The egress program loaded.
    egress: &'static str,
    /// Interfaces attached to; dropping the program detaches them all.
    links: Vec<XdpLinkId>,
    /// Set when the egress program could not be attached (see `egress_missing`).
    egress_missing: Option<String>,
}

/// Options for loading.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Capacity of the per-flow LRU map.
    pub flow_capacity: u32,
    /// New flows of associations whose handshake was not seen to complete that one CPU
    /// may make a second, after a burst (`abi::maps::PROVISIONAL_FLOW_RATE`); 0: no bound.
    /// Ignored when replaying: a capture's every flow is counted.
    pub provisional_flow_rate: u32,
    /// Pin the maps `abi::maps` marks as pinned (counters, rules and their state) in this
    /// bpffs directory, reusing them if they are there already: counters then survive a
    /// restart of the controller, and `rules` commands reach the running instance.
    pub pin_dir: Option<PathBuf>,
    /// Load the multi-buffer variant, which reads frames larger than a page whole (jumbo
    /// MTUs, big captured frames) at the price of a helper call per read; where the kernel
    /// lacks multi-buffer XDP (before 5.18) the linear one is loaded, with a warning.
    pub multi_buffer: bool,
    /// Loaded to replay a capture: the program's clock is then the capture time user
    /// space sets before each frame ([`XdpSctp::set_replay_clock`]), not the kernel's.
    pub replay: bool,
    /// Load the variant kernels before 5.17 get, whose chunk walk is a bounded loop
    /// instead of `bpf_loop` (so the host can test it; ignored with `multi_buffer`).
    pub bounded_walk: bool,
}

/// Frames up to this length fit an XDP buffer's linear data (a 4 KiB page less headroom
/// and tail room); longer ones arrive as fragments.
pub const LINEAR_FRAME_MAX: usize = 3_500;

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            flow_capacity: maps::FLOWS.max_entries,
            provisional_flow_rate: maps::PROVISIONAL_FLOW_RATE,
            pin_dir: None,
            multi_buffer: false,
            replay: false,
            bounded_walk: false,
        }
    }
}

impl XdpSctp {
    /// Loads the program into the kernel (verifier included); needs the capabilities of
    /// [`LOAD`].
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        require(LOAD)?;
        raise_memlock();
        if opts.flow_capacity == 0 {
            bail!("--flow-capacity must be at least 1");
        }
        let features = Features::probe();
        // No verifier log on the way in (see `refused`).
        let mut ebpf = load_object(opts, features, VerifierLogLevel::DISABLE)?;
        // A kernel without multi-buffer XDP refuses the variant's flag at once.
        let frags = if !opts.multi_buffer {
            false
        } else if features.multi_buffer {
            // A kernel with multi-buffer XDP that refuses it: a bug of ours, not a kernel
            // too old (its error number varies: 6.1 says EINVAL without a log).
            load_program(&mut ebpf, PROGRAM_FRAGS, opts, features)?;
            true
        } else {
            match program(&mut ebpf, PROGRAM_FRAGS)?.load() {
                Ok(()) => true,
                Err(e) => {
                    log::warn!(
                        "this kernel has no multi-buffer XDP ({e}): frames are parsed as far as their first page, \
                         and native mode refuses MTUs above about 3,500 bytes (use --mode generic there)"
                    );
                    false
                }
            }
        };
        let name = if frags {
            PROGRAM_FRAGS
        } else if !opts.bounded_walk && features.kernel_loop {
            PROGRAM_LINEAR
        } else {
            PROGRAM_BOUNDED
        };
        if !frags {
            load_program(&mut ebpf, name, opts, features)?;
        }
        let egress = if name == PROGRAM_BOUNDED { EGRESS_BOUNDED } else { EGRESS_PROGRAM };
        load_program(&mut ebpf, egress, opts, features)?;
        // The message count each program tail-calls, in the slot it calls.
        let (slot, tc_tally) = if name == PROGRAM_BOUNDED {
            (maps::TALLY_BOUNDED, TC_TALLY_BOUNDED)
        } else {
            (maps::TALLY_LINEAR, TC_TALLY)
        };
        let xdp_tally = tally_program(name);
        let (xdp_slot, xdp_map) = if frags { (0, &maps::XDP_TALLY_FRAGS) } else { (slot, &maps::XDP_TALLY) };
        load_program(&mut ebpf, xdp_tally, opts, features)?;
        load_program(&mut ebpf, tc_tally, opts, features)?;
        let xdp_fd = program(&mut ebpf, xdp_tally)?.fd()?.try_clone()?;
        let tc_fd = egress_program(&mut ebpf, tc_tally)?.fd()?.try_clone()?;
        for (spec, slot, fd) in [(xdp_map, xdp_slot, &xdp_fd), (&maps::TC_TALLY, slot, &tc_fd)] {
            let mut jumps = ProgramArray::try_from(MapSource::map_mut(&mut ebpf, spec)?)?;
            jumps.set(slot, fd, 0).with_context(|| format!("filling {} with the message count", spec.name))?;
        }
        Ok(Self { ebpf, program: name, egress, links: Vec::new(), egress_missing: None })
    }

    /// Attaches to `iface` (in the calling thread's network namespace) in the given mode.
    /// The interface is checked first (`require_interface`) for the one-line error.
    /// May be called for several interfaces: they share the maps.
    pub fn attach(&mut self, iface: &str, mode: XdpMode) -> Result<()> {
        require_interface(iface)?;
        let multi_buffer = self.multi_buffer();
        let prog: &mut Xdp = program(&mut self.ebpf, self.program)?;
        let link = prog.attach(iface, mode).map_err(|e| match e {
            ProgramError::UnknownInterface { name } => {
                anyhow::anyhow!("no interface named {name:?}: list them with `ip link`")
            }
            other if os_error(&other) == Some(libc::EBUSY) => anyhow::anyhow!(
                "{iface} already has an XDP program attached (another sctp-user run? `ip link show {iface}` shows it): stop or detach it first"
            ),
            other if os_error(&other) == Some(libc::ERANGE) => anyhow::anyhow!(
                "native XDP on {iface} refused its MTU ({}): {}",
                mtu(iface).map_or_else(|| "unknown".into(), |m| m.to_string()),
                if multi_buffer {
                    "its driver has no multi-buffer XDP; use --mode generic, or a smaller MTU"
                } else {
                    "this kernel has no multi-buffer XDP (5.18 or later has it); use --mode generic, or an MTU below about 3,500"
                }
            ),
            other => anyhow::Error::new(other).context(format!("attaching XDP to {iface} failed")),
        })?;
        self.links.push(link);
        // Egress: a clsact qdisc first (it may be there already; TCX on kernels >= 6.6 does
        // not need it). The link lives as long as the program.
        let _ = tc::qdisc_add_clsact(iface);
        if let Err(e) = egress_program(&mut self.ebpf, self.egress)?.attach(iface, TcAttachType::Egress) {
            self.egress_missing = Some(format!(
                "the egress program could not be attached to {iface} ({e}; does the kernel have sch_ingress and cls_bpf?): \
                 packets leaving are not counted"
            ));
        }
        Ok(())
    }

    /// Why tags cannot be learned from packets leaving (a server's INIT-ACKs), if so:
    /// `validate-vtag` would then drop a server's own associations.
    #[must_use]
    pub fn egress_missing(&self) -> Option<&str> {
        self.egress_missing.as_deref()
    }

    /// Whether the loaded program reads multi-buffer frames whole (kernels >= 5.18).
    #[must_use]
    pub fn multi_buffer(&self) -> bool {
        self.program == PROGRAM_FRAGS
    }

    /// Runs the program once on `frame` with `BPF_PROG_TEST_RUN` and returns its XDP action.
    pub fn test_run(&mut self, frame: &[u8], repeat: u32) -> Result<(u32, std::time::Duration)> {
        let prog: &mut Xdp = program(&mut self.ebpf, self.program)?;
        let opts = TestRunOptions { data_in: Some(frame), repeat, ..TestRunOptions::default() };
        let r = prog.test_run(opts).context("BPF_PROG_TEST_RUN failed")?;
        Ok((r.return_value, r.duration))
    }

    /// How many instructions the verifier processed to accept the program (kernels >= 5.16).
    pub fn verified_instructions(&mut self) -> Result<Option<u32>> {
        Ok(program(&mut self.ebpf, self.program)?.info()?.verified_instruction_count())
    }

    /// As [`XdpSctp::verified_instructions`], for the message count the XDP program
    /// tail-calls.
    pub fn verified_tally_instructions(&mut self) -> Result<Option<u32>> {
        Ok(program(&mut self.ebpf, tally_program(self.program))?.info()?.verified_instruction_count())
    }

    /// As [`XdpSctp::verified_instructions`], for the TC egress program and the message
    /// count it tail-calls.
    pub fn verified_egress_instructions(&mut self) -> Result<[Option<u32>; 2]> {
        let tally = if self.program == PROGRAM_BOUNDED { TC_TALLY_BOUNDED } else { TC_TALLY };
        let mut count = |name| -> Result<Option<u32>> {
            Ok(egress_program(&mut self.ebpf, name)?.info()?.verified_instruction_count())
        };
        Ok([count(self.egress)?, count(tally)?])
    }

    /// Turns the per-DATA-chunk events (for the join) and the per-packet summaries (for
    /// the association table) on or off.
    pub fn set_events(&mut self, data: bool, packets: bool) -> Result<()> {
        let bits = if data { events::DATA } else { 0 } | if packets { events::PACKETS } else { 0 };
        set_config(&mut self.ebpf, CONFIG_EVENTS, bits)
    }

    /// The ring buffer of DATA events (once; the caller keeps it).
    pub fn take_data_events(&mut self) -> Result<RingBuf<MapData>> {
        self.take_ring(&maps::DATA_EVENTS)
    }

    /// The ring buffer of packet summaries (once; the caller keeps it).
    pub fn take_packet_events(&mut self) -> Result<RingBuf<MapData>> {
        self.take_ring(&maps::PACKET_EVENTS)
    }

    /// Where associations met mid-way are paired (`abi::maps::MIDWAY`; once, the caller
    /// keeps it).
    pub fn take_midway(&mut self) -> Result<HashMap<MapData, FlowKey, u32>> {
        let spec = &maps::MIDWAY;
        let map = self.ebpf.take_map(spec.name).with_context(|| format!("{} already taken", spec.name))?;
        Ok(HashMap::try_from(map)?)
    }

    /// The Diameter requests waiting for their answers (once, the caller keeps it).
    pub fn take_pending(&mut self) -> Result<PendingRequests> {
        let spec = &maps::PENDING;
        let map = self.ebpf.take_map(spec.name).with_context(|| format!("{} already taken", spec.name))?;
        Ok(PendingRequests::new(HashMap::try_from(map)?))
    }

    fn take_ring(&mut self, spec: &MapSpec) -> Result<RingBuf<MapData>> {
        let map = self.ebpf.take_map(spec.name).with_context(|| format!("{} already taken", spec.name))?;
        Ok(RingBuf::try_from(map)?)
    }

    /// The time the program reads for the next frames (loaded with `replay` only).
    pub fn set_replay_clock(&mut self, now_ns: u64) -> Result<()> {
        let map = MapSource::map_mut(&mut self.ebpf, &maps::REPLAY_CLOCK)?;
        let mut clock: Array<&mut MapData, u64> = Array::try_from(map)?;
        clock.set(0, now_ns, 0)?;
        Ok(())
    }

    /// Zeroes every counter and forgets every flow, the directory of associations and the
    /// Diameter requests and response times.
    pub fn reset(&mut self) -> Result<()> {
        let map = MapSource::map_mut(&mut self.ebpf, &maps::GLOBAL)?;
        let mut array: PerCpuArray<&mut MapData, GlobalStats> = PerCpuArray::try_from(map)?;
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| anyhow::anyhow!("{what}: {e}"))?;
        let zeros: Vec<GlobalStats> = vec![bytemuck::Zeroable::zeroed(); cpus];
        array.set(0, zeros.try_into()?, 0)?;
        self.clear::<FlowKey, FlowStats>(&maps::FLOWS)?;
        self.clear::<FlowKey, TagEntry>(&maps::VTAGS)?;
        self.clear::<PendingKey, PendingRequest>(&maps::PENDING)?;
        self.clear::<ResponseKey, RoundTrips>(&maps::RESPONSES)
    }

    /// Empties a hash map.
    fn clear<K: Pod, V: Pod>(&mut self, spec: &MapSpec) -> Result<()> {
        let mut map: HashMap<&mut MapData, K, V> = HashMap::try_from(MapSource::map_mut(&mut self.ebpf, spec)?)?;
        let keys: Vec<K> = map.keys().collect::<Result<_, _>>()?;
        for k in keys {
            map.remove(&k)?;
        }
        Ok(())
    }
}

fn load_object(opts: &LoadOptions, features: Features, log: VerifierLogLevel) -> Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    // Without bpf_ktime_get_coarse_ns the program reads the precise clock.
    let coarse_clock = u8::from(features.coarse_clock);
    let replay = u8::from(opts.replay);
    let provisional_flow_rate = if opts.replay { 0 } else { opts.provisional_flow_rate };
    // A burst that cannot turn the whole map over at once.
    let provisional_flow_burst = maps::PROVISIONAL_FLOW_BURST.min((opts.flow_capacity / 4).max(1));
    loader
        .map_max_entries(maps::FLOWS.name, opts.flow_capacity)
        .map_max_entries(maps::EGRESS_FLOWS.name, opts.flow_capacity)
        .override_global("COARSE_CLOCK", &coarse_clock, true)
        .override_global("REPLAY", &replay, true)
        .override_global("PROVISIONAL_FLOW_RATE", &provisional_flow_rate, true)
        .override_global("PROVISIONAL_FLOW_BURST", &provisional_flow_burst, true)
        .verifier_log_level(log);
    let pins: Vec<(&str, PathBuf)> = match &opts.pin_dir {
        Some(dir) => {
            prepare_pin_dir(dir)?;
            maps::pinned().map(|m| (m.name, dir.join(m.name))).collect()
        }
        None => Vec::new(),
    };
    for (name, path) in &pins {
        loader.map_pin_path(name, path.as_path());
    }
    loader.load(OBJECT).context("loading the XDP object into the kernel failed (does this kernel have BPF? is the memlock limit too low on a kernel older than 5.11?)")
}

/// The errno behind a failed attach: from the bpf link syscall, or from netlink on
/// kernels attaching XDP the older way.
/// The message count the XDP program `main` tail-calls (see `abi::maps::XDP_TALLY`).
fn tally_program(main: &str) -> &'static str {
    match main {
        PROGRAM_FRAGS => "sctp_xdp_tally_frags",
        PROGRAM_LINEAR => "sctp_xdp_tally",
        _ => "sctp_xdp_tally_bounded",
    }
}

fn os_error(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        ProgramError::XdpError(XdpError::NetlinkError(n)) => n.raw_os_error(),
        _ => None,
    }
}

fn egress_program<'e>(ebpf: &'e mut Ebpf, name: &str) -> Result<&'e mut SchedClassifier> {
    let prog = ebpf.program_mut(name).with_context(|| format!("program {name} missing from the object"))?;
    Ok(prog.try_into()?)
}

fn program<'e>(ebpf: &'e mut Ebpf, name: &str) -> Result<&'e mut Xdp> {
    let prog = ebpf.program_mut(name).with_context(|| format!("program {name} missing from the object"))?;
    Ok(prog.try_into()?)
}

/// Loads program `name` of the object (XDP or TC). A refused load is tried once more
/// before `refused` explains it: 6.18 was seen to refuse a message-count program now and
/// then with EINVAL and no verifier output, and to take the same instructions at once.
fn load_program(ebpf: &mut Ebpf, name: &str, opts: &LoadOptions, features: Features) -> Result<()> {
    let mut load = || match ebpf.program_mut(name) {
        Some(Program::Xdp(p)) => p.load(),
        Some(Program::SchedClassifier(p)) => p.load(),
        _ => Err(ProgramError::UnexpectedProgramType),
    };
    let Err(first) = load() else {
        return Ok(());
    };
    if load().is_ok() {
        log::warn!("the kernel refused {name} ({first}), then took it on a second try");
        return Ok(());
    }
    Err(refused(opts, features, name, &first))
}

/// Why program `name` did not load (`first`: the error of the load without a log), with
/// the verifier's log: the object is loaded again with the log on (off on the way in:
/// logging every instruction makes verification several times slower).
fn refused(opts: &LoadOptions, features: Features, name: &str, first: &ProgramError) -> anyhow::Error {
    let mut ebpf = match load_object(opts, features, VerifierLogLevel::DEBUG | VerifierLogLevel::STATS) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let loaded = match ebpf.program_mut(name) {
        Some(Program::Xdp(p)) => p.load(),
        Some(Program::SchedClassifier(p)) => p.load(),
        _ => return anyhow::anyhow!("program {name} missing from the object"),
    };
    match loaded {
        Err(e) => explain_verifier(e).context(format!("loading {name}")),
        Ok(()) => anyhow::anyhow!("{name} failed to load ({first}), then loaded on a second try: run again"),
    }
}

/// The verifier's log is the only useful part of a load failure: keep it whole.
fn explain_verifier(e: ProgramError) -> anyhow::Error {
    match e {
        ProgramError::LoadError { io_error, verifier_log } => {
            anyhow::anyhow!("the kernel's verifier rejected the program ({io_error}):\n{verifier_log}")
        }
        other => anyhow::Error::new(other).context("loading the program failed"),
    }
}

impl MapSource for XdpSctp {
    fn map(&self, spec: &MapSpec) -> Result<&aya::maps::Map> {
        MapSource::map(&self.ebpf, spec)
    }

    fn map_mut(&mut self, spec: &MapSpec) -> Result<&mut aya::maps::Map> {
        MapSource::map_mut(&mut self.ebpf, spec)
    }
}

#[cfg(test)]
mod tests {
    use sctp_common::abi::maps::{EGRESS_SEEN, EGRESS_TALLY, MAPS, SEEN, TALLY};

    use super::OBJECT;

    /// Both sides name the maps once (`abi::maps`): the object the kernel gets must have
    /// exactly those maps, of those kinds and sizes.
    #[test]
    fn the_embedded_object_has_the_maps_the_abi_describes() {
        let obj = aya_obj::Object::parse(OBJECT).expect("the embedded object parses");
        for spec in MAPS {
            let map = obj.maps.get(spec.name).unwrap_or_else(|| panic!("map {} missing from the object", spec.name));
            let got = (map.map_type(), map.key_size() as usize, map.value_size() as usize, map.max_entries());
            let want = (spec.kind, spec.key_size, spec.value_size, spec.max_entries);
            assert_eq!(got, want, "map {}: (kind, key size, value size, capacity)", spec.name);
        }
        // `.rodata` holds the globals user space sets at load (`COARSE_CLOCK`, `REPLAY`), not a map
        // of the ABI.
        let mut names: Vec<&str> = obj.maps.keys().map(String::as_str).filter(|n| !n.starts_with('.')).collect();
        names.sort_unstable();
        let mut known: Vec<&str> =
            MAPS.iter().map(|m| m.name).chain([SEEN, EGRESS_SEEN, TALLY, EGRESS_TALLY]).collect();
        known.sort_unstable();
        assert_eq!(names, known, "every map of the object is in abi::maps");
    }
}
