//! Associations from a capture: the two directions of each paired by their tags (an
//! INIT's initiate tag is the tag of every packet to the initiator, an INIT-ACK's of every
//! packet to the responder; an association seen mid-way is paired by reversed ports and
//! addresses), with its state, every path of a multi-homed peer, retransmissions, windows
//! and round trips. Built by `inspect` from the packets it replays.

use std::collections::BTreeSet;

use sctp_common::abi::{FlowKey, FlowStats};

use super::{
    association::{Association, Endpoint, EndpointInfo, State, MAX_PATHS},
    messages::Matched,
    packet_view::{ChunkView, PacketView},
};

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

/// A direction waiting to learn its tag.
#[derive(Clone, Copy, Debug)]
struct WaitingDirection {
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
    untagged: foldhash::HashMap<(Endpoint, Endpoint), Vec<WaitingDirection>>,
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
            self.wait_for_tag(WaitingDirection { from: p.dst, to: p.src, id, receiver: from });
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
        let Some(waiting) = self.untagged.get(&(p.src, p.dst)) else {
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
        let agrees = |h: &WaitingDirection| {
            let map = mapping(h.receiver);
            list[h.id].endpoints.iter().enumerate().all(|(i, e)| {
                let mine = list[id].endpoints[map[i]].vtag;
                e.vtag == 0 || mine == 0 || e.vtag == mine
            })
        };
        let Some(&WaitingDirection { id: other, receiver, .. }) =
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

    /// Takes the kernel's Diameter matches of every association's directions (see
    /// [`Messages::set_answers`]).
    pub fn set_answers(&mut self, matched: &Matched) {
        for a in self.list.iter_mut().filter(|a| a.merged_into.is_none()) {
            let keys = [a.direction_key(0), a.direction_key(1)];
            let ours = |k: &FlowKey| keys.contains(&Some(*k));
            a.messages.set_answers(matched, ours, ours);
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
        self.wait_for_tag(WaitingDirection { from: p.src, to: p.dst, id, receiver: 1 });
        if !pending_restart {
            self.latest.insert(key, id);
        }
        id
    }

    /// A packet whose tag is not known, on a direction waiting to learn it.
    fn learn_half(&mut self, p: &PacketView) -> Option<usize> {
        // The latest association waiting on these endpoints.
        let &WaitingDirection { id, receiver, .. } = self.untagged.get(&(p.src, p.dst))?.last()?;
        self.list[id].endpoints[receiver].vtag = p.vtag;
        // Its other addresses wait no more either.
        self.forget_halves(id);
        self.by_flow.insert((p.src.1, p.dst.1, p.vtag), id);
        Some(id)
    }

    fn wait_for_tag(&mut self, h: WaitingDirection) {
        let key = (h.from, h.to);
        // As many as it has paths at most: one tag from a thousand sources must not make
        // each packet search a thousand.
        let waiting = &self.list[h.id].waiting;
        if waiting.len() >= MAX_PATHS || waiting.contains(&key) {
            return;
        }
        self.list[h.id].waiting.push(key);
        let waiting = self.untagged.entry(key).or_default();
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
            if let Some(waiting) = self.untagged.get_mut(&key) {
                waiting.retain(|h| h.id != id);
                if waiting.is_empty() {
                    self.untagged.remove(&key);
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
            ([p.vtag, 0], (p.dst.1, p.src.1, p.vtag), WaitingDirection { from: p.src, to: p.dst, id, receiver: 1 })
        } else {
            ([0, p.vtag], (p.src.1, p.dst.1, p.vtag), WaitingDirection { from: p.dst, to: p.src, id, receiver: 0 })
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
        self.wait_for_tag(waiting);
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
        for (k, waiting) in other.untagged {
            self.untagged
                .entry(k)
                .or_default()
                .extend(waiting.into_iter().map(|h| WaitingDirection { id: h.id + base, ..h }));
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
        self.untagged.retain(|_, waiting| {
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
    use std::net::IpAddr;

    use serde_json::Value;

    use super::super::association::{DirStats, MAX_ADDRESSES};
    use crate::{assoc::packet_view::view, doc::AssociationDoc};

    /// The association as `inspect --format json` gives it.
    fn json(a: &Association) -> Value {
        serde_json::to_value(AssociationDoc::of(a)).unwrap()
    }

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
        let x = json(a.iter().next().unwrap());
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
        let json = json(x);
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
        let mut j = json(a);
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
        assert_eq!(a.untagged.values().map(Vec::len).sum::<usize>(), x.waiting.len());
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
