//! Results of `shmring bench`: one row per (transport, mode, size), the table, the
//! checks against the issue's targets, and the JSON output.

use super::lock::LockResults;
use super::machine::Interference;
use super::manager::ManagerResults;
use super::mpmc::Topology;
use super::net::NetResults;
use super::peer::RttStats;
use super::transports::{ARRAYQUEUE, Mode, PIPE, SHMRING, SHMRING_MPMC, UNIX_SOCKET};
use super::vocab::VocabResults;
use serde::Serialize;
use std::fmt::Write as _;

/// Name of the cache-line ping-pong floor's row.
pub(crate) const FLOOR: &str = "floor-cacheline";
/// Name of the memcpy reference's row.
pub(crate) const MEMCPY: &str = "memcpy";

/// One row of the table and of the JSON array. Throughput and ping-pong results of the
/// same transport, mode and size share a row; `None` (JSON `null`): not measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// `shmring-spsc`, `unix-socket`, `pipe`, `shmring-mpmc`, `crossbeam-arrayqueue`,
    /// `floor-cacheline`, `memcpy`; the lock rows' locks; `shmring-pipe`,
    /// `shmring-queue`, `python-mp-pipe`, `python-mp-queue` (and `unix-socket`) for the
    /// typed-message rows.
    pub(crate) transport: &'static str,
    /// `spin`, `adaptive`, `blocking` (the wait strategy), or for the MPMC throughput
    /// rows `1p1c`, `2p2c`, `4p4c`; `typed` or `typed-batched` for the typed-message
    /// rows; `None` for transports without modes.
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

/// Everything one run measured.
#[derive(Debug, Default)]
pub(crate) struct Results {
    rows: Vec<Row>,
    /// CPU use of an idle consumer, percent of one core, per mode.
    idle: Vec<(Mode, f64)>,
    /// Runs during which other processes or the hypervisor took CPU.
    disturbed: Vec<(String, Interference)>,
    /// The CPUs of the placement probe, and its round trip before and after each run.
    placements: Vec<(String, [usize; 2], [u64; 2])>,
    /// The lock rows (kept apart from the table of the transports).
    locks: LockResults,
    /// The typed-message rows (kept apart too).
    vocab: VocabResults,
    /// The socket rows (kept apart too).
    net: NetResults,
    /// The manager rows (kept apart too).
    manager: ManagerResults,
}

/// A run whose placement probe is this much slower or faster than the run's median
/// overlapped another placement of the CPUs.
const FAR: f64 = 1.5;

/// The mode whose shmring rows are the reference of the ratio columns.
const REF_MODES: [Mode; 3] = [Mode::Adaptive, Mode::Spin, Mode::Blocking];

fn transport_order(t: &str) -> usize {
    [SHMRING, UNIX_SOCKET, PIPE, SHMRING_MPMC, ARRAYQUEUE, FLOOR, MEMCPY]
        .iter()
        .position(|&n| n == t)
        .unwrap_or(usize::MAX)
}

fn mode_order(m: Option<&str>) -> usize {
    let names = REF_MODES
        .iter()
        .map(|r| r.name())
        .chain(Topology::ALL.iter().map(|t| t.name()));
    match m {
        None => 0,
        Some(m) => 1 + names.into_iter().position(|r| r == m).unwrap_or(99),
    }
}

impl Results {
    fn row(&mut self, transport: &'static str, mode: Option<&'static str>, size: usize) -> &mut Row {
        let i = match self
            .rows
            .iter()
            .position(|r| r.transport == transport && r.mode == mode && r.size == size as u64)
        {
            Some(i) => i,
            None => {
                self.rows.push(Row {
                    transport,
                    mode,
                    size: size as u64,
                    msgs_per_s: None,
                    mb_per_s: None,
                    rtt_p50_ns: None,
                    rtt_p99_ns: None,
                    rtt_p999_ns: None,
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[i]
    }

    /// Record a throughput measurement (`mode`: a [`Mode`] or a [`Topology`] name).
    pub(crate) fn throughput(
        &mut self,
        transport: &'static str,
        mode: Option<&'static str>,
        size: usize,
        msgs_per_s: f64,
    ) {
        let r = self.row(transport, mode, size);
        r.msgs_per_s = Some(msgs_per_s);
        r.mb_per_s = Some(msgs_per_s * size as f64 / 1e6);
    }

    /// Record a ping-pong measurement.
    pub(crate) fn latency(&mut self, transport: &'static str, mode: Option<&'static str>, size: usize, s: &RttStats) {
        let r = self.row(transport, mode, size);
        r.rtt_p50_ns = Some(s.p50_ns);
        r.rtt_p99_ns = Some(s.p99_ns);
        r.rtt_p999_ns = Some(s.p999_ns);
    }

    /// Record the idle consumer's CPU use.
    pub(crate) fn idle(&mut self, mode: Mode, percent: f64) {
        self.idle.push((mode, percent));
    }

    /// Record that the run `label` shared the machine.
    pub(crate) fn disturbed(&mut self, label: String, i: Interference) {
        self.disturbed.push((label, i));
    }

    /// Record the placement probe's round trips (ns) before and after the run `label`.
    pub(crate) fn placement(&mut self, label: String, cpus: [usize; 2], rtt: [u64; 2]) {
        self.placements.push((label, cpus, rtt));
    }

    /// The lock rows' results.
    pub(crate) fn locks(&mut self) -> &mut LockResults {
        &mut self.locks
    }

    /// The typed-message rows' results.
    pub(crate) fn vocab(&mut self) -> &mut VocabResults {
        &mut self.vocab
    }

    /// The socket rows' results.
    pub(crate) fn net(&mut self) -> &mut NetResults {
        &mut self.net
    }

    /// The manager rows' results.
    pub(crate) fn manager(&mut self) -> &mut ManagerResults {
        &mut self.manager
    }

    /// The rows of the JSON output: the table's, then the lock rows, then the typed
    /// rows, then the socket rows.
    pub(crate) fn json_rows(&self) -> Vec<Row> {
        let mut rows = self.rows();
        rows.extend(self.locks.rows());
        rows.extend(self.vocab.rows());
        rows.extend(self.net.rows());
        rows
    }

    /// The rows, sorted by size, then transport, then mode.
    pub(crate) fn rows(&self) -> Vec<Row> {
        let mut rows = self.rows.clone();
        rows.sort_by_key(|r| (r.size, transport_order(r.transport), mode_order(r.mode)));
        rows
    }

    fn find(&self, transport: &str, mode: Option<&str>, size: u64) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.transport == transport && r.mode == mode && r.size == size)
    }

    /// The mode whose rows the ratio columns compare to: adaptive (the default), or
    /// the first of spin, blocking that was measured.
    fn ref_mode(&self) -> Option<Mode> {
        REF_MODES.iter().copied().find(|m| {
            self.rows
                .iter()
                .any(|r| r.transport == SHMRING && r.mode == Some(m.name()))
        })
    }

    /// `pick` of the reference mode's shmring row at `size`.
    fn reference<T>(&self, size: u64, pick: impl Fn(&Row) -> Option<T>) -> Option<T> {
        self.find(SHMRING, self.ref_mode().map(Mode::name), size).and_then(pick)
    }

    /// The table, the idle CPU lines and the target checks.
    pub(crate) fn render(&self, header: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{header}");
        self.render_table(&mut out);
        if !self.idle.is_empty() {
            let _ = writeln!(
                out,
                "\nidle consumer (blocked in recv_timeout, no messages), CPU time / wall time:"
            );
            for (m, pct) in &self.idle {
                let _ = writeln!(out, "  shmring-spsc {:<9} {pct:6.2}% of a core", m.name());
            }
        }
        if !self.disturbed.is_empty() {
            let _ = writeln!(
                out,
                "\nwarning: {} run(s) shared the CPUs with other work (average cores taken by others / stolen):",
                self.disturbed.len()
            );
            for (label, i) in &self.disturbed {
                let _ = writeln!(out, "  {label:<48} {:.2} / {:.2}", i.foreign, i.steal);
            }
        }
        self.render_mpmc(&mut out);
        self.locks.render(&mut out);
        self.vocab.render(&mut out);
        self.net.render(&mut out);
        self.manager.render(&mut out);
        let far = self.render_placements(&mut out);
        for (issue, targets) in [(2, self.targets()), (3, self.mpmc_targets())] {
            if targets.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\ntargets (issue {issue}):");
            for t in targets {
                let _ = writeln!(
                    out,
                    "  [{}] {:<58} {}",
                    if t.pass { "PASS" } else { "FAIL" },
                    t.what,
                    t.measured
                );
            }
            if far > 0 {
                let _ = writeln!(
                    out,
                    "  (ratios mix placements: {far} run(s) flagged above; rerun to compare)"
                );
            }
        }
        self.locks.render_targets(&mut out, far);
        self.vocab.render_targets(&mut out, far);
        self.net.render_targets(&mut out, far);
        self.manager.render_targets(&mut out, far);
        out
    }

    /// The table of the transports (nothing if only the lock rows ran).
    fn render_table(&self, out: &mut String) {
        if self.rows.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "x shm = ratio to shmring-spsc in {} mode at the same size:\n\
             throughput x = shmring / row, latency x = row p50 / shmring p50 (> 1: shmring is better).\n\
             RTT: {} B message there and back, from the initiator's clock. MB = 10^6 bytes of payload.\n",
            self.ref_mode().map_or("-", Mode::name),
            super::bench::PING_SIZE
        );
        let _ = writeln!(
            out,
            "{:<20} {:<9} {:>7} {:>10} {:>10} {:>7} | {:>9} {:>9} {:>9} {:>7}",
            "transport", "mode", "size", "msgs/s", "MB/s", "x shm", "RTT p50", "p99", "p99.9", "x shm"
        );
        let _ = writeln!(out, "{}", "-".repeat(110));
        let mut last_size = None;
        for r in self.rows() {
            if last_size.is_some_and(|s| s != r.size) {
                let _ = writeln!(out);
            }
            last_size = Some(r.size);
            let tput_ref = self.reference(r.size, |x| x.mb_per_s);
            let rtt_ref = self.reference(r.size, |x| x.rtt_p50_ns);
            let tput_x = match (tput_ref, r.mb_per_s) {
                (Some(s), Some(v)) if v > 0.0 => ratio(s / v),
                _ => "-".into(),
            };
            let rtt_x = match (rtt_ref, r.rtt_p50_ns) {
                (Some(s), Some(v)) if s > 0 => ratio(v as f64 / s as f64),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "{:<20} {:<9} {:>7} {:>10} {:>10} {:>7} | {:>9} {:>9} {:>9} {:>7}",
                r.transport,
                r.mode.unwrap_or("-"),
                size(r.size),
                r.msgs_per_s.map_or("-".into(), rate),
                r.mb_per_s.map_or("-".into(), |v| format!("{v:.1}")),
                tput_x,
                r.rtt_p50_ns.map_or("-".into(), ns),
                r.rtt_p99_ns.map_or("-".into(), ns),
                r.rtt_p999_ns.map_or("-".into(), ns),
                rtt_x,
            );
        }
    }

    /// The MPMC comparisons: each topology's queue rows against crossbeam's, and the
    /// queue's blocking hand-off against the SPSC ring's.
    fn render_mpmc(&self, out: &mut String) {
        let size = super::mpmc::MSG_SIZE as u64;
        let tput = |t: &str, m: &str| self.find(t, Some(m), size).and_then(|r| r.msgs_per_s);
        let mut lines = Vec::new();
        for topo in Topology::ALL {
            let (q, c) = (tput(SHMRING_MPMC, topo.name()), tput(ARRAYQUEUE, topo.name()));
            if q.is_none() && c.is_none() {
                continue;
            }
            let x = match (q, c) {
                (Some(q), Some(c)) if c > 0.0 => ratio(q / c),
                _ => "-".into(),
            };
            let show = |v: Option<f64>| v.map_or("-".into(), rate);
            lines.push(format!("  {:<9} {:>10} {:>10} {:>7}", topo.name(), show(q), show(c), x));
        }
        if !lines.is_empty() {
            let _ = writeln!(
                out,
                "\nMPMC, {size} B messages, msgs/s of all producers together: {SHMRING_MPMC} across processes \
                 vs {ARRAYQUEUE} between threads of one process (x = queue / crossbeam):"
            );
            let _ = writeln!(out, "  {:<9} {:>10} {:>10} {:>7}", "mode", "queue", "crossbeam", "x");
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
        }
        if let Some((q, s)) = self.blocking_handoff() {
            let p50 = |r: &Row| r.rtt_p50_ns.unwrap_or(0);
            let _ = writeln!(
                out,
                "\nblocking hand-off (RTT of {} B, both ends sleeping on the futex): {SHMRING_MPMC} p50 {} \
                 vs {SHMRING} p50 {}: {}",
                super::bench::PING_SIZE,
                ns(p50(q)),
                ns(p50(s)),
                ratio(p50(q) as f64 / p50(s).max(1) as f64)
            );
        }
    }

    /// The blocking-mode RTT rows of the MPMC queue and of the SPSC ring, if both ran.
    fn blocking_handoff(&self) -> Option<(&Row, &Row)> {
        let ps = super::bench::PING_SIZE as u64;
        let blocking = Some(Mode::Blocking.name());
        let q = self
            .find(SHMRING_MPMC, blocking, ps)
            .filter(|r| r.rtt_p50_ns.is_some())?;
        let s = self.find(SHMRING, blocking, ps).filter(|r| r.rtt_p50_ns.is_some())?;
        Some((q, s))
    }

    /// Issue 3's performance targets that this run has the data for.
    pub(crate) fn mpmc_targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let size = super::mpmc::MSG_SIZE as u64;
        let one = Some(Topology::P1C1.name());
        let tput = |t: &str| self.find(t, one, size).and_then(|r| r.msgs_per_s);
        if let (Some(q), Some(c)) = (tput(SHMRING_MPMC), tput(ARRAYQUEUE)) {
            out.push(Target::at_least(
                format!("throughput {size} B 1p1c, mpmc >= 0.8x crossbeam in-process"),
                q / c,
                0.8,
            ));
        }
        if let Some((q, s)) = self.blocking_handoff() {
            let (q, s) = (q.rtt_p50_ns.unwrap_or(0), s.rtt_p50_ns.unwrap_or(0));
            out.push(Target::at_most(
                "RTT p50, mpmc blocking <= 1.2x spsc blocking",
                q as f64 / s.max(1) as f64,
                1.2,
            ));
        }
        out
    }

    /// The placement probe's summary, and the runs that overlapped a placement unlike
    /// most of the run's (a probe outside [median / 1.5, median x 1.5]). Returns how
    /// many runs were flagged.
    fn render_placements(&self, out: &mut String) -> usize {
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
                "warning: {} run(s) overlapped a time when the CPUs were placed unlike most of this run \
                 (probe outside {FAR}x of the median; a hypervisor moving virtual CPUs does this), \
                 so they compare poorly with the others:",
                flagged.len()
            );
            for (label, _, r) in &flagged {
                let _ = writeln!(out, "  {label:<48} probe {} / {}", ns(r[0]), ns(r[1]));
            }
        }
        flagged.len()
    }

    /// The issue's performance targets that this run has the data for.
    pub(crate) fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let shm = |m: Mode, size: u64| self.find(SHMRING, Some(m.name()), size);
        let other = |t: &str, size: u64| self.find(t, None, size);
        for (size, want) in [(64u64, 15.0), (8, 30.0)] {
            if let (Some(s), Some(u)) = (
                shm(Mode::Adaptive, size).and_then(|r| r.msgs_per_s),
                other(UNIX_SOCKET, size).and_then(|r| r.msgs_per_s),
            ) {
                out.push(Target::at_least(
                    format!("throughput {size} B, adaptive >= {want}x unix-socket"),
                    s / u,
                    want,
                ));
            }
        }
        let mib = 1 << 20;
        if let (Some(s), Some(m)) = (
            shm(Mode::Adaptive, mib).and_then(|r| r.mb_per_s),
            other(MEMCPY, mib).and_then(|r| r.mb_per_s),
        ) {
            out.push(Target {
                what: "throughput 1 MiB, adaptive >= 45% of memcpy".into(),
                measured: format!("{:.0}%", 100.0 * s / m),
                pass: s / m >= 0.45,
            });
        }
        let ps = super::bench::PING_SIZE as u64;
        let p50 = |r: Option<&Row>| r.and_then(|r| r.rtt_p50_ns).map(|v| v as f64);
        let spin = shm(Mode::Spin, ps);
        if let (Some(s), Some(f)) = (p50(spin), p50(other(FLOOR, ps))) {
            out.push(Target::at_most(
                "RTT p50, spin <= 1.5x cache-line floor p50",
                s / f,
                1.5,
            ));
        }
        if let (Some(s), Some(t)) = (p50(spin), spin.and_then(|r| r.rtt_p999_ns)) {
            let mut target = Target::at_most("RTT p99.9, spin <= 10x its own p50", t as f64 / s, 10.0);
            // The machine's own tail: the floor's p99.9 over its p50.
            let floor = other(FLOOR, ps);
            if let (Some(f50), Some(f999)) = (p50(floor), floor.and_then(|r| r.rtt_p999_ns)) {
                let _ = write!(target.measured, " (floor: {:.2}x)", f999 as f64 / f50);
            }
            out.push(target);
        }
        if let (Some(a), Some(s)) = (p50(shm(Mode::Adaptive, ps)), p50(spin)) {
            out.push(Target::at_most("RTT p50, adaptive <= 2x spin", a / s, 2.0));
        }
        if let Some((_, pct)) = self.idle.iter().find(|(m, _)| *m == Mode::Adaptive) {
            out.push(Target {
                what: "idle adaptive consumer < 2% of a core".into(),
                measured: format!("{pct:.2}%"),
                pass: *pct < 2.0,
            });
        }
        if let (Some(b), Some(p)) = (p50(shm(Mode::Blocking, ps)), p50(other(PIPE, ps))) {
            out.push(Target::at_most("RTT p50, blocking <= pipe", b / p, 1.0));
        }
        out
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
    fn at_least(what: String, v: f64, want: f64) -> Self {
        Target {
            what,
            measured: format!("{v:.2}x"),
            pass: v >= want,
        }
    }
    fn at_most(what: &str, v: f64, want: f64) -> Self {
        Target {
            what: what.into(),
            measured: format!("{v:.2}x"),
            pass: v <= want,
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
        r.throughput(UNIX_SOCKET, None, 8, 1e6);
        r.throughput(SHMRING, Some("adaptive"), 8, 40e6);
        r.latency(
            SHMRING,
            Some("adaptive"),
            8,
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
        assert_eq!(rows[0].transport, SHMRING);
        assert_eq!(rows[0].rtt_p50_ns, Some(300));
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(json[1]["mode"], serde_json::Value::Null);
        assert_eq!(json[1]["rtt_p50_ns"], serde_json::Value::Null);
        assert_eq!(json[1]["mb_per_s"], 8.0);
        let keys: Vec<_> = json[0].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 8);
        let t = r.targets();
        assert_eq!(t.len(), 1);
        assert!(t[0].pass, "40x >= 30x");
        assert!(r.render("h").contains("40.0x"));
    }

    #[test]
    fn mpmc_rows_compare_to_crossbeam_and_to_spsc_blocking() {
        let mut r = Results::default();
        r.throughput(ARRAYQUEUE, Some("1p1c"), 64, 10e6);
        r.throughput(SHMRING_MPMC, Some("4p4c"), 64, 2e6);
        r.throughput(SHMRING_MPMC, Some("1p1c"), 64, 9e6);
        let rtt = |p50| RttStats {
            rounds: 1,
            p50_ns: p50,
            p99_ns: p50,
            p999_ns: p50,
            max_ns: p50,
        };
        r.latency(SHMRING_MPMC, Some("blocking"), 8, &rtt(13_000));
        r.latency(SHMRING, Some("blocking"), 8, &rtt(10_000));
        let t = r.mpmc_targets();
        assert_eq!(t.len(), 2);
        assert!(t[0].pass && t[0].measured == "0.90x", "{t:?}");
        assert!(!t[1].pass && t[1].measured == "1.30x", "{t:?}");
        assert!(r.targets().is_empty(), "no issue-2 data");
        let order: Vec<(&str, Option<&str>, u64)> = r.rows().iter().map(|r| (r.transport, r.mode, r.size)).collect();
        assert_eq!(
            order,
            [
                (SHMRING, Some("blocking"), 8),
                (SHMRING_MPMC, Some("blocking"), 8),
                (SHMRING_MPMC, Some("1p1c"), 64),
                (SHMRING_MPMC, Some("4p4c"), 64),
                (ARRAYQUEUE, Some("1p1c"), 64),
            ]
        );
        let text = r.render("h");
        assert!(text.contains("targets (issue 3):"), "{text}");
        assert!(text.contains("1.30x") && text.contains("0.90x"), "{text}");
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
