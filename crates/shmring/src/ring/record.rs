//! The record format of the SPSC byte ring, after Agrona's `RingBuffer` records.
//!
//! A record is a 16-byte header followed by the payload, padded to a multiple of 16:
//!
//! ```text
//!  0        4        8                 16                       16 + len   align16(16 + len)
//!  +--------+--------+-----------------+---------- ... ----------+----------+
//!  |  len   |  type  |  stamp (u64)    |        payload          | padding  |
//!  +--------+--------+-----------------+---------- ... ----------+----------+
//! ```
//!
//! `len` is the payload length and `type` is [`MESSAGE`] or [`PADDING`] (together one
//! 64-bit word, little-endian on every supported target). A record never crosses the
//! end of the ring: when the space to the end is too short, the producer writes a
//! padding record that fills it and the message starts again at offset 0.
//!
//! **Publication is the stamp.** The producer writes the payload and the length/type
//! word, then stores the record's absolute ring position (bytes ever written before it)
//! into `stamp` with Release. The consumer polls the stamp at its `head` with Acquire: a
//! record is there exactly when `stamp == head`. Positions never repeat, so a stale
//! stamp from an earlier lap can never match, and the consumer that waits for the next
//! message polls one cache line — the one the message arrives in — instead of an index
//! line and then the record's line. (Agrona publishes through the sign of `len`, which
//! forces the consumer to zero what it consumed; a position stamp needs no clearing.)
//! The producer's `tail` index is still published, for the producer's re-attachment,
//! for statistics, and as a cross-check of the stamps.

/// Size of a record header.
pub const HEADER_LEN: u64 = 16;
/// Offset of the stamp within a record header.
pub const STAMP_OFFSET: u64 = 8;
/// Alignment of records (so that a padding record's header always fits at the wrap).
pub const ALIGN: u64 = 16;
/// Type of a record carrying a message.
pub const MESSAGE: u32 = 1;
/// Type of a record that fills the space up to the end of the ring.
pub const PADDING: u32 = 2;

/// The total size of a record with a payload of `len` bytes.
#[inline]
pub const fn record_len(len: u64) -> u64 {
    (HEADER_LEN + len + (ALIGN - 1)) & !(ALIGN - 1)
}

/// Encode a length/type word.
#[inline]
pub const fn encode(len: u32, kind: u32) -> u64 {
    (len as u64) | ((kind as u64) << 32)
}

/// A record header that passed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Payload length.
    pub len: u64,
    /// Total size (header + payload + alignment).
    pub total: u64,
    /// Whether this is a padding record.
    pub padding: bool,
}

/// Validate the length/type word `word` of a published record (its stamp matched) at
/// ring position `pos`, in a ring of `capacity` bytes (a power of two) whose messages
/// are at most `max_message` bytes.
///
/// Every check a hostile or corrupt producer could defeat is here: the type, the
/// payload length, and the record staying within the ring.
#[inline]
pub fn parse(word: u64, pos: u64, capacity: u64, max_message: u64) -> Result<Record, &'static str> {
    let len = word & 0xffff_ffff;
    let kind = (word >> 32) as u32;
    let off = pos & (capacity - 1);
    let to_end = capacity - off;
    match kind {
        MESSAGE => {
            if len > max_message {
                return Err("record length above the ring's message limit");
            }
            let total = record_len(len);
            if total > to_end {
                return Err("message record crosses the end of the ring");
            }
            Ok(Record {
                len,
                total,
                padding: false,
            })
        }
        PADDING => {
            if len + HEADER_LEN != to_end {
                return Err("padding record does not end at the end of the ring");
            }
            Ok(Record {
                len,
                total: to_end,
                padding: true,
            })
        }
        _ => Err("unknown record type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(record_len(0), 16);
        assert_eq!(record_len(1), 32);
        assert_eq!(record_len(16), 32);
        assert_eq!(record_len(17), 48);
    }

    #[test]
    fn parse_checks() {
        let cap = 128;
        assert_eq!(
            parse(encode(5, MESSAGE), 0, cap, 48),
            Ok(Record {
                len: 5,
                total: 32,
                padding: false
            })
        );
        assert!(parse(encode(49, MESSAGE), 0, cap, 48).is_err(), "too long");
        assert!(parse(encode(16, MESSAGE), 112, cap, 48).is_err(), "crosses end");
        assert!(parse(encode(5, 7), 0, cap, 48).is_err(), "type");
        assert_eq!(parse(encode(16, PADDING), 96, cap, 48).map(|r| r.total), Ok(32));
        assert_eq!(parse(encode(0, PADDING), 112, cap, 48).map(|r| r.total), Ok(16));
        assert!(parse(encode(0, PADDING), 96, cap, 48).is_err(), "short padding");
        assert!(parse(u64::MAX, 0, cap, 48).is_err());
    }
}
