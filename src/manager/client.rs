//! The client end: one socket connection per [`Manager`](super::Manager) handle,
//! shared by its proxies behind a mutex; every call is one request and one reply.

use super::ManagerError;
use super::cache::VersionTable;
use super::protocol::{Reply, Request};
use crate::ConnError;
use crate::handoff::{self, Handoff};
use crate::net::SocketConnection;
use crate::shm::Segment;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Conn {
    /// `None` once the server is gone: every later call fails at once.
    conn: Option<SocketConnection>,
    /// Why the server is considered gone.
    gone: String,
    timeout: Duration,
}

/// A cheaply cloned handle on the shared connection.
#[derive(Clone)]
pub(crate) struct Shared(Arc<Mutex<Conn>>);

impl Shared {
    pub(crate) fn new(conn: SocketConnection, timeout: Duration) -> Self {
        Shared(Arc::new(Mutex::new(Conn {
            conn: Some(conn),
            gone: String::new(),
            timeout,
        })))
    }

    pub(crate) fn set_timeout(&self, timeout: Duration) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).timeout = timeout;
    }

    /// Ask for dict `id`'s version table: the server sends a handoff parcel (the
    /// segment, or none), then its reply; read in that order on the raw socket, whose
    /// read-ahead buffer is empty between round trips. `Ok(None)`: the server offers
    /// no cache (the call still succeeded). With the table comes a duplicate of the
    /// socket, for the cache's liveness check.
    pub(crate) fn open_cache(&self, id: u32) -> Result<Option<(VersionTable, OwnedFd)>, ManagerError> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let timeout = g.timeout;
        let Some(conn) = g.conn.as_mut() else {
            return Err(ManagerError::ManagerGone(g.gone.clone()));
        };
        let r = conn.send(&Request::OpenCache { id }).and_then(|()| {
            let parcel = handoff::recv_parcel(conn.as_fd(), Some(timeout));
            let reply = conn.recv_timeout::<Reply>(timeout)?;
            Ok((parcel, reply))
        });
        match r {
            Ok((Ok(p), Reply::Ok)) if !p.fds.is_empty() => {
                let seg = Segment::from_parcel(p).map_err(|e| ManagerError::Protocol(e.to_string()))?;
                let sock = conn
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| ManagerError::Protocol(format!("dup the socket: {e}")))?;
                Ok(Some((VersionTable::from_segment(seg)?, sock)))
            }
            Ok((Ok(_), _)) => Ok(None),
            Ok((Err(e), _)) => Err(self.broken(&mut g, format!("the version table did not arrive: {e}"))),
            Err(e) => Err(self.broken(&mut g, e.to_string())),
        }
    }

    fn broken(&self, g: &mut Conn, why: String) -> ManagerError {
        g.conn = None;
        g.gone = why.clone();
        ManagerError::ManagerGone(why)
    }

    /// One round trip. A failure of the connection (the server closed it, died, or
    /// did not answer within the timeout) is [`ManagerError::ManagerGone`], now and
    /// for every later call: after a lost reply the stream cannot be trusted to pair
    /// requests with replies.
    pub(crate) fn call(&self, req: &Request) -> Result<Reply, ManagerError> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let timeout = g.timeout;
        let Some(conn) = g.conn.as_mut() else {
            return Err(ManagerError::ManagerGone(g.gone.clone()));
        };
        let r = match conn.send(req) {
            // Refused before a byte went out: the connection is intact.
            Err(ConnError::MessageTooLarge { len, max }) => {
                return Err(ManagerError::Protocol(format!(
                    "the request of {len} bytes exceeds the message limit of {max}"
                )));
            }
            sent => sent.and_then(|()| conn.recv_timeout::<Reply>(timeout)),
        };
        match r {
            Ok(Reply::BadRequest(why)) => Err(ManagerError::Protocol(why)),
            Ok(reply) => Ok(reply),
            // The caller's interrupt (Ctrl+C): the reply may still come, so the
            // connection is out of step; report the interrupt, then gone.
            Err(e) => {
                let why = match &e {
                    ConnError::Timeout => format!("no reply within {timeout:?}"),
                    ConnError::Disconnected | ConnError::Closed => "the server closed the connection".into(),
                    other => other.to_string(),
                };
                g.conn = None;
                g.gone = why.clone();
                if e == ConnError::Interrupted {
                    return Err(ManagerError::Interrupted);
                }
                Err(ManagerError::ManagerGone(why))
            }
        }
    }
}
