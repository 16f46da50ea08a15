//! The process-wide interrupt flag that blocking shmring waits check.
//!
//! `shmring::signal::Interrupt` raises it from a signal handler (or from any thread);
//! a blocking wait (receive, get, lock, acquire, wait) that finds it raised before it
//! sleeps or when it wakes returns an `Interrupted` error instead of sleeping on. The
//! flag stays raised until [`clear`]: a process told to stop keeps being told, so a
//! `Ctrl+C` unwinds every blocked thread, not just the first one to notice.
//!
//! The flag is a plain std atomic even under loom: it is not part of any protocol the
//! models check, and raising it must be async-signal-safe (a lone atomic store is).

use std::sync::atomic::{AtomicBool, Ordering};

static PENDING: AtomicBool = AtomicBool::new(false);

/// Whether an interrupt is pending. Cheap: one Relaxed load.
#[inline]
pub(crate) fn pending() -> bool {
    // Relaxed: the flag carries no data; a waiter that misses a store made this instant
    // sees it at its next check, at most one nap (LIVENESS_INTERVAL) later.
    PENDING.load(Ordering::Relaxed)
}

/// Raise the flag. Async-signal-safe.
#[cfg_attr(loom, allow(dead_code))] // raised by signal::Interrupt (not built under loom)
pub(crate) fn raise() {
    // Relaxed: see `pending`.
    PENDING.store(true, Ordering::Relaxed);
}

/// Lower the flag; later blocking waits sleep normally again.
#[cfg_attr(loom, allow(dead_code))] // lowered by signal::Interrupt (not built under loom)
pub(crate) fn clear() {
    // Relaxed: see `pending`.
    PENDING.store(false, Ordering::Relaxed);
}
