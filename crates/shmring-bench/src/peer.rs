//! The benchmark's peer processes: the hidden `__bench-peer` subcommand, the job
//! it is given and the report it returns. The parent's side is [`super::launch`].
//!
//! # Protocol
//!
//! The parent makes the links (descriptors), clears close-on-exec on the descriptors of
//! one child, spawns it (`shmring __bench-peer --spec JSON`, the spec naming the
//! inherited descriptor numbers), and closes its own copies, so that each descriptor
//! lives in exactly one child. Each child opens its ends, prints `ready`, and waits
//! for `go` on stdin; the parent sends `go` when every child is ready. Each child runs
//! its role, closes its ends (which the other side sees as the end of the stream),
//! prints one JSON [`PeerReport`], and exits.
//!
//! A child that fails prints one line on stderr and exits non-zero; the parent then
//! kills and reaps every child of the run and reports that line. Children die with the
//! parent (`PR_SET_PDEATHSIG`), and the rings live in anonymous segments, so nothing is
//! left behind in `/dev/shm` whatever happens.

use super::reference;
use super::transports::{Rx, Transport, Tx, open_consumer};
use super::{Result, err};
use serde::{Deserialize, Serialize};
use shmring::RecvError;
use std::io::BufRead;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Arguments of the hidden `__bench-peer` subcommand.
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    /// The peer's job, as JSON (written by `shmring bench`).
    #[arg(long)]
    spec: String,
}

/// What a peer process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Role {
    /// Send numbered messages for a count or a duration (fds: `[tx]`).
    Producer,
    /// Receive and check them until the end of the stream (fds: `[rx]`).
    Consumer,
    /// Send, wait for the echo, time each round trip (fds: `[tx, rx]`).
    Ping,
    /// Echo every message back (fds: `[rx, tx]`).
    Pong,
    /// Wait for a message that never comes; measure the CPU time spent (fds: `[rx]`,
    /// a ring).
    IdleConsumer,
    /// Initiate the cache-line ping-pong (fds: `[shared page]`).
    FloorPing,
    /// Answer it (fds: `[shared page]`).
    FloorPong,
    /// Push `count` stamped messages into an MPMC queue; the last producer to finish
    /// closes it (fds: `[queue, done-counter page]`).
    MpmcProducer,
    /// Pop and check until the queue is closed and drained (fds: `[queue]`).
    MpmcConsumer,
    /// Take the lock of `lock` in a loop with another contender, for `duration_ns`
    /// (fds: `[lock segment, control page]`).
    LockContender,
    /// Send `count` typed messages through the end of `vocab` (fds: `[end]`).
    TypedProducer,
    /// Receive and check them, then the end of the stream (fds: `[end]`).
    TypedConsumer,
    /// Send `count` messages of `size` bytes over the socket row of `net` (fds: `[end]`
    /// for the raw socket; none for the socket connection, which connects to `address`).
    NetProducer,
    /// Receive and check them, then the end of the stream (fds as the producer's; the
    /// socket connection's consumer listens at `address`).
    NetConsumer,
}

/// The job of one peer process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PeerSpec {
    /// What to do.
    pub(crate) role: Role,
    /// Which transport the descriptors belong to (`None` for the floor roles).
    pub(crate) transport: Option<Transport>,
    /// Message size in bytes.
    pub(crate) size: usize,
    /// Inherited descriptors, in the order the role documents (set at spawn).
    pub(crate) fds: Vec<RawFd>,
    /// Producer: send exactly this many messages instead of running for `duration_ns`.
    pub(crate) count: Option<u64>,
    /// Producer: how long to send. Ping: the cap on the measured rounds. Idle: how long
    /// to wait.
    pub(crate) duration_ns: u64,
    /// Ping: round trips to time after the warm-up.
    pub(crate) rounds: u64,
    /// Ping: untimed round trips first.
    pub(crate) warmup: u64,
    /// Pin the process to this CPU.
    pub(crate) cpu: Option<usize>,
    /// MPMC producer: its id, stamped into its messages.
    pub(crate) id: u64,
    /// MPMC roles: the number of producers of the run.
    pub(crate) producers: u64,
    /// Lock contender: which lock the descriptor holds.
    pub(crate) lock: Option<super::lock::LockKind>,
    /// Typed roles: which row's end the descriptor is.
    pub(crate) vocab: Option<super::vocab::VocabKind>,
    /// Socket roles: which row.
    pub(crate) net: Option<super::net::NetKind>,
    /// Socket roles of the socket connection's row: where the consumer listens.
    pub(crate) address: Option<String>,
}

impl PeerSpec {
    /// A spec with no counts, durations or descriptors yet.
    pub(crate) fn new(role: Role, transport: Option<Transport>, size: usize) -> Self {
        PeerSpec {
            role,
            transport,
            size,
            fds: Vec::new(),
            count: None,
            duration_ns: 0,
            rounds: 0,
            warmup: 0,
            cpu: None,
            id: 0,
            producers: 0,
            lock: None,
            vocab: None,
            net: None,
            address: None,
        }
    }
}

/// Round-trip times measured by a ping role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RttStats {
    /// Timed round trips.
    pub(crate) rounds: u64,
    /// Median, nanoseconds.
    pub(crate) p50_ns: u64,
    /// 99th percentile.
    pub(crate) p99_ns: u64,
    /// 99.9th percentile.
    pub(crate) p999_ns: u64,
    /// Largest.
    pub(crate) max_ns: u64,
}

impl RttStats {
    /// Nearest-rank percentiles of `samples` (sorted in place). `None` if empty.
    pub(crate) fn from_samples(samples: &mut [u64]) -> Option<Self> {
        samples.sort_unstable();
        let n = samples.len();
        let rank = |q: f64| samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
        (n > 0).then(|| RttStats {
            rounds: n as u64,
            p50_ns: rank(0.5),
            p99_ns: rank(0.99),
            p999_ns: rank(0.999),
            max_ns: samples[n - 1],
        })
    }
}

/// The one line of JSON a peer prints when it is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "kebab-case")]
pub(crate) enum PeerReport {
    /// Producer: messages sent.
    Sent {
        /// Messages sent.
        messages: u64,
    },
    /// Consumer: messages received, and the time from the first to the end of the stream.
    Received {
        /// Messages received (all checked).
        messages: u64,
        /// From the first message to the end of the stream, nanoseconds.
        elapsed_ns: u64,
    },
    /// Ping: round-trip times.
    Rtt(RttStats),
    /// Pong: messages echoed.
    Echoed {
        /// Messages echoed.
        messages: u64,
    },
    /// MPMC consumer: what it got from each producer, and when.
    Consumed(super::mpmc::Consumed),
    /// Lock contender: its operations and hand-offs.
    Contended(super::lock::Contender),
    /// Idle consumer: CPU time used while waiting, and the wall time of the wait.
    Idle {
        /// CPU time (user + system) of the process during the wait.
        cpu_ns: u64,
        /// Wall time of the wait.
        wall_ns: u64,
    },
}

/// Entry point of `shmring __bench-peer`.
pub fn child_main(args: PeerArgs) -> Result<()> {
    // A peer has no purpose without the parent that reads its report.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| err(format!("prctl(PR_SET_PDEATHSIG): {e}")))?;
    let spec: PeerSpec = serde_json::from_str(&args.spec).map_err(|e| err(format!("bad --spec: {e}")))?;
    let mut fds = adopt(&spec.fds)?.into_iter();
    let mut fd = || {
        fds.next()
            .ok_or_else(|| err(format!("{:?} needs more descriptors", spec.role)))
    };
    if let Some(cpu) = spec.cpu {
        pin(cpu)?;
    }
    let transport = || {
        spec.transport
            .ok_or_else(|| err(format!("{:?} needs a transport", spec.role)))
    };
    let report = match spec.role {
        Role::Producer => {
            let mut tx = transport()?.open_tx(fd()?)?;
            barrier()?;
            let messages = produce(&mut tx, &spec)?;
            drop(tx); // the consumer sees the end of the stream
            PeerReport::Sent { messages }
        }
        Role::Consumer => {
            let mut rx = transport()?.open_rx(fd()?)?;
            barrier()?;
            let (messages, elapsed_ns) = consume(&mut rx, spec.size)?;
            PeerReport::Received { messages, elapsed_ns }
        }
        Role::Ping => {
            let mut tx = transport()?.open_tx(fd()?)?;
            let mut rx = transport()?.open_rx(fd()?)?;
            barrier()?;
            PeerReport::Rtt(ping(&mut tx, &mut rx, &spec)?)
        }
        Role::Pong => {
            let mut rx = transport()?.open_rx(fd()?)?;
            let mut tx = transport()?.open_tx(fd()?)?;
            barrier()?;
            let messages = pong(&mut rx, &mut tx)?;
            PeerReport::Echoed { messages }
        }
        Role::IdleConsumer => {
            let Some(Transport::Shmring(mode)) = spec.transport else {
                return Err(err("the idle consumer measures a shmring ring"));
            };
            let mut rx = open_consumer(mode, fd()?)?;
            barrier()?;
            let mut buf = Vec::new();
            let (cpu0, t0) = (cpu_time_ns(), Instant::now());
            match rx.recv_timeout_into(&mut buf, Duration::from_nanos(spec.duration_ns)) {
                Err(RecvError::Timeout) => {}
                Ok(_) => return Err(err("idle consumer received a message nobody sent")),
                Err(e) => return Err(err(format!("idle consumer: {e}"))),
            }
            let (cpu1, wall) = (cpu_time_ns(), t0.elapsed());
            PeerReport::Idle {
                cpu_ns: cpu1.saturating_sub(cpu0),
                wall_ns: wall.as_nanos() as u64,
            }
        }
        Role::FloorPing => {
            let page = reference::SharedWord::map(fd()?)?;
            barrier()?;
            PeerReport::Rtt(reference::floor_ping(&page, &spec)?)
        }
        Role::FloorPong => {
            let page = reference::SharedWord::map(fd()?)?;
            barrier()?;
            let messages = reference::floor_pong(&page);
            PeerReport::Echoed { messages }
        }
        Role::MpmcProducer => super::mpmc::produce(fd()?, fd()?, &spec)?,
        Role::MpmcConsumer => super::mpmc::consume(fd()?, &spec)?,
        Role::LockContender => super::lock::contend(fd()?, fd()?, &spec)?,
        Role::TypedProducer => super::vocab::produce(fd()?, &spec)?,
        Role::TypedConsumer => super::vocab::consume(fd()?, &spec)?,
        Role::NetProducer => super::net::produce(fd().ok(), &spec)?,
        Role::NetConsumer => super::net::consume(fd().ok(), &spec)?,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Take ownership of the inherited descriptors named in the spec.
fn adopt(raw: &[RawFd]) -> Result<Vec<OwnedFd>> {
    let mut out: Vec<OwnedFd> = Vec::with_capacity(raw.len());
    for &fd in raw {
        if fd <= 2 || out.iter().any(|o| o.as_raw_fd() == fd) {
            return Err(err(format!("bad inherited descriptor {fd}")));
        }
        // SAFETY: the parent cleared close-on-exec on `fd` for this child alone and named
        // it in the spec; nothing else in this process uses that number (checked
        // distinct and not stdio above), so the OwnedFd is its only owner.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        rustix::io::fcntl_getfd(&owned).map_err(|e| err(format!("inherited descriptor {fd}: {e}")))?;
        out.push(owned);
    }
    Ok(out)
}

fn pin(cpu: usize) -> Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).map_err(|e| err(format!("cannot pin to CPU {cpu}: {e}")))
}

/// Say `ready`, then wait for the parent's `go`.
pub(crate) fn barrier() -> Result<()> {
    println!("ready");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| err(format!("reading go: {e}")))?;
    if line.trim() != "go" {
        return Err(err(format!("expected go from the parent, got {:?}", line.trim())));
    }
    Ok(())
}

/// CPU time (user + system) of this process, nanoseconds.
fn cpu_time_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Write `seq` into the first 8 bytes of `msg` and, when there is room, the last 8.
#[inline]
pub(crate) fn stamp(msg: &mut [u8], seq: u64) {
    let b = seq.to_le_bytes();
    let n = msg.len();
    if n >= 8 {
        msg[..8].copy_from_slice(&b);
    }
    if n >= 16 {
        msg[n - 8..].copy_from_slice(&b);
    }
}

/// Whether `msg` carries the stamp of `seq` (trivially true below 8 bytes).
#[inline]
pub(crate) fn stamped(msg: &[u8], seq: u64) -> bool {
    let b = seq.to_le_bytes();
    let n = msg.len();
    (n < 8 || msg[..8] == b) && (n < 16 || msg[n - 8..] == b)
}

/// Producer role: numbered messages of `spec.size` bytes, with `send`, for
/// `spec.count` messages or `spec.duration_ns`.
fn produce(tx: &mut impl Tx, spec: &PeerSpec) -> Result<u64> {
    let mut msg = vec![0xA5u8; spec.size];
    let run_for = Duration::from_nanos(spec.duration_ns);
    // Read the clock rarely for small messages (it costs about as much as a send).
    let check_mask = if spec.size >= 4096 { 0 } else { 255 };
    let start = Instant::now();
    let mut seq = 0u64;
    loop {
        match spec.count {
            Some(c) if seq == c => break,
            None if seq & check_mask == 0 && start.elapsed() >= run_for => break,
            _ => {}
        }
        stamp(&mut msg, seq);
        tx.send(&msg)?;
        seq += 1;
    }
    Ok(seq)
}

/// Consumer role: receive until the end of the stream, checking every message's length
/// and number. Returns the count and the time from the first message to the end.
fn consume(rx: &mut impl Rx, size: usize) -> Result<(u64, u64)> {
    let mut buf = Vec::with_capacity(size);
    let mut n = 0u64;
    let mut first = None;
    while let Some(len) = rx.recv(&mut buf)? {
        if len != size || buf.len() != size {
            return Err(err(format!("message {n} has {len} bytes, expected {size}")));
        }
        if !stamped(&buf, n) {
            return Err(err(format!("message {n} carries the wrong sequence number")));
        }
        if n == 0 {
            first = Some(Instant::now());
        }
        n += 1;
    }
    let elapsed = first.map_or(0, |f| f.elapsed().as_nanos() as u64);
    Ok((n, elapsed))
}

/// The stop message of a ping-pong.
const STOP: u64 = u64::MAX;

/// Ping role: `warmup` untimed then up to `rounds` timed round trips (capped at
/// `duration_ns`), each timed from the end of the previous one, so one clock read per
/// round trip.
fn ping(tx: &mut impl Tx, rx: &mut impl Rx, spec: &PeerSpec) -> Result<RttStats> {
    if spec.size < 8 {
        return Err(err("ping-pong messages need at least 8 bytes"));
    }
    let mut msg = vec![0x5Au8; spec.size];
    let mut buf = Vec::with_capacity(spec.size);
    let mut samples = Vec::with_capacity(spec.rounds as usize);
    let cap = Duration::from_nanos(spec.duration_ns);
    let total = spec.warmup + spec.rounds;
    let mut start = Instant::now();
    let mut prev = start;
    for i in 0..total {
        stamp(&mut msg, i);
        tx.send(&msg)?;
        let len = rx.recv(&mut buf)?.ok_or_else(|| err("pong closed its end"))?;
        if len != spec.size || !stamped(&buf, i) {
            return Err(err(format!("round trip {i}: wrong echo")));
        }
        let now = Instant::now();
        if i >= spec.warmup {
            samples.push((now - prev).as_nanos() as u64);
            if i & 1023 == 0 && now - start >= cap {
                break;
            }
        } else if i + 1 == spec.warmup {
            start = now;
        }
        prev = now;
    }
    stamp(&mut msg, STOP);
    tx.send(&msg)?;
    RttStats::from_samples(&mut samples).ok_or_else(|| err("no round trip measured"))
}

/// Pong role: echo until the stop message or the end of the stream.
fn pong(rx: &mut impl Rx, tx: &mut impl Tx) -> Result<u64> {
    let mut buf = Vec::new();
    let mut n = 0;
    while let Some(len) = rx.recv(&mut buf)? {
        if len >= 8 && stamped(&buf[..8], STOP) {
            break;
        }
        tx.send(&buf[..len])?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        let s = RttStats::from_samples(&mut v).unwrap();
        assert_eq!((s.p50_ns, s.p99_ns, s.p999_ns, s.max_ns), (500, 990, 999, 1000));
        assert_eq!(RttStats::from_samples(&mut []), None);
        let s = RttStats::from_samples(&mut [7]).unwrap();
        assert_eq!((s.p50_ns, s.p999_ns), (7, 7));
    }

    #[test]
    fn stamps_round_trip() {
        for n in [0usize, 4, 8, 12, 16, 64] {
            let mut m = vec![0u8; n];
            stamp(&mut m, 42);
            assert!(stamped(&m, 42));
            assert_eq!(stamped(&m, 43), n < 8);
        }
    }
}
