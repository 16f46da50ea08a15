//! The reference ring (`ref-ring`): a minimal hand-written SPSC byte ring in shared
//! memory, the practical limit of any ring between two processes on this hardware,
//! measured by the same roles (producer, consumer, ping, pong) as the transports.
//!
//! What it has: a fixed 8-byte length prefix per record (records padded to 8 bytes, a
//! payload may wrap around the end of the data area), the tail and the head each on a
//! cache line of its own, each side caching the other's index and reloading it only
//! when its cached copy says full or empty, a busy-spin with a pause hint on both sides.
//! What it lacks, on purpose: liveness, corruption checks beyond the one bound that
//! keeps a bad length from reading outside the mapping, timeouts, sleeping, batching of
//! the index stores. The end of the stream is a record of length [`END`], written when
//! the sending end drops.

use crate::{Result, err};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

/// Name of the reference ring's rows.
pub(crate) const REF_RING: &str = "ref-ring";

/// One cache line (two on parts that prefetch pairs of lines).
const LINE: usize = 128;
/// The control area: the tail's line, then the head's.
const CONTROL: usize = 2 * LINE;
/// The length prefix of the end-of-stream record.
const END: u64 = u64::MAX;

/// Parent side: the two descriptors of one link (the same memfd twice), with a data
/// area of `capacity` bytes rounded up to a power of two (at least 4 KiB).
pub(crate) fn link(capacity: usize) -> Result<(OwnedFd, OwnedFd)> {
    use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
    let cap = capacity.max(4096).next_power_of_two();
    let fd =
        memfd_create("shmring-bench-ref-ring", MemfdFlags::CLOEXEC).map_err(|e| err(format!("memfd_create: {e}")))?;
    ftruncate(&fd, (CONTROL + cap) as u64).map_err(|e| err(format!("ftruncate: {e}")))?;
    let rx = fd.try_clone().map_err(|e| err(format!("dup: {e}")))?;
    Ok((fd, rx))
}

/// One side's mapping of the ring.
#[derive(Debug)]
struct Map {
    map: memmap2::MmapRaw,
    /// Size of the data area (a power of two).
    cap: u64,
}

impl Map {
    /// Map the link's memfd: prefaulted, and locked in RAM under `--mlock`.
    fn new(fd: OwnedFd) -> Result<Self> {
        let file = std::fs::File::from(fd);
        let len = file.metadata().map_err(|e| err(format!("fstat: {e}")))?.len() as usize;
        let cap = len.saturating_sub(CONTROL);
        if !cap.is_power_of_two() || cap < 4096 {
            return Err(err(format!("ref-ring of {len} bytes has no power-of-two data area")));
        }
        let map = memmap2::MmapOptions::new()
            .len(len)
            .populate()
            .map_raw(&file)
            .map_err(|e| err(format!("mmap of the ref-ring: {e}")))?;
        if crate::transports::mlock() {
            map.lock().map_err(|e| err(format!("mlock of the ref-ring: {e}")))?;
        }
        Ok(Map { map, cap: cap as u64 })
    }

    /// The tail (first line) or the head (second line).
    fn index(&self, line: usize) -> &AtomicU64 {
        // SAFETY: the mapping is at least CONTROL bytes, page-aligned (so each line's
        // start is aligned for AtomicU64), lives as long as `self`, and these words are
        // only accessed through atomics, here and in the peer.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(line * LINE).cast::<u64>()) }
    }

    /// Copy `src` into the data area at ring position `pos` (wrapping).
    fn write(&self, pos: u64, src: &[u8]) {
        let off = (pos & (self.cap - 1)) as usize;
        let first = src.len().min(self.cap as usize - off);
        let data = self.map.as_mut_ptr().wrapping_add(CONTROL);
        // SAFETY: off + first <= cap and src.len() - first <= cap (a record is at most
        // the data area), so both copies stay inside the data area; the producer owns
        // these bytes (between the published tail and the head plus cap) until it
        // publishes them with the Release store of the tail.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), data.add(off), first);
            std::ptr::copy_nonoverlapping(src.as_ptr().add(first), data, src.len() - first);
        }
    }

    /// Copy the data area at ring position `pos` (wrapping) into `dst`.
    fn read(&self, pos: u64, dst: &mut [u8]) {
        let off = (pos & (self.cap - 1)) as usize;
        let first = dst.len().min(self.cap as usize - off);
        let data = self.map.as_ptr().wrapping_add(CONTROL);
        // SAFETY: as in `write`, both copies stay inside the data area (the caller
        // checked that a record fits it); the consumer owns these bytes (published by
        // the Acquire load of the tail) until it releases them with the head store.
        unsafe {
            std::ptr::copy_nonoverlapping(data.add(off), dst.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, dst.as_mut_ptr().add(first), dst.len() - first);
        }
    }
}

/// Bytes of a record of `len` payload bytes: the prefix and the payload padded to 8.
fn record(len: u64) -> u64 {
    len.div_ceil(8).saturating_mul(8).saturating_add(8)
}

/// The sending end: writes the end-of-stream record when dropped.
#[derive(Debug)]
pub(crate) struct RefTx {
    m: Map,
    tail: u64,
    cached_head: u64,
}

impl RefTx {
    /// The sending end of a link's descriptor.
    pub(crate) fn open(fd: OwnedFd) -> Result<Self> {
        Ok(RefTx {
            m: Map::new(fd)?,
            tail: 0,
            cached_head: 0,
        })
    }

    /// Spin until `need` bytes are free.
    #[inline]
    fn reserve(&mut self, need: u64) {
        while self.tail + need - self.cached_head > self.m.cap {
            // Acquire: pairs with the Release store of the head in RefRx::recv, so the
            // consumer's reads of the space finish before we overwrite it.
            self.cached_head = self.m.index(1).load(Ordering::Acquire);
            if self.tail + need - self.cached_head > self.m.cap {
                std::hint::spin_loop();
            }
        }
    }

    /// Send `msg`, spinning while the ring is full.
    #[inline]
    pub(crate) fn send(&mut self, msg: &[u8]) -> Result<()> {
        let need = record(msg.len() as u64);
        if need > self.m.cap {
            return Err(err(format!("a {}-byte message does not fit the ref-ring", msg.len())));
        }
        self.reserve(need);
        self.m.write(self.tail, &(msg.len() as u64).to_le_bytes());
        self.m.write(self.tail + 8, msg);
        self.tail += need;
        // Release: pairs with the Acquire load of the tail in RefRx::recv, publishing
        // the record.
        self.m.index(0).store(self.tail, Ordering::Release);
        Ok(())
    }
}

impl Drop for RefTx {
    fn drop(&mut self) {
        self.reserve(8);
        self.m.write(self.tail, &END.to_le_bytes());
        self.tail += 8;
        // Release: as in send.
        self.m.index(0).store(self.tail, Ordering::Release);
    }
}

/// The receiving end.
#[derive(Debug)]
pub(crate) struct RefRx {
    m: Map,
    head: u64,
    cached_tail: u64,
}

impl RefRx {
    /// The receiving end of a link's descriptor.
    pub(crate) fn open(fd: OwnedFd) -> Result<Self> {
        Ok(RefRx {
            m: Map::new(fd)?,
            head: 0,
            cached_tail: 0,
        })
    }

    /// Receive the next message into `buf`, spinning while the ring is empty; `None`
    /// at the end of the stream.
    #[inline]
    pub(crate) fn recv(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        while self.head == self.cached_tail {
            // Acquire: pairs with the Release store of the tail in RefTx::send.
            self.cached_tail = self.m.index(0).load(Ordering::Acquire);
            if self.head == self.cached_tail {
                std::hint::spin_loop();
            }
        }
        let mut prefix = [0u8; 8];
        self.m.read(self.head, &mut prefix);
        let len = u64::from_le_bytes(prefix);
        if len == END {
            return Ok(None);
        }
        // The one check: a length that would read past the published records.
        if record(len) > self.cached_tail.saturating_sub(self.head) {
            return Err(err(format!("ref-ring record of {len} bytes overruns the tail")));
        }
        let n = len as usize;
        if buf.len() != n {
            buf.resize(n, 0);
        }
        self.m.read(self.head + 8, buf);
        self.head += record(len);
        // Release: pairs with the Acquire load of the head in RefTx::reserve, handing
        // the space back after our reads of it.
        self.m.index(1).store(self.head, Ordering::Release);
        Ok(Some(n))
    }
}
