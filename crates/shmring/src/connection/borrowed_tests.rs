//! Tests of the in-place typed paths: encode into the claimed record, receive in place
//! ([`Connection::recv_ref`]), into a value ([`Connection::recv_into`]), in batches.

use super::frame::{FIRST, LAST, WHOLE};
use super::{ConnError, Connection, ConnectionOptions, pipe, pipe_with};
use crate::ring::spsc::{self, Producer};

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
struct Tick {
    seq: u64,
    sym: String,
    data: Vec<u8>,
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct TickRef<'a> {
    seq: u64,
    sym: &'a str,
    #[serde(borrow)]
    data: &'a [u8],
}

fn tick(seq: u64, data_len: usize) -> Tick {
    Tick {
        seq,
        sym: format!("SYM{seq}"),
        data: (0..data_len).map(|i| (i as u64 ^ seq) as u8).collect(),
    }
}

fn check(t: &TickRef<'_>, want: &Tick) {
    assert_eq!((t.seq, t.sym, t.data), (want.seq, want.sym.as_str(), &want.data[..]));
}

#[test]
fn borrowed_receive_of_one_record_and_of_chunked_messages() {
    // 4 KiB ring: records up to about 2 KiB; a 10 KiB message is chunked (the send falls
    // back from the in-place path).
    let (mut a, mut b) = pipe_with(true, 4096, &ConnectionOptions::new()).unwrap();
    let small = tick(1, 20);
    let big = tick(2, 10_000);
    let t = std::thread::spawn(move || {
        a.send(&small).unwrap();
        a.send(&big).unwrap();
        a.send(&small).unwrap();
        a
    });
    let m = b.recv_ref().unwrap();
    check(&m.decode().unwrap(), &tick(1, 20));
    // The borrowed string lies in the message's bytes (in the ring), not in a copy.
    let r: TickRef<'_> = m.decode().unwrap();
    let range = m.as_ptr_range();
    assert!(range.contains(&r.sym.as_ptr()));
    drop(m);
    let m = b.recv_ref().unwrap();
    check(&m.decode().unwrap(), &tick(2, 10_000));
    drop(m);
    check(&b.recv_ref().unwrap().decode().unwrap(), &tick(1, 20));
    let a = t.join().unwrap();
    assert_eq!(b.try_recv_ref().unwrap_err(), ConnError::WouldBlock);
    drop(a);
    assert_eq!(b.recv_ref().unwrap_err(), ConnError::Disconnected);
}

#[test]
fn a_message_that_does_not_decode_is_consumed_and_reported() {
    let (mut a, mut b) = pipe(true).unwrap();
    a.send(&"not a tick").unwrap();
    a.send(&tick(3, 1)).unwrap();
    assert!(matches!(
        b.recv_ref().unwrap().decode::<TickRef<'_>>(),
        Err(crate::codec::CodecError::Decode(_) | crate::codec::CodecError::TrailingBytes { .. })
    ));
    check(&b.recv_ref().unwrap().decode().unwrap(), &tick(3, 1));
}

#[test]
fn recv_into_reuses_the_strings_allocation() {
    let (mut a, mut b) = pipe(true).unwrap();
    let mut s = String::with_capacity(64);
    let ptr = s.as_ptr();
    for w in ["alpha", "beta", "gamma"] {
        a.send(w).unwrap();
        b.recv_into(&mut s).unwrap();
        assert_eq!((s.as_str(), s.as_ptr()), (w, ptr));
    }
    assert_eq!(b.try_recv_into(&mut s), Err(ConnError::WouldBlock));
    a.send(&7u8).unwrap();
    let mut v = 0u8;
    b.recv_into(&mut v).unwrap();
    assert_eq!(v, 7);
}

#[test]
fn batches_take_what_is_there_up_to_max() {
    let (mut a, mut b) = pipe(true).unwrap();
    assert_eq!(
        b.try_recv_batch(8, |_| panic!("nothing sent")),
        Err(ConnError::WouldBlock)
    );
    for i in 0..20 {
        a.send(&tick(i, 3)).unwrap();
    }
    let mut got = Vec::new();
    let n = b.recv_batch(8, |m| got.push(m.decode::<Tick>().unwrap())).unwrap();
    assert_eq!(n, 8);
    let n = b
        .try_recv_batch(100, |m| got.push(m.decode::<Tick>().unwrap()))
        .unwrap();
    assert_eq!(n, 12);
    assert_eq!(got, (0..20).map(|i| tick(i, 3)).collect::<Vec<_>>());
    drop(a);
    assert_eq!(b.recv_batch(8, |_| panic!("no more")), Err(ConnError::Disconnected));
}

/// The receiving end of a raw ring whose producer the test drives frame by frame.
fn raw_receiver(opts: &ConnectionOptions) -> (Producer, Connection) {
    let (p, c) = spsc::channel(4096).unwrap();
    let conn = Connection::from_fds_with(c.into_fd(), None, opts).unwrap();
    (p, conn)
}

#[test]
fn a_batch_ends_before_a_message_it_cannot_hand_over() {
    let (mut p, mut c) = raw_receiver(&ConnectionOptions::new().max_message_len(8));
    p.send(&[WHOLE, 1]).unwrap();
    p.send(&[WHOLE, 2]).unwrap();
    p.send(&[WHOLE; 20]).unwrap(); // over the limit of 8
    p.send(&[WHOLE, 3]).unwrap();
    // A chunked message: FIRST (total 4) + LAST.
    let mut first = vec![FIRST];
    first.extend_from_slice(&4u64.to_le_bytes());
    first.extend_from_slice(&[4, 4]);
    p.send(&first).unwrap();
    p.send(&[LAST, 4, 4]).unwrap();
    p.send(&[WHOLE, 5]).unwrap();
    let mut got = Vec::new();
    let mut take = |c: &mut Connection| c.try_recv_batch(100, |m| got.push(m.to_vec()));
    assert_eq!(take(&mut c), Ok(2));
    assert!(matches!(
        take(&mut c),
        Err(ConnError::MessageTooLarge { len: 19, max: 8 })
    ));
    // The next message, then the chunked one ends that batch (left for the next).
    assert_eq!(take(&mut c), Ok(1));
    assert_eq!(take(&mut c), Ok(2));
    assert_eq!(take(&mut c), Err(ConnError::WouldBlock));
    assert_eq!(got, [vec![1], vec![2], vec![3], vec![4, 4, 4, 4], vec![5]]);
    // A bad frame: reported, and the direction stays broken.
    p.send(&[9]).unwrap();
    assert!(matches!(c.try_recv_batch(4, |_| ()), Err(ConnError::BadFrame(_))));
    p.send(&[WHOLE, 6]).unwrap();
    assert!(matches!(c.try_recv_ref(), Err(ConnError::BadFrame(_))));
}

#[test]
fn typed_sends_in_place_respect_limits_and_abort_a_cut_message() {
    let opts = ConnectionOptions::new().max_message_len(100);
    let (mut a, mut b) = pipe_with(true, 4096, &opts).unwrap();
    assert!(matches!(
        a.send(&tick(0, 200)),
        Err(ConnError::MessageTooLarge { max: 100, .. })
    ));
    // A message larger than the ring's free space cut by try_send, then a small typed
    // send: ABORT goes out first and the receiver gets only the small one.
    let (mut c, mut d) = pipe_with(true, 4096, &ConnectionOptions::new()).unwrap();
    assert_eq!(c.try_send(&tick(1, 20_000)), Err(ConnError::WouldBlock));
    let t = std::thread::spawn(move || {
        let got: Result<Vec<u8>, ConnError> = d.recv_bytes();
        (d, got)
    });
    c.send(&tick(2, 5)).unwrap();
    let (mut d, got) = t.join().unwrap();
    assert_eq!(crate::codec::decode::<Tick>(&got.unwrap()).unwrap(), tick(2, 5));
    assert_eq!(d.try_recv_bytes(), Err(ConnError::WouldBlock));
    a.send(&tick(3, 10)).unwrap();
    assert_eq!(b.recv::<Tick>().unwrap(), tick(3, 10));
}
