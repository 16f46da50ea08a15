//! The subscriber end of the broadcast ring.

use super::layout::{Backing, role, slot};
use super::record;
use super::{BroadcastEnd, Options, Policy, RecvError, Shared, Start};
use crate::primitive::{self, Ordering};
use crate::ring::end::{End, EndKind, Sealed, SealedSeveral, Several};
use crate::sync::{Check, Wait, WaitEnd, WaitStrategy, Waiter};
use crate::{Error, Result};
use std::time::Duration;

#[cfg(not(loom))]
mod grant;
mod look;

#[cfg(not(loom))]
pub use grant::ReadGrant;

use look::{look_fast, look_settled, seq_at};

/// A subscriber of a broadcast ring: receives every message the publisher sends after
/// it attached (or from the oldest one retained, per [`Options::start`]), copied or
/// read in place (with a closure, [`read`](Self::read), or with a grant,
/// [`read_ref`](Self::read_ref): zero-copy in the lossless policy).
///
/// ```
/// use shmring::broadcast::{Options, Policy, Publisher, RecvError, Start, Subscriber};
/// let name = format!("doc-bcast-sub-{}", std::process::id());
/// let mut tx = Publisher::create(&name, 4096, 16, Policy::Overwrite)?;
/// tx.send(b"early")?;
/// let mut late = Subscriber::open(&name)?; // starts at the newest: misses "early"
/// let mut all = Subscriber::open_with(&name, &Options::new().start(Start::Oldest))?;
/// tx.send(b"tick")?;
/// assert_eq!(all.recv()?, b"early");
/// assert_eq!(late.read(|m| m.len())?, 4); // in place
/// assert_eq!(late.try_recv(), Err(RecvError::Empty));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Subscriber = End<BroadcastEnd<false>>;

/// What a subscriber keeps for itself.
#[derive(Debug)]
pub struct State {
    /// Our slot in the table.
    idx: u32,
    /// Our position: every record below it was read.
    cursor: u64,
    /// The publisher's `tail` as we last loaded it (can be stale; never ahead of the
    /// shared one): the records below it are published, so the fast path reads them
    /// without touching the publisher's line again, and loads `tail` only when the
    /// cursor reaches this value.
    tail: u64,
    /// The sequence number of the next message we expect.
    expected: u64,
    wait: WaitStrategy,
    /// Empty results of try_* since the last liveness check.
    empty_polls: u32,
    received: u64,
    missed: u64,
    empty_waits: u64,
    /// Set while a lossless [`ReadGrant`] is being taken: the delivered record's
    /// cursor is not stored into our slot (the grant's drop stores it).
    hold: bool,
    /// The copy an overwrite-policy [`ReadGrant`] shows.
    #[cfg(not(loom))]
    scratch: Vec<u8>,
}

/// Looks at the next record made inline by a waiting receive before its slow path.
const SHORT_SPIN: u32 = 64;

/// What one look at the ring found.
enum Look<R> {
    /// A message, handed to the reader.
    Message(R),
    /// Nothing new.
    Empty,
    /// Lapped again while reading: look again.
    Retry,
}

impl Subscriber {
    /// Take a free slot of `sh`'s table (its lock for a segment, a CAS in memory) and
    /// join at `start`.
    pub(super) fn attach(sh: Shared, wait: WaitStrategy, start: Start) -> Result<Self> {
        Self::attach_at(sh, wait, |tail, oldest| match start {
            Start::Newest => tail,
            Start::Oldest => oldest,
        })
    }

    /// Attach with the starting cursor chosen by `at(tail, oldest)` (clamped into
    /// `oldest..=tail`).
    fn attach_at(sh: Shared, wait: WaitStrategy, at: impl Fn(u64, u64) -> u64) -> Result<Self> {
        let name = sh.display_name().to_owned();
        let corrupted = |what: &str| Error::Corrupted {
            name: name.clone(),
            what: what.into(),
        };
        let mut taken = None;
        for i in 0..sh.nsubs {
            let s = sh.sub(i);
            if sh.is_segment() {
                if !sh.try_lock(role::SUB_LOCK_BASE + i)? {
                    continue;
                }
                // Relaxed: we hold the slot's lock; a reclaim CAS that races with us
                // fails on the new word.
                let w = s.word.load(Ordering::Relaxed);
                taken = Some((i, slot::next(w, slot::ACTIVE)));
                break;
            }
            // In-process: the CAS is the claim.
            let w = s.word.load(Ordering::Relaxed);
            if slot::state(w) != slot::ACTIVE {
                let new = slot::next(w, slot::ACTIVE);
                // Relaxed: the Release store of the same word below publishes the cursor.
                if s.word
                    .compare_exchange(w, new, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    taken = Some((i, new));
                    break;
                }
            }
        }
        let Some((idx, word)) = taken else {
            return Err(Error::InvalidArgument(format!(
                "broadcast ring {name:?} already has {} subscribers",
                sh.nsubs
            )));
        };
        let s = sh.sub(idx);
        #[cfg(not(loom))]
        {
            let (pid, start) = crate::shm::liveness::self_identity();
            // Relaxed: informational.
            s.pid.store(pid, Ordering::Relaxed);
            s.start_time.store(start, Ordering::Relaxed);
        }
        // Relaxed: counters for display, restarted for the new holder.
        s.received.store(0, Ordering::Relaxed);
        s.missed.store(0, Ordering::Relaxed);
        s.empty_waits.store(0, Ordering::Relaxed);
        let fail = |e: Error| {
            // Release: as in detach.
            s.word.store(slot::with_state(word, slot::FREE), Ordering::Release);
            sh.unlock(role::SUB_LOCK_BASE + idx);
            e
        };
        let (tail, oldest) = match sh.indices() {
            Ok(x) => x,
            Err(what) => return Err(fail(corrupted(what))),
        };
        let mut c = at(tail, oldest).clamp(oldest, tail);
        let mut joined = false;
        for _ in 0..1000 {
            // (1) Relaxed: published by the Release store of the word (first round) or
            // ordered before the re-check by the SeqCst fence.
            s.cursor.store(c, Ordering::Relaxed);
            // Release: pairs with the Acquire load of the word in the publisher's scan.
            s.word.store(word, Ordering::Release);
            // (2) the store-load pair with the publisher's advance (module docs).
            primitive::fence(Ordering::SeqCst);
            // (3) Relaxed: ordered after our registration by the fence.
            let o = sh.ctl().publ.oldest.load(Ordering::Relaxed);
            if c >= o {
                joined = true;
                break;
            }
            c = o;
        }
        if !joined || c % record::ALIGN != 0 {
            return Err(fail(corrupted("oldest keeps moving past a joining subscriber")));
        }
        let mut expected = None;
        for _ in 0..1000 {
            match seq_at(&sh, c) {
                Ok(Some(e)) => {
                    expected = Some(e);
                    break;
                }
                Ok(None) => {
                    // Lapped while we looked (overwrite): start at the oldest record.
                    // Relaxed: the cursor moves forward, which a publisher may miss.
                    let (_, o) = sh.indices().map_err(|w| fail(corrupted(w)))?;
                    c = c.max(o);
                    s.cursor.store(c, Ordering::Relaxed);
                }
                Err(what) => return Err(fail(corrupted(what))),
            }
        }
        let Some(expected) = expected else {
            return Err(fail(corrupted("the publisher laps a joining subscriber on every look")));
        };
        Ok(Subscriber {
            sh,
            st: State {
                idx,
                cursor: c,
                tail: c,
                expected,
                wait,
                empty_polls: 0,
                received: 0,
                missed: 0,
                empty_waits: 0,
                hold: false,
                #[cfg(not(loom))]
                scratch: Vec::new(),
            },
        })
    }

    /// Capacity of the ring in bytes.
    pub fn capacity(&self) -> usize {
        self.sh.cap as usize
    }

    /// The largest message this ring accepts.
    pub fn max_message_len(&self) -> usize {
        self.sh.max_msg as usize
    }

    /// The ring's policy.
    pub fn policy(&self) -> Policy {
        self.sh.policy
    }

    /// This subscriber's slot in the ring's table.
    pub fn slot(&self) -> usize {
        self.st.idx as usize
    }

    /// This subscriber's stream position (compare with [`Publisher::position`](super::Publisher::position)).
    pub fn position(&self) -> u64 {
        self.st.cursor
    }

    /// Messages delivered to this subscriber.
    pub fn received(&self) -> u64 {
        self.st.received
    }

    /// Messages this subscriber missed (overwrite policy: the sum of its `Lagged`s).
    pub fn missed(&self) -> u64 {
        self.st.missed
    }

    /// Change how this end waits.
    pub fn set_wait_strategy(&mut self, wait: WaitStrategy) {
        self.st.wait = wait;
    }

    /// Receive the next message, waiting for it.
    pub fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        self.read_wait(Wait::Forever, |m| m.to_vec())
    }

    /// Receive the next message if there is one ([`RecvError::Empty`] otherwise).
    pub fn try_recv(&mut self) -> Result<Vec<u8>, RecvError> {
        self.read_wait(Wait::Now, |m| m.to_vec())
    }

    /// Receive the next message, waiting at most `timeout` ([`RecvError::Timeout`]).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        self.read_wait(Wait::after(timeout), |m| m.to_vec())
    }

    /// Receive the next message into `buf` (cleared first), waiting for it; its length.
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.read_wait(Wait::Forever, |m| {
            buf.clear();
            buf.extend_from_slice(m);
            m.len()
        })
    }

    /// Read the next message in place, waiting for it: `f` sees the bytes in the ring
    /// and its result is returned. In the overwrite policy the bytes may be overwritten
    /// while `f` runs: `f`'s result is then discarded and the subscriber reports
    /// [`RecvError::Lagged`] (so `f` must not act on the bytes beyond computing its
    /// result; it may be called again for a later message).
    pub fn read<R>(&mut self, f: impl FnMut(&[u8]) -> R) -> Result<R, RecvError> {
        self.read_wait(Wait::Forever, f)
    }

    /// [`read`](Self::read) if there is a message now ([`RecvError::Empty`] otherwise).
    pub fn try_read<R>(&mut self, f: impl FnMut(&[u8]) -> R) -> Result<R, RecvError> {
        self.read_wait(Wait::Now, f)
    }

    /// [`read`](Self::read), waiting at most `timeout`.
    pub fn read_timeout<R>(&mut self, timeout: Duration, f: impl FnMut(&[u8]) -> R) -> Result<R, RecvError> {
        self.read_wait(Wait::after(timeout), f)
    }

    /// Read every message there is now, in place, with `f`; stop early when `f`
    /// returns `false`. Returns how many were read (`Ok(0)` if there was none). A
    /// `Lagged` or an error ends the batch after the messages before it.
    pub fn try_drain(&mut self, mut f: impl FnMut(&[u8]) -> bool) -> Result<usize, RecvError> {
        let mut n = 0;
        loop {
            if let Some(more) = look_fast(&self.sh, &mut self.st, &mut f) {
                n += 1;
                if !more {
                    return Ok(n);
                }
                continue;
            }
            match self.look(&mut f, Check::Fast) {
                Ok(Look::Message(true)) => n += 1,
                Ok(Look::Message(false)) => return Ok(n + 1),
                Ok(Look::Empty) => return Ok(n),
                Ok(Look::Retry) => continue,
                Err(e) if n > 0 && matches!(e, RecvError::Lagged { .. }) => return Ok(n),
                Err(e) => return Err(e),
            }
        }
    }

    #[inline]
    pub(super) fn read_wait<R>(&mut self, wait: Wait, mut f: impl FnMut(&[u8]) -> R) -> Result<R, RecvError> {
        // The fast path: a whole message is there (inline; everything else is not).
        if let Some(r) = look_fast(&self.sh, &mut self.st, &mut f) {
            return Ok(r);
        }
        self.read_slow(wait, f)
    }

    /// Everything but the fast path of [`read_wait`](Self::read_wait): padding, a lap,
    /// a bad record (reported), or no message yet (waiting per `wait`).
    #[cold]
    #[inline(never)]
    fn read_slow<R>(&mut self, wait: Wait, mut f: impl FnMut(&[u8]) -> R) -> Result<R, RecvError> {
        if let Look::Message(r) = self.look(&mut f, Check::Fast)? {
            return Ok(r);
        }
        // A message a few hundred nanoseconds away (a ping-pong peer's reply, a
        // publisher just ahead) is cheapest caught by looking again right here, before
        // the slow path stores the wait counter into the slot line the publisher scans
        // and sets up the wait loop (as the SPSC consumer does). Not in Blocking mode.
        if !wait.is_now() && self.st.wait != WaitStrategy::Blocking {
            for _ in 0..SHORT_SPIN {
                primitive::spin_hint();
                if let Look::Message(r) = self.look(&mut f, Check::Fast)? {
                    return Ok(r);
                }
            }
        }
        if wait.is_now() {
            self.st.empty_polls += 1;
            let check = if self.st.empty_polls >= 1024 {
                self.st.empty_polls = 0;
                Check::Liveness
            } else {
                Check::State
            };
            return match self.look(&mut f, check)? {
                Look::Message(r) => Ok(r),
                _ => Err(RecvError::Empty),
            };
        }
        self.st.empty_waits = self.st.empty_waits.wrapping_add(1);
        // Relaxed: a counter for display.
        self.sh
            .sub(self.st.idx)
            .empty_waits
            .store(self.st.empty_waits, Ordering::Relaxed);
        let this: &mut Subscriber = self;
        let waiter = Waiter {
            word: &this.sh.ctl().data_wait,
            strategy: this.st.wait,
            asymmetric: this.sh.asym,
        };
        let (sh, st) = (&this.sh, &mut this.st);
        let r = waiter.wait_flagged(wait, |check| match look_settled(sh, st, &mut f, check) {
            Ok(Look::Message(r)) => Some(Ok(r)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        });
        match r {
            Ok(r) => r,
            Err(WaitEnd::Timeout) => Err(RecvError::Timeout),
            Err(WaitEnd::Interrupted) => Err(RecvError::Interrupted),
        }
    }

    #[inline]
    fn look<R>(&mut self, f: &mut impl FnMut(&[u8]) -> R, check: Check) -> Result<Look<R>, RecvError> {
        look_settled(&self.sh, &mut self.st, f, check)
    }
}

/// Leave the slot: FREE (same generation), then release its lock and wake a publisher
/// that may be waiting for us.
fn leave(sh: &Shared, st: &State) {
    let s = sh.sub(st.idx);
    // Relaxed: our own word (we hold the slot).
    let w = s.word.load(Ordering::Relaxed);
    // Release: pairs with the Acquire load in the publisher's scan.
    s.word.store(slot::with_state(w, slot::FREE), Ordering::Release);
    sh.unlock(role::SUB_LOCK_BASE + st.idx);
    sh.ctl().space_wait.wake_always();
}

impl EndKind for BroadcastEnd<false> {}

impl Sealed for BroadcastEnd<false> {
    super::ends::sealed_common!();
    type State = State;
    const NAME: &'static str = "Subscriber";
    #[cfg(not(loom))]
    const HANDOFF: crate::handoff::Kind = crate::handoff::Kind::BroadcastSubscriber;

    fn build(ring: Shared, opts: &Options) -> Result<Subscriber> {
        Subscriber::attach(ring, opts.wait, opts.start)
    }

    /// Leave the slot (the receiver takes a slot of its own) and take the descriptor.
    fn hand_off(s: &mut Subscriber) -> Option<rustix::fd::OwnedFd> {
        if !matches!(s.sh.backing, Backing::Segment(_)) {
            return None;
        }
        leave(&s.sh, &s.st);
        s.sh.take_fd()
    }

    fn close(s: &mut Subscriber) {
        if matches!(s.sh.backing, Backing::Gone) {
            return;
        }
        leave(&s.sh, &s.st);
    }
}

impl SealedSeveral for BroadcastEnd<false> {
    /// Another subscriber at the same position (it receives the same messages from
    /// here on), in a slot of its own.
    fn try_clone(s: &Subscriber) -> Result<Subscriber> {
        let at = s.st.cursor;
        let mut c = Subscriber::attach_at(s.sh.reopen()?, s.st.wait, |_, _| at)?;
        c.st.expected = s.st.expected;
        Ok(c)
    }
}

impl Several for BroadcastEnd<false> {}
