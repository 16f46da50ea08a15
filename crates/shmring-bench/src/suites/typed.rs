//! The typed-message rows of `shmring bench`: the `multiprocessing` vocabulary
//! — [`shmring::connection`]'s `Pipe` and [`shmring::queue`]'s `Queue` — carrying a small
//! typed message from one producer process to one consumer process, next to a Unix
//! socket carrying the same encoded bytes and to Python's `multiprocessing.Pipe` and
//! `multiprocessing.Queue`, all in the same run.
//!
//! The message is a [`Tick`](peers::Tick) (`seq: u64, px: f64, qty: u32, sym: String`), 22 bytes in
//! postcard's format (see [`shmring::codec`]); the sequence numbers start at 2^32 so that
//! every message of every row encodes to the same length. Python sends the equivalent
//! tuple `(seq, px, qty, "EURUSD")`, pickled by `multiprocessing`.
//!
//! - **shmring-pipe**: `connection::pipe(false)` (one way: a duplex pipe is two such
//!   rings, one per direction), the ends handed to two `__bench-peer` children with
//!   `into_fds` / `from_fds`; `send(&tick)` / `recv::<Tick>()`, default options
//!   (adaptive waits, a 256 KiB ring).
//! - **shmring-queue**: `Queue::<Tick>::new(`[`QUEUE_MAXSIZE`]`)`, a handle per child
//!   (`try_clone()?.into_fd()` / `Queue::from_fd`); `put(&tick)` / `get()`. The producer
//!   closes the queue after its last message; the parent checks the queue's counters.
//! - **shmring-pipe** (`typed-borrowed`): the same pipe and sender; the consumer takes
//!   each message in place with `recv_ref()` and decodes it as a
//!   [`TickRef`](peers::TickRef) (`sym: &str` borrowed from the ring: no allocation);
//!   the message's space goes back to the sender when it is dropped, one message at a
//!   time.
//! - **shmring-pipe** (`typed-batch`): the same, with `recv_batch(`[`BATCH`]`, ..)`: the
//!   messages there now (at least one, waiting as `recv` does) handed over in place
//!   one after the other and decoded as `TickRef`s, their space released once per
//!   batch (one index store and one check whether the sender sleeps per batch, not per
//!   message). This is what a consumer that keeps up would write.
//! - **shmring-queue** (`typed-borrowed`): the same queue and sender; the consumer takes
//!   each message with `get_ref()` and decodes it as a `TickRef` (no `String`
//!   allocated).
//! - **unix-socket** (`typed`): a `SOCK_STREAM` socket pair; each message is the same
//!   postcard bytes behind a 4-byte little-endian length, written with **one `write`
//!   per message** (length and bytes coalesced), so that, as with `send`/`put`, the
//!   message is with the receiver when the call returns; the receiver reads through a
//!   64 KiB `BufReader` (one `read` per many messages) and decodes each with
//!   [`shmring::codec::decode`]. This is the targets' baseline.
//! - **unix-socket** (`typed-batched`, a reference, not a target's baseline): the same
//!   with a 64 KiB `BufWriter` on the sending side, flushed only when full and at the
//!   end: one `write` per ~2,500 messages. It shows what batching buys a stream; it
//!   does not deliver a message when its send returns.
//! - **python-mp-pipe** / **python-mp-queue**: `python3 -c` (the script is
//!   [`PY_SCRIPT`](python::PY_SCRIPT)) forks a producer (`multiprocessing` "fork" context) that sends /
//!   puts the tuples while the parent Python process receives / gets them; `Pipe()`
//!   (duplex, a socket pair) and `Queue()` (unbounded, its feeder thread). Skipped, and
//!   said so, if python3 is missing.
//!
//! Every consumer checks every message's sequence number (the Rust ones the whole
//! message), and after the last one that the stream ends (end of stream, disconnect or
//! closed queue: no extra message); the producer's count must match. The clock starts at
//! the first message the consumer receives and stops at the last one (n - 1 messages
//! timed), as in the other throughput rows. The rows' runs are interleaved (run 1 of
//! every row, then run 2, ...), so that a change of the CPUs' placement hits every row
//! alike; a row is its median run.

mod peers;
mod python;

use crate::args::{BenchArgs, Measure, Selected, VocabKind};
use crate::peer::{Fds, PeerSpec};
use crate::report::{OptTarget, Results, Row, rate, ratio};
use crate::suite::{Ctx, Phase, Planned, Suite};
use crate::{Result, err};
use peers::encoded_size;
use std::fmt::Write as _;

/// `maxsize` of the shmring queue: 1024 messages (the ring of the MPMC rows has 1024
/// slots too). Python's queue is unbounded; shmring's `Queue::new(0)` (16,384 slots of
/// 512 bytes, 8 MiB) measured no faster (see docs/benchmarks.md).
pub(crate) const QUEUE_MAXSIZE: usize = 1024;
/// Runs of each row, whose median is the row.
pub(crate) const RUNS: usize = 3;

/// `mode` of the rows.
pub(crate) const TYPED: &str = "typed";
/// `mode` of the batched socket's row.
pub(crate) const TYPED_BATCHED: &str = "typed-batched";
/// `mode` of the rows that decode in place (`recv_ref`, `get_ref`).
pub(crate) const TYPED_BORROWED: &str = "typed-borrowed";
/// `mode` of the pipe row that receives in batches (`recv_batch`).
pub(crate) const TYPED_BATCH: &str = "typed-batch";
/// Most messages the `typed-batch` row takes per `recv_batch`.
pub(crate) const BATCH: usize = 1024;

/// Role: send `count` typed messages through the end of the job's [`VocabKind`]
/// (fds: `[end]`).
const TYPED_PRODUCER: &str = "typed-producer";
/// Role: receive and check them, then the end of the stream (fds: `[end]`).
const TYPED_CONSUMER: &str = "typed-consumer";

impl VocabKind {
    /// Every row, in the table's order.
    pub(crate) const ALL: [VocabKind; 9] = [
        VocabKind::Pipe,
        VocabKind::PipeBorrowed,
        VocabKind::PipeBatch,
        VocabKind::Queue,
        VocabKind::QueueBorrowed,
        VocabKind::Unix,
        VocabKind::UnixBatched,
        VocabKind::PythonPipe,
        VocabKind::PythonQueue,
    ];

    /// The row's transport (in the JSON).
    pub(crate) fn name(self) -> &'static str {
        match self {
            VocabKind::Pipe | VocabKind::PipeBorrowed | VocabKind::PipeBatch => "shmring-pipe",
            VocabKind::Queue | VocabKind::QueueBorrowed => "shmring-queue",
            VocabKind::Unix | VocabKind::UnixBatched => "unix-socket",
            VocabKind::PythonPipe => "python-mp-pipe",
            VocabKind::PythonQueue => "python-mp-queue",
        }
    }

    /// The row's mode (in the JSON).
    pub(crate) fn mode(self) -> &'static str {
        match self {
            VocabKind::UnixBatched => TYPED_BATCHED,
            VocabKind::PipeBorrowed | VocabKind::QueueBorrowed => TYPED_BORROWED,
            VocabKind::PipeBatch => TYPED_BATCH,
            _ => TYPED,
        }
    }

    /// `name` or `name/mode`: the row's label in the table and the target lines.
    pub(crate) fn label(self) -> String {
        match self.mode() {
            TYPED => self.name().to_owned(),
            mode => format!("{}/{mode}", self.name()),
        }
    }

    fn is_python(self) -> bool {
        matches!(self, VocabKind::PythonPipe | VocabKind::PythonQueue)
    }

    /// Messages of one run without `--count`: each row's three runs take about a
    /// second in all on the project's machine; `--quick` about a tenth of that.
    pub(crate) fn default_count(self, quick: bool) -> u64 {
        let n = match self {
            VocabKind::Pipe | VocabKind::PipeBorrowed => 3_000_000,
            VocabKind::PipeBatch => 4_000_000,
            VocabKind::Queue | VocabKind::QueueBorrowed => 2_000_000,
            VocabKind::Unix => 300_000,
            VocabKind::UnixBatched => 4_000_000,
            VocabKind::PythonPipe => 60_000,
            VocabKind::PythonQueue => 50_000,
        };
        if quick { n / 10 } else { n }
    }
}

/// The suite of the typed-message rows.
#[derive(Debug)]
pub(crate) struct Typed;

/// The selected typed rows, each once, in the table's order.
pub(crate) fn vocab_kinds(a: &BenchArgs) -> Vec<VocabKind> {
    let mut k = a.vocab.clone();
    k.sort();
    k.dedup();
    k
}

impl Suite for Typed {
    type Step = ();

    fn name(&self) -> &'static str {
        "typed"
    }

    fn plan(&self, a: &BenchArgs) -> Vec<Planned<()>> {
        if a.has(Selected::Vocab) && a.measures(Measure::Throughput) && !a.vocab.is_empty() {
            vec![Planned::new(Phase::Rows, ())]
        } else {
            Vec::new()
        }
    }

    fn label(&self, _: &()) -> String {
        format!("typed messages of {} B", encoded_size())
    }

    fn run(&self, _: &(), ctx: &mut Ctx<'_>) -> Result<String> {
        let a = ctx.args;
        let runs = if a.quick { 1 } else { RUNS };
        let res = ctx.results.state::<VocabResults>(self.name());
        run(self.name(), a, runs, res)
    }

    fn serve(&self, spec: &PeerSpec, fds: &mut Fds) -> Result<serde_json::Value> {
        let report = match spec.role.as_str() {
            TYPED_PRODUCER => peers::produce(fds.next()?, spec)?,
            TYPED_CONSUMER => peers::consume(fds.next()?, spec)?,
            r => return Err(err(format!("suite {} has no role {r}", self.name()))),
        };
        Ok(serde_json::to_value(report)?)
    }

    fn render(&self, r: &Results, out: &mut String) {
        if let Some(res) = r.state_ref::<VocabResults>(self.name()) {
            res.render(out);
        }
    }

    fn targets(&self, r: &Results) -> Option<(&'static str, Vec<OptTarget>)> {
        Some(("typed messages", r.state_ref::<VocabResults>(self.name())?.targets()))
    }

    fn json_rows(&self, r: &Results) -> Vec<Row> {
        r.state_ref::<VocabResults>(self.name())
            .map(VocabResults::rows)
            .unwrap_or_default()
    }
}

/// The typed step: `runs` runs of every selected row, interleaved, recorded in `res`.
/// `--count`: messages per run of every row (none: each row's default). Returns the
/// progress line.
fn run(suite: &str, a: &BenchArgs, runs: usize, res: &mut VocabResults) -> Result<String> {
    let (kinds, count, quick, pin, timeout) = (vocab_kinds(a), a.count, a.quick, &a.pin[..], a.timeout);
    res.size = encoded_size();
    let mut all: Vec<(VocabKind, Vec<f64>)> = kinds.iter().map(|&k| (k, Vec::new())).collect();
    for _ in 0..runs {
        for (kind, got) in &mut all {
            if res.skipped.iter().any(|(k, _)| k == kind) {
                continue;
            }
            let n = count.unwrap_or_else(|| kind.default_count(quick));
            if n < 2 {
                return Err(err("the typed rows need --count of at least 2"));
            }
            if kind.is_python() {
                match python::run_python(*kind, n, pin, timeout)? {
                    Ok(v) => got.push(v),
                    Err(why) => res.skipped.push((*kind, why)),
                }
            } else {
                got.push(peers::run_rust(suite, *kind, n, pin, timeout)?);
            }
        }
    }
    let mut line = Vec::new();
    for (kind, runs) in all {
        if let Some((_, why)) = res.skipped.iter().find(|(k, _)| *k == kind) {
            line.push(format!("{} skipped ({why})", kind.label()));
            continue;
        }
        if runs.is_empty() {
            continue;
        }
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let per_s = sorted[sorted.len() / 2];
        line.push(format!("{} {}/s", kind.label(), rate(per_s)));
        res.rows.push((kind, VocabRow { per_s, runs }));
    }
    Ok(line.join(", "))
}

// ---- results -------------------------------------------------------------------------

/// A row: the median run, and every run's rate.
#[derive(Debug, Clone)]
pub(crate) struct VocabRow {
    /// Messages per second of the median run.
    pub(crate) per_s: f64,
    /// Messages per second of each run, in order.
    pub(crate) runs: Vec<f64>,
}

/// Everything the typed step measured.
#[derive(Debug, Default)]
pub(crate) struct VocabResults {
    /// Encoded size of a message.
    size: usize,
    rows: Vec<(VocabKind, VocabRow)>,
    /// Rows not measured, and why.
    skipped: Vec<(VocabKind, String)>,
}

impl VocabResults {
    fn get(&self, k: VocabKind) -> Option<f64> {
        self.rows.iter().find(|(x, _)| *x == k).map(|(_, r)| r.per_s)
    }

    fn skipped(&self, k: VocabKind) -> Option<&str> {
        self.skipped.iter().find(|(x, _)| *x == k).map(|(_, w)| w.as_str())
    }

    /// Whether anything was measured or skipped.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.skipped.is_empty()
    }

    /// The JSON rows: `size` is the postcard encoding of a message; `mb_per_s` counts
    /// those bytes (`null` for Python, which pickles); no RTTs.
    pub(crate) fn rows(&self) -> Vec<Row> {
        VocabKind::ALL
            .iter()
            .filter_map(|&k| {
                self.get(k).map(|per_s| Row {
                    transport: k.name(),
                    mode: Some(k.mode()),
                    size: self.size as u64,
                    msgs_per_s: Some(per_s),
                    mb_per_s: (!k.is_python()).then(|| per_s * self.size as f64 / 1e6),
                    rtt_p50_ns: None,
                    rtt_p99_ns: None,
                    rtt_p999_ns: None,
                })
            })
            .collect()
    }

    /// The table of the typed rows and their ratios.
    pub(crate) fn render(&self, out: &mut String) {
        if self.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\ntyped messages: Tick {{ seq: u64, px: f64, qty: u32, sym: String }}, {} B in postcard \
             (Python: the same tuple, pickled); one producer process -> one consumer process; msgs/s of the \
             median run; x pipe = shmring-pipe / row.",
            self.size
        );
        let _ = writeln!(out, "  {:<30} {:>10} {:>8}  runs", "row", "msgs/s", "x pipe");
        let pipe = self.get(VocabKind::Pipe);
        for k in VocabKind::ALL {
            if let Some(why) = self.skipped(k) {
                let _ = writeln!(out, "  {:<30} skipped: {why}", k.label());
                continue;
            }
            let Some((_, r)) = self.rows.iter().find(|(x, _)| *x == k) else {
                continue;
            };
            let x = pipe
                .filter(|_| r.per_s > 0.0)
                .map_or("-".into(), |p| ratio(p / r.per_s));
            let runs: Vec<String> = r.runs.iter().map(|&v| rate(v)).collect();
            let _ = writeln!(
                out,
                "  {:<30} {:>10} {:>8}  {}",
                k.label(),
                rate(r.per_s),
                x,
                runs.join(" ")
            );
        }
        let mut ratios = Vec::new();
        for (a, b) in [
            (VocabKind::Pipe, VocabKind::Unix),
            (VocabKind::Pipe, VocabKind::PythonPipe),
            (VocabKind::Queue, VocabKind::PythonQueue),
            (VocabKind::Queue, VocabKind::Unix),
            (VocabKind::Pipe, VocabKind::UnixBatched),
            (VocabKind::Queue, VocabKind::UnixBatched),
            (VocabKind::PipeBatch, VocabKind::UnixBatched),
            (VocabKind::PipeBatch, VocabKind::PythonPipe),
            (VocabKind::PipeBorrowed, VocabKind::PythonPipe),
            (VocabKind::QueueBorrowed, VocabKind::PipeBatch),
            (VocabKind::QueueBorrowed, VocabKind::PythonQueue),
        ] {
            if let (Some(x), Some(y)) = (self.get(a), self.get(b)) {
                ratios.push(format!("{} / {} {}", a.label(), b.label(), ratio(x / y)));
            }
        }
        if !ratios.is_empty() {
            let _ = writeln!(out, "  ratios: {}", ratios.join("; "));
        }
    }

    /// The targets that this run has the data for (SKIP where Python was missing): the
    /// first four on the plain rows; the last four are issue 18's, on the rows that use
    /// the receive APIs a performance-minded consumer would (the batched pipe, the
    /// queue's in-place get).
    pub(crate) fn targets(&self) -> Vec<OptTarget> {
        let mut out = Vec::new();
        for (a, b, want) in [
            (VocabKind::Pipe, VocabKind::Unix, 10.0),
            (VocabKind::Queue, VocabKind::Unix, 10.0),
            (VocabKind::Pipe, VocabKind::PythonPipe, 100.0),
            (VocabKind::Queue, VocabKind::PythonQueue, 100.0),
            (VocabKind::PipeBatch, VocabKind::UnixBatched, 1.0),
            (VocabKind::PipeBatch, VocabKind::PythonPipe, 100.0),
            (VocabKind::QueueBorrowed, VocabKind::PipeBatch, 0.8),
            (VocabKind::QueueBorrowed, VocabKind::PythonQueue, 100.0),
        ] {
            let Some(x) = self.get(a) else {
                continue;
            };
            let what = format!("typed msgs/s, {} >= {want}x {}", a.label(), b.label());
            match (self.get(b), self.skipped(b)) {
                (Some(y), _) => out.push(OptTarget {
                    what,
                    measured: format!("{} ({}/s vs {}/s)", ratio(x / y), rate(x), rate(y)),
                    pass: Some(x / y >= want),
                }),
                (None, Some(why)) => out.push(OptTarget {
                    what,
                    measured: format!("not measured: {why}"),
                    pass: None,
                }),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_targets() {
        let mut r = VocabResults {
            size: 22,
            ..Default::default()
        };
        assert!(r.is_empty() && r.targets().is_empty());
        let row = |per_s: f64| VocabRow {
            per_s,
            runs: vec![per_s],
        };
        r.rows.push((VocabKind::Pipe, row(10e6)));
        r.rows.push((VocabKind::Queue, row(4e6)));
        r.rows.push((VocabKind::Unix, row(0.5e6)));
        r.rows.push((VocabKind::PythonPipe, row(0.2e6)));
        r.skipped.push((VocabKind::PythonQueue, "python3 not found".into()));
        let t = r.targets();
        assert_eq!(t.len(), 4, "{t:?}");
        assert_eq!(t[0].pass, Some(true), "20x >= 10x");
        assert_eq!(t[1].pass, Some(false), "8x < 10x");
        assert_eq!(t[2].pass, Some(false), "50x < 100x");
        assert!(t[3].pass.is_none() && t[3].measured.contains("python3 not found"));
        let rows = r.rows();
        assert_eq!(rows.len(), 4);
        assert_eq!((rows[0].transport, rows[0].mode), ("shmring-pipe", Some(TYPED)));
        assert_eq!(rows[0].mb_per_s, Some(220.0));
        assert_eq!(rows[3].transport, "python-mp-pipe");
        assert!(rows[3].mb_per_s.is_none());
        let mut text = String::new();
        r.render(&mut text);
        crate::report::render_target_lines(&mut text, "typed messages", &r.targets(), 0);
        assert!(text.contains("python-mp-queue                skipped"), "{text}");
        assert!(text.contains("shmring-pipe / unix-socket 20.0x"), "{text}");
        assert!(
            text.contains("targets (typed messages):") && text.contains("[SKIP]"),
            "{text}"
        );
    }
}
