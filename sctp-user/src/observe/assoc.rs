//! Associations from a capture: the two directions of each paired by their tags (an
//! INIT's initiate tag is the tag of every packet to the initiator, an INIT-ACK's of every
//! packet to the responder; an association seen mid-way is paired by reversed ports and
//! addresses), with its state, every path of a multi-homed peer, retransmissions, windows
//! and round trips. Built by `inspect` from the packets it replays.

use std::{collections::BTreeSet, net::IpAddr};

use sctp_common::{
    abi::{FlowKey, FlowStats, PathSlot, RoundTrips},
    proto::chunk::{bucket, ty},
};
use serde_json::{json, Value};

use super::{
    packet_view::{ChunkView, PacketView},
    report::addr,
};

/// Paths kept per association (a peer with more addresses has its further paths merged
/// into the last, and counted in [`Association::beyond_bounds`]).
const MAX_PATHS: usize = 16;
/// Addresses kept per endpoint: packets from further ones (a peer spoofing many sources
/// on one tag) are counted, their addresses not kept.
const MAX_ADDRESSES: usize = 8;
/// Associations waiting for a tag on the very same endpoints, the newest kept.
const MAX_WAITING: usize = 8;
/// Associations tracked; packets of further new ones are counted in
/// [`Associations::untracked`] (an INIT flood cannot take all memory).
pub const MAX_ASSOCIATIONS: usize = 1 << 18;

/// How long a live table keeps an association after its last packet, by its state.
#[derive(Clone, Copy, Debug)]
pub struct Expiry {
    pub handshake_ns: u64,
    /// For handshakes when the table is three quarters full.
    pub crowded_handshake_ns: u64,
    /// Closed or aborted.
    pub ended_ns: u64,
    /// Established or shutting down: longer than a heartbeat interval (30 s by default).
    pub idle_ns: u64,
}

impl Default for Expiry {
    fn default() -> Self {
        const S: u64 = 1_000_000_000;
        Self { handshake_ns: 30 * S, crowded_handshake_ns: S, ended_ns: 60 * S, idle_ns: 300 * S }
    }
}

/// An address and a port.
pub type Endpoint = (IpAddr, u16);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Handshake,
    /// Met mid-way (or opened by a COOKIE-ECHO whose handshake was not seen), one
    /// direction seen so far: kept as briefly as a handshake, as its packets may be
    /// anyone's (a flood of spoofed tags must not fill the table for long).
    Provisional,
    Established,
    ShuttingDown,
    Closed,
    Aborted,
    /// Replaced: its peer started over with a new INIT on the same endpoints while it was
    /// established (RFC 9260 5.2.4, a restart); what follows is counted in the new one.
    Restarted,
}

impl State {
    /// Every state, in the order an association goes through them.
    pub const ALL: [State; 7] = [
        State::Handshake,
        State::Provisional,
        State::Established,
        State::ShuttingDown,
        State::Closed,
        State::Aborted,
        State::Restarted,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            State::Handshake => "handshake",
            State::Provisional => "provisional",
            State::Established => "established",
            State::ShuttingDown => "shutting_down",
            State::Closed => "closed",
            State::Aborted => "aborted",
            State::Restarted => "restarted",
        }
    }
}

/// Round trips as the JSON contract has them: count, and min, mean and max in µs.
#[must_use]
pub fn rtt_json(r: &RoundTrips) -> Value {
    let Some(mean_ns) = r.mean_ns() else {
        return json!({ "count": 0, "min": null, "mean": null, "max": null });
    };
    json!({
        "count": r.count,
        "min": r.min_ns / 1000,
        "mean": mean_ns / 1000,
        "max": r.max_ns / 1000,
    })
}

/// The TSNs one direction sent, without memory per TSN (a flood of DATA that nobody
/// acknowledges costs nothing): the highest TSN sent, for retransmissions (a TSN at or
/// below it was sent before, as the XDP program counts them), and one TSN timed at a time
/// for DATA-to-SACK round trips, as passive monitors sample them (Karn's rule: a TSN sent
/// twice gives none).
#[derive(Clone, Copy, Debug, Default)]
pub struct TsnTracker {
    highest: Option<u32>,
    /// The TSN being timed and when it was sent.
    sample: Option<(u32, u64)>,
}

/// `a` is at or before `b` in serial number arithmetic (RFC 1982: TSNs wrap).
fn serial_le(a: u32, b: u32) -> bool {
    b.wrapping_sub(a).cast_signed() >= 0
}

impl TsnTracker {
    /// A DATA chunk; whether it is a retransmission (its TSN at or below the highest sent
    /// before). Only TSNs that `may_time` are timed.
    pub fn sent(&mut self, tsn: u32, ts_ns: u64, may_time: bool) -> bool {
        if self.highest.is_some_and(|h| serial_le(tsn, h)) {
            if self.sample.is_some_and(|(t, _)| t == tsn) {
                self.sample = None;
            }
            return true;
        }
        self.highest = Some(tsn);
        if self.sample.is_none() && may_time {
            self.sample = Some((tsn, ts_ns));
        }
        false
    }

    /// The other side acknowledged up to `cum`: the round trip of the TSN timed, if this
    /// covers it.
    pub fn acked(&mut self, cum: u32, ts_ns: u64) -> Option<u64> {
        let (tsn, sent) = self.sample?;
        if !serial_le(tsn, cum) {
            return None;
        }
        self.sample = None;
        Some(ts_ns.saturating_sub(sent))
    }
}

/// What one endpoint sent.
#[derive(Clone, Debug, Default)]
pub struct DirStats {
    pub packets: u64,
    pub bytes: u64,
    pub data_chunks: u64,
    pub data_bytes: u64,
    /// DATA at or below the highest TSN this direction had sent before.
    pub retransmissions: u64,
    pub sacks: u64,
    pub gap_blocks: u64,
    pub dup_tsns: u64,
    pub heartbeats: u64,
    pub heartbeat_acks: u64,
    pub a_rwnd_last: Option<u32>,
    pub a_rwnd_min: Option<u32>,
    /// SACKs announcing a zero window after a non-zero one.
    pub zero_windows: u64,
    /// The path of its last DATA, and how often that changed.
    pub data_path: Option<(IpAddr, IpAddr)>,
    pub path_switches: u64,
    tsns: TsnTracker,
    /// Packets (and their bytes) of this direction outside its flow: INITs (tag 0) and
    /// ABORTs or SHUTDOWN-COMPLETEs with a reflected tag. The kernel counts them under
    /// other flows; [`Association::overlay`] adds them to the flow's counts.
    off_flow: (u64, u64),
}

impl DirStats {
    /// Adds what the same endpoint sent while seen as another association: counts add
    /// up; the last window and DATA path are this one's, the other's where this has none.
    fn merge(&mut self, o: &DirStats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.data_chunks += o.data_chunks;
        self.data_bytes += o.data_bytes;
        self.retransmissions += o.retransmissions;
        self.sacks += o.sacks;
        self.gap_blocks += o.gap_blocks;
        self.dup_tsns += o.dup_tsns;
        self.heartbeats += o.heartbeats;
        self.heartbeat_acks += o.heartbeat_acks;
        self.zero_windows += o.zero_windows;
        self.path_switches += o.path_switches;
        self.a_rwnd_min = match (self.a_rwnd_min, o.a_rwnd_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.a_rwnd_last = self.a_rwnd_last.or(o.a_rwnd_last);
        self.data_path = self.data_path.or(o.data_path);
        self.off_flow = (self.off_flow.0 + o.off_flow.0, self.off_flow.1 + o.off_flow.1);
    }
}

/// One (source, destination) address pair, either direction's.
#[derive(Clone, Debug, Default)]
pub struct PathStats {
    pub packets: u64,
    pub bytes: u64,
    pub data_chunks: u64,
    pub heartbeats: u64,
    pub heartbeat_acks: u64,
    pub last_ns: u64,
    /// Its HEARTBEATs' round trips, timed by the flows (see `parse::round_trip`): none
    /// where the handshake went unseen.
    pub rtt: RoundTrips,
    /// The interface a live run last saw it on (0: unknown, as in a capture).
    pub ifindex: u32,
    /// HEARTBEATs on it in a row that no ACK answered, the one waiting included (see
    /// [`PathSlot::heartbeats_unanswered`]).
    pub heartbeats_unanswered: u64,
    /// As [`DirStats`]'s: packets and bytes on this path outside the direction's flow.
    off_flow: (u64, u64),
}

impl PathStats {
    /// Adds the same path's counts seen under another association.
    fn merge(&mut self, p: &PathStats) {
        self.packets += p.packets;
        self.bytes += p.bytes;
        self.data_chunks += p.data_chunks;
        self.heartbeats += p.heartbeats;
        self.heartbeat_acks += p.heartbeat_acks;
        self.last_ns = self.last_ns.max(p.last_ns);
        self.rtt.merge(&p.rtt);
        if self.ifindex == 0 {
            self.ifindex = p.ifindex;
        }
        self.heartbeats_unanswered = self.heartbeats_unanswered.max(p.heartbeats_unanswered);
        self.off_flow = (self.off_flow.0 + p.off_flow.0, self.off_flow.1 + p.off_flow.1);
    }
}

/// One endpoint: port, the tag it chose (0 until seen), its addresses.
#[derive(Clone, Debug, Default)]
pub struct EndpointInfo {
    pub port: u16,
    pub vtag: u32,
    pub addresses: BTreeSet<IpAddr>,
}

impl EndpointInfo {
    /// Keeps `a` among its addresses, up to [`MAX_ADDRESSES`]; false when it had no room.
    fn add_address(&mut self, a: IpAddr) -> bool {
        if self.addresses.len() >= MAX_ADDRESSES && !self.addresses.contains(&a) {
            return false;
        }
        self.addresses.insert(a);
        true
    }

    fn add_addresses(&mut self, all: &[IpAddr]) {
        for a in all {
            self.add_address(*a);
        }
    }

    /// Its first address and its port, as tables and metric labels name it.
    #[must_use]
    pub fn label(&self) -> String {
        match self.addresses.first() {
            Some(a) => format!("{a}:{}", self.port),
            None => format!("?:{}", self.port),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Association {
    pub endpoints: [EndpointInfo; 2],
    pub state: State,
    /// Each state entered, with its time.
    pub transitions: Vec<(State, u64)>,
    pub packets: u64,
    pub directions: [DirStats; 2],
    /// Hashed: looked up for every packet (the JSON sorts them).
    pub paths: foldhash::HashMap<(IpAddr, IpAddr), PathStats>,
    /// DATA to SACK, both directions.
    pub rtt: RoundTrips,
    /// HEARTBEAT to its ACK, every path's (their histogram is only here).
    pub heartbeat_rtt: RoundTrips,
    /// INIT to INIT-ACK, and COOKIE-ECHO to COOKIE-ACK.
    pub init_rtt: Option<u64>,
    pub cookie_rtt: Option<u64>,
    /// A new INIT from these endpoints while this one was established: the association
    /// that follows is a restart.
    pub restarted: bool,
    /// INITs that crossed another INIT of these endpoints in the handshake.
    pub init_collisions: u64,
    /// Packets from an address or on a path past the bounds ([`MAX_ADDRESSES`],
    /// [`MAX_PATHS`]): counted, the address or path not kept.
    pub beyond_bounds: u64,
    /// Packets the kernel counted beyond the paths it keeps per direction
    /// (`FlowStats::paths_beyond`, both directions), as of the last overlay.
    pub kernel_beyond_bounds: u64,
    /// Started by an INIT on the endpoints of an established association: it replaces that
    /// one (a restart) only once its handshake completes (RFC 9260 5.2.4), so a spoofed
    /// INIT changes nothing. The endpoints, as [`Associations::latest`] keys them.
    restart_of: Option<(Endpoint, Endpoint)>,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Found to be part of another (see [`Associations::add`]): counted there.
    pub merged_into: Option<usize>,
    /// Its directions waiting to learn their tag (keys of `Associations::half`).
    waiting: Vec<(Endpoint, Endpoint)>,
    init_sent: Option<u64>,
    cookie_sent: Option<u64>,
}

impl Association {
    fn new(endpoints: [EndpointInfo; 2], state: State, ts_ns: u64) -> Self {
        Self {
            endpoints,
            state,
            transitions: vec![(state, ts_ns)],
            packets: 0,
            directions: [DirStats::default(), DirStats::default()],
            paths: foldhash::HashMap::default(),
            rtt: RoundTrips::default(),
            heartbeat_rtt: RoundTrips::default(),
            init_rtt: None,
            cookie_rtt: None,
            restarted: false,
            init_collisions: 0,
            beyond_bounds: 0,
            kernel_beyond_bounds: 0,
            restart_of: None,
            first_ns: ts_ns,
            last_ns: ts_ns,
            merged_into: None,
            waiting: Vec::new(),
            init_sent: None,
            cookie_sent: None,
        }
    }

    /// Adds `other`, the same association seen as another one so far, whose endpoint `i`
    /// is this one's `map[i]`.
    fn absorb(&mut self, other: &Association, map: [usize; 2]) {
        for (i, e) in other.endpoints.iter().enumerate() {
            let mine = &mut self.endpoints[map[i]];
            for a in &e.addresses {
                mine.add_address(*a);
            }
            if mine.vtag == 0 {
                mine.vtag = e.vtag;
            }
            self.directions[map[i]].merge(&other.directions[i]);
        }
        for (k, p) in &other.paths {
            let key = self.path_key(*k);
            self.paths.entry(key).or_default().merge(p);
        }
        self.packets += other.packets;
        self.beyond_bounds += other.beyond_bounds;
        self.rtt.merge(&other.rtt);
        self.heartbeat_rtt.merge(&other.heartbeat_rtt);
        self.first_ns = self.first_ns.min(other.first_ns);
        self.last_ns = self.last_ns.max(other.last_ns);
    }

    fn enter(&mut self, state: State, ts_ns: u64) {
        if self.state != state {
            self.state = state;
            self.transitions.push((state, ts_ns));
        }
    }

    /// Which endpoint sent `p`: the one whose tag it does not carry (packets carry their
    /// receiver's tag), else the one on its source port.
    fn sender(&self, p: &PacketView, reflected: bool) -> usize {
        let [a, b] = &self.endpoints;
        let to = |e: &EndpointInfo| e.vtag != 0 && e.vtag == p.vtag;
        match (to(a), to(b)) {
            (true, false) => usize::from(!reflected),
            (false, true) => usize::from(reflected),
            _ => usize::from(!(a.port == p.src.1 && (a.addresses.is_empty() || a.addresses.contains(&p.src.0)))),
        }
    }

    /// The path a packet on `key` counts on: beyond [`MAX_PATHS`], a new path is folded
    /// into the last one.
    fn path_key(&self, key: (IpAddr, IpAddr)) -> (IpAddr, IpAddr) {
        if self.paths.len() >= MAX_PATHS && !self.paths.contains_key(&key) {
            *self.paths.keys().max().expect("MAX_PATHS > 0")
        } else {
            key
        }
    }

    /// Counts the packet, sent by endpoint `from`. Round trips of DATA and HEARTBEATs are
    /// not timed here: the flows time them (see `parse::round_trip`), and `overlay` takes
    /// them.
    fn count(&mut self, p: &PacketView, from: usize, ts_ns: u64) {
        self.packets += 1;
        self.last_ns = ts_ns;
        let kept = self.endpoints[from].add_address(p.src.0) & self.endpoints[1 - from].add_address(p.dst.0);
        let path_key = self.path_key((p.src.0, p.dst.0));
        if !kept || path_key != (p.src.0, p.dst.0) {
            self.beyond_bounds += 1;
        }
        let path = self.paths.entry(path_key).or_default();
        path.packets += 1;
        path.bytes += p.ip_len;
        path.last_ns = ts_ns;
        if p.ifindex != 0 {
            path.ifindex = p.ifindex;
        }
        let d = &mut self.directions[from];
        d.packets += 1;
        d.bytes += p.ip_len;
        let reflected = p.chunks.iter().any(|c| matches!(c, ChunkView::Close { reflected: true, .. }));
        if p.vtag == 0 || reflected {
            d.off_flow.0 += 1;
            d.off_flow.1 += p.ip_len;
            path.off_flow.0 += 1;
            path.off_flow.1 += p.ip_len;
        }
        for chunk in &p.chunks {
            match chunk {
                ChunkView::Data { tsn, payload } => {
                    let d = &mut self.directions[from];
                    d.data_chunks += 1;
                    d.data_bytes += u64::from(*payload);
                    d.retransmissions += u64::from(d.tsns.sent(*tsn, ts_ns, false));
                    if d.data_path != Some(path_key) {
                        d.path_switches += u64::from(d.data_path.is_some());
                        d.data_path = Some(path_key);
                    }
                    self.paths.get_mut(&path_key).expect("inserted above").data_chunks += 1;
                    // A restart is established by its COOKIE-ACK only.
                    if self.state == State::Handshake && self.restart_of.is_none() {
                        self.enter(State::Established, ts_ns);
                    }
                }
                ChunkView::Sack { cum_tsn: _, a_rwnd, gaps, dups } => {
                    let d = &mut self.directions[from];
                    d.sacks += 1;
                    d.gap_blocks += u64::from(*gaps);
                    d.dup_tsns += u64::from(*dups);
                    if *a_rwnd == 0 && d.a_rwnd_last != Some(0) {
                        d.zero_windows += 1;
                    }
                    d.a_rwnd_last = Some(*a_rwnd);
                    d.a_rwnd_min = Some(d.a_rwnd_min.map_or(*a_rwnd, |m| m.min(*a_rwnd)));
                }
                ChunkView::Heartbeat { ack: false } => {
                    self.directions[from].heartbeats += 1;
                    self.paths.get_mut(&path_key).expect("inserted above").heartbeats += 1;
                }
                ChunkView::Heartbeat { ack: true } => {
                    self.directions[from].heartbeat_acks += 1;
                    self.paths.get_mut(&path_key).expect("inserted above").heartbeat_acks += 1;
                }
                ChunkView::Init { ack, addresses, .. } => {
                    self.endpoints[from].add_addresses(addresses);
                    if *ack {
                        self.init_rtt = self.init_sent.map(|t| ts_ns.saturating_sub(t));
                    } else {
                        self.init_sent.get_or_insert(ts_ns);
                    }
                }
                ChunkView::CookieEcho => _ = self.cookie_sent.get_or_insert(ts_ns),
                ChunkView::CookieAck => {
                    self.cookie_rtt = self.cookie_sent.map(|t| ts_ns.saturating_sub(t));
                    // A restart completes with the COOKIE-ECHO and COOKIE-ACK of its new
                    // tags, both known by now.
                    let complete = self.restart_of.is_none()
                        || (self.cookie_sent.is_some() && self.endpoints.iter().all(|e| e.vtag != 0));
                    if complete && matches!(self.state, State::Handshake | State::Provisional) {
                        self.enter(State::Established, ts_ns);
                    }
                }
                ChunkView::Shutdown { .. } => self.enter(State::ShuttingDown, ts_ns),
                ChunkView::Close { abort, .. } => {
                    self.enter(if *abort { State::Aborted } else { State::Closed }, ts_ns);
                }
                ChunkView::Asconf { added } => self.endpoints[from].add_addresses(added),
                ChunkView::Other => {}
            }
        }
    }

    /// The flow of what endpoint `from` sent (its packets carry the other's tag), once
    /// that tag is known.
    fn direction_key(&self, from: usize) -> Option<FlowKey> {
        let (sender, receiver) = (&self.endpoints[from], &self.endpoints[1 - from]);
        (receiver.vtag != 0).then_some(FlowKey { src_port: sender.port, dst_port: receiver.port, vtag: receiver.vtag })
    }

    /// Both directions' flows with the other's tag, for an association met mid-way whose
    /// tags are both known and that is not over: what the kernel's directory lacks to
    /// time its round trips (see `abi::maps::MIDWAY`).
    #[must_use]
    pub fn midway_pairs(&self) -> Option<[(FlowKey, u32); 2]> {
        let met_midway = self.transitions.first().is_some_and(|(s, _)| *s == State::Provisional);
        let over = matches!(self.state, State::Closed | State::Aborted | State::Restarted);
        let tags = [self.endpoints[0].vtag, self.endpoints[1].vtag];
        if !met_midway || over || tags.contains(&0) || self.merged_into.is_some() {
            return None;
        }
        let keys = [self.direction_key(0)?, self.direction_key(1)?];
        Some([(keys[0], tags[0]), (keys[1], tags[1])])
    }

    /// Takes what each direction sent from its flow's counters in the kernel (the same
    /// accounting `inspect`'s engines run), `flows[i]` those of what endpoint `i` sent.
    /// A direction without (its receiver's tag not known, its flow not found or another
    /// association's) keeps what the packets seen here counted. Idempotent: a live table
    /// is overlaid again at each export.
    fn overlay(&mut self, flows: [Option<&FlowStats>; 2]) {
        let mut beyond = 0;
        let (mut rtt, mut heartbeat_rtt) = (RoundTrips::default(), RoundTrips::default());
        for (from, f) in flows.into_iter().enumerate() {
            let Some(f) = f else {
                continue;
            };
            beyond += f.paths_beyond;
            let family = f.family;
            let slot_path = |s: &PathSlot| {
                (addr(family, bytemuck::cast_ref(&s.src_addr)), addr(family, bytemuck::cast_ref(&s.dst_addr)))
            };
            for slot in f.paths.iter().filter(|s| s.packets > 0) {
                let key = self.path_key(slot_path(slot));
                let path = self.paths.entry(key).or_default();
                path.packets = slot.packets + path.off_flow.0;
                path.bytes = slot.bytes + path.off_flow.1;
                path.data_chunks = slot.data_chunks;
                path.heartbeats = slot.heartbeats;
                path.heartbeat_acks = slot.heartbeat_acks;
                path.heartbeats_unanswered = slot.heartbeats_unanswered_now();
                path.rtt = slot.heartbeat_rtt.widened();
                path.last_ns = path.last_ns.max(slot.last_seen_ns);
                if slot.ifindex != 0 {
                    path.ifindex = slot.ifindex;
                }
            }
            let data_path = usize::try_from(f.data_path).ok().and_then(|n| f.paths.get(n.checked_sub(1)?));
            let d = &mut self.directions[from];
            d.packets = f.packets + d.off_flow.0;
            d.bytes = f.bytes + d.off_flow.1;
            d.data_chunks = f.data_chunks;
            d.data_bytes = f.data_payload_bytes;
            d.retransmissions = f.data_at_or_below_highest;
            d.sacks = f.sacks;
            d.gap_blocks = f.sack_gap_blocks;
            d.dup_tsns = f.sack_dup_tsns;
            d.heartbeats = f.chunks[bucket(ty::HEARTBEAT)];
            d.heartbeat_acks = f.chunks[bucket(ty::HEARTBEAT_ACK)];
            if f.sacks > 0 {
                d.a_rwnd_last = Some(f.last_a_rwnd);
                d.a_rwnd_min = Some(f.a_rwnd_min);
            }
            d.zero_windows = f.zero_windows;
            d.path_switches = f.data_path_switches;
            if let Some(s) = data_path {
                d.data_path = Some(slot_path(s));
            }
            self.last_ns = self.last_ns.max(f.last_seen_ns);
            rtt.merge(&f.rtt);
            heartbeat_rtt.merge(&f.heartbeat_rtt);
        }
        self.rtt = rtt;
        self.heartbeat_rtt = heartbeat_rtt;
        self.kernel_beyond_bounds = beyond;
        self.packets = self.directions[0].packets + self.directions[1].packets;
    }

    /// The association as in `inspect --format json` (DESIGN.md contract 2).
    #[must_use]
    pub fn json(&self) -> Value {
        self.json_naming(&|_| None)
    }

    /// The same with each path's interface named (`/stats`: the live run knows them).
    #[must_use]
    pub fn json_naming(&self, iface: &dyn Fn(u32) -> Option<String>) -> Value {
        let endpoint = |e: &EndpointInfo| {
            json!({
                "port": e.port,
                "vtag": e.vtag,
                "addresses": e.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        };
        let direction = |d: &DirStats| {
            json!({
                "packets": d.packets,
                "bytes": d.bytes,
                "data_chunks": d.data_chunks,
                "data_bytes": d.data_bytes,
                "retransmissions": d.retransmissions,
                "sacks": d.sacks,
                "gap_blocks": d.gap_blocks,
                "dup_tsns": d.dup_tsns,
                "heartbeats": d.heartbeats,
                "heartbeat_acks": d.heartbeat_acks,
                "a_rwnd_last": d.a_rwnd_last,
                "a_rwnd_min": d.a_rwnd_min,
                "zero_windows": d.zero_windows,
                "data_path": d.data_path.map(|(s, t)| json!({ "src": s.to_string(), "dst": t.to_string() })),
                "path_switches": d.path_switches,
            })
        };
        let mut paths: Vec<_> = self.paths.iter().collect();
        paths.sort_unstable_by_key(|(k, _)| **k);
        let paths: Vec<Value> = paths
            .into_iter()
            .map(|((src, dst), p)| {
                let mut path = json!({
                    "src": src.to_string(),
                    "dst": dst.to_string(),
                    "packets": p.packets,
                    "bytes": p.bytes,
                    "data_chunks": p.data_chunks,
                    "heartbeats": p.heartbeats,
                    "heartbeat_acks": p.heartbeat_acks,
                    "heartbeats_unanswered": p.heartbeats_unanswered,
                    "last_seen_ns": p.last_ns,
                    "rtt_us": rtt_json(&p.rtt),
                });
                if let Some(name) = iface(p.ifindex) {
                    path["iface"] = name.into();
                }
                path
            })
            .collect();
        json!({
            "endpoints": [endpoint(&self.endpoints[0]), endpoint(&self.endpoints[1])],
            "state": self.state.name(),
            "transitions": self.transitions.iter().map(|(s, t)| json!({ "state": s.name(), "at_ns": t })).collect::<Vec<_>>(),
            "packets": self.packets,
            "directions": [direction(&self.directions[0]), direction(&self.directions[1])],
            "paths": paths,
            "rtt_us": rtt_json(&self.rtt),
            "handshake_rtt_us": {
                "init": self.init_rtt.map(|t| t / 1000),
                "cookie": self.cookie_rtt.map(|t| t / 1000),
            },
            "restart": self.restarted,
            "init_collisions": self.init_collisions,
            "beyond_bounds": self.beyond_bounds + self.kernel_beyond_bounds,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
        })
    }
}

/// A direction waiting to learn its tag.
#[derive(Clone, Copy, Debug)]
struct Half {
    from: Endpoint,
    to: Endpoint,
    id: usize,
    /// The endpoint its packets go to.
    receiver: usize,
}

/// Every association of a capture.
#[derive(Clone, Debug, Default)]
pub struct Associations {
    pub list: Vec<Association>,
    /// Packets that would have made an association beyond [`MAX_ASSOCIATIONS`].
    pub untracked: u64,
    /// Associations forgotten by [`Associations::expire`].
    pub forgotten: u64,
    /// (source port, destination port, tag) of a direction -> its association.
    by_flow: foldhash::HashMap<(u16, u16, u32), usize>,
    /// Directions whose tag is not known yet (the other side's INIT-ACK was not seen, or
    /// the association was met mid-way), by their (source, destination) endpoints,
    /// addresses included: a server on one port talks to many peers on another (NGAP's
    /// 38412/38421), so ports alone would join strangers. A multi-homed peer's further
    /// addresses wait too, from the first packet to them.
    half: foldhash::HashMap<(Endpoint, Endpoint), Vec<Half>>,
    /// The latest association of two endpoints (either way round), for restarts and
    /// collisions.
    latest: foldhash::HashMap<(Endpoint, Endpoint), usize>,
}

/// An association with its index in [`Associations::list`].
pub type Indexed<'a> = (usize, &'a Association);

fn unordered(a: Endpoint, b: Endpoint) -> (Endpoint, Endpoint) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

impl Associations {
    /// Counts an SCTP packet in its association, making one if it starts one (an INIT) or
    /// belongs to none known (met mid-way); which one, as an index of `list`, and which of
    /// its endpoints sent it (`None`: past the bound, counted in `untracked`).
    pub fn add(&mut self, p: &PacketView, ts_ns: u64) -> Option<(usize, usize)> {
        let init = p.chunks.first().and_then(|c| match c {
            ChunkView::Init { ack: false, initiate_tag, .. } => Some(*initiate_tag),
            _ => None,
        });
        let reflected = p.chunks.iter().any(|c| matches!(c, ChunkView::Close { reflected: true, .. }));
        let known = match init {
            Some(tag) => self.by_flow.get(&(p.dst.1, p.src.1, tag)).copied(),
            None => self
                .by_flow
                .get(&(p.src.1, p.dst.1, p.vtag))
                .copied()
                .or_else(|| reflected.then(|| self.by_flow.get(&(p.dst.1, p.src.1, p.vtag)).copied()).flatten())
                .or_else(|| self.learn_half(p)),
        };
        let id = match (known, init) {
            (Some(id), _) => self.resolve(id),
            _ if self.list.len() >= MAX_ASSOCIATIONS => {
                self.untracked += 1;
                return None;
            }
            (None, Some(tag)) => self.init(p, tag, ts_ns),
            (None, None) => self.midway(p, reflected, ts_ns),
        };
        let from = if init.is_some() { 0 } else { self.list[id].sender(p, reflected) };
        // An INIT carries no tag yet: it pairs with no one waiting for one.
        if init.is_none() {
            self.join_waiting(p, id, from);
        }
        // Packets back to the sender carry a tag not known yet: they may come from here.
        if self.list[id].endpoints[from].vtag == 0 {
            self.wait_half(Half { from: p.dst, to: p.src, id, receiver: from });
        }
        for c in &p.chunks {
            if let ChunkView::Init { ack: true, initiate_tag, .. } = c {
                // The responder's tag: carried from now on by packets to it.
                let a = &mut self.list[id];
                a.endpoints[from].vtag = *initiate_tag;
                self.by_flow.insert((p.dst.1, p.src.1, *initiate_tag), id);
                self.forget_halves(id);
            }
        }
        self.list[id].count(p, from, ts_ns);
        self.settle(id, ts_ns);
        if matches!(self.list[id].state, State::Closed | State::Aborted | State::Restarted) {
            // Over: no packet waits to join it any more.
            self.forget_halves(id);
        }
        Some((id, from))
    }

    /// After a packet of association `id`: a provisional one with both tags seen is
    /// established; a restart whose handshake completed replaces the association it
    /// restarts.
    fn settle(&mut self, id: usize, ts_ns: u64) {
        let a = &mut self.list[id];
        if a.state == State::Provisional && a.endpoints.iter().all(|e| e.vtag != 0) {
            a.enter(State::Established, ts_ns);
        }
        if a.state != State::Established {
            return;
        }
        let Some(key) = a.restart_of.take() else { return };
        if let Some(old) = self.latest.get(&key).map(|old| self.resolve(*old)) {
            if old != id && self.list[old].state == State::Established {
                self.list[old].enter(State::Restarted, ts_ns);
                self.list[id].restarted = true;
                self.forget_halves(old);
            }
        }
        self.latest.insert(key, id);
    }

    /// A packet of association `id` (sent by its endpoint `from`) that another one met
    /// mid-way was waiting for, on these very addresses: the other is this one, seen
    /// from a peer's other address before its tags told (a multi-homed peer met mid-way).
    fn join_waiting(&mut self, p: &PacketView, id: usize, from: usize) {
        let Some(waiting) = self.half.get(&(p.src, p.dst)) else {
            return;
        };
        // Only an association met mid-way can turn out to be another's other half.
        // Its tags must agree with this one's where both are known: a packet with a tag
        // this association does not have is not its own (spoofed, or another peer's).
        let list = &self.list;
        let mapping = |receiver: usize| {
            let mut map = [0; 2];
            map[receiver] = 1 - from;
            map[1 - receiver] = from;
            map
        };
        let agrees = |h: &Half| {
            let map = mapping(h.receiver);
            list[h.id].endpoints.iter().enumerate().all(|(i, e)| {
                let mine = list[id].endpoints[map[i]].vtag;
                e.vtag == 0 || mine == 0 || e.vtag == mine
            })
        };
        let Some(&Half { id: other, receiver, .. }) =
            waiting.iter().find(|h| h.id != id && list[h.id].transitions[0].0 == State::Provisional && agrees(h))
        else {
            return;
        };
        self.forget_halves(other);
        let map = mapping(receiver);
        let absorbed = std::mem::replace(&mut self.list[other], Association::new(Default::default(), State::Closed, 0));
        self.list[id].absorb(&absorbed, map);
        // Its entries in `by_flow` and `latest` lead here from now on (`resolve`).
        self.list[other].merged_into = Some(id);
    }

    /// The association `id` was counted in, after any merge since.
    #[must_use]
    pub fn resolve(&self, mut id: usize) -> usize {
        while let Some(into) = self.list[id].merged_into {
            id = into;
        }
        id
    }

    /// The association whose packets from `src_port` to `dst_port` carry `vtag`.
    #[must_use]
    pub fn by_direction(&self, src_port: u16, dst_port: u16, vtag: u32) -> Option<&Association> {
        Some(&self.list[self.direction_id(src_port, dst_port, vtag)?])
    }

    /// The index of the association whose packets from `src_port` to `dst_port` carry
    /// `vtag` (the association of a flow).
    #[must_use]
    pub fn direction_id(&self, src_port: u16, dst_port: u16, vtag: u32) -> Option<usize> {
        Some(self.resolve(*self.by_flow.get(&(src_port, dst_port, vtag))?))
    }

    /// Takes every association's counts from its flows in the kernel (see
    /// [`Association::overlay`]); `flow` finds a flow's counters. A flow counts only for
    /// the association it belongs to (two that share endpoints and a tag, as crossing
    /// INITs make, do not both take it).
    pub fn overlay<'f>(&mut self, flow: &dyn Fn(&FlowKey) -> Option<&'f FlowStats>) {
        for id in 0..self.list.len() {
            if self.list[id].merged_into.is_some() {
                continue;
            }
            let flows = [0, 1].map(|from| {
                let key = self.list[id].direction_key(from)?;
                (self.direction_id(key.src_port, key.dst_port, key.vtag) == Some(id)).then(|| flow(&key)).flatten()
            });
            self.list[id].overlay(flows);
        }
    }

    /// The associations, without those merged into others.
    pub fn iter(&self) -> impl Iterator<Item = &Association> {
        self.list.iter().filter(|a| a.merged_into.is_none())
    }

    /// An INIT not seen before (a retransmission finds its association by its tag): a new
    /// association, a restart when these endpoints had one established, a collision when
    /// theirs was in its handshake.
    fn init(&mut self, p: &PacketView, tag: u32, ts_ns: u64) -> usize {
        let id = self.list.len();
        let mut new = Association::new(
            [
                EndpointInfo { port: p.src.1, vtag: tag, addresses: BTreeSet::new() },
                EndpointInfo { port: p.dst.1, vtag: 0, addresses: BTreeSet::new() },
            ],
            State::Handshake,
            ts_ns,
        );
        let key = unordered(p.src, p.dst);
        if let Some(&old) = self.latest.get(&key) {
            let old = self.resolve(old);
            match self.list[old].state {
                // Replaced only once this handshake completes (see `settle`).
                State::Established => new.restart_of = Some(key),
                State::Handshake => {
                    self.list[old].init_collisions += 1;
                    new.init_collisions += 1;
                }
                _ => {}
            }
        }
        let pending_restart = new.restart_of.is_some();
        self.list.push(new);
        self.by_flow.insert((p.dst.1, p.src.1, tag), id);
        self.wait_half(Half { from: p.src, to: p.dst, id, receiver: 1 });
        if !pending_restart {
            self.latest.insert(key, id);
        }
        id
    }

    /// A packet whose tag is not known, on a direction waiting to learn it.
    fn learn_half(&mut self, p: &PacketView) -> Option<usize> {
        // The latest association waiting on these endpoints.
        let &Half { id, receiver, .. } = self.half.get(&(p.src, p.dst))?.last()?;
        self.list[id].endpoints[receiver].vtag = p.vtag;
        // Its other addresses wait no more either.
        self.forget_halves(id);
        self.by_flow.insert((p.src.1, p.dst.1, p.vtag), id);
        Some(id)
    }

    fn wait_half(&mut self, h: Half) {
        let key = (h.from, h.to);
        // As many as it has paths at most: one tag from a thousand sources must not make
        // each packet search a thousand.
        let waiting = &self.list[h.id].waiting;
        if waiting.len() >= MAX_PATHS || waiting.contains(&key) {
            return;
        }
        self.list[h.id].waiting.push(key);
        let waiting = self.half.entry(key).or_default();
        // The newest few on the very same endpoints: an older one still waiting there is
        // stale (and a flood of INITs must not make every packet scan all of them).
        if waiting.len() == MAX_WAITING {
            waiting.remove(0);
        }
        waiting.push(h);
    }

    /// Association `id` waits for no tag any more (learned, merged or over).
    fn forget_halves(&mut self, id: usize) {
        for key in std::mem::take(&mut self.list[id].waiting) {
            if let Some(waiting) = self.half.get_mut(&key) {
                waiting.retain(|h| h.id != id);
                if waiting.is_empty() {
                    self.half.remove(&key);
                }
            }
        }
    }

    /// An association met mid-way: its first packet's sender is endpoint 0.
    fn midway(&mut self, p: &PacketView, reflected: bool, ts_ns: u64) -> usize {
        let id = self.list.len();
        // A packet carries its receiver's tag; with the T bit, its sender's own. The
        // sender is endpoint 0, and packets to the endpoint whose tag is not known yet
        // wait to join.
        let (tags, flow, waiting) = if reflected {
            ([p.vtag, 0], (p.dst.1, p.src.1, p.vtag), Half { from: p.src, to: p.dst, id, receiver: 1 })
        } else {
            ([0, p.vtag], (p.src.1, p.dst.1, p.vtag), Half { from: p.dst, to: p.src, id, receiver: 0 })
        };
        self.list.push(Association::new(
            [
                EndpointInfo { port: p.src.1, vtag: tags[0], addresses: BTreeSet::new() },
                EndpointInfo { port: p.dst.1, vtag: tags[1], addresses: BTreeSet::new() },
            ],
            State::Provisional,
            ts_ns,
        ));
        self.by_flow.insert(flow, id);
        self.wait_half(waiting);
        self.latest.insert(unordered(p.src, p.dst), id);
        id
    }

    /// Adds another shard's associations (an association is in one shard: its ports
    /// choose it).
    /// Takes the associations of another table, counted on other ports (a shard of the
    /// same capture); its indices come along, so that `overlay` finds their flows.
    pub fn merge(&mut self, other: Associations) {
        self.untracked += other.untracked;
        self.forgotten += other.forgotten;
        let base = self.list.len();
        self.list.extend(other.list.into_iter().map(|mut a| {
            a.merged_into = a.merged_into.map(|i| i + base);
            a
        }));
        self.by_flow.extend(other.by_flow.into_iter().map(|(k, id)| (k, id + base)));
        self.latest.extend(other.latest.into_iter().map(|(k, id)| (k, id + base)));
        for (k, waiting) in other.half {
            self.half.entry(k).or_default().extend(waiting.into_iter().map(|h| Half { id: h.id + base, ..h }));
        }
    }

    /// Forgets the associations a live table no longer needs, by how long they have been
    /// quiet at `now_ns` (see [`Expiry`]); how many it forgot. Indices of `list` change.
    pub fn expire(&mut self, now_ns: u64, e: &Expiry) -> usize {
        // Near the bound, handshakes that did not complete go first: an INIT flood that
        // passed the rules must not keep real associations out for long.
        let handshake_ns = if self.list.len() >= MAX_ASSOCIATIONS / 4 * 3 {
            e.handshake_ns.min(e.crowded_handshake_ns)
        } else {
            e.handshake_ns
        };
        let limit = |a: &Association| match a.state {
            State::Handshake | State::Provisional => handshake_ns,
            State::Closed | State::Aborted | State::Restarted => e.ended_ns,
            State::Established | State::ShuttingDown => e.idle_ns,
        };
        let keep: Vec<bool> =
            self.list.iter().map(|a| a.merged_into.is_none() && now_ns.saturating_sub(a.last_ns) < limit(a)).collect();
        let forgotten = keep.iter().filter(|k| !**k).count();
        if forgotten == 0 {
            return 0;
        }
        // Old index -> new, through any merge.
        let target: Vec<usize> = (0..self.list.len()).map(|i| self.resolve(i)).collect();
        let mut renumbered = vec![None; self.list.len()];
        let mut list = Vec::with_capacity(self.list.len() - forgotten);
        for (i, a) in std::mem::take(&mut self.list).into_iter().enumerate() {
            if keep[i] {
                renumbered[i] = Some(list.len());
                list.push(a);
            }
        }
        self.list = list;
        let new_id = |id: usize| renumbered[target[id]];
        self.by_flow.retain(|_, id| new_id(*id).map(|n| *id = n).is_some());
        self.latest.retain(|_, id| new_id(*id).map(|n| *id = n).is_some());
        self.half.retain(|_, waiting| {
            waiting.retain_mut(|h| new_id(h.id).map(|n| h.id = n).is_some());
            !waiting.is_empty()
        });
        self.forgotten += forgotten as u64;
        forgotten
    }

    /// One line per association, the busiest `top` first: endpoints, tags, state, packets
    /// each way, paths, round trip, retransmissions.
    #[must_use]
    pub fn table(&self, top: usize) -> String {
        use std::fmt::Write as _;
        let all = self.iter().count();
        let mut s = format!(
            "{:<46} {:<21} {:<13} {:>9} {:>9} {:>5} {:>9} {:>6}\n",
            "association (endpoint 0 <-> endpoint 1)",
            "tags",
            "state",
            "packets >",
            "packets <",
            "paths",
            "rtt ms",
            "retx"
        );
        for (_, a) in self.busiest(top) {
            let [e0, e1] = &a.endpoints;
            let ends = format!("{} <-> {}", e0.label(), e1.label());
            #[expect(clippy::cast_precision_loss, reason = "a round trip in ns, shown in ms")]
            let rtt = a.rtt.mean_ns().map_or_else(|| "-".into(), |ns| format!("{:.3}", ns as f64 / 1e6));
            let _ = writeln!(
                s,
                "{ends:<46} {:<21} {:<13} {:>9} {:>9} {:>5} {rtt:>9} {:>6}",
                format!("{:#x}/{:#x}", e0.vtag, e1.vtag),
                a.state.name(),
                a.directions[0].packets,
                a.directions[1].packets,
                a.paths.len(),
                a.directions[0].retransmissions + a.directions[1].retransmissions,
            );
        }
        if all > top {
            let _ = writeln!(
                s,
                "... and {} more association(s) (inspect --top N shows more; the JSON report has every one)",
                all - top
            );
        }
        s.push('\n');
        s
    }

    /// The `n` busiest associations, busiest first, with their index in `list`.
    #[must_use]
    pub fn busiest(&self, n: usize) -> Vec<Indexed<'_>> {
        self.busiest_and_rest(n).0
    }

    /// [`Associations::busiest`], and the others in no order: only the `n` are sorted (a
    /// live table's export runs every second over up to `MAX_ASSOCIATIONS`).
    #[must_use]
    pub fn busiest_and_rest(&self, n: usize) -> (Vec<Indexed<'_>>, Vec<Indexed<'_>>) {
        let key =
            |(_, a): &Indexed<'_>| (std::cmp::Reverse(a.packets), a.first_ns, a.endpoints[0].port, a.endpoints[1].port);
        let mut top: Vec<Indexed<'_>> = self.list.iter().enumerate().filter(|(_, a)| a.merged_into.is_none()).collect();
        let rest = if n < top.len() {
            top.select_nth_unstable_by_key(n, key);
            top.split_off(n)
        } else {
            Vec::new()
        };
        top.sort_by_key(key);
        (top, rest)
    }
}

#[cfg(test)]
mod tests {
    use sctp_common::{
        builder::{Chunk, Ip, SctpPacket, V4},
        proto::chunk::ty,
    };

    use super::*;
    use crate::observe::packet_view::view;

    const MS: u64 = 1_000_000;
    const BACK: Ip = Ip::V4 { src: [198, 18, 0, 2], dst: [198, 18, 0, 1] };
    const BACK_SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 2));
    const V4_SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 1));

    /// A packet from the client (198.18.0.1:5000) or back from the server (:36412).
    fn pkt(back: bool, vtag: u32, chunks: Vec<Chunk>) -> PacketView {
        let mut p = SctpPacket::new(if back { BACK } else { V4 }, vtag, chunks);
        (p.src_port, p.dst_port) = if back { (36412, 5000) } else { (5000, 36412) };
        view(&p.frame()).unwrap()
    }

    fn handshake(a: &mut Associations, t0: u64, client_tag: u32, server_tag: u32) {
        let _ = a.add(&pkt(false, 0, vec![Chunk::init(ty::INIT, client_tag, 65_536, 4, 4, 1)]), t0);
        let _ =
            a.add(&pkt(true, client_tag, vec![Chunk::init(ty::INIT_ACK, server_tag, 65_536, 4, 4, 100)]), t0 + 2 * MS);
        let _ = a.add(&pkt(false, server_tag, vec![Chunk::new(ty::COOKIE_ECHO, 0, vec![0; 8])]), t0 + 3 * MS);
        let _ = a.add(&pkt(true, client_tag, vec![Chunk::new(ty::COOKIE_ACK, 0, vec![])]), t0 + 6 * MS);
    }

    #[test]
    fn a_handshake_pairs_both_tags_and_times_its_round_trips() {
        let mut a = Associations::default();
        handshake(&mut a, 0, 0xc1, 0x51);
        // DATA's round trips are the flows' (`parse::round_trip`), not timed here.
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::data(31, 0, 0, 18, 100)]), 10 * MS);
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::data(31, 0, 0, 18, 100)]), 15 * MS);
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::data(32, 0, 0, 18, 100)]), 16 * MS);
        let _ = a.add(&pkt(true, 0xc1, vec![Chunk::sack(32, 1000, 0, 0)]), 20 * MS);
        let all: Vec<&Association> = a.iter().collect();
        assert_eq!(all.len(), 1);
        let x = all[0];
        assert_eq!((x.endpoints[0].vtag, x.endpoints[1].vtag), (0xc1, 0x51));
        assert_eq!((x.endpoints[0].port, x.endpoints[1].port), (5000, 36412));
        assert_eq!(x.state, State::Established);
        assert_eq!((x.init_rtt, x.cookie_rtt), (Some(2 * MS), Some(3 * MS)));
        assert_eq!(x.packets, 8);
        assert_eq!((x.directions[0].packets, x.directions[1].packets), (5, 3));
        assert_eq!(x.directions[0].retransmissions, 1, "TSN 31 sent twice");
        assert_eq!(x.rtt.count, 0, "DATA is timed by the flows");
        assert_eq!(x.directions[1].a_rwnd_last, Some(1000));
        assert_eq!(x.paths.len(), 2, "one each way");
    }

    #[test]
    fn an_association_met_at_its_reflected_abort_names_each_endpoint_by_its_own_port() {
        let mut a = Associations::default();
        // The server aborts with its own tag (T bit): the first packet seen of the association.
        let _ =
            a.add(&pkt(true, 0x51, vec![Chunk::new(ty::ABORT, sctp_common::proto::chunk::flag::T_BIT, vec![])]), MS);
        let x = a.iter().next().unwrap().json();
        let endpoints: Vec<(u64, u64, String)> = x["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["port"].as_u64().unwrap(), e["vtag"].as_u64().unwrap(), e["addresses"].to_string()))
            .collect();
        assert_eq!(
            endpoints,
            [(36412, 0x51, r#"["198.18.0.2"]"#.to_string()), (5000, 0, r#"["198.18.0.1"]"#.to_string())]
        );
        assert_eq!(x["state"], "aborted");
    }

    #[test]
    fn a_path_takes_its_heartbeats_and_their_round_trips_from_its_flow() {
        let mut a = Associations::default();
        handshake(&mut a, 0, 0xc1, 0x51);
        // What the server's flow (to the client: the client's tag) timed: three HEARTBEATs
        // unanswered before the one waiting, and an earlier one answered in 2 ms.
        let mut flow = <FlowStats as bytemuck::Zeroable>::zeroed();
        let slot = &mut flow.paths[0];
        slot.src_addr = [u32::from_ne_bytes([198, 18, 0, 2]), 0, 0, 0];
        slot.dst_addr = [u32::from_ne_bytes([198, 18, 0, 1]), 0, 0, 0];
        (slot.packets, slot.heartbeats, slot.heartbeats_unanswered, slot.heartbeat_sent_ns) = (6, 5, 3, 40 * MS);
        slot.heartbeat_rtt.add(2 * MS);
        flow.heartbeat_rtt.add(2 * MS);
        a.overlay(&|k| (k.vtag == 0xc1).then_some(&flow));
        let x = a.iter().next().unwrap();
        let json = x.json();
        let path = json["paths"].as_array().unwrap().iter().find(|p| p["src"] == "198.18.0.2").unwrap();
        assert_eq!((path["heartbeats"].as_u64(), path["heartbeats_unanswered"].as_u64()), (Some(5), Some(4)));
        assert_eq!((path["rtt_us"]["count"].as_u64(), path["rtt_us"]["min"].as_u64()), (Some(1), Some(2_000)));
        assert_eq!(x.paths[&(BACK_SRC, V4_SRC)].rtt.min_ns, 2 * MS);
        assert_eq!(x.heartbeat_rtt.count, 1, "the association's histogram");
    }

    #[test]
    fn a_merged_table_finds_the_flows_of_every_shard() {
        let (mut one, mut two) = (Associations::default(), Associations::default());
        handshake(&mut one, 0, 0xc1, 0x51);
        handshake(&mut two, 0, 0xc2, 0x52);
        one.merge(two);
        assert_eq!(one.direction_id(5000, 36412, 0x52), Some(1), "the second shard's association");
        let mut flow = <FlowStats as bytemuck::Zeroable>::zeroed();
        flow.packets = 77;
        one.overlay(&|k| (k.vtag == 0x52).then_some(&flow));
        let packets: Vec<u64> = one.iter().map(|a| a.directions[0].packets).collect();
        // The INIT (tag 0) is on a flow of its own: it stays counted beside the flow's 77.
        assert_eq!(packets, [2, 78], "the first keeps its own count, the second takes its flow's");
    }

    #[test]
    fn a_new_init_after_an_established_one_is_a_restart_and_a_new_association() {
        let mut a = Associations::default();
        handshake(&mut a, 0, 0xc1, 0x51);
        handshake(&mut a, 100 * MS, 0xc2, 0x52);
        let all: Vec<&Association> = a.iter().collect();
        assert_eq!(all.len(), 2);
        assert!(!all[0].restarted && all[1].restarted);
        assert_eq!(all[1].packets, 4);
        assert_eq!((all[0].state, all[1].state), (State::Restarted, State::Established));
        assert_eq!(
            all[0].transitions.last(),
            Some(&(State::Restarted, 106 * MS)),
            "replaced once the new handshake completed"
        );
    }

    #[test]
    fn an_association_met_mid_way_learns_both_tags_from_both_directions() {
        let mut a = Associations::default();
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::data(64, 0, 0, 18, 10)]), 0);
        let _ = a.add(&pkt(true, 0xc1, vec![Chunk::sack(64, 1000, 0, 0)]), MS);
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::data(65, 0, 0, 18, 10)]), 2 * MS);
        // Another peer on the same ports: an association of its own.
        let mut other = SctpPacket::new(
            Ip::V4 { src: [198, 18, 0, 9], dst: [198, 18, 0, 2] },
            0x99,
            vec![Chunk::data(1, 0, 0, 18, 10)],
        );
        (other.src_port, other.dst_port) = (5000, 36412);
        let _ = a.add(&view(&other.frame()).unwrap(), 3 * MS);
        let all: Vec<&Association> = a.busiest(10).into_iter().map(|(_, x)| x).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].packets, 3);
        assert_eq!((all[0].endpoints[0].vtag, all[0].endpoints[1].vtag), (0xc1, 0x51));
    }

    #[test]
    fn expiry_forgets_what_ended_and_keeps_finding_what_lives() {
        const S: u64 = 1_000 * MS;
        let mut a = Associations::default();
        handshake(&mut a, 0, 0xc1, 0x51);
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::new(ty::ABORT, 0, vec![])]), MS);
        // Another peer's association, alive.
        let mut init = SctpPacket::new(
            Ip::V4 { src: [198, 18, 0, 9], dst: [198, 18, 0, 2] },
            0,
            vec![Chunk::init(ty::INIT, 0xc2, 1000, 1, 1, 1)],
        );
        (init.src_port, init.dst_port) = (5001, 36412);
        let _ = a.add(&view(&init.frame()).unwrap(), 50 * S);
        let mut data = SctpPacket::new(
            Ip::V4 { src: [198, 18, 0, 9], dst: [198, 18, 0, 2] },
            0x52,
            vec![Chunk::data(1, 0, 0, 18, 10)],
        );
        (data.src_port, data.dst_port) = (5001, 36412);
        let mut ack = SctpPacket::new(
            Ip::V4 { src: [198, 18, 0, 2], dst: [198, 18, 0, 9] },
            0xc2,
            vec![Chunk::init(ty::INIT_ACK, 0x52, 1000, 1, 1, 1)],
        );
        (ack.src_port, ack.dst_port) = (36412, 5001);
        let _ = a.add(&view(&ack.frame()).unwrap(), 50 * S);
        let _ = a.add(&view(&data.frame()).unwrap(), 60 * S);
        assert_eq!(a.expire(61 * S, &Expiry::default()), 1, "the aborted one");
        assert_eq!((a.list.len(), a.forgotten), (1, 1));
        let _ = a.add(&view(&data.frame()).unwrap(), 62 * S);
        assert_eq!(a.list.len(), 1, "found again after renumbering");
        assert_eq!(a.list[0].packets, 4);
        assert_eq!(a.expire(62 * S + Expiry::default().idle_ns, &Expiry::default()), 1, "idle too long");
    }

    #[test]
    fn an_abort_closes_and_shutdown_walks_the_states() {
        let mut a = Associations::default();
        handshake(&mut a, 0, 0xc1, 0x51);
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::new(ty::SHUTDOWN, 0, vec![0; 4])]), 10 * MS);
        let _ = a.add(&pkt(true, 0xc1, vec![Chunk::new(ty::SHUTDOWN_ACK, 0, vec![])]), 11 * MS);
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::new(ty::SHUTDOWN_COMPLETE, 0, vec![])]), 12 * MS);
        let x = a.busiest(1)[0].1;
        let states: Vec<State> = x.transitions.iter().map(|t| t.0).collect();
        assert_eq!(states, [State::Handshake, State::Established, State::ShuttingDown, State::Closed]);
    }

    /// What a blind attacker's packets must not change about a real association.
    fn fingerprint(a: &Association) -> Value {
        let mut j = a.json();
        j.as_object_mut().unwrap().remove("last_ns");
        j
    }

    /// The real association of `handshake`, after a DATA and its SACK.
    fn established(a: &mut Associations) -> Value {
        handshake(a, 0, 0xc1, 0x51);
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::data(32, 0, 0, 18, 100)]), 10 * MS);
        let _ = a.add(&pkt(true, 0xc1, vec![Chunk::sack(32, 1000, 0, 0)]), 12 * MS);
        fingerprint(a.by_direction(5000, 36412, 0x51).unwrap())
    }

    #[test]
    fn a_spoofed_init_restarts_nothing_until_its_handshake_completes() {
        let mut a = Associations::default();
        let before = established(&mut a);
        // The INIT, and the real server's INIT-ACK to it, which the real client drops.
        let _ = a.add(&pkt(false, 0, vec![Chunk::init(ty::INIT, 0xbad, 65_536, 4, 4, 1)]), 20 * MS);
        let _ = a.add(&pkt(true, 0xbad, vec![Chunk::init(ty::INIT_ACK, 0x52, 65_536, 4, 4, 1)]), 21 * MS);
        // DATA to the initiator's chosen tag does not complete a restart either.
        let _ = a.add(&pkt(true, 0xbad, vec![Chunk::data(1, 0, 0, 18, 10)]), 22 * MS);
        let real = a.by_direction(5000, 36412, 0x51).unwrap();
        assert_eq!(fingerprint(real), before);
        assert_eq!(real.state, State::Established);
        assert!(a.iter().all(|x| !x.restarted));
        // The real association keeps being found and counted.
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::data(2, 0, 0, 18, 100)]), 30 * MS);
        assert_eq!(a.by_direction(5000, 36412, 0x51).unwrap().directions[0].data_chunks, 2);
    }

    #[test]
    fn data_and_heartbeats_with_unknown_tags_never_join_a_real_association() {
        let mut a = Associations::default();
        let before = established(&mut a);
        for i in 0..500 {
            // From the client's address and from others, to the server, with a tag that is
            // not the server's; and a heartbeat the other way.
            let mut p = SctpPacket::new(
                Ip::V4 { src: [198, 18, 0, u8::try_from(i % 200).unwrap() + 1], dst: [198, 18, 0, 2] },
                0x7777,
                vec![Chunk::data(i, 0, 0, 18, 10)],
            );
            (p.src_port, p.dst_port) = (5000, 36412);
            let _ = a.add(&view(&p.frame()).unwrap(), (20 + u64::from(i)) * MS);
            let hb = Chunk::new(ty::HEARTBEAT, 0, vec![0, 1, 0, 8, 1, 2, 3, 4]);
            let _ = a.add(&pkt(true, 0x8888, vec![hb]), (20 + u64::from(i)) * MS);
            // Real traffic goes on meanwhile (answered heartbeats, SACKs).
            let _ = a.add(&pkt(true, 0xc1, vec![Chunk::sack(32, 1000, 0, 0)]), (20 + u64::from(i)) * MS);
        }
        let real = a.by_direction(5000, 36412, 0x51).unwrap();
        assert_eq!(real.directions[0], before_dir(&before, 0));
        assert_eq!(real.paths.len(), 2);
        assert_eq!(real.directions[0].retransmissions, 0);
        // The spoofed packets make an association of their own, within its bounds.
        let fake = a.by_direction(5000, 36412, 0x7777).unwrap();
        assert!(!std::ptr::eq(fake, real));
        assert!(fake.endpoints[0].addresses.len() <= MAX_ADDRESSES && fake.paths.len() <= MAX_PATHS);
        assert!(fake.beyond_bounds > 0);
    }

    /// Direction `i`'s packets and DATA as the fingerprint has them.
    fn before_dir(before: &Value, i: usize) -> (u64, u64) {
        let d = &before["directions"][i];
        (d["packets"].as_u64().unwrap(), d["data_chunks"].as_u64().unwrap())
    }

    impl PartialEq<(u64, u64)> for DirStats {
        fn eq(&self, (packets, data): &(u64, u64)) -> bool {
            self.packets == *packets && self.data_chunks == *data
        }
    }

    #[test]
    fn one_tag_from_many_sources_stays_within_its_bounds() {
        let mut a = Associations::default();
        for i in 0..20_000u32 {
            let mut src = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            src[12..].copy_from_slice(&i.to_be_bytes());
            let mut p = SctpPacket::new(
                Ip::V6 { src, dst: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2] },
                0x4242,
                vec![Chunk::data(i, 0, 0, 18, 10)],
            );
            (p.src_port, p.dst_port) = (5000, 36412);
            let _ = a.add(&view(&p.frame()).unwrap(), u64::from(i) * MS);
        }
        let x = a.by_direction(5000, 36412, 0x4242).unwrap();
        assert_eq!(x.packets, 20_000, "every packet counted");
        assert_eq!(x.endpoints[0].addresses.len(), MAX_ADDRESSES);
        assert!(x.paths.len() <= MAX_PATHS && x.waiting.len() <= MAX_PATHS);
        assert_eq!(x.beyond_bounds, 20_000 - MAX_ADDRESSES as u64);
        assert_eq!(a.half.values().map(Vec::len).sum::<usize>(), x.waiting.len());
    }

    #[test]
    fn cookie_echoes_with_random_tags_stay_provisional_and_go_as_fast_as_handshakes() {
        let mut a = Associations::default();
        let _ = established(&mut a);
        for tag in 1..=1000 {
            let _ = a.add(&pkt(false, 0x1_0000 + tag, vec![Chunk::new(ty::COOKIE_ECHO, 0, vec![0; 8])]), 20 * MS);
        }
        assert_eq!(a.iter().filter(|x| x.state == State::Provisional).count(), 1000);
        let quiet = 20 * MS + Expiry::default().handshake_ns;
        let _ = a.add(&pkt(false, 0x51, vec![Chunk::data(2, 0, 0, 18, 100)]), quiet);
        assert_eq!(a.expire(quiet, &Expiry::default()), 1000);
        assert_eq!(a.iter().map(|x| x.state).collect::<Vec<_>>(), [State::Established]);
    }

    #[test]
    fn retransmissions_and_round_trips_need_no_memory_per_tsn() {
        let mut t = TsnTracker::default();
        // A million TSNs never acknowledged: the tracker stays as it is, a few words.
        for tsn in 0..1_000_000 {
            assert!(!t.sent(tsn, u64::from(tsn), true));
        }
        assert!(core::mem::size_of::<TsnTracker>() <= 32);
        // The first TSN was timed; a SACK covering it gives its round trip, once.
        assert_eq!(t.acked(0, 5_000), Some(5_000));
        assert_eq!(t.acked(10, 6_000), None);
        // Karn: the TSN timed sent again gives none.
        let mut t = TsnTracker::default();
        assert!(!t.sent(u32::MAX, 0, true));
        assert!(t.sent(u32::MAX, 10, true), "a retransmission");
        assert!(!t.sent(0, 20, true), "past the wrap");
        assert_eq!(t.acked(u32::MAX, 30), None);
        assert_eq!(t.acked(0, 40), Some(20));
        // Only TSNs that may be timed are (from summaries: those user space sees all of).
        let mut t = TsnTracker::default();
        assert!(!t.sent(1, 0, false));
        assert!(!t.sent(2, 5, true));
        assert_eq!(t.acked(1, 9), None);
        assert_eq!(t.acked(2, 15), Some(10));
    }

    #[test]
    fn an_init_flood_makes_at_most_the_bound_of_associations() {
        let mut a = Associations::default();
        let src = IpAddr::from([198, 18, 0, 1]);
        let dst = IpAddr::from([198, 18, 0, 2]);
        for tag in 1..=u32::try_from(MAX_ASSOCIATIONS).unwrap() + 10 {
            let init = PacketView {
                src: (src, 5000),
                dst: (dst, 36412),
                vtag: 0,
                ip_len: 68,
                ifindex: 0,
                chunks: vec![ChunkView::Init { ack: false, initiate_tag: tag, addresses: Vec::new() }],
            };
            let _ = a.add(&init, u64::from(tag));
        }
        assert_eq!(a.iter().count(), MAX_ASSOCIATIONS);
        assert_eq!(a.untracked, 10);
        // A live table forgets the handshakes that went quiet, at once when it is crowded,
        // and takes new associations again.
        let quiet = 2 * Expiry::default().crowded_handshake_ns;
        assert_eq!(a.expire(quiet, &Expiry::default()), MAX_ASSOCIATIONS);
        assert!(a.add(&pkt(false, 0, vec![Chunk::init(ty::INIT, 7, 1000, 1, 1, 1)]), quiet).is_some());
    }
}
