//! Single-producer single-consumer byte ring over shared memory.
//!
//! The algorithm is Lamport's bounded SPSC queue with monotonic indices, in the form
//! of Agrona's `OneToOneRingBuffer` records (see [`crate::ring::record`]) and rtrb's
//! cached indices:
//!
//! - each record is published by a Release store of its one-word header, which holds
//!   its kind, its length and a *stamp* (a tag of its ring position); the consumer
//!   polls the header at its `head` with Acquire, so a waiting consumer watches the
//!   one cache line the next message arrives in. Records are 8-byte aligned: an 8-byte
//!   message takes 16 bytes, four to a 64-byte cache line (layout version 3; version 2
//!   had a 16-byte header and 16-byte alignment, two to a line, which halved the small
//!   messages carried by each cache-line transfer between the CPUs);
//! - `head` (bytes ever released) lives on a line only the consumer writes, `tail`
//!   (bytes ever published) on a line only the producer writes; both are `u64` and
//!   never wrap in practice (2^63 bytes). The producer keeps a private copy of `head`
//!   and re-reads the shared one only when the copy says full; the consumer reads `tail`
//!   only to cross-check it now and then;
//! - the producer can commit many records and publish `tail` and wake the consumer once
//!   (`send_deferred` + `flush`, `commit_deferred`); the consumer can read many records
//!   and release their space with one Release store of `head` (`try_drain`);
//! - a side that finds the ring full/empty waits per its [`WaitStrategy`] using the
//!   waiter protocol of [`crate::sync`]: the other side pays no syscall unless it sleeps.
//!
//! # Trust
//!
//! The segment is shared with a process that may be buggy or hostile. Every index and
//! record header read from it is checked ([`crate::ring::record::parse`], the stamps,
//! the index bounds) before use; a bad value is [`RecvError::Corrupted`] /
//! [`SendError::Corrupted`], never an out-of-bounds access.
//! Payload bytes a hostile producer rewrites after publishing are its business: they may
//! read as garbage, never out of bounds. A named segment cannot be sealed: a peer with
//! write access to `/dev/shm` can resize it under the mapping; that is contained
//! ([`crate::shm::sigbus`]: no SIGBUS, the mapping is detached) and reported as
//! `Corrupted` by the waits and by the `try_*` calls' periodic check (every 1024
//! `Full`/`Empty` results); a send or receive that completes at once may still do so
//! on the private zero pages that replaced the mapping, until the next call that finds
//! the ring full or empty. Anonymous segments are sealed against it.
//!
//! # Impossible states
//!
//! What each end detects, with what its call returns. Each check runs where the end
//! finds the ring full or empty (a wait's liveness tick, about every 50 ms, or every
//! 1024 `Full`/`Empty` results of the `try_*` calls) or where it reads the word anyway;
//! only one is on the path of a send that succeeds at once (the producer's look at
//! the stamp of the header slot it writes), none on that of a receive.
//!
//! - Consumer, [`RecvError::Corrupted`]: a record header that does not parse at the
//!   consumer's position (kind, length above the maximum or past the region, checked
//!   on every read); the producer's `tail` not a multiple of 8, moved backwards,
//!   more than a capacity past what the consumer released, or past the consumer's
//!   position while no record is stamped there (a record's stamp was overwritten); the
//!   shared `head` holding anything but what this consumer last released (only it
//!   writes `head`: a `head` moved back would leave the producer waiting for space the
//!   consumer already freed while the consumer waits for data, for ever); the
//!   producer gone and nothing stamped at the consumer's position while its final
//!   `tail` is past that position (records the consumer never found), or, for a
//!   producer that closed (it publishes everything first), behind it (the consumer
//!   took records the producer never wrote): a loss reported instead of a quiet
//!   `Disconnected`.
//! - Producer, [`SendError::Corrupted`]: the consumer's `head` not a multiple of 8,
//!   moved backwards, or past the producer's `tail` (checked at every re-read); a
//!   stamp in the header slot the producer is about to write (it cleared every slot
//!   ahead of its `tail` itself, and only it stores stamps: a forged record there may
//!   already have been taken by the consumer in place of the next message; checked on
//!   every send, one load of the line the send writes anyway); the shared `tail`
//!   holding anything but what this producer last published, or the record at the
//!   consumer's `head` without its stamp or with a header that does not parse (both
//!   checked on the liveness tick while it waits for space: the consumer cannot read
//!   past such a record, so it would never free the space).
//!
//! What no check can see: a neighbour that forges a record exactly as the producer
//! would (a stamp and a header at the consumer's position, between the producer's
//! check and its write), or rewrites a payload after it was published. Either is
//! taken for a message; a neighbour with write access can always do that much.
//! - Either end: a peer's role state that the role table does not have is judged by
//!   the peer's liveness lock alone, like ATTACHED, so it never hides a dead peer
//!   (`Disconnected`). So is VACANT once this end has seen the peer attached (the table
//!   never goes back to VACANT). A VACANT written before this end ever looked reads
//!   as a peer not attached yet: its wait goes on until the peer's own drop writes
//!   CLOSED, or the call's timeout (VACANT is the legal state before the peer attaches).
//!
//! # Liveness
//!
//! Each end holds a lock slot ([`crate::shm::liveness`]). A blocked end wakes every
//! 50 ms to check its peer: a peer killed with SIGKILL is reported as `Disconnected`
//! within about that time (after the consumer drained every message the dead producer
//! published). Hand an end to a child process with `into_fd` and rebuild it there
//! with `from_fd`.
//!
//! # Example
//!
//! ```
//! use shmring::ring::spsc::{Producer, Consumer};
//! let name = format!("doc-spsc-{}", std::process::id());
//! let mut tx = Producer::create(&name, 1 << 16)?;
//! let mut rx = Consumer::open(&name)?; // usually in another process
//! tx.send(b"tick")?;
//! let mut grant = tx.claim(3)?;         // zero-copy: write in place
//! grant.copy_from_slice(b"abc");
//! grant.commit();
//! assert_eq!(rx.recv()?, b"tick");
//! assert_eq!(&*rx.read()?, b"abc");    // zero-copy: read in place
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod consumer;
mod ends;
mod error;
#[cfg(not(loom))]
mod inspect;
#[cfg(not(loom))]
mod iter;
pub(crate) mod layout;
mod producer;

pub use consumer::Consumer;
#[cfg(not(loom))]
pub(crate) use consumer::Look as ReadLook;
#[cfg(not(loom))]
pub use consumer::ReadGrant;
pub use ends::SpscEnd;
pub use error::{RecvError, SendError};
#[cfg(not(loom))]
pub use inspect::{EndReport, EndState, RingReport, inspect, inspect_fd};
pub use producer::Producer;
#[cfg(not(loom))]
pub use producer::WriteGrant;

use super::record;
use crate::primitive::Ordering;
use crate::ring::backing::SegmentBacking;
use crate::shm::{Segment, SegmentKind, SegmentOptions};
use crate::sync::WaitStrategy;
use crate::{Error, Result};
#[cfg(not(loom))]
use layout::Region;
use layout::{Backing, CONTROL_SIZE, Control, RoleRecord, role};
use std::ptr::NonNull;

/// Smallest ring capacity in bytes.
pub const MIN_CAPACITY: usize = 128;
/// Largest ring capacity in bytes (2 GiB). A record header holds a payload length or
/// a padding length in 32 bits and a tag of its position that repeats every 4 GiB; a
/// ring of at most 2 GiB keeps every length below 2^32 and tells a record from one
/// two laps earlier. (Layout version 2 allowed 1 TiB and cut longer lengths to 32
/// bits.)
pub const MAX_CAPACITY: usize = 1 << 31;

/// The largest message a ring of `capacity` bytes accepts: half the ring minus 32
/// bytes, so that a message (its header, its payload padded to 8 bytes, and the next
/// record's header slot, which the producer clears before publishing) always fits in
/// an empty ring wherever the wrap falls. (The 32 bytes are two of the 16-byte headers
/// of layout version 2; the limit stayed when the header shrank to 8 bytes.)
pub const fn max_message_len(capacity: usize) -> usize {
    capacity / 2 - 32
}

/// Bits of a record header's tag: its ring position in units of 8 bytes, modulo 2^29.
const TAG_BITS: u32 = 29;

/// The header word that publishes a record of `kind` with a payload of `len` bytes at
/// ring position `pos` (see [`crate::ring::record`]): bit 63 set (so that a cleared,
/// zero, word never matches), the position's tag in bits 62..34, the kind in bits
/// 33..32, the length in bits 31..0.
#[inline]
pub(crate) const fn header(pos: u64, kind: u32, len: u32) -> u64 {
    tag(pos) << 34 | ((kind as u64 & 3) << 32) | len as u64
}

/// The top 30 bits of the header word of a record at `pos`: the set bit and the tag.
#[inline]
const fn tag(pos: u64) -> u64 {
    1 << TAG_BITS | ((pos >> 3) & ((1 << TAG_BITS) - 1))
}

/// Whether `word` is the header of a record published at ring position `pos`.
#[inline]
pub(crate) const fn published_at(word: u64, pos: u64) -> bool {
    word >> 34 == tag(pos)
}

/// The length/type word of a header (the form [`record::parse`] reads): the kind in
/// bits 33..32, the length in bits 31..0.
#[inline]
pub(crate) const fn len_type(word: u64) -> u64 {
    word & 0x3_ffff_ffff
}

/// How a ring is created or opened: the segment's options and the wait strategy of
/// this end.
///
/// ```
/// use shmring::{WaitStrategy, ring::spsc::RingOptions};
/// let opts = RingOptions::new().wait(WaitStrategy::Spin);
/// assert_eq!(opts.wait, WaitStrategy::Spin);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RingOptions {
    /// Mode, prefault, mlock, keep, open timeout, fences.
    pub segment: SegmentOptions,
    /// How this end waits when the ring is full (producer) or empty (consumer).
    pub wait: WaitStrategy,
}

impl RingOptions {
    /// The defaults: adaptive waits, mode 0600, unlink on drop.
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

/// Counters of a ring, read from its shared control block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingStats {
    /// Capacity in bytes.
    pub capacity: u64,
    /// Bytes ever published by the producer (records, headers and padding included).
    pub tail: u64,
    /// Bytes ever released by the consumer.
    pub head: u64,
    /// Messages ever published.
    pub sent: u64,
    /// Messages ever consumed.
    pub received: u64,
    /// Times the producer waited on a full ring.
    pub full_waits: u64,
    /// Times the consumer waited on an empty ring.
    pub empty_waits: u64,
}

/// What both ends hold: the control block, the region, and the memory's owner.
#[derive(Debug)]
#[doc(hidden)] // opaque: public only as the `Ring` of the end kinds
pub struct Shared {
    ctl: NonNull<Control>,
    #[cfg(not(loom))]
    region: Region,
    backing: Backing,
    cap: u64,
    max_msg: u64,
    asym: bool,
    /// Whether this end has seen its peer's role past VACANT (private: the role table
    /// never goes back to VACANT, so a VACANT seen after this is a neighbour's write).
    peer_seen: std::sync::atomic::AtomicBool,
}

// SAFETY: the control block and region are shared memory accessed through atomics and
// bounds-checked copies; the pointers stay valid as long as `backing` (owned) lives.
unsafe impl Send for Shared {}

impl Shared {
    #[inline]
    pub(crate) fn ctl(&self) -> &Control {
        // SAFETY: `ctl` points into memory owned by `backing`, which lives as long as
        // `self` (Drop impls stop touching it once it is `Gone`); Control is all
        // atomics, valid for any bit pattern.
        unsafe { self.ctl.as_ref() }
    }

    #[cfg(not(loom))]
    #[inline]
    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    #[cfg(loom)]
    #[inline]
    pub(crate) fn region(&self) -> &layout::Region {
        match &self.backing {
            Backing::Loom(r) => &r.region,
            _ => unreachable!("loom builds only have loom rings"),
        }
    }

    /// Whether the party in liveness slot `slot` (whose role record says ATTACHED or
    /// HANDOFF) still holds its lock. Always true for in-process rings.
    pub(crate) fn peer_alive(&self, slot: u32) -> bool {
        self.backing.lock_held_by_other(slot)
    }

    /// Whether a peer resized the segment under this mapping (see
    /// [`Segment::check_resized_every`](crate::shm::Segment::check_resized_every): an
    /// `fstat` at most every liveness interval): checked by the waits' `State` and
    /// `Liveness` polls, reported as `Corrupted`.
    pub(crate) fn poisoned(&self) -> bool {
        self.backing.resized()
    }

    /// Whether the peer whose role record is `rec` is gone: closed, or (when
    /// `check_liveness`) attached but no longer holding its lock slot. A state the
    /// role table does not have (a peer wrote it) is judged by the lock alone, like
    /// ATTACHED: it never hides a dead peer.
    pub(crate) fn peer_gone(&self, rec: &RoleRecord, slot: u32, check_liveness: bool) -> bool {
        // Acquire: pairs with the Release store of CLOSED in the peer's Drop, so that the
        // peer's last index store is visible to the re-check that follows.
        // Relaxed (peer_seen): private to this end.
        use std::sync::atomic::Ordering::Relaxed;
        match rec.state.load(Ordering::Acquire) {
            role::CLOSED => true,
            // Not attached yet, unless this end saw it attached before: then a
            // neighbour wrote VACANT back, and the lock alone tells.
            role::VACANT => check_liveness && self.peer_seen.load(Relaxed) && !self.peer_alive(slot),
            _ if check_liveness => {
                self.peer_seen.store(true, Relaxed);
                !self.peer_alive(slot)
            }
            _ => false,
        }
    }

    /// The segment's name (`None` if anonymous or in-process).
    pub(crate) fn name(&self) -> Option<&str> {
        self.backing.segment_name()
    }

    /// The segment's name, `<anonymous>`, or `<in-process>`.
    pub(crate) fn display_name(&self) -> &str {
        self.backing.display_name()
    }

    pub(crate) fn stats(&self) -> RingStats {
        let c = self.ctl();
        // Relaxed (all): independent counters for display.
        RingStats {
            capacity: self.cap,
            tail: c.prod.tail.load(Ordering::Relaxed),
            head: c.cons.head.load(Ordering::Relaxed),
            sent: c.prod.messages.load(Ordering::Relaxed),
            received: c.cons.messages.load(Ordering::Relaxed),
            full_waits: c.prod.full_waits.load(Ordering::Relaxed),
            empty_waits: c.cons.empty_waits.load(Ordering::Relaxed),
        }
    }

    /// Under loom the control block is made of loom atomics, which cannot live in a
    /// mapping: segment-backed rings are not modelled (use [`loom_channel`]).
    #[cfg(loom)]
    fn from_segment(seg: Segment) -> Result<Self> {
        Err(crate::ring::not_modelled(&seg))
    }

    /// Build on a mapped segment whose kind the caller checked; validates the ring's
    /// parameters and indices.
    #[cfg(not(loom))]
    fn from_segment(seg: Segment) -> Result<Self> {
        let info = *seg.info();
        let corrupted = Error::corruption_of(seg.display_name());
        let (cap, max_msg) = crate::ring::checked_capacity(&info.params, MIN_CAPACITY, MAX_CAPACITY, max_message_len)
            .map_err(&corrupted)?;
        if seg.area_len() as u64 != CONTROL_SIZE as u64 + cap {
            return Err(corrupted(format!(
                "area of {} bytes does not hold a {cap}-byte ring",
                seg.area_len()
            )));
        }
        let asym = seg.asymmetric_fences()?;
        let base = NonNull::new(seg.area_ptr()).expect("mapping is never null");
        // SAFETY: the area holds CONTROL_SIZE + cap bytes (checked above); the data
        // region starts CONTROL_SIZE bytes in (128-aligned), is `cap` bytes, and lives as
        // long as the segment, which `backing` owns.
        let region = unsafe { Region::new(base.add(CONTROL_SIZE), cap as usize) };
        let sh = Shared {
            ctl: base.cast(),
            region,
            backing: Backing::Segment(seg),
            cap,
            max_msg,
            asym,
            peer_seen: Default::default(),
        };
        sh.check_indices().map_err(|e| corrupted(e.into()))?;
        Ok(sh)
    }

    /// The shared indices as `(head, tail)`, if they are plausible: multiples of 8,
    /// below 2^63, and within a capacity of each other. (`head` may pass `tail`: the
    /// consumer reads records as soon as their stamps are stored, which can be before
    /// the producer publishes `tail` for a batch; the producer checks `head <= tail`
    /// itself when it attaches.)
    pub(crate) fn check_indices(&self) -> std::result::Result<(u64, u64), &'static str> {
        let c = self.ctl();
        // Acquire (both): pair with the Release stores of head and tail by the ends, so
        // that an end attaching later sees the records and space they cover.
        let head = c.cons.head.load(Ordering::Acquire);
        let tail = c.prod.tail.load(Ordering::Acquire);
        if head % record::ALIGN != 0 || tail % record::ALIGN != 0 {
            return Err("ring index is not a multiple of 8");
        }
        // Indices count bytes ever sent and never get near 2^63 (8 EiB); a larger one
        // would make index arithmetic overflow.
        if head >= 1 << 63 || tail >= 1 << 63 {
            return Err("ring index at or beyond 2^63");
        }
        if tail > head + self.cap || head > tail + self.cap {
            return Err("ring indices are more than a capacity apart");
        }
        Ok((head, tail))
    }

    /// Claim the role in `rec`/`slot` for this end (see the role table).
    fn attach_role(&self, slot: u32, handoff: bool, role_name: &'static str) -> Result<()> {
        let Backing::Segment(seg) = &self.backing else {
            return Ok(());
        };
        use rustix::fd::AsFd;
        let name = seg.display_name().to_owned();
        let fd = seg.as_fd();
        let held =
            crate::shm::liveness::try_lock_slot(fd, slot).map_err(|e| Error::io("fcntl(F_OFD_SETLK)", &name, e))?;
        if !held {
            return Err(Error::AlreadyAttached { name, role: role_name });
        }
        let rec = self.role(slot);
        // Acquire: pairs with the Release stores of the role state by earlier holders.
        let st = rec.state.load(Ordering::Acquire);
        let ok = match st {
            role::VACANT => true,
            role::HANDOFF => handoff,
            _ => false,
        };
        if !ok {
            crate::shm::liveness::unlock_slot(fd, slot);
            return Err(match st {
                role::HANDOFF => Error::AlreadyAttached { name, role: role_name },
                role::CLOSED | role::ATTACHED => Error::EndClosed { name, role: role_name },
                other => Error::Corrupted {
                    name,
                    what: format!("{role_name} role state {other}"),
                },
            });
        }
        let (pid, start) = crate::shm::liveness::self_identity();
        // Relaxed: informational, published by the Release store below.
        rec.pid.store(pid, Ordering::Relaxed);
        rec.start_time.store(start, Ordering::Relaxed);
        // Release: pairs with the Acquire loads in peer_gone/attach_role.
        if rec
            .state
            .compare_exchange(st, role::ATTACHED, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            crate::shm::liveness::unlock_slot(fd, slot);
            return Err(Error::AlreadyAttached { name, role: role_name });
        }
        Ok(())
    }

    /// Record ATTACHED for an end of an in-process ring.
    fn mark_attached(&self, slot: u32) {
        // Release: pairs with the Acquire load in peer_gone.
        self.role(slot).state.store(role::ATTACHED, Ordering::Release);
    }

    pub(crate) fn role(&self, slot: u32) -> &RoleRecord {
        let r = &self.ctl().roles;
        if slot == role::PRODUCER_SLOT {
            &r.producer
        } else {
            &r.consumer
        }
    }

    /// Mark this end closed (or handed off) and wake the peer.
    pub(crate) fn detach(&self, slot: u32, state: u32) {
        if matches!(self.backing, Backing::Gone) {
            return;
        }
        // Release: pairs with the Acquire load in peer_gone; orders this end's last
        // index store before the state change.
        self.role(slot).state.store(state, Ordering::Release);
        let w = if slot == role::PRODUCER_SLOT {
            &self.ctl().data_wait
        } else {
            &self.ctl().space_wait
        };
        w.wake_always();
    }

    /// Give up the mapping and return the descriptor (with its liveness lock).
    pub(crate) fn take_fd(&mut self) -> Option<rustix::fd::OwnedFd> {
        self.backing.take_fd()
    }
}

fn ring_params(capacity: usize) -> Result<(usize, [u64; 8])> {
    if capacity > MAX_CAPACITY {
        return Err(Error::InvalidArgument(format!(
            "ring capacity {capacity} exceeds {MAX_CAPACITY} bytes"
        )));
    }
    let cap = capacity.max(MIN_CAPACITY).next_power_of_two();
    let mut params = [0u64; 8];
    params[0] = cap as u64;
    params[1] = max_message_len(cap) as u64;
    Ok((cap, params))
}

/// Which end is being built.
#[derive(Clone, Copy)]
enum Side {
    Producer,
    Consumer,
}

impl Side {
    fn slot(self) -> u32 {
        match self {
            Side::Producer => role::PRODUCER_SLOT,
            Side::Consumer => role::CONSUMER_SLOT,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Side::Producer => "producer",
            Side::Consumer => "consumer",
        }
    }
}

fn create_named(name: &str, capacity: usize, opts: &RingOptions, side: Side) -> Result<Shared> {
    let (cap, params) = ring_params(capacity)?;
    let mut seg = Segment::create(name, SegmentKind::SpscRing, params, CONTROL_SIZE + cap, &opts.segment)?;
    seg.publish_ready();
    let sh = Shared::from_segment(seg)?;
    sh.attach_role(side.slot(), false, side.name())?;
    Ok(sh)
}

/// Create the named ring `name` of at least `capacity` bytes with neither end
/// attached, and leave it in `/dev/shm` (it is not unlinked by anyone's drop): for
/// tools such as `shmring create`, so that a producer and a consumer started later can
/// both [`Producer::open`] / [`Consumer::open`] it. Remove it with
/// [`shm::unlink`](crate::shm::unlink).
///
/// ```
/// use shmring::ring::spsc::{self, Consumer, Producer, RingOptions};
///
/// let name = format!("shmring-doc-detached-{}", std::process::id());
/// spsc::create_detached(&name, 4096, &RingOptions::new())?;
/// let mut tx = Producer::open(&name)?;
/// let mut rx = Consumer::open(&name)?;
/// tx.send(b"hi")?;
/// assert_eq!(rx.recv()?, b"hi");
/// shmring::shm::unlink(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_detached(name: &str, capacity: usize, opts: &RingOptions) -> Result<()> {
    let (cap, params) = ring_params(capacity)?;
    let mut seg = Segment::create(name, SegmentKind::SpscRing, params, CONTROL_SIZE + cap, &opts.segment)?;
    seg.publish_ready();
    seg.keep();
    // Validate what was written, as an opener will.
    Shared::from_segment(seg).map(drop)
}

fn open_named(name: &str, opts: &RingOptions, side: Side) -> Result<Shared> {
    let seg = Segment::open(name, SegmentKind::SpscRing, &opts.segment)?;
    let sh = Shared::from_segment(seg)?;
    sh.attach_role(side.slot(), false, side.name())?;
    Ok(sh)
}

fn from_fd(fd: rustix::fd::OwnedFd, opts: &RingOptions, side: Side) -> Result<Shared> {
    let seg = Segment::from_fd(fd, SegmentKind::SpscRing, &opts.segment)?;
    let sh = Shared::from_segment(seg)?;
    sh.attach_role(side.slot(), true, side.name())?;
    Ok(sh)
}

/// Both ends of a ring of at least `capacity` bytes in an anonymous (memfd) segment.
/// Each end maps it through its own open file description; hand one to a child with
/// `into_fd`.
pub fn channel(capacity: usize) -> Result<(Producer, Consumer)> {
    channel_with(capacity, &RingOptions::default())
}

/// [`channel`] with options.
pub fn channel_with(capacity: usize, opts: &RingOptions) -> Result<(Producer, Consumer)> {
    let (cap, params) = ring_params(capacity)?;
    let mut seg = Segment::anonymous(SegmentKind::SpscRing, params, CONTROL_SIZE + cap, &opts.segment)?;
    seg.publish_ready();
    let seg2 = seg.reopen()?;
    let p = Shared::from_segment(seg)?;
    p.attach_role(role::PRODUCER_SLOT, false, "producer")?;
    let c = Shared::from_segment(seg2)?;
    c.attach_role(role::CONSUMER_SLOT, false, "consumer")?;
    Ok((Producer::new(p, opts.wait)?, Consumer::new(c, opts.wait)))
}

/// Both ends of a ring in heap memory, for threads of one process (and for tests and
/// miri, which cannot map shared memory).
#[cfg(not(loom))]
pub fn local_channel(capacity: usize, wait: WaitStrategy) -> Result<(Producer, Consumer)> {
    let (cap, _) = ring_params(capacity)?;
    let block = std::sync::Arc::new(layout::HeapBlock::new(CONTROL_SIZE + cap));
    let make = |block: std::sync::Arc<layout::HeapBlock>| {
        let base = block.ptr();
        // SAFETY: the block holds CONTROL_SIZE + cap zeroed bytes, 128-aligned, owned by
        // the Arc stored next to the region.
        let region = unsafe { Region::new(base.add(CONTROL_SIZE), cap) };
        Shared {
            ctl: base.cast(),
            region,
            backing: Backing::Heap(block),
            cap: cap as u64,
            max_msg: max_message_len(cap) as u64,
            asym: false,
            peer_seen: Default::default(),
        }
    };
    let p = make(block.clone());
    let c = make(block);
    p.mark_attached(role::PRODUCER_SLOT);
    c.mark_attached(role::CONSUMER_SLOT);
    Ok((Producer::new(p, wait)?, Consumer::new(c, wait)))
}

#[cfg(loom)]
#[doc(hidden)]
pub use crate::primitive::loom_break;

/// Both ends of a ring for a loom model.
#[cfg(loom)]
pub fn loom_channel(capacity: usize, wait: WaitStrategy) -> (Producer, Consumer) {
    use layout::{LoomRing, Region};
    let ring = std::sync::Arc::new(LoomRing {
        ctl: Control::new(),
        region: Region::new_loom(capacity),
    });
    let make = |ring: std::sync::Arc<LoomRing>| Shared {
        ctl: NonNull::from(&ring.ctl),
        backing: Backing::Loom(ring),
        cap: capacity as u64,
        max_msg: max_message_len(capacity) as u64,
        asym: false,
        peer_seen: Default::default(),
    };
    let p = make(ring.clone());
    let c = make(ring);
    p.mark_attached(role::PRODUCER_SLOT);
    c.mark_attached(role::CONSUMER_SLOT);
    (
        Producer::new(p, wait).expect("a fresh loom ring has valid indices"),
        Consumer::new(c, wait),
    )
}
