//! [`ValueSignals`]: real-time signals carrying a value, received in order.

use super::{SignalError, SignalRecvError, check_realtime};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::io::Errno;
use signal_hook_registry::SigId;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One record in the pipe: the sender's pid and the value, native-endian.
const RECORD: usize = 8;

/// A receiver of one real-time signal sent with [`queue`](super::queue): yields
/// `(sender pid, value)` in the order the signals were handled — for one sending thread
/// and a receiving process whose signal is handled by one thread at a time, the order
/// they were sent.
///
/// The handler (see the [module docs](super)) appends an 8-byte record to a
/// non-blocking pipe; if the pipe is full (64 KiB by default: 8192 records not yet
/// received) the record is dropped and counted in [`dropped`](Self::dropped). Signals
/// sent with plain `kill` arrive with value 0. Only one `ValueSignals` per signal
/// number should exist: each registered receiver gets every arrival.
///
/// ```
/// use shmring::signal::{queue, rtmin, ValueSignals};
/// let mut rx = ValueSignals::new(rtmin() + 7)?;
/// queue(std::process::id(), rtmin() + 7, 42)?;
/// let (pid, value) = rx.recv_timeout(std::time::Duration::from_secs(10))?;
/// assert_eq!((pid, value), (std::process::id(), 42));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ValueSignals {
    signal: i32,
    id: Option<SigId>,
    read: OwnedFd,
    /// The write end, kept open until the handler is unregistered.
    _write: Arc<OwnedFd>,
    dropped: Arc<AtomicU64>,
    /// Bytes of a record split across reads (a read of a pipe returns whole writes in
    /// practice; kept for safety).
    partial: Vec<u8>,
}

impl ValueSignals {
    /// Register a handler for the real-time `signal` (`rtmin()..=rtmax()`,
    /// [`SignalError::NotRealTime`] otherwise).
    pub fn new(signal: i32) -> Result<Self, SignalError> {
        check_realtime(signal)?;
        let (read, write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| SignalError::io("pipe2", e))?;
        let write = Arc::new(write);
        let dropped = Arc::new(AtomicU64::new(0));
        let (fd, count) = (write.as_raw_fd(), dropped.clone());
        let action = move |info: &libc::siginfo_t| {
            // SAFETY: the kernel filled `info` for this signal; for a signal sent by
            // kill or sigqueue (SI_USER, SI_QUEUE) si_pid and si_value are valid, and for
            // other codes they read initialized bytes of the union (zeros).
            let (pid, value) = unsafe { (info.si_pid(), info.si_value()) };
            // SAFETY: the int member of union sigval lives at offset 0.
            let value = unsafe { std::ptr::from_ref(&value).cast::<i32>().read() };
            let mut rec = [0u8; RECORD];
            rec[..4].copy_from_slice(&pid.to_ne_bytes());
            rec[4..].copy_from_slice(&value.to_ne_bytes());
            // SAFETY: `fd` is the pipe's write end, open until this action is
            // unregistered (`Drop` unregisters before the Arc'd fd can close); `rec`
            // is 8 valid bytes. write(2) is async-signal-safe.
            let n = unsafe { libc::write(fd, rec.as_ptr().cast(), RECORD) };
            if n != RECORD as isize {
                // EAGAIN: the pipe is full (8 bytes <= PIPE_BUF: all or nothing).
                // Relaxed: a counter read for display; a lock-free RMW.
                count.fetch_add(1, Ordering::Relaxed);
            }
        };
        // SAFETY: the action is async-signal-safe: it reads the siginfo, writes 8 bytes
        // with write(2), and may do one lock-free atomic add; no allocation, no lock.
        let id = unsafe { signal_hook_registry::register_sigaction(signal, action) }
            .map_err(|e| SignalError::io("sigaction", e))?;
        Ok(ValueSignals {
            signal,
            id: Some(id),
            read,
            _write: write,
            dropped,
            partial: Vec::new(),
        })
    }

    /// The signal number this receiver handles.
    pub fn signal(&self) -> i32 {
        self.signal
    }

    /// Records dropped because the pipe was full when their signal arrived.
    pub fn dropped(&self) -> u64 {
        // Relaxed: a counter.
        self.dropped.load(Ordering::Relaxed)
    }

    /// The next `(sender pid, value)`, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<(u32, i32), SignalRecvError> {
        self.next_until(Some(None))
    }

    /// The next `(sender pid, value)` if one has arrived.
    pub fn try_recv(&mut self) -> Result<(u32, i32), SignalRecvError> {
        self.next_until(None)
    }

    /// The next `(sender pid, value)`, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<(u32, i32), SignalRecvError> {
        self.next_until(Some(Instant::now().checked_add(timeout)))
    }

    /// `deadline`: `None` do not wait; `Some(None)` no limit; `Some(Some(t))` until `t`.
    fn next_until(&mut self, deadline: Option<Option<Instant>>) -> Result<(u32, i32), SignalRecvError> {
        loop {
            let mut buf = [0u8; RECORD];
            let have = self.partial.len();
            buf[..have].copy_from_slice(&self.partial);
            match rustix::io::read(&self.read, &mut buf[have..]) {
                Ok(n) if have + n == RECORD => {
                    self.partial.clear();
                    let pid = i32::from_ne_bytes(buf[..4].try_into().expect("4 bytes"));
                    let value = i32::from_ne_bytes(buf[4..].try_into().expect("4 bytes"));
                    return Ok((pid.max(0) as u32, value));
                }
                Ok(n) => {
                    self.partial.extend_from_slice(&buf[have..have + n]);
                    continue;
                }
                Err(Errno::INTR) => continue,
                // EAGAIN: empty. (Nothing else is expected of a pipe we own.)
                Err(_) => {}
            }
            let timeout = super::time_left(deadline)?;
            super::poll_in(&self.read, timeout);
        }
    }
}

impl Drop for ValueSignals {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            // signal-hook-registry frees an action only once no handler runs it any
            // more, and no handler starts it after this: the write end (a field, dropped
            // after this) outlives every use of its number in the action.
            signal_hook_registry::unregister(id);
        }
    }
}
