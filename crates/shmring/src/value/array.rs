//! [`Array`] and [`RawArray`]: `len` elements of `T` in a segment of their own, the
//! generic handle [`Shared`] over an [`ArrayKind`] (see `store.rs` for the kind, the
//! segment and its parameters).

use super::elems::Integer;
use super::seqlock::{SeqWriteGuard, Torn};
use super::store::ArrayError;
use super::store::ArrayKind;
use crate::error::Result;
use crate::primitive::Ordering;
use crate::shm::SegmentOptions;
use crate::sync::Shared;
use bytemuck::Pod;
use postcard_schema::Schema;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// The methods of both flavors.
impl<T: Pod + Schema, const L: bool> Shared<ArrayKind<T, L>> {
    /// Create the named array `name` holding a copy of `init` (unlinked when
    /// this handle drops, unless [`keep`](Self::keep)).
    pub fn create(name: &str, init: &[T]) -> Result<Self> {
        Self::create_with(name, init, &SegmentOptions::default())
    }

    /// [`create`](Self::create) with segment options (mode, keep, prefault, ...).
    pub fn create_with(name: &str, init: &[T], opts: &SegmentOptions) -> Result<Self> {
        Self::create_array(Some(name), init.len(), Some(init), opts)
    }

    /// Open the named array `name`, or create it holding a copy of `init` if it does
    /// not exist; with `true` if this call created it (that handle unlinks the name
    /// when it drops). An existing array keeps its length and contents; one of another
    /// element type is refused as by [`open`](Self::open). See
    /// [`Shared::open_or_create`](crate::sync::Shared::open_or_create).
    pub fn open_or_create(name: &str, init: &[T]) -> Result<(Self, bool)> {
        Self::open_or_create_with(name, init, &SegmentOptions::default())
    }

    /// [`open_or_create`](Self::open_or_create) with segment options.
    pub fn open_or_create_with(name: &str, init: &[T], opts: &SegmentOptions) -> Result<(Self, bool)> {
        Self::open_or_create_by(name, opts, || Self::create_with(name, init, opts))
    }

    /// Create the named array `name` of `len` zeroed elements.
    pub fn create_zeroed(name: &str, len: usize) -> Result<Self> {
        Self::create_array(Some(name), len, None, &SegmentOptions::default())
    }

    /// An anonymous (memfd) array holding a copy of `init`; hand it to a child
    /// through [`AsFd`](rustix::fd::AsFd) and [`from_fd`](Self::from_fd).
    pub fn anonymous(init: &[T]) -> Result<Self> {
        Self::create_array(None, init.len(), Some(init), &SegmentOptions::default())
    }

    /// An anonymous array of `len` zeroed elements.
    pub fn anonymous_zeroed(len: usize) -> Result<Self> {
        Self::create_array(None, len, None, &SegmentOptions::default())
    }

    /// The number of elements (fixed at creation).
    pub fn len(&self) -> usize {
        self.count()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Element `i`: one atomic load (elements of up to 8 bytes) or a seqlock read
    /// of the element (never torn by a live writer; after a writer died
    /// mid-write, what it left: see [`is_torn`](Self::is_torn)).
    pub fn get(&self, i: usize) -> std::result::Result<T, ArrayError> {
        self.read_elem(i)
    }

    /// A copy of all elements, consistent with respect to every write that goes
    /// through the lock (`copy_from_slice`, wide `set`s, guards); each
    /// lock-free element write is atomic on its own. After a writer died
    /// mid-write, what it left (see [`to_vec_checked`](Self::to_vec_checked)).
    pub fn to_vec(&self) -> Vec<T> {
        self.read_all().unwrap_or_else(Torn::into_inner)
    }

    /// [`to_vec`](Self::to_vec), or `Err(Torn(elements))` while the array is
    /// flagged torn by a writer that died mid-write (until a whole write:
    /// `copy_from_slice` or a guard's `mark_consistent`).
    pub fn to_vec_checked(&self) -> std::result::Result<Vec<T>, Torn<Vec<T>>> {
        self.read_all()
    }

    /// Replace every element by `src`'s (which must have [`len`](Self::len)
    /// elements), in one write section under the lock: readers of
    /// [`to_vec`](Self::to_vec) see all or nothing of it. Clears a torn flag.
    pub fn copy_from_slice(&self, src: &[T]) -> std::result::Result<(), ArrayError> {
        self.write_all_from(src)
    }

    /// Whether the array is flagged torn (a snapshot).
    pub fn is_torn(&self) -> bool {
        self.sl().is_torn()
    }
}

/// Lock-free atomic operations on integer elements; arithmetic wraps around.
impl<T: Integer, const L: bool> Shared<ArrayKind<T, L>> {
    /// Element `i`, one atomic load (Acquire).
    pub fn load(&self, i: usize) -> std::result::Result<T, ArrayError> {
        let i = self.index(i)?;
        // Acquire: pairs with the Release of the element's writes.
        Ok(self.elems().load(i, Ordering::Acquire))
    }

    /// Store `v` in element `i`, one atomic store (Release); never takes the
    /// lock.
    pub fn store(&self, i: usize, v: T) -> std::result::Result<(), ArrayError> {
        let i = self.index(i)?;
        // Release: pairs with the Acquire of `load`/`get`.
        self.elems().store(i, v, Ordering::Release);
        Ok(())
    }

    /// Add `v` to element `i`; return its previous value.
    pub fn fetch_add(&self, i: usize, v: T) -> std::result::Result<T, ArrayError> {
        let i = self.index(i)?;
        // AcqRel: pairs with the Acquire/Release of every other access.
        Ok(self.elems().fetch_add(i, v, Ordering::AcqRel))
    }

    /// Subtract `v` from element `i`; return its previous value.
    pub fn fetch_sub(&self, i: usize, v: T) -> std::result::Result<T, ArrayError> {
        let i = self.index(i)?;
        // AcqRel: as in `fetch_add`.
        Ok(self.elems().fetch_sub(i, v, Ordering::AcqRel))
    }

    /// Bitwise and of element `i` with `v`; return its previous value.
    pub fn fetch_and(&self, i: usize, v: T) -> std::result::Result<T, ArrayError> {
        let i = self.index(i)?;
        // AcqRel: as in `fetch_add`.
        Ok(self.elems().fetch_and(i, v, Ordering::AcqRel))
    }

    /// Bitwise or of element `i` with `v`; return its previous value.
    pub fn fetch_or(&self, i: usize, v: T) -> std::result::Result<T, ArrayError> {
        let i = self.index(i)?;
        // AcqRel: as in `fetch_add`.
        Ok(self.elems().fetch_or(i, v, Ordering::AcqRel))
    }

    /// Bitwise xor of element `i` with `v`; return its previous value.
    pub fn fetch_xor(&self, i: usize, v: T) -> std::result::Result<T, ArrayError> {
        let i = self.index(i)?;
        // AcqRel: as in `fetch_add`.
        Ok(self.elems().fetch_xor(i, v, Ordering::AcqRel))
    }

    /// Store `v` in element `i`; return its previous value.
    pub fn swap(&self, i: usize, v: T) -> std::result::Result<T, ArrayError> {
        let i = self.index(i)?;
        // AcqRel: as in `fetch_add`.
        Ok(self.elems().swap(i, v, Ordering::AcqRel))
    }

    /// Store `new` in element `i` if it is `current`: `Ok(Ok(previous))`, else
    /// `Ok(Err(actual))`; `Err` if `i` is out of bounds.
    pub fn compare_exchange(
        &self,
        i: usize,
        current: T,
        new: T,
    ) -> std::result::Result<std::result::Result<T, T>, ArrayError> {
        let i = self.index(i)?;
        // AcqRel (Acquire on failure): as in `fetch_add`.
        Ok(self.elems().compare_exchange(i, current, new, Ordering::AcqRel))
    }

    /// Store the maximum of element `i` and `v`; return its previous value.
    pub fn fetch_max(&self, i: usize, v: T) -> std::result::Result<T, ArrayError> {
        let i = self.index(i)?;
        // AcqRel (Acquire when unchanged): as in `fetch_add`.
        Ok(self.elems().fetch_extremum(i, v, true, Ordering::AcqRel))
    }

    /// Store the minimum of element `i` and `v`; return its previous value.
    pub fn fetch_min(&self, i: usize, v: T) -> std::result::Result<T, ArrayError> {
        let i = self.index(i)?;
        // AcqRel (Acquire when unchanged): as in `fetch_add`.
        Ok(self.elems().fetch_extremum(i, v, false, Ordering::AcqRel))
    }
}

/// `len` elements of `T` in shared memory with a lock, like Python's
/// `multiprocessing.Array(..., lock=True)`.
///
/// Reads ([`get`](Array::get), [`to_vec`](Array::to_vec)) never block; plain writes
/// ([`set`](Array::set), [`copy_from_slice`](Array::copy_from_slice)) take the lock, so
/// they are serialized with [`lock`](Array::lock) compound updates; integer elements add
/// lock-free per-element `load`, `store`, `fetch_add`, `compare_exchange`, ... which do
/// not take it. Every index is bounds-checked ([`ArrayError`], never a panic). See the
/// [module docs](crate::value) for the storage and the seqlock.
///
/// ```
/// use shmring::value::Array;
///
/// let hist = Array::<u32>::anonymous_zeroed(4)?; // a child maps it with `Array::from_fd`
/// hist.fetch_add(1, 1)?;
/// hist.set(3, 9)?;
/// {
///     let mut all = hist.lock();                  // &mut [u32] under the lock
///     all.rotate_left(1);
/// }
/// assert_eq!(hist.to_vec(), [1, 0, 9, 0]);
/// assert!(hist.get(4).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Array<T> = Shared<ArrayKind<T, true>>;

impl<T: Pod + Schema> Array<T> {
    /// Store `v` in element `i`, under the lock (waiting for a [`lock`](Array::lock)
    /// guard): one atomic store, or one seqlock write section for elements wider than 8
    /// bytes.
    pub fn set(&self, i: usize, v: T) -> std::result::Result<(), ArrayError> {
        self.write_elem(i, v, true)
    }

    /// Lock the array for a compound update. The guard dereferences to `&mut [T]`, a
    /// copy of the elements taken now (one allocation of `2 * len` elements); when it
    /// drops, the elements that changed are written back in one seqlock write section,
    /// so [`to_vec`](Array::to_vec) sees the update all at once, and a holder killed
    /// before dropping its guard changes nothing. Lock-free element operations do not
    /// wait for the lock: one on an element the guard changed is overwritten by the
    /// write-back; elements the guard did not change keep theirs.
    ///
    /// The lock is not reentrant: calling `lock`, [`set`](Array::set) or
    /// [`copy_from_slice`](Array::copy_from_slice) while this thread holds the guard
    /// deadlocks (reads and lock-free element operations are fine).
    pub fn lock(&self) -> ArrayGuard<'_, T> {
        let lock = self.sl().write_lock();
        let e = self.elems();
        // No write section can be open now: read the elements directly. Acquire: pairs
        // with the Release of lock-free element writes.
        let data: Vec<T> = (0..e.len()).map(|i| e.load(i, Ordering::Acquire)).collect();
        ArrayGuard {
            store: self,
            lock,
            orig: data.clone(),
            data,
            whole: false,
        }
    }
}

/// `len` elements of `T` in shared memory without a user-visible lock, like Python's
/// `multiprocessing.RawArray`: reading or writing an element of up to 8 bytes is a
/// single lock-free atomic access.
///
/// Elements wider than 8 bytes, and [`copy_from_slice`](RawArray::copy_from_slice),
/// still write inside a seqlock section under the array's internal writer lock (held
/// for the copy only), so readers never see a torn element and concurrent writers are
/// safe.
///
/// ```
/// use shmring::value::RawArray;
///
/// let a = RawArray::anonymous(&[[0u8; 3]; 2])?;   // 3-byte elements: one word each
/// a.set(1, [1, 2, 3])?;
/// assert_eq!(a.get(1)?, [1, 2, 3]);
/// let b = RawArray::<i16>::anonymous_zeroed(3)?;
/// b.fetch_sub(0, 1)?;
/// assert_eq!(b.to_vec(), [-1, 0, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type RawArray<T> = Shared<ArrayKind<T, false>>;

impl<T: Pod + Schema> RawArray<T> {
    /// Store `v` in element `i`: one atomic store (up to 8 bytes), or one seqlock write
    /// section under the internal writer lock.
    pub fn set(&self, i: usize, v: T) -> std::result::Result<(), ArrayError> {
        self.write_elem(i, v, false)
    }
}

/// The lock of an [`Array`], held, with a copy of its elements to update
/// (`Deref<Target = [T]>`); writes back the changed elements and unlocks when dropped.
/// Not `Send`: the lock records the locking thread.
///
/// ```
/// use shmring::value::Array;
/// let a = Array::anonymous(&[3u64, 1, 2])?;
/// a.lock().sort();
/// assert_eq!(a.to_vec(), [1, 2, 3]);
/// # Ok::<(), shmring::Error>(())
/// ```
pub struct ArrayGuard<'a, T: Pod + Schema> {
    store: &'a Array<T>,
    lock: SeqWriteGuard<'a>,
    data: Vec<T>,
    orig: Vec<T>,
    whole: bool,
}

impl<T: Pod + Schema> ArrayGuard<'_, T> {
    /// Whether the array was flagged torn when the lock was taken (a writer died in the
    /// middle of a write).
    pub fn is_torn(&self) -> bool {
        self.store.sl().is_torn()
    }

    /// Declare the guard's copy whole: every element is written back on drop, which
    /// clears a torn flag.
    pub fn mark_consistent(&mut self) {
        self.whole = true;
    }
}

impl<T: Pod + Schema> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.data
    }
}

impl<T: Pod + Schema> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.data
    }
}

impl<T: Pod + Schema> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        let changed = |i: &usize| bytemuck::bytes_of(&self.data[*i]) != bytemuck::bytes_of(&self.orig[*i]);
        let whole = self.whole;
        if !whole && !(0..self.data.len()).any(|i| changed(&i)) {
            return;
        }
        let e = self.store.elems();
        let write = || {
            for i in (0..self.data.len()).filter(|i| whole || changed(i)) {
                // Release: pairs with the Acquire load of lock-free readers (`get`).
                e.store(i, self.data[i], Ordering::Release);
            }
        };
        if whole {
            self.lock.write_all(write);
        } else {
            self.lock.write(write);
        }
        // `lock` drops next and unlocks.
    }
}

impl<T: Pod + Schema + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.data, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn bounds_are_errors() {
        let a = Array::anonymous(&[1u32, 2, 3]).unwrap();
        let oob = Err(ArrayError::OutOfBounds { index: 3, len: 3 });
        assert_eq!(a.get(3), oob);
        assert_eq!(a.set(3, 0), Err(ArrayError::OutOfBounds { index: 3, len: 3 }));
        assert_eq!(
            a.fetch_add(usize::MAX, 1),
            Err(ArrayError::OutOfBounds {
                index: usize::MAX,
                len: 3
            })
        );
        assert_eq!(a.load(3), oob);
        assert!(a.compare_exchange(3, 0, 1).is_err());
        assert_eq!(a.to_vec(), [1, 2, 3]);
        let e = RawArray::<u8>::anonymous_zeroed(0).unwrap();
        assert!(e.is_empty());
        assert_eq!(e.get(0), Err(ArrayError::OutOfBounds { index: 0, len: 0 }));
        assert_eq!(e.to_vec(), Vec::<u8>::new());
        assert!(Array::<()>::anonymous_zeroed(3).is_err());
    }

    #[test]
    fn element_kinds() {
        let a = RawArray::anonymous(&[1u8, 2, 3, 4, 5]).unwrap();
        a.fetch_add(4, 251).unwrap();
        assert_eq!(a.to_vec(), [1, 2, 3, 4, 0]);
        let w = Array::anonymous(&[[1u32; 5], [2; 5], [3; 5]]).unwrap();
        w.set(1, [9; 5]).unwrap();
        assert_eq!(w.get(1), Ok([9; 5]));
        assert_eq!(w.to_vec(), [[1; 5], [9; 5], [3; 5]]);
        w.copy_from_slice(&[[4; 5]; 3]).unwrap();
        assert_eq!(w.to_vec_checked(), Ok(vec![[4; 5]; 3]));
        let f = Array::anonymous(&[0.5f32, 1.5]).unwrap();
        f.lock()[0] = 2.5;
        assert_eq!(f.to_vec(), [2.5, 1.5]);
    }

    #[test]
    fn guard_keeps_lock_free_updates_of_untouched_elements() {
        let a = Array::anonymous(&[0u64, 0]).unwrap();
        {
            let mut g = a.lock();
            g[0] = 5;
            a.fetch_add(1, 7).unwrap();
            a.fetch_add(0, 100).unwrap(); // overwritten by the write-back
        }
        assert_eq!(a.to_vec(), [5, 7]);
    }

    #[test]
    fn threads_count_per_element_and_snapshot_is_consistent() {
        let a = Arc::new(Array::<u16>::anonymous_zeroed(5).unwrap());
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for k in 0..10_000usize {
                        a.fetch_add(k % 5, 1).unwrap();
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(a.to_vec(), [8_000; 5]);
        // Guards update all elements together: a snapshot never sees them differ.
        let w = {
            let a = a.clone();
            std::thread::spawn(move || {
                for _ in 0..2_000 {
                    for x in a.lock().iter_mut() {
                        *x = x.wrapping_add(1);
                    }
                }
            })
        };
        while !w.is_finished() {
            let v = a.to_vec();
            assert!(v.iter().all(|x| *x == v[0]), "mixed snapshot {v:?}");
        }
        w.join().unwrap();
        assert_eq!(a.to_vec(), [10_000; 5]);
    }

    #[test]
    fn dead_thread_mid_write_back_is_torn() {
        let a = Arc::new(Array::anonymous(&[[1u64; 2]; 3]).unwrap());
        let a2 = a.clone();
        std::thread::spawn(move || {
            let g = a2.sl().write_lock();
            let e = a2.elems();
            g.abandon_in_section(|| e.store(0, [2; 2], Ordering::Relaxed));
        })
        .join()
        .unwrap();
        assert_eq!(a.get(1), Ok([1; 2]), "readers recover");
        assert!(a.is_torn());
        assert_eq!(a.to_vec_checked(), Err(Torn(vec![[2; 2], [1; 2], [1; 2]])));
        a.lock().mark_consistent();
        assert!(!a.is_torn());
        assert_eq!(a.to_vec_checked(), Ok(vec![[2; 2], [1; 2], [1; 2]]));
    }

    #[test]
    fn named_open_checks_type_flavor_and_length() {
        let name = format!("shmring-unit-array-{}", std::process::id());
        let a = Array::create(&name, &[1u32, 2]).unwrap();
        let o = Array::<u32>::open(&name).unwrap();
        assert_eq!(o.len(), 2);
        o.store(1, 5).unwrap();
        assert_eq!(a.to_vec(), [1, 5]);
        assert!(Array::<i32>::open(&name).is_err());
        assert!(RawArray::<u32>::open(&name).is_err());
        assert!(crate::value::Value::<u32>::open(&name).is_err());
        drop(a);
        assert!(Array::<u32>::open(&name).is_err());
    }
}
