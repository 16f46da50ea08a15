//! Finding a named pipe connection by name: [`Connection::open_wait`] and
//! [`Connection::open_or_create`], over the loops of [`shm::find`](crate::shm::find).
//!
//! A named connection is two rings, `<name>.a2b` and `<name>.b2a`, which its creator
//! makes in that order. An opener that found the first and not yet the second would
//! claim the first ring's consumer role and drop it (closing that role for good), so
//! these wait for the second ring before opening anything.

use super::pipe::{PipeTransport, ring_names};
use super::{Connection, ConnectionOptions};
use crate::Result;
use crate::shm::{Segment, SegmentKind, find};
use std::time::Duration;

impl Connection<PipeTransport> {
    /// [`Connection::open`], retrying while the connection does not exist yet (both its
    /// rings), for at most `timeout`; then the last [`Error::NotFound`](crate::Error::NotFound).
    /// Any other error returns at once. Found within about 4 ms of its creation (see
    /// [`shm::open_wait`](crate::shm::open_wait)).
    ///
    /// ```
    /// use shmring::connection::Connection;
    /// use std::time::Duration;
    /// let name = format!("doc-conn-wait-{}", std::process::id());
    /// let maker = std::thread::spawn({
    ///     let name = name.clone();
    ///     move || {
    ///         std::thread::sleep(Duration::from_millis(20));
    ///         let mut a = Connection::create(&name, 1 << 12).unwrap(); // usually another program
    ///         a.send(&"hello").unwrap();
    ///         a
    ///     }
    /// });
    /// let mut b = Connection::open_wait(&name, Duration::from_secs(10))?;
    /// assert_eq!(b.recv::<String>()?, "hello");
    /// drop(maker.join().unwrap());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_wait(name: &str, timeout: Duration) -> Result<Self> {
        Self::open_wait_with(name, timeout, &ConnectionOptions::default())
    }

    /// [`Connection::open_wait`] with options.
    pub fn open_wait_with(name: &str, timeout: Duration, opts: &ConnectionOptions) -> Result<Self> {
        let (_, b2a) = ring_names(name);
        find::open_wait(timeout, || {
            // The creator makes `.b2a` last: once it exists (and is READY, which
            // Segment::open waits for), both rings do.
            drop(Segment::open(&b2a, SegmentKind::SpscRing, &opts.ring.segment)?);
            Self::open_with(name, opts)
        })
    }

    /// Attach to the named connection `name`, or create it (rings of at least
    /// `capacity` bytes per direction) if it does not exist; with `true` if this call
    /// created it. The creator is the end that sends on `<name>.a2b` and unlinks both
    /// rings when it drops; the other end attaches as [`Connection::open`] does. Of two
    /// processes racing here, exactly one creates; a third finds both ends taken
    /// ([`Error::AlreadyAttached`](crate::Error::AlreadyAttached)).
    ///
    /// ```
    /// use shmring::connection::Connection;
    /// let name = format!("doc-conn-ooc-{}", std::process::id());
    /// // Both programs run the same line.
    /// let (mut a, created) = Connection::open_or_create(&name, 1 << 12)?;
    /// let (mut b, also) = Connection::open_or_create(&name, 1 << 12)?;
    /// assert!(created && !also);
    /// a.send(&1u8)?;
    /// b.send(&2u8)?;
    /// assert_eq!((b.recv::<u8>()?, a.recv::<u8>()?), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(name: &str, capacity: usize) -> Result<(Self, bool)> {
        Self::open_or_create_with(name, capacity, &ConnectionOptions::default())
    }

    /// [`Connection::open_or_create`] with options.
    pub fn open_or_create_with(name: &str, capacity: usize, opts: &ConnectionOptions) -> Result<(Self, bool)> {
        find::open_or_create(
            || Self::create_with(name, capacity, opts),
            // The creator may be between its two rings: wait for the second, as long as
            // an open waits for a creator's READY.
            || Self::open_wait_with(name, opts.ring.segment.open_timeout, opts),
        )
    }
}
