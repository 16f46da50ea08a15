//! The segment of an [`Array`](super::Array) or a [`RawArray`](super::RawArray):
//! created, opened, validated, and the element accesses both share.
//!
//! The area holds a [`RawSeqLock`] at offset 0 and the elements from offset
//! [`DATA_OFFSET`] (a line of their own), each at the stride of its storage (see
//! `elems.rs`). Parameter words of the segment header:
//!
//! | param | meaning                                                              |
//! |-------|----------------------------------------------------------------------|
//! | 0     | `size_of::<T>()`                                                     |
//! | 1     | fingerprint of `T` (its name, size, alignment)                       |
//! | 2     | the length, in elements                                              |
//! | 3     | 1: an `Array` (with a lock), 0: a `RawArray`                         |
//! | 6     | size of the area: `DATA_OFFSET` + the data rounded up to 8 bytes      |
//! | 7     | inode of the creator's pid namespace (the lock's owner words hold TIDs) |
//!
//! An opener recomputes the area size from the length and requires it to equal word 6
//! and to fit in the file: a corrupted length is `Error::Corrupted`, never an access
//! out of bounds.

use super::array::ArrayError;
use super::elems::{Elems, Repr, data_size};
use super::seqlock::{RawSeqLock, SeqWriteGuard, Torn};
use crate::error::{Error, Result};
use crate::primitive::Ordering;
use crate::shm::{Segment, SegmentKind, SegmentOptions};
use crate::sync::shared::{check_type, type_fingerprint};
use bytemuck::Pod;
use rustix::fd::OwnedFd;
use std::marker::PhantomData;

/// Offset of the first element from the start of the area.
pub(super) const DATA_OFFSET: usize = 128;
pub(super) const LOCKED: u64 = 1;
pub(super) const RAW: u64 = 0;

fn flavor_name(f: u64) -> &'static str {
    match f {
        LOCKED => "Array",
        RAW => "RawArray",
        _ => "array of unknown flavor",
    }
}

/// Area bytes for `len` elements of `T` (`None` on overflow).
fn area_size<T>(len: usize) -> Option<usize> {
    DATA_OFFSET.checked_add(data_size::<T>(len)?)
}

/// What `Array` and `RawArray` share: the mapped segment and its validated length.
pub(super) struct Store<T> {
    pub(super) seg: Segment,
    pub(super) len: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T: Pod> Store<T> {
    pub(super) fn create(
        name: Option<&str>,
        flavor: u64,
        len: usize,
        init: Option<&[T]>,
        opts: &SegmentOptions,
    ) -> Result<Self> {
        if std::mem::size_of::<T>() == 0 {
            return Err(Error::InvalidArgument("an array of a zero-sized type".into()));
        }
        let size = area_size::<T>(len)
            .ok_or_else(|| Error::InvalidArgument(format!("an array of {len} elements is too large")))?;
        let mut p = [0u64; 8];
        p[0] = std::mem::size_of::<T>() as u64;
        p[1] = type_fingerprint::<T>();
        p[2] = len as u64;
        p[3] = flavor;
        p[6] = size as u64;
        p[7] = crate::sync::pid_namespace();
        let mut seg = match name {
            Some(n) => Segment::create(n, SegmentKind::Array, p, size, opts)?,
            None => Segment::anonymous(SegmentKind::Array, p, size, opts)?,
        };
        let store = Store {
            seg,
            len,
            _t: PhantomData,
        };
        // A fresh file is zeros: a valid RawSeqLock and zeroed elements.
        if let Some(init) = init {
            let e = store.elems();
            for (i, v) in init.iter().enumerate() {
                // Relaxed: published to openers by the Release store of READY.
                e.store(i, *v, Ordering::Relaxed);
            }
        }
        seg = store.seg;
        seg.publish_ready();
        Ok(Store {
            seg,
            len,
            _t: PhantomData,
        })
    }

    pub(super) fn validate(seg: Segment, flavor: u64) -> Result<Self> {
        let p = seg.info().params;
        let name = seg.display_name().to_owned();
        check_type::<T>(&p, 1, "array")?;
        if p[3] != flavor {
            return Err(Error::InvalidArgument(format!(
                "segment {name:?} holds a {}, not a {}",
                flavor_name(p[3]),
                flavor_name(flavor)
            )));
        }
        let corrupted = |what: String| Error::Corrupted {
            name: name.clone(),
            what,
        };
        let len = usize::try_from(p[2]).map_err(|_| corrupted(format!("array length {} is too large", p[2])))?;
        let need = area_size::<T>(len).ok_or_else(|| corrupted(format!("array length {len} is too large")))?;
        if p[6] != need as u64 || seg.area_len() < need {
            return Err(corrupted(format!(
                "an array of {len} elements of {} bytes needs an area of {need} bytes; \
                 the header says {}, the file holds {}",
                std::mem::size_of::<T>(),
                p[6],
                seg.area_len()
            )));
        }
        let ns = crate::sync::pid_namespace();
        if p[7] != ns {
            return Err(Error::InvalidArgument(format!(
                "array {name:?} was created in another pid namespace (inode {ns} here, {} there): \
                 its lock's owner records are thread ids, which only mean something within one namespace",
                p[7]
            )));
        }
        Ok(Store {
            seg,
            len,
            _t: PhantomData,
        })
    }

    pub(super) fn open(name: &str, flavor: u64) -> Result<Self> {
        Self::validate(
            Segment::open(name, SegmentKind::Array, &SegmentOptions::default())?,
            flavor,
        )
    }

    pub(super) fn from_fd(fd: OwnedFd, flavor: u64) -> Result<Self> {
        Self::validate(
            Segment::from_fd(fd, SegmentKind::Array, &SegmentOptions::default())?,
            flavor,
        )
    }

    pub(super) fn try_clone(&self) -> Result<Self> {
        Ok(Store {
            seg: self.seg.reopen()?,
            len: self.len,
            _t: PhantomData,
        })
    }

    pub(super) fn sl(&self) -> &RawSeqLock {
        // SAFETY: the area is at least DATA_OFFSET (128) bytes, 128-byte aligned
        // (Segment::area_ptr), RawSeqLock (40 bytes, alignment 8) is all atomics, valid
        // for any bit pattern, and the mapping lives as long as `self`.
        unsafe { &*(self.seg.area_ptr() as *const RawSeqLock) }
    }

    pub(super) fn elems(&self) -> Elems<'_, T> {
        // SAFETY: the data starts at DATA_OFFSET (8-aligned, the area being 128-aligned)
        // and spans data_size::<T>(len) bytes within the area (checked at create and
        // validate); the mapping lives as long as `self`; only Elems<T> touches it.
        unsafe { Elems::new(self.seg.area_ptr().add(DATA_OFFSET), self.len) }
    }

    pub(super) fn index(&self, i: usize) -> std::result::Result<usize, ArrayError> {
        if i < self.len {
            Ok(i)
        } else {
            Err(ArrayError::OutOfBounds {
                index: i,
                len: self.len,
            })
        }
    }

    pub(super) fn get(&self, i: usize) -> std::result::Result<T, ArrayError> {
        let i = self.index(i)?;
        let e = self.elems();
        if Repr::of::<T>().is_narrow() {
            // Acquire: pairs with the Release of the element's stores and RMWs.
            Ok(e.load(i, Ordering::Acquire))
        } else {
            Ok(self
                .sl()
                .read(|| e.load(i, Ordering::Relaxed))
                .unwrap_or_else(Torn::into_inner))
        }
    }

    /// Write element `i` with the writer lock held: a single atomic store, or a section.
    pub(super) fn set_locked(&self, g: &mut SeqWriteGuard<'_>, i: usize, v: T) {
        let e = self.elems();
        if Repr::of::<T>().is_narrow() {
            // Release: pairs with the Acquire load in `get`.
            e.store(i, v, Ordering::Release);
        } else {
            g.write(|| e.store(i, v, Ordering::Relaxed));
        }
    }

    pub(super) fn set(&self, i: usize, v: T, lock_narrow: bool) -> std::result::Result<(), ArrayError> {
        let i = self.index(i)?;
        if !lock_narrow && Repr::of::<T>().is_narrow() {
            // Release: pairs with the Acquire load in `get`.
            self.elems().store(i, v, Ordering::Release);
        } else {
            let mut g = self.sl().write_lock();
            self.set_locked(&mut g, i, v);
        }
        Ok(())
    }

    pub(super) fn read_all(&self) -> std::result::Result<Vec<T>, Torn<Vec<T>>> {
        let e = self.elems();
        let mut buf = Vec::with_capacity(self.len);
        let r = self.sl().read(|| {
            buf.clear();
            // Relaxed: validated by the seqlock.
            buf.extend((0..e.len()).map(|i| e.load(i, Ordering::Relaxed)));
        });
        match r {
            Ok(()) => Ok(buf),
            Err(Torn(())) => Err(Torn(buf)),
        }
    }

    pub(super) fn copy_from_slice(&self, src: &[T]) -> std::result::Result<(), ArrayError> {
        if src.len() != self.len {
            return Err(ArrayError::LengthMismatch {
                expected: self.len,
                found: src.len(),
            });
        }
        let e = self.elems();
        self.sl().write_lock().write_all(|| {
            for (i, v) in src.iter().enumerate() {
                // Release: pairs with the Acquire load in `get` (narrow elements).
                e.store(i, *v, Ordering::Release);
            }
        });
        Ok(())
    }
}
