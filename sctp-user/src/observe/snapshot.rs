//! What the kernel-side counters say at one moment, summed over CPUs.

use std::collections::BTreeMap;

use anyhow::Result;
use sctp_common::abi::{FlowKey, FlowStats, GlobalStats};

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
        Ok(Self {
            rules: rules::hits(src, &global)?,
            flows: maps::flows(src)?,
            global,
        })
    }
}
