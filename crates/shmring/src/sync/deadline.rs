//! How long a call may wait: the one internal encoding every layer uses (rings, the
//! MPMC queue, the primitives, the pipe and socket connections, the `Queue`). The public
//! `try_*` / `*_timeout` / blocking triplets each make one [`Wait`] and hand it down.

use super::wait::LIVENESS_INTERVAL;
use std::time::{Duration, Instant};

/// How long a call may wait for its condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not at all: one look, then `WouldBlock`/`Empty`/`Full` (the `try_*` calls).
    Now,
    /// As long as it takes (the blocking calls).
    Forever,
    /// Until this instant (the `*_timeout` calls).
    Until(Instant),
}

impl Wait {
    /// Until `timeout` from now; [`Wait::Forever`] if that instant is not representable.
    #[inline]
    pub(crate) fn after(timeout: Duration) -> Self {
        Instant::now().checked_add(timeout).map_or(Wait::Forever, Wait::Until)
    }

    /// [`Wait::Forever`] for `None`, else [`Wait::after`].
    #[inline]
    pub(crate) fn from_timeout(timeout: Option<Duration>) -> Self {
        timeout.map_or(Wait::Forever, Wait::after)
    }

    /// Whether this is [`Wait::Now`].
    #[inline]
    pub(crate) fn is_now(self) -> bool {
        matches!(self, Wait::Now)
    }

    /// What is left at `now`: `Some(None)` without a deadline, `Some(Some(d))` with `d`
    /// left, `None` once the deadline passed (and always for [`Wait::Now`]).
    #[inline]
    pub(crate) fn left(self, now: Instant) -> Option<Option<Duration>> {
        match self {
            Wait::Now => None,
            Wait::Forever => Some(None),
            Wait::Until(d) => d.checked_duration_since(now).filter(|l| !l.is_zero()).map(Some),
        }
    }

    /// The next nap of a blocking loop that re-checks its peer's liveness: at most
    /// [`LIVENESS_INTERVAL`], at most what is left; `None` when the time is up (and
    /// always for [`Wait::Now`]).
    #[inline]
    pub(crate) fn nap(self) -> Option<Duration> {
        self.left(Instant::now())
            .map(|left| left.map_or(LIVENESS_INTERVAL, |l| l.min(LIVENESS_INTERVAL)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naps_are_bounded_by_the_interval_and_the_deadline() {
        assert_eq!(Wait::Now.nap(), None);
        assert_eq!(Wait::Forever.nap(), Some(LIVENESS_INTERVAL));
        let short = Wait::after(Duration::from_millis(5)).nap().unwrap();
        assert!(short <= Duration::from_millis(5) && !short.is_zero());
        assert!(Wait::after(Duration::from_secs(60)).nap() == Some(LIVENESS_INTERVAL));
        assert_eq!(Wait::Until(Instant::now() - Duration::from_millis(1)).nap(), None);
        assert_eq!(Wait::after(Duration::MAX), Wait::Forever);
        assert_eq!(Wait::from_timeout(None), Wait::Forever);
        assert!(Wait::Now.is_now() && !Wait::Forever.is_now());
    }
}
