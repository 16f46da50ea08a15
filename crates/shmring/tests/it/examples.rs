//! The examples run and succeed (cargo builds them for `cargo test`, next to the test
//! binaries): the worker pool, the producer/consumer pair that find each other by
//! name, and the subprocess example (sort's stdin/stdout, then a queue and a pipe end
//! handed to a worker `Process`), and a few rounds of the select latency probe.

use crate::common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

pub(crate) fn example(name: &str) -> PathBuf {
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
fn select_latency_runs_a_few_rounds_of_each_case() {
    let _w = Watchdog::new("select_latency example", Duration::from_secs(120));
    // The example checks that each wake-up reports exactly the source fed.
    let mut c = Command::new(example("select_latency"))
        .arg("20")
        .spawn()
        .expect("spawn");
    let st = wait_child(&mut c, Duration::from_secs(110));
    assert!(st.success(), "select_latency: {st}");
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

#[test]
fn subprocess_feeds_sort_and_passes_its_output_to_a_worker_process() {
    let _w = Watchdog::new("subprocess example", Duration::from_secs(120));
    let out = Command::new(example("subprocess"))
        .arg("2000")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_output(out, Duration::from_secs(110));
    assert!(out.status.success(), "subprocess: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(": 2000 lines, sorted: true"), "printed {text:?}");
}

/// `wait_with_output` under a time limit (the watchdog covers the rest).
fn wait_output(child: std::process::Child, limit: Duration) -> std::process::Output {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().expect("wait")));
    rx.recv_timeout(limit).expect("example did not exit in time")
}

#[test]
fn broadcast_reaches_every_subscriber() {
    let _w = Watchdog::new("broadcast example", Duration::from_secs(120));
    let mut c = Command::new(example("broadcast"))
        .args(["3", "20000"])
        .spawn()
        .expect("spawn");
    let st = wait_child(&mut c, Duration::from_secs(110));
    assert!(st.success(), "broadcast: {st}");
}
