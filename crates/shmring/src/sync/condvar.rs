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
//! [`LIVENESS_INTERVAL`](super::LIVENESS_INTERVAL), after which the waiter
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
//!
//! # States the protocol never reaches
//!
//! None in the condition variable's own words (above), and no wait on it lasts longer
//! than one nap: a `wait` is a single nap of at most one liveness interval, then the
//! re-lock. The mutex's impossible states and what the re-lock does about them are in
//! [`mutex`](super::mutex)'s docs (a dead holder, or a word naming the waiting thread
//! while it holds no lock: recovered, [`OwnerDied`]).
//!
//! | state | found by | result |
//! |-------|----------|--------|
//! | a poisoned mapping (a peer resized the segment: this mapping is private zeros, no notifier can reach it, and the value is no longer the shared one) | `Condition::wait_while`, `Condition::wait_while_interruptible` (with or without a timeout): at the first wake after a fault poisoned it (the flag), else at its liveness tick (one `fstat` per interval of waiting) | [`LockError::Corrupted`], the lock released |
//! | the same | `wait`, `wait_timeout` (one nap each), `wait_timeout_while` (no room for the error) | a spurious wake-up after the nap / its timeout; `is_poisoned()` tells |

use super::Wait;
use super::interrupt;
use super::mutex::{LockError, OwnerDied, RawMutex};
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
    crate::primitive::const_unless_loom! {
        /// A condition variable nobody waits on.
        pub const fn new() -> Self {
            RawCondvar {
                seq: AtomicU32::new(0),
                waiters: AtomicU32::new(0),
            }
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
        unsafe { self.wait_in(mutex, deadline.map_or(Wait::Forever, Wait::Until), false) }
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
        wait: Wait,
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
        let interrupted = interruptible && interrupt::pending();
        // No nap once the deadline passed.
        if let (Some(nap), false) = (wait.nap(), interrupted) {
            // (4)
            primitive::futex_wait(&self.seq, key, Some(nap));
        }
        // (5) Relaxed: a count; an over- or under-count only costs a wake.
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        let timed_out = wait.left(Instant::now()).is_none();
        // (6) Always leave WAITERS set: other waiters may have been requeued onto the
        // mutex and must be woken by our unlock.
        match mutex.lock_after_wait(Wait::Forever) {
            Ok(()) => Ok(timed_out),
            Err(LockError::OwnerDied(o)) => Err(o.map(|()| timed_out)),
            Err(LockError::WouldBlock | LockError::Timeout | LockError::Interrupted | LockError::Corrupted) => {
                unreachable!("an uninterruptible lock without deadline cannot time out or report")
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
mod handle;
#[cfg(not(loom))]
pub use handle::{Condition, ConditionGuard, ConditionKind, WaitTimeoutResult};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
