//! Cross-process tests of the broadcast ring's zero-copy receive in the lossless
//! policy (`Subscriber::read_ref`, a `ReadGrant` over the record in the ring): every
//! message read in place intact, and a grant held in one process holding the
//! publisher in another.

use crate::broadcast_process::{await_subscribers, exit_with, short_wait, spawn_subscribers, sub_opts};
use crate::common;

use common::*;
use shmring::broadcast::{self, Options, Params, Policy, Publisher, RecvError, SendError, Subscriber};
use std::time::{Duration, Instant};

const SEED: u64 = 0x1a_91ace;
/// Messages of the stream (random lengths in 0..=MAX, sequence number and checksum).
const MESSAGES: u64 = 300_000;
const MAX: usize = 192;
const SUBSCRIBERS: usize = 2;

/// Every message read in place, in order, checked (length, sequence number, checksum)
/// while its grant holds it, then `Disconnected`.
fn in_place_subscriber(name: &str) -> Result<(), String> {
    let mut rx = Subscriber::open_with(name, &sub_opts()).map_err(|e| format!("open: {e}"))?;
    let mut scratch = Vec::new();
    for seq in 0..MESSAGES {
        let g = match seq % 3 {
            0 => rx.read_ref(),
            1 => rx.read_ref_timeout(Duration::from_secs(60)),
            _ => loop {
                match rx.try_read_ref() {
                    Err(RecvError::Empty) => std::thread::yield_now(),
                    r => break r,
                }
            },
        }
        .map_err(|e| format!("read_ref {seq}: {e}"))?;
        check_msg(SEED, seq, MAX, &g, &mut scratch)?;
    }
    match rx.read_ref_timeout(Duration::from_secs(30)).map(|g| g.len()) {
        Err(RecvError::Disconnected) => Ok(()),
        other => Err(format!("after the stream: {other:?}, expected Disconnected")),
    }
}

#[test]
fn lossless_in_place_reads_across_processes_are_intact() {
    if let Some(role) = role() {
        assert_eq!(role, "sub");
        exit_with(in_place_subscriber(&std::env::var("RING").unwrap()));
    }
    let _dog = Watchdog::new("broadcast in-place stream", Duration::from_secs(300));
    let name = unique_name("bcast-inplace");
    // A small ring, so that the publisher laps it many times and overwrites every
    // record soon after its grant drops.
    let params = Params {
        capacity: 1 << 13,
        subscribers: 8,
        policy: Policy::Lossless,
    };
    let mut tx = Publisher::create_with(&name, params, &Options::new().wait(short_wait())).unwrap();
    let mut children = spawn_subscribers(
        "lossless_in_place_reads_across_processes_are_intact",
        &name,
        SUBSCRIBERS,
    );
    let mut buf = [0u8; MAX];
    for seq in 0..MESSAGES {
        let len = msg_len(SEED, seq, MAX);
        fill_msg(seq, &mut buf[..len]);
        tx.send(&buf[..len]).unwrap();
    }
    drop(tx);
    for c in &mut children {
        let st = wait_child(c, Duration::from_secs(240));
        assert!(st.success(), "subscriber process failed: {st}");
    }
}

/// Message `seq` of the hold test: 40 bytes (64-byte records, 128 of them in the ring).
fn hold_msg(seq: u64) -> [u8; 40] {
    let mut m = [0u8; 40];
    fill_msg(seq, &mut m);
    m
}

/// Take a grant on message 0 and hold it until the publisher says `release` on the
/// control ring; then read the rest in place until `Disconnected`.
fn holding_subscriber(name: &str, ctl: &str) -> Result<(), String> {
    let mut rx = Subscriber::open_with(name, &sub_opts()).map_err(|e| format!("open: {e}"))?;
    let mut release = Subscriber::open_with(ctl, &sub_opts()).map_err(|e| format!("open ctl: {e}"))?;
    let g = rx.read_ref().map_err(|e| format!("read_ref 0: {e}"))?;
    if g[..] != hold_msg(0) {
        return Err("message 0 is not intact".into());
    }
    match release.recv_timeout(Duration::from_secs(120)) {
        Ok(m) if m == b"release" => {}
        other => return Err(format!("control ring: {other:?}")),
    }
    if g[..] != hold_msg(0) {
        return Err("message 0 changed while its grant was held".into());
    }
    drop(g);
    let mut seq = 1;
    loop {
        match rx.read_ref_timeout(Duration::from_secs(60)) {
            Ok(g) => {
                if g[..] != hold_msg(seq) {
                    return Err(format!("message {seq} is not intact"));
                }
                seq += 1;
            }
            Err(RecvError::Disconnected) => return Ok(()),
            Err(e) => return Err(format!("read_ref {seq}: {e}")),
        }
    }
}

#[test]
fn a_grant_held_in_another_process_holds_the_lossless_publisher() {
    if let Some(role) = role() {
        assert_eq!(role, "holder");
        let (ring, ctl) = (std::env::var("RING").unwrap(), std::env::var("CTL").unwrap());
        exit_with(holding_subscriber(&ring, &ctl));
    }
    let _dog = Watchdog::new("broadcast grant holds the publisher", Duration::from_secs(240));
    let name = unique_name("bcast-hold");
    let ctl_name = unique_name("bcast-hold-ctl");
    let params = |capacity| Params {
        capacity,
        subscribers: 4,
        policy: Policy::Lossless,
    };
    let opts = Options::new().wait(short_wait());
    let mut tx = Publisher::create_with(&name, params(8192), &opts).unwrap();
    let mut ctl = Publisher::create_with(&ctl_name, params(4096), &opts).unwrap();
    let mut child = spawn_peer(
        "a_grant_held_in_another_process_holds_the_lossless_publisher",
        "holder",
        &[("RING", name.clone()), ("CTL", ctl_name.clone())],
    )
    .spawn()
    .unwrap();
    await_subscribers(&name, 1);
    await_subscribers(&ctl_name, 1);
    tx.send(&hold_msg(0)).unwrap();
    // The subscriber has message 0 (delivered: received 1) while its slot's cursor
    // stays before it: the grant holds the record.
    let start = Instant::now();
    loop {
        let s = broadcast::inspect(&name).unwrap().subscribers[0];
        if s.received == 1 {
            assert_eq!(s.cursor, 0, "a held record's cursor is not published");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "message 0 was not read");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Fill the rest of the ring: 127 records, then Full, and it stays Full while the
    // grant lives (a bounded wait ends in Timeout).
    let mut sent = 1;
    while tx.try_send(&hold_msg(sent)).is_ok() {
        sent += 1;
    }
    assert_eq!(sent, 128);
    assert_eq!(
        tx.send_timeout(&hold_msg(sent), Duration::from_millis(100)),
        Err(SendError::Timeout)
    );
    assert_eq!(tx.try_send(&hold_msg(sent)), Err(SendError::Full));
    ctl.send(b"release").unwrap();
    // The grant's drop gives the record back (and the subscriber reads on).
    tx.send_timeout(&hold_msg(sent), Duration::from_secs(60)).unwrap();
    for seq in sent + 1..sent + 1000 {
        tx.send_timeout(&hold_msg(seq), Duration::from_secs(60)).unwrap();
    }
    drop(tx);
    let st = wait_child(&mut child, Duration::from_secs(120));
    assert!(st.success(), "holding subscriber failed: {st}");
    drop(ctl);
}
