//! Wake-up latency of `shmring::select` against `connection::wait` (pipes) and
//! `net::wait` (sockets), measured in the same run: a waiter thread sleeps on four
//! sources; a feeder thread waits 1 ms (so the waiter is asleep in the kernel), notes
//! the time and sends one message on one source; the latency is from that note to the
//! waiter's return. Cases: pipes only (`connection::wait` vs `select`), sockets only
//! (`net::wait` vs `select`), and a mixed set of two pipes and two sockets woken by a
//! pipe or by a socket (`select` only: nothing else waits on both).
//!
//! Run: `cargo run --release --example select_latency [rounds]` (default 1000 rounds
//! per case; prints the median, 90th and 99th percentiles in microseconds).
use shmring::connection::{self, Connection, pipe};
use shmring::net::{self, Address, Client, Listener, SocketConnection};
use shmring::select::{Selectable, select};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Which source a round wakes.
#[derive(Clone, Copy)]
enum Src {
    Pipe(usize),
    Sock(usize),
}

/// The feeder's ends: the pipes' and sockets' other ends.
struct Feeder {
    pipes: Vec<Connection>,
    socks: Vec<SocketConnection>,
}

fn socket_pairs(n: usize) -> (Vec<SocketConnection>, Vec<SocketConnection>) {
    let addr = Address::Abstract(format!("shmring-select-latency-{}", std::process::id()));
    let l = Listener::bind(&addr, None).expect("bind");
    // One pair at a time: `accept` returns connections in the order their handshakes
    // finish, not the order the clients connected.
    (0..n)
        .map(|_| {
            let a2 = addr.clone();
            let t = std::thread::spawn(move || Client::connect(&a2, None).expect("connect"));
            let mine = l.accept().expect("accept");
            (mine, t.join().unwrap())
        })
        .unzip()
}

/// A wait over the waiter's pipes and sockets: the ready indices.
type WaitFn<'a> = &'a dyn Fn(&[Connection], &[SocketConnection]) -> Vec<usize>;

/// `rounds` wake-ups of `wait` (which returns the ready indices over the waiter's
/// sources) by messages on `src(round)`; the latencies in ns, sorted.
fn measure(
    rounds: usize,
    pipes: &mut [Connection],
    socks: &mut [SocketConnection],
    feeder: Feeder,
    src: impl Fn(usize) -> Src + Send + Copy + 'static,
    wait: WaitFn<'_>,
) -> (Vec<u64>, Feeder) {
    let base = Instant::now();
    let sent_at = Arc::new(AtomicU64::new(0));
    let (go, went) = mpsc::channel::<()>();
    let at = Arc::clone(&sent_at);
    let t = std::thread::spawn(move || {
        let mut f = feeder;
        for r in 0..rounds {
            if went.recv().is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            at.store(base.elapsed().as_nanos() as u64, Ordering::Release);
            match src(r) {
                Src::Pipe(i) => f.pipes[i].send(&r).expect("pipe send"),
                Src::Sock(i) => f.socks[i].send(&r).expect("socket send"),
            }
        }
        f
    });
    let mut lat = Vec::with_capacity(rounds);
    for r in 0..rounds {
        go.send(()).unwrap();
        let ready = wait(pipes, socks);
        let now = base.elapsed().as_nanos() as u64;
        lat.push(now.saturating_sub(sent_at.load(Ordering::Acquire)));
        assert_eq!(ready.len(), 1, "round {r}: {ready:?}");
        // A receive that cannot hang: a source reported ready without its message is a
        // failure with the facts, not a wait for a message the feeder sends next round.
        let limit = Duration::from_secs(5);
        let sent = sent_at.load(Ordering::Acquire) != 0;
        match src(r) {
            Src::Pipe(i) => assert_eq!(
                pipes[i].recv_timeout::<usize>(limit).unwrap_or_else(|e| panic!(
                    "round {r}: ready {ready:?} (fed: pipe {i}, sent before the wait returned: {sent}): {e}"
                )),
                r
            ),
            Src::Sock(i) => assert_eq!(
                socks[i].recv_timeout::<usize>(limit).unwrap_or_else(|e| panic!(
                    "round {r}: ready {ready:?} (fed: socket {i}, sent before the wait returned: {sent}): {e}"
                )),
                r
            ),
        }
        sent_at.store(0, Ordering::Release);
    }
    drop(go);
    let f = t.join().unwrap();
    lat.sort_unstable();
    (lat, f)
}

fn report(what: &str, lat: &[u64]) {
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!("| {what} | {:.1} | {:.1} | {:.1} |", p(0.5), p(0.9), p(0.99));
}

fn main() {
    let rounds: usize = std::env::args().nth(1).map_or(1000, |a| a.parse().expect("rounds"));
    let (mut mine_p, theirs_p): (Vec<Connection>, Vec<Connection>) = (0..4).map(|_| pipe(true).unwrap()).unzip();
    let (mut mine_s, theirs_s) = socket_pairs(4);
    let mut feeder = Feeder {
        pipes: theirs_p,
        socks: theirs_s,
    };
    println!("{rounds} wake-ups per row, after the waiter slept 1 ms; microseconds");
    println!();
    println!("| set, woken by, wait | median | p90 | p99 |");
    println!("| --- | --- | --- | --- |");
    let all = |p: &[Connection], s: &[SocketConnection], np: usize, ns: usize| -> Vec<usize> {
        let v: Vec<&dyn Selectable> = p[..np]
            .iter()
            .map(|c| c as &dyn Selectable)
            .chain(s[..ns].iter().map(|c| c as &dyn Selectable))
            .collect();
        select(&v, None)
    };
    // Alternate the two waits row by row, twice, so that drift hits both.
    for pass in 0..2 {
        let (l, f) = measure(
            rounds,
            &mut mine_p,
            &mut mine_s,
            feeder,
            |r| Src::Pipe(r % 4),
            &|p, _| connection::wait(&[&p[0], &p[1], &p[2], &p[3]], None),
        );
        report(&format!("4 pipes, pipe, `connection::wait` (pass {pass})"), &l);
        let (l, f) = measure(rounds, &mut mine_p, &mut mine_s, f, |r| Src::Pipe(r % 4), &|p, s| {
            all(p, s, 4, 0)
        });
        report(&format!("4 pipes, pipe, `select` (pass {pass})"), &l);
        let (l, f) = measure(rounds, &mut mine_p, &mut mine_s, f, |r| Src::Sock(r % 4), &|_, s| {
            net::wait(&[&s[0], &s[1], &s[2], &s[3]], None)
        });
        report(&format!("4 sockets, socket, `net::wait` (pass {pass})"), &l);
        let (l, f) = measure(rounds, &mut mine_p, &mut mine_s, f, |r| Src::Sock(r % 4), &|p, s| {
            all(p, s, 0, 4)
        });
        report(&format!("4 sockets, socket, `select` (pass {pass})"), &l);
        let (l, f) = measure(rounds, &mut mine_p, &mut mine_s, f, |r| Src::Pipe(r % 2), &|p, s| {
            all(p, s, 2, 2)
        });
        report(&format!("2 pipes + 2 sockets, pipe, `select` (pass {pass})"), &l);
        let (l, f) = measure(rounds, &mut mine_p, &mut mine_s, f, |r| Src::Sock(r % 2), &|p, s| {
            all(p, s, 2, 2)
        });
        report(&format!("2 pipes + 2 sockets, socket, `select` (pass {pass})"), &l);
        feeder = f;
    }
}
