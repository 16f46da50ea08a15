//! The `frames` fuzz target: a pipe connection's frame reassembler and the codec over
//! arbitrary frames.

/// Feed `data` to a connection's frame reassembler (`connection/frame.rs`) and decode
/// every message it completes with the codec. Never panics on any input; asserts the
/// reassembler's promises.
///
/// Input: byte 0 picks the mode (bit 0) and the receiver's message limit (bits 1-7,
/// `s`: `s` bytes for `s < 64`, else `2^min(s - 64, 20)` bytes); byte 1 is a parameter
/// of the mode; the rest is items, each a 16-bit little-endian length and that many
/// bytes (cut at the end of the input).
///
/// - **Raw frames** (bit 0 clear): each item is one frame from a hostile peer; bit 0 of
///   byte 1 starts the reassembler as a handed-over end (skipping continuation frames).
///   Checked: no buffer ever exceeds the limit, a completed message is within it, a
///   `MessageTooLarge` names a length over it, and after a `BadFrame` every frame gets
///   the same error.
/// - **Round trip** (bit 0 set): each item is a message, framed by the sender's own
///   framer into a record of `10 + (byte 1 & 127)` bytes, or chunks of that size (half
///   of it if bit 7 of byte 1 is set); bit 15 of the length makes the sender
///   give up after the first frame (and send ABORT). Checked: every message within the
///   limit comes out exactly once and intact, an aborted one never, and one over the
///   limit is `MessageTooLarge` and skipped.
pub fn frames(data: &[u8]) {
    use crate::connection::ConnError;
    use crate::connection::frame::{ABORT_FRAME, Framer, MIN_RECORD, Reassembler};
    let (Some(&mode), Some(&param)) = (data.first(), data.get(1)) else {
        return;
    };
    let sel = usize::from(mode >> 1);
    let max = if sel < 64 { sel } else { 1 << (sel - 64).min(20) };
    let mut items = Vec::new();
    let mut rest = &data[2..];
    while let [lo, hi, tail @ ..] = rest {
        let word = u16::from_le_bytes([*lo, *hi]);
        let n = usize::from(word & 0x7fff).min(tail.len());
        items.push((word & 0x8000 != 0, &tail[..n]));
        rest = &tail[n..];
    }
    let mut out = Vec::new();
    if mode & 1 == 0 {
        let mut r = if param & 1 == 1 {
            Reassembler::resyncing(max)
        } else {
            Reassembler::new(max)
        };
        let mut broken = None;
        for &(_, frame) in &items {
            let res = r.push(frame, &mut out);
            assert!(r.partial_capacity() <= max, "reassembly buffer past the limit");
            if let Some(e) = &broken {
                assert_eq!(res.as_ref(), Err(e), "a broken stream must stay broken");
                continue;
            }
            match res {
                Ok(Some(n)) => {
                    assert!(
                        n == out.len() && n <= max && out.capacity() <= max,
                        "message past the limit"
                    );
                    decode_all(&out);
                }
                Ok(None) => {}
                Err(ConnError::MessageTooLarge { len, max: m }) => assert!(m == max && len > max as u64),
                Err(e @ ConnError::BadFrame(_)) => {
                    let _ = e.to_string();
                    broken = Some(e);
                }
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        return;
    }
    let rec = MIN_RECORD + usize::from(param & 0x7f);
    let chunk = if param & 0x80 != 0 { rec / 2 } else { rec };
    let mut r = Reassembler::new(max);
    let mut buf = Vec::new();
    for &(abort, msg) in &items {
        let mut framer = Framer::new(msg.len(), rec, chunk).peekable();
        let mut first = true;
        while let Some(f) = framer.next() {
            buf.resize(f.len(), 0);
            f.write(msg, &mut buf);
            let res = r.push(&buf, &mut out);
            assert!(r.partial_capacity() <= max, "reassembly buffer past the limit");
            let last = framer.peek().is_none();
            if abort && first && !last {
                assert!(matches!(res, Ok(None) | Err(ConnError::MessageTooLarge { .. })));
                assert_eq!(r.push(&ABORT_FRAME, &mut out), Ok(None), "ABORT of a started message");
                break;
            }
            if msg.len() > max {
                let want = if first {
                    Err(ConnError::MessageTooLarge {
                        len: msg.len() as u64,
                        max,
                    })
                } else {
                    Ok(None)
                };
                assert_eq!(res, want, "a message over the limit is refused, then skipped");
            } else if last {
                assert_eq!(res, Ok(Some(msg.len())), "the last frame completes the message");
                assert!(out == msg, "the message comes out intact");
                decode_all(&out);
            } else {
                assert_eq!(res, Ok(None), "a frame before the last completes nothing");
            }
            first = false;
        }
    }
}

/// Decode `bytes` as a few types; errors are fine, panics are not.
pub(crate) fn decode_all(bytes: &[u8]) {
    use crate::codec::{decode, decode_pod};
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    enum Shape {
        Unit,
        Pair(u32, i64),
        Named {
            text: String,
            list: Vec<(u16, bool)>,
            opt: Option<(char, [u8; 2])>,
        },
    }
    let _ = decode::<String>(bytes);
    let _ = decode::<Vec<u64>>(bytes);
    let _ = decode::<(u8, Option<String>, Vec<f64>)>(bytes);
    let _ = decode::<Shape>(bytes);
    let _ = decode::<std::collections::BTreeMap<String, Vec<u8>>>(bytes);
    let _ = decode_pod::<[u32; 3]>(bytes);
}
