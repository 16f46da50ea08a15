//! The transports `shmring bench` compares, behind two small traits.
//!
//! A transport is one byte-message link from a sender process to a receiver process.
//! The parent makes a link with [`Transport::link`] (two descriptors, one per side), hands
//! each descriptor to a child process, and the child wraps it with [`Transport::open_tx`]
//! or [`Transport::open_rx`]. Ping-pong uses two links, one each way.
//!
//! To add a transport (a later ring, a typed channel, ...): add a [`Transport`] variant, a
//! `name`, a `link`, and the `Tx`/`Rx` wrappers of its ends as variants of [`AnyTx`] and
//! [`AnyRx`]. Everything else (runs, table, JSON, ratios) works from the name.
//!
//! The stream transports (Unix socket, pipe) carry the same messages as the ring,
//! framed by a 4-byte little-endian length: one `write` per message (the ordinary
//! per-message API, like `Producer::send`), and a 64 KiB buffered reader on the
//! receiving side, as a careful user of a stream would write it.

use crate::refring::{self, REF_RING, RefRx, RefTx};
use crate::report::Key;
use crate::{Result, err};
use serde::{Deserialize, Serialize};
use shmring::RecvError;
use shmring::WaitStrategy;
use shmring::ring::mpmc::{self, PopError, QueueOptions};
use shmring::ring::spsc::{self, Consumer, Producer, RingOptions};
use shmring::shm::SegmentOptions;
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};

/// Wait strategy of a shmring ring end, as named on the command line and in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    /// Busy-spin, never sleep.
    Spin,
    /// Spin, then yield, then sleep on the futex (the library's default).
    Adaptive,
    /// Sleep on the futex at once.
    Blocking,
}

impl Mode {
    /// The library's wait strategy of this name (with its default budget).
    pub(crate) fn strategy(self) -> WaitStrategy {
        WaitStrategy::from_name(self.name()).expect("every Mode names a WaitStrategy")
    }

    /// Rank of the mode in the table: adaptive (the default, the ratios' reference),
    /// spin, blocking (1, 2, 3; 0 is a row without a mode).
    pub(crate) fn rank(self) -> usize {
        match self {
            Mode::Adaptive => 1,
            Mode::Spin => 2,
            Mode::Blocking => 3,
        }
    }

    /// `spin`, `adaptive` or `blocking`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Spin => "spin",
            Mode::Adaptive => "adaptive",
            Mode::Blocking => "blocking",
        }
    }
}

/// A transport under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Transport {
    /// The shmring SPSC byte ring in an anonymous (memfd) segment, both ends waiting
    /// per the mode.
    Shmring(Mode),
    /// A `SOCK_STREAM` Unix domain socket pair.
    UnixSocket,
    /// An anonymous pipe.
    Pipe,
    /// The shmring MPMC queue in an anonymous segment ([`MPMC_SLOTS`] slots of
    /// [`MPMC_SLOT_SIZE`] bytes), used as a one-producer one-consumer link: the sender
    /// closes the queue when it drops its end. Both ends wait per the mode.
    Mpmc(Mode),
    /// The hand-written reference ring of [`crate::refring`] (busy-spin: its rows'
    /// mode is `spin`).
    RefRing,
}

/// Name of the SPSC ring's rows.
pub(crate) const SHMRING: &str = "shmring-spsc";
/// Name of the Unix socket's rows.
pub(crate) const UNIX_SOCKET: &str = "unix-socket";
/// Name of the pipe's rows.
pub(crate) const PIPE: &str = "pipe";
/// Name of the MPMC queue's rows.
pub(crate) const SHMRING_MPMC: &str = "shmring-mpmc";
/// Name of the in-process reference of the MPMC rows (crossbeam's `ArrayQueue`).
pub(crate) const ARRAYQUEUE: &str = "crossbeam-arrayqueue";

/// Slots of every MPMC queue (and `ArrayQueue`) of the benchmark.
pub(crate) const MPMC_SLOTS: usize = 1024;
/// Slot size of the MPMC queue of a link.
pub(crate) const MPMC_SLOT_SIZE: usize = 64;

/// Largest frame a stream receiver accepts (the length prefix comes from another process).
const MAX_FRAME: usize = 1 << 30;
/// Messages up to this size are written with their length prefix in one `write`.
const COALESCE_MAX: usize = 64 << 10;

/// The descriptors of one link: the sender's and the receiver's.
#[derive(Debug)]
pub(crate) struct Link {
    /// Handed to the sending process.
    pub(crate) tx: OwnedFd,
    /// Handed to the receiving process.
    pub(crate) rx: OwnedFd,
}

/// Whether the rings of this process are locked in RAM (`--mlock`): set once by the
/// parent from its flags and by each child from its job, before any ring is mapped.
static MLOCK: AtomicBool = AtomicBool::new(false);

/// Lock the rings mapped from now on in RAM (`--mlock`).
pub(crate) fn set_mlock(yes: bool) {
    // Relaxed: set before the rings are made, by the thread that makes them.
    MLOCK.store(yes, Ordering::Relaxed);
}

/// Whether [`set_mlock`] asked for locked rings.
pub(crate) fn mlock() -> bool {
    // Relaxed: as in set_mlock.
    MLOCK.load(Ordering::Relaxed)
}

/// The segment options of every shared mapping of the benchmark: prefaulted, so that
/// the first laps do not pay page faults, and locked in RAM with `--mlock`.
pub(crate) fn segment_options() -> SegmentOptions {
    SegmentOptions::new().prefault(true).lock_in_ram(mlock())
}

/// The ring options every shmring end of the benchmark uses: the mode's wait strategy,
/// and [`segment_options`].
pub(crate) fn ring_options(mode: Mode) -> RingOptions {
    RingOptions::new().wait(mode.strategy()).segment(segment_options())
}

/// The options of every MPMC queue end of the benchmark, as [`ring_options`].
pub(crate) fn mpmc_options(mode: Mode) -> QueueOptions {
    QueueOptions::new().wait(mode.strategy()).segment(segment_options())
}

impl Transport {
    /// Name of the transport in the table and the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Shmring(_) => SHMRING,
            Transport::UnixSocket => UNIX_SOCKET,
            Transport::Pipe => PIPE,
            Transport::Mpmc(_) => SHMRING_MPMC,
            Transport::RefRing => REF_RING,
        }
    }

    /// The wait strategy, for transports that have one.
    pub(crate) fn mode(self) -> Option<Mode> {
        match self {
            Transport::Shmring(m) | Transport::Mpmc(m) => Some(m),
            Transport::RefRing => Some(Mode::Spin),
            _ => None,
        }
    }

    /// The key of the transport's row at `size` in the shared table: the SPSC ring, the
    /// Unix socket, the pipe, the MPMC queue, in that order; their modes adaptive (the
    /// ratios' reference), spin, blocking; then the reference ring.
    pub(crate) fn key(self, size: usize) -> Key {
        let rank = match self {
            Transport::Shmring(_) => 0,
            Transport::UnixSocket => 1,
            Transport::Pipe => 2,
            Transport::Mpmc(_) => 3,
            Transport::RefRing => 4,
        };
        Key {
            transport: self.name(),
            mode: self.mode().map(Mode::name),
            size: size as u64,
            order: (rank, self.mode().map_or(0, Mode::rank)),
        }
    }

    /// `name` or `name/mode`, for progress lines.
    pub(crate) fn label(self) -> String {
        match self.mode() {
            Some(m) => format!("{}/{}", self.name(), m.name()),
            None => self.name().to_owned(),
        }
    }

    /// Parent side: make one link. `capacity` is the ring's size in bytes (ignored by
    /// the stream transports, which keep the kernel's default buffers).
    pub(crate) fn link(self, capacity: usize) -> Result<Link> {
        match self {
            Transport::Shmring(mode) => {
                let (p, c) = spsc::channel_with(capacity, &ring_options(mode))?;
                let tx = p.into_fd().ok_or_else(|| err("ring producer has no descriptor"))?;
                let rx = c.into_fd().ok_or_else(|| err("ring consumer has no descriptor"))?;
                Ok(Link { tx, rx })
            }
            Transport::UnixSocket => {
                let (a, b) = UnixStream::pair().map_err(|e| err(format!("socketpair: {e}")))?;
                Ok(Link {
                    tx: a.into(),
                    rx: b.into(),
                })
            }
            Transport::Pipe => {
                let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                    .map_err(|e| err(format!("pipe2: {e}")))?;
                Ok(Link { tx: w, rx: r })
            }
            Transport::Mpmc(mode) => {
                let (p, c) = mpmc::channel_with(MPMC_SLOTS, MPMC_SLOT_SIZE, &mpmc_options(mode))?;
                Ok(Link {
                    tx: p.into_fd(),
                    rx: c.into_fd(),
                })
            }
            Transport::RefRing => {
                let (tx, rx) = refring::link(capacity)?;
                Ok(Link { tx, rx })
            }
        }
    }

    /// Child side: the sending end of a link from its descriptor.
    pub(crate) fn open_tx(self, fd: OwnedFd) -> Result<AnyTx> {
        Ok(match self {
            Transport::Shmring(mode) => AnyTx::Ring(Producer::from_fd_with(fd, &ring_options(mode))?),
            Transport::Mpmc(mode) => AnyTx::Mpmc(MpmcTx(mpmc::Producer::from_fd_with(fd, &mpmc_options(mode))?)),
            Transport::RefRing => AnyTx::RefRing(RefTx::open(fd)?),
            Transport::UnixSocket | Transport::Pipe => AnyTx::Stream(StreamTx {
                out: File::from(fd),
                scratch: Vec::new(),
            }),
        })
    }

    /// Child side: the receiving end of a link from its descriptor.
    pub(crate) fn open_rx(self, fd: OwnedFd) -> Result<AnyRx> {
        Ok(match self {
            Transport::Shmring(mode) => AnyRx::Ring(open_consumer(mode, fd)?),
            Transport::Mpmc(mode) => AnyRx::Mpmc(mpmc::Consumer::from_fd_with(fd, &mpmc_options(mode))?),
            Transport::RefRing => AnyRx::RefRing(RefRx::open(fd)?),
            Transport::UnixSocket | Transport::Pipe => AnyRx::Stream(StreamRx {
                inp: BufReader::with_capacity(64 << 10, File::from(fd)),
            }),
        })
    }
}

/// Child side: the ring's consumer end from its descriptor.
pub(crate) fn open_consumer(mode: Mode, fd: OwnedFd) -> Result<Consumer> {
    Ok(Consumer::from_fd_with(fd, &ring_options(mode))?)
}

/// The sending side of a link.
pub(crate) trait Tx {
    /// Send one message, waiting while the transport is full.
    fn send(&mut self, msg: &[u8]) -> Result<()>;
}

/// The receiving side of a link.
pub(crate) trait Rx {
    /// Receive the next message into `buf` (resized to the message). `Ok(None)`: the
    /// sender closed its end and everything it sent has been received.
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>>;
}

/// The sending end of any transport.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per process, built once, never moved on the hot path"
)]
pub(crate) enum AnyTx {
    /// Ring producer.
    Ring(Producer),
    /// MPMC queue producer.
    Mpmc(MpmcTx),
    /// Length-prefixed frames on a stream.
    Stream(StreamTx),
    /// The reference ring's sending end.
    RefRing(RefTx),
}

/// The MPMC producer of a link: closes the queue when dropped (the end of the stream).
#[derive(Debug)]
pub(crate) struct MpmcTx(mpmc::Producer);

impl Drop for MpmcTx {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The receiving end of any transport.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per process, built once, never moved on the hot path"
)]
pub(crate) enum AnyRx {
    /// Ring consumer.
    Ring(Consumer),
    /// MPMC queue consumer.
    Mpmc(mpmc::Consumer),
    /// Length-prefixed frames on a stream.
    Stream(StreamRx),
    /// The reference ring's receiving end.
    RefRing(RefRx),
}

impl Tx for AnyTx {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        match self {
            AnyTx::Ring(p) => p.send(msg).map_err(|e| err(format!("ring send: {e}"))),
            AnyTx::Mpmc(p) => p.0.push(msg).map_err(|e| err(format!("queue push: {e}"))),
            AnyTx::Stream(s) => s.send(msg),
            AnyTx::RefRing(r) => r.send(msg),
        }
    }
}

impl Rx for AnyRx {
    #[inline]
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        match self {
            AnyRx::Ring(c) => match c.recv_into(buf) {
                Ok(n) => Ok(Some(n)),
                Err(RecvError::Disconnected) => Ok(None),
                Err(e) => Err(err(format!("ring recv: {e}"))),
            },
            AnyRx::Mpmc(c) => match c.pop_into(buf) {
                Ok(n) => Ok(Some(n)),
                Err(PopError::Closed) => Ok(None),
                Err(e) => Err(err(format!("queue pop: {e}"))),
            },
            AnyRx::Stream(s) => s.recv(buf),
            AnyRx::RefRing(r) => r.recv(buf),
        }
    }
}

/// Sends length-prefixed frames on a stream (socket or pipe).
#[derive(Debug)]
pub(crate) struct StreamTx {
    out: File,
    /// Prefix and payload of a small message, written with one `write`.
    scratch: Vec<u8>,
}

impl Tx for StreamTx {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let len = u32::try_from(msg.len())
            .ok()
            .filter(|&l| l as usize <= MAX_FRAME)
            .ok_or_else(|| err(format!("message of {} bytes is too large for a frame", msg.len())))?;
        let res = if msg.len() <= COALESCE_MAX {
            self.scratch.clear();
            self.scratch.extend_from_slice(&len.to_le_bytes());
            self.scratch.extend_from_slice(msg);
            self.out.write_all(&self.scratch)
        } else {
            self.out
                .write_all(&len.to_le_bytes())
                .and_then(|()| self.out.write_all(msg))
        };
        res.map_err(|e| err(format!("stream write: {e}")))
    }
}

/// Receives length-prefixed frames from a stream (socket or pipe).
#[derive(Debug)]
pub(crate) struct StreamRx {
    inp: BufReader<File>,
}

impl Rx for StreamRx {
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        let mut hdr = [0u8; 4];
        let got = read_full(&mut self.inp, &mut hdr)?;
        if got == 0 {
            return Ok(None);
        }
        if got < hdr.len() {
            return Err(err("stream ended inside a frame header"));
        }
        let len = u32::from_le_bytes(hdr) as usize;
        if len > MAX_FRAME {
            return Err(err(format!("frame length {len} exceeds {MAX_FRAME}")));
        }
        // Same length as last time (the usual case): no resize, no zeroing.
        if buf.len() != len {
            buf.resize(len, 0);
        }
        self.inp.read_exact(buf).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => err("stream ended inside a message"),
            _ => err(format!("stream read: {e}")),
        })?;
        Ok(Some(len))
    }
}

/// Read until `b` is full or the stream ends; returns the number of bytes read.
fn read_full(r: &mut impl Read, b: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < b.len() {
        match r.read(&mut b[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(err(format!("stream read: {e}"))),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transport_carries_messages_in_order() {
        for t in [
            Transport::Shmring(Mode::Spin),
            Transport::Shmring(Mode::Adaptive),
            Transport::Shmring(Mode::Blocking),
            Transport::UnixSocket,
            Transport::Pipe,
            Transport::Mpmc(Mode::Adaptive),
            Transport::Mpmc(Mode::Blocking),
            Transport::RefRing,
        ] {
            let link = t.link(1 << 16).unwrap();
            let mut tx = t.open_tx(link.tx).unwrap();
            let mut rx = t.open_rx(link.rx).unwrap();
            // The MPMC queue's messages are at most a slot.
            let max = if matches!(t, Transport::Mpmc(_)) {
                MPMC_SLOT_SIZE + 1
            } else {
                300
            };
            let sender = std::thread::spawn(move || {
                for i in 0..1000u32 {
                    let msg = vec![i as u8; (i as usize * 7) % max];
                    tx.send(&msg).unwrap();
                }
            });
            let mut buf = Vec::new();
            for i in 0..1000u32 {
                let n = rx.recv(&mut buf).unwrap().expect("not closed yet");
                assert_eq!(n, (i as usize * 7) % max, "{t:?}");
                assert!(buf.iter().all(|&b| b == i as u8), "{t:?}");
            }
            sender.join().unwrap();
            assert!(rx.recv(&mut buf).unwrap().is_none(), "{t:?}: end of stream");
        }
    }
}
