//! The SPSC ring's control block and data region, and what owns their memory.

use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::shm::Segment;
use crate::sync::wait::WaitWord;
#[cfg(not(loom))]
use std::ptr::NonNull;

/// Producer-written hot line.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct ProducerLine {
    /// Bytes ever published (monotonic; a multiple of 8). Written by the producer only.
    pub tail: AtomicU64,
    /// Messages ever published.
    pub messages: AtomicU64,
    /// Times the producer waited on a full ring.
    pub full_waits: AtomicU64,
}

/// Consumer-written hot line.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct ConsumerLine {
    /// Bytes ever released (monotonic; a multiple of 8; `head <= tail <= head + cap`).
    pub head: AtomicU64,
    /// Messages ever consumed.
    pub messages: AtomicU64,
    /// Times the consumer waited on an empty ring.
    pub empty_waits: AtomicU64,
}

/// Who holds one end.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RoleRecord {
    /// See [`role`].
    pub state: AtomicU32,
    /// Pid of the last party that attached (informational).
    pub pid: AtomicU32,
    /// Its start time in clock ticks since boot (informational).
    pub start_time: AtomicU64,
}

/// Values of [`RoleRecord::state`].
///
/// | value | state    | meaning                                         | set by            |
/// |-------|----------|-------------------------------------------------|-------------------|
/// | 0     | VACANT   | nobody attached yet                             | kernel (zeros)    |
/// | 1     | ATTACHED | held; liveness = its slot lock is held          | the attaching end |
/// | 2     | CLOSED   | dropped cleanly; final                          | the end, on drop  |
/// | 3     | HANDOFF  | descriptor in transit to another process (lock  | `into_fd`         |
/// |       |          | still held by the descriptor's description)     |                   |
pub(crate) mod role {
    pub const VACANT: u32 = 0;
    pub const ATTACHED: u32 = 1;
    pub const CLOSED: u32 = 2;
    pub const HANDOFF: u32 = 3;
    /// Liveness slot of the producer.
    pub const PRODUCER_SLOT: u32 = 0;
    /// Liveness slot of the consumer.
    pub const CONSUMER_SLOT: u32 = 1;
}

/// The two role records, on a line that is written only at attach and detach.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Roles {
    pub producer: RoleRecord,
    pub consumer: RoleRecord,
}

/// The control block at the start of the ring's area. Each side writes its own lines.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    pub prod: ProducerLine,
    pub cons: ConsumerLine,
    /// The consumer sleeps here for data; the producer notifies after publishing.
    pub data_wait: WaitWord,
    /// The producer sleeps here for space; the consumer notifies after releasing.
    pub space_wait: WaitWord,
    pub roles: Roles,
}

/// Size of the control block; the data region follows it.
pub(crate) const CONTROL_SIZE: usize = 5 * 128;
const _: () = assert!(std::mem::size_of::<Control>() == CONTROL_SIZE);
const _: () = assert!(std::mem::align_of::<Control>() == 128);

impl Control {
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        let role = || RoleRecord {
            state: AtomicU32::new(0),
            pid: AtomicU32::new(0),
            start_time: AtomicU64::new(0),
        };
        Control {
            prod: ProducerLine {
                tail: AtomicU64::new(0),
                messages: AtomicU64::new(0),
                full_waits: AtomicU64::new(0),
            },
            cons: ConsumerLine {
                head: AtomicU64::new(0),
                messages: AtomicU64::new(0),
                empty_waits: AtomicU64::new(0),
            },
            data_wait: WaitWord::new(),
            space_wait: WaitWord::new(),
            roles: Roles {
                producer: role(),
                consumer: role(),
            },
        }
    }
}

/// The ring's bytes ([`crate::ring::region::Region`], shared with the broadcast ring),
/// with the SPSC ring's header accessors below.
#[cfg(not(loom))]
pub(crate) use crate::ring::region::Region;

#[cfg(not(loom))]
impl Region {
    /// Load the header word of the record at `off` (its stamp, kind and length).
    #[inline]
    pub(crate) fn load_stamp(&self, off: u64) -> u64 {
        // Acquire: pairs with the Release store in store_stamp, so the payload written
        // before it is visible once the stamp matches.
        self.word(off).load(Ordering::Acquire)
    }

    /// Whether the header slot at `off` is clear (zero), as the producer, the only
    /// writer of headers, left every slot ahead of its `tail`.
    #[inline]
    pub(crate) fn slot_is_clear(&self, off: u64) -> bool {
        // Relaxed: only the producer stores headers; it reads its own last store unless
        // another process wrote the word.
        self.word(off).load(Ordering::Relaxed) == 0
    }

    /// Clear (zero) the `len` bytes at `off` (`off` and `len` multiples of 8): header
    /// slots ahead of the producer's tail, a record not there yet. One bounds check, then
    /// a tight loop of 64-bit stores: a bounds-checked call per word cost more
    /// instructions than a whole 64-byte send, and a `memset` (glibc's string stores)
    /// made the round trip ~30 ns slower at p50 (the cleared lines are written again at
    /// once, by the records).
    #[inline]
    pub(crate) fn clear_range(&self, off: u64, len: u64) {
        assert!(off % 8 == 0 && len % 8 == 0, "header slots are 8-aligned");
        let ptr = self.slice_ptr(off, len as usize);
        // SAFETY: the `len` bytes at `ptr` are in the region (slice_ptr checked the
        // bounds) and 8-aligned (`off` is, and so is the region's base), so they are
        // `len / 8` valid `AtomicU64`s, valid for any bit pattern, for as long as `self`.
        let words = unsafe { std::slice::from_raw_parts(ptr.cast::<AtomicU64>().cast_const(), (len / 8) as usize) };
        for w in words {
            // Relaxed: ordered before the Release store_stamp of the record that lets
            // the consumer reach these slots.
            w.store(0, Ordering::Relaxed);
        }
    }

    /// Publish the record at `off` by storing its header word.
    #[inline]
    pub(crate) fn store_stamp(&self, off: u64, word: u64) {
        // Release: pairs with the Acquire load in load_stamp.
        self.word(off).store(word, Ordering::Release)
    }
}

/// Under loom the region is a vector of tracked cells, one per 8-byte word, so that a
/// payload read that is not ordered after its write is reported as a causality error.
/// Header words live in a parallel vector of loom atomics (one per word): in real
/// memory a header word is payload in other laps, but the producer clears every header
/// slot before the consumer can reach it, so a stale word can no more match in the
/// model than in the mapping.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Region {
    words: std::sync::Arc<Vec<loom::cell::UnsafeCell<u64>>>,
    stamps: std::sync::Arc<Vec<AtomicU64>>,
}

#[cfg(loom)]
impl Region {
    pub(crate) fn new_loom(len: usize) -> Self {
        Region {
            words: std::sync::Arc::new((0..len / 8).map(|_| loom::cell::UnsafeCell::new(0)).collect()),
            stamps: std::sync::Arc::new((0..len / 8).map(|_| AtomicU64::new(0)).collect()),
        }
    }
    pub(crate) fn load_stamp(&self, off: u64) -> u64 {
        // Acquire: pairs with the Release store in store_stamp.
        self.stamps[(off / 8) as usize].load(Ordering::Acquire)
    }
    pub(crate) fn slot_is_clear(&self, off: u64) -> bool {
        // Relaxed: only the producer stores headers (it reads its own last store).
        self.stamps[(off / 8) as usize].load(Ordering::Relaxed) == 0
    }
    pub(crate) fn clear_range(&self, off: u64, len: u64) {
        for w in &self.stamps[(off / 8) as usize..((off + len) / 8) as usize] {
            // Relaxed: ordered before the Release store_stamp of the preceding record.
            w.store(0, Ordering::Relaxed)
        }
    }
    pub(crate) fn store_stamp(&self, off: u64, value: u64) {
        // Release: pairs with the Acquire load in load_stamp. A loom test may plant a
        // Relaxed store here to prove the model catches it.
        let order = crate::primitive::loom_break::weaken(
            crate::primitive::loom_break::LoomBreak::StampPublishRelaxed,
            Ordering::Release,
        );
        self.stamps[(off / 8) as usize].store(value, order)
    }
    pub(crate) fn copy_in(&self, off: u64, src: &[u8]) {
        for (i, b) in src.iter().enumerate() {
            let at = off as usize + i;
            // SAFETY: loom checks that no other access races with the write.
            self.words[at / 8].with_mut(|p| unsafe {
                let mut bytes = (*p).to_le_bytes();
                bytes[at % 8] = *b;
                *p = u64::from_le_bytes(bytes);
            });
        }
    }
    pub(crate) fn copy_out(&self, off: u64, dst: &mut [u8]) {
        for (i, b) in dst.iter_mut().enumerate() {
            let at = off as usize + i;
            // SAFETY: loom checks that no write races with the read.
            *b = self.words[at / 8].with(|p| unsafe { (*p).to_le_bytes()[at % 8] });
        }
    }
}

/// What keeps the control block and region alive.
#[derive(Debug)]
pub(crate) enum Backing {
    /// A mapping of a shared segment (never built under loom).
    #[cfg_attr(loom, allow(dead_code))]
    Segment(Segment),
    /// Heap memory shared by two threads of this process (held for ownership only).
    #[cfg(not(loom))]
    #[allow(dead_code)]
    Heap(std::sync::Arc<HeapBlock>),
    /// A loom model's ring.
    #[cfg(loom)]
    Loom(std::sync::Arc<LoomRing>),
    /// Handed off (`into_fd`): nothing is mapped any more.
    Gone,
}

crate::ring::backing::segment_backing!(Backing);

/// A zeroed, 128-byte-aligned heap allocation holding a control block and a region.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct HeapBlock {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
}

#[cfg(not(loom))]
// SAFETY: the block is plain memory accessed only through atomics and bounds-checked
// copies ordered by the ring's protocol; sharing it between threads is the point.
unsafe impl Send for HeapBlock {}
#[cfg(not(loom))]
// SAFETY: as above.
unsafe impl Sync for HeapBlock {}

#[cfg(not(loom))]
impl HeapBlock {
    pub(crate) fn new(size: usize) -> Self {
        let layout = std::alloc::Layout::from_size_align(size, 128).expect("ring size overflows a Layout");
        // SAFETY: `size` is at least CONTROL_SIZE, so the layout is non-zero-sized.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        HeapBlock { ptr, layout }
    }
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }
}

#[cfg(not(loom))]
impl Drop for HeapBlock {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// A loom model's ring: a control block built from loom atomics and a tracked region.
#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct LoomRing {
    pub ctl: Control,
    pub region: Region,
}
