//! `shmring create`, `shmring send`, `shmring recv` and `shmring stat`: make rings and
//! primitives from the shell, bridge stdin/stdout and rings, and watch their counters.
//!
//! `send` and `recv` carry messages in one of two framings: lines (the default: one
//! message per line, the newline not included) or `--binary` records (a 4-byte
//! little-endian length, then the bytes). In send/recv mode nothing but data goes to
//! stdout; progress and errors go to stderr.

use super::admin::Detail;
use super::{Result, err};
use shmring::broadcast;
use shmring::ring::{mpmc, spsc};
use shmring::shm::inspect::{self, Probe};
use shmring::shm::{SegmentKind, SegmentOptions};
use shmring_bench::parse_size;
use std::io::{BufRead, BufWriter, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

/// What `shmring create` can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// Single-producer single-consumer byte ring (--capacity).
    Spsc,
    /// Multi-producer multi-consumer queue (--slots, --slot-size).
    Mpmc,
    /// Broadcast ring: one publisher, every subscriber gets every message (--capacity,
    /// --subscribers, --policy).
    Broadcast,
    /// Robust lock guarding a u64 (`Mutex<u64>`, --value).
    Mutex,
    /// Reentrant robust lock.
    Rlock,
    /// Counting semaphore (--value).
    Semaphore,
    /// Semaphore that refuses to go above its initial value (--value).
    BoundedSemaphore,
    /// Event flag.
    Event,
    /// Condition variable with a guarded u64 (`Condition<u64>`, --value).
    Condition,
    /// Barrier (--parties).
    Barrier,
}

/// Arguments of `shmring create`.
///
/// Its defaults are the library's where the library has one (a unit test checks them):
/// `--capacity` is a pipe's ring ([`shmring::connection::DEFAULT_CAPACITY`]),
/// `--slot-size` a queue's slot ([`shmring::queue::DEFAULT_SLOT_SIZE`]), `--mode` a
/// segment's ([`SegmentOptions::new`]). Where the library asks the caller, the CLI picks:
/// 1024 slots; a semaphore's `--value` is 1, as Python's `multiprocessing.Semaphore()`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  shmring create spsc feed --capacity 1M\n  \
shmring create mpmc jobs --slots 1024 --slot-size 256\n  \
shmring create broadcast ticks --capacity 1M --subscribers 16 --policy overwrite\n  shmring create semaphore slots --value 4\n  \
shmring create barrier start --parties 3")]
pub(crate) struct CreateArgs {
    /// What to create.
    kind: Kind,
    /// Its name in /dev/shm ([A-Za-z0-9._-], 1 to 200 bytes).
    name: String,
    /// Ring size in bytes (spsc, broadcast; rounded up to a power of two; K/M suffixes
    /// are powers of 1024; the largest message is about half of it). The default is the
    /// library's pipe ring.
    #[arg(long, default_value = "256K", value_parser = parse_size)]
    capacity: usize,
    /// Number of slots (mpmc; rounded up to a power of two).
    #[arg(long, default_value_t = 1024)]
    slots: usize,
    /// Largest message in bytes (mpmc; K/M suffixes as for --capacity). The default is
    /// the library's queue slot.
    #[arg(long, default_value = "512", value_parser = parse_size)]
    slot_size: usize,
    /// Initial value (mutex, condition: the guarded u64, default 0; semaphores: the
    /// count, default 1 as Python's).
    #[arg(long)]
    value: Option<u64>,
    /// Number of parties (barrier).
    #[arg(long, default_value_t = 2)]
    parties: u32,
    /// Most subscribers attached at once (broadcast). The default is the library's.
    #[arg(long, default_value_t = broadcast::DEFAULT_SUBSCRIBERS)]
    subscribers: usize,
    /// What the publisher does when the ring is full (broadcast): `lossless` waits for
    /// the slowest live subscriber, `overwrite` never waits (a lapped subscriber learns
    /// how many messages it missed).
    #[arg(long, default_value = "lossless", value_parser = parse_policy)]
    policy: broadcast::Policy,
    /// File mode (octal) of the segment.
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    mode: u32,
}

fn parse_policy(s: &str) -> std::result::Result<broadcast::Policy, String> {
    broadcast::Policy::from_name(s).ok_or_else(|| format!("{s:?} is not a policy: lossless or overwrite"))
}

fn parse_mode(s: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode such as 600"))
}

/// `shmring create`: the segment stays in /dev/shm after this process exits.
pub(crate) fn create(a: CreateArgs) -> Result<()> {
    let seg = SegmentOptions::new().mode(a.mode).keep(true);
    let value = a.value.unwrap_or(0);
    let permits = || {
        let v = a.value.unwrap_or(1);
        u32::try_from(v).map_err(|_| err(format!("--value {v} does not fit in u32")))
    };
    let name = a.name.as_str();
    match a.kind {
        Kind::Spsc => spsc::create_detached(name, a.capacity, &spsc::RingOptions::new().segment(seg))?,
        Kind::Mpmc => mpmc::create_detached(name, a.slots, a.slot_size, &mpmc::QueueOptions::new().segment(seg))?,
        Kind::Broadcast => broadcast::create_detached(
            name,
            broadcast::Params {
                capacity: a.capacity,
                subscribers: a.subscribers,
                policy: a.policy,
            },
            &broadcast::Options::new().segment(seg),
        )?,
        Kind::Mutex => drop(shmring::sync::Mutex::create_with(name, value, &seg)?),
        Kind::Rlock => drop(shmring::sync::RLock::create_with(name, &seg)?),
        Kind::Semaphore => drop(shmring::sync::Semaphore::create_with(name, permits()?, &seg)?),
        Kind::BoundedSemaphore => drop(shmring::sync::BoundedSemaphore::create_with(name, permits()?, &seg)?),
        Kind::Event => drop(shmring::sync::Event::create_with(name, &seg)?),
        Kind::Condition => drop(shmring::sync::Condition::create_with(name, value, &seg)?),
        Kind::Barrier => drop(shmring::sync::Barrier::create_with(name, a.parties, &seg)?),
    }
    eprintln!("created {name} in /dev/shm (remove it with `shmring rm {name}`)");
    Ok(())
}

/// Arguments of `shmring send`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  producer | shmring send feed\n  \
shmring send --binary jobs < records.bin\n  seq 100 | shmring send --close jobs")]
pub(crate) struct SendArgs {
    /// The ring (spsc, broadcast) or queue (mpmc) to send to.
    name: String,
    /// Read length-prefixed records (u32 little-endian length, then the bytes) instead
    /// of lines.
    #[arg(long)]
    binary: bool,
    /// At end of input, close the queue (mpmc: receivers drain it, then exit; without
    /// it, later `send` runs may add to the queue). A ring (spsc) carries one stream and
    /// is always closed at end of input: a second `send` to it is refused.
    #[arg(long)]
    close: bool,
}

enum Sender {
    Spsc(spsc::Producer),
    Mpmc(mpmc::Producer),
    /// The publisher of a broadcast ring: closed at end of input (subscribers drain,
    /// then end); a later `send` attaches as a new publisher and continues the stream.
    Broadcast(broadcast::Publisher),
}

impl Sender {
    fn send(&mut self, msg: &[u8], name: &str) -> Result<()> {
        let too_big = |max: usize| {
            err(format!(
                "a message of {} bytes does not fit {name} (at most {max} bytes); create it larger",
                msg.len()
            ))
        };
        match self {
            Sender::Spsc(tx) => tx.send(msg).map_err(|e| match e {
                shmring::SendError::MessageTooLarge { max, .. } => too_big(max),
                shmring::SendError::Disconnected => err(format!("the receiver of {name} is gone")),
                e => err(format!("{name}: {e}")),
            }),
            Sender::Mpmc(tx) => tx.push(msg).map_err(|e| match e {
                mpmc::PushError::MessageTooLarge { max, .. } => too_big(max),
                mpmc::PushError::Closed => err(format!("{name} was closed")),
                e => err(format!("{name}: {e}")),
            }),
            Sender::Broadcast(tx) => tx.send(msg).map_err(|e| match e {
                broadcast::SendError::MessageTooLarge { max, .. } => too_big(max),
                e => err(format!("{name}: {e}")),
            }),
        }
    }
}

/// The structure named `name`, if it is one `send`/`recv` can use.
fn channel_kind(name: &str) -> Result<SegmentKind> {
    match inspect::probe(name) {
        Ok(Probe::Shmring(info)) => match info.segment_kind() {
            Some(k @ (SegmentKind::SpscRing | SegmentKind::MpmcQueue | SegmentKind::Broadcast)) => Ok(k),
            Some(k) => Err(err(format!(
                "{name} is a {}, not a ring or queue; send and recv need one made by `shmring create spsc|mpmc|broadcast`",
                k.name()
            ))),
            None => Err(err(format!(
                "{name} is of a kind this build does not know ({})",
                info.kind
            ))),
        },
        Ok(_) => Err(err(format!("{name} is not a shmring segment"))),
        Err(shmring::Error::NotFound { .. }) => Err(err(format!(
            "no segment {name} in /dev/shm; create it first: shmring create spsc {name}"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// `shmring send`.
pub(crate) fn send(a: SendArgs) -> Result<()> {
    let name = a.name.as_str();
    let mut tx = match channel_kind(name)? {
        SegmentKind::SpscRing => {
            Sender::Spsc(spsc::Producer::open(name).map_err(|e| ring_end_error(name, e, End::Producer))?)
        }
        SegmentKind::Broadcast => Sender::Broadcast(broadcast::Publisher::open(name).map_err(|e| match e {
            shmring::Error::AlreadyAttached { .. } => err(format!(
                "another process is the publisher of {name} (a broadcast ring has one publisher; see `shmring stat {name}`)"
            )),
            e => e.into(),
        })?),
        _ => Sender::Mpmc(mpmc::Producer::open(name)?),
    };
    let stdin = std::io::stdin();
    let mut input = std::io::BufReader::with_capacity(1 << 16, stdin.lock());
    let mut buf = Vec::new();
    let mut n: u64 = 0;
    loop {
        buf.clear();
        if a.binary {
            let mut len = [0u8; 4];
            match read_full(&mut input, &mut len)? {
                0 => break,
                4 => {}
                got => return Err(err(format!("input ends inside a record's length ({got} of 4 bytes)"))),
            }
            let len = u32::from_le_bytes(len) as usize;
            buf.resize(len, 0);
            let got = read_full(&mut input, &mut buf)?;
            if got != len {
                return Err(err(format!("input ends inside a record ({got} of {len} bytes)")));
            }
        } else {
            if input.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
        }
        tx.send(&buf, name)?;
        n += 1;
    }
    if let (Sender::Mpmc(q), true) = (&tx, a.close) {
        q.close();
    }
    eprintln!("sent {n} messages to {name}");
    Ok(())
}

/// An end of an spsc ring, for [`ring_end_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Producer,
    Consumer,
}

/// The error of opening an end of the spsc ring `name`, with what to do about it.
///
/// An spsc ring carries one stream, from one producer to one consumer: each end is
/// attached once, and a closed (or dead) end stays so, because the close is how the
/// consumer learns that the stream ended (`recv` exits 0 on it) and how it tells a
/// clean end from a crash. So a second `send` (or `recv`) on a ring whose end was used
/// is refused, and the message names the commands that make a fresh ring, and the queue
/// that takes successive `send` and `recv` runs.
fn ring_end_error(name: &str, e: shmring::Error, end: End) -> crate::Error {
    let (role, cmd) = match end {
        End::Producer => ("producer", "send"),
        End::Consumer => ("consumer", "recv"),
    };
    match e {
        shmring::Error::EndClosed { .. } => {
            let report = spsc::inspect(name).ok();
            let what = report
                .as_ref()
                .map(|r| if end == End::Producer { r.producer } else { r.consumer })
                .map(|x| match x.state {
                    spsc::EndState::Closed => format!("was closed by an earlier `shmring {cmd}` (pid {})", x.pid),
                    _ => format!("belonged to pid {}, which died", x.pid),
                })
                .unwrap_or_else(|| "was used and closed".into());
            let cap = report.map_or(String::new(), |r| format!(" --capacity {}", r.stats.capacity));
            err(format!(
                "the {role} end of {name} {what}; an spsc ring carries one stream from one producer to one \
                 consumer, and a closed end cannot be reopened. Make a fresh ring: \
                 shmring rm {name} && shmring create spsc {name}{cap} \
                 (or, for successive send and recv runs, a queue: shmring create mpmc {name})"
            ))
        }
        shmring::Error::AlreadyAttached { .. } => err(format!(
            "another process is the {role} of {name} (an spsc ring has one {role}; see `shmring stat {name}`; \
             for several at once use a queue: shmring create mpmc NAME)"
        )),
        e => e.into(),
    }
}

/// Read until `buf` is full or input ends; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// Arguments of `shmring recv`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  shmring recv feed | consumer\n  \
shmring recv --count 10 jobs\n  shmring recv --binary --idle-timeout 5 jobs > records.bin")]
pub(crate) struct RecvArgs {
    /// The ring (spsc, broadcast) or queue (mpmc) to receive from.
    name: String,
    /// Write length-prefixed records (u32 little-endian length, then the bytes) instead
    /// of lines.
    #[arg(long)]
    binary: bool,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<u64>,
    /// Stop when no message came for this many seconds.
    #[arg(long)]
    idle_timeout: Option<f64>,
    /// Broadcast: start at the oldest message still in the ring (default: at the next
    /// message published).
    #[arg(long)]
    oldest: bool,
}

/// How a receive ended, besides a message.
enum Ended {
    /// The sender closed (spsc) or the queue was closed (mpmc), and all was drained.
    Closed,
    /// Nothing arrived within the idle timeout.
    Idle,
    /// The producer (pid) died without closing, and all it published was drained.
    Died(u32),
}

/// How often a `recv` waiting on an empty queue looks for dead producers.
const DEATH_CHECK: Duration = Duration::from_millis(100);

/// The producers of an mpmc queue that `recv` watches: a producer that was alive while
/// `recv` ran and died without detaching ends `recv` (non-zero) once the queue is
/// empty and no producer is left alive. Producers that were already dead when `recv`
/// started are only mentioned: a queue takes successive `send` runs, so a new one may
/// come.
struct ProducerWatch {
    /// Dead producer entries at the start (by pid).
    stale: Vec<u32>,
}

impl ProducerWatch {
    fn new(name: &str) -> Self {
        let stale: Vec<u32> = mpmc::inspect(name)
            .map(|r| {
                r.parties
                    .iter()
                    .filter(|p| p.role == "producer" && !p.alive)
                    .map(|p| p.pid)
                    .collect()
            })
            .unwrap_or_default();
        if !stale.is_empty() {
            let pids: Vec<String> = stale.iter().map(u32::to_string).collect();
            eprintln!(
                "note: producer pid {} of {name} died earlier without closing it; waiting for new messages",
                pids.join(",")
            );
        }
        ProducerWatch { stale }
    }

    /// A producer that died since `recv` started, if none is left alive.
    fn died(&self, name: &str) -> Option<u32> {
        let r = mpmc::inspect(name).ok()?;
        let producers = || r.parties.iter().filter(|p| p.role == "producer");
        if producers().any(|p| p.alive) {
            return None;
        }
        producers().find(|p| !self.stale.contains(&p.pid)).map(|p| p.pid)
    }
}

/// The end of an spsc ring's stream: `Closed` if its producer closed it, `Died` if the
/// producer's process is gone without closing.
fn spsc_end(name: &str) -> Result<Ended, String> {
    match spsc::inspect(name) {
        Ok(r) => match r.producer.state {
            spsc::EndState::Closed => Ok(Ended::Closed),
            _ => Ok(Ended::Died(r.producer.pid)),
        },
        Err(e) => Err(format!(
            "its producer is gone, and whether it closed the ring cannot be told: {e}"
        )),
    }
}

/// The end of a broadcast ring's stream (its subscriber got `Disconnected`): `Closed`
/// if its publisher closed it, `Died` if the publisher's process is gone without
/// closing.
fn broadcast_end(name: &str) -> Result<Ended, String> {
    match broadcast::inspect(name) {
        Ok(r) => match r.publisher.state {
            broadcast::PublisherState::Attached | broadcast::PublisherState::Handoff if !r.publisher.alive => {
                Ok(Ended::Died(r.publisher.pid))
            }
            _ => Ok(Ended::Closed),
        },
        Err(e) => Err(format!(
            "its publisher is gone, and whether it closed the ring cannot be told: {e}"
        )),
    }
}

/// Whether a live publisher is attached to the broadcast ring `name`.
fn publisher_alive(name: &str) -> bool {
    broadcast::inspect(name).is_ok_and(|r| r.publisher.alive)
}

/// `shmring recv`: until the sender closes, `--count`, `--idle-timeout`, or stdout's
/// reader goes away (a quiet exit, as `head` expects): status 0. A producer that died
/// without closing ends it with status 1 ("producer PID died after N messages"), after
/// everything it published was written out. A broadcast subscriber starts at the next
/// message (`--oldest`: the oldest retained); if no publisher is attached when it
/// starts, it waits for one (a later `send`) and ends when that one closes; messages
/// overwritten before it read them (overwrite policy) are counted on stderr.
pub(crate) fn recv(a: RecvArgs) -> Result<()> {
    let name = a.name.as_str();
    let idle = match a.idle_timeout {
        Some(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => return Err(err(format!("--idle-timeout {s} is not a number of seconds >= 0"))),
        None => None,
    };
    let kind = channel_kind(name)?;
    let mut spsc_rx = None;
    let mut mpmc_rx = None;
    let mut bcast_rx = None;
    // Broadcast: whether this subscriber saw a publisher attached or got a message;
    // until then a closed publisher is a stream still to come, not its end.
    let mut publisher_seen = false;
    let mut idle_since = Instant::now();
    let mut watch = None;
    match kind {
        SegmentKind::SpscRing => {
            spsc_rx = Some(spsc::Consumer::open(name).map_err(|e| ring_end_error(name, e, End::Consumer))?)
        }
        SegmentKind::Broadcast => {
            let start = if a.oldest {
                broadcast::Start::Oldest
            } else {
                broadcast::Start::Newest
            };
            let opts = broadcast::Options::new().start(start);
            bcast_rx = Some(broadcast::Subscriber::open_with(name, &opts)?);
            publisher_seen = publisher_alive(name);
        }
        _ => {
            watch = Some(ProducerWatch::new(name));
            mpmc_rx = Some(mpmc::Consumer::open(name)?);
        }
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut msg = Vec::new();
    let mut n: u64 = 0;
    let mut lost: u64 = 0;
    let mut missed: u64 = 0;
    let mut ended = Ended::Closed;
    let result = loop {
        if a.count.is_some_and(|c| n >= c) {
            break Ok(());
        }
        // Try without waiting first; flush what is buffered before any wait, so a
        // slow trickle of messages still reaches the reader promptly.
        let got = if let Some(rx) = &mut bcast_rx {
            let mut take = |m: &[u8]| {
                msg.clear();
                msg.extend_from_slice(m);
            };
            let r = match rx.try_read(&mut take) {
                Err(broadcast::RecvError::Empty) => {
                    if let Err(e) = out.flush() {
                        break Err(e);
                    }
                    match idle {
                        Some(t) => rx.read_timeout(t, &mut take),
                        None => rx.read(&mut take),
                    }
                }
                r => r,
            };
            match r {
                Ok(()) => {
                    publisher_seen = true;
                    idle_since = Instant::now();
                    Ok(None)
                }
                Err(broadcast::RecvError::Lagged { missed: m }) => {
                    missed += m;
                    continue;
                }
                Err(broadcast::RecvError::Timeout) => Ok(Some(Ended::Idle)),
                Err(broadcast::RecvError::Disconnected) if publisher_seen => broadcast_end(name).map(Some),
                Err(broadcast::RecvError::Disconnected) => {
                    // No publisher yet since this recv began: wait for one (a later
                    // `send`), looking every DEATH_CHECK, within the idle timeout.
                    let left = idle.map(|t| t.saturating_sub(idle_since.elapsed()));
                    if left.is_some_and(|l| l.is_zero()) {
                        Ok(Some(Ended::Idle))
                    } else {
                        std::thread::sleep(left.map_or(DEATH_CHECK, |l| l.min(DEATH_CHECK)));
                        publisher_seen = publisher_alive(name);
                        continue;
                    }
                }
                Err(e) => Err(e.to_string()),
            }
        } else {
            match (&mut spsc_rx, &mut mpmc_rx) {
                (Some(rx), _) => match rx.try_recv_into(&mut msg) {
                    Ok(_) => Ok(None),
                    Err(shmring::RecvError::Empty) => {
                        if let Err(e) = out.flush() {
                            break Err(e);
                        }
                        let r = match idle {
                            Some(t) => rx.recv_timeout_into(&mut msg, t),
                            None => rx.recv_into(&mut msg),
                        };
                        match r {
                            Ok(_) => Ok(None),
                            Err(shmring::RecvError::Timeout) => Ok(Some(Ended::Idle)),
                            Err(shmring::RecvError::Disconnected) => spsc_end(name).map(Some),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(shmring::RecvError::Disconnected) => spsc_end(name).map(Some),
                    Err(e) => Err(e.to_string()),
                },
                (_, Some(rx)) => {
                    let r = match rx.try_pop() {
                        Err(mpmc::PopError::Empty) => {
                            if let Err(e) = out.flush() {
                                break Err(e);
                            }
                            wait_pop(rx, idle, name, watch.as_ref().expect("set with the queue"))
                        }
                        r => r.map_err(Waited::Pop),
                    };
                    match r {
                        Ok(m) => {
                            msg = m;
                            Ok(None)
                        }
                        Err(Waited::Pop(mpmc::PopError::Lost)) => {
                            lost += 1;
                            continue;
                        }
                        Err(Waited::Pop(mpmc::PopError::Timeout)) => Ok(Some(Ended::Idle)),
                        Err(Waited::Pop(mpmc::PopError::Closed)) => Ok(Some(Ended::Closed)),
                        Err(Waited::Died(pid)) => Ok(Some(Ended::Died(pid))),
                        Err(Waited::Pop(e)) => Err(e.to_string()),
                    }
                }
                _ => unreachable!("one receiver is set"),
            }
        };
        match got {
            Ok(None) => {}
            Ok(Some(e)) => {
                ended = e;
                break Ok(());
            }
            Err(e) => {
                let _ = out.flush();
                return Err(err(format!("{name}: {e}")));
            }
        }
        let w = if a.binary {
            out.write_all(&(msg.len() as u32).to_le_bytes())
                .and_then(|()| out.write_all(&msg))
        } else {
            out.write_all(&msg).and_then(|()| out.write_all(b"\n"))
        };
        if let Err(e) = w {
            break Err(e);
        }
        n += 1;
    };
    let result = result.and_then(|()| out.flush());
    if lost > 0 {
        eprintln!("{lost} message(s) of {name} were lost by senders that died while writing them");
    }
    if missed > 0 {
        eprintln!("{missed} message(s) of {name} were overwritten before this subscriber read them");
    }
    match result {
        Ok(()) => {}
        // The reader of stdout is gone (`| head -1`): a normal way for a pipeline to end.
        Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
        Err(e) => return Err(err(format!("writing to stdout: {e}"))),
    }
    match ended {
        Ended::Closed | Ended::Idle => Ok(()),
        Ended::Died(pid) => Err(err(format!(
            "producer {pid} died after {n} messages: {name} was not closed (the messages it published were all written out)"
        ))),
    }
}

/// Why [`wait_pop`] returned without a message.
enum Waited {
    /// The queue's answer (`Timeout`: the idle timeout passed).
    Pop(mpmc::PopError),
    /// A producer died and none is left alive (see [`ProducerWatch`]).
    Died(u32),
}

/// Wait for a message of the queue for at most `idle` (or for ever), looking for dead
/// producers every [`DEATH_CHECK`].
fn wait_pop(
    rx: &mut mpmc::Consumer,
    idle: Option<Duration>,
    name: &str,
    watch: &ProducerWatch,
) -> std::result::Result<Vec<u8>, Waited> {
    let deadline = idle.map(|t| Instant::now() + t);
    loop {
        let slice = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Waited::Pop(mpmc::PopError::Timeout));
                }
                left.min(DEATH_CHECK)
            }
            None => DEATH_CHECK,
        };
        match rx.pop_timeout(slice) {
            Err(mpmc::PopError::Timeout) => {
                if let Some(pid) = watch.died(name) {
                    // A message pushed just before the death may have landed after the
                    // timeout: take it first.
                    return match rx.try_pop() {
                        Err(mpmc::PopError::Empty) => Err(Waited::Died(pid)),
                        r => r.map_err(Waited::Pop),
                    };
                }
            }
            r => return r.map_err(Waited::Pop),
        }
    }
}

/// Arguments of `shmring stat`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  shmring stat feed\n  shmring stat --watch jobs")]
pub(crate) struct StatArgs {
    /// The segment to look at.
    name: String,
    /// Refresh in place every --interval seconds, with rates per second (Ctrl+C ends).
    #[arg(long)]
    watch: bool,
    /// Seconds between refreshes with --watch.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Print one JSON object instead: the segment as `shmring ls --json` shows it
    /// (broadcast rings: each subscriber's lag and liveness under `subscribers`), and
    /// the figures under `counters`.
    #[arg(long, conflicts_with = "watch")]
    json: bool,
}

/// Whether a figure of `stat` accumulates (a rate per second means something) or is a
/// level (capacity, fill, parties: shown without a rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Figure {
    /// Only grows: messages, bytes, waits, losses.
    Counter,
    /// A level or a setting.
    Gauge,
}

/// One line of `stat`: its label, its value, and whether it is a counter.
type Line = (&'static str, u64, Figure);

/// Named figures of one segment at one instant, and the view they come from.
/// `Ok(None)`: the segment is gone.
fn counters(name: &str) -> Result<Option<(String, Vec<Line>, super::admin::SegmentView)>> {
    let v = match super::admin::view(name) {
        Ok(v) => v,
        Err(shmring::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(err(format!("{name}: {e}"))),
    };
    if !v.shmring {
        return Err(err(format!("{name} is not a shmring segment")));
    }
    if let Some(e) = &v.error {
        return Err(err(format!("{name}: {e}")));
    }
    let mut head = format!("{name}: {} segment, {} bytes", v.kind, v.size);
    if let Some(policy) = v.policy {
        head.push_str(&format!(", policy {policy}"));
    }
    match &v.subscribers {
        // A broadcast ring: the publisher, then each subscriber with its lag.
        Some(subs) => {
            for p in v.parties.iter().filter(|p| p.role != "subscriber") {
                head.push_str(&format!("\n  {} {} {}", p.role, p.pid, p.state));
            }
            for s in subs {
                head.push_str(&format!(
                    "\n  subscriber {} (slot {}) {}: lag {} bytes, received {}, missed {}",
                    s.pid, s.slot, s.state, s.lag_bytes, s.received, s.missed
                ));
            }
        }
        None => {
            for p in &v.parties {
                head.push_str(&format!("\n  {} {} {}", p.role, p.pid, p.state));
            }
        }
    }
    use Figure::{Counter, Gauge};
    let c = match &v.detail {
        Detail::Spsc(r) => {
            let s = r.stats;
            vec![
                ("capacity bytes", s.capacity, Gauge),
                ("bytes queued", r.used, Gauge),
                ("messages in", s.sent, Counter),
                ("messages out", s.received, Counter),
                ("bytes in", s.tail, Counter),
                ("bytes out", s.head, Counter),
                ("producer waits (full)", s.full_waits, Counter),
                ("consumer waits (empty)", s.empty_waits, Counter),
            ]
        }
        Detail::Mpmc(r) => {
            let s = r.stats;
            vec![
                ("slots", s.slots, Gauge),
                ("slot size", s.slot_size, Gauge),
                ("messages queued", r.len, Gauge),
                ("messages in", s.pushed, Counter),
                ("messages out", s.popped, Counter),
                ("lost (reclaimed slots)", s.lost, Counter),
                ("producer waits (full)", s.full_waits, Counter),
                ("consumer waits (empty)", s.empty_waits, Counter),
                ("parties attached", u64::from(s.parties), Gauge),
            ]
        }
        Detail::Broadcast(r) => vec![
            ("capacity bytes", r.capacity, Gauge),
            ("subscriber limit", r.max_subscribers as u64, Gauge),
            ("subscribers attached", r.subscribers.len() as u64, Gauge),
            ("slowest lag bytes", v.used.unwrap_or(0), Gauge),
            ("messages published", r.messages, Counter),
            ("bytes published", r.position, Counter),
            ("publisher waits (full)", r.full_waits, Counter),
        ],
        Detail::None => Vec::new(),
    };
    Ok(Some((head, c, v)))
}

/// `shmring stat`. With `--watch`, a terminal is redrawn in place; anything else (a
/// pipe, a file) gets each refresh appended, without control codes. When the segment
/// is removed, the watch says so and ends with status 0.
pub(crate) fn stat(a: StatArgs) -> Result<()> {
    if !(a.interval.is_finite() && a.interval > 0.0) {
        return Err(err(format!(
            "--interval {} is not a positive number of seconds",
            a.interval
        )));
    }
    let Some((head, c, view)) = counters(&a.name)? else {
        return Err(err(format!("no segment {} in /dev/shm (see `shmring ls`)", a.name)));
    };
    let mut out = std::io::stdout();
    if a.json {
        let mut o = serde_json::to_value(&view)?;
        let figures: serde_json::Map<String, serde_json::Value> =
            c.iter().map(|&(k, v, _)| (k.to_owned(), v.into())).collect();
        o["counters"] = figures.into();
        writeln!(out, "{}", serde_json::to_string_pretty(&o)?)?;
        return Ok(());
    }
    out.write_all(render_counters(&head, &c, None).as_bytes())?;
    if !a.watch {
        return Ok(());
    }
    let terminal = std::io::IsTerminal::is_terminal(&out);
    let mut prev = (Instant::now(), c);
    loop {
        out.flush()?;
        std::thread::sleep(Duration::from_secs_f64(a.interval));
        let Some((head, c, _)) = counters(&a.name)? else {
            eprintln!("{} was removed; stat --watch ends", a.name);
            return Ok(());
        };
        let now = Instant::now();
        let dt = now.duration_since(prev.0).as_secs_f64();
        let text = render_counters(&head, &c, Some((&prev.1, dt)));
        let w = if terminal {
            // Move to the top-left and clear the screen: refreshed in place.
            write!(out, "\x1b[H\x1b[2J{text}")
        } else {
            write!(out, "\n{text}")
        };
        match w {
            Ok(()) => {}
            // The reader went away (`| head`): a normal way to stop watching.
            Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        prev = (now, c);
    }
}

/// The figures as text; with the previous ones and the seconds between, counters get
/// their rate per second.
fn render_counters(head: &str, c: &[Line], prev: Option<(&[Line], f64)>) -> String {
    let mut s = format!("{head}\n");
    for (i, &(k, v, fig)) in c.iter().enumerate() {
        let rate = match prev {
            Some((p, dt)) if fig == Figure::Counter && dt > 0.0 => p
                .get(i)
                .filter(|(pk, pv, _)| *pk == k && *pv <= v)
                .map(|(_, pv, _)| (v - pv) as f64 / dt),
            _ => None,
        };
        match rate {
            Some(r) => s.push_str(&format!("  {k:<24} {v:>16}  {r:>14.0}/s\n")),
            None => s.push_str(&format!("  {k:<24} {v:>16}\n")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        a: CreateArgs,
    }

    #[test]
    fn create_defaults_are_the_librarys() {
        let t = T::parse_from(["create", "mpmc", "x"]);
        assert_eq!(t.a.slot_size, shmring::queue::DEFAULT_SLOT_SIZE);
        assert_eq!(t.a.capacity, shmring::connection::DEFAULT_CAPACITY);
        assert_eq!(t.a.mode, SegmentOptions::new().mode);
        assert_eq!(t.a.value, None, "per kind: 0, or 1 for semaphores");
    }

    #[test]
    fn rates_only_for_counters() {
        let before = [("slots", 16, Figure::Gauge), ("messages in", 10, Figure::Counter)];
        let after = [("slots", 16, Figure::Gauge), ("messages in", 30, Figure::Counter)];
        let text = render_counters("q", &after, Some((&before, 2.0)));
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines[1].contains("/s"), "{text}");
        assert!(lines[2].ends_with("10/s"), "{text}");
    }
}
