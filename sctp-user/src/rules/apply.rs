//! Installing compiled rules in a loaded or running program: fill the idle generation,
//! then flip one word.

use anyhow::{Context as _, Result};
use aya::maps::{lpm_trie::Key, HashMap, LpmTrie, MapData};
use sctp_common::abi::{
    maps::{self as abi_maps, CONFIG_GENERATION},
    PpidKey, SrcPrefix, MAX_RULES, SRC_PREFIX_HEADER_BITS,
};

use super::compile::Compiled;
use crate::{
    bpf::maps::{self, config, set_config, set_rule_set, MapSource},
    sys::clock::monotonic_ns,
};

/// The generation packets are judged by now.
pub fn active_generation(src: &dyn MapSource) -> Result<u32> {
    Ok(config(src, CONFIG_GENERATION)? & 1)
}

/// Installs compiled rules as the next generation, then flips to it: packets judged
/// before the flip used the old set whole, packets after it the new one. The slots of
/// the generation being replaced were last in use before the previous flip.
pub fn apply(src: &mut dyn MapSource, c: &Compiled) -> Result<()> {
    // CLOCK_MONOTONIC is bpf_ktime_get_ns's clock.
    apply_at(src, c, monotonic_ns())
}

/// [`apply`], for a program whose clock reads `now_ns` now (a replay's capture time).
pub fn apply_at(src: &mut dyn MapSource, c: &Compiled, now_ns: u64) -> Result<()> {
    let next = active_generation(src)? ^ 1;
    let mut set = c.set_at(now_ns);
    // Hit counters only grow: remember where this generation's start.
    let hits = maps::global(src)?.rule_hits;
    for (id, base) in set.hits_base.iter_mut().enumerate() {
        *base = hits[next as usize * MAX_RULES + id];
    }
    {
        let mut src_rules: LpmTrie<&mut MapData, SrcPrefix, u32> =
            LpmTrie::try_from(src.map_mut(&abi_maps::SRC_RULES)?)?;
        // A key that cannot be read must stop the apply: skipping it could leave a rule of
        // the old set in the generation about to become active.
        let keys: Vec<Key<SrcPrefix>> = src_rules.keys().collect::<Result<_, _>>().context("reading SRC_RULES")?;
        let stale = keys.into_iter().filter(|k| u32::from(k.data().gen) == next);
        for k in stale {
            src_rules.remove(&k)?;
        }
        for (family, addr, len, value) in &c.prefixes {
            let data = SrcPrefix::new(next, *family, *addr);
            src_rules.insert(&Key::new(SRC_PREFIX_HEADER_BITS + len, data), value, 0).with_context(|| {
                format!("adding a source prefix (at most {} in all)", abi_maps::SRC_RULES.max_entries)
            })?;
        }
    }
    {
        let mut ppid_rules: HashMap<&mut MapData, PpidKey, u32> =
            HashMap::try_from(src.map_mut(&abi_maps::PPID_RULES)?)?;
        let keys: Vec<PpidKey> = ppid_rules.keys().collect::<Result<_, _>>().context("reading PPID_RULES")?;
        let stale = keys.into_iter().filter(|k| k.gen == next);
        for k in stale {
            ppid_rules.remove(&k)?;
        }
        for (ppid, id) in &c.ppids {
            ppid_rules.insert(PpidKey { gen: next, ppid: *ppid }, u32::from(*id), 0)?;
        }
    }
    set_rule_set(src, next, set)?;
    set_config(src, CONFIG_GENERATION, next)
}
