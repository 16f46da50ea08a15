//! Initialization of a named segment between its creation and READY: the creator's
//! stamp (who is creating it, written before anything else) and the opener's test for a
//! file that no live process is initializing (nobody holds
//! [`INIT_SLOT`](super::liveness::INIT_SLOT), and the file has not changed for
//! [`INIT_GRACE`]), which ends the wait at once with `Error::NoLiveCreator`.

use super::header::{HEADER_SIZE, LAYOUT_VERSION, MAGIC, SegmentKind, init_state};
use super::liveness::{self, INIT_SLOT, self_identity};
use crate::{Error, Result};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long after its last change a not-yet-initialized file whose initialization lock
/// nobody holds is still given the benefit of the doubt: the creator takes the lock
/// right after it creates the file, so only that gap (microseconds, unless the creator
/// is descheduled) needs covering.
pub(super) const INIT_GRACE: Duration = Duration::from_millis(250);

/// Write the first header fields of a file just created — magic, version, kind, sizes,
/// the creator's pid, start time and creation time, INITIALIZING — with `pwrite` (the file
/// is still empty, nothing can be mapped yet), so that from its first bytes the file
/// says who is creating it.
pub(super) fn stamp_creator(fd: BorrowedFd<'_>, kind: SegmentKind, total: u64, name: &str) -> Result<()> {
    let (pid, start) = self_identity();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut b = [0u8; HEADER_SIZE];
    let mut put = |o: usize, v: &[u8]| b[o..o + v.len()].copy_from_slice(v);
    // Offsets of the #[repr(C)] SegmentHeader fields (as inspect::parse_header reads them).
    put(0, &MAGIC.to_ne_bytes());
    put(8, &LAYOUT_VERSION.to_ne_bytes());
    put(12, &(kind as u32).to_ne_bytes());
    put(16, &total.to_ne_bytes());
    put(32, &init_state::INITIALIZING.to_ne_bytes());
    put(40, &pid.to_ne_bytes());
    put(48, &start.to_ne_bytes());
    put(56, &now.to_ne_bytes());
    let mut done = 0;
    while done < HEADER_SIZE {
        match rustix::io::pwrite(fd, &b[done..], done as u64) {
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Error::io("pwrite", name, e)),
        }
    }
    Ok(())
}

/// For a file that is not READY: `Some(what was found)` if no live process is
/// initializing it — nobody holds the initialization lock (taken by a creator right
/// after it creates the file, released by the kernel if it dies) and the file has
/// not changed for [`INIT_GRACE`]. `None`: keep waiting.
pub(super) fn no_live_creator(fd: BorrowedFd<'_>, size: u64) -> Result<Option<String>> {
    match liveness::slot_held_by_other(fd, INIT_SLOT) {
        Ok(false) => {}
        // Held (a live creator), or unknown: wait, as before.
        Ok(true) | Err(_) => return Ok(None),
    }
    let st = rustix::fs::fstat(fd).map_err(|e| Error::io("fstat", "", e))?;
    let changed = |s: i64, ns: i64| UNIX_EPOCH + Duration::new(s.max(0) as u64, ns.clamp(0, 999_999_999) as u32);
    #[allow(clippy::unnecessary_cast)] // the stat fields' types differ between targets
    let last =
        changed(st.st_ctime as i64, st.st_ctime_nsec as i64).max(changed(st.st_mtime as i64, st.st_mtime_nsec as i64));
    match SystemTime::now().duration_since(last) {
        Ok(age) if age >= INIT_GRACE => {}
        _ => return Ok(None),
    }
    let mut head = [0u8; HEADER_SIZE];
    let got = if size >= HEADER_SIZE as u64 {
        rustix::io::pread(fd, &mut head, 0).unwrap_or(0)
    } else {
        0
    };
    let what = if size == 0 {
        "empty file".to_owned()
    } else if got < HEADER_SIZE {
        format!("{size} bytes, too short for a header")
    } else {
        let magic = u64::from_ne_bytes(head[..8].try_into().expect("8 bytes"));
        let pid = u32::from_ne_bytes(head[40..44].try_into().expect("4 bytes"));
        match (magic == MAGIC, pid) {
            (true, 0) => format!("{size} bytes, magic written but no creator recorded"),
            (true, pid) => format!("{size} bytes, created by pid {pid}, which no longer initializes it"),
            (false, _) if head.iter().all(|&b| b == 0) => format!("{size} bytes of zeros"),
            (false, _) => format!("{size} bytes, not a shmring header"),
        }
    };
    Ok(Some(what))
}
