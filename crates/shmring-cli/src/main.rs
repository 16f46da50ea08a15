//! `shmring`: the command-line tool of the shmring crate.
//!
//! Subcommands: `ls`, `stat`, `rm`, `gc` (see and clean up what lives in `/dev/shm`),
//! `create`, `send`, `recv` (make rings from the shell and bridge them to stdin/stdout),
//! and `bench` (the cross-process benchmark against sockets, pipes and Python; the
//! harness is the `shmring-bench` crate).
//!
//! - `admin`: `shmring ls`, `rm`, `gc`;
//! - `bridge`: `shmring create`, `send`, `recv`, `stat`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_debug_implementations)]

mod admin;
mod bridge;

use clap::{Parser, Subcommand};

/// Errors of the tool: printed as one line, then the process exits with status 1.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of the tool's operations.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Shared-memory IPC engine: lock-free rings in mmap'd memory with futex waits.
#[derive(Debug, Parser)]
#[command(name = "shmring", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once")]
enum Command {
    /// Measure the SPSC ring against a Unix socket, a pipe and the hardware's floor, and
    /// the MPMC queue against crossbeam's ArrayQueue.
    ///
    /// Throughput (msgs/s, MB/s) at several message sizes and ping-pong round-trip
    /// latency (median, p99, p99.9) of the SPSC ring in busy-spin, adaptive and blocking
    /// modes, side by side with a Unix domain socket and a pipe, plus two physical
    /// references: a cache-line ping-pong between two processes and memcpy bandwidth.
    /// Producer and consumer run as separate processes (this binary re-executed). Prints
    /// one table with, for every transport and size, the ratio to the shmring ring in
    /// its default (adaptive) mode, the CPU use of an idle consumer, and (with
    /// --targets) the performance targets with PASS/FAIL. The MPMC queue runs with 1, 2 and 4 producer
    /// and as many consumer processes at 64 B, next to crossbeam's ArrayQueue between
    /// threads of one process, and its blocking-mode round trip is compared with the
    /// SPSC ring's. The robust mutex (`shmring::sync::Mutex`) is timed uncontended and
    /// with two processes contending, next to a process-shared pthread mutex, a robust
    /// one and Python's `multiprocessing.Lock`. Small typed messages go through
    /// shmring's `Pipe` and `Queue`, a Unix socket and Python's `multiprocessing.Pipe`
    /// and `Queue`, one producer process to one consumer process. Sockets with an
    /// authkey run against a raw Unix socket, and a Manager dict against Python's
    /// `multiprocessing.Manager().dict()`. Progress goes to stderr.
    Bench(shmring_bench::BenchArgs),
    /// List the shmring segments in /dev/shm: kind, size, capacity, fill level and the
    /// attached parties with their liveness.
    Ls(admin::LsArgs),
    /// Remove named segments (refuses segments in use unless --force, and files that
    /// are not shmring's).
    Rm(admin::RmArgs),
    /// Remove the shmring segments whose every party is dead (dry run unless --force).
    Gc(admin::GcArgs),
    /// Show the live counters of one ring, queue or primitive (--watch: refresh with rates).
    Stat(bridge::StatArgs),
    /// Create a named ring, queue or primitive that stays in /dev/shm for others to open.
    Create(bridge::CreateArgs),
    /// Send stdin to a ring or queue: one message per line, or length-prefixed records.
    Send(bridge::SendArgs),
    /// Write the messages of a ring or queue to stdout: one per line, or length-prefixed.
    Recv(bridge::RecvArgs),
    /// One side of a benchmark link (internal: started by `shmring bench`).
    #[command(name = "__bench-peer", hide = true)]
    BenchPeer(shmring_bench::PeerArgs),
}

/// Parse the command line, run it, and return the process's exit status.
fn run() -> i32 {
    // The manager bench's server process (`Manager::start` re-executes this binary):
    // it runs here and exits; any other invocation goes on.
    shmring::process::run_if_child(&[shmring::manager::SERVER_ENTRY]);
    let cli = Cli::parse();
    let (who, result) = match cli.command {
        Command::Bench(args) => ("shmring bench", shmring_bench::run(args)),
        Command::Ls(args) => ("shmring ls", admin::ls(args)),
        Command::Rm(args) => ("shmring rm", admin::rm(args)),
        Command::Gc(args) => ("shmring gc", admin::gc(args)),
        Command::Stat(args) => ("shmring stat", bridge::stat(args)),
        Command::Create(args) => ("shmring create", bridge::create(args)),
        Command::Send(args) => ("shmring send", bridge::send(args)),
        Command::Recv(args) => ("shmring recv", bridge::recv(args)),
        Command::BenchPeer(args) => ("shmring __bench-peer", shmring_bench::peer_main(args)),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            // One line: the error and its sources.
            let mut msg = e.to_string();
            let mut src = e.source();
            while let Some(s) = src {
                let text = s.to_string();
                if !msg.contains(&text) {
                    msg.push_str(": ");
                    msg.push_str(&text);
                }
                src = s.source();
            }
            eprintln!("{who}: error: {}", msg.replace('\n', " "));
            1
        }
    }
}

/// An error from a message.
pub(crate) fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}

fn main() {
    std::process::exit(run());
}
