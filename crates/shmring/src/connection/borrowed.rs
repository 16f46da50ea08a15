//! Receiving without waste: a message read in place ([`MessageRef`], from
//! [`Connection::recv_ref`]), decoded borrowing from the ring (`&str` and `&[u8]`
//! fields cost no allocation); a typed receive into an existing value that reuses its
//! buffers ([`Connection::recv_into`]); and batches ([`Connection::recv_batch`]): the
//! messages there now, handed over in place one after the other, whose ring space is
//! released once per batch, so that a sender sees one index hand-off per batch, not one
//! per message.
//!
//! Over a pipe, a message that travels as one record (a `WHOLE` frame: up to about half
//! the ring) is read where it lies; a chunked one is reassembled into the end's buffer
//! first, as [`Connection::recv_bytes`] does. Over a socket every message is read into
//! the end's buffer, and a batch is one message.
//!
//! A borrowed value cannot outlive its message: [`MessageRef::decode`] ties it to the
//! `MessageRef`, and the message's space goes back to the sender when the `MessageRef`
//! drops. (A closure of the form `|msg: T<'_>|` cannot be written for a generic `T` in
//! today's Rust, hence a guard, and batch closures that take a `MessageRef`.)
//!
//! ```
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Tick<'a> {
//!     seq: u64,
//!     sym: &'a str,
//! }
//!
//! let (mut a, mut b) = shmring::pipe(true)?;
//! for seq in 0..10 {
//!     a.send(&Tick { seq, sym: "EURUSD" })?;
//! }
//! // One message, read in place and decoded without allocating.
//! let msg = b.recv_ref()?;
//! let t: Tick<'_> = msg.decode()?;
//! assert_eq!(t, Tick { seq: 0, sym: "EURUSD" });
//! drop(msg); // its space goes back to the sender
//! // The nine others in one batch: one release of their space.
//! let mut seqs = Vec::new();
//! let n = b.recv_batch(64, |m| seqs.push(m.decode::<Tick<'_>>().unwrap().seq))?;
//! assert_eq!((n, seqs), (9, (1..10).collect::<Vec<_>>()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{ConnError, Connection, Transport};
use crate::codec::{self, CodecError};
use crate::ring::spsc::ReadGrant;
use crate::sync::Wait;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// A received message, in place: in the ring (a pipe's one-record message) or in the
/// end's buffer. Derefs to the message's bytes; [`MessageRef::decode`] decodes them,
/// borrowing where the type does. Dropping it releases the message's ring space.
///
/// ```
/// let (mut a, mut b) = shmring::pipe(true)?;
/// a.send(&("id", 7u8))?;
/// let m = b.recv_ref()?;
/// assert_eq!(m.decode::<(&str, u8)>()?, ("id", 7));
/// assert_eq!(&m[..], [2, b'i', b'd', 7]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MessageRef<'a> {
    inner: Inner<'a>,
}

#[derive(Debug)]
enum Inner<'a> {
    /// A `WHOLE` frame in the ring: the message is its bytes after the kind byte.
    Record(ReadGrant<'a>),
    /// A message in a buffer (reassembled, or read from a socket).
    Bytes(&'a [u8]),
    /// A message in a vector of its own (a queue's message from a side segment).
    Owned(Vec<u8>),
}

impl<'a> MessageRef<'a> {
    /// A message held in a buffer.
    pub(crate) fn bytes(b: &'a [u8]) -> Self {
        MessageRef { inner: Inner::Bytes(b) }
    }

    /// A message held in a vector of its own.
    pub(crate) fn owned(v: Vec<u8>) -> Self {
        MessageRef { inner: Inner::Owned(v) }
    }

    /// A message whose record holds a `WHOLE` frame (checked by the caller).
    pub(crate) fn record(g: ReadGrant<'a>) -> Self {
        MessageRef {
            inner: Inner::Record(g),
        }
    }

    /// Decode the message as one `V`, borrowing from it where `V` does (see
    /// [`codec::decode_borrowed`]). Errors as [`Connection::recv`]'s (the message is
    /// consumed either way).
    #[inline]
    pub fn decode<'b, V: Deserialize<'b>>(&'b self) -> Result<V, CodecError> {
        codec::decode_borrowed(self)
    }

    /// Decode the message into `place`, reusing its buffers where `V` can (see
    /// [`codec::decode_into`]).
    #[inline]
    pub fn decode_into<'b, V: Deserialize<'b>>(&'b self, place: &mut V) -> Result<(), CodecError> {
        codec::decode_into(self, place)
    }
}

impl std::ops::Deref for MessageRef<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.inner {
            // A WHOLE frame has its kind byte (checked when the grant was taken).
            Inner::Record(g) => g.get(1..).unwrap_or_default(),
            Inner::Bytes(b) => b,
            Inner::Owned(v) => v,
        }
    }
}

impl<T: Transport> Connection<T> {
    fn recv_ref_with(&mut self, wait: Wait) -> Result<MessageRef<'_>, ConnError> {
        self.transport.recv_in_place(&mut self.scratch, wait)
    }

    /// Receive the next message in place, waiting while none is there: decode it with
    /// [`MessageRef::decode`] (borrowing, no allocation for `&str` / `&[u8]` fields);
    /// its space is released when the `MessageRef` drops. Errors as
    /// [`Connection::recv_bytes`]'s.
    pub fn recv_ref(&mut self) -> Result<MessageRef<'_>, ConnError> {
        self.recv_ref_with(Wait::Forever)
    }

    /// [`Connection::recv_ref`] without waiting ([`ConnError::WouldBlock`]).
    pub fn try_recv_ref(&mut self) -> Result<MessageRef<'_>, ConnError> {
        self.recv_ref_with(Wait::Now)
    }

    /// [`Connection::recv_ref`], waiting at most `timeout`.
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> Result<MessageRef<'_>, ConnError> {
        self.recv_ref_with(Wait::after(timeout))
    }

    fn recv_into_with<V: DeserializeOwned>(&mut self, place: &mut V, wait: Wait) -> Result<(), ConnError> {
        let m = self.recv_ref_with(wait)?;
        Ok(codec::decode_into(&m, place)?)
    }

    /// Receive a serde value into `place`, waiting while no message is there: its
    /// `String`s and `Vec`s keep their allocations where `V`'s `Deserialize` reuses
    /// them (see [`codec::decode_into`]: a struct derived by serde needs serde_derive's
    /// `deserialize_in_place` feature for that). A message that does not decode is
    /// consumed and reported as [`ConnError::Codec`], `place` then holds a valid but
    /// unspecified value.
    ///
    /// ```
    /// let (mut a, mut b) = shmring::pipe(true)?;
    /// let mut s = String::with_capacity(32);
    /// for word in ["one", "two"] {
    ///     a.send(word)?;
    ///     b.recv_into(&mut s)?; // no allocation: the string is refilled
    ///     assert_eq!(s, word);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_into<V: DeserializeOwned>(&mut self, place: &mut V) -> Result<(), ConnError> {
        self.recv_into_with(place, Wait::Forever)
    }

    /// [`Connection::recv_into`] without waiting ([`ConnError::WouldBlock`]).
    pub fn try_recv_into<V: DeserializeOwned>(&mut self, place: &mut V) -> Result<(), ConnError> {
        self.recv_into_with(place, Wait::Now)
    }

    /// Receive a batch: wait while no message is there, then hand the messages there
    /// now, up to `max` (at least one is handed over), to `f` in place, one after the
    /// other; returns how many. Over a pipe their ring space is released once, after
    /// the last, and one check whether the sender sleeps is made; over a socket a
    /// batch is one message.
    ///
    /// A message that cannot be handed over (over the limit, a bad frame) ends the
    /// batch before it; the next receive reports it. Receives return what was sent
    /// before a sender died or closed, then [`ConnError::Disconnected`], batches too.
    pub fn recv_batch(&mut self, max: usize, f: impl FnMut(MessageRef<'_>)) -> Result<usize, ConnError> {
        self.transport
            .recv_batch(&mut self.scratch, max.max(1), Wait::Forever, f)
    }

    /// [`Connection::recv_batch`] without waiting: [`ConnError::WouldBlock`] if no
    /// whole message is there.
    pub fn try_recv_batch(&mut self, max: usize, f: impl FnMut(MessageRef<'_>)) -> Result<usize, ConnError> {
        self.transport.recv_batch(&mut self.scratch, max.max(1), Wait::Now, f)
    }

    /// [`Connection::recv_batch`], waiting at most `timeout` for the first message.
    pub fn recv_batch_timeout(
        &mut self,
        max: usize,
        timeout: Duration,
        f: impl FnMut(MessageRef<'_>),
    ) -> Result<usize, ConnError> {
        self.transport
            .recv_batch(&mut self.scratch, max.max(1), Wait::after(timeout), f)
    }
}
