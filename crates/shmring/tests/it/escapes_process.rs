//! The corruption escapes of the waits that had none (issue 16, "every blocking or timed
//! call of every object has a corruption escape"), across processes: a hostile
//! neighbour (this test process) puts a state the protocol never reaches under an
//! honest peer that is blocked in a call without a timeout, and the peer must come out
//! of it with the documented error or repair within its limit (far above the 50 ms
//! liveness tick), never wait for ever. Each peer runs under `Peer::exit`'s limit and
//! each test under a `Watchdog`.
//!
//! - `Condition::wait_while`, `wait_while_interruptible(None)` and `JoinableQueue::join`
//!   on a segment a peer resized: `Corrupted`.
//! - `Mutex::lock`, and the re-lock inside `Condition::wait_while`, on a lock word that
//!   names the waiting thread itself (no guard of it alive): taken as from a dead
//!   owner, `OwnerDied`.
//! - `select` over an MPMC queue in state C3 (the dequeue position past an unclaimed
//!   slot), and over SPSC, MPMC and pipe ends whose segment a peer grew: the source is
//!   reported ready, and its receive reports `Corrupted`.

use crate::common;
use crate::hostile::Scribbler;

use common::peer::*;
use common::*;
use shmring::queue::{JoinError, JoinableQueue};
use shmring::ring::{mpmc, spsc};
use shmring::select::select;
use shmring::sync::{Condition, LockError, Mutex};
use shmring::{ConnError, Connection, RecvError};
use std::time::{Duration, Instant};

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "cond-wait-while" => cond_waiter(false),
        "cond-wait-interruptible" => cond_waiter(true),
        "joiner" => joiner(),
        "self-named-locker" => self_named_locker(),
        "self-named-cond" => self_named_cond(),
        "select-mpmc" => select_mpmc(),
        "select-spsc" => select_spsc(),
        "select-pipe" => select_pipe(),
        other => Err(format!("unknown role {other}")),
    })
}

/// How long a peer may take to notice: far above the 50 ms tick, so that only a wait
/// without an escape reaches it.
const NOTICE: Duration = Duration::from_secs(20);
/// How long the parent gives a peer to exit once attacked.
const EXIT: Duration = Duration::from_secs(40);

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Where a typed object's area starts in its file: the 128-byte header, then the
/// 256-byte type record.
const TYPED: usize = 128 + 256;
/// Where an untyped object's area starts.
const UNTYPED: usize = 128;

/// Resize `/dev/shm/NAME` as a hostile neighbour would: to zero, or twice its size.
fn resize(name: &str, how: &str) {
    let path = format!("/dev/shm/{name}");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
    let len = f.metadata().expect("stat").len();
    f.set_len(if how == "zero" { 0 } else { len * 2 }).expect("ftruncate");
}

/// Wait for every peer's `ready`, give them time to block in their call, run `attack`,
/// then require each to exit normally having printed an `ended` line.
fn judge(test: &str, peers: Vec<(&str, Peer)>, attack: impl FnOnce()) {
    let mut peers = peers;
    for (_, p) in &mut peers {
        p.expect("ready", Duration::from_secs(30));
    }
    std::thread::sleep(Duration::from_millis(200));
    attack();
    for (role, p) in peers {
        let (st, lines) = p.exit(EXIT);
        eprintln!("{test}: {role}: {lines:?}");
        assert!(st.success(), "{test}: {role}: {st}; {lines:?}");
        assert!(
            lines.iter().any(|l| l.starts_with("ended")),
            "{test}: {role}: no outcome reported: {lines:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Condition and JoinableQueue on a resized segment

/// Wait for a value nobody else will ever set: only the poisoned mapping can end it.
fn cond_waiter(interruptible: bool) -> Result<(), String> {
    let c = Condition::<u64>::open(&env_str("NAME")).map_err(err)?;
    let g = c.lock().map_err(|_| "the first lock met a dead owner")?;
    say("ready");
    let start = Instant::now();
    let r = if interruptible {
        match c.wait_while_interruptible(g, None, |v| *v == 0) {
            Ok((g, _)) => Ok(g),
            Err(LockError::OwnerDied(d)) => Err(LockError::OwnerDied(d.map(|(g, _)| g))),
            Err(LockError::Corrupted) => Err(LockError::Corrupted),
            Err(e) => return Err(format!("not Corrupted: {e}")),
        }
    } else {
        c.wait_while(g, |v| *v == 0)
    };
    match r {
        Err(LockError::Corrupted) if start.elapsed() < NOTICE => {
            say(&format!("ended corrupted, poisoned: {}", c.is_poisoned()));
            Ok(())
        }
        Err(LockError::Corrupted) => Err("corrupted, but only after the notice limit".into()),
        Err(e) => Err(format!("not Corrupted: {e}")),
        Ok(g) => Err(format!("woken with the condition false ({}) though nobody set it", *g)),
    }
}

/// Join a queue with one task that nobody will mark done.
fn joiner() -> Result<(), String> {
    let q = JoinableQueue::<u64>::open(&env_str("NAME")).map_err(err)?;
    say("ready");
    match q.join() {
        Err(JoinError::Corrupted(why)) => {
            say(&format!("ended corrupted: {why}"));
            Ok(())
        }
        other => Err(format!("join: {other:?}")),
    }
}

fn condition_waits_end_on_a_resized_segment(test: &str, how: &str) {
    common::dispatch(run_peer);
    let _w = Watchdog::new("condition waits on a resized segment", Duration::from_secs(120));
    let cname = unique_name(&format!("esc-cond-{how}"));
    let qname = unique_name(&format!("esc-join-{how}"));
    let c = Condition::create(&cname, 0u64).unwrap();
    let mut q = JoinableQueue::<u64>::create(&qname, 4).unwrap();
    q.put(&1).unwrap();
    let cenv = [("NAME", cname.clone())];
    let qenv = [("NAME", qname.clone())];
    let peers = vec![
        ("cond-wait-while", Peer::spawn(test, "cond-wait-while", &cenv)),
        (
            "cond-wait-interruptible",
            Peer::spawn(test, "cond-wait-interruptible", &cenv),
        ),
        ("joiner", Peer::spawn(test, "joiner", &qenv)),
    ];
    judge(test, peers, || {
        resize(&cname, how);
        resize(&format!("{qname}.tasks"), how);
    });
    drop((c, q));
}

#[test]
fn condition_waits_end_on_a_segment_truncated_to_zero() {
    condition_waits_end_on_a_resized_segment("condition_waits_end_on_a_segment_truncated_to_zero", "zero");
}

#[test]
fn condition_waits_end_on_a_grown_segment() {
    condition_waits_end_on_a_resized_segment("condition_waits_end_on_a_grown_segment", "grow");
}

// ---------------------------------------------------------------------------------------
// A lock word naming the waiting thread itself

/// This thread's kernel id, for the neighbour to forge the lock word with.
fn tid() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

/// The lock word naming thread `tid` of process `pid`, as the library packs it (see
/// `sync/owner.rs`): `tid << 32 | (start time in clock ticks & 0xffff_ffff)`, the start
/// time being field 22 of `/proc/PID/task/TID/stat`. What a neighbour that can read
/// `/proc` can forge.
fn owner_word(pid: u32, tid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).expect("stat of the peer's thread");
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    let start: u64 = rest
        .split_whitespace()
        .nth(19)
        .expect("field 22")
        .parse()
        .expect("start time");
    (u64::from(tid) << 32) | (start & 0xffff_ffff)
}

/// Lock a mutex whose word the neighbour set to this very thread (it holds no guard):
/// the blocking lock must take it as from a dead owner.
fn self_named_locker() -> Result<(), String> {
    let m = Mutex::<u64>::open(&env_str("NAME")).map_err(err)?;
    say(&format!("tid {}", tid()));
    say("ready");
    let start = Instant::now();
    while !m.raw().is_locked() {
        if start.elapsed() > NOTICE {
            return Err("the neighbour never wrote the lock word".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    match m.lock() {
        Err(died) if start.elapsed() < NOTICE => {
            let mut g = died.into_inner();
            if !m.raw().is_owned_by_current_thread() {
                return Err("OwnerDied, but the lock is not held".into());
            }
            *g += 1;
            g.mark_consistent();
            drop(g);
            let again = *m.lock().map_err(|_| "still inconsistent after mark_consistent")?;
            say(&format!("ended owner-died, value {again}"));
            Ok(())
        }
        Err(_) => Err("OwnerDied only after the notice limit".into()),
        Ok(_) => Err("a clean lock of a word naming this thread".into()),
    }
}

/// Wait on a condition while the neighbour writes this thread into the mutex word: the
/// re-lock after a nap must take it as from a dead owner, and the wait end once the
/// value is set.
fn self_named_cond() -> Result<(), String> {
    let c = Condition::<u64>::open(&env_str("NAME")).map_err(err)?;
    let g = c.lock().map_err(|_| "the first lock met a dead owner")?;
    say(&format!("tid {}", tid()));
    say("ready");
    let start = Instant::now();
    match c.wait_while(g, |v| *v == 0) {
        Err(LockError::OwnerDied(d)) if start.elapsed() < NOTICE => {
            let g = d.into_inner();
            say(&format!("ended owner-died, value {}", *g));
            g.mark_consistent();
            Ok(())
        }
        Ok(_) => Err("woken without meeting the forged word".into()),
        Err(e) => Err(format!("{e} (after {:?})", start.elapsed())),
    }
}

#[test]
fn lock_takes_a_word_naming_the_waiter_as_from_a_dead_owner() {
    common::dispatch(run_peer);
    let test = "lock_takes_a_word_naming_the_waiter_as_from_a_dead_owner";
    let _w = Watchdog::new("lock word naming the waiter", Duration::from_secs(120));
    let name = unique_name("esc-selfword");
    let m = Mutex::create(&name, 0u64).unwrap();
    let mut p = Peer::spawn(test, "self-named-locker", &[("NAME", name.clone())]);
    let peer_tid: u32 = p.expect("tid ", Duration::from_secs(30)).trim().parse().unwrap();
    let word = owner_word(p.pid(), peer_tid);
    let mut s = Scribbler::open(&name, 0).expect("map");
    judge(test, vec![("self-named-locker", p)], || {
        s.write("lock word: the waiter itself", TYPED, 8, word);
    });
    assert_eq!(m.get(), 1, "the peer's increment under the recovered lock");
    drop(m);
}

#[test]
fn condition_relock_takes_a_word_naming_the_waiter_as_from_a_dead_owner() {
    common::dispatch(run_peer);
    let test = "condition_relock_takes_a_word_naming_the_waiter_as_from_a_dead_owner";
    let _w = Watchdog::new("condition re-lock naming the waiter", Duration::from_secs(120));
    let name = unique_name("esc-selfword-cond");
    let c = Condition::create(&name, 0u64).unwrap();
    let mut p = Peer::spawn(test, "self-named-cond", &[("NAME", name.clone())]);
    let peer_tid: u32 = p.expect("tid ", Duration::from_secs(30)).trim().parse().unwrap();
    let word = owner_word(p.pid(), peer_tid);
    let mut s = Scribbler::open(&name, 0).expect("map");
    // The area: the condition variable (8 bytes), the mutex (its word first), the value.
    let (lock_word, value) = (TYPED + 8, TYPED + 8 + 24);
    judge(test, vec![("self-named-cond", p)], || {
        // Forge the word while the waiter sleeps (the lock free: 0 or WAITERS), a few
        // times over several naps, so that a write landing in the instant the waiter
        // holds the lock (its unlock then erases it) is not the only one.
        for _ in 0..5 {
            let t = Instant::now();
            while s.read(lock_word, 8).is_some_and(|w| w & !(1 << 63) != 0) && t.elapsed() < NOTICE {
                std::thread::sleep(Duration::from_millis(1));
            }
            s.write("lock word: the waiter itself", lock_word, 8, word);
            std::thread::sleep(Duration::from_millis(150));
        }
        s.write("value", value, 8, 1);
    });
    drop(c);
}

// ---------------------------------------------------------------------------------------
// select over corrupted rings

/// Select (no timeout) over one source until it is ready, then receive from it with a
/// timeout: the receive must report the corruption.
fn selected(ready: Vec<usize>, recv: impl FnOnce() -> Result<String, String>) -> Result<(), String> {
    if ready != [0] {
        return Err(format!("select returned {ready:?}"));
    }
    let outcome = recv()?;
    say(&format!("ended {outcome}"));
    Ok(())
}

fn select_mpmc() -> Result<(), String> {
    let mut rx = mpmc::Consumer::open(&env_str("NAME")).map_err(err)?;
    say("ready");
    let ready = select(&[&rx], None);
    selected(ready, || match rx.pop_timeout(NOTICE) {
        Err(mpmc::PopError::Corrupted(why)) => Ok(format!("corrupted: {why}")),
        other => Err(format!("pop after select: {other:?}")),
    })
}

fn select_spsc() -> Result<(), String> {
    let mut rx = spsc::Consumer::open(&env_str("NAME")).map_err(err)?;
    say("ready");
    let ready = select(&[&rx], None);
    selected(ready, || match rx.recv_timeout(NOTICE) {
        Err(RecvError::Corrupted(why)) => Ok(format!("corrupted: {why}")),
        other => Err(format!("recv after select: {other:?}")),
    })
}

fn select_pipe() -> Result<(), String> {
    let mut c = Connection::open(&env_str("NAME")).map_err(err)?;
    say("ready");
    let ready = select(&[&c], None);
    selected(ready, || match c.recv_timeout::<u64>(NOTICE) {
        Err(e @ ConnError::Corrupted(_)) => Ok(format!("corrupted: {e}")),
        other => Err(format!("recv after select: {other:?}")),
    })
}

/// State C3 (ring/mpmc module docs): on an empty queue (both positions 0), the
/// dequeue position moved to 1, past slot 0, which no producer claimed.
#[test]
fn select_ends_on_an_mpmc_queue_in_state_c3() {
    common::dispatch(run_peer);
    let test = "select_ends_on_an_mpmc_queue_in_state_c3";
    let _w = Watchdog::new("select over C3", Duration::from_secs(120));
    let name = unique_name("esc-select-c3");
    let tx = mpmc::Producer::create(&name, 8, 64).unwrap();
    let mut s = Scribbler::open(&name, 0).expect("map");
    // The enqueue position at the area's start, the dequeue position a line later.
    assert_eq!(s.read(UNTYPED, 8), Some(0), "enqueue position");
    assert_eq!(s.read(UNTYPED + 128, 8), Some(0), "dequeue position");
    let p = Peer::spawn(test, "select-mpmc", &[("NAME", name.clone())]);
    judge(test, vec![("select-mpmc", p)], || {
        s.write("deq past an unclaimed slot (C3)", UNTYPED + 128, 8, 1);
    });
    drop(tx);
}

/// A segment grown by a peer: nothing faults, so only the size check (an fstat on the
/// liveness tick) can tell; the producers stay alive and attached.
#[test]
fn select_ends_on_rings_whose_segment_a_peer_grew() {
    common::dispatch(run_peer);
    let test = "select_ends_on_rings_whose_segment_a_peer_grew";
    let _w = Watchdog::new("select over grown segments", Duration::from_secs(120));
    let (mname, sname, pname) = (
        unique_name("esc-select-mpmc"),
        unique_name("esc-select-spsc"),
        unique_name("esc-select-pipe"),
    );
    let mtx = mpmc::Producer::create(&mname, 8, 64).unwrap();
    let stx = spsc::Producer::create(&sname, 4096).unwrap();
    let pipe = Connection::create(&pname, 4096).unwrap();
    let peers = vec![
        (
            "select-mpmc",
            Peer::spawn(test, "select-mpmc", &[("NAME", mname.clone())]),
        ),
        (
            "select-spsc",
            Peer::spawn(test, "select-spsc", &[("NAME", sname.clone())]),
        ),
        (
            "select-pipe",
            Peer::spawn(test, "select-pipe", &[("NAME", pname.clone())]),
        ),
    ];
    judge(test, peers, || {
        resize(&mname, "grow");
        resize(&sname, "grow");
        resize(&format!("{pname}.a2b"), "grow");
        resize(&format!("{pname}.b2a"), "grow");
    });
    drop((mtx, stx, pipe));
}
