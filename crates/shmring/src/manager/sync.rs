//! Server-side synchronization objects: [`RLockProxy`], [`SemaphoreProxy`],
//! [`EventProxy`], [`BarrierProxy`], [`ConditionProxy`] — Python's `Manager().RLock()`,
//! `Semaphore()`, `BoundedSemaphore()`, `Event()`, `Barrier()`, `Condition()`.
//!
//! Owners and parties are connections: the [`Manager`](super::Manager) handle (and its
//! clones, with every proxy made from them), not threads. Give each thread or party its
//! own [`Manager::connect`](super::Manager::connect). Every wait happens on the server,
//! one request per second of waiting (as [`LockProxy`](super::LockProxy)): a wait longer
//! than the call timeout is fine, and a dead server ends it with
//! [`ManagerError::ManagerGone`]. A wait that spans requests is state the server keeps
//! per connection, so each repeated request continues the same wait. When a connection
//! ends (exit, SIGKILL) the server releases the rlock or condition lock it held, drops
//! it from a condition's waiters, and breaks a barrier it was waiting at.

use super::protocol::{Reply, Request, SyncOp};
use super::slices::{SLICE, in_slices, wait_ms};
use super::{ManagerError, Shared, unexpected};
use std::time::Duration;

/// The connection, object id and name every proxy here carries.
#[derive(Clone)]
struct Handle {
    conn: Shared,
    id: u32,
    name: String,
}

impl Handle {
    fn call(&self, op: SyncOp) -> Result<Reply, ManagerError> {
        self.conn.call(&Request::Sync { id: self.id, op })
    }

    fn ok(&self, op: SyncOp) -> Result<(), ManagerError> {
        match self.call(op)? {
            Reply::Ok => Ok(()),
            Reply::NotOwner => Err(ManagerError::NotOwner(self.name.clone())),
            r => Err(unexpected(r)),
        }
    }

    fn bool(&self, op: SyncOp) -> Result<bool, ManagerError> {
        match self.call(op)? {
            Reply::Bool(b) => Ok(b),
            r => Err(unexpected(r)),
        }
    }

    fn len(&self, op: SyncOp) -> Result<u64, ManagerError> {
        match self.call(op)? {
            Reply::Len(n) => Ok(n),
            r => Err(unexpected(r)),
        }
    }

    /// Repeat `op(slice)` (answering `Bool`) until true or `timeout`; whether true.
    fn wait_for(&self, timeout: Option<Duration>, op: impl Fn(u64) -> SyncOp) -> Result<bool, ManagerError> {
        let r = in_slices(timeout, |slice, _| Ok(self.bool(op(wait_ms(slice)))?.then_some(())))?;
        Ok(r.is_some())
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("name", &self.name).finish()
    }
}

macro_rules! proxy_basics {
    ($t:ident) => {
        impl $t {
            pub(crate) fn new(conn: Shared, id: u32, name: String) -> Self {
                $t(Handle { conn, id, name })
            }

            /// The name this object has on the server.
            pub fn name(&self) -> &str {
                &self.0.name
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("name", &self.0.name)
                    .finish()
            }
        }
    };
}

/// A re-entrant lock on the manager's server, as Python's `Manager().RLock()`: the
/// owner (this connection) may take it again, and must release it as many times.
/// [`ManagerError::NotOwner`] for a release by another connection. When the owner's
/// connection ends (exit, SIGKILL) the server releases it entirely, whatever its depth.
///
/// ```
/// use shmring::manager::{Manager, ManagerError};
/// use std::time::Duration;
///
/// let server = Manager::serve(&format!("@shmring-doc-rlock-{}", std::process::id()).parse()?, None)?;
/// let (a, b) = (Manager::connect(server.address(), None)?, Manager::connect(server.address(), None)?);
/// let (la, lb) = (a.rlock("r")?, b.rlock("r")?);
/// la.acquire()?;
/// la.acquire()?; // re-entered
/// assert!(matches!(lb.release(), Err(ManagerError::NotOwner(_))));
/// la.release()?;
/// assert!(!lb.acquire_timeout(Duration::from_millis(10))?); // still held once
/// la.release()?;
/// assert!(lb.try_acquire()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RLockProxy(Handle);
proxy_basics!(RLockProxy);

impl RLockProxy {
    /// Take the lock (again, if this connection holds it), waiting as long as it takes.
    pub fn acquire(&self) -> Result<(), ManagerError> {
        self.0.wait_for(None, |wait_ms| SyncOp::Acquire { wait_ms })?;
        Ok(())
    }

    /// Take the lock, waiting at most `timeout`; whether it was taken.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.0.wait_for(Some(timeout), |wait_ms| SyncOp::Acquire { wait_ms })
    }

    /// Take the lock if that needs no wait; whether it was taken.
    pub fn try_acquire(&self) -> Result<bool, ManagerError> {
        self.acquire_timeout(Duration::ZERO)
    }

    /// Release one level; [`ManagerError::NotOwner`] if this connection does not hold it.
    pub fn release(&self) -> Result<(), ManagerError> {
        self.0.ok(SyncOp::Release)
    }
}

/// A counting semaphore on the manager's server, as Python's `Manager().Semaphore(n)`
/// or, from [`Manager::bounded_semaphore`](super::Manager::bounded_semaphore),
/// `BoundedSemaphore(n)` (a release that would pass the initial value is
/// [`ManagerError::OverReleased`]).
///
/// Permits are not owned, as in Python: any client may release, and the permits a
/// client took are **not** given back when its connection ends (a client killed while
/// holding one leaves the count one lower for good).
///
/// ```
/// use shmring::manager::{Manager, ManagerError};
///
/// let server = Manager::serve(&format!("@shmring-doc-sem-{}", std::process::id()).parse()?, None)?;
/// let m = Manager::connect(server.address(), None)?;
/// let s = m.bounded_semaphore("slots", 2)?;
/// s.acquire()?;
/// assert!(s.try_acquire()?);
/// assert!(!s.try_acquire()?);
/// assert_eq!(s.value()?, 0);
/// s.release()?;
/// s.release()?;
/// assert!(matches!(s.release(), Err(ManagerError::OverReleased(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SemaphoreProxy(Handle);
proxy_basics!(SemaphoreProxy);

impl SemaphoreProxy {
    /// Take a permit, waiting as long as it takes.
    pub fn acquire(&self) -> Result<(), ManagerError> {
        self.0.wait_for(None, |wait_ms| SyncOp::SemAcquire { wait_ms })?;
        Ok(())
    }

    /// Take a permit, waiting at most `timeout`; whether one was taken.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.0.wait_for(Some(timeout), |wait_ms| SyncOp::SemAcquire { wait_ms })
    }

    /// Take a permit if one is free now; whether one was taken.
    pub fn try_acquire(&self) -> Result<bool, ManagerError> {
        self.acquire_timeout(Duration::ZERO)
    }

    /// Give a permit back (waking a waiter); for a bounded semaphore at its initial
    /// value, [`ManagerError::OverReleased`].
    pub fn release(&self) -> Result<(), ManagerError> {
        match self.0.call(SyncOp::SemRelease)? {
            Reply::Ok => Ok(()),
            Reply::OverReleased => Err(ManagerError::OverReleased(self.0.name.clone())),
            r => Err(unexpected(r)),
        }
    }

    /// The free permits now.
    pub fn value(&self) -> Result<u64, ManagerError> {
        self.0.len(SyncOp::SemValue)
    }
}

/// An event flag on the manager's server, as Python's `Manager().Event()`: waiters
/// wake when a client sets it; it stays set until cleared.
///
/// ```
/// use shmring::manager::Manager;
/// use std::time::Duration;
///
/// let server = Manager::serve(&format!("@shmring-doc-event-{}", std::process::id()).parse()?, None)?;
/// let m = Manager::connect(server.address(), None)?;
/// let e = m.event("go")?;
/// assert!(!e.wait_timeout(Duration::from_millis(10))?);
/// e.set()?;
/// assert!(e.is_set()?);
/// e.wait()?;
/// e.clear()?;
/// assert!(!e.is_set()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct EventProxy(Handle);
proxy_basics!(EventProxy);

impl EventProxy {
    /// Set the flag, waking every waiter.
    pub fn set(&self) -> Result<(), ManagerError> {
        self.0.ok(SyncOp::EventSet)
    }

    /// Clear the flag.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.0.ok(SyncOp::EventClear)
    }

    /// Whether the flag is set now.
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        self.0.bool(SyncOp::EventIsSet)
    }

    /// Wait until the flag is set, as long as it takes.
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.0.wait_for(None, |wait_ms| SyncOp::EventWait { wait_ms })?;
        Ok(())
    }

    /// Wait at most `timeout` for the flag; whether it is set (Python's
    /// `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.0.wait_for(Some(timeout), |wait_ms| SyncOp::EventWait { wait_ms })
    }
}

/// A barrier on the manager's server, as Python's `Manager().Barrier(parties)`: each
/// [`wait`](Self::wait) blocks until `parties` connections are waiting, then all
/// return, each with its arrival index (`0..parties`, the last to arrive gets
/// `parties - 1`), and the barrier is ready for the next cycle.
///
/// A party is a connection (one waiting call per [`Manager`](super::Manager) handle).
/// The barrier breaks — every waiter, and every later `wait` until
/// [`reset`](Self::reset), gets [`ManagerError::BrokenBarrier`] — on
/// [`abort`](Self::abort), when a [`wait_timeout`](Self::wait_timeout) times out (as
/// Python), and when a waiting party's connection ends (its process exits or is
/// killed; Python would hang the others).
///
/// ```
/// use shmring::manager::{Manager, ManagerError};
/// use std::time::Duration;
///
/// let server = Manager::serve(&format!("@shmring-doc-barrier-{}", std::process::id()).parse()?, None)?;
/// let m = Manager::connect(server.address(), None)?;
/// let one = m.barrier("solo", 1)?;
/// assert_eq!(one.wait()?, 0);
/// let two = m.barrier("pair", 2)?;
/// assert!(matches!(two.wait_timeout(Duration::from_millis(10)), Err(ManagerError::BrokenBarrier(_))));
/// assert!(two.broken()?);
/// two.reset()?;
/// assert_eq!((two.parties()?, two.n_waiting()?, two.broken()?), (2, 0, false));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BarrierProxy(Handle);
proxy_basics!(BarrierProxy);

impl BarrierProxy {
    fn wait_for(&self, timeout: Option<Duration>) -> Result<u32, ManagerError> {
        let r = in_slices(timeout, |slice, last| {
            match self.0.call(SyncOp::BarrierWait {
                wait_ms: wait_ms(slice),
                last,
            })? {
                Reply::Arrived(i) => Ok(Some(Some(i as u32))),
                Reply::Broken => Ok(Some(None)),
                Reply::Pending => Ok(None),
                r => Err(unexpected(r)),
            }
        })?;
        r.flatten()
            .ok_or_else(|| ManagerError::BrokenBarrier(self.0.name.clone()))
    }

    /// Wait for the other parties, as long as it takes; this party's arrival index, or
    /// [`ManagerError::BrokenBarrier`].
    pub fn wait(&self) -> Result<u32, ManagerError> {
        self.wait_for(None)
    }

    /// [`BarrierProxy::wait`], at most `timeout`: past it the barrier breaks and this
    /// call (and every other waiter) gets [`ManagerError::BrokenBarrier`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, ManagerError> {
        self.wait_for(Some(timeout))
    }

    /// Break the barrier: waiters and later waits get [`ManagerError::BrokenBarrier`]
    /// until [`BarrierProxy::reset`].
    pub fn abort(&self) -> Result<(), ManagerError> {
        self.0.ok(SyncOp::BarrierAbort)
    }

    /// Back to the initial, unbroken state; the parties waiting now get
    /// [`ManagerError::BrokenBarrier`].
    pub fn reset(&self) -> Result<(), ManagerError> {
        self.0.ok(SyncOp::BarrierReset)
    }

    /// The number of parties a cycle needs.
    pub fn parties(&self) -> Result<u32, ManagerError> {
        Ok(self.0.len(SyncOp::BarrierParties)? as u32)
    }

    /// The number of parties waiting now.
    pub fn n_waiting(&self) -> Result<u32, ManagerError> {
        Ok(self.0.len(SyncOp::BarrierWaiting)? as u32)
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> Result<bool, ManagerError> {
        self.0.bool(SyncOp::BarrierBroken)
    }
}

/// A condition variable on the manager's server with its own re-entrant lock, as
/// Python's `Manager().Condition()`: [`acquire`](Self::acquire) /
/// [`release`](Self::release) the lock (owner: this connection, as [`RLockProxy`]);
/// [`wait`](Self::wait), holding it, releases it entirely, waits for a
/// [`notify`](Self::notify), and re-takes it (at the same depth) before returning.
/// `wait`, `notify` and `release` without holding the lock are
/// [`ManagerError::NotOwner`].
///
/// A [`wait_timeout`](Self::wait_timeout) that times out also re-takes the lock before
/// returning `false` (so it may return after its timeout, when another client holds the
/// lock). As in Python, wake-ups come only from notifies (no spurious ones, but re-check
/// your predicate: another client may have changed it before this one re-took the
/// lock). When a connection ends, the server releases the lock it held and drops it
/// from the waiters (a notify then goes to a live waiter).
///
/// ```
/// use shmring::manager::{Manager, ManagerError};
/// use std::time::Duration;
///
/// let server = Manager::serve(&format!("@shmring-doc-cond-{}", std::process::id()).parse()?, None)?;
/// let m = Manager::connect(server.address(), None)?;
/// let c = m.condition("ready")?;
/// assert!(matches!(c.wait(), Err(ManagerError::NotOwner(_))));
/// c.acquire()?;
/// assert!(!c.wait_timeout(Duration::from_millis(10))?); // nobody notified; lock re-taken
/// c.notify_all()?;
/// c.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ConditionProxy(Handle);
proxy_basics!(ConditionProxy);

impl ConditionProxy {
    /// Take the condition's lock (again, if this connection holds it), as long as it
    /// takes.
    pub fn acquire(&self) -> Result<(), ManagerError> {
        self.0.wait_for(None, |wait_ms| SyncOp::Acquire { wait_ms })?;
        Ok(())
    }

    /// Take the lock, waiting at most `timeout`; whether it was taken.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.0.wait_for(Some(timeout), |wait_ms| SyncOp::Acquire { wait_ms })
    }

    /// Release one level of the lock; [`ManagerError::NotOwner`] if this connection
    /// does not hold it.
    pub fn release(&self) -> Result<(), ManagerError> {
        self.0.ok(SyncOp::Release)
    }

    /// Wait for a notify, however long (see the type's documentation).
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.wait_for(None)?;
        Ok(())
    }

    /// Wait at most `timeout` for a notify; whether one came. Either way the lock is
    /// held again when it returns.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.wait_for(Some(timeout))
    }

    fn wait_for(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        let mut gave_up = false;
        loop {
            // After the deadline, keep asking (with `last`) until the lock is re-taken.
            let r = in_slices(timeout.filter(|_| !gave_up), |slice, last| {
                let wait_ms = wait_ms(if gave_up { SLICE } else { slice });
                let last = last || gave_up;
                match self.0.call(SyncOp::CondWait { wait_ms, last })? {
                    Reply::Bool(b) => Ok(Some(b)),
                    Reply::Pending => Ok(None),
                    Reply::NotOwner => Err(ManagerError::NotOwner(self.0.name.clone())),
                    r => Err(unexpected(r)),
                }
            })?;
            match r {
                Some(b) => return Ok(b),
                None => gave_up = true,
            }
        }
    }

    /// Wake up to `n` waiters (the longest waiting first); each returns once it
    /// re-takes the lock. Must hold the lock ([`ManagerError::NotOwner`]).
    pub fn notify(&self, n: usize) -> Result<(), ManagerError> {
        self.0.ok(SyncOp::CondNotify { n: n as u64 })
    }

    /// Wake every waiter. Must hold the lock.
    pub fn notify_all(&self) -> Result<(), ManagerError> {
        self.0.ok(SyncOp::CondNotify { n: u64::MAX })
    }
}
