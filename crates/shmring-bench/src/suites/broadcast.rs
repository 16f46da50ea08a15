//! The broadcast rows: one publisher process feeding 1, 2 or 4 subscriber processes
//! through a `shmring::broadcast` ring, next to the same fan-out done by hand (the
//! publisher writing each message into one SPSC ring per subscriber, and into one Unix
//! socket per subscriber), and the 8-byte round trip of a publisher and a subscriber
//! next to the SPSC ring's (see [`runs`] for how a run goes).
//!
//! The rows (their names are a contract other tools read):
//!
//! - `shmring-broadcast`, modes `lossless-1s`, `lossless-2s`, `lossless-4s` (every
//!   subscriber gets every message), `overwrite-0s` (the publisher alone) and
//!   `overwrite-4s` (the publisher never waits; lapped subscribers learn what they
//!   missed), at 64 B and 4 KiB: `msgs_per_s` is the total delivered to all subscribers
//!   per second (each subscriber's rate, summed), for `overwrite-*` the publisher's send
//!   rate;
//! - `fanout-spsc`, modes `1s`, `2s`, `4s`, and `unix-socket-fanout`, mode `4s`: the
//!   references, `msgs_per_s` as for the lossless rows;
//! - `shmring-broadcast`, mode `rtt`, size 8: the round trip through two rings (one
//!   each way), with the `rtt_*` fields. The SPSC ring's round trip in the same mode is
//!   the shared table's `shmring-spsc` row; if the SPSC suite did not measure it in this
//!   run, this suite does (and records it there).
//!
//! Wait modes: the subscribers and the publisher (and the SPSC rings' ends) wait per
//! each mode of `--modes` except `spin` (four spinning subscribers on a machine of few
//! CPUs measure the scheduler). The rows of the adaptive mode (the library's default)
//! carry the names above; those of another mode carry it as a suffix
//! (`lossless-4s-blocking`, `rtt-blocking`, `1s-blocking`); `unix-socket-fanout` has no
//! wait mode and runs once. The sizes are the rows' own (`--sizes` does not apply).

mod runs;

use crate::args::{BenchArgs, Measure, Selected};
use crate::links::{self, PING_SIZE, rtt_summary};
use crate::peer::{Fds, PeerSpec};
use crate::report::{self, OptTarget, RateUnit, Results, Row, Target, ns, rate, ratio};
use crate::suite::{Ctx, Phase, Planned, Suite};
use crate::transports::{Mode, SHMRING, Transport};
use crate::{Result, err};
use runs::{Kind, StreamResult};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Name of the broadcast ring's rows.
pub(crate) const BROADCAST: &str = "shmring-broadcast";
/// Name of the rows of the publisher writing into one SPSC ring per subscriber.
pub(crate) const FANOUT_SPSC: &str = "fanout-spsc";
/// Name of the rows of the publisher writing into one Unix socket per subscriber.
pub(crate) const UNIX_FANOUT: &str = "unix-socket-fanout";
/// The message sizes of the throughput rows.
pub(crate) const SIZES: [usize; 2] = [64, 4096];

/// The suite of the broadcast ring.
#[derive(Debug)]
pub(crate) struct Broadcast;

/// A throughput row: what runs, how many subscribers, the wait mode, the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stream {
    /// The transport and policy.
    pub(crate) kind: Kind,
    /// Subscriber processes.
    pub(crate) subs: usize,
    /// The wait mode of the shmring ends.
    pub(crate) mode: Mode,
    /// Message size.
    pub(crate) size: usize,
}

/// A step of [`Broadcast`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The round trip through two broadcast rings in a mode (and the SPSC ring's, if
    /// the run has not measured it).
    Rtt(Mode),
    /// A throughput row.
    Stream(Stream),
}

/// The wait modes of the suite: `--modes` without spin, each once, adaptive first.
pub(crate) fn modes(a: &BenchArgs) -> Vec<Mode> {
    let mut m: Vec<Mode> = a.modes.iter().copied().filter(|&m| m != Mode::Spin).collect();
    m.sort();
    m.dedup();
    m.sort_by_key(|&m| m != Mode::Adaptive);
    m
}

/// `base` for the adaptive mode, `base-mode` for another (interned: rows hold `&'static
/// str`, and a run makes a bounded number of them).
fn mode_name(base: &str, mode: Mode) -> &'static str {
    let s = if mode == Mode::Adaptive {
        base.to_owned()
    } else {
        format!("{base}-{}", mode.name())
    };
    intern(s)
}

fn intern(s: String) -> &'static str {
    use std::sync::Mutex;
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&n) = names.iter().find(|&&n| n == s) {
        return n;
    }
    let n: &'static str = Box::leak(s.into_boxed_str());
    names.push(n);
    n
}

impl Stream {
    /// The row's transport name.
    pub(crate) fn transport(&self) -> &'static str {
        match self.kind {
            Kind::Lossless | Kind::Overwrite => BROADCAST,
            Kind::FanoutSpsc => FANOUT_SPSC,
            Kind::UnixFanout => UNIX_FANOUT,
        }
    }

    /// The row's mode name (see the module docs).
    pub(crate) fn mode_name(&self) -> &'static str {
        match self.kind {
            Kind::Lossless => mode_name(&format!("lossless-{}s", self.subs), self.mode),
            Kind::Overwrite => mode_name(&format!("overwrite-{}s", self.subs), self.mode),
            Kind::FanoutSpsc => mode_name(&format!("{}s", self.subs), self.mode),
            Kind::UnixFanout => intern(format!("{}s", self.subs)),
        }
    }
}

/// The rows' plan for `modes`, in the table's order: per mode, per size, the broadcast
/// rows then the references.
pub(crate) fn streams(modes: &[Mode]) -> Vec<Stream> {
    let mut out = Vec::new();
    for (i, &mode) in modes.iter().enumerate() {
        for size in SIZES {
            let mut row = |kind, subs| out.push(Stream { kind, subs, mode, size });
            for subs in [1, 2, 4] {
                row(Kind::Lossless, subs);
            }
            row(Kind::Overwrite, 0);
            row(Kind::Overwrite, 4);
            for subs in [1, 2, 4] {
                row(Kind::FanoutSpsc, subs);
            }
            if i == 0 {
                row(Kind::UnixFanout, 4);
            }
        }
    }
    out
}

/// What the suite measured.
#[derive(Debug, Default)]
struct Measured {
    /// The throughput rows, in the order they ran.
    streams: Vec<(Stream, StreamResult)>,
    /// The round trips, per mode.
    rtt: Vec<(Mode, crate::peer::RttStats)>,
}

impl Measured {
    fn rate(&self, kind: Kind, subs: usize, mode: Mode, size: usize) -> Option<f64> {
        self.streams
            .iter()
            .find(|(s, _)| {
                s.kind == kind && s.subs == subs && s.size == size && (s.mode == mode || kind == Kind::UnixFanout)
            })
            .map(|(_, r)| r.per_s)
    }

    /// The JSON rows: the throughput rows, then the round trips.
    fn rows(&self) -> Vec<Row> {
        let mut out: Vec<Row> = self
            .streams
            .iter()
            .map(|(s, r)| Row {
                transport: s.transport(),
                mode: Some(s.mode_name()),
                size: s.size as u64,
                msgs_per_s: Some(r.per_s),
                mb_per_s: Some(r.per_s * s.size as f64 / 1e6),
                rtt_p50_ns: None,
                rtt_p99_ns: None,
                rtt_p999_ns: None,
            })
            .collect();
        out.extend(self.rtt.iter().map(|(m, s)| Row {
            transport: BROADCAST,
            mode: Some(mode_name("rtt", *m)),
            size: PING_SIZE as u64,
            msgs_per_s: None,
            mb_per_s: None,
            rtt_p50_ns: Some(s.p50_ns),
            rtt_p99_ns: Some(s.p99_ns),
            rtt_p999_ns: Some(s.p999_ns),
        }));
        out
    }
}

impl Suite for Broadcast {
    type Step = Step;

    fn name(&self) -> &'static str {
        "broadcast"
    }

    /// The 4 KiB message must fit the ring of `--capacity`.
    fn check(&self, a: &BenchArgs) -> Result<()> {
        if !a.has(Selected::Broadcast) {
            return Ok(());
        }
        for s in SIZES {
            let cap = a.capacity_for(s).next_power_of_two();
            let max = shmring::broadcast::max_message_len(cap);
            if s > max {
                return Err(err(format!(
                    "the broadcast rows' {s}-byte message does not fit a {cap}-byte ring (limit {max}); raise --capacity"
                )));
            }
        }
        Ok(())
    }

    /// The round trips right after the other rings' (rank 3), the throughput rows after
    /// the other transports' (rank 3).
    fn plan(&self, a: &BenchArgs) -> Vec<Planned<Step>> {
        if !a.has(Selected::Broadcast) {
            return Vec::new();
        }
        let modes = modes(a);
        let mut out = Vec::new();
        if a.measures(Measure::Latency) {
            out.extend(
                modes
                    .iter()
                    .map(|&m| Planned::new(Phase::Latency, Step::Rtt(m)).rank(3)),
            );
        }
        if a.measures(Measure::Throughput) {
            out.extend(
                streams(&modes)
                    .into_iter()
                    .map(|s| Planned::new(Phase::Throughput, Step::Stream(s)).rank(3)),
            );
        }
        out
    }

    fn label(&self, step: &Step) -> String {
        match step {
            Step::Rtt(m) => format!("latency {BROADCAST} {}", mode_name("rtt", *m)),
            Step::Stream(s) => format!(
                "throughput {} {} {}",
                s.transport(),
                s.mode_name(),
                report::size(s.size as u64)
            ),
        }
    }

    fn run(&self, step: &Step, ctx: &mut Ctx<'_>) -> Result<String> {
        let a = ctx.args;
        match *step {
            Step::Rtt(mode) => {
                let s = runs::rtt(self.name(), mode, a)?;
                let mut line = format!("{BROADCAST}: {}", rtt_summary(&s));
                ctx.results.state::<Measured>(self.name()).rtt.push((mode, s));
                let spsc = Transport::Shmring(mode);
                let have = ctx
                    .results
                    .find(SHMRING, Some(mode.name()), PING_SIZE as u64)
                    .is_some_and(|r| r.rtt_p50_ns.is_some());
                if !have {
                    let s = links::latency(self.name(), spsc, a)?;
                    ctx.results.latency(spsc.key(PING_SIZE), &s);
                    let _ = write!(line, "; {SHMRING}: p50 {}", ns(s.p50_ns));
                }
                Ok(line)
            }
            Step::Stream(s) => {
                let r = runs::stream(self.name(), s, a)?;
                let line = r.summary(&s);
                ctx.results.state::<Measured>(self.name()).streams.push((s, r));
                Ok(line)
            }
        }
    }

    fn serve(&self, spec: &PeerSpec, fds: &mut Fds) -> Result<serde_json::Value> {
        if let Some(report) = links::serve(spec, fds)? {
            return Ok(serde_json::to_value(report)?);
        }
        runs::serve(spec, fds)
    }

    fn render(&self, r: &Results, out: &mut String) {
        if let Some(m) = r.state_ref::<Measured>(self.name()) {
            render(m, r, out);
        }
    }

    fn targets(&self, r: &Results) -> Option<(&'static str, Vec<OptTarget>)> {
        let m = r.state_ref::<Measured>(self.name())?;
        Some((
            "broadcast ring",
            targets(m, r).into_iter().map(OptTarget::from).collect(),
        ))
    }

    fn json_rows(&self, r: &Results) -> Vec<Row> {
        r.state_ref::<Measured>(self.name())
            .map(Measured::rows)
            .unwrap_or_default()
    }

    fn plot_rows(&self, r: &Results) -> Vec<(Row, RateUnit)> {
        self.json_rows(r)
            .into_iter()
            .map(|row| (row, RateUnit::Messages))
            .collect()
    }
}

/// The broadcast block: the rows with their per-subscriber rates and ratios, and the
/// round trips.
fn render(m: &Measured, r: &Results, out: &mut String) {
    if !m.streams.is_empty() {
        let _ = writeln!(
            out,
            "\nbroadcast: 1 publisher process -> N subscriber processes (Ns). {BROADCAST}: one ring, lossless \
             (every subscriber gets every message) or overwrite (the publisher never waits); {FANOUT_SPSC}: the \
             publisher sends each message into N SPSC rings; {UNIX_FANOUT}: into N Unix sockets. msgs/s = \
             deliveries to all subscribers per second (overwrite: the publisher's sends per second); per sub = \
             each subscriber's deliveries per second; x = row / {FANOUT_SPSC} with as many subscribers."
        );
        let _ = writeln!(
            out,
            "  {:<20} {:<22} {:>7} {:>10} {:>10} {:>9} {:>7}  notes",
            "transport", "mode", "size", "msgs/s", "MB/s", "per sub", "x"
        );
        for (s, res) in &m.streams {
            let reference = match s.kind {
                Kind::FanoutSpsc | Kind::Overwrite => None,
                _ => m.rate(Kind::FanoutSpsc, s.subs, s.mode, s.size),
            };
            let x = reference
                .filter(|&v| v > 0.0)
                .map_or("-".into(), |v| ratio(res.per_s / v));
            let per_sub = if res.per_sub.is_empty() {
                "-".into()
            } else {
                rate(res.per_sub.iter().sum::<f64>() / res.per_sub.len() as f64)
            };
            let _ = writeln!(
                out,
                "  {:<20} {:<22} {:>7} {:>10} {:>10.1} {:>9} {:>7}  {}",
                s.transport(),
                s.mode_name(),
                report::size(s.size as u64),
                rate(res.per_s),
                res.per_s * s.size as f64 / 1e6,
                per_sub,
                x,
                res.note()
            );
        }
    }
    for (mode, s) in &m.rtt {
        let spsc = r
            .find(SHMRING, Some(mode.name()), PING_SIZE as u64)
            .and_then(|r| r.rtt_p50_ns);
        let vs = spsc.map_or(String::new(), |p| {
            format!(
                " vs {SHMRING} {} p50 {}: {}",
                mode.name(),
                ns(p),
                ratio(s.p50_ns as f64 / p.max(1) as f64)
            )
        });
        let _ = writeln!(
            out,
            "\nbroadcast round trip ({PING_SIZE} B there and back through two rings, {}): p50 {} p99 {} p99.9 {}{vs}",
            mode.name(),
            ns(s.p50_ns),
            ns(s.p99_ns),
            ns(s.p999_ns)
        );
    }
}

/// The broadcast ring's targets that this run has the data for, per wait mode.
fn targets(m: &Measured, r: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    let mut seen: Vec<Mode> = m.streams.iter().map(|(s, _)| s.mode).collect();
    seen.extend(m.rtt.iter().map(|(mode, _)| *mode));
    seen.sort();
    seen.dedup();
    seen.sort_by_key(|&m| m != Mode::Adaptive);
    for mode in seen {
        let tag = mode.name();
        for size in SIZES {
            if let (Some(b), Some(f)) = (
                m.rate(Kind::Lossless, 1, mode, size),
                m.rate(Kind::FanoutSpsc, 1, mode, size),
            ) {
                out.push(Target::at_least(
                    format!("{tag} {} 1 sub, broadcast >= 0.8x spsc ring", report::size(size as u64)),
                    b / f,
                    0.8,
                ));
            }
        }
        let spsc_p50 = r.find(SHMRING, Some(tag), PING_SIZE as u64).and_then(|r| r.rtt_p50_ns);
        if let (Some((_, s)), Some(p)) = (m.rtt.iter().find(|(x, _)| *x == mode), spsc_p50) {
            out.push(Target {
                what: format!("{tag} RTT p50, broadcast <= 1.2x spsc ring"),
                measured: format!("{:.2}x", s.p50_ns as f64 / p.max(1) as f64),
                pass: s.p50_ns as f64 / p.max(1) as f64 <= 1.2,
            });
        }
        let big = 4096;
        if let Some(b) = m.rate(Kind::Lossless, 4, mode, big) {
            if let Some(f) = m.rate(Kind::FanoutSpsc, 4, mode, big) {
                out.push(Target::at_least(
                    format!("{tag} 4 KiB 4 subs total, broadcast >= 2x {FANOUT_SPSC}"),
                    b / f,
                    2.0,
                ));
            }
            if let Some(u) = m.rate(Kind::UnixFanout, 4, mode, big) {
                out.push(Target::at_least(
                    format!("{tag} 4 KiB 4 subs total, broadcast >= 20x {UNIX_FANOUT}"),
                    b / u,
                    20.0,
                ));
            }
        }
        for size in SIZES {
            if let (Some(four), Some(alone)) = (
                m.rate(Kind::Overwrite, 4, mode, size),
                m.rate(Kind::Overwrite, 0, mode, size),
            ) {
                out.push(Target::at_least(
                    format!(
                        "{tag} {} overwrite publisher, 4 subs >= 0.9x none",
                        report::size(size as u64)
                    ),
                    four / alone,
                    0.9,
                ));
            }
        }
    }
    out
}

/// The key of the SPSC ring's round-trip row (for the tests).
#[cfg(test)]
fn spsc_rtt_key(mode: Mode) -> crate::report::Key {
    Transport::Shmring(mode).key(PING_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::RttStats;

    fn res(per_s: f64, subs: usize) -> StreamResult {
        StreamResult {
            per_s,
            per_sub: vec![per_s / subs.max(1) as f64; subs],
            published: 100,
            missed: 0,
        }
    }

    #[test]
    fn rows_are_named_as_promised_and_targets_compare_them() {
        let modes = [Mode::Adaptive, Mode::Blocking];
        let plan = streams(&modes);
        let names: Vec<(&str, &str, usize)> = plan.iter().map(|s| (s.transport(), s.mode_name(), s.size)).collect();
        for size in SIZES {
            for mode in [
                "lossless-1s",
                "lossless-2s",
                "lossless-4s",
                "overwrite-0s",
                "overwrite-4s",
            ] {
                assert!(names.contains(&(BROADCAST, mode, size)), "{mode} {size}: {names:?}");
                assert!(names.contains(&(BROADCAST, mode_name(mode, Mode::Blocking), size)));
            }
            for mode in ["1s", "2s", "4s"] {
                assert!(names.contains(&(FANOUT_SPSC, mode, size)), "{names:?}");
            }
            assert_eq!(names.iter().filter(|n| n.0 == UNIX_FANOUT && n.2 == size).count(), 1);
        }
        assert_eq!(mode_name("rtt", Mode::Blocking), "rtt-blocking");

        let mut m = Measured::default();
        let a = Mode::Adaptive;
        let row = |kind, subs, size| Stream {
            kind,
            subs,
            mode: a,
            size,
        };
        m.streams.push((row(Kind::Lossless, 1, 64), res(9e6, 1)));
        m.streams.push((row(Kind::FanoutSpsc, 1, 64), res(10e6, 1)));
        m.streams.push((row(Kind::Lossless, 4, 4096), res(4e6, 4)));
        m.streams.push((row(Kind::FanoutSpsc, 4, 4096), res(1e6, 4)));
        m.streams.push((row(Kind::UnixFanout, 4, 4096), res(0.1e6, 4)));
        m.streams.push((row(Kind::Overwrite, 0, 64), res(10e6, 0)));
        m.streams.push((row(Kind::Overwrite, 4, 64), res(8e6, 4)));
        let rtt = |p50| RttStats {
            rounds: 1,
            p50_ns: p50,
            p99_ns: p50,
            p999_ns: p50,
            max_ns: p50,
        };
        m.rtt.push((a, rtt(1300)));
        let mut r = Results::default();
        r.latency(spsc_rtt_key(a), &rtt(1000));
        let t = targets(&m, &r);
        let got: Vec<(bool, &str)> = t.iter().map(|t| (t.pass, t.measured.as_str())).collect();
        assert_eq!(
            got,
            [
                (true, "0.90x"),
                (false, "1.30x"),
                (true, "4.00x"),
                (true, "40.00x"),
                (false, "0.80x")
            ],
            "{t:?}"
        );
        let rows = m.rows();
        assert_eq!(rows.len(), 8);
        assert_eq!(
            (rows[7].transport, rows[7].mode, rows[7].size),
            (BROADCAST, Some("rtt"), 8)
        );
        assert_eq!(rows[7].rtt_p50_ns, Some(1300));
        let mut text = String::new();
        render(&m, &r, &mut text);
        assert!(text.contains("lossless-4s") && text.contains("4.00x"), "{text}");
        assert!(text.contains("1.30x"), "{text}");
    }
}
