//! [`LockProxy`]: a lock held by the server, released when its holder's connection
//! ends.

use super::protocol::{Reply, Request};
use super::slices::{SLICE, in_slices, wait_ms};
use super::{ManagerError, Shared, unexpected};
use std::time::Duration;

/// A lock on the manager's server, as Python's `Manager().Lock()`, reachable from any
/// client. The holder is the client's connection (the [`Manager`](super::Manager)
/// handle and its clones, with every proxy made from them), not a thread or a proxy.
/// Not reentrant: acquiring it again through the same connection waits for a release
/// that cannot come (until the timeout).
///
/// When the holder's connection ends — the client process exits or is killed, the
/// handle's connection breaks — the server releases the lock and the next waiter
/// takes it, as a robust mutex's owner-died recovery (there is no `OwnerDied` to see:
/// what the dead holder left half-done is the application's to check).
///
/// ```
/// use shmring::manager::Manager;
/// use std::time::Duration;
///
/// let server = Manager::serve(&format!("@shmring-doc-lock-{}", std::process::id()).parse()?, None)?;
/// let (a, b) = (Manager::connect(server.address(), None)?, Manager::connect(server.address(), None)?);
/// let la = a.lock("l")?;
/// let lb = b.lock("l")?;
/// la.acquire()?;
/// assert!(!lb.acquire_timeout(Duration::from_millis(10))?);
/// drop((la, a)); // the holder's connection closes: the server releases the lock
/// assert!(lb.acquire_timeout(Duration::from_secs(10))?);
/// lb.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct LockProxy {
    conn: Shared,
    id: u32,
    name: String,
}

impl std::fmt::Debug for LockProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockProxy").field("name", &self.name).finish()
    }
}

impl LockProxy {
    pub(crate) fn new(conn: Shared, id: u32, name: String) -> Self {
        LockProxy { conn, id, name }
    }

    /// The name this lock has on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn try_for(&self, wait: Duration) -> Result<bool, ManagerError> {
        let req = Request::Acquire {
            id: self.id,
            wait_ms: wait_ms(wait),
        };
        match self.conn.call(&req)? {
            Reply::Bool(b) => Ok(b),
            r => Err(unexpected(r)),
        }
    }

    /// Take the lock, waiting as long as it takes (one request per second of waiting:
    /// a dead server is still [`ManagerError::ManagerGone`]).
    pub fn acquire(&self) -> Result<(), ManagerError> {
        while !self.try_for(SLICE)? {}
        Ok(())
    }

    /// Take the lock, waiting at most `timeout`; whether it was taken.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        let taken = in_slices(Some(timeout), |slice, _| Ok(self.try_for(slice)?.then_some(())))?;
        Ok(taken.is_some())
    }

    /// Release the lock; [`ManagerError::NotOwner`] if this connection does not hold it.
    pub fn release(&self) -> Result<(), ManagerError> {
        match self.conn.call(&Request::Release { id: self.id })? {
            Reply::Ok => Ok(()),
            Reply::NotOwner => Err(ManagerError::NotOwner(self.name.clone())),
            r => Err(unexpected(r)),
        }
    }
}
