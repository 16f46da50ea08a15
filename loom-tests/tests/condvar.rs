//! Loom models of the condition variable (`shmring::sync::condvar` module docs): a
//! waiter that checks its predicate under the mutex and sleeps is always woken by a
//! notifier that changed the state under the mutex — with `notify_one`, and with
//! `notify_all` from the mutex's holder (the requeue path, modelled as a wake-all).

mod common;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use shmring::ring::spsc::loom_break::{self, LoomBreak};
use shmring::sync::{RawCondvar, RawMutex};
use std::mem::ManuallyDrop;

struct Shared {
    lock: RawMutex,
    cv: RawCondvar,
    ready: UnsafeCell<bool>,
}

// SAFETY: `ready` is only accessed by the holder of `lock`.
unsafe impl Sync for Shared {}

fn waiter(s: &Shared) {
    s.lock.lock().unwrap();
    // SAFETY (both closures): we hold the lock whenever `ready` is read.
    while !s.ready.with(|r| unsafe { *r }) {
        // SAFETY: this thread holds `lock`; no reference into `ready` is kept.
        unsafe { s.cv.wait_until(&s.lock, None) }.unwrap();
    }
    // SAFETY: this thread holds the lock.
    unsafe { s.lock.unlock() };
}

fn model(notify_all_holding: bool) {
    let s = ManuallyDrop::new(Arc::new(Shared {
        lock: RawMutex::new(),
        cv: RawCondvar::new(),
        ready: UnsafeCell::new(false),
    }));
    let w = common::spawn(&s, waiter);
    let n = common::spawn(&s, move |s| {
        s.lock.lock().unwrap();
        // SAFETY: we hold the lock.
        s.ready.with_mut(|r| unsafe { *r = true });
        if notify_all_holding {
            s.cv.notify_all(&s.lock);
            // SAFETY: this thread holds the lock.
            unsafe { s.lock.unlock() };
        } else {
            // SAFETY: this thread holds the lock.
            unsafe { s.lock.unlock() };
            s.cv.notify_one();
        }
    });
    common::join(w);
    common::join(n);
    drop(ManuallyDrop::into_inner(s));
}

#[test]
fn condvar_notify_one_after_unlock_wakes_the_waiter() {
    common::check("condvar_notify_one_after_unlock_wakes_the_waiter", || model(false));
}

#[test]
fn condvar_notify_all_holding_the_mutex_wakes_the_waiter() {
    common::check("condvar_notify_all_holding_the_mutex_wakes_the_waiter", || model(true));
}

/// The waiter counts itself after releasing the mutex: the notifier can find no waiter,
/// skip the wake, and leave the waiter asleep forever.
#[test]
#[should_panic(expected = "deadlock")]
fn condvar_model_catches_late_waiter_count() {
    let _bug = loom_break::set(LoomBreak::CondvarCountAfterUnlock);
    common::check("condvar_model_catches_late_waiter_count", || model(false));
}
