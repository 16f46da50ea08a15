//! A broadcast ring seen from outside: the publisher's position and each subscriber
//! slot's cursor, lag and liveness, without attaching (for `shmring ls`/`stat` and
//! monitoring code).

use super::layout::{role, slot};
use super::{Policy, Shared};
use crate::Result;
use crate::primitive::Ordering;
use crate::shm::{Segment, SegmentKind, SegmentOptions};

/// The state of the publisher role: the role word of an SPSC end, with the same values
/// ([`spsc::EndState`](crate::ring::spsc::EndState); [`PublisherReport::alive`] says
/// whether an attached publisher still holds its lock, and `Closed` lets a new
/// publisher attach).
pub use crate::ring::spsc::EndState as PublisherState;

/// The publisher of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherReport {
    /// The role state.
    pub state: PublisherState,
    /// Pid of the last publisher that attached (0 if none; informational).
    pub pid: u32,
    /// Whether some process holds the publisher's liveness lock now.
    pub alive: bool,
    /// How many publishers attached over the ring's life.
    pub attaches: u64,
}

/// One ACTIVE subscriber slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotReport {
    /// Its index in the table.
    pub slot: usize,
    /// Pid of its holder (informational).
    pub pid: u32,
    /// Whether its holder still holds the slot's liveness lock (false: it died, and a
    /// lossless publisher reclaims the slot on its next liveness check).
    pub alive: bool,
    /// Its stream position.
    pub cursor: u64,
    /// Bytes published that it has not read (`position - cursor`, 0 if ahead).
    pub lag_bytes: u64,
    /// Messages delivered to it.
    pub received: u64,
    /// Messages it missed (overwrite policy).
    pub missed: u64,
}

/// What [`inspect`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Bytes of the record area.
    pub capacity: u64,
    /// The subscriber limit.
    pub max_subscribers: usize,
    /// The policy.
    pub policy: Policy,
    /// Bytes ever published (the publisher's position).
    pub position: u64,
    /// The position of the oldest retained record.
    pub oldest: u64,
    /// Messages ever published.
    pub messages: u64,
    /// Times the lossless publisher waited for a slow subscriber.
    pub full_waits: u64,
    /// The publisher.
    pub publisher: PublisherReport,
    /// The ACTIVE subscriber slots, by index.
    pub subscribers: Vec<SlotReport>,
}

/// Open the broadcast segment `name` without attaching, and report the publisher and
/// the subscribers. The header and indices are validated as for an open.
///
/// ```
/// use shmring::broadcast::{self, Policy, Publisher, Subscriber};
/// let name = format!("shmring-doc-bcast-inspect-{}", std::process::id());
/// let mut tx = Publisher::create(&name, 4096, 8, Policy::Lossless)?;
/// let mut rx = Subscriber::open(&name)?;
/// tx.send(b"hello")?;
/// let r = broadcast::inspect(&name)?;
/// assert_eq!((r.messages, r.subscribers.len()), (1, 1));
/// assert!(r.subscribers[0].lag_bytes > 0 && r.publisher.alive);
/// rx.recv()?;
/// assert_eq!(broadcast::inspect(&name)?.subscribers[0].lag_bytes, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inspect(name: &str) -> Result<BroadcastReport> {
    let seg = Segment::open(name, SegmentKind::Broadcast, &SegmentOptions::default())?;
    report(&Shared::from_segment(seg)?)
}

/// [`inspect`] of a segment given as a descriptor.
pub fn inspect_fd(fd: rustix::fd::OwnedFd) -> Result<BroadcastReport> {
    let seg = Segment::from_fd(fd, SegmentKind::Broadcast, &SegmentOptions::default())?;
    report(&Shared::from_segment(seg)?)
}

fn report(sh: &Shared) -> Result<BroadcastReport> {
    let (position, oldest) = sh.indices().map_err(|what| crate::Error::Corrupted {
        name: sh.display_name().to_owned(),
        what: what.into(),
    })?;
    let c = sh.ctl();
    // Relaxed (all): independent values for display.
    let st = c.role.state.load(Ordering::Relaxed);
    let state = PublisherState::from_word(st);
    let publisher = PublisherReport {
        state,
        pid: c.role.pid.load(Ordering::Relaxed),
        alive: matches!(st, role::ATTACHED | role::HANDOFF) && sh.held_by_other(role::PUBLISHER_LOCK),
        attaches: c.role.attaches.load(Ordering::Relaxed),
    };
    let mut subscribers = Vec::new();
    for i in 0..sh.nsubs {
        let s = sh.sub(i);
        if slot::state(s.word.load(Ordering::Relaxed)) != slot::ACTIVE {
            continue;
        }
        let cursor = s.cursor.load(Ordering::Relaxed);
        subscribers.push(SlotReport {
            slot: i as usize,
            pid: s.pid.load(Ordering::Relaxed),
            alive: sh.held_by_other(role::SUB_LOCK_BASE + i),
            cursor,
            lag_bytes: position.saturating_sub(cursor),
            received: s.received.load(Ordering::Relaxed),
            missed: s.missed.load(Ordering::Relaxed),
        });
    }
    Ok(BroadcastReport {
        capacity: sh.cap,
        max_subscribers: sh.nsubs as usize,
        policy: sh.policy,
        position,
        oldest,
        messages: c.publ.messages.load(Ordering::Relaxed),
        full_waits: c.publ.full_waits.load(Ordering::Relaxed),
        publisher,
        subscribers,
    })
}
