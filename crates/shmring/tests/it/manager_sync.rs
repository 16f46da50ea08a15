//! Cross-process tests of the manager's server-side synchronization objects (queue,
//! rlock, semaphore, event, value, barrier, condition): servers in this process or in
//! a re-executed copy of the test binary (`common::peer`), clients in other copies,
//! over Linux abstract names and TCP on 127.0.0.1; and in-process tests of their error
//! paths and of waits longer than the call timeout.

use crate::common;

use common::peer::*;
use common::*;
use shmring::manager::{Manager, ManagerError};
use shmring::net::Address;
use std::time::{Duration, Instant};

const KEY: &[u8] = b"manager sync test key";

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "producer" => producer_peer(),
        "consumer" => consumer_peer(),
        "bounded-producer" => bounded_producer_peer(),
        "rlock-holder" => rlock_holder_peer(),
        "sem-worker" => sem_worker_peer(),
        "event-waiter" => event_waiter_peer(),
        "barrier-party" => barrier_party_peer(),
        "cond-waiter" => cond_waiter_peer(),
        "value-adder" => value_adder_peer(),
        "tcp-user" => tcp_user_peer(),
        "server" => server_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn connect() -> Result<Manager, String> {
    Manager::connect(&peer_addr()?, Some(KEY)).map_err(err)
}

/// A server in this process and a client of it.
fn local(tag: &str) -> (shmring::manager::ServerHandle, Manager) {
    let server = Manager::serve(&abstract_addr(tag), Some(KEY)).unwrap();
    let m = Manager::connect(server.address(), Some(KEY)).unwrap();
    (server, m)
}

fn spawn(test: &str, role: &str, addr: &Address, env: &[(&str, String)]) -> Peer {
    let mut vars = vec![("ADDR", addr.to_string())];
    vars.extend(env.iter().cloned());
    Peer::spawn(test, role, &vars)
}

/// Poll `cond` every 10 ms until it holds; panic after `limit`.
fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------
// Queue: producers and consumers in 4 processes, every item exactly once

const ITEMS: u64 = 1500;

/// (producer, seq, check)
type Item = Option<(u64, u64, u64)>;

fn item_check(p: u64, seq: u64) -> u64 {
    mix((p << 32) | seq)
}

fn producer_peer() -> Result<(), String> {
    let p = env_num("P");
    let q = connect()?.queue::<Item>("work", 16).map_err(err)?;
    for seq in 0..ITEMS {
        q.put(&Some((p, seq, item_check(p, seq)))).map_err(err)?;
    }
    say("produced");
    Ok(())
}

/// Take items until `None`; check each, and that each producer's items come in order;
/// append what was taken to the server list "got".
fn consumer_peer() -> Result<(), String> {
    let m = connect()?;
    let q = m.queue::<Item>("work", 16).map_err(err)?;
    let mut last = [None::<u64>; 2];
    let mut got = Vec::new();
    while let Some((p, seq, check)) = q.get().map_err(err)? {
        if check != item_check(p, seq) || p > 1 {
            return Err(format!("item ({p}, {seq}) carries a wrong check"));
        }
        if last[p as usize].is_some_and(|l| l >= seq) {
            return Err(format!("producer {p}: item {seq} after {:?}", last[p as usize]));
        }
        last[p as usize] = Some(seq);
        got.push((p, seq));
    }
    m.list::<(u64, u64)>("got").map_err(err)?.extend(&got).map_err(err)?;
    say(&format!("consumed {}", got.len()));
    Ok(())
}

#[test]
fn queue_moves_every_item_exactly_once_between_processes() {
    common::dispatch(run_peer);
    const TEST: &str = "queue_moves_every_item_exactly_once_between_processes";
    let _w = Watchdog::new(TEST, Duration::from_secs(180));
    let (server, m) = local("mgrs-queue");
    let addr = server.address().clone();
    let q = m.queue::<Item>("work", 16).unwrap();
    let t = Instant::now();
    let producers: Vec<Peer> = (0..2)
        .map(|p| spawn(TEST, "producer", &addr, &[("P", p.to_string())]))
        .collect();
    let consumers: Vec<Peer> = (0..2).map(|_| spawn(TEST, "consumer", &addr, &[])).collect();
    for mut p in producers {
        p.expect("produced", Duration::from_secs(120));
        p.finish(Duration::from_secs(20));
    }
    for _ in &consumers {
        q.put(&None).unwrap();
    }
    let mut counts = Vec::new();
    for mut c in consumers {
        counts.push(c.expect("consumed ", Duration::from_secs(60)));
        c.finish(Duration::from_secs(20));
    }
    eprintln!(
        "{} items through the queue in {:?}; per consumer: {counts:?}",
        2 * ITEMS,
        t.elapsed()
    );
    let mut got = m.list::<(u64, u64)>("got").unwrap().to_vec().unwrap();
    got.sort();
    let want: Vec<(u64, u64)> = (0..2).flat_map(|p| (0..ITEMS).map(move |s| (p, s))).collect();
    assert_eq!(got, want, "some item lost or delivered twice");
    assert!(q.is_empty().unwrap());
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// A bounded queue holds a producer back

fn bounded_producer_peer() -> Result<(), String> {
    let q = connect()?.queue::<u32>("bp", 4).map_err(err)?;
    for i in 0..20 {
        q.put(&i).map_err(err)?;
        say(&format!("put {i}"));
    }
    Ok(())
}

#[test]
fn a_bounded_queue_holds_a_producer_back() {
    common::dispatch(run_peer);
    const TEST: &str = "a_bounded_queue_holds_a_producer_back";
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let (server, m) = local("mgrs-bounded");
    let q = m.queue::<u32>("bp", 4).unwrap();
    let mut p = spawn(TEST, "bounded-producer", server.address(), &[]);
    p.expect("put 3", Duration::from_secs(20));
    // The producer's fifth put waits for room: give it time to (wrongly) get through.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(q.len().unwrap(), 4);
    assert!(q.is_full().unwrap());
    assert!(matches!(q.try_put(&99), Err(ManagerError::Full(_))));
    assert!(matches!(
        q.put_timeout(&99, Duration::from_millis(20)),
        Err(ManagerError::Full(_))
    ));
    for i in 0..20 {
        assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), i);
        assert!(q.len().unwrap() <= 4);
    }
    p.finish(Duration::from_secs(20));
    assert!(matches!(q.try_get(), Err(ManagerError::Empty(_))));
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// RLock: re-entered by its owner, released entirely when the owner is killed

fn rlock_holder_peer() -> Result<(), String> {
    let r = connect()?.rlock("r").map_err(err)?;
    for _ in 0..3 {
        r.acquire().map_err(err)?;
    }
    r.release().map_err(err)?; // still held twice
    say("held");
    std::thread::sleep(Duration::from_secs(60));
    Err("not killed".into())
}

#[test]
fn an_rlock_is_reentrant_and_released_when_its_owner_is_killed() {
    common::dispatch(run_peer);
    const TEST: &str = "an_rlock_is_reentrant_and_released_when_its_owner_is_killed";
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let (server, m) = local("mgrs-rlock");
    let r = m.rlock("r").unwrap();
    let mut holder = spawn(TEST, "rlock-holder", server.address(), &[]);
    holder.expect("held", Duration::from_secs(20));
    assert!(!r.acquire_timeout(Duration::from_millis(100)).unwrap());
    assert!(matches!(r.release(), Err(ManagerError::NotOwner(_))));
    holder.kill9();
    let t = Instant::now();
    assert!(
        r.acquire_timeout(Duration::from_secs(10)).unwrap(),
        "the dead owner's rlock stayed held"
    );
    eprintln!("the killed owner's rlock taken after {:?}", t.elapsed());
    // Ours now, once: one release frees it for another connection.
    r.release().unwrap();
    let other = Manager::connect(server.address(), Some(KEY))
        .unwrap()
        .rlock("r")
        .unwrap();
    assert!(other.try_acquire().unwrap());
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Semaphore: at most 2 of 4 processes inside at once

const SEM_ROUNDS: u32 = 15;

fn sem_worker_peer() -> Result<(), String> {
    let m = connect()?;
    let s = m.semaphore("s", 2).map_err(err)?;
    let inside = m.value::<i64>("inside", &0).map_err(err)?;
    let most = m.value::<i64>("most", &0).map_err(err)?;
    for _ in 0..SEM_ROUNDS {
        s.acquire().map_err(err)?;
        let n = inside.update_with(|n| n + 1).map_err(err)?;
        most.update_with(|m| m.max(n)).map_err(err)?;
        std::thread::sleep(Duration::from_millis(3));
        inside.update_with(|n| n - 1).map_err(err)?;
        s.release().map_err(err)?;
    }
    say("done");
    Ok(())
}

#[test]
fn a_semaphore_bounds_concurrency_across_processes() {
    common::dispatch(run_peer);
    const TEST: &str = "a_semaphore_bounds_concurrency_across_processes";
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    let (server, m) = local("mgrs-sem");
    let s = m.semaphore("s", 2).unwrap();
    let workers: Vec<Peer> = (0..4)
        .map(|_| spawn(TEST, "sem-worker", server.address(), &[]))
        .collect();
    for mut w in workers {
        w.expect("done", Duration::from_secs(90));
        w.finish(Duration::from_secs(20));
    }
    let most = m.value::<i64>("most", &0).unwrap().get().unwrap();
    eprintln!("at most {most} of 4 workers inside at once (permits: 2)");
    assert!((1..=2).contains(&most), "{most} workers inside at once");
    assert_eq!(m.value::<i64>("inside", &0).unwrap().get().unwrap(), 0);
    assert_eq!(s.value().unwrap(), 2);
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Event: set in one process, waking waiters in two others

fn event_waiter_peer() -> Result<(), String> {
    let e = connect()?.event("go").map_err(err)?;
    say(&format!(
        "early {}",
        e.wait_timeout(Duration::from_millis(50)).map_err(err)?
    ));
    e.wait().map_err(err)?;
    say("woke");
    Ok(())
}

#[test]
fn an_event_set_in_one_process_wakes_waiters_in_others() {
    common::dispatch(run_peer);
    const TEST: &str = "an_event_set_in_one_process_wakes_waiters_in_others";
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let (server, m) = local("mgrs-event");
    let e = m.event("go").unwrap();
    let mut waiters: Vec<Peer> = (0..2)
        .map(|_| spawn(TEST, "event-waiter", server.address(), &[]))
        .collect();
    for w in &mut waiters {
        assert_eq!(w.expect("early ", Duration::from_secs(20)), "false");
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(!e.is_set().unwrap());
    let t = Instant::now();
    e.set().unwrap();
    for mut w in waiters {
        w.expect("woke", Duration::from_secs(10));
        w.finish(Duration::from_secs(10));
    }
    eprintln!("two waiters woke within {:?} of the set", t.elapsed());
    assert!(e.is_set().unwrap());
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Barrier: 3 processes, 3 cycles; a party killed while waiting breaks it

fn barrier_party_peer() -> Result<(), String> {
    let b = connect()?.barrier(&env_str("NAME"), 3).map_err(err)?;
    for round in 0..env_num("ROUNDS") {
        match b.wait() {
            Ok(i) => say(&format!("round {round} index {i}")),
            Err(ManagerError::BrokenBarrier(_)) => say("broken"),
            Err(e) => return Err(err(e)),
        }
    }
    Ok(())
}

#[test]
fn a_barrier_of_three_processes_and_one_killed_while_waiting() {
    common::dispatch(run_peer);
    const TEST: &str = "a_barrier_of_three_processes_and_one_killed_while_waiting";
    let _w = Watchdog::new(TEST, Duration::from_secs(90));
    let (server, m) = local("mgrs-barrier");
    let addr = server.address().clone();
    let env = |name: &str, rounds: u32| [("NAME", name.to_string()), ("ROUNDS", rounds.to_string())];
    let mut parties: Vec<Peer> = (0..3)
        .map(|_| spawn(TEST, "barrier-party", &addr, &env("b3", 3)))
        .collect();
    for round in 0..3 {
        let mut indices: Vec<u32> = parties
            .iter_mut()
            .map(|p| {
                p.expect(&format!("round {round} index "), Duration::from_secs(20))
                    .parse()
                    .unwrap()
            })
            .collect();
        indices.sort();
        assert_eq!(indices, [0, 1, 2], "round {round}");
    }
    for p in parties {
        p.finish(Duration::from_secs(10));
    }
    assert!(!m.barrier("b3", 3).unwrap().broken().unwrap());

    // Two of three parties waiting; one killed: the other's wait breaks.
    let b = m.barrier("bk", 3).unwrap();
    let mut victim = spawn(TEST, "barrier-party", &addr, &env("bk", 1));
    let mut other = spawn(TEST, "barrier-party", &addr, &env("bk", 1));
    until("two parties waiting", Duration::from_secs(20), || {
        b.n_waiting().unwrap() == 2
    });
    victim.kill9();
    other.expect("broken", Duration::from_secs(10));
    other.finish(Duration::from_secs(10));
    assert!(b.broken().unwrap());
    assert!(matches!(b.wait(), Err(ManagerError::BrokenBarrier(_))));
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Condition: a notify across processes; a killed waiter dropped from the waiters

/// Hold rlock "alive-<ID>" (the parent learns of this connection's end by taking it),
/// then wait on condition "c" until value "flag" is `WANT`.
fn cond_waiter_peer() -> Result<(), String> {
    let m = connect()?;
    let c = m.condition("c").map_err(err)?;
    let flag = m.value::<u32>("flag", &0).map_err(err)?;
    m.rlock(&format!("alive-{}", env_str("ID")))
        .map_err(err)?
        .acquire()
        .map_err(err)?;
    let want = env_num("WANT") as u32;
    c.acquire().map_err(err)?;
    c.acquire().map_err(err)?; // depth 2: the wait must restore it
    say("waiting");
    while flag.get().map_err(err)? != want {
        c.wait().map_err(err)?;
    }
    c.release().map_err(err)?;
    c.release().map_err(err)?;
    if !matches!(c.release(), Err(ManagerError::NotOwner(_))) {
        return Err("the wait did not restore the lock's depth of 2".into());
    }
    say("notified");
    Ok(())
}

#[test]
fn a_condition_notify_crosses_processes_and_a_killed_waiter_is_dropped() {
    common::dispatch(run_peer);
    const TEST: &str = "a_condition_notify_crosses_processes_and_a_killed_waiter_is_dropped";
    let _w = Watchdog::new(TEST, Duration::from_secs(90));
    let (server, m) = local("mgrs-cond");
    let addr = server.address().clone();
    // Created before the waiters' "alive" rlocks: a connection's end is handled object
    // by object in creation order, so the condition is cleaned up before the rlock frees.
    let c = m.condition("c").unwrap();
    let flag = m.value::<u32>("flag", &0).unwrap();
    let waiter = |id: &str, want: u32| {
        spawn(
            TEST,
            "cond-waiter",
            &addr,
            &[("ID", id.into()), ("WANT", want.to_string())],
        )
    };

    // Waiter A: its wait releases the lock (we can take it); our notify wakes it.
    let mut a = waiter("a", 1);
    a.expect("waiting", Duration::from_secs(20));
    assert!(
        c.acquire_timeout(Duration::from_secs(10)).unwrap(),
        "the waiter's wait kept the lock"
    );
    flag.set(&1).unwrap();
    c.notify(1).unwrap();
    c.release().unwrap();
    a.expect("notified", Duration::from_secs(10));
    a.finish(Duration::from_secs(10));

    // Waiter X killed while waiting; then waiter Y: a notify(1) must go to Y, not to the
    // dead X (first in line if it were not dropped).
    let mut x = waiter("x", 2);
    x.expect("waiting", Duration::from_secs(20));
    assert!(c.acquire_timeout(Duration::from_secs(10)).unwrap());
    c.release().unwrap(); // X is in its wait now
    x.kill9();
    let alive_x = m.rlock("alive-x").unwrap();
    assert!(
        alive_x.acquire_timeout(Duration::from_secs(10)).unwrap(),
        "X's connection never ended"
    );
    let mut y = waiter("y", 2);
    y.expect("waiting", Duration::from_secs(20));
    assert!(c.acquire_timeout(Duration::from_secs(10)).unwrap());
    flag.set(&2).unwrap();
    c.notify(1).unwrap();
    c.release().unwrap();
    y.expect("notified", Duration::from_secs(10));
    y.finish(Duration::from_secs(10));
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Value: 3 processes x 2,000 update_with -> exact total

const ADDS: u64 = 2000;

fn value_adder_peer() -> Result<(), String> {
    let v = connect()?.value::<u64>("total", &0).map_err(err)?;
    say("ready");
    for _ in 0..ADDS {
        v.update_with(|n| n + 1).map_err(err)?;
    }
    say("added");
    Ok(())
}

#[test]
fn value_update_with_from_three_processes_is_exact() {
    common::dispatch(run_peer);
    const TEST: &str = "value_update_with_from_three_processes_is_exact";
    let _w = Watchdog::new(TEST, Duration::from_secs(180));
    let (server, m) = local("mgrs-value");
    let adders: Vec<Peer> = (0..3)
        .map(|_| spawn(TEST, "value-adder", server.address(), &[]))
        .collect();
    let t = Instant::now();
    for mut a in adders {
        a.expect("added", Duration::from_secs(150));
        a.finish(Duration::from_secs(20));
    }
    eprintln!("{} contended update_with in {:?}", 3 * ADDS, t.elapsed());
    assert_eq!(m.value::<u64>("total", &0).unwrap().get().unwrap(), 3 * ADDS);
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Every kind over TCP on 127.0.0.1 with an authkey

fn tcp_user_peer() -> Result<(), String> {
    let m = connect()?;
    let q = m.queue::<u32>("tq", 0).map_err(err)?;
    let x = q.get().map_err(err)?;
    q.put(&(x + 1)).map_err(err)?;
    m.value::<u64>("tv", &0)
        .map_err(err)?
        .update_with(|v| v + u64::from(x))
        .map_err(err)?;
    let r = m.rlock("tr").map_err(err)?;
    r.acquire().map_err(err)?;
    r.acquire().map_err(err)?;
    say("rlock held");
    m.event("te").map_err(err)?.wait().map_err(err)?;
    r.release().map_err(err)?;
    r.release().map_err(err)?;
    m.semaphore("ts", 0).map_err(err)?.acquire().map_err(err)?;
    let i = m.barrier("tb", 2).map_err(err)?.wait().map_err(err)?;
    say(&format!("barrier index {i}"));
    let c = m.condition("tc").map_err(err)?;
    c.acquire().map_err(err)?;
    say("cond waiting");
    if !c.wait_timeout(Duration::from_secs(20)).map_err(err)? {
        return Err("no notify within 20 s".into());
    }
    c.release().map_err(err)?;
    say("done");
    Ok(())
}

#[test]
fn every_kind_over_tcp_with_an_authkey() {
    common::dispatch(run_peer);
    const TEST: &str = "every_kind_over_tcp_with_an_authkey";
    let _w = Watchdog::new(TEST, Duration::from_secs(90));
    let server = Manager::serve(&"127.0.0.1:0".parse().unwrap(), Some(KEY)).unwrap();
    let addr = server.address().clone();
    assert!(matches!(addr, Address::Tcp { .. }));
    let m = Manager::connect(&addr, Some(KEY)).unwrap();
    let q = m.queue::<u32>("tq", 0).unwrap();
    let v = m.value::<u64>("tv", &100).unwrap();
    q.put(&7).unwrap();
    let mut p = spawn(TEST, "tcp-user", &addr, &[]);
    p.expect("rlock held", Duration::from_secs(20));
    assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), 8);
    assert_eq!(v.get().unwrap(), 107);
    let r = m.rlock("tr").unwrap();
    assert!(!r.try_acquire().unwrap());
    m.event("te").unwrap().set().unwrap();
    assert!(r.acquire_timeout(Duration::from_secs(10)).unwrap());
    r.release().unwrap();
    m.semaphore("ts", 0).unwrap().release().unwrap();
    let mine = m
        .barrier("tb", 2)
        .unwrap()
        .wait_timeout(Duration::from_secs(20))
        .unwrap();
    let theirs: u32 = p.expect("barrier index ", Duration::from_secs(20)).parse().unwrap();
    assert_eq!(mine + theirs, 1, "indices {mine} and {theirs}");
    p.expect("cond waiting", Duration::from_secs(20));
    let c = m.condition("tc").unwrap();
    assert!(c.acquire_timeout(Duration::from_secs(10)).unwrap());
    c.notify(1).unwrap();
    c.release().unwrap();
    p.expect("done", Duration::from_secs(20));
    p.finish(Duration::from_secs(10));
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Error paths (a server and clients in this process)

#[test]
fn wrong_kinds_and_parameters_of_an_existing_object() {
    let (server, m) = local("mgrs-kinds");
    m.queue::<u8>("q", 1).unwrap();
    let e = m.event("q").unwrap_err();
    assert!(
        matches!(
            e,
            ManagerError::WrongKind {
                found: "queue",
                wanted: "event",
                ..
            }
        ),
        "{e:?}"
    );
    m.semaphore("s", 1).unwrap();
    assert!(matches!(
        m.bounded_semaphore("s", 1),
        Err(ManagerError::WrongKind { .. })
    ));
    assert!(matches!(m.dict::<u8, u8>("s"), Err(ManagerError::WrongKind { .. })));
    m.lock("l").unwrap();
    assert!(matches!(m.rlock("l"), Err(ManagerError::WrongKind { .. })));
    assert!(matches!(m.condition("l"), Err(ManagerError::WrongKind { .. })));
    assert!(matches!(m.barrier("none", 0), Err(ManagerError::Protocol(_))));
    // A later opener with other parameters gets the existing object.
    let q = m.queue::<u8>("q", 100).unwrap();
    q.put(&1).unwrap();
    assert!(q.is_full().unwrap(), "maxsize 1 of the first opener lost");
    let s = m.semaphore("s", 10).unwrap();
    assert_eq!(s.value().unwrap(), 1);
    assert_eq!(m.barrier("b", 2).unwrap().parties().unwrap(), 2);
    assert_eq!(m.barrier("b", 5).unwrap().parties().unwrap(), 2);
    let v = m.value::<String>("v", &"first".into()).unwrap();
    assert_eq!(
        m.value::<String>("v", &"second".into()).unwrap().get().unwrap(),
        "first"
    );
    // Another type over the same bytes: a decoding error, not garbage.
    v.set(&"\u{ff}".into()).unwrap();
    assert!(matches!(
        m.value::<u64>("v", &0).unwrap().get(),
        Err(ManagerError::Codec(_))
    ));
    server.shutdown();
}

#[test]
fn queue_semaphore_and_event_error_paths() {
    let (server, m) = local("mgrs-errs");
    let q = m.queue::<u32>("q", 2).unwrap();
    assert!(matches!(q.try_get(), Err(ManagerError::Empty(_))));
    assert!(matches!(
        q.get_timeout(Duration::from_millis(30)),
        Err(ManagerError::Empty(_))
    ));
    q.try_put(&1).unwrap();
    q.put_timeout(&2, Duration::from_millis(30)).unwrap();
    assert!(matches!(q.try_put(&3), Err(ManagerError::Full(_))));
    assert_eq!((q.qsize().unwrap(), q.is_full().unwrap()), (2, true));
    assert_eq!((q.try_get().unwrap(), q.try_get().unwrap()), (1, 2));
    let unbounded = m.queue::<u32>("u", 0).unwrap();
    for i in 0..1000 {
        unbounded.try_put(&i).unwrap();
    }
    assert!(!unbounded.is_full().unwrap());

    let b = m.bounded_semaphore("b", 1).unwrap();
    assert!(matches!(b.release(), Err(ManagerError::OverReleased(_))));
    assert!(b.try_acquire().unwrap());
    assert!(!b.acquire_timeout(Duration::from_millis(30)).unwrap());
    b.release().unwrap();
    assert!(matches!(b.release(), Err(ManagerError::OverReleased(_))));
    // A plain semaphore may be released past its initial value (as Python's).
    let s = m.semaphore("s", 0).unwrap();
    s.release().unwrap();
    s.release().unwrap();
    assert_eq!(s.value().unwrap(), 2);

    let e = m.event("e").unwrap();
    assert!(!e.wait_timeout(Duration::from_millis(30)).unwrap());
    e.set().unwrap();
    assert!(e.wait_timeout(Duration::ZERO).unwrap());
    e.clear().unwrap();
    assert!(!e.is_set().unwrap());
    server.shutdown();
}

#[test]
fn rlock_and_condition_ownership_errors() {
    let (server, a) = local("mgrs-owner");
    let b = Manager::connect(server.address(), Some(KEY)).unwrap();
    let (ra, rb) = (a.rlock("r").unwrap(), b.rlock("r").unwrap());
    assert!(matches!(ra.release(), Err(ManagerError::NotOwner(_))));
    ra.acquire().unwrap();
    ra.acquire().unwrap();
    ra.release().unwrap();
    assert!(matches!(rb.release(), Err(ManagerError::NotOwner(_))));
    assert!(!rb.try_acquire().unwrap(), "released once of twice, yet free");
    ra.release().unwrap();
    assert!(matches!(ra.release(), Err(ManagerError::NotOwner(_))));
    assert!(rb.try_acquire().unwrap());

    let (ca, cb) = (a.condition("c").unwrap(), b.condition("c").unwrap());
    assert!(matches!(ca.wait(), Err(ManagerError::NotOwner(_))));
    assert!(matches!(ca.notify(1), Err(ManagerError::NotOwner(_))));
    assert!(matches!(ca.release(), Err(ManagerError::NotOwner(_))));
    ca.acquire().unwrap();
    assert!(matches!(cb.notify_all(), Err(ManagerError::NotOwner(_))));
    assert!(!cb.acquire_timeout(Duration::from_millis(30)).unwrap());
    // A wait that times out re-takes the lock before returning false.
    assert!(!ca.wait_timeout(Duration::from_millis(50)).unwrap());
    assert!(
        !cb.acquire_timeout(Duration::from_millis(30)).unwrap(),
        "the timed-out wait left the lock free"
    );
    ca.notify(5).unwrap(); // nobody waits: a no-op
    ca.release().unwrap();
    assert!(cb.acquire_timeout(Duration::ZERO).unwrap());
    server.shutdown();
}

#[test]
fn a_timed_out_condition_wait_returns_only_once_it_has_the_lock_again() {
    let _w = Watchdog::new(
        "a_timed_out_condition_wait_returns_only_once_it_has_the_lock_again",
        Duration::from_secs(60),
    );
    let (server, a) = local("mgrs-retake");
    let addr = server.address().clone();
    let ca = a.condition("c").unwrap();
    let ev = a.event("b-holds").unwrap();
    ca.acquire().unwrap();
    let b_thread = std::thread::spawn(move || {
        let b = Manager::connect(&addr, Some(KEY)).unwrap();
        let cb = b.condition("c").unwrap();
        cb.acquire().unwrap(); // only once a's wait released it
        b.event("b-holds").unwrap().set().unwrap();
        // Past a's timeout; a stays in its wait, for the lock.
        std::thread::sleep(Duration::from_millis(1500));
        b.value::<u32>("released", &0).unwrap().set(&1).unwrap();
        cb.release().unwrap();
    });
    let t = Instant::now();
    assert!(!ca.wait_timeout(Duration::from_millis(200)).unwrap());
    eprintln!("the timed-out wait returned after {:?}", t.elapsed());
    assert!(ev.is_set().unwrap(), "b never held the lock during the wait");
    assert_eq!(
        a.value::<u32>("released", &0).unwrap().get().unwrap(),
        1,
        "the wait returned while b still held the lock"
    );
    ca.release().unwrap(); // held again: the release succeeds
    b_thread.join().unwrap();
    server.shutdown();
}

#[test]
fn barrier_timeout_abort_and_reset_break_it_for_every_waiter() {
    let _w = Watchdog::new(
        "barrier_timeout_abort_and_reset_break_it_for_every_waiter",
        Duration::from_secs(60),
    );
    let (server, m) = local("mgrs-bbreak");
    let addr = server.address().clone();
    let waiter = |name: &'static str| {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let b = Manager::connect(&addr, Some(KEY)).unwrap().barrier(name, 3).unwrap();
            b.wait()
        })
    };
    let b = m.barrier("t", 3).unwrap();
    let w = waiter("t");
    until("a waiter", Duration::from_secs(10), || b.n_waiting().unwrap() == 1);
    // Our timed-out wait breaks the barrier, for the other waiter too.
    assert!(matches!(
        b.wait_timeout(Duration::from_millis(50)),
        Err(ManagerError::BrokenBarrier(_))
    ));
    assert!(matches!(w.join().unwrap(), Err(ManagerError::BrokenBarrier(_))));
    assert!(b.broken().unwrap());
    assert!(
        matches!(b.wait(), Err(ManagerError::BrokenBarrier(_))),
        "a broken barrier let a wait in"
    );
    b.reset().unwrap();
    assert!(!b.broken().unwrap());

    for (name, end) in [("abort", 0), ("reset", 1)] {
        let b = m.barrier(name, 3).unwrap();
        let w = waiter(name);
        until("a waiter", Duration::from_secs(10), || b.n_waiting().unwrap() == 1);
        if end == 0 {
            b.abort().unwrap()
        } else {
            b.reset().unwrap()
        }
        assert!(
            matches!(w.join().unwrap(), Err(ManagerError::BrokenBarrier(_))),
            "{name}"
        );
        assert_eq!(b.broken().unwrap(), end == 0, "{name}");
        assert_eq!(b.n_waiting().unwrap(), 0);
    }
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Waits longer than the call timeout; a dead server or a shutdown ends a wait

#[test]
fn waits_longer_than_the_call_timeout_span_many_requests() {
    let _w = Watchdog::new(
        "waits_longer_than_the_call_timeout_span_many_requests",
        Duration::from_secs(60),
    );
    let (server, m) = local("mgrs-long");
    let addr = server.address().clone();
    // Every request must be answered within 1.5 s; the waits below last about 3 s.
    m.set_timeout(Duration::from_millis(1500));
    let q = m.queue::<u32>("q", 0).unwrap();
    let c = m.condition("c").unwrap();
    let b = m.barrier("b", 2).unwrap();
    let helper = std::thread::spawn(move || {
        let h = Manager::connect(&addr, Some(KEY)).unwrap();
        let nap = || std::thread::sleep(Duration::from_secs(3));
        nap();
        h.queue::<u32>("q", 0).unwrap().put(&5).unwrap();
        nap();
        let c = h.condition("c").unwrap();
        c.acquire().unwrap();
        c.notify_all().unwrap();
        c.release().unwrap();
        nap();
        h.barrier("b", 2).unwrap().wait().unwrap()
    });
    let t = Instant::now();
    assert_eq!(q.get().unwrap(), 5);
    eprintln!("queue get waited {:?}", t.elapsed());
    let t = Instant::now();
    c.acquire().unwrap();
    assert!(c.wait_timeout(Duration::from_secs(30)).unwrap());
    c.release().unwrap();
    eprintln!("condition wait waited {:?}", t.elapsed());
    let t = Instant::now();
    let mine = b.wait().unwrap();
    eprintln!("barrier wait waited {:?}", t.elapsed());
    assert_eq!(mine + helper.join().unwrap(), 1);
    server.shutdown();
}

/// A blocking call through a manager handle.
type WaitOp = fn(&Manager) -> Result<(), ManagerError>;

fn server_peer() -> Result<(), String> {
    let server = Manager::serve(&peer_addr()?, Some(KEY)).map_err(err)?;
    say(&format!("listening {}", server.address()));
    server.wait();
    Ok(())
}

#[test]
fn a_dead_server_or_a_shutdown_ends_every_wait_with_manager_gone() {
    common::dispatch(run_peer);
    const TEST: &str = "a_dead_server_or_a_shutdown_ends_every_wait_with_manager_gone";
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let waits = |addr: &Address| -> Vec<std::thread::JoinHandle<Result<(), ManagerError>>> {
        let ops: [WaitOp; 4] = [
            |m| m.queue::<u8>("q", 0)?.get().map(drop),
            |m| m.event("e")?.wait(),
            |m| m.barrier("b", 2)?.wait().map(drop),
            |m| {
                let c = m.condition("c")?;
                c.acquire()?;
                c.wait()
            },
        ];
        ops.into_iter()
            .map(|op| {
                let m = Manager::connect(addr, Some(KEY)).unwrap();
                std::thread::spawn(move || op(&m))
            })
            .collect()
    };
    // The server's process killed.
    let mut server = spawn(TEST, "server", &abstract_addr("mgrs-dead"), &[]);
    let addr: Address = server
        .expect("listening ", Duration::from_secs(20))
        .trim()
        .parse()
        .unwrap();
    let waiting = waits(&addr);
    let m = Manager::connect(&addr, Some(KEY)).unwrap();
    until("the barrier's waiter", Duration::from_secs(10), || {
        m.barrier("b", 2).unwrap().n_waiting().unwrap() == 1
    });
    server.kill9();
    let t = Instant::now();
    for w in waiting {
        let r = w.join().unwrap();
        assert!(matches!(r, Err(ManagerError::ManagerGone(_))), "{r:?}");
    }
    eprintln!("four waits ended by the server's death within {:?}", t.elapsed());
    // A server of this process shut down.
    let (server, m) = local("mgrs-stop");
    let waiting = waits(server.address());
    until("the barrier's waiter", Duration::from_secs(10), || {
        m.barrier("b", 2).unwrap().n_waiting().unwrap() == 1
    });
    server.shutdown();
    for w in waiting {
        let r = w.join().unwrap();
        assert!(matches!(r, Err(ManagerError::ManagerGone(_))), "{r:?}");
    }
}
