//! Packets built by our own code, field by field: for the fixture table and tests, and
//! for the commands that send or measure crafted packets (`flood`, `bench`).
#![expect(
    clippy::cast_possible_truncation,
    reason = "crafted packets: values are cut to their wire fields as the wire would, so \
              tests can build packets whose lengths lie"
)]

use alloc::{vec, vec::Vec};

use crate::proto::{
    chunk::{flag, ty},
    ETH_P_8021Q, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_SCTP,
};

/// One SCTP chunk: type, flags and the value after the 4-byte chunk header.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub chunk_type: u8,
    pub flags: u8,
    pub value: Vec<u8>,
    /// Overrides the length field (for malformed chunks).
    pub length: Option<u16>,
}

impl Chunk {
    #[must_use]
    pub fn new(chunk_type: u8, flags: u8, value: Vec<u8>) -> Self {
        Self { chunk_type, flags, value, length: None }
    }

    /// DATA with B and E set (a whole message) and `payload` bytes of user data.
    #[must_use]
    pub fn data(tsn: u32, stream: u16, ssn: u16, ppid: u32, payload: usize) -> Self {
        Self::data_flags(flag::BEGIN | flag::END, tsn, stream, ssn, ppid, payload)
    }

    #[must_use]
    pub fn data_flags(flags: u8, tsn: u32, stream: u16, ssn: u16, ppid: u32, payload: usize) -> Self {
        let mut v = Vec::new();
        v.extend_from_slice(&tsn.to_be_bytes());
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(&ssn.to_be_bytes());
        v.extend_from_slice(&ppid.to_be_bytes());
        v.extend((0..payload).map(|i| i as u8));
        Self::new(ty::DATA, flags, v)
    }

    /// DATA with B and E set carrying `message` as its user data.
    #[must_use]
    pub fn message(tsn: u32, ppid: u32, message: &[u8]) -> Self {
        let mut c = Self::data(tsn, 0, 0, ppid, 0);
        c.value.extend_from_slice(message);
        c
    }

    /// I-DATA (RFC 8260) carrying a whole message.
    #[must_use]
    pub fn idata(tsn: u32, stream: u16, mid: u32, ppid: u32, payload: usize) -> Self {
        let mut v = Vec::new();
        v.extend_from_slice(&tsn.to_be_bytes());
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&mid.to_be_bytes());
        v.extend_from_slice(&ppid.to_be_bytes());
        v.extend((0..payload).map(|i| i as u8));
        Self::new(ty::I_DATA, flag::BEGIN | flag::END, v)
    }

    /// INIT or INIT-ACK with the fixed fields only.
    #[must_use]
    pub fn init(chunk_type: u8, tag: u32, a_rwnd: u32, os: u16, mis: u16, tsn: u32) -> Self {
        let mut v = Vec::new();
        v.extend_from_slice(&tag.to_be_bytes());
        v.extend_from_slice(&a_rwnd.to_be_bytes());
        v.extend_from_slice(&os.to_be_bytes());
        v.extend_from_slice(&mis.to_be_bytes());
        v.extend_from_slice(&tsn.to_be_bytes());
        Self::new(chunk_type, 0, v)
    }

    /// SACK with `gaps` gap blocks and `dups` duplicate TSNs.
    #[must_use]
    pub fn sack(cum_tsn: u32, a_rwnd: u32, gaps: u16, dups: u16) -> Self {
        let mut v = Vec::new();
        v.extend_from_slice(&cum_tsn.to_be_bytes());
        v.extend_from_slice(&a_rwnd.to_be_bytes());
        v.extend_from_slice(&gaps.to_be_bytes());
        v.extend_from_slice(&dups.to_be_bytes());
        for g in 0..gaps {
            v.extend_from_slice(&(2 * g + 2).to_be_bytes());
            v.extend_from_slice(&(2 * g + 2).to_be_bytes());
        }
        for d in 0..u32::from(dups) {
            v.extend_from_slice(&(cum_tsn.wrapping_sub(d)).to_be_bytes());
        }
        Self::new(ty::SACK, 0, v)
    }

    #[must_use]
    pub fn with_length(mut self, length: u16) -> Self {
        self.length = Some(length);
        self
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let len = self.length.unwrap_or((4 + self.value.len()) as u16);
        out.extend_from_slice(&[self.chunk_type, self.flags]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.value);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
}

/// The IP layer of a built packet.
#[derive(Clone, Copy, Debug)]
pub enum Ip {
    V4 { src: [u8; 4], dst: [u8; 4] },
    V6 { src: [u8; 16], dst: [u8; 16] },
}

/// 198.18.0.1 -> 198.18.0.2: the benchmarking range, never routed.
pub const V4: Ip = Ip::V4 { src: [198, 18, 0, 1], dst: [198, 18, 0, 2] };
/// `2001:db8::1` -> `2001:db8::2`.
pub const V6: Ip = Ip::V6 {
    src: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    dst: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
};

/// An Ethernet frame carrying an SCTP packet, built field by field.
#[derive(Clone, Debug)]
pub struct SctpPacket {
    pub ip: Ip,
    pub vlans: Vec<u16>,
    pub src_port: u16,
    pub dst_port: u16,
    pub vtag: u32,
    pub chunks: Vec<Chunk>,
    /// IPv4 option bytes (a multiple of 4).
    pub ipv4_options: Vec<u8>,
    /// IPv6 extension headers as (next-header number, whole header bytes).
    pub ipv6_ext: Vec<(u8, Vec<u8>)>,
    /// IPv4 fragment field (flags and offset), host order.
    pub ipv4_frag: u16,
}

impl SctpPacket {
    #[must_use]
    pub fn new(ip: Ip, vtag: u32, chunks: Vec<Chunk>) -> Self {
        Self {
            ip,
            vlans: Vec::new(),
            src_port: 36412,
            dst_port: 38412,
            vtag,
            chunks,
            ipv4_options: Vec::new(),
            ipv6_ext: Vec::new(),
            ipv4_frag: 0,
        }
    }

    /// The SCTP packet alone (common header and chunks, with its `CRC32c`: a packet that
    /// passes XDP is one the kernel's SCTP accepts).
    #[must_use]
    pub fn sctp_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.src_port.to_be_bytes());
        out.extend_from_slice(&self.dst_port.to_be_bytes());
        out.extend_from_slice(&self.vtag.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        for c in &self.chunks {
            c.encode(&mut out);
        }
        // RFC 9260 appendix A: CRC32c over the packet with the field zero, little-endian.
        let crc = crc32c(&out);
        out[8..12].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The IP packet (header, extensions, SCTP).
    #[must_use]
    pub fn ip_bytes(&self) -> Vec<u8> {
        let sctp = self.sctp_bytes();
        match self.ip {
            Ip::V4 { src, dst } => {
                let ihl = 20 + self.ipv4_options.len();
                let total = (ihl + sctp.len()) as u16;
                let mut h = vec![0x40 | (ihl / 4) as u8, 0];
                h.extend_from_slice(&total.to_be_bytes());
                h.extend_from_slice(&[0, 1]);
                h.extend_from_slice(&self.ipv4_frag.to_be_bytes());
                h.extend_from_slice(&[64, IPPROTO_SCTP, 0, 0]);
                h.extend_from_slice(&src);
                h.extend_from_slice(&dst);
                h.extend_from_slice(&self.ipv4_options);
                let sum = ipv4_checksum(&h);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                h.extend_from_slice(&sctp);
                h
            }
            Ip::V6 { src, dst } => {
                let mut ext = Vec::new();
                let first = self.ipv6_ext.first().map_or(IPPROTO_SCTP, |e| e.0);
                for (i, (_, bytes)) in self.ipv6_ext.iter().enumerate() {
                    let mut b = bytes.clone();
                    b[0] = self.ipv6_ext.get(i + 1).map_or(IPPROTO_SCTP, |e| e.0);
                    ext.extend_from_slice(&b);
                }
                let payload = (ext.len() + sctp.len()) as u16;
                let mut h = vec![0x60, 0, 0, 0];
                h.extend_from_slice(&payload.to_be_bytes());
                h.extend_from_slice(&[first, 64]);
                h.extend_from_slice(&src);
                h.extend_from_slice(&dst);
                h.extend_from_slice(&ext);
                h.extend_from_slice(&sctp);
                h
            }
        }
    }

    /// The whole Ethernet frame.
    #[must_use]
    pub fn frame(&self) -> Vec<u8> {
        let ethertype: u16 = match self.ip {
            Ip::V4 { .. } => ETH_P_IPV4,
            Ip::V6 { .. } => ETH_P_IPV6,
        };
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        for vid in &self.vlans {
            f.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&self.ip_bytes());
        f
    }
}

/// `CRC32c` (Castagnoli), the SCTP checksum (RFC 9260 appendix A).
fn crc32c(data: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(data)
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Application messages, as their specifications lay them out (see `parse::message`).
pub mod app {
    use alloc::{vec, vec::Vec};

    /// An AP protocol's PDU (NGAP, S1AP, ...): the CHOICE index (0 initiating, 1
    /// successful, 2 unsuccessful), the procedure code, a criticality and an empty value.
    #[must_use]
    pub fn ap(index: u8, procedure: u8) -> Vec<u8> {
        vec![index << 5, procedure, 0x00, 0x02, 0x00, 0x00]
    }

    /// A Diameter AVP: code, flags (0x80: a vendor id, 10415, follows) and data.
    pub type Avp = (u32, u8, Vec<u8>);

    /// A Diameter AVP of one 32-bit value (Result-Code and the like).
    #[must_use]
    pub fn avp_u32(code: u32, value: u32) -> Avp {
        (code, 0x40, value.to_be_bytes().to_vec())
    }

    /// A Diameter message: the header, then `avps`, each padded to 4 bytes.
    #[must_use]
    pub fn diameter(request: bool, command: u32, application: u32, ids: (u32, u32), avps: &[Avp]) -> Vec<u8> {
        let mut body = Vec::new();
        for (code, flags, data) in avps {
            let header = if flags & 0x80 != 0 { 12 } else { 8 };
            body.extend_from_slice(&code.to_be_bytes());
            body.push(*flags);
            body.extend_from_slice(&((header + data.len()) as u32).to_be_bytes()[1..]);
            if header == 12 {
                body.extend_from_slice(&10415u32.to_be_bytes());
            }
            body.extend_from_slice(data);
            body.resize(body.len().next_multiple_of(4), 0);
        }
        let mut m = vec![1];
        m.extend_from_slice(&((20 + body.len()) as u32).to_be_bytes()[1..]);
        m.push(if request { 0x80 } else { 0 });
        m.extend_from_slice(&command.to_be_bytes()[1..]);
        m.extend_from_slice(&application.to_be_bytes());
        m.extend_from_slice(&ids.0.to_be_bytes());
        m.extend_from_slice(&ids.1.to_be_bytes());
        m.extend_from_slice(&body);
        m
    }

    /// An M3UA DATA message (class 1, type 1): a Routing Context, then the Protocol Data
    /// (OPC 1, DPC 2, the service indicator `si`, NI 2, MP 0, SLS 9, and 3 bytes of user
    /// part).
    #[must_use]
    pub fn m3ua_data(si: u8) -> Vec<u8> {
        let mut m = vec![1, 0, 1, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[0x00, 0x06, 0x00, 0x08, 0, 0, 0, 7]);
        m.extend_from_slice(&[0x02, 0x10, 0x00, 0x13]);
        m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, si, 2, 0, 9, 0xaa, 0xbb, 0xcc, 0]);
        let len = m.len() as u32;
        m[4..8].copy_from_slice(&len.to_be_bytes());
        m
    }
}

/// A frame that is not IP at all (ARP).
#[must_use]
pub fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    f.extend_from_slice(&[0; 28]);
    f
}

#[cfg(test)]
mod tests {
    /// The check value of the CRC-32C catalogue ("123456789").
    #[test]
    fn crc32c_matches_the_catalogue() {
        assert_eq!(super::crc32c(b"123456789"), 0xe306_9283);
    }
}
