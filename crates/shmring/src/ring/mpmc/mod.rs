//! Bounded multi-producer multi-consumer queue of fixed-size slots in one shared
//! segment, for any number of producer and consumer processes.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue
//! (<https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue>):
//! a power-of-two array of slots, each with a sequence word, and two global positions
//! advanced by CAS. It is changed in one way, for crash safety: before its claim CAS,
//! every claimer says which position it is claiming in an intent word of its own (see
//! "Claims and intents"), so a process killed between claim and publish (or release)
//! leaves a claim that the others can attribute to a dead party and recover (see
//! `docs/mpmc-design.md` and "Recovery" below). Each push and each pop makes one locked
//! read-modify-write (its claim CAS), as Vyukov's and crossbeam's queues do.
//!
//! # Claims and intents
//!
//! A slot's sequence word ([`slot`]) holds a lap and a state: EMPTY (free for the
//! producer of that lap), FULL (a message of that lap), LOST (a recoverer's mark in
//! place of a dead producer's message). Each party (producer or consumer end) has a
//! party-table entry, held by a liveness lock for as long as it is attached, and an
//! *intent word* on a 128-byte line of its own: the position it claims or holds, or
//! none. Only its party writes it; the others read it only on their liveness tick.
//!
//! Producer at enqueue position `p` (lap `L`), slot EMPTY at `L`: store `p` in its intent
//! (Release), CAS the enqueue position `p -> p + 1` (SeqCst: a release; the claim);
//! on failure clear the intent and retry. Then write the payload and the length, store
//! FULL at `L` (Release), clear the intent. Consumer at dequeue position `p`, slot FULL
//! at `L`: store `p` in its intent, CAS the dequeue position `p -> p + 1`; read; store
//! EMPTY at `L + 1` (Release), clear the intent. So:
//!
//! - the enqueue position past `p` with the slot still EMPTY at `L` is `p`'s producer
//!   writing it; the dequeue position past `p` with the slot still FULL (or LOST) at `L`
//!   is `p`'s consumer reading it;
//! - whoever moved a position past `p` stored `p` in its intent first, and keeps it there
//!   until the slot moved on (published or released). Positions are written only by
//!   read-modify-writes (claims, the helping CAS below, and the `fetch_add(0)` reads of
//!   the checks), so a recoverer that reads a position past `p` with an Acquire RMW
//!   synchronizes with the claim that passed `p` (a release sequence) and sees that
//!   claimer's intent (`p`, or a later value stored after the slot moved on, which the
//!   recoverer's CAS on the slot then sees too).
//! - A party whose intent names `p` without having won `p` (its CAS failed and it has
//!   not yet cleared the intent, or it died in between, or before its CAS) is harmless:
//!   recovery waits while *any* live party of the role names `p`, and a live loser clears
//!   its intent at once. Positions are 64-bit and never repeat, so an intent cannot name
//!   a position of another lap (no ABA); a free party entry, or one reattached since its
//!   party died, holds no intent (attach clears it).
//!
//! # Recovery
//!
//! On the liveness tick (below) a waiting end looks at the claim it waits on:
//!
//! - A consumer at dequeue position `p` with the slot EMPTY at `L` and the enqueue
//!   position past `p` (read as its latest value): if no live producer (a held liveness
//!   lock, role producer, other than the caller) names `p` in its intent, the claimer
//!   died before publishing. CAS the slot EMPTY(`L`) -> LOST(`L`), counted in
//!   [`QueueStats::lost`]; the consumer that takes it gets [`PopError::Lost`] once. The
//!   CAS fails if the claimer published after all.
//! - A producer at enqueue position `p` (or a consumer at dequeue position `p`) with the
//!   slot still FULL or LOST at `L - 1` and the dequeue position past `q = p - slots`:
//!   if no live consumer names `q`, the reader died before releasing. CAS the slot to
//!   EMPTY at `L` (a message in it is counted lost). A consumer does this on a closed
//!   queue at once (not only on the tick), so that the loss is counted before `Closed`.
//!
//! A live claimer is never robbed: it named its position before its CAS, and the
//! recoverer reads that intent after seeing the position passed. A live but stopped
//! process whose intent names `p` (stopped between its intent store and its failed CAS)
//! holds back the recovery of `p` until it runs again.
//!
//! # Closing
//!
//! [`Producer::close`] sets `closed`. A producer re-checks `closed` after its SeqCst claim
//! CAS and, if set, publishes its slot as an aborted message (consumers skip it) and
//! reports `Closed`. A consumer that finds no message at its position and sees `closed`
//! reads the enqueue position (SeqCst): not past its position, no producer claimed it
//! (one that claims later sees `closed`), so the queue is drained: `Closed`; past it,
//! a producer claimed it before the close, and the consumer waits for its message.
//!
//! Each push and pop first tries the common case inline (producer: the slot at the
//! enqueue position is EMPTY at its lap and the claim wins; consumer: the slot is FULL
//! at its lap and the claim wins), with the same atomic accesses, orderings and order
//! as the general attempt; anything else (a full or empty queue, a lost race, a slot to
//! recover, a closed queue) goes to the general attempt and the waits, out of line.
//!
//! # What can be lost
//!
//! - A producer killed after claiming a position and before publishing it: that message
//!   (never complete) is skipped by the consumer that reaches the slot, which gets
//!   [`PopError::Lost`] once for it; counted in [`QueueStats::lost`].
//! - A consumer killed after claiming a position and before releasing its slot: the
//!   message it was reading is dropped (at-most-once delivery) and the slot freed by the
//!   producer that reaches it a lap later, or by a consumer that waits on it when no
//!   producer comes (e.g. after `close`); counted in [`QueueStats::lost`].
//!
//! Nothing else: published messages are delivered exactly once.
//!
//! Detection of a dead claimer happens on the waiters' liveness tick (50 ms), so a
//! crash stalls the queue at that slot for at most about that long.
//!
//! # Impossible states (a neighbour wrote the segment)
//!
//! Any process that can map the segment can write any word of it. The states below are
//! ones the protocol never reaches on its own. A call that waits (blocking or timed,
//! every [`WaitStrategy`]) looks for them on its liveness tick, so within about 50 ms;
//! the non-waiting `try_*` calls look every 1024 `Full`/`Empty` results. None of these
//! checks is on the path of a push or pop that succeeds at once. Before reporting, a
//! suspect state is confirmed by reading each word involved as its latest value (a
//! read-modify-write that changes nothing), positions first: a plain load may return an
//! older value, which could make a legal state look impossible.
//!
//! Seen by a consumer at dequeue position `p` (lap `L`), reported as
//! [`PopError::Corrupted`]:
//!
//! - **C1**: the slot EMPTY at lap `L - 1`: the position passed the previous lap's
//!   position only after its slot was published (FULL or LOST), and the slot leaves
//!   that only for lap `L`. (FULL or LOST at `L - 1` is a reader's claim: recovered when
//!   no live reader names it, above. The issue-16 wedge, a sequence word put back a lap
//!   holding a message, is now such a claim: freed, counted lost, no longer a wedge.)
//! - **C3**: the slot EMPTY at lap `L` while the dequeue position is past the enqueue
//!   position `e` and `e`'s slot is EMPTY at `e`'s lap (the dequeue position was moved
//!   past slots nobody published).
//! - a slot whose lap is none of `L - 1`, `L`, `L + 1` that stays so over 10,000
//!   re-reads of the position (the position cannot catch up with it).
//! - a published length above the slot size (the message is dropped and counted
//!   lost, [`QueueStats::lost`]).
//!
//! (C2 of earlier versions, the slot EMPTY at `L` with the enqueue position past `p`, is
//! now the state of a producer's claim: recovered as lost when no live producer names
//! `p`, so an enqueue position moved forward by a neighbour costs the skipped positions,
//! each reported `Lost` and counted.)
//!
//! Seen by a producer at enqueue position `p` (lap `L`), reported as
//! [`PushError::Corrupted`]:
//!
//! - **P1**: the slot EMPTY at lap `L - 1` while the dequeue position is past
//!   `p - slots`: consumers move past a position only after its slot was published.
//!   (EMPTY at `L - 1` with the dequeue position not past it is `p - slots`'s producer
//!   writing: the queue is full there.)
//! - a slot whose lap is none of `L - 1`, `L`, `L + 1` as for consumers.
//!
//! (P2 of earlier versions, FULL at `L - 1` with the dequeue position past `p - slots`,
//! is now a reader's claim: recovered as above.)
//!
//! Seen by either side while it waits (full or empty), reported as `Corrupted`, before
//! any recovery is tried:
//!
//! - **X1**: the dequeue position more than two laps behind the enqueue position, or
//!   more than a lap ahead of it: each side moves its position only past slots the
//!   other side handled a lap before, so they stay within about a lap of each other.
//!   (Found by the long hostile run: a dequeue position overwritten with a huge value
//!   left the consumers reporting an out-of-step slot on every pop, while the
//!   producers, whose slot held the previous lap's message that no consumer would ever
//!   reach, waited for ever.)
//!
//! [`select`](crate::select::select) over a consumer (or a [`Queue`](crate::Queue))
//! looks for C1, C3, a dead claim, a slot out of step and a poisoned mapping on its
//! liveness tick too, and reports the source ready: the receive that follows reports
//! `Corrupted` or `Lost`, or recovers the slot.
//!
//! Repaired, not reported:
//!
//! - A claim (a position passed, its slot not moved on) that no live party of the right
//!   role names in its intent: treated as the claim of a dead party, so the slot is
//!   recovered on the tick and its message counted in [`QueueStats::lost`], as above.
//!   Intents of free entries, of entries of the other role, and the waiting end's own
//!   intent (it holds nothing while it waits) are not looked at.
//! - A position behind its slots (the slot already published at the position's lap, or
//!   at the next lap): whoever sees it moves the position on (a CAS that succeeds only
//!   if the position still names that slot). A message in a slot that a neighbour moved
//!   a lap forward is lost without being counted: the slot looks taken. A slot in state
//!   3 (never written by this protocol) is passed the same way.
//!
//! What is left: an intent forged in the name of a *live* party of the right role looks
//! like that party's claim; the recovery of that position waits until the party's next
//! claim overwrites it (a timed call still returns `Timeout`). Payload bytes a neighbour
//! rewrites are delivered as written (a message may read as garbage, never out of
//! bounds). A dequeue position moved forward within a lap skips messages unnoticed until
//! a producer comes round to their slots, which are then freed as a dead reader's
//! (counted lost).
//!
//! A mapping poisoned by a peer's resize of the file ([`crate::shm::sigbus`]) is
//! reported as `Corrupted` by every wait (on its `State` polls, an `fstat` at most every
//! liveness interval) and by the `try_*` calls' periodic check. A push or pop that
//! completes at once may still do so on the private zero pages that replaced the
//! mapping (a message pushed there is lost); the next call that finds the queue full or
//! empty reports `Corrupted`.

mod consumer;
mod ends;
mod error;
#[cfg(not(loom))]
mod inspect;
#[cfg(not(loom))]
mod iter;
mod layout;
mod producer;
pub mod slot;

pub use consumer::Consumer;
#[cfg(not(loom))]
pub use consumer::PopGrant;
pub use ends::MpmcEnd;
pub use error::{PopError, PushError};
#[cfg(not(loom))]
pub use inspect::{PartyReport, QueueReport, inspect};
pub use producer::Producer;
#[cfg(not(loom))]
pub use producer::PushGrant;

/// Whether position `a` is past position `b` (positions only grow; compared modulo
/// 2^64 like the laps).
#[inline]
const fn after(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) > 0
}

use crate::primitive::{AtomicU64, Ordering};
use crate::shm::{Segment, SegmentKind, SegmentOptions};
use crate::sync::WaitStrategy;
use crate::{Error, Result};
use layout::{CONTROL_SIZE, Control};
#[cfg(loom)]
use layout::{LoomQueue, LoomSlot};
use slot::{GEN_MASK, Owner};

/// Under loom: end this party as a killed process would, holding whatever it holds
/// (its intent stays, its entry stays attached, nothing is released): marked so that
/// [`Shared::party_alive`] says dead; the caller then forgets its end without a drop.
#[cfg(loom)]
fn loom_kill(sh: &Shared) {
    // Release: pairs with the Acquire load in party_alive (a dead process's writes are
    // all visible once its death can be seen, as the kernel's lock release ensures).
    sh.ctl().parties[sh.party].reserved.store(1, Ordering::Release);
}
use std::ptr::NonNull;

/// Most parties (producer and consumer ends) attached to one queue at a time.
#[cfg(not(loom))]
pub const MAX_PARTIES: usize = 64;
/// Most parties of a loom model's queue (a small table keeps the model small).
#[cfg(loom)]
pub const MAX_PARTIES: usize = 4;
/// Largest number of slots.
pub const MAX_SLOTS: usize = 1 << 24;
/// Largest slot payload in bytes.
pub const MAX_SLOT_SIZE: usize = 1 << 26;
/// First liveness-lock slot of the party table (the SPSC ring uses 0 and 1).
const PARTY_LOCK_BASE: u32 = 16;
/// Bytes of a slot header: sequence word and length word.
const SLOT_HEADER: usize = 16;
/// The length word's flag for a claim that was aborted: consumers skip the slot.
const ABORTED: u64 = 1 << 63;

/// Shared counters of a queue, readable by any attached process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStats {
    /// Slots in the queue.
    pub slots: u64,
    /// Slot payload size in bytes.
    pub slot_size: u64,
    /// Positions claimed by producers (messages pushed, including lost ones).
    pub pushed: u64,
    /// Positions taken by consumers (messages popped, including lost ones).
    pub popped: u64,
    /// Messages lost to crashed producers or consumers.
    pub lost: u64,
    /// Times a producer waited on a full queue.
    pub full_waits: u64,
    /// Times a consumer waited on an empty queue.
    pub empty_waits: u64,
    /// Parties attached now (live producers and consumers).
    pub parties: u32,
}

/// Slot payload size of loom models.
#[cfg(loom)]
pub const LOOM_SLOT_SIZE: usize = 8;

const ROLE_PRODUCER: u32 = 1;
const ROLE_CONSUMER: u32 = 2;

/// The slot size rounded so that slots fill whole 64-byte lines: producers and
/// consumers working on neighbouring slots never share a line.
const fn stride_for(slot_size: usize) -> usize {
    (SLOT_HEADER + slot_size + 63) & !63
}

/// How a queue is created or opened.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct QueueOptions {
    /// Segment options (mode, prefault, keep, open timeout, fences).
    pub segment: SegmentOptions,
    /// How this end waits when the queue is full (producer) or empty (consumer).
    pub wait: WaitStrategy,
}

impl QueueOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the wait strategy.
    pub fn wait(mut self, w: WaitStrategy) -> Self {
        self.wait = w;
        self
    }
    /// Set the segment options.
    pub fn segment(mut self, s: SegmentOptions) -> Self {
        self.segment = s;
        self
    }
}

/// One end's view of the queue: its mapping, its party entry and its identity.
#[derive(Debug)]
#[cfg_attr(loom, allow(dead_code))] // slots and stride: mapping only
#[doc(hidden)] // opaque: public only as the `Ring` of the end kinds
pub struct Shared {
    ctl: NonNull<Control>,
    slots: NonNull<u8>,
    seg: Option<Segment>,
    nslots: u64,
    shift: u32,
    slot_size: u64,
    stride: usize,
    asym: bool,
    me: Owner,
    party: usize,
    #[cfg(loom)]
    ring: Option<std::sync::Arc<LoomQueue>>,
}

// SAFETY: the control block and slots are shared memory accessed through atomics and
// bounds-checked copies; the pointers stay valid as long as `seg` (owned) lives.
unsafe impl Send for Shared {}

impl Shared {
    #[inline]
    fn ctl(&self) -> &Control {
        // SAFETY: `ctl` points into the mapping owned by `seg`, which lives as long as
        // `self`; Control is all atomics, valid for any bit pattern.
        unsafe { self.ctl.as_ref() }
    }

    /// Pointer to slot `i`'s header. Callers pass a position's slot index (`pos &
    /// (nslots - 1)`); the same mask here keeps any index in bounds, at no cost on
    /// that path (the two masks fold into one).
    #[cfg(not(loom))]
    #[inline]
    fn slot_ptr(&self, i: u64) -> *mut u8 {
        let i = i & (self.nslots - 1);
        // SAFETY: `i < nslots` (masked; nslots is a power of two, checked at attach), and
        // the mapping holds nslots * stride bytes of slots (checked at attach).
        unsafe { self.slots.as_ptr().add(i as usize * self.stride) }
    }

    #[cfg(loom)]
    #[inline]
    fn seq(&self, i: u64) -> &AtomicU64 {
        &self.ring.as_ref().expect("loom queue").slots[i as usize].seq
    }

    #[cfg(loom)]
    #[inline]
    fn len_word(&self, i: u64) -> &AtomicU64 {
        &self.ring.as_ref().expect("loom queue").slots[i as usize].len
    }

    #[cfg(loom)]
    fn write_payload(&self, i: u64, msg: &[u8]) {
        let cell = &self.ring.as_ref().expect("loom queue").slots[i as usize].payload;
        cell.with_mut(|p| {
            // SAFETY: loom checks that no other access to the cell races with this write.
            unsafe { (&mut *p)[..msg.len()].copy_from_slice(msg) }
        });
    }

    #[cfg(loom)]
    fn read_payload(&self, i: u64, buf: &mut Vec<u8>, len: usize) {
        let cell = &self.ring.as_ref().expect("loom queue").slots[i as usize].payload;
        cell.with(|p| {
            // SAFETY: loom checks that no write to the cell races with this read.
            let bytes = unsafe { &(&*p)[..len] };
            buf.extend_from_slice(bytes)
        });
    }

    /// Copy `msg` into slot `i`'s payload (`msg.len() <= slot_size`, checked by the
    /// caller's claim).
    #[cfg(not(loom))]
    #[inline]
    fn write_payload(&self, i: u64, msg: &[u8]) {
        assert!(msg.len() as u64 <= self.slot_size);
        // SAFETY: the payload area holds slot_size >= msg.len() bytes and only the
        // slot's claimer writes it until it is published.
        unsafe { crate::ring::copy_bytes(msg.as_ptr(), self.payload(i), msg.len()) };
    }

    /// Append slot `i`'s first `len` payload bytes (`len <= slot_size`) to `buf`.
    #[cfg(not(loom))]
    #[inline]
    fn read_payload(&self, i: u64, buf: &mut Vec<u8>, len: usize) {
        assert!(len as u64 <= self.slot_size);
        buf.reserve(len);
        let at = buf.len();
        // SAFETY: the payload holds `len` published bytes that nobody writes while we
        // hold the slot; `buf` has `len` bytes of spare capacity after `at`.
        unsafe {
            crate::ring::copy_bytes(self.payload(i), buf.as_mut_ptr().add(at), len);
            buf.set_len(at + len);
        }
    }

    #[cfg(not(loom))]
    #[inline]
    fn seq(&self, i: u64) -> &AtomicU64 {
        // SAFETY: the slot header is 64-byte aligned (stride and base are multiples of
        // 64), in bounds (slot_ptr), all-atomic, and lives as long as `self`.
        unsafe { &*(self.slot_ptr(i) as *const AtomicU64) }
    }

    #[cfg(not(loom))]
    #[inline]
    fn len_word(&self, i: u64) -> &AtomicU64 {
        // SAFETY: as in `seq`, 8 bytes further.
        unsafe { &*(self.slot_ptr(i).add(8) as *const AtomicU64) }
    }

    #[cfg(not(loom))]
    #[inline]
    fn payload(&self, i: u64) -> *mut u8 {
        // SAFETY: the payload follows the 16-byte header within the slot's stride.
        unsafe { self.slot_ptr(i).add(SLOT_HEADER) }
    }

    /// Whether a peer resized the segment under this mapping (see
    /// [`Segment::check_resized_every`]: an `fstat` at most every liveness interval):
    /// checked by the waits' `State` and `Liveness` polls, reported as `Corrupted`.
    pub(crate) fn poisoned(&self) -> bool {
        self.seg
            .as_ref()
            .is_some_and(|s| s.check_resized_every(crate::sync::LIVENESS_INTERVAL))
    }

    /// This party's intent word (module docs, "Claims and intents").
    #[inline]
    fn my_intent(&self) -> &AtomicU64 {
        // The index is < MAX_PARTIES for every attached end (the only ones that claim);
        // the mask keeps a detached end's index in bounds without a branch.
        &self.ctl().intents[self.party % MAX_PARTIES].pos
    }

    /// Say that this party is about to claim position `pos` (before its claim CAS).
    #[inline]
    fn intend(&self, pos: u64) {
        #[cfg(loom)] // a loom test plants the store after the claim to prove it is caught
        if crate::primitive::loom_break::active(crate::primitive::loom_break::LoomBreak::MpmcIntentAfterClaim) {
            return;
        }
        // Release: ordered before the claim CAS that follows (itself a release); a
        // recoverer that acquires the position past `pos` reads this or a later value
        // (pairs with the Acquire loads in `intent_live`).
        self.my_intent().store(pos, Ordering::Release);
    }

    /// The planted bug of [`Shared::intend`]: the intent stored after the claim.
    #[cfg(loom)]
    #[inline]
    fn intend_late(&self, pos: u64) {
        if crate::primitive::loom_break::active(crate::primitive::loom_break::LoomBreak::MpmcIntentAfterClaim) {
            self.my_intent().store(pos, Ordering::Release);
        }
    }

    /// Claim position `pos` of `position` (the enqueue position, its slot seen EMPTY at
    /// `pos`'s lap; or the dequeue position, its slot seen FULL or LOST): say so in
    /// this party's intent word, then move the position past it by CAS (module docs,
    /// "Claims and intents"). On failure (another party took it) the intent is
    /// withdrawn.
    #[inline(always)]
    fn claim_position(&self, position: &AtomicU64, pos: u64) -> bool {
        self.intend(pos);
        // SeqCst: one total order with the other side's claims and the `closed`
        // checks. A producer's claim must come before its re-check of `closed` against
        // a consumer that saw the slot EMPTY, then `closed`, then the position not yet
        // passed (the consumer's `closed_and_drained`), so a push racing with close
        // never strands a message. As a release it publishes the intent store above to
        // a recoverer that acquires the position past `pos` (`Shared::intent_live`). A
        // consumer's payload needs no Acquire here: its Acquire load of FULL did that,
        // and nobody changes a slot whose position is not yet passed.
        if position
            .compare_exchange(pos, pos.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            self.intend_nothing();
            return false;
        }
        #[cfg(loom)]
        self.intend_late(pos);
        true
    }

    /// Say that this party holds no position (its claim CAS failed, or it published or
    /// released what it held).
    #[inline]
    fn intend_nothing(&self) {
        // Release: after the slot's publish or release store; a recoverer that reads
        // this (Acquire, in `intent_live`) then finds the slot moved on, so its CAS on
        // the slot fails.
        self.my_intent().store(layout::NO_INTENT, Ordering::Release);
    }

    /// Whether party entry `idx` is held by a live party (its liveness lock is held;
    /// under loom, the model did not mark it killed).
    fn party_alive(&self, idx: usize) -> bool {
        #[cfg(loom)]
        {
            // Acquire: pairs with the Release store of the mark in `loom_kill`.
            self.ctl().parties[idx].reserved.load(Ordering::Acquire) == 0
        }
        #[cfg(not(loom))]
        match &self.seg {
            Some(seg) => {
                use rustix::fd::AsFd;
                crate::shm::liveness::slot_held_by_other(seg.as_fd(), PARTY_LOCK_BASE + idx as u32).unwrap_or(true)
            }
            None => true,
        }
    }

    /// Whether a live party of `role` other than this end names position `pos` in its
    /// intent word: it may hold `pos` (module docs, "Recovery"). The caller read the
    /// position of that role past `pos` with an Acquire RMW ([`Shared::latest`]) first:
    /// positions are written only by RMWs, so that read synchronizes with the claim CAS
    /// that moved the position past `pos` (a release sequence), and the claimer's
    /// intent store before it is visible here. Callers ask while they wait and hold no
    /// position themselves, so this end's own entry is skipped. On the liveness tick
    /// only.
    #[cold]
    fn intent_live(&self, pos: u64, role: u32) -> bool {
        let c = self.ctl();
        (0..MAX_PARTIES).any(|idx| {
            idx != self.party
                // Acquire (both): pair with the Release stores of the role at attach
                // and of the intent in `intend`/`intend_nothing`.
                && c.parties[idx].role.load(Ordering::Acquire) == role
                && c.intents[idx].pos.load(Ordering::Acquire) == pos
                && self.party_alive(idx)
        })
    }

    /// Recovery of a producer's claim (module docs, "Recovery"): slot `seq`, seen
    /// holding `s` (EMPTY at `lap`, the lap of position `pos`) by a consumer at dequeue
    /// position `pos`. If the enqueue position is past `pos` (a producer claimed it)
    /// and no live producer names `pos` in its intent, the claimer died before
    /// publishing: mark the slot LOST in its place (counted lost; the consumer that
    /// takes it gets `Lost`). Whether the slot may have changed (the caller looks
    /// again). On the liveness tick only.
    #[cold]
    fn recover_writer(&self, pos: u64, seq: &AtomicU64, s: u64, lap: u64) -> bool {
        if !after(Shared::latest(&self.ctl().enq.pos), pos) || self.intent_live(pos, ROLE_PRODUCER) {
            return false;
        }
        // AcqRel: an RMW, so it fails if the claimer published (the Release store of
        // FULL, visible here whenever its intent no longer named `pos`); Release
        // pairs with the consumers' Acquire loads of the slot.
        if seq
            .compare_exchange(
                s,
                slot::encode(lap, Owner::NONE, slot::LOST),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.count_lost();
        }
        true
    }

    /// Recovery of a consumer's claim (module docs, "Recovery"): slot `seq`, seen
    /// holding `s` (not EMPTY, at the lap of dequeue position `q`), by a party at a
    /// position a lap after `q`. If the dequeue position is past `q` (a consumer
    /// claimed it) and no live consumer names `q` in its intent, the reader died
    /// before releasing: free the slot for the next lap (a message in it is counted
    /// lost). Whether the slot may have changed (the caller looks again). On the
    /// liveness tick, or when a consumer of a closed queue waits.
    #[cold]
    fn recover_reader(&self, q: u64, seq: &AtomicU64, s: u64) -> bool {
        #[cfg(loom)] // a loom test plants the missing check to prove it is caught
        let skip = crate::primitive::loom_break::active(crate::primitive::loom_break::LoomBreak::MpmcRecoverUnclaimed);
        #[cfg(not(loom))]
        let skip = false;
        if !skip && !after(Shared::latest(&self.ctl().deq.pos), q) {
            return false;
        }
        if self.intent_live(q, ROLE_CONSUMER) {
            return false;
        }
        let (lap, _, st) = slot::decode(s);
        let i = q & (self.nslots - 1);
        // Relaxed: the slot was read with Acquire (after its publish); only counted.
        let len = self.len_word(i).load(Ordering::Relaxed);
        // AcqRel: an RMW, so it fails if the reader released the slot (its Release
        // store, visible here whenever its intent no longer named `q`); Release pairs
        // with the producers' Acquire loads of the slot.
        if seq
            .compare_exchange(
                s,
                slot::encode(slot::next_lap(lap), Owner::NONE, slot::EMPTY),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            if st == slot::FULL && len != ABORTED {
                self.count_lost();
            }
            self.ctl().not_full.notify(self.asym);
        }
        true
    }

    /// The current value of `word`, read by a read-modify-write that adds nothing: an
    /// RMW reads the last value in the word's modification order, never a stale one.
    /// Only used to confirm a suspected impossible state before reporting it
    /// (`Corrupted`), on the liveness tick: a plain load of a position or slot word may
    /// return an older value, which could make a legal state look impossible.
    #[cold]
    fn latest(word: &AtomicU64) -> u64 {
        // AcqRel: an RMW that changes nothing; Acquire so that the reads that follow
        // (the next word of the confirmation) are not ordered before it.
        word.fetch_add(0, Ordering::AcqRel)
    }

    /// Impossible state X1 (module docs): the dequeue position more than two laps
    /// behind the enqueue position or more than a lap ahead of it. Each side moves its
    /// position only past a slot the other side handled at the lap before, so the two
    /// stay within a lap of each other, give or take the slots claimed by parties that
    /// died before moving a position along (at most a lap of them). Read as latest
    /// values, enqueue, dequeue, enqueue again, so that a position moving meanwhile
    /// never looks out of range. On the liveness tick only.
    #[cold]
    fn positions_apart(&self) -> bool {
        let c = self.ctl();
        let e = Shared::latest(&c.enq.pos);
        let d = Shared::latest(&c.deq.pos);
        let e2 = Shared::latest(&c.enq.pos);
        let lap = self.nslots as i64;
        (e.wrapping_sub(d) as i64) > 2 * lap || (d.wrapping_sub(e2) as i64) > lap
    }

    fn closed(&self) -> bool {
        // SeqCst: one of the SeqCst accesses (with the producer's claim CAS and the
        // consumer's re-load of the slot) that keep a push racing with close() from
        // stranding a message; see Consumer's `try_take_once`.
        self.ctl().state.closed.load(Ordering::SeqCst) != 0
    }

    fn close(&self) {
        // SeqCst: see closed().
        self.ctl().state.closed.store(1, Ordering::SeqCst);
        self.ctl().not_empty.wake_everyone();
        self.ctl().not_full.wake_everyone();
    }

    fn count_lost(&self) {
        // Relaxed: a counter.
        self.ctl().state.lost.fetch_add(1, Ordering::Relaxed);
    }

    fn stats(&self) -> QueueStats {
        let c = self.ctl();
        // Relaxed (all): independent counters for display.
        let parties = c.parties.iter().filter(|p| p.role.load(Ordering::Relaxed) != 0).count() as u32;
        QueueStats {
            slots: self.nslots,
            slot_size: self.slot_size,
            pushed: c.enq.pos.load(Ordering::Relaxed),
            popped: c.deq.pos.load(Ordering::Relaxed),
            lost: c.state.lost.load(Ordering::Relaxed),
            full_waits: c.state.full_waits.load(Ordering::Relaxed),
            empty_waits: c.state.empty_waits.load(Ordering::Relaxed),
            parties,
        }
    }

    /// Approximate number of messages in the queue.
    fn len(&self) -> usize {
        // Relaxed: an estimate; positions only grow.
        let deq = self.ctl().deq.pos.load(Ordering::Relaxed);
        let enq = self.ctl().enq.pos.load(Ordering::Relaxed);
        enq.saturating_sub(deq).min(self.nslots) as usize
    }

    /// Under loom the control block is made of loom atomics, which cannot live in a
    /// mapping: segment-backed queues are not modelled (see `loom_channel`).
    #[cfg(loom)]
    fn from_segment(seg: Segment) -> Result<Self> {
        Err(crate::ring::not_modelled(&seg))
    }

    /// Map `seg` (a READY MPMC segment) and validate its parameters; no party yet.
    #[cfg(not(loom))]
    fn from_segment(seg: Segment) -> Result<Self> {
        let info = *seg.info();
        let corrupted = Error::corruption_of(seg.display_name());
        let (nslots, slot_size, stride) = (info.params[0], info.params[1], info.params[2]);
        if !nslots.is_power_of_two() || nslots < 2 || nslots > MAX_SLOTS as u64 {
            return Err(corrupted(format!(
                "slot count {nslots} is not a power of two in 2..=2^24"
            )));
        }
        if slot_size == 0 || slot_size > MAX_SLOT_SIZE as u64 || stride != stride_for(slot_size as usize) as u64 {
            return Err(corrupted(format!(
                "slot size {slot_size} / stride {stride} are inconsistent"
            )));
        }
        if seg.area_len() as u64 != CONTROL_SIZE as u64 + nslots * stride {
            return Err(corrupted(format!(
                "area of {} bytes does not hold the slots",
                seg.area_len()
            )));
        }
        let asym = seg.asymmetric_fences()?;
        let base = NonNull::new(seg.area_ptr()).expect("mapping is never null");
        Ok(Shared {
            ctl: base.cast(),
            // SAFETY: the area holds CONTROL_SIZE + nslots * stride bytes (checked).
            slots: unsafe { base.add(CONTROL_SIZE) },
            seg: Some(seg),
            nslots,
            shift: nslots.trailing_zeros(),
            slot_size,
            stride: stride as usize,
            asym,
            me: Owner::NONE,
            party: usize::MAX,
        })
    }

    /// An end of a loom model's queue, with a party taken by CAS (no locks under loom).
    #[cfg(loom)]
    fn loom_attach(ring: std::sync::Arc<LoomQueue>, role: u32) -> Result<Self> {
        let nslots = ring.slots.len() as u64;
        let mut sh = Shared {
            ctl: NonNull::from(&ring.ctl),
            slots: NonNull::dangling(),
            seg: None,
            nslots,
            shift: nslots.trailing_zeros(),
            slot_size: LOOM_SLOT_SIZE as u64,
            stride: 0,
            asym: false,
            me: Owner::NONE,
            party: usize::MAX,
            ring: Some(ring),
        };
        for idx in 0..MAX_PARTIES {
            let p = &sh.ctl().parties[idx];
            // Acquire/Release: pairs with the Release store of role 0 in detach.
            if p.role
                .compare_exchange(0, role, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // Relaxed: a fresh model's lines already hold NO_INTENT.
                sh.ctl().intents[idx].pos.store(layout::NO_INTENT, Ordering::Relaxed);
                let generation = p.generation.load(Ordering::Relaxed).wrapping_add(1);
                // Release: pairs with the Acquire loads of the table.
                p.generation.store(generation, Ordering::Release);
                sh.me = Owner {
                    idx: idx as u8,
                    generation: (generation & GEN_MASK) as u16,
                };
                sh.party = idx;
                return Ok(sh);
            }
        }
        Err(Error::InvalidArgument("loom queue: no free party".into()))
    }

    /// Take a free party entry (its liveness lock is the allocation) for `role`.
    fn attach(&mut self, role: u32) -> Result<()> {
        use rustix::fd::AsFd;
        let seg = self.seg.as_ref().expect("segment-backed");
        let name = seg.display_name().to_owned();
        for idx in 0..MAX_PARTIES {
            let got = crate::shm::liveness::try_lock_slot(seg.as_fd(), PARTY_LOCK_BASE + idx as u32)
                .map_err(|e| Error::io("fcntl(F_OFD_SETLK)", &name, e))?;
            if !got {
                continue;
            }
            let p = &self.ctl().parties[idx];
            // Relaxed: we hold the entry's lock, so no live party writes it.
            let generation = p.generation.load(Ordering::Relaxed).wrapping_add(1);
            let (pid, start) = crate::shm::liveness::self_identity();
            p.pid.store(pid, Ordering::Relaxed);
            p.start_time.store(start, Ordering::Relaxed);
            // Relaxed: published by the Release store of the role below.
            self.ctl().intents[idx].pos.store(layout::NO_INTENT, Ordering::Relaxed);
            // Release (both): pair with the Acquire loads in intent_live.
            p.generation.store(generation, Ordering::Release);
            p.role.store(role, Ordering::Release);
            self.me = Owner {
                idx: idx as u8,
                generation: (generation & GEN_MASK) as u16,
            };
            self.party = idx;
            return Ok(());
        }
        Err(Error::InvalidArgument(format!(
            "queue {name:?} already has {MAX_PARTIES} attached parties"
        )))
    }

    /// Leave the party table (the lock goes with the descriptor).
    fn detach(&mut self) {
        if self.party < MAX_PARTIES {
            // Release: pairs with the Acquire load in intent_live.
            self.ctl().parties[self.party].role.store(0, Ordering::Release);
            if let Some(seg) = &self.seg {
                use rustix::fd::AsFd;
                crate::shm::liveness::unlock_slot(seg.as_fd(), PARTY_LOCK_BASE + self.party as u32);
            }
            self.party = usize::MAX;
        }
    }

    /// A second end of the same queue, in this process, with its own party entry.
    fn reopen(&self, role: u32) -> Result<Self> {
        #[cfg(loom)]
        if let Some(ring) = &self.ring {
            return Shared::loom_attach(ring.clone(), role);
        }
        let seg = self.seg.as_ref().expect("segment-backed").reopen()?;
        let mut sh = Shared::from_segment(seg)?;
        sh.attach(role)?;
        Ok(sh)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.detach();
    }
}

fn params(slots: usize, slot_size: usize) -> Result<(usize, [u64; 8])> {
    if !(2..=MAX_SLOTS).contains(&slots) {
        return Err(Error::InvalidArgument(format!(
            "slot count {slots} not in 2..={MAX_SLOTS}"
        )));
    }
    if slot_size == 0 || slot_size > MAX_SLOT_SIZE {
        return Err(Error::InvalidArgument(format!(
            "slot size {slot_size} not in 1..={MAX_SLOT_SIZE}"
        )));
    }
    let n = slots.next_power_of_two();
    let stride = stride_for(slot_size);
    let mut p = [0u64; 8];
    p[0] = n as u64;
    p[1] = slot_size as u64;
    p[2] = stride as u64;
    Ok((CONTROL_SIZE + n * stride, p))
}

fn create_named(name: &str, slots: usize, slot_size: usize, opts: &QueueOptions, role: u32) -> Result<Shared> {
    let (area, p) = params(slots, slot_size)?;
    let mut seg = Segment::create(name, SegmentKind::MpmcQueue, p, area, &opts.segment)?;
    seg.publish_ready();
    let mut sh = Shared::from_segment(seg)?;
    sh.attach(role)?;
    Ok(sh)
}

/// Create the named queue `name` (at least `slots` slots of `slot_size` bytes) with no
/// party attached, and leave it in `/dev/shm` (nobody's drop unlinks it): for tools
/// such as `shmring create`, so that producers and consumers started later can all
/// `open` it. Remove it with [`shm::unlink`](crate::shm::unlink).
///
/// ```
/// use shmring::ring::mpmc::{self, Consumer, Producer, QueueOptions};
///
/// let name = format!("shmring-doc-mpmc-detached-{}", std::process::id());
/// mpmc::create_detached(&name, 16, 64, &QueueOptions::new())?;
/// let mut tx = Producer::open(&name)?;
/// let mut rx = Consumer::open(&name)?;
/// tx.push(b"job")?;
/// assert_eq!(rx.pop()?, b"job");
/// shmring::shm::unlink(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(not(loom))]
pub fn create_detached(name: &str, slots: usize, slot_size: usize, opts: &QueueOptions) -> Result<()> {
    let (area, p) = params(slots, slot_size)?;
    let mut seg = Segment::create(name, SegmentKind::MpmcQueue, p, area, &opts.segment)?;
    seg.publish_ready();
    seg.keep();
    Shared::from_segment(seg).map(drop)
}

fn open_named(name: &str, opts: &QueueOptions, role: u32) -> Result<Shared> {
    let seg = Segment::open(name, SegmentKind::MpmcQueue, &opts.segment)?;
    let mut sh = Shared::from_segment(seg)?;
    sh.attach(role)?;
    Ok(sh)
}

fn from_fd(fd: rustix::fd::OwnedFd, opts: &QueueOptions, role: u32) -> Result<Shared> {
    let seg = Segment::from_fd(fd, SegmentKind::MpmcQueue, &opts.segment)?;
    let mut sh = Shared::from_segment(seg)?;
    sh.attach(role)?;
    Ok(sh)
}

/// A producer and a consumer of a new anonymous (memfd) queue of at least `slots`
/// slots (rounded up to a power of two) of `slot_size` bytes. Make more ends with
/// `try_clone`; hand one to another process with `into_fd`.
pub fn channel(slots: usize, slot_size: usize) -> Result<(Producer, Consumer)> {
    channel_with(slots, slot_size, &QueueOptions::default())
}

/// [`channel`] with options.
pub fn channel_with(slots: usize, slot_size: usize, opts: &QueueOptions) -> Result<(Producer, Consumer)> {
    let (area, p) = params(slots, slot_size)?;
    let mut seg = Segment::anonymous(SegmentKind::MpmcQueue, p, area, &opts.segment)?;
    seg.publish_ready();
    let seg2 = seg.reopen()?;
    let mut a = Shared::from_segment(seg)?;
    a.attach(ROLE_PRODUCER)?;
    let mut b = Shared::from_segment(seg2)?;
    b.attach(ROLE_CONSUMER)?;
    Ok((Producer::new(a, opts.wait), Consumer::new(b, opts.wait)))
}

/// A producer and a consumer of a queue for a loom model: `slots` slots (a power of two)
/// of [`LOOM_SLOT_SIZE`] bytes.
#[cfg(loom)]
pub fn loom_channel(slots: usize, wait: WaitStrategy) -> (Producer, Consumer) {
    let ring = std::sync::Arc::new(LoomQueue {
        ctl: Control::new(),
        slots: (0..slots)
            .map(|_| LoomSlot {
                seq: AtomicU64::new(0),
                len: AtomicU64::new(0),
                payload: loom::cell::UnsafeCell::new([0; LOOM_SLOT_SIZE]),
            })
            .collect(),
    });
    let p = Shared::loom_attach(ring.clone(), ROLE_PRODUCER).expect("a fresh table has free parties");
    let c = Shared::loom_attach(ring, ROLE_CONSUMER).expect("a fresh table has free parties");
    (Producer::new(p, wait), Consumer::new(c, wait))
}
