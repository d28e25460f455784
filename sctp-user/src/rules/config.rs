//! Filtering rules in user space: read from flags and a TOML file, checked, compiled into
//! the XDP program's rule maps, applied to a loaded or a running (pinned) program with
//! an atomic generation flip, and read back for `rules show` and the metrics.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context as _, Result};
use sctp_common::{
    abi::{FAMILY_IPV4, FAMILY_IPV6},
    proto::chunk,
};
use serde::Deserialize;

/// Default seconds a learned tag may stay idle.
pub const DEFAULT_VTAG_IDLE: u64 = 300;
/// Default learning window after rules with `validate-vtag` are applied.
pub const DEFAULT_VTAG_LEARN: u64 = 30;
/// The longest `vtag-learn` and `vtag-idle`: a year. The program keeps both in
/// nanoseconds of the monotonic clock; anything longer is a typo, not a policy.
pub const MAX_VTAG_SECONDS: u64 = 365 * 24 * 3600;

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
    /// Messages to drop: `PROTOCOL MESSAGE [KIND]` (see `message`).
    #[serde(default)]
    pub deny_message: Vec<String>,
    /// Per-source message rates: `PROTOCOL MESSAGE [KIND] RATE/s [burst N]`.
    #[serde(default)]
    pub message_rate: Vec<String>,
}

/// A chunk type by name or number (TOML accepts both).
#[derive(Clone, Debug, PartialEq)]
pub enum ChunkName {
    Number(u8),
    Name(String),
}

impl<'de> Deserialize<'de> for ChunkName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ChunkName;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a chunk type name (DATA, INIT, ABORT, ...) or number 0-255")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ChunkName, E> {
                u8::try_from(v).map(ChunkName::Number).map_err(|_| E::custom(format!("chunk type {v} is not 0-255")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ChunkName, E> {
                Ok(ChunkName::Name(v.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl ChunkName {
    pub fn resolve(&self) -> Result<u8> {
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
#[derive(Clone, Debug, Default, PartialEq, clap::Args)]
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
    /// Drop packets carrying this application message: "PROTOCOL MESSAGE [KIND]", the
    /// message by the name `inspect` prints or by its code, e.g. "Diameter Credit-Control
    /// request" or "NGAP 15 initiating" (repeatable; with --message-rate at most 8).
    #[arg(long, value_name = "MESSAGE")]
    pub deny_message: Vec<String>,
    /// Drop packets carrying this message beyond a rate per source address:
    /// "PROTOCOL MESSAGE [KIND] RATE/s [burst N]", e.g. "NGAP 15 initiating 100/s burst
    /// 200" (repeatable).
    #[arg(long, value_name = "MESSAGE RATE")]
    pub message_rate: Vec<String>,
}

impl RuleArgs {
    /// No file and no rule flag: nothing was asked for.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

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
        c.deny_chunk.extend(self.deny_chunk.iter().cloned().map(ChunkName::Name));
        c.deny_message.extend(self.deny_message.iter().cloned());
        c.message_rate.extend(self.message_rate.iter().cloned());
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
    if path.is_dir() {
        bail!("rules file {} is a directory: give a TOML file", path.display());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read rules file {}", path.display()))?;
    parse(&text).map_err(|e| anyhow!("rules file {}{e}", path.display()))
}

/// Rules from TOML text; an error names the line, the column and the line's text (so its
/// key) in one line: ` line 3, column 13 (init-rate = "8"): invalid type: ...`.
pub fn parse(text: &str) -> Result<RuleConfig, String> {
    toml::from_str(text).map_err(|e| {
        let place = e.span().map_or_else(String::new, |span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let source = text.lines().nth(line - 1).unwrap_or_default().trim();
            format!(" line {line}, column {column} ({source})")
        });
        format!("{place}: {}", e.message())
    })
}

/// A chunk type from its name (as `chunk::KNOWN` spells it, `-` or `_`, any case) or number.
pub fn parse_chunk_type(s: &str) -> Result<u8> {
    if let Ok(n) = s.parse::<u8>() {
        return Ok(n);
    }
    let want = s.to_ascii_uppercase().replace('-', "_");
    chunk::KNOWN.iter().find(|(_, name)| *name == want).map(|(t, _)| *t).ok_or_else(|| {
        let names: Vec<&str> = chunk::KNOWN.iter().map(|(_, n)| *n).collect();
        anyhow!("unknown chunk type {s:?}: use a number (0-255) or one of {}", names.join(", "))
    })
}

/// A source prefix (`ADDR/LEN`, or a bare address for a host).
pub fn parse_cidr(flag: &str, s: &str) -> Result<(u32, [u8; 16], u32)> {
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
        IpAddr::V6(v6) => {
            // Such an address is only ever an IPv4 packet's, which carries it as IPv4.
            if let Some(v4) = v6.to_ipv4_mapped() {
                bail!(
                    "{flag} {s}: an IPv4-mapped IPv6 address matches no packet: write the IPv4 address, e.g. {v4}/32"
                );
            }
            (FAMILY_IPV6, 128, v6.octets())
        }
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
    // 10.28.6.42/8 is most likely a host written with the wrong length, not 10.0.0.0/8.
    let network = masked(bytes, len);
    if network != bytes {
        let ip = match family {
            FAMILY_IPV4 => IpAddr::from([network[0], network[1], network[2], network[3]]),
            _ => IpAddr::from(network),
        };
        bail!("{flag} {s}: the address has bits set after the first {len}: write {ip}/{len} for the network, or /{max} for the host");
    }
    Ok((family, bytes, len))
}

/// The address with the bits after `len` cleared.
fn masked(mut addr: [u8; 16], len: u32) -> [u8; 16] {
    let mut bit = 0;
    for b in &mut addr {
        let keep = len.saturating_sub(bit).min(8);
        *b &= !(0xffu16 >> keep).to_le_bytes()[0];
        bit += 8;
    }
    addr
}
