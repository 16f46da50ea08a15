//! Signals as events, an interrupt that ends every blocking shmring wait, and
//! real-time signals carrying a value between processes.
//!
//! - [`Signals`]: receive `SIGINT`, `SIGTERM`, `SIGUSR1`, `SIGHUP`, ... as a stream of
//!   numbers (an iterator, `recv`, `try_recv`, `recv_timeout`), closed from any thread
//!   through a [`SignalsHandle`]. Built on `signal_hook::iterator`'s self-pipe delivery.
//! - [`Interrupt`]: while it is installed, the listed signals (typically `SIGINT` and
//!   `SIGTERM`) raise a process-wide flag; while the flag is raised, every interruptible
//!   blocking shmring wait returns an `Interrupted` error instead of sleeping on — so
//!   Ctrl+C ends a process blocked in `recv` cleanly. [`Interrupt::trigger`] raises it
//!   from code.
//! - [`notify`]: send a signal to a process (`kill(2)`).
//! - [`queue`] and [`ValueSignals`]: a real-time signal carrying an `i32`
//!   (`sigqueue(3)`), received as `(sender pid, value)` in the order sent.
//!
//! # What runs in the signal handler, and why it is safe
//!
//! A signal handler may interrupt any code, including `malloc` or a lock holder, so it
//! may only call async-signal-safe functions (`signal-safety(7)`). The handlers here do
//! only this:
//!
//! - [`Signals`]: signal-hook's handler sets the signal's slot (an atomic store) and
//!   writes one byte to a non-blocking socket (`send(2)`, async-signal-safe).
//! - [`Interrupt`]: one Relaxed store of `true` to a static `AtomicBool` — lock-free, no
//!   allocation, no syscall.
//! - [`ValueSignals`]: reads the sender pid and value from the `siginfo_t` the kernel
//!   passed, writes one 8-byte record to a non-blocking pipe (`write(2)` is
//!   async-signal-safe; a write of at most `PIPE_BUF` bytes is atomic, so records never
//!   interleave; and a pipe keeps them in the order written), and on `EAGAIN` (pipe full)
//!   adds one to an `AtomicU64` drop counter. `errno` is saved and restored by
//!   signal-hook-registry around the actions.
//!
//! Registration, unregistration and everything else (waiting, decoding) run in normal
//! code. The handlers are installed with `SA_RESTART` by signal-hook-registry, which
//! chains any handler that was there before.
//!
//! # Which waits are interruptible
//!
//! While the flag is raised, these return an `Interrupted` error (the flag is checked
//! before each sleep and after each wake, after a last look at the condition: a message
//! that is already there is received, not lost): [`Connection`](crate::Connection)
//! receives and sends and [`poll`](crate::Connection::poll)
//! ([`ConnError::Interrupted`](crate::ConnError::Interrupted)),
//! [`connection::wait_interruptible`](crate::connection::wait_interruptible), the raw
//! rings' blocking `send`/`recv`/`claim`/`read`
//! ([`SendError::Interrupted`](crate::SendError::Interrupted),
//! [`RecvError::Interrupted`](crate::RecvError::Interrupted)), the MPMC ring's
//! `push`/`pop`, [`Queue`](crate::Queue) `get`/`put` and
//! [`JoinableQueue::join`](crate::JoinableQueue::join),
//! [`Mutex::lock_interruptible`](crate::sync::Mutex::lock_interruptible),
//! [`RLock::lock_interruptible`](crate::sync::RLock::lock_interruptible) and both
//! `lock_timeout`s, semaphore `acquire`/`acquire_timeout`, `Barrier::wait` (which breaks
//! the barrier, as a timeout does), [`Event::wait_interruptible`](crate::sync::Event::wait_interruptible),
//! [`Condition::wait_while_interruptible`](crate::sync::Condition::wait_while_interruptible).
//! `try_*` calls never return `Interrupted`. Not interruptible, because their result
//! has no room for it or because shmring uses them internally around short critical
//! sections: `Mutex::lock`/`RLock::lock`, `Event::wait`/`wait_timeout`,
//! `Condition::wait*`, [`connection::wait`](crate::connection::wait).
//!
//! # Promptness
//!
//! The handler runs on one thread (for a signal sent to the process, the kernel picks
//! one that does not block it). If that thread sleeps in a futex wait, the wait returns
//! `EINTR` at once (a timed `FUTEX_WAIT` is not restarted after a handler, even with
//! `SA_RESTART`) and the wait returns `Interrupted` within microseconds. Every other
//! blocked thread notices at the end of its current nap: waits sleep at most
//! [`LIVENESS_INTERVAL`](crate::sync::LIVENESS_INTERVAL) (50 ms) at a time, so within
//! about 50 ms. (`futex_waitv`, used by `connection::wait_interruptible`, is restarted
//! after a handler, so even the handler's thread waits out its nap there.)
//!
//! # Why the flag is process-wide and sticky
//!
//! A signal is delivered to one thread, but a process told to stop must unwind *every*
//! blocked thread. So the flag is one static for the whole process and stays raised
//! until [`Interrupt::clear`]: each blocked thread finds it at its next check, returns
//! `Interrupted`, and later blocking calls fail at once too, instead of one thread
//! consuming the interrupt and the others sleeping on. Clear it only once the process
//! has decided to go on.
//!
//! ```no_run
//! use shmring::signal::{Interrupt, SIGINT, SIGTERM};
//! use shmring::ConnError;
//!
//! let _interrupt = Interrupt::install(&[SIGINT, SIGTERM])?;
//! let (mut rx, _tx) = shmring::pipe(false)?;
//! match rx.recv::<String>() {
//!     Ok(msg) => println!("{msg}"),
//!     Err(ConnError::Interrupted) => println!("Ctrl+C: shutting down"),
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # References
//! - `signal(7)`, `signal-safety(7)`, `sigaction(2)`, `sigqueue(3)`, `kill(2)`, `pipe(7)`.
//! - signal-hook (Michal Vaner): <https://docs.rs/signal-hook>.

mod interrupt;
mod signals;
mod values;

pub use interrupt::Interrupt;
pub use signals::{Signals, SignalsHandle};
pub use values::ValueSignals;

pub use libc::{SIGALRM, SIGCHLD, SIGCONT, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};

use std::io;

/// Why a signal operation was refused or failed.
///
/// ```
/// use shmring::signal::{Signals, SignalError};
/// assert!(matches!(Signals::new(&[libc::SIGKILL]), Err(SignalError::Forbidden(9))));
/// assert!(matches!(Signals::new(&[0]), Err(SignalError::Invalid(0))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// Not a signal number of this system (`1..=SIGRTMAX`).
    #[error("{0} is not a signal number (1..={max})", max = rtmax())]
    Invalid(i32),
    /// A signal that cannot be caught (`SIGKILL`, `SIGSTOP`) or that signal-hook refuses
    /// to handle because a handler cannot recover from it (`SIGILL`, `SIGFPE`,
    /// `SIGSEGV`).
    #[error("signal {0} cannot be handled (SIGKILL, SIGSTOP, SIGILL, SIGFPE and SIGSEGV are refused)")]
    Forbidden(i32),
    /// A value travels only with a real-time signal (`SIGRTMIN..=SIGRTMAX`).
    #[error("signal {0} is not a real-time signal ({min}..={max}); only those carry a value", min = rtmin(), max = rtmax())]
    NotRealTime(i32),
    /// A system call failed (`kill`, `sigqueue`, `sigaction`, `pipe`, `poll`, ...).
    #[error("{op}: {source}")]
    Io {
        /// The call that failed.
        op: &'static str,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
}

impl SignalError {
    fn io(op: &'static str, source: impl Into<io::Error>) -> Self {
        SignalError::Io {
            op,
            source: source.into(),
        }
    }
}

/// Why a receive from [`Signals`] or [`ValueSignals`] returned nothing.
///
/// ```
/// use shmring::signal::{Signals, SignalRecvError};
/// let mut s = Signals::new(&[libc::SIGWINCH])?;
/// assert_eq!(s.try_recv(), Err(SignalRecvError::Empty));
/// s.handle().close();
/// assert_eq!(s.try_recv(), Err(SignalRecvError::Closed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalRecvError {
    /// Nothing has arrived (`try_recv`).
    #[error("no signal has arrived")]
    Empty,
    /// The timeout passed first (`recv_timeout`).
    #[error("timed out waiting for a signal")]
    Timeout,
    /// The receiver was closed (through its handle).
    #[error("the signal receiver is closed")]
    Closed,
}

/// The lowest real-time signal number available to applications (`SIGRTMIN`; glibc
/// keeps the first two of the kernel's for itself, so this is usually 34).
pub fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

/// The highest real-time signal number (`SIGRTMAX`, usually 64).
pub fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// `signal` is a signal number of this system.
fn check_number(signal: i32) -> Result<(), SignalError> {
    if (1..=rtmax()).contains(&signal) {
        Ok(())
    } else {
        Err(SignalError::Invalid(signal))
    }
}

/// `signal` may get a handler: a signal number, not one signal-hook refuses (it would
/// panic on those).
fn check_catchable(signal: i32) -> Result<(), SignalError> {
    check_number(signal)?;
    if signal_hook::consts::FORBIDDEN.contains(&signal) {
        return Err(SignalError::Forbidden(signal));
    }
    // glibc's internal real-time signals (32, 33: thread cancellation, setxid).
    if signal > libc::SIGSYS && signal < rtmin() {
        return Err(SignalError::Forbidden(signal));
    }
    Ok(())
}

/// `signal` is a real-time signal an application may use.
fn check_realtime(signal: i32) -> Result<(), SignalError> {
    check_number(signal)?;
    if (rtmin()..=rtmax()).contains(&signal) {
        Ok(())
    } else {
        Err(SignalError::NotRealTime(signal))
    }
}

/// Send `signal` to process `pid` (`kill(2)`), like Python's `os.kill`. Any signal number
/// of the system may be sent, `SIGKILL` and real-time ones included.
///
/// ```
/// use shmring::signal::{notify, SignalError};
/// // Signal 0 is not a signal (use it with care to probe a pid: not offered here).
/// assert!(matches!(notify(std::process::id(), 0), Err(SignalError::Invalid(0))));
/// ```
///
/// # References
/// - `kill(2)`
#[doc(alias = "kill")]
pub fn notify(pid: u32, signal: i32) -> Result<(), SignalError> {
    check_number(signal)?;
    let target = checked_pid(pid)?;
    if let Some(sig) = rustix::process::Signal::from_named_raw(signal) {
        return rustix::process::kill_process(target, sig).map_err(|e| SignalError::io("kill", e));
    }
    // A real-time signal: rustix reserves those to the libc, so call it directly.
    // SAFETY: kill has no memory-safety preconditions; both arguments are plain ints.
    if unsafe { libc::kill(target.as_raw_nonzero().get(), signal) } != 0 {
        return Err(SignalError::io("kill", io::Error::last_os_error()));
    }
    Ok(())
}

/// Send the real-time `signal` carrying `value` to process `pid` (`sigqueue(3)`): the
/// receiver's [`ValueSignals`] yields `(our pid, value)`. Real-time signals queue (they
/// are not merged) and a process receives those of one number in the order they were
/// sent. `SignalError::Io` with `EAGAIN` if the kernel's queue of pending signals of the
/// receiver's user is full (`RLIMIT_SIGPENDING`).
///
/// ```
/// use shmring::signal::{queue, rtmin, SignalError, SIGUSR1};
/// assert!(matches!(queue(std::process::id(), SIGUSR1, 7), Err(SignalError::NotRealTime(_))));
/// assert!(matches!(queue(std::process::id(), rtmin() - 1, 7), Err(SignalError::NotRealTime(_))));
/// ```
///
/// # References
/// - `sigqueue(3)`, `rt_sigqueueinfo(2)`
#[doc(alias = "sigqueue")]
pub fn queue(pid: u32, signal: i32, value: i32) -> Result<(), SignalError> {
    check_realtime(signal)?;
    let target = checked_pid(pid)?;
    // The union sigval { int sival_int; void *sival_ptr; }: libc spells only the pointer,
    // so the int is written at offset 0, where the union keeps it on any endianness.
    let mut v = libc::sigval {
        sival_ptr: std::ptr::null_mut(),
    };
    // SAFETY: `v` is a live, aligned sigval at least 4 bytes long; offset 0 is the int.
    unsafe { std::ptr::from_mut(&mut v).cast::<i32>().write(value) };
    // SAFETY: sigqueue reads only its arguments, passed by value.
    if unsafe { libc::sigqueue(target.as_raw_nonzero().get(), signal, v) } != 0 {
        return Err(SignalError::io("sigqueue", io::Error::last_os_error()));
    }
    Ok(())
}

/// How long a receive may still sleep. `deadline`: `None` do not wait (`Empty`);
/// `Some(None)` no limit; `Some(Some(t))` until `t` (`Timeout` once it passed).
fn time_left(deadline: Option<Option<std::time::Instant>>) -> Result<Option<std::time::Duration>, SignalRecvError> {
    match deadline {
        None => Err(SignalRecvError::Empty),
        Some(None) => Ok(None),
        Some(Some(d)) => match d.checked_duration_since(std::time::Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(SignalRecvError::Timeout),
        },
    }
}

/// Sleep until `fd` is readable, at most `timeout` (`None`: no limit; rounded up to
/// whole milliseconds). A signal (`EINTR`) or an error ends the sleep early: callers
/// loop, re-checking their state.
fn poll_in(fd: &impl std::os::fd::AsRawFd, timeout: Option<std::time::Duration>) {
    let ms = timeout.map_or(-1, |t| {
        i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    });
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd, live for the call; nfds is 1.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
        // A poll of one open descriptor does not fail otherwise; do not spin on it.
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A positive pid: 0 and values above `i32::MAX` would address process groups or every
/// process.
fn checked_pid(pid: u32) -> Result<rustix::process::Pid, SignalError> {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| SignalError::io("kill", io::Error::from(io::ErrorKind::InvalidInput)))
}

#[cfg(test)]
mod tests;
