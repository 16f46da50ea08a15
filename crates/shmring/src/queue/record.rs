//! The record in a slot (inline message or reference to a side segment), the names of
//! side segments, and the checksum of their bytes. Everything here that reads a record
//! treats it as untrusted input: bounds-checked, never panicking.

use super::error::BadReference;
use crate::shm::HeaderInfo;

/// Kind byte of a record holding the message itself.
pub(crate) const KIND_INLINE: u8 = 1;
/// Kind byte of a record naming a side segment.
pub(crate) const KIND_REFERENCE: u8 = 2;
/// Fixed part of a reference record: kind, name length, 6 reserved zero bytes, the
/// message length and its checksum.
pub(crate) const REF_HEADER: usize = 24;
/// Longest side-segment name: `shmring-q-` (10) + 16 hex digits + `-` + pid (at most 10
/// digits) + `-` + sequence (at most 20 digits) = 58, with room to spare.
pub(crate) const MAX_REF_NAME: usize = 80;
/// Longest reference record; fits the smallest slot.
pub(crate) const MAX_REF_RECORD: usize = REF_HEADER + MAX_REF_NAME;
const _: () = assert!(MAX_REF_RECORD <= super::MIN_SLOT_SIZE);

/// A reference record's fields, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reference<'a> {
    /// The side segment's name (passed [`is_side_name`]).
    pub(crate) name: &'a str,
    /// The message length (1..=max message size).
    pub(crate) len: u64,
    /// The checksum of the message bytes.
    pub(crate) checksum: u64,
}

/// What a slot held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    /// The message itself.
    Inline(&'a [u8]),
    /// A side segment holding it.
    Reference(Reference<'a>),
}

/// Parse the record `slot` popped from a queue whose side segments start with `prefix`,
/// accepting messages of up to `max_len` bytes.
pub(crate) fn parse<'a>(slot: &'a [u8], prefix: &str, max_len: u64) -> Result<Record<'a>, BadReference> {
    let Some((&kind, rest)) = slot.split_first() else {
        return Err(BadReference::Truncated { len: 0 });
    };
    match kind {
        KIND_INLINE => Ok(Record::Inline(rest)),
        KIND_REFERENCE => {
            if slot.len() < REF_HEADER {
                return Err(BadReference::Truncated { len: slot.len() });
            }
            let name_len = usize::from(slot[1]);
            if slot[2..8].iter().any(|&b| b != 0) || name_len == 0 || name_len > MAX_REF_NAME {
                return Err(BadReference::Malformed);
            }
            if slot.len() != REF_HEADER + name_len {
                return Err(BadReference::Truncated { len: slot.len() });
            }
            let word = |at: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&slot[at..at + 8]);
                u64::from_le_bytes(b)
            };
            let (len, checksum) = (word(8), word(16));
            let name = std::str::from_utf8(&slot[REF_HEADER..]).map_err(|_| BadReference::ForeignName)?;
            if !is_side_name(name, prefix) {
                return Err(BadReference::ForeignName);
            }
            if len == 0 || len > max_len {
                return Err(BadReference::TooLarge { len, max: max_len });
            }
            Ok(Record::Reference(Reference { name, len, checksum }))
        }
        other => Err(BadReference::UnknownKind(other)),
    }
}

/// Write a reference record for `r` into `out`; returns its length.
pub(crate) fn encode_reference(r: &Reference<'_>, out: &mut [u8; MAX_REF_RECORD]) -> usize {
    let name = r.name.as_bytes();
    assert!(
        !name.is_empty() && name.len() <= MAX_REF_NAME,
        "side segment name too long"
    );
    out[..REF_HEADER].fill(0);
    out[0] = KIND_REFERENCE;
    out[1] = name.len() as u8;
    out[8..16].copy_from_slice(&r.len.to_le_bytes());
    out[16..24].copy_from_slice(&r.checksum.to_le_bytes());
    out[REF_HEADER..REF_HEADER + name.len()].copy_from_slice(name);
    REF_HEADER + name.len()
}

/// The id of the queue whose ring header is `info`: a hash of the creator's identity and
/// the creation time, the same for every party.
pub(crate) fn queue_id(info: &HeaderInfo) -> u64 {
    let mut h = 0x5152_4551_5545_5545u64; // "EUEUQRQ" salt
    for w in [
        u64::from(info.creator_pid),
        info.creator_start_time,
        info.created_unix_ns,
    ] {
        h = mix(h ^ w);
    }
    h
}

/// The prefix of the side segments of queue `id`: `shmring-q-<16 hex digits>-`.
pub(crate) fn side_prefix(id: u64) -> String {
    format!("shmring-q-{id:016x}-")
}

/// The name of side segment `seq` of process `pid`.
pub(crate) fn side_name(prefix: &str, pid: u32, seq: u64) -> String {
    format!("{prefix}{pid}-{seq}")
}

/// Whether `name` is exactly `<prefix><1..=10 digits>-<1..=20 digits>`.
pub(crate) fn is_side_name(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let Some((pid, seq)) = rest.split_once('-') else {
        return false;
    };
    let digits = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    name.len() <= MAX_REF_NAME && digits(pid, 10) && digits(seq, 20)
}

/// splitmix64's finalizer.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Checksum of a message's bytes: a Fletcher-style sum (plain and position-weighted)
/// over four lanes of 64-bit words, finished with the length. It catches a segment that
/// does not hold what its reference describes (a torn, reused or tampered segment); it
/// is not a MAC. Four independent lanes of adds run at memory speed.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    let mut a = [0u64; 4];
    let mut s = [0u64; 4];
    let mut step = |chunk: &[u8]| {
        for i in 0..4 {
            let mut w = [0u8; 8];
            w.copy_from_slice(&chunk[i * 8..i * 8 + 8]);
            a[i] = a[i].wrapping_add(u64::from_le_bytes(w));
            s[i] = s[i].wrapping_add(a[i]);
        }
    };
    let mut chunks = bytes.chunks_exact(32);
    for c in &mut chunks {
        step(c);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut last = [0u8; 32];
        last[..tail.len()].copy_from_slice(tail);
        step(&last);
    }
    let mut h = mix(bytes.len() as u64 ^ 0x9e37_79b9_7f4a_7c15);
    for i in 0..4 {
        h = mix(h ^ a[i]);
        h = mix(h ^ s[i]);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "shmring-q-00112233445566aa-";

    fn reference(name: &str, len: u64) -> Vec<u8> {
        let mut out = [0u8; MAX_REF_RECORD];
        let n = encode_reference(&Reference { name, len, checksum: 7 }, &mut out);
        out[..n].to_vec()
    }

    #[test]
    fn names() {
        let n = side_name(PREFIX, u32::MAX, u64::MAX);
        assert!(n.len() <= MAX_REF_NAME);
        assert!(crate::shm::validate_name(&n).is_ok());
        assert!(is_side_name(&n, PREFIX));
        assert!(is_side_name(&format!("{PREFIX}1-0"), PREFIX));
        for bad in [
            "",
            "shmring-q-00112233445566aa-",
            "shmring-q-00112233445566aa-1",
            "shmring-q-00112233445566aa-1-",
            "shmring-q-00112233445566aa--1",
            "shmring-q-00112233445566aa-1-2-3",
            "shmring-q-00112233445566aa-1-x",
            "shmring-q-00112233445566aa-../1-2",
            "shmring-q-00112233445566ab-1-2",
            "victim",
            "shmring-q-00112233445566aa-12345678901-1",
        ] {
            assert!(!is_side_name(bad, PREFIX), "{bad:?}");
        }
        assert_eq!(side_prefix(0xab), "shmring-q-00000000000000ab-");
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_errors() {
        let name = format!("{PREFIX}42-7");
        let rec = reference(&name, 1000);
        assert_eq!(
            parse(&rec, PREFIX, 1 << 20),
            Ok(Record::Reference(Reference {
                name: &name,
                len: 1000,
                checksum: 7
            }))
        );
        assert_eq!(parse(&[1, 9, 8], PREFIX, 10), Ok(Record::Inline(&[9, 8])));
        assert_eq!(parse(&[1], PREFIX, 10), Ok(Record::Inline(&[])));
        assert_eq!(parse(&[], PREFIX, 10), Err(BadReference::Truncated { len: 0 }));
        assert_eq!(parse(&[0, 1], PREFIX, 10), Err(BadReference::UnknownKind(0)));
        assert_eq!(parse(&[9], PREFIX, 10), Err(BadReference::UnknownKind(9)));
        // Too large for this consumer, and zero.
        assert_eq!(
            parse(&rec, PREFIX, 999),
            Err(BadReference::TooLarge { len: 1000, max: 999 })
        );
        assert!(matches!(
            parse(&reference(&name, 0), PREFIX, 10),
            Err(BadReference::TooLarge { len: 0, .. })
        ));
        // Foreign names.
        for bad in [
            "victim",
            "shmring-q-00112233445566aa-1-2-3",
            "shmring-q-ffffffffffffffff-1-2",
        ] {
            assert_eq!(parse(&reference(bad, 10), PREFIX, 100), Err(BadReference::ForeignName));
        }
        // Every truncation and extension is an error.
        for n in 0..rec.len() {
            assert!(parse(&rec[..n], PREFIX, 1 << 20).is_err(), "prefix of {n}");
        }
        let mut longer = rec.clone();
        longer.push(b'1');
        assert!(parse(&longer, PREFIX, 1 << 20).is_err());
        // Reserved bytes and name lengths.
        let mut r = rec.clone();
        r[5] = 1;
        assert_eq!(parse(&r, PREFIX, 1 << 20), Err(BadReference::Malformed));
        let mut r = rec.clone();
        r[1] = 0;
        assert_eq!(parse(&r, PREFIX, 1 << 20), Err(BadReference::Malformed));
        let mut r = rec.clone();
        r[1] = 255;
        assert_eq!(parse(&r, PREFIX, 1 << 20), Err(BadReference::Malformed));
        // Invalid UTF-8 in the name.
        let mut r = rec;
        let last = r.len() - 1;
        r[last] = 0xff;
        assert_eq!(parse(&r, PREFIX, 1 << 20), Err(BadReference::ForeignName));
    }

    #[test]
    fn random_records_never_panic() {
        let mut x = 1u64;
        let mut buf = Vec::new();
        for i in 0..20_000u64 {
            x = mix(x.wrapping_add(i));
            let len = (x % 140) as usize;
            buf.clear();
            for j in 0..len {
                buf.push(mix(x ^ j as u64) as u8);
            }
            if len > 0 && i % 3 == 0 {
                buf[0] = KIND_REFERENCE;
            }
            let _ = parse(&buf, PREFIX, 1 << 30);
        }
    }

    #[test]
    fn checksum_sees_changes() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let c = checksum(&data);
        assert_eq!(c, checksum(&data.clone()));
        for at in [0, 1, 31, 32, 500, 999] {
            let mut d = data.clone();
            d[at] ^= 1;
            assert_ne!(checksum(&d), c, "flip at {at}");
        }
        // Swapped words, and lengths that differ only by trailing zeros.
        let mut d = data.clone();
        d.swap(0, 32);
        assert_ne!(checksum(&d), c);
        assert_ne!(checksum(&[0; 5]), checksum(&[0; 6]));
        assert_ne!(checksum(&[]), checksum(&[0]));
    }
}
