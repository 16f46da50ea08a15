//! The client end: one socket connection per [`Manager`](super::Manager) handle,
//! shared by its proxies behind a mutex; every call is one request and one reply.

use super::ManagerError;
use super::protocol::{Reply, Request};
use crate::ConnError;
use crate::net::SocketConnection;
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
        let r = conn.send(req).and_then(|()| conn.recv_timeout::<Reply>(timeout));
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
