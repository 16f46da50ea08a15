//! `shmring bench`: throughput and round-trip latency of the SPSC ring next to a Unix
//! domain socket, a pipe, a cache-line ping-pong floor and memcpy, in one run.
//!
//! Every measurement of a transport runs in two fresh child processes (see
//! [`super::peer`]); the parent only makes the links, starts the children together,
//! and collects their reports. The numbers:
//!
//! - throughput: the producer sends numbered messages with the ordinary per-message
//!   call (`Producer::send`, one `write` per frame on the streams) for `--duration`;
//!   the consumer receives each with `recv_into` (a buffered frame reader on the
//!   streams), checks its length and the sequence number in its first and last 8
//!   bytes, and times from its first message to the end of the stream. The producer's
//!   and the consumer's counts must agree;
//! - latency: an 8-byte message bounced back through two links (one each way),
//!   timed per round trip on the initiating side after a warm-up;
//! - idle: a consumer blocked for `--idle` in `recv_timeout` on an empty ring whose
//!   producer is alive; CPU time over wall time;
//! - MPMC (issue 3): the MPMC queue with 1, 2 or 4 producer processes and as many
//!   consumer processes, each producer pushing a fixed number of 64-byte messages, next
//!   to crossbeam's `ArrayQueue` between threads of this process (see
//!   [`super::mpmc`]), each row the median of three runs; and the queue's blocking
//!   hand-off, a ping-pong as above through two queues with both ends in blocking mode,
//!   run right after the SPSC ring's;
//! - locks: the robust mutex uncontended (one thread) and with two contending processes,
//!   next to process-shared pthread mutexes and Python's `multiprocessing.Lock` (see
//!   [`super::lock`]);
//! - typed messages (issue 5): a small serde message from one producer process to one
//!   consumer process through shmring's `Pipe` and `Queue`, a Unix socket carrying the
//!   same postcard bytes, and Python's `multiprocessing.Pipe` and `Queue` (see
//!   [`super::vocab`]), each row the median of three runs;
//! - sockets (issue 6): 64 B and 4 KiB messages from one producer process to one
//!   consumer process over `shmring::net`'s socket connection (Unix socket, authkey,
//!   after the handshake) and over a raw Unix stream socket (see [`super::net`]), each
//!   row the median of three runs;
//! - manager (issue 7): a manager dict's set, get and cached get (over the
//!   shared-memory channel, and set/get over the socket) against Python's
//!   `multiprocessing.Manager().dict()` (see [`super::manager`]), each row the median of
//!   three runs.

use super::launch::{PeerJob, run_peers};
use super::lock::{self, LockKind, LockMode};
use super::machine::{self, CpuSnapshot};
use super::manager;
use super::mpmc::{self, Topology};
use super::net;
use super::peer::{PeerReport, PeerSpec, Role};
use super::reference;
use super::report::{self, MEMCPY, Results};
use super::transports::{ARRAYQUEUE, MPMC_SLOTS, Mode, SHMRING_MPMC, Transport, mpmc_options};
use super::vocab::{self, VocabKind};
use super::{Result, err};
use shmring::ring::spsc;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Size of the ping-pong message.
pub(crate) const PING_SIZE: usize = 8;
/// Size of the memcpy reference's buffer.
const MEMCPY_SIZE: usize = 1 << 20;
/// Messages of one MPMC throughput run (all producers together) without `--count`.
const MPMC_MESSAGES: u64 = 2_000_000;
/// The same with `--quick`.
const MPMC_MESSAGES_QUICK: u64 = 400_000;
/// Runs of each MPMC throughput row, whose median is the row: one run of a queue
/// between two CPUs of a virtual machine may settle into a fast or a slow regime
/// (crossbeam's 1p1c varies 2x from run to run here), a median of three rarely does.
const MPMC_RUNS: usize = 3;

/// What `--transports` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Selected {
    /// The shmring SPSC ring, in every mode of `--modes`.
    #[value(alias = "shmring-spsc")]
    Shmring,
    /// A SOCK_STREAM Unix domain socket pair, length-prefixed frames.
    #[value(alias = "unix-socket")]
    Unix,
    /// An anonymous pipe, length-prefixed frames.
    Pipe,
    /// Reference: one atomic bounced between two processes (latency only).
    #[value(alias = "floor-cacheline")]
    Floor,
    /// Reference: single-thread memcpy of a 1 MiB buffer (throughput only).
    Memcpy,
    /// The shmring MPMC queue, its producers and consumers in separate processes:
    /// throughput at 64 B in each of `--mpmc-modes`, and the blocking-mode RTT.
    #[value(alias = "shmring-mpmc")]
    Mpmc,
    /// Reference of the MPMC rows: crossbeam's ArrayQueue between threads of this
    /// process, in each of `--mpmc-modes` (throughput only).
    #[value(alias = "crossbeam-arrayqueue", alias = "crossbeam")]
    Arrayqueue,
    /// The lock rows: the kinds of `--locks` in the modes of `--lock-modes` (`--measure`
    /// does not apply to them).
    #[value(alias = "lock")]
    Locks,
    /// The typed-message rows (issue 5): the rows of `--vocab`, throughput only.
    #[value(alias = "typed")]
    Vocab,
    /// The socket rows (issue 6): `shmring::net`'s socket connection against a raw Unix
    /// socket, 64 B and 4 KiB messages, throughput only.
    #[value(alias = "sockets")]
    Net,
    /// The manager rows (issue 7): a `DictProxy`'s set, get and cached get against
    /// Python's `multiprocessing.Manager().dict()`.
    Manager,
}

/// What `--measure` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Measure {
    /// Messages per second at each of `--sizes`.
    Throughput,
    /// Ping-pong round-trip times of an 8-byte message.
    Latency,
    /// CPU use of a consumer waiting on an empty ring.
    Idle,
}

/// Arguments of `shmring bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    shmring bench\n  \
    shmring bench --quick\n  \
    shmring bench --transports shmring,unix --modes spin --sizes 64,4K --json out.json\n  \
    shmring bench --transports mpmc,arrayqueue --mpmc-modes 1p1c --count 2000000\n  \
    shmring bench --transports vocab --vocab pipe,unix,python-pipe\n  \
    shmring bench --measure latency --rounds 1000000 --pin 0,1")]
pub struct BenchArgs {
    /// Message sizes of the throughput runs, in bytes (suffixes K/KiB and M/MiB are
    /// powers of 1024).
    #[arg(long, value_delimiter = ',', default_value = "8,64,4096,1048576", value_parser = parse_size)]
    sizes: Vec<usize>,

    /// Transports to measure; floor and memcpy are the physical references.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "shmring,unix,pipe,floor,memcpy,mpmc,arrayqueue,locks,vocab,net,manager"
    )]
    transports: Vec<Selected>,

    /// Wait strategies of the shmring ring (both ends use the same one).
    #[arg(long, value_delimiter = ',', default_value = "spin,adaptive,blocking")]
    modes: Vec<Mode>,

    /// Producers and consumers of the MPMC throughput runs (`mpmc`, `arrayqueue`): 1p1c
    /// is one producer and one consumer, and so on. The queue's ends wait adaptively.
    #[arg(long, value_delimiter = ',', default_value = "1p1c,2p2c,4p4c")]
    mpmc_modes: Vec<Topology>,

    /// Locks of the lock rows (`locks`): shmring's robust `Mutex<u64>`, a process-shared
    /// pthread mutex, a robust one, Python's `multiprocessing.Lock` (skipped, and said
    /// so, if python3 is missing).
    #[arg(long, value_delimiter = ',', default_value = "shmring,pthread,pthread-robust,python")]
    locks: Vec<LockKind>,

    /// Modes of the lock rows: one thread alone (ns per lock+unlock, median of batches),
    /// and two processes contending for --duration (ops/s, median of 3 runs).
    #[arg(long, value_delimiter = ',', default_value = "uncontended,contended")]
    lock_modes: Vec<LockMode>,

    /// Rows of the typed-message step (`vocab`): a small serde message sent by one
    /// process to another through shmring's pipe (`send`/`recv`) and queue
    /// (`put`/`get`), a Unix socket (one `write` per length-prefixed message; and
    /// unix-batched: through a 64 KiB BufWriter), and Python's `multiprocessing.Pipe`
    /// and `Queue` (skipped, and said so, if python3 is missing). Each row is the median
    /// of 3 runs (--quick: 1) of a count of messages per row sized to about 1 s in all,
    /// or of --count.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pipe,queue,unix,unix-batched,python-pipe,python-queue"
    )]
    vocab: Vec<VocabKind>,

    /// What to measure.
    #[arg(long, value_delimiter = ',', default_value = "throughput,latency,idle")]
    measure: Vec<Measure>,

    /// How long the producer of each throughput run sends (e.g. 500ms, 1s, 0.5), and how
    /// long the two processes of each contended lock run contend.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    duration: Duration,

    /// Send exactly N messages per throughput run instead of running for --duration.
    /// The MPMC runs always send a count: N per producer [default: 2M (--quick: 400k)
    /// in all, shared among the producers]; their rows are the median of 3 runs. The
    /// typed runs (`vocab`) send N each [default: per row, 50k (Python's queue) to 4M
    /// (the batched socket); --quick: a tenth].
    #[arg(long, value_name = "N")]
    count: Option<u64>,

    /// Timed round trips per latency run, after --warmup untimed ones.
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    rounds: u64,

    /// Untimed round trips before the timed ones.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    warmup: u64,

    /// Stop a latency run's timed part after this long, even before --rounds.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "TIME")]
    max_latency_time: Duration,

    /// How long the idle consumer waits.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "TIME")]
    idle: Duration,

    /// Ring capacity in bytes [default: 8 x the message size rounded up to a power of
    /// two, at least 1 MiB].
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    capacity: Option<usize>,

    /// Pin the two processes of each run to these two CPUs (e.g. 0,1).
    #[arg(long, value_delimiter = ',', num_args = 1, value_name = "CPU,CPU")]
    pin: Vec<usize>,

    /// A quick smoke run: 100 ms per throughput run, one run of 400k messages per MPMC
    /// row, 20k round trips (2k warm-up), 250 ms idle, one 100 ms run per contended lock
    /// and fewer uncontended batches, one run of a tenth of the messages per typed row.
    /// Overrides --duration, --rounds, --warmup and --idle.
    #[arg(long)]
    quick: bool,

    /// Kill the processes of a run and fail if it takes longer than this.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "TIME")]
    timeout: Duration,

    /// Also write the rows as a JSON array to PATH: one object per row, with keys
    /// transport, mode, size, msgs_per_s, mb_per_s, rtt_p50_ns, rtt_p99_ns, rtt_p999_ns
    /// (null where not measured).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,

    /// Also draw throughput and round-trip percentiles per transport against message
    /// size into the SVG file PATH (log-log, one line per transport and mode).
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,
}

/// One measurement of the run.
#[derive(Debug, Clone, Copy)]
enum Step {
    Memcpy,
    Floor,
    Latency(Transport),
    Throughput(Transport, usize),
    Idle(Mode),
    /// The MPMC queue across processes.
    Mpmc(Topology),
    /// crossbeam's ArrayQueue between threads.
    ArrayQueue(Topology),
    /// The selected locks, one thread, no contention.
    LockUncontended,
    /// The selected locks, two processes contending.
    LockContended,
    /// The selected typed-message rows.
    Vocab,
    /// The socket rows.
    Net,
    /// The manager rows.
    Manager,
}

impl Step {
    fn label(self) -> String {
        match self {
            Step::Memcpy => format!("memcpy {}", report::size(MEMCPY_SIZE as u64)),
            Step::Floor => "latency floor-cacheline".into(),
            Step::Latency(t) => format!("latency {}", t.label()),
            Step::Throughput(t, s) => format!("throughput {} {}", t.label(), report::size(s as u64)),
            Step::Idle(m) => format!("idle consumer shmring-spsc/{}", m.name()),
            Step::Mpmc(t) => format!("throughput {SHMRING_MPMC} {} {}", t.name(), report::size(MSG as u64)),
            Step::ArrayQueue(t) => format!("throughput {ARRAYQUEUE} {} {}", t.name(), report::size(MSG as u64)),
            Step::LockUncontended => format!("locks {}", lock::UNCONTENDED),
            Step::LockContended => format!("locks {}", lock::CONTENDED),
            Step::Vocab => format!("typed messages of {} B", vocab::encoded_size()),
            Step::Net => "sockets 64 B, 4 KiB".into(),
            Step::Manager => "manager dict set/get/cached get".into(),
        }
    }
}

/// Size of the MPMC rows' messages.
const MSG: usize = mpmc::MSG_SIZE;

/// The run's steps, in order: references, latency, throughput, MPMC throughput, idle,
/// locks, typed messages.
fn steps(a: &BenchArgs) -> Vec<Step> {
    let has = |s: Selected| a.transports.contains(&s);
    let measures = |m: Measure| a.measure.contains(&m);
    let mut modes = a.modes.clone();
    modes.sort();
    modes.dedup();
    // Adaptive (the default mode, the ratios' reference) first.
    modes.sort_by_key(|&m| m != Mode::Adaptive);
    let mut transports: Vec<Transport> = Vec::new();
    if has(Selected::Shmring) {
        transports.extend(modes.iter().map(|&m| Transport::Shmring(m)));
    }
    if has(Selected::Unix) {
        transports.push(Transport::UnixSocket);
    }
    if has(Selected::Pipe) {
        transports.push(Transport::Pipe);
    }
    let mut out = Vec::new();
    if has(Selected::Memcpy) && measures(Measure::Throughput) {
        out.push(Step::Memcpy);
    }
    if measures(Measure::Latency) {
        if has(Selected::Floor) {
            out.push(Step::Floor);
        }
        let mut latency: Vec<Transport> = transports.clone();
        if has(Selected::Mpmc) {
            // Right after the ring's modes, so that the two blocking hand-offs compared
            // by issue 3's target run close together in time.
            let at = latency
                .iter()
                .take_while(|t| matches!(t, Transport::Shmring(_)))
                .count();
            latency.insert(at, Transport::Mpmc(Mode::Blocking));
        }
        out.extend(latency.into_iter().map(Step::Latency));
    }
    if measures(Measure::Throughput) {
        for &size in &a.sizes {
            out.extend(transports.iter().map(|&t| Step::Throughput(t, size)));
        }
        let mut topologies = a.mpmc_modes.clone();
        topologies.sort();
        topologies.dedup();
        for t in topologies {
            if has(Selected::Arrayqueue) {
                out.push(Step::ArrayQueue(t));
            }
            if has(Selected::Mpmc) {
                out.push(Step::Mpmc(t));
            }
        }
    }
    if measures(Measure::Idle) && has(Selected::Shmring) {
        out.extend(modes.iter().map(|&m| Step::Idle(m)));
    }
    if has(Selected::Locks) && !a.locks.is_empty() {
        if a.lock_modes.contains(&LockMode::Uncontended) {
            out.push(Step::LockUncontended);
        }
        if a.lock_modes.contains(&LockMode::Contended) {
            out.push(Step::LockContended);
        }
    }
    if has(Selected::Vocab) && measures(Measure::Throughput) && !a.vocab.is_empty() {
        out.push(Step::Vocab);
    }
    if has(Selected::Net) && measures(Measure::Throughput) {
        out.push(Step::Net);
    }
    if has(Selected::Manager) && measures(Measure::Throughput) {
        out.push(Step::Manager);
    }
    out
}

/// Entry point of `shmring bench`.
pub fn run(mut a: BenchArgs) -> Result<()> {
    if a.quick {
        a.duration = Duration::from_millis(100);
        a.rounds = 20_000;
        a.warmup = 2_000;
        a.idle = Duration::from_millis(250);
    }
    check(&a)?;
    let steps = steps(&a);
    if steps.is_empty() {
        return Err(err("nothing to measure with these --transports and --measure"));
    }
    let header = machine::header();
    eprintln!("{header}");
    let started = Instant::now();
    let mut results = Results::default();
    let cpus = reference::probe_cpus(&a.pin);
    let probe = || cpus.and_then(reference::cpu_probe);
    let mut probe_before = probe();
    for (i, &step) in steps.iter().enumerate() {
        eprint!("[{:>2}/{}] {:<48}", i + 1, steps.len(), step.label());
        let _ = std::io::stderr().flush();
        let t0 = Instant::now();
        let before = CpuSnapshot::now();
        let summary = run_step(step, &a, &mut results).map_err(|e| {
            eprintln!(" failed");
            err(format!("{}: {e}", step.label()))
        })?;
        let mut note = String::new();
        if let (Some(b), Some(now)) = (before, CpuSnapshot::now()) {
            let i = b.interference(&now);
            if i.disturbing() {
                note = format!(
                    "  [disturbed: others used {:.2} cores, steal {:.2}]",
                    i.foreign, i.steal
                );
                results.disturbed(step.label(), i);
            }
        }
        let elapsed = t0.elapsed();
        let probe_after = probe();
        if let (Some(cpus), Some(b), Some(af)) = (cpus, probe_before, probe_after) {
            note = format!("  [cpu probe {b}/{af} ns]{note}");
            results.placement(step.label(), cpus, [b, af]);
        }
        probe_before = probe_after;
        eprintln!(" {summary}  ({:.2} s){note}", elapsed.as_secs_f64());
    }
    eprintln!("done in {:.1} s\n", started.elapsed().as_secs_f64());
    print!("{}", results.render(&header));
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&results.json_rows())?;
        std::fs::write(path, text + "\n").map_err(|e| err(format!("cannot write {}: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &a.plot {
        super::plot::plot(&results.json_rows(), path)?;
        eprintln!("drew {}", path.display());
    }
    Ok(())
}

fn check(a: &BenchArgs) -> Result<()> {
    for (flag, path) in [("--json", &a.json), ("--plot", &a.plot)] {
        if let Some(p) = path {
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            if !dir.is_dir() {
                return Err(err(format!(
                    "{flag} {}: directory {} does not exist",
                    p.display(),
                    dir.display()
                )));
            }
        }
    }
    if !a.pin.is_empty() && a.pin.len() != 2 {
        return Err(err("--pin takes two CPUs, e.g. --pin 0,1"));
    }
    if a.measure.contains(&Measure::Latency) && a.rounds == 0 {
        return Err(err("--rounds must be at least 1"));
    }
    for &s in &a.sizes {
        if s == 0 || s > 1 << 30 {
            return Err(err(format!("message size {s} is outside 1 B..=1 GiB")));
        }
        let cap = capacity(a, s).next_power_of_two();
        if a.transports.contains(&Selected::Shmring) && s > spsc::max_message_len(cap) {
            return Err(err(format!(
                "a {s}-byte message does not fit a {cap}-byte ring (limit {}); raise --capacity",
                spsc::max_message_len(cap)
            )));
        }
    }
    Ok(())
}

/// The ring capacity for messages of `size` bytes.
fn capacity(a: &BenchArgs, size: usize) -> usize {
    a.capacity
        .unwrap_or_else(|| (size.next_power_of_two().saturating_mul(8)).max(1 << 20))
}

fn cpu(a: &BenchArgs, i: usize) -> Option<usize> {
    a.pin.get(i).copied()
}

/// Run one step, record its result, and return a one-line summary for the progress.
fn run_step(step: Step, a: &BenchArgs, results: &mut Results) -> Result<String> {
    match step {
        Step::Memcpy => {
            let m = reference::memcpy_bandwidth(MEMCPY_SIZE, Duration::from_millis(300));
            results.throughput(MEMCPY, None, m.size, m.copies_per_s);
            Ok(format!("{:.1} MB/s", m.copies_per_s * m.size as f64 / 1e6))
        }
        Step::Floor => {
            let page = reference::floor_page()?;
            let mut ping = latency_spec(Role::FloorPing, None, a);
            ping.cpu = cpu(a, 0);
            let mut pong = latency_spec(Role::FloorPong, None, a);
            pong.cpu = cpu(a, 1);
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
            let reports = run_peers(jobs, a.timeout)?;
            let PeerReport::Rtt(s) = reports[0] else {
                return Err(err("floor ping sent no round-trip times"));
            };
            results.latency(report::FLOOR, None, PING_SIZE, &s);
            Ok(rtt_summary(&s))
        }
        Step::Latency(t) => {
            let cap = capacity(a, PING_SIZE);
            let (there, back) = (t.link(cap)?, t.link(cap)?);
            let mut ping = latency_spec(Role::Ping, Some(t), a);
            ping.cpu = cpu(a, 0);
            let mut pong = latency_spec(Role::Pong, Some(t), a);
            pong.cpu = cpu(a, 1);
            let jobs = vec![
                PeerJob {
                    spec: ping,
                    fds: vec![there.tx, back.rx],
                },
                PeerJob {
                    spec: pong,
                    fds: vec![there.rx, back.tx],
                },
            ];
            let reports = run_peers(jobs, a.timeout)?;
            let (PeerReport::Rtt(s), PeerReport::Echoed { messages }) = (&reports[0], &reports[1]) else {
                return Err(err("unexpected reports from ping/pong"));
            };
            if *messages < s.rounds {
                return Err(err(format!(
                    "pong echoed {messages} messages for {} round trips",
                    s.rounds
                )));
            }
            results.latency(t.name(), t.mode().map(Mode::name), PING_SIZE, s);
            Ok(rtt_summary(s))
        }
        Step::Throughput(t, size) => {
            let link = t.link(capacity(a, size))?;
            let mut tx = PeerSpec::new(Role::Producer, Some(t), size);
            tx.count = a.count;
            tx.duration_ns = a.duration.as_nanos() as u64;
            tx.cpu = cpu(a, 0);
            let mut rx = PeerSpec::new(Role::Consumer, Some(t), size);
            rx.cpu = cpu(a, 1);
            let jobs = vec![
                PeerJob {
                    spec: tx,
                    fds: vec![link.tx],
                },
                PeerJob {
                    spec: rx,
                    fds: vec![link.rx],
                },
            ];
            let reports = run_peers(jobs, a.timeout)?;
            let (PeerReport::Sent { messages: sent }, PeerReport::Received { messages, elapsed_ns }) =
                (&reports[0], &reports[1])
            else {
                return Err(err("unexpected reports from producer/consumer"));
            };
            if sent != messages {
                return Err(err(format!(
                    "producer sent {sent} messages, consumer received {messages}"
                )));
            }
            if *messages < 2 || *elapsed_ns == 0 {
                return Err(err(format!(
                    "too few messages to time ({messages}); raise --duration or --count"
                )));
            }
            // The first message starts the clock: the other n - 1 are timed.
            let per_s = (*messages - 1) as f64 / (*elapsed_ns as f64 / 1e9);
            results.throughput(t.name(), t.mode().map(Mode::name), size, per_s);
            Ok(format!(
                "{} msgs/s, {:.1} MB/s ({messages} msgs)",
                report::rate(per_s),
                per_s * size as f64 / 1e6
            ))
        }
        Step::Idle(mode) => {
            // The parent keeps the producer (alive, silent); the child waits as consumer.
            let (producer, consumer) =
                spsc::channel_with(1 << 16, &super::transports::ring_options(mode)).map_err(|e| err(e.to_string()))?;
            let fd = consumer
                .into_fd()
                .ok_or_else(|| err("ring consumer has no descriptor"))?;
            let mut spec = PeerSpec::new(Role::IdleConsumer, Some(Transport::Shmring(mode)), 0);
            spec.duration_ns = a.idle.as_nanos() as u64;
            spec.cpu = cpu(a, 1);
            let reports = run_peers(vec![PeerJob { spec, fds: vec![fd] }], a.timeout)?;
            drop(producer);
            let PeerReport::Idle { cpu_ns, wall_ns } = reports[0] else {
                return Err(err("idle consumer sent no CPU time"));
            };
            let pct = 100.0 * cpu_ns as f64 / wall_ns.max(1) as f64;
            results.idle(mode, pct);
            Ok(format!(
                "{pct:.2}% of a core ({:.1} ms CPU in {:.2} s)",
                cpu_ns as f64 / 1e6,
                wall_ns as f64 / 1e9
            ))
        }
        Step::ArrayQueue(topo) => {
            let runs = (0..mpmc_runs(a))
                .map(|_| mpmc::arrayqueue(topo, mpmc_count(a, topo), &a.pin, a.timeout))
                .collect::<Result<Vec<_>>>()?;
            let (per_s, summary) = mpmc_summary(&runs);
            results.throughput(ARRAYQUEUE, Some(topo.name()), MSG, per_s);
            Ok(summary)
        }
        Step::Mpmc(topo) => {
            let runs = (0..mpmc_runs(a))
                .map(|_| run_mpmc(topo, a))
                .collect::<Result<Vec<_>>>()?;
            let (per_s, summary) = mpmc_summary(&runs);
            results.throughput(SHMRING_MPMC, Some(topo.name()), MSG, per_s);
            Ok(summary)
        }
        Step::LockUncontended => lock::run_uncontended(&lock_kinds(a), a.quick, a.timeout, results.locks()),
        Step::LockContended => {
            let runs = if a.quick { 1 } else { lock::RUNS };
            lock::run_contended(&lock_kinds(a), a.duration, runs, &a.pin, a.timeout, results.locks())
        }
        Step::Vocab => {
            let runs = if a.quick { 1 } else { vocab::RUNS };
            vocab::run(
                &vocab_kinds(a),
                a.count,
                a.quick,
                runs,
                &a.pin,
                a.timeout,
                results.vocab(),
            )
        }
        Step::Net => {
            let runs = if a.quick { 1 } else { net::RUNS };
            net::run(a.count, a.quick, runs, &a.pin, a.timeout, results.net())
        }
        Step::Manager => {
            let runs = if a.quick { 1 } else { manager::RUNS };
            manager::run(a.quick, runs, a.timeout, results.manager())
        }
    }
}

/// The selected typed rows, each once, in the table's order.
fn vocab_kinds(a: &BenchArgs) -> Vec<VocabKind> {
    let mut k = a.vocab.clone();
    k.sort();
    k.dedup();
    k
}

/// The selected locks, each once, in the rows' order.
fn lock_kinds(a: &BenchArgs) -> Vec<LockKind> {
    let mut k = a.locks.clone();
    k.sort();
    k.dedup();
    k
}

/// Messages per producer of an MPMC run.
fn mpmc_count(a: &BenchArgs, t: Topology) -> u64 {
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
fn mpmc_summary(runs: &[mpmc::RunResult]) -> (f64, String) {
    let mut rates: Vec<f64> = runs.iter().map(|r| r.per_s).collect();
    rates.sort_by(f64::total_cmp);
    let per_s = rates[rates.len() / 2];
    let mut line = format!(
        "{} msgs/s, {:.1} MB/s ({} msgs",
        report::rate(per_s),
        per_s * MSG as f64 / 1e6,
        runs[0].messages
    );
    if runs.len() > 1 {
        let all: Vec<String> = runs.iter().map(|r| report::rate(r.per_s)).collect();
        line = format!("median {line} x {}: {})", runs.len(), all.join(", "));
    } else {
        line.push(')');
    }
    (per_s, line)
}

/// One MPMC run across processes: a queue of [`MPMC_SLOTS`] 64-byte slots, a child per
/// producer (`[queue, done page]`) and per consumer (`[queue]`), each with an end of its
/// own. The parent keeps one producer end, to read the queue's counters at the end.
fn run_mpmc(topo: Topology, a: &BenchArgs) -> Result<mpmc::RunResult> {
    use shmring::ring::mpmc as queue;
    let n = mpmc_count(a, topo);
    let k = topo.parties();
    let t = Transport::Mpmc(mpmc::THROUGHPUT_MODE);
    let (tx, rx) = queue::channel_with(MPMC_SLOTS, MSG, &mpmc_options(mpmc::THROUGHPUT_MODE))?;
    let done = reference::floor_page()?;
    let mut jobs = Vec::with_capacity(2 * k);
    for id in 0..k {
        let mut spec = PeerSpec::new(Role::MpmcProducer, Some(t), MSG);
        spec.count = Some(n);
        spec.id = id as u64;
        spec.producers = k as u64;
        spec.cpu = cpu(a, 0);
        let page = done.try_clone().map_err(|e| err(format!("dup: {e}")))?;
        jobs.push(PeerJob {
            spec,
            fds: vec![tx.try_clone()?.into_fd(), page],
        });
    }
    for _ in 0..k {
        let mut spec = PeerSpec::new(Role::MpmcConsumer, Some(t), MSG);
        spec.producers = k as u64;
        spec.cpu = cpu(a, 1);
        jobs.push(PeerJob {
            spec,
            fds: vec![rx.try_clone()?.into_fd()],
        });
    }
    drop((rx, done));
    let reports = run_peers(jobs, a.timeout)?;
    let mut consumed = Vec::with_capacity(k);
    for r in reports {
        match r {
            PeerReport::Sent { messages } if messages == n => {}
            PeerReport::Sent { messages } => {
                return Err(err(format!("a producer sent {messages} messages instead of {n}")));
            }
            PeerReport::Consumed(c) => consumed.push(c),
            other => return Err(err(format!("unexpected report from an MPMC peer: {other:?}"))),
        }
    }
    let r = mpmc::check_run(k, n, &consumed)?;
    let s = tx.stats();
    if s.lost != 0 || s.pushed != r.messages || s.popped != r.messages {
        return Err(err(format!(
            "the queue counted {} pushed, {} popped, {} lost for {} messages",
            s.pushed, s.popped, s.lost, r.messages
        )));
    }
    Ok(r)
}

fn latency_spec(role: Role, t: Option<Transport>, a: &BenchArgs) -> PeerSpec {
    let mut s = PeerSpec::new(role, t, PING_SIZE);
    s.rounds = a.rounds;
    s.warmup = a.warmup;
    s.duration_ns = a.max_latency_time.as_nanos() as u64;
    s
}

fn rtt_summary(s: &super::peer::RttStats) -> String {
    format!(
        "p50 {}  p99 {}  p99.9 {}  ({} round trips)",
        report::ns(s.p50_ns),
        report::ns(s.p99_ns),
        report::ns(s.p999_ns),
        s.rounds
    )
}

/// `4096`, `4K`, `4KiB`, `1M`, `1MiB` (powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let mul = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        u => return Err(format!("unknown size unit {u:?} (use K, KiB, M, MiB)")),
    };
    n.checked_mul(mul).ok_or_else(|| format!("{s:?} is too large"))
}

/// `500ms`, `2s`, `1.5s`, `0.5` (seconds), `100us`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("{s:?} is not a duration"))?;
    let secs = match unit.trim() {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        "m" | "min" => v * 60.0,
        u => return Err(format!("unknown duration unit {u:?} (use us, ms, s, min)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        a: BenchArgs,
    }

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64"), Ok(64));
        assert!(parse_size("3x").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn default_plan_covers_the_issue() {
        let t = T::parse_from(["bench"]);
        let s = steps(&t.a);
        let labels: Vec<String> = s.iter().map(|s| s.label()).collect();
        // 4 sizes x (3 ring modes + unix + pipe), 5 latencies + floor, memcpy, 3 idles,
        // 3 MPMC topologies x (queue + crossbeam), the queue's blocking latency, the two
        // lock steps, the typed step, the socket step, the manager step (last).
        assert_eq!(s.len(), 20 + 6 + 1 + 3 + 6 + 1 + 2 + 1 + 1 + 1, "{labels:?}");
        assert_eq!(
            labels[labels.len() - 5..labels.len() - 3],
            ["locks uncontended", "locks 2proc"]
        );
        assert!(matches!(s[s.len() - 3], Step::Vocab), "{labels:?}");
        assert!(matches!(s[s.len() - 2], Step::Net), "{labels:?}");
        assert!(matches!(s[s.len() - 1], Step::Manager), "{labels:?}");
        assert_eq!(lock_kinds(&t.a), LockKind::ALL);
        assert_eq!(vocab_kinds(&t.a), VocabKind::ALL);
        assert!(labels.contains(&"throughput shmring-spsc/adaptive 1 MiB".to_string()));
        assert!(labels.contains(&"latency unix-socket".to_string()));
        assert!(labels.contains(&"latency shmring-mpmc/blocking".to_string()));
        for t in ["1p1c", "2p2c", "4p4c"] {
            assert!(
                labels.contains(&format!("throughput shmring-mpmc {t} 64 B")),
                "{labels:?}"
            );
            assert!(labels.contains(&format!("throughput crossbeam-arrayqueue {t} 64 B")));
        }
        assert_eq!(mpmc_count(&t.a, Topology::P4C4), MPMC_MESSAGES / 4);
        assert!(check(&t.a).is_ok());
        assert_eq!(capacity(&t.a, 1 << 20), 8 << 20);
        assert_eq!(capacity(&t.a, 64), 1 << 20);
    }

    #[test]
    fn selections_narrow_the_plan() {
        let t = T::parse_from(["bench", "--transports", "shmring", "--modes", "spin", "--sizes", "64"]);
        let labels: Vec<String> = steps(&t.a).iter().map(|s| s.label()).collect();
        assert_eq!(
            labels,
            [
                "latency shmring-spsc/spin",
                "throughput shmring-spsc/spin 64 B",
                "idle consumer shmring-spsc/spin"
            ]
        );
        let t = T::parse_from(["bench", "--sizes", "2M", "--capacity", "1M"]);
        assert!(check(&t.a).is_err());
        let t = T::parse_from([
            "bench",
            "--transports",
            "shmring-mpmc,crossbeam",
            "--mpmc-modes",
            "2p2c",
            "--count",
            "1000",
        ]);
        let labels: Vec<String> = steps(&t.a).iter().map(|s| s.label()).collect();
        assert_eq!(
            labels,
            [
                "latency shmring-mpmc/blocking",
                "throughput crossbeam-arrayqueue 2p2c 64 B",
                "throughput shmring-mpmc 2p2c 64 B"
            ]
        );
        assert_eq!(mpmc_count(&t.a, Topology::P2C2), 1000);
        let t = T::parse_from([
            "bench",
            "--transports",
            "lock",
            "--locks",
            "python-mp-lock,shmring",
            "--lock-modes",
            "contended",
        ]);
        let labels: Vec<String> = steps(&t.a).iter().map(|s| s.label()).collect();
        assert_eq!(labels, ["locks 2proc"]);
        assert_eq!(lock_kinds(&t.a), [LockKind::Shmring, LockKind::Python]);
        let t = T::parse_from([
            "bench",
            "--transports",
            "typed",
            "--vocab",
            "python-mp-queue,shmring-pipe,unix-socket,shmring-pipe",
        ]);
        assert_eq!(steps(&t.a).len(), 1);
        assert_eq!(
            vocab_kinds(&t.a),
            [VocabKind::Pipe, VocabKind::Unix, VocabKind::PythonQueue]
        );
        let t = T::parse_from(["bench", "--transports", "vocab", "--measure", "latency"]);
        assert!(steps(&t.a).is_empty(), "the typed rows are throughput");
    }
}
