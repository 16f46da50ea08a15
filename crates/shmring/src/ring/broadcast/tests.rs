//! Unit tests of the broadcast ring over heap memory and anonymous segments (threads).

use super::*;
use crate::primitive::Ordering;
use crate::sync::wait::spin_until;

fn params(capacity: usize, policy: Policy) -> Params {
    Params {
        capacity,
        subscribers: 4,
        policy,
    }
}

fn msg(i: u64, len: usize) -> Vec<u8> {
    let mut v = i.to_le_bytes().to_vec();
    v.resize(len.max(8), (i % 251) as u8);
    v
}

#[test]
fn lossless_every_subscriber_gets_every_message_in_order() {
    let (mut tx, rx) = local_channel(params(512, Policy::Lossless), WaitStrategy::Spin).unwrap();
    let mut rxs: Vec<Subscriber> = (0..3).map(|_| rx.try_clone().unwrap()).collect();
    rxs.push(rx);
    let n = 5_000u64;
    let handles: Vec<_> = rxs
        .into_iter()
        .map(|mut rx| {
            std::thread::spawn(move || {
                for i in 0..n {
                    let m = rx.recv().unwrap();
                    assert_eq!(m, msg(i, (i % 97) as usize), "message {i}");
                }
                rx
            })
        })
        .collect();
    for i in 0..n {
        tx.send(&msg(i, (i % 97) as usize)).unwrap();
    }
    for h in handles {
        let mut rx = h.join().unwrap();
        assert_eq!(rx.try_recv(), Err(RecvError::Empty));
        assert_eq!(rx.received(), n);
    }
}

#[test]
fn lossless_publisher_waits_for_the_slowest_and_try_send_is_full() {
    let (mut tx, mut rx) = local_channel(params(256, Policy::Lossless), WaitStrategy::Spin).unwrap();
    let mut sent = 0;
    while tx.try_send(&[7; 40]).is_ok() {
        sent += 1;
        assert!(sent < 100, "a 256-byte ring cannot hold 100 messages");
    }
    assert_eq!(tx.try_send(&[7; 40]), Err(SendError::Full));
    assert_eq!(
        tx.send_timeout(&[7; 40], std::time::Duration::from_millis(5)),
        Err(SendError::Timeout)
    );
    for _ in 0..sent {
        assert_eq!(rx.recv().unwrap(), vec![7; 40]);
    }
    tx.try_send(&[8; 40]).unwrap();
    assert_eq!(rx.recv().unwrap(), vec![8; 40]);
}

#[test]
fn detached_subscriber_frees_the_publisher_and_its_slot() {
    let (mut tx, rx) = local_channel(params(256, Policy::Lossless), WaitStrategy::Spin).unwrap();
    let mut rx2 = rx.try_clone().unwrap();
    while tx.try_send(&[1; 30]).is_ok() {}
    drop(rx);
    assert_eq!(tx.try_send(&[1; 30]), Err(SendError::Full), "rx2 still holds it");
    while rx2.try_recv().is_ok() {}
    tx.try_send(&[2; 30]).unwrap();
    // Slots are reusable: 4 subscribers at most.
    let more: Vec<_> = (0..3).map(|_| rx2.try_clone().unwrap()).collect();
    assert!(rx2.try_clone().is_err(), "the table is full");
    drop(more);
    let _again = rx2.try_clone().unwrap();
}

#[test]
fn no_subscriber_never_blocks_a_lossless_publisher() {
    let (mut tx, rx) = local_channel(params(256, Policy::Lossless), WaitStrategy::Spin).unwrap();
    drop(rx);
    for i in 0..1000u64 {
        tx.try_send(&msg(i, 20)).unwrap();
    }
}

#[test]
fn overwrite_reports_lagged_and_counts_add_up() {
    let (mut tx, mut rx) = local_channel(params(256, Policy::Overwrite), WaitStrategy::Spin).unwrap();
    let n = 100u64;
    for i in 0..n {
        tx.try_send(&msg(i, 16)).unwrap();
    }
    let mut delivered = 0;
    let mut missed = 0;
    let mut last = None;
    loop {
        match rx.try_recv() {
            Ok(m) => {
                let i = u64::from_le_bytes(m[..8].try_into().unwrap());
                assert_eq!(m, msg(i, 16));
                assert!(last.is_none_or(|l| i > l));
                last = Some(i);
                delivered += 1;
            }
            Err(RecvError::Lagged { missed: k }) => missed += k,
            Err(RecvError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(missed > 0, "a 256-byte ring cannot hold 100 messages");
    assert_eq!(delivered + missed, n);
    assert_eq!(last, Some(n - 1));
    assert_eq!(rx.missed(), missed);
}

#[test]
fn overwrite_concurrent_reads_are_never_torn() {
    let (mut tx, rx) = local_channel(params(512, Policy::Overwrite), WaitStrategy::Spin).unwrap();
    let n = 50_000u64;
    let handles: Vec<_> = [rx.try_clone().unwrap(), rx]
        .into_iter()
        .map(|mut rx| {
            std::thread::spawn(move || {
                let (mut delivered, mut missed) = (0u64, 0u64);
                loop {
                    match rx.recv_timeout(std::time::Duration::from_millis(200)) {
                        Ok(m) => {
                            let i = u64::from_le_bytes(m[..8].try_into().unwrap());
                            assert_eq!(m, msg(i, (i % 120) as usize), "torn message {i}");
                            delivered += 1;
                            if i == n - 1 {
                                break;
                            }
                        }
                        Err(RecvError::Lagged { missed: k }) => missed += k,
                        Err(e) => panic!("{e}"),
                    }
                }
                (delivered, missed)
            })
        })
        .collect();
    for i in 0..n {
        tx.send(&msg(i, (i % 120) as usize)).unwrap();
    }
    for h in handles {
        let (d, m) = h.join().unwrap();
        assert_eq!(d + m, n);
    }
}

#[test]
fn start_newest_and_oldest() {
    let name = format!("bcast-unit-start-{}", std::process::id());
    let mut tx = Publisher::create(&name, 1024, 8, Policy::Lossless).unwrap();
    tx.send(b"a").unwrap();
    tx.send(b"b").unwrap();
    let mut newest = Subscriber::open(&name).unwrap();
    let mut oldest = Subscriber::open_with(&name, &Options::new().start(Start::Oldest)).unwrap();
    tx.send(b"c").unwrap();
    assert_eq!(newest.recv().unwrap(), b"c");
    assert_eq!(oldest.recv().unwrap(), b"a");
    assert_eq!(oldest.recv().unwrap(), b"b");
    assert_eq!(oldest.recv().unwrap(), b"c");
    let r = inspect(&name).unwrap();
    assert_eq!((r.messages, r.subscribers.len(), r.policy), (3, 2, Policy::Lossless));
    assert!(r.subscribers.iter().all(|s| s.alive && s.lag_bytes == 0));
}

#[test]
fn publisher_close_then_disconnected_then_restart_continues() {
    let name = format!("bcast-unit-restart-{}", std::process::id());
    let opts = Options::new().segment(crate::shm::SegmentOptions::new().keep(true));
    let p = Params {
        capacity: 1024,
        subscribers: 8,
        policy: Policy::Lossless,
    };
    let mut tx = Publisher::create_with(&name, p, &opts).unwrap();
    let mut rx = Subscriber::open(&name).unwrap();
    tx.send(b"one").unwrap();
    drop(tx);
    assert_eq!(rx.recv().unwrap(), b"one", "drains first");
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    let mut tx = Publisher::open(&name).unwrap();
    assert_eq!(tx.messages(), 1, "sequence numbers continue");
    tx.send(b"two").unwrap();
    assert_eq!(rx.recv().unwrap(), b"two");
    assert!(Publisher::open(&name).is_err(), "one publisher at a time");
    drop(tx);
    drop(rx);
    crate::shm::unlink(&name).unwrap();
}

#[test]
fn blocking_subscribers_are_woken() {
    let (mut tx, rx) = channel_with(
        params(4096, Policy::Lossless),
        &Options::new().wait(WaitStrategy::Blocking),
    )
    .unwrap();
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let mut rx = rx.try_clone().unwrap();
            std::thread::spawn(move || (0..100u64).map(|_| rx.recv().unwrap().len() as u64).sum::<u64>())
        })
        .collect();
    // The sleepers flag (the flag protocol of sync/wait.rs): at least one sleeps.
    spin_until("a sleeper", || {
        tx.sh.ctl().data_wait.waiting.load(Ordering::Relaxed) != 0
    });
    for i in 0..100u64 {
        tx.send(&msg(i, 10)).unwrap();
    }
    for h in handles {
        assert_eq!(h.join().unwrap(), 1000);
    }
}

#[test]
fn in_place_claim_read_and_drain() {
    let (mut tx, mut rx) = local_channel(params(1024, Policy::Lossless), WaitStrategy::Spin).unwrap();
    let mut g = tx.claim(5).unwrap();
    g.copy_from_slice(b"hello");
    g.commit_deferred();
    let aborted = tx.claim(3).unwrap();
    let _ = aborted; // dropped without commit: aborted
    tx.send_deferred(b"x").unwrap();
    tx.flush();
    assert_eq!(rx.read(|m| m.to_vec()).unwrap(), b"hello");
    assert_eq!(rx.read(|m| m.to_vec()).unwrap(), b"x");
    for i in 0..5u8 {
        tx.send_deferred(&[i]).unwrap();
    }
    tx.flush();
    let mut got = vec![];
    assert_eq!(
        rx.try_drain(|m| {
            got.push(m[0]);
            true
        }),
        Ok(5)
    );
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

#[test]
fn messages_too_large_and_wrap_padding() {
    let (mut tx, mut rx) = local_channel(params(256, Policy::Lossless), WaitStrategy::Spin).unwrap();
    let max = tx.max_message_len();
    assert!(matches!(
        tx.try_send(&vec![0; max + 1]),
        Err(SendError::MessageTooLarge { .. })
    ));
    for i in 0..500u64 {
        let len = (i as usize * 7) % (max + 1);
        tx.send(&msg(i, len)).unwrap();
        assert_eq!(rx.recv().unwrap(), msg(i, len));
    }
}

#[test]
fn corrupt_tail_is_an_error_not_a_hang() {
    let (tx, mut rx) = local_channel(params(256, Policy::Lossless), WaitStrategy::Spin).unwrap();
    tx.sh.ctl().publ.tail.store(5, Ordering::Relaxed);
    assert!(matches!(rx.try_recv(), Err(RecvError::Corrupted(_))));
    tx.sh.ctl().publ.tail.store(1 << 20, Ordering::Relaxed);
    assert!(matches!(
        rx.recv_timeout(std::time::Duration::from_secs(5)),
        Err(RecvError::Corrupted(_))
    ));
}
