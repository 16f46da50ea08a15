//! The Rust locks of the lock rows: shmring's robust `Mutex<u64>` and a process-shared
//! `pthread_mutex_t` (plain or robust) with its counter in an anonymous segment, behind
//! one small trait.

use crate::args::LockKind;
use crate::{Result, err};
use shmring::shm::{Segment, SegmentKind, SegmentOptions};
use shmring::sync::Mutex;
use std::mem::{MaybeUninit, offset_of, size_of};
use std::os::fd::{AsFd, OwnedFd};

/// A lock guarding the shared counter.
pub(crate) trait CounterLock {
    /// Lock, apply `f` to the counter, unlock.
    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> Result<R>;
}

impl CounterLock for Mutex<u64> {
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> Result<R> {
        match self.lock() {
            Ok(mut g) => Ok(f(&mut g)),
            Err(_) => Err(err("a holder of the shmring mutex died")),
        }
    }
}

/// The area of a pthread lock's segment.
#[repr(C)]
struct PthreadArea {
    mutex: libc::pthread_mutex_t,
    count: u64,
}

/// A process-shared pthread mutex and its counter in an anonymous `Raw` segment.
pub(crate) struct PthreadLock {
    seg: Segment,
}

/// Parameter 0 of a pthread lock's segment: plain or robust (so that a child cannot map
/// one as the other).
fn pthread_param(robust: bool) -> u64 {
    if robust { 2 } else { 1 }
}

impl PthreadLock {
    /// A new unlocked mutex (robust or not) with a zero counter.
    pub(crate) fn create(robust: bool) -> Result<Self> {
        let mut params = [0u64; 8];
        params[0] = pthread_param(robust);
        let seg = Segment::anonymous(
            SegmentKind::Raw,
            params,
            size_of::<PthreadArea>(),
            &SegmentOptions::default(),
        )?;
        let mut lock = PthreadLock { seg };
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        let check = |what: &str, rc: libc::c_int| {
            if rc == 0 {
                Ok(())
            } else {
                Err(err(format!("{what}: {}", std::io::Error::from_raw_os_error(rc))))
            }
        };
        // SAFETY: `attr` is valid for writes of a pthread_mutexattr_t; init fills it.
        check("pthread_mutexattr_init", unsafe {
            libc::pthread_mutexattr_init(attr.as_mut_ptr())
        })?;
        let attr_ptr = attr.as_mut_ptr();
        let set = || -> Result<()> {
            // SAFETY: `attr_ptr` points to an attribute object initialized above.
            check("pthread_mutexattr_setpshared", unsafe {
                libc::pthread_mutexattr_setpshared(attr_ptr, libc::PTHREAD_PROCESS_SHARED)
            })?;
            // SAFETY: as above.
            check("pthread_mutexattr_settype", unsafe {
                libc::pthread_mutexattr_settype(attr_ptr, libc::PTHREAD_MUTEX_NORMAL)
            })?;
            if robust {
                // SAFETY: as above.
                check("pthread_mutexattr_setrobust", unsafe {
                    libc::pthread_mutexattr_setrobust(attr_ptr, libc::PTHREAD_MUTEX_ROBUST)
                })?;
            }
            // SAFETY: the mutex pointer is in the area of a mapping of at least
            // size_of::<PthreadArea>() bytes that `lock` keeps, aligned (128-byte aligned
            // area, mutex at offset 0), and nobody else maps the segment yet (it is not
            // published); the attribute object is initialized.
            check("pthread_mutex_init", unsafe {
                libc::pthread_mutex_init(lock.mutex(), attr_ptr)
            })
        };
        let r = set();
        // SAFETY: the attribute object was initialized and is not used after this.
        unsafe { libc::pthread_mutexattr_destroy(attr_ptr) };
        r?;
        lock.seg.publish_ready();
        Ok(lock)
    }

    /// Map the lock made by [`PthreadLock::create`] in another process.
    pub(crate) fn from_fd(fd: OwnedFd, robust: bool) -> Result<Self> {
        let seg = Segment::from_fd(fd, SegmentKind::Raw, &SegmentOptions::default())?;
        if seg.area_len() < size_of::<PthreadArea>() || seg.info().params[0] != pthread_param(robust) {
            return Err(err("the descriptor is not a pthread lock of this kind"));
        }
        Ok(PthreadLock { seg })
    }

    /// Another handle on the segment's descriptor, for a child.
    pub(super) fn fd(&self) -> Result<OwnedFd> {
        Ok(self.seg.as_fd().try_clone_to_owned()?)
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.seg.area_ptr().cast()
    }

    pub(super) fn count(&self) -> *mut u64 {
        self.seg.area_ptr().wrapping_add(offset_of!(PthreadArea, count)).cast()
    }

    #[cold]
    #[inline(never)]
    fn failed(what: &str, rc: libc::c_int) -> crate::Error {
        if rc == libc::EOWNERDEAD {
            err(format!("{what}: a holder of the pthread mutex died"))
        } else {
            err(format!("{what}: {}", std::io::Error::from_raw_os_error(rc)))
        }
    }
}

impl CounterLock for PthreadLock {
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> Result<R> {
        // SAFETY: the mutex was initialized process-shared by the creator before the
        // segment was published, and lives in the mapping `self` keeps.
        let rc = unsafe { libc::pthread_mutex_lock(self.mutex()) };
        if rc != 0 {
            return Err(Self::failed("pthread_mutex_lock", rc));
        }
        // SAFETY: the counter is in bounds and 8-byte aligned in the mapping, and every
        // party touches it only while holding the mutex, which this thread holds.
        let r = f(unsafe { &mut *self.count() });
        // SAFETY: this thread holds the mutex (locked above).
        let rc = unsafe { libc::pthread_mutex_unlock(self.mutex()) };
        if rc != 0 {
            return Err(Self::failed("pthread_mutex_unlock", rc));
        }
        Ok(r)
    }
}

/// One lock of each Rust kind, made by the parent.
pub(super) enum Made {
    Shmring(Mutex<u64>),
    Pthread(PthreadLock),
}

impl Made {
    pub(super) fn new(kind: LockKind) -> Result<Self> {
        Ok(match kind {
            LockKind::Shmring => Made::Shmring(Mutex::anonymous(0)?),
            LockKind::Pthread => Made::Pthread(PthreadLock::create(false)?),
            LockKind::PthreadRobust => Made::Pthread(PthreadLock::create(true)?),
            LockKind::Python => return Err(err("the Python lock is made by python3")),
        })
    }

    pub(super) fn fd(&self) -> Result<OwnedFd> {
        match self {
            Made::Shmring(m) => Ok(m.as_fd().try_clone_to_owned()?),
            Made::Pthread(p) => p.fd(),
        }
    }

    pub(super) fn count(&self) -> Result<u64> {
        match self {
            Made::Shmring(m) => m.with(|c| *c),
            Made::Pthread(p) => p.with(|c| *c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pthread_locks_count_across_threads() {
        for robust in [false, true] {
            let l = std::sync::Arc::new(PthreadLock::create(robust).unwrap());
            let ts: Vec<_> = (0..2)
                .map(|_| {
                    let l = l.clone();
                    std::thread::spawn(move || {
                        for _ in 0..10_000 {
                            l.with(|c| *c += 1).unwrap();
                        }
                    })
                })
                .collect();
            for t in ts {
                t.join().unwrap();
            }
            assert_eq!(l.with(|c| *c).unwrap(), 20_000);
            let other = PthreadLock::from_fd(l.fd().unwrap(), robust).unwrap();
            assert_eq!(other.with(|c| *c).unwrap(), 20_000);
            assert!(PthreadLock::from_fd(l.fd().unwrap(), !robust).is_err());
        }
    }
}
