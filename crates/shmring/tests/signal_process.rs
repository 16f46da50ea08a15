//! Cross-process tests of `shmring::signal`: SIGINT ends blocking waits in another
//! process with `Interrupted` (rings, queues, locks, sockets); `Signals` receives a signal another process sent; a
//! child's `sigqueue` values reach the parent's `ValueSignals` in order.
//!
//! Every handler for SIGINT is installed in a child (the test binary re-executed as a
//! peer), never in this shared harness process, and the interrupt flag is only ever
//! raised there.

mod common;

use common::peer::*;
use common::*;
use shmring::WaitStrategy;
use shmring::connection::{ConnError, Connection, ConnectionOptions, pipe, pipe_with};
use shmring::queue::{GetError, JoinError, JoinableQueue, PutError, Queue};
use shmring::signal::{self, Interrupt, SIGINT, SIGUSR1, SignalRecvError, Signals, ValueSignals};
use shmring::sync::AcquireError;
use shmring::sync::{Barrier, BarrierError, Condition, Event, Interrupted, LockError, Mutex, RLock, Semaphore};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "recv" => recv_peer(),
        "queue-get" => queue_get_peer(),
        "socket-recv" => socket_recv_peer(),
        "lock" => lock_peer(),
        "signals" => signals_peer(),
        "values" => values_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

/// Serializes "dup inheritable descriptors, spawn, close them" (see
/// connection_process.rs): a child must not inherit another test's descriptors.
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Spawn `role` of `test` with `fds` inherited under the given variable names.
fn spawn_fds(test: &str, role: &str, fds: &[(&str, &OwnedFd)], env: &[(&str, String)]) -> Peer {
    let _g = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let dups: Vec<(&str, OwnedFd)> = fds.iter().map(|(k, fd)| (*k, inheritable(fd))).collect();
    let mut vars: Vec<(&str, String)> = env.to_vec();
    vars.extend(dups.iter().map(|(k, d)| (*k, fd_string(d))));
    let p = Peer::spawn(test, role, &vars);
    drop(dups);
    p
}

fn err<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e:?}")
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// Parse `key=value` fields of a marker line.
fn field(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        .to_owned()
}

/// How long the parent lets a child sleep in its wait before signalling it.
const SETTLE: Duration = Duration::from_millis(225);

/// Block SIGINT in the calling thread: the kernel then never runs the handler here.
fn block_sigint_here() {
    // SAFETY: an all-zero sigset_t is a valid object for sigemptyset to initialize.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t; the old mask is not asked for (null).
    let r = unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
    };
    assert_eq!(r, 0, "pthread_sigmask");
}

// ---------------------------------------------------------------------------------------
// SIGINT to a process blocked in Connection::recv (and a thread that does not run the
// handler, blocked in Queue::get)

fn recv_peer() -> Result<(), String> {
    let interrupt = Interrupt::install(&[SIGINT]).map_err(err("install"))?;
    let mut conn = Connection::from_fds(Some(fd_from_env("R")), None).map_err(err("from_fds"))?;
    let mut local: Queue<u32> = Queue::new(4).map_err(err("queue"))?;
    let mut q2 = local.try_clone().map_err(err("clone"))?;
    let helper = std::thread::spawn(move || {
        block_sigint_here();
        let r = q2.get();
        (r, Instant::now())
    });
    say(&format!("tid={} ready", rustix::thread::gettid().as_raw_nonzero()));
    let start = Instant::now();
    let r = conn.recv::<u32>();
    let main_done = Instant::now();
    if r != Err(ConnError::Interrupted) {
        return Err(format!("recv: {r:?}, expected Interrupted"));
    }
    say(&format!("main-interrupted blocked_ms={}", ms(main_done - start)));
    let (hr, helper_done) = helper.join().map_err(|_| "helper panicked".to_string())?;
    if !matches!(hr, Err(GetError::Interrupted)) {
        return Err(format!("helper get: {hr:?}, expected Interrupted"));
    }
    let other = helper_done.saturating_duration_since(main_done);
    say(&format!("other-interrupted after_ms={}", ms(other)));
    // Sticky until cleared: every later blocking call fails at once...
    if !interrupt.is_pending() || conn.recv::<u32>() != Err(ConnError::Interrupted) {
        return Err("the interrupt did not stay pending".into());
    }
    // ...but try_* never reports it, and a message that is there is received.
    if conn.try_recv::<u32>() != Err(ConnError::WouldBlock) {
        return Err("try_recv reported something other than WouldBlock".into());
    }
    local.put(&5).map_err(err("put"))?;
    if local.get().map_err(err("get with a message there"))? != 5 {
        return Err("wrong message".into());
    }
    interrupt.clear();
    // Cleared: waits sleep normally again (and time out).
    match conn.recv_timeout::<u32>(Duration::from_millis(20)) {
        Err(ConnError::Timeout) => {}
        other => return Err(format!("after clear: {other:?}")),
    }
    say("cleared");
    let v = conn.recv::<u32>().map_err(err("recv after clear"))?;
    if v != 77 {
        return Err(format!("got {v}"));
    }
    Ok(())
}

#[test]
fn sigint_ends_a_recv_blocked_in_another_process_with_interrupted() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("sigint recv", Duration::from_secs(60));
    let (rx, mut tx) = pipe(false).unwrap();
    let (r, _) = rx.into_fds();
    let mut peer = spawn_fds(
        "sigint_ends_a_recv_blocked_in_another_process_with_interrupted",
        "recv",
        &[("R", r.as_ref().unwrap())],
        &[],
    );
    drop(r);
    let line = peer.expect("tid=", Duration::from_secs(10));
    let tid: i32 = line.split_whitespace().next().unwrap().parse().unwrap();
    // Let the child reach its sleep (not needed for correctness: a SIGINT that comes
    // earlier makes the wait return Interrupted before it sleeps). Not a multiple of
    // the 50 ms nap, so that the measured delay of the thread that does not run the
    // handler is not hidden by a nap that happens to end just then.
    std::thread::sleep(SETTLE);
    let pid = peer.pid() as i32;
    let sent = Instant::now();
    // Directed at the thread blocked in recv, so that it is the one that runs the
    // handler (a process-directed SIGINT may be handled by the harness's main thread).
    // SAFETY: tgkill takes three plain integers.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, SIGINT) };
    assert_eq!(r, 0, "tgkill");
    let line = peer.expect("main-interrupted", Duration::from_secs(10));
    let seen = sent.elapsed();
    let other = peer.expect("other-interrupted", Duration::from_secs(10));
    println!(
        "SIGINT -> recv returned Interrupted in the thread that ran the handler: {} ms from tgkill to the \
         child's report (blocked {} ms); a thread with SIGINT blocked (Queue::get) returned {} ms after it",
        ms(seen),
        field(&line, "blocked_ms"),
        field(&other, "after_ms")
    );
    peer.expect("cleared", Duration::from_secs(10));
    tx.send(&77u32).unwrap();
    let (st, _) = peer.exit(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "child exit status {st}");
}

// ---------------------------------------------------------------------------------------
// SIGINT (process-directed, via signal::notify) to a process blocked in Queue::get

fn queue_get_peer() -> Result<(), String> {
    let interrupt = Interrupt::install(&[SIGINT]).map_err(err("install"))?;
    let mut q: Queue<u64> = Queue::from_fd(fd_from_env("Q")).map_err(err("from_fd"))?;
    say("ready");
    let start = Instant::now();
    let r = q.get();
    let waited = start.elapsed();
    if !matches!(r, Err(GetError::Interrupted)) {
        return Err(format!("get: {r:?}, expected Interrupted"));
    }
    say(&format!("interrupted blocked_ms={}", ms(waited)));
    interrupt.clear();
    say("cleared");
    let v = q.get().map_err(err("get after clear"))?;
    if v != 1234 {
        return Err(format!("got {v}"));
    }
    Ok(())
}

#[test]
fn sigint_ends_a_queue_get_blocked_in_another_process() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("sigint queue get", Duration::from_secs(60));
    let mut q: Queue<u64> = Queue::new(8).unwrap();
    let fd = q.try_clone().unwrap().into_fd();
    let mut peer = spawn_fds(
        "sigint_ends_a_queue_get_blocked_in_another_process",
        "queue-get",
        &[("Q", &fd)],
        &[],
    );
    drop(fd);
    peer.expect("ready", Duration::from_secs(10));
    std::thread::sleep(SETTLE);
    let sent = Instant::now();
    signal::notify(peer.pid(), SIGINT).unwrap();
    let line = peer.expect("interrupted", Duration::from_secs(10));
    println!(
        "SIGINT (process-directed) -> Queue::get returned Interrupted: {} ms from kill to the child's report \
         (blocked {} ms)",
        ms(sent.elapsed()),
        field(&line, "blocked_ms")
    );
    peer.expect("cleared", Duration::from_secs(10));
    q.put(&1234).unwrap();
    let (st, _) = peer.exit(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "child exit status {st}");
}

// ---------------------------------------------------------------------------------------
// SIGINT to a process blocked in a socket connection's recv

fn socket_recv_peer() -> Result<(), String> {
    let interrupt = Interrupt::install(&[SIGINT]).map_err(err("install"))?;
    let addr: shmring::net::Address = env_str("ADDR").parse().map_err(err("address"))?;
    let mut c = shmring::net::Client::connect(&addr, Some(b"key")).map_err(err("connect"))?;
    say("ready");
    let start = Instant::now();
    let r = c.recv::<u64>();
    let waited = start.elapsed();
    if r != Err(ConnError::Interrupted) {
        return Err(format!("recv: {r:?}, expected Interrupted"));
    }
    say(&format!("interrupted blocked_ms={}", ms(waited)));
    interrupt.clear();
    say("cleared");
    let v = c.recv::<u64>().map_err(err("recv after clear"))?;
    if v != 77 {
        return Err(format!("got {v}"));
    }
    Ok(())
}

#[test]
fn sigint_ends_a_socket_recv_blocked_in_another_process() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("sigint socket recv", Duration::from_secs(60));
    let addr: shmring::net::Address = format!("@shmring-test-sigint-{}", std::process::id()).parse().unwrap();
    let listener = shmring::net::Listener::bind(&addr, Some(b"key")).unwrap();
    let mut peer = Peer::spawn(
        "sigint_ends_a_socket_recv_blocked_in_another_process",
        "socket-recv",
        &[("ADDR", addr.to_string())],
    );
    let mut conn = listener.accept().unwrap();
    peer.expect("ready", Duration::from_secs(10));
    std::thread::sleep(SETTLE);
    let sent = Instant::now();
    signal::notify(peer.pid(), SIGINT).unwrap();
    let line = peer.expect("interrupted", Duration::from_secs(10));
    println!(
        "SIGINT (process-directed) -> SocketConnection::recv returned Interrupted: {} ms from kill to the \
         child's report (blocked {} ms)",
        ms(sent.elapsed()),
        field(&line, "blocked_ms")
    );
    peer.expect("cleared", Duration::from_secs(10));
    conn.send(&77u64).unwrap();
    let (st, _) = peer.exit(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "child exit status {st}");
}

// ---------------------------------------------------------------------------------------
// SIGINT to a process blocked in Mutex::lock_interruptible on a lock the parent holds;
// then every other interruptible wait returns Interrupted while the flag is up

fn lock_peer() -> Result<(), String> {
    let interrupt = Interrupt::install(&[SIGINT]).map_err(err("install"))?;
    let m: Mutex<u64> = Mutex::from_fd(fd_from_env("M")).map_err(err("from_fd"))?;
    say("ready");
    let start = Instant::now();
    let r = m.lock_interruptible();
    let waited = start.elapsed();
    if !matches!(r, Err(LockError::Interrupted)) {
        return Err(format!("lock_interruptible: {r:?}, expected Interrupted"));
    }
    drop(r);
    say(&format!("interrupted blocked_ms={}", ms(waited)));
    // The flag stays up: each of these would block (for a minute, or forever), and
    // returns Interrupted at once instead.
    let long = Duration::from_secs(60);
    let t = Instant::now();
    if !matches!(m.lock_timeout(long), Err(LockError::Interrupted)) {
        return Err("lock_timeout".into());
    }
    // An RLock held by another thread of this process.
    let rl = std::sync::Arc::new(RLock::anonymous().map_err(err("rlock"))?);
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let rl2 = rl.clone();
    let holder = std::thread::spawn(move || {
        let _g = rl2.lock();
        let _ = held_tx.send(());
        let _ = go_rx.recv();
    });
    held_rx.recv().map_err(err("holder"))?;
    if !matches!(rl.lock_interruptible(), Err(LockError::Interrupted)) {
        return Err("rlock".into());
    }
    let _ = go_tx.send(());
    holder.join().map_err(|_| "holder panicked")?;
    let sem = Semaphore::anonymous(0).map_err(err("semaphore"))?;
    if sem.acquire() != Err(AcquireError::Interrupted) || sem.acquire_timeout(long) != Err(AcquireError::Interrupted) {
        return Err("semaphore".into());
    }
    let ev = Event::anonymous().map_err(err("event"))?;
    if ev.wait_interruptible(None) != Err(Interrupted) || ev.wait_interruptible(Some(long)) != Err(Interrupted) {
        return Err("event".into());
    }
    let cond = Condition::anonymous(0u32).map_err(err("condition"))?;
    let g = cond.lock().map_err(|_| "condition lock")?;
    let (g, res) = cond
        .wait_while_interruptible(g, None, |v| *v == 0)
        .map_err(|_| "condition wait")?;
    if !res.interrupted() || res.timed_out() || *g != 0 {
        return Err(format!("condition: {res:?}"));
    }
    drop(g);
    let barrier = Barrier::anonymous(2).map_err(err("barrier"))?;
    if barrier.wait() != Err(BarrierError::Interrupted) || barrier.wait() != Err(BarrierError::Broken) {
        return Err("barrier: not Interrupted, then broken".into());
    }
    let mut jq: JoinableQueue<u8> = JoinableQueue::new(4).map_err(err("joinable"))?;
    jq.put(&1).map_err(err("put"))?;
    if jq.join() != Err(JoinError::Interrupted { unfinished: 1 }) {
        return Err("join".into());
    }
    let (a, _b) = pipe(true).map_err(err("pipe"))?;
    if a.poll(None) != Err(ConnError::Interrupted)
        || shmring::connection::wait_interruptible(&[&a], None) != Err(Interrupted)
    {
        return Err("poll / wait_interruptible".into());
    }
    // A spinning receiver (no futex sleep: the flag is read every 256 spins), a send
    // into a full ring, a put into a full queue.
    let spin = ConnectionOptions::new().wait(WaitStrategy::Spin);
    let (mut srx, mut stx) = pipe_with(false, 4096, &spin).map_err(err("spin pipe"))?;
    if srx.recv::<u32>() != Err(ConnError::Interrupted) {
        return Err("spinning recv".into());
    }
    let mut filled = 0;
    while stx.try_send_bytes(&[0u8; 512]).is_ok() {
        filled += 1;
    }
    if filled == 0 || stx.send_bytes(&[0u8; 512]) != Err(ConnError::Interrupted) {
        return Err("send into a full ring".into());
    }
    let mut fullq: Queue<u8> = Queue::new(2).map_err(err("queue"))?;
    while fullq.put_nowait(&0).is_ok() {}
    if !matches!(fullq.put(&1), Err(PutError::Interrupted)) {
        return Err("put into a full queue".into());
    }
    // try_* calls never report it.
    if !matches!(m.try_lock(), Err(LockError::WouldBlock)) || sem.try_acquire() != Err(AcquireError::WouldBlock) {
        return Err("try_* reported the interrupt".into());
    }
    say(&format!("all-interrupted ms={}", ms(t.elapsed())));
    interrupt.clear();
    say("cleared");
    // Cleared: waits for the lock again, which the parent now releases.
    let g = m.lock_interruptible().map_err(err("lock after clear"))?;
    if *g != 9 {
        return Err(format!("value {}", *g));
    }
    Ok(())
}

#[test]
fn sigint_ends_a_lock_held_by_the_parent_and_every_other_wait() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("sigint lock", Duration::from_secs(60));
    let m: Mutex<u64> = Mutex::anonymous(0).unwrap();
    let fd = m.as_fd().try_clone_to_owned().unwrap();
    let mut g = m.lock().unwrap();
    *g = 9;
    let mut peer = spawn_fds(
        "sigint_ends_a_lock_held_by_the_parent_and_every_other_wait",
        "lock",
        &[("M", &fd)],
        &[],
    );
    drop(fd);
    peer.expect("ready", Duration::from_secs(10));
    std::thread::sleep(SETTLE);
    let sent = Instant::now();
    signal::notify(peer.pid(), SIGINT).unwrap();
    let line = peer.expect("interrupted", Duration::from_secs(10));
    println!(
        "SIGINT -> Mutex::lock_interruptible returned Interrupted: {} ms from kill to the child's report \
         (blocked {} ms)",
        ms(sent.elapsed()),
        field(&line, "blocked_ms")
    );
    let line = peer.expect("all-interrupted", Duration::from_secs(10));
    println!(
        "the other waits (lock_timeout, RLock, acquire, acquire_timeout, event, condition, barrier, join, poll, wait, spinning recv, full send, full put) returned Interrupted in {} ms together",
        field(&line, "ms")
    );
    peer.expect("cleared", Duration::from_secs(10));
    drop(g);
    let (st, _) = peer.exit(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "child exit status {st}");
}

// ---------------------------------------------------------------------------------------
// Signals receives SIGUSR1 sent by another process; closing ends its iterator

fn signals_peer() -> Result<(), String> {
    let mut signals = Signals::new(&[SIGUSR1]).map_err(err("signals"))?;
    say("ready");
    let got = signals.recv_timeout(Duration::from_secs(10));
    if got != Ok(SIGUSR1) {
        return Err(format!("recv_timeout: {got:?}"));
    }
    say("got");
    let h = signals.handle();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        h.close();
    });
    // Blocks until closed; only SIGUSR1s the parent never sent could come out.
    let extra: Vec<i32> = signals.by_ref().collect();
    closer.join().map_err(|_| "closer panicked")?;
    if !extra.is_empty() {
        return Err(format!("unexpected signals {extra:?}"));
    }
    if signals.try_recv() != Err(SignalRecvError::Closed) {
        return Err("try_recv after close".into());
    }
    say("closed");
    Ok(())
}

#[test]
fn signals_receives_sigusr1_from_another_process_and_close_ends_the_iterator() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("signals", Duration::from_secs(60));
    let mut peer = Peer::spawn(
        "signals_receives_sigusr1_from_another_process_and_close_ends_the_iterator",
        "signals",
        &[],
    );
    peer.expect("ready", Duration::from_secs(10));
    signal::notify(peer.pid(), SIGUSR1).unwrap();
    peer.expect("got", Duration::from_secs(10));
    peer.expect("closed", Duration::from_secs(10));
    let (st, _) = peer.exit(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "child exit status {st}");
}

// ---------------------------------------------------------------------------------------
// sigqueue: a child sends 1..=1000 to the parent's ValueSignals

const VALUES: i32 = 1000;

/// Sends each value, then waits for the parent's acknowledgement of it before sending
/// the next: one signal in flight at a time, so neither the kernel's limit on queued
/// signals (RLIMIT_SIGPENDING) nor which of the parent's threads handles a signal can
/// drop or reorder anything, and the test is exact.
fn values_peer() -> Result<(), String> {
    let parent: u32 = env_num("PARENT") as u32;
    let sig: i32 = env_num("SIG") as i32;
    let mut acks = Connection::from_fds(Some(fd_from_env("R")), None).map_err(err("from_fds"))?;
    for v in 1..=VALUES {
        signal::queue(parent, sig, v).map_err(err("sigqueue"))?;
        let a = acks.recv_timeout::<i32>(Duration::from_secs(10)).map_err(err("ack"))?;
        if a != v {
            return Err(format!("ack {a} for {v}"));
        }
    }
    Ok(())
}

#[test]
fn sigqueue_values_from_a_child_arrive_in_order_with_its_pid() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("sigqueue values", Duration::from_secs(60));
    // Own real-time signal of this test (the library's unit tests use others, in
    // another process anyway).
    let sig = signal::rtmin() + 1;
    let mut values = ValueSignals::new(sig).unwrap();
    let (rx, mut acks) = pipe(false).unwrap();
    let (r, _) = rx.into_fds();
    let peer = spawn_fds(
        "sigqueue_values_from_a_child_arrive_in_order_with_its_pid",
        "values",
        &[("R", r.as_ref().unwrap())],
        &[("PARENT", std::process::id().to_string()), ("SIG", sig.to_string())],
    );
    drop(r);
    let child = peer.pid();
    let start = Instant::now();
    for v in 1..=VALUES {
        let (pid, got) = values.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!((pid, got), (child, v), "record {v}");
        acks.send(&v).unwrap();
    }
    println!(
        "{VALUES} sigqueue values (one in flight): {} ms, {:.1} µs per signal + ack round trip",
        ms(start.elapsed()),
        start.elapsed().as_secs_f64() * 1e6 / f64::from(VALUES)
    );
    assert_eq!(values.dropped(), 0);
    assert_eq!(values.try_recv(), Err(SignalRecvError::Empty));
    let (st, _) = peer.exit(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "child exit status {st}");
}
