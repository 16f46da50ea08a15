//! [`wait`]: sleep until one of several connections is ready, as Python's
//! `multiprocessing.connection.wait`.
//!
//! This is [`crate::select`] over pipe ends: one `futex_waitv` over every receiving
//! ring's wait word, with the eventcount protocol of [`crate::sync::WaitWord`] applied
//! to every ring at once (the steps and why no wake-up is lost are in the
//! [`select` module docs](crate::select)). Naps last at most [`LIVENESS_INTERVAL`],
//! after which the peers' liveness locks are checked: a producer killed without closing
//! never wakes anyone. A producer that closes wakes its consumer's word, so a clean
//! close is seen at once.
//!
//! Fallback: where `futex_waitv` is missing (Linux before 5.16: `ENOSYS`, remembered
//! for the process) or more than 128 rings are watched (the kernel's limit), the wait
//! polls every ring and naps 1 ms between polls — a wake-up latency of up to about a
//! millisecond instead of the futex's few microseconds, at no cost to the producers.

use super::Connection;
use super::pipe::PipeTransport;
use crate::select::{RingWatch, futex};
use crate::sync::Interrupted;
#[cfg(doc)]
use crate::sync::LIVENESS_INTERVAL;
use std::time::{Duration, Instant};

/// Wait until at least one of `conns` is ready, or `timeout` passes (`None`: no limit;
/// `Some(Duration::ZERO)`: just look), and return the indices of the ready ones — an
/// empty list on timeout. As Python's `multiprocessing.connection.wait`.
///
/// A connection is ready when a receive will not wait for a message to start: a frame
/// is there, or the peer closed or died (a peer killed without closing is noticed
/// within about 50 ms), or the connection cannot receive (closed, send-only, or broken
/// by a bad frame) — the receive then returns the reason at once. With no connections,
/// it sleeps for `timeout` (returns at once for `None`: nothing can become ready).
///
/// Sleeps in the kernel on all the rings at once with `futex_waitv`, registered as a
/// waiter on each ring as a single receive would be (see the [module docs](super)),
/// falling back to 1 ms naps where that is unavailable or for more than 128
/// connections.
///
/// ```
/// use shmring::connection::{pipe, wait};
/// use std::time::Duration;
/// let (a, mut b) = pipe(true)?;
/// let (c, mut d) = pipe(true)?;
/// assert!(wait(&[&a, &c], Some(Duration::from_millis(1))).is_empty());
/// d.send(&1)?;
/// assert_eq!(wait(&[&a, &c], None), [1]);
/// b.close();
/// assert_eq!(wait(&[&a, &c], None), [0, 1]); // `a`'s peer closed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait(conns: &[&Connection], timeout: Option<Duration>) -> Vec<usize> {
    wait_impl(conns, timeout, futex::waitv_available(), false).unwrap_or_default()
}

/// [`wait`] that also ends when an interrupt is pending (see `shmring::signal::Interrupt`):
/// `Err(Interrupted)` when no connection is ready and the flag is raised (checked before
/// each sleep and after each wake). [`wait`] keeps its signature and is not
/// interruptible; [`Connection::poll`] is.
///
/// ```
/// use shmring::connection::{pipe, wait_interruptible};
/// use std::time::Duration;
/// let (a, mut b) = pipe(true)?;
/// assert_eq!(wait_interruptible(&[&a], Some(Duration::from_millis(1))), Ok(vec![]));
/// b.send(&1)?;
/// assert_eq!(wait_interruptible(&[&a], None), Ok(vec![0]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait_interruptible(conns: &[&Connection], timeout: Option<Duration>) -> Result<Vec<usize>, Interrupted> {
    wait_interruptible_on(conns, timeout)
}

/// [`wait_interruptible`] over connections or their transports.
pub(crate) fn wait_interruptible_on<C: Watched>(
    conns: &[&C],
    timeout: Option<Duration>,
) -> Result<Vec<usize>, Interrupted> {
    wait_impl(conns, timeout, futex::waitv_available(), true)
}

/// What [`wait`] watches: a pipe end, or its transport (for [`Connection::poll`]).
pub(crate) trait Watched {
    /// The end's transport.
    fn pipe(&self) -> &PipeTransport;
}

impl Watched for Connection {
    #[inline]
    fn pipe(&self) -> &PipeTransport {
        &self.transport
    }
}

impl Watched for PipeTransport {
    #[inline]
    fn pipe(&self) -> &PipeTransport {
        self
    }
}

/// [`wait`], sleeping with `futex_waitv` when `waitv` is set (and possible), else with
/// naps; with `interruptible`, a pending interrupt ends it before a sleep.
pub(crate) fn wait_impl<C: Watched>(
    conns: &[&C],
    timeout: Option<Duration>,
    waitv: bool,
    interruptible: bool,
) -> Result<Vec<usize>, Interrupted> {
    // A deadline too far to represent is no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    if conns.is_empty() {
        if let Some(t) = timeout
            && deadline.is_some()
        {
            std::thread::sleep(t);
        }
        return Ok(Vec::new());
    }
    let rings: Vec<&dyn RingWatch> = conns.iter().map(|c| c.pipe() as &dyn RingWatch).collect();
    futex::wait(
        &rings,
        deadline,
        waitv,
        interruptible,
        &mut futex::LivenessTick::default(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::{ConnError, Connection, ConnectionOptions, pipe, pipe_with};
    use super::*;
    use crate::primitive::Ordering;
    use crate::select::futex::{WAITV_MAX, WAITV_UNAVAILABLE};
    use rustix::io::Errno;
    use rustix::thread::futex;

    /// `n` pipes, each fed by a thread that sends `per` messages `(pipe, seq)` with
    /// pseudo-random pauses; the main thread waits on all and receives each exactly once.
    fn fan_in(waitv: bool, n: usize, per: u32) {
        let mut rxs = Vec::new();
        let mut threads = Vec::new();
        for i in 0..n {
            let (r, mut w) = pipe_with(false, 1024, &ConnectionOptions::new()).unwrap();
            rxs.push(r);
            threads.push(std::thread::spawn(move || {
                let mut x = i as u64 + 1;
                for seq in 0..per {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x % 4 == 0 {
                        std::thread::sleep(Duration::from_micros(x % 300));
                    }
                    w.send(&(i, seq)).unwrap();
                }
            }));
        }
        let mut next = vec![0u32; n];
        let mut open: Vec<usize> = (0..n).collect();
        let start = Instant::now();
        while !open.is_empty() {
            assert!(start.elapsed() < Duration::from_secs(60), "fan-in stalled: {next:?}");
            let view: Vec<&Connection> = open.iter().map(|&i| &rxs[i]).collect();
            let ready = wait_impl(&view, Some(Duration::from_secs(10)), waitv, false).unwrap();
            assert!(!ready.is_empty(), "nothing ready for 10 s: {next:?}");
            let mut closed = Vec::new();
            for k in ready {
                let i = open[k];
                match rxs[i].recv::<(usize, u32)>() {
                    Ok((from, seq)) => {
                        assert_eq!((from, seq), (i, next[i]), "lost, duplicated or misrouted");
                        next[i] += 1;
                    }
                    Err(ConnError::Disconnected) => closed.push(i),
                    Err(e) => panic!("pipe {i}: {e}"),
                }
            }
            open.retain(|i| !closed.contains(i));
        }
        assert!(next.iter().all(|&c| c == per), "{next:?}");
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn connection_wait_with_futex_waitv_receives_every_message_once() {
        fan_in(true, 4, 2000);
        // Where the kernel has futex_waitv (an empty list is EINVAL, not ENOSYS), the
        // waits above used it and never fell back to naps.
        let probe = futex::waitv(&[], futex::WaitvFlags::empty(), None, futex::ClockId::Monotonic);
        if probe != Err(Errno::NOSYS) {
            assert!(
                !WAITV_UNAVAILABLE.load(Ordering::Relaxed),
                "futex_waitv fell back: {probe:?}"
            );
        }
    }

    #[test]
    fn connection_wait_with_naps_receives_every_message_once() {
        fan_in(false, 4, 300);
    }

    #[test]
    fn connection_wait_times_out_and_reports_closed_and_unusable_ends() {
        for waitv in [true, false] {
            let (a, mut b) = pipe(true).unwrap();
            let (c, d) = pipe(true).unwrap();
            let start = Instant::now();
            assert!(
                wait_impl(&[&a, &c], Some(Duration::from_millis(20)), waitv, false)
                    .unwrap()
                    .is_empty()
            );
            assert!(start.elapsed() >= Duration::from_millis(20));
            assert!(
                wait_impl(&[&a, &c], Some(Duration::ZERO), waitv, false)
                    .unwrap()
                    .is_empty()
            );
            // A peer that closes while we sleep wakes the wait.
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                drop(d);
            });
            assert_eq!(wait_impl(&[&a, &c], None, waitv, false).unwrap(), [1]);
            t.join().unwrap();
            // A message published while we sleep wakes it.
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                b.send(&1u8).unwrap();
                b
            });
            assert_eq!(
                wait_impl(&[&a], Some(Duration::from_secs(30)), waitv, false).unwrap(),
                [0]
            );
            let _b = t.join().unwrap();
            let (_r, w) = pipe(false).unwrap();
            assert_eq!(wait_impl(&[&a, &w], None, waitv, false).unwrap(), [0, 1]);
        }
        assert!(wait(&[], Some(Duration::from_millis(1))).is_empty());
        assert!(wait(&[], None).is_empty());
    }

    #[test]
    fn connection_wait_over_more_rings_than_futex_waitv_takes() {
        let pipes: Vec<_> = (0..WAITV_MAX + 2)
            .map(|_| pipe_with(true, 128, &ConnectionOptions::new()).unwrap())
            .collect();
        let mut pipes = pipes;
        let (_, last) = pipes.last_mut().unwrap();
        last.send(&1u8).unwrap();
        let view: Vec<&Connection> = pipes.iter().map(|(a, _)| a).collect();
        assert_eq!(wait(&view, Some(Duration::from_secs(10))), [WAITV_MAX + 1]);
    }
}
