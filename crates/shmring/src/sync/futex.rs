//! Shared (cross-process) futex wait and wake.
//!
//! The words live in shared memory, so the non-`PRIVATE` futex operations are used:
//! the kernel keys them by the underlying page, not by this process's address space.
//!
//! # References
//! - `futex(2)`, `futex(7)`; Ulrich Drepper, "Futexes Are Tricky" (2011).

use crate::primitive::{self, AtomicU32, FutexWait};
use std::time::{Duration, Instant};

/// The timeout of a [`wait`] passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("futex wait timed out")]
pub struct TimedOut;

/// Sleep while `*word == expected`, at most `timeout` (`None`: no limit).
///
/// Returns `Ok` when woken or when the word did not hold `expected` (the caller
/// re-checks its condition: wake-ups may be spurious). A signal (EINTR) does not end
/// the wait: it is retried with the remaining time.
///
/// ```
/// use std::sync::atomic::AtomicU32;
/// use std::time::Duration;
/// use shmring::sync::futex;
/// let word = AtomicU32::new(1);
/// // The word does not hold 0: returns at once.
/// assert!(futex::wait(&word, 0, Some(Duration::from_secs(5))).is_ok());
/// // It holds 1 and nobody wakes us: times out.
/// assert!(futex::wait(&word, 1, Some(Duration::from_millis(1))).is_err());
/// ```
#[doc(alias = "FUTEX_WAIT")]
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<(), TimedOut> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => Some(left),
                None => return Err(TimedOut),
            },
            None => None,
        };
        match primitive::futex_wait(word, expected, left) {
            FutexWait::Woken => return Ok(()),
            FutexWait::TimedOut => return Err(TimedOut),
            FutexWait::Interrupted => continue,
        }
    }
}

/// Wake up to `n` processes or threads sleeping in [`wait`] on `word`.
#[doc(alias = "FUTEX_WAKE")]
pub fn wake(word: &AtomicU32, n: u32) {
    primitive::futex_wake(word, n);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::primitive::Ordering;
    use std::sync::Arc;

    #[test]
    #[cfg_attr(miri, ignore)]
    fn wake_ends_wait() {
        let word = Arc::new(AtomicU32::new(0));
        let w2 = word.clone();
        let t = std::thread::spawn(move || {
            while w2.load(Ordering::Acquire) == 0 {
                let _ = wait(&w2, 0, Some(Duration::from_secs(10)));
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        word.store(1, Ordering::Release);
        wake(&word, 1);
        t.join().unwrap();
    }
}
