//! The budget check of shmring's instruction counts.
//!
//! `benches/instr.rs` and `benches/instr_broadcast.rs` count, under valgrind's callgrind (through gungraun), the
//! instructions of [`OPS`] operations of each hot path. Run with
//! `--output-format=json`, gungraun prints one JSON summary per benchmark on stdout;
//! [`parse_summaries`] reads the instruction count (callgrind's `Ir`) of each, and
//! [`compare`] holds them against the committed baseline (`instr-baseline.json`, a
//! [`Baseline`]): a benchmark whose count grew by more than the baseline's margin over its
//! baseline count fails the check, and so does a benchmark missing on either side.
//!
//! The binary `instr-check` (src/main.rs) runs the benches and does both.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Operations in each benchmark's measured loop (the per-operation count is the total
/// divided by this).
pub const OPS: u64 = 10_000;

/// The margin a count may grow over its baseline before the check fails, in percent.
pub const DEFAULT_MARGIN_PCT: f64 = 5.0;

/// The committed baseline: the instruction count of each benchmark's measured loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Operations per loop when the counts were taken (must equal [`OPS`]).
    pub ops: u64,
    /// How far (percent) a count may exceed its baseline.
    pub margin_pct: f64,
    /// Total instructions of each benchmark's loop, by name (`function::id`).
    pub counts: BTreeMap<String, u64>,
}

impl Baseline {
    /// A baseline of these counts with the default margin.
    pub fn new(counts: BTreeMap<String, u64>) -> Baseline {
        Baseline {
            ops: OPS,
            margin_pct: DEFAULT_MARGIN_PCT,
            counts,
        }
    }
}

/// The instruction counts of a run of the benches, by name (`function::id`), read from
/// gungraun's JSON output (one summary object per line; other lines are an error).
pub fn parse_summaries(json_lines: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in json_lines.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not a JSON summary: {e}", i + 1))?;
        let name = summary_name(&v).ok_or_else(|| format!("line {}: a summary without function_name", i + 1))?;
        let ir = summary_ir(&v).ok_or_else(|| format!("{name}: no callgrind Ir count in its summary"))?;
        if out.insert(name.clone(), ir).is_some() {
            return Err(format!("{name}: measured twice"));
        }
    }
    if out.is_empty() {
        return Err("no benchmark summary in the output".into());
    }
    Ok(out)
}

/// `function_name::id` (or `function_name` alone when the benchmark has no id).
fn summary_name(v: &serde_json::Value) -> Option<String> {
    let f = v.get("function_name")?.as_str()?;
    Some(match v.get("id").and_then(|id| id.as_str()) {
        Some(id) => format!("{f}::{id}"),
        None => f.to_owned(),
    })
}

/// The new `Ir` of the callgrind profile's total
/// (`profiles[tool == "Callgrind"].data.total.metrics.Ir.values.new`).
fn summary_ir(v: &serde_json::Value) -> Option<u64> {
    let profiles = v.get("profiles")?.as_array()?;
    let cg = profiles
        .iter()
        .find(|p| p.get("tool").and_then(|t| t.as_str()) == Some("Callgrind"))?;
    let ir = cg.get("data")?.get("total")?.get("metrics")?.get("Ir")?;
    ir.get("values")?.get("new")?.as_u64()
}

/// One benchmark's line of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `function::id`.
    pub name: String,
    /// Baseline count, if the baseline has the benchmark.
    pub baseline: Option<u64>,
    /// Measured count, if the run has the benchmark.
    pub now: Option<u64>,
    /// Whether this line fails the check.
    pub failed: bool,
}

impl Line {
    /// Change from baseline to now, in percent.
    pub fn change_pct(&self) -> Option<f64> {
        match (self.baseline, self.now) {
            (Some(b), Some(n)) if b > 0 => Some((n as f64 - b as f64) * 100.0 / b as f64),
            _ => None,
        }
    }
}

/// Hold `now` against `base`: a line per benchmark of either, failed when the count grew
/// by more than `base.margin_pct` or when the benchmark is missing on one side. Also an
/// error if the baseline was taken with another loop length than [`OPS`].
pub fn compare(base: &Baseline, now: &BTreeMap<String, u64>) -> Result<Vec<Line>, String> {
    if base.ops != OPS {
        return Err(format!(
            "the baseline was taken with {} operations per loop, the benches run {OPS}: refresh it",
            base.ops
        ));
    }
    if !(base.margin_pct.is_finite() && base.margin_pct >= 0.0) {
        return Err(format!("the baseline's margin {} is not a percentage", base.margin_pct));
    }
    let names: std::collections::BTreeSet<&String> = base.counts.keys().chain(now.keys()).collect();
    Ok(names
        .into_iter()
        .map(|name| {
            let b = base.counts.get(name).copied();
            let n = now.get(name).copied();
            let failed = match (b, n) {
                // n > b * (1 + margin/100); counts are far below 2^53, exact as f64.
                (Some(b), Some(n)) => (n as f64) > (b as f64) * (1.0 + base.margin_pct / 100.0),
                _ => true,
            };
            Line {
                name: name.clone(),
                baseline: b,
                now: n,
                failed,
            }
        })
        .collect())
}

/// The table of a check (markdown), with the per-operation counts and the verdict of
/// each line.
pub fn render(lines: &[Line], margin_pct: f64) -> String {
    let per_op = |c: Option<u64>| c.map_or("-".to_owned(), |c| format!("{:.1}", c as f64 / OPS as f64));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| benchmark | baseline Ir/op | now Ir/op | now total Ir ({OPS} ops) | change | verdict |"
    );
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | --- |");
    for l in lines {
        let change = l.change_pct().map_or("-".to_owned(), |c| format!("{c:+.2}%"));
        let verdict = match (l.baseline, l.now, l.failed) {
            (None, _, _) => "FAIL: not in the baseline".to_owned(),
            (_, None, _) => "FAIL: not measured".to_owned(),
            (_, _, true) => format!("FAIL: over the {margin_pct}% margin"),
            _ if l.change_pct().is_some_and(|c| c < -margin_pct) => "ok (improved: refresh the baseline)".to_owned(),
            _ => "ok".to_owned(),
        };
        let total = l.now.map_or("-".to_owned(), |n| n.to_string());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            l.name,
            per_op(l.baseline),
            per_op(l.now),
            total,
            change,
            verdict
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn growth_over_the_margin_fails_and_within_passes() {
        let base = Baseline::new(counts(&[("a::x", 1_000_000), ("b::y", 1_000_000)]));
        let lines = compare(&base, &counts(&[("a::x", 1_050_000), ("b::y", 1_050_001)])).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(!lines[0].failed, "exactly +5% is within a 5% margin");
        assert!(lines[1].failed, "just over +5% fails");
        assert!((lines[1].change_pct().unwrap() - 5.0001).abs() < 1e-9);
        let table = render(&lines, base.margin_pct);
        assert!(table.contains("| b::y | 100.0 | 105.0 | 1050001 | +5.00% | FAIL: over the 5% margin |"));
    }

    #[test]
    fn a_benchmark_missing_on_either_side_fails() {
        let base = Baseline::new(counts(&[("gone::x", 10)]));
        let lines = compare(&base, &counts(&[("new::y", 10)])).unwrap();
        assert!(lines.iter().all(|l| l.failed));
        let table = render(&lines, 5.0);
        assert!(table.contains("FAIL: not measured") && table.contains("FAIL: not in the baseline"));
    }

    #[test]
    fn a_faster_run_passes_and_says_refresh() {
        let base = Baseline::new(counts(&[("a::x", 1000)]));
        let lines = compare(&base, &counts(&[("a::x", 900)])).unwrap();
        assert!(!lines[0].failed);
        assert!(render(&lines, 5.0).contains("improved"));
    }

    #[test]
    fn a_baseline_of_another_loop_length_is_refused() {
        let mut base = Baseline::new(counts(&[("a::x", 1000)]));
        base.ops = OPS + 1;
        assert!(compare(&base, &counts(&[("a::x", 1000)])).is_err());
    }

    #[test]
    fn reads_gungraun_json_summaries() {
        // The shape of gungraun 0.20's `--output-format=json` lines, cut down.
        let line = r#"{"function_name":"spsc_send_recv","id":"b8","profiles":[{"tool":"Callgrind","data":{"parts":[],"total":{"metrics":{"Dr":{"values":{"new":7}},"Ir":{"values":{"new":12345}}},"regressions":[]}}}]}"#;
        let got = parse_summaries(&format!("{line}\n\n")).unwrap();
        assert_eq!(got, counts(&[("spsc_send_recv::b8", 12345)]));
        assert!(parse_summaries("").is_err());
        assert!(parse_summaries("not json").is_err());
        assert!(
            parse_summaries(&format!("{line}\n{line}")).is_err(),
            "a duplicate is an error"
        );
        let no_ir = line.replace("\"Ir\"", "\"Xr\"");
        assert!(parse_summaries(&no_ir).is_err(), "a summary without Ir is an error");
    }
}
