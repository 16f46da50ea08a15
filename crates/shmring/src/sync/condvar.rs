//! A process-shared condition variable: [`RawCondvar`] (embeddable, used with a
//! [`RawMutex`]) and [`Condition<T>`] (Python's `multiprocessing.Condition`: a robust
//! mutex, the value it guards and a condition variable in one segment).
//!
//! # Algorithm
//!
//! A sequence-number condition variable (as in Rust's futex-based `std` condvar), plus a
//! waiter count so that notifying nobody costs no syscall, plus requeueing:
//!
//! ```text
//! waiter (holds the mutex)                 notifier (changed the state under the mutex)
//! key = seq.load(Relaxed)         (1)      seq.fetch_add(1, Relaxed)            (a)
//! waiters.fetch_add(1, Relaxed)   (2)      if waiters.load(Relaxed) != 0        (b)
//! mutex.unlock()  [Release]       (3)          futex_wake(seq, n)  or requeue   (c)
//! futex_wait(seq, key, nap)       (4)
//! waiters.fetch_sub(1, Relaxed)   (5)
//! mutex.lock_after_wait()         (6)
//! ```
//!
//! The notifier changed the state while holding the mutex after the waiter released it
//! at (3), so (1) and (2) happen before (a) and (b) through the mutex's Release/Acquire
//! pair: (b) sees the waiter counted, and (a) writes a value after the one (1) read, so
//! the futex wait at (4) either returns at once (the value changed) or is woken by (c).
//! Relaxed suffices on both words for that reason; the data itself is ordered by the
//! mutex. Spurious wake-ups are allowed, so every sleep is a nap of at most
//! [`LIVENESS_INTERVAL`], after which the waiter
//! re-locks and returns: a waiter requeued onto a mutex whose holder died still wakes
//! and recovers the mutex ([`OwnerDied`]).
//!
//! `notify_all` called by the mutex's holder does not wake a thundering herd: it wakes
//! one waiter and moves the others onto the mutex's futex word (`FUTEX_CMP_REQUEUE`),
//! after setting the mutex's `WAITERS` bit, so each unlock hands the mutex to the next
//! one. A notifier that does not hold the mutex wakes everyone.
//!
//! # State words
//!
//! | word      | meaning                                        | written by                |
//! |-----------|------------------------------------------------|---------------------------|
//! | `seq`     | futex word; changes on every notification      | notifiers (+1, wrapping)  |
//! | `waiters` | waiters between (2) and (5); may over-count    | waiters (+1 / -1)         |
//!
//! Any value of either word is valid: a corrupted `seq` is a spurious wake-up, a
//! corrupted `waiters` a wasted or a skipped wake (then the waiter wakes at its nap).

use super::interrupt;
use super::mutex::{LockError, OwnerDied, RawMutex};
use super::wait::LIVENESS_INTERVAL;
use crate::primitive::{self, AtomicU32, Ordering};
use std::time::Instant;

/// A process-shared condition variable without a mutex of its own; all-zero bytes are a
/// valid condition variable. Used with one [`RawMutex`] at a time.
///
/// ```
/// use shmring::sync::{RawCondvar, RawMutex};
/// let (m, cv) = (RawMutex::new(), RawCondvar::new());
/// m.lock().unwrap();
/// cv.notify_one(); // nobody waits: no syscall
/// // SAFETY: this thread holds `m`.
/// let timed_out = unsafe { cv.wait_until(&m, Some(std::time::Instant::now())) }.unwrap();
/// assert!(timed_out);
/// // SAFETY: `wait_until` returned with `m` locked again.
/// unsafe { m.unlock() };
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct RawCondvar {
    seq: AtomicU32,
    waiters: AtomicU32,
}

impl Default for RawCondvar {
    fn default() -> Self {
        Self::new()
    }
}

impl RawCondvar {
    /// A condition variable nobody waits on.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        RawCondvar {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    /// A condition variable nobody waits on.
    #[cfg(loom)]
    pub fn new() -> Self {
        RawCondvar {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    /// Release `mutex`, sleep until notified (or a spurious wake-up, or `deadline`), then
    /// lock `mutex` again. `Ok(true)`: the deadline passed. `Err(OwnerDied)`: the mutex
    /// was re-acquired from a dead holder (it is held).
    ///
    /// # Safety
    ///
    /// The calling thread holds `mutex`, and no reference into the data it protects is
    /// used across this call.
    pub unsafe fn wait_until(&self, mutex: &RawMutex, deadline: Option<Instant>) -> Result<bool, OwnerDied<bool>> {
        // SAFETY: forwarded from the caller.
        unsafe { self.wait_in(mutex, deadline, false) }
    }

    /// [`RawCondvar::wait_until`]; with `interruptible`, a pending interrupt (see
    /// `shmring::signal`) skips the sleep (a spurious wake-up: the caller's loop, which
    /// checks the flag, decides).
    ///
    /// # Safety
    ///
    /// As [`RawCondvar::wait_until`].
    pub(crate) unsafe fn wait_in(
        &self,
        mutex: &RawMutex,
        deadline: Option<Instant>,
        interruptible: bool,
    ) -> Result<bool, OwnerDied<bool>> {
        // (1) Relaxed: read under the mutex; see the module docs.
        let key = self.seq.load(Ordering::Relaxed);
        #[cfg(loom)]
        let planted = primitive::loom_break::active(primitive::loom_break::LoomBreak::CondvarCountAfterUnlock);
        #[cfg(not(loom))]
        let planted = false;
        if !planted {
            // (2) Relaxed: published to notifiers by the mutex's Release at (3).
            self.waiters.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: (3) the caller holds `mutex` and uses no reference into its data
        // across the call.
        unsafe { mutex.unlock() };
        if planted {
            // The planted bug: counted after the mutex no longer orders it.
            self.waiters.fetch_add(1, Ordering::Relaxed);
        }
        let now = Instant::now();
        let nap = match deadline {
            Some(d) => d.saturating_duration_since(now).min(LIVENESS_INTERVAL),
            None => LIVENESS_INTERVAL,
        };
        let interrupted = interruptible && interrupt::pending();
        if !nap.is_zero() && !interrupted {
            // (4)
            primitive::futex_wait(&self.seq, key, Some(nap));
        }
        // (5) Relaxed: a count; an over- or under-count only costs a wake.
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        // (6) Always leave WAITERS set: other waiters may have been requeued onto the
        // mutex and must be woken by our unlock.
        match mutex.lock_after_wait(None) {
            Ok(()) => Ok(timed_out),
            Err(LockError::OwnerDied(o)) => Err(o.map(|()| timed_out)),
            Err(LockError::WouldBlock | LockError::Timeout | LockError::Interrupted) => {
                unreachable!("an uninterruptible lock without deadline cannot time out")
            }
        }
    }

    /// Wake one waiter (no syscall if none waits).
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wake up to `n` waiters (no syscall if none waits).
    pub fn notify(&self, n: u32) {
        // (a) Relaxed: see the module docs; the state change is ordered by the mutex.
        self.seq.fetch_add(1, Ordering::Relaxed);
        // (b) Relaxed: as (a).
        if n != 0 && self.waiters.load(Ordering::Relaxed) != 0 {
            primitive::futex_wake(&self.seq, n);
        }
    }

    /// Wake every waiter. If the calling thread holds `mutex` (the one the waiters use),
    /// wake one and requeue the others onto the mutex, which its unlocks then hand on one
    /// by one; otherwise wake them all.
    pub fn notify_all(&self, mutex: &RawMutex) {
        // (a) Relaxed: as in `notify`.
        let key = self.seq.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        // (b) Relaxed: as in `notify`.
        if self.waiters.load(Ordering::Relaxed) == 0 {
            return;
        }
        if mutex.is_owned_by_current_thread() {
            // Our unlock must wake a requeued waiter: mark the mutex contended first.
            mutex.set_waiters();
            primitive::futex_requeue(&self.seq, key, mutex.seq_word(), i32::MAX as u32);
        } else {
            primitive::futex_wake(&self.seq, i32::MAX as u32);
        }
    }
}

#[cfg(not(loom))]
pub use segment_backed::*;

#[cfg(not(loom))]
mod segment_backed {
    use super::*;
    use crate::error::Result;
    use crate::shm::{SegmentKind, SegmentOptions};
    use crate::sync::mutex::LockResult;
    use crate::sync::shared::{Area, check_type, type_fingerprint};
    use bytemuck::Pod;
    use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::cell::UnsafeCell;
    use std::fmt;
    use std::marker::PhantomData;
    use std::ops::{Deref, DerefMut};
    use std::time::Duration;

    #[repr(C)]
    struct ConditionArea<T> {
        cv: RawCondvar,
        mutex: RawMutex,
        data: UnsafeCell<T>,
    }

    /// A robust mutex, the `Pod` value it guards, and a condition variable, in one
    /// segment: Python's `multiprocessing.Condition` with its lock and the state the
    /// condition is about.
    ///
    /// ```
    /// use shmring::sync::Condition;
    /// let c = Condition::anonymous(0u32)?;
    /// let c2 = c.try_clone()?; // another process would use `from_fd`
    /// let t = std::thread::spawn(move || {
    ///     *c2.lock().unwrap() = 1;
    ///     c2.notify_all();
    /// });
    /// let g = c.wait_while(c.lock().unwrap(), |v| *v == 0).unwrap();
    /// assert_eq!(*g, 1);
    /// drop(g);
    /// t.join().unwrap();
    /// # Ok::<(), shmring::Error>(())
    /// ```
    pub struct Condition<T> {
        area: Area<ConditionArea<T>>,
    }

    // SAFETY: the value is only reached through the lock; T: Pod + Send holds no
    // thread-bound state.
    unsafe impl<T: Pod + Send> Send for Condition<T> {}
    // SAFETY: as above; `&Condition` only gives `&mut T` to the lock holder.
    unsafe impl<T: Pod + Send> Sync for Condition<T> {}

    impl<T> fmt::Debug for Condition<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let a = self.area.get();
            f.debug_struct("Condition")
                .field("name", &self.area.name())
                .field("mutex", &a.mutex)
                .field("cv", &a.cv)
                .finish()
        }
    }

    /// Whether a timed wait returned because its time passed.
    ///
    /// ```
    /// use shmring::sync::Condition;
    /// use std::time::Duration;
    /// let c = Condition::anonymous(0u8)?;
    /// let (_g, r) = c.wait_timeout_while(c.lock().unwrap(), Duration::from_millis(1), |v| *v == 0).unwrap();
    /// assert!(r.timed_out());
    /// # Ok::<(), shmring::Error>(())
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct WaitTimeoutResult(bool, bool);

    impl WaitTimeoutResult {
        /// The time passed (the condition may still have become true).
        pub fn timed_out(&self) -> bool {
            self.0
        }

        /// [`Condition::wait_while_interruptible`] only: the wait ended because an
        /// interrupt is pending (see `shmring::signal::Interrupt`), with the condition
        /// still holding.
        pub fn interrupted(&self) -> bool {
            self.1
        }
    }

    impl<T: Pod + Send> Condition<T> {
        fn create_in(name: Option<&str>, value: T, opts: &SegmentOptions) -> Result<Self> {
            let mut p = [0u64; 8];
            p[0] = std::mem::size_of::<T>() as u64;
            p[1] = type_fingerprint::<T>();
            let area = Area::create(name, SegmentKind::Condition, p, opts, |a: &ConditionArea<T>| {
                // SAFETY: the segment is not published yet: nobody else maps it.
                unsafe { a.data.get().write(value) };
            })?;
            Ok(Condition { area })
        }

        /// Create the named condition `name` guarding `value`.
        pub fn create(name: &str, value: T) -> Result<Self> {
            Self::create_in(Some(name), value, &SegmentOptions::default())
        }

        /// [`Condition::create`] with segment options.
        pub fn create_with(name: &str, value: T, opts: &SegmentOptions) -> Result<Self> {
            Self::create_in(Some(name), value, opts)
        }

        /// An anonymous (memfd) condition guarding `value`.
        pub fn anonymous(value: T) -> Result<Self> {
            Self::create_in(None, value, &SegmentOptions::default())
        }

        /// Open the named condition `name`, created for this `T`.
        pub fn open(name: &str) -> Result<Self> {
            let area = Area::open(name, SegmentKind::Condition, |p| check_type::<T>(p, 1, "condition"))?;
            Ok(Condition { area })
        }

        /// Map a condition received as a descriptor.
        pub fn from_fd(fd: OwnedFd) -> Result<Self> {
            let area = Area::from_fd(fd, SegmentKind::Condition, |p| check_type::<T>(p, 1, "condition"))?;
            Ok(Condition { area })
        }

        /// Another handle on the same condition.
        pub fn try_clone(&self) -> Result<Self> {
            Ok(Condition {
                area: self.area.try_clone()?,
            })
        }

        /// Keep the named segment when this creating handle drops.
        pub fn keep(&mut self) {
            self.area.keep();
        }

        /// The segment's name (`None` if anonymous).
        pub fn name(&self) -> Option<&str> {
            self.area.name()
        }

        /// The mutex.
        pub fn raw_mutex(&self) -> &RawMutex {
            &self.area.get().mutex
        }

        fn guard(&self) -> ConditionGuard<'_, T> {
            ConditionGuard {
                cond: self,
                _not_send: PhantomData,
            }
        }

        /// Lock the mutex.
        pub fn lock(&self) -> LockResult<ConditionGuard<'_, T>> {
            match self.raw_mutex().lock() {
                Ok(()) => Ok(self.guard()),
                Err(e) => Err(e.map(|()| self.guard())),
            }
        }

        /// Lock the mutex if free now.
        pub fn try_lock(&self) -> Result<ConditionGuard<'_, T>, LockError<ConditionGuard<'_, T>>> {
            match self.raw_mutex().try_lock() {
                Ok(()) => Ok(self.guard()),
                Err(e) => Err(e.map(|()| self.guard())),
            }
        }

        /// Lock the mutex, waiting at most `timeout`.
        pub fn lock_timeout(
            &self,
            timeout: Duration,
        ) -> Result<ConditionGuard<'_, T>, LockError<ConditionGuard<'_, T>>> {
            match self.raw_mutex().lock_timeout(timeout) {
                Ok(()) => Ok(self.guard()),
                Err(e) => Err(e.map(|()| self.guard())),
            }
        }

        fn wait_raw(
            &self,
            guard: ConditionGuard<'_, T>,
            deadline: Option<Instant>,
            interruptible: bool,
        ) -> Result<bool, OwnerDied<bool>> {
            std::mem::forget(guard);
            let a = self.area.get();
            // SAFETY: the guard (now forgotten, so it will not unlock) proved this thread
            // holds the mutex; no reference into the value outlives it.
            unsafe { a.cv.wait_in(&a.mutex, deadline, interruptible) }
        }

        /// Release the lock, sleep until notified, lock again. May wake spuriously
        /// (loop on your condition, or use [`Condition::wait_while`]).
        pub fn wait<'a>(&'a self, guard: ConditionGuard<'a, T>) -> LockResult<ConditionGuard<'a, T>> {
            match self.wait_raw(guard, None, false) {
                Ok(_) => Ok(self.guard()),
                Err(o) => Err(o.map(|_| self.guard())),
            }
        }

        /// [`Condition::wait`] for at most `timeout`.
        pub fn wait_timeout<'a>(
            &'a self,
            guard: ConditionGuard<'a, T>,
            timeout: Duration,
        ) -> LockResult<(ConditionGuard<'a, T>, WaitTimeoutResult)> {
            match self.wait_raw(guard, Some(Instant::now() + timeout), false) {
                Ok(t) => Ok((self.guard(), WaitTimeoutResult(t, false))),
                Err(o) => Err(o.map(|t| (self.guard(), WaitTimeoutResult(t, false)))),
            }
        }

        /// Wait while `condition` holds for the value (Python's `wait_for` with the
        /// predicate negated, as in `std`). A dead holder met on the way is reported
        /// with the guard once the condition is false.
        pub fn wait_while<'a>(
            &'a self,
            guard: ConditionGuard<'a, T>,
            condition: impl FnMut(&mut T) -> bool,
        ) -> LockResult<ConditionGuard<'a, T>> {
            let (g, _, died) = self.wait_loop(guard, None, false, condition);
            if died { Err(OwnerDied::new(g)) } else { Ok(g) }
        }

        /// [`Condition::wait_timeout_while`] (`timeout` `None`: no limit) that also ends
        /// when an interrupt is pending (see `shmring::signal::Interrupt`): then the
        /// condition still holds and [`WaitTimeoutResult::interrupted`] is `true`. The
        /// lock is held on return either way. [`Condition::wait`] and the other waits
        /// are not interruptible.
        ///
        /// ```
        /// use shmring::sync::Condition;
        /// use std::time::Duration;
        /// let c = Condition::anonymous(0u32)?;
        /// let g = c.lock().unwrap();
        /// let (g, r) = c.wait_while_interruptible(g, Some(Duration::from_millis(1)), |v| *v == 0).unwrap();
        /// assert!(r.timed_out() && !r.interrupted() && *g == 0);
        /// # Ok::<(), shmring::Error>(())
        /// ```
        pub fn wait_while_interruptible<'a>(
            &'a self,
            guard: ConditionGuard<'a, T>,
            timeout: Option<Duration>,
            condition: impl FnMut(&mut T) -> bool,
        ) -> LockResult<(ConditionGuard<'a, T>, WaitTimeoutResult)> {
            let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
            let (g, r, died) = self.wait_loop(guard, deadline, true, condition);
            if died { Err(OwnerDied::new((g, r))) } else { Ok((g, r)) }
        }

        /// [`Condition::wait_while`] for at most `timeout`.
        pub fn wait_timeout_while<'a>(
            &'a self,
            guard: ConditionGuard<'a, T>,
            timeout: Duration,
            condition: impl FnMut(&mut T) -> bool,
        ) -> LockResult<(ConditionGuard<'a, T>, WaitTimeoutResult)> {
            let (g, r, died) = self.wait_loop(guard, Some(Instant::now() + timeout), false, condition);
            if died { Err(OwnerDied::new((g, r))) } else { Ok((g, r)) }
        }

        fn wait_loop<'a>(
            &'a self,
            mut guard: ConditionGuard<'a, T>,
            deadline: Option<Instant>,
            interruptible: bool,
            mut condition: impl FnMut(&mut T) -> bool,
        ) -> (ConditionGuard<'a, T>, WaitTimeoutResult, bool) {
            let mut died = false;
            while condition(&mut guard) {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return (guard, WaitTimeoutResult(true, false), died);
                }
                if interruptible && interrupt::pending() {
                    return (guard, WaitTimeoutResult(false, true), died);
                }
                guard = match self.wait_raw(guard, deadline, interruptible) {
                    Ok(_) => self.guard(),
                    Err(_) => {
                        died = true;
                        self.guard()
                    }
                };
            }
            (guard, WaitTimeoutResult(false, false), died)
        }

        /// Wake one waiter.
        pub fn notify_one(&self) {
            self.area.get().cv.notify_one();
        }

        /// Wake up to `n` waiters.
        pub fn notify(&self, n: u32) {
            self.area.get().cv.notify(n);
        }

        /// Wake every waiter (without a thundering herd when called holding the lock).
        pub fn notify_all(&self) {
            let a = self.area.get();
            a.cv.notify_all(&a.mutex);
        }
    }

    impl<T> AsFd for Condition<T> {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.area.as_fd()
        }
    }

    /// Access to a [`Condition`]'s value; unlocks when dropped.
    ///
    /// ```
    /// use shmring::sync::Condition;
    /// let c = Condition::anonymous([0u32; 2])?;
    /// let mut g = c.lock().unwrap();
    /// g[1] = 7; // the guard derefs to the value
    /// drop(g); // unlocks
    /// assert_eq!(c.lock().unwrap()[1], 7);
    /// # Ok::<(), shmring::Error>(())
    /// ```
    pub struct ConditionGuard<'a, T: Pod + Send> {
        cond: &'a Condition<T>,
        _not_send: PhantomData<*const ()>,
    }

    impl<T: Pod + Send> ConditionGuard<'_, T> {
        /// Declare the value consistent after repairing it following [`OwnerDied`].
        pub fn mark_consistent(&self) {
            self.cond.raw_mutex().mark_consistent();
        }
    }

    impl<T: Pod + Send> Deref for ConditionGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: we hold the lock; the value is valid for any bytes (Pod) and lives
            // in the mapping, which outlives the guard.
            unsafe { &*self.cond.area.get().data.get() }
        }
    }

    impl<T: Pod + Send> DerefMut for ConditionGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: as in `deref`; the guard is borrowed mutably.
            unsafe { &mut *self.cond.area.get().data.get() }
        }
    }

    impl<T: Pod + Send> Drop for ConditionGuard<'_, T> {
        fn drop(&mut self) {
            // SAFETY: the guard exists only while this thread holds the lock.
            unsafe { self.cond.raw_mutex().unlock() };
        }
    }

    impl<T: Pod + Send + fmt::Debug> fmt::Debug for ConditionGuard<'_, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(&**self, f)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn producer_consumer_threads() {
        // value = [items produced, items consumed]; capacity 4.
        let c = Arc::new(Condition::anonymous([0u64; 2]).unwrap());
        let n = 20_000u64;
        let p = {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..n {
                    let mut g = c.wait_while(c.lock().unwrap(), |v| v[0] - v[1] >= 4).unwrap();
                    g[0] += 1;
                    drop(g);
                    c.notify_all();
                }
            })
        };
        let mut got = 0;
        while got < n {
            let mut g = c.wait_while(c.lock().unwrap(), |v| v[0] == v[1]).unwrap();
            g[1] += 1;
            got += 1;
            c.notify_one();
            drop(g);
        }
        p.join().unwrap();
        assert_eq!(c.lock().unwrap()[1], n);
    }

    #[test]
    fn notify_all_requeues_every_waiter() {
        let c = Arc::new(Condition::anonymous(0u32).unwrap());
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let mut g = c.wait_while(c.lock().unwrap(), |v| *v == 0).unwrap();
                    *g += 1;
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        {
            let mut g = c.lock().unwrap();
            *g = 1;
            // Held: requeue path.
            c.notify_all();
        }
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(*c.lock().unwrap(), 5);
    }

    #[test]
    fn corrupted_words_cost_at_most_a_nap() {
        let (m, cv) = (RawMutex::new(), RawCondvar::new());
        // Garbage in both words: notify works, and waits still end (by timeout or a
        // spurious wake-up), with the mutex held again.
        cv.seq.store(0xdead_beef, Ordering::Relaxed);
        cv.waiters.store(u32::MAX, Ordering::Relaxed);
        cv.notify_all(&m);
        m.lock().unwrap();
        let start = Instant::now();
        // SAFETY: this thread holds `m`.
        let _ = unsafe { cv.wait_until(&m, Some(start + Duration::from_millis(5))) };
        assert!(m.is_owned_by_current_thread());
        // A waiter count of 0 under a sleeper (a skipped wake) costs at most one nap.
        cv.waiters.store(0, Ordering::Relaxed);
        // SAFETY: this thread holds `m`.
        let _ = unsafe { cv.wait_until(&m, None) };
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(m.is_owned_by_current_thread());
        // SAFETY: this thread holds `m`.
        unsafe { m.unlock() };
    }

    #[test]
    fn timeouts() {
        let c = Condition::anonymous(0u8).unwrap();
        let t = Instant::now();
        // Nobody notifies: returns by timeout or a spurious wake-up, with the lock held.
        let (g, _) = c.wait_timeout(c.lock().unwrap(), Duration::from_millis(20)).unwrap();
        assert!(c.raw_mutex().is_owned_by_current_thread());
        let (g, r) = c.wait_timeout_while(g, Duration::from_millis(20), |_| true).unwrap();
        assert!(r.timed_out());
        assert!(t.elapsed() >= Duration::from_millis(20));
        drop(g);
        assert!(!c.raw_mutex().is_locked());
    }
}
