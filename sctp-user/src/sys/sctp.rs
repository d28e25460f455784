//! A thin, safe layer over the kernel's SCTP socket API (RFC 6458, Linux uapi
//! `linux/sctp.h`): one-to-many sockets, `sctp_bindx`, event subscriptions, `recvmsg` with
//! `SCTP_RCVINFO` and notifications, `sendmsg` with `SCTP_SNDINFO`, and the per-association
//! status and statistics options. Only what this project uses; every call checked.

use std::{
    io,
    mem::{size_of, zeroed},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd as _, OwnedFd, RawFd},
};

pub const IPPROTO_SCTP: i32 = libc::IPPROTO_SCTP;
const SOL_SCTP: i32 = libc::IPPROTO_SCTP;
/// Room for the peer addresses: `struct sctp_getaddrs` (8 bytes) and 16 IPv6 addresses.
const PEER_ADDRS_BUF: usize = 8 + 16 * size_of::<libc::sockaddr_in6>();
// Not in libc: the Linux-specific socket options (linux/sctp.h).
const SCTP_SOCKOPT_BINDX_ADD: i32 = 100;
const SCTP_GET_PEER_ADDRS: i32 = 108;
const SCTP_GET_ASSOC_STATS: i32 = 112;
const SCTP_EVENT: i32 = 127;
/// recvmsg flag: the data is a notification, not a user message.
pub const MSG_NOTIFICATION: i32 = libc::MSG_NOTIFICATION;
/// snd/rcv flags (`u16` in the structs; libc has them as `c_int`).
pub const SCTP_UNORDERED: u16 = sndrcv_flag(libc::SCTP_UNORDERED);
const SCTP_ABORT: u16 = sndrcv_flag(libc::SCTP_ABORT);
const SCTP_EOF: u16 = sndrcv_flag(libc::SCTP_EOF);

const fn sndrcv_flag(flag: i32) -> u16 {
    assert!(flag >= 0 && flag <= u16::MAX as i32, "an sinfo flag fits its u16 field");
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "range asserted above")]
    let flag = flag as u16;
    flag
}

/// `socklen_t` of a socket structure (all are far below its range).
fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).expect("a socket structure fits socklen_t")
}

/// Notification types (`enum sctp_sn_type`).
pub mod event {
    pub const ASSOC_CHANGE: u16 = 0x8001;
    pub const PEER_ADDR_CHANGE: u16 = 0x8002;
    pub const REMOTE_ERROR: u16 = 0x8004;
    pub const SHUTDOWN: u16 = 0x8005;
    pub const PARTIAL_DELIVERY: u16 = 0x8006;
    pub const SENDER_DRY: u16 = 0x8009;
    pub const SEND_FAILED_EVENT: u16 = 0x800d;
}

/// `sctp_assoc_change.sac_state`.
pub mod assoc_state {
    pub const COMM_UP: u16 = 0;
    pub const COMM_LOST: u16 = 1;
    pub const RESTART: u16 = 2;
    pub const SHUTDOWN_COMP: u16 = 3;
    pub const CANT_STR_ASSOC: u16 = 4;
}

pub type AssocId = i32;

/// `struct sctp_rcvinfo`: what the kernel says about a received message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RcvInfo {
    pub sid: u16,
    pub ssn: u16,
    pub flags: u16,
    pub ppid: u32,
    pub tsn: u32,
    pub cumtsn: u32,
    pub context: u32,
    pub assoc_id: AssocId,
}

impl From<libc::sctp_rcvinfo> for RcvInfo {
    fn from(r: libc::sctp_rcvinfo) -> Self {
        Self {
            sid: r.rcv_sid,
            ssn: r.rcv_ssn,
            flags: r.rcv_flags,
            ppid: r.rcv_ppid,
            tsn: r.rcv_tsn,
            cumtsn: r.rcv_cumtsn,
            context: r.rcv_context,
            assoc_id: r.rcv_assoc_id,
        }
    }
}

impl RcvInfo {
    /// PPID in host order (the kernel passes it through in network order).
    #[must_use]
    pub fn ppid_host(&self) -> u32 {
        u32::from_be(self.ppid)
    }

    #[must_use]
    pub fn unordered(&self) -> bool {
        self.flags & SCTP_UNORDERED != 0
    }
}

/// `struct sctp_sndinfo`: where and how a message is sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct SndInfo {
    pub sid: u16,
    pub flags: u16,
    /// Network byte order, as on the wire (echoing `RcvInfo::ppid` keeps it unchanged).
    pub ppid: u32,
    pub context: u32,
    pub assoc_id: AssocId,
}

impl From<&SndInfo> for libc::sctp_sndinfo {
    fn from(s: &SndInfo) -> Self {
        Self { snd_sid: s.sid, snd_flags: s.flags, snd_ppid: s.ppid, snd_context: s.context, snd_assoc_id: s.assoc_id }
    }
}

impl SndInfo {
    /// Sending back to where `rcv` came from: same association, stream, PPID and
    /// unordered flag (what an echo does).
    #[must_use]
    pub fn reply_to(rcv: &RcvInfo) -> Self {
        Self {
            sid: rcv.sid,
            flags: if rcv.unordered() { SCTP_UNORDERED } else { 0 },
            ppid: rcv.ppid,
            context: 0,
            assoc_id: rcv.assoc_id,
        }
    }
}

#[repr(C)]
struct Event {
    assoc_id: AssocId,
    ty: u16,
    on: u8,
}

// The structures below are not in libc.

/// `struct sctp_paddrinfo` (packed, aligned 4).
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
struct PaddrInfo {
    assoc_id: AssocId,
    address: libc::sockaddr_storage,
    state: i32,
    cwnd: u32,
    srtt: u32,
    rto: u32,
    mtu: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RawStatus {
    assoc_id: AssocId,
    state: i32,
    rwnd: u32,
    unackdata: u16,
    penddata: u16,
    instrms: u16,
    outstrms: u16,
    fragmentation_point: u32,
    primary: PaddrInfo,
}

/// `SCTP_STATUS` of one association.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub state: i32,
    pub rwnd: u32,
    pub unacked: u16,
    pub pending: u16,
    pub in_streams: u16,
    pub out_streams: u16,
    pub fragmentation_point: u32,
    pub primary: Option<SocketAddr>,
    pub srtt_ms: u32,
    pub rto_ms: u32,
    pub cwnd: u32,
    pub mtu: u32,
}

/// `SCTP_GET_ASSOC_STATS`: the kernel's own counters for one association.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct AssocStats {
    pub maxrto: u64,
    pub isacks: u64,
    pub osacks: u64,
    pub opackets: u64,
    pub ipackets: u64,
    pub rtxchunks: u64,
    pub outofseqtsns: u64,
    pub idupchunks: u64,
    pub gapcnt: u64,
    pub ouodchunks: u64,
    pub iuodchunks: u64,
    pub oodchunks: u64,
    pub iodchunks: u64,
    pub octrlchunks: u64,
    pub ictrlchunks: u64,
}

#[repr(C)]
struct RawAssocStats {
    assoc_id: AssocId,
    obs_rto_ipaddr: libc::sockaddr_storage,
    stats: AssocStats,
}

/// A notification, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notification {
    AssocChange { assoc_id: AssocId, state: u16, error: u16, out_streams: u16, in_streams: u16 },
    PeerAddrChange { assoc_id: AssocId, addr: Option<SocketAddr>, state: i32, error: i32 },
    Shutdown { assoc_id: AssocId },
    SendFailed { assoc_id: AssocId, error: u32 },
    Other { ty: u16 },
}

impl Notification {
    /// Name for logs and metrics labels.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Notification::AssocChange { .. } => "assoc_change",
            Notification::PeerAddrChange { .. } => "peer_addr_change",
            Notification::Shutdown { .. } => "shutdown",
            Notification::SendFailed { .. } => "send_failed",
            Notification::Other { .. } => "other",
        }
    }

    fn parse(b: &[u8]) -> Self {
        let u16_at = |o: usize| b.get(o..o + 2).map_or(0, |s| u16::from_ne_bytes([s[0], s[1]]));
        let u32_at = |o: usize| b.get(o..o + 4).map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]));
        let i32_at = |o: usize| b.get(o..o + 4).map_or(0, |s| i32::from_ne_bytes([s[0], s[1], s[2], s[3]]));
        let ty = u16_at(0);
        match ty {
            event::ASSOC_CHANGE => Notification::AssocChange {
                state: u16_at(8),
                error: u16_at(10),
                out_streams: u16_at(12),
                in_streams: u16_at(14),
                assoc_id: i32_at(16),
            },
            event::PEER_ADDR_CHANGE => {
                // type, flags, length (8 bytes), sockaddr_storage (128), state, error, assoc_id
                let addr = b.get(8..8 + size_of::<libc::sockaddr_storage>()).and_then(sockaddr_from_bytes);
                Notification::PeerAddrChange { addr, state: i32_at(136), error: i32_at(140), assoc_id: i32_at(144) }
            }
            event::SHUTDOWN => Notification::Shutdown { assoc_id: i32_at(8) },
            // struct sctp_send_failed_event: type, flags, length, error, sndinfo (16), assoc_id
            event::SEND_FAILED_EVENT => Notification::SendFailed { error: u32_at(8), assoc_id: i32_at(28) },
            _ => Notification::Other { ty },
        }
    }
}

/// One `recvmsg` result.
#[derive(Debug)]
pub enum Received {
    /// (Part of) a user message: `len` bytes were written to the buffer; `eor` marks its end.
    Data {
        len: usize,
        eor: bool,
        info: RcvInfo,
        from: Option<SocketAddr>,
    },
    Notification(Notification),
}

/// A one-to-many (`SOCK_SEQPACKET`) SCTP socket.
pub struct SctpSocket {
    fd: OwnedFd,
}

impl AsRawFd for SctpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for SctpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn cvt_size(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc.unsigned_abs())
    }
}

impl SctpSocket {
    /// A one-to-many socket of the family of `v6` (an IPv6 socket also takes IPv4 peers).
    /// On a kernel without SCTP this fails with a message saying so.
    pub fn one_to_many(v6: bool) -> io::Result<Self> {
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(family, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, IPPROTO_SCTP) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ESOCKTNOSUPPORT | libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT) => io::Error::new(
                    e.kind(),
                    "this kernel has no SCTP (load it with `modprobe sctp`, or use --no-echo to inspect only)",
                ),
                _ => e,
            });
        }
        Ok(Self {
            // SAFETY: fd is a fresh descriptor that we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn setsockopt<T>(&self, level: i32, name: i32, value: &T) -> io::Result<()> {
        // SAFETY: value points to a T of the given size.
        cvt(unsafe {
            libc::setsockopt(self.as_raw_fd(), level, name, std::ptr::from_ref::<T>(value).cast(), socklen::<T>())
        })
        .map(drop)
    }

    /// Binds to every address (`sctp_bindx` ADD: several addresses of one port make a
    /// multi-homed endpoint).
    pub fn bindx(&self, addrs: &[SocketAddr]) -> io::Result<()> {
        let mut packed = Vec::new();
        for a in addrs {
            let (storage, len) = sockaddr_to_raw(a);
            // SAFETY: storage holds `len` initialized bytes of a sockaddr.
            let bytes = unsafe { std::slice::from_raw_parts((&raw const storage).cast::<u8>(), len as usize) };
            packed.extend_from_slice(bytes);
        }
        // SAFETY: packed is a contiguous array of sockaddrs, as SCTP_SOCKOPT_BINDX_ADD wants.
        cvt(unsafe {
            libc::setsockopt(
                self.as_raw_fd(),
                SOL_SCTP,
                SCTP_SOCKOPT_BINDX_ADD,
                packed.as_ptr().cast(),
                libc::socklen_t::try_from(packed.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            )
        })
        .map(drop)
    }

    pub fn listen(&self, backlog: i32) -> io::Result<()> {
        // SAFETY: plain listen(2).
        cvt(unsafe { libc::listen(self.as_raw_fd(), backlog) }).map(drop)
    }

    /// Sets up a new association to `peer` (one-to-many sockets allow connect).
    pub fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        let (storage, len) = sockaddr_to_raw(&peer);
        // SAFETY: storage is a sockaddr of `len` bytes.
        let rc = unsafe { libc::connect(self.as_raw_fd(), (&raw const storage).cast(), len) };
        match cvt(rc) {
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
            other => other.map(drop),
        }
    }

    pub fn set_nonblocking(&self) -> io::Result<()> {
        // SAFETY: fcntl on our own fd.
        let flags = cvt(unsafe { libc::fcntl(self.as_raw_fd(), libc::F_GETFL) })?;
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(self.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
    }

    /// Blocking receives give up after `t` (`SO_RCVTIMEO`).
    pub fn set_recv_timeout(&self, t: std::time::Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_usec: libc::suseconds_t::from(t.subsec_micros()),
        };
        self.setsockopt(libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
    }

    /// Asks for `SCTP_RCVINFO` with every received message.
    pub fn recv_rcvinfo(&self) -> io::Result<()> {
        self.setsockopt(SOL_SCTP, libc::SCTP_RECVRCVINFO, &1i32)
    }

    /// Subscribes to the notification types (RFC 6458 `SCTP_EVENT`).
    pub fn subscribe(&self, types: &[u16]) -> io::Result<()> {
        for ty in types {
            self.setsockopt(SOL_SCTP, SCTP_EVENT, &Event { assoc_id: 0, ty: *ty, on: 1 })?;
        }
        Ok(())
    }

    /// Streams offered to new associations.
    pub fn set_streams(&self, out: u16, max_in: u16) -> io::Result<()> {
        let m = libc::sctp_initmsg {
            sinit_num_ostreams: out,
            sinit_max_instreams: max_in,
            sinit_max_attempts: 0,
            sinit_max_init_timeo: 0,
        };
        self.setsockopt(SOL_SCTP, libc::SCTP_INITMSG, &m)
    }

    /// Socket buffer sizes; beyond net.core.[rw]`mem_max` only with `CAP_NET_ADMIN` (the
    /// FORCE options), otherwise capped by the kernel.
    pub fn set_buffers(&self, send: i32, recv: i32) -> io::Result<()> {
        for (force, plain, bytes) in
            [(libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, send), (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, recv)]
        {
            if self.setsockopt(libc::SOL_SOCKET, force, &bytes).is_err() {
                self.setsockopt(libc::SOL_SOCKET, plain, &bytes)?;
            }
        }
        Ok(())
    }

    /// One recvmsg into `buf`.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        let mut cmsg = [0u64; 16];
        // SAFETY: zeroed sockaddr_storage and msghdr are valid out-parameters.
        let mut from: libc::sockaddr_storage = unsafe { zeroed() };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&raw mut from).cast();
        msg.msg_namelen = socklen::<libc::sockaddr_storage>();
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 16]>();
        // SAFETY: msg describes valid buffers for the call's duration.
        let len = cvt_size(unsafe { libc::recvmsg(self.as_raw_fd(), &raw mut msg, 0) })?;
        if msg.msg_flags & MSG_NOTIFICATION != 0 {
            return Ok(Received::Notification(Notification::parse(&buf[..len])));
        }
        let mut info = RcvInfo::default();
        // SAFETY: walking the control buffer the kernel filled, with the libc macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
            while !c.is_null() {
                if (*c).cmsg_level == IPPROTO_SCTP && (*c).cmsg_type == libc::SCTP_RCVINFO {
                    info = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::sctp_rcvinfo>()).into();
                }
                c = libc::CMSG_NXTHDR(&raw const msg, c);
            }
        }
        let from = sockaddr_from_bytes(
            // SAFETY: `from` is a plain sockaddr_storage.
            unsafe { std::slice::from_raw_parts((&raw const from).cast::<u8>(), size_of::<libc::sockaddr_storage>()) },
        );
        Ok(Received::Data { len, eor: msg.msg_flags & libc::MSG_EOR != 0, info, from })
    }

    /// One sendmsg of a whole message with `SCTP_SNDINFO` (to an existing association by
    /// `info.assoc_id`, or to `to` to set one up).
    pub fn send(&self, data: &[u8], info: &SndInfo, to: Option<SocketAddr>) -> io::Result<usize> {
        let mut iov = libc::iovec { iov_base: data.as_ptr().cast_mut().cast(), iov_len: data.len() };
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(socklen::<libc::sctp_sndinfo>()) } as usize;
        let mut cmsg = [0u64; 8];
        assert!(space <= size_of::<[u64; 8]>());
        // SAFETY: zeroed msghdr is valid; fields set below.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        let dest = to.map(|a| sockaddr_to_raw(&a));
        if let Some((storage, len)) = &dest {
            msg.msg_name = std::ptr::from_ref::<libc::sockaddr_storage>(storage).cast_mut().cast();
            msg.msg_namelen = *len;
        }
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: the control buffer holds one cmsg of SndInfo, as sized above.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&raw const msg);
            (*c).cmsg_level = IPPROTO_SCTP;
            (*c).cmsg_type = libc::SCTP_SNDINFO;
            (*c).cmsg_len = libc::CMSG_LEN(socklen::<libc::sctp_sndinfo>()) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::sctp_sndinfo>(), info.into());
        }
        // SAFETY: msg describes valid buffers for the call's duration.
        cvt_size(unsafe { libc::sendmsg(self.as_raw_fd(), &raw const msg, libc::MSG_NOSIGNAL) })
    }

    /// Starts a graceful SHUTDOWN of one association.
    pub fn shutdown_assoc(&self, assoc_id: AssocId) -> io::Result<()> {
        self.send(&[], &SndInfo { flags: SCTP_EOF, assoc_id, ..SndInfo::default() }, None).map(drop)
    }

    /// ABORTs one association.
    pub fn abort_assoc(&self, assoc_id: AssocId) -> io::Result<()> {
        self.send(&[], &SndInfo { flags: SCTP_ABORT, assoc_id, ..SndInfo::default() }, None).map(drop)
    }

    fn getsockopt<T>(&self, name: i32, value: &mut T) -> io::Result<()> {
        let mut len = socklen::<T>();
        // SAFETY: value is a T of `len` bytes.
        cvt(unsafe {
            libc::getsockopt(self.as_raw_fd(), SOL_SCTP, name, std::ptr::from_mut::<T>(value).cast(), &raw mut len)
        })
        .map(drop)
    }

    /// `SCTP_STATUS` of one association.
    pub fn status(&self, assoc_id: AssocId) -> io::Result<Status> {
        // SAFETY: all-zero is a valid RawStatus.
        let mut s: RawStatus = unsafe { zeroed() };
        s.assoc_id = assoc_id;
        self.getsockopt(libc::SCTP_STATUS, &mut s)?;
        let p = s.primary;
        let address = p.address;
        // SAFETY: viewing a sockaddr_storage as bytes.
        let addr_bytes = unsafe {
            std::slice::from_raw_parts((&raw const address).cast::<u8>(), size_of::<libc::sockaddr_storage>())
        };
        Ok(Status {
            state: s.state,
            rwnd: s.rwnd,
            unacked: s.unackdata,
            pending: s.penddata,
            in_streams: s.instrms,
            out_streams: s.outstrms,
            fragmentation_point: s.fragmentation_point,
            primary: sockaddr_from_bytes(addr_bytes),
            srtt_ms: p.srtt,
            rto_ms: p.rto,
            cwnd: p.cwnd,
            mtu: p.mtu,
        })
    }

    /// `SCTP_GET_ASSOC_STATS` of one association.
    pub fn assoc_stats(&self, assoc_id: AssocId) -> io::Result<AssocStats> {
        // SAFETY: all-zero is a valid RawAssocStats.
        let mut s: RawAssocStats = unsafe { zeroed() };
        s.assoc_id = assoc_id;
        self.getsockopt(SCTP_GET_ASSOC_STATS, &mut s)?;
        Ok(s.stats)
    }

    /// The peer's addresses (`SCTP_GET_PEER_ADDRS`).
    pub fn peer_addrs(&self, assoc_id: AssocId) -> io::Result<Vec<SocketAddr>> {
        let mut buf = vec![0u8; PEER_ADDRS_BUF];
        buf[..4].copy_from_slice(&assoc_id.to_ne_bytes());
        let mut len: libc::socklen_t = socklen::<[u8; PEER_ADDRS_BUF]>();
        // SAFETY: buf is `len` bytes, starting with struct sctp_getaddrs.
        cvt(unsafe {
            libc::getsockopt(self.as_raw_fd(), SOL_SCTP, SCTP_GET_PEER_ADDRS, buf.as_mut_ptr().cast(), &raw mut len)
        })?;
        let n = u32::from_ne_bytes(buf[4..8].try_into().unwrap()) as usize;
        let mut out = Vec::new();
        let mut off = 8;
        for _ in 0..n {
            let Some(addr) = buf.get(off..).and_then(sockaddr_from_bytes) else {
                break;
            };
            off += if addr.is_ipv4() { size_of::<libc::sockaddr_in>() } else { size_of::<libc::sockaddr_in6>() };
            out.push(addr);
        }
        Ok(out)
    }
}

fn sockaddr_to_raw(a: &SocketAddr) -> (libc::sockaddr_storage, u32) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::sa_family_t::try_from(libc::AF_INET).expect("AF_INET fits sa_family_t"),
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            socklen::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::sa_family_t::try_from(libc::AF_INET6).expect("AF_INET6 fits sa_family_t"),
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            socklen::<libc::sockaddr_in6>()
        }
    };
    (storage, len)
}

/// Decodes a `sockaddr_in` / `sockaddr_in6` from raw bytes (IPv4-mapped IPv6 becomes IPv4).
fn sockaddr_from_bytes(b: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes([*b.first()?, *b.get(1)?]));
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match family {
        libc::AF_INET => {
            let ip = Ipv4Addr::new(*b.get(4)?, *b.get(5)?, *b.get(6)?, *b.get(7)?);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        libc::AF_INET6 => {
            let octets: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let ip = Ipv6Addr::from(octets);
            Some(match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                None => SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddrs_round_trip() {
        for a in ["198.18.0.2:36412", "[2001:db8::2]:3868"] {
            let a: SocketAddr = a.parse().unwrap();
            let (storage, len) = sockaddr_to_raw(&a);
            // SAFETY: viewing the storage as bytes.
            let b = unsafe { std::slice::from_raw_parts((&raw const storage).cast::<u8>(), len as usize) };
            assert_eq!(sockaddr_from_bytes(b), Some(a));
        }
    }

    #[test]
    fn uapi_struct_sizes_match_linux() {
        assert_eq!(size_of::<RcvInfo>(), 28);
        assert_eq!(size_of::<SndInfo>(), 16);
        assert_eq!(size_of::<PaddrInfo>(), 152);
        assert_eq!(size_of::<RawStatus>(), 176);
        assert_eq!(size_of::<RawAssocStats>(), 256);
    }

    #[test]
    fn assoc_change_notification_decodes() {
        let mut b = vec![0u8; 20];
        b[0..2].copy_from_slice(&event::ASSOC_CHANGE.to_ne_bytes());
        b[8..10].copy_from_slice(&assoc_state::COMM_UP.to_ne_bytes());
        b[12..14].copy_from_slice(&10u16.to_ne_bytes());
        b[14..16].copy_from_slice(&5u16.to_ne_bytes());
        b[16..20].copy_from_slice(&7i32.to_ne_bytes());
        assert_eq!(
            Notification::parse(&b),
            Notification::AssocChange { assoc_id: 7, state: 0, error: 0, out_streams: 10, in_streams: 5 }
        );
    }
}
