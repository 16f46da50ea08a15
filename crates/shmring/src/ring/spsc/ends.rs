//! The ends of the SPSC ring as kinds of the one end handle
//! [`End`](crate::ring::End): their kind, and their creation (written once for both
//! ends). Each end's own methods and its `Sealed` impl are in `producer.rs` /
//! `consumer.rs`.

use super::RingOptions;
use crate::Result;
use crate::ring::end::{End, EndKind, Sealed};

/// The kind of an SPSC ring end: `SpscEnd<true>` is the producer
/// ([`Producer`](super::Producer) = `End<SpscEnd<true>>`), `SpscEnd<false>` the consumer
/// ([`Consumer`](super::Consumer)).
/// Each role has one holder at a time; see [`End`].
#[derive(Debug)]
pub enum SpscEnd<const PRODUCER: bool> {}

/// Creation, written once for both ends of an SPSC ring.
impl<const P: bool> End<SpscEnd<P>>
where
    SpscEnd<P>: EndKind + Sealed<Params = usize, Options = RingOptions>,
{
    /// Create the named ring `name` of at least `capacity` bytes (rounded up to a power
    /// of two, at least [`MIN_CAPACITY`](super::MIN_CAPACITY)) and attach as this end.
    /// The segment is unlinked when this end drops (unless the options say `keep`).
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_with(name, capacity, &RingOptions::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(name: &str, capacity: usize, opts: &RingOptions) -> Result<Self> {
        Self::create_in(name, capacity, opts)
    }

    /// Attach as this end of the named ring `name`, creating it (of at least `capacity`
    /// bytes) if it does not exist; with `true` if this call created it. The creator
    /// unlinks the name when it drops; a ring of another capacity under the name is
    /// taken as it is (the capacity is the creator's), another kind of segment is
    /// refused as by [`open`](Self::open), and so is a role already held. See
    /// [`shm::open_or_create`](crate::shm::open_or_create).
    ///
    /// ```
    /// use shmring::ring::spsc::{Consumer, Producer};
    /// let name = format!("doc-spsc-ooc-{}", std::process::id());
    /// // Two programs started in any order: whichever comes first creates the ring.
    /// let (mut rx, rx_created) = Consumer::open_or_create(&name, 4096)?;
    /// let (mut tx, tx_created) = Producer::open_or_create(&name, 4096)?;
    /// assert!(rx_created && !tx_created);
    /// tx.send(b"met")?;
    /// assert_eq!(rx.recv()?, b"met");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(name: &str, capacity: usize) -> Result<(Self, bool)> {
        Self::open_or_create_with(name, capacity, &RingOptions::default())
    }

    /// [`open_or_create`](Self::open_or_create) with options.
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &RingOptions) -> Result<(Self, bool)> {
        Self::open_or_create_in(name, capacity, opts)
    }
}
