//! `AF_PACKET` sockets: crafted frames out of, and raw frames into, one interface.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::{bail, Result};

use super::iface::index_of;

/// An `AF_PACKET` socket bound to `ifname` (in the calling thread's network namespace),
/// receiving `protocol` (an `EtherType`, host order; 0 to only send).
pub fn packet_socket(ifname: &str, protocol: u16) -> Result<OwnedFd> {
    // SAFETY: plain socket(2); owned at once.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol.to_be())) };
    if fd < 0 {
        bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let index = index_of(ifname)?;
    // SAFETY: zeroed sockaddr_ll, then the fields bind needs.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::c_ushort::try_from(libc::AF_PACKET).expect("AF_PACKET fits its field");
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = i32::try_from(index)?;
    // SAFETY: bind with a sockaddr_ll of the right size.
    if unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast(),
            libc::socklen_t::try_from(std::mem::size_of_val(&sll)).expect("sockaddr_ll fits socklen_t"),
        )
    } != 0
    {
        bail!("binding to {ifname}: {}", std::io::Error::last_os_error());
    }
    Ok(fd)
}
