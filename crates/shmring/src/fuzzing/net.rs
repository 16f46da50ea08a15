//! Entry points of the socket fuzz targets: the frame reader of `net/frame.rs` over
//! arbitrary bytes ([`net_frames`]) and each side of the handshake of `net/auth.rs`
//! against a peer that sends arbitrary bytes ([`net_handshake`]).

use crate::connection::ConnError;
use crate::net::SocketConnection;
use crate::net::auth;
use crate::net::frame::{FrameReader, HANDSHAKE, MESSAGE, header};
use std::io::Write;
use std::time::Duration;

/// Inputs longer than this are cut.
const MAX_INPUT: usize = 1 << 16;

/// The receiver's limit picked by selector `s`: `s` bytes for `s < 64`, else
/// `2^min(s - 64, 24)` bytes.
fn limit(s: u8) -> usize {
    let s = usize::from(s & 0x7f);
    if s < 64 { s } else { 1 << (s - 64).min(24) }
}

/// Feed a byte stream to a socket connection's frame reader in pieces and take every
/// frame out. Never panics on any input; asserts the reader's promises.
///
/// Input: byte 0 picks the mode (bit 7) and the receiver's limit (bits 0-6, see
/// `limit`); byte 1 is the size of the pieces the bytes arrive in (0: as much as the
/// reader takes).
///
/// - **Raw stream** (bit 7 clear): the rest is the stream, as a hostile peer sends it.
///   Checked: a completed frame is within the limit, a `MessageTooLarge` names a length
///   over it, a gathered message never holds more than the limit, and after a
///   `BadFrame` every call returns the same error.
/// - **Round trip** (bit 7 set): the rest is items (a 16-bit little-endian length and
///   that many bytes), each framed as a message by the sender's `header`. Checked: each
///   item within the limit comes out intact and in order, each over it is
///   `MessageTooLarge` and skipped.
pub fn net_frames(data: &[u8]) {
    let data = &data[..data.len().min(MAX_INPUT)];
    let (Some(&mode), Some(&piece)) = (data.first(), data.get(1)) else {
        return;
    };
    let max = limit(mode);
    let round_trip = mode & 0x80 != 0;
    let mut items: Vec<&[u8]> = Vec::new();
    let stream: Vec<u8> = if round_trip {
        let mut rest = &data[2..];
        let mut s = Vec::new();
        while let [lo, hi, tail @ ..] = rest {
            let n = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
            s.extend_from_slice(&header(MESSAGE, n));
            s.extend_from_slice(&tail[..n]);
            items.push(&tail[..n]);
            rest = &tail[n..];
        }
        s
    } else {
        data[2..].to_vec()
    };
    let mut r = FrameReader::new(max);
    let mut out = Vec::new();
    let mut broken: Option<ConnError> = None;
    let mut next_item = 0usize;
    let mut rest = &stream[..];
    loop {
        // Take out every frame the bytes so far complete.
        loop {
            let res = r.next_frame(&mut out);
            assert!(r.gathered_len() <= max, "gathered past the limit");
            if let Some(e) = &broken {
                assert_eq!(res.as_ref(), Err(e), "a broken stream must stay broken");
                break;
            }
            match res {
                Ok(None) => break,
                Ok(Some((kind, n))) => {
                    assert!(n <= max && n == out.len(), "frame past the limit");
                    assert!(kind == MESSAGE || kind == HANDSHAKE);
                    if round_trip {
                        let want = items.get(next_item).expect("more frames than items");
                        assert!(out == *want, "item {next_item} came out changed");
                        next_item += 1;
                    }
                    super::frames::decode_all(&out);
                }
                Err(ConnError::MessageTooLarge { len, max: m }) => {
                    assert!(m == max && len > max as u64, "too large: {len} vs {m}");
                    if round_trip {
                        let want = items.get(next_item).expect("more frames than items");
                        assert_eq!(want.len() as u64, len, "item {next_item}: announced length");
                        next_item += 1;
                    }
                }
                Err(e @ ConnError::BadFrame(_)) => {
                    assert!(!round_trip, "the sender's own frames are never bad: {e}");
                    let _ = e.to_string();
                    broken = Some(e);
                }
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        if rest.is_empty() {
            break;
        }
        let dst = r.read_buf();
        assert!(!dst.is_empty(), "the reader offers no room");
        let step = if piece == 0 { usize::MAX } else { usize::from(piece) };
        let n = dst.len().min(step).min(rest.len());
        dst[..n].copy_from_slice(&rest[..n]);
        r.filled(n);
        rest = &rest[n..];
    }
    if round_trip {
        assert_eq!(next_item, items.len(), "every item came out");
    }
}

/// The key of the keyed runs of [`net_handshake`].
const FUZZ_KEY: &[u8] = b"fuzz authkey";

/// Run one side of the socket handshake against a peer whose bytes are the input, over
/// a socket pair (the peer's side shut for writing after its bytes, so every run ends
/// at the end of the input). Never panics or hangs; with an authkey, no input is
/// accepted (the peer cannot answer a fresh random challenge without the key).
///
/// Input: byte 0: bit 0 picks the side under test (0: the listener's, 1: the client's),
/// bit 1 gives it an authkey, bit 2 frames the rest: clear, the rest is sent as is;
/// set, the rest is items (a length byte and that many bytes), each sent in a
/// `HANDSHAKE` frame, so the fuzzer reaches the checks of each message.
pub fn net_handshake(data: &[u8]) {
    let data = &data[..data.len().min(MAX_INPUT)];
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut peer_bytes = Vec::new();
    if mode & 4 == 0 {
        peer_bytes.extend_from_slice(rest);
    } else {
        let mut rest = rest;
        while let [n, tail @ ..] = rest {
            let n = usize::from(*n).min(tail.len());
            peer_bytes.extend_from_slice(&header(HANDSHAKE, n));
            peer_bytes.extend_from_slice(&tail[..n]);
            rest = &tail[n..];
        }
    }
    let Ok((ours, mut theirs)) = std::os::unix::net::UnixStream::pair() else {
        return;
    };
    if theirs.write_all(&peer_bytes).is_err() || theirs.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let key = (mode & 2 != 0).then_some(FUZZ_KEY);
    let mut conn = SocketConnection::new(ours.into(), 1 << 20);
    // The end of the input ends the run long before this guard.
    let timeout = Duration::from_secs(10);
    let r = if mode & 1 == 0 {
        auth::server(&mut conn.transport, key, timeout)
    } else {
        auth::client(&mut conn.transport, key, timeout)
    };
    match r {
        Ok(()) => assert!(key.is_none(), "a peer without the key passed the handshake"),
        Err(ConnError::Authentication(_) | ConnError::Handshake(_)) => {}
        Err(e) => panic!("unexpected handshake error {e:?}"),
    }
    drop(theirs);
}
