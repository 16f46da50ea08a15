//! The Rust rows' runs: the typed message, the peers that send and receive it through
//! a row's end, and the parent's side of one run.

use super::{BATCH, QUEUE_MAXSIZE, TYPED_CONSUMER, TYPED_PRODUCER};
use crate::args::VocabKind;
use crate::launch::{PeerJob, run_peers};
use crate::peer::{PeerReport, PeerSpec, barrier};
use crate::{Result, err};
use serde::{Deserialize, Serialize};
use shmring::codec;
use shmring::connection::{self, ConnError, Connection, MessageRef};
use shmring::queue::{GetError, Queue};
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The typed message of the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, shmring::Schema)]
#[postcard(crate = shmring::postcard_schema)]
pub(crate) struct Tick {
    /// [`SEQ_BASE`] + the message's number.
    pub(crate) seq: u64,
    /// A price.
    pub(crate) px: f64,
    /// A quantity.
    pub(crate) qty: u32,
    /// A symbol.
    pub(crate) sym: String,
}

/// A [`Tick`] decoded in place: its symbol borrowed from the message's bytes (the same
/// wire format, no allocation).
#[derive(Debug, PartialEq, Deserialize)]
pub(crate) struct TickRef<'a> {
    seq: u64,
    px: f64,
    qty: u32,
    sym: &'a str,
}

impl TickRef<'_> {
    /// Whether this is message `i` (as [`Tick::is`]).
    #[inline]
    fn is(&self, i: u64) -> bool {
        self.seq == SEQ_BASE + i
            && self.px == 100.0 + (i % 1000) as f64 * 0.25
            && self.qty == 200 + (i % 100) as u32
            && self.sym == SYM
    }
}

/// The first sequence number: every `seq` of a run encodes to 5 bytes (2^28..2^35).
const SEQ_BASE: u64 = 1 << 32;
/// The symbol of every tick.
const SYM: &str = "EURUSD";

impl Tick {
    /// Message `i` of a run.
    fn nth(i: u64) -> Tick {
        let mut t = Tick {
            seq: 0,
            px: 0.0,
            qty: 0,
            sym: SYM.to_owned(),
        };
        t.set(i);
        t
    }

    /// Make this message `i` (the symbol stays).
    #[inline]
    fn set(&mut self, i: u64) {
        self.seq = SEQ_BASE + i;
        self.px = 100.0 + (i % 1000) as f64 * 0.25;
        // 200..=299: two bytes as a varint, always.
        self.qty = 200 + (i % 100) as u32;
    }

    /// Whether this is message `i`.
    #[inline]
    fn is(&self, i: u64) -> bool {
        self.seq == SEQ_BASE + i
            && self.px == 100.0 + (i % 1000) as f64 * 0.25
            && self.qty == 200 + (i % 100) as u32
            && self.sym == SYM
    }
}

/// Size of every message of the rows in postcard's format (22 bytes).
pub(crate) fn encoded_size() -> usize {
    codec::to_vec(&Tick::nth(0)).map_or(0, |v| v.len())
}

/// Buffer of the stream's reader and of the batched stream's writer.
const STREAM_BUF: usize = 64 << 10;
/// Largest frame the stream receiver accepts (the length comes from another process).
const MAX_FRAME: usize = 1 << 20;

/// Peer role [`TYPED_PRODUCER`]: send `spec.count` ticks through the row's end
/// (fds: `[end]`), then close it.
pub(crate) fn produce(fd: OwnedFd, spec: &PeerSpec) -> Result<PeerReport> {
    let n = spec.count.ok_or_else(|| err("a typed producer needs a count"))?;
    let mut t = Tick::nth(0);
    match Some(spec.param::<VocabKind>()?) {
        Some(VocabKind::Pipe | VocabKind::PipeBorrowed | VocabKind::PipeBatch) => {
            let mut c = Connection::from_fds(None, Some(fd))?;
            barrier()?;
            for i in 0..n {
                t.set(i);
                c.send(&t).map_err(|e| err(format!("pipe send: {e}")))?;
            }
            drop(c); // the consumer sees the end of the stream
        }
        Some(VocabKind::Queue | VocabKind::QueueBorrowed) => {
            let mut q = Queue::<Tick>::from_fd(fd)?;
            barrier()?;
            for i in 0..n {
                t.set(i);
                q.put(&t).map_err(|e| err(format!("queue put: {e}")))?;
            }
            q.close();
        }
        Some(k @ (VocabKind::Unix | VocabKind::UnixBatched)) => {
            let s = UnixStream::from(fd);
            barrier()?;
            let w = |e: std::io::Error| err(format!("socket write: {e}"));
            let mut frame = Vec::with_capacity(64);
            if k == VocabKind::Unix {
                let mut s = s;
                for i in 0..n {
                    t.set(i);
                    encode_frame(&t, &mut frame)?;
                    s.write_all(&frame).map_err(w)?;
                }
            } else {
                let mut s = BufWriter::with_capacity(STREAM_BUF, s);
                for i in 0..n {
                    t.set(i);
                    encode_frame(&t, &mut frame)?;
                    s.write_all(&frame).map_err(w)?;
                }
                s.flush().map_err(w)?;
            }
        }
        other => return Err(err(format!("a typed producer cannot run {other:?}"))),
    }
    Ok(PeerReport::Sent { messages: n })
}

/// `t` as a frame of the socket rows: its length (u32 LE), then its postcard bytes.
#[inline]
fn encode_frame(t: &Tick, frame: &mut Vec<u8>) -> Result<()> {
    frame.clear();
    frame.extend_from_slice(&[0; 4]);
    codec::encode(t, frame)?;
    let len = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Peer role [`TYPED_CONSUMER`]: receive `spec.count` ticks from the row's end
/// (fds: `[end]`), checking each, then the end of the stream. Reports the count and the
/// time from the first message to the last.
pub(crate) fn consume(fd: OwnedFd, spec: &PeerSpec) -> Result<PeerReport> {
    let n = spec.count.ok_or_else(|| err("a typed consumer needs a count"))?;
    if n < 2 {
        return Err(err("a typed run needs at least 2 messages"));
    }
    let check = |t: &Tick, i: u64| {
        if t.is(i) {
            Ok(())
        } else {
            Err(err(format!("message {i} is {t:?}")))
        }
    };
    let elapsed = match Some(spec.param::<VocabKind>()?) {
        Some(VocabKind::Pipe) => {
            let mut c = Connection::from_fds(Some(fd), None)?;
            barrier()?;
            let r = |e: ConnError| err(format!("pipe recv: {e}"));
            let elapsed = timed(n, |i| check(&c.recv::<Tick>().map_err(r)?, i))?;
            pipe_ends(&mut c, n)?;
            elapsed
        }
        Some(VocabKind::PipeBorrowed) => {
            let mut c = Connection::from_fds(Some(fd), None)?;
            barrier()?;
            let r = |e: ConnError| err(format!("pipe recv_ref: {e}"));
            let elapsed = timed(n, |i| check_ref(&c.recv_ref().map_err(r)?, i))?;
            pipe_ends(&mut c, n)?;
            elapsed
        }
        Some(VocabKind::PipeBatch) => {
            let mut c = Connection::from_fds(Some(fd), None)?;
            barrier()?;
            let r = |e: ConnError| err(format!("pipe recv_batch: {e}"));
            // The first message alone: the clock starts when it is there.
            let mut bad = None;
            c.recv_batch(1, |m| checked(&m, 0, &mut bad)).map_err(r)?;
            let t0 = Instant::now();
            let mut i = 1;
            while i < n && bad.is_none() {
                let max = BATCH.min((n - i) as usize);
                c.recv_batch(max, |m| {
                    checked(&m, i, &mut bad);
                    i += 1;
                })
                .map_err(r)?;
            }
            let elapsed = t0.elapsed();
            if let Some(e) = bad {
                return Err(e);
            }
            pipe_ends(&mut c, n)?;
            elapsed
        }
        Some(VocabKind::Queue) => {
            let mut q = Queue::<Tick>::from_fd(fd)?;
            barrier()?;
            let r = |e: GetError| err(format!("queue get: {e}"));
            let elapsed = timed(n, |i| check(&q.get().map_err(r)?, i))?;
            queue_ends(&mut q, n)?;
            elapsed
        }
        Some(VocabKind::QueueBorrowed) => {
            let mut q = Queue::<Tick>::from_fd(fd)?;
            barrier()?;
            let r = |e: GetError| err(format!("queue get_ref: {e}"));
            let elapsed = timed(n, |i| check_ref(&q.get_ref().map_err(r)?, i))?;
            queue_ends(&mut q, n)?;
            elapsed
        }
        Some(VocabKind::Unix | VocabKind::UnixBatched) => {
            let mut s = BufReader::with_capacity(STREAM_BUF, UnixStream::from(fd));
            barrier()?;
            let mut buf = Vec::with_capacity(64);
            check(
                &read_frame(&mut s, &mut buf)?.ok_or_else(|| err("the socket ended at once"))?,
                0,
            )?;
            let t0 = Instant::now();
            for i in 1..n {
                let t = read_frame(&mut s, &mut buf)?.ok_or_else(|| err(format!("the socket ended after {i}")))?;
                check(&t, i)?;
            }
            let elapsed = t0.elapsed();
            if read_frame(&mut s, &mut buf)?.is_some() {
                return Err(err(format!("the socket carried more than {n} messages")));
            }
            elapsed
        }
        other => return Err(err(format!("a typed consumer cannot run {other:?}"))),
    };
    Ok(PeerReport::Received {
        messages: n,
        elapsed_ns: elapsed.as_nanos() as u64,
    })
}

/// Receive and check messages `0..n` with `one`; the time from the first message's
/// arrival to the last one's (the clock starts when message 0 is there).
#[inline]
fn timed(n: u64, mut one: impl FnMut(u64) -> Result<()>) -> Result<Duration> {
    one(0)?;
    let t0 = Instant::now();
    for i in 1..n {
        one(i)?;
    }
    Ok(t0.elapsed())
}

/// Check that `m` decodes in place as message `i`.
#[inline]
fn check_ref(m: &MessageRef<'_>, i: u64) -> Result<()> {
    let t: TickRef<'_> = m.decode().map_err(|e| err(format!("message {i}: {e}")))?;
    if t.is(i) {
        Ok(())
    } else {
        Err(err(format!("message {i} is {t:?}")))
    }
}

/// [`check_ref`] inside a batch's closure: the first failure goes to `bad`.
#[inline]
fn checked(m: &MessageRef<'_>, i: u64, bad: &mut Option<crate::Error>) {
    if bad.is_none()
        && let Err(e) = check_ref(m, i)
    {
        *bad = Some(e);
    }
}

/// After the last of `n` messages, the pipe must report the end of the stream.
fn pipe_ends(c: &mut Connection, n: u64) -> Result<()> {
    match c.recv_bytes() {
        Err(ConnError::Disconnected) => Ok(()),
        Ok(_) => Err(err(format!("the pipe carried more than {n} messages"))),
        Err(e) => Err(err(format!("pipe recv: {e}"))),
    }
}

/// After the last of `n` messages, the queue must report that it is closed.
fn queue_ends(q: &mut Queue<Tick>, n: u64) -> Result<()> {
    match q.get_bytes() {
        Err(GetError::Closed) => Ok(()),
        Ok(_) => Err(err(format!("the queue carried more than {n} messages"))),
        Err(e) => Err(err(format!("queue get: {e}"))),
    }
}

/// The next frame's tick; `None` at the end of the stream.
#[inline]
fn read_frame(s: &mut impl Read, buf: &mut Vec<u8>) -> Result<Option<Tick>> {
    let mut hdr = [0u8; 4];
    match s.read_exact(&mut hdr) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(err(format!("socket read: {e}"))),
    }
    let len = u32::from_le_bytes(hdr) as usize;
    if len > MAX_FRAME {
        return Err(err(format!("frame length {len} exceeds {MAX_FRAME}")));
    }
    if buf.len() != len {
        buf.resize(len, 0);
    }
    s.read_exact(buf).map_err(|e| err(format!("socket read: {e}")))?;
    Ok(Some(codec::decode(buf)?))
}

/// One run of a Rust row: the link, two children, their reports. Returns msgs/s.
pub(super) fn run_rust(suite: &str, kind: VocabKind, n: u64, pin: &[usize], timeout: Duration) -> Result<f64> {
    // The parent keeps a queue handle, to read its counters at the end.
    let mut queue = None;
    let (tx, rx): (OwnedFd, OwnedFd) = match kind {
        VocabKind::Pipe | VocabKind::PipeBorrowed | VocabKind::PipeBatch => {
            let (r, w) = connection::pipe(false)?;
            let (_, send) = w.into_fds();
            let (recv, _) = r.into_fds();
            (
                send.ok_or_else(|| err("pipe end without a sending ring"))?,
                recv.ok_or_else(|| err("pipe end without a receiving ring"))?,
            )
        }
        VocabKind::Queue | VocabKind::QueueBorrowed => {
            let q = Queue::<Tick>::new(QUEUE_MAXSIZE)?;
            let fds = (q.try_clone()?.into_fd(), q.try_clone()?.into_fd());
            queue = Some(q);
            fds
        }
        VocabKind::Unix | VocabKind::UnixBatched => {
            let (a, b) = UnixStream::pair().map_err(|e| err(format!("socketpair: {e}")))?;
            (a.into(), b.into())
        }
        VocabKind::PythonPipe | VocabKind::PythonQueue => return Err(err("Python rows run in python3")),
    };
    let mut jobs = Vec::with_capacity(2);
    for (i, (role, fd)) in [(TYPED_PRODUCER, tx), (TYPED_CONSUMER, rx)].into_iter().enumerate() {
        let mut spec = PeerSpec::new(suite, role, None, encoded_size()).with_param(&kind)?;
        spec.count = Some(n);
        spec.cpu = pin.get(i).copied();
        jobs.push(PeerJob { spec, fds: vec![fd] });
    }
    let reports: Vec<PeerReport> = run_peers(jobs, timeout)?;
    let (PeerReport::Sent { messages: sent }, PeerReport::Received { messages, elapsed_ns }) =
        (&reports[0], &reports[1])
    else {
        return Err(err(format!("unexpected reports from a typed run: {reports:?}")));
    };
    if *sent != n || *messages != n {
        return Err(err(format!(
            "{n} messages: the producer sent {sent}, the consumer got {messages}"
        )));
    }
    if let Some(q) = queue {
        let s = q.stats();
        if s.lost != 0 || s.pushed != n || s.popped != n {
            return Err(err(format!(
                "the queue counted {} put, {} taken, {} lost for {n} messages",
                s.pushed, s.popped, s.lost
            )));
        }
    }
    Ok(per_s(n, *elapsed_ns as f64 / 1e9))
}

/// Messages per second of a run of `n` messages whose last `n - 1` took `secs`.
pub(super) fn per_s(n: u64, secs: f64) -> f64 {
    (n - 1) as f64 / secs.max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_encode_to_a_fixed_size_and_check() {
        assert_eq!(encoded_size(), 22);
        let mut t = Tick::nth(0);
        for i in [0u64, 1, 127, 128, 999, 1000, 12_345_678] {
            t.set(i);
            let b = codec::to_vec(&t).unwrap();
            assert_eq!(b.len(), 22, "{t:?}");
            let back: Tick = codec::decode(&b).unwrap();
            assert!(back.is(i) && !back.is(i + 1));
            let borrowed: TickRef<'_> = codec::decode_borrowed(&b).unwrap();
            assert!(borrowed.is(i) && !borrowed.is(i + 1));
            assert_eq!(
                borrowed.sym.as_ptr(),
                b[b.len() - SYM.len()..].as_ptr(),
                "borrowed, not copied"
            );
        }
        let mut frame = Vec::new();
        encode_frame(&t, &mut frame).unwrap();
        assert_eq!(frame[..4], 22u32.to_le_bytes());
        let mut buf = Vec::new();
        let mut s = &frame[..];
        assert_eq!(read_frame(&mut s, &mut buf).unwrap(), Some(t));
        assert_eq!(read_frame(&mut s, &mut buf).unwrap(), None);
    }
}
