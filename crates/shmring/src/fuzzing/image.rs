//! What the segment-image fuzz targets share (`broadcast_image`, `segment_image`,
//! `mpmc_image`): a memfd holding exactly the input bytes, a second open file
//! description of it (a second party's liveness lock), and the seed images read back
//! from a real segment with the run-dependent identities zeroed.

use crate::shm::SegmentHeader;
use rustix::fd::{AsRawFd, OwnedFd};
use std::mem::offset_of;

/// A memfd holding exactly `image`.
pub(crate) fn memfd_with(image: &[u8]) -> Option<OwnedFd> {
    use std::io::Write;
    let fd = rustix::fs::memfd_create("shmring-fuzz", rustix::fs::MemfdFlags::CLOEXEC).ok()?;
    let mut file = std::fs::File::from(fd);
    file.write_all(image).ok()?;
    Some(file.into())
}

/// A second open file description of `fd`'s file, so that a second party holds its
/// liveness lock apart from the first (as another process would).
pub(crate) fn reopen(fd: &OwnedFd) -> Option<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// The whole file behind `fd` (a seed image being built), with the creator's identity
/// and the creation time in the segment header zeroed so that the bytes are the same
/// on every run. The caller zeroes its ring's own party identities.
pub(crate) fn read_image(fd: OwnedFd) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::from(fd);
    let len = file.metadata().expect("fstat").len() as usize;
    let mut img = vec![0u8; len];
    file.read_exact_at(&mut img, 0).expect("read the segment back");
    zero(&mut img, offset_of!(SegmentHeader, creator_pid), 4);
    zero(&mut img, offset_of!(SegmentHeader, creator_start_time), 8);
    zero(&mut img, offset_of!(SegmentHeader, created_unix_ns), 8);
    img
}

/// Zero `n` bytes of `img` at `off`.
pub(crate) fn zero(img: &mut [u8], off: usize, n: usize) {
    img[off..off + n].fill(0);
}
