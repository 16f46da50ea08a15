//! The consumer end of the MPMC queue.

use super::slot::{self, EMPTY, FULL, LAP_MASK, LOST, Owner};
use super::{MpmcEnd, PopError, QueueOptions, QueueStats, ROLE_CONSUMER, Shared};
use crate::Result;
use crate::primitive::Ordering;
use crate::ring::end::{End, EndKind, Sealed, SealedSeveral, Several};
use crate::sync::{Check, Wait, WaitEnd, WaitStrategy, Waiter};
use std::time::Duration;

/// A consumer end of an MPMC queue. Any number of consumers (in any number of
/// processes) may pop concurrently; each message goes to exactly one of them.
///
/// ```
/// let (mut tx, mut rx) = shmring::ring::mpmc::channel(8, 64)?;
/// tx.push(b"job 1")?;
/// tx.close();                                  // no more pushes
/// assert_eq!(rx.pop()?, b"job 1");             // what is queued drains first
/// assert_eq!(rx.pop(), Err(shmring::ring::mpmc::PopError::Closed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Consumer = End<MpmcEnd<false>>;

/// What a consumer keeps for itself.
#[derive(Debug)]
pub struct State {
    wait: WaitStrategy,
    /// Empty results of try_* since the last liveness check.
    empty_polls: u32,
}

/// A slot this consumer claimed: index, lap and payload length.
#[derive(Debug, Clone, Copy)]
struct Taken {
    i: u64,
    lap: u64,
    len: usize,
}

/// What one attempt at the dequeue position found.
enum Step {
    Got(Taken),
    /// Nothing ready at this position (empty, or its producer is still writing).
    NotYet,
}

impl Consumer {
    pub(super) fn new(sh: Shared, wait: WaitStrategy) -> Self {
        Consumer {
            sh,
            st: State { wait, empty_polls: 0 },
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.sh.nslots as usize
    }

    /// Approximate number of messages queued.
    pub fn len(&self) -> usize {
        self.sh.len()
    }

    /// Whether the queue looks empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The queue's shared counters.
    pub fn stats(&self) -> QueueStats {
        self.sh.stats()
    }

    /// Close the queue for everyone (see `Producer::close`).
    pub fn close(&self) {
        self.sh.close();
    }

    /// Change how this end waits.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.st.wait = wait;
    }

    /// Pop the next message, waiting while the queue is empty. [`PopError::Closed`] once
    /// the queue is closed and drained; [`PopError::Lost`] once for each message whose
    /// producer died while writing it.
    pub fn pop(&mut self) -> Result<Vec<u8>, PopError> {
        let mut v = Vec::new();
        self.pop_into(&mut v)?;
        Ok(v)
    }

    /// [`Consumer::pop`] into a reused buffer; returns the length.
    pub fn pop_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, PopError> {
        // The fast path ends in a tail call to the slow one, so that it saves no
        // registers of its own.
        match try_take_fast(&self.sh) {
            Some(Ok(t)) => Ok(self.copy_out(t, buf)),
            Some(Err(e)) => Err(e),
            None => self.pop_into_slow(buf, Wait::Forever),
        }
    }

    /// [`Consumer::pop_into`] when the fast path took nothing.
    #[cold]
    #[inline(never)]
    fn pop_into_slow(&mut self, buf: &mut Vec<u8>, wait: Wait) -> Result<usize, PopError> {
        let t = self.take_slow(wait)?;
        Ok(self.copy_out(t, buf))
    }

    /// Pop a message if one is ready ([`PopError::Empty`] otherwise).
    pub fn try_pop(&mut self) -> Result<Vec<u8>, PopError> {
        let mut v = Vec::new();
        let t = self.take(Wait::Now)?;
        self.copy_out(t, &mut v);
        Ok(v)
    }

    /// Pop the next message, waiting at most `timeout`.
    pub fn pop_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, PopError> {
        let mut v = Vec::new();
        let t = self.take(Wait::after(timeout))?;
        self.copy_out(t, &mut v);
        Ok(v)
    }

    #[cfg(not(loom))]
    /// Read the next message in place, waiting while empty; the slot is released when
    /// the grant drops.
    pub fn read(&mut self) -> Result<PopGrant<'_>, PopError> {
        let t = self.take(Wait::Forever)?;
        Ok(PopGrant { c: self, t })
    }

    #[cfg(not(loom))]
    /// [`Consumer::read`] if a message is ready.
    pub fn try_read(&mut self) -> Result<PopGrant<'_>, PopError> {
        let t = self.take(Wait::Now)?;
        Ok(PopGrant { c: self, t })
    }

    #[inline]
    fn copy_out(&self, t: Taken, buf: &mut Vec<u8>) -> usize {
        buf.clear();
        self.sh.read_payload(t.i, buf, t.len);
        release(&self.sh, t);
        t.len
    }

    /// Take the next message's slot, waiting per `wait`: the common case inline
    /// ([`try_take_fast`]), everything else out of line.
    #[inline]
    fn take(&mut self, wait: Wait) -> Result<Taken, PopError> {
        if let Some(r) = try_take_fast(&self.sh) {
            return r;
        }
        self.take_slow(wait)
    }

    /// [`Consumer::take`] when the fast path took nothing: one full attempt
    /// ([`try_take_once`]), then the wait.
    #[cold]
    #[inline(never)]
    fn take_slow(&mut self, wait: Wait) -> Result<Taken, PopError> {
        if let Step::Got(t) = try_take_once(&self.sh, false)? {
            return Ok(t);
        }
        if wait.is_now() {
            self.st.empty_polls += 1;
            if self.st.empty_polls >= 1024 {
                self.st.empty_polls = 0;
                if self.sh.poisoned() {
                    return Err(PopError::Corrupted(crate::shm::sigbus::RESIZED));
                }
                if let Step::Got(t) = try_take_once(&self.sh, true)? {
                    return Ok(t);
                }
            }
            return Err(PopError::Empty);
        }
        // Relaxed: a counter.
        self.sh.ctl().state.empty_waits.fetch_add(1, Ordering::Relaxed);
        let sh = &self.sh;
        let waiter = Waiter {
            word: &sh.ctl().not_empty,
            strategy: self.st.wait,
            asymmetric: sh.asym,
        };
        let r = waiter.wait(wait, |check| {
            if check != Check::Fast && sh.poisoned() {
                return Some(Err(PopError::Corrupted(crate::shm::sigbus::RESIZED)));
            }
            match try_take_once(sh, check == Check::Liveness) {
                Ok(Step::Got(t)) => Some(Ok(t)),
                Ok(Step::NotYet) => None,
                Err(e) => Some(Err(e)),
            }
        });
        match r {
            Ok(r) => r,
            Err(end) => {
                // Pass on a wake-up this consumer may have absorbed.
                if sh.len() > 0 {
                    sh.ctl().not_empty.notify(sh.asym);
                }
                Err(match end {
                    WaitEnd::Timeout => PopError::Timeout,
                    WaitEnd::Interrupted => PopError::Interrupted,
                })
            }
        }
    }
}

/// Free slot `t` for the next lap and wake one sleeping producer.
#[inline]
fn release(sh: &Shared, t: Taken) {
    // Release: pairs with the Acquire load of the sequence word in the producer's
    // try_claim_once, so our reads of the payload finish before it is overwritten.
    sh.seq(t.i).store(
        slot::encode(slot::next_lap(t.lap), Owner::NONE, EMPTY),
        Ordering::Release,
    );
    sh.intend_nothing();
    sh.ctl().not_full.notify(sh.asym);
}

/// Whether a closed queue is drained at dequeue position `pos`, whose slot holds no
/// message of `pos`'s lap: no producer claimed `pos`. The SeqCst load pairs with the
/// producers' SeqCst claim of the position and their SeqCst re-check of `closed`: a
/// producer whose claim comes after this load in that order sees `closed` and aborts
/// (its aborted slot is skipped); one whose claim comes before is seen here, and we wait
/// for its publish.
#[cold]
fn closed_and_drained(sh: &Shared, pos: u64) -> bool {
    // SeqCst: see above and Shared::closed.
    !super::after(sh.ctl().enq.pos.load(Ordering::SeqCst), pos)
}

/// Confirm that slot `seq`, seen holding `s` (EMPTY at the previous lap) at dequeue
/// position `pos`, is in a state the protocol cannot reach (module docs, C1): the
/// position is still `pos`, then the slot still holds `s`, each read as its latest
/// value ([`Shared::latest`]) in this order. The order makes it sound: the position
/// observed at `pos` proves that the previous lap's position was taken before that
/// read, which needs its slot published first, so a later read of the slot cannot
/// legally find it EMPTY at that lap.
#[cold]
fn impossible_at(sh: &Shared, pos: u64, seq: &crate::primitive::AtomicU64, s: u64) -> bool {
    if Shared::latest(&sh.ctl().deq.pos) != pos {
        return false;
    }
    Shared::latest(seq) == s
}

/// Confirm state C3 (module docs): the dequeue position is still `pos`, then the
/// enqueue position `e` is behind it, then `e`'s slot is EMPTY at `e`'s lap, each read
/// as its latest value in this order. A consumer moves the dequeue position past a
/// slot only after it was claimed, so that slot cannot be unclaimed at its lap.
#[cold]
fn passed_unclaimed(sh: &Shared, pos: u64) -> bool {
    let c = sh.ctl();
    if Shared::latest(&c.deq.pos) != pos {
        return false;
    }
    let e = Shared::latest(&c.enq.pos);
    if !super::after(pos, e) {
        return false;
    }
    let (l, _, st) = slot::decode(Shared::latest(sh.seq(e & (sh.nslots - 1))));
    l == (e >> sh.shift) & LAP_MASK && st == EMPTY
}

/// A claimed slot whose length word is above the slot size: an aborted claim (`None`:
/// skip it silently and go on) or a corrupt length (the message is dropped and counted
/// lost). Either way the slot is released.
#[cold]
fn odd_length(sh: &Shared, t: Taken, len: u64) -> Option<PopError> {
    release(sh, t);
    if len == super::ABORTED {
        return None;
    }
    sh.count_lost();
    Some(PopError::Corrupted("slot length above the slot size"))
}

/// The common case of [`try_take_once`], inline on the path of every pop: the slot at
/// the dequeue position is FULL at the position's lap and our claim of the position
/// wins. `None` when anything else is found (or the claim fails, or the claimed slot
/// held an aborted message), which [`try_take_once`] then handles in full. The atomic
/// accesses, their orderings and their order are that function's on the same path
/// (see the comments there); this only skips its other cases.
#[inline(always)]
fn try_take_fast(sh: &Shared) -> Option<Result<Taken, PopError>> {
    let c = sh.ctl();
    // Relaxed: as in try_take_once.
    let pos = c.deq.pos.load(Ordering::Relaxed);
    let i = pos & (sh.nslots - 1);
    let lap = (pos >> sh.shift) & LAP_MASK;
    // Acquire: as in try_take_once (pairs with the Release store of FULL in publish).
    let s = sh.seq(i).load(Ordering::Acquire);
    let (l, _, st) = slot::decode(s);
    if l != lap || st != FULL || !sh.claim_position(&sh.ctl().deq.pos, pos) {
        return None;
    }
    // Relaxed: ordered after the Acquire load of FULL above.
    let len = sh.len_word(i).load(Ordering::Relaxed);
    let t = Taken { i, lap, len: 0 };
    if len > sh.slot_size {
        return odd_length(sh, t, len).map(Err);
    }
    Some(Ok(Taken { len: len as usize, ..t }))
}

/// One attempt at the dequeue position.
fn try_take_once(sh: &Shared, check_liveness: bool) -> Result<Step, PopError> {
    let c = sh.ctl();
    let mut stale = 0u32;
    loop {
        // Relaxed: a first look; the claim is a CAS on it.
        let pos = c.deq.pos.load(Ordering::Relaxed);
        let i = pos & (sh.nslots - 1);
        let lap = (pos >> sh.shift) & LAP_MASK;
        let seq = sh.seq(i);
        // Acquire: pairs with the Release store of FULL in Producer::publish (and of
        // LOST in Shared::recover_writer).
        let s = seq.load(Ordering::Acquire);
        let (l, _, st) = slot::decode(s);
        if l == lap {
            match st {
                FULL | LOST => {
                    if !sh.claim_position(&sh.ctl().deq.pos, pos) {
                        continue;
                    }
                    let t = Taken { i, lap, len: 0 };
                    if st == LOST {
                        // Its producer died before publishing (counted when marked):
                        // report the lost message once.
                        release(sh, t);
                        return Err(PopError::Lost);
                    }
                    // Relaxed: ordered after the Acquire load of FULL above.
                    let len = sh.len_word(i).load(Ordering::Relaxed);
                    if len > sh.slot_size {
                        match odd_length(sh, t, len) {
                            Some(e) => return Err(e),
                            None => continue,
                        }
                    }
                    return Ok(Step::Got(Taken { len: len as usize, ..t }));
                }
                EMPTY => {
                    // Nothing published here. Closed and drained (no producer claimed
                    // this position)? Otherwise its producer is writing it.
                    if sh.closed() && closed_and_drained(sh, pos) {
                        return Err(PopError::Closed);
                    }
                    if check_liveness {
                        // Impossible (X1): no producer's position will ever reach ours.
                        // First: positions that far apart make any recovery meaningless.
                        if sh.positions_apart() {
                            return Err(PopError::Corrupted(
                                "enqueue and dequeue positions more than a lap apart",
                            ));
                        }
                        // Relaxed: a cheap first look; the checks below confirm.
                        let enq = c.enq.pos.load(Ordering::Relaxed);
                        // A producer claimed this position: if it died before
                        // publishing, mark the slot LOST and take that.
                        if super::after(enq, pos) && sh.recover_writer(pos, seq, s, lap) {
                            continue;
                        }
                        // Impossible (C3): the dequeue position is past the enqueue
                        // position's slot, which is still unclaimed.
                        if super::after(pos, enq) && passed_unclaimed(sh, pos) {
                            return Err(PopError::Corrupted("dequeue position past a slot no producer claimed"));
                        }
                    }
                    return Ok(Step::NotYet);
                }
                _ => {
                    // READING, which this protocol never writes: taken as a slot
                    // already dealt with at this lap. Move the position on.
                    c.deq.advance(pos);
                    continue;
                }
            }
        }
        if l == slot::next_lap(lap) {
            // Already taken and freed for the next lap: read stale, or the position
            // was put back by a neighbour. Move it on.
            c.deq.advance(pos);
            continue;
        }
        if slot::next_lap(l) == lap {
            // The previous lap's position `q` still holds the slot: its consumer has
            // not released it yet, so our position cannot have been written. If that
            // consumer died, free the slot for this lap as a producer would (one lost
            // message): otherwise, when no producer comes this far again (the
            // producers stopped exactly a lap after it), we would wait on the dead
            // reader forever and never see `Closed`. Once closed, look now (not only
            // on the liveness tick), so that the lost message is counted before
            // `Closed` is reported.
            if check_liveness && sh.positions_apart() {
                return Err(PopError::Corrupted(
                    "enqueue and dequeue positions more than a lap apart",
                ));
            }
            if st != EMPTY && (check_liveness || sh.closed()) && sh.recover_reader(pos.wrapping_sub(sh.nslots), seq, s)
            {
                continue;
            }
            // Closed: no producer can have claimed our position while the slot holds
            // the previous lap (one that claims it later sees `closed` and aborts).
            if sh.closed() && closed_and_drained(sh, pos) {
                return Err(PopError::Closed);
            }
            // Impossible (module docs, state C1): the dequeue position passed the
            // previous lap's position only after its slot was published (FULL or
            // LOST), and the slot leaves that only for this lap.
            if st == EMPTY && check_liveness && impossible_at(sh, pos, seq, s) {
                return Err(PopError::Corrupted("slot at the previous lap but never published"));
            }
            return Ok(Step::NotYet);
        }
        stale += 1;
        if stale > 10_000 {
            return Err(PopError::Corrupted(
                "slot sequence out of step with the dequeue position",
            ));
        }
        crate::primitive::spin_hint();
    }
}

/// Loom-only ends of a consumer: one that models a process killed mid-pop, and a
/// non-waiting pop that runs the liveness checks every time (a real `try_pop` runs
/// them every 1024 empty results, too many for a model).
#[cfg(loom)]
impl Consumer {
    /// Take a message (as a pop does) and die before reading or releasing it: the
    /// position stays taken, the slot FULL, this party's intent names the position.
    /// Whether a message was taken.
    pub fn loom_take_and_die(self) -> bool {
        let took = matches!(try_take_once(&self.sh, false), Ok(Step::Got(_)));
        super::loom_kill(&self.sh);
        std::mem::forget(self);
        took
    }

    /// [`Consumer::try_pop`] with the liveness checks (recovery of dead parties).
    pub fn loom_try_pop_checked(&mut self) -> Result<Vec<u8>, PopError> {
        let mut v = Vec::new();
        match try_take_once(&self.sh, true)? {
            Step::Got(t) => {
                self.copy_out(t, &mut v);
                Ok(v)
            }
            Step::NotYet => Err(PopError::Empty),
        }
    }
}

#[cfg(not(loom))]
/// A message read in place: derefs to its bytes; the slot is freed when it drops.
#[derive(Debug)]
pub struct PopGrant<'a> {
    c: &'a mut Consumer,
    t: Taken,
}

#[cfg(not(loom))]
impl std::ops::Deref for PopGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the claimed slot's payload holds `t.len` published bytes that no one
        // writes until we release the slot.
        unsafe { std::slice::from_raw_parts(self.c.sh.payload(self.t.i), self.t.len) }
    }
}

#[cfg(not(loom))]
impl Drop for PopGrant<'_> {
    fn drop(&mut self) {
        release(&self.c.sh, self.t);
    }
}

/// Read-only hooks for `crate::select`, which sleeps on many sources at once with the
/// same waiter protocol as [`Consumer`]'s own waits. They take nothing; they may move
/// the shared dequeue position past slots already taken, as every consumer does.
#[cfg(not(loom))]
impl Consumer {
    /// Whether a pop would return without waiting: a message is published at the
    /// dequeue position, or the queue is closed (a pop then drains or reports `Closed`),
    /// or (when `check_liveness`) the slot's producer died mid-push (`Lost`), or the
    /// queue is in a state a waiting pop reports as `Corrupted` at its liveness tick
    /// (C1, C2, C3 and a slot out of step in the module docs, or a mapping poisoned by
    /// a peer's resize). Another consumer may take the message first.
    pub(crate) fn is_ready(&self, check_liveness: bool) -> bool {
        let sh = &self.sh;
        if sh.closed() {
            return true;
        }
        // An fstat at most every liveness interval (the flag in between), as the
        // waits' own `State` polls.
        if check_liveness && sh.poisoned() {
            return true;
        }
        let c = sh.ctl();
        for _ in 0..64 {
            // Relaxed: a hint, as in try_take_once; the slot's word synchronizes.
            let pos = c.deq.pos.load(Ordering::Relaxed);
            let i = pos & (sh.nslots - 1);
            let lap = (pos >> sh.shift) & LAP_MASK;
            // Acquire: pairs with the Release store of FULL in Producer::publish.
            let s = sh.seq(i).load(Ordering::Acquire);
            let (l, _, st) = slot::decode(s);
            if l == lap {
                return match st {
                    FULL | LOST => true,
                    // EMPTY: ready when its producer died (a pop reports `Lost`), or
                    // when impossible (a pop reports `Corrupted`): C3, confirmed as in
                    // `try_take_once`.
                    EMPTY => {
                        // Relaxed: a cheap first look; the checks confirm.
                        let enq = c.enq.pos.load(Ordering::Relaxed);
                        check_liveness
                            && ((super::after(enq, pos)
                                && super::after(Shared::latest(&c.enq.pos), pos)
                                && !sh.intent_live(pos, super::ROLE_PRODUCER))
                                || (super::after(pos, enq) && passed_unclaimed(sh, pos)))
                    }
                    _ => {
                        // Not written by this protocol: a pop moves past it.
                        c.deq.advance(pos);
                        continue;
                    }
                };
            }
            if l == slot::next_lap(lap) {
                c.deq.advance(pos);
                continue;
            }
            if slot::next_lap(l) == lap {
                // A slower consumer still reads the previous lap's message here (ready
                // if it died: a pop frees the slot and looks again); EMPTY there is
                // impossible (a pop reports it).
                let q = pos.wrapping_sub(sh.nslots);
                return check_liveness
                    && if st != EMPTY {
                        super::after(Shared::latest(&c.deq.pos), q) && !sh.intent_live(q, ROLE_CONSUMER)
                    } else {
                        impossible_at(sh, pos, sh.seq(i), s)
                    };
            }
            // Out of step: a pop reports it.
            return true;
        }
        // The position keeps moving: others are taking messages; look again later.
        false
    }

    /// The word this consumer sleeps on for messages, and whether the segment uses
    /// asymmetric fences.
    pub(crate) fn data_wait(&self) -> (&crate::sync::WaitWord, bool) {
        (&self.sh.ctl().not_empty, self.sh.asym)
    }
}

impl EndKind for MpmcEnd<false> {}

impl Sealed for MpmcEnd<false> {
    type Ring = Shared;
    type State = State;
    type Options = QueueOptions;
    type Params = (usize, usize);
    type Fd = rustix::fd::OwnedFd;
    const NAME: &'static str = "Consumer";
    #[cfg(not(loom))]
    const HANDOFF: crate::handoff::Kind = crate::handoff::Kind::MpmcConsumer;

    fn create(name: &str, (slots, slot_size): (usize, usize), opts: &QueueOptions) -> Result<Shared> {
        super::create_named(name, slots, slot_size, opts, ROLE_CONSUMER)
    }

    fn open(name: &str, opts: &QueueOptions) -> Result<Shared> {
        super::open_named(name, opts, ROLE_CONSUMER)
    }

    fn from_fd(fd: rustix::fd::OwnedFd, opts: &QueueOptions) -> Result<Shared> {
        super::from_fd(fd, opts, ROLE_CONSUMER)
    }

    fn build(ring: Shared, opts: &QueueOptions) -> Result<Consumer> {
        Ok(Consumer::new(ring, opts.wait))
    }

    /// Leave the party table and take the segment's descriptor.
    fn hand_off(end: &mut Consumer) -> Option<rustix::fd::OwnedFd> {
        end.sh.detach();
        end.sh.seg.take().map(|s| s.into_fd())
    }

    fn fd_out(fd: Option<rustix::fd::OwnedFd>) -> rustix::fd::OwnedFd {
        fd.expect("an MPMC end is segment-backed")
    }

    /// Nothing: the party entry is left by the ring's own drop.
    fn close(_: &mut Consumer) {}

    fn name(ring: &Shared) -> Option<&str> {
        ring.seg.as_ref().and_then(|s| s.name())
    }
}

impl SealedSeveral for MpmcEnd<false> {
    fn try_clone(end: &Consumer) -> Result<Consumer> {
        Ok(Consumer::new(end.sh.reopen(ROLE_CONSUMER)?, end.st.wait))
    }
}

impl Several for MpmcEnd<false> {}
