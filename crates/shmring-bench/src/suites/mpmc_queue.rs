//! The MPMC rows: the MPMC queue with 1, 2 or 4 producer processes and as many consumer
//! processes, each producer pushing a fixed number of 64-byte messages, next to
//! crossbeam's `ArrayQueue` between threads of this process (see [`runs`]), each row the
//! median of three runs; and the queue's blocking hand-off, a ping-pong through two
//! queues with both ends in blocking mode (see [`crate::links`]), run right after the
//! SPSC ring's round trips so that the two blocking hand-offs its target compares run
//! close together in time.

mod runs;

use crate::args::{BenchArgs, Measure, Selected, Topology};
use crate::launch::{PeerJob, run_peers};
use crate::links::{self, PING_SIZE, rtt_summary};
use crate::peer::{Fds, PeerSpec};
use crate::reference;
use crate::report::{self, Key, OptTarget, Results, Row, Target, ns, rate, ratio};
use crate::suite::{Ctx, Phase, Planned, Suite};
use crate::transports::{ARRAYQUEUE, MPMC_SLOTS, Mode, SHMRING, SHMRING_MPMC, Transport, mpmc_options};
use crate::{Result, err};
use runs::{MSG_SIZE, Report, RunResult, THROUGHPUT_MODE};
use std::fmt::Write as _;

/// Messages of one MPMC throughput run (all producers together) without `--count`.
pub(crate) const MPMC_MESSAGES: u64 = 2_000_000;
/// The same with `--quick`.
const MPMC_MESSAGES_QUICK: u64 = 400_000;
/// Runs of each MPMC throughput row, whose median is the row: one run of a queue
/// between two CPUs of a virtual machine may settle into a fast or a slow regime
/// (crossbeam's 1p1c varies 2x from run to run here), a median of three rarely does.
const MPMC_RUNS: usize = 3;

/// Role: push `count` stamped messages into an MPMC queue; the last producer to finish
/// closes it (fds: `[queue, done-counter page]`).
const PRODUCER: &str = "mpmc-producer";
/// Role: pop and check until the queue is closed and drained (fds: `[queue]`).
const CONSUMER: &str = "mpmc-consumer";

/// The suite of the MPMC queue.
#[derive(Debug)]
pub(crate) struct Mpmc;

/// A step of [`Mpmc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The queue's blocking hand-off (ping-pong).
    Latency,
    /// crossbeam's ArrayQueue between threads.
    ArrayQueue(Topology),
    /// The MPMC queue across processes.
    Queue(Topology),
}

/// The key of a throughput row of the queue or of crossbeam's in a topology.
fn key(transport: &'static str, topo: Topology) -> Key {
    let rank = if transport == ARRAYQUEUE { 4 } else { 3 };
    let mode = Topology::ALL.iter().position(|&t| t == topo).unwrap_or(0);
    Key {
        transport,
        mode: Some(topo.name()),
        size: MSG_SIZE as u64,
        order: (rank, 4 + mode),
    }
}

impl Suite for Mpmc {
    type Step = Step;

    fn name(&self) -> &'static str {
        "mpmc"
    }

    fn plan(&self, a: &BenchArgs) -> Vec<Planned<Step>> {
        let mut out = Vec::new();
        if a.has(Selected::Mpmc) && a.measures(Measure::Latency) {
            // Rank 1: right after the ring's modes (rank 0), before the streams.
            out.push(Planned::new(Phase::Latency, Step::Latency).rank(1));
        }
        if a.measures(Measure::Throughput) {
            let mut topologies = a.mpmc_modes.clone();
            topologies.sort();
            topologies.dedup();
            for t in topologies {
                if a.has(Selected::Arrayqueue) {
                    out.push(Planned::new(Phase::Throughput, Step::ArrayQueue(t)).rank(1));
                }
                if a.has(Selected::Mpmc) {
                    out.push(Planned::new(Phase::Throughput, Step::Queue(t)).rank(1));
                }
            }
        }
        out
    }

    fn label(&self, step: &Step) -> String {
        let size = report::size(MSG_SIZE as u64);
        match *step {
            Step::Latency => format!("latency {}", Transport::Mpmc(Mode::Blocking).label()),
            Step::Queue(t) => format!("throughput {SHMRING_MPMC} {} {size}", t.name()),
            Step::ArrayQueue(t) => format!("throughput {ARRAYQUEUE} {} {size}", t.name()),
        }
    }

    fn run(&self, step: &Step, ctx: &mut Ctx<'_>) -> Result<String> {
        let a = ctx.args;
        match *step {
            Step::Latency => {
                let t = Transport::Mpmc(Mode::Blocking);
                let s = links::latency(self.name(), t, a)?;
                ctx.results.latency(t.key(PING_SIZE), &s);
                Ok(rtt_summary(&s))
            }
            Step::ArrayQueue(topo) => {
                let runs = (0..mpmc_runs(a))
                    .map(|_| runs::arrayqueue(topo, mpmc_count(a, topo), &a.pin, a.timeout))
                    .collect::<Result<Vec<_>>>()?;
                let (per_s, summary) = mpmc_summary(&runs);
                ctx.results.throughput(key(ARRAYQUEUE, topo), per_s);
                Ok(summary)
            }
            Step::Queue(topo) => {
                let runs = (0..mpmc_runs(a))
                    .map(|_| self.run_queue(topo, a))
                    .collect::<Result<Vec<_>>>()?;
                let (per_s, summary) = mpmc_summary(&runs);
                ctx.results.throughput(key(SHMRING_MPMC, topo), per_s);
                Ok(summary)
            }
        }
    }

    fn serve(&self, spec: &PeerSpec, fds: &mut Fds) -> Result<serde_json::Value> {
        if let Some(report) = links::serve(spec, fds)? {
            return Ok(serde_json::to_value(report)?);
        }
        let report = match spec.role.as_str() {
            PRODUCER => runs::produce(fds.next()?, fds.next()?, spec)?,
            CONSUMER => runs::consume(fds.next()?, spec)?,
            r => return Err(err(format!("suite {} has no role {r}", self.name()))),
        };
        Ok(serde_json::to_value(report)?)
    }

    /// Each topology's queue rows against crossbeam's, and the queue's blocking
    /// hand-off against the SPSC ring's.
    fn render(&self, r: &Results, out: &mut String) {
        let size = MSG_SIZE as u64;
        let tput = |t: &str, m: &str| r.find(t, Some(m), size).and_then(|r| r.msgs_per_s);
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
        if let Some((q, s)) = blocking_handoff(r) {
            let p50 = |r: &Row| r.rtt_p50_ns.unwrap_or(0);
            let _ = writeln!(
                out,
                "\nblocking hand-off (RTT of {PING_SIZE} B, both ends sleeping on the futex): {SHMRING_MPMC} p50 {} \
                 vs {SHMRING} p50 {}: {}",
                ns(p50(q)),
                ns(p50(s)),
                ratio(p50(q) as f64 / p50(s).max(1) as f64)
            );
        }
    }

    fn targets(&self, r: &Results) -> Option<(&'static str, Vec<OptTarget>)> {
        Some(("MPMC queue", targets(r).into_iter().map(OptTarget::from).collect()))
    }
}

impl Mpmc {
    /// One MPMC run across processes: a queue of [`MPMC_SLOTS`] 64-byte slots, a child
    /// per producer (`[queue, done page]`) and per consumer (`[queue]`), each with an end
    /// of its own. The parent keeps one producer end, to read the queue's counters at
    /// the end.
    fn run_queue(&self, topo: Topology, a: &BenchArgs) -> Result<RunResult> {
        use shmring::ring::mpmc as queue;
        let n = mpmc_count(a, topo);
        let k = topo.parties();
        let t = Transport::Mpmc(THROUGHPUT_MODE);
        let (tx, rx) = queue::channel_with(MPMC_SLOTS, MSG_SIZE, &mpmc_options(THROUGHPUT_MODE))?;
        let done = reference::floor_page()?;
        let mut jobs = Vec::with_capacity(2 * k);
        for id in 0..k {
            let mut spec = PeerSpec::new(self.name(), PRODUCER, Some(t), MSG_SIZE);
            spec.count = Some(n);
            spec.id = id as u64;
            spec.producers = k as u64;
            spec.cpu = a.cpu(0);
            let page = done.try_clone().map_err(|e| err(format!("dup: {e}")))?;
            jobs.push(PeerJob {
                spec,
                fds: vec![tx.try_clone()?.into_fd(), page],
            });
        }
        for _ in 0..k {
            let mut spec = PeerSpec::new(self.name(), CONSUMER, Some(t), MSG_SIZE);
            spec.producers = k as u64;
            spec.cpu = a.cpu(1);
            jobs.push(PeerJob {
                spec,
                fds: vec![rx.try_clone()?.into_fd()],
            });
        }
        drop((rx, done));
        let reports: Vec<Report> = run_peers(jobs, a.timeout)?;
        let mut consumed = Vec::with_capacity(k);
        for r in reports {
            match r {
                Report::Sent { messages } if messages == n => {}
                Report::Sent { messages } => {
                    return Err(err(format!("a producer sent {messages} messages instead of {n}")));
                }
                Report::Consumed(c) => consumed.push(c),
            }
        }
        let r = runs::check_run(k, n, &consumed)?;
        let s = tx.stats();
        if s.lost != 0 || s.pushed != r.messages || s.popped != r.messages {
            return Err(err(format!(
                "the queue counted {} pushed, {} popped, {} lost for {} messages",
                s.pushed, s.popped, s.lost, r.messages
            )));
        }
        Ok(r)
    }
}

/// Messages per producer of an MPMC run.
pub(crate) fn mpmc_count(a: &BenchArgs, t: Topology) -> u64 {
    a.count.unwrap_or_else(|| {
        let all = if a.quick { MPMC_MESSAGES_QUICK } else { MPMC_MESSAGES };
        all / t.parties() as u64
    })
}

/// Runs per MPMC row: [`MPMC_RUNS`], one with `--quick`.
fn mpmc_runs(a: &BenchArgs) -> usize {
    if a.quick { 1 } else { MPMC_RUNS }
}

/// The median rate of `runs` (the upper one of an even count), and a progress line.
fn mpmc_summary(runs: &[RunResult]) -> (f64, String) {
    let mut rates: Vec<f64> = runs.iter().map(|r| r.per_s).collect();
    rates.sort_by(f64::total_cmp);
    let per_s = rates[rates.len() / 2];
    let mut line = format!(
        "{} msgs/s, {:.1} MB/s ({} msgs",
        rate(per_s),
        per_s * MSG_SIZE as f64 / 1e6,
        runs[0].messages
    );
    if runs.len() > 1 {
        let all: Vec<String> = runs.iter().map(|r| rate(r.per_s)).collect();
        line = format!("median {line} x {}: {})", runs.len(), all.join(", "));
    } else {
        line.push(')');
    }
    (per_s, line)
}

/// The blocking-mode RTT rows of the MPMC queue and of the SPSC ring, if both ran.
fn blocking_handoff(r: &Results) -> Option<(&Row, &Row)> {
    let ps = PING_SIZE as u64;
    let blocking = Some(Mode::Blocking.name());
    let q = r.find(SHMRING_MPMC, blocking, ps).filter(|r| r.rtt_p50_ns.is_some())?;
    let s = r.find(SHMRING, blocking, ps).filter(|r| r.rtt_p50_ns.is_some())?;
    Some((q, s))
}

/// The queue's performance targets that this run has the data for.
fn targets(r: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let size = MSG_SIZE as u64;
    let one = Some(Topology::P1C1.name());
    let tput = |t: &str| r.find(t, one, size).and_then(|r| r.msgs_per_s);
    if let (Some(q), Some(c)) = (tput(SHMRING_MPMC), tput(ARRAYQUEUE)) {
        out.push(Target::at_least(
            format!("throughput {size} B 1p1c, mpmc >= 0.8x crossbeam in-process"),
            q / c,
            0.8,
        ));
    }
    if let Some((q, s)) = blocking_handoff(r) {
        let (q, s) = (q.rtt_p50_ns.unwrap_or(0), s.rtt_p50_ns.unwrap_or(0));
        out.push(Target::at_most(
            "RTT p50, mpmc blocking <= 1.2x spsc blocking",
            q as f64 / s.max(1) as f64,
            1.2,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::RttStats;

    #[test]
    fn mpmc_rows_compare_to_crossbeam_and_to_spsc_blocking() {
        let mut r = Results::default();
        r.throughput(key(ARRAYQUEUE, Topology::P1C1), 10e6);
        r.throughput(key(SHMRING_MPMC, Topology::P4C4), 2e6);
        r.throughput(key(SHMRING_MPMC, Topology::P1C1), 9e6);
        let rtt = |p50| RttStats {
            rounds: 1,
            p50_ns: p50,
            p99_ns: p50,
            p999_ns: p50,
            max_ns: p50,
        };
        r.latency(Transport::Mpmc(Mode::Blocking).key(8), &rtt(13_000));
        r.latency(Transport::Shmring(Mode::Blocking).key(8), &rtt(10_000));
        let t = targets(&r);
        assert_eq!(t.len(), 2);
        assert!(t[0].pass && t[0].measured == "0.90x", "{t:?}");
        assert!(!t[1].pass && t[1].measured == "1.30x", "{t:?}");
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
        let mut text = String::new();
        Mpmc.render(&r, &mut text);
        let (title, t) = Mpmc.targets(&r).unwrap();
        report::render_target_lines(&mut text, title, &t, 0);
        assert!(text.contains("targets (MPMC queue):"), "{text}");
        assert!(text.contains("1.30x") && text.contains("0.90x"), "{text}");
    }
}
