//! The per-operation errors of the queues.

use crate::codec::CodecError;
use crate::ring::mpmc::{PopError, PushError};

/// Why a `put` did not take place. The value stays with the caller (`put` borrows it).
///
/// ```
/// use shmring::queue::{PutError, Queue};
/// let mut q: Queue<u32> = Queue::new(2)?;
/// q.put_nowait(&1)?;
/// q.put_nowait(&2)?;
/// assert!(matches!(q.put_nowait(&3), Err(PutError::Full)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PutError {
    /// The queue is full (`put_nowait`).
    #[error("queue is full")]
    Full,
    /// The timeout passed before a slot became free (`put_timeout`).
    #[error("timed out waiting for room in the queue")]
    Timeout,
    /// The queue was closed.
    #[error("queue is closed")]
    Closed,
    /// A blocking `put` found an interrupt pending (`signal::Interrupt`) while the
    /// queue was full. Nothing was put.
    #[error("interrupted while waiting for room in the queue")]
    Interrupted,
    /// The message is larger than the configured limit.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The encoded message's length.
        len: usize,
        /// [`QueueConfig::max_message_size`](super::QueueConfig::max_message_size).
        max: usize,
    },
    /// The value could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The side segment of a large message could not be created (e.g. `/dev/shm` full).
    #[error("cannot create the side segment of a large message: {0}")]
    SideSegment(#[source] crate::Error),
    /// The ring's shared state holds impossible values.
    #[error("queue corrupted: {0}")]
    Corrupted(&'static str),
}

impl From<PushError> for PutError {
    fn from(e: PushError) -> Self {
        match e {
            PushError::Full => PutError::Full,
            PushError::Timeout => PutError::Timeout,
            PushError::Interrupted => PutError::Interrupted,
            PushError::Closed => PutError::Closed,
            // Records are sized against the slot before they are pushed.
            PushError::MessageTooLarge { len, max } => PutError::MessageTooLarge { len, max },
            PushError::Corrupted(what) => PutError::Corrupted(what),
        }
    }
}

/// Why a `get` returned no message.
///
/// ```
/// use shmring::queue::{GetError, Queue};
/// let mut q: Queue<u32> = Queue::new(4)?;
/// assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
/// q.close();
/// assert!(matches!(q.get(), Err(GetError::Closed)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The queue is empty (`get_nowait`).
    #[error("queue is empty")]
    Empty,
    /// The timeout passed before a message arrived (`get_timeout`).
    #[error("timed out waiting for a message")]
    Timeout,
    /// The queue was closed and every message in it has been taken.
    #[error("queue is closed")]
    Closed,
    /// A blocking `get` found an interrupt pending (`signal::Interrupt`) while the
    /// queue was empty. Nothing was taken.
    #[error("interrupted while waiting for a message")]
    Interrupted,
    /// A message was lost: its producer died while putting it. Reported once per lost
    /// message; the next `get` goes on.
    #[error("a message was lost: its producer died while putting it")]
    Lost,
    /// The message's bytes are not a `T` (the message is consumed).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The slot held a bad record or a reference to a bad side segment (the message is
    /// dropped; the next `get` goes on).
    #[error("bad message record: {0}")]
    BadReference(#[from] BadReference),
    /// The side segment of a large message could not be mapped for a system reason
    /// (e.g. out of memory or descriptors); the message is dropped.
    #[error("cannot read the side segment of a large message: {0}")]
    SideSegment(#[source] crate::Error),
    /// The ring's shared state holds impossible values.
    #[error("queue corrupted: {0}")]
    Corrupted(&'static str),
}

impl From<PopError> for GetError {
    fn from(e: PopError) -> Self {
        match e {
            PopError::Empty => GetError::Empty,
            PopError::Timeout => GetError::Timeout,
            PopError::Interrupted => GetError::Interrupted,
            PopError::Closed => GetError::Closed,
            PopError::Lost => GetError::Lost,
            PopError::Corrupted(what) => GetError::Corrupted(what),
        }
    }
}

/// What was wrong with a record popped from the ring, or with the side segment it
/// names. Every field of a record is untrusted (any process mapping the ring can write
/// any bytes); these are the checks it failed.
///
/// ```
/// use shmring::queue::BadReference;
/// let e = BadReference::ForeignName;
/// assert!(e.to_string().contains("name"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadReference {
    /// The record's first byte is no known kind.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// The record is shorter or longer than its kind and name length say.
    #[error("record of {len} bytes does not match its layout")]
    Truncated {
        /// The record's length.
        len: usize,
    },
    /// A reference record with non-zero reserved bytes or an impossible name length.
    #[error("malformed reference record")]
    Malformed,
    /// The named segment is not one of this queue's side segments (not
    /// `<prefix><pid>-<seq>`): it was neither opened nor removed.
    #[error("reference names a segment outside this queue's side-segment names")]
    ForeignName,
    /// The length is zero or above this consumer's limit (the segment is removed).
    #[error("referenced message of {len} bytes is empty or above the limit of {max}")]
    TooLarge {
        /// The length in the record.
        len: u64,
        /// This consumer's limit.
        max: u64,
    },
    /// The side segment does not exist (already taken, or never created).
    #[error("side segment does not exist")]
    Missing,
    /// The side segment's header, kind or size disagrees with the record (removed).
    #[error("side segment does not match its reference")]
    Mismatch,
    /// The copied bytes do not match the record's checksum.
    #[error("side segment bytes do not match the checksum")]
    Checksum,
}

/// Why `task_done` refused.
///
/// ```
/// use shmring::queue::{JoinableQueue, TaskDoneError};
/// let q: JoinableQueue<u8> = JoinableQueue::new(4)?;
/// assert_eq!(q.task_done(), Err(TaskDoneError::TooOften));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskDoneError {
    /// Called more times than items were put (Python's `ValueError`); the count is left
    /// unchanged at zero.
    #[error("task_done() called more times than there were items")]
    TooOften,
}

/// Why `join` or `join_timeout` returned before every task was done.
///
/// ```
/// use shmring::queue::{JoinError, JoinableQueue};
/// use std::time::Duration;
/// let mut q: JoinableQueue<u8> = JoinableQueue::new(4)?;
/// q.put(&1)?;
/// let e = q.join_timeout(Duration::from_millis(1));
/// assert_eq!(e, Err(JoinError::Timeout { unfinished: 1 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The timeout passed with tasks still unfinished.
    #[error("timed out with {unfinished} unfinished tasks")]
    Timeout {
        /// Unfinished tasks when the wait ended.
        unfinished: u64,
    },
    /// An interrupt is pending (`signal::Interrupt`) with tasks still unfinished.
    #[error("interrupted with {unfinished} unfinished tasks")]
    Interrupted {
        /// Unfinished tasks when the wait ended.
        unfinished: u64,
    },
    /// The task counter can no longer be shared: a peer resized its segment
    /// (`NAME.tasks`), so this mapping is private zeros that no other process's
    /// `task_done` reaches (see `docs/design-notes.md`). Found within one liveness
    /// interval (50 ms) of waiting.
    #[error("the task counter is corrupted: {0}")]
    Corrupted(&'static str),
}
