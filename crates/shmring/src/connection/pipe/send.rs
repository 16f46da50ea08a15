//! Sending over a pipe end: a message that fits one record is written in place as one
//! `WHOLE` frame; any message goes in frames (chunked when it is larger than a record),
//! with an `ABORT` frame before the next message after a send that stopped part-way.

use super::PipeTransport;
use crate::connection::ConnError;
use crate::connection::frame::{ABORT_FRAME, Framer, WHOLE};
use crate::ring::spsc::Producer;
use crate::sync::Wait;
use std::time::Instant;

/// A chunked message travels in records of `1 / CHUNKS_PER_RING` of the ring.
const CHUNKS_PER_RING: usize = 8;

impl PipeTransport {
    /// [`Sealed::send_in_place`](crate::connection::transport::sealed::Sealed::send_in_place):
    /// one `WHOLE` frame of `len` bytes that `write` writes in place.
    #[inline]
    pub(super) fn send_whole(
        &mut self,
        len: usize,
        wait: Wait,
        write: impl FnOnce(&mut [u8]) -> bool,
    ) -> Result<bool, ConnError> {
        let max = self.max;
        let abort_pending = self.abort_pending;
        let tx = self.tx_mut()?;
        if len > max {
            return Err(ConnError::MessageTooLarge { len: len as u64, max });
        }
        // One WHOLE frame, as the framer would make it; a longer message is chunked by
        // send_frames.
        if len >= tx.max_message_len() {
            return Ok(false);
        }
        if abort_pending {
            send_record(tx, &ABORT_FRAME, wait)?;
            self.abort_pending = false;
        }
        let Some(tx) = self.tx.as_mut() else {
            return Err(ConnError::Closed);
        };
        let mut g = match wait {
            Wait::Forever => tx.claim(len + 1),
            Wait::Now => tx.try_claim(len + 1),
            Wait::Until(d) => tx.claim_timeout(len + 1, d.saturating_duration_since(Instant::now())),
        }?;
        // One look at the claimed bytes (each deref checks the bounds again).
        let Some((kind, body)) = g.split_first_mut() else {
            return Ok(false);
        };
        *kind = WHOLE;
        if !write(body) {
            // Dropped without commit: aborted, nothing sent.
            return Ok(false);
        }
        g.commit();
        Ok(true)
    }

    /// [`Sealed::send_guessed`](crate::connection::transport::sealed::Sealed::send_guessed):
    /// [`PipeTransport::send_whole`] of a guessed length, claimed without waiting.
    #[inline]
    pub(super) fn send_whole_guessed(&mut self, len: usize, write: impl FnOnce(&mut [u8]) -> bool) -> bool {
        if self.abort_pending || len > self.max {
            return false;
        }
        let Some(tx) = self.tx.as_mut() else {
            return false;
        };
        // One WHOLE frame, as in send_in_place.
        if len >= tx.max_message_len() {
            return false;
        }
        // Not waiting: a guess must never wait for space that the real length would
        // not need; any error here is found again, and reported, by the exact path.
        let Ok(mut g) = tx.try_claim(len + 1) else {
            return false;
        };
        // One look at the claimed bytes (each deref checks the bounds again).
        let Some((kind, body)) = g.split_first_mut() else {
            return false;
        };
        *kind = WHOLE;
        if !write(body) {
            // Dropped without commit: aborted, nothing sent.
            return false;
        }
        g.commit();
        true
    }

    /// Send the frames of `msg`, waiting per `wait`; after a failure part-way, ABORT goes
    /// out before the next message.
    pub(super) fn send_frames(&mut self, msg: &[u8], wait: Wait) -> Result<(), ConnError> {
        let max = self.max;
        let abort_pending = self.abort_pending;
        let tx = self.tx_mut()?;
        if msg.len() > max {
            return Err(ConnError::MessageTooLarge {
                len: msg.len() as u64,
                max,
            });
        }
        if abort_pending {
            send_record(tx, &ABORT_FRAME, wait)?;
        }
        // Chunks of an eighth of the ring: several are in flight at once, so the
        // receiver copies one out while the sender copies the next in, and a hand-off
        // that needs the scheduler moves most of a ring, not one record.
        let framer = Framer::new(msg.len(), tx.max_message_len(), tx.capacity() / CHUNKS_PER_RING);
        let chunked = framer.is_chunked();
        let mut sent = 0usize;
        let mut failed = None;
        for f in framer {
            let grant = match wait {
                Wait::Forever => tx.claim(f.len()),
                Wait::Now => tx.try_claim(f.len()),
                Wait::Until(d) => tx.claim_timeout(f.len(), d.saturating_duration_since(Instant::now())),
            };
            match grant {
                Ok(mut g) => {
                    f.write(msg, &mut g);
                    g.commit();
                    sent += 1;
                }
                Err(e) => {
                    failed = Some(ConnError::from(e));
                    break;
                }
            }
        }
        // Past the first frame, the receiver holds part of the message: it must be told
        // to drop it (unless it is gone).
        self.abort_pending = chunked && sent > 0 && failed.is_some() && failed != Some(ConnError::Disconnected);
        failed.map_or(Ok(()), Err)
    }
}

/// Send one record holding `frame`, waiting per `wait`.
pub(super) fn send_record(tx: &mut Producer, frame: &[u8], wait: Wait) -> Result<(), ConnError> {
    match wait {
        Wait::Forever => tx.send(frame),
        Wait::Now => tx.try_send(frame),
        Wait::Until(d) => tx.send_timeout(frame, d.saturating_duration_since(Instant::now())),
    }
    .map_err(ConnError::from)
}
