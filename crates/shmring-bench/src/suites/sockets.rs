//! The socket rows of `shmring bench`: one producer process sends `n`
//! messages of 64 B and of 4 KiB to one consumer process over a socket
//! [`SocketConnection`](shmring::net::SocketConnection) — a Unix socket (an abstract
//! name), an authkey, the handshake done before the clock starts — next to a raw Unix
//! stream socket carrying the same bytes, in the same run.
//!
//! - **shmring-socket**: the consumer binds a `Listener` (abstract name, authkey)
//!   before it says `ready`; after `go` the producer connects with `Client::connect`,
//!   then sends with `send_bytes` (header and payload in one system call); the consumer
//!   accepts (the handshake) and receives with `recv_bytes_into` (a 64 KiB read buffer).
//! - **unix-socket** (the baseline): a `SOCK_STREAM` socket pair; each message is a
//!   4-byte little-endian length and the payload, written with **one `write` per
//!   message** (copied into one buffer first), so that, as with `send_bytes`, the
//!   message is in the socket when the call returns; the receiver reads through a
//!   64 KiB `BufReader`.
//!
//! Every message carries its number in its first 8 bytes, which the consumer checks
//! (and its length), then it checks that the stream ends after the last one; the
//! producer's count must match. The clock runs from the first message the consumer
//! receives to the last (n - 1 messages timed). The rows' runs are interleaved (run 1
//! of every row, then run 2, ...); a row is its median run.

use crate::args::{BenchArgs, Measure, Selected};
use crate::launch::{PeerJob, run_peers};
use crate::peer::{Fds, PeerReport, PeerSpec, barrier};
use crate::report::{self, OptTarget, Results, Row, rate, ratio};
use crate::suite::{Ctx, Phase, Planned, Suite};
use crate::{Result, err};
use serde::{Deserialize, Serialize};
use shmring::connection::ConnError;
use shmring::net::{Address, Client, Listener};
use std::fmt::Write as _;
use std::io::{BufReader, ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The message sizes of the rows.
pub(crate) const SIZES: [usize; 2] = [64, 4096];
/// Runs of each row, whose median is the row.
pub(crate) const RUNS: usize = 3;
/// The authkey of the socket rows.
const AUTHKEY: &[u8] = b"shmring bench authkey";
/// Buffer of the raw socket's reader.
const STREAM_BUF: usize = 64 << 10;
/// The target: the socket connection's throughput at least this fraction of the raw
/// socket's.
const TARGET: f64 = 1.0 / 1.3;

/// A row of the socket rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum NetKind {
    /// `shmring::net`: `Listener`/`Client` with an authkey, `send_bytes`/`recv_bytes_into`.
    Socket,
    /// A raw Unix stream socket, one `write` per length-prefixed message.
    Raw,
}

impl NetKind {
    /// Both rows, in the table's order.
    pub(crate) const ALL: [NetKind; 2] = [NetKind::Socket, NetKind::Raw];

    /// The row's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            NetKind::Socket => "shmring-socket",
            NetKind::Raw => "unix-socket",
        }
    }

    /// Messages per run of `size` bytes: about a second on the 2-CPU VM of
    /// docs/benchmarks.md (the step takes ~15 s in all).
    fn default_count(size: usize, quick: bool) -> u64 {
        let n = if size <= 256 { 400_000 } else { 150_000 };
        if quick { n / 10 } else { n }
    }
}

/// Message `i` of `size` bytes: its number, then a pattern.
#[inline]
fn fill(i: u64, msg: &mut [u8]) {
    msg[..8].copy_from_slice(&i.to_le_bytes());
}

#[inline]
fn check(i: u64, size: usize, msg: &[u8]) -> Result<()> {
    if msg.len() != size || msg[..8] != i.to_le_bytes() {
        return Err(err(format!(
            "message {i}: {} bytes starting {:?}",
            msg.len(),
            &msg[..msg.len().min(8)]
        )));
    }
    Ok(())
}

/// Role: send `count` messages of `size` bytes over the socket row of the job's
/// [`NetKind`] (fds: `[end]` for the raw socket; none for the socket connection, which
/// connects to `address`).
const NET_PRODUCER: &str = "net-producer";
/// Role: receive and check them, then the end of the stream (fds as the producer's; the
/// socket connection's consumer listens at `address`).
const NET_CONSUMER: &str = "net-consumer";

/// The suite of the socket rows.
#[derive(Debug)]
pub(crate) struct Sockets;

impl Suite for Sockets {
    type Step = ();

    fn name(&self) -> &'static str {
        "sockets"
    }

    fn plan(&self, a: &BenchArgs) -> Vec<Planned<()>> {
        if a.has(Selected::Net) && a.measures(Measure::Throughput) {
            vec![Planned::new(Phase::Rows, ())]
        } else {
            Vec::new()
        }
    }

    fn label(&self, _: &()) -> String {
        "sockets 64 B, 4 KiB".into()
    }

    fn run(&self, _: &(), ctx: &mut Ctx<'_>) -> Result<String> {
        let a = ctx.args;
        let runs = if a.quick { 1 } else { RUNS };
        let res = ctx.results.state::<NetResults>(self.name());
        run(self.name(), a.count, a.quick, runs, &a.pin, a.timeout, res)
    }

    fn serve(&self, spec: &PeerSpec, fds: &mut Fds) -> Result<serde_json::Value> {
        let report = match spec.role.as_str() {
            NET_PRODUCER => produce(fds.next_opt(), spec)?,
            NET_CONSUMER => consume(fds.next_opt(), spec)?,
            r => return Err(err(format!("suite {} has no role {r}", self.name()))),
        };
        Ok(serde_json::to_value(report)?)
    }

    fn render(&self, r: &Results, out: &mut String) {
        if let Some(res) = r.state_ref::<NetResults>(self.name()) {
            res.render(out);
        }
    }

    fn targets(&self, r: &Results) -> Option<(&'static str, Vec<OptTarget>)> {
        Some(("sockets", r.state_ref::<NetResults>(self.name())?.targets()))
    }

    fn json_rows(&self, r: &Results) -> Vec<Row> {
        r.state_ref::<NetResults>(self.name())
            .map(NetResults::rows)
            .unwrap_or_default()
    }
}

// ---- peers ---------------------------------------------------------------------------

/// Peer role [`NET_PRODUCER`]: send `spec.count` messages of `spec.size` bytes
/// (raw: through the inherited socket; socket: to the listener at `spec.address`), then
/// close.
pub(crate) fn produce(fd: Option<OwnedFd>, spec: &PeerSpec) -> Result<PeerReport> {
    let n = spec.count.ok_or_else(|| err("a socket producer needs a count"))?;
    let mut msg = vec![0x5au8; spec.size];
    match Some(spec.param::<NetKind>()?) {
        Some(NetKind::Socket) => {
            let addr: Address = spec
                .address
                .as_deref()
                .ok_or_else(|| err("a socket producer needs an address"))?
                .parse()?;
            barrier()?;
            let mut c = Client::connect(&addr, Some(AUTHKEY)).map_err(|e| err(format!("connect: {e}")))?;
            for i in 0..n {
                fill(i, &mut msg);
                c.send_bytes(&msg).map_err(|e| err(format!("send: {e}")))?;
            }
        }
        Some(NetKind::Raw) => {
            let mut s = UnixStream::from(fd.ok_or_else(|| err("a raw producer needs its socket"))?);
            barrier()?;
            let mut frame = vec![0u8; 4 + spec.size];
            frame[..4].copy_from_slice(&(spec.size as u32).to_le_bytes());
            for i in 0..n {
                fill(i, &mut frame[4..]);
                s.write_all(&frame).map_err(|e| err(format!("socket write: {e}")))?;
            }
        }
        None => return Err(err("a socket producer needs a row")),
    }
    Ok(PeerReport::Sent { messages: n })
}

/// Peer role [`NET_CONSUMER`]: receive and check `spec.count` messages, then the
/// end of the stream. Reports the count and the time from the first message to the last.
pub(crate) fn consume(fd: Option<OwnedFd>, spec: &PeerSpec) -> Result<PeerReport> {
    let n = spec.count.ok_or_else(|| err("a socket consumer needs a count"))?;
    if n < 2 {
        return Err(err("a socket run needs at least 2 messages"));
    }
    let size = spec.size;
    let elapsed = match Some(spec.param::<NetKind>()?) {
        Some(NetKind::Socket) => {
            let addr: Address = spec
                .address
                .as_deref()
                .ok_or_else(|| err("a socket consumer needs an address"))?
                .parse()?;
            let l = Listener::bind(&addr, Some(AUTHKEY))?;
            barrier()?;
            let mut c = l.accept().map_err(|e| err(format!("accept: {e}")))?;
            let r = |e: ConnError| err(format!("recv: {e}"));
            let mut buf = Vec::with_capacity(size);
            c.recv_bytes_into(&mut buf).map_err(r)?;
            check(0, size, &buf)?;
            let t0 = Instant::now();
            for i in 1..n {
                c.recv_bytes_into(&mut buf).map_err(r)?;
                check(i, size, &buf)?;
            }
            let elapsed = t0.elapsed();
            match c.recv_bytes_into(&mut buf) {
                Err(ConnError::Disconnected) => {}
                Ok(_) => return Err(err(format!("the socket carried more than {n} messages"))),
                Err(e) => return Err(r(e)),
            }
            elapsed
        }
        Some(NetKind::Raw) => {
            let s = UnixStream::from(fd.ok_or_else(|| err("a raw consumer needs its socket"))?);
            let mut s = BufReader::with_capacity(STREAM_BUF, s);
            barrier()?;
            let mut buf = vec![0u8; size];
            let next = |s: &mut BufReader<UnixStream>, buf: &mut Vec<u8>| -> Result<bool> {
                let mut hdr = [0u8; 4];
                match s.read_exact(&mut hdr) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(false),
                    Err(e) => return Err(err(format!("socket read: {e}"))),
                }
                let len = u32::from_le_bytes(hdr) as usize;
                if len != size {
                    return Err(err(format!("frame of {len} bytes, expected {size}")));
                }
                s.read_exact(buf).map_err(|e| err(format!("socket read: {e}")))?;
                Ok(true)
            };
            if !next(&mut s, &mut buf)? {
                return Err(err("the socket ended at once"));
            }
            check(0, size, &buf)?;
            let t0 = Instant::now();
            for i in 1..n {
                if !next(&mut s, &mut buf)? {
                    return Err(err(format!("the socket ended after {i}")));
                }
                check(i, size, &buf)?;
            }
            let elapsed = t0.elapsed();
            if next(&mut s, &mut buf)? {
                return Err(err(format!("the socket carried more than {n} messages")));
            }
            elapsed
        }
        None => return Err(err("a socket consumer needs a row")),
    };
    Ok(PeerReport::Received {
        messages: n,
        elapsed_ns: elapsed.as_nanos() as u64,
    })
}

// ---- runs ----------------------------------------------------------------------------

/// One run of a row: two children, their reports. Returns msgs/s.
fn run_one(suite: &str, kind: NetKind, size: usize, n: u64, pin: &[usize], timeout: Duration) -> Result<f64> {
    let mut fds: [Option<OwnedFd>; 2] = [None, None];
    let mut address = None;
    match kind {
        NetKind::Raw => {
            let (a, b) = UnixStream::pair().map_err(|e| err(format!("socketpair: {e}")))?;
            fds = [Some(a.into()), Some(b.into())];
        }
        NetKind::Socket => {
            use std::sync::atomic::{AtomicU32, Ordering};
            static RUN: AtomicU32 = AtomicU32::new(0);
            // Relaxed: a counter for unique names, no data hangs on it.
            let k = RUN.fetch_add(1, Ordering::Relaxed);
            address = Some(format!("@shmring-bench-{}-{k}", std::process::id()));
        }
    }
    let mut jobs = Vec::with_capacity(2);
    for (i, (role, fd)) in [NET_PRODUCER, NET_CONSUMER].into_iter().zip(fds).enumerate() {
        let mut spec = PeerSpec::new(suite, role, None, size).with_param(&kind)?;
        spec.address = address.clone();
        spec.count = Some(n);
        spec.cpu = pin.get(i).copied();
        jobs.push(PeerJob {
            spec,
            fds: fd.into_iter().collect(),
        });
    }
    let reports: Vec<PeerReport> = run_peers(jobs, timeout)?;
    let (PeerReport::Sent { messages: sent }, PeerReport::Received { messages, elapsed_ns }) =
        (&reports[0], &reports[1])
    else {
        return Err(err(format!("unexpected reports from a socket run: {reports:?}")));
    };
    if *sent != n || *messages != n {
        return Err(err(format!(
            "{n} messages: the producer sent {sent}, the consumer got {messages}"
        )));
    }
    Ok((n - 1) as f64 / (*elapsed_ns as f64 / 1e9).max(1e-9))
}

/// The socket step: `runs` runs of both rows at each size, interleaved, recorded in
/// `res`. `count`: messages per run (`None`: per size). Returns the progress line.
fn run(
    suite: &str,
    count: Option<u64>,
    quick: bool,
    runs: usize,
    pin: &[usize],
    timeout: Duration,
    res: &mut NetResults,
) -> Result<String> {
    let mut line = Vec::new();
    for size in SIZES {
        let n = count.unwrap_or_else(|| NetKind::default_count(size, quick));
        if n < 2 {
            return Err(err("the socket rows need --count of at least 2"));
        }
        let mut all: Vec<(NetKind, Vec<f64>)> = NetKind::ALL.iter().map(|&k| (k, Vec::new())).collect();
        for _ in 0..runs {
            for (kind, got) in &mut all {
                got.push(run_one(suite, *kind, size, n, pin, timeout)?);
            }
        }
        for (kind, runs) in all {
            let mut sorted = runs.clone();
            sorted.sort_by(f64::total_cmp);
            let per_s = sorted[sorted.len() / 2];
            line.push(format!("{} {} B {}/s", kind.name(), size, rate(per_s)));
            res.rows.push(NetRow {
                kind,
                size,
                per_s,
                runs,
            });
        }
    }
    Ok(line.join(", "))
}

// ---- results -------------------------------------------------------------------------

/// A row: the median run, and every run's rate.
#[derive(Debug, Clone)]
pub(crate) struct NetRow {
    kind: NetKind,
    size: usize,
    /// Messages per second of the median run.
    per_s: f64,
    /// Messages per second of each run, in order.
    runs: Vec<f64>,
}

/// Everything the socket step measured.
#[derive(Debug, Default)]
pub(crate) struct NetResults {
    rows: Vec<NetRow>,
}

impl NetResults {
    fn get(&self, k: NetKind, size: usize) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.kind == k && r.size == size)
            .map(|r| r.per_s)
    }

    /// The JSON rows (mode `socket`; no RTTs).
    pub(crate) fn rows(&self) -> Vec<Row> {
        self.rows
            .iter()
            .map(|r| Row {
                transport: r.kind.name(),
                mode: Some("socket"),
                size: r.size as u64,
                msgs_per_s: Some(r.per_s),
                mb_per_s: Some(r.per_s * r.size as f64 / 1e6),
                rtt_p50_ns: None,
                rtt_p99_ns: None,
                rtt_p999_ns: None,
            })
            .collect()
    }

    /// The table of the socket rows and their ratios.
    pub(crate) fn render(&self, out: &mut String) {
        if self.rows.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nsockets: one producer process -> one consumer process over a Unix socket; \
             shmring-socket = net::Client/Listener with an authkey (handshake before the clock), \
             send_bytes/recv_bytes_into; unix-socket = raw stream, one write per length-prefixed message; \
             msgs/s of the median run."
        );
        let _ = writeln!(
            out,
            "  {:<16} {:>8} {:>10} {:>9}  runs",
            "row", "size", "msgs/s", "x raw"
        );
        for r in &self.rows {
            let raw = self.get(NetKind::Raw, r.size);
            let x = raw.filter(|&v| v > 0.0).map_or("-".into(), |v| ratio(r.per_s / v));
            let runs: Vec<String> = r.runs.iter().map(|&v| rate(v)).collect();
            let _ = writeln!(
                out,
                "  {:<16} {:>8} {:>10} {:>9}  {}",
                r.kind.name(),
                report::size(r.size as u64),
                rate(r.per_s),
                x,
                runs.join(" ")
            );
        }
    }

    /// The target at each measured size: the socket connection at least 1/1.3
    /// of the raw socket's throughput.
    pub(crate) fn targets(&self) -> Vec<OptTarget> {
        let mut out = Vec::new();
        for size in SIZES {
            let (Some(x), Some(y)) = (self.get(NetKind::Socket, size), self.get(NetKind::Raw, size)) else {
                continue;
            };
            out.push(OptTarget {
                what: format!(
                    "socket msgs/s at {}, shmring-socket >= 1/1.3 unix-socket",
                    report::size(size as u64)
                ),
                measured: format!("{} ({}/s vs {}/s)", ratio(x / y), rate(x), rate(y)),
                pass: Some(x / y >= TARGET),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_targets() {
        let mut r = NetResults::default();
        let row = |kind, size, per_s: f64| NetRow {
            kind,
            size,
            per_s,
            runs: vec![per_s],
        };
        r.rows.push(row(NetKind::Socket, 64, 0.9e6));
        r.rows.push(row(NetKind::Raw, 64, 1.0e6));
        r.rows.push(row(NetKind::Socket, 4096, 0.5e6));
        r.rows.push(row(NetKind::Raw, 4096, 1.0e6));
        let t = r.targets();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].pass, Some(true), "{t:?}");
        assert_eq!(t[1].pass, Some(false), "{t:?}");
        let mut out = String::new();
        r.render(&mut out);
        report::render_target_lines(&mut out, "sockets", &r.targets(), 0);
        assert!(out.contains("[PASS] socket msgs/s at 64 B"), "{out}");
        assert!(out.contains("[FAIL] socket msgs/s at 4 KiB"), "{out}");
        assert_eq!(r.rows().len(), 4);
    }
}
