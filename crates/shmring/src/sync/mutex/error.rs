//! What a lock call returns besides a clean guard: [`OwnerDied`] (the lock was taken
//! from a dead holder, and is held) and [`LockError`] (the try and timed forms).

use std::fmt;

/// The previous holder died holding the lock (or a previous recoverer did not mark the
/// data consistent, or the lock word named the locking thread itself while that thread
/// held no lock: a corrupted word, taken over like a dead holder's). The lock **is
/// held**: `into_inner` gives the guard, with which the data can be checked, repaired
/// and marked consistent.
///
/// ```
/// use shmring::sync::Mutex;
/// let m = std::sync::Arc::new(Mutex::anonymous(1u32)?);
/// let m2 = m.clone();
/// // A thread that ends holding the lock is a dead owner, like a killed process.
/// std::thread::spawn(move || std::mem::forget(m2.lock().unwrap())).join().unwrap();
/// let died = m.lock().expect_err("the holder died");
/// let g = died.into_inner(); // the lock is held: check and repair the value
/// assert_eq!(*g, 1);
/// g.mark_consistent();
/// # Ok::<(), shmring::Error>(())
/// ```
pub struct OwnerDied<G> {
    guard: G,
}

impl<G> OwnerDied<G> {
    pub(crate) fn new(guard: G) -> Self {
        OwnerDied { guard }
    }

    /// The guard of the now-held lock.
    pub fn into_inner(self) -> G {
        self.guard
    }

    /// A reference to the guard.
    pub fn get_ref(&self) -> &G {
        &self.guard
    }

    /// A mutable reference to the guard.
    pub fn get_mut(&mut self) -> &mut G {
        &mut self.guard
    }

    /// Apply `f` to the guard (turn a raw acquisition into a typed guard).
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> OwnerDied<H> {
        OwnerDied { guard: f(self.guard) }
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerDied").finish_non_exhaustive()
    }
}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the previous holder of the lock died holding it; the protected data may be inconsistent")
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

/// The outcome of a lock call that may fail: `Ok(guard)`, or the lock was taken from a
/// dead owner (`Err(OwnerDied)`, lock held).
pub type LockResult<G> = Result<G, OwnerDied<G>>;

/// Why `try_lock` or `lock_timeout` did not return a clean guard.
///
/// ```
/// use shmring::sync::{LockError, Mutex};
/// use std::time::Duration;
/// let m = std::sync::Arc::new(Mutex::anonymous(())?);
/// let _g = m.lock().unwrap();
/// let m2 = m.clone();
/// std::thread::spawn(move || {
///     assert!(matches!(m2.try_lock(), Err(LockError::WouldBlock)));
///     assert!(matches!(m2.lock_timeout(Duration::from_millis(1)), Err(LockError::Timeout)));
/// })
/// .join()
/// .unwrap();
/// # Ok::<(), shmring::Error>(())
/// ```
pub enum LockError<G> {
    /// Acquired, but from a dead owner (see [`OwnerDied`]): the lock is held.
    OwnerDied(OwnerDied<G>),
    /// `try_lock`: the lock is held by another thread.
    WouldBlock,
    /// `lock_timeout`: the time passed and the lock is held by a live thread.
    Timeout,
    /// `lock_interruptible`, `lock_timeout`: an interrupt is pending (see
    /// `shmring::signal::Interrupt`) and the lock is held by a live thread. The lock
    /// was not taken.
    Interrupted,
    /// The timed and interruptible forms, at a liveness tick of their wait: the lock
    /// can never be handed to this caller by its protocol — its segment was resized by
    /// a peer and this mapping is now private zeros (see `docs/design-notes.md`), or the
    /// lock word names the calling thread itself (a corrupted word, or a guard of this
    /// thread leaked with `mem::forget`). The lock was not taken.
    ///
    /// `Condition::wait_while` and `wait_while_interruptible`: the condition's segment
    /// was resized by a peer (no notifier can reach this mapping); the lock was
    /// released.
    Corrupted,
}

impl<G> LockError<G> {
    /// The guard, if the lock was acquired (from a dead owner).
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(o) => Some(o.into_inner()),
            _ => None,
        }
    }

    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn map<H>(self, f: impl FnOnce(G) -> H) -> LockError<H> {
        match self {
            LockError::OwnerDied(o) => LockError::OwnerDied(o.map(f)),
            LockError::WouldBlock => LockError::WouldBlock,
            LockError::Timeout => LockError::Timeout,
            LockError::Interrupted => LockError::Interrupted,
            LockError::Corrupted => LockError::Corrupted,
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::WouldBlock => f.write_str("WouldBlock"),
            LockError::Timeout => f.write_str("Timeout"),
            LockError::Interrupted => f.write_str("Interrupted"),
            LockError::Corrupted => f.write_str("Corrupted"),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(o) => o.fmt(f),
            LockError::WouldBlock => f.write_str("the lock is held by another thread"),
            LockError::Timeout => f.write_str("timed out waiting for the lock"),
            LockError::Interrupted => f.write_str("interrupted while waiting for the lock"),
            LockError::Corrupted => f.write_str(
                "the lock cannot be acquired: its segment was resized under this mapping, or its word names the waiting thread",
            ),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}
