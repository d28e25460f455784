//! Each association direction's application messages, as its flow keeps them
//! (`FlowStats::messages`): a small open table of (protocol, kind, code, application,
//! result) and its counts, and the TSNs the direction sent lately, which tell a message's
//! first chunk from its retransmission. And Diameter's requests waiting for their
//! answers (`PENDING`), and the response times of the answers that came (`RESPONSES`).

use bytemuck::{Pod, Zeroable};

use super::stats::FlowKey;

/// Message keys one flow keeps; messages of further keys count as `messages_untabled`. An
/// association's signalling uses a few procedures or commands each way (the shared
/// captures: at most 9 keys per direction).
pub const MESSAGE_SLOTS: usize = 16;

/// One message key of a flow and its count. The key is two words (see [`MessageSlot::key`]);
/// an empty slot has `head` 0 (protocols are numbered from 1).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MessageSlot {
    /// The protocol (bits 0-7), the kind (8-15), the code (32-63): see
    /// `parse::message`'s `Protocol`, `Kind` and `Message::code`.
    pub head: u64,
    /// Diameter's application id (bits 0-31) and an answer's Result-Code (32-63; 0: none
    /// found). 0 for the other protocols.
    pub tail: u64,
    pub count: u64,
}

impl MessageSlot {
    /// The two words of a key.
    #[inline(always)]
    #[must_use]
    pub fn key(protocol: u8, kind: u8, code: u32, application: u32, result: u32) -> (u64, u64) {
        (
            u64::from(protocol) | u64::from(kind) << 8 | u64::from(code) << 32,
            u64::from(application) | u64::from(result) << 32,
        )
    }

    /// The key's fields: protocol, kind, code, application, result.
    #[must_use]
    pub fn fields(&self) -> (u8, u8, u32, u32, u32) {
        #[expect(clippy::cast_possible_truncation, reason = "unpacking the fields `key` packed")]
        (self.head as u8, (self.head >> 8) as u8, (self.head >> 32) as u32, self.tail as u32, (self.tail >> 32) as u32)
    }
}

/// The TSNs a direction sent lately: the highest (serial number arithmetic), and which of
/// the 64 up to it were seen: reordering within 64 chunks is told from resending, in
/// bounded memory. A TSN further behind counts as resent, unless it is more than
/// [`TsnWindow::FAR`] behind: no window holds that much data in flight, so it is a
/// sequence of its own (a peer that restarted, a capture made of pieces).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct TsnWindow {
    pub highest: u32,
    pub pad: u32,
    /// Bit i: `highest - i` was seen (0: no TSN yet).
    pub seen: u64,
}

impl TsnWindow {
    pub const FAR: u32 = 1 << 20;

    /// Notes `tsn`; whether it is new.
    #[inline(always)]
    pub fn note(&mut self, tsn: u32) -> bool {
        let ahead = tsn.wrapping_sub(self.highest).cast_signed();
        if self.seen == 0 || ahead > 0 {
            let shift = if self.seen == 0 { 64 } else { ahead.unsigned_abs() };
            self.seen = if shift >= 64 { 1 } else { self.seen << shift | 1 };
            self.highest = tsn;
            return true;
        }
        let behind = ahead.unsigned_abs();
        if behind >= 64 {
            return behind > Self::FAR;
        }
        let bit = 1 << behind;
        let new = self.seen & bit == 0;
        self.seen |= bit;
        new
    }
}

/// A Diameter request waiting for its answer, by the direction its answer will take (the
/// request's reversed, with the tag the directory of associations pairs it with: a
/// request is waited for only in an association whose both tags are known, so nobody who
/// does not know them makes or closes an entry) and the request's hop-by-hop and
/// end-to-end identifiers (RFC 6733 3: the answer carries the same).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
pub struct PendingKey {
    pub answer_flow: FlowKey,
    pub hop_by_hop: u32,
    pub end_to_end: u32,
}

/// The request waiting: when it was sent (the precise clock), its application and
/// command, which its answer must have too.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct PendingRequest {
    pub sent_ns: u64,
    pub application: u32,
    pub command: u32,
}

/// The answers of one command that came on one direction, timed from their requests
/// (`RESPONSES`' key; its value is a `RoundTrips`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
pub struct ResponseKey {
    pub flow: FlowKey,
    pub application: u32,
    pub command: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tsn_is_new_once_and_reordering_is_not_resending() {
        let mut w = TsnWindow::default();
        let news: alloc::vec::Vec<bool> =
            [5, 7, 6, 6, 7, 8, 5, 4, 200, 137, 136, u32::MAX, 200u32.wrapping_sub(1 << 21)].map(|t| w.note(t)).to_vec();
        // 4 was never sent: new too (within 64 of 8). 136 is 64 behind: resent, as is
        // u32::MAX (201 behind); 2^21 behind is a sequence of its own.
        assert_eq!(news, [true, true, true, false, false, true, false, true, true, true, false, false, true]);
        let mut wrap = TsnWindow::default();
        assert!(wrap.note(u32::MAX) && wrap.note(0) && wrap.note(u32::MAX - 1) && !wrap.note(0));
    }

    #[test]
    fn a_key_reads_back_as_its_fields() {
        let (head, tail) = MessageSlot::key(7, 4, 0x00ff_ffff, 16_777_251, 5001);
        let slot = MessageSlot { head, tail, count: 1 };
        assert_eq!(slot.fields(), (7, 4, 0x00ff_ffff, 16_777_251, 5001));
    }
}
