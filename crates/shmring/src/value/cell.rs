//! [`Value`] and [`RawValue`]: one `T` in a segment of its own, an array of one.
//!
//! The segment of a `Value<T>` is that of an `Array<T>` of length 1 (a `RawValue<T>`: of
//! a `RawArray<T>`): the same area (the seqlock on its line, the element at
//! `DATA_OFFSET`) and the same parameter words (see `store.rs`), the length word 1. Only
//! the segment kind differs ([`SegmentKind::Value`]), so a value and an array of one
//! are not opened as each other. [`ValueKind`] delegates the parameters, the area size,
//! the set-up and the validation to [`ArrayKind`], and every access is the array's
//! element code at index 0.

use super::elems::{Integer, Repr};
use super::seqlock::{SeqWriteGuard, Torn};
use super::store::{ArrayHead, ArrayInit, ArrayKind, ArrayLike, ArrayLocal, LOCKED, RAW};
use crate::error::{Error, Result};
use crate::handoff;
use crate::primitive::Ordering;
use crate::shm::SegmentKind;
use crate::sync::Shared;
use crate::sync::handle::{Kind, Sealed, Valued};
use crate::sync::shared::Area;
use bytemuck::Pod;
use postcard_schema::Schema;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

const fn flavor_name(f: u64) -> &'static str {
    match f {
        LOCKED => "Value",
        RAW => "RawValue",
        _ => "value of unknown flavor",
    }
}

const fn flavor(locked: bool) -> u64 {
    if locked { LOCKED } else { RAW }
}

/// The [`Kind`] of a [`Value`] (`LOCKED` true) and of a [`RawValue`] (`LOCKED` false):
/// one `T` in a segment of its own, an array of one.
pub struct ValueKind<T, const LOCKED: bool>(PhantomData<fn() -> T>, std::convert::Infallible);

impl<T, const LOCKED: bool> fmt::Debug for ValueKind<T, LOCKED> {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {}
    }
}

/// The array of one a value is.
type One<T, const L: bool> = ArrayKind<T, L>;

fn one<T>() -> ArrayInit<T> {
    ArrayInit::new(1, None)
}

impl<T: Pod + Schema, const L: bool> Sealed for ValueKind<T, L> {
    type Area = ArrayHead;
    type Init = T;
    type Local = ArrayLocal;
    const SEGMENT: SegmentKind = SegmentKind::Value;
    const HANDOFF: handoff::Kind = if L {
        handoff::Kind::Value
    } else {
        handoff::Kind::RawValue
    };
    const NAME: &'static str = flavor_name(flavor(L));

    fn shape() -> Option<crate::shm::Shape> {
        One::<T, L>::shape()
    }

    fn params(_: &T) -> Result<[u64; 8]> {
        One::<T, L>::params(&one())
    }

    /// The array's area for one element; unlike an array, a value may be of a
    /// zero-sized type (its element still takes a storage word).
    fn area_size(_: &T) -> Result<usize> {
        super::store::area_size::<T>(1).ok_or_else(|| Error::InvalidArgument("a value too large".into()))
    }

    /// The flavor (checked here for the value's names), the length (1), then the
    /// array's checks.
    fn area_size_in(p: &[u64; 8], name: &str) -> Result<usize> {
        if p[3] != flavor(L) {
            return Err(Error::InvalidArgument(format!(
                "segment {name:?} holds a {}, not a {}",
                flavor_name(p[3]),
                flavor_name(flavor(L))
            )));
        }
        if p[2] != 1 {
            return Err(Error::Corrupted {
                name: name.to_owned(),
                what: format!("a value of {} elements", p[2]),
            });
        }
        One::<T, L>::area_size_in(p, name)
    }

    fn init(a: &Area<ArrayHead>, value: T) {
        // `value` lives until `init` returns, which is all `ArrayInit` needs.
        One::<T, L>::init(a, ArrayInit::new(1, Some(std::slice::from_ref(&value))));
    }

    fn attach(a: &Area<ArrayHead>, p: &[u64; 8], name: &str) -> Result<ArrayLocal> {
        One::<T, L>::attach(a, p, name)
    }

    fn clone_local(a: &ArrayHead, local: &ArrayLocal, name: &str) -> Result<ArrayLocal> {
        One::<T, L>::clone_local(a, local, name)
    }

    fn debug_fields(a: &ArrayHead, _: &ArrayLocal, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("seq", &a.seq);
    }
}

impl<T: Pod + Schema, const L: bool> Kind for ValueKind<T, L> {}
impl<T: Pod + Schema, const L: bool> Valued for ValueKind<T, L> {}

impl<T: Pod + Schema, const L: bool> ArrayLike for ValueKind<T, L> {
    type Elem = T;

    /// Always 1 (the length word was checked at open): accesses at index 0 need no
    /// bounds check.
    fn len(_: &ArrayLocal) -> usize {
        1
    }
}

/// The value-specific accesses, over the array's element code at index 0.
impl<T: Pod + Schema, const L: bool> Shared<ValueKind<T, L>> {
    fn abandon_cell_store_midway(&self, v: T) {
        let g = self.sl().write_lock();
        match Repr::of::<T>() {
            Repr::Wide(n) => {
                let e = self.elems();
                g.abandon_in_section(|| e.store_words(0, v, Ordering::Relaxed, n / 2));
            }
            _ => std::mem::forget(g),
        }
    }
}

/// The methods of both flavors.
impl<T: Pod + Schema, const L: bool> Shared<ValueKind<T, L>> {
    /// The value: one complete store, never a mix of two. Never blocks a writer
    /// (see the [module docs](crate::value) for the slow path). After a writer
    /// died in the middle of a store, the words it left (flagged: see
    /// [`load_checked`](Self::load_checked)).
    pub fn load(&self) -> T {
        self.read_at(0).unwrap_or_else(Torn::into_inner)
    }

    /// [`load`](Self::load), or `Err(Torn(words))` while the value is flagged
    /// torn by a writer that died in the middle of a store (until the next
    /// `store`). Narrow values are never torn.
    pub fn load_checked(&self) -> Result<T, Torn<T>> {
        self.read_at(0)
    }

    /// Whether the value is flagged torn (a snapshot).
    pub fn is_torn(&self) -> bool {
        self.sl().is_torn()
    }

    /// Test hook: start a store of `v` and stop half-way with the writer lock
    /// held (wide `T`: the sequence odd and the first half of the words
    /// written; narrow: nothing written) — what a writer killed mid-store leaves.
    /// The calling thread must then exit or be killed.
    #[doc(hidden)]
    pub fn abandon_store_midway(&self, v: T) {
        self.abandon_cell_store_midway(v);
    }
}

/// Lock-free atomic operations of integer cells; arithmetic wraps around.
impl<T: Integer, const L: bool> Shared<ValueKind<T, L>> {
    /// Add `v`; return the previous value.
    pub fn fetch_add(&self, v: T) -> T {
        // AcqRel: pairs with the Acquire/Release of every other access.
        self.elems().fetch_add(0, v, Ordering::AcqRel)
    }

    /// Subtract `v`; return the previous value.
    pub fn fetch_sub(&self, v: T) -> T {
        // AcqRel: as in `fetch_add`.
        self.elems().fetch_sub(0, v, Ordering::AcqRel)
    }

    /// Bitwise and with `v`; return the previous value.
    pub fn fetch_and(&self, v: T) -> T {
        // AcqRel: as in `fetch_add`.
        self.elems().fetch_and(0, v, Ordering::AcqRel)
    }

    /// Bitwise or with `v`; return the previous value.
    pub fn fetch_or(&self, v: T) -> T {
        // AcqRel: as in `fetch_add`.
        self.elems().fetch_or(0, v, Ordering::AcqRel)
    }

    /// Bitwise xor with `v`; return the previous value.
    pub fn fetch_xor(&self, v: T) -> T {
        // AcqRel: as in `fetch_add`.
        self.elems().fetch_xor(0, v, Ordering::AcqRel)
    }

    /// Store `v`; return the previous value.
    pub fn swap(&self, v: T) -> T {
        // AcqRel: as in `fetch_add`.
        self.elems().swap(0, v, Ordering::AcqRel)
    }

    /// Store `new` if the value is `current`: `Ok(previous)`, else
    /// `Err(actual)`.
    pub fn compare_exchange(&self, current: T, new: T) -> std::result::Result<T, T> {
        // AcqRel (Acquire on failure): as in `fetch_add`.
        self.elems().compare_exchange(0, current, new, Ordering::AcqRel)
    }

    /// Store the maximum of the value and `v`; return the previous value.
    pub fn fetch_max(&self, v: T) -> T {
        // AcqRel (Acquire when unchanged): as in `fetch_add`.
        self.elems().fetch_extremum(0, v, true, Ordering::AcqRel)
    }

    /// Store the minimum of the value and `v`; return the previous value.
    pub fn fetch_min(&self, v: T) -> T {
        // AcqRel (Acquire when unchanged): as in `fetch_add`.
        self.elems().fetch_extremum(0, v, false, Ordering::AcqRel)
    }
}

/// A `T` in shared memory with a lock, like Python's `multiprocessing.Value(..., lock=True)`.
///
/// [`load`](Value::load) never blocks and never returns a torn value;
/// [`store`](Value::store) takes the lock (so it is serialized with
/// [`get_lock`](Value::get_lock) compound updates); integer cells add lock-free
/// `fetch_add`, `swap`, `compare_exchange`, ... which do not take the lock. Values wider
/// than 8 bytes are a seqlock. See the [module docs](crate::value) for the storage, the
/// protocol and what happens when a writer is killed mid-store.
///
/// ```
/// use shmring::value::Value;
///
/// let counter = Value::anonymous(0i64)?;   // a child maps it with `Value::from_fd`
/// counter.fetch_add(5);
/// {
///     let mut g = counter.get_lock();      // a compound update under the lock
///     *g = *g * 2 + 1;
/// }
/// assert_eq!(counter.load(), 11);
/// # Ok::<(), shmring::Error>(())
/// ```
pub type Value<T> = Shared<ValueKind<T, true>>;

impl<T: Pod + Schema> Value<T> {
    /// Store `v`, under the lock (waiting for a [`get_lock`](Value::get_lock) guard).
    /// Wide values: one seqlock write section, which also clears a torn flag.
    pub fn store(&self, v: T) {
        // Always under the lock; a store of the whole value clears a torn flag.
        self.write_at(0, v, true, true);
    }

    /// Lock the value for a compound update. The guard dereferences to a copy of the
    /// value taken now, and writes it back when dropped, if changed (one atomic store,
    /// or one seqlock write section) — so readers see the update all at once, and a
    /// holder killed before dropping its guard changes nothing. Atomic operations
    /// (`fetch_add`, ...) do not wait for the lock: one that runs while a guard is held
    /// is overwritten by the guard's write-back.
    ///
    /// A holder that died with the lock is recovered here (see the module docs); the
    /// guard's [`is_torn`](ValueGuard::is_torn) says whether it died mid-store. The lock
    /// is not reentrant: calling `get_lock` or [`store`](Value::store) while this
    /// thread holds the guard deadlocks (`load` and the atomic operations are fine).
    pub fn get_lock(&self) -> ValueGuard<'_, T> {
        let lock = self.sl().write_lock();
        // No writer can be in a section now: read the words directly. Acquire: pairs
        // with the Release of lock-free writes (narrow values).
        let value = self.elems().load(0, Ordering::Acquire);
        ValueGuard {
            cell: self,
            lock,
            value,
            orig: value,
            whole: false,
        }
    }
}

/// A `T` in shared memory without a user-visible lock, like Python's
/// `multiprocessing.RawValue`: every operation on a value of up to 8 bytes is a single
/// lock-free atomic access.
///
/// Values wider than 8 bytes are still a seqlock: their [`store`](RawValue::store)
/// serializes on the cell's internal writer lock for the duration of the copy (never
/// across user code), so concurrent writers are safe (the last to take the lock wins
/// whole) and readers never see a torn value.
///
/// ```
/// use shmring::value::RawValue;
///
/// let flags = RawValue::anonymous(0u32)?;
/// flags.fetch_or(0b100);
/// assert_eq!(flags.compare_exchange(0b100, 0b110), Ok(0b100));
/// let wide = RawValue::anonymous([0u64; 4])?;
/// wide.store([7; 4]);
/// assert_eq!(wide.load(), [7; 4]);
/// # Ok::<(), shmring::Error>(())
/// ```
pub type RawValue<T> = Shared<ValueKind<T, false>>;

impl<T: Pod + Schema> RawValue<T> {
    /// Store `v`: one atomic store (up to 8 bytes), or one seqlock write section under
    /// the internal writer lock (which also clears a torn flag).
    pub fn store(&self, v: T) {
        // Narrow: lock-free; wide: under the internal lock, clearing a torn flag.
        self.write_at(0, v, false, true);
    }
}

/// The lock of a [`Value`], held, with a copy of the value to update; writes the copy
/// back (if changed) and unlocks when dropped. Not `Send`: the lock records the locking
/// thread.
///
/// ```
/// use shmring::value::Value;
/// let v = Value::anonymous([1u32, 2, 3, 4, 5])?;
/// let mut g = v.get_lock();
/// g.swap(0, 4);
/// drop(g);
/// assert_eq!(v.load(), [5, 2, 3, 4, 1]);
/// # Ok::<(), shmring::Error>(())
/// ```
pub struct ValueGuard<'a, T: Pod + Schema> {
    cell: &'a Value<T>,
    lock: SeqWriteGuard<'a>,
    value: T,
    orig: T,
    whole: bool,
}

impl<T: Pod + Schema> ValueGuard<'_, T> {
    /// Whether the value was flagged torn when the lock was taken (a writer died in
    /// the middle of a store).
    pub fn is_torn(&self) -> bool {
        self.cell.sl().is_torn()
    }

    /// Declare the guard's copy whole: it is written back on drop even if unchanged,
    /// which clears a torn flag.
    pub fn mark_consistent(&mut self) {
        self.whole = true;
    }
}

impl<T: Pod + Schema> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Pod + Schema> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: Pod + Schema> Drop for ValueGuard<'_, T> {
    fn drop(&mut self) {
        if self.whole || bytemuck::bytes_of(&self.value) != bytemuck::bytes_of(&self.orig) {
            self.cell.set_locked(&mut self.lock, 0, self.value, true);
        }
        // `lock` drops next and unlocks.
    }
}

impl<T: Pod + Schema + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn narrow_kinds_round_trip() {
        let v = Value::anonymous(1.5f64).unwrap();
        assert_eq!(v.load(), 1.5);
        v.store(-2.25);
        assert_eq!(v.load_checked(), Ok(-2.25));
        let v = RawValue::anonymous([1u8, 2, 3]).unwrap();
        v.store([4, 5, 6]);
        assert_eq!(v.load(), [4, 5, 6]);
        let v = Value::anonymous(()).unwrap();
        v.store(());
        assert_eq!(v.load(), ());
        let v = Value::anonymous(u128::MAX).unwrap();
        assert_eq!(v.load(), u128::MAX);
    }

    #[test]
    fn integer_ops() {
        let v = Value::anonymous(10u16).unwrap();
        assert_eq!(v.fetch_add(u16::MAX), 10);
        assert_eq!(v.load(), 9);
        assert_eq!(v.fetch_sub(10), 9);
        assert_eq!(v.load(), u16::MAX);
        assert_eq!(v.fetch_and(0xf0), u16::MAX);
        assert_eq!(v.fetch_or(0x0f), 0xf0);
        assert_eq!(v.fetch_xor(0xff), 0xff);
        assert_eq!(v.swap(7), 0);
        assert_eq!(v.compare_exchange(8, 9), Err(7));
        assert_eq!(v.compare_exchange(7, 9), Ok(7));
        assert_eq!(v.fetch_max(3), 9);
        assert_eq!(v.fetch_min(3), 9);
        assert_eq!(v.load(), 3);
        let v = RawValue::anonymous(-1i64).unwrap(); // isize has no Schema (platform-sized)
        assert_eq!(v.fetch_max(-5), -1);
        assert_eq!(v.fetch_min(-5), -1);
        assert_eq!(v.fetch_add(10), -5);
        assert_eq!(v.load(), 5);
        let v = Value::anonymous(i8::MIN).unwrap();
        assert_eq!(v.fetch_sub(1), i8::MIN);
        assert_eq!(v.load(), i8::MAX);
    }

    #[test]
    fn threads_fetch_add_exactly() {
        let v = Arc::new(Value::anonymous(0u32).unwrap());
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let v = v.clone();
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        v.fetch_add(1);
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(v.load(), 200_000);
    }

    #[test]
    fn guard_writes_back_only_changes() {
        let v = Value::anonymous(5u64).unwrap();
        {
            let g = v.get_lock();
            // Unchanged: no write-back, so a lock-free update meanwhile survives.
            v.fetch_add(1);
            assert_eq!(*g, 5);
        }
        assert_eq!(v.load(), 6);
        {
            let mut g = v.get_lock();
            *g += 10;
            assert_eq!(v.load(), 6, "not visible before the guard drops");
        }
        assert_eq!(v.load(), 16);
    }

    #[test]
    fn wide_guard_and_threads_see_whole_values() {
        let v = Arc::new(Value::anonymous([0u64; 8]).unwrap());
        let w = {
            let v = v.clone();
            std::thread::spawn(move || {
                for i in 1..=5_000u64 {
                    if i % 2 == 0 {
                        v.store([i; 8]);
                    } else {
                        let mut g = v.get_lock();
                        *g = [i; 8];
                    }
                }
            })
        };
        let mut distinct = 0;
        let mut last = 0;
        while !w.is_finished() {
            let x = v.load();
            assert!(x.iter().all(|e| *e == x[0]), "torn {x:?}");
            if x[0] != last {
                distinct += 1;
                last = x[0];
            }
        }
        w.join().unwrap();
        assert_eq!(v.load(), [5_000; 8]);
        eprintln!("{distinct} distinct values seen");
    }

    #[test]
    fn dead_thread_mid_store_is_recovered_as_torn() {
        let v = Arc::new(Value::anonymous([1u64; 4]).unwrap());
        let v2 = v.clone();
        std::thread::spawn(move || v2.abandon_store_midway([2; 4]))
            .join()
            .unwrap();
        let t = Instant::now();
        assert_eq!(v.load(), [2, 2, 1, 1]);
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(v.is_torn());
        assert_eq!(v.load_checked(), Err(Torn([2, 2, 1, 1])));
        {
            let mut g = v.get_lock();
            assert!(g.is_torn());
            g.mark_consistent();
        }
        assert_eq!(v.load_checked(), Ok([2, 2, 1, 1]));
        // A narrow cell's dead holder: the next store recovers, nothing is torn.
        let n = Arc::new(Value::anonymous(1u32).unwrap());
        let n2 = n.clone();
        std::thread::spawn(move || n2.abandon_store_midway(2)).join().unwrap();
        n.store(3);
        assert_eq!(n.load_checked(), Ok(3));
    }

    #[test]
    fn named_open_checks_type_and_flavor() {
        let name = format!("shmring-unit-value-{}", std::process::id());
        let v = Value::create(&name, 5u64).unwrap();
        let o = Value::<u64>::open(&name).unwrap();
        o.fetch_add(1);
        assert_eq!(v.load(), 6);
        assert_eq!(o.name(), Some(name.as_str()));
        assert!(Value::<i64>::open(&name).is_err());
        assert!(Value::<u32>::open(&name).is_err());
        assert!(RawValue::<u64>::open(&name).is_err());
        assert!(crate::sync::Mutex::<u64>::open(&name).is_err());
        let c = v.try_clone().unwrap();
        drop(v);
        assert!(Value::<u64>::open(&name).is_err(), "unlinked by the creator");
        assert_eq!(c.load(), 6);
    }

    #[test]
    fn a_value_is_an_array_of_one_but_not_opened_as_one() {
        let name = format!("shmring-unit-value-one-{}", std::process::id());
        let v = RawValue::create(&name, [3u64; 2]).unwrap();
        // The same area and parameters as a RawArray of one, the element at index 0.
        assert_eq!(v.count(), 1);
        assert_eq!(v.elems().load(0, Ordering::Relaxed), [3; 2]);
        let p = <ValueKind<[u64; 2], false> as Sealed>::params(&[0; 2]).unwrap();
        let q = <ArrayKind<[u64; 2], false> as Sealed>::params(&ArrayInit::new(1, None)).unwrap();
        assert_eq!(p, q);
        assert!(
            Value::anonymous(()).is_ok(),
            "unlike an array, a zero-sized value is fine"
        );
        assert_eq!(
            <ValueKind<[u64; 2], false> as Sealed>::area_size(&[0; 2]).unwrap(),
            <ArrayKind<[u64; 2], false> as Sealed>::area_size(&ArrayInit::new(1, None)).unwrap()
        );
        // Only the segment kind differs: neither opens as the other.
        assert!(crate::value::RawArray::<[u64; 2]>::open(&name).is_err());
        let a_name = format!("shmring-unit-array-one-{}", std::process::id());
        let _a = crate::value::RawArray::create(&a_name, &[[1u64; 2]]).unwrap();
        assert!(RawValue::<[u64; 2]>::open(&a_name).is_err());
        // A corrupted length word is refused, never read out of bounds.
        let mut bad = p;
        bad[2] = 2;
        assert!(matches!(
            <ValueKind<[u64; 2], false> as Sealed>::area_size_in(&bad, "x"),
            Err(Error::Corrupted { .. })
        ));
    }
}
