//! Sockets: Python's `multiprocessing.connection.Listener` / `Client` with an authkey,
//! over Unix socket paths, Linux abstract names and TCP.
//!
//! [`Listener::bind`] listens at an [`Address`]; [`Client::connect`] connects to it;
//! both return a [`SocketConnection`] once the handshake succeeded. A
//! `SocketConnection` is a [`Connection`](crate::connection::Connection) over a
//! [`SocketTransport`]: it has the methods of a pipe's [`Connection`](crate::Connection)
//! — the same code (typed `send`/`recv`, bytes, `Pod`, `try_`/`_timeout` forms, `poll`,
//! `close`) — so code can be written once for either transport, generic over the
//! [`Transport`](crate::connection::Transport) or over
//! [`MessageConnection`](crate::connection::MessageConnection).
//!
//! # Handshake
//!
//! Every connection opens with a protocol tag (`shmring-net/1`), so a peer that speaks
//! something else fails cleanly ([`ConnError::Handshake`](crate::ConnError::Handshake)). With an authkey, the two
//! sides then run an HMAC-SHA256 challenge/response in both directions, as
//! `multiprocessing.connection`'s `deliver_challenge`/`answer_challenge`: each side
//! sends a fresh 32-byte random nonce (`getrandom(2)`) and checks, in constant time,
//! that the other answered it with the key. A wrong or missing key is
//! [`ConnError::Authentication`](crate::ConnError::Authentication) on both sides, the socket is closed, and no message
//! crosses it. The whole exchange must end within [`NetOptions::handshake_timeout`]
//! (5 s by default): a peer that connects and sends nothing, or trickles, gets
//! [`ConnError::HandshakeTimeout`](crate::ConnError::HandshakeTimeout) — from [`Listener::accept`], which then serves the
//! next client.
//!
//! # Frames
//!
//! ```text
//! [kind: u8][reserved: 3 bytes, zero][len: u32 LE][payload: len bytes]
//! ```
//!
//! A send writes the header and the payload with one system call (a frame up to 1 KiB
//! is copied into one buffer for `send(2)`, a larger one goes out with `sendmsg(2)` of
//! the header and the caller's bytes); a receive reads through a 64 KiB buffer, so a batch of small
//! messages costs one `recv(2)`. The frames come from another process or machine and
//! are checked as untrusted input:
//!
//! - a header announcing more than the receiver's [`NetOptions::max_message_len`]
//!   (64 MiB by default) is [`ConnError::MessageTooLarge`](crate::ConnError::MessageTooLarge) as soon as the header is
//!   there — before any allocation, without waiting for the payload; the payload is
//!   skipped as it arrives and the next receive gets the next message (as with a pipe);
//! - a header that breaks the format (unknown kind, non-zero reserved bytes) is
//!   [`ConnError::BadFrame`](crate::ConnError::BadFrame), after which the receive direction is broken for good;
//! - a message too large for the read buffer is gathered in a buffer that grows with
//!   the bytes that arrive, never up front from the announced length.
//!
//! # Waiting
//!
//! Blocking calls never sleep in the kernel for more than
//! [`LIVENESS_INTERVAL`](crate::sync::LIVENESS_INTERVAL) at a time (`SO_RCVTIMEO` /
//! `SO_SNDTIMEO` on the socket, `poll(2)` for `poll` and `accept`); at each wake they
//! check the process's interrupt flag and return [`ConnError::Interrupted`](crate::ConnError::Interrupted) if it is
//! raised. A peer that closes or dies is seen by the kernel: receives report
//! [`ConnError::Disconnected`](crate::ConnError::Disconnected) after the messages it sent, sends report it at once.
//!
//! # Not here (yet)
//!
//! - TLS.
//!
//! One wait over sockets, pipes, rings and queues together is
//! [`select`](crate::select::select) (or a [`Selector`](crate::select::Selector)).
//!
//! # Handles
//!
//! Over a Unix socket, [`SocketConnection::send_handle`] hands any
//! [`Handoff`](crate::handoff::Handoff) object (queue, pipe end, ring, segment, value,
//! lock) to the peer in band, between messages: a HANDLE frame (the object's kind and
//! metadata) with its descriptors as `SCM_RIGHTS` on its first byte;
//! [`SocketConnection::recv_handle`] rebuilds it. Every receive reads with `recvmsg`, so
//! descriptors are never lost to the read-ahead buffer; they wait in a queue (at most 32)
//! until their frame is parsed, which checks its count against them. A handle where a
//! message is expected is [`ConnError::UnexpectedHandle`](crate::ConnError::UnexpectedHandle)
//! (its descriptors closed, the connection usable); more descriptors in one read than a
//! handle carries breaks the receive side (every one of them closed).
//!
//! A [`SocketConnection`] is itself a [`Handoff`](crate::handoff::Handoff): between
//! messages it can move to another process (by inheritance, `Process::pass`, or as a
//! handle over another connection), which continues the conversation, the handshake
//! done.
//!
//! ```
//! use shmring::net::{Address, Client, Listener};
//!
//! let addr = Address::Abstract(format!("shmring-doc-net-{}", std::process::id()));
//! let listener = Listener::bind(&addr, Some(b"secret key"))?;
//! let client = std::thread::spawn(move || -> Result<(), shmring::ConnError> {
//!     let mut c = Client::connect(&addr, Some(b"secret key"))?;
//!     c.send(&vec![1.5f64, 2.5])?;
//!     Ok(())
//! });
//! let mut conn = listener.accept()?;
//! assert_eq!(conn.recv::<Vec<f64>>()?, [1.5, 2.5]);
//! client.join().unwrap()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod accept;
mod addr;
pub(crate) mod auth;
pub(crate) mod conn;
pub(crate) mod frame;
mod listener;
pub(crate) mod sys;
mod wait;

pub use addr::{Address, AddressParseError};
pub use conn::{SocketConnection, SocketTransport};
pub use listener::{Client, Listener, PendingConnection};
pub use wait::{wait, wait_interruptible};

use std::time::Duration;

/// Default of [`NetOptions::max_message_len`]: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 64 << 20;

/// Default of [`NetOptions::handshake_timeout`]: 5 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of [`Listener::bind_with`] and [`Client::connect_with`].
///
/// ```
/// use shmring::net::NetOptions;
/// use std::time::Duration;
/// let o = NetOptions::new()
///     .max_message_len(1 << 20)
///     .handshake_timeout(Duration::from_millis(500))
///     .replace_stale(true);
/// assert_eq!(o.max_message_len, 1 << 20);
/// assert!(o.nodelay);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NetOptions {
    /// The largest message a connection sends or accepts, in bytes (default
    /// [`DEFAULT_MAX_MESSAGE_LEN`]; at most `u32::MAX`, the frame header's limit). Each
    /// end has its own.
    pub max_message_len: usize,
    /// How long the handshake (and a TCP connect) may take (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub handshake_timeout: Duration,
    /// `TCP_NODELAY` on TCP connections (default on: a message goes out when sent).
    pub nodelay: bool,
    /// Whether [`Listener::bind`] at a Unix socket path where a socket file exists and
    /// no listener answers removes that file and binds (default off: an error that says
    /// so).
    pub replace_stale: bool,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            nodelay: true,
            replace_stale: false,
        }
    }
}

impl NetOptions {
    /// The defaults: 64 MiB messages, a 5 s handshake, `TCP_NODELAY`, no replacing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the message limit.
    pub fn max_message_len(mut self, n: usize) -> Self {
        self.max_message_len = n;
        self
    }

    /// Set the handshake timeout.
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.handshake_timeout = t;
        self
    }

    /// Set `TCP_NODELAY`.
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// Set whether a stale socket file is replaced.
    pub fn replace_stale(mut self, on: bool) -> Self {
        self.replace_stale = on;
        self
    }
}
