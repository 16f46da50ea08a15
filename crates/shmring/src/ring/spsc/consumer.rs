//! The consumer end of the SPSC ring.

use super::RecvError;
use super::layout::{Backing, role};
use super::{RingOptions, RingStats, Shared, Side, SpscEnd};
use crate::Result;
use crate::primitive::Ordering;
use crate::ring::end::{End, EndKind, Sealed};
use crate::ring::record;
use crate::sync::wait::{Beside, SpinHistory};
use crate::sync::{Check, Wait, WaitEnd, WaitStrategy, Waiter};
use std::time::Duration;

/// The consumer end of an SPSC ring: receives messages, copied or read in place.
///
/// ```
/// let (mut tx, mut rx) = shmring::ring::spsc::channel(1024)?;
/// for m in [&b"a"[..], b"bb", b"ccc"] {
///     tx.send(m)?;
/// }
/// let mut buf = Vec::new();
/// rx.recv_into(&mut buf)?;
/// assert_eq!(buf, b"a");
/// // Drain what is there in one call, releasing the space once.
/// let mut seen = Vec::new();
/// assert_eq!(rx.try_drain(usize::MAX, |m| seen.push(m.to_vec()))?, 2);
/// assert_eq!(seen, [b"bb".to_vec(), b"ccc".to_vec()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Consumer = End<SpscEnd<false>>;

/// What the consumer keeps for itself.
#[derive(Debug)]
pub struct State {
    /// Start of the next record to read.
    head: u64,
    /// The value of the shared `head`: `released <= head`.
    released: u64,
    /// The producer's `tail` at the last cross-check (monotonic).
    seen_tail: u64,
    /// Messages consumed.
    messages: u64,
    /// Times we waited on an empty ring.
    empty_waits: u64,
    wait: WaitStrategy,
    /// How this end's adaptive waits went lately.
    spin_history: SpinHistory,
    /// Empty results of try_* since the last liveness check.
    empty_polls: u32,
}

/// Polls of the next stamp made inline by a waiting receive before its slow path.
const SHORT_SPIN: u32 = 64;

/// What a caller of [`Consumer::read_or`] makes of a message it was shown.
#[cfg(not(loom))]
pub(crate) enum Look<T> {
    /// Hand it over in place (a [`ReadGrant`]).
    Whole,
    /// Consumed; the call returns this.
    Done(T),
    /// Consumed; go on to the next message.
    More,
}

/// A validated message record: payload offset in the region, length, total size.
#[derive(Debug, Clone, Copy)]
struct Msg {
    payload: u64,
    len: usize,
    total: u64,
}

impl State {
    /// The next message record, skipping padding, or `None` if none is published.
    #[inline]
    fn next_record(&mut self, sh: &Shared) -> Result<Option<Msg>, RecvError> {
        loop {
            let off = self.head & (sh.cap - 1);
            // The header is the publication (see ring::record): Acquire inside load_stamp.
            let word = sh.region().load_stamp(off);
            if !super::published_at(word, self.head) {
                return Ok(None);
            }
            let rec =
                record::parse(super::len_type(word), self.head, sh.cap, sh.max_msg).map_err(RecvError::Corrupted)?;
            if rec.padding {
                // At most one padding record per lap: the next iteration is at offset 0,
                // whose expected stamp differs, so this loop ends.
                self.head += rec.total;
                continue;
            }
            return Ok(Some(Msg {
                payload: off + record::HEADER_LEN,
                len: rec.len as usize,
                total: rec.total,
            }));
        }
    }

    /// Cross-check the producer's published `tail` against the stamps (slow path only):
    /// it must be monotonic, within a capacity of what we released, and a record must
    /// be stamped at `head` whenever `tail` is past it.
    fn check_tail(&mut self, sh: &Shared) -> Result<(), RecvError> {
        // Acquire: pairs with the Release store of tail in Producer::flush; every stamp
        // stored before it is then visible.
        let tail = sh.ctl().prod.tail.load(Ordering::Acquire);
        if tail % record::ALIGN != 0 || tail < self.seen_tail || tail > self.released + sh.cap {
            return Err(RecvError::Corrupted("producer tail out of range"));
        }
        self.seen_tail = tail;
        if tail > self.head && self.next_record(sh)?.is_none() {
            return Err(RecvError::Corrupted("producer tail is past a record without a stamp"));
        }
        Ok(())
    }

    /// The shared `head` is written by this end alone and holds what it released
    /// last: another value there was written by someone else (slow path only). Left
    /// alone, a `head` moved back would make the producer wait for space the consumer
    /// already freed while the consumer waits for data: both wait forever.
    fn check_head(&self, sh: &Shared) -> Result<(), RecvError> {
        // Relaxed: only this end stores `head`; the load sees its own last store unless
        // another process wrote the word.
        if sh.ctl().cons.head.load(Ordering::Relaxed) != self.released {
            return Err(RecvError::Corrupted("consumer head changed by another process"));
        }
        Ok(())
    }

    /// `next_record`, or `Disconnected` once the producer is gone and everything it
    /// published has been read; `None`: nothing yet. [`Check::State`] also looks at the
    /// producer's role state; [`Check::Liveness`] (at most every 50 ms while waiting)
    /// also cross-checks `tail` and the producer's liveness lock.
    fn poll(&mut self, sh: &Shared, check: Check) -> Option<Result<Msg, RecvError>> {
        match self.next_record(sh) {
            Ok(Some(m)) => return Some(Ok(m)),
            Err(e) => return Some(Err(e)),
            Ok(None) => {}
        }
        if check == Check::Fast {
            return None;
        }
        let liveness = check == Check::Liveness;
        if liveness && sh.poisoned() {
            return Some(Err(RecvError::Corrupted(crate::shm::sigbus::RESIZED)));
        }
        if liveness && let Err(e) = self.check_tail(sh) {
            return Some(Err(e));
        }
        if liveness && let Err(e) = self.check_head(sh) {
            return Some(Err(e));
        }
        if sh.peer_gone(&sh.ctl().roles.producer, role::PRODUCER_SLOT, liveness) {
            // The producer's last stamp was stored before it closed or died: one more
            // look drains it.
            return match self.next_record(sh) {
                Ok(Some(m)) => Some(Ok(m)),
                Ok(None) => Some(Err(self.end_of_stream(sh))),
                Err(e) => Some(Err(e)),
            };
        }
        None
    }

    /// The producer is gone and nothing is stamped at `head`: the end of its stream,
    /// `Disconnected`, if its final `tail` agrees. A `tail` past `head` means records
    /// it published that this end never found (a stamp erased, or this end led past
    /// them); a producer that closed (it flushes first) with its `tail` behind `head`
    /// means this end took records it never wrote (forged stamps). Either is a loss
    /// to report, not a quiet end. (A producer that died may leave `tail` behind
    /// records it stamped with `send_deferred`: behind `head` is legal then.)
    fn end_of_stream(&self, sh: &Shared) -> RecvError {
        // Acquire: pairs with the Release store of tail in Producer::flush, which its
        // close makes before the Release store of CLOSED that peer_gone saw.
        let tail = sh.ctl().prod.tail.load(Ordering::Acquire);
        // Acquire: as in peer_gone.
        let closed = sh.ctl().roles.producer.state.load(Ordering::Acquire) == role::CLOSED;
        if tail > self.head {
            RecvError::Corrupted("the producer's stream ends past the consumer's position: records were never found")
        } else if closed && tail < self.head {
            RecvError::Corrupted("the consumer read past the closed producer's last record: forged records")
        } else {
            RecvError::Disconnected
        }
    }

    #[inline]
    fn consume(&mut self, m: Msg) {
        self.head += m.total;
        self.messages = self.messages.wrapping_add(1); // started from a peer-writable counter
    }

    /// Publish the consumed space with one Release store of `head`, and wake the
    /// producer if it sleeps.
    #[inline]
    fn release(&mut self, sh: &Shared) {
        if self.head != self.released {
            let c = sh.ctl();
            // Relaxed: a counter for display.
            c.cons.messages.store(self.messages, Ordering::Relaxed);
            // Release: pairs with the Acquire load of head in Producer::refresh_head, so
            // our reads of the released records finish before the producer reuses them.
            c.cons.head.store(self.head, Ordering::Release);
            self.released = self.head;
            c.space_wait.notify(sh.asym);
        }
    }
}

impl Consumer {
    pub(super) fn new(sh: Shared, wait: WaitStrategy) -> Self {
        // Checked at attach (check_indices); only `head` matters to the consumer.
        let (head, tail) = sh.check_indices().unwrap_or((0, 0));
        let messages = sh.ctl().cons.messages.load(Ordering::Relaxed);
        let empty_waits = sh.ctl().cons.empty_waits.load(Ordering::Relaxed);
        Consumer {
            sh,
            st: State {
                head,
                released: head,
                seen_tail: tail,
                messages,
                empty_waits,
                wait,
                spin_history: SpinHistory::default(),
                empty_polls: 0,
            },
        }
    }

    /// Capacity of the ring in bytes.
    pub fn capacity(&self) -> usize {
        self.sh.cap as usize
    }

    /// The largest message this ring accepts.
    pub fn max_message_len(&self) -> usize {
        self.sh.max_msg as usize
    }

    /// The ring's shared counters.
    pub fn stats(&self) -> RingStats {
        self.sh.stats()
    }

    /// Change how this end waits.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.st.wait = wait;
    }

    /// The next message's record, waiting per `wait`.
    #[inline]
    fn next(&mut self, wait: Wait) -> Result<Msg, RecvError> {
        if let Some(m) = self.st.next_record(&self.sh)? {
            return Ok(m);
        }
        // A message that is a few hundred nanoseconds away (a ping-pong peer's reply)
        // is cheapest caught by polling its stamp right here, before the slow path
        // releases space, updates counters and sets up the wait loop. Not while this
        // end's waits have been outlasting the spin (its peer is slow or shares the CPU).
        if !wait.is_now() && self.st.wait != WaitStrategy::Blocking && !self.st.spin_history.is_short() {
            for _ in 0..SHORT_SPIN {
                crate::primitive::spin_hint();
                if let Some(m) = self.st.next_record(&self.sh)? {
                    return Ok(m);
                }
            }
        }
        self.next_slow(wait)
    }

    #[cold]
    fn next_slow(&mut self, wait: Wait) -> Result<Msg, RecvError> {
        // Space we hold back cannot be reused: release it before reporting or waiting.
        self.st.release(&self.sh);
        if wait.is_now() {
            self.st.empty_polls += 1;
            let check = self.st.empty_polls >= 1024;
            if check {
                self.st.empty_polls = 0;
            }
            let check = if check { Check::Liveness } else { Check::State };
            return self.st.poll(&self.sh, check).unwrap_or(Err(RecvError::Empty));
        }
        if let Some(r) = self.st.poll(&self.sh, Check::State) {
            return r;
        }
        self.st.empty_waits = self.st.empty_waits.wrapping_add(1); // started from a peer-writable counter
        // Relaxed: a counter for display.
        self.sh
            .ctl()
            .cons
            .empty_waits
            .store(self.st.empty_waits, Ordering::Relaxed);
        let (sh, st) = (&self.sh, &mut self.st);
        let waiter = Waiter {
            word: &sh.ctl().data_wait,
            strategy: st.wait,
            asymmetric: sh.asym,
        };
        // The producer sleeps on space_wait: where it records its CPU.
        let mut history = st.spin_history;
        let beside = Beside {
            peer: &sh.ctl().space_wait,
            history: &mut history,
        };
        let r = waiter.wait_beside(Some(beside), wait, |check| {
            // Also on the State polls (throttled to an fstat per liveness interval), so
            // that waits shorter than the interval notice a resize too; only here, not
            // in the non-waiting path's State polls, which stay free of clock reads.
            if check == Check::State && sh.poisoned() {
                return Some(Err(RecvError::Corrupted(crate::shm::sigbus::RESIZED)));
            }
            st.poll(sh, check)
        });
        st.spin_history = history;
        match r {
            Ok(r) => r,
            Err(WaitEnd::Timeout) => Err(RecvError::Timeout),
            Err(WaitEnd::Interrupted) => Err(RecvError::Interrupted),
        }
    }

    fn take_into(&mut self, m: Msg, buf: &mut Vec<u8>) {
        buf.clear();
        #[cfg(not(loom))]
        {
            buf.reserve(m.len);
            let dst = &mut buf.spare_capacity_mut()[..m.len];
            let src = self.sh.region().slice_ptr(m.payload, m.len);
            // SAFETY: `src` is valid for `m.len` bytes (slice_ptr checked the bounds) and
            // published by the producer; `dst` is spare capacity of `buf`, a distinct
            // allocation, of exactly `m.len` bytes.
            unsafe { crate::ring::copy_bytes(src, dst.as_mut_ptr().cast::<u8>(), m.len) };
            // SAFETY: the first `m.len` bytes of spare capacity were just initialized.
            unsafe { buf.set_len(m.len) };
        }
        #[cfg(loom)]
        {
            buf.resize(m.len, 0);
            self.sh.region().copy_out(m.payload, buf);
        }
        self.st.consume(m);
        self.st.release(&self.sh);
    }

    /// Receive the next message, waiting while the ring is empty.
    pub fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_into(&mut v)?;
        Ok(v)
    }

    /// Receive the next message into `buf` (cleared first; its allocation is reused),
    /// waiting while the ring is empty. Returns the message's length.
    #[inline]
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        let m = self.next(Wait::Forever)?;
        self.take_into(m, buf);
        Ok(m.len)
    }

    /// Receive a message if one is there ([`RecvError::Empty`] otherwise).
    pub fn try_recv(&mut self) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.try_recv_into(&mut v)?;
        Ok(v)
    }

    /// [`Consumer::try_recv`] into a reused buffer.
    #[inline]
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        let m = self.next(Wait::Now)?;
        self.take_into(m, buf);
        Ok(m.len)
    }

    /// Receive the next message, waiting at most `timeout` ([`RecvError::Timeout`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_timeout_into(&mut v, timeout)?;
        Ok(v)
    }

    /// [`Consumer::recv_timeout`] into a reused buffer.
    pub fn recv_timeout_into(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize, RecvError> {
        let m = self.next(Wait::after(timeout))?;
        self.take_into(m, buf);
        Ok(m.len)
    }
}

#[cfg(not(loom))]
impl Consumer {
    /// Read the next message in place, waiting while the ring is empty. The space is
    /// released when the grant drops.
    pub fn read(&mut self) -> Result<ReadGrant<'_>, RecvError> {
        let m = self.next(Wait::Forever)?;
        Ok(ReadGrant { c: self, m })
    }

    /// Read the next message in place if one is there ([`RecvError::Empty`] otherwise).
    pub fn try_read(&mut self) -> Result<ReadGrant<'_>, RecvError> {
        let m = self.next(Wait::Now)?;
        Ok(ReadGrant { c: self, m })
    }

    /// Read the next message in place, waiting at most `timeout`.
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_>, RecvError> {
        let m = self.next(Wait::after(timeout))?;
        Ok(ReadGrant { c: self, m })
    }

    /// Hand up to `max` of the messages that are there now to `f`, in place, then
    /// release their space with one index store. Returns how many were handed over;
    /// [`RecvError::Empty`] if there were none.
    pub fn try_drain(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> Result<usize, RecvError> {
        self.drain_while(max, |m| {
            f(m);
            true
        })
    }

    /// [`Consumer::try_drain`] where `f` says whether it takes each message: the first
    /// one it refuses (`false`) ends the batch and stays unread, for the next receive.
    /// `Ok(0)`: `f` refused the first.
    pub(crate) fn drain_while(&mut self, max: usize, mut f: impl FnMut(&[u8]) -> bool) -> Result<usize, RecvError> {
        let mut n = 0;
        let mut refused = false;
        while n < max {
            let m = match self.st.next_record(&self.sh) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    self.st.release(&self.sh);
                    return Err(e);
                }
            };
            if !f(self.payload(m)) {
                refused = true;
                break;
            }
            self.st.consume(m);
            n += 1;
        }
        if n == 0 && !refused {
            // Nothing was there: Empty, or Disconnected (the slow path checks the
            // producer), or a record published in the meantime, handed over as usual.
            let m = self.next(Wait::Now)?;
            if f(self.payload(m)) {
                self.st.consume(m);
                n = 1;
            }
        }
        self.st.release(&self.sh);
        Ok(n)
    }

    /// Wait per `wait` for the next message and hand it to `f` in place without
    /// consuming it: the next receive gets it again.
    pub(crate) fn peek_with<R>(&mut self, wait: Wait, f: impl FnOnce(&[u8]) -> R) -> Result<R, RecvError> {
        let m = self.next(wait)?;
        Ok(f(self.payload(m)))
    }

    /// Wait per `wait` for the next message and show it to `f`: [`Look::Whole`] hands
    /// it over in place (`Ok(Ok(grant))`); otherwise it is consumed, and
    /// [`Look::Done`] returns `f`'s result (`Ok(Err(t))`) while [`Look::More`] goes on
    /// to the next message (waiting per `wait` again). One look at each record for the
    /// decision and the read (a [`peek_with`](Self::peek_with) then a read looked twice).
    #[cfg(not(loom))]
    pub(crate) fn read_or<T>(
        &mut self,
        wait: Wait,
        mut f: impl FnMut(&[u8]) -> Look<T>,
    ) -> Result<Result<ReadGrant<'_>, T>, RecvError> {
        loop {
            let m = self.next(wait)?;
            match f(self.payload(m)) {
                Look::Whole => return Ok(Ok(ReadGrant { c: self, m })),
                Look::Done(t) => {
                    self.st.consume(m);
                    self.st.release(&self.sh);
                    return Ok(Err(t));
                }
                Look::More => {
                    self.st.consume(m);
                    self.st.release(&self.sh);
                }
            }
        }
    }

    /// The payload of a record found by `next_record`, in place.
    #[inline]
    fn payload(&self, m: Msg) -> &[u8] {
        let ptr = self.sh.region().slice_ptr(m.payload, m.len);
        // SAFETY: bounds checked by slice_ptr; the bytes are published and not released
        // while `m` is unconsumed (the borrow of `self` keeps the consumer from moving
        // on), so the producer does not write them.
        unsafe { std::slice::from_raw_parts(ptr, m.len) }
    }
}

/// Read-only hooks for `connection::wait`, which sleeps on many consumers at once with
/// the same waiter protocol as [`Consumer`]'s own waits (see `crate::sync::wait`). None
/// of them consumes anything or changes the ring's state.
#[cfg(not(loom))]
impl Consumer {
    /// Whether a record (a message, or a bad header that `recv` will report) is
    /// published at the read position, looking past one padding record at the wrap.
    /// Does not consume it.
    pub(crate) fn has_record(&self) -> bool {
        let sh = &self.sh;
        let mut head = self.st.head;
        // At most one padding record per lap, so two looks suffice; a third published
        // record would be the producer's fault, which `recv` reports.
        for _ in 0..2 {
            let off = head & (sh.cap - 1);
            // The header is the publication (see ring::record): Acquire inside load_stamp.
            let word = sh.region().load_stamp(off);
            if !super::published_at(word, head) {
                return false;
            }
            match record::parse(super::len_type(word), head, sh.cap, sh.max_msg) {
                Ok(rec) if rec.padding => head += rec.total,
                // A message, or a bad header: either way `recv` returns at once.
                _ => return true,
            }
        }
        true
    }

    /// Whether the producer closed its end or (when `check_liveness`, a syscall) died.
    /// Records it published before may still be waiting to be read.
    pub(crate) fn producer_gone(&self, check_liveness: bool) -> bool {
        self.sh
            .peer_gone(&self.sh.ctl().roles.producer, role::PRODUCER_SLOT, check_liveness)
    }

    /// The word this consumer sleeps on for data, and whether the segment uses
    /// asymmetric fences (the sleeper's heavy fence must then be a `membarrier`).
    pub(crate) fn data_wait(&self) -> (&crate::sync::WaitWord, bool) {
        (&self.sh.ctl().data_wait, self.sh.asym)
    }
}

/// A message read in place: derefs to its bytes in the ring. The space is released to
/// the producer when the grant drops.
#[cfg(not(loom))]
#[derive(Debug)]
pub struct ReadGrant<'a> {
    c: &'a mut Consumer,
    m: Msg,
}

#[cfg(not(loom))]
impl std::ops::Deref for ReadGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let ptr = self.c.sh.region().slice_ptr(self.m.payload, self.m.len);
        // SAFETY: in bounds (slice_ptr checked); published and not yet released, so
        // the producer does not write these bytes while the grant lives.
        unsafe { std::slice::from_raw_parts(ptr, self.m.len) }
    }
}

#[cfg(not(loom))]
impl Drop for ReadGrant<'_> {
    fn drop(&mut self) {
        self.c.st.consume(self.m);
        self.c.st.release(&self.c.sh);
    }
}

impl EndKind for SpscEnd<false> {}

impl Sealed for SpscEnd<false> {
    type Ring = Shared;
    type State = State;
    type Options = RingOptions;
    type Params = usize;
    type Fd = Option<rustix::fd::OwnedFd>;
    const NAME: &'static str = "Consumer";
    #[cfg(not(loom))]
    const HANDOFF: crate::handoff::Kind = crate::handoff::Kind::SpscConsumer;

    fn create(name: &str, capacity: usize, opts: &RingOptions) -> Result<Shared> {
        super::create_named(name, capacity, opts, Side::Consumer)
    }

    fn open(name: &str, opts: &RingOptions) -> Result<Shared> {
        super::open_named(name, opts, Side::Consumer)
    }

    fn from_fd(fd: rustix::fd::OwnedFd, opts: &RingOptions) -> Result<Shared> {
        super::from_fd(fd, opts, Side::Consumer)
    }

    fn build(ring: Shared, opts: &RingOptions) -> Result<Consumer> {
        Ok(Consumer::new(ring, opts.wait))
    }

    /// Release consumed space, mark the end in transit, and take the descriptor (`None`
    /// for an in-process ring, which the drop then closes).
    fn hand_off(c: &mut Consumer) -> Option<rustix::fd::OwnedFd> {
        c.st.release(&c.sh);
        if !matches!(c.sh.backing, Backing::Segment(_)) {
            return None;
        }
        c.sh.detach(role::CONSUMER_SLOT, role::HANDOFF);
        c.sh.take_fd()
    }

    fn fd_out(fd: Option<rustix::fd::OwnedFd>) -> Self::Fd {
        fd
    }

    fn close(c: &mut Consumer) {
        if matches!(c.sh.backing, Backing::Gone) {
            return;
        }
        c.st.release(&c.sh);
        c.sh.detach(role::CONSUMER_SLOT, role::CLOSED);
    }

    fn name(ring: &Shared) -> Option<&str> {
        ring.name()
    }
}
