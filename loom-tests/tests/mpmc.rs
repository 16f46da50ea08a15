//! Loom models of the MPMC queue's slot protocol (claims recorded in the sequence word,
//! helping the positions along, laps) and of its full/empty waiting. Every payload is a
//! tracked `loom::cell::UnsafeCell`, so a read not ordered after its write is reported;
//! the futex model makes a lost wake-up a deadlock. All sides run as loom threads.

mod common;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use shmring::WaitStrategy;
use shmring::ring::mpmc::{Consumer, PopError, PushError, loom_channel};
use shmring::ring::spsc::loom_break::{self, LoomBreak};
use std::mem::ManuallyDrop;

/// Poll until `total` messages were taken by all consumers together.
fn drain(mut c: Consumer, taken: Arc<AtomicUsize>, total: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    loop {
        match c.try_pop() {
            Ok(m) => {
                got.push(m);
                taken.fetch_add(1, Ordering::SeqCst);
            }
            Err(PopError::Empty) => {
                if taken.load(Ordering::SeqCst) == total {
                    return got;
                }
                thread::yield_now();
            }
            Err(e) => panic!("try_pop: {e:?}"),
        }
    }
}

/// Two producers push one message each while two consumers try to take them (two
/// attempts each); what they did not get is drained afterwards. Each message is taken
/// exactly once, whichever consumer claims it. Four threads: at preemption bound 2 this
/// model takes ~2 million executions (passes in ~6 minutes here), too long for CI, so the
/// suite runs it at bound 1.
#[test]
fn two_producers_two_consumers_exactly_once() {
    common::check_bounded("mpmc_2p2c", Some(1), || {
        let (p1, c1) = loom_channel(2, WaitStrategy::Spin);
        let p2 = p1.try_clone().unwrap();
        let c2 = c1.try_clone().unwrap();
        let producers: Vec<_> = [(p1, 1u8), (p2, 2u8)]
            .into_iter()
            .map(|(mut p, id)| thread::spawn(move || p.try_push(&[id; 3]).unwrap()))
            .collect();
        let consumers: Vec<_> = [c1, c2]
            .into_iter()
            .map(|mut c| {
                thread::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..2 {
                        match c.try_pop() {
                            Ok(m) => got.push(m),
                            Err(PopError::Empty) => thread::yield_now(),
                            Err(e) => panic!("try_pop: {e:?}"),
                        }
                    }
                    (c, got)
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let mut all = Vec::new();
        let mut ends = Vec::new();
        for c in consumers {
            let (c, got) = c.join().unwrap();
            all.extend(got);
            ends.push(c);
        }
        while let Ok(m) = ends[0].try_pop() {
            all.push(m);
        }
        all.sort();
        assert_eq!(all, [vec![1; 3], vec![2; 3]]);
    });
}

/// One producer pushes three messages through two slots (a second lap), one consumer
/// takes them in order.
fn wrap_model() {
    let (mut p, c) = loom_channel(2, WaitStrategy::Spin);
    let producer = thread::spawn(move || {
        for m in 1..=3u8 {
            loop {
                match p.try_push(&[m; 2]) {
                    Ok(()) => break,
                    Err(PushError::Full) => thread::yield_now(),
                    Err(e) => panic!("try_push: {e:?}"),
                }
            }
        }
    });
    let consumer = thread::spawn(move || drain(c, Arc::new(AtomicUsize::new(0)), 3));
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), [vec![1; 2], vec![2; 2], vec![3; 2]]);
}

#[test]
fn one_producer_one_consumer_through_a_lap() {
    common::check("mpmc_wrap", wrap_model);
}

/// The same with FULL stored Relaxed: the consumer's payload read is no longer ordered
/// after the producer's write.
#[test]
#[should_panic(expected = "Causality violation")]
fn slot_protocol_catches_relaxed_publish() {
    let _bug = loom_break::set(LoomBreak::MpmcPublishRelaxed);
    common::check("mpmc_relaxed_publish", wrap_model);
}

/// Blocking on both sides: the producer sleeps on the full queue, the consumer on the
/// empty one; no wake-up may be lost.
fn blocking_model() {
    let (p, c) = loom_channel(2, WaitStrategy::Blocking);
    let (mut p, mut c) = (ManuallyDrop::new(p), ManuallyDrop::new(c));
    let producer = thread::spawn(move || {
        for m in 1..=3u8 {
            p.push(&[m]).unwrap();
        }
        p
    });
    let consumer = thread::spawn(move || {
        for m in 1..=3u8 {
            assert_eq!(c.pop().unwrap(), [m]);
        }
        c
    });
    let p = producer.join().unwrap();
    let c = consumer.join().unwrap();
    drop((ManuallyDrop::into_inner(p), ManuallyDrop::into_inner(c)));
}

#[test]
fn blocking_push_and_pop_are_woken() {
    common::check("mpmc_blocking", blocking_model);
}

/// The sleeper skips its fence between registering and re-checking: a lost wake-up.
#[test]
#[should_panic(expected = "deadlock")]
fn waiting_catches_missing_sleeper_fence() {
    let _bug = loom_break::set(LoomBreak::HeavyFenceSkipped);
    common::check("mpmc_missing_fence", blocking_model);
}
