//! The report of `shmring bench`: the rows (one per transport or kind, mode and size:
//! the table and the JSON output), the suites' own results, the warnings about the run's
//! CPUs, the target lines, and the units. This module knows rows, not suites: each
//! suite renders its own block and targets from them (see [`crate::suite::Suite`]).

use crate::machine::Interference;
use crate::stats::RttStats;
use serde::Serialize;
use std::any::Any;
use std::fmt::Write as _;

/// One row of the table and of the JSON array. Throughput and ping-pong results of the
/// same transport, mode and size share a row; `None` (JSON `null`): not measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// What was measured, as the suite names it: `shmring-spsc`, `unix-socket`, `pipe`,
    /// `shmring-mpmc`, `crossbeam-arrayqueue`, `floor-cacheline`, `memcpy`; the lock rows'
    /// locks; `shmring-pipe`, `shmring-queue`, `python-mp-pipe`, `python-mp-queue` (and
    /// `unix-socket`) for the typed-message rows; ...
    pub(crate) transport: &'static str,
    /// `spin`, `adaptive`, `blocking` (the wait strategy), or for the MPMC throughput
    /// rows `1p1c`, `2p2c`, `4p4c`; `typed` or `typed-batched` for the typed-message
    /// rows; ...; `None` for transports without modes.
    pub(crate) mode: Option<&'static str>,
    /// Message size in bytes.
    pub(crate) size: u64,
    /// Messages (memcpy: copies) per second.
    pub(crate) msgs_per_s: Option<f64>,
    /// Payload megabytes (10^6 bytes) per second.
    pub(crate) mb_per_s: Option<f64>,
    /// Median round-trip time.
    pub(crate) rtt_p50_ns: Option<u64>,
    /// 99th percentile round-trip time.
    pub(crate) rtt_p99_ns: Option<u64>,
    /// 99.9th percentile round-trip time.
    pub(crate) rtt_p999_ns: Option<u64>,
}

/// What a row's `msgs_per_s` counts, for the plot's panels (the JSON field keeps its
/// name for every row: it is a contract other tools read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateUnit {
    /// Messages (memcpy: copies) of `size` bytes: drawn against the size, with MB/s.
    Messages,
    /// Operations (lock+unlock pairs, dict calls): no size, no bytes.
    Operations,
}

/// The name of a row of the shared table, and where it sorts: rows sort by size, then
/// `order` (the suite's rank of the transport, then of the mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    /// [`Row::transport`].
    pub(crate) transport: &'static str,
    /// [`Row::mode`].
    pub(crate) mode: Option<&'static str>,
    /// [`Row::size`].
    pub(crate) size: u64,
    /// Rank of the transport, then of the mode, within a size.
    pub(crate) order: (usize, usize),
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub(crate) struct Results {
    /// The shared table: throughput and ping-pong results of the same transport, mode
    /// and size share a row; each with its sort order.
    rows: Vec<(Row, (usize, usize))>,
    /// Each suite's own results, by suite name.
    states: Vec<(&'static str, Box<dyn Any + Send>)>,
    /// Runs during which other processes or the hypervisor took CPU.
    disturbed: Vec<(String, Interference)>,
    /// The CPUs of the placement probe, and its round trip before and after each run.
    placements: Vec<(String, [usize; 2], [u64; 2])>,
}

/// A run whose placement probe is this much slower or faster than the run's median
/// overlapped another placement of the CPUs.
const FAR: f64 = 1.5;

impl Results {
    fn row(&mut self, k: Key) -> &mut Row {
        let i = match self
            .rows
            .iter()
            .position(|(r, _)| r.transport == k.transport && r.mode == k.mode && r.size == k.size)
        {
            Some(i) => i,
            None => {
                self.rows.push((
                    Row {
                        transport: k.transport,
                        mode: k.mode,
                        size: k.size,
                        msgs_per_s: None,
                        mb_per_s: None,
                        rtt_p50_ns: None,
                        rtt_p99_ns: None,
                        rtt_p999_ns: None,
                    },
                    k.order,
                ));
                self.rows.len() - 1
            }
        };
        &mut self.rows[i].0
    }

    /// Record a throughput measurement in the shared table.
    pub(crate) fn throughput(&mut self, k: Key, msgs_per_s: f64) {
        let r = self.row(k);
        r.msgs_per_s = Some(msgs_per_s);
        r.mb_per_s = Some(msgs_per_s * k.size as f64 / 1e6);
    }

    /// Record a ping-pong measurement in the shared table.
    pub(crate) fn latency(&mut self, k: Key, s: &RttStats) {
        let r = self.row(k);
        r.rtt_p50_ns = Some(s.p50_ns);
        r.rtt_p99_ns = Some(s.p99_ns);
        r.rtt_p999_ns = Some(s.p999_ns);
    }

    /// Record that the run `label` shared the machine.
    pub(crate) fn disturbed(&mut self, label: String, i: Interference) {
        self.disturbed.push((label, i));
    }

    /// Record the placement probe's round trips (ns) before and after the run `label`.
    pub(crate) fn placement(&mut self, label: String, cpus: [usize; 2], rtt: [u64; 2]) {
        self.placements.push((label, cpus, rtt));
    }

    /// The results of the suite `suite`, made on first use.
    pub(crate) fn state<T: Default + Any + Send>(&mut self, suite: &'static str) -> &mut T {
        let i = match self.states.iter().position(|(n, s)| *n == suite && s.is::<T>()) {
            Some(i) => i,
            None => {
                self.states.push((suite, Box::new(T::default())));
                self.states.len() - 1
            }
        };
        self.states[i].1.downcast_mut().expect("the type was checked")
    }

    /// The results of the suite `suite`, if it recorded any.
    pub(crate) fn state_ref<T: Any>(&self, suite: &'static str) -> Option<&T> {
        self.states
            .iter()
            .filter(|(n, _)| *n == suite)
            .find_map(|(_, s)| s.downcast_ref())
    }

    /// The rows of the shared table, sorted by size, then transport, then mode.
    pub(crate) fn rows(&self) -> Vec<Row> {
        let mut rows = self.rows.clone();
        rows.sort_by_key(|(r, order)| (r.size, *order));
        rows.into_iter().map(|(r, _)| r).collect()
    }

    /// The shared table's row of `transport`, `mode` and `size`.
    pub(crate) fn find(&self, transport: &str, mode: Option<&str>, size: u64) -> Option<&Row> {
        self.rows
            .iter()
            .map(|(r, _)| r)
            .find(|r| r.transport == transport && r.mode == mode && r.size == size)
    }

    /// Whether the shared table has a row of `transport` with `mode`.
    pub(crate) fn has(&self, transport: &str, mode: Option<&str>) -> bool {
        self.rows
            .iter()
            .any(|(r, _)| r.transport == transport && r.mode == mode)
    }

    /// The runs (of `total`) that shared the CPUs with other work, if any: one line
    /// (how many, and how much the others took), and with `verbose` one line per run.
    pub(crate) fn render_disturbed(&self, out: &mut String, total: usize, verbose: bool) {
        if self.disturbed.is_empty() {
            return;
        }
        let range = |f: fn(&Interference) -> f64| {
            let v = self.disturbed.iter().map(|(_, i)| f(i));
            let (lo, hi) = v.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
            if (hi - lo).abs() < 0.005 {
                format!("{hi:.2}")
            } else {
                format!("{lo:.2}-{hi:.2}")
            }
        };
        let steal = if self.disturbed.iter().any(|(_, i)| i.steal >= 0.005) {
            format!(", the hypervisor {} cores", range(|i| i.steal))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "\nnote: {} of {} runs shared the CPUs with other work (others took {} cores on average{steal}), \
             so some numbers may be low{}",
            self.disturbed.len(),
            total.max(self.disturbed.len()),
            range(|i| i.foreign),
            if verbose { ":" } else { "; --verbose lists them" }
        );
        if verbose {
            for (label, i) in &self.disturbed {
                let _ = writeln!(out, "  {label:<48} {:.2} / {:.2}", i.foreign, i.steal);
            }
        }
    }

    /// The placement probe's summary, and the runs that overlapped a placement unlike
    /// most of the run's (a probe outside [median / 1.5, median x 1.5]): one line, and
    /// with `verbose` one line per run. Returns how many runs were flagged.
    pub(crate) fn render_placements(&self, out: &mut String, verbose: bool) -> usize {
        let Some((_, cpus, _)) = self.placements.first() else {
            return 0;
        };
        let mut all: Vec<u64> = self.placements.iter().flat_map(|(_, _, r)| *r).collect();
        all.sort_unstable();
        let median = all[all.len() / 2] as f64;
        let _ = writeln!(
            out,
            "\nplacement probe (cache-line round trip between CPUs {} and {}, before and after each run): \
             median {}, range {}..{}",
            cpus[0],
            cpus[1],
            ns(median as u64),
            ns(all[0]),
            ns(all[all.len() - 1])
        );
        let odd = |v: u64| v as f64 > FAR * median || (v as f64) * FAR < median;
        let flagged: Vec<_> = self
            .placements
            .iter()
            .filter(|(_, _, r)| r.iter().any(|&v| odd(v)))
            .collect();
        if !flagged.is_empty() {
            let _ = writeln!(
                out,
                "note: {} run(s) overlapped a time when the CPUs were placed unlike most of this run \
                 (probe outside {FAR}x of the median; a hypervisor moving virtual CPUs does this), \
                 so they compare poorly with the others{}",
                flagged.len(),
                if verbose { ":" } else { "; --verbose lists them" }
            );
            if verbose {
                for (label, _, r) in &flagged {
                    let _ = writeln!(out, "  {label:<48} probe {} / {}", ns(r[0]), ns(r[1]));
                }
            }
        }
        flagged.len()
    }
}

/// One PASS / FAIL line, or SKIP when the data is missing (`pass: None`).
#[derive(Debug, Clone)]
pub(crate) struct OptTarget {
    /// What is required.
    pub(crate) what: String,
    /// The measured ratio, or why it is missing.
    pub(crate) measured: String,
    /// `None`: not measured.
    pub(crate) pass: Option<bool>,
}

/// Print a targets block (nothing if there is no target): `targets (title):`, one
/// `[PASS]` / `[FAIL]` / `[SKIP]` line per target, and a warning when the runs mixed CPU
/// placements (`far` of them were flagged).
pub(crate) fn render_target_lines(out: &mut String, title: &str, targets: &[OptTarget], far: usize) {
    if targets.is_empty() {
        return;
    }
    let _ = writeln!(out, "\ntargets ({title}):");
    for OptTarget { what, measured, pass } in targets {
        let tag = match pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "SKIP",
        };
        let _ = writeln!(out, "  [{tag}] {what:<58} {measured}");
    }
    if far > 0 {
        let _ = writeln!(
            out,
            "  (ratios mix placements: {far} run(s) flagged above; rerun to compare)"
        );
    }
}

/// One performance target and how this run did.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// What is required.
    pub(crate) what: String,
    /// The measured ratio or value.
    pub(crate) measured: String,
    /// Whether the requirement is met.
    pub(crate) pass: bool,
}

impl Target {
    /// `v` must be at least `want` (a ratio).
    pub(crate) fn at_least(what: String, v: f64, want: f64) -> Self {
        Target {
            what,
            measured: format!("{v:.2}x"),
            pass: v >= want,
        }
    }
    /// `v` must be at most `want` (a ratio).
    pub(crate) fn at_most(what: &str, v: f64, want: f64) -> Self {
        Target {
            what: what.into(),
            measured: format!("{v:.2}x"),
            pass: v <= want,
        }
    }
}

impl From<Target> for OptTarget {
    fn from(t: Target) -> Self {
        OptTarget {
            what: t.what,
            measured: t.measured,
            pass: Some(t.pass),
        }
    }
}

/// `123x`, `12.3x`, `1.23x`.
pub(crate) fn ratio(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}x")
    } else if v >= 10.0 {
        format!("{v:.1}x")
    } else {
        format!("{v:.2}x")
    }
}

/// `31.25M`, `812.4k`, `950`.
pub(crate) fn rate(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// `245 ns`, `12.3 us`, `1.20 ms`.
pub(crate) fn ns(v: u64) -> String {
    if v < 10_000 {
        format!("{v} ns")
    } else if v < 10_000_000 {
        format!("{:.1} us", v as f64 / 1e3)
    } else {
        format!("{:.2} ms", v as f64 / 1e6)
    }
}

/// `8 B`, `4 KiB`, `1 MiB`, `1000 B`.
pub(crate) fn size(v: u64) -> String {
    if v >= 1 << 20 && v % (1 << 20) == 0 {
        format!("{} MiB", v >> 20)
    } else if v >= 1 << 10 && v % (1 << 10) == 0 {
        format!("{} KiB", v >> 10)
    } else {
        format!("{v} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_merge_and_sort_and_serialize_with_nulls() {
        let mut r = Results::default();
        let key = |transport, mode, order| Key {
            transport,
            mode,
            size: 8,
            order,
        };
        r.throughput(key("unix-socket", None, (1, 0)), 1e6);
        r.throughput(key("shmring-spsc", Some("adaptive"), (0, 1)), 40e6);
        r.latency(
            key("shmring-spsc", Some("adaptive"), (0, 1)),
            &RttStats {
                rounds: 1,
                p50_ns: 300,
                p99_ns: 400,
                p999_ns: 900,
                max_ns: 1000,
            },
        );
        let rows = r.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].transport, "shmring-spsc");
        assert_eq!(rows[0].rtt_p50_ns, Some(300));
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(json[1]["mode"], serde_json::Value::Null);
        assert_eq!(json[1]["rtt_p50_ns"], serde_json::Value::Null);
        assert_eq!(json[1]["mb_per_s"], 8.0);
        let keys: Vec<_> = json[0].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 8);
        assert!(r.has("shmring-spsc", Some("adaptive")) && !r.has("pipe", None));
    }

    #[test]
    fn suites_keep_their_own_results() {
        let mut r = Results::default();
        r.state::<Vec<u32>>("a").push(1);
        r.state::<Vec<u32>>("a").push(2);
        r.state::<Vec<u32>>("b").push(3);
        assert_eq!(r.state_ref::<Vec<u32>>("a"), Some(&vec![1, 2]));
        assert_eq!(r.state_ref::<Vec<u32>>("b"), Some(&vec![3]));
        assert_eq!(r.state_ref::<Vec<u32>>("c"), None);
    }

    #[test]
    fn units() {
        assert_eq!(size(8), "8 B");
        assert_eq!(size(4096), "4 KiB");
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(1000), "1000 B");
        assert_eq!(ns(245), "245 ns");
        assert_eq!(ns(12_300), "12.3 us");
        assert_eq!(rate(31_250_000.0), "31.25M");
    }
}
