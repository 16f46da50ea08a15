//! The ends of the broadcast ring as kinds of the one end handle
//! [`End`](crate::ring::End): their kind, and their creation (written once for both
//! ends). Each end's own methods and its `Sealed` impl are in `publisher.rs` /
//! `subscriber.rs`.

use super::{Options, Params, Policy};
use crate::Result;
use crate::ring::end::{End, EndKind, Sealed};

/// The kind of a broadcast ring end: `BroadcastEnd<true>` is the publisher
/// ([`Publisher`](super::Publisher) = `End<BroadcastEnd<true>>`, one holder),
/// `BroadcastEnd<false>` a subscriber ([`Subscriber`](super::Subscriber), one per slot
/// of the table, clonable).
#[derive(Debug)]
pub enum BroadcastEnd<const PUBLISHER: bool> {}

/// Creation, written once for both ends of a broadcast ring.
impl<const P: bool> End<BroadcastEnd<P>>
where
    BroadcastEnd<P>: EndKind + Sealed<Params = Params, Options = Options>,
{
    /// Create the named ring `name` with a record area of at least `capacity` bytes
    /// (rounded up to a power of two, at least [`MIN_CAPACITY`](super::MIN_CAPACITY)),
    /// room for `subscribers` subscribers (1..=[`MAX_SUBSCRIBERS`](super::MAX_SUBSCRIBERS)),
    /// and `policy`; attach as this end. The segment is unlinked when this end drops
    /// (unless the options say `keep`).
    pub fn create(name: &str, capacity: usize, subscribers: usize, policy: Policy) -> Result<Self> {
        Self::create_with(
            name,
            Params {
                capacity,
                subscribers,
                policy,
            },
            &Options::default(),
        )
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(name: &str, params: Params, opts: &Options) -> Result<Self> {
        Self::create_in(name, params, opts)
    }

    /// Attach as this end of the named ring `name`, creating it from `params` if it
    /// does not exist; with `true` if this call created it. A ring of other parameters
    /// under the name is taken as it is (they are the creator's).
    ///
    /// ```
    /// use shmring::broadcast::{Options, Params, Policy, Publisher, Subscriber};
    /// let name = format!("doc-bcast-ooc-{}", std::process::id());
    /// let params = Params { capacity: 4096, subscribers: 4, policy: Policy::Lossless };
    /// let (mut rx, rx_created) = Subscriber::open_or_create(&name, params)?;
    /// let (mut tx, tx_created) = Publisher::open_or_create(&name, params)?;
    /// assert!(rx_created && !tx_created);
    /// tx.send(b"met")?;
    /// assert_eq!(rx.recv()?, b"met");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(name: &str, params: Params) -> Result<(Self, bool)> {
        Self::open_or_create_with(name, params, &Options::default())
    }

    /// [`open_or_create`](Self::open_or_create) with options.
    pub fn open_or_create_with(name: &str, params: Params, opts: &Options) -> Result<(Self, bool)> {
        Self::open_or_create_in(name, params, opts)
    }
}

/// The items of [`Sealed`] that both broadcast end kinds share (the ring, its options
/// and parameters, the descriptor's form; creating, opening and naming the ring),
/// expanded inside each kind's `impl Sealed`.
macro_rules! sealed_common {
    () => {
        type Ring = super::Shared;
        type Options = super::Options;
        type Params = super::Params;
        type Fd = Option<rustix::fd::OwnedFd>;

        fn create(name: &str, params: super::Params, opts: &super::Options) -> crate::Result<super::Shared> {
            super::create_named(name, &params, opts)
        }

        fn open(name: &str, opts: &super::Options) -> crate::Result<super::Shared> {
            super::open_named(name, opts)
        }

        fn from_fd(fd: rustix::fd::OwnedFd, opts: &super::Options) -> crate::Result<super::Shared> {
            super::open_fd(fd, opts)
        }

        fn fd_out(fd: Option<rustix::fd::OwnedFd>) -> Self::Fd {
            fd
        }

        fn name(ring: &super::Shared) -> Option<&str> {
            ring.name()
        }
    };
}
pub(super) use sealed_common;
