//! Reading captures as a stream of Ethernet frames with their capture time.
//!
//! pcap (both byte orders, micro- and nanosecond, the modified format) and pcapng
//! (several sections and interfaces, simple and obsolete packet blocks) are parsed by
//! `pcap-parser`, a streaming reader over a bounded buffer: memory stays flat whatever
//! the file's size, and a pipe or a FIFO is read once, in order. gzip and zstd files are
//! decompressed on the way. The program parses Ethernet: frames of other link types
//! (Linux cooked SLL and SLL2, raw IP, BSD loopback) get a synthetic Ethernet header
//! carrying their protocol type.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    ops::Range,
    path::Path,
};

pub mod checksum;

use anyhow::{bail, Context as _, Result};
use pcap_parser::{create_reader, pcapng::Block, traits::PcapReaderIterator, Linktype, PcapBlockOwned, PcapError};

/// The reader's buffer; it grows for a larger record.
const BUFFER: usize = 1 << 20;
/// The largest record we grow the buffer for (tshark's own limit is 256 KiB for most
/// link types; beyond this a record is taken as damage).
const MAX_RECORD: usize = 16 << 20;
/// The obsolete pcapng Packet Block's type.
const OBSOLETE_PACKET_BLOCK: u32 = 2;
/// Interfaces of one pcapng section kept: a file of millions of interface blocks must not
/// take memory by the million. Further ones are skipped blocks, their packets of a link
/// type we cannot read.
const MAX_INTERFACES: usize = 4096;

/// Link types we can turn into Ethernet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Ethernet,
    Sll,
    Sll2,
    /// Raw IP; the version nibble says which.
    RawIp,
    /// BSD loopback (`DLT_NULL`, `DLT_LOOP`): a 4-byte address family, then IP.
    Loopback,
}

impl Link {
    fn from_linktype(lt: Linktype) -> Option<Self> {
        Some(match lt.0 {
            1 => Link::Ethernet,
            113 => Link::Sll,
            276 => Link::Sll2,
            // LINKTYPE_RAW, IPV4, IPV6, and DLT 12 / 14 (raw IP on some systems).
            101 | 228 | 229 | 12 | 14 => Link::RawIp,
            0 | 108 => Link::Loopback,
            _ => return None,
        })
    }

    /// Where the frame's network layer starts and the Ethernet type to put in front of
    /// it (`None`: the frame is Ethernet already); `None` when the link header itself is
    /// cut short.
    fn network_layer(self, data: &[u8]) -> Option<(Option<u16>, usize)> {
        let ip_ethertype = |ip: &[u8]| match ip.first().map(|b| b >> 4) {
            Some(4) => 0x0800,
            Some(6) => 0x86dd,
            _ => 0,
        };
        let be16 = |at: usize| data.get(at..at + 2).map(|w| u16::from_be_bytes([w[0], w[1]]));
        Some(match self {
            Link::Ethernet => (None, 0),
            Link::Sll => (Some(be16(14)?), 16),
            Link::Sll2 => (Some(be16(0)?), 20),
            Link::RawIp => (Some(ip_ethertype(data)), 0),
            Link::Loopback => (Some(ip_ethertype(data.get(4..)?)), 4),
        })
        .filter(|(_, at)| *at <= data.len())
    }
}

/// `data` as Ethernet: itself, or built in `buf` behind a synthetic header.
fn as_ethernet<'a>(data: &'a [u8], layer: (Option<u16>, usize), buf: &'a mut Vec<u8>) -> &'a [u8] {
    let (Some(ethertype), at) = layer else { return data };
    buf.clear();
    buf.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
    buf.extend_from_slice(&ethertype.to_be_bytes());
    buf.extend_from_slice(&data[at..]);
    buf
}

/// One frame: its capture time and its bytes as Ethernet.
pub struct Frame<'a> {
    /// Capture time in ns since the epoch, never behind an earlier frame's (see
    /// [`ReadStats::ts_backwards`]).
    pub ts_ns: u64,
    pub data: &'a [u8],
    /// The capture kept less of the frame than was on the wire (its snapshot length).
    pub cut: bool,
}

/// Extends the capture's first and last frame times so far with `frame`'s.
pub fn extend_span(span: &mut Option<(u64, u64)>, frame: &Frame) {
    *span = Some((span.map_or(frame.ts_ns, |(first, _)| first), frame.ts_ns));
}

/// What reading the capture found besides frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Records read (every packet record, given out or not).
    pub records: u64,
    /// Records whose link header was too short to convert (kept out of the replay).
    pub unconvertible: u64,
    /// Records of a link type we cannot read (pcapng interfaces of other types).
    pub unsupported_link: u64,
    /// pcapng blocks skipped: unknown, custom, statistics, name resolution and the like.
    pub skipped_blocks: u64,
    /// Records stamped earlier than one before them: their time is taken as the latest
    /// time seen so far, so the replay clock never goes back.
    pub ts_backwards: u64,
    /// Where and why the file stopped being readable before its end, if it did: the
    /// frames before the damage are given out.
    pub damaged: Option<String>,
}

/// A packet record: its link (`None`: a type we cannot read), time, where its bytes are
/// in the reader's buffer, and whether the capture cut it short.
struct Record {
    link: Option<Link>,
    ts_ns: u64,
    range: Range<usize>,
    cut: bool,
}

/// A frame given out: its time, its place in the reader's buffer, where its network layer
/// starts and what to put in front of it (see [`Link::network_layer`]), cut or not.
#[derive(Clone)]
struct Given {
    ts_ns: u64,
    range: Range<usize>,
    layer: (Option<u16>, usize),
    cut: bool,
}

/// A pcapng interface: how to read its frames and stamps.
#[derive(Clone, Copy)]
struct Iface {
    link: Option<Link>,
    /// Timestamp units per second, and the offset in seconds.
    resolution: u64,
    offset_s: i64,
}

/// How the current file or section reads its records.
enum Format {
    /// Legacy pcap: one link type (`None`: one we cannot read); nanosecond stamps or
    /// microsecond.
    Pcap { link: Option<Link>, nanos: bool },
    /// pcapng: the interfaces of the current section, its byte order.
    PcapNg { ifaces: Vec<Iface>, big_endian: bool },
}

/// A capture being read: call [`Capture::next_frame`] until it gives `None`, then read
/// [`Capture::stats`].
pub struct Capture {
    reader: Box<dyn PcapReaderIterator + Send>,
    /// Bytes of the block given out last, consumed at the next call.
    pending: usize,
    format: Format,
    /// The Ethernet frame built for a non-Ethernet record.
    buf: Vec<u8>,
    latest_ns: u64,
    done: bool,
    /// The frame given last, while its bytes are in the buffer.
    last: Option<Given>,
    /// Give `last` again (see [`Capture::rewind_one`]).
    again: bool,
    pub stats: ReadStats,
}

/// `read()` that fills the whole buffer unless the input ends: the capture reader takes
/// a short read at the start for a short file, which a pipe's partial reads are not.
struct ReadFull<R>(R);

impl<R: Read> Read for ReadFull<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.0.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(n)
    }
}

/// The input, decompressed when it starts with gzip's or zstd's magic number.
fn open_input(path: &Path) -> Result<Box<dyn Read + Send>> {
    let input: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        if path.is_dir() {
            bail!("{} is a directory: give a pcap or pcapng file", path.display());
        }
        Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
    };
    let mut input = BufReader::with_capacity(1 << 16, input);
    let head = input.fill_buf().with_context(|| format!("cannot read {}", path.display()))?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::with_buffer(input).context("starting zstd decompression")?)
    } else {
        Box::new(input)
    })
}

impl Capture {
    /// Opens a pcap or pcapng file (told apart by their first block), compressed with
    /// gzip or zstd or not; `-` is standard input.
    pub fn open(path: &Path) -> Result<Self> {
        let input = ReadFull(open_input(path)?);
        let not_capture = || {
            format!(
                "{} is not a capture: inspect reads pcap and pcapng files (gzip- or zstd-compressed too)",
                path.display()
            )
        };
        let mut reader = match create_reader(BUFFER, input) {
            Ok(r) => r,
            Err(PcapError::Eof) => bail!("{} is empty: give a pcap or pcapng file", path.display()),
            Err(PcapError::ReadError) => bail!("cannot read {}", path.display()),
            Err(_) => bail!("{}", not_capture()),
        };
        // The first block says which format: a pcap header or a pcapng section header.
        let (len, format) = match reader.next() {
            Ok((len, PcapBlockOwned::LegacyHeader(h))) => {
                // As a pcapng interface of such a type: its frames are counted, not read.
                let link = Link::from_linktype(h.network);
                if link.is_none() {
                    log::warn!(
                        "{}: link type {} cannot be read (Ethernet, Linux cooked SLL/SLL2, raw IP and BSD loopback can)",
                        path.display(),
                        h.network.0
                    );
                }
                (len, Format::Pcap { link, nanos: h.is_nanosecond_precision() })
            }
            Ok((len, PcapBlockOwned::NG(Block::SectionHeader(shb)))) => {
                (len, Format::PcapNg { ifaces: Vec::new(), big_endian: shb.big_endian() })
            }
            _ => bail!("{}", not_capture()),
        };
        Ok(Self {
            reader,
            pending: len,
            format,
            buf: Vec::new(),
            latest_ns: 0,
            done: false,
            last: None,
            again: false,
            stats: ReadStats::default(),
        })
    }

    /// The next frame, or `None` at the end of the capture or at damage (then
    /// `stats.damaged` says where and why).
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        if self.again {
            self.again = false;
        } else {
            self.last = None;
            self.last = Some(loop {
                let Record { link, ts_ns, range, cut } = self.next_record()?;
                self.stats.records += 1;
                let Some(link) = link else {
                    self.stats.unsupported_link += 1;
                    continue;
                };
                if ts_ns < self.latest_ns {
                    self.stats.ts_backwards += 1;
                }
                self.latest_ns = self.latest_ns.max(ts_ns);
                match link.network_layer(&self.reader.data()[range.clone()]) {
                    Some(layer) => break Given { ts_ns: self.latest_ns, range, layer, cut },
                    None => self.stats.unconvertible += 1,
                }
            });
        }
        let Given { ts_ns, range, layer, cut } = self.last.clone()?;
        let data = as_ethernet(&self.reader.data()[range], layer, &mut self.buf);
        Some(Frame { ts_ns, data, cut })
    }

    /// Makes the next [`Capture::next_frame`] give the frame it gave last once more.
    pub fn rewind_one(&mut self) {
        self.again = self.last.is_some();
    }

    /// The next packet record (the reader's buffer keeps its bytes until the next call).
    fn next_record(&mut self) -> Option<Record> {
        loop {
            if self.done {
                return None;
            }
            self.reader.consume(self.pending);
            self.pending = 0;
            // The buffer does not move until the next consume or refill.
            let base = self.reader.data().as_ptr() as usize;
            let why = match self.reader.next() {
                Ok((len, block)) => {
                    self.pending = len;
                    let record = match block {
                        PcapBlockOwned::Legacy(b) => {
                            let Format::Pcap { link, nanos } = self.format else {
                                unreachable!("pcap record in pcapng")
                            };
                            let frac = if nanos { u64::from(b.ts_usec) } else { u64::from(b.ts_usec) * 1000 };
                            Some((link, u64::from(b.ts_sec) * 1_000_000_000 + frac, b.data, b.caplen < b.origlen))
                        }
                        PcapBlockOwned::LegacyHeader(_) => None,
                        PcapBlockOwned::NG(block) => {
                            pcapng_block(&mut self.format, &mut self.stats, self.latest_ns, block)
                        }
                    };
                    let Some((link, ts_ns, data, cut)) = record else {
                        continue;
                    };
                    // Pointers into the same buffer: the record's place in it.
                    let start = data.as_ptr() as usize - base;
                    return Some(Record { link, ts_ns, range: start..start + data.len(), cut });
                }
                Err(PcapError::Eof) => {
                    self.done = true;
                    return None;
                }
                Err(PcapError::Incomplete(_)) => match self.reader.refill() {
                    Ok(()) => continue,
                    Err(e) => e.to_string(),
                },
                Err(PcapError::BufferTooSmall) => {
                    let size = (self.reader.data().len() * 2).max(BUFFER * 2);
                    if size > MAX_RECORD || !self.reader.grow(size) {
                        "a record larger than 16 MiB".to_string()
                    } else {
                        match self.reader.refill() {
                            Ok(()) => continue,
                            Err(e) => e.to_string(),
                        }
                    }
                }
                Err(PcapError::UnexpectedEof) => "cut short inside a record".to_string(),
                // Not the error's own text, which quotes the rest of the buffer (megabytes).
                Err(PcapError::NomError(_, check) | PcapError::OwnedNomError(_, check)) => {
                    format!("a malformed block (the parser's {check:?} check failed)")
                }
                Err(e) => e.to_string(),
            };
            self.damage(&why);
        }
    }

    /// Stops the reading: everything before this point is reported.
    fn damage(&mut self, why: &str) {
        let at = self.reader.consumed();
        let before = self.stats.records;
        self.stats.damaged = Some(format!(
            "damaged at byte {at} (frame {}): {why}; the {before} frame(s) before it are reported",
            before + 1
        ));
        self.done = true;
    }
}

/// A pcapng block: its frame (link, time, bytes) if it is a packet, after noting what
/// the block says about the section and its interfaces.
fn pcapng_block<'b>(
    format: &mut Format,
    stats: &mut ReadStats,
    latest_ns: u64,
    block: Block<'b>,
) -> Option<(Option<Link>, u64, &'b [u8], bool)> {
    let Format::PcapNg { ifaces, big_endian } = format else { unreachable!("pcapng block in pcap") };
    let stamp = |iface: Option<&Iface>, high: u32, low: u32| {
        let iface = iface.copied().unwrap_or(Iface { link: None, resolution: 1_000_000, offset_s: 0 });
        let units = (u64::from(high) << 32) | u64::from(low);
        // The common resolutions without a 128-bit division (a tenth of the read's time).
        let ns = match iface.resolution {
            1_000_000_000 => i128::from(units),
            1_000_000 => i128::from(units) * 1000,
            r => i128::from(units) * 1_000_000_000 / i128::from(r.max(1)),
        };
        let ns = ns + i128::from(iface.offset_s) * 1_000_000_000;
        (iface.link, u64::try_from(ns.max(0)).unwrap_or(u64::MAX))
    };
    match block {
        Block::SectionHeader(shb) => {
            ifaces.clear();
            *big_endian = shb.big_endian();
            None
        }
        Block::InterfaceDescription(_) if ifaces.len() >= MAX_INTERFACES => {
            stats.skipped_blocks += 1;
            None
        }
        Block::InterfaceDescription(idb) => {
            ifaces.push(Iface {
                link: Link::from_linktype(idb.linktype),
                resolution: idb.ts_resolution().unwrap_or(1_000_000),
                offset_s: idb.ts_offset(),
            });
            None
        }
        Block::EnhancedPacket(epb) => {
            let iface = ifaces.get(usize::try_from(epb.if_id).unwrap_or(usize::MAX));
            let (link, ts) = stamp(iface, epb.ts_high, epb.ts_low);
            Some((link, ts, prefix(epb.data, epb.caplen), epb.caplen < epb.origlen))
        }
        Block::SimplePacket(spb) => {
            // No time of its own: the latest time seen.
            let link = ifaces.first().and_then(|i| i.link);
            let data = prefix(spb.data, spb.origlen);
            Some((link, latest_ns, data, data.len() < usize::try_from(spb.origlen).unwrap_or(usize::MAX)))
        }
        Block::Unknown(b) if b.block_type == OBSOLETE_PACKET_BLOCK => {
            // Interface id (u16), drops (u16), time high and low, captured and
            // original lengths (u32 each), then the data.
            let d = b.data;
            let word = |at: usize| {
                let w: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
                Some(if *big_endian { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) })
            };
            let if_id = d.get(0..2).map(|w| {
                if *big_endian {
                    u16::from_be_bytes([w[0], w[1]])
                } else {
                    u16::from_le_bytes([w[0], w[1]])
                }
            });
            let (Some(if_id), Some(high), Some(low), Some(caplen), Some(len)) =
                (if_id, word(4), word(8), word(12), word(16))
            else {
                stats.skipped_blocks += 1;
                return None;
            };
            let data = prefix(d.get(20..)?, caplen);
            let (link, ts) = stamp(ifaces.get(usize::from(if_id)), high, low);
            Some((link, ts, data, caplen < len))
        }
        _ => {
            stats.skipped_blocks += 1;
            None
        }
    }
}

/// The first `len` bytes of a block's data (which is padded), or all of it when the
/// block says more than it holds.
fn prefix(data: &[u8], len: u32) -> &[u8] {
    &data[..data.len().min(usize::try_from(len).unwrap_or(usize::MAX))]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(link: Link, data: &[u8]) -> Option<Vec<u8>> {
        let layer = link.network_layer(data)?;
        Some(as_ethernet(data, layer, &mut Vec::new()).to_vec())
    }

    #[test]
    fn sll_raw_ip_and_loopback_become_ethernet_with_their_protocol() {
        let ip = [0x45u8, 0, 0, 20];
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        let e = eth(Link::Sll, &sll).unwrap();
        assert_eq!(&e[12..14], &[0x08, 0x00]);
        assert_eq!(&e[14..], &ip);
        let mut sll2 = vec![0x86, 0xdd];
        sll2.extend_from_slice(&[0; 18]);
        sll2.push(0x60);
        assert_eq!(&eth(Link::Sll2, &sll2).unwrap()[12..15], &[0x86, 0xdd, 0x60]);
        assert_eq!(&eth(Link::RawIp, &ip).unwrap()[12..14], &[0x08, 0x00]);
        assert_eq!(&eth(Link::Loopback, &[30, 0, 0, 0, 0x60, 0]).unwrap()[12..15], &[0x86, 0xdd, 0x60]);
        assert_eq!(eth(Link::Ethernet, &ip).unwrap(), ip);
        assert_eq!(eth(Link::Sll, &[0; 10]), None);
        assert_eq!(eth(Link::Loopback, &[2, 0]), None);
    }
}
