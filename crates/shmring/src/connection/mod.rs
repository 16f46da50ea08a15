//! Python's `multiprocessing.Pipe`, `Connection` and `connection.wait`, over SPSC rings.
//!
//! [`pipe`] returns two [`Connection`]s joined by two anonymous (memfd) SPSC rings, one
//! per direction (each ring is its own segment, so a duplex end holds two descriptors);
//! `pipe(false)` returns a receive-only end and a send-only end joined by one ring.
//! [`Connection::create`] / [`Connection::open`] make a named duplex connection out of
//! two named rings, `<name>.a2b` (creator to opener) and `<name>.b2a` (opener to
//! creator). An end moves to a child process as descriptors
//! ([`Connection::into_fds`] / [`Connection::from_fds`], in `pipe(2)` order: the
//! receiving ring's first, the sending ring's second).
//!
//! Messages are bytes ([`Connection::send_bytes`]), serde values in postcard's format
//! ([`Connection::send`], see [`crate::codec`]), or plain-old-data values as their bytes
//! ([`Connection::send_pod`]).
//!
//! # Transports
//!
//! [`Connection<T>`](Connection) is written once over a [`Transport`]: the shared-memory
//! pipe of this module ([`PipeTransport`], the default, so `Connection` alone is a pipe
//! end) or a stream socket (`net::SocketTransport`, whose connection is
//! `net::SocketConnection`). Every send, receive, `poll` and `close` is the same code
//! over both, monomorphized (no dynamic dispatch); what only one transport does sits on
//! `Connection<ThatTransport>`: a pipe end's [`Connection::create`] /
//! [`Connection::open`] / [`Connection::from_fds`] / [`Connection::into_fds`], a
//! socket's handles in band and its descriptor. [`MessageConnection`] is the same
//! methods as a trait, implemented once for every `Connection<T>`.
//!
//! # Frames
//!
//! Each ring record carries one frame whose first byte is its kind. A message that fits
//! one record (the ring's [`max_message_len`](crate::ring::spsc::max_message_len), about
//! half its capacity) travels as one `WHOLE` frame; a larger one as a `FIRST` frame
//! announcing its total length, `MORE` frames, and a `LAST` frame, in records of an
//! eighth of the ring (so that several are in flight), reassembled by the receiver — so any message up to [`ConnectionOptions::max_message_len`] (1 GiB by
//! default) goes through any ring, as Python allows. A sender that gives up in the
//! middle of a message (a timeout, or a full ring for `try_send`) sends an `ABORT`
//! frame before its next message, and the receiver drops the partial message: a
//! receiver gets whole messages or nothing.
//!
//! ```text
//! WHOLE  [1][message]          FIRST  [2][total: u64 LE][chunk]
//! MORE   [3][chunk]            LAST   [4][chunk]            ABORT  [5]
//! ```
//!
//! The frames come from another process and are checked as untrusted input: a frame
//! that breaks the format (an unknown kind, a `MORE` without a `FIRST`, lengths that do
//! not add up) is [`ConnError::BadFrame`], after which the receive direction is broken
//! for good. A message longer than the receiver's limit is
//! [`ConnError::MessageTooLarge`]: its remaining frames are skipped as they arrive and
//! the connection stays usable. The receiver's buffer grows with the chunks that
//! arrived, never up front from an announced length, and never beyond the limit.
//!
//! # Waiting on many connections
//!
//! [`wait`] sleeps in the kernel until one of several connections is ready. It applies
//! the rings' eventcount protocol (see [`crate::sync::WaitWord`]) to every connection
//! at once — read each ring's sequence word, register as a waiter, one full fence,
//! re-check every ring — then sleeps on all the sequence words with one
//! `futex_waitv(2)` (Linux 5.16+): the first producer that publishes wakes it. Naps are
//! bounded by [`LIVENESS_INTERVAL`](crate::sync::LIVENESS_INTERVAL) so that a peer
//! killed without closing is noticed. Without `futex_waitv` (older kernels, `ENOSYS`)
//! or for more than 128 connections (its limit), it polls with 1 ms naps instead.
//!
//! As in Python, a connection is *ready* when a receive will not wait for a message to
//! start: a frame is there, or the peer closed or died (the receive then reports
//! [`ConnError::Disconnected`]), or the connection cannot receive at all (closed, or
//! the send-only end of a one-way pipe: the receive reports why). A receive of a large
//! message may still wait for its later chunks, which the peer is sending.
//!
//! # Limits
//!
//! - A message is copied twice: into the ring by the sender, out of it by the receiver
//!   (a chunked one into a buffer that grows with its chunks and is handed over whole).
//! - `try_send` of a message larger than the ring's free space fails with
//!   [`ConnError::WouldBlock`] unless the receiver drains the ring meanwhile; the partial
//!   message is then dropped by the receiver (ABORT), never delivered.
//! - An end is used by one thread at a time (`Send`, not `Sync`). A message whose first
//!   frames the previous holder of an end received is dropped by the next holder
//!   ([`Connection::from_fds`]): hand ends over between messages.
//! - Named connections are duplex; use [`pipe`] and descriptors for a one-way pair.
//!
//! ```
//! use shmring::connection::{pipe, wait};
//! use std::time::Duration;
//!
//! let (mut a, mut b) = pipe(true)?;
//! let (mut c, mut d) = pipe(true)?;
//! b.send(&("tick", 42u32))?;
//! // A 1 MiB message through a 256 KiB ring: sent in chunks while `c` receives them.
//! let t = std::thread::spawn(move || d.send_bytes(&vec![7u8; 1 << 20]));
//! let mut got = 0;
//! while got < 2 {
//!     for i in wait(&[&a, &c], Some(Duration::from_secs(10))) {
//!         if i == 0 {
//!             assert_eq!(a.recv::<(String, u32)>()?, ("tick".into(), 42));
//!         } else {
//!             assert_eq!(c.recv_bytes()?.len(), 1 << 20);
//!         }
//!         got += 1;
//!     }
//! }
//! t.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod borrowed;
#[cfg(test)]
mod borrowed_tests;
mod conn;
pub(crate) mod frame;
mod iter;
mod message;
mod named;
mod pipe;
#[cfg(test)]
mod tests;
pub(crate) mod transport;
mod wait;

pub use borrowed::MessageRef;
pub use conn::Connection;
pub use frame::FrameError;
pub use message::MessageConnection;
pub use pipe::{PipeTransport, pipe, pipe_with};
pub use transport::Transport;
pub use wait::{wait, wait_interruptible};

use crate::codec::CodecError;
use crate::ring::spsc::RingOptions;
use crate::sync::WaitStrategy;

/// Ring capacity per direction of [`pipe`]: 256 KiB, so messages up to about 128 KiB
/// travel as one record.
pub const DEFAULT_CAPACITY: usize = 1 << 18;

/// Default of [`ConnectionOptions::max_message_len`]: 1 GiB.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 1 << 30;

/// Why a connection operation failed. Small; the hot paths never allocate one.
///
/// ```
/// use shmring::connection::{pipe, ConnError};
/// let (mut r, mut w) = pipe(false)?;
/// assert!(matches!(w.recv_bytes(), Err(ConnError::WrongDirection { .. })));
/// assert_eq!(r.try_recv_bytes(), Err(ConnError::WouldBlock));
/// drop(w);
/// assert_eq!(r.recv_bytes(), Err(ConnError::Disconnected));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The peer closed its end or died (after every message it sent was received).
    #[error("peer disconnected")]
    Disconnected,
    /// The timeout passed first.
    #[error("timed out")]
    Timeout,
    /// The operation would have to wait (`try_*` only).
    #[error("operation would block")]
    WouldBlock,
    /// A message longer than the limit: on send nothing was sent; on receive the peer
    /// announced it, its bytes are skipped, and the next receive gets the next message.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The message's length (as announced by the peer, on receive).
        len: u64,
        /// This end's [`ConnectionOptions::max_message_len`].
        max: usize,
    },
    /// A value could not be encoded, or a message is not a valid encoding of the
    /// requested type (the message was consumed).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The peer sent a frame that breaks the format: the receive direction is broken and
    /// every later receive returns this error.
    #[error("bad frame from the peer: {0}")]
    BadFrame(#[from] FrameError),
    /// The ring's shared indices or record headers hold impossible values.
    #[error("ring corrupted: {0}")]
    Corrupted(&'static str),
    /// This connection was closed with [`Connection::close`].
    #[error("connection closed")]
    Closed,
    /// A socket connection received a handle (a frame carrying descriptors, sent with
    /// [`SocketConnection::send_handle`](crate::net::SocketConnection::send_handle))
    /// where a message was expected: its descriptors were closed; the connection stays
    /// usable.
    #[error("a handle arrived where a message was expected (its descriptors were closed)")]
    UnexpectedHandle,
    /// A blocking call gave up because an interrupt is pending (`signal::Interrupt`:
    /// `SIGINT` and friends, or a programmatic trigger). Nothing was consumed or sent.
    #[error("interrupted")]
    Interrupted,
    /// The socket handshake failed because the keys differ, or one side has an authkey
    /// and the other not (`net`): the connection was closed and no message crossed it.
    #[error("authentication failed: {0}")]
    Authentication(&'static str),
    /// The socket handshake failed because the peer does not speak the protocol (or
    /// another version of it), or closed the connection during it (`net`).
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The peer did not complete the socket handshake within the handshake timeout
    /// (`net`: a silent or trickling peer); the connection was closed.
    #[error("the peer did not complete the handshake within {after_ms} ms")]
    HandshakeTimeout {
        /// The handshake timeout, in milliseconds.
        after_ms: u64,
    },
    /// A system call on a socket failed (`net`): the operation and the kernel's error.
    #[error("{0}")]
    Io(String),
    /// This end of a one-way pipe cannot do that.
    #[error("wrong direction: this end of a one-way pipe can only {allowed}")]
    WrongDirection {
        /// What the end can do: `send` or `receive`.
        allowed: &'static str,
    },
}

impl From<crate::SendError> for ConnError {
    fn from(e: crate::SendError) -> Self {
        use crate::SendError as S;
        match e {
            S::Full => ConnError::WouldBlock,
            S::Timeout => ConnError::Timeout,
            S::Interrupted => ConnError::Interrupted,
            S::Disconnected => ConnError::Disconnected,
            // Frames are sized to the ring's records; kept for completeness.
            S::MessageTooLarge { len, max } => ConnError::MessageTooLarge { len: len as u64, max },
            S::Corrupted(what) => ConnError::Corrupted(what),
        }
    }
}

impl From<crate::RecvError> for ConnError {
    fn from(e: crate::RecvError) -> Self {
        use crate::RecvError as R;
        match e {
            R::Empty => ConnError::WouldBlock,
            R::Timeout => ConnError::Timeout,
            R::Interrupted => ConnError::Interrupted,
            R::Disconnected => ConnError::Disconnected,
            R::Corrupted(what) => ConnError::Corrupted(what),
        }
    }
}

/// How a connection's ends are made: the message limit, and the rings' options (wait
/// strategy, segment options).
///
/// ```
/// use shmring::connection::{pipe_with, ConnectionOptions, ConnError};
/// use shmring::WaitStrategy;
/// let opts = ConnectionOptions::new().max_message_len(1 << 20).wait(WaitStrategy::Blocking);
/// let (mut a, _b) = pipe_with(true, 1 << 16, &opts)?;
/// assert_eq!(
///     a.send_bytes(&vec![0; (1 << 20) + 1]),
///     Err(ConnError::MessageTooLarge { len: (1 << 20) + 1, max: 1 << 20 })
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// The largest message this end sends or accepts, in bytes (default
    /// [`DEFAULT_MAX_MESSAGE_LEN`], 1 GiB). Each end has its own: a message over the
    /// sender's limit is refused on send, one over the receiver's on receive.
    pub max_message_len: usize,
    /// The rings' options: wait strategy of blocking sends and receives, segment
    /// options (mode, keep, open timeout, ...).
    pub ring: RingOptions,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            ring: RingOptions::default(),
        }
    }
}

impl ConnectionOptions {
    /// The defaults: 1 GiB messages, adaptive waits, mode 0600.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the message limit.
    pub fn max_message_len(mut self, n: usize) -> Self {
        self.max_message_len = n;
        self
    }

    /// Set the rings' options.
    pub fn ring(mut self, ring: RingOptions) -> Self {
        self.ring = ring;
        self
    }

    /// Set the wait strategy of blocking sends and receives.
    pub fn wait(mut self, w: WaitStrategy) -> Self {
        self.ring.wait = w;
        self
    }
}
