//! Filtering rules in user space: read from flags and a TOML file, checked, compiled into
//! the XDP program's rule maps, applied to a loaded or a running (pinned) program with
//! an atomic generation flip, and read back for `rules show` and the metrics.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context as _, Result};
use aya::maps::{lpm_trie::Key, Array, HashMap, LpmTrie, Map, MapData, PerCpuArray};
use sctp_common::{
    chunk,
    rules::{enable, PpidKey, RuleSet, SrcPrefix, MAX_DENY_CHUNK, MAX_RULES, SRC_ALLOW, SRC_PREFIX_HEADER_BITS},
    stats::{Counter, GlobalStats, FAMILY_IPV4, FAMILY_IPV6},
};
use serde::{Deserialize, Serialize};

/// Index of the active generation in the CONFIG array.
const CONFIG_GENERATION: u32 = 1;
/// Default seconds a learned tag may stay idle.
const DEFAULT_VTAG_IDLE: u64 = 300;
/// Default learning window after rules with `validate-vtag` are applied.
const DEFAULT_VTAG_LEARN: u64 = 30;

/// The rules as a user writes them: the TOML file's keys and the flags share names.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuleConfig {
    #[serde(default)]
    pub deny_src: Vec<String>,
    #[serde(default)]
    pub allow_src: Vec<String>,
    #[serde(default)]
    pub allow_port: Vec<u16>,
    #[serde(default)]
    pub deny_ppid: Vec<u32>,
    /// Chunk type names (DATA, INIT, ABORT, ...) or numbers.
    #[serde(default)]
    pub deny_chunk: Vec<ChunkName>,
    #[serde(default)]
    pub deny_violations: bool,
    pub malformed: Option<Malformed>,
    #[serde(default)]
    pub validate_vtag: bool,
    pub vtag_learn: Option<u64>,
    pub vtag_idle: Option<u64>,
    pub init_rate: Option<u32>,
    pub init_burst: Option<u32>,
    pub global_init_rate: Option<u32>,
    pub global_init_burst: Option<u32>,
    pub max_chunks: Option<u32>,
    pub max_data_chunk: Option<u32>,
}

/// A chunk type by name or number (TOML accepts both).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ChunkName {
    Number(u8),
    Name(String),
}

impl ChunkName {
    fn resolve(&self) -> Result<u8> {
        match self {
            ChunkName::Number(n) => Ok(*n),
            ChunkName::Name(s) => parse_chunk_type(s),
        }
    }
}

/// What to do with SCTP packets the parser rejects.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Malformed {
    Drop,
    Pass,
}

/// The rule flags shared by `run` and `inspect`; they add to (lists) or override
/// (values) what `--rules FILE` says.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RuleArgs {
    /// TOML file of rules (same names as these flags, e.g. `deny-src = ["198.18.5.0/24"]`).
    #[arg(long = "rules", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Drop SCTP from this source prefix (IPv4 or IPv6 CIDR; repeatable).
    #[arg(long, value_name = "CIDR")]
    pub deny_src: Vec<String>,
    /// Only accept SCTP from these source prefixes (repeatable; the longest match wins
    /// against --deny-src).
    #[arg(long, value_name = "CIDR")]
    pub allow_src: Vec<String>,
    /// Only accept SCTP to these destination ports (repeatable).
    #[arg(long, value_name = "PORT")]
    pub allow_port: Vec<u16>,
    /// Drop packets carrying a DATA / I-DATA chunk with this PPID (repeatable).
    #[arg(long, value_name = "N")]
    pub deny_ppid: Vec<u32>,
    /// Drop packets carrying a chunk of this type: a name (ABORT, HEARTBEAT, ...) or a
    /// number (repeatable, at most 8).
    #[arg(long, value_name = "TYPE")]
    pub deny_chunk: Vec<String>,
    /// Drop RFC 9260 violations: INIT, INIT-ACK or SHUTDOWN-COMPLETE bundled with other
    /// chunks; INIT with a non-zero verification tag; DATA with a zero tag.
    #[arg(long)]
    pub deny_violations: bool,
    /// SCTP packets the parser rejects (bad chunk lengths, truncation).
    #[arg(long, value_enum, value_name = "drop|pass")]
    pub malformed: Option<Malformed>,
    /// Drop out-of-the-blue packets whose verification tag matches no live association
    /// (learned from INIT / INIT-ACK; RFC 9260 8.4/8.5 exceptions pass).
    #[arg(long)]
    pub validate_vtag: bool,
    /// Seconds after the rules are applied during which unknown tags are learned, not
    /// dropped (associations older than the program); 0 turns learning off [default: 30].
    #[arg(long, value_name = "SECS")]
    pub vtag_learn: Option<u64>,
    /// Seconds without traffic after which a learned association is forgotten [default: 300].
    #[arg(long, value_name = "SECS")]
    pub vtag_idle: Option<u64>,
    /// INIT chunks per second accepted from one source address.
    #[arg(long, value_name = "N")]
    pub init_rate: Option<u32>,
    /// INITs a source may send at once before --init-rate applies [default: the rate].
    #[arg(long, value_name = "N")]
    pub init_burst: Option<u32>,
    /// INIT chunks per second accepted from all sources together.
    #[arg(long, value_name = "N")]
    pub global_init_rate: Option<u32>,
    /// Burst for --global-init-rate [default: the rate].
    #[arg(long, value_name = "N")]
    pub global_init_burst: Option<u32>,
    /// Most chunks a packet may carry (1-32).
    #[arg(long, value_name = "N")]
    pub max_chunks: Option<u32>,
    /// Longest DATA / I-DATA chunk in bytes (its length field, header included).
    #[arg(long, value_name = "BYTES")]
    pub max_data_chunk: Option<u32>,
}

impl RuleArgs {
    /// The file (if any) with the flags on top.
    pub fn config(&self) -> Result<RuleConfig> {
        let mut c = match &self.file {
            Some(f) => read_file(f)?,
            None => RuleConfig::default(),
        };
        c.deny_src.extend(self.deny_src.iter().cloned());
        c.allow_src.extend(self.allow_src.iter().cloned());
        c.allow_port.extend(&self.allow_port);
        c.deny_ppid.extend(&self.deny_ppid);
        c.deny_chunk
            .extend(self.deny_chunk.iter().cloned().map(ChunkName::Name));
        c.deny_violations |= self.deny_violations;
        c.validate_vtag |= self.validate_vtag;
        c.malformed = self.malformed.or(c.malformed);
        over(&mut c.vtag_learn, self.vtag_learn);
        over(&mut c.vtag_idle, self.vtag_idle);
        over(&mut c.init_rate, self.init_rate);
        over(&mut c.init_burst, self.init_burst);
        over(&mut c.global_init_rate, self.global_init_rate);
        over(&mut c.global_init_burst, self.global_init_burst);
        over(&mut c.max_chunks, self.max_chunks);
        over(&mut c.max_data_chunk, self.max_data_chunk);
        Ok(c)
    }
}

/// A flag's value, when given, replaces the file's.
fn over<T: Copy>(file: &mut Option<T>, flag: Option<T>) {
    if flag.is_some() {
        *file = flag;
    }
}

/// Reads a TOML rules file.
pub fn read_file(path: &Path) -> Result<RuleConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read rules file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("rules file {}: {}", path.display(), e.message()))
}

/// A chunk type from its name (as `chunk::KNOWN` spells it, `-` or `_`, any case) or number.
pub fn parse_chunk_type(s: &str) -> Result<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return Ok(n);
    }
    let want = s.to_ascii_uppercase().replace('-', "_");
    chunk::KNOWN
        .iter()
        .find(|(_, name)| *name == want)
        .map(|(t, _)| *t)
        .ok_or_else(|| {
            let names: Vec<&str> = chunk::KNOWN.iter().map(|(_, n)| *n).collect();
            anyhow!(
                "unknown chunk type {s:?}: use a number (0-255) or one of {}",
                names.join(", ")
            )
        })
}

/// A source prefix (`ADDR/LEN`, or a bare address for a host).
fn parse_cidr(flag: &str, s: &str) -> Result<(u32, [u8; 16], u32)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| anyhow!("{flag} {s}: not an IPv4 or IPv6 address (write ADDR/LEN, e.g. 198.18.0.0/15)"))?;
    let (family, max, bytes) = match ip {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            (FAMILY_IPV4, 32, b)
        }
        IpAddr::V6(v6) => (FAMILY_IPV6, 128, v6.octets()),
    };
    let len = match len {
        Some(l) => l
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| anyhow!("{flag} {s}: prefix length must be 0-{max}"))?,
        None => max,
    };
    Ok((family, bytes, len))
}

/// Rules compiled for the maps: the rule set and its table entries (generation-free).
pub struct Compiled {
    pub set: Box<RuleSet>,
    /// Source prefixes: family, address, length, value (allow bit | rule id).
    pub prefixes: Vec<(u32, [u8; 16], u32, u32)>,
    pub ppids: Vec<(u32, u8)>,
    /// Seconds of the learning window (the deadline is set when applied).
    pub vtag_learn: u64,
}

impl Compiled {
    /// Whether `validate-vtag` is on.
    #[must_use]
    pub fn validates_tags(&self) -> bool {
        self.set.flags & enable::VALIDATE_VTAG != 0
    }

    /// No rules: every packet passes.
    #[must_use]
    pub fn none() -> Self {
        Self {
            set: Box::new(RuleSet::empty()),
            prefixes: Vec::new(),
            ppids: Vec::new(),
            vtag_learn: 0,
        }
    }
}

/// Adds a rule charged to `reason`; the label says what the user wrote.
fn add(set: &mut RuleSet, reason: Counter, label: &str) -> Result<u8> {
    let id = set.add_rule(label).ok_or_else(|| {
        anyhow!("too many rules: at most {MAX_RULES} (deny-src prefixes, PPIDs, chunk types, limits)")
    })?;
    set.rule_reason[usize::from(id)] = (reason as usize - Counter::FIRST_DROP as usize) as u8;
    Ok(id)
}

/// Charges every drop of `reason` to one rule.
fn add_for_reason(set: &mut RuleSet, reason: Counter, label: &str) -> Result<()> {
    let id = add(set, reason, label)?;
    set.reason_rule[reason as usize - Counter::FIRST_DROP as usize] = id;
    Ok(())
}

/// Checks the rules and compiles them.
pub fn compile(c: &RuleConfig) -> Result<Compiled> {
    let mut set = Box::new(RuleSet::empty());
    let mut prefixes = Vec::new();
    let mut seen_prefixes = BTreeMap::new();
    for (flag, list, allow) in [("deny-src", &c.deny_src, false), ("allow-src", &c.allow_src, true)] {
        for s in list {
            let (family, addr, len) = parse_cidr(flag, s)?;
            let canonical = masked(addr, len);
            if let Some(other) = seen_prefixes.insert((family, canonical, len), flag) {
                if other != flag {
                    bail!("{s} is both in deny-src and allow-src: keep one");
                }
                continue;
            }
            let value = if allow {
                SRC_ALLOW
            } else {
                u32::from(add(&mut set, Counter::DropDenySrc, &format!("deny-src {s}"))?)
            };
            prefixes.push((family, canonical, len, value));
        }
    }
    if !prefixes.is_empty() {
        set.flags |= enable::SRC;
    }
    if !c.allow_src.is_empty() {
        set.flags |= enable::ALLOW_SRC;
        add_for_reason(
            &mut set,
            Counter::DropSrcNotAllowed,
            &format!("allow-src {}", c.allow_src.join(",")),
        )?;
    }
    if !c.allow_port.is_empty() {
        for p in &c.allow_port {
            set.allow_port(*p);
        }
        let ports: Vec<String> = c.allow_port.iter().map(u16::to_string).collect();
        add_for_reason(
            &mut set,
            Counter::DropPortNotAllowed,
            &format!("allow-port {}", ports.join(",")),
        )?;
    }
    let mut ppids = Vec::new();
    for p in &c.deny_ppid {
        if ppids.iter().any(|(q, _)| q == p) {
            continue;
        }
        ppids.push((*p, add(&mut set, Counter::DropDenyPpid, &format!("deny-ppid {p}"))?));
    }
    if !ppids.is_empty() {
        set.flags |= enable::DENY_PPID;
    }
    let mut types = Vec::new();
    for name in &c.deny_chunk {
        let t = name.resolve()?;
        if types.contains(&t) {
            continue;
        }
        types.push(t);
        let label = format!(
            "deny-chunk {}",
            chunk::name(t).map_or_else(|| t.to_string(), str::to_string)
        );
        let id = add(&mut set, Counter::DropDenyChunk, &label)?;
        if !set.deny_chunk(t, id) {
            bail!("too many deny-chunk types: at most {MAX_DENY_CHUNK}");
        }
    }
    if c.deny_violations {
        set.flags |= enable::VIOLATIONS;
        add_for_reason(&mut set, Counter::DropBundling, "deny-violations: bundling")?;
        add_for_reason(&mut set, Counter::DropInitNonzeroTag, "deny-violations: INIT tag not 0")?;
        add_for_reason(&mut set, Counter::DropDataZeroTag, "deny-violations: DATA tag 0")?;
    }
    if c.malformed == Some(Malformed::Drop) {
        set.flags |= enable::MALFORMED;
        add_for_reason(&mut set, Counter::DropMalformed, "malformed drop")?;
    }
    let vtag_learn = c.vtag_learn.unwrap_or(DEFAULT_VTAG_LEARN);
    if c.validate_vtag {
        let idle = c.vtag_idle.unwrap_or(DEFAULT_VTAG_IDLE);
        if idle == 0 {
            bail!("vtag-idle must be at least 1 second");
        }
        set.flags |= enable::VALIDATE_VTAG;
        set.vtag_idle_ns = idle.saturating_mul(1_000_000_000);
        add_for_reason(
            &mut set,
            Counter::DropVtagUnknown,
            &format!("validate-vtag idle {idle}s"),
        )?;
    } else if c.vtag_learn.is_some() || c.vtag_idle.is_some() {
        bail!("vtag-learn and vtag-idle only apply with validate-vtag");
    }
    let rate = |name: &str, rate: Option<u32>, burst: Option<u32>| -> Result<Option<(u32, u32)>> {
        match (rate, burst) {
            (Some(0), _) => bail!("{name} must be at least 1 per second"),
            (Some(r), b) => Ok(Some((r, b.unwrap_or(r).max(1)))),
            (None, Some(_)) => bail!("a burst needs its rate ({name})"),
            (None, None) => Ok(None),
        }
    };
    if let Some((r, b)) = rate("init-rate", c.init_rate, c.init_burst)? {
        (set.init_rate, set.init_burst) = (r, b);
        add_for_reason(
            &mut set,
            Counter::DropInitRateSource,
            &format!("init-rate {r}/s burst {b}"),
        )?;
    }
    if let Some((r, b)) = rate("global-init-rate", c.global_init_rate, c.global_init_burst)? {
        (set.global_init_rate, set.global_init_burst) = (r, b);
        add_for_reason(
            &mut set,
            Counter::DropInitRateGlobal,
            &format!("global-init-rate {r}/s burst {b}"),
        )?;
    }
    if let Some(n) = c.max_chunks {
        if !(1..=sctp_common::parse::MAX_CHUNKS as u32).contains(&n) {
            bail!(
                "max-chunks must be 1-{} (the walk's bound)",
                sctp_common::parse::MAX_CHUNKS
            );
        }
        set.max_chunks = n;
        add_for_reason(&mut set, Counter::DropTooManyChunks, &format!("max-chunks {n}"))?;
    }
    if let Some(n) = c.max_data_chunk {
        if n < 17 {
            bail!("max-data-chunk must be at least 17 bytes (a DATA chunk header is 16)");
        }
        set.max_data_chunk = n;
        add_for_reason(&mut set, Counter::DropDataTooLarge, &format!("max-data-chunk {n}"))?;
    }
    Ok(Compiled {
        set,
        prefixes,
        ppids,
        vtag_learn,
    })
}

/// The address with the bits after `len` cleared (the LPM trie ignores them, but equal
/// prefixes must compare equal here).
fn masked(mut addr: [u8; 16], len: u32) -> [u8; 16] {
    for (i, b) in addr.iter_mut().enumerate() {
        let keep = len.saturating_sub(i as u32 * 8).min(8);
        *b &= !(0xffu16 >> keep) as u8;
    }
    addr
}

/// Where the rule maps come from: a program this process loaded, or a running
/// instance's pins.
pub trait MapSource {
    fn map(&self, name: &str) -> Result<&Map>;
    fn map_mut(&mut self, name: &str) -> Result<&mut Map>;
}

impl MapSource for aya::Ebpf {
    fn map(&self, name: &str) -> Result<&Map> {
        aya::Ebpf::map(self, name).ok_or_else(|| anyhow!("{name} map missing from the XDP object"))
    }

    fn map_mut(&mut self, name: &str) -> Result<&mut Map> {
        aya::Ebpf::map_mut(self, name).ok_or_else(|| anyhow!("{name} map missing from the XDP object"))
    }
}

/// A running instance's maps, opened from its pin directory, which stays locked while
/// they are open: two `rules apply` at once would fill the same idle generation.
pub struct Pinned {
    maps: BTreeMap<String, Map>,
    _lock: std::fs::File,
}

impl Pinned {
    pub fn open(dir: &Path) -> Result<Self> {
        crate::program::require_root()?;
        let missing = |e: &dyn std::fmt::Display| {
            anyhow!(
                "no running sctp-xdp instance pinned at {} ({e}): start one with `sctp-user run --iface IFACE`, or pass its --pin-dir",
                dir.display()
            )
        };
        let lock = std::fs::File::open(dir).map_err(|e| missing(&e))?;
        // SAFETY: flock on a live fd; released when the file closes.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
            bail!("cannot lock {}: {}", dir.display(), std::io::Error::last_os_error());
        }
        let mut maps = BTreeMap::new();
        for name in crate::program::PINNED_MAPS {
            let path = dir.join(name);
            let data = MapData::from_pin(&path).map_err(|e| missing(&e))?;
            maps.insert(name.to_string(), Map::from_map_data(data)?);
        }
        Ok(Self { maps, _lock: lock })
    }
}

impl MapSource for Pinned {
    fn map(&self, name: &str) -> Result<&Map> {
        self.maps.get(name).ok_or_else(|| anyhow!("{name} is not pinned"))
    }

    fn map_mut(&mut self, name: &str) -> Result<&mut Map> {
        self.maps.get_mut(name).ok_or_else(|| anyhow!("{name} is not pinned"))
    }
}

fn active_generation(src: &dyn MapSource) -> Result<u32> {
    let config: Array<&MapData, u32> = Array::try_from(src.map("CONFIG")?)?;
    Ok(config.get(&CONFIG_GENERATION, 0)? & 1)
}

fn rule_set(src: &dyn MapSource, gen: u32) -> Result<RuleSet> {
    let rules: Array<&MapData, RuleSet> = Array::try_from(src.map("RULES")?)?;
    Ok(rules.get(&gen, 0)?)
}

/// Per-rule drop counts of both generations, summed over CPUs.
fn rule_hits(src: &dyn MapSource) -> Result<[u64; 2 * MAX_RULES]> {
    let global: PerCpuArray<&MapData, GlobalStats> = PerCpuArray::try_from(src.map("GLOBAL")?)?;
    let mut hits = [0u64; 2 * MAX_RULES];
    for cpu in global.get(&0, 0)?.iter() {
        for (h, c) in hits.iter_mut().zip(cpu.rule_hits.iter()) {
            *h += c;
        }
    }
    Ok(hits)
}

/// Installs compiled rules as the next generation, then flips to it: packets judged
/// before the flip used the old set whole, packets after it the new one. The slots of
/// the generation being replaced were last in use before the previous flip.
pub fn apply(src: &mut dyn MapSource, c: &Compiled) -> Result<()> {
    let next = active_generation(src)? ^ 1;
    let mut set = *c.set;
    // Hit counters only grow: remember where this generation's start.
    let hits = rule_hits(src)?;
    for (id, base) in set.hits_base.iter_mut().enumerate() {
        *base = hits[next as usize * MAX_RULES + id];
    }
    if set.flags & enable::VALIDATE_VTAG != 0 && c.vtag_learn > 0 {
        // CLOCK_MONOTONIC is bpf_ktime_get_ns's clock.
        set.vtag_learn_until_ns = crate::echo::monotonic_ns() + c.vtag_learn.saturating_mul(1_000_000_000);
    }
    {
        let mut src_rules: LpmTrie<&mut MapData, SrcPrefix, u32> = LpmTrie::try_from(src.map_mut("SRC_RULES")?)?;
        let stale: Vec<Key<SrcPrefix>> = src_rules
            .keys()
            .filter_map(Result::ok)
            .filter(|k| u32::from(k.data().gen) == next)
            .collect();
        for k in stale {
            src_rules.remove(&k)?;
        }
        for (family, addr, len, value) in &c.prefixes {
            let data = SrcPrefix {
                gen: next as u8,
                family: *family as u8,
                addr: *addr,
            };
            src_rules
                .insert(&Key::new(SRC_PREFIX_HEADER_BITS + len, data), value, 0)
                .context("adding a source prefix (at most 16384 in all)")?;
        }
    }
    {
        let mut ppid_rules: HashMap<&mut MapData, PpidKey, u32> = HashMap::try_from(src.map_mut("PPID_RULES")?)?;
        let stale: Vec<PpidKey> = ppid_rules
            .keys()
            .filter_map(Result::ok)
            .filter(|k| k.gen == next)
            .collect();
        for k in stale {
            ppid_rules.remove(&k)?;
        }
        for (ppid, id) in &c.ppids {
            ppid_rules.insert(PpidKey { gen: next, ppid: *ppid }, u32::from(*id), 0)?;
        }
    }
    let mut rules: Array<&mut MapData, RuleSet> = Array::try_from(src.map_mut("RULES")?)?;
    rules.set(next, set, 0)?;
    let mut config: Array<&mut MapData, u32> = Array::try_from(src.map_mut("CONFIG")?)?;
    config.set(CONFIG_GENERATION, next, 0)?;
    Ok(())
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

/// The rules of both generations (active first) with their drops.
pub fn hits(src: &dyn MapSource) -> Result<(Vec<RuleHits>, Vec<RuleHits>)> {
    let active = active_generation(src)?;
    let hits = rule_hits(src)?;
    let mut out = [Vec::new(), Vec::new()];
    for (slot, gen) in [active, active ^ 1].into_iter().enumerate() {
        let set = rule_set(src, gen)?;
        for id in 0..set.rule_count.min(MAX_RULES as u32) as u8 {
            let i = usize::from(id);
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
    Ok((a, b))
}

/// `rules show`: the active rules and what they dropped.
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
