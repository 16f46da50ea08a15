//! Cross-process tests of the in-place typed receives of `shmring::connection`:
//! borrowed decode of messages another process sent (one-record and chunked), and
//! batches whose producer is killed: every committed message arrives, then
//! `Disconnected`.

use crate::common;

use common::peer::*;
use common::*;
use serde::{Deserialize, Serialize};
use shmring::connection::{ConnError, Connection, ConnectionOptions, pipe_with};
use std::time::Duration;

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "tick-sender" => tick_sender(),
        _ => Err(format!("unknown role {role}")),
    })
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Tick {
    seq: u64,
    sym: String,
    data: Vec<u8>,
}

#[derive(Deserialize, Debug)]
struct TickRef<'a> {
    seq: u64,
    sym: &'a str,
    #[serde(borrow)]
    data: &'a [u8],
}

/// Message `seq`: one in 500 is 140 KB (chunked: a 256 KiB ring's records hold up to
/// about 128 KiB).
fn tick(seq: u64) -> Tick {
    let len = if seq % 500 == 250 { 140_000 } else { (seq % 13) as usize };
    Tick {
        seq,
        sym: format!("S{seq}"),
        data: (0..len).map(|i| (i as u64 ^ seq) as u8).collect(),
    }
}

fn is_tick(t: &TickRef<'_>, seq: u64) -> bool {
    let w = tick(seq);
    t.seq == w.seq && t.sym == w.sym && t.data == &w.data[..]
}

/// Send `N` ticks (`N` = 0: without end), say "sent", then sleep until killed.
fn tick_sender() -> Result<(), String> {
    let fd = fd_from_env("W");
    let mut c = Connection::from_fds(None, Some(fd)).map_err(|e| e.to_string())?;
    let n = env_num("N");
    let mut seq = 0;
    while n == 0 || seq < n {
        c.send(&tick(seq)).map_err(|e| e.to_string())?;
        seq += 1;
    }
    say("sent");
    std::thread::sleep(Duration::from_secs(600));
    Ok(())
}

fn spawn_sender(test: &str, n: u64) -> (Connection, Peer) {
    let (r, w) = pipe_with(false, 1 << 18, &ConnectionOptions::new()).unwrap();
    let (_, wfd) = w.into_fds();
    let wi = inheritable(wfd.as_ref().unwrap());
    let peer = Peer::spawn(test, "tick-sender", &[("W", fd_string(&wi)), ("N", n.to_string())]);
    drop((wi, wfd));
    (r, peer)
}

#[test]
fn borrowed_receives_and_batches_of_a_killed_producer_lose_nothing_committed() {
    const TEST: &str = "borrowed_receives_and_batches_of_a_killed_producer_lose_nothing_committed";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    // 1. A producer that sent 1,000 ticks and was killed: read half of them in place,
    // the rest in batches; all arrive in order, then Disconnected.
    let (mut r, mut peer) = spawn_sender(TEST, 1_000);
    let mut seq = 0;
    while seq < 500 {
        let m = r.recv_ref().unwrap();
        let t: TickRef<'_> = m.decode().unwrap();
        assert!(is_tick(&t, seq), "message {seq}: {t:?}");
        seq += 1;
    }
    peer.expect("sent", Duration::from_secs(60));
    peer.kill9();
    loop {
        match r.recv_batch(64, |m| {
            let t: TickRef<'_> = m.decode().unwrap();
            assert!(is_tick(&t, seq), "message {seq}: {t:?}");
            seq += 1;
        }) {
            Ok(n) => assert!((1..=64).contains(&n)),
            Err(ConnError::Disconnected) => break,
            Err(e) => panic!("after {seq}: {e}"),
        }
    }
    assert_eq!(seq, 1_000);
    // 2. A producer killed while it sends: the batches hold every message in order
    // without a gap up to where it died, then Disconnected.
    let (mut r, mut peer) = spawn_sender(TEST, 0);
    let mut seq = 0;
    let mut killed = false;
    loop {
        match r.recv_batch(256, |m| {
            let t: TickRef<'_> = m.decode().unwrap();
            assert!(is_tick(&t, seq), "message {seq}: {t:?}");
            seq += 1;
        }) {
            Ok(_) => {}
            Err(ConnError::Disconnected) => break,
            Err(e) => panic!("after {seq}: {e}"),
        }
        if !killed && seq >= 20_000 {
            peer.kill9();
            killed = true;
        }
    }
    assert!(killed && seq >= 20_000);
}
