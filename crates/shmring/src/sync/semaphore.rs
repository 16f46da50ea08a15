//! Process-shared counting semaphores: [`RawSemaphore`] (16 bytes, embeddable in your own
//! `#[repr(C)]` shared struct), and [`Semaphore`] and [`BoundedSemaphore`] (a segment
//! each), with the semantics of Python's `multiprocessing.Semaphore` and
//! `multiprocessing.BoundedSemaphore`.
//!
//! # Algorithm
//!
//! The value is the futex word itself, as in Drepper's "Futexes Are Tricky" and glibc's
//! semaphores (`nptl/sem_waitcommon.c`), with a count of sleepers beside it so that a
//! release makes no syscall when nobody sleeps:
//!
//! - acquire: a compare-and-swap loop `v -> v - 1` while `v > 0` (Acquire); at 0, a short
//!   spin (about 100 pause hints), then sleep: register in `waiters`, fence, re-check the
//!   value, `futex_wait(value, 0)` for at most one nap, deregister, try again.
//! - release(k): a compare-and-swap loop `v -> v + k` (Release), refused if it would pass
//!   `u32::MAX` or the bound; then a fence, and `futex_wake(value, k)` only if `waiters`
//!   is not 0.
//!
//! # Why no wake-up is lost
//!
//! ```text
//! sleeper (acquire_slow)                          waker (release)
//! waiters += 1 (saturating, Relaxed) (S1)         value: CAS v -> v + k, Release   (W1)
//! fence(SeqCst)                      (S2)         fence(SeqCst)                    (W2)
//! v = value.load(Relaxed)            (S3)         if waiters.load(Relaxed) != 0    (W3)
//! if v == 0: futex_wait(value, 0)    (S4)             futex_wake(value, k)         (W4)
//! waiters -= 1 (saturating, Relaxed) (S5)
//! ```
//!
//! (S1, S2, S3) against (W1, W2, W3) is a store-load (Dekker) pair. The fences S2 and W2
//! are ordered in the single total order of SeqCst operations: if S2 comes first, W3
//! reads S1's increment (or a later value) and the waker wakes; if W2 comes first, S3
//! reads W1's value (or a later one) and the sleeper does not sleep. When the waker
//! wakes, the kernel compares `value` with 0 at S4 under the futex bucket lock that W4
//! also takes: the sleeper either sees the new value and returns at once, or is queued
//! before W4 and is woken by it. A woken sleeper that loses the permit to another
//! acquirer sleeps again: the permit was not lost, someone took it.
//!
//! Every nap is bounded by [`LIVENESS_INTERVAL`](super::LIVENESS_INTERVAL) (and by the deadline of a timed call),
//! and the value is re-checked after each: a `waiters` word zeroed by a faulty peer costs
//! a sleeper at most one nap, never a hang.
//!
//! # State words
//!
//! `value` (`AtomicU32`, the futex word): the number of permits.
//!
//! | value                | meaning                                   | written by                 |
//! |----------------------|-------------------------------------------|----------------------------|
//! | `0`                  | no permit: acquirers sleep                | acquire (CAS, Acquire)     |
//! | `1..=max`            | that many permits                         | acquire, release (CAS)     |
//! | `> bound` (bounded)  | corrupted: every call is `Corrupted`      | only a faulty peer         |
//!
//! `max` is the bound of a bounded semaphore, `u32::MAX` otherwise.
//!
//! `waiters` (`AtomicU32`): sleepers registered (S1..S5), written only by them with
//! saturating arithmetic (a compare-and-swap loop; the sleep path can afford it). A
//! wrong count is harmless: too high costs a wake syscall per release; too low (0 with
//! sleepers) costs a sleeper up to one nap per missed wake, and the count is exact again
//! once the sleepers present when it was overwritten have left (a wrapping count would
//! stay off by their number for good).
//!
//! `bound` (`AtomicU32`) and `flags` (`AtomicU32`): written once when the semaphore is
//! set up ([`RawSemaphore::new`], [`RawSemaphore::bounded`], [`RawSemaphore::init`]),
//! read by every call of the raw type. `flags` is `0` (unbounded; `bound` unused) or
//! `1` (bounded by `bound`); any other value is `Corrupted`. The segment-backed types
//! read the bound once at open (from the header, cross-checked against these words)
//! and use their private copy afterwards.
//!
//! All-zero bytes are an unbounded semaphore with value 0.
//!
//! # Robustness
//!
//! Like Python's and POSIX semaphores, these are **not** robust to a holder dying: a
//! permit acquired by a process that is killed before it releases it is lost for good
//! (a semaphore does not know who holds its permits). Use a [`Mutex`](super::Mutex),
//! which recovers from a dead owner, where that matters.
//!
//! Any value a peer writes into the words is handled without undefined behaviour or
//! panic, and timed calls stay bounded by their timeout: a bounded semaphore whose value
//! exceeds its bound, or whose `flags` word is unknown, answers
//! [`AcquireError::Corrupted`] / [`ReleaseError::Corrupted`] and changes nothing; an
//! unbounded semaphore has no invalid value (a garbage value is merely a wrong count).

use super::interrupt;

use super::Wait;
use crate::primitive::{self, AtomicU32, Ordering};
use std::time::Duration;

/// Spin iterations (pause hints, each followed by a re-check) before a waiter sleeps.
/// Short under loom, where every spin is a scheduling point of the model.
pub(super) const SPINS: u32 = if cfg!(loom) { 1 } else { 100 };

/// Bit 0 of `flags`: the semaphore is bounded by `bound`.
const BOUNDED: u32 = 1;

/// The waker's fence (W2 in the module docs): after the store that changed the state,
/// before the load of the waiter count. Loom builds can plant its omission.
#[inline]
pub(super) fn waker_fence() {
    #[cfg(loom)]
    if primitive::loom_break::active(primitive::loom_break::LoomBreak::WakerFenceSkipped) {
        return;
    }
    primitive::fence(Ordering::SeqCst);
}

/// Register as a sleeper (S1): a saturating increment of `waiters`.
#[inline]
pub(super) fn register(waiters: &AtomicU32) {
    // Relaxed (both orderings): ordered before the re-check by the SeqCst fence that
    // follows (S2); nothing is published through the count.
    let _ = waiters.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(w.saturating_add(1)));
}

/// Deregister as a sleeper (S5): a saturating decrement of `waiters`.
#[inline]
pub(super) fn deregister(waiters: &AtomicU32) {
    // Relaxed (both orderings): a count; nothing is published through it, and a stale
    // count only costs a wake syscall or a nap (see the state table).
    let _ = waiters.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(w.saturating_sub(1)));
}

/// Why an acquire did not take a permit.
///
/// ```
/// use shmring::sync::{AcquireError, Semaphore};
/// use std::time::Duration;
/// let s = Semaphore::anonymous(0)?;
/// assert_eq!(s.try_acquire(), Err(AcquireError::WouldBlock));
/// assert_eq!(s.acquire_timeout(Duration::from_millis(1)), Err(AcquireError::Timeout));
/// # Ok::<(), shmring::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    /// `try_acquire`: no permit is available now.
    #[error("no permit is available")]
    WouldBlock,
    /// `acquire_timeout`: the time passed without a permit becoming available.
    #[error("timed out waiting for a permit")]
    Timeout,
    /// `acquire`, `acquire_timeout`: an interrupt is pending (see
    /// `shmring::signal::Interrupt`) and no permit is available. Nothing was taken.
    #[error("interrupted while waiting for a permit")]
    Interrupted,
    /// The shared state is invalid (a bounded semaphore whose value exceeds its bound, or
    /// an unknown `flags` word): a faulty peer wrote it. Nothing was changed.
    #[error("the semaphore's shared state is corrupted (value above its bound, or unknown flags)")]
    Corrupted,
}

/// Why a release did not add its permits. Nothing was changed.
///
/// ```
/// use shmring::sync::{BoundedSemaphore, ReleaseError};
/// let s = BoundedSemaphore::anonymous(1)?;
/// assert_eq!(s.release(1), Err(ReleaseError::AboveBound)); // nothing changed
/// assert_eq!(s.value(), 1);
/// # Ok::<(), shmring::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// The value would pass `u32::MAX`.
    #[error("releasing would overflow the semaphore's value (u32::MAX)")]
    Overflow,
    /// A bounded semaphore would exceed its bound: released more times than acquired
    /// (Python's `ValueError: semaphore or lock released too many times`).
    #[error("released too many times: the value would exceed the semaphore's bound")]
    AboveBound,
    /// The shared state is invalid (see [`AcquireError::Corrupted`]).
    #[error("the semaphore's shared state is corrupted (value above its bound, or unknown flags)")]
    Corrupted,
}

/// The largest value a semaphore may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// `u32::MAX`; exceeding it is `Overflow`.
    Unbounded,
    /// The bound; exceeding it is `AboveBound`.
    Bound(u32),
}

impl Limit {
    fn max(self) -> u32 {
        match self {
            Limit::Unbounded => u32::MAX,
            Limit::Bound(b) => b,
        }
    }

    fn exceeded(self) -> ReleaseError {
        match self {
            Limit::Unbounded => ReleaseError::Overflow,
            Limit::Bound(_) => ReleaseError::AboveBound,
        }
    }
}

/// A process-shared counting semaphore without a segment: 16 bytes that may live
/// anywhere in shared memory (all-zero bytes are an unbounded semaphore with value 0).
/// Place it in your own `#[repr(C)]` struct in a segment, set it up with
/// [`RawSemaphore::init`] before publishing the struct, and every process that maps it
/// can use it. See the [module docs](self) for the protocol and its limits.
///
/// ```
/// use shmring::sync::{RawSemaphore, AcquireError, ReleaseError};
/// let s = RawSemaphore::bounded(1);
/// s.acquire()?;
/// assert_eq!(s.try_acquire(), Err(AcquireError::WouldBlock));
/// s.release(1)?;
/// assert_eq!(s.release(1), Err(ReleaseError::AboveBound));
/// assert_eq!(s.value(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct RawSemaphore {
    value: AtomicU32,
    waiters: AtomicU32,
    bound: AtomicU32,
    flags: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RawSemaphore>() == 16);

impl Default for RawSemaphore {
    /// An unbounded semaphore with value 0 (the all-zero state).
    fn default() -> Self {
        Self::new(0)
    }
}

impl RawSemaphore {
    crate::primitive::const_unless_loom! {
        /// An unbounded semaphore holding `value` permits.
        pub const fn new(value: u32) -> Self {
            Self::with(value, 0, 0)
        }
    }

    crate::primitive::const_unless_loom! {
        /// A bounded semaphore holding `value` permits, which may never hold more.
        pub const fn bounded(value: u32) -> Self {
            Self::with(value, value, BOUNDED)
        }
    }

    crate::primitive::const_unless_loom! {
        const fn with(value: u32, bound: u32, flags: u32) -> Self {
            RawSemaphore {
                value: AtomicU32::new(value),
                waiters: AtomicU32::new(0),
                bound: AtomicU32::new(bound),
                flags: AtomicU32::new(flags),
            }
        }
    }

    /// Set the semaphore up in place: `value` permits, bounded by `value` if `bounded`.
    /// For a semaphore in (zeroed) shared memory, before other parties use it and before
    /// the memory is published to them; calling it while others use the semaphore is not
    /// undefined behaviour but breaks their counts.
    pub fn init(&self, value: u32, bounded: bool) {
        // Relaxed (all three): published to other parties by whatever publishes the
        // memory (for the segment-backed types, the Release store of READY).
        self.value.store(value, Ordering::Relaxed);
        self.bound.store(if bounded { value } else { 0 }, Ordering::Relaxed);
        self.flags.store(if bounded { BOUNDED } else { 0 }, Ordering::Relaxed);
    }

    /// The limit recorded in the state words, or `None` if `flags` is unknown.
    fn limit(&self) -> Option<Limit> {
        // Relaxed (both): written once at setup and published with the memory; a later
        // change by a faulty peer only yields another (checked) limit.
        match self.flags.load(Ordering::Relaxed) {
            0 => Some(Limit::Unbounded),
            BOUNDED => Some(Limit::Bound(self.bound.load(Ordering::Relaxed))),
            _ => None,
        }
    }

    /// The bound of a bounded semaphore (`None`: unbounded, or an unknown `flags` word).
    pub fn bound(&self) -> Option<u32> {
        match self.limit() {
            Some(Limit::Bound(b)) => Some(b),
            _ => None,
        }
    }

    /// The number of permits now (a snapshot; Python's `get_value`).
    pub fn value(&self) -> u32 {
        // Relaxed: an advisory snapshot that orders nothing.
        self.value.load(Ordering::Relaxed)
    }

    /// Take a permit, sleeping while there is none.
    pub fn acquire(&self) -> Result<(), AcquireError> {
        self.acquire_in(self.limit().ok_or(AcquireError::Corrupted)?, Wait::Forever)
    }

    /// Take a permit if one is available now (never sleeps).
    pub fn try_acquire(&self) -> Result<(), AcquireError> {
        self.try_acquire_in(self.limit().ok_or(AcquireError::Corrupted)?)
    }

    /// Take a permit, waiting at most `timeout` for one.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), AcquireError> {
        let limit = self.limit().ok_or(AcquireError::Corrupted)?;
        self.acquire_in(limit, Wait::after(timeout))
    }

    /// Add `k` permits and wake up to `k` sleepers. Refused, with nothing changed, if
    /// the value would pass `u32::MAX` (`Overflow`) or the bound (`AboveBound`).
    pub fn release(&self, k: u32) -> Result<(), ReleaseError> {
        self.release_in(k, self.limit().ok_or(ReleaseError::Corrupted)?)
    }

    /// Take a permit if the value is positive: `Ok(true)` taken, `Ok(false)` none left.
    #[inline]
    fn take(&self, limit: Limit) -> Result<bool, AcquireError> {
        // Relaxed: the CAS below carries the Acquire.
        let mut v = self.value.load(Ordering::Relaxed);
        loop {
            if v > limit.max() {
                return Err(AcquireError::Corrupted);
            }
            if v == 0 {
                return Ok(false);
            }
            // Acquire: pairs with the Release CAS in `release_in` (W1), so the releaser's
            // writes before its release are visible to the new holder of the permit.
            match self
                .value
                .compare_exchange_weak(v, v - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(true),
                Err(now) => v = now,
            }
        }
    }

    fn try_acquire_in(&self, limit: Limit) -> Result<(), AcquireError> {
        if self.take(limit)? {
            Ok(())
        } else {
            Err(AcquireError::WouldBlock)
        }
    }

    /// `wait`: [`Wait::Forever`] blocks (also for a timeout too long to represent);
    /// [`Wait::Until`] gives up then.
    #[inline]
    fn acquire_in(&self, limit: Limit, wait: Wait) -> Result<(), AcquireError> {
        if self.take(limit)? {
            return Ok(());
        }
        self.acquire_slow(limit, wait)
    }

    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, limit: Limit, wait: Wait) -> Result<(), AcquireError> {
        for _ in 0..SPINS {
            primitive::spin_hint();
            if self.take(limit)? {
                return Ok(());
            }
        }
        let mut next_check = std::time::Instant::now() + super::LIVENESS_INTERVAL;
        loop {
            // The last `take` (above, or at the end of the previous nap) failed.
            let Some(nap) = wait.nap() else {
                return Err(AcquireError::Timeout);
            };
            if interrupt::pending() {
                return Err(AcquireError::Interrupted);
            }
            // (S1) A count, because any number of parties may sleep.
            register(&self.waiters);
            // (S2) SeqCst: pairs with the waker's fence (W2) in `release_in`.
            primitive::fence(Ordering::SeqCst);
            // (S3) Relaxed: ordered after (S1) by the fence; `take` carries the Acquire.
            if self.value.load(Ordering::Relaxed) == 0 {
                // (S4) Returns at once if the value is no longer 0.
                primitive::futex_wait(&self.value, 0, Some(nap));
            }
            // (S5)
            deregister(&self.waiters);
            if self.take(limit)? {
                return Ok(());
            }
            // At most every LIVENESS_INTERVAL: a peer that resized the segment leaves
            // this mapping private zeros (now, or at its first fault), where no permit
            // will ever come.
            let now = std::time::Instant::now();
            if now >= next_check {
                next_check = now + super::LIVENESS_INTERVAL;
                if crate::shm::sigbus::check_at((&self.value as *const AtomicU32).cast()) {
                    return Err(AcquireError::Corrupted);
                }
            }
        }
    }

    fn release_in(&self, k: u32, limit: Limit) -> Result<(), ReleaseError> {
        // Relaxed: the CAS below carries the Release.
        let mut v = self.value.load(Ordering::Relaxed);
        loop {
            if v > limit.max() {
                return Err(ReleaseError::Corrupted);
            }
            let new = match v.checked_add(k) {
                Some(n) if n <= limit.max() => n,
                _ => return Err(limit.exceeded()),
            };
            if k == 0 {
                return Ok(());
            }
            // (W1) Release: pairs with the Acquire CAS in `take`.
            match self
                .value
                .compare_exchange_weak(v, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        // (W2) SeqCst: pairs with the sleeper's fence (S2) in `acquire_slow`.
        waker_fence();
        // (W3) Relaxed: ordered after (W1) by the fence (W2).
        if self.waiters.load(Ordering::Relaxed) != 0 {
            // (W4) The kernel takes the count as an int.
            primitive::futex_wake(&self.value, k.min(i32::MAX as u32));
        }
        Ok(())
    }

    #[cfg(all(test, not(loom)))]
    fn words(&self) -> [&AtomicU32; 4] {
        [&self.value, &self.waiters, &self.bound, &self.flags]
    }
}

#[cfg(not(loom))]
mod handle;
#[cfg(not(loom))]
pub use handle::{BoundedSemaphore, Semaphore, SemaphoreGuard, SemaphoreKind};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_and_bounds() {
        let s = RawSemaphore::new(2);
        assert_eq!(s.bound(), None);
        assert!(s.try_acquire().is_ok() && s.try_acquire().is_ok());
        assert_eq!(s.try_acquire(), Err(AcquireError::WouldBlock));
        assert_eq!(s.acquire_timeout(Duration::from_millis(5)), Err(AcquireError::Timeout));
        assert_eq!(s.release(0), Ok(()));
        s.release(u32::MAX).unwrap();
        assert_eq!(s.release(1), Err(ReleaseError::Overflow));
        assert_eq!(s.value(), u32::MAX);

        let b = RawSemaphore::bounded(2);
        assert_eq!(b.bound(), Some(2));
        b.acquire().unwrap();
        assert_eq!(b.release(2), Err(ReleaseError::AboveBound));
        assert_eq!(b.value(), 1);
        b.release(1).unwrap();
        assert_eq!(b.release(1), Err(ReleaseError::AboveBound));
        assert_eq!(b.value(), 2);

        // All-zero bytes: unbounded, value 0.
        let z = RawSemaphore::default();
        assert_eq!((z.value(), z.bound()), (0, None));
        z.init(3, true);
        assert_eq!((z.value(), z.bound()), (3, Some(3)));
        // A huge timeout is no deadline, and no panic.
        assert_eq!(z.acquire_timeout(Duration::MAX), Ok(()));
    }

    #[test]
    fn corrupted_words() {
        let b = RawSemaphore::bounded(2);
        let [value, waiters, bound, flags] = b.words();
        // A value above the bound: every call is Corrupted and changes nothing.
        value.store(7, Ordering::Relaxed);
        assert_eq!(b.try_acquire(), Err(AcquireError::Corrupted));
        assert_eq!(b.acquire(), Err(AcquireError::Corrupted));
        assert_eq!(
            b.acquire_timeout(Duration::from_millis(1)),
            Err(AcquireError::Corrupted)
        );
        assert_eq!(b.release(1), Err(ReleaseError::Corrupted));
        assert_eq!(b.value(), 7);
        // Unknown flags: Corrupted too.
        value.store(1, Ordering::Relaxed);
        flags.store(0xdead_beef, Ordering::Relaxed);
        assert_eq!(
            (b.try_acquire(), b.release(1)),
            (Err(AcquireError::Corrupted), Err(ReleaseError::Corrupted))
        );
        assert_eq!(b.bound(), None);
        // A changed bound is just another bound.
        flags.store(BOUNDED, Ordering::Relaxed);
        bound.store(1, Ordering::Relaxed);
        assert_eq!(b.release(1), Err(ReleaseError::AboveBound));
        // A waiter count at u32::MAX saturates (no wrap to 0, no panic); a release with a
        // garbage count makes a useless wake-up syscall and still succeeds.
        waiters.store(u32::MAX, Ordering::Relaxed);
        b.acquire().unwrap();
        assert_eq!(b.acquire_timeout(Duration::from_millis(1)), Err(AcquireError::Timeout));
        assert!(waiters.load(Ordering::Relaxed) >= u32::MAX - 1);
        b.release(1).unwrap();

        // A waiter count zeroed under a sleeper: the release skips the wake, and the
        // sleeper finds the permit after at most one nap.
        let s = Arc::new(RawSemaphore::new(0));
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.acquire().unwrap());
        crate::sync::wait::spin_until("a sleeper", || s.words()[1].load(Ordering::SeqCst) != 0);
        s.words()[1].store(0, Ordering::SeqCst);
        s.release(1).unwrap();
        t.join().unwrap();
        // The sleeper's deregistration saturated at 0: the count is exact again.
        assert_eq!(s.words()[1].load(Ordering::SeqCst), 0);
    }
}
