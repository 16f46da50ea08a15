//! [`ValueProxy`]: one typed value held by the server, as Python's `Manager().Value()`,
//! with an atomic read-modify-write by optimistic concurrency (as
//! [`DictProxy::update_with`](super::DictProxy::update_with)): the value carries a
//! version that every write increments; `update_with` reads (value, version), runs the
//! closure in the client, and stores the result only if the version is unchanged,
//! else retries on the value the server sends back.

use super::protocol::{Reply, Request, SyncOp};
use super::{ManagerError, Shared, dec, enc, unexpected};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// The proxy owns no `T`: it is `Send` and `Sync` whatever `T` is.
type Of<T> = fn(T) -> T;

/// A value on the manager's server, as Python's `Manager().Value(typecode, v)`: `get`
/// and `set` are one round trip each, linearizable; [`update_with`](Self::update_with)
/// is an atomic read-modify-write without a lock (Python needs a separate lock for
/// `v.value += 1`).
///
/// ```
/// use shmring::manager::Manager;
///
/// let server = Manager::serve(&format!("@shmring-doc-value-{}", std::process::id()).parse()?, None)?;
/// let m = Manager::connect(server.address(), None)?;
/// let v = m.value::<u64>("total", &10)?;
/// assert_eq!(v.get()?, 10);
/// v.set(&20)?;
/// assert_eq!(v.update_with(|n| n + 1)?, 21);
/// // A later opener gets the existing value, not its own initial one.
/// assert_eq!(m.value::<u64>("total", &0)?.get()?, 21);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ValueProxy<T> {
    conn: Shared,
    id: u32,
    name: String,
    _type: PhantomData<Of<T>>,
}

impl<T> std::fmt::Debug for ValueProxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueProxy").field("name", &self.name).finish()
    }
}

impl<T> Clone for ValueProxy<T> {
    fn clone(&self) -> Self {
        ValueProxy {
            conn: self.conn.clone(),
            id: self.id,
            name: self.name.clone(),
            _type: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    pub(crate) fn new(conn: Shared, id: u32, name: String) -> Self {
        ValueProxy {
            conn,
            id,
            name,
            _type: PhantomData,
        }
    }

    /// The name this value has on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, op: SyncOp) -> Result<Reply, ManagerError> {
        self.conn.call(&Request::Sync { id: self.id, op })
    }

    fn versioned(&self) -> Result<(Vec<u8>, u64), ManagerError> {
        match self.call(SyncOp::ValueGet)? {
            Reply::Versioned(Some(c)) => Ok(c),
            r => Err(unexpected(r)),
        }
    }

    /// The value now.
    pub fn get(&self) -> Result<T, ManagerError> {
        dec(&self.versioned()?.0)
    }

    /// Replace the value.
    pub fn set(&self, value: &T) -> Result<(), ManagerError> {
        match self.call(SyncOp::ValueSet(enc(value)?))? {
            Reply::Ok => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    /// Replace the value by `op(value)`, atomically: no write by another client lands
    /// between the read and the write. Returns the new value. `op` may run more than
    /// once (once per lost compare-and-set, each a round trip) and must have no side
    /// effects beyond its result.
    pub fn update_with(&self, mut op: impl FnMut(T) -> T) -> Result<T, ManagerError> {
        let (mut bytes, mut version) = self.versioned()?;
        loop {
            let new = op(dec(&bytes)?);
            let cas = SyncOp::ValueCas {
                expected: version,
                new: enc(&new)?,
            };
            match self.call(cas)? {
                Reply::Cas { done: true, .. } => return Ok(new),
                Reply::Cas {
                    done: false,
                    current: Some((b, v)),
                } => (bytes, version) = (b, v),
                r => return Err(unexpected(r)),
            }
        }
    }
}
