//! Map values that every CPU reads and writes at once (learned tags, token buckets). They
//! are copied in and out with volatile access and never borrowed: a `&mut` to memory that
//! another CPU writes at the same time would be undefined behaviour. Updates are not
//! atomic; racing CPUs may lose an update, which the users of these values tolerate (a
//! refresh a second later, a few INITs more through a bucket).

use core::{marker::PhantomData, ptr};

use crate::abi::{handshake, TagEntry};

pub struct Shared<'a, T> {
    ptr: *mut T,
    _value: PhantomData<&'a mut T>,
}

impl<'a, T: Copy> Shared<'a, T> {
    /// A value others may write concurrently.
    ///
    /// # Safety
    /// `ptr` points to a live, aligned `T` for `'a` (a map value stays allocated while the
    /// program that looked it up runs, even if another CPU deletes its entry).
    #[inline(always)]
    #[must_use]
    pub unsafe fn new(ptr: *mut T) -> Self {
        Self { ptr, _value: PhantomData }
    }

    /// A value that only its owner writes (the host twin of a map).
    #[inline(always)]
    #[must_use]
    pub fn exclusive(value: &'a mut T) -> Self {
        // SAFETY: a reference is live and aligned for its lifetime.
        unsafe { Self::new(value) }
    }

    /// A copy of the value as it is now.
    #[inline(always)]
    #[must_use]
    pub fn get(&self) -> T {
        // SAFETY: valid for reads (see `new`).
        unsafe { ptr::read_volatile(self.ptr) }
    }

    /// Replaces the whole value.
    #[inline(always)]
    pub fn set(&self, value: T) {
        // SAFETY: valid for writes (see `new`).
        unsafe { ptr::write_volatile(self.ptr, value) }
    }
}

/// Single fields of a learned tag, written alone so that a concurrent write of another
/// field by another CPU is not undone.
impl Shared<'_, TagEntry> {
    #[inline(always)]
    pub fn set_last_seen(&self, ns: u64) {
        // SAFETY: a field of a value valid for writes (see `new`).
        unsafe { ptr::write_volatile(&raw mut (*self.ptr).last_seen_ns, ns) }
    }

    #[inline(always)]
    pub fn set_partner(&self, vtag: u32) {
        // SAFETY: as above.
        unsafe { ptr::write_volatile(&raw mut (*self.ptr).partner, vtag) }
    }

    /// Marks the association closing: its entry lives until `until_ns` minus the idle
    /// timeout, and is not refreshed.
    #[inline(always)]
    pub fn close(&self, last_seen_ns: u64) {
        self.set_last_seen(last_seen_ns);
        // SAFETY: as above.
        unsafe { ptr::write_volatile(&raw mut (*self.ptr).closing, 1) }
    }

    /// Marks the association's handshake completed (see `abi::handshake`).
    #[inline(always)]
    pub fn complete(&self) {
        // SAFETY: as above.
        unsafe { ptr::write_volatile(&raw mut (*self.ptr).handshake, handshake::COMPLETED) }
    }
}
