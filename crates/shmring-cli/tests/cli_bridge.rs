//! `shmring create`, `send`, `recv` and `stat` through the built binary: shell
//! pipelines through rings and queues.

#[path = "../../shmring/tests/common/mod.rs"]
mod common;

use common::{Watchdog, unique_name, wait_child};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shmring"))
}

fn shmring(args: &[&str]) -> Output {
    bin().args(args).output().expect("run shmring")
}

/// Unlinks the segment when dropped (also when the test fails).
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = shmring::shm::unlink(&self.0);
    }
}

fn create(args: &[&str]) -> Cleanup {
    let out = shmring(&[&["create"], args].concat());
    assert!(
        out.status.success(),
        "create {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "create writes nothing to stdout");
    Cleanup(args[1].to_owned())
}

/// Feed `input` to `shmring send ARGS` while `shmring recv RARGS` drains into a
/// buffer; both must exit 0. Returns recv's stdout.
fn pipeline(send_args: &[&str], recv_args: &[&str], input: Vec<u8>) -> Vec<u8> {
    let mut recv = bin()
        .arg("recv")
        .args(recv_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn recv");
    let mut out = recv.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let mut send = bin()
        .arg("send")
        .args(send_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn send");
    let mut stdin = send.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    writer.join().unwrap();
    let st = wait_child(&mut send, LIMIT);
    let mut err = String::new();
    send.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(st.success(), "send: {st}: {err}");
    let mut sent_out = Vec::new();
    send.stdout.take().unwrap().read_to_end(&mut sent_out).unwrap();
    assert!(sent_out.is_empty(), "send writes nothing to stdout");
    let st = wait_child(&mut recv, LIMIT);
    let mut err = String::new();
    recv.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(st.success(), "recv: {st}: {err}");
    reader.join().unwrap()
}

#[test]
fn lines_through_a_ring() {
    let _dog = Watchdog::new("lines_through_a_ring", LIMIT);
    let name = unique_name("cli-lines");
    let _c = create(&["spsc", &name, "--capacity", "65536"]);
    // 100,000 lines of varying length, some empty, none with a newline inside.
    let mut input = Vec::new();
    for i in 0..100_000u64 {
        let len = (common::mix(i) % 200) as usize;
        let line: String = (0..len)
            .map(|k| (b'a' + ((i as usize + k) % 26) as u8) as char)
            .collect();
        writeln!(input, "{i} {line}").unwrap();
    }
    let got = pipeline(&[&name], &[&name], input.clone());
    assert_eq!(got.len(), input.len());
    assert!(got == input, "the lines came out different");
}

#[test]
fn binary_records_through_a_queue() {
    let _dog = Watchdog::new("binary_records_through_a_queue", LIMIT);
    let name = unique_name("cli-binary");
    let _c = create(&["mpmc", &name, "--slots", "64", "--slot-size", "300"]);
    let mut input = Vec::new();
    let mut records = Vec::new();
    for i in 0..5_000u64 {
        let len = (common::mix(i) % 301) as usize;
        let rec: Vec<u8> = (0..len)
            .map(|k| (common::mix(i * 1000 + k as u64) & 0xff) as u8)
            .collect();
        input.extend_from_slice(&(len as u32).to_le_bytes());
        input.extend_from_slice(&rec);
        records.push(rec);
    }
    // --close: at end of input the queue is closed, so recv drains it and exits.
    let got = pipeline(&["--binary", "--close", &name], &["--binary", &name], input.clone());
    assert!(got == input, "the records came out different");
    assert_eq!(records.len(), 5_000);
}

#[test]
fn recv_into_head_exits_quietly() {
    let _dog = Watchdog::new("recv_into_head_exits_quietly", LIMIT);
    let name = unique_name("cli-head");
    let _c = create(&["spsc", &name, "--capacity", "4096"]);
    // A sender that never runs out: recv's reader (head) goes away after one line.
    let mut send = bin()
        .args(["send", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = send.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0u64.. {
            if writeln!(stdin, "line {i}").is_err() {
                break;
            }
        }
    });
    let script = format!(
        "{} recv {name} | head -1; echo \"recv status ${{PIPESTATUS[0]}}\" >&2",
        env!("CARGO_BIN_EXE_shmring")
    );
    let out = Command::new("bash").args(["-c", &script]).output().expect("bash");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stdout, "line 0\n");
    assert_eq!(stderr, "recv status 0\n", "recv must exit 0 and say nothing");
    // The receiver is gone: the sender fails (its receiver died), which ends the feeder.
    let st = wait_child(&mut send, LIMIT);
    assert!(!st.success(), "send must report that its receiver is gone");
    feeder.join().unwrap();
}

#[test]
fn errors_are_one_line_and_nothing_on_stdout() {
    let missing = unique_name("cli-missing");
    for args in [
        vec!["send", missing.as_str()],
        vec!["recv", missing.as_str()],
        vec!["stat", missing.as_str()],
    ] {
        let out = bin().args(&args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(&missing), "{err}");
    }
    // Not a ring: a barrier.
    let name = unique_name("cli-barrier");
    let _c = create(&["barrier", &name, "--parties", "3"]);
    let out = shmring(&["recv", &name]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("is a barrier, not a ring or queue"), "{err}");
    // Creating over an existing name fails.
    let out = shmring(&["create", "spsc", &name]);
    assert_eq!(out.status.code(), Some(1));
    // A line longer than the queue's slots.
    let q = unique_name("cli-small");
    let _q = create(&["mpmc", &q, "--slots", "4", "--slot-size", "8"]);
    let mut send = bin()
        .args(["send", &q])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    send.stdin
        .take()
        .unwrap()
        .write_all(b"short\nthis line is too long\n")
        .unwrap();
    let st = wait_child(&mut send, LIMIT);
    assert_eq!(st.code(), Some(1));
    let mut err = String::new();
    send.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(
        err.contains("does not fit") && err.contains("create it larger"),
        "{err}"
    );
    // The short line before it was delivered.
    let out = shmring(&["recv", "--count", "1", &q]);
    assert_eq!(out.stdout, b"short\n");
}

#[test]
fn stat_counts_messages() {
    let name = unique_name("cli-stat");
    let _c = create(&["spsc", &name, "--capacity", "4096"]);
    let got = pipeline(&[&name], &[&name], b"a\nbb\nccc\n".to_vec());
    assert_eq!(got, b"a\nbb\nccc\n");
    let out = shmring(&["stat", &name]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let count = |key: &str| -> u64 {
        let line = BufReader::new(text.as_bytes())
            .lines()
            .map(|l| l.unwrap())
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in {text}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert_eq!(count("messages in"), 3, "{text}");
    assert_eq!(count("messages out"), 3, "{text}");
    assert!(text.contains("producer") && text.contains("closed"), "{text}");
}

#[test]
fn stat_watch_refreshes_with_rates() {
    let _dog = Watchdog::new("stat_watch_refreshes_with_rates", LIMIT);
    let name = unique_name("cli-watch");
    let _c = create(&["mpmc", &name, "--slots", "16", "--slot-size", "32"]);
    let mut watch = bin()
        .args(["stat", "--watch", "--interval", "0.1", &name])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = watch.stdout.take().unwrap();
    // Two refreshes with rates, then stop reading.
    let mut lines = BufReader::new(out).lines();
    let mut refreshes = 0;
    while refreshes < 2 {
        let line = lines.next().expect("stat --watch ended early").unwrap();
        if line.contains("messages in") && line.ends_with("/s") {
            refreshes += 1;
        }
        if line.contains("\x1b[H") {
            assert!(
                line.contains(&name),
                "each refresh starts at the top with the name: {line:?}"
            );
        }
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
}
