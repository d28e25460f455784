//! What the chunk walk notes for the rules judged after it.

use super::Filter;
use crate::abi::{enable, RuleSet, NO_RULE};

/// What the walk noted for the rules, chunk by chunk. Kept branch-free: every
/// instruction in the walk's body is verified once per path through it and iteration.
#[derive(Clone, Copy)]
pub struct Notes {
    /// Chunk types present, one bit each.
    pub types: [u64; 4],
    /// Non-zero if a DATA / I-DATA chunk was longer than `max_data_chunk`.
    pub data_too_large: u64,
    /// The `deny-ppid` rule a DATA PPID matched, [`NO_RULE`] if none.
    pub ppid_rule: u32,
    pub pad: u32,
}

impl Notes {
    #[must_use]
    pub fn new() -> Self {
        Self { types: [0; 4], data_too_large: 0, ppid_rule: u32::from(NO_RULE), pad: 0 }
    }

    /// Back to [`Notes::new`], field by field: a whole-value assignment becomes a call to
    /// `memset` in the bpf build, a BPF-to-BPF call whose frame older verifiers add to the
    /// program's (over 512 bytes on 6.1).
    #[inline(always)]
    pub fn clear(&mut self) {
        // SAFETY: writes of fields of a live &mut.
        unsafe {
            for w in &mut self.types {
                core::ptr::write_volatile(w, 0);
            }
            core::ptr::write_volatile(&raw mut self.data_too_large, 0);
            core::ptr::write_volatile(&raw mut self.ppid_rule, u32::from(NO_RULE));
        }
    }

    /// Notes a DATA / I-DATA chunk's length and PPID (if it carries one).
    #[inline(always)]
    pub fn data_chunk<'r, F: Filter<'r>>(
        &mut self,
        rs: &RuleSet,
        gen: u32,
        filter: &mut F,
        len: usize,
        ppid: Option<u32>,
    ) {
        // Branch-free `len > max`: the difference wraps into the top bit.
        let over = u64::from(rs.max_data_chunk).wrapping_sub(len as u64) >> 63;
        // SAFETY: read and write of fields of a live &mut.
        unsafe {
            let p = &raw mut self.data_too_large;
            core::ptr::write_volatile(p, core::ptr::read_volatile(p) | over);
        }
        if let Some(ppid) = ppid.filter(|_| rs.flags & enable::DENY_PPID != 0) {
            if let Some(id) = filter.ppid_rule(gen, ppid) {
                // SAFETY: a write to a field of a live &mut.
                unsafe { core::ptr::write_volatile(&raw mut self.ppid_rule, u32::from(id)) };
            }
        }
    }

    #[inline(always)]
    #[must_use]
    pub fn has(&self, chunk_type: u8) -> bool {
        self.types[usize::from(chunk_type >> 6)] >> (chunk_type & 63) & 1 != 0
    }
}

impl Default for Notes {
    fn default() -> Self {
        Self::new()
    }
}
