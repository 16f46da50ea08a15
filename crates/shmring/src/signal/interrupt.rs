//! [`Interrupt`]: signals that raise the process-wide interrupt flag.

use super::{SignalError, check_catchable};
use crate::sync::interrupt as flag;
use signal_hook_registry::SigId;

/// While installed, each listed signal raises the process-wide interrupt flag, and every
/// interruptible blocking shmring wait returns an `Interrupted` error instead of
/// sleeping (see the [module docs](super) for which waits, how fast, and why the flag is
/// process-wide and stays raised until [`clear`](Self::clear)).
///
/// Installing replaces the default action of the signals (for `SIGINT`: terminating the
/// process) with raising the flag, so the program decides how to end. Dropping the
/// handle unregisters its handler; **the default action is not restored**:
/// signal-hook-registry keeps its process-wide handler installed (restoring the
/// default behind the back of other registrations would break them), so a signal that
/// nothing else handles is then ignored. Keep the handle for as long as the process
/// should react, typically all of `main`.
///
/// ```
/// use shmring::signal::Interrupt;
/// use shmring::ConnError;
/// # // Not SIGINT: a doc test shares nothing, but keep it harmless.
/// let i = Interrupt::install(&[])?; // no signal: trigger from code only
/// let (mut rx, _tx) = shmring::pipe(false)?;
/// i.trigger(); // e.g. from a watchdog thread
/// assert_eq!(rx.recv::<u32>(), Err(ConnError::Interrupted));
/// assert!(i.is_pending());
/// i.clear();
/// assert_eq!(rx.try_recv::<u32>(), Err(ConnError::WouldBlock));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Interrupt {
    ids: Vec<SigId>,
}

impl Interrupt {
    /// Make each of `signals` raise the interrupt flag (through signal-hook-registry; the
    /// handler is one atomic store, async-signal-safe). [`SignalError::Forbidden`] or
    /// [`SignalError::Invalid`] as for [`Signals::new`](super::Signals::new); nothing is
    /// installed then.
    pub fn install(signals: &[i32]) -> Result<Self, SignalError> {
        for &s in signals {
            check_catchable(s)?;
        }
        let mut me = Interrupt { ids: Vec::new() };
        for &s in signals {
            // SAFETY: the action only calls `flag::raise`, one Relaxed store to a static
            // AtomicBool: async-signal-safe (no lock, no allocation, no syscall).
            let id = unsafe { signal_hook_registry::register(s, flag::raise) }
                .map_err(|e| SignalError::io("sigaction", e))?;
            // On an error above, `me` drops and unregisters what was registered.
            me.ids.push(id);
        }
        Ok(me)
    }

    /// Raise the flag from code (as if one of the signals arrived).
    pub fn trigger(&self) {
        flag::raise();
    }

    /// Whether the flag is raised.
    pub fn is_pending(&self) -> bool {
        flag::pending()
    }

    /// Lower the flag: later blocking waits sleep normally again. A signal that arrives
    /// after this raises it again.
    pub fn clear(&self) {
        flag::clear();
    }
}

impl Drop for Interrupt {
    /// Unregister the handlers (the flag itself stays as it is).
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}
