//! The Rust names of the queue calls, beside Python's: `is_empty` / `is_full` for
//! `empty` / `full`, `try_put` / `try_get` for `put_nowait` / `get_nowait`, and the
//! `_timeout` forms where a kind lacked them. Each is the Python-named call under
//! another name; [`QueueProxy`](crate::manager::QueueProxy) has the same set.
//!
//! ```
//! use shmring::queue::{GetError, PutError, Queue};
//! use std::time::Duration;
//!
//! let mut q: Queue<u32> = Queue::new(2)?;
//! assert!(q.is_empty());
//! q.try_put(&1)?;
//! q.put_timeout(&2, Duration::from_millis(10))?;
//! assert!(q.is_full());
//! assert!(matches!(q.try_put(&3), Err(PutError::Full)));
//! assert_eq!(q.try_get()?, 1);
//! assert_eq!(q.get_timeout(Duration::from_secs(1))?, 2);
//! assert!(matches!(q.try_get(), Err(GetError::Empty)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::error::{GetError, PutError};
use super::{JoinableQueue, Queue, SimpleQueue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

impl<T> Queue<T> {
    /// Whether the queue looks empty ([`Queue::empty`]; approximate, as in Python).
    pub fn is_empty(&self) -> bool {
        self.empty()
    }

    /// Whether the queue looks full ([`Queue::full`]; approximate).
    pub fn is_full(&self) -> bool {
        self.full()
    }

    /// [`Queue::put_bytes_nowait`].
    pub fn try_put_bytes(&mut self, bytes: &[u8]) -> Result<(), PutError> {
        self.put_bytes_nowait(bytes)
    }

    /// [`Queue::get_bytes_nowait`].
    pub fn try_get_bytes(&mut self) -> Result<Vec<u8>, GetError> {
        self.get_bytes_nowait()
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Put `item` if there is room now, else [`PutError::Full`] ([`Queue::put_nowait`]).
    pub fn try_put(&mut self, item: &T) -> Result<(), PutError> {
        self.put_nowait(item)
    }

    /// Take an item if one is ready, else [`GetError::Empty`] ([`Queue::get_nowait`]).
    pub fn try_get(&mut self) -> Result<T, GetError> {
        self.get_nowait()
    }
}

impl<T> SimpleQueue<T> {
    /// Whether the queue looks empty ([`SimpleQueue::empty`]; approximate).
    pub fn is_empty(&self) -> bool {
        self.empty()
    }

    /// Whether the queue looks full (approximate): [`UNBOUNDED_SLOTS`](super::UNBOUNDED_SLOTS)
    /// messages are queued.
    pub fn is_full(&self) -> bool {
        self.inner().full()
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// Put `item` if there is room now, else [`PutError::Full`].
    pub fn try_put(&mut self, item: &T) -> Result<(), PutError> {
        self.as_queue().put_nowait(item)
    }

    /// Put `item`, waiting at most `timeout` for room ([`PutError::Timeout`]).
    pub fn put_timeout(&mut self, item: &T, timeout: Duration) -> Result<(), PutError> {
        self.as_queue().put_timeout(item, timeout)
    }

    /// Take an item if one is ready, else [`GetError::Empty`].
    pub fn try_get(&mut self) -> Result<T, GetError> {
        self.as_queue().get_nowait()
    }

    /// Take the next item, waiting at most `timeout` ([`GetError::Timeout`]).
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<T, GetError> {
        self.as_queue().get_timeout(timeout)
    }
}

impl<T> JoinableQueue<T> {
    /// Whether the queue looks empty ([`JoinableQueue::empty`]; approximate).
    pub fn is_empty(&self) -> bool {
        self.empty()
    }

    /// Whether the queue looks full ([`JoinableQueue::full`]; approximate).
    pub fn is_full(&self) -> bool {
        self.full()
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// Put `item` (one task) if there is room now, else [`PutError::Full`]
    /// ([`JoinableQueue::put_nowait`]).
    pub fn try_put(&mut self, item: &T) -> Result<(), PutError> {
        self.put_nowait(item)
    }

    /// Take an item if one is ready, else [`GetError::Empty`]
    /// ([`JoinableQueue::get_nowait`]).
    pub fn try_get(&mut self) -> Result<T, GetError> {
        self.get_nowait()
    }
}
