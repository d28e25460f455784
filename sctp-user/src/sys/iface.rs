//! Network interfaces: names checked before anything is loaded, and MAC addresses.

use anyhow::{bail, Result};

/// The interface must exist (in this network namespace) before anything is loaded.
pub fn require_interface(iface: &str) -> Result<()> {
    interface_name(iface).map_err(anyhow::Error::msg)?;
    index_of(iface).map(|_| ())
}

/// `s` if the kernel could name an interface so (as its `dev_valid_name`: 1-15 bytes, not
/// `.` or `..`, no `/`, `:` or whitespace), and printable: the name becomes a path under
/// the pin root and goes into messages. A parser for `--iface`.
///
/// # Errors
/// Why it is not a name, the name escaped.
pub fn interface_name(s: &str) -> Result<String, String> {
    let bad = s.is_empty()
        || s.len() >= libc::IFNAMSIZ
        || s == "."
        || s == ".."
        || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(format!("{s:?} is not a valid interface name (1-15 characters, no '/', ':' or spaces)"));
    }
    Ok(s.to_owned())
}

/// The index of interface `iface` in this network namespace.
pub fn index_of(iface: &str) -> Result<u32> {
    match lookup_index(iface)? {
        Some(index) => Ok(index),
        None => bail!("no interface named {iface:?}: list them with `ip link`"),
    }
}

/// The index of interface `iface`, `None` if there is no such interface.
///
/// # Errors
/// When the lookup itself failed (`if_nametoindex` opens a socket: out of file
/// descriptors, it fails with EMFILE), which says nothing about the interface.
pub fn lookup_index(iface: &str) -> std::io::Result<Option<u32>> {
    let name = std::ffi::CString::new(iface).map_err(std::io::Error::other)?;
    // SAFETY: if_nametoindex on a valid C string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index != 0 {
        return Ok(Some(index));
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENODEV | libc::ENXIO) => Ok(None),
        _ => Err(e),
    }
}

/// A MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let bytes: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"))?;
    bytes.try_into().map_err(|_| format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"))
}

/// An interface's MTU (of the calling thread's network namespace).
#[must_use]
pub fn mtu(iface: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/mtu")).ok()?.trim().parse().ok()
}
