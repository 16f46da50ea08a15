//! Broadcast rings through the built binary: `shmring create broadcast` (capacity,
//! subscriber limit, policy), `send` to and `recv` from them (every subscriber gets
//! every line; `--oldest` drains what the ring retains), and `ls`/`stat` showing the
//! publisher and each subscriber with its lag and liveness (also in `stat --json`).

#[path = "../../shmring/tests/common/mod.rs"]
mod common;

use common::{Watchdog, unique_name, wait_child};
use std::io::{Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shmring"))
}

fn shmring(args: &[&str]) -> Output {
    bin().args(args).output().expect("run shmring")
}

fn ok(args: &[&str]) -> String {
    let out = shmring(args);
    assert!(
        out.status.success(),
        "shmring {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Unlinks the segment when dropped (also when the test fails).
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = shmring::shm::unlink(&self.0);
    }
}

fn create(name: &str, extra: &[&str]) -> Cleanup {
    let out = shmring(&[&["create", "broadcast", name], extra].concat());
    assert!(
        out.status.success(),
        "create broadcast {name} {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Cleanup(name.to_owned())
}

/// `shmring send NAME` with `input` on stdin; must exit 0.
fn send(name: &str, input: &[u8]) {
    let mut send = bin()
        .args(["send", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn send");
    send.stdin.take().unwrap().write_all(input).unwrap();
    let st = wait_child(&mut send, LIMIT);
    let mut err = String::new();
    send.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(st.success(), "send: {st}: {err}");
}

/// `shmring stat --json NAME`, parsed.
fn stat_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&ok(&["stat", "--json", name])).expect("stat --json is JSON")
}

/// Poll `stat --json` until `pred` holds (under the test's watchdog).
fn wait_for(name: &str, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let v = stat_json(name);
        if pred(&v) {
            return v;
        }
        assert!(start.elapsed() < LIMIT, "{what}: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn subscribers(v: &serde_json::Value) -> &Vec<serde_json::Value> {
    v["subscribers"]
        .as_array()
        .expect("a broadcast ring lists its subscribers")
}

/// A `shmring recv ARGS` child with its output piped.
fn spawn_recv(args: &[&str]) -> Child {
    bin()
        .arg("recv")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn recv")
}

/// Wait for a recv child to exit 0; its stdout.
fn finish(mut c: Child) -> String {
    let st = wait_child(&mut c, LIMIT);
    let (mut out, mut err) = (String::new(), String::new());
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(st.success(), "recv: {st}: {err}");
    out
}

#[test]
fn every_subscriber_gets_every_line() {
    let _dog = Watchdog::new("every_subscriber_gets_every_line", LIMIT);
    let name = unique_name("cli-bcast-fan");
    let _c = create(&name, &["--capacity", "64K", "--subscribers", "8"]);
    // Two subscribers attach before anything is published (they start at the next
    // message), and wait for a publisher: none has attached yet.
    let a = spawn_recv(&[&name]);
    let b = spawn_recv(&[&name]);
    wait_for(&name, "two subscribers attach", |v| subscribers(v).len() == 2);
    let lines: String = (0..500).map(|i| format!("line {i}\n")).collect();
    send(&name, lines.as_bytes());
    // The publisher closed at the end of its input: each recv drains and exits 0.
    assert_eq!(finish(a), lines);
    assert_eq!(finish(b), lines);
    // Both detached; the publisher's close is on record.
    let v = stat_json(&name);
    assert_eq!(subscribers(&v).len(), 0, "{v}");
    assert_eq!(v["counters"]["messages published"], 500, "{v}");
    assert_eq!(v["parties"][0]["role"], "publisher", "{v}");
    assert_eq!(v["parties"][0]["state"], "closed", "{v}");
}

#[test]
fn recv_oldest_drains_what_the_ring_retains_and_a_new_send_continues() {
    let _dog = Watchdog::new("recv_oldest_drains", LIMIT);
    let name = unique_name("cli-bcast-old");
    let _c = create(&name, &[]);
    send(&name, b"one\ntwo\n");
    // The publisher is gone (closed): --oldest reads what is retained, then ends.
    assert_eq!(finish(spawn_recv(&["--oldest", &name])), "one\ntwo\n");
    // A new publisher continues the stream for a subscriber that waits for it.
    let r = spawn_recv(&[&name]);
    wait_for(&name, "the subscriber attaches", |v| subscribers(v).len() == 1);
    send(&name, b"three\n");
    assert_eq!(finish(r), "three\n");
    assert_eq!(finish(spawn_recv(&["--oldest", &name])), "one\ntwo\nthree\n");
}

#[test]
fn stat_shows_each_subscribers_lag_and_liveness() {
    let _dog = Watchdog::new("stat_shows_each_subscribers_lag", LIMIT);
    let name = unique_name("cli-bcast-lag");
    let _c = create(&name, &["--policy", "overwrite", "--subscribers", "4"]);
    // This test process is one subscriber (the CLI runs in other processes).
    let mut me = shmring::broadcast::Subscriber::open(&name).unwrap();
    send(&name, b"hello\nworld\n");
    let v = stat_json(&name);
    assert_eq!(v["kind"], "broadcast", "{v}");
    assert_eq!(v["policy"], "overwrite", "{v}");
    assert_eq!(v["counters"]["subscriber limit"], 4, "{v}");
    let subs = subscribers(&v);
    assert_eq!(subs.len(), 1, "{v}");
    let s = &subs[0];
    assert_eq!(s["pid"], std::process::id(), "{v}");
    assert_eq!(
        (s["alive"].as_bool(), s["state"].as_str()),
        (Some(true), Some("alive")),
        "{v}"
    );
    let lag = s["lag_bytes"].as_u64().unwrap();
    assert!(lag >= 10, "two unread messages are behind it: {v}");
    assert_eq!(v["counters"]["slowest lag bytes"], lag, "{v}");
    let text = ok(&["stat", &name]);
    assert!(
        text.contains(&format!(
            "subscriber {} (slot 0) alive: lag {lag} bytes",
            std::process::id()
        )),
        "{text}"
    );
    assert!(text.contains("policy overwrite"), "{text}");
    // After reading both, it lags no more.
    assert_eq!(me.recv().unwrap(), b"hello");
    assert_eq!(me.recv().unwrap(), b"world");
    assert_eq!(subscribers(&stat_json(&name))[0]["lag_bytes"], 0);
    assert_eq!(subscribers(&stat_json(&name))[0]["received"], 2);
    // A subscriber process killed without detaching shows as dead.
    let mut r = spawn_recv(&[&name]);
    let pid = r.id();
    wait_for(&name, "the recv subscriber attaches", |v| {
        subscribers(v).iter().any(|s| s["pid"] == pid && s["alive"] == true)
    });
    r.kill().unwrap();
    wait_child(&mut r, LIMIT);
    let v = stat_json(&name);
    let dead = subscribers(&v)
        .iter()
        .find(|s| s["pid"] == pid)
        .expect("its slot stays until reclaimed");
    assert_eq!(
        (dead["alive"].as_bool(), dead["state"].as_str()),
        (Some(false), Some("dead")),
        "{v}"
    );
    // ls lists the ring with its parties.
    let ls = ok(&["ls"]);
    let line = ls.lines().find(|l| l.starts_with(&name)).expect("ls lists the ring");
    assert!(
        line.contains("broadcast") && line.contains(&format!("subscriber {pid} dead")),
        "{line}"
    );
    let all: serde_json::Value = serde_json::from_str(&ok(&["ls", "--json"])).unwrap();
    let mine = all
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name.as_str())
        .unwrap();
    assert_eq!(subscribers(mine).len(), 2, "{mine}");
    drop(me);
}

#[test]
fn create_checks_its_arguments_and_send_the_message_size() {
    let _dog = Watchdog::new("create_checks_its_arguments", LIMIT);
    let name = unique_name("cli-bcast-args");
    let out = shmring(&["create", "broadcast", &name, "--policy", "sometimes"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lossless or overwrite"));
    let _c = create(&name, &["--capacity", "256"]);
    let v = stat_json(&name);
    assert_eq!(v["policy"], "lossless", "{v}");
    assert_eq!(v["capacity"], 256, "{v}");
    let big = vec![b'x'; 1000];
    let mut send = bin()
        .args(["send", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The send may fail before reading all of its input.
    let _ = send.stdin.take().unwrap().write_all(&big);
    let st = wait_child(&mut send, LIMIT);
    let mut err = String::new();
    send.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!st.success() && err.contains("does not fit"), "{st}: {err}");
}
