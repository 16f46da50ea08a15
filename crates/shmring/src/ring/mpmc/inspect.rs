//! An MPMC queue seen from outside: its counters and its party table, without joining
//! it (for `shmring ls`/`stat` and monitoring code).

use super::{MAX_PARTIES, PARTY_LOCK_BASE, QueueStats, ROLE_CONSUMER, ROLE_PRODUCER, Shared};
use crate::Result;
use crate::primitive::Ordering;
use crate::shm::{Segment, SegmentKind, SegmentOptions};

/// One entry of the party table in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartyReport {
    /// `"producer"`, `"consumer"`, or `"invalid"` (a value the table does not have).
    pub role: &'static str,
    /// The pid that attached (informational, written by that process).
    pub pid: u32,
    /// Whether some process holds the entry's liveness lock now.
    pub alive: bool,
}

/// What [`inspect`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueReport {
    /// The shared counters.
    pub stats: QueueStats,
    /// Messages in the queue now (an estimate while parties work).
    pub len: u64,
    /// The entries of the party table in use (dead parties included until someone's
    /// attach reuses their entry).
    pub parties: Vec<PartyReport>,
}

/// Open the queue segment `name` without joining it, and report its counters and
/// parties. The segment must be READY (no waiting) and is validated as for an open.
///
/// ```
/// use shmring::ring::mpmc::{self, Producer};
///
/// let name = format!("shmring-doc-mpmc-inspect-{}", std::process::id());
/// let mut tx = Producer::create(&name, 16, 64)?;
/// tx.push(b"job")?;
/// let r = mpmc::inspect(&name)?;
/// assert_eq!(r.len, 1);
/// assert_eq!(r.parties.len(), 1);
/// assert!(r.parties[0].alive);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inspect(name: &str) -> Result<QueueReport> {
    let opts = SegmentOptions::new().open_timeout(std::time::Duration::ZERO);
    let seg = Segment::open(name, SegmentKind::MpmcQueue, &opts)?;
    let sh = Shared::from_segment(seg)?;
    let stats = sh.stats();
    let mut parties = Vec::new();
    for idx in 0..MAX_PARTIES {
        let p = &sh.ctl().parties[idx];
        // Acquire: pairs with the Release stores of the role in attach/detach.
        let role = match p.role.load(Ordering::Acquire) {
            0 => continue,
            ROLE_PRODUCER => "producer",
            ROLE_CONSUMER => "consumer",
            _ => "invalid",
        };
        // Relaxed: informational.
        let pid = p.pid.load(Ordering::Relaxed);
        let alive = match &sh.seg {
            Some(seg) => {
                use rustix::fd::AsFd;
                crate::shm::liveness::slot_held_by_other(seg.as_fd(), PARTY_LOCK_BASE + idx as u32).unwrap_or(true)
            }
            None => true,
        };
        parties.push(PartyReport { role, pid, alive });
    }
    Ok(QueueReport {
        stats,
        len: sh.len() as u64,
        parties,
    })
}
