//! The one handle on an end of a ring: [`End<K>`], generic over the end's [`EndKind`]
//! (the shape of [`sync::Shared<K>`](crate::sync::Shared), itself lock_api's `Mutex<R, T>`
//! over a `RawMutex`).
//!
//! An end differs from a primitive of [`sync`](crate::sync): it claims a *role* in its
//! ring's segment (the one producer or the one consumer of an SPSC ring; one of the
//! parties of an MPMC queue), with a liveness record of its own that it releases when it
//! drops or is handed off; and an SPSC end may live in an in-process heap ring, which has
//! no descriptor. The handle knows segments and roles' life cycle: it creates a ring and
//! claims its role (`create`, `create_with`, `open_or_create`), opens one by name
//! (`open`, `open_with`, `open_wait`), rebuilds an end from a descriptor (`from_fd`,
//! `from_fd_with`), hands it over (`into_fd`, and the one [`Handoff`](crate::handoff::Handoff)
//! impl), clones it where the role allows several holders (`try_clone`, for the kinds that
//! are [`Several`]), names it, and releases its role on drop. The kind knows its ring:
//! which segment and parameters, how the role is claimed, what the end keeps (its
//! cached indices, its wait strategy), how it leaves.
//!
//! Each public end is `End` over its kind and adds only its own methods:
//! [`spsc::Producer`](super::spsc::Producer) is `End<SpscEnd<true>>` (send, claim,
//! flush, ...), [`spsc::Consumer`](super::spsc::Consumer) is `End<SpscEnd<false>>`
//! (recv, read, drain, ...), [`mpmc::Producer`](super::mpmc::Producer) and
//! [`mpmc::Consumer`](super::mpmc::Consumer) are `End<MpmcEnd<true>>` and
//! `End<MpmcEnd<false>>` (push / pop). The creation parameters differ per ring (a
//! capacity; a slot count and a slot size), so `create`, `create_with`,
//! `open_or_create` and `open_or_create_with` are written once per *ring*, for both of
//! its ends, over the generic `create_in` / `open_or_create_in`.
//!
//! # Adding a ring
//!
//! A broadcast ring (one publisher, up to N subscribers, each with a cursor slot) is two
//! more kinds: `BroadcastEnd<true>` (the publisher: one holder, like an SPSC end) and
//! `BroadcastEnd<false>` (a subscriber: a cursor slot claimed like an MPMC party, and
//! [`Several`] so that it can be cloned). Each implements the crate-private `Sealed`
//! (segment kind, hand-off tag, how its role is claimed and left, what the end keeps);
//! `pub type Publisher = End<BroadcastEnd<true>>` and `pub type Subscriber =
//! End<BroadcastEnd<false>>` add `publish` / `recv`; one `impl<const P: bool>
//! End<BroadcastEnd<P>>` adds `create(name, capacity, subscribers)` and its forms. Opening,
//! descriptors, the hand-off, `Debug` and the drop come from here.

use crate::Result;
use crate::shm::find;
use rustix::fd::OwnedFd;
use std::fmt;
use std::time::Duration;

/// The machinery of an [`EndKind`]; nameable only inside the crate, which seals
/// [`EndKind`].
pub trait Sealed: Sized {
    /// The end's view of its ring: the mapping (or heap block) and its role record.
    type Ring;
    /// What the end keeps for itself: cached indices, counters, its wait strategy.
    type State;
    /// How an end is created or opened (segment options and wait strategy).
    type Options: Default;
    /// The ring's creation parameters (a capacity; slot count and size).
    type Params: Copy;
    /// What [`End::into_fd`] returns: `Option<OwnedFd>` where an end may live in heap
    /// memory (no descriptor), else `OwnedFd`.
    type Fd;
    /// The public type's name (for `Debug`).
    const NAME: &'static str;
    /// The tag of a hand-off parcel holding this end.
    #[cfg(not(loom))]
    const HANDOFF: crate::handoff::Kind;

    /// Create the named ring `name` from `params` and claim this end's role in it.
    fn create(name: &str, params: Self::Params, opts: &Self::Options) -> Result<Self::Ring>;

    /// Map the existing named ring `name` and claim this end's role in it.
    fn open(name: &str, opts: &Self::Options) -> Result<Self::Ring>;

    /// Map a ring received as a descriptor and claim this end's role (taking over a role
    /// in transit, where the kind has that state).
    fn from_fd(fd: OwnedFd, opts: &Self::Options) -> Result<Self::Ring>;

    /// Build the end on a ring whose role it holds (reads the shared indices it caches).
    fn build(ring: Self::Ring, opts: &Self::Options) -> Result<End<Self>>
    where
        Self: EndKind;

    /// Leave for a hand-off: publish or release what is pending, mark the role in
    /// transit (or give it up), and take the descriptor; `None` if the end has none
    /// (an in-process ring). The end's drop afterwards does nothing more.
    fn hand_off(end: &mut End<Self>) -> Option<OwnedFd>
    where
        Self: EndKind;

    /// [`Sealed::hand_off`]'s descriptor as [`End::into_fd`] returns it.
    fn fd_out(fd: Option<OwnedFd>) -> Self::Fd;

    /// The end goes away: publish or release what is pending and close the role.
    fn close(end: &mut End<Self>)
    where
        Self: EndKind;

    /// The segment's name (`None` if anonymous or in-process).
    fn name(ring: &Self::Ring) -> Option<&str>;
}

/// A kind of ring end that [`End`] holds: the ends of [`spsc`](super::spsc) and
/// [`mpmc`](super::mpmc) rings. Sealed: only this crate implements it.
pub trait EndKind: Sealed {}

/// The machinery of [`Several`].
pub trait SealedSeveral: Sealed {
    /// Another end of the same role on the same ring, with a role record of its own.
    fn try_clone(end: &End<Self>) -> Result<End<Self>>
    where
        Self: EndKind;
}

/// End kinds whose role admits several holders at once (an MPMC queue's producers and
/// consumers): those ends have [`End::try_clone`].
pub trait Several: EndKind + SealedSeveral {}

/// An end of a ring of kind `K`: the role it claimed in the ring's segment and what it
/// keeps beside it. Each ring end of [`ring`](super) is this handle over its kind; see
/// the [module docs](self).
///
/// The end that created a named ring unlinks the name when it drops (unless its
/// options say `keep`); every end releases its role when it drops.
///
/// ```
/// use shmring::ring::spsc::{Consumer, Producer};
/// let name = format!("doc-end-{}", std::process::id());
/// let mut tx = Producer::create(&name, 4096)?;
/// let mut rx = Consumer::open(&name)?; // usually in another process
/// assert_eq!((tx.name(), rx.name()), (Some(name.as_str()), Some(name.as_str())));
/// tx.send(b"hi")?;
/// assert_eq!(rx.recv()?, b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct End<K: EndKind> {
    /// The ring as this end sees it.
    pub(crate) sh: K::Ring,
    /// What this end keeps for itself.
    pub(crate) st: K::State,
}

impl<K: EndKind> End<K> {
    /// Create the named ring `name` from `params` and build this end on it.
    pub(crate) fn create_in(name: &str, params: K::Params, opts: &K::Options) -> Result<Self> {
        K::build(K::create(name, params, opts)?, opts)
    }

    /// Open the named ring `name`, or create it from `params` if it does not exist; with
    /// whether this end created it.
    pub(crate) fn open_or_create_in(name: &str, params: K::Params, opts: &K::Options) -> Result<(Self, bool)> {
        find::open_or_create(|| Self::create_in(name, params, opts), || Self::open_with(name, opts))
    }

    /// Attach as this end of the existing named ring `name`.
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &K::Options::default())
    }

    /// [`open`](Self::open) with options (the segment's, and this end's wait strategy).
    pub fn open_with(name: &str, opts: &K::Options) -> Result<Self> {
        K::build(K::open(name, opts)?, opts)
    }

    /// [`open`](Self::open), retrying while the ring does not exist yet, for at most
    /// `timeout`; then the last [`Error::NotFound`](crate::Error::NotFound). Any other
    /// error (the role is taken, the segment is of another kind) returns at once. See
    /// [`shm::open_wait`](crate::shm::open_wait) for the retry pace (the ring is found
    /// within a few milliseconds of its creation).
    ///
    /// ```
    /// use shmring::ring::mpmc::{Consumer, Producer};
    /// use std::time::Duration;
    /// let name = format!("doc-end-wait-{}", std::process::id());
    /// let maker = std::thread::spawn({
    ///     let name = name.clone();
    ///     move || {
    ///         std::thread::sleep(Duration::from_millis(20));
    ///         let mut tx = Producer::create(&name, 8, 64).unwrap();
    ///         tx.push(b"late").unwrap();
    ///         tx // keep the ring (and its name) until joined
    ///     }
    /// });
    /// let mut rx = Consumer::open_wait(&name, Duration::from_secs(10))?;
    /// assert_eq!(rx.pop()?, b"late");
    /// drop(maker.join().unwrap());
    /// assert!(Consumer::open_wait("doc-end-never", Duration::from_millis(20)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_wait(name: &str, timeout: Duration) -> Result<Self> {
        Self::open_wait_with(name, timeout, &K::Options::default())
    }

    /// [`open_wait`](Self::open_wait) with options.
    pub fn open_wait_with(name: &str, timeout: Duration, opts: &K::Options) -> Result<Self> {
        find::open_wait(timeout, || Self::open_with(name, opts))
    }

    /// Rebuild this end from a descriptor of its ring's segment, made by
    /// [`into_fd`](Self::into_fd) in another process (inherited or received over
    /// `SCM_RIGHTS`).
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Self::from_fd_with(fd, &K::Options::default())
    }

    /// [`from_fd`](Self::from_fd) with options.
    pub fn from_fd_with(fd: OwnedFd, opts: &K::Options) -> Result<Self> {
        K::build(K::from_fd(fd, opts)?, opts)
    }

    /// Hand this end over: publish (or release) what is pending, mark the role in
    /// transit, and return the descriptor (which keeps the end's liveness lock) for
    /// another process's [`from_fd`](Self::from_fd). An SPSC end returns `None` if its
    /// ring is in-process (heap memory); an MPMC end leaves its party and returns the
    /// descriptor itself. A named ring's creating end does not unlink the name then.
    pub fn into_fd(mut self) -> K::Fd {
        K::fd_out(K::hand_off(&mut self))
    }

    /// The ring's segment name (`None` if anonymous or in-process).
    pub fn name(&self) -> Option<&str> {
        K::name(&self.sh)
    }

    /// Hand this end over as a descriptor, or `None` if it has none (for
    /// [`Handoff`](crate::handoff::Handoff)).
    #[cfg(not(loom))]
    pub(crate) fn take_fd(mut self) -> Option<OwnedFd> {
        K::hand_off(&mut self)
    }
}

impl<K: Several> End<K> {
    /// Another end of the same role on the same ring in this process, with a party of
    /// its own (as another process attaching would have).
    pub fn try_clone(&self) -> Result<Self> {
        K::try_clone(self)
    }
}

impl<K: EndKind> Drop for End<K> {
    fn drop(&mut self) {
        K::close(self);
    }
}

impl<K: EndKind> fmt::Debug for End<K>
where
    K::Ring: fmt::Debug,
    K::State: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::NAME)
            .field("sh", &self.sh)
            .field("st", &self.st)
            .finish()
    }
}
