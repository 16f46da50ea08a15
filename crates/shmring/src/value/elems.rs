//! How the elements of a [`Value`](super::Value) or an [`Array`](super::Array) are
//! stored: each element of `T` in the atomic word of its width (or a lane of one), or,
//! when it is wider than 8 bytes, in 64-bit words protected by the cell's seqlock.
//!
//! | size of `T` | stride | stored as                                                  |
//! |-------------|--------|------------------------------------------------------------|
//! | 1, 2        | size   | a lane of the naturally aligned `AtomicU32` that holds it  |
//! | 3, 4        | 4      | one `AtomicU32` (a 3-byte `T` padded with one zero byte)   |
//! | 5..=8       | 8      | one `AtomicU64` (padded with zero bytes)                   |
//! | 0, > 8      | size rounded up to 8 | `size / 8` `AtomicU64` words, under the seqlock |
//!
//! The facade offers 32- and 64-bit atomics only (loom models and futex words are those
//! widths), so 8- and 16-bit elements are lanes: their loads are plain loads of the
//! word, `fetch_and`/`fetch_or`/`fetch_xor` are single masked read-modify-writes of the
//! word, and every other write is a compare-and-swap loop on the word that changes only
//! the element's bytes (a neighbour updated at the same time makes it retry, never
//! lose the neighbour's update). The data region starts 8-byte aligned, so every
//! element's word is naturally aligned.

use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use bytemuck::Pod;
use std::marker::PhantomData;

mod sealed {
    pub trait Sealed {}
}

/// The integer types that have lock-free read-modify-write operations in a
/// [`Value`](super::Value), [`RawValue`](super::RawValue), [`Array`](super::Array) and
/// [`RawArray`](super::RawArray): `u8`, `u16`, `u32`, `u64`, `i8`, `i16`, `i32`, `i64`
/// (not `usize` / `isize`, which have no [`Schema`](crate::Schema)). Sealed: each is stored in the atomic word of its width (see the
/// [module docs](crate::value)); arithmetic wraps around like `wrapping_add`.
///
/// ```
/// use shmring::value::{Integer, Value};
/// fn bump<T: Integer>(v: &Value<T>, by: T) -> T {
///     v.fetch_add(by)
/// }
/// let v = Value::anonymous(250u8)?;
/// assert_eq!(bump(&v, 10), 250);
/// assert_eq!(v.load(), 4); // wrapped around
/// # Ok::<(), shmring::Error>(())
/// ```
pub trait Integer: Pod + postcard_schema::Schema + Ord + sealed::Sealed {}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Integer for $t {}
    )*};
}
// Not usize and isize: they have no `Schema` (their size depends on the platform), so
// they cannot be a shared object's `T` (use u64 or i64).
integer!(u8, u16, u32, u64, i8, i16, i32, i64);

/// The storage class of an element type (see the table in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repr {
    /// 1 or 2 bytes: a lane of an `AtomicU32`.
    Lane(usize),
    /// 3 or 4 bytes: an `AtomicU32`.
    W32,
    /// 5 to 8 bytes: an `AtomicU64`.
    W64,
    /// 0 or more than 8 bytes: this many `AtomicU64` words, under the seqlock.
    Wide(usize),
}

impl Repr {
    pub(crate) const fn of<T>() -> Repr {
        match std::mem::size_of::<T>() {
            s @ (1 | 2) => Repr::Lane(s),
            3 | 4 => Repr::W32,
            5..=8 => Repr::W64,
            s => Repr::Wide(s.div_ceil(8)),
        }
    }

    /// Bytes between two elements.
    pub(crate) const fn stride(self) -> usize {
        match self {
            Repr::Lane(s) => s,
            Repr::W32 => 4,
            Repr::W64 => 8,
            Repr::Wide(w) => w * 8,
        }
    }

    /// Whether one element is one atomic access (else it needs the seqlock).
    pub(crate) const fn is_narrow(self) -> bool {
        !matches!(self, Repr::Wide(_))
    }
}

/// Bytes of a data region for `len` elements of `T`, a multiple of 8 (`None` on overflow).
pub(crate) fn data_size<T>(len: usize) -> Option<usize> {
    Repr::of::<T>().stride().checked_mul(len)?.checked_next_multiple_of(8)
}

/// The bits of a narrow `v` as stored in its word: its bytes in memory order, zero-padded
/// to the word, read as a native-endian integer (so an integer's bits are its value).
fn to_bits<T: Pod>(v: T) -> u64 {
    let b = bytemuck::bytes_of(&v);
    match b.len() {
        1 => u64::from(b[0]),
        2 => u64::from(u16::from_ne_bytes([b[0], b[1]])),
        n @ (3 | 4) => {
            let mut a = [0u8; 4];
            a[..n].copy_from_slice(b);
            u64::from(u32::from_ne_bytes(a))
        }
        n => {
            let mut a = [0u8; 8];
            a[..n].copy_from_slice(&b[..n.min(8)]);
            u64::from_ne_bytes(a)
        }
    }
}

/// The inverse of [`to_bits`].
fn from_bits<T: Pod>(bits: u64) -> T {
    let mut v = T::zeroed();
    let out = bytemuck::bytes_of_mut(&mut v);
    match out.len() {
        1 => out[0] = bits as u8,
        2 => out.copy_from_slice(&(bits as u16).to_ne_bytes()),
        n @ (3 | 4) => out.copy_from_slice(&(bits as u32).to_ne_bytes()[..n]),
        n => out.copy_from_slice(&bits.to_ne_bytes()[..n.min(8)]),
    }
    v
}

/// The failure ordering of a compare-and-swap whose success ordering is `o`.
fn load_part(o: Ordering) -> Ordering {
    match o {
        Ordering::Release => Ordering::Relaxed,
        Ordering::AcqRel => Ordering::Acquire,
        o => o,
    }
}

/// One narrow element's atomic.
#[derive(Debug, Clone, Copy)]
enum Unit<'a> {
    W64(&'a AtomicU64),
    W32(&'a AtomicU32),
    /// Bits `shift..shift + width` of `word` (`mask` = the lane's bits, unshifted).
    Lane {
        word: &'a AtomicU32,
        shift: u32,
        mask: u32,
    },
}

impl Unit<'_> {
    fn lane_of(w: u32, shift: u32, mask: u32) -> u64 {
        u64::from((w >> shift) & mask)
    }

    fn load(self, o: Ordering) -> u64 {
        match self {
            Unit::W64(a) => a.load(o),
            Unit::W32(a) => u64::from(a.load(o)),
            Unit::Lane { word, shift, mask } => Self::lane_of(word.load(o), shift, mask),
        }
    }

    /// A compare-and-swap loop: `f(current)` gives the new bits, or `None` to stop.
    /// `Ok(previous)` if it wrote, `Err(current)` if `f` declined.
    fn update(self, o: Ordering, mut f: impl FnMut(u64) -> Option<u64>) -> Result<u64, u64> {
        let fail = load_part(o);
        match self {
            Unit::W64(a) => a.fetch_update(o, fail, f),
            Unit::W32(a) => a
                .fetch_update(o, fail, |w| f(u64::from(w)).map(|n| n as u32))
                .map(u64::from)
                .map_err(u64::from),
            Unit::Lane { word, shift, mask } => word
                .fetch_update(o, fail, |w| {
                    f(Self::lane_of(w, shift, mask)).map(|n| (w & !(mask << shift)) | ((n as u32 & mask) << shift))
                })
                .map(|w| Self::lane_of(w, shift, mask))
                .map_err(|w| Self::lane_of(w, shift, mask)),
        }
    }

    fn store(self, v: u64, o: Ordering) {
        match self {
            Unit::W64(a) => a.store(v, o),
            Unit::W32(a) => a.store(v as u32, o),
            // The neighbours' lanes may change concurrently: merge, never overwrite.
            Unit::Lane { .. } => {
                let _ = self.update(o, |_| Some(v));
            }
        }
    }

    fn swap(self, v: u64, o: Ordering) -> u64 {
        match self {
            Unit::W64(a) => a.swap(v, o),
            Unit::W32(a) => u64::from(a.swap(v as u32, o)),
            Unit::Lane { .. } => self.update(o, |_| Some(v)).unwrap_or_else(|x| x),
        }
    }

    fn fetch_add(self, v: u64, o: Ordering) -> u64 {
        match self {
            Unit::W64(a) => a.fetch_add(v, o),
            Unit::W32(a) => u64::from(a.fetch_add(v as u32, o)),
            Unit::Lane { .. } => self.update(o, |x| Some(x.wrapping_add(v))).unwrap_or_else(|x| x),
        }
    }

    fn fetch_sub(self, v: u64, o: Ordering) -> u64 {
        match self {
            Unit::W64(a) => a.fetch_sub(v, o),
            Unit::W32(a) => u64::from(a.fetch_sub(v as u32, o)),
            Unit::Lane { .. } => self.update(o, |x| Some(x.wrapping_sub(v))).unwrap_or_else(|x| x),
        }
    }

    fn fetch_and(self, v: u64, o: Ordering) -> u64 {
        match self {
            Unit::W64(a) => a.fetch_and(v, o),
            Unit::W32(a) => u64::from(a.fetch_and(v as u32, o)),
            // Ones outside the lane leave the neighbours alone.
            Unit::Lane { word, shift, mask } => Self::lane_of(
                word.fetch_and(((v as u32 & mask) << shift) | !(mask << shift), o),
                shift,
                mask,
            ),
        }
    }

    fn fetch_or(self, v: u64, o: Ordering) -> u64 {
        match self {
            Unit::W64(a) => a.fetch_or(v, o),
            Unit::W32(a) => u64::from(a.fetch_or(v as u32, o)),
            Unit::Lane { word, shift, mask } => {
                Self::lane_of(word.fetch_or((v as u32 & mask) << shift, o), shift, mask)
            }
        }
    }

    fn fetch_xor(self, v: u64, o: Ordering) -> u64 {
        match self {
            Unit::W64(a) => a.fetch_xor(v, o),
            Unit::W32(a) => u64::from(a.fetch_xor(v as u32, o)),
            Unit::Lane { word, shift, mask } => {
                Self::lane_of(word.fetch_xor((v as u32 & mask) << shift, o), shift, mask)
            }
        }
    }

    fn compare_exchange(self, current: u64, new: u64, o: Ordering) -> Result<u64, u64> {
        match self {
            Unit::W64(a) => a.compare_exchange(current, new, o, load_part(o)),
            Unit::W32(a) => a
                .compare_exchange(current as u32, new as u32, o, load_part(o))
                .map(u64::from)
                .map_err(u64::from),
            // Retries only when a neighbour's lane changed under the CAS.
            Unit::Lane { .. } => self.update(o, |x| (x == current).then_some(new)),
        }
    }
}

/// `len` elements of `T` in a shared data region. Every access is atomic; the index is
/// checked by the callers (and asserted here: an index out of bounds is a bug of this
/// crate, never of its caller).
pub(crate) struct Elems<'a, T> {
    base: *const u8,
    len: usize,
    _region: PhantomData<&'a [AtomicU64]>,
    _t: PhantomData<fn() -> T>,
}

impl<'a, T: Pod> Elems<'a, T> {
    /// # Safety
    ///
    /// - `base` is 8-byte aligned and the start of [`data_size::<T>(len)`](data_size)
    ///   bytes that stay mapped for `'a`;
    /// - those bytes are only ever accessed through `Elems<T>` of this same `T` (so
    ///   every byte is always accessed as the same atomic type).
    pub(crate) unsafe fn new(base: *const u8, len: usize) -> Self {
        debug_assert_eq!(base as usize % 8, 0);
        Elems {
            base,
            len,
            _region: PhantomData,
            _t: PhantomData,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn unit(&self, i: usize) -> Unit<'a> {
        assert!(i < self.len, "element index checked by the caller");
        let at = |off: usize| {
            // SAFETY: `off` is within the data region (i < len, and every element's word
            // lies within data_size bytes), per `new`'s contract.
            unsafe { self.base.add(off) }
        };
        match Repr::of::<T>() {
            Repr::Lane(s) => {
                let off = i * s;
                let byte = (off % 4) as u32;
                let shift = if cfg!(target_endian = "little") {
                    8 * byte
                } else {
                    8 * (4 - byte - s as u32)
                };
                let mask = if s == 1 { 0xff } else { 0xffff };
                // SAFETY: the word at off & !3 is 4-aligned (base is 8-aligned), within
                // the region (data_size rounds up to 8), mapped for 'a, and accessed only
                // as an AtomicU32 (`new`'s contract); AtomicU32 has u32's layout.
                let word = unsafe { &*(at(off & !3) as *const AtomicU32) };
                Unit::Lane { word, shift, mask }
            }
            // SAFETY: as above, at the 4-aligned offset 4 * i.
            Repr::W32 => Unit::W32(unsafe { &*(at(4 * i) as *const AtomicU32) }),
            // SAFETY: as above, at the 8-aligned offset 8 * i, as an AtomicU64.
            Repr::W64 => Unit::W64(unsafe { &*(at(8 * i) as *const AtomicU64) }),
            Repr::Wide(_) => unreachable!("wide elements have no single unit"),
        }
    }

    fn words(&self, i: usize) -> &'a [AtomicU64] {
        assert!(i < self.len, "element index checked by the caller");
        let Repr::Wide(n) = Repr::of::<T>() else {
            unreachable!("narrow elements are single units")
        };
        // SAFETY: the n words of element i start at the 8-aligned offset 8 * n * i and
        // lie within the region (i < len), mapped for 'a, accessed only as AtomicU64
        // (`new`'s contract); AtomicU64 has u64's layout.
        unsafe { std::slice::from_raw_parts(self.base.add(8 * n * i) as *const AtomicU64, n) }
    }

    /// Element `i`. Narrow: one atomic load with ordering `o`. Wide: `Relaxed` loads of
    /// its words, to be run inside a seqlock read or under the writer lock.
    pub(crate) fn load(&self, i: usize, o: Ordering) -> T {
        if Repr::of::<T>().is_narrow() {
            return from_bits(self.unit(i).load(o));
        }
        let mut v = T::zeroed();
        let out = bytemuck::bytes_of_mut(&mut v);
        for (chunk, w) in out.chunks_mut(8).zip(self.words(i)) {
            // Relaxed: the seqlock validates the copy (see `RawSeqLock::read`).
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes()[..chunk.len()]);
        }
        v
    }

    /// Store element `i`. Narrow: one atomic store with ordering `o`. Wide: `Relaxed`
    /// stores of the first `words` of its words (all: `usize::MAX`), to be run inside a
    /// seqlock write section.
    pub(crate) fn store_words(&self, i: usize, v: T, o: Ordering, words: usize) {
        if Repr::of::<T>().is_narrow() {
            return self.unit(i).store(to_bits(v), o);
        }
        for (chunk, w) in bytemuck::bytes_of(&v).chunks(8).zip(self.words(i)).take(words) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            // Relaxed: inside a write section; published by its closing Release store.
            w.store(u64::from_ne_bytes(b), Ordering::Relaxed);
        }
    }

    /// [`Elems::store_words`] of all words.
    pub(crate) fn store(&self, i: usize, v: T, o: Ordering) {
        self.store_words(i, v, o, usize::MAX);
    }
}

/// Lock-free read-modify-writes of integer elements (each one atomic access, or a CAS
/// loop on the element's word for 8- and 16-bit lanes).
impl<T: Integer> Elems<'_, T> {
    pub(crate) fn swap(&self, i: usize, v: T, o: Ordering) -> T {
        from_bits(self.unit(i).swap(to_bits(v), o))
    }

    pub(crate) fn fetch_add(&self, i: usize, v: T, o: Ordering) -> T {
        from_bits(self.unit(i).fetch_add(to_bits(v), o))
    }

    pub(crate) fn fetch_sub(&self, i: usize, v: T, o: Ordering) -> T {
        from_bits(self.unit(i).fetch_sub(to_bits(v), o))
    }

    pub(crate) fn fetch_and(&self, i: usize, v: T, o: Ordering) -> T {
        from_bits(self.unit(i).fetch_and(to_bits(v), o))
    }

    pub(crate) fn fetch_or(&self, i: usize, v: T, o: Ordering) -> T {
        from_bits(self.unit(i).fetch_or(to_bits(v), o))
    }

    pub(crate) fn fetch_xor(&self, i: usize, v: T, o: Ordering) -> T {
        from_bits(self.unit(i).fetch_xor(to_bits(v), o))
    }

    pub(crate) fn compare_exchange(&self, i: usize, current: T, new: T, o: Ordering) -> Result<T, T> {
        self.unit(i)
            .compare_exchange(to_bits(current), to_bits(new), o)
            .map(from_bits)
            .map_err(from_bits)
    }

    /// `fetch_max` (`max = true`) or `fetch_min`: a CAS loop that writes only when the
    /// value changes (otherwise it is a load with the failure ordering).
    pub(crate) fn fetch_extremum(&self, i: usize, v: T, max: bool, o: Ordering) -> T {
        let r = self.unit(i).update(o, |x| {
            let cur: T = from_bits(x);
            let better = if max { v > cur } else { v < cur };
            better.then(|| to_bits(v))
        });
        from_bits(r.unwrap_or_else(|x| x))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A heap region of `data_size::<T>(len)` bytes, 8-aligned.
    fn region<T>(len: usize) -> Vec<AtomicU64> {
        (0..data_size::<T>(len).unwrap() / 8)
            .map(|_| AtomicU64::new(0))
            .collect()
    }

    fn elems<T: Pod>(r: &[AtomicU64], len: usize) -> Elems<'_, T> {
        // SAFETY: `r` is 8-aligned, data_size::<T>(len) bytes, and used only as Elems<T>.
        unsafe { Elems::new(r.as_ptr() as *const u8, len) }
    }

    #[test]
    fn repr_and_sizes() {
        assert_eq!(Repr::of::<u8>(), Repr::Lane(1));
        assert_eq!(Repr::of::<i16>(), Repr::Lane(2));
        assert_eq!(Repr::of::<[u8; 3]>(), Repr::W32);
        assert_eq!(Repr::of::<f32>(), Repr::W32);
        assert_eq!(Repr::of::<f64>(), Repr::W64);
        assert_eq!(Repr::of::<usize>(), Repr::W64);
        assert_eq!(Repr::of::<[u8; 7]>(), Repr::W64);
        assert_eq!(Repr::of::<[u64; 8]>(), Repr::Wide(8));
        assert_eq!(Repr::of::<[u8; 9]>(), Repr::Wide(2));
        assert_eq!(Repr::of::<()>(), Repr::Wide(0));
        assert_eq!(data_size::<u8>(5), Some(8));
        assert_eq!(data_size::<[u8; 3]>(3), Some(16));
        assert_eq!(data_size::<[u8; 9]>(2), Some(32));
        assert_eq!(data_size::<u64>(usize::MAX), None);
    }

    #[test]
    fn lanes_do_not_disturb_neighbours() {
        let r = region::<u8>(8);
        let e = elems::<u8>(&r, 8);
        for i in 0..8 {
            e.store(i, 0x10 + i as u8, Ordering::Relaxed);
        }
        assert_eq!(e.fetch_add(1, 0xff, Ordering::Relaxed), 0x11);
        assert_eq!(e.load(1, Ordering::Relaxed), 0x10, "wrapped within the lane");
        assert_eq!(e.fetch_sub(2, 0x13, Ordering::Relaxed), 0x12);
        assert_eq!(e.load(2, Ordering::Relaxed), 0xff);
        assert_eq!(e.fetch_and(3, 0x0f, Ordering::Relaxed), 0x13);
        assert_eq!(e.fetch_or(4, 0xf0, Ordering::Relaxed), 0x14);
        assert_eq!(e.fetch_xor(5, 0xff, Ordering::Relaxed), 0x15);
        assert_eq!(e.swap(6, 0x66, Ordering::Relaxed), 0x16);
        assert_eq!(e.compare_exchange(7, 0, 1, Ordering::Relaxed), Err(0x17));
        assert_eq!(e.compare_exchange(7, 0x17, 1, Ordering::Relaxed), Ok(0x17));
        let got: Vec<u8> = (0..8).map(|i| e.load(i, Ordering::Relaxed)).collect();
        assert_eq!(got, [0x10, 0x10, 0xff, 0x03, 0xf4, 0xea, 0x66, 0x01]);
        // Memory holds the bytes in order, as a [u8; 8] would.
        assert_eq!(
            r[0].load(Ordering::Relaxed).to_ne_bytes(),
            [0x10, 0x10, 0xff, 0x03, 0xf4, 0xea, 0x66, 0x01]
        );
    }

    #[test]
    fn signed_lanes_and_extrema() {
        let r = region::<i16>(3);
        let e = elems::<i16>(&r, 3);
        e.store(0, -5, Ordering::Relaxed);
        e.store(1, i16::MAX, Ordering::Relaxed);
        e.store(2, 7, Ordering::Relaxed);
        assert_eq!(e.fetch_add(1, 1, Ordering::Relaxed), i16::MAX);
        assert_eq!(e.load(1, Ordering::Relaxed), i16::MIN);
        assert_eq!(e.fetch_extremum(0, -9, true, Ordering::Relaxed), -5);
        assert_eq!(e.load(0, Ordering::Relaxed), -5);
        assert_eq!(e.fetch_extremum(0, -9, false, Ordering::Relaxed), -5);
        assert_eq!(e.load(0, Ordering::Relaxed), -9);
        assert_eq!(e.load(2, Ordering::Relaxed), 7);
        let r = region::<i64>(1);
        let e = elems::<i64>(&r, 1);
        assert_eq!(e.fetch_sub(0, 1, Ordering::Relaxed), 0);
        assert_eq!(e.fetch_extremum(0, 3, true, Ordering::Relaxed), -1);
        assert_eq!(e.load(0, Ordering::Relaxed), 3);
    }

    #[test]
    fn odd_sizes_and_wide_round_trip() {
        let r = region::<[u8; 3]>(3);
        let e = elems::<[u8; 3]>(&r, 3);
        for i in 0..3 {
            e.store(i, [i as u8, 0xaa, 0xbb], Ordering::Relaxed);
        }
        assert_eq!(e.load(2, Ordering::Relaxed), [2, 0xaa, 0xbb]);
        let r = region::<f64>(2);
        let e = elems::<f64>(&r, 2);
        e.store(1, -1.5, Ordering::Relaxed);
        assert_eq!(e.load(1, Ordering::Relaxed), -1.5);
        let r = region::<[u8; 12]>(2);
        let e = elems::<[u8; 12]>(&r, 2);
        let v: [u8; 12] = std::array::from_fn(|i| i as u8 + 1);
        e.store(1, v, Ordering::Relaxed);
        assert_eq!(e.load(1, Ordering::Relaxed), v);
        assert_eq!(e.load(0, Ordering::Relaxed), [0; 12]);
        e.store_words(0, [9; 12], Ordering::Relaxed, 1);
        assert_eq!(e.load(0, Ordering::Relaxed), [9, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0]);
    }

    #[test]
    fn lane_updates_race_without_loss() {
        let r = std::sync::Arc::new(region::<u8>(4));
        let ts: Vec<_> = (0..4)
            .map(|lane| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let e = elems::<u8>(&r, 4);
                    for _ in 0..10_000 {
                        e.fetch_add(lane, 1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        let e = elems::<u8>(&r, 4);
        for i in 0..4 {
            assert_eq!(e.load(i, Ordering::Relaxed), (10_000 % 256) as u8);
        }
    }
}
