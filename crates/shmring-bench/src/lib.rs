//! `shmring bench`: the cross-process benchmark harness of shmring, as a library the
//! `shmring` command calls (`shmring bench`, and the hidden `__bench-peer` subcommand
//! its children run as).
//!
//! - `bench`: the orchestrating parent process;
//! - `peer`: one process per side of a link;
//! - `launch`: the parent's handling of those children;
//! - `transports`: the transports under test, behind the small `transports::Tx` /
//!   `transports::Rx` traits;
//! - `machine`: the header line, and the CPU other processes took during each run;
//! - `reference`: the physical references (cache-line ping-pong floor, memcpy);
//! - `mpmc`: the MPMC rows: the queue across processes, crossbeam's `ArrayQueue`
//!   between threads;
//! - `lock`: the lock rows: shmring's robust mutex against process-shared pthread
//!   mutexes and Python's `multiprocessing.Lock`, uncontended and with two processes;
//! - `vocab`: the typed-message rows: shmring's `Pipe` and `Queue` against a Unix
//!   socket carrying the same encoded messages and Python's `multiprocessing.Pipe` and
//!   `Queue`;
//! - `net`: the socket rows: `shmring::net`'s socket connection (authkey,
//!   after the handshake) against a raw Unix stream socket carrying the same bytes;
//! - `manager`: the manager rows: a `DictProxy`'s set, get and cached
//!   get against Python's `multiprocessing.Manager().dict()`;
//! - `report`: rows, the table, the target checks and the JSON output;
//! - `plot`: `bench --plot FILE.svg`.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_debug_implementations)]

pub(crate) mod bench;
pub(crate) mod launch;
pub(crate) mod lock;
pub(crate) mod machine;
pub(crate) mod manager;
pub(crate) mod mpmc;
pub(crate) mod net;
pub(crate) mod peer;
pub(crate) mod plot;
pub(crate) mod python;
pub(crate) mod reference;
pub(crate) mod report;
pub(crate) mod transports;
pub(crate) mod vocab;

pub use bench::{BenchArgs, parse_size, run};
pub use peer::{PeerArgs, child_main as peer_main};

/// Errors of the harness: printed as one line by the `shmring` command.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of the harness's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a message.
pub(crate) fn err(msg: impl Into<String>) -> Error {
    msg.into().into()
}
