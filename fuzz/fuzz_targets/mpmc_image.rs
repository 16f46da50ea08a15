//! The bytes of a whole MPMC queue segment file (segment header, control block, slots),
//! opened through the real path and driven with non-waiting and timed calls: see
//! `shmring::fuzzing::mpmc_image`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::mpmc_image(data);
});
