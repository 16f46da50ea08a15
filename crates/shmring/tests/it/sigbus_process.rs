//! A peer that resizes a named segment under honest processes (issue 16, item 1): the
//! honest ends get errors, none dies of SIGBUS, none hangs; `open` racing a peer that
//! flips the size gets errors only; a SIGBUS outside shmring's mappings still kills.
//! Every test runs its processes under watchdogs (`Peer::exit` limits, `Watchdog`).

use crate::common;

use common::peer::*;
use common::*;
use shmring::queue::Queue;
use shmring::ring::spsc::{Consumer, Producer};
use shmring::sync::Mutex;
use shmring::value::Value;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "ring-producer" => ring_producer(),
        "ring-consumer" => ring_consumer(),
        "queue-putter" => queue_putter(),
        "queue-getter" => queue_getter(),
        "mutex-user" => mutex_user(),
        "value-user" => value_user(),
        "opener" => opener(),
        "foreign-fault" => foreign_fault(false),
        "chained-fault" => foreign_fault(true),
        other => Err(format!("unknown role {other}")),
    })
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// How long an honest peer may take to notice the attack: far above the 50 ms tick.
const NOTICE: Duration = Duration::from_secs(20);

/// Resize `/dev/shm/NAME` as a hostile neighbour would.
fn resize(name: &str, how: &str) {
    let path = format!("/dev/shm/{name}");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open segment file");
    let len = f.metadata().expect("stat").len();
    let new = match how {
        "zero" => 0,
        "half" => len / 2,
        "grow" => len * 2,
        other => panic!("unknown resize {other}"),
    };
    f.set_len(new).expect("ftruncate");
}

/// Run the honest peers of one scenario, wait for each to say `ready`, resize the
/// segment `name`, and require each to exit normally (no signal) having reported an
/// error (`ended` line).
fn attack(test: &str, name: &str, roles: &[&str], how: &str) {
    let _w = Watchdog::new("sigbus attack", Duration::from_secs(120));
    let env = [("NAME", name.to_owned())];
    let mut peers: Vec<Peer> = roles.iter().map(|r| Peer::spawn(test, r, &env)).collect();
    for p in &mut peers {
        p.expect("ready", Duration::from_secs(30));
    }
    std::thread::sleep(Duration::from_millis(100));
    resize(name, how);
    for (p, role) in peers.into_iter().zip(roles) {
        let (st, lines) = p.exit(Duration::from_secs(60));
        eprintln!("{role} after {how}: {lines:?}");
        assert_eq!(
            st.signal(),
            None,
            "{role} after {how}: killed by a signal ({st}); {lines:?}"
        );
        assert!(st.success(), "{role} after {how}: {st}; {lines:?}");
        assert!(
            lines.iter().any(|l| l.starts_with("ended")),
            "{role} after {how}: no error reported: {lines:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// SPSC ring: a producer (creator) and a consumer; each loops until an error.

fn ring_producer() -> Result<(), String> {
    let name = env_str("NAME");
    let mut tx = Producer::create(&name, 4096).map_err(err)?;
    say("ready");
    let msg = [7u8; 1000];
    let start = Instant::now();
    loop {
        if let Err(e) = tx.send(&msg) {
            say(&format!(
                "ended {e} (faults contained: {})",
                shmring::shm::sigbus::contained_faults()
            ));
            return Ok(());
        }
        if start.elapsed() > NOTICE {
            return Err("no error".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ring_consumer() -> Result<(), String> {
    let name = env_str("NAME");
    let start = Instant::now();
    let mut rx = loop {
        match Consumer::open(&name) {
            Ok(rx) => break rx,
            Err(shmring::Error::NotFound { .. }) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(err(e)),
        }
    };
    say("ready");
    loop {
        match rx.recv_timeout(NOTICE) {
            Ok(_) => {}
            Err(e) => {
                say(&format!(
                    "ended {e} (faults contained: {})",
                    shmring::shm::sigbus::contained_faults()
                ));
                return match e {
                    shmring::RecvError::Timeout => Err("timeout: the attack went unnoticed".into()),
                    _ => Ok(()),
                };
            }
        }
    }
}

fn ring_attack(how: &str) {
    let name = unique_name(&format!("sigbus-ring-{how}"));
    attack(
        &format!("ring_resized_{how}"),
        &name,
        &["ring-producer", "ring-consumer"],
        how,
    );
    let _ = shmring::shm::unlink(&name);
}

#[test]
fn ring_resized_zero() {
    common::dispatch(run_peer);
    ring_attack("zero");
}

#[test]
fn ring_resized_half() {
    common::dispatch(run_peer);
    ring_attack("half");
}

#[test]
fn ring_resized_grow() {
    common::dispatch(run_peer);
    ring_attack("grow");
}

// ---------------------------------------------------------------------------------------
// Queue: a putter (creator) and a getter.

fn queue_putter() -> Result<(), String> {
    let name = env_str("NAME");
    let mut q = Queue::<u64>::create(&name, 4).map_err(err)?;
    say("ready");
    let start = Instant::now();
    let mut i = 0u64;
    loop {
        i += 1;
        if let Err(e) = q.put(&i) {
            say(&format!(
                "ended {e} (faults contained: {})",
                shmring::shm::sigbus::contained_faults()
            ));
            return Ok(());
        }
        if start.elapsed() > NOTICE {
            return Err("no error".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn queue_getter() -> Result<(), String> {
    let name = env_str("NAME");
    let start = Instant::now();
    let mut q = loop {
        match Queue::<u64>::open(&name) {
            Ok(q) => break q,
            Err(shmring::Error::NotFound { .. }) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(err(e)),
        }
    };
    say("ready");
    loop {
        match q.get_timeout(NOTICE) {
            Ok(_) => {}
            Err(shmring::queue::GetError::Timeout) => return Err("timeout: the attack went unnoticed".into()),
            Err(e) => {
                say(&format!(
                    "ended {e} (faults contained: {})",
                    shmring::shm::sigbus::contained_faults()
                ));
                return Ok(());
            }
        }
    }
}

fn queue_attack(how: &str) {
    let name = unique_name(&format!("sigbus-queue-{how}"));
    attack(
        &format!("queue_resized_{how}"),
        &name,
        &["queue-putter", "queue-getter"],
        how,
    );
    let _ = shmring::shm::unlink(&name);
}

#[test]
fn queue_resized_zero() {
    common::dispatch(run_peer);
    queue_attack("zero");
}

#[test]
fn queue_resized_half() {
    common::dispatch(run_peer);
    queue_attack("half");
}

#[test]
fn queue_resized_grow() {
    common::dispatch(run_peer);
    queue_attack("grow");
}

// ---------------------------------------------------------------------------------------
// Mutex and Value: their calls have no error to return; the handle reports the poison.

fn mutex_user() -> Result<(), String> {
    let name = env_str("NAME");
    let m = Mutex::<u64>::open(&name).map_err(err)?;
    say("ready");
    let start = Instant::now();
    loop {
        *m.lock().map_err(err)? += 1;
        if m.is_poisoned() {
            say(&format!(
                "ended poisoned (faults contained: {})",
                shmring::shm::sigbus::contained_faults()
            ));
            return Ok(());
        }
        if start.elapsed() > NOTICE {
            return Err("no error".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn value_user() -> Result<(), String> {
    let name = env_str("NAME");
    let v = Value::<[u64; 4]>::open(&name).map_err(err)?;
    say("ready");
    let start = Instant::now();
    loop {
        let x = v.load();
        v.store([x[0] + 1; 4]);
        if v.is_poisoned() {
            say(&format!(
                "ended poisoned (faults contained: {})",
                shmring::shm::sigbus::contained_faults()
            ));
            return Ok(());
        }
        if start.elapsed() > NOTICE {
            return Err("no error".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn sync_attack(test: &str, how: &str) {
    let mname = unique_name(&format!("sigbus-mutex-{how}"));
    let vname = unique_name(&format!("sigbus-value-{how}"));
    let m = Mutex::create(&mname, 0u64).expect("mutex");
    let v = Value::create(&vname, [0u64; 4]).expect("value");
    let _w = Watchdog::new("sigbus sync attack", Duration::from_secs(120));
    let mut mp = Peer::spawn(test, "mutex-user", &[("NAME", mname.clone())]);
    let mut vp = Peer::spawn(test, "value-user", &[("NAME", vname.clone())]);
    mp.expect("ready", Duration::from_secs(30));
    vp.expect("ready", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(50));
    resize(&mname, how);
    resize(&vname, how);
    for (p, role) in [(mp, "mutex-user"), (vp, "value-user")] {
        let (st, lines) = p.exit(Duration::from_secs(60));
        eprintln!("{role} after {how}: {lines:?}");
        assert!(st.success(), "{role} after {how}: {st}; {lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("ended")), "{role}: {lines:?}");
    }
    // This process, the creator, survives touching its own mappings too.
    *m.lock().expect("lock") += 1;
    v.store([1; 4]);
    assert!(m.is_poisoned() && v.is_poisoned());
}

#[test]
fn sync_resized_zero() {
    common::dispatch(run_peer);
    sync_attack("sync_resized_zero", "zero");
}

#[test]
fn sync_resized_half() {
    common::dispatch(run_peer);
    sync_attack("sync_resized_half", "half");
}

#[test]
fn sync_resized_grow() {
    common::dispatch(run_peer);
    sync_attack("sync_resized_grow", "grow");
}

// ---------------------------------------------------------------------------------------
// `open` racing a peer that flips the size: every open returns Ok or an error.

fn opener() -> Result<(), String> {
    let name = env_str("NAME");
    let opts = shmring::shm::SegmentOptions::new().open_timeout(Duration::from_millis(20));
    let (mut ok, mut errs) = (0u32, 0u32);
    for _ in 0..300 {
        match Value::<[u64; 512]>::open_with(&name, &opts) {
            Ok(v) => {
                let _ = v.load();
                ok += 1;
            }
            Err(_) => errs += 1,
        }
    }
    say(&format!(
        "opened {ok} refused {errs} (faults contained: {})",
        shmring::shm::sigbus::contained_faults()
    ));
    Ok(())
}

#[test]
fn open_races_size_flipper() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("open racing a flipper", Duration::from_secs(120));
    let name = unique_name("sigbus-flip");
    let mut v = Value::create(&name, [0u64; 512]).expect("value");
    v.keep();
    let path = format!("/dev/shm/{name}");
    let f = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
    let len = f.metadata().expect("stat").len();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let flipper = std::thread::spawn(move || {
        let sizes = [0, 64, len / 2, len, len, len * 2];
        let mut i = 0usize;
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            f.set_len(sizes[i % sizes.len()]).expect("ftruncate");
            i = i.wrapping_add(1);
            // Often enough that opens race flips between their fstat, mmap and header
            // read (each then faults on a page past the end, contained). Shrinking
            // erases the content, so after the first flip no open can succeed: the
            // point is that every one is an error, never a signal.
            std::thread::sleep(Duration::from_micros(300));
        }
    });
    let openers: Vec<Peer> = (0..2)
        .map(|_| Peer::spawn("open_races_size_flipper", "opener", &[("NAME", name.clone())]))
        .collect();
    let mut faults = 0;
    for p in openers {
        let (st, lines) = p.exit(Duration::from_secs(90));
        eprintln!("opener: {lines:?}");
        faults += lines
            .iter()
            .filter_map(|l| l.split("faults contained: ").nth(1))
            .filter_map(|n| n.trim_end_matches(')').parse::<u64>().ok())
            .sum::<u64>();
        assert_eq!(st.signal(), None, "opener killed by a signal ({st}); {lines:?}");
        assert!(st.success(), "opener: {st}; {lines:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().expect("flipper");
    // Not asserted (a scheduling matter), but shown: how many opens faulted mid-way.
    eprintln!("faults contained in the openers: {faults}");
    drop(v);
    shmring::shm::unlink(&name).expect("unlink");
}

// ---------------------------------------------------------------------------------------
// A SIGBUS outside shmring's mappings keeps its default action.

/// The user's own SIGBUS handler of the `chained-fault` role: exit with a code the
/// parent recognises.
extern "C" fn user_handler(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(42) };
}

fn foreign_fault(chained: bool) -> Result<(), String> {
    if chained {
        // A handler of the user's, installed before shmring's: shmring must pass it the
        // faults that are not its own, and keep its own.
        // SAFETY: all-zero is a valid sigaction; the handler is async-signal-safe.
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = user_handler as *const () as usize;
        // SAFETY: valid pointers for the call.
        if unsafe { libc::sigaction(libc::SIGBUS, &act, std::ptr::null_mut()) } != 0 {
            return Err("sigaction".into());
        }
    }
    // A named segment: the containment handler is installed now.
    let name = unique_name("sigbus-foreign");
    let v = Value::create(&name, 0u64).map_err(err)?;
    // This process dies below: remove the name now (the mapping stays).
    shmring::shm::unlink(&name).map_err(err)?;
    assert!(shmring::shm::sigbus::handler_installed());
    // A fault on our own segment is still contained (not passed to the user's handler).
    rustix::fs::ftruncate(v.as_fd(), 0).map_err(err)?;
    v.store(1);
    if shmring::shm::sigbus::contained_faults() != 1 || !v.is_poisoned() {
        return Err("the fault on the shmring mapping was not contained".into());
    }
    // A mapping of our own file (not shmring's), then truncated under it.
    let fd = rustix::fs::memfd_create("not-shmring", rustix::fs::MemfdFlags::CLOEXEC).map_err(err)?;
    rustix::fs::ftruncate(&fd, 8192).map_err(err)?;
    // SAFETY: a fresh shared mapping of our own memfd; the pointer is used only below.
    let p = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            8192,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::SHARED,
            &fd,
            0,
        )
    }
    .map_err(err)?;
    rustix::fs::ftruncate(&fd, 0).map_err(err)?;
    say("faulting");
    // SAFETY: the address is mapped (its page lies beyond the file's end: SIGBUS).
    let x = unsafe { std::ptr::read_volatile(p.cast::<u8>().add(4096)) };
    Err(format!("read {x} past the end of a truncated file without SIGBUS"))
}

#[test]
fn foreign_sigbus_still_kills() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("foreign SIGBUS", Duration::from_secs(60));
    let mut p = Peer::spawn("foreign_sigbus_still_kills", "foreign-fault", &[]);
    p.expect("faulting", Duration::from_secs(30));
    let (st, lines) = p.exit(Duration::from_secs(30));
    assert_eq!(st.signal(), Some(libc::SIGBUS), "{st}; {lines:?}");
}

#[test]
fn foreign_sigbus_reaches_an_earlier_handler() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("foreign SIGBUS, chained", Duration::from_secs(60));
    let mut p = Peer::spawn("foreign_sigbus_reaches_an_earlier_handler", "chained-fault", &[]);
    p.expect("faulting", Duration::from_secs(30));
    let (st, lines) = p.exit(Duration::from_secs(30));
    assert_eq!(st.code(), Some(42), "{st}; {lines:?}");
}
