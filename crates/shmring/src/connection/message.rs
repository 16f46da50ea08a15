//! [`MessageConnection`]: the methods of a [`Connection`] over any transport as a
//! trait, kept for code written against it before [`Connection`] became generic.

use super::{ConnError, Connection, Transport};
use crate::codec;
use bytemuck::Pod;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// A two-way message connection, whatever carries it: a shared-memory pipe end
/// ([`Connection`]) or a socket ([`SocketConnection`](crate::net::SocketConnection)).
/// Implemented once for every [`Connection<T>`](Connection), whose inherent methods of
/// the same names it calls; the typed ones are provided on top of the byte ones for
/// other implementations. New code can also be generic over the transport directly
/// (`fn f<T: Transport>(conn: &mut Connection<T>)`, see [`Transport`]).
///
/// ```
/// use shmring::connection::MessageConnection;
/// use shmring::net::{Address, Client, Listener};
///
/// /// Echo `n` numbers doubled, over any transport.
/// fn doubler(conn: &mut impl MessageConnection, n: usize) -> Result<(), shmring::ConnError> {
///     for _ in 0..n {
///         let x: u64 = conn.recv()?;
///         conn.send(&(2 * x))?;
///     }
///     Ok(())
/// }
///
/// // Over a pipe.
/// let (mut a, mut b) = shmring::pipe(true)?;
/// let t = std::thread::spawn(move || doubler(&mut b, 1));
/// a.send(&21u64)?;
/// assert_eq!(a.recv::<u64>()?, 42);
/// t.join().unwrap()?;
///
/// // Over a socket.
/// let l = Listener::bind(&Address::Abstract(format!("shmring-doc-mc-{}", std::process::id())), None)?;
/// let addr = l.local_addr().clone();
/// let t = std::thread::spawn(move || doubler(&mut Client::connect(&addr, None)?, 1));
/// let mut s = l.accept()?;
/// s.send(&5u64)?;
/// assert_eq!(s.recv::<u64>()?, 10);
/// t.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait MessageConnection {
    /// Send the bytes of `msg` as one message, waiting while the transport is full.
    fn send_bytes(&mut self, msg: &[u8]) -> Result<(), ConnError>;
    /// Send `msg` without waiting ([`ConnError::WouldBlock`]).
    fn try_send_bytes(&mut self, msg: &[u8]) -> Result<(), ConnError>;
    /// Send `msg`, waiting at most `timeout` ([`ConnError::Timeout`]).
    fn send_bytes_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), ConnError>;
    /// Receive the next message into `out` (replacing its contents), waiting while none
    /// is there; returns its length.
    fn recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, ConnError>;
    /// [`MessageConnection::recv_bytes_into`] without waiting ([`ConnError::WouldBlock`]).
    fn try_recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, ConnError>;
    /// [`MessageConnection::recv_bytes_into`], waiting at most `timeout`.
    fn recv_bytes_into_timeout(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Result<usize, ConnError>;
    /// Whether a receive would not wait for a message to start, waiting at most
    /// `timeout` (`None`: as long as it takes).
    fn poll(&self, timeout: Option<Duration>) -> Result<bool, ConnError>;
    /// Close this end: the peer receives what was sent, then [`ConnError::Disconnected`].
    fn close(&mut self);
    /// Whether [`MessageConnection::close`] was called.
    fn is_closed(&self) -> bool;
    /// The largest message this end sends or accepts.
    fn max_message_len(&self) -> usize;

    /// Receive the next message's bytes, waiting while none is there.
    fn recv_bytes(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut v = Vec::new();
        self.recv_bytes_into(&mut v)?;
        Ok(v)
    }

    /// [`MessageConnection::recv_bytes`] without waiting.
    fn try_recv_bytes(&mut self) -> Result<Vec<u8>, ConnError> {
        let mut v = Vec::new();
        self.try_recv_bytes_into(&mut v)?;
        Ok(v)
    }

    /// [`MessageConnection::recv_bytes`], waiting at most `timeout`.
    fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, ConnError> {
        let mut v = Vec::new();
        self.recv_bytes_into_timeout(&mut v, timeout)?;
        Ok(v)
    }

    /// Send a serde value (postcard's format, see [`crate::codec`]).
    fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConnError> {
        self.send_bytes(&codec::to_vec(value)?)
    }

    /// [`MessageConnection::send`] without waiting.
    fn try_send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConnError> {
        self.try_send_bytes(&codec::to_vec(value)?)
    }

    /// [`MessageConnection::send`], waiting at most `timeout`.
    fn send_timeout<T: Serialize + ?Sized>(&mut self, value: &T, timeout: Duration) -> Result<(), ConnError> {
        self.send_bytes_timeout(&codec::to_vec(value)?, timeout)
    }

    /// Receive a serde value; a message that does not decode as a `T` is consumed and
    /// reported as [`ConnError::Codec`].
    fn recv<T: DeserializeOwned>(&mut self) -> Result<T, ConnError> {
        Ok(codec::decode(&self.recv_bytes()?)?)
    }

    /// [`MessageConnection::recv`] without waiting.
    fn try_recv<T: DeserializeOwned>(&mut self) -> Result<T, ConnError> {
        Ok(codec::decode(&self.try_recv_bytes()?)?)
    }

    /// [`MessageConnection::recv`], waiting at most `timeout`.
    fn recv_timeout<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<T, ConnError> {
        Ok(codec::decode(&self.recv_bytes_timeout(timeout)?)?)
    }

    /// Send a plain-old-data value as its bytes.
    fn send_pod<T: Pod>(&mut self, value: &T) -> Result<(), ConnError> {
        self.send_bytes(codec::encode_pod(value))
    }

    /// Receive a plain-old-data value: the message must be exactly its size.
    fn recv_pod<T: Pod>(&mut self) -> Result<T, ConnError> {
        Ok(codec::decode_pod(&self.recv_bytes()?)?)
    }
}

/// One implementation for every transport: each method is the inherent method of the
/// same name (whose typed sends and receives reuse the end's encoding buffer).
impl<T: Transport> MessageConnection for Connection<T> {
    fn send_bytes(&mut self, msg: &[u8]) -> Result<(), ConnError> {
        Connection::send_bytes(self, msg)
    }
    fn try_send_bytes(&mut self, msg: &[u8]) -> Result<(), ConnError> {
        Connection::try_send_bytes(self, msg)
    }
    fn send_bytes_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), ConnError> {
        Connection::send_bytes_timeout(self, msg, timeout)
    }
    fn recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, ConnError> {
        Connection::recv_bytes_into(self, out)
    }
    fn try_recv_bytes_into(&mut self, out: &mut Vec<u8>) -> Result<usize, ConnError> {
        Connection::try_recv_bytes_into(self, out)
    }
    fn recv_bytes_into_timeout(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Result<usize, ConnError> {
        Connection::recv_bytes_into_timeout(self, out, timeout)
    }
    fn poll(&self, timeout: Option<Duration>) -> Result<bool, ConnError> {
        Connection::poll(self, timeout)
    }
    fn close(&mut self) {
        Connection::close(self)
    }
    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }
    fn max_message_len(&self) -> usize {
        Connection::max_message_len(self)
    }
    fn send<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), ConnError> {
        Connection::send(self, value)
    }
    fn try_send<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), ConnError> {
        Connection::try_send(self, value)
    }
    fn send_timeout<V: Serialize + ?Sized>(&mut self, value: &V, timeout: Duration) -> Result<(), ConnError> {
        Connection::send_timeout(self, value, timeout)
    }
    fn recv<V: DeserializeOwned>(&mut self) -> Result<V, ConnError> {
        Connection::recv(self)
    }
    fn try_recv<V: DeserializeOwned>(&mut self) -> Result<V, ConnError> {
        Connection::try_recv(self)
    }
    fn recv_timeout<V: DeserializeOwned>(&mut self, timeout: Duration) -> Result<V, ConnError> {
        Connection::recv_timeout(self, timeout)
    }
    fn send_pod<V: Pod>(&mut self, value: &V) -> Result<(), ConnError> {
        Connection::send_pod(self, value)
    }
    fn recv_pod<V: Pod>(&mut self) -> Result<V, ConnError> {
        Connection::recv_pod(self)
    }
}
