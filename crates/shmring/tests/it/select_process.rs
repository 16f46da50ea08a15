//! `shmring::select` and the receiving ends' iterators across processes: a peer feeds
//! an SPSC ring, a queue, a pipe and a socket; the parent selects over all four at once
//! and sees each source reported exactly when it has something (and not before); a
//! peer that leaves (drop, or SIGKILL) makes its rings, pipe and socket ready and ends
//! their iterators. Every test under a watchdog.

use crate::common;

use common::peer::*;
use common::*;
use shmring::net::{Client, Listener, SocketConnection};
use shmring::ring::spsc;
use shmring::select::{Selector, select};
use shmring::{ConnError, Connection, Queue, RecvError};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);
/// Long enough for a message that is on its way to arrive; it must not.
const QUIET: Duration = Duration::from_millis(100);

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "feeder" => feeder_peer(),
        "holder" => holder_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

/// The peer's ends of the four sources.
struct Ends {
    ring: spsc::Producer,
    queue: Queue<u64>,
    pipe: Connection,
    sock: SocketConnection,
}

fn open_ends() -> Result<Ends, String> {
    let name = env_str("NAME");
    Ok(Ends {
        ring: spsc::Producer::open(&format!("{name}.ring")).map_err(|e| format!("ring: {e}"))?,
        queue: Queue::open(&format!("{name}.queue")).map_err(|e| format!("queue: {e}"))?,
        pipe: Connection::open(&format!("{name}.pipe")).map_err(|e| format!("pipe: {e}"))?,
        sock: Client::connect(&peer_addr()?, None).map_err(|e| format!("connect: {e}"))?,
    })
}

/// Feed the source each command (read from the socket) names; "all" feeds every one;
/// "end" closes the queue and leaves (dropping the other ends).
fn feeder_peer() -> Result<(), String> {
    let mut e = open_ends()?;
    say("ready");
    let mut n = 0u64;
    loop {
        let cmd: String = e.sock.recv().map_err(|x| format!("command: {x}"))?;
        n += 1;
        let feed = |e: &mut Ends, what: &str| -> Result<(), String> {
            match what {
                "ring" => e.ring.send(&n.to_le_bytes()).map_err(|x| format!("ring: {x}")),
                "queue" => e.queue.put(&n).map_err(|x| format!("queue: {x}")),
                "pipe" => e.pipe.send(&n).map_err(|x| format!("pipe: {x}")),
                "socket" => e.sock.send(&n).map_err(|x| format!("socket: {x}")),
                other => Err(format!("unknown source {other}")),
            }
        };
        match cmd.as_str() {
            "all" => {
                for what in ["ring", "queue", "pipe", "socket"] {
                    feed(&mut e, what)?;
                }
            }
            "end" => {
                e.queue.close();
                return Ok(());
            }
            what => feed(&mut e, what)?,
        }
    }
}

/// Send `N` messages on the ring, the pipe and the socket and put `N` on the queue,
/// say "sent", then either leave (`LEAVE=drop`, the queue closed) or wait to be killed.
fn holder_peer() -> Result<(), String> {
    let mut e = open_ends()?;
    let n = env_num("N");
    for i in 0..n {
        e.ring.send(&i.to_le_bytes()).map_err(|x| format!("ring: {x}"))?;
        e.queue.put(&i).map_err(|x| format!("queue: {x}"))?;
        e.pipe.send(&i).map_err(|x| format!("pipe: {x}"))?;
        e.sock.send(&i).map_err(|x| format!("socket: {x}"))?;
    }
    say("sent");
    if env_str("LEAVE") == "drop" {
        e.queue.close();
        return Ok(());
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The parent's ends: made before the peer starts (the ring, queue and pipe by name,
/// the socket accepted once the peer connects).
struct Mine {
    ring: spsc::Consumer,
    queue: Queue<u64>,
    pipe: Connection,
    listener: Listener,
    name: String,
}

fn make(tag: &str) -> Mine {
    let name = unique_name(tag);
    Mine {
        ring: spsc::Consumer::create(&format!("{name}.ring"), 1 << 14).unwrap(),
        queue: Queue::create(&format!("{name}.queue"), 64).unwrap(),
        pipe: Connection::create(&format!("{name}.pipe"), 1 << 14).unwrap(),
        listener: Listener::bind(&abstract_addr(tag), None).unwrap(),
        name,
    }
}

fn spawn(test: &str, role: &str, m: &Mine, extra: &[(&str, String)]) -> (Peer, SocketConnection) {
    let mut env = vec![("NAME", m.name.clone()), ("ADDR", m.listener.local_addr().to_string())];
    env.extend(extra.iter().cloned());
    let peer = Peer::spawn(test, role, &env);
    let sock = m.listener.accept_timeout(LIMIT).unwrap();
    (peer, sock)
}

#[test]
fn select_reports_a_ring_a_queue_a_pipe_and_a_socket_exactly_when_each_has_something() {
    const TEST: &str = "select_reports_a_ring_a_queue_a_pipe_and_a_socket_exactly_when_each_has_something";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    let m = make("select-each");
    let (mut peer, sock) = spawn(TEST, "feeder", &m, &[]);
    peer.expect("ready", LIMIT);
    let Mine {
        ring,
        queue,
        pipe,
        name: _name,
        listener: _l,
    } = m;
    let mut sel = Selector::new();
    let ring = sel.add(ring);
    let queue = sel.add(queue);
    let pipe = sel.add(pipe);
    let sock = sel.add(sock);
    let index = |what: &str| match what {
        "ring" => ring.index(),
        "queue" => queue.index(),
        "pipe" => pipe.index(),
        _ => sock.index(),
    };
    // Nothing yet: the timeout passes with nothing reported.
    assert!(sel.wait(Some(QUIET)).is_empty());
    let mut n = 0u64;
    for round in 0..3 {
        for what in ["socket", "ring", "pipe", "queue", "ring", "socket"] {
            sel[sock].send(&what.to_string()).unwrap();
            n += 1;
            let ready = sel.wait(Some(LIMIT));
            assert_eq!(ready.indices(), [index(what)], "round {round}: {what}");
            // It stays ready (and alone) until received.
            assert_eq!(sel.ready_now().indices(), [index(what)], "round {round}: {what}");
            let got = match what {
                "ring" => u64::from_le_bytes(sel[ring].recv().unwrap().try_into().unwrap()),
                "queue" => sel[queue].get().unwrap(),
                "pipe" => sel[pipe].recv().unwrap(),
                _ => sel[sock].recv().unwrap(),
            };
            assert_eq!(got, n, "round {round}: {what}");
            assert!(sel.ready_now().is_empty(), "round {round}: {what} still ready");
        }
    }
    // All four at once: every one reported (maybe over several waits), each received once.
    sel[sock].send(&"all".to_string()).unwrap();
    n += 1;
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    while seen.len() < 4 {
        assert!(Instant::now() < deadline, "only {seen:?} reported");
        for i in sel.wait(Some(LIMIT)).indices().to_vec() {
            let got = if i == ring.index() {
                u64::from_le_bytes(sel[ring].recv().unwrap().try_into().unwrap())
            } else if i == queue.index() {
                sel[queue].get().unwrap()
            } else if i == pipe.index() {
                sel[pipe].recv().unwrap()
            } else {
                sel[sock].recv().unwrap()
            };
            assert_eq!(got, n);
            assert!(!seen.contains(&i), "{i} reported twice");
            seen.push(i);
        }
    }
    assert!(sel.wait(Some(QUIET)).is_empty());
    // The peer leaves (closing the queue): all four ready, each saying it is over.
    sel[sock].send(&"end".to_string()).unwrap();
    peer.finish(LIMIT);
    let deadline = Instant::now() + LIMIT;
    while sel.wait(Some(LIMIT)).len() < 4 {
        assert!(Instant::now() < deadline, "not all four ready after the peer left");
    }
    assert_eq!(sel[ring].try_recv(), Err(RecvError::Disconnected));
    assert!(matches!(sel[queue].try_get(), Err(shmring::queue::GetError::Closed)));
    assert_eq!(sel[pipe].try_recv::<u64>(), Err(ConnError::Disconnected));
    assert_eq!(sel[sock].recv::<u64>(), Err(ConnError::Disconnected));
}

#[test]
fn select_reports_the_ring_pipe_and_socket_of_a_killed_peer() {
    const TEST: &str = "select_reports_the_ring_pipe_and_socket_of_a_killed_peer";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    let mut m = make("select-kill");
    let (mut peer, mut sock) = spawn(TEST, "holder", &m, &[("N", "1".into()), ("LEAVE", "kill".into())]);
    peer.expect("sent", LIMIT);
    // Take the one message of each; then nothing is ready.
    assert_eq!(m.ring.recv().unwrap(), 0u64.to_le_bytes());
    assert_eq!(m.queue.get().unwrap(), 0);
    assert_eq!(m.pipe.recv::<u64>().unwrap(), 0);
    assert_eq!(sock.recv::<u64>().unwrap(), 0);
    let all = |m: &Mine, s: &SocketConnection| select(&[&m.ring, &m.queue, &m.pipe, s], Some(QUIET));
    assert!(all(&m, &sock).is_empty());
    peer.kill9();
    // The ring, the pipe and the socket turn ready (within the liveness interval for
    // the rings); the queue does not (any handle may still put).
    let deadline = Instant::now() + LIMIT;
    let mut seen: Vec<usize> = Vec::new();
    while seen != [0, 2, 3] {
        assert!(Instant::now() < deadline, "only {seen:?} ready after the kill");
        seen.extend(select(&[&m.ring, &m.queue, &m.pipe, &sock], Some(LIMIT)));
        seen.sort_unstable();
        seen.dedup();
        assert!(!seen.contains(&1), "the queue reported ready: {seen:?}");
    }
    // (A ring's or pipe's `try_` receive checks the producer's liveness only now and
    // then: the blocking receive checks it at once.)
    assert_eq!(m.ring.recv(), Err(RecvError::Disconnected));
    assert_eq!(m.pipe.recv::<u64>(), Err(ConnError::Disconnected));
    assert_eq!(sock.recv::<u64>(), Err(ConnError::Disconnected));
    assert!(matches!(m.queue.try_get(), Err(shmring::queue::GetError::Empty)));
}

/// The iterators of the four ends: `N` messages each, then the end.
fn iterate_to_the_end(m: &mut Mine, sock: &mut SocketConnection, n: u64, queue_too: bool) {
    let ring: Vec<u64> = (&mut m.ring)
        .into_iter()
        .map(|r| u64::from_le_bytes(r.unwrap().try_into().unwrap()))
        .collect();
    assert_eq!(ring, (0..n).collect::<Vec<_>>());
    let pipe: Vec<u64> = m.pipe.iter::<u64>().map(Result::unwrap).collect();
    assert_eq!(pipe, (0..n).collect::<Vec<_>>());
    let sock: Vec<u64> = sock.iter::<u64>().map(Result::unwrap).collect();
    assert_eq!(sock, (0..n).collect::<Vec<_>>());
    if queue_too {
        let queue: Vec<u64> = (&mut m.queue).into_iter().map(Result::unwrap).collect();
        assert_eq!(queue, (0..n).collect::<Vec<_>>());
    } else {
        let queue: Vec<u64> = m.queue.try_iter().map(Result::unwrap).collect();
        assert_eq!(queue, (0..n).collect::<Vec<_>>());
    }
    // Ended iterators stay ended.
    assert!(m.ring.iter().next().is_none());
    assert!(m.pipe.iter_bytes().next().is_none());
}

#[test]
fn iterators_end_when_the_producer_leaves() {
    const TEST: &str = "iterators_end_when_the_producer_leaves";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    let mut m = make("iter-drop");
    let (mut peer, mut sock) = spawn(TEST, "holder", &m, &[("N", "20".into()), ("LEAVE", "drop".into())]);
    peer.expect("sent", LIMIT);
    peer.finish(LIMIT);
    iterate_to_the_end(&mut m, &mut sock, 20, true);
}

#[test]
fn iterators_end_when_the_producer_is_killed() {
    const TEST: &str = "iterators_end_when_the_producer_is_killed";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    let mut m = make("iter-kill");
    let (mut peer, mut sock) = spawn(TEST, "holder", &m, &[("N", "20".into()), ("LEAVE", "kill".into())]);
    peer.expect("sent", LIMIT);
    peer.kill9();
    // The queue does not end at a producer's death (every handle may put): its
    // non-blocking iterator takes what is there.
    iterate_to_the_end(&mut m, &mut sock, 20, false);
}
