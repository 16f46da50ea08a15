//! The byte copy of the rings and the queue: `copy_nonoverlapping` with an inline fast
//! path for small messages.

/// `copy_nonoverlapping`, with messages of up to 64 bytes copied inline by two to
/// four (overlapping) word or 16-byte moves instead of a call into `memcpy`: for the
/// small messages of latency-bound users (and the MPMC queue's 64-byte slots) the call
/// is a noticeable part of a hop.
///
/// # Safety
/// As `std::ptr::copy_nonoverlapping`: `src` valid for reads and `dst` for writes of
/// `len` bytes, the two ranges not overlapping.
#[inline(always)]
pub(crate) unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    use std::ptr::{read_unaligned, write_unaligned};
    // Tested in the order that keeps the smallest messages cheapest: one compare for
    // 8..=16 bytes, two or three for 17..=64.
    if len.wrapping_sub(8) <= 8 {
        // SAFETY: both 8-byte moves lie within the first `len` bytes of `src` and `dst`
        // (offsets 0 and len - 8), which the caller guarantees valid and disjoint; the
        // accesses are unaligned.
        unsafe {
            let a = read_unaligned(src.cast::<u64>());
            let b = read_unaligned(src.add(len - 8).cast::<u64>());
            write_unaligned(dst.cast::<u64>(), a);
            write_unaligned(dst.add(len - 8).cast::<u64>(), b);
        }
    } else if len.wrapping_sub(17) < 48 {
        if len > 32 {
            // SAFETY: the four 16-byte moves lie within the first `len` bytes of `src`
            // and `dst` (offsets 0, 16, len - 32 >= 1 and len - 16, each ending by
            // len), which the caller guarantees valid and disjoint; unaligned accesses.
            unsafe {
                let a = read_unaligned(src.cast::<u128>());
                let b = read_unaligned(src.add(16).cast::<u128>());
                let c = read_unaligned(src.add(len - 32).cast::<u128>());
                let d = read_unaligned(src.add(len - 16).cast::<u128>());
                write_unaligned(dst.cast::<u128>(), a);
                write_unaligned(dst.add(16).cast::<u128>(), b);
                write_unaligned(dst.add(len - 32).cast::<u128>(), c);
                write_unaligned(dst.add(len - 16).cast::<u128>(), d);
            }
        } else {
            // SAFETY: as in the 8..=16 case, with 16-byte moves at offsets 0 and len - 16.
            unsafe {
                let a = read_unaligned(src.cast::<u128>());
                let b = read_unaligned(src.add(len - 16).cast::<u128>());
                write_unaligned(dst.cast::<u128>(), a);
                write_unaligned(dst.add(len - 16).cast::<u128>(), b);
            }
        }
    } else if len > 64 {
        // SAFETY: the caller's contract is copy_nonoverlapping's.
        unsafe { std::ptr::copy_nonoverlapping(src, dst, len) }
    } else if len >= 4 {
        // SAFETY: as in the 8..=16 case, with 4-byte moves at offsets 0 and len - 4.
        unsafe {
            let a = read_unaligned(src.cast::<u32>());
            let b = read_unaligned(src.add(len - 4).cast::<u32>());
            write_unaligned(dst.cast::<u32>(), a);
            write_unaligned(dst.add(len - 4).cast::<u32>(), b);
        }
    } else {
        for i in 0..len {
            // SAFETY: `i < len`, within the caller's valid, disjoint ranges.
            unsafe { *dst.add(i) = *src.add(i) };
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_bytes_every_small_length() {
        let src: Vec<u8> = (1..=80).collect();
        for len in 0..=72 {
            let mut dst = vec![0u8; 80];
            // SAFETY: `len <= 72` bytes of an 80-byte source and an 80-byte destination,
            // distinct allocations.
            unsafe { super::copy_bytes(src.as_ptr(), dst.as_mut_ptr(), len) };
            assert_eq!(&dst[..len], &src[..len], "len {len}");
            assert!(dst[len..].iter().all(|&b| b == 0), "len {len} wrote past the end");
        }
    }
}
