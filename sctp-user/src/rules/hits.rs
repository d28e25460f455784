//! What each rule dropped, for `rules show` and the metrics.

use std::time::Duration;

use anyhow::Result;
use sctp_common::abi::{enable, Counter, GlobalStats, RuleSet, MAX_RULES};
use serde::Serialize;

use super::apply::active_generation;
use crate::{
    bpf::maps::{rule_set, MapSource},
    sys::clock::monotonic_ns,
};

/// How long the active rules still learn unknown verification tags (`validate-vtag`'s
/// learning window), if they do.
pub fn learning_left(src: &dyn MapSource) -> Result<Option<Duration>> {
    let set = rule_set(src, active_generation(src)?)?;
    let now = monotonic_ns();
    Ok((set.flags & enable::VALIDATE_VTAG != 0 && set.vtag_learn_until_ns > now)
        .then(|| Duration::from_nanos(set.vtag_learn_until_ns - now)))
}

/// One rule as `rules show` and the metrics report it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RuleHits {
    pub rule: String,
    /// The drop reason it charges (the key of `"drops"`).
    pub reason: &'static str,
    /// Packets it dropped since it was applied.
    pub drops: u64,
    /// Generation slot and id: what identifies its counter.
    #[serde(skip)]
    pub slot: (u32, u8, u64),
}

/// The rules of both generations (active first) with their drops, counted in `global`
/// (the counters of the same program, summed over CPUs).
pub fn hits(src: &dyn MapSource, global: &GlobalStats) -> Result<(Vec<RuleHits>, Vec<RuleHits>)> {
    let active = active_generation(src)?;
    let (this, other) = (rule_set(src, active)?, rule_set(src, active ^ 1)?);
    Ok(hits_of(global, active, [&this, &other]))
}

/// [`hits`] of rule sets at hand: `sets` are the active generation `active`'s and the
/// other's.
#[must_use]
pub fn hits_of(global: &GlobalStats, active: u32, sets: [&RuleSet; 2]) -> (Vec<RuleHits>, Vec<RuleHits>) {
    let hits = &global.rule_hits;
    let mut out = [Vec::new(), Vec::new()];
    for ((slot, gen), set) in [active, active ^ 1].into_iter().enumerate().zip(sets) {
        let rules = usize::try_from(set.rule_count).unwrap_or(MAX_RULES).min(MAX_RULES);
        for (i, id) in (0..rules).zip(0u8..) {
            let reason = Counter::ALL
                .get(Counter::FIRST_DROP as usize + usize::from(set.rule_reason[i]))
                .map_or("?", |c| c.reason());
            let count = hits[gen as usize * MAX_RULES + i];
            out[slot].push(RuleHits {
                rule: set.label(id).to_string(),
                reason,
                drops: count.saturating_sub(set.hits_base[i]),
                slot: (gen, id, set.hits_base[i]),
            });
        }
    }
    let [a, b] = out;
    (a, b)
}

/// `rules show`: the active rules and what they dropped.
#[must_use]
pub fn show_table(active: &[RuleHits]) -> String {
    use std::fmt::Write as _;
    if active.is_empty() {
        return "no rules: every packet passes\n".into();
    }
    let mut s = format!("{:<56} {:<18} {:>12}\n", "rule", "reason", "drops");
    for r in active {
        let _ = writeln!(s, "{:<56} {:<18} {:>12}", r.rule, r.reason, r.drops);
    }
    s
}
