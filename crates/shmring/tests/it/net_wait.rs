//! `shmring::net::wait` over socket connections from other processes: the ready ones
//! and only they, a killed peer counted as ready (its end of stream), the timeout, and
//! `wait_interruptible` ended by the interrupt flag (in a process of its own: the flag
//! is process-wide).

use crate::common;

use common::peer::*;
use common::*;
use shmring::ConnError;
use shmring::net::{self, Client, Listener, SocketConnection};
use shmring::signal::Interrupt;
use shmring::sync::Interrupted;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "client" => client_peer(),
        "interrupted" => interrupted_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

/// Connect, say which client this is, then answer every "go" with its number.
fn client_peer() -> Result<(), String> {
    let me: u64 = env_str("ME").parse().map_err(|e| format!("ME: {e}"))?;
    let mut c = Client::connect(&peer_addr()?, None).map_err(|e| format!("connect: {e}"))?;
    c.send(&me).map_err(|e| format!("send: {e}"))?;
    loop {
        match c.recv::<String>() {
            Ok(_) => c.send(&me).map_err(|e| format!("send: {e}"))?,
            Err(ConnError::Disconnected) => return Ok(()),
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
}

#[test]
fn wait_reports_the_ready_connections_of_other_processes() {
    const TEST: &str = "wait_reports_the_ready_connections_of_other_processes";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let l = Listener::bind(&abstract_addr("wait"), None).unwrap();
    let mut peers: Vec<Peer> = Vec::new();
    // conns[i] is client i's connection (each says its number first).
    let mut conns: Vec<Option<SocketConnection>> = (0..3).map(|_| None).collect();
    for i in 0..3u64 {
        peers.push(Peer::spawn(
            TEST,
            "client",
            &[("ADDR", l.local_addr().to_string()), ("ME", i.to_string())],
        ));
        let mut s = l.accept_timeout(LIMIT).unwrap();
        let me: u64 = s.recv_timeout(LIMIT).unwrap();
        conns[me as usize] = Some(s);
    }
    let mut conns: Vec<SocketConnection> = conns.into_iter().map(Option::unwrap).collect();
    // Nothing to receive: the timeout passes.
    let t = Instant::now();
    assert!(net::wait(&[&conns[0], &conns[1], &conns[2]], Some(Duration::from_millis(50))).is_empty());
    eprintln!("an empty wait of 50 ms returned after {:?}", t.elapsed());
    // One client answers: only it is ready, and stays so until received.
    for who in [2usize, 0, 1] {
        conns[who].send(&"go".to_string()).unwrap();
        assert_eq!(net::wait(&[&conns[0], &conns[1], &conns[2]], Some(LIMIT)), [who]);
        assert_eq!(net::wait(&[&conns[0], &conns[1], &conns[2]], Some(LIMIT)), [who]);
        assert_eq!(conns[who].recv_timeout::<u64>(LIMIT).unwrap(), who as u64);
    }
    // Two answers at once: both, and a whole message already buffered counts.
    conns[0].send(&"go".to_string()).unwrap();
    conns[0].send(&"go".to_string()).unwrap();
    conns[1].send(&"go".to_string()).unwrap();
    let deadline = Instant::now() + LIMIT;
    let mut both = Vec::new();
    while both != [0, 1] && Instant::now() < deadline {
        both = net::wait(&[&conns[0], &conns[1], &conns[2]], Some(LIMIT));
    }
    assert_eq!(both, [0, 1]);
    assert_eq!(conns[1].recv_timeout::<u64>(LIMIT).unwrap(), 1);
    assert_eq!(conns[0].recv_timeout::<u64>(LIMIT).unwrap(), 0);
    // The second answer of client 0 may be in the read buffer already, or on its way.
    assert_eq!(net::wait(&[&conns[0], &conns[1], &conns[2]], Some(LIMIT)), [0]);
    assert_eq!(conns[0].recv_timeout::<u64>(LIMIT).unwrap(), 0);
    // A killed client: its end of stream is ready, the receive says Disconnected.
    peers.remove(1).kill9();
    assert_eq!(net::wait(&[&conns[0], &conns[1], &conns[2]], Some(LIMIT)), [1]);
    assert_eq!(conns[1].recv_timeout::<u64>(LIMIT), Err(ConnError::Disconnected));
    // A closed end is ready at once (its receive reports Closed).
    conns[2].close();
    assert_eq!(net::wait(&[&conns[0], &conns[2]], Some(LIMIT)), [1]);
    drop(conns);
    for p in peers {
        p.finish(LIMIT);
    }
}

/// `wait_interruptible` with nothing to receive ends with Interrupted once the flag is
/// raised by a signal from another thread; `wait` does not.
fn interrupted_peer() -> Result<(), String> {
    let l = Listener::bind(&abstract_addr("wait-intr"), None).map_err(|e| e.to_string())?;
    let addr = l.local_addr().clone();
    let t = std::thread::spawn(move || Client::connect(&addr, None));
    let s = l.accept_timeout(LIMIT).map_err(|e| e.to_string())?;
    let _c = t.join().map_err(|_| "client thread")?.map_err(|e| e.to_string())?;
    let interrupt = Interrupt::install(&[libc::SIGUSR2]).map_err(|e| e.to_string())?;
    // The signal, from another thread of this process: its handler raises the flag.
    let raiser = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        shmring::signal::notify(std::process::id(), libc::SIGUSR2)
    });
    let start = Instant::now();
    let r = net::wait_interruptible(&[&s], Some(LIMIT));
    raiser
        .join()
        .map_err(|_| "raiser thread")?
        .map_err(|e| format!("notify: {e}"))?;
    if r != Err(Interrupted) {
        return Err(format!("wait_interruptible gave {r:?}"));
    }
    // The plain wait ignores the flag: it times out.
    if !net::wait(&[&s], Some(Duration::from_millis(20))).is_empty() {
        return Err("the plain wait reported a ready connection".into());
    }
    interrupt.clear();
    say(&format!("interrupted after {:?}", start.elapsed()));
    Ok(())
}

#[test]
fn wait_interruptible_ends_on_the_interrupt_flag() {
    const TEST: &str = "wait_interruptible_ends_on_the_interrupt_flag";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let lines = Peer::spawn(TEST, "interrupted", &[]).finish(LIMIT);
    assert!(lines.iter().any(|l| l.contains("interrupted after")), "{lines:?}");
}
