//! Type identity: the *shape* of a typed object's `T`, recorded in its segment at
//! creation and checked at every open and hand-off.
//!
//! A shape is described by [`postcard_schema`]'s [`Schema`] (derive it on your own types
//! with `#[derive(shmring::Schema)]`, see below): the serde data model of the type, with
//! the names of user-declared types, fields and variants, in declaration order. For the
//! `Pod` types of [`Value`](crate::Value), [`Array`](crate::Array),
//! [`Mutex`](crate::sync::Mutex) and [`Condition`](crate::sync::Condition) the shape
//! also holds the type's size and alignment, so a change of representation shows.
//!
//! Two programs built separately that declare the same type (same type name, same
//! fields of the same types in the same order) get the same [`Shape`] and open each
//! other's objects; the Rust path of the type (its crate and module) plays no part. Any
//! other shape is refused with [`Error::WrongType`], naming
//! both shapes and why they differ.
//!
//! ```
//! use shmring::Schema;
//! use shmring::shm::Shape;
//!
//! #[derive(Schema)]
//! #[postcard(crate = shmring::postcard_schema)] // needed when you depend only on shmring
//! struct Point {
//!     x: i32,
//!     y: i32,
//! }
//! assert_eq!(Shape::of::<Point>().rendering(), "Point { x: i32, y: i32 }");
//! assert_ne!(Shape::of::<u64>(), Shape::of::<i64>());
//! ```
//!
//! # Fingerprint
//!
//! The [`fingerprint`](Shape::fingerprint) is FNV-1a (64 bits) over a canonical byte
//! encoding of the schema defined here, not over `std::any::type_name` (which includes
//! crate paths), `TypeId` (which differs per build) or `Hash` (not stable across Rust
//! versions). The encoding, version 1, is: the bytes `shmring-shape-1`, then the type
//! encoded recursively as one tag byte (the `Tag` table of `shape/encode.rs`), then:
//!
//! - for a unit struct, newtype struct, tuple struct, struct or enum: its name (a `u32`
//!   little-endian byte length, then UTF-8 bytes);
//! - an `Option`, sequence or newtype: the inner type; a map: key, then value;
//! - a tuple or tuple struct: the element count (`u32` LE), then each element;
//! - a struct: the field count, then each field's name and type;
//! - an enum: the variant count, then each variant's name, its form (a tag byte: unit,
//!   newtype, tuple, struct) and its contents as above.
//!
//! A `Pod` shape appends the size and the alignment (`u64` LE each). The names of
//! built-in containers (`Vec<T>` or `[T]`, `HashMap` or `BTreeMap`) are not part of the
//! encoding: they travel the same on the wire. Changing any of this changes every
//! fingerprint; the unit tests pin a few values so that it cannot happen by accident.
//!
//! # In the segment
//!
//! A typed segment has the [`flags::TYPED`](crate::shm::flags::TYPED) bit and a
//! [`TYPE_RECORD_SIZE`]-byte record right after the header (its area starts after the
//! record): the fingerprint, what the error message needs to say why two shapes differ
//! (a few hashes of the top level), the size and alignment (0 for a wire shape), and the
//! rendering, at most [`RENDERING_MAX`] bytes of UTF-8. An opener reads it once, checks
//! the rendering's length against the record, and compares fingerprints.

use crate::error::{Error, Result};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::shm::{Segment, SegmentKind};
use encode::{encode, encode_variant, fnv, kind_name, part_name, put_len, put_str, tag_of};
use postcard_schema::Schema;
use postcard_schema::schema::{DataModelType, NamedType};
use render::{Render, bounded};
use std::fmt;

mod encode;
mod render;

/// Bytes of the type record after the header of a typed segment.
pub const TYPE_RECORD_SIZE: usize = 256;
/// The longest rendering a record holds (longer ones are cut, ending in `…`).
pub const RENDERING_MAX: usize = 192;
/// What starts the canonical encoding: its name and version.
const ENCODING: &[u8] = b"shmring-shape-1";

/// The top level of a shape, kept so that a mismatch can be explained without the
/// whole schema: the kind of type, its name, and its parts (fields, elements or
/// variants) as ordered names, ordered types and an order-free set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Top {
    tag: u32,
    parts: u32,
    name: u64,
    part_names: u64,
    part_types: u64,
    part_set: u64,
}

impl Top {
    fn of(nt: &NamedType) -> Top {
        let mut top = Top {
            tag: tag_of(nt.ty) as u32,
            ..Top::default()
        };
        let named = matches!(
            nt.ty,
            DataModelType::UnitStruct
                | DataModelType::NewtypeStruct(_)
                | DataModelType::TupleStruct(_)
                | DataModelType::Struct(_)
                | DataModelType::Enum(_)
        );
        if named {
            top.name = fnv(nt.name.as_bytes());
        }
        // (name, encoding of the part's type) for each part, in order.
        let mut parts: Vec<(&str, Vec<u8>)> = Vec::new();
        let enc = |t: &NamedType| {
            let mut v = Vec::new();
            encode(t, &mut v);
            v
        };
        match nt.ty {
            DataModelType::Option(t) | DataModelType::Seq(t) | DataModelType::NewtypeStruct(t) => {
                parts.push(("", enc(t)))
            }
            DataModelType::Tuple(ts) | DataModelType::TupleStruct(ts) => {
                parts.extend(ts.iter().map(|t| ("", enc(t))));
            }
            DataModelType::Map { key, val } => {
                parts.push(("", enc(key)));
                parts.push(("", enc(val)));
            }
            DataModelType::Struct(fields) => parts.extend(fields.iter().map(|f| (f.name, enc(f.ty)))),
            DataModelType::Enum(vs) => parts.extend(vs.iter().map(|v| {
                let mut e = Vec::new();
                encode_variant(v.ty, &mut e);
                (v.name, e)
            })),
            _ => {}
        }
        top.parts = parts.len() as u32;
        let mut names = Vec::new();
        let mut types = Vec::new();
        for (name, ty) in &parts {
            put_str(&mut names, name);
            put_len(&mut types, ty.len());
            types.extend_from_slice(ty);
            let mut one = Vec::new();
            put_str(&mut one, name);
            one.extend_from_slice(ty);
            // A sum is blind to order: the same parts in another order give the same set.
            top.part_set = top.part_set.wrapping_add(fnv(&one));
        }
        top.part_names = fnv(&names);
        top.part_types = fnv(&types);
        top
    }
}

/// The shape of a type: its fingerprint, a human-readable rendering, and (for `Pod`
/// types) its size and alignment. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    fingerprint: u64,
    /// Size and alignment of a `Pod` shape; `(0, 0)` for a wire shape.
    size: u32,
    align: u32,
    top: Top,
    rendering: String,
}

impl Shape {
    /// The wire shape of `T` (a queue's messages): its schema only.
    pub fn of<T: Schema + ?Sized>() -> Shape {
        let nt = T::SCHEMA;
        let mut enc = ENCODING.to_vec();
        encode(nt, &mut enc);
        let mut r = Render { out: String::new() };
        r.ty(nt);
        Shape {
            fingerprint: fnv(&enc),
            size: 0,
            align: 0,
            top: Top::of(nt),
            rendering: bounded(r.out),
        }
    }

    /// The shape of a `Pod` type `T` as it lies in shared memory: its schema, size and
    /// alignment.
    pub fn of_pod<T: Schema + bytemuck::Pod>() -> Shape {
        let mut s = Shape::of::<T>();
        let (size, align) = (std::mem::size_of::<T>() as u64, std::mem::align_of::<T>() as u64);
        let mut enc = ENCODING.to_vec();
        encode(T::SCHEMA, &mut enc);
        enc.extend_from_slice(&size.to_le_bytes());
        enc.extend_from_slice(&align.to_le_bytes());
        s.fingerprint = fnv(&enc);
        // A Pod type's size fits in u32 in practice; a larger one saturates (the
        // fingerprint holds the exact value).
        s.size = u32::try_from(size).unwrap_or(u32::MAX);
        s.align = u32::try_from(align).unwrap_or(u32::MAX);
        s
    }

    /// The 64-bit fingerprint (FNV-1a over the canonical encoding).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The rendering, like `Point { x: i32, y: i32 }`, at most [`RENDERING_MAX`] bytes.
    pub fn rendering(&self) -> &str {
        &self.rendering
    }

    /// The size and alignment of a `Pod` shape (`None` for a wire shape).
    pub fn layout(&self) -> Option<(usize, usize)> {
        (self.align != 0).then_some((self.size as usize, self.align as usize))
    }

    /// Why `self` (what an object was created for) and `opened` differ, or `None` if
    /// they are the same shape.
    pub fn mismatch(&self, opened: &Shape) -> Option<String> {
        if self.fingerprint == opened.fingerprint {
            return None;
        }
        let (a, b) = (&self.top, &opened.top);
        let part = part_name(a.tag);
        Some(if (self.align == 0) != (opened.align == 0) {
            "one is a shared-memory (Pod) shape, the other a wire shape".into()
        } else if a.tag != b.tag {
            let (ka, kb) = (kind_name(a.tag), kind_name(b.tag));
            if ka == kb {
                "different types".into()
            } else {
                format!("different kinds of type ({ka} and {kb})")
            }
        } else if a.name != b.name {
            "different type names".into()
        } else if a.parts != b.parts {
            format!("different numbers of {part}s ({} and {})", a.parts, b.parts)
        } else if a.part_set == b.part_set && (a.part_names != b.part_names || a.part_types != b.part_types) {
            format!("the same {part}s in a different order")
        } else if a.part_names != b.part_names {
            format!("different {part} names")
        } else if a.part_types != b.part_types {
            format!("different {part} types")
        } else if self.size != opened.size {
            format!("different sizes ({} and {} bytes)", self.size, opened.size)
        } else if self.align != opened.align {
            format!("different alignments ({} and {} bytes)", self.align, opened.align)
        } else {
            "different shapes".into()
        })
    }

    /// Write this shape into `r` (a creator, before READY).
    pub(crate) fn store(&self, r: &TypeRecord) {
        // Relaxed (all stores): published by the Release store of READY.
        r.fingerprint.store(self.fingerprint, Ordering::Relaxed);
        r.name.store(self.top.name, Ordering::Relaxed);
        r.part_names.store(self.top.part_names, Ordering::Relaxed);
        r.part_types.store(self.top.part_types, Ordering::Relaxed);
        r.part_set.store(self.top.part_set, Ordering::Relaxed);
        r.tag.store(self.top.tag, Ordering::Relaxed);
        r.parts.store(self.top.parts, Ordering::Relaxed);
        r.size.store(self.size, Ordering::Relaxed);
        r.align.store(self.align, Ordering::Relaxed);
        let bytes = self.rendering.as_bytes();
        debug_assert!(bytes.len() <= RENDERING_MAX);
        r.text_len.store(bytes.len() as u32, Ordering::Relaxed);
        let mut buf = [0u8; RENDERING_MAX];
        buf[..bytes.len()].copy_from_slice(bytes);
        for (w, chunk) in r.text.iter().zip(buf.chunks_exact(8)) {
            w.store(
                u64::from_le_bytes(chunk.try_into().expect("8 bytes")),
                Ordering::Relaxed,
            );
        }
    }

    /// Read the shape in `r` (an opener, after the Acquire load of READY), or a
    /// description of what is wrong with it. A peer may have written anything there:
    /// the rendering's length is checked against the record, its bytes decoded lossily.
    pub(crate) fn load(r: &TypeRecord) -> Result<Shape, String> {
        // Relaxed (all loads): ordered after the Acquire load of READY by the opener.
        let len = r.text_len.load(Ordering::Relaxed) as usize;
        if len > RENDERING_MAX {
            return Err(format!(
                "type record: rendering of {len} bytes, more than {RENDERING_MAX}"
            ));
        }
        let mut buf = [0u8; RENDERING_MAX];
        for (w, chunk) in r.text.iter().zip(buf.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        Ok(Shape {
            fingerprint: r.fingerprint.load(Ordering::Relaxed),
            size: r.size.load(Ordering::Relaxed),
            align: r.align.load(Ordering::Relaxed),
            top: Top {
                tag: r.tag.load(Ordering::Relaxed),
                parts: r.parts.load(Ordering::Relaxed),
                name: r.name.load(Ordering::Relaxed),
                part_names: r.part_names.load(Ordering::Relaxed),
                part_types: r.part_types.load(Ordering::Relaxed),
                part_set: r.part_set.load(Ordering::Relaxed),
            },
            rendering: String::from_utf8_lossy(&buf[..len]).into_owned(),
        })
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendering)?;
        if let Some((size, align)) = self.layout() {
            write!(f, " ({size} bytes, align {align})")?;
        }
        Ok(())
    }
}

impl Segment {
    /// Check that this segment's object was created for `expected` (nothing to check
    /// if `None`): [`Error::WrongType`] naming both shapes if not.
    pub(crate) fn check_shape(&self, expected: Option<&Shape>) -> Result<()> {
        let Some(expected) = expected else {
            return Ok(());
        };
        let kind = match SegmentKind::from_u32(self.info().kind) {
            Some(SegmentKind::MpmcQueue) => "queue",
            Some(k) => k.name(),
            None => "segment",
        };
        let wrong = |created: String, why: String| Error::WrongType {
            name: self.display_name().to_owned(),
            kind,
            created,
            opened: expected.to_string(),
            why,
        };
        match self.shape()? {
            None => Err(wrong(
                "no type".into(),
                "its creator recorded no type (an untyped segment, made by a raw constructor)".into(),
            )),
            Some(found) => match found.mismatch(expected) {
                None => Ok(()),
                Some(why) => Err(wrong(found.to_string(), why)),
            },
        }
    }
}

/// The `#[repr(C)]` type record of a typed segment, right after its header (see the
/// [module docs](self)). All atomics: a peer writing it is a wrong value, never a race.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct TypeRecord {
    fingerprint: AtomicU64,
    name: AtomicU64,
    part_names: AtomicU64,
    part_types: AtomicU64,
    part_set: AtomicU64,
    tag: AtomicU32,
    parts: AtomicU32,
    size: AtomicU32,
    align: AtomicU32,
    text_len: AtomicU32,
    reserved: AtomicU32,
    text: [AtomicU64; RENDERING_MAX / 8],
}

// Not under loom: loom's atomics are larger than the std ones (as for the header).
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<TypeRecord>() == TYPE_RECORD_SIZE);
const _: () = assert!(RENDERING_MAX % 8 == 0 && TYPE_RECORD_SIZE % 128 == 0);

#[cfg(test)]
mod tests;
