//! The escape hatch of the type check of typed objects ([`Value`](crate::Value),
//! [`Array`](crate::Array), [`Mutex`](super::Mutex), [`Condition`](super::Condition)):
//! opening one without comparing the shape of `T` with the creator's.

use super::handle::{Kind, Shared};
use super::shared::Area;
use crate::error::Result;
use crate::shm::SegmentOptions;
use rustix::fd::OwnedFd;

impl<K: Kind> Shared<K> {
    /// Open the named object `name` **without checking** the type it was created for
    /// (see [`shm::shape`](crate::shm::shape)); every other check (kind, flavor, sizes
    /// against the file) still holds.
    ///
    /// For a user who knows better than the type check: a type renamed, or whose
    /// fields were renamed, with the same layout. The risk: the bytes of the creator's
    /// type are read as a `T` of the same size (a `Pod` type, so never undefined
    /// behaviour, but garbage values if the layouts differ).
    pub fn open_unchecked(name: &str, opts: &SegmentOptions) -> Result<Self> {
        Self::attached(Area::open(name, K::SEGMENT, &opts.typed(None), K::area_size_in)?)
    }

    /// [`from_fd`](Self::from_fd) **without checking** the type (see
    /// [`open_unchecked`](Self::open_unchecked)).
    pub fn from_fd_unchecked(fd: OwnedFd) -> Result<Self> {
        Self::attached(Area::from_fd(
            fd,
            K::SEGMENT,
            &SegmentOptions::default(),
            K::area_size_in,
        )?)
    }
}
