//! [`Mutex<T>`] and [`RLock`]: a [`RawMutex`] in a segment of its own (with a `Pod` value
//! for the mutex).
//!
//! Segment parameters of a [`SegmentKind::Mutex`] (see also `shared.rs`): 0 the size
//! of `T`, 1 its fingerprint. A [`SegmentKind::RLock`] has none.

use super::*;
use crate::error::Result;
use crate::handoff;
use crate::shm::{SegmentKind, SegmentOptions};
use crate::sync::handle::{Kind, Sealed, Shared, Valued};
use crate::sync::shared::{Area, typed_params};
use bytemuck::Pod;
use postcard_schema::Schema;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// The area of a [`Mutex<T>`]: the lock, then the value it guards.
#[repr(C)]
pub struct MutexArea<T> {
    pub(crate) raw: RawMutex,
    pub(crate) data: UnsafeCell<T>,
}

impl<T> fmt::Debug for MutexArea<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexArea")
            .field("raw", &self.raw)
            .finish_non_exhaustive()
    }
}

// SAFETY: the value is only reached through the lock; T: Pod + Schema + Send holds no
// thread-bound state, and `&MutexArea` only gives `&mut T` to the lock holder.
unsafe impl<T: Pod + Schema + Send> Sync for MutexArea<T> {}

/// The [`Kind`] of a [`Mutex<T>`]: a [`RawMutex`] and a `T` in a segment of their own.
pub struct MutexKind<T>(PhantomData<fn() -> T>, std::convert::Infallible);

impl<T> fmt::Debug for MutexKind<T> {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {}
    }
}

impl<T: Pod + Schema + Send> Sealed for MutexKind<T> {
    type Area = MutexArea<T>;
    type Init = T;
    type Local = ();
    const SEGMENT: SegmentKind = SegmentKind::Mutex;
    const HANDOFF: handoff::Kind = handoff::Kind::Mutex;
    const NAME: &'static str = "Mutex";

    fn shape() -> Option<crate::shm::Shape> {
        Some(crate::shm::Shape::of_pod::<T>())
    }

    fn params(_: &T) -> Result<[u64; 8]> {
        Ok(typed_params::<T>())
    }

    fn init(a: &Area<MutexArea<T>>, value: T) {
        let a = a.get();
        // SAFETY: the segment is not published yet: nobody else maps it.
        unsafe { a.data.get().write(value) };
    }

    fn attach(_: &Area<MutexArea<T>>, _: &[u64; 8], _: &str) -> Result<()> {
        Ok(())
    }

    fn clone_local(_: &MutexArea<T>, _: &(), _: &str) -> Result<()> {
        Ok(())
    }

    fn debug_fields(a: &MutexArea<T>, _: &(), d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("raw", &a.raw);
    }
}

impl<T: Pod + Schema + Send> Kind for MutexKind<T> {}
impl<T: Pod + Schema + Send> Valued for MutexKind<T> {}

/// A robust process-shared mutex guarding a `T` in its own segment, like Python's
/// `multiprocessing.Lock` plus the value it protects (`Value(..., lock=True)`); created
/// with the value (`create(name, value)`, `anonymous(value)`).
///
/// `T` is [`bytemuck::Pod`]: plain data, valid for any bytes a peer may write, with
/// no pointers (which would mean nothing in another process). Use `()` for a bare
/// lock. `open` and `from_fd` check that the object was created for this `T`.
///
/// If a holder dies (even by `SIGKILL`), the next locker gets [`OwnerDied`] with the
/// guard; see the [module docs](crate::sync::mutex) for the protocol.
///
/// ```
/// use shmring::sync::Mutex;
/// let m = Mutex::anonymous(0u64)?;          // hand to a child with `as_fd`
/// *m.lock().unwrap() += 1;
/// assert_eq!(*m.lock().unwrap(), 1);
/// # Ok::<(), shmring::Error>(())
/// ```
///
/// The segment methods (`open`, `open_with`, `from_fd`, `try_clone`, `keep`, `name`,
/// `as_fd`, the hand-off) are those of [`Shared`], written once for every kind.
pub type Mutex<T> = Shared<MutexKind<T>>;

impl<T: Pod + Schema + Send> Mutex<T> {
    /// The lock itself.
    pub fn raw(&self) -> &RawMutex {
        &self.area().raw
    }

    fn guard(area: &MutexArea<T>) -> MutexGuard<'_, T> {
        MutexGuard {
            area,
            _not_send: PhantomData,
        }
    }

    /// Lock, sleeping while another thread holds it.
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        let area = self.area();
        match area.raw.lock() {
            Ok(()) => Ok(Self::guard(area)),
            Err(e) => Err(e.map(|()| Self::guard(area))),
        }
    }

    /// Lock, sleeping while another thread holds it, unless an interrupt is pending
    /// ([`LockError::Interrupted`], see [`RawMutex::lock_interruptible`]).
    pub fn lock_interruptible(&self) -> Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        let area = self.area();
        match area.raw.lock_interruptible() {
            Ok(()) => Ok(Self::guard(area)),
            Err(e) => Err(e.map(|()| Self::guard(area))),
        }
    }

    /// Lock if free now.
    pub fn try_lock(&self) -> Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        let area = self.area();
        match area.raw.try_lock() {
            Ok(()) => Ok(Self::guard(area)),
            Err(e) => Err(e.map(|()| Self::guard(area))),
        }
    }

    /// Lock, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        let area = self.area();
        match area.raw.lock_timeout(timeout) {
            Ok(()) => Ok(Self::guard(area)),
            Err(e) => Err(e.map(|()| Self::guard(area))),
        }
    }

    /// Lock, sleeping while another thread holds it; if the previous holder died
    /// holding it, take the lock anyway and **accept the value as it was left**: the
    /// lock is marked consistent (later lockers get a clean `Ok`) and no error is
    /// returned. For values that any holder leaves valid at every step (a counter, a
    /// flag, a snapshot) and for `main`s that end with `?`, where the
    /// [`OwnerDied`] of [`lock`](Self::lock) cannot travel (it holds a guard that
    /// borrows the mutex). Use `lock` to be told and repair.
    ///
    /// ```
    /// use shmring::sync::Mutex;
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let m = Mutex::anonymous(0u64)?;
    ///     *m.lock_recover() += 1;
    ///     assert_eq!(m.get(), 1);
    ///     Ok(())
    /// }
    /// ```
    pub fn lock_recover(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|died| {
            let g = died.into_inner();
            g.mark_consistent();
            g
        })
    }

    /// A copy of the value, read under the lock (recovering from a dead owner).
    pub fn get(&self) -> T {
        *self.lock().unwrap_or_else(OwnerDied::into_inner)
    }
}

/// Access to a [`Mutex`]'s value; unlocks when dropped. Not `Send`: the lock
/// records the locking thread.
///
/// ```
/// use shmring::sync::Mutex;
/// let m = Mutex::anonymous([0u64; 4])?;
/// {
///     let mut g = m.lock().unwrap();
///     g[0] += 1; // DerefMut to the shared value
/// } // unlocked here
/// assert_eq!(m.get(), [1, 0, 0, 0]);
/// # Ok::<(), shmring::Error>(())
/// ```
pub struct MutexGuard<'a, T: Pod + Schema + Send> {
    /// The locked area (the lock and the value), reached once when locking: the guard's
    /// deref and drop then cost no second look through the handle and its segment.
    area: &'a MutexArea<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T: Pod + Schema + Send> MutexGuard<'_, T> {
    /// Declare the value consistent after repairing it following [`OwnerDied`].
    pub fn mark_consistent(&self) {
        self.area.raw.mark_consistent();
    }
}

impl<T: Pod + Schema + Send> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock, so no other party (that follows the protocol)
        // accesses the value; it is valid for any bytes (Pod) and lives in the
        // mapping, which outlives the guard.
        unsafe { &*self.area.data.get() }
    }
}

impl<T: Pod + Schema + Send> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the guard is borrowed mutably.
        unsafe { &mut *self.area.data.get() }
    }
}

impl<T: Pod + Schema + Send> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { self.area.raw.unlock() };
    }
}

impl<T: Pod + Schema + Send + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A reentrant robust lock (Python's `multiprocessing.RLock`): the holding thread may
/// lock it again; it is released when every acquisition has been released.
///
/// ```
/// use shmring::sync::RLock;
/// let l = RLock::anonymous()?;
/// let a = l.lock().unwrap();
/// let b = l.lock().unwrap(); // same thread: no deadlock
/// drop(b);
/// drop(a);
/// assert!(!l.raw().is_locked());
/// # Ok::<(), shmring::Error>(())
/// ```
///
/// The segment methods (`open`, `open_with`, `from_fd`, `try_clone`, `keep`, `name`,
/// `as_fd`, the hand-off) are those of [`Shared`], written once for every kind.
pub type RLock = Shared<RLockKind>;

/// The [`Kind`] of an [`RLock`]: a [`RawMutex`] in a segment of its own (no
/// parameters; all-zero bytes are an unlocked lock).
#[derive(Debug)]
pub enum RLockKind {}

impl Sealed for RLockKind {
    type Area = RawMutex;
    type Init = ();
    type Local = ();
    const SEGMENT: SegmentKind = SegmentKind::RLock;
    const HANDOFF: handoff::Kind = handoff::Kind::RLock;
    const NAME: &'static str = "RLock";

    fn params(_: &()) -> Result<[u64; 8]> {
        Ok([0; 8])
    }

    fn init(_: &Area<RawMutex>, _: ()) {}

    fn attach(_: &Area<RawMutex>, _: &[u64; 8], _: &str) -> Result<()> {
        Ok(())
    }

    fn clone_local(_: &RawMutex, _: &(), _: &str) -> Result<()> {
        Ok(())
    }

    fn debug_fields(raw: &RawMutex, _: &(), d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("raw", raw);
    }
}

impl Kind for RLockKind {}

impl RLock {
    /// Create the named lock `name` (unlinked when this handle drops, unless
    /// [`keep`](Shared::keep)).
    pub fn create(name: &str) -> Result<Self> {
        Self::create_in(Some(name), (), &SegmentOptions::default())
    }

    /// [`create`](Self::create) with segment options (mode, keep, ...).
    pub fn create_with(name: &str, opts: &SegmentOptions) -> Result<Self> {
        Self::create_in(Some(name), (), opts)
    }

    /// Open the named lock `name`, or create it (lock) if it does not exist;
    /// with `true` if this call created it (that handle unlinks the name when it drops).
    /// See [`Shared::open_or_create`].
    pub fn open_or_create(name: &str) -> Result<(Self, bool)> {
        Self::open_or_create_with(name, &SegmentOptions::default())
    }

    /// [`open_or_create`](Self::open_or_create) with segment options.
    pub fn open_or_create_with(name: &str, opts: &SegmentOptions) -> Result<(Self, bool)> {
        Self::open_or_create_by(name, opts, || Self::create_in(Some(name), (), opts))
    }

    /// An anonymous (memfd) lock; hand it to a child through
    /// [`AsFd`](rustix::fd::AsFd) and [`from_fd`](Shared::from_fd).
    pub fn anonymous() -> Result<Self> {
        Self::create_in(None, (), &SegmentOptions::default())
    }

    /// The lock word.
    pub fn raw(&self) -> &RawMutex {
        self.area()
    }

    fn guard(&self) -> RLockGuard<'_> {
        RLockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Lock (again, if this thread holds it).
    pub fn lock(&self) -> LockResult<RLockGuard<'_>> {
        match self.raw().lock_reentrant(|m| m.lock().map_err(LockError::OwnerDied)) {
            Ok(()) => Ok(self.guard()),
            Err(LockError::OwnerDied(o)) => Err(o.map(|()| self.guard())),
            Err(_) => unreachable!("a blocking lock only returns Ok or OwnerDied"),
        }
    }

    /// Lock (again, if this thread holds it); if the previous holder died holding it,
    /// take it anyway and accept the state it protects as it was left (marked
    /// consistent, no error), as [`Mutex::lock_recover`].
    pub fn lock_recover(&self) -> RLockGuard<'_> {
        self.lock().unwrap_or_else(|died| {
            let g = died.into_inner();
            g.mark_consistent();
            g
        })
    }

    /// Lock if free or held by this thread.
    pub fn try_lock(&self) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        match self.raw().lock_reentrant(RawMutex::try_lock) {
            Ok(()) => Ok(self.guard()),
            Err(e) => Err(e.map(|()| self.guard())),
        }
    }

    /// Lock, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        match self.raw().lock_reentrant(|m| m.lock_timeout(timeout)) {
            Ok(()) => Ok(self.guard()),
            Err(e) => Err(e.map(|()| self.guard())),
        }
    }

    /// Lock (again, if this thread holds it), unless an interrupt is pending while
    /// another thread holds it ([`LockError::Interrupted`], see
    /// [`RawMutex::lock_interruptible`]).
    pub fn lock_interruptible(&self) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        match self.raw().lock_reentrant(RawMutex::lock_interruptible) {
            Ok(()) => Ok(self.guard()),
            Err(e) => Err(e.map(|()| self.guard())),
        }
    }
}

/// One acquisition of an [`RLock`]; released when dropped.
///
/// ```
/// use shmring::sync::RLock;
/// let l = RLock::anonymous()?;
/// let outer = l.lock().unwrap();
/// let inner = l.lock().unwrap(); // the same thread may nest
/// drop(inner);
/// assert!(l.raw().is_locked()); // still held by `outer`
/// drop(outer);
/// # Ok::<(), shmring::Error>(())
/// ```
#[derive(Debug)]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    _not_send: PhantomData<*const ()>,
}

impl RLockGuard<'_> {
    /// Declare the protected state consistent after [`OwnerDied`].
    pub fn mark_consistent(&self) {
        self.lock.raw().mark_consistent();
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { self.lock.raw().unlock_reentrant() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    /// A peer raises an RLock's depth while its holder is inside: the holder's last
    /// guard still releases the lock (depth is bounded by the guards the thread holds).
    #[test]
    fn rlock_depth_raised_by_a_peer_is_bounded_by_the_guards_held() {
        let l = RLock::anonymous().unwrap();
        let outer = l.lock().unwrap();
        let inner = l.lock().unwrap();
        l.raw().depth.store(1_000, std::sync::atomic::Ordering::Relaxed);
        drop(inner);
        assert!(l.raw().is_locked(), "one guard still held");
        drop(outer);
        assert!(!l.raw().is_locked(), "released by the last guard");
        // A word taken from the holder (a peer wrote another owner): the holder's
        // guard leaves it alone instead of unlocking someone else's lock.
        let g = l.lock().unwrap();
        let other = 0x7fff_fffe_0000_0001u64;
        l.raw().word.store(other, std::sync::atomic::Ordering::Relaxed);
        drop(g);
        assert_eq!(l.raw().word.load(std::sync::atomic::Ordering::Relaxed), other);
    }

    /// A lock word naming the waiting thread itself: the timed forms report it at a
    /// liveness tick instead of waiting out their timeout for an unlock that cannot come.
    #[test]
    fn a_word_naming_the_waiter_is_corrupted_for_timed_locks() {
        let m = Mutex::anonymous(0u32).unwrap();
        let me = crate::sync::owner::Owner::current().0;
        m.raw().word.store(me, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(
            m.lock_timeout(Duration::from_secs(600)),
            Err(LockError::Corrupted)
        ));
        assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
        m.raw().word.store(0, std::sync::atomic::Ordering::Relaxed);
        assert!(m.lock_timeout(Duration::from_secs(1)).is_ok());
    }

    /// A lock word naming the waiting thread, which holds no lock at all (no guard of
    /// it can be alive): the blocking `lock` takes it as from a dead owner instead of
    /// waiting for an unlock that cannot come (the timed forms say `Corrupted`, above);
    /// so does an `RLock`, instead of counting it as a nested acquisition.
    #[test]
    fn a_word_naming_a_waiter_that_holds_no_lock_is_recovered_by_lock() {
        // Under a watchdog: without the escape, `lock` waits for ever.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            recovered_by_lock();
            let _ = tx.send(());
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("lock did not return within 60 s"),
            Err(e) => panic!("the locking thread failed: {e}"),
        }
    }

    fn recovered_by_lock() {
        let me = crate::sync::owner::Owner::current().0;
        let m = Mutex::anonymous(5u32).unwrap();
        m.raw().word.store(me, std::sync::atomic::Ordering::Relaxed);
        let g = m.lock().expect_err("taken as from a dead owner").into_inner();
        assert_eq!(*g, 5);
        assert!(m.raw().is_owned_by_current_thread());
        g.mark_consistent();
        drop(g);
        assert!(!m.raw().is_locked());
        assert!(m.lock().is_ok(), "marked consistent");

        let l = RLock::anonymous().unwrap();
        l.raw().word.store(me, std::sync::atomic::Ordering::Relaxed);
        l.raw().depth.store(7, std::sync::atomic::Ordering::Relaxed);
        let g = l.lock().expect_err("taken as from a dead owner").into_inner();
        g.mark_consistent();
        drop(g);
        assert!(!l.raw().is_locked(), "one guard, one release: the forged depth is gone");
    }

    /// A thread that holds a guard (of another lock here; it could be this one's) is not
    /// handed a lock whose word names it: the timed form reports `Corrupted` as before,
    /// and nothing is taken.
    #[test]
    fn a_word_naming_a_waiter_that_holds_a_lock_is_not_taken() {
        let me = crate::sync::owner::Owner::current().0;
        let held = Mutex::anonymous(()).unwrap();
        let m = Mutex::anonymous(0u32).unwrap();
        let _g = held.lock().unwrap();
        m.raw().word.store(me, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(
            m.lock_timeout(Duration::from_secs(600)),
            Err(LockError::Corrupted)
        ));
        assert_eq!(m.raw().word.load(std::sync::atomic::Ordering::Relaxed) & !WAITERS, me);
        let l = RLock::anonymous().unwrap();
        l.raw().word.store(me, std::sync::atomic::Ordering::Relaxed);
        // Held by this thread as far as anyone can tell: a nested acquisition.
        let g = l.lock().expect("nested");
        drop(g);
    }

    #[test]
    fn threads_count_exactly() {
        let m = Arc::new(Mutex::anonymous(0u64).unwrap());
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        *m.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(m.get(), 200_000);
        assert!(!m.raw().is_locked());
    }

    #[test]
    fn try_lock_and_timeout() {
        let m = Arc::new(Mutex::anonymous([0u8; 3]).unwrap());
        let g = m.lock().unwrap();
        let m2 = m.clone();
        std::thread::spawn(move || {
            assert!(matches!(m2.try_lock(), Err(LockError::WouldBlock)));
            let t = Instant::now();
            assert!(matches!(
                m2.lock_timeout(Duration::from_millis(30)),
                Err(LockError::Timeout)
            ));
            assert!(t.elapsed() >= Duration::from_millis(30));
        })
        .join()
        .unwrap();
        drop(g);
        assert!(m.try_lock().is_ok());
    }

    #[test]
    fn dead_thread_owner_is_recovered_once() {
        let m = Arc::new(Mutex::anonymous(7u32).unwrap());
        let m2 = m.clone();
        // A thread that exits holding the lock (its guard leaked) is a dead owner.
        std::thread::spawn(move || std::mem::forget(m2.lock().unwrap()))
            .join()
            .unwrap();
        assert!(m.raw().is_locked());
        let t = Instant::now();
        let died = m.lock().expect_err("the owner died");
        assert!(t.elapsed() < Duration::from_secs(5));
        let g = died.into_inner();
        assert_eq!(*g, 7);
        drop(g);
        // Not marked consistent: the next locker is told again.
        let g = m.lock().expect_err("still inconsistent").into_inner();
        g.mark_consistent();
        drop(g);
        assert!(m.lock().is_ok());
    }

    #[test]
    fn lock_recover_accepts_a_dead_owners_value_once() {
        let m = Arc::new(Mutex::anonymous(7u32).unwrap());
        let m2 = m.clone();
        std::thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            *g = 8;
            std::mem::forget(g);
        })
        .join()
        .unwrap();
        let mut g = m.lock_recover();
        assert_eq!(*g, 8, "the dead holder's value, as it was left");
        *g += 1;
        drop(g);
        // Accepted: the next locker is not told again.
        assert_eq!(*m.lock().expect("marked consistent"), 9);
        // Without a dead owner it is a plain lock.
        *m.lock_recover() += 1;
        assert_eq!(*m.lock().unwrap(), 10);
        assert!(!m.raw().is_locked());

        let l = Arc::new(RLock::anonymous().unwrap());
        let l2 = l.clone();
        std::thread::spawn(move || std::mem::forget(l2.lock().unwrap()))
            .join()
            .unwrap();
        let a = l.lock_recover();
        let b = l.lock_recover(); // nests like lock
        drop(b);
        drop(a);
        assert!(!l.raw().is_locked());
        assert!(l.lock().is_ok(), "marked consistent");
    }

    #[test]
    fn dead_owner_found_by_timed_and_sleeping_waiters() {
        let m = Arc::new(Mutex::anonymous(()).unwrap());
        let m2 = m.clone();
        std::thread::spawn(move || std::mem::forget(m2.lock().unwrap()))
            .join()
            .unwrap();
        assert!(matches!(
            m.lock_timeout(Duration::from_millis(1)),
            Err(LockError::OwnerDied(_))
        ));
        // Sleepers present when the owner dies.
        let m = Arc::new(Mutex::anonymous(0u32).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let m2 = m.clone();
        let holder = std::thread::spawn(move || {
            std::mem::forget(m2.lock().unwrap());
            rx.recv().unwrap();
        });
        std::thread::sleep(Duration::from_millis(10));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || match m.lock() {
                    Ok(mut g) => *g += 1,
                    Err(d) => {
                        let mut g = d.into_inner();
                        *g += 1;
                        g.mark_consistent();
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        tx.send(()).unwrap();
        holder.join().unwrap();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(m.get(), 3);
    }

    #[test]
    fn rlock_reentrant_and_exclusive() {
        let l = Arc::new(RLock::anonymous().unwrap());
        let a = l.lock().unwrap();
        let b = l.try_lock().unwrap();
        let l2 = l.clone();
        std::thread::spawn(move || assert!(matches!(l2.try_lock(), Err(LockError::WouldBlock))))
            .join()
            .unwrap();
        drop(b);
        assert!(l.raw().is_locked());
        drop(a);
        assert!(!l.raw().is_locked());
    }

    #[test]
    fn named_open_checks_type() {
        let name = format!("shmring-unit-mutex-{}", std::process::id());
        let m = Mutex::create(&name, 5u64).unwrap();
        let o = Mutex::<u64>::open(&name).unwrap();
        assert_eq!(o.get(), 5);
        assert!(Mutex::<u32>::open(&name).is_err());
        assert!(RLock::open(&name).is_err());
        drop(m);
        assert!(Mutex::<u64>::open(&name).is_err());
    }
}
