//! Cross-process tests of the broadcast ring: the test binary re-executes itself as the
//! publisher or the subscribers (see `common::spawn_peer`).

use crate::common;
use crate::hostile;

use common::*;
use shmring::WaitStrategy;
use shmring::broadcast::{self, Options, Params, Policy, Publisher, RecvError, SendError, Start, Subscriber};
use std::time::{Duration, Instant};

const SEED: u64 = 0xb0ad_ca57;
/// Messages of the lossless stream (random lengths in 0..=STREAM_MAX).
const STREAM_MESSAGES: u64 = 1_000_000;
const STREAM_MAX: usize = 192;
const SUBSCRIBERS: usize = 4;

/// A short adaptive wait: five processes share two CPUs here, so a long spin starves
/// the peer it waits for.
pub(crate) fn short_wait() -> WaitStrategy {
    WaitStrategy::Adaptive {
        spin: Duration::from_micros(6),
        yields: 4,
    }
}

pub(crate) fn sub_opts() -> Options {
    Options::new().wait(short_wait()).start(Start::Oldest)
}

pub(crate) fn exit_with(r: Result<(), String>) -> ! {
    match r {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("peer failed: {e}");
            std::process::exit(1)
        }
    }
}

/// Start `n` processes re-running `test` in role "sub" on ring `name`, and wait
/// (bounded) until all of them are attached.
pub(crate) fn spawn_subscribers(test: &str, name: &str, n: usize) -> Vec<std::process::Child> {
    let children = (0..n)
        .map(|_| spawn_peer(test, "sub", &[("RING", name.to_string())]).spawn().unwrap())
        .collect();
    await_subscribers(name, n);
    children
}

/// Wait (bounded) until `n` subscribers are attached to `name`.
pub(crate) fn await_subscribers(name: &str, n: usize) {
    let start = Instant::now();
    while broadcast::inspect(name).unwrap().subscribers.len() < n {
        assert!(start.elapsed() < Duration::from_secs(60), "subscribers did not attach");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A lossless stream's subscriber: every message in order, intact, then `Disconnected`.
fn lossless_subscriber(name: &str) -> Result<(), String> {
    let mut rx = Subscriber::open_with(name, &sub_opts()).map_err(|e| format!("open: {e}"))?;
    let mut scratch = Vec::new();
    let mut seq = 0;
    while seq < STREAM_MESSAGES {
        // In place and copied, alternately in runs.
        if (seq / 1000) % 2 == 0 {
            let r = rx.read(|m| check_msg(SEED, seq, STREAM_MAX, m, &mut scratch));
            r.map_err(|e| format!("read {seq}: {e}"))??;
            seq += 1;
        } else {
            let n = rx
                .try_drain(|m| {
                    let ok = check_msg(SEED, seq, STREAM_MAX, m, &mut scratch);
                    if let Err(e) = ok {
                        panic!("{e}");
                    }
                    seq += 1;
                    seq < STREAM_MESSAGES
                })
                .map_err(|e| format!("drain at {seq}: {e}"))?;
            if n == 0 {
                std::thread::yield_now();
            }
        }
    }
    match rx.recv_timeout(Duration::from_secs(30)) {
        Err(RecvError::Disconnected) => Ok(()),
        other => Err(format!("after the stream: {other:?}, expected Disconnected")),
    }
}

#[test]
fn lossless_four_subscriber_processes_get_every_message() {
    if let Some(role) = role() {
        assert_eq!(role, "sub");
        exit_with(lossless_subscriber(&std::env::var("RING").unwrap()));
    }
    let _dog = Watchdog::new("broadcast 1M-message stream", Duration::from_secs(300));
    let name = unique_name("bcast-stream");
    let params = Params {
        capacity: 1 << 17,
        subscribers: 64,
        policy: Policy::Lossless,
    };
    let mut tx = Publisher::create_with(&name, params, &Options::new().wait(short_wait())).unwrap();
    let mut children = spawn_subscribers(
        "lossless_four_subscriber_processes_get_every_message",
        &name,
        SUBSCRIBERS,
    );
    let mut buf = [0u8; STREAM_MAX];
    for seq in 0..STREAM_MESSAGES {
        let len = msg_len(SEED, seq, STREAM_MAX);
        if seq % 3 == 0 {
            let mut g = tx.claim(len).unwrap();
            fill_msg(seq, &mut g);
            g.commit_deferred();
        } else {
            fill_msg(seq, &mut buf[..len]);
            tx.send_deferred(&buf[..len]).unwrap();
        }
        if seq % 16 == 15 {
            tx.flush();
        }
    }
    drop(tx);
    for c in &mut children {
        let st = wait_child(c, Duration::from_secs(240));
        assert!(st.success(), "subscriber process failed: {st}");
    }
}

/// The length of message `seq` of the overwrite stream: 16..=512 bytes, so that each
/// carries its sequence number.
fn overwrite_len(seq: u64) -> usize {
    16 + msg_len(SEED, seq, 496)
}

/// Overwrite with a slow subscriber: every delivered message intact and in order,
/// `missed + delivered == published`.
fn slow_subscriber(name: &str, total: u64) -> Result<(), String> {
    let mut rx = Subscriber::open_with(name, &sub_opts()).map_err(|e| format!("open: {e}"))?;
    let (mut delivered, mut missed, mut next) = (0u64, 0u64, 0u64);
    let mut scratch = Vec::new();
    loop {
        let r = rx.read_timeout(Duration::from_secs(30), |m| {
            if m.len() < 16 {
                return Err(format!("short message of {} bytes", m.len()));
            }
            let seq = u64::from_le_bytes(m[..8].try_into().unwrap());
            scratch.resize(overwrite_len(seq), 0);
            fill_msg(seq, &mut scratch);
            if m != &scratch[..] {
                return Err(format!("message {seq} is not intact"));
            }
            Ok(seq)
        });
        match r {
            Ok(res) => {
                let seq = res?;
                if seq != next {
                    return Err(format!("message {seq} delivered, {next} expected"));
                }
                next = seq + 1;
                delivered += 1;
                if delivered % 64 == 0 {
                    std::thread::sleep(Duration::from_millis(1)); // the slow part
                }
            }
            Err(RecvError::Lagged { missed: k }) => {
                missed += k;
                next += k;
            }
            Err(RecvError::Disconnected) => break,
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
    eprintln!("slow subscriber: delivered {delivered}, missed {missed}");
    if missed + delivered != total {
        return Err(format!("missed {missed} + delivered {delivered} != published {total}"));
    }
    if missed == 0 {
        return Err("the slow subscriber was never lapped: the test tests nothing".into());
    }
    if rx.missed() != missed || rx.received() != delivered {
        return Err("the subscriber's counters disagree with its results".into());
    }
    Ok(())
}

#[test]
fn overwrite_slow_subscriber_counts_add_up() {
    const TOTAL: u64 = 200_000;
    if let Some(role) = role() {
        assert_eq!(role, "slow");
        exit_with(slow_subscriber(&std::env::var("RING").unwrap(), TOTAL));
    }
    let _dog = Watchdog::new("broadcast overwrite stream", Duration::from_secs(120));
    let name = unique_name("bcast-overwrite");
    let mut tx = Publisher::create(&name, 1 << 14, 8, Policy::Overwrite).unwrap();
    let mut child = spawn_peer(
        "overwrite_slow_subscriber_counts_add_up",
        "slow",
        &[("RING", name.clone())],
    )
    .spawn()
    .unwrap();
    await_subscribers(&name, 1);
    let mut buf = vec![0u8; 512];
    for seq in 0..TOTAL {
        let len = overwrite_len(seq);
        fill_msg(seq, &mut buf[..len]);
        tx.try_send(&buf[..len]).unwrap(); // never waits, never full
    }
    drop(tx);
    let st = wait_child(&mut child, Duration::from_secs(100));
    assert!(st.success(), "slow subscriber failed: {st}");
}

#[test]
fn sigkill_of_a_lossless_subscriber_unblocks_the_publisher() {
    if let Some(role) = role() {
        assert_eq!(role, "idle");
        let _rx = Subscriber::open(&std::env::var("RING").unwrap()).unwrap();
        std::thread::sleep(Duration::from_secs(600)); // never reads; killed
        std::process::exit(1);
    }
    let _dog = Watchdog::new("broadcast subscriber SIGKILL", Duration::from_secs(60));
    let name = unique_name("bcast-kill-sub");
    let mut tx = Publisher::create(&name, 4096, 8, Policy::Lossless).unwrap();
    let mut child = spawn_peer(
        "sigkill_of_a_lossless_subscriber_unblocks_the_publisher",
        "idle",
        &[("RING", name.clone())],
    )
    .spawn()
    .unwrap();
    await_subscribers(&name, 1);
    let mut n = 0;
    while tx.try_send(&[1; 100]).is_ok() {
        n += 1;
        assert!(n < 1000, "a 4096-byte ring cannot hold 1000 messages");
    }
    assert_eq!(
        tx.send_timeout(&[1; 100], Duration::from_millis(20)),
        Err(SendError::Timeout)
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The dead subscriber stops holding the publisher back (within the liveness bound;
    // the generous timeout only keeps a broken build from hanging).
    for _ in 0..1000 {
        tx.send_timeout(&[2; 100], Duration::from_secs(20)).unwrap();
    }
    let r = broadcast::inspect(&name).unwrap();
    assert!(
        r.subscribers.is_empty(),
        "the dead subscriber's slot is reclaimed: {r:?}"
    );
    let mut again = Subscriber::open(&name).unwrap();
    tx.send(b"after").unwrap();
    assert_eq!(again.recv().unwrap(), b"after");
}

#[test]
fn sigkill_of_the_publisher_ends_subscribers_with_disconnected() {
    if let Some(role) = role() {
        assert_eq!(role, "pub");
        let mut tx = Publisher::open(&std::env::var("RING").unwrap()).unwrap();
        for i in 0..100u64 {
            tx.send(&i.to_le_bytes()).unwrap();
        }
        std::thread::sleep(Duration::from_secs(600)); // killed
        std::process::exit(1);
    }
    let _dog = Watchdog::new("broadcast publisher SIGKILL", Duration::from_secs(60));
    let name = unique_name("bcast-kill-pub");
    let params = Params {
        capacity: 1 << 14,
        subscribers: 8,
        policy: Policy::Lossless,
    };
    broadcast::create_detached(&name, params, &Options::new()).unwrap();
    let mut rxs: Vec<Subscriber> = (0..2)
        .map(|_| Subscriber::open_with(&name, &Options::new().wait(WaitStrategy::Blocking)).unwrap())
        .collect();
    let mut child = spawn_peer(
        "sigkill_of_the_publisher_ends_subscribers_with_disconnected",
        "pub",
        &[("RING", name.clone())],
    )
    .spawn()
    .unwrap();
    let start = Instant::now();
    while broadcast::inspect(&name).unwrap().messages < 100 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the publisher did not publish"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for rx in &mut rxs {
        for i in 0..100u64 {
            assert_eq!(rx.recv().unwrap(), i.to_le_bytes(), "drains first");
        }
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    }
    // A new publisher continues the stream for the subscribers that stayed.
    let mut tx = Publisher::open(&name).unwrap();
    assert_eq!(tx.messages(), 100);
    tx.send(b"continued").unwrap();
    for rx in &mut rxs {
        assert_eq!(rx.recv().unwrap(), b"continued");
    }
    drop(tx);
    shmring::shm::unlink(&name).unwrap();
}

/// An honest peer under hostile writes: works for `secs` with bounded calls, accepting
/// the documented errors; exits 0 unless it panicked (or hangs: the parent's watchdog).
fn honest(role: &str, name: &str) -> Result<(), String> {
    let until = Instant::now() + Duration::from_millis(1500);
    let opts = Options::new().wait(short_wait());
    if role == "hpub" {
        let mut tx = match Publisher::open_with(name, &opts) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("hostile: publisher open refused: {e}");
                return Ok(());
            }
        };
        let mut errors = 0;
        while Instant::now() < until {
            match tx.send_timeout(&[0x5a; 40], Duration::from_millis(50)) {
                Ok(()) | Err(SendError::Timeout) => {}
                Err(SendError::Corrupted(_)) => errors += 1,
                Err(e) => return Err(format!("publisher: unexpected {e}")),
            }
        }
        eprintln!("hostile: publisher saw {errors} Corrupted");
        return Ok(());
    }
    let mut rx = match Subscriber::open_with(name, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hostile: subscriber open refused: {e}");
            return Ok(());
        }
    };
    let mut errors = 0;
    while Instant::now() < until {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(_)
            | Err(RecvError::Timeout)
            | Err(RecvError::Lagged { .. })
            | Err(RecvError::Disconnected)
            | Err(RecvError::Empty) => {}
            Err(RecvError::Corrupted(_)) => errors += 1,
            Err(e) => return Err(format!("subscriber: unexpected {e}")),
        }
    }
    eprintln!("hostile: subscriber saw {errors} Corrupted");
    Ok(())
}

fn hostile_run(policy: Policy) {
    let test = match policy {
        Policy::Lossless => "hostile_writes_lossless_give_errors_never_hangs",
        Policy::Overwrite => "hostile_writes_overwrite_give_errors_never_hangs",
    };
    if let Some(role) = role() {
        exit_with(honest(&role, &std::env::var("RING").unwrap()));
    }
    let _dog = Watchdog::new("broadcast hostile writes", Duration::from_secs(60));
    let seed = hostile::seed(test);
    let name = unique_name("bcast-hostile");
    let nsubs = 4usize;
    let params = Params {
        capacity: 4096,
        subscribers: nsubs,
        policy,
    };
    broadcast::create_detached(&name, params, &Options::new()).unwrap();
    let mut kids: Vec<(String, std::process::Child)> = ["hpub", "hsub", "hsub"]
        .iter()
        .map(|r| {
            let c = spawn_peer(test, r, &[("RING", name.clone())]).spawn().unwrap();
            (r.to_string(), c)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut s = hostile::Scribbler::open(&name, seed).unwrap();
    let area = shmring::shm::HEADER_SIZE;
    let region = area + 512 + 128 * nsubs;
    let mut targets = vec![
        hostile::Target::u64("tail", area, &[0, 4096, 8192]),
        hostile::Target::u64("intent", area + 8, &[0, 4096, u64::MAX]),
        hostile::Target::u64("oldest", area + 16, &[0, 8]),
        hostile::Target::u64("messages", area + 24, &[0]),
        hostile::Target::u64("last", area + 40, &[0, 24]),
        hostile::Target::u32("data_wait.waiting", area + 128, &[0, 1]),
        hostile::Target::u32("space_wait.waiting", area + 256, &[0, 1]),
        hostile::Target::u32("publisher state", area + 384, &[0, 1, 2, 3, 4]),
    ];
    for i in 0..nsubs {
        targets.push(hostile::Target::u64("slot word", area + 512 + 128 * i, &[0, 1, 0x101]));
        targets.push(hostile::Target::u64("slot cursor", area + 512 + 128 * i + 8, &[0, 24]));
    }
    for k in 0..8 {
        targets.push(hostile::Target::u64(
            "record word",
            region + 32 * k,
            &[0x1_0000_0008, 0x2_0000_0000],
        ));
        targets.push(hostile::Target::u64("record stamp", region + 32 * k + 8, &[1 << 63]));
    }
    s.scribble(400, &targets, region..s.len(), Duration::from_millis(2));
    let recent = s.recent();
    for (what, c) in &mut kids {
        let st = wait_child(c, Duration::from_secs(30));
        hostile::judge(what, st, &recent).unwrap();
    }
    shmring::shm::unlink(&name).unwrap();
}

#[test]
fn hostile_writes_lossless_give_errors_never_hangs() {
    hostile_run(Policy::Lossless);
}

#[test]
fn hostile_writes_overwrite_give_errors_never_hangs() {
    hostile_run(Policy::Overwrite);
}
