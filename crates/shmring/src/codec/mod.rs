//! How typed messages become bytes and back.
//!
//! - **serde types** travel in [postcard](https://docs.rs/postcard)'s format: compact
//!   (varint integers, no field names), a documented and stable wire format, written for
//!   untrusted input (decoding is bounds-checked and fuzzed upstream and here), and
//!   maintained. bincode 2 was the other candidate; its development stopped in 2025, and
//!   its varint format is no smaller for small messages.
//! - **plain-old-data types** ([`bytemuck::Pod`]) travel as their bytes: no encoding
//!   step at all ([`encode_pod`], [`decode_pod`]).
//! - **raw bytes** travel as they are (the `*_bytes` calls of the channels).
//!
//! Decoding bytes that came from a peer never panics: a truncated, oversized or
//! malformed message is a [`CodecError`], and so are bytes left over after a value
//! (a frame must hold exactly one value).

mod slice;

use bytemuck::Pod;
use postcard::ser_flavors;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a value could not be encoded or decoded. Small; never allocates.
///
/// ```
/// use shmring::codec::{decode, CodecError};
/// assert!(matches!(decode::<u32>(&[]), Err(CodecError::Decode(_))));
/// assert_eq!(decode::<u8>(&[1, 2]), Err(CodecError::TrailingBytes { extra: 1 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value cannot be represented (e.g. a map or sequence of unknown length, or a
    /// serializer error).
    #[error("cannot encode the value: {0}")]
    Encode(postcard::Error),
    /// The bytes are not a valid encoding of the requested type.
    #[error("cannot decode the message: {0}")]
    Decode(postcard::Error),
    /// The bytes held a value followed by `extra` more bytes.
    #[error("{extra} unexpected bytes after the message")]
    TrailingBytes {
        /// How many bytes were left over.
        extra: usize,
    },
    /// A plain-old-data message of the wrong size.
    #[error("a message of {got} bytes where {expected} were expected")]
    WrongSize {
        /// The size of the requested type.
        expected: usize,
        /// The size of the message.
        got: usize,
    },
}

/// Append the encoding of `value` to `out`.
///
/// ```
/// let mut buf = Vec::new();
/// shmring::codec::encode(&(7u32, "seven"), &mut buf)?;
/// let back: (u32, String) = shmring::codec::decode(&buf)?;
/// assert_eq!(back, (7, "seven".to_string()));
/// # Ok::<(), shmring::codec::CodecError>(())
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    // Two passes (count, then write into a slice of exactly that size) cost less than
    // one pass that grows the vector byte by byte.
    let len = encoded_len(value)?;
    let start = out.len();
    out.resize(start + len, 0);
    match encode_to_slice(value, &mut out[start..]) {
        Ok(n) if n == len => Ok(()),
        // A `Serialize` impl that wrote other bytes the second time: encode again the
        // slow way, so that `out` holds exactly one encoding.
        _ => {
            out.truncate(start);
            postcard::to_extend(value, std::mem::take(out))
                .map(|v| *out = v)
                .map_err(CodecError::Encode)
        }
    }
}

/// The length of the encoding of `value`, without writing it (postcard's size flavor:
/// no allocation).
///
/// ```
/// assert_eq!(shmring::codec::encoded_len(&(300u32, "abc"))?, 2 + 1 + 3);
/// # Ok::<(), shmring::codec::CodecError>(())
/// ```
#[inline]
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, CodecError> {
    postcard::serialize_with_flavor(value, ser_flavors::Size::default()).map_err(CodecError::Encode)
}

/// Write the encoding of `value` at the start of `out`; returns its length. A value
/// whose encoding does not fit is [`CodecError::Encode`] (`out` then holds part of it).
/// This is how a typed send writes straight into a ring's claimed space.
///
/// ```
/// let mut buf = [0u8; 16];
/// let n = shmring::codec::encode_to_slice(&(7u8, "hi"), &mut buf)?;
/// assert_eq!(&buf[..n], [7, 2, b'h', b'i']);
/// assert!(shmring::codec::encode_to_slice(&"too long", &mut buf[..4]).is_err());
/// # Ok::<(), shmring::codec::CodecError>(())
/// ```
#[inline]
pub fn encode_to_slice<T: Serialize + ?Sized>(value: &T, out: &mut [u8]) -> Result<usize, CodecError> {
    let mut ser = slice::SliceSer::new(out);
    value.serialize(&mut ser).map_err(CodecError::Encode)?;
    Ok(ser.len())
}

/// The encoding of `value` in a new vector.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut v = Vec::new();
    encode(value, &mut v)?;
    Ok(v)
}

/// Decode one `T` that fills `bytes` exactly.
#[inline]
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_borrowed(bytes)
}

/// Decode one `T` that fills `bytes` exactly, borrowing from `bytes` where `T` does
/// (`&str` and `&[u8]` fields, with `#[serde(borrow)]` where serde needs it): no
/// allocation for them. [`decode`] is this for types that own their data.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct TickRef<'a> {
///     seq: u64,
///     sym: &'a str,
/// }
/// let bytes = shmring::codec::to_vec(&TickRef { seq: 1, sym: "EURUSD" })?;
/// let t: TickRef<'_> = shmring::codec::decode_borrowed(&bytes)?;
/// assert_eq!(t.sym, "EURUSD");
/// assert_eq!(t.sym.as_ptr(), bytes[2..].as_ptr()); // a view of the bytes, not a copy
/// # Ok::<(), shmring::codec::CodecError>(())
/// ```
#[inline]
pub fn decode_borrowed<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, CodecError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(CodecError::Decode)?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes { extra: rest.len() });
    }
    Ok(value)
}

/// Decode one `T` that fills `bytes` exactly into `place`, reusing what it owns where
/// `T`'s `Deserialize` does so (serde's `deserialize_in_place`): a `String` or `Vec`
/// keeps its allocation and is refilled; a struct derived by serde does the same for
/// its fields only when serde_derive's `deserialize_in_place` feature is on (otherwise
/// serde replaces the whole value, as [`decode`] would). On an error `place` holds a
/// valid value, possibly partly overwritten.
///
/// ```
/// let mut s = String::with_capacity(64);
/// let ptr = s.as_ptr();
/// shmring::codec::decode_into(&shmring::codec::to_vec("EURUSD")?, &mut s)?;
/// assert_eq!((s.as_str(), s.as_ptr()), ("EURUSD", ptr)); // the same allocation
/// # Ok::<(), shmring::codec::CodecError>(())
/// ```
#[inline]
pub fn decode_into<'de, T: Deserialize<'de>>(bytes: &'de [u8], place: &mut T) -> Result<(), CodecError> {
    let mut de = postcard::Deserializer::from_bytes(bytes);
    T::deserialize_in_place(&mut de, place).map_err(CodecError::Decode)?;
    let rest = de.finalize().map_err(CodecError::Decode)?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes { extra: rest.len() });
    }
    Ok(())
}

/// The bytes of a plain-old-data value (no copy, no encoding).
///
/// ```
/// let b = shmring::codec::encode_pod(&[1u16, 2]);
/// assert_eq!(shmring::codec::decode_pod::<[u16; 2]>(b), Ok([1, 2]));
/// ```
pub fn encode_pod<T: Pod>(value: &T) -> &[u8] {
    bytemuck::bytes_of(value)
}

/// A plain-old-data value read from `bytes`, which must be exactly its size (any
/// alignment).
pub fn decode_pod<T: Pod>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() != std::mem::size_of::<T>() {
        return Err(CodecError::WrongSize {
            expected: std::mem::size_of::<T>(),
            got: bytes.len(),
        });
    }
    Ok(bytemuck::pod_read_unaligned(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Tick {
        sym: String,
        px: f64,
        qty: u32,
        tags: Vec<u8>,
    }

    #[test]
    fn encode_to_slice_matches_postcard_and_checks_bounds() {
        // Pieces of every length 0..=40 (a string's bytes), around the inline copies'
        // boundaries, next to varints of every width and an f64.
        for len in 0..=40usize {
            let s: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            for n in [0u64, 127, 128, 1 << 32, u64::MAX] {
                let v = (n, 1.5f64, s.as_str(), len as u32);
                let want = postcard::to_allocvec(&v).unwrap();
                let mut buf = vec![0xAAu8; want.len() + 3];
                let got = encode_to_slice(&v, &mut buf).unwrap();
                assert_eq!(&buf[..got], &want[..], "len {len}, n {n}");
                assert!(buf[got..].iter().all(|&b| b == 0xAA), "nothing written past the end");
                // Every slice too short for it is an error, never a write past its end.
                for short in 0..want.len() {
                    let mut small = vec![0u8; short + 1];
                    assert!(encode_to_slice(&v, &mut small[..short]).is_err(), "{short} bytes");
                    assert_eq!(small[short], 0, "no write past a short slice");
                }
            }
        }
        let mut small = [0u8; 4];
        slice::copy_small(&mut small, &[1, 2, 3, 4]);
        assert_eq!(small, [1, 2, 3, 4]);
    }

    #[derive(serde::Serialize)]
    enum Shape {
        Unit,
        Newtype(i32),
        Tuple(u8, i16),
        Struct { a: u64, b: Option<char> },
    }

    #[derive(serde::Serialize)]
    struct Unit;

    #[derive(serde::Serialize)]
    struct Wrap(u16);

    #[derive(serde::Serialize)]
    struct All {
        b: bool,
        i8: i8,
        i16: i16,
        i32: i32,
        i64: i64,
        i128: i128,
        u8: u8,
        u16: u16,
        u32: u32,
        u64: u64,
        u128: u128,
        f32: f32,
        f64: f64,
        c: char,
        s: String,
        #[serde(with = "serde_bytes_like")]
        bytes: Vec<u8>,
        none: Option<u32>,
        some: Option<u32>,
        unit: (),
        unit_struct: Unit,
        wrap: Wrap,
        shapes: Vec<Shape>,
        tuple: (u8, i64, String),
        map: std::collections::BTreeMap<u32, String>,
    }

    /// `Vec<u8>` through `serialize_bytes` (as `serde_bytes` does).
    mod serde_bytes_like {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    /// A `Display` serialized with `collect_str`.
    struct Shown(u32);

    impl serde::Serialize for Shown {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&format_args!("n={}", self.0))
        }
    }

    /// A sequence of unknown length: postcard refuses it, so must we.
    struct Unsized;

    impl serde::Serialize for Unsized {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut q = s.serialize_seq(None)?;
            q.serialize_element(&1u8)?;
            q.end()
        }
    }

    fn same_as_postcard<T: serde::Serialize>(v: &T) {
        let want = postcard::to_allocvec(v).unwrap();
        let mut buf = vec![0u8; want.len()];
        assert_eq!(encode_to_slice(v, &mut buf), Ok(want.len()));
        assert_eq!(buf, want);
        for short in 0..want.len() {
            let mut small = vec![0u8; short];
            assert!(
                encode_to_slice(v, &mut small).is_err(),
                "{short} of {} bytes",
                want.len()
            );
        }
    }

    #[test]
    fn encode_to_slice_writes_postcards_format_for_every_serde_form() {
        let ints: [i128; 9] = [0, 1, -1, 63, -64, 127, 128, -129, 1 << 40];
        for (k, &n) in ints.iter().enumerate() {
            let m = n.unsigned_abs();
            same_as_postcard(&All {
                b: k % 2 == 0,
                i8: n as i8,
                i16: n as i16,
                i32: n as i32,
                i64: n as i64,
                i128: n * -(k as i128 + 1),
                u8: m as u8,
                u16: m as u16,
                u32: m as u32,
                u64: m as u64,
                u128: m << (k * 8),
                f32: n as f32 * 0.5,
                f64: n as f64 * -0.25,
                c: ['a', 'é', '€', '😀'][k % 4],
                s: "x".repeat(k * 20),
                bytes: vec![k as u8; k * 17],
                none: None,
                some: Some(m as u32),
                unit: (),
                unit_struct: Unit,
                wrap: Wrap(m as u16),
                shapes: vec![
                    Shape::Unit,
                    Shape::Newtype(n as i32),
                    Shape::Tuple(k as u8, -(k as i16)),
                    Shape::Struct {
                        a: m as u64,
                        b: Some('q'),
                    },
                ],
                tuple: (1, n as i64, "t".into()),
                map: (0..k as u32).map(|i| (i * 300, i.to_string())).collect(),
            });
        }
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            same_as_postcard(&v);
        }
        for v in [i64::MIN, i64::MAX, i32::MIN as i64, -1] {
            same_as_postcard(&v);
        }
        same_as_postcard(&(u128::MAX, i128::MIN, i128::MAX));
        same_as_postcard(&Shown(1234));
        let mut buf = [0u8; 16];
        assert_eq!(
            encode_to_slice(&Unsized, &mut buf),
            Err(CodecError::Encode(postcard::Error::SerializeSeqLengthUnknown))
        );
    }

    #[test]
    fn round_trips_and_rejects_bad_input() {
        let t = Tick {
            sym: "AAPL".into(),
            px: 189.91,
            qty: 100,
            tags: vec![1, 2, 3],
        };
        let b = to_vec(&t).unwrap();
        assert!(b.len() < 24, "compact: {} bytes", b.len());
        assert_eq!(decode::<Tick>(&b).unwrap(), t);
        // Every truncation is an error, never a panic.
        for n in 0..b.len() {
            assert!(decode::<Tick>(&b[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(decode::<Tick>(&longer), Err(CodecError::TrailingBytes { extra: 1 }));
        // A length prefix far beyond the input: an error, without a huge allocation.
        assert!(decode::<Vec<u64>>(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        // Invalid UTF-8 in a string.
        assert!(decode::<String>(&[2, 0xc3, 0x28]).is_err());
        assert_eq!(
            decode_pod::<u64>(&[0; 7]),
            Err(CodecError::WrongSize { expected: 8, got: 7 })
        );
    }
}
