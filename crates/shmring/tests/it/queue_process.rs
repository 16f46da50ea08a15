//! Cross-process tests of `shmring::queue` (Python's Queue, SimpleQueue and
//! JoinableQueue): the test binary re-executes itself as peers (see
//! `common::spawn_peer`), each in its own process, under watchdogs.

use crate::common;

use common::peer::*;
use common::*;
use serde::{Deserialize, Serialize};
use shmring::queue::{BadReference, GetError, JoinableQueue, PutError, Queue, SimpleQueue, TaskDoneError};
use shmring::ring::mpmc;
use shmring::shm::{Segment, SegmentKind, SegmentOptions};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Helpers

/// The peer roles, dispatched from whichever test re-executed the binary.
fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "echo" => echo_peer(),
        "bytes-echo" => bytes_echo_peer(),
        "producer" => producer_peer(),
        "consumer" => consumer_peer(),
        "worker" => worker_peer(),
        "ops" => ops_peer(),
        "close-waiter" => close_waiter_peer(),
        "hostile" => hostile_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

/// Side segments of the queue with `prefix` still in /dev/shm.
fn leftovers(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// A descriptor for a child: a dup that survives exec. Returns (keep alive until the
/// child is spawned, env value).
fn for_child(fd: &OwnedFd) -> (OwnedFd, String) {
    let d = inheritable(fd);
    let s = fd_string(&d);
    (d, s)
}

/// Deterministic bytes of message `seq`.
fn pattern(seq: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    fill_msg(seq, &mut v);
    v
}

fn err<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

// ---------------------------------------------------------------------------------------
// Every type across processes, handed by descriptor and opened by name

/// The text of request `i`: every fifth one larger than a slot (a side segment).
fn request(i: u32) -> (u32, String) {
    let len = if i % 5 == 0 { 3000 } else { 10 + i as usize % 40 };
    (
        i,
        (0..len)
            .map(|k| (b'a' + ((i as usize + k) % 26) as u8) as char)
            .collect(),
    )
}

fn reply((i, s): (u32, String)) -> (u32, String) {
    (i * 2, s.to_uppercase())
}

/// Get COUNT requests from REQ, put each reply into REP (task_done for a joinable REQ).
fn echo_peer() -> Result<(), String> {
    let _dog = Watchdog::new("echo peer", Duration::from_secs(60));
    let (kind, how, n) = (env_str("KIND"), env_str("HOW"), env_num("COUNT"));
    let by_fd = how == "fd";
    let mut rep: Queue<(u32, String)> = if by_fd {
        Queue::from_fd(fd_from_env("REP_FD"))
    } else {
        Queue::open(&env_str("REP"))
    }
    .map_err(err("attach replies"))?;
    let check = |got: &(u32, String)| {
        if *got != request(got.0) {
            return Err(format!("request {} garbled", got.0));
        }
        Ok(())
    };
    match kind.as_str() {
        "queue" => {
            let mut q: Queue<(u32, String)> = if by_fd {
                Queue::from_fd(fd_from_env("REQ_FD"))
            } else {
                Queue::open(&env_str("REQ"))
            }
            .map_err(err("attach"))?;
            for _ in 0..n {
                let r = q.get().map_err(err("get"))?;
                check(&r)?;
                rep.put(&reply(r)).map_err(err("put"))?;
            }
        }
        "simple" => {
            let mut q: SimpleQueue<(u32, String)> = if by_fd {
                SimpleQueue::from_fd(fd_from_env("REQ_FD"))
            } else {
                SimpleQueue::open(&env_str("REQ"))
            }
            .map_err(err("attach"))?;
            for _ in 0..n {
                let r = q.get().map_err(err("get"))?;
                check(&r)?;
                rep.put(&reply(r)).map_err(err("put"))?;
            }
        }
        "joinable" => {
            let mut q: JoinableQueue<(u32, String)> = if by_fd {
                JoinableQueue::from_fds(fd_from_env("REQ_FD"), fd_from_env("TASKS_FD"))
            } else {
                JoinableQueue::open(&env_str("REQ"))
            }
            .map_err(err("attach"))?;
            for _ in 0..n {
                let r = q.get().map_err(err("get"))?;
                check(&r)?;
                rep.put(&reply(r)).map_err(err("put"))?;
                q.task_done().map_err(err("task_done"))?;
            }
        }
        other => return Err(format!("unknown kind {other}")),
    }
    Ok(())
}

/// A request queue of `kind`, created anonymously or by name: returns a putter, and the
/// environment that lets a child attach.
enum Requests {
    Queue(Queue<(u32, String)>),
    Simple(SimpleQueue<(u32, String)>),
    Joinable(JoinableQueue<(u32, String)>),
}

impl Requests {
    fn put(&mut self, m: &(u32, String)) {
        match self {
            Requests::Queue(q) => q.put(m).unwrap(),
            Requests::Simple(q) => q.put(m).unwrap(),
            Requests::Joinable(q) => q.put(m).unwrap(),
        }
    }
}

fn one_type_across_processes(kind: &str, by_fd: bool) {
    const TEST: &str = "every_type_across_processes_by_fd_and_by_name";
    const N: u32 = 40;
    let how = if by_fd { "fd" } else { "name" };
    let (req_name, rep_name) = (unique_name("req"), unique_name("rep"));
    let mut rep: Queue<(u32, String)> = if by_fd {
        Queue::new(0).unwrap()
    } else {
        Queue::create(&rep_name, 0).unwrap()
    };
    let mut req = match (kind, by_fd) {
        ("queue", true) => Requests::Queue(Queue::new(8).unwrap()),
        ("queue", false) => Requests::Queue(Queue::create(&req_name, 8).unwrap()),
        ("simple", true) => Requests::Simple(SimpleQueue::new().unwrap()),
        ("simple", false) => Requests::Simple(SimpleQueue::create(&req_name).unwrap()),
        ("joinable", true) => Requests::Joinable(JoinableQueue::new(8).unwrap()),
        ("joinable", false) => Requests::Joinable(JoinableQueue::create(&req_name, 8).unwrap()),
        _ => unreachable!(),
    };
    let mut env = vec![
        ("KIND", kind.to_string()),
        ("HOW", how.to_string()),
        ("COUNT", N.to_string()),
        ("REQ", req_name.clone()),
        ("REP", rep_name.clone()),
    ];
    let mut keep = Vec::new();
    if by_fd {
        let mut add = |var: &'static str, fd: OwnedFd| {
            let (d, s) = for_child(&fd);
            keep.push(d);
            keep.push(fd);
            env.push((var, s));
        };
        add("REP_FD", rep.try_clone().unwrap().into_fd());
        match &req {
            Requests::Queue(q) => add("REQ_FD", q.try_clone().unwrap().into_fd()),
            Requests::Simple(q) => add("REQ_FD", q.try_clone().unwrap().into_fd()),
            Requests::Joinable(q) => {
                let (qfd, tfd) = q.try_clone().unwrap().into_fds().unwrap();
                add("REQ_FD", qfd);
                add("TASKS_FD", tfd);
            }
        }
    }
    let child = Peer::spawn(TEST, "echo", &env);
    // The child holds the open file descriptions now; ours go.
    drop(keep);
    for i in 0..N {
        req.put(&request(i));
    }
    if let Requests::Joinable(q) = &req {
        // Every reply was put before its task_done: all N are there once join returns.
        q.join().unwrap();
        assert_eq!(q.unfinished_tasks(), 0);
        for i in 0..N {
            assert_eq!(rep.get_nowait().unwrap(), reply(request(i)), "{kind} by {how}");
        }
    } else {
        for i in 0..N {
            assert_eq!(
                rep.get_timeout(Duration::from_secs(30)).unwrap(),
                reply(request(i)),
                "{kind} by {how}"
            );
        }
    }
    child.finish(Duration::from_secs(30));
    assert!(rep.empty());
    if let Requests::Queue(q) = &req {
        assert!(leftovers(q.side_segment_prefix()).is_empty());
    }
}

#[test]
fn every_type_across_processes_by_fd_and_by_name() {
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new("every type across processes", Duration::from_secs(120));
    for kind in ["queue", "simple", "joinable"] {
        for by_fd in [true, false] {
            one_type_across_processes(kind, by_fd);
        }
    }
}

// ---------------------------------------------------------------------------------------
// A 16 MiB message through a queue, and the round trip of 64 B vs 16 MiB

/// Echo byte messages from IN_FD back on OUT_FD until Closed; check those longer than
/// 1 KiB whose sequence number (first 8 bytes) is below `CHECKED` byte by byte against
/// `fill_msg(seq)` (the parent checks every echo; the timed ones skip this check here).
fn bytes_echo_peer() -> Result<(), String> {
    let _dog = Watchdog::new("bytes echo peer", Duration::from_secs(120));
    let mut rx: Queue<()> = Queue::from_fd(fd_from_env("IN_FD")).map_err(err("attach in"))?;
    let mut tx: Queue<()> = Queue::from_fd(fd_from_env("OUT_FD")).map_err(err("attach out"))?;
    let mut scratch = Vec::new();
    let mut checked = 0;
    loop {
        let msg = match rx.get_bytes() {
            Ok(m) => m,
            Err(GetError::Closed) => break,
            Err(e) => return Err(format!("get: {e:?}")),
        };
        if msg.len() > 1024 {
            let seq = u64::from_le_bytes(msg[..8].try_into().unwrap());
            if seq < CHECKED {
                check_msg_exact(seq, &msg, &mut scratch)?;
                checked += 1;
            }
        }
        tx.put_bytes(&msg).map_err(err("put"))?;
    }
    say(&format!("@@CHECKED {checked}"));
    Ok(())
}

/// Large messages with a sequence number below this are checked by the echo peer.
const CHECKED: u64 = 1000;

fn check_msg_exact(seq: u64, got: &[u8], scratch: &mut Vec<u8>) -> Result<(), String> {
    scratch.resize(got.len(), 0);
    fill_msg(seq, scratch);
    if got != &scratch[..] {
        let at = got.iter().zip(scratch.iter()).position(|(a, b)| a != b);
        return Err(format!("message {seq} of {} bytes differs at {at:?}", got.len()));
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn sixteen_mib_message_round_trip_leaves_no_side_segment() {
    const TEST: &str = "sixteen_mib_message_round_trip_leaves_no_side_segment";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new("16 MiB round trip", Duration::from_secs(120));
    let mut to: Queue<()> = Queue::new(4).unwrap();
    let mut from: Queue<()> = Queue::new(4).unwrap();
    let (a, b) = (to.try_clone().unwrap().into_fd(), from.try_clone().unwrap().into_fd());
    let ((ca, sa), (cb, sb)) = (for_child(&a), for_child(&b));
    let child = Peer::spawn(TEST, "bytes-echo", &[("IN_FD", sa), ("OUT_FD", sb)]);
    drop((a, b, ca, cb));

    let mut scratch = Vec::new();
    let round_trip = |to: &mut Queue<()>, from: &mut Queue<()>, msg: &[u8]| {
        let t = Instant::now();
        to.put_bytes(msg).unwrap();
        let back = from.get_bytes_timeout(Duration::from_secs(60)).unwrap();
        (t.elapsed(), back)
    };
    // 16 MiB, byte-exact both ways (`fill_msg` starts a message with its sequence
    // number, so the child knows what to expect): the child checks these two.
    for seq in 0..2u64 {
        let (_, back) = round_trip(&mut to, &mut from, &pattern(seq, 16 << 20));
        check_msg_exact(seq, &back, &mut scratch).unwrap();
    }
    // Timed: 16 MiB (checked here, after the clock stops), then 64 B (inline).
    let mut big_times = Vec::new();
    for seq in CHECKED..CHECKED + 7 {
        let (dt, back) = round_trip(&mut to, &mut from, &pattern(seq, 16 << 20));
        check_msg_exact(seq, &back, &mut scratch).unwrap();
        big_times.push(dt);
    }
    let small = pattern(1, 64);
    let mut small_times = Vec::new();
    for _ in 0..2000 {
        let (dt, back) = round_trip(&mut to, &mut from, &small);
        assert_eq!(back, small);
        small_times.push(dt);
    }
    to.close();
    let lines = child.finish(Duration::from_secs(30));
    assert!(
        lines.iter().any(|l| l.contains("@@CHECKED 2")),
        "the child checked both messages: {lines:?}"
    );
    let (s, b) = (median(small_times), median(big_times));
    eprintln!(
        "@@ROUNDTRIP 64 B: {:.1} us (median of 2000); 16 MiB: {:.2} ms (median of 7), {:.2} GB/s each way",
        s.as_secs_f64() * 1e6,
        b.as_secs_f64() * 1e3,
        2.0 * 16.0 * 1048576.0 / b.as_secs_f64() / 1e9
    );
    assert!(
        leftovers(to.side_segment_prefix()).is_empty(),
        "{:?}",
        leftovers(to.side_segment_prefix())
    );
    assert!(leftovers(from.side_segment_prefix()).is_empty());
    assert_eq!(to.stats().lost + from.stats().lost, 0);
}

// ---------------------------------------------------------------------------------------
// Several producer and consumer processes: exactly-once delivery of 100,000 messages

#[derive(Serialize, Deserialize, Debug, PartialEq, shmring::Schema)]
#[postcard(crate = shmring::postcard_schema)]
struct Msg {
    producer: u32,
    seq: u32,
    text: String,
}

/// Message `seq` of producer `id`: short text, every 5000th one larger than a slot.
fn msg(id: u32, seq: u32) -> Msg {
    let len = if seq % 5000 == 4999 {
        2000
    } else {
        (mix(u64::from(id) << 32 | u64::from(seq)) % 24) as usize
    };
    Msg {
        producer: id,
        seq,
        text: (0..len)
            .map(|k| (b'a' + ((seq as usize + k) % 26) as u8) as char)
            .collect(),
    }
}

const PRODUCERS: u32 = 4;
const CONSUMERS: usize = 3;
const PER_PRODUCER: u32 = 25_000;

fn producer_peer() -> Result<(), String> {
    let _dog = Watchdog::new("producer peer", Duration::from_secs(150));
    let id = env_num("ID") as u32;
    let mut q: Queue<Msg> = Queue::open(&env_str("QUEUE")).map_err(err("open"))?;
    for seq in 0..PER_PRODUCER {
        q.put(&msg(id, seq)).map_err(|e| format!("put {seq}: {e:?}"))?;
    }
    Ok(())
}

fn consumer_peer() -> Result<(), String> {
    let _dog = Watchdog::new("consumer peer", Duration::from_secs(150));
    let mut q: Queue<Msg> = Queue::open(&env_str("QUEUE")).map_err(err("open"))?;
    let words = (PER_PRODUCER as usize).div_ceil(64);
    let mut seen = vec![vec![0u64; words]; PRODUCERS as usize];
    let mut last: Vec<Option<u32>> = vec![None; PRODUCERS as usize];
    loop {
        match q.get() {
            Ok(m) => {
                let id = m.producer as usize;
                if id >= PRODUCERS as usize || m.seq >= PER_PRODUCER || m != msg(m.producer, m.seq) {
                    return Err(format!("unexpected or garbled message {m:?}"));
                }
                if let Some(l) = last[id].filter(|&l| m.seq <= l) {
                    return Err(format!("producer {id}: seq {} after {l}", m.seq));
                }
                last[id] = Some(m.seq);
                seen[id][m.seq as usize / 64] |= 1 << (m.seq % 64);
            }
            Err(GetError::Closed) => break,
            Err(e) => return Err(format!("get: {e:?}")),
        }
    }
    for (id, w) in seen.iter().enumerate() {
        let hex: String = w.iter().map(|w| format!("{w:016x}")).collect();
        say(&format!("@@SEEN {id} {hex}"));
    }
    Ok(())
}

#[test]
fn producers_and_consumers_exactly_once_100k() {
    const TEST: &str = "producers_and_consumers_exactly_once_100k";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new("100k exactly once", Duration::from_secs(200));
    let name = unique_name("mpmc100k");
    let q: Queue<Msg> = Queue::create(&name, 256).unwrap();
    let consumers: Vec<Peer> = (0..CONSUMERS)
        .map(|_| Peer::spawn(TEST, "consumer", &[("QUEUE", name.clone())]))
        .collect();
    let producers: Vec<Peer> = (0..PRODUCERS)
        .map(|id| Peer::spawn(TEST, "producer", &[("QUEUE", name.clone()), ("ID", id.to_string())]))
        .collect();
    for p in producers {
        p.finish(Duration::from_secs(150));
    }
    // Every message is in the queue or taken: closing lets the consumers drain and stop.
    q.close();
    let words = (PER_PRODUCER as usize).div_ceil(64);
    let mut union = vec![vec![0u64; words]; PRODUCERS as usize];
    let mut total = 0u64;
    for c in consumers {
        for line in c.finish(Duration::from_secs(150)) {
            let Some((_, rest)) = line.split_once("@@SEEN ") else {
                continue;
            };
            let (id, hex) = rest.split_once(' ').unwrap();
            let id: usize = id.parse().unwrap();
            for (k, w) in union[id].iter_mut().enumerate() {
                let got = u64::from_str_radix(&hex[k * 16..k * 16 + 16], 16).unwrap();
                assert_eq!(*w & got, 0, "producer {id}: a message delivered twice (word {k})");
                *w |= got;
                total += u64::from(got.count_ones());
            }
        }
    }
    assert_eq!(total, u64::from(PRODUCERS * PER_PRODUCER), "every message exactly once");
    let st = q.stats();
    assert_eq!((st.pushed, st.popped, st.lost), (100_000, 100_000, 0));
    assert!(leftovers(q.side_segment_prefix()).is_empty());
}

// ---------------------------------------------------------------------------------------
// JoinableQueue with three worker processes

const TASKS: u64 = 60;

/// Get tasks until Closed; for each, sleep a little, count it in the shared counter,
/// then mark it done.
fn worker_peer() -> Result<(), String> {
    let _dog = Watchdog::new("worker peer", Duration::from_secs(60));
    let mut q: JoinableQueue<u64> =
        JoinableQueue::from_fds(fd_from_env("QUEUE_FD"), fd_from_env("TASKS_FD")).map_err(err("attach"))?;
    let done = shmring::sync::Mutex::<u64>::from_fd(fd_from_env("DONE_FD")).map_err(err("counter"))?;
    let mut mine = 0;
    loop {
        match q.get() {
            Ok(t) if t < TASKS => {
                std::thread::sleep(Duration::from_millis(3));
                *done.lock().map_err(|_| "counter owner died".to_string())? += 1;
                q.task_done().map_err(err("task_done"))?;
                mine += 1;
            }
            Ok(t) => return Err(format!("unexpected task {t}")),
            Err(GetError::Closed) => break,
            Err(e) => return Err(format!("get: {e:?}")),
        }
    }
    say(&format!("@@DID {mine}"));
    Ok(())
}

#[test]
fn joinable_queue_join_returns_exactly_when_all_tasks_are_done() {
    const TEST: &str = "joinable_queue_join_returns_exactly_when_all_tasks_are_done";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new("joinable with 3 workers", Duration::from_secs(120));
    let mut q: JoinableQueue<u64> = JoinableQueue::new(16).unwrap();
    let done = shmring::sync::Mutex::anonymous(0u64).unwrap();
    let workers: Vec<Peer> = (0..3)
        .map(|_| {
            let (qfd, tfd) = q.try_clone().unwrap().into_fds().unwrap();
            let dfd = done.as_fd_owned();
            let (c1, s1) = for_child(&qfd);
            let (c2, s2) = for_child(&tfd);
            let (c3, s3) = for_child(&dfd);
            let p = Peer::spawn(TEST, "worker", &[("QUEUE_FD", s1), ("TASKS_FD", s2), ("DONE_FD", s3)]);
            drop((qfd, tfd, dfd, c1, c2, c3));
            p
        })
        .collect();
    for t in 0..TASKS {
        q.put(&t).unwrap();
    }
    q.join().unwrap();
    // Every worker counts a task before marking it done: had join returned with a task
    // outstanding, the counter would be short.
    let counted = *done.lock().unwrap();
    assert_eq!(counted, TASKS, "join returned with {} tasks not done", TASKS - counted);
    assert_eq!(q.unfinished_tasks(), 0);
    assert_eq!(q.join_timeout(Duration::ZERO), Ok(()));
    // One task_done too many: an error, and the count stays at zero.
    assert_eq!(q.task_done(), Err(TaskDoneError::TooOften));
    assert_eq!(q.unfinished_tasks(), 0);
    // A second round through the same workers.
    for t in 0..TASKS {
        q.put(&t).unwrap();
    }
    q.join().unwrap();
    assert_eq!(*done.lock().unwrap(), 2 * TASKS);
    q.close();
    let mut did = 0;
    for w in workers {
        for line in w.finish(Duration::from_secs(30)) {
            // The harness's "test ... " may lead the line.
            if let Some((_, n)) = line.split_once("@@DID ") {
                did += n.parse::<u64>().unwrap();
            }
        }
    }
    assert_eq!(did, 2 * TASKS);
}

/// `as_fd` + dup for the shared counter.
trait AsFdOwned {
    fn as_fd_owned(&self) -> OwnedFd;
}

impl<T: rustix::fd::AsFd> AsFdOwned for T {
    fn as_fd_owned(&self) -> OwnedFd {
        self.as_fd().try_clone_to_owned().unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// Timeouts, nowait and close across processes

/// On the named queue QUEUE (maxsize 2, empty): Empty/Timeout, fill it, Full/Timeout
/// (also for a large message), then a blocking put that the parent's get releases, then
/// wait for the parent's close and see Closed.
fn ops_peer() -> Result<(), String> {
    let _dog = Watchdog::new("ops peer", Duration::from_secs(60));
    let mut q: Queue<u32> = Queue::open(&env_str("QUEUE")).map_err(err("open"))?;
    let expect = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
    expect(matches!(q.get_nowait(), Err(GetError::Empty)), "get_nowait on empty")?;
    expect(
        matches!(q.get_timeout(Duration::from_millis(20)), Err(GetError::Timeout)),
        "get_timeout on empty",
    )?;
    q.put_nowait(&1).map_err(err("put_nowait 1"))?;
    q.put_timeout(&2, Duration::from_secs(1))
        .map_err(err("put_timeout 2"))?;
    expect(q.full() && q.qsize() == 2, "full after two puts")?;
    expect(matches!(q.put_nowait(&9), Err(PutError::Full)), "put_nowait on full")?;
    expect(
        matches!(q.put_timeout(&9, Duration::from_millis(20)), Err(PutError::Timeout)),
        "put_timeout on full",
    )?;
    let big = vec![1u8; 100_000];
    expect(
        matches!(q.put_bytes_nowait(&big), Err(PutError::Full)),
        "large put_nowait on full",
    )?;
    expect(
        matches!(
            q.put_bytes_timeout(&big, Duration::from_millis(20)),
            Err(PutError::Timeout)
        ),
        "large put_timeout on full",
    )?;
    say("@@FULL");
    // Blocks until the parent takes one.
    q.put(&3).map_err(err("blocking put 3"))?;
    let start = Instant::now();
    while !q.is_closed() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err("never closed".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    expect(matches!(q.put(&4), Err(PutError::Closed)), "put after close")?;
    expect(
        matches!(q.put_bytes(&big), Err(PutError::Closed)),
        "large put after close",
    )?;
    say("@@CLOSED");
    Ok(())
}

/// Block in `get` on the empty named queue QUEUE until it is closed.
fn close_waiter_peer() -> Result<(), String> {
    let _dog = Watchdog::new("close waiter", Duration::from_secs(60));
    let mut q: Queue<u32> = Queue::open(&env_str("QUEUE")).map_err(err("open"))?;
    say("@@WAITING");
    match q.get() {
        Err(GetError::Closed) => Ok(()),
        other => Err(format!("expected Closed, got {other:?}")),
    }
}

#[test]
fn timeouts_nowait_and_close_across_processes() {
    const TEST: &str = "timeouts_nowait_and_close_across_processes";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new("timeouts and close", Duration::from_secs(120));
    let (name, idle) = (unique_name("ops"), unique_name("idle"));
    let mut q: Queue<u32> = Queue::create(&name, 2).unwrap();
    let idle_q: Queue<u32> = Queue::create(&idle, 2).unwrap();
    let mut ops = Peer::spawn(TEST, "ops", &[("QUEUE", name.clone())]);
    let mut waiter = Peer::spawn(TEST, "close-waiter", &[("QUEUE", idle.clone())]);
    ops.expect("@@FULL", Duration::from_secs(30));
    assert_eq!(q.get().unwrap(), 1); // lets the child's blocking put through
    let start = Instant::now();
    while q.qsize() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the blocked put never completed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    q.close();
    ops.expect("@@CLOSED", Duration::from_secs(30));
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get_nowait().unwrap(), 3);
    assert!(matches!(q.get(), Err(GetError::Closed)));
    assert!(matches!(q.get_timeout(Duration::from_millis(5)), Err(GetError::Closed)));
    ops.finish(Duration::from_secs(30));
    // A consumer asleep in `get` wakes with Closed.
    waiter.expect("@@WAITING", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(20));
    idle_q.close();
    waiter.finish(Duration::from_secs(30));
    assert!(leftovers(q.side_segment_prefix()).is_empty());
}

// ---------------------------------------------------------------------------------------
// Hostile reference records

/// A reference record as documented in `shmring::queue`.
fn reference(name: &str, len: u64, checksum: u64) -> Vec<u8> {
    let mut r = vec![2u8, name.len() as u8, 0, 0, 0, 0, 0, 0];
    r.extend_from_slice(&len.to_le_bytes());
    r.extend_from_slice(&checksum.to_le_bytes());
    r.extend_from_slice(name.as_bytes());
    r
}

/// Open the ring QUEUE as a raw MPMC producer and push crafted records (see the test).
fn hostile_peer() -> Result<(), String> {
    let _dog = Watchdog::new("hostile peer", Duration::from_secs(60));
    let (name, prefix, victim) = (env_str("QUEUE"), env_str("PREFIX"), env_str("VICTIM"));
    let id = u64::from_str_radix(&prefix["shmring-q-".len()..prefix.len() - 1], 16).map_err(err("prefix"))?;
    let mut p = mpmc::Producer::open(&name).map_err(err("open"))?;
    let mut push = |rec: &[u8]| p.push(rec).map_err(err("push"));
    // 1. Foreign names: an existing segment, a path, another queue's prefix.
    push(&reference(&victim, 4096, 0))?;
    push(&reference(&format!("{prefix}1-../../{victim}"), 10, 0))?;
    push(&reference("shmring-q-0000000000000000-1-1", 10, 0))?;
    // 2. Lengths: above the limit, zero, a record cut short, one too long.
    push(&reference(&format!("{prefix}1-1"), u64::MAX, 0))?;
    push(&reference(&format!("{prefix}1-1"), 0, 0))?;
    let r = reference(&format!("{prefix}1-1"), 10, 0);
    push(&r[..r.len() - 3])?;
    let mut longer = r.clone();
    longer.push(b'7');
    push(&longer)?;
    // 3. Unknown kind, empty record.
    push(&[0x42, 1, 2, 3])?;
    push(&[])?;
    // 4. A segment in the prefix whose size disagrees with the record.
    let side = |n: &str, params: [u64; 8], bytes: &[u8]| -> Result<(), String> {
        let mut seg = Segment::create(
            n,
            SegmentKind::Raw,
            params,
            bytes.len(),
            &SegmentOptions::new().keep(true),
        )
        .map_err(err("create side"))?;
        // SAFETY: the area holds bytes.len() bytes and is mapped only here so far.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), seg.area_ptr(), bytes.len()) };
        seg.publish_ready();
        Ok(())
    };
    let tag = u64::from_le_bytes(*b"SHMQSIDE");
    let liar = format!("{prefix}{}-1", std::process::id());
    side(&liar, [tag, 5000, 1, id, 0, 0, 0, 0], &[7; 100])?;
    push(&reference(&liar, 5000, 1))?;
    // 5. A segment whose header agrees with the record but whose bytes do not.
    let forged = format!("{prefix}{}-2", std::process::id());
    side(&forged, [tag, 5000, 12345, id, 0, 0, 0, 0], &[7; 5000])?;
    push(&reference(&forged, 5000, 12345))?;
    // 6. A missing segment.
    push(&reference(&format!("{prefix}{}-3", std::process::id()), 5000, 1))?;
    // Then a good message: [1] + postcard(77u32).
    push(&[1, 77])?;
    say("@@PUSHED");
    Ok(())
}

#[test]
fn hostile_reference_records_are_errors_and_touch_nothing_outside_the_prefix() {
    const TEST: &str = "hostile_reference_records_are_errors_and_touch_nothing_outside_the_prefix";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new("hostile records", Duration::from_secs(60));
    let name = unique_name("hostile");
    let mut q: Queue<u32> = Queue::create(&name, 64).unwrap();
    let prefix = q.side_segment_prefix().to_owned();
    let victim = unique_name("victim");
    let mut vseg = Segment::create(&victim, SegmentKind::Raw, [0; 8], 4096, &SegmentOptions::new()).unwrap();
    // SAFETY: the area holds 4096 bytes, and nobody else maps the segment yet.
    unsafe { std::ptr::write_bytes(vseg.area_ptr(), 0x5a, 4096) };
    vseg.publish_ready();
    let child = Peer::spawn(
        TEST,
        "hostile",
        &[
            ("QUEUE", name.clone()),
            ("PREFIX", prefix.clone()),
            ("VICTIM", victim.clone()),
        ],
    );
    child.finish(Duration::from_secs(30));
    let mut next = || match q.get_timeout(Duration::from_secs(10)) {
        Err(GetError::BadReference(b)) => b,
        other => panic!("expected a bad reference, got {other:?}"),
    };
    assert_eq!(next(), BadReference::ForeignName);
    assert_eq!(next(), BadReference::ForeignName);
    assert_eq!(next(), BadReference::ForeignName);
    assert!(matches!(next(), BadReference::TooLarge { len: u64::MAX, .. }));
    assert!(matches!(next(), BadReference::TooLarge { len: 0, .. }));
    assert!(matches!(next(), BadReference::Truncated { .. }));
    assert!(matches!(next(), BadReference::Truncated { .. }));
    assert_eq!(next(), BadReference::UnknownKind(0x42));
    assert_eq!(next(), BadReference::Truncated { len: 0 });
    assert_eq!(next(), BadReference::Mismatch);
    assert_eq!(next(), BadReference::Checksum);
    assert_eq!(next(), BadReference::Missing);
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 77);
    // The segments the hostile peer made in the prefix were removed; the victim outside
    // it is untouched.
    assert!(leftovers(&prefix).is_empty(), "{:?}", leftovers(&prefix));
    let v = Segment::open(&victim, SegmentKind::Raw, &SegmentOptions::new()).unwrap();
    // SAFETY: the area holds 4096 bytes, and no process writes it any more (the
    // hostile peer has exited; the parent wrote it before).
    let bytes = unsafe { std::slice::from_raw_parts(v.area_ptr(), 4096) };
    assert!(bytes.iter().all(|&b| b == 0x5a), "the victim segment was changed");
    drop((v, vseg));
    assert!(!std::path::Path::new("/dev/shm").join(&victim).exists());
}
