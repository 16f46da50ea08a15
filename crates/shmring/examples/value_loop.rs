//! `Value`/`RawValue` `load` + `store` in one thread, 200,000 times, for instruction counts
//! under callgrind: `narrow` (a `Value<u64>`), `raw` (a `RawValue<u64>`), `wide` (a
//! `Value<[u64; 4]>`, a seqlock).
//!
//! `cargo build --release --example value_loop && valgrind --tool=callgrind
//! --toggle-collect='value_loop::run*' target/release/examples/value_loop narrow`
use shmring::value::{RawValue, Value};
use std::hint::black_box;

const N: u64 = 200_000;

#[inline(never)]
fn run_narrow(v: &Value<u64>) -> u64 {
    let mut acc = 0;
    for i in 0..N {
        v.store(black_box(i));
        acc ^= v.load();
    }
    acc
}

#[inline(never)]
fn run_raw(v: &RawValue<u64>) -> u64 {
    let mut acc = 0;
    for i in 0..N {
        v.store(black_box(i));
        acc ^= v.load();
    }
    acc
}

#[inline(never)]
fn run_wide(v: &Value<[u64; 4]>) -> u64 {
    let mut acc = 0;
    for i in 0..N {
        v.store(black_box([i; 4]));
        acc ^= v.load()[3];
    }
    acc
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let r = match which.as_str() {
        "narrow" => run_narrow(&Value::anonymous(0u64).unwrap()),
        "raw" => run_raw(&RawValue::anonymous(0u64).unwrap()),
        "wide" => run_wide(&Value::anonymous([0u64; 4]).unwrap()),
        _ => {
            eprintln!("usage: value_loop narrow|raw|wide");
            std::process::exit(2);
        }
    };
    println!("{r}");
}
