//! Cross-process tests of `shmring::manager`: servers in this process or in a
//! re-executed copy of the test binary (`common::peer`), clients in other copies, over
//! Linux abstract names and TCP on 127.0.0.1; and a model test of random operation
//! sequences against a local `HashMap`/`Vec`.

use crate::common;

use common::peer::*;
use common::*;
use shmring::manager::{ConnectOptions, Manager, ManagerError};
use shmring::net::{Address, Client};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const KEY: &[u8] = b"manager test key";
const INCREMENTS: u64 = 10_000;

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "incrementer" => incrementer_peer(),
        "remote-user" => remote_user_peer(),
        "server" => server_peer(),
        "writer" => writer_peer(),
        "lock-holder" => lock_holder_peer(),
        "lock-counter" => lock_counter_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

// ---------------------------------------------------------------------------------------
// 4 processes x 10,000 update_with on one key

/// `INCREMENTS` increments of "n"; each returned value must exceed the previous one
/// this client saw (its own increments are ordered).
fn incrementer_peer() -> Result<(), String> {
    let m = Manager::connect(&peer_addr()?, Some(KEY)).map_err(err)?;
    let d = m.dict::<String, u64>("counter").map_err(err)?;
    say("ready");
    let mut last = 0;
    for _ in 0..INCREMENTS {
        let v = d.update_with(&"n".into(), |n| n.unwrap_or(0) + 1).map_err(err)?;
        if v <= last {
            return Err(format!("update_with returned {v} after {last}"));
        }
        last = v;
    }
    say(&format!("last {last}"));
    Ok(())
}

#[test]
fn four_processes_increment_one_key_exactly() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("four_processes_increment_one_key_exactly", Duration::from_secs(300));
    let addr = abstract_addr("mgr-incr");
    let server = Manager::serve(&addr, Some(KEY)).unwrap();
    let mut peers: Vec<Peer> = (0..4)
        .map(|_| {
            Peer::spawn(
                "four_processes_increment_one_key_exactly",
                "incrementer",
                &[("ADDR", addr.to_string())],
            )
        })
        .collect();
    for p in &mut peers {
        p.expect("ready", Duration::from_secs(30));
    }
    let t = Instant::now();
    let mut lasts = Vec::new();
    for mut p in peers {
        lasts.push(
            p.expect("last ", Duration::from_secs(240))
                .trim()
                .parse::<u64>()
                .unwrap(),
        );
        p.finish(Duration::from_secs(30));
    }
    let total = 4 * INCREMENTS;
    eprintln!(
        "{total} contended update_with in {:?} ({:.0}/s)",
        t.elapsed(),
        total as f64 / t.elapsed().as_secs_f64()
    );
    let m = Manager::connect(&addr, Some(KEY)).unwrap();
    assert_eq!(
        m.dict::<String, u64>("counter").unwrap().get(&"n".into()).unwrap(),
        Some(total)
    );
    // The client whose last increment came last saw the final value.
    assert_eq!(lasts.iter().max(), Some(&total));
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Remote use over TCP with an authkey; a wrong key rejected

fn remote_user_peer() -> Result<(), String> {
    let addr = peer_addr()?;
    match Manager::connect(&addr, Some(b"not the key")) {
        Err(ManagerError::Connect(shmring::ConnError::Authentication(_))) => say("wrong key rejected"),
        other => return Err(format!("a wrong key gave {other:?}")),
    }
    match Manager::connect(&addr, None) {
        Err(ManagerError::Connect(_)) => say("missing key rejected"),
        other => return Err(format!("no key gave {other:?}")),
    }
    let m = Manager::connect(&addr, Some(KEY)).map_err(err)?;
    let d = m.dict::<(u32, String), Vec<f64>>("remote").map_err(err)?;
    d.insert(&(1, "a".into()), &vec![1.5, 2.5]).map_err(err)?;
    let l = m.list::<String>("log").map_err(err)?;
    l.push(&"from the client".into()).map_err(err)?;
    let ns = m.namespace("ns").map_err(err)?;
    let seen: u64 = ns.get("set-by-server-side").map_err(err)?.ok_or("attribute missing")?;
    ns.set("answer", &(seen + 1)).map_err(err)?;
    say("done");
    Ok(())
}

#[test]
fn remote_use_over_tcp_with_an_authkey() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("remote_use_over_tcp_with_an_authkey", Duration::from_secs(60));
    let server = Manager::serve(&"127.0.0.1:0".parse().unwrap(), Some(KEY)).unwrap();
    let addr = server.address().clone();
    assert!(matches!(addr, Address::Tcp { port, .. } if port != 0));
    let m = Manager::connect(&addr, Some(KEY)).unwrap();
    m.namespace("ns").unwrap().set("set-by-server-side", &41u64).unwrap();
    let mut p = Peer::spawn(
        "remote_use_over_tcp_with_an_authkey",
        "remote-user",
        &[("ADDR", addr.to_string())],
    );
    p.expect("wrong key rejected", Duration::from_secs(20));
    p.expect("missing key rejected", Duration::from_secs(20));
    p.expect("done", Duration::from_secs(20));
    p.finish(Duration::from_secs(20));
    let d = m.dict::<(u32, String), Vec<f64>>("remote").unwrap();
    assert_eq!(d.items().unwrap(), [((1, "a".to_string()), vec![1.5, 2.5])]);
    assert_eq!(m.list::<String>("log").unwrap().to_vec().unwrap(), ["from the client"]);
    assert_eq!(m.namespace("ns").unwrap().get::<u64>("answer").unwrap(), Some(42));
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// The server killed: ManagerGone, not a hang

fn server_peer() -> Result<(), String> {
    let server = Manager::serve(&peer_addr()?, Some(KEY)).map_err(err)?;
    say(&format!("listening {}", server.address()));
    server.wait();
    Ok(())
}

#[test]
fn a_killed_server_turns_every_call_into_manager_gone() {
    common::dispatch(run_peer);
    let _w = Watchdog::new(
        "a_killed_server_turns_every_call_into_manager_gone",
        Duration::from_secs(60),
    );
    for addr in [abstract_addr("mgr-kill"), "127.0.0.1:0".parse().unwrap()] {
        let mut server = Peer::spawn(
            "a_killed_server_turns_every_call_into_manager_gone",
            "server",
            &[("ADDR", addr.to_string())],
        );
        let addr: Address = server
            .expect("listening ", Duration::from_secs(20))
            .trim()
            .parse()
            .unwrap();
        let (m1, m2) = (
            Manager::connect(&addr, Some(KEY)).unwrap(),
            Manager::connect(&addr, Some(KEY)).unwrap(),
        );
        let d = m1.dict::<u32, u32>("d").unwrap();
        let l = m2.list::<u32>("l").unwrap();
        let ns = m2.namespace("ns").unwrap();
        d.insert(&1, &1).unwrap();
        // Read once: over a Unix socket, the next get of the unchanged key is a cache hit.
        assert_eq!(d.get(&1).unwrap(), Some(1));
        assert_eq!(d.get(&1).unwrap(), Some(1));
        assert_eq!(d.is_cached(), matches!(addr, Address::Abstract(_)), "{addr}");
        // Over the Unix socket the calls travel on the shared-memory channel.
        assert_eq!(m1.uses_shared_memory(), matches!(addr, Address::Abstract(_)), "{addr}");
        assert_eq!(m2.uses_shared_memory(), matches!(addr, Address::Abstract(_)), "{addr}");
        l.push(&1).unwrap();
        server.kill9();
        // A cache hit trusts a socket seen open within the last millisecond: let that
        // pass, so the cached get below must look again.
        std::thread::sleep(Duration::from_millis(20));
        let t = Instant::now();
        let calls: [(&str, Result<(), ManagerError>); 5] = [
            ("dict get", d.get(&1).map(drop)),
            ("dict update_with", d.update_with(&1, |v| v.unwrap_or(0) + 1).map(drop)),
            ("list push", l.push(&2)),
            ("namespace set", ns.set("x", &1u8)),
            ("open", m1.list::<u8>("other").map(drop)),
        ];
        for (what, r) in calls {
            assert!(
                matches!(r, Err(ManagerError::ManagerGone(_))),
                "{addr}: {what} gave {r:?}"
            );
        }
        // Gone stays gone.
        assert!(matches!(d.len(), Err(ManagerError::ManagerGone(_))));
        eprintln!(
            "{addr}: 6 calls after the kill returned ManagerGone in {:?}",
            t.elapsed()
        );
        assert!(matches!(
            Manager::connect(&addr, Some(KEY)),
            Err(ManagerError::Connect(_))
        ));
    }
}

// ---------------------------------------------------------------------------------------
// The cache: a get after a write returned (in another process) sees that write

const WRITES: u64 = 3000;

/// Write `k` = i, then publish i in `done` (a round trip, uncached): whoever reads
/// `done` = i knows the write of i returned.
fn writer_peer() -> Result<(), String> {
    let m = Manager::connect(&peer_addr()?, None).map_err(err)?;
    let d = m.dict::<String, u64>("data").map_err(err)?;
    let done = m.dict::<String, u64>("done").map_err(err)?;
    say("ready");
    for i in 1..=WRITES {
        d.insert(&"k".into(), &i).map_err(err)?;
        // Another key of the dict changes too (other buckets; most gets stay hits).
        if i % 100 == 0 {
            d.insert(&format!("other{i}"), &i).map_err(err)?;
        }
        done.insert(&"i".into(), &i).map_err(err)?;
    }
    Ok(())
}

#[test]
fn a_cached_get_sees_every_write_that_returned_in_another_process() {
    common::dispatch(run_peer);
    let _w = Watchdog::new(
        "a_cached_get_sees_every_write_that_returned_in_another_process",
        Duration::from_secs(120),
    );
    let addr = abstract_addr("mgr-cache");
    let server = Manager::serve(&addr, None).unwrap();
    let m = Manager::connect(&addr, None).unwrap();
    let d = m.dict::<String, u64>("data").unwrap();
    let done = m.dict::<String, u64>("done").unwrap().without_cache();
    assert!(d.is_cached() && !done.is_cached());
    let mut w = Peer::spawn(
        "a_cached_get_sees_every_write_that_returned_in_another_process",
        "writer",
        &[("ADDR", addr.to_string())],
    );
    w.expect("ready", Duration::from_secs(20));
    let (mut checks, mut last) = (0u64, 0u64);
    loop {
        let published = done.get(&"i".into()).unwrap().unwrap_or(0);
        // Several gets per publication: the later ones hit the cache when nothing moved.
        for _ in 0..4 {
            let seen = d.get(&"k".into()).unwrap().unwrap_or(0);
            assert!(
                seen >= published,
                "get returned {seen} after the write of {published} returned"
            );
            assert!(seen >= last, "get went back from {last} to {seen}");
            last = seen;
            checks += 1;
        }
        if published == WRITES {
            break;
        }
    }
    w.finish(Duration::from_secs(30));
    assert_eq!(d.get(&"k".into()).unwrap(), Some(WRITES));
    // Unchanged since: hits, and still right; a write from here invalidates too.
    let t = Instant::now();
    for _ in 0..100_000 {
        assert_eq!(d.get(&"k".into()).unwrap(), Some(WRITES));
    }
    eprintln!(
        "{checks} interleaved checks; 100000 unchanged gets in {:?}",
        t.elapsed()
    );
    let other = Manager::connect(&addr, None)
        .unwrap()
        .dict::<String, u64>("data")
        .unwrap();
    other.insert(&"k".into(), &0).unwrap();
    assert_eq!(d.get(&"k".into()).unwrap(), Some(0));
    d.clear().unwrap();
    assert_eq!(other.get(&"k".into()).unwrap(), None);
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// The server-side lock: mutual exclusion across processes, released when its holder dies

fn lock_holder_peer() -> Result<(), String> {
    let m = Manager::connect(&peer_addr()?, None).map_err(err)?;
    m.lock("l").map_err(err)?.acquire().map_err(err)?;
    say("holding");
    std::thread::sleep(Duration::from_secs(60));
    Err("not killed".into())
}

const LOCKED_INCREMENTS: u64 = 1000;

/// Read-modify-write of "n" in two round trips (a race without the lock), under it.
fn lock_counter_peer() -> Result<(), String> {
    let m = Manager::connect(&peer_addr()?, None).map_err(err)?;
    let l = m.lock("l").map_err(err)?;
    let d = m.dict::<String, u64>("d").map_err(err)?;
    for _ in 0..LOCKED_INCREMENTS {
        l.acquire().map_err(err)?;
        let n = d.get(&"n".into()).map_err(err)?.unwrap_or(0);
        d.insert(&"n".into(), &(n + 1)).map_err(err)?;
        l.release().map_err(err)?;
    }
    say("done");
    Ok(())
}

#[test]
fn the_server_lock_excludes_across_processes_and_is_released_when_its_holder_dies() {
    common::dispatch(run_peer);
    const TEST: &str = "the_server_lock_excludes_across_processes_and_is_released_when_its_holder_dies";
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    let addr = abstract_addr("mgr-lock");
    let server = Manager::serve(&addr, None).unwrap();
    let m = Manager::connect(&addr, None).unwrap();
    let l = m.lock("l").unwrap();
    // Not held: releasing is an error; acquire/release work.
    assert!(matches!(l.release(), Err(ManagerError::NotOwner(_))));
    l.acquire().unwrap();
    l.release().unwrap();
    // Two processes incrementing under the lock: no update lost.
    let peers: Vec<Peer> = (0..2)
        .map(|_| Peer::spawn(TEST, "lock-counter", &[("ADDR", addr.to_string())]))
        .collect();
    for mut p in peers {
        p.expect("done", Duration::from_secs(90));
        p.finish(Duration::from_secs(10));
    }
    let d = m.dict::<String, u64>("d").unwrap();
    assert_eq!(d.get(&"n".into()).unwrap(), Some(2 * LOCKED_INCREMENTS));
    // A holder killed: the server releases its lock when its connection closes.
    let mut holder = Peer::spawn(TEST, "lock-holder", &[("ADDR", addr.to_string())]);
    holder.expect("holding", Duration::from_secs(20));
    assert!(!l.acquire_timeout(Duration::from_millis(50)).unwrap());
    // Someone else's lock is not ours to release.
    assert!(matches!(l.release(), Err(ManagerError::NotOwner(_))));
    holder.kill9();
    let t = Instant::now();
    assert!(
        l.acquire_timeout(Duration::from_secs(10)).unwrap(),
        "the dead holder's lock stayed held"
    );
    eprintln!("acquired {:?} after the holder was killed", t.elapsed());
    l.release().unwrap();
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// One stalled client does not hold up the others

#[test]
fn a_stalled_client_does_not_block_the_others() {
    let _w = Watchdog::new("a_stalled_client_does_not_block_the_others", Duration::from_secs(60));
    let addr = abstract_addr("mgr-stall");
    let server = Manager::serve(&addr, None).unwrap();
    // Connected and authenticated, then silent: its server thread waits for it alone.
    let mut silent = Client::connect(&addr, None).unwrap();
    // Half a frame header, then nothing.
    let stalled = Client::connect(&addr, None).unwrap();
    rustix::net::send(&stalled, &[0u8; 3], rustix::net::SendFlags::empty()).unwrap();
    let m = Manager::connect(&addr, None).unwrap();
    m.set_timeout(Duration::from_secs(5));
    let d = m.dict::<u32, u32>("d").unwrap();
    let t = Instant::now();
    for i in 0..100 {
        d.insert(&i, &i).unwrap();
    }
    assert_eq!(d.len().unwrap(), 100);
    eprintln!("100 inserts beside two stalled clients in {:?}", t.elapsed());
    // The silent client can still talk: a message that is not a request is answered
    // (with an error), not fatal to it or to the server.
    silent.send(&"not a request").unwrap();
    assert!(silent.recv_bytes_timeout(Duration::from_secs(5)).is_ok());
    assert_eq!(d.get(&7).unwrap(), Some(7));
    drop(stalled);
    server.shutdown();
    assert!(matches!(d.get(&7), Err(ManagerError::ManagerGone(_))));
    assert_eq!(
        silent.recv_bytes_timeout(Duration::from_secs(5)),
        Err(shmring::ConnError::Disconnected)
    );
}

/// A client stuck in its authkey handshake (connected, silent) does not keep others
/// from connecting: the server runs each handshake on the connection's own thread.
/// The server's handshake timeout (60 s) is far longer than the second client's (5 s),
/// so a server that ran handshakes in its accept loop would fail the second connect.
#[test]
fn a_client_silent_in_its_handshake_does_not_block_new_clients() {
    let _w = Watchdog::new(
        "a_client_silent_in_its_handshake_does_not_block_new_clients",
        Duration::from_secs(60),
    );
    let addr = abstract_addr("mgr-handshake-stall");
    let opts = shmring::net::NetOptions::default().handshake_timeout(Duration::from_secs(60));
    let server = Manager::serve_with(&addr, Some(b"key"), &opts).unwrap();
    let Address::Abstract(name) = &addr else { unreachable!() };
    let raw = {
        use std::os::linux::net::SocketAddrExt;
        let sa = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        std::os::unix::net::UnixStream::connect_addr(&sa).unwrap()
    };
    // Let the server take the silent connection first.
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let m = Manager::connect(&addr, Some(b"key")).expect("a second client connects while the first is silent");
    let d = m.dict::<u32, u32>("d").unwrap();
    d.insert(&1, &2).unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(2));
    eprintln!(
        "connected and served beside a client silent in its handshake in {:?}",
        t.elapsed()
    );
    drop(raw);
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Messages past the limit: an error for that call, the connection intact

#[test]
fn a_reply_or_request_past_the_limit_is_an_error_not_a_lost_connection() {
    let _w = Watchdog::new("a_reply_or_request_past_the_limit", Duration::from_secs(60));
    let small = shmring::net::NetOptions::new().max_message_len(4096);
    let server = Manager::serve_with(&abstract_addr("mgr-limit"), None, &small).unwrap();
    let m = Manager::connect(server.address(), None).unwrap();
    let d = m.dict::<u32, Vec<u8>>("d").unwrap();
    for i in 0..10 {
        d.insert(&i, &vec![7u8; 1000]).unwrap();
    }
    // The snapshot (~10 KB) is past the server's limit: refused, the client stays.
    let r = d.items();
    assert!(matches!(r, Err(ManagerError::Protocol(_))), "{r:?}");
    // A request past the server's limit: the server skips it and says so.
    let r = d.insert(&99, &vec![0u8; 10_000]);
    assert!(matches!(r, Err(ManagerError::Protocol(_))), "{r:?}");
    // A request past the client's own limit is refused before it is sent.
    let tiny = Manager::connect_with(server.address(), None, &ConnectOptions::new().net(small)).unwrap();
    let r = tiny.dict::<u32, Vec<u8>>("d").unwrap().insert(&98, &vec![0u8; 10_000]);
    assert!(matches!(r, Err(ManagerError::Protocol(_))), "{r:?}");
    assert_eq!(d.len().unwrap(), 10);
    assert_eq!(d.get(&3).unwrap(), Some(vec![7u8; 1000]));
    assert_eq!(tiny.dict::<u32, Vec<u8>>("d").unwrap().len().unwrap(), 10);
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// Random operation sequences against a model

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// The same sequence twice: calls over the shared-memory channel, then over the socket.
#[test]
fn random_operations_match_a_local_model() {
    let _w = Watchdog::new("random_operations_match_a_local_model", Duration::from_secs(120));
    let seed = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    eprintln!("seed {seed} (set SEED to replay another)");
    for shared_memory in [true, false] {
        run_model(seed, shared_memory);
    }
}

fn run_model(seed: u64, shared_memory: bool) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let server = Manager::serve(&abstract_addr("mgr-model"), None).unwrap();
    let opts = ConnectOptions::new().shared_memory(shared_memory);
    let m = Manager::connect_with(server.address(), None, &opts).unwrap();
    assert_eq!(m.uses_shared_memory(), shared_memory);
    let d = m.dict::<u8, String>("d").unwrap();
    let l = m.list::<i64>("l").unwrap();
    let ns = m.namespace("ns").unwrap();
    // Over a Unix socket the dict's and the namespace's gets read through their caches.
    assert!(d.is_cached() && ns.is_cached());
    let mut dm: HashMap<u8, String> = HashMap::new();
    let mut lm: Vec<i64> = Vec::new();
    let mut nm: HashMap<String, i64> = HashMap::new();
    for step in 0..4000 {
        // Keys from a small range, so that hits, misses and overwrites all happen.
        let k = rng.u8(0..24);
        let v = format!("v{}", rng.u16(..));
        let ctx = format!("seed {seed} step {step} shared memory {shared_memory}");
        match rng.u8(0..13) {
            0 => assert_eq!(d.get(&k).unwrap(), dm.get(&k).cloned(), "{ctx}"),
            1 => assert_eq!(d.insert(&k, &v).unwrap(), dm.insert(k, v), "{ctx}"),
            2 => assert_eq!(d.remove(&k).unwrap(), dm.remove(&k), "{ctx}"),
            3 => assert_eq!(d.contains_key(&k).unwrap(), dm.contains_key(&k), "{ctx}"),
            4 => assert_eq!(
                d.pop(&k, "none".into()).unwrap(),
                dm.remove(&k).unwrap_or("none".into()),
                "{ctx}"
            ),
            5 => assert_eq!(
                d.get_or_insert(&k, &v).unwrap(),
                dm.entry(k).or_insert(v).clone(),
                "{ctx}"
            ),
            6 => {
                let new = d
                    .update_with(&k, |old| format!("{}+", old.unwrap_or_default()))
                    .unwrap();
                let e = dm.entry(k).or_default();
                e.push('+');
                assert_eq!(&new, e, "{ctx}");
            }
            7 => {
                let pairs: Vec<(u8, String)> = (0..rng.usize(0..4)).map(|i| (rng.u8(0..24), format!("u{i}"))).collect();
                d.update(pairs.iter().map(|(k, v)| (k, v))).unwrap();
                dm.extend(pairs);
            }
            8 if rng.u8(0..20) == 0 => {
                d.clear().unwrap();
                dm.clear();
            }
            9 => {
                // The list: one random operation.
                let i = rng.usize(0..lm.len() + 2);
                let x = rng.i64(..);
                match rng.u8(0..8) {
                    0 => {
                        l.push(&x).unwrap();
                        lm.push(x);
                    }
                    1 => {
                        let xs = [x, x / 2];
                        l.extend(&xs).unwrap();
                        lm.extend(xs);
                    }
                    2 => assert_eq!(l.get(i).unwrap(), lm.get(i).copied(), "{ctx}"),
                    3 => match lm.get_mut(i) {
                        Some(slot) => assert_eq!(l.set(i, &x).unwrap(), std::mem::replace(slot, x), "{ctx}"),
                        None => assert!(
                            matches!(l.set(i, &x), Err(ManagerError::IndexOutOfRange { .. })),
                            "{ctx}"
                        ),
                    },
                    4 => assert_eq!(l.pop().unwrap(), lm.pop(), "{ctx}"),
                    5 if i <= lm.len() => {
                        l.insert(i, &x).unwrap();
                        lm.insert(i, x);
                    }
                    5 => assert!(
                        matches!(l.insert(i, &x), Err(ManagerError::IndexOutOfRange { .. })),
                        "{ctx}"
                    ),
                    6 if i < lm.len() => assert_eq!(l.remove(i).unwrap(), lm.remove(i), "{ctx}"),
                    6 => assert!(
                        matches!(l.remove(i), Err(ManagerError::IndexOutOfRange { .. })),
                        "{ctx}"
                    ),
                    _ => assert_eq!(l.len().unwrap(), lm.len(), "{ctx}"),
                }
            }
            10 => {
                // The namespace: one random operation.
                let attr = format!("a{}", rng.u8(0..8));
                let x = rng.i64(..);
                match rng.u8(0..3) {
                    0 => {
                        ns.set(&attr, &x).unwrap();
                        nm.insert(attr, x);
                    }
                    1 => assert_eq!(ns.get::<i64>(&attr).unwrap(), nm.get(&attr).copied(), "{ctx}"),
                    _ => assert_eq!(ns.remove(&attr).unwrap(), nm.remove(&attr).is_some(), "{ctx}"),
                }
            }
            _ => {
                assert_eq!(d.len().unwrap(), dm.len(), "{ctx}");
                assert_eq!(sorted(d.keys().unwrap()), sorted(dm.keys().copied().collect()), "{ctx}");
            }
        }
    }
    // The whole state at the end.
    assert_eq!(sorted(d.items().unwrap()), sorted(dm.clone().into_iter().collect()));
    assert_eq!(sorted(d.values().unwrap()), sorted(dm.into_values().collect()));
    assert_eq!(l.to_vec().unwrap(), lm);
    assert_eq!(ns.attributes().unwrap(), sorted(nm.into_keys().collect()));
    server.shutdown();
}
