//! The one-to-many SCTP echo server: one `SOCK_SEQPACKET` socket, no `accept()`; associations
//! come and go inside it and are told apart by the `assoc_id` of `SCTP_RCVINFO` and of the
//! notifications. Every message is echoed to its association, on its stream, with its
//! PPID and its unordered flag.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context as _, Result};
use serde::Serialize;
use tokio::io::unix::AsyncFd;

use crate::sys::{
    clock::monotonic_ns,
    sctp::{assoc_state, event, AssocId, AssocStats, Notification, RcvInfo, Received, SctpSocket, SndInfo, Status},
};

/// Server settings.
#[derive(Clone, Debug)]
pub(crate) struct EchoConfig {
    /// Addresses of one port; several make a multi-homed endpoint.
    pub listen: Vec<SocketAddr>,
    /// Largest message accepted; a bigger one aborts its association.
    pub max_message: usize,
    /// Echoes queued per association while the socket's send buffer is full; beyond it
    /// echoes are shed (counted and logged).
    pub queue_limit: usize,
    /// Streams offered in each direction.
    pub streams: u16,
    /// Message records kept per association for the join (oldest dropped first).
    pub records_per_assoc: usize,
}

impl Default for EchoConfig {
    fn default() -> Self {
        Self { listen: Vec::new(), max_message: 1 << 20, queue_limit: 1024, streams: 64, records_per_assoc: 100_000 }
    }
}

/// What the socket API said about one delivered message.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct MessageRecord {
    pub stream: u16,
    pub ssn: u16,
    pub ppid: u32,
    pub tsn: u32,
    pub cumtsn: u32,
    pub len: usize,
    pub unordered: bool,
    /// `CLOCK_MONOTONIC` at delivery of the last piece (same clock as `bpf_ktime_get_ns`).
    pub received_ns: u64,
}

/// One association as the server holds it.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ServedAssociation {
    pub assoc_id: AssocId,
    pub peer_addrs: Vec<SocketAddr>,
    pub in_streams: u16,
    pub out_streams: u16,
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
    pub shed: u64,
    /// Echoes sendmsg refused (never sent).
    pub send_errors: u64,
    /// `SCTP_SEND_FAILED_EVENT`: echoes the kernel had accepted but could not deliver.
    pub send_failed_events: u64,
    /// Last `SCTP_STATUS` and `SCTP_GET_ASSOC_STATS` read while the association was up (they
    /// are gone once it closes, so the server polls them).
    pub status: Option<Status>,
    pub kernel: Option<AssocStats>,
    #[serde(skip)]
    pub records: VecDeque<MessageRecord>,
    /// The message being reassembled and the info of its first piece.
    #[serde(skip)]
    partial: Vec<u8>,
    #[serde(skip)]
    partial_info: Option<RcvInfo>,
    /// Pieces are being discarded until the end of an oversized message.
    #[serde(skip)]
    discarding: bool,
    #[serde(skip)]
    queue: VecDeque<(Vec<u8>, SndInfo)>,
    /// When status and kernel counters were last read (`CLOCK_MONOTONIC` ns).
    #[serde(skip)]
    refreshed_ns: u64,
    pub closed: bool,
}

/// Server-wide counters.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub(crate) struct EchoStats {
    pub associations_current: u64,
    pub associations_total: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub notifications: BTreeMap<String, u64>,
    /// Echoes dropped because their association's queue was full (or it ended first).
    pub shed: u64,
    /// Echoes sendmsg refused (never sent). `messages_in` = `messages_out` + shed + `send_errors`.
    pub send_errors: u64,
    /// `SCTP_SEND_FAILED_EVENT` notifications: sent echoes the kernel could not deliver.
    pub send_failed_events: u64,
    pub oversize_aborts: u64,
    pub queue_depth: u64,
}

/// Everything the server knows; shared with the join and the exporters.
#[derive(Default)]
pub(crate) struct EchoState {
    pub stats: EchoStats,
    pub assocs: HashMap<AssocId, ServedAssociation>,
    /// Associations that ended, kept for the final report (bounded).
    pub ended: VecDeque<ServedAssociation>,
}

const ENDED_KEPT: usize = 1024;

/// Opens and binds the server socket (fails clearly on a kernel without SCTP).
pub(crate) fn bind(cfg: &EchoConfig) -> Result<SctpSocket> {
    anyhow::ensure!(!cfg.listen.is_empty(), "--listen needs at least one ADDR:PORT");
    let port = cfg.listen[0].port();
    anyhow::ensure!(
        cfg.listen.iter().all(|a| a.port() == port),
        "all --listen addresses must share one port (they form one multi-homed endpoint)"
    );
    let v6 = cfg.listen.iter().any(SocketAddr::is_ipv6);
    let sock = SctpSocket::one_to_many(v6)?;
    sock.set_nonblocking()?;
    sock.recv_rcvinfo()?;
    sock.subscribe(&[event::ASSOC_CHANGE, event::PEER_ADDR_CHANGE, event::SHUTDOWN, event::SEND_FAILED_EVENT])?;
    sock.set_streams(cfg.streams, cfg.streams)?;
    // Whole messages must fit in the send buffer (a non-blocking SCTP send is all or nothing).
    let buf = i32::try_from((cfg.max_message * 4).max(4 << 20)).unwrap_or(i32::MAX);
    sock.set_buffers(buf, buf)?;
    sock.bindx(&cfg.listen).with_context(|| format!("binding {:?}", cfg.listen))?;
    sock.listen(1024)?;
    Ok(sock)
}

/// Runs the server until `stop` resolves, then shuts every association down gracefully
/// (waiting up to `grace` for them to complete).
pub(crate) async fn serve(
    sock: SctpSocket,
    cfg: EchoConfig,
    state: Arc<Mutex<EchoState>>,
    stop: impl std::future::Future<Output = ()>,
    grace: Duration,
) -> Result<()> {
    // SAFETY: SctpSocket owns its descriptor (OwnedFd) and never replaces it, so it stays
    // open and the same for the AsyncFd's whole life.
    let fd =
        unsafe { AsyncFd::register(sock) }.map_err(|e| anyhow::anyhow!("registering the socket with tokio: {e}"))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut poll = tokio::time::interval(Duration::from_secs(1));
    tokio::pin!(stop);
    loop {
        let pending = state.lock().unwrap().stats.queue_depth > 0;
        tokio::select! {
            r = fd.readable() => {
                let mut guard = r?;
                // receive_all reads until the socket would block (try_io then clears the
                // readiness); any other error is one bad read, not the end of the server.
                if let Ok(Err(e)) = guard.try_io(|s| receive_all(s.get_ref(), &cfg, &state, &mut buf)) {
                    log::warn!("echo: recvmsg: {e}");
                }
                flush(fd.get_ref(), &state);
            }
            r = fd.writable(), if pending => {
                let mut guard = r?;
                if flush(fd.get_ref(), &state) {
                    guard.clear_ready();
                }
            }
            _ = poll.tick() => refresh(fd.get_ref(), &state),
            () = &mut stop => break,
        }
    }
    refresh(fd.get_ref(), &state);
    shutdown(&fd, &cfg, &state, &mut buf, grace).await
}

/// Reads every live association's status and kernel counters.
fn refresh(sock: &SctpSocket, state: &Mutex<EchoState>) {
    let mut st = state.lock().unwrap();
    for a in st.assocs.values_mut() {
        refresh_one(sock, a);
    }
}

/// Minimum time between two reads of one association's status and kernel counters.
const STATS_REFRESH_NS: u64 = 100_000_000;

fn refresh_one(sock: &SctpSocket, a: &mut ServedAssociation) {
    a.refreshed_ns = monotonic_ns();
    if let Ok(s) = sock.status(a.assoc_id) {
        a.status = Some(s);
    }
    if let Ok(k) = sock.assoc_stats(a.assoc_id) {
        a.kernel = Some(k);
    }
}

/// Reads until the socket would block.
fn receive_all(sock: &SctpSocket, cfg: &EchoConfig, state: &Mutex<EchoState>, buf: &mut [u8]) -> io::Result<()> {
    loop {
        let received = sock.recv(buf)?; // WouldBlock ends the loop through try_io
        let mut st = state.lock().unwrap();
        match received {
            Received::Notification(n) => on_notification(sock, &mut st, &n),
            Received::Data { len, eor, info, from } => on_data(sock, cfg, &mut st, &buf[..len], eor, info, from),
        }
    }
}

fn on_notification(sock: &SctpSocket, st: &mut EchoState, n: &Notification) {
    *st.stats.notifications.entry(n.kind().to_string()).or_default() += 1;
    match *n {
        Notification::AssocChange { assoc_id, state, out_streams, in_streams, .. } => match state {
            assoc_state::COMM_UP | assoc_state::RESTART => {
                let peer_addrs = sock.peer_addrs(assoc_id).unwrap_or_default();
                let a = st
                    .assocs
                    .entry(assoc_id)
                    .or_insert_with(|| ServedAssociation { assoc_id, ..ServedAssociation::default() });
                a.peer_addrs = peer_addrs;
                a.in_streams = in_streams;
                a.out_streams = out_streams;
                if state == assoc_state::COMM_UP {
                    st.stats.associations_total += 1;
                }
                st.stats.associations_current = st.assocs.len() as u64;
            }
            assoc_state::COMM_LOST | assoc_state::SHUTDOWN_COMP | assoc_state::CANT_STR_ASSOC => end(st, assoc_id),
            _ => {}
        },
        Notification::SendFailed { assoc_id, error } => {
            st.stats.send_failed_events += 1;
            if let Some(a) = st.assocs.get_mut(&assoc_id) {
                a.send_failed_events += 1;
                if a.send_failed_events.is_power_of_two() {
                    log::info!(
                        "echo: association {assoc_id}: {} sent echo(es) could not be delivered (error {error})",
                        a.send_failed_events
                    );
                }
            }
        }
        Notification::Shutdown { assoc_id } => {
            // The peer is closing: the last chance to read the kernel's counters.
            if let Some(a) = st.assocs.get_mut(&assoc_id) {
                refresh_one(sock, a);
            }
        }
        Notification::PeerAddrChange { assoc_id, addr, state, .. } => {
            log::info!("echo: association {assoc_id}: peer address {addr:?} changed state to {state}");
        }
        Notification::Other { .. } => {}
    }
}

/// Moves an association to the ended list; its queued echoes can no longer go out.
fn end(st: &mut EchoState, assoc_id: AssocId) {
    if let Some(mut a) = st.assocs.remove(&assoc_id) {
        let lost = a.queue.len() as u64;
        if lost > 0 {
            log::info!("echo: association {assoc_id} ended with {lost} echo(es) still queued; counted as shed");
            a.shed += lost;
            st.stats.shed += lost;
            st.stats.queue_depth -= lost;
        }
        a.queue.clear();
        a.closed = true;
        st.ended.push_back(a);
        if st.ended.len() > ENDED_KEPT {
            st.ended.pop_front();
        }
    }
    st.stats.associations_current = st.assocs.len() as u64;
}

fn on_data(
    sock: &SctpSocket,
    cfg: &EchoConfig,
    st: &mut EchoState,
    piece: &[u8],
    eor: bool,
    info: RcvInfo,
    from: Option<SocketAddr>,
) {
    let EchoState { stats, assocs, .. } = st;
    let a = assocs.entry(info.assoc_id).or_insert_with(|| ServedAssociation {
        assoc_id: info.assoc_id,
        peer_addrs: from.into_iter().collect(),
        ..ServedAssociation::default()
    });
    if a.discarding {
        a.discarding = !eor;
        return;
    }
    if a.partial.len() + piece.len() > cfg.max_message {
        log::info!(
            "echo: association {}: message over the {} byte limit (--max-message); aborting the association",
            info.assoc_id,
            cfg.max_message
        );
        stats.oversize_aborts += 1;
        a.partial = Vec::new();
        a.partial_info = None;
        a.discarding = !eor;
        if let Err(e) = sock.abort_assoc(info.assoc_id) {
            log::info!("echo: aborting association {}: {e}", info.assoc_id);
        }
        return;
    }
    a.partial_info.get_or_insert(info);
    a.partial.extend_from_slice(piece);
    if !eor {
        return;
    }
    let msg = std::mem::take(&mut a.partial);
    let first = a.partial_info.take().unwrap_or(info);
    a.messages_in += 1;
    a.bytes_in += msg.len() as u64;
    stats.messages_in += 1;
    stats.bytes_in += msg.len() as u64;
    let now = monotonic_ns();
    a.records.push_back(MessageRecord {
        stream: first.sid,
        ssn: first.ssn,
        ppid: first.ppid_host(),
        tsn: first.tsn,
        cumtsn: info.cumtsn,
        len: msg.len(),
        unordered: first.unordered(),
        received_ns: now,
    });
    // The kernel forgets an association's counters the moment it closes, often before its
    // last notifications are read: keep them fresh while it is busy.
    if now.saturating_sub(a.refreshed_ns) > STATS_REFRESH_NS {
        refresh_one(sock, a);
    }
    if a.records.len() > cfg.records_per_assoc {
        a.records.pop_front();
    }
    if a.queue.len() >= cfg.queue_limit {
        a.shed += 1;
        stats.shed += 1;
        if a.shed.is_power_of_two() {
            log::info!(
                "echo: association {}: echo queue full ({}); {} echo(es) shed so far",
                a.assoc_id,
                cfg.queue_limit,
                a.shed
            );
        }
        return;
    }
    let reply = SndInfo::reply_to(&first);
    a.queue.push_back((msg, reply));
    stats.queue_depth += 1;
}

/// Sends queued echoes until the socket is full. Returns true if it became full.
fn flush(sock: &SctpSocket, state: &Mutex<EchoState>) -> bool {
    let mut st = state.lock().unwrap();
    let EchoState { stats, assocs, .. } = &mut *st;
    for a in assocs.values_mut() {
        while let Some((msg, info)) = a.queue.front() {
            match sock.send(msg, info, None) {
                Ok(_) => {
                    a.messages_out += 1;
                    a.bytes_out += msg.len() as u64;
                    stats.messages_out += 1;
                    stats.bytes_out += msg.len() as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) => {
                    // The association is going away (EPIPE, EINVAL): its notification ends it.
                    a.send_errors += 1;
                    stats.send_errors += 1;
                    log::info!("echo: echo to association {} failed: {e}", a.assoc_id);
                }
            }
            a.queue.pop_front();
            stats.queue_depth -= 1;
        }
    }
    false
}

/// Graceful end: SHUTDOWN every association, keep reading until they complete or `grace`
/// passes.
async fn shutdown(
    fd: &AsyncFd<SctpSocket>,
    cfg: &EchoConfig,
    state: &Arc<Mutex<EchoState>>,
    buf: &mut [u8],
    grace: Duration,
) -> Result<()> {
    let ids: Vec<AssocId> = state.lock().unwrap().assocs.keys().copied().collect();
    for id in &ids {
        if let Err(e) = fd.get_ref().shutdown_assoc(*id) {
            log::info!("echo: shutting down association {id}: {e}");
        }
    }
    let deadline = tokio::time::Instant::now() + grace;
    while !state.lock().unwrap().assocs.is_empty() {
        let Ok(r) = tokio::time::timeout_at(deadline, fd.readable()).await else {
            log::info!(
                "echo: {} association(s) did not finish shutting down in {grace:?}",
                state.lock().unwrap().assocs.len()
            );
            break;
        };
        let mut guard = r?;
        if let Ok(r) = guard.try_io(|s| receive_all(s.get_ref(), cfg, state, buf)) {
            r?;
        }
    }
    Ok(())
}
