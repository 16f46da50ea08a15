//! The producer end of the MPMC queue.

use super::slot::{self, EMPTY, FULL, LAP_MASK, Owner};
use super::{ABORTED, MpmcEnd, PushError, QueueOptions, QueueStats, ROLE_PRODUCER, Shared};
use crate::Result;
use crate::primitive::Ordering;
use crate::ring::end::{End, EndKind, Sealed, SealedSeveral, Several};
use crate::sync::{Check, Wait, WaitEnd, WaitStrategy, Waiter};
use std::time::Duration;

/// A producer end of an MPMC queue. Any number of producers (in any number of
/// processes) may push concurrently; each is one party of the queue.
///
/// ```
/// let (mut tx, mut rx) = shmring::ring::mpmc::channel(64, 128)?;
/// let mut tx2 = tx.try_clone()?;            // a second producer
/// tx.push(b"from one")?;
/// tx2.push(b"from two")?;
/// assert_eq!(rx.pop()?, b"from one");
/// assert_eq!(rx.pop()?, b"from two");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Producer = End<MpmcEnd<true>>;

/// What a producer keeps for itself.
#[derive(Debug)]
pub struct State {
    wait: WaitStrategy,
    /// Full results of try_* since the last liveness check.
    full_polls: u32,
}

/// A claimed slot: its position, index and lap.
#[derive(Debug, Clone, Copy)]
pub(super) struct Claim {
    pub(super) i: u64,
    pub(super) lap: u64,
}

impl Producer {
    pub(super) fn new(sh: Shared, wait: WaitStrategy) -> Self {
        Producer {
            sh,
            st: State { wait, full_polls: 0 },
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.sh.nslots as usize
    }

    /// Largest message (the slot payload size).
    pub fn slot_size(&self) -> usize {
        self.sh.slot_size as usize
    }

    /// Approximate number of messages queued.
    pub fn len(&self) -> usize {
        self.sh.len()
    }

    /// Whether the queue looks empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue looks full.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity()
    }

    /// The queue's shared counters.
    pub fn stats(&self) -> QueueStats {
        self.sh.stats()
    }

    /// Close the queue for everyone: pushes fail with `Closed`; consumers drain what is
    /// queued, then get `Closed`.
    pub fn close(&self) {
        self.sh.close();
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.sh.closed()
    }

    /// Change how this end waits.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.st.wait = wait;
    }

    /// Push `msg`, waiting while the queue is full.
    pub fn push(&mut self, msg: &[u8]) -> Result<(), PushError> {
        // The fast path ends in a tail call to the slow one, so that it saves no
        // registers of its own.
        match self.claim_fast(msg.len()) {
            Ok(Some(c)) => {
                self.fill_and_publish(c, msg);
                Ok(())
            }
            Ok(None) => self.push_slow(msg, Wait::Forever),
            Err(e) => Err(e),
        }
    }

    /// [`Producer::push`] (and its variants) when the fast path did not claim a slot.
    #[cold]
    #[inline(never)]
    fn push_slow(&mut self, msg: &[u8], wait: Wait) -> Result<(), PushError> {
        let c = self.claim_slot(msg.len(), wait)?;
        self.fill_and_publish(c, msg);
        Ok(())
    }

    /// Push `msg` if a slot is free now ([`PushError::Full`] otherwise).
    pub fn try_push(&mut self, msg: &[u8]) -> Result<(), PushError> {
        match self.claim_fast(msg.len()) {
            Ok(Some(c)) => {
                self.fill_and_publish(c, msg);
                Ok(())
            }
            Ok(None) => self.push_slow(msg, Wait::Now),
            Err(e) => Err(e),
        }
    }

    /// Push `msg`, waiting at most `timeout` for a free slot.
    pub fn push_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), PushError> {
        let c = self.claim_slot(msg.len(), Wait::after(timeout))?;
        self.fill_and_publish(c, msg);
        Ok(())
    }

    #[cfg(not(loom))]
    /// Claim a slot for a `len`-byte message written in place, waiting while full. The
    /// grant publishes on [`PushGrant::commit`]; dropped, it marks the slot aborted
    /// (consumers skip it).
    pub fn claim(&mut self, len: usize) -> Result<PushGrant<'_>, PushError> {
        let c = self.claim_slot(len, Wait::Forever)?;
        Ok(PushGrant {
            p: self,
            c,
            len,
            done: false,
        })
    }

    #[cfg(not(loom))]
    /// [`Producer::claim`] if a slot is free now.
    pub fn try_claim(&mut self, len: usize) -> Result<PushGrant<'_>, PushError> {
        let c = self.claim_slot(len, Wait::Now)?;
        Ok(PushGrant {
            p: self,
            c,
            len,
            done: false,
        })
    }

    #[inline]
    fn fill_and_publish(&self, c: Claim, msg: &[u8]) {
        self.sh.write_payload(c.i, msg);
        self.publish(c, msg.len() as u64);
    }

    /// Store the length word and mark the slot FULL; wake one sleeping consumer.
    #[inline]
    fn publish(&self, c: Claim, len_word: u64) {
        // Relaxed: published by the Release store of the sequence word below.
        self.sh.len_word(c.i).store(len_word, Ordering::Relaxed);
        // Release: pairs with the Acquire load of the sequence word in Consumer::take,
        // so the payload and length written before it are visible to the consumer.
        let order = Ordering::Release;
        #[cfg(loom)] // a loom test plants a Relaxed store here to prove the model catches it
        let order =
            crate::primitive::loom_break::weaken(crate::primitive::loom_break::LoomBreak::MpmcPublishRelaxed, order);
        self.sh.seq(c.i).store(slot::encode(c.lap, self.sh.me, FULL), order);
        self.sh.intend_nothing();
        self.sh.ctl().not_empty.notify(self.sh.asym);
    }

    /// Claim the slot at the enqueue position, waiting per `wait`: the common case
    /// inline ([`try_claim_fast`]), everything else out of line.
    #[inline]
    fn claim_slot(&mut self, len: usize, wait: Wait) -> Result<Claim, PushError> {
        if len as u64 > self.sh.slot_size {
            return Err(too_large(len, self.sh.slot_size));
        }
        if let Some(c) = try_claim_fast(&self.sh)? {
            return Ok(c);
        }
        self.claim_slow(wait)
    }

    /// The fast path of a claim for a `len`-byte message ([`try_claim_fast`]);
    /// `Ok(None)` also for a message too large, which the slow path reports.
    #[inline(always)]
    fn claim_fast(&self, len: usize) -> Result<Option<Claim>, PushError> {
        if len as u64 > self.sh.slot_size {
            return Ok(None);
        }
        try_claim_fast(&self.sh)
    }

    /// [`Producer::claim_slot`] when the fast path did not claim: one full attempt
    /// ([`try_claim_once`]), then the wait.
    #[cold]
    #[inline(never)]
    fn claim_slow(&mut self, wait: Wait) -> Result<Claim, PushError> {
        if let Some(c) = self.try_claim_once(false)? {
            return Ok(c);
        }
        if wait.is_now() {
            self.st.full_polls += 1;
            let check = self.st.full_polls >= 1024;
            if check {
                self.st.full_polls = 0;
                if self.sh.poisoned() {
                    return Err(PushError::Corrupted(crate::shm::sigbus::RESIZED));
                }
                if let Some(c) = self.try_claim_once(true)? {
                    return Ok(c);
                }
            }
            return Err(PushError::Full);
        }
        // Relaxed: a counter.
        self.sh.ctl().state.full_waits.fetch_add(1, Ordering::Relaxed);
        let sh = &self.sh;
        let waiter = Waiter {
            word: &sh.ctl().not_full,
            strategy: self.st.wait,
            asymmetric: sh.asym,
        };
        let r = waiter.wait(wait, |check| {
            if check != Check::Fast && sh.poisoned() {
                return Some(Err(PushError::Corrupted(crate::shm::sigbus::RESIZED)));
            }
            match try_claim_once(sh, check == Check::Liveness) {
                Ok(Some(c)) => Some(Ok(c)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        });
        match r {
            Ok(r) => r,
            Err(end) => {
                // Pass on a wake-up this producer may have absorbed.
                if !sh.closed() && sh.len() < sh.nslots as usize {
                    sh.ctl().not_full.notify(sh.asym);
                }
                Err(match end {
                    WaitEnd::Timeout => PushError::Timeout,
                    WaitEnd::Interrupted => PushError::Interrupted,
                })
            }
        }
    }

    fn try_claim_once(&self, check_liveness: bool) -> Result<Option<Claim>, PushError> {
        try_claim_once(&self.sh, check_liveness)
    }
}

/// Confirm that slot `seq`, seen holding `s` at enqueue position `pos`, is in a state
/// the protocol cannot reach (module docs, P1): the enqueue position is still
/// `pos`, then (`behind_deq`) the dequeue position is past the previous lap's position,
/// then the slot still holds `s`, each read as its latest value ([`Shared::latest`]) in
/// this order (see the consumer's `impossible_at` for why the order makes it sound).
#[cold]
fn impossible_at(sh: &Shared, pos: u64, seq: &crate::primitive::AtomicU64, s: u64, behind_deq: bool) -> bool {
    let c = sh.ctl();
    if Shared::latest(&c.enq.pos) != pos {
        return false;
    }
    if behind_deq && !super::after(Shared::latest(&c.deq.pos), pos.wrapping_sub(sh.nslots)) {
        return false;
    }
    Shared::latest(seq) == s
}

/// The error of a message longer than the slots (out of line: not on the push path).
#[cold]
fn too_large(len: usize, slot_size: u64) -> PushError {
    PushError::MessageTooLarge {
        len,
        max: slot_size as usize,
    }
}

/// A slot claimed after the queue was closed: give it back as an aborted message
/// (consumers skip it) and report `Closed`.
#[cold]
fn abort_closed(sh: &Shared, c: Claim) -> PushError {
    sh.len_word(c.i).store(ABORTED, Ordering::Relaxed);
    // Release: as in Producer::publish.
    sh.seq(c.i).store(slot::encode(c.lap, sh.me, FULL), Ordering::Release);
    sh.intend_nothing();
    sh.ctl().not_empty.notify(sh.asym);
    PushError::Closed
}

/// The common case of [`try_claim_once`], inline on the path of every push: the queue
/// is open, the slot at the enqueue position is EMPTY at the position's lap, as the
/// consumer that freed it (or the queue's creation) left it, and our claim of the
/// position wins. `Ok(None)` for anything else, which [`try_claim_once`] then handles
/// in full. The atomic accesses, their orderings and their order are that function's
/// on the same path (see the comments there); this only skips its other cases.
#[inline(always)]
fn try_claim_fast(sh: &Shared) -> Result<Option<Claim>, PushError> {
    if sh.closed() {
        return Ok(None);
    }
    let c = sh.ctl();
    // Relaxed: as in try_claim_once.
    let pos = c.enq.pos.load(Ordering::Relaxed);
    let i = pos & (sh.nslots - 1);
    let lap = (pos >> sh.shift) & LAP_MASK;
    // Acquire: as in try_claim_once (pairs with the consumer's Release of the slot).
    let s = sh.seq(i).load(Ordering::Acquire);
    if s != slot::encode(lap, Owner::NONE, EMPTY) || !sh.claim_position(&sh.ctl().enq.pos, pos) {
        return Ok(None);
    }
    if sh.closed() {
        return Err(abort_closed(sh, Claim { i, lap }));
    }
    Ok(Some(Claim { i, lap }))
}

/// One attempt to claim the slot at the enqueue position: `Ok(None)` when full.
fn try_claim_once(sh: &Shared, check_liveness: bool) -> Result<Option<Claim>, PushError> {
    let c = sh.ctl();
    let mut stale = 0u32;
    loop {
        if sh.closed() {
            return Err(PushError::Closed);
        }
        // Relaxed: a first look; the claim is a CAS on it.
        let pos = c.enq.pos.load(Ordering::Relaxed);
        let i = pos & (sh.nslots - 1);
        let lap = (pos >> sh.shift) & LAP_MASK;
        let seq = sh.seq(i);
        // Acquire: pairs with the Release stores of the sequence word by the consumer
        // that freed the slot, so its reads finished before we overwrite the payload.
        let s = seq.load(Ordering::Acquire);
        let (l, _, st) = slot::decode(s);
        if l == lap {
            if st == EMPTY {
                if sh.claim_position(&sh.ctl().enq.pos, pos) {
                    if sh.closed() {
                        return Err(abort_closed(sh, Claim { i, lap }));
                    }
                    return Ok(Some(Claim { i, lap }));
                }
                continue;
            }
            // Published (or marked LOST) at this lap while the position still reads
            // `pos`: read stale, or put back by a neighbour. Move it on (it is done).
            c.enq.advance(pos);
            continue;
        }
        if slot::next_lap(l) == lap {
            // The previous lap's position `q` still holds the slot: full here.
            let q = pos.wrapping_sub(sh.nslots);
            if check_liveness {
                // Impossible (X1): full, and no consumer's position will ever reach the
                // slot. First: positions that far apart make any recovery meaningless.
                if sh.positions_apart() {
                    return Err(PushError::Corrupted(
                        "enqueue and dequeue positions more than a lap apart",
                    ));
                }
                if st == EMPTY {
                    // Impossible (module docs, P1): the dequeue position passed `q`
                    // only after the slot was published at `q`'s lap.
                    // Relaxed: a cheap first look at the dequeue position; confirmed.
                    if super::after(c.deq.pos.load(Ordering::Relaxed), q) && impossible_at(sh, pos, seq, s, true) {
                        return Err(PushError::Corrupted(
                            "slot empty at the previous lap while the consumers have passed it",
                        ));
                    }
                } else if sh.recover_reader(q, seq, s) {
                    // A consumer that took `q` died before releasing it: freed (or
                    // the slot moved meanwhile). Look again.
                    continue;
                }
            }
            return Ok(None);
        }
        if l == slot::next_lap(lap) {
            // Taken and freed for the next lap while the position still names this
            // one: read stale, or put back by a neighbour. Move it on.
            c.enq.advance(pos);
            continue;
        }
        // Our position is stale (the slot moved on a lap): reload. A slot whose lap is
        // neither ours, the previous one, nor ahead with the position is corrupted.
        stale += 1;
        if stale > 10_000 {
            return Err(PushError::Corrupted(
                "slot sequence out of step with the enqueue position",
            ));
        }
        crate::primitive::spin_hint();
    }
}

/// Loom-only ends of a producer that model a process killed mid-push.
#[cfg(loom)]
impl Producer {
    /// Claim a slot (as a push does) and die before writing or publishing it: the
    /// position stays claimed, the slot EMPTY, this party's intent names the position.
    /// Whether a slot was claimed (false: the queue was full or closed; the party dies
    /// anyway).
    pub fn loom_claim_and_die(self) -> bool {
        let claimed = matches!(try_claim_once(&self.sh, false), Ok(Some(_)));
        super::loom_kill(&self.sh);
        std::mem::forget(self);
        claimed
    }

    /// [`Producer::try_push`] with the liveness checks (recovery of dead parties) every
    /// time (a real `try_push` runs them every 1024 full results, too many for a model).
    pub fn loom_try_push_checked(&mut self, msg: &[u8]) -> Result<(), PushError> {
        match try_claim_once(&self.sh, true)? {
            Some(c) => {
                self.fill_and_publish(c, msg);
                Ok(())
            }
            None => Err(PushError::Full),
        }
    }

    /// Say that this party claims the enqueue position (the intent store) and die
    /// before the claim CAS.
    pub fn loom_intend_and_die(self) {
        // Relaxed: as in try_claim_once.
        let pos = self.sh.ctl().enq.pos.load(Ordering::Relaxed);
        self.sh.intend(pos);
        super::loom_kill(&self.sh);
        std::mem::forget(self);
    }
}

#[cfg(not(loom))]
/// A claimed slot, written in place: derefs to `len` bytes of its payload.
/// [`PushGrant::commit`] publishes it; dropping it publishes an aborted marker that
/// consumers skip (a claimed slot cannot be un-claimed once others may have moved past).
#[derive(Debug)]
pub struct PushGrant<'a> {
    p: &'a mut Producer,
    c: Claim,
    len: usize,
    done: bool,
}

#[cfg(not(loom))]
impl PushGrant<'_> {
    /// Publish the message.
    pub fn commit(mut self) {
        self.p.publish(self.c, self.len as u64);
        self.done = true;
    }
}

#[cfg(not(loom))]
impl std::ops::Deref for PushGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the claimed slot's payload holds at least `len` bytes and nobody else
        // touches it until it is published.
        unsafe { std::slice::from_raw_parts(self.p.sh.payload(self.c.i), self.len) }
    }
}

#[cfg(not(loom))]
impl std::ops::DerefMut for PushGrant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in Deref; the grant is the only accessor.
        unsafe { std::slice::from_raw_parts_mut(self.p.sh.payload(self.c.i), self.len) }
    }
}

#[cfg(not(loom))]
impl Drop for PushGrant<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.p.publish(self.c, ABORTED);
        }
    }
}

impl EndKind for MpmcEnd<true> {}

impl Sealed for MpmcEnd<true> {
    type Ring = Shared;
    type State = State;
    type Options = QueueOptions;
    type Params = (usize, usize);
    type Fd = rustix::fd::OwnedFd;
    const NAME: &'static str = "Producer";
    #[cfg(not(loom))]
    const HANDOFF: crate::handoff::Kind = crate::handoff::Kind::MpmcProducer;

    fn create(name: &str, (slots, slot_size): (usize, usize), opts: &QueueOptions) -> Result<Shared> {
        super::create_named(name, slots, slot_size, opts, ROLE_PRODUCER)
    }

    fn open(name: &str, opts: &QueueOptions) -> Result<Shared> {
        super::open_named(name, opts, ROLE_PRODUCER)
    }

    fn from_fd(fd: rustix::fd::OwnedFd, opts: &QueueOptions) -> Result<Shared> {
        super::from_fd(fd, opts, ROLE_PRODUCER)
    }

    fn build(ring: Shared, opts: &QueueOptions) -> Result<Producer> {
        Ok(Producer::new(ring, opts.wait))
    }

    /// Leave the party table and take the segment's descriptor.
    fn hand_off(end: &mut Producer) -> Option<rustix::fd::OwnedFd> {
        end.sh.detach();
        end.sh.seg.take().map(|s| s.into_fd())
    }

    fn fd_out(fd: Option<rustix::fd::OwnedFd>) -> rustix::fd::OwnedFd {
        fd.expect("an MPMC end is segment-backed")
    }

    /// Nothing: the party entry is left by the ring's own drop.
    fn close(_: &mut Producer) {}

    fn name(ring: &Shared) -> Option<&str> {
        ring.seg.as_ref().and_then(|s| s.name())
    }
}

impl SealedSeveral for MpmcEnd<true> {
    fn try_clone(end: &Producer) -> Result<Producer> {
        Ok(Producer::new(end.sh.reopen(ROLE_PRODUCER)?, end.st.wait))
    }
}

impl Several for MpmcEnd<true> {}
