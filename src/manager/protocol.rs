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
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Dict => "dict",
            Kind::List => "list",
            Kind::Namespace => "namespace",
            Kind::Lock => "lock",
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
    /// Send the version table of dict `id` over the socket (a handoff parcel), then
    /// `Ok`; or an empty parcel, then `BadRequest` (see `cache.rs`).
    OpenCache { id: u32 },
    /// An operation on the list `id`.
    List { id: u32, op: ListOp },
    /// Make a shared-memory channel for this connection: the server sends the
    /// client's end of a duplex pipe over the socket (a handoff parcel), then `Ok` on
    /// the socket, and reads every later request from the pipe, answering there; or
    /// an empty parcel, then `BadRequest` (a TCP client; see `client.rs`).
    OpenChannel,
    /// Take the lock `id` for this connection, waiting at most `wait_ms` -> `Bool`.
    Acquire { id: u32, wait_ms: u64 },
    /// Release the lock `id`, held by this connection -> `Ok`, or `NotOwner`.
    Release { id: u32 },
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
    /// A request the server does not understand (unknown id, undecodable message).
    BadRequest(String),
}
