//! Side segments: one named segment per large message, written by its producer and
//! removed by the consumer that takes its reference (see the module docs of
//! [`crate::queue`]).
//!
//! Header parameters of a side segment (kind [`SegmentKind::Raw`]):
//!
//! | param | meaning                               |
//! |-------|---------------------------------------|
//! | 0     | [`SIDE_TAG`]                          |
//! | 1     | message length (= the area's length)  |
//! | 2     | checksum of the message               |
//! | 3     | the queue's id                        |
//! | 4..8  | zero                                  |

use super::error::{BadReference, GetError};
use super::record::{self, Reference};
use crate::Error;
use crate::shm::{self, Segment, SegmentKind, SegmentOptions};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `b"SHMQSIDE"` as a little-endian `u64`: marks a segment as a queue's side segment.
pub(crate) const SIDE_TAG: u64 = u64::from_le_bytes(*b"SHMQSIDE");

/// Per-process sequence of side-segment names (with the pid, unique among live
/// processes; a leftover of a dead process with the same pid is skipped on `EEXIST`).
static NEXT_SEQ: AtomicU64 = AtomicU64::new(0);

/// Tries before giving up on finding a free name (each `EEXIST` is a leftover).
const NAME_TRIES: u32 = 64;

/// How long a consumer waits for a referenced segment to be READY: a producer publishes
/// it before pushing the reference, so only a bad reference ever waits.
const OPEN_TIMEOUT: Duration = Duration::from_millis(20);

/// Write `payload` into a new side segment of the queue (`prefix`, `queue_id`), with
/// permission bits `mode`; return its name and the payload's checksum. The segment is
/// kept (not unlinked) when this returns: its reader removes it.
pub(crate) fn write(prefix: &str, queue_id: u64, payload: &[u8], mode: u32) -> Result<(String, u64), Error> {
    let sum = record::checksum(payload);
    let params = [SIDE_TAG, payload.len() as u64, sum, queue_id, 0, 0, 0, 0];
    let opts = SegmentOptions::new().mode(mode).keep(true).prefault(true);
    let pid = std::process::id();
    let mut tries = 0;
    let (name, mut seg) = loop {
        // Relaxed: only uniqueness matters.
        let name = record::side_name(prefix, pid, NEXT_SEQ.fetch_add(1, Ordering::Relaxed));
        match Segment::create(&name, SegmentKind::Raw, params, payload.len(), &opts) {
            Ok(seg) => break (name, seg),
            Err(Error::AlreadyExists { .. }) if tries < NAME_TRIES => tries += 1,
            Err(e) => return Err(e),
        }
    };
    debug_assert_eq!(seg.area_len(), payload.len());
    // SAFETY: the area holds exactly payload.len() bytes (created with that size), is
    // mapped in this process only (the segment is not READY, and its name is not yet
    // published to any consumer), and does not overlap the caller's `payload`.
    unsafe { crate::ring::copy_bytes(payload.as_ptr(), seg.area_ptr(), payload.len()) };
    seg.publish_ready();
    Ok((name, sum))
}

/// Remove side segment `name` (after a failed push, or a bad one a consumer met).
pub(crate) fn discard(name: &str) {
    let _ = shm::unlink(name);
}

/// Read the side segment `r` of queue `queue_id` into `out` (replacing its contents),
/// removing the segment. `r.name` passed the prefix check, so the segment is this
/// queue's to remove whatever it holds.
pub(crate) fn read(r: &Reference<'_>, queue_id: u64, out: &mut Vec<u8>) -> Result<(), GetError> {
    let opts = SegmentOptions::new().open_timeout(OPEN_TIMEOUT);
    let seg = match Segment::open(r.name, SegmentKind::Raw, &opts) {
        Ok(seg) => seg,
        Err(Error::NotFound { .. }) => return Err(BadReference::Missing.into()),
        Err(Error::Io { op, name, source }) => {
            // A system failure (e.g. no memory, no descriptors): the segment may be
            // fine, but its message cannot be delivered; do not leave it behind.
            discard(r.name);
            return Err(GetError::SideSegment(Error::Io { op, name, source }));
        }
        Err(_) => {
            // Not a READY shmring segment of kind Raw, or inconsistent with its file.
            discard(r.name);
            return Err(BadReference::Mismatch.into());
        }
    };
    // Unlink first: from here on the mapping is ours alone to drop, and a crash while
    // copying leaves nothing in /dev/shm.
    discard(r.name);
    let p = seg.info().params;
    let len = r.len;
    if p[0] != SIDE_TAG || p[1] != len || p[2] != r.checksum || p[3] != queue_id || seg.area_len() as u64 != len {
        return Err(BadReference::Mismatch.into());
    }
    // `len` <= the consumer's max message size (checked when parsing the record), which
    // is a usize; the area holds exactly `len` bytes (checked above).
    let len = len as usize;
    out.clear();
    out.reserve_exact(len);
    // SAFETY: the area holds `len` bytes (checked above) in a mapping that lives until
    // `seg` drops; `out` has `len` bytes of spare capacity and is private memory, so the
    // ranges do not overlap. A peer still writing the (unlinked) segment can only change
    // the bytes we copy, which the checksum below then rejects.
    unsafe {
        crate::ring::copy_bytes(seg.area_ptr(), out.as_mut_ptr(), len);
        out.set_len(len);
    }
    drop(seg);
    if record::checksum(out) != r.checksum {
        out.clear();
        return Err(BadReference::Checksum.into());
    }
    Ok(())
}
