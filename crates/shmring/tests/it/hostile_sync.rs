//! The hostile neighbour against the synchronization objects and Value/Array (issue 16):
//! honest processes use a named object while this process scribbles random and targeted
//! words into its segment (`crate::hostile`). Pass: every honest process exits normally
//! having seen only `Ok` or documented errors; none hangs past its watchdog; none dies of
//! a signal. Then the segment is truncated under them: every honest process, blocked or
//! not, ends with an error or a documented result within its watchdog.
//!
//! Each honest peer works until a deadline (`HOSTILE_MS`), with timed calls where the
//! protocol allows a valid state in which nobody will ever wake the caller (a permit
//! lost to an overwritten count, an event nobody sets, a barrier party missing) and with
//! blocking calls where every such state has an exit (a lock word naming a dead thread
//! is recovered; a seqlock left odd is repaired).
//!
//! `SHMRING_HOSTILE_SEED` replays a run; the long variant (`--ignored`) scribbles
//! `SHMRING_HOSTILE_ROUNDS` rounds of 2 s per kind.

use crate::common::peer::*;
use crate::common::*;
use crate::hostile::{self, Scribbler, Target};
use shmring::Value;
use shmring::sync::{
    AcquireError, Barrier, BarrierError, BoundedSemaphore, Condition, Event, LockError, Mutex, RLock, Semaphore,
};
use shmring::value::Array;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The peer roles, dispatched from whichever test re-executed the binary.
fn run_peer(role: &str) -> ! {
    let name = env_str("NAME");
    let until = Instant::now() + Duration::from_millis(env_num("HOSTILE_MS"));
    let mut t = Tally::default();
    let r = match role {
        "mutex" => mutex_peer(&name, until, &mut t),
        "rlock" => rlock_peer(&name, until, &mut t),
        "semaphore" => semaphore_peer(&name, until, &mut t, false),
        "bounded" => semaphore_peer(&name, until, &mut t, true),
        "event-setter" => event_setter(&name, until, &mut t),
        "event-waiter" => event_waiter(&name, until, &mut t),
        "cond-producer" => cond_peer(&name, until, &mut t, true),
        "cond-consumer" => cond_peer(&name, until, &mut t, false),
        "barrier" => barrier_peer(&name, until, &mut t),
        "value" => value_peer(&name, until, &mut t),
        "array" => array_peer(&name, until, &mut t),
        other => Err(format!("unknown role {other}")),
    };
    say(&format!("tally {role}: {:?}", t.0));
    exit_with(r)
}

/// What an honest peer saw: outcome name -> count.
#[derive(Default)]
struct Tally(BTreeMap<&'static str, u64>);

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }
}

const TIMED: Duration = Duration::from_millis(200);

/// The opened object, once the peer said `ready` (the scribbling starts after every
/// peer opened: an open refused because the scribbler already corrupted the header's
/// copy of a parameter is a documented error, but not the one under test).
fn opened<T>(r: shmring::Result<T>) -> Result<T, String> {
    let t = r.map_err(|e| format!("open: {e}"))?;
    say("ready");
    Ok(t)
}

/// A lock outcome, tallied: the documented ones all are fine (a guard from a dead
/// owner is marked consistent again, as a repairing holder would).
fn lock_outcome<G>(t: &mut Tally, r: Result<G, LockError<G>>, consistent: impl FnOnce(&G)) -> Option<G> {
    match r {
        Ok(g) => {
            t.add("ok");
            Some(g)
        }
        Err(LockError::OwnerDied(d)) => {
            t.add("owner-died");
            let g = d.into_inner();
            consistent(&g);
            Some(g)
        }
        Err(LockError::Timeout) => {
            t.add("timeout");
            None
        }
        Err(LockError::WouldBlock) => {
            t.add("would-block");
            None
        }
        Err(LockError::Interrupted) => {
            t.add("interrupted");
            None
        }
        Err(LockError::Corrupted) => {
            t.add("corrupted");
            None
        }
    }
}

fn mutex_peer(name: &str, until: Instant, t: &mut Tally) -> Result<(), String> {
    let m = opened(Mutex::<u64>::open(name))?;
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        let g = if i % 3 == 0 {
            // Blocking: every lock word a peer can write has an exit (dead owners are
            // recovered), so this must return.
            match m.lock() {
                Ok(g) => {
                    t.add("ok");
                    Some(g)
                }
                Err(d) => {
                    t.add("owner-died");
                    let g = d.into_inner();
                    g.mark_consistent();
                    Some(g)
                }
            }
        } else if i % 3 == 1 {
            lock_outcome(t, m.lock_timeout(TIMED), |g| g.mark_consistent())
        } else {
            lock_outcome(t, m.try_lock(), |g| g.mark_consistent())
        };
        if let Some(mut g) = g {
            *g = g.wrapping_add(1);
        }
    }
    Ok(())
}

fn rlock_peer(name: &str, until: Instant, t: &mut Tally) -> Result<(), String> {
    let l = opened(RLock::open(name))?;
    while Instant::now() < until {
        if let Some(outer) = lock_outcome(t, l.lock_timeout(TIMED), |g| g.mark_consistent()) {
            // Nested acquisitions by the holder.
            let inner = lock_outcome(t, l.lock_timeout(TIMED), |g| g.mark_consistent());
            let inner2 = lock_outcome(t, l.try_lock(), |g| g.mark_consistent());
            drop(inner2);
            drop(inner);
            drop(outer);
        }
    }
    Ok(())
}

fn acquire_outcome(t: &mut Tally, r: Result<(), AcquireError>) -> bool {
    match r {
        Ok(()) => {
            t.add("ok");
            true
        }
        Err(AcquireError::Timeout) => {
            t.add("timeout");
            false
        }
        Err(AcquireError::WouldBlock) => {
            t.add("would-block");
            false
        }
        Err(AcquireError::Corrupted) => {
            t.add("corrupted");
            false
        }
        Err(AcquireError::Interrupted) => {
            t.add("interrupted");
            false
        }
    }
}

fn semaphore_peer(name: &str, until: Instant, t: &mut Tally, bounded: bool) -> Result<(), String> {
    if bounded {
        let s = opened(BoundedSemaphore::open(name))?;
        semaphore_loop(
            until,
            t,
            |d| s.acquire_timeout(d),
            || s.try_acquire(),
            || s.release(1).is_ok(),
        );
    } else {
        let s = opened(Semaphore::open(name))?;
        semaphore_loop(
            until,
            t,
            |d| s.acquire_timeout(d),
            || s.try_acquire(),
            || s.release(1).is_ok(),
        );
    }
    Ok(())
}

fn semaphore_loop(
    until: Instant,
    t: &mut Tally,
    acq: impl Fn(Duration) -> Result<(), AcquireError>,
    try_acq: impl Fn() -> Result<(), AcquireError>,
    rel: impl Fn() -> bool,
) {
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        let got = if i % 2 == 0 { acq(TIMED) } else { try_acq() };
        if acquire_outcome(t, got) {
            // A refused release is documented: a bound or u32::MAX exceeded (the count
            // was overwritten upwards meanwhile), or the words are corrupted.
            t.add(if rel() { "released" } else { "release-refused" });
        }
    }
}

fn event_setter(name: &str, until: Instant, t: &mut Tally) -> Result<(), String> {
    let e = opened(Event::open(name))?;
    // Past the waiters' deadline, so that a waiter blocked in `wait` is released.
    let until = until + Duration::from_secs(1);
    while Instant::now() < until {
        e.set();
        std::thread::sleep(Duration::from_millis(2));
        e.clear();
        t.add("pulse");
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

fn event_waiter(name: &str, until: Instant, t: &mut Tally) -> Result<(), String> {
    let e = opened(Event::open(name))?;
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        if i % 2 == 0 {
            // Blocking: the setter sets every few ms until after our deadline; a
            // mapping poisoned under us must end the wait too.
            t.add(if e.wait() { "set" } else { "never-set" });
        } else {
            t.add(if e.wait_timeout(TIMED) { "set" } else { "not-set" });
        }
    }
    Ok(())
}

fn cond_peer(name: &str, until: Instant, t: &mut Tally, producer: bool) -> Result<(), String> {
    let c = opened(Condition::<u64>::open(name))?;
    while Instant::now() < until {
        let Some(mut g) = lock_outcome(t, c.lock_timeout(TIMED), |g| g.mark_consistent()) else {
            continue;
        };
        if producer {
            *g = g.wrapping_add(1);
            drop(g);
            c.notify_all();
            std::thread::sleep(Duration::from_millis(1));
        } else {
            let seen = *g;
            match c.wait_timeout_while(g, TIMED, |v| *v == seen) {
                Ok((_, r)) => t.add(if r.timed_out() { "wait-timeout" } else { "woken" }),
                Err(d) => {
                    t.add("owner-died");
                    d.into_inner().0.mark_consistent();
                }
            }
        }
    }
    Ok(())
}

fn barrier_peer(name: &str, until: Instant, t: &mut Tally) -> Result<(), String> {
    let b = opened(Barrier::open(name))?;
    while Instant::now() < until {
        match b.wait_timeout(TIMED) {
            Ok(_) => t.add("ok"),
            Err(BarrierError::Broken) => {
                t.add("broken");
                b.reset();
            }
            Err(BarrierError::Timeout) => {
                t.add("timeout");
                b.reset();
            }
            Err(BarrierError::Corrupted(_)) => {
                t.add("corrupted");
                b.reset();
            }
            Err(_) => t.add("other-documented"),
        }
    }
    Ok(())
}

fn value_peer(name: &str, until: Instant, t: &mut Tally) -> Result<(), String> {
    let v = opened(Value::<[u64; 3]>::open(name))?;
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        // All blocking: a seqlock left odd, or a writer lock naming a dead thread, is
        // repaired (flagged torn); a live writer finishes.
        match i % 3 {
            0 => v.store([i, i, i]),
            1 => t.add(if v.load_checked().is_ok() { "load" } else { "torn" }),
            _ => {
                let mut g = v.get_lock();
                g[0] = g[0].wrapping_add(1);
                if g.is_torn() {
                    t.add("guard-torn");
                    g.mark_consistent();
                }
            }
        }
        t.add("op");
    }
    Ok(())
}

fn array_peer(name: &str, until: Instant, t: &mut Tally) -> Result<(), String> {
    let a = opened(Array::<u64>::open(name))?;
    let n = a.len();
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        let k = (i as usize) % n;
        match i % 4 {
            0 => a
                .copy_from_slice(&vec![i; n])
                .map_err(|e| format!("copy_from_slice: {e}"))?,
            1 => {
                a.fetch_add(k, 1).map_err(|e| format!("fetch_add: {e}"))?;
            }
            2 => t.add(if a.to_vec_checked().is_ok() { "snapshot" } else { "torn" }),
            _ => {
                a.get(k).map_err(|e| format!("get: {e}"))?;
            }
        }
        t.add("op");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The driver

/// One kind under attack: the roles of its honest peers, the words to aim at (offsets
/// from the start of the segment file) and the byte range of its state.
struct Scene {
    kind: &'static str,
    roles: &'static [&'static str],
    targets: Vec<Target>,
    state: std::ops::Range<usize>,
}

/// Where a kind's area starts in its file: after the 128-byte header, and the 256-byte
/// type record of a typed object.
const UNTYPED: usize = 128;
const TYPED: usize = 128 + 256;

fn lock_targets(at: usize, with_depth: bool) -> Vec<Target> {
    let dead_owner = 0x7fff_fffe_0000_0001u64;
    let waiters = 1u64 << 63;
    let mut t = vec![
        Target::u64("lock word", at, &[0, waiters, dead_owner, dead_owner | waiters]),
        Target::u32("lock seq", at + 8, &[0]),
        Target::u32("lock state", at + 12, &[0, 1]),
    ];
    if with_depth {
        t.push(Target::u32("rlock depth", at + 16, &[0, 1, u64::from(u32::MAX)]));
    }
    t
}

fn scene(kind: &'static str) -> Scene {
    match kind {
        "mutex" => Scene {
            kind,
            roles: &["mutex", "mutex", "mutex"],
            targets: lock_targets(TYPED, false),
            state: TYPED..TYPED + 32,
        },
        "rlock" => Scene {
            kind,
            roles: &["rlock", "rlock", "rlock"],
            targets: lock_targets(UNTYPED, true),
            state: UNTYPED..UNTYPED + 24,
        },
        "semaphore" | "bounded" => Scene {
            kind,
            roles: if kind == "bounded" {
                &["bounded", "bounded", "bounded"]
            } else {
                &["semaphore", "semaphore", "semaphore"]
            },
            targets: vec![
                Target::u32("value", UNTYPED, &[0, 1, 2, 3, u64::from(u32::MAX)]),
                Target::u32("waiters", UNTYPED + 4, &[0, u64::from(u32::MAX)]),
                Target::u32("bound", UNTYPED + 8, &[0, 2]),
                Target::u32("flags", UNTYPED + 12, &[0, 1, 2]),
            ],
            state: UNTYPED..UNTYPED + 16,
        },
        "event" => Scene {
            kind,
            roles: &["event-setter", "event-waiter", "event-waiter"],
            targets: vec![
                Target::u32("state", UNTYPED, &[0, 1, 2, 3]),
                Target::u32("waiters", UNTYPED + 4, &[0, u64::from(u32::MAX)]),
            ],
            state: UNTYPED..UNTYPED + 8,
        },
        "condition" => {
            let mut targets = vec![
                Target::u32("cv seq", TYPED, &[0]),
                Target::u32("cv waiters", TYPED + 4, &[0, u64::from(u32::MAX)]),
            ];
            targets.extend(lock_targets(TYPED + 8, false));
            Scene {
                kind,
                roles: &["cond-producer", "cond-consumer", "cond-consumer"],
                targets,
                state: TYPED..TYPED + 40,
            }
        }
        "barrier" => {
            let gen1 = 1u64 << 16;
            Scene {
                kind,
                roles: &["barrier", "barrier", "barrier"],
                targets: vec![
                    Target::u64("state", UNTYPED, &[0, 1, 2, 3, gen1, gen1 | 2, 1 << 63, 1 << 48]),
                    Target::u32("seq", UNTYPED + 8, &[0]),
                    Target::u32("parties", UNTYPED + 12, &[0, 1, 3, 0xffff, 0x10000]),
                    Target::u64("reset log", UNTYPED + 128, &[0, 1 << 32]),
                    Target::u64("party table", UNTYPED + 256, &[0, 1, 1 << 63]),
                ],
                state: UNTYPED..UNTYPED + 768,
            }
        }
        "value" | "array" => {
            let mut targets = lock_targets(TYPED, false);
            targets.push(Target::u64("seqlock seq", TYPED + 24, &[0, 1, 2, 3]));
            targets.push(Target::u32("torn", TYPED + 32, &[0, 1]));
            Scene {
                kind,
                roles: if kind == "value" {
                    &["value", "value", "value"]
                } else {
                    &["array", "array", "array"]
                },
                targets,
                state: TYPED..TYPED + 128 + 64,
            }
        }
        other => panic!("no scene {other}"),
    }
}

/// Create the object `kind` named `name`; the handle keeps it alive.
fn create(kind: &str, name: &str) -> Box<dyn std::any::Any> {
    match kind {
        "mutex" => Box::new(Mutex::create(name, 0u64).unwrap()),
        "rlock" => Box::new(RLock::create(name).unwrap()),
        "semaphore" => Box::new(Semaphore::create(name, 2).unwrap()),
        "bounded" => Box::new(BoundedSemaphore::create(name, 2).unwrap()),
        "event" => Box::new(Event::create(name).unwrap()),
        "condition" => Box::new(Condition::create(name, 0u64).unwrap()),
        "barrier" => Box::new(Barrier::create(name, 3).unwrap()),
        "value" => Box::new(Value::create(name, [0u64; 3]).unwrap()),
        "array" => Box::new(Array::create(name, &[0u64; 8]).unwrap()),
        other => panic!("no kind {other}"),
    }
}

/// One round against `kind`: honest peers work for `ms`, scribbled at for most of it;
/// with `truncate`, the file is then cut to zero while they still work. Returns the
/// verdicts' failures.
fn round(test: &str, kind: &'static str, seed: u64, ms: u64, truncate: bool) -> Vec<String> {
    let sc = scene(kind);
    let name = unique_name(&format!("hostile-{kind}"));
    let obj = create(kind, &name);
    // A barrier counts every handle: the creator is a party that never arrives. Let
    // only the peers count: parties 3 is for the three peers, and the creator's handle
    // is dropped once they have opened (they reset the barrier on a timeout).
    let peers: Vec<Peer> = sc
        .roles
        .iter()
        .map(|role| {
            Peer::spawn(
                test,
                role,
                &[
                    ("NAME", name.clone()),
                    ("HOSTILE_MS", ms.to_string()),
                    ("SHMRING_HOSTILE_SEED", seed.to_string()),
                ],
            )
        })
        .collect();
    let mut peers = peers;
    for p in &mut peers {
        p.expect("ready", Duration::from_secs(20));
    }
    let mut s = Scribbler::open(&name, seed).expect("map the segment");
    let start = Instant::now();
    let scribble_for = Duration::from_millis(ms * 7 / 10);
    while start.elapsed() < scribble_for {
        s.scribble(20, &sc.targets, sc.state.clone(), Duration::from_micros(200));
    }
    if truncate {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/dev/shm/{name}"))
            .expect("open to truncate");
        f.set_len(0).expect("truncate");
        s.log.push_back("truncated the file to 0".into());
    }
    let recent = s.recent();
    drop(s);
    let mut failures = Vec::new();
    for (i, p) in peers.into_iter().enumerate() {
        let what = format!("{} peer {i} ({})", sc.kind, sc.roles[i]);
        // The peers stop at their deadline; a call may then take one more timed wait.
        let (st, lines) = p.exit(Duration::from_millis(ms) + Duration::from_secs(10));
        eprintln!("{what}: {}", lines.join(" | "));
        if let Err(e) = hostile::judge(&what, st, &recent) {
            failures.push(e);
        }
    }
    drop(obj);
    failures
}

fn attack(test: &str, kinds: &[&'static str], rounds: u64, ms: u64) {
    common_dispatch();
    let seed = hostile::seed(test);
    let mut failures = Vec::new();
    for r in 0..rounds {
        for (k, kind) in kinds.iter().enumerate() {
            let s = seed.wrapping_add(r * 64 + k as u64);
            failures.extend(round(test, kind, s, ms, false));
        }
    }
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
}

fn common_dispatch() {
    crate::common::dispatch(run_peer);
}

const KINDS: &[&str] = &[
    "mutex",
    "rlock",
    "semaphore",
    "bounded",
    "event",
    "condition",
    "barrier",
    "value",
    "array",
];

#[test]
fn locks_survive_a_hostile_neighbour() {
    common_dispatch();
    let _w = Watchdog::new("locks_survive_a_hostile_neighbour", Duration::from_secs(120));
    attack(
        "locks_survive_a_hostile_neighbour",
        &["mutex", "rlock", "condition"],
        1,
        1500,
    );
}

#[test]
fn counters_and_flags_survive_a_hostile_neighbour() {
    common_dispatch();
    let _w = Watchdog::new(
        "counters_and_flags_survive_a_hostile_neighbour",
        Duration::from_secs(120),
    );
    attack(
        "counters_and_flags_survive_a_hostile_neighbour",
        &["semaphore", "bounded", "event", "barrier"],
        1,
        1500,
    );
}

#[test]
fn values_survive_a_hostile_neighbour() {
    common_dispatch();
    let _w = Watchdog::new("values_survive_a_hostile_neighbour", Duration::from_secs(120));
    attack("values_survive_a_hostile_neighbour", &["value", "array"], 1, 1500);
}

/// Scribbled at, then truncated to zero under honest peers still working: each must
/// end normally (the calls report the poisoned mapping or keep working on its private
/// zeros as their docs say), none may hang or die.
#[test]
fn every_kind_survives_truncation_after_scribbling() {
    common_dispatch();
    let test = "every_kind_survives_truncation_after_scribbling";
    let _w = Watchdog::new(
        "every_kind_survives_truncation_after_scribbling",
        Duration::from_secs(240),
    );
    let seed = hostile::seed(test);
    let mut failures = Vec::new();
    for (k, kind) in KINDS.iter().enumerate() {
        failures.extend(round(test, kind, seed.wrapping_add(k as u64), 1000, true));
    }
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
}

/// The long run: `SHMRING_HOSTILE_ROUNDS` (default 20) rounds of 2 s per kind.
#[test]
#[ignore = "long: SHMRING_HOSTILE_ROUNDS rounds of 2 s per kind"]
fn every_kind_survives_a_long_hostile_neighbour() {
    common_dispatch();
    let rounds = hostile::rounds(20);
    let _w = Watchdog::new(
        "every_kind_survives_a_long_hostile_neighbour",
        Duration::from_secs(60 + rounds * 40 * KINDS.len() as u64),
    );
    attack("every_kind_survives_a_long_hostile_neighbour", KINDS, rounds, 2000);
}
