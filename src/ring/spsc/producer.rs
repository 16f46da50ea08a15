//! The producer end of the SPSC ring.

use super::{RingOptions, RingStats, Shared, Side};
use crate::primitive::Ordering;
use crate::ring::layout::role;
use crate::ring::record::{self, MESSAGE, PADDING};
use crate::sync::{Deadline, WaitStrategy, Waiter};
use crate::{Result, SendError};
use std::time::Duration;

/// The producer end of an SPSC ring: sends messages, copied or written in place.
///
/// ```
/// let (mut tx, mut rx) = shmring::ring::spsc::channel(1024)?;
/// tx.send(b"one")?;
/// tx.send_deferred(b"two")?;   // written, not yet visible
/// tx.send_deferred(b"three")?;
/// tx.flush();                  // both published with one index store
/// assert_eq!(rx.recv()?, b"one");
/// assert_eq!(rx.recv()?, b"two");
/// assert_eq!(rx.recv()?, b"three");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Producer {
    sh: Shared,
    st: State,
}

#[derive(Debug)]
struct State {
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
    /// Full results of try_* since the last liveness check.
    full_polls: u32,
}

/// Where a reserved record's payload goes and where the tail will be after it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    payload: u64,
    end: u64,
}

impl Producer {
    pub(super) fn new(sh: Shared, wait: WaitStrategy) -> Self {
        // Checked at attach; an in-process ring starts at zero.
        let (head, tail) = sh.check_indices().unwrap_or((0, 0));
        let messages = sh.ctl().prod.messages.load(Ordering::Relaxed);
        let full_waits = sh.ctl().prod.full_waits.load(Ordering::Relaxed);
        Producer {
            sh,
            st: State {
                tail,
                published: tail,
                cached_head: head,
                messages,
                full_waits,
                wait,
                full_polls: 0,
            },
        }
    }

    /// Create the named ring `name` of at least `capacity` bytes (rounded up to a power
    /// of two, at least 64) and attach as its producer. The segment is unlinked when
    /// this end drops (unless `keep` was set).
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_with(name, capacity, &RingOptions::default())
    }

    /// [`Producer::create`] with options.
    pub fn create_with(name: &str, capacity: usize, opts: &RingOptions) -> Result<Self> {
        Ok(Self::new(
            super::create_named(name, capacity, opts, Side::Producer)?,
            opts.wait,
        ))
    }

    /// Attach as the producer of the existing named ring `name`.
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &RingOptions::default())
    }

    /// [`Producer::open`] with options.
    pub fn open_with(name: &str, opts: &RingOptions) -> Result<Self> {
        Ok(Self::new(super::open_named(name, opts, Side::Producer)?, opts.wait))
    }

    /// Rebuild a producer from a descriptor made by [`Producer::into_fd`] (inherited or
    /// received over `SCM_RIGHTS`).
    pub fn from_fd(fd: rustix::fd::OwnedFd) -> Result<Self> {
        Self::from_fd_with(fd, &RingOptions::default())
    }

    /// [`Producer::from_fd`] with options.
    pub fn from_fd_with(fd: rustix::fd::OwnedFd, opts: &RingOptions) -> Result<Self> {
        Ok(Self::new(super::from_fd(fd, opts, Side::Producer)?, opts.wait))
    }

    /// Hand this end over: publish what is pending, mark the end in transit, and return
    /// the descriptor (which keeps the end's liveness lock) for another process to pass
    /// to [`Producer::from_fd`]. `None` for an in-process ring.
    pub fn into_fd(mut self) -> Option<rustix::fd::OwnedFd> {
        self.flush();
        if !matches!(self.sh.backing, crate::ring::layout::Backing::Segment(_)) {
            return None;
        }
        self.sh.detach(role::PRODUCER_SLOT, role::HANDOFF);
        self.sh.take_fd()
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

    /// Send `msg`, waiting while the ring is full.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_deferred(msg)?;
        self.flush();
        Ok(())
    }

    /// Send `msg` if there is space now: [`SendError::Full`] otherwise.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let slot = self.reserve(msg.len(), None)?;
        self.write(slot, msg);
        self.flush();
        Ok(())
    }

    /// Send `msg`, waiting at most `timeout` for space ([`SendError::Timeout`]).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        let slot = self.reserve(msg.len(), Some(Deadline::after(Some(timeout))))?;
        self.write(slot, msg);
        self.flush();
        Ok(())
    }

    /// Write `msg` into the ring without publishing it: it becomes visible to the
    /// consumer at the next [`Producer::flush`] (or send, commit, or drop). Waits while
    /// the ring is full (publishing what is pending first, so the consumer can drain).
    #[inline]
    pub fn send_deferred(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let slot = self.reserve(msg.len(), Some(Deadline(None)))?;
        self.write(slot, msg);
        Ok(())
    }

    /// Publish every committed record with one Release store of `tail`, and wake the
    /// consumer if it sleeps.
    #[inline]
    pub fn flush(&mut self) {
        if self.st.tail != self.st.published {
            let c = self.sh.ctl();
            // Relaxed: a counter for display.
            c.prod.messages.store(self.st.messages, Ordering::Relaxed);
            // Release: pairs with the Acquire load of tail in Consumer::next_record, so the
            // records written before it are visible to the consumer that sees it.
            let publish = Ordering::Release;
            #[cfg(loom)] // a loom test plants a Relaxed store here to prove the model catches it
            let publish = crate::primitive::loom_break::weaken(
                crate::primitive::loom_break::LoomBreak::TailPublishRelaxed,
                publish,
            );
            c.prod.tail.store(self.st.tail, publish);
            self.st.published = self.st.tail;
            c.data_wait.notify(self.sh.asym);
        }
    }

    #[inline]
    fn write(&mut self, slot: Slot, msg: &[u8]) {
        self.sh.region().copy_in(slot.payload, msg);
        self.st.tail = slot.end;
        self.st.messages = self.st.messages.wrapping_add(1); // started from a peer-writable counter
    }

    /// Reserve a record for `len` bytes and write its header. `None`: do not wait.
    #[inline]
    fn reserve(&mut self, len: usize, wait: Option<Deadline>) -> Result<Slot, SendError> {
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
        let need = |tail: u64| {
            let to_end = cap - (tail & (cap - 1));
            if total <= to_end { total } else { to_end + total }
        };
        if self.st.tail + need(self.st.tail) - self.st.cached_head > cap {
            self.refresh_head()?;
            if self.st.tail + need(self.st.tail) - self.st.cached_head > cap {
                match wait {
                    None => return Err(self.full_or_gone()),
                    Some(deadline) => self.wait_space(need(self.st.tail), deadline)?,
                }
            }
        }
        let off = self.st.tail & (cap - 1);
        let to_end = cap - off;
        let region = self.sh.region();
        if total > to_end {
            // Fill to the end with a padding record; it is committed with this message.
            region.write_header(off, record::encode((to_end - record::HEADER_LEN) as u32, PADDING));
            self.st.tail += to_end;
            let off = 0;
            region.write_header(off, record::encode(len as u32, MESSAGE));
            return Ok(Slot {
                payload: off + record::HEADER_LEN,
                end: self.st.tail + total,
            });
        }
        region.write_header(off, record::encode(len as u32, MESSAGE));
        Ok(Slot {
            payload: off + record::HEADER_LEN,
            end: self.st.tail + total,
        })
    }

    /// Re-read the consumer's head, checking it against what we know.
    #[inline]
    fn refresh_head(&mut self) -> Result<(), SendError> {
        // Acquire: pairs with the Release store of head in Consumer::release, so the
        // consumer's reads of the space we are about to overwrite are done.
        let head = self.sh.ctl().cons.head.load(Ordering::Acquire);
        if head % 8 != 0 || head < self.st.cached_head || head > self.st.published {
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
    fn wait_space(&mut self, need: u64, deadline: Deadline) -> Result<(), SendError> {
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
        let r = waiter.wait(deadline, |check| {
            // Acquire: as in refresh_head.
            let head = sh.ctl().cons.head.load(Ordering::Acquire);
            if head % 8 != 0 || head < st.cached_head || head > st.published {
                return Some(Err(SendError::Corrupted("consumer head out of range")));
            }
            st.cached_head = head;
            if st.tail + need - head <= cap {
                return Some(Ok(()));
            }
            if sh.peer_gone(&sh.ctl().roles.consumer, role::CONSUMER_SLOT, check) {
                return Some(Err(SendError::Disconnected));
            }
            None
        });
        r.unwrap_or(Err(SendError::Timeout))
    }

    /// Reserve `len` bytes in place if there is space now ([`SendError::Full`]
    /// otherwise). Write them through the grant, then commit it; a grant dropped
    /// without commit is aborted and nothing is sent.
    #[cfg(not(loom))]
    pub fn try_claim(&mut self, len: usize) -> Result<WriteGrant<'_>, SendError> {
        let slot = self.reserve(len, None)?;
        Ok(WriteGrant { p: self, slot, len })
    }

    /// Reserve `len` bytes in place, waiting while the ring is full.
    #[cfg(not(loom))]
    pub fn claim(&mut self, len: usize) -> Result<WriteGrant<'_>, SendError> {
        let slot = self.reserve(len, Some(Deadline(None)))?;
        Ok(WriteGrant { p: self, slot, len })
    }

    /// Reserve `len` bytes in place, waiting at most `timeout`.
    #[cfg(not(loom))]
    pub fn claim_timeout(&mut self, len: usize, timeout: Duration) -> Result<WriteGrant<'_>, SendError> {
        let slot = self.reserve(len, Some(Deadline::after(Some(timeout))))?;
        Ok(WriteGrant { p: self, slot, len })
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
}

#[cfg(not(loom))]
impl<'a> WriteGrant<'a> {
    /// Commit and publish the message now.
    pub fn commit(self) {
        let p = self.commit_inner();
        p.flush();
    }

    /// Commit the message without publishing it: several deferred commits become
    /// visible together at the next [`Producer::flush`] (or send, or drop).
    pub fn commit_deferred(self) {
        self.commit_inner();
    }

    fn commit_inner(self) -> &'a mut Producer {
        // No Drop impl: an uncommitted grant is aborted by simply not moving the tail.
        let WriteGrant { p, slot, .. } = self;
        p.st.tail = slot.end;
        p.st.messages = p.st.messages.wrapping_add(1); // started from a peer-writable counter
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

impl Drop for Producer {
    fn drop(&mut self) {
        if matches!(self.sh.backing, crate::ring::layout::Backing::Gone) {
            return;
        }
        self.flush();
        self.sh.detach(role::PRODUCER_SLOT, role::CLOSED);
    }
}
