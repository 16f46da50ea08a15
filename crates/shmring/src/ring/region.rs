//! The byte area of a ring in real memory (a mapping or a heap block), written once for
//! the SPSC and the broadcast rings: record-header words read and written as 64-bit
//! atomics (a peer's concurrent write is a wrong value, never a torn or undefined
//! read), and payloads copied with `copy_nonoverlapping` after their bounds were
//! checked. Each ring adds, in its own `layout.rs`, the header accessors with the
//! orderings its protocol needs. Under loom each ring models its area its own way.

use crate::primitive::AtomicU64;
use std::ptr::NonNull;

/// A ring's record area: `len` bytes at `ptr`, every access bounds-checked.
#[derive(Debug)]
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    /// # Safety
    /// - `ptr` is valid for reads and writes of `len` bytes for the region's lifetime,
    ///   8-byte aligned, and `len` is a multiple of 8.
    pub(crate) unsafe fn new(ptr: NonNull<u8>, len: usize) -> Self {
        Region { ptr, len }
    }

    /// The 64-bit word at `off` (panics if `off` is not 8-aligned and in bounds). Not
    /// `#[inline]`: the SPSC producer's `clear_slots` loop was measured to cost more
    /// instructions with it inlined (instr-check, 4 KiB messages).
    pub(crate) fn word(&self, off: u64) -> &AtomicU64 {
        assert!(
            off % 8 == 0 && off + 8 <= self.len as u64,
            "record header offset out of bounds"
        );
        // SAFETY: in bounds and 8-aligned (checked above; the base is 8-aligned by
        // `new`'s contract); AtomicU64 is valid for any bit pattern; the memory outlives
        // `&self`.
        unsafe { &*(self.ptr.as_ptr().add(off as usize) as *const AtomicU64) }
    }

    /// Pointer to `len` bytes at `off`.
    #[inline]
    pub(crate) fn slice_ptr(&self, off: u64, len: usize) -> *mut u8 {
        assert!(
            off as usize <= self.len && len <= self.len - off as usize,
            "payload out of bounds"
        );
        // SAFETY: `off + len <= self.len` (checked above), so the pointer stays in the region.
        unsafe { self.ptr.as_ptr().add(off as usize) }
    }

    /// Copy `src` into the region at `off`.
    #[inline]
    pub(crate) fn copy_in(&self, off: u64, src: &[u8]) {
        let dst = self.slice_ptr(off, src.len());
        // SAFETY: `dst` is valid for `src.len()` bytes (slice_ptr checked the bounds);
        // `src` is a caller's buffer, which cannot overlap the shared region: the
        // region is never handed out as a slice to the writer's caller while a copy
        // is running.
        unsafe { crate::ring::copy_bytes(src.as_ptr(), dst, src.len()) }
    }
}
