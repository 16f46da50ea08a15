//! [`Queue<T>`]: Python's `multiprocessing.Queue`.

use super::QueueConfig;
use super::engine::Engine;
use super::error::{GetError, PutError};
use crate::Result;
use crate::ring::mpmc::QueueStats;
use crate::shm::Shape;
use crate::shm::find;
use crate::sync::Wait;
use postcard_schema::Schema;
use rustix::fd::OwnedFd;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::time::Duration;

/// A multi-producer multi-consumer queue of `T`s between processes: Python's
/// `multiprocessing.Queue`. Values travel in postcard's format; messages larger than a
/// slot travel through a side segment (see the [module docs](super)).
///
/// Each handle is a producer and a consumer; make one per thread with
/// [`Queue::try_clone`], hand one to another process with [`Queue::into_fd`] /
/// [`Queue::from_fd`] or by name ([`Queue::create`] / [`Queue::open`]).
///
/// ```
/// use shmring::queue::{GetError, Queue};
/// use std::time::Duration;
///
/// let mut q: Queue<(u32, String)> = Queue::new(16)?;
/// let mut worker = q.try_clone()?; // another process would use `from_fd`
/// let t = std::thread::spawn(move || {
///     let (n, s) = worker.get().unwrap();
///     worker.put(&(n + 1, s + "!")).unwrap();
/// });
/// q.put(&(1, "hello".to_string()))?;
/// t.join().unwrap();
/// assert_eq!(q.get_timeout(Duration::from_secs(5))?, (2, "hello!".to_string()));
/// assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
///
/// // Large messages (here 1 MiB) go through a side segment, transparently.
/// q.put_bytes(&vec![7u8; 1 << 20])?;
/// assert_eq!(q.get_bytes()?.len(), 1 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    engine: Engine,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.engine.name())
            .field("id", &format_args!("{:016x}", self.engine.id()))
            .field("capacity", &self.engine.capacity())
            .field("slot_size", &self.engine.slot_size())
            .finish_non_exhaustive()
    }
}

impl<T> Queue<T> {
    fn wrap(engine: Engine) -> Self {
        Queue {
            engine,
            _t: PhantomData,
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A new anonymous (memfd) queue of `maxsize` messages (rounded up to a power of
    /// two, at least 2; `0` is Python's "unbounded": [`UNBOUNDED_SLOTS`](super::UNBOUNDED_SLOTS)).
    pub fn new(maxsize: usize) -> Result<Self>
    where
        T: Schema,
    {
        Self::with_config(maxsize, &QueueConfig::default())
    }

    /// [`Queue::new`] with a configuration.
    pub fn with_config(maxsize: usize, cfg: &QueueConfig) -> Result<Self>
    where
        T: Schema,
    {
        Ok(Self::wrap(Engine::anonymous(maxsize, &typed::<T>(cfg))?))
    }

    /// Create the named queue `name` (in `/dev/shm`, mode 0600) of `maxsize` messages.
    /// The name is removed when this handle drops (unless the config's segment options
    /// say `keep`).
    pub fn create(name: &str, maxsize: usize) -> Result<Self>
    where
        T: Schema,
    {
        Self::create_with(name, maxsize, &QueueConfig::default())
    }

    /// [`Queue::create`] with a configuration.
    pub fn create_with(name: &str, maxsize: usize, cfg: &QueueConfig) -> Result<Self>
    where
        T: Schema,
    {
        Ok(Self::wrap(Engine::create(name, maxsize, &typed::<T>(cfg))?))
    }

    /// Open the named queue `name`. It must have been created for the same shape of `T`
    /// (see [`shm::shape`](crate::shm::shape)), else [`Error::WrongType`](crate::Error::WrongType)
    /// names both; [`Queue::open_unchecked`] skips the check.
    pub fn open(name: &str) -> Result<Self>
    where
        T: Schema,
    {
        Self::open_with(name, &QueueConfig::default())
    }

    /// [`Queue::open`] with a configuration (its slot size is ignored: the ring's counts).
    pub fn open_with(name: &str, cfg: &QueueConfig) -> Result<Self>
    where
        T: Schema,
    {
        Ok(Self::wrap(Engine::open(name, &typed::<T>(cfg))?))
    }

    /// Open the named queue `name`, or create it (of `maxsize` messages) if it does not
    /// exist; with `true` if this call created it. The creator is the handle that
    /// removes the name when it drops: keep it alive while others may still look the
    /// name up. An existing queue keeps its creator's capacity and slot size; a segment
    /// of another kind is refused as by [`open`](Self::open). Of several processes
    /// racing here, exactly one creates (see
    /// [`shm::open_or_create`](crate::shm::open_or_create)).
    ///
    /// ```
    /// use shmring::Queue;
    /// let name = format!("doc-queue-ooc-{}", std::process::id());
    /// // Every program runs the same line; whoever comes first creates.
    /// let (mut a, created) = Queue::<String>::open_or_create(&name, 16)?;
    /// let (mut b, also) = Queue::<String>::open_or_create(&name, 16)?;
    /// assert!(created && !also);
    /// a.put(&"hello".to_string())?;
    /// assert_eq!(b.get()?, "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(name: &str, maxsize: usize) -> Result<(Self, bool)>
    where
        T: Schema,
    {
        Self::open_or_create_with(name, maxsize, &QueueConfig::default())
    }

    /// [`Queue::open_or_create`] with a configuration.
    pub fn open_or_create_with(name: &str, maxsize: usize, cfg: &QueueConfig) -> Result<(Self, bool)>
    where
        T: Schema,
    {
        find::open_or_create(|| Self::create_with(name, maxsize, cfg), || Self::open_with(name, cfg))
    }

    /// [`Queue::open`], retrying while `name` does not exist yet, for at most `timeout`;
    /// then the last [`Error::NotFound`](crate::Error::NotFound). The queue is found
    /// within about 4 ms of its creation (see [`shm::open_wait`](crate::shm::open_wait)).
    ///
    /// ```
    /// use shmring::Queue;
    /// use std::time::Duration;
    /// let name = format!("doc-queue-wait-{}", std::process::id());
    /// let maker = std::thread::spawn({
    ///     let name = name.clone();
    ///     move || {
    ///         std::thread::sleep(Duration::from_millis(20));
    ///         let mut q = Queue::<u32>::create(&name, 4).unwrap(); // usually another program
    ///         q.put(&7).unwrap();
    ///         q
    ///     }
    /// });
    /// let mut q = Queue::<u32>::open_wait(&name, Duration::from_secs(10))?;
    /// assert_eq!(q.get()?, 7);
    /// drop(maker.join().unwrap());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_wait(name: &str, timeout: Duration) -> Result<Self>
    where
        T: Schema,
    {
        Self::open_wait_with(name, timeout, &QueueConfig::default())
    }

    /// [`Queue::open_wait`] with a configuration.
    pub fn open_wait_with(name: &str, timeout: Duration, cfg: &QueueConfig) -> Result<Self>
    where
        T: Schema,
    {
        find::open_wait(timeout, || Self::open_with(name, cfg))
    }

    /// Attach through a descriptor of the queue's ring, inherited or received over
    /// `SCM_RIGHTS` (from [`Queue::into_fd`]).
    pub fn from_fd(fd: OwnedFd) -> Result<Self>
    where
        T: Schema,
    {
        Self::from_fd_with(fd, &QueueConfig::default())
    }

    /// [`Queue::from_fd`] with a configuration.
    pub fn from_fd_with(fd: OwnedFd, cfg: &QueueConfig) -> Result<Self>
    where
        T: Schema,
    {
        Ok(Self::wrap(Engine::from_fd(fd, &typed::<T>(cfg))?))
    }

    /// Leave the queue and return a descriptor of its ring (with an open file
    /// description of its own) for another process's [`Queue::from_fd`]. To keep a
    /// handle here too, hand over a clone: `q.try_clone()?.into_fd()`. Close this
    /// process's copy once the child has it. On the creating handle of a named queue,
    /// the name is then kept (remove it with [`crate::shm::unlink`]).
    pub fn into_fd(self) -> OwnedFd {
        self.engine.into_fd()
    }

    /// Another handle on the same queue in this process (for another thread).
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Self::wrap(self.engine.try_clone()?))
    }

    /// Approximate number of messages in the queue (Python's `qsize()`: other processes
    /// may change it at any moment).
    pub fn qsize(&self) -> usize {
        self.engine.len()
    }

    /// Whether the queue looks empty (approximate, as in Python).
    pub fn empty(&self) -> bool {
        self.engine.len() == 0
    }

    /// Whether the queue looks full (approximate, as in Python).
    pub fn full(&self) -> bool {
        self.engine.is_full()
    }

    /// Messages the queue holds when full (`maxsize` rounded up to a power of two).
    pub fn capacity(&self) -> usize {
        self.engine.capacity()
    }

    /// Slot size in bytes: messages of up to `slot_size() - 1` bytes travel inline.
    pub fn slot_size(&self) -> usize {
        self.engine.slot_size()
    }

    /// Largest message this handle puts or accepts.
    pub fn max_message_size(&self) -> usize {
        self.engine.max_message()
    }

    /// The queue's name, `None` if anonymous.
    pub fn name(&self) -> Option<&str> {
        self.engine.name()
    }

    /// The prefix of this queue's side segments in `/dev/shm`
    /// (`shmring-q-<queue id>-`): those left there by a crashed party can be found and
    /// removed by it.
    pub fn side_segment_prefix(&self) -> &str {
        self.engine.prefix()
    }

    /// The ring's shared counters (messages put and taken, lost, waits, parties).
    pub fn stats(&self) -> QueueStats {
        self.engine.stats()
    }

    /// Close the queue for every process: `put`s fail with [`PutError::Closed`]; `get`s
    /// take what is queued, then fail with [`GetError::Closed`].
    pub fn close(&self) {
        self.engine.close();
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.engine.is_closed()
    }

    /// Put `bytes` as one message, waiting while the queue is full.
    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<(), PutError> {
        self.engine.put_bytes(bytes, Wait::Forever)
    }

    /// [`Queue::put_bytes`] waiting at most `timeout` ([`PutError::Timeout`]).
    pub fn put_bytes_timeout(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), PutError> {
        self.engine.put_bytes(bytes, Wait::after(timeout))
    }

    /// [`Queue::put_bytes`] if there is room now ([`PutError::Full`]).
    pub fn put_bytes_nowait(&mut self, bytes: &[u8]) -> Result<(), PutError> {
        self.engine.put_bytes(bytes, Wait::Now)
    }

    /// Take the next message as bytes, waiting while the queue is empty.
    pub fn get_bytes(&mut self) -> Result<Vec<u8>, GetError> {
        Ok(self.engine.get(Wait::Forever)?.into_vec())
    }

    /// [`Queue::get_bytes`] waiting at most `timeout` ([`GetError::Timeout`]).
    pub fn get_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, GetError> {
        Ok(self.engine.get(Wait::after(timeout))?.into_vec())
    }

    /// [`Queue::get_bytes`] if a message is ready ([`GetError::Empty`]).
    pub fn get_bytes_nowait(&mut self) -> Result<Vec<u8>, GetError> {
        Ok(self.engine.get(Wait::Now)?.into_vec())
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Put `item`, waiting while the queue is full (Python's `put(item)`).
    pub fn put(&mut self, item: &T) -> Result<(), PutError> {
        self.engine.put_value(item, Wait::Forever)
    }

    /// Put `item`, waiting at most `timeout` for room (Python's `put(item, timeout=t)`).
    pub fn put_timeout(&mut self, item: &T, timeout: Duration) -> Result<(), PutError> {
        self.engine.put_value(item, Wait::after(timeout))
    }

    /// Put `item` if there is room now, else [`PutError::Full`] (Python's `put_nowait`).
    pub fn put_nowait(&mut self, item: &T) -> Result<(), PutError> {
        self.engine.put_value(item, Wait::Now)
    }

    /// Take the next item, waiting while the queue is empty (Python's `get()`).
    pub fn get(&mut self) -> Result<T, GetError> {
        self.engine.get_value(Wait::Forever)
    }

    /// Take the next item, waiting at most `timeout` (Python's `get(timeout=t)`).
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<T, GetError> {
        self.engine.get_value(Wait::after(timeout))
    }

    /// Take an item if one is ready, else [`GetError::Empty`] (Python's `get_nowait`).
    pub fn get_nowait(&mut self) -> Result<T, GetError> {
        self.engine.get_value(Wait::Now)
    }

    /// Take the next message, waiting while the queue is empty, and decode it with
    /// [`MessageRef::decode`](crate::connection::MessageRef::decode) borrowing from the
    /// handle's buffer (no allocation for `&str` / `&[u8]` fields): a borrowed form of
    /// `T` (`TickRef<'_>` for `Tick`), or `T` itself.
    ///
    /// ```
    /// let mut q: shmring::Queue<(u32, String)> = shmring::Queue::new(4)?;
    /// q.put(&(7, "seven".into()))?;
    /// let m = q.get_ref()?;
    /// assert_eq!(m.decode::<(u32, &str)>()?, (7, "seven"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_ref(&mut self) -> Result<crate::connection::MessageRef<'_>, GetError> {
        use crate::connection::MessageRef;
        Ok(match self.engine.get(Wait::Forever)? {
            super::engine::Got::Slot(b) => MessageRef::bytes(b),
            super::engine::Got::Side(v) => MessageRef::owned(v),
        })
    }

    /// Take the next item into `item`, waiting while the queue is empty, reusing its
    /// buffers where `T` can (see [`crate::codec::decode_into`]).
    pub fn get_into(&mut self, item: &mut T) -> Result<(), GetError> {
        let got = self.engine.get(Wait::Forever)?;
        Ok(crate::codec::decode_into(got.bytes(), item)?)
    }
}

/// `cfg` for a queue of `T`s: its ring records `T`'s wire shape at creation and checks
/// it at every open.
fn typed<T: Schema>(cfg: &QueueConfig) -> QueueConfig {
    let mut cfg = cfg.clone();
    cfg.ring.segment = cfg.ring.segment.typed(Some(Shape::of::<T>()));
    cfg
}

/// The escape hatch of the type check.
impl<T> Queue<T> {
    /// Open the named queue `name` **without checking** the type it was created for.
    ///
    /// For a user who knows better than the type check (a type whose schema changed in
    /// a way that keeps its encoding, a reader of raw bytes through
    /// [`get_bytes`](Self::get_bytes)). The risk: values of another type are decoded
    /// as `T`, which yields garbage or a [`GetError::Codec`](super::GetError::Codec) (never
    /// undefined behaviour: messages are decoded, not reinterpreted).
    pub fn open_unchecked(name: &str, cfg: &QueueConfig) -> Result<Self> {
        Ok(Self::wrap(Engine::open(name, &unchecked(cfg))?))
    }

    /// [`Queue::from_fd`] **without checking** the type (see [`Queue::open_unchecked`]).
    pub fn from_fd_unchecked(fd: OwnedFd, cfg: &QueueConfig) -> Result<Self> {
        Ok(Self::wrap(Engine::from_fd(fd, &unchecked(cfg))?))
    }
}

/// `cfg` without a shape to check.
fn unchecked(cfg: &QueueConfig) -> QueueConfig {
    let mut cfg = cfg.clone();
    cfg.ring.segment = cfg.ring.segment.typed(None);
    cfg
}
