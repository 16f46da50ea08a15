//! The publisher end of the broadcast ring.

use super::layout::{Backing, role, slot};
use super::record::{self, HEADER_LEN, MESSAGE, PADDING};
use super::{BroadcastEnd, Options, Policy, SendError, Shared};
use crate::primitive::{self, Ordering};
use crate::ring::end::{End, EndKind, Sealed};
use crate::sync::{Check, Wait, WaitEnd, WaitStrategy, Waiter};
use crate::{Error, Result};

/// The publisher end of a broadcast ring: every subscriber receives every message it
/// sends (or, in the overwrite policy, learns how many it missed).
///
/// ```
/// use shmring::broadcast::{Policy, Publisher, Subscriber};
/// let name = format!("doc-bcast-pub-{}", std::process::id());
/// let mut tx = Publisher::create(&name, 4096, 16, Policy::Lossless)?;
/// let mut rx = Subscriber::open(&name)?;
/// tx.send_deferred(b"one")?;   // readable at once, no tail store or wake-up yet
/// tx.send_deferred(b"two")?;
/// tx.flush();                  // one tail store, one wake-up check for both
/// let mut grant = tx.claim(3)?; // zero-copy: write in place
/// grant.copy_from_slice(b"abc");
/// grant.commit();
/// assert_eq!(rx.recv()?, b"one");
/// assert_eq!(rx.recv()?, b"two");
/// assert_eq!(rx.recv()?, b"abc");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Publisher = End<BroadcastEnd<true>>;

/// What the publisher keeps for itself.
#[derive(Debug)]
pub struct State {
    /// End of the last committed record.
    tail: u64,
    /// The value of the shared `tail`: `published <= tail`.
    published: u64,
    /// The last `intent` stored.
    intent: u64,
    /// The last `oldest` stored: writes stay below `oldest + capacity`.
    oldest: u64,
    /// The sequence number of the next message.
    seq: u64,
    /// The position of the last committed message record.
    last: u64,
    wait: WaitStrategy,
    /// Full results of try_* since the last liveness check.
    full_polls: u32,
    full_waits: u64,
}

/// A reserved record: its header offset, its position, and the tail after it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    header: u64,
    pos: u64,
    end: u64,
    #[cfg_attr(loom, allow(dead_code))] // read by WriteGrant only
    len: usize,
}

impl Publisher {
    /// Take the publisher role of `sh` (lock slot 0) and build on the ring's indices.
    pub(super) fn attach(sh: Shared, wait: WaitStrategy) -> Result<Self> {
        let name = sh.display_name().to_owned();
        if !sh.try_lock(role::PUBLISHER_LOCK)? {
            return Err(Error::AlreadyAttached {
                name,
                role: "publisher",
            });
        }
        let r = &sh.ctl().role;
        // Acquire: pairs with the Release stores of the role state by earlier holders,
        // so that their last tail store is visible.
        let st = r.state.load(Ordering::Acquire);
        // We hold the lock: a publisher that left ATTACHED died, one in HANDOFF is
        // handed to us (our description holds the lock), CLOSED may be continued.
        if !matches!(st, role::VACANT | role::CLOSED | role::ATTACHED | role::HANDOFF) {
            sh.unlock(role::PUBLISHER_LOCK);
            return Err(Error::Corrupted {
                name,
                what: format!("publisher role state {st}"),
            });
        }
        let state = match Self::recover(&sh, wait) {
            Ok(s) => s,
            Err(what) => {
                sh.unlock(role::PUBLISHER_LOCK);
                return Err(Error::Corrupted {
                    name,
                    what: what.into(),
                });
            }
        };
        #[cfg(not(loom))]
        {
            let (pid, start) = crate::shm::liveness::self_identity();
            // Relaxed: informational, published by the Release store below.
            r.pid.store(pid, Ordering::Relaxed);
            r.start_time.store(start, Ordering::Relaxed);
        }
        // Relaxed: a counter for display.
        r.attaches.fetch_add(1, Ordering::Relaxed);
        // Release: pairs with the Acquire loads of the state by subscribers.
        r.state.store(role::ATTACHED, Ordering::Release);
        Ok(Publisher { sh, st: state })
    }

    /// The state a publisher continues from: the shared indices, checked, and the next
    /// sequence number, from the last message between `oldest` and `tail`.
    fn recover(sh: &Shared, wait: WaitStrategy) -> std::result::Result<State, &'static str> {
        let (tail, oldest) = sh.indices()?;
        let p = &sh.ctl().publ;
        // Relaxed (both): the Acquire load of tail in indices() ordered them.
        let intent = p.intent.load(Ordering::Relaxed).max(tail);
        if intent > tail + sh.cap {
            return Err("intent is more than a capacity ahead of tail");
        }
        let mut seq = p.messages.load(Ordering::Relaxed);
        let mut pos = oldest;
        let mut last = None;
        let mut last_pos = p.last.load(Ordering::Relaxed);
        while pos < tail {
            let (rec, s) = read_record(sh, pos)?;
            if let Some(s) = s {
                last = Some(s);
                last_pos = pos;
            }
            pos += rec;
        }
        if pos != tail {
            return Err("records between oldest and tail do not end at tail");
        }
        if let Some(s) = last {
            seq = s.wrapping_add(1);
        }
        let full_waits = p.full_waits.load(Ordering::Relaxed);
        Ok(State {
            tail,
            published: tail,
            intent,
            oldest,
            seq,
            last: last_pos,
            wait,
            full_polls: 0,
            full_waits,
        })
    }

    crate::ring::byte_send_methods! {
        wait_doc: "(lossless policy) while a live subscriber is too far behind (the overwrite policy never waits)",
        deferred_doc: "subscribers see it at the next [`Publisher::flush`], which stores `tail` and checks for sleepers once for the whole batch.",
    }

    /// The ring's policy.
    pub fn policy(&self) -> Policy {
        self.sh.policy
    }

    /// The subscriber limit set at creation.
    pub fn max_subscribers(&self) -> usize {
        self.sh.nsubs as usize
    }

    /// Bytes committed so far (records, headers and padding included): the stream
    /// position subscribers' cursors are compared with.
    pub fn position(&self) -> u64 {
        self.st.tail
    }

    /// Messages committed so far over the stream's life (the next sequence number).
    pub fn messages(&self) -> u64 {
        self.st.seq
    }

    /// Publish every committed record with one Release store of `tail`, and wake every
    /// sleeping subscriber with one `futex_wake` (no syscall if nobody sleeps).
    #[inline]
    pub fn flush(&mut self) {
        publish(&self.sh, &mut self.st);
    }

    #[inline]
    fn write(&mut self, slot: Slot, msg: &[u8]) {
        self.sh.region().copy_in(slot.header + HEADER_LEN, msg);
        self.commit_slot(slot);
    }

    #[inline]
    fn commit_slot(&mut self, slot: Slot) {
        self.st.last = slot.pos;
        self.st.tail = slot.end;
        self.st.seq = self.st.seq.wrapping_add(1);
    }

    /// Reserve a record for `len` bytes (making room per the policy, waiting per
    /// `wait`) and write its header.
    #[inline]
    fn reserve(&mut self, len: usize, wait: Wait) -> Result<Slot, SendError> {
        if len as u64 > self.sh.max_msg {
            return Err(SendError::MessageTooLarge {
                len,
                max: self.sh.max_msg as usize,
            });
        }
        let cap = self.sh.cap;
        let total = record::record_len(len as u64);
        let mut pos = self.st.tail;
        let off = pos & (cap - 1);
        let to_end = cap - off;
        let skip = if total > to_end { to_end } else { 0 };
        let end = pos + skip + total;
        if end > self.st.oldest + cap {
            self.make_room(end, wait)?;
        }
        let region = self.sh.region();
        if end > self.st.intent {
            // Relaxed: ordered before the writes below by the Release fence.
            self.sh.ctl().publ.intent.store(end, Ordering::Relaxed);
            self.st.intent = end;
            // Release fence: a subscriber that reads any byte written below and then
            // runs its Acquire fence sees this intent (and the oldest stored before it):
            // the seqlock of the overwrite policy.
            if !loom_skip_intent_fence() {
                primitive::fence(Ordering::Release);
            }
        }
        let mut header = off;
        if skip > 0 {
            if skip >= HEADER_LEN {
                let pad = record::encode((skip - HEADER_LEN) as u32, PADDING);
                region.store_header(off, [pad, record::stamp(pos), 0]);
            }
            pos += skip;
            header = 0;
        }
        let word = record::encode(len as u32, MESSAGE);
        region.store_header(header, [word, record::stamp(pos), self.st.seq]);
        Ok(Slot { header, pos, end, len })
    }

    /// Move `oldest` far enough for a record ending at `end`: at once in the overwrite
    /// policy; in the lossless one as far as the live subscribers allow, waiting per
    /// `wait` for the rest.
    #[cold]
    fn make_room(&mut self, end: u64, wait: Wait) -> Result<(), SendError> {
        let cap = self.sh.cap;
        if self.sh.policy == Policy::Overwrite {
            if end - cap > self.st.published {
                // `oldest` never passes the published tail (see `Shared::indices`).
                publish(&self.sh, &mut self.st);
            }
            let b = walk_to(&self.sh, &self.st, end - cap)?;
            // Release: pairs with the Acquire load of oldest in `Shared::indices`, which
            // then sees a tail at least as far (published before). Ordered before the
            // record writes by the Release fence after the intent store (reserve).
            self.sh.ctl().publ.oldest.store(b, Ordering::Release);
            self.st.oldest = b;
            return Ok(());
        }
        if advance(&self.sh, &mut self.st, end, false)? {
            return Ok(());
        }
        if wait.is_now() {
            self.st.full_polls += 1;
            if self.st.full_polls >= 1024 {
                self.st.full_polls = 0;
                if self.sh.poisoned() {
                    return Err(SendError::Corrupted(crate::shm::sigbus::RESIZED));
                }
                if advance(&self.sh, &mut self.st, end, true)? {
                    return Ok(());
                }
            }
            return Err(SendError::Full);
        }
        self.wait_room(end, wait)
    }

    #[cold]
    fn wait_room(&mut self, end: u64, wait: Wait) -> Result<(), SendError> {
        // What we hold back cannot be read: publish it before waiting.
        self.flush();
        self.st.full_waits = self.st.full_waits.wrapping_add(1);
        // Relaxed: a counter for display.
        self.sh
            .ctl()
            .publ
            .full_waits
            .store(self.st.full_waits, Ordering::Relaxed);
        let (sh, st) = (&self.sh, &mut self.st);
        let waiter = Waiter {
            word: &sh.ctl().space_wait,
            strategy: st.wait,
            asymmetric: sh.asym,
        };
        let r = waiter.wait(wait, |check| {
            if check != Check::Fast && sh.poisoned() {
                return Some(Err(SendError::Corrupted(crate::shm::sigbus::RESIZED)));
            }
            match advance(sh, st, end, check == Check::Liveness) {
                Ok(true) => Some(Ok(())),
                Ok(false) => None,
                Err(e) => Some(Err(e)),
            }
        });
        match r {
            Ok(r) => r,
            Err(WaitEnd::Timeout) => Err(SendError::Timeout),
            Err(WaitEnd::Interrupted) => Err(SendError::Interrupted),
        }
    }

    /// Hand out a grant for `slot`.
    #[cfg(not(loom))]
    fn grant(&mut self, slot: Slot, _len: usize) -> WriteGrant<'_> {
        WriteGrant { p: self, slot }
    }
}

/// Lossless: try to move `oldest` so that a record ending at `end` fits; `true` if
/// it does now. With `check_live`, the subscribers holding the publisher back are
/// checked for liveness and the dead ones' slots reclaimed.
fn advance(sh: &Shared, st: &mut State, end: u64, check_live: bool) -> Result<bool, SendError> {
    let cap = sh.cap;
    let need = end - cap;
    if need > st.published {
        // `oldest` never passes the published tail (see `Shared::indices`).
        publish(sh, st);
    }
    // Free a quarter ring at once (within what is published), so that the fence
    // and the table scan below run once per quarter ring, not per message.
    let mut target = need.max((need + cap / 4).min(st.published));
    if !check_live {
        // A first look at the cursors (not the protocol's scan below: a subscriber may
        // join or move meanwhile; this one only bounds the work): walk no further than
        // the slowest subscriber has read. A publisher that keeps up with a slower
        // subscriber then walks over each record once, not over a quarter ring per
        // message (it would stop at that subscriber's cursor in (d) anyway). Nobody
        // has read up to `need`: no room yet, nothing to store.
        if let Some(m0) = scan_min(sh, st, 0, st.oldest, false) {
            if m0 < need {
                return Ok(false);
            }
            target = target.min(m0);
        }
    }
    let b = walk_to(sh, st, target)?;
    let prev = st.oldest;
    let publ = &sh.ctl().publ;
    // (a) Release: as in make_room; ordered before the table scan by the SeqCst fence
    // (the store-load pair with a joining subscriber; see the module docs).
    publ.oldest.store(b, Ordering::Release);
    // (b)
    primitive::fence(Ordering::SeqCst);
    // (c)
    let m = scan_min(sh, st, b, prev, check_live);
    match m {
        Some(m) if m < b => {
            // (d) Someone is behind `b`: keep what they have not read. Every live
            // cursor is at least `m` (scanned) or at least `b` (joined after seeing
            // it), so the boundary at or below `m` is safe to announce.
            let o = walk_upto(sh, st, m)?;
            // Release: as above; a later advance fences again before it writes.
            publ.oldest.store(o, Ordering::Release);
            st.oldest = o;
            Ok(end <= o + cap)
        }
        _ => {
            st.oldest = b;
            Ok(true)
        }
    }
}

/// The lowest cursor of the ACTIVE subscriber slots (`None` if there is none),
/// clamped to `prev..=tail`. With `check_live`, a slot below `b` whose holder no
/// longer holds its lock is reclaimed (CAS to FREE, same generation).
fn scan_min(sh: &Shared, st: &State, b: u64, prev: u64, check_live: bool) -> Option<u64> {
    let mut min: Option<u64> = None;
    for i in 0..sh.nsubs {
        let s = sh.sub(i);
        // Acquire: pairs with the Release store of the word when a subscriber
        // attaches, so that its cursor store before it is visible.
        let w = s.word.load(Ordering::Acquire);
        if slot::state(w) != slot::ACTIVE {
            continue; // FREE, or a corrupt state: holds nothing back.
        }
        // Acquire: pairs with the Release store of the cursor after a subscriber's
        // reads, which therefore finish before we overwrite what it read.
        let c = s.cursor.load(Ordering::Acquire);
        if c > st.tail || c % record::ALIGN != 0 {
            continue; // impossible for a live subscriber: holds nothing back.
        }
        let c = c.max(prev);
        if c < b && check_live && !sh.held_by_other(super::layout::role::SUB_LOCK_BASE + i) {
            // AcqRel: pairs with the subscriber's attach (Release) — a CAS that
            // fails because a new holder attached leaves its registration alone.
            let _ = s
                .word
                .compare_exchange(w, slot::with_state(w, slot::FREE), Ordering::AcqRel, Ordering::Relaxed);
            continue;
        }
        min = Some(min.map_or(c, |m| m.min(c)));
    }
    min
}

/// The first record boundary at or after `target`, walking from `oldest` (at most
/// `tail`). Our own records: a header that does not parse was overwritten by a peer.
fn walk_to(sh: &Shared, st: &State, target: u64) -> Result<u64, SendError> {
    let mut pos = st.oldest;
    while pos < target {
        pos += record_total(sh, pos).map_err(SendError::Corrupted)?;
    }
    if pos > st.tail {
        return Err(SendError::Corrupted("records do not end at the tail"));
    }
    Ok(pos)
}

/// The last record boundary at or before `limit`, walking from `oldest`.
fn walk_upto(sh: &Shared, st: &State, limit: u64) -> Result<u64, SendError> {
    let mut pos = st.oldest;
    while pos < limit {
        let rec = record_total(sh, pos).map_err(SendError::Corrupted)?;
        if pos + rec > limit {
            break;
        }
        pos += rec;
    }
    Ok(pos)
}

/// [`Publisher::flush`].
#[inline]
fn publish(sh: &Shared, st: &mut State) {
    if st.tail != st.published {
        let p = &sh.ctl().publ;
        // Relaxed (both): published by the tail store below.
        p.messages.store(st.seq, Ordering::Relaxed);
        p.last.store(st.last, Ordering::Relaxed);
        // Release: pairs with the Acquire loads of tail by subscribers (and `indices`
        // at attach): the records below it are visible.
        let order = loom_weaken(Ordering::Release);
        p.tail.store(st.tail, order);
        st.published = st.tail;
        sh.ctl().data_wait.notify_all(sh.asym);
    }
}

/// The size of the record at `pos` ([`read_record`] without the sequence number,
/// inline in the walks over the records `oldest` passes: one per message sent).
#[inline(always)]
fn record_total(sh: &Shared, pos: u64) -> std::result::Result<u64, &'static str> {
    let off = pos & (sh.cap - 1);
    let to_end = sh.cap - off;
    if to_end < HEADER_LEN {
        return Ok(to_end);
    }
    let [word, stamp, _] = sh.region().load_header(off);
    if stamp != record::stamp(pos) {
        return Err("a record's stamp is not its position");
    }
    Ok(record::parse(word, pos, sh.cap, sh.max_msg)?.total)
}

/// The size of the record at `pos`, and its sequence number if it is a message; the
/// 8 or 16 bytes before the end of the ring count as one headerless record.
pub(super) fn read_record(sh: &Shared, pos: u64) -> std::result::Result<(u64, Option<u64>), &'static str> {
    let off = pos & (sh.cap - 1);
    let to_end = sh.cap - off;
    if to_end < HEADER_LEN {
        return Ok((to_end, None));
    }
    let [word, stamp, seq] = sh.region().load_header(off);
    if stamp != record::stamp(pos) {
        return Err("a record's stamp is not its position");
    }
    let rec = record::parse(word, pos, sh.cap, sh.max_msg)?;
    Ok((rec.total, (!rec.padding).then_some(seq)))
}

#[cfg(loom)]
fn loom_weaken(o: Ordering) -> Ordering {
    crate::primitive::loom_break::weaken(crate::primitive::loom_break::LoomBreak::BroadcastTailRelaxed, o)
}
#[cfg(not(loom))]
#[inline(always)]
fn loom_weaken(o: Ordering) -> Ordering {
    o
}
#[cfg(loom)]
fn loom_skip_intent_fence() -> bool {
    crate::primitive::loom_break::active(crate::primitive::loom_break::LoomBreak::BroadcastIntentFenceSkipped)
}
#[cfg(not(loom))]
#[inline(always)]
fn loom_skip_intent_fence() -> bool {
    false
}

/// Space for one message, written in place in the ring. Derefs to the `len` bytes of
/// the payload (their initial contents are unspecified). [`WriteGrant::commit`]
/// publishes it, [`WriteGrant::commit_deferred`] commits it for the next flush;
/// dropping it aborts the message (nothing was published; the next message is written
/// in the same place).
#[cfg(not(loom))]
#[derive(Debug)]
pub struct WriteGrant<'a> {
    p: &'a mut Publisher,
    slot: Slot,
}

#[cfg(not(loom))]
impl WriteGrant<'_> {
    /// Commit and publish the message now.
    pub fn commit(self) {
        self.p.commit_slot(self.slot);
        self.p.flush();
    }

    /// Commit the message without the publish step (see [`Publisher::send_deferred`]).
    pub fn commit_deferred(self) {
        self.p.commit_slot(self.slot);
    }
}

#[cfg(not(loom))]
impl std::ops::Deref for WriteGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let ptr = self
            .p
            .sh
            .region()
            .slice_ptr(self.slot.header + HEADER_LEN, self.slot.len);
        // SAFETY: the bytes lie in the region (slice_ptr checked), at or beyond the
        // published tail, so no subscriber delivers them and nothing else writes them
        // while the grant (which borrows the only publisher) lives.
        unsafe { std::slice::from_raw_parts(ptr, self.slot.len) }
    }
}

#[cfg(not(loom))]
impl std::ops::DerefMut for WriteGrant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let ptr = self
            .p
            .sh
            .region()
            .slice_ptr(self.slot.header + HEADER_LEN, self.slot.len);
        // SAFETY: as in Deref; the grant is the only accessor of these bytes.
        unsafe { std::slice::from_raw_parts_mut(ptr, self.slot.len) }
    }
}

impl EndKind for BroadcastEnd<true> {}

impl Sealed for BroadcastEnd<true> {
    super::ends::sealed_common!();
    type State = State;
    const NAME: &'static str = "Publisher";
    #[cfg(not(loom))]
    const HANDOFF: crate::handoff::Kind = crate::handoff::Kind::BroadcastPublisher;

    fn build(ring: Shared, opts: &Options) -> Result<Publisher> {
        // The lock decides: a role in transit is taken only through the descriptor that
        // holds its lock (`from_fd`); an open by name finds the lock held.
        Publisher::attach(ring, opts.wait)
    }

    fn hand_off(p: &mut Publisher) -> Option<rustix::fd::OwnedFd> {
        p.flush();
        if !matches!(p.sh.backing, Backing::Segment(_)) {
            return None;
        }
        // Release: pairs with the Acquire loads of the state by subscribers and the
        // next publisher.
        p.sh.ctl().role.state.store(role::HANDOFF, Ordering::Release);
        p.sh.take_fd()
    }

    fn close(p: &mut Publisher) {
        if matches!(p.sh.backing, Backing::Gone) {
            return;
        }
        p.flush();
        // Release: pairs with the Acquire loads of the state by subscribers, which then
        // see the last tail store.
        p.sh.ctl().role.state.store(role::CLOSED, Ordering::Release);
        p.sh.ctl().data_wait.wake_everyone();
        p.sh.unlock(role::PUBLISHER_LOCK);
    }
}
