//! The request/response protocol between proxies and the server: one [`Request`] per
//! round trip, answered by one [`Reply`], each a postcard message over the
//! connection's typed `send`/`recv`. Keys and values are already postcard bytes: the
//! server never decodes them, so it serves any types.

use serde::{Deserialize, Serialize};

/// The kind of a named object; a name holds one kind for the server's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Kind {
    Dict,
    List,
    Namespace,
    Lock,
    Queue,
    RLock,
    Semaphore,
    BoundedSemaphore,
    Event,
    Value,
    Barrier,
    Condition,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Dict => "dict",
            Kind::List => "list",
            Kind::Namespace => "namespace",
            Kind::Lock => "lock",
            Kind::Queue => "queue",
            Kind::RLock => "rlock",
            Kind::Semaphore => "semaphore",
            Kind::BoundedSemaphore => "bounded semaphore",
            Kind::Event => "event",
            Kind::Value => "value",
            Kind::Barrier => "barrier",
            Kind::Condition => "condition",
        }
    }
}

/// A proxy's request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Create or look up `name` as a `kind`: [`Reply::Opened`] with its id.
    Open { kind: Kind, name: String },
    /// An operation on the dict or namespace `id`.
    Dict { id: u32, op: DictOp },
    /// Send the version table of dict `id` over the socket (a handle frame), then
    /// `Ok`; or an empty parcel, then `BadRequest` (see `cache.rs`).
    OpenCache { id: u32 },
    /// An operation on the list `id`.
    List { id: u32, op: ListOp },
    /// Make a shared-memory channel for this connection: the server sends the
    /// client's end of a duplex pipe over the socket (a handle frame), then `Ok` on
    /// the socket, and reads every later request from the pipe, answering there; or
    /// an empty parcel, then `BadRequest` (a TCP client; see `client.rs`).
    OpenChannel,
    /// Take the lock `id` for this connection, waiting at most `wait_ms` -> `Bool`.
    Acquire { id: u32, wait_ms: u64 },
    /// Release the lock `id`, held by this connection -> `Ok`, or `NotOwner`.
    Release { id: u32 },
    /// Create or look up `name` as the synchronization object `init` describes (its
    /// parameters apply only if it is created): [`Reply::Opened`] or `WrongKind`.
    OpenSync { name: String, init: SyncInit },
    /// An operation on the queue, rlock, semaphore, event, value, barrier or condition
    /// `id` (`sync_server.rs`), on behalf of this connection.
    Sync { id: u32, op: SyncOp },
}

/// A synchronization object's kind and creation parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum SyncInit {
    /// `maxsize` 0: unbounded.
    Queue {
        maxsize: u64,
    },
    RLock,
    Semaphore {
        value: u64,
        bounded: bool,
    },
    Event,
    /// The initial value's bytes.
    Value(Vec<u8>),
    Barrier {
        parties: u32,
    },
    Condition,
}

impl SyncInit {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            SyncInit::Queue { .. } => Kind::Queue,
            SyncInit::RLock => Kind::RLock,
            SyncInit::Semaphore { bounded: false, .. } => Kind::Semaphore,
            SyncInit::Semaphore { bounded: true, .. } => Kind::BoundedSemaphore,
            SyncInit::Event => Kind::Event,
            SyncInit::Value(_) => Kind::Value,
            SyncInit::Barrier { .. } => Kind::Barrier,
            SyncInit::Condition => Kind::Condition,
        }
    }
}

/// Operations on synchronization objects. A `wait_ms` is the longest this request
/// waits on the server (the client repeats requests for longer waits, see `lock.rs`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SyncOp {
    /// Append `item` once there is room -> `Bool` (false: still full after `wait_ms`).
    QueuePut { item: Vec<u8>, wait_ms: u64 },
    /// Take the oldest item once there is one -> `Value` (`None`: still empty).
    QueueGet { wait_ms: u64 },
    /// -> `Len`
    QueueLen,
    /// -> `Bool`
    QueueFull,
    /// Take (or re-take) the rlock or the condition's lock -> `Bool`.
    Acquire { wait_ms: u64 },
    /// Release one level of the rlock or the condition's lock -> `Ok` or `NotOwner`.
    Release,
    /// Take a permit -> `Bool`.
    SemAcquire { wait_ms: u64 },
    /// Return a permit -> `Ok`, or `OverReleased` (a bounded semaphore at its
    /// initial value).
    SemRelease,
    /// -> `Len`
    SemValue,
    /// -> `Ok`
    EventSet,
    /// -> `Ok`
    EventClear,
    /// -> `Bool`
    EventIsSet,
    /// -> `Bool`: whether the flag is set (at the end of the wait).
    EventWait { wait_ms: u64 },
    /// -> `Versioned` (always `Some`)
    ValueGet,
    /// -> `Ok`
    ValueSet(Vec<u8>),
    /// Store `new` if the version is still `expected` -> `Cas`.
    ValueCas { expected: u64, new: Vec<u8> },
    /// Arrive (or keep waiting, if this connection's wait is in progress) -> `Arrived`,
    /// `Broken`, or `Pending` (not yet: ask again). `last`: if the wait does not end
    /// within `wait_ms`, break the barrier (the caller's timeout).
    BarrierWait { wait_ms: u64, last: bool },
    /// -> `Ok`
    BarrierAbort,
    /// -> `Ok`
    BarrierReset,
    /// -> `Len`
    BarrierParties,
    /// -> `Len`
    BarrierWaiting,
    /// -> `Bool`
    BarrierBroken,
    /// Wait for a notify (the first request of a wait releases the lock, which this
    /// connection must hold, else `NotOwner`), then re-take the lock -> `Bool` (true:
    /// notified, false: gave up), or `Pending` (ask again). `last`: if no notify comes
    /// within `wait_ms`, stop waiting for one (then re-take the lock, answering false).
    CondWait { wait_ms: u64, last: bool },
    /// Move up to `n` waiters (oldest first) to re-taking the lock -> `Ok` or
    /// `NotOwner`.
    CondNotify { n: u64 },
}

/// Dict (and namespace) operations; keys and values are postcard bytes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum DictOp {
    /// -> `Value`
    Get(Vec<u8>),
    /// -> `Versioned`: the value and its version (for `update_with`).
    GetVersioned(Vec<u8>),
    /// -> `Cached`: the value and its bucket's counter, read together.
    GetCached(Vec<u8>),
    /// -> `Value` (the previous value)
    Insert(Vec<u8>, Vec<u8>),
    /// -> `Value` (the removed value)
    Remove(Vec<u8>),
    /// -> `Bool`
    Contains(Vec<u8>),
    /// -> `Len`
    Len,
    /// -> `Many`
    Keys,
    /// -> `Many`
    Values,
    /// -> `Pairs`
    Items,
    /// -> `Ok`
    Update(Vec<(Vec<u8>, Vec<u8>)>),
    /// -> `Ok`
    Clear,
    /// -> `Value` (the value now there: the existing one or the one given)
    GetOrInsert(Vec<u8>, Vec<u8>),
    /// Set `key` to `new` (`None`: remove it) if its version is still `expected`
    /// (`None`: absent) -> `Cas`.
    CompareAndSet {
        key: Vec<u8>,
        expected: Option<u64>,
        new: Option<Vec<u8>>,
    },
}

/// List operations; items are postcard bytes.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ListOp {
    /// -> `Ok`
    Push(Vec<u8>),
    /// -> `Ok`
    Extend(Vec<Vec<u8>>),
    /// -> `Value`
    Get(u64),
    /// -> `Value` (the previous item) or `IndexOutOfRange`
    Set(u64, Vec<u8>),
    /// -> `Value`
    Pop,
    /// -> `Ok` or `IndexOutOfRange` (index > len)
    Insert(u64, Vec<u8>),
    /// -> `Value` or `IndexOutOfRange`
    Remove(u64),
    /// -> `Len`
    Len,
    /// -> `Many`
    ToVec,
}

/// The server's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Ok,
    Opened {
        id: u32,
    },
    Value(Option<Vec<u8>>),
    Versioned(Option<(Vec<u8>, u64)>),
    Cached {
        value: Option<Vec<u8>>,
        version: u64,
    },
    Bool(bool),
    Len(u64),
    Many(Vec<Vec<u8>>),
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
    /// Whether the compare-and-set happened; if not, the current value and version.
    Cas {
        done: bool,
        current: Option<(Vec<u8>, u64)>,
    },
    WrongKind {
        name: String,
        found: Kind,
    },
    IndexOutOfRange {
        index: u64,
        len: u64,
    },
    /// A release of a lock this connection does not hold.
    NotOwner,
    /// A release of a bounded semaphore past its initial value.
    OverReleased,
    /// Not done within the request's wait: ask again.
    Pending,
    /// A barrier passed: this party's arrival index.
    Arrived(u64),
    /// A barrier is broken (or was, for this wait).
    Broken,
    /// A request the server does not understand (unknown id, undecodable message).
    BadRequest(String),
}
