//! The frames that carry a connection's messages over its SPSC ring: the sender's plan
//! ([`Framer`]) and the receiver's reassembler ([`Reassembler`]). Pure code over byte
//! slices — no ring, no syscall — so that every rule is unit-tested and fuzzed
//! (`fuzz/fuzz_targets/frames.rs`).
//!
//! One ring record holds one frame; its first byte is the kind:
//!
//! ```text
//! WHOLE  = 1   [1][message ...]                    a message that fits one record
//! FIRST  = 2   [2][total: u64 LE][chunk ...]       starts a chunked message of `total` bytes
//! MORE   = 3   [3][chunk ...]                      continues it
//! LAST   = 4   [4][chunk ...]                      completes it
//! ABORT  = 5   [5]                                 drops it (the sender gave up mid-way)
//! ```
//!
//! The lengths must agree: the chunk of a FIRST is shorter than `total`, a MORE leaves
//! the message incomplete, a LAST makes the received bytes exactly `total`. The sender
//! uses WHOLE whenever the message fits the ring's largest record, and otherwise fills
//! records of an eighth of the ring (chunks of `record - 9`, then `record - 1` bytes, the
//! last one shorter) so that several are in flight at once; but the receiver only relies
//! on the rules above.
//!
//! # Trust
//!
//! Every byte comes from the peer. A frame that breaks a rule is a [`FrameError`]: the
//! message in progress is dropped and the receive direction stays broken (every later
//! receive reports the same error), since nothing after a broken frame can be trusted.
//! A message longer than the receiver's limit is [`ConnError::MessageTooLarge`]: its
//! remaining frames are checked and skipped, and the next message is received normally.
//! Memory grows only as chunks arrive (never up front from `total`) and never beyond
//! `total`, which is at most the limit.

use super::ConnError;
use std::ops::Range;

/// Kind byte of a frame that holds a whole message.
pub(crate) const WHOLE: u8 = 1;
/// Kind byte of the first frame of a chunked message (followed by the total length).
pub(crate) const FIRST: u8 = 2;
/// Kind byte of a middle frame of a chunked message.
pub(crate) const MORE: u8 = 3;
/// Kind byte of the frame that completes a chunked message.
pub(crate) const LAST: u8 = 4;
/// Kind byte of the frame that drops the chunked message in progress.
pub(crate) const ABORT: u8 = 5;
/// Length of a FIRST frame's header: the kind and the total length (u64, little-endian).
pub(crate) const FIRST_HEADER_LEN: usize = 9;
/// The smallest record a message can be framed into: a FIRST header and one byte.
pub(crate) const MIN_RECORD: usize = FIRST_HEADER_LEN + 1;
/// The frame that drops a chunked message in progress.
pub(crate) const ABORT_FRAME: [u8; 1] = [ABORT];

/// Why a frame from the peer was rejected. After one, the receive direction of the
/// connection is broken: every later receive returns the same error.
///
/// ```
/// use shmring::connection::FrameError;
/// let e = FrameError::UnknownKind(9);
/// assert_eq!(e.to_string(), "unknown frame kind 9");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A record of zero bytes (every frame has a kind byte).
    #[error("empty frame")]
    Empty,
    /// A kind byte that is none of WHOLE, FIRST, MORE, LAST, ABORT.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// Descriptors (`SCM_RIGHTS`) came with a socket connection's bytes in a way no
    /// handle frame explains: more than one message's worth, truncated control data,
    /// or more left unclaimed than a connection holds.
    #[error("descriptors: {0}")]
    Descriptors(&'static str),
    /// A FIRST frame too short to hold its total length.
    #[error("FIRST frame of {len} bytes is shorter than its 9-byte header")]
    ShortFirst {
        /// The frame's length.
        len: usize,
    },
    /// A MORE, LAST or ABORT frame with no chunked message in progress.
    #[error("{kind} frame outside a chunked message")]
    UnexpectedContinuation {
        /// `MORE`, `LAST` or `ABORT`.
        kind: &'static str,
    },
    /// A WHOLE or FIRST frame while a chunked message is in progress.
    #[error("{kind} frame in the middle of a chunked message")]
    UnexpectedStart {
        /// `WHOLE` or `FIRST`.
        kind: &'static str,
    },
    /// The chunks do not add up to the announced total: a FIRST or MORE frame that
    /// reaches it, a LAST frame that falls short of it or passes it.
    #[error("chunks of {got} bytes disagree with the announced total of {total} bytes")]
    LengthMismatch {
        /// The total the FIRST frame announced.
        total: u64,
        /// The bytes received with this frame included (saturated at `u64::MAX`).
        got: u64,
    },
    /// An ABORT frame with bytes after its kind.
    #[error("ABORT frame with {len} bytes of payload")]
    AbortWithPayload {
        /// The payload's length.
        len: usize,
    },
    /// A socket frame header whose reserved bytes are not zero (`net`): the peer does
    /// not speak this frame format, or the stream lost its place.
    #[error("socket frame header with non-zero reserved bytes {0:#08x}")]
    ReservedBits(u32),
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        WHOLE => "WHOLE",
        FIRST => "FIRST",
        MORE => "MORE",
        LAST => "LAST",
        _ => "ABORT",
    }
}

/// One frame of a message, as planned by [`Framer`]: a header (the kind byte, plus the
/// total length for FIRST) and the range of the message it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    header: [u8; FIRST_HEADER_LEN],
    header_len: usize,
    /// The bytes of the message this frame carries.
    pub(crate) payload: Range<usize>,
}

impl Frame {
    /// The frame's header bytes.
    pub(crate) fn header(&self) -> &[u8] {
        &self.header[..self.header_len]
    }

    /// The frame's length in the ring: header plus payload.
    pub(crate) fn len(&self) -> usize {
        self.header_len + self.payload.len()
    }

    /// Write the frame for message `msg` into `dst`, which is [`Frame::len`] bytes.
    pub(crate) fn write(&self, msg: &[u8], dst: &mut [u8]) {
        let (h, p) = dst.split_at_mut(self.header_len);
        h.copy_from_slice(self.header());
        p.copy_from_slice(&msg[self.payload.clone()]);
    }
}

/// The frames of a message of `len` bytes: one WHOLE frame if it fits a record of
/// `max_record` bytes, else FIRST, MORE..., LAST in records of `chunk_record` bytes
/// (the last one shorter).
#[derive(Debug, Clone)]
pub(crate) struct Framer {
    len: usize,
    max_record: usize,
    chunk_record: usize,
    /// Bytes of the message planned so far.
    pos: usize,
    started: bool,
    done: bool,
}

impl Framer {
    /// Plan `len` bytes: whole in a record of up to `max_record` bytes, else in chunks
    /// of `chunk_record` bytes (clamped to `MIN_RECORD..=max_record`; `max_record` is at
    /// least [`MIN_RECORD`]).
    pub(crate) fn new(len: usize, max_record: usize, chunk_record: usize) -> Self {
        assert!(
            max_record >= MIN_RECORD,
            "records of {max_record} bytes cannot carry frames"
        );
        Framer {
            len,
            max_record,
            chunk_record: chunk_record.clamp(MIN_RECORD, max_record),
            pos: 0,
            started: false,
            done: false,
        }
    }

    /// Whether the message needs more than one frame.
    pub(crate) fn is_chunked(&self) -> bool {
        self.len >= self.max_record
    }
}

impl Iterator for Framer {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if self.done {
            return None;
        }
        let mut header = [0u8; FIRST_HEADER_LEN];
        let rest = self.len - self.pos;
        let (kind, header_len, take) = if !self.started {
            self.started = true;
            if !self.is_chunked() {
                (WHOLE, 1, rest)
            } else {
                header[1..].copy_from_slice(&(self.len as u64).to_le_bytes());
                (FIRST, FIRST_HEADER_LEN, self.chunk_record - FIRST_HEADER_LEN)
            }
        } else if rest < self.chunk_record {
            (LAST, 1, rest)
        } else {
            (MORE, 1, self.chunk_record - 1)
        };
        header[0] = kind;
        let payload = self.pos..self.pos + take;
        self.pos += take;
        self.done = kind == WHOLE || kind == LAST;
        Some(Frame {
            header,
            header_len,
            payload,
        })
    }
}

/// Where the reassembler is in the stream of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between messages.
    Idle,
    /// Just handed over (`Connection::from_fds`): continuation frames of a message whose
    /// start the previous holder received are skipped until the next WHOLE or FIRST.
    Resync,
    /// Collecting a chunked message of `total` bytes into `partial`.
    Assembling { total: u64 },
    /// Skipping a chunked message of `total` bytes, `got` of them seen, that exceeds
    /// the limit.
    Discarding { total: u64, got: u64 },
    /// A frame broke the rules: every later frame is refused.
    Broken(FrameError),
}

/// Rebuilds messages from frames, checking every rule of the format (see the module
/// docs) against a limit of `max` bytes per message.
pub(crate) struct Reassembler {
    max: usize,
    state: State,
    /// The chunks received of the message being assembled; capacity at most its total
    /// (which is at most `max`).
    partial: Vec<u8>,
}

impl std::fmt::Debug for Reassembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembler")
            .field("max", &self.max)
            .field("state", &self.state)
            .field("partial_len", &self.partial.len())
            .finish()
    }
}

impl Reassembler {
    /// A reassembler for messages of at most `max` bytes, between messages.
    pub(crate) fn new(max: usize) -> Self {
        Reassembler {
            max,
            state: State::Idle,
            partial: Vec::new(),
        }
    }

    /// A reassembler for an end that was just handed over: it skips continuation frames
    /// until the first WHOLE or FIRST frame.
    pub(crate) fn resyncing(max: usize) -> Self {
        Reassembler {
            state: State::Resync,
            ..Self::new(max)
        }
    }

    /// The error that broke the stream, if one did.
    pub(crate) fn broken(&self) -> Option<FrameError> {
        match self.state {
            State::Broken(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the next frame starts a message (between messages, not just handed
    /// over): a `WHOLE` frame within the limit is then a message as it is.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// Whether part of a chunked message was received (or skipped) and the rest is due.
    pub(crate) fn in_message(&self) -> bool {
        matches!(self.state, State::Assembling { .. } | State::Discarding { .. })
    }

    /// The capacity of the buffer of the message in progress (for the fuzz target's
    /// allocation check).
    #[cfg(any(fuzzing, test))]
    pub(crate) fn partial_capacity(&self) -> usize {
        self.partial.capacity()
    }

    /// The peer is gone: drop the message in progress (it will never complete).
    pub(crate) fn peer_gone(&mut self) {
        if self.in_message() {
            self.partial.clear();
            self.state = State::Idle;
        }
    }

    fn fail(&mut self, e: FrameError) -> ConnError {
        self.partial = Vec::new();
        self.state = State::Broken(e);
        ConnError::BadFrame(e)
    }

    /// Take one frame. `Ok(Some(len))`: a message of `len` bytes is complete and now in
    /// `out` (whose previous contents are gone; for a chunked message the buffers are
    /// swapped, not copied). `Ok(None)`: the frame was taken, no message is complete yet.
    /// A frame that breaks a rule is [`ConnError::BadFrame`] (the stream stays broken);
    /// a message over the limit is [`ConnError::MessageTooLarge`] (the stream goes on).
    pub(crate) fn push(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, ConnError> {
        if let State::Broken(e) = self.state {
            return Err(ConnError::BadFrame(e));
        }
        let Some((&kind, body)) = frame.split_first() else {
            return Err(self.fail(FrameError::Empty));
        };
        // Lengths are bounded by the ring's record size (< 2^32), so this cannot wrap.
        let n = body.len() as u64;
        match (kind, self.state) {
            (_, State::Broken(e)) => Err(ConnError::BadFrame(e)),
            (WHOLE, State::Idle | State::Resync) => {
                self.state = State::Idle;
                if body.len() > self.max {
                    return Err(ConnError::MessageTooLarge { len: n, max: self.max });
                }
                out.clear();
                out.reserve_exact(body.len());
                out.extend_from_slice(body);
                Ok(Some(body.len()))
            }
            (FIRST, State::Idle | State::Resync) => {
                let Some((total, chunk)) = body.split_first_chunk::<8>() else {
                    return Err(self.fail(FrameError::ShortFirst { len: frame.len() }));
                };
                let total = u64::from_le_bytes(*total);
                let got = chunk.len() as u64;
                if got >= total {
                    return Err(self.fail(FrameError::LengthMismatch { total, got }));
                }
                if total > self.max as u64 {
                    self.state = State::Discarding { total, got };
                    return Err(ConnError::MessageTooLarge {
                        len: total,
                        max: self.max,
                    });
                }
                self.partial.clear();
                self.state = State::Assembling { total };
                self.append(chunk, total);
                Ok(None)
            }
            (WHOLE | FIRST, State::Assembling { .. } | State::Discarding { .. }) => {
                Err(self.fail(FrameError::UnexpectedStart { kind: kind_name(kind) }))
            }
            (MORE | LAST | ABORT, State::Resync) => Ok(None),
            (MORE | LAST | ABORT, State::Idle) => {
                Err(self.fail(FrameError::UnexpectedContinuation { kind: kind_name(kind) }))
            }
            (ABORT, State::Assembling { .. } | State::Discarding { .. }) => {
                if !body.is_empty() {
                    return Err(self.fail(FrameError::AbortWithPayload { len: body.len() }));
                }
                self.partial.clear();
                self.state = State::Idle;
                Ok(None)
            }
            (MORE | LAST, State::Assembling { total }) => {
                let got = self.partial.len() as u64 + n;
                let complete = kind == LAST;
                if (complete && got != total) || (!complete && got >= total) {
                    return Err(self.fail(FrameError::LengthMismatch { total, got }));
                }
                self.append(body, total);
                if !complete {
                    return Ok(None);
                }
                self.state = State::Idle;
                std::mem::swap(out, &mut self.partial);
                self.partial.clear();
                // The caller's old buffer is ours now; keep it only within the limit.
                if self.partial.capacity() > self.max {
                    self.partial = Vec::new();
                }
                Ok(Some(out.len()))
            }
            (MORE | LAST, State::Discarding { total, got }) => {
                let got = got.saturating_add(n);
                let complete = kind == LAST;
                if (complete && got != total) || (!complete && got >= total) {
                    return Err(self.fail(FrameError::LengthMismatch { total, got }));
                }
                self.state = if complete {
                    State::Idle
                } else {
                    State::Discarding { total, got }
                };
                Ok(None)
            }
            (other, _) => Err(self.fail(FrameError::UnknownKind(other))),
        }
    }

    /// Append a chunk of a message of `total` bytes (the caller checked that the chunk
    /// fits), growing the buffer geometrically but never past `total`.
    fn append(&mut self, chunk: &[u8], total: u64) {
        let need = self.partial.len() + chunk.len();
        if need > self.partial.capacity() {
            // `total <= max`, which is a usize.
            let target = (self.partial.capacity() * 2).max(need).min(total as usize);
            self.partial.reserve_exact(target - self.partial.len());
        }
        self.partial.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests;
