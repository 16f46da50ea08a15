//! A socket connection's frame reader over arbitrary bytes: see `shmring::fuzzing::net_frames`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::net_frames(data);
});
