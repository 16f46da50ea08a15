//! The header at offset 0 of every shmring segment.

use crate::primitive::{AtomicU32, AtomicU64, Ordering};

/// `b"SHMRING\0"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMRING\0");
/// The layout version this build writes and reads.
///
/// Version 2: a typed segment ([`flags::TYPED`]) has a type record between the header
/// and the area (see [`crate::shm::shape`]). Version 3: the SPSC ring's records have a
/// one-word header and 8-byte alignment (see [`crate::ring::record`]).
pub const LAYOUT_VERSION: u32 = 3;
/// Size of [`SegmentHeader`]; the structure's area starts at this offset.
pub const HEADER_SIZE: usize = 128;

/// Bits of the header's `flags` word.
pub mod flags {
    /// The creator chose asymmetric fences (membarrier); every party must support them.
    pub const ASYMMETRIC_FENCES: u32 = 1;
    /// The segment holds a typed object: a type record of
    /// [`TYPE_RECORD_SIZE`](crate::shm::TYPE_RECORD_SIZE) bytes follows the header, and
    /// the area starts after it (see [`crate::shm::shape`]).
    pub const TYPED: u32 = 2;
    /// All flags this build understands.
    pub const KNOWN: u32 = ASYMMETRIC_FENCES | TYPED;
}

/// What structure a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
#[non_exhaustive]
pub enum SegmentKind {
    /// A single-producer single-consumer byte ring ([`crate::ring::spsc`]).
    SpscRing = 1,
    /// A multi-producer multi-consumer queue of slots ([`crate::ring::mpmc`]).
    MpmcQueue = 2,
    /// A robust process-shared mutex guarding a value ([`crate::sync::Mutex`]).
    Mutex = 3,
    /// A reentrant robust lock ([`crate::sync::RLock`]).
    RLock = 4,
    /// A counting semaphore (`sync::Semaphore`, `sync::BoundedSemaphore`).
    Semaphore = 5,
    /// An event flag (`sync::Event`).
    Event = 6,
    /// A mutex-guarded value with a condition variable ([`crate::sync::Condition`]).
    Condition = 7,
    /// A barrier (`sync::Barrier`).
    Barrier = 8,
    /// A typed shared value (`value::Value`, `value::RawValue`).
    Value = 9,
    /// A typed shared array (`value::Array`, `value::RawArray`).
    Array = 10,
    /// A broadcast ring: one publisher, many subscribers ([`crate::broadcast`]).
    Broadcast = 11,
    /// A segment whose area the user lays out (shmring only manages the header).
    Raw = 100,
}

impl SegmentKind {
    /// The kind stored as `raw`, if this build knows it.
    pub fn from_u32(raw: u32) -> Option<Self> {
        match raw {
            1 => Some(SegmentKind::SpscRing),
            2 => Some(SegmentKind::MpmcQueue),
            3 => Some(SegmentKind::Mutex),
            4 => Some(SegmentKind::RLock),
            5 => Some(SegmentKind::Semaphore),
            6 => Some(SegmentKind::Event),
            7 => Some(SegmentKind::Condition),
            8 => Some(SegmentKind::Barrier),
            9 => Some(SegmentKind::Value),
            10 => Some(SegmentKind::Array),
            11 => Some(SegmentKind::Broadcast),
            100 => Some(SegmentKind::Raw),
            _ => None,
        }
    }

    /// A short lowercase name (`"spsc"`).
    pub fn name(self) -> &'static str {
        match self {
            SegmentKind::SpscRing => "spsc",
            SegmentKind::MpmcQueue => "mpmc",
            SegmentKind::Mutex => "mutex",
            SegmentKind::RLock => "rlock",
            SegmentKind::Semaphore => "semaphore",
            SegmentKind::Event => "event",
            SegmentKind::Condition => "condition",
            SegmentKind::Barrier => "barrier",
            SegmentKind::Value => "value",
            SegmentKind::Array => "array",
            SegmentKind::Broadcast => "broadcast",
            SegmentKind::Raw => "raw",
        }
    }
}

/// Init-state values of [`SegmentHeader::init_state`].
///
/// | value | meaning                                   | written by          |
/// |-------|-------------------------------------------|---------------------|
/// | 0     | fresh file, nothing written yet           | the kernel (zeros)  |
/// | 1     | header written, structure being set up    | creator, Relaxed    |
/// | 2     | READY: everything written and published   | creator, Release    |
pub(crate) mod init_state {
    pub const INITIALIZING: u32 = 1;
    pub const READY: u32 = 2;
}

/// The `#[repr(C)]` header at offset 0 of every segment. Every field is an atomic so
/// that a peer writing it concurrently is a wrong value, never a data race; readers
/// take a [`HeaderInfo`] snapshot after the Acquire load of READY and validate it.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct SegmentHeader {
    /// [`MAGIC`].
    pub magic: AtomicU64,
    /// [`LAYOUT_VERSION`].
    pub version: AtomicU32,
    /// A [`SegmentKind`] as `u32`.
    pub kind: AtomicU32,
    /// Size of the whole segment in bytes, header included.
    pub total_size: AtomicU64,
    /// Offset of the structure's area from the start of the segment.
    pub area_offset: AtomicU64,
    /// See the init-state table; 2 = READY.
    pub init_state: AtomicU32,
    /// Bits of [`flags`].
    pub flags: AtomicU32,
    /// The creator's pid (informational; liveness uses locks).
    pub creator_pid: AtomicU32,
    /// Zero.
    pub reserved: AtomicU32,
    /// The creator's start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub creator_start_time: AtomicU64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_unix_ns: AtomicU64,
    /// Parameters of the structure (for a ring: capacity, ...).
    pub params: [AtomicU64; 8],
}

// Not under loom: loom's atomics are larger than the std ones, and segments are not
// modelled there (see `Shared::from_segment`).
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<SegmentHeader>() == HEADER_SIZE);
const _: () = assert!(std::mem::align_of::<SegmentHeader>() == 128);

/// A snapshot of a header's fields, read once; validated by `Segment::open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    /// The magic word.
    pub magic: u64,
    /// The layout version.
    pub version: u32,
    /// The raw kind.
    pub kind: u32,
    /// The total size the header claims.
    pub total_size: u64,
    /// The area offset the header claims.
    pub area_offset: u64,
    /// The init state.
    pub init_state: u32,
    /// The flags.
    pub flags: u32,
    /// The creator's pid.
    pub creator_pid: u32,
    /// The creator's start time (clock ticks since boot).
    pub creator_start_time: u64,
    /// Creation time, ns since the epoch.
    pub created_unix_ns: u64,
    /// The structure's parameters.
    pub params: [u64; 8],
}

impl SegmentHeader {
    /// Read every field once. The init state is read first with Acquire.
    pub fn snapshot(&self) -> HeaderInfo {
        // Acquire: pairs with the Release store of READY in Segment::publish_ready, so
        // that every field below is the creator's once READY is seen.
        let init_state = self.init_state.load(Ordering::Acquire);
        // Relaxed (all below): ordered after the Acquire above; a later change by a
        // hostile peer only yields a value that validation rejects.
        let mut params = [0u64; 8];
        for (p, a) in params.iter_mut().zip(&self.params) {
            *p = a.load(Ordering::Relaxed);
        }
        HeaderInfo {
            magic: self.magic.load(Ordering::Relaxed),
            version: self.version.load(Ordering::Relaxed),
            kind: self.kind.load(Ordering::Relaxed),
            total_size: self.total_size.load(Ordering::Relaxed),
            area_offset: self.area_offset.load(Ordering::Relaxed),
            init_state,
            flags: self.flags.load(Ordering::Relaxed),
            creator_pid: self.creator_pid.load(Ordering::Relaxed),
            creator_start_time: self.creator_start_time.load(Ordering::Relaxed),
            created_unix_ns: self.created_unix_ns.load(Ordering::Relaxed),
            params,
        }
    }
}

impl HeaderInfo {
    /// Whether the creator has published READY.
    pub fn is_ready(&self) -> bool {
        self.init_state == init_state::READY
    }

    /// The kind, if known.
    pub fn segment_kind(&self) -> Option<SegmentKind> {
        SegmentKind::from_u32(self.kind)
    }
}
