//! [`Transport`]: what carries a [`Connection`](super::Connection)'s messages — a
//! shared-memory pipe ([`PipeTransport`](super::PipeTransport)) or a stream socket
//! ([`SocketTransport`](crate::net::SocketTransport)). The trait is sealed: its methods
//! are the crate's own, and [`Connection`](super::Connection) writes every public
//! method once on top of them.

/// What carries a [`Connection`](super::Connection)'s messages: a shared-memory pipe
/// ([`PipeTransport`](super::PipeTransport), the default) or a stream socket
/// ([`SocketTransport`](crate::net::SocketTransport), behind
/// [`SocketConnection`](crate::net::SocketConnection)). Sealed: implemented by these
/// two only. Code that takes any connection is generic over it:
///
/// ```
/// use shmring::connection::{Connection, Transport};
///
/// fn echo_once<T: Transport>(conn: &mut Connection<T>) -> Result<(), shmring::ConnError> {
///     let msg = conn.recv_bytes()?;
///     conn.send_bytes(&msg)
/// }
///
/// let (mut a, mut b) = shmring::pipe(true)?;
/// a.send_bytes(b"hello")?;
/// echo_once(&mut b)?;
/// assert_eq!(a.recv_bytes()?, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Transport: sealed::Sealed {}

/// The methods a transport gives [`Connection`](super::Connection): whole messages as
/// bytes, waiting as [`Wait`](crate::sync::Wait) says. Not nameable outside the crate.
pub(crate) mod sealed {
    use crate::connection::{ConnError, MessageRef};
    use crate::sync::Wait;
    use std::time::Duration;

    // `Wait` is the crate's internal wait type; this trait is unnameable outside the
    // crate (the seal), so no one outside can see or call these methods.
    pub trait Sealed: std::fmt::Debug {
        /// The error a send would return before it starts (closed, or cannot send), so
        /// that a typed send reports it before encoding.
        fn check_send(&mut self) -> Result<(), ConnError>;
        /// Send `msg` as one message, waiting per `wait`.
        fn send_message(&mut self, msg: &[u8], wait: Wait) -> Result<(), ConnError>;
        /// Receive the next message into `out` (replacing its contents), waiting per
        /// `wait`; its length.
        fn recv_message(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, ConnError>;
        /// Send one message of `len` bytes that `write` writes in place (it returns
        /// whether it wrote exactly `len` bytes), waiting per `wait`. `Ok(false)`:
        /// nothing was sent (the transport cannot write in place, the message needs
        /// more than one frame, or `write` failed); the caller sends it with
        /// [`Sealed::send_message`]. Default: `Ok(false)`.
        fn send_in_place(
            &mut self,
            len: usize,
            wait: Wait,
            write: impl FnOnce(&mut [u8]) -> bool,
        ) -> Result<bool, ConnError> {
            let _ = (len, wait, write);
            Ok(false)
        }
        /// Send one message written in place into `len` bytes claimed **without
        /// waiting**, if `write` fills them exactly (it returns whether it did); `false`:
        /// nothing was sent (no space now, a pending abort, the transport cannot write in
        /// place, or `write` wrote another length), and no error is reported: the caller
        /// sends the message the exact way. Default: `false`.
        fn send_guessed(&mut self, len: usize, write: impl FnOnce(&mut [u8]) -> bool) -> bool {
            let _ = (len, write);
            false
        }
        /// Receive the next message, waiting per `wait`, in place where the transport
        /// can (else in `scratch`). Default: [`Sealed::recv_message`] into `scratch`.
        fn recv_in_place<'a>(&'a mut self, scratch: &'a mut Vec<u8>, wait: Wait) -> Result<MessageRef<'a>, ConnError> {
            let n = self.recv_message(scratch, wait)?;
            Ok(MessageRef::bytes(&scratch[..n]))
        }
        /// Hand up to `max` (at least one) messages to `f`, waiting per `wait` for the
        /// first; returns how many. Default: one message per call, through
        /// [`Sealed::recv_in_place`].
        fn recv_batch(
            &mut self,
            scratch: &mut Vec<u8>,
            max: usize,
            wait: Wait,
            mut f: impl FnMut(MessageRef<'_>),
        ) -> Result<usize, ConnError> {
            let _ = max;
            f(self.recv_in_place(scratch, wait)?);
            Ok(1)
        }
        /// Whether a receive would not wait for a message to start, waiting at most
        /// `timeout` (`None`: as long as it takes).
        fn poll(&self, timeout: Option<Duration>) -> Result<bool, ConnError>;
        /// Close: the peer receives what was sent, then `Disconnected`.
        fn close(&mut self);
        /// Whether [`Sealed::close`] was called.
        fn is_closed(&self) -> bool;
        /// Whether this end can receive.
        fn readable(&self) -> bool;
        /// Whether this end can send.
        fn writable(&self) -> bool;
        /// The largest message this end sends or accepts.
        fn max_message_len(&self) -> usize;
    }
}
