//! Broadcast ring: one publisher, many subscribers, every subscriber sees every message.
//!
//! # Algorithm
//!
//! One byte ring of variable-size records (see [`record`]) in one segment, written by
//! one [`Publisher`] and read by up to N [`Subscriber`]s, each with its own cursor in a
//! table of N slots (N chosen at creation). It combines:
//!
//! - **Agrona's broadcast buffer** (`BroadcastTransmitter` / `BroadcastReceiver`): one
//!   writer publishes records by a Release store of `tail`; receivers poll `tail` and
//!   read records in place; before writing, the writer announces the end of what it is
//!   about to overwrite in `intent` (Agrona's *tail intent*), and a receiver that has
//!   copied a record re-reads `intent` after an Acquire fence: a record at position `p`
//!   is intact exactly while `intent <= p + capacity` (a seqlock over the whole ring,
//!   made per record by the positions).
//! - **The LMAX Disruptor**: a lossless writer may not pass the slowest consumer's
//!   sequence (here: the lowest cursor of a live subscriber), and each consumer owns
//!   its sequence on a cache line of its own.
//! - **tokio's broadcast channel**: a lapped receiver learns how many messages it lost
//!   (`RecvError::Lagged { missed }`) and resumes at the oldest retained message.
//!
//! Each record carries its ring position (`stamp`) and its message number (`seq`): the
//! stamp tells a record of the lap a subscriber expects from one of a later lap, the
//! sequence numbers count what a lapped subscriber missed (`missed + delivered ==
//! published` for every subscriber).
//!
//! ## Policies (chosen at creation)
//!
//! - [`Policy::Lossless`]: before overwriting, the publisher moves `oldest` (the oldest
//!   retained record) forward, but never past the cursor of a live subscriber; it
//!   waits (per its [`WaitStrategy`], with `try_` and `_timeout` forms) while one is
//!   behind. A subscriber that detaches frees its slot; one that died (its liveness lock
//!   released by the kernel) is reclaimed by the publisher on its next liveness check
//!   (every 50 ms while waiting), after which it no longer holds the publisher back.
//! - [`Policy::Overwrite`]: the publisher never waits: it moves `oldest` past whatever it
//!   is about to overwrite, stores `intent`, and writes. A subscriber finds it was lapped
//!   (its cursor fell more than a capacity behind `tail`, its record's stamp is of a
//!   later lap, or `intent` passed its record while it read it), moves to `oldest`, and
//!   reports `Lagged { missed }` computed from the sequence numbers. A record that is
//!   overwritten while it is read (copied, or read in place by [`Subscriber::read`]) is
//!   discarded, never delivered torn.
//!
//! ## Joining while the publisher writes (lossless)
//!
//! A subscriber joining at cursor `c` and a publisher moving `oldest` to `b` form a
//! store-load pair:
//!
//! ```text
//! subscriber                                publisher
//! slot.cursor = c; slot.word = ACTIVE  (1)  oldest = b (tentative)              (a)
//! fence(SeqCst)                        (2)  fence(SeqCst)                        (b)
//! o = oldest; if c < o: c = o, retry   (3)  m = min cursor of ACTIVE slots       (c)
//!                                           if m < b: oldest = boundary <= m     (d)
//! ```
//!
//! Either (c) sees the new slot, and the publisher does not pass `c`; or (3) sees `b`
//! (or a later value), and the subscriber moves its cursor to at least `b`. The
//! publisher only writes below `oldest + capacity` for the `oldest` it stored before
//! its last fence and scan.
//!
//! ## Waking
//!
//! Blocking subscribers sleep on one futex word (`data_wait`, a
//! [`WaitWord`](crate::sync::wait::WaitWord) whose `waiting` is a sleepers flag); the
//! publisher, after its Release store of `tail`, runs a light fence and loads the flag:
//! zero (nobody sleeps) costs no syscall, else it clears the flag with a swap and one
//! `futex_wake(all)` wakes every sleeper; the publishes that follow see zero until a
//! subscriber registers again, so a publish makes at most one wake syscall per sleep
//! episode. The store-load argument is the flag protocol of `sync/wait.rs`: the
//! sleeper's flag set and heavy fence before its re-check of `tail`, against the
//! publisher's `tail` store and light fence before its load of the flag, cannot both
//! miss. The lossless publisher sleeps on `space_wait` with the count protocol;
//! subscribers notify it after moving their cursors.
//!
//! # State tables
//!
//! The publisher role word (`layout::role`):
//!
//! | value | state    | meaning                                                 |
//! |-------|----------|---------------------------------------------------------|
//! | 0     | VACANT   | no publisher yet (subscribers wait, not `Disconnected`) |
//! | 1     | ATTACHED | held while lock slot 0 is held; dead if it is not       |
//! | 2     | CLOSED   | dropped; a new publisher may attach and continue        |
//! | 3     | HANDOFF  | descriptor in transit                                   |
//!
//! A subscriber slot word (`generation << 8 | state`, `layout::slot`): FREE (0) or
//! ACTIVE (1); the generation changes at every attach so that the publisher's reclaim
//! of a dead holder (a CAS from the word it saw) cannot clear a new holder.
//!
//! A record (see [`record`]): `len | type << 32` (MESSAGE 1, PADDING 2), `stamp = pos |
//! 1 << 63`, `seq`; a space of 8 or 16 bytes before the end of the ring is skipped.
//!
//! # Impossible states detected
//!
//! Every wait has an exit: a value the protocol cannot produce is `Corrupted`, never a
//! hang, never a read outside the mapping.
//!
//! - By a subscriber: `tail` not a multiple of 8, behind its cursor, or (lossless) more
//!   than a capacity ahead of it; `oldest` misaligned, past `tail` or more than a
//!   capacity behind it; a record whose stamp is not its position while `intent` says it
//!   was not overwritten; an unknown record type, a length above the message limit, a
//!   record crossing the end of the ring or the published `tail`, a padding record not
//!   ending at the end; a
//!   sequence number that is not the next one (lossless) or goes backwards (overwrite);
//!   a publisher role word outside the table; the segment resized under the mapping.
//! - By the publisher (on attach and while it works): `tail`, `oldest` or `intent` out
//!   of range; a record of its own between `oldest` and `tail` that no longer parses
//!   (walked when `oldest` moves); a subscriber slot in an unknown state (ignored: it
//!   holds nothing back) or with a cursor past `tail` (ignored) or behind `oldest`
//!   (holds at `oldest`).
//!
//! # Liveness
//!
//! The publisher holds lock slot 0, subscriber slot `i` holds lock slot `16 + i`
//! ([`crate::shm::liveness`]). A blocked subscriber wakes every 50 ms: a publisher that
//! closed or died is `Disconnected` once everything it published was read; a new
//! publisher on the same name (`Publisher::open`) continues the stream (sequence numbers
//! included) and the next receive returns its messages.
//!
//! # Typed forms
//!
//! [`TypedPublisher<T>`] and [`TypedSubscriber<T>`] (both the one generic [`Typed`]
//! handle) send and receive values of `T` over the [`codec`](crate::codec), encoded
//! straight into a claimed record; the segment records `T`'s shape at creation and
//! every typed open (`create`, `open`, `open_or_create`, `from_fd`) checks it. A typed
//! subscriber also receives in batches (`recv_batch`) and without decoding at once
//! (`recv_ref`, for a borrowed decode: in place in the lossless policy, see
//! [`ReadGrant`]).
//!
//! # Example
//!
//! ```
//! use shmring::broadcast::{Policy, Publisher, Subscriber};
//! let name = format!("doc-bcast-{}", std::process::id());
//! let mut tx = Publisher::create(&name, 1 << 16, 64, Policy::Lossless)?;
//! let mut a = Subscriber::open(&name)?; // usually in other processes
//! let mut b = Subscriber::open(&name)?;
//! tx.send(b"tick")?;
//! assert_eq!(a.recv()?, b"tick");
//! assert_eq!(b.recv()?, b"tick");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ends;
mod error;
#[cfg(not(loom))]
mod inspect;
pub(crate) mod layout;
mod publisher;
pub mod record;
mod shared;
mod subscriber;
#[cfg(all(test, not(loom)))]
mod tests;
#[cfg(not(loom))]
mod typed;
#[cfg(all(test, not(loom)))]
mod typed_tests;

pub use ends::BroadcastEnd;
pub use error::{RecvError, SendError};
#[cfg(not(loom))]
pub use inspect::{BroadcastReport, PublisherReport, PublisherState, SlotReport, inspect, inspect_fd};
pub use publisher::Publisher;
#[cfg(not(loom))]
pub use publisher::WriteGrant;
#[doc(hidden)]
pub use shared::Shared;
#[cfg(not(loom))]
pub use subscriber::ReadGrant;
pub use subscriber::Subscriber;
#[cfg(not(loom))]
pub use typed::{Typed, TypedPublisher, TypedRecvError, TypedSendError, TypedSubscriber, typed_channel};

use crate::shm::{Segment, SegmentKind, SegmentOptions};
use crate::sync::WaitStrategy;
use crate::{Error, Result};
#[cfg(not(loom))]
use layout::Backing;
use layout::{CONTROL_SIZE, Region, SLOT_SIZE};
#[cfg(loom)]
use layout::{Control, SubSlot};

/// Smallest ring capacity in bytes.
pub const MIN_CAPACITY: usize = 256;
/// Largest ring capacity in bytes (4 GiB): a record header holds a payload or padding
/// length in 32 bits, and no length in a ring of at most 4 GiB needs more.
pub const MAX_CAPACITY: usize = 1 << 32;
/// Largest subscriber limit of one ring.
pub const MAX_SUBSCRIBERS: usize = 4096;
/// The subscriber limit [`channel`] and the CLI use.
pub const DEFAULT_SUBSCRIBERS: usize = 64;

/// The largest message a ring of `capacity` bytes accepts: half the ring minus a
/// record header, so that a record and the padding before it always fit.
pub const fn max_message_len(capacity: usize) -> usize {
    capacity / 2 - record::HEADER_LEN as usize
}

/// What the publisher does when the ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Policy {
    /// Wait for the slowest live subscriber: every live subscriber gets every message.
    Lossless = 0,
    /// Never wait: overwrite the oldest records; a lapped subscriber gets
    /// [`RecvError::Lagged`].
    Overwrite = 1,
}

impl Policy {
    /// `lossless` or `overwrite`.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Lossless => "lossless",
            Policy::Overwrite => "overwrite",
        }
    }

    /// The policy named `lossless` or `overwrite`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "lossless" => Some(Policy::Lossless),
            "overwrite" => Some(Policy::Overwrite),
            _ => None,
        }
    }

    #[cfg_attr(loom, allow(dead_code))] // read from a segment header only
    fn from_u64(v: u64) -> Option<Self> {
        match v {
            0 => Some(Policy::Lossless),
            1 => Some(Policy::Overwrite),
            _ => None,
        }
    }
}

/// Where a new subscriber starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// At the next message published after it attached (the default).
    #[default]
    Newest,
    /// At the oldest message still in the ring.
    Oldest,
}

/// The creation parameters of a broadcast ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Bytes of the record area (rounded up to a power of two, at least
    /// [`MIN_CAPACITY`]).
    pub capacity: usize,
    /// The subscriber limit (1..=[`MAX_SUBSCRIBERS`]).
    pub subscribers: usize,
    /// What the publisher does when the ring is full.
    pub policy: Policy,
}

/// How an end is created or opened: the segment's options, the end's wait strategy,
/// and (subscribers) where it starts.
///
/// ```
/// use shmring::broadcast::{Options, Start};
/// use shmring::WaitStrategy;
/// let opts = Options::new().wait(WaitStrategy::Blocking).start(Start::Oldest);
/// assert_eq!((opts.wait, opts.start), (WaitStrategy::Blocking, Start::Oldest));
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// Mode, prefault, mlock, keep, open timeout, fences.
    pub segment: SegmentOptions,
    /// How this end waits.
    pub wait: WaitStrategy,
    /// Where a subscriber starts (ignored by the publisher).
    pub start: Start,
}

impl Options {
    /// The defaults: adaptive waits, start at the newest message, mode 0600.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the wait strategy.
    pub fn wait(mut self, w: WaitStrategy) -> Self {
        self.wait = w;
        self
    }
    /// Set where a subscriber starts.
    pub fn start(mut self, s: Start) -> Self {
        self.start = s;
        self
    }
    /// Set the segment options.
    pub fn segment(mut self, s: SegmentOptions) -> Self {
        self.segment = s;
        self
    }
}

/// The segment parameters and area size for `p`.
fn ring_params(p: &Params) -> Result<(usize, [u64; 8])> {
    if p.capacity > MAX_CAPACITY {
        return Err(Error::InvalidArgument(format!(
            "ring capacity {} exceeds {MAX_CAPACITY} bytes",
            p.capacity
        )));
    }
    if p.subscribers == 0 || p.subscribers > MAX_SUBSCRIBERS {
        return Err(Error::InvalidArgument(format!(
            "subscriber limit {} is not in 1..={MAX_SUBSCRIBERS}",
            p.subscribers
        )));
    }
    let cap = p.capacity.max(MIN_CAPACITY).next_power_of_two();
    let mut params = [0u64; 8];
    params[0] = cap as u64;
    params[1] = max_message_len(cap) as u64;
    params[2] = p.subscribers as u64;
    params[3] = p.policy as u64;
    Ok((CONTROL_SIZE + p.subscribers * SLOT_SIZE + cap, params))
}

fn create_named(name: &str, p: &Params, opts: &Options) -> Result<Shared> {
    let (area, params) = ring_params(p)?;
    let mut seg = Segment::create(name, SegmentKind::Broadcast, params, area, &opts.segment)?;
    seg.publish_ready();
    Shared::from_segment(seg)
}

fn open_named(name: &str, opts: &Options) -> Result<Shared> {
    Shared::from_segment(Segment::open(name, SegmentKind::Broadcast, &opts.segment)?)
}

fn open_fd(fd: rustix::fd::OwnedFd, opts: &Options) -> Result<Shared> {
    Shared::from_segment(Segment::from_fd(fd, SegmentKind::Broadcast, &opts.segment)?)
}

/// Create the named ring `name` with no end attached, and leave it in `/dev/shm`
/// (nobody's drop unlinks it): for tools such as `shmring create`, so that a publisher
/// and subscribers started later can all `open` it. Remove it with
/// [`shm::unlink`](crate::shm::unlink).
///
/// ```
/// use shmring::broadcast::{self, Options, Params, Policy, Publisher, Subscriber};
/// let name = format!("shmring-doc-bcast-detached-{}", std::process::id());
/// let params = Params { capacity: 4096, subscribers: 8, policy: Policy::Overwrite };
/// broadcast::create_detached(&name, params, &Options::new())?;
/// let mut rx = Subscriber::open(&name)?;
/// let mut tx = Publisher::open(&name)?;
/// tx.send(b"hi")?;
/// assert_eq!(rx.recv()?, b"hi");
/// shmring::shm::unlink(&name)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(not(loom))]
pub fn create_detached(name: &str, params: Params, opts: &Options) -> Result<()> {
    let (area, p) = ring_params(&params)?;
    let mut seg = Segment::create(name, SegmentKind::Broadcast, p, area, &opts.segment)?;
    seg.publish_ready();
    seg.keep();
    Shared::from_segment(seg).map(drop)
}

/// A publisher and one subscriber (starting at the oldest message) of a new anonymous
/// (memfd) ring; make more subscribers with [`Subscriber::try_clone`], hand ends to
/// other processes with `into_fd`.
///
/// ```
/// use shmring::broadcast::{self, Policy};
/// let (mut tx, mut rx) = broadcast::channel(4096, 8, Policy::Lossless)?;
/// let mut rx2 = rx.try_clone()?;
/// tx.send(b"both")?;
/// assert_eq!((rx.recv()?, rx2.recv()?), (b"both".to_vec(), b"both".to_vec()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(not(loom))]
pub fn channel(capacity: usize, subscribers: usize, policy: Policy) -> Result<(Publisher, Subscriber)> {
    channel_with(
        Params {
            capacity,
            subscribers,
            policy,
        },
        &Options::default(),
    )
}

/// [`channel`] with options.
#[cfg(not(loom))]
pub fn channel_with(params: Params, opts: &Options) -> Result<(Publisher, Subscriber)> {
    let (area, p) = ring_params(&params)?;
    let mut seg = Segment::anonymous(SegmentKind::Broadcast, p, area, &opts.segment)?;
    seg.publish_ready();
    let seg2 = seg.reopen()?;
    let publ = Publisher::attach(Shared::from_segment(seg)?, opts.wait)?;
    let sub = Subscriber::attach(Shared::from_segment(seg2)?, opts.wait, opts.start)?;
    Ok((publ, sub))
}

/// A publisher and one subscriber of a ring in heap memory, for threads of one process
/// (and tests).
#[cfg(not(loom))]
pub fn local_channel(params: Params, wait: WaitStrategy) -> Result<(Publisher, Subscriber)> {
    let (area, p) = ring_params(&params)?;
    let cap = p[0] as usize;
    let block = std::sync::Arc::new(crate::ring::spsc::layout::HeapBlock::new(area));
    let base = block.ptr();
    let table = params.subscribers * SLOT_SIZE;
    let make = |block: std::sync::Arc<crate::ring::spsc::layout::HeapBlock>| Shared {
        ctl: base.cast(),
        // SAFETY: the block holds `area` zeroed bytes, 128-aligned: the control block,
        // the table, then the region.
        subs: unsafe { base.add(CONTROL_SIZE).cast() },
        nsubs: params.subscribers as u32,
        // SAFETY: as above; the region is the block's last `cap` bytes.
        region: unsafe { Region::new(base.add(CONTROL_SIZE + table), cap) },
        backing: Backing::Heap(block),
        cap: cap as u64,
        max_msg: p[1],
        policy: params.policy,
        asym: false,
    };
    let publ = Publisher::attach(make(block.clone()), wait)?;
    let sub = Subscriber::attach(make(block), wait, Start::Oldest)?;
    Ok((publ, sub))
}

#[cfg(loom)]
#[doc(hidden)]
pub use crate::primitive::loom_break;

/// A publisher and `subscribers` subscribers (at the oldest message) of a ring for a
/// loom model: `capacity` bytes (a power of two, at least 64).
#[cfg(loom)]
pub fn loom_channel(
    capacity: usize,
    subscribers: usize,
    policy: Policy,
    wait: WaitStrategy,
) -> (Publisher, Vec<Subscriber>) {
    let ring = std::sync::Arc::new(layout::LoomRing {
        ctl: Control::new(),
        subs: (0..subscribers).map(|_| SubSlot::new()).collect(),
        region: Region::new_loom(capacity),
    });
    let publ = Publisher::attach(Shared::loom(ring.clone(), policy), wait).expect("fresh loom ring");
    let subs = (0..subscribers)
        .map(|_| Subscriber::attach(Shared::loom(ring.clone(), policy), wait, Start::Oldest).expect("free slot"))
        .collect();
    (publ, subs)
}
