//! The client end: one connection per [`Manager`](super::Manager) handle, shared by its
//! proxies behind a mutex; every call is one request and one reply.
//!
//! A handle starts on its socket. On the server's machine (a Unix socket) it then asks
//! for a shared-memory channel ([`Request::OpenChannel`]): the server makes a duplex
//! pipe ([`Connection`]: two SPSC rings in memfd segments), hands the client's end over
//! the socket (SCM_RIGHTS), and from then on reads this client's requests from the pipe
//! and answers on it. The socket stays open beside it: descriptors (the version tables
//! of `cache.rs`) still travel on it as handle frames, and its closing tells a cached
//! get that the server is gone.

use super::ManagerError;
use super::cache::VersionTable;
use super::protocol::{Reply, Request};
use crate::ConnError;
use crate::connection::{Connection, ConnectionOptions};
use crate::handoff::{self, Handoff, Kind as ParcelKind};
use crate::net::SocketConnection;
use crate::shm::Segment;
use crate::sync::WaitStrategy;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Conn {
    /// `None` once the server is gone: every later call fails at once.
    sock: Option<SocketConnection>,
    /// The shared-memory channel requests travel on, once the server gave one.
    pipe: Option<Connection>,
    /// Why the server is considered gone.
    gone: String,
    timeout: Duration,
}

impl Conn {
    fn send(&mut self, req: &Request) -> Result<(), ConnError> {
        match (&mut self.pipe, &mut self.sock) {
            (Some(p), Some(_)) => p.send(req),
            (None, Some(s)) => s.send(req),
            (_, None) => Err(ConnError::Closed),
        }
    }

    fn recv(&mut self) -> Result<Reply, ConnError> {
        let timeout = self.timeout;
        match (&mut self.pipe, &mut self.sock) {
            (Some(p), Some(_)) => p.recv_timeout(timeout),
            (None, Some(s)) => s.recv_timeout(timeout),
            (_, None) => Err(ConnError::Closed),
        }
    }

    /// The server is gone (or out of step): drop both connections.
    fn broken(&mut self, why: String) -> ManagerError {
        self.sock = None;
        self.pipe = None;
        self.gone = why.clone();
        ManagerError::ManagerGone(why)
    }

    /// Send `req`, then receive a handle frame on the socket (the descriptors of the
    /// answer: `SocketConnection::recv_parcel`, in band with the socket's messages),
    /// then the reply (on the socket, or on the channel).
    fn call_with_parcel(&mut self, req: &Request) -> Result<(handoff::Parcel, Reply), ManagerError> {
        let timeout = self.timeout;
        if self.sock.is_none() {
            return Err(ManagerError::ManagerGone(self.gone.clone()));
        }
        if let Err(e) = self.send(req) {
            return Err(self.broken(e.to_string()));
        }
        let parcel = match self.sock.as_mut().map(|s| s.recv_parcel(Some(timeout))) {
            Some(Ok(p)) => p,
            Some(Err(e)) => return Err(self.broken(format!("the server's descriptors did not arrive: {e}"))),
            None => return Err(ManagerError::ManagerGone(self.gone.clone())),
        };
        match self.recv() {
            Ok(reply) => Ok((parcel, reply)),
            Err(e) => Err(self.broken(e.to_string())),
        }
    }
}

/// A cheaply cloned handle on the shared connection.
#[derive(Clone)]
pub(crate) struct Shared(Arc<Mutex<Conn>>);

impl Shared {
    pub(crate) fn new(conn: SocketConnection, timeout: Duration) -> Self {
        Shared(Arc::new(Mutex::new(Conn {
            sock: Some(conn),
            pipe: None,
            gone: String::new(),
            timeout,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Conn> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn set_timeout(&self, timeout: Duration) {
        self.lock().timeout = timeout;
    }

    /// Whether calls travel over a shared-memory channel.
    pub(crate) fn has_channel(&self) -> bool {
        self.lock().pipe.is_some()
    }

    /// Ask the server for a shared-memory channel and move this handle's calls to it;
    /// `Ok(false)`: the server offers none (the socket stays in use). `max_len` is the
    /// channel's message limit on this side (the socket's), `wait` how this side waits.
    pub(crate) fn open_channel(&self, max_len: usize, wait: WaitStrategy) -> Result<bool, ManagerError> {
        let mut g = self.lock();
        let (parcel, reply) = g.call_with_parcel(&Request::OpenChannel)?;
        match reply {
            Reply::Ok => {}
            Reply::BadRequest(_) => return Ok(false),
            r => return Err(g.broken(format!("unexpected reply {r:?} to a channel request"))),
        }
        // Both ends of a duplex pipe: [receive, send] (the `Handoff` of `Connection`).
        if parcel.kind != ParcelKind::Connection || parcel.meta != 3 || parcel.fds.len() != 2 {
            return Err(g.broken(format!(
                "the server's channel is not a duplex pipe end: {:?} with {} descriptors",
                parcel.kind,
                parcel.fds.len()
            )));
        }
        let mut fds = parcel.fds.into_iter();
        let opts = ConnectionOptions::new().max_message_len(max_len).wait(wait);
        match Connection::from_fds_with(fds.next(), fds.next(), &opts) {
            Ok(pipe) => {
                g.pipe = Some(pipe);
                Ok(true)
            }
            Err(e) => Err(g.broken(format!("cannot attach the server's channel: {e}"))),
        }
    }

    /// Ask for dict `id`'s version table: the server sends a handoff parcel (the
    /// segment, or none), then its reply. `Ok(None)`: the server offers no cache (the
    /// call still succeeded). With the table comes a duplicate of the socket, for the
    /// cache's liveness check.
    pub(crate) fn open_cache(&self, id: u32) -> Result<Option<(VersionTable, OwnedFd)>, ManagerError> {
        let mut g = self.lock();
        let (parcel, reply) = g.call_with_parcel(&Request::OpenCache { id })?;
        if !matches!(reply, Reply::Ok) || parcel.fds.is_empty() {
            return Ok(None);
        }
        let seg = Segment::from_parcel(parcel).map_err(|e| ManagerError::Protocol(e.to_string()))?;
        let sock = match g.sock.as_ref().map(|s| s.as_fd().try_clone_to_owned()) {
            Some(Ok(fd)) => fd,
            Some(Err(e)) => return Err(ManagerError::Protocol(format!("dup the socket: {e}"))),
            None => return Err(ManagerError::ManagerGone(g.gone.clone())),
        };
        Ok(Some((VersionTable::from_segment(seg)?, sock)))
    }

    /// One round trip. A failure of the connection (the server closed it, died, or
    /// did not answer within the timeout) is [`ManagerError::ManagerGone`], now and
    /// for every later call: after a lost reply the stream cannot be trusted to pair
    /// requests with replies.
    pub(crate) fn call(&self, req: &Request) -> Result<Reply, ManagerError> {
        let mut g = self.lock();
        if g.sock.is_none() {
            return Err(ManagerError::ManagerGone(g.gone.clone()));
        }
        let r = match g.send(req) {
            // Refused before a byte went out: the connection is intact.
            Err(ConnError::MessageTooLarge { len, max }) => {
                return Err(ManagerError::Protocol(format!(
                    "the request of {len} bytes exceeds the message limit of {max}"
                )));
            }
            sent => sent.and_then(|()| g.recv()),
        };
        match r {
            Ok(Reply::BadRequest(why)) => Err(ManagerError::Protocol(why)),
            Ok(reply) => Ok(reply),
            // The caller's interrupt (Ctrl+C): the reply may still come, so the
            // connection is out of step; report the interrupt, then gone.
            Err(e) => {
                let why = match &e {
                    ConnError::Timeout => format!("no reply within {:?}", g.timeout),
                    ConnError::Disconnected | ConnError::Closed => "the server closed the connection".into(),
                    other => other.to_string(),
                };
                let gone = g.broken(why);
                if e == ConnError::Interrupted {
                    return Err(ManagerError::Interrupted);
                }
                Err(gone)
            }
        }
    }
}
