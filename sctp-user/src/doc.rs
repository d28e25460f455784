//! The JSON documents of DESIGN.md's contracts 2 and 3 as types: `inspect --format json`,
//! `run --report` and `/stats` write them; `top` and the tests read them back, so a renamed
//! field breaks the build, not a dashboard.

use std::collections::BTreeMap;

use sctp_common::{
    abi::{ip_addr, Counter, FlowKey, FlowStats, RoundTrips},
    parse::message::{Kind, Protocol},
    proto::chunk,
};
use serde::{Deserialize, Serialize};

use crate::{
    assoc::{
        live::LiveAssociations,
        messages::{MessageKey, Messages, Tally},
        Association, DirStats, EndpointInfo,
    },
    names,
    snapshot::{busiest, Snapshot},
};

/// Frames of a capture the program never ran on (live: none).
#[derive(Clone, Copy, Default)]
pub struct Unreplayed {
    /// Shorter than an Ethernet header, or cut inside their link-layer header.
    pub too_short: u64,
    /// Larger than the kernel's test run takes.
    pub too_large: u64,
}

/// Application messages of one (protocol, kind, code): DESIGN.md's `messages`. The AP
/// protocols give `procedure` and `kind`; Diameter `application`, `command`, `kind`, and
/// for answers `results` and `response_us`, for requests `unanswered`; M3UA, SUA, M2UA and
/// M2PA `class` and `type`; SGsAP `code`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDoc {
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procedure: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<u32>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub message_type: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub count: u64,
    /// Answers by result code (the code as a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<BTreeMap<String, u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_us: Option<RoundTripsDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswered: Option<u64>,
}

impl MessageDoc {
    /// The documents of `messages`, in key order.
    #[must_use]
    pub fn list(messages: &Messages) -> Vec<MessageDoc> {
        messages.by_key.iter().map(|(k, t)| Self::of(k, t)).collect()
    }

    /// The message as people read it: its name and code (`NGSetup (21)`; the SIGTRAN
    /// protocols' as class/type), or the code alone where the tables know no name.
    #[must_use]
    pub fn label(&self) -> String {
        let code = match (self.procedure, self.command, self.class, self.message_type, self.code) {
            (Some(p), ..) => p.to_string(),
            (_, Some(c), ..) => c.to_string(),
            (_, _, Some(class), Some(ty), _) => format!("{class}/{ty}"),
            (.., Some(c)) => c.to_string(),
            _ => String::new(),
        };
        match &self.name {
            Some(n) => format!("{n} ({code})"),
            None => code,
        }
    }

    pub(crate) fn of(&MessageKey { protocol, kind, code, application }: &MessageKey, t: &Tally) -> Self {
        let mut d = MessageDoc {
            protocol: protocol.name().into(),
            name: names::name(protocol, code).map(str::to_string),
            count: t.count,
            ..MessageDoc::default()
        };
        match protocol {
            Protocol::Diameter => {
                (d.application, d.command, d.kind) = (Some(application), Some(code), Some(kind.name().into()));
                d.unanswered = Some(t.unanswered);
                if kind == Kind::Answer {
                    d.results = Some(t.results.iter().map(|(r, n)| (r.to_string(), *n)).collect());
                    d.response_us = Some((&t.response).into());
                }
            }
            Protocol::M3ua | Protocol::Sua | Protocol::M2ua | Protocol::M2pa => {
                (d.class, d.message_type) = (Some(code >> 8), Some(code & 0xff));
            }
            Protocol::SgsAp | Protocol::Dtls => d.code = Some(code),
            _ => (d.procedure, d.kind) = (Some(code), Some(kind.name().into())),
        }
        d
    }
}

#[cfg(test)]
impl MessageDoc {
    /// `count` messages of `kind` of NGAP procedure 21 (NG Setup), for tests.
    pub(crate) fn ng_setup(kind: &str, count: u64) -> Self {
        MessageDoc {
            protocol: "NGAP".into(),
            procedure: Some(21),
            kind: Some(kind.into()),
            name: Some("NGSetup".into()),
            count,
            ..MessageDoc::default()
        }
    }
}

/// Round trips: how many, and the least, mean and greatest in µs (none without samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundTripsDoc {
    pub count: u64,
    pub min: Option<u64>,
    pub mean: Option<u64>,
    pub max: Option<u64>,
}

impl From<&RoundTrips> for RoundTripsDoc {
    fn from(r: &RoundTrips) -> Self {
        match r.mean_ns() {
            None => Self::default(),
            Some(mean_ns) => Self {
                count: r.count,
                min: Some(r.min_ns / 1000),
                mean: Some(mean_ns / 1000),
                max: Some(r.max_ns / 1000),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataDoc {
    pub chunks: u64,
    pub payload_bytes: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictsDoc {
    pub pass: u64,
    pub drop: u64,
}

/// A rule and the packets it dropped since it was applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleDoc {
    pub rule: String,
    /// The key of `drops` it charges.
    pub reason: String,
    pub drops: u64,
}

/// Every counter of a snapshot but its flows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersDoc {
    /// `total` (frames, those never replayed included), `sctp`, and every other packet
    /// counter by name.
    pub packets: BTreeMap<String, u64>,
    /// Chunks by decimal type.
    pub chunks: BTreeMap<String, u64>,
    pub data: DataDoc,
    /// Malformed packets by reason.
    pub errors: BTreeMap<String, u64>,
    pub verdicts: VerdictsDoc,
    /// Dropped packets by reason.
    pub drops: BTreeMap<String, u64>,
    /// The active rules.
    pub rules: Vec<RuleDoc>,
    /// Flows in the table.
    pub flows_total: usize,
}

impl CountersDoc {
    #[must_use]
    pub fn of(s: &Snapshot, unreplayed: Unreplayed) -> Self {
        let Unreplayed { too_short, too_large } = unreplayed;
        let g = &s.global;
        let mut packets = BTreeMap::from([
            ("total".to_string(), g.get(Counter::Frames) + too_short + too_large),
            ("too_short".to_string(), too_short),
            ("too_large".to_string(), too_large),
        ]);
        for c in Counter::ALL.iter().filter(|c| !c.is_error() && !c.is_drop() && **c != Counter::Frames) {
            packets.insert(c.name().into(), g.get(*c));
        }
        Self {
            packets,
            chunks: g
                .chunk_types
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(t, n)| (t.to_string(), *n))
                .collect(),
            data: DataDoc { chunks: g.get(Counter::DataChunks), payload_bytes: g.get(Counter::DataPayloadBytes) },
            errors: Counter::ALL.iter().filter(|c| c.is_error()).map(|c| (c.name().to_string(), g.get(*c))).collect(),
            verdicts: VerdictsDoc { pass: g.get(Counter::VerdictPass), drop: g.get(Counter::VerdictDrop) },
            drops: Counter::ALL.iter().filter(|c| c.is_drop()).map(|c| (c.reason().to_string(), g.get(*c))).collect(),
            rules: s
                .rules
                .0
                .iter()
                .map(|r| RuleDoc { rule: r.rule.clone(), reason: r.reason.to_string(), drops: r.drops })
                .collect(),
            flows_total: s.flows.len(),
        }
    }
}

/// Every counter of a snapshot and its busiest flows (`/stats`, `run --report`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotDoc {
    #[serde(flatten)]
    pub counters: CountersDoc,
    pub flows: Vec<FlowDoc>,
}

impl SnapshotDoc {
    /// The counters and the `max_flows` busiest flows (all with `usize::MAX`).
    #[must_use]
    pub fn of(s: &Snapshot, unreplayed: Unreplayed, max_flows: usize) -> Self {
        Self {
            counters: CountersDoc::of(s, unreplayed),
            flows: busiest(&s.flows, max_flows).map(|(k, f)| FlowDoc::of(*k, f)).collect(),
        }
    }
}

/// The last INIT or INIT-ACK of a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitDoc {
    pub chunk: Option<String>,
    pub initiate_tag: u32,
    pub a_rwnd: u32,
    pub outbound_streams: u16,
    pub inbound_streams: u16,
    pub initial_tsn: u32,
}

/// One direction of one association, by its ports and tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowDoc {
    pub src_port: u16,
    pub dst_port: u16,
    pub vtag: u32,
    pub src_addr: String,
    pub dst_addr: String,
    pub packets: u64,
    /// IP length.
    pub bytes: u64,
    /// Chunks by decimal type (`unknown`: types without a counter of their own).
    pub chunks: BTreeMap<String, u64>,
    pub data_chunks: u64,
    pub data_payload_bytes: u64,
    pub data_unordered: u64,
    pub data_fragments: u64,
    pub data_at_or_below_highest_tsn: u64,
    pub highest_tsn: Option<u32>,
    pub sack_gap_blocks: u64,
    pub sack_dup_tsns: u64,
    pub t_bit_chunks: u64,
    pub malformed: u64,
    pub init: Option<InitDoc>,
    /// Packets with a wrong `CRC32c` (`inspect` when it checks them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_checksums: Option<u64>,
}

impl FlowDoc {
    #[must_use]
    pub fn of(k: FlowKey, f: &FlowStats) -> Self {
        let chunks = f
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| {
                let key = chunk::KNOWN.get(b).map_or_else(|| "unknown".to_string(), |(t, _)| t.to_string());
                (key, *n)
            })
            .collect();
        let init = (f.init_chunk_type != 0).then(|| InitDoc {
            chunk: chunk::name(u8::try_from(f.init_chunk_type).unwrap_or(0)).map(str::to_string),
            initiate_tag: f.init_tag,
            a_rwnd: f.init_a_rwnd,
            outbound_streams: f.init_out_streams,
            inbound_streams: f.init_in_streams,
            initial_tsn: f.init_tsn,
        });
        Self {
            src_port: k.src_port,
            dst_port: k.dst_port,
            vtag: k.vtag,
            src_addr: ip_addr(f.family, &f.src_addr).to_string(),
            dst_addr: ip_addr(f.family, &f.dst_addr).to_string(),
            packets: f.packets,
            bytes: f.bytes,
            chunks,
            data_chunks: f.data_chunks,
            data_payload_bytes: f.data_payload_bytes,
            data_unordered: f.data_unordered,
            data_fragments: f.data_fragments,
            data_at_or_below_highest_tsn: f.data_at_or_below_highest,
            highest_tsn: (f.tsn_seen != 0).then_some(f.highest_tsn),
            sack_gap_blocks: f.sack_gap_blocks,
            sack_dup_tsns: f.sack_dup_tsns,
            t_bit_chunks: f.t_bit_chunks,
            malformed: f.malformed,
            init,
            bad_checksums: None,
        }
    }
}

/// One endpoint of an association: its port, the tag it chose (carried by packets sent
/// to it), its addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointDoc {
    pub port: u16,
    pub vtag: u32,
    pub addresses: Vec<String>,
}

impl From<&EndpointInfo> for EndpointDoc {
    fn from(e: &EndpointInfo) -> Self {
        Self { port: e.port, vtag: e.vtag, addresses: e.addresses.iter().map(ToString::to_string).collect() }
    }
}

/// A source and a destination address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPairDoc {
    pub src: String,
    pub dst: String,
}

/// What one endpoint of an association sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionDoc {
    pub packets: u64,
    pub bytes: u64,
    pub data_chunks: u64,
    pub data_bytes: u64,
    pub retransmissions: u64,
    pub sacks: u64,
    pub gap_blocks: u64,
    pub dup_tsns: u64,
    pub heartbeats: u64,
    pub heartbeat_acks: u64,
    pub a_rwnd_last: Option<u32>,
    pub a_rwnd_min: Option<u32>,
    pub zero_windows: u64,
    /// The path its last DATA took.
    pub data_path: Option<AddressPairDoc>,
    pub path_switches: u64,
}

impl From<&DirStats> for DirectionDoc {
    fn from(d: &DirStats) -> Self {
        Self {
            packets: d.packets,
            bytes: d.bytes,
            data_chunks: d.data_chunks,
            data_bytes: d.data_bytes,
            retransmissions: d.retransmissions,
            sacks: d.sacks,
            gap_blocks: d.gap_blocks,
            dup_tsns: d.dup_tsns,
            heartbeats: d.heartbeats,
            heartbeat_acks: d.heartbeat_acks,
            a_rwnd_last: d.a_rwnd_last,
            a_rwnd_min: d.a_rwnd_min,
            zero_windows: d.zero_windows,
            data_path: d.data_path.map(|(s, t)| AddressPairDoc { src: s.to_string(), dst: t.to_string() }),
            path_switches: d.path_switches,
        }
    }
}

/// One (source, destination) address pair of an association, either direction's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathDoc {
    pub src: String,
    pub dst: String,
    /// The interface a live run saw it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    pub data_chunks: u64,
    pub heartbeats: u64,
    pub heartbeat_acks: u64,
    pub heartbeats_unanswered: u64,
    pub last_seen_ns: u64,
    /// HEARTBEAT to its ACK.
    pub rtt_us: RoundTripsDoc,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionDoc {
    pub state: String,
    pub at_ns: u64,
}

/// INIT to INIT-ACK and COOKIE-ECHO to COOKIE-ACK, in µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeDoc {
    pub init: Option<u64>,
    pub cookie: Option<u64>,
}

/// One association (DESIGN.md contract 2): `endpoints[i].vtag` is the tag endpoint i
/// chose, `directions[i]` what endpoint i sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssociationDoc {
    pub endpoints: [EndpointDoc; 2],
    pub state: String,
    pub transitions: Vec<TransitionDoc>,
    pub packets: u64,
    pub directions: [DirectionDoc; 2],
    pub paths: Vec<PathDoc>,
    /// DATA to SACK, both directions.
    pub rtt_us: RoundTripsDoc,
    pub handshake_rtt_us: HandshakeDoc,
    pub restart: bool,
    pub init_collisions: u64,
    pub beyond_bounds: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Its application messages (see [`MessageDoc`]).
    #[serde(default)]
    pub messages: Vec<MessageDoc>,
}

impl AssociationDoc {
    /// As `inspect` gives it (a capture's paths have no interface).
    #[must_use]
    pub fn of(a: &Association) -> Self {
        Self::naming(a, &|_| None)
    }

    /// With each path's interface named by `iface`.
    #[must_use]
    pub fn naming(a: &Association, iface: &dyn Fn(u32) -> Option<String>) -> Self {
        let mut paths: Vec<_> = a.paths.iter().collect();
        paths.sort_unstable_by_key(|(k, _)| **k);
        Self {
            endpoints: [(&a.endpoints[0]).into(), (&a.endpoints[1]).into()],
            state: a.state.name().to_string(),
            transitions: a
                .transitions
                .iter()
                .map(|(s, t)| TransitionDoc { state: s.name().to_string(), at_ns: *t })
                .collect(),
            packets: a.packets,
            directions: [(&a.directions[0]).into(), (&a.directions[1]).into()],
            paths: paths
                .into_iter()
                .map(|((src, dst), p)| PathDoc {
                    src: src.to_string(),
                    dst: dst.to_string(),
                    iface: iface(p.ifindex),
                    packets: p.packets,
                    bytes: p.bytes,
                    data_chunks: p.data_chunks,
                    heartbeats: p.heartbeats,
                    heartbeat_acks: p.heartbeat_acks,
                    heartbeats_unanswered: p.heartbeats_unanswered,
                    last_seen_ns: p.last_ns,
                    rtt_us: (&p.rtt).into(),
                })
                .collect(),
            rtt_us: (&a.rtt).into(),
            handshake_rtt_us: HandshakeDoc {
                init: a.init_rtt.map(|t| t / 1000),
                cookie: a.cookie_rtt.map(|t| t / 1000),
            },
            restart: a.restarted,
            init_collisions: a.init_collisions,
            beyond_bounds: a.beyond_bounds + a.kernel_beyond_bounds,
            first_ns: a.first_ns,
            last_ns: a.last_ns,
            messages: MessageDoc::list(&a.messages),
        }
    }

    /// The `top` busiest associations of a live table, each path's interface named.
    #[must_use]
    pub fn busiest_live(live: &LiveAssociations, top: usize) -> Vec<Self> {
        live.table.busiest(top).into_iter().map(|(_, a)| Self::naming(a, &|i| live.named(i))).collect()
    }
}

/// SCTP packets and bytes one way through an interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficDoc {
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceDoc {
    pub iface: String,
    #[serde(rename = "in")]
    pub arriving: TrafficDoc,
    #[serde(rename = "out")]
    pub leaving: TrafficDoc,
}

/// Counts about a live association table itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSummaryDoc {
    pub tracked: u64,
    pub by_state: BTreeMap<String, u64>,
    pub restarts: u64,
    pub forgotten: u64,
    pub untracked_packets: u64,
    pub summaries: u64,
    pub summaries_lost: u64,
    pub interfaces: Vec<InterfaceDoc>,
}

impl TableSummaryDoc {
    #[must_use]
    pub fn of(live: &LiveAssociations) -> Self {
        let traffic = |t: &crate::assoc::live::Traffic| TrafficDoc { packets: t.packets, bytes: t.bytes };
        Self {
            tracked: live.table.iter().count() as u64,
            by_state: live.by_state().into_iter().map(|(s, n)| (s.name().to_string(), n)).collect(),
            restarts: live.table.iter().filter(|a| a.restarted).count() as u64,
            forgotten: live.table.forgotten,
            untracked_packets: live.table.untracked,
            summaries: live.summaries,
            summaries_lost: live.lost,
            interfaces: live
                .interfaces
                .iter()
                .map(|(i, [arriving, leaving])| InterfaceDoc {
                    iface: live.iface_name(*i),
                    arriving: traffic(arriving),
                    leaving: traffic(leaving),
                })
                .collect(),
        }
    }
}

/// What reading a capture found, and its time span.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureDoc {
    pub records: u64,
    pub skipped_blocks: u64,
    pub unsupported_link: u64,
    pub timestamps_backwards: u64,
    pub first_ns: Option<u64>,
    pub last_ns: Option<u64>,
    pub duration_s: f64,
}

/// The SCTP checksums of a replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksumsDoc {
    pub checked: u64,
    pub bad: u64,
    /// Cut short by the capture, or a first IP fragment.
    pub unverifiable: u64,
}

/// `inspect --format json` but its two lists, which are written one item at a time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InspectHead {
    #[serde(flatten)]
    pub counters: CountersDoc,
    /// `host` or `kernel`.
    pub engine: String,
    pub threads: usize,
    /// What was wrong with the capture where reading it stopped early.
    pub damaged: Option<String>,
    pub capture: CaptureDoc,
    /// None when told not to check them.
    pub checksums: Option<ChecksumsDoc>,
    pub associations_total: usize,
    pub associations_untracked_packets: u64,
    /// Application messages of the whole capture (see [`MessageDoc`]), and those that
    /// could not be read, by why.
    #[serde(default)]
    pub messages: Vec<MessageDoc>,
    #[serde(default)]
    pub messages_malformed: BTreeMap<String, u64>,
    /// Messages of (protocol, kind, code) beyond the keys kept (`assoc::messages::MAX_KEYS`).
    #[serde(default)]
    pub messages_untabled: u64,
}

/// `inspect --format json` (DESIGN.md contract 2), as the tests read it back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InspectDoc {
    #[serde(flatten)]
    pub head: InspectHead,
    /// The busiest associations (`--top`).
    pub associations: Vec<AssociationDoc>,
    /// The busiest flows (`--top`).
    pub flows: Vec<FlowDoc>,
}
