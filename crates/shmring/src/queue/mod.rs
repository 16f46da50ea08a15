//! Python's `multiprocessing.Queue`, `SimpleQueue` and `JoinableQueue`, for any number
//! of producer and consumer processes, on the crash-safe MPMC slot ring
//! ([`crate::ring::mpmc`], Vyukov's bounded MPMC queue with owners in the slots).
//!
//! - [`Queue<T>`]: `put` / `put_timeout` / `put_nowait`, `get` / `get_timeout` /
//!   `get_nowait`, `qsize`, `empty`, `full`, `close`; typed values travel in
//!   [postcard](crate::codec)'s format, raw bytes through `put_bytes` / `get_bytes`.
//! - [`SimpleQueue<T>`]: `put`, `get`, `empty`, `close` on a queue of
//!   [`UNBOUNDED_SLOTS`] slots.
//! - [`JoinableQueue<T>`]: a queue plus a shared count of unfinished tasks: `put`
//!   counts one, `task_done` un-counts one, `join` waits for zero — across processes.
//!
//! # Messages and slots
//!
//! The ring has fixed-size slots ([`DEFAULT_SLOT_SIZE`] = 512 bytes unless
//! [`QueueConfig::slot_size`] says otherwise). Every slot holds one *record*, whose first
//! byte says what it is:
//!
//! | kind | layout (little-endian)                                             | meaning |
//! |------|--------------------------------------------------------------------|---------|
//! | 1    | `1`, payload                                                        | the message itself (payload up to slot size - 1 bytes) |
//! | 2    | `2`, name length (u8), 6 zero bytes, length (u64), checksum (u64), name | a reference to a side segment holding the message |
//!
//! A message too large for a slot cannot be cut into chunks: the chunks of concurrent
//! producers would interleave and several consumers would each take part of one
//! message. It travels **by reference** instead:
//!
//! 1. the producer writes it into a new named segment (kind
//!    [`Raw`](crate::shm::SegmentKind::Raw)) called `shmring-q-<queue id>-<pid>-<seq>`
//!    (the queue id is 16 hex digits derived from the ring's header, so every party
//!    computes the same one; `seq` is a per-process counter), publishes it, and pushes a
//!    reference record (name, length, checksum) into a slot;
//! 2. the consumer that pops the record checks it (below), opens the segment, **unlinks
//!    it at once** (the mapping stays valid), checks that its header agrees with the
//!    record, copies the bytes out and checks the checksum of its copy.
//!
//! A side segment's header parameters are `[b"SHMQSIDE" as u64 LE, length, checksum,
//! queue id, 0, 0, 0, 0]` and its area is exactly the message. The checksum is a
//! Fletcher-style sum over four lanes of 64-bit words, finished with the length: it
//! catches a segment that does not hold what its reference describes; it is not a MAC.
//!
//! A reference costs, per message, the creation of a segment (open, truncate, map with
//! `MAP_POPULATE`: the kernel allocates and zeroes its pages), two copies and two
//! checksum passes of the payload, and the consumer's unlink and unmap (which frees the
//! pages). The kernel's page work dominates: in a profile of `put` + `get` in one
//! process, the copies take ~14 % and the checksums ~10 %, most of the rest is the
//! kernel clearing, caching and freeing the segment's pages. Measured
//! across two processes on a busy 2-CPU VM (`tests/queue_process.rs`, median of 7): a
//! 16 MiB message round trip (there and back, each way through a side segment) took
//! 70–110 ms, against a median of 0.5–2 µs for a 64 B one (inline). Messages up
//! to a slot never touch a side segment; raise [`QueueConfig::slot_size`] when many
//! messages are a little over 511 bytes.
//!
//! **Untrusted records.** Any process that can map the ring can write any bytes into a
//! slot. Every field of a record is read from the popped copy and checked: the kind,
//! the exact record length, the reserved bytes, the length against
//! [`QueueConfig::max_message_size`], and the name, which must be exactly
//! `<this queue's prefix><digits>-<digits>` — so a hostile peer cannot make a consumer
//! open or unlink any segment but this queue's side segments. A bad record is
//! [`GetError::BadReference`] (the message is dropped, the next `get` goes on), never a
//! panic; so is a side segment that is missing, of another size or kind, or whose bytes
//! do not match the checksum.
//!
//! **Size limit.** A message larger than [`QueueConfig::max_message_size`]
//! ([`DEFAULT_MAX_MESSAGE_SIZE`] = 1 GiB by default) is refused with
//! [`PutError::MessageTooLarge`]; a consumer refuses references above its own limit.
//!
//! **Leaks.** A side segment is removed by the consumer that takes its reference. If
//! its producer dies after creating it and before its reference is published, or a
//! consumer dies between popping the reference and opening the segment (a window of a
//! few system calls), it stays in `/dev/shm` under its recognizable name
//! `shmring-q-<queue id>-<pid>-<seq>` (see [`Queue::side_segment_prefix`]), whose `pid`
//! names the producer: a cleanup tool can remove those whose queue or producer is gone.
//! Timeouts, `Full` and `Closed` never leak: the producer removes its segment itself.
//!
//! # Impossible states
//!
//! A queue's state words are its ring's (positions, slot sequence and length words, the
//! party table): every impossible state the ring detects, and what it repairs, is listed
//! in [`crate::ring::mpmc`] ("Impossible states"). A `put` that meets one returns
//! [`PutError::Corrupted`], a `get` [`GetError::Corrupted`] (or [`GetError::Lost`] for a
//! claim of a dead or forged owner, reclaimed), within about 50 ms for the blocking and
//! timed calls, for every wait strategy. On top of the ring:
//!
//! - a record whose kind, length, reserved bytes or side-segment name is not one a
//!   producer writes, or a side segment that is missing, of another kind or size, or
//!   whose bytes do not match the reference's checksum: [`GetError::BadReference`], the
//!   message dropped, the next `get` goes on (see "Untrusted records" above);
//! - side segments have no state words a wait depends on: a consumer opens one with a
//!   20 ms bound and copies it once.
//!
//! A [`JoinableQueue`]'s unfinished-tasks count lives in a
//! [`Condition`](crate::sync::Condition) segment: its lock and wait words are that
//! primitive's (see [`crate::sync`]). The count itself is a number any value of which is
//! legal: a neighbour that writes a large count makes `join` wait until that many
//! `task_done` calls (or its timeout), and one that writes zero wakes it early. Neither
//! is detectable from the count alone.
//!
//! A ring mapping poisoned by a peer's resize of the file (see
//! [`crate::shm::sigbus`]) is reported as `Corrupted` by every wait and by the periodic
//! check of the `*_nowait` calls, as for the ring.
//!
//! # Capacity
//!
//! `maxsize` (as in Python) is a number of messages; the ring rounds it up to a power
//! of two (at least 2), which [`Queue::capacity`] reports. Python's default, an
//! unbounded queue (`maxsize <= 0`), is `maxsize == 0` here: a ring of
//! [`UNBOUNDED_SLOTS`] (16384) slots, about 9 MiB of shared memory at the default slot
//! size (pages are allocated as the ring first reaches them), after which `put` waits.
//!
//! # Sharing a queue with other processes
//!
//! The message type `T` derives [`Schema`](crate::Schema) (next to serde's traits): its
//! wire shape is recorded in the queue's segment at creation, and every `open`,
//! `from_fd` and hand-off checks it, so a `Queue<u64>` does not open as a `Queue<i64>`,
//! while another program that declares the same type does open it (see
//! [`shm::shape`](crate::shm::shape)). [`Queue::open_unchecked`] skips the check.
//!
//! - Named: [`Queue::create`] in one process, [`Queue::open`] in the others. The
//!   creating handle removes the name when it drops.
//! - Anonymous (memfd): [`Queue::new`], then hand a descriptor to the child
//!   (inheritance or `SCM_RIGHTS`): `q.try_clone()?.into_fd()` gives a descriptor of an
//!   open file description of its own, which the child passes to [`Queue::from_fd`].
//!   Close the parent's copy once the child has it: the description carries the child's
//!   liveness locks. A [`JoinableQueue`] travels as two descriptors
//!   ([`JoinableQueue::into_fds`] / [`JoinableQueue::from_fds`]) or as two names (`name`
//!   and `name.tasks`).
//!
//! Each handle is one producer and one consumer party of the ring (a ring has
//! [`MAX_PARTIES`](crate::ring::mpmc::MAX_PARTIES) = 64 entries), so at most 32 handles
//! can be attached to one queue at a time; `put` and `get` take `&mut self`: use
//! `try_clone` for each thread.
//!
//! # Differences from Python
//!
//! - `put` writes the message into the queue before it returns (no feeder thread), so
//!   there is nothing to flush at exit (`join_thread`, `cancel_join_thread` do not exist).
//! - `close` closes the queue **for every process**: further `put`s fail with
//!   [`PutError::Closed`]; `get`s drain what is queued, then fail with
//!   [`GetError::Closed`]. (Python's `close` only stops the calling process's feeder.)
//! - `put` borrows the value (`&T`), so there is no value to hand back on failure.
//! - Delivery survives a crashed party: a producer killed in the middle of a `put` costs
//!   that one message, reported to a consumer as [`GetError::Lost`]; a consumer killed in
//!   the middle of a `get` costs the message it was taking (at-most-once).
//! - A `put` waits for room forever if the queue stays full (e.g. every consumer died):
//!   use `put_timeout` where that matters.

mod engine;
mod error;
mod handle;
mod iter;
mod joinable;
mod names;
mod record;
mod side;
mod simple;

pub use error::{BadReference, GetError, JoinError, PutError, TaskDoneError};
pub use handle::Queue;
pub use joinable::JoinableQueue;
pub use simple::SimpleQueue;

use crate::ring::mpmc::QueueOptions;

/// Default slot size in bytes: messages of up to 511 bytes travel inline.
pub const DEFAULT_SLOT_SIZE: usize = 512;
/// Smallest slot size: a slot must hold a reference record.
pub const MIN_SLOT_SIZE: usize = 128;
/// Slots of a queue created with `maxsize == 0` (Python's unbounded queue) and of a
/// [`SimpleQueue`].
pub const UNBOUNDED_SLOTS: usize = 1 << 14;
/// Default largest message: 1 GiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 30;

/// How a queue is created or opened.
///
/// ```
/// use shmring::queue::{Queue, QueueConfig};
/// let cfg = QueueConfig::new().slot_size(256).max_message_size(1 << 20);
/// let q: Queue<String> = Queue::with_config(8, &cfg)?;
/// assert_eq!(q.slot_size(), 256);
/// # Ok::<(), shmring::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Bytes of a slot (used when creating; an opener takes the ring's). Messages up to
    /// `slot_size - 1` bytes travel inline, larger ones through a side segment. At least
    /// [`MIN_SLOT_SIZE`]; default [`DEFAULT_SLOT_SIZE`].
    pub slot_size: usize,
    /// Largest message this handle puts or accepts (default 1 GiB).
    pub max_message_size: usize,
    /// The ring's options: segment options (mode, keep, prefault, open timeout; the
    /// mode applies to side segments too) and the wait strategy.
    pub ring: QueueOptions,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            slot_size: DEFAULT_SLOT_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            ring: QueueOptions::default(),
        }
    }
}

impl QueueConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set [`QueueConfig::slot_size`].
    pub fn slot_size(mut self, bytes: usize) -> Self {
        self.slot_size = bytes;
        self
    }
    /// Set [`QueueConfig::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }
    /// Set [`QueueConfig::ring`].
    pub fn ring(mut self, opts: QueueOptions) -> Self {
        self.ring = opts;
        self
    }
}

#[cfg(test)]
mod tests;
