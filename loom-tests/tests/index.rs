//! Loom model of the SPSC ring's index protocol: records written past `tail`, published
//! by a Release store of `tail`, read after an Acquire load of it; space released by a
//! Release store of `head`, reused after an Acquire load of it. Every 8-byte word of the
//! ring is a tracked `loom::cell::UnsafeCell`, so a payload read that is not ordered after
//! its write (or a write that is not ordered after the previous read) is reported.

mod common;

use loom::thread;
use shmring::ring::spsc::loom_break::{self, LoomBreak};
use shmring::ring::spsc::{Consumer, Producer, loom_channel};
use shmring::{RecvError, SendError, WaitStrategy};

/// The messages the producer thread sends, in a 64-byte ring (messages up to 24 bytes)
/// whose indices stand at 32 when the threads start:
///
/// - A (5 bytes, a 16-byte record) at 32..48;
/// - B (9 bytes, 24) does not fit in the 16 bytes to the end: a 16-byte padding record
///   at 48..64, then B at 0..24 — the wrap;
/// - C (1 byte, 16) at 24..40 overwrites A's record: it needs A consumed and released.
const MSGS: [&[u8]; 3] = [&[1, 2, 3, 4, 5], &[11, 12, 13, 14, 15, 16, 17, 18, 19], &[21]];

/// A ring whose indices stand at 32: one 24-byte message sent and received (on the
/// model's main thread, before any other thread exists).
fn prefilled() -> (Producer, Consumer) {
    let (mut p, mut c) = loom_channel(64, WaitStrategy::Spin);
    p.try_send(&[0xEE; 24]).unwrap();
    assert_eq!(c.try_recv().unwrap(), [0xEE; 24]);
    (p, c)
}

/// Both sides on loom threads, polling with `try_*` and yielding: no waiter involved.
fn index_model() {
    let (mut p, mut c) = prefilled();
    let producer = thread::spawn(move || {
        for m in MSGS {
            loop {
                match p.try_send(m) {
                    Ok(()) => break,
                    Err(SendError::Full) => thread::yield_now(),
                    Err(e) => panic!("try_send: {e:?}"),
                }
            }
        }
        p
    });
    let consumer = thread::spawn(move || {
        let mut got = 0;
        while got < MSGS.len() {
            match c.try_recv() {
                Ok(m) => {
                    assert_eq!(m, MSGS[got], "message {got}");
                    got += 1;
                }
                Err(RecvError::Empty) => thread::yield_now(),
                Err(e) => panic!("try_recv: {e:?}"),
            }
        }
        c
    });
    let p = producer.join().unwrap();
    let mut c = consumer.join().unwrap();
    assert_eq!(c.try_recv(), Err(RecvError::Empty));
    let s = p.stats();
    assert_eq!(
        (s.tail, s.head, s.sent, s.received),
        (32 + 16 + 16 + 24 + 16, s.tail, 4, 4)
    );
}

#[test]
fn index_protocol_with_wrap() {
    common::check("index_protocol_with_wrap", index_model);
}

/// The same model with `tail` published by a Relaxed store: the consumer's read of a
/// record it saw through `tail` is no longer ordered after the producer's write of it.
#[test]
#[should_panic(expected = "Causality violation")]
fn index_protocol_catches_relaxed_tail_publish() {
    let _bug = loom_break::set(LoomBreak::TailPublishRelaxed);
    common::check("index_protocol_catches_relaxed_tail_publish", index_model);
}
