//! The frames of a socket connection: an 8-byte header and the payload, and the
//! receiver's [`FrameReader`], a pure state machine over the bytes that arrive (no
//! socket, no syscall), so that every rule is unit-tested and fuzzed
//! (`fuzz/fuzz_targets/net_frames.rs`).
//!
//! ```text
//! [kind: u8][reserved: 3 bytes, zero][len: u32 LE][payload: len bytes]
//! ```
//!
//! `kind` is [`MESSAGE`] for user messages, [`HANDSHAKE`] for the messages of the
//! authentication handshake (`auth.rs`, and only until it ended) and [`HANDLE`] for a
//! handed-over object (after the handshake; its descriptors ride on the frame's first
//! byte as `SCM_RIGHTS`, see `conn.rs`); anything else, or
//! non-zero reserved bytes, is a [`FrameError`]. A sender writes the header and the
//! payload with one system call (`conn.rs`); the receiver reads through a 64 KiB
//! buffer, so a batch of small frames costs one `recv`.
//!
//! # Trust
//!
//! Every byte comes from the peer. A header that breaks the format breaks the receive
//! direction for good (every later receive reports the same error): after it, nothing
//! marks where the next frame starts. A header announcing more than the receiver's
//! limit is [`ConnError::MessageTooLarge`] as soon as the header is there — before any
//! allocation and without waiting for the payload; its payload is then skipped as it
//! arrives and the next message is received normally, as with a pipe's `Connection`.
//! A message too large for the read buffer is gathered in a buffer that grows as its
//! bytes arrive, never up front from the announced length.

use crate::connection::{ConnError, FrameError};

/// Length of a frame header.
pub(crate) const HEADER_LEN: usize = 8;
/// Kind byte of a frame carrying a user message.
pub(crate) const MESSAGE: u8 = 1;
/// Kind byte of a frame carrying a handshake message.
pub(crate) const HANDSHAKE: u8 = 2;
/// Kind byte of a frame carrying a handle: a handoff header (`handoff::socket`) whose
/// descriptors travel as `SCM_RIGHTS` with the frame's first byte (`conn.rs`).
pub(crate) const HANDLE: u8 = 3;
/// The read buffer: a batch of small frames arrives in one `recv`.
pub(crate) const READ_BUF: usize = 64 << 10;
/// The largest limit a frame header can express.
pub(crate) const MAX_FRAME_LEN: usize = u32::MAX as usize;

/// The header of a frame of `kind` carrying `len` bytes (`len <= MAX_FRAME_LEN`).
pub(crate) fn header(kind: u8, len: usize) -> [u8; HEADER_LEN] {
    debug_assert!(len <= MAX_FRAME_LEN);
    let mut h = [0u8; HEADER_LEN];
    h[0] = kind;
    h[4..].copy_from_slice(&(len as u32).to_le_bytes());
    h
}

/// Parse a header: its kind and payload length. Checks the format only, not the limit;
/// `handshake`: whether HANDSHAKE frames are allowed (only until the handshake ended).
pub(crate) fn parse_header(h: &[u8; HEADER_LEN], handshake: bool) -> Result<(u8, usize), FrameError> {
    let kind = h[0];
    // MESSAGE always; HANDSHAKE during the handshake; HANDLE after it.
    let allowed = kind == MESSAGE || if handshake { kind == HANDSHAKE } else { kind == HANDLE };
    if !allowed {
        return Err(FrameError::UnknownKind(kind));
    }
    let reserved = u32::from_le_bytes([h[1], h[2], h[3], 0]);
    if reserved != 0 {
        return Err(FrameError::ReservedBits(reserved));
    }
    Ok((kind, u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize))
}

/// A message whose payload did not fit the read buffer, gathered as it arrives.
#[derive(Debug)]
struct Big {
    kind: u8,
    len: usize,
    /// The bytes so far: `data[..got]`; `data.len()` is what was zero-filled for reads.
    data: Vec<u8>,
    got: usize,
}

/// The receive side of the frame format: bytes in (through [`FrameReader::read_buf`]
/// and [`FrameReader::filled`]), whole messages out ([`FrameReader::next_frame`]).
#[derive(Debug)]
pub(crate) struct FrameReader {
    max: usize,
    buf: Box<[u8]>,
    /// `buf[start..end]` holds bytes received and not yet consumed.
    start: usize,
    end: usize,
    big: Option<Big>,
    /// Payload bytes of a refused (too large) message still to be discarded.
    skip: u64,
    broken: Option<FrameError>,
    /// HANDSHAKE frames are still allowed.
    handshake: bool,
}

impl FrameReader {
    /// A reader accepting messages of at most `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        FrameReader {
            max,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            big: None,
            skip: 0,
            broken: None,
            handshake: true,
        }
    }

    /// Accept frames of at most `max` bytes from now on (bytes already buffered stay).
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Whether nothing is buffered: no byte received and not yet consumed, no message
    /// being gathered or skipped, no error kept.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end && self.big.is_none() && self.skip == 0 && self.broken.is_none()
    }

    /// Break the receive direction for good (the socket layer found the descriptors
    /// that came with the bytes unacceptable).
    pub(crate) fn break_with(&mut self, e: FrameError) {
        self.broken.get_or_insert(e);
    }

    /// The handshake ended: a HANDSHAKE frame from now on breaks the stream.
    pub(crate) fn end_handshake(&mut self) {
        self.handshake = false;
    }

    /// The bytes held for a message too large for the read buffer (at most its length,
    /// which is at most the limit).
    #[cfg(any(fuzzing, test))]
    pub(crate) fn gathered_len(&self) -> usize {
        self.big.as_ref().map_or(0, |b| b.data.len())
    }

    /// Whether a whole frame, or an error, is waiting: a receive returns without reading.
    pub(crate) fn has_frame(&self) -> bool {
        if self.broken.is_some() || self.big.as_ref().is_some_and(|b| b.got == b.len) {
            return true;
        }
        if self.big.is_some() {
            return false;
        }
        let avail = &self.buf[self.start..self.end];
        let skip = (self.skip.min(avail.len() as u64)) as usize;
        let avail = &avail[skip..];
        if self.skip > skip as u64 || avail.len() < HEADER_LEN {
            return false;
        }
        let h: &[u8; HEADER_LEN] = avail[..HEADER_LEN].try_into().expect("header length");
        match parse_header(h, self.handshake) {
            Ok((_, len)) => len > self.max || avail.len() - HEADER_LEN >= len,
            Err(_) => true,
        }
    }

    /// Where the next bytes from the peer go: the unfilled part of the read buffer, or
    /// of a large message's buffer. Never empty.
    pub(crate) fn read_buf(&mut self) -> &mut [u8] {
        if let Some(b) = &mut self.big {
            if b.got == b.data.len() {
                // Grow by what was received so far (at least a read buffer): the
                // allocation follows the bytes that actually arrive.
                let step = b.got.max(READ_BUF).min(b.len - b.got);
                b.data.reserve_exact(step);
                b.data.resize(b.got + step, 0);
            }
            return &mut b.data[b.got..];
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < HEADER_LEN.max(self.buf.len() / 4) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Record that `n` bytes were written at the start of [`FrameReader::read_buf`].
    pub(crate) fn filled(&mut self, n: usize) {
        match &mut self.big {
            Some(b) => b.got = (b.got + n).min(b.data.len()),
            None => self.end = (self.end + n).min(self.buf.len()),
        }
    }

    /// The next whole frame, its payload in `out` (replacing its contents): `Ok(Some((kind,
    /// len)))`; `Ok(None)` if more bytes are needed. A frame over the limit is
    /// [`ConnError::MessageTooLarge`] (skipped); a bad header is [`ConnError::BadFrame`],
    /// now and for every later call.
    pub(crate) fn next_frame(&mut self, out: &mut Vec<u8>) -> Result<Option<(u8, usize)>, ConnError> {
        if let Some(e) = self.broken {
            return Err(ConnError::BadFrame(e));
        }
        if let Some(b) = &mut self.big {
            if b.got < b.len {
                return Ok(None);
            }
            let b = self.big.take().expect("checked");
            let (kind, len) = (b.kind, b.len);
            *out = b.data;
            out.truncate(len);
            return Ok(Some((kind, len)));
        }
        if self.skip > 0 {
            let n = self.skip.min((self.end - self.start) as u64);
            self.start += n as usize;
            self.skip -= n;
            if self.skip > 0 {
                return Ok(None);
            }
        }
        let avail = self.end - self.start;
        if avail < HEADER_LEN {
            return Ok(None);
        }
        let h: &[u8; HEADER_LEN] = self.buf[self.start..self.start + HEADER_LEN]
            .try_into()
            .expect("header length");
        let (kind, len) = match parse_header(h, self.handshake) {
            Ok(x) => x,
            Err(e) => {
                self.broken = Some(e);
                return Err(ConnError::BadFrame(e));
            }
        };
        if len > self.max {
            self.start += HEADER_LEN;
            let n = len.min(self.end - self.start);
            self.start += n;
            self.skip = (len - n) as u64;
            return Err(ConnError::MessageTooLarge {
                len: len as u64,
                max: self.max,
            });
        }
        let body = self.start + HEADER_LEN;
        if avail - HEADER_LEN >= len {
            out.clear();
            out.extend_from_slice(&self.buf[body..body + len]);
            self.start = body + len;
            return Ok(Some((kind, len)));
        }
        if HEADER_LEN + len > self.buf.len() {
            // Never fits the read buffer: gather it apart, reading straight into it.
            let have = self.end - body;
            let mut data = Vec::with_capacity(have.max(READ_BUF).min(len));
            data.extend_from_slice(&self.buf[body..self.end]);
            self.start = 0;
            self.end = 0;
            self.big = Some(Big {
                kind,
                len,
                data,
                got: have,
            });
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = header(kind, payload.len()).to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// Feed `bytes` in pieces of `step`, collecting every result.
    fn feed(r: &mut FrameReader, bytes: &[u8], step: usize) -> Vec<Result<Vec<u8>, ConnError>> {
        let mut got = Vec::new();
        let mut rest = bytes;
        let mut out = Vec::new();
        loop {
            loop {
                match r.next_frame(&mut out) {
                    Ok(Some((_, n))) => got.push(Ok(out[..n].to_vec())),
                    Ok(None) => break,
                    Err(e @ ConnError::BadFrame(_)) => {
                        got.push(Err(e));
                        return got;
                    }
                    Err(e) => got.push(Err(e)),
                }
            }
            if rest.is_empty() {
                return got;
            }
            let dst = r.read_buf();
            let n = dst.len().min(step).min(rest.len());
            dst[..n].copy_from_slice(&rest[..n]);
            r.filled(n);
            rest = &rest[n..];
        }
    }

    #[test]
    fn messages_come_out_whole_in_any_pieces() {
        let msgs: Vec<Vec<u8>> = [0usize, 1, 7, 64, 4096, READ_BUF - 8, READ_BUF, 3 * READ_BUF + 5]
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        let stream: Vec<u8> = msgs.iter().flat_map(|m| frame(MESSAGE, m)).collect();
        for step in [1, 3, 8, 100, 5000, 1 << 20] {
            let mut r = FrameReader::new(1 << 20);
            let got = feed(&mut r, &stream, step);
            let want: Vec<_> = msgs.iter().cloned().map(Ok).collect();
            assert_eq!(got, want, "pieces of {step}");
            assert!(!r.has_frame());
        }
    }

    #[test]
    fn too_large_is_refused_from_its_header_and_skipped() {
        let mut r = FrameReader::new(100);
        let mut stream = frame(MESSAGE, &[1; 101]);
        stream.extend(frame(MESSAGE, b"next"));
        let got = feed(&mut r, &stream, 7);
        assert_eq!(
            got,
            vec![
                Err(ConnError::MessageTooLarge { len: 101, max: 100 }),
                Ok(b"next".to_vec())
            ]
        );
        // A header alone announcing 4 GiB - 1: refused at once, nothing allocated.
        let mut r = FrameReader::new(64 << 20);
        let got = feed(&mut r, &header(MESSAGE, MAX_FRAME_LEN), 8);
        assert_eq!(
            got,
            vec![Err(ConnError::MessageTooLarge {
                len: MAX_FRAME_LEN as u64,
                max: 64 << 20
            })]
        );
        assert!(!r.has_frame());
    }

    #[test]
    fn handle_frames_only_after_the_handshake() {
        let h = header(HANDLE, 24);
        assert_eq!(parse_header(&h, true), Err(FrameError::UnknownKind(HANDLE)));
        assert_eq!(parse_header(&h, false), Ok((HANDLE, 24)));
        assert_eq!(
            parse_header(&header(HANDSHAKE, 1), false),
            Err(FrameError::UnknownKind(HANDSHAKE))
        );
    }

    #[test]
    fn bad_headers_break_the_stream() {
        for (bytes, err) in [
            (vec![9, 0, 0, 0, 0, 0, 0, 0], FrameError::UnknownKind(9)),
            (vec![1, 0, 1, 0, 0, 0, 0, 0], FrameError::ReservedBits(0x100)),
            (header(HANDSHAKE, 0).to_vec(), FrameError::UnknownKind(HANDSHAKE)),
            (b"GET / HTTP/1.1\r\n".to_vec(), FrameError::UnknownKind(b'G')),
        ] {
            let mut r = FrameReader::new(1 << 20);
            r.end_handshake();
            let got = feed(&mut r, &bytes, 3);
            assert_eq!(got, vec![Err(ConnError::BadFrame(err))]);
            assert!(r.has_frame());
            assert_eq!(r.next_frame(&mut Vec::new()), Err(ConnError::BadFrame(err)));
        }
    }

    #[test]
    fn readiness_follows_the_buffered_bytes() {
        let mut r = FrameReader::new(1 << 10);
        assert!(!r.has_frame());
        let f = frame(MESSAGE, b"hello");
        let dst = r.read_buf();
        dst[..6].copy_from_slice(&f[..6]);
        r.filled(6);
        assert!(!r.has_frame());
        let dst = r.read_buf();
        dst[..f.len() - 6].copy_from_slice(&f[6..]);
        r.filled(f.len() - 6);
        assert!(r.has_frame());
        let mut out = Vec::new();
        assert_eq!(r.next_frame(&mut out), Ok(Some((MESSAGE, 5))));
        assert_eq!(out, b"hello");
        assert!(!r.has_frame());
    }
}
