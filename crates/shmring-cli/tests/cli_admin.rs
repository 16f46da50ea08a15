//! `shmring ls`, `rm` and `gc` through the built binary, against segments created and
//! abandoned by other processes (this test binary re-executed).

#[path = "../../shmring/tests/common/mod.rs"]
mod common;

use common::peer::{Peer, exit_with, say};
use common::{Watchdog, role, unique_name};
use std::process::{Command, Output};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// The tests of this file run one at a time: `shmring ls` (and `rm`) open every segment
/// in /dev/shm to read its header, and a process holding a segment open is an attached
/// party to `gc` (checked by hand: a shell holding `/dev/shm/NAME` open makes `gc` skip
/// NAME), so an `ls` from one test can make `gc` in another skip a dead segment (seen
/// once: the dry run listed the dead ring but not the dead queue).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Take [`SERIAL`] (a test that panicked while holding it does not block the others).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn shmring(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmring"))
        .args(args)
        .output()
        .expect("run shmring")
}

fn ls_json() -> Vec<serde_json::Value> {
    let out = shmring(&["ls", "--json"]);
    assert!(
        out.status.success(),
        "ls failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ls --json is a JSON array")
}

fn entry(name: &str) -> Option<serde_json::Value> {
    ls_json().into_iter().find(|v| v["name"] == name)
}

/// Peer: create a ring (producer end) and a queue named in the environment, then wait
/// to be killed.
fn holder() -> ! {
    let ring = common::peer::env_str("RING");
    let queue = common::peer::env_str("QUEUE");
    let r = (|| -> Result<(), String> {
        let mut tx = shmring::ring::spsc::Producer::create(&ring, 4096).map_err(|e| e.to_string())?;
        tx.send(&[7u8; 100]).map_err(|e| e.to_string())?;
        let mut q = shmring::ring::mpmc::Producer::create(&queue, 8, 64).map_err(|e| e.to_string())?;
        q.push(b"a").map_err(|e| e.to_string())?;
        q.push(b"b").map_err(|e| e.to_string())?;
        say("ready");
        std::thread::sleep(Duration::from_secs(60));
        drop((tx, q));
        Ok(())
    })();
    exit_with(r)
}

fn spawn_holder(test: &str, ring: &str, queue: &str) -> Peer {
    let mut p = Peer::spawn(test, "holder", &[("RING", ring.into()), ("QUEUE", queue.into())]);
    p.expect("ready", LIMIT);
    p
}

/// Unlinks the named segments when dropped (also when the test fails), if they exist.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = shmring::shm::unlink(n);
        }
    }
}

fn parties(v: &serde_json::Value) -> Vec<(String, u64, bool, String)> {
    v["parties"]
        .as_array()
        .expect("parties")
        .iter()
        .map(|p| {
            (
                p["role"].as_str().unwrap().to_owned(),
                p["pid"].as_u64().unwrap(),
                p["alive"].as_bool().unwrap(),
                p["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn ls_sees_another_process_and_its_death() {
    let _serial = serial();
    if role().as_deref() == Some("holder") {
        holder();
    }
    let _dog = Watchdog::new("ls_sees_another_process_and_its_death", Duration::from_secs(60));
    let ring = unique_name("ls-ring");
    let queue = unique_name("ls-queue");
    let _cleanup = Cleanup(vec![ring.clone(), queue.clone()]);
    let mut peer = spawn_holder("ls_sees_another_process_and_its_death", &ring, &queue);
    let pid = u64::from(peer.pid());

    let r = entry(&ring).expect("ls lists the ring");
    assert_eq!(r["kind"], "spsc");
    assert_eq!(r["ready"], true);
    assert_eq!(r["capacity"], 4096);
    assert_eq!(
        r["used"], 112,
        "one 100-byte message: 8-byte header + 100, rounded up to 8"
    );
    assert_eq!(r["in_use"], true);
    assert!(
        parties(&r).contains(&("producer".into(), pid, true, "alive".into())),
        "{r}"
    );
    let q = entry(&queue).expect("ls lists the queue");
    assert_eq!(q["kind"], "mpmc");
    assert_eq!(q["capacity"], 8);
    assert_eq!(q["used"], 2);
    assert!(
        parties(&q).contains(&("producer".into(), pid, true, "alive".into())),
        "{q}"
    );

    peer.kill9();
    let r = entry(&ring).expect("the dead process's ring is still listed");
    assert_eq!(r["in_use"], false, "{r}");
    assert!(
        parties(&r).contains(&("producer".into(), pid, false, "dead".into())),
        "{r}"
    );
    let q = entry(&queue).expect("queue still listed");
    assert_eq!(q["in_use"], false, "{q}");
    assert!(
        parties(&q).contains(&("producer".into(), pid, false, "dead".into())),
        "{q}"
    );

    // The table form names both.
    let out = shmring(&["ls"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains(&ring) && table.contains(&format!("producer {pid} dead")),
        "{table}"
    );
}

#[test]
fn gc_removes_only_the_dead() {
    let _serial = serial();
    if role().as_deref() == Some("holder") {
        holder();
    }
    let _dog = Watchdog::new("gc_removes_only_the_dead", Duration::from_secs(60));
    // One prefix for this test's segments, so gc cannot touch anyone else's.
    let prefix = unique_name("gc");
    let (live_ring, live_queue) = (format!("{prefix}-live-r"), format!("{prefix}-live-q"));
    let (dead_ring, dead_queue) = (format!("{prefix}-dead-r"), format!("{prefix}-dead-q"));
    let _cleanup = Cleanup(vec![
        live_ring.clone(),
        live_queue.clone(),
        dead_ring.clone(),
        dead_queue.clone(),
    ]);
    let live = spawn_holder("gc_removes_only_the_dead", &live_ring, &live_queue);
    let mut dead = spawn_holder("gc_removes_only_the_dead", &dead_ring, &dead_queue);
    // A segment mapped by this process only (no role records): in use through /proc.
    let mapped = format!("{prefix}-mapped");
    let mut seg = shmring::shm::Segment::create(
        &mapped,
        shmring::shm::SegmentKind::Raw,
        [0; 8],
        4096,
        &shmring::shm::SegmentOptions::new(),
    )
    .unwrap();
    seg.publish_ready();
    dead.kill9();

    let dry = shmring(&["gc", "--prefix", &prefix]);
    assert!(dry.status.success());
    let dry_out = String::from_utf8(dry.stdout).unwrap();
    assert!(
        dry_out.contains(&dead_ring) && dry_out.contains(&dead_queue),
        "{dry_out}"
    );
    assert!(
        !dry_out.contains(&live_ring) && !dry_out.contains(&live_queue),
        "{dry_out}"
    );
    assert!(!dry_out.contains(&mapped), "{dry_out}");
    assert!(entry(&dead_ring).is_some(), "a dry run removes nothing");

    let real = shmring(&["gc", "--force", "--prefix", &prefix]);
    assert!(real.status.success());
    assert!(entry(&dead_ring).is_none() && entry(&dead_queue).is_none());
    assert!(entry(&live_ring).is_some() && entry(&live_queue).is_some() && entry(&mapped).is_some());
    drop((seg, live));
}

#[test]
fn rm_refuses_missing_foreign_and_in_use() {
    let _serial = serial();
    let missing = unique_name("rm-missing");
    let out = shmring(&["rm", &missing]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no such segment"), "{err}");
    assert!(out.stdout.is_empty());

    let foreign = unique_name("rm-foreign");
    let path = format!("/dev/shm/{foreign}");
    std::fs::write(&path, vec![0x5au8; 4096]).unwrap();
    let out = shmring(&["rm", &foreign]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("not a shmring segment"), "{err}");
    assert!(std::path::Path::new(&path).exists(), "a foreign file is never removed");
    let all = String::from_utf8(shmring(&["ls", "--all"]).stdout).unwrap();
    assert!(all.contains(&foreign) && all.contains("foreign"), "{all}");
    let plain = String::from_utf8(shmring(&["ls"]).stdout).unwrap();
    assert!(!plain.contains(&foreign), "{plain}");
    std::fs::remove_file(&path).unwrap();

    // In use (this process holds the producer end): refused, then removed with --force.
    let name = unique_name("rm-busy");
    let _cleanup = Cleanup(vec![name.clone()]);
    let tx = shmring::ring::spsc::Producer::create(&name, 4096).unwrap();
    let out = shmring(&["rm", &name]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("in use") && err.contains(&std::process::id().to_string()),
        "{err}"
    );
    assert!(entry(&name).is_some());
    let out = shmring(&["rm", "--force", &name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(entry(&name).is_none());
    drop(tx);
}
