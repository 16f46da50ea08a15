//! Waiting and process-shared synchronization.
//!
//! - [`futex`]: shared futex wait/wake; [`WaitStrategy`] and the waiter protocol of the
//!   rings (spin -> yield -> futex, no syscall when nobody sleeps).
//! - The primitives of Python's `multiprocessing`, living in shared memory and usable
//!   from any number of processes: [`Mutex`] (`Lock`), [`RLock`], [`Semaphore`],
//!   [`BoundedSemaphore`], [`Event`], `Condition`, [`Barrier`]. Each is a
//!   `#[repr(C)]` state that lives in a segment of its own (`create`/`open` by name,
//!   `anonymous` + `from_fd` to hand to a child), and the raw forms ([`RawMutex`],
//!   [`RawSemaphore`], [`RawEvent`], ...)
//!   can be embedded in your own shared `#[repr(C)]` struct (all-zero bytes are a valid
//!   initial state unless the type says otherwise).
//!
//! # Raw algorithm, one handle
//!
//! Each primitive is a raw algorithm over its state words (`RawSemaphore` and its state
//! table in `semaphore.rs`, and so on; these files compile under loom) and one generic
//! handle, [`Shared<K>`], which knows segments: `create` / `create_with` / `anonymous` /
//! `open` / `open_with` / `from_fd` / `try_clone` / `keep` / `name` / `as_fd` and the
//! [hand-off](crate::handoff) are written once, in `handle.rs`, for every [`Kind`]. The
//! public types are that handle over their kind ([`Semaphore`] is
//! `Shared<SemaphoreKind<false>>`, [`Mutex<T>`] is `Shared<MutexKind<T>>`, ...) and add
//! only their own methods, in the `handle.rs` beside each algorithm.
//!
//! A new kind of shared object adds: its raw algorithm (a `#[repr(C)]` state, in a file
//! of its own), an uninhabited kind type implementing [`Kind`] and the crate's sealed
//! trait behind it (segment kind, header parameters, set-up and validation of the raw
//! state, what a handle keeps), a type alias over [`Shared`], its own methods, and a
//! tag in [`handoff::Kind`](crate::handoff::Kind).
//!
//! # Robustness
//!
//! A lock records its holder as a thread id plus that thread's start time (see
//! `owner.rs` for why this and not the kernel's robust-futex list). A holder that dies —
//! `SIGKILL` included — is detected by the next locker within
//! [`LIVENESS_INTERVAL`] of sleep, which takes the lock and is
//! told so ([`OwnerDied`], carrying the guard). A barrier party that dies while others
//! wait breaks the barrier ([`BarrierError::Broken`]). Parties must share a pid
//! namespace; segments created here check it when opened.
//!
//! Semaphores are not robust to a holder dying: a permit taken by a process that is then
//! killed is lost, as with Python's and POSIX semaphores (a semaphore does not know who
//! holds its permits). Use a [`Mutex`] when a holder's death must be detected.

mod deadline;
pub mod futex;
pub(crate) mod interrupt;
pub(crate) mod owner;
pub(crate) mod wait;
pub(crate) use deadline::Wait;
pub(crate) use wait::{Check, WaitEnd, Waiter};
pub use wait::{Interrupted, LIVENESS_INTERVAL, WaitStrategy, WaitWord};

// The raw algorithms (each compiles under loom, handle parts gated inside).
pub mod barrier;
pub mod condvar;
pub mod event;
pub mod mutex;
pub mod semaphore;

pub use barrier::{BarrierError, BarrierWaitResult, RawBarrier};
pub use condvar::RawCondvar;
pub use event::RawEvent;
pub use mutex::{LockError, LockResult, OwnerDied, RawMutex};
pub use semaphore::{AcquireError, RawSemaphore, ReleaseError};

// The handle that knows segments, and the primitives in segments of their own.
#[cfg(not(loom))]
pub(crate) mod handle;
#[cfg(not(loom))]
pub(crate) mod shared;
#[cfg(not(loom))]
mod unchecked;
#[cfg(not(loom))]
pub use self::{
    barrier::{Barrier, BarrierKind},
    condvar::{Condition, ConditionGuard, ConditionKind, WaitTimeoutResult},
    event::{Event, EventKind},
    handle::{Kind, Shared},
    mutex::{Mutex, MutexGuard, MutexKind, RLock, RLockGuard, RLockKind},
    semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard, SemaphoreKind},
};
