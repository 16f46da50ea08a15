//! The handshake that opens every socket connection: a protocol tag, then (with an
//! authkey) an HMAC-SHA256 challenge/response in both directions, as
//! `multiprocessing.connection`'s `deliver_challenge`/`answer_challenge`.
//!
//! Three `HANDSHAKE` frames (`frame.rs`), the server (the accepting side) speaking first:
//!
//! ```text
//! server -> client  HELLO     [TAG: 13 bytes "shmring-net/1"][keyed: u8][nonce_s: 32]
//! client -> server  RESPONSE  [TAG][keyed: u8][nonce_c: 32][mac_c: 32 if keyed]
//! server -> client  WELCOME   ["WELCOME"][mac_s: 32 if keyed]   or   ["FAILURE"][why: u8]
//!
//! mac_c = HMAC-SHA256(authkey, "shmring-net/1 client" || nonce_s || nonce_c)
//! mac_s = HMAC-SHA256(authkey, "shmring-net/1 server" || nonce_s || nonce_c)
//! ```
//!
//! Each side draws its 32-byte nonce from the kernel (`getrandom(2)`) for every
//! connection, so a recorded response is worth nothing on the next connection, and the
//! labels differ by direction, so neither side's answer can be reflected back as the
//! other's. The server decides: a tag it does not know, a different `keyed` flag (one
//! side has an authkey and the other not) or a wrong `mac_c` gets a FAILURE frame and
//! [`ConnError::Authentication`] (or [`ConnError::Handshake`]) on both sides; a server
//! that cannot produce `mac_s` (it does not know the key) is refused by the client.
//! MACs are compared in constant time (`Mac::verify_slice`). No `MESSAGE` frame is sent
//! or accepted before the handshake succeeded, and the socket is closed on failure.
//!
//! Handshake frames are read with a limit of [`MAX_HANDSHAKE_FRAME`] bytes, and the
//! whole exchange must finish by a deadline (`NetOptions::handshake_timeout`): a peer
//! that sends nothing, or trickles, gets [`ConnError::HandshakeTimeout`].

use super::conn::SocketTransport;
use super::frame::HANDSHAKE;
use crate::connection::ConnError;
use crate::sync::Wait;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::{Duration, Instant};

type HmacSha256 = Hmac<Sha256>;

/// The protocol and version tag that opens the first two handshake messages.
pub(crate) const TAG: &[u8; 13] = b"shmring-net/1";
/// Length of each side's nonce.
pub(crate) const NONCE_LEN: usize = 32;
/// Length of an HMAC-SHA256 tag.
const MAC_LEN: usize = 32;
/// The largest handshake frame read.
pub(crate) const MAX_HANDSHAKE_FRAME: usize = 128;
const WELCOME: &[u8; 7] = b"WELCOME";
const FAILURE: &[u8; 7] = b"FAILURE";

/// Why a server refused a client (the byte after `FAILURE`).
const WHY_KEY: u8 = 1;
const WHY_KEYED: u8 = 2;
const WHY_PROTOCOL: u8 = 3;

fn mac(key: &[u8], label: &[u8], nonce_s: &[u8], nonce_c: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(label);
    m.update(nonce_s);
    m.update(nonce_c);
    m
}

const CLIENT_LABEL: &[u8] = b"shmring-net/1 client";
const SERVER_LABEL: &[u8] = b"shmring-net/1 server";

fn nonce() -> Result<[u8; NONCE_LEN], ConnError> {
    let mut n = [0u8; NONCE_LEN];
    getrandom::fill(&mut n).map_err(|e| ConnError::Io(format!("getrandom: {e}")))?;
    Ok(n)
}

/// The handshake's own errors: a timeout names the handshake.
fn recv_hs(
    conn: &mut SocketTransport,
    buf: &mut Vec<u8>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), ConnError> {
    match conn.recv_frame(buf, Wait::Until(deadline)) {
        Ok((HANDSHAKE, _)) => Ok(()),
        Ok(_) => Err(ConnError::Handshake(
            "the peer sent a message before the handshake ended".into(),
        )),
        Err(ConnError::Timeout) => Err(ConnError::HandshakeTimeout {
            after_ms: timeout.as_millis() as u64,
        }),
        Err(ConnError::BadFrame(_) | ConnError::MessageTooLarge { .. }) => Err(not_shmring()),
        Err(ConnError::Disconnected) => Err(ConnError::Handshake(
            "the peer closed the connection during the handshake".into(),
        )),
        Err(e) => Err(e),
    }
}

fn send_hs(conn: &mut SocketTransport, msg: &[u8], deadline: Instant, timeout: Duration) -> Result<(), ConnError> {
    match conn.send_frame(HANDSHAKE, msg, Wait::Until(deadline)) {
        Err(ConnError::Timeout) => Err(ConnError::HandshakeTimeout {
            after_ms: timeout.as_millis() as u64,
        }),
        Err(ConnError::Disconnected) => Err(ConnError::Handshake(
            "the peer closed the connection during the handshake".into(),
        )),
        r => r,
    }
}

fn not_shmring() -> ConnError {
    ConnError::Handshake("the peer does not speak the shmring socket protocol".into())
}

/// Check a HELLO's or RESPONSE's tag; returns the rest.
fn check_tag(msg: &[u8]) -> Result<&[u8], ConnError> {
    match msg.strip_prefix(TAG.as_slice()) {
        Some(rest) => Ok(rest),
        None if msg.starts_with(b"shmring-net/") => Err(ConnError::Handshake(format!(
            "the peer speaks {:?}, this build speaks {:?}",
            String::from_utf8_lossy(&msg[..msg.len().min(TAG.len() + 3)]),
            String::from_utf8_lossy(TAG)
        ))),
        None => Err(not_shmring()),
    }
}

/// The accepting side's handshake: challenge the client, check its answer, answer its
/// challenge. On error the caller drops (closes) the socket.
pub(crate) fn server(conn: &mut SocketTransport, key: Option<&[u8]>, timeout: Duration) -> Result<(), ConnError> {
    let deadline = Instant::now() + timeout;
    conn.set_recv_limit(MAX_HANDSHAKE_FRAME);
    let nonce_s = nonce()?;
    let mut hello = Vec::with_capacity(TAG.len() + 1 + NONCE_LEN);
    hello.extend_from_slice(TAG);
    hello.push(u8::from(key.is_some()));
    hello.extend_from_slice(&nonce_s);
    send_hs(conn, &hello, deadline, timeout)?;

    let mut resp = Vec::new();
    recv_hs(conn, &mut resp, deadline, timeout)?;
    let verdict = (|| {
        let rest = check_tag(&resp).map_err(|e| (WHY_PROTOCOL, e))?;
        let (&keyed, rest) = rest.split_first().ok_or((WHY_PROTOCOL, not_shmring()))?;
        if (keyed == 1) != key.is_some() || keyed > 1 {
            return Err((
                WHY_KEYED,
                ConnError::Authentication(if key.is_some() {
                    "the client has no authkey"
                } else {
                    "the client has an authkey and this listener none"
                }),
            ));
        }
        let want = NONCE_LEN + if key.is_some() { MAC_LEN } else { 0 };
        if rest.len() != want {
            return Err((WHY_PROTOCOL, not_shmring()));
        }
        let (nonce_c, mac_c) = rest.split_at(NONCE_LEN);
        if let Some(key) = key {
            mac(key, CLIENT_LABEL, &nonce_s, nonce_c)
                .verify_slice(mac_c)
                .map_err(|_| (WHY_KEY, ConnError::Authentication("the client's authkey differs")))?;
        }
        Ok(nonce_c.to_vec())
    })();
    match verdict {
        Ok(nonce_c) => {
            let mut w = WELCOME.to_vec();
            if let Some(key) = key {
                w.extend_from_slice(&mac(key, SERVER_LABEL, &nonce_s, &nonce_c).finalize().into_bytes());
            }
            send_hs(conn, &w, deadline, timeout)?;
            conn.end_handshake();
            Ok(())
        }
        Err((why, e)) => {
            let mut f = FAILURE.to_vec();
            f.push(why);
            // Best effort: the client learns why, then sees the socket close.
            let _ = conn.send_frame(HANDSHAKE, &f, Wait::Now);
            Err(e)
        }
    }
}

/// The connecting side's handshake: answer the server's challenge, challenge it, check
/// its answer. On error the caller drops (closes) the socket.
pub(crate) fn client(conn: &mut SocketTransport, key: Option<&[u8]>, timeout: Duration) -> Result<(), ConnError> {
    let deadline = Instant::now() + timeout;
    conn.set_recv_limit(MAX_HANDSHAKE_FRAME);
    let mut hello = Vec::new();
    recv_hs(conn, &mut hello, deadline, timeout)?;
    let rest = check_tag(&hello)?;
    let nonce_s: [u8; NONCE_LEN] = match rest {
        [0 | 1, n @ ..] if n.len() == NONCE_LEN => n.try_into().expect("length checked"),
        _ => return Err(not_shmring()),
    };
    let nonce_c = nonce()?;
    let mut resp = Vec::with_capacity(TAG.len() + 1 + NONCE_LEN + MAC_LEN);
    resp.extend_from_slice(TAG);
    resp.push(u8::from(key.is_some()));
    resp.extend_from_slice(&nonce_c);
    if let Some(key) = key {
        resp.extend_from_slice(&mac(key, CLIENT_LABEL, &nonce_s, &nonce_c).finalize().into_bytes());
    }
    send_hs(conn, &resp, deadline, timeout)?;

    let mut verdict = Vec::new();
    recv_hs(conn, &mut verdict, deadline, timeout)?;
    if let Some(rest) = verdict.strip_prefix(FAILURE.as_slice()) {
        return Err(match rest {
            [WHY_KEY] => ConnError::Authentication("the listener's authkey differs"),
            [WHY_KEYED] if key.is_some() => ConnError::Authentication("the listener has no authkey"),
            [WHY_KEYED] => ConnError::Authentication("the listener requires an authkey"),
            _ => ConnError::Handshake("the listener refused the handshake".into()),
        });
    }
    let Some(mac_s) = verdict.strip_prefix(WELCOME.as_slice()) else {
        return Err(not_shmring());
    };
    match key {
        Some(key) => mac(key, SERVER_LABEL, &nonce_s, &nonce_c)
            .verify_slice(mac_s)
            .map_err(|_| ConnError::Authentication("the listener did not prove it knows the authkey"))?,
        None if mac_s.is_empty() => {}
        None => return Err(not_shmring()),
    }
    conn.end_handshake();
    Ok(())
}
