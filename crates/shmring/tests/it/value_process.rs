//! Cross-process tests of the typed shared cells (`shmring::value`): the test binary
//! re-executes itself as the other processes (`common::spawn_peer`), every test under a
//! watchdog.

use crate::common;

use common::peer::*;
use common::*;
use shmring::Error;
use shmring::value::{Array, RawArray, RawValue, Torn, Value};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// The peer roles, dispatched from whichever test re-executed the binary.
fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "wide-writer" => wide_writer_peer(),
        "wide-reader" => wide_reader_peer(),
        "adder" => adder_peer(),
        "compound" => compound_peer(),
        "array-adder" => array_adder_peer(),
        "array-locker" => array_locker_peer(),
        "opener" => opener_peer(),
        "stalled-writer" => stalled_writer_peer(),
        "blocked-reader" => blocked_reader_peer(),
        "guard-holder" => guard_holder_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A non-close-on-exec duplicate of `fd`, for a child to inherit.
fn pass(fd: impl std::os::fd::AsFd) -> OwnedFd {
    inheritable(&rustix::io::fcntl_dupfd_cloexec(fd, 3).expect("dup"))
}

// ---------------------------------------------------------------------------------------
// A writer and 2 readers of a 64-byte seqlock value: no reader ever sees a mixed array.

const READS: u64 = 1_000_000;
const MIN_DISTINCT: u64 = 1_000;

/// Store [i; 8] for i = 1, 2, ... until the stop flag is set; report the count.
fn wide_writer_peer() -> Result<(), String> {
    let v = Value::<[u64; 8]>::from_fd(fd_from_env("VALUE_FD")).map_err(err)?;
    let stop = RawValue::<u32>::from_fd(fd_from_env("STOP_FD")).map_err(err)?;
    let mut i = 0u64;
    while stop.load() == 0 {
        i += 1;
        v.store([i; 8]);
        if i == 1 {
            say("writing");
        }
    }
    say(&format!("wrote {i}"));
    Ok(())
}

/// At least one million loads, and more until it has seen [`MIN_DISTINCT`] distinct
/// values (on 2 busy cores a million reads can fit in a few of the writer's time
/// slices), for at most 60 s: every one whole, none going backwards. Reports the reads
/// and the distinct values seen.
fn wide_reader_peer() -> Result<(), String> {
    let v = Value::<[u64; 8]>::from_fd(fd_from_env("VALUE_FD")).map_err(err)?;
    let mut last = 0u64;
    let mut distinct = 0u64;
    let start = Instant::now();
    let mut n = 0u64;
    while n < READS || (distinct < MIN_DISTINCT && start.elapsed() < Duration::from_secs(60)) {
        n += 1;
        let x = v
            .load_checked()
            .map_err(|t| format!("read {n}: flagged torn {:?}", t.0))?;
        if x.iter().any(|e| *e != x[0]) {
            return Err(format!("read {n}: mixed array {x:?}"));
        }
        if x[0] < last {
            return Err(format!("read {n}: went backwards from {last} to {}", x[0]));
        }
        if x[0] != last {
            distinct += 1;
            last = x[0];
        }
    }
    say(&format!("reads {n} distinct {distinct}"));
    Ok(())
}

#[test]
fn two_reader_processes_never_see_a_mixed_wide_value() {
    common::dispatch(run_peer);
    let _w = Watchdog::new(
        "two_reader_processes_never_see_a_mixed_wide_value",
        Duration::from_secs(240),
    );
    let test = "two_reader_processes_never_see_a_mixed_wide_value";
    let v = Value::anonymous([0u64; 8]).unwrap();
    let stop = RawValue::anonymous(0u32).unwrap();
    let (vfd, sfd) = (pass(&v), pass(&stop));
    let mut writer = Peer::spawn(
        test,
        "wide-writer",
        &[("VALUE_FD", fd_string(&vfd)), ("STOP_FD", fd_string(&sfd))],
    );
    writer.expect("writing", Duration::from_secs(30));
    let readers: Vec<_> = (0..2)
        .map(|_| Peer::spawn(test, "wide-reader", &[("VALUE_FD", fd_string(&vfd))]))
        .collect();
    for r in readers {
        let lines = r.finish(Duration::from_secs(200));
        let distinct: u64 = lines
            .iter()
            .find_map(|l| l.split_once("distinct ").map(|(_, n)| n))
            .expect("distinct line")
            .parse()
            .unwrap();
        let reads = lines.iter().find_map(|l| l.split_once("reads ")).expect("reads line").1;
        eprintln!("reader: reads {reads}");
        assert!(
            distinct >= MIN_DISTINCT,
            "the reader saw only {distinct} distinct values: the check could not fail"
        );
    }
    stop.store(1);
    let lines = writer.finish(Duration::from_secs(30));
    eprintln!("writer: {lines:?}");
    let x = v.load_checked().unwrap();
    assert!(x.iter().all(|e| *e == x[0]) && x[0] > 0);
}

// ---------------------------------------------------------------------------------------
// Lock-free fetch_add from 4 processes

const ADDS: u64 = 100_000;

fn adder_peer() -> Result<(), String> {
    let v = Value::<u64>::from_fd(fd_from_env("VALUE_FD")).map_err(err)?;
    let small = RawValue::<u16>::from_fd(fd_from_env("SMALL_FD")).map_err(err)?;
    for _ in 0..ADDS {
        v.fetch_add(1);
        small.fetch_add(1);
    }
    Ok(())
}

#[test]
fn four_processes_fetch_add_exactly() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("four_processes_fetch_add_exactly", Duration::from_secs(180));
    let v = Value::anonymous(0u64).unwrap();
    // A 16-bit lane: its fetch_add is a compare-and-swap loop on the word.
    let small = RawValue::anonymous(0u16).unwrap();
    let (vfd, sfd) = (pass(&v), pass(&small));
    let peers: Vec<_> = (0..4)
        .map(|_| {
            Peer::spawn(
                "four_processes_fetch_add_exactly",
                "adder",
                &[("VALUE_FD", fd_string(&vfd)), ("SMALL_FD", fd_string(&sfd))],
            )
        })
        .collect();
    for p in peers {
        p.finish(Duration::from_secs(170));
    }
    assert_eq!(v.load(), 4 * ADDS);
    assert_eq!(small.load(), (4 * ADDS % 65_536) as u16);
}

// ---------------------------------------------------------------------------------------
// get_lock() compound update across processes

const COMPOUND: u64 = 20_000;

/// A read-modify-write of two words that only exclusion keeps exact: after n updates the
/// value is [n, n * (n - 1) / 2].
fn compound_peer() -> Result<(), String> {
    let v = Value::<[u64; 2]>::open(&env_str("VALUE")).map_err(err)?;
    for _ in 0..COMPOUND {
        let mut g = v.get_lock();
        let [n, sum] = *g;
        *g = [n + 1, sum + n];
    }
    Ok(())
}

#[test]
fn get_lock_compound_updates_are_exclusive_across_processes() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("get_lock_compound_updates", Duration::from_secs(180));
    let name = unique_name("value-compound");
    let v = Value::create(&name, [0u64; 2]).unwrap();
    let peers: Vec<_> = (0..3)
        .map(|_| {
            Peer::spawn(
                "get_lock_compound_updates_are_exclusive_across_processes",
                "compound",
                &[("VALUE", name.clone())],
            )
        })
        .collect();
    // Meanwhile this process reads: every value is one complete update.
    let start = Instant::now();
    while v.load()[0] < 3 * COMPOUND && start.elapsed() < Duration::from_secs(150) {
        let [n, sum] = v.load();
        assert_eq!(sum, n * n.saturating_sub(1) / 2, "mixed value");
        std::thread::sleep(Duration::from_micros(50));
    }
    for p in peers {
        p.finish(Duration::from_secs(170));
    }
    let n = 3 * COMPOUND;
    assert_eq!(v.load(), [n, n * (n - 1) / 2]);
}

// ---------------------------------------------------------------------------------------
// Array<u32>: per-element fetch_add, then lock() slice updates, across processes

const ELEMS: usize = 8;
const ARRAY_ADDS: usize = 40_000;
const LOCKS: u32 = 2_000;

fn array_adder_peer() -> Result<(), String> {
    let a = Array::<u32>::open(&env_str("ARRAY")).map_err(err)?;
    for k in 0..ARRAY_ADDS {
        a.fetch_add(k % ELEMS, 1).map_err(err)?;
    }
    Ok(())
}

fn array_locker_peer() -> Result<(), String> {
    let a = Array::<u32>::open(&env_str("ARRAY")).map_err(err)?;
    for _ in 0..LOCKS {
        let mut g = a.lock();
        for x in g.iter_mut() {
            *x += 1;
        }
    }
    Ok(())
}

#[test]
fn array_fetch_add_and_lock_across_processes() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("array_fetch_add_and_lock", Duration::from_secs(180));
    let test = "array_fetch_add_and_lock_across_processes";
    let name = unique_name("array-count");
    let a = Array::<u32>::create_zeroed(&name, ELEMS).unwrap();
    let peers: Vec<_> = (0..4)
        .map(|_| Peer::spawn(test, "array-adder", &[("ARRAY", name.clone())]))
        .collect();
    for p in peers {
        p.finish(Duration::from_secs(170));
    }
    let each = (4 * ARRAY_ADDS / ELEMS) as u32;
    assert_eq!(a.to_vec(), [each; ELEMS]);
    // Guards update every element at once: a snapshot never sees them differ.
    let peers: Vec<_> = (0..4)
        .map(|_| Peer::spawn(test, "array-locker", &[("ARRAY", name.clone())]))
        .collect();
    let mut snapshots = 0u64;
    let start = Instant::now();
    while a.get(0).unwrap() < each + 4 * LOCKS && start.elapsed() < Duration::from_secs(150) {
        let v = a.to_vec_checked().expect("nobody died");
        assert!(v.iter().all(|x| *x == v[0]), "mixed snapshot {v:?}");
        snapshots += 1;
    }
    for p in peers {
        p.finish(Duration::from_secs(170));
    }
    eprintln!("{snapshots} consistent snapshots");
    assert_eq!(a.to_vec(), [each + 4 * LOCKS; ELEMS]);
}

// ---------------------------------------------------------------------------------------
// Opening by name from another process; the wrong type is an error there

fn opener_peer() -> Result<(), String> {
    let vname = env_str("VALUE");
    let aname = env_str("ARRAY");
    let v = Value::<[f64; 3]>::open(&vname).map_err(err)?;
    if v.load() != [1.0, 2.0, 3.0] {
        return Err(format!("value {:?}", v.load()));
    }
    v.store([4.0, 5.0, 6.0]);
    let a = RawArray::<i16>::open(&aname).map_err(err)?;
    a.fetch_sub(1, 100).map_err(err)?;
    let wrong: Vec<(&str, bool)> = vec![
        ("Value<[f32; 6]>", Value::<[f32; 6]>::open(&vname).is_err()),
        ("Value<[u64; 3]>", Value::<[u64; 3]>::open(&vname).is_err()),
        ("RawValue<[f64; 3]>", RawValue::<[f64; 3]>::open(&vname).is_err()),
        ("Array<[f64; 3]>", Array::<[f64; 3]>::open(&vname).is_err()),
        ("RawArray<u16>", RawArray::<u16>::open(&aname).is_err()),
        ("Array<i16>", Array::<i16>::open(&aname).is_err()),
        ("Value<i16>", Value::<i16>::open(&aname).is_err()),
    ];
    for (what, refused) in wrong {
        if !refused {
            return Err(format!("opened as {what}"));
        }
    }
    say("checked");
    Ok(())
}

#[test]
fn open_by_name_from_another_process_and_wrong_type_is_an_error() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("open_by_name", Duration::from_secs(60));
    let vname = unique_name("value-open");
    let aname = unique_name("array-open");
    let v = Value::create(&vname, [1.0f64, 2.0, 3.0]).unwrap();
    let a = RawArray::create(&aname, &[1i16, 2, 3]).unwrap();
    let p = Peer::spawn(
        "open_by_name_from_another_process_and_wrong_type_is_an_error",
        "opener",
        &[("VALUE", vname.clone()), ("ARRAY", aname.clone())],
    );
    let lines = p.finish(Duration::from_secs(50));
    assert!(lines.iter().any(|l| l.ends_with("checked")), "{lines:?}");
    assert_eq!(v.load(), [4.0, 5.0, 6.0]);
    assert_eq!(a.to_vec(), [1, -98, 3]);
}

// ---------------------------------------------------------------------------------------
// kill -9 of a writer stopped in the middle of a store

/// Open the value, start a store of [2; 8] and stop after half the words, holding the
/// writer lock, until killed.
fn stalled_writer_peer() -> Result<(), String> {
    let v = Value::<[u64; 8]>::open(&env_str("VALUE")).map_err(err)?;
    v.abandon_store_midway([2; 8]);
    say("stopped");
    std::thread::sleep(Duration::from_secs(600));
    Err("not killed".into())
}

/// Read once (blocked while the stalled writer lives), then report what it got.
fn blocked_reader_peer() -> Result<(), String> {
    let v = Value::<[u64; 8]>::open(&env_str("VALUE")).map_err(err)?;
    say("reading");
    let start = Instant::now();
    match v.load_checked() {
        Err(Torn(x)) => {
            say(&format!("torn {x:?} after {:?}", start.elapsed()));
            Ok(())
        }
        Ok(x) => Err(format!("read {x:?} without the torn flag")),
    }
}

#[test]
fn killed_writer_mid_store_readers_recover_with_torn_flag() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("killed_writer_mid_store", Duration::from_secs(90));
    let test = "killed_writer_mid_store_readers_recover_with_torn_flag";
    let name = unique_name("value-kill");
    let v = Value::create(&name, [1u64; 8]).unwrap();
    let mut writer = Peer::spawn(test, "stalled-writer", &[("VALUE", name.clone())]);
    writer.expect("stopped", Duration::from_secs(30));
    let mut readers: Vec<_> = (0..2)
        .map(|_| Peer::spawn(test, "blocked-reader", &[("VALUE", name.clone())]))
        .collect();
    for r in &mut readers {
        r.expect("reading", Duration::from_secs(30));
    }
    // The writer is alive: the readers wait for it (asleep on the lock, not spinning).
    std::thread::sleep(Duration::from_millis(300));
    writer.kill9();
    let killed = Instant::now();
    let half = [2, 2, 2, 2, 1, 1, 1, 1];
    for r in readers {
        let lines = r.finish(Duration::from_secs(30));
        let line = lines.iter().find_map(|l| l.split_once("torn ")).expect("torn line").1;
        eprintln!("reader: torn {line}");
        assert!(line.starts_with(&format!("{half:?}")), "{line}");
    }
    eprintln!("both readers recovered {:?} after the kill", killed.elapsed());
    // Flagged for every reader until a complete store.
    assert!(v.is_torn());
    assert_eq!(v.load(), half);
    assert_eq!(v.load_checked(), Err(Torn(half)));
    v.store([3; 8]);
    assert_eq!(v.load_checked(), Ok([3; 8]));
}

/// Lock the array, change the copy, and hold the guard until killed.
fn guard_holder_peer() -> Result<(), String> {
    let a = Array::<[u32; 3]>::open(&env_str("ARRAY")).map_err(err)?;
    let mut g = a.lock();
    g[0] = [9; 3];
    say("locked");
    std::thread::sleep(Duration::from_secs(600));
    Err("not killed".into())
}

#[test]
fn killed_guard_holder_changes_nothing() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("killed_guard_holder", Duration::from_secs(60));
    let name = unique_name("array-kill");
    let a = Array::create(&name, &[[1u32; 3], [2; 3]]).unwrap();
    let mut p = Peer::spawn(
        "killed_guard_holder_changes_nothing",
        "guard-holder",
        &[("ARRAY", name.clone())],
    );
    p.expect("locked", Duration::from_secs(30));
    p.kill9();
    // The next writer recovers the lock; the dead holder's copy was never written back.
    a.set(1, [5; 3]).unwrap();
    assert_eq!(a.to_vec_checked(), Ok(vec![[1; 3], [5; 3]]));
}

// ---------------------------------------------------------------------------------------
// Corrupted header parameters

/// Overwrite parameter word `i` of the named segment's header.
fn poke_param(name: &str, i: usize, v: u64) {
    poke(name, 64 + 8 * i as u64, &v.to_le_bytes());
}

/// Overwrite the named segment's bytes at `offset`.
fn poke(name: &str, offset: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn corrupted_length_and_params_are_errors() {
    common::dispatch(run_peer);
    let _w = Watchdog::new("corrupted_params", Duration::from_secs(60));
    let name = unique_name("array-corrupt");
    let a = Array::create(&name, &[1u32, 2, 3, 4]).unwrap();
    let corrupted = |r: shmring::Result<Array<u32>>| matches!(r, Err(Error::Corrupted { .. }));
    // A length beyond the file, an overflowing length, a length that disagrees with the
    // area size word, and a wrong area size.
    for bad in [5, 1 << 40, u64::MAX, 2] {
        poke_param(&name, 2, bad);
        assert!(corrupted(Array::<u32>::open(&name)), "length {bad} accepted");
    }
    poke_param(&name, 2, 4);
    assert_eq!(Array::<u32>::open(&name).unwrap().to_vec(), [1, 2, 3, 4]);
    poke_param(&name, 6, 1 << 20);
    assert!(corrupted(Array::<u32>::open(&name)));
    poke_param(&name, 6, 128 + 16);
    // The flavor word: refused as the wrong flavor.
    poke_param(&name, 3, 7);
    assert!(matches!(Array::<u32>::open(&name), Err(Error::InvalidArgument(_))));
    poke_param(&name, 3, 1);
    // The type is checked against the type record after the header (shm::shape; header
    // word 1 only repeats its fingerprint, for tools): another fingerprint is the wrong
    // type, a rendering longer than the record is corrupted.
    let record = shmring::shm::HEADER_SIZE as u64;
    poke(&name, record, &0xdead_u64.to_le_bytes());
    assert!(matches!(Array::<u32>::open(&name), Err(Error::WrongType { .. })));
    poke(&name, record + 56, &1000u32.to_le_bytes());
    assert!(corrupted(Array::<u32>::open(&name)));
    drop(a);

    let name = unique_name("value-corrupt");
    let v = Value::create(&name, [7u64; 3]).unwrap();
    // A value's segment is an array segment of length 1: the area is the array head's
    // line (128 bytes) and the 24 bytes of the element.
    poke_param(&name, 6, 8);
    assert!(matches!(Value::<[u64; 3]>::open(&name), Err(Error::Corrupted { .. })));
    poke_param(&name, 6, 128 + 24);
    assert_eq!(Value::<[u64; 3]>::open(&name).unwrap().load(), [7; 3]);
    // The length word: a value is one element, anything else is corrupted.
    poke_param(&name, 2, 9);
    assert!(matches!(Value::<[u64; 3]>::open(&name), Err(Error::Corrupted { .. })));
    poke_param(&name, 2, 1);
    // The flavor word: refused as the wrong flavor.
    poke_param(&name, 3, 9);
    assert!(matches!(Value::<[u64; 3]>::open(&name), Err(Error::InvalidArgument(_))));
    poke_param(&name, 3, 1);
    assert_eq!(Value::<[u64; 3]>::open(&name).unwrap().load(), [7; 3]);
    drop(v);
}
