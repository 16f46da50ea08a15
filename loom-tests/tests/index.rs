//! Loom model of the SPSC ring's publication protocol: each record is published by the
//! Release store of its one-word header, which holds its stamp (after its payload and the
//! clearing of the next header slot) and read after an Acquire load of that word; space is
//! released by a Release store of `head` and reused after an Acquire load of it. Every
//! 8-byte word of the ring is a tracked `loom::cell::UnsafeCell`, so a payload read that is
//! not ordered after its write (or a write that is not ordered after the previous read)
//! is reported.

mod common;

use loom::thread;
use shmring::ring::spsc::loom_break::{self, LoomBreak};
use shmring::ring::spsc::{Consumer, Producer, loom_channel};
use shmring::{RecvError, SendError, WaitStrategy};

/// The messages the producer thread sends, in a 128-byte ring (records: 8-byte header,
/// 8-byte alignment; messages up to 32 bytes; each commit also reserves the next
/// record's 8-byte header slot) whose indices stand at 80 when the threads start:
///
/// - A (5 bytes, a 16-byte record) at 80..96;
/// - B (32 bytes, 40) does not fit in the 32 bytes to the end: a 32-byte padding record
///   at 96..128, then B at 0..40 — the wrap;
/// - C (32 bytes, 40) at 40..80, with the next header slot at 80..88 — A's header: it
///   needs A consumed and released, and clearing that slot must be ordered after the
///   consumer's read of A.
const MSGS: [&[u8]; 3] = [&[1, 2, 3, 4, 5], &[11; 32], &[21; 32]];

/// A ring whose indices stand at 80: two 32-byte messages (40-byte records) sent and
/// received on the model's main thread, before any other thread exists.
fn prefilled() -> (Producer, Consumer) {
    let (mut p, mut c) = loom_channel(128, WaitStrategy::Spin);
    p.try_send(&[0xEE; 32]).unwrap();
    p.try_send(&[0xEF; 32]).unwrap();
    assert_eq!(c.try_recv().unwrap(), [0xEE; 32]);
    assert_eq!(c.try_recv().unwrap(), [0xEF; 32]);
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
        (80 + 16 + 32 + 40 + 40, s.tail, 5, 5)
    );
}

#[test]
fn index_protocol_with_wrap() {
    common::check("index_protocol_with_wrap", index_model);
}

/// The same model with stamps published by a Relaxed store: the consumer's read of a
/// record whose stamp it saw is no longer ordered after the producer's write of it.
#[test]
#[should_panic(expected = "Causality violation")]
fn index_protocol_catches_relaxed_stamp_publish() {
    let _bug = loom_break::set(LoomBreak::StampPublishRelaxed);
    common::check("index_protocol_catches_relaxed_stamp_publish", index_model);
}
