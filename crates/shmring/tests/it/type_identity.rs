//! Type identity between two separately built programs: this test binary and the
//! `type_identity` example, each with its own declarations of the same types (the
//! example's `Point`s live in another crate, so their Rust paths differ). The same shape
//! opens the other program's Queue, Value, Array and Mutex, in both directions; every
//! other shape is refused with an error naming both shapes and why; so is a hand-off.

use crate::common::*;
use crate::examples::example;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shmring::handoff::Inherit;
use shmring::sync::Mutex;
use shmring::{Array, Error, Queue, Schema, Value};
use std::fmt::Debug;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

// The test's own declarations (the example has its own, identical or not).
mod int {
    #[derive(
        Debug,
        Clone,
        Copy,
        PartialEq,
        serde::Serialize,
        serde::Deserialize,
        bytemuck::Pod,
        bytemuck::Zeroable,
        shmring::Schema,
    )]
    #[postcard(crate = shmring::postcard_schema)]
    #[repr(C)]
    pub struct Point {
        pub x: i32,
        pub y: i32,
    }
}

mod float {
    #[derive(
        Debug,
        Clone,
        Copy,
        PartialEq,
        serde::Serialize,
        serde::Deserialize,
        bytemuck::Pod,
        bytemuck::Zeroable,
        shmring::Schema,
    )]
    #[postcard(crate = shmring::postcard_schema)]
    #[repr(C)]
    pub struct Point {
        pub x: f32,
        pub y: f32,
    }
}

mod swapped {
    #[derive(
        Debug,
        Clone,
        Copy,
        PartialEq,
        serde::Serialize,
        serde::Deserialize,
        bytemuck::Pod,
        bytemuck::Zeroable,
        shmring::Schema,
    )]
    #[postcard(crate = shmring::postcard_schema)]
    #[repr(C)]
    pub struct Point {
        pub y: i32,
        pub x: i32,
    }
}

const LIMIT: Duration = Duration::from_secs(20);

/// The renderings of the types (as in the errors), by the example's type names.
fn rendering(ty: &str, pod: bool) -> &'static str {
    match (ty, pod) {
        ("u64", false) => "u64",
        ("u64", true) => "u64 (8 bytes, align 8)",
        ("i64", false) => "i64",
        ("i64", true) => "i64 (8 bytes, align 8)",
        ("bytes", false) => "[u8; 8]",
        ("bytes", true) => "[u8; 8] (8 bytes, align 1)",
        ("string", _) => "String",
        ("pair", _) => "(u8, u8)",
        ("point", false) => "Point { x: i32, y: i32 }",
        ("point", true) => "Point { x: i32, y: i32 } (8 bytes, align 4)",
        ("pointf", false) => "Point { x: f32, y: f32 }",
        ("pointf", true) => "Point { x: f32, y: f32 } (8 bytes, align 4)",
        ("swapped", false) => "Point { y: i32, x: i32 }",
        ("swapped", true) => "Point { y: i32, x: i32 } (8 bytes, align 4)",
        _ => panic!("no rendering for {ty}"),
    }
}

/// Run the example to completion; its one line of output.
fn run(args: &[&str]) -> String {
    let out = Command::new(example("type_identity"))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run type_identity");
    assert!(out.status.success(), "type_identity {args:?}: {}", out.status);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The example holding an object it created, until dropped (stdin closed).
struct Creator(Child);

impl Creator {
    fn start(object: &str, ty: &str, name: &str) -> Creator {
        let mut child = Command::new(example("type_identity"))
            .args(["create", object, ty, name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn type_identity create");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(line.trim(), "ready", "type_identity create {object} {ty}");
        Creator(child)
    }
}

impl Drop for Creator {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let st = wait_child(&mut self.0, LIMIT);
        if !std::thread::panicking() {
            assert!(st.success(), "type_identity create: {st}");
        }
    }
}

/// A handle that keeps an object this program created.
type Made = Box<dyn std::any::Any>;

fn make_queue<T: Serialize + DeserializeOwned + Schema + 'static>(name: &str, sample: T) -> Made {
    let mut q = Queue::<T>::create(name, 4).unwrap();
    q.put(&sample).unwrap();
    Box::new(q)
}

fn make_pod<T: bytemuck::Pod + Schema + Send + 'static>(object: &str, name: &str, sample: T) -> Made {
    match object {
        "value" => Box::new(Value::create(name, sample).unwrap()),
        "array" => Box::new(Array::create(name, &[sample, sample]).unwrap()),
        "mutex" => Box::new(Mutex::create(name, sample).unwrap()),
        o => panic!("no {o}"),
    }
}

/// This program's object of type `ty` named `name`, created holding the type's sample.
fn make(object: &str, ty: &str, name: &str) -> Made {
    let point = int::Point { x: 7, y: -8 };
    let pointf = float::Point { x: 7.5, y: -8.5 };
    let swapped = swapped::Point { y: -8, x: 7 };
    match (object, ty) {
        ("queue", "u64") => make_queue(name, 7u64),
        ("queue", "i64") => make_queue(name, -7i64),
        ("queue", "bytes") => make_queue(name, [7u8; 8]),
        ("queue", "string") => make_queue(name, "seven".to_string()),
        ("queue", "pair") => make_queue(name, (7u8, 8u8)),
        ("queue", "point") => make_queue(name, point),
        ("queue", "pointf") => make_queue(name, pointf),
        ("queue", "swapped") => make_queue(name, swapped),
        (o, "u64") => make_pod(o, name, 7u64),
        (o, "i64") => make_pod(o, name, -7i64),
        (o, "bytes") => make_pod(o, name, [7u8; 8]),
        (o, "point") => make_pod(o, name, point),
        (o, "pointf") => make_pod(o, name, pointf),
        (o, "swapped") => make_pod(o, name, swapped),
        _ => panic!("no {object} of {ty}"),
    }
}

/// Open the other program's object as this program's `T`: `Ok(debug of its value)`.
fn open_queue<T: Serialize + DeserializeOwned + Schema + Debug>(name: &str) -> Result<String, Error> {
    let mut q = Queue::<T>::open(name)?;
    Ok(format!("{:?}", q.get_timeout(LIMIT).expect("get")))
}

fn open_pod<T: bytemuck::Pod + Schema + Send + Debug>(object: &str, name: &str) -> Result<String, Error> {
    Ok(match object {
        "value" => format!("{:?}", Value::<T>::open(name)?.load()),
        "array" => format!("{:?}", Array::<T>::open(name)?.get(1).expect("get")),
        "mutex" => format!("{:?}", Mutex::<T>::open(name)?.get()),
        o => panic!("no {o}"),
    })
}

fn open(object: &str, ty: &str, name: &str) -> Result<String, Error> {
    match (object, ty) {
        ("queue", "u64") => open_queue::<u64>(name),
        ("queue", "i64") => open_queue::<i64>(name),
        ("queue", "bytes") => open_queue::<[u8; 8]>(name),
        ("queue", "string") => open_queue::<String>(name),
        ("queue", "pair") => open_queue::<(u8, u8)>(name),
        ("queue", "point") => open_queue::<int::Point>(name),
        ("queue", "pointf") => open_queue::<float::Point>(name),
        ("queue", "swapped") => open_queue::<swapped::Point>(name),
        (o, "u64") => open_pod::<u64>(o, name),
        (o, "i64") => open_pod::<i64>(o, name),
        (o, "bytes") => open_pod::<[u8; 8]>(o, name),
        (o, "point") => open_pod::<int::Point>(o, name),
        (o, "pointf") => open_pod::<float::Point>(o, name),
        (o, "swapped") => open_pod::<swapped::Point>(o, name),
        _ => panic!("no {object} of {ty}"),
    }
}

/// What the sample of `ty` prints as.
fn sample(ty: &str) -> &'static str {
    match ty {
        "u64" => "7",
        "string" => "\"seven\"",
        "point" => "Point { x: 7, y: -8 }",
        _ => panic!("no sample for {ty}"),
    }
}

const OBJECTS: [&str; 4] = ["queue", "value", "array", "mutex"];

#[test]
fn the_same_shape_opens_the_other_programs_objects_both_ways() {
    let _w = Watchdog::new("type identity, same shapes", Duration::from_secs(120));
    for object in OBJECTS {
        let types: &[&str] = if object == "queue" {
            &["u64", "string", "point"]
        } else {
            &["u64", "point"]
        };
        for &ty in types {
            // Created here, opened there.
            let name = unique_name("ti-same");
            let _mine = make(object, ty, &name);
            let got = run(&["open", object, ty, &name]);
            assert_eq!(got, format!("ok {}", sample(ty)), "{object} of {ty} created here");
            // Created there, opened here.
            let name = unique_name("ti-same");
            let _theirs = Creator::start(object, ty, &name);
            let got = open(object, ty, &name).unwrap_or_else(|e| panic!("{object} of {ty} created there: {e}"));
            assert_eq!(got, sample(ty), "{object} of {ty} created there");
        }
    }
}

/// The pairs of different shapes, by object: (created for, opened as, why).
fn different(object: &str) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut pairs = vec![
        ("u64", "i64", "different types"),
        ("point", "pointf", "different field types"),
        ("point", "swapped", "the same fields in a different order"),
        ("u64", "point", "different kinds of type (an integer and a struct)"),
    ];
    if object == "queue" {
        pairs.push(("u64", "string", "different kinds of type (an integer and a string)"));
        pairs.push(("u64", "pair", "different kinds of type (an integer and a tuple)"));
    } else {
        pairs.push(("u64", "bytes", "different kinds of type (an integer and a tuple)"));
    }
    pairs
}

#[test]
fn every_other_shape_is_refused_naming_both_both_ways() {
    let _w = Watchdog::new("type identity, different shapes", Duration::from_secs(120));
    for object in OBJECTS {
        let pod = object != "queue";
        for (created, opened, why) in different(object) {
            let (c, o) = (rendering(created, pod), rendering(opened, pod));
            let what = if pod { object } else { "queue" };
            // Created here, opened there.
            let name = unique_name("ti-diff");
            let _mine = make(object, created, &name);
            let got = run(&["open", object, opened, &name]);
            assert_eq!(
                got,
                format!("refused: {what} {name:?} was created for `{c}`, opened as `{o}`: {why}"),
                "{object}: {created} opened as {opened}"
            );
            // Created there, opened here.
            let name = unique_name("ti-diff");
            let _theirs = Creator::start(object, created, &name);
            match open(object, opened, &name) {
                Err(Error::WrongType {
                    created: fc,
                    opened: fo,
                    why: fw,
                    ..
                }) => assert_eq!((fc.as_str(), fo.as_str(), fw.as_str()), (c, o, why)),
                r => panic!("{object} of {created} opened here as {opened}: {r:?}"),
            }
        }
    }
}

#[test]
fn a_handoff_of_another_shape_is_refused() {
    let _w = Watchdog::new("type identity, hand-off", Duration::from_secs(60));
    let spawn = |inherit: Inherit, object: &str, ty: &str| -> String {
        let mut cmd = Command::new(example("type_identity"));
        cmd.args(["inherit", object, ty]).stdout(Stdio::piped());
        let child = inherit.spawn(&mut cmd).expect("spawn");
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "type_identity inherit {object} {ty}: {}",
            out.status
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let queue = || {
        let mut q = Queue::<u64>::new(4).unwrap();
        q.put(&7).unwrap();
        q
    };

    let mut inherit = Inherit::new();
    inherit.pass("obj", queue()).unwrap();
    assert_eq!(spawn(inherit, "queue", "u64"), "ok 7");
    let mut inherit = Inherit::new();
    inherit.pass("obj", queue()).unwrap();
    assert_eq!(
        spawn(inherit, "queue", "i64"),
        "refused: the queue was created for `u64`, received as `i64`: different types"
    );

    let v = || Value::anonymous(int::Point { x: 7, y: -8 }).unwrap();
    let mut inherit = Inherit::new();
    inherit.pass("obj", v()).unwrap();
    assert_eq!(spawn(inherit, "value", "point"), "ok Point { x: 7, y: -8 }");
    let mut inherit = Inherit::new();
    inherit.pass("obj", v()).unwrap();
    assert_eq!(
        spawn(inherit, "value", "pointf"),
        format!(
            "refused: the value was created for `{}`, received as `{}`: different field types",
            rendering("point", true),
            rendering("pointf", true)
        )
    );

    let m = Mutex::anonymous(7u64).unwrap();
    let mut inherit = Inherit::new();
    inherit.pass("obj", m).unwrap();
    assert_eq!(
        spawn(inherit, "mutex", "i64"),
        "refused: the mutex was created for `u64 (8 bytes, align 8)`, received as `i64 (8 bytes, align 8)`: different types"
    );
}

#[test]
fn unchecked_opens_read_another_shape_anyway() {
    let name = unique_name("ti-unchecked");
    let v = Value::create(&name, int::Point { x: 7, y: -8 }).unwrap();
    assert!(matches!(
        Value::<swapped::Point>::open(&name),
        Err(Error::WrongType { .. })
    ));
    let opts = shmring::shm::SegmentOptions::default();
    let s = Value::<swapped::Point>::open_unchecked(&name, &opts).unwrap();
    // The creator's bytes, read with the other field order.
    assert_eq!(s.load(), swapped::Point { y: 7, x: -8 });
    drop((s, v));

    let name = unique_name("ti-unchecked");
    let mut q = Queue::<u64>::create(&name, 4).unwrap();
    q.put(&1).unwrap();
    assert!(matches!(Queue::<i64>::open(&name), Err(Error::WrongType { .. })));
    let mut other = Queue::<i64>::open_unchecked(&name, &Default::default()).unwrap();
    // postcard's zigzag varint: 1u64 reads as -1i64 (the garbage the check prevents).
    assert_eq!(other.get().unwrap(), -1);
}

#[derive(Serialize, Deserialize, Schema)]
#[postcard(crate = shmring::postcard_schema)]
struct Unit;

#[test]
fn an_untyped_segment_is_refused_as_a_typed_object() {
    // A plain MPMC ring records no type: a typed queue refuses it, naming why.
    let name = unique_name("ti-untyped");
    let _ring = shmring::ring::mpmc::Producer::create(&name, 4, 512).unwrap();
    match Queue::<Unit>::open(&name) {
        Err(Error::WrongType { created, why, .. }) => {
            assert_eq!(created, "no type");
            assert!(why.contains("recorded no type"), "{why}");
        }
        r => panic!("an untyped ring opened as a queue: {r:?}"),
    }
}
