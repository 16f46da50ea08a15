//! Cross-process tests of the robust mutex, the reentrant lock and the condition (issue
//! 4): the test binary re-executes itself as the other processes (`common::spawn_peer`).

use crate::common;

use common::peer::*;
use common::*;
use shmring::sync::{Condition, LockError, Mutex, RLock};
use std::time::{Duration, Instant};

/// The peer roles, dispatched from whichever test re-executed the binary.
fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "incrementer" => incrementer_peer(),
        "holder" => holder_peer(),
        "waiter" => waiter_peer(),
        "rlock-holder" => rlock_holder_peer(),
        "cond-producer" => cond_producer_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

// ---------------------------------------------------------------------------------------
// 4 processes x 250,000 increments of a shared counter

const INCREMENTS: u64 = 250_000;

fn incrementer_peer() -> Result<(), String> {
    let m = Mutex::<u64>::open(&env_str("MUTEX")).map_err(|e| e.to_string())?;
    for _ in 0..INCREMENTS {
        let mut g = m.lock().map_err(|_| "unexpected OwnerDied".to_string())?;
        // A non-atomic read-modify-write: only exclusion keeps the count exact.
        let v = *g;
        *g = v + 1;
    }
    Ok(())
}

#[test]
fn four_processes_count_exactly_under_the_mutex() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("four_processes_count_exactly", Duration::from_secs(180));
    let name = unique_name("mutex-count");
    let m = Mutex::create(&name, 0u64).unwrap();
    let peers: Vec<_> = (0..4)
        .map(|_| {
            Peer::spawn(
                "four_processes_count_exactly_under_the_mutex",
                "incrementer",
                &[("MUTEX", name.clone())],
            )
        })
        .collect();
    for p in peers {
        p.finish(Duration::from_secs(170));
    }
    assert_eq!(m.get(), 4 * INCREMENTS);
    assert!(!m.raw().is_locked());
}

// ---------------------------------------------------------------------------------------
// kill -9 of a holder

/// Lock, say so, and hold the lock until killed.
fn holder_peer() -> Result<(), String> {
    let m = Mutex::<u64>::open(&env_str("MUTEX")).map_err(|e| e.to_string())?;
    let mut g = m.lock().map_err(|_| "unexpected OwnerDied".to_string())?;
    *g = 41;
    say("locked");
    std::thread::sleep(Duration::from_secs(600));
    Err("not killed".into())
}

/// Say "waiting", lock, then report whether the previous holder died (repair and mark
/// consistent if so) and add one.
fn waiter_peer() -> Result<(), String> {
    let m = Mutex::<u64>::open(&env_str("MUTEX")).map_err(|e| e.to_string())?;
    say("waiting");
    let start = Instant::now();
    let mut g = match m.lock() {
        Ok(g) => {
            say("clean");
            g
        }
        Err(died) => {
            let g = died.into_inner();
            g.mark_consistent();
            say(&format!("recovered after {:?}", start.elapsed()));
            g
        }
    };
    *g += 1;
    Ok(())
}

#[test]
fn killed_holder_without_waiters_is_recovered_by_next_locker() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("killed_holder_without_waiters", Duration::from_secs(60));
    let name = unique_name("mutex-kill");
    let m = Mutex::create(&name, 0u64).unwrap();
    let mut holder = Peer::spawn(
        "killed_holder_without_waiters_is_recovered_by_next_locker",
        "holder",
        &[("MUTEX", name.clone())],
    );
    holder.expect("locked", Duration::from_secs(30));
    assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
    // Killed but not reaped: a zombie, which must count as dead.
    holder.kill9_no_reap();
    let pid = holder.pid();
    while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap()
        .contains(") Z ")
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The lock is held by a dead process and nobody waits: the next locker recovers it.
    let start = Instant::now();
    let died = m.lock().expect_err("the holder was killed holding the lock");
    eprintln!("OwnerDied after {:?}", start.elapsed());
    let mut g = died.into_inner();
    assert_eq!(*g, 41, "the dead holder's write is visible to the recoverer");
    *g = 0;
    g.mark_consistent();
    drop(g);
    assert!(m.lock().is_ok(), "consistent again");
    holder.kill9();
}

#[test]
fn lock_recover_takes_a_killed_holders_lock_and_value() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("lock_recover_killed_holder", Duration::from_secs(60));
    let name = unique_name("mutex-recover");
    let m = Mutex::create(&name, 0u64).unwrap();
    let mut holder = Peer::spawn(
        "lock_recover_takes_a_killed_holders_lock_and_value",
        "holder",
        &[("MUTEX", name.clone())],
    );
    holder.expect("locked", Duration::from_secs(30));
    holder.kill9();
    let mut g = m.lock_recover();
    assert_eq!(*g, 41, "the killed holder's value, accepted as it was left");
    *g += 1;
    drop(g);
    assert_eq!(*m.lock().expect("lock_recover marked it consistent"), 42);
}

#[test]
fn killed_holder_with_waiters_is_recovered_by_exactly_one() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("killed_holder_with_waiters", Duration::from_secs(60));
    let name = unique_name("mutex-kill-waiters");
    let m = Mutex::create(&name, 0u64).unwrap();
    let test = "killed_holder_with_waiters_is_recovered_by_exactly_one";
    let mut holder = Peer::spawn(test, "holder", &[("MUTEX", name.clone())]);
    holder.expect("locked", Duration::from_secs(30));
    let mut waiters: Vec<_> = (0..2)
        .map(|_| Peer::spawn(test, "waiter", &[("MUTEX", name.clone())]))
        .collect();
    for w in &mut waiters {
        w.expect("waiting", Duration::from_secs(30));
    }
    // Let both fall asleep on the lock.
    std::thread::sleep(Duration::from_millis(200));
    holder.kill9();
    let mut recovered = 0;
    let mut clean = 0;
    for w in waiters {
        for line in w.finish(Duration::from_secs(30)) {
            if line.starts_with("recovered") {
                eprintln!("waiter {line}");
                recovered += 1;
            } else if line == "clean" {
                clean += 1;
            }
        }
    }
    assert_eq!(
        (recovered, clean),
        (1, 1),
        "one waiter recovers, the other locks cleanly"
    );
    assert_eq!(m.get(), 41 + 2);
}

// ---------------------------------------------------------------------------------------
// RLock across processes

fn rlock_holder_peer() -> Result<(), String> {
    let l = RLock::from_fd(fd_from_env("RLOCK_FD")).map_err(|e| e.to_string())?;
    let a = l.lock().map_err(|_| "OwnerDied")?;
    let b = l.lock().map_err(|_| "OwnerDied")?;
    say("locked twice");
    std::thread::sleep(Duration::from_millis(300));
    drop(b);
    say("released once");
    std::thread::sleep(Duration::from_millis(300));
    drop(a);
    Ok(())
}

#[test]
fn rlock_is_exclusive_across_processes_until_fully_released() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("rlock_across_processes", Duration::from_secs(60));
    let l = RLock::anonymous().unwrap();
    let fd = inheritable(&rustix::io::fcntl_dupfd_cloexec(&l, 3).unwrap());
    let mut p = Peer::spawn(
        "rlock_is_exclusive_across_processes_until_fully_released",
        "rlock-holder",
        &[("RLOCK_FD", fd_string(&fd))],
    );
    drop(fd);
    p.expect("locked twice", Duration::from_secs(30));
    assert!(matches!(l.try_lock(), Err(LockError::WouldBlock)));
    p.expect("released once", Duration::from_secs(30));
    assert!(matches!(l.try_lock(), Err(LockError::WouldBlock)), "still held once");
    p.finish(Duration::from_secs(30));
    let g = l.lock_timeout(Duration::from_secs(10)).expect("released by the peer");
    drop(g);
}

// ---------------------------------------------------------------------------------------
// Condition: a bounded buffer between processes

/// Ring of 8 values plus [produced, consumed] counters, all under the condition's mutex.
type Buffer = [u64; 10];
const ITEMS: u64 = 20_000;

fn cond_producer_peer() -> Result<(), String> {
    let c = Condition::<Buffer>::open(&env_str("COND")).map_err(|e| e.to_string())?;
    for i in 0..ITEMS {
        let mut g = c
            .wait_while(c.lock().map_err(|_| "OwnerDied")?, |b| b[8] - b[9] >= 8)
            .map_err(|_| "OwnerDied")?;
        let slot = (g[8] % 8) as usize;
        g[slot] = i * 3 + 1;
        g[8] += 1;
        c.notify_all();
    }
    Ok(())
}

#[test]
fn condition_carries_a_bounded_buffer_between_processes() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("condition_bounded_buffer", Duration::from_secs(120));
    let name = unique_name("cond");
    let c = Condition::create(&name, [0u64; 10]).unwrap();
    let p = Peer::spawn(
        "condition_carries_a_bounded_buffer_between_processes",
        "cond-producer",
        &[("COND", name.clone())],
    );
    for i in 0..ITEMS {
        let mut g = c.wait_while(c.lock().unwrap(), |b| b[8] == b[9]).unwrap();
        let slot = (g[9] % 8) as usize;
        assert_eq!(g[slot], i * 3 + 1, "item {i}");
        g[9] += 1;
        drop(g);
        c.notify_one();
    }
    p.finish(Duration::from_secs(60));
    let g = c.lock().unwrap();
    assert_eq!((g[8], g[9]), (ITEMS, ITEMS));
}
