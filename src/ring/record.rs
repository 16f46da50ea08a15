//! The record format of the SPSC byte ring, after Agrona's `RingBuffer` records.
//!
//! A record is an 8-byte header followed by the payload, padded to a multiple of 8:
//!
//! ```text
//!  0        4        8                         8 + len      align8(8 + len)
//!  +--------+--------+---------- ... ----------+------------+
//!  |  len   |  type  |        payload          |  padding   |
//!  +--------+--------+---------- ... ----------+------------+
//! ```
//!
//! `len` is the payload length (u32, little-endian on every supported target), `type`
//! is [`MESSAGE`] or [`PADDING`]. A record never crosses the end of the ring: when the
//! space to the end is too short, the producer writes a padding record that fills it
//! and the message starts again at offset 0. The header is read as one 64-bit word.
//!
//! Unlike Agrona, publication is by the producer's `tail` index, not by the sign of
//! `len`: the consumer never reads a line the producer is still writing, and never
//! has to zero what it consumed.

/// Size of a record header.
pub const HEADER_LEN: u64 = 8;
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

/// Encode a header word.
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

/// Validate the header word `word` of the record at ring position `pos`, with `avail`
/// bytes published from `pos` on, in a ring of `capacity` bytes (a power of two) whose
/// messages are at most `max_message` bytes.
///
/// Every check a hostile or corrupt producer could defeat is here: the type, the
/// payload length, the record staying within what was published and within the ring.
#[inline]
pub fn parse(word: u64, pos: u64, avail: u64, capacity: u64, max_message: u64) -> Result<Record, &'static str> {
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
            if total > avail {
                return Err("record extends past the published tail");
            }
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
            if to_end > avail {
                return Err("padding record extends past the published tail");
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
        assert_eq!(record_len(0), 8);
        assert_eq!(record_len(1), 16);
        assert_eq!(record_len(8), 16);
        assert_eq!(record_len(9), 24);
    }

    #[test]
    fn parse_checks() {
        let cap = 64;
        assert_eq!(
            parse(encode(5, MESSAGE), 0, 64, cap, 24),
            Ok(Record {
                len: 5,
                total: 16,
                padding: false
            })
        );
        assert!(parse(encode(5, MESSAGE), 0, 8, cap, 24).is_err(), "past tail");
        assert!(parse(encode(25, MESSAGE), 0, 64, cap, 24).is_err(), "too long");
        assert!(parse(encode(16, MESSAGE), 48, 64, cap, 24).is_err(), "crosses end");
        assert!(parse(encode(5, 7), 0, 64, cap, 24).is_err(), "type");
        assert_eq!(parse(encode(8, PADDING), 48, 16, cap, 24).map(|r| r.total), Ok(16));
        assert!(parse(encode(0, PADDING), 48, 16, cap, 24).is_err(), "short padding");
        assert!(parse(encode(8, PADDING), 48, 8, cap, 24).is_err(), "padding past tail");
        assert!(parse(u64::MAX, 0, 64, cap, 24).is_err());
    }
}
