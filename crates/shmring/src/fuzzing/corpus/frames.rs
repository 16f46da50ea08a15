//! Replays the `frames` fuzz target's seed corpus (`fuzz/corpus/frames/`) and any saved
//! crash reproducers (`fuzz/regressions/frames/`) through `crate::fuzzing::frames` on
//! stable, in plain `cargo test`.
//!
//! The seeds are the inputs of `seeds()` below, written by
//! `cargo test -p shmring --lib fuzzing::corpus::frames::regenerate_seed_corpus -- --ignored`.

use crate::fuzzing::frames;

use super::{check_seeds, replay_corpus, write_seeds};

#[test]
fn replay_seed_corpus_and_regressions() {
    replay_corpus("frames", frames);
}

// Frame kinds (see src/connection/frame.rs).
const WHOLE: u8 = 1;
const FIRST: u8 = 2;
const MORE: u8 = 3;
const LAST: u8 = 4;
const ABORT: u8 = 5;

/// Byte 0 of an input: the mode bit and the limit selector (`s < 64`: `s` bytes; else
/// `2^(s - 64)` bytes).
fn head(round_trip: bool, sel: u8) -> u8 {
    (sel << 1) | u8::from(round_trip)
}

/// A limit of 1 MiB.
const MIB: u8 = 84;
/// A limit of 1 KiB.
const KIB: u8 = 74;

fn item(out: &mut Vec<u8>, flag: bool, bytes: &[u8]) {
    let len = bytes.len() as u16 | if flag { 0x8000 } else { 0 };
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Raw frames from a peer, against a limit selector, optionally as a handed-over end.
fn raw(sel: u8, resync: bool, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![head(false, sel), u8::from(resync)];
    for f in frames {
        item(&mut v, false, f);
    }
    v
}

/// Messages framed into records of `10 + (rec & 127)` bytes (chunks of half that if
/// `rec & 128`); `true` aborts after the first frame.
fn round_trip(sel: u8, rec: u8, msgs: &[(bool, Vec<u8>)]) -> Vec<u8> {
    let mut v = vec![head(true, sel), rec];
    for (abort, m) in msgs {
        item(&mut v, *abort, m);
    }
    v
}

fn fr(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(body);
    v
}

fn first(total: u64, chunk: &[u8]) -> Vec<u8> {
    let mut v = vec![FIRST];
    v.extend_from_slice(&total.to_le_bytes());
    v.extend_from_slice(chunk);
    v
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

/// The seeds: valid streams of each frame kind, each rule broken once, limits hit, a
/// handed-over end, and round trips through small records with aborts.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let typed = crate::codec::to_vec(&(7u8, Some("seven".to_string()), vec![1.5f64, -2.0])).unwrap();
    let text = crate::codec::to_vec("hello").unwrap();
    vec![
        ("whole_string", raw(MIB, false, &[fr(WHOLE, &text)])),
        (
            "whole_typed_tuple",
            raw(MIB, false, &[fr(WHOLE, &typed), fr(WHOLE, &[])]),
        ),
        (
            "chunked_valid",
            raw(MIB, false, &[first(10, b"abc"), fr(MORE, b"defg"), fr(LAST, b"hij")]),
        ),
        (
            "chunked_typed",
            raw(
                MIB,
                false,
                &[first(typed.len() as u64, &typed[..3]), fr(LAST, &typed[3..])],
            ),
        ),
        (
            "abort_then_whole",
            raw(
                MIB,
                false,
                &[first(100, b"abc"), fr(MORE, b"d"), fr(ABORT, b""), fr(WHOLE, b"x")],
            ),
        ),
        (
            "too_large_whole_then_whole",
            raw(8, false, &[fr(WHOLE, &[1; 20]), fr(WHOLE, &[2; 8])]),
        ),
        (
            "too_large_chunked_skipped",
            raw(
                KIB,
                false,
                &[
                    first(2000, &[3; 900]),
                    fr(MORE, &[3; 900]),
                    fr(LAST, &[3; 200]),
                    fr(WHOLE, b"ok"),
                ],
            ),
        ),
        (
            "huge_total_aborted",
            raw(
                MIB,
                false,
                &[
                    first(u64::MAX, b"ab"),
                    fr(MORE, b"cd"),
                    fr(ABORT, b""),
                    fr(WHOLE, b"ok"),
                ],
            ),
        ),
        ("empty_frame", raw(MIB, false, &[vec![], fr(WHOLE, b"after")])),
        ("unknown_kind", raw(MIB, false, &[fr(0, b""), fr(WHOLE, b"after")])),
        ("unknown_kind_high", raw(MIB, false, &[fr(0xff, b"zz")])),
        ("short_first", raw(MIB, false, &[fr(FIRST, &[1, 0, 0])])),
        ("more_without_first", raw(MIB, false, &[fr(MORE, b"x")])),
        ("abort_without_first", raw(MIB, false, &[fr(ABORT, b"")])),
        ("first_holds_everything", raw(MIB, false, &[first(3, b"abc")])),
        (
            "more_reaches_total",
            raw(MIB, false, &[first(5, b"ab"), fr(MORE, b"cde")]),
        ),
        ("last_short", raw(MIB, false, &[first(5, b"ab"), fr(LAST, b"c")])),
        ("last_long", raw(MIB, false, &[first(5, b"ab"), fr(LAST, b"cdef")])),
        (
            "abort_with_payload",
            raw(MIB, false, &[first(5, b"ab"), fr(ABORT, b"x")]),
        ),
        ("first_in_middle", raw(MIB, false, &[first(5, b"ab"), first(5, b"ab")])),
        ("whole_in_middle", raw(MIB, false, &[first(5, b"ab"), fr(WHOLE, b"x")])),
        (
            "resync_skips_tail",
            raw(
                MIB,
                true,
                &[fr(MORE, b"old"), fr(LAST, b"old"), fr(WHOLE, b"new"), fr(MORE, b"bad")],
            ),
        ),
        (
            "round_trip_small_records",
            round_trip(
                MIB,
                0,
                &[0, 1, 9, 10, 11, 50, 300]
                    .iter()
                    .map(|&n| (false, bytes(n, n as u8)))
                    .collect::<Vec<_>>(),
            ),
        ),
        (
            "round_trip_aborts",
            round_trip(
                MIB,
                6,
                &[
                    (true, bytes(100, 1)),
                    (false, bytes(100, 2)),
                    (true, bytes(5, 3)),
                    (false, typed.clone()),
                ],
            ),
        ),
        (
            "round_trip_half_size_chunks",
            round_trip(
                MIB,
                128 + 30,
                &[39, 40, 41, 100, 1000]
                    .iter()
                    .map(|&n| (false, bytes(n, n as u8)))
                    .collect::<Vec<_>>(),
            ),
        ),
        (
            "round_trip_over_the_limit",
            round_trip(
                16,
                2,
                &[
                    (false, bytes(10, 4)),
                    (false, bytes(40, 5)),
                    (true, bytes(40, 6)),
                    (false, bytes(16, 7)),
                ],
            ),
        ),
    ]
}

/// Write the seed corpus. Run by hand after a format change.
#[test]
#[ignore]
fn regenerate_seed_corpus() {
    write_seeds("frames", seeds());
}

/// The seeds on disk are what `regenerate_seed_corpus` writes today.
#[test]
fn seed_corpus_is_current() {
    check_seeds("frames", "frames", seeds());
}
