//! The typed forms of the broadcast ends: [`TypedPublisher<T>`] and
//! [`TypedSubscriber<T>`] over the codec, with the type identity check.

use super::{Options, Params, Policy, Publisher, RecvError, SendError, Subscriber};
use crate::codec::{self, CodecError};
use crate::shm::Shape;
use crate::{Result, Schema};
use rustix::fd::OwnedFd;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// Why a typed send did not take place. The value stays with the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypedSendError {
    /// The ring refused the encoded message (full, timeout, too large, ...).
    #[error(transparent)]
    Send(#[from] SendError),
    /// The value could not be encoded; nothing was sent.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Why a typed receive returned no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypedRecvError {
    /// The ring had no message for us (empty, timeout, lagged, disconnected, ...).
    #[error(transparent)]
    Recv(#[from] RecvError),
    /// A message was received but is not an encoding of `T` (a peer that opened the
    /// ring unchecked, or a corrupted record). The message is consumed.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// `opts` for a ring of `T`s: `Some(shape)` is recorded at creation and checked at
/// every open; `None` checks nothing.
fn typed_opts(opts: &Options, shape: Option<Shape>) -> Options {
    Options {
        segment: opts.segment.typed(shape),
        ..opts.clone()
    }
}

fn checked<T: Schema>(opts: &Options) -> Options {
    typed_opts(opts, Some(Shape::of::<T>()))
}

/// The publisher of a broadcast ring of `T`s: sends values of `T` encoded with
/// [`codec`](crate::codec) to [`TypedSubscriber<T>`]s.
///
/// As for [`Queue<T>`](crate::Queue), the segment records `T`'s wire shape at creation
/// ([`shm::shape`](crate::shm::shape)) and every typed open, by name or from a
/// descriptor, publisher or subscriber, checks it: another shape is
/// [`Error::WrongType`](crate::Error::WrongType) naming both. The `_unchecked` opens
/// skip the check; the raw [`Publisher`] and [`Subscriber`] open a typed ring as they
/// open any (they carry bytes, not `T`s), and a typed open of a ring made by a raw
/// constructor is refused (it records no type).
///
/// A send encodes the value straight into a record claimed in the ring
/// ([`codec::encoded_len`](crate::codec::encoded_len), then
/// [`codec::encode_to_slice`](crate::codec::encode_to_slice) into the
/// [`WriteGrant`](super::WriteGrant)); a receive decodes the record in place (no copy
/// into a buffer first). In the overwrite policy a record overwritten while it is
/// decoded is discarded (the decoded value with it) and the receive reports
/// [`RecvError::Lagged`], as for the raw [`Subscriber::read`].
///
/// ```
/// use shmring::broadcast::{Policy, TypedPublisher, TypedSubscriber};
/// #[derive(serde::Serialize, serde::Deserialize, shmring::Schema, Debug, PartialEq)]
/// #[postcard(crate = shmring::postcard_schema)]
/// struct Tick { symbol: String, price: i64 }
///
/// let name = format!("doc-bcast-typed-{}", std::process::id());
/// let mut tx = TypedPublisher::<Tick>::create(&name, 1 << 16, 8, Policy::Lossless)?;
/// let mut rx = TypedSubscriber::<Tick>::open(&name)?; // usually in another process
/// tx.send(&Tick { symbol: "ACME".into(), price: 1234 })?;
/// assert_eq!(rx.recv()?, Tick { symbol: "ACME".into(), price: 1234 });
/// // Another type is refused, naming both shapes.
/// assert!(matches!(TypedSubscriber::<u64>::open(&name), Err(shmring::Error::WrongType { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedPublisher<T> {
    inner: Publisher,
    _t: PhantomData<fn(&T)>,
}

impl<T> fmt::Debug for TypedPublisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedPublisher").field("inner", &self.inner).finish()
    }
}

impl<T: Serialize + DeserializeOwned + Schema> TypedPublisher<T> {
    /// Create the named ring `name` for `T`s (see [`Publisher::create`] for the
    /// parameters) and attach as its publisher.
    pub fn create(name: &str, capacity: usize, subscribers: usize, policy: Policy) -> Result<Self> {
        let params = Params {
            capacity,
            subscribers,
            policy,
        };
        Self::create_with(name, params, &Options::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(name: &str, params: Params, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(Publisher::create_with(name, params, &checked::<T>(opts))?))
    }

    /// Attach as the publisher of the named ring `name`, which must have been created
    /// for the same shape of `T` ([`Error::WrongType`](crate::Error::WrongType) if not).
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::default())
    }

    /// [`open`](Self::open) with options.
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(Publisher::open_with(name, &checked::<T>(opts))?))
    }

    /// Rebuild the publisher from a descriptor made by [`into_fd`](Self::into_fd),
    /// checking the type as [`open`](Self::open) does.
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Self::from_fd_with(fd, &Options::default())
    }

    /// [`from_fd`](Self::from_fd) with options.
    pub fn from_fd_with(fd: OwnedFd, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(Publisher::from_fd_with(fd, &checked::<T>(opts))?))
    }

    /// Send `value`, waiting while the ring is full (lossless policy).
    pub fn send(&mut self, value: &T) -> Result<(), TypedSendError> {
        self.send_by(value, |p, len| p.claim(len))
    }

    /// Send `value` if there is space now ([`SendError::Full`] otherwise).
    pub fn try_send(&mut self, value: &T) -> Result<(), TypedSendError> {
        self.send_by(value, |p, len| p.try_claim(len))
    }

    /// Send `value`, waiting at most `timeout` for space.
    pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<(), TypedSendError> {
        self.send_by(value, |p, len| p.claim_timeout(len, timeout))
    }

    /// Encode `value` into a record claimed by `claim` and publish it; an encoding
    /// error drops the grant, which aborts the record.
    fn send_by(
        &mut self,
        value: &T,
        claim: impl FnOnce(&mut Publisher, usize) -> Result<super::WriteGrant<'_>, SendError>,
    ) -> Result<(), TypedSendError> {
        let len = codec::encoded_len(value)?;
        let mut grant = claim(&mut self.inner, len)?;
        let written = codec::encode_to_slice(value, &mut grant)?;
        debug_assert_eq!(written, len, "encoded_len and encode_to_slice agree");
        grant.commit();
        Ok(())
    }
}

impl<T> TypedPublisher<T> {
    fn wrap(inner: Publisher) -> Self {
        TypedPublisher { inner, _t: PhantomData }
    }

    /// Attach as the publisher of the named ring `name` **without checking** the type
    /// it was created for (see [`Queue::open_unchecked`](crate::Queue::open_unchecked)
    /// for when and the risk: garbage or codec errors at the subscribers, never
    /// undefined behaviour).
    pub fn open_unchecked(name: &str, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(Publisher::open_with(name, &typed_opts(opts, None))?))
    }

    /// [`from_fd`](Self::from_fd) **without checking** the type.
    pub fn from_fd_unchecked(fd: OwnedFd, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(Publisher::from_fd_with(fd, &typed_opts(opts, None))?))
    }

    /// The raw publisher (for its statistics, `flush`, or bytes sent by hand).
    pub fn as_raw(&self) -> &Publisher {
        &self.inner
    }

    /// The raw publisher, mutably.
    pub fn as_raw_mut(&mut self) -> &mut Publisher {
        &mut self.inner
    }

    /// Hand the publisher over (see [`Publisher::into_fd`](crate::ring::End::into_fd));
    /// the receiver rebuilds it with [`from_fd`](Self::from_fd).
    pub fn into_fd(self) -> Option<OwnedFd> {
        self.inner.into_fd()
    }
}

/// A subscriber of a broadcast ring of `T`s: decodes the values a
/// [`TypedPublisher<T>`] sends (see there for the type check).
pub struct TypedSubscriber<T> {
    inner: Subscriber,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for TypedSubscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSubscriber").field("inner", &self.inner).finish()
    }
}

impl<T: Serialize + DeserializeOwned + Schema> TypedSubscriber<T> {
    /// Create the named ring `name` for `T`s (see [`Publisher::create`] for the
    /// parameters) and attach as a subscriber.
    pub fn create(name: &str, capacity: usize, subscribers: usize, policy: Policy) -> Result<Self> {
        let params = Params {
            capacity,
            subscribers,
            policy,
        };
        Self::create_with(name, params, &Options::default())
    }

    /// [`create`](Self::create) with options.
    pub fn create_with(name: &str, params: Params, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(Subscriber::create_with(name, params, &checked::<T>(opts))?))
    }

    /// Attach as a subscriber of the named ring `name`, which must have been created
    /// for the same shape of `T` ([`Error::WrongType`](crate::Error::WrongType) if not).
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::default())
    }

    /// [`open`](Self::open) with options (where it starts, how it waits).
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(Subscriber::open_with(name, &checked::<T>(opts))?))
    }

    /// Rebuild a subscriber from a descriptor made by [`into_fd`](Self::into_fd),
    /// checking the type as [`open`](Self::open) does.
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Self::from_fd_with(fd, &Options::default())
    }

    /// [`from_fd`](Self::from_fd) with options.
    pub fn from_fd_with(fd: OwnedFd, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(Subscriber::from_fd_with(fd, &checked::<T>(opts))?))
    }
}

impl<T: DeserializeOwned> TypedSubscriber<T> {
    /// Receive the next value, waiting for it.
    pub fn recv(&mut self) -> Result<T, TypedRecvError> {
        Ok(self.inner.read(codec::decode::<T>)??)
    }

    /// Receive the next value if there is one ([`RecvError::Empty`] otherwise).
    pub fn try_recv(&mut self) -> Result<T, TypedRecvError> {
        Ok(self.inner.try_read(codec::decode::<T>)??)
    }

    /// Receive the next value, waiting at most `timeout` ([`RecvError::Timeout`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, TypedRecvError> {
        Ok(self.inner.read_timeout(timeout, codec::decode::<T>)??)
    }
}

impl<T> TypedSubscriber<T> {
    fn wrap(inner: Subscriber) -> Self {
        TypedSubscriber { inner, _t: PhantomData }
    }

    /// Attach as a subscriber of the named ring `name` **without checking** the type
    /// it was created for (see [`TypedPublisher::open_unchecked`]).
    pub fn open_unchecked(name: &str, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(Subscriber::open_with(name, &typed_opts(opts, None))?))
    }

    /// [`from_fd`](Self::from_fd) **without checking** the type.
    pub fn from_fd_unchecked(fd: OwnedFd, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(Subscriber::from_fd_with(fd, &typed_opts(opts, None))?))
    }

    /// Another subscriber of the same ring, with a slot of its own (see
    /// [`Subscriber::try_clone`](crate::ring::End::try_clone)).
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Self::wrap(self.inner.try_clone()?))
    }

    /// The raw subscriber (its position, `received` and `missed` counts).
    pub fn as_raw(&self) -> &Subscriber {
        &self.inner
    }

    /// The raw subscriber, mutably (to read the bytes of a message in place).
    pub fn as_raw_mut(&mut self) -> &mut Subscriber {
        &mut self.inner
    }

    /// Hand the subscriber over (it leaves its slot; see
    /// [`Subscriber::into_fd`](crate::ring::End::into_fd)); the receiver rebuilds it
    /// with [`from_fd`](Self::from_fd).
    pub fn into_fd(self) -> Option<OwnedFd> {
        self.inner.into_fd()
    }
}

/// A typed publisher and one subscriber (starting where `opts` say) of a new
/// anonymous ring of `T`s (see [`channel_with`](super::channel_with)); the shape is recorded, so a [`TypedSubscriber::from_fd`] of another
/// type in another process is refused.
///
/// ```
/// use shmring::broadcast::{self, Options, Params, Policy};
/// let params = Params { capacity: 4096, subscribers: 4, policy: Policy::Lossless };
/// let (mut tx, mut rx) = broadcast::typed_channel::<(u32, String)>(params, &Options::new())?;
/// tx.send(&(7, "seven".into()))?;
/// assert_eq!(rx.recv()?, (7, "seven".to_string()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn typed_channel<T: Serialize + DeserializeOwned + Schema>(
    params: Params,
    opts: &Options,
) -> Result<(TypedPublisher<T>, TypedSubscriber<T>)> {
    let (p, s) = super::channel_with(params, &checked::<T>(opts))?;
    Ok((TypedPublisher::wrap(p), TypedSubscriber::wrap(s)))
}
