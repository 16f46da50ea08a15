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
    postcard::serialize_with_flavor(value, SliceOut { buf: out, pos: 0 }).map_err(CodecError::Encode)
}

/// postcard's output into a slice, as its own `Slice` flavor but without a call to
/// `memcpy` per piece: a postcard value is written in pieces of a few bytes (a varint
/// through a 10-byte buffer, an `f64`'s 8 bytes, a short string), and for each of them
/// a `memcpy` call of a run-time length costs more than the copy. Pieces of up to 16
/// bytes are copied inline ([`copy_small`]); every write is bounds-checked (safe code).
struct SliceOut<'a> {
    /// Where the encoding goes.
    buf: &'a mut [u8],
    /// Bytes written so far (`<= buf.len()`).
    pos: usize,
}

impl postcard::ser_flavors::Flavor for SliceOut<'_> {
    /// The length of the encoding.
    type Output = usize;

    #[inline(always)]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        let Some(b) = self.buf.get_mut(self.pos) else {
            return Err(postcard::Error::SerializeBufferFull);
        };
        *b = data;
        self.pos += 1;
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let end = self
            .pos
            .checked_add(data.len())
            .ok_or(postcard::Error::SerializeBufferFull)?;
        let Some(dst) = self.buf.get_mut(self.pos..end) else {
            return Err(postcard::Error::SerializeBufferFull);
        };
        copy_small(dst, data);
        self.pos = end;
        Ok(())
    }

    #[inline]
    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.pos)
    }
}

/// `dst.copy_from_slice(src)` (the two are the same length), inline for up to 16 bytes:
/// two overlapping copies of a fixed size (8 or 4 bytes), or up to three single bytes.
#[inline(always)]
fn copy_small(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n != dst.len() || n > 16 {
        dst.copy_from_slice(src);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..].copy_from_slice(&src[n - 4..]);
    } else if n > 0 {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
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
        copy_small(&mut small, &[1, 2, 3, 4]);
        assert_eq!(small, [1, 2, 3, 4]);
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
