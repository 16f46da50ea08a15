//! Manager: a server holding named dicts, lists, namespaces and synchronization
//! objects, and typed proxies that call into it from any process — Python's
//! `multiprocessing.Manager`.
//!
//! [`Manager::serve`] runs the server on threads of the current process, listening at
//! an [`Address`] (a Unix socket path, a Linux abstract name, or TCP `host:port` for
//! clients on other machines) with an optional authkey; [`Manager::start`] runs it in a
//! child process instead. [`Manager::connect`] connects from any process and gives
//! [`Manager::dict`], [`Manager::list`], [`Manager::namespace`], [`Manager::lock`],
//! [`Manager::queue`], [`Manager::rlock`], [`Manager::semaphore`],
//! [`Manager::bounded_semaphore`], [`Manager::event`], [`Manager::value`],
//! [`Manager::barrier`] and [`Manager::condition`]: proxies of the object of that name,
//! created on first use (with the opener's parameters: a later opener with other
//! parameters gets the existing object, unchanged).
//!
//! # Synchronization objects
//!
//! The queue, locks, semaphores, event, barrier and condition live on the server,
//! reachable from every client (TCP included). Their owners and parties are
//! connections (a [`Manager`] handle and its clones), not threads. A blocking call
//! waits on the server one slice at a time (one request per second of waiting), so a
//! wait may last longer than the call timeout, and a dead server still ends it with
//! [`ManagerError::ManagerGone`]; a wait that spans requests is state the server keeps
//! per connection. When a connection ends (exit, SIGKILL) the server releases the
//! [`LockProxy`], [`RLockProxy`] and condition lock it held, drops it from the
//! condition's waiters, and breaks a barrier it waited at. Semaphore permits are not
//! owned (as in Python): a dead client's permits are not returned.
//!
//! # Protocol
//!
//! Each [`Manager`] handle is one socket connection of [`net`](crate::net) (its
//! HMAC-SHA256 authkey handshake, its message-size limit and frame checks), shared by
//! the proxies made from it. Every proxy call sends one request and waits for one
//! reply: a postcard enum naming the object and the operation, with keys and values
//! already encoded as postcard bytes, so the server stores bytes and serves any types
//! (keys compare by their encoding, see [`DictProxy`]). The server answers each
//! connection on its own thread, and each object has its own lock, so a slow client
//! holds up only itself.
//!
//! **Shared-memory channel.** Over a Unix socket (the server is on this machine), a
//! handle then asks the server for a channel: the server makes a duplex
//! [`pipe`](crate::connection::pipe) (two SPSC rings in memfd segments), hands the
//! client its end over the socket (SCM_RIGHTS, after the authkey handshake: only an
//! authenticated client gets one), and from then on reads that client's requests from
//! the pipe and answers on it. Both sides wait with [`CHANNEL_WAIT`] (yield the CPU a
//! few dozen times, then sleep on a futex), so a client calling in a loop gets a
//! round trip of about a microsecond instead of a socket's two sleeping wake-ups
//! (~20 µs on a 2-CPU VM); see the Manager rows of `docs/benchmarks.md`. The cost: a
//! connection thread of the server keeps yielding for some microseconds after each
//! request, and each handle holds two 64 KiB rings. Peer death is the pipe's: the kernel
//! releases each end's lock when its process dies, and a waiting side looks at it
//! every 50 ms. Over TCP, or with [`ConnectOptions::shared_memory`] off, calls stay on
//! the socket ([`Manager::uses_shared_memory`] tells which).
//!
//! # Consistency
//!
//! Every operation runs as one step on the server, under the object's lock: all
//! operations on an object are linearizable — a call that starts after another
//! returned (in any process) sees its effect. [`DictProxy::update_with`] is an atomic
//! read-modify-write with a closure run in the client, by optimistic concurrency: each
//! key carries a version that every write changes; the client reads (value, version),
//! computes, and sends a compare-and-set that succeeds only if the version is
//! unchanged, else retries on the value the server returns.
//!
//! # Fast path
//!
//! A [`DictProxy`] (and a [`NamespaceProxy`]) of a manager connected over a Unix
//! socket (path or abstract name: the server is on this machine) reads through a cache: the server hands it, over
//! the socket, a shared-memory table of per-bucket version counters (4096 buckets,
//! keys hashed to them) that it increments on every write, before replying to the
//! writer. The proxy keeps the value it last read for each key with its bucket's
//! counter; a `get` whose bucket counter has not moved returns that value without a
//! round trip. At most once a millisecond such a hit also `poll(2)`s the socket, so a
//! dead server turns cached gets into [`ManagerError::ManagerGone`] too, within 1 ms.
//! Writes, and every other operation, go to the server.
//!
//! Guarantee: the cache changes no result. A `get` that starts after a write to its
//! key returned — in any process that learnt of that write (its reply, a message, a
//! join) — returns that write's value or a later one, as a round trip would; gets
//! stay linearizable with the writes. A write to another key of the same bucket only
//! costs a round trip. Clients over TCP always make the round trip
//! ([`DictProxy::is_cached`], [`DictProxy::without_cache`]). A client with the key can
//! write the table (its mapping is writable), which can only make other clients'
//! gets stale: the authkey is the trust boundary, as for every request.
//!
//! # Failure
//!
//! When the server is gone (its process killed or exited, [`ServerHandle::shutdown`],
//! the connection reset) the next call of every proxy returns
//! [`ManagerError::ManagerGone`] — the kernel reports the closed socket at once (a
//! cached get of an unchanged key: within 1 ms, see [Fast path](#fast-path)). A
//! server that is alive but does not answer within the handle's timeout
//! ([`DEFAULT_CALL_TIMEOUT`], [`Manager::set_timeout`]) counts as gone too: a call never
//! hangs. After `ManagerGone`, a handle stays gone; connect again to a new server.
//!
//! # States a client can never produce in the shared memory, and what they cost
//!
//! The channel and the version table are sealed memfds shared only with the server and
//! one authenticated client; that client is the only possible scribbler.
//!
//! | word | impossible state | found by | result |
//! |------|------------------|----------|--------|
//! | version table: bucket count in the header | 0, or more buckets than the segment holds | the client, when the table arrives | refused: [`ManagerError::Protocol`], the proxy stays uncached |
//! | version table: a bucket counter | moved backwards or anywhere but `+1` | nobody needs to: a client only trusts *equality* with the counter it read with the value; any other value costs one round trip, and no call ever waits on a counter | a stale hit only if a writer puts back exactly the old counter (the trust boundary above) |
//! | channel: each ring's positions, record lengths and types | see [`ring::spsc`](crate::ring::spsc)'s checks | the ring end, at its wait | `Corrupted`/`Disconnected` for the call: the client's call becomes [`ManagerError::ManagerGone`]; the server drops that connection (releasing what it held) |
//! | channel: a request or reply that does not decode | — | the receiving side | server: a `BadRequest` reply, the connection kept; client: [`ManagerError::ManagerGone`] (requests and replies can no longer be paired) |
//!
//! Every wait on the channel is bounded: the client's by its call timeout (then
//! `ManagerGone`), the server's naps by the connection's liveness (the pipe's lock,
//! checked every 50 ms).
//!
//! # Not here (yet)
//!
//! Caches of lists, queues and values (every call but a dict or namespace `get` is a
//! round trip: over the shared-memory channel on this machine); `Array`, `Pool` and
//! custom registered types of Python's managers.
//!
//! ```
//! use shmring::manager::Manager;
//! use shmring::net::Address;
//!
//! let addr: Address = format!("@shmring-doc-manager-{}", std::process::id()).parse()?;
//! let server = Manager::serve(&addr, Some(b"secret"))?;
//! // In any process that knows the address and the key:
//! let m = Manager::connect(&addr, Some(b"secret"))?;
//! let hits = m.dict::<String, u64>("hits")?;
//! hits.update_with(&"/index".into(), |n| n.unwrap_or(0) + 1)?;
//! assert_eq!(hits.get(&"/index".into())?, Some(1));
//! server.shutdown();
//! assert!(matches!(hits.len(), Err(shmring::manager::ManagerError::ManagerGone(_))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod child;
mod client;
mod connect_info;
mod dict;
mod error;
mod list;
mod lock;
mod namespace;
mod options;
mod protocol;
mod queue;
mod server;
mod slices;
mod sync;
mod sync_server;
#[cfg(test)]
mod tests;
mod value;

pub use child::{ManagerProcess, SERVER_ENTRY};
pub use connect_info::ConnectInfo;
pub use dict::DictProxy;
pub use error::ManagerError;
pub(crate) use error::{dec, enc, unexpected};
pub use list::ListProxy;
pub use lock::LockProxy;
pub use namespace::NamespaceProxy;
pub use options::{CHANNEL_WAIT, ConnectOptions, DEFAULT_CALL_TIMEOUT};
pub use queue::QueueProxy;
pub use server::ServerHandle;
pub use sync::{BarrierProxy, ConditionProxy, EventProxy, RLockProxy, SemaphoreProxy};
pub use value::ValueProxy;

use crate::net::{Address, Client, NetOptions};
use crate::process::Process;
use child::LISTENING;
use client::Shared;
use protocol::{Kind, Reply, Request, SyncInit};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

/// A connection to a manager's server; makes proxies of its named objects. Proxies
/// share the handle's connection (one call at a time per handle: give each thread
/// its own [`Manager::connect`] for parallel calls).
///
/// ```
/// use shmring::manager::{Manager, ManagerError};
///
/// let addr = format!("@shmring-doc-connect-{}", std::process::id()).parse()?;
/// let _server = Manager::serve(&addr, Some(b"right"))?;
/// let e = Manager::connect(&addr, Some(b"wrong")).unwrap_err();
/// assert!(matches!(e, ManagerError::Connect(shmring::ConnError::Authentication(_))));
/// let m = Manager::connect(&addr, Some(b"right"))?;
/// m.dict::<u8, u8>("x")?;
/// assert!(matches!(m.list::<u8>("x"), Err(ManagerError::WrongKind { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Manager {
    conn: Shared,
    address: Address,
    /// Kept for [`Manager::connect_info`].
    authkey: Option<std::sync::Arc<[u8]>>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("address", &self.address).finish()
    }
}

impl Manager {
    /// Run a server on threads of this process, listening at `addr` with `authkey`
    /// (clients must give the same key, or none if `None`). Default [`NetOptions`].
    pub fn serve(addr: &Address, authkey: Option<&[u8]>) -> Result<ServerHandle, ManagerError> {
        Self::serve_with(addr, authkey, &NetOptions::default())
    }

    /// [`Manager::serve`] with socket options (message limit, handshake timeout,
    /// replacing a stale socket file).
    pub fn serve_with(addr: &Address, authkey: Option<&[u8]>, opts: &NetOptions) -> Result<ServerHandle, ManagerError> {
        ServerHandle::start(addr, authkey, opts).map_err(ManagerError::Start)
    }

    /// Connect to the server at `addr` with `authkey`, with the default
    /// [`ConnectOptions`]: over a Unix socket (the server on this machine), calls then
    /// travel over a shared-memory channel (see [Protocol](self#protocol)).
    pub fn connect(addr: &Address, authkey: Option<&[u8]>) -> Result<Manager, ManagerError> {
        Self::connect_with(addr, authkey, &ConnectOptions::default())
    }

    /// [`Manager::connect`] with options: the socket's (message limit, handshake
    /// timeout), the call timeout, and whether to use a shared-memory channel.
    ///
    /// ```
    /// use shmring::manager::{ConnectOptions, Manager};
    ///
    /// let server = Manager::serve(&format!("@shmring-doc-opts-{}", std::process::id()).parse()?, None)?;
    /// let fast = Manager::connect(server.address(), None)?;
    /// let plain = Manager::connect_with(server.address(), None, &ConnectOptions::new().shared_memory(false))?;
    /// assert!(fast.uses_shared_memory() && !plain.uses_shared_memory());
    /// fast.dict::<u8, u8>("d")?.insert(&1, &2)?;
    /// assert_eq!(plain.dict::<u8, u8>("d")?.get(&1)?, Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_with(
        addr: &Address,
        authkey: Option<&[u8]>,
        opts: &ConnectOptions,
    ) -> Result<Manager, ManagerError> {
        let conn = Client::connect_with(addr, authkey, &opts.net).map_err(ManagerError::Connect)?;
        let conn = Shared::new(conn, opts.call_timeout);
        if opts.shared_memory && !matches!(addr, Address::Tcp { .. }) {
            // `false`: the server offers no channel; calls stay on the socket.
            conn.open_channel(opts.net.max_message_len, opts.channel_wait)?;
        }
        Ok(Manager {
            conn,
            address: addr.clone(),
            authkey: authkey.map(std::sync::Arc::from),
        })
    }

    /// The address and the authkey this handle connected with, to hand to another
    /// process (a child [`Process`] takes it with
    /// [`handoff::from_env`](crate::handoff::from_env) and calls
    /// [`ConnectInfo::connect`]): Python's way of giving a child a manager's proxies.
    pub fn connect_info(&self) -> ConnectInfo {
        ConnectInfo::from_parts(self.address.clone(), self.authkey.clone())
    }

    /// Whether this handle's calls travel over a shared-memory channel (connected over
    /// a Unix socket with [`ConnectOptions::shared_memory`] on) rather than the socket.
    pub fn uses_shared_memory(&self) -> bool {
        self.conn.has_channel()
    }

    /// The address this handle connected to.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// How long a call waits for its reply before reporting
    /// [`ManagerError::ManagerGone`] (default [`DEFAULT_CALL_TIMEOUT`]); for every
    /// proxy of this handle and its clones.
    pub fn set_timeout(&self, timeout: Duration) {
        self.conn.set_timeout(timeout);
    }

    fn open(&self, kind: Kind, name: &str) -> Result<u32, ManagerError> {
        let req = Request::Open {
            kind,
            name: name.to_owned(),
        };
        self.opened(&req, kind)
    }

    /// The id in the server's answer to the opening request `req` of a `kind`.
    fn opened(&self, req: &Request, kind: Kind) -> Result<u32, ManagerError> {
        match self.conn.call(req)? {
            Reply::Opened { id } => Ok(id),
            Reply::WrongKind { name, found } => Err(ManagerError::WrongKind {
                name,
                found: found.name(),
                wanted: kind.name(),
            }),
            r => Err(unexpected(r)),
        }
    }

    /// The dict named `name`, created empty if the server has no object of that name.
    pub fn dict<K, V>(&self, name: &str) -> Result<DictProxy<K, V>, ManagerError>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let id = self.open(Kind::Dict, name)?;
        Ok(DictProxy::new(self.conn.clone(), id, name.to_owned(), self.cache(id)?))
    }

    /// The cache of dict or namespace `id`: the fast path is for clients on the
    /// server's machine, over a Unix socket.
    fn cache(&self, id: u32) -> Result<Option<dict::Cache>, ManagerError> {
        Ok(match self.address {
            Address::Tcp { .. } => None,
            _ => self.conn.open_cache(id)?.map(dict::Cache::new),
        })
    }

    /// The list named `name`, created empty if the server has no object of that name.
    pub fn list<T: Serialize + DeserializeOwned>(&self, name: &str) -> Result<ListProxy<T>, ManagerError> {
        let id = self.open(Kind::List, name)?;
        Ok(ListProxy::new(self.conn.clone(), id, name.to_owned()))
    }

    /// The namespace named `name`, created empty if the server has no object of that
    /// name.
    pub fn namespace(&self, name: &str) -> Result<NamespaceProxy, ManagerError> {
        let id = self.open(Kind::Namespace, name)?;
        Ok(NamespaceProxy::new(
            self.conn.clone(),
            id,
            name.to_owned(),
            self.cache(id)?,
        ))
    }

    /// The lock named `name`, created unlocked if the server has no object of that
    /// name. See [`LockProxy`]: released by the server when its holder's connection
    /// ends.
    pub fn lock(&self, name: &str) -> Result<LockProxy, ManagerError> {
        let id = self.open(Kind::Lock, name)?;
        Ok(LockProxy::new(self.conn.clone(), id, name.to_owned()))
    }

    fn open_sync(&self, name: &str, init: SyncInit) -> Result<u32, ManagerError> {
        let kind = init.kind();
        let req = Request::OpenSync {
            name: name.to_owned(),
            init,
        };
        self.opened(&req, kind)
    }

    /// The queue named `name`, created empty and holding at most `maxsize` items (0:
    /// unbounded) if the server has no object of that name. An existing queue keeps its
    /// own `maxsize` (this one's does not apply), as for every opener with parameters.
    pub fn queue<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        maxsize: usize,
    ) -> Result<QueueProxy<T>, ManagerError> {
        let id = self.open_sync(
            name,
            SyncInit::Queue {
                maxsize: maxsize as u64,
            },
        )?;
        Ok(QueueProxy::new(self.conn.clone(), id, name.to_owned()))
    }

    /// The re-entrant lock named `name`, created unlocked if the server has no object
    /// of that name. See [`RLockProxy`].
    pub fn rlock(&self, name: &str) -> Result<RLockProxy, ManagerError> {
        let id = self.open_sync(name, SyncInit::RLock)?;
        Ok(RLockProxy::new(self.conn.clone(), id, name.to_owned()))
    }

    /// The semaphore named `name`, created with `value` permits if the server has no
    /// object of that name (an existing one keeps its count). See [`SemaphoreProxy`].
    pub fn semaphore(&self, name: &str, value: u64) -> Result<SemaphoreProxy, ManagerError> {
        let id = self.open_sync(name, SyncInit::Semaphore { value, bounded: false })?;
        Ok(SemaphoreProxy::new(self.conn.clone(), id, name.to_owned()))
    }

    /// The bounded semaphore named `name`, created with `value` permits if the server
    /// has no object of that name: a release past its initial value is
    /// [`ManagerError::OverReleased`]. A plain semaphore of that name is
    /// [`ManagerError::WrongKind`].
    pub fn bounded_semaphore(&self, name: &str, value: u64) -> Result<SemaphoreProxy, ManagerError> {
        let id = self.open_sync(name, SyncInit::Semaphore { value, bounded: true })?;
        Ok(SemaphoreProxy::new(self.conn.clone(), id, name.to_owned()))
    }

    /// The event named `name`, created clear if the server has no object of that name.
    /// See [`EventProxy`].
    pub fn event(&self, name: &str) -> Result<EventProxy, ManagerError> {
        let id = self.open_sync(name, SyncInit::Event)?;
        Ok(EventProxy::new(self.conn.clone(), id, name.to_owned()))
    }

    /// The value named `name`, created holding `initial` if the server has no object of
    /// that name (an existing one keeps its value). See [`ValueProxy`].
    pub fn value<T: Serialize + DeserializeOwned>(
        &self,
        name: &str,
        initial: &T,
    ) -> Result<ValueProxy<T>, ManagerError> {
        let id = self.open_sync(name, SyncInit::Value(enc(initial)?))?;
        Ok(ValueProxy::new(self.conn.clone(), id, name.to_owned()))
    }

    /// The barrier named `name`, created for `parties` parties (at least 1, else
    /// [`ManagerError::Protocol`]) if the server has no object of that name (an existing
    /// one keeps its count). See [`BarrierProxy`].
    pub fn barrier(&self, name: &str, parties: u32) -> Result<BarrierProxy, ManagerError> {
        let id = self.open_sync(name, SyncInit::Barrier { parties })?;
        Ok(BarrierProxy::new(self.conn.clone(), id, name.to_owned()))
    }

    /// The condition named `name` (with its own lock), created if the server has no
    /// object of that name. See [`ConditionProxy`].
    pub fn condition(&self, name: &str) -> Result<ConditionProxy, ManagerError> {
        let id = self.open_sync(name, SyncInit::Condition)?;
        Ok(ConditionProxy::new(self.conn.clone(), id, name.to_owned()))
    }

    /// Run a server in a child process (this program re-executed, see
    /// [`process`](crate::process)), listening at `addr` with `authkey`; returns once
    /// it listens. The program must register [`SERVER_ENTRY`] in its
    /// [`run_if_child`](crate::process::run_if_child) table. The key goes to the child
    /// through a pipe (not its arguments or environment). The child is killed when
    /// this process ends (`PR_SET_PDEATHSIG`), or by [`ManagerProcess::shutdown`].
    ///
    /// ```
    /// use shmring::manager::{self, Manager, ManagerError};
    /// use shmring::process;
    ///
    /// fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     process::run_if_child(&[manager::SERVER_ENTRY]); // must come first
    ///     let addr = format!("@shmring-doc-start-{}", std::process::id()).parse()?;
    ///     let server = Manager::start(&addr, Some(b"key"))?;
    ///     let m = Manager::connect(server.address(), Some(b"key"))?;
    ///     let l = m.list::<u32>("l")?;
    ///     l.push(&5)?;
    ///     assert_eq!(l.to_vec()?, [5]);
    ///     server.shutdown()?; // kills the child
    ///     assert!(matches!(l.len(), Err(ManagerError::ManagerGone(_))));
    ///     Ok(())
    /// }
    /// ```
    pub fn start(addr: &Address, authkey: Option<&[u8]>) -> Result<ManagerProcess, ManagerError> {
        let err = |e: &dyn std::fmt::Display| ManagerError::Start(e.to_string());
        let mut p = Process::new(SERVER_ENTRY.0)
            .arg(addr.to_string())
            .die_with_parent(true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        p.start().map_err(|e| err(&e))?;
        let mut child = ManagerProcess {
            process: p,
            address: addr.clone(),
        };
        let mut stdin = child.process.take_stdin().ok_or_else(|| err(&"no stdin pipe"))?;
        // [has key: u8][key bytes], then EOF.
        let mut msg = vec![u8::from(authkey.is_some())];
        msg.extend_from_slice(authkey.unwrap_or_default());
        stdin.write_all(&msg).map_err(|e| err(&e))?;
        drop(stdin);
        let out = child.process.take_stdout().ok_or_else(|| err(&"no stdout pipe"))?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).map_err(|e| err(&e))?;
        match line.trim_end().strip_prefix(LISTENING) {
            Some(a) => {
                child.address = a.parse().map_err(|e| err(&e))?;
                Ok(child)
            }
            None => {
                let _ = child.process.kill();
                let _ = child.process.join();
                Err(err(&format!(
                    "the server process did not start (is manager::SERVER_ENTRY registered in run_if_child?): {:?}",
                    line.trim_end()
                )))
            }
        }
    }
}
