//! Loom models of the event protocol (`shmring::sync::event` module docs): every waiter
//! asleep in `wait` must be woken by a `set`, including through a `clear`, and a waiter
//! sees the setter's writes. The futex is modelled after shadow's vasi-sync with timeouts
//! ignored, so a lost wake-up leaves a thread blocked forever, which loom reports as a
//! deadlock. All sides run as loom threads.

mod common;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use shmring::ring::spsc::loom_break::{self, LoomBreak};
use shmring::sync::RawEvent;

/// Two waiters and one setter; the setter's write before `set` is visible to both.
fn two_waiters_model() {
    let e = Arc::new(RawEvent::new());
    let data = Arc::new(UnsafeCell::new(0u32));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let (e, data) = (e.clone(), data.clone());
            thread::spawn(move || {
                e.wait();
                // SAFETY: written only before `set`, which `wait` is ordered after.
                assert_eq!(data.with(|p| unsafe { *p }), 7);
            })
        })
        .collect();
    let (e2, d2) = (e.clone(), data.clone());
    let setter = thread::spawn(move || {
        // SAFETY: the waiters read the cell only after `set`.
        d2.with_mut(|p| unsafe { *p = 7 });
        e2.set();
    });
    for t in waiters {
        t.join().unwrap();
    }
    setter.join().unwrap();
    assert!(e.is_set());
}

#[test]
fn set_wakes_every_waiter() {
    common::check("event_set_wakes_every_waiter", two_waiters_model);
}

/// One waiter and one setter: the smallest model the planted bug is checked against.
fn one_waiter_model() {
    let e = Arc::new(RawEvent::new());
    let e2 = e.clone();
    let waiter = thread::spawn(move || e2.wait());
    let e3 = e.clone();
    let setter = thread::spawn(move || e3.set());
    waiter.join().unwrap();
    setter.join().unwrap();
}

/// The setter skips its fence between the state's CAS and the load of `waiters`: it may
/// miss the sleeper's registration while the sleeper misses the flag.
#[test]
#[should_panic(expected = "deadlock")]
fn event_model_catches_missing_waker_fence() {
    let _bug = loom_break::set(LoomBreak::WakerFenceSkipped);
    common::check("event_model_catches_missing_waker_fence", one_waiter_model);
}

#[test]
fn set_wakes_one_waiter() {
    common::check("event_set_wakes_one_waiter", one_waiter_model);
}

/// set, clear, set while a thread waits: it returns in every interleaving (the final
/// state is set, and a pulse it slept through changed the generation).
#[test]
fn set_clear_set_never_strands_a_waiter() {
    common::check("event_set_clear_set_never_strands_a_waiter", || {
        let e = Arc::new(RawEvent::new());
        let e2 = e.clone();
        let waiter = thread::spawn(move || e2.wait());
        let e3 = e.clone();
        let setter = thread::spawn(move || {
            e3.set();
            e3.clear();
            e3.set();
        });
        waiter.join().unwrap();
        setter.join().unwrap();
        assert!(e.is_set());
    });
}
