#![allow(dead_code)] // the types exist for their shapes

use super::*;
use bytemuck::{Pod, Zeroable};

mod a {
    #[derive(postcard_schema::Schema, bytemuck::Pod, bytemuck::Zeroable, Clone, Copy)]
    #[repr(C)]
    pub struct Point {
        pub x: i32,
        pub y: i32,
    }
}

mod b {
    // The same declaration in another module: another Rust path, the same shape.
    #[derive(postcard_schema::Schema, bytemuck::Pod, bytemuck::Zeroable, Clone, Copy)]
    #[repr(C)]
    pub struct Point {
        pub x: i32,
        pub y: i32,
    }
}

mod float {
    #[derive(postcard_schema::Schema, bytemuck::Pod, bytemuck::Zeroable, Clone, Copy)]
    #[repr(C)]
    pub struct Point {
        pub x: f32,
        pub y: f32,
    }
}

mod swapped {
    #[derive(postcard_schema::Schema, bytemuck::Pod, bytemuck::Zeroable, Clone, Copy)]
    #[repr(C)]
    pub struct Point {
        pub y: i32,
        pub x: i32,
    }
}

mod renamed {
    #[derive(postcard_schema::Schema)]
    pub struct Point {
        pub x: i32,
        pub z: i32,
    }
}

mod wider {
    #[derive(postcard_schema::Schema)]
    pub struct Point {
        pub x: i32,
        pub y: i32,
        pub z: i32,
    }
}

#[derive(postcard_schema::Schema)]
struct Pt {
    x: i32,
    y: i32,
}

#[derive(postcard_schema::Schema)]
#[allow(dead_code)]
enum Side {
    Buy,
    Sell(u8),
    Limit { px: u64 },
}

#[derive(postcard_schema::Schema)]
struct Id(u64);

#[derive(postcard_schema::Schema)]
struct Pair(u8, u16);

#[derive(postcard_schema::Schema, Clone, Copy, Pod, Zeroable)]
#[repr(C, align(8))]
struct Aligned {
    x: i32,
    y: i32,
}

mod plain {
    #[derive(postcard_schema::Schema, bytemuck::Pod, bytemuck::Zeroable, Clone, Copy)]
    #[repr(C)]
    pub struct Aligned {
        x: i32,
        y: i32,
    }
}

type Rows = Vec<Option<(u64, i64, f64)>>;

#[derive(postcard_schema::Schema)]
#[allow(dead_code)]
struct Long {
    a_field_with_a_long_name: std::collections::HashMap<String, Rows>,
    another_field_with_a_long_name: std::collections::BTreeMap<String, Rows>,
    yet_another_field_with_a_long_name: [u8; 32],
}

fn why(created: &Shape, opened: &Shape) -> String {
    created.mismatch(opened).expect("different shapes")
}

#[test]
fn renderings_read_like_rust() {
    assert_eq!(Shape::of::<u64>().rendering(), "u64");
    assert_eq!(Shape::of::<String>().rendering(), "String");
    assert_eq!(Shape::of::<(u8, u8)>().rendering(), "(u8, u8)");
    assert_eq!(Shape::of::<(u8,)>().rendering(), "(u8,)");
    assert_eq!(Shape::of::<a::Point>().rendering(), "Point { x: i32, y: i32 }");
    assert_eq!(Shape::of::<Vec<u32>>().rendering(), "Vec<u32>");
    assert_eq!(Shape::of::<Option<u8>>().rendering(), "Option<u8>");
    assert_eq!(Shape::of::<[u8; 4]>().rendering(), "[u8; 4]");
    assert_eq!(
        Shape::of::<Side>().rendering(),
        "enum Side { Buy, Sell(u8), Limit { px: u64 } }"
    );
    assert_eq!(Shape::of::<Id>().rendering(), "Id(u64)");
    assert_eq!(Shape::of::<Pair>().rendering(), "Pair(u8, u16)");
    assert_eq!(
        Shape::of::<std::collections::HashMap<String, u8>>().rendering(),
        "HashMap<String, u8>"
    );
    assert_eq!(
        Shape::of_pod::<a::Point>().to_string(),
        "Point { x: i32, y: i32 } (8 bytes, align 4)"
    );
}

#[test]
fn a_long_rendering_is_cut() {
    let s = Shape::of::<Long>();
    assert!(s.rendering().len() <= RENDERING_MAX, "{}", s.rendering().len());
    assert!(
        s.rendering()
            .starts_with("Long { a_field_with_a_long_name: HashMap<String, Vec<Option<(u64, i64, f64)>>>")
    );
    assert!(s.rendering().ends_with('…'));
    // A huge array renders in a few bytes.
    assert_eq!(Shape::of::<[u16; 4096]>().rendering(), "[u16; 4096]");
}

#[test]
fn same_declaration_elsewhere_is_the_same_shape() {
    assert_eq!(Shape::of::<a::Point>(), Shape::of::<b::Point>());
    assert_eq!(Shape::of_pod::<a::Point>(), Shape::of_pod::<b::Point>());
    // Built-in containers that travel the same are the same shape.
    assert_eq!(Shape::of::<Vec<u8>>().fingerprint(), Shape::of::<[u8]>().fingerprint());
    assert_eq!(Shape::of::<a::Point>().mismatch(&Shape::of::<b::Point>()), None);
}

#[test]
fn every_other_shape_is_told_apart_with_a_reason() {
    let s = Shape::of::<u64>;
    assert_eq!(why(&s(), &Shape::of::<i64>()), "different types");
    assert_eq!(
        why(&s(), &Shape::of::<String>()),
        "different kinds of type (an integer and a string)"
    );
    assert_eq!(
        why(&s(), &Shape::of::<(u8, u8)>()),
        "different kinds of type (an integer and a tuple)"
    );
    let p = Shape::of::<a::Point>;
    assert_eq!(why(&p(), &Shape::of::<float::Point>()), "different field types");
    assert_eq!(
        why(&p(), &Shape::of::<swapped::Point>()),
        "the same fields in a different order"
    );
    assert_eq!(why(&p(), &Shape::of::<renamed::Point>()), "different field names");
    assert_eq!(
        why(&p(), &Shape::of::<wider::Point>()),
        "different numbers of fields (2 and 3)"
    );
    assert_eq!(why(&p(), &Shape::of::<Pt>()), "different type names");
    assert_eq!(
        why(&Shape::of::<(u8, u16)>(), &Shape::of::<(u16, u8)>()),
        "the same elements in a different order"
    );
    assert_eq!(
        why(&Shape::of::<Vec<u8>>(), &Shape::of::<Vec<u16>>()),
        "different element types"
    );

    let q = Shape::of_pod::<a::Point>;
    assert_eq!(why(&q(), &Shape::of_pod::<float::Point>()), "different field types");
    assert_eq!(
        why(&q(), &Shape::of_pod::<u64>()),
        "different kinds of type (a struct and an integer)"
    );
    assert_eq!(
        why(&q(), &Shape::of_pod::<u32>()),
        "different kinds of type (a struct and an integer)"
    );
    assert_eq!(why(&q(), &Shape::of_pod::<Aligned>()), "different type names");
    assert_eq!(
        why(&Shape::of_pod::<Aligned>(), &Shape::of_pod::<plain::Aligned>()),
        "different alignments (8 and 4 bytes)"
    );
    // A repr change alone shows in a Pod shape, not in the wire shape.
    assert_ne!(Shape::of_pod::<[u8; 8]>(), Shape::of_pod::<u64>());
    assert_eq!(Shape::of::<Aligned>().fingerprint(), {
        #[derive(postcard_schema::Schema)]
        #[allow(dead_code)]
        struct Aligned {
            x: i32,
            y: i32,
        }
        Shape::of::<Aligned>().fingerprint()
    });
}

/// The encoding is part of the format: these values must never change by accident
/// (a deliberate change bumps the encoding's version and these values). They were
/// computed apart from this code, from the encoding as the module docs describe it
/// (e.g. `u64`: FNV-1a 64 of `b"shmring-shape-1"` then the tag byte 10).
#[test]
fn fingerprints_are_pinned() {
    let pinned = [
        ("u64", Shape::of::<u64>().fingerprint(), 0x50e4_1e52_0d3d_9dc1),
        ("String", Shape::of::<String>().fingerprint(), 0x50e4_0352_0d3d_6fe0),
        ("(u8, u8)", Shape::of::<(u8, u8)>().fingerprint(), 0x4d86_d922_2da6_e797),
        ("Point", Shape::of::<a::Point>().fingerprint(), 0xab40_dba2_f884_5b68),
        ("Side", Shape::of::<Side>().fingerprint(), 0xe617_85d9_8e8b_cbd4),
        ("pod u64", Shape::of_pod::<u64>().fingerprint(), 0xba26_9696_a872_9701),
        (
            "pod Point",
            Shape::of_pod::<a::Point>().fingerprint(),
            0x14f0_a075_4cc9_5be4,
        ),
    ];
    for (what, got, want) in pinned {
        assert_eq!(got, want, "fingerprint of {what}: {got:#018x}");
    }
}

fn zeroed_record() -> Box<TypeRecord> {
    // SAFETY: TypeRecord is all atomics, for which all-zero bytes are valid.
    unsafe { Box::new(std::mem::zeroed()) }
}

#[test]
fn a_record_round_trips_and_a_bad_one_is_refused() {
    let r = zeroed_record();
    for s in [Shape::of::<Long>(), Shape::of_pod::<a::Point>(), Shape::of::<Side>()] {
        s.store(&r);
        assert_eq!(Shape::load(&r).unwrap(), s);
    }
    // Relaxed: a single thread.
    r.text_len.store(RENDERING_MAX as u32 + 1, Ordering::Relaxed);
    assert!(Shape::load(&r).unwrap_err().contains("rendering of 193 bytes"));
    // Bytes that are not UTF-8 are shown, not trusted.
    r.text_len.store(2, Ordering::Relaxed);
    r.text[0].store(0xffff, Ordering::Relaxed);
    assert_eq!(Shape::load(&r).unwrap().rendering(), "\u{fffd}\u{fffd}");
}
