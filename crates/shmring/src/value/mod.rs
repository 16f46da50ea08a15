//! Typed shared cells: Python's `multiprocessing.Value`, `RawValue`, `Array` and
//! `RawArray` as [`Value<T>`], [`RawValue<T>`], [`Array<T>`] and [`RawArray<T>`], each in
//! a segment of its own (`create`/`open` by name, `anonymous` + `from_fd` to hand to a
//! child), for any [`bytemuck::Pod`] `T` that also derives [`Schema`](crate::Schema):
//! the shape of `T` (schema, size, alignment) is recorded in the segment, and opening
//! with a `T` of another shape is [`Error::WrongType`](crate::Error::WrongType) (see
//! [`shm::shape`](crate::shm::shape); `open_unchecked` skips the check). `usize` and
//! `isize` have no `Schema` (their size depends on the platform): use `u64` / `i64`.
//!
//! # Storage and algorithms
//!
//! Every element is stored so that each access is atomic (no data race, even with a
//! faulty peer):
//!
//! - **Narrow** types (up to 8 bytes) live in the atomic word of their width: a `u32` in
//!   an `AtomicU32`, a `u64`/`f64` in an `AtomicU64`, an `[u8; 3]` in an
//!   `AtomicU32` padded with a zero byte, a `[u8; 6]` in a padded `AtomicU64`; `u8` and
//!   `u16` in a lane of an `AtomicU32` (the facade has 32- and 64-bit atomics only). A
//!   load or a store is one atomic access; the [`Integer`] types also get lock-free
//!   `fetch_add`, `fetch_sub`, `fetch_and`, `fetch_or`, `fetch_xor`, `swap`,
//!   `compare_exchange`, `fetch_max` and `fetch_min` (hardware read-modify-writes, or a
//!   compare-and-swap loop on the word for lanes and for max/min). Orderings: loads
//!   Acquire, stores Release, read-modify-writes AcqRel — a load that sees a store also
//!   sees what the storing thread wrote before it.
//! - **Wide** types (more than 8 bytes) live in 64-bit atomic words protected by a
//!   **seqlock** ([`RawSeqLock`]), so readers never block writers and never see a torn
//!   value. The fence placement is that of Boehm, "Can seqlocks get along with
//!   programming language memory models?" (MSPC 2012), figure 6:
//!
//! ```text
//! writer (holds the cell's RawMutex)           reader
//! s = seq (Relaxed)                            s1 = seq.load(Acquire)         (R1)
//! seq.store(s | 1, Relaxed)            (W1)    if s1 is odd: retry
//! fence(Release)                       (W2)    copy the words (Relaxed loads) (R2)
//! store the words (Relaxed)            (W3)    fence(Acquire)                 (R3)
//! seq.store((s | 1) + 1, Release)      (W4)    s2 = seq.load(Relaxed)         (R4)
//!                                              if s1 != s2: retry
//! ```
//!
//!   If R2 read any word written by W3, the fences W2/R3 synchronize, so W1
//!   happens-before R4, which sees an odd or a later value: the reader retries. If R1
//!   saw W4's value, W3 happens-before R2. Either way an accepted copy is one complete
//!   write. Writers serialize on the cell's robust [`RawMutex`](crate::sync::RawMutex);
//!   the sequence is 64 bits, so it does not wrap around during a stalled read.
//!
//! Arrays store elements the same way, one after the other at the stride of their
//! storage, from an 8-byte aligned start:
//!
//! | size of `T` | stride | stored as                                                 |
//! |-------------|--------|-----------------------------------------------------------|
//! | 1, 2        | size   | a lane of the naturally aligned `AtomicU32` that holds it |
//! | 3, 4        | 4      | one `AtomicU32` (a 3-byte `T` padded with a zero byte)    |
//! | 5..=8       | 8      | one `AtomicU64` (padded with zero bytes)                  |
//! | > 8         | size rounded up to 8 | `AtomicU64` words, under the seqlock        |
//!
//! A value is an array of one element: the segment of a [`Value<T>`] is that of an
//! [`Array<T>`] of length 1 (the seqlock on a line of its own, then the element), under
//! a segment kind of its own, so that neither opens as the other; its `load`, `store`,
//! `fetch_*` and guard are the array's element code at index 0. One seqlock covers a
//! whole array:
//! [`Array::to_vec`] is a consistent snapshot with respect to every write that goes
//! through the array's lock (wide elements, `copy_from_slice`, guards); each lock-free
//! element write is atomic on its own.
//!
//! # The sequence word
//!
//! `seq` (`AtomicU64`), beside the lock and a `torn` word in every cell:
//!
//! | value | meaning                                         | written by                     |
//! |-------|-------------------------------------------------|--------------------------------|
//! | even  | no write section open: the words are one write | W4 (Release), a repair         |
//! | odd   | a write section is open: readers retry          | W1 (Relaxed), by a lock holder |
//!
//! `torn` (`AtomicU32`): 0 whole; 1 a writer died inside a write section (set by the
//! repair, cleared by a write that replaces every word: `store`, `copy_from_slice`, a
//! guard's write-back after `mark_consistent`). It is written only inside sections or
//! repairs, so readers see it consistently with the words they return.
//!
//! # A writer killed mid-store
//!
//! A writer killed between W1 and W4 leaves the sequence odd and the lock held by a
//! dead thread. Readers retry about 30 times (spinning, then yielding), then take the
//! lock themselves: the lock sleeps while its holder is alive (a stalled writer costs
//! readers no CPU) and checks the holder's liveness every
//! [`LIVENESS_INTERVAL`](crate::sync::LIVENESS_INTERVAL); a dead holder's lock is taken
//! over, and whoever takes it over (reader or writer) **repairs** the cell: it sets
//! `torn` and makes the sequence even again (Release). From then on:
//!
//! - [`Value::load`] returns the words as the dead writer left them (some of its new
//!   words, the rest of the previous value) — without waiting;
//! - [`Value::load_checked`] and [`Array::to_vec_checked`] return `Err(`[`Torn`]`(value))`
//!   carrying the same words, and [`Value::is_torn`] is `true`, for every reader,
//!   until a complete write (for a value: the next `store`) clears the flag.
//!
//! Narrow cells cannot be torn: their store is a single atomic access.
//!
//! # States the protocol never reaches
//!
//! | state | found by | result |
//! |-------|----------|--------|
//! | `seq` odd, the writer lock held by a dead thread (a writer killed mid-store) | a reader after ~30 failed attempts (it takes the lock), any writer | repaired: sequence made even, `torn` set (the loss is counted there: [`Torn`], `is_torn`) |
//! | `seq` odd, the writer lock free (no writer can be inside a section: a scribbled sequence) | the same | repaired the same way, flagged torn |
//! | `seq` odd, the lock held by the reading thread itself (a guard of its own is open around the read) | the reader | repaired at once and read |
//! | `seq` odd when a writer opens its section | that writer | its section closes it even; what the open section wrote is unknown, so `torn` is set unless the write replaces every word |
//! | the writer lock word naming a dead thread, or any `state`/`depth` word | see [`mutex`](crate::sync::mutex)'s docs | recovered |
//! | `torn` not 0 or 1 | every reader | torn (any non-zero value) |
//! | a poisoned mapping (a peer resized the segment) | nobody: zeros are a valid, even, unlocked cell; no call waits on it | the private copy's values; [`Value::is_poisoned`](crate::sync::Shared::is_poisoned) tells |
//!
//! Every one ends within the reader's spin-then-yield budget plus one liveness interval
//! of sleep on the lock. Not detectable, and so waited for: a writer lock word naming
//! another live thread (it looks like a stalled writer).
//!
//! # Locks and the `Raw` forms
//!
//! [`Value`] and [`Array`] have a lock, like Python's `Value(..., lock=True)`:
//! [`Value::get_lock`] and [`Array::lock`] give a guard for compound updates, and the
//! plain writes (`store`, `set`, `copy_from_slice`) take the lock too, so they are
//! serialized with guards. The atomic operations (`fetch_*`, `swap`,
//! `compare_exchange`, and an array's `load`/`store` of integer elements) never take
//! it, and readers take it only in the slow path above. A guard works on a copy taken
//! when it locks and writes back the elements it changed when it drops (inside one
//! write section): an atomic operation by another party on the same element in between
//! is overwritten, so use either guards or atomic operations for one element, not
//! both. A guard holder killed before its guard drops changes nothing.
//!
//! [`RawValue`] and [`RawArray`] have no user-visible lock: every narrow operation is
//! lock-free; writes of wide elements (and `copy_from_slice`) still serialize on the
//! cell's internal writer lock — held only for the copy, never across user code — so
//! concurrent writers are safe and a dead one is recovered as above.
//!
//! ```
//! use shmring::value::{Array, Value};
//!
//! let hits = Value::anonymous(0u64)?;           // hand to a child: `as_fd` + `from_fd`
//! hits.fetch_add(1);
//! let pos = Value::anonymous([0.0f64; 3])?;     // 24 bytes: a seqlock
//! pos.store([1.0, 2.0, 3.0]);
//! assert_eq!(pos.load(), [1.0, 2.0, 3.0]);
//! let a = Array::anonymous(&[1u32, 2, 3])?;
//! a.fetch_add(2, 10)?;
//! assert_eq!(a.to_vec(), [1, 2, 13]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The raw algorithm (compiles under loom).
mod seqlock;
pub use seqlock::{RawSeqLock, SeqWriteGuard, Torn};

#[cfg(not(loom))]
mod array;
#[cfg(not(loom))]
mod cell;
#[cfg(not(loom))]
mod elems;
#[cfg(not(loom))]
mod store;

// The handles (segments): not under loom.
#[cfg(not(loom))]
pub use self::{
    array::{Array, ArrayGuard, RawArray},
    cell::{RawValue, Value, ValueGuard, ValueKind},
    elems::Integer,
    store::{ArrayError, ArrayKind},
};
