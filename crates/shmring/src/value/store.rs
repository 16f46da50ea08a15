//! The segment of an [`Array`](super::Array) or a [`RawArray`](super::RawArray), both
//! the generic handle [`Shared`] over an [`ArrayKind`]: the kind (created, opened,
//! validated), [`ArrayError`], and the element accesses both flavors share.
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

use super::elems::{Elems, Repr, data_size};
use super::seqlock::{RawSeqLock, SeqWriteGuard, Torn};
use crate::error::{Error, Result};
use crate::handoff;
use crate::primitive::Ordering;
use crate::shm::SegmentKind;
use crate::sync::Shared;
use crate::sync::handle::{Kind, Sealed};
use crate::sync::shared::{Area, pod_fingerprint};
use bytemuck::Pod;
use postcard_schema::Schema;
use std::fmt;
use std::marker::PhantomData;

/// Offset of the first element from the start of the area.
pub(super) const DATA_OFFSET: usize = 128;
pub(super) const LOCKED: u64 = 1;
pub(super) const RAW: u64 = 0;

const fn flavor_name(f: u64) -> &'static str {
    match f {
        LOCKED => "Array",
        RAW => "RawArray",
        _ => "array of unknown flavor",
    }
}

const fn flavor(locked: bool) -> u64 {
    if locked { LOCKED } else { RAW }
}

/// Area bytes for `len` elements of `T` (`None` on overflow).
pub(super) fn area_size<T>(len: usize) -> Option<usize> {
    DATA_OFFSET.checked_add(data_size::<T>(len)?)
}

/// Why an indexed access or a bulk copy was refused. Nothing was read or written.
///
/// ```
/// use shmring::value::{Array, ArrayError};
/// let a = Array::anonymous(&[1u8, 2])?;
/// assert_eq!(a.get(2), Err(ArrayError::OutOfBounds { index: 2, len: 2 }));
/// assert_eq!(
///     a.copy_from_slice(&[1]),
///     Err(ArrayError::LengthMismatch { expected: 2, found: 1 })
/// );
/// # Ok::<(), shmring::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArrayError {
    /// The index is not below the length.
    #[error("index {index} is out of bounds for an array of {len} elements")]
    OutOfBounds {
        /// The index given.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// `copy_from_slice` got a slice of another length.
    #[error("a slice of {found} elements cannot replace an array of {expected}")]
    LengthMismatch {
        /// The array's length.
        expected: usize,
        /// The slice's length.
        found: usize,
    },
}

/// The head of an array's area: the seqlock, on a line of its own; the elements follow
/// at [`DATA_OFFSET`].
#[repr(C, align(128))]
#[derive(Debug)]
pub struct ArrayHead {
    pub(super) seq: RawSeqLock,
}

const _: () = assert!(std::mem::size_of::<ArrayHead>() == DATA_OFFSET);

/// The [`Kind`] of an [`Array`](super::Array) (`LOCKED` true) and of a
/// [`RawArray`](super::RawArray) (`LOCKED` false): `len` elements of `T` in a segment
/// of their own.
pub struct ArrayKind<T, const LOCKED: bool>(PhantomData<fn() -> T>, std::convert::Infallible);

impl<T, const L: bool> fmt::Debug for ArrayKind<T, L> {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {}
    }
}

/// How a new array is filled: `len` elements, copied from `src` (zeroed without).
pub struct ArrayInit<T> {
    len: usize,
    /// Borrowed for the duration of the creating call only (see `Shared::create_array`).
    src: Option<*const [T]>,
}

impl<T> ArrayInit<T> {
    /// `len` elements copied from `src` (`len` of them), zeroed without. The caller keeps
    /// `src` borrowed until the creating call that takes this returns.
    pub(super) fn new(len: usize, src: Option<&[T]>) -> Self {
        ArrayInit {
            len,
            src: src.map(|s| s as *const [T]),
        }
    }
}

impl<T> fmt::Debug for ArrayInit<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayInit")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// What an array handle keeps: its length, validated against the file at open.
#[derive(Debug, Clone, Copy)]
pub struct ArrayLocal {
    len: usize,
}

impl<T: Pod + Schema, const L: bool> Sealed for ArrayKind<T, L> {
    type Area = ArrayHead;
    type Init = ArrayInit<T>;
    type Local = ArrayLocal;
    const SEGMENT: SegmentKind = SegmentKind::Array;
    const HANDOFF: handoff::Kind = if L {
        handoff::Kind::Array
    } else {
        handoff::Kind::RawArray
    };
    const NAME: &'static str = flavor_name(flavor(L));

    fn shape() -> Option<crate::shm::Shape> {
        Some(crate::shm::Shape::of_pod::<T>())
    }

    fn params(init: &ArrayInit<T>) -> Result<[u64; 8]> {
        let mut p = [0u64; 8];
        p[0] = std::mem::size_of::<T>() as u64;
        p[1] = pod_fingerprint::<T>();
        p[2] = init.len as u64;
        p[3] = flavor(L);
        Ok(p)
    }

    fn area_size(init: &ArrayInit<T>) -> Result<usize> {
        if std::mem::size_of::<T>() == 0 {
            return Err(Error::InvalidArgument("an array of a zero-sized type".into()));
        }
        let len = init.len;
        area_size::<T>(len).ok_or_else(|| Error::InvalidArgument(format!("an array of {len} elements is too large")))
    }

    /// The flavor first, then the size the length needs (the type was checked with the
    /// segment's type record).
    fn area_size_in(p: &[u64; 8], name: &str) -> Result<usize> {
        if p[3] != flavor(L) {
            return Err(Error::InvalidArgument(format!(
                "segment {name:?} holds a {}, not a {}",
                flavor_name(p[3]),
                flavor_name(flavor(L))
            )));
        }
        let corrupted = Error::corruption_of(name);
        let len = usize::try_from(p[2]).map_err(|_| corrupted(format!("array length {} is too large", p[2])))?;
        area_size::<T>(len).ok_or_else(|| corrupted(format!("array length {len} is too large")))
    }

    fn init(a: &Area<ArrayHead>, init: ArrayInit<T>) {
        // A fresh file is zeros: a valid RawSeqLock and zeroed elements.
        if let Some(src) = init.src {
            // SAFETY: `src` was made from a slice that the creating call borrows until
            // it returns (see `Shared::create_array`), and `init` runs within that call.
            let src = unsafe { &*src };
            let e = elems_of::<T>(a, init.len);
            for (i, v) in src.iter().enumerate() {
                // Relaxed: published to openers by the Release store of READY.
                e.store(i, *v, Ordering::Relaxed);
            }
        }
    }

    fn attach(_: &Area<ArrayHead>, p: &[u64; 8], _: &str) -> Result<ArrayLocal> {
        // `area_size_in` (open) or `area_size` (create) accepted the length, and the
        // file holds the area it needs.
        Ok(ArrayLocal { len: p[2] as usize })
    }

    fn clone_local(_: &ArrayHead, &local: &ArrayLocal, _: &str) -> Result<ArrayLocal> {
        Ok(local)
    }

    fn debug_fields(_: &ArrayHead, local: &ArrayLocal, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("len", &local.len);
    }
}

impl<T: Pod + Schema, const L: bool> Kind for ArrayKind<T, L> {}

/// A kind whose segment is an array segment: [`ArrayKind`], and `ValueKind` (an array of
/// one). The element code below serves both.
pub trait ArrayLike: Kind + Sealed<Area = ArrayHead, Local = ArrayLocal> {
    /// The element type.
    type Elem: Pod + Schema;

    /// The number of elements of the array with handle-local state `local` (a constant
    /// for a value, so that its accesses at index 0 fold the bounds check away).
    fn len(local: &ArrayLocal) -> usize {
        local.len
    }
}

impl<T: Pod + Schema, const L: bool> ArrayLike for ArrayKind<T, L> {
    type Elem = T;
}

/// The elements of the array mapped at `a`, of length `len`.
fn elems_of<T: Pod + Schema>(a: &Area<ArrayHead>, len: usize) -> Elems<'_, T> {
    // SAFETY: the data starts at DATA_OFFSET (the size of ArrayHead; 8-aligned, the area
    // being 128-aligned) and spans data_size::<T>(len) bytes within the area (checked at
    // create and validate); the mapping lives as long as `a`; only Elems<T> touches it.
    unsafe { Elems::new(a.tail(), len) }
}

/// Creating an array, both flavors.
impl<T: Pod + Schema, const L: bool> Shared<ArrayKind<T, L>> {
    /// Create an array of `len` elements, copied from `src` (zeroed without; `src`, if
    /// given, has `len` elements).
    pub(super) fn create_array(
        name: Option<&str>,
        len: usize,
        src: Option<&[T]>,
        opts: &crate::shm::SegmentOptions,
    ) -> Result<Self> {
        // The pointer is used by `ArrayKind::init` before this call returns, while `src`
        // is still borrowed.
        Self::create_in(name, ArrayInit::new(len, src), opts)
    }
}

/// The element accesses of every array-like kind: both array flavors, and both value
/// flavors (index 0 of an array of one).
impl<K: ArrayLike> Shared<K> {
    #[inline]
    pub(super) fn count(&self) -> usize {
        K::len(self.local())
    }

    #[inline]
    pub(super) fn sl(&self) -> &RawSeqLock {
        &self.area().seq
    }

    #[inline]
    pub(super) fn elems(&self) -> Elems<'_, K::Elem> {
        elems_of(self.mapped(), self.count())
    }

    pub(super) fn index(&self, i: usize) -> std::result::Result<usize, ArrayError> {
        if i < self.count() {
            Ok(i)
        } else {
            Err(ArrayError::OutOfBounds {
                index: i,
                len: self.count(),
            })
        }
    }

    /// Element `i` (below the length): one atomic load, or a seqlock read of the element
    /// (`Err(Torn)` while the array is flagged torn).
    #[inline]
    pub(super) fn read_at(&self, i: usize) -> std::result::Result<K::Elem, Torn<K::Elem>> {
        let e = self.elems();
        if Repr::of::<K::Elem>().is_narrow() {
            // Acquire: pairs with the Release of the element's stores and RMWs.
            Ok(e.load(i, Ordering::Acquire))
        } else {
            self.sl().read(|| e.load(i, Ordering::Relaxed))
        }
    }

    pub(super) fn read_elem(&self, i: usize) -> std::result::Result<K::Elem, ArrayError> {
        let i = self.index(i)?;
        Ok(self.read_at(i).unwrap_or_else(Torn::into_inner))
    }

    /// Write element `i` with the writer lock held: a single atomic store, or a section
    /// (`whole`: a section that writes the whole array, which clears a torn flag).
    #[inline]
    pub(super) fn set_locked(&self, g: &mut SeqWriteGuard<'_>, i: usize, v: K::Elem, whole: bool) {
        let e = self.elems();
        if Repr::of::<K::Elem>().is_narrow() {
            // Release: pairs with the Acquire load in `read_at`.
            e.store(i, v, Ordering::Release);
        } else if whole {
            g.write_all(|| e.store(i, v, Ordering::Relaxed));
        } else {
            g.write(|| e.store(i, v, Ordering::Relaxed));
        }
    }

    /// Write element `i` (below the length): lock-free if narrow and not `lock_narrow`,
    /// else under the writer lock (`whole` as in `set_locked`).
    #[inline]
    pub(super) fn write_at(&self, i: usize, v: K::Elem, lock_narrow: bool, whole: bool) {
        if !lock_narrow && Repr::of::<K::Elem>().is_narrow() {
            // Release: pairs with the Acquire load in `read_at`.
            self.elems().store(i, v, Ordering::Release);
        } else {
            let mut g = self.sl().write_lock();
            self.set_locked(&mut g, i, v, whole);
        }
    }

    pub(super) fn write_elem(&self, i: usize, v: K::Elem, lock_narrow: bool) -> std::result::Result<(), ArrayError> {
        let i = self.index(i)?;
        self.write_at(i, v, lock_narrow, false);
        Ok(())
    }

    pub(super) fn read_all(&self) -> std::result::Result<Vec<K::Elem>, Torn<Vec<K::Elem>>> {
        let e = self.elems();
        let mut buf = Vec::with_capacity(self.count());
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

    pub(super) fn write_all_from(&self, src: &[K::Elem]) -> std::result::Result<(), ArrayError> {
        if src.len() != self.count() {
            return Err(ArrayError::LengthMismatch {
                expected: self.count(),
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
