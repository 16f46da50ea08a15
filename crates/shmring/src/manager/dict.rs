//! [`DictProxy`]: a typed view of a dict held by the server.

use super::cache::VersionTable;
use super::protocol::{DictOp, Reply, Request};
use super::{ManagerError, Shared, dec, enc, unexpected};
use crate::net::sys::poll_fd;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A cache hit trusts the socket seen open this recently: a server that died is
/// noticed by cached gets at most this late (every round trip notices at once).
const ALIVE_FOR: Duration = Duration::from_millis(1);

/// A client's cache holds at most this many keys; it starts afresh when full.
const MAX_CACHED: usize = 1 << 16;

/// A cached read: the value's bytes (`None`: absent) and its bucket's counter then.
type Entry = (Option<Vec<u8>>, u64);

/// The client side of the fast path (`cache.rs`): the server's bucket counters and the
/// (value bytes, counter) pairs read through round trips.
#[derive(Debug)]
pub(crate) struct Cache {
    table: VersionTable,
    entries: Mutex<HashMap<Vec<u8>, Entry>>,
    /// A duplicate of the connection's socket: between round trips nothing is to read
    /// on it, so readable means the server closed it (exited, killed).
    sock: OwnedFd,
    /// When the socket was last seen open.
    alive_at: Mutex<Option<Instant>>,
}

impl Cache {
    pub(crate) fn new((table, sock): (VersionTable, OwnedFd)) -> Self {
        Cache {
            table,
            entries: Mutex::new(HashMap::new()),
            sock,
            alive_at: Mutex::new(None),
        }
    }

    /// The value of the (encoded) key `k` of dict `id`: from the cache if its bucket's
    /// counter has not moved since it was read (and the server is alive), else by a
    /// round trip on `conn` that also records it.
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        conn: &Shared,
        id: u32,
        k: Vec<u8>,
    ) -> Result<Option<T>, ManagerError> {
        let now = self.table.load(&k);
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((v, ver)) = entries.get(&k)
                && *ver == now
                && self.server_alive()
            {
                return v.as_deref().map(dec).transpose();
            }
        }
        let req = Request::Dict {
            id,
            op: DictOp::GetCached(k.clone()),
        };
        let (value, version) = match conn.call(&req)? {
            Reply::Cached { value, version } => (value, version),
            r => return Err(unexpected(r)),
        };
        let out = value.as_deref().map(dec).transpose();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_CACHED {
            entries.clear();
        }
        entries.insert(k, (value, version));
        out
    }

    /// Whether the server may still be there: no hang-up or end of stream on the socket
    /// (one `poll(2)` that does not wait), looked at most once per [`ALIVE_FOR`].
    fn server_alive(&self) -> bool {
        let now = Instant::now();
        let mut last = self.alive_at.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.saturating_duration_since(t) < ALIVE_FOR) {
            return true;
        }
        let events = libc::POLLIN | libc::POLLRDHUP;
        let alive = !matches!(poll_fd(self.sock.as_fd(), events, Duration::ZERO), Ok(true));
        *last = alive.then_some(now);
        alive
    }
}

/// The proxy owns no `K` or `V`: it is `Send` and `Sync` whatever they are.
type Types<K, V> = fn(K, V) -> (K, V);

/// A dict on the manager's server, as Python's `Manager().dict()`: every method is one
/// round trip to the server (`update_with` one per attempt), and sees every write that
/// returned before it, from any client.
///
/// Keys and values travel as postcard bytes and the server compares keys by those
/// bytes: two keys are the same key when they encode the same (true of integers,
/// strings, tuples, structs and enums of them; not of floats that are equal but encode
/// differently, `0.0` and `-0.0`, or of maps whose iteration order varies). Proxies of
/// one name with different types see each other's bytes: a value that does not decode
/// as `V` is [`ManagerError::Codec`].
///
/// ```
/// use shmring::manager::Manager;
///
/// let server = Manager::serve(&format!("@shmring-doc-dict-{}", std::process::id()).parse()?, None)?;
/// let m = Manager::connect(server.address(), None)?;
/// let d = m.dict::<String, u64>("counts")?;
/// d.insert(&"a".into(), &1)?;
/// assert_eq!(d.get(&"a".into())?, Some(1));
/// assert_eq!(d.update_with(&"a".into(), |v| v.unwrap_or(0) + 10)?, 11);
/// assert_eq!(d.get_or_insert(&"b".into(), &7)?, 7);
/// let mut items = d.items()?;
/// items.sort();
/// assert_eq!(items, [("a".into(), 11), ("b".into(), 7)]);
/// assert_eq!(d.pop(&"b".into(), 0)?, 7);
/// assert_eq!(d.len()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DictProxy<K, V> {
    conn: Shared,
    id: u32,
    name: String,
    cache: Option<Arc<Cache>>,
    _types: PhantomData<Types<K, V>>,
}

impl<K, V> std::fmt::Debug for DictProxy<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DictProxy").field("name", &self.name).finish()
    }
}

impl<K, V> Clone for DictProxy<K, V> {
    fn clone(&self) -> Self {
        DictProxy {
            conn: self.conn.clone(),
            id: self.id,
            name: self.name.clone(),
            cache: self.cache.clone(),
            _types: PhantomData,
        }
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    pub(crate) fn new(conn: Shared, id: u32, name: String, cache: Option<Cache>) -> Self {
        DictProxy {
            conn,
            id,
            name,
            cache: cache.map(Arc::new),
            _types: PhantomData,
        }
    }

    /// Whether [`DictProxy::get`] reads through the shared-memory cache (a manager
    /// connected over a Unix socket; see the [module documentation](super#fast-path)).
    pub fn is_cached(&self) -> bool {
        self.cache.is_some()
    }

    /// This proxy without the cache: every `get` is a round trip.
    pub fn without_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// The name this dict has on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, op: DictOp) -> Result<Reply, ManagerError> {
        self.conn.call(&Request::Dict { id: self.id, op })
    }

    fn value(&self, op: DictOp) -> Result<Option<V>, ManagerError> {
        match self.call(op)? {
            Reply::Value(v) => v.as_deref().map(dec).transpose(),
            r => Err(unexpected(r)),
        }
    }

    fn many<T: DeserializeOwned>(&self, op: DictOp) -> Result<Vec<T>, ManagerError> {
        match self.call(op)? {
            Reply::Many(v) => v.iter().map(|b| dec(b)).collect(),
            r => Err(unexpected(r)),
        }
    }

    /// The value of `key`, if any. With the cache ([`DictProxy::is_cached`]), a key
    /// read before and not written since (no write to its bucket) costs no round
    /// trip (a look at the bucket's counter, and at most once a millisecond a `poll(2)`
    /// of the socket that tells a dead server); the result is the same as a round
    /// trip's.
    pub fn get(&self, key: &K) -> Result<Option<V>, ManagerError> {
        let k = enc(key)?;
        match &self.cache {
            Some(cache) => cache.get(&self.conn, self.id, k),
            None => self.value(DictOp::Get(k)),
        }
    }

    /// Set `key` to `value`; the previous value, if any.
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>, ManagerError> {
        self.value(DictOp::Insert(enc(key)?, enc(value)?))
    }

    /// Remove `key`; its value, if it was there.
    pub fn remove(&self, key: &K) -> Result<Option<V>, ManagerError> {
        self.value(DictOp::Remove(enc(key)?))
    }

    /// Remove `key` and return its value, or `default` if it was not there (Python's
    /// `d.pop(key, default)`).
    pub fn pop(&self, key: &K, default: V) -> Result<V, ManagerError> {
        Ok(self.remove(key)?.unwrap_or(default))
    }

    /// Whether `key` is there.
    pub fn contains_key(&self, key: &K) -> Result<bool, ManagerError> {
        match self.call(DictOp::Contains(enc(key)?))? {
            Reply::Bool(b) => Ok(b),
            r => Err(unexpected(r)),
        }
    }

    /// The number of keys.
    pub fn len(&self) -> Result<usize, ManagerError> {
        match self.call(DictOp::Len)? {
            Reply::Len(n) => Ok(n as usize),
            r => Err(unexpected(r)),
        }
    }

    /// Whether the dict is empty.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// A snapshot of the keys, in no particular order.
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        self.many(DictOp::Keys)
    }

    /// A snapshot of the values, in no particular order.
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        self.many(DictOp::Values)
    }

    /// A snapshot of the pairs, in no particular order (taken in one step: no write
    /// lands in the middle of it).
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        match self.call(DictOp::Items)? {
            Reply::Pairs(v) => v.iter().map(|(k, v)| Ok((dec(k)?, dec(v)?))).collect(),
            r => Err(unexpected(r)),
        }
    }

    /// Insert every pair, in one step (Python's `d.update(pairs)`).
    pub fn update<'a, I>(&self, pairs: I) -> Result<(), ManagerError>
    where
        I: IntoIterator<Item = (&'a K, &'a V)>,
        K: 'a,
        V: 'a,
    {
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| Ok((enc(k)?, enc(v)?)))
            .collect::<Result<Vec<_>, ManagerError>>()?;
        match self.call(DictOp::Update(pairs))? {
            Reply::Ok => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    /// Remove every key.
    pub fn clear(&self) -> Result<(), ManagerError> {
        match self.call(DictOp::Clear)? {
            Reply::Ok => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    /// The value of `key`, after inserting `default` if it was not there, in one step
    /// (Python's `d.setdefault(key, default)`).
    pub fn get_or_insert(&self, key: &K, default: &V) -> Result<V, ManagerError> {
        self.value(DictOp::GetOrInsert(enc(key)?, enc(default)?))?
            .ok_or_else(|| ManagerError::Protocol("get_or_insert returned no value".into()))
    }

    /// Replace the value of `key` (`None` if absent) by `op(value)`, atomically: no
    /// write by another client lands between the read and the write. Returns the new
    /// value.
    ///
    /// Optimistic concurrency: the client reads the value with its version, runs `op`
    /// locally, and asks the server to store the result only if the version is
    /// unchanged (compare-and-set); if another write came first, the server answers
    /// with the new value and version and `op` runs again on those. So `op` may run
    /// more than once and must have no side effects beyond its result; the calls that
    /// succeed are linearizable, each at its compare-and-set. Under heavy contention on
    /// one key a client can lose repeatedly (no fairness); each attempt is one round
    /// trip.
    pub fn update_with(&self, key: &K, mut op: impl FnMut(Option<V>) -> V) -> Result<V, ManagerError> {
        let k = enc(key)?;
        let mut current = match self.call(DictOp::GetVersioned(k.clone()))? {
            Reply::Versioned(c) => c,
            r => return Err(unexpected(r)),
        };
        loop {
            let (old, expected) = match &current {
                Some((bytes, ver)) => (Some(dec::<V>(bytes)?), Some(*ver)),
                None => (None, None),
            };
            let new = op(old);
            let op = DictOp::CompareAndSet {
                key: k.clone(),
                expected,
                new: Some(enc(&new)?),
            };
            match self.call(op)? {
                Reply::Cas { done: true, .. } => return Ok(new),
                Reply::Cas {
                    done: false,
                    current: c,
                } => current = c,
                r => return Err(unexpected(r)),
            }
        }
    }
}
