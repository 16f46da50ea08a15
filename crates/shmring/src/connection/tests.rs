//! Tests of [`Connection`] over pipes: the generic methods of `conn.rs` with the
//! transport of `pipe.rs` (frames, chunking, one-way ends, hand-over).

use super::frame::{FIRST, LAST, MORE, WHOLE};
use super::{ConnError, Connection, ConnectionOptions, FrameError, pipe, pipe_with, wait};
use crate::ring::spsc::{self, Producer};
use std::time::Duration;

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
struct Tick {
    sym: String,
    px: f64,
    seq: u64,
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The receiving end of a raw ring whose producer the test drives frame by frame.
fn raw_receiver(opts: &ConnectionOptions) -> (Producer, Connection) {
    let (p, c) = spsc::channel(4096).unwrap();
    let conn = Connection::from_fds_with(c.into_fd(), None, opts).unwrap();
    (p, conn)
}

#[test]
fn connection_duplex_sends_values_bytes_and_pods_both_ways() {
    let (mut a, mut b) = pipe(true).unwrap();
    assert!(a.readable() && a.writable() && !a.is_closed());
    let t = Tick {
        sym: "AAPL".into(),
        px: 189.5,
        seq: 7,
    };
    a.send(&t).unwrap();
    a.send_bytes(b"raw").unwrap();
    a.send_pod(&[1u32, 2, 3]).unwrap();
    a.send_bytes(b"").unwrap();
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(b.recv::<Tick>().unwrap(), t);
    assert_eq!(b.recv_bytes().unwrap(), b"raw");
    assert_eq!(b.recv_pod::<[u32; 3]>().unwrap(), [1, 2, 3]);
    let mut buf = vec![9; 100];
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 0);
    assert!(buf.is_empty());
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    b.try_send(&"back").unwrap();
    b.send_timeout(&"again", Duration::from_secs(1)).unwrap();
    assert_eq!(a.try_recv::<String>().unwrap(), "back");
    assert_eq!(a.recv_timeout::<String>(Duration::from_secs(1)).unwrap(), "again");
    assert_eq!(a.try_recv::<String>(), Err(ConnError::WouldBlock));
    assert_eq!(
        a.recv_timeout::<String>(Duration::from_millis(5)),
        Err(ConnError::Timeout)
    );
    // A message that is not a T is consumed and reported.
    b.send_bytes(&[0xff; 3]).unwrap();
    assert!(matches!(a.recv::<String>(), Err(ConnError::Codec(_))));
    b.send_pod(&1u16).unwrap();
    assert!(matches!(a.recv_pod::<u32>(), Err(ConnError::Codec(_))));
    b.send(&1u8).unwrap();
    assert_eq!(a.recv::<u8>(), Ok(1));
}

#[test]
fn connection_one_way_ends_refuse_the_other_direction() {
    let (mut r, mut w) = pipe(false).unwrap();
    assert!(r.readable() && !r.writable());
    assert!(!w.readable() && w.writable());
    let send_only = ConnError::WrongDirection { allowed: "send" };
    let recv_only = ConnError::WrongDirection { allowed: "receive" };
    assert_eq!(r.send(&1u8), Err(recv_only.clone()));
    assert_eq!(r.send_bytes(b"x"), Err(recv_only));
    assert_eq!(w.recv_bytes(), Err(send_only.clone()));
    assert_eq!(w.recv::<u8>(), Err(send_only.clone()));
    assert_eq!(w.poll(None), Err(send_only));
    // A send-only end counts as ready: its receive fails at once.
    assert_eq!(wait(&[&w], None), [0]);
    w.send(&5u8).unwrap();
    assert_eq!(r.recv::<u8>(), Ok(5));
    let (recv_fd, send_fd) = w.into_fds();
    assert!(recv_fd.is_none());
    let mut w = Connection::from_fds(None, send_fd).unwrap();
    w.send(&6u8).unwrap();
    assert_eq!(r.recv::<u8>(), Ok(6));
    assert!(Connection::from_fds(None, None).is_err());
}

#[test]
fn connection_close_makes_later_calls_fail_and_the_peer_disconnect() {
    let (mut a, mut b) = pipe(true).unwrap();
    a.send(&1u8).unwrap();
    a.close();
    assert!(a.is_closed());
    assert_eq!(a.send(&1u8), Err(ConnError::Closed));
    assert_eq!(a.recv_bytes(), Err(ConnError::Closed));
    assert_eq!(a.poll(None), Err(ConnError::Closed));
    assert_eq!(wait(&[&a], None), [0]);
    assert!(a.into_fds().0.is_none());
    // The peer gets what was sent, then Disconnected, on both directions.
    assert!(b.poll(None).unwrap());
    assert_eq!(b.recv::<u8>(), Ok(1));
    assert!(b.poll(None).unwrap());
    assert_eq!(b.recv::<u8>(), Err(ConnError::Disconnected));
    assert_eq!(b.send(&1u8), Err(ConnError::Disconnected));
}

#[test]
fn connection_large_messages_are_chunked_through_a_small_ring() {
    let (mut a, mut b) = pipe_with(true, 4096, &ConnectionOptions::new()).unwrap();
    let sizes = [0, 1, 2015, 2016, 2017, 4095, 4096, 100_000, 1 << 20];
    let t = std::thread::spawn(move || {
        for (i, &n) in sizes.iter().enumerate() {
            a.send_bytes(&pattern(n, i as u8)).unwrap();
        }
        a.send(&pattern(300_000, 99)).unwrap();
        a
    });
    let mut buf = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), n);
        assert!(buf == pattern(n, i as u8), "message {i} of {n} bytes differs");
    }
    assert_eq!(b.recv::<Vec<u8>>().unwrap(), pattern(300_000, 99));
    let _a = t.join().unwrap();
}

#[test]
fn connection_borrowed_receives_hand_over_whole_records_and_reassemble_chunked_ones() {
    // recv_ref shows each record once (Consumer::read_or): a whole message is handed
    // over in place, a chunked one is reassembled into the scratch buffer; whole and
    // chunked ones interleave, blocking and timed receives alike.
    let (mut a, mut b) = pipe_with(true, 4096, &ConnectionOptions::new()).unwrap();
    let sizes = [0, 1, 2015, 2016, 2017, 4095, 4096, 5, 100_000, 7, 1 << 20, 3];
    let t = std::thread::spawn(move || {
        for (i, &n) in sizes.iter().enumerate() {
            a.send_bytes(&pattern(n, i as u8)).unwrap();
        }
        a
    });
    for (i, &n) in sizes.iter().enumerate() {
        let m = if i % 2 == 0 {
            b.recv_ref().unwrap()
        } else {
            b.recv_ref_timeout(Duration::from_secs(10)).unwrap()
        };
        assert_eq!(m.len(), n, "message {i}");
        assert!(*m == pattern(n, i as u8)[..], "message {i} of {n} bytes differs");
    }
    let _a = t.join().unwrap();
    assert!(matches!(b.try_recv_ref(), Err(ConnError::WouldBlock)));
}

#[test]
fn connection_send_that_stops_half_way_is_dropped_by_the_receiver() {
    let (mut a, mut b) = pipe_with(true, 4096, &ConnectionOptions::new()).unwrap();
    // 10 KiB through a ring of 4 KiB that nobody drains: part of it fits.
    let big = pattern(10_000, 1);
    assert_eq!(
        a.send_bytes_timeout(&big, Duration::from_millis(20)),
        Err(ConnError::Timeout)
    );
    // The receiver holds the first frames and waits for the rest.
    assert_eq!(b.try_recv_bytes(), Err(ConnError::WouldBlock));
    // The next message goes after an ABORT frame; the receiver drops the partial one.
    a.send_bytes(b"next").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"next");
    // try_send of a message larger than the free space: WouldBlock, nothing delivered.
    assert_eq!(a.try_send_bytes(&big), Err(ConnError::WouldBlock));
    assert_eq!(b.try_recv_bytes(), Err(ConnError::WouldBlock));
    assert_eq!(a.try_send_bytes(b"after"), Ok(()));
    assert_eq!(b.recv_bytes_timeout(Duration::from_secs(5)).unwrap(), b"after");
    // A timeout before the first frame sends nothing, and needs no ABORT.
    let filler = pattern(2000, 2);
    while a.try_send_bytes(&filler).is_ok() {}
    assert_eq!(
        a.send_bytes_timeout(&big, Duration::from_millis(1)),
        Err(ConnError::Timeout)
    );
    while b.try_recv_bytes().is_ok() {}
    a.send_bytes(b"last").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"last");
}

#[test]
fn connection_receive_that_times_out_half_way_keeps_the_frames() {
    let (mut p, mut conn) = raw_receiver(&ConnectionOptions::new());
    p.send(&[WHOLE, 1]).unwrap(); // ends the resync of a handed-over end
    assert_eq!(conn.recv_bytes().unwrap(), [1]);
    let mut first = vec![FIRST];
    first.extend_from_slice(&6u64.to_le_bytes());
    first.extend_from_slice(b"abc");
    p.send(&first).unwrap();
    assert_eq!(
        conn.recv_bytes_timeout(Duration::from_millis(5)),
        Err(ConnError::Timeout)
    );
    p.send(&[MORE, b'd']).unwrap();
    assert_eq!(conn.try_recv_bytes(), Err(ConnError::WouldBlock));
    p.send(&[LAST, b'e', b'f']).unwrap();
    assert_eq!(conn.try_recv_bytes().unwrap(), b"abcdef");
    // The producer vanishes in the middle of a message: Disconnected, nothing else.
    p.send(&first).unwrap();
    drop(p);
    assert_eq!(conn.recv_bytes(), Err(ConnError::Disconnected));
    assert_eq!(conn.recv_bytes(), Err(ConnError::Disconnected));
}

#[test]
fn connection_bad_frame_breaks_the_receive_direction() {
    let (mut p, mut conn) = raw_receiver(&ConnectionOptions::new());
    // A handed-over end skips the tail of a message begun before it.
    p.send(&[MORE, 1, 2]).unwrap();
    p.send(&[WHOLE, 3]).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), [3]);
    assert!(!conn.poll(Some(Duration::ZERO)).unwrap());
    p.send(&[MORE, 1, 2]).unwrap();
    p.send(&[WHOLE, 4]).unwrap();
    let bad = ConnError::BadFrame(FrameError::UnexpectedContinuation { kind: "MORE" });
    assert_eq!(conn.recv_bytes(), Err(bad.clone()));
    // Broken for good, and ready (the receive fails at once).
    assert_eq!(conn.recv_bytes(), Err(bad.clone()));
    assert_eq!(conn.try_recv::<u8>(), Err(bad));
    assert!(conn.poll(Some(Duration::ZERO)).unwrap());
    // A producer that closes before its first frame: Disconnected.
    let (p2, mut conn2) = raw_receiver(&ConnectionOptions::new());
    drop(p2);
    assert_eq!(conn2.recv_bytes(), Err(ConnError::Disconnected));
}

#[test]
fn connection_messages_over_the_limit_fail_on_either_side_and_the_pipe_goes_on() {
    let (mut a, b) = pipe_with(true, 4096, &ConnectionOptions::new().max_message_len(5000)).unwrap();
    let (r, s) = b.into_fds();
    let mut b = Connection::from_fds_with(r, s, &ConnectionOptions::new().max_message_len(1000)).unwrap();
    assert_eq!(
        a.send_bytes(&[0; 5001]),
        Err(ConnError::MessageTooLarge { len: 5001, max: 5000 })
    );
    let t = std::thread::spawn(move || {
        a.send_bytes(&[1; 1001]).unwrap(); // one frame, over the receiver's limit
        a.send_bytes(&[2; 4999]).unwrap(); // three frames, over it
        a.send_bytes(&[3; 1000]).unwrap();
        a
    });
    assert_eq!(b.recv_bytes(), Err(ConnError::MessageTooLarge { len: 1001, max: 1000 }));
    assert_eq!(b.recv_bytes(), Err(ConnError::MessageTooLarge { len: 4999, max: 1000 }));
    assert_eq!(b.recv_bytes().unwrap(), [3; 1000]);
    let mut a = t.join().unwrap();
    assert_eq!(
        b.send(&vec![0u8; 1000]),
        Err(ConnError::MessageTooLarge { len: 1002, max: 1000 })
    );
    b.send(&vec![0u8; 900]).unwrap();
    assert_eq!(a.recv::<Vec<u8>>().unwrap().len(), 900);
}

#[test]
fn connection_named_ends_and_handed_over_ends_talk() {
    let name = format!("shmring-test-conn-{}", std::process::id());
    let mut a = Connection::create(&name, 1024).unwrap();
    assert!(Connection::create(&name, 1024).is_err());
    let b = Connection::open(&name).unwrap();
    assert!(Connection::open(&name).is_err(), "both ends are taken");
    let (r, s) = b.into_fds();
    let mut b = Connection::from_fds(r, s).unwrap();
    a.send(&"a2b").unwrap();
    b.send(&"b2a").unwrap();
    assert_eq!(b.recv::<String>().unwrap(), "a2b");
    assert_eq!(a.recv::<String>().unwrap(), "b2a");
    let big = pattern(5000, 3);
    let t = std::thread::spawn(move || {
        b.send_bytes(&big).unwrap();
        b
    });
    assert_eq!(a.recv_bytes().unwrap(), pattern(5000, 3));
    drop(t.join().unwrap());
    drop(a);
    for suffix in ["a2b", "b2a"] {
        assert!(!std::path::Path::new(&format!("/dev/shm/{name}.{suffix}")).exists());
    }
}

#[test]
fn typed_sends_that_guess_the_length_send_every_length_exactly() {
    // Runs of one length (where a send guesses the last length and skips the counting
    // pass) broken by other lengths (the guess fails and nothing of it is sent).
    let (mut r, mut w) = pipe_with(false, 4096, &ConnectionOptions::new()).unwrap();
    let lens = [3, 3, 3, 3, 10, 10, 3, 3, 0, 0, 0, 700, 700, 5, 700, 700, 700];
    for (i, &len) in lens.iter().cycle().take(200).enumerate() {
        let msg = pattern(len, i as u8);
        w.send(&msg).unwrap();
        assert_eq!(r.recv::<Vec<u8>>().unwrap(), msg, "message {i} of {len} bytes");
    }
    // A full ring: a guess never waits, and try_send reports Full (nothing sent), also
    // when the last two lengths were equal.
    let msg = pattern(500, 1);
    let mut sent = 0;
    loop {
        match w.try_send(&msg) {
            Ok(()) => sent += 1,
            Err(ConnError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent >= 2, "{sent}");
    // A shorter message may still fit where the guessed length did not.
    let small = pattern(2, 9);
    let small_fits = w.try_send(&small).is_ok();
    for _ in 0..sent {
        assert_eq!(r.recv::<Vec<u8>>().unwrap(), msg);
    }
    if small_fits {
        assert_eq!(r.recv::<Vec<u8>>().unwrap(), small);
    }
    assert_eq!(r.try_recv_bytes(), Err(ConnError::WouldBlock));
}
