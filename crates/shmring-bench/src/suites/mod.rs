//! The suites of `shmring bench`, one file each, and their registry. A suite imports the
//! shared infrastructure (`crate::{args, launch, peer, links, report, ...}`) and no other
//! suite; the rows' names that two suites share (the transports', the physical
//! references', which the SPSC targets compare with) live in that infrastructure.

pub(crate) mod broadcast;
pub(crate) mod locks;
pub(crate) mod manager_dict;
pub(crate) mod mpmc_queue;
pub(crate) mod physical;
pub(crate) mod sockets;
pub(crate) mod spsc_transports;
pub(crate) mod typed;

use crate::suite::AnySuite;

/// Every suite, in the order of the report's blocks, the targets and the JSON rows (and
/// of the plan within a phase).
pub(crate) static SUITES: &[&dyn AnySuite] = &[
    &physical::Physical,
    &spsc_transports::Spsc,
    &mpmc_queue::Mpmc,
    &broadcast::Broadcast,
    &locks::Locks,
    &typed::Typed,
    &sockets::Sockets,
    &manager_dict::ManagerDict,
];

/// The suite named `name`.
pub(crate) fn find(name: &str) -> Option<&'static dyn AnySuite> {
    SUITES.iter().copied().find(|s| s.name() == name)
}
