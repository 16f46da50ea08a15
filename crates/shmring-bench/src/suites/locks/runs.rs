//! The runs of the lock rows: uncontended batches in this process, contended runs of
//! two `__bench-peer` children (the Rust kinds) or of two Python processes, and the
//! Python script.

use super::pthread::{CounterLock, Made, PthreadLock};
use super::{
    BATCH, CONTENDED_ROLE, GUARDED, LockResults, PY_BATCH, PY_BATCH_QUICK, RUST_BATCH, RUST_BATCH_QUICK, ns_f,
};
use crate::args::LockKind;
use crate::launch::{PeerJob, run_peers};
use crate::peer::{PeerSpec, barrier};
use crate::reference::{SharedWord, floor_page};
use crate::report::rate;
use crate::{Result, err};
use serde::{Deserialize, Serialize};
use shmring::sync::Mutex;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

// ---- uncontended ---------------------------------------------------------------------

/// `n` uncontended lock / increment / unlock operations.
#[inline(never)]
fn batch(l: &impl CounterLock, n: u64) -> Result<Duration> {
    let t = Instant::now();
    for _ in 0..n {
        l.with(|c| *c += 1)?;
    }
    Ok(t.elapsed())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The uncontended step: every selected kind, recorded in `res`. Returns the progress
/// line.
pub(super) fn run_uncontended(
    kinds: &[LockKind],
    quick: bool,
    timeout: Duration,
    res: &mut LockResults,
) -> Result<String> {
    let rust: Vec<LockKind> = kinds.iter().copied().filter(|&k| k != LockKind::Python).collect();
    let mut line = Vec::new();
    if !rust.is_empty() {
        let (n, reps) = if quick { RUST_BATCH_QUICK } else { RUST_BATCH };
        let made = rust.iter().map(|&k| Made::new(k)).collect::<Result<Vec<_>>>()?;
        let run = |m: &Made, n: u64| match m {
            Made::Shmring(l) => batch(l, n),
            Made::Pthread(l) => batch(l, n),
        };
        for m in &made {
            run(m, n / 4)?;
        }
        let mut samples = vec![Vec::with_capacity(reps); made.len()];
        for _ in 0..reps {
            for (m, s) in made.iter().zip(&mut samples) {
                s.push(run(m, n)?.as_nanos() as f64 / n as f64);
            }
        }
        for ((k, m), s) in rust.iter().zip(&made).zip(&samples) {
            let want = n / 4 + n * reps as u64;
            let got = m.count()?;
            if got != want {
                return Err(err(format!(
                    "{}: the counter reads {got} after {want} increments",
                    k.name()
                )));
            }
            let v = median(s);
            res.uncontended.push((*k, v));
            line.push(format!("{} {}", k.name(), ns_f(v)));
        }
    }
    if kinds.contains(&LockKind::Python) {
        let (n, reps) = if quick { PY_BATCH_QUICK } else { PY_BATCH };
        match python::<PyUncontended>(&["uncontended", &n.to_string(), &reps.to_string()], timeout)? {
            Ok(r) if !r.ns.is_empty() => {
                let v = median(&r.ns);
                res.uncontended.push((LockKind::Python, v));
                res.python_loop_ns = Some(r.loop_ns);
                line.push(format!("{} {}", LockKind::Python.name(), ns_f(v)));
            }
            Ok(_) => return Err(err("python3 timed no batch")),
            Err(why) => {
                line.push(format!("{} skipped ({why})", LockKind::Python.name()));
                res.skip(LockKind::Python, why);
            }
        }
    }
    Ok(line.join(", "))
}

// ---- contended -----------------------------------------------------------------------

/// Bit 63 of the control word: stop. The low bits count the contenders that arrived.
const STOP: u64 = 1 << 63;

/// One contender's result, as its peer process reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Contender {
    /// Lock+unlock pairs.
    pub(crate) ops: u64,
    /// Acquisitions that found the counter changed since this process last held it.
    pub(crate) handoffs: u64,
    /// From the common start to this contender's stop.
    pub(crate) elapsed_ns: u64,
}

/// One contended run of a kind.
#[derive(Debug, Clone, Copy)]
struct Run {
    ops: [u64; 2],
    handoffs: u64,
    elapsed_ns: u64,
}

impl Run {
    fn per_s(&self) -> f64 {
        (self.ops[0] + self.ops[1]) as f64 / (self.elapsed_ns.max(1) as f64 / 1e9)
    }
}

/// A contended row: the median run.
#[derive(Debug, Clone)]
pub(crate) struct ContendedRow {
    /// Operations per second of both processes together.
    pub(crate) per_s: f64,
    /// Share of the operations done by the busier process (0.5: even).
    pub(crate) busier: f64,
    /// Operations per hand-off between the processes.
    pub(crate) per_handoff: f64,
    /// The rates of all runs.
    pub(crate) runs: Vec<f64>,
}

/// Peer role [`CONTENDED_ROLE`]: map the lock of the job's [`LockKind`] (`fds: [lock,
/// control page]`), then contend for `spec.duration_ns`.
pub(super) fn contend(lock: OwnedFd, control: OwnedFd, spec: &PeerSpec) -> Result<Contender> {
    let ctl = SharedWord::map(control)?;
    match spec.param::<LockKind>()? {
        LockKind::Shmring => {
            let m = Mutex::<u64>::from_fd(lock)?;
            barrier()?;
            contend_on(&m, ctl.word(), spec)
        }
        k @ (LockKind::Pthread | LockKind::PthreadRobust) => {
            let p = PthreadLock::from_fd(lock, k == LockKind::PthreadRobust)?;
            barrier()?;
            contend_on(&p, ctl.word(), spec)
        }
        other => Err(err(format!("a lock contender cannot run {other:?}"))),
    }
}

fn contend_on(l: &impl CounterLock, ctl: &AtomicU64, spec: &PeerSpec) -> Result<Contender> {
    // Start together: count in, and spin until both are in (the peers got `go` within
    // a few milliseconds of each other). Relaxed: the word only carries the count and
    // the stop bit; the lock orders everything else.
    ctl.fetch_add(1, Ordering::Relaxed);
    let waiting = Instant::now();
    while ctl.load(Ordering::Relaxed) & !STOP < 2 {
        if waiting.elapsed() > Duration::from_secs(10) {
            return Err(err("the other contender did not start"));
        }
        std::hint::spin_loop();
    }
    let run_for = Duration::from_nanos(spec.duration_ns);
    let (mut ops, mut handoffs, mut mine) = (0u64, 0u64, u64::MAX);
    let start = Instant::now();
    loop {
        for _ in 0..BATCH {
            l.with(|c| {
                if *c != mine {
                    handoffs += 1;
                }
                *c += 1;
                mine = *c;
            })?;
        }
        ops += BATCH;
        // Relaxed: a flag polled between operations.
        if ctl.load(Ordering::Relaxed) & STOP != 0 || start.elapsed() >= run_for {
            break;
        }
    }
    let elapsed_ns = start.elapsed().as_nanos() as u64;
    // Relaxed: as above.
    ctl.fetch_or(STOP, Ordering::Relaxed);
    Ok(Contender {
        ops,
        handoffs,
        elapsed_ns,
    })
}

/// One contended run of a Rust kind: two peer processes on a fresh lock.
fn run_rust(suite: &str, kind: LockKind, duration: Duration, pin: &[usize], timeout: Duration) -> Result<Run> {
    let made = Made::new(kind)?;
    let control = floor_page()?;
    let mut jobs = Vec::with_capacity(2);
    for id in 0..2 {
        let mut spec = PeerSpec::new(suite, CONTENDED_ROLE, None, GUARDED).with_param(&kind)?;
        spec.id = id;
        spec.duration_ns = duration.as_nanos() as u64;
        spec.cpu = pin.get(id as usize).copied();
        jobs.push(PeerJob {
            spec,
            fds: vec![made.fd()?, control.try_clone()?],
        });
    }
    drop(control);
    let cs: Vec<Contender> = run_peers(jobs, timeout)?;
    let run = Run {
        ops: [cs[0].ops, cs[1].ops],
        handoffs: cs[0].handoffs + cs[1].handoffs,
        elapsed_ns: cs[0].elapsed_ns.max(cs[1].elapsed_ns),
    };
    let count = made.count()?;
    if count != run.ops[0] + run.ops[1] {
        return Err(err(format!(
            "{}: the counter reads {count} after {} + {} increments",
            kind.name(),
            run.ops[0],
            run.ops[1]
        )));
    }
    Ok(run)
}

/// One contended run of Python's lock; `Ok(Err(why))` if Python could not run it.
fn run_python(duration: Duration, timeout: Duration) -> Result<Result<Run, String>> {
    let r = match python::<PyContended>(&["contended", &format!("{}", duration.as_secs_f64())], timeout)? {
        Ok(r) => r,
        Err(why) => return Ok(Err(why)),
    };
    if r.count != r.ops[0] + r.ops[1] {
        return Err(err(format!(
            "python-mp-lock: the counter reads {} after {} + {} increments",
            r.count, r.ops[0], r.ops[1]
        )));
    }
    Ok(Ok(Run {
        ops: r.ops,
        handoffs: r.handoffs,
        elapsed_ns: (r.elapsed_s[0].max(r.elapsed_s[1]) * 1e9) as u64,
    }))
}

/// The contended step: `runs` runs of every selected kind, interleaved, recorded in
/// `res`. Returns the progress line.
pub(super) fn run_contended(
    suite: &str,
    kinds: &[LockKind],
    duration: Duration,
    runs: usize,
    pin: &[usize],
    timeout: Duration,
    res: &mut LockResults,
) -> Result<String> {
    let mut all: Vec<(LockKind, Vec<Run>)> = kinds.iter().map(|&k| (k, Vec::new())).collect();
    let mut skipped: Option<String> = None;
    for _ in 0..runs {
        for (kind, got) in &mut all {
            match kind {
                LockKind::Python => {
                    if skipped.is_some() {
                        continue;
                    }
                    match run_python(duration, timeout)? {
                        Ok(r) => got.push(r),
                        Err(why) => skipped = Some(why),
                    }
                }
                k => got.push(run_rust(suite, *k, duration, pin, timeout)?),
            }
        }
    }
    let mut line = Vec::new();
    for (kind, mut got) in all {
        if got.is_empty() {
            continue;
        }
        let rates: Vec<f64> = got.iter().map(Run::per_s).collect();
        got.sort_by(|a, b| a.per_s().total_cmp(&b.per_s()));
        let m = got[got.len() / 2];
        let total = m.ops[0] + m.ops[1];
        let row = ContendedRow {
            per_s: m.per_s(),
            busier: m.ops[0].max(m.ops[1]) as f64 / total.max(1) as f64,
            per_handoff: total as f64 / m.handoffs.max(1) as f64,
            runs: rates,
        };
        line.push(format!(
            "{} {}/s (busier {:.0}%, {:.0} ops/hand-off)",
            kind.name(),
            rate(row.per_s),
            100.0 * row.busier,
            row.per_handoff
        ));
        res.contended.push((kind, row));
    }
    if let Some(why) = skipped {
        line.push(format!("{} skipped ({why})", LockKind::Python.name()));
        res.skip(LockKind::Python, why);
    }
    Ok(line.join(", "))
}

// ---- Python --------------------------------------------------------------------------

/// The script `python3 -c` runs: `uncontended N REPS` or `contended SECONDS`; prints
/// one line of JSON.
const PY_SCRIPT: &str = r#"
import json, sys, time, multiprocessing as mp

def uncontended(n, reps):
    lock = mp.Lock()
    acquire, release = lock.acquire, lock.release
    ns = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(n):
            acquire(); release()
        ns.append((time.perf_counter() - t) / n * 1e9)
    t = time.perf_counter()
    for _ in range(n):
        pass
    return {"ns": ns, "loop_ns": (time.perf_counter() - t) / n * 1e9}

def contender(i, lock, value, barrier, stop, out, duration):
    acquire, release = lock.acquire, lock.release
    ops = handoffs = 0
    mine = -1
    barrier.wait()
    t0 = time.perf_counter()
    end = t0 + duration
    while True:
        for _ in range(64):
            acquire()
            c = value.value
            if c != mine:
                handoffs += 1
            mine = c + 1
            value.value = mine
            release()
        ops += 64
        if stop.value or time.perf_counter() >= end:
            break
    elapsed = time.perf_counter() - t0
    stop.value = 1
    out[3 * i:3 * i + 3] = [ops, handoffs, elapsed]

def contended(duration):
    ctx = mp.get_context("fork")
    lock, value, stop = ctx.Lock(), ctx.RawValue("Q", 0), ctx.RawValue("b", 0)
    barrier, out = ctx.Barrier(2), ctx.RawArray("d", 6)
    ps = [ctx.Process(target=contender, args=(i, lock, value, barrier, stop, out, duration)) for i in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    if any(p.exitcode != 0 for p in ps):
        sys.exit("a contending process failed")
    return {"ops": [int(out[0]), int(out[3])], "handoffs": int(out[1] + out[4]),
            "elapsed_s": [out[2], out[5]], "count": value.value}

if sys.argv[1] == "uncontended":
    r = uncontended(int(sys.argv[2]), int(sys.argv[3]))
else:
    r = contended(float(sys.argv[2]))
print(json.dumps(r))
"#;

/// What the script prints for `uncontended`.
#[derive(Debug, Deserialize)]
struct PyUncontended {
    /// ns per `acquire(); release()`, per batch.
    ns: Vec<f64>,
    /// ns per iteration of an empty `for` loop.
    loop_ns: f64,
}

/// What the script prints for `contended`.
#[derive(Debug, Deserialize)]
struct PyContended {
    ops: [u64; 2],
    handoffs: u64,
    elapsed_s: [f64; 2],
    count: u64,
}

/// Run the script with `args`. `Ok(Err(why))`: Python is not there, or cannot run it
/// (the rows are then skipped, never estimated); `Err`: it ran and printed nonsense, or
/// took longer than `timeout`.
fn python<T: serde::de::DeserializeOwned>(args: &[&str], timeout: Duration) -> Result<Result<T, String>> {
    let o = match crate::python::run_script(PY_SCRIPT, args, timeout)? {
        Ok(o) => o,
        Err(why) => return Ok(Err(why)),
    };
    if !o.status.success() {
        let why = if o.last_err.is_empty() {
            "no message"
        } else {
            o.last_err.as_str()
        };
        return Ok(Err(format!("python3 failed ({}): {why}", o.status)));
    }
    let line = &o.last_out;
    let v = serde_json::from_str(line).map_err(|e| err(format!("python3 printed {line:?}: {e}")))?;
    Ok(Ok(v))
}
