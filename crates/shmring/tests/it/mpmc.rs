//! The MPMC queue in one process: threads, close, timeouts, limits, aborted claims,
//! and the reclaim of slots held by parties that went away mid-operation.

use crate::common;

use common::*;
use shmring::Error;
use shmring::ring::mpmc::{self, Consumer, PopError, Producer, PushError, QueueOptions};
use shmring::shm::{SegmentOptions, unlink};
use std::time::Duration;

#[test]
fn threads_deliver_every_message_once_in_per_producer_order() {
    let _dog = Watchdog::new("mpmc threads", Duration::from_secs(60));
    const PER: u64 = 50_000;
    let (tx, rx) = mpmc::channel(64, 32).unwrap();
    let producers: Vec<_> = (0..3u64)
        .map(|id| {
            let mut p = tx.try_clone().unwrap();
            std::thread::spawn(move || {
                for seq in 0..PER {
                    let mut m = [0u8; 16];
                    m[..8].copy_from_slice(&id.to_le_bytes());
                    m[8..].copy_from_slice(&seq.to_le_bytes());
                    p.push(&m).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let mut c = rx.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut last = [None::<u64>; 3];
                let mut got = Vec::new();
                loop {
                    match c.pop_timeout(Duration::from_millis(500)) {
                        Ok(m) => {
                            let id = u64::from_le_bytes(m[..8].try_into().unwrap()) as usize;
                            let seq = u64::from_le_bytes(m[8..].try_into().unwrap());
                            assert!(last[id].is_none_or(|l| seq > l), "producer {id} out of order");
                            last[id] = Some(seq);
                            got.push((id, seq));
                        }
                        Err(PopError::Timeout) => return got,
                        Err(e) => panic!("{e:?}"),
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut all: Vec<(usize, u64)> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    all.sort_unstable();
    let want: Vec<(usize, u64)> = (0..3).flat_map(|id| (0..PER).map(move |s| (id, s))).collect();
    assert_eq!(all.len(), want.len());
    assert!(all == want, "lost or duplicated messages");
    assert_eq!(rx.stats().lost, 0);
}

#[test]
fn close_drains_then_closes_and_refuses_pushes() {
    let (mut tx, mut rx) = mpmc::channel(4, 8).unwrap();
    tx.push(b"a").unwrap();
    tx.push(b"b").unwrap();
    rx.close();
    assert_eq!(tx.push(b"c"), Err(PushError::Closed));
    assert_eq!(rx.pop().unwrap(), b"a");
    assert_eq!(rx.try_pop().unwrap(), b"b");
    assert_eq!(rx.pop(), Err(PopError::Closed));
    assert_eq!(rx.try_pop(), Err(PopError::Closed));
}

#[test]
fn limits_timeouts_and_wraps() {
    let _dog = Watchdog::new("mpmc limits", Duration::from_secs(20));
    let (mut tx, mut rx) = mpmc::channel(3, 8).unwrap();
    assert_eq!(tx.capacity(), 4, "rounded up to a power of two");
    assert_eq!(tx.push(&[0; 9]), Err(PushError::MessageTooLarge { len: 9, max: 8 }));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    assert_eq!(rx.pop_timeout(Duration::from_millis(20)), Err(PopError::Timeout));
    for i in 0..4u8 {
        tx.push(&[i]).unwrap();
    }
    assert!(tx.is_full());
    assert_eq!(tx.try_push(b"x"), Err(PushError::Full));
    assert_eq!(
        tx.push_timeout(b"x", Duration::from_millis(20)),
        Err(PushError::Timeout)
    );
    for round in 0..1000u32 {
        assert_eq!(rx.pop().unwrap(), [(round % 4) as u8]);
        tx.push(&[(round % 4) as u8]).unwrap();
    }
    assert_eq!(rx.len(), 4);
    assert!(matches!(mpmc::channel(0, 8), Err(Error::InvalidArgument(_))));
    assert!(matches!(mpmc::channel(8, 0), Err(Error::InvalidArgument(_))));
}

#[test]
fn aborted_claims_are_skipped_and_grants_read_in_place() {
    let (mut tx, mut rx) = mpmc::channel(8, 16).unwrap();
    drop(tx.claim(5).unwrap()); // aborted
    let mut g = tx.claim(3).unwrap();
    g.copy_from_slice(b"abc");
    g.commit();
    {
        let r = rx.read().unwrap();
        assert_eq!(&*r, b"abc");
    }
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    assert_eq!(rx.stats().lost, 0);
}

#[test]
fn a_producer_gone_mid_claim_is_reclaimed_and_reported() {
    let _dog = Watchdog::new("mpmc producer reclaim", Duration::from_secs(20));
    let (tx, mut rx) = mpmc::channel(8, 16).unwrap();
    let mut dead = tx.try_clone().unwrap();
    let mut live = tx.try_clone().unwrap();
    drop(tx);
    // `dead` claims a slot and vanishes without publishing or aborting (as a process
    // killed there would).
    std::mem::forget(dead.claim(4).unwrap());
    drop(dead);
    live.push(b"after").unwrap();
    assert_eq!(rx.pop(), Err(PopError::Lost), "the stuck slot is reported");
    assert_eq!(rx.pop().unwrap(), b"after");
    assert_eq!(rx.stats().lost, 1);
}

#[test]
fn a_consumer_gone_mid_read_is_reclaimed() {
    let _dog = Watchdog::new("mpmc consumer reclaim", Duration::from_secs(20));
    let (mut tx, rx) = mpmc::channel(2, 16).unwrap();
    let mut dead = rx.try_clone().unwrap();
    let mut live = rx.try_clone().unwrap();
    drop(rx);
    tx.push(b"one").unwrap();
    tx.push(b"two").unwrap();
    std::mem::forget(dead.read().unwrap()); // holds "one" forever
    drop(dead);
    assert_eq!(live.pop().unwrap(), b"two");
    // The next lap needs the slot "one" still holds: reclaimed, counted lost.
    tx.push(b"three").unwrap();
    tx.push(b"four").unwrap();
    assert_eq!(live.pop().unwrap(), b"three");
    assert_eq!(live.pop().unwrap(), b"four");
    assert_eq!(tx.stats().lost, 1);
}

#[test]
fn named_queue_attach_kinds_and_party_limit() {
    let name = unique_name("mpmc");
    let mut tx = Producer::create(&name, 16, 64).unwrap();
    let mut rx = Consumer::open(&name).unwrap();
    tx.push(b"hi").unwrap();
    assert_eq!(rx.pop().unwrap(), b"hi");
    assert!(matches!(
        shmring::ring::spsc::Consumer::open(&name),
        Err(Error::WrongKind { .. })
    ));
    let mut ends = Vec::new();
    let err = loop {
        match Producer::open(&name) {
            Ok(p) => ends.push(p),
            Err(e) => break e,
        }
    };
    assert_eq!(ends.len(), mpmc::MAX_PARTIES - 2);
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert_eq!(rx.stats().parties as usize, mpmc::MAX_PARTIES);
    drop(ends);
    assert_eq!(rx.stats().parties, 2);
    let kept = unique_name("mpmc-keep");
    let opts = QueueOptions::new().segment(SegmentOptions::new().keep(true));
    drop(Producer::create_with(&kept, 4, 4, &opts).unwrap());
    unlink(&kept).unwrap();
}
