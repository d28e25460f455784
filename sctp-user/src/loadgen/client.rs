//! `sctp-user client`: a load generator and test client. It opens N associations (each on
//! a one-to-many socket of its own: one socket holds one association per peer endpoint),
//! sends messages over S streams with the given sizes, PPIDs and unordered share, closed
//! loop (a window of messages in flight) or at a rate, and checks every echo byte for
//! byte, on the right stream, with the right PPID and unordered flag.

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use tokio::io::unix::AsyncFd;

use crate::sys::sctp::{assoc_state, event, Notification, Received, SctpSocket, SndInfo, SCTP_UNORDERED};

/// Message header: magic, association index, sequence number.
const MAGIC: u32 = 0x5ec7_0a11;
const HEADER: usize = 16;

#[derive(Clone, Debug)]
pub(crate) struct ClientConfig {
    pub connect: SocketAddr,
    /// Local addresses (one port), or none for the kernel's choice.
    pub bind: Vec<SocketAddr>,
    pub associations: usize,
    pub streams: u16,
    /// Message sizes, used in turn (at least the 16-byte header).
    pub sizes: Vec<usize>,
    /// PPIDs, used in turn.
    pub ppids: Vec<u32>,
    /// Share of messages sent unordered (0..=1).
    pub unordered: f64,
    /// Messages per association.
    pub messages: u64,
    /// Messages in flight per association (closed loop).
    pub window: usize,
    /// Messages per second per association; `None` = as fast as the window allows.
    pub rate: Option<f64>,
    /// Give up on an association after this long without progress.
    pub timeout: Duration,
}

/// What the run measured.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ClientReport {
    pub associations: usize,
    pub sent: u64,
    pub echoed: u64,
    pub bytes_echoed: u64,
    pub mismatches: u64,
    pub elapsed_s: f64,
    pub messages_per_s: f64,
    pub latency_us: Percentiles,
    pub failures: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(mut v: Vec<f64>) -> Self {
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        // Nearest rank: the index q of the way along the sorted values.
        let at = |q: f64| {
            let last = v.len() - 1;
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss,
                reason = "0 <= q <= 1: an index within the vector"
            )]
            let i = (q * last as f64).round() as usize;
            v[i.min(last)]
        };
        Self { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: v[v.len() - 1] }
    }
}

/// The k-th message of association `a`: its bytes and how it is sent.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "the message number is spread over sizes, streams, PPIDs and filler bytes by its low bits"
)]
fn message(cfg: &ClientConfig, a: u32, k: u64, out_streams: u16) -> (Vec<u8>, SndInfo) {
    let size = cfg.sizes[k as usize % cfg.sizes.len()].max(HEADER);
    let mut m = Vec::with_capacity(size);
    m.extend_from_slice(&MAGIC.to_be_bytes());
    m.extend_from_slice(&a.to_be_bytes());
    m.extend_from_slice(&k.to_be_bytes());
    m.extend((HEADER..size).map(|i| (k as usize).wrapping_mul(31).wrapping_add(i) as u8));
    // A deterministic spread decides which messages go unordered.
    let unordered = ((k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) as f64 / (1u64 << 53) as f64) < cfg.unordered;
    let info = SndInfo {
        sid: (k % u64::from(cfg.streams.min(out_streams).max(1))) as u16,
        flags: if unordered { SCTP_UNORDERED } else { 0 },
        ppid: cfg.ppids[k as usize % cfg.ppids.len()].to_be(),
        context: 0,
        assoc_id: 0,
    };
    (m, info)
}

pub(crate) async fn run(cfg: ClientConfig) -> Result<ClientReport> {
    if cfg.sizes.is_empty() || cfg.ppids.is_empty() || cfg.associations == 0 || cfg.window == 0 {
        bail!("--size, --ppid, --associations and --window need at least one value / one");
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for a in 0..cfg.associations {
        let cfg = cfg.clone();
        let a = u32::try_from(a)?;
        tasks.push(tokio::spawn(async move { one_association(&cfg, a).await }));
    }
    let mut report = ClientReport { associations: cfg.associations, ..ClientReport::default() };
    let mut latencies = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await? {
            Ok(r) => {
                report.sent += r.sent;
                report.echoed += r.echoed;
                report.bytes_echoed += r.bytes;
                report.mismatches += r.mismatches;
                latencies.extend(r.latencies_us);
                report.failures.extend(r.failures.into_iter().map(|f| format!("association {i}: {f}")));
            }
            Err(e) => report.failures.push(format!("association {i}: {e:#}")),
        }
    }
    report.elapsed_s = start.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "a rate to report")]
    let echoed = report.echoed as f64;
    report.messages_per_s = echoed / report.elapsed_s.max(1e-9);
    report.latency_us = Percentiles::of(latencies);
    Ok(report)
}

#[derive(Default)]
struct AssocResult {
    sent: u64,
    echoed: u64,
    bytes: u64,
    mismatches: u64,
    latencies_us: Vec<f64>,
    failures: Vec<String>,
}

struct InFlight {
    sent_at: Instant,
    bytes: Vec<u8>,
    info: SndInfo,
}

#[expect(clippy::too_many_lines, reason = "one association's life in order: connect, send and check echoes, shut down")]
async fn one_association(cfg: &ClientConfig, a: u32) -> Result<AssocResult> {
    let sock = SctpSocket::one_to_many(cfg.connect.is_ipv6())?;
    sock.set_nonblocking()?;
    sock.recv_rcvinfo()?;
    sock.subscribe(&[event::ASSOC_CHANGE, event::SHUTDOWN, event::SEND_FAILED_EVENT])?;
    sock.set_streams(cfg.streams, cfg.streams)?;
    let biggest = cfg.sizes.iter().copied().max().unwrap_or(HEADER);
    let buf_size = i32::try_from((biggest * 4).max(1 << 20)).unwrap_or(i32::MAX);
    sock.set_buffers(buf_size, buf_size)?;
    if !cfg.bind.is_empty() {
        sock.bindx(&cfg.bind).with_context(|| format!("binding {:?}", cfg.bind))?;
    }
    sock.connect(cfg.connect).with_context(|| format!("connecting to {}", cfg.connect))?;
    // SAFETY: SctpSocket owns its descriptor for the AsyncFd's whole life.
    let fd = unsafe { AsyncFd::register(sock) }.map_err(|e| anyhow::anyhow!("registering with tokio: {e}"))?;
    let mut buf = vec![0u8; biggest + 4096];
    let mut partial = Vec::new();
    let mut out_streams = 0u16;
    let mut res = AssocResult::default();
    let mut in_flight: HashMap<u64, InFlight> = HashMap::new();
    let mut next = 0u64;
    let mut last_progress = Instant::now();
    let gap = cfg.rate.map(|r| Duration::from_secs_f64(1.0 / r.max(1e-6)));
    let mut next_send = Instant::now();
    while res.echoed + res.mismatches < cfg.messages {
        // Send while the window and the rate allow.
        while out_streams > 0 && next < cfg.messages && in_flight.len() < cfg.window && Instant::now() >= next_send {
            let (bytes, info) = message(cfg, a, next, out_streams);
            match fd.get_ref().send(&bytes, &info, Some(cfg.connect)) {
                Ok(_) => {
                    in_flight.insert(next, InFlight { sent_at: Instant::now(), bytes, info });
                    res.sent += 1;
                    next += 1;
                    if let Some(g) = gap {
                        next_send += g;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("sending"),
            }
        }
        if last_progress.elapsed() > cfg.timeout {
            res.failures.push(format!("no progress for {:?}: {} echo(es) missing", cfg.timeout, in_flight.len()));
            break;
        }
        let wait = if gap.is_some() && next < cfg.messages && in_flight.len() < cfg.window {
            next_send.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(200)
        };
        let Ok(ready) = tokio::time::timeout(wait, fd.readable()).await else {
            continue;
        };
        let mut guard = ready?;
        while let Ok(got) = guard.try_io(|s| s.get_ref().recv(&mut buf)) {
            match got? {
                Received::Notification(Notification::AssocChange { state, out_streams: os, .. }) => match state {
                    assoc_state::COMM_UP | assoc_state::RESTART => {
                        out_streams = os;
                        if os < cfg.streams {
                            res.failures.push(format!("peer granted {os} of {} streams; using {os}", cfg.streams));
                        }
                    }
                    assoc_state::COMM_LOST | assoc_state::CANT_STR_ASSOC => {
                        res.failures.push("association lost".into());
                        return Ok(res);
                    }
                    _ => {}
                },
                Received::Notification(Notification::SendFailed { error, .. }) => {
                    res.failures.push(format!("send failed (error {error})"));
                }
                Received::Notification(_) => {}
                Received::Data { len, eor, info, .. } => {
                    partial.extend_from_slice(&buf[..len]);
                    if !eor {
                        continue;
                    }
                    let msg = std::mem::take(&mut partial);
                    last_progress = Instant::now();
                    let seq = (msg.len() >= HEADER && msg[..4] == MAGIC.to_be_bytes() && msg[4..8] == a.to_be_bytes())
                        .then(|| u64::from_be_bytes(msg[8..16].try_into().unwrap()));
                    let Some(sent) = seq.and_then(|s| in_flight.remove(&s)) else {
                        res.mismatches += 1;
                        res.failures.push(format!("echo of {} bytes matches no message in flight", msg.len()));
                        continue;
                    };
                    let same = msg == sent.bytes
                        && info.sid == sent.info.sid
                        && info.ppid == sent.info.ppid
                        && info.unordered() == (sent.info.flags & SCTP_UNORDERED != 0);
                    if same {
                        res.echoed += 1;
                        res.bytes += msg.len() as u64;
                        res.latencies_us.push(sent.sent_at.elapsed().as_secs_f64() * 1e6);
                    } else {
                        res.mismatches += 1;
                        res.failures.push(format!(
                            "echo differs: {} vs {} bytes, stream {} vs {}, ppid {} vs {}",
                            msg.len(),
                            sent.bytes.len(),
                            info.sid,
                            sent.info.sid,
                            u32::from_be(info.ppid),
                            u32::from_be(sent.info.ppid)
                        ));
                    }
                }
            }
        }
    }
    Ok(res)
}
