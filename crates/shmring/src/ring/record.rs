//! The record format of the byte rings, after Agrona's `RingBuffer` records, written
//! once for the SPSC ring and the broadcast ring: a [`Format`] fixes the header size
//! and the alignment, and [`Format::parse`] validates a header for both. The broadcast
//! ring's header adds a sequence number (see
//! [`broadcast::record`](crate::ring::broadcast::record)).
//!
//! In the SPSC ring (layout version 3) a record is an 8-byte header followed by the
//! payload, padded to a multiple of 8:
//!
//! ```text
//!  0      4    4.25                8                       8 + len   align8(8 + len)
//!  +--------+--+------------------+---------- ... ----------+----------+
//!  |  len   |ty|  1 | tag (29 b)  |        payload          | padding  |
//!  +--------+--+------------------+---------- ... ----------+----------+
//! ```
//!
//! One little-endian 64-bit word: `len` (bits 31..0) is the payload length, `ty` (bits
//! 33..32) is [`MESSAGE`] or [`PADDING`], bit 63 is set, and bits 62..34 hold the
//! record's *stamp*: its ring position in units of 8 bytes, modulo 2^29
//! ([`spsc::header`](crate::ring::spsc)). A record never crosses the end of the ring:
//! when the space to the end is too short, the producer writes a padding record that
//! fills it (8 bytes at least: a header always fits) and the message starts again at
//! offset 0.
//!
//! **Publication is the header.** The producer writes the payload, then stores the
//! whole header word with Release. The consumer polls the word at its `head` with
//! Acquire: a record is there exactly when the word's stamp is `head`'s. The producer
//! clears every header slot ahead of its `tail` (it zeroes the words a chunk ahead)
//! before the consumer can reach it, so a stale header or payload word from an earlier
//! lap is never at the consumer's position; the stamp makes a word that was not
//! written for this position fail the match besides (stamps repeat only every 4 GiB of
//! stream). The consumer that waits for the next message polls one cache line — the
//! one the message arrives in — instead of an index line and then the record's line.
//! The producer's `tail` index is still published, for the producer's re-attachment,
//! for statistics, and as a cross-check of the stamps.
//!
//! (Layout version 2 had a 16-byte header, the length/type word then a 64-bit stamp,
//! and 16-byte alignment: an 8-byte message took 32 bytes, two to a 64-byte cache line
//! where now four fit, and the small-message throughput between two CPUs, bound by
//! cache-line transfers, was about two thirds of a ring with 16-byte records. The
//! broadcast ring keeps that two-word layout, with a sequence number added.)

/// A record format: the size of the header and the alignment of records. The SPSC ring
/// uses [`SPSC`] (8-byte header, 8-byte alignment); the broadcast ring uses
/// [`broadcast::record::FORMAT`](crate::ring::broadcast::record::FORMAT) (24-byte header
/// with a sequence number, 8-byte alignment). Every other rule — the length/type word,
/// the padding record at the wrap, the checks of [`Format::parse`] — is the same, and is
/// written once here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// Size of a record header (a multiple of 8).
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

/// The SPSC ring's record format: an 8-byte header, 8-byte alignment (so that a
/// padding record's header always fits at the wrap).
pub const SPSC: Format = Format {
    header_len: 8,
    align: 8,
};
/// Size of an SPSC record header.
pub const HEADER_LEN: u64 = SPSC.header_len;
/// Offset of the stamp within a broadcast record header (the SPSC ring's stamp is part
/// of its one-word header).
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
        assert_eq!(record_len(0), 8);
        assert_eq!(record_len(1), 16);
        assert_eq!(record_len(8), 16);
        assert_eq!(record_len(9), 24);
        assert_eq!(record_len(64), 72);
    }

    #[test]
    fn parse_checks() {
        let cap = 128;
        assert_eq!(
            parse(encode(5, MESSAGE), 0, cap, 48),
            Ok(Record {
                len: 5,
                total: 16,
                padding: false
            })
        );
        assert!(parse(encode(49, MESSAGE), 0, cap, 48).is_err(), "too long");
        assert!(parse(encode(16, MESSAGE), 112, cap, 48).is_err(), "crosses end");
        assert!(parse(encode(5, 7), 0, cap, 48).is_err(), "type");
        assert_eq!(parse(encode(16, PADDING), 104, cap, 48).map(|r| r.total), Ok(24));
        assert_eq!(parse(encode(0, PADDING), 120, cap, 48).map(|r| r.total), Ok(8));
        assert!(parse(encode(0, PADDING), 112, cap, 48).is_err(), "short padding");
        assert!(parse(u64::MAX, 0, cap, 48).is_err());
    }
}
