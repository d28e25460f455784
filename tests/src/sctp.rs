//! Just enough of the kernel's SCTP socket API (through libc) for tests to make real
//! associations: one-to-many (SOCK_SEQPACKET) sockets, sendto / recvfrom.

use std::{
    io,
    mem::size_of,
    net::{Ipv4Addr, SocketAddrV4},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    time::Duration,
};

const IPPROTO_SCTP: i32 = 132;

/// Whether this kernel offers SCTP sockets (the host's does not; the VM's does).
#[must_use]
pub fn kernel_has_sctp() -> bool {
    SctpSocket::new().is_ok()
}

/// A one-to-many SCTP socket.
pub struct SctpSocket(OwnedFd);

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn check(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

impl SctpSocket {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_SEQPACKET, IPPROTO_SCTP) };
        check(fd as isize)?;
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn bind(&self, addr: SocketAddrV4) -> io::Result<()> {
        let sa = sockaddr(addr);
        // SAFETY: sa is a valid sockaddr_in of the given size.
        let rc = unsafe {
            libc::bind(
                self.0.as_raw_fd(),
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            )
        };
        check(rc as isize).map(drop)
    }

    pub fn listen(&self) -> io::Result<()> {
        // SAFETY: plain listen(2).
        check(unsafe { libc::listen(self.0.as_raw_fd(), 128) } as isize).map(drop)
    }

    pub fn set_recv_timeout(&self, t: Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: t.as_secs() as i64,
            tv_usec: i64::from(t.subsec_micros()),
        };
        // SAFETY: tv is a valid timeval of the given size.
        let rc = unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                size_of::<libc::timeval>() as u32,
            )
        };
        check(rc as isize).map(drop)
    }

    /// Sends one message to `to` (setting up an association if there is none).
    pub fn send_to(&self, msg: &[u8], to: SocketAddrV4) -> io::Result<usize> {
        let sa = sockaddr(to);
        // SAFETY: buffer and address are valid for the given lengths.
        check(unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_in>() as u32,
            )
        })
    }

    /// Receives one message (or the part that fits) and the sender's address.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        // SAFETY: zeroed sockaddr_in is a valid out-parameter.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_in>() as u32;
        // SAFETY: buffer and address are valid for the given lengths.
        let n = check(unsafe {
            libc::recvfrom(
                self.0.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut sa).cast(),
                &mut len,
            )
        })?;
        let addr = SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
            u16::from_be(sa.sin_port),
        );
        Ok((n, addr))
    }
}
