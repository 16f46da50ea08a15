//! `shmring::handoff` across real processes: objects sent over `SCM_RIGHTS` to an
//! unrelated process (a re-executed peer that connects to a Unix socket path; it
//! inherits nothing), and the refusals (wrong kind, truncated control data) checked for
//! leaked descriptors in a process of their own.

use crate::common;

use common::peer::*;
use common::*;
use shmring::broadcast::{self, Policy, RecvError};
use shmring::handoff::{self, HandoffError, Kind, MAX_FDS, Parcel};
use shmring::ring::spsc;
use shmring::{Connection, Queue, pipe};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

const SEED: u64 = 0x5eed_f00d;
const MAX_LEN: usize = 600;
const LIMIT: Duration = Duration::from_secs(60);

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "consumer" => consumer_peer(),
        "refusals" => refusals_peer(),
        "bcast-sub" => broadcast_subscriber_peer(),
        "bcast-pub" => broadcast_publisher_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

fn err<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

fn message(seq: u64) -> Vec<u8> {
    let mut v = vec![0u8; msg_len(SEED, seq, MAX_LEN)];
    fill_msg(seq, &mut v);
    v
}

/// A private directory for a socket path, removed with everything in it on drop.
struct SockDir(PathBuf);

impl SockDir {
    fn new() -> SockDir {
        let d = std::env::temp_dir().join(unique_name("handoff"));
        std::fs::create_dir(&d).expect("mkdir");
        SockDir(d)
    }
    fn sock(&self) -> PathBuf {
        self.0.join("sock")
    }
}

impl Drop for SockDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The unrelated process: connect to $SOCK, receive a $WHAT, consume $N messages from
/// it and check each one.
fn consumer_peer() -> Result<(), String> {
    let sock = UnixStream::connect(env_str("SOCK")).map_err(err("connect"))?;
    let n = env_num("N");
    let mut scratch = Vec::new();
    match env_str("WHAT").as_str() {
        "queue" => {
            let mut q: Queue<Vec<u8>> = handoff::recv(&sock, Some(LIMIT)).map_err(err("recv queue"))?;
            for seq in 0..n {
                let m = q.get_timeout(LIMIT).map_err(err("get"))?;
                check_msg(SEED, seq, MAX_LEN, &m, &mut scratch)?;
            }
        }
        "connection" => {
            let mut c: Connection = handoff::recv(&sock, Some(LIMIT)).map_err(err("recv connection"))?;
            let mut sum = 0u64;
            for seq in 0..n {
                let m: Vec<u8> = c.recv().map_err(err("recv"))?;
                check_msg(SEED, seq, MAX_LEN, &m, &mut scratch)?;
                sum = sum.wrapping_add(checksum(&m));
            }
            // Duplex: the answer goes back through the same passed end.
            c.send(&sum).map_err(err("send sum"))?;
        }
        "spsc" => {
            let mut rx: spsc::Consumer = handoff::recv(&sock, Some(LIMIT)).map_err(err("recv ring"))?;
            for seq in 0..n {
                let m = rx.recv().map_err(err("ring recv"))?;
                check_msg(SEED, seq, MAX_LEN, &m, &mut scratch)?;
            }
        }
        other => return Err(format!("unknown WHAT {other}")),
    }
    say(&format!("consumed {n}"));
    Ok(())
}

/// Send one `what` end to an unrelated peer over a socket path and feed it `n` messages.
fn pass_to_unrelated(test: &str, what: &str, n: u64) {
    let dir = SockDir::new();
    let listener = UnixListener::bind(dir.sock()).expect("bind");
    let peer = Peer::spawn(
        test,
        "consumer",
        &[
            ("SOCK", dir.sock().display().to_string()),
            ("WHAT", what.to_owned()),
            ("N", n.to_string()),
        ],
    );
    let (sock, _) = listener.accept().expect("accept");
    match what {
        "queue" => {
            let mut q: Queue<Vec<u8>> = Queue::new(64).unwrap();
            handoff::send(&sock, q.try_clone().unwrap()).unwrap();
            for seq in 0..n {
                q.put(&message(seq)).unwrap();
            }
        }
        "connection" => {
            let (mut a, b) = pipe(true).unwrap();
            handoff::send(&sock, b).unwrap();
            let mut sum = 0u64;
            for seq in 0..n {
                let m = message(seq);
                sum = sum.wrapping_add(checksum(&m));
                a.send(&m).unwrap();
            }
            let back: u64 = a.recv().unwrap();
            assert_eq!(back, sum, "the peer's checksum of what it received");
        }
        "spsc" => {
            let (mut tx, rx) = spsc::channel(1 << 14).unwrap();
            handoff::send(&sock, rx).unwrap();
            for seq in 0..n {
                tx.send(&message(seq)).unwrap();
            }
        }
        _ => unreachable!(),
    }
    let lines = peer.finish(LIMIT);
    assert!(
        lines.iter().any(|l| l.ends_with(&format!("consumed {n}"))),
        "peer output: {lines:?}"
    );
}

#[test]
fn queue_connection_and_ring_pass_to_an_unrelated_process() {
    const TEST: &str = "queue_connection_and_ring_pass_to_an_unrelated_process";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new("handoff to an unrelated process", Duration::from_secs(180));
    for what in ["queue", "connection", "spsc"] {
        pass_to_unrelated(TEST, what, 3000);
    }
}

/// The unrelated process that receives a subscriber of an anonymous broadcast ring
/// (hand-off kind 24): says when it is attached, checks $N messages in order, then
/// expects `Disconnected` once the publisher is gone.
fn broadcast_subscriber_peer() -> Result<(), String> {
    let sock = UnixStream::connect(env_str("SOCK")).map_err(err("connect"))?;
    let n = env_num("N");
    let mut rx: broadcast::Subscriber = handoff::recv(&sock, Some(LIMIT)).map_err(err("recv subscriber"))?;
    if rx.name().is_some() {
        return Err("an anonymous ring's subscriber has a name".into());
    }
    say("attached");
    let mut scratch = Vec::new();
    for seq in 0..n {
        let m = rx.recv_timeout(LIMIT).map_err(err("broadcast recv"))?;
        check_msg(SEED, seq, MAX_LEN, &m, &mut scratch)?;
    }
    match rx.recv_timeout(LIMIT) {
        Err(RecvError::Disconnected) => {}
        other => return Err(format!("after {n} messages: {other:?}, expected Disconnected")),
    }
    say(&format!("consumed {n}"));
    Ok(())
}

/// The unrelated process that receives the publisher of an anonymous broadcast ring
/// (hand-off kind 23) and publishes $N messages on it, then closes it.
fn broadcast_publisher_peer() -> Result<(), String> {
    let sock = UnixStream::connect(env_str("SOCK")).map_err(err("connect"))?;
    let n = env_num("N");
    let mut tx: broadcast::Publisher = handoff::recv(&sock, Some(LIMIT)).map_err(err("recv publisher"))?;
    for seq in 0..n {
        tx.send_timeout(&message(seq), LIMIT).map_err(err("broadcast send"))?;
    }
    drop(tx);
    say(&format!("published {n}"));
    Ok(())
}

/// Hand one end of an anonymous (memfd) broadcast ring to an unrelated process, and
/// run a lossless stream of `n` messages between it and this process over the ring.
fn pass_broadcast_end(test: &str, what: &str, n: u64) {
    let dir = SockDir::new();
    let listener = UnixListener::bind(dir.sock()).expect("bind");
    let role = if what == "subscriber" { "bcast-sub" } else { "bcast-pub" };
    let mut peer = Peer::spawn(
        test,
        role,
        &[("SOCK", dir.sock().display().to_string()), ("N", n.to_string())],
    );
    let (sock, _) = listener.accept().expect("accept");
    // A small ring, so that the lossless publisher waits for the other process often.
    let (tx, rx) = broadcast::channel(1 << 12, 4, Policy::Lossless).unwrap();
    if what == "subscriber" {
        let mut tx = tx;
        handoff::send(&sock, rx).unwrap();
        // The peer's subscriber starts at the newest message: publish once it is there.
        peer.expect("attached", LIMIT);
        for seq in 0..n {
            tx.send_timeout(&message(seq), LIMIT).unwrap();
        }
        drop(tx);
        let lines = peer.finish(LIMIT);
        assert!(
            lines.iter().any(|l| l.ends_with(&format!("consumed {n}"))),
            "peer output: {lines:?}"
        );
    } else {
        let mut rx = rx;
        handoff::send(&sock, tx).unwrap();
        let mut scratch = Vec::new();
        for seq in 0..n {
            let m = rx.recv_timeout(LIMIT).unwrap();
            check_msg(SEED, seq, MAX_LEN, &m, &mut scratch).unwrap();
        }
        assert_eq!(rx.recv_timeout(LIMIT), Err(RecvError::Disconnected));
        assert_eq!((rx.received(), rx.missed()), (n, 0));
        let lines = peer.finish(LIMIT);
        assert!(
            lines.iter().any(|l| l.ends_with(&format!("published {n}"))),
            "peer output: {lines:?}"
        );
    }
}

#[test]
fn anonymous_broadcast_ends_pass_to_an_unrelated_process() {
    const TEST: &str = "anonymous_broadcast_ends_pass_to_an_unrelated_process";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new("broadcast hand-off to an unrelated process", Duration::from_secs(180));
    pass_broadcast_end(TEST, "subscriber", 5000);
    pass_broadcast_end(TEST, "publisher", 5000);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

fn devnulls(n: usize) -> Vec<OwnedFd> {
    (0..n)
        .map(|_| std::fs::File::open("/dev/null").expect("open").into())
        .collect()
}

/// Refusals, in a process of its own so that no other test opens descriptors while it
/// counts them.
fn refusals_peer() -> Result<(), String> {
    let (a, b) = UnixStream::pair().map_err(err("pair"))?;
    let base = open_fds();
    let same = |what: &str| -> Result<(), String> {
        let now = open_fds();
        say(&format!("{what}: {now} descriptors open (before: {base})"));
        if now == base {
            Ok(())
        } else {
            Err(format!("{what}: {now} descriptors open, {base} before: leaked"))
        }
    };

    // More descriptors than the receiver has room for: MSG_CTRUNC.
    handoff::send_parcel(
        &a,
        &Parcel {
            kind: Kind::Queue,
            meta: 0,
            fds: devnulls(3),
        },
    )
    .map_err(err("send 3"))?;
    match handoff::recv_parcel_max(&b, Some(LIMIT), 1) {
        Err(HandoffError::Truncated(_)) => {}
        r => return Err(format!("3 descriptors into room for 1: {r:?}")),
    }
    same("truncated control data (3 into 1)")?;

    handoff::send_parcel(
        &a,
        &Parcel {
            kind: Kind::Queue,
            meta: 0,
            fds: devnulls(MAX_FDS + 1),
        },
    )
    .map_err(err("send MAX_FDS + 1"))?;
    match handoff::recv_parcel(&b, Some(LIMIT)) {
        Err(HandoffError::Truncated(_)) => {}
        r => return Err(format!("{} descriptors: {r:?}", MAX_FDS + 1)),
    }
    same("truncated control data (MAX_FDS + 1)")?;

    // The socket still works after a refusal: the next message is whole.
    let q: Queue<u64> = Queue::new(4).map_err(err("queue"))?;
    handoff::send(&a, q.try_clone().map_err(err("clone"))?).map_err(err("send queue"))?;
    match handoff::recv::<spsc::Consumer>(&b, Some(LIMIT)) {
        Err(HandoffError::WrongKind {
            expected: Kind::SpscConsumer,
            found: Kind::Queue,
        }) => {}
        r => return Err(format!("a queue received as a ring end: {r:?}")),
    }
    handoff::send(&a, q.try_clone().map_err(err("clone"))?).map_err(err("send queue"))?;
    match handoff::recv::<Queue<String>>(&b, Some(LIMIT)) {
        Err(HandoffError::WrongType { kind: Kind::Queue, .. }) => {}
        r => return Err(format!("a Queue<u64> received as Queue<String>: {r:?}")),
    }
    drop(q);
    same("wrong kind and wrong type")?;

    // And a right one still arrives and works.
    let mut q: Queue<u64> = Queue::new(4).map_err(err("queue"))?;
    handoff::send(&a, q.try_clone().map_err(err("clone"))?).map_err(err("send queue"))?;
    let mut theirs: Queue<u64> = handoff::recv(&b, Some(LIMIT)).map_err(err("recv queue"))?;
    q.put(&42).map_err(err("put"))?;
    let got = theirs.get_timeout(LIMIT).map_err(err("get"))?;
    if got != 42 {
        return Err(format!("got {got}"));
    }
    // Cost of a handoff (into_parcel, sendmsg, recvmsg, attach) of a queue, printed.
    let rounds = 200u64;
    let t = std::time::Instant::now();
    for i in 0..rounds {
        handoff::send(&a, q.try_clone().map_err(err("clone"))?).map_err(err("send"))?;
        let mut r: Queue<u64> = handoff::recv(&b, Some(LIMIT)).map_err(err("recv"))?;
        q.put(&i).map_err(err("put"))?;
        let got = r.get_timeout(LIMIT).map_err(err("get"))?;
        if got != i {
            return Err(format!("round {i}: got {got}"));
        }
    }
    say(&format!(
        "queue handoff + put/get over a socketpair: {:?} per round ({rounds} rounds)",
        t.elapsed() / rounds as u32
    ));
    drop((q, theirs));
    same("after 200 handoffs, every queue dropped")?;
    say("refusals ok");
    Ok(())
}

#[test]
fn refusals_close_every_received_descriptor() {
    const TEST: &str = "refusals_close_every_received_descriptor";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new("handoff refusals", Duration::from_secs(120));
    let peer = Peer::spawn(TEST, "refusals", &[]);
    let lines = peer.finish(LIMIT);
    for l in &lines {
        eprintln!("{l}");
    }
    assert!(
        lines.iter().any(|l| l.ends_with("refusals ok")),
        "peer output: {lines:?}"
    );
}
