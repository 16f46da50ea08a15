//! One wait over any mix of sources: SPSC and MPMC ring consumers, queues, pipe and
//! socket [`Connection`](crate::Connection)s and [`Listener`](crate::net::Listener)s —
//! [`select`] over borrowed sources, or a [`Selector`] that owns them.
//!
//! A source is **ready** when its receive (or `accept`) would not wait: a message is
//! there, or the sender side is gone (closed, dropped, or killed: a killed peer of a
//! ring or pipe is noticed within the liveness interval, 50 ms, as
//! [`connection::wait`](crate::connection::wait) does), or the receive would report an
//! error at once. A queue or MPMC consumer is ready when a message is published at its
//! dequeue position or the queue is closed; another consumer of the same queue may take
//! that message first (the `try_` receive then says `Empty`), as with Python's `wait`.
//!
//! Corruption ends a select too: a ring whose segment a peer resized (the mapping
//! poisoned: checked on the liveness tick, an `fstat` at most every 50 ms per segment),
//! and an MPMC queue in a state its protocol never reaches (C1, C2, C3 and a slot out
//! of step in [`ring::mpmc`](crate::ring::mpmc)'s docs, confirmed on the tick), are
//! reported ready: a waiting or timed receive then reports `Corrupted` at its first
//! liveness tick (a `try_` receive may answer `Empty` until its periodic check).
//!
//! # How a mixed set sleeps
//!
//! Rings are woken through futex words in shared memory; sockets through the kernel's
//! file readiness. No one system call sleeps on both (`futex_waitv` takes no
//! descriptors; `poll` takes no futexes), and a ring's producer, in another process,
//! cannot be made to write an eventfd it does not have. So:
//!
//! - **rings only**: `futex_waitv` over every ring's wait word with the eventcount
//!   protocol below: exactly [`connection::wait`](crate::connection::wait), which is
//!   this code over pipes;
//! - **descriptors only**: one `poll(2)`: exactly [`net::wait`](crate::net::wait),
//!   which is this code over sockets;
//! - **both**: the waiting thread sleeps in `futex_waitv` on the rings' words plus one
//!   private futex word, while a helper thread sleeps in `poll` on the descriptors and,
//!   when one is ready, sets that word and wakes it (`select/helper.rs` has the handshake). The
//!   helper is started at the first mixed wait of a thread, lives as long as the
//!   thread, and sleeps on a condition variable between waits. A ring's wake-up then
//!   costs what it costs in a rings-only wait; a socket's costs one more thread
//!   switch. The reverse (the waiter in `poll`, the helper in `futex_waitv` writing an
//!   eventfd) would put the extra switch on the rings instead, the fast path of this
//!   crate.
//!
//! The eventcount protocol of [`WaitWord`](crate::sync::WaitWord), applied to every
//! ring at once:
//!
//! ```text
//! for each ring: key_i = seq_i.load(Acquire)        (1)
//!                waiting_i.fetch_add(1, Relaxed)     (2)
//! heavy_fence                                        (3)
//! if any ring is ready: deregister, return it        (4)
//! futex_waitv([(seq_i, key_i)...], nap)              (5)
//! for each ring: waiting_i.fetch_sub(1, Relaxed)     (6)
//! ```
//!
//! Each producer publishes, fences, and bumps `seq_i` and wakes only if it sees
//! `waiting_i != 0` (`WaitWord::notify`): the same store-load pair as a single
//! consumer's wait, so a message published after (4) looked either makes the producer
//! see our registration — its bump then changes `seq_i` after we read `key_i`, and (5)
//! returns at once or is woken — or was visible to (4). Naps last at most
//! `LIVENESS_INTERVAL` (50 ms), after which the peers'
//! liveness locks are checked: a producer killed without closing never wakes anyone. A
//! producer that closes wakes its consumer's word, so a clean close is seen at once.
//!
//! A producer wakes one sleeper per message: on a queue that other consumers also
//! sleep on, the wake-up may go to one of them (which then takes the message).
//!
//! Liveness costs: every call of [`select`] checks the peers of the rings that are not
//! ready (a system call per SPSC ring; a pipe checks at most every 50 ms), so that a
//! dead peer is reported even while another source is ready at every call. A
//! [`Selector`] remembers when it checked and does so at most every 50 ms.
//!
//! Fallback: where `futex_waitv` is missing (Linux before 5.16) or more than 128 rings
//! are watched, or the helper thread cannot be started, the wait polls every source and
//! naps 1 ms between polls.
//!
//! ```
//! use shmring::select::{Selector, select};
//! use shmring::{Queue, pipe, ring::spsc};
//! use std::time::Duration;
//!
//! let (mut tx, rx) = spsc::channel(4096)?;
//! let mut q: Queue<u32> = Queue::new(8)?;
//! let (a, mut b) = pipe(true)?;
//!
//! // Borrowed sources: the indices of the ready ones.
//! assert!(select(&[&rx, &q, &a], Some(Duration::from_millis(1))).is_empty());
//! q.put(&7)?;
//! assert_eq!(select(&[&rx, &q, &a], None), [1]);
//! assert_eq!(q.get()?, 7);
//!
//! // A Selector owns its sources and hands them back by key.
//! let mut sel = Selector::new();
//! let ring = sel.add(rx);
//! let conn = sel.add(a);
//! b.send(&"hi")?;
//! let ready = sel.wait(None);
//! assert!(ready.contains(conn) && !ready.contains(ring));
//! assert_eq!(sel[conn].recv::<String>()?, "hi");
//! tx.send(b"tick")?;
//! assert!(sel.wait(None).contains(ring));
//! assert_eq!(sel[ring].recv()?, b"tick");
//! let rx: spsc::Consumer = sel.remove(ring);
//! # drop(rx);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod fd;
pub(crate) mod futex;
pub(crate) mod helper;
mod selector;
mod sources;

pub use selector::{Key, Ready, Selector};

use crate::sync::{Interrupted, LIVENESS_INTERVAL, interrupt};
pub(crate) use sealed::{FdWatch, RingWatch, Watch};
use std::time::{Duration, Instant};

/// A source a [`select`] or [`Selector`] can wait on (sealed): the SPSC and MPMC
/// consumers, [`Queue`](crate::Queue), [`SimpleQueue`](crate::SimpleQueue),
/// [`JoinableQueue`](crate::JoinableQueue), pipe and socket
/// [`Connection`](crate::Connection)s, and [`Listener`](crate::net::Listener)s (ready
/// when a client is waiting to be accepted).
pub trait Selectable: sealed::Sealed {}

impl<S: sealed::Sealed + ?Sized> Selectable for S {}

pub(crate) mod sealed {
    use crate::sync::WaitWord;
    use std::os::fd::BorrowedFd;

    /// How a source is watched.
    pub trait Sealed {
        /// Its ring or its descriptor.
        fn watch(&self) -> Watch<'_>;
    }

    /// A source woken through a ring's wait word.
    pub trait RingWatch {
        /// The word a receive sleeps on, and whether the ring uses asymmetric fences;
        /// `None`: the source has no ring to wait on (it is then always ready).
        fn ring_word(&self) -> Option<(&WaitWord, bool)>;
        /// Whether a receive would not wait; `check_liveness` also asks the kernel
        /// whether the peer died (a system call).
        fn ring_ready(&self, check_liveness: bool) -> bool;
    }

    /// A source woken through a descriptor's readiness.
    #[derive(Debug)]
    pub struct FdWatch<'a> {
        /// The descriptor to poll.
        pub fd: BorrowedFd<'a>,
        /// The events to poll for.
        pub events: i16,
        /// Whether a receive is ready without a system call (something buffered).
        pub buffered: bool,
    }

    /// A ring or a descriptor.
    pub enum Watch<'a> {
        /// Woken through a ring's word.
        Ring(&'a dyn RingWatch),
        /// Woken through a descriptor.
        Fd(FdWatch<'a>),
    }

    impl std::fmt::Debug for Watch<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Watch::Ring(_) => f.write_str("Ring"),
                Watch::Fd(w) => w.fmt(f),
            }
        }
    }
}

/// Wait until at least one of `sources` is ready, or `timeout` passes (`None`: no
/// limit; `Some(Duration::ZERO)`: just look), and return the indices of the ready ones
/// (an empty list on timeout), as Python's `multiprocessing.connection.wait` over any
/// mix of this crate's receiving ends (see the [module docs](self)). With no sources it
/// sleeps for `timeout` (returns at once for `None`).
///
/// ```
/// use shmring::select::select;
/// use std::time::Duration;
/// let (mut tx, rx) = shmring::ring::mpmc::channel(8, 64)?;
/// let (a, mut b) = shmring::pipe(false)?;
/// assert!(select(&[&rx, &a], Some(Duration::ZERO)).is_empty());
/// tx.push(b"job")?;
/// drop(b); // the pipe's sender leaves: `a` is ready too (its recv says Disconnected)
/// assert_eq!(select(&[&rx, &a], None), [0, 1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn select(sources: &[&dyn Selectable], timeout: Option<Duration>) -> Vec<usize> {
    wait_sources(sources, timeout, false, &mut futex::LivenessTick::default()).unwrap_or_default()
}

/// [`select`] that also ends when an interrupt is pending (see `shmring::signal::Interrupt`):
/// `Err(Interrupted)` when no source is ready and the flag is raised (checked before
/// each sleep, and at least every 50 ms while asleep).
pub fn select_interruptible(sources: &[&dyn Selectable], timeout: Option<Duration>) -> Result<Vec<usize>, Interrupted> {
    wait_sources(sources, timeout, true, &mut futex::LivenessTick::default())
}

/// The wait of [`select`] and [`Selector::wait`].
pub(crate) fn wait_sources(
    sources: &[&dyn Selectable],
    timeout: Option<Duration>,
    interruptible: bool,
    tick: &mut futex::LivenessTick,
) -> Result<Vec<usize>, Interrupted> {
    let start = Instant::now();
    // A deadline too far to represent is no deadline.
    let deadline = timeout.and_then(|t| start.checked_add(t));
    if sources.is_empty() {
        if let Some(t) = timeout
            && deadline.is_some()
        {
            std::thread::sleep(t);
        }
        return Ok(Vec::new());
    }
    let (mut rings, mut ring_at) = (Vec::new(), Vec::new());
    let (mut fds, mut fd_at) = (Vec::new(), Vec::new());
    for (i, s) in sources.iter().enumerate() {
        match s.watch() {
            Watch::Ring(r) => {
                rings.push(r);
                ring_at.push(i);
            }
            Watch::Fd(f) => {
                fds.push(f);
                fd_at.push(i);
            }
        }
    }
    let (r, f) = if fds.is_empty() {
        (
            futex::wait(&rings, deadline, futex::waitv_available(), interruptible, tick)?,
            Vec::new(),
        )
    } else if rings.is_empty() {
        (Vec::new(), fd::wait(&fds, deadline, interruptible)?)
    } else {
        wait_mixed(&rings, &fds, deadline, interruptible, tick)?
    };
    let mut out: Vec<usize> = r
        .into_iter()
        .map(|i| ring_at[i])
        .chain(f.into_iter().map(|i| fd_at[i]))
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Rings and descriptors together (see the module docs): the ready rings' and
/// descriptors' indices.
fn wait_mixed(
    rings: &[&dyn RingWatch],
    fds: &[FdWatch<'_>],
    deadline: Option<Instant>,
    interruptible: bool,
    tick: &mut futex::LivenessTick,
) -> Result<(Vec<usize>, Vec<usize>), Interrupted> {
    let mut p = fd::pollfds(fds);
    // What needs no sleep: a ring ready, something buffered, a descriptor ready now.
    let look = |p: &mut [libc::pollfd], liveness: bool| -> (Vec<usize>, Vec<usize>) {
        let r = futex::ready(rings, liveness);
        let mut f = fd::buffered(fds);
        for e in p.iter_mut() {
            e.revents = 0;
        }
        if crate::net::sys::poll_fds(p, Some(Duration::ZERO)).is_ok_and(|n| n > 0) {
            f.extend(fd::with_events(p));
            f.sort_unstable();
            f.dedup();
        }
        (r, f)
    };
    let (r, f) = look(&mut p, tick.due(Instant::now()));
    if !r.is_empty() || !f.is_empty() {
        return Ok((r, f));
    }
    let mut waitv = futex::waitv_available() && rings.len() < futex::WAITV_MAX;
    loop {
        let now = Instant::now();
        let liveness = tick.due(now);
        let left = deadline.map(|d| d.saturating_duration_since(now));
        if left == Some(Duration::ZERO) {
            return Ok(look(&mut p, liveness));
        }
        if interruptible && interrupt::pending() {
            return Err(Interrupted);
        }
        let nap = left.map_or(LIVENESS_INTERVAL, |l| l.min(LIVENESS_INTERVAL));
        let slept = if waitv {
            helper::with_helper(|h| {
                for e in p.iter_mut() {
                    e.revents = 0;
                }
                h.post(&p);
                let r = futex::sleep_round(rings, Some(futex::Extra { word: h.word() }), liveness, nap);
                h.finish(&mut p);
                r
            })
            .flatten()
        } else {
            None
        };
        let (r, f) = match slept {
            Some(r) => {
                let mut f = fd::with_events(&p);
                f.extend(fd::buffered(fds));
                f.sort_unstable();
                f.dedup();
                (r, f)
            }
            None => {
                // No futex_waitv or no helper: look, nap, look.
                waitv = false;
                let (r, f) = look(&mut p, liveness);
                if r.is_empty() && f.is_empty() {
                    for e in p.iter_mut() {
                        e.revents = 0;
                    }
                    let _ = crate::net::sys::poll_fds(&mut p, Some(nap.min(futex::NAP)));
                }
                (r, f)
            }
        };
        if !r.is_empty() || !f.is_empty() {
            return Ok((r, f));
        }
    }
}

#[cfg(test)]
mod tests;
