//! The wait strategy (spin -> yield -> futex) and the waiter protocol that keeps the
//! waking side free of syscalls when nobody sleeps.
//!
//! # The waiter protocol (an eventcount with one waiter)
//!
//! A [`WaitWord`] sits on a cache line of its own: `waiting` (a flag set by the one
//! party that may sleep on it) and `seq` (the futex word). With `C` the condition
//! ("data available", "space free") and `S` the shared index whose store makes it true:
//!
//! ```text
//! sleeper                                  waker
//! key = seq.load(Acquire)          (1)     S.store(new, Release)           (a)
//! waiting.fetch_add(1, Relaxed)    (2)     light_fence                      (b)
//! heavy_fence                      (3)     if waiting.load(Relaxed) != 0   (c)
//! if C (reads S): waiting -= 1; done (4)       seq.fetch_add(1, Release)   (d)
//! futex_wait(seq, key)             (5)         futex_wake(seq, 1)          (e)
//! waiting.fetch_sub(1, Relaxed); loop (6)
//! ```
//!
//! (2)-(3)-(4) against (a)-(b)-(c) is a store-load pair: the fences guarantee that the
//! sleeper sees `S` at (4) or the waker sees `waiting == 1` at (c), never neither. If
//! the waker sees the flag, it bumps `seq` after the sleeper read its key at (1) — then
//! (5) returns at once because `seq != key` — or before it: then (1) read the bumped
//! value with Acquire, which synchronizes with (d), so (a) is visible at (4). Either
//! way no wake-up is lost. The fences are [`primitive::light_fence`] and
//! [`primitive::heavy_fence`]: a compiler fence against `membarrier` when the segment
//! uses asymmetric fences, SeqCst fences on both sides otherwise. The loom models in
//! `loom-tests/` check the protocol with SeqCst fences on both sides and a futex model
//! in which a lost wake-up is a deadlock.
//!
//! When no one sleeps, the waker's cost is (b) and one load of a line that nobody
//! writes: no syscall, no locked instruction.
//!
//! # The flag protocol (many sleepers, one waker)
//!
//! A broadcast ring's subscribers all sleep on one word and its publisher wakes them
//! all ([`WaitWord::notify_all`], [`Waiter::wait_flagged`]). A count would stay
//! non-zero until the woken sleepers run and deregister, and every publish meanwhile
//! would make a `futex_wake` syscall. So `waiting` is a flag there:
//!
//! ```text
//! sleeper                                  waker (one)
//! key = seq.load(Acquire)          (1)     S.store(new, Release)            (a)
//! waiting.fetch_or(1, Relaxed)     (2)     light_fence                       (b)
//! heavy_fence                      (3)     if waiting.load(Relaxed) != 0    (c)
//! if C (reads S): done             (4)       && waiting.swap(0, Relaxed) != 0 (c')
//! futex_wait(seq, key)             (5)         seq.fetch_add(1, Release)    (d)
//! loop (the flag is never cleared here)        futex_wake(seq, all)         (e)
//! ```
//!
//! No lost wake-up: take a sleep at (5) and a publish whose `S` its (4) missed. As in
//! the count protocol, the fences (3) and (b) order the sleeper's (2) before the
//! waker's (c), so (c) reads the flag set by (2) or a later value. Let X be the first
//! swap (c') after (2) in the flag's modification order (X exists: either (c) read 1
//! and this publish swaps, or an earlier swap already cleared the flag). Only swaps
//! clear the flag, so X returns 1, and its publish bumps `seq` at (d) after X. The key
//! read at (1) precedes that bump: had (1) read it, (d) would happen before (1), hence
//! X before (2) — against X following (2) in the flag's modification order (coherence).
//! So `seq != key` when (5) runs (it returns at once) or the sleeper is queued when (e)
//! wakes it; it then re-checks and, if this publish is still unseen, sleeps again
//! under the same argument (each round consumes a later publish's swap, and there are
//! finitely many up to ours). A sleeper that finds `C` at (4), or that times out,
//! leaves the flag set: it costs the waker one wasted wake, once. A dead sleeper's
//! flag likewise costs one syscall, where a count would cost one on every publish.

use super::{Wait, interrupt};
use crate::primitive::{self, AtomicU32, FutexWait, Ordering};
use std::time::{Duration, Instant};

/// How a blocked `send`/`recv` waits for its peer.
///
/// ```
/// use shmring::WaitStrategy;
/// use std::time::Duration;
/// assert_eq!(
///     WaitStrategy::default(),
///     WaitStrategy::Adaptive { spin: Duration::from_micros(20), yields: 16 }
/// );
/// assert_eq!(WaitStrategy::from_name("adaptive"), Some(WaitStrategy::default()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Busy-spin with a pause hint and never sleep: the lowest latency, one core burnt
    /// while waiting. Timeouts and peer liveness are still checked.
    Spin,
    /// Spin for about `spin` (a pause hint between looks), then yield the core `yields`
    /// times, then sleep on the futex. The default: [`WaitStrategy::DEFAULT_SPIN`] (20 µs) and 16
    /// yields.
    ///
    /// The spin phase is bounded in time, not in pauses (a pause costs from a few ns to
    /// ~30 ns depending on the CPU: ~27 ns on the machine of docs/benchmarks.md, where
    /// 20,000 pauses were 0.55 ms): the clock is read every 64 pauses, and the first 64
    /// are not counted. An SPSC ring's end ends it early, straight to the yields, when
    /// its peer last waited on the CPU this thread runs on (the ends record their CPU
    /// when they wait: while this thread spins there, the peer cannot run), and skips
    /// it while its last waits all outlasted it (probing with a full spin now and
    /// then). Measured on one CPU, the yields then hand the CPU to the peer: a round
    /// trip ~0.5x the blocking one's, where 20,000 pauses made it ~170x.
    Adaptive {
        /// How long to spin before the first yield ([`Duration::ZERO`]: not at all).
        spin: Duration,
        /// Yields before sleeping.
        yields: u32,
    },
    /// Sleep on the futex at once (after one re-check): no CPU spent while waiting,
    /// a syscall on each side of every hand-off that found the peer asleep.
    Blocking,
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::Adaptive {
            spin: Self::DEFAULT_SPIN,
            yields: 16,
        }
    }
}

impl WaitStrategy {
    /// The spin phase of the default [`WaitStrategy::Adaptive`]: long enough to cover a
    /// hand-off between two running processes (~0.1-1 µs) many times over, short
    /// enough that a waiter whose peer is descheduled gives its CPU back within tens
    /// of µs.
    pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);

    /// The strategy named `spin`, `adaptive` or `blocking` (with the default budget).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "spin" => Some(WaitStrategy::Spin),
            "adaptive" => Some(WaitStrategy::default()),
            "blocking" => Some(WaitStrategy::Blocking),
            _ => None,
        }
    }

    /// `spin`, `adaptive` or `blocking`.
    pub fn name(&self) -> &'static str {
        match self {
            WaitStrategy::Spin => "spin",
            WaitStrategy::Adaptive { .. } => "adaptive",
            WaitStrategy::Blocking => "blocking",
        }
    }
}

/// How often a blocked wait wakes to check that its peer is alive. Bounds the time to
/// report a dead peer as `Disconnected`.
pub const LIVENESS_INTERVAL: Duration = Duration::from_millis(50);

/// A waiting flag and a futex sequence word, on a cache line of their own.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct WaitWord {
    /// How many parties are registered as (about to be) asleep on this word: at most 1
    /// for an SPSC ring, any number for an MPMC queue. A waker wakes one of them. On a
    /// word woken with `notify_all` (a broadcast ring's), a flag instead:
    /// set by sleepers, cleared by the waker (the flag protocol, module docs).
    pub waiting: AtomicU32,
    /// Futex word, bumped by the waker when it finds `waiting != 0`.
    pub seq: AtomicU32,
    /// The CPU its sleeper last ran on when it began a wait of more than a few
    /// pauses, plus one (0: unknown). Written only by that sleeper, read by its peer
    /// as a hint (see [`WaitStrategy::Adaptive`]): a wrong value costs time, never
    /// correctness, so whatever a peer writes here is harmless.
    pub cpu: AtomicU32,
}

impl WaitWord {
    /// A word with no waiter.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        WaitWord {
            waiting: AtomicU32::new(0),
            seq: AtomicU32::new(0),
            cpu: AtomicU32::new(0),
        }
    }

    /// Waker side, after the Release store that made the condition true: wake the
    /// sleeper if one is registered. No syscall when nobody sleeps.
    #[inline]
    pub(crate) fn notify(&self, asymmetric: bool) {
        primitive::light_fence(asymmetric);
        // Relaxed: ordered after the index store by the fence above (see module docs).
        if self.waiting.load(Ordering::Relaxed) != 0 {
            self.wake();
        }
    }

    /// Waker side with many possible sleepers (a broadcast ring's subscribers, which
    /// wait with [`Waiter::wait_flagged`]): after the Release store that made the
    /// condition true, wake *every* sleeper with one `futex_wake(all)`; no syscall when
    /// nobody sleeps. Here `waiting` is a flag, not a count: sleepers set it, the waker
    /// clears it with a swap *before* its bump of `seq`, so the publishes that follow
    /// make no syscall until a subscriber registers again: at most one wake per sleep
    /// episode, however long the woken take to run. See [the flag protocol](self#the-flag-protocol-many-sleepers-one-waker).
    #[inline]
    pub(crate) fn notify_all(&self, asymmetric: bool) {
        primitive::light_fence(asymmetric);
        // Relaxed: ordered after the index store by the fence above (see module docs).
        // The load first: no locked instruction on a line nobody writes when no one sleeps.
        if self.waiting.load(Ordering::Relaxed) != 0 {
            self.clear_and_wake_all();
        }
    }

    #[cold]
    #[inline(never)]
    fn clear_and_wake_all(&self) {
        #[cfg(loom)]
        let late = primitive::loom_break::active(primitive::loom_break::LoomBreak::BroadcastFlagClearedLate);
        #[cfg(not(loom))]
        let late = false;
        // (c') Relaxed: the swap reads the newest flag (an RMW); the order that matters is
        // its place before the bump (d) in program order (see the flag protocol).
        if !late && self.waiting.swap(0, Ordering::Relaxed) == 0 {
            return;
        }
        // Release: as in `wake`.
        self.seq.fetch_add(1, Ordering::Release);
        primitive::futex_wake(&self.seq, i32::MAX as u32);
        if late {
            // The planted bug: a registration made since the bump is lost.
            self.waiting.store(0, Ordering::Relaxed);
        }
    }

    #[cold]
    #[inline(never)]
    fn wake(&self) {
        // Release: pairs with the Acquire load of the key in Waiter::wait, so that a
        // sleeper that reads the bumped value also sees the index store before it.
        self.seq.fetch_add(1, Ordering::Release);
        primitive::futex_wake(&self.seq, 1);
    }

    /// Wake the sleeper unconditionally (used when an end closes).
    pub(crate) fn wake_always(&self) {
        primitive::fence(Ordering::SeqCst);
        self.wake();
    }

    /// Wake every sleeper unconditionally (a queue was closed).
    pub(crate) fn wake_everyone(&self) {
        primitive::fence(Ordering::SeqCst);
        // Release: as in `wake`.
        self.seq.fetch_add(1, Ordering::Release);
        primitive::futex_wake(&self.seq, i32::MAX as u32);
    }
}

/// The waiting side of one [`WaitWord`].
#[derive(Debug)]
pub(crate) struct Waiter<'a> {
    pub(crate) word: &'a WaitWord,
    pub(crate) strategy: WaitStrategy,
    pub(crate) asymmetric: bool,
}

/// A blocking wait gave up because an interrupt is pending (see
/// `shmring::signal::Interrupt`): the error of the interruptible variants of calls whose
/// own result has no room for it ([`RawEvent::wait_interruptible`](super::RawEvent::wait_interruptible)).
///
/// ```
/// use shmring::sync::Interrupted;
/// assert_eq!(Interrupted.to_string(), "interrupted");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Why a [`Waiter::wait`] ended without its condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitEnd {
    /// The deadline passed.
    Timeout,
    /// The process-wide interrupt flag ([`super::interrupt`]) is raised.
    Interrupted,
}

/// How much a poll of a waiting loop checks besides its condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Only the condition: the per-iteration spin poll.
    Fast,
    /// Also the peer's state word (closed?): cheap, every 256 spins and around sleeps.
    State,
    /// Also the peer's liveness (a syscall) and index cross-checks: at most every
    /// [`LIVENESS_INTERVAL`].
    Liveness,
}

impl Waiter<'_> {
    /// Wait until `poll` returns `Some`, `wait` runs out ([`WaitEnd::Timeout`]), or
    /// the interrupt flag is raised ([`WaitEnd::Interrupted`]).
    ///
    /// `poll(check)` re-checks the condition, and with [`Check::State`] or
    /// [`Check::Liveness`] whether the peer closed or died; the wait asks for liveness
    /// at most every [`LIVENESS_INTERVAL`]. No clock is read before the 64th spin (the
    /// 256th in Spin mode), so a wait that ends quickly costs only its polls. The interrupt flag is read where
    /// the clock is (every 256th spin), before each sleep and after each wake, always
    /// after a poll that found nothing: a message that is there is taken, not lost to
    /// the interrupt.
    ///
    /// Callers handle [`Wait::Now`] themselves (one poll, then `Full`/`Empty`); given
    /// it here, the wait ends with [`WaitEnd::Timeout`] at its first clock read.
    pub(crate) fn wait<R>(&self, wait: Wait, poll: impl FnMut(Check) -> Option<R>) -> Result<R, WaitEnd> {
        self.wait_inner(None, false, wait, poll)
    }

    /// [`Waiter::wait`] on a word whose waker uses [`WaitWord::notify_all`]: the sleeper
    /// sets the `waiting` flag instead of counting itself, and never clears it (the
    /// waker does; see [the flag protocol](self#the-flag-protocol-many-sleepers-one-waker)).
    pub(crate) fn wait_flagged<R>(&self, wait: Wait, poll: impl FnMut(Check) -> Option<R>) -> Result<R, WaitEnd> {
        self.wait_inner(None, true, wait, poll)
    }

    /// [`Waiter::wait`] for a party with one peer (an SPSC ring's end): the adaptive
    /// spin records this thread's CPU in its own word and stops early when the peer's
    /// word says the peer last waited on the same CPU, or when the end's history says
    /// that its last waits all outlasted the spin (see [`SpinHistory`]).
    pub(crate) fn wait_beside<R>(
        &self,
        beside: Option<Beside<'_>>,
        wait: Wait,
        poll: impl FnMut(Check) -> Option<R>,
    ) -> Result<R, WaitEnd> {
        self.wait_inner(beside, false, wait, poll)
    }

    /// The wait; `flag`: register with the flag protocol instead of the count.
    fn wait_inner<R>(
        &self,
        beside: Option<Beside<'_>>,
        flag: bool,
        wait: Wait,
        mut poll: impl FnMut(Check) -> Option<R>,
    ) -> Result<R, WaitEnd> {
        let (peer, mut history) = match beside {
            Some(b) => (Some(b.peer), Some(b.history)),
            None => (None, None),
        };
        let stop = |now: Instant| {
            if interrupt::pending() {
                return Err(WaitEnd::Interrupted);
            }
            wait.left(now).ok_or(WaitEnd::Timeout)
        };
        let mut last_check: Option<Instant> = None;
        let due = |last_check: &mut Option<Instant>, now: Instant| match last_check {
            Some(t) if now.duration_since(*t) >= LIVENESS_INTERVAL => {
                *last_check = Some(now);
                Check::Liveness
            }
            Some(_) => Check::State,
            None => {
                *last_check = Some(now);
                Check::State
            }
        };
        // The spin budget: none for Spin (forever), zero for Blocking.
        let (budget, yields) = match self.strategy {
            WaitStrategy::Spin => (None, 0),
            WaitStrategy::Adaptive { spin, yields } => (Some(spin), yields),
            WaitStrategy::Blocking => (Some(Duration::ZERO), 0),
        };
        // Spin phase. The clock is read every 256th pause (for the deadline, the
        // interrupt flag and the peer's state), and every 64th when a budget is spent.
        // No spin at all when the history says spinning has not paid lately.
        let short = budget.is_some() && history.as_deref_mut().is_some_and(|h| !h.full_spin());
        let mut spun_out = short;
        let spun: Option<R> = 'spin: {
            if budget == Some(Duration::ZERO) || short {
                break 'spin None;
            }
            let clock_mask: u32 = if budget.is_some() { 63 } else { 255 };
            let mut spin_start: Option<Instant> = None;
            let mut i = 0u32;
            loop {
                if i & clock_mask == clock_mask {
                    let now = Instant::now();
                    if i & 255 == 255 {
                        let check = due(&mut last_check, now);
                        if let Some(r) = poll(check) {
                            break 'spin Some(r);
                        }
                        stop(now)?;
                    } else if let Some(r) = poll(Check::Fast) {
                        break 'spin Some(r);
                    }
                    if let Some(budget) = budget {
                        let out = match spin_start {
                            // A wait longer than 64 pauses: spinning helps only if the
                            // peer can run meanwhile and has answered within the
                            // budget lately.
                            None => {
                                spin_start = Some(now);
                                self.peer_shares_cpu(peer)
                            }
                            Some(t) => now.duration_since(t) >= budget,
                        };
                        if out {
                            spun_out = true;
                            break 'spin None;
                        }
                    }
                } else if let Some(r) = poll(Check::Fast) {
                    break 'spin Some(r);
                }
                primitive::spin_hint();
                i = i.wrapping_add(1);
            }
        };
        if let Some(r) = spun {
            if let Some(h) = history {
                h.record(false);
            }
            return Ok(r);
        }
        // Only waits that spun out teach the history (not Blocking, not a zero spin).
        if spun_out && let Some(h) = history {
            h.record(true);
        }
        for _ in 0..yields {
            primitive::yield_now();
            if let Some(r) = poll(Check::State) {
                return Ok(r);
            }
        }
        // Sleep phase.
        loop {
            let now = Instant::now();
            let left = stop(now)?;
            let check = due(&mut last_check, now);
            // (1) Acquire: pairs with the Release bump in WaitWord::wake.
            let key = self.word.seq.load(Ordering::Acquire);
            // (2) Relaxed: ordered before (4) by the heavy fence; a count, because an
            // MPMC queue has many sleepers per word, or a flag the waker clears.
            if flag {
                self.word.waiting.fetch_or(1, Ordering::Relaxed);
            } else {
                self.word.waiting.fetch_add(1, Ordering::Relaxed);
            }
            primitive::heavy_fence(self.asymmetric);
            if let Some(r) = poll(check) {
                if !flag {
                    self.word.waiting.fetch_sub(1, Ordering::Relaxed);
                }
                return Ok(r);
            }
            let nap = match left {
                Some(l) => l.min(LIVENESS_INTERVAL),
                None => LIVENESS_INTERVAL,
            };
            let r = primitive::futex_wait(&self.word.seq, key, Some(nap));
            if !flag {
                self.word.waiting.fetch_sub(1, Ordering::Relaxed);
            }
            if r == FutexWait::TimedOut {
                // Nobody woke us for a whole interval: make the next poll check the peer.
                last_check = Instant::now().checked_sub(LIVENESS_INTERVAL);
            }
            if let Some(r) = poll(Check::State) {
                return Ok(r);
            }
            // After a wake (EINTR included: the thread that ran the signal handler is
            // back here at once) the loop's head reads the flag before sleeping again.
        }
    }
}

/// What an SPSC end knows of its peer for [`Waiter::wait_beside`].
#[derive(Debug)]
pub(crate) struct Beside<'a> {
    /// The word the peer sleeps on, where it records its CPU.
    pub(crate) peer: &'a WaitWord,
    /// The end's record of its past waits.
    pub(crate) history: &'a mut SpinHistory,
}

/// What an end remembers of its past adaptive waits, so that it spins only while
/// spinning pays: after [`SpinHistory::MISSES`] waits in a row that outlasted the
/// spin, the next waits go straight to the yields (and the SPSC consumer skips its
/// inline polls), except every [`SpinHistory::PROBE`]th, which spins in full to see
/// whether the peer has become quick again. A wait that ends while spinning resets it.
///
/// This is what stops the spin when the peer cannot run meanwhile and its CPU is not
/// on record: both ends of a ping-pong over two rings pinned to one CPU, where each
/// records its CPU in the ring it waits on, not in the one its peer waits on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SpinHistory {
    /// Waits in a row that spun out (saturating).
    misses: u8,
    /// Short waits since the last probe.
    short: u8,
}

impl SpinHistory {
    /// Waits in a row that spun out before the spin is shortened.
    pub(crate) const MISSES: u8 = 4;
    /// While short, one wait in this many spins in full.
    pub(crate) const PROBE: u8 = 16;

    /// Whether the last waits all outlasted the spin: the waits spin only to probe.
    pub(crate) fn is_short(&self) -> bool {
        self.misses >= Self::MISSES
    }

    /// Whether this wait spins in full (counts the short ones).
    fn full_spin(&mut self) -> bool {
        if self.misses < Self::MISSES {
            return true;
        }
        self.short += 1;
        if self.short >= Self::PROBE {
            self.short = 0;
            return true;
        }
        false
    }

    /// A wait ended: in the spin phase (`spun_out == false`) or after it ran out.
    fn record(&mut self, spun_out: bool) {
        if spun_out {
            self.misses = self.misses.saturating_add(1);
        } else {
            *self = SpinHistory::default();
        }
    }
}

impl Waiter<'_> {
    /// Record this thread's CPU in its own word (a store only when it changed, so that
    /// the line the peer's `notify` reads stays shared), and say whether the peer last
    /// waited on the same CPU.
    fn peer_shares_cpu(&self, peer: Option<&WaitWord>) -> bool {
        let Some(peer) = peer else {
            return false;
        };
        let me = primitive::current_cpu();
        // Relaxed: a hint, ordered with nothing.
        if self.word.cpu.load(Ordering::Relaxed) != me {
            self.word.cpu.store(me, Ordering::Relaxed);
        }
        // Relaxed: as above; a stale or forged value only changes when we yield.
        me != 0 && peer.cpu.load(Ordering::Relaxed) == me
    }
}

/// Tests: yield until `done()` holds; fail (never hang) if that takes more than 20 s.
#[cfg(all(test, not(loom)))]
pub(crate) fn spin_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still waiting for {what} after 20 s"
        );
        std::thread::yield_now();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn word() -> WaitWord {
        WaitWord {
            waiting: AtomicU32::new(0),
            seq: AtomicU32::new(0),
            cpu: AtomicU32::new(0),
        }
    }

    /// Wait with `strategy` beside `peer` until the first poll that checks more than
    /// the condition; return how many polls came before it, and what it checked.
    fn polls_before_first_check(strategy: WaitStrategy, own: &WaitWord, peer: Option<&WaitWord>) -> (u32, Check) {
        polls_with_history(strategy, own, peer, &mut SpinHistory::default())
    }

    /// [`polls_before_first_check`] with a history.
    fn polls_with_history(
        strategy: WaitStrategy,
        own: &WaitWord,
        peer: Option<&WaitWord>,
        history: &mut SpinHistory,
    ) -> (u32, Check) {
        let waiter = Waiter {
            word: own,
            strategy,
            asymmetric: false,
        };
        let mut n = 0u32;
        let beside = peer.map(|peer| Beside { peer, history });
        waiter
            .wait_beside(beside, Wait::Forever, |check| {
                if check == Check::Fast {
                    n += 1;
                    None
                } else {
                    Some((n, check))
                }
            })
            .expect("the first checking poll ends the wait")
    }

    /// Run `f` on a thread pinned to the CPU it starts on, so that the CPU it records
    /// and compares stays the same.
    fn pinned<R: Send>(f: impl FnOnce(u32) -> R + Send) -> R {
        std::thread::scope(|s| {
            s.spawn(|| {
                let cpu = primitive::current_cpu();
                assert_ne!(cpu, 0, "sched_getcpu works on Linux");
                let mut set = rustix::thread::CpuSet::new();
                set.set(cpu as usize - 1);
                rustix::thread::sched_setaffinity(None, &set).expect("pin to our own CPU");
                f(primitive::current_cpu())
            })
            .join()
            .unwrap()
        })
    }

    #[test]
    fn adaptive_stops_spinning_when_the_peer_waited_on_this_cpu() {
        let long = WaitStrategy::Adaptive {
            spin: Duration::from_secs(3600),
            yields: 16,
        };
        pinned(|cpu| {
            let (own, peer) = (word(), word());
            peer.cpu.store(cpu, Ordering::Relaxed);
            // 64 quick polls (the last at the first clock read), then straight to the
            // yields, whose polls check the peer's state.
            assert_eq!(polls_before_first_check(long, &own, Some(&peer)), (64, Check::State));
            assert_eq!(own.cpu.load(Ordering::Relaxed), cpu, "the waiter recorded its CPU");
            // A peer elsewhere (or unknown): the spin goes on to the 256th pause, where
            // the state is checked.
            peer.cpu.store(cpu + 1, Ordering::Relaxed);
            assert_eq!(polls_before_first_check(long, &own, Some(&peer)), (255, Check::State));
            peer.cpu.store(0, Ordering::Relaxed);
            assert_eq!(polls_before_first_check(long, &own, Some(&peer)), (255, Check::State));
            // Without a peer (an MPMC queue's waiter) nothing is recorded or compared.
            let alone = word();
            assert_eq!(polls_before_first_check(long, &alone, None), (255, Check::State));
            assert_eq!(alone.cpu.load(Ordering::Relaxed), 0);
        });
    }

    #[test]
    fn the_spin_phase_is_bounded_in_time() {
        // A 1 ns budget starts at the first clock read (the 64th pause) and is spent
        // by the second (the 128th): then the yields' checking polls.
        let short = WaitStrategy::Adaptive {
            spin: Duration::from_nanos(1),
            yields: 1,
        };
        assert_eq!(polls_before_first_check(short, &word(), None), (128, Check::State));
        // No budget: no spinning at all, straight to the yields.
        let none = WaitStrategy::Adaptive {
            spin: Duration::ZERO,
            yields: 1,
        };
        assert_eq!(polls_before_first_check(none, &word(), None), (0, Check::State));
        // Blocking: straight to the sleep phase, whose first poll checks the state.
        assert_eq!(
            polls_before_first_check(WaitStrategy::Blocking, &word(), None),
            (0, Check::State)
        );
        // Spin never leaves the spin phase: its checking polls come every 256 pauses.
        assert_eq!(
            polls_before_first_check(WaitStrategy::Spin, &word(), None),
            (255, Check::State)
        );
    }

    #[test]
    fn an_end_whose_waits_spin_out_spins_short_and_probes() {
        let budget = WaitStrategy::Adaptive {
            spin: Duration::from_nanos(1),
            yields: 1,
        };
        let (own, peer) = (word(), word());
        let mut h = SpinHistory::default();
        // Waits that outlast the spin (the 1 ns budget runs out at the 128th pause).
        for _ in 0..SpinHistory::MISSES {
            assert_eq!(
                polls_with_history(budget, &own, Some(&peer), &mut h),
                (128, Check::State)
            );
        }
        // Then no spin, but for a full one every PROBE waits.
        assert!(h.is_short());
        for _ in 1..SpinHistory::PROBE {
            assert_eq!(polls_with_history(budget, &own, Some(&peer), &mut h), (0, Check::State));
        }
        assert_eq!(
            polls_with_history(budget, &own, Some(&peer), &mut h),
            (128, Check::State)
        );
        // A probe that ends while spinning (here at its first look) resets the
        // history.
        for _ in 1..SpinHistory::PROBE {
            assert_eq!(polls_with_history(budget, &own, Some(&peer), &mut h), (0, Check::State));
        }
        let waiter = Waiter {
            word: &own,
            strategy: budget,
            asymmetric: false,
        };
        let beside = Beside {
            peer: &peer,
            history: &mut h,
        };
        assert_eq!(waiter.wait_beside(Some(beside), Wait::Forever, |_| Some(())), Ok(()));
        assert_eq!(h, SpinHistory::default());
        assert_eq!(
            polls_with_history(budget, &own, Some(&peer), &mut h),
            (128, Check::State)
        );
    }

    #[test]
    fn strategies_have_names() {
        for s in ["spin", "adaptive", "blocking"] {
            assert_eq!(WaitStrategy::from_name(s).map(|w| w.name()), Some(s));
        }
        assert_eq!(WaitStrategy::from_name("fast"), None);
    }
}
