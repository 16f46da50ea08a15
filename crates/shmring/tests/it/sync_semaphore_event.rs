//! Cross-process tests of `Semaphore`, `BoundedSemaphore` and `Event`: the test binary
//! re-executes itself as peers (see `common::spawn_peer`), each in its own process, all
//! under a watchdog. Peers report through their exit status (0: every check passed) and
//! through counters in a `SegmentKind::Raw` segment of the test's own.

use crate::common;

use common::*;
use shmring::Error;
use shmring::shm::{Segment, SegmentKind, SegmentOptions};
use shmring::sync::{AcquireError, BoundedSemaphore, Event, ReleaseError, Semaphore};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Helpers

/// Counters shared by the parent and its peers.
const COUNTERS: usize = 4;
/// Index of the "holders now" counter.
const INSIDE: usize = 0;
/// Index of the highest "holders now" any process observed.
const MAX_INSIDE: usize = 1;
/// Index of the count of peers that are ready.
const READY: usize = 2;

/// An anonymous raw segment holding [`COUNTERS`] zeroed `AtomicU32`s.
fn counter_segment() -> Segment {
    let mut seg = Segment::anonymous(SegmentKind::Raw, [0; 8], 128, &SegmentOptions::new()).unwrap();
    seg.publish_ready();
    seg
}

fn counters(seg: &Segment) -> &[AtomicU32; COUNTERS] {
    assert!(seg.area_len() >= std::mem::size_of::<[AtomicU32; COUNTERS]>());
    // SAFETY: the area is at least that large (checked above) and 128-byte aligned;
    // AtomicU32 is valid for any bytes (the fresh file is zeros); the mapping lives as
    // long as `seg`, which the returned reference borrows.
    unsafe { &*(seg.area_ptr() as *const [AtomicU32; COUNTERS]) }
}

/// An inheritable duplicate of `fd` (keep it alive until the children are spawned).
fn pass(fd: impl AsFd) -> OwnedFd {
    inheritable(&fd.as_fd().try_clone_to_owned().unwrap())
}

fn env_str(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("peer needs {var}"))
}

fn env_num(var: &str) -> u64 {
    env_str(var).parse().unwrap_or_else(|_| panic!("{var} is not a number"))
}

fn exit_with(r: Result<(), String>) -> ! {
    match r {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("peer failed: {e}");
            std::process::exit(1)
        }
    }
}

/// Spawn `n` peers of `test` playing `role`, with `env`.
fn spawn_all(test: &str, role: &str, n: usize, env: &[(&str, String)]) -> Vec<Child> {
    (0..n)
        .map(|_| spawn_peer(test, role, env).spawn().expect("spawn peer"))
        .collect()
}

/// Wait for every child; assert that each exited with status 0.
fn join_all(children: Vec<Child>, limit: Duration) {
    for (i, mut c) in children.into_iter().enumerate() {
        let st = wait_child(&mut c, limit);
        assert!(st.success(), "peer {i} failed: {st}");
    }
}

/// Wait (bounded) until `cond` holds.
fn until(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------------------
// 1. Semaphore(2) shared by 5 processes

const HOLDER_ROUNDS: u64 = 400;

/// Open the named semaphore, then repeatedly take a permit, count the holders while
/// holding it, record the highest count seen, and release it.
fn holder_peer() -> Result<(), String> {
    let _dog = Watchdog::new("holder peer", Duration::from_secs(100));
    let sem = Semaphore::open(&env_str("SEM")).map_err(|e| format!("open: {e}"))?;
    let seg = Segment::from_fd(fd_from_env("COUNTERS_FD"), SegmentKind::Raw, &SegmentOptions::new())
        .map_err(|e| format!("counters: {e}"))?;
    let c = counters(&seg);
    for round in 0..env_num("ROUNDS") {
        sem.acquire().map_err(|e| format!("acquire: {e}"))?;
        // SeqCst (all): a plain shared counter; the semaphore orders nothing here.
        let now = c[INSIDE].fetch_add(1, Ordering::SeqCst) + 1;
        c[MAX_INSIDE].fetch_max(now, Ordering::SeqCst);
        // Hold the permit a while, sometimes long enough for the others to sleep.
        if round % 8 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        } else {
            for _ in 0..2_000 {
                std::hint::spin_loop();
            }
        }
        c[INSIDE].fetch_sub(1, Ordering::SeqCst);
        sem.release(1).map_err(|e| format!("release: {e}"))?;
    }
    Ok(())
}

#[test]
fn semaphore_of_two_shared_by_five_processes() {
    const TEST: &str = "semaphore_of_two_shared_by_five_processes";
    if let Some(role) = role() {
        exit_with(match role.as_str() {
            "holder" => holder_peer(),
            other => Err(format!("unknown role {other}")),
        });
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(120));
    let name = unique_name("sem2x5");
    let sem = Semaphore::create(&name, 2).unwrap();
    let seg = counter_segment();
    let fd = pass(&seg);
    let env = [
        ("SEM", name.clone()),
        ("COUNTERS_FD", fd_string(&fd)),
        ("ROUNDS", HOLDER_ROUNDS.to_string()),
    ];
    let children = spawn_all(TEST, "holder", 5, &env);
    drop(fd);
    join_all(children, Duration::from_secs(100));
    let c = counters(&seg);
    let max = c[MAX_INSIDE].load(Ordering::SeqCst);
    eprintln!("most holders at once: {max}");
    assert!(max <= 2, "{max} processes held a permit of a Semaphore(2) at once");
    assert_eq!(
        max, 2,
        "the two permits were never held at once: the check proves nothing"
    );
    assert_eq!(c[INSIDE].load(Ordering::SeqCst), 0);
    assert_eq!(sem.value(), 2, "every permit came back");
}

// ---------------------------------------------------------------------------------------
// 2. Event: four waiting processes wake on one set

/// Open the event (by name, or from a descriptor), report ready, wait for the set.
fn waiter_peer() -> Result<(), String> {
    let _dog = Watchdog::new("waiter peer", Duration::from_secs(60));
    let ev = match std::env::var("EVENT") {
        Ok(name) => Event::open(&name),
        Err(_) => Event::from_fd(fd_from_env("EVENT_FD")),
    }
    .map_err(|e| format!("open event: {e}"))?;
    let seg = Segment::from_fd(fd_from_env("COUNTERS_FD"), SegmentKind::Raw, &SegmentOptions::new())
        .map_err(|e| format!("counters: {e}"))?;
    counters(&seg)[READY].fetch_add(1, Ordering::SeqCst);
    if ev.wait_timeout(Duration::from_secs(40)) {
        Ok(())
    } else {
        Err("not woken within 40 s".into())
    }
}

#[test]
fn event_set_wakes_four_processes() {
    const TEST: &str = "event_set_wakes_four_processes";
    if let Some(role) = role() {
        exit_with(match role.as_str() {
            "waiter" => waiter_peer(),
            other => Err(format!("unknown role {other}")),
        });
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(90));
    let name = unique_name("event4");
    let ev = Event::create(&name).unwrap();
    let seg = counter_segment();
    let fd = pass(&seg);
    let env = [("EVENT", name.clone()), ("COUNTERS_FD", fd_string(&fd))];
    let children = spawn_all(TEST, "waiter", 4, &env);
    drop(fd);
    until("4 waiters ready", Duration::from_secs(30), || {
        counters(&seg)[READY].load(Ordering::SeqCst) == 4
    });
    // Most are asleep by now (not needed for correctness: a late waiter sees the flag).
    until("4 waiters asleep", Duration::from_secs(30), || ev.raw().waiters() == 4);
    ev.set();
    join_all(children, Duration::from_secs(50));
    assert!(ev.is_set());
}

/// A set immediately undone by a clear still wakes every waiter that was registered
/// before it (the generation changed under them), across processes.
#[test]
fn event_pulse_wakes_every_registered_process() {
    const TEST: &str = "event_pulse_wakes_every_registered_process";
    if let Some(role) = role() {
        exit_with(match role.as_str() {
            "waiter" => waiter_peer(),
            other => Err(format!("unknown role {other}")),
        });
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(90));
    let ev = Event::anonymous().unwrap();
    let seg = counter_segment();
    let (efd, cfd) = (pass(&ev), pass(&seg));
    let env = [("EVENT_FD", fd_string(&efd)), ("COUNTERS_FD", fd_string(&cfd))];
    let children = spawn_all(TEST, "waiter", 4, &env);
    drop((efd, cfd));
    // Registered waiters took their snapshot before registering: the pulse reaches them.
    until("4 waiters registered", Duration::from_secs(30), || {
        ev.raw().waiters() == 4
    });
    ev.set();
    ev.clear();
    join_all(children, Duration::from_secs(50));
    assert!(!ev.is_set());
}

// ---------------------------------------------------------------------------------------
// 3. BoundedSemaphore over-release, wrong-type opens and timeouts, from another process

/// Open the bounded semaphore and the event by name and check over-release, wrong-type
/// opens and timeouts from this process.
fn bounded_peer() -> Result<(), String> {
    let _dog = Watchdog::new("bounded peer", Duration::from_secs(60));
    let name = env_str("SEM");
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_owned()) };
    check(
        matches!(Semaphore::open(&name), Err(Error::WrongKind { .. })),
        "a BoundedSemaphore opened as a Semaphore",
    )?;
    let sem = BoundedSemaphore::open(&name).map_err(|e| format!("open: {e}"))?;
    check(sem.bound() == 2 && sem.value() == 2, "bound and value")?;
    check(
        sem.release(1) == Err(ReleaseError::AboveBound),
        "release above the bound",
    )?;
    check(sem.value() == 2, "a refused release changed the value")?;
    sem.acquire().map_err(|e| e.to_string())?;
    sem.acquire().map_err(|e| e.to_string())?;
    check(sem.try_acquire() == Err(AcquireError::WouldBlock), "try_acquire at 0")?;
    check(
        sem.acquire_timeout(Duration::from_millis(30)) == Err(AcquireError::Timeout),
        "acquire_timeout at 0",
    )?;
    check(sem.release(3) == Err(ReleaseError::AboveBound), "release(3) from 0")?;
    check(sem.value() == 0, "a refused release changed the value")?;
    sem.release(2).map_err(|e| e.to_string())?;
    check(
        sem.release(1) == Err(ReleaseError::AboveBound),
        "release above the bound",
    )?;
    // Take one permit and leave it taken: the parent sees value 1.
    sem.acquire().map_err(|e| e.to_string())?;
    let ev = Event::open(&env_str("EVENT")).map_err(|e| format!("open event: {e}"))?;
    check(
        !ev.wait_timeout(Duration::from_millis(30)),
        "wait_timeout on a clear event",
    )?;
    ev.set();
    Ok(())
}

#[test]
fn bounded_over_release_and_timeouts_across_processes() {
    const TEST: &str = "bounded_over_release_and_timeouts_across_processes";
    if let Some(role) = role() {
        exit_with(match role.as_str() {
            "bounded" => bounded_peer(),
            other => Err(format!("unknown role {other}")),
        });
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(90));
    let name = unique_name("bsem");
    let ev_name = unique_name("bsem-ev");
    let sem = BoundedSemaphore::create(&name, 2).unwrap();
    let ev = Event::create(&ev_name).unwrap();
    // The same checks here, before the peer runs.
    assert_eq!(sem.release(1), Err(ReleaseError::AboveBound));
    assert!(!ev.wait_timeout(Duration::from_millis(10)));
    let env = [("SEM", name.clone()), ("EVENT", ev_name.clone())];
    join_all(spawn_all(TEST, "bounded", 1, &env), Duration::from_secs(60));
    assert_eq!(sem.value(), 1, "the peer's permit is still taken");
    assert!(ev.is_set(), "the peer's set is seen here");
    sem.release(1).unwrap();
    assert_eq!(sem.release(1), Err(ReleaseError::AboveBound));
    // A semaphore that stays at 0 times out here too, and the name is unlinked on drop.
    let zero = Semaphore::anonymous(0).unwrap();
    assert_eq!(
        zero.acquire_timeout(Duration::from_millis(10)),
        Err(AcquireError::Timeout)
    );
    drop((sem, ev));
    assert!(matches!(BoundedSemaphore::open(&name), Err(Error::NotFound { .. })));
    assert!(matches!(Event::open(&ev_name), Err(Error::NotFound { .. })));
}

/// A sleeper in another process is woken by a release here (and a timed acquire that
/// gets its permit in time returns `Ok`).
#[test]
fn release_wakes_a_sleeping_process() {
    const TEST: &str = "release_wakes_a_sleeping_process";
    if let Some(role) = role() {
        exit_with(match role.as_str() {
            "sleeper" => (|| {
                let _dog = Watchdog::new("sleeper peer", Duration::from_secs(60));
                let sem = Semaphore::from_fd(fd_from_env("SEM_FD")).map_err(|e| e.to_string())?;
                let seg = Segment::from_fd(fd_from_env("COUNTERS_FD"), SegmentKind::Raw, &SegmentOptions::new())
                    .map_err(|e| e.to_string())?;
                counters(&seg)[READY].fetch_add(1, Ordering::SeqCst);
                sem.acquire_timeout(Duration::from_secs(40))
                    .map_err(|e| e.to_string())?;
                sem.acquire().map_err(|e| e.to_string())
            })(),
            other => Err(format!("unknown role {other}")),
        });
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(90));
    let sem = Semaphore::anonymous(0).unwrap();
    let seg = counter_segment();
    let (sfd, cfd) = (pass(&sem), pass(&seg));
    let env = [("SEM_FD", fd_string(&sfd)), ("COUNTERS_FD", fd_string(&cfd))];
    let children = spawn_all(TEST, "sleeper", 1, &env);
    drop((sfd, cfd));
    until("sleeper ready", Duration::from_secs(30), || {
        counters(&seg)[READY].load(Ordering::SeqCst) == 1
    });
    std::thread::sleep(Duration::from_millis(20));
    sem.release(2).unwrap();
    join_all(children, Duration::from_secs(50));
    assert_eq!(sem.value(), 0);
}
