//! [`PipeTransport`]: a [`Connection`]'s transport over shared memory — its sends and
//! receives over the frame format of `frame.rs` — and how pipe ends are made
//! (anonymous pair, named, from descriptors).

use super::frame::{ABORT_FRAME, Framer, MIN_RECORD, Reassembler, WHOLE};
use super::transport::sealed::Sealed;
use super::{ConnError, Connection, ConnectionOptions, DEFAULT_CAPACITY, MessageRef, Transport};
use crate::ring::spsc::{self, Consumer, Producer, ReadLook as Look};
use crate::sync::{LIVENESS_INTERVAL, Wait};
use crate::{Error, Result};
use rustix::fd::OwnedFd;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// A chunked message travels in records of `1 / CHUNKS_PER_RING` of the ring.
const CHUNKS_PER_RING: usize = 8;

/// What an end was made to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    Duplex,
    RecvOnly,
    SendOnly,
}

/// The [`Transport`] of a pipe end ([`Connection`], which is `Connection<PipeTransport>`):
/// one SPSC ring per direction in shared memory, messages in frames (see the [module
/// docs](super)). Made by [`pipe`], [`Connection::create`], [`Connection::open`] and
/// [`Connection::from_fds`]; it has no methods of its own.
pub struct PipeTransport {
    tx: Option<Producer>,
    rx: Option<Consumer>,
    ends: Ends,
    closed: bool,
    max: usize,
    reasm: Reassembler,
    /// An earlier send stopped in the middle of a chunked message: an ABORT frame goes
    /// out before the next message.
    abort_pending: bool,
    /// When readiness checks last asked the kernel whether the peer died: at most once
    /// per [`LIVENESS_INTERVAL`], so that a loop of `wait` or `poll` calls does not
    /// make a syscall per connection per call.
    liveness_checked: Cell<Option<Instant>>,
    /// A liveness check found the peer dead (final: a dead end is never re-attached).
    peer_dead: Cell<bool>,
}

impl std::fmt::Debug for PipeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("ends", &self.ends)
            .field("closed", &self.closed)
            .field("max_message_len", &self.max)
            .field("abort_pending", &self.abort_pending)
            .field("reassembler", &self.reasm)
            .finish_non_exhaustive()
    }
}

/// Two connected ends: `pipe(true)` gives two duplex ends; `pipe(false)` gives
/// `(receive-only end, send-only end)`, as Python's `Pipe(duplex=False)`. Each direction
/// is an anonymous SPSC ring of [`DEFAULT_CAPACITY`] bytes in a memfd segment of its
/// own.
///
/// ```
/// let (mut r, mut w) = shmring::connection::pipe(false)?;
/// w.send(&"one way")?;
/// assert_eq!(r.recv::<String>()?, "one way");
/// assert!(w.send(&1).is_ok() && r.send(&1).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "Pipe")]
pub fn pipe(duplex: bool) -> Result<(Connection, Connection)> {
    pipe_with(duplex, DEFAULT_CAPACITY, &ConnectionOptions::default())
}

/// [`pipe`] with rings of at least `capacity` bytes per direction and options (both
/// ends get the same).
///
/// ```
/// use shmring::connection::{pipe_with, ConnectionOptions};
/// let (mut a, mut b) = pipe_with(true, 4096, &ConnectionOptions::new())?;
/// a.send_bytes(b"small ring")?;
/// assert_eq!(b.recv_bytes()?, b"small ring");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn pipe_with(duplex: bool, capacity: usize, opts: &ConnectionOptions) -> Result<(Connection, Connection)> {
    let (p1, c1) = spsc::channel_with(capacity, &opts.ring)?;
    if !duplex {
        return Ok((
            Connection::from_rings(None, Some(c1), opts, false)?,
            Connection::from_rings(Some(p1), None, opts, false)?,
        ));
    }
    let (p2, c2) = spsc::channel_with(capacity, &opts.ring)?;
    Ok((
        Connection::from_rings(Some(p1), Some(c2), opts, false)?,
        Connection::from_rings(Some(p2), Some(c1), opts, false)?,
    ))
}

/// The names of the two rings of the named connection `name`: (creator to opener,
/// opener to creator).
pub(super) fn ring_names(name: &str) -> (String, String) {
    (format!("{name}.a2b"), format!("{name}.b2a"))
}

impl Connection<PipeTransport> {
    fn from_rings(
        tx: Option<Producer>,
        rx: Option<Consumer>,
        opts: &ConnectionOptions,
        handed_over: bool,
    ) -> Result<Self> {
        let ends = match (&tx, &rx) {
            (Some(_), Some(_)) => Ends::Duplex,
            (None, Some(_)) => Ends::RecvOnly,
            (Some(_), None) => Ends::SendOnly,
            (None, None) => {
                return Err(Error::InvalidArgument(
                    "a connection needs a receiving ring, a sending ring, or both".into(),
                ));
            }
        };
        if let Some(p) = &tx
            && p.max_message_len() < MIN_RECORD
        {
            return Err(Error::InvalidArgument(format!(
                "the sending ring's records of {} bytes cannot carry frames",
                p.max_message_len()
            )));
        }
        let max = opts.max_message_len;
        Ok(Connection::from_transport(PipeTransport {
            tx,
            rx,
            ends,
            closed: false,
            max,
            reasm: if handed_over {
                Reassembler::resyncing(max)
            } else {
                Reassembler::new(max)
            },
            abort_pending: false,
            liveness_checked: Cell::new(None),
            peer_dead: Cell::new(false),
        }))
    }

    /// Create the named duplex connection `name` with rings of at least `capacity`
    /// bytes per direction, and return the creator's end. The rings are the segments
    /// `<name>.a2b` (this end sends) and `<name>.b2a` (this end receives), unlinked when
    /// this end drops; another process attaches with [`Connection::open`].
    ///
    /// ```
    /// use shmring::connection::Connection;
    /// let name = format!("doc-conn-{}", std::process::id());
    /// let mut a = Connection::create(&name, 1 << 16)?;
    /// let mut b = Connection::open(&name)?; // usually in another process
    /// a.send(&"to the opener")?;
    /// b.send(&"to the creator")?;
    /// assert_eq!(b.recv::<String>()?, "to the opener");
    /// assert_eq!(a.recv::<String>()?, "to the creator");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_with(name, capacity, &ConnectionOptions::default())
    }

    /// [`Connection::create`] with options.
    pub fn create_with(name: &str, capacity: usize, opts: &ConnectionOptions) -> Result<Self> {
        let (a2b, b2a) = ring_names(name);
        let tx = Producer::create_with(&a2b, capacity, &opts.ring)?;
        let rx = Consumer::create_with(&b2a, capacity, &opts.ring)?;
        Self::from_rings(Some(tx), Some(rx), opts, false)
    }

    /// Attach to the named connection `name` made by [`Connection::create`] (which must
    /// have returned): receive on `<name>.a2b`, send on `<name>.b2a`.
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &ConnectionOptions::default())
    }

    /// [`Connection::open`] with options.
    pub fn open_with(name: &str, opts: &ConnectionOptions) -> Result<Self> {
        let (a2b, b2a) = ring_names(name);
        let rx = Consumer::open_with(&a2b, &opts.ring)?;
        let tx = Producer::open_with(&b2a, &opts.ring)?;
        Self::from_rings(Some(tx), Some(rx), opts, false)
    }

    /// Rebuild an end from the descriptors of [`Connection::into_fds`], in the same
    /// order: the receiving ring's, then the sending ring's (`None` for the missing
    /// direction of a one-way end). Frames of a message whose beginning the previous
    /// holder received are skipped.
    ///
    /// ```
    /// use shmring::connection::{pipe, Connection};
    /// let (mut a, b) = pipe(true)?;
    /// let (recv_fd, send_fd) = b.into_fds(); // pass these to a child process
    /// let mut b = Connection::from_fds(recv_fd, send_fd)?;
    /// a.send(&5u8)?;
    /// assert_eq!(b.recv::<u8>()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_fds(recv: Option<OwnedFd>, send: Option<OwnedFd>) -> Result<Self> {
        Self::from_fds_with(recv, send, &ConnectionOptions::default())
    }

    /// [`Connection::from_fds`] with options.
    pub fn from_fds_with(recv: Option<OwnedFd>, send: Option<OwnedFd>, opts: &ConnectionOptions) -> Result<Self> {
        let rx = recv.map(|fd| Consumer::from_fd_with(fd, &opts.ring)).transpose()?;
        let tx = send.map(|fd| Producer::from_fd_with(fd, &opts.ring)).transpose()?;
        Self::from_rings(tx, rx, opts, true)
    }

    /// Hand this end over: return the descriptors of its rings, the receiving ring's
    /// first and the sending ring's second (`None` for a direction the end lacks, and
    /// both for a closed end), for [`Connection::from_fds`] in another process. Each
    /// keeps the end's liveness lock while in transit. If a send stopped in the middle
    /// of a message, its ABORT frame is sent first (waiting for space, unless the peer
    /// is gone).
    pub fn into_fds(self) -> (Option<OwnedFd>, Option<OwnedFd>) {
        let mut t = self.transport;
        if t.abort_pending
            && let Some(tx) = &mut t.tx
        {
            // Disconnected: nobody is left to read it. Interrupted: the frame must still
            // go (the next owner's messages would otherwise continue the cut one), so
            // wait for space in 1 ms naps while the interrupt flag is up.
            while let Err(ConnError::Interrupted) = send_record(tx, &ABORT_FRAME, Wait::Forever) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        (
            t.rx.take().and_then(Consumer::into_fd),
            t.tx.take().and_then(Producer::into_fd),
        )
    }
}

impl Transport for PipeTransport {}

impl Sealed for PipeTransport {
    fn check_send(&mut self) -> Result<(), ConnError> {
        self.tx_mut().map(|_| ())
    }

    #[inline]
    fn send_message(&mut self, msg: &[u8], wait: Wait) -> Result<(), ConnError> {
        self.send_frames(msg, wait)
    }

    #[inline]
    fn recv_message(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, ConnError> {
        self.recv_frames(out, wait)
    }

    #[inline]
    fn send_in_place(
        &mut self,
        len: usize,
        wait: Wait,
        write: impl FnOnce(&mut [u8]) -> bool,
    ) -> Result<bool, ConnError> {
        let max = self.max;
        let abort_pending = self.abort_pending;
        let tx = self.tx_mut()?;
        if len > max {
            return Err(ConnError::MessageTooLarge { len: len as u64, max });
        }
        // One WHOLE frame, as the framer would make it; a longer message is chunked by
        // send_frames.
        if len >= tx.max_message_len() {
            return Ok(false);
        }
        if abort_pending {
            send_record(tx, &ABORT_FRAME, wait)?;
            self.abort_pending = false;
        }
        let Some(tx) = self.tx.as_mut() else {
            return Err(ConnError::Closed);
        };
        let mut g = match wait {
            Wait::Forever => tx.claim(len + 1),
            Wait::Now => tx.try_claim(len + 1),
            Wait::Until(d) => tx.claim_timeout(len + 1, d.saturating_duration_since(Instant::now())),
        }?;
        // One look at the claimed bytes (each deref checks the bounds again).
        let Some((kind, body)) = g.split_first_mut() else {
            return Ok(false);
        };
        *kind = WHOLE;
        if !write(body) {
            // Dropped without commit: aborted, nothing sent.
            return Ok(false);
        }
        g.commit();
        Ok(true)
    }

    #[inline]
    fn send_guessed(&mut self, len: usize, write: impl FnOnce(&mut [u8]) -> bool) -> bool {
        if self.abort_pending || len > self.max {
            return false;
        }
        let Some(tx) = self.tx.as_mut() else {
            return false;
        };
        // One WHOLE frame, as in send_in_place.
        if len >= tx.max_message_len() {
            return false;
        }
        // Not waiting: a guess must never wait for space that the real length would
        // not need; any error here is found again, and reported, by the exact path.
        let Ok(mut g) = tx.try_claim(len + 1) else {
            return false;
        };
        // One look at the claimed bytes (each deref checks the bounds again).
        let Some((kind, body)) = g.split_first_mut() else {
            return false;
        };
        *kind = WHOLE;
        if !write(body) {
            // Dropped without commit: aborted, nothing sent.
            return false;
        }
        g.commit();
        true
    }

    #[inline]
    fn recv_in_place<'a>(&'a mut self, scratch: &'a mut Vec<u8>, wait: Wait) -> Result<MessageRef<'a>, ConnError> {
        let max = self.max;
        let no_rx = no_rx(self.closed);
        let Some(rx) = self.rx.as_mut() else {
            return Err(no_rx);
        };
        let reasm = &mut self.reasm;
        if let Some(e) = reasm.broken() {
            return Err(ConnError::BadFrame(e));
        }
        // A message that is one record is handed over where it lies; fragments go to
        // the reassembler until a message is complete.
        let r = rx.read_or(wait, |f| {
            if is_whole(f, reasm, max) {
                return Look::Whole;
            }
            match reasm.push(f, scratch) {
                Ok(Some(n)) => Look::Done(Ok(n)),
                Ok(None) => Look::More,
                Err(e) => Look::Done(Err(e)),
            }
        });
        match r.map_err(|e| gone(e, reasm))? {
            Ok(grant) => Ok(MessageRef::record(grant)),
            Err(done) => Ok(MessageRef::bytes(&scratch[..done?])),
        }
    }

    fn recv_batch(
        &mut self,
        scratch: &mut Vec<u8>,
        max_batch: usize,
        wait: Wait,
        mut f: impl FnMut(MessageRef<'_>),
    ) -> Result<usize, ConnError> {
        let max = self.max;
        let no_rx = no_rx(self.closed);
        let Some(rx) = self.rx.as_mut() else {
            return Err(no_rx);
        };
        let reasm = &mut self.reasm;
        if let Some(e) = reasm.broken() {
            return Err(ConnError::BadFrame(e));
        }
        loop {
            if !wait.is_now() {
                rx.peek_with(wait, |_| ()).map_err(|e| gone(e, reasm))?;
            }
            let mut n = 0;
            let mut failed = None;
            let r = rx.drain_while(usize::MAX, |frame| {
                if n == max_batch || failed.is_some() {
                    return false;
                }
                if is_whole(frame, reasm, max) {
                    f(MessageRef::bytes(&frame[1..]));
                    n += 1;
                    return true;
                }
                if n > 0 {
                    // Anything but a plain message (a chunk, an error) is left for the
                    // next receive, which reports it.
                    return false;
                }
                match reasm.push(frame, scratch) {
                    Ok(Some(len)) => {
                        f(MessageRef::bytes(&scratch[..len]));
                        n += 1;
                    }
                    Ok(None) => {}
                    Err(e) => failed = Some(e),
                }
                true
            });
            if let Some(e) = failed {
                return Err(e);
            }
            match r {
                Ok(_) | Err(crate::RecvError::Empty) => {}
                Err(_) if n > 0 => {}
                Err(e) => return Err(gone(e, reasm)),
            }
            if n > 0 {
                return Ok(n);
            }
            if wait.is_now() {
                return Err(ConnError::WouldBlock);
            }
            // Only part of a chunked message was there: wait for the rest.
        }
    }

    fn poll(&self, timeout: Option<Duration>) -> Result<bool, ConnError> {
        self.check_rx()?;
        match super::wait::wait_interruptible_on(&[self], timeout) {
            Ok(r) => Ok(!r.is_empty()),
            Err(_) => Err(ConnError::Interrupted),
        }
    }

    fn close(&mut self) {
        self.tx = None;
        self.rx = None;
        self.closed = true;
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn readable(&self) -> bool {
        self.ends != Ends::SendOnly
    }

    fn writable(&self) -> bool {
        self.ends != Ends::RecvOnly
    }

    fn max_message_len(&self) -> usize {
        self.max
    }
}

impl PipeTransport {
    fn tx_mut(&mut self) -> Result<&mut Producer, ConnError> {
        match &mut self.tx {
            Some(tx) => Ok(tx),
            None if self.closed => Err(ConnError::Closed),
            None => Err(ConnError::WrongDirection { allowed: "receive" }),
        }
    }

    fn check_rx(&self) -> Result<&Consumer, ConnError> {
        match &self.rx {
            Some(rx) => Ok(rx),
            None if self.closed => Err(ConnError::Closed),
            None => Err(ConnError::WrongDirection { allowed: "send" }),
        }
    }

    // -- sending ---------------------------------------------------------------------

    /// Send the frames of `msg`, waiting per `wait`; after a failure part-way, ABORT goes
    /// out before the next message.
    fn send_frames(&mut self, msg: &[u8], wait: Wait) -> Result<(), ConnError> {
        let max = self.max;
        let abort_pending = self.abort_pending;
        let tx = self.tx_mut()?;
        if msg.len() > max {
            return Err(ConnError::MessageTooLarge {
                len: msg.len() as u64,
                max,
            });
        }
        if abort_pending {
            send_record(tx, &ABORT_FRAME, wait)?;
        }
        // Chunks of an eighth of the ring: several are in flight at once, so the
        // receiver copies one out while the sender copies the next in, and a hand-off
        // that needs the scheduler moves most of a ring, not one record.
        let framer = Framer::new(msg.len(), tx.max_message_len(), tx.capacity() / CHUNKS_PER_RING);
        let chunked = framer.is_chunked();
        let mut sent = 0usize;
        let mut failed = None;
        for f in framer {
            let grant = match wait {
                Wait::Forever => tx.claim(f.len()),
                Wait::Now => tx.try_claim(f.len()),
                Wait::Until(d) => tx.claim_timeout(f.len(), d.saturating_duration_since(Instant::now())),
            };
            match grant {
                Ok(mut g) => {
                    f.write(msg, &mut g);
                    g.commit();
                    sent += 1;
                }
                Err(e) => {
                    failed = Some(ConnError::from(e));
                    break;
                }
            }
        }
        // Past the first frame, the receiver holds part of the message: it must be told
        // to drop it (unless it is gone).
        self.abort_pending = chunked && sent > 0 && failed.is_some() && failed != Some(ConnError::Disconnected);
        failed.map_or(Ok(()), Err)
    }

    // -- receiving -------------------------------------------------------------------

    /// Receive the next message into `out`, waiting per `wait`.
    fn recv_frames(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, ConnError> {
        let closed = self.closed;
        let Some(rx) = self.rx.as_mut() else {
            return Err(if closed {
                ConnError::Closed
            } else {
                ConnError::WrongDirection { allowed: "send" }
            });
        };
        let reasm = &mut self.reasm;
        if let Some(e) = reasm.broken() {
            return Err(ConnError::BadFrame(e));
        }
        loop {
            let grant = match wait {
                Wait::Forever => rx.read(),
                Wait::Now => rx.try_read(),
                Wait::Until(d) => rx.read_timeout(d.saturating_duration_since(Instant::now())),
            };
            let grant = match grant {
                Ok(g) => g,
                Err(e) => {
                    if e == crate::RecvError::Disconnected {
                        reasm.peer_gone();
                    }
                    return Err(e.into());
                }
            };
            let r = reasm.push(&grant, out);
            drop(grant);
            if let Some(n) = r? {
                return Ok(n);
            }
        }
    }

    /// Whether a receive would return without waiting for a message to start (see
    /// [`super::wait`]); `check_liveness` also asks the kernel whether the peer died, if
    /// that was not asked within the last [`LIVENESS_INTERVAL`].
    pub(crate) fn is_ready(&self, check_liveness: bool) -> bool {
        match &self.rx {
            None => true,
            Some(rx) => {
                if self.reasm.broken().is_some() || rx.has_record() || self.peer_dead.get() {
                    return true;
                }
                let liveness = check_liveness && self.liveness_due();
                let gone = rx.producer_gone(liveness);
                if gone && liveness {
                    self.peer_dead.set(true);
                }
                // A receive ring poisoned by a peer's resize: a waiting receive reports
                // it (`Corrupted`), so it is ready (an fstat at most every interval).
                gone || (liveness && rx.sh.poisoned())
            }
        }
    }

    /// Whether a liveness check is due (and if so, record it as done now).
    fn liveness_due(&self) -> bool {
        let now = Instant::now();
        let due = self
            .liveness_checked
            .get()
            .is_none_or(|t| now.duration_since(t) >= LIVENESS_INTERVAL);
        if due {
            self.liveness_checked.set(Some(now));
        }
        due
    }

    /// The receiving ring, if this end has one and can still receive.
    pub(crate) fn receiver(&self) -> Option<&Consumer> {
        self.rx.as_ref()
    }
}

/// Why an end without a receiving ring (`closed` or send-only) cannot receive.
#[inline]
fn no_rx(closed: bool) -> ConnError {
    if closed {
        ConnError::Closed
    } else {
        ConnError::WrongDirection { allowed: "send" }
    }
}

/// Whether `frame` is a message as it is: a `WHOLE` frame within the limit `max`, between
/// messages.
#[inline]
fn is_whole(frame: &[u8], reasm: &Reassembler, max: usize) -> bool {
    frame.first() == Some(&WHOLE) && frame.len() - 1 <= max && reasm.is_idle()
}

/// A ring's receive error as the connection's; the reassembler drops a message cut by
/// a departed sender.
fn gone(e: crate::RecvError, reasm: &mut Reassembler) -> ConnError {
    if e == crate::RecvError::Disconnected {
        reasm.peer_gone();
    }
    e.into()
}

/// Send one record holding `frame`, waiting per `wait`.
fn send_record(tx: &mut Producer, frame: &[u8], wait: Wait) -> Result<(), ConnError> {
    match wait {
        Wait::Forever => tx.send(frame),
        Wait::Now => tx.try_send(frame),
        Wait::Until(d) => tx.send_timeout(frame, d.saturating_duration_since(Instant::now())),
    }
    .map_err(ConnError::from)
}
