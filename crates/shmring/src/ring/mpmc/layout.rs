//! The MPMC queue's control block: the two positions, the wait words, the shared
//! counters and the party table (and, under loom, the model's queue of tracked slots).

#[cfg(loom)]
use super::LOOM_SLOT_SIZE;
use super::MAX_PARTIES;
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::sync::wait::WaitWord;

#[repr(C, align(128))]
#[derive(Debug)]
pub(super) struct PosLine {
    pub(super) pos: AtomicU64,
}

impl PosLine {
    /// Move the position past `pos` unless someone (its claimer or a helper) already did.
    #[inline]
    pub(super) fn advance(&self, pos: u64) {
        // Relaxed: positions are hints; the slots' sequence words synchronize. Failure
        // means someone else advanced it.
        let _ = self
            .pos
            .compare_exchange(pos, pos.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed);
    }
}

#[repr(C, align(128))]
#[derive(Debug)]
pub(super) struct StateLine {
    /// 1 once the queue is closed.
    pub(super) closed: AtomicU32,
    pub(super) reserved: AtomicU32,
    pub(super) lost: AtomicU64,
    pub(super) full_waits: AtomicU64,
    pub(super) empty_waits: AtomicU64,
}

/// One entry of the party table.
#[repr(C)]
#[derive(Debug)]
pub(super) struct Party {
    /// 0 free, 1 producer, 2 consumer.
    pub(super) role: AtomicU32,
    /// Bumped at every attach (14 bits used in sequence words).
    pub(super) generation: AtomicU32,
    pub(super) pid: AtomicU32,
    pub(super) reserved: AtomicU32,
    pub(super) start_time: AtomicU64,
    pub(super) reserved2: AtomicU64,
}

/// The control block at the start of the queue's area.
#[repr(C)]
#[derive(Debug)]
pub(super) struct Control {
    pub(super) enq: PosLine,
    pub(super) deq: PosLine,
    /// Consumers sleep here for messages; producers wake one per publish.
    pub(super) not_empty: WaitWord,
    /// Producers sleep here for free slots; consumers wake one per release.
    pub(super) not_full: WaitWord,
    pub(super) state: StateLine,
    pub(super) parties: [Party; MAX_PARTIES],
}

pub(super) const CONTROL_SIZE: usize = 5 * 128 + MAX_PARTIES * 32;
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Control>() == CONTROL_SIZE);
const _: () = assert!(CONTROL_SIZE % 128 == 0);

#[cfg(loom)]
impl Control {
    pub(super) fn new() -> Self {
        let word = || WaitWord {
            waiting: AtomicU32::new(0),
            seq: AtomicU32::new(0),
            cpu: AtomicU32::new(0),
        };
        Control {
            enq: PosLine { pos: AtomicU64::new(0) },
            deq: PosLine { pos: AtomicU64::new(0) },
            not_empty: word(),
            not_full: word(),
            state: StateLine {
                closed: AtomicU32::new(0),
                reserved: AtomicU32::new(0),
                lost: AtomicU64::new(0),
                full_waits: AtomicU64::new(0),
                empty_waits: AtomicU64::new(0),
            },
            parties: std::array::from_fn(|_| Party {
                role: AtomicU32::new(0),
                generation: AtomicU32::new(0),
                pid: AtomicU32::new(0),
                reserved: AtomicU32::new(0),
                start_time: AtomicU64::new(0),
                reserved2: AtomicU64::new(0),
            }),
        }
    }
}

/// A loom model's queue: a control block of loom atomics and slots whose payloads are
/// tracked cells, so a payload read not ordered after its write is reported.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct LoomQueue {
    pub(super) ctl: Control,
    pub(super) slots: Vec<LoomSlot>,
}

#[cfg(loom)]
#[derive(Debug)]
pub(super) struct LoomSlot {
    pub(super) seq: AtomicU64,
    pub(super) len: AtomicU64,
    pub(super) payload: loom::cell::UnsafeCell<[u8; LOOM_SLOT_SIZE]>,
}
