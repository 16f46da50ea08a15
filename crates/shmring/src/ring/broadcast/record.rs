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

use crate::ring::record::Format;
pub use crate::ring::record::{MESSAGE, PADDING, Record, STAMP_OFFSET, encode};

/// The broadcast ring's record format: a 24-byte header (with the sequence number),
/// 8-byte alignment. Parsing is [`Format::parse`], shared with the SPSC ring.
pub const FORMAT: Format = Format {
    header_len: 24,
    align: 8,
};
/// Size of a record header.
pub const HEADER_LEN: u64 = FORMAT.header_len;
/// Offset of the sequence number within a header.
pub const SEQ_OFFSET: u64 = 16;
/// Alignment of records.
pub const ALIGN: u64 = FORMAT.align;

/// The total size of a record with a payload of `len` bytes.
#[inline]
pub const fn record_len(len: u64) -> u64 {
    FORMAT.record_len(len)
}

/// The stamp of a record at ring position `pos`: never zero, never equal for two
/// positions below 2^63.
#[inline]
pub const fn stamp(pos: u64) -> u64 {
    pos | (1 << 63)
}

/// [`Format::parse`] in the broadcast format. The caller checked that a header fits
/// before the end of the ring.
#[inline]
pub fn parse(word: u64, pos: u64, capacity: u64, max_message: u64) -> Result<Record, &'static str> {
    FORMAT.parse(word, pos, capacity, max_message)
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
