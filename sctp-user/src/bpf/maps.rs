//! The program's maps, wherever they come from: a program this process loaded, or a
//! running instance's pins. Readers sum per-CPU values; names come from `abi::maps`.

use std::{collections::BTreeMap, path::Path};

use anyhow::{anyhow, bail, Context as _, Result};
use aya::{
    maps::{Array, HashMap, Map, MapData, PerCpuArray},
    Pod,
};
use sctp_common::abi::{
    maps::{self, MapSpec},
    FlowKey, FlowStats, GlobalStats, ResponseKey, RoundTrips, RuleSet,
};

use crate::sys::privilege::{require, PINNED_MAPS};

/// Where maps come from.
pub trait MapSource {
    fn map(&self, spec: &MapSpec) -> Result<&Map>;
    fn map_mut(&mut self, spec: &MapSpec) -> Result<&mut Map>;
}

impl MapSource for aya::Ebpf {
    fn map(&self, spec: &MapSpec) -> Result<&Map> {
        aya::Ebpf::map(self, spec.name).ok_or_else(|| anyhow!("{} map missing from the XDP object", spec.name))
    }

    fn map_mut(&mut self, spec: &MapSpec) -> Result<&mut Map> {
        aya::Ebpf::map_mut(self, spec.name).ok_or_else(|| anyhow!("{} map missing from the XDP object", spec.name))
    }
}

/// A running instance's maps, opened from its pin directory, which stays locked while
/// they are open: two `rules apply` at once would fill the same idle generation.
pub struct Pinned {
    maps: BTreeMap<&'static str, Map>,
    _lock: std::fs::File,
}

impl Pinned {
    pub fn open(dir: &Path) -> Result<Self> {
        require(PINNED_MAPS)?;
        let missing = |e: &dyn std::fmt::Display| {
            anyhow!(
                "no running sctp-xdp instance pinned at {} ({e}): start one with `sctp-user run --iface IFACE`, or pass its --pin-dir",
                dir.display()
            )
        };
        std::fs::metadata(dir).map_err(|e| missing(&e))?;
        let lock = crate::sys::bpffs::apply_lock(dir)?;
        // SAFETY: flock on a live fd; released when the file closes.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
            bail!("cannot lock the rules of {}: {}", dir.display(), std::io::Error::last_os_error());
        }
        let mut opened = BTreeMap::new();
        for spec in maps::pinned() {
            let data = MapData::from_pin(dir.join(spec.name)).map_err(|e| missing(&e))?;
            opened.insert(spec.name, Map::from_map_data(data)?);
        }
        Ok(Self { maps: opened, _lock: lock })
    }
}

impl MapSource for Pinned {
    fn map(&self, spec: &MapSpec) -> Result<&Map> {
        self.maps.get(spec.name).ok_or_else(|| anyhow!("{} is not pinned", spec.name))
    }

    fn map_mut(&mut self, spec: &MapSpec) -> Result<&mut Map> {
        self.maps.get_mut(spec.name).ok_or_else(|| anyhow!("{} is not pinned", spec.name))
    }
}

/// Global counters summed over CPUs.
pub fn global(src: &dyn MapSource) -> Result<GlobalStats> {
    global_in(src, &maps::GLOBAL)
}

/// The global counters of `spec` (`GLOBAL` or `EGRESS_GLOBAL`) summed over CPUs.
pub fn global_in(src: &dyn MapSource, spec: &MapSpec) -> Result<GlobalStats> {
    let array: PerCpuArray<&MapData, GlobalStats> = PerCpuArray::try_from(src.map(spec)?)?;
    let mut total: GlobalStats = bytemuck::Zeroable::zeroed();
    for cpu in array.get(&0, 0)?.iter() {
        total.merge(cpu);
    }
    Ok(total)
}

/// Every flow of the packets arriving.
pub fn flows(src: &dyn MapSource) -> Result<BTreeMap<FlowKey, FlowStats>> {
    flows_in(src, &maps::FLOWS)
}

/// Every flow of `spec` (`FLOWS` or `EGRESS_FLOWS`: one value per flow, shared by the
/// CPUs) but the sink (`FlowKey::SINK`). An entry the kernel evicts while it is read is
/// left out.
pub fn flows_in(src: &dyn MapSource, spec: &MapSpec) -> Result<BTreeMap<FlowKey, FlowStats>> {
    let mut flows = entries(src, spec)?;
    flows.remove(&FlowKey::SINK);
    Ok(flows)
}

/// Response times of Diameter answers, by direction and command (`RESPONSES`).
pub fn responses(src: &dyn MapSource) -> Result<BTreeMap<ResponseKey, RoundTrips>> {
    entries(src, &maps::RESPONSES)
}

/// Every entry of a hash map of `spec`; one the kernel evicts while it is read is left
/// out.
fn entries<K: Pod + Ord, V: Pod>(src: &dyn MapSource, spec: &MapSpec) -> Result<BTreeMap<K, V>> {
    let map: HashMap<&MapData, K, V> = HashMap::try_from(src.map(spec)?)?;
    let mut out = BTreeMap::new();
    for entry in &map {
        match entry {
            Ok((key, value)) => _ = out.insert(key, value),
            Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", spec.name)),
        }
    }
    Ok(out)
}

/// Packet summaries lost to a full ring, summed over CPUs.
pub fn packet_events_lost(src: &dyn MapSource) -> Result<u64> {
    lost(src, &maps::PACKET_EVENTS_LOST)
}

/// DATA events and withdrawals lost to a full ring, summed over CPUs.
pub fn data_events_lost(src: &dyn MapSource) -> Result<u64> {
    lost(src, &maps::DATA_EVENTS_LOST)
}

fn lost(src: &dyn MapSource, spec: &MapSpec) -> Result<u64> {
    let array: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(src.map(spec)?)?;
    Ok(array.get(&0, 0)?.iter().sum())
}

/// One slot of the `CONFIG` array.
pub fn config(src: &dyn MapSource, slot: u32) -> Result<u32> {
    let config: Array<&MapData, u32> = Array::try_from(src.map(&maps::CONFIG)?)?;
    Ok(config.get(&slot, 0)?)
}

pub fn set_config(src: &mut dyn MapSource, slot: u32, value: u32) -> Result<()> {
    let mut config: Array<&mut MapData, u32> = Array::try_from(src.map_mut(&maps::CONFIG)?)?;
    config.set(slot, value, 0)?;
    Ok(())
}

/// The rule set of generation `gen`.
pub fn rule_set(src: &dyn MapSource, gen: u32) -> Result<RuleSet> {
    let rules: Array<&MapData, RuleSet> = Array::try_from(src.map(&maps::RULES)?)?;
    Ok(rules.get(&gen, 0)?)
}

pub fn set_rule_set(src: &mut dyn MapSource, gen: u32, set: RuleSet) -> Result<()> {
    let mut rules: Array<&mut MapData, RuleSet> = Array::try_from(src.map_mut(&maps::RULES)?)?;
    rules.set(gen, set, 0)?;
    Ok(())
}
