//! The broadcast ring's record format, after Agrona's broadcast buffer records.
//!
//! A record is a 24-byte header followed by the payload, padded to a multiple of 8:
//!
//! ```text
//!  0        4        8                16               24                24 + len  align8
//!  +--------+--------+----------------+----------------+------ ... ------+---------+
//!  |  len   |  type  |  stamp (u64)   |   seq (u64)    |     payload     | padding |
//!  +--------+--------+----------------+----------------+------ ... ------+---------+
//! ```
//!
//! `len`/`type` form one 64-bit word ([`MESSAGE`] or [`PADDING`]); `stamp` is the
//! record's ring position with the top bit set (positions never repeat, so a record of
//! another lap never carries the stamp a subscriber expects); `seq` is the message's
//! sequence number (0, 1, 2, ... over the stream's life, across publisher restarts),
//! from which a lapped subscriber counts what it missed. A record never crosses the end
//! of the ring: a [`PADDING`] record fills the space to the end, and when that space
//! is shorter than a header (8 or 16 bytes) both sides skip it without a header.

/// Size of a record header.
pub const HEADER_LEN: u64 = 24;
/// Offset of the stamp within a header.
pub const STAMP_OFFSET: u64 = 8;
/// Offset of the sequence number within a header.
pub const SEQ_OFFSET: u64 = 16;
/// Alignment of records.
pub const ALIGN: u64 = 8;
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

/// The stamp of a record at ring position `pos`: never zero, never equal for two
/// positions below 2^63.
#[inline]
pub const fn stamp(pos: u64) -> u64 {
    pos | (1 << 63)
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

/// Validate the length/type word `word` of a record at ring position `pos` in a ring
/// of `capacity` bytes (a power of two) whose messages are at most `max_message`
/// bytes. The caller checked that a header fits before the end of the ring.
#[inline]
pub fn parse(word: u64, pos: u64, capacity: u64, max_message: u64) -> Result<Record, &'static str> {
    let len = word & 0xffff_ffff;
    let kind = (word >> 32) as u32;
    let to_end = capacity - (pos & (capacity - 1));
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
    fn lengths_and_parse() {
        assert_eq!(record_len(0), 24);
        assert_eq!(record_len(1), 32);
        assert_eq!(record_len(8), 32);
        assert_eq!(record_len(9), 40);
        let cap = 256;
        assert_eq!(parse(encode(5, MESSAGE), 0, cap, 100).map(|r| r.total), Ok(32));
        assert!(parse(encode(101, MESSAGE), 0, cap, 100).is_err(), "too long");
        assert!(parse(encode(16, MESSAGE), 224, cap, 100).is_err(), "crosses the end");
        assert!(parse(encode(5, 9), 0, cap, 100).is_err(), "type");
        assert_eq!(parse(encode(8, PADDING), 224, cap, 100).map(|r| r.total), Ok(32));
        assert!(parse(encode(0, PADDING), 200, cap, 100).is_err(), "short padding");
        assert!(parse(u64::MAX, 0, cap, 100).is_err());
        assert_ne!(stamp(0), 0);
    }
}
