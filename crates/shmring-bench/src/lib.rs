//! `shmring bench`: the cross-process benchmark harness of shmring, as a library the
//! `shmring` command calls (`shmring bench`, and the hidden `__bench-peer` subcommand
//! its children run as).
//!
//! The harness is a registry of suites. From the top down (a module imports only from
//! the layers below it):
//!
//! - `bench`: the orchestrator: checks the flags, collects the suites' steps, runs
//!   them, prints the report and writes the JSON and the plot; the children's entry
//!   point, which hands a job to the suite it names;
//! - `suites`: the registry (`suites::SUITES`) and one file per suite, each
//!   implementing `suite::Suite` (plan the steps, run a step, serve the child roles,
//!   render its block, its targets and its JSON rows):
//!   - `physical`: the physical references (memcpy, the cache-line ping-pong floor);
//!   - `spsc_transports`: the SPSC ring against a Unix socket and a pipe (throughput, round
//!     trips, the idle consumer), and the shared table;
//!   - `mpmc_queue`: the MPMC queue across processes against crossbeam's `ArrayQueue`
//!     between threads, and its blocking hand-off;
//!   - `broadcast`: the broadcast ring, one publisher process to 1, 2 and 4 subscriber
//!     processes, against the same fan-out through N SPSC rings and N Unix sockets,
//!     and its round trip against the SPSC ring's;
//!   - `locks`: shmring's robust mutex against process-shared pthread mutexes and
//!     Python's `multiprocessing.Lock`, uncontended and with two processes;
//!   - `typed`: a small typed message through shmring's `Pipe` and `Queue`, a Unix
//!     socket and Python's `multiprocessing.Pipe` and `Queue`;
//!   - `sockets`: `shmring::net`'s socket connection against a raw Unix socket;
//!   - `manager_dict`: a manager dict's set, get and cached get against Python's
//!     `multiprocessing.Manager().dict()`;
//! - shared infrastructure: `suite` (the trait, the steps), `args` (the flags),
//!   `links` (runs over one transport link: its child roles and the parent's side),
//!   `transports` (the links under test, behind `transports::Tx` / `transports::Rx`),
//!   `launch` (the parent's handling of child processes), `peer` (the children's
//!   protocol: job, descriptors, report), `reference` (the shared page, the floor's
//!   ping-pong, memcpy, the placement probe), `refring` (the hand-written reference
//!   SPSC ring, a transport like the others), `machine` (the header line, the CPU
//!   other processes took), `python` (running `python3` scripts), `report` (rows,
//!   the suites' results, target lines, units) and `plot` (`bench --plot FILE.svg`).
//!
//! To add a row: change its suite's file. To add a suite: a file under `suites/`
//! implementing `Suite`, an entry in `suites::SUITES`, and its flags in `args`. Module
//! names do not reuse the library's (`net`, `lock`, `manager`, `spsc`, `mpmc`, ...).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_debug_implementations)]

pub(crate) mod args;
pub(crate) mod bench;
pub(crate) mod launch;
pub(crate) mod links;
pub(crate) mod machine;
pub(crate) mod peer;
pub(crate) mod plot;
pub(crate) mod python;
pub(crate) mod reference;
pub(crate) mod refring;
pub(crate) mod report;
pub(crate) mod stats;
pub(crate) mod suite;
pub(crate) mod suites;
pub(crate) mod transports;

pub use args::{BenchArgs, parse_size};
pub use bench::{peer_main, run};
pub use peer::PeerArgs;

/// Errors of the harness: printed as one line by the `shmring` command.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of the harness's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a message.
pub(crate) fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}
