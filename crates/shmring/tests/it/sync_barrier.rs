//! Cross-process tests of the robust barrier (`shmring::sync::Barrier`): the test binary
//! re-executes itself as the other parties (`common::spawn_peer`), each in its own
//! process. Every test runs under a watchdog.

use crate::common;

use common::peer::*;
use common::*;
use shmring::Error;
use shmring::shm::{Segment, SegmentKind, SegmentOptions};
use shmring::sync::{Barrier, BarrierError, BarrierWaitResult};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The peer roles, dispatched from whichever test re-executed the binary.
fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "rounds" => rounds_peer(),
        "waiter" => waiter_peer(),
        "victim" => victim_peer(),
        "cycle" => cycle_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// The barrier a peer was given: by name in `NAME`, else by descriptor in `BARRIER`.
fn peer_barrier() -> Result<Barrier, String> {
    match std::env::var("NAME") {
        Ok(name) => Barrier::open(&name).map_err(|e| format!("open {name}: {e}")),
        Err(_) => Barrier::from_fd(fd_from_env("BARRIER")).map_err(|e| format!("from_fd: {e}")),
    }
}

/// `@@RESULT <Ok index leader | Err error> <unix ns>`
fn report(r: Result<BarrierWaitResult, BarrierError>) {
    match r {
        Ok(r) => say(&format!("@@RESULT Ok {} {} {}", r.index, r.is_leader(), now_nanos())),
        Err(e) => say(&format!("@@RESULT Err {e:?} {}", now_nanos())),
    }
}

/// A parsed `@@RESULT` line: the outcome (`Ok i leader` or the error's Debug form) and
/// when it was reported.
fn parse_result(rest: &str) -> (String, u128) {
    let (what, at) = rest.trim().rsplit_once(' ').expect("result line");
    (what.to_owned(), at.parse().expect("time"))
}

/// Open the barrier, say `@@READY`, wait once (`TIMEOUT_MS`, if set, bounds the wait) and
/// report the outcome.
fn waiter_peer() -> Result<(), String> {
    let _dog = Watchdog::new("waiter peer", Duration::from_secs(60));
    let b = peer_barrier()?;
    if let Ok(p) = std::env::var("PARTIES") {
        if b.parties().to_string() != p {
            return Err(format!("parties {} != {p}", b.parties()));
        }
    }
    say("@@READY");
    let r = match std::env::var("TIMEOUT_MS") {
        Ok(ms) => b.wait_timeout(Duration::from_millis(ms.parse().unwrap())),
        Err(_) => b.wait(),
    };
    report(r);
    Ok(())
}

/// Open the barrier, say `@@READY`, and sleep until killed.
fn victim_peer() -> Result<(), String> {
    let _dog = Watchdog::new("victim peer", Duration::from_secs(60));
    let _b = peer_barrier()?;
    say("@@READY");
    std::thread::sleep(Duration::from_secs(50));
    Err("not killed".into())
}

// ---------------------------------------------------------------------------------------
// 4 processes x 1,000 rounds

const PARTIES: u32 = 4;
const ROUNDS: u64 = 1000;

/// Words in a raw anonymous segment shared by the parties: `arrived` (0), `leaders` (16,
/// another cache line) and one bitmap of arrival indices per round (32 + round).
struct Counters {
    seg: Segment,
}

impl Counters {
    const ARRIVED: usize = 0;
    const LEADERS: usize = 16;
    const WORDS: usize = 32 + ROUNDS as usize;

    fn create() -> Counters {
        let mut seg = Segment::anonymous(SegmentKind::Raw, [0; 8], Self::WORDS * 8, &SegmentOptions::new()).unwrap();
        seg.publish_ready();
        Counters { seg }
    }

    fn from_env() -> Result<Counters, String> {
        let seg = Segment::from_fd(fd_from_env("COUNTERS"), SegmentKind::Raw, &SegmentOptions::new())
            .map_err(|e| format!("counters: {e}"))?;
        if seg.area_len() < Self::WORDS * 8 {
            return Err("counters segment too small".into());
        }
        Ok(Counters { seg })
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < Self::WORDS && (i + 1) * 8 <= self.seg.area_len());
        // SAFETY: in bounds (checked above), 8-byte aligned (the area is 128-byte
        // aligned), any bytes are a valid AtomicU64, and the mapping lives as long as
        // `self`.
        unsafe { &*(self.seg.area_ptr().add(i * 8) as *const AtomicU64) }
    }

    fn mask(&self, round: u64) -> &AtomicU64 {
        self.word(32 + round as usize)
    }
}

/// The rounds every party runs: count the arrival, wait, check that nobody passed early,
/// record the arrival index (unique per round) and the leader.
fn run_rounds(b: &Barrier, c: &Counters) -> Result<(), String> {
    let n = u64::from(PARTIES);
    for round in 0..ROUNDS {
        // Relaxed (all counters): the barrier orders them (release at arrival, acquire
        // at the release of the round).
        c.word(Counters::ARRIVED).fetch_add(1, Ordering::Relaxed);
        let r = b.wait().map_err(|e| format!("round {round}: {e}"))?;
        let seen = c.word(Counters::ARRIVED).load(Ordering::Relaxed);
        // Everybody's arrival of this round is visible; nobody is past the next round.
        if seen < n * (round + 1) || seen >= n * (round + 2) {
            return Err(format!("round {round}: {seen} arrivals counted (someone passed early)"));
        }
        if r.index >= PARTIES || r.is_leader() != (r.index == PARTIES - 1) {
            return Err(format!("round {round}: {r:?}"));
        }
        let bit = 1u64 << r.index;
        if c.mask(round).fetch_or(bit, Ordering::Relaxed) & bit != 0 {
            return Err(format!("round {round}: index {} given twice", r.index));
        }
        if r.is_leader() {
            c.word(Counters::LEADERS).fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn rounds_peer() -> Result<(), String> {
    let _dog = Watchdog::new("rounds peer", Duration::from_secs(120));
    let b = peer_barrier()?;
    let c = Counters::from_env()?;
    run_rounds(&b, &c)
}

#[test]
fn four_processes_thousand_rounds_nobody_passes_early() {
    const TEST: &str = "four_processes_thousand_rounds_nobody_passes_early";
    common::dispatch(run_peer);
    let _dog = Watchdog::new(TEST, Duration::from_secs(150));
    let b = Barrier::anonymous(PARTIES).unwrap();
    let c = Counters::create();
    let bfd = inheritable(&b.as_fd().try_clone_to_owned().unwrap());
    let cfd = inheritable(&c.seg.as_fd().try_clone_to_owned().unwrap());
    let env = [("BARRIER", fd_string(&bfd)), ("COUNTERS", fd_string(&cfd))];
    let start = Instant::now();
    let peers: Vec<Peer> = (0..PARTIES - 1).map(|_| Peer::spawn(TEST, "rounds", &env)).collect();
    drop((bfd, cfd));
    run_rounds(&b, &c).unwrap();
    for p in peers {
        p.finish(Duration::from_secs(120));
    }
    let took = start.elapsed();
    assert_eq!(
        c.word(Counters::ARRIVED).load(Ordering::Relaxed),
        u64::from(PARTIES) * ROUNDS
    );
    assert_eq!(
        c.word(Counters::LEADERS).load(Ordering::Relaxed),
        ROUNDS,
        "one leader per round"
    );
    for round in 0..ROUNDS {
        assert_eq!(
            c.mask(round).load(Ordering::Relaxed),
            0b1111,
            "indices of round {round}"
        );
    }
    assert_eq!(b.n_waiting(), 0);
    assert!(!b.is_broken());
    eprintln!(
        "{PARTIES} processes x {ROUNDS} rounds in {took:?} ({:?} per round)",
        took / ROUNDS as u32
    );
}

// ---------------------------------------------------------------------------------------
// A party killed with SIGKILL while the others wait

#[test]
fn killed_party_breaks_the_barrier_for_every_waiter() {
    const TEST: &str = "killed_party_breaks_the_barrier_for_every_waiter";
    common::dispatch(run_peer);
    let _dog = Watchdog::new(TEST, Duration::from_secs(60));
    // Parties: the victim, two waiter processes, and a waiting thread of this process.
    let b = Barrier::anonymous(4).unwrap();
    let fd = inheritable(&b.as_fd().try_clone_to_owned().unwrap());
    let env = [("BARRIER", fd_string(&fd))];
    let mut victim = Peer::spawn(TEST, "victim", &env);
    let mut waiters: Vec<Peer> = (0..2).map(|_| Peer::spawn(TEST, "waiter", &env)).collect();
    drop(fd);
    victim.expect("@@READY", Duration::from_secs(20));
    for w in &mut waiters {
        w.expect("@@READY", Duration::from_secs(20));
    }
    let b2 = b.try_clone().unwrap();
    let local = std::thread::spawn(move || {
        let r = b2.wait();
        (r, Instant::now())
    });
    let limit = Instant::now() + Duration::from_secs(20);
    while b.n_waiting() != 3 {
        assert!(Instant::now() < limit, "the waiters never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Not reaped: a zombie must count as dead.
    let (killed, killed_ns) = (Instant::now(), now_nanos());
    victim.kill9_no_reap();
    let (r, at) = local.join().unwrap();
    assert_eq!(r, Err(BarrierError::Broken));
    eprintln!("waiting thread of the parent: Broken {:?} after the kill", at - killed);
    for w in waiters {
        let lines = w.finish(Duration::from_secs(20));
        let rest = lines
            .iter()
            .find_map(|l| l.split_once("@@RESULT ").map(|x| x.1))
            .expect("result line");
        let (what, at) = parse_result(rest);
        assert_eq!(what, "Err Broken");
        eprintln!(
            "waiter process: Broken {:?} after the kill",
            Duration::from_nanos(at.saturating_sub(killed_ns) as u64)
        );
    }
    assert!(b.is_broken());
    drop(victim);
    // The barrier stays broken until reset; after that, a round works again.
    assert_eq!(b.wait(), Err(BarrierError::Broken));
    b.reset();
    let b2 = b.try_clone().unwrap();
    let ts: Vec<_> = (0..3)
        .map(|_| {
            let b = b2.try_clone().unwrap();
            std::thread::spawn(move || b.wait().unwrap())
        })
        .collect();
    let mut leaders = u32::from(b.wait().unwrap().is_leader());
    for t in ts {
        leaders += u32::from(t.join().unwrap().is_leader());
    }
    assert_eq!(leaders, 1);
}

// ---------------------------------------------------------------------------------------
// Named barrier: open from another process; a timeout breaks it for everybody

#[test]
fn timeout_breaks_a_named_barrier_for_every_process() {
    const TEST: &str = "timeout_breaks_a_named_barrier_for_every_process";
    common::dispatch(run_peer);
    let _dog = Watchdog::new(TEST, Duration::from_secs(60));
    let name = unique_name("barrier-timeout");
    let b = Barrier::create(&name, 3).unwrap();
    assert!(matches!(Barrier::create(&name, 3), Err(Error::AlreadyExists { .. })));
    assert_eq!(b.name(), Some(name.as_str()));
    let env = [("NAME", name.clone()), ("PARTIES", "3".to_string())];
    let mut w = Peer::spawn(TEST, "waiter", &env);
    w.expect("@@READY", Duration::from_secs(20));
    let limit = Instant::now() + Duration::from_secs(20);
    while b.n_waiting() != 1 {
        assert!(Instant::now() < limit, "the waiter never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    let t = Instant::now();
    assert_eq!(b.wait_timeout(Duration::from_millis(100)), Err(BarrierError::Timeout));
    assert!(t.elapsed() >= Duration::from_millis(100));
    let lines = w.finish(Duration::from_secs(20));
    let rest = lines
        .iter()
        .find_map(|l| l.split_once("@@RESULT ").map(|x| x.1))
        .unwrap();
    assert_eq!(parse_result(rest).0, "Err Broken");
    assert!(b.is_broken());
    assert_eq!(b.wait_timeout(Duration::from_secs(5)), Err(BarrierError::Broken));
    drop(b);
    assert!(matches!(Barrier::open(&name), Err(Error::NotFound { .. })));
}

// ---------------------------------------------------------------------------------------
// abort, reset, then a normal round, across two processes

/// Phase 1: wait (the parent aborts): Broken. Phase 2: once the parent has reset, wait
/// again (the parent resets again meanwhile): Broken. Phase 3: a normal round.
fn cycle_peer() -> Result<(), String> {
    let _dog = Watchdog::new("cycle peer", Duration::from_secs(60));
    let b = peer_barrier()?;
    let expect_broken = |what: &str| match b.wait() {
        Err(BarrierError::Broken) => Ok(()),
        r => Err(format!("{what}: {r:?}, expected Broken")),
    };
    expect_broken("abort")?;
    say("@@ABORTED");
    while b.is_broken() {
        std::thread::sleep(Duration::from_millis(1));
    }
    expect_broken("reset")?;
    say("@@RESET");
    report(b.wait());
    Ok(())
}

#[test]
fn abort_then_reset_then_a_normal_round() {
    const TEST: &str = "abort_then_reset_then_a_normal_round";
    common::dispatch(run_peer);
    let _dog = Watchdog::new(TEST, Duration::from_secs(60));
    let b = Barrier::anonymous(2).unwrap();
    let fd = inheritable(&b.as_fd().try_clone_to_owned().unwrap());
    let mut p = Peer::spawn(TEST, "cycle", &[("BARRIER", fd_string(&fd))]);
    drop(fd);
    let arrived = |b: &Barrier| {
        let limit = Instant::now() + Duration::from_secs(20);
        while b.n_waiting() != 1 {
            assert!(Instant::now() < limit, "the peer never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    arrived(&b);
    b.abort();
    assert!(b.is_broken());
    assert_eq!(b.n_waiting(), 0);
    p.expect("@@ABORTED", Duration::from_secs(20));
    // Future waits fail too, until reset.
    assert_eq!(b.wait(), Err(BarrierError::Broken));
    b.reset();
    assert!(!b.is_broken());
    arrived(&b);
    b.reset();
    p.expect("@@RESET", Duration::from_secs(20));
    let mine = b.wait().unwrap();
    let (what, _) = parse_result(&p.expect("@@RESULT ", Duration::from_secs(20)));
    let theirs: Vec<&str> = what.split(' ').collect();
    assert_eq!(theirs[0], "Ok", "{what}");
    let (index, leader): (u32, bool) = (theirs[1].parse().unwrap(), theirs[2].parse().unwrap());
    assert_eq!(mine.index + index, 1);
    assert!(mine.is_leader() != leader, "exactly one leader");
    p.finish(Duration::from_secs(20));
}

// ---------------------------------------------------------------------------------------
// n_waiting counts the processes in the round

#[test]
fn n_waiting_counts_waiting_processes() {
    const TEST: &str = "n_waiting_counts_waiting_processes";
    common::dispatch(run_peer);
    let _dog = Watchdog::new(TEST, Duration::from_secs(60));
    let b = Barrier::anonymous(3).unwrap();
    assert_eq!((b.parties(), b.n_waiting(), b.name()), (3, 0, None));
    let fd = inheritable(&b.as_fd().try_clone_to_owned().unwrap());
    let env = [("BARRIER", fd_string(&fd))];
    let mut peers: Vec<Peer> = Vec::new();
    for n in 1..=2 {
        let mut p = Peer::spawn(TEST, "waiter", &env);
        p.expect("@@READY", Duration::from_secs(20));
        let limit = Instant::now() + Duration::from_secs(20);
        while b.n_waiting() != n {
            assert!(Instant::now() < limit, "n_waiting stuck at {}", b.n_waiting());
            std::thread::sleep(Duration::from_millis(1));
        }
        peers.push(p);
    }
    drop(fd);
    let r = b.wait().unwrap();
    assert_eq!(r.index, 2);
    assert!(r.is_leader());
    assert_eq!(b.n_waiting(), 0);
    let mut indices = Vec::new();
    for p in peers {
        let lines = p.finish(Duration::from_secs(20));
        let rest = lines
            .iter()
            .find_map(|l| l.split_once("@@RESULT ").map(|x| x.1))
            .unwrap();
        let (what, _) = parse_result(rest);
        indices.push(what);
    }
    indices.sort();
    assert_eq!(indices, ["Ok 0 false", "Ok 1 false"]);
}

// ---------------------------------------------------------------------------------------
// Corrupted words: errors at open and from waits, never a panic or a hang

#[test]
fn corrupted_words_give_errors_not_panics_or_hangs() {
    const TEST: &str = "corrupted_words_give_errors_not_panics_or_hangs";
    common::dispatch(run_peer);
    let _dog = Watchdog::new(TEST, Duration::from_secs(60));
    let name = unique_name("barrier-corrupt");
    let b = Barrier::create(&name, 2).unwrap();
    // A second mapping through which we scribble.
    let seg = Segment::open(&name, SegmentKind::Barrier, &SegmentOptions::new()).unwrap();
    let area_word = |off: usize| {
        assert!(off % 8 == 0 && off + 8 <= seg.area_len());
        // SAFETY: in bounds, 8-byte aligned (the area is 128-byte aligned), any bytes
        // are a valid AtomicU64, and `seg` outlives the closure's uses.
        unsafe { &*(seg.area_ptr().add(off) as *const AtomicU64) }
    };
    // Header parameter 0 (parties): 0 and huge are refused at open.
    for bad in [0, 1 << 40, 0x1_0000] {
        seg.header().params[0].store(bad, Ordering::Relaxed);
        match Barrier::open(&name) {
            Err(Error::Corrupted { what, .. }) => eprintln!("parties {bad}: {what}"),
            r => panic!("parties {bad}: {r:?}"),
        }
    }
    seg.header().params[0].store(2, Ordering::Relaxed);
    // The parties word (area offset 12) disagrees with the header.
    assert!(seg.area_len() >= 16);
    // SAFETY: in bounds (checked above), 4-byte aligned, any bytes are a valid
    // AtomicU32, and `seg` outlives the reference.
    let parties_word = unsafe { &*(seg.area_ptr().add(12) as *const AtomicU32) };
    assert_eq!(parties_word.load(Ordering::Relaxed), 2);
    parties_word.store(7, Ordering::Relaxed);
    assert!(matches!(Barrier::open(&name), Err(Error::Corrupted { .. })));
    assert!(matches!(
        b.wait_timeout(Duration::from_secs(5)),
        Err(BarrierError::Corrupted(_))
    ));
    parties_word.store(2, Ordering::Relaxed);
    b.reset();
    // A state word whose count is >= parties.
    area_word(0).store(0x0000_0000_0001_0005, Ordering::Relaxed);
    assert!(matches!(
        b.wait_timeout(Duration::from_secs(5)),
        Err(BarrierError::Corrupted(_))
    ));
    assert!(b.is_broken());
    b.reset();
    // A garbage party-table entry (area offset 256 + 8 * slot) found by a waiting process.
    let env = [("NAME", name.clone()), ("TIMEOUT_MS", "30000".to_string())];
    let mut w = Peer::spawn(TEST, "waiter", &env);
    w.expect("@@READY", Duration::from_secs(20));
    let limit = Instant::now() + Duration::from_secs(20);
    while b.n_waiting() != 1 {
        assert!(Instant::now() < limit, "the waiter never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    let slot = (0..64)
        .map(|i| area_word(256 + 8 * i))
        .find(|s| s.load(Ordering::Relaxed) == 0)
        .unwrap();
    let t = Instant::now();
    slot.store(u64::MAX, Ordering::Relaxed);
    let lines = w.finish(Duration::from_secs(20));
    let rest = lines
        .iter()
        .find_map(|l| l.split_once("@@RESULT ").map(|x| x.1))
        .unwrap();
    let (what, _) = parse_result(rest);
    assert_eq!(what, "Err Corrupted(\"party table entry\")");
    eprintln!("garbage table entry reported after {:?}", t.elapsed());
    assert_eq!(slot.load(Ordering::Relaxed), 0, "the entry was freed");
    assert!(b.is_broken());
    b.reset();
    // Still usable after the reset.
    let b2 = b.try_clone().unwrap();
    let t = std::thread::spawn(move || b2.wait().unwrap());
    let mine = b.wait().unwrap();
    assert!(mine.is_leader() != t.join().unwrap().is_leader());
}
