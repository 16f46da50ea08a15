//! The examples run and succeed (cargo builds them for `cargo test`, next to the test
//! binaries): the worker pool, and the producer/consumer pair that find each other by
//! name.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("current_exe");
    let p = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(
        p.exists(),
        "{} was not built: run the whole `cargo test` (which builds the examples) or `cargo build --examples` first",
        p.display()
    );
    p
}

#[test]
fn worker_pool_checks_every_task() {
    let _w = Watchdog::new("worker_pool example", Duration::from_secs(120));
    let mut c = Command::new(example("worker_pool"))
        .args(["3", "300"])
        .spawn()
        .expect("spawn");
    let st = wait_child(&mut c, Duration::from_secs(110));
    assert!(st.success(), "worker_pool: {st}");
}

#[test]
fn ticks_producer_and_consumer_find_each_other_by_name() {
    let _w = Watchdog::new("ticks examples", Duration::from_secs(120));
    // The consumer first: it waits for the producer to create the queue.
    let mut consumer = Command::new(example("ticks_consumer")).spawn().expect("spawn consumer");
    let mut producer = Command::new(example("ticks_producer"))
        .arg("20000")
        .spawn()
        .expect("spawn producer");
    let pc = wait_child(&mut producer, Duration::from_secs(100));
    let cc = wait_child(&mut consumer, Duration::from_secs(100));
    assert!(pc.success() && cc.success(), "producer {pc}, consumer {cc}");
}
