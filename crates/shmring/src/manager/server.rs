//! The server: named objects in this process, each client connection served by its own
//! thread.
//!
//! Objects live in a registry (`name -> (kind, id)`) and a table of `id -> object`,
//! each object behind its own mutex, so clients working on different objects do not
//! wait for each other, and a client that is slow to send or to read its replies only
//! holds up its own thread. Every write to a dict gives the key a fresh version from a
//! per-dict counter (never reused, so a key removed and inserted again does not look
//! unchanged); `CompareAndSet` compares it.

use super::cache::VersionTable;
use super::protocol::{DictOp, Kind, ListOp, Reply, Request};
use super::sync_server::SyncObject;
use crate::ConnError;
use crate::codec;
use crate::connection::{self, Connection, ConnectionOptions, MessageConnection};
use crate::handoff::{self, Handoff, Parcel};
use crate::net::sys::send_parcel_frame;
use crate::net::{Address, Listener, NetOptions, SocketConnection};
use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the accept loop, and a connection thread waiting on its shared-memory
/// channel, look at the shutdown flag.
const ACCEPT_NAP: Duration = Duration::from_millis(100);

/// A connection's request and reply buffers are kept between round trips up to this
/// capacity (a large snapshot's are dropped after it).
const BUFFER_KEEP: usize = 1 << 20;

/// Bytes of each ring of a client's shared-memory channel (a message larger than this
/// travels in chunks).
const CHANNEL_CAPACITY: usize = 1 << 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while serving one request leaves consistent maps (every operation is a
    // single map call): keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct DictState {
    map: HashMap<Vec<u8>, (Vec<u8>, u64)>,
    next_version: u64,
    /// The bucket counters of the clients' caches, once one asked (`cache.rs`).
    table: Option<VersionTable>,
}

impl DictState {
    fn version(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    /// Every change of the map goes through `insert` and `remove`, which tell the
    /// caches after the change (the reply goes out after them).
    fn insert(&mut self, k: Vec<u8>, v: Vec<u8>) -> Option<Vec<u8>> {
        let ver = self.version();
        let old = self.map.insert(k.clone(), (v, ver)).map(|(old, _)| old);
        if let Some(t) = &self.table {
            t.bump(&k);
        }
        old
    }

    fn remove(&mut self, k: &[u8]) -> Option<Vec<u8>> {
        let old = self.map.remove(k).map(|(v, _)| v);
        if let (Some(t), Some(_)) = (&self.table, &old) {
            t.bump(k);
        }
        old
    }

    fn apply(&mut self, op: DictOp) -> Reply {
        match op {
            DictOp::Get(k) => Reply::Value(self.map.get(&k).map(|(v, _)| v.clone())),
            DictOp::GetVersioned(k) => Reply::Versioned(self.map.get(&k).cloned()),
            DictOp::Insert(k, v) => Reply::Value(self.insert(k, v)),
            DictOp::Remove(k) => Reply::Value(self.remove(&k)),
            DictOp::GetCached(k) => Reply::Cached {
                value: self.map.get(&k).map(|(v, _)| v.clone()),
                version: self.table.as_ref().map_or(0, |t| t.load(&k)),
            },
            DictOp::Contains(k) => Reply::Bool(self.map.contains_key(&k)),
            DictOp::Len => Reply::Len(self.map.len() as u64),
            DictOp::Keys => Reply::Many(self.map.keys().cloned().collect()),
            DictOp::Values => Reply::Many(self.map.values().map(|(v, _)| v.clone()).collect()),
            DictOp::Items => Reply::Pairs(self.map.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect()),
            DictOp::Update(pairs) => {
                for (k, v) in pairs {
                    self.insert(k, v);
                }
                Reply::Ok
            }
            DictOp::Clear => {
                self.map.clear();
                if let Some(t) = &self.table {
                    t.bump_all();
                }
                Reply::Ok
            }
            DictOp::GetOrInsert(k, v) => {
                if let Some((cur, _)) = self.map.get(&k) {
                    return Reply::Value(Some(cur.clone()));
                }
                self.insert(k, v.clone());
                Reply::Value(Some(v))
            }
            DictOp::CompareAndSet { key, expected, new } => {
                let current = self.map.get(&key).map(|(_, ver)| *ver);
                if current != expected {
                    return Reply::Cas {
                        done: false,
                        current: self.map.get(&key).cloned(),
                    };
                }
                match new {
                    Some(v) => {
                        self.insert(key, v);
                    }
                    None => {
                        self.remove(&key);
                    }
                }
                Reply::Cas {
                    done: true,
                    current: None,
                }
            }
        }
    }
}

fn apply_list(list: &mut Vec<Vec<u8>>, op: ListOp) -> Reply {
    let len = list.len() as u64;
    let out_of_range = |index| Reply::IndexOutOfRange { index, len };
    match op {
        ListOp::Push(v) => {
            list.push(v);
            Reply::Ok
        }
        ListOp::Extend(vs) => {
            list.extend(vs);
            Reply::Ok
        }
        ListOp::Get(i) => Reply::Value(usize::try_from(i).ok().and_then(|i| list.get(i)).cloned()),
        ListOp::Set(i, v) => match usize::try_from(i).ok().and_then(|i| list.get_mut(i)) {
            Some(slot) => Reply::Value(Some(std::mem::replace(slot, v))),
            None => out_of_range(i),
        },
        ListOp::Pop => Reply::Value(list.pop()),
        ListOp::Insert(i, v) if i <= len => {
            list.insert(i as usize, v);
            Reply::Ok
        }
        ListOp::Insert(i, _) => out_of_range(i),
        ListOp::Remove(i) if i < len => Reply::Value(Some(list.remove(i as usize))),
        ListOp::Remove(i) => out_of_range(i),
        ListOp::Len => Reply::Len(len),
        ListOp::ToVec => Reply::Many(list.clone()),
    }
}

enum Object {
    Dict(Box<Mutex<DictState>>),
    List(Mutex<Vec<Vec<u8>>>),
    /// A lock: the id of the connection holding it, and a condition to wait for it.
    Lock(Mutex<Option<u64>>, Condvar),
    /// A queue, rlock, semaphore, event, value, barrier or condition (`sync_server.rs`).
    Sync(SyncObject),
}

#[derive(Default)]
struct Registry {
    names: HashMap<String, (Kind, u32)>,
    objects: Vec<Arc<Object>>,
}

/// What the connection threads share.
#[derive(Default)]
struct State {
    registry: Mutex<Registry>,
    stop: AtomicBool,
    /// A duplicate of each open connection's socket, to `shutdown(2)` it on stop.
    conns: Mutex<HashMap<u64, OwnedFd>>,
    /// Whether clients connect over a Unix socket (on this machine: caches and
    /// shared-memory channels offered).
    unix: bool,
    /// The message limit of the sockets, and of the channels.
    max_message_len: usize,
}

impl State {
    fn object(&self, id: u32) -> Option<Arc<Object>> {
        lock(&self.registry).objects.get(id as usize).cloned()
    }

    fn handle(&self, req: Request) -> Reply {
        match req {
            Request::Open { kind, name } => self.open(kind, name, || match kind {
                Kind::Dict | Kind::Namespace => Ok(Object::Dict(Box::default())),
                Kind::List => Ok(Object::List(Mutex::default())),
                Kind::Lock => Ok(Object::Lock(Mutex::new(None), Condvar::new())),
                other => Err(format!("a {} is opened with its parameters", other.name())),
            }),
            Request::OpenSync { name, init } => {
                self.open(init.kind(), name, || SyncObject::new(init).map(Object::Sync))
            }
            Request::Dict { id, op } => match self.object(id).as_deref() {
                Some(Object::Dict(d)) => lock(d).apply(op),
                _ => Reply::BadRequest(format!("no dict with id {id}")),
            },
            Request::OpenCache { .. }
            | Request::OpenChannel
            | Request::Acquire { .. }
            | Request::Release { .. }
            | Request::Sync { .. } => Reply::BadRequest("a connection's request outside its connection".into()),
            Request::List { id, op } => match self.object(id).as_deref() {
                Some(Object::List(l)) => apply_list(&mut lock(l), op),
                _ => Reply::BadRequest(format!("no list with id {id}")),
            },
        }
    }

    /// Look up `name` as a `kind`, or create it with `make` (parameters of a later
    /// opener do not apply: it gets the existing object).
    fn open(&self, kind: Kind, name: String, make: impl FnOnce() -> Result<Object, String>) -> Reply {
        let mut reg = lock(&self.registry);
        if let Some(&(found, id)) = reg.names.get(&name) {
            return if found == kind {
                Reply::Opened { id }
            } else {
                Reply::WrongKind { name, found }
            };
        }
        let Ok(id) = u32::try_from(reg.objects.len()) else {
            return Reply::BadRequest("too many objects".into());
        };
        let obj = match make() {
            Ok(o) => o,
            Err(why) => return Reply::BadRequest(why),
        };
        reg.objects.push(Arc::new(obj));
        reg.names.insert(name, (kind, id));
        Reply::Opened { id }
    }

    /// An operation on synchronization object `id` for connection `conn`.
    fn sync(&self, id: u32, conn: u64, op: super::protocol::SyncOp) -> Reply {
        match self.object(id).as_deref() {
            Some(Object::Sync(s)) => s.apply(op, conn, &self.stop),
            _ => Reply::BadRequest(format!("no synchronization object with id {id}")),
        }
    }

    /// Hand `id`'s version table to the client over its Unix socket `sock`: a handle
    /// frame (the segment, or no descriptor if there is none to give), then the reply.
    fn open_cache(&self, sock: BorrowedFd<'_>, id: u32) -> Reply {
        let table = match self.object(id).as_deref() {
            _ if !self.unix => Err("caches are for Unix-socket clients".to_string()),
            Some(Object::Dict(d)) => {
                let mut d = lock(d);
                if d.table.is_none() {
                    match VersionTable::create() {
                        Ok(t) => d.table = Some(t),
                        Err(e) => return no_parcel(sock, e),
                    }
                }
                d.table.as_ref().map_or(Err("no table".into()), VersionTable::share)
            }
            _ => Err(format!("no dict with id {id}")),
        };
        match table {
            Ok(seg) => match seg.into_parcel().and_then(|p| send_parcel_frame(sock, &p)) {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::BadRequest(format!("cannot hand over the version table: {e}")),
            },
            Err(why) => no_parcel(sock, why),
        }
    }

    /// Make this connection's shared-memory channel and hand the client its end over
    /// `sock` (then the caller replies `Ok` on the socket and serves the returned
    /// end); or an empty parcel and the reason.
    fn open_channel(&self, sock: BorrowedFd<'_>) -> Result<Connection, Reply> {
        if !self.unix {
            return Err(no_parcel(
                sock,
                "shared-memory channels are for Unix-socket clients".into(),
            ));
        }
        let opts = ConnectionOptions::new()
            .max_message_len(self.max_message_len)
            .wait(super::CHANNEL_WAIT);
        let (ours, theirs) = match connection::pipe_with(true, CHANNEL_CAPACITY, &opts) {
            Ok(pair) => pair,
            Err(e) => return Err(no_parcel(sock, format!("cannot make a channel: {e}"))),
        };
        match theirs.into_parcel().and_then(|p| send_parcel_frame(sock, &p)) {
            Ok(()) => Ok(ours),
            // The parcel may be half sent: the stream is out of step, end it.
            Err(e) => Err(Reply::BadRequest(format!("cannot hand over the channel: {e}"))),
        }
    }

    /// Take lock `id` for connection `conn`, waiting at most `wait` (in slices, to see a
    /// shutdown).
    fn acquire(&self, id: u32, conn: u64, wait: Duration, held: &mut Vec<u32>) -> Reply {
        let Some(obj) = self.object(id) else {
            return Reply::BadRequest(format!("no lock with id {id}"));
        };
        let Object::Lock(holder, cv) = &*obj else {
            return Reply::BadRequest(format!("no lock with id {id}"));
        };
        let deadline = std::time::Instant::now() + wait;
        let mut h = lock(holder);
        while h.is_some() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || self.stop.load(Ordering::Relaxed) {
                return Reply::Bool(false);
            }
            h = cv
                .wait_timeout(h, left.min(ACCEPT_NAP))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *h = Some(conn);
        held.push(id);
        Reply::Bool(true)
    }

    /// Release lock `id` if connection `conn` holds it.
    fn release(&self, id: u32, conn: u64, held: &mut Vec<u32>) -> Reply {
        let Some(obj) = self.object(id) else {
            return Reply::BadRequest(format!("no lock with id {id}"));
        };
        let Object::Lock(holder, cv) = &*obj else {
            return Reply::BadRequest(format!("no lock with id {id}"));
        };
        let mut h = lock(holder);
        if *h != Some(conn) {
            return Reply::NotOwner;
        }
        *h = None;
        cv.notify_one();
        if let Some(i) = held.iter().position(|&x| x == id) {
            held.swap_remove(i);
        }
        Reply::Ok
    }

    /// Serve one connection; when it ends (the client closed it, died, or the server
    /// stops), release the locks it held, and end its waits on synchronization objects.
    fn serve(&self, mut sock: SocketConnection, conn_id: u64) {
        let mut held = Vec::new();
        // Descriptors go out on the socket even while requests come over the channel:
        // a duplicate of it, borrowed beside the connection being served. A panic while
        // serving (a bug) ends this connection only, and its locks and waits are
        // still given up below.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Ok(raw) = sock.as_fd().try_clone_to_owned() {
                let next = self.serve_on(&mut sock, raw.as_fd(), None, conn_id, &mut held);
                if let Some(mut pipe) = next {
                    self.serve_on(&mut pipe, raw.as_fd(), Some(ACCEPT_NAP), conn_id, &mut held);
                }
            }
        }));
        for id in held.clone() {
            self.release(id, conn_id, &mut held);
        }
        let objects = lock(&self.registry).objects.clone();
        for obj in objects {
            if let Object::Sync(s) = &*obj {
                s.connection_ended(conn_id);
            }
        }
        // `sock` closes here, after the channel: a client's cached gets see it.
    }

    /// Answer the requests that come on `link` (the socket, or the shared-memory
    /// channel) until the client is done; `sock` is the socket, for descriptors.
    /// `nap`: how long a receive waits before looking at the shutdown flag (`None`: a
    /// socket, which the shutdown wakes by `shutdown(2)`). Returns the channel to serve
    /// next if the client asked for one.
    fn serve_on<C: MessageConnection>(
        &self,
        link: &mut C,
        sock: BorrowedFd<'_>,
        nap: Option<Duration>,
        conn_id: u64,
        held: &mut Vec<u32>,
    ) -> Option<Connection> {
        // The request and reply buffers, reused from one round trip to the next.
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        loop {
            let got = match nap {
                None => link.recv_bytes_into(&mut buf),
                Some(nap) => link.recv_bytes_into_timeout(&mut buf, nap),
            };
            // A request that arrives after a shutdown began is not served: the
            // shutdown's caller, and every client after it, sees the server gone
            // (the socket is shut down; a channel is closed by returning).
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            let reply = match got.map(|_| codec::decode::<Request>(&buf)) {
                Ok(Ok(Request::OpenChannel)) if nap.is_none() => match self.open_channel(sock) {
                    Ok(pipe) => {
                        // The client reads the parcel, then this reply on the socket,
                        // then sends on the channel.
                        return link.send(&Reply::Ok).is_ok().then_some(pipe);
                    }
                    Err(reply) => reply,
                },
                Ok(Ok(Request::OpenChannel)) => no_parcel(sock, "this connection has its channel".into()),
                Ok(Ok(Request::OpenCache { id })) => self.open_cache(sock, id),
                Ok(Ok(Request::Acquire { id, wait_ms })) => {
                    self.acquire(id, conn_id, Duration::from_millis(wait_ms), held)
                }
                Ok(Ok(Request::Release { id })) => self.release(id, conn_id, held),
                Ok(Ok(Request::Sync { id, op })) => self.sync(id, conn_id, op),
                Ok(Ok(req)) => self.handle(req),
                // A message that is not a request: say so, keep the connection.
                Ok(Err(e)) => Reply::BadRequest(e.to_string()),
                Err(ConnError::MessageTooLarge { len, max }) => {
                    Reply::BadRequest(format!("request of {len} bytes exceeds the server's limit of {max}"))
                }
                // The channel's nap: no request yet; is the server stopping?
                Err(ConnError::Timeout) if nap.is_some() && !self.stop.load(Ordering::Relaxed) => continue,
                // An interrupt of this process is for its owner's code, not for the
                // server threads: the owner stops the server with `shutdown`.
                Err(ConnError::Interrupted) if !self.stop.load(Ordering::Relaxed) => {
                    std::thread::sleep(ACCEPT_NAP);
                    continue;
                }
                // Disconnected, shut down, a broken stream: this client is done.
                Err(_) => return None,
            };
            match send_reply(link, &reply, &mut out) {
                Ok(()) => {}
                // Refused before a byte went out (a snapshot past the message limit):
                // the stream is intact, say why instead.
                Err(ConnError::MessageTooLarge { len, max }) => {
                    let why = format!("the reply of {len} bytes exceeds the message limit of {max}");
                    if send_reply(link, &Reply::BadRequest(why), &mut out).is_err() {
                        return None;
                    }
                }
                Err(_) => return None,
            }
            // A snapshot's buffers are not kept for the small messages that follow.
            for b in [&mut buf, &mut out] {
                if b.capacity() > BUFFER_KEEP {
                    *b = Vec::new();
                }
            }
        }
    }
}

/// Encode `reply` into `out` (cleared first: one buffer for every reply of a
/// connection) and send it on `link`.
fn send_reply<C: MessageConnection>(link: &mut C, reply: &Reply, out: &mut Vec<u8>) -> Result<(), ConnError> {
    out.clear();
    codec::encode(reply, out)?;
    link.send_bytes(out)
}

/// An empty parcel on `sock` where descriptors would be, then (for the caller to send)
/// the reason.
fn no_parcel(sock: BorrowedFd<'_>, why: String) -> Reply {
    let empty = Parcel {
        kind: handoff::Kind::Segment,
        meta: 0,
        fds: Vec::new(),
    };
    let _ = send_parcel_frame(sock, &empty);
    Reply::BadRequest(why)
}

/// A server running on threads of this process, returned by
/// [`Manager::serve`](super::Manager::serve). Dropping it shuts the server down.
///
/// ```
/// use shmring::manager::Manager;
/// use shmring::net::Address;
///
/// let server = Manager::serve(&"127.0.0.1:0".parse::<Address>()?, Some(b"key"))?;
/// let addr = server.address().clone(); // the port the kernel chose
/// let m = Manager::connect(&addr, Some(b"key"))?;
/// m.dict::<String, u32>("d")?.insert(&"a".into(), &1)?;
/// server.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ServerHandle {
    address: Address,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").field("address", &self.address).finish()
    }
}

impl ServerHandle {
    pub(crate) fn start(addr: &Address, authkey: Option<&[u8]>, opts: &NetOptions) -> Result<Self, String> {
        let listener = Listener::bind_with(addr, authkey, opts).map_err(|e| e.to_string())?;
        let address = listener.local_addr().clone();
        let state = Arc::new(State {
            unix: !matches!(address, Address::Tcp { .. }),
            max_message_len: opts.max_message_len,
            ..State::default()
        });
        let st = state.clone();
        let accept = std::thread::Builder::new()
            .name("shmring-manager-accept".into())
            .spawn(move || accept_loop(listener, st))
            .map_err(|e| format!("spawn the manager's accept thread: {e}"))?;
        Ok(ServerHandle {
            address,
            state,
            accept: Some(accept),
        })
    }

    /// The address clients connect to (for TCP port 0, the port the kernel chose).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Stop accepting, close every client connection (their next calls return
    /// [`ManagerError::ManagerGone`](super::ManagerError::ManagerGone)), and wait for
    /// the accept thread. The objects are dropped with the last connection thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        for fd in lock(&self.state.conns).values() {
            let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }

    /// Serve until the process ends (for a server process whose only job this is).
    pub fn wait(mut self) {
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connection `.1`'s entry in `State::conns`, removed on drop.
struct Registered<'a>(&'a State, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.0.conns).remove(&self.1);
    }
}

fn accept_loop(listener: Listener, state: Arc<State>) {
    let mut next_id = 0u64;
    while !state.stop.load(Ordering::Relaxed) {
        // The handshake runs on the connection's thread (below): a silent or slow
        // client delays nobody else, not even clients connecting after it.
        let pending = match listener.accept_pending_timeout(ACCEPT_NAP) {
            Ok(c) => c,
            // No client yet: look at the stop flag again.
            Err(ConnError::Interrupted) => {
                std::thread::sleep(ACCEPT_NAP);
                continue;
            }
            Err(ConnError::Timeout) => continue,
            // Any other failure of accept (exhaustion is already backed off inside):
            // never retry at once.
            Err(_) => {
                std::thread::sleep(ACCEPT_NAP);
                continue;
            }
        };
        let id = next_id;
        next_id += 1;
        if let Ok(fd) = pending.as_fd().try_clone_to_owned() {
            lock(&state.conns).insert(id, fd);
        }
        // A shutdown that ran between the check above and the registration did not
        // see this connection: close it here.
        if state.stop.load(Ordering::Relaxed) {
            lock(&state.conns).remove(&id);
            break;
        }
        let st = state.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("shmring-manager-conn-{id}"))
            .spawn(move || {
                // The socket's duplicate leaves the table when this thread ends, a panic
                // included: the client then sees the connection closed at once, not
                // after its call timeout.
                let _registered = Registered(&st, id);
                // A client that fails its handshake (wrong key, not our protocol,
                // silent past the handshake timeout) is dropped; nobody waited for it.
                if let Ok(conn) = pending.handshake() {
                    st.serve(conn, id);
                }
            });
        if spawned.is_err() {
            lock(&state.conns).remove(&id);
        }
    }
}
