//! Loom models of the robust mutex's lock protocol (`shmring::sync::mutex` module docs):
//! mutual exclusion (the protected cell is a loom `UnsafeCell`, so a concurrent access is
//! reported) and no lost wake-up when a locker sleeps (the futex model ignores timeouts:
//! a missed wake leaves the sleeper blocked forever, which loom reports as a deadlock).

mod common;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use shmring::ring::spsc::loom_break::{self, LoomBreak};
use shmring::sync::RawMutex;
use std::mem::ManuallyDrop;

struct Shared {
    lock: RawMutex,
    count: UnsafeCell<u32>,
}

// SAFETY: `count` is only accessed by the holder of `lock` (which is what the model checks).
unsafe impl Sync for Shared {}

fn increment(s: &Shared) {
    s.lock.lock().expect("no owner dies in the model");
    // SAFETY: we hold the lock; loom reports it if another thread accesses the cell
    // concurrently.
    s.count.with_mut(|c| unsafe { *c += 1 });
    // SAFETY: this thread holds the lock.
    unsafe { s.lock.unlock() };
}

/// Two lockers and the main thread contend; every increment is kept.
fn contended_model() {
    let s = ManuallyDrop::new(Arc::new(Shared {
        lock: RawMutex::new(),
        count: UnsafeCell::new(0),
    }));
    let ts: Vec<_> = (0..2).map(|_| common::spawn(&s, increment)).collect();
    for t in ts {
        common::join(t);
    }
    s.lock.lock().unwrap();
    // SAFETY: we hold the lock and every other thread has finished.
    assert_eq!(s.count.with(|c| unsafe { *c }), 2);
    // SAFETY: this thread holds the lock.
    unsafe { s.lock.unlock() };
    drop(ManuallyDrop::into_inner(s));
}

#[test]
fn mutex_excludes_and_never_loses_a_wakeup() {
    common::check("mutex_excludes_and_never_loses_a_wakeup", contended_model);
}

/// A holder keeps the lock while another thread sleeps on it, then hands it over.
fn handoff_model() {
    let s = ManuallyDrop::new(Arc::new(Shared {
        lock: RawMutex::new(),
        count: UnsafeCell::new(0),
    }));
    let a = common::spawn(&s, |s| {
        increment(s);
        increment(s);
    });
    let b = common::spawn(&s, increment);
    common::join(a);
    common::join(b);
    // SAFETY: every other thread has finished.
    assert_eq!(s.count.with(|c| unsafe { *c }), 3);
    drop(ManuallyDrop::into_inner(s));
}

#[test]
fn mutex_handoff_to_a_sleeper() {
    common::check("mutex_handoff_to_a_sleeper", handoff_model);
}

/// The sleeper does not set the WAITERS bit: the holder's unlock does not wake it, and it
/// sleeps forever.
#[test]
#[should_panic(expected = "deadlock")]
fn mutex_model_catches_missing_waiters_bit() {
    let _bug = loom_break::set(LoomBreak::MutexWaitersBitSkipped);
    common::check("mutex_model_catches_missing_waiters_bit", handoff_model);
}
