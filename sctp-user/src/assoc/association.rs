//! One association: its two endpoints (port, tag, addresses), what each direction sent,
//! every path of a multi-homed peer, its state and its round trips.

use std::{collections::BTreeSet, net::IpAddr};

use sctp_common::{
    abi::{ip_addr, FlowKey, FlowStats, PathSlot, RoundTrips},
    proto::chunk::{bucket, ty},
};

use super::{
    packet_view::{ChunkView, PacketView},
    round_trip::TsnTracker,
};

/// Paths kept per association (a peer with more addresses has its further paths merged
/// into the last, and counted in [`Association::beyond_bounds`]).
pub(super) const MAX_PATHS: usize = 16;
/// Addresses kept per endpoint: packets from further ones (a peer spoofing many sources
/// on one tag) are counted, their addresses not kept.
pub(super) const MAX_ADDRESSES: usize = 8;

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
    pub(super) tsns: TsnTracker,
    /// Packets (and their bytes) of this direction outside its flow: INITs (tag 0) and
    /// ABORTs or SHUTDOWN-COMPLETEs with a reflected tag. The kernel counts them under
    /// other flows; [`Association::overlay`] adds them to the flow's counts.
    pub(super) off_flow: (u64, u64),
}

impl DirStats {
    /// Adds what the same endpoint sent while seen as another association: counts add
    /// up; the last window and DATA path are this one's, the other's where this has none.
    pub(super) fn merge(&mut self, o: &DirStats) {
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
    pub(super) off_flow: (u64, u64),
}

impl PathStats {
    /// Adds the same path's counts seen under another association.
    pub(super) fn merge(&mut self, p: &PathStats) {
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
    pub(super) fn add_address(&mut self, a: IpAddr) -> bool {
        if self.addresses.len() >= MAX_ADDRESSES && !self.addresses.contains(&a) {
            return false;
        }
        self.addresses.insert(a);
        true
    }

    pub(super) fn add_addresses(&mut self, all: &[IpAddr]) {
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
    /// Its application messages, both directions (see `messages`).
    pub messages: super::messages::Messages,
    /// Started by an INIT on the endpoints of an established association: it replaces that
    /// one (a restart) only once its handshake completes (RFC 9260 5.2.4), so a spoofed
    /// INIT changes nothing. The endpoints, as [`Associations::latest`] keys them.
    pub(super) restart_of: Option<(Endpoint, Endpoint)>,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Found to be part of another (see [`Associations::add`]): counted there.
    pub merged_into: Option<usize>,
    /// Its directions waiting to learn their tag (keys of `Associations::untagged`).
    pub(super) waiting: Vec<(Endpoint, Endpoint)>,
    pub(super) init_sent: Option<u64>,
    pub(super) cookie_sent: Option<u64>,
}

impl Association {
    pub(super) fn new(endpoints: [EndpointInfo; 2], state: State, ts_ns: u64) -> Self {
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
            messages: super::messages::Messages::default(),
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
    pub(super) fn absorb(&mut self, other: &Association, map: [usize; 2]) {
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
        self.messages.merge(&other.messages);
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

    pub(super) fn enter(&mut self, state: State, ts_ns: u64) {
        if self.state != state {
            self.state = state;
            self.transitions.push((state, ts_ns));
        }
    }

    /// Which endpoint sent `p`: the one whose tag it does not carry (packets carry their
    /// receiver's tag), else the one on its source port.
    pub(super) fn sender(&self, p: &PacketView, reflected: bool) -> usize {
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
    pub(super) fn path_key(&self, key: (IpAddr, IpAddr)) -> (IpAddr, IpAddr) {
        if self.paths.len() >= MAX_PATHS && !self.paths.contains_key(&key) {
            *self.paths.keys().max().expect("MAX_PATHS > 0")
        } else {
            key
        }
    }

    /// Counts the packet, sent by endpoint `from`. Round trips of DATA and HEARTBEATs are
    /// not timed here: the flows time them (see `parse::round_trip`), and `overlay` takes
    /// them.
    pub(super) fn count(&mut self, p: &PacketView, from: usize, ts_ns: u64) {
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
    pub(super) fn direction_key(&self, from: usize) -> Option<FlowKey> {
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
    pub(super) fn overlay(&mut self, flows: [Option<&FlowStats>; 2]) {
        if flows.iter().any(Option::is_some) {
            self.messages.overlay(flows.iter().flatten().copied());
        }
        let mut beyond = 0;
        let (mut rtt, mut heartbeat_rtt) = (RoundTrips::default(), RoundTrips::default());
        for (from, f) in flows.into_iter().enumerate() {
            let Some(f) = f else {
                continue;
            };
            beyond += f.paths_beyond;
            let family = f.family;
            let slot_path = |s: &PathSlot| {
                (ip_addr(family, bytemuck::cast_ref(&s.src_addr)), ip_addr(family, bytemuck::cast_ref(&s.dst_addr)))
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
}
