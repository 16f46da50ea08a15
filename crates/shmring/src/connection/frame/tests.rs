//! Tests of the frame format: the sender's `Framer` and the receiver's `Reassembler`.

use super::*;

/// Frame `msg` into records of `rec` bytes.
fn frames(msg: &[u8], rec: usize) -> Vec<Vec<u8>> {
    frames_chunked(msg, rec, rec)
}

/// Frame `msg` into a record of `rec` bytes or chunks of `chunk` bytes.
fn frames_chunked(msg: &[u8], rec: usize, chunk: usize) -> Vec<Vec<u8>> {
    Framer::new(msg.len(), rec, chunk)
        .map(|f| {
            let mut v = vec![0; f.len()];
            f.write(msg, &mut v);
            assert!(v.len() <= rec);
            v
        })
        .collect()
}

fn first(total: u64, chunk: &[u8]) -> Vec<u8> {
    let mut v = vec![FIRST];
    v.extend_from_slice(&total.to_le_bytes());
    v.extend_from_slice(chunk);
    v
}

fn with_kind(kind: u8, chunk: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(chunk);
    v
}

fn feed(r: &mut Reassembler, fs: &[Vec<u8>]) -> Vec<Result<Option<Vec<u8>>, ConnError>> {
    fs.iter()
        .map(|f| {
            let mut out = Vec::new();
            r.push(f, &mut out).map(|o| o.map(|n| out[..n].to_vec()))
        })
        .collect()
}

#[test]
fn connection_frames_round_trip_every_size_around_the_record_size() {
    for (rec, chunk) in [
        (MIN_RECORD, MIN_RECORD),
        (11, 11),
        (16, 16),
        (100, 100),
        (100, 12),
        (64, 1),
        (20, 99),
    ] {
        for len in 0..4 * rec + 3 {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let fs = frames_chunked(&msg, rec, chunk);
            assert_eq!(fs.len() == 1, len < rec, "len {len} rec {rec}");
            let chunk = chunk.clamp(MIN_RECORD, rec);
            if fs.len() > 1 {
                assert!(fs.iter().all(|f| f.len() <= chunk), "len {len} chunk {chunk}");
                assert!(fs[..fs.len() - 1].iter().all(|f| f.len() == chunk), "chunks are full");
            }
            let mut r = Reassembler::new(len);
            let mut out = vec![0xAA; 3];
            let mut done = None;
            for (i, f) in fs.iter().enumerate() {
                let got = r.push(f, &mut out).unwrap();
                assert_eq!(got.is_some(), i == fs.len() - 1);
                done = got;
                assert!(r.partial_capacity() <= len);
            }
            assert_eq!(done, Some(len));
            assert_eq!(out, msg);
            assert!(!r.in_message());
        }
    }
}

#[test]
fn connection_frames_reject_rule_breakers_and_stay_broken() {
    let cases: Vec<(Vec<Vec<u8>>, FrameError)> = vec![
        (vec![vec![]], FrameError::Empty),
        (vec![vec![0]], FrameError::UnknownKind(0)),
        (vec![vec![6, 1, 2]], FrameError::UnknownKind(6)),
        (vec![vec![FIRST, 1, 2, 3]], FrameError::ShortFirst { len: 4 }),
        (
            vec![with_kind(MORE, b"x")],
            FrameError::UnexpectedContinuation { kind: "MORE" },
        ),
        (
            vec![with_kind(LAST, b"")],
            FrameError::UnexpectedContinuation { kind: "LAST" },
        ),
        (vec![vec![ABORT]], FrameError::UnexpectedContinuation { kind: "ABORT" }),
        (
            vec![first(10, b"abc"), with_kind(WHOLE, b"x")],
            FrameError::UnexpectedStart { kind: "WHOLE" },
        ),
        (
            vec![first(10, b"abc"), first(10, b"abc")],
            FrameError::UnexpectedStart { kind: "FIRST" },
        ),
        // A FIRST that already holds the whole message.
        (vec![first(3, b"abc")], FrameError::LengthMismatch { total: 3, got: 3 }),
        (vec![first(0, b"")], FrameError::LengthMismatch { total: 0, got: 0 }),
        // A MORE that completes (or passes) the total, a LAST that falls short or passes.
        (
            vec![first(5, b"ab"), with_kind(MORE, b"cde")],
            FrameError::LengthMismatch { total: 5, got: 5 },
        ),
        (
            vec![first(5, b"ab"), with_kind(LAST, b"cd")],
            FrameError::LengthMismatch { total: 5, got: 4 },
        ),
        (
            vec![first(5, b"ab"), with_kind(LAST, b"cdef")],
            FrameError::LengthMismatch { total: 5, got: 6 },
        ),
        (
            vec![first(5, b"ab"), with_kind(ABORT, b"z")],
            FrameError::AbortWithPayload { len: 1 },
        ),
    ];
    for (fs, want) in cases {
        let mut r = Reassembler::new(1 << 20);
        let res = feed(&mut r, &fs);
        assert_eq!(res.last().unwrap(), &Err(ConnError::BadFrame(want)), "{fs:?}");
        for ok in &res[..res.len() - 1] {
            assert_eq!(ok, &Ok(None));
        }
        assert_eq!(r.broken(), Some(want));
        assert_eq!(r.partial_capacity(), 0);
        // Broken for good: even a valid frame is refused.
        let mut out = Vec::new();
        assert_eq!(r.push(&[WHOLE, 1], &mut out), Err(ConnError::BadFrame(want)));
    }
}

#[test]
fn connection_frames_over_the_limit_are_skipped_and_the_stream_goes_on() {
    let mut r = Reassembler::new(4);
    let mut fs = frames(b"0123456789", MIN_RECORD); // FIRST + LAST
    fs.push(with_kind(WHOLE, b"12345"));
    fs.push(with_kind(WHOLE, b"1234"));
    let res = feed(&mut r, &fs);
    let too_large = |len| Err(ConnError::MessageTooLarge { len, max: 4 });
    assert_eq!(
        res,
        vec![too_large(10), Ok(None), too_large(5), Ok(Some(b"1234".to_vec()))]
    );
    // Nothing of the skipped message was stored.
    assert_eq!(r.partial_capacity(), 0);
    // A total of 2^64 - 1 is skipped without allocating, and its lengths still count.
    let res = feed(
        &mut r,
        &[
            first(u64::MAX, b"ab"),
            with_kind(MORE, b"cd"),
            with_kind(ABORT, b""),
            with_kind(WHOLE, b""),
        ],
    );
    assert_eq!(
        res,
        vec![
            Err(ConnError::MessageTooLarge { len: u64::MAX, max: 4 }),
            Ok(None),
            Ok(None),
            Ok(Some(vec![]))
        ]
    );
    let res = feed(&mut r, &[first(6, b"ab"), with_kind(MORE, b"cdef")]);
    assert_eq!(
        res[1],
        Err(ConnError::BadFrame(FrameError::LengthMismatch { total: 6, got: 6 }))
    );
}

#[test]
fn connection_frames_abort_drops_the_partial_message() {
    let mut r = Reassembler::new(100);
    let res = feed(
        &mut r,
        &[
            first(20, b"abcdef"),
            with_kind(MORE, b"ghi"),
            vec![ABORT],
            with_kind(WHOLE, b"next"),
        ],
    );
    assert_eq!(res, vec![Ok(None), Ok(None), Ok(None), Ok(Some(b"next".to_vec()))]);
    // The peer vanished mid-message: the partial message is dropped.
    let mut out = Vec::new();
    assert_eq!(r.push(&first(20, b"abc"), &mut out), Ok(None));
    assert!(r.in_message());
    r.peer_gone();
    assert!(!r.in_message());
    assert_eq!(r.push(&with_kind(WHOLE, b"x"), &mut out), Ok(Some(1)));
}

#[test]
fn connection_frames_resync_skips_the_tail_of_a_handed_over_message() {
    let mut r = Reassembler::resyncing(100);
    let mut fs = vec![with_kind(MORE, b"abc"), with_kind(LAST, b"de"), vec![ABORT]];
    fs.extend(frames(b"0123456789abc", MIN_RECORD));
    let res = feed(&mut r, &fs);
    assert_eq!(res.last().unwrap(), &Ok(Some(b"0123456789abc".to_vec())));
    assert!(res[..res.len() - 1].iter().all(|x| x == &Ok(None)));
    // Resync ends at the first start frame.
    assert_eq!(
        feed(&mut r, &[with_kind(MORE, b"x")])[0],
        Err(ConnError::BadFrame(FrameError::UnexpectedContinuation { kind: "MORE" }))
    );
}

#[test]
fn connection_frames_buffers_grow_with_the_chunks_not_the_announced_total() {
    let total = 1u64 << 20;
    let mut r = Reassembler::new(total as usize);
    let mut out = Vec::new();
    assert_eq!(r.push(&first(total, &[7; 16]), &mut out), Ok(None));
    assert!(r.partial_capacity() < 1024, "{}", r.partial_capacity());
    let chunk = with_kind(MORE, &[7; 4096]);
    let mut got = 16;
    while got + 4096 < total {
        r.push(&chunk, &mut out).unwrap();
        got += 4096;
        assert!(r.partial_capacity() as u64 <= total);
    }
    let last = with_kind(LAST, &vec![7; (total - got) as usize]);
    assert_eq!(r.push(&last, &mut out), Ok(Some(total as usize)));
    assert!(out.iter().all(|&b| b == 7));
    assert!(out.capacity() as u64 <= total);
}
