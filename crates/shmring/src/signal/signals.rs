//! [`Signals`]: signals as a stream of events, on signal-hook's self-pipe delivery.

use super::{SignalError, SignalRecvError, check_catchable};
use signal_hook::iterator::backend::{Handle, SignalDelivery};
use signal_hook::iterator::exfiltrator::SignalOnly;
use std::collections::VecDeque;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// A receiver of signals: each registered signal that arrives is yielded as its number.
///
/// Registering a signal replaces its default action (termination, for `SIGINT`,
/// `SIGTERM`, `SIGHUP`, `SIGUSR1`...) for the whole process while it is registered. Like
/// every Unix signal, several arrivals of one (non-real-time) signal before they are
/// received may be merged into one, and signals that arrived together come in signal
/// number order. Dropping the receiver unregisters its handlers; the signal-hook
/// registry keeps its process-wide handler, so a signal nobody else handles is then
/// ignored rather than given its default action back.
///
/// The handler sets a flag per signal and writes one byte to a socket pair (see the
/// [module docs](super)); `recv` polls the socket.
///
/// ```no_run
/// use shmring::signal::{Signals, SIGHUP, SIGTERM};
/// let mut signals = Signals::new(&[SIGHUP, SIGTERM])?;
/// let handle = signals.handle(); // close() ends the loop from another thread
/// for sig in &mut signals {
///     match sig {
///         SIGHUP => println!("reload"),
///         _ => break,
///     }
/// }
/// # drop(handle);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Signals {
    delivery: SignalDelivery<UnixStream, SignalOnly>,
    /// Arrived, not yet returned.
    queue: VecDeque<i32>,
}

/// Closes a [`Signals`] from any thread; cheap to clone.
///
/// ```
/// use shmring::signal::{Signals, SIGWINCH};
/// let mut s = Signals::new(&[SIGWINCH])?;
/// let h = s.handle();
/// std::thread::spawn(move || h.close());
/// assert_eq!(s.recv(), None); // the iterator ends once closed
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SignalsHandle(Handle);

impl SignalsHandle {
    /// End the receiver: a blocked `recv` returns `None` (and the iterator ends), later
    /// receives return [`SignalRecvError::Closed`]. The handlers stay registered until the
    /// `Signals` is dropped.
    pub fn close(&self) {
        self.0.close();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl Signals {
    /// Register handlers for `signals` and receive them. [`SignalError::Forbidden`] for
    /// `SIGKILL`, `SIGSTOP`, `SIGILL`, `SIGFPE`, `SIGSEGV` (and glibc's internal
    /// real-time signals), [`SignalError::Invalid`] for a number that is no signal;
    /// nothing is registered then.
    pub fn new(signals: &[i32]) -> Result<Self, SignalError> {
        for &s in signals {
            check_catchable(s)?;
        }
        let (read, write) = UnixStream::pair().map_err(|e| SignalError::io("socketpair", e))?;
        // Checked above: signal-hook would panic on a forbidden or out-of-range number.
        let delivery =
            SignalDelivery::with_pipe(read, write, SignalOnly, signals).map_err(|e| SignalError::io("sigaction", e))?;
        Ok(Signals {
            delivery,
            queue: VecDeque::new(),
        })
    }

    /// Register one more signal (same checks as [`Signals::new`]).
    pub fn add(&self, signal: i32) -> Result<(), SignalError> {
        check_catchable(signal)?;
        self.delivery
            .handle()
            .add_signal(signal)
            .map_err(|e| SignalError::io("sigaction", e))
    }

    /// A handle that closes this receiver from another thread.
    pub fn handle(&self) -> SignalsHandle {
        SignalsHandle(self.delivery.handle())
    }

    /// The next signal, waiting as long as it takes; `None` once closed.
    pub fn recv(&mut self) -> Option<i32> {
        self.next_until(Some(None)).ok()
    }

    /// The next signal if one has arrived ([`SignalRecvError::Empty`] otherwise).
    pub fn try_recv(&mut self) -> Result<i32, SignalRecvError> {
        self.next_until(None)
    }

    /// The next signal, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<i32, SignalRecvError> {
        // A deadline too far to represent is no deadline.
        self.next_until(Some(Instant::now().checked_add(timeout)))
    }

    /// `deadline`: `None` do not wait; `Some(None)` no limit; `Some(Some(t))` until `t`.
    fn next_until(&mut self, deadline: Option<Option<Instant>>) -> Result<i32, SignalRecvError> {
        loop {
            if let Some(s) = self.queue.pop_front() {
                return Ok(s);
            }
            if self.delivery.handle().is_closed() {
                return Err(SignalRecvError::Closed);
            }
            // Drain the socket, then read the flags: a signal after the drain leaves a
            // byte behind, so the poll below does not sleep through it.
            self.queue.extend(self.delivery.pending());
            if !self.queue.is_empty() {
                continue;
            }
            let timeout = super::time_left(deadline)?;
            super::poll_in(self.delivery.get_read(), timeout);
        }
    }
}

impl Iterator for Signals {
    type Item = i32;

    /// [`Signals::recv`]: blocks; ends once closed.
    fn next(&mut self) -> Option<i32> {
        self.recv()
    }
}
