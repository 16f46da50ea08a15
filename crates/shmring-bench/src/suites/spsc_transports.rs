//! The SPSC transports: throughput and round-trip latency of the shmring SPSC ring in
//! each wait mode, next to a Unix domain socket and a pipe carrying the same messages
//! (see [`crate::links`] for how a run goes), and the CPU use of an idle consumer: a
//! consumer blocked for `--idle` in `recv_timeout` on an empty ring whose producer is
//! alive; CPU time over wall time.
//!
//! The suite renders the shared table (its rows, the MPMC queue's and the physical
//! references', with their ratio to the ring in its default mode), the idle lines, and
//! the ring's targets.

use crate::args::{BenchArgs, Measure, Selected};
use crate::launch::{PeerJob, run_peers};
use crate::links::{self, PING_SIZE, rtt_summary};
use crate::peer::{Fds, PeerReport, PeerSpec, barrier, cpu_time_ns};
use crate::reference::{FLOOR, MEMCPY};
use crate::refring::REF_RING;
use crate::report::{self, OptTarget, Results, Row, Target, ns, rate, ratio};
use crate::suite::{Ctx, Phase, Planned, Suite};
use crate::transports::{Mode, PIPE, SHMRING, Transport, UNIX_SOCKET, open_consumer, ring_options};
use crate::{Result, err};
use shmring::RecvError;
use shmring::ring::spsc;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Role: wait for a message that never comes; measure the CPU time spent (fds: `[rx]`,
/// a ring).
const IDLE_CONSUMER: &str = "idle-consumer";

/// The modes whose shmring rows are the reference of the ratio columns, in order of
/// preference.
const REF_MODES: [Mode; 3] = [Mode::Adaptive, Mode::Spin, Mode::Blocking];

/// The largest message size of the reference ring's throughput rows: it is the floor
/// of the small-message rows, where a ring's own work shows.
const REF_RING_MAX_SIZE: usize = 64;

/// The suite of the SPSC transports.
#[derive(Debug)]
pub(crate) struct Spsc;

/// A step of [`Spsc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Ping-pong round trips over a transport.
    Latency(Transport),
    /// Throughput over a transport at a message size.
    Throughput(Transport, usize),
    /// The idle consumer of a ring in a mode.
    Idle(Mode),
}

/// What the suite keeps besides its rows: the idle consumers' CPU use, percent of one
/// core, per mode.
#[derive(Debug, Default)]
struct Idle(Vec<(Mode, f64)>);

/// Whether the two processes of each run were pinned to one CPU (`--pin same`), which
/// selects the round-trip target of the adaptive mode.
#[derive(Debug, Default)]
struct OneCpu(bool);

/// The selected modes, each once, adaptive (the default mode, the ratios' reference)
/// first.
fn modes(a: &BenchArgs) -> Vec<Mode> {
    let mut modes = a.modes.clone();
    modes.sort();
    modes.dedup();
    modes.sort_by_key(|&m| m != Mode::Adaptive);
    modes
}

impl Suite for Spsc {
    type Step = Step;

    fn name(&self) -> &'static str {
        "spsc"
    }

    /// A ring message must fit the ring of its size.
    fn check(&self, a: &BenchArgs) -> Result<()> {
        if !a.has(Selected::Shmring) {
            return Ok(());
        }
        for &s in &a.sizes {
            let cap = a.capacity_for(s).next_power_of_two();
            if s > spsc::max_message_len(cap) {
                return Err(err(format!(
                    "a {s}-byte message does not fit a {cap}-byte ring (limit {}); raise --capacity",
                    spsc::max_message_len(cap)
                )));
            }
        }
        Ok(())
    }

    /// Round trips (the ring's modes at rank 0, the streams at rank 2: the MPMC queue's
    /// blocking hand-off runs between them, right after the ring's), throughput at each
    /// size, then the idle consumers.
    fn plan(&self, a: &BenchArgs) -> Vec<Planned<Step>> {
        let modes = modes(a);
        let mut transports: Vec<Transport> = Vec::new();
        if a.has(Selected::Shmring) {
            transports.extend(modes.iter().map(|&m| Transport::Shmring(m)));
        }
        if a.has(Selected::Unix) {
            transports.push(Transport::UnixSocket);
        }
        if a.has(Selected::Pipe) {
            transports.push(Transport::Pipe);
        }
        if a.has(Selected::RefRing) {
            transports.push(Transport::RefRing);
        }
        let mut out = Vec::new();
        if a.measures(Measure::Latency) {
            out.extend(transports.iter().map(|&t| {
                let rank = if matches!(t, Transport::Shmring(_) | Transport::RefRing) {
                    0
                } else {
                    2
                };
                Planned::new(Phase::Latency, Step::Latency(t)).rank(rank)
            }));
        }
        if a.measures(Measure::Throughput) {
            for &size in &a.sizes {
                out.extend(
                    transports
                        .iter()
                        .filter(|&&t| t != Transport::RefRing || size <= REF_RING_MAX_SIZE)
                        .map(|&t| Planned::new(Phase::Throughput, Step::Throughput(t, size))),
                );
            }
        }
        if a.measures(Measure::Idle) && a.has(Selected::Shmring) {
            out.extend(modes.iter().map(|&m| Planned::new(Phase::Idle, Step::Idle(m))));
        }
        out
    }

    fn label(&self, step: &Step) -> String {
        match *step {
            Step::Latency(t) => format!("latency {}", t.label()),
            Step::Throughput(t, s) => format!("throughput {} {}", t.label(), report::size(s as u64)),
            Step::Idle(m) => format!("idle consumer {SHMRING}/{}", m.name()),
        }
    }

    fn run(&self, step: &Step, ctx: &mut Ctx<'_>) -> Result<String> {
        let a = ctx.args;
        ctx.results.state::<OneCpu>(self.name()).0 = matches!(a.pin[..], [x, y] if x == y);
        match *step {
            Step::Latency(t) => {
                let s = links::latency(self.name(), t, a)?;
                ctx.results.latency(t.key(PING_SIZE), &s);
                Ok(rtt_summary(&s))
            }
            Step::Throughput(t, size) => {
                let (per_s, messages) = links::throughput(self.name(), t, size, a)?;
                ctx.results.throughput(t.key(size), per_s);
                Ok(format!(
                    "{} msgs/s, {:.1} MB/s ({messages} msgs)",
                    rate(per_s),
                    per_s * size as f64 / 1e6
                ))
            }
            Step::Idle(mode) => {
                // The parent keeps the producer (alive, silent); the child waits as consumer.
                let (producer, consumer) =
                    spsc::channel_with(1 << 16, &ring_options(mode)).map_err(|e| err(e.to_string()))?;
                let fd = consumer
                    .into_fd()
                    .ok_or_else(|| err("ring consumer has no descriptor"))?;
                let mut spec = PeerSpec::new(self.name(), IDLE_CONSUMER, Some(Transport::Shmring(mode)), 0);
                spec.duration_ns = a.idle.as_nanos() as u64;
                spec.cpu = a.cpu(1);
                let reports: Vec<PeerReport> = run_peers(vec![PeerJob { spec, fds: vec![fd] }], a.timeout)?;
                drop(producer);
                let PeerReport::Idle { cpu_ns, wall_ns } = reports[0] else {
                    return Err(err("idle consumer sent no CPU time"));
                };
                let pct = 100.0 * cpu_ns as f64 / wall_ns.max(1) as f64;
                ctx.results.state::<Idle>(self.name()).0.push((mode, pct));
                Ok(format!(
                    "{pct:.2}% of a core ({:.1} ms CPU in {:.2} s)",
                    cpu_ns as f64 / 1e6,
                    wall_ns as f64 / 1e9
                ))
            }
        }
    }

    fn serve(&self, spec: &PeerSpec, fds: &mut Fds) -> Result<serde_json::Value> {
        if let Some(report) = links::serve(spec, fds)? {
            return Ok(serde_json::to_value(report)?);
        }
        if spec.role != IDLE_CONSUMER {
            return Err(err(format!("suite {} has no role {}", self.name(), spec.role)));
        }
        let Some(Transport::Shmring(mode)) = spec.transport else {
            return Err(err("the idle consumer measures a shmring ring"));
        };
        let mut rx = open_consumer(mode, fds.next()?)?;
        barrier()?;
        let mut buf = Vec::new();
        let (cpu0, t0) = (cpu_time_ns(), Instant::now());
        match rx.recv_timeout_into(&mut buf, Duration::from_nanos(spec.duration_ns)) {
            Err(RecvError::Timeout) => {}
            Ok(_) => return Err(err("idle consumer received a message nobody sent")),
            Err(e) => return Err(err(format!("idle consumer: {e}"))),
        }
        let (cpu1, wall) = (cpu_time_ns(), t0.elapsed());
        Ok(serde_json::to_value(PeerReport::Idle {
            cpu_ns: cpu1.saturating_sub(cpu0),
            wall_ns: wall.as_nanos() as u64,
        })?)
    }

    fn render(&self, r: &Results, out: &mut String) {
        render_table(r, out);
        let Some(Idle(idle)) = r.state_ref::<Idle>(self.name()) else {
            return;
        };
        if !idle.is_empty() {
            let _ = writeln!(
                out,
                "\nidle consumer (blocked in recv_timeout, no messages), CPU time / wall time:"
            );
            for (m, pct) in idle {
                let _ = writeln!(out, "  {SHMRING} {:<9} {pct:6.2}% of a core", m.name());
            }
        }
    }

    fn targets(&self, r: &Results) -> Option<(&'static str, Vec<OptTarget>)> {
        let idle = r.state_ref::<Idle>(self.name()).map_or(&[][..], |i| &i.0);
        let one_cpu = r.state_ref::<OneCpu>(self.name()).is_some_and(|o| o.0);
        Some((
            "SPSC ring",
            targets(r, idle, one_cpu).into_iter().map(OptTarget::from).collect(),
        ))
    }
}

/// The mode whose rows the ratio columns compare to: adaptive (the default), or the
/// first of spin, blocking that was measured.
fn ref_mode(r: &Results) -> Option<Mode> {
    REF_MODES.iter().copied().find(|m| r.has(SHMRING, Some(m.name())))
}

/// `pick` of the reference mode's shmring row at `size`.
fn reference<T>(r: &Results, size: u64, pick: impl Fn(&Row) -> Option<T>) -> Option<T> {
    r.find(SHMRING, ref_mode(r).map(Mode::name), size).and_then(pick)
}

/// The shared table (nothing if no transport ran).
fn render_table(r: &Results, out: &mut String) {
    let rows = r.rows();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "x shm = ratio to {SHMRING} in {} mode at the same size:\n\
         throughput x = shmring / row, latency x = row p50 / shmring p50 (> 1: shmring is better).\n\
         RTT: {PING_SIZE} B message there and back, from the initiator's clock. MB = 10^6 bytes of payload.\n",
        ref_mode(r).map_or("-", Mode::name),
    );
    let _ = writeln!(
        out,
        "{:<20} {:<9} {:>7} {:>10} {:>10} {:>7} | {:>9} {:>9} {:>9} {:>7}",
        "transport", "mode", "size", "msgs/s", "MB/s", "x shm", "RTT p50", "p99", "p99.9", "x shm"
    );
    let _ = writeln!(out, "{}", "-".repeat(110));
    let mut last_size = None;
    for row in rows {
        if last_size.is_some_and(|s| s != row.size) {
            let _ = writeln!(out);
        }
        last_size = Some(row.size);
        let tput_ref = reference(r, row.size, |x| x.mb_per_s);
        let rtt_ref = reference(r, row.size, |x| x.rtt_p50_ns);
        let tput_x = match (tput_ref, row.mb_per_s) {
            (Some(s), Some(v)) if v > 0.0 => ratio(s / v),
            _ => "-".into(),
        };
        let rtt_x = match (rtt_ref, row.rtt_p50_ns) {
            (Some(s), Some(v)) if s > 0 => ratio(v as f64 / s as f64),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<20} {:<9} {:>7} {:>10} {:>10} {:>7} | {:>9} {:>9} {:>9} {:>7}",
            row.transport,
            row.mode.unwrap_or("-"),
            report::size(row.size),
            row.msgs_per_s.map_or("-".into(), rate),
            row.mb_per_s.map_or("-".into(), |v| format!("{v:.1}")),
            tput_x,
            row.rtt_p50_ns.map_or("-".into(), ns),
            row.rtt_p99_ns.map_or("-".into(), ns),
            row.rtt_p999_ns.map_or("-".into(), ns),
            rtt_x,
        );
    }
}

/// The ring's performance targets that this run has the data for (`one_cpu`: both ends
/// of each run were pinned to one CPU).
fn targets(r: &Results, idle: &[(Mode, f64)], one_cpu: bool) -> Vec<Target> {
    let mut out = Vec::new();
    let shm = |m: Mode, size: u64| r.find(SHMRING, Some(m.name()), size);
    let other = |t: &str, size: u64| r.find(t, None, size);
    for (size, want) in [(64u64, 15.0), (8, 30.0)] {
        if let (Some(s), Some(u)) = (
            shm(Mode::Adaptive, size).and_then(|r| r.msgs_per_s),
            other(UNIX_SOCKET, size).and_then(|r| r.msgs_per_s),
        ) {
            out.push(Target::at_least(
                format!("throughput {size} B, adaptive >= {want}x unix-socket"),
                s / u,
                want,
            ));
        }
    }
    for size in [8u64, 64] {
        let Some(f) = r
            .find(REF_RING, Some(Mode::Spin.name()), size)
            .and_then(|r| r.msgs_per_s)
        else {
            continue;
        };
        for m in [Mode::Spin, Mode::Adaptive] {
            if let Some(s) = shm(m, size).and_then(|r| r.msgs_per_s) {
                out.push(Target::at_least(
                    format!("throughput {size} B, {} >= 0.8x ref-ring", m.name()),
                    s / f,
                    0.8,
                ));
            }
        }
    }
    let mib = 1 << 20;
    let mb = |m: Mode| shm(m, mib).and_then(|r| r.mb_per_s);
    if let (Some(ad), Some(best)) = (
        mb(Mode::Adaptive),
        [mb(Mode::Spin), mb(Mode::Blocking)]
            .into_iter()
            .flatten()
            .reduce(f64::max),
    ) {
        out.push(Target::at_least(
            "throughput 1 MiB, adaptive >= 0.9x the better of spin, blocking".into(),
            ad / best,
            0.9,
        ));
    }
    let mib = 1 << 20;
    if let (Some(s), Some(m)) = (
        shm(Mode::Adaptive, mib).and_then(|r| r.mb_per_s),
        other(MEMCPY, mib).and_then(|r| r.mb_per_s),
    ) {
        out.push(Target {
            what: "throughput 1 MiB, adaptive >= 45% of memcpy".into(),
            measured: format!("{:.0}%", 100.0 * s / m),
            pass: s / m >= 0.45,
        });
    }
    let ps = PING_SIZE as u64;
    let p50 = |r: Option<&Row>| r.and_then(|r| r.rtt_p50_ns).map(|v| v as f64);
    let spin = shm(Mode::Spin, ps);
    if let (Some(s), Some(f)) = (p50(spin), p50(other(FLOOR, ps))) {
        out.push(Target::at_most(
            "RTT p50, spin <= 1.5x cache-line floor p50",
            s / f,
            1.5,
        ));
    }
    if let (Some(s), Some(t)) = (p50(spin), spin.and_then(|r| r.rtt_p999_ns)) {
        let mut target = Target::at_most("RTT p99.9, spin <= 10x its own p50", t as f64 / s, 10.0);
        // The machine's own tail: the floor's p99.9 over its p50.
        let floor = other(FLOOR, ps);
        if let (Some(f50), Some(f999)) = (p50(floor), floor.and_then(|r| r.rtt_p999_ns)) {
            let _ = write!(target.measured, " (floor: {:.2}x)", f999 as f64 / f50);
        }
        out.push(target);
    }
    let adaptive = p50(shm(Mode::Adaptive, ps));
    if one_cpu {
        if let (Some(a), Some(b)) = (adaptive, p50(shm(Mode::Blocking, ps))) {
            out.push(Target::at_most(
                "RTT p50 on one CPU, adaptive <= 1.3x blocking",
                a / b,
                1.3,
            ));
        }
    } else if let (Some(a), Some(s)) = (adaptive, p50(spin)) {
        out.push(Target::at_most("RTT p50, adaptive <= 1.2x spin", a / s, 1.2));
    }
    if let Some((_, pct)) = idle.iter().find(|(m, _)| *m == Mode::Adaptive) {
        out.push(Target {
            what: "idle adaptive consumer < 2% of a core".into(),
            measured: format!("{pct:.2}%"),
            pass: *pct < 2.0,
        });
    }
    if let (Some(b), Some(p)) = (p50(shm(Mode::Blocking, ps)), p50(other(PIPE, ps))) {
        out.push(Target::at_most("RTT p50, blocking <= pipe", b / p, 1.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::RttStats;

    #[test]
    fn the_table_compares_to_the_ring_and_the_targets_check_it() {
        let mut r = Results::default();
        r.throughput(Transport::UnixSocket.key(8), 1e6);
        r.throughput(Transport::Shmring(Mode::Adaptive).key(8), 40e6);
        r.latency(
            Transport::Shmring(Mode::Adaptive).key(8),
            &RttStats {
                rounds: 1,
                p50_ns: 300,
                p99_ns: 400,
                p999_ns: 900,
                max_ns: 1000,
            },
        );
        let t = targets(&r, &[], false);
        assert_eq!(t.len(), 1);
        assert!(t[0].pass, "40x >= 30x");
        let mut text = String::new();
        Spsc.render(&r, &mut text);
        assert!(text.contains("40.0x"), "{text}");
        let rows = r.rows();
        assert_eq!((rows[0].transport, rows[1].transport), (SHMRING, UNIX_SOCKET));
    }
}
