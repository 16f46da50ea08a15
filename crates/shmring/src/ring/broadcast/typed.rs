//! The typed forms of the broadcast ends: [`TypedPublisher<T>`] and
//! [`TypedSubscriber<T>`] over the codec, with the type identity check.

use super::{BroadcastEnd, Options, Params, Policy, Publisher, ReadGrant, RecvError, SendError};
use crate::codec::{self, CodecError};
use crate::ring::End;
use crate::ring::end::{EndKind, Sealed};
use crate::shm::Shape;
use crate::sync::Wait;
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

/// A typed end of a broadcast ring of `T`s, written once for both ends:
/// [`TypedPublisher<T>`] is `Typed<BroadcastEnd<true>, T>`, [`TypedSubscriber<T>`] is
/// `Typed<BroadcastEnd<false>, T>`. The opens (by name, from a descriptor, creating,
/// checked or not), the hand-off and the access to the raw end are here; each end adds
/// its sends or receives. Use it through the two aliases:
///
/// ```
/// use shmring::broadcast::{self, Options, Params, Policy, TypedPublisher, TypedSubscriber};
/// let params = Params { capacity: 4096, subscribers: 4, policy: Policy::Overwrite };
/// let (mut tx, rx): (TypedPublisher<u32>, TypedSubscriber<u32>) =
///     broadcast::typed_channel(params, &Options::new())?;
/// let mut rx2 = rx.try_clone()?;
/// tx.send(&7)?;
/// assert_eq!(rx2.recv()?, 7);
/// assert_eq!(tx.as_raw().messages(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Typed<K: EndKind, T> {
    inner: End<K>,
    /// Subscriber: what ended a batch early, reported by the next receive.
    pending: Option<TypedRecvError>,
    _t: PhantomData<fn() -> T>,
}

/// The publisher of a broadcast ring of `T`s: sends values of `T` encoded with
/// [`codec`](crate::codec) to [`TypedSubscriber<T>`]s.
///
/// As for [`Queue<T>`](crate::Queue), the segment records `T`'s wire shape at creation
/// ([`shm::shape`](crate::shm::shape)) and every typed open, by name or from a
/// descriptor, publisher or subscriber, checks it: another shape is
/// [`Error::WrongType`](crate::Error::WrongType) naming both. The `_unchecked` opens
/// skip the check; the raw [`Publisher`] and [`Subscriber`](super::Subscriber) open a typed ring as they
/// open any (they carry bytes, not `T`s), and a typed open of a ring made by a raw
/// constructor is refused (it records no type).
///
/// A send encodes the value straight into a record claimed in the ring
/// ([`codec::encoded_len`](crate::codec::encoded_len), then
/// [`codec::encode_to_slice`](crate::codec::encode_to_slice) into the
/// [`WriteGrant`](super::WriteGrant)); a receive decodes the record in place (no copy
/// into a buffer first). In the overwrite policy a record overwritten while it is
/// decoded is discarded (the decoded value with it) and the receive reports
/// [`RecvError::Lagged`], as for the raw [`Subscriber::read`](super::Subscriber::read).
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
pub type TypedPublisher<T> = Typed<BroadcastEnd<true>, T>;

/// A subscriber of a broadcast ring of `T`s: decodes the values a
/// [`TypedPublisher<T>`] sends (see there for the type check).
///
/// ```
/// use shmring::broadcast::{self, Options, Params, Policy};
/// let params = Params { capacity: 4096, subscribers: 4, policy: Policy::Lossless };
/// let (mut tx, mut rx) = broadcast::typed_channel::<(String, u32)>(params, &Options::new())?;
/// tx.send(&("one".into(), 1))?;
/// tx.send(&("two".into(), 2))?;
/// tx.send(&("three".into(), 3))?;
/// // Borrowed decode: the `&str` points into the ring (lossless), no allocation.
/// let m = rx.recv_ref()?;
/// assert_eq!(m.decode::<(&str, u32)>()?, ("one", 1));
/// drop(m);
/// // A batch: every message there now (at most 8), one wait at most.
/// let mut got = Vec::new();
/// assert_eq!(rx.recv_batch(8, |v| got.push(v))?, 2);
/// assert_eq!(got, [("two".to_string(), 2), ("three".to_string(), 3)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type TypedSubscriber<T> = Typed<BroadcastEnd<false>, T>;

impl<K: EndKind, T> fmt::Debug for Typed<K, T>
where
    End<K>: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Typed")
            .field("inner", &self.inner)
            .field("pending", &self.pending)
            .finish()
    }
}

/// The opens, written once for both ends.
impl<K, T: Serialize + DeserializeOwned + Schema> Typed<K, T>
where
    K: EndKind + Sealed<Params = Params, Options = Options, Fd = Option<OwnedFd>>,
{
    /// Create the named ring `name` for `T`s (see [`Publisher::create`] for the
    /// parameters) and attach as this end.
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
        Ok(Self::wrap(End::create_in(name, params, &checked::<T>(opts))?))
    }

    /// Attach as this end of the named ring `name`, creating it for `T`s from
    /// `params` if it does not exist; with `true` if this call created it. A ring that
    /// exists must have been created for the same shape of `T`
    /// ([`Error::WrongType`](crate::Error::WrongType) if not).
    ///
    /// ```
    /// use shmring::broadcast::{Params, Policy, TypedPublisher, TypedSubscriber};
    /// let name = format!("doc-bcast-typed-ooc-{}", std::process::id());
    /// let params = Params { capacity: 4096, subscribers: 4, policy: Policy::Lossless };
    /// let (mut rx, rx_created) = TypedSubscriber::<u64>::open_or_create(&name, params)?;
    /// let (mut tx, tx_created) = TypedPublisher::<u64>::open_or_create(&name, params)?;
    /// assert!(rx_created && !tx_created);
    /// tx.send(&42)?;
    /// assert_eq!(rx.recv()?, 42);
    /// assert!(TypedSubscriber::<i8>::open_or_create(&name, params).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(name: &str, params: Params) -> Result<(Self, bool)> {
        Self::open_or_create_with(name, params, &Options::default())
    }

    /// [`open_or_create`](Self::open_or_create) with options.
    pub fn open_or_create_with(name: &str, params: Params, opts: &Options) -> Result<(Self, bool)> {
        let (end, created) = End::open_or_create_in(name, params, &checked::<T>(opts))?;
        Ok((Self::wrap(end), created))
    }

    /// Attach as this end of the named ring `name`, which must have been created for
    /// the same shape of `T` ([`Error::WrongType`](crate::Error::WrongType) if not).
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &Options::default())
    }

    /// [`open`](Self::open) with options (how it waits; where a subscriber starts).
    pub fn open_with(name: &str, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(End::open_with(name, &checked::<T>(opts))?))
    }

    /// Rebuild this end from a descriptor made by [`into_fd`](Self::into_fd),
    /// checking the type as [`open`](Self::open) does.
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        Self::from_fd_with(fd, &Options::default())
    }

    /// [`from_fd`](Self::from_fd) with options.
    pub fn from_fd_with(fd: OwnedFd, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(End::from_fd_with(fd, &checked::<T>(opts))?))
    }
}

/// What needs no bound on `T`, written once for both ends.
impl<K, T> Typed<K, T>
where
    K: EndKind + Sealed<Params = Params, Options = Options, Fd = Option<OwnedFd>>,
{
    fn wrap(inner: End<K>) -> Self {
        Typed {
            inner,
            pending: None,
            _t: PhantomData,
        }
    }

    /// Attach as this end of the named ring `name` **without checking** the type it
    /// was created for (see [`Queue::open_unchecked`](crate::Queue::open_unchecked) for
    /// when and the risk: garbage or codec errors at the subscribers, never undefined
    /// behaviour).
    pub fn open_unchecked(name: &str, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(End::open_with(name, &typed_opts(opts, None))?))
    }

    /// [`from_fd`](Self::from_fd) **without checking** the type.
    pub fn from_fd_unchecked(fd: OwnedFd, opts: &Options) -> Result<Self> {
        Ok(Self::wrap(End::from_fd_with(fd, &typed_opts(opts, None))?))
    }

    /// The raw end (a publisher's `flush` and statistics; a subscriber's position,
    /// `received` and `missed` counts).
    pub fn as_raw(&self) -> &End<K> {
        &self.inner
    }

    /// The raw end, mutably (bytes sent by hand, or a message's bytes read in place).
    pub fn as_raw_mut(&mut self) -> &mut End<K> {
        &mut self.inner
    }

    /// Hand this end over (see [`End::into_fd`]; a subscriber leaves its slot); the
    /// receiver rebuilds it with [`from_fd`](Self::from_fd).
    pub fn into_fd(self) -> Option<OwnedFd> {
        self.inner.into_fd()
    }
}

impl<T: Serialize> Typed<BroadcastEnd<true>, T> {
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

impl<T: DeserializeOwned> Typed<BroadcastEnd<false>, T> {
    /// Receive the next value, waiting for it.
    pub fn recv(&mut self) -> Result<T, TypedRecvError> {
        self.recv_with(Wait::Forever)
    }

    /// Receive the next value if there is one ([`RecvError::Empty`] otherwise).
    pub fn try_recv(&mut self) -> Result<T, TypedRecvError> {
        self.recv_with(Wait::Now)
    }

    /// Receive the next value, waiting at most `timeout` ([`RecvError::Timeout`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, TypedRecvError> {
        self.recv_with(Wait::after(timeout))
    }

    fn recv_with(&mut self, wait: Wait) -> Result<T, TypedRecvError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        Ok(self.inner.read_wait(wait, codec::decode::<T>)??)
    }

    /// Receive a batch: wait while no message is there, then decode the messages
    /// there now, up to `max` (at least one), and hand them to `f` one after the
    /// other; returns how many. Each value is handed over only after its record was
    /// found intact (overwrite policy), so `f` never sees a torn one.
    ///
    /// An error after the first value ([`RecvError::Lagged`], a message that does not
    /// decode, a disconnect) ends the batch before it, and the next receive reports
    /// it. Before the first value, the error is returned as
    /// [`recv`](Self::recv) returns it.
    pub fn recv_batch(&mut self, max: usize, f: impl FnMut(T)) -> Result<usize, TypedRecvError> {
        self.batch_with(max, Wait::Forever, f)
    }

    /// [`recv_batch`](Self::recv_batch) without waiting ([`RecvError::Empty`] if no
    /// message is there).
    pub fn try_recv_batch(&mut self, max: usize, f: impl FnMut(T)) -> Result<usize, TypedRecvError> {
        self.batch_with(max, Wait::Now, f)
    }

    /// [`recv_batch`](Self::recv_batch), waiting at most `timeout` for the first value.
    pub fn recv_batch_timeout(
        &mut self,
        max: usize,
        timeout: Duration,
        f: impl FnMut(T),
    ) -> Result<usize, TypedRecvError> {
        self.batch_with(max, Wait::after(timeout), f)
    }

    fn batch_with(&mut self, max: usize, wait: Wait, mut f: impl FnMut(T)) -> Result<usize, TypedRecvError> {
        f(self.recv_with(wait)?);
        let mut n = 1;
        while n < max {
            match self.recv_with(Wait::Now) {
                Ok(v) => f(v),
                Err(TypedRecvError::Recv(RecvError::Empty)) => break,
                Err(e) => {
                    self.pending = Some(e);
                    break;
                }
            }
            n += 1;
        }
        Ok(n)
    }
}

impl<T> Typed<BroadcastEnd<false>, T> {
    fn recv_ref_with(&mut self, wait: Wait) -> Result<ReadGrant<'_>, TypedRecvError> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        Ok(self.inner.read_ref_with(wait)?)
    }

    /// Receive the next message without decoding it yet, waiting for it: decode it
    /// with [`ReadGrant::decode`], borrowing where the type does (`&str` and `&[u8]`
    /// fields of a borrowed form of `T` point into the message, no allocation), as
    /// [`Connection::recv_ref`](crate::connection::Connection::recv_ref) does.
    ///
    /// In the lossless policy the message is read in place in the ring (zero-copy):
    /// the record stays reserved while the [`ReadGrant`] lives and is given back to the
    /// publisher when it drops (a publisher that filled the rest of the ring waits for
    /// it meanwhile). In the overwrite policy the bytes are copied once, after the
    /// record was found intact, into a buffer this subscriber keeps and reuses: the
    /// publisher never waits there, so it could rewrite a record in the ring under a
    /// borrow and the caller would see it torn. Decoding it as another type than `T`'s
    /// forms is the caller's affair (codec errors, never undefined behaviour).
    pub fn recv_ref(&mut self) -> Result<ReadGrant<'_>, TypedRecvError> {
        self.recv_ref_with(Wait::Forever)
    }

    /// [`recv_ref`](Self::recv_ref) if there is a message now ([`RecvError::Empty`]
    /// otherwise).
    pub fn try_recv_ref(&mut self) -> Result<ReadGrant<'_>, TypedRecvError> {
        self.recv_ref_with(Wait::Now)
    }

    /// [`recv_ref`](Self::recv_ref), waiting at most `timeout` ([`RecvError::Timeout`]).
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_>, TypedRecvError> {
        self.recv_ref_with(Wait::after(timeout))
    }

    /// Another subscriber of the same ring, with a slot of its own (see
    /// [`Subscriber::try_clone`](crate::ring::End::try_clone)).
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Self::wrap(self.inner.try_clone()?))
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
