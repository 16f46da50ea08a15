//! How pipe ends are made — an anonymous pair, a named connection, an end rebuilt from
//! descriptors — and how an end is handed over as descriptors.

use super::{Ends, PipeTransport};
use crate::connection::frame::{ABORT_FRAME, MIN_RECORD, Reassembler};
use crate::connection::{ConnError, Connection, ConnectionOptions, DEFAULT_CAPACITY};
use crate::ring::spsc::{self, Consumer, Producer};
use crate::sync::Wait;
use crate::{Error, Result};
use rustix::fd::OwnedFd;
use std::cell::Cell;
use std::time::Duration;

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
pub(in crate::connection) fn ring_names(name: &str) -> (String, String) {
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
            while let Err(ConnError::Interrupted) = super::send::send_record(tx, &ABORT_FRAME, Wait::Forever) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        (
            t.rx.take().and_then(Consumer::into_fd),
            t.tx.take().and_then(Producer::into_fd),
        )
    }
}
