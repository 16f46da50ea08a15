//! Loom models of the semaphore protocol (`shmring::sync::semaphore` module docs): a
//! sleeper in `acquire` must be woken by a `release`, permits are never handed out twice,
//! and a holder's writes are visible to the next holder. The futex is modelled after
//! shadow's vasi-sync with timeouts ignored, so a lost wake-up leaves a thread blocked
//! forever, which loom reports as a deadlock. All sides run as loom threads.

mod common;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use shmring::ring::spsc::loom_break::{self, LoomBreak};
use shmring::sync::{RawSemaphore, ReleaseError};

/// One thread sleeps in `acquire` on an empty semaphore while another releases.
fn wakeup_model() {
    let s = Arc::new(RawSemaphore::new(0));
    let s2 = s.clone();
    let acquirer = thread::spawn(move || s2.acquire().unwrap());
    let s3 = s.clone();
    let releaser = thread::spawn(move || s3.release(1).unwrap());
    acquirer.join().unwrap();
    releaser.join().unwrap();
    assert_eq!(s.value(), 0);
}

#[test]
fn acquire_is_woken_by_release() {
    common::check("semaphore_acquire_is_woken_by_release", wakeup_model);
}

/// The releaser skips its fence between the value's CAS and the load of `waiters`: it
/// may miss the sleeper's registration while the sleeper misses the new value.
#[test]
#[should_panic(expected = "deadlock")]
fn semaphore_model_catches_missing_waker_fence() {
    let _bug = loom_break::set(LoomBreak::WakerFenceSkipped);
    common::check("semaphore_model_catches_missing_waker_fence", wakeup_model);
}

/// Two sleepers, one `release(2)` that must wake both (a bounded semaphore: the release
/// of a third permit is refused).
#[test]
fn release_of_two_wakes_two_sleepers() {
    common::check("semaphore_release_of_two_wakes_two_sleepers", || {
        // Bounded by 2, taken down to 0 before the threads start.
        let s = Arc::new(RawSemaphore::bounded(2));
        s.try_acquire().unwrap();
        s.try_acquire().unwrap();
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || s.acquire().unwrap())
            })
            .collect();
        let s2 = s.clone();
        let releaser = thread::spawn(move || s2.release(2).unwrap());
        for t in sleepers {
            t.join().unwrap();
        }
        releaser.join().unwrap();
        assert_eq!(s.value(), 0);
        assert_eq!(s.release(3), Err(ReleaseError::AboveBound));
    });
}

/// A semaphore of one permit as a lock: two threads increment a tracked cell under it
/// (loom reports a data race if the permit's hand-off does not order the writes), and
/// the second may sleep until the first releases.
#[test]
fn one_permit_excludes_and_publishes() {
    common::check("semaphore_one_permit_excludes_and_publishes", || {
        let s = Arc::new(RawSemaphore::new(1));
        let cell = Arc::new(UnsafeCell::new(0u32));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (s, cell) = (s.clone(), cell.clone());
                thread::spawn(move || {
                    s.acquire().unwrap();
                    // SAFETY: the one permit is held: no other thread touches the cell.
                    cell.with_mut(|p| unsafe { *p += 1 });
                    s.release(1).unwrap();
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        // SAFETY: both threads are joined.
        assert_eq!(cell.with(|p| unsafe { *p }), 2);
        assert_eq!(s.value(), 1);
    });
}

/// Two sleepers and one releaser calling `release(1)` twice: each release wakes at most
/// one sleeper, and a woken sleeper may lose the permit to the other one, which must not
/// strand it (it sleeps again, and the second release wakes it). (With the releases in
/// two threads of their own the model takes ~230,000 executions, ~35 s: too long.)
#[test]
fn two_releases_of_one_wake_two_sleepers() {
    common::check("semaphore_two_releases_of_one_wake_two_sleepers", || {
        let s = Arc::new(RawSemaphore::new(0));
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || s.acquire().unwrap())
            })
            .collect();
        let s2 = s.clone();
        let releaser = thread::spawn(move || {
            s2.release(1).unwrap();
            s2.release(1).unwrap();
        });
        for t in sleepers {
            t.join().unwrap();
        }
        releaser.join().unwrap();
        assert_eq!(s.value(), 0);
    });
}
