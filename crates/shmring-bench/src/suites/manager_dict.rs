//! The manager rows of `shmring bench`: operations per second of a
//! [`DictProxy`] against Python's
//! `multiprocessing.Manager().dict()`, measured in the same run.
//!
//! - **shmring-manager**: a server in a child process ([`Manager::start`]: this binary
//!   re-executed, as Python's `Manager()` starts its server process), an abstract Unix
//!   socket with an authkey, and one client handle in the bench's main thread, its
//!   calls on the shared-memory channel ([`Manager::connect`]'s default). `set`:
//!   `insert` of `u64` keys `i % 1000` (one round trip each); `get`: `get` of those
//!   keys through a proxy without the cache (one round trip); `cached get`: `get` of
//!   those keys, each read once before the clock starts and not written since (no
//!   round trip).
//! - **shmring-mgr-socket**: the same server and calls, from a second handle that keeps
//!   its calls on the socket (`ConnectOptions::shared_memory(false)`, what a client
//!   over TCP gets): set and get.
//! - **python-mp-manager**: `python3 -c`: `Manager()` (its server process, a Unix
//!   socket with an authkey), then `d[i % 1000] = i` and `d[i % 1000]` of `int` keys.
//!
//! Each row is the median of [`RUNS`] runs. Python's rows are skipped, and said so,
//! if python3 is missing.

use crate::args::{BenchArgs, Measure, Selected};
use crate::report::{OptTarget, RateUnit, Results, Row, rate, ratio};
use crate::suite::{Ctx, Phase, Planned, Suite};
use crate::{Result, err};
use shmring::manager::{ConnectOptions, DictProxy, Manager, ManagerError};
use shmring::net::Address;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Runs of each row, whose median is the row.
pub(crate) const RUNS: usize = 3;
/// Distinct keys of the runs.
const KEYS: u64 = 1000;
/// Targets: get and set at least this many times Python's; cached get this many.
const TARGET_OPS: f64 = 20.0;
const TARGET_CACHED: f64 = 100.0;

/// The script `python3 -c` runs: `N`; prints `set_per_s get_per_s`.
const PY_SCRIPT: &str = r#"
import sys, time
from multiprocessing import Manager
n = int(sys.argv[1])
with Manager() as m:
    d = m.dict()
    for i in range(1000):
        d[i] = 0
    t = time.perf_counter()
    for i in range(n):
        d[i % 1000] = i
    s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(n):
        d[i % 1000]
    g = time.perf_counter() - t
    print(n / s, n / g)
"#;

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Set,
    Get,
    CachedGet,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Set => "set",
            Op::Get => "get",
            Op::CachedGet => "cached get",
        }
    }
}

/// Who a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// shmring, calls over the shared-memory channel.
    Channel,
    /// shmring, calls over the socket.
    Socket,
    /// Python's `multiprocessing.Manager().dict()`.
    Python,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Channel => "shmring-manager",
            Who::Socket => "shmring-mgr-socket",
            Who::Python => "python-mp-manager",
        }
    }
}

/// A row: who, which operation, the median run, every run.
#[derive(Debug, Clone)]
pub(crate) struct ManagerRow {
    who: Who,
    op: Op,
    per_s: f64,
    runs: Vec<f64>,
}

/// Everything the manager step measured.
#[derive(Debug, Default)]
pub(crate) struct ManagerResults {
    rows: Vec<ManagerRow>,
    /// Why Python's rows are missing, if they are.
    python_skipped: Option<String>,
}

fn median(runs: &[f64]) -> f64 {
    let mut s = runs.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// Set and get per second of `d` (`plain`: the same dict without the cache), `n` each.
fn set_get(d: &DictProxy<u64, u64>, plain: &DictProxy<u64, u64>, n: u64) -> Result<[f64; 2]> {
    let e = |e: ManagerError| err(e.to_string());
    let t = Instant::now();
    for i in 0..n {
        d.insert(&(i % KEYS), &i).map_err(e)?;
    }
    let set = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..n {
        if plain.get(&(i % KEYS)).map_err(e)?.is_none() {
            return Err(err("a key vanished"));
        }
    }
    Ok([set, n as f64 / t.elapsed().as_secs_f64()])
}

/// One run of shmring's rows: channel (set, get, cached get), socket (set, get), per
/// second.
fn run_shmring(n: u64, cached_n: u64) -> Result<[f64; 5]> {
    let e = |e: ManagerError| err(e.to_string());
    let addr = Address::Abstract(format!("shmring-bench-manager-{}", std::process::id()));
    let key = b"shmring bench authkey";
    let server = Manager::start(&addr, Some(key)).map_err(e)?;
    let m = Manager::connect(&addr, Some(key)).map_err(e)?;
    let ms = Manager::connect_with(&addr, Some(key), &ConnectOptions::new().shared_memory(false)).map_err(e)?;
    if !m.uses_shared_memory() || ms.uses_shared_memory() {
        return Err(err("the manager's handles did not get the transports asked for"));
    }
    let d = m.dict::<u64, u64>("bench").map_err(e)?;
    if !d.is_cached() {
        return Err(err("the manager's dict has no cache over a Unix socket"));
    }
    let ds = ms.dict::<u64, u64>("bench").map_err(e)?.without_cache();
    for i in 0..KEYS {
        d.insert(&i, &0).map_err(e)?;
    }
    let [set, get] = set_get(&d, &d.clone().without_cache(), n)?;
    let [sock_set, sock_get] = set_get(&ds, &ds, n)?;
    for i in 0..KEYS {
        d.get(&i).map_err(e)?;
    }
    let t = Instant::now();
    for i in 0..cached_n {
        if d.get(&(i % KEYS)).map_err(e)?.is_none() {
            return Err(err("a key vanished"));
        }
    }
    let cached = cached_n as f64 / t.elapsed().as_secs_f64();
    server.shutdown().map_err(e)?;
    Ok([set, get, cached, sock_set, sock_get])
}

/// Python's (set, get) per second, or why not.
fn run_python(n: u64, timeout: Duration) -> Result<std::result::Result<[f64; 2], String>> {
    let o = match crate::python::run_script(PY_SCRIPT, &[&n.to_string()], timeout)? {
        Ok(o) => o,
        Err(why) => return Ok(Err(why)),
    };
    if !o.status.success() {
        return Ok(Err(format!("python3 failed ({}): {}", o.status, o.last_err)));
    }
    let v: Vec<f64> = o.last_out.split_whitespace().filter_map(|s| s.parse().ok()).collect();
    match v[..] {
        [s, g] => Ok(Ok([s, g])),
        _ => Err(err(format!("python3 printed {:?}", o.last_out))),
    }
}

/// The suite of the manager rows. Its rows are in the table and the targets, not in
/// the JSON output.
#[derive(Debug)]
pub(crate) struct ManagerDict;

impl Suite for ManagerDict {
    type Step = ();

    fn name(&self) -> &'static str {
        "manager"
    }

    fn plan(&self, a: &BenchArgs) -> Vec<Planned<()>> {
        if a.has(Selected::Manager) && a.measures(Measure::Throughput) {
            vec![Planned::new(Phase::Rows, ())]
        } else {
            Vec::new()
        }
    }

    fn label(&self, _: &()) -> String {
        "manager dict set/get/cached get".into()
    }

    fn run(&self, _: &(), ctx: &mut Ctx<'_>) -> Result<String> {
        let a = ctx.args;
        let runs = if a.quick { 1 } else { RUNS };
        run(a.quick, runs, a.timeout, ctx.results.state(self.name()))
    }

    fn render(&self, r: &Results, out: &mut String) {
        if let Some(res) = r.state_ref::<ManagerResults>(self.name()) {
            res.render(out);
        }
    }

    fn targets(&self, r: &Results) -> Option<(&'static str, Vec<OptTarget>)> {
        Some(("manager dict", r.state_ref::<ManagerResults>(self.name())?.targets()))
    }

    /// Dict calls per second, drawn by `--plot` only (the manager has no JSON rows).
    fn plot_rows(&self, r: &Results) -> Vec<(Row, RateUnit)> {
        let Some(res) = r.state_ref::<ManagerResults>(self.name()) else {
            return Vec::new();
        };
        res.rows
            .iter()
            .map(|m| {
                let row = Row {
                    transport: m.who.name(),
                    mode: Some(m.op.name()),
                    size: 8,
                    msgs_per_s: Some(m.per_s),
                    mb_per_s: None,
                    rtt_p50_ns: None,
                    rtt_p99_ns: None,
                    rtt_p999_ns: None,
                };
                (row, RateUnit::Operations)
            })
            .collect()
    }
}

/// Run the rows: `RUNS` (or `runs`) runs of each, interleaved.
fn run(quick: bool, runs: usize, timeout: Duration, res: &mut ManagerResults) -> Result<String> {
    let (n, cached_n, py_n) = if quick {
        (5_000, 200_000, 2_000)
    } else {
        (50_000, 4_000_000, 20_000)
    };
    let mut ours: Vec<[f64; 5]> = Vec::new();
    let mut py: Vec<[f64; 2]> = Vec::new();
    for _ in 0..runs {
        ours.push(run_shmring(n, cached_n)?);
        if res.python_skipped.is_none() {
            match run_python(py_n, timeout)? {
                Ok(r) => py.push(r),
                Err(why) => res.python_skipped = Some(why),
            }
        }
    }
    let ours_rows = [
        (Who::Channel, Op::Set),
        (Who::Channel, Op::Get),
        (Who::Channel, Op::CachedGet),
        (Who::Socket, Op::Set),
        (Who::Socket, Op::Get),
    ];
    for (i, (who, op)) in ours_rows.into_iter().enumerate() {
        let r: Vec<f64> = ours.iter().map(|x| x[i]).collect();
        res.rows.push(ManagerRow {
            who,
            op,
            per_s: median(&r),
            runs: r,
        });
    }
    if res.python_skipped.is_none() {
        for (i, op) in [Op::Set, Op::Get].into_iter().enumerate() {
            let r: Vec<f64> = py.iter().map(|x| x[i]).collect();
            res.rows.push(ManagerRow {
                who: Who::Python,
                op,
                per_s: median(&r),
                runs: r,
            });
        }
    }
    Ok(res
        .rows
        .iter()
        .map(|r| format!("{} {} {}/s", r.who.name(), r.op.name(), rate(r.per_s)))
        .collect::<Vec<_>>()
        .join(", "))
}

impl ManagerResults {
    fn get(&self, who: Who, op: Op) -> Option<f64> {
        self.rows.iter().find(|r| r.who == who && r.op == op).map(|r| r.per_s)
    }

    /// The table of the rows.
    pub(crate) fn render(&self, out: &mut String) {
        if self.rows.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nmanager: dict operations of one client, u64/int keys i % {KEYS}; servers in a child \
             process, abstract Unix socket + authkey; shmring-manager = calls on the shared-memory \
             channel, shmring-mgr-socket = calls on the socket; python-mp-manager = \
             multiprocessing.Manager().dict(); ops/s of the median run."
        );
        let _ = writeln!(
            out,
            "  {:<18} {:<11} {:>10} {:>9}  runs",
            "row", "op", "ops/s", "x python"
        );
        for r in &self.rows {
            let base = self.get(Who::Python, if r.op == Op::Set { Op::Set } else { Op::Get });
            let x = base.filter(|&v| v > 0.0).map_or("-".into(), |v| ratio(r.per_s / v));
            let runs: Vec<String> = r.runs.iter().map(|&v| rate(v)).collect();
            let _ = writeln!(
                out,
                "  {:<18} {:<11} {:>10} {:>9}  {}",
                r.who.name(),
                r.op.name(),
                rate(r.per_s),
                x,
                runs.join(" ")
            );
        }
        if let Some(why) = &self.python_skipped {
            let _ = writeln!(out, "  python-mp-manager skipped: {why}");
        }
    }

    /// The targets: get and set >= 20x Python's, cached get >= 100x Python's get.
    pub(crate) fn targets(&self) -> Vec<OptTarget> {
        let mut out = Vec::new();
        for (op, base, want) in [
            (Op::Set, Op::Set, TARGET_OPS),
            (Op::Get, Op::Get, TARGET_OPS),
            (Op::CachedGet, Op::Get, TARGET_CACHED),
        ] {
            let Some(x) = self.get(Who::Channel, op) else { continue };
            let what = format!("manager dict {} >= {want:.0}x python {}", op.name(), base.name());
            out.push(match self.get(Who::Python, base) {
                Some(y) if y > 0.0 => OptTarget {
                    what,
                    measured: format!("{} ({}/s vs {}/s)", ratio(x / y), rate(x), rate(y)),
                    pass: Some(x / y >= want),
                },
                _ => OptTarget {
                    what,
                    measured: "python3 not measured".into(),
                    pass: None,
                },
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_compare_with_python() {
        let mut r = ManagerResults::default();
        let row = |who, op, per_s: f64| ManagerRow {
            who,
            op,
            per_s,
            runs: vec![per_s],
        };
        r.rows.push(row(Who::Channel, Op::Set, 300e3));
        r.rows.push(row(Who::Channel, Op::Get, 100e3));
        r.rows.push(row(Who::Channel, Op::CachedGet, 2e6));
        r.rows.push(row(Who::Socket, Op::Get, 900e3)); // not the target's row
        r.rows.push(row(Who::Python, Op::Set, 10e3));
        r.rows.push(row(Who::Python, Op::Get, 10e3));
        let t = r.targets();
        assert_eq!(
            t.iter().map(|t| t.pass).collect::<Vec<_>>(),
            [Some(true), Some(false), Some(true)]
        );
        let mut out = String::new();
        r.render(&mut out);
        crate::report::render_target_lines(&mut out, "manager dict", &r.targets(), 0);
        assert!(out.contains("[FAIL] manager dict get >= 20x"), "{out}");
        assert!(out.contains("cached get"), "{out}");
        r.python_skipped = Some("python3 not found".into());
        r.rows.retain(|r| r.who != Who::Python);
        assert!(r.targets().iter().all(|t| t.pass.is_none()));
    }
}
