//! What `inspect --html` draws, gathered while the capture is replayed: per association,
//! the DATA TSNs and SACK cumulative TSNs over time of both directions, DATA-to-SACK
//! round-trip times, payload bytes over time, and the application messages in their
//! order (the ladder). Bounded whatever the capture: series are thinned as they grow,
//! bytes go into bins that widen, a ladder keeps its first `MAX_RUNGS` messages, and only
//! the first `MAX_TRACED` associations are traced.

use super::{
    messages::Counted,
    packet_view::{ChunkView, PacketView},
    round_trip::TsnTracker,
};

/// Points a series keeps: beyond, every other one is dropped and the stride doubles.
const MAX_POINTS: usize = 4096;
/// Bins of the bytes-over-time histogram.
const BINS: usize = 512;
/// Associations traced; later ones are counted only.
const MAX_TRACED: usize = 10_000;
/// Messages a ladder keeps (the first ones; the rest are counted).
pub const MAX_RUNGS: usize = 200;

/// One message of an association's ladder: when, which endpoint sent it, what it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rung {
    pub ts_ns: u64,
    pub from: usize,
    pub message: Counted,
}

/// An association's messages in their order: the first [`MAX_RUNGS`], and how many more.
#[derive(Clone, Debug, Default)]
pub struct Ladder {
    pub rungs: Vec<Rung>,
    pub more: u64,
}

/// Values in arrival order, thinned evenly as they grow.
#[derive(Clone, Debug)]
pub struct Series<T> {
    pub points: Vec<T>,
    stride: usize,
    skip: usize,
}

impl<T> Default for Series<T> {
    fn default() -> Self {
        Self { points: Vec::new(), stride: 1, skip: 0 }
    }
}

impl<T> Series<T> {
    fn push(&mut self, v: T) {
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        self.points.push(v);
        self.skip = self.stride - 1;
        if self.points.len() == MAX_POINTS {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
        }
    }
}

/// Bytes over time from `start_ns`: `BINS` bins that double in width when time runs
/// past them (neighbours merged), so every byte stays counted.
#[derive(Clone, Debug)]
pub struct Bins {
    pub start_ns: u64,
    pub width_ns: u64,
    pub bytes: Vec<u64>,
}

impl Bins {
    fn new(start_ns: u64) -> Self {
        Self { start_ns, width_ns: 1_000_000, bytes: vec![0; BINS] }
    }

    fn add(&mut self, ts_ns: u64, n: u64) {
        let at = ts_ns.saturating_sub(self.start_ns);
        while at / self.width_ns >= BINS as u64 {
            for i in 0..BINS / 2 {
                self.bytes[i] = self.bytes[2 * i] + self.bytes[2 * i + 1];
            }
            self.bytes[BINS / 2..].fill(0);
            self.width_ns *= 2;
        }
        self.bytes[usize::try_from(at / self.width_ns).unwrap_or(0)] += n;
    }
}

/// One direction of a conversation.
#[derive(Clone, Debug)]
pub struct Direction {
    /// (time, TSN) of each DATA or I-DATA chunk.
    pub data: Series<(u64, u32)>,
    /// (time, cumulative TSN ack) of each SACK this direction sent.
    pub sack: Series<(u64, u32)>,
    /// (time of the SACK, round trip in ns) for DATA this direction sent.
    pub rtt: Series<(u64, u64)>,
    /// DATA payload bytes this direction sent.
    pub bytes: Bins,
    tsns: TsnTracker,
}

impl Direction {
    fn new(start_ns: u64) -> Self {
        Self {
            data: Series::default(),
            sack: Series::default(),
            rtt: Series::default(),
            bytes: Bins::new(start_ns),
            tsns: TsnTracker::default(),
        }
    }

    fn data(&mut self, ts_ns: u64, tsn: u32, payload: u64) {
        self.data.push((ts_ns, tsn));
        self.bytes.add(ts_ns, payload);
        self.tsns.sent(tsn, ts_ns, true);
    }

    /// The other direction acknowledged up to `cum`.
    fn acked(&mut self, ts_ns: u64, cum: u32) {
        if let Some(rtt) = self.tsns.acked(cum, ts_ns) {
            self.rtt.push((ts_ns, rtt));
        }
    }
}

/// Every association's traces, by its index in the replay's associations (the first
/// `MAX_TRACED`; later ones are not traced): `[i]` is what its endpoint `i` sent. Its
/// packets and times are the association's own.
#[derive(Clone, Debug, Default)]
pub struct Traces {
    pub by_association: foldhash::HashMap<usize, [Direction; 2]>,
    /// The messages of each association traced.
    pub ladders: foldhash::HashMap<usize, Ladder>,
}

impl Traces {
    /// Notes an SCTP packet of association `id`, sent by its endpoint `from`.
    pub fn add(&mut self, p: &PacketView, ts_ns: u64, id: usize, from: usize) {
        if !self.by_association.contains_key(&id) && self.by_association.len() >= MAX_TRACED {
            return;
        }
        let dirs = self.by_association.entry(id).or_insert_with(|| [Direction::new(ts_ns), Direction::new(ts_ns)]);
        for chunk in &p.chunks {
            match *chunk {
                ChunkView::Data { tsn, payload } => dirs[from].data(ts_ns, tsn, u64::from(payload)),
                ChunkView::Sack { cum_tsn, .. } => {
                    dirs[from].sack.push((ts_ns, cum_tsn));
                    dirs[1 - from].acked(ts_ns, cum_tsn);
                }
                _ => {}
            }
        }
    }

    /// Notes the messages a packet of association `id`, sent by its endpoint `from`, began
    /// (if the association is traced).
    pub fn messages(&mut self, counted: &[Counted], ts_ns: u64, id: usize, from: usize) {
        if counted.is_empty() || !self.by_association.contains_key(&id) {
            return;
        }
        let ladder = self.ladders.entry(id).or_default();
        for message in counted {
            if ladder.rungs.len() < MAX_RUNGS {
                ladder.rungs.push(Rung { ts_ns, from, message: *message });
            } else {
                ladder.more += 1;
            }
        }
    }

    /// Adds another shard's traces, whose associations are numbered from `base` in the
    /// merged list (an association is in one shard: its ports choose it).
    pub fn merge(&mut self, other: Traces, base: usize) {
        let room = MAX_TRACED.saturating_sub(self.by_association.len());
        let kept: Vec<_> = other.by_association.into_iter().take(room).collect();
        for (id, _) in &kept {
            if let Some(l) = other.ladders.get(id) {
                self.ladders.insert(id + base, l.clone());
            }
        }
        self.by_association.extend(kept.into_iter().map(|(id, dirs)| (id + base, dirs)));
    }
}

#[cfg(test)]
mod tests {
    use sctp_common::builder::{Chunk, SctpPacket, V4};

    use super::*;

    /// A packet of association 0, and which endpoint sent it.
    fn frame(reverse: bool, chunks: Vec<Chunk>) -> (PacketView, usize) {
        let mut p = SctpPacket::new(V4, 1, chunks);
        if reverse {
            (p.src_port, p.dst_port) = (p.dst_port, p.src_port);
            p.ip = sctp_common::builder::Ip::V4 { src: [198, 18, 0, 2], dst: [198, 18, 0, 1] };
        }
        (crate::assoc::packet_view::view(&p.frame()).unwrap(), usize::from(reverse))
    }

    fn add(t: &mut Traces, (p, from): (PacketView, usize), ts_ns: u64) {
        t.add(&p, ts_ns, 0, from);
    }

    #[test]
    fn data_and_its_sack_give_one_round_trip_and_a_retransmission_none() {
        let mut t = Traces::default();
        add(&mut t, frame(false, vec![Chunk::data(10, 0, 0, 0, 100)]), 1_000);
        add(&mut t, frame(false, vec![Chunk::data(11, 0, 0, 0, 100)]), 2_000);
        add(&mut t, frame(true, vec![Chunk::sack(11, 1000, 0, 0)]), 5_000);
        // TSN 12 is sent twice: Karn's rule, no sample from it.
        add(&mut t, frame(false, vec![Chunk::data(12, 0, 0, 0, 50)]), 6_000);
        add(&mut t, frame(false, vec![Chunk::data(12, 0, 0, 0, 50)]), 9_000);
        add(&mut t, frame(true, vec![Chunk::sack(12, 1000, 0, 0)]), 10_000);
        let dirs = &t.by_association[&0];
        let sent = &dirs[0];
        assert_eq!(sent.data.points.len(), 4);
        assert_eq!(sent.rtt.points, vec![(5_000, 4_000)], "from TSN 10, the one timed");
        assert_eq!(dirs[1].sack.points.len(), 2);
        assert_eq!(sent.bytes.bytes.iter().sum::<u64>(), 300);
    }

    #[test]
    fn series_and_bins_stay_bounded_and_keep_every_byte() {
        let mut s = Series::default();
        for i in 0..100_000u32 {
            s.push(i);
        }
        assert!(s.points.len() < MAX_POINTS, "{}", s.points.len());
        assert_eq!(s.points[0], 0);
        let mut b = Bins::new(0);
        for i in 0..10_000u64 {
            b.add(i * 1_000_000_000, 1);
        }
        assert_eq!(b.bytes.iter().sum::<u64>(), 10_000);
    }
}
