//! The host engine on several threads: this thread reads the capture and deals its
//! frames out to workers by association, each worker runs an engine of its own, and the
//! results are merged. An association's packets (both directions: the same two ports)
//! all go to one worker, in capture order, so every flow and every learned tag comes out
//! as one engine would count it. INIT rates (shared by all associations) are judged on one
//! thread instead (see `replay`). (Measured: handing every worker every frame, for it to
//! pick its own, is slower than dealing them out here.)

use std::sync::mpsc;

use sctp_common::{
    abi::RuleSet,
    parse::{locate_sctp, NoTally, Packet as _},
};

use super::{
    engine::HostEngine,
    watch::{Watch, WatchOptions},
};
use crate::{
    capture::{extend_span, Capture},
    rules::Compiled,
    snapshot::Snapshot,
};

/// Bytes of frames a batch carries before it is sent.
const BATCH_BYTES: usize = 256 << 10;
/// Batches in flight per worker: the memory stays flat however big the capture.
const IN_FLIGHT: usize = 4;

/// Frames for one worker, copied out of the reader's buffer.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Capture time, end in `bytes`, cut short by the capture.
    frames: Vec<(u64, usize, bool)>,
}

impl Batch {
    fn push(&mut self, ts_ns: u64, data: &[u8], cut: bool) {
        self.bytes.extend_from_slice(data);
        self.frames.push((ts_ns, self.bytes.len(), cut));
    }

    fn full(&self) -> bool {
        self.bytes.len() >= BATCH_BYTES
    }
}

/// The worker for a frame: by its two SCTP ports, either way round; frames without them
/// (not SCTP, malformed) count only in the totals, so any worker does: by their place in
/// the capture.
fn worker_for(frame: &[u8], index: usize, workers: usize) -> usize {
    let ports = locate_sctp(frame, &mut NoTally)
        .ok()
        .and_then(|loc| Some((frame.be16_at(loc.offset)?, frame.be16_at(loc.offset + 2)?)));
    match ports {
        Some((a, b)) => {
            let pair = (u32::from(a.min(b)) << 16) | u32::from(a.max(b));
            // Fibonacci hashing: neighbouring port pairs spread over the workers.
            let h = u64::from(pair).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
            usize::try_from(h).unwrap_or(0) % workers
        }
        None => index % workers,
    }
}

/// Replays the rest of `capture` on `threads` workers judging by `set`.
pub(super) fn replay(
    capture: &mut Capture,
    threads: usize,
    rules: &Compiled,
    set: &RuleSet,
    opts: WatchOptions,
    span_ns: &mut Option<(u64, u64)>,
) -> (Snapshot, Watch) {
    std::thread::scope(|s| {
        // Emptied batches come back to be filled again.
        let (recycle_tx, recycle) = mpsc::channel::<Batch>();
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<Batch>(IN_FLIGHT);
            let recycle_tx = recycle_tx.clone();
            senders.push(tx);
            workers.push(s.spawn(move || {
                let mut engine = HostEngine::new(rules, set);
                let mut watch = Watch::new(opts);
                for mut batch in rx {
                    let mut start = 0;
                    for &(ts_ns, end, cut) in &batch.frames {
                        let data = &batch.bytes[start..end];
                        if watch.frame(data, cut, ts_ns) {
                            engine.run(data, ts_ns);
                        }
                        start = end;
                    }
                    batch.bytes.clear();
                    batch.frames.clear();
                    // At the end the reader is gone: the batch is then freed.
                    let _ = recycle_tx.send(batch);
                }
                (engine, watch)
            }));
        }
        let mut pending: Vec<Batch> = (0..threads).map(|_| Batch::default()).collect();
        let mut index = 0;
        while let Some(frame) = capture.next_frame() {
            extend_span(span_ns, &frame);
            let w = worker_for(frame.data, index, threads);
            index += 1;
            pending[w].push(frame.ts_ns, frame.data, frame.cut);
            if pending[w].full() {
                let fresh = recycle.try_recv().unwrap_or_default();
                // A worker only stops when its sender is dropped, below.
                senders[w].send(std::mem::replace(&mut pending[w], fresh)).expect("worker alive");
            }
        }
        for (tx, batch) in senders.iter().zip(pending) {
            tx.send(batch).expect("worker alive");
        }
        drop(senders);
        let mut results = workers.into_iter().map(|w| w.join().expect("a replay worker panicked"));
        let (mut engine, mut watch) = results.next().expect("at least one worker");
        for (e, c) in results {
            engine.merge(e);
            watch.merge(c);
        }
        (engine.into_snapshot(), watch)
    })
}
