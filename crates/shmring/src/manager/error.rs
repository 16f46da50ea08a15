//! [`ManagerError`], and the encoding helpers of the proxies that produce it.

use super::protocol::Reply;
#[cfg(doc)]
use super::{Manager, QueueProxy};
use crate::ConnError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a manager call failed.
///
/// ```
/// use shmring::manager::ManagerError;
/// let e = ManagerError::IndexOutOfRange { index: 5, len: 2 };
/// assert!(e.to_string().contains("5"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The server is gone: it closed the connection (shut down, exited, was killed),
    /// the connection broke, or it did not answer in time. Every later call on the
    /// same [`Manager`] handle returns this too.
    #[error("the manager's server is gone: {0}")]
    ManagerGone(String),
    /// Connecting failed: nothing listens at the address, or the handshake failed
    /// ([`ConnError::Authentication`] for a wrong or missing key).
    #[error("cannot connect to the manager: {0}")]
    Connect(ConnError),
    /// Starting the server failed (binding the address, spawning its process).
    #[error("cannot start the manager's server: {0}")]
    Start(String),
    /// The name is taken by an object of another kind.
    #[error("{name:?} is a {found} on the server, not a {wanted}")]
    WrongKind {
        /// The object's name.
        name: String,
        /// What the server holds under that name.
        found: &'static str,
        /// What was asked for.
        wanted: &'static str,
    },
    /// A list index past the end.
    #[error("list index {index} out of range (length {len})")]
    IndexOutOfRange {
        /// The index given.
        index: u64,
        /// The list's length.
        len: u64,
    },
    /// A key, value or item that does not encode, or stored bytes that do not decode
    /// as the proxy's type.
    #[error("encoding: {0}")]
    Codec(String),
    /// The server rejected a request or answered out of protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A release of a lock this connection does not hold (or a condition's wait or
    /// notify without holding its lock).
    #[error("lock {0:?} is not held by this connection")]
    NotOwner(String),
    /// [`QueueProxy::try_put`] or [`QueueProxy::put_timeout`] found the queue full.
    #[error("queue {0:?} is full")]
    Full(String),
    /// [`QueueProxy::try_get`] or [`QueueProxy::get_timeout`] found the queue empty.
    #[error("queue {0:?} is empty")]
    Empty(String),
    /// A release of a bounded semaphore past its initial value.
    #[error("bounded semaphore {0:?} released too many times")]
    OverReleased(String),
    /// The barrier is broken (aborted, a wait timed out, a waiting party's connection
    /// ended), or was reset while this party waited.
    #[error("barrier {0:?} is broken")]
    BrokenBarrier(String),
    /// The process's interrupt flag ([`signal`](crate::signal)) ended the wait for a
    /// reply; the handle is gone afterwards (the reply may still come).
    #[error("interrupted")]
    Interrupted,
}

pub(crate) fn enc<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, ManagerError> {
    crate::codec::to_vec(v).map_err(|e| ManagerError::Codec(e.to_string()))
}

pub(crate) fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, ManagerError> {
    crate::codec::decode(b).map_err(|e| ManagerError::Codec(e.to_string()))
}

pub(crate) fn unexpected(r: Reply) -> ManagerError {
    ManagerError::Protocol(format!("unexpected reply {r:?}"))
}
