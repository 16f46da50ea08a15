//! Iterators over the items of a [`Queue`], [`SimpleQueue`] or [`JoinableQueue`] (see
//! [`crate::iter`]): they end when the queue is closed and drained. Every handle is a
//! producer, so a producer that drops or dies does not end them: `close` does.
//!
//! ```
//! use shmring::Queue;
//! let mut q: Queue<u32> = Queue::new(8)?;
//! let mut producer = q.try_clone()?; // another process would use `from_fd`
//! let t = std::thread::spawn(move || {
//!     for i in 0..4 {
//!         producer.put(&i).unwrap();
//!     }
//!     producer.close(); // for every process: the consumers' iterators end
//! });
//! let mut sum = 0;
//! for item in &mut q {
//!     sum += item?;
//! }
//! assert_eq!(sum, 6);
//! t.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::error::GetError;
use super::{JoinableQueue, Queue, SimpleQueue};
use crate::iter::{Step, iter_methods, sealed::Sealed};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a `get` error means to an iterator.
fn step(e: &GetError) -> Step {
    match e {
        GetError::Closed => Step::End,
        GetError::Empty | GetError::Timeout => Step::Empty,
        // One message lost or unreadable; the next get takes the next one.
        GetError::Lost | GetError::Codec(_) | GetError::BadReference(_) | GetError::SideSegment(_) => Step::Yield,
        GetError::Interrupted | GetError::Corrupted(_) => Step::YieldEnd,
    }
}

impl<T: Serialize + DeserializeOwned> Sealed<()> for Queue<T> {
    type Item = T;
    type Error = GetError;
    fn recv_blocking(&mut self) -> Result<T, GetError> {
        self.get()
    }
    fn recv_now(&mut self) -> Result<T, GetError> {
        self.get_nowait()
    }
    fn step(e: &GetError) -> Step {
        step(e)
    }
}

impl<T: Serialize + DeserializeOwned> Sealed<()> for SimpleQueue<T> {
    type Item = T;
    type Error = GetError;
    fn recv_blocking(&mut self) -> Result<T, GetError> {
        self.get()
    }
    fn recv_now(&mut self) -> Result<T, GetError> {
        self.try_get()
    }
    fn step(e: &GetError) -> Step {
        step(e)
    }
}

/// A joinable queue's iterator takes items as `get` does: call
/// [`task_done`](JoinableQueue::task_done) for each `Ok` item (the errors that cost a
/// message are marked done by `get` itself).
impl<T: Serialize + DeserializeOwned> Sealed<()> for JoinableQueue<T> {
    type Item = T;
    type Error = GetError;
    fn recv_blocking(&mut self) -> Result<T, GetError> {
        self.get()
    }
    fn recv_now(&mut self) -> Result<T, GetError> {
        self.get_nowait()
    }
    fn step(e: &GetError) -> Step {
        step(e)
    }
}

iter_methods!(impl[T: Serialize + DeserializeOwned] Queue<T>);
iter_methods!(impl[T: Serialize + DeserializeOwned] SimpleQueue<T>);
iter_methods!(impl[T: Serialize + DeserializeOwned] JoinableQueue<T>);
