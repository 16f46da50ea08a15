//! Segment parameters of a [`SegmentKind::Semaphore`] (see also `shared.rs`):
//!
//! | param | meaning                                                        |
//! |-------|----------------------------------------------------------------|
//! | 0     | `1` a [`Semaphore`], `2` a [`BoundedSemaphore`]                 |
//! | 1     | the bound of a `BoundedSemaphore` (its initial value), else `0` |

use super::*;
use crate::error::{Error, Result};
use crate::handoff;
use crate::shm::SegmentKind;
use crate::sync::handle::{Kind, Sealed, Shared, Valued};
use crate::sync::shared::Area;
use std::fmt;

const UNBOUNDED_TAG: u64 = 1;
const BOUNDED_TAG: u64 = 2;

/// The [`Kind`] of a [`Semaphore`] (`BOUNDED` false) and of a [`BoundedSemaphore`]
/// (`BOUNDED` true): a [`RawSemaphore`] in a segment of its own.
#[derive(Debug)]
pub enum SemaphoreKind<const BOUNDED: bool> {}

/// What a semaphore handle keeps: the limit read from the header at open (its private
/// copy; the words are cross-checked against it then).
#[derive(Debug, Clone, Copy)]
pub struct SemaphoreLocal {
    limit: Limit,
}

fn params(limit: Limit) -> [u64; 8] {
    let mut p = [0u64; 8];
    match limit {
        Limit::Unbounded => p[0] = UNBOUNDED_TAG,
        Limit::Bound(b) => (p[0], p[1]) = (BOUNDED_TAG, u64::from(b)),
    }
    p
}

/// The limit the parameters record, checked against the type the caller opens as.
fn parse(p: &[u64; 8], bounded: bool, name: &str) -> Result<Limit> {
    let what = |b: bool| if b { "bounded semaphore" } else { "semaphore" };
    let limit = match (p[0], u32::try_from(p[1])) {
        (UNBOUNDED_TAG, Ok(0)) => Limit::Unbounded,
        (BOUNDED_TAG, Ok(b)) => Limit::Bound(b),
        _ => {
            return Err(Error::Corrupted {
                name: name.to_owned(),
                what: format!("semaphore parameters {:#x}, {:#x}", p[0], p[1]),
            });
        }
    };
    let is_bounded = matches!(limit, Limit::Bound(_));
    if is_bounded != bounded {
        return Err(Error::WrongKind {
            name: name.to_owned(),
            expected: what(bounded),
            found: what(is_bounded).to_owned(),
        });
    }
    Ok(limit)
}

impl<const BOUNDED: bool> Sealed for SemaphoreKind<BOUNDED> {
    type Area = RawSemaphore;
    type Init = u32;
    /// The limit read from the header at open (the handle's private copy).
    type Local = SemaphoreLocal;
    const SEGMENT: SegmentKind = SegmentKind::Semaphore;
    const HANDOFF: handoff::Kind = if BOUNDED {
        handoff::Kind::BoundedSemaphore
    } else {
        handoff::Kind::Semaphore
    };
    const NAME: &'static str = if BOUNDED { "BoundedSemaphore" } else { "Semaphore" };

    fn params(&value: &u32) -> Result<[u64; 8]> {
        Ok(params(if BOUNDED { Limit::Bound(value) } else { Limit::Unbounded }))
    }

    fn init(a: &Area<RawSemaphore>, value: u32) {
        a.get().init(value, BOUNDED);
    }

    fn attach(a: &Area<RawSemaphore>, p: &[u64; 8], name: &str) -> Result<SemaphoreLocal> {
        let raw = a.get();
        let limit = parse(p, BOUNDED, name)?;
        // The words must say what the header says (they never change after setup).
        if raw.limit() != Some(limit) {
            return Err(Error::Corrupted {
                name: name.to_owned(),
                what: format!("semaphore state records limit {:?}, the header {limit:?}", raw.limit()),
            });
        }
        Ok(SemaphoreLocal { limit })
    }

    fn clone_local(_: &RawSemaphore, &local: &SemaphoreLocal, _: &str) -> Result<SemaphoreLocal> {
        Ok(local)
    }

    fn debug_fields(raw: &RawSemaphore, local: &SemaphoreLocal, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("value", &raw.value()).field("limit", &local.limit);
    }
}

impl<const BOUNDED: bool> Kind for SemaphoreKind<BOUNDED> {}
impl<const BOUNDED: bool> Valued for SemaphoreKind<BOUNDED> {}

/// A counting semaphore in a segment of its own, shared by any number of processes:
/// Python's `multiprocessing.Semaphore`. Its value is at most `u32::MAX`; it is
/// created with its initial value (`create(name, value)`, `anonymous(value)`).
///
/// Not robust to a holder dying: a permit taken by a process killed before it
/// releases it is lost (see the [module docs](crate::sync::semaphore)).
///
/// ```
/// use shmring::sync::Semaphore;
/// use std::time::Duration;
/// let s = Semaphore::anonymous(2)?; // hand to a child with `as_fd` + `from_fd`
/// s.acquire()?;
/// s.acquire()?;
/// assert!(s.acquire_timeout(Duration::from_millis(1)).is_err());
/// s.release(2)?;
/// assert_eq!(s.value(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The segment methods (`open`, `open_with`, `from_fd`, `try_clone`, `keep`, `name`,
/// `as_fd`, the hand-off) are those of [`Shared`], written once for every kind.
pub type Semaphore = Shared<SemaphoreKind<false>>;

/// A semaphore whose value may never exceed its initial value: Python's
/// `multiprocessing.BoundedSemaphore`. A release that would exceed it is
/// [`ReleaseError::AboveBound`] and changes nothing.
///
/// Not robust to a holder dying: a permit taken by a process killed before it
/// releases it is lost (see the [module docs](crate::sync::semaphore)).
///
/// ```
/// use shmring::sync::{BoundedSemaphore, ReleaseError};
/// let s = BoundedSemaphore::anonymous(1)?;
/// {
///     let _permit = s.acquire_guard()?; // released when dropped
///     assert_eq!(s.value(), 0);
/// }
/// assert_eq!(s.release(1), Err(ReleaseError::AboveBound));
/// assert_eq!((s.value(), s.bound()), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The segment methods (`open`, `open_with`, `from_fd`, `try_clone`, `keep`, `name`,
/// `as_fd`, the hand-off) are those of [`Shared`], written once for every kind.
pub type BoundedSemaphore = Shared<SemaphoreKind<true>>;

/// The methods of both segment-backed semaphores.
impl<const BOUNDED: bool> Shared<SemaphoreKind<BOUNDED>> {
    /// The semaphore's state in the segment.
    pub fn raw(&self) -> &RawSemaphore {
        self.area()
    }

    /// Take a permit, sleeping while there is none.
    pub fn acquire(&self) -> Result<(), AcquireError> {
        self.raw().acquire_in(self.local().limit, Wait::Forever)
    }

    /// Take a permit if one is available now (never sleeps):
    /// `Err(WouldBlock)` if none is.
    pub fn try_acquire(&self) -> Result<(), AcquireError> {
        self.raw().try_acquire_in(self.local().limit)
    }

    /// Take a permit, waiting at most `timeout`: `Err(Timeout)` if none
    /// became available.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), AcquireError> {
        self.raw().acquire_in(self.local().limit, Wait::after(timeout))
    }

    /// Take a permit and return a guard that releases it when dropped.
    pub fn acquire_guard(&self) -> Result<SemaphoreGuard<'_>, AcquireError> {
        self.acquire()?;
        Ok(SemaphoreGuard {
            raw: self.raw(),
            limit: self.local().limit,
        })
    }

    /// Add `k` permits, waking up to `k` sleepers (no syscall when nobody
    /// sleeps). Nothing changes on error.
    pub fn release(&self, k: u32) -> Result<(), ReleaseError> {
        self.raw().release_in(k, self.local().limit)
    }

    /// The number of permits now (a snapshot; Python's `get_value`).
    pub fn value(&self) -> u32 {
        self.raw().value()
    }
}

impl BoundedSemaphore {
    /// The bound: the initial value, which the value may never exceed.
    pub fn bound(&self) -> u32 {
        self.local().limit.max()
    }
}

/// A permit taken by `acquire_guard`; released when dropped. A release that fails
/// on drop (a peer released too many times or corrupted the state) is ignored.
///
/// ```
/// use shmring::sync::Semaphore;
/// let s = Semaphore::anonymous(1)?;
/// {
///     let _permit = s.acquire_guard().unwrap();
///     assert_eq!(s.value(), 0);
/// } // released here
/// assert_eq!(s.value(), 1);
/// # Ok::<(), shmring::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "the permit is released when the guard drops"]
pub struct SemaphoreGuard<'a> {
    raw: &'a RawSemaphore,
    limit: Limit,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        let _ = self.raw.release_in(1, self.limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32 as StdAtomicU32;

    #[test]
    fn threads_never_exceed_permits() {
        let s = Arc::new(Semaphore::anonymous(3).unwrap());
        let inside = Arc::new(StdAtomicU32::new(0));
        let max = Arc::new(StdAtomicU32::new(0));
        let ts: Vec<_> = (0..8)
            .map(|_| {
                let (s, inside, max) = (s.clone(), inside.clone(), max.clone());
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        let _g = s.acquire_guard().unwrap();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        if i % 64 == 0 {
                            std::thread::sleep(Duration::from_micros(50));
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        let max = max.load(Ordering::SeqCst);
        assert!((1..=3).contains(&max), "max holders {max}");
        assert_eq!(s.value(), 3);
        assert_eq!(s.raw().words()[1].load(Ordering::SeqCst), 0, "waiters deregistered");
    }

    #[test]
    fn release_wakes_sleeper() {
        let s = Arc::new(BoundedSemaphore::anonymous(0).unwrap());
        // Bound 0: no release is ever allowed.
        assert_eq!(s.release(1), Err(ReleaseError::AboveBound));
        let s = Arc::new(Semaphore::anonymous(0).unwrap());
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.acquire().unwrap());
        crate::sync::wait::spin_until("a sleeper", || s.raw().words()[1].load(Ordering::SeqCst) != 0);
        s.release(1).unwrap();
        t.join().unwrap();
        assert_eq!(s.value(), 0);
    }

    #[test]
    fn segment_open_checks_variant_and_state() {
        let name = format!("shmring-unit-sem-{}", std::process::id());
        let s = Semaphore::create(&name, 4).unwrap();
        assert_eq!(s.name(), Some(name.as_str()));
        let o = Semaphore::open(&name).unwrap();
        o.acquire().unwrap();
        assert_eq!(s.value(), 3);
        assert!(matches!(BoundedSemaphore::open(&name), Err(Error::WrongKind { .. })));
        // The state words must agree with the header.
        s.raw().words()[3].store(BOUNDED, Ordering::Relaxed);
        assert!(matches!(Semaphore::open(&name), Err(Error::Corrupted { .. })));
        drop((s, o));
        assert!(Semaphore::open(&name).is_err(), "unlinked by its creator");

        let b = BoundedSemaphore::create(&name, 2).unwrap();
        assert!(matches!(Semaphore::open(&name), Err(Error::WrongKind { .. })));
        let c = b.try_clone().unwrap();
        assert_eq!((c.bound(), c.value()), (2, 2));
        let fd = rustix::fd::AsFd::as_fd(&b).try_clone_to_owned().unwrap();
        let f = BoundedSemaphore::from_fd(fd).unwrap();
        f.acquire().unwrap();
        assert_eq!(b.value(), 1);
        let fd = rustix::fd::AsFd::as_fd(&b).try_clone_to_owned().unwrap();
        assert!(matches!(Semaphore::from_fd(fd), Err(Error::WrongKind { .. })));
    }
}
