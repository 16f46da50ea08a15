//! Type identity between separately built programs. This program declares its own
//! types (it shares no code with its peer) and creates or opens a named queue, value,
//! array or mutex of one of them: the peer opens it if it declares the same shape, and
//! is refused, with both shapes named, if not. `tests/it/type_identity.rs` runs it
//! against the test binary's own declarations, both ways.
//!
//! ```text
//! type_identity create  <object> <type> <name>   create it holding the type's sample,
//!                                                print `ready`, keep it until stdin closes
//! type_identity open    <object> <type> <name>   open it: print `ok <value>` or
//!                                                `refused: <error>`
//! type_identity inherit <object> <type>          the same with the object handed over
//!                                                (`handoff::from_env`, name `obj`)
//! ```
//!
//! `<object>`: `queue`, `value`, `array`, `mutex`. `<type>` and its sample: `u64` (7),
//! `i64` (-7), `bytes` ([7; 8]), `point` (`Point { x: 7, y: -8 }` of i32), `pointf`
//! (`Point` of f32), `swapped` (`Point { y, x }` of i32), and for queues only `string`
//! and `pair` (`(7u8, 8u8)`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use shmring::handoff::{self, Handoff, HandoffError};
use shmring::sync::Mutex;
use shmring::{Array, Error, Queue, Schema, Value};
use std::fmt::Debug;
use std::time::Duration;

/// Three declarations of a `Point`, each with a shape of its own.
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

const WAIT: Duration = Duration::from_secs(10);

type Res = Result<(), Box<dyn std::error::Error>>;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Create,
    Open,
    Inherit,
}

/// What an open that failed prints: `refused: ...` for a type mismatch (the exit status
/// stays 0: the refusal is the expected outcome), an error for anything else.
fn refused(e: impl std::fmt::Display) -> Res {
    println!("refused: {e}");
    Ok(())
}

/// Print `ready`, then keep the object until stdin closes.
fn hold() -> Res {
    println!("ready");
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())?;
    Ok(())
}

fn queue<T: Serialize + DeserializeOwned + Schema + Debug>(mode: Mode, name: &str, sample: T) -> Res {
    let q = match mode {
        Mode::Create => {
            let mut q = Queue::<T>::create(name, 4)?;
            q.put(&sample)?;
            return hold();
        }
        Mode::Open => match Queue::<T>::open(name) {
            Err(e @ Error::WrongType { .. }) => return refused(e),
            r => r?,
        },
        Mode::Inherit => match handoff::from_env::<Queue<T>>("obj") {
            Err(e @ HandoffError::WrongType { .. }) => return refused(e),
            r => r?,
        },
    };
    let mut q = q;
    println!("ok {:?}", q.get_timeout(WAIT)?);
    Ok(())
}

/// Open a typed primitive by name or from the inherited `obj`, or report its refusal.
fn attach<H: Handoff>(
    mode: Mode,
    open: impl FnOnce() -> Result<H, Error>,
) -> Result<Option<H>, Box<dyn std::error::Error>> {
    let r = if mode == Mode::Inherit {
        handoff::from_env::<H>("obj").map_err(|e| match e {
            HandoffError::WrongType { .. } => format!("refused: {e}"),
            e => format!("error: {e}"),
        })
    } else {
        open().map_err(|e| match e {
            Error::WrongType { .. } => format!("refused: {e}"),
            e => format!("error: {e}"),
        })
    };
    match r {
        Ok(h) => Ok(Some(h)),
        Err(line) if line.starts_with("refused: ") => {
            println!("{line}");
            Ok(None)
        }
        Err(line) => Err(line.into()),
    }
}

fn pod<T: bytemuck::Pod + Schema + Debug + Send>(mode: Mode, object: &str, name: &str, sample: T) -> Res {
    match (object, mode) {
        ("value", Mode::Create) => {
            let _v = Value::create(name, sample)?;
            hold()
        }
        ("value", _) => {
            if let Some(v) = attach(mode, || Value::<T>::open(name))? {
                println!("ok {:?}", v.load());
            }
            Ok(())
        }
        ("array", Mode::Create) => {
            let _a = Array::create(name, &[sample, sample])?;
            hold()
        }
        ("array", _) => {
            if let Some(a) = attach(mode, || Array::<T>::open(name))? {
                println!("ok {:?}", a.get(1)?);
            }
            Ok(())
        }
        ("mutex", Mode::Create) => {
            let _m = Mutex::create(name, sample)?;
            hold()
        }
        ("mutex", _) => {
            if let Some(m) = attach(mode, || Mutex::<T>::open(name))? {
                println!("ok {:?}", m.get());
            }
            Ok(())
        }
        _ => Err(format!("unknown object {object:?}").into()),
    }
}

fn main() -> Res {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: type_identity create|open|inherit <object> <type> [<name>]";
    let (mode, object, ty) = match args.as_slice() {
        [m, o, t, ..] => (m.as_str(), o.as_str(), t.as_str()),
        _ => return Err(usage.into()),
    };
    let mode = match mode {
        "create" => Mode::Create,
        "open" => Mode::Open,
        "inherit" => Mode::Inherit,
        _ => return Err(usage.into()),
    };
    let name = args.get(3).map(String::as_str).unwrap_or("");
    let point = int::Point { x: 7, y: -8 };
    let pointf = float::Point { x: 7.5, y: -8.5 };
    let swapped = swapped::Point { y: -8, x: 7 };
    match (object, ty) {
        ("queue", "u64") => queue(mode, name, 7u64),
        ("queue", "i64") => queue(mode, name, -7i64),
        ("queue", "bytes") => queue(mode, name, [7u8; 8]),
        ("queue", "string") => queue(mode, name, "seven".to_string()),
        ("queue", "pair") => queue(mode, name, (7u8, 8u8)),
        ("queue", "point") => queue(mode, name, point),
        ("queue", "pointf") => queue(mode, name, pointf),
        ("queue", "swapped") => queue(mode, name, swapped),
        (o, "u64") => pod(mode, o, name, 7u64),
        (o, "i64") => pod(mode, o, name, -7i64),
        (o, "bytes") => pod(mode, o, name, [7u8; 8]),
        (o, "point") => pod(mode, o, name, point),
        (o, "pointf") => pod(mode, o, name, pointf),
        (o, "swapped") => pod(mode, o, name, swapped),
        _ => Err(format!("no {object} of {ty:?} here").into()),
    }
}
