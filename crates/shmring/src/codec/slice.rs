//! A serde serializer that writes postcard's wire format straight into a byte slice:
//! the encoder of [`encode_to_slice`](super::encode_to_slice), which a typed send runs
//! once per message into the ring's claimed space.
//!
//! postcard's own serializer writes through a *flavor* one piece at a time: a varint is
//! built in a 10-byte buffer and then copied (a `memcpy` call of a run-time length), an
//! `f64` is copied, a string's bytes are copied, each copy behind its own bounds check
//! and error mapping. For a small message those pieces cost more than the bytes: about
//! 170 instructions for a four-field tick. Here a varint is written in place behind one
//! bounds check (when at least 10 bytes are left, else byte by byte), small copies are
//! inline, and nothing is buffered.
//!
//! The format is postcard's, byte for byte (its wire-format specification, version 1):
//! `u8`/`i8`/`bool` as one byte; the other integers as LEB128 varints (signed ones
//! zigzag-encoded first); `f32`/`f64` as their little-endian bits; `char` and `str` as a
//! varint length and the UTF-8 bytes; bytes likewise; `Option` as a 0/1 byte before the
//! value; enum variants as a varint of their index; sequences and maps as a varint of
//! their length, which must be known ([`postcard::Error::SerializeSeqLengthUnknown`]
//! otherwise); structs, tuples and units as their fields in order, nothing else. The
//! tests hold it against postcard's own output. Decoding stays postcard's.

use postcard::Error;
use serde::ser::{self, Serialize};

type Result<T = ()> = std::result::Result<T, Error>;

/// The serializer: the output slice and how much of it is written.
pub(super) struct SliceSer<'a> {
    /// Where the encoding goes.
    buf: &'a mut [u8],
    /// Bytes written so far (`<= buf.len()`).
    pos: usize,
}

impl<'a> SliceSer<'a> {
    /// A serializer writing at the start of `buf`.
    #[inline]
    pub(super) fn new(buf: &'a mut [u8]) -> Self {
        SliceSer { buf, pos: 0 }
    }

    /// Bytes written.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.pos
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) -> Result {
        let Some(d) = self.buf.get_mut(self.pos) else {
            return Err(Error::SerializeBufferFull);
        };
        *d = b;
        self.pos += 1;
        Ok(())
    }

    #[inline(always)]
    fn bytes(&mut self, src: &[u8]) -> Result {
        let end = self.pos.checked_add(src.len()).ok_or(Error::SerializeBufferFull)?;
        let Some(dst) = self.buf.get_mut(self.pos..end) else {
            return Err(Error::SerializeBufferFull);
        };
        copy_small(dst, src);
        self.pos = end;
        Ok(())
    }

    /// A LEB128 varint (7 bits a byte, low first, the high bit set on all but the last).
    #[inline(always)]
    fn varint(&mut self, mut v: u64) -> Result {
        if let Some(out) = self.buf.get_mut(self.pos..).and_then(|r| r.get_mut(..10)) {
            // Room for the longest (10 bytes): one bounds check for all of them.
            for (i, d) in out.iter_mut().enumerate() {
                if v < 0x80 {
                    *d = v as u8;
                    self.pos += i + 1;
                    return Ok(());
                }
                *d = (v as u8) | 0x80;
                v >>= 7;
            }
            // A u64 needs at most 10 bytes: the loop returned.
            return Err(Error::SerializeBufferFull);
        }
        // Near the end of the slice: byte by byte, each checked. (Computing the length
        // first and checking once measured slower: the loop over a run-time length
        // compiles worse than these.)
        while v >= 0x80 {
            self.byte((v as u8) | 0x80)?;
            v >>= 7;
        }
        self.byte(v as u8)
    }

    /// A LEB128 varint of a `u128` (up to 19 bytes).
    fn varint128(&mut self, mut v: u128) -> Result {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80)?;
            v >>= 7;
        }
        self.byte(v as u8)
    }

    #[inline(always)]
    fn len_prefix(&mut self, len: usize) -> Result {
        self.varint(len as u64)
    }
}

/// `dst.copy_from_slice(src)` (the two are the same length), inline for up to 16 bytes:
/// two overlapping copies of a fixed size (8 or 4 bytes), or up to three single bytes.
#[inline(always)]
pub(super) fn copy_small(dst: &mut [u8], src: &[u8]) {
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

/// Zigzag: small magnitudes of either sign to small unsigned values.
#[inline(always)]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

impl ser::Serializer for &mut SliceSer<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    #[inline]
    fn is_human_readable(&self) -> bool {
        false
    }
    #[inline]
    fn serialize_bool(self, v: bool) -> Result {
        self.byte(v as u8)
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result {
        self.byte(v as u8)
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result {
        self.varint(zigzag(v as i64))
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result {
        self.varint(zigzag(v as i64))
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result {
        self.varint(zigzag(v))
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result {
        self.varint128(((v << 1) ^ (v >> 127)) as u128)
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result {
        self.byte(v)
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result {
        self.varint(v as u64)
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result {
        self.varint(v as u64)
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result {
        self.varint(v)
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result {
        self.varint128(v)
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result {
        self.bytes(&v.to_bits().to_le_bytes())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result {
        self.bytes(&v.to_bits().to_le_bytes())
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result {
        let mut buf = [0u8; 4];
        self.serialize_str(v.encode_utf8(&mut buf))
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result {
        self.len_prefix(v.len())?;
        self.bytes(v.as_bytes())
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result {
        self.len_prefix(v.len())?;
        self.bytes(v)
    }
    #[inline]
    fn serialize_none(self) -> Result {
        self.byte(0)
    }
    #[inline]
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result {
        self.byte(1)?;
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result {
        Ok(())
    }
    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        Ok(())
    }
    #[inline]
    fn serialize_unit_variant(self, _name: &'static str, index: u32, _variant: &'static str) -> Result {
        self.varint(index as u64)
    }
    #[inline]
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _name: &'static str, value: &T) -> Result {
        value.serialize(self)
    }
    #[inline]
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result {
        self.varint(index as u64)?;
        value.serialize(self)
    }
    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self> {
        self.len_prefix(len.ok_or(Error::SerializeSeqLengthUnknown)?)?;
        Ok(self)
    }
    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self> {
        Ok(self)
    }
    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self> {
        self.varint(index as u64)?;
        Ok(self)
    }
    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self> {
        self.len_prefix(len.ok_or(Error::SerializeSeqLengthUnknown)?)?;
        Ok(self)
    }
    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self> {
        self.varint(index as u64)?;
        Ok(self)
    }
    fn collect_str<T: ?Sized + std::fmt::Display>(self, value: &T) -> Result {
        // As postcard: the formatted length, then the bytes (formatted once here, into
        // a string, where postcard formats twice).
        self.serialize_str(&value.to_string())
    }
}

/// The compound forms: elements, fields, keys and values one after the other.
macro_rules! compound {
    ($($tr:ident { $($f:ident($($arg:ident: $ty:ty),*);)* })*) => {$(
        impl ser::$tr for &mut SliceSer<'_> {
            type Ok = ();
            type Error = Error;
            $(
                #[inline]
                fn $f<T: ?Sized + Serialize>(&mut self, $($arg: $ty,)* value: &T) -> Result {
                    $(let _ = $arg;)*
                    value.serialize(&mut **self)
                }
            )*
            #[inline]
            fn end(self) -> Result {
                Ok(())
            }
        }
    )*};
}

compound! {
    SerializeSeq { serialize_element(); }
    SerializeTuple { serialize_element(); }
    SerializeTupleStruct { serialize_field(); }
    SerializeTupleVariant { serialize_field(); }
    SerializeMap { serialize_key(); serialize_value(); }
    SerializeStruct { serialize_field(key: &'static str); }
    SerializeStructVariant { serialize_field(key: &'static str); }
}
