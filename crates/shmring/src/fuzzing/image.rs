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

/// Inputs longer than this are cut.
pub(crate) const MAX_IMAGE: usize = 1 << 20;

/// Run `open` over `data` (cut to [`MAX_IMAGE`]) as it is, then over `repair(data)`
/// if that differs: random bytes rarely pass the header checks, so each input also
/// reaches the ring's own checks.
pub(crate) fn raw_then_repaired(data: &[u8], open: fn(&[u8]), repair: fn(&[u8]) -> Vec<u8>) {
    let data = &data[..data.len().min(MAX_IMAGE)];
    open(data);
    let fixed = repair(data);
    if fixed != data {
        open(&fixed);
    }
}

/// The little-endian value of `width` bytes at `off` (bytes past the end read as zero).
pub(crate) fn get(image: &[u8], off: usize, width: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, byte) in b.iter_mut().take(width).enumerate() {
        *byte = image.get(off + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

/// Store `v` (truncated to `width` bytes) at `off`, if it fits.
pub(crate) fn put(image: &mut [u8], off: usize, width: usize, v: u64) {
    if let Some(dst) = image.get_mut(off..off + width) {
        dst.copy_from_slice(&v.to_le_bytes()[..width]);
    }
}

/// The capacity a repaired image gets: `raw` (the image's own) if it is a power of two
/// in `min..=max`, else the largest power of two not above the `room` the image has
/// for its records, clamped to `min..=max` (`min` a power of two).
pub(crate) fn repaired_capacity(raw: u64, room: usize, min: u64, max: u64) -> u64 {
    if raw.is_power_of_two() && (min..=max).contains(&raw) {
        return raw;
    }
    let room = (room as u64).clamp(min, max);
    1 << (63 - room.leading_zeros())
}

/// Force `img`'s segment header valid for a segment of `kind` filling `img`: magic,
/// layout version, kind, total size, area offset, READY, no flags. The ring's
/// parameters are the caller's.
pub(crate) fn repair_header(img: &mut [u8], kind: crate::shm::SegmentKind) {
    use crate::shm::{HEADER_SIZE, LAYOUT_VERSION, MAGIC};
    let total = img.len() as u64;
    put(img, offset_of!(SegmentHeader, magic), 8, MAGIC);
    put(img, offset_of!(SegmentHeader, version), 4, u64::from(LAYOUT_VERSION));
    put(img, offset_of!(SegmentHeader, kind), 4, kind as u64);
    put(img, offset_of!(SegmentHeader, total_size), 8, total);
    put(img, offset_of!(SegmentHeader, area_offset), 8, HEADER_SIZE as u64);
    put(img, offset_of!(SegmentHeader, init_state), 4, 2);
    put(img, offset_of!(SegmentHeader, flags), 4, 0);
}
