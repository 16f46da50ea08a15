//! A robust, process-shared mutex: [`RawMutex`] (embeddable in your own `#[repr(C)]`
//! shared struct), [`Mutex<T>`] (a segment holding the lock and a `Pod` value), and the
//! reentrant [`RLock`].
//!
//! # Algorithm
//!
//! Drepper's three-state futex mutex ("Futexes Are Tricky", mutex2), with the owner's
//! identity in the lock word as in the kernel's robust futexes, and the sleepers on a
//! separate 32-bit sequence word because the lock word is 64 bits wide (a futex is 32):
//!
//! - lock: one compare-and-swap `0 -> me` (`me` = the thread's TID and start time); on
//!   failure, a short spin with exponential backoff, then sleep: set `WAITERS` in the word, sleep on `seq`.
//! - unlock: swap the word to 0; if `WAITERS` was set, bump `seq` and wake one sleeper,
//!   which re-locks with `WAITERS` set (others may still sleep).
//! - robustness: a waiter checks the owner's liveness every
//!   [`LIVENESS_INTERVAL`] (and once more before a timed
//!   lock gives up); a dead owner's word is replaced by the waiter's with one
//!   compare-and-swap, so exactly one party recovers it, and the lock becomes
//!   *inconsistent*: that locker, and every later one until someone calls
//!   [`MutexGuard::mark_consistent`], gets [`OwnerDied`] carrying the guard.
//!   A holder killed while nobody waits is found by the next locker after at most one
//!   interval of sleep; one killed while others sleep, by the first sleeper to wake.
//!
//! # State words
//!
//! `word` (`AtomicU64`):
//!
//! | value              | meaning                                   | written by                     |
//! |--------------------|-------------------------------------------|--------------------------------|
//! | `0`                | unlocked, nobody asleep                   | unlock (swap)                  |
//! | `WAITERS`          | unlocked, sleepers may exist              | left by requeue / a leaver     |
//! | `owner`            | locked by `owner`, nobody asleep          | lock (CAS from 0)              |
//! | `owner \| WAITERS` | locked, sleepers may exist: unlock wakes  | a sleeper (CAS), a recoverer   |
//!
//! `owner` is bits 0..=62 (TID << 32 | start ticks), never 0; `WAITERS` is bit 63. A word
//! naming a thread that is gone (also after corruption) is recovered as a dead owner.
//!
//! `seq` (`AtomicU32`, the futex word): bumped with Release by an unlock that swapped out
//! `WAITERS`; a sleeper reads it (Acquire) *before* its last look at `word`, so an unlock
//! between that look and the sleep changes `seq` and the futex wait returns at once.
//!
//! `state` (`AtomicU32`): 0 consistent; anything else inconsistent (set by the locker
//! that recovered from a dead owner, cleared by `mark_consistent`).
//!
//! `depth` (`AtomicU32`, [`RLock`] only): extra acquisitions by the owning thread; only
//! the owner reads or writes it, with wrapping arithmetic (a peer that corrupts it can
//! make the lock release early or late, never cause undefined behaviour or a panic;
//! how late is bounded, see below).
//!
//! # States the protocol never reaches, and what a wait does about them
//!
//! Checked at the liveness tick of a wait (every [`LIVENESS_INTERVAL`] of sleep, and
//! before a timed lock gives up), never on the fast path (which only counts the
//! thread's acquisitions: one add on lock, one subtract on unlock, in the thread-local
//! block it reads its identity from):
//!
//! | state | found by | result |
//! |-------|----------|--------|
//! | `owner` names a thread that is gone, a zombie, or started at another time (any word a peer scribbles, short of a live thread's exact identity) | every waiting locker | recovered: the lock is taken, [`OwnerDied`] (the loss is the inconsistent mark) |
//! | `owner` names the waiting thread itself (no unlock can ever come: a corrupted word, or this thread's own leaked guard) | `lock_timeout`, `lock_interruptible` (and `Condition`'s) | [`LockError::Corrupted`] |
//! | `owner` names the waiting thread itself, and that thread holds no acquisition of any lock (a thread-local count, see `held`: no guard of it can be alive, so the word is corrupted) | `lock`, the re-lock inside a `Condition` wait, and every `RLock` acquisition (which would otherwise count it as nested) | recovered: the lock is taken, [`OwnerDied`] (the loss is the inconsistent mark) |
//! | `owner` names the waiting thread itself, and that thread holds some lock (maybe this one: a second `lock` under a live guard is a real self-deadlock; or a guard leaked with `mem::forget`, which stays counted because it cannot be told from a `Box::leak`ed one that is still usable) | `lock` | waits, as `std`'s `Mutex` may: it must not hand out a second guard. Use `lock_timeout` to be told ([`LockError::Corrupted`]) |
//! | the segment was resized by a peer (the mapping is private zeros) | `lock_timeout`, `lock_interruptible` | [`LockError::Corrupted`]; `lock` takes the zeroed (free) word |
//! | `state` not 0 | every locker | [`OwnerDied`] until `mark_consistent` (a garbage word is an inconsistent lock, never a failure to lock) |
//! | `depth` above the acquisitions the owning thread holds (an `RLock` would stay held by a thread that let go of it) | the owner's unlock | clamped to the guards this thread holds (a thread-local count over its `RLock`s): the lock is released by the thread's last guard at the latest |
//! | the word no longer names the owner at its unlock (a peer overwrote it; someone else may hold it) | the owner's `RLock` unlock | left alone: no unlock of another's lock |
//!
//! Not detectable, and so waited for: a word naming another *live* thread. Any process
//! that can write the segment can also take the lock legitimately and keep it; the two
//! look the same. `seq` has no invalid value (a wrong key costs one nap at most).

use super::Wait;
use super::interrupt;
use super::owner::Owner;
use super::wait::LIVENESS_INTERVAL;
use crate::primitive::{self, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bit 63 of the lock word: sleepers may exist.
pub(crate) const WAITERS: u64 = 1 << 63;

/// Looks at the lock word before a locker sleeps, with exponential backoff between them:
/// 1, 2, 4, ... 64 pause hints (then 64 each), about 600 pauses in all. Backing off
/// matters: a waiter that re-reads the word after every pause grabs the lock at nearly
/// every release and bounces its cache line between CPUs on each hand-off (measured:
/// 4-6x fewer contended operations per second than with backoff; docs/benchmarks.md).
/// None under loom, where every spin would be another scheduling point to explore.
#[cfg(not(loom))]
const SPINS: u32 = 14;
#[cfg(loom)]
const SPINS: u32 = 0;

/// The largest backoff step: 2^6 = 64 pause hints between two looks.
const MAX_BACKOFF_SHIFT: u32 = 6;

/// How the slow path ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slow {
    Acquired,
    Recovered,
    TimedOut,
    Interrupted,
    /// The lock can never be handed to this caller (see [`LockError::Corrupted`]).
    Corrupted,
}

/// A robust process-shared mutex without data: 24 bytes that may live anywhere in shared
/// memory (all-zero bytes are an unlocked mutex). Place it in your own `#[repr(C)]`
/// struct in a segment; every process that maps the struct can lock it.
///
/// All parties must be in one pid namespace (see [`crate::sync`]'s module docs).
///
/// ```
/// use shmring::sync::RawMutex;
/// let m = RawMutex::new();
/// assert!(m.lock().is_ok());
/// assert!(m.is_locked());
/// // SAFETY: this thread holds the lock.
/// unsafe { m.unlock() };
/// assert!(!m.is_locked());
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct RawMutex {
    word: AtomicU64,
    seq: AtomicU32,
    state: AtomicU32,
    depth: AtomicU32,
    _reserved: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RawMutex>() == 24);

impl Default for RawMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl RawMutex {
    crate::primitive::const_unless_loom! {
        /// An unlocked, consistent mutex.
        pub const fn new() -> Self {
            RawMutex {
                word: AtomicU64::new(0),
                seq: AtomicU32::new(0),
                state: AtomicU32::new(0),
                depth: AtomicU32::new(0),
                _reserved: AtomicU32::new(0),
            }
        }
    }

    /// Lock, sleeping while another thread holds it. `Err(OwnerDied)`: the lock is held
    /// by this thread, but its previous holder died with it (or the data was never marked
    /// consistent since).
    #[inline]
    pub fn lock(&self) -> LockResult<()> {
        let me = Owner::current().0;
        // Acquire: pairs with the Release swap in `unlock`, so the previous holder's
        // writes to the protected data are visible once we hold the lock.
        if self
            .word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return self.acquired(Slow::Acquired);
        }
        self.acquired(self.lock_slow(me, Wait::Forever, false))
    }

    /// [`lock`](Self::lock), but a pending interrupt (see `shmring::signal::Interrupt`)
    /// ends the wait with [`LockError::Interrupted`] (checked before each sleep and after
    /// each wake; a free lock is still taken).
    ///
    /// `lock` itself stays uninterruptible: shmring takes locks internally around short
    /// critical sections (seqlocks, queue counters) that must not fail half-way, and its
    /// `LockResult` has no room for the error.
    pub fn lock_interruptible(&self) -> Result<(), LockError<()>> {
        self.lock_interruptible_until(Wait::Forever)
    }

    /// The fast path of `lock`, then the slow path for at most `wait`, interruptible.
    fn lock_interruptible_until(&self, wait: Wait) -> Result<(), LockError<()>> {
        let me = Owner::current().0;
        // Acquire: as in `lock`.
        if self
            .word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return self.acquired(Slow::Acquired).map_err(LockError::OwnerDied);
        }
        self.finish_slow(self.lock_slow(me, wait, true))
    }

    fn finish_slow(&self, s: Slow) -> Result<(), LockError<()>> {
        match s {
            Slow::TimedOut => Err(LockError::Timeout),
            Slow::Interrupted => Err(LockError::Interrupted),
            Slow::Corrupted => Err(LockError::Corrupted),
            s => self.acquired(s).map_err(LockError::OwnerDied),
        }
    }

    /// Lock if it is free now (never sleeps, never checks the owner's liveness).
    #[inline]
    pub fn try_lock(&self) -> Result<(), LockError<()>> {
        let me = Owner::current().0;
        let mut w = self.word.load(Ordering::Relaxed);
        while w & !WAITERS == 0 {
            // Acquire: as in `lock`.
            match self
                .word
                .compare_exchange(w, me | (w & WAITERS), Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return self.acquired(Slow::Acquired).map_err(LockError::OwnerDied),
                Err(now) => w = now,
            }
        }
        Err(LockError::WouldBlock)
    }

    /// Lock, sleeping at most `timeout`. Before giving up it checks whether the holder is
    /// dead (then it recovers the lock: `LockError::OwnerDied`). A pending interrupt
    /// ends the wait early: [`LockError::Interrupted`].
    pub fn lock_timeout(&self, timeout: Duration) -> Result<(), LockError<()>> {
        self.lock_interruptible_until(Wait::after(timeout))
    }

    /// Unlock.
    ///
    /// # Safety
    ///
    /// The calling thread holds the lock (acquired by `lock`, `try_lock` or
    /// `lock_timeout`, including through `OwnerDied`), and the data it protects is no
    /// longer accessed through this acquisition.
    #[inline]
    pub unsafe fn unlock(&self) {
        held::lock_released();
        // Release: pairs with the Acquire CAS of the next locker (fast path, slow path,
        // recovery), publishing our writes to the protected data.
        let prev = self.word.swap(0, Ordering::Release);
        if prev & WAITERS != 0 {
            self.wake_one();
        }
    }

    /// Whether some thread holds the lock (a snapshot).
    pub fn is_locked(&self) -> bool {
        // Relaxed: an advisory snapshot.
        self.word.load(Ordering::Relaxed) & !WAITERS != 0
    }

    /// Whether the calling thread holds the lock.
    pub fn is_owned_by_current_thread(&self) -> bool {
        // Relaxed: only this thread writes its own identity into the word, and it reads
        // its own latest write (or a later value) by coherence.
        self.word.load(Ordering::Relaxed) & !WAITERS == Owner::current().0
    }

    /// Whether the data is marked consistent (no holder died since the last
    /// [`RawMutex::mark_consistent`]).
    pub fn is_consistent(&self) -> bool {
        // Relaxed: advisory when not holding the lock; ordered by the lock's Acquire when
        // holding it.
        self.state.load(Ordering::Relaxed) == 0
    }

    /// Declare the protected data consistent again after repairing it (call while holding
    /// the lock): later lockers get a clean `Ok`.
    pub fn mark_consistent(&self) {
        // Relaxed: published to the next locker by the Release of `unlock`.
        self.state.store(0, Ordering::Relaxed);
    }

    /// Every acquisition ends here (fast path, slow path, recovery, `try_lock`, the
    /// re-lock after a condition wait): count it for this thread (see [`held`]).
    #[inline]
    fn acquired(&self, how: Slow) -> LockResult<()> {
        held::lock_taken();
        if how == Slow::Recovered {
            // Relaxed: we hold the lock; published by our unlock's Release.
            self.state.store(1, Ordering::Relaxed);
            return Err(OwnerDied::new(()));
        }
        // Relaxed: written only by holders of the lock, ordered by the Acquire that
        // acquired it.
        if self.state.load(Ordering::Relaxed) != 0 {
            Err(OwnerDied::new(()))
        } else {
            Ok(())
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_one(&self) {
        // Release: pairs with the Acquire load of `seq` by a sleeper in `lock_slow`.
        self.seq.fetch_add(1, Ordering::Release);
        primitive::futex_wake(&self.seq, 1);
    }

    /// The contended path: spin, then sleep, checking the owner's liveness every interval
    /// and before a timeout, and (`interruptible`) the interrupt flag before each sleep.
    #[cold]
    #[inline(never)]
    fn lock_slow(&self, me: u64, wait: Wait, interruptible: bool) -> Slow {
        let mut slept = false;
        let mut spins = 0u32;
        let mut next_check: Option<Instant> = None;
        loop {
            // Relaxed: the CAS below carries the Acquire.
            let w = self.word.load(Ordering::Relaxed);
            if w & !WAITERS == 0 {
                // Free. After a sleep, others may still sleep: keep WAITERS set so our
                // unlock wakes the next one.
                let new = me | if slept { WAITERS } else { w & WAITERS };
                // Acquire: as in `lock`.
                if self
                    .word
                    .compare_exchange(w, new, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Slow::Acquired;
                }
                continue;
            }
            if !slept && spins < SPINS && w & WAITERS == 0 {
                for _ in 0..1u32 << spins.min(MAX_BACKOFF_SHIFT) {
                    primitive::spin_hint();
                }
                spins += 1;
                continue;
            }
            let now = Instant::now();
            let next = *next_check.get_or_insert(now + LIVENESS_INTERVAL);
            // `None`: the deadline passed; `Some(None)`: there is none.
            let left = wait.left(now);
            let expired = left.is_none();
            if now >= next || expired {
                next_check = Some(now + LIVENESS_INTERVAL);
                let dead = Owner(w & !WAITERS).is_dead();
                // Only calls that can report it (the timed and interruptible forms):
                // `lock` has no room for the error, and on a poisoned mapping the word
                // reads 0, so its next look takes the (now private) lock.
                if !dead && interruptible && self.cannot_be_handed_over(w, me) {
                    return Slow::Corrupted;
                }
                // Take the word over from a dead owner; or, in `lock` (and the re-lock
                // after a condition wait), from a word naming this thread while it holds
                // no acquisition of any lock: written by no path of the protocol
                // (corrupted), nobody will unlock it, and no guard of this thread can
                // alias it (the loss is the inconsistent mark). A thread that holds some
                // lock (maybe this one: a second `lock` under a live guard, or a leaked
                // guard) waits, as it always did: it must not get a second guard.
                let corrupt_self = !interruptible && w & !WAITERS == me && held::holds_no_lock();
                if dead || corrupt_self {
                    // Exactly one party wins this CAS on the word. WAITERS: others may
                    // sleep. Acquire: the dead owner wrote no Release; this orders our
                    // reads after whatever its last unlock published.
                    if self
                        .word
                        .compare_exchange(w, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return Slow::Recovered;
                    }
                    continue;
                }
                if expired {
                    return Slow::TimedOut;
                }
            }
            if interruptible && interrupt::pending() {
                return Slow::Interrupted;
            }
            // Acquire: pairs with the Release bump in `wake_one`. Read before the last
            // look at `word`: an unlock after that look bumps `seq` after this read, so
            // the futex wait below returns at once.
            let key = self.seq.load(Ordering::Acquire);
            // Relaxed: ordered after the Acquire load above.
            let w = self.word.load(Ordering::Relaxed);
            if w & !WAITERS == 0 {
                continue;
            }
            // Relaxed: the unlock's swap is an RMW of the same word, so it either sees
            // our WAITERS or our CAS fails.
            #[cfg(loom)]
            let planted = primitive::loom_break::active(primitive::loom_break::LoomBreak::MutexWaitersBitSkipped);
            #[cfg(not(loom))]
            let planted = false;
            if w & WAITERS == 0
                && !planted
                && self
                    .word
                    .compare_exchange(w, w | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let nap = left.flatten().map_or(LIVENESS_INTERVAL, |l| l.min(LIVENESS_INTERVAL));
            primitive::futex_wait(&self.seq, key, Some(nap));
            slept = true;
        }
    }

    /// At a liveness tick of a wait, with `w` the word that holds the caller back: the
    /// states no unlock will ever end. The word names the waiting thread itself (no
    /// path of the protocol writes it while that thread waits: a corrupted word, or a
    /// guard of this thread leaked), or the segment the lock lives in was resized by a
    /// peer (this mapping is private zeros now: see `shm::sigbus`; one table scan and
    /// at most one `fstat`).
    #[cold]
    fn cannot_be_handed_over(&self, w: u64, me: u64) -> bool {
        w & !WAITERS == me || crate::shm::sigbus::check_at((&self.word as *const AtomicU64).cast())
    }

    // ---- reentrant use (RLock) -------------------------------------------------------

    /// Lock reentrantly: if this thread already holds it, count one more acquisition;
    /// otherwise acquire it with `acquire` (`try_lock`, `lock_timeout`, ...).
    /// A word naming this thread while the thread holds no acquisition of any lock
    /// (corrupted: no path of the protocol leaves it so) is not a nesting: it is taken
    /// as from a dead owner ([`LockError::OwnerDied`], `depth` reset), as `lock` does.
    #[cfg_attr(loom, allow(dead_code))]
    fn lock_reentrant(&self, acquire: impl FnOnce(&Self) -> Result<(), LockError<()>>) -> Result<(), LockError<()>> {
        if self.is_owned_by_current_thread() {
            if held::holds_no_lock() {
                // Relaxed: the word names us; nobody else may touch `depth`.
                self.depth.store(0, Ordering::Relaxed);
                held::add(1);
                return self.acquired(Slow::Recovered).map_err(LockError::OwnerDied);
            }
            // Relaxed (both): only the owner touches `depth`.
            let d = self.depth.load(Ordering::Relaxed);
            self.depth.store(d.wrapping_add(1), Ordering::Relaxed);
            held::add(1);
            // Every reentrant acquisition is counted, and every release below uncounts
            // one: balanced even when the word was not ours to nest on.
            held::lock_taken();
            return Ok(());
        }
        let r = acquire(self);
        if matches!(r, Ok(()) | Err(LockError::OwnerDied(_))) {
            // Relaxed: we hold the lock.
            self.depth.store(0, Ordering::Relaxed);
            held::add(1);
        }
        r
    }

    /// Release one reentrant acquisition. The shared `depth` is checked against what
    /// this thread can hold: it holds `n` reentrant acquisitions over all its locks
    /// (a thread-local count), so this lock's depth is at most `n - 1`; a larger value
    /// (a peer wrote it) is taken as `n - 1`, so the lock is released no later than
    /// the thread's last guard, never kept for good by a thread that thinks it let go.
    /// A word that no longer names this thread (a peer overwrote it, and someone else
    /// may hold the lock now) is left alone: neither the word nor `depth` is ours.
    ///
    /// # Safety
    /// The calling thread holds the lock through a reentrant acquisition.
    #[cfg_attr(loom, allow(dead_code))]
    unsafe fn unlock_reentrant(&self) {
        let n = held::take_one();
        // Relaxed (both): only the owner touches `depth`.
        let d = self.depth.load(Ordering::Relaxed).min(n.saturating_sub(1));
        if d == 0 {
            // Checked only here, off the nested path: a decrement of a `depth` that is
            // no longer ours harms nobody (its owner resets it when it acquires).
            if self.is_owned_by_current_thread() {
                // SAFETY: forwarded from the caller: this thread holds the lock.
                unsafe { self.unlock() };
            } else {
                // Our acquisition ended all the same (someone else's word now).
                held::lock_released();
            }
        } else {
            self.depth.store(d - 1, Ordering::Relaxed);
            held::lock_released();
        }
    }

    /// Requeue support for a condition variable: the futex word sleepers wait on.
    pub(crate) fn seq_word(&self) -> &AtomicU32 {
        &self.seq
    }

    /// Mark that sleepers may exist (before requeueing condition waiters onto `seq`).
    pub(crate) fn set_waiters(&self) {
        // Relaxed: an RMW of the lock word; the unlock's swap sees it or precedes it.
        self.word.fetch_or(WAITERS, Ordering::Relaxed);
    }

    /// Lock after a condition wait: like `lock`, but always leaving `WAITERS` set, since
    /// other condition waiters may have been requeued onto this mutex.
    pub(crate) fn lock_after_wait(&self, wait: Wait) -> Result<(), LockError<()>> {
        let me = Owner::current().0;
        // Acquire: as in `lock`.
        if self
            .word
            .compare_exchange(0, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            || self
                .word
                .compare_exchange(WAITERS, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return self.acquired(Slow::Acquired).map_err(LockError::OwnerDied);
        }
        self.finish_slow(self.lock_slow(me, wait, false))
    }
}

/// What the calling thread holds, in two thread-local counts:
///
/// - `HELD`: reentrant acquisitions ([`RLock`] guards, nested ones included) over all
///   its reentrant locks: the bound on any one lock's `depth` (see
///   `RawMutex::unlock_reentrant`).
/// - `LOCKS`: acquisitions of any [`RawMutex`] (every kind of lock, an `RLock`'s nested
///   acquisitions included) not yet released: counted where every acquisition ends
///   (`RawMutex::acquired`, and the nested path of `lock_reentrant`), uncounted by
///   `RawMutex::unlock` and by a nested (or no longer owned) `unlock_reentrant`. A thread that holds none cannot
///   own a live guard of any lock, so a lock word naming it is corrupted (see the
///   module docs). A guard leaked with `mem::forget` stays counted (it cannot be told
///   from one leaked with `Box::leak`, which is still usable), so it only errs on the
///   side of waiting. Wrapping arithmetic: an unbalanced count (a raw `unlock` on
///   another thread than the lock's, against its contract) also errs that way.
///
/// Cost: one add and one subtract on this thread's TLS block per lock/unlock pair (the
/// uncontended `Mutex` budget of `instr-check`).
#[cfg_attr(loom, allow(dead_code))]
mod held {
    use super::Owner;

    #[cfg(not(loom))]
    thread_local! {
        static HELD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    /// Count one acquisition of a lock (`LOCKS` lives beside the thread's identity,
    /// which the fast path reads anyway: see `Owner`).
    #[inline(always)]
    pub(super) fn lock_taken() {
        Owner::lock_taken();
    }

    /// Count one release of a lock.
    #[inline(always)]
    pub(super) fn lock_released() {
        Owner::lock_released();
    }

    /// Whether the thread holds no acquisition of any lock (never under loom, which
    /// counts nothing: a word naming the waiter is waited for there, as before).
    pub(super) fn holds_no_lock() -> bool {
        Owner::locks_held() == 0
    }

    /// Count `k` more acquisitions.
    #[cfg(not(loom))]
    pub(super) fn add(k: u32) {
        HELD.with(|h| h.set(h.get().saturating_add(k)));
    }

    /// Count one acquisition less; the count before (at least 1 for a caller that
    /// releases one).
    #[cfg(not(loom))]
    pub(super) fn take_one() -> u32 {
        HELD.with(|h| {
            let n = h.get().max(1);
            h.set(n - 1);
            n
        })
    }

    // Under loom (no thread locals: see owner.rs), no bound.
    #[cfg(loom)]
    pub(super) fn add(_: u32) {}

    #[cfg(loom)]
    pub(super) fn take_one() -> u32 {
        u32::MAX
    }
}

mod error;
pub use error::{LockError, LockResult, OwnerDied};

#[cfg(not(loom))]
mod handle;
#[cfg(not(loom))]
pub use handle::{Mutex, MutexGuard, MutexKind, RLock, RLockGuard, RLockKind};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn corrupted_words() {
        let r = RawMutex::new();
        // A word naming no live thread: recovered as a dead owner.
        r.word.store(0x7fff_fffe_0000_0001, Ordering::Relaxed);
        assert!(matches!(
            r.lock_timeout(Duration::from_millis(1)),
            Err(LockError::OwnerDied(_))
        ));
        // SAFETY: we hold it.
        unsafe { r.unlock() };
        // WAITERS alone is an unlocked lock.
        r.word.store(WAITERS, Ordering::Relaxed);
        r.mark_consistent();
        assert!(r.try_lock().is_ok());
        // SAFETY: we hold it.
        unsafe { r.unlock() };
        // A garbage state word reads as inconsistent, never as a failure to lock.
        r.state.store(0xdead_beef, Ordering::Relaxed);
        assert!(r.lock().is_err());
        r.mark_consistent();
        // SAFETY: we hold it.
        unsafe { r.unlock() };
        assert!(r.lock().is_ok());
        // SAFETY: we hold it.
        unsafe { r.unlock() };
    }
}
