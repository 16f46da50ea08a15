//! Loom models of the waiter protocol (`shmring::sync` module docs): a consumer asleep
//! on an empty ring, a producer asleep on a full one, and the close path. The futex is
//! modelled after shadow's vasi-sync with timeouts ignored, so a lost wake-up leaves a
//! thread blocked forever, which loom reports as a deadlock.
//!
//! An end that drops wakes its peer unconditionally, which would rescue a lost wake-up;
//! so in the wake-up models each thread hands its end back to the main thread, which
//! drops both only after joining both.
//!
//! The ends travel in `ManuallyDrop`: when loom reports a deadlock it tears down the
//! blocked threads, and an end dropped then would touch loom atomics outside the
//! execution and abort the process instead of failing (or passing) the test.

mod common;

use loom::thread;
use shmring::ring::spsc::loom_break::{self, LoomBreak};
use shmring::ring::spsc::loom_channel;
use shmring::{RecvError, WaitStrategy};
use std::mem::ManuallyDrop;

/// The consumer sleeps (blocking `recv`) while the producer sends two messages.
fn recv_wakeup_model() {
    let (p, c) = loom_channel(128, WaitStrategy::Blocking);
    let (mut p, mut c) = (ManuallyDrop::new(p), ManuallyDrop::new(c));
    let producer = thread::spawn(move || {
        p.send(b"one").unwrap();
        p.send(b"two!").unwrap();
        p
    });
    let consumer = thread::spawn(move || {
        assert_eq!(c.recv().unwrap(), b"one");
        assert_eq!(c.recv().unwrap(), b"two!");
        c
    });
    let p = producer.join().unwrap();
    let c = consumer.join().unwrap();
    drop((ManuallyDrop::into_inner(p), ManuallyDrop::into_inner(c)));
}

#[test]
fn blocking_recv_is_woken() {
    common::check("blocking_recv_is_woken", recv_wakeup_model);
}

/// The sleeper skips the heavy fence between `waiting = 1` and its re-check of `tail`:
/// the producer can miss the flag while the consumer misses the message.
#[test]
#[should_panic(expected = "deadlock")]
fn waiter_protocol_catches_missing_sleeper_fence() {
    let _bug = loom_break::set(LoomBreak::HeavyFenceSkipped);
    common::check("waiter_protocol_catches_missing_sleeper_fence", recv_wakeup_model);
}

/// The producer sleeps (blocking `send`) on a full ring while the consumer drains it,
/// itself sleeping when it finds the ring empty.
fn send_wakeup_model() {
    let (p, c) = loom_channel(128, WaitStrategy::Blocking);
    let (mut p, mut c) = (ManuallyDrop::new(p), ManuallyDrop::new(c));
    // Records (8-byte header, 8-byte alignment) of 40, 40 and 16 bytes at 0, 40 and 80.
    // The next 17-byte message (a 32-byte record at 96) also reserves the header slot
    // after it, 128..136 = ring offset 0..8: the first record must be consumed and
    // released.
    p.send(&[1; 32]).unwrap();
    p.send(&[2; 32]).unwrap();
    p.send(&[4; 8]).unwrap();
    let producer = thread::spawn(move || {
        p.send(&[3; 17]).unwrap();
        p
    });
    let consumer = thread::spawn(move || {
        assert_eq!(c.recv().unwrap(), [1; 32]);
        assert_eq!(c.recv().unwrap(), [2; 32]);
        assert_eq!(c.recv().unwrap(), [4; 8]);
        assert_eq!(c.recv().unwrap(), [3; 17]);
        c
    });
    let p = producer.join().unwrap();
    let c = consumer.join().unwrap();
    let s = p.stats();
    assert_eq!((s.tail, s.head, s.sent, s.received), (40 + 40 + 16 + 32, s.tail, 4, 4));
    drop((ManuallyDrop::into_inner(p), ManuallyDrop::into_inner(c)));
}

#[test]
fn blocking_send_on_full_ring_is_woken() {
    common::check("blocking_send_on_full_ring_is_woken", send_wakeup_model);
}

/// The producer sends one message and drops; the sleeping consumer gets the message,
/// then `Disconnected` — never `Disconnected` first, never a hang.
#[test]
fn close_after_drain() {
    common::check("close_after_drain", || {
        let (p, c) = loom_channel(128, WaitStrategy::Blocking);
        let (mut p, mut c) = (ManuallyDrop::new(p), ManuallyDrop::new(c));
        let producer = thread::spawn(move || {
            p.send(b"last").unwrap();
            drop(ManuallyDrop::into_inner(p));
        });
        let consumer = thread::spawn(move || {
            assert_eq!(c.recv().unwrap(), b"last");
            assert_eq!(c.recv(), Err(RecvError::Disconnected));
            assert_eq!(c.try_recv(), Err(RecvError::Disconnected));
            drop(ManuallyDrop::into_inner(c));
        });
        producer.join().unwrap();
        consumer.join().unwrap();
    });
}

/// Both ends blocking through full and empty: four messages of 32, 32, 17 and 32 bytes
/// (records of 40, 40, 32 and 40 bytes, the last after a 16-byte padding record at the
/// wrap) through a 128-byte ring: the consumer may sleep before each message, and the
/// producer before the last one, which needs the first two consumed.
#[test]
fn blocking_stream_through_wraps() {
    const SIZES: [usize; 4] = [32, 32, 17, 32];
    common::check("blocking_stream_through_wraps", || {
        let (p, c) = loom_channel(128, WaitStrategy::Blocking);
        let (mut p, mut c) = (ManuallyDrop::new(p), ManuallyDrop::new(c));
        let producer = thread::spawn(move || {
            for (i, n) in SIZES.into_iter().enumerate() {
                p.send(&vec![i as u8 + 1; n]).unwrap();
            }
            p
        });
        let consumer = thread::spawn(move || {
            for (i, n) in SIZES.into_iter().enumerate() {
                assert_eq!(c.recv().unwrap(), vec![i as u8 + 1; n], "message {i}");
            }
            c
        });
        let p = producer.join().unwrap();
        let c = consumer.join().unwrap();
        drop((ManuallyDrop::into_inner(p), ManuallyDrop::into_inner(c)));
    });
}
