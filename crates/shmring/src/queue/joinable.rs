//! [`JoinableQueue<T>`]: Python's `multiprocessing.JoinableQueue`.
//!
//! # The unfinished-tasks count
//!
//! A small companion segment holds a [`Condition`] (robust mutex + condition variable)
//! guarding `{ unfinished: u64, queue_id: u64 }`:
//!
//! - `put` adds one under the mutex **before** the message is pushed (so a `join` can
//!   never see zero while an item it should wait for is visible), and takes it back if
//!   the push fails;
//! - `task_done` takes one away under the mutex (refusing below zero) and, at zero,
//!   wakes every joiner (`notify_all`, requeued onto the mutex: no herd);
//! - `join` waits on the condition while the count is not zero. The condition's sleeps
//!   are naps of at most [`LIVENESS_INTERVAL`](crate::sync::LIVENESS_INTERVAL), so even
//!   a wake-up lost to a crashed notifier costs one nap, never a hang.
//!
//! A process killed while holding the mutex (a few instructions around one store) is
//! detected by the next locker ([`OwnerDied`](crate::sync::OwnerDied)); the count is a
//! single word written once per critical section, so it is consistent and the locker
//! marks it so and goes on. `queue_id` ties the companion to its ring: opening a pair
//! that does not belong together is an error.
//!
//! A companion segment resized by a peer (this mapping is then private zeros, which no
//! other process's `task_done` reaches, and whose count of 0 means nothing) ends a
//! waiting `join` with [`JoinError::Corrupted`] (see `Condition::wait_while`: the poison
//! flag after every wake, an `fstat` per liveness interval). A `join` that finds the
//! count at 0 without waiting does not look (as every non-waiting call).

use super::error::{GetError, JoinError, PutError, TaskDoneError};
use super::{Queue, QueueConfig};
use crate::sync::{Condition, ConditionGuard, LockError};
use crate::{Error, Result};
use bytemuck::{Pod, Zeroable};
use rustix::fd::{AsFd, OwnedFd};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant};

/// The companion segment's value.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, postcard_schema::Schema)]
struct Tasks {
    /// Items put and not yet marked done.
    unfinished: u64,
    /// The id of the queue this count belongs to.
    queue_id: u64,
}

/// Python's `multiprocessing.JoinableQueue`: a [`Queue`] plus a count of unfinished
/// tasks shared by every process. Each `put` counts one task; a consumer calls
/// [`task_done`](JoinableQueue::task_done) once for every item it got; `join` waits
/// until every task put so far is done.
///
/// Messages that `get` takes but cannot deliver — [`GetError::Lost`] (its producer died
/// mid-put), [`GetError::Codec`], [`GetError::BadReference`], [`GetError::SideSegment`]
/// — are marked done by `get` itself: call `task_done` exactly once per item that `get`
/// returned. An item taken by a consumer that then dies is never marked done (as in
/// Python): `join` waits for it; use [`join_timeout`](JoinableQueue::join_timeout) where
/// that matters. Put only through `JoinableQueue` handles: a plain [`Queue`] opened on
/// the same ring does not count its items.
///
/// ```
/// use shmring::queue::JoinableQueue;
/// let mut q: JoinableQueue<u64> = JoinableQueue::new(64)?;
/// let mut worker = q.try_clone()?; // a child would use `from_fds(q.try_clone()?.into_fds()?)`
/// let t = std::thread::spawn(move || {
///     while let Ok(n) = worker.get() {
///         let _ = n * n; // the work
///         worker.task_done().unwrap();
///     }
/// });
/// for n in 0..10 {
///     q.put(&n)?;
/// }
/// q.join()?; // every item was got and marked done
/// assert_eq!(q.unfinished_tasks(), 0);
/// q.close(); // the worker's get fails with Closed
/// t.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
    tasks: Condition<Tasks>,
}

impl<T> std::fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("queue", &self.queue)
            .field("tasks", &self.tasks.name())
            .finish()
    }
}

/// The name of the companion segment of the named joinable queue `name`.
fn tasks_name(name: &str) -> String {
    format!("{name}.tasks")
}

impl<T> JoinableQueue<T> {
    fn tie(queue: Queue<T>, tasks: Condition<Tasks>) -> Result<Self> {
        let q = JoinableQueue { queue, tasks };
        let found = q.lock().queue_id;
        let id = q.queue.engine().id();
        if found != id {
            return Err(Error::InvalidArgument(format!(
                "the task counter {:?} belongs to queue {found:016x}, not to {id:016x}",
                q.tasks.name().unwrap_or("<anonymous>")
            )));
        }
        Ok(q)
    }

    /// A new anonymous joinable queue of `maxsize` messages (see [`Queue::new`]).
    pub fn new(maxsize: usize) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        Self::with_config(maxsize, &QueueConfig::default())
    }

    /// [`JoinableQueue::new`] with a configuration.
    pub fn with_config(maxsize: usize, cfg: &QueueConfig) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        let queue = Queue::with_config(maxsize, cfg)?;
        let tasks = Condition::anonymous(Tasks {
            unfinished: 0,
            queue_id: queue.engine().id(),
        })?;
        Self::tie(queue, tasks)
    }

    /// Create the named joinable queue `name`: the ring `name` and the task counter
    /// `name.tasks` (so `name` may have at most 194 bytes). Both are removed when this
    /// handle drops.
    pub fn create(name: &str, maxsize: usize) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        Self::create_with(name, maxsize, &QueueConfig::default())
    }

    /// [`JoinableQueue::create`] with a configuration.
    pub fn create_with(name: &str, maxsize: usize, cfg: &QueueConfig) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        crate::shm::validate_name(&tasks_name(name))?;
        let queue = Queue::create_with(name, maxsize, cfg)?;
        let value = Tasks {
            unfinished: 0,
            queue_id: queue.engine().id(),
        };
        let tasks = Condition::create_with(&tasks_name(name), value, &cfg.ring.segment)?;
        Self::tie(queue, tasks)
    }

    /// Open the named joinable queue `name` (the ring `name` and `name.tasks`).
    pub fn open(name: &str) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        Self::open_with(name, &QueueConfig::default())
    }

    /// [`JoinableQueue::open`] with a configuration.
    pub fn open_with(name: &str, cfg: &QueueConfig) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        let queue = Queue::open_with(name, cfg)?;
        // The creator makes the counter just after the ring: wait for it, bounded.
        let start = Instant::now();
        let tasks = loop {
            match Condition::open(&tasks_name(name)) {
                Err(Error::NotFound { .. }) if start.elapsed() < cfg.ring.segment.open_timeout => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                r => break r?,
            }
        };
        Self::tie(queue, tasks)
    }

    /// Open the named joinable queue `name` (the ring `name` and `name.tasks`), or
    /// create both if the ring does not exist; with `true` if this call created them
    /// (that handle removes both names when it drops). See [`Queue::open_or_create`].
    ///
    /// ```
    /// use shmring::JoinableQueue;
    /// let name = format!("doc-joinable-ooc-{}", std::process::id());
    /// let (mut a, created) = JoinableQueue::<u8>::open_or_create(&name, 4)?;
    /// let (mut b, also) = JoinableQueue::<u8>::open_or_create(&name, 4)?;
    /// assert!(created && !also);
    /// a.put(&1)?;
    /// assert_eq!(b.get()?, 1);
    /// b.task_done()?;
    /// a.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(name: &str, maxsize: usize) -> Result<(Self, bool)>
    where
        T: crate::Schema,
    {
        Self::open_or_create_with(name, maxsize, &QueueConfig::default())
    }

    /// [`JoinableQueue::open_or_create`] with a configuration.
    pub fn open_or_create_with(name: &str, maxsize: usize, cfg: &QueueConfig) -> Result<(Self, bool)>
    where
        T: crate::Schema,
    {
        crate::shm::open_or_create(|| Self::create_with(name, maxsize, cfg), || Self::open_with(name, cfg))
    }

    /// [`JoinableQueue::open`], retrying while the ring `name` does not exist yet, for
    /// at most `timeout` (see [`Queue::open_wait`]).
    pub fn open_wait(name: &str, timeout: Duration) -> Result<Self>
    where
        T: crate::Schema,
    {
        Self::open_wait_with(name, timeout, &QueueConfig::default())
    }

    /// [`JoinableQueue::open_wait`] with a configuration.
    pub fn open_wait_with(name: &str, timeout: Duration, cfg: &QueueConfig) -> Result<Self>
    where
        T: crate::Schema,
    {
        crate::shm::open_wait(timeout, || Self::open_with(name, cfg))
    }

    /// Attach through the two descriptors of [`JoinableQueue::into_fds`].
    pub fn from_fds(queue: OwnedFd, tasks: OwnedFd) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        Self::from_fds_with(queue, tasks, &QueueConfig::default())
    }

    /// [`JoinableQueue::from_fds`] with a configuration.
    pub fn from_fds_with(queue: OwnedFd, tasks: OwnedFd, cfg: &QueueConfig) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        let queue = Queue::from_fd_with(queue, cfg)?;
        let tasks = Condition::from_fd(tasks)?;
        Self::tie(queue, tasks)
    }

    /// Leave the queue and return descriptors of its ring and of its task counter, for
    /// another process's [`JoinableQueue::from_fds`] (see [`Queue::into_fd`]; hand over
    /// `q.try_clone()?.into_fds()?` to keep yours).
    pub fn into_fds(self) -> Result<(OwnedFd, OwnedFd)> {
        let tasks = self
            .tasks
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("dup", self.tasks.name().unwrap_or(""), e))?;
        Ok((self.queue.into_fd(), tasks))
    }

    /// Another handle on the same queue in this process.
    pub fn try_clone(&self) -> Result<Self> {
        Ok(JoinableQueue {
            queue: self.queue.try_clone()?,
            tasks: self.tasks.try_clone()?,
        })
    }

    /// The underlying queue, for its read-only calls (`qsize`, `stats`, ...).
    pub fn queue(&self) -> &Queue<T> {
        &self.queue
    }

    /// Approximate number of messages in the queue.
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// Whether the queue looks empty.
    pub fn empty(&self) -> bool {
        self.queue.empty()
    }

    /// Whether the queue looks full.
    pub fn full(&self) -> bool {
        self.queue.full()
    }

    /// Close the queue for every process (see [`Queue::close`]).
    pub fn close(&self) {
        self.queue.close();
    }

    /// Items put and not yet marked done.
    pub fn unfinished_tasks(&self) -> u64 {
        self.lock().unfinished
    }

    /// Mark one item got from the queue as done. [`TaskDoneError::TooOften`] (count
    /// unchanged) if every item put is already done.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut g = self.lock();
        if g.unfinished == 0 {
            return Err(TaskDoneError::TooOften);
        }
        g.unfinished -= 1;
        if g.unfinished == 0 {
            self.tasks.notify_all();
        }
        Ok(())
    }

    /// Wait until every item put so far has been marked done. The errors are
    /// [`JoinError::Interrupted`] (an interrupt is pending, see `shmring::signal`) and
    /// [`JoinError::Corrupted`] (a peer resized the task counter's segment: no
    /// `task_done` of another process can reach this mapping any more).
    pub fn join(&self) -> Result<(), JoinError> {
        self.join_until(None)
    }

    /// [`JoinableQueue::join`] for at most `timeout`.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinError> {
        self.join_until(Some(timeout))
    }

    fn join_until(&self, timeout: Option<Duration>) -> Result<(), JoinError> {
        let g = self.lock();
        let (g, r) = match self.tasks.wait_while_interruptible(g, timeout, |t| t.unfinished != 0) {
            Ok(x) => x,
            Err(LockError::OwnerDied(died)) => {
                let (g, r) = died.into_inner();
                (consistent(g), r)
            }
            Err(_) => return Err(JoinError::Corrupted(crate::shm::sigbus::RESIZED)),
        };
        match g.unfinished {
            0 => Ok(()),
            unfinished if r.interrupted() => Err(JoinError::Interrupted { unfinished }),
            unfinished => Err(JoinError::Timeout { unfinished }),
        }
    }

    /// Lock the counter; a dead previous holder left it consistent (see the module docs).
    fn lock(&self) -> ConditionGuard<'_, Tasks> {
        match self.tasks.lock() {
            Ok(g) => g,
            Err(died) => consistent(died.into_inner()),
        }
    }

    /// Count one more unfinished task.
    fn add_task(&self) {
        let mut g = self.lock();
        g.unfinished = g.unfinished.saturating_add(1);
    }

    /// Take back a task that was counted but will never be got (a failed put) or was got
    /// but not delivered (a failed get).
    fn drop_task(&self) {
        let mut g = self.lock();
        g.unfinished = g.unfinished.saturating_sub(1);
        if g.unfinished == 0 {
            self.tasks.notify_all();
        }
    }

    fn counted(&mut self, put: impl FnOnce(&mut Queue<T>) -> Result<(), PutError>) -> Result<(), PutError> {
        self.add_task();
        let r = put(&mut self.queue);
        if r.is_err() {
            self.drop_task();
        }
        r
    }

    fn taken<R>(&mut self, get: impl FnOnce(&mut Queue<T>) -> Result<R, GetError>) -> Result<R, GetError> {
        let r = get(&mut self.queue);
        if let Err(GetError::Lost | GetError::Codec(_) | GetError::BadReference(_) | GetError::SideSegment(_)) = &r {
            self.drop_task();
        }
        r
    }

    /// Put `bytes` as one message (one task), waiting while the queue is full.
    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<(), PutError> {
        self.counted(|q| q.put_bytes(bytes))
    }

    /// Take the next message as bytes, waiting while the queue is empty.
    pub fn get_bytes(&mut self) -> Result<Vec<u8>, GetError> {
        self.taken(|q| q.get_bytes())
    }
}

/// Declare the counter consistent after a holder died (it is one word, always whole).
fn consistent(g: ConditionGuard<'_, Tasks>) -> ConditionGuard<'_, Tasks> {
    g.mark_consistent();
    g
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// Put `item` (one task), waiting while the queue is full.
    pub fn put(&mut self, item: &T) -> Result<(), PutError> {
        self.counted(|q| q.put(item))
    }

    /// Put `item`, waiting at most `timeout` for room.
    pub fn put_timeout(&mut self, item: &T, timeout: Duration) -> Result<(), PutError> {
        self.counted(|q| q.put_timeout(item, timeout))
    }

    /// Put `item` if there is room now, else [`PutError::Full`].
    pub fn put_nowait(&mut self, item: &T) -> Result<(), PutError> {
        self.counted(|q| q.put_nowait(item))
    }

    /// Take the next item, waiting while the queue is empty.
    pub fn get(&mut self) -> Result<T, GetError> {
        self.taken(|q| q.get())
    }

    /// Take the next item, waiting at most `timeout`.
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<T, GetError> {
        self.taken(|q| q.get_timeout(timeout))
    }

    /// Take an item if one is ready, else [`GetError::Empty`].
    pub fn get_nowait(&mut self) -> Result<T, GetError> {
        self.taken(|q| q.get_nowait())
    }
}
