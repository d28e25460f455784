//! Helpers shared by the integration tests.

pub mod netns;
pub mod sctp;

use std::{collections::BTreeMap, path::PathBuf};

use bytemuck::Zeroable as _;
use sctp_common::{
    parse,
    stats::{DataEvent, FlowKey, FlowStats, GlobalStats},
};

/// Tests that load BPF need root. Says plainly when one is skipped.
#[must_use]
pub fn have_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIPPED {test}: needs root to load BPF (run `cargo xtask test`)");
    }
    root
}

/// The same packets through the host copy of the parser.
pub struct HostRun {
    pub global: GlobalStats,
    pub flows: BTreeMap<FlowKey, FlowStats>,
    pub events: Vec<DataEvent>,
}

impl Default for HostRun {
    fn default() -> Self {
        Self {
            global: GlobalStats::zeroed(),
            flows: BTreeMap::new(),
            events: Vec::new(),
        }
    }
}

impl HostRun {
    pub fn process(&mut self, frame: &[u8]) {
        let flows = &mut self.flows;
        parse::process(
            frame,
            &mut self.global,
            1,
            |k| flows.entry(*k).or_insert_with(FlowStats::zeroed),
            &mut self.events,
        );
    }
}

/// Flows with the timestamps cleared: the kernel's clock and the host's differ.
#[must_use]
pub fn without_time(flows: &BTreeMap<FlowKey, FlowStats>) -> BTreeMap<FlowKey, FlowStats> {
    flows
        .iter()
        .map(|(k, f)| {
            let mut f = *f;
            f.first_seen_ns = 0;
            f.last_seen_ns = 0;
            (*k, f)
        })
        .collect()
}

/// `../shared/captures` beside the checkout, if it is there.
#[must_use]
pub fn captures_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/captures");
    dir.is_dir().then_some(dir)
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

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}
