//! Crafted frames on a veth: sent with an `AF_PACKET` socket in one namespace, captured
//! with one in the other. A frame XDP dropped never reaches the capture.

use std::{
    os::fd::{AsRawFd as _, OwnedFd},
    process::Command,
    time::{Duration, Instant},
};

use crate::netns::Netns;

const ETH_P_ALL: u16 = 0x0003;
const IPPROTO_SCTP: u8 = 132;

/// The MAC address of `ifname` in `ns`.
#[must_use]
pub fn mac_of(ns: &Netns, ifname: &str) -> [u8; 6] {
    let out = Command::new("ip").args(["-n", &ns.name, "-j", "link", "show", ifname]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    sctp_user::sys::iface::parse_mac(v[0]["address"].as_str().expect("link address")).unwrap()
}

/// An `AF_PACKET` socket bound to `ifname` of the calling thread's namespace.
fn packet_socket(ifname: &str) -> OwnedFd {
    sctp_user::sys::packet::packet_socket(ifname, ETH_P_ALL).unwrap()
}

/// Sends each frame as is out of `ifname` in `ns`.
pub fn send_frames(ns: &Netns, ifname: &str, frames: &[Vec<u8>]) {
    ns.run(|| {
        let fd = packet_socket(ifname);
        for f in frames {
            loop {
                // SAFETY: send(2) of a live buffer on our socket.
                let n = unsafe { libc::send(fd.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
                if usize::try_from(n).is_ok_and(|n| n == f.len()) {
                    break;
                }
                let e = std::io::Error::last_os_error();
                // The device queue is full (a slow VM): wait for it to drain.
                assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS), "send: {e}");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    });
}

/// Frames arriving on an interface, as the stack sees them after XDP.
pub struct Capture {
    fd: OwnedFd,
}

impl Capture {
    /// Starts capturing on `ifname` in `ns`.
    #[must_use]
    pub fn start(ns: &Netns, ifname: &str) -> Self {
        let fd = ns.run(|| packet_socket(ifname));
        Self { fd }
    }

    /// Incoming SCTP frames (IPv4 or IPv6, no extension headers), until none arrived for
    /// `quiet`.
    #[must_use]
    pub fn sctp_frames(&self, quiet: Duration) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut last = Instant::now();
        let mut buf = vec![0u8; 65536];
        while last.elapsed() < quiet {
            // SAFETY: zeroed sockaddr_ll filled by recvfrom.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>()).expect("fits socklen_t");
            // SAFETY: recvfrom into our buffer, non-blocking.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&raw mut from).cast(),
                    &raw mut len,
                )
            };
            let Some(n) = usize::try_from(n).ok().filter(|n| *n > 0) else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            last = Instant::now();
            let f = &buf[..n];
            let sctp = match f.get(12..14) {
                Some([0x08, 0x00]) => f.get(23) == Some(&IPPROTO_SCTP),
                Some([0x86, 0xdd]) => f.get(20) == Some(&IPPROTO_SCTP),
                _ => false,
            };
            if sctp && from.sll_pkttype != libc::PACKET_OUTGOING {
                out.push(f.to_vec());
            }
        }
        out
    }
}
