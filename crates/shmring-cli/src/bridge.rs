//! `shmring create`, `shmring send`, `shmring recv` and `shmring stat`: make rings and
//! primitives from the shell, bridge stdin/stdout and rings, and watch their counters.
//!
//! `send` and `recv` carry messages in one of two framings: lines (the default: one
//! message per line, the newline not included) or `--binary` records (a 4-byte
//! little-endian length, then the bytes). In send/recv mode nothing but data goes to
//! stdout; progress and errors go to stderr.

use super::admin::Detail;
use super::{Result, err};
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
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  shmring create spsc feed --capacity 1M\n  \
shmring create mpmc jobs --slots 1024 --slot-size 256\n  shmring create semaphore slots --value 4\n  \
shmring create barrier start --parties 3")]
pub(crate) struct CreateArgs {
    /// What to create.
    kind: Kind,
    /// Its name in /dev/shm ([A-Za-z0-9._-], 1 to 200 bytes).
    name: String,
    /// Ring size in bytes (spsc; rounded up to a power of two; K/M suffixes are powers
    /// of 1024).
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    capacity: usize,
    /// Number of slots (mpmc; rounded up to a power of two).
    #[arg(long, default_value_t = 1024)]
    slots: usize,
    /// Largest message in bytes (mpmc; K/M suffixes as for --capacity).
    #[arg(long, default_value = "256", value_parser = parse_size)]
    slot_size: usize,
    /// Initial value (mutex, condition: the guarded u64; semaphores: the count).
    #[arg(long, default_value_t = 0)]
    value: u64,
    /// Number of parties (barrier).
    #[arg(long, default_value_t = 2)]
    parties: u32,
    /// File mode (octal) of the segment.
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    mode: u32,
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
    let u32_value = || u32::try_from(a.value).map_err(|_| err(format!("--value {} does not fit in u32", a.value)));
    let name = a.name.as_str();
    match a.kind {
        Kind::Spsc => spsc::create_detached(name, a.capacity, &spsc::RingOptions::new().segment(seg))?,
        Kind::Mpmc => mpmc::create_detached(name, a.slots, a.slot_size, &mpmc::QueueOptions::new().segment(seg))?,
        Kind::Mutex => drop(shmring::sync::Mutex::create_with(name, a.value, &seg)?),
        Kind::Rlock => shmring::sync::RLock::create(name)?.keep(),
        Kind::Semaphore => drop(shmring::sync::Semaphore::create_with(name, u32_value()?, &seg)?),
        Kind::BoundedSemaphore => drop(shmring::sync::BoundedSemaphore::create_with(name, u32_value()?, &seg)?),
        Kind::Event => drop(shmring::sync::Event::create_with(name, &seg)?),
        Kind::Condition => drop(shmring::sync::Condition::create_with(name, a.value, &seg)?),
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
    /// The ring (spsc) or queue (mpmc) to send to.
    name: String,
    /// Read length-prefixed records (u32 little-endian length, then the bytes) instead
    /// of lines.
    #[arg(long)]
    binary: bool,
    /// At end of input, close the queue (mpmc: receivers drain it, then exit). A ring
    /// (spsc) is always closed at end of input.
    #[arg(long)]
    close: bool,
}

enum Sender {
    Spsc(spsc::Producer),
    Mpmc(mpmc::Producer),
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
        }
    }
}

/// The structure named `name`, if it is one `send`/`recv` can use.
fn channel_kind(name: &str) -> Result<SegmentKind> {
    match inspect::probe(name) {
        Ok(Probe::Shmring(info)) => match info.segment_kind() {
            Some(k @ (SegmentKind::SpscRing | SegmentKind::MpmcQueue)) => Ok(k),
            Some(k) => Err(err(format!(
                "{name} is a {}, not a ring or queue; send and recv need one made by `shmring create spsc|mpmc`",
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
        SegmentKind::SpscRing => Sender::Spsc(spsc::Producer::open(name)?),
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
    /// The ring (spsc) or queue (mpmc) to receive from.
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
}

/// How a receive ended, besides a message.
enum End {
    /// The sender closed (spsc) or the queue was closed (mpmc), and all was drained.
    Closed,
    /// Nothing arrived within the idle timeout.
    Idle,
}

/// `shmring recv`: until the sender closes, `--count`, `--idle-timeout`, or stdout's
/// reader goes away (a quiet exit, as `head` expects).
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
    match kind {
        SegmentKind::SpscRing => spsc_rx = Some(spsc::Consumer::open(name)?),
        _ => mpmc_rx = Some(mpmc::Consumer::open(name)?),
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut msg = Vec::new();
    let mut n: u64 = 0;
    let mut lost: u64 = 0;
    let result = loop {
        if a.count.is_some_and(|c| n >= c) {
            break Ok(());
        }
        // Try without waiting first; flush what is buffered before any wait, so a
        // slow trickle of messages still reaches the reader promptly.
        let got = match (&mut spsc_rx, &mut mpmc_rx) {
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
                        Err(shmring::RecvError::Timeout) => Ok(Some(End::Idle)),
                        Err(shmring::RecvError::Disconnected) => Ok(Some(End::Closed)),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(shmring::RecvError::Disconnected) => Ok(Some(End::Closed)),
                Err(e) => Err(e.to_string()),
            },
            (_, Some(rx)) => {
                let r = match rx.try_pop() {
                    Err(mpmc::PopError::Empty) => {
                        if let Err(e) = out.flush() {
                            break Err(e);
                        }
                        match idle {
                            Some(t) => rx.pop_timeout(t),
                            None => rx.pop(),
                        }
                    }
                    r => r,
                };
                match r {
                    Ok(m) => {
                        msg = m;
                        Ok(None)
                    }
                    Err(mpmc::PopError::Lost) => {
                        lost += 1;
                        continue;
                    }
                    Err(mpmc::PopError::Timeout) => Ok(Some(End::Idle)),
                    Err(mpmc::PopError::Closed) => Ok(Some(End::Closed)),
                    Err(e) => Err(e.to_string()),
                }
            }
            _ => unreachable!("one receiver is set"),
        };
        match got {
            Ok(None) => {}
            Ok(Some(End::Closed | End::Idle)) => break Ok(()),
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
    match result {
        Ok(()) => Ok(()),
        // The reader of stdout is gone (`| head -1`): a normal way for a pipeline to end.
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(err(format!("writing to stdout: {e}"))),
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
}

/// Named counters of one segment at one instant.
fn counters(name: &str) -> Result<(String, Vec<(&'static str, u64)>)> {
    let v = super::admin::view(name).map_err(|e| err(format!("{name}: {e}")))?;
    if !v.shmring {
        return Err(err(format!("{name} is not a shmring segment")));
    }
    if let Some(e) = &v.error {
        return Err(err(format!("{name}: {e}")));
    }
    let mut head = format!("{name}: {} segment, {} bytes", v.kind, v.size);
    for p in &v.parties {
        head.push_str(&format!("\n  {} {} {}", p.role, p.pid, p.state));
    }
    let c = match &v.detail {
        Detail::Spsc(r) => {
            let s = r.stats;
            vec![
                ("capacity bytes", s.capacity),
                ("bytes queued", r.used),
                ("messages in", s.sent),
                ("messages out", s.received),
                ("bytes in", s.tail),
                ("bytes out", s.head),
                ("producer waits (full)", s.full_waits),
                ("consumer waits (empty)", s.empty_waits),
            ]
        }
        Detail::Mpmc(r) => {
            let s = r.stats;
            vec![
                ("slots", s.slots),
                ("slot size", s.slot_size),
                ("messages queued", r.len),
                ("messages in", s.pushed),
                ("messages out", s.popped),
                ("lost (reclaimed slots)", s.lost),
                ("producer waits (full)", s.full_waits),
                ("consumer waits (empty)", s.empty_waits),
                ("parties attached", u64::from(s.parties)),
            ]
        }
        Detail::None => Vec::new(),
    };
    Ok((head, c))
}

/// `shmring stat`.
pub(crate) fn stat(a: StatArgs) -> Result<()> {
    if !(a.interval.is_finite() && a.interval > 0.0) {
        return Err(err(format!(
            "--interval {} is not a positive number of seconds",
            a.interval
        )));
    }
    let (head, c) = counters(&a.name)?;
    print_counters(&head, &c, None);
    if !a.watch {
        return Ok(());
    }
    let mut prev = (Instant::now(), c);
    loop {
        std::thread::sleep(Duration::from_secs_f64(a.interval));
        let (head, c) = counters(&a.name)?;
        let now = Instant::now();
        let dt = now.duration_since(prev.0).as_secs_f64();
        // Move to the top-left and clear the screen: refreshed in place.
        print!("\x1b[H\x1b[2J");
        print_counters(&head, &c, Some((&prev.1, dt)));
        std::io::stdout().flush()?;
        prev = (now, c);
    }
}

fn print_counters(head: &str, c: &[(&'static str, u64)], prev: Option<(&[(&'static str, u64)], f64)>) {
    println!("{head}");
    for (i, (k, v)) in c.iter().enumerate() {
        match prev {
            Some((p, dt)) if dt > 0.0 && p.get(i).is_some_and(|(pk, pv)| pk == k && *pv <= *v) => {
                let rate = (v - p[i].1) as f64 / dt;
                println!("  {k:<24} {v:>16}  {rate:>14.0}/s");
            }
            _ => println!("  {k:<24} {v:>16}"),
        }
    }
}
