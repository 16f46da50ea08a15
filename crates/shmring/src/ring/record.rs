//! The record format of the byte rings, after Agrona's `RingBuffer` records, written
//! once for the SPSC ring and the broadcast ring: a [`Format`] fixes the header size
//! and the alignment, and [`Format::parse`] validates a header for both. The broadcast
//! ring's header adds a sequence number (see
//! [`broadcast::record`](crate::ring::broadcast::record)).
//!
//! In the SPSC ring a record is a 16-byte header followed by the payload, padded to a
//! multiple of 16:
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

/// A record format: the size of the header and the alignment of records. The SPSC ring
/// uses [`SPSC`] (16-byte header, 16-byte alignment); the broadcast ring uses
/// [`broadcast::record::FORMAT`](crate::ring::broadcast::record::FORMAT) (24-byte header
/// with a sequence number, 8-byte alignment). Every other rule — the length/type word,
/// the padding record at the wrap, the checks of [`Format::parse`] — is the same, and is
/// written once here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// Size of a record header (a multiple of 8, at least 16).
    pub header_len: u64,
    /// Alignment of records (a power of two, at least 8).
    pub align: u64,
}

impl Format {
    /// The total size of a record with a payload of `len` bytes.
    #[inline]
    pub const fn record_len(self, len: u64) -> u64 {
        (self.header_len + len + (self.align - 1)) & !(self.align - 1)
    }

    /// Validate the length/type word `word` of a record at ring position `pos`, in a
    /// ring of `capacity` bytes (a power of two) whose messages are at most
    /// `max_message` bytes. The caller checked that a header fits before the end of
    /// the ring (and, in the SPSC ring, that the record's stamp matched).
    ///
    /// Every check a hostile or corrupt writer could defeat is here: the type, the
    /// payload length, and the record staying within the ring.
    #[inline]
    pub fn parse(self, word: u64, pos: u64, capacity: u64, max_message: u64) -> Result<Record, &'static str> {
        let len = word & 0xffff_ffff;
        let kind = (word >> 32) as u32;
        let off = pos & (capacity - 1);
        let to_end = capacity - off;
        match kind {
            MESSAGE => {
                if len > max_message {
                    return Err("record length above the ring's message limit");
                }
                let total = self.record_len(len);
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
                if len + self.header_len != to_end {
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
}

/// The SPSC ring's record format: a 16-byte header, 16-byte alignment (so that a
/// padding record's header always fits at the wrap).
pub const SPSC: Format = Format {
    header_len: 16,
    align: 16,
};
/// Size of an SPSC record header.
pub const HEADER_LEN: u64 = SPSC.header_len;
/// Offset of the stamp within a record header (the same in both formats).
pub const STAMP_OFFSET: u64 = 8;
/// Alignment of SPSC records.
pub const ALIGN: u64 = SPSC.align;
/// Type of a record carrying a message.
pub const MESSAGE: u32 = 1;
/// Type of a record that fills the space up to the end of the ring.
pub const PADDING: u32 = 2;

/// The total size of an SPSC record with a payload of `len` bytes.
#[inline]
pub const fn record_len(len: u64) -> u64 {
    SPSC.record_len(len)
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

/// [`Format::parse`] for an SPSC record whose stamp matched.
#[inline]
pub fn parse(word: u64, pos: u64, capacity: u64, max_message: u64) -> Result<Record, &'static str> {
    SPSC.parse(word, pos, capacity, max_message)
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
