//! [`Connection`]: one end of a message connection over any [`Transport`] — the sends
//! and receives (bytes, serde values, plain-old-data values; blocking, `try_` and
//! `_timeout` forms), `poll` and `close`, written once.

use super::pipe::PipeTransport;
use super::{ConnError, Transport};
use crate::codec;
use crate::sync::Wait;
use bytemuck::Pod;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// A typed receive keeps its decoding buffer between calls unless it grew past this.
const SCRATCH_KEEP: usize = 1 << 20;

/// One end of a connection: sends and receives whole messages — bytes, serde values or
/// plain-old-data values — of any size up to its limit, over a [`Transport`]: a
/// shared-memory pipe ([`PipeTransport`], the default: see the [module docs](super) for
/// the frame format and [`super::wait`] for waiting on many) or a stream socket
/// ([`SocketConnection`](crate::net::SocketConnection), `Connection<SocketTransport>`).
///
/// Sends and receives take `&mut self`; an end may move to another thread (`Send`) or,
/// as descriptors, to another process ([`Connection::into_fds`] for a pipe end, a
/// [`Handoff`](crate::handoff::Handoff) for either). Dropping an end (or
/// [`Connection::close`]) closes it: the peer receives what was sent, then
/// [`ConnError::Disconnected`].
///
/// ```
/// use shmring::connection::{Connection, ConnError};
/// use std::time::Duration;
///
/// let (mut a, mut b) = shmring::connection::pipe(true)?;
/// a.send(&vec![1u64, 2, 3])?;
/// assert_eq!(b.recv::<Vec<u64>>()?, [1, 2, 3]);
/// b.send_pod(&[0.5f32; 4])?;
/// assert_eq!(a.recv_pod::<[f32; 4]>()?, [0.5; 4]);
/// assert!(!a.poll(Some(Duration::ZERO))?);
/// assert_eq!(a.recv_bytes_timeout(Duration::from_millis(1)), Err(ConnError::Timeout));
/// b.close();
/// assert!(a.poll(None)?); // ready: the receive reports the closed peer
/// assert_eq!(a.recv_bytes(), Err(ConnError::Disconnected));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Connection<T: Transport = PipeTransport> {
    /// What carries the messages.
    pub(crate) transport: T,
    /// The encoding buffer of typed sends and the decoding buffer of typed receives.
    pub(super) scratch: Vec<u8>,
    /// The encoded lengths of the last two typed sends that counted theirs (0: none
    /// yet, or a guess just missed). When they are equal, the next typed send guesses the same length and skips
    /// the counting pass (see `send_value`).
    last_lens: [usize; 2],
}

impl<T: Transport> std::fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.transport.fmt(f)
    }
}

impl<T: Transport> Connection<T> {
    /// An end over `transport`.
    pub(crate) fn from_transport(transport: T) -> Self {
        Connection {
            transport,
            scratch: Vec::new(),
            last_lens: [0; 2],
        }
    }

    /// Close this end (as dropping it does): the peer receives what was sent, then
    /// [`ConnError::Disconnected`]; every later operation here returns
    /// [`ConnError::Closed`]. A message whose sending stopped half-way is dropped by the
    /// peer.
    pub fn close(&mut self) {
        self.transport.close();
        self.scratch = Vec::new();
    }

    /// Whether [`Connection::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.transport.is_closed()
    }

    /// Whether this end can receive (Python's `readable`): false for the send-only end
    /// of a one-way pipe; always true for a socket.
    pub fn readable(&self) -> bool {
        self.transport.readable()
    }

    /// Whether this end can send (Python's `writable`): false for the receive-only end
    /// of a one-way pipe; always true for a socket.
    pub fn writable(&self) -> bool {
        self.transport.writable()
    }

    /// The largest message this end sends or accepts
    /// ([`ConnectionOptions::max_message_len`](super::ConnectionOptions::max_message_len)
    /// for a pipe, [`NetOptions::max_message_len`](crate::net::NetOptions::max_message_len)
    /// for a socket).
    pub fn max_message_len(&self) -> usize {
        self.transport.max_message_len()
    }

    // -- sending ---------------------------------------------------------------------

    /// Send the bytes of `msg` as one message, waiting while the ring (or socket) is
    /// full.
    #[inline]
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), ConnError> {
        self.transport.send_message(msg, Wait::Forever)
    }

    /// Send `msg` without waiting: [`ConnError::WouldBlock`] if the ring has no room for
    /// all of it now (and the peer receives nothing of it). A message larger than the
    /// ring's free space only goes through while the peer is receiving. A socket gives
    /// up only while the socket takes none of it (see
    /// [`SocketConnection`](crate::net::SocketConnection)).
    #[inline]
    pub fn try_send_bytes(&mut self, msg: &[u8]) -> Result<(), ConnError> {
        self.transport.send_message(msg, Wait::Now)
    }

    /// Send `msg`, waiting at most `timeout` in all ([`ConnError::Timeout`]: the peer
    /// receives nothing of it). A socket waits at most `timeout` for its first bytes
    /// (see [`SocketConnection`](crate::net::SocketConnection)).
    #[inline]
    pub fn send_bytes_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), ConnError> {
        self.transport.send_message(msg, Wait::after(timeout))
    }

    fn send_value<V: Serialize + ?Sized>(&mut self, value: &V, wait: Wait) -> Result<(), ConnError> {
        // Closed or wrong direction: say so before encoding.
        self.transport.check_send()?;
        // A typed stream whose last two messages had the same length (a stream of one
        // fixed-size shape, the common case): claim that length without waiting and
        // encode straight into it, without the counting pass. A message of another
        // length (or no space now) sends nothing there and goes the exact way below.
        let [a, b] = self.last_lens;
        let guessed = a == b && a != 0;
        if guessed {
            let written = |out: &mut [u8]| codec::encode_to_slice(value, out).is_ok_and(|n| n == out.len());
            if self.transport.send_guessed(a, written) {
                return Ok(());
            }
        }
        // Straight into the ring's claimed space when the message is one record: its
        // exact length first (a counting pass, no allocation), then the encoding.
        let len = codec::encoded_len(value)?;
        // After a miss (another length, or no space now), the next send does not guess:
        // a ring that stays full, or lengths that keep changing, cost a failed try on
        // at most every other send.
        self.last_lens = if guessed { [0, len] } else { [b, len] };
        let written = |out: &mut [u8]| codec::encode_to_slice(value, out).is_ok_and(|n| n == len);
        if self.transport.send_in_place(len, wait, written)? {
            return Ok(());
        }
        // A message of several frames, a socket, or a `Serialize` that wrote another
        // length the second time: through the end's buffer.
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let r = codec::encode(value, &mut buf)
            .map_err(ConnError::from)
            .and_then(|()| self.transport.send_message(&buf, wait));
        self.keep_scratch(buf);
        r
    }

    /// Send a serde value (postcard's format), waiting while the ring (or socket) is
    /// full.
    pub fn send<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), ConnError> {
        self.send_value(value, Wait::Forever)
    }

    /// [`Connection::send`] without waiting (see [`Connection::try_send_bytes`]).
    pub fn try_send<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), ConnError> {
        self.send_value(value, Wait::Now)
    }

    /// [`Connection::send`], waiting at most `timeout` (see
    /// [`Connection::send_bytes_timeout`]).
    pub fn send_timeout<V: Serialize + ?Sized>(&mut self, value: &V, timeout: Duration) -> Result<(), ConnError> {
        self.send_value(value, Wait::after(timeout))
    }

    /// Send a plain-old-data value as its bytes (no encoding step).
    #[inline]
    pub fn send_pod<V: Pod>(&mut self, value: &V) -> Result<(), ConnError> {
        self.transport.send_message(codec::encode_pod(value), Wait::Forever)
    }

    // -- receiving -------------------------------------------------------------------

    /// Receive the next message into `out` (its previous contents are replaced; its
    /// allocation is reused, or for a pipe's message of several frames swapped with the
    /// reassembly buffer), waiting while none is there. Returns its length.
    #[inline]
    pub fn recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, ConnError> {
        self.transport.recv_message(out, Wait::Forever)
    }

    /// [`Connection::recv_bytes_into`] without waiting: [`ConnError::WouldBlock`] if no
    /// whole message is there (the part of one that arrived so far is kept).
    #[inline]
    pub fn try_recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, ConnError> {
        self.transport.recv_message(out, Wait::Now)
    }

    /// [`Connection::recv_bytes_into`], waiting at most `timeout` in all.
    #[inline]
    pub fn recv_bytes_into_timeout(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Result<usize, ConnError> {
        self.transport.recv_message(out, Wait::after(timeout))
    }

    /// Receive the next message's bytes, waiting while none is there.
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut v = Vec::new();
        self.transport.recv_message(&mut v, Wait::Forever)?;
        Ok(v)
    }

    /// [`Connection::recv_bytes`] without waiting ([`ConnError::WouldBlock`]).
    pub fn try_recv_bytes(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut v = Vec::new();
        self.transport.recv_message(&mut v, Wait::Now)?;
        Ok(v)
    }

    /// [`Connection::recv_bytes`], waiting at most `timeout`.
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, ConnError> {
        let mut v = Vec::new();
        self.transport.recv_message(&mut v, Wait::after(timeout))?;
        Ok(v)
    }

    fn recv_with<R>(
        &mut self,
        wait: Wait,
        decode: impl FnOnce(&[u8]) -> Result<R, codec::CodecError>,
    ) -> Result<R, ConnError> {
        let mut buf = std::mem::take(&mut self.scratch);
        let r = self
            .transport
            .recv_message(&mut buf, wait)
            .and_then(|_| decode(&buf).map_err(ConnError::from));
        self.keep_scratch(buf);
        r
    }

    fn keep_scratch(&mut self, buf: Vec<u8>) {
        if buf.capacity() <= SCRATCH_KEEP && !self.transport.is_closed() {
            self.scratch = buf;
        }
    }

    /// Receive a serde value (postcard's format), waiting while no message is there. A
    /// message that does not decode as a `V` is consumed and reported as
    /// [`ConnError::Codec`].
    pub fn recv<V: DeserializeOwned>(&mut self) -> Result<V, ConnError> {
        self.recv_with(Wait::Forever, codec::decode)
    }

    /// [`Connection::recv`] without waiting ([`ConnError::WouldBlock`]).
    pub fn try_recv<V: DeserializeOwned>(&mut self) -> Result<V, ConnError> {
        self.recv_with(Wait::Now, codec::decode)
    }

    /// [`Connection::recv`], waiting at most `timeout`.
    pub fn recv_timeout<V: DeserializeOwned>(&mut self, timeout: Duration) -> Result<V, ConnError> {
        self.recv_with(Wait::after(timeout), codec::decode)
    }

    /// Receive a plain-old-data value sent by [`Connection::send_pod`]: the message must
    /// be exactly its size ([`ConnError::Codec`] otherwise).
    pub fn recv_pod<V: Pod>(&mut self) -> Result<V, ConnError> {
        self.recv_with(Wait::Forever, codec::decode_pod)
    }

    /// Whether a message is ready to receive, waiting at most `timeout` for one (`None`:
    /// as long as it takes; `Some(Duration::ZERO)`: just look). Also true when the peer
    /// closed or died (the receive then reports [`ConnError::Disconnected`]) and after a
    /// bad frame, as in Python; over a socket, also when the first bytes of a message
    /// are there. See [`super::wait`] (pipes) and [`crate::net::wait`] (sockets) for many
    /// connections. Sleeps in naps of at most
    /// [`LIVENESS_INTERVAL`](crate::sync::LIVENESS_INTERVAL); a pending interrupt (see
    /// `shmring::signal::Interrupt`) ends the wait with [`ConnError::Interrupted`].
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool, ConnError> {
        self.transport.poll(timeout)
    }
}
