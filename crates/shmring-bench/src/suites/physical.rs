//! The physical references: memcpy bandwidth of a 1 MiB buffer, and the cache-line
//! ping-pong floor between two processes (see [`crate::reference`]). Their rows sit in
//! the shared table, after the transports', and the SPSC suite's targets compare with
//! them.

use crate::args::{BenchArgs, Measure, Selected};
use crate::launch::{PeerJob, run_peers};
use crate::links::{PING_SIZE, latency_spec, rtt_summary};
use crate::peer::{Fds, PeerReport, PeerSpec, barrier};
use crate::reference::{self, FLOOR, MEMCPY, SharedWord};
use crate::report::{self, Key};
use crate::suite::{Ctx, Phase, Planned, Suite};
use crate::{Result, err};
use std::time::Duration;

/// Size of the memcpy reference's buffer.
const MEMCPY_SIZE: usize = 1 << 20;

/// Role: initiate the cache-line ping-pong (fds: `[shared page]`).
const FLOOR_PING: &str = "floor-ping";
/// Role: answer it (fds: `[shared page]`).
const FLOOR_PONG: &str = "floor-pong";

/// The suite of the physical references.
#[derive(Debug)]
pub(crate) struct Physical;

/// A step of [`Physical`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// memcpy bandwidth.
    Memcpy,
    /// The cache-line ping-pong.
    Floor,
}

/// The key of a reference's row in the shared table (after the transports' rows).
fn key(transport: &'static str, size: usize) -> Key {
    let rank = if transport == FLOOR { 5 } else { 6 };
    Key {
        transport,
        mode: None,
        size: size as u64,
        order: (rank, 0),
    }
}

impl Suite for Physical {
    type Step = Step;

    fn name(&self) -> &'static str {
        "physical"
    }

    fn plan(&self, a: &BenchArgs) -> Vec<Planned<Step>> {
        let mut out = Vec::new();
        if a.has(Selected::Memcpy) && a.measures(Measure::Throughput) {
            out.push(Planned::new(Phase::References, Step::Memcpy));
        }
        if a.has(Selected::Floor) && a.measures(Measure::Latency) {
            out.push(Planned::new(Phase::References, Step::Floor));
        }
        out
    }

    fn label(&self, step: &Step) -> String {
        match step {
            Step::Memcpy => format!("memcpy {}", report::size(MEMCPY_SIZE as u64)),
            Step::Floor => format!("latency {FLOOR}"),
        }
    }

    fn run(&self, step: &Step, ctx: &mut Ctx<'_>) -> Result<String> {
        let a = ctx.args;
        match step {
            Step::Memcpy => {
                let m = reference::memcpy_bandwidth(MEMCPY_SIZE, Duration::from_millis(300));
                ctx.results.throughput(key(MEMCPY, m.size), m.copies_per_s);
                Ok(format!("{:.1} MB/s", m.copies_per_s * m.size as f64 / 1e6))
            }
            Step::Floor => {
                let page = reference::floor_page()?;
                let mut ping = latency_spec(self.name(), FLOOR_PING, None, a);
                ping.cpu = a.cpu(0);
                let mut pong = latency_spec(self.name(), FLOOR_PONG, None, a);
                pong.cpu = a.cpu(1);
                let jobs = vec![
                    PeerJob {
                        spec: ping,
                        fds: vec![page.try_clone().map_err(|e| err(format!("dup: {e}")))?],
                    },
                    PeerJob {
                        spec: pong,
                        fds: vec![page],
                    },
                ];
                let reports: Vec<PeerReport> = run_peers(jobs, a.timeout)?;
                let PeerReport::Rtt(s) = reports[0] else {
                    return Err(err("floor ping sent no round-trip times"));
                };
                ctx.results.latency(key(FLOOR, PING_SIZE), &s);
                Ok(rtt_summary(&s))
            }
        }
    }

    fn serve(&self, spec: &PeerSpec, fds: &mut Fds) -> Result<serde_json::Value> {
        let report = match spec.role.as_str() {
            FLOOR_PING => {
                let page = SharedWord::map(fds.next()?)?;
                barrier()?;
                PeerReport::Rtt(reference::floor_ping(&page, spec)?)
            }
            FLOOR_PONG => {
                let page = SharedWord::map(fds.next()?)?;
                barrier()?;
                let messages = reference::floor_pong(&page);
                PeerReport::Echoed { messages }
            }
            r => return Err(err(format!("suite {} has no role {r}", self.name()))),
        };
        Ok(serde_json::to_value(report)?)
    }
}
