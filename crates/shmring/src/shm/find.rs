//! Finding a named object by name: open it, or create it if nobody has
//! ([`open_or_create`]), or wait until somebody has ([`open_wait`]). Every named object
//! of the crate has both as methods, written once in its generic handle
//! ([`sync::Shared`](crate::sync::Shared), [`ring::End`](crate::ring::End)) or its type
//! (the queues); these functions are the loops behind them, usable for any pair of
//! `create` / `open` calls.

use crate::error::{Error, Result};
use std::time::{Duration, Instant};

/// Rounds of [`open_or_create`] before it gives up: a round is lost only when the
/// object is removed between a failed create and the open that follows it.
pub const OPEN_OR_CREATE_ATTEMPTS: u32 = 100;

/// First nap of [`open_wait`] between two opens.
pub const FIRST_NAP: Duration = Duration::from_micros(50);

/// Longest nap of [`open_wait`] between two opens: once the object appears,
/// `open_wait` finds it within about this long.
pub const MAX_NAP: Duration = Duration::from_millis(4);

/// Open an object, or create it if it does not exist: `create` (which must create
/// exclusively, `O_CREAT | O_EXCL`, failing with [`Error::AlreadyExists`]); if the name
/// exists, `open` (which waits, bounded, for the creator to publish the object); if the
/// object vanished between the two ([`Error::NotFound`]), again, at most
/// [`OPEN_OR_CREATE_ATTEMPTS`] times. Returns the object and whether this call created
/// it (the creator is the handle that unlinks the name when it drops). An object of
/// another kind or with other parameters under the name is refused by `open`, with
/// `open`'s error.
///
/// ```
/// use shmring::shm::find::open_or_create;
/// use shmring::sync::Event;
/// let name = format!("doc-find-{}", std::process::id());
/// let (a, created_a) = open_or_create(|| Event::create(&name), || Event::open(&name))?;
/// let (b, created_b) = open_or_create(|| Event::create(&name), || Event::open(&name))?;
/// assert!(created_a && !created_b);
/// a.set();
/// assert!(b.is_set());
/// # Ok::<(), shmring::Error>(())
/// ```
pub fn open_or_create<T>(
    mut create: impl FnMut() -> Result<T>,
    mut open: impl FnMut() -> Result<T>,
) -> Result<(T, bool)> {
    let mut last = None;
    for _ in 0..OPEN_OR_CREATE_ATTEMPTS {
        match create() {
            Ok(x) => return Ok((x, true)),
            Err(Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        match open() {
            Ok(x) => return Ok((x, false)),
            // Removed between our create and our open: try to create it again.
            Err(e @ Error::NotFound { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one round ran"))
}

/// Call `open` until it finds the object, for at most `timeout`: while it fails with
/// [`Error::NotFound`], nap and try again (naps grow from [`FIRST_NAP`] to
/// [`MAX_NAP`], so the object is found within about 4 ms of its creation; the naps are
/// sleeps, not spins). After `timeout`, the last `NotFound`; any other error at once. A
/// `timeout` too large for [`Instant`] waits forever.
///
/// ```
/// use shmring::shm::find::open_wait;
/// use shmring::sync::Event;
/// use std::time::Duration;
/// let r = open_wait(Duration::from_millis(10), || Event::open("doc-find-never-made"));
/// assert!(matches!(r, Err(shmring::Error::NotFound { .. })));
/// ```
pub fn open_wait<T>(timeout: Duration, mut open: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now().checked_add(timeout);
    let mut nap = FIRST_NAP;
    loop {
        match open() {
            Err(e @ Error::NotFound { .. }) => {
                let now = Instant::now();
                let left = match deadline {
                    Some(d) if now >= d => return Err(e),
                    Some(d) => d - now,
                    None => nap,
                };
                std::thread::sleep(nap.min(left));
                nap = (nap * 2).min(MAX_NAP);
            }
            other => return other,
        }
    }
}
