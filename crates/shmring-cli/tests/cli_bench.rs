//! `shmring bench` end to end through the built binary: a quick run writes the JSON
//! rows of every suite, with every transport and mode measured, the lock rows,
//! the typed-message rows and the socket rows, prints the targets (`--targets`), and
//! draws them with `--plot`, one panel per unit; the default report has no targets and
//! one line about the CPUs the run shared.

#[path = "../../shmring/tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Duration;

#[test]
fn bench_quick_writes_every_row() {
    let _dog = common::Watchdog::new("shmring bench --quick", Duration::from_secs(300));
    let json = std::env::temp_dir().join(format!("shmring-bench-{}.json", std::process::id()));
    let svg = std::env::temp_dir().join(format!("shmring-bench-{}.svg", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_shmring"))
        .args(["bench", "--quick", "--targets", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .expect("run shmring bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("shmring-spsc") && stdout.contains("unix-socket"),
        "{stdout}"
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    // The plot: an SVG with a panel per unit, the legends' labels of the main
    // transports, the lock and manager rows as ops/s, and sizes in binary units.
    let plot = std::fs::read_to_string(&svg).expect("--plot wrote the SVG");
    std::fs::remove_file(&svg).unwrap();
    assert!(plot.starts_with("<svg"), "not an SVG");
    // The texts of the SVG: what lies between a tag's end and the next tag.
    let texts: Vec<&str> = plot
        .split('>')
        .filter_map(|s| s.split('<').next())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    for text in [
        "Throughput: msgs/s",
        "Throughput: MB/s",
        "Round trip (ns)",
        "Operations: ops/s",
        "shmring-spsc adaptive",
        "unix-socket",
        "shmring-mutex uncontended",
        "shmring-manager get",
        "64 B",
        "4 KiB",
        "1 MiB",
    ] {
        assert!(texts.iter().any(|t| t.starts_with(text)), "the plot lacks {text:?}");
    }
    for decimal in ["1000 B", "1 kB", "1k B", "1 MB"] {
        assert!(!texts.contains(&decimal), "a decimal size unit {decimal:?} in the plot");
    }
    let keys = [
        "transport",
        "mode",
        "size",
        "msgs_per_s",
        "mb_per_s",
        "rtt_p50_ns",
        "rtt_p99_ns",
        "rtt_p999_ns",
    ];
    for r in &rows {
        let o = r.as_object().expect("row is an object");
        let mut got: Vec<&str> = o.keys().map(String::as_str).collect();
        got.sort_unstable();
        let mut want = keys.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{r}");
    }
    let find = |t: &str, m: Option<&str>, size: u64| {
        rows.iter()
            .find(|r| r["transport"] == t && r["size"] == size && m.is_none_or(|m| r["mode"] == m))
    };
    let positive = |v: &serde_json::Value| v.as_f64().is_some_and(|x| x > 0.0);
    for size in [8, 64, 4096, 1 << 20] {
        for mode in ["spin", "adaptive", "blocking"] {
            let r = find("shmring-spsc", Some(mode), size).unwrap_or_else(|| panic!("no {mode} row at {size}"));
            assert!(positive(&r["msgs_per_s"]) && positive(&r["mb_per_s"]), "{r}");
        }
        for t in ["unix-socket", "pipe"] {
            let r = find(t, None, size).unwrap_or_else(|| panic!("no {t} row at {size}"));
            assert!(positive(&r["msgs_per_s"]), "{r}");
        }
    }
    for mode in ["spin", "adaptive", "blocking"] {
        let r = find("shmring-spsc", Some(mode), 8).unwrap();
        let (p50, p999) = (r["rtt_p50_ns"].as_f64().unwrap(), r["rtt_p999_ns"].as_f64().unwrap());
        assert!(p50 > 0.0 && p999 >= p50, "{r}");
    }
    assert!(
        rows.iter()
            .any(|r| r["transport"] == "floor-cacheline" && positive(&r["rtt_p50_ns"]))
    );
    assert!(
        rows.iter()
            .any(|r| r["transport"] == "memcpy" && positive(&r["mb_per_s"]))
    );
    // The MPMC rows: the MPMC queue across processes and crossbeam's ArrayQueue in-process, in
    // each topology at 64 B, and the queue's blocking hand-off next to the ring's.
    for mode in ["1p1c", "2p2c", "4p4c"] {
        for t in ["shmring-mpmc", "crossbeam-arrayqueue"] {
            let r = find(t, Some(mode), 64).unwrap_or_else(|| panic!("no {t} {mode} row"));
            assert!(positive(&r["msgs_per_s"]) && positive(&r["mb_per_s"]), "{r}");
            assert!(r["rtt_p50_ns"].is_null(), "{r}");
        }
    }
    let r = find("shmring-mpmc", Some("blocking"), 8).expect("no shmring-mpmc blocking RTT row");
    let (p50, p999) = (r["rtt_p50_ns"].as_f64().unwrap(), r["rtt_p999_ns"].as_f64().unwrap());
    assert!(p50 > 0.0 && p999 >= p50 && r["msgs_per_s"].is_null(), "{r}");
    assert!(stdout.contains("targets (MPMC queue):"), "{stdout}");
    assert!(stdout.contains("crossbeam-arrayqueue 4p4c"), "{stdout}");
    // The lock rows: shmring's robust mutex and the pthread baselines, one thread alone
    // and two processes contending; Python's lock where python3 runs (else the table
    // says it was skipped, and no row is written).
    for t in ["shmring-mutex", "pthread-mutex", "pthread-robust"] {
        for mode in ["uncontended", "2proc"] {
            let r = find(t, Some(mode), 8).unwrap_or_else(|| panic!("no {t} {mode} row"));
            assert!(positive(&r["msgs_per_s"]) && r["mb_per_s"].is_null(), "{r}");
        }
    }
    let python = find("python-mp-lock", Some("uncontended"), 8);
    assert!(
        python.is_some_and(|r| positive(&r["msgs_per_s"])) || stdout.contains("python-mp-lock   skipped"),
        "{stdout}"
    );
    assert!(stdout.contains("targets (locks):"), "{stdout}");
    // The typed rows: a small typed message through shmring's pipe and queue and a Unix socket
    // (one write per message, and batched), all carrying the same 22 postcard bytes;
    // Python's multiprocessing.Pipe and Queue where python3 runs (else said skipped).
    // The pipe also received in place and in batches, the queue taken in place.
    for (t, mode) in [
        ("shmring-pipe", "typed"),
        ("shmring-pipe", "typed-borrowed"),
        ("shmring-pipe", "typed-batch"),
        ("shmring-queue", "typed"),
        ("shmring-queue", "typed-borrowed"),
        ("unix-socket", "typed"),
        ("unix-socket", "typed-batched"),
    ] {
        let r = find(t, Some(mode), 22).unwrap_or_else(|| panic!("no {t} {mode} row"));
        assert!(positive(&r["msgs_per_s"]) && positive(&r["mb_per_s"]), "{r}");
        assert!(r["rtt_p50_ns"].is_null(), "{r}");
    }
    for t in ["python-mp-pipe", "python-mp-queue"] {
        let row = find(t, Some("typed"), 22);
        assert!(
            row.is_some_and(|r| positive(&r["msgs_per_s"])) || stdout.contains(&format!("{t:<30} skipped")),
            "{t}: {stdout}"
        );
    }
    assert!(stdout.contains("targets (typed messages):"), "{stdout}");
    for target in [
        "shmring-pipe >= 10x unix-socket",
        "shmring-queue >= 10x unix-socket",
        "shmring-pipe >= 100x python-mp-pipe",
        "shmring-queue >= 100x python-mp-queue",
        "shmring-pipe/typed-batch >= 1x unix-socket/typed-batched",
        "shmring-pipe/typed-batch >= 100x python-mp-pipe",
        "shmring-queue/typed-borrowed >= 0.8x shmring-pipe/typed-batch",
        "shmring-queue/typed-borrowed >= 100x python-mp-queue",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(target) && ["[PASS]", "[FAIL]", "[SKIP]"].iter().any(|t| l.contains(t))),
            "no target line {target:?}: {stdout}"
        );
    }
    // The socket rows: the socket connection against a raw Unix socket, 64 B and 4 KiB.
    for t in ["shmring-socket", "unix-socket"] {
        for size in [64, 4096] {
            let r = find(t, Some("socket"), size).unwrap_or_else(|| panic!("no {t} socket row at {size}"));
            assert!(positive(&r["msgs_per_s"]) && positive(&r["mb_per_s"]), "{r}");
            assert!(r["rtt_p50_ns"].is_null(), "{r}");
        }
    }
    assert!(stdout.contains("targets (sockets):"), "{stdout}");
    for size in ["64 B", "4 KiB"] {
        let target = format!("socket msgs/s at {size}, shmring-socket >= 1/1.3 unix-socket");
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&target) && (l.contains("[PASS]") || l.contains("[FAIL]"))),
            "no target line {target:?}: {stdout}"
        );
    }
}

/// `shmring bench ARGS` of two short throughput runs while a thread of this process
/// keeps a CPU busy (so that every run shares the CPUs with other work); its stdout.
fn busy_bench(extra: &[&str]) -> String {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
    };
    let out = Command::new(env!("CARGO_BIN_EXE_shmring"))
        .args([
            "bench",
            "--quick",
            "--transports",
            "shmring,unix",
            "--modes",
            "adaptive",
            "--sizes",
            "64",
            "--measure",
            "throughput",
        ])
        .args(extra)
        .output()
        .expect("run shmring bench");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    spinner.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn bench_report_has_no_targets_by_default_and_one_line_of_disturbance() {
    let _dog = common::Watchdog::new("shmring bench report shape", Duration::from_secs(300));
    let stdout = busy_bench(&[]);
    // The table first: its two rows, with their ratio.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("shmring-spsc") && l.contains("1.00x")),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("unix-socket")), "{stdout}");
    for absent in ["targets (", "[FAIL]", "[PASS]", "[SKIP]", "issue"] {
        assert!(!stdout.contains(absent), "{absent:?} without --targets: {stdout}");
    }
    let notes: Vec<&str> = stdout.lines().filter(|l| l.contains("shared the CPUs")).collect();
    assert_eq!(notes.len(), 1, "one line about the busy CPUs: {stdout}");
    assert!(
        notes[0].contains(" of 2 runs") && notes[0].contains("--verbose lists them"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("throughput shmring-spsc/adaptive 64 B"),
        "the runs are listed only with --verbose: {stdout}"
    );

    let stdout = busy_bench(&["--verbose", "--targets"]);
    for run in ["throughput shmring-spsc/adaptive 64 B", "throughput unix-socket 64 B"] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(run)),
            "{run}: {stdout}"
        );
    }
    assert!(stdout.contains("targets (SPSC ring):"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("throughput 64 B, adaptive >= 15x unix-socket")),
        "{stdout}"
    );
    let table = stdout.find("unix-socket").unwrap();
    assert!(
        table < stdout.find("targets (").unwrap(),
        "the table comes first: {stdout}"
    );
}

#[test]
fn bench_broadcast_writes_the_promised_rows() {
    let _dog = common::Watchdog::new("shmring bench --transports broadcast", Duration::from_secs(300));
    let json = std::env::temp_dir().join(format!("shmring-bench-bcast-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_shmring"))
        .args([
            "bench",
            "--transports",
            "broadcast",
            "--modes",
            "adaptive",
            "--quick",
            "--rounds",
            "2000",
            "--warmup",
            "200",
            "--targets",
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("run shmring bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    let find = |t: &str, m: &str, size: u64| {
        rows.iter()
            .find(|r| r["transport"] == t && r["mode"] == m && r["size"] == size)
            .unwrap_or_else(|| panic!("no {t} {m} row at {size}: {rows:?}"))
    };
    let positive = |v: &serde_json::Value| v.as_f64().is_some_and(|x| x > 0.0);
    for size in [64, 4096] {
        let mut want = vec![];
        for m in [
            "lossless-1s",
            "lossless-2s",
            "lossless-4s",
            "overwrite-0s",
            "overwrite-4s",
        ] {
            want.push(("shmring-broadcast", m));
        }
        for m in ["1s", "2s", "4s"] {
            want.push(("fanout-spsc", m));
        }
        want.push(("unix-socket-fanout", "4s"));
        for (t, m) in want {
            let r = find(t, m, size);
            assert!(positive(&r["msgs_per_s"]) && positive(&r["mb_per_s"]), "{r}");
            assert!(r["rtt_p50_ns"].is_null(), "{r}");
        }
    }
    let r = find("shmring-broadcast", "rtt", 8);
    assert!(positive(&r["rtt_p50_ns"]) && r["msgs_per_s"].is_null(), "{r}");
    // The SPSC ring's round trip, the reference, is measured in the same run.
    assert!(positive(&find("shmring-spsc", "adaptive", 8)["rtt_p50_ns"]));
    assert!(stdout.contains("targets (broadcast ring):"), "{stdout}");
    assert!(stdout.contains("broadcast >= 2x fanout-spsc"), "{stdout}");
}
