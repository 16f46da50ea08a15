//! The `sync_image` fuzz target: the state words of a synchronization object or a
//! Value/Array overwritten with arbitrary bytes, then opened and driven with timed
//! calls.
//!
//! Input: byte 0 picks the kind ([`KINDS`]), byte 1 seeds the order of the calls, the
//! rest is written over the start of the object's area (its state words: lock word,
//! counts, flags, generation, sequence; at most the area's size) of a fresh anonymous
//! object. The patched object is then opened again from its descriptor (the open-time
//! checks: a bound or a parties word that disagrees with the header) and driven through
//! its calls, each with a timeout of a few milliseconds. None may panic or crash; a
//! timed call must return (a hang is caught by the fuzzer's timeout, and by
//! [`LIMIT`] here); only the results the docs list may come back.
//!
//! The blocking calls of a Value/Array wait behind the writer lock when its word names
//! a live thread (a stalled writer and such a word look the same, by design): they run
//! only when the patched word names no live thread.

use crate::sync::owner::Owner;
use crate::sync::{
    AcquireError, Barrier, BarrierError, BoundedSemaphore, Condition, Event, LockError, Mutex, RLock, Semaphore,
};
use crate::value::{Array, Value};
use rustix::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The kinds, in the order byte 0 selects them.
pub const KINDS: [&str; 9] = [
    "mutex",
    "rlock",
    "semaphore",
    "bounded",
    "event",
    "condition",
    "barrier",
    "value",
    "array",
];

/// Timeout of every timed call.
const T: Duration = Duration::from_millis(2);
/// A timed call that has not returned after this long is a hang (far beyond `T` plus a
/// liveness interval: only a wait that ignores its deadline gets there).
const LIMIT: Duration = Duration::from_secs(10);

/// Run `f` (one timed call) and check it returned in bounded time.
fn timed<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let r = f();
    assert!(start.elapsed() < LIMIT, "{what} waited {:?}", start.elapsed());
    r
}

/// Overwrite the first bytes of the area at `area` (of `size` bytes) with `bytes`, in
/// 4-byte atomic stores (every area is 4-aligned and a multiple of 4 long).
///
/// # Safety
///
/// `area` points to `size` bytes of a live mapping, 4-aligned, accessed by everyone
/// through atomics only.
unsafe fn patch_area(area: *const u8, size: usize, bytes: &[u8]) {
    for (i, c) in bytes.chunks(4).take(size / 4).enumerate() {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        // SAFETY: i * 4 + 4 <= size (take(size / 4)), 4-aligned: from the caller.
        let a = unsafe { AtomicU32::from_ptr(area.add(i * 4) as *mut u32) };
        a.store(u32::from_le_bytes(w), Ordering::Relaxed);
    }
}

/// The lock outcomes the docs list; a guard taken from a dead owner is marked
/// consistent.
fn lock_ok<G>(r: Result<G, LockError<G>>, consistent: impl FnOnce(&G)) -> Option<G> {
    match r {
        Ok(g) => Some(g),
        Err(LockError::OwnerDied(d)) => {
            let g = d.into_inner();
            consistent(&g);
            Some(g)
        }
        Err(LockError::Timeout | LockError::WouldBlock | LockError::Corrupted | LockError::Interrupted) => None,
    }
}

/// Reopen `h` from its descriptor (the open path's checks on the patched words).
macro_rules! reopen {
    ($ty:ty, $h:expr) => {
        match $h.as_fd().try_clone_to_owned().map(<$ty>::from_fd) {
            Ok(Ok(o)) => o,
            // A refused open (parameters that disagree with the header) is documented.
            _ => return,
        }
    };
}

/// One input: see the module docs.
pub fn sync_image(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let (order, bytes) = rest.split_first().map_or((0, &[][..]), |(o, b)| (*o, b));
    let bytes = &bytes[..bytes.len().min(4096)];
    match KINDS[usize::from(kind) % KINDS.len()] {
        "mutex" => {
            let Ok(m) = Mutex::anonymous(0u64) else { return };
            // SAFETY: the area is the RawMutex (24 bytes) and the u64.
            unsafe { patch_area(m.mapped().get() as *const _ as *const u8, 32, bytes) };
            let o = reopen!(Mutex<u64>, m);
            for i in 0..4u8 {
                let r = if (order >> i) & 1 == 0 {
                    timed("Mutex::lock_timeout", || o.lock_timeout(T))
                } else {
                    o.try_lock()
                };
                if let Some(mut g) = lock_ok(r, |g| g.mark_consistent()) {
                    *g = g.wrapping_add(1);
                }
            }
        }
        "rlock" => {
            let Ok(l) = RLock::anonymous() else { return };
            // SAFETY: the area is the RawMutex (24 bytes).
            unsafe { patch_area(l.raw() as *const _ as *const u8, 24, bytes) };
            let o = reopen!(RLock, l);
            if let Some(outer) = lock_ok(timed("RLock::lock_timeout", || o.lock_timeout(T)), |g| {
                g.mark_consistent()
            }) {
                let inner = lock_ok(timed("RLock::lock_timeout", || o.lock_timeout(T)), |g| {
                    g.mark_consistent()
                });
                if order & 1 == 0 {
                    drop(inner);
                    drop(outer);
                } else {
                    drop(outer);
                    drop(inner);
                }
            }
            // The last guard released it (or it was never ours): a second party gets it
            // unless the word names a thread that is alive.
            drop(lock_ok(timed("RLock::lock_timeout", || o.lock_timeout(T)), |g| {
                g.mark_consistent()
            }));
        }
        "semaphore" | "bounded" => {
            let bounded = usize::from(kind) % KINDS.len() == 3;
            let run = |acq: &dyn Fn() -> Result<(), AcquireError>,
                       try_acq: &dyn Fn() -> Result<(), AcquireError>,
                       rel: &dyn Fn()| {
                for i in 0..4u8 {
                    let r = if (order >> i) & 1 == 0 {
                        timed("Semaphore::acquire_timeout", acq)
                    } else {
                        try_acq()
                    };
                    if r.is_ok() && (order >> (i + 4)) & 1 == 0 {
                        rel();
                    }
                }
            };
            if bounded {
                let Ok(s) = BoundedSemaphore::anonymous(2) else { return };
                // SAFETY: the area is the RawSemaphore (16 bytes).
                unsafe { patch_area(s.raw() as *const _ as *const u8, 16, bytes) };
                let o = reopen!(BoundedSemaphore, s);
                run(&|| o.acquire_timeout(T), &|| o.try_acquire(), &|| {
                    let _ = o.release(1);
                });
            } else {
                let Ok(s) = Semaphore::anonymous(2) else { return };
                // SAFETY: as above.
                unsafe { patch_area(s.raw() as *const _ as *const u8, 16, bytes) };
                let o = reopen!(Semaphore, s);
                run(&|| o.acquire_timeout(T), &|| o.try_acquire(), &|| {
                    let _ = o.release(1);
                });
            }
        }
        "event" => {
            let Ok(e) = Event::anonymous() else { return };
            // SAFETY: the area is the RawEvent (8 bytes).
            unsafe { patch_area(e.raw() as *const _ as *const u8, 8, bytes) };
            let o = reopen!(Event, e);
            let was_set = o.is_set();
            let r = timed("Event::wait_timeout", || o.wait_timeout(T));
            // A set flag is seen at once; a clear one may still "wake" (garbage moved
            // the generation), never hang.
            assert!(!was_set || r, "a set event's wait_timeout returned false");
            if order & 1 == 0 {
                o.set();
                assert!(timed("Event::wait", || o.wait()), "wait on a set event");
            }
            o.clear();
            timed("Event::wait_timeout", || o.wait_timeout(T));
        }
        "condition" => {
            let Ok(c) = Condition::anonymous(0u64) else { return };
            // SAFETY: the area is the RawCondvar (8 bytes), the RawMutex (24) and a u64.
            unsafe { patch_area(c.mapped().get() as *const _ as *const u8, 40, bytes) };
            let o = reopen!(Condition<u64>, c);
            o.notify_all();
            if let Some(g) = lock_ok(timed("Condition::lock_timeout", || o.lock_timeout(T)), |g| {
                g.mark_consistent()
            }) {
                let r = timed("Condition::wait_timeout", || o.wait_timeout(g, T));
                if let Err(d) = r {
                    d.into_inner().0.mark_consistent();
                }
            }
        }
        "barrier" => {
            let Ok(b) = Barrier::anonymous(2) else { return };
            // SAFETY: the area is the RawBarrier (768 bytes).
            unsafe { patch_area(b.raw() as *const _ as *const u8, 768, bytes) };
            let o = reopen!(Barrier, b);
            for i in 0..3u8 {
                match timed("Barrier::wait_timeout", || o.wait_timeout(T)) {
                    // Alone with 2 parties, a release needs a patched count (a peer's
                    // arrival): fine.
                    Ok(_) | Err(BarrierError::Timeout | BarrierError::Broken | BarrierError::Corrupted(_)) => {}
                    Err(_) => {}
                }
                if (order >> i) & 1 == 0 {
                    o.reset();
                } else {
                    o.abort();
                }
            }
        }
        "value" => {
            let Ok(v) = Value::anonymous([0u64; 3]) else { return };
            let head = v.mapped().get() as *const _ as *const u8;
            // SAFETY: the area is the seqlock's line (128 bytes), then 24 data bytes.
            unsafe { patch_area(head, 128 + 24, bytes) };
            let o = reopen!(Value<[u64; 3]>, v);
            if lock_word_is_live(head) {
                return;
            }
            let _ = timed("Value::load_checked", || o.load_checked());
            if order & 1 == 0 {
                timed("Value::store", || o.store([1, 2, 3]));
                assert_eq!(o.load_checked(), Ok([1, 2, 3]), "a whole store clears torn");
            } else {
                let mut g = timed("Value::get_lock", || o.get_lock());
                g[0] = 7;
            }
            let _ = timed("Value::load", || o.load());
        }
        "array" => {
            let Ok(a) = Array::anonymous(&[0u64; 4]) else { return };
            let head = a.mapped().get() as *const _ as *const u8;
            // SAFETY: the area is the seqlock's line (128 bytes), then 32 data bytes.
            unsafe { patch_area(head, 128 + 32, bytes) };
            let o = reopen!(Array<u64>, a);
            if lock_word_is_live(head) {
                return;
            }
            let _ = timed("Array::to_vec_checked", || o.to_vec_checked());
            assert!(o.fetch_add(usize::from(order) % 4, 1).is_ok());
            assert!(o.get(4).is_err(), "index past the end");
            timed("Array::copy_from_slice", || o.copy_from_slice(&[5; 4])).unwrap();
            assert_eq!(o.to_vec_checked(), Ok(vec![5; 4]), "a whole write clears torn");
        }
        _ => unreachable!("KINDS has 9 entries"),
    }
}

/// Whether the writer lock word at the start of a Value/Array area names a live thread
/// (whom the blocking calls would wait for, by design).
fn lock_word_is_live(head: *const u8) -> bool {
    // SAFETY: the area starts with the RawMutex's 8-byte, 8-aligned word.
    let w = unsafe { std::sync::atomic::AtomicU64::from_ptr(head as *mut u64) }.load(Ordering::Relaxed);
    let owner = w & !(1 << 63);
    owner != 0 && !Owner(owner).is_dead()
}
