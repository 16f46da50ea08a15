//! Cross-process tests of the MPMC queue (issue 3): the test binary re-executes itself
//! as producers and consumers (see `common::spawn_peer`), each in its own process.
//!
//! Messages carry a key `(producer id << 32) | sequence` and a checksum of the rest (see
//! `common::fill_msg`); their length (16..=slot size) is derived from the key, so a
//! receiver checks every byte. Consumer peers report what they received as one bitmap
//! per producer on stdout; the parent checks exactly-once delivery over the union.

use crate::common;

use common::peer::*;
use common::*;
use shmring::Error;
use shmring::ring::mpmc::slot::{self, Owner};
use shmring::ring::mpmc::{self, Consumer, PopError, Producer, PushError, QueueStats};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------
// Messages

/// The key of message `seq` of producer `id`.
fn key(id: u32, seq: u64) -> u64 {
    (u64::from(id) << 32) | seq
}

/// Length of the message with `key`: 16..=max bytes.
fn len_of(key: u64, max: usize) -> usize {
    16 + (mix(key ^ 0x5eed_3003) % (max as u64 - 15)) as usize
}

/// Write message `seq` of producer `id` into `buf` (resized to its length).
fn make_msg(id: u32, seq: u64, max: usize, buf: &mut Vec<u8>) {
    let k = key(id, seq);
    buf.resize(len_of(k, max), 0);
    fill_msg(k, buf);
}

/// Check a received message's length, checksum and contents; return (id, seq).
fn check(msg: &[u8], max: usize, scratch: &mut Vec<u8>) -> Result<(u32, u64), String> {
    if msg.len() < 16 {
        return Err(format!("message of {} bytes, shorter than its header", msg.len()));
    }
    let k = u64::from_le_bytes(msg[..8].try_into().unwrap());
    let (id, seq) = ((k >> 32) as u32, k & 0xffff_ffff);
    let want = len_of(k, max);
    if msg.len() != want {
        return Err(format!("producer {id} seq {seq}: length {} != {want}", msg.len()));
    }
    let sum = u64::from_le_bytes(msg[8..16].try_into().unwrap());
    if sum != checksum(&msg[16..]) {
        return Err(format!("producer {id} seq {seq}: checksum mismatch"));
    }
    scratch.resize(want, 0);
    fill_msg(k, scratch);
    if msg != &scratch[..] {
        return Err(format!("producer {id} seq {seq}: contents differ"));
    }
    Ok((id, seq))
}

// ---------------------------------------------------------------------------------------
// Peers: child processes with a line-oriented stdout back to the parent

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// The peer roles, dispatched from whichever test re-executed the binary.
fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "producer" => producer_peer(),
        "consumer" => consumer_peer(),
        "victim-producer" => victim_producer_peer(),
        "victim-consumer" => victim_consumer_peer(),
        "fd-consumer" => fd_consumer_peer(),
        "named-producer" => named_producer_peer(),
        "ops" => ops_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

/// Push COUNT messages of producer ID (every third written in place through a claim).
fn producer_peer() -> Result<(), String> {
    let _dog = Watchdog::new("producer peer", Duration::from_secs(150));
    let (name, id, count, max) = (
        env_str("QUEUE"),
        env_num("ID") as u32,
        env_num("COUNT"),
        env_num("MAX_LEN"),
    );
    let mut p = Producer::open(&name).map_err(|e| format!("open producer: {e}"))?;
    let mut buf = Vec::new();
    for seq in 0..count {
        make_msg(id, seq, max as usize, &mut buf);
        if seq % 3 == 0 {
            let mut g = p.claim(buf.len()).map_err(|e| format!("claim {seq}: {e}"))?;
            g.copy_from_slice(&buf);
            g.commit();
        } else {
            p.push(&buf).map_err(|e| format!("push {seq}: {e}"))?;
        }
    }
    Ok(())
}

/// Pop until `Closed`, checking every message and each producer's order; report one
/// bitmap of sequence numbers per producer and the `Lost` errors seen.
fn consumer_peer() -> Result<(), String> {
    let _dog = Watchdog::new("consumer peer", Duration::from_secs(150));
    let (name, max) = (env_str("QUEUE"), env_num("MAX_LEN") as usize);
    let (ids, bits) = (env_num("IDS") as usize, env_num("BITS") as usize);
    let mut c = Consumer::open(&name).map_err(|e| format!("open consumer: {e}"))?;
    let mut seen = vec![vec![0u64; bits.div_ceil(64)]; ids];
    let mut last: Vec<Option<u64>> = vec![None; ids];
    let (mut lost, mut lost_at) = (0u64, 0u128);
    let (mut buf, mut scratch) = (Vec::new(), Vec::new());
    loop {
        match c.pop_into(&mut buf) {
            Ok(_) => {
                let (id, seq) = check(&buf, max, &mut scratch)?;
                let id = id as usize;
                if id >= ids || seq as usize >= bits {
                    return Err(format!("unexpected producer {id} seq {seq}"));
                }
                if let Some(l) = last[id].filter(|&l| seq <= l) {
                    return Err(format!("producer {id}: seq {seq} after {l} (duplicate or reordered)"));
                }
                last[id] = Some(seq);
                seen[id][seq as usize / 64] |= 1 << (seq % 64);
            }
            Err(PopError::Lost) => {
                lost += 1;
                lost_at = now_nanos();
            }
            Err(PopError::Closed) => break,
            Err(e) => return Err(format!("pop: {e:?}")),
        }
    }
    drop(c);
    say(&format!("@@LOST {lost} {lost_at}"));
    for (id, words) in seen.iter().enumerate() {
        let hex: String = words.iter().map(|w| format!("{w:016x}")).collect();
        say(&format!("@@SEEN {id} {hex}"));
    }
    Ok(())
}

/// Push COUNT messages of producer ID, then claim the next one and park holding the
/// claim until killed.
fn victim_producer_peer() -> Result<(), String> {
    let _dog = Watchdog::new("victim producer", Duration::from_secs(60));
    let (name, id, count, max) = (
        env_str("QUEUE"),
        env_num("ID") as u32,
        env_num("COUNT"),
        env_num("MAX_LEN"),
    );
    let mut p = Producer::open(&name).map_err(|e| format!("open producer: {e}"))?;
    let mut buf = Vec::new();
    for seq in 0..count {
        make_msg(id, seq, max as usize, &mut buf);
        p.push(&buf).map_err(|e| format!("push {seq}: {e}"))?;
    }
    make_msg(id, count, max as usize, &mut buf);
    let mut g = p.claim(buf.len()).map_err(|e| format!("claim: {e}"))?;
    g[..8].copy_from_slice(&buf[..8]); // half written
    say("@@PARKED");
    std::thread::sleep(Duration::from_secs(50));
    Err("not killed".into())
}

/// Read one message in place and park holding it until killed.
fn victim_consumer_peer() -> Result<(), String> {
    let _dog = Watchdog::new("victim consumer", Duration::from_secs(60));
    let (name, max) = (env_str("QUEUE"), env_num("MAX_LEN") as usize);
    let mut c = Consumer::open(&name).map_err(|e| format!("open consumer: {e}"))?;
    let g = c.read().map_err(|e| format!("read: {e}"))?;
    let (id, seq) = check(&g, max, &mut Vec::new())?;
    say(&format!("@@PARKED {id} {seq}"));
    std::thread::sleep(Duration::from_secs(50));
    Err("not killed".into())
}

/// Merged consumer reports.
struct Tally {
    seen: Vec<Vec<u64>>,
    lost: u64,
    lost_at: u128,
}

fn tally(reports: &[Vec<String>], ids: usize, bits: usize) -> Tally {
    let mut t = Tally {
        seen: vec![vec![0u64; bits.div_ceil(64)]; ids],
        lost: 0,
        lost_at: 0,
    };
    for (c, lines) in reports.iter().enumerate() {
        let mut sections = 0;
        for line in lines {
            if let Some((_, rest)) = line.split_once("@@LOST ") {
                let (n, at) = rest.split_once(' ').unwrap();
                t.lost += n.parse::<u64>().unwrap();
                t.lost_at = t.lost_at.max(at.parse().unwrap());
                sections += 1;
            } else if let Some((_, rest)) = line.split_once("@@SEEN ") {
                let (id, hex) = rest.split_once(' ').unwrap();
                let id: usize = id.parse().unwrap();
                assert_eq!(hex.len(), t.seen[id].len() * 16);
                for (i, w) in t.seen[id].iter_mut().enumerate() {
                    let mine = u64::from_str_radix(&hex[i * 16..i * 16 + 16], 16).unwrap();
                    let dup = *w & mine;
                    assert!(
                        dup == 0,
                        "producer {id} seq {} delivered to two consumers",
                        i * 64 + dup.trailing_zeros() as usize
                    );
                    *w |= mine;
                }
                sections += 1;
            }
        }
        assert_eq!(sections, 1 + ids, "consumer {c}: incomplete report");
    }
    t
}

/// Assert that producer `id` had exactly its sequence numbers `0..expected[id]` delivered.
fn assert_delivered(t: &Tally, expected: &[u64]) {
    for (id, &n) in expected.iter().enumerate() {
        let bits = t.seen[id].len() * 64;
        for seq in 0..bits as u64 {
            let got = t.seen[id][seq as usize / 64] >> (seq % 64) & 1 == 1;
            assert_eq!(
                got,
                seq < n,
                "producer {id} seq {seq}: delivered {got}, expected {}",
                seq < n
            );
        }
    }
}

fn print_stats(what: &str, s: &QueueStats, took: Duration) {
    eprintln!(
        "{what}: {took:?}; pushed {} popped {} lost {} full_waits {} empty_waits {}",
        s.pushed, s.popped, s.lost, s.full_waits, s.empty_waits
    );
}

// ---------------------------------------------------------------------------------------
// 1. Three producer processes, three consumer processes

const STRESS_PER_PRODUCER: u64 = 300_000;

/// The environment of a peer of the 3-producer tests: queue name, message size limit,
/// producer count, messages per producer, and `extra`.
fn peer_env(
    name: &str,
    max_len: usize,
    per_producer: u64,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("QUEUE", name.to_string()),
        ("MAX_LEN", max_len.to_string()),
        ("IDS", "3".to_string()),
        ("BITS", per_producer.to_string()),
        ("COUNT", per_producer.to_string()),
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn three_producers_three_consumers_exactly_once_in_order() {
    const TEST: &str = "three_producers_three_consumers_exactly_once_in_order";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(170));
    let name = unique_name("mpmc-3x3");
    // The parent is the creator and a (silent) producer party: it closes the queue.
    let q = Producer::create(&name, 256, 256).unwrap();
    let env = |extra: &[(&'static str, String)]| peer_env(&name, 256, STRESS_PER_PRODUCER, extra);
    let start = Instant::now();
    let consumers: Vec<Peer> = (0..3).map(|_| Peer::spawn(TEST, "consumer", &env(&[]))).collect();
    let producers: Vec<Peer> = (0..3)
        .map(|id| Peer::spawn(TEST, "producer", &env(&[("ID", id.to_string())])))
        .collect();
    for p in producers {
        p.finish(Duration::from_secs(150));
    }
    q.close();
    let reports: Vec<Vec<String>> = consumers
        .into_iter()
        .map(|c| c.finish(Duration::from_secs(30)))
        .collect();
    let s = q.stats();
    print_stats("3x3 stream", &s, start.elapsed());
    let t = tally(&reports, 3, STRESS_PER_PRODUCER as usize);
    assert_delivered(&t, &[STRESS_PER_PRODUCER; 3]);
    assert_eq!(t.lost, 0);
    assert_eq!(
        (s.pushed, s.popped, s.lost),
        (3 * STRESS_PER_PRODUCER, 3 * STRESS_PER_PRODUCER, 0)
    );
}

// ---------------------------------------------------------------------------------------
// 2. Attach by fd and by name; close, timeouts and limits across processes

const FD_MESSAGES: u64 = 20_000;

/// Consume FD_MESSAGES in order from an inherited descriptor, then wait in `pop` until
/// the parent closes the queue.
fn fd_consumer_peer() -> Result<(), String> {
    let _dog = Watchdog::new("fd consumer", Duration::from_secs(60));
    let mut c = Consumer::from_fd(fd_from_env("QUEUE_FD")).map_err(|e| format!("from_fd: {e}"))?;
    let parties = c.stats().parties;
    if parties != 2 {
        return Err(format!("{parties} parties attached, expected 2"));
    }
    let (mut buf, mut scratch) = (Vec::new(), Vec::new());
    for want in 0..FD_MESSAGES {
        c.pop_into(&mut buf).map_err(|e| format!("pop {want}: {e}"))?;
        let (id, seq) = check(&buf, 64, &mut scratch)?;
        if (id, seq) != (0, want) {
            return Err(format!("got producer {id} seq {seq}, expected seq {want}"));
        }
    }
    say("@@DRAINED");
    // Blocked here (most likely) when the parent closes the queue.
    match c.pop() {
        Err(PopError::Closed) => {}
        other => return Err(format!("pop after close: {other:?}")),
    }
    for r in [c.try_pop(), c.pop_timeout(Duration::from_millis(10))] {
        if r != Err(PopError::Closed) {
            return Err(format!("second pop after close: {r:?}"));
        }
    }
    if c.stats().lost != 0 {
        return Err("messages lost".into());
    }
    Ok(())
}

/// An anonymous queue whose consumer end is handed to a child by descriptor
/// inheritance; full/timeout/too-large on the producer side; close wakes the child's
/// blocked `pop`.
#[test]
fn anonymous_queue_handed_to_child_by_fd() {
    const TEST: &str = "anonymous_queue_handed_to_child_by_fd";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(60));
    let start = Instant::now();
    let (mut tx, rx) = mpmc::channel(8, 64).unwrap();
    let too_large = PushError::MessageTooLarge { len: 65, max: 64 };
    assert_eq!(tx.push(&[0; 65]), Err(too_large));
    assert_eq!(tx.try_claim(65).err(), Some(too_large));
    // Fill the queue before the consumer exists.
    let mut buf = Vec::new();
    for seq in 0..8 {
        make_msg(0, seq, 64, &mut buf);
        tx.push(&buf).unwrap();
    }
    assert_eq!(tx.try_push(b"x"), Err(PushError::Full));
    assert_eq!(tx.try_claim(1).err(), Some(PushError::Full));
    assert_eq!(
        tx.push_timeout(b"x", Duration::from_millis(20)),
        Err(PushError::Timeout)
    );
    let fd = rx.into_fd();
    let child_fd = inheritable(&fd);
    let mut child = Peer::spawn(TEST, "fd-consumer", &[("QUEUE_FD", fd_string(&child_fd))]);
    // The child holds the open file description now; ours can go.
    drop(child_fd);
    drop(fd);
    for seq in 8..FD_MESSAGES {
        make_msg(0, seq, 64, &mut buf);
        tx.push(&buf).unwrap();
    }
    child.expect("@@DRAINED", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(100)); // let it block in pop (not required)
    tx.close();
    assert!(tx.is_closed());
    assert_eq!(tx.push(b"late"), Err(PushError::Closed));
    assert_eq!(tx.try_push(b"late"), Err(PushError::Closed));
    assert_eq!(tx.claim(4).err(), Some(PushError::Closed));
    child.finish(Duration::from_secs(30));
    let s = tx.stats();
    print_stats("fd hand-off", &s, start.elapsed());
    assert_eq!((s.pushed, s.popped, s.lost), (FD_MESSAGES, FD_MESSAGES, 0));
}

const NAMED_MESSAGES: u64 = 2_000;

/// Producer by name: too large, full, timeout; a stream; then blocked on a full queue
/// until the parent closes it.
fn named_producer_peer() -> Result<(), String> {
    let _dog = Watchdog::new("named producer", Duration::from_secs(60));
    let mut p = Producer::open(&env_str("QUEUE")).map_err(|e| format!("open: {e}"))?;
    let expect = |what: &str, got: Result<(), PushError>, want: PushError| {
        if got == Err(want) {
            Ok(())
        } else {
            Err(format!("{what}: {got:?}, expected {want:?}"))
        }
    };
    expect(
        "too large",
        p.push(&[0; 33]),
        PushError::MessageTooLarge { len: 33, max: 32 },
    )?;
    let mut buf = Vec::new();
    let mut push = |p: &mut Producer, seq: u64| {
        make_msg(1, seq, 32, &mut buf);
        p.push(&buf).map_err(|e| format!("push {seq}: {e}"))
    };
    for seq in 0..4 {
        push(&mut p, seq)?;
    }
    expect("try_push on full", p.try_push(b"x"), PushError::Full)?;
    expect(
        "push_timeout on full",
        p.push_timeout(b"x", Duration::from_millis(20)),
        PushError::Timeout,
    )?;
    say("@@FULL");
    for seq in 4..NAMED_MESSAGES + 4 {
        push(&mut p, seq)?;
    }
    say("@@FILLED"); // the last 4 fill the queue; the parent does not pop now
    expect("push blocked until close", p.push(b"late"), PushError::Closed)?;
    expect("try_push after close", p.try_push(b"late"), PushError::Closed)?;
    if !p.is_closed() {
        return Err("is_closed false".into());
    }
    Ok(())
}

/// A named queue created by a consumer, a producer child attached by name: timeouts,
/// full, too large, a blocked push woken by close, drain then `Closed`.
#[test]
fn named_queue_close_timeouts_and_limits_across_processes() {
    const TEST: &str = "named_queue_close_timeouts_and_limits_across_processes";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(60));
    let name = unique_name("mpmc-named");
    let mut rx = Consumer::create_with(&name, 4, 32, &mpmc::QueueOptions::new()).unwrap();
    assert!(matches!(
        Consumer::create_with(&name, 4, 32, &mpmc::QueueOptions::new()),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        Producer::open(&unique_name("mpmc-absent")),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    assert_eq!(rx.pop_timeout(Duration::from_millis(30)), Err(PopError::Timeout));
    let mut child = Peer::spawn(TEST, "named-producer", &[("QUEUE", name.clone())]);
    child.expect("@@FULL", Duration::from_secs(20));
    let (mut buf, mut scratch) = (Vec::new(), Vec::new());
    let mut pop_seq = |rx: &mut Consumer, want: u64| {
        rx.pop_into(&mut buf).unwrap();
        assert_eq!(check(&buf, 32, &mut scratch).unwrap(), (1, want));
    };
    for want in 0..NAMED_MESSAGES {
        pop_seq(&mut rx, want);
    }
    child.expect("@@FILLED", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(100)); // let it block in push (not required)
    rx.close();
    for want in NAMED_MESSAGES..NAMED_MESSAGES + 4 {
        pop_seq(&mut rx, want);
    }
    assert_eq!(rx.pop(), Err(PopError::Closed));
    assert_eq!(rx.try_pop(), Err(PopError::Closed));
    child.finish(Duration::from_secs(20));
    let s = rx.stats();
    assert_eq!(
        (s.pushed, s.popped, s.lost),
        (NAMED_MESSAGES + 4, NAMED_MESSAGES + 4, 0)
    );
    assert_eq!(s.parties, 1, "the child detached");
}

// ---------------------------------------------------------------------------------------
// 3. SIGKILL in the middle of a claim or a read

const KILL_PER_PRODUCER: u64 = 20_000;

/// A producer SIGKILLed between `claim` and `commit`, while two other producers and two
/// consumers keep going: one consumer gets `Lost` once; all else is delivered once.
#[test]
fn producer_killed_mid_claim_costs_one_lost_message() {
    const TEST: &str = "producer_killed_mid_claim_costs_one_lost_message";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(90));
    const BEFORE: u64 = 50; // the victim's messages before its claim
    let name = unique_name("mpmc-pkill");
    let q = Producer::create(&name, 64, 64).unwrap();
    let env = |extra: &[(&'static str, String)]| peer_env(&name, 64, KILL_PER_PRODUCER, extra);
    let start = Instant::now();
    let consumers: Vec<Peer> = (0..2).map(|_| Peer::spawn(TEST, "consumer", &env(&[]))).collect();
    let mut victim = Peer::spawn(
        TEST,
        "victim-producer",
        &env(&[("ID", "2".into()), ("COUNT", BEFORE.to_string())]),
    );
    victim.expect("@@PARKED", Duration::from_secs(20));
    let producers: Vec<Peer> = (0..2)
        .map(|id| Peer::spawn(TEST, "producer", &env(&[("ID", id.to_string())])))
        .collect();
    std::thread::sleep(Duration::from_millis(200)); // traffic piles up behind the claim
    victim.kill9();
    let killed_at = now_nanos();
    for p in producers {
        p.finish(Duration::from_secs(60));
    }
    q.close();
    let reports: Vec<Vec<String>> = consumers
        .into_iter()
        .map(|c| c.finish(Duration::from_secs(30)))
        .collect();
    let s = q.stats();
    print_stats("producer kill", &s, start.elapsed());
    let t = tally(&reports, 3, KILL_PER_PRODUCER as usize);
    eprintln!(
        "producer kill: Lost reported {:?} after the SIGKILL",
        Duration::from_nanos(t.lost_at.saturating_sub(killed_at) as u64)
    );
    assert_delivered(&t, &[KILL_PER_PRODUCER, KILL_PER_PRODUCER, BEFORE]);
    assert_eq!(t.lost, 1, "Lost reported once, to one consumer");
    assert_eq!(s.lost, 1);
    let delivered = 2 * KILL_PER_PRODUCER + BEFORE;
    assert_eq!(s.pushed, delivered + s.lost, "claimed = delivered + lost");
    assert_eq!(s.popped, s.pushed);
}

/// A consumer SIGKILLed while it reads a message in place, with producers and other
/// consumers running: a producer reclaims the slot a lap later; that message (only) is
/// lost.
#[test]
fn consumer_killed_mid_read_costs_one_lost_message() {
    const TEST: &str = "consumer_killed_mid_read_costs_one_lost_message";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(90));
    let name = unique_name("mpmc-ckill");
    let mut q = Producer::create(&name, 64, 64).unwrap();
    let env = |extra: &[(&'static str, String)]| peer_env(&name, 64, KILL_PER_PRODUCER, extra);
    let start = Instant::now();
    // The message the victim will hold: producer 2, seq 0.
    let mut buf = Vec::new();
    make_msg(2, 0, 64, &mut buf);
    q.push(&buf).unwrap();
    let mut victim = Peer::spawn(TEST, "victim-consumer", &env(&[]));
    assert_eq!(victim.expect("@@PARKED ", Duration::from_secs(20)), "2 0");
    let consumers: Vec<Peer> = (0..2).map(|_| Peer::spawn(TEST, "consumer", &env(&[]))).collect();
    let producers: Vec<Peer> = (0..2)
        .map(|id| Peer::spawn(TEST, "producer", &env(&[("ID", id.to_string())])))
        .collect();
    std::thread::sleep(Duration::from_millis(200)); // producers come round to the held slot
    victim.kill9();
    for p in producers {
        p.finish(Duration::from_secs(60));
    }
    q.close();
    let reports: Vec<Vec<String>> = consumers
        .into_iter()
        .map(|c| c.finish(Duration::from_secs(30)))
        .collect();
    let s = q.stats();
    print_stats("consumer kill", &s, start.elapsed());
    let t = tally(&reports, 3, KILL_PER_PRODUCER as usize);
    assert_delivered(&t, &[KILL_PER_PRODUCER, KILL_PER_PRODUCER, 0]);
    assert_eq!(t.lost, 0, "a consumer's death is not reported to consumers");
    assert_eq!(s.lost, 1);
    assert_eq!(s.pushed, 2 * KILL_PER_PRODUCER + 1);
    assert_eq!(s.pushed, 2 * KILL_PER_PRODUCER + s.lost, "claimed = delivered + lost");
    assert_eq!(s.popped, s.pushed);
}

/// A consumer killed mid-read when the producers stop exactly one lap after its slot:
/// no producer comes to reclaim the slot, so the consumers must: they see `Closed` after
/// `close()` (they used to wait forever on the dead reader) and the lost message is
/// counted (pushed = delivered + lost).
#[test]
fn consumer_killed_mid_read_then_close_exactly_one_lap_later() {
    const TEST: &str = "consumer_killed_mid_read_then_close_exactly_one_lap_later";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(30));
    let name = unique_name("mpmc-lap");
    let mut q = Producer::create(&name, 4, 32).unwrap();
    let mut buf = Vec::new();
    make_msg(0, 0, 32, &mut buf);
    q.push(&buf).unwrap();
    let mut victim = Peer::spawn(
        TEST,
        "victim-consumer",
        &[("QUEUE", name.clone()), ("MAX_LEN", "32".into())],
    );
    assert_eq!(victim.expect("@@PARKED ", Duration::from_secs(20)), "0 0");
    victim.kill9();
    let mut rx = Consumer::open(&name).unwrap();
    // Three more: the enqueue position is now the held slot's, one lap on.
    for seq in 1..4 {
        make_msg(0, seq, 32, &mut buf);
        q.push(&buf).unwrap();
    }
    let mut scratch = Vec::new();
    for want in 1..4 {
        let m = rx.pop().unwrap();
        assert_eq!(check(&m, 32, &mut scratch).unwrap(), (0, want));
    }
    q.close();
    let start = Instant::now();
    assert_eq!(rx.pop_timeout(Duration::from_secs(5)), Err(PopError::Closed));
    eprintln!("Closed after {:?}", start.elapsed());
    assert_eq!(rx.pop(), Err(PopError::Closed));
    assert_eq!(q.stats().lost, 1);
}

// ---------------------------------------------------------------------------------------
// 4. Garbage in slot words, written through the /dev/shm file

/// File offsets in a queue of 8 slots of 64 bytes (stride 128): segment header (128),
/// control block (5 * 128, the party table 64 * 32, the intent lines 64 * 128), then the slots.
const ENQ_POS: u64 = 128;
const DEQ_POS: u64 = 128 + 128;
const SLOTS_AT: u64 = 128 + 2688 + 64 * 128;
const STRIDE: u64 = 128;

fn seq_word(i: u64) -> u64 {
    SLOTS_AT + i * STRIDE
}

fn len_word(i: u64) -> u64 {
    SLOTS_AT + i * STRIDE + 8
}

/// Operations on a corrupted queue, by name, in a child: every result is reported;
/// none may panic or hang.
fn ops_peer() -> Result<(), String> {
    let _dog = Watchdog::new("ops on a corrupted queue", Duration::from_secs(30));
    let name = env_str("QUEUE");
    let mut c = Consumer::open(&name).map_err(|e| format!("open consumer: {e}"))?;
    let mut p = Producer::open(&name).map_err(|e| format!("open producer: {e}"))?;
    let t = Duration::from_millis(150);
    // The first waits may need a liveness tick (50 ms) to reclaim a slot: a long
    // timeout, so that the reported results do not depend on the machine's load.
    let long = Duration::from_secs(2);
    let pop = |r: Result<Vec<u8>, PopError>| match r {
        Ok(v) => format!("Ok({})", v.len()),
        Err(e) => format!("{e:?}"),
    };
    let push = |r: Result<(), PushError>| match r {
        Ok(()) => "Ok".to_string(),
        Err(e) => format!("{e:?}"),
    };
    let mut out = vec![pop(c.pop_timeout(long)), pop(c.pop_timeout(long)), pop(c.try_pop())];
    out.push(push(p.push_timeout(b"after", long)));
    out.push(push(p.try_push(b"after2")));
    out.push(match p.try_claim(4) {
        Ok(mut g) => {
            g.copy_from_slice(b"abcd");
            g.commit();
            "Ok".into()
        }
        Err(e) => format!("{e:?}"),
    });
    for _ in 0..12 {
        let r = c.pop_timeout(t);
        let stop = matches!(r, Err(PopError::Timeout | PopError::Empty | PopError::Closed));
        out.push(pop(r));
        if stop {
            break;
        }
    }
    out.push(match c.try_read() {
        Ok(g) => format!("Ok({})", g.len()),
        Err(e) => format!("{e:?}"),
    });
    c.close();
    out.push(push(p.try_push(b"closed")));
    out.push(pop(c.pop_timeout(t)));
    let s = c.stats();
    say(&format!(
        "@@OPS {} | lost {} pushed {} popped {}",
        out.join(", "),
        s.lost,
        s.pushed,
        s.popped
    ));
    Ok(())
}

/// One corruption case: words to write (file offset, value) after two messages
/// (positions 0 and 1, slots 0 and 1) were pushed, and what the first operations must
/// give (a prefix of the reported list), if deterministic.
struct Case {
    what: &'static str,
    pokes: Vec<(u64, u64)>,
    expect: &'static [&'static str],
}

#[test]
fn corrupted_slot_words_give_errors_not_panics_or_hangs() {
    const TEST: &str = "corrupted_slot_words_give_errors_not_panics_or_hangs";
    if let Some(role) = role() {
        run_peer(&role);
    }
    let _dog = Watchdog::new(TEST, Duration::from_secs(60));
    let start = Instant::now();
    let stranger = Owner {
        idx: 200,
        generation: 5,
    };
    let ghost = Owner { idx: 9, generation: 77 };
    let last_lap = slot::LAP_MASK; // the lap before lap 0
    let mut cases = vec![
        Case {
            what: "garbage sequence word at the head",
            pokes: vec![(seq_word(0), 0xdead_beef_dead_beef)],
            expect: &["Corrupted", "Corrupted", "Corrupted", "Ok"],
        },
        Case {
            what: "length word above the slot size",
            pokes: vec![(len_word(0), 1000)],
            expect: &["Corrupted", "Ok(", "Empty", "Ok"],
        },
        Case {
            what: "length word all ones",
            pokes: vec![(len_word(0), u64::MAX)],
            expect: &["Corrupted", "Ok("],
        },
        Case {
            what: "length word: aborted flag",
            pokes: vec![(len_word(0), 1 << 63)],
            expect: &["Ok(", "Timeout"],
        },
        Case {
            what: "LOST (named WRITING before intents) by an owner outside the party table",
            pokes: vec![(seq_word(0), slot::encode(0, stranger, slot::LOST))],
            expect: &["Lost", "Ok(", "Empty"],
        },
        Case {
            what: "LOST (named WRITING before intents) by a party that never attached",
            pokes: vec![(seq_word(1), slot::encode(0, ghost, slot::LOST))],
            expect: &["Ok(", "Lost", "Empty"],
        },
        Case {
            what: "READING at the head by a party that never attached",
            pokes: vec![(seq_word(0), slot::encode(0, ghost, slot::READING))],
            expect: &["Ok(", "Timeout"],
        },
        Case {
            what: "head already freed for the next lap",
            pokes: vec![(seq_word(0), slot::encode(1, Owner::NONE, slot::EMPTY))],
            expect: &["Ok(", "Timeout"],
        },
        Case {
            what: "FULL at the tail (before any producer claimed it)",
            pokes: vec![(seq_word(2), slot::encode(0, ghost, slot::FULL)), (len_word(2), 3)],
            // The consumers take it first and move past it; the producers then find the
            // slot a lap ahead of their position and move it on (issue 16: a position
            // behind its slot is helped along, as after a producer that died between
            // its claim and the position's advance).
            expect: &["Ok(", "Ok(", "Ok(3)", "Ok"],
        },
        Case {
            what: "tail still FULL from the previous lap",
            pokes: vec![(seq_word(2), slot::encode(last_lap, ghost, slot::FULL))],
            // Issue 16: the waiting pop finds the slot at the dequeue position a lap
            // back, no longer a Timeout for ever. With claims on the positions (issue
            // 18) that is a reader's claim of the previous lap (FULL, the dequeue
            // position past it) whose reader is no live party: the slot is freed,
            // counted lost, and the push that follows finds it free.
            expect: &["Ok(", "Ok(", "Empty", "Ok"],
        },
        Case {
            what: "tail still READING from the previous lap by a dead party",
            pokes: vec![(seq_word(2), slot::encode(last_lap, ghost, slot::READING))],
            expect: &["Ok(", "Ok(", "Empty", "Ok"],
        },
        Case {
            what: "every sequence word a lap in the future",
            pokes: (0..8)
                .map(|i| (seq_word(i), slot::encode(5, Owner::NONE, slot::EMPTY)))
                .collect(),
            expect: &["Corrupted", "Corrupted", "Corrupted", "Corrupted", "Corrupted"],
        },
        Case {
            what: "enqueue position at u64::MAX",
            pokes: vec![
                (ENQ_POS, u64::MAX),
                (seq_word(7), slot::encode(last_lap, Owner::NONE, slot::EMPTY)),
            ],
            expect: &["Ok(", "Ok(", "Empty", "Ok"],
        },
        Case {
            what: "dequeue position at u64::MAX",
            pokes: vec![
                (DEQ_POS, u64::MAX),
                (seq_word(7), slot::encode(last_lap, Owner::NONE, slot::FULL)),
                (len_word(7), 1),
            ],
            expect: &["Ok(1)"],
        },
    ];
    for seed in 1..=6u64 {
        // Random words everywhere in the slots (and in the positions for half the seeds).
        let mut pokes: Vec<(u64, u64)> = (0..8)
            .flat_map(|i| {
                let (s, l) = (mix(seed * 100 + i), mix(seed * 100 + i + 50));
                // Keep some words plausible: a small lap, any owner and state.
                let s = if seed % 2 == 0 { s & 0x3_ffff_ffff } else { s };
                [(seq_word(i), s), (len_word(i), l % 128)]
            })
            .collect();
        if seed > 3 {
            pokes.push((ENQ_POS, mix(seed) % 64));
            pokes.push((DEQ_POS, mix(seed + 1) % 64));
        }
        cases.push(Case {
            what: "random words",
            pokes,
            expect: &[],
        });
    }
    // Set every case up, then run all the children at once.
    let mut running = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let name = unique_name("mpmc-corrupt");
        let mut q = Producer::create(&name, 8, 64).unwrap();
        q.push(b"m0").unwrap();
        q.push(b"m1").unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/dev/shm/{name}"))
            .unwrap();
        for &(off, v) in &case.pokes {
            f.write_all_at(&v.to_le_bytes(), off).unwrap();
        }
        let peer = Peer::spawn(TEST, "ops", &[("QUEUE", name)]);
        running.push((n, q, peer));
    }
    let mut failures = Vec::new();
    for (n, q, peer) in running {
        let case = &cases[n];
        let (st, lines) = peer.exit(Duration::from_secs(30));
        let line = lines.iter().find_map(|l| l.split_once("@@OPS ")).map(|(_, r)| r);
        let (true, Some(line)) = (st.success(), line) else {
            failures.push(format!("case {n} ({}): the peer failed: {st}", case.what));
            continue;
        };
        eprintln!("case {n} ({}): {line}", case.what);
        let got: Vec<&str> = line.split(" | ").next().unwrap().split(", ").collect();
        for (i, want) in case.expect.iter().enumerate() {
            if !got[i].starts_with(want) {
                failures.push(format!(
                    "case {n} ({}): op {i} gave {}, expected {want}",
                    case.what, got[i]
                ));
            }
        }
        drop(q);
    }
    eprintln!("{} corruption cases in {:?}", cases.len(), start.elapsed());
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Impossible state X1 (ring/mpmc module docs): a dequeue position overwritten with a
/// value far from the enqueue position. Found by `hostile_mpmc_long`: the consumers
/// reported an out-of-step slot on every pop, but a producer on the full queue waited
/// for ever (its slot held the previous lap's message, which no consumer would reach;
/// P2 needs the dequeue position past the previous lap, and a huge value reads as far
/// behind). A waiting push now reports `Corrupted` on its liveness tick.
#[test]
fn positions_far_apart_are_corrupted_not_a_wedge() {
    let _dog = Watchdog::new("positions far apart", Duration::from_secs(30));
    for deq in [0xc2d9_7041_b686_e7c3u64, 1 << 62, 3 * 16 + 100] {
        let name = unique_name("mpmc-apart");
        let mut p = Producer::create(&name, 16, 48).unwrap();
        let _c = Consumer::open(&name).unwrap();
        let mut n = 0;
        while p.try_push(b"fill").is_ok() {
            n += 1;
        }
        assert_eq!(n, 16, "the queue holds its 16 slots");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/dev/shm/{name}"))
            .unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(DEQ_POS)).unwrap();
        std::io::Write::write_all(&mut f, &deq.to_le_bytes()).unwrap();
        let r = p.push_timeout(b"more", Duration::from_secs(2));
        assert!(
            matches!(r, Err(PushError::Corrupted(_))),
            "dequeue position {deq:#x}: {r:?}"
        );
    }
}
