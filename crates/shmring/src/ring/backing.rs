//! What the byte rings' ends ask of the memory they live in, written once for the SPSC
//! and the broadcast rings: each ring's `Backing` (a segment, heap memory of this
//! process, a loom model's ring, or nothing after a hand-off) says only whether it is
//! a segment ([`SegmentBacking::segment`]) and gives the segment up
//! ([`SegmentBacking::take_segment`]); the liveness locks, the resize check, the names
//! and the hand-off of the descriptor follow from that here.

use crate::shm::Segment;

/// A ring's memory, as far as segments go (see the module docs).
pub(crate) trait SegmentBacking {
    /// The mapped segment, if the ring lives in one.
    fn segment(&self) -> Option<&Segment>;

    /// Give up the segment (the ring is then gone); `None`, and nothing changes, if the
    /// ring does not live in one.
    fn take_segment(&mut self) -> Option<Segment>;

    /// Whether an open file description other than ours holds liveness lock slot
    /// `lock`. Always true for memory of this process, and an error counts as held:
    /// never report a live party dead.
    fn lock_held_by_other(&self, lock: u32) -> bool {
        match self.segment() {
            Some(seg) => {
                use rustix::fd::AsFd;
                crate::shm::liveness::slot_held_by_other(seg.as_fd(), lock).unwrap_or(true)
            }
            None => true,
        }
    }

    /// Whether a peer resized the segment under this mapping (see
    /// [`Segment::check_resized_every`]: an `fstat` at most every liveness interval).
    fn resized(&self) -> bool {
        self.segment()
            .is_some_and(|seg| seg.check_resized_every(crate::sync::LIVENESS_INTERVAL))
    }

    /// The segment's name (`None` if anonymous or in-process).
    fn segment_name(&self) -> Option<&str> {
        self.segment().and_then(Segment::name)
    }

    /// The segment's name, `<anonymous>`, or `<in-process>`.
    fn display_name(&self) -> &str {
        self.segment().map_or("<in-process>", Segment::display_name)
    }

    /// Give up the mapping and return the descriptor (with its liveness locks).
    fn take_fd(&mut self) -> Option<rustix::fd::OwnedFd> {
        self.take_segment().map(Segment::into_fd)
    }
}

/// Implement [`SegmentBacking`] for a ring's `Backing` enum, whose `Segment(Segment)`
/// variant is the segment and `Gone` what is left after it was taken.
macro_rules! segment_backing {
    ($backing:ty) => {
        impl crate::ring::backing::SegmentBacking for $backing {
            fn segment(&self) -> Option<&crate::shm::Segment> {
                match self {
                    Self::Segment(seg) => Some(seg),
                    _ => None,
                }
            }

            fn take_segment(&mut self) -> Option<crate::shm::Segment> {
                match std::mem::replace(self, Self::Gone) {
                    Self::Segment(seg) => Some(seg),
                    other => {
                        *self = other;
                        None
                    }
                }
            }
        }
    };
}
pub(crate) use segment_backing;
