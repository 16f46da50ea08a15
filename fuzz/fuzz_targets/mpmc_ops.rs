//! Operations on one anonymous MPMC queue with a few producer and consumer ends, from a
//! single thread, checked against a model of the queue: see `shmring::fuzzing::mpmc_ops`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::mpmc_ops(data);
});
