//! The MPMC queue's control block: the two positions, the wait words, the shared
//! counters, the party table and the parties' intent lines (and, under loom, the
//! model's queue of tracked slots).

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
    /// Move the position past `pos`, whose slot is already done with (found a lap
    /// ahead, or published), unless someone already did: only a position read stale or
    /// put back by a neighbour is ever still `pos` here. Never a claim (no intent).
    #[cold]
    pub(super) fn advance(&self, pos: u64) {
        // SeqCst: every write of a position is an RMW in the SeqCst order, so the
        // closed-queue check of a consumer (its SeqCst load of the enqueue position,
        // see `Consumer`'s `closed_and_drained`) reads the last one; and as an RMW it
        // continues the release sequence of the claims (see `Shared::intent_live`).
        // Failure means someone else moved it.
        let _ = self
            .pos
            .compare_exchange(pos, pos.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed);
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

/// A party's intent line: the position it is claiming or holds (enqueue positions for
/// a producer, dequeue positions for a consumer), or [`NO_INTENT`]. Written only by
/// its party, on a line of its own so that the store on every push and pop stays in
/// that party's cache; read by others only on their liveness tick (see the module
/// docs, "Claims and intents").
#[repr(C, align(128))]
#[derive(Debug)]
pub(super) struct IntentLine {
    pub(super) pos: AtomicU64,
}

/// The intent of a party that claims nothing (no position is ever this value: it
/// would take 2^64 claims).
pub(super) const NO_INTENT: u64 = u64::MAX;

/// One entry of the party table.
#[repr(C)]
#[derive(Debug)]
pub(super) struct Party {
    /// 0 free, 1 producer, 2 consumer.
    pub(super) role: AtomicU32,
    /// Bumped at every attach (14 bits used in sequence words).
    pub(super) generation: AtomicU32,
    pub(super) pid: AtomicU32,
    /// Unused in a segment; a loom model marks a party it "kills" here (1), which
    /// `Shared::party_alive` reads instead of a liveness lock.
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
    /// Party `i`'s intent line.
    pub(super) intents: [IntentLine; MAX_PARTIES],
}

pub(super) const CONTROL_SIZE: usize = 5 * 128 + MAX_PARTIES * 32 + MAX_PARTIES * 128;
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
            intents: std::array::from_fn(|_| IntentLine {
                pos: AtomicU64::new(NO_INTENT),
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
