//! Application messages of a replay, read from each frame by the frame watch (the same
//! for both engines): counted by (protocol, kind, code, application), Diameter answers by
//! Result-Code, each answer timed from its request (matched within its association by
//! hop-by-hop and end-to-end identifiers), requests never answered counted. A message
//! counts once: at the DATA or I-DATA chunk that begins it (B bit) with a TSN its
//! direction had not sent (see [`TsnWindow`]): a retransmission is not a new message.

use std::collections::{btree_map, hash_map::Entry, BTreeMap, HashMap};

use sctp_common::{
    abi::{FlowKey, FlowStats, MessageSlot, ResponseKey, RoundTrips, TsnWindow},
    parse::{
        message::{self, Kind, Malformed, Protocol},
        Packet as _, SctpLocation,
    },
    proto::chunk::{flag, ty},
};

use super::packet_view::raw_chunks;

/// A request unanswered this long after it was sent, by the end of the capture, counts as
/// unanswered (an answer later than that is a failure to any client; RFC 6733's
/// watchdog, Tw, is 30 s).
pub const ANSWER_TIMEOUT_NS: u64 = 10_000_000_000;
/// Requests waiting for their answers at most: beyond, a new request is not timed.
pub const MAX_PENDING: usize = 1 << 16;
/// Directions whose TSNs are kept at most (about 40 MB): a capture of endless made-up
/// tags cannot take all memory. Beyond, a new direction's chunks are all taken as new.
pub const MAX_DIRECTIONS: usize = 1 << 20;

/// What messages are counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageKey {
    pub protocol: Protocol,
    pub kind: Kind,
    /// See `message::Message::code`.
    pub code: u32,
    /// Diameter's application id (0 for the others).
    pub application: u32,
}

/// The messages of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    /// Diameter answers: by Result-Code (or Experimental-Result-Code; 0: none found).
    pub results: BTreeMap<u32, u64>,
    /// Diameter answers: the time from their requests (as round trips are kept: extremes,
    /// sum and a histogram).
    pub response: RoundTrips,
    /// Diameter requests: never answered (see [`ANSWER_TIMEOUT_NS`]).
    pub unanswered: u64,
}

impl Tally {
    fn merge(&mut self, o: &Tally) {
        self.count += o.count;
        for (r, n) in &o.results {
            *self.results.entry(*r).or_default() += n;
        }
        self.response.merge(&o.response);
        self.unanswered += o.unanswered;
    }
}

/// Keys one [`Messages`] keeps at most: codes and application ids are the sender's to
/// choose, and a capture of made-up ones cannot take all memory.
pub const MAX_KEYS: usize = 4096;

/// Messages by key, those of keys beyond [`MAX_KEYS`], and those that could not be read
/// by why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Messages {
    pub by_key: BTreeMap<MessageKey, Tally>,
    pub untabled: u64,
    pub malformed: BTreeMap<&'static str, u64>,
}

impl Messages {
    pub fn merge(&mut self, o: &Messages) {
        self.untabled += o.untabled;
        for (k, t) in &o.by_key {
            match self.tally(*k) {
                Some(mine) => mine.merge(t),
                None => self.untabled += t.count,
            }
        }
        for (why, n) in &o.malformed {
            *self.malformed.entry(why).or_default() += n;
        }
    }

    /// Counts a request of `key` never answered (see [`MessageWatch::close`]).
    pub fn unanswered(&mut self, key: MessageKey) {
        if let Some(t) = self.tally(key) {
            t.unanswered += 1;
        }
    }

    /// The tally of `key`, made if new and there is room.
    fn tally(&mut self, key: MessageKey) -> Option<&mut Tally> {
        let room = self.by_key.len() < MAX_KEYS;
        match self.by_key.entry(key) {
            btree_map::Entry::Occupied(t) => Some(t.into_mut()),
            btree_map::Entry::Vacant(v) if room => Some(v.insert(Tally::default())),
            btree_map::Entry::Vacant(_) => None,
        }
    }

    /// Counts one message of `key` (an answer with its `result`).
    fn count(&mut self, key: MessageKey, result: Option<u32>) {
        let Some(t) = self.tally(key) else {
            self.untabled += 1;
            return;
        };
        t.count += 1;
        if let Some(r) = result {
            *t.results.entry(r).or_default() += 1;
        }
    }

    fn respond(&mut self, key: MessageKey, rt: u64) {
        if let Some(t) = self.tally(key) {
            t.response.add(rt);
        }
    }

    /// Takes the counts of `key` (count and results) from `counted`, keeping what was
    /// timed here (response times, unanswered requests).
    fn counts_from(&mut self, counted: &Messages) {
        for t in self.by_key.values_mut() {
            (t.count, t.results) = (0, BTreeMap::new());
        }
        for (k, t) in &counted.by_key {
            let mine = self.by_key.entry(*k).or_default();
            (mine.count, mine.results) = (t.count, t.results.clone());
        }
        self.by_key.retain(|_, t| t.count > 0 || t.unanswered > 0);
        self.untabled = counted.untabled;
    }

    /// The messages a flow counted (see `sctp_common::parse::tally`), added to these.
    pub fn add_flow(&mut self, f: &FlowStats) {
        for slot in f.messages.iter().filter(|s| s.head != 0) {
            self.add_slot(slot.head, slot.tail, slot.count);
        }
        self.untabled += f.messages_untabled;
    }

    /// Adds `count` messages of a flow table's key (`MessageSlot::head`, `tail`).
    pub fn add_slot(&mut self, head: u64, tail: u64, count: u64) {
        let (protocol, kind, code, application, result) = MessageSlot { head, tail, count }.fields();
        let (Some(protocol), Some(kind)) = (Protocol::from_number(protocol), Kind::from_number(kind)) else {
            return;
        };
        let t = self.by_key.entry(MessageKey { protocol, kind, code, application }).or_default();
        t.count += count;
        if kind == Kind::Answer {
            *t.results.entry(result).or_default() += count;
        }
    }

    /// The counts `flows` keep (kernel == host: an association's directions, or every
    /// flow of a replay): they replace those counted here, whose response times and
    /// unanswered requests stay.
    pub fn overlay<'f>(&mut self, flows: impl IntoIterator<Item = &'f FlowStats>) {
        let mut counted = Messages::default();
        for f in flows {
            counted.add_flow(f);
        }
        self.counts_from(&counted);
    }

    /// Takes the Diameter matches the kernel made (see `sctp_common::parse::tally`): the
    /// response times of the answers on the directions `answers_here` accepts, and the
    /// requests left unanswered whose answers `requests_here` accepts the direction of.
    /// Replaces those taken before (a live table takes them again at each export).
    pub fn set_answers(
        &mut self,
        matched: &Matched,
        answers_here: impl Fn(&FlowKey) -> bool,
        requests_here: impl Fn(&FlowKey) -> bool,
    ) {
        for t in self.by_key.values_mut() {
            (t.response, t.unanswered) = (RoundTrips::default(), 0);
        }
        let key = |kind, k: &ResponseKey| MessageKey {
            protocol: Protocol::Diameter,
            kind,
            code: k.command,
            application: k.application,
        };
        for (k, times) in matched.responses.iter().filter(|(k, _)| answers_here(&k.flow)) {
            if let Some(t) = self.tally(key(Kind::Answer, k)) {
                t.response.merge(times);
            }
        }
        for (k, n) in matched.unanswered.iter().filter(|(k, _)| requests_here(&k.flow)) {
            if let Some(t) = self.tally(key(Kind::Request, k)) {
                t.unanswered += n;
            }
        }
        self.by_key.retain(|_, t| t.count > 0 || t.unanswered > 0);
    }

    fn malformed(&mut self, why: Malformed) {
        *self.malformed.entry(why.name()).or_default() += 1;
    }
}

/// The kernel's Diameter matches (`abi::maps::RESPONSES`, and the requests user space
/// took out of `PENDING` unanswered), both by the direction the answers take and their
/// command.
#[derive(Clone, Debug, Default)]
pub struct Matched {
    pub responses: BTreeMap<ResponseKey, RoundTrips>,
    pub unanswered: BTreeMap<ResponseKey, u64>,
}

/// Directions and commands whose unanswered requests [`Matched`] keeps apart (as many as
/// `PENDING` holds requests): only associations whose handshake was seen make them, but
/// they come and go for as long as `run` runs.
pub const MAX_UNANSWERED_KEYS: usize = 1 << 16;

impl Matched {
    /// Counts a request left unanswered. Beyond [`MAX_UNANSWERED_KEYS`], a new key's is
    /// counted under its command alone (the direction `FlowKey::SINK`, which no flow and
    /// no association has): the totals keep it, as requests arriving.
    pub fn unanswered(&mut self, mut key: ResponseKey) {
        if self.unanswered.len() >= MAX_UNANSWERED_KEYS && !self.unanswered.contains_key(&key) {
            key.flow = FlowKey::SINK;
        }
        *self.unanswered.entry(key).or_default() += 1;
    }
}

/// One message that began in a frame.
#[derive(Clone, Copy, Debug)]
pub struct Begun {
    /// Its direction: ports and tag.
    pub src_port: u16,
    pub dst_port: u16,
    pub vtag: u32,
    pub protocol: Protocol,
    pub read: Result<(Kind, message::Message), Malformed>,
}

/// The messages the frame's chunks begin with a new TSN; `sent` keeps each direction's
/// [`TsnWindow`].
fn begun(data: &[u8], loc: &SctpLocation, sent: &mut HashMap<(u16, u16, u32), TsnWindow>) -> Vec<Begun> {
    let mut out = Vec::new();
    let (Some(src_port), Some(dst_port), Some(vtag)) =
        (data.be16_at(loc.offset), data.be16_at(loc.offset + 2), data.be32_at(loc.offset + 4))
    else {
        return out;
    };
    for c in raw_chunks(data, loc) {
        // Their fixed fields are whole (`raw_chunks` ends before a chunk without them).
        let header = match c.kind {
            ty::DATA => 16,
            ty::I_DATA => 20,
            _ => continue,
        };
        let (Some(tsn), Some(ppid)) = (c.body.be32_at(0), c.body.be32_at(header - 8)) else {
            continue;
        };
        let direction = (src_port, dst_port, vtag);
        let room = sent.len() < MAX_DIRECTIONS;
        let new = match sent.entry(direction) {
            Entry::Occupied(mut w) => w.get_mut().note(tsn),
            Entry::Vacant(v) if room => v.insert(TsnWindow::default()).note(tsn),
            Entry::Vacant(_) => true,
        };
        // I-DATA carries the PPID in its first fragment only, where the B bit is.
        let protocol = Protocol::of(ppid, src_port, dst_port);
        if let (true, true, Some(protocol)) = (new, c.flags & flag::BEGIN != 0, protocol) {
            let bytes = (c.len - header).min(c.body.len() + 4 - header);
            let read = message::read(data, c.off + header, bytes, protocol);
            out.push(Begun { src_port, dst_port, vtag, protocol, read });
        }
    }
    out
}

/// A message the watch counted, as the HTML report's ladder draws it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    pub key: MessageKey,
    /// A Diameter answer's result (0: none found).
    pub result: Option<u32>,
    /// A Diameter answer's time from its request.
    pub response_ns: Option<u64>,
}

impl Counted {
    /// Whether it failed: an AP protocol's unsuccessful outcome, a Diameter answer whose
    /// result is known and not a success (2xxx).
    #[must_use]
    pub fn failed(&self) -> bool {
        self.key.kind == Kind::Unsuccessful || self.result.is_some_and(|r| r != 0 && r / 1000 != 2)
    }
}

/// A Diameter request waiting for its answer: when it was sent, its key, its association.
type Pending = (u64, MessageKey, Option<usize>);

/// The messages of a replay: every association's, and all of them together; Diameter
/// requests waiting for their answers, by (source port, destination port, hop-by-hop,
/// end-to-end). By ports, not tags: an association met mid-way is paired with its other
/// direction only once that direction is seen, and its first request may come before.
#[derive(Default)]
pub struct MessageWatch {
    pub all: Messages,
    sent: HashMap<(u16, u16, u32), TsnWindow>,
    pending: HashMap<(u16, u16, u32, u32), Pending>,
}

/// Where a frame's messages go besides the totals: its association's messages and index.
pub type InAssociation<'a> = Option<(&'a mut Messages, usize)>;

impl MessageWatch {
    /// The messages of a frame (its SCTP header at `loc`) seen at `ts_ns`, in the
    /// association it belongs to, if one; those counted, in their order.
    pub fn frame(&mut self, data: &[u8], loc: &SctpLocation, ts_ns: u64, mut assoc: InAssociation<'_>) -> Vec<Counted> {
        let mut counted = Vec::new();
        for b in begun(data, loc, &mut self.sent) {
            let (kind, m) = match b.read {
                Ok(read) => read,
                Err(why) => {
                    self.all.malformed(why);
                    if let Some((a, _)) = &mut assoc {
                        a.malformed(why);
                    }
                    continue;
                }
            };
            let key = MessageKey { protocol: b.protocol, kind, code: m.code, application: m.application };
            let result = (kind == Kind::Answer).then_some(m.result);
            self.all.count(key, result);
            if let Some((a, _)) = &mut assoc {
                a.count(key, result);
            }
            let id = assoc.as_ref().map(|(_, id)| *id);
            let mut response_ns = None;
            match kind {
                Kind::Request if self.pending.len() < MAX_PENDING => {
                    self.pending.insert((b.src_port, b.dst_port, m.hop_by_hop, m.end_to_end), (ts_ns, key, id));
                }
                Kind::Answer => {
                    let request = self.pending.remove(&(b.dst_port, b.src_port, m.hop_by_hop, m.end_to_end));
                    let same = |(_, req, _): &Pending| req.code == key.code && req.application == key.application;
                    if let Some((sent, ..)) = request.filter(same) {
                        let rt = ts_ns.saturating_sub(sent);
                        if let Some((a, _)) = &mut assoc {
                            a.respond(key, rt);
                        }
                        self.all.respond(key, rt);
                        response_ns = Some(rt);
                    }
                }
                _ => {}
            }
            counted.push(Counted { key, result, response_ns });
        }
        counted
    }

    /// At the end of the capture (`end_ns`): the requests left waiting longer than
    /// [`ANSWER_TIMEOUT_NS`] count as unanswered in the totals; returned by association
    /// index, for the caller to count in theirs.
    pub fn close(&mut self, end_ns: u64) -> Vec<(usize, MessageKey)> {
        let mut unanswered = Vec::new();
        for (sent, key, id) in self.pending.drain().map(|(_, p)| p) {
            if end_ns.saturating_sub(sent) >= ANSWER_TIMEOUT_NS {
                self.all.unanswered(key);
                unanswered.extend(id.map(|id| (id, key)));
            }
        }
        unanswered
    }

    /// Adds another shard's (other associations, disjoint ports).
    pub fn merge(&mut self, other: MessageWatch, base: usize) {
        self.all.merge(&other.all);
        self.sent.extend(other.sent);
        self.pending
            .extend(other.pending.into_iter().map(|(k, (sent, key, id))| (k, (sent, key, id.map(|i| i + base)))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_codes_beyond_the_keys_kept_are_counted_untabled() {
        let mut m = Messages::default();
        let key = |code| MessageKey { protocol: Protocol::Diameter, kind: Kind::Request, code, application: 0 };
        for code in 0..u32::try_from(MAX_KEYS).unwrap() + 10 {
            m.count(key(code), None);
        }
        m.count(key(0), None);
        assert_eq!((m.by_key.len(), m.untabled, m.by_key[&key(0)].count), (MAX_KEYS, 10, 2));
        let mut merged = Messages::default();
        merged.merge(&m);
        merged.merge(&Messages {
            by_key: BTreeMap::from([(key(u32::MAX), Tally { count: 3, ..Tally::default() })]),
            ..Messages::default()
        });
        assert_eq!((merged.by_key.len(), merged.untabled), (MAX_KEYS, 13));
    }

    #[test]
    fn unanswered_keys_beyond_the_bound_count_under_their_command() {
        let mut m = Matched::default();
        let key = |vtag, command| ResponseKey {
            flow: FlowKey { src_port: 3868, dst_port: 1, vtag },
            application: 4,
            command,
        };
        for vtag in 0..u32::try_from(MAX_UNANSWERED_KEYS).unwrap() + 3 {
            m.unanswered(key(vtag, 272));
        }
        m.unanswered(key(0, 272));
        assert_eq!(m.unanswered.len(), MAX_UNANSWERED_KEYS + 1);
        assert_eq!(m.unanswered[&key(0, 272)], 2);
        let sink = ResponseKey { flow: FlowKey::SINK, application: 4, command: 272 };
        assert_eq!(m.unanswered[&sink], 3);
        assert_eq!(m.unanswered.values().sum::<u64>(), u64::try_from(MAX_UNANSWERED_KEYS).unwrap() + 4);
    }
}
