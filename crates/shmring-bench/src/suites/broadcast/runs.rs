//! The runs of the broadcast rows: the child roles and the parent's side.
//!
//! - A throughput run: the parent makes the ring (or the N SPSC rings, or the N socket
//!   pairs) in anonymous memory, hands the publisher's descriptor(s) to one child and
//!   one subscriber descriptor to each of N children; every child attaches before it
//!   says `ready`, so that each subscriber (starting at the newest message) is there
//!   before the first message. The publisher sends numbered messages (the number in the
//!   first and last 8 bytes) with the ordinary per-message call (`Publisher::send`,
//!   `Producer::send`, one `write` per frame) for `--duration` or `--count`, timing its
//!   own sends; a broadcast publisher then sends a stop message (a ring has no end of
//!   stream a subscriber sees at once when others may still read), the fan-outs close
//!   their links. Each subscriber checks every message's length and numbers (lossless
//!   and fan-out: exactly the next one; overwrite: never backwards, and its reported
//!   `missed` plus its deliveries add up to what was published) and times from its
//!   first message to the stop (or the end of its stream).
//! - A round trip: two broadcast rings, one each way; the ping and pong roles of
//!   [`crate::links`] over them.

use super::Stream;
use crate::args::BenchArgs;
use crate::launch::{PeerJob, run_peers};
use crate::links;
use crate::peer::{Fds, PeerReport, PeerSpec, RttStats, barrier, stamp, stamped};
use crate::report::rate;
use crate::transports::{AnyRx, AnyTx, Mode, Rx, Transport, Tx};
use crate::{Result, err};
use serde::{Deserialize, Serialize};
use shmring::broadcast::{self, Options, Params, Policy, Publisher, RecvError, Subscriber};
use shmring::shm::SegmentOptions;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// What a throughput row runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// A broadcast ring, lossless policy.
    Lossless,
    /// A broadcast ring, overwrite policy.
    Overwrite,
    /// The publisher sends each message into one SPSC ring per subscriber.
    FanoutSpsc,
    /// The publisher writes each message into one Unix socket per subscriber.
    UnixFanout,
}

/// Role: publish (fds: `[publisher]` of a broadcast ring, or `[tx; N]` of the
/// fan-out's links). Parameter: the [`Stream`].
const PUBLISHER: &str = "bcast-publisher";
/// Role: receive and check until the stop or the end of the stream (fds:
/// `[subscriber]` or `[rx]`). Parameter: the [`Stream`].
const SUBSCRIBER: &str = "bcast-subscriber";
/// Role: the initiator of a round trip (fds: `[publisher there, subscriber back]`).
const RTT_PING: &str = "bcast-ping";
/// Role: the echo of a round trip (fds: `[subscriber there, publisher back]`).
const RTT_PONG: &str = "bcast-pong";

/// The stop message's number (in its first and last 8 bytes).
const STOP: u64 = u64::MAX;

/// A child's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "kebab-case")]
pub(crate) enum Report {
    /// Publisher: messages sent (the stop not counted) and the time they took.
    Published {
        /// Messages sent.
        messages: u64,
        /// From the first send to the return of the last.
        elapsed_ns: u64,
    },
    /// Subscriber: messages delivered (all checked), messages it was told it missed,
    /// and the time from the first to the stop.
    Delivered {
        /// Messages delivered.
        messages: u64,
        /// The sum of the `Lagged { missed }` it got.
        missed: u64,
        /// From its first message to the stop or the end of its stream.
        elapsed_ns: u64,
    },
}

/// What a throughput row measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamResult {
    /// The row's `msgs_per_s`: deliveries to all subscribers per second (overwrite: the
    /// publisher's sends per second).
    pub(crate) per_s: f64,
    /// Each subscriber's deliveries per second.
    pub(crate) per_sub: Vec<f64>,
    /// Messages published.
    pub(crate) published: u64,
    /// Messages the subscribers missed, all together (overwrite).
    pub(crate) missed: u64,
}

impl StreamResult {
    /// The progress line.
    pub(crate) fn summary(&self, s: &Stream) -> String {
        let mut line = format!(
            "{} msgs/s, {:.1} MB/s ({} msgs",
            rate(self.per_s),
            self.per_s * s.size as f64 / 1e6,
            self.published
        );
        if !self.per_sub.is_empty() {
            let subs: Vec<String> = self.per_sub.iter().map(|&v| rate(v)).collect();
            line.push_str(&format!("; per sub {}", subs.join(" ")));
        }
        line.push(')');
        let note = self.note();
        if !note.is_empty() {
            line.push_str(&format!(" {note}"));
        }
        line
    }

    /// What the table says besides the rates: the overwrite rows' losses.
    pub(crate) fn note(&self) -> String {
        if self.missed == 0 || self.per_sub.is_empty() {
            return String::new();
        }
        let all = self.published * self.per_sub.len() as u64;
        format!(
            "subscribers missed {:.1}% of {} deliveries",
            100.0 * self.missed as f64 / all.max(1) as f64,
            all
        )
    }
}

/// The options of every broadcast end of the benchmark: the mode's wait strategy, and
/// a prefaulted mapping (as the SPSC rings').
fn options(mode: Mode) -> Options {
    Options::new()
        .wait(mode.strategy())
        .segment(SegmentOptions::new().prefault(true))
}

/// A new anonymous broadcast ring for messages of `size` bytes: the publisher's
/// descriptor and `subs` subscribers' (each subscriber attaches in its process).
fn ring(policy: Policy, mode: Mode, size: usize, subs: usize, a: &BenchArgs) -> Result<(OwnedFd, Vec<OwnedFd>)> {
    let params = Params {
        capacity: a.capacity_for(size),
        subscribers: broadcast::DEFAULT_SUBSCRIBERS,
        policy,
    };
    let (publ, sub) = broadcast::channel_with(params, &options(mode))?;
    let no_fd = || err("a broadcast ring end has no descriptor");
    let mut fds = Vec::with_capacity(subs);
    for _ in 1..subs {
        fds.push(sub.try_clone()?.into_fd().ok_or_else(no_fd)?);
    }
    if subs > 0 {
        fds.push(sub.into_fd().ok_or_else(no_fd)?);
    } else {
        drop(sub);
    }
    Ok((publ.into_fd().ok_or_else(no_fd)?, fds))
}

/// Parent side of a throughput row.
pub(crate) fn stream(suite: &str, s: Stream, a: &BenchArgs) -> Result<StreamResult> {
    let (pub_fds, sub_fds) = match s.kind {
        Kind::Lossless | Kind::Overwrite => {
            let policy = if s.kind == Kind::Lossless {
                Policy::Lossless
            } else {
                Policy::Overwrite
            };
            let (p, subs) = ring(policy, s.mode, s.size, s.subs, a)?;
            (vec![p], subs)
        }
        Kind::FanoutSpsc | Kind::UnixFanout => {
            let t = fanout_transport(s);
            let (mut txs, mut rxs) = (Vec::new(), Vec::new());
            for _ in 0..s.subs {
                let link = t.link(a.capacity_for(s.size))?;
                txs.push(link.tx);
                rxs.push(link.rx);
            }
            (txs, rxs)
        }
    };
    let spec = |role: &str, cpu: usize| -> Result<PeerSpec> {
        let mut spec = PeerSpec::new(suite, role, None, s.size).with_param(&s)?;
        spec.count = a.count;
        spec.duration_ns = a.duration.as_nanos() as u64;
        spec.cpu = a.cpu(cpu);
        Ok(spec)
    };
    let mut jobs = vec![PeerJob {
        spec: spec(PUBLISHER, 0)?,
        fds: pub_fds,
    }];
    for fd in sub_fds {
        jobs.push(PeerJob {
            spec: spec(SUBSCRIBER, 1)?,
            fds: vec![fd],
        });
    }
    let reports: Vec<Report> = run_peers(jobs, a.timeout)?;
    tally(s, &reports)
}

/// The row from the children's reports (the publisher's first), after checking that
/// every subscriber accounts for every message.
fn tally(s: Stream, reports: &[Report]) -> Result<StreamResult> {
    let Some(Report::Published {
        messages: published,
        elapsed_ns,
    }) = reports.first().cloned()
    else {
        return Err(err("the publisher sent no report"));
    };
    if published < 2 || elapsed_ns == 0 {
        return Err(err(format!(
            "too few messages to time ({published}); raise --duration or --count"
        )));
    }
    let mut per_sub = Vec::with_capacity(reports.len() - 1);
    let mut missed_all = 0;
    for r in &reports[1..] {
        let Report::Delivered {
            messages,
            missed,
            elapsed_ns,
        } = *r
        else {
            return Err(err("a subscriber sent no delivery report"));
        };
        let lossless = s.kind != Kind::Overwrite;
        if (lossless && (messages != published || missed != 0)) || messages + missed != published {
            return Err(err(format!(
                "{published} messages published, a subscriber got {messages} and was told it missed {missed}"
            )));
        }
        missed_all += missed;
        per_sub.push(if messages >= 2 && elapsed_ns > 0 {
            // The first message starts the clock: the other n - 1 are timed.
            (messages - 1) as f64 / (elapsed_ns as f64 / 1e9)
        } else {
            0.0
        });
    }
    let per_s = if s.kind == Kind::Overwrite {
        published as f64 / (elapsed_ns as f64 / 1e9)
    } else {
        per_sub.iter().sum()
    };
    Ok(StreamResult {
        per_s,
        per_sub,
        published,
        missed: missed_all,
    })
}

/// The link of a fan-out row.
fn fanout_transport(s: Stream) -> Transport {
    match s.kind {
        Kind::UnixFanout => Transport::UnixSocket,
        _ => Transport::Shmring(s.mode),
    }
}

/// Parent side of a round trip through two broadcast rings in `mode`.
pub(crate) fn rtt(suite: &str, mode: Mode, a: &BenchArgs) -> Result<RttStats> {
    let (there_pub, mut there_sub) = ring(Policy::Lossless, mode, links::PING_SIZE, 1, a)?;
    let (back_pub, mut back_sub) = ring(Policy::Lossless, mode, links::PING_SIZE, 1, a)?;
    let pop = |v: &mut Vec<OwnedFd>| v.pop().ok_or_else(|| err("no subscriber descriptor"));
    let mut ping = links::latency_spec(suite, RTT_PING, None, a).with_param(&mode)?;
    ping.cpu = a.cpu(0);
    let mut pong = links::latency_spec(suite, RTT_PONG, None, a).with_param(&mode)?;
    pong.cpu = a.cpu(1);
    let jobs = vec![
        PeerJob {
            spec: ping,
            fds: vec![there_pub, pop(&mut back_sub)?],
        },
        PeerJob {
            spec: pong,
            fds: vec![pop(&mut there_sub)?, back_pub],
        },
    ];
    let reports: Vec<PeerReport> = run_peers(jobs, a.timeout)?;
    let (PeerReport::Rtt(s), PeerReport::Echoed { messages }) = (&reports[0], &reports[1]) else {
        return Err(err("unexpected reports from the broadcast ping/pong"));
    };
    if *messages < s.rounds {
        return Err(err(format!(
            "pong echoed {messages} messages for {} round trips",
            s.rounds
        )));
    }
    Ok(*s)
}

/// A broadcast publisher as a link's sending side.
struct BcastTx(Publisher);

impl Tx for BcastTx {
    #[inline]
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.0.send(msg).map_err(|e| err(format!("broadcast send: {e}")))
    }
}

/// A lossless broadcast subscriber as a link's receiving side: the publisher's close
/// is the end of the stream.
struct BcastRx(Subscriber);

impl Rx for BcastRx {
    #[inline]
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        match self.0.recv_into(buf) {
            Ok(n) => Ok(Some(n)),
            Err(RecvError::Disconnected) => Ok(None),
            Err(e) => Err(err(format!("broadcast recv: {e}"))),
        }
    }
}

/// Child side: serve one of the roles above.
pub(crate) fn serve(spec: &PeerSpec, fds: &mut Fds) -> Result<serde_json::Value> {
    let report = match spec.role.as_str() {
        PUBLISHER => serde_json::to_value(publish(spec, fds)?)?,
        SUBSCRIBER => serde_json::to_value(subscribe(spec, fds.next()?)?)?,
        RTT_PING | RTT_PONG => {
            let mode: Mode = spec.param()?;
            let opts = options(mode);
            let (a, b) = (fds.next()?, fds.next()?);
            let r = if spec.role == RTT_PING {
                let mut tx = BcastTx(Publisher::from_fd_with(a, &opts)?);
                let mut rx = BcastRx(Subscriber::from_fd_with(b, &opts)?);
                barrier()?;
                PeerReport::Rtt(links::ping(&mut tx, &mut rx, spec)?)
            } else {
                let mut rx = BcastRx(Subscriber::from_fd_with(a, &opts)?);
                let mut tx = BcastTx(Publisher::from_fd_with(b, &opts)?);
                barrier()?;
                PeerReport::Echoed {
                    messages: links::pong(&mut rx, &mut tx)?,
                }
            };
            serde_json::to_value(r)?
        }
        r => return Err(err(format!("suite broadcast has no role {r}"))),
    };
    Ok(report)
}

/// Whether the publisher of `spec` is done after `seq` messages, started at `start`.
#[inline]
fn done(spec: &PeerSpec, seq: u64, start: Instant, check_mask: u64) -> bool {
    match spec.count {
        Some(c) => seq == c,
        None => seq & check_mask == 0 && start.elapsed() >= Duration::from_nanos(spec.duration_ns),
    }
}

/// Role [`PUBLISHER`].
fn publish(spec: &PeerSpec, fds: &mut Fds) -> Result<Report> {
    let s: Stream = spec.param()?;
    let mut msg = vec![0xA5u8; s.size];
    // Read the clock rarely for small messages (it costs about as much as a send).
    let check_mask = if s.size >= 4096 { 0 } else { 255 };
    let mut seq = 0u64;
    let elapsed = match s.kind {
        Kind::Lossless | Kind::Overwrite => {
            let mut tx = Publisher::from_fd_with(fds.next()?, &options(s.mode))?;
            barrier()?;
            let start = Instant::now();
            while !done(spec, seq, start, check_mask) {
                stamp(&mut msg, seq);
                tx.send(&msg).map_err(|e| err(format!("broadcast send: {e}")))?;
                seq += 1;
            }
            let elapsed = start.elapsed();
            stamp(&mut msg, STOP);
            tx.send(&msg).map_err(|e| err(format!("broadcast send (stop): {e}")))?;
            elapsed
        }
        Kind::FanoutSpsc | Kind::UnixFanout => {
            let t = fanout_transport(s);
            let mut txs: Vec<AnyTx> = Vec::with_capacity(s.subs);
            while let Some(fd) = fds.next_opt() {
                txs.push(t.open_tx(fd)?);
            }
            if txs.len() != s.subs {
                return Err(err(format!("{} links for {} subscribers", txs.len(), s.subs)));
            }
            barrier()?;
            let start = Instant::now();
            while !done(spec, seq, start, check_mask) {
                stamp(&mut msg, seq);
                for tx in &mut txs {
                    tx.send(&msg)?;
                }
                seq += 1;
            }
            start.elapsed()
            // Dropping the ends closes the links: each subscriber's end of stream.
        }
    };
    Ok(Report::Published {
        messages: seq,
        elapsed_ns: elapsed.as_nanos() as u64,
    })
}

/// Role [`SUBSCRIBER`].
fn subscribe(spec: &PeerSpec, fd: OwnedFd) -> Result<Report> {
    let s: Stream = spec.param()?;
    let size = s.size;
    let mut buf = Vec::with_capacity(size);
    let mut missed = 0u64;
    let mut c = Checker {
        size,
        n: 0,
        next: 0,
        first: None,
    };
    match s.kind {
        Kind::Lossless | Kind::Overwrite => {
            let mut rx = Subscriber::from_fd_with(fd, &options(s.mode))?;
            barrier()?;
            let lossless = s.kind == Kind::Lossless;
            loop {
                match rx.recv_into(&mut buf) {
                    Ok(_) if buf.len() >= 8 && stamped(&buf, STOP) => break,
                    Ok(_) => c.check(&buf, lossless)?,
                    Err(RecvError::Lagged { missed: m }) if !lossless => missed += m,
                    Err(RecvError::Disconnected) => return Err(err("the publisher left without its stop message")),
                    Err(e) => return Err(err(format!("broadcast recv after {} messages: {e}", c.n))),
                }
            }
        }
        Kind::FanoutSpsc | Kind::UnixFanout => {
            let mut rx: AnyRx = fanout_transport(s).open_rx(fd)?;
            barrier()?;
            while rx.recv(&mut buf)?.is_some() {
                c.check(&buf, true)?;
            }
        }
    }
    let elapsed = c.first.map_or(0, |f| f.elapsed().as_nanos() as u64);
    Ok(Report::Delivered {
        messages: c.n,
        missed,
        elapsed_ns: elapsed,
    })
}

/// A subscriber's checks of the messages it gets, and its count and clock.
struct Checker {
    size: usize,
    /// Messages delivered.
    n: u64,
    /// The lowest number the next message may carry.
    next: u64,
    /// When the first message arrived.
    first: Option<Instant>,
}

impl Checker {
    /// One message: its length, its two stamps, its number (`lossless`: exactly the
    /// next one; else not below it).
    #[inline]
    fn check(&mut self, buf: &[u8], lossless: bool) -> Result<()> {
        if buf.len() != self.size || self.size < 8 {
            return Err(err(format!(
                "message after {} has {} bytes, expected {}",
                self.n,
                buf.len(),
                self.size
            )));
        }
        let seq = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        if !stamped(buf, seq) {
            return Err(err(format!("message {seq} was delivered torn")));
        }
        if (lossless && seq != self.next) || seq < self.next {
            return Err(err(format!("message {seq} arrived where {} was due", self.next)));
        }
        if self.n == 0 {
            self.first = Some(Instant::now());
        }
        self.next = seq + 1;
        self.n += 1;
        Ok(())
    }
}
