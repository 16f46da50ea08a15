//! [`SimpleQueue<T>`]: Python's `multiprocessing.SimpleQueue`.

use super::Queue;
use super::error::{GetError, PutError};
use crate::Result;
use rustix::fd::OwnedFd;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Python's `multiprocessing.SimpleQueue`: `put`, `get`, `empty`, `close` on a queue of
/// [`UNBOUNDED_SLOTS`](super::UNBOUNDED_SLOTS) (16384) slots — `put` waits only once
/// that many messages are queued. Large messages travel as in [`Queue`].
///
/// ```
/// use shmring::queue::SimpleQueue;
/// let mut q: SimpleQueue<Vec<u32>> = SimpleQueue::new()?;
/// let mut child = SimpleQueue::<Vec<u32>>::from_fd(q.try_clone()?.into_fd())?; // as a child would
/// q.put(&vec![1, 2, 3])?;
/// assert!(!child.empty());
/// assert_eq!(child.get()?, vec![1, 2, 3]);
/// assert!(q.empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SimpleQueue<T> {
    inner: Queue<T>,
}

impl<T> std::fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SimpleQueue").field(&self.inner).finish()
    }
}

impl<T> SimpleQueue<T> {
    /// A new anonymous (memfd) queue.
    pub fn new() -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        Ok(SimpleQueue { inner: Queue::new(0)? })
    }

    /// Create the named queue `name` (removed when this handle drops).
    pub fn create(name: &str) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        Ok(SimpleQueue {
            inner: Queue::create(name, 0)?,
        })
    }

    /// Open the named queue `name`.
    pub fn open(name: &str) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        Ok(SimpleQueue {
            inner: Queue::open(name)?,
        })
    }

    /// Open the named queue `name`, or create it if it does not exist; with `true` if
    /// this call created it (that handle removes the name when it drops). See
    /// [`Queue::open_or_create`].
    ///
    /// ```
    /// use shmring::SimpleQueue;
    /// let name = format!("doc-simple-ooc-{}", std::process::id());
    /// let (mut a, created) = SimpleQueue::<u8>::open_or_create(&name)?;
    /// let (mut b, also) = SimpleQueue::<u8>::open_or_create(&name)?;
    /// assert!(created && !also);
    /// a.put(&1)?;
    /// assert_eq!(b.get()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(name: &str) -> Result<(Self, bool)>
    where
        T: crate::Schema,
    {
        let (inner, created) = Queue::open_or_create(name, 0)?;
        Ok((SimpleQueue { inner }, created))
    }

    /// Open the named queue `name`, waiting at most `timeout` for it to exist (see
    /// [`Queue::open_wait`]).
    pub fn open_wait(name: &str, timeout: std::time::Duration) -> Result<Self>
    where
        T: crate::Schema,
    {
        Ok(SimpleQueue {
            inner: Queue::open_wait(name, timeout)?,
        })
    }

    /// Attach through a descriptor from [`SimpleQueue::into_fd`] (see [`Queue::from_fd`]).
    pub fn from_fd(fd: OwnedFd) -> Result<Self>
    where
        T: postcard_schema::Schema,
    {
        Ok(SimpleQueue {
            inner: Queue::from_fd(fd)?,
        })
    }

    /// Leave the queue and return a descriptor of it for another process (see
    /// [`Queue::into_fd`]; hand over `q.try_clone()?.into_fd()` to keep yours).
    pub fn into_fd(self) -> OwnedFd {
        self.inner.into_fd()
    }

    /// Another handle on the same queue in this process.
    pub fn try_clone(&self) -> Result<Self> {
        Ok(SimpleQueue {
            inner: self.inner.try_clone()?,
        })
    }

    /// Whether the queue looks empty (approximate).
    pub fn empty(&self) -> bool {
        self.inner.empty()
    }

    /// Close the queue for every process (`get`s drain it, then fail with
    /// [`GetError::Closed`]).
    pub fn close(&self) {
        self.inner.close();
    }

    /// The underlying [`Queue`], shared.
    pub(crate) fn inner(&self) -> &Queue<T> {
        &self.inner
    }

    /// The underlying [`Queue`].
    pub fn as_queue(&mut self) -> &mut Queue<T> {
        &mut self.inner
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// Put `item` (waits only while [`UNBOUNDED_SLOTS`](super::UNBOUNDED_SLOTS) messages
    /// are queued).
    pub fn put(&mut self, item: &T) -> Result<(), PutError> {
        self.inner.put(item)
    }

    /// Take the next item, waiting while the queue is empty.
    pub fn get(&mut self) -> Result<T, GetError> {
        self.inner.get()
    }
}
