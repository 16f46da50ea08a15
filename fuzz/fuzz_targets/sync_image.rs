//! The state words of a synchronization object or a Value/Array overwritten with
//! arbitrary bytes, reopened and driven with timed calls: see `shmring::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::sync_image(data);
});
