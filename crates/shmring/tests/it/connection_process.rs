//! Cross-process tests of `Pipe`/`Connection`/`wait` (`shmring::connection`): the test
//! binary re-executes itself as the peer processes (`common::spawn_peer`) and hands them
//! connection ends as inherited descriptors or by name.

use crate::common;

use common::peer::*;
use common::*;
use serde::{Deserialize, Serialize};
use shmring::WaitStrategy;
use shmring::connection::{ConnError, Connection, ConnectionOptions, pipe_with, wait};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "ping-pong" => ping_pong_peer(),
        "big-echo" => big_echo_peer(),
        "feeder" => feeder_peer(),
        "one-way-reader" => one_way_reader_peer(),
        "named-opener" => named_opener_peer(),
        "sleeper" => sleeper_peer(),
        "limits" => limits_peer(),
        "echo" => echo_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

/// Serializes "dup inheritable descriptors, spawn, close them": a child spawned by one
/// test must not inherit another test's descriptors (it would hold that end's liveness
/// lock, hiding the death of the process that should be its only holder).
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Spawn a peer of `test` as `role`, handing it `conn` as the descriptors `R` (receiving
/// ring) and `W` (sending ring), plus `env`. Our copies are closed once it runs.
fn spawn_with(test: &str, role: &str, conn: Connection, env: &[(&str, String)]) -> Peer {
    spawn_args(test, role, conn, env, &[])
}

/// [`spawn_with`], with extra arguments for the test harness of the child (`--ignored`
/// for a peer of an ignored test).
fn spawn_args(test: &str, role: &str, conn: Connection, env: &[(&str, String)], args: &[&str]) -> Peer {
    let _g = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let (r, w) = conn.into_fds();
    let dup = |fd: &Option<OwnedFd>| fd.as_ref().map(inheritable);
    let (ri, wi) = (dup(&r), dup(&w));
    let mut vars: Vec<(&str, String)> = env.to_vec();
    if let Some(fd) = &ri {
        vars.push(("R", fd_string(fd)));
    }
    if let Some(fd) = &wi {
        vars.push(("W", fd_string(fd)));
    }
    let mut cmd = spawn_peer(test, role, &vars);
    cmd.args(args);
    Peer::spawn_cmd(cmd, role)
}

/// The end the parent handed to this peer, with options.
fn inherited(opts: &ConnectionOptions) -> Result<Connection, String> {
    let fd = |var: &str| std::env::var(var).is_ok().then(|| fd_from_env(var));
    Connection::from_fds_with(fd("R"), fd("W"), opts).map_err(|e| e.to_string())
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

// ---------------------------------------------------------------------------------------
// Duplex ping-pong of 100,000 typed messages

const PINGS: u64 = 100_000;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Ping {
    seq: u64,
    text: String,
    vals: Vec<u32>,
    px: f64,
    side: Side,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
enum Side {
    Parent,
    Child { pid: u32 },
}

fn ping(seq: u64, side: Side) -> Ping {
    Ping {
        seq,
        text: format!("ping {seq}"),
        vals: (0..(seq % 7) as u32).map(|i| i * seq as u32).collect(),
        px: seq as f64 * 0.25,
        side,
    }
}

/// Receive each ping, check it, answer with the matching pong.
fn ping_pong_peer() -> Result<(), String> {
    let mut c = inherited(&ConnectionOptions::new())?;
    let me = Side::Child {
        pid: std::process::id(),
    };
    for seq in 0..PINGS {
        let p: Ping = c.recv().map_err(err)?;
        if p != ping(seq, Side::Parent) {
            return Err(format!("ping {seq} arrived as {p:?}"));
        }
        c.send(&ping(seq, me)).map_err(err)?;
    }
    match c.recv::<Ping>() {
        Err(ConnError::Disconnected) => Ok(()),
        other => Err(format!("after the last ping: {other:?}")),
    }
}

#[test]
fn duplex_ping_pong_of_100k_typed_messages() {
    const TEST: &str = "duplex_ping_pong_of_100k_typed_messages";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(240));
    let (mut a, b) = pipe_with(true, 1 << 16, &ConnectionOptions::new()).unwrap();
    let peer = spawn_with(TEST, "ping-pong", b, &[]);
    let pid = peer.pid();
    let start = Instant::now();
    for seq in 0..PINGS {
        a.send(&ping(seq, Side::Parent)).unwrap();
        let pong: Ping = a.recv().unwrap();
        assert_eq!(pong, ping(seq, Side::Child { pid }), "pong {seq}");
    }
    eprintln!("{PINGS} round trips in {:?}", start.elapsed());
    drop(a);
    peer.finish(Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------
// 16 MiB messages through a 64 KiB ring, both ways

const BIG: usize = 16 << 20;

/// Receive message 1 (16 MiB), check it byte for byte, send back message 2 (16 MiB + 7).
fn big_echo_peer() -> Result<(), String> {
    let mut c = inherited(&ConnectionOptions::new())?;
    let mut got = Vec::new();
    let n = c.recv_bytes_into(&mut got).map_err(err)?;
    let mut want = vec![0; BIG];
    fill_msg(1, &mut want);
    if n != BIG || got != want {
        return Err(format!("16 MiB message differs (got {n} bytes)"));
    }
    let mut back = vec![0; BIG + 7];
    fill_msg(2, &mut back);
    c.send_bytes(&back).map_err(err)?;
    say(&format!("checksum {}", checksum(&got)));
    Ok(())
}

#[test]
fn sixteen_mib_messages_through_a_64_kib_ring_both_ways() {
    const TEST: &str = "sixteen_mib_messages_through_a_64_kib_ring_both_ways";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    let (mut a, b) = pipe_with(true, 1 << 16, &ConnectionOptions::new()).unwrap();
    let mut peer = spawn_with(TEST, "big-echo", b, &[]);
    let mut msg = vec![0; BIG];
    fill_msg(1, &mut msg);
    let start = Instant::now();
    a.send_bytes(&msg).unwrap();
    let back = a.recv_bytes().unwrap();
    eprintln!("2 x 16 MiB in {:?}", start.elapsed());
    let mut want = vec![0; BIG + 7];
    fill_msg(2, &mut want);
    assert_eq!(back.len(), BIG + 7);
    assert!(back == want, "the 16 MiB + 7 reply differs");
    let sum: u64 = peer.expect("checksum ", Duration::from_secs(30)).parse().unwrap();
    assert_eq!(sum, checksum(&msg), "the child checked the same bytes");
    peer.finish(Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------
// wait over 8 connections fed by 8 processes

const FEEDERS: usize = 8;
const FEED: u64 = 2_000;
const FEED_SEED: u64 = 0x5eed_f00d;

/// Message `seq` of feeder `i`: its identity and a payload of a seeded length (up to
/// 3000 bytes, so some take several frames of the 4 KiB ring).
fn feed_msg(i: u64, seq: u64) -> (u64, u64, Vec<u8>) {
    let len = msg_len(FEED_SEED ^ i, seq, 3000);
    let mut payload = vec![0; len];
    fill_msg(seq ^ (i << 32), &mut payload);
    (i, seq, payload)
}

/// Send FEED messages with seeded pauses, so that the feeders' messages interleave in a
/// random (but reproducible per process) order.
fn feeder_peer() -> Result<(), String> {
    let i = env_num("FEEDER");
    let mut c = inherited(&ConnectionOptions::new())?;
    let mut rng = fastrand::Rng::with_seed(FEED_SEED.wrapping_add(i));
    for seq in 0..FEED {
        match rng.u32(0..10) {
            0 => std::thread::sleep(Duration::from_micros(rng.u64(0..2000))),
            1..=3 => std::thread::yield_now(),
            _ => {}
        }
        c.send(&feed_msg(i, seq)).map_err(err)?;
    }
    Ok(())
}

#[test]
fn wait_over_8_connections_fed_by_8_processes() {
    const TEST: &str = "wait_over_8_connections_fed_by_8_processes";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(180));
    let mut conns = Vec::new();
    let mut peers = Vec::new();
    for i in 0..FEEDERS {
        let (r, w) = pipe_with(false, 4096, &ConnectionOptions::new()).unwrap();
        conns.push(r);
        peers.push(spawn_with(TEST, "feeder", w, &[("FEEDER", i.to_string())]));
    }
    let mut next = [0u64; FEEDERS];
    let mut open: Vec<usize> = (0..FEEDERS).collect();
    let (mut wakes, mut multi) = (0u64, 0u64);
    while !open.is_empty() {
        let view: Vec<&Connection> = open.iter().map(|&i| &conns[i]).collect();
        let ready = wait(&view, Some(Duration::from_secs(60)));
        assert!(!ready.is_empty(), "nothing ready for 60 s; received {next:?}");
        wakes += 1;
        multi += u64::from(ready.len() > 1);
        let mut done = Vec::new();
        for k in ready {
            let i = open[k];
            match conns[i].recv::<(u64, u64, Vec<u8>)>() {
                Ok(m) => {
                    assert_eq!(m.0, i as u64, "message on connection {i} from feeder {}", m.0);
                    assert!(m.1 == next[i], "feeder {i}: message {} where {} was due", m.1, next[i]);
                    assert!(m == feed_msg(i as u64, next[i]), "feeder {i}: message {} differs", m.1);
                    next[i] += 1;
                }
                Err(ConnError::Disconnected) => done.push(i),
                Err(e) => panic!("connection {i}: {e}"),
            }
        }
        open.retain(|i| !done.contains(i));
    }
    eprintln!("{wakes} wake-ups, {multi} with several connections ready");
    assert_eq!(next, [FEED; FEEDERS], "every message exactly once");
    for p in peers {
        p.finish(Duration::from_secs(30));
    }
}

// ---------------------------------------------------------------------------------------
// One-way pipe

fn one_way_reader_peer() -> Result<(), String> {
    let mut c = inherited(&ConnectionOptions::new())?;
    if c.writable() || !c.readable() {
        return Err("the child's end should be receive-only".into());
    }
    match c.send(&1u8) {
        Err(ConnError::WrongDirection { allowed: "receive" }) => {}
        other => return Err(format!("send on a receive-only end: {other:?}")),
    }
    let mut n = 0u64;
    loop {
        match c.recv::<u64>() {
            Ok(v) if v == n => n += 1,
            Ok(v) => return Err(format!("got {v} where {n} was due")),
            Err(ConnError::Disconnected) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    say(&format!("received {n}"));
    Ok(())
}

#[test]
fn one_way_pipe_across_processes() {
    const TEST: &str = "one_way_pipe_across_processes";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let (r, mut w) = pipe_with(false, 4096, &ConnectionOptions::new()).unwrap();
    let mut peer = spawn_with(TEST, "one-way-reader", r, &[]);
    assert_eq!(w.recv::<u64>(), Err(ConnError::WrongDirection { allowed: "send" }));
    assert!(w.poll(None).is_err());
    for v in 0..10_000u64 {
        w.send(&v).unwrap();
    }
    w.close();
    assert_eq!(peer.expect("received ", Duration::from_secs(30)), "10000");
    peer.finish(Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------
// Named connection

fn named_opener_peer() -> Result<(), String> {
    let mut c = Connection::open(&env_str("NAME")).map_err(err)?;
    let hello: String = c.recv().map_err(err)?;
    c.send(&format!("{hello}, back")).map_err(err)?;
    let big = c.recv_bytes().map_err(err)?;
    let mut want = vec![0; 1 << 20];
    fill_msg(3, &mut want);
    if big != want {
        return Err("1 MiB message differs".into());
    }
    c.send_bytes(&big[..12345]).map_err(err)?;
    Ok(())
}

#[test]
fn named_connection_opened_by_another_process() {
    const TEST: &str = "named_connection_opened_by_another_process";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let name = unique_name("conn-named");
    let mut a = Connection::create(&name, 1 << 14).unwrap();
    let peer = Peer::spawn(TEST, "named-opener", &[("NAME", name.clone())]);
    a.send(&"hello").unwrap();
    assert_eq!(
        a.recv_timeout::<String>(Duration::from_secs(30)).unwrap(),
        "hello, back"
    );
    let mut big = vec![0; 1 << 20];
    fill_msg(3, &mut big);
    a.send_bytes(&big).unwrap();
    assert_eq!(a.recv_bytes().unwrap(), &big[..12345]);
    assert_eq!(a.recv_bytes(), Err(ConnError::Disconnected));
    peer.finish(Duration::from_secs(30));
    drop(a);
    for suffix in ["a2b", "b2a"] {
        assert!(
            !std::path::Path::new(&format!("/dev/shm/{name}.{suffix}")).exists(),
            "the creator unlinks its rings"
        );
    }
}

// ---------------------------------------------------------------------------------------
// A peer killed with SIGKILL

fn sleeper_peer() -> Result<(), String> {
    let mut c = inherited(&ConnectionOptions::new())?;
    c.send(&"ready").map_err(err)?;
    std::thread::sleep(Duration::from_secs(600));
    Err("not killed".into())
}

#[test]
fn killed_peer_is_disconnected_and_ready() {
    const TEST: &str = "killed_peer_is_disconnected_and_ready";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let (mut a, b) = pipe_with(true, 1 << 16, &ConnectionOptions::new()).unwrap();
    let (c, _d) = pipe_with(true, 1 << 12, &ConnectionOptions::new()).unwrap();
    let mut peer = spawn_with(TEST, "sleeper", b, &[]);
    assert_eq!(a.recv::<String>().unwrap(), "ready");
    assert!(
        wait(&[&c, &a], Some(Duration::from_millis(100))).is_empty(),
        "alive and silent"
    );
    peer.kill9();
    let start = Instant::now();
    assert_eq!(
        wait(&[&c, &a], Some(Duration::from_secs(30))),
        [1],
        "the dead peer's end is ready"
    );
    eprintln!("death noticed by wait after {:?}", start.elapsed());
    assert!(a.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(a.recv_bytes(), Err(ConnError::Disconnected));
    // Sending to the dead peer: accepted until the ring is full, then Disconnected.
    let chunk = vec![0u8; 4096];
    let mut sent = 0;
    loop {
        match a.send_bytes_timeout(&chunk, Duration::from_secs(20)) {
            Ok(()) => sent += 1,
            Err(ConnError::Disconnected) => break,
            Err(e) => panic!("send to a dead peer: {e}"),
        }
        assert!(sent < 1000, "a 64 KiB ring took {sent} messages of 4 KiB");
    }
}

// ---------------------------------------------------------------------------------------
// MessageTooLarge on both sides

const CHILD_MAX: usize = 64 << 10;
const PARENT_MAX: usize = 1 << 20;

/// Receive with a 64 KiB limit: a 100 KiB message is refused and skipped, the next one
/// arrives; sending more than 64 KiB is refused; then send 2 MiB (over the parent's
/// limit) and a last small message.
fn limits_peer() -> Result<(), String> {
    let mut c = inherited(&ConnectionOptions::new().max_message_len(CHILD_MAX))?;
    match c.recv_bytes() {
        Err(ConnError::MessageTooLarge {
            len: 100_000,
            max: CHILD_MAX,
        }) => {}
        other => return Err(format!("a 100 KiB message: {other:?}")),
    }
    let next = c.recv_bytes().map_err(err)?;
    if next != [5; CHILD_MAX] {
        return Err(format!("the message after the refused one: {} bytes", next.len()));
    }
    match c.send_bytes(&vec![0; CHILD_MAX + 1]) {
        Err(ConnError::MessageTooLarge { .. }) => {}
        other => return Err(format!("sending past the limit: {other:?}")),
    }
    // Another end over the same rings, with the default 1 GiB limit, sends 2 MiB.
    let (r, w) = c.into_fds();
    let mut c = Connection::from_fds(r, w).map_err(err)?;
    c.send_bytes(&vec![6; 2 << 20]).map_err(err)?;
    c.send(&"still usable").map_err(err)?;
    Ok(())
}

#[test]
fn message_too_large_both_ways_across_processes() {
    const TEST: &str = "message_too_large_both_ways_across_processes";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let opts = ConnectionOptions::new().max_message_len(PARENT_MAX);
    let (mut a, b) = pipe_with(true, 1 << 14, &opts).unwrap();
    let peer = spawn_with(TEST, "limits", b, &[]);
    assert_eq!(
        a.send_bytes(&vec![0; PARENT_MAX + 1]),
        Err(ConnError::MessageTooLarge {
            len: PARENT_MAX as u64 + 1,
            max: PARENT_MAX
        }),
        "refused on send, nothing sent"
    );
    a.send_bytes(&vec![4; 100_000]).unwrap();
    a.send_bytes(&[5; CHILD_MAX]).unwrap();
    assert_eq!(
        a.recv_bytes(),
        Err(ConnError::MessageTooLarge {
            len: 2 << 20,
            max: PARENT_MAX
        })
    );
    assert_eq!(a.recv::<String>().unwrap(), "still usable");
    peer.finish(Duration::from_secs(30));
}

// ---------------------------------------------------------------------------------------
// Wake-up latency of `wait` and of `recv` (a report, not a test: run by hand with
// `cargo test --release --test connection_process -- --ignored --nocapture wake_up`)

/// Echo every message back; wait for each with `wait` (MODE=wait, or wait8 over 8
/// connections) or in `recv` (MODE=recv), with the wait strategy STRATEGY.
fn echo_peer() -> Result<(), String> {
    let strategy = WaitStrategy::from_name(&env_str("STRATEGY")).ok_or("strategy")?;
    let mut c = inherited(&ConnectionOptions::new().wait(strategy))?;
    let mode = env_str("MODE");
    // MODE=wait8: seven idle connections are watched too.
    let idle: Vec<_> = (0..7)
        .map(|_| pipe_with(true, 4096, &ConnectionOptions::new()).unwrap())
        .collect();
    let mut buf = Vec::new();
    loop {
        if mode == "wait" {
            wait(&[&c], None);
        } else if mode == "wait8" {
            let mut all = vec![&c];
            all.extend(idle.iter().map(|(x, _)| x));
            wait(&all, None);
        }
        match c.recv_bytes_into(&mut buf) {
            Ok(_) => c.send_bytes(&buf).map_err(err)?,
            Err(ConnError::Disconnected) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[test]
#[ignore]
fn wake_up_latency_of_wait_vs_recv() {
    const TEST: &str = "wake_up_latency_of_wait_vs_recv";
    common::dispatch(run_peer);
    const ROUNDS: usize = 3000;
    for (mode, strategy) in [
        ("wait", "blocking"),
        ("wait8", "blocking"),
        ("recv", "blocking"),
        ("wait", "blocking"),
        ("recv", "blocking"),
        // Adaptive spins about 20 µs before it yields, then sleeps.
        ("recv", "adaptive"),
    ] {
        let opts = ConnectionOptions::new().wait(WaitStrategy::Spin);
        let (mut a, b) = pipe_with(true, 1 << 16, &opts).unwrap();
        let peer = spawn_args(
            TEST,
            "echo",
            b,
            &[("MODE", mode.to_string()), ("STRATEGY", strategy.to_string())],
            &["--ignored"],
        );
        let mut rtts = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS + 100 {
            // Long enough for the echo to be asleep in the kernel when the message comes.
            std::thread::sleep(Duration::from_micros(300));
            let t = Instant::now();
            a.send_bytes(b"ping").unwrap();
            a.recv_bytes().unwrap();
            if i >= 100 {
                rtts.push(t.elapsed());
            }
        }
        drop(a);
        peer.finish(Duration::from_secs(10));
        rtts.sort();
        eprintln!(
            "echo asleep in {mode} ({strategy}): round trip median {:?}, p90 {:?}, p99 {:?}",
            rtts[ROUNDS / 2],
            rtts[ROUNDS * 9 / 10],
            rtts[ROUNDS * 99 / 100]
        );
    }
}
