//! The benchmark's peer processes: the hidden `__bench-peer` subcommand, the job
//! it is given and the report it returns. The parent's side is [`crate::launch`].
//!
//! A job names the suite that serves it and one of that suite's roles; the suite's
//! [`Suite::serve`](crate::suite::Suite::serve) runs it and returns its report (one
//! JSON value; [`PeerReport`] holds the shapes most roles share). This module knows no
//! suite: [`child_main`] is handed the function that finds one.
//!
//! # Protocol
//!
//! The parent makes the links (descriptors), clears close-on-exec on the descriptors of
//! one child, spawns it (`shmring __bench-peer --spec JSON`, the spec naming the
//! inherited descriptor numbers), and closes its own copies, so that each descriptor
//! lives in exactly one child. Each child opens its ends, prints `ready`, and waits
//! for `go` on stdin; the parent sends `go` when every child is ready. Each child runs
//! its role, closes its ends (which the other side sees as the end of the stream),
//! prints one JSON [`PeerReport`], and exits.
//!
//! A child that fails prints one line on stderr and exits non-zero; the parent then
//! kills and reaps every child of the run and reports that line. Children die with the
//! parent (`PR_SET_PDEATHSIG`), and the rings live in anonymous segments, so nothing is
//! left behind in `/dev/shm` whatever happens.

pub(crate) use crate::stats::RttStats;
use crate::transports::Transport;
use crate::{Result, err};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Arguments of the hidden `__bench-peer` subcommand.
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    /// The peer's job, as JSON (written by `shmring bench`).
    #[arg(long)]
    spec: String,
}

/// The job of one peer process. The fields past `cpu` are the suites' parameters: each
/// role documents the ones it reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PeerSpec {
    /// The suite that serves the job ([`Suite::name`](crate::suite::Suite::name)).
    pub(crate) suite: String,
    /// What to do: one of the suite's roles.
    pub(crate) role: String,
    /// Inherited descriptors, in the order the role documents (set at spawn).
    pub(crate) fds: Vec<RawFd>,
    /// Pin the process to this CPU.
    pub(crate) cpu: Option<usize>,
    /// Which transport the descriptors belong to (the link roles, the MPMC roles).
    pub(crate) transport: Option<Transport>,
    /// Message size in bytes.
    pub(crate) size: usize,
    /// Producer: send exactly this many messages instead of running for `duration_ns`.
    pub(crate) count: Option<u64>,
    /// Producer: how long to send. Ping: the cap on the measured rounds. Idle: how long
    /// to wait. Lock contender: how long to contend.
    pub(crate) duration_ns: u64,
    /// Ping: round trips to time after the warm-up.
    pub(crate) rounds: u64,
    /// Ping: untimed round trips first.
    pub(crate) warmup: u64,
    /// MPMC producer: its id, stamped into its messages.
    pub(crate) id: u64,
    /// MPMC roles: the number of producers of the run.
    pub(crate) producers: u64,
    /// Where a listening consumer listens (the socket connection's row).
    pub(crate) address: Option<String>,
    /// Lock the rings this process maps in RAM (`shmring bench --mlock`; set at spawn).
    #[serde(default)]
    pub(crate) mlock: bool,
    /// The suite's own parameter of the row (which lock, which typed row, ...), as JSON:
    /// see [`PeerSpec::with_param`] and [`PeerSpec::param`].
    pub(crate) param: serde_json::Value,
}

impl PeerSpec {
    /// A job of `suite`'s `role`, with no counts, durations or descriptors yet.
    pub(crate) fn new(suite: &str, role: &str, transport: Option<Transport>, size: usize) -> Self {
        PeerSpec {
            suite: suite.to_owned(),
            role: role.to_owned(),
            fds: Vec::new(),
            cpu: None,
            transport,
            size,
            count: None,
            duration_ns: 0,
            rounds: 0,
            warmup: 0,
            id: 0,
            producers: 0,
            address: None,
            mlock: false,
            param: serde_json::Value::Null,
        }
    }

    /// The same job with the suite's parameter `p`.
    pub(crate) fn with_param(mut self, p: &impl Serialize) -> Result<Self> {
        self.param = serde_json::to_value(p)?;
        Ok(self)
    }

    /// The suite's parameter, decoded.
    pub(crate) fn param<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(&self.param).map_err(|e| err(format!("{} needs its parameter: {e}", self.role)))
    }

    /// The transport of a role that needs one.
    pub(crate) fn transport(&self) -> Result<Transport> {
        self.transport
            .ok_or_else(|| err(format!("{} needs a transport", self.role)))
    }
}

/// The inherited descriptors of a peer, taken in the order its role documents.
#[derive(Debug)]
pub(crate) struct Fds {
    role: String,
    fds: std::vec::IntoIter<OwnedFd>,
}

impl Fds {
    /// The next descriptor; an error if the parent passed too few.
    pub(crate) fn next(&mut self) -> Result<OwnedFd> {
        self.fds
            .next()
            .ok_or_else(|| err(format!("{} needs more descriptors", self.role)))
    }

    /// The next descriptor, if the parent passed one.
    pub(crate) fn next_opt(&mut self) -> Option<OwnedFd> {
        self.fds.next()
    }
}

/// Entry point of `shmring __bench-peer`: adopt the descriptors, pin, let `serve` (the
/// suite named by the job) run the role, and print its report.
pub(crate) fn child_main(
    args: PeerArgs,
    serve: impl FnOnce(&PeerSpec, &mut Fds) -> Result<serde_json::Value>,
) -> Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| err(format!("prctl(PR_SET_PDEATHSIG): {e}")))?;
    let spec: PeerSpec = serde_json::from_str(&args.spec).map_err(|e| err(format!("bad --spec: {e}")))?;
    let mut fds = Fds {
        role: spec.role.clone(),
        fds: adopt(&spec.fds)?.into_iter(),
    };
    if let Some(cpu) = spec.cpu {
        pin(cpu)?;
    }
    crate::transports::set_mlock(spec.mlock);
    let report = serve(&spec, &mut fds)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The one line of JSON a peer prints when it is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "kebab-case")]
pub(crate) enum PeerReport {
    /// Producer: messages sent.
    Sent {
        /// Messages sent.
        messages: u64,
    },
    /// Consumer: messages received, and the time from the first to the end of the stream.
    Received {
        /// Messages received (all checked).
        messages: u64,
        /// From the first message to the end of the stream, nanoseconds.
        elapsed_ns: u64,
    },
    /// Ping: round-trip times.
    Rtt(RttStats),
    /// Pong: messages echoed.
    Echoed {
        /// Messages echoed.
        messages: u64,
    },
    /// Idle consumer: CPU time used while waiting, and the wall time of the wait.
    Idle {
        /// CPU time (user + system) of the process during the wait.
        cpu_ns: u64,
        /// Wall time of the wait.
        wall_ns: u64,
    },
}

/// Take ownership of the inherited descriptors named in the spec.
fn adopt(raw: &[RawFd]) -> Result<Vec<OwnedFd>> {
    let mut out: Vec<OwnedFd> = Vec::with_capacity(raw.len());
    for &fd in raw {
        if fd <= 2 || out.iter().any(|o| o.as_raw_fd() == fd) {
            return Err(err(format!("bad inherited descriptor {fd}")));
        }
        // SAFETY: the parent cleared close-on-exec on `fd` for this child alone and named
        // it in the spec; nothing else in this process uses that number (checked
        // distinct and not stdio above), so the OwnedFd is its only owner.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        rustix::io::fcntl_getfd(&owned).map_err(|e| err(format!("inherited descriptor {fd}: {e}")))?;
        out.push(owned);
    }
    Ok(out)
}

fn pin(cpu: usize) -> Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).map_err(|e| err(format!("cannot pin to CPU {cpu}: {e}")))
}

/// Say `ready`, then wait for the parent's `go`.
pub(crate) fn barrier() -> Result<()> {
    println!("ready");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| err(format!("reading go: {e}")))?;
    if line.trim() != "go" {
        return Err(err(format!("expected go from the parent, got {:?}", line.trim())));
    }
    Ok(())
}

/// CPU time (user + system) of this process, nanoseconds.
pub(crate) fn cpu_time_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Write `seq` into the first 8 bytes of `msg` and, when there is room, the last 8.
#[inline]
pub(crate) fn stamp(msg: &mut [u8], seq: u64) {
    let b = seq.to_le_bytes();
    let n = msg.len();
    if n >= 8 {
        msg[..8].copy_from_slice(&b);
    }
    if n >= 16 {
        msg[n - 8..].copy_from_slice(&b);
    }
}

/// Whether `msg` carries the stamp of `seq` (trivially true below 8 bytes).
#[inline]
pub(crate) fn stamped(msg: &[u8], seq: u64) -> bool {
    let b = seq.to_le_bytes();
    let n = msg.len();
    (n < 8 || msg[..8] == b) && (n < 16 || msg[n - 8..] == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        for n in [0usize, 4, 8, 12, 16, 64] {
            let mut m = vec![0u8; n];
            stamp(&mut m, 42);
            assert!(stamped(&m, 42));
            assert_eq!(stamped(&m, 43), n < 8);
        }
    }
}
