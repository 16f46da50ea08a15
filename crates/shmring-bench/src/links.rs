//! Runs over one [`Transport`] link, shared by the suites that measure links (the SPSC
//! transports and the MPMC queue's round trip): the child roles (producer, consumer,
//! ping, pong) and the parent's side of a throughput and a round-trip run.
//!
//! - throughput: the producer sends numbered messages with the ordinary per-message
//!   call (`Producer::send`, one `write` per frame on the streams) for `--duration`;
//!   the consumer receives each with `recv_into` (a buffered frame reader on the
//!   streams), checks its length and the sequence number in its first and last 8
//!   bytes, and times from its first message to the end of the stream. The producer's
//!   and the consumer's counts must agree;
//! - latency: an 8-byte message bounced back through two links (one each way),
//!   timed per round trip on the initiating side after a warm-up.

use crate::args::BenchArgs;
use crate::launch::{PeerJob, run_peers};
use crate::peer::{Fds, PeerReport, PeerSpec, RttStats, stamp, stamped};
use crate::report;
use crate::transports::{Rx, Transport, Tx};
use crate::{Result, err};
use std::time::{Duration, Instant};

/// Size of the ping-pong message.
pub(crate) const PING_SIZE: usize = 8;

/// Role: send numbered messages for a count or a duration (fds: `[tx]`).
pub(crate) const PRODUCER: &str = "producer";
/// Role: receive and check them until the end of the stream (fds: `[rx]`).
pub(crate) const CONSUMER: &str = "consumer";
/// Role: send, wait for the echo, time each round trip (fds: `[tx, rx]`).
pub(crate) const PING: &str = "ping";
/// Role: echo every message back (fds: `[rx, tx]`).
pub(crate) const PONG: &str = "pong";

/// Child side: serve one of the link roles above, if `spec` names one.
pub(crate) fn serve(spec: &PeerSpec, fds: &mut Fds) -> Result<Option<PeerReport>> {
    let report = match spec.role.as_str() {
        PRODUCER => {
            let mut tx = spec.transport()?.open_tx(fds.next()?)?;
            crate::peer::barrier()?;
            let messages = produce(&mut tx, spec)?;
            drop(tx); // the consumer sees the end of the stream
            PeerReport::Sent { messages }
        }
        CONSUMER => {
            let mut rx = spec.transport()?.open_rx(fds.next()?)?;
            crate::peer::barrier()?;
            let (messages, elapsed_ns) = consume(&mut rx, spec.size)?;
            PeerReport::Received { messages, elapsed_ns }
        }
        PING => {
            let mut tx = spec.transport()?.open_tx(fds.next()?)?;
            let mut rx = spec.transport()?.open_rx(fds.next()?)?;
            crate::peer::barrier()?;
            PeerReport::Rtt(ping(&mut tx, &mut rx, spec)?)
        }
        PONG => {
            let mut rx = spec.transport()?.open_rx(fds.next()?)?;
            let mut tx = spec.transport()?.open_tx(fds.next()?)?;
            crate::peer::barrier()?;
            let messages = pong(&mut rx, &mut tx)?;
            PeerReport::Echoed { messages }
        }
        _ => return Ok(None),
    };
    Ok(Some(report))
}

/// The job of one side of a round-trip run of `suite` (ping or pong, or a reference's).
pub(crate) fn latency_spec(suite: &str, role: &str, t: Option<Transport>, a: &BenchArgs) -> PeerSpec {
    let mut s = PeerSpec::new(suite, role, t, PING_SIZE);
    s.rounds = a.rounds;
    s.warmup = a.warmup;
    s.duration_ns = a.max_latency_time.as_nanos() as u64;
    s
}

/// Parent side of a round-trip run over `t`, its children served by `suite`.
pub(crate) fn latency(suite: &str, t: Transport, a: &BenchArgs) -> Result<RttStats> {
    let cap = a.capacity_for(PING_SIZE);
    let (there, back) = (t.link(cap)?, t.link(cap)?);
    let mut ping = latency_spec(suite, PING, Some(t), a);
    ping.cpu = a.cpu(0);
    let mut pong = latency_spec(suite, PONG, Some(t), a);
    pong.cpu = a.cpu(1);
    let jobs = vec![
        PeerJob {
            spec: ping,
            fds: vec![there.tx, back.rx],
        },
        PeerJob {
            spec: pong,
            fds: vec![there.rx, back.tx],
        },
    ];
    let reports: Vec<PeerReport> = run_peers(jobs, a.timeout)?;
    let (PeerReport::Rtt(s), PeerReport::Echoed { messages }) = (&reports[0], &reports[1]) else {
        return Err(err("unexpected reports from ping/pong"));
    };
    if *messages < s.rounds {
        return Err(err(format!(
            "pong echoed {messages} messages for {} round trips",
            s.rounds
        )));
    }
    Ok(*s)
}

/// Parent side of a throughput run of `size`-byte messages over `t`, its children
/// served by `suite`: messages per second, and the messages sent.
pub(crate) fn throughput(suite: &str, t: Transport, size: usize, a: &BenchArgs) -> Result<(f64, u64)> {
    let link = t.link(a.capacity_for(size))?;
    let mut tx = PeerSpec::new(suite, PRODUCER, Some(t), size);
    tx.count = a.count;
    tx.duration_ns = a.duration.as_nanos() as u64;
    tx.cpu = a.cpu(0);
    let mut rx = PeerSpec::new(suite, CONSUMER, Some(t), size);
    rx.cpu = a.cpu(1);
    let jobs = vec![
        PeerJob {
            spec: tx,
            fds: vec![link.tx],
        },
        PeerJob {
            spec: rx,
            fds: vec![link.rx],
        },
    ];
    let reports: Vec<PeerReport> = run_peers(jobs, a.timeout)?;
    let (PeerReport::Sent { messages: sent }, PeerReport::Received { messages, elapsed_ns }) =
        (&reports[0], &reports[1])
    else {
        return Err(err("unexpected reports from producer/consumer"));
    };
    if sent != messages {
        return Err(err(format!(
            "producer sent {sent} messages, consumer received {messages}"
        )));
    }
    if *messages < 2 || *elapsed_ns == 0 {
        return Err(err(format!(
            "too few messages to time ({messages}); raise --duration or --count"
        )));
    }
    // The first message starts the clock: the other n - 1 are timed.
    let per_s = (*messages - 1) as f64 / (*elapsed_ns as f64 / 1e9);
    Ok((per_s, *messages))
}

/// A progress line of a round-trip run.
pub(crate) fn rtt_summary(s: &RttStats) -> String {
    format!(
        "p50 {}  p99 {}  p99.9 {}  ({} round trips)",
        report::ns(s.p50_ns),
        report::ns(s.p99_ns),
        report::ns(s.p999_ns),
        s.rounds
    )
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
pub(crate) fn ping(tx: &mut impl Tx, rx: &mut impl Rx, spec: &PeerSpec) -> Result<RttStats> {
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
pub(crate) fn pong(rx: &mut impl Rx, tx: &mut impl Tx) -> Result<u64> {
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
