//! Handing shmring objects to other processes as file descriptors.
//!
//! Every anonymous (memfd) shmring object lives in descriptors: a queue in the
//! descriptor of its ring, a pipe [`Connection`](crate::Connection) end in those of its
//! two rings, a [`JoinableQueue`](crate::JoinableQueue) in its ring's and its task
//! counter's. [`Handoff`] turns an object into a [`Parcel`] — a [`Kind`] tag, one word
//! of metadata, and the descriptors — and back, checking on the way back that the tag is
//! the expected one (a parcel holding a queue never becomes a ring end by mistake) and,
//! for typed queues, that the message type's fingerprint matches.
//!
//! A parcel travels two ways:
//!
//! - **over a Unix stream socket** ([`send`] / [`recv`]): one `sendmsg` carries a fixed
//!   24-byte header (magic, version, tag, metadata, descriptor count) and the descriptors
//!   as `SCM_RIGHTS` ancillary data — the mechanism of Python's
//!   `multiprocessing.reduction.send_handle`. The receiver accepts at most
//!   [`MAX_FDS`] descriptors, receives them close-on-exec (`MSG_CMSG_CLOEXEC`), and
//!   treats truncated control data (`MSG_CTRUNC`), a short header, or a descriptor count
//!   other than the header's as an error, closing whatever descriptors it did get;
//! - **by inheritance** to a child started with [`std::process::Command`]
//!   ([`Inherit`] / [`from_env`]): the descriptors stay close-on-exec in the parent and
//!   the forked child clears the flag just before `exec`, and an environment variable
//!   `SHMRING_HANDOFF_<NAME>` tells the child the tag, the metadata and the numbers.
//!
//! Objects that implement [`Handoff`]: [`Connection`](crate::Connection),
//! [`Queue`](crate::Queue), [`SimpleQueue`](crate::SimpleQueue),
//! [`JoinableQueue`](crate::JoinableQueue), the [`ring::spsc`](crate::ring::spsc) and
//! [`ring::mpmc`](crate::ring::mpmc) `Producer`/`Consumer`, [`shm::Segment`](crate::shm::Segment),
//! [`Value`](crate::Value), [`RawValue`](crate::RawValue), [`Array`](crate::Array),
//! [`RawArray`](crate::RawArray), and the primitives of [`sync`](crate::sync) (`Mutex`,
//! `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier`), and a
//! manager's address and authkey ([`manager::ConnectInfo`](crate::manager::ConnectInfo)).
//!
//! Handing an object over consumes the local handle; to keep one here as well, hand
//! over a clone (`q.try_clone()?`). A named object's creating handle unlinks the name
//! when it is handed over, as when it drops: hand over a clone, or an anonymous object.
//!
//! ```
//! use shmring::{Queue, handoff};
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//!
//! // Usually the two ends of the socket are in different processes.
//! let (a, b) = UnixStream::pair()?;
//! let mut q: Queue<String> = Queue::new(16)?;
//! handoff::send(&a, q.try_clone()?)?;
//! let mut theirs: Queue<String> = handoff::recv(&b, Some(Duration::from_secs(5)))?;
//! q.put(&"through a passed descriptor".to_string())?;
//! assert_eq!(theirs.get()?, "through a passed descriptor");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod impls;
mod inherit;
pub(crate) mod socket;

pub use inherit::{ENTRY_VAR, ENV_PREFIX, Inherit, from_env};
pub use socket::{HEADER_LEN, MAGIC, MAX_FDS, VERSION, recv, recv_parcel, recv_parcel_max, send, send_parcel};

use rustix::fd::OwnedFd;

/// What a [`Parcel`] holds: the type its descriptors rebuild. Carried in the header of
/// a socket message and in the inheritance environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
#[non_exhaustive]
pub enum Kind {
    /// A [`Connection`](crate::Connection) end (metadata: bit 0 receiving ring present,
    /// bit 1 sending ring present; descriptors in that order).
    Connection = 1,
    /// A [`Queue`](crate::Queue) (metadata: the message type's fingerprint).
    Queue = 2,
    /// A [`SimpleQueue`](crate::SimpleQueue) (metadata: the message type's fingerprint).
    SimpleQueue = 3,
    /// A [`JoinableQueue`](crate::JoinableQueue) (metadata: the message type's
    /// fingerprint; descriptors: ring, task counter).
    JoinableQueue = 4,
    /// A [`ring::spsc::Producer`](crate::ring::spsc::Producer).
    SpscProducer = 5,
    /// A [`ring::spsc::Consumer`](crate::ring::spsc::Consumer).
    SpscConsumer = 6,
    /// A [`ring::mpmc::Producer`](crate::ring::mpmc::Producer).
    MpmcProducer = 7,
    /// A [`ring::mpmc::Consumer`](crate::ring::mpmc::Consumer).
    MpmcConsumer = 8,
    /// A bare [`shm::Segment`](crate::shm::Segment) (metadata: its
    /// [`SegmentKind`](crate::shm::SegmentKind) number).
    Segment = 9,
    /// A [`Value`](crate::Value).
    Value = 10,
    /// A [`RawValue`](crate::RawValue).
    RawValue = 11,
    /// An [`Array`](crate::Array).
    Array = 12,
    /// A [`RawArray`](crate::RawArray).
    RawArray = 13,
    /// A [`sync::Mutex`](crate::sync::Mutex).
    Mutex = 14,
    /// A [`sync::RLock`](crate::sync::RLock).
    RLock = 15,
    /// A [`sync::Semaphore`](crate::sync::Semaphore).
    Semaphore = 16,
    /// A [`sync::BoundedSemaphore`](crate::sync::BoundedSemaphore).
    BoundedSemaphore = 17,
    /// A [`sync::Event`](crate::sync::Event).
    Event = 18,
    /// A [`sync::Condition`](crate::sync::Condition).
    Condition = 19,
    /// A [`sync::Barrier`](crate::sync::Barrier).
    Barrier = 20,
    /// A [`net::SocketConnection`](crate::net::SocketConnection) after its handshake
    /// (metadata: its message limit).
    SocketConnection = 21,
    /// A [`manager::ConnectInfo`](crate::manager::ConnectInfo): a manager's address and
    /// authkey, the contents of a sealed memfd (metadata: their length).
    ManagerConnectInfo = 22,
    /// A [`broadcast::Publisher`](crate::broadcast::Publisher).
    BroadcastPublisher = 23,
    /// A [`broadcast::Subscriber`](crate::broadcast::Subscriber) (it leaves its slot;
    /// the receiver takes a slot of its own).
    BroadcastSubscriber = 24,
}

const KINDS: [(Kind, &str); 24] = [
    (Kind::Connection, "connection"),
    (Kind::Queue, "queue"),
    (Kind::SimpleQueue, "simple-queue"),
    (Kind::JoinableQueue, "joinable-queue"),
    (Kind::SpscProducer, "spsc-producer"),
    (Kind::SpscConsumer, "spsc-consumer"),
    (Kind::MpmcProducer, "mpmc-producer"),
    (Kind::MpmcConsumer, "mpmc-consumer"),
    (Kind::Segment, "segment"),
    (Kind::Value, "value"),
    (Kind::RawValue, "raw-value"),
    (Kind::Array, "array"),
    (Kind::RawArray, "raw-array"),
    (Kind::Mutex, "mutex"),
    (Kind::RLock, "rlock"),
    (Kind::Semaphore, "semaphore"),
    (Kind::BoundedSemaphore, "bounded-semaphore"),
    (Kind::Event, "event"),
    (Kind::Condition, "condition"),
    (Kind::Barrier, "barrier"),
    (Kind::SocketConnection, "socket-connection"),
    (Kind::ManagerConnectInfo, "manager-connect-info"),
    (Kind::BroadcastPublisher, "broadcast-publisher"),
    (Kind::BroadcastSubscriber, "broadcast-subscriber"),
];

impl Kind {
    /// The kind whose number is `raw`, if this build knows it.
    pub fn from_u16(raw: u16) -> Option<Kind> {
        KINDS.iter().map(|&(k, _)| k).find(|&k| k as u16 == raw)
    }

    /// The kind named `name` (as [`Kind::name`] spells it).
    pub fn from_name(name: &str) -> Option<Kind> {
        KINDS.iter().find(|&&(_, n)| n == name).map(|&(k, _)| k)
    }

    /// A lowercase name for messages and the inheritance variable (`"queue"`).
    pub fn name(self) -> &'static str {
        KINDS.iter().find(|&&(k, _)| k == self).map_or("?", |&(_, n)| n)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An object taken apart for the journey: what it is, one word of metadata, and its
/// descriptors (at most [`MAX_FDS`]).
///
/// ```
/// use shmring::handoff::{Handoff, Kind};
/// use shmring::Queue;
/// let p = Queue::<u32>::new(4)?.into_parcel()?;
/// assert_eq!((p.kind, p.fds.len()), (Kind::Queue, 1));
/// let mut q = Queue::<u32>::from_parcel(p)?;
/// q.put(&7)?;
/// assert_eq!(q.get()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Parcel {
    /// What the descriptors rebuild.
    pub kind: Kind,
    /// Kind-specific metadata (see each [`Kind`]).
    pub meta: u64,
    /// The descriptors, in the order the kind defines.
    pub fds: Vec<OwnedFd>,
}

/// A shmring object that can travel to another process as descriptors.
///
/// `from_parcel` checks the tag (a wrong kind is [`HandoffError::WrongKind`], not a
/// misread) and the descriptor count, then attaches exactly as the type's `from_fd`
/// does, which validates the segment header against the file.
///
/// ```
/// use shmring::handoff::{Handoff, HandoffError};
/// use shmring::{Queue, sync::Event};
/// let p = Event::anonymous()?.into_parcel()?;
/// assert!(matches!(Queue::<u8>::from_parcel(p), Err(HandoffError::WrongKind { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Handoff: Sized {
    /// The tag this type travels under.
    const KIND: Kind;

    /// Take the object apart into its descriptors (consuming this handle).
    fn into_parcel(self) -> Result<Parcel, HandoffError>;

    /// Rebuild the object from a parcel made by [`Handoff::into_parcel`], possibly in
    /// another process.
    fn from_parcel(parcel: Parcel) -> Result<Self, HandoffError>;
}

/// Why a handoff failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandoffError {
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// The failing operation.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The parcel holds another kind of object than the one asked for.
    #[error("expected a {expected}, received a {found}")]
    WrongKind {
        /// The kind asked for.
        expected: Kind,
        /// The kind received.
        found: Kind,
    },
    /// A typed object (queue, value, array, mutex, condition) was created for another
    /// shape of its type than the receiver's (see [`shm::shape`](crate::shm::shape)).
    #[error("the {kind} was created for `{created}`, received as `{opened}`: {why}")]
    WrongType {
        /// The kind of object.
        kind: Kind,
        /// The shape it was created for.
        created: String,
        /// The receiver's shape.
        opened: String,
        /// Why they differ.
        why: String,
    },
    /// The message is not a handoff header this build understands (bad magic, version,
    /// unknown tag, or inconsistent fields).
    #[error("malformed handoff message: {0}")]
    Malformed(String),
    /// The message or its control data arrived truncated (`MSG_CTRUNC`, `MSG_TRUNC`, a
    /// short header, or the peer closed mid-message); any descriptors received were closed.
    #[error("truncated handoff message: {0}")]
    Truncated(&'static str),
    /// The number of descriptors differs from what the header or the kind says; any
    /// descriptors received were closed.
    #[error("expected {expected} descriptors, received {got}")]
    FdCount {
        /// How many were expected.
        expected: usize,
        /// How many arrived.
        got: usize,
    },
    /// Nothing arrived within the timeout.
    #[error("timed out waiting for a handoff message")]
    Timeout,
    /// The peer closed the socket before sending a message.
    #[error("the peer closed the socket")]
    Closed,
    /// A blocking receive was interrupted by a signal while the interrupt flag was set.
    #[error("interrupted")]
    Interrupted,
    /// The inheritance variable is missing, malformed or meant for another process.
    #[error("inherited object {name:?}: {reason}")]
    Env {
        /// The object's name (as passed to [`Inherit::pass`]).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// This object has no descriptor to hand over (an in-process ring).
    #[error("not transferable: {0}")]
    NotTransferable(&'static str),
    /// The descriptors arrived but attaching to the object failed.
    #[error(transparent)]
    Attach(#[from] crate::Error),
}

impl HandoffError {
    pub(crate) fn io(op: &'static str, e: impl Into<std::io::Error>) -> Self {
        HandoffError::Io { op, source: e.into() }
    }
}

impl Parcel {
    /// Check that this parcel holds a `T` with exactly `n` descriptors, and return them.
    pub(crate) fn expect<T: Handoff>(self, n: usize) -> Result<(u64, Vec<OwnedFd>), HandoffError> {
        if self.kind != T::KIND {
            return Err(HandoffError::WrongKind {
                expected: T::KIND,
                found: self.kind,
            });
        }
        if self.fds.len() != n {
            return Err(HandoffError::FdCount {
                expected: n,
                got: self.fds.len(),
            });
        }
        Ok((self.meta, self.fds))
    }
}
