//! The ends of the MPMC queue as kinds of the one end handle
//! [`End`](crate::ring::End): their kind, and their creation (written once for both
//! ends). Each end's own methods and its `Sealed` impl are in `producer.rs` /
//! `consumer.rs`.

use super::QueueOptions;
use crate::Result;
use crate::ring::end::{End, EndKind, Sealed};

/// The kind of an MPMC queue end: `MpmcEnd<true>` is a producer
/// ([`Producer`](super::Producer) = `End<MpmcEnd<true>>`), `MpmcEnd<false>` a consumer
/// ([`Consumer`](super::Consumer)).
/// Each role has any number of holders (parties), so both ends have `try_clone`; see
/// [`End`].
#[derive(Debug)]
pub enum MpmcEnd<const PRODUCER: bool> {}

/// Creation, written once for both ends of an MPMC queue.
impl<const P: bool> End<MpmcEnd<P>>
where
    MpmcEnd<P>: EndKind + Sealed<Params = (usize, usize), Options = QueueOptions>,
{
    /// Create the named queue `name` with at least `slots` slots (rounded up to a power
    /// of two) of `slot_size` bytes, and attach as this end. The segment is unlinked
    /// when this end drops (unless the options say `keep`).
    pub fn create(name: &str, slots: usize, slot_size: usize) -> Result<Self> {
        Self::create_with(name, slots, slot_size, &QueueOptions::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(name: &str, slots: usize, slot_size: usize, opts: &QueueOptions) -> Result<Self> {
        Self::create_in(name, (slots, slot_size), opts)
    }

    /// Attach as this end of the named queue `name`, creating it (`slots` slots of
    /// `slot_size` bytes) if it does not exist; with `true` if this call created it
    /// (the creator unlinks the name when it drops). An existing queue is taken with
    /// its creator's slots; another kind of segment is refused as by
    /// [`open`](Self::open). See [`shm::open_or_create`](crate::shm::open_or_create).
    ///
    /// ```
    /// use shmring::ring::mpmc::{Consumer, Producer};
    /// let name = format!("doc-mpmc-ooc-{}", std::process::id());
    /// let (mut tx, created) = Producer::open_or_create(&name, 8, 64)?;
    /// let (mut rx, also) = Consumer::open_or_create(&name, 8, 64)?;
    /// assert!(created && !also);
    /// tx.push(b"job")?;
    /// assert_eq!(rx.pop()?, b"job");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(name: &str, slots: usize, slot_size: usize) -> Result<(Self, bool)> {
        Self::open_or_create_with(name, slots, slot_size, &QueueOptions::default())
    }

    /// [`open_or_create`](Self::open_or_create) with options.
    pub fn open_or_create_with(
        name: &str,
        slots: usize,
        slot_size: usize,
        opts: &QueueOptions,
    ) -> Result<(Self, bool)> {
        Self::open_or_create_in(name, (slots, slot_size), opts)
    }
}
