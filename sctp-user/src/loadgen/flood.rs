//! `sctp-user flood`: crafted packets out of an interface, sent in batches with sendmmsg
//! on an `AF_PACKET` socket (the queueing discipline bypassed) so the sender costs as
//! little as possible per packet. An INIT flood from many source addresses, for trying
//! `--init-rate` and `--deny-src`; or DATA of established associations, one per source,
//! for measuring what the association table costs and whether it counts every packet.

use std::{
    net::Ipv4Addr,
    os::fd::{AsRawFd as _, OwnedFd},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use sctp_common::{
    builder::{Chunk, Ip, SctpPacket},
    proto::chunk::ty,
};

use crate::sys::{
    iface::require_interface,
    packet::packet_socket,
    privilege::{require, RAW_FRAMES},
};

/// Frames per sendmmsg call.
const BATCH: usize = 64;
/// Where the SCTP common header starts in the frames built here (Ethernet, IPv4).
const SCTP_AT: usize = 14 + 20;
/// The payload of each DATA chunk (a multiple of 4: no padding).
const DATA_PAYLOAD: usize = 16;
/// The first TSN each association sends.
const FIRST_TSN: u32 = 1000;

/// What to send.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Load {
    /// INITs, each source in turn.
    Init,
    /// One association per source: its handshake first (the server's packets with the
    /// addresses reversed), then `count` DATA packets of `chunks` bundled DATA chunks,
    /// the associations in turn, each packet's TSNs after the last's.
    Data { chunks: u8 },
}

pub(crate) struct Flood {
    pub iface: String,
    pub dst: Ipv4Addr,
    pub dst_port: u16,
    /// Destination MAC (the receiving interface's).
    pub dst_mac: [u8; 6],
    /// Sources: `first_source` and the addresses after it.
    pub first_source: Ipv4Addr,
    pub sources: u32,
    /// Packets to send (the handshakes of `Load::Data` come on top).
    pub count: u64,
    pub load: Load,
}

/// What was sent, and how long it took.
pub(crate) struct Sent {
    /// Handshake packets sent before the flood (`Load::Data`).
    pub handshakes: u64,
    pub took: Duration,
}

/// The client's and the server's tag of the association from source `i`.
fn tags(i: u32) -> (u32, u32) {
    (0x2000_0000 | i, 0x3000_0000 | i)
}

/// A frame from source `i` to the destination, or back (`back`: addresses and ports
/// reversed).
fn frame(f: &Flood, i: u32, back: bool, vtag: u32, chunks: Vec<Chunk>) -> Vec<u8> {
    let (client, server) = (Ipv4Addr::from(u32::from(f.first_source).wrapping_add(i)).octets(), f.dst.octets());
    let ip = if back { Ip::V4 { src: server, dst: client } } else { Ip::V4 { src: client, dst: server } };
    let mut p = SctpPacket::new(ip, vtag, chunks);
    let client_port = 1024 + u16::try_from(i % 60_000).expect("below 60,000");
    (p.src_port, p.dst_port) = if back { (f.dst_port, client_port) } else { (client_port, f.dst_port) };
    let mut frame = p.frame();
    frame[..6].copy_from_slice(&f.dst_mac);
    frame
}

fn sources(f: &Flood) -> std::ops::Range<u32> {
    0..f.sources.max(1)
}

/// One INIT frame per source.
fn init_frames(f: &Flood) -> Vec<Vec<u8>> {
    sources(f)
        .map(|i| frame(f, i, false, 0, vec![Chunk::init(ty::INIT, tags(i).0, 65535, 10, 10, tags(i).0)]))
        .collect()
}

/// Each association's handshake: INIT, INIT-ACK, COOKIE-ECHO, COOKIE-ACK.
fn handshake_frames(f: &Flood) -> Vec<Vec<u8>> {
    sources(f)
        .flat_map(|i| {
            let (c, s) = tags(i);
            [
                frame(f, i, false, 0, vec![Chunk::init(ty::INIT, c, 65535, 10, 10, FIRST_TSN)]),
                frame(f, i, true, c, vec![Chunk::init(ty::INIT_ACK, s, 65535, 10, 10, FIRST_TSN)]),
                frame(f, i, false, s, vec![Chunk::new(ty::COOKIE_ECHO, 0, vec![7; 32])]),
                frame(f, i, true, c, vec![Chunk::new(ty::COOKIE_ACK, 0, vec![])]),
            ]
        })
        .collect()
}

/// The DATA packets of `Load::Data`: each association's packet is built once, and each
/// sending renumbers its TSNs.
struct DataStream {
    templates: Vec<Vec<u8>>,
    next_tsn: Vec<u32>,
    chunks: u32,
    turn: usize,
}

impl DataStream {
    fn new(f: &Flood, chunks: u8) -> Self {
        let templates: Vec<Vec<u8>> = sources(f)
            .map(|i| {
                let data = (0..u16::from(chunks)).map(|n| Chunk::data(FIRST_TSN, n, 0, 18, DATA_PAYLOAD)).collect();
                frame(f, i, false, tags(i).1, data)
            })
            .collect();
        Self { next_tsn: vec![FIRST_TSN; templates.len()], templates, chunks: u32::from(chunks), turn: 0 }
    }

    fn fill(&mut self, buf: &mut Vec<u8>) {
        let a = self.turn % self.templates.len();
        self.turn += 1;
        buf.clear();
        buf.extend_from_slice(&self.templates[a]);
        renumber(&mut buf[SCTP_AT..], self.next_tsn[a]);
        self.next_tsn[a] = self.next_tsn[a].wrapping_add(self.chunks);
    }
}

/// Gives the chunks of an SCTP packet (common header first, DATA chunks only) the TSNs
/// from `first` on, and the packet its checksum again.
fn renumber(sctp: &mut [u8], first: u32) {
    let (mut at, mut tsn) = (12, first);
    while let Some(chunk) = sctp.get_mut(at..at + 8) {
        let len = usize::from(u16::from_be_bytes([chunk[2], chunk[3]]));
        chunk[4..8].copy_from_slice(&tsn.to_be_bytes());
        tsn = tsn.wrapping_add(1);
        at += len.next_multiple_of(4).max(4);
    }
    sctp[8..12].fill(0);
    let crc = crc32c::crc32c(sctp);
    sctp[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// Sends the flood; returns what went and how long the flood (not the handshakes) took.
pub(crate) fn run(f: &Flood) -> Result<Sent> {
    require(RAW_FRAMES)?;
    require_interface(&f.iface)?;
    let fd = packet_socket(&f.iface, 0)?;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with an int. Bypassing the qdisc is an optimisation only.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            (&raw const one).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).expect("an int fits socklen_t"),
        )
    };
    match f.load {
        Load::Init => {
            let frames = init_frames(f);
            let mut turn = 0;
            let start = Instant::now();
            send(&fd, f.count, |buf| {
                buf.clone_from(&frames[turn % frames.len()]);
                turn += 1;
            })?;
            Ok(Sent { handshakes: 0, took: start.elapsed() })
        }
        Load::Data { chunks } => {
            let handshakes = handshake_frames(f);
            let mut turn = 0;
            send(&fd, handshakes.len() as u64, |buf| {
                buf.clone_from(&handshakes[turn]);
                turn += 1;
            })?;
            let mut stream = DataStream::new(f, chunks);
            let start = Instant::now();
            send(&fd, f.count, |buf| stream.fill(buf))?;
            Ok(Sent { handshakes: handshakes.len() as u64, took: start.elapsed() })
        }
    }
}

/// Sends `count` frames, each written by `next` into a buffer of the batch, in order.
fn send(fd: &OwnedFd, count: u64, mut next: impl FnMut(&mut Vec<u8>)) -> Result<()> {
    let mut batch: Vec<Vec<u8>> = vec![Vec::new(); BATCH];
    let mut sent = 0u64;
    while sent < count {
        let n = usize::try_from(count - sent).unwrap_or(BATCH).min(BATCH);
        for buf in &mut batch[..n] {
            next(buf);
        }
        let mut done = 0;
        while done < n {
            let mut iov: Vec<libc::iovec> = batch[done..n]
                .iter_mut()
                .map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() })
                .collect();
            let mut msgs: Vec<libc::mmsghdr> = iov
                .iter_mut()
                .map(|v| {
                    // SAFETY: a zeroed mmsghdr is valid; one iovec each.
                    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    m.msg_hdr.msg_iov = v;
                    m.msg_hdr.msg_iovlen = 1;
                    m
                })
                .collect();
            let vlen = u32::try_from(msgs.len()).expect("at most BATCH messages");
            // SAFETY: sendmmsg over live headers and buffers.
            let rc = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), vlen, 0) };
            if let Ok(k) = usize::try_from(rc) {
                done += k;
            } else {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ENOBUFS) {
                    return Err(e).context("sendmmsg");
                }
                std::thread::yield_now();
            }
        }
        sent += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flood(load: Load) -> Flood {
        Flood {
            iface: "x".into(),
            dst: Ipv4Addr::new(198, 18, 0, 2),
            dst_port: 36412,
            dst_mac: [2, 0, 0, 0, 0, 1],
            first_source: Ipv4Addr::new(198, 18, 100, 1),
            sources: 3,
            count: 10,
            load,
        }
    }

    #[test]
    fn data_packets_carry_growing_tsns_and_good_checksums() {
        let f = flood(Load::Data { chunks: 4 });
        let mut stream = DataStream::new(&f, 4);
        let mut buf = Vec::new();
        // The fifth packet: the second of association 1, TSNs 1004..1007.
        for _ in 0..5 {
            stream.fill(&mut buf);
        }
        let data = (0..4).map(|n| Chunk::data(FIRST_TSN + 4 + u32::from(n), n, 0, 18, DATA_PAYLOAD)).collect();
        assert_eq!(buf, frame(&f, 1, false, tags(1).1, data), "as the builder makes it, checksum included");
    }

    #[test]
    fn a_handshake_each_with_the_server_packets_reversed() {
        let f = flood(Load::Data { chunks: 1 });
        let frames = handshake_frames(&f);
        assert_eq!(frames.len(), 12);
        // INIT-ACK of source 2: from the server's address and port to the client's.
        let ack = &frames[9];
        assert_eq!(ack[26..30], [198, 18, 0, 2]);
        assert_eq!(ack[30..34], [198, 18, 100, 3]);
        assert_eq!(u16::from_be_bytes([ack[34], ack[35]]), 36412);
        assert_eq!(u32::from_be_bytes([ack[38], ack[39], ack[40], ack[41]]), tags(2).0);
    }
}
