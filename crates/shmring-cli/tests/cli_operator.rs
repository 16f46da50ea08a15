//! The operator's path through the built binary, one test per promise: successive
//! `send`/`recv` runs (a queue takes them; a used ring's end says how to make a fresh
//! one), `recv`'s exit status when its producer dies or closes, `stat --watch` into a
//! pipe, `ls` with a kind this build does not know, and `create`'s defaults.

#[path = "../../shmring/tests/common/mod.rs"]
mod common;

use common::{Watchdog, unique_name, wait_child};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shmring"))
}

fn shmring(args: &[&str]) -> Output {
    bin().args(args).stdin(Stdio::null()).output().expect("run shmring")
}

/// `shmring send ARGS` with `input` on stdin.
fn send(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .arg("send")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn send");
    // A `send` that fails (as some tests expect) may exit before reading its input:
    // the write then meets a closed pipe, and the exit status and stderr tell the rest.
    match child.stdin.take().unwrap().write_all(input) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.unwrap(),
    }
    let st = wait_child(&mut child, LIMIT);
    let mut out = Output {
        status: st,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    child.stdout.take().unwrap().read_to_end(&mut out.stdout).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut out.stderr).unwrap();
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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
    assert!(out.status.success(), "create {args:?}: {}", text(&out.stderr));
    Cleanup(args[1].to_owned())
}

#[test]
fn a_queue_takes_successive_sends_and_recvs() {
    let _dog = Watchdog::new("a_queue_takes_successive_sends_and_recvs", LIMIT);
    let name = unique_name("op-queue");
    let _c = create(&["mpmc", &name]);
    for input in [&b"a\nb\n"[..], b"c\n"] {
        let out = send(&[&name], input);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = shmring(&["recv", "--count", "2", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"a\nb\n");
    let out = send(&["--close", &name], b"d\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A second recv drains the rest and ends on the close, with status 0 and silence.
    let out = shmring(&["recv", &name]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"c\nd\n");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn a_used_ring_end_names_the_commands_for_a_fresh_one() {
    let _dog = Watchdog::new("a_used_ring_end_names_the_commands_for_a_fresh_one", LIMIT);
    let name = unique_name("op-ring");
    let _c = create(&["spsc", &name, "--capacity", "4096"]);
    let out = send(&[&name], b"first\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = send(&[&name], b"second\n");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    for want in [
        "producer end",
        "closed by an earlier `shmring send`",
        &format!("shmring rm {name} && shmring create spsc {name} --capacity 4096"),
        &format!("shmring create mpmc {name}"),
    ] {
        assert!(err.contains(want), "no {want:?} in {err}");
    }
    // The first stream is intact: recv gets it and ends on its close.
    let out = shmring(&["recv", &name]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"first\n");
    let out = shmring(&["recv", &name]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("consumer end") && err.contains("closed by an earlier `shmring recv`"),
        "{err}"
    );
    assert!(err.contains(&format!("shmring create spsc {name}")), "{err}");
}

/// `recv NAME` with its stdout and stderr piped.
fn spawn_recv(name: &str) -> Child {
    bin()
        .args(["recv", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn recv")
}

/// A `send NAME` that has sent three lines and stays alive (its stdin open) until it is
/// killed; recv has written the three lines out.
fn kill_sender_after_three(name: &str) {
    let mut recv = spawn_recv(name);
    let mut sender = bin()
        .args(["send", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn send");
    let mut stdin = sender.stdin.take().unwrap();
    stdin.write_all(b"1\n2\n3\n").unwrap();
    stdin.flush().unwrap();
    let mut lines = BufReader::new(recv.stdout.take().unwrap()).lines();
    for want in ["1", "2", "3"] {
        assert_eq!(lines.next().expect("recv ended early").unwrap(), want);
    }
    let pid = sender.id();
    sender.kill().unwrap();
    sender.wait().unwrap();
    drop(stdin);
    let st = wait_child(&mut recv, LIMIT);
    assert!(lines.next().is_none(), "nothing more on stdout");
    let mut err = String::new();
    recv.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(st.code(), Some(1), "recv must fail when its producer dies: {err}");
    assert!(err.contains(&format!("producer {pid} died after 3 messages")), "{err}");
}

#[test]
fn recv_fails_when_the_ring_producer_dies() {
    let _dog = Watchdog::new("recv_fails_when_the_ring_producer_dies", LIMIT);
    let name = unique_name("op-die-ring");
    let _c = create(&["spsc", &name, "--capacity", "4096"]);
    kill_sender_after_three(&name);
}

#[test]
fn recv_fails_when_the_queue_producer_dies() {
    let _dog = Watchdog::new("recv_fails_when_the_queue_producer_dies", LIMIT);
    let name = unique_name("op-die-queue");
    let _c = create(&["mpmc", &name, "--slots", "16"]);
    kill_sender_after_three(&name);
}

#[test]
fn recv_exits_zero_on_a_clean_close() {
    let _dog = Watchdog::new("recv_exits_zero_on_a_clean_close", LIMIT);
    for kind in ["spsc", "mpmc"] {
        let name = unique_name("op-close");
        let _c = create(&[kind, &name]);
        let mut recv = spawn_recv(&name);
        let out = send(&["--close", &name], b"x\ny\n");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let st = wait_child(&mut recv, LIMIT);
        let mut got = String::new();
        recv.stdout.take().unwrap().read_to_string(&mut got).unwrap();
        let mut err = String::new();
        recv.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(st.code(), Some(0), "{kind}: {err}");
        assert_eq!(got, "x\ny\n", "{kind}");
        assert!(err.is_empty(), "{kind}: {err}");
    }
}

#[test]
fn stat_watch_into_a_pipe_has_no_control_codes_and_ends_with_the_segment() {
    let _dog = Watchdog::new("stat_watch_into_a_pipe", LIMIT);
    let name = unique_name("op-watch");
    let _c = create(&["mpmc", &name, "--slots", "16", "--slot-size", "32"]);
    let mut watch = bin()
        .args(["stat", "--watch", "--interval", "0.1", &name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    // Two refreshes with rates, then remove the segment.
    while seen
        .iter()
        .filter(|l: &&String| l.contains("messages in") && l.ends_with("/s"))
        .count()
        < 2
    {
        seen.push(lines.next().expect("stat --watch ended early").unwrap());
    }
    shmring::shm::unlink(&name).unwrap();
    seen.extend(lines.map(|l| l.unwrap()));
    let st = wait_child(&mut watch, LIMIT);
    let mut err = String::new();
    watch.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(st.code(), Some(0), "{err}");
    assert!(err.contains(&name) && err.contains("removed"), "{err}");
    let all = seen.join("\n");
    assert!(!all.contains('\x1b'), "control codes in a pipe: {all:?}");
    for gauge in ["slots", "slot size", "messages queued", "parties attached"] {
        for l in seen.iter().filter(|l| l.trim_start().starts_with(gauge)) {
            assert!(!l.ends_with("/s"), "a rate for the gauge {gauge:?}: {l}");
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.trim_start().starts_with("consumer waits") && l.ends_with("/s")),
        "{all}"
    );
}

#[test]
fn ls_keeps_its_columns_for_an_unknown_kind() {
    let name = unique_name("op-unknown");
    let _c = Cleanup(name.clone());
    let mut seg = shmring::shm::Segment::create(
        &name,
        shmring::shm::SegmentKind::Raw,
        [0; 8],
        4096,
        &shmring::shm::SegmentOptions::new(),
    )
    .unwrap();
    seg.publish_ready();
    seg.keep();
    drop(seg);
    // The header's kind word (offset 12) set to a kind no build knows.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &4_000_000_000u32.to_le_bytes(), 12).unwrap();
    drop(f);
    let out = shmring(&["ls"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let head = table.lines().next().unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not listed: {table}"));
    assert!(row.contains("unknown(4000000000)"), "{row}");
    // Every column of the row ends where its heading does.
    for col in ["KIND", "SIZE", "CAPACITY", "FILL", "PARTIES"] {
        let at = head.find(col).unwrap();
        assert_eq!(&row[at - 2..at], "  ", "column {col} shifted:\n{head}\n{row}");
    }
    let at = head.find("PARTIES").unwrap();
    assert_eq!(&row[at..], "none", "\n{head}\n{row}");
}

#[test]
fn create_defaults_are_the_librarys() {
    let name = unique_name("op-defaults");
    let _c = create(&["mpmc", &name]);
    let out = shmring(&["stat", &name]);
    let stat = text(&out.stdout);
    let figure = |key: &str| -> u64 {
        let line = stat
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in {stat}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert_eq!(figure("slot size"), shmring::queue::DEFAULT_SLOT_SIZE as u64, "{stat}");
    let ring = unique_name("op-defaults-ring");
    let _r = create(&["spsc", &ring]);
    let r = shmring::ring::spsc::inspect(&ring).unwrap();
    assert_eq!(r.stats.capacity, shmring::connection::DEFAULT_CAPACITY as u64);
    // A semaphore starts with one permit, as Python's; --mode applies to every kind.
    let sem = unique_name("op-defaults-sem");
    let _s = create(&["semaphore", &sem]);
    let s = shmring::sync::Semaphore::open(&sem).unwrap();
    assert!(s.try_acquire().is_ok(), "one permit");
    assert!(s.try_acquire().is_err(), "only one");
    let lock = unique_name("op-defaults-rlock");
    let _l = create(&["rlock", &lock, "--mode", "640"]);
    let mode = std::fs::metadata(format!("/dev/shm/{lock}")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o640
    );
}
