//! The segment that holds one synchronization primitive: created by name or anonymously,
//! opened by name or from a descriptor, validated, and mapped as a typed area.
//!
//! Parameter words of the header used by every primitive:
//!
//! | param | meaning                                                        |
//! |-------|----------------------------------------------------------------|
//! | 0..=5 | the primitive's own (sizes, counts; see each type)              |
//! | 6     | size of the area the primitive needs, checked against the file  |
//! | 7     | inode of the creator's pid namespace (owner words hold TIDs)    |

use crate::error::{Error, Result};
use crate::shm::{Segment, SegmentKind, SegmentOptions, Shape};
use crate::sync::owner::pid_namespace;
use bytemuck::Pod;
use postcard_schema::Schema;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::marker::PhantomData;

/// A mapped segment whose area starts with an `A`.
///
/// `A` must be `#[repr(C)]`, made of atomics and `Pod` data only (valid for any bit
/// pattern, since any peer may write any bytes), with an alignment of at most 128.
#[derive(Debug)]
pub struct Area<A> {
    seg: Segment,
    _a: PhantomData<A>,
}

// SAFETY: the area is made of atomics and `Pod` data reached through the primitive's
// own synchronization; the segment itself is plain memory and a descriptor.
unsafe impl<A: Sync> Send for Area<A> {}
// SAFETY: as above: shared access goes through atomics or the primitive's lock.
unsafe impl<A: Sync> Sync for Area<A> {}

impl<A> Area<A> {
    /// Create a segment (named if `name` is given, else anonymous) whose area of `size`
    /// bytes (at least `size_of::<A>()`) starts with an `A`, let `init` set it up, then
    /// publish it.
    pub(crate) fn create(
        name: Option<&str>,
        kind: SegmentKind,
        mut params: [u64; 8],
        size: usize,
        opts: &SegmentOptions,
        init: impl FnOnce(&Self),
    ) -> Result<Self> {
        if std::mem::align_of::<A>() > 128 {
            return Err(Error::InvalidArgument(format!(
                "a {} needs an alignment of {} > 128 bytes",
                kind.name(),
                std::mem::align_of::<A>()
            )));
        }
        debug_assert!(size >= std::mem::size_of::<A>());
        params[6] = size as u64;
        params[7] = pid_namespace();
        let mut seg = match name {
            Some(n) => Segment::create(n, kind, params, size, opts)?,
            None => Segment::anonymous(kind, params, size, opts)?,
        };
        let area = Area { seg, _a: PhantomData };
        init(&area);
        seg = area.seg;
        seg.publish_ready();
        // A peer that resized the file while we set it up: the object is zeros here.
        seg.check_poisoned()?;
        Ok(Area { seg, _a: PhantomData })
    }

    /// Open the named segment `name` (checking the shape `opts` carries, if any), which
    /// must hold a `kind` whose area has the size
    /// `need` computes from the parameters (and the segment's name, for messages), at
    /// least `size_of::<A>()`; `need` also refuses parameters it does not accept.
    pub(crate) fn open(
        name: &str,
        kind: SegmentKind,
        opts: &SegmentOptions,
        need: impl FnOnce(&[u64; 8], &str) -> Result<usize>,
    ) -> Result<Self> {
        let seg = Segment::open(name, kind, opts)?;
        Self::validate(seg, kind, need)
    }

    /// Map a segment received as a descriptor (inherited or over `SCM_RIGHTS`); `opts`
    /// carries the shape to check, if any.
    pub(crate) fn from_fd(
        fd: OwnedFd,
        kind: SegmentKind,
        opts: &SegmentOptions,
        need: impl FnOnce(&[u64; 8], &str) -> Result<usize>,
    ) -> Result<Self> {
        let seg = Segment::from_fd(fd, kind, opts)?;
        Self::validate(seg, kind, need)
    }

    fn validate(seg: Segment, kind: SegmentKind, need: impl FnOnce(&[u64; 8], &str) -> Result<usize>) -> Result<Self> {
        let p = seg.info().params;
        let name = seg.display_name().to_owned();
        let size = need(&p, &name)?;
        debug_assert!(size >= std::mem::size_of::<A>());
        if p[6] != size as u64 || seg.area_len() < size {
            return Err(Error::Corrupted {
                name,
                what: format!(
                    "{} area of {} bytes (header says {}, file holds {}), this build needs {}",
                    kind.name(),
                    p[6],
                    p[6],
                    seg.area_len(),
                    size
                ),
            });
        }
        let ns = pid_namespace();
        if p[7] != ns {
            return Err(Error::InvalidArgument(format!(
                "{} {name:?} was created in another pid namespace (inode {} here, {} there): \
                 its owner records are thread ids, which only mean something within one namespace",
                kind.name(),
                ns,
                p[7]
            )));
        }
        Ok(Area { seg, _a: PhantomData })
    }

    /// The bytes of the area after the `A` (an array's elements): `size_of::<A>()` from
    /// the 128-byte aligned start of the area, within the size validated at create or
    /// open.
    pub(crate) fn tail(&self) -> *mut u8 {
        self.seg.area_ptr().wrapping_add(std::mem::size_of::<A>())
    }

    /// The primitive.
    pub(crate) fn get(&self) -> &A {
        // SAFETY: the area is at least size_of::<A>() bytes (checked at create and
        // validate), 128-byte aligned (Segment::area_ptr) with align_of::<A>() <= 128,
        // and A is valid for any bit pattern; the mapping lives as long as `self`.
        unsafe { &*(self.seg.area_ptr() as *const A) }
    }

    /// Another mapping of the same segment (for another owner in this process).
    pub(crate) fn try_clone(&self) -> Result<Self> {
        Ok(Area {
            seg: self.seg.reopen()?,
            _a: PhantomData,
        })
    }

    /// Whether a peer resized the segment under this mapping (see
    /// [`Segment::check_resized`]; one `fstat`).
    pub(crate) fn is_poisoned(&self) -> bool {
        self.seg.check_resized()
    }

    /// Whether this mapping is already known to be poisoned (the flag alone: no
    /// `fstat`, so a grow not yet checked for is missed). Zeros replace the mapping
    /// only together with this flag.
    pub(crate) fn poison_flag(&self) -> bool {
        self.seg.is_poisoned()
    }

    /// `Err(Corrupted)` if [`Area::is_poisoned`].
    pub(crate) fn check_poisoned(&self) -> Result<()> {
        self.seg.check_poisoned()
    }

    /// The segment's name, `None` if anonymous.
    pub(crate) fn name(&self) -> Option<&str> {
        self.seg.name()
    }

    /// The segment's name for messages (`<anonymous>` if it has none).
    pub(crate) fn display_name(&self) -> &str {
        self.seg.display_name()
    }

    /// The header's parameter words (validated against the file at open).
    pub(crate) fn params(&self) -> &[u64; 8] {
        &self.seg.info().params
    }

    /// Keep a named segment when this creating handle drops.
    pub(crate) fn keep(&mut self) {
        self.seg.keep();
    }
}

impl<A> AsFd for Area<A> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.seg.as_fd()
    }
}

/// The fingerprint of the shape of a `Pod` type `T` (see [`Shape::of_pod`]), kept in
/// header word 1 of a typed primitive for tools; the check itself reads the segment's
/// type record.
pub(crate) fn pod_fingerprint<T: Pod + Schema>() -> u64 {
    Shape::of_pod::<T>().fingerprint()
}

/// The header parameters of a primitive holding a `T`: 0 its size, 1 its shape's
/// fingerprint.
pub(crate) fn typed_params<T: Pod + Schema>() -> [u64; 8] {
    let mut p = [0u64; 8];
    p[0] = std::mem::size_of::<T>() as u64;
    p[1] = pod_fingerprint::<T>();
    p
}
