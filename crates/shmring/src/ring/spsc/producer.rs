//! The producer end of the SPSC ring.

use super::SendError;
use super::layout::{Backing, role};
use super::{RingOptions, RingStats, Shared, Side, SpscEnd};
use crate::Result;
use crate::primitive::Ordering;
use crate::ring::end::{End, EndKind, Sealed};
use crate::ring::record::{self, MESSAGE, PADDING};
use crate::sync::wait::{Beside, SpinHistory};
use crate::sync::{Check, Wait, WaitEnd, WaitStrategy, Waiter};

/// The producer end of an SPSC ring: sends messages, copied or written in place.
///
/// ```
/// let (mut tx, mut rx) = shmring::ring::spsc::channel(1024)?;
/// tx.send(b"one")?;
/// tx.send_deferred(b"two")?;   // readable by a polling consumer, no wake-up yet
/// tx.send_deferred(b"three")?;
/// tx.flush();                  // one tail store and one wake-up check for both
/// assert_eq!(rx.recv()?, b"one");
/// assert_eq!(rx.recv()?, b"two");
/// assert_eq!(rx.recv()?, b"three");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Producer = End<SpscEnd<true>>;

/// What the producer keeps for itself.
#[derive(Debug)]
pub struct State {
    /// End of the last committed record (published or not).
    tail: u64,
    /// The value of the shared `tail`: `published <= tail`.
    published: u64,
    /// A copy of the consumer's `head`; can be stale (never ahead of the real one).
    cached_head: u64,
    /// Messages committed.
    messages: u64,
    /// Times we waited on a full ring.
    full_waits: u64,
    wait: WaitStrategy,
    /// How this end's adaptive waits went lately.
    spin_history: SpinHistory,
    /// Full results of try_* since the last liveness check.
    full_polls: u32,
    /// Every header slot (8-aligned position) in `tail..cleared` holds a zero word, so
    /// the consumer finds nothing stale there. Extended in chunks ahead of `tail`.
    cleared: u64,
}

/// How far ahead of the tail (bytes) the producer clears header-slot stamps at once.
/// Clearing per record would put an extra cache-line ownership transfer on the path of
/// every message whose next slot starts a new line; clearing a chunk ahead takes it
/// off the path of all but one message per chunk.
const CLEAR_CHUNK: u64 = 1024;

/// The error of a send that found a stamp in the header slot it was about to write.
#[cold]
fn forged_stamp() -> SendError {
    SendError::Corrupted("a record stamp ahead of the producer was written by another process")
}

/// A reserved record: its header's offset, the header word that will publish it, its
/// ring position, where its payload goes and where the tail will be after it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    header: u64,
    word: u64,
    #[cfg_attr(loom, allow(dead_code))] // read by the grants, which loom builds lack
    pos: u64,
    payload: u64,
    end: u64,
}

impl Producer {
    pub(super) fn new(sh: Shared, wait: WaitStrategy) -> Result<Self> {
        let (head, tail) = sh.check_indices().map_err(|what| crate::Error::Corrupted {
            name: sh.display_name().to_owned(),
            what: what.into(),
        })?;
        if head > tail {
            return Err(crate::Error::Corrupted {
                name: sh.display_name().to_owned(),
                what: "consumer head is past the producer tail".into(),
            });
        }
        let messages = sh.ctl().prod.messages.load(Ordering::Relaxed);
        let full_waits = sh.ctl().prod.full_waits.load(Ordering::Relaxed);
        Ok(Producer {
            sh,
            st: State {
                tail,
                published: tail,
                cached_head: head,
                messages,
                full_waits,
                wait,
                spin_history: SpinHistory::default(),
                full_polls: 0,
                // The slot at `tail` was cleared by the commit before it (or is zero in
                // a fresh ring).
                cleared: tail + record::HEADER_LEN,
            },
        })
    }

    crate::ring::byte_send_methods! {
        wait_doc: "while the ring is full",
        deferred_doc: "a consumer that is polling may read it at once (each record is published by its own stamp), but a consumer asleep is only woken, and `tail` only advanced, at the next [`Producer::flush`].",
    }

    /// The ring's shared counters.
    pub fn stats(&self) -> RingStats {
        self.sh.stats()
    }

    /// Publish `tail` for every committed record with one Release store, and wake the
    /// consumer if it sleeps.
    #[inline]
    pub fn flush(&mut self) {
        if self.st.tail != self.st.published {
            let c = self.sh.ctl();
            // Relaxed: a counter for display.
            c.prod.messages.store(self.st.messages, Ordering::Relaxed);
            // Release: pairs with the Acquire load of tail in Consumer::check_tail (and in
            // check_indices when an end attaches): the stamps stored before it are visible.
            c.prod.tail.store(self.st.tail, Ordering::Release);
            self.st.published = self.st.tail;
            c.data_wait.notify(self.sh.asym);
            self.clear_ahead();
        }
    }

    #[inline]
    fn write(&mut self, slot: Slot, msg: &[u8]) {
        self.sh.region().copy_in(slot.payload, msg);
        self.commit_slot(slot);
    }

    /// Publish a written record: clear the next record's header slot (so that the
    /// consumer, once it has read this record, finds no stale word there), then store
    /// this record's header word with Release.
    #[inline]
    fn commit_slot(&mut self, slot: Slot) {
        self.st.tail = slot.end;
        // The slot after this record was reserved with it, so it is free to clear.
        self.ensure_cleared(slot.end + record::HEADER_LEN);
        self.sh.region().store_stamp(slot.header, slot.word);
        self.st.messages = self.st.messages.wrapping_add(1); // started from a peer-writable counter
    }

    /// Reserve a record for `len` bytes and write its header, waiting per `wait`.
    #[inline]
    fn reserve(&mut self, len: usize, wait: Wait) -> Result<Slot, SendError> {
        if len as u64 > self.sh.max_msg {
            return Err(SendError::MessageTooLarge {
                len,
                max: self.sh.max_msg as usize,
            });
        }
        // Relaxed: CLOSED needs no ordering here (nothing is read after it); the
        // Acquire re-check happens in peer_gone when we wait.
        if self.sh.ctl().roles.consumer.state.load(Ordering::Relaxed) == role::CLOSED {
            return Err(SendError::Disconnected);
        }
        let total = record::record_len(len as u64);
        let cap = self.sh.cap;
        // Space for the record (and padding before it at the wrap) plus the header slot
        // of the next record, whose stamp commit clears.
        let need = |tail: u64| {
            let to_end = cap - (tail & (cap - 1));
            let body = if total <= to_end { total } else { to_end + total };
            body + record::HEADER_LEN
        };
        if self.st.tail + need(self.st.tail) - self.st.cached_head > cap {
            self.refresh_head()?;
            if self.st.tail + need(self.st.tail) - self.st.cached_head > cap {
                if wait.is_now() {
                    return Err(self.full_or_gone());
                }
                self.wait_space(need(self.st.tail), wait)?;
            }
        }
        let mut off = self.st.tail & (cap - 1);
        let to_end = cap - off;
        // This end cleared the stamp of every header slot from `tail` on, and only it
        // stores stamps: a stamp there now was forged by another process, and the
        // consumer may already have taken the record it "publishes" (stale bytes) in
        // place of the one we are about to write, a message lost without a trace.
        if total > to_end {
            // Fill to the end with a padding record and publish it at once; the
            // message starts at offset 0, whose header slot is cleared first.
            if !self.sh.region().slot_is_clear(off) {
                return Err(forged_stamp());
            }
            self.ensure_cleared(self.st.tail + to_end + record::HEADER_LEN);
            let pad = super::header(self.st.tail, PADDING, (to_end - record::HEADER_LEN) as u32);
            self.sh.region().store_stamp(off, pad);
            self.st.tail += to_end;
            off = 0;
        }
        if !self.sh.region().slot_is_clear(off) {
            return Err(forged_stamp());
        }
        Ok(Slot {
            header: off,
            word: super::header(self.st.tail, MESSAGE, len as u32),
            pos: self.st.tail,
            payload: off + record::HEADER_LEN,
            end: self.st.tail + total,
        })
    }

    /// Make every header slot in `tail..upto` hold a zero stamp (usually a no-op: the
    /// slots were cleared ahead by [`Producer::clear_ahead`]). The caller guarantees
    /// `upto <= cached_head + capacity` (it reserved that space).
    #[inline]
    fn ensure_cleared(&mut self, upto: u64) {
        if upto > self.st.cleared {
            self.clear_slots(upto);
        }
    }

    /// Clear the header-slot stamps from the cleared frontier up to `target`.
    #[cold]
    #[inline(never)]
    fn clear_slots(&mut self, target: u64) {
        let cap = self.sh.cap;
        let region = self.sh.region();
        let from = self.st.cleared.max(self.st.tail);
        if target > from {
            // Every 8-aligned position may hold a header: clear the whole range, in at
            // most two pieces (before and after the wrap). `target - from <= cap`: the
            // callers clear within the space they know to be free.
            let n = target - from;
            let start = from & (cap - 1);
            let first = n.min(cap - start);
            region.clear_range(start, first);
            if n > first {
                region.clear_range(0, n - first);
            }
        }
        self.st.cleared = self.st.cleared.max(target);
    }

    /// After a publish, extend the cleared frontier to a chunk ahead of the tail (within
    /// the space known to be free), so that the commits to come find their next slot
    /// already cleared. Done after the stamp and tail stores, so the cache-line
    /// transfers it causes are not on the path of the message just sent.
    #[inline]
    fn clear_ahead(&mut self) {
        if self.st.cleared < self.st.tail + CLEAR_CHUNK / 2 {
            let limit = self.st.cached_head + self.sh.cap;
            let target = (self.st.tail + CLEAR_CHUNK).min(limit);
            if target > self.st.cleared {
                self.clear_slots(target);
            }
        }
    }

    /// Re-read the consumer's head, checking it against what we know.
    #[inline]
    fn refresh_head(&mut self) -> Result<(), SendError> {
        // Acquire: pairs with the Release store of head in Consumer::release, so the
        // consumer's reads of the space we are about to overwrite are done.
        let head = self.sh.ctl().cons.head.load(Ordering::Acquire);
        if head % record::ALIGN != 0 || head < self.st.cached_head || head > self.st.tail {
            return Err(SendError::Corrupted("consumer head out of range"));
        }
        self.st.cached_head = head;
        Ok(())
    }

    /// The error of a non-waiting reserve on a full ring: `Full`, or `Disconnected` if
    /// the consumer is gone (its liveness is checked every 1024 full results).
    fn full_or_gone(&mut self) -> SendError {
        self.st.full_polls += 1;
        let check = self.st.full_polls >= 1024;
        if check {
            self.st.full_polls = 0;
            if self.sh.poisoned() {
                return SendError::Corrupted(crate::shm::sigbus::RESIZED);
            }
        }
        if self
            .sh
            .peer_gone(&self.sh.ctl().roles.consumer, role::CONSUMER_SLOT, check)
        {
            SendError::Disconnected
        } else {
            SendError::Full
        }
    }

    #[cold]
    fn wait_space(&mut self, need: u64, wait: Wait) -> Result<(), SendError> {
        // What we hold back cannot be consumed: publish it before waiting.
        self.flush();
        self.st.full_waits = self.st.full_waits.wrapping_add(1); // started from a peer-writable counter
        // Relaxed: a counter for display.
        self.sh
            .ctl()
            .prod
            .full_waits
            .store(self.st.full_waits, Ordering::Relaxed);
        let (sh, st) = (&self.sh, &mut self.st);
        let waiter = Waiter {
            word: &sh.ctl().space_wait,
            strategy: st.wait,
            asymmetric: sh.asym,
        };
        let cap = sh.cap;
        // The consumer sleeps on data_wait: where it records its CPU.
        let mut history = st.spin_history;
        let beside = Beside {
            peer: &sh.ctl().data_wait,
            history: &mut history,
        };
        let r = waiter.wait_beside(Some(beside), wait, |check| {
            if check != Check::Fast && sh.poisoned() {
                return Some(Err(SendError::Corrupted(crate::shm::sigbus::RESIZED)));
            }
            // Acquire: as in refresh_head.
            let head = sh.ctl().cons.head.load(Ordering::Acquire);
            if head % record::ALIGN != 0 || head < st.cached_head || head > st.tail {
                return Some(Err(SendError::Corrupted("consumer head out of range")));
            }
            st.cached_head = head;
            if st.tail + need - head <= cap {
                return Some(Ok(()));
            }
            // The shared `tail` is this end's alone, and it flushed before waiting:
            // another value there was written by someone else; left alone, a `tail`
            // moved back would make the consumer wait for records it never looks for.
            // Relaxed: only this end stores `tail`.
            if check == Check::Liveness && sh.ctl().prod.tail.load(Ordering::Relaxed) != st.published {
                return Some(Err(SendError::Corrupted("producer tail changed by another process")));
            }
            // Every record in `head..tail` keeps its stamp until the consumer releases
            // it: one missing at `head` was erased by someone else, and the consumer,
            // which cannot read past it, will never free the space we wait for.
            if check == Check::Liveness && head < st.tail {
                let word = sh.region().load_stamp(head & (cap - 1));
                if !super::published_at(word, head) {
                    return Some(Err(SendError::Corrupted(
                        "the record at the consumer's position lost its stamp",
                    )));
                }
                // Nor can it read past a header that does not parse (it reports
                // `Corrupted` at every try): the space would never come either.
                if record::parse(super::len_type(word), head, cap, sh.max_msg).is_err() {
                    return Some(Err(SendError::Corrupted(
                        "the record at the consumer's position has a corrupt header",
                    )));
                }
            }
            if check != Check::Fast
                && sh.peer_gone(&sh.ctl().roles.consumer, role::CONSUMER_SLOT, check == Check::Liveness)
            {
                return Some(Err(SendError::Disconnected));
            }
            None
        });
        st.spin_history = history;
        match r {
            Ok(r) => r,
            Err(WaitEnd::Timeout) => Err(SendError::Timeout),
            Err(WaitEnd::Interrupted) => Err(SendError::Interrupted),
        }
    }
}

#[cfg(not(loom))]
impl Producer {
    /// Hand out a grant for `slot`. The caller may write anything into the payload,
    /// including over header slots that were cleared ahead; if the grant is aborted,
    /// the next record may start here and end inside that payload, so the cleared
    /// frontier falls back to just past this record's header.
    fn grant(&mut self, slot: Slot, len: usize) -> WriteGrant<'_> {
        let cleared_before = self.st.cleared;
        self.st.cleared = self.st.cleared.min(slot.pos + record::HEADER_LEN);
        WriteGrant {
            p: self,
            slot,
            len,
            cleared_before,
        }
    }
}

/// Space for one message, written in place in the ring. Derefs to the `len` bytes of
/// the payload (their initial contents are unspecified). [`WriteGrant::commit`]
/// publishes it, [`WriteGrant::commit_deferred`] commits it for the next publish;
/// dropping it aborts the message.
#[cfg(not(loom))]
#[derive(Debug)]
pub struct WriteGrant<'a> {
    p: &'a mut Producer,
    slot: Slot,
    len: usize,
    /// The cleared frontier when the grant was made: restored at commit (see
    /// `commit_inner`).
    cleared_before: u64,
}

#[cfg(not(loom))]
impl<'a> WriteGrant<'a> {
    /// Commit and publish the message now.
    pub fn commit(self) {
        let p = self.commit_inner();
        p.flush();
    }

    /// Commit the message without the publish step (see [`Producer::send_deferred`]):
    /// the wake-up check and the `tail` store happen once, at the next
    /// [`Producer::flush`] (or send, commit, or drop).
    pub fn commit_deferred(self) {
        self.commit_inner();
    }

    fn commit_inner(self) -> &'a mut Producer {
        // No Drop impl: an uncommitted grant is aborted by never storing its stamp.
        let WriteGrant {
            p,
            slot,
            cleared_before,
            ..
        } = self;
        // The payload may have overwritten cleared header slots, but only inside this
        // record (`slot.pos..slot.end`), which is behind the tail once committed: the
        // slots from `slot.end` to the frontier found at the grant are still zero. Not
        // restoring it made every committed grant re-clear a whole chunk ahead; restoring
        // it before the commit spares the commit clearing the slot at `slot.end` again.
        p.st.cleared = p.st.cleared.max(cleared_before);
        p.commit_slot(slot);
        p
    }
}

#[cfg(not(loom))]
impl std::ops::Deref for WriteGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let ptr = self.p.sh.region().slice_ptr(self.slot.payload, self.len);
        // SAFETY: the bytes lie in the region (slice_ptr checked), beyond the published
        // tail, so the consumer does not read them and nothing else writes them while
        // the grant (which borrows the only producer) lives.
        unsafe { std::slice::from_raw_parts(ptr, self.len) }
    }
}

#[cfg(not(loom))]
impl std::ops::DerefMut for WriteGrant<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let ptr = self.p.sh.region().slice_ptr(self.slot.payload, self.len);
        // SAFETY: as in Deref; the grant is the only accessor of these bytes.
        unsafe { std::slice::from_raw_parts_mut(ptr, self.len) }
    }
}

impl EndKind for SpscEnd<true> {}

impl Sealed for SpscEnd<true> {
    type Ring = Shared;
    type State = State;
    type Options = RingOptions;
    type Params = usize;
    type Fd = Option<rustix::fd::OwnedFd>;
    const NAME: &'static str = "Producer";
    #[cfg(not(loom))]
    const HANDOFF: crate::handoff::Kind = crate::handoff::Kind::SpscProducer;

    fn create(name: &str, capacity: usize, opts: &RingOptions) -> Result<Shared> {
        super::create_named(name, capacity, opts, Side::Producer)
    }

    fn open(name: &str, opts: &RingOptions) -> Result<Shared> {
        super::open_named(name, opts, Side::Producer)
    }

    fn from_fd(fd: rustix::fd::OwnedFd, opts: &RingOptions) -> Result<Shared> {
        super::from_fd(fd, opts, Side::Producer)
    }

    fn build(ring: Shared, opts: &RingOptions) -> Result<Producer> {
        Producer::new(ring, opts.wait)
    }

    /// Publish what is pending, mark the end in transit, and take the descriptor
    /// (`None` for an in-process ring, which the drop then closes).
    fn hand_off(p: &mut Producer) -> Option<rustix::fd::OwnedFd> {
        p.flush();
        if !matches!(p.sh.backing, Backing::Segment(_)) {
            return None;
        }
        p.sh.detach(role::PRODUCER_SLOT, role::HANDOFF);
        p.sh.take_fd()
    }

    fn fd_out(fd: Option<rustix::fd::OwnedFd>) -> Self::Fd {
        fd
    }

    fn close(p: &mut Producer) {
        if matches!(p.sh.backing, Backing::Gone) {
            return;
        }
        p.flush();
        p.sh.detach(role::PRODUCER_SLOT, role::CLOSED);
    }

    fn name(ring: &Shared) -> Option<&str> {
        ring.name()
    }
}
