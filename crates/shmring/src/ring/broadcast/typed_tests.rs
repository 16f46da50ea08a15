//! Unit tests of the typed broadcast ends (one process; the cross-process type check is
//! in `tests/it/broadcast_typed.rs`).

use super::*;
use crate::Error;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, crate::Schema, Debug, Clone, PartialEq)]
#[postcard(crate = postcard_schema)]
struct Quote {
    symbol: String,
    bid: i64,
    ask: i64,
}

fn quote(i: u64) -> Quote {
    Quote {
        symbol: format!("SYM{i}-{}", "x".repeat((i % 13) as usize)),
        bid: i as i64,
        ask: -(i as i64),
    }
}

fn name(what: &str) -> String {
    format!("ut-bcast-typed-{what}-{}", std::process::id())
}

#[test]
fn every_subscriber_receives_every_struct_in_order() {
    let params = Params {
        capacity: 1024,
        subscribers: 4,
        policy: Policy::Lossless,
    };
    let opts = Options::new().start(Start::Oldest);
    let (mut tx, rx) = typed_channel::<Quote>(params, &opts).unwrap();
    let rx2 = rx.try_clone().unwrap();
    let n = 2_000u64;
    let readers: Vec<_> = [rx, rx2]
        .into_iter()
        .map(|mut rx| {
            std::thread::spawn(move || {
                for i in 0..n {
                    assert_eq!(rx.recv().unwrap(), quote(i), "message {i}");
                }
                assert_eq!(rx.try_recv(), Err(TypedRecvError::Recv(RecvError::Empty)));
            })
        })
        .collect();
    for i in 0..n {
        tx.send(&quote(i)).unwrap();
    }
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn a_lapped_typed_subscriber_gets_lagged_and_intact_values() {
    let n = 1_000u64;
    let name = name("lagged");
    let mut tx = TypedPublisher::<Quote>::create(&name, 512, 4, Policy::Overwrite).unwrap();
    let mut rx = TypedSubscriber::<Quote>::open(&name).unwrap();
    for i in 0..n {
        tx.try_send(&quote(i)).unwrap(); // never full in the overwrite policy
    }
    let (mut got, mut missed, mut last) = (0u64, 0u64, None);
    loop {
        match rx.try_recv() {
            Ok(q) => {
                // Intact, and a later message than the one before.
                let i = q.bid as u64;
                assert_eq!(q, quote(i));
                assert!(last.is_none_or(|l| i > l), "{i} after {last:?}");
                last = Some(i);
                got += 1;
            }
            Err(TypedRecvError::Recv(RecvError::Lagged { missed: m })) => {
                assert!(m > 0);
                missed += m;
            }
            Err(TypedRecvError::Recv(RecvError::Empty)) => break,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(missed > 0, "a 512-byte ring cannot hold {n} quotes");
    assert_eq!(got + missed, n, "delivered + missed == published");
    assert_eq!(last, Some(n - 1), "the newest message is delivered");
}

#[test]
fn another_shape_is_refused_by_name_and_from_fd_naming_both() {
    let name = name("shape");
    let mut tx = TypedPublisher::<Quote>::create(&name, 4096, 4, Policy::Lossless).unwrap();
    let refused = |r: Result<()>| match r {
        Err(Error::WrongType { created, opened, .. }) => {
            assert!(created.contains("Quote"), "{created}");
            assert!(opened.contains("u64"), "{opened}");
        }
        other => panic!("expected WrongType, got {other:?}"),
    };
    refused(TypedSubscriber::<u64>::open(&name).map(drop));
    // The publisher role is held: a publisher of another shape is refused by the
    // type check before the role is tried.
    refused(TypedPublisher::<u64>::open(&name).map(drop));
    let rx = TypedSubscriber::<Quote>::open(&name).unwrap();
    let fd = rx.into_fd().expect("a segment-backed subscriber has a descriptor");
    refused(TypedSubscriber::<u64>::from_fd(fd.try_clone().unwrap()).map(drop));
    let mut rx = TypedSubscriber::<Quote>::from_fd(fd).unwrap();
    tx.send(&quote(3)).unwrap();
    assert_eq!(rx.recv().unwrap(), quote(3));
}

#[test]
fn raw_and_unchecked_opens() {
    let name = name("raw");
    let mut tx = TypedPublisher::<Quote>::create(&name, 4096, 4, Policy::Lossless).unwrap();
    // A raw subscriber of a typed ring reads the encoded bytes.
    let mut raw = Subscriber::open(&name).unwrap();
    // An unchecked subscriber of another type decodes what it can, or fails to.
    let mut wrong = TypedSubscriber::<(u64, u64, u64, u64)>::open_unchecked(&name, &Options::new()).unwrap();
    tx.send(&quote(5)).unwrap();
    assert_eq!(crate::codec::decode::<Quote>(&raw.recv().unwrap()).unwrap(), quote(5));
    assert!(matches!(wrong.recv(), Err(TypedRecvError::Codec(_))));
    drop(tx);
    // A typed open of a ring made by a raw constructor is refused.
    let raw_name = name + "-untyped";
    let _raw_tx = Publisher::create(&raw_name, 4096, 4, Policy::Lossless).unwrap();
    assert!(matches!(
        TypedSubscriber::<Quote>::open(&raw_name),
        Err(Error::WrongType { .. })
    ));
}

#[test]
fn a_value_too_large_is_refused_and_the_ring_goes_on() {
    let (mut tx, mut rx) = typed_channel::<String>(
        Params {
            capacity: 256,
            subscribers: 2,
            policy: Policy::Lossless,
        },
        &Options::new(),
    )
    .unwrap();
    let big = "x".repeat(1000);
    assert!(matches!(
        tx.try_send(&big),
        Err(TypedSendError::Send(SendError::MessageTooLarge { .. }))
    ));
    tx.send(&"small".to_string()).unwrap();
    assert_eq!(rx.recv().unwrap(), "small");
}

/// The borrowed form of [`Quote`]: the same wire shape, its string borrowed.
#[derive(Deserialize, Debug, PartialEq)]
struct QuoteRef<'a> {
    symbol: &'a str,
    bid: i64,
    ask: i64,
}

#[test]
fn recv_ref_decodes_borrowing_from_the_subscribers_buffer() {
    let params = Params {
        capacity: 4096,
        subscribers: 4,
        policy: Policy::Lossless,
    };
    let (mut tx, mut rx) = typed_channel::<Quote>(params, &Options::new()).unwrap();
    assert_eq!(
        rx.try_recv_ref().map(|_| ()),
        Err(TypedRecvError::Recv(RecvError::Empty))
    );
    for i in 0..50 {
        tx.send(&quote(i)).unwrap();
    }
    for i in 0..50u64 {
        let m = match i % 3 {
            0 => rx.recv_ref().unwrap(),
            1 => rx.try_recv_ref().unwrap(),
            _ => rx.recv_ref_timeout(std::time::Duration::from_secs(10)).unwrap(),
        };
        let q: QuoteRef<'_> = m.decode().unwrap();
        let want = quote(i);
        assert_eq!((q.symbol, q.bid, q.ask), (want.symbol.as_str(), want.bid, want.ask));
        // The borrowed string points into the message's bytes, not into a copy.
        let bytes = m.as_ptr_range();
        assert!(bytes.contains(&q.symbol.as_ptr()), "message {i}: &str not borrowed");
        // The owned form decodes from the same bytes.
        assert_eq!(m.decode::<Quote>().unwrap(), want);
    }
    assert_eq!(rx.as_raw().received(), 50);
    assert_eq!(
        rx.recv_ref_timeout(std::time::Duration::from_millis(1)).map(|_| ()),
        Err(TypedRecvError::Recv(RecvError::Timeout))
    );
}

#[test]
fn recv_batch_hands_over_what_is_there_up_to_max() {
    let params = Params {
        capacity: 8192,
        subscribers: 4,
        policy: Policy::Lossless,
    };
    let (mut tx, mut rx) = typed_channel::<Quote>(params, &Options::new()).unwrap();
    assert_eq!(
        rx.try_recv_batch(8, |_| panic!("nothing was sent")),
        Err(TypedRecvError::Recv(RecvError::Empty))
    );
    for i in 0..10 {
        tx.send(&quote(i)).unwrap();
    }
    let mut got = Vec::new();
    assert_eq!(rx.recv_batch(4, |q| got.push(q)), Ok(4));
    assert_eq!(rx.recv_batch(0, |q| got.push(q)), Ok(1), "a batch holds at least one");
    assert_eq!(
        rx.recv_batch_timeout(100, std::time::Duration::from_secs(10), |q| got.push(q)),
        Ok(5)
    );
    assert_eq!(got, (0..10).map(quote).collect::<Vec<_>>());
    assert_eq!(
        rx.recv_batch_timeout(8, std::time::Duration::from_millis(1), |_| panic!("empty")),
        Err(TypedRecvError::Recv(RecvError::Timeout))
    );
}

#[test]
fn a_batch_ends_before_a_bad_message_and_the_next_receive_reports_it() {
    let params = Params {
        capacity: 8192,
        subscribers: 4,
        policy: Policy::Lossless,
    };
    let (mut tx, mut rx) = typed_channel::<Quote>(params, &Options::new()).unwrap();
    tx.send(&quote(0)).unwrap();
    tx.send(&quote(1)).unwrap();
    // Bytes that are no encoding of a Quote (a string length past the message).
    tx.as_raw_mut().send(&[0xff, 0xff, 0xff, 0x0f]).unwrap();
    tx.send(&quote(3)).unwrap();
    let mut got = Vec::new();
    assert_eq!(rx.recv_batch(10, |q| got.push(q)), Ok(2));
    assert_eq!(got, [quote(0), quote(1)]);
    assert!(
        matches!(rx.try_recv(), Err(TypedRecvError::Codec(_))),
        "the bad message"
    );
    assert_eq!(rx.recv_batch(10, |q| got.push(q)), Ok(1));
    assert_eq!(got.last(), Some(&quote(3)));
    // Before the first value, the error is the batch's own.
    tx.as_raw_mut().send(&[0xff, 0xff, 0xff, 0x0f]).unwrap();
    assert!(matches!(
        rx.recv_batch(10, |_| panic!("bad")),
        Err(TypedRecvError::Codec(_))
    ));
}

#[test]
fn a_lapped_batch_never_hands_over_a_torn_value_and_counts_add_up() {
    let params = Params {
        capacity: 512,
        subscribers: 4,
        policy: Policy::Overwrite,
    };
    let opts = Options::new().start(Start::Oldest);
    let (mut tx, mut rx) = typed_channel::<Quote>(params, &opts).unwrap();
    let n = 300u64;
    let mut delivered = 0u64;
    let mut lagged = 0u64;
    let mut next = 0u64;
    for i in 0..n {
        tx.send(&quote(i)).unwrap();
        if i % 20 == 19 {
            loop {
                match rx.try_recv_batch(3, |q| {
                    // In order, intact: the value's own fields agree.
                    assert_eq!(q, quote(q.bid as u64));
                    assert!(q.bid as u64 >= next, "out of order");
                    next = q.bid as u64 + 1;
                    delivered += 1;
                }) {
                    Ok(_) => {}
                    Err(TypedRecvError::Recv(RecvError::Lagged { missed })) => lagged += missed,
                    Err(TypedRecvError::Recv(RecvError::Empty)) => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    loop {
        match rx.try_recv_batch(3, |_| delivered += 1) {
            Ok(_) => {}
            Err(TypedRecvError::Recv(RecvError::Lagged { missed })) => lagged += missed,
            Err(TypedRecvError::Recv(RecvError::Empty)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(lagged > 0, "a 512-byte ring lapped by bursts of 20 sends");
    assert_eq!(delivered + lagged, n, "delivered {delivered} + missed {lagged}");
    assert_eq!(rx.as_raw().missed(), lagged);
}

#[test]
fn typed_open_or_create_creates_once_and_checks_the_type() {
    let name = name("ooc");
    let params = Params {
        capacity: 4096,
        subscribers: 4,
        policy: Policy::Lossless,
    };
    let (mut rx, created) = TypedSubscriber::<Quote>::open_or_create(&name, params).unwrap();
    assert!(created);
    let (mut tx, created) = TypedPublisher::<Quote>::open_or_create(&name, params).unwrap();
    assert!(!created);
    let (mut rx2, created) = TypedSubscriber::<Quote>::open_or_create_with(&name, params, &Options::new()).unwrap();
    assert!(!created);
    assert!(matches!(
        TypedSubscriber::<u64>::open_or_create(&name, params),
        Err(Error::WrongType { .. })
    ));
    tx.send(&quote(9)).unwrap();
    assert_eq!(rx.recv().unwrap(), quote(9));
    assert_eq!(rx2.recv().unwrap(), quote(9));
    drop(rx);
    drop(rx2);
    drop(tx);
    assert!(
        !std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "the creator unlinked it"
    );
}

#[test]
fn recv_ref_is_in_place_when_lossless_and_a_copy_when_overwrite() {
    for policy in [Policy::Lossless, Policy::Overwrite] {
        let params = Params {
            capacity: 4096,
            subscribers: 4,
            policy,
        };
        let (mut tx, mut rx) = typed_channel::<u64>(params, &Options::new()).unwrap();
        tx.send(&1).unwrap();
        tx.send(&2).unwrap();
        let m = rx.recv_ref().unwrap();
        assert_eq!(m.decode::<u64>().unwrap(), 1);
        let first = m.as_ptr() as usize;
        drop(m);
        let m = rx.recv_ref().unwrap();
        assert_eq!(m.decode::<u64>().unwrap(), 2);
        let at = m.as_ptr() as usize;
        match policy {
            // The next record in the ring (a 1-byte message: a 32-byte record).
            Policy::Lossless => assert_eq!(at.wrapping_sub(first), record::record_len(1) as usize),
            // The subscriber's buffer, reused.
            Policy::Overwrite => assert_eq!(at, first),
        }
    }
}
