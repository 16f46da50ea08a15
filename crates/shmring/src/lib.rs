//! # shmring
//!
//! Inter-process communication through shared memory: lock-free rings in `mmap`'d
//! memory with futex waits, in the vocabulary of Python's `multiprocessing`.
//!
//! The layers, bottom up:
//!
//! - [`shm`]: named (`/dev/shm`) and anonymous (memfd) segments that start with a
//!   validated header, and the liveness records of the parties attached to them;
//! - [`sync`]: shared futex waits and the spin -> yield -> futex [`WaitStrategy`], and
//!   the process-shared primitives of `multiprocessing` — `Mutex` (Lock), `RLock`,
//!   `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier` — robust to a
//!   holder or party killed while others wait;
//! - [`ring::spsc`]: a single-producer single-consumer byte ring with Agrona-style
//!   records, zero-copy claim/read grants, and crash detection of the peer;
//! - `ring::mpmc`: a multi-producer multi-consumer queue of slots that survives a
//!   party killed in the middle of a push or a pop;
//! - [`value`]: `Value`, `RawValue`, `Array`, `RawArray` — typed shared cells with
//!   lock-free integer operations and torn-free wide values (seqlock);
//! - [`codec`]: how typed messages become bytes (postcard for serde types, `Pod` as is);
//! - `connection`: `pipe(duplex)` -> two `Connection`s (typed `send`/`recv`, any message
//!   size through chunking), and `wait` over many connections (`futex_waitv`);
//! - `queue`: `Queue`, `SimpleQueue`, `JoinableQueue` for any number of producer and
//!   consumer processes;
//! - `select`: one wait over any mix of ring consumers, queues, pipes, sockets and
//!   listeners (`select`, `Selector`); `iter`: every receiving end's `iter()`,
//!   `try_iter()` and `for msg in &mut rx`;
//! - `signal`: signals as events, an `Interrupt` that makes blocking waits return
//!   `Interrupted` (Ctrl+C in `recv`), `notify` (kill) and real-time signals carrying a
//!   value (`queue`, `ValueSignals`);
//! - [`handoff`]: any of these objects sent to another process as descriptors, over a
//!   Unix socket (`SCM_RIGHTS`) or by inheritance to a child;
//! - [`process`]: `Process`, a registered function run in a re-executed copy of the
//!   current program (`multiprocessing.Process` with the spawn start method);
//! - `net`: `Listener`/`Client` with an authkey over Unix, abstract and TCP sockets,
//!   giving socket connections with the methods of a pipe's `Connection` (both
//!   implement `connection::MessageConnection`);
//! - `manager`: Python's `Manager` — a server holding named dicts, lists and
//!   namespaces, and typed proxies calling into it from any process or machine.
//!
//! `docs/python-to-shmring.md` maps each Python `multiprocessing` call to its
//! equivalent.
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
#[cfg(not(loom))]
pub mod connection;
mod error;
#[cfg(not(loom))]
pub mod handoff;
#[cfg(not(loom))]
pub mod iter;
#[cfg(not(loom))]
pub mod manager;
#[cfg(not(loom))]
pub mod net;
pub(crate) mod primitive;
#[cfg(not(loom))]
pub mod process;
#[cfg(not(loom))]
pub mod queue;
pub mod ring;
#[cfg(not(loom))]
pub mod select;
pub mod shm;
#[cfg(not(loom))]
pub mod signal;
pub mod sync;
pub mod value;

#[cfg(not(loom))]
pub use connection::{ConnError, Connection, MessageConnection, pipe, wait};
pub use error::{Error, Result};
#[cfg(not(loom))]
pub use queue::{JoinableQueue, Queue, SimpleQueue};
pub use ring::broadcast;
pub use ring::spsc::{RecvError, SendError};
pub use sync::WaitStrategy;
#[cfg(not(loom))]
pub use value::{Array, RawArray, RawValue, Value};

#[cfg(any(doctest, test))]
mod doctests;

/// The crate of [`Schema`], for the derive's `#[postcard(crate = shmring::postcard_schema)]`
/// attribute (so that users need no dependency of their own on it).
pub use postcard_schema;
/// What a typed object's `T` derives so that its shape can be recorded and checked
/// (see [`shm::shape`]): `#[derive(shmring::Schema)]` with
/// `#[postcard(crate = shmring::postcard_schema)]`.
pub use postcard_schema::Schema;

/// Fuzz entry points: only for the fuzz targets (`--cfg fuzzing`) and this crate's own
/// corpus-replay tests; absent from a user's build.
#[doc(hidden)]
#[cfg(all(not(loom), any(fuzzing, test)))]
pub mod fuzzing;
