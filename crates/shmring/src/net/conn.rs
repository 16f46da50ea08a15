//! [`SocketConnection`]: one end of a socket connection after its handshake — a
//! [`Connection`] over [`SocketTransport`], which carries its messages over a stream
//! socket in the frame format of `frame.rs` — and what only sockets do (handles in
//! band, hand-over of the socket).

use super::frame::{FrameReader, HANDLE, HEADER_LEN, MAX_FRAME_LEN, MESSAGE, header};
use super::sys::{poll_fd, send_parcel_frame};
use crate::connection::transport::sealed::Sealed;
use crate::connection::{ConnError, Connection, FrameError, Transport};
use crate::handoff::socket::{CONTROL_LEN, ControlSpace, HEADER_LEN as PARCEL_HEADER_LEN, MAX_FDS};
use crate::handoff::{Handoff, HandoffError, Parcel};
use crate::sync::{LIVENESS_INTERVAL, Wait, interrupt};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer, SendFlags, sockopt,
};
use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::time::Duration;
/// Frames up to this size (header included) are copied into one buffer and sent with
/// `send(2)`; larger ones with `sendmsg(2)` over the header and the caller's bytes.
const SMALL_FRAME: usize = 1 << 10;
/// Descriptors received and not yet claimed by a handle frame: more is a broken stream
/// (a peer attaching descriptors to its messages, not its handles).
const MAX_QUEUED_FDS: usize = 4 * MAX_FDS;
/// The shortest nap given to `SO_RCVTIMEO`/`SO_SNDTIMEO` (zero would mean "forever").
const MIN_NAP: Duration = Duration::from_millis(1);

/// The next nap of a blocking socket call: [`Wait::nap`] (at most
/// [`LIVENESS_INTERVAL`], at most what is left; `None` when the time is up), but never
/// under [`MIN_NAP`].
#[inline]
fn socket_nap(wait: Wait) -> Option<Duration> {
    wait.nap().map(|n| n.max(MIN_NAP))
}

/// The error of a failed system call on the socket.
pub(crate) fn io_err(op: &str, e: impl std::fmt::Display) -> ConnError {
    ConnError::Io(format!("{op}: {e}"))
}

/// One end of a socket connection, made by [`Listener::accept`](super::Listener::accept)
/// or [`Client::connect`](super::Client::connect) once the handshake succeeded: a
/// [`Connection`] over a [`SocketTransport`]. It has the methods of a pipe's
/// [`Connection`](crate::Connection) — the same code, so the same names and meanings
/// (and [`MessageConnection`](crate::connection::MessageConnection)) — so code written
/// for one runs over the other; and its own: handles in band
/// ([`send_handle`](Connection::send_handle), [`recv_handle`](Connection::recv_handle)),
/// the socket itself ([`into_inner`](Connection::into_inner), `AsFd`) and
/// [`Handoff`].
///
/// The differences a stream socket makes:
///
/// - a message over the receiver's limit is refused from its header
///   ([`ConnError::MessageTooLarge`]); its bytes are skipped as they arrive and the
///   connection stays usable, as with a pipe;
/// - `try_send*` and `send*_timeout` give up ([`ConnError::WouldBlock`],
///   [`ConnError::Timeout`]) only while no byte of the message is in the socket: a
///   stream cannot take back half a frame, so once the first bytes went out the rest
///   is written, waiting for the peer to read (an interrupt is likewise only noticed
///   before the first byte);
/// - a message cut by the peer's close or death is dropped (the receive reports
///   [`ConnError::Disconnected`]).
///
/// Blocking calls sleep in the kernel (`SO_RCVTIMEO`/`SO_SNDTIMEO`) in naps of at most
/// [`LIVENESS_INTERVAL`] and return [`ConnError::Interrupted`] when an interrupt is
/// pending (`shmring::signal`).
///
/// ```
/// use shmring::net::{Client, Listener};
///
/// let l = Listener::bind(&"127.0.0.1:0".parse()?, Some(b"secret"))?;
/// let addr = l.local_addr().clone();
/// let t = std::thread::spawn(move || -> Result<u64, shmring::ConnError> {
///     let mut c = Client::connect(&addr, Some(b"secret"))?;
///     c.send(&("ping", 1u64))?;
///     c.recv::<u64>()
/// });
/// let mut s = l.accept()?;
/// let (word, n): (String, u64) = s.recv()?;
/// assert_eq!(word, "ping");
/// s.send(&(n + 1))?;
/// assert_eq!(t.join().unwrap()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type SocketConnection = Connection<SocketTransport>;

/// The [`Transport`] of a [`SocketConnection`]: a connected stream socket (Unix or TCP)
/// after its handshake, messages in length-prefixed frames. Made by
/// [`Listener::accept`](super::Listener::accept) and
/// [`Client::connect`](super::Client::connect); it has no methods of its own.
pub struct SocketTransport {
    fd: OwnedFd,
    /// [`Connection::close`] was called (the socket is shut down).
    closed: bool,
    reader: FrameReader,
    max: usize,
    /// The peer shut its sending side or the connection was reset: after what is
    /// buffered, receives report `Disconnected`.
    eof: bool,
    /// A send found the peer gone.
    tx_gone: bool,
    /// The socket's current `SO_RCVTIMEO` / `SO_SNDTIMEO` (`None`: never set).
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
    /// A small frame being sent, header and payload together.
    wbuf: Vec<u8>,
    /// Descriptors that arrived (`SCM_RIGHTS`, in order) and await their handle frame.
    fds: VecDeque<OwnedFd>,
}

impl std::fmt::Debug for SocketTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketConnection")
            .field("fd", &self.fd)
            .field("closed", &self.closed)
            .field("max_message_len", &self.max)
            .field("eof", &self.eof)
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl Connection<SocketTransport> {
    /// Wrap a connected stream socket (blocking mode), before its handshake.
    pub(crate) fn new(fd: OwnedFd, max: usize) -> Self {
        Connection::from_transport(SocketTransport {
            fd,
            closed: false,
            reader: FrameReader::new(max.min(MAX_FRAME_LEN)),
            max: max.min(MAX_FRAME_LEN),
            eof: false,
            tx_gone: false,
            rcvtimeo: None,
            sndtimeo: None,
            wbuf: Vec::new(),
            fds: VecDeque::new(),
        })
    }

    /// The socket, for code that needs the descriptor itself (e.g. to pass descriptors
    /// over a Unix socket with `SCM_RIGHTS`). Bytes already read into this end's
    /// receive buffer are dropped with it: hand it over between messages. The socket is
    /// left in blocking mode with no send or receive timeout. `None` if closed.
    pub fn into_inner(self) -> Option<OwnedFd> {
        let t = self.transport;
        if t.closed {
            return None;
        }
        let _ = sockopt::set_socket_timeout(&t.fd, sockopt::Timeout::Recv, None);
        let _ = sockopt::set_socket_timeout(&t.fd, sockopt::Timeout::Send, None);
        Some(t.fd)
    }

    /// Hand `item` to the peer in band: a handle frame (the object's kind and
    /// metadata) with its descriptors attached as `SCM_RIGHTS`, in order with the
    /// messages; the peer rebuilds it with [`Connection::recv_handle`]. Unix
    /// sockets only (over TCP: [`HandoffError::NotTransferable`], nothing sent). The
    /// local handle is consumed.
    ///
    /// ```
    /// use shmring::net::{Address, Client, Listener};
    ///
    /// let l = Listener::bind(&Address::Abstract(format!("shmring-doc-handle-{}", std::process::id())), None)?;
    /// let addr = l.local_addr().clone();
    /// let t = std::thread::spawn(move || -> Result<u64, String> {
    ///     let mut c = Client::connect(&addr, None).map_err(|e| e.to_string())?;
    ///     let hello: String = c.recv().map_err(|e| e.to_string())?;
    ///     let mut q = c.recv_handle::<shmring::Queue<u64>>(None).map_err(|e| e.to_string())?;
    ///     Ok(q.get().map_err(|e| e.to_string())? + hello.len() as u64)
    /// });
    /// let mut s = l.accept()?;
    /// let mut q = shmring::Queue::<u64>::new(8)?;
    /// q.put(&40)?;
    /// s.send(&"hi")?;
    /// s.send_handle(q.try_clone()?)?;
    /// assert_eq!(t.join().unwrap()?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_handle<T: Handoff>(&mut self, item: T) -> Result<(), HandoffError> {
        self.send_parcel(&item.into_parcel()?)
    }

    /// Send a parcel as a handle frame (see [`Connection::send_handle`]).
    pub fn send_parcel(&mut self, parcel: &Parcel) -> Result<(), HandoffError> {
        let t = &mut self.transport;
        if t.closed {
            return Err(HandoffError::Closed);
        }
        if t.tx_gone {
            return Err(HandoffError::Closed);
        }
        // Blocking sends: clear a nap a timed send may have left.
        if t.sndtimeo.is_some() {
            sockopt::set_socket_timeout(&t.fd, sockopt::Timeout::Send, None)
                .map_err(|e| HandoffError::io("setsockopt(SO_SNDTIMEO)", e))?;
            t.sndtimeo = None;
        }
        let r = send_parcel_frame(t.fd.as_fd(), parcel);
        if matches!(r, Err(HandoffError::Closed)) {
            t.tx_gone = true;
        }
        r
    }

    /// Receive a `T` sent with [`Connection::send_handle`], waiting at most
    /// `timeout` (`None`: as long as it takes). A handle of another kind is
    /// [`HandoffError::WrongKind`] (its descriptors are closed). A message where a
    /// handle was expected is consumed and reported as [`HandoffError::Malformed`].
    pub fn recv_handle<T: Handoff>(&mut self, timeout: Option<Duration>) -> Result<T, HandoffError> {
        T::from_parcel(self.recv_parcel(timeout)?)
    }

    /// Receive a parcel sent as a handle frame (see [`Connection::recv_handle`]).
    pub fn recv_parcel(&mut self, timeout: Option<Duration>) -> Result<Parcel, HandoffError> {
        let wait = Wait::from_timeout(timeout);
        let mut buf = Vec::new();
        match self.transport.recv_frame(&mut buf, wait) {
            Ok((HANDLE, _)) => self.transport.take_parcel(&buf),
            Ok((_, n)) => Err(HandoffError::Malformed(format!(
                "a message of {n} bytes where a handle was expected (it was dropped)"
            ))),
            Err(ConnError::Disconnected | ConnError::Closed) => Err(HandoffError::Closed),
            Err(ConnError::Timeout) => Err(HandoffError::Timeout),
            Err(ConnError::Interrupted) => Err(HandoffError::Interrupted),
            Err(e) => Err(HandoffError::Malformed(e.to_string())),
        }
    }
}

impl Transport for SocketTransport {}

impl Sealed for SocketTransport {
    fn check_send(&mut self) -> Result<(), ConnError> {
        self.fd().map(|_| ())
    }

    #[inline]
    fn send_message(&mut self, msg: &[u8], wait: Wait) -> Result<(), ConnError> {
        self.send_frame(MESSAGE, msg, wait)
    }

    fn recv_message(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, ConnError> {
        match self.recv_frame(out, wait)? {
            (MESSAGE, n) => Ok(n),
            (HANDLE, _) => {
                // Close its descriptors (the queue stays in step), report it.
                let _ = self.take_parcel(out);
                Err(ConnError::UnexpectedHandle)
            }
            // Only before the handshake ended (the reader refuses them after): a
            // receive on a connection still in its handshake, which users never hold.
            (kind, _) => Err(ConnError::BadFrame(crate::connection::FrameError::UnknownKind(kind))),
        }
    }

    /// Sleeps in `poll(2)` naps of at most [`LIVENESS_INTERVAL`]: a whole message is
    /// buffered, bytes are in the socket, the peer closed, or a bad frame broke the
    /// stream.
    fn poll(&self, timeout: Option<Duration>) -> Result<bool, ConnError> {
        let fd = self.fd()?;
        if self.eof || self.reader.has_frame() {
            return Ok(true);
        }
        let wait = Wait::from_timeout(timeout);
        let mut first = true;
        loop {
            let nap = if first && timeout == Some(Duration::ZERO) {
                Duration::ZERO
            } else {
                if interrupt::pending() {
                    return Err(ConnError::Interrupted);
                }
                match socket_nap(wait) {
                    Some(n) => n,
                    None => return Ok(false),
                }
            };
            first = false;
            if poll_fd(fd, libc::POLLIN, nap).map_err(|e| io_err("poll", e))? {
                return Ok(true);
            }
            if nap.is_zero() {
                return Ok(false);
            }
        }
    }

    /// Shuts the socket down in both directions.
    fn close(&mut self) {
        if !self.closed {
            // Both directions: the peer reads what was sent, then the end of the stream.
            let _ = rustix::net::shutdown(&self.fd, rustix::net::Shutdown::Both);
        }
        self.closed = true;
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    /// Socket connections are duplex.
    fn readable(&self) -> bool {
        true
    }

    /// Socket connections are duplex.
    fn writable(&self) -> bool {
        true
    }

    fn max_message_len(&self) -> usize {
        self.max
    }
}

impl SocketTransport {
    fn fd(&self) -> Result<BorrowedFd<'_>, ConnError> {
        if self.closed {
            return Err(ConnError::Closed);
        }
        Ok(self.fd.as_fd())
    }

    /// Use the receive limit `max` (the handshake reads with a small one).
    pub(crate) fn set_recv_limit(&mut self, max: usize) {
        self.reader.set_max(max.min(MAX_FRAME_LEN));
    }

    /// The handshake succeeded: only MESSAGE frames from now on.
    pub(crate) fn end_handshake(&mut self) {
        self.reader.end_handshake();
        self.set_recv_limit(self.max);
    }

    fn set_timeout(&mut self, which: sockopt::Timeout, nap: Duration) -> Result<(), ConnError> {
        let cur = match which {
            sockopt::Timeout::Recv => &mut self.rcvtimeo,
            sockopt::Timeout::Send => &mut self.sndtimeo,
        };
        if *cur != Some(nap) {
            sockopt::set_socket_timeout(&self.fd, which, Some(nap)).map_err(|e| io_err("setsockopt", e))?;
            *cur = Some(nap);
        }
        Ok(())
    }

    // -- sending ---------------------------------------------------------------------

    /// Send one frame of `kind` carrying `msg`: header and payload in one system call.
    pub(crate) fn send_frame(&mut self, kind: u8, msg: &[u8], wait: Wait) -> Result<(), ConnError> {
        self.fd()?;
        if msg.len() > self.max {
            return Err(ConnError::MessageTooLarge {
                len: msg.len() as u64,
                max: self.max,
            });
        }
        if self.tx_gone {
            return Err(ConnError::Disconnected);
        }
        let h = header(kind, msg.len());
        let total = HEADER_LEN + msg.len();
        // A small frame is copied into one buffer and sent with `send`; a larger one goes
        // from the caller's bytes with `sendmsg` (two I/O vectors). One call either way.
        let small = total <= SMALL_FRAME;
        if small {
            self.wbuf.clear();
            self.wbuf.extend_from_slice(&h);
            self.wbuf.extend_from_slice(msg);
        }
        let mut sent = 0usize;
        loop {
            let started = sent > 0;
            let mut flags = SendFlags::NOSIGNAL;
            if wait.is_now() && !started {
                flags |= SendFlags::DONTWAIT;
            } else {
                if !started && interrupt::pending() {
                    return Err(ConnError::Interrupted);
                }
                // A started frame is finished whatever the mode: naps of the usual length.
                let nap = if started {
                    Some(LIVENESS_INTERVAL)
                } else {
                    socket_nap(wait)
                };
                let Some(nap) = nap else {
                    return Err(ConnError::Timeout);
                };
                self.set_timeout(sockopt::Timeout::Send, nap)?;
            }
            let res = if small {
                rustix::net::send(&self.fd, &self.wbuf[sent..], flags)
            } else {
                let iov_buf;
                let iov: &[IoSlice<'_>] = if sent < HEADER_LEN {
                    iov_buf = [IoSlice::new(&h[sent..]), IoSlice::new(msg)];
                    &iov_buf
                } else {
                    iov_buf = [IoSlice::new(&msg[sent - HEADER_LEN..]), IoSlice::new(&[])];
                    &iov_buf[..1]
                };
                rustix::net::sendmsg(&self.fd, iov, &mut SendAncillaryBuffer::default(), flags)
            };
            match res {
                Ok(n) => {
                    sent += n;
                    if sent >= total {
                        return Ok(());
                    }
                }
                Err(Errno::AGAIN) if !started && wait.is_now() => return Err(ConnError::WouldBlock),
                Err(Errno::AGAIN | Errno::INTR) => {}
                Err(Errno::PIPE | Errno::CONNRESET) => {
                    self.tx_gone = true;
                    return Err(ConnError::Disconnected);
                }
                Err(e) => return Err(io_err("sendmsg", e)),
            }
        }
    }

    // -- receiving -------------------------------------------------------------------

    /// Read once from the socket into the frame reader, waiting per `wait`.
    fn fill(&mut self, wait: Wait) -> Result<(), ConnError> {
        loop {
            let flags = if wait.is_now() {
                RecvFlags::DONTWAIT
            } else {
                if interrupt::pending() {
                    return Err(ConnError::Interrupted);
                }
                let Some(nap) = socket_nap(wait) else {
                    return Err(ConnError::Timeout);
                };
                self.set_timeout(sockopt::Timeout::Recv, nap)?;
                RecvFlags::empty()
            };
            // `recvmsg` with room for one handle's descriptors: the kernel ends a read
            // after the bytes that carried descriptors, so they belong to the bytes read
            // (a handle frame's first byte; see `send_parcel_frame`).
            let mut space = ControlSpace([MaybeUninit::uninit(); CONTROL_LEN]);
            let mut control = RecvAncillaryBuffer::new(&mut space.0);
            let mut iov = [IoSliceMut::new(self.reader.read_buf())];
            let got = rustix::net::recvmsg(&self.fd, &mut iov, &mut control, flags | RecvFlags::CMSG_CLOEXEC);
            if let Ok(m) = &got {
                for msg in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(it) = msg {
                        self.fds.extend(it);
                    }
                }
                let why = if m.flags.contains(ReturnFlags::CTRUNC) {
                    Some("more descriptors with one read than a handle carries")
                } else if self.fds.len() > MAX_QUEUED_FDS {
                    Some("more descriptors than handle frames")
                } else {
                    None
                };
                if let Some(why) = why {
                    self.fds.clear();
                    self.reader.break_with(FrameError::Descriptors(why));
                }
            }
            match got.map(|m| m.bytes) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.reader.filled(n);
                    return Ok(());
                }
                Err(Errno::AGAIN) if wait.is_now() => return Err(ConnError::WouldBlock),
                Err(Errno::AGAIN | Errno::INTR) => {}
                Err(Errno::CONNRESET) => {
                    self.eof = true;
                    return Ok(());
                }
                Err(e) => return Err(io_err("recvmsg", e)),
            }
        }
    }

    /// Receive the next frame into `out`, waiting per `wait`: its kind and length.
    pub(crate) fn recv_frame(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<(u8, usize), ConnError> {
        self.fd()?;
        loop {
            if let Some(frame) = self.reader.next_frame(out)? {
                return Ok(frame);
            }
            if self.eof {
                // A message cut by the end of the stream is dropped.
                return Err(ConnError::Disconnected);
            }
            self.fill(wait)?;
        }
    }

    /// The parcel of the handle frame whose payload is `payload`: its header checked
    /// against the descriptors queued for it, which it takes (all of them are closed on
    /// an error).
    fn take_parcel(&mut self, payload: &[u8]) -> Result<Parcel, HandoffError> {
        let Ok(hdr) = <&[u8; PARCEL_HEADER_LEN]>::try_from(payload) else {
            return Err(HandoffError::Malformed(format!(
                "a handle frame of {} bytes (a handoff header is {PARCEL_HEADER_LEN})",
                payload.len()
            )));
        };
        // The count, read before anything else is trusted: at most what is queued.
        let n = u32::from_le_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]) as usize;
        let take = n.min(self.fds.len());
        let fds: Vec<OwnedFd> = self.fds.drain(..take).collect();
        crate::handoff::socket::parse(hdr, fds, MAX_FDS)
    }

    /// Whether a receive returns without reading the socket: the end was closed, the
    /// stream ended, or a whole frame (or an error) is buffered ([`super::wait`]).
    pub(crate) fn buffered_ready(&self) -> bool {
        self.closed || self.eof || self.reader.has_frame()
    }
}

/// A connection handed to another process (a [`Process`](crate::process::Process) by
/// inheritance, or over a Unix socket): the socket and the message limit. The handshake
/// stays done: the receiver continues the conversation where this end left it. Only
/// between messages: an end holding received bytes it has not delivered (a message
/// read ahead, one half received, descriptors of a handle) refuses with
/// [`HandoffError::NotTransferable`], as does a closed end.
///
/// ```
/// use shmring::handoff::Handoff;
/// use shmring::net::{Address, Client, Listener, SocketConnection};
///
/// let l = Listener::bind(&Address::Abstract(format!("shmring-doc-sockho-{}", std::process::id())), None)?;
/// let addr = l.local_addr().clone();
/// let t = std::thread::spawn(move || -> Result<u32, shmring::ConnError> {
///     let mut c = Client::connect(&addr, None)?;
///     c.send(&1u32)?;
///     c.recv()
/// });
/// let mut s = l.accept()?;
/// assert_eq!(s.recv::<u32>()?, 1);
/// // As another process would rebuild it from the descriptors:
/// let mut moved = SocketConnection::from_parcel(s.into_parcel()?)?;
/// moved.send(&2u32)?;
/// assert_eq!(t.join().unwrap()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl Handoff for SocketConnection {
    const KIND: crate::handoff::Kind = crate::handoff::Kind::SocketConnection;

    fn into_parcel(self) -> Result<Parcel, HandoffError> {
        let t = &self.transport;
        if t.closed {
            return Err(HandoffError::NotTransferable("a closed socket connection"));
        }
        if !t.reader.is_empty() || !t.fds.is_empty() {
            return Err(HandoffError::NotTransferable(
                "a socket connection holding received bytes it has not delivered",
            ));
        }
        let max = t.max as u64;
        let fd = self
            .into_inner()
            .ok_or(HandoffError::NotTransferable("a closed socket connection"))?;
        Ok(Parcel {
            kind: Self::KIND,
            meta: max,
            fds: vec![fd],
        })
    }

    fn from_parcel(parcel: Parcel) -> Result<Self, HandoffError> {
        let (max, mut fds) = parcel.expect::<Self>(1)?;
        let fd = fds.pop().ok_or(HandoffError::FdCount { expected: 1, got: 0 })?;
        let stream = sockopt::socket_type(&fd).map_err(|e| HandoffError::io("getsockopt(SO_TYPE)", e))?;
        if stream != rustix::net::SocketType::STREAM {
            return Err(HandoffError::Malformed("the descriptor is not a stream socket".into()));
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX).clamp(1, MAX_FRAME_LEN);
        let mut conn = SocketConnection::new(fd, max);
        conn.transport.end_handshake();
        Ok(conn)
    }
}

impl AsFd for SocketConnection {
    /// The socket (shut down in both directions if the connection was closed).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.transport.fd.as_fd()
    }
}
