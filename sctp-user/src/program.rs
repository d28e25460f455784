//! Loading the embedded XDP program, attaching it, and reading its maps.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _, Result};
use aya::{
    maps::{Array, MapData, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{
        tc::{self, TcAttachType},
        xdp::XdpLinkId,
        ProgramError, SchedClassifier, TestRun as _, TestRunOptions, Xdp, XdpMode,
    },
    Ebpf, EbpfLoader, VerifierLogLevel,
};
use sctp_common::stats::{DataEvent, FlowKey, FlowStats, GlobalStats};

use crate::rules::RuleHits;

/// The XDP object built by build.rs from sctp-ebpf.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sctp-xdp"));
const PROGRAM: &str = "sctp_xdp";
/// The egress companion that learns verification tags (`validate-vtag`).
const EGRESS_PROGRAM: &str = "sctp_tc_egress";

/// What the kernel-side counters say at one moment, summed over CPUs.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub global: GlobalStats,
    pub flows: BTreeMap<FlowKey, FlowStats>,
    /// The active rules with their drops, then the previous generation's.
    pub rules: (Vec<RuleHits>, Vec<RuleHits>),
}

/// The loaded XDP program and its maps.
pub struct XdpSctp {
    ebpf: Ebpf,
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
    /// Pin the counter maps (GLOBAL, FLOWS) in this bpffs directory, reusing them if they
    /// are there already: counters then survive a restart of the controller.
    pub pin_dir: Option<PathBuf>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            flow_capacity: 16384,
            pin_dir: None,
        }
    }
}

/// Maps that outlive the controller when pinned: the counters, and the rules with their
/// state (so `sctp-user rules` can change a running instance).
pub const PINNED_MAPS: [&str; 9] = [
    "GLOBAL",
    "FLOWS",
    "CONFIG",
    "RULES",
    "SRC_RULES",
    "PPID_RULES",
    "VTAGS",
    "INIT_BUCKETS",
    "GLOBAL_BUCKET",
];

impl XdpSctp {
    /// Loads the program into the kernel (verifier included). Needs root.
    pub fn load(opts: LoadOptions) -> Result<Self> {
        require_root()?;
        if opts.flow_capacity == 0 {
            bail!("--flow-capacity must be at least 1");
        }
        // No verifier log on the way in: logging every instruction makes verification
        // several times slower. Only a failure is loaded again with the log, to show it.
        let mut ebpf = load_object(&opts, VerifierLogLevel::DISABLE)?;
        if program(&mut ebpf)?.load().is_err() {
            let mut ebpf = load_object(&opts, VerifierLogLevel::DEBUG | VerifierLogLevel::STATS)?;
            return Err(match program(&mut ebpf)?.load() {
                Err(e) => explain_verifier(e),
                Ok(()) => anyhow::anyhow!("the XDP program failed to load, then loaded on a second try: run again"),
            });
        }
        egress_program(&mut ebpf)?.load().map_err(explain_verifier)?;
        Ok(Self {
            ebpf,
            links: Vec::new(),
            egress_missing: None,
        })
    }

    /// Attaches to `iface` (in the calling thread's network namespace) in the given mode.
    /// The interface is checked first (`require_interface`) for the one-line error.
    /// May be called for several interfaces: they share the maps.
    pub fn attach(&mut self, iface: &str, mode: XdpMode) -> Result<()> {
        require_interface(iface)?;
        let prog: &mut Xdp = program(&mut self.ebpf)?;
        let link = prog.attach(iface, mode).map_err(|e| match e {
            ProgramError::UnknownInterface { name } => {
                anyhow::anyhow!("no interface named {name:?}: list them with `ip link`")
            }
            other => anyhow::Error::new(other).context(format!("attaching XDP to {iface} failed")),
        })?;
        self.links.push(link);
        // Egress: a clsact qdisc first (it may be there already; TCX on kernels >= 6.6 does
        // not need it). The link lives as long as the program.
        let _ = tc::qdisc_add_clsact(iface);
        if let Err(e) = egress_program(&mut self.ebpf)?.attach(iface, TcAttachType::Egress) {
            self.egress_missing = Some(format!(
                "the egress tag learner could not be attached to {iface} ({e}; does the kernel have sch_ingress and cls_bpf?)"
            ));
        }
        Ok(())
    }

    /// Why tags cannot be learned from packets leaving (a server's INIT-ACKs), if so:
    /// `validate-vtag` would then drop a server's own associations.
    pub fn egress_missing(&self) -> Option<&str> {
        self.egress_missing.as_deref()
    }

    /// Applies rules (see `rules::apply`).
    pub fn apply_rules(&mut self, rules: &crate::rules::Compiled) -> Result<()> {
        crate::rules::apply(&mut self.ebpf, rules)
    }

    /// Runs the program once on `frame` with BPF_PROG_TEST_RUN and returns its XDP action.
    pub fn test_run(&mut self, frame: &[u8], repeat: u32) -> Result<(u32, std::time::Duration)> {
        let prog: &mut Xdp = program(&mut self.ebpf)?;
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::default()
        };
        let r = prog.test_run(opts).context("BPF_PROG_TEST_RUN failed")?;
        Ok((r.return_value, r.duration))
    }

    /// Global counters summed over CPUs.
    pub fn global(&self) -> Result<GlobalStats> {
        let map = self.ebpf.map("GLOBAL").context("GLOBAL map missing")?;
        let array: PerCpuArray<&MapData, GlobalStats> = PerCpuArray::try_from(map)?;
        let mut total: GlobalStats = bytemuck::Zeroable::zeroed();
        for cpu in array.get(&0, 0)?.iter() {
            total.merge(cpu);
        }
        Ok(total)
    }

    /// Every flow, each summed over CPUs.
    pub fn flows(&self) -> Result<BTreeMap<FlowKey, FlowStats>> {
        let map = self.ebpf.map("FLOWS").context("FLOWS map missing")?;
        let flows: PerCpuHashMap<&MapData, FlowKey, FlowStats> = PerCpuHashMap::try_from(map)?;
        let mut out = BTreeMap::new();
        for entry in flows.iter() {
            let (key, per_cpu) = entry.context("reading FLOWS")?;
            let mut total: FlowStats = bytemuck::Zeroable::zeroed();
            for cpu in per_cpu.iter() {
                total.merge(cpu);
            }
            out.insert(key, total);
        }
        Ok(out)
    }

    /// How many instructions the verifier processed to accept the program (kernels >= 5.16).
    pub fn verified_instructions(&mut self) -> Result<Option<u32>> {
        Ok(program(&mut self.ebpf)?.info()?.verified_instruction_count())
    }

    /// Turns the per-DATA-chunk events (for the join) on or off.
    pub fn set_data_events(&mut self, on: bool) -> Result<()> {
        let map = self.ebpf.map_mut("CONFIG").context("CONFIG map missing")?;
        let mut config: Array<&mut MapData, u32> = Array::try_from(map)?;
        config.set(0, u32::from(on), 0)?;
        Ok(())
    }

    /// The ring buffer of DATA events (once; the caller keeps it).
    pub fn take_data_events(&mut self) -> Result<RingBuf<aya::maps::MapData>> {
        let map = self.ebpf.take_map("DATA_EVENTS").context("DATA_EVENTS already taken")?;
        Ok(RingBuf::try_from(map)?)
    }

    /// Zeroes every counter and forgets every flow.
    pub fn reset(&mut self) -> Result<()> {
        let map = self.ebpf.map_mut("GLOBAL").context("GLOBAL map missing")?;
        let mut array: PerCpuArray<&mut MapData, GlobalStats> = PerCpuArray::try_from(map)?;
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| anyhow::anyhow!("{what}: {e}"))?;
        let zeros: Vec<GlobalStats> = vec![bytemuck::Zeroable::zeroed(); cpus];
        array.set(0, zeros.try_into()?, 0)?;
        let map = self.ebpf.map_mut("FLOWS").context("FLOWS map missing")?;
        let mut flows: PerCpuHashMap<&mut MapData, FlowKey, FlowStats> = PerCpuHashMap::try_from(map)?;
        let keys: Vec<FlowKey> = flows.keys().collect::<Result<_, _>>()?;
        for k in keys {
            flows.remove(&k)?;
        }
        Ok(())
    }

    pub fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot {
            global: self.global()?,
            flows: self.flows()?,
            rules: crate::rules::hits(&self.ebpf)?,
        })
    }
}

fn load_object(opts: &LoadOptions, log: VerifierLogLevel) -> Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    loader
        .map_max_entries("FLOWS", opts.flow_capacity)
        .verifier_log_level(log);
    let pins: Vec<(&str, PathBuf)> = match &opts.pin_dir {
        Some(dir) => {
            prepare_pin_dir(dir)?;
            PINNED_MAPS.iter().map(|m| (*m, dir.join(m))).collect()
        }
        None => Vec::new(),
    };
    for (name, path) in &pins {
        loader.map_pin_path(name, path.as_path());
    }
    loader.load(OBJECT).context("loading the XDP object into the kernel failed (does this kernel have BPF? is the memlock limit too low on a kernel older than 5.11?)")
}

/// Where bpffs lives by convention; mounted there if missing (as bpftool and Cilium do).
const BPFFS: &str = "/sys/fs/bpf";

fn on_bpffs(path: &Path) -> bool {
    const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
    let probe = path.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/"));
    let Ok(c) = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs on a valid C string into a zeroed struct.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::statfs(c.as_ptr(), &raw mut fs) == 0 && fs.f_type as i64 == BPF_FS_MAGIC }
}

/// The pin directory must be on a bpffs; create it there if needed.
fn prepare_pin_dir(dir: &Path) -> Result<()> {
    if !on_bpffs(dir) && dir.starts_with(BPFFS) && Path::new(BPFFS).is_dir() {
        // SAFETY: mount(2) with valid C strings and no data.
        let rc = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                c"/sys/fs/bpf".as_ptr(),
                c"bpf".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc == 0 {
            eprintln!("sctp-user: mounted a bpf filesystem at {BPFFS} for the pinned counters");
        }
    }
    if !on_bpffs(dir) {
        bail!(
            "{} is not on a bpf filesystem: mount one (mount -t bpf bpf /sys/fs/bpf; inside `ip netns exec`, /sys is remounted without it: use --pin-dir on a bpffs mounted outside) or run with --no-pin",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn egress_program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier> {
    let prog = ebpf
        .program_mut(EGRESS_PROGRAM)
        .context("program sctp_tc_egress missing from the object")?;
    Ok(prog.try_into()?)
}

fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp> {
    let prog = ebpf
        .program_mut(PROGRAM)
        .context("program sctp_xdp missing from the object")?;
    Ok(prog.try_into()?)
}

/// The verifier's log is the only useful part of a load failure: keep it whole.
fn explain_verifier(e: ProgramError) -> anyhow::Error {
    match e {
        ProgramError::LoadError { io_error, verifier_log } => {
            anyhow::anyhow!("the kernel's verifier rejected the XDP program ({io_error}):\n{verifier_log}")
        }
        other => anyhow::Error::new(other).context("loading the XDP program failed"),
    }
}

/// The interface must exist (in this network namespace) before anything is loaded.
pub fn require_interface(iface: &str) -> Result<()> {
    if iface.is_empty() || iface.len() >= libc::IFNAMSIZ || iface.contains(['\0', '/', ' ']) {
        bail!("{iface:?} is not a valid interface name");
    }
    let c = std::ffi::CString::new(iface)?;
    // SAFETY: if_nametoindex on a valid C string.
    if unsafe { libc::if_nametoindex(c.as_ptr()) } == 0 {
        bail!("no interface named {iface:?}: list them with `ip link`");
    }
    Ok(())
}

/// Loading BPF needs CAP_BPF + CAP_NET_ADMIN (or CAP_SYS_ADMIN): say so up front.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("loading XDP needs root (CAP_BPF and CAP_NET_ADMIN): run it with sudo, or use `cargo xtask run`");
    }
    Ok(())
}

/// Every event waiting in the ring buffer.
pub fn drain_events(ring: &mut RingBuf<MapData>) -> Vec<DataEvent> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        if item.len() >= std::mem::size_of::<DataEvent>() {
            out.push(bytemuck::pod_read_unaligned(&item[..std::mem::size_of::<DataEvent>()]));
        }
    }
    out
}
