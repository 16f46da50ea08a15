//! `shmring bench`, the orchestrator: it checks the flags, asks every suite of the
//! registry ([`crate::suites::SUITES`]) for its steps, runs them one after the other
//! (watching what else used the CPUs meanwhile), and prints the report: each suite's
//! block, one line each about the CPUs the run shared, and with `--targets` each suite's
//! targets; `--json` writes the rows, `--plot` draws them. It knows no suite: what a step measures, how its
//! children serve it and how its rows read is in the suite's file.
//!
//! Every measurement between processes runs in fresh child processes (see
//! [`crate::peer`]): the parent only makes the links, starts the children together,
//! and collects their reports. [`peer_main`] is the children's entry point: it hands
//! the job to the suite it names.

use crate::args::{BenchArgs, Measure};
use crate::machine::{self, CpuSnapshot};
use crate::peer::{self, PeerArgs};
use crate::reference;
use crate::report::{RateUnit, Results, Row, render_target_lines};
use crate::suite::{Ctx, Step};
use crate::suites::{self, SUITES};
use crate::{Result, err};
use std::io::Write as _;
use std::time::{Duration, Instant};

/// The run's steps, in order: every suite's, stably sorted by phase and rank (the
/// physical references, round trips, throughput, idle consumers, then the suites of
/// their own: locks, typed messages, sockets, manager).
fn steps(a: &BenchArgs) -> Vec<Step> {
    let mut out: Vec<Step> = SUITES.iter().flat_map(|s| s.steps(a)).collect();
    out.sort_by_key(|s| s.order);
    out
}

/// Entry point of `shmring bench`.
pub fn run(mut a: BenchArgs) -> Result<()> {
    if a.quick {
        a.duration = Duration::from_millis(100);
        a.rounds = 20_000;
        a.warmup = 2_000;
        a.idle = Duration::from_millis(250);
    }
    if let Some(pin) = a.pin_arg {
        a.pin = pin.cpus(&reference::allowed_cpus()).map_err(err)?.to_vec();
    }
    check(&a)?;
    crate::transports::set_mlock(a.mlock);
    let steps = steps(&a);
    if steps.is_empty() {
        return Err(err("nothing to measure with these --transports and --measure"));
    }
    let mut header = machine::header();
    if let (Some(pin), &[a0, a1]) = (a.pin_arg, &a.pin[..]) {
        header.push_str(&format!("; pinned: {}", pin.describe([a0, a1])));
    }
    if a.mlock {
        header.push_str("; rings mlocked");
    }
    eprintln!("{header}");
    let started = Instant::now();
    let mut results = Results::default();
    let cpus = reference::probe_cpus(&a.pin);
    let probe = || cpus.and_then(reference::cpu_probe);
    let mut probe_before = probe();
    for (i, step) in steps.iter().enumerate() {
        eprint!("[{:>2}/{}] {:<48}", i + 1, steps.len(), step.label);
        let _ = std::io::stderr().flush();
        let t0 = Instant::now();
        let before = CpuSnapshot::now();
        let mut ctx = Ctx {
            args: &a,
            results: &mut results,
        };
        let summary = step.run(&mut ctx).map_err(|e| {
            eprintln!(" failed");
            err(format!("{}: {e}", step.label))
        })?;
        let mut note = String::new();
        if let (Some(b), Some(now)) = (before, CpuSnapshot::now()) {
            let i = b.interference(&now);
            if i.disturbing() {
                note = format!(
                    "  [disturbed: others used {:.2} cores, steal {:.2}]",
                    i.foreign, i.steal
                );
                results.disturbed(step.label.clone(), i);
            }
        }
        let elapsed = t0.elapsed();
        let probe_after = probe();
        if let (Some(cpus), Some(b), Some(af)) = (cpus, probe_before, probe_after) {
            note = format!("  [cpu probe {b}/{af} ns]{note}");
            results.placement(step.label.clone(), cpus, [b, af]);
        }
        probe_before = probe_after;
        eprintln!(" {summary}  ({:.2} s){note}", elapsed.as_secs_f64());
    }
    eprintln!("done in {:.1} s\n", started.elapsed().as_secs_f64());
    print!("{}", render(&results, &header, &a, steps.len()));
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&json_rows(&results))?;
        std::fs::write(path, text + "\n").map_err(|e| err(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &a.plot {
        crate::plot::plot(&plot_rows(&results), path)?;
        eprintln!("drew {}", path.display());
    }
    Ok(())
}

/// Entry point of the hidden `__bench-peer` subcommand: serve the role of the suite the
/// job names.
pub fn peer_main(args: PeerArgs) -> Result<()> {
    peer::child_main(args, |spec, fds| {
        suites::find(&spec.suite)
            .ok_or_else(|| err(format!("no bench suite is named {:?}", spec.suite)))?
            .serve(spec, fds)
    })
}

/// The report: the header, each suite's block (the tables and their ratios), one line
/// about the CPUs the run shared (`--verbose`: the runs), and with `--targets` each
/// suite's targets. `total`: the number of runs.
fn render(r: &Results, header: &str, a: &BenchArgs, total: usize) -> String {
    let mut out = format!("{header}\n");
    for s in SUITES {
        s.render(r, &mut out);
    }
    r.render_disturbed(&mut out, total, a.verbose);
    let far = r.render_placements(&mut out, a.verbose);
    if a.targets {
        for s in SUITES {
            if let Some((title, targets)) = s.targets(r) {
                render_target_lines(&mut out, title, &targets, far);
            }
        }
    }
    out
}

/// The rows of the JSON output: the shared table's, then each suite's own.
fn json_rows(r: &Results) -> Vec<Row> {
    let mut rows = r.rows();
    for s in SUITES {
        rows.extend(s.json_rows(r));
    }
    rows
}

/// The rows `--plot` draws, each with what its `msgs_per_s` counts: the shared table's
/// (messages), then each suite's.
fn plot_rows(r: &Results) -> Vec<(Row, RateUnit)> {
    let mut rows: Vec<(Row, RateUnit)> = r.rows().into_iter().map(|row| (row, RateUnit::Messages)).collect();
    for s in SUITES {
        rows.extend(s.plot_rows(r));
    }
    rows
}

/// Refuse flags that cannot run, before anything runs.
fn check(a: &BenchArgs) -> Result<()> {
    for (flag, path) in [("--json", &a.json), ("--plot", &a.plot)] {
        if let Some(p) = path {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if !dir.is_dir() {
                return Err(err(format!(
                    "{flag} {}: directory {} does not exist",
                    p.display(),
                    dir.display()
                )));
            }
        }
    }
    if !a.pin.is_empty() && a.pin.len() != 2 {
        return Err(err("--pin takes two CPUs, e.g. --pin 0,1"));
    }
    if a.measures(Measure::Latency) && a.rounds == 0 {
        return Err(err("--rounds must be at least 1"));
    }
    for &s in &a.sizes {
        if s == 0 || s > 1 << 30 {
            return Err(err(format!("message size {s} is outside 1 B..=1 GiB")));
        }
    }
    SUITES.iter().try_for_each(|s| s.check(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{LockKind, Topology, VocabKind};
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        a: BenchArgs,
    }

    #[test]
    fn default_plan_covers_every_suite() {
        let t = T::parse_from(["bench"]);
        let s = steps(&t.a);
        let labels: Vec<String> = s.iter().map(|s| s.label.clone()).collect();
        // 4 sizes x (3 ring modes + unix + pipe), the reference ring at 8 and 64 B,
        // 6 latencies (the reference ring's included) + floor, memcpy, 3 idles,
        // 3 MPMC topologies x (queue + crossbeam), the queue's blocking latency, the two
        // lock steps, the typed step, the socket step, the manager step (last); the
        // broadcast rows in adaptive and blocking mode: 2 round trips, per mode and size
        // 5 ring rows and 3 SPSC fan-outs, and the socket fan-out once per size.
        assert_eq!(
            s.len(),
            20 + 2 + 7 + 1 + 3 + 6 + 1 + 2 + 1 + 1 + 1 + 2 + 2 * 2 * 8 + 2,
            "{labels:?}"
        );
        assert!(
            labels.iter().any(|l| l == "throughput ref-ring/spin 64 B"),
            "{labels:?}"
        );
        assert!(
            !labels.iter().any(|l| l == "throughput ref-ring/spin 4 KiB"),
            "{labels:?}"
        );
        assert_eq!(
            labels[labels.len() - 5..labels.len() - 3],
            ["locks uncontended", "locks 2proc"]
        );
        assert_eq!(s[s.len() - 3].suite, "typed", "{labels:?}");
        assert_eq!(s[s.len() - 2].suite, "sockets", "{labels:?}");
        assert_eq!(s[s.len() - 1].suite, "manager", "{labels:?}");
        assert_eq!(suites::locks::lock_kinds(&t.a), LockKind::ALL);
        assert_eq!(suites::typed::vocab_kinds(&t.a), VocabKind::ALL);
        assert!(labels.contains(&"throughput shmring-spsc/adaptive 1 MiB".to_string()));
        assert!(labels.contains(&"latency unix-socket".to_string()));
        assert!(labels.contains(&"latency shmring-mpmc/blocking".to_string()));
        for t in ["1p1c", "2p2c", "4p4c"] {
            assert!(
                labels.contains(&format!("throughput shmring-mpmc {t} 64 B")),
                "{labels:?}"
            );
            assert!(labels.contains(&format!("throughput crossbeam-arrayqueue {t} 64 B")));
        }
        assert_eq!(
            suites::mpmc_queue::mpmc_count(&t.a, Topology::P4C4),
            suites::mpmc_queue::MPMC_MESSAGES / 4
        );
        assert!(check(&t.a).is_ok());
        assert_eq!(t.a.capacity_for(1 << 20), 8 << 20);
        assert_eq!(t.a.capacity_for(64), 1 << 20);
    }

    #[test]
    fn targets_only_with_the_flag_and_one_line_of_disturbance() {
        use crate::machine::Interference;
        use crate::report::Key;
        let mut r = Results::default();
        let key = |transport, mode| Key {
            transport,
            mode,
            size: 64,
            order: (0, 0),
        };
        r.throughput(key("shmring-spsc", Some("adaptive")), 1e6);
        r.throughput(key("unix-socket", None), 1e6);
        for i in 0..5 {
            r.disturbed(format!("run {i}"), Interference::of(0.5 + i as f64 / 10.0, 0.0));
        }
        let plain = T::parse_from(["bench"]);
        let text = render(&r, "header", &plain.a, 9);
        assert!(!text.contains("targets (") && !text.contains("[FAIL]"), "{text}");
        assert!(!text.contains("issue"), "{text}");
        let notes: Vec<&str> = text.lines().filter(|l| l.contains("shared the CPUs")).collect();
        assert_eq!(notes.len(), 1, "{text}");
        assert!(
            notes[0].contains("5 of 9 runs")
                && notes[0].contains("0.50-0.90 cores")
                && notes[0].ends_with("--verbose lists them"),
            "{text}"
        );
        assert!(
            !text.contains("run 3"),
            "the runs are listed only with --verbose: {text}"
        );
        // The table comes first.
        assert!(
            text.find("shmring-spsc").unwrap() < text.find("shared the CPUs").unwrap(),
            "{text}"
        );
        let all = T::parse_from(["bench", "--targets", "--verbose"]);
        let text = render(&r, "header", &all.a, 9);
        assert!(
            text.contains("targets (SPSC ring):")
                && text.contains("[FAIL] throughput 64 B, adaptive >= 15x unix-socket"),
            "{text}"
        );
        assert!((0..5).all(|i| text.contains(&format!("run {i}"))), "{text}");
        assert!(
            text.find("shared the CPUs").unwrap() < text.find("targets (").unwrap(),
            "{text}"
        );
    }

    #[test]
    fn selections_narrow_the_plan() {
        let t = T::parse_from(["bench", "--transports", "shmring", "--modes", "spin", "--sizes", "64"]);
        let labels: Vec<String> = steps(&t.a).iter().map(|s| s.label.clone()).collect();
        assert_eq!(
            labels,
            [
                "latency shmring-spsc/spin",
                "throughput shmring-spsc/spin 64 B",
                "idle consumer shmring-spsc/spin"
            ]
        );
        let t = T::parse_from(["bench", "--sizes", "2M", "--capacity", "1M"]);
        assert!(check(&t.a).is_err());
        let t = T::parse_from([
            "bench",
            "--transports",
            "shmring-mpmc,crossbeam",
            "--mpmc-modes",
            "2p2c",
            "--count",
            "1000",
        ]);
        let labels: Vec<String> = steps(&t.a).iter().map(|s| s.label.clone()).collect();
        assert_eq!(
            labels,
            [
                "latency shmring-mpmc/blocking",
                "throughput crossbeam-arrayqueue 2p2c 64 B",
                "throughput shmring-mpmc 2p2c 64 B"
            ]
        );
        assert_eq!(suites::mpmc_queue::mpmc_count(&t.a, Topology::P2C2), 1000);
        let t = T::parse_from([
            "bench",
            "--transports",
            "lock",
            "--locks",
            "python-mp-lock,shmring",
            "--lock-modes",
            "contended",
        ]);
        let labels: Vec<String> = steps(&t.a).iter().map(|s| s.label.clone()).collect();
        assert_eq!(labels, ["locks 2proc"]);
        assert_eq!(suites::locks::lock_kinds(&t.a), [LockKind::Shmring, LockKind::Python]);
        let t = T::parse_from([
            "bench",
            "--transports",
            "typed",
            "--vocab",
            "python-mp-queue,shmring-pipe,unix-socket,shmring-pipe",
        ]);
        assert_eq!(steps(&t.a).len(), 1);
        assert_eq!(
            suites::typed::vocab_kinds(&t.a),
            [VocabKind::Pipe, VocabKind::Unix, VocabKind::PythonQueue]
        );
        let t = T::parse_from(["bench", "--transports", "vocab", "--measure", "latency"]);
        assert!(steps(&t.a).is_empty(), "the typed rows are throughput");
    }
}
