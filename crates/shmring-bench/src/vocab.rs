//! The typed-message rows of `shmring bench` (issue 5): the `multiprocessing` vocabulary
//! — [`shmring::connection`]'s `Pipe` and [`shmring::queue`]'s `Queue` — carrying a small
//! typed message from one producer process to one consumer process, next to a Unix
//! socket carrying the same encoded bytes and to Python's `multiprocessing.Pipe` and
//! `multiprocessing.Queue`, all in the same run.
//!
//! The message is a [`Tick`] (`seq: u64, px: f64, qty: u32, sym: String`), 22 bytes in
//! postcard's format (see [`shmring::codec`]); the sequence numbers start at 2^32 so that
//! every message of every row encodes to the same length. Python sends the equivalent
//! tuple `(seq, px, qty, "EURUSD")`, pickled by `multiprocessing`.
//!
//! - **shmring-pipe**: `connection::pipe(false)` (one way: a duplex pipe is two such
//!   rings, one per direction), the ends handed to two `__bench-peer` children with
//!   `into_fds` / `from_fds`; `send(&tick)` / `recv::<Tick>()`, default options
//!   (adaptive waits, a 256 KiB ring).
//! - **shmring-queue**: `Queue::<Tick>::new(`[`QUEUE_MAXSIZE`]`)`, a handle per child
//!   (`try_clone()?.into_fd()` / `Queue::from_fd`); `put(&tick)` / `get()`. The producer
//!   closes the queue after its last message; the parent checks the queue's counters.
//! - **unix-socket** (`typed`): a `SOCK_STREAM` socket pair; each message is the same
//!   postcard bytes behind a 4-byte little-endian length, written with **one `write`
//!   per message** (length and bytes coalesced), so that, as with `send`/`put`, the
//!   message is with the receiver when the call returns; the receiver reads through a
//!   64 KiB `BufReader` (one `read` per many messages) and decodes each with
//!   [`shmring::codec::decode`]. This is the issue's baseline.
//! - **unix-socket** (`typed-batched`, a reference, not a target's baseline): the same
//!   with a 64 KiB `BufWriter` on the sending side, flushed only when full and at the
//!   end: one `write` per ~2,500 messages. It shows what batching buys a stream; it
//!   does not deliver a message when its send returns.
//! - **python-mp-pipe** / **python-mp-queue**: `python3 -c` (the script is
//!   [`PY_SCRIPT`]) forks a producer (`multiprocessing` "fork" context) that sends /
//!   puts the tuples while the parent Python process receives / gets them; `Pipe()`
//!   (duplex, a socket pair) and `Queue()` (unbounded, its feeder thread). Skipped, and
//!   said so, if python3 is missing.
//!
//! Every consumer checks every message's sequence number (the Rust ones the whole
//! message), and after the last one that the stream ends (end of stream, disconnect or
//! closed queue: no extra message); the producer's count must match. The clock starts at
//! the first message the consumer receives and stops at the last one (n - 1 messages
//! timed), as in the other throughput rows. The rows' runs are interleaved (run 1 of
//! every row, then run 2, ...), so that a change of the CPUs' placement hits every row
//! alike; a row is its median run.

use super::launch::{PeerJob, run_peers};
use super::peer::{PeerReport, PeerSpec, Role, barrier};
use super::report::{OptTarget, Row, rate, ratio};
use super::{Result, err};
use serde::{Deserialize, Serialize};
use shmring::codec;
use shmring::connection::{self, ConnError, Connection};
use shmring::queue::{GetError, Queue};
use std::fmt::Write as _;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The typed message of the rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// `maxsize` of the shmring queue: 1024 messages (the ring of the MPMC rows has 1024
/// slots too). Python's queue is unbounded; shmring's `Queue::new(0)` (16,384 slots of
/// 512 bytes, 8 MiB) measured no faster (see docs/benchmarks.md).
pub(crate) const QUEUE_MAXSIZE: usize = 1024;
/// Buffer of the stream's reader and of the batched stream's writer.
const STREAM_BUF: usize = 64 << 10;
/// Largest frame the stream receiver accepts (the length comes from another process).
const MAX_FRAME: usize = 1 << 20;
/// Runs of each row, whose median is the row.
pub(crate) const RUNS: usize = 3;

/// A row of the typed rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum VocabKind {
    /// `shmring::connection` pipe: `send` / `recv`.
    #[value(alias = "shmring-pipe")]
    Pipe,
    /// `shmring::queue::Queue`: `put` / `get`.
    #[value(alias = "shmring-queue")]
    Queue,
    /// A Unix stream socket, one `write` per length-prefixed message.
    #[value(alias = "unix-socket")]
    Unix,
    /// The same with a 64 KiB `BufWriter` (a reference: batches messages).
    UnixBatched,
    /// Python's `multiprocessing.Pipe()` (skipped if python3 is missing).
    #[value(alias = "python-mp-pipe")]
    PythonPipe,
    /// Python's `multiprocessing.Queue()` (skipped if python3 is missing).
    #[value(alias = "python-mp-queue")]
    PythonQueue,
}

/// `mode` of the rows.
pub(crate) const TYPED: &str = "typed";
/// `mode` of the batched socket's row.
pub(crate) const TYPED_BATCHED: &str = "typed-batched";

impl VocabKind {
    /// Every row, in the table's order.
    pub(crate) const ALL: [VocabKind; 6] = [
        VocabKind::Pipe,
        VocabKind::Queue,
        VocabKind::Unix,
        VocabKind::UnixBatched,
        VocabKind::PythonPipe,
        VocabKind::PythonQueue,
    ];

    /// The row's transport (in the JSON).
    pub(crate) fn name(self) -> &'static str {
        match self {
            VocabKind::Pipe => "shmring-pipe",
            VocabKind::Queue => "shmring-queue",
            VocabKind::Unix | VocabKind::UnixBatched => "unix-socket",
            VocabKind::PythonPipe => "python-mp-pipe",
            VocabKind::PythonQueue => "python-mp-queue",
        }
    }

    /// The row's mode (in the JSON).
    pub(crate) fn mode(self) -> &'static str {
        match self {
            VocabKind::UnixBatched => TYPED_BATCHED,
            _ => TYPED,
        }
    }

    /// `name` or `name/mode`: the row's label in the table and the target lines.
    pub(crate) fn label(self) -> String {
        match self {
            VocabKind::UnixBatched => format!("{}/{TYPED_BATCHED}", self.name()),
            _ => self.name().to_owned(),
        }
    }

    fn is_python(self) -> bool {
        matches!(self, VocabKind::PythonPipe | VocabKind::PythonQueue)
    }

    /// Messages of one run without `--count`: each row's three runs take about a
    /// second in all on the project's machine; `--quick` about a tenth of that.
    pub(crate) fn default_count(self, quick: bool) -> u64 {
        let n = match self {
            VocabKind::Pipe => 3_000_000,
            VocabKind::Queue => 2_000_000,
            VocabKind::Unix => 300_000,
            VocabKind::UnixBatched => 4_000_000,
            VocabKind::PythonPipe => 60_000,
            VocabKind::PythonQueue => 50_000,
        };
        if quick { n / 10 } else { n }
    }
}

// ---- the Rust rows' peers ------------------------------------------------------------

/// Peer role [`Role::TypedProducer`]: send `spec.count` ticks through the row's end
/// (fds: `[end]`), then close it.
pub(crate) fn produce(fd: OwnedFd, spec: &PeerSpec) -> Result<PeerReport> {
    let n = spec.count.ok_or_else(|| err("a typed producer needs a count"))?;
    let mut t = Tick::nth(0);
    match spec.vocab {
        Some(VocabKind::Pipe) => {
            let mut c = Connection::from_fds(None, Some(fd))?;
            barrier()?;
            for i in 0..n {
                t.set(i);
                c.send(&t).map_err(|e| err(format!("pipe send: {e}")))?;
            }
            drop(c); // the consumer sees the end of the stream
        }
        Some(VocabKind::Queue) => {
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

/// Peer role [`Role::TypedConsumer`]: receive `spec.count` ticks from the row's end
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
    let elapsed = match spec.vocab {
        Some(VocabKind::Pipe) => {
            let mut c = Connection::from_fds(Some(fd), None)?;
            barrier()?;
            let r = |e: ConnError| err(format!("pipe recv: {e}"));
            check(&c.recv::<Tick>().map_err(r)?, 0)?;
            let t0 = Instant::now();
            for i in 1..n {
                check(&c.recv::<Tick>().map_err(r)?, i)?;
            }
            let elapsed = t0.elapsed();
            match c.recv_bytes() {
                Err(ConnError::Disconnected) => {}
                Ok(_) => return Err(err(format!("the pipe carried more than {n} messages"))),
                Err(e) => return Err(r(e)),
            }
            elapsed
        }
        Some(VocabKind::Queue) => {
            let mut q = Queue::<Tick>::from_fd(fd)?;
            barrier()?;
            let r = |e: GetError| err(format!("queue get: {e}"));
            check(&q.get().map_err(r)?, 0)?;
            let t0 = Instant::now();
            for i in 1..n {
                check(&q.get().map_err(r)?, i)?;
            }
            let elapsed = t0.elapsed();
            match q.get_bytes() {
                Err(GetError::Closed) => {}
                Ok(_) => return Err(err(format!("the queue carried more than {n} messages"))),
                Err(e) => return Err(r(e)),
            }
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
fn run_rust(kind: VocabKind, n: u64, pin: &[usize], timeout: Duration) -> Result<f64> {
    // The parent keeps a queue handle, to read its counters at the end.
    let mut queue = None;
    let (tx, rx): (OwnedFd, OwnedFd) = match kind {
        VocabKind::Pipe => {
            let (r, w) = connection::pipe(false)?;
            let (_, send) = w.into_fds();
            let (recv, _) = r.into_fds();
            (
                send.ok_or_else(|| err("pipe end without a sending ring"))?,
                recv.ok_or_else(|| err("pipe end without a receiving ring"))?,
            )
        }
        VocabKind::Queue => {
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
    for (i, (role, fd)) in [(Role::TypedProducer, tx), (Role::TypedConsumer, rx)]
        .into_iter()
        .enumerate()
    {
        let mut spec = PeerSpec::new(role, None, encoded_size());
        spec.vocab = Some(kind);
        spec.count = Some(n);
        spec.cpu = pin.get(i).copied();
        jobs.push(PeerJob { spec, fds: vec![fd] });
    }
    let reports = run_peers(jobs, timeout)?;
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
fn per_s(n: u64, secs: f64) -> f64 {
    (n - 1) as f64 / secs.max(1e-9)
}

// ---- Python --------------------------------------------------------------------------

/// The script `python3 -c` runs: `pipe N CPU CPU` or `queue N CPU CPU` (a CPU of -1:
/// not pinned); prints one line of JSON, or exits with [`PY_FAILED`] and a line on
/// stderr when a check fails.
pub(crate) const PY_SCRIPT: &str = r#"
import json, os, sys, time, multiprocessing as mp

BASE = 1 << 32
FAILED = 3  # the exit status of a failed check
SYM = "EURUSD"

def pin(cpu):
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})

def produce(send, n):
    for i in range(n):
        send((BASE + i, 100.0 + (i % 1000) * 0.25, 200 + i % 100, SYM))

def pipe_producer(w, n, cpu):
    pin(cpu)
    produce(w.send, n)
    w.close()

def queue_producer(q, n, cpu):
    pin(cpu)
    produce(q.put, n)
    q.close()
    q.join_thread()

producer = None

def fail(why):
    # At once: no atexit join of a producer that may be blocked on a full pipe.
    if producer is not None and producer.is_alive():
        producer.kill()
    sys.stderr.write(why + "\n")
    sys.stderr.flush()
    os._exit(FAILED)

def consume(get, n):
    i = 0
    try:
        m = get()
        t0 = time.perf_counter()
        if m[0] != BASE:
            fail("message 0 carries sequence number %d" % (m[0] - BASE))
        for i in range(1, n):
            m = get()
            if m[0] != BASE + i:
                fail("message %d carries sequence number %d" % (i, m[0] - BASE))
    except EOFError:
        fail("the stream ended after %d of %d messages" % (i, n))
    return time.perf_counter() - t0

kind, n, cpu0, cpu1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = mp.get_context("fork")
if kind == "pipe":
    r, w = ctx.Pipe()
    producer = p = ctx.Process(target=pipe_producer, args=(w, n, cpu0))
    p.start()
    w.close()
    pin(cpu1)
    elapsed = consume(r.recv, n)
    try:
        r.recv()
        fail("the pipe carried more than %d messages" % n)
    except EOFError:
        pass
else:
    q = ctx.Queue()
    producer = p = ctx.Process(target=queue_producer, args=(q, n, cpu0))
    p.start()
    pin(cpu1)
    elapsed = consume(q.get, n)
p.join()
if p.exitcode != 0:
    fail("the producer failed (exit code %s)" % p.exitcode)
if kind == "queue" and not q.empty():
    fail("the queue carried more than %d messages" % n)
print(json.dumps({"messages": n, "elapsed_s": elapsed}))
"#;

/// Exit status of the script when a check fails (a failure of the row, not a skip).
const PY_FAILED: i32 = 3;

/// What the script prints.
#[derive(Debug, Deserialize)]
struct PyRun {
    messages: u64,
    elapsed_s: f64,
}

/// One run of a Python row. `Ok(Err(why))`: Python is not there or cannot run it (the
/// row is then skipped, never estimated); `Err`: it ran and failed a check, printed
/// nonsense, or took longer than `timeout`.
fn run_python(kind: VocabKind, n: u64, pin: &[usize], timeout: Duration) -> Result<Result<f64, String>> {
    let what = if kind == VocabKind::PythonPipe { "pipe" } else { "queue" };
    let cpu = |i: usize| pin.get(i).map_or("-1".to_owned(), |c| c.to_string());
    let o = match super::python::run_script(PY_SCRIPT, &[what, &n.to_string(), &cpu(0), &cpu(1)], timeout)? {
        Ok(o) => o,
        Err(why) => return Ok(Err(why)),
    };
    if !o.status.success() {
        let why = &o.last_err;
        // A failed check is a failure of the row, not a reason to skip it.
        if o.status.code() == Some(PY_FAILED) {
            return Err(err(format!("{}: {why}", kind.name())));
        }
        return Ok(Err(format!("python3 failed ({}): {why}", o.status)));
    }
    let line = o.last_out;
    let r: PyRun = serde_json::from_str(&line).map_err(|e| err(format!("python3 printed {line:?}: {e}")))?;
    if r.messages != n || r.elapsed_s <= 0.0 {
        return Err(err(format!("python3 reported {line}")));
    }
    Ok(Ok(per_s(n, r.elapsed_s)))
}

// ---- the step ------------------------------------------------------------------------

/// The typed step: `runs` runs of every selected row, interleaved, recorded in `res`.
/// `count`: messages per run of every row (`None`: each row's default). Returns the
/// progress line.
pub(crate) fn run(
    kinds: &[VocabKind],
    count: Option<u64>,
    quick: bool,
    runs: usize,
    pin: &[usize],
    timeout: Duration,
    res: &mut VocabResults,
) -> Result<String> {
    res.size = encoded_size();
    let mut all: Vec<(VocabKind, Vec<f64>)> = kinds.iter().map(|&k| (k, Vec::new())).collect();
    for _ in 0..runs {
        for (kind, got) in &mut all {
            if res.skipped.iter().any(|(k, _)| k == kind) {
                continue;
            }
            let n = count.unwrap_or_else(|| kind.default_count(quick));
            if n < 2 {
                return Err(err("the typed rows need --count of at least 2"));
            }
            if kind.is_python() {
                match run_python(*kind, n, pin, timeout)? {
                    Ok(v) => got.push(v),
                    Err(why) => res.skipped.push((*kind, why)),
                }
            } else {
                got.push(run_rust(*kind, n, pin, timeout)?);
            }
        }
    }
    let mut line = Vec::new();
    for (kind, runs) in all {
        if let Some((_, why)) = res.skipped.iter().find(|(k, _)| *k == kind) {
            line.push(format!("{} skipped ({why})", kind.label()));
            continue;
        }
        if runs.is_empty() {
            continue;
        }
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let per_s = sorted[sorted.len() / 2];
        line.push(format!("{} {}/s", kind.label(), rate(per_s)));
        res.rows.push((kind, VocabRow { per_s, runs }));
    }
    Ok(line.join(", "))
}

// ---- results -------------------------------------------------------------------------

/// A row: the median run, and every run's rate.
#[derive(Debug, Clone)]
pub(crate) struct VocabRow {
    /// Messages per second of the median run.
    pub(crate) per_s: f64,
    /// Messages per second of each run, in order.
    pub(crate) runs: Vec<f64>,
}

/// Everything the typed step measured.
#[derive(Debug, Default)]
pub(crate) struct VocabResults {
    /// Encoded size of a message.
    size: usize,
    rows: Vec<(VocabKind, VocabRow)>,
    /// Rows not measured, and why.
    skipped: Vec<(VocabKind, String)>,
}

impl VocabResults {
    fn get(&self, k: VocabKind) -> Option<f64> {
        self.rows.iter().find(|(x, _)| *x == k).map(|(_, r)| r.per_s)
    }

    fn skipped(&self, k: VocabKind) -> Option<&str> {
        self.skipped.iter().find(|(x, _)| *x == k).map(|(_, w)| w.as_str())
    }

    /// Whether anything was measured or skipped.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.skipped.is_empty()
    }

    /// The JSON rows: `size` is the postcard encoding of a message; `mb_per_s` counts
    /// those bytes (`null` for Python, which pickles); no RTTs.
    pub(crate) fn rows(&self) -> Vec<Row> {
        VocabKind::ALL
            .iter()
            .filter_map(|&k| {
                self.get(k).map(|per_s| Row {
                    transport: k.name(),
                    mode: Some(k.mode()),
                    size: self.size as u64,
                    msgs_per_s: Some(per_s),
                    mb_per_s: (!k.is_python()).then(|| per_s * self.size as f64 / 1e6),
                    rtt_p50_ns: None,
                    rtt_p99_ns: None,
                    rtt_p999_ns: None,
                })
            })
            .collect()
    }

    /// The table of the typed rows and their ratios.
    pub(crate) fn render(&self, out: &mut String) {
        if self.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\ntyped messages (issue 5): Tick {{ seq: u64, px: f64, qty: u32, sym: String }}, {} B in postcard \
             (Python: the same tuple, pickled); one producer process -> one consumer process; msgs/s of the \
             median run; x pipe = shmring-pipe / row.",
            self.size
        );
        let _ = writeln!(out, "  {:<30} {:>10} {:>8}  runs", "row", "msgs/s", "x pipe");
        let pipe = self.get(VocabKind::Pipe);
        for k in VocabKind::ALL {
            if let Some(why) = self.skipped(k) {
                let _ = writeln!(out, "  {:<30} skipped: {why}", k.label());
                continue;
            }
            let Some((_, r)) = self.rows.iter().find(|(x, _)| *x == k) else {
                continue;
            };
            let x = pipe
                .filter(|_| r.per_s > 0.0)
                .map_or("-".into(), |p| ratio(p / r.per_s));
            let runs: Vec<String> = r.runs.iter().map(|&v| rate(v)).collect();
            let _ = writeln!(
                out,
                "  {:<30} {:>10} {:>8}  {}",
                k.label(),
                rate(r.per_s),
                x,
                runs.join(" ")
            );
        }
        let mut ratios = Vec::new();
        for (a, b) in [
            (VocabKind::Pipe, VocabKind::Unix),
            (VocabKind::Pipe, VocabKind::PythonPipe),
            (VocabKind::Queue, VocabKind::PythonQueue),
            (VocabKind::Queue, VocabKind::Unix),
            (VocabKind::Pipe, VocabKind::UnixBatched),
            (VocabKind::Queue, VocabKind::UnixBatched),
        ] {
            if let (Some(x), Some(y)) = (self.get(a), self.get(b)) {
                ratios.push(format!("{} / {} {}", a.label(), b.label(), ratio(x / y)));
            }
        }
        if !ratios.is_empty() {
            let _ = writeln!(out, "  ratios: {}", ratios.join("; "));
        }
    }

    /// The issue's four targets that this run has the data for (SKIP where Python was
    /// missing).
    pub(crate) fn targets(&self) -> Vec<OptTarget> {
        let mut out = Vec::new();
        for (a, b, want) in [
            (VocabKind::Pipe, VocabKind::Unix, 10.0),
            (VocabKind::Queue, VocabKind::Unix, 10.0),
            (VocabKind::Pipe, VocabKind::PythonPipe, 100.0),
            (VocabKind::Queue, VocabKind::PythonQueue, 100.0),
        ] {
            let Some(x) = self.get(a) else {
                continue;
            };
            let what = format!("typed msgs/s, {} >= {want}x {}", a.label(), b.label());
            match (self.get(b), self.skipped(b)) {
                (Some(y), _) => out.push(OptTarget {
                    what,
                    measured: format!("{} ({}/s vs {}/s)", ratio(x / y), rate(x), rate(y)),
                    pass: Some(x / y >= want),
                }),
                (None, Some(why)) => out.push(OptTarget {
                    what,
                    measured: format!("not measured: {why}"),
                    pass: None,
                }),
                _ => {}
            }
        }
        out
    }

    /// The targets block.
    pub(crate) fn render_targets(&self, out: &mut String, far: usize) {
        super::report::render_target_lines(out, "issue 5", &self.targets(), far);
    }
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
        }
        let mut frame = Vec::new();
        encode_frame(&t, &mut frame).unwrap();
        assert_eq!(frame[..4], 22u32.to_le_bytes());
        let mut buf = Vec::new();
        let mut s = &frame[..];
        assert_eq!(read_frame(&mut s, &mut buf).unwrap(), Some(t));
        assert_eq!(read_frame(&mut s, &mut buf).unwrap(), None);
    }

    #[test]
    fn python_rows_run_or_are_skipped() {
        for kind in [VocabKind::PythonPipe, VocabKind::PythonQueue] {
            match run_python(kind, 2000, &[], Duration::from_secs(60)).unwrap() {
                Ok(per_s) => assert!(per_s > 0.0, "{kind:?}"),
                Err(why) => assert!(why.contains("python3"), "{why}"),
            }
        }
    }

    #[test]
    fn rows_and_targets() {
        let mut r = VocabResults {
            size: 22,
            ..Default::default()
        };
        assert!(r.is_empty() && r.targets().is_empty());
        let row = |per_s: f64| VocabRow {
            per_s,
            runs: vec![per_s],
        };
        r.rows.push((VocabKind::Pipe, row(10e6)));
        r.rows.push((VocabKind::Queue, row(4e6)));
        r.rows.push((VocabKind::Unix, row(0.5e6)));
        r.rows.push((VocabKind::PythonPipe, row(0.2e6)));
        r.skipped.push((VocabKind::PythonQueue, "python3 not found".into()));
        let t = r.targets();
        assert_eq!(t.len(), 4, "{t:?}");
        assert_eq!(t[0].pass, Some(true), "20x >= 10x");
        assert_eq!(t[1].pass, Some(false), "8x < 10x");
        assert_eq!(t[2].pass, Some(false), "50x < 100x");
        assert!(t[3].pass.is_none() && t[3].measured.contains("python3 not found"));
        let rows = r.rows();
        assert_eq!(rows.len(), 4);
        assert_eq!((rows[0].transport, rows[0].mode), ("shmring-pipe", Some(TYPED)));
        assert_eq!(rows[0].mb_per_s, Some(220.0));
        assert_eq!(rows[3].transport, "python-mp-pipe");
        assert!(rows[3].mb_per_s.is_none());
        let mut text = String::new();
        r.render(&mut text);
        r.render_targets(&mut text, 0);
        assert!(text.contains("python-mp-queue                skipped"), "{text}");
        assert!(text.contains("shmring-pipe / unix-socket 20.0x"), "{text}");
        assert!(text.contains("targets (issue 5):") && text.contains("[SKIP]"), "{text}");
    }
}
