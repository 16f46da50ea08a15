//! # shmring
//!
//! Inter-process communication through shared memory: lock-free rings in `mmap`'d
//! memory with futex waits, in the vocabulary of Python's `multiprocessing`.
//!
//! This release holds the foundation layer, the MPMC queue and the synchronization
//! primitives:
//!
//! - [`shm`]: named (`/dev/shm`) and anonymous (memfd) segments that start with a
//!   validated header, and the liveness records of the parties attached to them;
//! - [`sync`]: shared futex waits and the spin -> yield -> futex [`WaitStrategy`];
//! - [`ring::spsc`]: a single-producer single-consumer byte ring with Agrona-style
//!   records, zero-copy claim/read grants, and crash detection of the peer;
//! - `ring::mpmc`: a multi-producer multi-consumer queue of slots that survives a
//!   party killed in the middle of a push or a pop;
//! - [`sync`] also holds the process-shared primitives of `multiprocessing` — `Mutex`
//!   (Lock), `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier` —
//!   robust to a holder or party killed while others wait.
//!
//! ```
//! use shmring::ring::spsc;
//!
//! // Both ends of an anonymous (memfd) ring; hand one to a child with `into_fd`.
//! let (mut tx, mut rx) = spsc::channel(4096)?;
//! tx.send(b"hello")?;
//! assert_eq!(rx.recv()?, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_debug_implementations)]

pub mod codec;
mod error;
pub(crate) mod primitive;
pub mod ring;
pub mod shm;
pub mod sync;
// [connection]
#[cfg(not(loom))]
pub mod queue;
pub mod value;

pub use error::{Error, RecvError, Result, SendError};
pub use sync::WaitStrategy;

#[doc(hidden)]
#[cfg(not(loom))]
pub mod fuzzing;
