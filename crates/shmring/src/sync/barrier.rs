//! A robust process-shared barrier, Python's `multiprocessing.Barrier`: [`RawBarrier`]
//! (embeddable in your own `#[repr(C)]` shared struct) and [`Barrier`] (a segment of its
//! own).
//!
//! # Algorithm
//!
//! A generation ("sense-reversing") barrier over one 64-bit state word, as in
//! Mellor-Crummey and Scott, "Algorithms for Scalable Synchronization on Shared-Memory
//! Multiprocessors" (1991, the central counter barrier), with Python's `threading.Barrier`
//! semantics for breaking, aborting and resetting:
//!
//! - wait: one compare-and-swap adds the caller to the arrived count; the arrival index
//!   is the count before it. The last arrival (the *leader*) instead swaps the count to
//!   0 and bumps the generation, then wakes everyone. The others spin briefly, then sleep
//!   on a futex until the generation (or the reset epoch, or the `BROKEN` bit) changes.
//! - break (a timed-out waiter, [`RawBarrier::abort`], a dead party): set `BROKEN`; every
//!   waiter of that generation, and every later caller until a reset, gets
//!   [`BarrierError::Broken`].
//! - reset: bump the reset epoch, clear the count and `BROKEN`. Waiters of the ended
//!   generation get `Broken`; later waits work normally.
//!
//! A waiter decides its outcome by the *first* event that ended its generation: a
//! release means `Ok`, even if the barrier is broken or reset before the waiter wakes
//! up; a break or a reset means `Broken`. Since release and reset both change the word,
//! the epoch (resets) and the generation (releases) are separate fields: a waiter that
//! finds only the generation changed was released, only the epoch changed was reset.
//! If it finds both changed (a release and a reset happened while it slept), it reads
//! the *reset log*, where reset number `e` records the generation it ended: reset
//! `e0 + 1` (the first after the waiter arrived in epoch `e0`) ended the waiter's
//! generation, or a later one if the release came first. If that entry is not there
//! (its resetter is between its two writes, or eight more resets overwrote it), the
//! waiter reports `Broken`: a wrong answer may only ever be a conservative one.
//!
//! # Robustness
//!
//! Every handle registers its process in a table of [`MAX_HANDLES`] slots (the process's
//! pid and start time, see `owner.rs`) and clears its slot when dropped. A waiter sleeps
//! at most [`LIVENESS_INTERVAL`] at a time and, once per interval, scans the table: a
//! registered process that is dead (`SIGKILL`, a crash, an exit without dropping its
//! handle) breaks the barrier — its slot is cleared after `BROKEN` is set, and everyone is
//! woken — so every waiter returns `Broken` within about one interval of the death.
//!
//! Limits, honestly:
//!
//! - Liveness is per *process*: a thread that dies (or parks forever) while its process
//!   lives is not detected.
//! - A process that drops its handle and exits normally before arriving has *left*, not
//!   died: it is not detected, and the others wait for it (use a timed wait).
//! - A process that exits without dropping its handle (`std::process::exit` skips the
//!   destructors of locals, `abort`) counts as dead and breaks the barrier.
//! - Every handle counts: the creator's too. A coordinating parent that created the
//!   barrier for its children is a registered live party (harmless); if it dies, the
//!   barrier breaks.
//! - At most [`MAX_HANDLES`] handles (across all processes) at once; one more is an
//!   error at open. A raw barrier that nobody registered with is not robust.
//! - A death is found by a *waiter*: a party that dies while nobody waits breaks the
//!   barrier at the first interval of the next wait that sleeps. [`RawBarrier::reset`]
//!   clears the slots of dead processes without breaking (it ends the generation
//!   anyway), so a barrier broken by a death can be reset and reused with a replacement
//!   party.
//! - A handle inherited through `fork` (without `exec`) is not registered in the child;
//!   open one there (or `try_clone`).
//!
//! # State words
//!
//! `state` (`AtomicU64`):
//!
//! | bits      | field      | meaning                                   | written by                      |
//! |-----------|------------|-------------------------------------------|---------------------------------|
//! | 63        | `BROKEN`   | the current generation is broken          | timeout, abort, liveness (set); reset (clears) |
//! | 48..=62   | epoch      | resets so far (wraps at 2^15)             | reset                           |
//! | 16..=47   | generation | rounds released so far (wraps at 2^32)    | the leader                      |
//! | 0..=15    | count      | arrivals in this generation, `< parties`  | arrivals (+1); leader, reset (0)|
//!
//! After initialization every write of `state` is a read-modify-write, so a waiter's
//! Acquire load of any later value synchronizes with the leader's Release that ended its
//! generation (a release sequence), even when resets or breaks came after it.
//!
//! `seq` (`AtomicU32`, the futex word): bumped with Release after every change that ends
//! a wait (release, break, reset), then every sleeper is woken. A sleeper reads it
//! (Acquire) *before* its last look at `state`, so a change after that look moves `seq`
//! and the futex wait returns at once.
//!
//! `parties` (`AtomicU32`): 1..=[`MAX_PARTIES`], written once before the barrier is
//! shared; every wait re-reads and checks it.
//!
//! `reset_log` (8 × `AtomicU64`): entry `e % 8` = `e << 32 | generation` — the generation
//! that reset number `e` ended; written by that reset, after its compare-and-swap.
//!
//! `table` ([`MAX_HANDLES`] × `AtomicU64`): 0 (free) or a registered handle's process
//! identity (bit 63 clear). Set by registration (CAS from 0), cleared by the handle's drop,
//! or by whoever finds the process dead.
//!
//! Area layout (byte offsets, stable): `state` 0, `seq` 8, `parties` 12, `reset_log` 128,
//! `table` 256; 768 bytes, 128-byte aligned.
//!
//! # Untrusted peers
//!
//! A count `>= parties`, a count that went backwards within a generation, a `parties`
//! word that is 0, too large or not the one the segment was created with, or a table
//! entry with bit 63 set is reported as [`BarrierError::Corrupted`] (and breaks the
//! barrier, so nobody keeps waiting for the reporter); a table entry naming no live
//! process breaks the barrier as a death would. A peer that writes a *plausible* value
//! (another count, a new generation) can hasten or delay a round like a misbehaving party
//! can; it cannot cause undefined behaviour, a panic, or a timed wait that does not end.

use super::Wait;
use super::interrupt;
use super::owner::Owner;
use super::wait::LIVENESS_INTERVAL;
use crate::primitive::{self, AtomicU32, AtomicU64, Ordering};
use std::fmt;
use std::time::{Duration, Instant};

/// The largest number of parties a barrier may have.
pub const MAX_PARTIES: u32 = 0xffff;

/// The number of handles (across all processes) that can be registered with one barrier
/// at a time.
pub const MAX_HANDLES: usize = 64;

/// Bit 63 of `state`: the current generation is broken.
const BROKEN: u64 = 1 << 63;
const EPOCH_SHIFT: u32 = 48;
const EPOCH_MASK: u32 = 0x7fff;
const GEN_SHIFT: u32 = 16;
const COUNT_MASK: u64 = 0xffff;

/// Entries of the reset log.
const RESET_LOG: usize = 8;

/// Polls of `state` (pause hints) before a waiter sleeps.
const SPINS: u32 = 200;

/// Looks at the reset log (a yield each) before an ambiguous waiter settles for `Broken`.
const LOG_POLLS: u32 = 100;

fn count(s: u64) -> u32 {
    (s & COUNT_MASK) as u32
}

fn generation(s: u64) -> u32 {
    (s >> GEN_SHIFT) as u32
}

fn epoch(s: u64) -> u32 {
    (s >> EPOCH_SHIFT) as u32 & EPOCH_MASK
}

/// A state word (`BROKEN` clear).
fn pack(epoch: u32, generation: u32, count: u32) -> u64 {
    (u64::from(epoch & EPOCH_MASK) << EPOCH_SHIFT) | (u64::from(generation) << GEN_SHIFT) | u64::from(count)
}

/// Why a barrier wait failed.
///
/// ```
/// use shmring::sync::{BarrierError, RawBarrier};
/// let b = RawBarrier::new(2);
/// b.abort();
/// assert_eq!(b.wait().unwrap_err(), BarrierError::Broken);
/// assert_eq!(BarrierError::Broken.to_string(), "the barrier is broken");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierError {
    /// The barrier is broken (a waiter timed out, a party died, someone called `abort`),
    /// or it was reset while this party waited. Every wait fails this way until
    /// `reset`.
    Broken,
    /// `wait_timeout`: the time passed before the round completed. The barrier is now
    /// broken: the other waiters get [`BarrierError::Broken`].
    Timeout,
    /// An interrupt is pending (see `shmring::signal::Interrupt`) and the round had not
    /// completed. As with a timeout, this party left and broke the barrier: the other
    /// waiters get [`BarrierError::Broken`].
    Interrupted,
    /// The shared state holds a value no correct party writes (the word that failed
    /// which check). The barrier is broken so that nobody keeps waiting; `reset` clears
    /// it if the cause was transient.
    Corrupted(&'static str),
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierError::Broken => f.write_str("the barrier is broken"),
            BarrierError::Timeout => f.write_str("timed out waiting at the barrier (it is now broken)"),
            BarrierError::Interrupted => f.write_str("interrupted while waiting at the barrier (it is now broken)"),
            BarrierError::Corrupted(what) => write!(f, "the barrier's shared state is corrupted: {what}"),
        }
    }
}

impl std::error::Error for BarrierError {}

/// The outcome of a successful wait: this party's arrival index in its round.
///
/// ```
/// use shmring::sync::RawBarrier;
/// let b = RawBarrier::new(1);
/// let r = b.wait().unwrap();
/// assert_eq!(r.index, 0);
/// assert!(r.is_leader()); // alone, so the last to arrive
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult {
    /// The arrival order in this round: `0..parties`, unique within a round (Python's
    /// return value of `wait`).
    pub index: u32,
    leader: bool,
}

impl BarrierWaitResult {
    /// Whether this party released the round (the last to arrive, index `parties - 1`):
    /// exactly one party per round is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

/// How a waiter's generation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    Waiting,
    Released,
    Broken,
    Corrupted(&'static str),
}

/// A robust process-shared barrier without a segment: 768 bytes that may live anywhere
/// in shared memory. Set it up with [`RawBarrier::new`] or, in place in zeroed memory,
/// [`RawBarrier::init`] (all-zero bytes are *not* a usable barrier: `parties` is 0).
///
/// Each process that uses it should hold a [`BarrierRegistration`] (see
/// [`RawBarrier::register`]) so that its death breaks the barrier instead of hanging it;
/// see the [module docs](crate::sync::barrier).
///
/// ```
/// use shmring::sync::RawBarrier;
/// use std::sync::Arc;
/// let b = Arc::new(RawBarrier::new(2));
/// let b2 = b.clone();
/// let t = std::thread::spawn(move || b2.wait().unwrap());
/// let mine = b.wait().unwrap();
/// let theirs = t.join().unwrap();
/// assert_eq!(mine.index + theirs.index, 1); // indices 0 and 1
/// assert!(mine.is_leader() != theirs.is_leader());
/// ```
#[repr(C, align(128))]
pub struct RawBarrier {
    state: AtomicU64,
    seq: AtomicU32,
    parties: AtomicU32,
    _pad0: [u64; 14],
    reset_log: [AtomicU64; RESET_LOG],
    _pad1: [u64; 8],
    table: [AtomicU64; MAX_HANDLES],
}

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<RawBarrier>() == 768);
    assert!(std::mem::align_of::<RawBarrier>() == 128);
    assert!(std::mem::offset_of!(RawBarrier, state) == 0);
    assert!(std::mem::offset_of!(RawBarrier, seq) == 8);
    assert!(std::mem::offset_of!(RawBarrier, parties) == 12);
    assert!(std::mem::offset_of!(RawBarrier, reset_log) == 128);
    assert!(std::mem::offset_of!(RawBarrier, table) == 256);
};

impl fmt::Debug for RawBarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a snapshot for display.
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("RawBarrier")
            .field("parties", &self.parties.load(Ordering::Relaxed))
            .field("broken", &(s & BROKEN != 0))
            .field("epoch", &epoch(s))
            .field("generation", &generation(s))
            .field("count", &count(s))
            .finish_non_exhaustive()
    }
}

fn check_parties(parties: u32) -> bool {
    (1..=MAX_PARTIES).contains(&parties)
}

impl RawBarrier {
    /// A barrier for `parties` parties.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 or more than [`MAX_PARTIES`].
    #[cfg(not(loom))]
    pub const fn new(parties: u32) -> Self {
        assert!(
            parties >= 1 && parties <= MAX_PARTIES,
            "a barrier needs 1..=MAX_PARTIES parties"
        );
        RawBarrier {
            state: AtomicU64::new(0),
            seq: AtomicU32::new(0),
            parties: AtomicU32::new(parties),
            _pad0: [0; 14],
            reset_log: [const { AtomicU64::new(0) }; RESET_LOG],
            _pad1: [0; 8],
            table: [const { AtomicU64::new(0) }; MAX_HANDLES],
        }
    }

    /// A barrier for `parties` parties.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 or more than [`MAX_PARTIES`].
    #[cfg(loom)]
    pub fn new(parties: u32) -> Self {
        assert!(check_parties(parties), "a barrier needs 1..=MAX_PARTIES parties");
        RawBarrier {
            state: AtomicU64::new(0),
            seq: AtomicU32::new(0),
            parties: AtomicU32::new(parties),
            _pad0: [0; 14],
            reset_log: std::array::from_fn(|_| AtomicU64::new(0)),
            _pad1: [0; 8],
            table: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Set up a barrier for `parties` parties in place, in zeroed shared memory, before
    /// any other party uses it. `InvalidArgument` if `parties` is 0 or more than
    /// [`MAX_PARTIES`].
    pub fn init(&self, parties: u32) -> crate::Result<()> {
        if !check_parties(parties) {
            return Err(crate::Error::InvalidArgument(format!(
                "a barrier needs 1..={MAX_PARTIES} parties, not {parties}"
            )));
        }
        // Relaxed (both): nobody uses the barrier yet; whatever shares the memory
        // afterwards (a segment's READY, a thread spawn) publishes them.
        self.parties.store(parties, Ordering::Relaxed);
        self.state.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// The number of parties, as stored (a peer may have corrupted it; waits check it).
    pub fn parties(&self) -> u32 {
        // Relaxed: written once before sharing.
        self.parties.load(Ordering::Relaxed)
    }

    /// The number of parties waiting in the current round (0 while broken). A snapshot.
    pub fn n_waiting(&self) -> u32 {
        // Relaxed: an advisory snapshot.
        let s = self.state.load(Ordering::Relaxed);
        if s & BROKEN != 0 { 0 } else { count(s) }
    }

    /// Whether the barrier is broken (a snapshot).
    pub fn is_broken(&self) -> bool {
        // Relaxed: an advisory snapshot.
        self.state.load(Ordering::Relaxed) & BROKEN != 0
    }

    /// Wait until all parties have called `wait` (this round's release), then return this
    /// party's arrival index. `Err(Broken)` if the barrier is or becomes broken, or is
    /// reset, before the round completes.
    pub fn wait(&self) -> Result<BarrierWaitResult, BarrierError> {
        self.wait_inner(None, Wait::Forever)
    }

    /// [`RawBarrier::wait`], at most `timeout`: when it passes, the barrier breaks (as in
    /// Python) and this call returns [`BarrierError::Timeout`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<BarrierWaitResult, BarrierError> {
        // An overflowing deadline is no deadline.
        self.wait_inner(None, Wait::after(timeout))
    }

    /// Break the barrier: current and future waiters get [`BarrierError::Broken`] until
    /// [`RawBarrier::reset`].
    pub fn abort(&self) {
        self.break_barrier();
    }

    /// Return the barrier to its empty, unbroken state. Parties waiting at this moment
    /// get [`BarrierError::Broken`]; later waits work normally. Also frees the table
    /// slots of dead processes (see the [module docs](crate::sync::barrier)).
    pub fn reset(&self) {
        self.sweep(Owner::current_process().0, false);
        // Relaxed: the compare-and-swap below validates it.
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let e = epoch(s).wrapping_add(1) & EPOCH_MASK;
            let new = pack(e, generation(s), 0);
            // Relaxed: a reset publishes no data; the wake below orders the change for
            // sleepers (Release on `seq`), and spinning waiters see it by coherence.
            match self
                .state
                .compare_exchange(s, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    // Relaxed: the entry is self-contained (tagged with its epoch); a
                    // reader that needs it polls until the tag appears.
                    self.reset_log[e as usize % RESET_LOG]
                        .store(u64::from(e) << 32 | u64::from(generation(s)), Ordering::Relaxed);
                    break;
                }
                Err(now) => s = now,
            }
        }
        self.wake_all();
    }

    /// Set `BROKEN` in the current generation and wake everyone.
    fn break_barrier(&self) {
        // Relaxed: a break publishes no data; the wake's Release on `seq` orders it for
        // sleepers, and spinning waiters see it by coherence. An RMW, which keeps the
        // release sequence of the last leader going.
        self.state.fetch_or(BROKEN, Ordering::Relaxed);
        self.wake_all();
    }

    fn wake_all(&self) {
        // Release: pairs with the Acquire load of `seq` by a sleeper in `wait_release`
        // (taken before its last look at `state`): a sleeper that read the old value
        // is woken by the wake below or finds `seq` changed.
        self.seq.fetch_add(1, Ordering::Release);
        primitive::futex_wake(&self.seq, i32::MAX as u32);
    }

    /// The checked number of parties (`expect`: the segment's own record of it).
    fn checked_parties(&self, expect: Option<u32>) -> Result<u32, BarrierError> {
        let p = self.parties();
        if !check_parties(p) {
            self.break_barrier();
            return Err(BarrierError::Corrupted("parties word out of range"));
        }
        if expect.is_some_and(|e| e != p) {
            self.break_barrier();
            return Err(BarrierError::Corrupted("parties word differs from the segment header"));
        }
        Ok(p)
    }

    fn wait_inner(&self, expect: Option<u32>, wait: Wait) -> Result<BarrierWaitResult, BarrierError> {
        let parties = self.checked_parties(expect)?;
        // Relaxed: the compare-and-swap below validates it (and orders the arrival).
        let mut s = self.state.load(Ordering::Relaxed);
        let my = loop {
            if s & BROKEN != 0 {
                return Err(BarrierError::Broken);
            }
            let c = count(s);
            if c >= parties {
                self.break_barrier();
                return Err(BarrierError::Corrupted("arrived count >= parties"));
            }
            if c + 1 == parties {
                // The leader: release the round.
                let next = pack(epoch(s), generation(s).wrapping_add(1), 0);
                // AcqRel: Acquire pairs with the Release arrivals of this round (their
                // RMWs form a release sequence up to the value we read), Release pairs
                // with the Acquire loads of `state` by the waiters: every party's writes
                // before its wait become visible to every party after it. Relaxed on
                // failure: the value read is only retried (and validated) by the loop.
                match self
                    .state
                    .compare_exchange(s, next, Ordering::AcqRel, Ordering::Relaxed)
                {
                    Ok(_) => {
                        self.wake_all();
                        return Ok(BarrierWaitResult { index: c, leader: true });
                    }
                    Err(now) => {
                        s = now;
                        continue;
                    }
                }
            }
            // Release: pairs with the leader's Acquire (through the release sequence of
            // arrivals), publishing this party's writes before its wait. Relaxed on
            // failure: as above.
            match self
                .state
                .compare_exchange(s, s + 1, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break s,
                Err(now) => s = now,
            }
        };
        let index = count(my);
        match self.wait_release(my, parties, wait) {
            Ok(()) => Ok(BarrierWaitResult { index, leader: false }),
            Err(e) => Err(e),
        }
    }

    /// How the generation the caller arrived in (`my`: the state word its arrival
    /// replaced) stands, given the current word `s`.
    fn round(&self, my: u64, s: u64, parties: u32) -> Round {
        match (epoch(s) == epoch(my), generation(s) == generation(my)) {
            (true, true) if s & BROKEN != 0 => Round::Broken,
            (true, true) if count(s) >= parties => Round::Corrupted("arrived count >= parties"),
            (true, true) if count(s) <= count(my) => Round::Corrupted("arrived count went backwards"),
            (true, true) => Round::Waiting,
            (true, false) => Round::Released,
            (false, true) => Round::Broken,
            (false, false) => self.reset_or_release(my),
        }
    }

    /// Both a reset and a release happened since the caller arrived: which came first?
    #[cold]
    fn reset_or_release(&self, my: u64) -> Round {
        let want = epoch(my).wrapping_add(1) & EPOCH_MASK;
        for _ in 0..LOG_POLLS {
            // Relaxed: the entry is self-contained, tagged with its epoch.
            let e = self.reset_log[want as usize % RESET_LOG].load(Ordering::Relaxed);
            if (e >> 32) as u32 == want {
                // Reset `want` ended our generation, or a later one (we were released).
                return if e as u32 == generation(my) {
                    Round::Broken
                } else {
                    Round::Released
                };
            }
            primitive::yield_now();
        }
        Round::Broken
    }

    /// Turn a finished round into the wait's result.
    fn finish(&self, r: Round) -> Option<Result<(), BarrierError>> {
        match r {
            Round::Waiting => None,
            Round::Released => Some(Ok(())),
            Round::Broken => Some(Err(BarrierError::Broken)),
            Round::Corrupted(what) => {
                self.break_barrier();
                Some(Err(BarrierError::Corrupted(what)))
            }
        }
    }

    /// Wait until the caller's generation ends: spin, then sleep in naps of at most
    /// [`LIVENESS_INTERVAL`], sweeping the party table once per interval.
    #[cold]
    #[inline(never)]
    fn wait_release(&self, my: u64, parties: u32, wait: Wait) -> Result<(), BarrierError> {
        for _ in 0..SPINS {
            // Acquire: pairs with the leader's Release (directly or through the release
            // sequence of later RMWs).
            let s = self.state.load(Ordering::Acquire);
            if let Some(r) = self.finish(self.round(my, s, parties)) {
                return r;
            }
            primitive::spin_hint();
        }
        let me = Owner::current_process().0;
        let mut next_sweep = Instant::now() + LIVENESS_INTERVAL;
        loop {
            // Acquire: pairs with the Release bump in `wake_all`. Read before the look at
            // `state` below: a change after that look bumps `seq` after this read, so the
            // futex wait returns at once.
            let key = self.seq.load(Ordering::Acquire);
            // Acquire: as in the spin loop.
            let s = self.state.load(Ordering::Acquire);
            if let Some(r) = self.finish(self.round(my, s, parties)) {
                return r;
            }
            let now = Instant::now();
            // `None`: the deadline passed; `Some(None)`: there is none.
            let Some(left) = wait.left(now) else {
                return self.time_out(my, parties, BarrierError::Timeout);
            };
            if interrupt::pending() {
                return self.time_out(my, parties, BarrierError::Interrupted);
            }
            if now >= next_sweep {
                next_sweep = now + LIVENESS_INTERVAL;
                if crate::shm::sigbus::check_at((&self.state as *const AtomicU64).cast()) {
                    return Err(BarrierError::Corrupted(crate::shm::sigbus::RESIZED));
                }
                if let Some(found) = self.sweep(me, true) {
                    // The barrier is broken now; our round may have been released first.
                    // Acquire: as in the spin loop.
                    let s = self.state.load(Ordering::Acquire);
                    return match self.round(my, s, parties) {
                        Round::Released => Ok(()),
                        _ if found == Found::Garbage => Err(BarrierError::Corrupted("party table entry")),
                        _ => Err(BarrierError::Broken),
                    };
                }
                continue;
            }
            let mut nap = next_sweep - now;
            if let Some(l) = left {
                nap = nap.min(l);
            }
            primitive::futex_wait(&self.seq, key, Some(nap));
        }
    }

    /// The deadline passed (or an interrupt is pending) while the caller's generation was
    /// still open: break it (unless it ended meanwhile, which decides instead) and return
    /// `why`.
    fn time_out(&self, my: u64, parties: u32, why: BarrierError) -> Result<(), BarrierError> {
        // Acquire: as in `wait_release`.
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if let Some(r) = self.finish(self.round(my, s, parties)) {
                return r;
            }
            // Acquire on failure: the new value decides as in `wait_release`. Relaxed on
            // success: a break publishes no data (see `break_barrier`).
            match self
                .state
                .compare_exchange(s, s | BROKEN, Ordering::Relaxed, Ordering::Acquire)
            {
                Ok(_) => {
                    self.wake_all();
                    return Err(why);
                }
                Err(now) => s = now,
            }
        }
    }
}

mod table;
pub use table::BarrierRegistration;
use table::Found;

#[cfg(not(loom))]
mod handle;
#[cfg(not(loom))]
pub use handle::{Barrier, BarrierKind};

#[cfg(all(test, not(loom)))]
mod tests;
