//! The one trait every bench suite implements, and the plan's steps.
//!
//! A suite is a family of rows measured together (the SPSC transports, the MPMC queue,
//! the locks, ...), in one file under `suites/`. It plans its steps from the flags,
//! runs one step at a time (recording rows into the [`Results`]), serves the roles of
//! its child processes, and renders its own part of the report: a block of text, a
//! list of targets, and the JSON rows that are not in the shared table. The
//! orchestrator (`bench.rs`) iterates the registry (`suites::SUITES`) and knows no
//! suite; the report code (`report.rs`) knows only rows.
//!
//! To add a row: change the suite's file. To add a suite: a file under `suites/`, an
//! entry in `suites::SUITES`, and its flags (if any) in `args.rs`.

use crate::args::BenchArgs;
use crate::peer::{Fds, PeerSpec};
use crate::report::{OptTarget, RateUnit, Results, Row};
use crate::{Result, err};

/// When a step runs relative to the steps of other suites. The plan is the suites'
/// steps in registry order, stably sorted by ([`Phase`], rank): the physical
/// references first, then every round-trip run, every throughput run, the idle runs,
/// and the suites of their own (locks, typed messages, ...) last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// The physical references (memcpy, the cache-line floor).
    References,
    /// Ping-pong round trips.
    Latency,
    /// Throughput of the transports and queues.
    Throughput,
    /// CPU use of idle consumers.
    Idle,
    /// The suites with blocks of their own.
    Rows,
}

/// A step of a suite's plan: when it runs (phase and rank within the phase) and what it
/// is (the suite's own step type).
#[derive(Debug, Clone)]
pub(crate) struct Planned<S> {
    /// Its phase.
    pub(crate) phase: Phase,
    /// Its rank within the phase (lower first; equal ranks keep the registry order).
    pub(crate) rank: u8,
    /// The suite's description of the step.
    pub(crate) step: S,
}

impl<S> Planned<S> {
    /// `step` in `phase`, rank 0.
    pub(crate) fn new(phase: Phase, step: S) -> Self {
        Planned { phase, rank: 0, step }
    }

    /// The same step with rank `rank`.
    pub(crate) fn rank(mut self, rank: u8) -> Self {
        self.rank = rank;
        self
    }
}

/// What a step runs with: the flags and the results so far.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    /// The flags of the run (after `--quick`).
    pub(crate) args: &'a BenchArgs,
    /// Where the step records its rows.
    pub(crate) results: &'a mut Results,
}

/// A suite of rows: plan the steps, run a step, serve the child roles, report.
pub(crate) trait Suite: Sync {
    /// The suite's description of one step.
    type Step: Clone + std::fmt::Debug + Send + Sync + 'static;

    /// The suite's name: the key of its state in the [`Results`] and of its child jobs.
    fn name(&self) -> &'static str;

    /// Refuse flags the suite cannot run with (before anything runs).
    fn check(&self, _a: &BenchArgs) -> Result<()> {
        Ok(())
    }

    /// The steps the flags select, in the suite's order.
    fn plan(&self, a: &BenchArgs) -> Vec<Planned<Self::Step>>;

    /// The step's label in the progress lines and the warnings.
    fn label(&self, step: &Self::Step) -> String;

    /// Run one step, record its rows, and return a one-line summary for the progress.
    fn run(&self, step: &Self::Step, ctx: &mut Ctx<'_>) -> Result<String>;

    /// Serve a child process's role (the job names it), returning its report.
    fn serve(&self, spec: &PeerSpec, _fds: &mut Fds) -> Result<serde_json::Value> {
        Err(err(format!("suite {} has no role {}", self.name(), spec.role)))
    }

    /// The suite's block of the report (the shared table, for the transports' suite).
    fn render(&self, _r: &Results, _out: &mut String) {}

    /// The suite's targets, under a title naming what they measure.
    fn targets(&self, _r: &Results) -> Option<(&'static str, Vec<OptTarget>)> {
        None
    }

    /// The JSON rows the suite keeps outside the shared table (after the table's).
    fn json_rows(&self, _r: &Results) -> Vec<Row> {
        Vec::new()
    }

    /// The rows `--plot` draws besides the shared table's, each with what its
    /// `msgs_per_s` counts: the JSON rows (messages) unless the suite says otherwise.
    fn plot_rows(&self, r: &Results) -> Vec<(Row, RateUnit)> {
        self.json_rows(r)
            .into_iter()
            .map(|row| (row, RateUnit::Messages))
            .collect()
    }
}

/// What runs a [`Step`]: the suite's `run` with the suite's step.
type RunStep = Box<dyn Fn(&mut Ctx<'_>) -> Result<String> + Send + Sync>;

/// A step of the run, whichever suite planned it.
pub(crate) struct Step {
    /// The suite that planned it.
    pub(crate) suite: &'static str,
    /// Its phase and rank.
    pub(crate) order: (Phase, u8),
    /// Its label.
    pub(crate) label: String,
    /// Runs it.
    run: RunStep,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("suite", &self.suite)
            .field("order", &self.order)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Step {
    /// Run the step.
    pub(crate) fn run(&self, ctx: &mut Ctx<'_>) -> Result<String> {
        (self.run)(ctx)
    }
}

/// [`Suite`] without its step type: what the registry holds.
pub(crate) trait AnySuite: Sync {
    /// [`Suite::name`].
    fn name(&self) -> &'static str;
    /// [`Suite::check`].
    fn check(&self, a: &BenchArgs) -> Result<()>;
    /// [`Suite::plan`], each step labelled and ready to run.
    fn steps(&'static self, a: &BenchArgs) -> Vec<Step>;
    /// [`Suite::serve`].
    fn serve(&self, spec: &PeerSpec, fds: &mut Fds) -> Result<serde_json::Value>;
    /// [`Suite::render`].
    fn render(&self, r: &Results, out: &mut String);
    /// [`Suite::targets`].
    fn targets(&self, r: &Results) -> Option<(&'static str, Vec<OptTarget>)>;
    /// [`Suite::json_rows`].
    fn json_rows(&self, r: &Results) -> Vec<Row>;
    /// [`Suite::plot_rows`].
    fn plot_rows(&self, r: &Results) -> Vec<(Row, RateUnit)>;
}

impl<S: Suite> AnySuite for S {
    fn name(&self) -> &'static str {
        Suite::name(self)
    }

    fn check(&self, a: &BenchArgs) -> Result<()> {
        Suite::check(self, a)
    }

    fn steps(&'static self, a: &BenchArgs) -> Vec<Step> {
        self.plan(a)
            .into_iter()
            .map(|p| Step {
                suite: Suite::name(self),
                order: (p.phase, p.rank),
                label: self.label(&p.step),
                run: Box::new(move |ctx| self.run(&p.step, ctx)),
            })
            .collect()
    }

    fn serve(&self, spec: &PeerSpec, fds: &mut Fds) -> Result<serde_json::Value> {
        Suite::serve(self, spec, fds)
    }

    fn render(&self, r: &Results, out: &mut String) {
        Suite::render(self, r, out)
    }

    fn targets(&self, r: &Results) -> Option<(&'static str, Vec<OptTarget>)> {
        Suite::targets(self, r)
    }

    fn json_rows(&self, r: &Results) -> Vec<Row> {
        Suite::json_rows(self, r)
    }

    fn plot_rows(&self, r: &Results) -> Vec<(Row, RateUnit)> {
        Suite::plot_rows(self, r)
    }
}
