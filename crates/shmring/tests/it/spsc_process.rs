//! Cross-process tests of the SPSC ring: the test binary re-executes itself as the
//! peer (see `common::spawn_peer`), so each side runs in its own process.

use crate::common;

use common::*;
use shmring::ring::spsc::{Consumer, Producer, RingOptions};
use shmring::{RecvError, SendError, WaitStrategy};
use std::time::{Duration, Instant};

const STREAM_MESSAGES: u64 = 1_000_000;
const MAX_LEN: usize = 4096;
const SEED: u64 = 0x5eed_0001;

/// The consumer side of a stream: receive `n` messages (copied or in place) and check
/// each one's length, sequence number, checksum and contents; then expect
/// `Disconnected`.
fn consume_stream(rx: &mut Consumer, n: u64, zero_copy: bool) -> Result<(), String> {
    let mut buf = Vec::new();
    let mut scratch = Vec::new();
    for seq in 0..n {
        if zero_copy {
            let g = rx.read().map_err(|e| format!("read {seq}: {e}"))?;
            check_msg(SEED, seq, MAX_LEN, &g, &mut scratch)?;
        } else {
            rx.recv_into(&mut buf).map_err(|e| format!("recv {seq}: {e}"))?;
            check_msg(SEED, seq, MAX_LEN, &buf, &mut scratch)?;
        }
    }
    match rx.recv_timeout(Duration::from_secs(20)) {
        Err(RecvError::Disconnected) => Ok(()),
        other => Err(format!("after the stream: {other:?}, expected Disconnected")),
    }
}

fn produce_stream(tx: &mut Producer, n: u64, zero_copy: bool) -> Result<(), String> {
    let mut buf = vec![0u8; MAX_LEN];
    for seq in 0..n {
        let len = msg_len(SEED, seq, MAX_LEN);
        if zero_copy {
            let mut g = tx.claim(len).map_err(|e| format!("claim {seq}: {e}"))?;
            fill_msg(seq, &mut g);
            // Every 7th message is committed deferred: several claims, one publish.
            if seq % 7 == 0 { g.commit_deferred() } else { g.commit() }
        } else {
            fill_msg(seq, &mut buf[..len]);
            tx.send(&buf[..len]).map_err(|e| format!("send {seq}: {e}"))?;
        }
    }
    Ok(())
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

/// Run a 1M-message stream with the consumer in a child process.
fn stream_test(test: &str, zero_copy: bool) {
    if let Some(role) = role() {
        assert_eq!(role, "consumer");
        let name = std::env::var("RING").unwrap();
        let mut rx = Consumer::open(&name).expect("open consumer");
        exit_with(consume_stream(&mut rx, STREAM_MESSAGES, zero_copy));
    }
    let _dog = Watchdog::new("1M-message stream", Duration::from_secs(240));
    let name = unique_name("stream");
    let mut tx = Producer::create(&name, 1 << 16).unwrap();
    let mut child = spawn_peer(test, "consumer", &[("RING", name.clone())]).spawn().unwrap();
    produce_stream(&mut tx, STREAM_MESSAGES, zero_copy).unwrap();
    drop(tx);
    let st = wait_child(&mut child, Duration::from_secs(120));
    assert!(st.success(), "consumer process failed: {st}");
}

#[test]
fn stream_million_random_messages_across_processes() {
    stream_test("stream_million_random_messages_across_processes", false);
}

#[test]
fn stream_million_zero_copy_across_processes() {
    stream_test("stream_million_zero_copy_across_processes", true);
}

/// An anonymous ring whose consumer end is handed to a child by descriptor inheritance.
#[test]
fn anonymous_ring_handed_to_child_by_fd() {
    const TEST: &str = "anonymous_ring_handed_to_child_by_fd";
    if role().is_some() {
        let mut rx = Consumer::from_fd(fd_from_env("RING_FD")).expect("from_fd");
        exit_with(consume_stream(&mut rx, 50_000, false));
    }
    let _dog = Watchdog::new("fd hand-off", Duration::from_secs(60));
    let (mut tx, rx) = shmring::ring::spsc::channel(1 << 14).unwrap();
    let fd = rx.into_fd().expect("segment-backed end");
    let child_fd = inheritable(&fd);
    let mut child = spawn_peer(TEST, "consumer", &[("RING_FD", fd_string(&child_fd))])
        .spawn()
        .unwrap();
    // The child holds the description now; ours can go.
    drop(child_fd);
    drop(fd);
    produce_stream(&mut tx, 50_000, false).unwrap();
    drop(tx);
    let st = wait_child(&mut child, Duration::from_secs(60));
    assert!(st.success(), "consumer process failed: {st}");
}

/// SIGKILL the producer mid-stream: the consumer drains and gets `Disconnected`.
#[test]
fn producer_killed_mid_stream_disconnects_consumer() {
    const TEST: &str = "producer_killed_mid_stream_disconnects_consumer";
    if role().is_some() {
        let name = std::env::var("RING").unwrap();
        let mut tx = Producer::open(&name).expect("open producer");
        let mut seq = 0u64;
        let mut buf = vec![0u8; MAX_LEN];
        loop {
            let len = msg_len(SEED, seq, MAX_LEN);
            fill_msg(seq, &mut buf[..len]);
            if tx.send(&buf[..len]).is_err() {
                std::process::exit(2);
            }
            seq += 1;
        }
    }
    for wait in [WaitStrategy::default(), WaitStrategy::Blocking, WaitStrategy::Spin] {
        let _dog = Watchdog::new("producer kill", Duration::from_secs(30));
        let name = unique_name("pkill");
        let mut rx = Consumer::create_with(&name, 1 << 16, &RingOptions::new().wait(wait)).unwrap();
        let mut child = spawn_peer(TEST, "producer", &[("RING", name.clone())]).spawn().unwrap();
        let mut buf = Vec::new();
        let mut scratch = Vec::new();
        for seq in 0..20_000 {
            rx.recv_into(&mut buf).unwrap();
            check_msg(SEED, seq, MAX_LEN, &buf, &mut scratch).unwrap();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let killed = Instant::now();
        let mut seq = 20_000;
        let end = loop {
            match rx.recv_into(&mut buf) {
                Ok(_) => {
                    check_msg(SEED, seq, MAX_LEN, &buf, &mut scratch).unwrap();
                    seq += 1;
                }
                Err(e) => break e,
            }
        };
        assert_eq!(end, RecvError::Disconnected, "{wait:?}");
        eprintln!(
            "{}: Disconnected {:?} after SIGKILL, {seq} messages intact",
            wait.name(),
            killed.elapsed()
        );
    }
}

/// SIGKILL the consumer while the producer is blocked on a full ring.
#[test]
fn consumer_killed_disconnects_blocked_producer() {
    const TEST: &str = "consumer_killed_disconnects_blocked_producer";
    if role().is_some() {
        let name = std::env::var("RING").unwrap();
        let mut rx = Consumer::open(&name).expect("open consumer");
        // Take a few messages, then stop reading (the producer fills the ring).
        for _ in 0..10 {
            rx.recv().unwrap();
        }
        std::thread::sleep(Duration::from_secs(600));
        std::process::exit(3);
    }
    for wait in [WaitStrategy::default(), WaitStrategy::Blocking, WaitStrategy::Spin] {
        let _dog = Watchdog::new("consumer kill", Duration::from_secs(30));
        let name = unique_name("ckill");
        let mut tx = Producer::create_with(&name, 1 << 12, &RingOptions::new().wait(wait)).unwrap();
        let mut child = spawn_peer(TEST, "consumer", &[("RING", name.clone())]).spawn().unwrap();
        let msg = [7u8; 100];
        // Fill until the ring is full (the child reads 10 and stops).
        let mut sent = 0;
        loop {
            match tx.send_timeout(&msg, Duration::from_millis(500)) {
                Ok(()) => sent += 1,
                Err(SendError::Timeout) => break,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert!(sent > 10);
        let pid = child.id();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).unwrap(),
                rustix::process::Signal::KILL,
            )
            .unwrap();
        });
        // Blocked on the full ring when the consumer dies.
        let start = Instant::now();
        let r = tx.send(&msg);
        killer.join().unwrap();
        child.wait().unwrap();
        assert_eq!(r, Err(SendError::Disconnected), "{wait:?}");
        eprintln!("{}: Disconnected {:?} after blocking", wait.name(), start.elapsed());
    }
}
