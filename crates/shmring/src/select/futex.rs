//! Sleeping on many rings at once: the eventcount protocol of
//! [`WaitWord`](crate::sync::WaitWord) applied to every ring's word, with one
//! `futex_waitv` (see the [module docs](super) for the steps and why no wake-up is
//! lost). [`connection::wait`](crate::connection::wait) is this over pipes.

use super::RingWatch;
use crate::primitive::{self, Ordering};
use crate::sync::{Interrupted, LIVENESS_INTERVAL, WaitWord, interrupt};
use rustix::io::Errno;
use rustix::thread::futex;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::time::{Duration, Instant};

/// The most futexes one `futex_waitv` call accepts (`FUTEX_WAITV_MAX`).
pub(crate) const WAITV_MAX: usize = 128;
/// The nap between polls when `futex_waitv` cannot be used.
pub(crate) const NAP: Duration = Duration::from_millis(1);

/// Set once `futex_waitv` failed with something other than a wake-up, a timeout or a
/// signal (`ENOSYS` on old kernels): later waits nap instead.
pub(crate) static WAITV_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Whether `futex_waitv` is worth trying.
#[inline]
pub(crate) fn waitv_available() -> bool {
    // Relaxed: a hint; a stale `true` costs one more failing syscall.
    !WAITV_UNAVAILABLE.load(Ordering::Relaxed)
}

/// The indices of the ready rings.
pub(crate) fn ready(rings: &[&dyn RingWatch], check_liveness: bool) -> Vec<usize> {
    rings
        .iter()
        .enumerate()
        .filter(|(_, r)| r.ring_ready(check_liveness))
        .map(|(i, _)| i)
        .collect()
}

/// Wait until one of `rings` is ready or `deadline` passes; the ready ones (empty: the
/// deadline passed). Sleeps with `futex_waitv` when `waitv` is set (and possible), else
/// with naps; with `interruptible`, a pending interrupt ends it before a sleep. `tick`
/// says when the peers' liveness was last checked: the first look checks it if due, so
/// that a dead peer is reported even when another source is ready at every call.
pub(crate) fn wait(
    rings: &[&dyn RingWatch],
    deadline: Option<Instant>,
    mut waitv: bool,
    interruptible: bool,
    tick: &mut LivenessTick,
) -> Result<Vec<usize>, Interrupted> {
    let r = ready(rings, tick.due(Instant::now()));
    if !r.is_empty() {
        return Ok(r);
    }
    if rings.len() > WAITV_MAX {
        waitv = false;
    }
    loop {
        let now = Instant::now();
        let liveness = tick.due(now);
        let left = deadline.map(|d| d.saturating_duration_since(now));
        if left == Some(Duration::ZERO) {
            // A last look, which checks the peers' liveness the first time round (the
            // zero timeout of `poll`).
            return Ok(ready(rings, liveness));
        }
        if interruptible && interrupt::pending() {
            return Err(Interrupted);
        }
        let nap = left.map_or(LIVENESS_INTERVAL, |l| l.min(LIVENESS_INTERVAL));
        let r = if waitv {
            match sleep_round(rings, None, liveness, nap) {
                Some(r) => r,
                None => {
                    waitv = false;
                    continue;
                }
            }
        } else {
            let r = ready(rings, liveness);
            if r.is_empty() {
                std::thread::sleep(nap.min(NAP));
            }
            r
        };
        if !r.is_empty() {
            return Ok(r);
        }
    }
}

/// When the rings' peers were last checked for liveness.
#[derive(Debug, Default)]
pub(crate) struct LivenessTick(Option<Instant>);

impl LivenessTick {
    /// Whether a liveness check is due at `now` (recorded as done if so).
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        let due = self.0.is_none_or(|t| now.duration_since(t) >= LIVENESS_INTERVAL);
        if due {
            self.0 = Some(now);
        }
        due
    }
}

/// A private futex word that another thread of this process sets to 1 and wakes (the
/// mixed wait's helper, see [`super::helper`]); slept on beside the rings.
pub(crate) struct Extra<'a> {
    /// The word: 0 while nothing happened.
    pub(crate) word: &'a AtomicU32,
}

/// Steps (1)-(6) of the module docs for one nap: register on every ring's word (and
/// watch `extra`, if any), re-check, sleep at most `nap` on all of them, deregister,
/// look again. `None`: `futex_waitv` is unavailable (nothing was slept).
pub(crate) fn sleep_round(
    rings: &[&dyn RingWatch],
    extra: Option<Extra<'_>>,
    check_liveness: bool,
    nap: Duration,
) -> Option<Vec<usize>> {
    let words: Vec<(&WaitWord, bool)> = rings.iter().filter_map(|r| r.ring_word()).collect();
    let mut waiters = Vec::with_capacity(words.len() + 1);
    let mut asymmetric = false;
    for &(w, asym) in &words {
        // (1) Acquire: pairs with the Release bump in WaitWord::wake, so that a bump we
        // read comes with the publication that preceded it.
        let key = w.seq.load(Ordering::Acquire);
        // (2) Relaxed: ordered before the re-check (4) by the heavy fence (3), as in
        // Waiter::wait; a count, because a consumer's own wait uses the same word.
        w.waiting.fetch_add(1, Ordering::Relaxed);
        asymmetric |= asym;
        let mut fw = futex::Wait::new();
        fw.val = u64::from(key);
        fw.uaddr = futex::WaitPtr::new(w.seq.as_ptr().cast());
        // A shared (not PRIVATE) 32-bit futex: the word lives in a shared mapping.
        fw.flags = futex::WaitFlags::SIZE_U32;
        waiters.push(fw);
    }
    let extra_set = |e: &Extra<'_>| e.word.load(Ordering::Acquire) != 0;
    if let Some(e) = &extra {
        let mut fw = futex::Wait::new();
        // Sleep while it holds 0: the helper's store of 1 (Release, then wake) either
        // comes before the kernel's compare (EAGAIN) or wakes us.
        fw.val = 0;
        fw.uaddr = futex::WaitPtr::new(e.word.as_ptr().cast());
        // Private: the word lives in this process's heap.
        fw.flags = futex::WaitFlags::SIZE_U32 | futex::WaitFlags::PRIVATE;
        waiters.push(fw);
    }
    // (3) A full fence, plus membarrier if any ring's producer uses a compiler fence.
    primitive::heavy_fence(asymmetric);
    // (4)
    let mut r = ready(rings, check_liveness);
    let mut unavailable = false;
    if r.is_empty() && !extra.as_ref().is_some_and(extra_set) {
        // (5) The timeout of futex_waitv is absolute.
        let until = monotonic_after(nap);
        match futex::waitv(
            &waiters,
            futex::WaitvFlags::empty(),
            Some(&until),
            futex::ClockId::Monotonic,
        ) {
            // Woken; a word no longer held its key; the nap ended; a signal.
            Ok(_) | Err(Errno::AGAIN | Errno::TIMEDOUT | Errno::INTR) => {}
            // ENOSYS (before Linux 5.16), or anything else the kernel refuses.
            Err(_) => unavailable = true,
        }
    }
    // (6)
    for &(w, _) in &words {
        // Relaxed: as the increment.
        w.waiting.fetch_sub(1, Ordering::Relaxed);
    }
    if unavailable {
        // Relaxed: see `waitv_available`.
        WAITV_UNAVAILABLE.store(true, Ordering::Relaxed);
        return None;
    }
    if r.is_empty() {
        r = ready(rings, false);
    }
    Some(r)
}

/// `CLOCK_MONOTONIC` now plus `d`.
fn monotonic_after(d: Duration) -> futex::Timespec {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let mut sec = now.tv_sec.saturating_add(d.as_secs().min(i64::MAX as u64) as i64);
    let mut nsec = now.tv_nsec + i64::from(d.subsec_nanos());
    if nsec >= 1_000_000_000 {
        nsec -= 1_000_000_000;
        sec = sec.saturating_add(1);
    }
    futex::Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}
