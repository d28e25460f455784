//! Where DATA events and packet summaries go: the ring buffers to user space, with what
//! they had no room for counted.

use aya_ebpf::{bindings::BPF_RB_NO_WAKEUP, maps::PerCpuArray};
use sctp_common::{
    abi::{
        maps::{events, CONFIG_EVENTS},
        DataEvent, PacketSummary, INGRESS,
    },
    parse::DataSink,
};

use crate::{
    clock::precise_now,
    maps::{CONFIG, DATA_EVENTS, DATA_EVENTS_LOST, PACKET_EVENTS, PACKET_EVENTS_LOST},
};

/// Pushes DATA events and packet summaries to their ring buffers; a full buffer drops the
/// event (user space counts what it receives of DATA events, so a gap shows as unmatched
/// messages; lost summaries are counted in `PACKET_EVENTS_LOST`). No wake-up per event:
/// user space drains on a timer, which costs far less than a wake-up per packet. Events
/// carry the precise clock (the join's wire-to-application latency, round trips): read
/// once per packet when DATA events are on, else only for a summary sent (most packets
/// send none, and the clock costs some 20 ns).
/// `DIRECTION`: `INGRESS` or `EGRESS`.
pub(crate) struct RingSink<const DIRECTION: u8> {
    data: bool,
    packets: bool,
    /// The interface of the packet, for the summary.
    ifindex: u32,
    /// The precise time of this packet (read only when DATA events are on).
    precise_ns: u64,
}

impl<const DIRECTION: u8> RingSink<DIRECTION> {
    /// The events user space asked for (DATA events only of packets arriving: the join
    /// pairs them with what the application received).
    #[inline(always)]
    pub(crate) fn load(ifindex: u32) -> Self {
        let wanted = CONFIG.get(CONFIG_EVENTS).copied().unwrap_or(0);
        let data = wanted & events::DATA != 0 && DIRECTION == INGRESS;
        let packets = wanted & events::PACKETS != 0;
        Self { data, packets, ifindex, precise_ns: if data { precise_now() } else { 0 } }
    }
}

impl<const DIRECTION: u8> DataSink for RingSink<DIRECTION> {
    #[inline(always)]
    fn wants_data(&self) -> bool {
        self.data
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        self.ifindex
    }

    #[inline(always)]
    fn data(&mut self, ev: &DataEvent) {
        if let Some(mut entry) = DATA_EVENTS.reserve::<DataEvent>(0) {
            // Written in place: no copy of the event on the 512-byte stack.
            let p = entry.as_mut_ptr();
            // SAFETY: a reserved, exclusively owned slot of the size of a DataEvent.
            unsafe {
                p.write(*ev);
                (*p).ts_ns = self.precise_ns;
            }
            entry.submit(u64::from(BPF_RB_NO_WAKEUP));
        } else {
            count_lost(&DATA_EVENTS_LOST);
        }
    }

    #[inline(always)]
    fn wants_summaries(&self) -> bool {
        self.packets
    }

    #[inline(always)]
    fn packet(&mut self, summary: &mut PacketSummary) {
        summary.ts_ns = if self.data { self.precise_ns } else { precise_now() };
        summary.direction = DIRECTION;
        summary.ifindex = self.ifindex;
        send_summary(summary);
    }
}

/// Copies the summary up to its last chunk into `PACKET_EVENTS` (one helper call, from the
/// scratch map's memory), or counts it lost.
#[inline(always)]
pub(crate) fn send_summary(summary: &PacketSummary) {
    // SAFETY: a field of a live reference.
    let chunks = unsafe { core::ptr::read_volatile(&raw const summary.chunks) };
    let len = PacketSummary::used_len(usize::from(chunks));
    // SAFETY: `used_len` is at most the summary's size.
    let bytes = unsafe { core::slice::from_raw_parts(core::ptr::from_ref(summary).cast::<u8>(), len) };
    if PACKET_EVENTS.output::<[u8]>(bytes, u64::from(BPF_RB_NO_WAKEUP)).is_err() {
        count_lost(&PACKET_EVENTS_LOST);
    }
}

/// Counts an event a full ring had no room for.
#[inline(always)]
pub(crate) fn count_lost(lost: &PerCpuArray<u64>) {
    if let Some(n) = lost.get_ptr_mut(0) {
        // SAFETY: this CPU's slot, valid for the run.
        unsafe { *n += 1 };
    }
}
