//! Writers of the capture variants `inspect` must read as tshark does: legacy pcap in
//! either byte order and resolution, with records longer than the snapshot length or the
//! original length, and pcapng blocks written field by field (options without the
//! end-of-options marker, simple and obsolete packet blocks, custom and unknown blocks).
//! Kept byte-level on purpose: a library writer would refuse the odd ones.

/// One record: time in ns since the epoch, the bytes captured, the length on the wire.
#[derive(Clone)]
pub struct Record {
    pub ts_ns: u64,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

impl Record {
    #[must_use]
    pub fn new(ts_ns: u64, data: Vec<u8>) -> Self {
        let orig_len = u32::try_from(data.len()).expect("a record fits u32");
        Self { ts_ns, data, orig_len }
    }
}

/// Legacy pcap of `records` with link type `linktype`.
#[must_use]
pub fn pcap(records: &[Record], linktype: u32, big_endian: bool, nanos: bool, snaplen: u32) -> Vec<u8> {
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32b(snaplen));
    out.extend_from_slice(&u32b(linktype));
    for r in records {
        let secs = u32::try_from(r.ts_ns / 1_000_000_000).expect("a time before 2106");
        let frac = u32::try_from(if nanos { r.ts_ns % 1_000_000_000 } else { r.ts_ns % 1_000_000_000 / 1000 }).unwrap();
        out.extend_from_slice(&u32b(secs));
        out.extend_from_slice(&u32b(frac));
        out.extend_from_slice(&u32b(u32::try_from(r.data.len()).unwrap()));
        out.extend_from_slice(&u32b(r.orig_len));
        out.extend_from_slice(&r.data);
    }
    out
}

/// pcapng, little-endian, block by block.
#[derive(Default)]
pub struct PcapNg {
    pub bytes: Vec<u8>,
}

/// A pcapng option: code, value (padded when written).
pub type Opt<'a> = (u16, &'a [u8]);

impl PcapNg {
    fn block(&mut self, block_type: u32, body: &[u8]) {
        let len = u32::try_from(12 + body.len().div_ceil(4) * 4).unwrap();
        self.bytes.extend_from_slice(&block_type.to_le_bytes());
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(body);
        self.bytes.resize(self.bytes.len() + (4 - body.len() % 4) % 4, 0);
        self.bytes.extend_from_slice(&len.to_le_bytes());
    }

    /// Options, with the end-of-options marker or without it (both are valid).
    fn options(body: &mut Vec<u8>, opts: &[Opt], end_marker: bool) {
        for (code, value) in opts {
            body.extend_from_slice(&code.to_le_bytes());
            body.extend_from_slice(&u16::try_from(value.len()).unwrap().to_le_bytes());
            body.extend_from_slice(value);
            body.resize(body.len() + (4 - value.len() % 4) % 4, 0);
        }
        if end_marker && !opts.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
    }

    /// A section header (a new section forgets the interfaces of the one before).
    pub fn section(&mut self) -> &mut Self {
        let mut body = vec![];
        body.extend_from_slice(&0x1a2b_3c4d_u32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        self.block(0x0a0d_0d0a, &body);
        self
    }

    /// An interface of `linktype`, stamping in 10^-`tsresol` s.
    pub fn interface(&mut self, linktype: u16, tsresol: u8, end_marker: bool) -> &mut Self {
        let mut body = vec![];
        body.extend_from_slice(&linktype.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        Self::options(&mut body, &[(2, b"eth-or-not"), (9, &[tsresol])], end_marker);
        self.block(1, &body);
        self
    }

    /// An enhanced packet block on interface `iface` stamping in 10^-`tsresol` s, with a
    /// comment option.
    pub fn enhanced(&mut self, iface: u32, tsresol: u8, r: &Record, end_marker: bool) -> &mut Self {
        let units = u128::from(r.ts_ns) * 10u128.pow(u32::from(tsresol)) / 1_000_000_000;
        let units = u64::try_from(units).unwrap();
        let mut body = vec![];
        body.extend_from_slice(&iface.to_le_bytes());
        body.extend_from_slice(&u32::try_from(units >> 32).unwrap().to_le_bytes());
        body.extend_from_slice(&u32::try_from(units & 0xffff_ffff).unwrap().to_le_bytes());
        body.extend_from_slice(&u32::try_from(r.data.len()).unwrap().to_le_bytes());
        body.extend_from_slice(&r.orig_len.to_le_bytes());
        body.extend_from_slice(&r.data);
        body.resize(body.len() + (4 - r.data.len() % 4) % 4, 0);
        Self::options(&mut body, &[(1, b"a comment")], end_marker);
        self.block(6, &body);
        self
    }

    /// A simple packet block (interface 0, no time of its own).
    pub fn simple(&mut self, r: &Record) -> &mut Self {
        let mut body = r.orig_len.to_le_bytes().to_vec();
        body.extend_from_slice(&r.data);
        self.block(3, &body);
        self
    }

    /// The obsolete packet block (type 2), microsecond stamps of interface `iface`.
    pub fn obsolete(&mut self, iface: u16, r: &Record) -> &mut Self {
        let units = r.ts_ns / 1000;
        let mut body = vec![];
        body.extend_from_slice(&iface.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&u32::try_from(units >> 32).unwrap().to_le_bytes());
        body.extend_from_slice(&u32::try_from(units & 0xffff_ffff).unwrap().to_le_bytes());
        body.extend_from_slice(&u32::try_from(r.data.len()).unwrap().to_le_bytes());
        body.extend_from_slice(&r.orig_len.to_le_bytes());
        body.extend_from_slice(&r.data);
        self.block(2, &body);
        self
    }

    /// A custom block (copiable, private enterprise number 32473, the documentation one).
    pub fn custom(&mut self) -> &mut Self {
        let mut body = 32_473u32.to_le_bytes().to_vec();
        body.extend_from_slice(b"custom data");
        self.block(0x0000_0bad, &body);
        self
    }

    /// An interface statistics block for interface 0 (no packets in it).
    pub fn statistics(&mut self) -> &mut Self {
        self.block(5, &[0; 12]);
        self
    }
}

/// Ethernet frames re-framed for other link types (their link-layer header replaced).
pub mod relink {
    fn ethertype(eth: &[u8]) -> [u8; 2] {
        [eth[12], eth[13]]
    }

    /// Linux cooked capture v1 (`LINKTYPE_LINUX_SLL`, 113).
    #[must_use]
    pub fn sll(eth: &[u8]) -> Vec<u8> {
        let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        f.extend_from_slice(&ethertype(eth));
        f.extend_from_slice(&eth[14..]);
        f
    }

    /// Linux cooked capture v2 (`LINKTYPE_LINUX_SLL2`, 276).
    #[must_use]
    pub fn sll2(eth: &[u8]) -> Vec<u8> {
        let mut f = ethertype(eth).to_vec();
        f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        f.extend_from_slice(&eth[14..]);
        f
    }

    /// Raw IP (`LINKTYPE_RAW`, 101).
    #[must_use]
    pub fn raw(eth: &[u8]) -> Vec<u8> {
        eth[14..].to_vec()
    }

    /// BSD loopback: the address family in host order (`DLT_NULL`, 0, little-endian here)
    /// or in network order (`DLT_LOOP`, 108); `AF_INET6` as the BSDs number it (24).
    #[must_use]
    pub fn loopback(eth: &[u8], network_order: bool) -> Vec<u8> {
        let family: u32 = if ethertype(eth) == [0x86, 0xdd] { 24 } else { 2 };
        let mut f = if network_order { family.to_be_bytes() } else { family.to_le_bytes() }.to_vec();
        f.extend_from_slice(&eth[14..]);
        f
    }
}
