//! The Python rows: `multiprocessing.Pipe` and `Queue` carrying the same tick, run by
//! `python3 -c`.

use super::peers::per_s;
use crate::args::VocabKind;
use crate::{Result, err};
use serde::Deserialize;
use std::time::Duration;

/// The script `python3 -c` runs: `pipe N CPU CPU` or `queue N CPU CPU` (a CPU of -1:
/// not pinned); prints one line of JSON, or exits with [`PY_FAILED`] and a line on
/// stderr when a check fails.
pub(crate) const PY_SCRIPT: &str = r#"
import json, os, sys, time, multiprocessing as mp

BASE = 1 << 32
FAILED = 3  # the exit status of a failed check
SYM = "EURUSD"

def pin(cpu):
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})

def produce(send, n):
    for i in range(n):
        send((BASE + i, 100.0 + (i % 1000) * 0.25, 200 + i % 100, SYM))

def pipe_producer(w, n, cpu):
    pin(cpu)
    produce(w.send, n)
    w.close()

def queue_producer(q, n, cpu):
    pin(cpu)
    produce(q.put, n)
    q.close()
    q.join_thread()

producer = None

def fail(why):
    # At once: no atexit join of a producer that may be blocked on a full pipe.
    if producer is not None and producer.is_alive():
        producer.kill()
    sys.stderr.write(why + "\n")
    sys.stderr.flush()
    os._exit(FAILED)

def consume(get, n):
    i = 0
    try:
        m = get()
        t0 = time.perf_counter()
        if m[0] != BASE:
            fail("message 0 carries sequence number %d" % (m[0] - BASE))
        for i in range(1, n):
            m = get()
            if m[0] != BASE + i:
                fail("message %d carries sequence number %d" % (i, m[0] - BASE))
    except EOFError:
        fail("the stream ended after %d of %d messages" % (i, n))
    return time.perf_counter() - t0

kind, n, cpu0, cpu1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ctx = mp.get_context("fork")
if kind == "pipe":
    r, w = ctx.Pipe()
    producer = p = ctx.Process(target=pipe_producer, args=(w, n, cpu0))
    p.start()
    w.close()
    pin(cpu1)
    elapsed = consume(r.recv, n)
    try:
        r.recv()
        fail("the pipe carried more than %d messages" % n)
    except EOFError:
        pass
else:
    q = ctx.Queue()
    producer = p = ctx.Process(target=queue_producer, args=(q, n, cpu0))
    p.start()
    pin(cpu1)
    elapsed = consume(q.get, n)
p.join()
if p.exitcode != 0:
    fail("the producer failed (exit code %s)" % p.exitcode)
if kind == "queue" and not q.empty():
    fail("the queue carried more than %d messages" % n)
print(json.dumps({"messages": n, "elapsed_s": elapsed}))
"#;

/// Exit status of the script when a check fails (a failure of the row, not a skip).
const PY_FAILED: i32 = 3;

/// What the script prints.
#[derive(Debug, Deserialize)]
struct PyRun {
    messages: u64,
    elapsed_s: f64,
}

/// One run of a Python row. `Ok(Err(why))`: Python is not there or cannot run it (the
/// row is then skipped, never estimated); `Err`: it ran and failed a check, printed
/// nonsense, or took longer than `timeout`.
pub(super) fn run_python(kind: VocabKind, n: u64, pin: &[usize], timeout: Duration) -> Result<Result<f64, String>> {
    let what = if kind == VocabKind::PythonPipe { "pipe" } else { "queue" };
    let cpu = |i: usize| pin.get(i).map_or("-1".to_owned(), |c| c.to_string());
    let o = match crate::python::run_script(PY_SCRIPT, &[what, &n.to_string(), &cpu(0), &cpu(1)], timeout)? {
        Ok(o) => o,
        Err(why) => return Ok(Err(why)),
    };
    if !o.status.success() {
        let why = &o.last_err;
        // A failed check is a failure of the row, not a reason to skip it.
        if o.status.code() == Some(PY_FAILED) {
            return Err(err(format!("{}: {why}", kind.name())));
        }
        return Ok(Err(format!("python3 failed ({}): {why}", o.status)));
    }
    let line = o.last_out;
    let r: PyRun = serde_json::from_str(&line).map_err(|e| err(format!("python3 printed {line:?}: {e}")))?;
    if r.messages != n || r.elapsed_s <= 0.0 {
        return Err(err(format!("python3 reported {line}")));
    }
    Ok(Ok(per_s(n, r.elapsed_s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rows_run_or_are_skipped() {
        for kind in [VocabKind::PythonPipe, VocabKind::PythonQueue] {
            match run_python(kind, 2000, &[], Duration::from_secs(60)).unwrap() {
                Ok(per_s) => assert!(per_s > 0.0, "{kind:?}"),
                Err(why) => assert!(why.contains("python3"), "{why}"),
            }
        }
    }
}
