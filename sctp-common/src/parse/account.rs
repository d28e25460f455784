//! Accounting one chunk (and the packet's path) into the flow's and the global counters.

use super::{Address, Bytes, DataSink, Packet, SctpLocation, WalkFindings};
use crate::{
    abi::{Counter, DataEvent, FlowStats, GlobalStats, ERROR_CAUSE_BUCKETS, PATH_SLOTS},
    atomic::add,
    proto::chunk::{flag, ty},
};

/// Counts the packet on its path, the slot of the same addresses or the first free one
/// (a new path: its summary goes to user space), and notes the slot for the packet's DATA
/// chunks (`PATH_SLOTS` beyond the slots).
#[inline(always)]
pub(super) fn account_path(
    flow: &mut FlowStats,
    loc: &SctpLocation,
    now_ns: u64,
    ifindex: u32,
    seen: &mut WalkFindings,
) {
    let mut slot = PATH_SLOTS;
    for (i, p) in flow.paths.iter_mut().enumerate() {
        if p.packets == 0 {
            p.src_addr = loc.src_addr;
            p.dst_addr = loc.dst_addr;
            seen.set_summary_wanted(true);
            slot = i;
            break;
        }
        if same_address(&p.src_addr, &loc.src_addr) && same_address(&p.dst_addr, &loc.dst_addr) {
            slot = i;
            break;
        }
    }
    seen.set_path(slot);
    // Read back from memory: the verifier then goes on in one state, not one per slot.
    let Some(p) = flow.paths.get_mut(seen.path()) else {
        add(&mut flow.paths_beyond, 1);
        return;
    };
    add(&mut p.packets, 1);
    add(&mut p.bytes, loc.ip_len);
    p.last_seen_ns = now_ns;
    p.ifindex = ifindex;
}

/// Word by word: an array comparison is a call to `memcmp`, which the bpf target lacks.
#[inline(always)]
pub(super) fn same_address(a: &Address, b: &Address) -> bool {
    a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3]
}

/// Counts a DATA chunk on the packet's path (`slot`, see [`account_path`]), and a switch
/// when the DATA before it went another way.
#[inline(always)]
pub(super) fn data_on_path(flow: &mut FlowStats, slot: usize) {
    let Some(p) = flow.paths.get_mut(slot) else {
        return;
    };
    add(&mut p.data_chunks, 1);
    #[expect(clippy::cast_possible_truncation, reason = "below PATH_SLOTS")]
    let tag = slot as u32 + 1;
    if flow.data_path != tag {
        if flow.data_path != 0 {
            add(&mut flow.data_path_switches, 1);
        }
        flow.data_path = tag;
    }
}

/// A chunk's header fields.
#[derive(Clone, Copy)]
pub(super) struct Chunk {
    pub(super) kind: u8,
    pub(super) flags: u8,
    pub(super) len: usize,
}

/// Reads the fixed fields of the chunk types we keep state for, and writes the words of
/// the chunk's summary (see `ChunkSummary::words`). `data` arrives with the packet's
/// fields filled in; a DATA chunk completes it and hands it to `sink`, and its PPID (if it
/// carries one) to `on_data`. Says whether user space needs the packet's summary for this
/// chunk: for every control chunk, never for DATA and SACK (the flow counts them, and
/// times their round trips: see [`round_trip`]).
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "the parser core takes each map and sink as its own generic argument, so kernel and host bind them differently"
)]
pub(super) fn account_chunk<P: Packet + ?Sized, S: DataSink, D: FnMut(Option<u32>)>(
    pkt: &P,
    off: usize,
    chunk: Chunk,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    data: &mut DataEvent,
    summary_words: &mut [u32; 3],
    sink: &mut S,
    on_data: &mut D,
) -> Result<bool, Counter> {
    let Chunk { kind: chunk_type, flags, len } = chunk;
    let mut wanted = true;
    *summary_words = match chunk_type {
        ty::DATA | ty::I_DATA => {
            let words = account_data(pkt, off, chunk, stats, flow, data, sink, on_data)?;
            // The flow's first DATA: the association table learns the direction carries
            // data (established, if its COOKIE-ACK went unseen).
            wanted = flow.data_chunks == 1;
            words
        }
        ty::SACK => {
            let f = fixed::<P, 16>(pkt, off, len, 16)?;
            let cum_tsn = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
            let a_rwnd = u32::from_be_bytes([f[8], f[9], f[10], f[11]]);
            let (gaps, dups) = (u16::from_be_bytes([f[12], f[13]]), u16::from_be_bytes([f[14], f[15]]));
            let counts = u32::from(gaps) << 16 | u32::from(dups);
            let (gaps, dups) = (u64::from(gaps), u64::from(dups));
            // Each gap block and each duplicate TSN takes 4 bytes after the fixed fields.
            if (gaps + dups) * 4 > (len - 16) as u64 {
                return Err(Counter::ErrChunkCountsBeyondLength);
            }
            let first = flow.sacks == 0;
            wanted = first;
            if a_rwnd == 0 && (first || flow.last_a_rwnd != 0) {
                add(&mut flow.zero_windows, 1);
            }
            flow.a_rwnd_min = if first { a_rwnd } else { flow.a_rwnd_min.min(a_rwnd) };
            flow.last_cum_tsn_ack = cum_tsn;
            flow.last_a_rwnd = a_rwnd;
            add(&mut flow.sacks, 1);
            stats.bump(Counter::SackGapBlocks, gaps);
            stats.bump(Counter::SackDupTsns, dups);
            add(&mut flow.sack_gap_blocks, gaps);
            add(&mut flow.sack_dup_tsns, dups);
            [cum_tsn, a_rwnd, counts]
        }
        ty::INIT | ty::INIT_ACK => {
            let f = fixed::<P, 20>(pkt, off, len, 20)?;
            flow.init_chunk_type = u32::from(chunk_type);
            let words = [
                u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
                u32::from_be_bytes([f[8], f[9], f[10], f[11]]),
                u32::from_be_bytes([f[16], f[17], f[18], f[19]]),
            ];
            [flow.init_tag, flow.init_a_rwnd, flow.init_tsn] = words;
            flow.init_out_streams = u16::from_be_bytes([f[12], f[13]]);
            flow.init_in_streams = u16::from_be_bytes([f[14], f[15]]);
            words
        }
        ty::ABORT | ty::SHUTDOWN_COMPLETE if flags & flag::T_BIT != 0 => {
            add(&mut flow.t_bit_chunks, 1);
            [0; 3]
        }
        // The first cause; an ERROR without one is legal and counts nothing here.
        ty::ERROR if len >= 8 => {
            let cause = pkt.be16_at(off + 4).ok_or(Counter::ErrChunkBeyondPacket)? as usize;
            let bucket = if cause < ERROR_CAUSE_BUCKETS { cause } else { ERROR_CAUSE_BUCKETS - 1 };
            if let Some(n) = flow.error_causes.get_mut(bucket) {
                add(n, 1);
            }
            [0; 3]
        }
        _ => [0; 3],
    };
    Ok(wanted)
}

/// A DATA or I-DATA chunk: its counters, its event (when the sink takes events), and the
/// words of its summary.
#[inline(always)]
#[expect(clippy::too_many_arguments, reason = "as account_chunk's, whose DATA arm this is")]
pub(super) fn account_data<P: Packet + ?Sized, S: DataSink, D: FnMut(Option<u32>)>(
    pkt: &P,
    off: usize,
    chunk: Chunk,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    data: &mut DataEvent,
    sink: &mut S,
    on_data: &mut D,
) -> Result<[u32; 3], Counter> {
    let fields = data_fields(pkt, off, chunk)?;
    Ok(count_data(fields, chunk, stats, flow, data, sink, on_data))
}

/// The fields of a DATA or I-DATA chunk that are counted or go up in its event.
#[derive(Clone, Copy)]
pub(super) struct DataFields {
    tsn: u32,
    stream: u16,
    /// DATA's stream sequence number, I-DATA's message identifier.
    ssn_or_mid: u32,
    /// 0 for I-DATA after a message's first fragment (which alone carries it).
    ppid: u32,
}

/// Reads a DATA or I-DATA chunk's fixed fields.
#[inline(always)]
pub(super) fn data_fields<P: Packet + ?Sized>(pkt: &P, off: usize, chunk: Chunk) -> Result<DataFields, Counter> {
    let Chunk { kind: chunk_type, flags, len } = chunk;
    let idata = chunk_type == ty::I_DATA;
    let fields = fixed::<P, 16>(pkt, off, len, if idata { 20 } else { 16 })?;
    let tsn = u32::from_be_bytes([fields[4], fields[5], fields[6], fields[7]]);
    let stream = u16::from_be_bytes([fields[8], fields[9]]);
    let word3 = u32::from_be_bytes([fields[12], fields[13], fields[14], fields[15]]);
    let (ssn_or_mid, ppid) = if !idata {
        (u32::from(u16::from_be_bytes([fields[10], fields[11]])), word3)
    } else if flags & flag::BEGIN != 0 {
        // I-DATA carries the PPID only in a message's first fragment (else the FSN).
        (word3, pkt.be32_at(off + 16).ok_or(Counter::ErrChunkBeyondPacket)?)
    } else {
        (word3, 0)
    };
    Ok(DataFields { tsn, stream, ssn_or_mid, ppid })
}

/// Counts a DATA or I-DATA chunk read by [`data_fields`], hands its event to `sink` (when
/// it takes events) and its PPID (if it carries one) to `on_data`; returns the words of
/// its summary.
#[inline(always)]
pub(super) fn count_data<S: DataSink, D: FnMut(Option<u32>)>(
    fields: DataFields,
    chunk: Chunk,
    stats: &mut GlobalStats,
    flow: &mut FlowStats,
    data: &mut DataEvent,
    sink: &mut S,
    on_data: &mut D,
) -> [u32; 3] {
    let Chunk { kind: chunk_type, flags, len } = chunk;
    let DataFields { tsn, stream, ssn_or_mid, ppid } = fields;
    let idata = chunk_type == ty::I_DATA;
    let header = if idata { 20 } else { 16 };
    flow.last_stream = stream;
    if !idata || flags & flag::BEGIN != 0 {
        flow.last_ppid = ppid;
    }
    let payload = (len - header) as u64;
    #[expect(clippy::cast_possible_truncation, reason = "len is a 16-bit length field's value")]
    let payload_len = payload as u32;
    if sink.wants_data() {
        data.tsn = tsn;
        data.stream = stream;
        data.ssn_or_mid = ssn_or_mid;
        data.ppid = ppid;
        data.payload_len = payload_len;
        data.flags = flags;
        data.chunk_type = chunk_type;
        sink.data(data);
    }
    stats.bump(Counter::DataChunks, 1);
    stats.bump(Counter::DataPayloadBytes, payload);
    add(&mut flow.data_chunks, 1);
    add(&mut flow.data_payload_bytes, payload);
    if flags & flag::UNORDERED != 0 {
        stats.bump(Counter::DataUnordered, 1);
        add(&mut flow.data_unordered, 1);
    }
    if flags & (flag::BEGIN | flag::END) != flag::BEGIN | flag::END {
        stats.bump(Counter::DataFragments, 1);
        add(&mut flow.data_fragments, 1);
    }
    // Serial number arithmetic (RFC 1982): TSNs wrap.
    if flow.tsn_seen == 0 || (tsn.wrapping_sub(flow.highest_tsn).cast_signed()) > 0 {
        flow.highest_tsn = tsn;
        flow.tsn_seen = 1;
    } else {
        add(&mut flow.data_at_or_below_highest, 1);
    }
    on_data((!idata || flags & flag::BEGIN != 0).then_some(ppid));
    [tsn, payload_len, 0]
}

/// The first `N` bytes of a chunk whose type needs `need` bytes of fixed fields.
#[inline(always)]
pub(super) fn fixed<P: Packet + ?Sized, const N: usize>(
    pkt: &P,
    off: usize,
    len: usize,
    need: usize,
) -> Result<Bytes<N>, Counter> {
    if len < need {
        return Err(Counter::ErrChunkFieldsTruncated);
    }
    pkt.read::<N>(off).ok_or(Counter::ErrChunkBeyondPacket)
}
