//! The broadcast ring as every end sees it: [`Shared`] holds the control block, the
//! subscriber table, the record area and the memory's owner, and validates a segment's
//! parameters and indices before anything is built on them.

#[cfg(loom)]
use super::layout;
use super::layout::{Backing, Control, Region, SubSlot};
#[cfg(not(loom))]
use super::layout::{CONTROL_SIZE, SLOT_SIZE};
#[cfg(not(loom))]
use super::{MAX_CAPACITY, MAX_SUBSCRIBERS, MIN_CAPACITY};
use super::{Policy, max_message_len, record};
use crate::primitive::Ordering;
use crate::ring::backing::SegmentBacking;
use crate::shm::Segment;
use crate::{Error, Result};
use std::ptr::NonNull;

/// What every end holds: the control block, the subscriber table, the record area and
/// the memory's owner.
#[derive(Debug)]
#[doc(hidden)] // opaque: public only as the `Ring` of the end kinds
pub struct Shared {
    pub(super) ctl: NonNull<Control>,
    pub(super) subs: NonNull<SubSlot>,
    pub(super) nsubs: u32,
    pub(super) region: Region,
    pub(super) backing: Backing,
    pub(super) cap: u64,
    pub(super) max_msg: u64,
    pub(super) policy: Policy,
    pub(super) asym: bool,
}

// SAFETY: the control block, table and region are shared memory accessed through
// atomics and bounds-checked copies; the pointers stay valid as long as `backing`
// (owned) lives.
unsafe impl Send for Shared {}

impl Shared {
    #[inline]
    pub(crate) fn ctl(&self) -> &Control {
        // SAFETY: `ctl` points into memory owned by `backing`, which lives as long as
        // `self` (the ends stop touching it once it is `Gone`); Control is all atomics,
        // valid for any bit pattern.
        unsafe { self.ctl.as_ref() }
    }

    /// Subscriber slot `i` (`i < nsubs`).
    #[inline]
    pub(crate) fn sub(&self, i: u32) -> &SubSlot {
        assert!(i < self.nsubs, "subscriber slot out of range");
        // SAFETY: the table holds `nsubs` slots (checked at attach), owned by `backing`;
        // SubSlot is all atomics, valid for any bit pattern.
        unsafe { &*self.subs.as_ptr().add(i as usize) }
    }

    #[inline]
    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// Whether an open file description other than ours holds lock slot `lock`
    /// (always true for in-process rings; an error counts as alive: never report a
    /// live party dead).
    pub(crate) fn held_by_other(&self, lock: u32) -> bool {
        self.backing.lock_held_by_other(lock)
    }

    /// Take lock slot `lock` (`Ok(true)` for in-process rings).
    pub(super) fn try_lock(&self, lock: u32) -> Result<bool> {
        match &self.backing {
            Backing::Segment(seg) => {
                use rustix::fd::AsFd;
                crate::shm::liveness::try_lock_slot(seg.as_fd(), lock)
                    .map_err(|e| Error::io("fcntl(F_OFD_SETLK)", seg.display_name(), e))
            }
            _ => Ok(true),
        }
    }

    /// Release lock slot `lock` if we hold it.
    pub(super) fn unlock(&self, lock: u32) {
        if let Backing::Segment(seg) = &self.backing {
            use rustix::fd::AsFd;
            crate::shm::liveness::unlock_slot(seg.as_fd(), lock);
        }
    }

    /// Whether this ring is backed by a segment (locks decide slots), or by memory of
    /// this process (CAS decides them).
    pub(super) fn is_segment(&self) -> bool {
        matches!(self.backing, Backing::Segment(_))
    }

    /// Whether a peer resized the segment under this mapping (an `fstat` at most every
    /// liveness interval).
    pub(crate) fn poisoned(&self) -> bool {
        self.backing.resized()
    }

    /// The segment's name (`None` if anonymous or in-process).
    pub(crate) fn name(&self) -> Option<&str> {
        self.backing.segment_name()
    }

    /// The segment's name, `<anonymous>`, or `<in-process>`.
    pub(crate) fn display_name(&self) -> &str {
        self.backing.display_name()
    }

    /// Give up the mapping and return the descriptor (with its liveness locks).
    pub(crate) fn take_fd(&mut self) -> Option<rustix::fd::OwnedFd> {
        self.backing.take_fd()
    }

    /// `tail` and `oldest` as a subscriber or a new publisher may trust them: multiples
    /// of 8, below 2^62, `oldest <= tail <= oldest + capacity`.
    pub(crate) fn indices(&self) -> std::result::Result<(u64, u64), &'static str> {
        let p = &self.ctl().publ;
        let mut tries = 0;
        loop {
            // Acquire: pairs with the publisher's Release stores of oldest, each made
            // after the store of a tail at least as far: the tail loaded next is too.
            let oldest = p.oldest.load(Ordering::Acquire);
            // Acquire: pairs with the Release store of tail by the publisher (the
            // records below it are visible).
            let tail = p.tail.load(Ordering::Acquire);
            if tail % record::ALIGN != 0 || oldest % record::ALIGN != 0 {
                return Err("ring index is not a multiple of 8");
            }
            if tail >= 1 << 62 {
                return Err("tail at or beyond 2^62");
            }
            if oldest > tail {
                return Err("oldest is past tail");
            }
            if tail - oldest <= self.cap {
                return Ok((tail, oldest));
            }
            // The publisher moved both between our loads (oldest is read first, so it
            // may be a lap stale); a stable gap is corruption.
            tries += 1;
            if tries >= 64 {
                return Err("oldest is more than a capacity behind tail");
            }
            crate::primitive::spin_hint();
        }
    }

    /// A second view of the same ring (a new description of the same file for a
    /// segment, so that its locks are its own).
    #[cfg(not(loom))]
    pub(super) fn reopen(&self) -> Result<Shared> {
        match &self.backing {
            Backing::Segment(seg) => Shared::from_segment(seg.reopen()?),
            Backing::Heap(block) => Ok(Shared {
                ctl: self.ctl,
                subs: self.subs,
                nsubs: self.nsubs,
                // SAFETY: the same region as `self`'s, kept alive by the cloned Arc.
                region: unsafe {
                    Region::new(
                        NonNull::new(self.region.slice_ptr(0, 0)).expect("non-null"),
                        self.cap as usize,
                    )
                },
                backing: Backing::Heap(block.clone()),
                cap: self.cap,
                max_msg: self.max_msg,
                policy: self.policy,
                asym: self.asym,
            }),
            Backing::Gone => Err(Error::InvalidArgument("the end was handed off".into())),
        }
    }

    /// Under loom: the same model ring.
    #[cfg(loom)]
    pub(super) fn reopen(&self) -> Result<Shared> {
        match &self.backing {
            Backing::Loom(ring) => Ok(Shared::loom(ring.clone(), self.policy)),
            _ => Err(Error::InvalidArgument("only loom rings are modelled".into())),
        }
    }

    /// Under loom the control block is made of loom atomics, which cannot live in a
    /// mapping: segment-backed rings are not modelled (use [`loom_channel`]).
    #[cfg(loom)]
    pub(super) fn from_segment(seg: Segment) -> Result<Self> {
        Err(crate::ring::not_modelled(&seg))
    }

    /// Build on a mapped segment whose kind the caller checked; validates the ring's
    /// parameters and indices.
    #[cfg(not(loom))]
    pub(super) fn from_segment(seg: Segment) -> Result<Self> {
        let info = *seg.info();
        let corrupted = Error::corruption_of(seg.display_name());
        let (cap, max_msg) = crate::ring::checked_capacity(&info.params, MIN_CAPACITY, MAX_CAPACITY, max_message_len)
            .map_err(&corrupted)?;
        let nsubs = info.params[2];
        if nsubs == 0 || nsubs > MAX_SUBSCRIBERS as u64 {
            return Err(corrupted(format!("subscriber limit {nsubs} is not in 1..=4096")));
        }
        let policy =
            Policy::from_u64(info.params[3]).ok_or_else(|| corrupted(format!("unknown policy {}", info.params[3])))?;
        let table = nsubs * SLOT_SIZE as u64;
        if seg.area_len() as u64 != CONTROL_SIZE as u64 + table + cap {
            return Err(corrupted(format!(
                "area of {} bytes does not hold the table and a {cap}-byte ring",
                seg.area_len()
            )));
        }
        let asym = seg.asymmetric_fences()?;
        let base = NonNull::new(seg.area_ptr()).expect("mapping is never null");
        // SAFETY: the area holds CONTROL_SIZE + table + cap bytes (checked above); the
        // table starts CONTROL_SIZE bytes in and the region after it, both 128-aligned,
        // and they live as long as the segment, which `backing` owns.
        let (subs, region) = unsafe {
            (
                base.add(CONTROL_SIZE).cast::<SubSlot>(),
                Region::new(base.add(CONTROL_SIZE + table as usize), cap as usize),
            )
        };
        let sh = Shared {
            ctl: base.cast(),
            subs,
            nsubs: nsubs as u32,
            region,
            backing: Backing::Segment(seg),
            cap,
            max_msg,
            policy,
            asym,
        };
        sh.indices().map_err(|e| corrupted(e.into()))?;
        Ok(sh)
    }

    /// A view of a loom model's ring.
    #[cfg(loom)]
    pub(super) fn loom(ring: std::sync::Arc<layout::LoomRing>, policy: Policy) -> Shared {
        let cap = (ring.region.words.len() * 8) as u64;
        Shared {
            ctl: NonNull::from(&ring.ctl),
            subs: NonNull::from(&ring.subs[0]),
            nsubs: ring.subs.len() as u32,
            region: Region {
                words: ring.region.words.clone(),
            },
            backing: Backing::Loom(ring),
            cap,
            max_msg: max_message_len(cap as usize) as u64,
            policy,
            asym: false,
        }
    }
}
