//! Finding each other by name (`open_or_create`, `open_wait`) across real processes:
//! the test binary re-executes itself as the other program (`common::spawn_peer`),
//! every test under a watchdog.

use crate::common;

use common::peer::*;
use common::*;
use shmring::ring::{mpmc, spsc};
use shmring::sync::Event;
use shmring::{Connection, Error, Queue, Value};
use std::time::{Duration, Instant};

/// The peer roles, dispatched from whichever test re-executed the binary.
fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "racer" => race(&env_str("BASE"), env_num("ROUNDS"), false).map(|rounds| {
            for (i, r) in rounds.iter().enumerate() {
                say(&format!("round {i} {} {} {} {}", r[0], r[1], r[2], r[3]));
            }
        }),
        "waiter" => waiter_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Wait until `v` holds at least `n`, for at most 30 s (two processes that did not
/// find the same object never get there).
fn wait_for(v: &Value<u64>, n: u64, what: &str) -> Result<(), String> {
    let start = Instant::now();
    while v.load() < n {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("{what}: the counter stayed at {} (< {n})", v.load()));
        }
        // Yield, not sleep: both processes leave the last meeting of a round at about
        // the same time, so that the next round's open_or_create calls really race.
        std::thread::yield_now();
    }
    Ok(())
}

/// `rounds` rounds of racing the other process: each round, both call
/// `open_or_create` on four fresh names (a `Value`, a `Queue`, an SPSC ring whose
/// producer is `producer` here and the consumer there, a named `Connection`), meet on
/// the value, and use the others. Returns, per round, whether this process created
/// each.
fn race(base: &str, rounds: u64, producer: bool) -> Result<Vec<[bool; 4]>, String> {
    let mut out = Vec::new();
    for i in 0..rounds {
        let (v, cv) = Value::<u64>::open_or_create(&format!("{base}-v{i}"), 0).map_err(err)?;
        let (mut q, cq) = Queue::<u64>::open_or_create(&format!("{base}-q{i}"), 4).map_err(err)?;
        let (mut c, cc) = Connection::open_or_create(&format!("{base}-c{i}"), 4096).map_err(err)?;
        let ring = format!("{base}-r{i}");
        let cr = if producer {
            let (mut tx, cr) = spsc::Producer::open_or_create(&ring, 4096).map_err(err)?;
            v.fetch_add(1);
            wait_for(&v, 2, "attached")?;
            tx.send(&i.to_le_bytes()).map_err(err)?;
            cr
        } else {
            let (mut rx, cr) = spsc::Consumer::open_or_create(&ring, 4096).map_err(err)?;
            v.fetch_add(1);
            wait_for(&v, 2, "attached")?;
            let got = rx.recv_timeout(Duration::from_secs(30)).map_err(err)?;
            if got != i.to_le_bytes() {
                return Err(format!("round {i}: ring message {got:?}"));
            }
            cr
        };
        c.send(&(i, producer)).map_err(err)?;
        let got: (u64, bool) = c.recv_timeout(Duration::from_secs(30)).map_err(err)?;
        if got != (i, !producer) {
            return Err(format!("round {i}: connection message {got:?}"));
        }
        q.put(&i).map_err(err)?;
        v.fetch_add(1);
        wait_for(&v, 4, "put")?;
        // Two items are queued, one from each process: each takes one.
        let got = q.get_timeout(Duration::from_secs(30)).map_err(err)?;
        if got != i {
            return Err(format!("round {i}: queue item {got}"));
        }
        v.fetch_add(1);
        // The creators drop last, so that no name is unlinked under a process that
        // has yet to find it.
        wait_for(&v, 6, "got")?;
        out.push([cv, cq, cr, cc]);
    }
    Ok(out)
}

#[test]
fn open_or_create_races_between_processes_end_with_one_creator() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("open_or_create_races", Duration::from_secs(240));
    const ROUNDS: u64 = 100;
    let base = unique_name("race");
    let peer = Peer::spawn(
        "open_or_create_races_between_processes_end_with_one_creator",
        "racer",
        &[("BASE", base.clone()), ("ROUNDS", ROUNDS.to_string())],
    );
    let mine = race(&base, ROUNDS, true).unwrap();
    let lines = peer.finish(Duration::from_secs(120));
    let theirs: Vec<[bool; 4]> = lines
        .iter()
        // The first line also carries the test harness's "test ... " prefix.
        .filter_map(|l| l.split_once("round ").map(|(_, r)| r))
        .map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            [w[1] == "true", w[2] == "true", w[3] == "true", w[4] == "true"]
        })
        .collect();
    assert_eq!(theirs.len(), ROUNDS as usize, "{lines:?}");
    let mut won = [0; 4];
    for (i, (a, b)) in mine.iter().zip(&theirs).enumerate() {
        for k in 0..4 {
            assert!(
                a[k] != b[k],
                "round {i}, object {k}: created here {}, there {}",
                a[k],
                b[k]
            );
            won[k] += usize::from(a[k]);
        }
    }
    eprintln!("rounds created here (value, queue, ring, connection): {won:?} of {ROUNDS}");
    for k in 0..4 {
        let name = format!("{base}-{}", ["v0", "q0", "r0", "c0.a2b"][k]);
        assert!(
            matches!(shmring::shm::unlink(&name), Err(Error::NotFound { .. })),
            "{name} left behind"
        );
    }
}

/// Announce, then wait (up to 60 s each) for a value, a queue, an MPMC queue and a
/// named connection that the parent creates after the announcement.
fn waiter_peer() -> Result<(), String> {
    let base = env_str("BASE");
    let limit = Duration::from_secs(60);
    say("waiting");
    let v = Value::<u64>::open_wait(&format!("{base}-v"), limit).map_err(err)?;
    let mut q = Queue::<u64>::open_wait(&format!("{base}-q"), limit).map_err(err)?;
    let mut rx = mpmc::Consumer::open_wait(&format!("{base}-m"), limit).map_err(err)?;
    let mut c = Connection::open_wait(&format!("{base}-c"), limit).map_err(err)?;
    let got = (
        v.load(),
        q.get().map_err(err)?,
        rx.pop().map_err(err)?,
        c.recv::<u32>().map_err(err)?,
    );
    if got != (42, 7, b"ring".to_vec(), 5) {
        return Err(format!("found {got:?}"));
    }
    v.store(43);
    say("found");
    Ok(())
}

#[test]
fn open_wait_finds_objects_created_after_it_started() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("open_wait_finds_objects", Duration::from_secs(180));
    let base = unique_name("wait");
    let mut peer = Peer::spawn(
        "open_wait_finds_objects_created_after_it_started",
        "waiter",
        &[("BASE", base.clone())],
    );
    peer.expect("waiting", Duration::from_secs(60));
    // Let the waiter find nothing a few times first.
    std::thread::sleep(Duration::from_millis(50));
    let v = Value::<u64>::create(&format!("{base}-v"), 42).unwrap();
    let mut q = Queue::<u64>::create(&format!("{base}-q"), 4).unwrap();
    q.put(&7).unwrap();
    let mut tx = mpmc::Producer::create(&format!("{base}-m"), 4, 64).unwrap();
    tx.push(b"ring").unwrap();
    let mut c = Connection::create(&format!("{base}-c"), 4096).unwrap();
    c.send(&5u32).unwrap();
    peer.expect("found", Duration::from_secs(60));
    peer.finish(Duration::from_secs(60));
    assert_eq!(v.load(), 43);
}

#[test]
fn open_wait_times_out_cleanly_and_other_errors_return_at_once() {
    let _w = Watchdog::new("open_wait_times_out", Duration::from_secs(60));
    let name = unique_name("never");
    let t = Duration::from_millis(30);
    assert!(matches!(Value::<u64>::open_wait(&name, t), Err(Error::NotFound { .. })));
    assert!(matches!(Queue::<u64>::open_wait(&name, t), Err(Error::NotFound { .. })));
    assert!(matches!(
        spsc::Consumer::open_wait(&name, t),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        Event::open_wait(&name, Duration::ZERO),
        Err(Error::NotFound { .. })
    ));
    // Another kind under the name: the error of `open`, at once (the watchdog would
    // catch a wait for the whole hour).
    let _e = Event::create(&name).unwrap();
    let hour = Duration::from_secs(3600);
    assert!(matches!(
        Value::<u64>::open_wait(&name, hour),
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        spsc::Producer::open_wait(&name, hour),
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        Value::<u64>::open_or_create(&name, 0),
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        Queue::<u64>::open_or_create(&name, 4),
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(
        spsc::Producer::open_or_create(&name, 4096),
        Err(Error::WrongKind { .. })
    ));
    // The same kind with another element type: refused as by open.
    let vname = unique_name("typed");
    let (_v, created) = Value::<u64>::open_or_create(&vname, 1).unwrap();
    assert!(created);
    assert_eq!(
        Value::<u32>::open_or_create(&vname, 1)
            .map(|_| ())
            .unwrap_err()
            .to_string(),
        Value::<u32>::open(&vname).map(|_| ()).unwrap_err().to_string()
    );
    // A role already held: refused as by open.
    let rname = unique_name("role");
    let (_tx, created) = spsc::Producer::open_or_create(&rname, 4096).unwrap();
    assert!(created);
    assert!(matches!(
        spsc::Producer::open_or_create(&rname, 4096),
        Err(Error::AlreadyAttached { .. })
    ));
}
