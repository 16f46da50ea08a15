//! Receiving on a pipe end: a message of one record in place, messages in batches, any
//! message through the reassembler; and whether a receive would not wait (readiness for
//! `wait` and `poll`).

use super::{PipeTransport, no_rx};
use crate::connection::frame::{Reassembler, WHOLE};
use crate::connection::{ConnError, MessageRef};
use crate::ring::spsc::{Consumer, ReadLook as Look};
use crate::sync::{LIVENESS_INTERVAL, Wait};
use std::time::Instant;

impl PipeTransport {
    /// The receiving half's parts (the consumer, the reassembler, the largest message),
    /// or why there is nothing to receive from: no receiving end, or a reassembly that
    /// broke earlier.
    #[inline]
    fn receiving(&mut self) -> Result<(&mut Consumer, &mut Reassembler, usize), ConnError> {
        let Some(rx) = self.rx.as_mut() else {
            return Err(no_rx(self.closed));
        };
        if let Some(e) = self.reasm.broken() {
            return Err(ConnError::BadFrame(e));
        }
        Ok((rx, &mut self.reasm, self.max))
    }

    /// [`Sealed::recv_in_place`](crate::connection::transport::sealed::Sealed::recv_in_place):
    /// a message of one record where it lies, else reassembled in `scratch`.
    #[inline]
    pub(super) fn recv_whole<'a>(
        &'a mut self,
        scratch: &'a mut Vec<u8>,
        wait: Wait,
    ) -> Result<MessageRef<'a>, ConnError> {
        let (rx, reasm, max) = self.receiving()?;
        // A message that is one record is handed over where it lies; fragments go to
        // the reassembler until a message is complete.
        let r = rx.read_or(wait, |f| {
            if is_whole(f, reasm, max) {
                return Look::Whole;
            }
            match reasm.push(f, scratch) {
                Ok(Some(n)) => Look::Done(Ok(n)),
                Ok(None) => Look::More,
                Err(e) => Look::Done(Err(e)),
            }
        });
        match r.map_err(|e| gone(e, reasm))? {
            Ok(grant) => Ok(MessageRef::record(grant)),
            Err(done) => Ok(MessageRef::bytes(&scratch[..done?])),
        }
    }

    /// [`Sealed::recv_batch`](crate::connection::transport::sealed::Sealed::recv_batch):
    /// up to `max_batch` messages handed to `f`, their space released once.
    pub(super) fn recv_many(
        &mut self,
        scratch: &mut Vec<u8>,
        max_batch: usize,
        wait: Wait,
        mut f: impl FnMut(MessageRef<'_>),
    ) -> Result<usize, ConnError> {
        let (rx, reasm, max) = self.receiving()?;
        loop {
            if !wait.is_now() {
                rx.peek_with(wait, |_| ()).map_err(|e| gone(e, reasm))?;
            }
            let mut n = 0;
            let mut failed = None;
            let r = rx.drain_while(usize::MAX, |frame| {
                if n == max_batch || failed.is_some() {
                    return false;
                }
                if is_whole(frame, reasm, max) {
                    f(MessageRef::bytes(&frame[1..]));
                    n += 1;
                    return true;
                }
                if n > 0 {
                    // Anything but a plain message (a chunk, an error) is left for the
                    // next receive, which reports it.
                    return false;
                }
                match reasm.push(frame, scratch) {
                    Ok(Some(len)) => {
                        f(MessageRef::bytes(&scratch[..len]));
                        n += 1;
                    }
                    Ok(None) => {}
                    Err(e) => failed = Some(e),
                }
                true
            });
            if let Some(e) = failed {
                return Err(e);
            }
            match r {
                Ok(_) | Err(crate::RecvError::Empty) => {}
                Err(_) if n > 0 => {}
                Err(e) => return Err(gone(e, reasm)),
            }
            if n > 0 {
                return Ok(n);
            }
            if wait.is_now() {
                return Err(ConnError::WouldBlock);
            }
            // Only part of a chunked message was there: wait for the rest.
        }
    }

    /// Receive the next message into `out`, waiting per `wait`.
    pub(super) fn recv_frames(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, ConnError> {
        let closed = self.closed;
        let Some(rx) = self.rx.as_mut() else {
            return Err(if closed {
                ConnError::Closed
            } else {
                ConnError::WrongDirection { allowed: "send" }
            });
        };
        let reasm = &mut self.reasm;
        if let Some(e) = reasm.broken() {
            return Err(ConnError::BadFrame(e));
        }
        loop {
            let grant = match wait {
                Wait::Forever => rx.read(),
                Wait::Now => rx.try_read(),
                Wait::Until(d) => rx.read_timeout(d.saturating_duration_since(Instant::now())),
            };
            let grant = match grant {
                Ok(g) => g,
                Err(e) => {
                    if e == crate::RecvError::Disconnected {
                        reasm.peer_gone();
                    }
                    return Err(e.into());
                }
            };
            let r = reasm.push(&grant, out);
            drop(grant);
            if let Some(n) = r? {
                return Ok(n);
            }
        }
    }

    /// Whether a receive would return without waiting for a message to start (see
    /// [`crate::connection::wait`]); `check_liveness` also asks the kernel whether the peer died, if
    /// that was not asked within the last [`LIVENESS_INTERVAL`].
    pub(crate) fn is_ready(&self, check_liveness: bool) -> bool {
        match &self.rx {
            None => true,
            Some(rx) => {
                if self.reasm.broken().is_some() || rx.has_record() || self.peer_dead.get() {
                    return true;
                }
                let liveness = check_liveness && self.liveness_due();
                let gone = rx.producer_gone(liveness);
                if gone && liveness {
                    self.peer_dead.set(true);
                }
                // A receive ring poisoned by a peer's resize: a waiting receive reports
                // it (`Corrupted`), so it is ready (an fstat at most every interval).
                gone || (liveness && rx.sh.poisoned())
            }
        }
    }

    /// Whether a liveness check is due (and if so, record it as done now).
    fn liveness_due(&self) -> bool {
        let now = Instant::now();
        let due = self
            .liveness_checked
            .get()
            .is_none_or(|t| now.duration_since(t) >= LIVENESS_INTERVAL);
        if due {
            self.liveness_checked.set(Some(now));
        }
        due
    }

    /// The receiving ring, if this end has one and can still receive.
    pub(crate) fn receiver(&self) -> Option<&Consumer> {
        self.rx.as_ref()
    }
}

/// Whether `frame` is a message as it is: a `WHOLE` frame within the limit `max`, between
/// messages.
#[inline]
fn is_whole(frame: &[u8], reasm: &Reassembler, max: usize) -> bool {
    frame.first() == Some(&WHOLE) && frame.len() - 1 <= max && reasm.is_idle()
}

/// A ring's receive error as the connection's; the reassembler drops a message cut by
/// a departed sender.
fn gone(e: crate::RecvError, reasm: &mut Reassembler) -> ConnError {
    if e == crate::RecvError::Disconnected {
        reasm.peer_gone();
    }
    e.into()
}
