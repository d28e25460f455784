//! The first bytes of an application message, where a DATA or I-DATA chunk begins one (its
//! B bit): which protocol by the chunk's PPID (PPID 0: by the port), and what the message
//! is. Every read is bounded by the chunk's user data and by fixed walk limits, so the
//! kernel can run it as the host does.
//!
//! Layouts, as their specifications give them:
//! - S1AP (TS 36.413), NGAP (TS 38.413), X2AP (TS 36.423), XnAP (TS 38.423), E1AP
//!   (TS 37.483): the PDU is an extensible CHOICE of three (initiatingMessage,
//!   successfulOutcome, unsuccessfulOutcome) in aligned PER: the first octet holds the
//!   extension bit (bit 7) and the index (bits 6-5), the second the procedure code
//!   (INTEGER 0..255, octet-aligned).
//! - F1AP (TS 38.473): a CHOICE of four without an extension marker (the fourth is
//!   `choice-extension`): the index is bits 7-6; the procedure code follows likewise.
//! - Diameter (RFC 6733 3, 4): version 1, a 24-bit length, flags (R, P, E, T), a 24-bit
//!   command code, the application id, hop-by-hop and end-to-end ids, then AVPs (code,
//!   flags with V, a 24-bit length without padding, the vendor id when V is set). An
//!   answer's Result-Code (268) or Experimental-Result (297) with its
//!   Experimental-Result-Code (298) is found by a bounded walk.
//! - M3UA (RFC 4666 3.1), SUA (RFC 3868 3.1), M2UA (RFC 3331 3.1), M2PA (RFC 4165 2.1):
//!   version 1, a spare octet, the message class and type, a 32-bit length. M3UA DATA
//!   (class 1, type 1) carries the Protocol Data parameter (0x0210: OPC, DPC, SI, NI, MP,
//!   SLS) whose service indicator is found by a bounded walk over the parameters.
//! - SGsAP (TS 29.118, port 29118 with PPID 0): the first octet is the message type.

use super::Packet;

// Every read's offset goes through `Packet::launder`: in the kernel, an offset computed
// from another that was bounds-checked may reach the read as a pointer the verifier no
// longer knows the bounds of.

/// PPIDs (IANA's SCTP Payload Protocol Identifiers) of the protocols read here.
pub mod ppid {
    pub const M2UA: u32 = 2;
    pub const M3UA: u32 = 3;
    pub const SUA: u32 = 4;
    pub const M2PA: u32 = 5;
    pub const S1AP: u32 = 18;
    pub const X2AP: u32 = 27;
    pub const DIAMETER: u32 = 46;
    pub const DIAMETER_DTLS: u32 = 47;
    pub const NGAP: u32 = 60;
    pub const XNAP: u32 = 61;
    pub const F1AP: u32 = 62;
    pub const E1AP: u32 = 64;
    pub const NGAP_DTLS: u32 = 66;
    pub const XNAP_DTLS: u32 = 67;
    pub const F1AP_DTLS: u32 = 68;
    pub const E1AP_DTLS: u32 = 69;
}

/// The protocols' registered SCTP ports, for chunks that carry PPID 0 ("unspecified"):
/// SGsAP has no PPID of its own, and Diameter peers often send 0 (RFC 6733 asks for 46).
pub mod port {
    pub const DIAMETER: u16 = 3868;
    pub const S1AP: u16 = 36412;
    pub const X2AP: u16 = 36422;
    pub const NGAP: u16 = 38412;
    pub const XNAP: u16 = 38422;
    pub const E1AP: u16 = 38462;
    pub const F1AP: u16 = 38472;
    pub const M2UA: u16 = 2904;
    pub const M3UA: u16 = 2905;
    pub const M2PA: u16 = 3565;
    pub const SUA: u16 = 14001;
    pub const SGSAP: u16 = 29118;
}

/// AVPs walked in a Diameter message, and inside one Experimental-Result.
pub const MAX_AVPS: usize = 16;
/// Parameters walked in an M3UA DATA message.
pub const MAX_PARAMETERS: usize = 8;

/// The protocols whose messages are told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Protocol {
    Ngap = 1,
    S1ap = 2,
    X2ap = 3,
    Xnap = 4,
    F1ap = 5,
    E1ap = 6,
    Diameter = 7,
    M3ua = 8,
    Sua = 9,
    M2ua = 10,
    M2pa = 11,
    SgsAp = 12,
    /// Any of the above over DTLS (PPIDs 47, 66-69): counted, never read.
    Dtls = 13,
}

impl Protocol {
    pub const ALL: [Protocol; 13] = [
        Self::Ngap,
        Self::S1ap,
        Self::X2ap,
        Self::Xnap,
        Self::F1ap,
        Self::E1ap,
        Self::Diameter,
        Self::M3ua,
        Self::Sua,
        Self::M2ua,
        Self::M2pa,
        Self::SgsAp,
        Self::Dtls,
    ];

    /// The protocol numbered `n` (its `repr`).
    #[inline(always)]
    #[must_use]
    pub fn from_number(n: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| *p as u8 == n)
    }

    /// The protocol of a chunk's messages, by its PPID, or with PPID 0 by the registered
    /// port at either end; `None` for the rest.
    #[must_use]
    pub fn of(ppid: u32, src_port: u16, dst_port: u16) -> Option<Self> {
        if ppid == 0 {
            return Self::by_port(dst_port).or_else(|| Self::by_port(src_port));
        }
        Some(match ppid {
            ppid::NGAP => Self::Ngap,
            ppid::S1AP => Self::S1ap,
            ppid::X2AP => Self::X2ap,
            ppid::XNAP => Self::Xnap,
            ppid::F1AP => Self::F1ap,
            ppid::E1AP => Self::E1ap,
            ppid::DIAMETER => Self::Diameter,
            ppid::M3UA => Self::M3ua,
            ppid::SUA => Self::Sua,
            ppid::M2UA => Self::M2ua,
            ppid::M2PA => Self::M2pa,
            ppid::DIAMETER_DTLS | ppid::NGAP_DTLS | ppid::XNAP_DTLS | ppid::F1AP_DTLS | ppid::E1AP_DTLS => Self::Dtls,
            _ => return None,
        })
    }

    #[must_use]
    fn by_port(p: u16) -> Option<Self> {
        Some(match p {
            port::DIAMETER => Self::Diameter,
            port::S1AP => Self::S1ap,
            port::X2AP => Self::X2ap,
            port::NGAP => Self::Ngap,
            port::XNAP => Self::Xnap,
            port::E1AP => Self::E1ap,
            port::F1AP => Self::F1ap,
            port::M2UA => Self::M2ua,
            port::M3UA => Self::M3ua,
            port::M2PA => Self::M2pa,
            port::SUA => Self::Sua,
            port::SGSAP => Self::SgsAp,
            _ => return None,
        })
    }

    /// The name the contract's JSON uses.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ngap => "NGAP",
            Self::S1ap => "S1AP",
            Self::X2ap => "X2AP",
            Self::Xnap => "XnAP",
            Self::F1ap => "F1AP",
            Self::E1ap => "E1AP",
            Self::Diameter => "Diameter",
            Self::M3ua => "M3UA",
            Self::Sua => "SUA",
            Self::M2ua => "M2UA",
            Self::M2pa => "M2PA",
            Self::SgsAp => "SGsAP",
            Self::Dtls => "DTLS",
        }
    }
}

/// What kind of message: the AP protocols' three outcomes, Diameter's two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    Initiating = 0,
    Successful = 1,
    Unsuccessful = 2,
    Request = 3,
    Answer = 4,
    /// Protocols without kinds (the SIGTRAN adaptation layers, SGsAP, DTLS).
    Message = 5,
}

impl Kind {
    pub const ALL: [Kind; 6] =
        [Self::Initiating, Self::Successful, Self::Unsuccessful, Self::Request, Self::Answer, Self::Message];

    /// The kind numbered `n` (its `repr`).
    #[must_use]
    pub fn from_number(n: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| *k as u8 == n)
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Initiating => "initiating",
            Self::Successful => "successful",
            Self::Unsuccessful => "unsuccessful",
            Self::Request => "request",
            Self::Answer => "answer",
            Self::Message => "message",
        }
    }
}

/// One message's first bytes, read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The procedure code (AP protocols), the command code (Diameter), the message class
    /// times 256 plus the type (SIGTRAN), the message type (SGsAP); 0 for DTLS.
    pub code: u32,
    /// Diameter: the application id.
    pub application: u32,
    /// Diameter: the hop-by-hop and end-to-end identifiers.
    pub hop_by_hop: u32,
    pub end_to_end: u32,
    /// Diameter answers: the Result-Code or the Experimental-Result-Code found (0: none).
    pub result: u32,
    /// M3UA DATA: the service indicator of its Protocol Data (None: not found).
    pub service_indicator: Option<u8>,
}

/// Why a message could not be read: counted by reason, never misread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Malformed {
    /// Fewer bytes than its header.
    TooShort,
    /// A version this reader does not know (Diameter and SIGTRAN: 1).
    UnknownVersion,
    /// An AP PDU whose CHOICE is an extension or out of range.
    UnknownChoice,
    /// A length field below its header's size.
    BadLength,
}

impl Malformed {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::TooShort => "too_short",
            Self::UnknownVersion => "unknown_version",
            Self::UnknownChoice => "unknown_choice",
            Self::BadLength => "bad_length",
        }
    }
}

/// Reads the message of `protocol` whose `len` bytes of user data start at `off` in `pkt`
/// (fewer may be present: a message cut by the capture or fragmented reads what is there).
///
/// # Errors
/// Why the message cannot be read.
#[inline(always)]
pub fn read<P: Packet + ?Sized>(
    pkt: &P,
    off: usize,
    len: usize,
    protocol: Protocol,
) -> Result<(Kind, Message), Malformed> {
    let (kind, mut m, walk) = head(pkt, off, len, protocol)?;
    if let Some(mut walk) = walk {
        for _ in 0..ResultWalk::MAX_STEPS {
            if let Some(r) = walk.step(pkt) {
                m.result = r;
                break;
            }
        }
    }
    Ok((kind, m))
}

/// [`read`] but for a Diameter answer's Result-Code: the message's header, and for an
/// answer the walk that finds its result (see [`ResultWalk`]).
///
/// # Errors
/// Why the message cannot be read.
#[inline(always)]
pub fn head<P: Packet + ?Sized>(
    pkt: &P,
    off: usize,
    len: usize,
    protocol: Protocol,
) -> Result<(Kind, Message, Option<ResultWalk>), Malformed> {
    let (kind, m) = match protocol {
        Protocol::Ngap | Protocol::S1ap | Protocol::X2ap | Protocol::Xnap | Protocol::E1ap => ap(pkt, off, len, false),
        Protocol::F1ap => ap(pkt, off, len, true),
        Protocol::Diameter => return diameter(pkt, off, len),
        Protocol::M3ua | Protocol::Sua | Protocol::M2ua | Protocol::M2pa => sigtran(pkt, off, len, protocol),
        Protocol::SgsAp => {
            let b = bytes::<1, P>(pkt, off, len)?;
            Ok((Kind::Message, Message { code: u32::from(b[0]), ..Message::default() }))
        }
        Protocol::Dtls => Ok((Kind::Message, Message::default())),
    }?;
    Ok((kind, m, None))
}

/// `N` bytes at `off`, when the message's `len` bytes hold them and the packet has them.
#[inline(always)]
fn bytes<const N: usize, P: Packet + ?Sized>(pkt: &P, off: usize, len: usize) -> Result<[u8; N], Malformed> {
    if len < N {
        return Err(Malformed::TooShort);
    }
    pkt.read::<N>(pkt.launder(off)).map(|b| b.0).ok_or(Malformed::TooShort)
}

/// An AP protocol's PDU: its kind by the CHOICE index, its procedure code.
#[inline(always)]
fn ap<P: Packet + ?Sized>(pkt: &P, off: usize, len: usize, four_way: bool) -> Result<(Kind, Message), Malformed> {
    let [first, procedure] = bytes::<2, P>(pkt, off, len)?;
    // F1AP: no extension bit, the index in bits 7-6 (3: choice-extension). The others: the
    // extension bit 7 (set: an alternative added after the version read here), the index
    // in bits 6-5 (3: none).
    let index = if four_way {
        first >> 6
    } else if first & 0x80 != 0 {
        return Err(Malformed::UnknownChoice);
    } else {
        (first >> 5) & 0x3
    };
    let kind = match index {
        0 => Kind::Initiating,
        1 => Kind::Successful,
        2 => Kind::Unsuccessful,
        _ => return Err(Malformed::UnknownChoice),
    };
    Ok((kind, Message { code: u32::from(procedure), ..Message::default() }))
}

/// Diameter's header (20 bytes).
const DIAMETER_HEADER: usize = 20;
/// Diameter's AVP codes read in answers.
const RESULT_CODE: u32 = 268;
const EXPERIMENTAL_RESULT: u32 = 297;
const EXPERIMENTAL_RESULT_CODE: u32 = 298;
/// The AVP flag saying a vendor id follows the length.
const AVP_VENDOR: u8 = 0x80;

#[inline(always)]
fn diameter<P: Packet + ?Sized>(
    pkt: &P,
    off: usize,
    len: usize,
) -> Result<(Kind, Message, Option<ResultWalk>), Malformed> {
    let h = bytes::<DIAMETER_HEADER, P>(pkt, off, len)?;
    if h[0] != 1 {
        return Err(Malformed::UnknownVersion);
    }
    let length = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
    if length < DIAMETER_HEADER {
        return Err(Malformed::BadLength);
    }
    let be32 = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let request = h[4] & 0x80 != 0;
    let m = Message {
        code: be32(4) & 0x00ff_ffff,
        application: be32(8),
        hop_by_hop: be32(12),
        end_to_end: be32(16),
        ..Message::default()
    };
    if request {
        return Ok((Kind::Request, m, None));
    }
    // The AVPs within both the message's length and the bytes carried.
    Ok((Kind::Answer, m, Some(ResultWalk::new(off + DIAMETER_HEADER, off + length.min(len)))))
}

/// An AVP's code, flags, the offset of its data and the offset of the next AVP.
#[inline(always)]
fn avp<P: Packet + ?Sized>(pkt: &P, at: usize, end: usize) -> Option<(u32, usize, usize)> {
    if at + 8 > end {
        return None;
    }
    let h = pkt.read::<8>(pkt.launder(at))?;
    let code = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let length = usize::from(h[5]) << 16 | usize::from(h[6]) << 8 | usize::from(h[7]);
    let header = if h[4] & AVP_VENDOR != 0 { 12 } else { 8 };
    if length < header {
        return None;
    }
    Some((code, at + header, at + length.next_multiple_of(4)))
}

/// The walk over a Diameter answer's AVPs to its first Result-Code, or the
/// Experimental-Result-Code inside an Experimental-Result: at most [`MAX_AVPS`] AVPs, and
/// as many inside each Experimental-Result. One AVP a step: the kernel takes a few in each
/// step of the one loop that walks the chunks (a whole walk inside that loop's step costs
/// its verifier more than its budget), the host runs them as a loop of its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResultWalk {
    /// The next AVP, and the end of the AVPs walked (the message's, or the
    /// Experimental-Result's).
    pub at: usize,
    pub end: usize,
    /// Inside an Experimental-Result: the AVP after it and the message's end (0: outside).
    pub resume: usize,
    pub outer_end: usize,
    /// AVPs left to walk outside, and inside the Experimental-Result.
    pub outer_left: usize,
    pub inner_left: usize,
}

impl ResultWalk {
    /// Steps a whole walk takes at most: each outer AVP, each inner one, and a step to
    /// leave each Experimental-Result.
    pub const MAX_STEPS: usize = MAX_AVPS * (MAX_AVPS + 2);

    /// A walk over the AVPs from `at` to `end`.
    #[inline(always)]
    #[must_use]
    pub fn new(at: usize, end: usize) -> Self {
        Self { at, end, resume: 0, outer_end: 0, outer_left: MAX_AVPS, inner_left: 0 }
    }

    /// Up to three steps: one of the kernel's tally. Written out, as a loop of three stays a
    /// loop in the kernel's code, which measured dearer (1.24 times a DATA chunk not read
    /// for the bench's answer, against 1.19).
    #[inline(always)]
    pub fn three_steps<P: Packet + ?Sized>(&mut self, pkt: &P) -> Option<u32> {
        self.step(pkt).or_else(|| self.step(pkt)).or_else(|| self.step(pkt))
    }

    /// One step: the result when the walk ends (0: none found), `None` while it goes on.
    #[inline(always)]
    pub fn step<P: Packet + ?Sized>(&mut self, pkt: &P) -> Option<u32> {
        if self.resume != 0 {
            let found = if self.inner_left == 0 { None } else { avp(pkt, self.at, self.end) };
            let Some((code, data, after)) = found else {
                // Out of the Experimental-Result: on with the AVP after it.
                (self.at, self.end, self.resume) = (self.resume, self.outer_end, 0);
                return None;
            };
            if code == EXPERIMENTAL_RESULT_CODE {
                return Some(value32(pkt, data, self.end));
            }
            self.inner_left -= 1;
            self.at = after;
            return None;
        }
        if self.outer_left == 0 {
            return Some(0);
        }
        self.outer_left -= 1;
        let Some((code, data, next)) = avp(pkt, self.at, self.end) else {
            return Some(0);
        };
        match code {
            RESULT_CODE => return Some(value32(pkt, data, self.end)),
            EXPERIMENTAL_RESULT => {
                (self.resume, self.outer_end) = (next, self.end);
                (self.at, self.end, self.inner_left) = (data, next.min(self.end), MAX_AVPS);
            }
            _ => self.at = next,
        }
        None
    }
}

/// A 32-bit AVP value at `at`, when it ends by `end` (0 otherwise).
#[inline(always)]
fn value32<P: Packet + ?Sized>(pkt: &P, at: usize, end: usize) -> u32 {
    if at + 4 > end {
        return 0;
    }
    pkt.be32_at(pkt.launder(at)).unwrap_or(0)
}

/// The SIGTRAN common header (8 bytes), and M3UA DATA's parameters' tag for Protocol Data.
const SIGTRAN_HEADER: usize = 8;
const PROTOCOL_DATA: u16 = 0x0210;
/// M3UA's Transfer class and its DATA message.
const M3UA_TRANSFER: u8 = 1;
const M3UA_DATA: u8 = 1;

#[inline(always)]
fn sigtran<P: Packet + ?Sized>(
    pkt: &P,
    off: usize,
    len: usize,
    protocol: Protocol,
) -> Result<(Kind, Message), Malformed> {
    let h = bytes::<SIGTRAN_HEADER, P>(pkt, off, len)?;
    if h[0] != 1 {
        return Err(Malformed::UnknownVersion);
    }
    let length = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if length < SIGTRAN_HEADER {
        return Err(Malformed::BadLength);
    }
    let (class, ty) = (h[2], h[3]);
    let mut m = Message { code: u32::from(class) << 8 | u32::from(ty), ..Message::default() };
    if protocol == Protocol::M3ua && class == M3UA_TRANSFER && ty == M3UA_DATA {
        m.service_indicator = service_indicator(pkt, off + SIGTRAN_HEADER, off + length.min(len));
    }
    Ok((Kind::Message, m))
}

/// The service indicator of the Protocol Data parameter among the parameters from `at` to
/// `end` (within [`MAX_PARAMETERS`]): the ninth byte of its value.
#[inline(always)]
fn service_indicator<P: Packet + ?Sized>(pkt: &P, mut at: usize, end: usize) -> Option<u8> {
    for _ in 0..MAX_PARAMETERS {
        if at + 4 > end {
            return None;
        }
        let h = pkt.read::<4>(pkt.launder(at))?;
        let (tag, length) = (u16::from_be_bytes([h[0], h[1]]), usize::from(u16::from_be_bytes([h[2], h[3]])));
        if length < 4 {
            return None;
        }
        if tag == PROTOCOL_DATA {
            let si = at + 4 + 8;
            return (si < end && length > 12).then(|| pkt.read::<1>(pkt.launder(si)).map(|b| b[0])).flatten();
        }
        at += length.next_multiple_of(4);
    }
    None
}

#[cfg(test)]
mod tests {
    use alloc::{vec, vec::Vec};

    use super::*;

    fn read_all(bytes: &[u8], protocol: Protocol) -> Result<(Kind, Message), Malformed> {
        read(bytes, 0, bytes.len(), protocol)
    }

    /// A Diameter message with the identifiers the tests read back.
    fn diameter_message(request: bool, command: u32, app: u32, avps: &[(u32, u8, Vec<u8>)]) -> Vec<u8> {
        crate::builder::app::diameter(request, command, app, (0x1111_2222, 0x3333_4444), avps)
    }

    #[test]
    fn an_ap_pdu_gives_its_outcome_and_procedure() {
        // NGSetupRequest (procedure 21), its response, its failure.
        for (first, kind) in [(0x00, Kind::Initiating), (0x20, Kind::Successful), (0x40, Kind::Unsuccessful)] {
            let (k, m) = read_all(&[first, 21, 0x00, 0x10], Protocol::Ngap).unwrap();
            assert_eq!((k, m.code), (kind, 21));
        }
        assert_eq!(read_all(&[0x60, 21], Protocol::S1ap), Err(Malformed::UnknownChoice), "index 3");
        assert_eq!(read_all(&[0x80, 21], Protocol::S1ap), Err(Malformed::UnknownChoice), "an extension");
        assert_eq!(read_all(&[0x00], Protocol::X2ap), Err(Malformed::TooShort));
        // F1AP: the index in bits 7-6, the fourth a choice-extension.
        assert_eq!(read_all(&[0x40, 1], Protocol::F1ap).unwrap().0, Kind::Successful);
        assert_eq!(read_all(&[0x80, 1], Protocol::F1ap).unwrap().0, Kind::Unsuccessful);
        assert_eq!(read_all(&[0xc0, 1], Protocol::F1ap), Err(Malformed::UnknownChoice));
    }

    #[test]
    fn a_diameter_answer_gives_its_result_code_plain_or_experimental() {
        let session = (263, 0x40, b"host;1;2".to_vec());
        let origin = (264, 0x40, b"hss.example".to_vec());
        let ula = diameter_message(
            false,
            316,
            16_777_251,
            &[session.clone(), origin.clone(), (268, 0x40, 2001u32.to_be_bytes().to_vec())],
        );
        let (k, m) = read_all(&ula, Protocol::Diameter).unwrap();
        assert_eq!((k, m.code, m.application, m.result), (Kind::Answer, 316, 16_777_251, 2001));
        assert_eq!((m.hop_by_hop, m.end_to_end), (0x1111_2222, 0x3333_4444));
        let mut grouped = Vec::new();
        grouped.extend_from_slice(&[0, 0, 1, 10, 0x40, 0, 0, 12]);
        grouped.extend_from_slice(&10415u32.to_be_bytes());
        grouped.extend_from_slice(&[0, 0, 1, 42, 0x40, 0, 0, 12]);
        grouped.extend_from_slice(&5001u32.to_be_bytes());
        let air = diameter_message(false, 318, 16_777_251, &[session.clone(), (297, 0x40, grouped)]);
        assert_eq!(read_all(&air, Protocol::Diameter).unwrap().1.result, 5001);
        let request = diameter_message(true, 316, 16_777_251, core::slice::from_ref(&session));
        assert_eq!(read_all(&request, Protocol::Diameter).unwrap().0, Kind::Request);
        // No Result-Code within the walk's bound, or cut before it: none, never a misread.
        let many: Vec<_> =
            (0..20).map(|_| origin.clone()).chain([(268, 0x40, 2001u32.to_be_bytes().to_vec())]).collect();
        assert_eq!(read_all(&diameter_message(false, 316, 0, &many), Protocol::Diameter).unwrap().1.result, 0);
        assert_eq!(read(&ula[..], 0, ula.len() - 2, Protocol::Diameter).unwrap().1.result, 0, "cut in the value");
        // A lying AVP length (shorter than its header) stops the walk.
        let mut lying = ula.clone();
        lying[DIAMETER_HEADER + 7] = 4;
        assert_eq!(read_all(&lying, Protocol::Diameter).unwrap().1.result, 0);
        let mut v2 = ula;
        v2[0] = 2;
        assert_eq!(read_all(&v2, Protocol::Diameter), Err(Malformed::UnknownVersion));
        assert_eq!(read_all(&[1, 0, 0, 20], Protocol::Diameter), Err(Malformed::TooShort));
    }

    #[test]
    fn m3ua_data_gives_its_service_indicator_after_a_routing_context() {
        let mut m = vec![1, 0, 1, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[0x00, 0x06, 0x00, 0x08, 0, 0, 0, 7]); // Routing Context
        m.extend_from_slice(&[0x02, 0x10, 0x00, 0x11]); // Protocol Data, 13 bytes of value
        m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 5, 2, 0, 9, 0xaa, 0, 0, 0]);
        let len = u32::try_from(m.len()).unwrap();
        m[4..8].copy_from_slice(&len.to_be_bytes());
        let (k, msg) = read_all(&m, Protocol::M3ua).unwrap();
        assert_eq!((k, msg.code, msg.service_indicator), (Kind::Message, 0x0101, Some(5)));
        assert_eq!(read_all(&m[..20], Protocol::M3ua).unwrap().1.service_indicator, None, "cut short");
        // ASP Up (class 3, type 1).
        assert_eq!(read_all(&[1, 0, 3, 1, 0, 0, 0, 8], Protocol::M3ua).unwrap().1.code, 0x0301);
        assert_eq!(read_all(&[1, 0, 3, 1, 0, 0, 0, 4], Protocol::M3ua), Err(Malformed::BadLength));
        assert_eq!(read_all(&[2, 0, 3, 1, 0, 0, 0, 8], Protocol::Sua), Err(Malformed::UnknownVersion));
    }

    #[test]
    fn protocols_by_ppid_and_with_ppid_0_by_port() {
        assert_eq!(Protocol::of(60, 1, 38412), Some(Protocol::Ngap));
        assert_eq!(Protocol::of(0, 29118, 5), Some(Protocol::SgsAp));
        assert_eq!(Protocol::of(0, 40000, 3868), Some(Protocol::Diameter), "PPID 0: by the port");
        assert_eq!(Protocol::of(46, 40000, 36412), Some(Protocol::Diameter), "the PPID first");
        assert_eq!(Protocol::of(0, 5, 6), None);
        assert_eq!(Protocol::of(66, 5, 6), Some(Protocol::Dtls));
        assert_eq!(Protocol::of(99, 5, 6), None);
    }

    /// Every prefix of every message, and every byte changed: a result or a reason, never a
    /// panic or a read past the message.
    #[test]
    fn cut_and_mutated_messages_never_read_past_their_bytes() {
        let ula = diameter_message(false, 316, 16_777_251, &[(268, 0x40, 2001u32.to_be_bytes().to_vec())]);
        let m3ua = [1, 0, 1, 1, 0, 0, 0, 28, 0x02, 0x10, 0x00, 0x11, 0, 0, 0, 1, 0, 0, 0, 2, 5, 2, 0, 9, 0xaa, 0, 0, 0];
        for (bytes, protocol) in
            [(&ula[..], Protocol::Diameter), (&m3ua[..], Protocol::M3ua), (&[0x20, 21][..], Protocol::Ngap)]
        {
            for cut in 0..=bytes.len() {
                let _ = read(&bytes[..cut], 0, cut, protocol);
                let _ = read(bytes, 0, cut, protocol);
            }
            for i in 0..bytes.len() {
                for v in [0, 1, 0x7f, 0x80, 0xff] {
                    let mut b = bytes.to_vec();
                    b[i] = v;
                    let _ = read(&b[..], 0, b.len(), protocol);
                }
            }
        }
    }
}
