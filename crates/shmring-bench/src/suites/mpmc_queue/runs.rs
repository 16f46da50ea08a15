//! The runs of the MPMC rows: the shmring MPMC queue's producers and consumers (child
//! processes), and crossbeam's `ArrayQueue` between threads of this process as the
//! in-process reference, in the same topologies.
//!
//! Both carry the same 64-byte messages, each stamped with its producer's id and a
//! per-producer sequence number. Every producer sends exactly `n` messages; every
//! consumer checks each message's stamp and that, from each producer, it sees the
//! numbers increasing, and tallies per producer a count, a sum and a hash of the numbers
//! it got; the parent then checks that the tallies add up to exactly `0..n` from every
//! producer (nothing lost, nothing twice). Throughput is all messages over the time from
//! the first message any consumer received to the last consumer's end of the stream
//! (the first message starts the clock, as in the SPSC rows).
//!
//! The stop: each producer, when done, bumps a shared counter (a memfd page for the
//! processes, an atomic for the threads); the last one closes the queue (the threads:
//! sets a flag), and the consumers drain to `Closed` (the threads: to an empty queue
//! after the flag).

use crate::args::Topology;
use crate::peer::PeerSpec;
use crate::reference::SharedWord;
use crate::transports::{MPMC_SLOTS, Mode, mpmc_options};
use crate::{Result, err};
use crossbeam_queue::ArrayQueue;
use serde::{Deserialize, Serialize};
use shmring::ring::mpmc::{self, PopError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Message (and slot) size of the MPMC throughput rows.
pub(crate) const MSG_SIZE: usize = 64;
/// Wait strategy of the queue's ends in the throughput rows (the library's default).
pub(crate) const THROUGHPUT_MODE: Mode = Mode::Adaptive;

impl Topology {
    /// All of them, in order.
    pub(crate) const ALL: [Topology; 3] = [Topology::P1C1, Topology::P2C2, Topology::P4C4];

    /// `1p1c`, `2p2c`, `4p4c`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Topology::P1C1 => "1p1c",
            Topology::P2C2 => "2p2c",
            Topology::P4C4 => "4p4c",
        }
    }

    /// Number of producers (and of consumers).
    pub(crate) fn parties(self) -> usize {
        match self {
            Topology::P1C1 => 1,
            Topology::P2C2 => 2,
            Topology::P4C4 => 4,
        }
    }
}

/// What one consumer got from one producer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tally {
    /// Messages.
    pub(crate) count: u64,
    /// Wrapping sum of their sequence numbers.
    pub(crate) sum: u64,
    /// Wrapping sum of a hash of their sequence numbers.
    pub(crate) hash: u64,
}

impl Tally {
    fn add(&mut self, seq: u64) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(seq);
        self.hash = self.hash.wrapping_add(mix(seq));
    }

    fn merge(&mut self, o: &Tally) {
        self.count += o.count;
        self.sum = self.sum.wrapping_add(o.sum);
        self.hash = self.hash.wrapping_add(o.hash);
    }

    /// The tally of exactly the numbers `0..n`.
    fn of_range(n: u64) -> Tally {
        let mut t = Tally::default();
        for s in 0..n {
            t.add(s);
        }
        t
    }
}

/// A consumer's report: what it got, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Consumed {
    /// Per producer id.
    pub(crate) per_producer: Vec<Tally>,
    /// CLOCK_MONOTONIC (ns) when its first message arrived; `None` if it got none.
    pub(crate) first_ns: Option<u64>,
    /// CLOCK_MONOTONIC (ns) when it saw the end of the stream.
    pub(crate) end_ns: u64,
}

/// splitmix64's finalizer: a bijection, so that a duplicate and a loss with the same
/// sum still show in the hash.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The message `seq` of producer `id`: the number, the id, and a check word at the end.
#[inline]
fn stamp(msg: &mut [u8; MSG_SIZE], id: u64, seq: u64) {
    msg[..8].copy_from_slice(&seq.to_le_bytes());
    msg[8..16].copy_from_slice(&id.to_le_bytes());
    msg[MSG_SIZE - 8..].copy_from_slice(&(seq ^ mix(id)).to_le_bytes());
}

/// The (id, seq) of a message, if it is well formed.
#[inline]
fn unstamp(msg: &[u8], producers: usize) -> Option<(usize, u64)> {
    if msg.len() != MSG_SIZE {
        return None;
    }
    let word = |at: usize| u64::from_le_bytes(msg[at..at + 8].try_into().expect("8 bytes"));
    let (seq, id, check) = (word(0), word(8), word(MSG_SIZE - 8));
    (id < producers as u64 && check == seq ^ mix(id)).then_some((id as usize, seq))
}

/// CLOCK_MONOTONIC in nanoseconds: comparable between the processes of a run.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// One consumer's bookkeeping: tallies, and the order check per producer.
struct Books {
    tallies: Vec<Tally>,
    /// The next number expected at least, per producer.
    next: Vec<u64>,
    first_ns: Option<u64>,
}

impl Books {
    fn new(producers: usize) -> Self {
        Books {
            tallies: vec![Tally::default(); producers],
            next: vec![0; producers],
            first_ns: None,
        }
    }

    #[inline]
    fn take(&mut self, msg: &[u8]) -> Result<()> {
        if self.first_ns.is_none() {
            self.first_ns = Some(monotonic_ns());
        }
        let (id, seq) = unstamp(msg, self.tallies.len()).ok_or_else(|| {
            err(format!(
                "malformed message of {} bytes: {:02x?}",
                msg.len(),
                &msg[..16.min(msg.len())]
            ))
        })?;
        if seq < self.next[id] {
            return Err(err(format!(
                "producer {id}'s message {seq} arrived after a later one ({})",
                self.next[id] - 1
            )));
        }
        self.next[id] = seq + 1;
        self.tallies[id].add(seq);
        Ok(())
    }

    fn done(self) -> Consumed {
        Consumed {
            per_producer: self.tallies,
            first_ns: self.first_ns,
            end_ns: monotonic_ns(),
        }
    }
}

/// Child side, producer: push `spec.count` messages, then bump the shared done counter;
/// the last producer closes the queue. fds: `[queue, done page]`.
pub(crate) fn produce(q: std::os::fd::OwnedFd, done: std::os::fd::OwnedFd, spec: &PeerSpec) -> Result<Report> {
    let mode = spec.transport.and_then(|t| t.mode()).unwrap_or(THROUGHPUT_MODE);
    let mut tx = mpmc::Producer::from_fd_with(q, &mpmc_options(mode))?;
    let done = SharedWord::map(done)?;
    let n = spec.count.ok_or_else(|| err("an MPMC producer needs a count"))?;
    crate::peer::barrier()?;
    let mut msg = [0xA5u8; MSG_SIZE];
    for seq in 0..n {
        stamp(&mut msg, spec.id, seq);
        tx.push(&msg).map_err(|e| err(format!("push: {e}")))?;
    }
    // AcqRel: the last producer's close comes after every producer's pushes.
    if done.word().fetch_add(1, Ordering::AcqRel) + 1 == spec.producers {
        tx.close();
    }
    Ok(Report::Sent { messages: n })
}

/// Child side, consumer: pop and check until `Closed`. fds: `[queue]`.
pub(crate) fn consume(q: std::os::fd::OwnedFd, spec: &PeerSpec) -> Result<Report> {
    let mode = spec.transport.and_then(|t| t.mode()).unwrap_or(THROUGHPUT_MODE);
    let mut rx = mpmc::Consumer::from_fd_with(q, &mpmc_options(mode))?;
    crate::peer::barrier()?;
    let mut books = Books::new(spec.producers as usize);
    let mut buf = Vec::with_capacity(MSG_SIZE);
    loop {
        match rx.pop_into(&mut buf) {
            Ok(_) => books.take(&buf)?,
            Err(PopError::Closed) => break,
            Err(e) => return Err(err(format!("pop: {e}"))),
        }
    }
    Ok(Report::Consumed(books.done()))
}

/// The report of an MPMC peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "kebab-case")]
pub(crate) enum Report {
    /// Producer: messages pushed.
    Sent {
        /// Messages pushed.
        messages: u64,
    },
    /// Consumer: what it got from each producer, and when.
    Consumed(Consumed),
}

/// The result of one run, checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunResult {
    /// Messages delivered (all producers).
    pub(crate) messages: u64,
    /// Messages per second, all producers together.
    pub(crate) per_s: f64,
}

/// Check the consumers' reports of a run of `producers` x `n` messages, and time it.
pub(crate) fn check_run(producers: usize, n: u64, consumed: &[Consumed]) -> Result<RunResult> {
    let want = Tally::of_range(n);
    for id in 0..producers {
        let mut got = Tally::default();
        for c in consumed {
            let t = c
                .per_producer
                .get(id)
                .ok_or_else(|| err("a consumer reported too few producers"))?;
            got.merge(t);
        }
        if got != want {
            return Err(err(format!(
                "producer {id} sent {n} messages, the consumers got {} (or duplicates and losses)",
                got.count
            )));
        }
    }
    let messages = producers as u64 * n;
    let first = consumed.iter().filter_map(|c| c.first_ns).min();
    let end = consumed.iter().map(|c| c.end_ns).max().unwrap_or(0);
    let elapsed = first.map_or(0, |f| end.saturating_sub(f));
    if messages < 2 || elapsed == 0 {
        return Err(err(format!("too few messages to time ({messages}); raise --count")));
    }
    Ok(RunResult {
        messages,
        per_s: (messages - 1) as f64 / (elapsed as f64 / 1e9),
    })
}

/// Failed polls of the `ArrayQueue` before a thread starts yielding between polls: the
/// spin budget of the queue ends' adaptive wait (`WaitStrategy::default()`), so that the
/// two wait alike while a wait is short, and a thread whose peer is not running (more
/// threads than CPUs in 2p2c and 4p4c, or a busy machine) gives its CPU away instead of
/// spinning out its time slice.
const SPINS: u32 = 20_000;

/// One failed poll: a pause hint, or a yield once `SPINS` polls in a row failed.
#[inline]
fn backoff(polls: &mut u32) {
    if *polls < SPINS {
        *polls += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

fn pin_thread(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        // Best effort, as for the placement probe: the processes' runs fail on a bad
        // --pin, and this reference runs after them.
        let _ = rustix::thread::sched_setaffinity(None, &set);
    }
}

/// The in-process reference: `producers` threads pushing `n` messages each into a
/// crossbeam `ArrayQueue` of [`MPMC_SLOTS`] 64-byte arrays, `consumers` threads popping,
/// all busy-polling with a pause hint (yielding after [`SPINS`] polls in a row). `pin`:
/// producers on the first CPU, consumers on the second. Bounded by `timeout`.
pub(crate) fn arrayqueue(t: Topology, n: u64, pin: &[usize], timeout: Duration) -> Result<RunResult> {
    use std::sync::Barrier;
    use std::sync::atomic::AtomicBool;
    let (producers, consumers) = (t.parties(), t.parties());
    let q: ArrayQueue<[u8; MSG_SIZE]> = ArrayQueue::new(MPMC_SLOTS);
    let done = AtomicU64::new(0);
    let closed = AtomicBool::new(false);
    let give_up = AtomicBool::new(false);
    let start = Barrier::new(producers + consumers + 1);
    let deadline = Instant::now() + timeout;
    std::thread::scope(|s| {
        let mut prods = Vec::new();
        for id in 0..producers as u64 {
            let (q, done, closed, give_up, start) = (&q, &done, &closed, &give_up, &start);
            prods.push(s.spawn(move || {
                pin_thread(pin.first().copied());
                start.wait();
                let mut msg = [0xA5u8; MSG_SIZE];
                for seq in 0..n {
                    stamp(&mut msg, id, seq);
                    let mut m = msg;
                    let mut polls = 0;
                    while let Err(back) = q.push(m) {
                        m = back;
                        // Relaxed: only a stop request.
                        if give_up.load(Ordering::Relaxed) {
                            return;
                        }
                        backoff(&mut polls);
                    }
                }
                // AcqRel: the consumers' Acquire load of the flag below sees every push.
                if done.fetch_add(1, Ordering::AcqRel) + 1 == producers as u64 {
                    closed.store(true, Ordering::Release);
                }
            }));
        }
        let mut cons = Vec::new();
        for _ in 0..consumers {
            let (q, closed, give_up, start) = (&q, &closed, &give_up, &start);
            cons.push(s.spawn(move || -> Result<Consumed> {
                pin_thread(pin.get(1).copied());
                let mut books = Books::new(producers);
                start.wait();
                let mut polls = 0;
                loop {
                    match q.pop() {
                        Some(m) => {
                            polls = 0;
                            books.take(&m)?;
                        }
                        None => {
                            // Acquire: pairs with the Release store of the last producer;
                            // every push happened before it, so an empty queue now is
                            // drained for good.
                            if closed.load(Ordering::Acquire) && q.is_empty() {
                                break;
                            }
                            // Relaxed: only a stop request.
                            if give_up.load(Ordering::Relaxed) {
                                return Err(err("timed out"));
                            }
                            backoff(&mut polls);
                        }
                    }
                }
                Ok(books.done())
            }));
        }
        start.wait();
        // The watchdog: ask everyone to stop if the run overstays.
        while !cons.iter().all(|c| c.is_finished()) || !prods.iter().all(|p| p.is_finished()) {
            if Instant::now() >= deadline {
                // Relaxed: a stop request, polled.
                give_up.store(true, Ordering::Relaxed);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        for p in prods {
            p.join().map_err(|_| err("a producer thread panicked"))?;
        }
        let mut consumed = Vec::new();
        for c in cons {
            consumed.push(c.join().map_err(|_| err("a consumer thread panicked"))??);
        }
        if give_up.load(Ordering::Relaxed) {
            return Err(err(format!("did not finish within {:.1} s", timeout.as_secs_f64())));
        }
        check_run(producers, n, &consumed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_reject_damage() {
        let mut m = [0u8; MSG_SIZE];
        stamp(&mut m, 3, 12345);
        assert_eq!(unstamp(&m, 4), Some((3, 12345)));
        assert_eq!(unstamp(&m, 3), None, "id out of range");
        m[0] ^= 1;
        assert_eq!(unstamp(&m, 4), None);
        assert_eq!(unstamp(&m[..32], 4), None);
    }

    #[test]
    fn tallies_catch_a_duplicate_that_hides_a_loss() {
        let mut books = Books::new(1);
        for s in [0, 1, 2, 3] {
            let mut m = [0u8; MSG_SIZE];
            stamp(&mut m, 0, s);
            books.take(&m).unwrap();
        }
        let good = books.done();
        assert!(check_run(1, 4, std::slice::from_ref(&good)).is_ok());
        let books_of = |seqs: &[u64]| {
            let mut b = Books::new(1);
            for &s in seqs {
                let mut m = [0u8; MSG_SIZE];
                stamp(&mut m, 0, s);
                b.take(&m).unwrap();
            }
            b.done()
        };
        // Four messages whose numbers add up to 0 + 1 + 2 + 3, one twice and one missing.
        assert!(check_run(1, 4, &[books_of(&[0, 3]), books_of(&[1]), books_of(&[2])]).is_ok());
        assert!(check_run(1, 4, &[books_of(&[0, 3]), books_of(&[1, 2, 3])]).is_err());
        assert!(check_run(1, 4, &[books_of(&[0, 3]), books_of(&[1]), books_of(&[1])]).is_err());
        assert!(check_run(1, 4, &[books_of(&[1, 2]), books_of(&[1, 2])]).is_err());
        let mut c = Books::new(1);
        let mut m = [0u8; MSG_SIZE];
        stamp(&mut m, 0, 5);
        c.take(&m).unwrap();
        stamp(&mut m, 0, 4);
        assert!(c.take(&m).is_err(), "out of order within one producer");
    }

    #[test]
    fn arrayqueue_reference_delivers_everything() {
        for t in Topology::ALL {
            let r = arrayqueue(t, 10_000, &[], Duration::from_secs(60)).unwrap();
            assert_eq!(r.messages, 10_000 * t.parties() as u64);
            assert!(r.per_s > 0.0);
        }
    }

    #[test]
    fn queue_ends_in_threads_deliver_everything() {
        // The processes' loops, on threads: the same checks pass.
        let (tx, rx) = mpmc::channel(MPMC_SLOTS, MSG_SIZE).unwrap();
        let n = 20_000u64;
        let done = AtomicU64::new(0);
        let consumed: Vec<Consumed> = std::thread::scope(|s| {
            for id in 0..2u64 {
                let mut p = tx.try_clone().unwrap();
                let done = &done;
                s.spawn(move || {
                    let mut msg = [0u8; MSG_SIZE];
                    for seq in 0..n {
                        stamp(&mut msg, id, seq);
                        p.push(&msg).unwrap();
                    }
                    if done.fetch_add(1, Ordering::AcqRel) == 1 {
                        p.close();
                    }
                });
            }
            let cons: Vec<_> = (0..2)
                .map(|_| {
                    let mut c = rx.try_clone().unwrap();
                    s.spawn(move || {
                        let mut books = Books::new(2);
                        let mut buf = Vec::new();
                        while c.pop_into(&mut buf).is_ok() {
                            books.take(&buf).unwrap();
                        }
                        books.done()
                    })
                })
                .collect();
            cons.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let r = check_run(2, n, &consumed).unwrap();
        assert_eq!(r.messages, 2 * n);
    }
}
