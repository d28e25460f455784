//! Checking the rules and compiling them into the values of the rule maps.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use sctp_common::{
    abi::{
        enable, Counter, PpidKey, RuleSet, SrcPrefix, MAX_DENY_CHUNK, MAX_MESSAGE_RULES, MAX_RULES, SRC_ALLOW,
        SRC_PREFIX_HEADER_BITS,
    },
    host::MemFilter,
    parse::MAX_CHUNKS,
    proto::chunk,
};

use super::{
    config::{parse_cidr, Malformed, RuleConfig, DEFAULT_VTAG_IDLE, DEFAULT_VTAG_LEARN, MAX_VTAG_SECONDS},
    message::{parse_message, parse_rate},
};

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

    /// Whether INIT or message rates are limited: their buckets are shared by the
    /// associations of a source (or all), so packets must be judged in capture order.
    #[must_use]
    pub fn limits_rates(&self) -> bool {
        self.set.init_rate != 0 || self.set.global_init_rate != 0 || self.set.message_rules.iter().any(|r| r.rate != 0)
    }

    /// The rule set as applied at `now_ns` (on the program's clock): the learning window
    /// of `validate-vtag` starts then.
    #[must_use]
    pub fn set_at(&self, now_ns: u64) -> RuleSet {
        let mut set = *self.set;
        if self.validates_tags() && self.vtag_learn > 0 {
            set.vtag_learn_until_ns = now_ns.saturating_add(self.vtag_learn.saturating_mul(1_000_000_000));
        }
        set
    }

    /// The host twin of these rules installed as generation `gen` (what [`super::apply`]
    /// writes into the kernel's maps), judging by `set` (see [`Compiled::set_at`]).
    #[must_use]
    pub fn host_filter<'r>(&self, set: &'r RuleSet, gen: u32) -> MemFilter<'r> {
        let mut f = MemFilter::new(set, gen);
        for (family, addr, len, value) in &self.prefixes {
            f.prefixes.push((SrcPrefix::new(gen, *family, *addr), SRC_PREFIX_HEADER_BITS + len, *value));
        }
        for (ppid, id) in &self.ppids {
            f.ppids.insert(PpidKey { gen, ppid: *ppid }, *id);
        }
        f
    }

    /// No rules: every packet passes.
    #[must_use]
    pub fn none() -> Self {
        Self { set: Box::new(RuleSet::empty()), prefixes: Vec::new(), ppids: Vec::new(), vtag_learn: 0 }
    }
}

/// Adds a rule charged to `reason`; the label says what the user wrote.
fn add(set: &mut RuleSet, reason: Counter, label: &str) -> Result<u8> {
    let id = set.add_rule(label).ok_or_else(|| {
        anyhow!("too many rules: at most {MAX_RULES} (deny-src prefixes, PPIDs, chunk types, limits)")
    })?;
    set.rule_reason[usize::from(id)] = reason as u8 - Counter::FIRST_DROP as u8;
    Ok(id)
}

/// Charges every drop of `reason` to one rule.
fn add_for_reason(set: &mut RuleSet, reason: Counter, label: &str) -> Result<()> {
    let id = add(set, reason, label)?;
    set.reason_rule[reason as usize - Counter::FIRST_DROP as usize] = id;
    Ok(())
}

/// Checks the rules and compiles them.
#[expect(clippy::too_many_lines, reason = "one check per kind of rule, in the order of the rules file")]
pub fn compile(c: &RuleConfig) -> Result<Compiled> {
    let mut set = Box::new(RuleSet::empty());
    let mut prefixes = Vec::new();
    let mut seen_prefixes = BTreeMap::new();
    for (flag, list, allow) in [("deny-src", &c.deny_src, false), ("allow-src", &c.allow_src, true)] {
        for s in list {
            let (family, addr, len) = parse_cidr(flag, s)?;
            // parse_cidr refuses host bits: equal prefixes have equal addresses.
            if let Some(other) = seen_prefixes.insert((family, addr, len), flag) {
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
            prefixes.push((family, addr, len, value));
        }
    }
    if !prefixes.is_empty() {
        set.flags |= enable::SRC;
    }
    if !c.allow_src.is_empty() {
        set.flags |= enable::ALLOW_SRC;
        add_for_reason(&mut set, Counter::DropSrcNotAllowed, &format!("allow-src {}", c.allow_src.join(",")))?;
    }
    if !c.allow_port.is_empty() {
        for p in &c.allow_port {
            set.allow_port(*p);
        }
        let ports: Vec<String> = c.allow_port.iter().map(u16::to_string).collect();
        add_for_reason(&mut set, Counter::DropPortNotAllowed, &format!("allow-port {}", ports.join(",")))?;
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
        let label = format!("deny-chunk {}", chunk::name(t).map_or_else(|| t.to_string(), str::to_string));
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
        if !(1..=MAX_VTAG_SECONDS).contains(&idle) {
            bail!("vtag-idle must be 1-{MAX_VTAG_SECONDS} seconds (a year)");
        }
        if vtag_learn > MAX_VTAG_SECONDS {
            bail!("vtag-learn must be 0-{MAX_VTAG_SECONDS} seconds (a year)");
        }
        set.flags |= enable::VALIDATE_VTAG;
        set.vtag_idle_ns = idle.saturating_mul(1_000_000_000);
        add_for_reason(&mut set, Counter::DropVtagUnknown, &format!("validate-vtag idle {idle}s"))?;
    } else if c.vtag_learn.is_some() || c.vtag_idle.is_some() {
        bail!("vtag-learn and vtag-idle only apply with validate-vtag");
    }
    let rate = |name: &str, rate: Option<u32>, burst: Option<u32>| -> Result<Option<(u32, u32)>> {
        match (rate, burst) {
            (Some(0), _) => bail!("{name} must be at least 1 per second"),
            (Some(_), Some(0)) => bail!("the burst of {name} must be at least 1 (0 would drop every INIT)"),
            (Some(r), b) => Ok(Some((r, b.unwrap_or(r)))),
            (None, Some(_)) => bail!("a burst needs its rate ({name})"),
            (None, None) => Ok(None),
        }
    };
    if let Some((r, b)) = rate("init-rate", c.init_rate, c.init_burst)? {
        (set.init_rate, set.init_burst) = (r, b);
        add_for_reason(&mut set, Counter::DropInitRateSource, &format!("init-rate {r}/s burst {b}"))?;
    }
    if let Some((r, b)) = rate("global-init-rate", c.global_init_rate, c.global_init_burst)? {
        (set.global_init_rate, set.global_init_burst) = (r, b);
        add_for_reason(&mut set, Counter::DropInitRateGlobal, &format!("global-init-rate {r}/s burst {b}"))?;
    }
    if let Some(n) = c.max_chunks {
        if !(1..=MAX_CHUNKS).contains(&usize::try_from(n).unwrap_or(usize::MAX)) {
            bail!("max-chunks must be 1-{MAX_CHUNKS} (the walk's bound)");
        }
        set.max_chunks = n;
        add_for_reason(&mut set, Counter::DropTooManyChunks, &format!("max-chunks {n}"))?;
    }
    if let Some(n) = c.max_data_chunk {
        if !(17..=u32::from(u16::MAX)).contains(&n) {
            bail!("max-data-chunk must be 17-65535 bytes (a DATA chunk header is 16; a chunk length field says at most 65535)");
        }
        set.max_data_chunk = n;
        add_for_reason(&mut set, Counter::DropDataTooLarge, &format!("max-data-chunk {n}"))?;
    }
    compile_messages(c, &mut set)?;
    Ok(Compiled { set, prefixes, ppids, vtag_learn })
}

/// The message rules: `deny-message` first, then `message-rate` (a message is judged by
/// the first that matches).
fn compile_messages(c: &RuleConfig, set: &mut RuleSet) -> Result<()> {
    let mut rules = Vec::new();
    for spec in &c.deny_message {
        let m = parse_message(spec)?;
        let id = add(set, Counter::DropMessageDenied, &m.label("deny-message", ""))?;
        rules.push(m.rule(id, 0, 0));
    }
    for spec in &c.message_rate {
        let (m, rate, burst) = parse_rate(spec)?;
        let id = add(set, Counter::DropMessageRate, &m.label("message-rate", &format!(" {rate}/s burst {burst}")))?;
        rules.push(m.rule(id, rate, burst));
    }
    if rules.len() > MAX_MESSAGE_RULES {
        bail!("too many message rules: at most {MAX_MESSAGE_RULES} deny-message and message-rate together");
    }
    if !rules.is_empty() {
        set.flags |= enable::MESSAGES;
    }
    set.message_rules[..rules.len()].copy_from_slice(&rules);
    Ok(())
}
