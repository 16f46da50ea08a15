//! [`QueueProxy`]: a FIFO queue held by the server, as Python's `Manager().Queue()`.
//!
//! The server keeps the items as postcard bytes in a `VecDeque`, bounded by `maxsize`
//! (0: unbounded). A blocking `put` or `get` waits on the server in slices (one
//! request per second of waiting, see [`LockProxy`](super::LockProxy)), so a long
//! wait never trips the call timeout and a dead server still ends it with
//! [`ManagerError::ManagerGone`].

use super::protocol::{Reply, Request, SyncOp};
use super::slices::{in_slices, wait_ms};
use super::{ManagerError, Shared, dec, enc, unexpected};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::time::Duration;

/// The proxy owns no `T`: it is `Send` and `Sync` whatever `T` is.
type Items<T> = fn(T) -> T;

/// A FIFO queue on the manager's server, reachable from every client (TCP included),
/// as Python's `Manager().Queue(maxsize)`. Items are `T`s encoded with postcard; every
/// item put is got exactly once, by one client, in the order the puts happened.
///
/// Blocking calls ([`put`](Self::put), [`get`](Self::get) and their timeouts) wait on
/// the server, one request per second of waiting: a wait longer than the handle's call
/// timeout is fine, and a dead server ends it with [`ManagerError::ManagerGone`].
///
/// ```
/// use shmring::manager::{Manager, ManagerError};
///
/// let server = Manager::serve(&format!("@shmring-doc-queue-{}", std::process::id()).parse()?, None)?;
/// let m = Manager::connect(server.address(), None)?;
/// let q = m.queue::<String>("jobs", 2)?; // at most 2 items
/// q.put(&"a".into())?;
/// q.try_put(&"b".into())?;
/// assert!(q.is_full()?);
/// assert!(matches!(q.try_put(&"c".into()), Err(ManagerError::Full(_))));
/// assert_eq!(q.get()?, "a");
/// assert_eq!(q.try_get()?, "b");
/// assert!(matches!(q.try_get(), Err(ManagerError::Empty(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct QueueProxy<T> {
    conn: Shared,
    id: u32,
    name: String,
    _items: PhantomData<Items<T>>,
}

impl<T> std::fmt::Debug for QueueProxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueProxy").field("name", &self.name).finish()
    }
}

impl<T> Clone for QueueProxy<T> {
    fn clone(&self) -> Self {
        QueueProxy {
            conn: self.conn.clone(),
            id: self.id,
            name: self.name.clone(),
            _items: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    pub(crate) fn new(conn: Shared, id: u32, name: String) -> Self {
        QueueProxy {
            conn,
            id,
            name,
            _items: PhantomData,
        }
    }

    /// The name this queue has on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, op: SyncOp) -> Result<Reply, ManagerError> {
        self.conn.call(&Request::Sync { id: self.id, op })
    }

    fn put_for(&self, item: &T, timeout: Option<Duration>) -> Result<(), ManagerError> {
        let bytes = enc(item)?;
        let done = in_slices(timeout, |slice, _| {
            let op = SyncOp::QueuePut {
                item: bytes.clone(),
                wait_ms: wait_ms(slice),
            };
            match self.call(op)? {
                Reply::Bool(true) => Ok(Some(())),
                Reply::Bool(false) => Ok(None),
                r => Err(unexpected(r)),
            }
        })?;
        done.ok_or_else(|| ManagerError::Full(self.name.clone()))
    }

    fn get_for(&self, timeout: Option<Duration>) -> Result<T, ManagerError> {
        let got = in_slices(timeout, |slice, _| {
            match self.call(SyncOp::QueueGet {
                wait_ms: wait_ms(slice),
            })? {
                Reply::Value(v) => Ok(v),
                r => Err(unexpected(r)),
            }
        })?;
        match got {
            Some(bytes) => dec(&bytes),
            None => Err(ManagerError::Empty(self.name.clone())),
        }
    }

    /// Append `item`, waiting as long as it takes for room.
    pub fn put(&self, item: &T) -> Result<(), ManagerError> {
        self.put_for(item, None)
    }

    /// Append `item`, waiting at most `timeout` for room; [`ManagerError::Full`] if
    /// there was none.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), ManagerError> {
        self.put_for(item, Some(timeout))
    }

    /// Append `item` if there is room now, else [`ManagerError::Full`].
    pub fn try_put(&self, item: &T) -> Result<(), ManagerError> {
        self.put_for(item, Some(Duration::ZERO))
    }

    /// Take the oldest item, waiting as long as it takes for one.
    pub fn get(&self) -> Result<T, ManagerError> {
        self.get_for(None)
    }

    /// Take the oldest item, waiting at most `timeout`; [`ManagerError::Empty`] if none
    /// came.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, ManagerError> {
        self.get_for(Some(timeout))
    }

    /// Take the oldest item if there is one now, else [`ManagerError::Empty`].
    pub fn try_get(&self) -> Result<T, ManagerError> {
        self.get_for(Some(Duration::ZERO))
    }

    /// The number of items now (a snapshot: others may put or get right after).
    pub fn len(&self) -> Result<usize, ManagerError> {
        match self.call(SyncOp::QueueLen)? {
            Reply::Len(n) => Ok(n as usize),
            r => Err(unexpected(r)),
        }
    }

    /// [`QueueProxy::len`], by Python's name.
    pub fn qsize(&self) -> Result<usize, ManagerError> {
        self.len()
    }

    /// Whether the queue is empty now.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// Whether the queue is full now (never, if unbounded).
    pub fn is_full(&self) -> Result<bool, ManagerError> {
        match self.call(SyncOp::QueueFull)? {
            Reply::Bool(b) => Ok(b),
            r => Err(unexpected(r)),
        }
    }
}

/// Python's names, beside the Rust ones, as on [`Queue`](crate::Queue).
impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// [`QueueProxy::try_put`], by Python's name.
    pub fn put_nowait(&self, item: &T) -> Result<(), ManagerError> {
        self.try_put(item)
    }

    /// [`QueueProxy::try_get`], by Python's name.
    pub fn get_nowait(&self) -> Result<T, ManagerError> {
        self.try_get()
    }

    /// [`QueueProxy::is_empty`], by Python's name.
    pub fn empty(&self) -> Result<bool, ManagerError> {
        self.is_empty()
    }

    /// [`QueueProxy::is_full`], by Python's name.
    pub fn full(&self) -> Result<bool, ManagerError> {
        self.is_full()
    }
}
