//! Threads feeding a mixed set (rings, a queue, pipes and sockets) while one thread
//! selects: every message received exactly once, nothing lost to a sleep; the
//! Selector's keys; the iterators' error handling.

use super::*;
use crate::connection::{ConnError, pipe};
use crate::net::{Address, Client, Listener, SocketConnection};
use crate::queue::Queue;
use crate::ring::spsc;

fn socket_pair(tag: &str) -> (SocketConnection, SocketConnection) {
    let addr = Address::Abstract(format!("shmring-select-test-{tag}-{}", std::process::id()));
    let l = Listener::bind(&addr, None).unwrap();
    let c = std::thread::spawn(move || Client::connect(&addr, None).unwrap());
    let s = l.accept().unwrap();
    (s, c.join().unwrap())
}

/// A pseudo-random pause now and then.
fn pause(x: &mut u64) {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    if *x % 4 == 0 {
        std::thread::sleep(Duration::from_micros(*x % 300));
    }
}

#[test]
fn a_mixed_selector_receives_every_message_once() {
    const PER: u32 = 400;
    let mut sel = Selector::new();
    let mut feeders = Vec::new();
    let (mut tx, rx) = spsc::channel(1 << 12).unwrap();
    let ring = sel.add(rx);
    feeders.push(std::thread::spawn(move || {
        let mut x = 1;
        for i in 0..PER {
            pause(&mut x);
            tx.send(&i.to_le_bytes()).unwrap();
        }
    }));
    let q: Queue<u32> = Queue::new(64).unwrap();
    let mut qtx = q.try_clone().unwrap();
    let queue = sel.add(q);
    feeders.push(std::thread::spawn(move || {
        let mut x = 2;
        for i in 0..PER {
            pause(&mut x);
            qtx.put(&i).unwrap();
        }
        qtx.close();
    }));
    let (a, mut b) = pipe(false).unwrap();
    let conn = sel.add(a);
    feeders.push(std::thread::spawn(move || {
        let mut x = 3;
        for i in 0..PER {
            pause(&mut x);
            b.send(&i).unwrap();
        }
    }));
    let (s, mut c) = socket_pair("fan-in");
    let sock = sel.add(s);
    feeders.push(std::thread::spawn(move || {
        let mut x = 4;
        for i in 0..PER {
            pause(&mut x);
            c.send(&i).unwrap();
        }
    }));
    let mut next = [0u32; 4];
    let mut done = [false; 4];
    let start = Instant::now();
    while done != [true; 4] {
        assert!(start.elapsed() < Duration::from_secs(60), "stalled: {next:?} {done:?}");
        let ready = sel.wait(Some(Duration::from_secs(10)));
        assert!(!ready.is_empty(), "nothing ready for 10 s: {next:?} {done:?}");
        for &i in ready.indices() {
            let got = if i == ring.index() {
                sel[ring].recv().map(|v| u32::from_le_bytes(v.try_into().unwrap())).ok()
            } else if i == queue.index() {
                sel[queue].get().ok()
            } else if i == conn.index() {
                sel[conn].recv().ok()
            } else {
                sel[sock].recv().ok()
            };
            match got {
                Some(v) => {
                    assert_eq!(v, next[i], "source {i}: lost, duplicated or reordered");
                    next[i] += 1;
                }
                None => {
                    assert_eq!(next[i], PER, "source {i} ended early");
                    done[i] = true;
                }
            }
        }
        // Ended sources stay ready: leave them out by removing them.
        if done[0] && sel.contains(ring) {
            drop(sel.remove(ring));
        }
        if done[1] && sel.contains(queue) {
            drop(sel.remove(queue));
        }
        if done[2] && sel.contains(conn) {
            drop(sel.remove(conn));
        }
        if done[3] && sel.contains(sock) {
            drop(sel.remove(sock));
        }
    }
    assert!(sel.is_empty());
    for f in feeders {
        f.join().unwrap();
    }
}

#[test]
fn a_mixed_select_times_out_and_wakes_for_a_late_message() {
    const ROUNDS: i32 = 300;
    let (mut tx, mut rx) = spsc::channel(1024).unwrap();
    let (mut s, mut c) = socket_pair("late");
    let start = Instant::now();
    assert!(select(&[&rx, &s], Some(Duration::from_millis(20))).is_empty());
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert!(select(&[&rx, &s], Some(Duration::ZERO)).is_empty());
    let (go, went) = std::sync::mpsc::channel::<i32>();
    let feeder = std::thread::spawn(move || {
        for round in went {
            // Late: most of the time the selecting thread is asleep by then.
            std::thread::sleep(Duration::from_micros(200));
            if round % 2 == 0 {
                c.send(&round).unwrap();
            } else {
                tx.send(&round.to_le_bytes()).unwrap();
            }
        }
    });
    for round in 0..ROUNDS {
        go.send(round).unwrap();
        let r = select(&[&rx, &s], Some(Duration::from_secs(30)));
        if round % 2 == 0 {
            assert_eq!(r, [1], "round {round}");
            assert_eq!(s.recv::<i32>().unwrap(), round);
        } else {
            assert_eq!(r, [0], "round {round}");
            assert_eq!(rx.recv().unwrap(), round.to_le_bytes());
        }
    }
    drop(go);
    feeder.join().unwrap();
}

#[test]
fn selector_keys_reach_their_own_sources_only() {
    let mut a = Selector::new();
    let mut b = Selector::new();
    let (_tx, rx) = spsc::channel(1024).unwrap();
    let (p, _q) = pipe(true).unwrap();
    let ka = a.add(rx);
    let kb = b.add(p);
    assert_eq!((ka.index(), kb.index()), (0, 0));
    assert!(a.ready_now().is_empty());
    let wrong = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = a.get(kb);
    }));
    assert!(wrong.is_err(), "a key of another selector was accepted");
    assert!(a.contains(ka) && !a.contains(kb));
    let rx = a.remove(ka);
    assert!(a.is_empty() && !a.contains(ka));
    let gone = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = a.get(ka);
    }));
    assert!(gone.is_err(), "a removed key was accepted");
    drop(rx);
    assert_eq!(b.len(), 1);
}

#[test]
fn iterators_yield_per_message_errors_and_go_on() {
    let (mut a, mut b) = pipe(true).unwrap();
    a.send(&1u64).unwrap();
    a.send_bytes(&[0xff; 12]).unwrap(); // not a u64 (an overlong varint)
    a.send(&3u64).unwrap();
    let got: Vec<_> = b.try_iter::<u64>().collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], Ok(1));
    assert!(matches!(got[1], Err(ConnError::Codec(_))), "{got:?}");
    assert_eq!(got[2], Ok(3));
    a.send_bytes(b"raw").unwrap();
    drop(a);
    let bytes: Vec<_> = (&mut b).into_iter().collect();
    assert_eq!(bytes, [Ok(b"raw".to_vec())]);
}

#[test]
fn a_listener_is_ready_when_a_client_waits_to_be_accepted() {
    let addr = Address::Abstract(format!("shmring-select-test-listener-{}", std::process::id()));
    let l = Listener::bind(&addr, None).unwrap();
    let (mut tx, rx) = spsc::channel(1024).unwrap();
    assert!(select(&[&l, &rx], Some(Duration::from_millis(20))).is_empty());
    let c = std::thread::spawn(move || Client::connect(&addr, None).unwrap());
    assert_eq!(select(&[&l, &rx], Some(Duration::from_secs(30))), [0]);
    let _s = l.accept().unwrap();
    let _c = c.join().unwrap();
    tx.send(b"x").unwrap();
    assert_eq!(select(&[&l, &rx], Some(Duration::from_secs(30))), [1]);
}
