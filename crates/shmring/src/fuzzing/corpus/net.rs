//! Replays the seed corpora of the socket fuzz targets `net_frames` and `net_handshake`
//! (`fuzz/corpus/<target>/`) and any saved crash reproducers
//! (`fuzz/regressions/<target>/`) through `crate::fuzzing` on stable, in plain
//! `cargo test`.
//!
//! The seeds are the inputs of `frame_seeds()` and `handshake_seeds()` below, written by
//! `cargo test -p shmring --lib fuzzing::corpus::net::regenerate_seed_corpus -- --ignored`.

use crate::fuzzing::{net_frames, net_handshake};

use super::{replay_corpus, repo_path as dir};

#[test]
fn replay_net_frames_corpus_and_regressions() {
    replay_corpus("net_frames", net_frames);
}

#[test]
fn replay_net_handshake_corpus_and_regressions() {
    replay_corpus("net_handshake", net_handshake);
}

const MESSAGE: u8 = 1;
const HANDSHAKE: u8 = 2;

fn header(kind: u8, len: u32) -> Vec<u8> {
    let mut h = vec![kind, 0, 0, 0];
    h.extend_from_slice(&len.to_le_bytes());
    h
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = header(kind, payload.len() as u32);
    v.extend_from_slice(payload);
    v
}

/// A limit of 1 MiB (selector 84: 2^20 bytes); 74: 1 KiB.
const MIB: u8 = 84;
const KIB: u8 = 74;

fn raw(sel: u8, piece: u8, stream: &[u8]) -> Vec<u8> {
    let mut v = vec![sel, piece];
    v.extend_from_slice(stream);
    v
}

fn round_trip(sel: u8, piece: u8, msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![0x80 | sel, piece];
    for m in msgs {
        v.extend_from_slice(&(m.len() as u16).to_le_bytes());
        v.extend_from_slice(m);
    }
    v
}

fn frame_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let pattern = |n: usize| (0..n).map(|i| (i * 31 + 7) as u8).collect::<Vec<u8>>();
    let two: Vec<u8> = [frame(MESSAGE, b"hello"), frame(MESSAGE, b"")].concat();
    vec![
        ("raw-two-messages", raw(MIB, 0, &two)),
        ("raw-two-messages-bytewise", raw(MIB, 1, &two)),
        ("raw-handshake-kind", raw(MIB, 3, &frame(HANDSHAKE, b"shmring-net/1"))),
        ("raw-1gib-header", raw(MIB, 0, &header(MESSAGE, 1 << 30))),
        (
            "raw-too-large-then-small",
            raw(
                KIB,
                100,
                &[frame(MESSAGE, &pattern(2000)), frame(MESSAGE, b"ok")].concat(),
            ),
        ),
        ("raw-unknown-kind", raw(MIB, 0, &[9, 0, 0, 0, 1, 0, 0, 0, 0])),
        ("raw-reserved-bits", raw(MIB, 0, &[1, 0, 0, 1, 0, 0, 0, 0])),
        ("raw-http", raw(MIB, 5, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
        ("raw-cut", raw(MIB, 0, &frame(MESSAGE, &pattern(100))[..50])),
        (
            "round-trip-small",
            round_trip(MIB, 7, &[b"a".to_vec(), Vec::new(), pattern(64), pattern(300)]),
        ),
        (
            "round-trip-over-limit",
            round_trip(KIB, 0, &[pattern(1025), pattern(1024), b"x".to_vec()]),
        ),
        (
            "round-trip-tiny-limit",
            round_trip(3, 2, &[b"abc".to_vec(), b"abcd".to_vec()]),
        ),
    ]
}

/// Byte 0 of a handshake input: the side under test, an authkey, framed items.
fn hs(client: bool, keyed: bool, framed: bool) -> u8 {
    u8::from(client) | (u8::from(keyed) << 1) | (u8::from(framed) << 2)
}

fn items(head: u8, msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![head];
    for m in msgs {
        v.push(m.len() as u8);
        v.extend_from_slice(m);
    }
    v
}

fn handshake_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let tag = b"shmring-net/1".to_vec();
    let hello = |keyed: u8| [tag.clone(), vec![keyed], vec![0x5a; 32]].concat();
    let welcome = b"WELCOME".to_vec();
    vec![
        // Against the client: a keyless listener's messages (this run succeeds).
        (
            "client-keyless-ok",
            items(hs(true, false, true), &[hello(0), welcome.clone()]),
        ),
        // A listener that does not know the key cannot answer the client's challenge.
        (
            "client-keyed-fake-listener",
            items(
                hs(true, true, true),
                &[hello(1), [welcome.clone(), vec![0; 32]].concat()],
            ),
        ),
        (
            "client-failure",
            items(hs(true, true, true), &[hello(1), b"FAILURE\x01".to_vec()]),
        ),
        (
            "client-other-version",
            items(hs(true, false, true), &[b"shmring-net/9xyz".to_vec()]),
        ),
        (
            "client-http",
            [vec![hs(true, true, false)], b"HTTP/1.1 200 OK\r\n\r\n".to_vec()].concat(),
        ),
        ("client-silent", vec![hs(true, true, false)]),
        // Against the listener: a client's response without and with a key.
        (
            "server-keyless-ok",
            items(hs(false, false, true), &[[tag.clone(), vec![0], vec![7; 32]].concat()]),
        ),
        (
            "server-keyed-wrong-mac",
            items(
                hs(false, true, true),
                &[[tag.clone(), vec![1], vec![7; 32], vec![0; 32]].concat()],
            ),
        ),
        (
            "server-keyed-no-key",
            items(hs(false, true, true), &[[tag.clone(), vec![0], vec![7; 32]].concat()]),
        ),
        (
            "server-message-first",
            [
                vec![hs(false, false, false)],
                frame(MESSAGE, b"data before the handshake"),
            ]
            .concat(),
        ),
        (
            "server-garbage",
            [vec![hs(false, true, false)], b"\x02\0\0\0\xff\xff\xff\xff".to_vec()].concat(),
        ),
    ]
}

fn all_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut v: Vec<_> = frame_seeds().into_iter().map(|(n, i)| ("net_frames", n, i)).collect();
    v.extend(handshake_seeds().into_iter().map(|(n, i)| ("net_handshake", n, i)));
    v
}

#[test]
#[ignore = "writes the seed corpus; run by hand after changing the seeds"]
fn regenerate_seed_corpus() {
    for (target, name, input) in all_seeds() {
        let d = dir(&format!("fuzz/corpus/{target}"));
        std::fs::create_dir_all(&d).unwrap();
        assert!(input.len() < 4096, "{name} is {} bytes", input.len());
        std::fs::write(d.join(name), input).unwrap();
    }
}

/// The seeds on disk are what `regenerate_seed_corpus` writes today.
#[test]
fn seed_corpus_is_current() {
    for (target, name, input) in all_seeds() {
        let on_disk = std::fs::read(dir(&format!("fuzz/corpus/{target}/{name}"))).unwrap_or_default();
        assert!(
            on_disk == input,
            "fuzz/corpus/{target}/{name} is stale: \
             cargo test -p shmring --lib fuzzing::corpus::net::regenerate_seed_corpus -- --ignored"
        );
    }
}
