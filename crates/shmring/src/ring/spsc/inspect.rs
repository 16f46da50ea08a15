//! An SPSC ring seen from outside: its counters and who holds each end, without
//! attaching to either end (for `shmring ls`/`stat` and monitoring code).

use super::layout::role;
use super::{RingStats, Shared};
use crate::Result;
use crate::primitive::Ordering;
use crate::shm::{Segment, SegmentKind, SegmentOptions};

/// The state of one end's role record: of an SPSC ring's producer or consumer, and of
/// a broadcast ring's publisher (the same word values in both rings; the broadcast ring
/// names it [`PublisherState`](crate::broadcast::PublisherState)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndState {
    /// Nobody attached yet.
    Vacant,
    /// Attached; `alive` says whether its holder still holds the liveness lock.
    Attached,
    /// Dropped cleanly (final for an SPSC end; a new broadcast publisher may attach).
    Closed,
    /// Its descriptor is in transit to another process (inherited or sent).
    Handoff,
    /// A value the role table does not have (a corrupt peer).
    Invalid(u32),
}

impl EndState {
    /// The state a role word holds (VACANT 0, ATTACHED 1, CLOSED 2, HANDOFF 3 in both
    /// rings' role tables; anything else is `Invalid`).
    pub(crate) fn from_word(w: u32) -> Self {
        match w {
            role::VACANT => EndState::Vacant,
            role::ATTACHED => EndState::Attached,
            role::CLOSED => EndState::Closed,
            role::HANDOFF => EndState::Handoff,
            other => EndState::Invalid(other),
        }
    }
}

/// One end of the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndReport {
    /// The role record's state.
    pub state: EndState,
    /// The pid of the last process that attached to this end (0 if none; informational,
    /// written by that process).
    pub pid: u32,
    /// Whether some process holds this end's liveness lock now (the kernel releases it
    /// when the holder exits or is killed). False for vacant and closed ends.
    pub alive: bool,
}

/// What [`inspect`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingReport {
    /// The shared counters.
    pub stats: RingStats,
    /// Bytes published and not yet released (records, headers and padding included).
    pub used: u64,
    /// The producer end.
    pub producer: EndReport,
    /// The consumer end.
    pub consumer: EndReport,
}

/// Open the ring segment `name` without attaching to an end, and report its counters
/// and ends. The segment must be READY (no waiting); its header and indices are
/// validated as for an open.
///
/// ```
/// use shmring::ring::spsc::{self, Producer};
///
/// let name = format!("shmring-doc-spsc-inspect-{}", std::process::id());
/// let mut tx = Producer::create(&name, 4096)?;
/// tx.send(b"hello")?;
/// let r = spsc::inspect(&name)?;
/// assert_eq!(r.stats.sent, 1);
/// assert!(r.producer.alive && !r.consumer.alive);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inspect(name: &str) -> Result<RingReport> {
    let opts = SegmentOptions::new().open_timeout(std::time::Duration::ZERO);
    report(Segment::open(name, SegmentKind::SpscRing, &opts)?)
}

/// [`inspect`] of a ring received as a descriptor (for the fuzz target: a hostile
/// image must give a report or an error, never a panic).
#[doc(hidden)]
pub fn inspect_fd(fd: rustix::fd::OwnedFd) -> Result<RingReport> {
    let opts = SegmentOptions::new().open_timeout(std::time::Duration::ZERO);
    report(Segment::from_fd(fd, SegmentKind::SpscRing, &opts)?)
}

fn report(seg: Segment) -> Result<RingReport> {
    let sh = Shared::from_segment(seg)?;
    let stats = sh.stats();
    let end = |slot: u32| {
        let rec = sh.role(slot);
        // Acquire: pairs with the Release stores of the state in attach_role/detach.
        let st = rec.state.load(Ordering::Acquire);
        // Relaxed: informational.
        let pid = rec.pid.load(Ordering::Relaxed);
        let state = EndState::from_word(st);
        let alive = matches!(state, EndState::Attached | EndState::Handoff) && sh.peer_alive(slot);
        EndReport { state, pid, alive }
    };
    Ok(RingReport {
        stats,
        used: stats.tail.saturating_sub(stats.head).min(stats.capacity),
        producer: end(role::PRODUCER_SLOT),
        consumer: end(role::CONSUMER_SLOT),
    })
}
