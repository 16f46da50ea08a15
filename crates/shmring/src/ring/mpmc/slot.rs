//! The sequence word of an MPMC slot: lap, owner and state in one atomic `u64` (see
//! `docs/mpmc-design.md`). Claims are made on the positions, not here (see the module
//! docs of [`super`], "Claims and intents"): the owner field names the publisher of a
//! FULL slot, for inspection only.
//!
//! ```text
//! bit 63 ........ 24 | 23 ...... 16 | 15 ......... 2 | 1 0
//!        lap (40)    | owner idx (8)| owner generation (14) | state
//! ```
//!
//! Laps wrap modulo 2^40 and are compared with wrapping arithmetic: a slot is never more
//! than one lap behind the position that looks at it, so the wrap is harmless. All-zero
//! memory is every slot EMPTY at lap 0.

/// Free for the producer of this lap (or, once the enqueue position passed it, being
/// written by the producer that claimed that position).
pub const EMPTY: u64 = 0;
/// Published by a recoverer in place of the message of a producer that died between
/// its claim and its publish: no message; the consumer that takes it gets `Lost`.
pub const LOST: u64 = 1;
/// Holds a message of this lap (or, once the dequeue position passed it, being read by
/// the consumer that claimed that position).
pub const FULL: u64 = 2;
/// Never written by this protocol (an earlier one's reader claim): taken as a slot
/// someone else already dealt with at its lap.
pub const READING: u64 = 3;

/// Mask of a lap number.
pub const LAP_MASK: u64 = (1 << 40) - 1;
/// Mask of an owner generation.
pub const GEN_MASK: u32 = (1 << 14) - 1;

/// Who claimed a slot: a party-table index and that entry's generation at attach time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Party-table index.
    pub idx: u8,
    /// Generation of the entry (14 bits).
    pub generation: u16,
}

impl Owner {
    /// Nobody (used for EMPTY slots).
    pub const NONE: Owner = Owner { idx: 0, generation: 0 };
}

/// Encode a sequence word.
#[inline]
pub const fn encode(lap: u64, owner: Owner, state: u64) -> u64 {
    ((lap & LAP_MASK) << 24)
        | ((owner.idx as u64) << 16)
        | (((owner.generation as u64) & GEN_MASK as u64) << 2)
        | (state & 3)
}

/// Decode a sequence word into (lap, owner, state).
#[inline]
pub const fn decode(word: u64) -> (u64, Owner, u64) {
    let owner = Owner {
        idx: ((word >> 16) & 0xff) as u8,
        generation: ((word >> 2) & GEN_MASK as u64) as u16,
    };
    (word >> 24, owner, word & 3)
}

/// `lap + 1` modulo 2^40.
#[inline]
pub const fn next_lap(lap: u64) -> u64 {
    (lap + 1) & LAP_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let o = Owner {
            idx: 63,
            generation: 16383,
        };
        for lap in [0, 1, LAP_MASK - 1, LAP_MASK] {
            for st in [EMPTY, LOST, FULL, READING] {
                assert_eq!(decode(encode(lap, o, st)), (lap, o, st));
            }
        }
        assert_eq!(decode(0), (0, Owner::NONE, EMPTY));
        assert_eq!(next_lap(LAP_MASK), 0);
    }
}
