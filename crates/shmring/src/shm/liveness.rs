//! Liveness of the parties attached to a segment, carried by kernel-released locks.
//!
//! Each role of a structure (a ring's producer, its consumer, ...) owns one *slot*: a
//! one-byte open-file-description lock (`F_OFD_SETLK`) at offset `2^40 + slot` of the
//! segment's file, far beyond any data. The party takes it through its own open file
//! description when it attaches and holds it for as long as that description is open.
//! The kernel releases it when the last descriptor of the description closes — on a
//! clean exit, on `SIGKILL`, on a crash — so "is the slot locked by someone else" is a
//! liveness test that a recycled pid cannot fool and that works across pid namespaces.
//! A descriptor inherited by a child or sent over `SCM_RIGHTS` shares the description,
//! and with it the lock: that is how an end is handed to another process.
//!
//! Pid and start time are also recorded in the structure for display; they are never
//! trusted for liveness.
//!
//! # References
//! - `fcntl(2)`, "Open file description locks (non-POSIX)".

use rustix::fd::{AsRawFd, BorrowedFd};
use std::io;

/// Offset of slot 0's lock byte.
const LOCK_BASE: i64 = 1 << 40;

/// The slot a creator holds from the moment it creates a named segment's file until it
/// publishes READY: an opener that finds the file not READY and this slot free knows
/// that no live process is initializing it (see `Segment::open`). Far above the slots
/// of any structure's roles.
pub const INIT_SLOT: u32 = u32::MAX;

fn flock_for(slot: u32, kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct for which all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = LOCK_BASE + i64::from(slot);
    fl.l_len = 1;
    fl
}

/// Take slot `slot` through the open file description of `fd`.
///
/// `Ok(true)`: the lock is now held by this description (also when it already was).
/// `Ok(false)`: another open file description holds it — another live party.
pub fn try_lock_slot(fd: BorrowedFd<'_>, slot: u32) -> io::Result<bool> {
    let fl = flock_for(slot, libc::F_WRLCK as libc::c_short);
    // SAFETY: `fd` is a valid open descriptor for the duration of the call, and `fl` is
    // a valid, initialized `flock` that outlives it.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

/// Release slot `slot` if this description holds it.
pub fn unlock_slot(fd: BorrowedFd<'_>, slot: u32) {
    let fl = flock_for(slot, libc::F_UNLCK as libc::c_short);
    // SAFETY: as in `try_lock_slot`.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
}

/// Whether an open file description other than `fd`'s holds slot `slot`.
pub fn slot_held_by_other(fd: BorrowedFd<'_>, slot: u32) -> io::Result<bool> {
    let mut fl = flock_for(slot, libc::F_WRLCK as libc::c_short);
    // SAFETY: `fd` is valid for the call; `fl` is a valid `flock` the kernel may write.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// The start time of process `pid` in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), or `None` if the process does not exist.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past the
    // last ')' and count from field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This process's pid and start time.
pub fn self_identity() -> (u32, u64) {
    let pid = std::process::id();
    (pid, process_start_time(pid).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;

    #[test]
    #[cfg_attr(miri, ignore)]
    fn slot_locks_between_descriptions() {
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let other = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        assert!(!slot_held_by_other(other.as_fd(), 3).unwrap());
        assert!(try_lock_slot(fd.as_fd(), 3).unwrap());
        assert!(try_lock_slot(fd.as_fd(), 3).unwrap(), "re-lock by the holder");
        assert!(slot_held_by_other(other.as_fd(), 3).unwrap());
        assert!(!try_lock_slot(other.as_fd(), 3).unwrap());
        assert!(!slot_held_by_other(fd.as_fd(), 3).unwrap(), "own lock");
        drop(fd);
        assert!(!slot_held_by_other(other.as_fd(), 3).unwrap(), "released on close");
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn start_time_of_self() {
        let (pid, st) = self_identity();
        assert!(st > 0);
        assert_eq!(process_start_time(pid), Some(st));
        assert_eq!(process_start_time(u32::MAX - 1), None);
    }
}
