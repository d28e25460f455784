//! Reading pcap and pcapng files into Ethernet frames for the XDP program.
//!
//! The program parses Ethernet; frames of other link types (Linux cooked SLL and SLL2,
//! raw IP) get a synthetic Ethernet header carrying their protocol type.

use std::{
    fs::File,
    io::{BufReader, Read},
    path::Path,
};

use anyhow::{bail, Context as _, Result};
use pcap_file::{
    pcap::PcapReader,
    pcapng::{Block, PcapNgReader},
    DataLink,
};

/// Link types we can turn into Ethernet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Ethernet,
    Sll,
    Sll2,
    /// Raw IP; the version nibble says which.
    RawIp,
}

impl Link {
    fn from_datalink(dl: DataLink) -> Option<Self> {
        Some(match dl {
            DataLink::ETHERNET => Link::Ethernet,
            DataLink::LINUX_SLL => Link::Sll,
            DataLink::LINUX_SLL2 => Link::Sll2,
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Link::RawIp,
            // DLT 12 and 14 are raw IP on some systems.
            other => match u32::from(other) {
                12 | 14 => Link::RawIp,
                _ => return None,
            },
        })
    }

    /// The frame as Ethernet, or `None` when the link header itself is cut short.
    fn to_ethernet(self, data: &[u8]) -> Option<Vec<u8>> {
        let (ethertype, payload) = match self {
            Link::Ethernet => return Some(data.to_vec()),
            Link::Sll => (u16::from_be_bytes(data.get(14..16)?.try_into().ok()?), data.get(16..)?),
            Link::Sll2 => (u16::from_be_bytes(data.get(0..2)?.try_into().ok()?), data.get(20..)?),
            Link::RawIp => match data.first()? >> 4 {
                4 => (0x0800, data),
                6 => (0x86dd, data),
                _ => (0, data),
            },
        };
        let mut frame = Vec::with_capacity(14 + payload.len());
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(payload);
        Some(frame)
    }
}

/// Every frame of the file, as Ethernet, in file order.
pub struct Frames {
    pub frames: Vec<Vec<u8>>,
    /// Frames whose link header was too short to convert (kept out of the replay).
    pub unconvertible: u64,
    /// Where and why the file stopped being readable, if it did before its end: the
    /// frames before the damage are kept.
    pub damaged: Option<String>,
}

/// Reads a pcap or pcapng file (told apart by their magic numbers); `-` is standard
/// input. The file is opened once and read in order, so a pipe or a FIFO works too.
pub fn read(path: &Path) -> Result<Frames> {
    if path.is_dir() {
        bail!("{} is a directory: give a pcap or pcapng file", path.display());
    }
    let mut input: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
    };
    let mut magic = [0u8; 4];
    input
        .read_exact(&mut magic)
        .with_context(|| format!("{} is too short to be a capture", path.display()))?;
    // The readers below start at the magic number: it is put back in front.
    let r = BufReader::new(std::io::Cursor::new(magic).chain(input));
    let what = || format!("reading {}", path.display());
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        read_pcapng(r).with_context(what)
    } else {
        read_pcap(r).with_context(what)
    }
}

/// Where the reader stopped: after the frames read so far.
fn damage(out: &Frames, e: &dyn std::fmt::Display) -> String {
    let frame = out.frames.len() as u64 + out.unconvertible + 1;
    format!("damaged at frame {frame} ({e}): the {} frame(s) before it are reported", frame - 1)
}

fn read_pcap<R: Read>(r: BufReader<R>) -> Result<Frames> {
    let mut reader = PcapReader::new(r).context("not a pcap or pcapng file")?;
    let dl = reader.header().datalink;
    let Some(link) = Link::from_datalink(dl) else {
        bail!(
            "link type {} is not supported (Ethernet, Linux cooked SLL/SLL2 and raw IP are)",
            u32::from(dl)
        );
    };
    let mut out = Frames {
        frames: Vec::new(),
        unconvertible: 0,
        damaged: None,
    };
    while let Some(pkt) = reader.next_packet() {
        match pkt {
            Ok(pkt) => push(&mut out, link, &pkt.data),
            Err(e) => {
                out.damaged = Some(damage(&out, &e));
                break;
            }
        }
    }
    Ok(out)
}

fn read_pcapng<R: Read>(r: BufReader<R>) -> Result<Frames> {
    let mut reader = PcapNgReader::new(r).context("not a valid pcapng file")?;
    let mut out = Frames {
        frames: Vec::new(),
        unconvertible: 0,
        damaged: None,
    };
    while let Some(block) = reader.next_block() {
        let block = match block {
            Ok(block) => block.into_owned(),
            Err(e) => {
                out.damaged = Some(damage(&out, &e));
                break;
            }
        };
        let (dl, data) = match block {
            Block::EnhancedPacket(p) => {
                let iface = reader
                    .packet_interface(&p)
                    .context("packet names an interface the file never described")?;
                (iface.linktype, p.data.into_owned())
            }
            Block::SimplePacket(p) => {
                let iface = reader
                    .interfaces()
                    .first()
                    .context("simple packet before any interface description")?;
                (iface.linktype, p.data.into_owned())
            }
            Block::Packet(p) => {
                let iface = reader
                    .interfaces()
                    .get(usize::from(p.interface_id))
                    .context("packet names an unknown interface")?;
                (iface.linktype, p.data.into_owned())
            }
            _ => continue,
        };
        let Some(link) = Link::from_datalink(dl) else {
            bail!(
                "link type {} is not supported (Ethernet, Linux cooked SLL/SLL2 and raw IP are)",
                u32::from(dl)
            );
        };
        push(&mut out, link, &data);
    }
    Ok(out)
}

fn push(out: &mut Frames, link: Link, data: &[u8]) {
    match link.to_ethernet(data) {
        Some(f) => out.frames.push(f),
        None => out.unconvertible += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sll_and_raw_ip_become_ethernet_with_their_protocol() {
        let ip = [0x45u8, 0, 0, 20];
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        let eth = Link::Sll.to_ethernet(&sll).unwrap();
        assert_eq!(&eth[12..14], &[0x08, 0x00]);
        assert_eq!(&eth[14..], &ip);
        let mut sll2 = vec![0x86, 0xdd];
        sll2.extend_from_slice(&[0; 18]);
        sll2.push(0x60);
        assert_eq!(&Link::Sll2.to_ethernet(&sll2).unwrap()[12..15], &[0x86, 0xdd, 0x60]);
        assert_eq!(&Link::RawIp.to_ethernet(&ip).unwrap()[12..14], &[0x08, 0x00]);
        assert_eq!(Link::Sll.to_ethernet(&[0; 10]), None);
    }
}
