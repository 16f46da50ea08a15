//! What keeps a [`Listener`](super::Listener)'s accept loop fair and cheap under
//! pressure:
//!
//! - [`Backoff`]: when `accept` fails because a resource is exhausted (`EMFILE`,
//!   `ENFILE`, `ENOBUFS`, `ENOMEM`), the waiting client stays in the backlog and `poll`
//!   keeps reporting it, so retrying at once spins a core at 100%. Instead the loop
//!   sleeps, 1 ms doubling up to [`MAX_BACKOFF`], and says so on stderr once per
//!   episode (and once when it ends).
//! - [`Handshakes`]: each accepted client's handshake runs on a thread of its own, and
//!   `accept` returns whichever finishes first, so a silent client costs at most its
//!   own handshake timeout and never delays an honest client queued behind it. At most
//!   [`MAX_IN_FLIGHT`] handshakes run at once; beyond that, clients wait in the backlog.

use super::{Address, PendingConnection, SocketConnection};
use crate::connection::ConnError;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The longest sleep between two `accept` attempts while resources are exhausted.
pub const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// The most handshakes a listener runs at once.
pub const MAX_IN_FLIGHT: usize = 256;

/// Whether `e` says a resource is exhausted (descriptors, buffers, memory), a state
/// that retrying at once cannot end.
pub(crate) fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The back-off state of one listener's accept loop.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    /// Failed attempts in the current episode (0: no episode).
    failures: AtomicU64,
}

impl Backoff {
    /// `accept` at `addr` failed with the exhaustion `e`: log the start of an episode,
    /// then sleep (doubling per failure, at most [`MAX_BACKOFF`], never past
    /// `deadline`).
    pub(crate) fn pause(&self, addr: &Address, e: &io::Error, deadline: Option<Instant>) {
        // Relaxed: a counter private to this listener's accept loop(s); only its value
        // matters, it orders nothing.
        let n = self.failures.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            eprintln!(
                "shmring: accept on {addr}: {e}; backing off (up to {} ms between attempts) until it succeeds",
                MAX_BACKOFF.as_millis()
            );
        }
        let mut nap = Duration::from_millis(1 << n.min(7)).min(MAX_BACKOFF);
        if let Some(d) = deadline {
            nap = nap.min(d.saturating_duration_since(Instant::now()));
        }
        std::thread::sleep(nap);
    }

    /// `accept` succeeded: end an episode, if one was running.
    pub(crate) fn reset(&self, addr: &Address) {
        // Relaxed: as in `pause`.
        let n = self.failures.swap(0, Ordering::Relaxed);
        if n > 0 {
            eprintln!("shmring: accept on {addr}: accepting again after {n} failed attempts");
        }
    }
}

type Outcome = Result<SocketConnection, ConnError>;

#[derive(Debug)]
struct Shared {
    results: Mutex<mpsc::Sender<Outcome>>,
    in_flight: AtomicUsize,
    /// Written (one byte) after each result is sent, so that a `poll` sees it.
    wake_w: OwnedFd,
}

/// The handshakes a listener is running, and their finished outcomes.
#[derive(Debug)]
pub(crate) struct Handshakes {
    shared: Arc<Shared>,
    done: Mutex<mpsc::Receiver<Outcome>>,
    wake_r: OwnedFd,
}

impl Handshakes {
    pub(crate) fn new() -> io::Result<Self> {
        use rustix::pipe::{PipeFlags, pipe_with};
        let (wake_r, wake_w) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
        let (tx, rx) = mpsc::channel();
        Ok(Handshakes {
            shared: Arc::new(Shared {
                results: Mutex::new(tx),
                in_flight: AtomicUsize::new(0),
                wake_w,
            }),
            done: Mutex::new(rx),
            wake_r,
        })
    }

    /// The descriptor that becomes readable when a handshake finishes.
    pub(crate) fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake_r.as_fd()
    }

    /// Whether [`MAX_IN_FLIGHT`] handshakes are running.
    pub(crate) fn full(&self) -> bool {
        // Relaxed: an estimate that decides whether to accept more clients now; a stale
        // value only lets a client wait one more nap in the backlog.
        self.shared.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT
    }

    /// A finished handshake's outcome, if any.
    pub(crate) fn take(&self) -> Option<Outcome> {
        let mut buf = [0u8; 64];
        while let Ok(n) = rustix::io::read(&self.wake_r, &mut buf) {
            if n < buf.len() {
                break;
            }
        }
        let rx = self.done.lock().unwrap_or_else(|p| p.into_inner());
        rx.try_recv().ok()
    }

    /// Run `pending`'s handshake on a thread of its own; its outcome comes out of
    /// [`Handshakes::take`].
    pub(crate) fn start(&self, pending: PendingConnection) {
        // Relaxed: a count read only by `full`, see there.
        self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let shared = self.shared.clone();
        let slot = Arc::new(Mutex::new(Some(pending)));
        let theirs = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("shmring-handshake".into())
            .spawn(move || {
                let pending = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(p) = pending {
                    finish(p, &shared);
                }
            });
        if spawned.is_err() {
            // No thread (a thread limit): this one handshake runs here, as it did
            // before handshakes had threads.
            let pending = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(p) = pending {
                finish(p, &self.shared);
            }
        }
    }
}

/// Run `pending`'s handshake and hand its outcome to the listener.
fn finish(pending: PendingConnection, shared: &Shared) {
    let outcome = pending.handshake();
    // Relaxed: see `Handshakes::full`.
    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    // The listener may be gone: the connection then just closes.
    let sent = shared
        .results
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(outcome)
        .is_ok();
    if sent {
        // A full pipe is fine: the reader has wake-ups pending anyway.
        let _ = rustix::io::write(&shared.wake_w, &[1]);
    }
}
