//! What the kernel-side counters say at one moment, summed over CPUs.

use std::collections::BTreeMap;

use anyhow::Result;
use sctp_common::abi::{
    maps::{EGRESS_FLOWS, EGRESS_GLOBAL},
    FlowKey, FlowStats, GlobalStats,
};

use crate::{
    bpf::maps::{self, MapSource},
    rules::{self, RuleHits},
};

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub global: GlobalStats,
    pub flows: BTreeMap<FlowKey, FlowStats>,
    /// The active rules with their drops, then the previous generation's.
    pub rules: (Vec<RuleHits>, Vec<RuleHits>),
}

impl Snapshot {
    /// Reads every counter of a loaded program or a running instance.
    pub fn take(src: &dyn MapSource) -> Result<Self> {
        let global = maps::global(src)?;
        Ok(Self { rules: rules::hits(src, &global)?, flows: maps::flows(src)?, global })
    }

    /// The counters of the packets leaving (the TC egress program's; it has no rules).
    pub fn take_egress(src: &dyn MapSource) -> Result<Self> {
        Ok(Self {
            global: maps::global_in(src, &EGRESS_GLOBAL)?,
            flows: maps::flows_in(src, &EGRESS_FLOWS)?,
            rules: (Vec::new(), Vec::new()),
        })
    }
}

/// The `top` busiest flows, busiest first: by packets, then bytes, then key (so the
/// order is the same whichever engine counted them).
pub fn busiest(flows: &BTreeMap<FlowKey, FlowStats>, top: usize) -> impl Iterator<Item = (&FlowKey, &FlowStats)> {
    let mut all: Vec<_> = flows.iter().collect();
    let rank = |(k, f): &(&FlowKey, &FlowStats)| (std::cmp::Reverse(f.packets), std::cmp::Reverse(f.bytes), **k);
    if all.len() > top {
        all.select_nth_unstable_by_key(top, rank);
        all.truncate(top);
    }
    all.sort_unstable_by_key(rank);
    all.into_iter()
}
