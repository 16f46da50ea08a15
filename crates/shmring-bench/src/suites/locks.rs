//! The lock rows of `shmring bench`: the robust process-shared [`shmring::sync::Mutex`]
//! next to a process-shared `pthread_mutex_t`, a robust one (`PTHREAD_MUTEX_ROBUST`,
//! the fairer baseline: it pays for crash recovery too), and Python's
//! `multiprocessing.Lock`, all measured in the same run.
//!
//! Every lock guards one `u64` counter in shared memory: shmring's `Mutex<u64>` in its
//! own anonymous segment; each pthread mutex (`PTHREAD_PROCESS_SHARED`, type
//! `PTHREAD_MUTEX_NORMAL`) followed by its counter in the area of an anonymous `Raw`
//! segment; Python's lock next to a `multiprocessing.RawValue("Q")`.
//!
//! - **uncontended**: one thread of this process locks, increments the counter and
//!   unlocks, in batches; the kinds' batches are interleaved (one warm-up batch each
//!   first), and a kind's row is the median over its batches of ns per lock+unlock.
//!   Python: `acquire(); release()` with the method lookups hoisted, no increment, in a
//!   `python3 -c` process; its row is the median of its batches too, and includes the
//!   interpreter's loop overhead (an empty `for` is timed and shown next to it).
//! - **contended** (`2proc`): two processes (the Rust kinds: `__bench-peer` children;
//!   Python: two `fork`ed `multiprocessing.Process`es) each loop lock / read and
//!   increment the counter / unlock for `--duration`. They start together (the Rust
//!   children: a shared arrival count; Python: a `multiprocessing.Barrier`) and stop
//!   together (the first to pass its deadline raises a stop flag that the other polls
//!   every 64 operations). The rate is both processes' operations over the longer of
//!   their two times, and the parent checks that the counter equals their sum. A
//!   *hand-off* is an acquisition that finds the counter changed since this process last
//!   held the lock (the other one held it in between): operations per hand-off tell
//!   whether the lock alternates or one process re-takes it while the other sleeps. The
//!   runs of the kinds are interleaved (run 1 of every kind, then run 2, ...), so that a
//!   change of the CPUs' placement during the step hits every kind alike; a row is the
//!   median run.

mod pthread;
mod runs;

use crate::args::{BenchArgs, LockKind, LockMode, Selected};
use crate::peer::{Fds, PeerSpec};
use crate::report::{OptTarget, RateUnit, Results, Row, ns, rate, ratio};
use crate::suite::{Ctx, Phase, Planned, Suite};
use crate::{Result, err};
use runs::ContendedRow;
use std::fmt::Write as _;
use std::mem::size_of;

impl LockKind {
    /// Every kind, in the order of the rows.
    pub(crate) const ALL: [LockKind; 4] = [
        LockKind::Shmring,
        LockKind::Pthread,
        LockKind::PthreadRobust,
        LockKind::Python,
    ];

    /// The row's name (`transport` in the JSON).
    pub(crate) fn name(self) -> &'static str {
        match self {
            LockKind::Shmring => "shmring-mutex",
            LockKind::Pthread => "pthread-mutex",
            LockKind::PthreadRobust => "pthread-robust",
            LockKind::Python => "python-mp-lock",
        }
    }
}

/// `mode` of the uncontended rows.
pub(crate) const UNCONTENDED: &str = "uncontended";
/// `mode` of the contended rows.
pub(crate) const CONTENDED: &str = "2proc";
/// `size` of the lock rows: the guarded counter.
pub(crate) const GUARDED: usize = size_of::<u64>();

/// Operations between two looks at the clock and at the stop flag of a contended run.
const BATCH: u64 = 64;
/// Uncontended: lock+unlock pairs per batch of a Rust kind, and batches per kind.
const RUST_BATCH: (u64, usize) = (1_000_000, 7);
/// The same with `--quick`.
const RUST_BATCH_QUICK: (u64, usize) = (500_000, 5);
/// Uncontended: `acquire(); release()` pairs per Python batch, and batches.
const PY_BATCH: (u64, usize) = (200_000, 5);
/// The same with `--quick`.
const PY_BATCH_QUICK: (u64, usize) = (50_000, 3);
/// Contended runs per kind, whose median is the row.
pub(crate) const RUNS: usize = 3;

/// Role: take the lock of the job's parameter (a [`LockKind`]) in a loop with another
/// contender, for `duration_ns` (fds: `[lock segment, control page]`).
const CONTENDED_ROLE: &str = "lock-contender";

/// The suite of the lock rows.
#[derive(Debug)]
pub(crate) struct Locks;

/// The selected locks, each once, in the rows' order.
pub(crate) fn lock_kinds(a: &BenchArgs) -> Vec<LockKind> {
    let mut k = a.locks.clone();
    k.sort();
    k.dedup();
    k
}

impl Suite for Locks {
    type Step = LockMode;

    fn name(&self) -> &'static str {
        "locks"
    }

    fn plan(&self, a: &BenchArgs) -> Vec<Planned<LockMode>> {
        let mut out = Vec::new();
        if a.has(Selected::Locks) && !a.locks.is_empty() {
            for m in [LockMode::Uncontended, LockMode::Contended] {
                if a.lock_modes.contains(&m) {
                    out.push(Planned::new(Phase::Rows, m));
                }
            }
        }
        out
    }

    fn label(&self, step: &LockMode) -> String {
        match step {
            LockMode::Uncontended => format!("locks {UNCONTENDED}"),
            LockMode::Contended => format!("locks {CONTENDED}"),
        }
    }

    fn run(&self, step: &LockMode, ctx: &mut Ctx<'_>) -> Result<String> {
        let a = ctx.args;
        let res = ctx.results.state::<LockResults>(self.name());
        match step {
            LockMode::Uncontended => runs::run_uncontended(&lock_kinds(a), a.quick, a.timeout, res),
            LockMode::Contended => {
                let n = if a.quick { 1 } else { RUNS };
                runs::run_contended(self.name(), &lock_kinds(a), a.duration, n, &a.pin, a.timeout, res)
            }
        }
    }

    fn serve(&self, spec: &PeerSpec, fds: &mut Fds) -> Result<serde_json::Value> {
        if spec.role != CONTENDED_ROLE {
            return Err(err(format!("suite {} has no role {}", self.name(), spec.role)));
        }
        let c = runs::contend(fds.next()?, fds.next()?, spec)?;
        Ok(serde_json::to_value(c)?)
    }

    fn render(&self, r: &Results, out: &mut String) {
        if let Some(res) = r.state_ref::<LockResults>(self.name()) {
            res.render(out);
        }
    }

    fn targets(&self, r: &Results) -> Option<(&'static str, Vec<OptTarget>)> {
        Some(("locks", r.state_ref::<LockResults>(self.name())?.targets()))
    }

    fn json_rows(&self, r: &Results) -> Vec<Row> {
        r.state_ref::<LockResults>(self.name())
            .map(LockResults::rows)
            .unwrap_or_default()
    }

    /// Lock+unlock pairs per second (the JSON's `msgs_per_s`).
    fn plot_rows(&self, r: &Results) -> Vec<(Row, RateUnit)> {
        self.json_rows(r)
            .into_iter()
            .map(|row| (row, RateUnit::Operations))
            .collect()
    }
}

// ---- results -------------------------------------------------------------------------

/// Everything the lock steps measured.
#[derive(Debug, Default)]
pub(crate) struct LockResults {
    /// Median ns per uncontended lock+unlock.
    uncontended: Vec<(LockKind, f64)>,
    /// The contended rows.
    contended: Vec<(LockKind, ContendedRow)>,
    /// Kinds not measured, and why.
    skipped: Vec<(LockKind, String)>,
    /// ns per iteration of Python's empty loop (included in its uncontended row).
    python_loop_ns: Option<f64>,
}

impl LockResults {
    fn skip(&mut self, kind: LockKind, why: String) {
        if !self.skipped.iter().any(|(k, _)| *k == kind) {
            self.skipped.push((kind, why));
        }
    }

    fn unc(&self, k: LockKind) -> Option<f64> {
        self.uncontended.iter().find(|(x, _)| *x == k).map(|(_, v)| *v)
    }

    fn con(&self, k: LockKind) -> Option<&ContendedRow> {
        self.contended.iter().find(|(x, _)| *x == k).map(|(_, v)| v)
    }

    /// Whether anything was measured or skipped.
    pub(crate) fn is_empty(&self) -> bool {
        self.uncontended.is_empty() && self.contended.is_empty() && self.skipped.is_empty()
    }

    /// The JSON rows: `msgs_per_s` is lock+unlock pairs per second (uncontended: one
    /// thread; `2proc`: both processes together); the other figures are `null`.
    pub(crate) fn rows(&self) -> Vec<Row> {
        let row = |k: LockKind, mode: &'static str, per_s: f64| Row {
            transport: k.name(),
            mode: Some(mode),
            size: GUARDED as u64,
            msgs_per_s: Some(per_s),
            mb_per_s: None,
            rtt_p50_ns: None,
            rtt_p99_ns: None,
            rtt_p999_ns: None,
        };
        let mut out = Vec::new();
        for k in LockKind::ALL {
            if let Some(v) = self.unc(k) {
                out.push(row(k, UNCONTENDED, 1e9 / v.max(1e-3)));
            }
            if let Some(c) = self.con(k) {
                out.push(row(k, CONTENDED, c.per_s));
            }
        }
        out
    }

    /// The table of the lock rows.
    pub(crate) fn render(&self, out: &mut String) {
        if self.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nlocks: lock, increment a shared u64, unlock. uncontended: one thread, ns per lock+unlock (median of \
             the batches); {CONTENDED}: two processes contending, lock+unlock pairs/s of both together (median run), \
             the busier process's share of them, and operations per hand-off between the two. x shm > 1: shmring \
             is better (uncontended: row / shmring; {CONTENDED}: shmring / row)."
        );
        let _ = writeln!(
            out,
            "  {:<16} {:>11} {:>7} | {:>10} {:>7} {:>6} {:>12}",
            "lock", "uncontended", "x shm", "ops/s", "x shm", "busier", "ops/hand-off"
        );
        let shm_u = self.unc(LockKind::Shmring);
        let shm_c = self.con(LockKind::Shmring).map(|c| c.per_s);
        for k in LockKind::ALL {
            if let Some((_, why)) = self.skipped.iter().find(|(x, _)| *x == k) {
                let _ = writeln!(out, "  {:<16} skipped: {why}", k.name());
                continue;
            }
            let (u, c) = (self.unc(k), self.con(k));
            if u.is_none() && c.is_none() {
                continue;
            }
            let ux = match (u, shm_u) {
                (Some(v), Some(s)) if s > 0.0 => ratio(v / s),
                _ => "-".into(),
            };
            let cx = match (c, shm_c) {
                (Some(c), Some(s)) if c.per_s > 0.0 => ratio(s / c.per_s),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "  {:<16} {:>11} {:>7} | {:>10} {:>7} {:>6} {:>12}",
                k.name(),
                u.map_or("-".into(), ns_f),
                ux,
                c.map_or("-".into(), |c| rate(c.per_s)),
                cx,
                c.map_or("-".into(), |c| format!("{:.0}%", 100.0 * c.busier)),
                c.map_or("-".into(), |c| format!("{:.0}", c.per_handoff)),
            );
        }
        if let Some(l) = self.python_loop_ns {
            let _ = writeln!(
                out,
                "  (python-mp-lock uncontended: acquire(); release() in a for loop, whose empty iteration takes {} \
                 of it)",
                ns_f(l)
            );
        }
        let runs: Vec<String> = self
            .contended
            .iter()
            .filter(|(_, c)| c.runs.len() > 1)
            .map(|(k, c)| {
                let r: Vec<String> = c.runs.iter().map(|&v| rate(v)).collect();
                format!("{} {}", k.name(), r.join(" "))
            })
            .collect();
        if !runs.is_empty() {
            let _ = writeln!(out, "  {CONTENDED} runs, ops/s: {}", runs.join("; "));
        }
    }

    /// The lock targets that this run has the data for (SKIP where Python was missing).
    pub(crate) fn targets(&self) -> Vec<OptTarget> {
        let mut out = Vec::new();
        let s = LockKind::Shmring;
        let (su, sc) = (self.unc(s), self.con(s).map(|c| c.per_s));
        if let (Some(s), Some(p)) = (su, self.unc(LockKind::Pthread)) {
            out.push(OptTarget {
                what: "uncontended, shmring-mutex <= 1.2x pthread-mutex".into(),
                measured: format!("{:.2}x ({} vs {})", s / p, ns_f(s), ns_f(p)),
                pass: Some(s / p <= 1.2),
            });
        }
        if let (Some(s), Some(p)) = (sc, self.con(LockKind::Pthread)) {
            out.push(OptTarget {
                what: "2proc ops/s, shmring-mutex >= pthread-mutex".into(),
                measured: format!("{:.2}x ({}/s vs {}/s)", s / p.per_s, rate(s), rate(p.per_s)),
                pass: Some(s >= p.per_s),
            });
        }
        let skipped = self.skipped.iter().find(|(k, _)| *k == LockKind::Python);
        if let Some(s) = su {
            let what = "uncontended, shmring-mutex >= 50x python-mp-lock";
            match (self.unc(LockKind::Python), skipped) {
                (Some(p), _) => out.push(OptTarget {
                    what: what.into(),
                    measured: format!("{:.1}x ({} vs {})", p / s, ns_f(p), ns_f(s)),
                    pass: Some(p / s >= 50.0),
                }),
                (None, Some((_, why))) => out.push(OptTarget {
                    what: what.into(),
                    measured: format!("not measured: {why}"),
                    pass: None,
                }),
                _ => {}
            }
        }
        if let Some(s) = sc {
            let what = "2proc ops/s, shmring-mutex >= 50x python-mp-lock";
            match (self.con(LockKind::Python), skipped) {
                (Some(p), _) => out.push(OptTarget {
                    what: what.into(),
                    measured: format!("{:.1}x ({}/s vs {}/s)", s / p.per_s, rate(s), rate(p.per_s)),
                    pass: Some(s / p.per_s >= 50.0),
                }),
                (None, Some((_, why))) => out.push(OptTarget {
                    what: what.into(),
                    measured: format!("not measured: {why}"),
                    pass: None,
                }),
                _ => {}
            }
        }
        out
    }
}

/// `12.3 ns`, `103 ns`, `1.20 us` from a fractional nanosecond count.
fn ns_f(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1} ns")
    } else {
        ns(v.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_targets() {
        let mut r = LockResults::default();
        assert!(r.is_empty() && r.targets().is_empty());
        r.uncontended.push((LockKind::Shmring, 10.0));
        r.uncontended.push((LockKind::Pthread, 9.0));
        let row = |per_s| ContendedRow {
            per_s,
            busier: 0.5,
            per_handoff: 1.0,
            runs: vec![per_s],
        };
        r.contended.push((LockKind::Shmring, row(20e6)));
        r.contended.push((LockKind::Pthread, row(25e6)));
        r.skip(LockKind::Python, "python3 not found".into());
        let t = r.targets();
        assert_eq!(t.len(), 4, "{t:?}");
        assert_eq!(t[0].pass, Some(true), "10 <= 1.2 x 9");
        assert_eq!(t[1].pass, Some(false), "20M < 25M");
        assert!(t[2].pass.is_none() && t[3].measured.contains("python3 not found"));
        let rows = r.rows();
        assert_eq!(rows.len(), 4);
        assert_eq!((rows[0].transport, rows[0].mode), ("shmring-mutex", Some(UNCONTENDED)));
        assert_eq!(rows[0].msgs_per_s, Some(1e8));
        assert!(rows.iter().all(|r| r.mb_per_s.is_none() && r.size == 8));
        let mut text = String::new();
        r.render(&mut text);
        crate::report::render_target_lines(&mut text, "locks", &r.targets(), 0);
        assert!(text.contains("python-mp-lock   skipped: python3 not found"), "{text}");
        assert!(text.contains("[SKIP]") && text.contains("[FAIL]"), "{text}");
    }
}
