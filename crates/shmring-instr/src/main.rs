//! `instr-check`: run the instruction-count benches (`benches/instr.rs` and
//! `benches/instr_broadcast.rs`, gungraun: one binary each, their rows checked together) and
//! hold their counts against the committed baseline, or refresh that baseline.
//!
//! ```text
//! cargo run -p shmring-instr --bin instr-check -- check     # fails (exit 1) on a count over budget
//! cargo run -p shmring-instr --bin instr-check -- refresh   # rewrites instr-baseline.json
//! ```
//!
//! Options: `--from FILE` reads gungraun's JSON lines from FILE instead of running
//! `cargo bench -p shmring-instr --bench instr --bench instr_broadcast -- --output-format=json`; `--baseline FILE`
//! uses another baseline than the committed `crates/shmring-instr/instr-baseline.json`.
//! The runner `gungraun-runner` (the library's version) and valgrind must be installed.

use shmring_instr::{Baseline, compare, parse_summaries, render};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

/// The committed baseline.
const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/instr-baseline.json");

const USAGE: &str = "usage: instr-check check|refresh [--from FILE] [--baseline FILE]";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("instr-check: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().ok_or(USAGE)?;
    let mut from: Option<PathBuf> = None;
    let mut baseline = PathBuf::from(BASELINE);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--from" => from = Some(args.next().ok_or(USAGE)?.into()),
            "--baseline" => baseline = args.next().ok_or(USAGE)?.into(),
            _ => return Err(format!("unknown argument {a:?}; {USAGE}")),
        }
    }
    let output = match &from {
        Some(f) => std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?,
        None => run_benches()?,
    };
    let now = parse_summaries(&output)?;
    match cmd.as_str() {
        "check" => {
            let text = std::fs::read_to_string(&baseline).map_err(|e| format!("{}: {e}", baseline.display()))?;
            let base: Baseline =
                serde_json::from_str(&text).map_err(|e| format!("{}: not a baseline: {e}", baseline.display()))?;
            let lines = compare(&base, &now)?;
            print!("{}", render(&lines, base.margin_pct));
            let failed: Vec<_> = lines.iter().filter(|l| l.failed).collect();
            if failed.is_empty() {
                println!(
                    "instr-check: {} benchmarks within {}% of {}",
                    lines.len(),
                    base.margin_pct,
                    baseline.display()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                for l in &failed {
                    match (l.baseline, l.now, l.change_pct()) {
                        (Some(b), Some(n), Some(c)) => {
                            println!(
                                "instr-check: FAIL {}: {n} instructions, baseline {b} ({c:+.2}%)",
                                l.name
                            )
                        }
                        (None, _, _) => println!("instr-check: FAIL {}: not in the baseline", l.name),
                        _ => println!("instr-check: FAIL {}: in the baseline but not measured", l.name),
                    }
                }
                println!(
                    "instr-check: {} of {} benchmarks over budget (margin {}%); after an intended change, \
                     refresh with `cargo run -p shmring-instr --bin instr-check -- refresh`",
                    failed.len(),
                    lines.len(),
                    base.margin_pct
                );
                Ok(ExitCode::FAILURE)
            }
        }
        "refresh" => {
            // Keep the committed margin; only the counts change.
            let mut base = Baseline::new(now);
            if let Ok(old) = std::fs::read_to_string(&baseline)
                && let Ok(old) = serde_json::from_str::<Baseline>(&old)
            {
                base.margin_pct = old.margin_pct;
            }
            let text = serde_json::to_string_pretty(&base).map_err(|e| e.to_string())? + "\n";
            std::fs::write(&baseline, text).map_err(|e| format!("{}: {e}", baseline.display()))?;
            let lines = compare(&base, &base.counts)?;
            print!("{}", render(&lines, base.margin_pct));
            println!(
                "instr-check: wrote {} counts to {}",
                base.counts.len(),
                baseline.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(USAGE.into()),
    }
}

/// Run the benches with JSON output; their human-readable log goes to stderr.
fn run_benches() -> Result<String, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args([
            "bench",
            "--locked",
            "-p",
            "shmring-instr",
            "--bench",
            "instr",
            "--bench",
            "instr_broadcast",
            "--",
            "--output-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{cargo} bench: {e}"))?;
    if !out.status.success() {
        return Err(format!("cargo bench failed ({})", out.status));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("bench output: {e}"))
}
