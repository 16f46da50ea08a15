//! Handles in band on a `SocketConnection` (`send_handle`/`recv_handle`): objects sent
//! between messages over an authenticated Unix socket to an unrelated re-executed
//! process, and a peer that attaches descriptors where it should not, checked for
//! leaked descriptors in a process of its own.

use crate::common;

use common::peer::*;
use common::*;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use shmring::handoff::{Handoff, HandoffError, MAX_FDS};
use shmring::net::{Client, Listener, SocketConnection};
use shmring::{ConnError, Connection, Queue, pipe};
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

const KEY: &[u8] = b"net handles test key";
const N: u64 = 2000;
const LIMIT: Duration = Duration::from_secs(60);

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "receiver" => receiver_peer(),
        "refusals" => refusals_peer(),
        "talker" => talker_peer(),
        "taker" => taker_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Messages and handles in the order the parent sends them: a message, a queue, a
/// message, a pipe end, then a message where a handle is asked for (refused, dropped),
/// then a last message. The queue and the pipe then carry `N` checked items each; no
/// descriptor is left open after they are dropped.
fn receiver_peer() -> Result<(), String> {
    let before = open_fds();
    let mut c = Client::connect(&peer_addr()?, Some(KEY)).map_err(err("connect"))?;
    let first: String = c.recv_timeout(LIMIT).map_err(err("recv 1"))?;
    let mut q: Queue<u64> = c.recv_handle(Some(LIMIT)).map_err(err("recv queue"))?;
    let second: String = c.recv_timeout(LIMIT).map_err(err("recv 2"))?;
    let mut p: Connection = c.recv_handle(Some(LIMIT)).map_err(err("recv pipe end"))?;
    match c.recv_handle::<Queue<u64>>(Some(LIMIT)) {
        Err(HandoffError::Malformed(why)) => say(&format!("message refused as a handle: {why}")),
        other => return Err(format!("a message taken as a handle: {other:?}")),
    }
    let last: String = c.recv_timeout(LIMIT).map_err(err("recv 3"))?;
    if (first.as_str(), second.as_str(), last.as_str()) != ("one", "two", "last") {
        return Err(format!("messages out of order: {first} {second} {last}"));
    }
    for i in 0..N {
        let v = q.get_timeout(LIMIT).map_err(err("queue get"))?;
        if v != i {
            return Err(format!("queue item {i} was {v}"));
        }
        let m: u64 = p.recv_timeout(LIMIT).map_err(err("pipe recv"))?;
        if m != 2 * i {
            return Err(format!("pipe message {i} was {m}"));
        }
    }
    p.send(&N).map_err(err("pipe send"))?;
    drop((q, p, c));
    let after = open_fds();
    if after != before {
        return Err(format!("{before} descriptors open before, {after} after"));
    }
    say(&format!("received {N} and {N}, descriptors {before} -> {after}"));
    Ok(())
}

#[test]
fn a_queue_and_a_pipe_end_travel_in_band_between_messages() {
    const TEST: &str = "a_queue_and_a_pipe_end_travel_in_band_between_messages";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    let l = Listener::bind(&abstract_addr("handles"), Some(KEY)).unwrap();
    let mut peer = Peer::spawn(TEST, "receiver", &[("ADDR", l.local_addr().to_string())]);
    let mut s = l.accept_timeout(LIMIT).unwrap();
    let mut q = Queue::<u64>::new(64).unwrap();
    let (mut a, b) = pipe(true).unwrap();
    s.send(&"one").unwrap();
    s.send_handle(q.try_clone().unwrap()).unwrap();
    s.send(&"two").unwrap();
    s.send_handle(b).unwrap();
    s.send(&"not a handle").unwrap();
    s.send(&"last").unwrap();
    for i in 0..N {
        q.put(&i).unwrap();
        a.send(&(2 * i)).unwrap();
    }
    assert_eq!(a.recv_timeout::<u64>(LIMIT).unwrap(), N);
    peer.expect("message refused as a handle", LIMIT);
    let lines = peer.finish(LIMIT);
    assert!(
        lines.iter().any(|l| l.contains(&format!("received {N} and {N}"))),
        "{lines:?}"
    );
}

/// Write raw bytes to `sock` with `fds` attached (what a hostile peer can do).
fn send_raw(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let mut space = vec![MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    }
    let n = rustix::net::sendmsg(sock, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL).unwrap();
    assert_eq!(n, bytes.len());
}

/// A socket frame: kind, three zero bytes, length, payload.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![kind, 0, 0, 0];
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// A handoff header (`handoff::socket`): magic, version 1, kind 9 (a segment), meta,
/// a descriptor count that may lie.
fn handle_header(nfds: u32) -> Vec<u8> {
    let mut h = b"SHMH".to_vec();
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&9u16.to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    h.extend_from_slice(&nfds.to_le_bytes());
    h.extend_from_slice(&[0; 4]);
    h
}

fn devnull() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

/// A connected pair after the handshake, in this process: (raw writer side, reader).
fn pair(tag: &str) -> (SocketConnection, SocketConnection) {
    let l = Listener::bind(&abstract_addr(tag), None).map_err(err("bind")).unwrap();
    let addr = l.local_addr().clone();
    let t = std::thread::spawn(move || Client::connect(&addr, None).unwrap());
    let s = l.accept_timeout(LIMIT).unwrap();
    (t.join().unwrap(), s)
}

/// Each refusal in a process of its own, so that the descriptor count is exact.
fn refusals_peer() -> Result<(), String> {
    let base = open_fds();
    let check = |what: &str| -> Result<(), String> {
        // A listener's handshake thread may still be exiting (it holds the listener's
        // wake-up pipe until it returns): give it a moment; a leaked descriptor stays.
        let mut now = open_fds();
        for _ in 0..200 {
            if now == base {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
            now = open_fds();
        }
        Err(format!("{what}: {base} descriptors open before, {now} after"))
    };
    // 1. A handle frame that announces 2 descriptors and carries 1: FdCount, closed,
    //    and the connection goes on.
    {
        let (w, mut r) = pair("refuse-count");
        let fd = devnull();
        send_raw(w.as_fd(), &frame(3, &handle_header(2)), &[fd.as_fd()]);
        drop(fd);
        match r.recv_parcel(Some(LIMIT)) {
            Err(HandoffError::FdCount { expected: 2, got: 1 }) => {}
            other => return Err(format!("a lying count gave {other:?}")),
        }
        send_raw(w.as_fd(), &frame(1, &[7]), &[]);
        let after = r.recv_bytes_timeout(LIMIT).map_err(err("recv after a lying count"))?;
        if after != [7] {
            return Err(format!("the message after a lying count: {after:?}"));
        }
    }
    check("a lying descriptor count")?;
    // 2. A message with a descriptor attached: the message arrives; the stray
    //    descriptor is closed with the connection.
    {
        let (w, mut r) = pair("refuse-stray");
        let fd = devnull();
        send_raw(w.as_fd(), &frame(1, &[1, 2, 3]), &[fd.as_fd()]);
        drop(fd);
        let m = r
            .recv_bytes_timeout(LIMIT)
            .map_err(err("recv a message with a stray descriptor"))?;
        if m != [1, 2, 3] {
            return Err(format!("the message with a stray descriptor: {m:?}"));
        }
    }
    check("a stray descriptor")?;
    // 3. More descriptors in one write than a handle carries: the control data is cut
    //    (MSG_CTRUNC), the receive side breaks, every descriptor is closed.
    {
        let (w, mut r) = pair("refuse-many");
        let fds: Vec<OwnedFd> = (0..=MAX_FDS).map(|_| devnull()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        send_raw(w.as_fd(), &frame(3, &handle_header(MAX_FDS as u32 + 1)), &borrowed);
        drop(fds);
        match r.recv_parcel(Some(LIMIT)) {
            Err(HandoffError::Malformed(why)) if why.contains("descriptors") => {}
            other => return Err(format!("{} descriptors gave {other:?}", MAX_FDS + 1)),
        }
        match r.recv_bytes_timeout(Duration::from_millis(100)) {
            Err(ConnError::BadFrame(_)) => {}
            other => return Err(format!("a receive after the cut control data gave {other:?}")),
        }
    }
    check("too many descriptors")?;
    // 4. A handle where a message is expected: UnexpectedHandle, its descriptor closed,
    //    the next message received.
    {
        let (w, mut r) = pair("refuse-unexpected");
        let fd = devnull();
        send_raw(w.as_fd(), &frame(3, &handle_header(1)), &[fd.as_fd()]);
        drop(fd);
        send_raw(w.as_fd(), &frame(1, &[9]), &[]);
        match r.recv_bytes_timeout(LIMIT) {
            Err(ConnError::UnexpectedHandle) => {}
            other => return Err(format!("a handle where a message was expected gave {other:?}")),
        }
        let m = r
            .recv_bytes_timeout(LIMIT)
            .map_err(err("recv after an unexpected handle"))?;
        if m != [9] {
            return Err(format!("the message after an unexpected handle: {m:?}"));
        }
    }
    check("an unexpected handle")?;
    say("refusals checked");
    Ok(())
}

#[test]
fn descriptors_where_they_do_not_belong_are_refused_and_closed() {
    const TEST: &str = "descriptors_where_they_do_not_belong_are_refused_and_closed";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let lines = Peer::spawn(TEST, "refusals", &[]).finish(LIMIT);
    assert!(lines.iter().any(|l| l.ends_with("refusals checked")), "{lines:?}");
}

#[test]
fn a_handle_over_tcp_is_an_error_not_a_broken_connection() {
    let _w = Watchdog::new("a_handle_over_tcp_is_an_error", Duration::from_secs(60));
    let l = Listener::bind(&"127.0.0.1:0".parse().unwrap(), None).unwrap();
    let addr = l.local_addr().clone();
    let t = std::thread::spawn(move || {
        let mut c = Client::connect(&addr, None).unwrap();
        c.recv_timeout::<String>(LIMIT).unwrap()
    });
    let mut s = l.accept_timeout(LIMIT).unwrap();
    let q = Queue::<u64>::new(4).unwrap();
    let e = s.send_handle(q).unwrap_err();
    assert!(matches!(e, HandoffError::NotTransferable(_)), "{e:?}");
    s.send(&"still here".to_string()).unwrap();
    assert_eq!(t.join().unwrap(), "still here");
}

// ---------------------------------------------------------------------------------------
// A socket connection moved to another process mid-conversation

/// Client "A": says hello to the server, then asks `N` questions; whoever holds the
/// server's end answers each with twice the number.
fn talker_peer() -> Result<(), String> {
    let mut c = Client::connect(&peer_addr()?, Some(KEY)).map_err(err("connect"))?;
    c.send(&"hello".to_string()).map_err(err("send hello"))?;
    let moved: String = c.recv_timeout(LIMIT).map_err(err("recv"))?;
    for i in 0..N {
        c.send(&i).map_err(err("send"))?;
        let a: u64 = c.recv_timeout(LIMIT).map_err(err("recv answer"))?;
        if a != 2 * i {
            return Err(format!("answer {i} was {a}"));
        }
    }
    say(&format!("{N} answers, {moved}"));
    Ok(())
}

/// Process "B": receives the server's end of A's connection over its own connection
/// to the server (a handle), tells A, and answers A's questions.
fn taker_peer() -> Result<(), String> {
    let mut c = Client::connect(&env_str("ADDR2").parse().map_err(err("ADDR2"))?, Some(KEY)).map_err(err("connect"))?;
    let mut a: SocketConnection = c.recv_handle(Some(LIMIT)).map_err(err("recv the connection"))?;
    a.send(&format!("answered by process {}", std::process::id()))
        .map_err(err("send"))?;
    for _ in 0..N {
        let q: u64 = a.recv_timeout(LIMIT).map_err(err("recv question"))?;
        a.send(&(2 * q)).map_err(err("send answer"))?;
    }
    say("answered");
    Ok(())
}

#[test]
fn a_socket_connection_moves_to_another_process_mid_conversation() {
    const TEST: &str = "a_socket_connection_moves_to_another_process_mid_conversation";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    let la = Listener::bind(&abstract_addr("move-a"), Some(KEY)).unwrap();
    let lb = Listener::bind(&abstract_addr("move-b"), Some(KEY)).unwrap();
    let talker = Peer::spawn(TEST, "talker", &[("ADDR", la.local_addr().to_string())]);
    let mut a = la.accept_timeout(LIMIT).unwrap();
    assert_eq!(a.recv_timeout::<String>(LIMIT).unwrap(), "hello");
    let taker = Peer::spawn(TEST, "taker", &[("ADDR2", lb.local_addr().to_string())]);
    let mut b = lb.accept_timeout(LIMIT).unwrap();
    b.send_handle(a).unwrap();
    let t = taker.finish(LIMIT);
    assert!(t.iter().any(|l| l.ends_with("answered")), "{t:?}");
    let lines = talker.finish(LIMIT);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("{N} answers, answered by process"))),
        "{lines:?}"
    );
}

/// An end with received bytes it has not delivered stays here: handing it over would
/// lose them.
#[test]
fn a_socket_connection_holding_unread_bytes_is_not_handed_over() {
    let _w = Watchdog::new("a_socket_connection_holding_unread_bytes", Duration::from_secs(60));
    let (w, mut r) = pair("move-refuse");
    // Half a frame header: the receive buffers it and waits for the rest.
    send_raw(w.as_fd(), &[1, 0, 0], &[]);
    assert!(r.poll(Some(LIMIT)).unwrap());
    assert_eq!(r.try_recv_bytes(), Err(ConnError::WouldBlock));
    match r.into_parcel() {
        Err(HandoffError::NotTransferable(why)) => assert!(why.contains("not delivered"), "{why}"),
        other => panic!("an end holding bytes was handed over: {other:?}"),
    }
    // A closed end neither.
    let (_w2, mut r2) = pair("move-refuse-closed");
    r2.close();
    assert!(matches!(r2.into_parcel(), Err(HandoffError::NotTransferable(_))));
}
