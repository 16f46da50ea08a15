//! [`Event`]: a [`RawEvent`] in a segment of its own (no header parameters).

use super::*;
use crate::error::Result;
use crate::handoff;
use crate::shm::{SegmentKind, SegmentOptions};
use crate::sync::handle::{Kind, Sealed, Shared};
use crate::sync::shared::Area;
use std::fmt;

/// The [`Kind`] of an [`Event`]: a [`RawEvent`] in a segment of its own.
#[derive(Debug)]
pub enum EventKind {}

impl Sealed for EventKind {
    type Area = RawEvent;
    type Init = ();
    type Local = ();
    const SEGMENT: SegmentKind = SegmentKind::Event;
    const HANDOFF: handoff::Kind = handoff::Kind::Event;
    const NAME: &'static str = "Event";

    fn params(_: &()) -> Result<[u64; 8]> {
        Ok([0; 8])
    }

    /// All-zero bytes (a fresh segment) are a clear event: nothing to set up.
    fn init(_: &Area<RawEvent>, _: ()) {}

    fn attach(_: &Area<RawEvent>, _: &[u64; 8], _: &str) -> Result<()> {
        Ok(())
    }

    fn clone_local(_: &RawEvent, _: &(), _: &str) -> Result<()> {
        Ok(())
    }

    fn debug_fields(raw: &RawEvent, _: &(), d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("raw", raw);
    }
}

impl Kind for EventKind {}

/// An event flag in a segment of its own, shared by any number of processes: Python's
/// `multiprocessing.Event`. Every waiter present at a [`set`](Event::set) wakes.
///
/// ```
/// use shmring::sync::Event;
/// use std::time::Duration;
/// let e = Event::anonymous()?; // hand to a child with `as_fd` + `from_fd`
/// let e2 = e.try_clone()?;
/// let t = std::thread::spawn(move || e2.wait_timeout(Duration::from_secs(10)));
/// e.set();
/// assert!(t.join().unwrap());
/// assert!(e.is_set());
/// # Ok::<(), shmring::Error>(())
/// ```
///
/// The segment methods (`open`, `open_with`, `from_fd`, `try_clone`, `keep`, `name`,
/// `as_fd`, the hand-off) are those of [`Shared`], written once for every kind.
pub type Event = Shared<EventKind>;

impl Event {
    /// Create the named event `name`, clear (unlinked when this handle drops, unless
    /// [`keep`](Shared::keep)).
    pub fn create(name: &str) -> Result<Self> {
        Self::create_in(Some(name), (), &SegmentOptions::default())
    }

    /// [`create`](Self::create) with segment options (mode, keep, ...).
    pub fn create_with(name: &str, opts: &SegmentOptions) -> Result<Self> {
        Self::create_in(Some(name), (), opts)
    }

    /// Open the named event `name`, or create it (event, clear) if it does not exist;
    /// with `true` if this call created it (that handle unlinks the name when it drops).
    /// See [`Shared::open_or_create`].
    pub fn open_or_create(name: &str) -> Result<(Self, bool)> {
        Self::open_or_create_with(name, &SegmentOptions::default())
    }

    /// [`open_or_create`](Self::open_or_create) with segment options.
    pub fn open_or_create_with(name: &str, opts: &SegmentOptions) -> Result<(Self, bool)> {
        Self::open_or_create_by(name, opts, || Self::create_in(Some(name), (), opts))
    }

    /// An anonymous (memfd) event, clear; hand it to a child through
    /// [`AsFd`](rustix::fd::AsFd) and [`from_fd`](Shared::from_fd).
    pub fn anonymous() -> Result<Self> {
        Self::create_in(None, (), &SegmentOptions::default())
    }

    /// The event's state in the segment.
    pub fn raw(&self) -> &RawEvent {
        self.area()
    }

    /// Set the flag and wake every waiter (see [`RawEvent::set`]).
    pub fn set(&self) {
        self.raw().set();
    }

    /// Clear the flag (see [`RawEvent::clear`]).
    pub fn clear(&self) {
        self.raw().clear();
    }

    /// Whether the flag is set (see [`RawEvent::is_set`]).
    pub fn is_set(&self) -> bool {
        self.raw().is_set()
    }

    /// Block until the flag is set: `true`; `false` if the flag can never be set for
    /// this handle any more, because a peer resized the segment under its mapping
    /// ([`is_poisoned`](Self::is_poisoned); found within a liveness interval of sleep).
    /// See [`RawEvent::wait`].
    pub fn wait(&self) -> bool {
        self.raw().wait()
    }

    /// Block at most `timeout`: `true` if the flag is set or was set meanwhile,
    /// `false` on timeout, or earlier on a poisoned mapping (see [`Event::wait`] and
    /// [`RawEvent::wait_timeout`]).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.raw().wait_timeout(timeout)
    }

    /// Block until set, at most `timeout` (`None`: no limit), or until an interrupt
    /// is pending (see [`RawEvent::wait_interruptible`]).
    pub fn wait_interruptible(&self, timeout: Option<Duration>) -> std::result::Result<bool, Interrupted> {
        self.raw().wait_interruptible(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;
    use std::sync::Arc;

    /// Wait until `n` waiters are registered on `e`.
    fn registered(e: &RawEvent, n: u32) {
        crate::sync::wait::spin_until("registered waiters", || e.waiters() == n);
    }

    #[test]
    fn set_wakes_every_waiter_even_when_cleared_at_once() {
        let e = Arc::new(Event::anonymous().unwrap());
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let e = e.try_clone().unwrap();
                std::thread::spawn(move || e.wait_timeout(Duration::from_secs(30)))
            })
            .collect();
        registered(e.raw(), 4);
        // A pulse: every registered waiter saw the generation change.
        e.set();
        e.clear();
        for t in ts {
            assert!(t.join().unwrap());
        }
        assert!(!e.is_set());
        assert!(!e.wait_timeout(Duration::from_millis(5)));
        // Already set: wait returns at once, and a second set changes nothing.
        e.set();
        let w = e.raw().words()[0].load(Ordering::SeqCst);
        e.set();
        assert_eq!(e.raw().words()[0].load(Ordering::SeqCst), w);
        e.wait();
        assert!(e.wait_timeout(Duration::ZERO));
        assert!(e.wait_timeout(Duration::MAX));
    }

    /// A peer truncates the file: a blocking `wait` (no `set` can ever reach this
    /// mapping again) ends with `false` within a liveness interval or two, never hangs;
    /// a timed one ends early.
    #[test]
    fn wait_ends_on_a_poisoned_mapping() {
        let name = format!("shmring-unit-event-poison-{}", std::process::id());
        let e = Event::create(&name).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/dev/shm/{name}"))
            .unwrap()
            .set_len(0)
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let r = (e.wait(), e.wait_timeout(Duration::from_secs(600)), e.is_poisoned());
            tx.send(r).unwrap();
        });
        let r = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("wait on a poisoned mapping hung");
        assert_eq!(r, (false, false, true));
        waiter.join().unwrap();
    }

    #[test]
    fn named_open() {
        let name = format!("shmring-unit-event-{}", std::process::id());
        let e = Event::create(&name).unwrap();
        assert_eq!(e.name(), Some(name.as_str()));
        let o = Event::open(&name).unwrap();
        o.set();
        assert!(e.is_set());
        let fd = AsFd::as_fd(&e).try_clone_to_owned().unwrap();
        assert!(Event::from_fd(fd).unwrap().is_set());
        assert!(crate::sync::Semaphore::open(&name).is_err());
        drop((e, o));
        assert!(Event::open(&name).is_err(), "unlinked by its creator");
    }
}
