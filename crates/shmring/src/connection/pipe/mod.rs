//! [`PipeTransport`]: a [`Connection`](super::Connection)'s transport over shared memory — its sends and
//! receives over the frame format of `frame.rs` — and how pipe ends are made
//! (anonymous pair, named, from descriptors).
//!
//! - `make.rs`: how ends are made ([`pipe`], named, from descriptors) and handed over;
//! - `send.rs`: sending (a message in place in one record, or in frames);
//! - `recv.rs`: receiving (in place, in batches, through the reassembler) and readiness.
//!
//! This file holds the end's state and the [`Transport`] methods, which call those.

mod make;
mod recv;
mod send;

pub(in crate::connection) use make::ring_names;
pub use make::{pipe, pipe_with};

use super::frame::Reassembler;
use super::transport::sealed::Sealed;
use super::{ConnError, MessageRef, Transport};
use crate::ring::spsc::{Consumer, Producer};
use crate::sync::Wait;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// What an end was made to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    Duplex,
    RecvOnly,
    SendOnly,
}

/// The [`Transport`] of a pipe end ([`Connection`](super::Connection), which is `Connection<PipeTransport>`):
/// one SPSC ring per direction in shared memory, messages in frames (see the [module
/// docs](super)). Made by [`pipe`], [`Connection::create`](super::Connection::create),
/// [`Connection::open`](super::Connection::open) and
/// [`Connection::from_fds`](super::Connection::from_fds); it has no methods of its own.
pub struct PipeTransport {
    tx: Option<Producer>,
    rx: Option<Consumer>,
    ends: Ends,
    closed: bool,
    max: usize,
    reasm: Reassembler,
    /// An earlier send stopped in the middle of a chunked message: an ABORT frame goes
    /// out before the next message.
    abort_pending: bool,
    /// When readiness checks last asked the kernel whether the peer died: at most once
    /// per [`LIVENESS_INTERVAL`], so that a loop of `wait` or `poll` calls does not
    /// make a syscall per connection per call.
    liveness_checked: Cell<Option<Instant>>,
    /// A liveness check found the peer dead (final: a dead end is never re-attached).
    peer_dead: Cell<bool>,
}

impl std::fmt::Debug for PipeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("ends", &self.ends)
            .field("closed", &self.closed)
            .field("max_message_len", &self.max)
            .field("abort_pending", &self.abort_pending)
            .field("reassembler", &self.reasm)
            .finish_non_exhaustive()
    }
}

impl Transport for PipeTransport {}

impl Sealed for PipeTransport {
    fn check_send(&mut self) -> Result<(), ConnError> {
        self.tx_mut().map(|_| ())
    }

    #[inline]
    fn send_message(&mut self, msg: &[u8], wait: Wait) -> Result<(), ConnError> {
        self.send_frames(msg, wait)
    }

    #[inline]
    fn recv_message(&mut self, out: &mut Vec<u8>, wait: Wait) -> Result<usize, ConnError> {
        self.recv_frames(out, wait)
    }

    #[inline]
    fn send_in_place(
        &mut self,
        len: usize,
        wait: Wait,
        write: impl FnOnce(&mut [u8]) -> bool,
    ) -> Result<bool, ConnError> {
        self.send_whole(len, wait, write)
    }

    #[inline]
    fn send_guessed(&mut self, len: usize, write: impl FnOnce(&mut [u8]) -> bool) -> bool {
        self.send_whole_guessed(len, write)
    }

    #[inline]
    fn recv_in_place<'a>(&'a mut self, scratch: &'a mut Vec<u8>, wait: Wait) -> Result<MessageRef<'a>, ConnError> {
        self.recv_whole(scratch, wait)
    }

    fn recv_batch(
        &mut self,
        scratch: &mut Vec<u8>,
        max_batch: usize,
        wait: Wait,
        f: impl FnMut(MessageRef<'_>),
    ) -> Result<usize, ConnError> {
        self.recv_many(scratch, max_batch, wait, f)
    }

    fn poll(&self, timeout: Option<Duration>) -> Result<bool, ConnError> {
        self.check_rx()?;
        match super::wait::wait_interruptible_on(&[self], timeout) {
            Ok(r) => Ok(!r.is_empty()),
            Err(_) => Err(ConnError::Interrupted),
        }
    }

    fn close(&mut self) {
        self.tx = None;
        self.rx = None;
        self.closed = true;
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn readable(&self) -> bool {
        self.ends != Ends::SendOnly
    }

    fn writable(&self) -> bool {
        self.ends != Ends::RecvOnly
    }

    fn max_message_len(&self) -> usize {
        self.max
    }
}

impl PipeTransport {
    fn tx_mut(&mut self) -> Result<&mut Producer, ConnError> {
        match &mut self.tx {
            Some(tx) => Ok(tx),
            None if self.closed => Err(ConnError::Closed),
            None => Err(ConnError::WrongDirection { allowed: "receive" }),
        }
    }

    fn check_rx(&self) -> Result<&Consumer, ConnError> {
        match &self.rx {
            Some(rx) => Ok(rx),
            None if self.closed => Err(ConnError::Closed),
            None => Err(ConnError::WrongDirection { allowed: "send" }),
        }
    }
}

/// Why an end without a receiving ring (`closed` or send-only) cannot receive.
#[inline]
fn no_rx(closed: bool) -> ConnError {
    if closed {
        ConnError::Closed
    } else {
        ConnError::WrongDirection { allowed: "send" }
    }
}
