//! The fast path of gets on the same machine: a table of per-bucket version counters
//! in a shared-memory segment that the server writes and its Unix-socket clients read.
//!
//! The server creates the table (an anonymous memfd [`Segment`] of kind
//! [`SegmentKind::Raw`], so nothing is left in `/dev/shm` if it is killed) the first
//! time a client asks for a dict's cache, and hands it over the client's socket
//! (`SCM_RIGHTS`, [`handoff`](crate::handoff)). A key belongs to bucket
//! `fnv1a(key bytes) % buckets`. Every write to a key (insert, remove, update, a
//! successful compare-and-set; every bucket on clear) increments its bucket's counter,
//! under the dict's lock, after changing the map and before replying to the writer. A
//! cached get runs in the server under the same lock and returns the value with the
//! bucket's counter: the pair is consistent. The client keeps (value, counter) per key
//! and, on `get`, loads the bucket's counter: equal -> no write to that bucket since
//! the pair was read -> the cached value is current; different -> one round trip
//! refreshes it.
//!
//! Guarantee: a `get` that starts after a write to the same key returned (in any
//! process that learnt of it: a reply, a message, a join) returns that write's value
//! or a later one — the same as a round trip. The counter is a `u64`: it never wraps.

use super::ManagerError;
use crate::shm::{Segment, SegmentKind, SegmentOptions};
use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets of a table: 4096 counters, 32 KiB.
pub(crate) const BUCKETS: u64 = 4096;
/// `params[0]` of the segment: what it is.
const MAGIC: u64 = u64::from_le_bytes(*b"mgrvers1");

/// A mapped table of bucket counters.
#[derive(Debug)]
pub(crate) struct VersionTable {
    seg: Segment,
    buckets: u64,
}

/// FNV-1a: the same bucket in every process (std's hasher is seeded per process).
fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

impl VersionTable {
    /// A new table, all counters zero (server side).
    pub(crate) fn create() -> Result<Self, String> {
        let mut params = [0; 8];
        params[0] = MAGIC;
        params[1] = BUCKETS;
        let mut seg = Segment::anonymous(SegmentKind::Raw, params, (BUCKETS * 8) as usize, &SegmentOptions::new())
            .map_err(|e| e.to_string())?;
        seg.publish_ready();
        Ok(VersionTable { seg, buckets: BUCKETS })
    }

    /// A second mapping of the table, to hand to a client.
    pub(crate) fn share(&self) -> Result<Segment, String> {
        self.seg.reopen().map_err(|e| e.to_string())
    }

    /// The table in a segment received from the server (client side), validated.
    pub(crate) fn from_segment(seg: Segment) -> Result<Self, ManagerError> {
        let info = seg.info();
        let bad = |why: &str| ManagerError::Protocol(format!("the server's version table: {why}"));
        if info.kind != SegmentKind::Raw as u32 || info.params[0] != MAGIC {
            return Err(bad("not a manager version table"));
        }
        let buckets = info.params[1];
        if buckets == 0 || buckets.checked_mul(8).is_none_or(|n| n > seg.area_len() as u64) {
            return Err(bad("bucket count does not fit the segment"));
        }
        if seg.area_ptr().align_offset(8) != 0 {
            return Err(bad("misaligned"));
        }
        Ok(VersionTable { seg, buckets })
    }

    fn slot(&self, i: u64) -> &AtomicU64 {
        debug_assert!(i < self.buckets);
        // SAFETY: i < buckets and buckets * 8 <= area_len (checked at construction), the
        // area is 8-aligned (checked, and page + 128-byte header), and lives as long as
        // `self.seg`; AtomicU64 has the size and alignment of u64 and any bit pattern is
        // valid; the memory is only ever accessed atomically.
        unsafe { &*self.seg.area_ptr().add(i as usize * 8).cast::<AtomicU64>() }
    }

    fn bucket(&self, key: &[u8]) -> u64 {
        fnv1a(key) % self.buckets
    }

    /// The counter of `key`'s bucket. Acquire: pairs with the Release increment in
    /// [`VersionTable::bump`], so what the server did before the increment is visible
    /// to what the client does after seeing it.
    pub(crate) fn load(&self, key: &[u8]) -> u64 {
        self.slot(self.bucket(key)).load(Ordering::Acquire)
    }

    /// Mark a write to `key` (server side, under the dict's lock). Release: pairs with
    /// the Acquire load in [`VersionTable::load`].
    pub(crate) fn bump(&self, key: &[u8]) {
        self.slot(self.bucket(key)).fetch_add(1, Ordering::Release);
    }

    /// Mark a write to every key (clear). Release: as [`VersionTable::bump`].
    pub(crate) fn bump_all(&self) {
        for i in 0..self.buckets {
            self.slot(i).fetch_add(1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_changes_the_bucket_of_its_key_seen_through_another_mapping() {
        let server = VersionTable::create().unwrap();
        let client = VersionTable::from_segment(server.share().unwrap()).unwrap();
        let (a, b) = (b"key a".as_slice(), b"key b".as_slice());
        assert_ne!(fnv1a(a) % BUCKETS, fnv1a(b) % BUCKETS);
        let (va, vb) = (client.load(a), client.load(b));
        server.bump(a);
        assert_eq!((client.load(a), client.load(b)), (va + 1, vb));
        server.bump_all();
        assert_eq!((client.load(a), client.load(b)), (va + 2, vb + 1));
    }

    #[test]
    fn a_segment_that_is_not_a_table_is_refused() {
        let seg = Segment::anonymous(SegmentKind::Raw, [0; 8], 64, &SegmentOptions::new()).unwrap();
        assert!(VersionTable::from_segment(seg).is_err());
        let mut params = [0; 8];
        params[0] = MAGIC;
        params[1] = 1 << 40;
        let seg = Segment::anonymous(SegmentKind::Raw, params, 64, &SegmentOptions::new()).unwrap();
        assert!(VersionTable::from_segment(seg).is_err());
    }
}
