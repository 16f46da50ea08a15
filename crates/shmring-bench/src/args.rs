//! The flags of `shmring bench` and the values they select. Only data lives here (the
//! suites give the values their behaviour, in `impl` blocks of their own files), so that
//! the suites, the orchestrator and the tests all read the same [`BenchArgs`].

use crate::transports::Mode;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

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
    /// Reference: a minimal hand-written SPSC ring in shared memory between the same
    /// two processes (busy-spin; rows `ref-ring`/`spin`): round trips, and throughput
    /// at the sizes of `--sizes` up to 64 B.
    #[value(name = "ref-ring", alias = "refring")]
    RefRing,
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
    /// The typed-message rows: the rows of `--vocab`, throughput only.
    #[value(alias = "typed")]
    Vocab,
    /// The socket rows: `shmring::net`'s socket connection against a raw Unix
    /// socket, 64 B and 4 KiB messages, throughput only.
    #[value(alias = "sockets")]
    Net,
    /// The manager rows: a `DictProxy`'s set, get and cached get against
    /// Python's `multiprocessing.Manager().dict()`.
    Manager,
    /// The broadcast rows: one publisher process to 1, 2 and 4 subscriber processes
    /// through a `shmring::broadcast` ring (lossless and overwrite), next to the
    /// publisher writing into one SPSC ring or one Unix socket per subscriber, at 64 B
    /// and 4 KiB, and the ring's 8-byte round trip; in each of `--modes` but spin.
    #[value(alias = "shmring-broadcast")]
    Broadcast,
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
    shmring bench --quick --targets --verbose\n  \
    shmring bench --transports shmring,unix --modes spin --sizes 64,4K --json out.json\n  \
    shmring bench --transports mpmc,arrayqueue --mpmc-modes 1p1c --count 2000000\n  \
    shmring bench --transports vocab --vocab pipe,unix,python-pipe\n  \
    shmring bench --measure latency --rounds 1000000 --pin 0,1\n  \
    shmring bench --transports shmring,ref-ring --pin same --sizes 8,64")]
pub struct BenchArgs {
    /// Message sizes of the throughput runs, in bytes (suffixes K/KiB and M/MiB are
    /// powers of 1024).
    #[arg(long, value_delimiter = ',', default_value = "8,64,4096,1048576", value_parser = parse_size)]
    pub(crate) sizes: Vec<usize>,

    /// Transports to measure; floor and memcpy are the physical references.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "shmring,unix,pipe,ref-ring,floor,memcpy,mpmc,arrayqueue,broadcast,locks,vocab,net,manager"
    )]
    pub(crate) transports: Vec<Selected>,

    /// Wait strategies of the shmring ring (both ends use the same one).
    #[arg(long, value_delimiter = ',', default_value = "spin,adaptive,blocking")]
    pub(crate) modes: Vec<Mode>,

    /// Producers and consumers of the MPMC throughput runs (`mpmc`, `arrayqueue`): 1p1c
    /// is one producer and one consumer, and so on. The queue's ends wait adaptively.
    #[arg(long, value_delimiter = ',', default_value = "1p1c,2p2c,4p4c")]
    pub(crate) mpmc_modes: Vec<Topology>,

    /// Locks of the lock rows (`locks`): shmring's robust `Mutex<u64>`, a process-shared
    /// pthread mutex, a robust one, Python's `multiprocessing.Lock` (skipped, and said
    /// so, if python3 is missing).
    #[arg(long, value_delimiter = ',', default_value = "shmring,pthread,pthread-robust,python")]
    pub(crate) locks: Vec<LockKind>,

    /// Modes of the lock rows: one thread alone (ns per lock+unlock, median of batches),
    /// and two processes contending for --duration (ops/s, median of 3 runs).
    #[arg(long, value_delimiter = ',', default_value = "uncontended,contended")]
    pub(crate) lock_modes: Vec<LockMode>,

    /// Rows of the typed-message step (`vocab`): a small serde message sent by one
    /// process to another through shmring's pipe (`send`/`recv`; pipe-borrowed:
    /// `recv_ref` and a borrowed decode; pipe-batch: `recv_batch`) and queue
    /// (`put`/`get`; queue-borrowed: `get_ref`), a Unix socket (one `write` per length-prefixed message; and
    /// unix-batched: through a 64 KiB BufWriter), and Python's `multiprocessing.Pipe`
    /// and `Queue` (skipped, and said so, if python3 is missing). Each row is the median
    /// of 3 runs (--quick: 1) of a count of messages per row sized to about 1 s in all,
    /// or of --count.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pipe,pipe-borrowed,pipe-batch,queue,queue-borrowed,unix,unix-batched,python-pipe,python-queue"
    )]
    pub(crate) vocab: Vec<VocabKind>,

    /// What to measure.
    #[arg(long, value_delimiter = ',', default_value = "throughput,latency,idle")]
    pub(crate) measure: Vec<Measure>,

    /// How long the producer of each throughput run sends (e.g. 500ms, 1s, 0.5), and how
    /// long the two processes of each contended lock run contend.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub(crate) duration: Duration,

    /// Send exactly N messages per throughput run instead of running for --duration.
    /// The MPMC runs always send a count: N per producer [default: 2M (--quick: 400k)
    /// in all, shared among the producers]; their rows are the median of 3 runs. The
    /// typed runs (`vocab`) send N each [default: per row, 50k (Python's queue) to 4M
    /// (the batched socket); --quick: a tenth].
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,

    /// Timed round trips per latency run, after --warmup untimed ones.
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    pub(crate) rounds: u64,

    /// Untimed round trips before the timed ones.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub(crate) warmup: u64,

    /// Stop a latency run's timed part after this long, even before --rounds.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "TIME")]
    pub(crate) max_latency_time: Duration,

    /// How long the idle consumer waits.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "TIME")]
    pub(crate) idle: Duration,

    /// Ring capacity in bytes [default: 8 x the message size rounded up to a power of
    /// two, at least 1 MiB].
    #[arg(long, value_parser = parse_size, value_name = "BYTES")]
    pub(crate) capacity: Option<usize>,

    /// Pin the two processes of each run: `cross` on the first two CPUs this process
    /// may use (one each), `same` both on the first, or `CPU,CPU` (e.g. 0,1). Rows keep
    /// their names; the header says where they ran.
    #[arg(long = "pin", value_parser = parse_pin, value_name = "same|cross|CPU,CPU")]
    pub(crate) pin_arg: Option<Pin>,

    /// The CPUs of `--pin`, resolved at the start of the run (empty: not pinned).
    #[arg(skip)]
    pub(crate) pin: Vec<usize>,

    /// Lock the benchmark's rings in RAM (`mlock`, besides the prefault they always
    /// get), where `RLIMIT_MEMLOCK` allows; a ring that cannot be locked fails its run.
    #[arg(long)]
    pub(crate) mlock: bool,

    /// A quick smoke run: 100 ms per throughput run, one run of 400k messages per MPMC
    /// row, 20k round trips (2k warm-up), 250 ms idle, one 100 ms run per contended lock
    /// and fewer uncontended batches, one run of a tenth of the messages per typed row.
    /// Overrides --duration, --rounds, --warmup and --idle.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Kill the processes of a run and fail if it takes longer than this.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "TIME")]
    pub(crate) timeout: Duration,

    /// Also print the performance targets, PASS or FAIL, after the tables: the ratios
    /// the design aims at (each named by what it compares). A FAIL says this machine,
    /// during this run, did not reach a ratio; it is not a failed test.
    #[arg(long)]
    pub(crate) targets: bool,

    /// List every run that shared the CPUs with other work, and every run whose CPU
    /// placement probe was unlike the others (without it: one line each).
    #[arg(long, short)]
    pub(crate) verbose: bool,

    /// Also write the rows as a JSON array to PATH: one object per row, with keys
    /// transport, mode, size, msgs_per_s, mb_per_s, rtt_p50_ns, rtt_p99_ns, rtt_p999_ns
    /// (null where not measured).
    #[arg(long, value_name = "PATH")]
    pub(crate) json: Option<PathBuf>,

    /// Also draw the rows into the SVG file PATH: one panel per unit (msgs/s and MB/s
    /// against message size, log-log, one line per transport and mode; round-trip
    /// percentiles; lock and dict ops/s), each with its legend beside it.
    #[arg(long, value_name = "PATH")]
    pub(crate) plot: Option<PathBuf>,
}

/// Where `--pin` puts the two processes of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pin {
    /// Both on one CPU: every hand-off needs the other process scheduled in.
    Same,
    /// One CPU each.
    Cross,
    /// These two CPUs.
    Cpus(usize, usize),
}

/// `same`, `cross` or `CPU,CPU`.
pub(crate) fn parse_pin(s: &str) -> Result<Pin, String> {
    match s.trim() {
        "same" => Ok(Pin::Same),
        "cross" => Ok(Pin::Cross),
        t => {
            let cpus: Vec<usize> = t
                .split(',')
                .map(|c| c.trim().parse().map_err(|_| format!("{c:?} is not a CPU number")))
                .collect::<Result<_, _>>()?;
            match cpus[..] {
                [a, b] => Ok(Pin::Cpus(a, b)),
                _ => Err("--pin takes same, cross or two CPUs, e.g. --pin 0,1".into()),
            }
        }
    }
}

impl Pin {
    /// The two CPUs, from `allowed` (the CPUs this process may run on, in order) for
    /// `same` and `cross`.
    pub(crate) fn cpus(self, allowed: &[usize]) -> Result<[usize; 2], String> {
        match (self, allowed) {
            (Pin::Cpus(a, b), _) => Ok([a, b]),
            (Pin::Same, [a, ..]) => Ok([*a, *a]),
            (Pin::Cross, [a, b, ..]) => Ok([*a, *b]),
            (Pin::Same, []) => Err("--pin same: no CPU to run on".into()),
            (Pin::Cross, _) => Err("--pin cross needs two CPUs this process may run on".into()),
        }
    }

    /// `same`, `cross` or `CPU,CPU`, for the header.
    pub(crate) fn describe(self, cpus: [usize; 2]) -> String {
        match self {
            Pin::Same => format!("same CPU ({})", cpus[0]),
            Pin::Cross => format!("cross CPUs ({},{})", cpus[0], cpus[1]),
            Pin::Cpus(..) => format!("CPUs {},{}", cpus[0], cpus[1]),
        }
    }
}

/// Producers and consumers of one MPMC run: the `mode` of its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub(crate) enum Topology {
    /// One producer, one consumer.
    #[value(name = "1p1c")]
    P1C1,
    /// Two producers, two consumers.
    #[value(name = "2p2c")]
    P2C2,
    /// Four producers, four consumers.
    #[value(name = "4p4c")]
    P4C4,
}

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

/// What `--lock-modes` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub(crate) enum LockMode {
    /// One thread, nobody else touching the lock: ns per lock+unlock.
    Uncontended,
    /// Two processes taking the lock in a loop: operations per second of both.
    Contended,
}

/// A row of the typed rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum VocabKind {
    /// `shmring::connection` pipe: `send` / `recv`.
    #[value(alias = "shmring-pipe")]
    Pipe,
    /// The same pipe, received in place: `recv_ref` and a borrowed decode (`&str`).
    PipeBorrowed,
    /// The same pipe, received in batches: `recv_batch` and a borrowed decode.
    PipeBatch,
    /// `shmring::queue::Queue`: `put` / `get`.
    #[value(alias = "shmring-queue")]
    Queue,
    /// The same queue, taken with `get_ref` and a borrowed decode (`&str`).
    QueueBorrowed,
    /// A Unix stream socket, one `write` per length-prefixed message.
    #[value(alias = "unix-socket")]
    Unix,
    /// The same with a 64 KiB `BufWriter` (a reference: batches messages).
    UnixBatched,
    /// Python's `multiprocessing.Pipe()` (skipped if python3 is missing).
    #[value(alias = "python-mp-pipe")]
    PythonPipe,
    /// Python's `multiprocessing.Queue()` (skipped if python3 is missing).
    #[value(alias = "python-mp-queue")]
    PythonQueue,
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
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
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

impl BenchArgs {
    /// Whether `--transports` selects `s`.
    pub(crate) fn has(&self, s: Selected) -> bool {
        self.transports.contains(&s)
    }

    /// Whether `--measure` selects `m`.
    pub(crate) fn measures(&self, m: Measure) -> bool {
        self.measure.contains(&m)
    }

    /// The ring capacity for messages of `size` bytes.
    pub(crate) fn capacity_for(&self, size: usize) -> usize {
        self.capacity
            .unwrap_or_else(|| (size.next_power_of_two().saturating_mul(8)).max(1 << 20))
    }

    /// The CPU of `--pin` for the `i`th process of a run (0: the sender, 1: the receiver).
    pub(crate) fn cpu(&self, i: usize) -> Option<usize> {
        self.pin.get(i).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn pins_parse_and_resolve() {
        assert_eq!(parse_pin("same"), Ok(Pin::Same));
        assert_eq!(parse_pin("cross"), Ok(Pin::Cross));
        assert_eq!(parse_pin("0,3"), Ok(Pin::Cpus(0, 3)));
        assert!(parse_pin("0").is_err());
        assert!(parse_pin("0,1,2").is_err());
        assert!(parse_pin("near").is_err());
        assert_eq!(Pin::Same.cpus(&[2, 5]), Ok([2, 2]));
        assert_eq!(Pin::Cross.cpus(&[2, 5]), Ok([2, 5]));
        assert!(Pin::Cross.cpus(&[2]).is_err());
        assert_eq!(Pin::Cpus(1, 0).cpus(&[]), Ok([1, 0]));
    }
}
