//! Cross-process tests of `shmring::net`: a listener in the test process, clients in
//! re-executed copies of the test binary (`common::peer`), over Unix socket paths (in a
//! temporary directory), Linux abstract names, and TCP on 127.0.0.1 (port 0).

use crate::common;

use common::peer::*;
use common::*;
use serde::{Deserialize, Serialize};
use shmring::connection::{ConnError, Connection, MessageConnection};
use shmring::net::{Address, Client, Listener, NetOptions, SocketConnection};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "typed-client" => typed_client_peer(),
        "wrong-key-client" => wrong_key_client_peer(),
        "silent-client" => silent_client_peer(),
        "hostile-client" => hostile_client_peer(),
        "many-clients" => many_clients_peer(),
        "generic-client" => generic_client_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

/// Serializes spawning: the pipe test hands its child inheritable descriptors, which
/// no other test's child may inherit.
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn spawn(test: &str, role: &str, env: &[(&str, String)]) -> Peer {
    let _g = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    Peer::spawn(test, role, env)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

const KEY: &[u8] = b"the right key";

/// A directory for socket files, removed (with what is left in it) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(unique_name(tag));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The three address kinds; `dir` holds the Unix socket file.
fn addresses(dir: &TempDir, tag: &str) -> Vec<Address> {
    vec![
        Address::from(dir.0.join(format!("{tag}.sock")).as_path()),
        Address::Abstract(unique_name(tag)),
        "127.0.0.1:0".parse().unwrap(),
    ]
}

// ---------------------------------------------------------------------------------------
// Typed round trips over each address kind

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Request {
    client: u32,
    seq: u64,
    text: String,
    values: Vec<i64>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Reply {
    seq: u64,
    sum: i64,
    echo: String,
}

const TYPED_MSGS: u64 = 2_000;
const TYPED_CLIENTS: u32 = 2;

fn request(client: u32, seq: u64) -> Request {
    Request {
        client,
        seq,
        text: format!("client {client} message {seq}"),
        values: (0..(seq % 17) as i64).map(|i| i * seq as i64 - 5).collect(),
    }
}

fn reply_to(r: &Request) -> Reply {
    Reply {
        seq: r.seq,
        sum: r.values.iter().sum(),
        echo: r.text.clone(),
    }
}

fn typed_client_peer() -> Result<(), String> {
    let client = env_num("CLIENT") as u32;
    let mut c = Client::connect(&peer_addr()?, Some(KEY)).map_err(err)?;
    for seq in 0..TYPED_MSGS {
        let req = request(client, seq);
        c.send(&req).map_err(err)?;
        let rep: Reply = c.recv().map_err(err)?;
        if rep != reply_to(&req) {
            return Err(format!("reply {seq}: {rep:?}"));
        }
    }
    // One message larger than the read buffer, through the gathering path.
    let mut big = vec![0u8; 3 << 20];
    fill_msg(u64::from(client), &mut big);
    c.send_bytes(&big).map_err(err)?;
    let back = c.recv_bytes().map_err(err)?;
    if back != big {
        return Err("the 3 MiB echo differs".into());
    }
    say("done");
    Ok(())
}

/// Serve one typed client until it disconnects; returns the requests it sent.
fn serve_typed(mut s: SocketConnection) -> Result<u64, String> {
    let mut n = 0;
    loop {
        let mut buf = Vec::new();
        match s.recv_bytes_into(&mut buf) {
            Ok(len) if len > 1 << 20 => s.send_bytes(&buf).map_err(err)?,
            Ok(_) => {
                let req: Request = shmring::codec::decode(&buf).map_err(err)?;
                if req.seq != n {
                    return Err(format!("request {} arrived as number {n}", req.seq));
                }
                s.send(&reply_to(&req)).map_err(err)?;
                n += 1;
            }
            Err(ConnError::Disconnected) => return Ok(n),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[test]
fn typed_round_trips_across_processes_over_unix_abstract_and_tcp() {
    const TEST: &str = "typed_round_trips_across_processes_over_unix_abstract_and_tcp";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(180));
    let dir = TempDir::new("net-typed");
    for addr in addresses(&dir, "typed") {
        let l = Listener::bind(&addr, Some(KEY)).unwrap();
        let local = l.local_addr().to_string();
        let start = Instant::now();
        let peers: Vec<Peer> = (0..TYPED_CLIENTS)
            .map(|i| {
                spawn(
                    TEST,
                    "typed-client",
                    &[("ADDR", local.clone()), ("CLIENT", i.to_string())],
                )
            })
            .collect();
        let servers: Vec<_> = (0..TYPED_CLIENTS)
            .map(|_| {
                let s = l.accept().unwrap();
                std::thread::spawn(move || serve_typed(s))
            })
            .collect();
        for s in servers {
            assert_eq!(s.join().unwrap(), Ok(TYPED_MSGS), "over {local}");
        }
        for mut p in peers {
            p.expect("done", Duration::from_secs(60));
            p.finish(Duration::from_secs(30));
        }
        eprintln!(
            "{local}: {TYPED_CLIENTS} clients x {TYPED_MSGS} round trips + 3 MiB echo in {:?}",
            start.elapsed()
        );
        if let Address::Unix(path) = &addr {
            assert!(path.exists(), "the socket file exists while the listener lives");
            drop(l);
            assert!(!path.exists(), "the listener removes its socket file");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Authentication failures

fn wrong_key_client_peer() -> Result<(), String> {
    let addr = peer_addr()?;
    for key in [Some(&b"the wrong key"[..]), None] {
        match Client::connect(&addr, key) {
            Err(ConnError::Authentication(why)) => say(&format!("rejected: {why}")),
            Ok(_) => return Err(format!("connected with key {key:?}")),
            Err(e) => return Err(format!("key {key:?}: {e}")),
        }
    }
    // Then the right key: the first message the server receives must be this one.
    let mut c = Client::connect(&addr, Some(KEY)).map_err(err)?;
    c.send(&"first message").map_err(err)?;
    say("sent");
    Ok(())
}

#[test]
fn wrong_authkey_rejected_on_both_sides_with_nothing_delivered() {
    const TEST: &str = "wrong_authkey_rejected_on_both_sides_with_nothing_delivered";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let dir = TempDir::new("net-auth");
    for addr in addresses(&dir, "auth") {
        let l = Listener::bind(&addr, Some(KEY)).unwrap();
        let mut p = spawn(TEST, "wrong-key-client", &[("ADDR", l.local_addr().to_string())]);
        // A wrong key, then no key: each accept reports the failure and returns no
        // connection, so no message can be received from those clients.
        for _ in 0..2 {
            match l.accept() {
                Err(ConnError::Authentication(why)) => eprintln!("server: {why}"),
                other => panic!("accept of a client with a wrong key: {other:?}"),
            }
            let why = p.expect("rejected: ", Duration::from_secs(10));
            eprintln!("client: {why}");
        }
        let mut s = l.accept().unwrap();
        assert_eq!(s.recv::<String>().unwrap(), "first message");
        p.expect("sent", Duration::from_secs(10));
        p.finish(Duration::from_secs(10));
        assert_eq!(s.recv_bytes(), Err(ConnError::Disconnected));
        assert_eq!(
            l.accept_timeout(Duration::from_millis(100)).err(),
            Some(ConnError::Timeout)
        );
    }
    // A listener without a key refuses a client with one; a fake listener that does not
    // know the key is refused by the client (it cannot answer the client's challenge).
    let addr = Address::Abstract(unique_name("auth-nokey"));
    let l = Listener::bind(&addr, None).unwrap();
    let t = std::thread::spawn(move || Client::connect(&addr, Some(KEY)).map(|_| ()));
    assert!(matches!(l.accept(), Err(ConnError::Authentication(_))));
    assert!(matches!(t.join().unwrap(), Err(ConnError::Authentication(_))));
}

// ---------------------------------------------------------------------------------------
// A client that connects and sends nothing

fn silent_client_peer() -> Result<(), String> {
    let _s = std::os::unix::net::UnixStream::connect(env_str("SOCK")).map_err(err)?;
    say("connected");
    // Stay connected and silent until the parent kills us.
    std::thread::sleep(Duration::from_secs(60));
    Ok(())
}

#[test]
fn a_silent_client_times_out_in_the_handshake() {
    const TEST: &str = "a_silent_client_times_out_in_the_handshake";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let dir = TempDir::new("net-silent");
    let path = dir.0.join("silent.sock");
    let opts = NetOptions::new().handshake_timeout(Duration::from_millis(300));
    let l = Listener::bind_with(&path.as_path().into(), Some(KEY), &opts).unwrap();
    let mut silent = spawn(TEST, "silent-client", &[("SOCK", path.display().to_string())]);
    silent.expect("connected", Duration::from_secs(10));
    let start = Instant::now();
    let r = l.accept();
    eprintln!("accept of a silent client returned {r:?} after {:?}", start.elapsed());
    assert_eq!(r.err(), Some(ConnError::HandshakeTimeout { after_ms: 300 }));
    // The listener serves the next client; the silent one is still connected.
    let addr: Address = path.as_path().into();
    let t = std::thread::spawn(move || Client::connect(&addr, Some(KEY))?.send(&7u8));
    assert_eq!(l.accept().unwrap().recv::<u8>(), Ok(7));
    t.join().unwrap().unwrap();
    silent.kill9();

    // The other way round: a "listener" that accepts and never speaks.
    let raw_path = dir.0.join("raw.sock");
    let raw = std::os::unix::net::UnixListener::bind(&raw_path).unwrap();
    let start = Instant::now();
    let r = Client::connect_with(&raw_path.as_path().into(), Some(KEY), &opts);
    eprintln!(
        "connect to a silent listener returned {r:?} after {:?}",
        start.elapsed()
    );
    assert_eq!(r.err(), Some(ConnError::HandshakeTimeout { after_ms: 300 }));
    drop(raw);
}

// ---------------------------------------------------------------------------------------
// Hostile frames: an announced 1 GiB message, a message over the limit, garbage

const LIMIT: usize = 1 << 20;

fn hostile_client_peer() -> Result<(), String> {
    let addr = peer_addr()?;
    // 1. A header announcing 1 GiB, and nothing else; stay connected.
    let c = Client::connect(&addr, None).map_err(err)?;
    let mut raw = std::fs::File::from(c.into_inner().ok_or("closed")?);
    let mut h = [0u8; 8];
    h[0] = 1;
    h[4..].copy_from_slice(&(1u32 << 30).to_le_bytes());
    raw.write_all(&h).map_err(err)?;
    say("announced");
    // 2. A message over the server's limit (this end's is larger), then a small one.
    let mut c = Client::connect_with(&addr, None, &NetOptions::new().max_message_len(4 * LIMIT)).map_err(err)?;
    c.send_bytes(&vec![9u8; 2 * LIMIT]).map_err(err)?;
    c.send(&"after the big one").map_err(err)?;
    // 3. Garbage where a frame header should be.
    let c = Client::connect(&addr, None).map_err(err)?;
    let mut raw2 = std::fs::File::from(c.into_inner().ok_or("closed")?);
    raw2.write_all(b"GET / HTTP/1.1\r\n\r\n").map_err(err)?;
    // 4. Not a shmring peer at all: garbage instead of the handshake.
    if let Address::Unix(p) = &addr {
        let mut s = std::os::unix::net::UnixStream::connect(p).map_err(err)?;
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").map_err(err)?;
        say("garbage sent");
        std::thread::sleep(Duration::from_secs(60));
    }
    Ok(())
}

#[test]
fn hostile_frames_are_refused_without_allocating_or_waiting() {
    const TEST: &str = "hostile_frames_are_refused_without_allocating_or_waiting";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    let dir = TempDir::new("net-hostile");
    let path = dir.0.join("hostile.sock");
    let opts = NetOptions::new().max_message_len(LIMIT);
    let l = Listener::bind_with(&path.as_path().into(), None, &opts).unwrap();
    let mut p = spawn(TEST, "hostile-client", &[("ADDR", path.display().to_string())]);

    let mut s1 = l.accept().unwrap();
    p.expect("announced", Duration::from_secs(10));
    let start = Instant::now();
    let r = s1.recv_bytes_timeout(Duration::from_secs(10));
    eprintln!("1 GiB header: {r:?} after {:?}", start.elapsed());
    assert_eq!(
        r,
        Err(ConnError::MessageTooLarge {
            len: 1 << 30,
            max: LIMIT
        })
    );
    // Nothing follows the header: the next receive waits for the skipped bytes.
    assert_eq!(s1.try_recv_bytes(), Err(ConnError::WouldBlock));

    let mut s2 = l.accept().unwrap();
    assert_eq!(
        s2.recv_bytes(),
        Err(ConnError::MessageTooLarge {
            len: 2 * LIMIT as u64,
            max: LIMIT
        })
    );
    assert_eq!(
        s2.recv::<String>().unwrap(),
        "after the big one",
        "usable after a refused message"
    );

    let mut s3 = l.accept().unwrap();
    let bad = s3.recv_bytes();
    assert!(matches!(bad, Err(ConnError::BadFrame(_))), "{bad:?}");
    assert_eq!(s3.recv_bytes(), bad, "the receive direction stays broken");

    let r = l.accept();
    assert!(matches!(r, Err(ConnError::Handshake(_))), "{r:?}");
    eprintln!("a non-shmring client: {}", r.unwrap_err());
    p.expect("garbage sent", Duration::from_secs(10));
    p.kill9();
    assert_eq!(
        s1.recv_bytes(),
        Err(ConnError::Disconnected),
        "the cut message is dropped"
    );
}

// ---------------------------------------------------------------------------------------
// 32 concurrent clients

const CLIENT_PROCS: u32 = 4;
const THREADS_PER_PROC: u32 = 8;
const MSGS_PER_CLIENT: u64 = 300;

fn many_clients_peer() -> Result<(), String> {
    let addr = peer_addr()?;
    let proc_no = env_num("PROC") as u32;
    let threads: Vec<_> = (0..THREADS_PER_PROC)
        .map(|t| {
            let addr = addr.clone();
            std::thread::spawn(move || -> Result<(), String> {
                let id = proc_no * THREADS_PER_PROC + t;
                let mut c = Client::connect(&addr, Some(KEY)).map_err(err)?;
                for seq in 0..MSGS_PER_CLIENT {
                    c.send(&(id, seq)).map_err(err)?;
                }
                // The server acknowledges the count it received.
                let n: u64 = c.recv().map_err(err)?;
                if n != MSGS_PER_CLIENT {
                    return Err(format!("client {id}: server counted {n}"));
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "client thread panicked")??;
    }
    say("all served");
    Ok(())
}

#[test]
fn thirty_two_concurrent_clients_are_all_served() {
    const TEST: &str = "thirty_two_concurrent_clients_are_all_served";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(120));
    let clients = (CLIENT_PROCS * THREADS_PER_PROC) as usize;
    for addr in [
        Address::Abstract(unique_name("many")),
        "127.0.0.1:0".parse::<Address>().unwrap(),
    ] {
        let l = Listener::bind(&addr, Some(KEY)).unwrap();
        let local = l.local_addr().to_string();
        let start = Instant::now();
        let peers: Vec<Peer> = (0..CLIENT_PROCS)
            .map(|i| {
                spawn(
                    TEST,
                    "many-clients",
                    &[("ADDR", local.clone()), ("PROC", i.to_string())],
                )
            })
            .collect();
        let mut servers = Vec::new();
        for _ in 0..clients {
            let mut s = l.accept().unwrap();
            servers.push(std::thread::spawn(move || -> Result<(u32, u64), String> {
                let mut id = None;
                for seq in 0..MSGS_PER_CLIENT {
                    let (who, got): (u32, u64) = s.recv().map_err(err)?;
                    if *id.get_or_insert(who) != who || got != seq {
                        return Err(format!("client {who}: message {got} where {seq} was due"));
                    }
                }
                s.send(&MSGS_PER_CLIENT).map_err(err)?;
                assert_eq!(s.recv_bytes(), Err(ConnError::Disconnected));
                Ok((id.unwrap_or(u32::MAX), MSGS_PER_CLIENT))
            }));
        }
        let mut seen: Vec<u32> = servers.into_iter().map(|t| t.join().unwrap().unwrap().0).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..clients as u32).collect::<Vec<_>>(),
            "every client served once"
        );
        for mut p in peers {
            p.expect("all served", Duration::from_secs(60));
            p.finish(Duration::from_secs(30));
        }
        eprintln!(
            "{local}: {clients} clients x {MSGS_PER_CLIENT} messages in {:?}",
            start.elapsed()
        );
    }
}

// ---------------------------------------------------------------------------------------
// One generic function over both transports

/// The client side of a small protocol, for any transport: send `n` requests, check
/// each reply, then a `Pod` value.
fn generic_client<C: MessageConnection>(c: &mut C, n: u64) -> Result<(), String> {
    for seq in 0..n {
        let req = request(99, seq);
        c.send(&req).map_err(err)?;
        let rep: Reply = c.recv().map_err(err)?;
        if rep != reply_to(&req) {
            return Err(format!("reply {seq}: {rep:?}"));
        }
    }
    c.send_pod(&[n, u64::MAX]).map_err(err)?;
    Ok(())
}

/// The server side, for any transport: answer until the `Pod` value arrives.
fn generic_server<C: MessageConnection>(c: &mut C) -> Result<u64, String> {
    let mut n = 0;
    loop {
        let msg = c.recv_bytes().map_err(err)?;
        if let Ok(req) = shmring::codec::decode::<Request>(&msg) {
            c.send(&reply_to(&req)).map_err(err)?;
            n += 1;
            continue;
        }
        let end: [u64; 2] = shmring::codec::decode_pod(&msg).map_err(err)?;
        if end != [n, u64::MAX] {
            return Err(format!("end marker {end:?} after {n} requests"));
        }
        if c.poll(Some(Duration::ZERO)).map_err(err)? && c.recv_bytes() != Err(ConnError::Disconnected) {
            return Err("a message after the end marker".into());
        }
        return Ok(n);
    }
}

const GENERIC_MSGS: u64 = 500;

fn generic_client_peer() -> Result<(), String> {
    if std::env::var("R").is_ok() {
        let mut c = Connection::from_fds(Some(fd_from_env("R")), Some(fd_from_env("W"))).map_err(err)?;
        generic_client(&mut c, GENERIC_MSGS)?;
    } else {
        let mut c = Client::connect(&peer_addr()?, Some(KEY)).map_err(err)?;
        generic_client(&mut c, GENERIC_MSGS)?;
    }
    say("done");
    Ok(())
}

#[test]
fn one_generic_function_runs_over_a_pipe_and_a_socket() {
    const TEST: &str = "one_generic_function_runs_over_a_pipe_and_a_socket";
    common::dispatch(run_peer);
    let _w = Watchdog::new(TEST, Duration::from_secs(60));
    // Over a pipe: the child gets its end as inherited descriptors.
    let (mut a, b) = shmring::pipe(true).unwrap();
    let mut p = {
        let _g = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let (r, w) = b.into_fds();
        let dup = |fd: &Option<OwnedFd>| inheritable(fd.as_ref().unwrap());
        let (ri, wi) = (dup(&r), dup(&w));
        Peer::spawn(TEST, "generic-client", &[("R", fd_string(&ri)), ("W", fd_string(&wi))])
    };
    assert_eq!(generic_server(&mut a), Ok(GENERIC_MSGS), "over a pipe");
    p.expect("done", Duration::from_secs(30));
    p.finish(Duration::from_secs(30));

    // Over a socket, the same functions.
    let l = Listener::bind(&Address::Abstract(unique_name("generic")), Some(KEY)).unwrap();
    let mut p = spawn(TEST, "generic-client", &[("ADDR", l.local_addr().to_string())]);
    let mut s = l.accept().unwrap();
    assert_eq!(generic_server(&mut s), Ok(GENERIC_MSGS), "over a socket");
    p.expect("done", Duration::from_secs(30));
    p.finish(Duration::from_secs(30));
}
