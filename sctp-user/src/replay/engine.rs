//! The two engines `inspect` replays frames through: the `sctp-common` parser and rules
//! compiled for the host (no root, no BPF), or the loaded XDP program itself with
//! `BPF_PROG_TEST_RUN` (the exact kernel behaviour). Both run on the capture's clock.

use anyhow::Result;
use bytemuck::Zeroable as _;
use sctp_common::{
    abi::{FlowKey, FlowStats, GlobalStats, RuleSet},
    host::MemFilter,
    parse::{self, NoEvents, WalkFindings},
};

use super::Snapshot;
use crate::{
    bpf::{LoadOptions, XdpSctp, LINEAR_FRAME_MAX},
    rules::{self, Compiled},
    sys::cpu,
};

/// `BPF_PROG_TEST_RUN` refuses XDP input shorter than an Ethernet header; the host engine
/// leaves such frames out too, so that both engines answer the same.
pub const MIN_FRAME: usize = 14;

/// Which engine replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The parser and rules compiled for the host: no root, any machine.
    Host,
    /// The loaded XDP program, through `BPF_PROG_TEST_RUN` (needs root).
    Kernel,
}

impl Kind {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Kernel => "kernel",
        }
    }
}

/// Flows the host engine keeps at most (the largest `--flow-capacity`): about 500 MB.
pub const MAX_FLOWS: usize = 1 << 20;

/// What became of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameOutcome {
    Ran,
    /// Larger than the kernel's test run takes (the kernel engine only).
    TooLarge,
}

/// The host engine: the same `process` the XDP program runs, with plain collections for
/// its maps. It keeps every flow up to [`MAX_FLOWS`] (the kernel's LRU table evicts
/// beyond its capacity).
pub struct HostEngine<'r> {
    global: GlobalStats,
    /// Hashed: a lookup per packet costs a third of an ordered map's (measured).
    flows: foldhash::HashMap<FlowKey, FlowStats>,
    filter: MemFilter<'r>,
    set: &'r RuleSet,
    seen: WalkFindings,
}

impl<'r> HostEngine<'r> {
    /// Judging by `set`: `rules`' set as applied at the capture's start.
    #[must_use]
    pub fn new(rules: &Compiled, set: &'r RuleSet) -> Self {
        Self {
            global: GlobalStats::zeroed(),
            flows: foldhash::HashMap::default(),
            filter: rules.host_filter(set, 0),
            set,
            seen: WalkFindings::new(),
        }
    }

    pub fn run(&mut self, frame: &[u8], now_ns: u64) {
        let flows = &mut self.flows;
        // Beyond the bound a new flow is not kept (`flow_unavailable`, as when the
        // kernel's table cannot take one): a capture of endless new tags cannot take all
        // memory.
        let room = flows.len() < MAX_FLOWS;
        let verdict = parse::process(
            frame,
            &mut self.global,
            || now_ns,
            |k, _, _| {
                if room || flows.contains_key(k) {
                    Some(flows.entry(*k).or_insert_with(FlowStats::zeroed))
                } else {
                    None
                }
            },
            &mut NoEvents,
            &mut self.filter,
            &mut self.seen,
        );
        parse::after_process(
            frame,
            verdict,
            &mut self.global,
            &mut self.filter,
            &mut NoEvents,
            &mut self.seen,
            |k, settle| {
                if let Some(f) = self.flows.get_mut(k) {
                    settle(f);
                }
            },
        );
    }

    /// Adds what another engine counted on other flows (a shard of the same capture).
    pub fn merge(&mut self, other: HostEngine) {
        self.global.merge(&other.global);
        for (k, f) in other.flows {
            self.flows.entry(k).or_insert_with(FlowStats::zeroed).merge(&f);
        }
    }

    #[must_use]
    pub fn into_snapshot(self) -> Snapshot {
        Snapshot {
            rules: rules::hits_of(&self.global, 0, [self.set, &RuleSet::empty()]),
            global: self.global,
            flows: self.flows.into_iter().collect(),
        }
    }
}

/// The kernel engine: the XDP program loaded for replay (its clock is the capture's).
pub struct KernelEngine {
    prog: XdpSctp,
    rules_applied: bool,
}

impl KernelEngine {
    /// Loads the program (the multi-buffer variant where the kernel has it, so that frames
    /// larger than a page replay whole).
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        // The flows' TSN state is per CPU: one CPU sees the sequence the host engine sees.
        cpu::pin_to_current();
        let prog = XdpSctp::load(&LoadOptions { multi_buffer: true, replay: true, ..opts.clone() })?;
        Ok(Self { prog, rules_applied: false })
    }

    /// Runs one frame at capture time `now_ns`; the rules are installed at the first.
    pub fn run(&mut self, rules: &Compiled, frame: &[u8], now_ns: u64) -> Result<FrameOutcome> {
        self.prog.set_replay_clock(now_ns)?;
        if !self.rules_applied {
            rules::apply_at(&mut self.prog, rules, now_ns)?;
            self.rules_applied = true;
        }
        match self.prog.test_run(frame, 1) {
            Ok(_) => Ok(FrameOutcome::Ran),
            Err(_) if frame.len() > LINEAR_FRAME_MAX => Ok(FrameOutcome::TooLarge),
            Err(e) => Err(e),
        }
    }

    /// Whether frames larger than a page replay whole (the kernel has multi-buffer XDP).
    #[must_use]
    pub fn multi_buffer(&self) -> bool {
        self.prog.multi_buffer()
    }

    /// The counters; the rules are installed first if no frame came.
    pub fn snapshot(&mut self, rules: &Compiled) -> Result<Snapshot> {
        if !self.rules_applied {
            rules::apply_at(&mut self.prog, rules, 0)?;
            self.rules_applied = true;
        }
        Snapshot::take(&self.prog)
    }
}
