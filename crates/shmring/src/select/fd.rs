//! Sleeping on many descriptors at once: one `poll(2)`. [`net::wait`](crate::net::wait)
//! is this over sockets.

use super::FdWatch;
use crate::net::sys::poll_fds;
use crate::sync::{Interrupted, LIVENESS_INTERVAL, interrupt};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The `pollfd`s of `fds`.
pub(crate) fn pollfds(fds: &[FdWatch<'_>]) -> Vec<libc::pollfd> {
    fds.iter()
        .map(|f| libc::pollfd {
            fd: f.fd.as_raw_fd(),
            events: f.events,
            revents: 0,
        })
        .collect()
}

/// The indices of the sources whose receive needs no system call (see
/// [`FdWatch::buffered`]).
pub(crate) fn buffered(fds: &[FdWatch<'_>]) -> Vec<usize> {
    (0..fds.len()).filter(|&i| fds[i].buffered).collect()
}

/// The indices of the entries of `p` with events.
pub(crate) fn with_events(p: &[libc::pollfd]) -> Vec<usize> {
    p.iter()
        .enumerate()
        .filter(|(_, p)| p.revents != 0)
        .map(|(i, _)| i)
        .collect()
}

/// Wait until one of `fds` is ready or `deadline` passes; the ready ones (empty: the
/// deadline passed). With `interruptible`, a pending interrupt ends it (checked before
/// each sleep and every [`LIVENESS_INTERVAL`] while asleep).
pub(crate) fn wait(
    fds: &[FdWatch<'_>],
    deadline: Option<Instant>,
    interruptible: bool,
) -> Result<Vec<usize>, Interrupted> {
    // What is buffered (a whole frame, the end of the stream, a closed end).
    let ready = buffered(fds);
    if !ready.is_empty() {
        return Ok(ready);
    }
    let mut p = pollfds(fds);
    loop {
        if interruptible && interrupt::pending() {
            return Err(Interrupted);
        }
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        };
        // Interruptible waits nap, to look at the flag; the others sleep it all.
        let nap = if interruptible {
            left.min(LIVENESS_INTERVAL)
        } else {
            left
        };
        for e in &mut p {
            e.revents = 0;
        }
        match poll_fds(&mut p, (nap != Duration::MAX).then_some(nap)) {
            Ok(0) => {}
            Ok(_) => return Ok(with_events(&p)),
            // An error of poll itself (EINVAL for too many descriptors, ENOMEM) cannot
            // be waited out: report none ready.
            Err(_) => return Ok(Vec::new()),
        }
        // A signal or a nap's end: look again.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Vec::new());
        }
    }
}
