//! The canonical byte encoding of a schema (see the [module docs](super)), what the
//! fingerprint hashes, and the kind names of its tags for messages.

use postcard_schema::schema::{DataModelType, DataModelVariant, NamedType};

/// The tag bytes of the canonical encoding. Never renumber: the values are part of
/// every fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(super) enum Tag {
    Bool = 1,
    I8 = 2,
    U8 = 3,
    I16 = 4,
    I32 = 5,
    I64 = 6,
    I128 = 7,
    U16 = 8,
    U32 = 9,
    U64 = 10,
    U128 = 11,
    Usize = 12,
    Isize = 13,
    F32 = 14,
    F64 = 15,
    Char = 16,
    String = 17,
    ByteArray = 18,
    Option = 19,
    Unit = 20,
    UnitStruct = 21,
    NewtypeStruct = 22,
    Seq = 23,
    Tuple = 24,
    TupleStruct = 25,
    Map = 26,
    Struct = 27,
    Enum = 28,
    Schema = 29,
    // Variant forms of an enum.
    UnitVariant = 40,
    NewtypeVariant = 41,
    TupleVariant = 42,
    StructVariant = 43,
}

pub(super) fn tag_of(ty: &DataModelType) -> Tag {
    match ty {
        DataModelType::Bool => Tag::Bool,
        DataModelType::I8 => Tag::I8,
        DataModelType::U8 => Tag::U8,
        DataModelType::I16 => Tag::I16,
        DataModelType::I32 => Tag::I32,
        DataModelType::I64 => Tag::I64,
        DataModelType::I128 => Tag::I128,
        DataModelType::U16 => Tag::U16,
        DataModelType::U32 => Tag::U32,
        DataModelType::U64 => Tag::U64,
        DataModelType::U128 => Tag::U128,
        DataModelType::Usize => Tag::Usize,
        DataModelType::Isize => Tag::Isize,
        DataModelType::F32 => Tag::F32,
        DataModelType::F64 => Tag::F64,
        DataModelType::Char => Tag::Char,
        DataModelType::String => Tag::String,
        DataModelType::ByteArray => Tag::ByteArray,
        DataModelType::Option(_) => Tag::Option,
        DataModelType::Unit => Tag::Unit,
        DataModelType::UnitStruct => Tag::UnitStruct,
        DataModelType::NewtypeStruct(_) => Tag::NewtypeStruct,
        DataModelType::Seq(_) => Tag::Seq,
        DataModelType::Tuple(_) => Tag::Tuple,
        DataModelType::TupleStruct(_) => Tag::TupleStruct,
        DataModelType::Map { .. } => Tag::Map,
        DataModelType::Struct(_) => Tag::Struct,
        DataModelType::Enum(_) => Tag::Enum,
        DataModelType::Schema => Tag::Schema,
    }
}

/// What kind of type a tag is, for messages.
pub(super) fn kind_name(tag: u32) -> &'static str {
    const INTS: [u32; 12] = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
    match tag {
        1 => "a bool",
        t if INTS.contains(&t) => "an integer",
        14 | 15 => "a float",
        16 => "a char",
        17 => "a string",
        18 => "a byte array",
        19 => "an option",
        20 => "a unit",
        21 => "a unit struct",
        22 => "a newtype struct",
        23 => "a sequence",
        24 => "a tuple",
        25 => "a tuple struct",
        26 => "a map",
        27 => "a struct",
        28 => "an enum",
        29 => "a schema",
        _ => "an unknown kind of type",
    }
}

/// What the parts of a type of kind `tag` are called, for messages.
pub(super) fn part_name(tag: u32) -> &'static str {
    match tag {
        27 => "field",
        28 => "variant",
        _ => "element",
    }
}

/// FNV-1a, 64 bits (postcard-schema's own, stable by definition).
pub(super) fn fnv(bytes: &[u8]) -> u64 {
    let mut h = postcard_schema::key::hash::Fnv1a64Hasher::new();
    h.update(bytes);
    h.digest()
}

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

/// Append the canonical encoding of `nt` (see the module docs) to `out`.
pub(super) fn encode(nt: &NamedType, out: &mut Vec<u8>) {
    let ty = nt.ty;
    out.push(tag_of(ty) as u8);
    match ty {
        DataModelType::Option(t) | DataModelType::Seq(t) => encode(t, out),
        DataModelType::NewtypeStruct(t) => {
            put_str(out, nt.name);
            encode(t, out);
        }
        DataModelType::UnitStruct => put_str(out, nt.name),
        DataModelType::Tuple(ts) => encode_all(ts, out),
        DataModelType::TupleStruct(ts) => {
            put_str(out, nt.name);
            encode_all(ts, out);
        }
        DataModelType::Map { key, val } => {
            encode(key, out);
            encode(val, out);
        }
        DataModelType::Struct(fields) => {
            put_str(out, nt.name);
            put_len(out, fields.len());
            for f in fields.iter() {
                put_str(out, f.name);
                encode(f.ty, out);
            }
        }
        DataModelType::Enum(vs) => {
            put_str(out, nt.name);
            put_len(out, vs.len());
            for v in vs.iter() {
                put_str(out, v.name);
                encode_variant(v.ty, out);
            }
        }
        _ => {}
    }
}

/// A variant's form (a tag byte) and contents.
pub(super) fn encode_variant(v: &DataModelVariant, out: &mut Vec<u8>) {
    match v {
        DataModelVariant::UnitVariant => out.push(Tag::UnitVariant as u8),
        DataModelVariant::NewtypeVariant(t) => {
            out.push(Tag::NewtypeVariant as u8);
            encode(t, out);
        }
        DataModelVariant::TupleVariant(ts) => {
            out.push(Tag::TupleVariant as u8);
            encode_all(ts, out);
        }
        DataModelVariant::StructVariant(fields) => {
            out.push(Tag::StructVariant as u8);
            put_len(out, fields.len());
            for f in fields.iter() {
                put_str(out, f.name);
                encode(f.ty, out);
            }
        }
    }
}

pub(super) fn encode_all(ts: &[&NamedType], out: &mut Vec<u8>) {
    put_len(out, ts.len());
    for t in ts {
        encode(t, out);
    }
}
