//! `sctp-user flood`: a crafted INIT flood out of an interface, from many source
//! addresses, sent in batches with sendmmsg on an `AF_PACKET` socket (the queueing
//! discipline bypassed) so the sender costs as little as possible per packet. For
//! benchmarks and for trying `--init-rate` and `--deny-src` rules.

use std::{
    net::Ipv4Addr,
    os::fd::AsRawFd as _,
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

/// What to send.
pub(crate) struct Flood {
    pub iface: String,
    pub dst: Ipv4Addr,
    pub dst_port: u16,
    /// Destination MAC (the receiving interface's).
    pub dst_mac: [u8; 6],
    /// Sources: `first_source` and the addresses after it.
    pub first_source: Ipv4Addr,
    pub sources: u32,
    pub count: u64,
}

/// Builds one INIT frame per source (they are sent in turn).
fn frames(f: &Flood) -> Vec<Vec<u8>> {
    (0..f.sources.max(1))
        .map(|i| {
            let src = Ipv4Addr::from(u32::from(f.first_source).wrapping_add(i));
            let tag = 0x1000_0000 | i;
            let mut p = SctpPacket::new(
                Ip::V4 { src: src.octets(), dst: f.dst.octets() },
                0,
                vec![Chunk::init(ty::INIT, tag, 65535, 10, 10, tag)],
            );
            p.src_port = 1024 + (i % 60000) as u16;
            p.dst_port = f.dst_port;
            let mut frame = p.frame();
            frame[..6].copy_from_slice(&f.dst_mac);
            frame
        })
        .collect()
}

/// Sends the flood; returns how long sending took.
pub(crate) fn run(f: &Flood) -> Result<Duration> {
    require(RAW_FRAMES)?;
    require_interface(&f.iface)?;
    let frames = frames(f);
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
    let start = Instant::now();
    let mut sent = 0u64;
    let mut next = 0usize;
    while sent < f.count {
        let n = usize::try_from(f.count - sent).unwrap_or(BATCH).min(BATCH);
        let mut iov: Vec<libc::iovec> = (0..n)
            .map(|i| {
                let frame = &frames[(next + i) % frames.len()];
                libc::iovec { iov_base: frame.as_ptr() as *mut _, iov_len: frame.len() }
            })
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
        let vlen = u32::try_from(n).expect("at most BATCH messages");
        // SAFETY: sendmmsg over live headers and buffers.
        let rc = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), vlen, 0) };
        let Ok(done) = usize::try_from(rc) else {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOBUFS) {
                std::thread::yield_now();
                continue;
            }
            return Err(e).context("sendmmsg");
        };
        sent += done as u64;
        next += done;
    }
    Ok(start.elapsed())
}
