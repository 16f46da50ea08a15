//! A process-shared event flag: [`RawEvent`] (8 bytes, embeddable in your own
//! `#[repr(C)]` shared struct) and [`Event`] (a segment of its own), with the semantics
//! of Python's `threading.Event` / `multiprocessing.Event`: [`set`](Event::set) wakes
//! **every** waiter, [`clear`](Event::clear) resets the flag, [`wait`](Event::wait)
//! blocks until the flag is set.
//!
//! # Algorithm
//!
//! One 32-bit state word, which is also the futex word: bit 0 is the flag, bits 1..=31 a
//! generation that every clear-to-set transition bumps. A waiter takes a snapshot `w0`
//! of a clear word and waits until the word differs from it: a set, even one undone by
//! a `clear` before the waiter ran again, changed the generation, so **every waiter
//! present at a `set` returns `true`** (as with `threading.Event`; the
//! `multiprocessing` version may miss such a pulse). Beside it, a count of sleepers
//! makes a `set` free of syscalls when nobody sleeps.
//!
//! - set: one compare-and-swap to `(generation + 1) | SET` (Release) if the flag is
//!   clear (if it is already set, the setter that set it wakes the sleepers; the CAS
//!   still writes, so that this call's earlier writes are published too); then a fence,
//!   and `futex_wake(state, i32::MAX)` — all sleepers — only if `waiters` is not 0.
//! - clear: `fetch_and(!SET)`; the generation stays.
//! - wait: snapshot `w0` (Acquire); if set, done. A short spin, then sleep: register in
//!   `waiters`, fence, re-check, `futex_wait(state, w0)` for at most one nap, deregister,
//!   re-check.
//!
//! # Why no wake-up is lost
//!
//! ```text
//! waiter (wait_slow)                              setter (set)
//! waiters += 1 (saturating, Relaxed) (S1)         state: CAS w0 -> w1, Release     (W1)
//! fence(SeqCst)                      (S2)         fence(SeqCst)                    (W2)
//! w = state.load(Acquire)            (S3)         if waiters.load(Relaxed) != 0    (W3)
//! if w == w0: futex_wait(state, w0)  (S4)             futex_wake(state, all)       (W4)
//! waiters -= 1 (saturating, Relaxed) (S5)
//! ```
//!
//! The store-load (Dekker) pair of [`semaphore`](super::semaphore): the fences S2 and W2
//! are ordered in the total order of SeqCst operations, so either W3 sees S1 (and W4
//! wakes the waiter, or the kernel's compare at S4 sees `w1` under the bucket lock W4
//! takes), or S3 sees W1 (and the waiter does not sleep). Every nap is bounded by
//! [`LIVENESS_INTERVAL`](crate::sync::LIVENESS_INTERVAL) and followed by a re-check, so a
//! `waiters` word zeroed by a faulty peer delays a waiter by one nap at most.
//!
//! # State words
//!
//! `state` (`AtomicU32`, the futex word):
//!
//! | bits    | meaning                                           | written by                          |
//! |---------|---------------------------------------------------|-------------------------------------|
//! | 0 (SET) | the flag                                          | set (CAS, Release), clear (Relaxed) |
//! | 1..=31  | generation: clear-to-set transitions, mod 2^31    | set (the same CAS)                  |
//!
//! `waiters` (`AtomicU32`): sleepers registered (S1..S5), written only by them with
//! saturating arithmetic, as the semaphore's. A wrong count is harmless: too high costs
//! a wake syscall per `set`; too low (0 with sleepers) costs a sleeper up to one nap,
//! and the count is exact again once the sleepers present when it was overwritten have
//! left.
//!
//! All-zero bytes are a clear event. Any value a peer writes is a valid state (bit 0 the
//! flag, the rest a generation): garbage can set or clear the flag or wake waiters
//! spuriously (their `wait` returns `true`), never cause undefined behaviour, a panic, or
//! a timed wait that outlives its timeout. A waiter asleep through exactly 2^31 sets
//! and clears within one nap would miss them; that cannot happen in practice.
//!
//! # States the protocol never reaches
//!
//! None in the words: every value is a flag and a generation. The one state from which
//! no `set` can ever wake a waiter is a *poisoned mapping* (a peer resized the segment,
//! and this mapping is now private zeros: see `shm::sigbus`). A waiter checks for it
//! every [`LIVENESS_INTERVAL`](crate::sync::LIVENESS_INTERVAL) of sleep (one scan of the
//! mapping table, at most one `fstat`) and returns `false` (`Ok(false)`): the flag is
//! clear. A wait on a raw event outside any registered mapping never finds one.

use super::Wait;
use super::interrupt;
use super::semaphore::{SPINS, deregister, register, waker_fence};
use super::wait::Interrupted;
use crate::primitive::{self, AtomicU32, Ordering};
use std::time::Duration;

/// Bit 0 of the state word: the flag.
const SET: u32 = 1;

/// A process-shared event flag without a segment: 8 bytes that may live anywhere in
/// shared memory (all-zero bytes are a clear event). See the [module docs](self).
///
/// ```
/// use shmring::sync::RawEvent;
/// use std::time::Duration;
/// let e = RawEvent::new();
/// assert!(!e.wait_timeout(Duration::from_millis(1)));
/// e.set();
/// assert!(e.is_set() && e.wait_timeout(Duration::from_millis(1)));
/// e.clear();
/// assert!(!e.is_set());
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct RawEvent {
    state: AtomicU32,
    waiters: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RawEvent>() == 8);

impl Default for RawEvent {
    fn default() -> Self {
        Self::new()
    }
}

impl RawEvent {
    crate::primitive::const_unless_loom! {
        /// A clear event.
        pub const fn new() -> Self {
            RawEvent {
                state: AtomicU32::new(0),
                waiters: AtomicU32::new(0),
            }
        }
    }

    /// Whether the flag is set. `true` also orders this thread after the `set` that set
    /// it (its earlier writes are visible).
    pub fn is_set(&self) -> bool {
        // Acquire: pairs with the Release CAS in `set` (W1).
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// Set the flag and wake every waiter (no syscall when nobody sleeps).
    pub fn set(&self) {
        // Relaxed: the CAS below carries the Release.
        let mut w = self.state.load(Ordering::Relaxed);
        loop {
            let new = if w & SET != 0 { w } else { w.wrapping_add(2) | SET };
            // (W1) Release: pairs with the Acquire loads in `wait_in` (S3 and the
            // snapshots) and `is_set`.
            match self
                .state
                .compare_exchange_weak(w, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        if w & SET != 0 {
            // Already set: the setter that set it wakes the sleepers (or a sleeper that
            // registered after its fence saw the flag at S3).
            return;
        }
        // (W2) SeqCst: pairs with the waiter's fence (S2) in `wait_slow`.
        waker_fence();
        // (W3) Relaxed: ordered after (W1) by the fence (W2).
        if self.waiters.load(Ordering::Relaxed) != 0 {
            // (W4) Everyone: the kernel takes the count as an int.
            primitive::futex_wake(&self.state, i32::MAX as u32);
        }
    }

    /// Clear the flag: later waiters block until the next [`set`](Self::set). Waiters
    /// already woken by a `set` still return `true`.
    pub fn clear(&self) {
        // Relaxed: a clear publishes nothing (waiters only act on a set); as an RMW it
        // continues the release sequence of the last `set`, so a waiter that reads the
        // cleared word still synchronizes with that set.
        self.state.fetch_and(!SET, Ordering::Relaxed);
    }

    /// Block until the flag is set: `true`. Returns at once if it is set; returns also
    /// when a `set` happened since the call started, even if a `clear` followed it.
    ///
    /// `false`: the event can never be set for this mapping any more — a peer resized
    /// its segment and the mapping is now private zeros (see `docs/design-notes.md`,
    /// checked every [`LIVENESS_INTERVAL`](crate::sync::LIVENESS_INTERVAL) of sleep).
    pub fn wait(&self) -> bool {
        self.wait_in(Wait::Forever)
    }

    /// [`wait`](Self::wait) at most `timeout`: `true` if the flag is set, or was set
    /// since the call started; `false` on timeout (Python's `Event.wait(timeout)`), or
    /// earlier if the mapping is poisoned (as for [`wait`](Self::wait)).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_in(Wait::after(timeout))
    }

    /// [`wait`](Self::wait) (`timeout` `None`) or [`wait_timeout`](Self::wait_timeout)
    /// that also ends when an interrupt is pending (see `shmring::signal::Interrupt`):
    /// `Ok(true)` set, `Ok(false)` timed out (or the mapping is poisoned, as for
    /// [`wait`](Self::wait)), `Err(Interrupted)` still clear and an
    /// interrupt pending (checked before each sleep). `wait` and `wait_timeout` keep
    /// their signatures and are not interruptible.
    ///
    /// ```
    /// use shmring::sync::RawEvent;
    /// use std::time::Duration;
    /// let e = RawEvent::new();
    /// assert_eq!(e.wait_interruptible(Some(Duration::from_millis(1))), Ok(false));
    /// e.set();
    /// assert_eq!(e.wait_interruptible(None), Ok(true));
    /// ```
    pub fn wait_interruptible(&self, timeout: Option<Duration>) -> Result<bool, Interrupted> {
        // Acquire: pairs with the Release CAS in `set` (W1).
        let w0 = self.state.load(Ordering::Acquire);
        if w0 & SET != 0 {
            return Ok(true);
        }
        self.wait_slow(w0, Wait::from_timeout(timeout), true)
    }

    /// How many waiters are registered as (about to be) asleep: a snapshot, for
    /// diagnostics and tests. Each counted waiter took its snapshot of the word before
    /// registering, so it will return from a `set` made after this call.
    pub fn waiters(&self) -> u32 {
        // Relaxed: an advisory snapshot.
        self.waiters.load(Ordering::Relaxed)
    }

    /// `wait`: [`Wait::Forever`] blocks (also for a timeout too long to represent);
    /// [`Wait::Until`] gives up then.
    #[inline]
    fn wait_in(&self, wait: Wait) -> bool {
        // Acquire: pairs with the Release CAS in `set` (W1).
        let w0 = self.state.load(Ordering::Acquire);
        if w0 & SET != 0 {
            return true;
        }
        self.wait_slow(w0, wait, false) == Ok(true)
    }

    #[cold]
    #[inline(never)]
    fn wait_slow(&self, w0: u32, wait: Wait, interruptible: bool) -> Result<bool, Interrupted> {
        // From a clear word, only a `set` (or a faulty peer) changes the word.
        // Acquire: pairs with the Release CAS in `set` (W1).
        let signaled = || self.state.load(Ordering::Acquire) != w0;
        for _ in 0..SPINS {
            primitive::spin_hint();
            if signaled() {
                return Ok(true);
            }
        }
        let mut next_check = std::time::Instant::now() + super::LIVENESS_INTERVAL;
        loop {
            // The last check (above, or after the previous nap) found the word unchanged.
            let Some(nap) = wait.nap() else {
                return Ok(false);
            };
            // At most every LIVENESS_INTERVAL: a peer that resized the segment leaves
            // this mapping private zeros, where no `set` will ever arrive. Not an
            // interrupt or a timeout: the flag is clear, so `false`.
            let now = std::time::Instant::now();
            if now >= next_check {
                next_check = now + super::LIVENESS_INTERVAL;
                if crate::shm::sigbus::check_at((&self.state as *const AtomicU32).cast()) {
                    return Ok(false);
                }
            }
            if interruptible && interrupt::pending() {
                return Err(Interrupted);
            }
            // (S1)
            register(&self.waiters);
            // (S2) SeqCst: pairs with the setter's fence (W2) in `set`.
            primitive::fence(Ordering::SeqCst);
            // (S3)
            if !signaled() {
                // (S4) Returns at once if the word is no longer `w0`.
                primitive::futex_wait(&self.state, w0, Some(nap));
            }
            // (S5)
            deregister(&self.waiters);
            if signaled() {
                return Ok(true);
            }
        }
    }

    #[cfg(all(test, not(loom)))]
    fn words(&self) -> [&AtomicU32; 2] {
        [&self.state, &self.waiters]
    }
}

#[cfg(not(loom))]
mod handle;
#[cfg(not(loom))]
pub use handle::{Event, EventKind};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Wait until `n` waiters are registered on `e`.
    fn registered(e: &RawEvent, n: u32) {
        crate::sync::wait::spin_until("registered waiters", || e.waiters() == n);
    }

    #[test]
    fn corrupted_words() {
        let e = RawEvent::new();
        let [state, waiters] = e.words();
        // Garbage with bit 0 clear is a clear event with another generation.
        state.store(0xffff_fffe, Ordering::Relaxed);
        assert!(!e.is_set());
        assert!(!e.wait_timeout(Duration::from_millis(2)));
        e.set();
        assert_eq!(state.load(Ordering::Relaxed), 1, "the generation wraps");
        // Garbage with bit 0 set is a set event.
        state.store(0xdead_beef, Ordering::Relaxed);
        assert!(e.is_set() && e.wait_timeout(Duration::ZERO));
        e.clear();
        assert!(!e.is_set());
        // A waiter count at u32::MAX saturates (no wrap to 0, no panic).
        waiters.store(u32::MAX, Ordering::Relaxed);
        assert!(!e.wait_timeout(Duration::from_millis(2)));
        assert!(waiters.load(Ordering::Relaxed) >= u32::MAX - 1);
        waiters.store(0, Ordering::Relaxed);

        // A waiter count zeroed under a sleeper: the set skips the wake, and the sleeper
        // sees the flag after at most one nap.
        let e = Arc::new(RawEvent::new());
        let e2 = e.clone();
        let t = std::thread::spawn(move || e2.wait());
        registered(&e, 1);
        e.words()[1].store(0, Ordering::SeqCst);
        e.set();
        t.join().unwrap();
        // Its deregistration saturated at 0: the count is exact again.
        assert_eq!(e.waiters(), 0);
        // A peer rewriting the word under a sleeper wakes it spuriously: it returns true.
        e.clear();
        let e2 = e.clone();
        let t = std::thread::spawn(move || e2.wait_timeout(Duration::from_secs(30)));
        registered(&e, 1);
        let w = e.words()[0].load(Ordering::SeqCst);
        e.words()[0].store(w ^ 0x40, Ordering::SeqCst);
        assert!(t.join().unwrap());
    }
}
