//! [`NamespaceProxy`]: named attributes held by the server.

use super::dict::Cache;
use super::protocol::{DictOp, Reply, Request};
use super::{ManagerError, Shared, dec, enc, unexpected};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// A namespace on the manager's server, as Python's `Manager().Namespace()`:
/// attributes by name, each of the type its caller names (`ns.get::<f64>("rate")`).
/// An attribute read as a type it was not written as is [`ManagerError::Codec`]
/// (or, for types whose encodings overlap, a value of the wrong type: name them
/// consistently).
///
/// Over a Unix socket, [`NamespaceProxy::get`] reads through the same shared-memory
/// cache as [`DictProxy::get`](super::DictProxy::get) (same guarantee: see the [module
/// documentation](super#fast-path)).
///
/// ```
/// use shmring::manager::Manager;
///
/// let server = Manager::serve(&format!("@shmring-doc-ns-{}", std::process::id()).parse()?, None)?;
/// let m = Manager::connect(server.address(), None)?;
/// let ns = m.namespace("config")?;
/// ns.set("rate", &0.5f64)?;
/// ns.set("label", &"fast")?;
/// assert_eq!(ns.get::<f64>("rate")?, Some(0.5));
/// assert_eq!(ns.get::<String>("label")?.as_deref(), Some("fast"));
/// assert_eq!(ns.get::<u8>("missing")?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct NamespaceProxy {
    conn: Shared,
    id: u32,
    name: String,
    cache: Option<Arc<Cache>>,
}

impl std::fmt::Debug for NamespaceProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespaceProxy").field("name", &self.name).finish()
    }
}

impl NamespaceProxy {
    pub(crate) fn new(conn: Shared, id: u32, name: String, cache: Option<Cache>) -> Self {
        NamespaceProxy {
            conn,
            id,
            name,
            cache: cache.map(Arc::new),
        }
    }

    /// Whether [`NamespaceProxy::get`] reads through the shared-memory cache.
    pub fn is_cached(&self) -> bool {
        self.cache.is_some()
    }

    /// This proxy without the cache: every `get` is a round trip.
    pub fn without_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// The name this namespace has on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, op: DictOp) -> Result<Reply, ManagerError> {
        self.conn.call(&Request::Dict { id: self.id, op })
    }

    /// The attribute `attr` as a `T`, if set.
    pub fn get<T: DeserializeOwned>(&self, attr: &str) -> Result<Option<T>, ManagerError> {
        if let Some(cache) = &self.cache {
            return cache.get(&self.conn, self.id, enc(attr)?);
        }
        match self.call(DictOp::Get(enc(attr)?))? {
            Reply::Value(v) => v.as_deref().map(dec).transpose(),
            r => Err(unexpected(r)),
        }
    }

    /// Set the attribute `attr`.
    pub fn set<T: Serialize + ?Sized>(&self, attr: &str, value: &T) -> Result<(), ManagerError> {
        match self.call(DictOp::Insert(enc(attr)?, enc(value)?))? {
            Reply::Value(_) => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    /// Delete the attribute `attr`; whether it was set.
    pub fn remove(&self, attr: &str) -> Result<bool, ManagerError> {
        match self.call(DictOp::Remove(enc(attr)?))? {
            Reply::Value(v) => Ok(v.is_some()),
            r => Err(unexpected(r)),
        }
    }

    /// The names of the attributes set, sorted.
    pub fn attributes(&self) -> Result<Vec<String>, ManagerError> {
        match self.call(DictOp::Keys)? {
            Reply::Many(v) => {
                let mut names = v.iter().map(|b| dec(b)).collect::<Result<Vec<String>, _>>()?;
                names.sort();
                Ok(names)
            }
            r => Err(unexpected(r)),
        }
    }
}
