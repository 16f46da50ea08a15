//! [`Listener`] and [`Client`]: how socket connections are made (bind, accept, connect,
//! each followed by the handshake of `auth.rs`).

use super::accept::{Backoff, Handshakes, is_exhaustion};
use super::conn::io_err;
use super::sys::{poll_fd, poll_fds};
use super::{Address, NetOptions, SocketConnection, auth};
use crate::connection::ConnError;
use crate::sync::{LIVENESS_INTERVAL, interrupt};
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::io;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug)]
enum Inner {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// The socket file a listener created: removed on drop if it is still that file.
#[derive(Debug)]
struct Created {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// A listening socket that accepts authenticated [`SocketConnection`]s, as Python's
/// `multiprocessing.connection.Listener(address, authkey=...)`.
///
/// [`Listener::accept`] returns a connection only after the handshake succeeded: with
/// an authkey, both sides proved they know it (see the [module docs](super)). A client
/// that fails the handshake — wrong key, not a shmring peer, or silent past
/// [`NetOptions::handshake_timeout`] — makes that `accept` return the error (its socket
/// closed); call `accept` again for the next client. Handshakes run concurrently, each
/// on a thread of its own, and `accept` returns the first that finishes: a silent
/// client costs at most its own handshake timeout and never delays an honest client
/// that connected after it.
///
/// When `accept` fails because descriptors, buffers or memory are exhausted (`EMFILE`,
/// `ENFILE`, `ENOBUFS`, `ENOMEM`), the listener backs off (1 ms doubling to 100 ms
/// between attempts, one line on stderr per episode) instead of retrying at once, and
/// keeps waiting.
///
/// A Unix socket file created by `bind` is removed when the listener drops (unless
/// something replaced it meanwhile). Binding over an existing file fails with a message
/// that says what to do, unless [`NetOptions::replace_stale`] is set and no listener
/// answers at that path.
///
/// ```
/// use shmring::net::{Client, Listener};
///
/// let dir = std::env::temp_dir().join(format!("shmring-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("listener.sock");
/// let l = Listener::bind(&path.as_path().into(), None)?;
/// let t = std::thread::spawn({
///     let path = path.clone();
///     move || Client::connect(&path.as_path().into(), None)?.send_bytes(b"hi")
/// });
/// assert_eq!(l.accept()?.recv_bytes()?, b"hi");
/// t.join().unwrap()?;
/// drop(l);
/// assert!(!path.exists()); // the listener removed its socket file
/// std::fs::remove_dir(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Listener {
    inner: Inner,
    local: Address,
    authkey: Option<Vec<u8>>,
    opts: NetOptions,
    created: Option<Created>,
    backoff: Backoff,
    handshakes: Handshakes,
}

fn bind_err(addr: &Address, source: io::Error) -> Error {
    Error::Io {
        op: "bind",
        name: addr.to_string(),
        source,
    }
}

impl Listener {
    /// Listen at `addr`; clients must present `authkey` (`None`: no authentication,
    /// only the protocol check). Default [`NetOptions`].
    pub fn bind(addr: &Address, authkey: Option<&[u8]>) -> Result<Listener> {
        Self::bind_with(addr, authkey, &NetOptions::default())
    }

    /// [`Listener::bind`] with options.
    pub fn bind_with(addr: &Address, authkey: Option<&[u8]>, opts: &NetOptions) -> Result<Listener> {
        let (inner, local, created) = match addr {
            Address::Unix(path) => {
                let l = match UnixListener::bind(path) {
                    Ok(l) => l,
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                        if !opts.replace_stale {
                            return Err(bind_err(
                                addr,
                                io::Error::new(
                                    io::ErrorKind::AddrInUse,
                                    "a file exists at this path (a socket left by a listener that did not \
                                     exit cleanly?): remove it, or bind with NetOptions::replace_stale(true)",
                                ),
                            ));
                        }
                        replace_stale(addr, path)?;
                        UnixListener::bind(path).map_err(|e| bind_err(addr, e))?
                    }
                    Err(e) => return Err(bind_err(addr, e)),
                };
                let md = std::fs::symlink_metadata(path).map_err(|e| bind_err(addr, e))?;
                let created = Created {
                    path: path.clone(),
                    dev: md.dev(),
                    ino: md.ino(),
                };
                (Inner::Unix(l), addr.clone(), Some(created))
            }
            Address::Abstract(name) => {
                let a = UnixAddr::from_abstract_name(name.as_bytes()).map_err(|e| bind_err(addr, e))?;
                let l = UnixListener::bind_addr(&a).map_err(|e| bind_err(addr, e))?;
                (Inner::Unix(l), addr.clone(), None)
            }
            Address::Tcp { host, port } => {
                let l = TcpListener::bind((host.as_str(), *port)).map_err(|e| bind_err(addr, e))?;
                let local = l.local_addr().map_err(|e| bind_err(addr, e))?;
                (Inner::Tcp(l), Address::from(local), None)
            }
        };
        let fd = match &inner {
            Inner::Unix(l) => l.as_fd(),
            Inner::Tcp(l) => l.as_fd(),
        };
        // Non-blocking: accept waits in poll(2) naps (interrupts, deadlines), and a
        // client that went away between poll and accept cannot block it.
        rustix::io::ioctl_fionbio(fd, true).map_err(|e| bind_err(addr, e.into()))?;
        let handshakes = Handshakes::new().map_err(|e| bind_err(addr, e))?;
        Ok(Listener {
            inner,
            local,
            authkey: authkey.map(<[u8]>::to_vec),
            opts: opts.clone(),
            created,
            backoff: Backoff::default(),
            handshakes,
        })
    }

    /// The address clients connect to (for TCP port 0, the port the kernel chose).
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// Wait for a client and run the handshake with it; as long as it takes for a
    /// client to connect ([`ConnError::Interrupted`] if an interrupt is pending), at
    /// most [`NetOptions::handshake_timeout`] for its handshake. A failed handshake
    /// returns its error ([`ConnError::Authentication`], [`ConnError::Handshake`],
    /// [`ConnError::HandshakeTimeout`]); the listener stays usable.
    pub fn accept(&self) -> std::result::Result<SocketConnection, ConnError> {
        self.accept_until(None)
    }

    /// [`Listener::accept`], waiting at most `timeout` for a client to connect
    /// ([`ConnError::Timeout`]); the handshake then has its own timeout.
    pub fn accept_timeout(&self, timeout: Duration) -> std::result::Result<SocketConnection, ConnError> {
        self.accept_until(Some(Instant::now().checked_add(timeout).unwrap_or_else(far_future)))
    }

    /// Wait for a client to connect, but do not run the handshake: the returned
    /// [`PendingConnection`] runs it with [`PendingConnection::handshake`], e.g. on the
    /// thread that will serve the client, so that a slow or silent client delays nobody
    /// else. Errors as [`Listener::accept`] before the handshake.
    pub fn accept_pending(&self) -> std::result::Result<PendingConnection, ConnError> {
        self.pending_until(None)
    }

    /// [`Listener::accept_pending`], waiting at most `timeout` for a client to connect
    /// ([`ConnError::Timeout`]).
    pub fn accept_pending_timeout(&self, timeout: Duration) -> std::result::Result<PendingConnection, ConnError> {
        self.pending_until(Some(Instant::now().checked_add(timeout).unwrap_or_else(far_future)))
    }

    fn accept_until(&self, deadline: Option<Instant>) -> std::result::Result<SocketConnection, ConnError> {
        use std::os::fd::AsRawFd;
        loop {
            if let Some(outcome) = self.handshakes.take() {
                return outcome;
            }
            // Every client waiting in the backlog starts its handshake now.
            while !self.handshakes.full() {
                match self.accept_raw(deadline)? {
                    Some(fd) => self.handshakes.start(self.pending(fd)),
                    None => break,
                }
            }
            if let Some(outcome) = self.handshakes.take() {
                return outcome;
            }
            let nap = self.nap(deadline)?;
            let listen = if self.handshakes.full() { 0 } else { libc::POLLIN };
            let mut fds = [
                libc::pollfd {
                    fd: self.as_fd().as_raw_fd(),
                    events: listen,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.handshakes.wake_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            poll_fds(&mut fds, Some(nap)).map_err(|e| io_err("poll", e))?;
        }
    }

    fn pending_until(&self, deadline: Option<Instant>) -> std::result::Result<PendingConnection, ConnError> {
        loop {
            if let Some(fd) = self.accept_raw(deadline)? {
                return Ok(self.pending(fd));
            }
            let nap = self.nap(deadline)?;
            poll_fd(self.as_fd(), libc::POLLIN, nap).map_err(|e| io_err("poll", e))?;
        }
    }

    /// Take one client off the backlog: `None` if none is waiting, or if resources are
    /// exhausted (then after the back-off's sleep).
    fn accept_raw(&self, deadline: Option<Instant>) -> std::result::Result<Option<OwnedFd>, ConnError> {
        let accepted = match &self.inner {
            Inner::Unix(l) => l.accept().map(|(s, _)| OwnedFd::from(s)),
            Inner::Tcp(l) => l.accept().and_then(|(s, _)| {
                s.set_nodelay(self.opts.nodelay)?;
                Ok(OwnedFd::from(s))
            }),
        };
        match accepted {
            Ok(fd) => {
                self.backoff.reset(&self.local);
                Ok(Some(fd))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => Ok(None),
            // The client gave up before we took it: wait for the next.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => Ok(None),
            // Out of descriptors, buffers or memory: the client stays in the backlog
            // and poll keeps reporting it, so sleep instead of spinning.
            Err(e) if is_exhaustion(&e) => {
                self.backoff.pause(&self.local, &e, deadline);
                Ok(None)
            }
            Err(e) => Err(io_err("accept", e)),
        }
    }

    /// How long to wait for the next event: [`ConnError::Interrupted`] if an interrupt
    /// is pending, [`ConnError::Timeout`] past the deadline.
    fn nap(&self, deadline: Option<Instant>) -> std::result::Result<Duration, ConnError> {
        if interrupt::pending() {
            return Err(ConnError::Interrupted);
        }
        match deadline {
            None => Ok(LIVENESS_INTERVAL),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ConnError::Timeout);
                }
                Ok(left.min(LIVENESS_INTERVAL))
            }
        }
    }

    /// An accepted socket, its handshake still to run.
    fn pending(&self, fd: OwnedFd) -> PendingConnection {
        // The accepted socket is blocking (accept4 does not inherit O_NONBLOCK).
        PendingConnection {
            conn: SocketConnection::new(fd, self.opts.max_message_len),
            authkey: self.authkey.clone(),
            timeout: self.opts.handshake_timeout,
        }
    }
}

/// A client accepted by [`Listener::accept_pending`] whose handshake has not run yet.
/// No user data can be sent or received before [`PendingConnection::handshake`]
/// succeeds; dropping it closes the socket.
///
/// ```
/// use shmring::net::{Address, Client, Listener};
///
/// let name = format!("shmring-doc-pending-{}", std::process::id());
/// let l = Listener::bind(&Address::Abstract(name.clone()), Some(b"key"))?;
/// let client = std::thread::spawn(move || Client::connect(&Address::Abstract(name), Some(b"key")));
/// let pending = l.accept_pending()?;
/// // e.g. hand `pending` to the thread that will serve this client
/// let mut conn = std::thread::spawn(move || pending.handshake()).join().unwrap()?;
/// let mut c = client.join().unwrap()?;
/// c.send(&7u32)?;
/// assert_eq!(conn.recv::<u32>()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PendingConnection {
    conn: SocketConnection,
    authkey: Option<Vec<u8>>,
    timeout: Duration,
}

impl PendingConnection {
    /// Run the server side of the handshake (at most the listener's
    /// [`NetOptions::handshake_timeout`]); the errors of [`Listener::accept`].
    pub fn handshake(self) -> std::result::Result<SocketConnection, ConnError> {
        let mut conn = self.conn;
        auth::server(&mut conn.transport, self.authkey.as_deref(), self.timeout)?;
        Ok(conn)
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}

/// Remove the socket file at `path` if no listener answers there.
fn replace_stale(addr: &Address, path: &PathBuf) -> Result<()> {
    let md = std::fs::symlink_metadata(path).map_err(|e| bind_err(addr, e))?;
    if !md.file_type().is_socket() {
        return Err(bind_err(
            addr,
            io::Error::new(
                io::ErrorKind::AddrInUse,
                "a file that is not a socket exists at this path",
            ),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(bind_err(
            addr,
            io::Error::new(io::ErrorKind::AddrInUse, "a listener is alive at this path"),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(|e| bind_err(addr, e))
        }
        Err(e) => Err(bind_err(addr, e)),
    }
}

impl AsFd for PendingConnection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::Unix(l) => l.as_fd(),
            Inner::Tcp(l) => l.as_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(c) = &self.created {
            // Only the file this listener created: not one that replaced it meanwhile.
            if let Ok(md) = std::fs::symlink_metadata(&c.path)
                && md.file_type().is_socket()
                && md.dev() == c.dev
                && md.ino() == c.ino
            {
                let _ = std::fs::remove_file(&c.path);
            }
        }
    }
}

/// Connects to a [`Listener`], as Python's `multiprocessing.connection.Client(address,
/// authkey=...)`.
///
/// ```
/// use shmring::net::{Address, Client, Listener, NetOptions};
/// use shmring::ConnError;
///
/// let name = format!("shmring-doc-client-{}", std::process::id());
/// let l = Listener::bind(&Address::Abstract(name.clone()), Some(b"right"))?;
/// let t = std::thread::spawn(move || l.accept().map(|_| ()));
/// let r = Client::connect(&Address::Abstract(name), Some(b"wrong"));
/// assert!(matches!(r, Err(ConnError::Authentication(_))));
/// assert!(matches!(t.join().unwrap(), Err(ConnError::Authentication(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Client;

impl Client {
    /// Connect to the listener at `addr` and run the handshake with `authkey` (which
    /// must match the listener's: both or neither). Default [`NetOptions`].
    pub fn connect(addr: &Address, authkey: Option<&[u8]>) -> std::result::Result<SocketConnection, ConnError> {
        Self::connect_with(addr, authkey, &NetOptions::default())
    }

    /// [`Client::connect`] with options; a TCP connect also waits at most
    /// [`NetOptions::handshake_timeout`] per resolved address.
    pub fn connect_with(
        addr: &Address,
        authkey: Option<&[u8]>,
        opts: &NetOptions,
    ) -> std::result::Result<SocketConnection, ConnError> {
        let what = |e: io::Error| io_err(&format!("connect {addr}"), e);
        let fd: OwnedFd = match addr {
            Address::Unix(path) => UnixStream::connect(path).map_err(what)?.into(),
            Address::Abstract(name) => {
                let a = UnixAddr::from_abstract_name(name.as_bytes()).map_err(what)?;
                UnixStream::connect_addr(&a).map_err(what)?.into()
            }
            Address::Tcp { host, port } => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "the host resolved to no address");
                let mut stream = None;
                for a in (host.as_str(), *port).to_socket_addrs().map_err(what)? {
                    match TcpStream::connect_timeout(&a, opts.handshake_timeout) {
                        Ok(s) => {
                            stream = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let s = stream.ok_or_else(|| what(last))?;
                s.set_nodelay(opts.nodelay).map_err(what)?;
                s.into()
            }
        };
        let mut conn = SocketConnection::new(fd, opts.max_message_len);
        auth::client(&mut conn.transport, authkey, opts.handshake_timeout)?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("shmring-test-net-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_stale_socket_file_is_an_error_unless_replacing_is_asked() {
        let dir = temp_dir("stale");
        let path = dir.join("stale.sock");
        let addr = Address::from(path.as_path());
        // A socket file left behind: std's listener does not remove its file.
        drop(UnixListener::bind(&path).unwrap());
        let e = Listener::bind(&addr, None).unwrap_err().to_string();
        assert!(e.contains("replace_stale"), "{e}");
        let replace = NetOptions::new().replace_stale(true);
        let l = Listener::bind_with(&addr, None, &replace).unwrap();
        // A live listener is never replaced.
        let e = Listener::bind_with(&addr, None, &replace).unwrap_err().to_string();
        assert!(e.contains("alive"), "{e}");
        drop(l);
        assert!(!path.exists());
        // Nor a file that is not a socket.
        std::fs::write(&path, b"data").unwrap();
        let e = Listener::bind_with(&addr, None, &replace).unwrap_err().to_string();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn drop_removes_only_the_file_the_listener_created() {
        let dir = temp_dir("owner");
        let path = dir.join("owner.sock");
        let l = Listener::bind(&Address::from(path.as_path()), None).unwrap();
        // Someone replaced the file meanwhile: it is theirs, not ours to remove.
        std::fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        drop(l);
        assert!(path.exists(), "the listener removed a file it did not create");
        drop(other);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tcp_port_zero_reports_the_bound_port() {
        let l = Listener::bind(&"127.0.0.1:0".parse().unwrap(), None).unwrap();
        match l.local_addr() {
            Address::Tcp { host, port } => assert!(host == "127.0.0.1" && *port != 0),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            l.accept_timeout(Duration::from_millis(20)).err(),
            Some(ConnError::Timeout)
        );
    }
}
