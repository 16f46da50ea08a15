//! [`Condition<T>`]: a [`RawCondvar`], a [`RawMutex`] and a `Pod` value in a segment of
//! their own. Segment parameters of a [`SegmentKind::Condition`] (see also `shared.rs`):
//! 0 the size of `T`, 1 its fingerprint.

use super::*;
use crate::error::Result;
use crate::handoff;
use crate::shm::SegmentKind;
use crate::sync::handle::{Kind, Sealed, Shared, Valued};
use crate::sync::mutex::LockResult;
use crate::sync::shared::{Area, typed_params};
use bytemuck::Pod;
use postcard_schema::Schema;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// The area of a [`Condition<T>`]: the condition variable, its mutex, the value.
#[repr(C)]
pub struct ConditionArea<T> {
    cv: RawCondvar,
    mutex: RawMutex,
    data: UnsafeCell<T>,
}

impl<T> fmt::Debug for ConditionArea<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionArea")
            .field("cv", &self.cv)
            .field("mutex", &self.mutex)
            .finish_non_exhaustive()
    }
}

// SAFETY: the value is only reached through the lock; T: Pod + Schema + Send holds no
// thread-bound state, and `&ConditionArea` only gives `&mut T` to the lock holder.
unsafe impl<T: Pod + Schema + Send> Sync for ConditionArea<T> {}

/// The [`Kind`] of a [`Condition<T>`].
pub struct ConditionKind<T>(PhantomData<fn() -> T>, std::convert::Infallible);

impl<T> fmt::Debug for ConditionKind<T> {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {}
    }
}

impl<T: Pod + Schema + Send> Sealed for ConditionKind<T> {
    type Area = ConditionArea<T>;
    type Init = T;
    type Local = ();
    const SEGMENT: SegmentKind = SegmentKind::Condition;
    const HANDOFF: handoff::Kind = handoff::Kind::Condition;
    const NAME: &'static str = "Condition";

    fn shape() -> Option<crate::shm::Shape> {
        Some(crate::shm::Shape::of_pod::<T>())
    }

    fn params(_: &T) -> Result<[u64; 8]> {
        Ok(typed_params::<T>())
    }

    fn init(a: &Area<ConditionArea<T>>, value: T) {
        let a = a.get();
        // SAFETY: the segment is not published yet: nobody else maps it.
        unsafe { a.data.get().write(value) };
    }

    fn attach(_: &Area<ConditionArea<T>>, _: &[u64; 8], _: &str) -> Result<()> {
        Ok(())
    }

    fn clone_local(_: &ConditionArea<T>, _: &(), _: &str) -> Result<()> {
        Ok(())
    }

    fn debug_fields(a: &ConditionArea<T>, _: &(), d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("mutex", &a.mutex).field("cv", &a.cv);
    }
}

impl<T: Pod + Schema + Send> Kind for ConditionKind<T> {}
impl<T: Pod + Schema + Send> Valued for ConditionKind<T> {}

/// A robust mutex, the `Pod` value it guards, and a condition variable, in one
/// segment: Python's `multiprocessing.Condition` with its lock and the state the
/// condition is about; created with the value (`create(name, value)`,
/// `anonymous(value)`), opened only as the same `T`.
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
///
/// The segment methods (`open`, `open_with`, `from_fd`, `try_clone`, `keep`, `name`,
/// `as_fd`, the hand-off) are those of [`Shared`], written once for every kind.
pub type Condition<T> = Shared<ConditionKind<T>>;

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

/// How [`Condition`]'s wait loop ended: with the lock held (the guard, why, and whether
/// a dead holder was met), or on a poisoned mapping (the lock released).
enum Looped<'a, T: Pod + Schema + Send> {
    Ended(ConditionGuard<'a, T>, WaitTimeoutResult, bool),
    Corrupted,
}

impl<T: Pod + Schema + Send> Condition<T> {
    /// The mutex.
    pub fn raw_mutex(&self) -> &RawMutex {
        &self.area().mutex
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

    /// Lock the mutex; if the previous holder died holding it, take it anyway and
    /// accept the value as it was left (marked consistent, no error), as
    /// [`Mutex::lock_recover`](crate::sync::Mutex::lock_recover).
    pub fn lock_recover(&self) -> ConditionGuard<'_, T> {
        self.lock().unwrap_or_else(|died| {
            let g = died.into_inner();
            g.mark_consistent();
            g
        })
    }

    /// Lock the mutex if free now.
    pub fn try_lock(&self) -> Result<ConditionGuard<'_, T>, LockError<ConditionGuard<'_, T>>> {
        match self.raw_mutex().try_lock() {
            Ok(()) => Ok(self.guard()),
            Err(e) => Err(e.map(|()| self.guard())),
        }
    }

    /// Lock the mutex, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<ConditionGuard<'_, T>, LockError<ConditionGuard<'_, T>>> {
        match self.raw_mutex().lock_timeout(timeout) {
            Ok(()) => Ok(self.guard()),
            Err(e) => Err(e.map(|()| self.guard())),
        }
    }

    fn wait_raw(&self, guard: ConditionGuard<'_, T>, wait: Wait, interruptible: bool) -> Result<bool, OwnerDied<bool>> {
        std::mem::forget(guard);
        let a = self.area();
        // SAFETY: the guard (now forgotten, so it will not unlock) proved this thread
        // holds the mutex; no reference into the value outlives it.
        unsafe { a.cv.wait_in(&a.mutex, wait, interruptible) }
    }

    /// Release the lock, sleep until notified, lock again. May wake spuriously
    /// (loop on your condition, or use [`Condition::wait_while`]).
    pub fn wait<'a>(&'a self, guard: ConditionGuard<'a, T>) -> LockResult<ConditionGuard<'a, T>> {
        match self.wait_raw(guard, Wait::Forever, false) {
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
        match self.wait_raw(guard, Wait::after(timeout), false) {
            Ok(t) => Ok((self.guard(), WaitTimeoutResult(t, false))),
            Err(o) => Err(o.map(|t| (self.guard(), WaitTimeoutResult(t, false)))),
        }
    }

    /// Wait while `condition` holds for the value (Python's `wait_for` with the
    /// predicate negated, as in `std`). A dead holder met on the way is reported
    /// with the guard once the condition is false ([`LockError::OwnerDied`]).
    ///
    /// [`LockError::Corrupted`] (the lock released, no guard): a peer resized the
    /// segment, so this mapping is private zeros that no other process can write
    /// (see `docs/design-notes.md`): no notifier can reach it, and a condition that
    /// the zeros make false says nothing about the shared value. Found at the first
    /// wake after a fault replaced the mapping, else at most one
    /// [`LIVENESS_INTERVAL`](super::super::LIVENESS_INTERVAL) after the wait began (one
    /// `fstat` per interval of waiting). A call that does not sleep (the condition
    /// false at once) does not look. No other error.
    ///
    /// ```
    /// use shmring::sync::{Condition, LockError};
    /// let c = Condition::anonymous(1u32)?;
    /// let g = match c.wait_while(c.lock_recover(), |v| *v == 0) {
    ///     Ok(g) => g,
    ///     Err(LockError::OwnerDied(d)) => d.into_inner(), // accept the value as left
    ///     Err(e) => return Err(e.to_string().into()),     // Corrupted: give up
    /// };
    /// assert_eq!(*g, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_while<'a>(
        &'a self,
        guard: ConditionGuard<'a, T>,
        condition: impl FnMut(&mut T) -> bool,
    ) -> Result<ConditionGuard<'a, T>, LockError<ConditionGuard<'a, T>>> {
        match self.wait_loop(guard, Wait::Forever, false, true, condition) {
            Looped::Ended(g, _, false) => Ok(g),
            Looped::Ended(g, _, true) => Err(LockError::OwnerDied(OwnerDied::new(g))),
            Looped::Corrupted => Err(LockError::Corrupted),
        }
    }

    /// [`Condition::wait_timeout_while`] (`timeout` `None`: no limit) that also ends
    /// when an interrupt is pending (see `shmring::signal::Interrupt`): then the
    /// condition still holds and [`WaitTimeoutResult::interrupted`] is `true`. The
    /// lock is held on return, except for [`LockError::Corrupted`] (a peer resized the
    /// segment: see [`Condition::wait_while`], found the same way, with or without a
    /// timeout). A dead holder met on the way is [`LockError::OwnerDied`] with the
    /// guard. [`Condition::wait`] and the other waits are not interruptible.
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
    #[allow(clippy::type_complexity)]
    pub fn wait_while_interruptible<'a>(
        &'a self,
        guard: ConditionGuard<'a, T>,
        timeout: Option<Duration>,
        condition: impl FnMut(&mut T) -> bool,
    ) -> Result<(ConditionGuard<'a, T>, WaitTimeoutResult), LockError<(ConditionGuard<'a, T>, WaitTimeoutResult)>> {
        match self.wait_loop(guard, Wait::from_timeout(timeout), true, true, condition) {
            Looped::Ended(g, r, false) => Ok((g, r)),
            Looped::Ended(g, r, true) => Err(LockError::OwnerDied(OwnerDied::new((g, r)))),
            Looped::Corrupted => Err(LockError::Corrupted),
        }
    }

    /// [`Condition::wait_while`] for at most `timeout`. Its result has no room for
    /// [`LockError::Corrupted`]: on a mapping a peer resized it waits out its timeout
    /// (then `timed_out()`; [`Shared::is_poisoned`] tells why).
    pub fn wait_timeout_while<'a>(
        &'a self,
        guard: ConditionGuard<'a, T>,
        timeout: Duration,
        condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<(ConditionGuard<'a, T>, WaitTimeoutResult)> {
        match self.wait_loop(guard, Wait::after(timeout), false, false, condition) {
            Looped::Ended(g, r, false) => Ok((g, r)),
            Looped::Ended(g, r, true) => Err(OwnerDied::new((g, r))),
            Looped::Corrupted => unreachable!("wait_loop without look_for_poison never ends Corrupted"),
        }
    }

    /// Wait while `condition` holds, per `wait`. With `look_for_poison` (the calls
    /// whose result can say so), once per [`LIVENESS_INTERVAL`](super::super::LIVENESS_INTERVAL)
    /// of waiting, look for a poisoned mapping (a peer resized the segment: no other
    /// process can change the value any more; one `fstat`), and after every sleep at
    /// its flag (the private zeros may make the condition false, but say nothing about
    /// the shared value): either ends with [`Looped::Corrupted`].
    fn wait_loop<'a>(
        &'a self,
        mut guard: ConditionGuard<'a, T>,
        wait: Wait,
        interruptible: bool,
        look_for_poison: bool,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> Looped<'a, T> {
        let mut died = false;
        let mut next_check: Option<Instant> = None;
        let mut waited = false;
        loop {
            // After a sleep, before the predicate: a mapping replaced by private zeros
            // (the flag, no syscall: zeros come only with it) holds no value worth
            // judging, true or false.
            if look_for_poison && waited && self.mapped().poison_flag() {
                drop(guard);
                return Looped::Corrupted;
            }
            if !condition(&mut guard) {
                break;
            }
            let now = Instant::now();
            if wait.left(now).is_none() {
                return Looped::Ended(guard, WaitTimeoutResult(true, false), died);
            }
            if interruptible && interrupt::pending() {
                return Looped::Ended(guard, WaitTimeoutResult(false, true), died);
            }
            if look_for_poison {
                let next = *next_check.get_or_insert(now + super::super::LIVENESS_INTERVAL);
                if now >= next {
                    next_check = Some(now + super::super::LIVENESS_INTERVAL);
                    // One fstat: a resize (shrink or grow) poisons the mapping now.
                    if self.is_poisoned() {
                        drop(guard);
                        return Looped::Corrupted;
                    }
                }
            }
            guard = match self.wait_raw(guard, wait, interruptible) {
                Ok(_) => self.guard(),
                Err(_) => {
                    died = true;
                    self.guard()
                }
            };
            waited = true;
        }
        Looped::Ended(guard, WaitTimeoutResult(false, false), died)
    }

    /// Wake one waiter.
    pub fn notify_one(&self) {
        self.area().cv.notify_one();
    }

    /// Wake up to `n` waiters.
    pub fn notify(&self, n: u32) {
        self.area().cv.notify(n);
    }

    /// Wake every waiter (without a thundering herd when called holding the lock).
    pub fn notify_all(&self) {
        let a = self.area();
        a.cv.notify_all(&a.mutex);
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
pub struct ConditionGuard<'a, T: Pod + Schema + Send> {
    cond: &'a Condition<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T: Pod + Schema + Send> ConditionGuard<'_, T> {
    /// Declare the value consistent after repairing it following [`OwnerDied`].
    pub fn mark_consistent(&self) {
        self.cond.raw_mutex().mark_consistent();
    }
}

impl<T: Pod + Schema + Send> Deref for ConditionGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock; the value is valid for any bytes (Pod) and lives
        // in the mapping, which outlives the guard.
        unsafe { &*self.cond.area().data.get() }
    }
}

impl<T: Pod + Schema + Send> DerefMut for ConditionGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the guard is borrowed mutably.
        unsafe { &mut *self.cond.area().data.get() }
    }
}

impl<T: Pod + Schema + Send> Drop for ConditionGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { self.cond.raw_mutex().unlock() };
    }
}

impl<T: Pod + Schema + Send + fmt::Debug> fmt::Debug for ConditionGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn lock_recover_accepts_a_dead_owners_value() {
        let c = Arc::new(Condition::anonymous(1u32).unwrap());
        let c2 = c.clone();
        std::thread::spawn(move || {
            let mut g = c2.lock().unwrap();
            *g = 2;
            std::mem::forget(g);
        })
        .join()
        .unwrap();
        let mut g = c.lock_recover();
        assert_eq!(*g, 2);
        *g = 3;
        drop(g);
        assert_eq!(*c.lock().expect("marked consistent"), 3);
    }

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
