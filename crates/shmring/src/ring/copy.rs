//! The byte copy of the rings and the queue: `copy_nonoverlapping` with an inline fast
//! path for small messages.

/// `copy_nonoverlapping`, with messages of up to 16 bytes copied inline by two
/// (overlapping) word moves instead of a call into `memcpy`: for the small messages
/// of latency-bound users the call is a noticeable part of a hop.
///
/// # Safety
/// As `std::ptr::copy_nonoverlapping`: `src` valid for reads and `dst` for writes of
/// `len` bytes, the two ranges not overlapping.
#[inline(always)]
pub(crate) unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    use std::ptr::{read_unaligned, write_unaligned};
    match len {
        8..=16 => {
            // SAFETY: both 8-byte moves lie within the first `len` bytes of `src` and
            // `dst` (offsets 0 and len - 8), which the caller guarantees valid and
            // disjoint; the accesses are unaligned.
            unsafe {
                let a = read_unaligned(src.cast::<u64>());
                let b = read_unaligned(src.add(len - 8).cast::<u64>());
                write_unaligned(dst.cast::<u64>(), a);
                write_unaligned(dst.add(len - 8).cast::<u64>(), b);
            }
        }
        4..=7 => {
            // SAFETY: as above, with 4-byte moves at offsets 0 and len - 4.
            unsafe {
                let a = read_unaligned(src.cast::<u32>());
                let b = read_unaligned(src.add(len - 4).cast::<u32>());
                write_unaligned(dst.cast::<u32>(), a);
                write_unaligned(dst.add(len - 4).cast::<u32>(), b);
            }
        }
        0..=3 => {
            for i in 0..len {
                // SAFETY: `i < len`, within the caller's valid, disjoint ranges.
                unsafe { *dst.add(i) = *src.add(i) };
            }
        }
        // SAFETY: the caller's contract is copy_nonoverlapping's.
        _ => unsafe { std::ptr::copy_nonoverlapping(src, dst, len) },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_bytes_every_small_length() {
        let src: Vec<u8> = (1..=64).collect();
        for len in 0..=40 {
            let mut dst = vec![0u8; 48];
            // SAFETY: `len <= 40` bytes of a 64-byte source and a 48-byte destination,
            // distinct allocations.
            unsafe { super::copy_bytes(src.as_ptr(), dst.as_mut_ptr(), len) };
            assert_eq!(&dst[..len], &src[..len], "len {len}");
            assert!(dst[len..].iter().all(|&b| b == 0), "len {len} wrote past the end");
        }
    }
}
