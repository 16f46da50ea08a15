//! The integration tests of the library, one binary: each file a module (one layer or
//! vocabulary object), each cross-process test re-executing this binary as its peers
//! (`common::spawn_peer`). `process` (its own harness) and `signal_process` (signal
//! dispositions are process-wide) stay binaries of their own.

#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../common/hostile.rs"]
mod hostile;

mod broadcast_in_place;
mod broadcast_process;
mod broadcast_typed;
mod connection_process;
mod connection_typed_process;
mod escapes_process;
mod examples;
mod files;
mod find;
mod handoff;
mod hostile_rings;
mod hostile_sync;
mod manager;
mod manager_sync;
mod mpmc;
mod mpmc_process;
mod net_handles;
mod net_pressure;
mod net_process;
mod net_wait;
mod queue_process;
mod segment;
mod select_process;
mod sigbus_process;
mod spsc_process;
mod sync_barrier;
mod sync_mutex;
mod sync_semaphore_event;
mod type_identity;
mod value_process;
