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

use super::launch::{PeerJob, run_peers};
use super::peer::{PeerReport, PeerSpec, Role, barrier};
use super::reference::{SharedWord, floor_page};
use super::report::{OptTarget, Row, ns, rate, ratio};
use super::{Result, err};
use serde::{Deserialize, Serialize};
use shmring::shm::{Segment, SegmentKind, SegmentOptions};
use shmring::sync::Mutex;
use std::fmt::Write as _;
use std::mem::{MaybeUninit, offset_of, size_of};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A lock of the lock rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum LockKind {
    /// `shmring::sync::Mutex<u64>`: robust, process-shared, in an anonymous segment.
    #[value(alias = "shmring-mutex")]
    Shmring,
    /// A `pthread_mutex_t` with `PTHREAD_PROCESS_SHARED` in shared memory.
    #[value(alias = "pthread-mutex")]
    Pthread,
    /// The same with `PTHREAD_MUTEX_ROBUST`.
    PthreadRobust,
    /// Python's `multiprocessing.Lock`, run by `python3` (skipped if it is missing).
    #[value(alias = "python-mp-lock")]
    Python,
}

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

/// What `--lock-modes` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub(crate) enum LockMode {
    /// One thread, nobody else touching the lock: ns per lock+unlock.
    Uncontended,
    /// Two processes taking the lock in a loop: operations per second of both.
    Contended,
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

// ---- the locks ---------------------------------------------------------------------

/// A lock guarding the shared counter.
pub(crate) trait CounterLock {
    /// Lock, apply `f` to the counter, unlock.
    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> Result<R>;
}

impl CounterLock for Mutex<u64> {
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> Result<R> {
        match self.lock() {
            Ok(mut g) => Ok(f(&mut g)),
            Err(_) => Err(err("a holder of the shmring mutex died")),
        }
    }
}

/// The area of a pthread lock's segment.
#[repr(C)]
struct PthreadArea {
    mutex: libc::pthread_mutex_t,
    count: u64,
}

/// A process-shared pthread mutex and its counter in an anonymous `Raw` segment.
pub(crate) struct PthreadLock {
    seg: Segment,
}

/// Parameter 0 of a pthread lock's segment: plain or robust (so that a child cannot map
/// one as the other).
fn pthread_param(robust: bool) -> u64 {
    if robust { 2 } else { 1 }
}

impl PthreadLock {
    /// A new unlocked mutex (robust or not) with a zero counter.
    pub(crate) fn create(robust: bool) -> Result<Self> {
        let mut params = [0u64; 8];
        params[0] = pthread_param(robust);
        let seg = Segment::anonymous(
            SegmentKind::Raw,
            params,
            size_of::<PthreadArea>(),
            &SegmentOptions::default(),
        )?;
        let mut lock = PthreadLock { seg };
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        let check = |what: &str, rc: libc::c_int| {
            if rc == 0 {
                Ok(())
            } else {
                Err(err(format!("{what}: {}", std::io::Error::from_raw_os_error(rc))))
            }
        };
        // SAFETY: `attr` is valid for writes of a pthread_mutexattr_t; init fills it.
        check("pthread_mutexattr_init", unsafe {
            libc::pthread_mutexattr_init(attr.as_mut_ptr())
        })?;
        let attr_ptr = attr.as_mut_ptr();
        let set = || -> Result<()> {
            // SAFETY: `attr_ptr` points to an attribute object initialized above.
            check("pthread_mutexattr_setpshared", unsafe {
                libc::pthread_mutexattr_setpshared(attr_ptr, libc::PTHREAD_PROCESS_SHARED)
            })?;
            // SAFETY: as above.
            check("pthread_mutexattr_settype", unsafe {
                libc::pthread_mutexattr_settype(attr_ptr, libc::PTHREAD_MUTEX_NORMAL)
            })?;
            if robust {
                // SAFETY: as above.
                check("pthread_mutexattr_setrobust", unsafe {
                    libc::pthread_mutexattr_setrobust(attr_ptr, libc::PTHREAD_MUTEX_ROBUST)
                })?;
            }
            // SAFETY: the mutex pointer is in the area of a mapping of at least
            // size_of::<PthreadArea>() bytes that `lock` keeps, aligned (128-byte aligned
            // area, mutex at offset 0), and nobody else maps the segment yet (it is not
            // published); the attribute object is initialized.
            check("pthread_mutex_init", unsafe {
                libc::pthread_mutex_init(lock.mutex(), attr_ptr)
            })
        };
        let r = set();
        // SAFETY: the attribute object was initialized and is not used after this.
        unsafe { libc::pthread_mutexattr_destroy(attr_ptr) };
        r?;
        lock.seg.publish_ready();
        Ok(lock)
    }

    /// Map the lock made by [`PthreadLock::create`] in another process.
    pub(crate) fn from_fd(fd: OwnedFd, robust: bool) -> Result<Self> {
        let seg = Segment::from_fd(fd, SegmentKind::Raw, &SegmentOptions::default())?;
        if seg.area_len() < size_of::<PthreadArea>() || seg.info().params[0] != pthread_param(robust) {
            return Err(err("the descriptor is not a pthread lock of this kind"));
        }
        Ok(PthreadLock { seg })
    }

    /// Another handle on the segment's descriptor, for a child.
    fn fd(&self) -> Result<OwnedFd> {
        Ok(self.seg.as_fd().try_clone_to_owned()?)
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.seg.area_ptr().cast()
    }

    fn count(&self) -> *mut u64 {
        self.seg.area_ptr().wrapping_add(offset_of!(PthreadArea, count)).cast()
    }

    #[cold]
    #[inline(never)]
    fn failed(what: &str, rc: libc::c_int) -> super::Error {
        if rc == libc::EOWNERDEAD {
            err(format!("{what}: a holder of the pthread mutex died"))
        } else {
            err(format!("{what}: {}", std::io::Error::from_raw_os_error(rc)))
        }
    }
}

impl CounterLock for PthreadLock {
    #[inline(always)]
    fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> Result<R> {
        // SAFETY: the mutex was initialized process-shared by the creator before the
        // segment was published, and lives in the mapping `self` keeps.
        let rc = unsafe { libc::pthread_mutex_lock(self.mutex()) };
        if rc != 0 {
            return Err(Self::failed("pthread_mutex_lock", rc));
        }
        // SAFETY: the counter is in bounds and 8-byte aligned in the mapping, and every
        // party touches it only while holding the mutex, which this thread holds.
        let r = f(unsafe { &mut *self.count() });
        // SAFETY: this thread holds the mutex (locked above).
        let rc = unsafe { libc::pthread_mutex_unlock(self.mutex()) };
        if rc != 0 {
            return Err(Self::failed("pthread_mutex_unlock", rc));
        }
        Ok(r)
    }
}

/// One lock of each Rust kind, made by the parent.
enum Made {
    Shmring(Mutex<u64>),
    Pthread(PthreadLock),
}

impl Made {
    fn new(kind: LockKind) -> Result<Self> {
        Ok(match kind {
            LockKind::Shmring => Made::Shmring(Mutex::anonymous(0)?),
            LockKind::Pthread => Made::Pthread(PthreadLock::create(false)?),
            LockKind::PthreadRobust => Made::Pthread(PthreadLock::create(true)?),
            LockKind::Python => return Err(err("the Python lock is made by python3")),
        })
    }

    fn fd(&self) -> Result<OwnedFd> {
        match self {
            Made::Shmring(m) => Ok(m.as_fd().try_clone_to_owned()?),
            Made::Pthread(p) => p.fd(),
        }
    }

    fn count(&self) -> Result<u64> {
        match self {
            Made::Shmring(m) => m.with(|c| *c),
            Made::Pthread(p) => p.with(|c| *c),
        }
    }
}

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
pub(crate) fn run_uncontended(
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

/// Peer role [`Role::LockContender`]: map the lock (`fds: [lock, control page]`), then
/// contend for `spec.duration_ns`.
pub(crate) fn contend(lock: OwnedFd, control: OwnedFd, spec: &PeerSpec) -> Result<PeerReport> {
    let ctl = SharedWord::map(control)?;
    let c = match spec.lock {
        Some(LockKind::Shmring) => {
            let m = Mutex::<u64>::from_fd(lock)?;
            barrier()?;
            contend_on(&m, ctl.word(), spec)?
        }
        Some(k @ (LockKind::Pthread | LockKind::PthreadRobust)) => {
            let p = PthreadLock::from_fd(lock, k == LockKind::PthreadRobust)?;
            barrier()?;
            contend_on(&p, ctl.word(), spec)?
        }
        other => return Err(err(format!("a lock contender cannot run {other:?}"))),
    };
    Ok(PeerReport::Contended(c))
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
fn run_rust(kind: LockKind, duration: Duration, pin: &[usize], timeout: Duration) -> Result<Run> {
    let made = Made::new(kind)?;
    let control = floor_page()?;
    let mut jobs = Vec::with_capacity(2);
    for id in 0..2 {
        let mut spec = PeerSpec::new(Role::LockContender, None, GUARDED);
        spec.lock = Some(kind);
        spec.id = id;
        spec.duration_ns = duration.as_nanos() as u64;
        spec.cpu = pin.get(id as usize).copied();
        jobs.push(PeerJob {
            spec,
            fds: vec![made.fd()?, control.try_clone()?],
        });
    }
    drop(control);
    let reports = run_peers(jobs, timeout)?;
    let mut cs = Vec::with_capacity(2);
    for r in reports {
        match r {
            PeerReport::Contended(c) => cs.push(c),
            other => return Err(err(format!("unexpected report from a lock contender: {other:?}"))),
        }
    }
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
pub(crate) fn run_contended(
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
                k => got.push(run_rust(*k, duration, pin, timeout)?),
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
    let o = match super::python::run_script(PY_SCRIPT, args, timeout)? {
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

    /// The targets block (after the other issues' targets).
    pub(crate) fn render_targets(&self, out: &mut String, far: usize) {
        super::report::render_target_lines(out, "locks", &self.targets(), far);
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
    fn pthread_locks_count_across_threads() {
        for robust in [false, true] {
            let l = std::sync::Arc::new(PthreadLock::create(robust).unwrap());
            let ts: Vec<_> = (0..2)
                .map(|_| {
                    let l = l.clone();
                    std::thread::spawn(move || {
                        for _ in 0..10_000 {
                            l.with(|c| *c += 1).unwrap();
                        }
                    })
                })
                .collect();
            for t in ts {
                t.join().unwrap();
            }
            assert_eq!(l.with(|c| *c).unwrap(), 20_000);
            let other = PthreadLock::from_fd(l.fd().unwrap(), robust).unwrap();
            assert_eq!(other.with(|c| *c).unwrap(), 20_000);
            assert!(PthreadLock::from_fd(l.fd().unwrap(), !robust).is_err());
        }
    }

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
        r.render_targets(&mut text, 0);
        assert!(text.contains("python-mp-lock   skipped: python3 not found"), "{text}");
        assert!(text.contains("[SKIP]") && text.contains("[FAIL]"), "{text}");
    }
}
