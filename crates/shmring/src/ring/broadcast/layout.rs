//! The broadcast ring's shared layout: the control block, the subscriber table, the
//! record area, and what owns their memory.
//!
//! ```text
//!  area offset 0      PublisherLine   tail, intent, oldest, messages, full_waits  (128 B)
//!              128    data_wait       subscribers sleep here                      (128 B)
//!              256    space_wait      the lossless publisher sleeps here          (128 B)
//!              384    PublisherRole   state, pid, start time, attaches            (128 B)
//!              512    SubSlot x N     one 128-byte line per subscriber slot
//!    512 + 128 N      records         `capacity` bytes (a power of two)
//! ```

use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::shm::Segment;
use crate::sync::wait::WaitWord;

/// The publisher's hot line: written by the publisher only.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct PublisherLine {
    /// Bytes ever published (a multiple of 8, monotonic): every record below it is
    /// complete. Release-stored by the publisher; subscribers poll it with Acquire.
    pub tail: AtomicU64,
    /// The end of the furthest record the publisher has started to write (`tail <= intent <= tail + capacity`). A record at position `p` is intact
    /// while `intent <= p + capacity`.
    pub intent: AtomicU64,
    /// The position of the oldest retained record (a record boundary, `tail - capacity
    /// <= oldest <= tail`): where a subscriber starting at `Oldest`, or a lapped one,
    /// begins.
    pub oldest: AtomicU64,
    /// Messages ever published (the sequence number of the next message).
    pub messages: AtomicU64,
    /// Times the lossless publisher waited for a slow subscriber.
    pub full_waits: AtomicU64,
    /// The position of the last message record below `tail` (stored before `tail`):
    /// where a subscriber joining at `tail` reads the sequence number it continues
    /// from (Agrona's *latest record*).
    pub last: AtomicU64,
}

/// Who holds the publisher role.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct PublisherRole {
    /// See [`role`].
    pub state: AtomicU32,
    /// Pid of the last publisher that attached (informational).
    pub pid: AtomicU32,
    /// Its start time in clock ticks since boot (informational).
    pub start_time: AtomicU64,
    /// How many publishers attached so far (a restart counter, informational).
    pub attaches: AtomicU64,
}

/// Values of [`PublisherRole::state`].
///
/// | value | state    | meaning                                           | set by            |
/// |-------|----------|---------------------------------------------------|-------------------|
/// | 0     | VACANT   | no publisher attached yet                         | kernel (zeros)    |
/// | 1     | ATTACHED | held; liveness = lock slot 0 is held              | the attaching end |
/// | 2     | CLOSED   | dropped cleanly; a new publisher may attach       | the end, on drop  |
/// | 3     | HANDOFF  | descriptor in transit (lock held by it)           | `into_fd`         |
///
/// Any other value is `Corrupted`. A publisher that died leaves ATTACHED with its lock
/// released: subscribers report `Disconnected`, a new publisher may attach.
pub(crate) mod role {
    /// The values of the SPSC ring's role words, shared so that one
    /// [`EndState`](crate::ring::spsc::EndState) reads both.
    pub use crate::ring::spsc::layout::role::{ATTACHED, CLOSED, HANDOFF, VACANT};
    /// Liveness lock slot of the publisher.
    pub const PUBLISHER_LOCK: u32 = 0;
    /// Liveness lock slot of subscriber slot 0 (slot `i` uses `SUB_LOCK_BASE + i`).
    pub const SUB_LOCK_BASE: u32 = 16;
}

/// One subscriber slot, on a cache line of its own (written by its subscriber; read
/// by the publisher when it looks for the slowest one).
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct SubSlot {
    /// `generation << 8 | state` (see [`slot`]).
    pub word: AtomicU64,
    /// The subscriber's position: every record below it has been read (a record
    /// boundary). Release-stored by the subscriber after its reads.
    pub cursor: AtomicU64,
    /// Pid of the holder (informational).
    pub pid: AtomicU32,
    /// Unused, zero.
    pub _pad: AtomicU32,
    /// The holder's start time (informational).
    pub start_time: AtomicU64,
    /// Messages delivered to this slot's holder.
    pub received: AtomicU64,
    /// Messages this slot's holder missed (overwrite policy: lapped).
    pub missed: AtomicU64,
    /// Times the holder slept waiting for a message.
    pub empty_waits: AtomicU64,
}

/// States of a [`SubSlot`] (the low 8 bits of its word; the rest is a generation that
/// every attach increments, so that a reclaim of a dead holder's slot cannot clear a
/// new holder's registration).
///
/// | value | state  | meaning                                          | set by                        |
/// |-------|--------|--------------------------------------------------|-------------------------------|
/// | 0     | FREE   | nobody; the publisher ignores the slot           | kernel, detach, reclaim (CAS) |
/// | 1     | ACTIVE | held (its lock slot); the cursor holds back a    | the attaching subscriber      |
/// |       |        | lossless publisher while the holder lives        |                               |
///
/// Any other state is `Corrupted` to the publisher (which then ignores the slot's
/// cursor rather than wait on it: a corrupt slot cannot block the stream).
pub(crate) mod slot {
    pub const FREE: u64 = 0;
    pub const ACTIVE: u64 = 1;
    /// The state of a slot word.
    pub const fn state(word: u64) -> u64 {
        word & 0xff
    }
    /// The word of the next generation in `state`.
    pub const fn next(word: u64, state: u64) -> u64 {
        ((word >> 8).wrapping_add(1) << 8) | state
    }
    /// The same generation in `state`.
    pub const fn with_state(word: u64, state: u64) -> u64 {
        (word & !0xff) | state
    }
}

/// The control block at the start of the area.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    pub publ: PublisherLine,
    pub data_wait: WaitWord,
    pub space_wait: WaitWord,
    pub role: PublisherRole,
}

/// Size of the control block; the subscriber table follows it.
pub(crate) const CONTROL_SIZE: usize = 4 * 128;
/// Size of a subscriber slot.
pub(crate) const SLOT_SIZE: usize = 128;
const _: () = assert!(std::mem::size_of::<Control>() == CONTROL_SIZE);
const _: () = assert!(std::mem::align_of::<Control>() == 128);
const _: () = assert!(std::mem::size_of::<SubSlot>() == SLOT_SIZE);

#[cfg(loom)]
impl Control {
    pub(crate) fn new() -> Self {
        Control {
            publ: PublisherLine {
                tail: AtomicU64::new(0),
                intent: AtomicU64::new(0),
                oldest: AtomicU64::new(0),
                messages: AtomicU64::new(0),
                full_waits: AtomicU64::new(0),
                last: AtomicU64::new(0),
            },
            data_wait: WaitWord::new(),
            space_wait: WaitWord::new(),
            role: PublisherRole {
                state: AtomicU32::new(0),
                pid: AtomicU32::new(0),
                start_time: AtomicU64::new(0),
                attaches: AtomicU64::new(0),
            },
        }
    }
}

#[cfg(loom)]
impl SubSlot {
    pub(crate) fn new() -> Self {
        SubSlot {
            word: AtomicU64::new(0),
            cursor: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            _pad: AtomicU32::new(0),
            start_time: AtomicU64::new(0),
            received: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            empty_waits: AtomicU64::new(0),
        }
    }
}

/// The record area ([`crate::ring::region::Region`], shared with the SPSC ring), with
/// the broadcast ring's accessors below. In the overwrite policy a payload copy may race
/// with the publisher rewriting the bytes: the copy is then discarded (the intent check
/// after it), never delivered.
#[cfg(not(loom))]
pub(crate) use crate::ring::region::Region;

#[cfg(not(loom))]
impl Region {
    /// Load the three words of the record header at `off` (length/type, stamp,
    /// sequence number), with one bounds check for the three.
    #[inline]
    pub(crate) fn load_header(&self, off: u64) -> [u64; 3] {
        let w = self.header_words(off);
        // Relaxed (all three): ordered by the Acquire load of `tail` before it (and, in
        // the overwrite policy, validated by the intent check after it).
        [
            w[0].load(Ordering::Relaxed),
            w[1].load(Ordering::Relaxed),
            w[2].load(Ordering::Relaxed),
        ]
    }

    /// Store the three words of the record header at `off`, with one bounds check.
    #[inline]
    pub(crate) fn store_header(&self, off: u64, h: [u64; 3]) {
        let w = self.header_words(off);
        // Relaxed (all three): published by the Release store of `tail` (and, in the
        // overwrite policy, ordered after the intent store by the Release fence).
        w[0].store(h[0], Ordering::Relaxed);
        w[1].store(h[1], Ordering::Relaxed);
        w[2].store(h[2], Ordering::Relaxed);
    }

    /// The three header words at `off` (panics if `off` is not 8-aligned or the 24
    /// bytes are not in the region).
    #[inline]
    fn header_words(&self, off: u64) -> &[AtomicU64; 3] {
        assert!(off % 8 == 0, "record header offset out of bounds");
        let ptr = self.slice_ptr(off, super::record::HEADER_LEN as usize);
        // SAFETY: the 24 bytes at `ptr` are in the region (slice_ptr checked) and
        // 8-aligned (checked above; the region's base is 8-aligned by `Region::new`'s
        // contract); AtomicU64 is valid for any bit pattern; the memory outlives `&self`.
        unsafe { &*ptr.cast::<[AtomicU64; 3]>() }
    }

    /// Run `f` over the `len` bytes at `off`.
    #[inline]
    pub(crate) fn with_slice<R>(&self, off: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        let ptr = self.slice_ptr(off, len);
        // SAFETY: the bytes lie in the region (slice_ptr checked). In the lossless policy
        // no one writes them while a live subscriber's cursor is below them; in the
        // overwrite policy the publisher may rewrite them concurrently, which makes the
        // bytes garbage (never out of bounds), and the caller discards what `f` made of
        // them (the intent check).
        f(unsafe { std::slice::from_raw_parts(ptr, len) })
    }
}

/// Under loom the region is a vector of atomic words, read and written Relaxed: a
/// payload read not ordered after its write sees an older value (which the models'
/// content checks catch), and the overwrite policy's racing reads are modelled as the
/// races they are, without undefined behaviour in the model.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Region {
    pub(crate) words: std::sync::Arc<Vec<AtomicU64>>,
}

#[cfg(loom)]
impl Region {
    pub(crate) fn new_loom(len: usize) -> Self {
        Region {
            words: std::sync::Arc::new((0..len / 8).map(|_| AtomicU64::new(0)).collect()),
        }
    }
    pub(crate) fn load(&self, off: u64) -> u64 {
        // Relaxed: as outside loom.
        self.words[(off / 8) as usize].load(Ordering::Relaxed)
    }
    pub(crate) fn store(&self, off: u64, v: u64) {
        // Relaxed: as outside loom.
        self.words[(off / 8) as usize].store(v, Ordering::Relaxed)
    }
    pub(crate) fn load_header(&self, off: u64) -> [u64; 3] {
        [self.load(off), self.load(off + 8), self.load(off + 16)]
    }
    pub(crate) fn store_header(&self, off: u64, h: [u64; 3]) {
        self.store(off, h[0]);
        self.store(off + 8, h[1]);
        self.store(off + 16, h[2]);
    }
    pub(crate) fn copy_in(&self, off: u64, src: &[u8]) {
        for (i, chunk) in src.chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.store(off + 8 * i as u64, u64::from_le_bytes(b));
        }
    }
    pub(crate) fn with_slice<R>(&self, off: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        let mut v = Vec::with_capacity(len);
        let mut i = 0;
        while v.len() < len {
            let w = self.load(off + i).to_le_bytes();
            let take = (len - v.len()).min(8);
            v.extend_from_slice(&w[..take]);
            i += 8;
        }
        f(&v)
    }
}

/// What keeps the control block, the table and the region alive.
#[derive(Debug)]
pub(crate) enum Backing {
    /// A mapping of a shared segment.
    #[cfg_attr(loom, allow(dead_code))]
    Segment(Segment),
    /// Heap memory shared by threads of this process (held for ownership only).
    #[cfg(not(loom))]
    #[allow(dead_code)]
    Heap(std::sync::Arc<crate::ring::spsc::layout::HeapBlock>),
    /// A loom model's ring.
    #[cfg(loom)]
    #[allow(dead_code)]
    Loom(std::sync::Arc<LoomRing>),
    /// Handed off (`into_fd`): nothing is mapped any more.
    Gone,
}

crate::ring::backing::segment_backing!(Backing);

/// A loom model's ring.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct LoomRing {
    pub ctl: Control,
    pub subs: Vec<SubSlot>,
    pub region: Region,
}
